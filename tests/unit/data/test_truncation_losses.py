"""What ``data.truncation`` drops is checked against what the mixture composed (issue 20, item 6): a source or
the held-out split that loses every sample stops the build naming it and ``data.max_seq_len``; a source that
loses more than 10% is a warning in the log and in the manifest."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest

from biotune import config
from biotune.data.build import build_dataset
from biotune.data.dataset import Manifest
from biotune.data.mixture import DROP_WARN_FRACTION, truncation_losses
from biotune.errors import ConfigError


def _cfg(*overrides: str) -> config.DataConfig:
    return config.load(None, ["data.sources.gad.weight=1", "data.sources.hoc.weight=1", *overrides]).data


def test_a_source_that_loses_everything_is_named_with_max_seq_len() -> None:
    with pytest.raises(ConfigError) as err:
        truncation_losses({"gad": 10, "hoc": 5}, {"gad": 10}, _cfg("data.max_seq_len=300"))
    (problem,) = err.value.problems
    assert problem.key == "data.sources.hoc"
    assert "all 5 training samples of hoc (train)" in problem.problem and "max_seq_len=300" in problem.problem
    assert "raise data.max_seq_len" in problem.fix and "data.truncation=truncate" in problem.fix


def test_every_source_empty_names_each() -> None:
    with pytest.raises(ConfigError) as err:
        truncation_losses({"gad": 10, "hoc": 5}, {}, _cfg())
    assert [p.key for p in err.value.problems] == ["data.sources.gad", "data.sources.hoc"]


def test_the_held_out_split_losing_everything_stops_the_build() -> None:
    with pytest.raises(ConfigError) as err:
        truncation_losses({"gad": 10}, {"gad": 10}, _cfg(), heldout=(3, 0))
    assert [p.key for p in err.value.problems] == ["data.eval_fraction"]
    assert truncation_losses({"gad": 10}, {"gad": 10}, _cfg(), heldout=(3, 1)) == []


def test_more_than_ten_percent_is_a_warning_and_ten_percent_is_not() -> None:
    assert DROP_WARN_FRACTION == 0.10
    assert truncation_losses({"gad": 10, "hoc": 10}, {"gad": 9, "hoc": 10}, _cfg()) == []
    (warning,) = truncation_losses(
        {"gad": 10, "hoc": 100}, {"gad": 8, "hoc": 100}, _cfg("data.max_seq_len=99")
    )
    assert warning.startswith("gad (train): 2 of 10 training samples (20.0%)") and "max_seq_len=99" in warning


def test_a_real_build_records_the_warning_in_the_manifest_and_the_log(
    tiny_model: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """pubmedqa's sample has 2 of 11 samples over 210 tokens with the tiny tokenizer; gad has none."""
    cfg = config.load(
        None,
        [
            "data.root=@sample",
            "data.sources.gad.weight=1",
            "data.sources.pubmedqa.weight=1",
            "data.leakage=off",
            "data.max_seq_len=210",
            f"data.tokenizer={tiny_model}",
            f"data.out_dir={tmp_path / 'data'}",
        ],
    )
    with caplog.at_level(logging.WARNING, logger="biotune.data.build"):
        out = build_dataset(cfg)
    manifest = Manifest.read(out)
    (warning,) = manifest.warnings
    lost = manifest.sources["pubmedqa"].realised - manifest.sources["pubmedqa"].kept_after_tokenize
    assert lost / manifest.sources["pubmedqa"].realised > DROP_WARN_FRACTION
    assert warning.startswith(f"pubmedqa (train): {lost} of ")
    assert warning in caplog.text
    assert f"warning: {warning}" in manifest.format_stats()


def test_a_build_that_drops_everything_exits_2_and_leaves_nothing(tiny_model: Path, tmp_path: Path) -> None:
    out_dir = tmp_path / "data"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "biotune.cli",
            "data",
            "build",
            str(Path(__file__).resolve().parents[3] / "configs/data/sample.yaml"),
            f"data.tokenizer={tiny_model}",
            f"data.out_dir={out_dir}",
            "data.max_seq_len=64",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert "data.sources.ncbi_disease: all 32 training samples" in proc.stderr
    assert "data.max_seq_len=64" in proc.stderr
    assert not out_dir.exists()

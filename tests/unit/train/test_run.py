"""The ``train`` command before any work: step count, --dry-run, and batch arithmetic errors."""

from __future__ import annotations

import pytest

from biotune.cli import main
from biotune.config import RunConfig
from biotune.errors import ConfigError
from biotune.train.trainer import total_steps


def test_total_steps_from_epochs_or_max_steps() -> None:
    cfg = RunConfig()
    cfg.train.grad_accum, cfg.train.epochs = 2, 2.5
    assert total_steps(cfg, 40, 2) == 25  # 10 steps per epoch
    cfg.train.max_steps = 7
    assert total_steps(cfg, 40, 2) == 7
    with pytest.raises(ConfigError, match="rows"):
        total_steps(cfg, 3, 2)


def test_dry_run_prints_resolved_config(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "configs/train/tiny.yaml", "train.max_steps=3", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "max_steps: 3" in out and "attn_implementation: auto" in out and "dtype: fp32" in out


def test_bad_batch_arithmetic_fails_before_any_work(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "configs/train/tiny.yaml", "train.global_batch_size=3", "--dry-run"]) == 2
    assert "train.global_batch_size" in capsys.readouterr().err


def test_dry_run_reports_unknown_sources_splits_and_deepspeed_json_together(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(
        [
            "train",
            "configs/train/tiny.yaml",
            "data.sources.ncbi_diseas.weight=1",
            "data.sources.gad.split=validation",
            "train.deepspeed=configs/deepspeed/nope.json",
            "--dry-run",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "3 config problems" in err
    assert "data.sources.ncbi_diseas: unknown source" in err and "did you mean ncbi_disease" in err
    assert "data.sources.gad.split: source gad has no split 'validation'" in err
    assert "train.deepspeed" in err and "nope.json does not exist" in err

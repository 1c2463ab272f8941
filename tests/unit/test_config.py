"""The typed config: every shipped YAML validates; bad input lists every problem with its key and fix."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from biotune import config
from biotune.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
YAMLS = sorted(
    p for p in (REPO / "configs").rglob("*.yaml") if p.parent.name != "sweep"
)  # sweeps: tests/unit/sweep


def test_configs_exist() -> None:
    assert len(YAMLS) >= 3, "configs/ should ship YAML files"


@pytest.mark.parametrize("path", YAMLS, ids=[str(p.relative_to(REPO)) for p in YAMLS])
def test_every_shipped_yaml_loads_and_validates(path: Path) -> None:
    cfg = config.load(path)
    assert isinstance(cfg, config.RunConfig)
    assert config.validate(cfg) == []


def test_overrides_merge_and_type_convert() -> None:
    cfg = config.load(
        REPO / "configs/data/medtuned.yaml",
        ["train.max_steps=7", "data.sources.bc2gm.cap=100", "optim.lr=1e-4", "tracking.tags=[a,b]"],
    )
    assert cfg.train.max_steps == 7
    assert cfg.data.sources["bc2gm"].cap == 100
    assert cfg.optim.lr == pytest.approx(1e-4)
    assert cfg.tracking.tags == ["a", "b"]
    assert cfg.data.sources["i2b2_2012"].include is False


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "train:\n  max_stepz: 3\n  micro_batch_size: many\nmodel:\n  dtype: fp8\n"
        "data:\n  sources:\n    ncbi_disease: {wieght: 2}\n  leakage: maybe\noptim:\n  lr: -1\n"
    )
    with pytest.raises(ConfigError) as info:
        config.load(bad, ["train.grad_accum=0", "nonsense"])
    keys = {p.key for p in info.value.problems}
    assert {
        "train.max_stepz",
        "train.micro_batch_size",
        "model.dtype",
        "data.sources.ncbi_disease.wieght",
        "data.leakage",
        "optim.lr",
        "train.grad_accum",
        "nonsense",
    } <= keys
    text = str(info.value)
    assert str(bad) in text
    assert "did you mean 'train.max_steps'" in text
    assert all(p.fix for p in info.value.problems)


def test_inconsistent_values(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        config.load(
            None,
            [
                "data.sources.ncbi_disease.include=false",
                "train.global_batch_size=10",
                "train.micro_batch_size=4",
                "data.total_samples=10",
            ],
        )
    keys = {p.key for p in info.value.problems}
    assert "data.sources" in keys  # empty mixture
    assert "train.global_batch_size" in keys


def test_all_zero_weights_is_an_error() -> None:
    with pytest.raises(ConfigError, match="weights are zero"):
        config.load(
            None, ["data.total_samples=100", "data.sources.gad.weight=0", "data.sources.hoc.weight=0"]
        )


def test_defaults_composition_and_missing_file(tmp_path: Path) -> None:
    (tmp_path / "base.yaml").write_text("train:\n  max_steps: 5\n  log_every: 2\n")
    (tmp_path / "run.yaml").write_text("defaults: [base.yaml]\ntrain:\n  max_steps: 9\n")
    cfg = config.load(tmp_path / "run.yaml")
    assert (cfg.train.max_steps, cfg.train.log_every) == (9, 2)
    with pytest.raises(ConfigError, match="does not exist"):
        config.load(tmp_path / "missing.yaml")


def test_cli_exits_nonzero_with_the_key(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "biotune.cli",
            "data",
            "build",
            str(REPO / "configs/data/sample.yaml"),
            "data.max_seq_lenn=5",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert proc.returncode == 2
    assert "data.max_seq_lenn" in proc.stderr and "did you mean 'data.max_seq_len'" in proc.stderr
    assert not (tmp_path / "runs").exists()


def test_every_leaf_field_has_an_attribute_docstring() -> None:
    """Config fields document themselves (litgpt-style attribute docstrings): a new field without one fails."""
    import ast
    import dataclasses

    tree = ast.parse((REPO / "biotune" / "config.py").read_text())
    documented: dict[str, set[str]] = {}
    for cls in (n for n in tree.body if isinstance(n, ast.ClassDef)):
        body = cls.body
        documented[cls.name] = {
            st.target.id
            for i, st in enumerate(body)
            if isinstance(st, ast.AnnAssign)
            and i + 1 < len(body)
            and isinstance(body[i + 1], ast.Expr)
            and isinstance(body[i + 1].value, ast.Constant)
            and isinstance(body[i + 1].value.value, str)
        }
    missing = [
        f"{section.__name__}.{f.name}"
        for section in (
            config.SourceMix,
            config.DataConfig,
            config.ModelConfig,
            config.OptimConfig,
            config.TrainConfig,
            config.LaunchConfig,
            config.TrackingConfig,
            config.EvalConfig,
        )
        for f in dataclasses.fields(section)
        if f.name not in documented[section.__name__]
    ]
    assert missing == []

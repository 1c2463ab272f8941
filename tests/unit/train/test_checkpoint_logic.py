"""Checkpoint discovery (COMPLETED marker), world-size guard, log trimming, trackers, the train CLI."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from biotune.errors import CheckpointError
from biotune.tracking import NullTracker, build_tracker, truncate_jsonl
from biotune.trainer import (
    COMPLETED,
    TrainerState,
    check_world_size,
    latest_completed,
    resolve_resume,
    total_steps,
)


def _ckpt(root: Path, step: int, complete: bool) -> Path:
    p = root / "checkpoints" / f"step-{step:08d}"
    p.mkdir(parents=True)
    if complete:
        (p / COMPLETED).write_text("done")
    return p


def test_resume_auto_skips_incomplete_with_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    _ckpt(tmp_path, 4, True)
    good = _ckpt(tmp_path, 8, True)
    _ckpt(tmp_path, 12, False)
    with caplog.at_level(logging.WARNING):
        assert latest_completed(tmp_path) == good
    assert "step-00000012" in caplog.text and "falling back" in caplog.text
    assert resolve_resume("auto", tmp_path) == good
    assert resolve_resume("none", tmp_path) is None
    assert resolve_resume("auto", tmp_path / "empty") is None


def test_explicit_incomplete_checkpoint_is_refused(tmp_path: Path) -> None:
    bad = _ckpt(tmp_path, 3, False)
    with pytest.raises(CheckpointError, match="train.resume=auto"):
        resolve_resume(str(bad), tmp_path)


def test_world_size_change_explains_universal_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError) as err:
        check_world_size(tmp_path, TrainerState(world_size=8), 4)
    msg = str(err.value)
    assert "saved by 8 ranks" in msg and "ds_to_universal" in msg and "biotune export" in msg
    check_world_size(tmp_path, TrainerState(world_size=4), 4)


def test_total_steps_from_epochs_or_max_steps() -> None:
    from biotune.config import RunConfig
    from biotune.errors import ConfigError

    cfg = RunConfig()
    cfg.train.grad_accum, cfg.train.epochs = 2, 2.5
    assert total_steps(cfg, 40, 2) == 25  # 10 steps per epoch
    cfg.train.max_steps = 7
    assert total_steps(cfg, 40, 2) == 7
    with pytest.raises(ConfigError, match="rows"):
        total_steps(cfg, 3, 2)


def test_truncate_jsonl_drops_lines_past_the_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    path.write_text("".join(json.dumps({"step": s, "loss": 1.0}) + "\n" for s in range(1, 8)))
    truncate_jsonl(path, 4)
    assert [json.loads(line)["step"] for line in path.read_text().splitlines()] == [1, 2, 3, 4]


def test_trackers_rank_zero_jsonl_and_null_elsewhere(tmp_path: Path) -> None:
    from biotune.config import TrackingConfig

    cfg = TrackingConfig(wandb_mode="disabled")
    assert isinstance(build_tracker(cfg, tmp_path, "r", {}, None, is_rank_zero=False), NullTracker)
    tracker = build_tracker(cfg, tmp_path, "r", {"a": 1}, {"sources": {}}, is_rank_zero=True)
    tracker.log({"loss": 2.5}, step=1)
    tracker.finish()
    assert json.loads((tmp_path / "metrics.jsonl").read_text()) == {"step": 1, "loss": 2.5}
    assert (tmp_path / "tracking.json").is_file()


def test_wandb_offline_run_id_persists(tmp_path: Path) -> None:
    from biotune.config import TrackingConfig

    cfg = TrackingConfig(wandb_mode="offline", project="p", group="g", tags=["t"])
    first = build_tracker(cfg, tmp_path, "r", {"a": 1}, {"tokenizer_fingerprint": "x"}, is_rank_zero=True)
    run_id = first.run_id
    first.finish()
    again = build_tracker(cfg, tmp_path, "r", {"a": 1}, None, is_rank_zero=True)
    again.finish()
    assert run_id and again.run_id == run_id
    assert list((tmp_path / "wandb").glob(f"offline-run-*-{run_id}"))


def test_dry_run_prints_resolved_config(capsys: pytest.CaptureFixture[str]) -> None:
    from biotune.cli import main

    assert main(["train", "configs/train/tiny.yaml", "train.max_steps=3", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "max_steps: 3" in out and "attn_implementation: auto" in out and "dtype: fp32" in out


def test_bad_batch_arithmetic_fails_before_any_work(capsys: pytest.CaptureFixture[str]) -> None:
    from biotune.cli import main

    assert main(["train", "configs/train/tiny.yaml", "train.global_batch_size=3", "--dry-run"]) == 2
    assert "train.global_batch_size" in capsys.readouterr().err

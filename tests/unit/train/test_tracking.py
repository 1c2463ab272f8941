"""metrics.jsonl and wandb trackers: rank 0 only, offline run ids that survive a resume, log trimming."""

from __future__ import annotations

import json
from pathlib import Path

from biotune.config import TrackingConfig
from biotune.data.dataset import Manifest
from biotune.io import truncate_jsonl
from biotune.train.tracking import NullTracker, build_tracker


def test_truncate_jsonl_drops_lines_past_the_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    path.write_text("".join(json.dumps({"step": s, "loss": 1.0}) + "\n" for s in range(1, 8)))
    truncate_jsonl(path, 4)
    assert [json.loads(line)["step"] for line in path.read_text().splitlines()] == [1, 2, 3, 4]


def test_trackers_rank_zero_jsonl_and_null_elsewhere(tmp_path: Path) -> None:
    cfg = TrackingConfig(wandb_mode="disabled")
    assert isinstance(build_tracker(cfg, tmp_path, "r", {}, None, is_rank_zero=False), NullTracker)
    tracker = build_tracker(cfg, tmp_path, "r", {"a": 1}, Manifest(), is_rank_zero=True)
    tracker.log({"loss": 2.5}, step=1)
    tracker.finish()
    assert json.loads((tmp_path / "metrics.jsonl").read_text()) == {"step": 1, "loss": 2.5}
    assert (tmp_path / "tracking.json").is_file()


def test_wandb_offline_run_id_persists(tmp_path: Path) -> None:
    cfg = TrackingConfig(wandb_mode="offline", project="p", group="g", tags=["t"])
    first = build_tracker(
        cfg, tmp_path, "r", {"a": 1}, Manifest(tokenizer_fingerprint="x"), is_rank_zero=True
    )
    run_id = first.run_id
    first.finish()
    again = build_tracker(cfg, tmp_path, "r", {"a": 1}, None, is_rank_zero=True)
    again.finish()
    assert run_id and again.run_id == run_id
    assert list((tmp_path / "wandb").glob(f"offline-run-*-{run_id}"))

"""``open_run``, the one ``wandb.init`` of biotune: each caller's run (training, eval, sweep collect) recorded
offline with its name, group, job_type, config and tags, and a resumed training run continuing the same id."""

from __future__ import annotations

import time
from pathlib import Path

from biotune.config import TrackingConfig
from biotune.testing.wandb_files import OfflineRun, read_offline_run
from biotune.train.tracking import open_run


def _only_run(out: Path) -> Path:
    (run_dir,) = (out / "wandb").glob("offline-run-*")
    return run_dir


def _recorded(out: Path) -> OfflineRun:
    """The offline run under ``out`` once wandb's writer has flushed it: ``finish()`` can return while the
    ``run-*.wandb`` file still holds only its header, so wait (up to 60 s) for the run record."""
    deadline = time.monotonic() + 60.0
    while True:
        rec = read_offline_run(_only_run(out))
        if rec.name or time.monotonic() > deadline:
            return rec
        time.sleep(0.1)


def test_an_eval_shaped_run_records_group_job_type_and_config(tmp_path: Path) -> None:
    t = TrackingConfig(wandb_mode="offline", project="p", group="g", tags=["t1"], run_config={"k": "v"})
    run = open_run(
        t, name="ev", out_dir=tmp_path, job_type="eval", group=t.group, config={"k": "v"}, tags=True
    )
    assert list(run.tags) == ["t1"]
    run.finish()
    rec = _recorded(tmp_path)
    assert (rec.name, rec.group, rec.job_type) == ("ev", "g", "eval")
    assert rec.config["k"] == "v"


def test_a_collect_shaped_run_sends_no_tags_and_no_config(tmp_path: Path) -> None:
    t = TrackingConfig(wandb_mode="offline", project="p", group="ignored", tags=["t1"])
    run = open_run(t, name="sw-collect", out_dir=tmp_path, job_type="collect", group="sw")
    assert not run.tags
    run.finish()
    rec = _recorded(tmp_path)
    assert (rec.name, rec.group, rec.job_type) == ("sw-collect", "sw", "collect")
    assert not {k for k in rec.config if not k.startswith("_")}


def test_a_resumed_run_keeps_its_id(tmp_path: Path) -> None:
    t = TrackingConfig(wandb_mode="offline", project="p", job_type="train")
    first = open_run(t, name="r", out_dir=tmp_path, job_type="train", group=None, resume=True)
    run_id = first.id
    first.finish()
    again = open_run(
        t, name="r", out_dir=tmp_path, job_type="train", group=None, resume_id=run_id, resume=True
    )
    assert again.id == run_id
    again.finish()
    assert len(list((tmp_path / "wandb").glob(f"offline-run-*-{run_id}"))) >= 1

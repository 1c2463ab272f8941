"""The run/checkpoint layout: discovery by COMPLETED marker, resume resolution, state and RNG files, pruning,
the world-size guard, and where exports may go."""

from __future__ import annotations

import json
import logging
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from biotune import distributed as dist
from biotune.errors import CheckpointError, ConfigError
from biotune.train import checkpoint as layout
from biotune.train.checkpoint import (
    TrainerState,
    check_world_size,
    latest_completed,
    read_state,
    resolve_resume,
)
from biotune.train.export import EXPORT_MARKER, check_destination, checkpoint_identity, export_matches


def _ckpt(root: Path, step: int, complete: bool) -> Path:
    p = layout.checkpoint_dir(root, step)
    (p / layout.ZERO_DIR).mkdir(parents=True)
    layout.write_state(p, TrainerState(step=step))
    if complete:
        layout.mark_completed(p, step)
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


def test_explicit_incomplete_or_missing_checkpoint_is_refused(tmp_path: Path) -> None:
    bad = _ckpt(tmp_path, 3, False)
    with pytest.raises(CheckpointError, match="interrupted"):
        resolve_resume(str(bad), tmp_path)
    with pytest.raises(CheckpointError, match="no such directory"):
        resolve_resume(str(tmp_path / "nope"), tmp_path)
    (tmp_path / "plain").mkdir()
    with pytest.raises(CheckpointError, match="not a biotune checkpoint"):
        resolve_resume(str(tmp_path / "plain"), tmp_path)


def test_prune_keeps_last_complete_and_newer_partial(tmp_path: Path) -> None:
    for step in (1, 2, 3):
        _ckpt(tmp_path, step, True)
    partial_old = _ckpt(tmp_path, 0, False)
    partial_new = _ckpt(tmp_path, 9, False)
    layout.prune(tmp_path, keep_last=2)
    names = [p.name for p in layout.list_checkpoints(tmp_path)]
    assert names == ["step-00000002", "step-00000003", "step-00000009"]
    assert not partial_old.exists() and partial_new.exists()


@pytest.mark.parametrize(
    "content, match",
    [
        ("{not json", "invalid JSON"),
        (json.dumps({"step": 3, "evil": 1}), "unexpected keys"),
        (json.dumps({"step": "3"}), "wrong value types"),
        (json.dumps([1, 2]), "not a biotune trainer state"),
    ],
)
def test_corrupt_trainer_state_names_the_file(tmp_path: Path, content: str, match: str) -> None:
    ckpt = _ckpt(tmp_path, 5, True)
    (ckpt / layout.STATE_FILE).write_text(content)
    with pytest.raises(CheckpointError, match=match) as err:
        read_state(ckpt)
    assert layout.STATE_FILE in str(err.value) and "fix" in str(err.value)


def test_missing_trainer_state_under_completed_is_an_error(tmp_path: Path) -> None:
    ckpt = _ckpt(tmp_path, 5, True)
    (ckpt / layout.STATE_FILE).unlink()
    with pytest.raises(CheckpointError, match="file not found"):
        read_state(ckpt)


def test_rng_state_round_trips_through_json(tmp_path: Path) -> None:
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    layout.save_rng(tmp_path, 0, dist.rng_state())
    expected = (random.random(), float(np.random.rand()), float(torch.rand(1)))
    random.seed(9), np.random.seed(9), torch.manual_seed(9)
    dist.set_rng_state(layout.load_rng(tmp_path, 0))
    assert (random.random(), float(np.random.rand()), float(torch.rand(1))) == expected
    assert json.loads((tmp_path / layout.rng_file(0)).read_text())  # plain JSON: nothing to unpickle


def test_world_size_change_explains_universal_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError) as err:
        check_world_size(tmp_path, TrainerState(world_size=8), 4)
    msg = str(err.value)
    assert "saved by 8 ranks" in msg and "ds_to_universal" in msg and "biotune export" in msg
    check_world_size(tmp_path, TrainerState(world_size=4), 4)


def test_export_destination_never_overwrites_the_run_or_foreign_files(tmp_path: Path) -> None:
    run = tmp_path / "run"
    ckpt = _ckpt(run, 4, True)
    for out in (ckpt, run, ckpt / "inner", tmp_path):
        with pytest.raises(ConfigError, match="OUT"):
            check_destination(ckpt, out)
    foreign = tmp_path / "results"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="--force"):
        check_destination(ckpt, foreign)
    check_destination(ckpt, foreign, force=True)
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(ConfigError, match="is a file"):
        check_destination(ckpt, a_file)
    check_destination(ckpt, tmp_path / "new")


def test_export_marker_is_keyed_on_the_checkpoint_identity(tmp_path: Path) -> None:
    a, b = _ckpt(tmp_path / "run", 4, True), _ckpt(tmp_path / "run", 8, True)
    out = tmp_path / "export"
    out.mkdir()
    (out / "config.json").write_text("{}")
    (out / EXPORT_MARKER).write_text(json.dumps(checkpoint_identity(a)))
    assert export_matches(out, a) and not export_matches(out, b)
    layout.mark_completed(a, 99)  # same path, rewritten checkpoint: no longer the same weights
    assert not export_matches(out, a)


def test_prune_never_removes_a_directory_that_is_not_a_checkpoint(tmp_path: Path) -> None:
    for step in (1, 2):
        _ckpt(tmp_path, step, True)
    foreign = layout.checkpoint_dir(tmp_path, 0)
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    layout.prune(tmp_path, keep_last=1)
    assert (foreign / "notes.txt").read_text() == "mine"
    assert [p.name for p in layout.list_checkpoints(tmp_path)] == ["step-00000000", "step-00000002"]


def test_a_failed_save_removes_the_half_written_checkpoint(tmp_path: Path) -> None:
    import errno

    ckpt = tmp_path / "run" / "checkpoints" / "step-00000002"
    too_large = r"step-00000002: cannot write the checkpoint \(File too large\)"
    with pytest.raises(CheckpointError, match=too_large), layout.saving(ckpt):
        (ckpt / "zero").mkdir(parents=True)
        raise OSError(errno.EFBIG, "File too large")
    assert not ckpt.exists()
    with (
        pytest.raises(RuntimeError, match="a bug"),
        layout.saving(ckpt),
    ):  # not a failed write: passes through
        ckpt.mkdir(parents=True)
        raise RuntimeError("a bug")
    assert ckpt.is_dir()


def test_only_step_directories_are_checkpoints(tmp_path: Path) -> None:
    run = tmp_path / "run"
    ckpt = _ckpt(run, 4, True)
    for other in ("step-00000004-hf", "step-x", "step-0001"):
        (run / "checkpoints" / other).mkdir()
        (run / "checkpoints" / other / "COMPLETED").write_text("step 9\n")
    assert layout.list_checkpoints(run) == [ckpt]
    assert layout.checkpoint_export_dir(ckpt).name == "step-00000004-hf"

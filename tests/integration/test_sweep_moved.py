"""A sweep directory moved or copied elsewhere (issue 20, item 11): ``sweep status`` and ``sweep collect`` read
the directory and the sweep file they are given, never the absolute paths of where the sweep was prepared.

The sweep here is finished by hand: its cells hold real ``biotune eval`` output (simulated predictions) and a
built dataset's manifest, as a run leaves them. It is then moved (its first home is deleted) and read in its new
place: status, collect and the budget columns (read from the cells' manifests) come from there.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from biotune.data.dataset import Manifest, SourceEntry
from biotune.errors import DataError
from biotune.sweep import runner
from biotune.sweep.state import CellState
from biotune.testing.simulate import Arm, NerDesign, simulate_ner, write_eval_dir
from biotune.testing.sweeps import write_sweep

SWEEP = "name: moved\nbase: base.yaml\nseeds: [0]\naxes: [{type: leave_one_out, only: [hoc]}]\n"
#: The realised hoc samples each cell's manifest records (the plan alone would give other counts).
HOC_SAMPLES = 123


def finished_sweep(home: Path) -> Path:
    """A prepared sweep at ``home/sweep`` whose cells are done, each with its own built-dataset manifest."""
    path = write_sweep(home, SWEEP)
    sweep = runner.load(path, out=home / "sweep")
    runner.prepare(sweep)
    sim = simulate_ner(np.random.default_rng(0), [Arm(0.0, 1), Arm(0.0, 1)], 1.0, NerDesign(10, 2))
    for arm, cell in enumerate(sweep.cells):
        cell_dir = sweep.cell_dir(cell.name)
        write_eval_dir(cell_dir / runner.EVAL_DIR, {"simner/test": (sim, arm, 0)})
        data_dir = sweep.out / runner.DATA_DIR / f"build-{arm}"
        Manifest(sources={"hoc": SourceEntry(kept_after_tokenize=HOC_SAMPLES, available=HOC_SAMPLES)}).write(
            data_dir
        )
        runner.write_state(cell_dir, CellState.RUNNING, data_dir=str(data_dir))
        runner.write_state(cell_dir, CellState.DONE)
    return path


def biotune(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "WANDB_MODE": "disabled"}
    return subprocess.run(
        [sys.executable, "-m", "biotune.cli", *args], capture_output=True, text=True, cwd=cwd, env=env
    )


def test_status_and_collect_read_a_moved_sweep_where_it_is_now(tmp_path: Path) -> None:
    """The project (sweep file and directory) is moved to another place; its first home is gone."""
    finished_sweep(tmp_path / "first")
    shutil.move(tmp_path / "first", tmp_path / "now")
    out, sweep_file = tmp_path / "now" / "sweep", tmp_path / "now" / "sweep.yaml"

    status = biotune("sweep", "status", str(sweep_file), "--out", str(out), "--json", cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    rows = json.loads(status.stdout)
    assert [r["state"] for r in rows] == ["done", "done"]
    assert all(r["log"] == str(out / "cells" / r["cell"] / runner.CELL_LOG) for r in rows)

    collected = biotune("sweep", "collect", str(sweep_file), "--out", str(out), "--no-plots", cwd=tmp_path)
    assert collected.returncode == 0, collected.stderr
    assert f"results: {out / runner.RESULTS_DIR}" in collected.stdout
    assert not (tmp_path / "first").exists(), "nothing is written where the sweep used to be"

    sweep = runner.from_dir(out)  # `sweep cell DIR CELL` has no sweep file: the one recorded beside the dir
    assert sweep.path == sweep_file and sweep.out == out
    assert {r.name: r.budget["hoc"]["samples"] for r in runner.cell_results(sweep)} == {
        c.name: HOC_SAMPLES for c in sweep.cells
    }


def test_a_sweep_directory_copied_away_from_its_sweep_file(tmp_path: Path) -> None:
    """Only the directory is copied (a results disk, another machine): the sweep file given is the one read."""
    first = finished_sweep(tmp_path / "first")
    shutil.copytree(tmp_path / "first" / "sweep", tmp_path / "mnt" / "sweep")
    renamed = first.rename(tmp_path / "first" / "renamed.yaml")
    status = biotune("sweep", "status", str(renamed), "--out", str(tmp_path / "mnt" / "sweep"), cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    assert "2 done" in status.stdout

    with pytest.raises(DataError) as err:  # no sweep file given, none where sweep.json says: name both
        runner.from_dir(tmp_path / "mnt" / "sweep")
    text = str(err.value)
    assert text.startswith(str(tmp_path / "mnt" / "sweep" / runner.SWEEP_FILE))
    assert str(tmp_path / "mnt" / "sweep.yaml") in text and str(tmp_path / "first" / "sweep.yaml") in text
    assert "pass the sweep file" in text


def test_an_old_sweep_json_with_an_absolute_path_is_still_read(tmp_path: Path) -> None:
    path = finished_sweep(tmp_path)
    index_path = tmp_path / "sweep" / runner.SWEEP_FILE
    index = json.loads(index_path.read_text())
    assert not Path(index["sweep_file"]).is_absolute(), "sweep.json records the sweep file relative to itself"
    index["sweep_file"] = str(path.resolve())
    index_path.write_text(json.dumps(index))
    assert runner.from_dir(tmp_path / "sweep").path == path.resolve()


def test_another_sweeps_file_is_refused_for_this_directory(tmp_path: Path) -> None:
    finished_sweep(tmp_path)
    other = write_sweep(tmp_path / "other", SWEEP.replace("name: moved", "name: other"))
    status = biotune("sweep", "status", str(other), "--out", str(tmp_path / "sweep"), cwd=tmp_path)
    assert status.returncode == 2 and "Traceback" not in status.stderr
    assert f"--out: {tmp_path / 'sweep'} holds sweep 'moved', not 'other'" in status.stderr

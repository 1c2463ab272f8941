"""Library versions: recorded in sweep.json, read back from each cell's run_info.json, and `collect` warns when
the cells of one sweep trained under different versions."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from biotune.sweep import runner
from biotune.sweep.state import CellState
from biotune.testing.simulate import Arm, NerDesign, simulate_ner, write_eval_dir
from biotune.testing.sweeps import write_sweep
from biotune.train.checkpoint import RUN_INFO_FILE
from biotune.versions import library_versions


def _done_sweep(tmp: Path, transformers: list[str]) -> Path:
    path = write_sweep(
        tmp, "name: ver\nbase: base.yaml\nseeds: [0]\naxes: [{type: leave_one_out, only: [hoc]}]\n"
    )
    sweep = runner.load(path, out=tmp / "sweep")
    runner.prepare(sweep)
    sim = simulate_ner(np.random.default_rng(0), [Arm(0.0, 1), Arm(0.0, 1)], 1.0, NerDesign(10, 2))
    for arm, (cell, version) in enumerate(zip(sweep.cells, transformers, strict=True)):
        cell_dir = sweep.cell_dir(cell.name)
        write_eval_dir(cell_dir / runner.EVAL_DIR, {"simner/test": (sim, arm, 0)})
        (cell_dir / runner.TRAIN_DIR).mkdir(parents=True, exist_ok=True)
        info = {"world_size": 2, "versions": {**library_versions(), "transformers": version}}
        (cell_dir / runner.TRAIN_DIR / RUN_INFO_FILE).write_text(json.dumps(info))
        runner.write_state(cell_dir, CellState.RUNNING)
        runner.write_state(cell_dir, CellState.DONE)
    return path


def _collect(tmp: Path, path: Path) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "biotune.cli", "sweep", "collect", str(path), "--out", str(tmp / "sweep")]
    return subprocess.run([*cmd, "--no-plots"], capture_output=True, text=True, cwd=tmp)


def test_sweep_json_records_the_versions(tmp_path: Path) -> None:
    path = _done_sweep(tmp_path, ["5.25.0", "5.25.0"])
    index = json.loads((tmp_path / "sweep" / runner.SWEEP_FILE).read_text())
    assert index["versions"] == library_versions()
    assert set(runner.cell_versions(runner.from_dir(tmp_path / "sweep"))) == {"base-s0", "loo-source-hoc-s0"}
    done = _collect(tmp_path, path)
    assert done.returncode == 0, done.stderr
    assert "different library versions" not in done.stderr


def test_collect_warns_when_cells_ran_with_different_versions(tmp_path: Path) -> None:
    path = _done_sweep(tmp_path, ["5.24.0", "5.25.0"])
    done = _collect(tmp_path, path)
    assert done.returncode == 0, done.stderr
    assert "different library versions" in done.stderr
    assert "transformers: 5.24.0 (base-s0); 5.25.0 (loo-source-hoc-s0)" in done.stderr

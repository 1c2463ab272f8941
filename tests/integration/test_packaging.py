"""`pip install biotune` without extras, into a fresh virtualenv, then `biotune sweep collect` on a small sweep.

Every third-party module biotune imports at run time must come with the package's own dependencies (scipy and
scikit-learn for the sweep statistics and fits, PyYAML for sweep files), not only with the `dev` extra the test
suite installs. The install uses the lock file, as `launch/install.sh` does, so it resolves the same versions.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from biotune.config import REPO_ROOT
from biotune.sweep import runner
from biotune.sweep.state import CellState
from biotune.testing.simulate import Arm, NerDesign, simulate_accuracy, simulate_ner, write_eval_dir
from biotune.testing.sweeps import write_sweep

pytestmark = pytest.mark.slow

TORCH_SPEC = "torch==2.13.0"


def _fresh_install(tmp: Path) -> Path:
    """A new virtualenv holding biotune (no extras) from a copy of this checkout; its bin directory."""
    src = tmp / "src"
    src.mkdir()
    for name in ("setup.cfg", "pyproject.toml", "README.md"):
        if (REPO_ROOT / name).exists():
            shutil.copy2(REPO_ROOT / name, src / name)
    shutil.copytree(REPO_ROOT / "biotune", src / "biotune", ignore=shutil.ignore_patterns("__pycache__"))
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    constraints = ["-c", str(REPO_ROOT / "launch" / "constraints.txt")]
    done = subprocess.run([*pip, *constraints, TORCH_SPEC, str(src)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    return venv / "bin"


def _small_sweep(tmp: Path) -> tuple[Path, Path]:
    """A prepared sweep (base and one leave-one-out variant, 3 seeds each) whose cells are done and evaluated."""
    path = write_sweep(
        tmp, "name: pkg\nbase: base.yaml\nseeds: [0, 1, 2]\naxes: [{type: leave_one_out, only: [hoc]}]\n"
    )
    out = tmp / "sweep"
    sweep = runner.load(path, out=out)
    runner.prepare(sweep)
    rng = np.random.default_rng(0)
    arms = [Arm(0.0, 3), Arm(-4.0, 3)]
    sets = {
        "simner/test": simulate_ner(rng, arms, 1.0, NerDesign(30, 3)),
        "simcls/test": simulate_accuracy(rng, arms, 1.0, 80),
    }
    for cell in sweep.cells:
        arm = 0 if sweep.variant(cell.variant).kind == "base" else 1
        seed_index = [0, 1, 2].index(cell.seed)
        cell_dir = sweep.cell_dir(cell.name)
        write_eval_dir(cell_dir / runner.EVAL_DIR, {n: (sim, arm, seed_index) for n, sim in sets.items()})
        runner.write_state(cell_dir, CellState.RUNNING)
        runner.write_state(cell_dir, CellState.DONE)
    return path, out


def test_a_plain_install_collects_a_sweep(tmp_path: Path) -> None:
    bin_dir = _fresh_install(tmp_path)
    listed = subprocess.run(
        [str(bin_dir / "python"), "-m", "pip", "list", "--format=freeze"], capture_output=True, text=True
    ).stdout.lower()
    assert "scikit-learn==" in listed and "scipy==" in listed
    assert (
        "seqeval==" not in listed and "pytest==" not in listed
    )  # no extras: what a user's `pip install` gets
    sweep_file, out = _small_sweep(tmp_path)
    done = subprocess.run(
        [str(bin_dir / "biotune"), "sweep", "collect", str(sweep_file), "--out", str(out)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(tmp_path), "WANDB_MODE": "offline"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    table = (out / "results" / "results.md").read_text(encoding="utf-8")
    assert "loo-source-hoc" in table and "simner/test" in table
    assert list((out / "results").glob("*.png")), "the plots need matplotlib from the plain install"

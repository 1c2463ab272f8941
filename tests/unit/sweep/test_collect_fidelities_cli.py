"""``biotune sweep collect`` on a prepared sweep with fidelities (cells done with simulated evaluations, no
training): the runner's cells carry their fidelity and measured cost, and the CLI writes the agreement."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

from biotune.sweep import runner
from biotune.sweep.fidelity import TARGET
from biotune.testing.fidelity_sweeps import PROCESSES, SECONDS, prepare_fidelity_sweep


def test_cell_results_carry_fidelity_and_measured_cost(tmp_path: Path) -> None:
    sweep = prepare_fidelity_sweep(tmp_path)
    cells = runner.cell_results(sweep)
    assert {c.fidelity for c in cells} == {"small", TARGET}
    for c in cells:
        assert c.name.startswith(f"{c.fidelity}.")
        assert c.process_seconds == pytest.approx(SECONDS[c.fidelity] * PROCESSES)


def test_sweep_collect_writes_the_agreement_and_the_cost(tmp_path: Path) -> None:
    prepare_fidelity_sweep(tmp_path)
    env = {**os.environ, "WANDB_MODE": "disabled", "PYTHONPATH": os.environ.get("PYTHONPATH", "")}
    cmd = [sys.executable, "-m", "biotune.cli", "sweep", "collect", str(tmp_path / "sweep.yaml")]
    cmd += ["--out", str(tmp_path / "sweep"), "--no-plots", "--n-boot", "200"]
    done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    out = tmp_path / "sweep" / runner.RESULTS_DIR
    with (out / "agreement.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    rho = {r["eval_set"]: r for r in rows if r["statistic"] == "spearman"}
    assert set(rho) == {"simner/test", "simcls/test", "macro:ner/test", "macro:cls/test"}
    assert all(r["proxy"] == "small" and r["n_variants"] == "4" for r in rho.values())
    md = (out / "results.md").read_text(encoding="utf-8")
    ratio = SECONDS["small"] / SECONDS[TARGET]
    assert f"| small | 5 | 5 | {5 * SECONDS['small'] * PROCESSES:,.0f} |" in md
    assert f"| {ratio:.3f} |" in md
    assert "Proxy-to-target agreement" in done.stdout

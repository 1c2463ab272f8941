"""A two-stage sweep through the local SLURM: every variant at a cheap proxy fidelity, then the target's anchors
chosen by spread from the proxy's collected results, then ``collect``.

Three leave-one-source-out variants and the base of the demo config, one seed, two fidelities: ``short`` (1
training step) and ``target`` (2 steps, 3 anchors chosen by spread from ``short``: the best, the middle and the
worst, so that collect's agreement table has the 3 variants a rank agreement needs). The models are tiny and
barely trained: this checks the machinery (stages, anchors.json, which cells ran at the target), not learning.
"""

from __future__ import annotations

import csv
import json
import subprocess
import time
from pathlib import Path

import pytest
import slurm_cluster as cluster_helpers
import yaml
from slurm_cluster import SlurmCluster

from biotune.config import REPO_ROOT
from biotune.sweep.fidelity import ANCHORS_FILE, TARGET
from biotune.testing.launch import run_cli

slurm_cluster = cluster_helpers.slurm_cluster

pytestmark = [pytest.mark.slow, pytest.mark.slurm]

VARIANTS = ["base", "loo-source-bc5cdr_disease", "loo-source-chemprot", "loo-source-hoc"]
QUICK = [
    "train.max_steps=2",
    "train.save_every=100",
    "train.log_every=1",
    "eval.max_examples=2",
    "eval.max_new_tokens=4",
    "tracking.wandb_mode=offline",
]


def _sweep_file(tmp: Path) -> Path:
    path = tmp / "two_stage.yaml"
    body = {
        "name": "two-stage",
        "base": str(REPO_ROOT / "configs" / "train" / "demo.yaml"),
        "budget": "fixed_samples",
        "controls": False,
        "seeds": [0],
        "keep": "predictions",
        "axes": [{"type": "leave_one_out", "over": "source", "only": ["bc5cdr_disease", "chemprot", "hoc"]}],
        "fidelities": {
            "short": {"overrides": ["train.max_steps=1"], "variants": "all"},
            TARGET: {"overrides": [], "variants": {"anchors": 3, "choose": "spread", "by": "short"}},
        },
    }
    path.write_text(yaml.safe_dump(body))
    return path


def _biotune(*args: str, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, timeout=timeout, drop=("SLURM_",))


def _wait(out: Path, jobs: list[str], timeout: float = 600) -> None:
    for job in jobs:
        deadline = time.monotonic() + timeout
        while subprocess.run(["squeue", "-h", "-j", job], capture_output=True, text=True).stdout.strip():
            logs = "\n".join(p.read_text(errors="replace") for p in (out / "slurm" / "logs").glob("*.out"))
            assert time.monotonic() < deadline, logs[-4000:]
            time.sleep(1)


def _submit(sweep: Path, out: Path, model: Path, *extra: str) -> dict:
    res = _biotune(
        "sweep",
        "submit",
        str(sweep),
        "--out",
        str(out),
        "--nproc",
        "1",
        *extra,
        f"model.name_or_path={model}",
        *QUICK,
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    record = json.loads((out / "slurm" / "submissions.jsonl").read_text().splitlines()[-1])
    _wait(out, record["jobs"])
    return {**record, "stdout": res.stdout}


def _status(sweep: Path, out: Path) -> dict[str, dict]:
    res = _biotune("sweep", "status", str(sweep), "--out", str(out), "--json")
    assert res.returncode == 0, res.stderr
    return {row["cell"]: row for row in json.loads(res.stdout)}


def test_proxy_stage_then_spread_anchors_at_the_target_then_collect(
    slurm_cluster: SlurmCluster, tiny_model: Path, tmp_path: Path
) -> None:
    sweep, out = _sweep_file(tmp_path), tmp_path / "out"
    # stage 1: every variant at the proxy, and the base at the target (the base runs at every fidelity)
    first = _submit(sweep, out, tiny_model)
    assert first["cells"] == len(VARIANTS) + 1 and first["data_tasks"] == len(VARIANTS), first
    status = _status(sweep, out)
    assert set(status) == {f"short.{v}-s0" for v in VARIANTS} | {"target.base-s0"}
    assert {r["state"] for r in status.values()} == {"done"}, status
    assert not (out / ANCHORS_FILE).exists()
    short_cfg = yaml.safe_load((out / "cells" / "short.base-s0" / "config.yaml").read_text())
    target_cfg = yaml.safe_load((out / "cells" / "target.base-s0" / "config.yaml").read_text())
    assert (short_cfg["train"]["max_steps"], target_cfg["train"]["max_steps"]) == (1, 2)

    # stage 2: anchors chosen from the proxy's results, written down, then only the target's new cells run
    second = _submit(sweep, out, tiny_model, "--stage", TARGET)
    record = json.loads((out / ANCHORS_FILE).read_text())
    anchors = record["anchors"]
    assert len(anchors) == 3 and set(anchors) == set(VARIANTS[1:]) and record["by"] == "short"
    assert set(record["deltas"]) == set(VARIANTS[1:])
    ranked = sorted(record["deltas"], key=lambda v: (-record["deltas"][v], v))
    assert anchors == ranked  # spread of 3 from 3: the best, the middle and the worst, in that order
    assert "target anchors, chosen by spread from the proxy 'short'" in second["stdout"]
    assert second["cells"] == 3, second
    status = _status(sweep, out)
    ran_at_target = {r["variant"] for r in status.values() if r["fidelity"] == TARGET}
    assert ran_at_target == {"base", *anchors}
    assert {r["state"] for r in status.values()} == {"done"}, status
    # re-running the stage reuses the choice and has nothing left to run
    again = _biotune(
        "sweep",
        "submit",
        str(sweep),
        "--out",
        str(out),
        "--stage",
        TARGET,
        f"model.name_or_path={tiny_model}",
        *QUICK,
    )
    assert again.returncode == 0 and "nothing submitted" in again.stdout, again.stderr[-2000:]
    assert json.loads((out / ANCHORS_FILE).read_text()) == record

    res = _biotune("sweep", "collect", str(sweep), "--out", str(out), "--no-plots", "--n-boot", "200")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    md = (out / "results" / "results.md").read_text()
    assert "## Measured cost per fidelity" in md and "Proxy-to-target agreement" in md, md[-3000:]
    with (out / "results" / "agreement.csv").open() as f:
        rows = list(csv.DictReader(f))
    spearman = [r for r in rows if r["statistic"] == "spearman"]
    assert spearman and {(r["proxy"], r["target"]) for r in spearman} == {("short", TARGET)}, rows[:3]
    assert {r["n_variants"] for r in spearman} == {"3"} and all(r["verdict"] for r in spearman)

"""A sweep cell across two nodes: ``biotune sweep submit --nodes 2`` on the local SLURM test cluster (n1, n2).

Each cell task of the array gets a 2-node allocation; ``biotune sweep cell`` (in the batch step, on the first
node) starts training with ``srun launch/srun_node.sh`` (``biotune.sweep.runner._train_cmd``), one torchrun
per node with one process each: ZeRO-3 over gloo at world size 2, rank 0 on n1 and rank 1 on n2. The test
checks that from what the run wrote (each rank's share of the parameters, the checkpoint's world size, one
sample list per rank per step), from the launcher's per-node lines in the cell log, and from SLURM's record
of the job; then that the cell was evaluated.

The sweep has the smallest shape a sweep file allows: the base and one ``optim.lr`` variant (the same data,
built once), the tiny model, two optimizer steps, two eval examples per set. Both cells run at once
(``--max-concurrent 2``) on the same two fake nodes, so both put their rank 0 on 127.0.0.1: launch/srun_node.sh
derives each job's MASTER_PORT from its job id, and the two rendezvous ports must differ (with the fixed 29500 of
before, one cell failed with EADDRINUSE).
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import pytest
import slurm_cluster as cluster_helpers
import yaml
from slurm_cluster import SlurmCluster

from biotune.config import REPO_ROOT
from biotune.testing.launch import run_cli

slurm_cluster = cluster_helpers.slurm_cluster  # the session fixture that installs and starts SLURM

pytestmark = [pytest.mark.slow, pytest.mark.slurm]

CELLS = ["base-s1234", "lr-0.001-s1234"]
QUICK = [
    "train.max_steps=2",
    "train.save_every=2",
    "train.eval_every=0",
    "train.log_every=1",
    "eval.max_examples=2",
    "eval.max_new_tokens=4",
    "tracking.wandb_mode=offline",
]


def _biotune(*args: str, timeout: int = 120) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, timeout=timeout, drop=("SLURM_", "BIOTUNE_"))


def _array_log(out: Path) -> str:
    return "\n".join(p.read_text(errors="replace") for p in sorted((out / "slurm" / "logs").glob("*.out")))


def _cell_logs(out: Path) -> str:
    return "\n".join(p.read_text(errors="replace") for p in sorted((out / "cells").glob("*/cell.log")))


@pytest.fixture(scope="module")
def two_node_sweep(
    slurm_cluster: SlurmCluster, tiny_model: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict:
    """The sweep submitted with ``--nodes 2``, waited for until its arrays have left the queue."""
    tmp = tmp_path_factory.mktemp("sweep_multinode")
    sweep, out = tmp / "two-node.yaml", tmp / "out"
    sweep.write_text(
        yaml.safe_dump(
            {
                "name": "two-node",
                "base": str(REPO_ROOT / "configs" / "train" / "demo.yaml"),
                "keep": "checkpoint",
                "controls": False,
                "axes": [{"type": "values", "key": "optim.lr", "values": [1.0e-3]}],
            }
        )
    )
    start = time.monotonic()
    res = _biotune(
        "sweep",
        "submit",
        str(sweep),
        "--out",
        str(out),
        "--nodes",
        "2",
        "--nproc",
        "1",
        "--max-concurrent",
        "2",
        f"model.name_or_path={tiny_model}",
        *QUICK,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    record = json.loads((out / "slurm" / "submissions.jsonl").read_text().splitlines()[-1])
    assert record["cells"] == 2 and record["data_tasks"] == 1, record  # lr leaves the data alone: one build
    for job in record["jobs"]:
        deadline = time.monotonic() + 900
        while subprocess.run(["squeue", "-h", "-j", job], capture_output=True, text=True).stdout.strip():
            assert time.monotonic() < deadline, _array_log(out)[-4000:] + _cell_logs(out)[-4000:]
            time.sleep(1)
    print(f"\ntwo-node sweep: submitted and finished in {time.monotonic() - start:.0f} s")
    return {"sweep": sweep, "out": out, "record": record, "cluster": slurm_cluster}


def test_each_cell_trained_at_world_size_two_with_a_rank_on_each_node(two_node_sweep: dict) -> None:
    out, cluster = two_node_sweep["out"], two_node_sweep["cluster"]
    cell_job = two_node_sweep["record"]["jobs"][-1]
    for task in range(len(CELLS)):
        # SLURM gave each cell task both nodes (finished jobs stay visible for MinJobAge=600 s)
        assert cluster.job_field(f"{cell_job}_{task}", "NumNodes") == "2"
        assert cluster.job_field(f"{cell_job}_{task}", "NodeList") == "n[1-2]"
    ports = set()
    for cell in CELLS:
        d = out / "cells" / cell
        log = (d / "cell.log").read_text(errors="replace")
        assert "srun_node.sh: node n1 rank 0/2 master 127.0.0.1:" in log, log[-4000:]
        assert "srun_node.sh: node n2 rank 1/2 master 127.0.0.1:" in log, log[-4000:]
        ports |= set(re.findall(r"srun_node\.sh: node n1 rank 0/2 master 127\.0\.0\.1:(\d+)", log))
        info = json.loads((d / "train" / "run_info.json").read_text())
        assert info["world_size"] == 2
        shares = info["partition_fraction_per_rank"]  # ZeRO-3: each rank holds about half the parameters
        assert len(shares) == 2 and all(0.3 < s < 0.7 for s in shares), shares
        states = [json.loads(p.read_text()) for p in (d / "train").rglob("trainer_state.json")]
        assert states and {s["world_size"] for s in states} == {2} and max(s["step"] for s in states) == 2
        consumed = [json.loads(line) for line in (d / "train" / "consumed.jsonl").read_text().splitlines()]
        assert [r["step"] for r in consumed] == [1, 2]
        assert all(len(r["sample_ids"]) == 2 for r in consumed)  # one list of sample ids per rank
    assert len(ports) == len(CELLS), ports  # concurrent cells rendezvous on different ports


def test_each_cell_was_evaluated_and_is_done(two_node_sweep: dict) -> None:
    out = two_node_sweep["out"]
    res = _biotune("sweep", "status", str(two_node_sweep["sweep"]), "--out", str(out), "--json")
    assert res.returncode == 0, res.stderr
    assert {row["cell"]: row["state"] for row in json.loads(res.stdout)} == dict.fromkeys(CELLS, "done")
    for cell in CELLS:
        report = json.loads((out / "cells" / cell / "eval" / "report.json").read_text())
        assert report["rows"] and all(row["n"] > 0 for row in report["rows"]), report

"""The real SLURM path: slurm/train_70b.sh -> srun launch/srun_node.sh -> torchrun -> biotune train, on 2 fake nodes.

Each job overrides the 70B script down to the tiny model on CPU (``BIOTUNE_CONFIG=configs/train/tiny.yaml``,
``--gpus-per-node=0``): 2 nodes x 1 process, ZeRO-3 over gloo. The daemons come from ``slurm_cluster``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import slurm_cluster as cluster_helpers
from slurm_cluster import SlurmCluster

from biotune.testing.launch import free_port
from biotune.train import checkpoint as layout

slurm_cluster = cluster_helpers.slurm_cluster  # the session fixture that installs and starts SLURM

REPO = Path(__file__).resolve().parents[2]
SCRIPT = "slurm/train_70b.sh"
JOB_TIMEOUT_S = 600
#: Long enough to be signalled mid-run on 2 shared cores; the reference run uses the same schedule.
LONG_STEPS = 200
LONG_RUN = [
    f"train.max_steps={LONG_STEPS}",
    "train.save_every=50",
    "train.eval_every=0",
    "train.log_every=1",
    "train.export_on_finish=false",
]

pytestmark = [pytest.mark.slow, pytest.mark.slurm]


def _env(run_dir: Path, **extra: str) -> dict[str, str]:
    """The job's environment; MASTER_PORT is a free one (the machine is shared; clusters keep the fixed 29500)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "BIOTUNE_"))}
    env.update(
        MASTER_PORT=str(free_port()),
        BIOTUNE_RUN_DIR=str(run_dir),
        BIOTUNE_CONFIG="configs/train/tiny.yaml",
        BIOTUNE_VENV=sys.prefix,  # the jobs run the test's own virtualenv
        WANDB_MODE="offline",
        DS_ACCELERATOR="cpu",
        BIOTUNE_DATA_DIR=os.environ.get("BIOTUNE_DATA_DIR", ""),
        **extra,
    )
    if not env["BIOTUNE_DATA_DIR"]:
        del env["BIOTUNE_DATA_DIR"]
    return env


def _sbatch(run_dir: Path, overrides: list[str], **env: str) -> str:
    """Submit the 70B script on 2 CPU-only nodes from the repo root; returns the job id.

    Tests wait for the job with :meth:`SlurmCluster.wait_job_end` (the job's exit code), not ``sbatch --wait``,
    whose polls back off to 32 s apart.
    """
    cmd = [
        "sbatch",
        "--parsable",
        "--nodes=2",
        "--gpus-per-node=0",
        "--time=30",
        "--job-name=t70b",
        f"--output={run_dir}/job-%j.out",
        SCRIPT,
        *overrides,
    ]
    res = subprocess.run(cmd, cwd=REPO, env=_env(run_dir, **env), capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    return res.stdout.strip().split(";")[0]


def _job_log(run_dir: Path) -> str:
    return "\n".join(p.read_text(errors="replace") for p in sorted(run_dir.glob("job-*.out")))


def _train_dir(run_dir: Path, job_id: str) -> Path:
    return run_dir / "train" / f"t70b-{job_id}"


def _consumed(train_dir: Path) -> list[tuple[int, list]]:
    rows = [
        json.loads(line) for line in (train_dir / "consumed.jsonl").read_text().splitlines() if line.strip()
    ]
    return [(r["step"], r["sample_ids"]) for r in rows]


def _completed_checkpoints(train_dir: Path) -> list[Path]:
    return sorted(p.parent for p in train_dir.rglob("COMPLETED"))


def _overrides(tiny_model: Path) -> list[str]:
    return [f"model.name_or_path={tiny_model}", *LONG_RUN]


@pytest.fixture(scope="module")
def reference_run(
    slurm_cluster: SlurmCluster, tiny_model: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """An uninterrupted 2-node ZeRO-3 run through sbatch, waited for; returns its train.output_dir."""
    run_dir = tmp_path_factory.mktemp("slurm_reference")
    job_id = _sbatch(run_dir, _overrides(tiny_model))
    code = slurm_cluster.wait_job_end(job_id, JOB_TIMEOUT_S)
    log = _job_log(run_dir)
    assert code == 0, f"job {job_id} exit {code}\n{log[-6000:]}"
    return _train_dir(run_dir, job_id)


def test_two_node_zero3_run_completes_with_a_checkpoint(reference_run: Path) -> None:
    log = _job_log(reference_run.parent.parent)
    assert "node n1 rank 0/2 master 127.0.0.1:" in log and "node n2 rank 1/2" in log
    assert "step 1/2: data build" in log and "training finished" in log
    ckpts = _completed_checkpoints(reference_run)
    assert ckpts, f"no COMPLETED checkpoint under {reference_run}"
    consumed = _consumed(reference_run)
    assert [step for step, _ in consumed] == list(range(1, 201))
    assert all(len(ids) == 2 for _, ids in consumed)  # one list of sample ids per rank


def test_preemption_checkpoints_requeues_and_resumes_identically(
    slurm_cluster: SlurmCluster, tiny_model: Path, reference_run: Path, tmp_path: Path
) -> None:
    job_id = _sbatch(tmp_path, _overrides(tiny_model))
    train_dir = _train_dir(tmp_path, job_id)
    metrics = train_dir / "metrics.jsonl"
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while not (metrics.is_file() and metrics.read_text().count("\n") >= 3):
        assert time.monotonic() < deadline, (
            f"no training metrics after {JOB_TIMEOUT_S} s\n{_job_log(tmp_path)[-4000:]}"
        )
        assert slurm_cluster.job_field(job_id, "JobState") in ("PENDING", "RUNNING", "CONFIGURING"), _job_log(
            tmp_path
        )
        time.sleep(0.5)
    run_id_before = json.loads((train_dir / "tracking.json").read_text())["run_id"]
    sent_at = len(_consumed(train_dir))
    subprocess.run(["scancel", "--signal=USR1", "--batch", job_id], check=True)  # the batch shell ONLY

    state = slurm_cluster.wait_job_state(
        job_id, {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL"}, JOB_TIMEOUT_S
    )
    log = _job_log(tmp_path)
    assert state == "COMPLETED", log[-6000:]
    assert slurm_cluster.job_field(job_id, "Restarts") == "1", log[-4000:]
    assert "SIGUSR1 (pre-emption warning)" in log and f"requeueing job {job_id}" in log
    # the trainer itself saw the signal, mid-run, on both nodes, and saved a checkpoint at that step
    assert log.count("received SIGUSR1") >= 2, log[-6000:]
    step = int(re.search(r"preempted at step (\d+): checkpoint saved", log).group(1))  # type: ignore[union-attr]
    assert sent_at <= step < LONG_STEPS, (sent_at, step)
    assert f"resumed from {layout.checkpoint_dir(train_dir, step)} " in log
    assert "restart 1" in log  # the summary printed by the requeued run
    assert "resumed from" in log and "at step 0 " not in log  # from the checkpoint the signal produced
    assert _consumed(train_dir) == _consumed(reference_run)
    assert json.loads((train_dir / "tracking.json").read_text())["run_id"] == run_id_before
    assert _completed_checkpoints(train_dir)


def test_a_failing_rank_kills_the_step_and_names_its_node(
    slurm_cluster: SlurmCluster, tiny_model: Path, tmp_path: Path
) -> None:
    job_id = _sbatch(
        tmp_path,
        [
            f"model.name_or_path={tiny_model}",
            "train.max_steps=40",
            "train.save_every=40",
            "train.eval_every=0",
        ],
        BIOTUNE_FAULT_KILL_AT_STEP="2:1",
    )  # SIGKILL rank 1 (on n2)
    code = slurm_cluster.wait_job_end(job_id, JOB_TIMEOUT_S)
    log = _job_log(tmp_path)
    assert code != 0, log[-4000:]
    assert "launch/torchrun.sh: node n2 (node rank 1): training failed" in log, log[-4000:]
    assert "srun: error: n2" in log
    assert "training finished" not in log
    assert not _completed_checkpoints(_train_dir(tmp_path, job_id))


def test_missing_required_variable_fails_before_anything_is_allocated(
    slurm_cluster: SlurmCluster, tmp_path: Path
) -> None:
    env = _env(tmp_path)
    del env["BIOTUNE_RUN_DIR"]
    queued_before = subprocess.run(["squeue", "-h", "-o", "%i"], capture_output=True, text=True).stdout
    res = subprocess.run(
        ["bash", SCRIPT, "train.max_steps=1"], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )
    assert res.returncode == 2
    assert "BIOTUNE_RUN_DIR is not set" in res.stderr and "export BIOTUNE_RUN_DIR=" in res.stderr
    assert "Submitted batch job" not in res.stdout
    assert (
        subprocess.run(["squeue", "-h", "-o", "%i"], capture_output=True, text=True).stdout == queued_before
    )
    # submitted directly, the job fails in its first lines, before any srun step
    direct = subprocess.run(
        ["sbatch", "--parsable", "--nodes=2", "--gpus-per-node=0", f"--output={tmp_path}/d-%j.out", SCRIPT],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert direct.returncode == 0, direct.stderr
    code = slurm_cluster.wait_job_end(direct.stdout.strip().split(";")[0], 120)
    out = "\n".join(p.read_text() for p in tmp_path.glob("d-*.out"))
    assert code == 2, out
    assert "export BIOTUNE_RUN_DIR=" in out and "step 1/2" not in out

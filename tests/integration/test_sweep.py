"""A three-variant sweep of tiny models end to end: ``sweep run --local``, ``status``, ``collect``, idempotent
re-runs and ``--failed``; then the same sweep through the local SLURM as job arrays, with one array task
pre-empted and requeued, split over MaxArraySize, and a re-submit that skips the done cells.

The models are tiny and barely trained: these tests check the machinery (cells, states, data sharing, the axis
really changing the data, files, SLURM), not learning; tests/integration/test_ablation_effect.py checks that an
ablation measures what it claims.
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
from biotune.testing.tiny import make_sample_llama
from biotune.train import checkpoint as layout

slurm_cluster = cluster_helpers.slurm_cluster

pytestmark = pytest.mark.slow

VARIANTS = ["base", "loo-group-qa", "loo-group-cls"]
QUICK = [
    "train.max_steps=4",
    "train.save_every=2",
    "train.log_every=1",
    "eval.max_examples=3",
    "eval.max_new_tokens=8",
    "tracking.wandb_mode=offline",
]


def _sweep_file(tmp: Path, name: str, keep: str = "predictions") -> Path:
    path = tmp / f"{name}.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "name": name,
                "base": str(REPO_ROOT / "configs" / "train" / "demo.yaml"),
                "budget": "fixed_samples",
                "controls": False,
                "keep": keep,
                "axes": [{"type": "leave_one_out", "over": "group", "only": ["qa", "cls"]}],
            }
        )
    )
    return path


def _biotune(*args: str, timeout: int = 900) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, timeout=timeout, drop=("SLURM_",))


def _status(sweep: Path, out: Path) -> dict[str, dict]:
    res = _biotune("sweep", "status", str(sweep), "--out", str(out), "--json")
    assert res.returncode == 0, res.stderr
    return {row["cell"]: row for row in json.loads(res.stdout)}


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_sample_llama(tmp_path_factory.mktemp("sweep_model") / "model")


@pytest.fixture(scope="module")
def local_sweep(model: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    tmp = tmp_path_factory.mktemp("sweep_local")
    sweep, out = _sweep_file(tmp, "three"), tmp / "out"
    res = _biotune(
        "sweep", "run", str(sweep), "--local", "--out", str(out), f"model.name_or_path={model}", *QUICK
    )
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-4000:]
    return {"sweep": sweep, "out": out, "stdout": res.stdout, "model": model}


def test_every_cell_runs_once_with_its_own_directory(local_sweep: dict) -> None:
    status = _status(local_sweep["sweep"], local_sweep["out"])
    assert sorted(status) == sorted(f"{v}-s1234" for v in VARIANTS)
    assert {row["state"] for row in status.values()} == {"done"}
    for cell in status:
        d = local_sweep["out"] / "cells" / cell
        assert (d / "eval" / "report.json").is_file() and (d / "cell.log").is_file()
        assert (
            not (d / "train" / "checkpoints").exists() and not (d / "train" / "hf").exists()
        )  # keep: predictions
    assert "[3/3]" in local_sweep["stdout"] and "train ..." in local_sweep["stdout"]  # progress is visible


def test_the_axis_changes_the_data_each_variant_trains_on(local_sweep: dict) -> None:
    builds = {}
    for v in VARIANTS:
        cfg = yaml.safe_load((local_sweep["out"] / "cells" / f"{v}-s1234" / "config.yaml").read_text())
        builds[v] = cfg
    assert builds["loo-group-qa"]["data"]["sources"]["pubmedqa"]["include"] is False
    assert builds["loo-group-qa"]["data"]["sources"]["bioasq_yesno"]["include"] is False
    assert builds["loo-group-cls"]["data"]["sources"]["hoc"]["include"] is False
    assert builds["base"]["data"]["sources"]["hoc"]["include"] is True
    # every variant is evaluated on the same sets, including the left-out ones
    assert len({tuple(cfg["eval"]["sources"]) for cfg in builds.values()}) == 1
    manifests = [json.loads(p.read_text()) for p in (local_sweep["out"] / "data").glob("*/manifest.json")]
    assert len(manifests) == 3  # three distinct mixtures, each built once into the shared cache
    realised = [{s: e["realised"] for s, e in m["sources"].items() if e["realised"]} for m in manifests]
    assert sum("pubmedqa" not in r and "hoc" in r for r in realised) == 1
    assert sum("hoc" not in r and "pubmedqa" in r for r in realised) == 1
    assert len({sum(r.values()) for r in realised}) == 1  # fixed_samples: same total


def test_rerun_skips_done_cells_and_failed_reruns_only_failed(local_sweep: dict) -> None:
    sweep, out, model = local_sweep["sweep"], local_sweep["out"], local_sweep["model"]
    again = _biotune(
        "sweep", "run", str(sweep), "--local", "--out", str(out), f"model.name_or_path={model}", *QUICK
    )
    assert again.returncode == 0 and "3 already done, running 0" in again.stdout
    victim = out / "cells" / "loo-group-cls-s1234"
    state = json.loads((victim / "state.json").read_text())
    (victim / "state.json").write_text(json.dumps({**state, "state": "failed", "stage": "eval"}))
    assert _status(sweep, out)["loo-group-cls-s1234"]["state"] == "failed"
    rerun = _biotune(
        "sweep",
        "run",
        str(sweep),
        "--local",
        "--failed",
        "--out",
        str(out),
        f"model.name_or_path={model}",
        *QUICK,
    )
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "running 1" in rerun.stdout and "loo-group-cls-s1234" in rerun.stdout
    status = _status(sweep, out)
    assert {row["state"] for row in status.values()} == {"done"}
    assert status["loo-group-cls-s1234"]["attempts"] == 2 and status["base-s1234"]["attempts"] == 1


def test_collect_writes_table_csv_parquet_and_plots(local_sweep: dict) -> None:
    import pyarrow.parquet as pq

    res = _biotune("sweep", "collect", str(local_sweep["sweep"]), "--out", str(local_sweep["out"]))
    assert res.returncode == 0, res.stderr[-3000:]
    results = local_sweep["out"] / "results"
    md = (results / "results.md").read_text()
    assert "Δ vs base" in md and "loo-group-qa" in md and "pubmedqa/test" in md
    table = pq.read_table(results / "results.parquet").to_pandas()
    assert set(table["variant"]) == set(VARIANTS)
    assert (results / "results.csv").read_text().count("\n") > 3 * 8
    assert list(results.glob("delta_heatmap_*.png"))
    assert list((results / "wandb").glob("offline-run-*"))  # the collect view in the sweep's wandb group


def test_wandb_view_groups_train_eval_and_collect_runs(local_sweep: dict) -> None:
    from biotune.testing.wandb_files import offline_runs

    test_collect_writes_table_csv_parquet_and_plots(local_sweep)  # the collect run exists even when run alone
    runs = {r.name: r for r in offline_runs(local_sweep["out"])}
    assert {r.group for r in runs.values()} == {"three"}
    train, ev = runs["three-loo-group-qa-s1234"], runs["three-loo-group-qa-s1234-eval"]
    assert (train.job_type, ev.job_type, runs["three-collect"].job_type) == ("train", "eval", "collect")
    for run in (train, ev):
        assert run.config["variant"] == "loo-group-qa" and run.config["axis_value"] == "qa"
        assert "pubmedqa" not in run.config["weights"] and abs(sum(run.config["weights"].values()) - 1) < 1e-9
    assert any(k.startswith("eval/pubmedqa/test/") for k in ev.summary)  # per-set scores in the eval summary


def test_status_and_collect_of_an_unknown_directory_fail_cleanly(local_sweep: dict, tmp_path: Path) -> None:
    for cmd in ("status", "collect"):
        res = _biotune("sweep", cmd, str(local_sweep["sweep"]), "--out", str(tmp_path / "nowhere"))
        assert res.returncode == 2 and "Traceback" not in res.stderr
        assert "sweep.json" in res.stderr and "sweep run" in res.stderr


# --------------------------------------------------------------------------------------------- SLURM


def _array_log(out: Path) -> str:
    return "\n".join(p.read_text(errors="replace") for p in sorted((out / "slurm" / "logs").glob("*.out")))


@pytest.mark.slurm
def test_slurm_arrays_preempt_requeue_and_resubmit(
    slurm_cluster: SlurmCluster, local_sweep: dict, tmp_path: Path
) -> None:
    model = local_sweep["model"]
    sweep, out = _sweep_file(tmp_path, "three"), tmp_path / "out"
    long_train = [*QUICK, "train.max_steps=200", "train.save_every=50"]  # long enough to be signalled mid-run
    res = _biotune(
        "sweep",
        "submit",
        str(sweep),
        "--out",
        str(out),
        "--max-concurrent",
        "2",
        "--nproc",
        "1",
        f"model.name_or_path={model}",
        *long_train,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    record = json.loads((out / "slurm" / "submissions.jsonl").read_text().splitlines()[-1])
    # MaxArraySize=2 in the test cluster: 3 data builds and 3 cells are each split into 2 arrays
    assert record["cells"] == 3 and record["data_tasks"] == 3 and len(record["jobs"]) == 4, record
    first_cell_job = record["jobs"][2]
    victim = out / "cells" / Path(record["cell_list"]).read_text().split()[0]
    metrics = victim / "train" / "metrics.jsonl"
    deadline = time.monotonic() + 600
    while not (metrics.is_file() and metrics.read_text().count("\n") >= 3):
        assert time.monotonic() < deadline, _array_log(out)[-4000:]
        time.sleep(0.5)
    sent_at = (victim / "train" / "consumed.jsonl").read_text().count("\n")
    # the batch shell of the array task ONLY: sweep.sh -> the cell's runner -> torchrun.sh -> torchrun -> ranks
    subprocess.run(["scancel", "--signal=USR1", "--batch", f"{first_cell_job}_0"], check=True)
    for job in record["jobs"]:
        deadline = time.monotonic() + 900
        while subprocess.run(["squeue", "-h", "-j", job], capture_output=True, text=True).stdout.strip():
            assert time.monotonic() < deadline, _array_log(out)[-4000:]
            time.sleep(1)
    log = _array_log(out)
    assert "pre-empted" in log and "requeueing this task only" in log, log[-4000:]
    status = _status(sweep, out)
    assert {row["state"] for row in status.values()} == {"done"}, status
    victim_state = json.loads((victim / "state.json").read_text())
    assert victim_state["attempts"] == 2  # the requeued task resumed the same cell
    # its cost counts both attempts: the pre-empted one and the resumed one (the last successful attempt alone is
    # train_seconds)
    assert victim_state["train_seconds_all_attempts"] > victim_state["train_seconds"] > 0, victim_state
    cell_log = (victim / "cell.log").read_text()
    assert "received SIGUSR1" in cell_log  # the trainer's own log: the signal reached it mid-run
    step = int(re.search(r"preempted at step (\d+): checkpoint saved", cell_log).group(1))  # type: ignore[union-attr]
    assert sent_at <= step < 200, (sent_at, step)
    assert f"resumed from {layout.checkpoint_dir(victim / 'train', step)} " in cell_log
    assert victim_state["data_dir"] and (Path(victim_state["data_dir"]) / "manifest.json").is_file()
    steps = [
        json.loads(line)["step"] for line in (victim / "train" / "consumed.jsonl").read_text().splitlines()
    ]
    assert steps == list(range(1, 201))  # resumed from the pre-emption checkpoint: no step lost or repeated
    again = _biotune(
        "sweep",
        "submit",
        str(sweep),
        "--out",
        str(out),
        f"model.name_or_path={model}",
        *long_train,
        timeout=120,
    )
    assert again.returncode == 0 and "nothing submitted" in again.stdout

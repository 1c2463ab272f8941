"""``biotune sweep run --local`` under signals, through the real CLI, with 2 trainer ranks (ZeRO-3 on CPU):

* SIGUSR1 or SIGTERM sent to the runner process ALONE reaches every trainer rank: the trainer's own log shows the
  signal a few steps after it was sent (not at the end), the checkpoint is that step's, the cell is ``preempted``,
  no other stage or cell starts, and the runner exits 75;
* a second runner on the same sweep exits 2 naming the first one's host and pid, and writes nothing;
* SIGKILL of the runner takes its whole stage down (no trainer survives), the cell then shows as
  ``failed (stale)``, and ``--failed`` re-runs it from the checkpoint its trainer saved on the way out.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from biotune.config import REPO_ROOT
from biotune.errors import EXIT_ERROR, EXIT_PREEMPTED
from biotune.testing.launch import run_cli
from biotune.testing.tiny import make_sample_llama
from biotune.train import checkpoint as layout

pytestmark = pytest.mark.slow

MAX_STEPS = 3000  # far more than a test waits for: a trainer that ignores the signal would run for minutes
LONG = [
    f"train.max_steps={MAX_STEPS}",
    "train.save_every=100000",
    "train.eval_every=0",
    "train.log_every=1",
    "eval.max_examples=3",
    "eval.max_new_tokens=8",
    "tracking.wandb_mode=offline",
]
START_TIMEOUT_S = 300


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_sample_llama(tmp_path_factory.mktemp("signals_model") / "model")


def _sweep_file(tmp: Path) -> Path:
    path = tmp / "sig.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "name": "sig",
                "base": str(REPO_ROOT / "configs" / "train" / "demo.yaml"),
                "budget": "fixed_samples",
                "controls": False,
                "keep": "checkpoint",
                "axes": [{"type": "leave_one_out", "over": "group", "only": ["qa"]}],
            }
        )
    )
    return path


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    env.update(
        WANDB_MODE="offline", DS_ACCELERATOR="cpu", TOKENIZERS_PARALLELISM="false", OMP_NUM_THREADS="1"
    )
    return env


def _start_runner(sweep: Path, out: Path, model: Path, log: Path) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "biotune.cli", "sweep", "run", str(sweep), "--local", "--out", str(out)]
    cmd += ["--nproc", "2", f"model.name_or_path={model}", *LONG]
    return subprocess.Popen(cmd, cwd=REPO_ROOT, env=_env(), stdout=log.open("w"), stderr=subprocess.STDOUT)


def _consumed_steps(cell: Path) -> int:
    path = cell / "train" / "consumed.jsonl"
    return len(path.read_text().splitlines()) if path.is_file() else 0


def _wait_training(runner: subprocess.Popen[bytes], cell: Path, log: Path, steps: int = 3) -> int:
    deadline = time.monotonic() + START_TIMEOUT_S
    while (n := _consumed_steps(cell)) < steps:
        assert runner.poll() is None, log.read_text()[-4000:]
        assert time.monotonic() < deadline, f"no training after {START_TIMEOUT_S}s\n{log.read_text()[-4000:]}"
        time.sleep(0.05)
    return n


def _status(sweep: Path, out: Path) -> dict[str, dict]:
    res = run_cli("sweep", "status", str(sweep), "--out", str(out), "--json")
    assert res.returncode == 0, res.stderr
    return {row["cell"]: row for row in json.loads(res.stdout)}


def _descendants(root: int) -> set[int]:
    """Every live process below ``root`` (from /proc: pid -> parent pid)."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] != "Z":
            parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = set(), {root}
    while frontier:
        frontier = {pid for pid, ppid in parents.items() if ppid in frontier} - found
        found |= frontier
    return found


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


@pytest.mark.parametrize("sig", [signal.SIGUSR1, signal.SIGTERM], ids=["SIGUSR1", "SIGTERM"])
def test_a_signal_to_the_runner_alone_reaches_every_trainer_rank(
    model: Path, tmp_path: Path, sig: signal.Signals
) -> None:
    sweep, out, log = _sweep_file(tmp_path), tmp_path / "out", tmp_path / "runner.log"
    runner = _start_runner(sweep, out, model, log)
    cell = out / "cells" / "base-s1234"
    try:
        _wait_training(runner, cell, log)
        if sig == signal.SIGUSR1:  # while it trains, a second runner on the same sweep is refused
            second = run_cli(
                "sweep", "run", str(sweep), "--local", "--out", str(out), f"model.name_or_path={model}", *LONG
            )
            assert second.returncode == EXIT_ERROR, second.stdout[-2000:] + second.stderr[-2000:]
            assert f"host {socket.gethostname()} pid {runner.pid}" in second.stderr, second.stderr
            assert "Traceback" not in second.stderr and "running" not in second.stdout
        sent_at = _consumed_steps(cell)
        runner.send_signal(sig)  # the runner process only: its stages run in sessions of their own
        assert runner.wait(timeout=300) == EXIT_PREEMPTED, log.read_text()[-4000:]
    finally:
        if runner.poll() is None:
            runner.kill()
    cell_log = (cell / "cell.log").read_text()
    assert f"received {sig.name}" in cell_log, cell_log[-4000:]  # the trainer's own log line
    step = int(re.search(r"preempted at step (\d+): checkpoint saved", cell_log).group(1))  # type: ignore[union-attr]
    assert sent_at <= step < sent_at + 200 and step < MAX_STEPS // 2, (sent_at, step)
    assert (layout.checkpoint_dir(cell / "train", step) / "COMPLETED").is_file()
    assert _consumed_steps(cell) == step
    assert "launch/torchrun.sh" in cell_log and "forwarded to the trainer" in cell_log
    state = json.loads((cell / "state.json").read_text())
    assert (state["state"], state["stage"], state["signal"]) == ("preempted", "train", sig.name)
    assert (
        state["data_dir"] and (Path(state["data_dir"]) / "manifest.json").is_file()
    )  # recorded, not scanned
    assert "base-s1234: eval =====" not in cell_log  # no stage after the signal
    assert not (out / "cells" / "loo-group-qa-s1234" / "state.json").exists()  # no cell after the signal
    status = _status(sweep, out)
    assert status["base-s1234"]["state"] == "preempted" and status["loo-group-qa-s1234"]["state"] == "missing"


def test_sigkill_of_the_runner_leaves_no_trainer_and_a_stale_cell_that_failed_reruns(
    model: Path, tmp_path: Path
) -> None:
    sweep, out, log = _sweep_file(tmp_path), tmp_path / "out", tmp_path / "runner.log"
    runner = _start_runner(sweep, out, model, log)
    cell = out / "cells" / "base-s1234"
    try:
        _wait_training(runner, cell, log)
        tree = _descendants(runner.pid)
        assert len(tree) >= 4, tree  # bash torchrun.sh -> torchrun -> 2 trainer ranks
        runner.send_signal(signal.SIGKILL)
        runner.wait()
    finally:
        if runner.poll() is None:
            runner.kill()
    deadline = time.monotonic() + 180
    while survivors := {pid for pid in tree if _alive(pid)}:
        assert time.monotonic() < deadline, f"processes survived their runner: {survivors}"
        time.sleep(0.2)
    cell_log = (cell / "cell.log").read_text()
    assert (
        "received SIGTERM" in cell_log
    )  # the parent-death signal, forwarded to the ranks: they checkpointed
    step = int(re.search(r"preempted at step (\d+): checkpoint saved", cell_log).group(1))  # type: ignore[union-attr]
    assert (
        json.loads((cell / "state.json").read_text())["state"] == "running"
    )  # the runner had no time to say
    status = _status(sweep, out)
    assert (status["base-s1234"]["state"], status["base-s1234"]["note"]) == ("failed", "stale")
    table = run_cli("sweep", "status", str(sweep), "--out", str(out))
    assert "| base-s1234 | failed (stale) |" in table.stdout, table.stdout

    short = [o if not o.startswith("train.max_steps=") else f"train.max_steps={step + 2}" for o in LONG]
    rerun = run_cli(
        "sweep",
        "run",
        str(sweep),
        "--local",
        "--failed",
        "--nproc",
        "2",
        "--out",
        str(out),
        f"model.name_or_path={model}",
        *short,
    )
    assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
    assert "running 1" in rerun.stdout
    status = _status(sweep, out)
    assert status["base-s1234"]["state"] == "done" and status["base-s1234"]["attempts"] == 2
    assert status["loo-group-qa-s1234"]["state"] == "missing"  # --failed ran only the stale cell
    assert f"resumed from {layout.checkpoint_dir(cell / 'train', step)} " in (cell / "cell.log").read_text()

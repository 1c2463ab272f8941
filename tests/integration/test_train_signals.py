"""SIGUSR1/SIGTERM: finish the step, save a COMPLETED checkpoint, exit with EXIT_PREEMPTED (75)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from train_support import REPO_ROOT, make_packed_dataset, read_jsonl, train_env, write_config

from biotune.errors import EXIT_PREEMPTED
from biotune.train import checkpoint as layout

pytestmark = pytest.mark.slow


def test_sigusr1_saves_checkpoint_and_exits_75(
    tmp_path: Path, tiny_model: Path, tiny_tokenizer, corpora: Path
) -> None:
    data = make_packed_dataset(tmp_path / "data", corpora, tiny_tokenizer)
    out = tmp_path / "run"
    cfg = write_config(
        tmp_path / "run.yaml", tiny_model, data, out, max_steps=100000, save_every=100000, log_every=50
    )
    cmd = [sys.executable, "-m", "biotune.cli", "train", str(cfg)]
    proc = subprocess.Popen(
        cmd, cwd=REPO_ROOT, env=train_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    consumed = out / "consumed.jsonl"
    deadline = time.monotonic() + 240
    while not (consumed.is_file() and len(consumed.read_text().splitlines()) >= 3):
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "training never started"
        time.sleep(0.05)
    proc.send_signal(signal.SIGUSR1)
    _, stderr = proc.communicate(timeout=240)
    assert proc.returncode == EXIT_PREEMPTED, stderr[-3000:]
    assert "received SIGUSR1" in stderr
    ckpts = [p for p in (out / "checkpoints").iterdir() if (p / "COMPLETED").is_file()]
    assert len(ckpts) == 1
    state = json.loads((ckpts[0] / "trainer_state.json").read_text())
    assert ckpts[0].name == f"step-{state['step']:08d}"
    assert state["step"] >= 3 and len(read_jsonl(consumed)) == state["step"]
    assert not layout.export_dir(out).exists(), "a preempted run must not export"


@pytest.mark.parametrize("sig", [signal.SIGUSR1, signal.SIGTERM], ids=["SIGUSR1", "SIGTERM"])
def test_a_signal_to_the_launcher_shell_alone_reaches_both_ranks(
    tmp_path: Path, tiny_model: Path, tiny_tokenizer, corpora: Path, sig: signal.Signals
) -> None:
    """``launch/torchrun.sh`` (what SLURM's ``--signal=B:USR1`` and the sweep runner reach) gets the signal, not
    torchrun or the workers: both ranks must still see it mid-run, save that step, and the shell exits 75."""
    data = make_packed_dataset(tmp_path / "data", corpora, tiny_tokenizer)
    out = tmp_path / "run"
    cfg = write_config(
        tmp_path / "run.yaml", tiny_model, data, out, max_steps=100000, save_every=100000, log_every=50
    )
    env = {**train_env(), "BIOTUNE_NPROC_PER_NODE": "2"}
    proc = subprocess.Popen(
        ["bash", str(REPO_ROOT / "launch" / "torchrun.sh"), str(cfg)],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # nothing else in the group: only the shell is signalled
    )
    consumed = out / "consumed.jsonl"
    deadline = time.monotonic() + 240
    while not (consumed.is_file() and len(consumed.read_text().splitlines()) >= 3):
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "training never started"
        time.sleep(0.05)
    sent_at = len(consumed.read_text().splitlines())
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=240)
    assert proc.returncode == EXIT_PREEMPTED, stderr[-3000:]
    assert "[rank0]" in stderr and stderr.count(f"received {sig.name}") >= 2, stderr[-3000:]
    ckpt = layout.latest_completed(out)
    assert ckpt is not None and len(layout.list_checkpoints(out)) == 1
    state = json.loads((ckpt / "trainer_state.json").read_text())
    assert sent_at <= state["step"] < sent_at + 500 and len(read_jsonl(consumed)) == state["step"]

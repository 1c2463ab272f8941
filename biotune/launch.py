"""Local launches: the environment of a launched stage, ``torchrun`` on this machine, and children that die
with their parent. Used by ``biotune sweep run --local`` / ``sweep cell``, the demo, the benchmarks and the tests.

``torchrun`` runs ``biotune train`` (or any ``biotune.cli`` subcommand) on this machine's CPUs or GPUs with the
venv first on PATH (DeepSpeed's JIT ops rebuild whenever the ninja on PATH changes) and a free rendezvous port.
:func:`die_with_parent` is a ``preexec_fn`` that asks the kernel to send a child SIGTERM when the process that
started it dies (Linux ``prctl(PR_SET_PDEATHSIG)``), so a killed sweep runner never leaves a trainer behind: the
launcher forwards that SIGTERM to the trainer ranks, which checkpoint and exit.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from biotune.config import REPO_ROOT

#: Launcher variables that must not leak from an outer job into a local launch.
_LAUNCHER_VARS = (
    "RANK",
    "LOCAL_RANK",
    "WORLD_SIZE",
    "LOCAL_WORLD_SIZE",
    "MASTER_ADDR",
    "MASTER_PORT",
    "SLURM_PROCID",
    "SLURM_NTASKS",
    "SLURM_LOCALID",
    "SLURM_NODEID",
)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def launch_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for a local launch: venv first on PATH, CPU accelerator without CUDA, offline wandb."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("BIOTUNE_VENV", sys.prefix)  # launch/torchrun.sh runs the same Python environment as we do
    env.setdefault("WANDB_MODE", "offline")
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    env.setdefault("PYTHONUNBUFFERED", "1")
    if "DS_ACCELERATOR" not in env and not _cuda_available():
        env["DS_ACCELERATOR"] = "cpu"
    for key in _LAUNCHER_VARS:
        env.pop(key, None)
    env.update(extra or {})
    return env


def _cuda_available() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except ImportError:
        return False


def torchrun_cmd(nproc: int, args: Sequence[str]) -> list[str]:
    """``python -m torch.distributed.run --nproc_per_node N ... -m biotune.cli ARGS``."""
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        f"--nproc_per_node={nproc}",
        "--master_addr=127.0.0.1",
        f"--master_port={free_port()}",
        "-m",
        "biotune.cli",
        *args,
    ]


def torchrun(
    nproc: int,
    args: Sequence[str],
    env_extra: dict[str, str] | None = None,
    capture: bool = False,
    timeout: float | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``biotune ARGS`` under torchrun with ``nproc`` local processes and wait for it."""
    return subprocess.run(
        torchrun_cmd(nproc, args),
        cwd=REPO_ROOT,
        env=launch_env(env_extra),
        check=False,
        capture_output=capture,
        text=True,
        timeout=timeout,
    )


#: ``prctl`` option that sets the signal a process gets when its parent dies (linux/prctl.h).
_PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int, sig: int = signal.SIGTERM) -> None:
    """In a freshly forked child (``preexec_fn``): get ``sig`` when ``parent_pid`` dies; exit if it already has.

    Linux only; elsewhere this does nothing (the runner's own signal handlers still stop the stage).
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent_pid:  # the parent died between fork and prctl: nobody would signal us
        os.kill(os.getpid(), sig)

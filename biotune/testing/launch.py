"""Local launches shared by the tests, the demo, the benchmarks and ``biotune sweep run --local``.

``torchrun`` runs ``biotune train`` (or any ``biotune.cli`` subcommand) on this machine's CPUs or GPUs with the
venv first on PATH (DeepSpeed's JIT ops rebuild whenever the ninja on PATH changes) and a free rendezvous port.
"""

from __future__ import annotations

import os
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


def run_cli(
    *args: str, timeout: int = 900, drop: tuple[str, ...] = ("SLURM_",)
) -> subprocess.CompletedProcess[str]:
    """``python -m biotune.cli ARGS`` from the repository root on CPU (offline wandb, one thread), with the
    environment variables starting with any of ``drop`` removed (a test inside a SLURM job must not leak it)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env.update(
        WANDB_MODE="offline", DS_ACCELERATOR="cpu", TOKENIZERS_PARALLELISM="false", OMP_NUM_THREADS="1"
    )
    return subprocess.run(
        [sys.executable, "-m", "biotune.cli", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )

"""Launch helpers for the tests: the production ones (:mod:`biotune.launch`) and ``run_cli``."""

from __future__ import annotations

import os
import subprocess
import sys

from biotune.config import REPO_ROOT
from biotune.launch import free_port, launch_env, torchrun, torchrun_cmd

__all__ = ["free_port", "launch_env", "run_cli", "torchrun", "torchrun_cmd"]


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

"""The distributed environment: the only module that reads torchrun/SLURM variables.

Launchers set the rank layout in the environment: torchrun and the DeepSpeed launcher export
``RANK/LOCAL_RANK/WORLD_SIZE/MASTER_ADDR/MASTER_PORT``; ``srun`` without torchrun exports
``SLURM_PROCID/SLURM_LOCALID/SLURM_NTASKS`` (``MASTER_ADDR``/``MASTER_PORT`` come from the sbatch script).
A plain ``python``/``biotune train`` call is a world of one. This module also owns the process group, seeding,
rank-0 logging and :func:`rank_zero_first`.
"""

from __future__ import annotations

import logging
import os
import random
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from biotune.errors import LaunchError

log = logging.getLogger(__name__)

DEFAULT_MASTER_ADDR = "127.0.0.1"
DEFAULT_MASTER_PORT = "29500"


@dataclass(frozen=True)
class DistEnv:
    """Where this process sits in the job."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    master_addr: str = DEFAULT_MASTER_ADDR
    master_port: str = DEFAULT_MASTER_PORT
    launcher: str = "single"
    """``torchrun`` (also the DeepSpeed launcher), ``slurm`` (srun without torchrun) or ``single``."""

    @property
    def is_rank_zero(self) -> bool:
        """True on the global rank 0 process."""
        return self.rank == 0


def _int_env(env: dict[str, str], key: str) -> int:
    try:
        return int(env[key])
    except ValueError as err:
        raise LaunchError(
            f"environment variable {key}={env[key]!r} is not an integer; "
            "fix the launcher (torchrun/srun) line that sets it"
        ) from err


def read_env(env: dict[str, str] | None = None) -> DistEnv:
    """Read the rank layout from torchrun variables, else SLURM's, else a world of one."""
    env = dict(os.environ if env is None else env)
    addr = env.get("MASTER_ADDR", DEFAULT_MASTER_ADDR)
    port = env.get("MASTER_PORT", DEFAULT_MASTER_PORT)
    if "RANK" in env and "WORLD_SIZE" in env:
        local = _int_env(env, "LOCAL_RANK") if "LOCAL_RANK" in env else 0
        out = DistEnv(_int_env(env, "RANK"), local, _int_env(env, "WORLD_SIZE"), addr, port, "torchrun")
    elif "SLURM_PROCID" in env and "SLURM_NTASKS" in env:
        if "MASTER_ADDR" not in env:
            raise LaunchError(
                "launched by srun without torchrun but MASTER_ADDR is not set; export MASTER_ADDR "
                "(the first node's NodeAddr) and MASTER_PORT in the sbatch script before srun"
            )
        local = _int_env(env, "SLURM_LOCALID") if "SLURM_LOCALID" in env else 0
        out = DistEnv(
            _int_env(env, "SLURM_PROCID"), local, _int_env(env, "SLURM_NTASKS"), addr, port, "slurm"
        )
    else:
        return DistEnv()
    if not 0 <= out.rank < out.world_size:
        raise LaunchError(
            f"rank {out.rank} is outside world size {out.world_size}; check the launcher's "
            "--nproc_per_node/--nnodes or srun --ntasks"
        )
    return out


#: Minutes a collective may take before the process group aborts (ZeRO-3 checkpoint gathers of a 70B model are
#: slow); ``BIOTUNE_COLLECTIVE_TIMEOUT_MIN`` overrides it. ``launch/defaults.sh`` holds the same value for the shell.
DEFAULT_COLLECTIVE_TIMEOUT_MIN = 60


def collective_timeout_min(env: dict[str, str] | None = None) -> int:
    """The collective timeout in minutes: ``BIOTUNE_COLLECTIVE_TIMEOUT_MIN``, else the default."""
    env = os.environ if env is None else env
    return _int_env(
        {"BIOTUNE_COLLECTIVE_TIMEOUT_MIN": str(DEFAULT_COLLECTIVE_TIMEOUT_MIN), **env},
        "BIOTUNE_COLLECTIVE_TIMEOUT_MIN",
    )


def init_process_group(denv: DistEnv) -> None:
    """Create the default process group (nccl on CUDA, gloo on CPU), also for a world of one."""
    if dist.is_initialized():
        return
    os.environ.update(
        {
            "RANK": str(denv.rank),
            "LOCAL_RANK": str(denv.local_rank),
            "WORLD_SIZE": str(denv.world_size),
            "MASTER_ADDR": denv.master_addr,
            "MASTER_PORT": denv.master_port,
        }
    )
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(denv.local_rank)
    timeout = timedelta(minutes=collective_timeout_min())
    dist.init_process_group(backend=backend, rank=denv.rank, world_size=denv.world_size, timeout=timeout)
    log.info(
        "process group: backend=%s world_size=%d launcher=%s timeout=%s",
        backend,
        denv.world_size,
        denv.launcher,
        timeout,
    )


def destroy_process_group() -> None:
    """Tear down the default process group if one exists."""
    if dist.is_initialized():
        dist.destroy_process_group()


def rank() -> int:
    """The global rank (0 without a process group)."""
    return dist.get_rank() if dist.is_initialized() else 0


def world_size() -> int:
    """The number of processes (1 without a process group)."""
    return dist.get_world_size() if dist.is_initialized() else 1


def is_rank_zero() -> bool:
    """True on global rank 0 (and in a process without a process group)."""
    return rank() == 0


def barrier() -> None:
    """Wait for every rank (no-op without a process group)."""
    if dist.is_initialized() and world_size() > 1:
        dist.barrier()


@contextmanager
def rank_zero_first() -> Iterator[None]:
    """Run the body on rank 0 first, then on the other ranks (e.g. build a cached dataset once)."""
    if not is_rank_zero():
        barrier()
    try:
        yield
    finally:
        if is_rank_zero():
            barrier()


def all_gather_objects(obj: Any) -> list[Any]:
    """Every rank's ``obj``, in rank order (a one-item list without a process group)."""
    if not dist.is_initialized() or world_size() == 1:
        return [obj]
    out: list[Any] = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


def all_reduce_sum(values: list[float]) -> list[float]:
    """Element-wise sum of ``values`` over ranks (float64 on CPU; one collective)."""
    if not dist.is_initialized() or world_size() == 1:
        return list(values)
    device = (
        torch.device("cuda", torch.cuda.current_device())
        if dist.get_backend() == "nccl"
        else torch.device("cpu")
    )
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t.cpu().tolist()


def seed_everything(seed: int, rank_offset: int = 0) -> None:
    """Seed python, numpy and torch; ``rank_offset`` makes per-rank streams differ (e.g. dropout)."""
    s = seed + rank_offset
    random.seed(s)
    np.random.seed(s % 2**32)
    torch.manual_seed(s)


def rng_state() -> dict[str, Any]:
    """This process's RNG states as plain JSON-able values (lists and numbers), for exact resume."""
    version, internal, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": [version, list(internal), gauss],
        "numpy": [name, keys.tolist(), int(pos), int(has_gauss), float(cached)],
        "torch": torch.get_rng_state().tolist(),
    }
    if torch.cuda.is_available():
        state["cuda"] = [s.tolist() for s in torch.cuda.get_rng_state_all()]
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` returned."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(torch.tensor(state["torch"], dtype=torch.uint8))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([torch.tensor(s, dtype=torch.uint8) for s in state["cuda"]])


class _RankZeroFilter(logging.Filter):
    def __init__(self, rank: int) -> None:
        super().__init__()
        self.rank = rank

    def filter(self, record: logging.LogRecord) -> bool:
        return self.rank == 0 or record.levelno >= logging.WARNING


def setup_logging(denv: DistEnv, level: int = logging.INFO) -> None:
    """INFO from rank 0 only; warnings and errors from every rank, prefixed with the rank."""
    fmt = f"%(asctime)s [rank{denv.rank}] %(levelname)s %(name)s: %(message)s"
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=level, format=fmt, datefmt="%H:%M:%S")
    for handler in root.handlers:
        handler.setFormatter(logging.Formatter(fmt, datefmt="%H:%M:%S"))
        handler.addFilter(_RankZeroFilter(denv.rank))


def fault_kill_step(env: dict[str, str] | None = None) -> tuple[int, int] | None:
    """``(step, rank)`` from ``BIOTUNE_FAULT_KILL_AT_STEP=step[:rank]``: SIGKILL that rank after that step.

    A fault-injection hook for the crash/resume test (never set in real runs).
    """
    value = (os.environ if env is None else env).get("BIOTUNE_FAULT_KILL_AT_STEP", "")
    if not value:
        return None
    step, _, which = value.partition(":")
    return int(step), int(which or 0)

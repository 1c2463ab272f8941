"""``biotune sweep submit``: a sweep's cells as SLURM job arrays, chained by dependencies, never blocking.

Two arrays per submission, both running ``slurm/sweep.sh``:

1. ``data``: one CPU task per distinct content hash among the cells to run (variants with identical data build
   once, into the sweep's shared cache; a fidelity with another model, hence tokenizer, builds its own);
2. ``cell``: one task per cell (the data build again, a cache hit that records the cell's dataset, then train on
   the GPU nodes, evaluate, apply the disk policy), after the data array succeeded (``--dependency=afterok``),
   at most ``--max-concurrent`` at a time (``%N``).

An array larger than the cluster's ``MaxArraySize`` is split into several arrays over the same task list; with
``--max-concurrent`` they are chained (each waits for the previous one to end), so the throttle holds overall. Each
task finds its cell as line ``offset + SLURM_ARRAY_TASK_ID`` of a task list written under ``<sweep>/slurm/``.
Pre-emption: the batch shell forwards SIGUSR1 to the cell's runner, which forwards it down to every trainer rank
(see :mod:`biotune.sweep.runner`); the ranks checkpoint, the task requeues only itself
(``scontrol requeue <array job>_<task>``) and the requeued task resumes the same cell from its checkpoint.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

from biotune.config import REPO_ROOT
from biotune.errors import ConfigError, LaunchError, Problem
from biotune.io import atomic_write_text
from biotune.sweep import runner
from biotune.sweep.variants import Cell

SCRIPT = REPO_ROOT / "slurm" / "sweep.sh"
DEFAULT_MAX_ARRAY_SIZE = 1001  # SLURM's default MaxArraySize


@dataclass
class Resources:
    """What each array task asks SLURM for (``None`` leaves the script's ``#SBATCH`` default)."""

    partition: str | None = None
    nodes: int = 1
    gpus_per_node: int | None = None
    cpus_per_task: int | None = None
    time: str | None = None
    max_concurrent: int | None = None
    nproc: int | None = None
    """Training processes per node (default: one per GPU, ``launch.cpu_procs_per_node`` on CPU nodes)."""
    data_partition: str | None = None


def max_array_size() -> int:
    """The cluster's MaxArraySize (``scontrol show config``), or SLURM's default when it cannot be read."""
    try:
        out = subprocess.run(
            ["scontrol", "show", "config"], capture_output=True, text=True, timeout=30
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return DEFAULT_MAX_ARRAY_SIZE
    match = re.search(r"MaxArraySize\s*=\s*(\d+)", out)
    return int(match.group(1)) if match else DEFAULT_MAX_ARRAY_SIZE


def chunks(n: int, size: int) -> list[tuple[int, int]]:
    """``(offset, count)`` pieces of ``n`` tasks, each at most ``size`` (array indices stay below MaxArraySize)."""
    return [(start, min(size, n - start)) for start in range(0, n, size)]


@dataclass(frozen=True)
class Array:
    """One ``sbatch --array`` of a kind (data or cell): its slice of the task list and how it is throttled."""

    offset: int
    """Line of the task list that is its task 0."""
    count: int
    array: str
    """The ``--array`` value, e.g. ``0-1000%4``."""
    after_previous: bool
    """Starts only when the previous array of the same kind has ended (``afterany``)."""


def arrays(n: int, limit: int, max_concurrent: int | None) -> list[Array]:
    """The arrays of ``n`` tasks split at ``limit`` (MaxArraySize); with a throttle they are chained.

    ``%N`` throttles one array only, so split arrays would run N tasks each at once: with ``max_concurrent``
    each array after the first waits for the previous one (``afterany``), and at most N tasks run at a time.
    """
    throttle = f"%{max_concurrent}" if max_concurrent else ""
    return [
        Array(offset, count, f"0-{count - 1}{throttle}", bool(max_concurrent) and index > 0)
        for index, (offset, count) in enumerate(chunks(n, limit))
    ]


def dependency(after_ok: Sequence[str], after_any: str | None) -> list[str]:
    """The ``--dependency`` argument: all of ``after_ok`` succeeded and ``after_any`` ended (none if neither)."""
    parts = ([f"afterok:{':'.join(after_ok)}"] if after_ok else []) + (
        [f"afterany:{after_any}"] if after_any else []
    )
    return [f"--dependency={','.join(parts)}"] if parts else []


def require_sbatch() -> None:
    """LaunchError unless ``sbatch`` is on PATH (checked before anything of the sweep is written)."""
    if shutil.which("sbatch") is None:
        raise LaunchError(
            "sbatch not found: `biotune sweep submit` needs a SLURM cluster; run the sweep on this "
            "machine with `biotune sweep run SWEEP.yaml --local`"
        )


def _sbatch(args: Sequence[str]) -> str:
    require_sbatch()
    # the tasks run the virtualenv that submitted them (sbatch exports this environment to the job)
    env = {**os.environ, "BIOTUNE_VENV": os.environ.get("BIOTUNE_VENV") or sys.prefix}
    proc = subprocess.run(
        ["sbatch", "--parsable", *args], capture_output=True, text=True, cwd=REPO_ROOT, env=env
    )
    if proc.returncode != 0:
        raise LaunchError(
            f"sbatch failed ({proc.returncode}): {proc.stderr.strip()}\n  command: sbatch " + " ".join(args)
        )
    return proc.stdout.strip().split(";")[0]


def _tokenizer_overrides(sweep: runner.Sweep, cell: Cell) -> tuple[str, ...]:
    """The overrides of the cell's fidelity that may change the tokenizer (and so the built data): a fidelity
    with another model builds its own data; the others share the variant's build."""
    fid = sweep.spec.fidelities.get(cell.fidelity)
    return tuple(o for o in fid.overrides if o.startswith(("model.", "data."))) if fid is not None else ()


def _write_list(sweep: runner.Sweep, kind: str, cells: Sequence[Cell]) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = sweep.out / runner.SLURM_DIR / f"{kind}-{stamp}-{len(cells)}.txt"
    atomic_write_text(path, "".join(c.name + "\n" for c in cells))
    return path


def _common(sweep: runner.Sweep, name: str, res: Resources) -> list[str]:
    logs = sweep.out / runner.SLURM_DIR / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    args = [f"--job-name={name}", f"--output={logs}/%x-%A_%a.out", "--open-mode=append"]
    if res.time:
        args.append(f"--time={res.time}")
    return args


def submit(
    sweep: runner.Sweep, res: Resources, failed_only: bool = False, only: Collection[str] | None = None
) -> dict[str, object]:
    """Submit the cells that are not done (or only the failed ones; ``only``: among these names, a stage's);
    returns what was submitted."""
    if res.nodes < 1 or (res.max_concurrent is not None and res.max_concurrent < 1):
        raise ConfigError(
            [Problem("--nodes/--max-concurrent", "must be at least 1", "give positive numbers")]
        )
    require_sbatch()  # before prepare: a machine without SLURM gets no sweep directory
    runner.prepare(sweep)
    todo = runner.select(sweep, failed_only, only)
    if not todo:
        return {"cells": 0, "jobs": []}
    by_hash: dict[tuple[str, tuple[str, ...]], Cell] = {}
    for c in todo:
        by_hash.setdefault((sweep.variant(c.variant).content_hash, _tokenizer_overrides(sweep, c)), c)
    limit = max_array_size()
    sweep_dir = str(sweep.out)
    jobs: list[str] = []
    data_list = _write_list(sweep, "data", list(by_hash.values()))
    data_jobs: list[str] = []
    for part in arrays(len(by_hash), limit, res.max_concurrent):
        args = [
            *_common(sweep, f"{sweep.spec.name}-data", res),
            f"--array={part.array}",
            "--nodes=1",
            "--ntasks=1",
            *dependency([], data_jobs[-1] if part.after_previous else None),
        ]
        if res.data_partition or res.partition:
            args.append(f"--partition={res.data_partition or res.partition}")
        data_jobs.append(_sbatch([*args, str(SCRIPT), "data", sweep_dir, str(data_list), str(part.offset)]))
    jobs += data_jobs
    cell_list = _write_list(sweep, "cells", todo)
    for part in arrays(len(todo), limit, res.max_concurrent):
        args = [
            *_common(sweep, f"{sweep.spec.name}-cell", res),
            f"--array={part.array}",
            f"--nodes={res.nodes}",
            "--ntasks-per-node=1",
            *dependency(data_jobs, jobs[-1] if part.after_previous else None),
        ]
        if res.partition:
            args.append(f"--partition={res.partition}")
        if res.gpus_per_node:
            args.append(f"--gpus-per-node={res.gpus_per_node}")
        if res.cpus_per_task:
            args.append(f"--cpus-per-task={res.cpus_per_task}")
        extra = [str(res.nproc)] if res.nproc else []
        jobs.append(
            _sbatch([*args, str(SCRIPT), "cell", sweep_dir, str(cell_list), str(part.offset), *extra])
        )
    record = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "cells": len(todo),
        "data_tasks": len(by_hash),
        "jobs": jobs,
        "data_list": str(data_list),
        "cell_list": str(cell_list),
    }
    with (sweep.out / runner.SLURM_DIR / "submissions.jsonl").open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(record) + "\n")
    return record

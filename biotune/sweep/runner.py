"""Sweep cells on disk: prepare them, run one, run them all locally, report their state, feed ``collect``.

A sweep directory (``--out``, default ``runs/sweeps/<name>``) is owned by this module::

    sweep.json                 the expanded sweep: variants (counts, weights, content hash) and cells
    data/                      the shared data-build cache (``data.out_dir``): identical data builds once
    anchors.json               the target's anchors chosen from a proxy's results (``--stage target``)
    cells/<variant>-s<seed>/   one directory per cell, never shared (``<fidelity>.<variant>-s<seed>`` in a
                               sweep with ``fidelities:``, :func:`biotune.sweep.fidelity.cell_name`)
        config.yaml            the cell's full run config (what every stage of the cell reads)
        state.json             state (biotune.sweep.state.CellState), stage, attempts, log, data_dir
        .cell.lock             held by whoever runs the cell (a flock: released when its holder dies)
        data_build.json        the dataset directory ``data build --record`` wrote for this cell
        cell.log               the output of every stage, appended across attempts
        train/                 train.output_dir (checkpoints, metrics.jsonl, hf/ export)
        eval/                  eval.output_dir (report.json, predictions/<source>__<split>.jsonl)
    results/                   what ``biotune sweep collect`` writes
    slurm/                     array task lists and the submissions log (``biotune sweep submit``)
    .runner.lock               held by the one ``sweep run --local`` working on this sweep

A cell is *done* when its state says so and its evaluation report exists; a cell with no state file is
*missing*; a ``running`` cell whose lock nobody holds is *failed (stale)* (see :mod:`biotune.sweep.state`).
Re-running skips done cells; ``--failed`` re-runs only failed ones. Every stage of a cell runs the same command
on a laptop and in a SLURM array task (``slurm/sweep.sh``): the training stage goes through
``launch/torchrun.sh`` (one node) or ``srun launch/srun_node.sh`` (several), so pre-emption (SIGUSR1 ->
checkpoint -> exit 75 -> requeue -> ``train.resume=auto``) works the same as for a single run.

Signals: SIGUSR1 or SIGTERM sent to the runner alone reaches the trainer ranks (runner -> launcher -> torchrun
-> workers); the cell becomes ``preempted`` and the runner exits 75 without starting another stage. Every stage
runs with a parent-death signal (SIGTERM), so a runner killed with SIGKILL takes its stage down with it.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from biotune import config
from biotune.config import REPO_ROOT, RunConfig
from biotune.data.cli import read_build_record
from biotune.data.dataset import MANIFEST_FILE, Manifest
from biotune.errors import EXIT_PREEMPTED, ConfigError, DataError, Problem, shown
from biotune.eval.checkpoint_plan import apply_sweep_default
from biotune.eval.layout import report_path
from biotune.eval.sets import plan_sources
from biotune.io import atomic_write_json, atomic_write_text, read_json
from biotune.launch import die_with_parent, launch_env
from biotune.sweep import variants as vr
from biotune.sweep.fidelity import anchors_from_results, read_anchors
from biotune.sweep.results import CellResult, process_seconds
from biotune.sweep.spec import BASE, CONTROL, SweepSpec, load_sweep
from biotune.sweep.state import (
    CELL_LOCK_FILE,
    SWEEP_LOCK_FILE,
    CellState,
    Lock,
    Observed,
    observe,
    read_record,
    write_record,
)
from biotune.train import checkpoint as layout
from biotune.versions import library_versions

log = logging.getLogger(__name__)

SWEEP_FILE = "sweep.json"
DATA_DIR = "data"
CELLS_DIR = "cells"
RESULTS_DIR = "results"
SLURM_DIR = "slurm"
CELL_CONFIG = "config.yaml"
CELL_LOG = "cell.log"
CELL_BUILD_RECORD = "data_build.json"
TRAIN_DIR = "train"
EVAL_DIR = "eval"

#: The stages of a cell, in order.
STAGES = ("data", "train", "eval", "finish")


@dataclass
class Sweep:
    """An expanded sweep bound to its directory."""

    spec: SweepSpec
    path: Path
    """The sweep YAML."""
    out: Path
    """The sweep directory."""
    variants: list[vr.Variant]
    cells: list[vr.Cell]
    cli_overrides: tuple[str, ...] = ()
    """Overrides given on the command line (kept in ``sweep.json`` so every later command sees them)."""

    def cell_dir(self, name: str) -> Path:
        """The directory of cell ``name``."""
        return self.out / CELLS_DIR / name

    def cell(self, name: str) -> vr.Cell:
        """The cell called ``name``; a ConfigError listing the cells otherwise."""
        for c in self.cells:
            if c.name == name:
                return c
        raise ConfigError(
            [
                Problem(
                    "CELL",
                    f"no cell '{name}' in sweep {self.spec.name}",
                    f"use one of: {', '.join(c.name for c in self.cells)}",
                )
            ],
            self.path,
        )

    def variant(self, name: str) -> vr.Variant:
        """The variant called ``name``."""
        return next(v for v in self.variants if v.name == name)


def default_out(spec: SweepSpec) -> Path:
    """Where a sweep lives when ``--out`` is not given: ``runs/sweeps/<name>`` under the working directory."""
    return Path("runs") / "sweeps" / spec.name


def load(
    path: str | Path,
    out: str | Path | None = None,
    available: dict[str, int] | None = None,
    overrides: Sequence[str] = (),
) -> Sweep:
    """Load and expand a sweep YAML (counting the corpora unless ``available`` is given).

    ``overrides`` (``key=value``, from the command line) apply to every variant, after the sweep file's own.
    """
    spec = with_overrides(load_sweep(path), overrides)
    available = available if available is not None else vr.count_available(spec)
    needs_tokens = any(spec.budget_of(a) == "fixed_tokens" for a in spec.axes)
    tokens = vr.measure_tokens_per_sample(spec) if needs_tokens else None
    variants = vr.expand(spec, available, tokens)
    out = Path(out or default_out(spec)).resolve()
    anchors = read_anchors(out).get("anchors", []) if anchors_from_results(spec.fidelities) else []
    return Sweep(
        spec, Path(path).resolve(), out, variants, vr.cells(spec, variants, anchors), tuple(overrides)
    )


def with_overrides(spec: SweepSpec, overrides: Sequence[str]) -> SweepSpec:
    """``spec`` with command-line overrides appended to its own (validated against the base config)."""
    if not overrides:
        return spec
    spec = dataclasses.replace(spec, overrides=[*spec.overrides, *overrides])
    spec.load_base()  # a ConfigError naming the bad key, before anything is written
    return spec


def from_dir(out: str | Path, sweep_file: str | Path | None = None) -> Sweep:
    """The sweep prepared in directory ``out`` (from its ``sweep.json``, without re-reading the corpora).

    Everything is read from ``out`` as it is now, wherever the sweep was prepared (a directory moved, copied or
    mounted elsewhere works). The sweep file is ``sweep_file`` when given (``status``/``collect`` take it), else
    the one ``sweep.json`` records: relative to ``out`` first (a project moved as a whole), then where it was
    when the sweep was prepared (only the directory moved; ``sweep.json`` files written before the relative
    path was recorded hold only that one).

    Raises:
        DataError: naming ``sweep.json`` and every place tried when no sweep file is found.
    """
    out = Path(out).resolve()
    index = read_json(out / SWEEP_FILE, "pass a sweep directory written by `biotune sweep run` or `submit`")
    path = Path(sweep_file).resolve() if sweep_file is not None else _recorded_sweep_file(out, index)
    spec = with_overrides(load_sweep(path), index.get("cli_overrides", []))
    if spec.name != index.get("name"):
        raise ConfigError(
            [
                Problem(
                    "--out",
                    f"{out} holds sweep '{shown(str(index.get('name')))}', not '{spec.name}' of {path}",
                    "pass the sweep file this directory was prepared from, or that sweep's --out directory",
                )
            ]
        )
    variants = [
        vr.Variant(**{**v, "overrides": tuple(v["overrides"]), "seeds": tuple(v["seeds"])})
        for v in index["variants"]
    ]
    cells = [vr.Cell(**{**c, "overrides": tuple(c["overrides"])}) for c in index["cells"]]
    return Sweep(spec, path, out, variants, cells, tuple(index.get("cli_overrides", [])))


#: ``sweep.json``'s key for where the sweep file was when the sweep was prepared (``sweep_file`` is relative).
_PREPARED_AT_KEY = "sweep_file_when_prepared"


def _recorded_sweep_file(out: Path, index: dict[str, Any]) -> Path:
    """The sweep file ``sweep.json`` records, relative to ``out`` first, then where it was prepared."""
    recorded = [str(index.get("sweep_file", "")), str(index.get(_PREPARED_AT_KEY, ""))]
    tried = list(dict.fromkeys((out / r).resolve() for r in recorded if r))  # an absolute one stays itself
    for place in tried:
        if place.is_file():
            return place
    raise DataError(
        out / SWEEP_FILE,
        f"the sweep file it records is not at {' nor at '.join(map(str, tried)) or '(none recorded)'}",
        "pass the sweep file: `biotune sweep status SWEEP.yaml --out DIR` (collect likewise), or put it back "
        "where it was",
    )


# --------------------------------------------------------------------------------------------- preparing


def cell_config(sweep: Sweep, cell: vr.Cell) -> RunConfig:
    """The full run config of a cell: the variant's overrides plus the sweep's paths and tracking view."""
    d = sweep.cell_dir(cell.name)
    v = sweep.variant(cell.variant)
    cfg = config.load(
        sweep.spec.base,
        [
            *cell.overrides,
            f"name={sweep.spec.name}-{cell.name}",
            f"train.output_dir={d / TRAIN_DIR}",
            f"eval.output_dir={d / EVAL_DIR}",
            f"data.out_dir={sweep.out / DATA_DIR}",
            "train.resume=auto",
            f"tracking.group={sweep.spec.name}",
            "tracking.job_type=train",
        ],
    )
    if not cfg.eval.sources:  # every cell is evaluated on the same sets: the base's plan, even if left out
        cfg.eval.sources = plan_sources(sweep.spec.load_base())
    apply_sweep_default(cfg)  # task scores at 1/4, 1/2 and the end, on dev sets, unless the base sets them
    cfg.tracking.run_config = {
        "sweep": sweep.spec.name,
        "variant": v.name,
        "cell": cell.name,
        "fidelity": cell.fidelity,
        "seed": cell.seed,
        "axis": v.kind,
        "axis_value": _plain(v.value),
        "weights": dict(v.weights),
        "content_hash": v.content_hash,
    }
    cfg.tracking.tags = [*cfg.tracking.tags, "sweep", f"variant:{v.name}"]
    if cell.fidelity:  # the sweep group's panels can then be filtered to one fidelity
        cfg.tracking.tags.append(f"fidelity:{cell.fidelity}")
    return cfg


def _plain(value: Any) -> Any:
    return value if isinstance(value, (str, int, float, bool)) or value is None else str(value)


def prepare(sweep: Sweep) -> None:
    """Write ``sweep.json`` and each cell's ``config.yaml`` (refusing a directory that holds another sweep)."""
    index = sweep.out / SWEEP_FILE
    if index.is_file():
        old = read_json(index, f"remove {sweep.out} if it is a stale sweep directory, or pass another --out")
        if old.get("name") != sweep.spec.name:
            raise ConfigError(
                [
                    Problem(
                        "--out",
                        f"{sweep.out} holds sweep '{old.get('name')}', not '{sweep.spec.name}'",
                        "pass another --out directory",
                    )
                ]
            )
    elif sweep.out.exists() and any(sweep.out.iterdir()):
        raise ConfigError(
            [
                Problem(
                    "--out",
                    f"{sweep.out} is a non-empty directory that is not a sweep",
                    "pass a new or empty --out directory",
                )
            ]
        )
    for cell in sweep.cells:
        atomic_write_text(sweep.cell_dir(cell.name) / CELL_CONFIG, config.to_yaml(cell_config(sweep, cell)))
    atomic_write_json(
        index,
        {
            "name": sweep.spec.name,
            "sweep_file": os.path.relpath(sweep.path.resolve(), sweep.out.resolve()),
            _PREPARED_AT_KEY: str(sweep.path.resolve()),
            "base": str(sweep.spec.base),
            "cli_overrides": list(sweep.cli_overrides),
            "keep": sweep.spec.keep,
            "variants": [dataclasses.asdict(v) for v in sweep.variants],
            "cells": [dataclasses.asdict(c) for c in sweep.cells],
            "versions": library_versions(),
        },
    )


def cell_versions(sweep: Sweep) -> dict[str, dict[str, str]]:
    """The library versions each trained cell recorded in its ``run_info.json`` (cells without one left out)."""
    out = {}
    for cell in sweep.cells:
        info = sweep.cell_dir(cell.name) / TRAIN_DIR / layout.RUN_INFO_FILE
        if info.is_file():
            versions = read_json(info, "re-run the cell (`biotune sweep run --failed`)").get("versions")
            if isinstance(versions, dict):
                out[cell.name] = {str(k): str(v) for k, v in versions.items()}
    return out


# --------------------------------------------------------------------------------------------- state


def read_state(cell_dir: Path) -> dict[str, Any]:
    """The cell's state record (``{"state": "missing"}`` when it never started)."""
    return read_record(cell_dir)


def write_state(cell_dir: Path, state: CellState, **info: Any) -> dict[str, Any]:
    """Move the cell to ``state`` (a legal transition), keeping what earlier stages recorded."""
    info.setdefault("log", str(cell_dir / CELL_LOG))
    return write_record(cell_dir, state, **info)


def observed_state(sweep: Sweep, cell: vr.Cell) -> Observed:
    """The cell's state with its reason: done needs the evaluation report; running needs a live runner."""
    d = sweep.cell_dir(cell.name)
    return observe(d, report_exists=report_path(d / EVAL_DIR).is_file())


def cell_state(sweep: Sweep, cell: vr.Cell) -> CellState:
    """The cell's :class:`CellState` (a stale ``running`` cell or a done one without a report is failed)."""
    return observed_state(sweep, cell).state


# --------------------------------------------------------------------------------------------- one cell


class StageFailed(Exception):
    """A stage of a cell exited non-zero."""

    def __init__(self, stage: str, code: int) -> None:
        super().__init__(f"stage {stage} exited {code}")
        self.stage, self.code = stage, code


class StopSignals:
    """SIGUSR1/SIGTERM received while a cell runs: noted, and forwarded to the running stage.

    The training stage gets the signal itself (the launcher passes it to every trainer rank, which checkpoints and
    exits 75); the other stages get SIGTERM (a data build cleans up and exits 75; an evaluation is redone later).
    Once a signal came, no further stage starts.
    """

    SIGNALS = (signal.SIGUSR1, signal.SIGTERM)

    def __init__(self) -> None:
        self.signum = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.train = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopSignals:
        self._previous = {sig: signal.signal(sig, self._handle) for sig in self.SIGNALS}
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum: int, frame: Any) -> None:
        self.signum = signum
        self._forward()

    def _forward(self) -> None:
        if self.signum and self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(self.signum if self.train else signal.SIGTERM)

    def attach(self, proc: subprocess.Popen[bytes], train: bool) -> None:
        """Forward to ``proc`` from now on (and at once, if a signal came while it was starting)."""
        self.proc, self.train = proc, train
        self._forward()

    @property
    def name(self) -> str:
        """The received signal's name (``SIGUSR1``), or empty."""
        return signal.Signals(self.signum).name if self.signum else ""


def _run_stage(
    cmd: Sequence[str],
    log_path: Path,
    env: dict[str, str],
    echo: bool,
    stop: StopSignals,
    train: bool,
    lock_fd: int,
) -> int:
    """Run one stage with its output appended to the cell log (echoing progress lines when asked).

    The stage writes the log itself (no pipe through the runner, so it outlives a killed runner long enough to
    checkpoint), holds the cell's lock with the runner (``lock_fd`` is inherited), and gets SIGTERM if the
    runner dies.
    """
    with log_path.open("ab") as out, log_path.open("rb") as tail:
        tail.seek(0, os.SEEK_END)
        proc = subprocess.Popen(
            cmd,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=REPO_ROOT,
            start_new_session=True,
            pass_fds=(lock_fd,),
            preexec_fn=functools.partial(die_with_parent, os.getpid()),
        )
        stop.attach(proc, train)
        try:
            while True:
                code = proc.poll()
                for raw in tail.readlines():
                    line = raw.decode("utf-8", errors="replace")
                    if echo and _is_progress(line):
                        print(f"      {line.rstrip()[-150:]}", flush=True)
                if code is not None:
                    return code
                time.sleep(0.2)
        finally:
            stop.proc = None


def _is_progress(line: str) -> bool:
    return any(key in line for key in ("step ", "evaluating ", "built ", "cache hit", "exported ", "error"))


def _env(nproc: int | None) -> dict[str, str]:
    extra = {"BIOTUNE_NPROC_PER_NODE": str(nproc)} if nproc else {}
    return launch_env(extra)


def _train_cmd(cfg_path: Path, overrides: Sequence[str] = ()) -> list[str]:
    """One node: launch/torchrun.sh; inside a multi-node allocation: one srun task per node."""
    nodes = int(os.environ.get("SLURM_JOB_NUM_NODES", "1") or 1)
    if os.environ.get("SLURM_JOB_ID") and nodes > 1:
        return [
            "srun",
            f"--nodes={nodes}",
            "--ntasks-per-node=1",
            "--kill-on-bad-exit=1",
            str(REPO_ROOT / "launch" / "srun_node.sh"),
            str(cfg_path),
            *overrides,
        ]
    return ["bash", str(REPO_ROOT / "launch" / "torchrun.sh"), str(cfg_path), *overrides]


def cell_lock(sweep: Sweep, cell: vr.Cell) -> Lock:
    """The lock of one cell (held by whoever runs it, and by its stage processes)."""
    return Lock(sweep.cell_dir(cell.name) / CELL_LOCK_FILE, f"cell {cell.name} of sweep {sweep.spec.name}")


def run_cell(
    sweep: Sweep, cell: vr.Cell, nproc: int | None = None, echo: bool = True, stages: Sequence[str] = STAGES
) -> int:
    """Run the given stages of one cell; returns 0, EXIT_PREEMPTED, or the failing stage's exit code.

    A cell that is already done is left alone (0). LaunchError (exit 2) when another process runs the cell.
    """
    d = sweep.cell_dir(cell.name)
    if not (d / CELL_CONFIG).is_file():
        prepare(sweep)
    fix = "wait for it to finish, or stop that process; `biotune sweep status` shows the cell's state"
    with cell_lock(sweep, cell).acquire(fix) as lock, StopSignals() as stop:
        assert lock.fd is not None
        if cell_state(sweep, cell) == CellState.DONE:
            if echo:
                print(f"    {cell.name}: already done", flush=True)
            return 0
        return _run_stages(sweep, cell, nproc, echo, stages, stop, lock.fd)


def _run_stages(
    sweep: Sweep,
    cell: vr.Cell,
    nproc: int | None,
    echo: bool,
    stages: Sequence[str],
    stop: StopSignals,
    lock_fd: int,
) -> int:
    d = sweep.cell_dir(cell.name)
    cfg_path = d / CELL_CONFIG
    attempts = int(read_state(d).get("attempts", 0)) + ("train" in stages)
    write_state(d, CellState.RUNNING, stage=stages[0], attempts=attempts, exit_code=None, signal=None)
    env = _env(nproc)
    py = [sys.executable, "-m", "biotune.cli"]
    log_path = d / CELL_LOG
    try:
        for stage in stages:
            if stop.signum:
                return _preempted(d, cell, stage, stop)
            write_state(d, CellState.RUNNING, stage=stage)
            start = time.perf_counter()
            if echo:
                print(f"    {cell.name}: {stage} ...", flush=True)
            _log_line(log_path, f"===== {time.strftime('%H:%M:%S')} {cell.name}: {stage} =====")
            if stage == "finish":
                apply_keep_policy(sweep, d)
                continue
            data_dir = read_state(d).get("data_dir")
            commands = {
                "data": [*py, "data", "build", str(cfg_path), "--record", str(d / CELL_BUILD_RECORD)],
                "train": _train_cmd(cfg_path, [f"train.data_dir={data_dir}"] if data_dir else []),
                "eval": [*py, "eval", str(cfg_path)],
            }
            code = _run_stage(commands[stage], log_path, env, echo, stop, stage == "train", lock_fd)
            _add_spent(d, stage, time.perf_counter() - start)
            if code == EXIT_PREEMPTED or (stop.signum and code != 0):
                return _preempted(d, cell, stage, stop)
            if code != 0:
                raise StageFailed(stage, code)
            done = {f"{stage}_seconds": round(time.perf_counter() - start, 1)}
            if stage == "data":
                done["data_dir"] = str(read_build_record(d / CELL_BUILD_RECORD))
            write_state(d, CellState.RUNNING, **done)
    except StageFailed as err:
        write_state(d, CellState.FAILED, stage=err.stage, exit_code=err.code)
        print(f"    {cell.name}: {err.stage} failed (exit {err.code}); log: {log_path}", file=sys.stderr)
        return err.code
    write_state(d, CellState.DONE if "finish" in stages else CellState.PENDING)
    return 0


#: ``state.json``'s key for the seconds a stage ran over every attempt of the cell (pre-empted and failed ones
#: included); ``<stage>_seconds`` is the last successful attempt's.
SPENT_KEY = "{stage}_seconds_all_attempts"


def _add_spent(d: Path, stage: str, seconds: float) -> None:
    """Add one attempt's seconds of ``stage`` to the cell's running total (what its cost counts)."""
    key = SPENT_KEY.format(stage=stage)
    write_state(d, CellState.RUNNING, **{key: round(float(read_state(d).get(key, 0.0)) + seconds, 1)})


def _log_line(log_path: Path, text: str) -> None:
    """Append one line of the runner's own to the cell log."""
    with log_path.open("a", encoding="utf-8") as logf:
        logf.write(f"\n{text}\n")


def _preempted(d: Path, cell: vr.Cell, stage: str, stop: StopSignals) -> int:
    """Record a pre-emption at ``stage`` (its checkpoint, if any, is resumed by the next run)."""
    why = stop.name or "the stage's own exit 75"
    _log_line(
        d / CELL_LOG, f"===== {time.strftime('%H:%M:%S')} {cell.name}: pre-empted at {stage} ({why}) ====="
    )
    write_state(d, CellState.PREEMPTED, stage=stage, signal=stop.name or None)
    print(f"    {cell.name}: pre-empted at {stage} ({why}); re-run to resume", file=sys.stderr, flush=True)
    return EXIT_PREEMPTED


def apply_keep_policy(sweep: Sweep, cell_dir: Path) -> None:
    """What a cell keeps after its evaluation (``keep`` in the sweep file); only paths inside the cell go.

    * ``checkpoint``: everything;
    * ``export``: the Hugging Face export and the evaluation; the ZeRO checkpoints (shards and optimizer
      state, ~1 TB per variant at 70B) are deleted;
    * ``predictions``: the evaluation only (report and per-example predictions).
    """
    train = cell_dir / TRAIN_DIR
    if sweep.spec.keep == "checkpoint":
        return
    doomed = [layout.checkpoint_root(train)]
    if sweep.spec.keep == "predictions":
        doomed.append(layout.export_dir(train))
    for path in doomed:
        if path.is_dir() and path.resolve().is_relative_to(cell_dir.resolve()):
            shutil.rmtree(path)


# --------------------------------------------------------------------------------------------- many cells


def select(sweep: Sweep, failed_only: bool = False, only: Collection[str] | None = None) -> list[vr.Cell]:
    """The cells to (re-)run: everything not done, or only the failed ones (stale ``running`` cells included);
    ``only``: among these cell names (a stage's, :mod:`biotune.sweep.stages`)."""
    mine = [c for c in sweep.cells if only is None or c.name in only]
    states = {c.name: cell_state(sweep, c) for c in mine}
    if failed_only:
        return [c for c in mine if states[c.name] == CellState.FAILED]
    return [c for c in mine if states[c.name] != CellState.DONE]


def sweep_lock(sweep: Sweep) -> Lock:
    """The lock that makes ``sweep run --local`` one runner per sweep."""
    return Lock(sweep.out / SWEEP_LOCK_FILE, f"sweep {sweep.spec.name} ({sweep.out})")


def run_local(
    sweep: Sweep, nproc: int | None = None, failed_only: bool = False, only: Collection[str] | None = None
) -> int:
    """Run the selected cells (``only``: among these names) one after another here; returns 0 when all are done.

    LaunchError (exit 2, naming the holder) when another runner works on this sweep.
    """
    fix = "wait for that runner to finish or stop it; `biotune sweep status` shows its progress"
    lock = sweep_lock(sweep)
    lock.refuse_if_held(fix)  # before writing anything
    prepare(sweep)
    with lock.acquire(fix):
        return _run_selected(sweep, nproc, failed_only, only)


def _run_selected(sweep: Sweep, nproc: int | None, failed_only: bool, only: Collection[str] | None) -> int:
    todo = select(sweep, failed_only, only)
    total = len(sweep.cells) if only is None else len(only)
    skipped = total - len(todo)
    print(
        f"sweep {sweep.spec.name}: {total} cells, {skipped} already done, running {len(todo)} in {sweep.out}",
        flush=True,
    )
    worst = 0
    for i, cell in enumerate(todo, 1):
        start = time.perf_counter()
        print(f"[{i}/{len(todo)}] {cell.name}", flush=True)
        code = run_cell(sweep, cell, nproc)
        print(
            f"[{i}/{len(todo)}] {cell.name}: {cell_state(sweep, cell)} in {time.perf_counter() - start:.0f}s",
            flush=True,
        )
        if code == EXIT_PREEMPTED:
            return code
        worst = worst or code
    return 0 if worst == 0 else 1


def status_rows(sweep: Sweep) -> list[dict[str, Any]]:
    """One row per cell: state (and why, e.g. ``stale``), stage, attempts and log path."""
    rows = []
    for c in sweep.cells:
        d = sweep.cell_dir(c.name)
        rec = read_state(d)
        seen = observed_state(sweep, c)
        rows.append(
            {
                "cell": c.name,
                "fidelity": c.fidelity,
                "variant": c.variant,
                "seed": c.seed,
                "state": seen.state.value,
                "note": seen.note,
                "stage": rec.get("stage", ""),
                "attempts": rec.get("attempts", 0),
                "log": str(d / CELL_LOG) if seen.state != CellState.MISSING else "",
            }
        )
    return rows


def format_status(rows: Sequence[dict[str, Any]]) -> str:
    """The status rows as a Markdown table with a count per state (and a fidelity column when cells have one)."""
    fid = any(r.get("fidelity") for r in rows)
    lines = [
        "| cell |" + (" fidelity |" if fid else "") + " state | stage | attempts | log |",
        "|---|" + ("---|" if fid else "") + "---|---|---|---|",
    ]
    shown = [f"{r['state']} ({r['note']})" if r.get("note") else r["state"] for r in rows]
    lines += [
        f"| {r['cell']} |" + (f" {r['fidelity']} |" if fid else "") + f" {state} | {r['stage']} | "
        f"{r['attempts']} | {r['log']} |"
        for r, state in zip(rows, shown, strict=True)
    ]
    counts: dict[str, int] = {}
    for state in shown:
        counts[state] = counts.get(state, 0) + 1
    return "\n".join(lines) + "\n\n" + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) + "\n"


# --------------------------------------------------------------------------------------------- collect


def _manifest_budget(data_dir: Path | None) -> dict[str, dict[str, float]]:
    """Realised samples and tokens per source from a built dataset's manifest."""
    if data_dir is None or not (data_dir / MANIFEST_FILE).is_file():
        return {}
    manifest = Manifest.read(data_dir)
    return {
        name: {
            "samples": e.kept_after_tokenize,
            "tokens": int(e.tokens.get("total", 0)),
            "epochs": e.realised / max(1, e.available),
        }
        for name, e in manifest.sources.items()
        if e.included
    }


def _data_dir_of(cell_dir: Path) -> Path | None:
    """The built dataset the cell trained on, as its data stage recorded it in ``state.json``."""
    recorded = read_state(cell_dir).get("data_dir")
    if not recorded:
        return None
    moved = (
        cell_dir.parents[1] / DATA_DIR / Path(recorded).name
    )  # data.out_dir is the sweep's data/, moved along
    return moved if moved.is_dir() else Path(recorded)


def cell_results(sweep: Sweep) -> list[Any]:
    """The :class:`~biotune.sweep.results.CellResult` of every cell, whatever its state."""
    out = []
    for c in sweep.cells:
        v = sweep.variant(c.variant)
        d = sweep.cell_dir(c.name)
        state = cell_state(sweep, c)
        budget = _manifest_budget(_data_dir_of(d)) or {
            s: {"samples": n, "tokens": 0, "epochs": 0.0} for s, n in v.counts.items()
        }
        out.append(
            CellResult(
                name=c.name,
                variant=v.name,
                seed=c.seed,
                axis=v.kind,
                axis_value=_plain(v.value),
                is_base=v.kind == BASE,
                control_for=str(v.value) if v.kind == CONTROL else None,
                state=state,
                log_path=str(d / CELL_LOG) if state != CellState.MISSING else None,
                budget=budget,
                weights=dict(v.weights),
                groups=dict(v.source_groups),
                eval_dir=d / EVAL_DIR if state == CellState.DONE else None,
                fidelity=c.fidelity,
                process_seconds=process_seconds(_train_seconds(d), _train_processes(d)),
            )
        )
    return out


def _train_seconds(cell_dir: Path) -> float | None:
    """Wall seconds of the cell's training over all its attempts (pre-empted ones too); a cell run before that
    total was recorded has only its last attempt's ``train_seconds``."""
    state = read_state(cell_dir)
    return state.get(SPENT_KEY.format(stage="train"), state.get("train_seconds"))


def _train_processes(cell_dir: Path) -> int | None:
    """The processes (ranks) the cell's training ran on, from its ``run_info.json``; None without one."""
    info = cell_dir / TRAIN_DIR / layout.RUN_INFO_FILE
    if not info.is_file():
        return None
    world = read_json(info, "re-run the cell (`biotune sweep run --failed`)").get("world_size")
    return world if isinstance(world, int) and world > 0 else None


def require_prepared(sweep: Sweep) -> None:
    """DataError unless ``sweep.out`` holds this sweep (``status``/``collect`` read, they never create)."""
    if not (sweep.out / SWEEP_FILE).is_file():
        raise DataError(
            sweep.out / SWEEP_FILE,
            "no sweep here",
            "run `biotune sweep run SWEEP.yaml --local` or `biotune sweep submit SWEEP.yaml` first, or "
            "pass the --out directory they used",
        )

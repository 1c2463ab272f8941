"""A sweep cell's state: the one typed vocabulary, its legal transitions, its record, and the locks that
say who runs what.

The runner writes the state, ``sweep status`` and ``sweep collect`` read it; all of them use :class:`CellState`::

    missing ──► running ──► done ──► running (only when its evaluation report is gone)
                 │  ▲
                 ▼  │
      preempted / failed / pending

* ``pending``: some stages ran (a SLURM data task built the cell's dataset), the rest are still to run;
* ``preempted``: a signal stopped the cell after its trainer checkpointed; the next run resumes it;
* ``failed``: a stage exited non-zero, or the cell is *stale*: its record says ``running`` but no process holds
  the cell's lock any more (the runner was killed), so ``--failed`` re-runs it.

Locks are ``flock`` locks on files in the sweep directory, released by the kernel when their holder dies, so a
crashed runner never leaves a lock behind. The cell lock is passed down to the stage process (and so to the
launcher), so it stays held until the last process of the cell has exited. Each lock file names its holder
(host, pid, start time) for the message a second runner prints.
"""

from __future__ import annotations

import enum
import fcntl
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from biotune.errors import DataError, LaunchError
from biotune.io import atomic_write_json, read_json

CELL_STATE_FILE = "state.json"
CELL_LOCK_FILE = ".cell.lock"
SWEEP_LOCK_FILE = ".runner.lock"
STALE = "stale"


class CellState(str, enum.Enum):
    """Where a cell stands; the value is what ``state.json`` and the status table show."""

    MISSING = "missing"
    PENDING = "pending"
    RUNNING = "running"
    PREEMPTED = "preempted"
    FAILED = "failed"
    DONE = "done"

    def __str__(self) -> str:
        return self.value


#: Legal moves of a cell's recorded state (a state may always be rewritten to itself, e.g. a new stage).
TRANSITIONS: dict[CellState, frozenset[CellState]] = {
    CellState.MISSING: frozenset({CellState.RUNNING}),
    CellState.PENDING: frozenset({CellState.RUNNING}),
    CellState.RUNNING: frozenset({CellState.PENDING, CellState.PREEMPTED, CellState.FAILED, CellState.DONE}),
    CellState.PREEMPTED: frozenset({CellState.RUNNING}),
    CellState.FAILED: frozenset({CellState.RUNNING}),
    CellState.DONE: frozenset({CellState.RUNNING}),
}


class IllegalTransition(RuntimeError):
    """An internal invariant broke: the runner tried a move :data:`TRANSITIONS` does not allow."""


def check_transition(old: CellState, new: CellState) -> None:
    """Raise :class:`IllegalTransition` unless ``old -> new`` is allowed (or ``old == new``)."""
    if new != old and new not in TRANSITIONS[old]:
        raise IllegalTransition(f"cell state {old} cannot become {new}")


# --------------------------------------------------------------------------------------------- record


def read_record(cell_dir: Path) -> dict[str, Any]:
    """The cell's ``state.json`` (``{"state": "missing"}`` when it never started)."""
    path = cell_dir / CELL_STATE_FILE
    if not path.is_file():
        return {"state": CellState.MISSING.value}
    record = read_json(path, f"delete {path} to mark the cell as never run, then re-run it")
    try:
        CellState(record.get("state"))
    except ValueError:
        raise DataError(
            path,
            f"unknown cell state {record.get('state')!r}",
            f"use one of {', '.join(s.value for s in CellState)}, or delete the file to re-run the cell",
        ) from None
    return record


def recorded_state(cell_dir: Path) -> CellState:
    """The state written in the cell's record."""
    return CellState(read_record(cell_dir)["state"])


def write_record(cell_dir: Path, state: CellState, **info: Any) -> dict[str, Any]:
    """Move the cell to ``state`` (checked against :data:`TRANSITIONS`), keeping what earlier stages recorded."""
    old = read_record(cell_dir)
    check_transition(CellState(old["state"]), state)
    record = {**old, **info, "state": state.value, "updated": time.strftime("%Y-%m-%dT%H:%M:%S")}
    atomic_write_json(cell_dir / CELL_STATE_FILE, record)
    return record


@dataclass(frozen=True)
class Observed:
    """A cell's state as ``status`` and ``collect`` see it: the record, checked against the lock."""

    state: CellState
    note: str = ""
    """Why the state differs from the record (``stale``), or empty."""

    def __str__(self) -> str:
        return f"{self.state} ({self.note})" if self.note else str(self.state)


def observe(cell_dir: Path, report_exists: bool) -> Observed:
    """The cell's state: ``done`` needs its evaluation report; ``running`` needs a live holder of its lock."""
    state = recorded_state(cell_dir)
    if state == CellState.DONE and not report_exists:
        return Observed(CellState.FAILED, "no evaluation report")
    if state == CellState.RUNNING and Lock(cell_dir / CELL_LOCK_FILE, "cell").holder_alive() is False:
        return Observed(CellState.FAILED, STALE)
    return Observed(state)


# --------------------------------------------------------------------------------------------- locks


class Lock:
    """An exclusive ``flock`` on ``path`` that names its holder; :meth:`acquire` raises if another holds it."""

    def __init__(self, path: Path, what: str) -> None:
        self.path, self.what = Path(path), what
        self.fd: int | None = None

    def acquire(self, fix: str) -> Lock:
        """Take the lock or raise a LaunchError naming the holder (host, pid, since) and ``fix``."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise LaunchError(
                f"{self.what} is already being run by {self.holder()} (lock {self.path})\n  fix: {fix}"
            ) from None
        os.ftruncate(fd, 0)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
        os.write(fd, f"host={socket.gethostname()} pid={os.getpid()} since={stamp}\n".encode())
        self.fd = fd
        return self

    def refuse_if_held(self, fix: str) -> None:
        """Raise :meth:`acquire`'s LaunchError when someone holds the lock, without creating anything."""
        if self.holder_alive():
            raise LaunchError(
                f"{self.what} is already being run by {self.holder()} (lock {self.path})\n  fix: {fix}"
            )

    def holder(self) -> str:
        """Who holds the lock, as its file says (``host=H pid=P since=T``)."""
        try:
            text = self.path.read_text(encoding="utf-8").strip()
        except OSError:
            text = ""
        return (
            text.replace("=", " ").replace(" since ", ", since ") or "another process (holder not recorded)"
        )

    def holder_alive(self) -> bool | None:
        """True when some process holds the lock, False when none does, None when there is no lock file."""
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)  # status may read a sweep it cannot write
        except FileNotFoundError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)  # closing drops a lock we just took
        return False

    def release(self) -> None:
        """Drop the lock (children that inherited it keep it until they exit)."""
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def __enter__(self) -> Lock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

"""The typed cell state: legal transitions, the record on disk, and the flock locks that detect stale cells."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from biotune.errors import DataError, LaunchError
from biotune.sweep import state as st
from biotune.sweep.state import CellState


def test_the_legal_moves_of_a_cell() -> None:
    s = CellState
    allowed = {(old, new) for old, targets in st.TRANSITIONS.items() for new in targets}
    assert (s.MISSING, s.RUNNING) in allowed and (s.RUNNING, s.DONE) in allowed
    assert (s.PREEMPTED, s.RUNNING) in allowed and (s.FAILED, s.RUNNING) in allowed
    for old, new in [
        (s.MISSING, s.DONE),
        (s.MISSING, s.FAILED),
        (s.PREEMPTED, s.DONE),
        (s.FAILED, s.DONE),
        (s.DONE, s.FAILED),
        (s.PENDING, s.DONE),
    ]:
        assert (old, new) not in allowed
        with pytest.raises(st.IllegalTransition, match=f"{old} cannot become {new}"):
            st.check_transition(old, new)
    for state in CellState:  # rewriting a state (a new stage, a new note) is always allowed
        st.check_transition(state, state)


def test_write_record_walks_a_cell_through_its_life_and_refuses_a_jump(tmp_path: Path) -> None:
    assert st.recorded_state(tmp_path) == CellState.MISSING
    with pytest.raises(st.IllegalTransition):
        st.write_record(tmp_path, CellState.DONE)
    assert not (tmp_path / st.CELL_STATE_FILE).exists()  # nothing written by a refused move
    st.write_record(tmp_path, CellState.RUNNING, stage="data", attempts=1)
    st.write_record(tmp_path, CellState.RUNNING, stage="train", data_dir="/d")
    st.write_record(tmp_path, CellState.PREEMPTED, stage="train")
    st.write_record(tmp_path, CellState.RUNNING, stage="train", attempts=2)
    record = st.write_record(tmp_path, CellState.DONE, stage="finish")
    assert record["state"] == "done" and record["data_dir"] == "/d" and record["attempts"] == 2
    assert json.loads((tmp_path / st.CELL_STATE_FILE).read_text())["state"] == "done"
    with pytest.raises(st.IllegalTransition):
        st.write_record(tmp_path, CellState.FAILED)


def test_an_unknown_state_on_disk_names_the_file_and_the_states(tmp_path: Path) -> None:
    (tmp_path / st.CELL_STATE_FILE).write_text(json.dumps({"state": "exploded"}))
    with pytest.raises(DataError) as err:
        st.read_record(tmp_path)
    assert str(tmp_path / st.CELL_STATE_FILE) in str(err.value) and "preempted" in str(err.value)


def test_a_second_holder_is_refused_with_host_and_pid(tmp_path: Path) -> None:
    lock_path = tmp_path / "x.lock"
    first = st.Lock(lock_path, "cell c").acquire("wait")
    assert st.Lock(lock_path, "cell c").holder_alive() is True
    with pytest.raises(LaunchError) as err:
        st.Lock(lock_path, "cell c").acquire("wait for it")
    msg = str(err.value)
    assert f"host {socket.gethostname()}" in msg and f"pid {os.getpid()}" in msg and "fix: wait for it" in msg
    first.release()
    assert st.Lock(lock_path, "cell c").holder_alive() is False
    with st.Lock(lock_path, "cell c").acquire("wait"):
        pass
    assert st.Lock(tmp_path / "never.lock", "cell").holder_alive() is None


def test_a_killed_holder_leaves_a_stale_running_cell(tmp_path: Path) -> None:
    """A process that took the cell's lock and died by SIGKILL: the cell shows as failed (stale)."""
    st.write_record(tmp_path, CellState.RUNNING, stage="train")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from biotune.sweep.state import Lock; "
            "Lock(Path(sys.argv[1]), 'cell').acquire('x'); print('held', flush=True); time.sleep(600)",
            str(tmp_path / st.CELL_LOCK_FILE),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    assert st.observe(tmp_path, report_exists=False) == st.Observed(CellState.RUNNING)
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    seen = st.observe(tmp_path, report_exists=False)
    assert seen == st.Observed(CellState.FAILED, st.STALE) and str(seen) == "failed (stale)"


def test_done_needs_the_report(tmp_path: Path) -> None:
    st.write_record(tmp_path, CellState.RUNNING)
    st.write_record(tmp_path, CellState.DONE)
    assert st.observe(tmp_path, report_exists=True).state == CellState.DONE
    assert st.observe(tmp_path, report_exists=False).state == CellState.FAILED


def test_a_child_started_with_die_with_parent_dies_with_it(tmp_path: Path) -> None:
    """The parent starts a sleeping child with the parent-death signal, then is SIGKILLed: the child goes too."""
    script = (
        "import functools, os, subprocess, sys, time\n"
        "from biotune.launch import die_with_parent\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'],\n"
        "    preexec_fn=functools.partial(die_with_parent, os.getpid()))\n"
        "print(child.pid, flush=True)\n"
        "time.sleep(600)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    child_pid = int(parent.stdout.readline())
    assert _alive(child_pid)
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 30
    while _alive(child_pid):
        assert time.monotonic() < deadline, f"child {child_pid} survived its parent"
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie, dead but not yet reaped by init, counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"

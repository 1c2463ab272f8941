"""Interrupted commands: SIGTERM during ``biotune data build`` exits 75 and leaves nothing; the temporary
directory of a killed build (SIGKILL cannot be handled) is removed by the next build.

The build is an upsampled sample (200,000 samples) so that it spends seconds writing its temporary directory;
each test waits until that directory exists (a condition, not a timer) before it sends the signal.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from bad_input_harness import REPO, base_env, tree

from biotune.errors import EXIT_PREEMPTED

pytestmark = pytest.mark.slow


def _start_build(tmp: Path, tokenizer: Path, *overrides: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "biotune.cli",
            "data",
            "build",
            str(REPO / "configs/data/sample.yaml"),
            f"data.tokenizer={tokenizer}",
            "data.out_dir=cache",
            "data.leakage=off",
            *overrides,
        ],
        cwd=tmp,
        env=base_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _tmp_dirs(tmp: Path) -> list[Path]:
    cache = tmp / "cache"
    return sorted(cache.glob(".*.tmp-*")) if cache.is_dir() else []


def _signal_once_writing(proc: subprocess.Popen[str], tmp: Path, signum: int) -> tuple[int, str]:
    """Send ``signum`` as soon as the build's temporary directory exists; return (exit code, stderr)."""
    while not _tmp_dirs(tmp):
        assert proc.poll() is None, f"the build ended before writing: {proc.communicate()[1][-3000:]}"
        time.sleep(0.02)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=300)
    return proc.returncode, err


def test_sigterm_during_data_build_exits_75_and_leaves_nothing(tmp_path: Path, tiny_model: Path) -> None:
    # Before: SIGTERM killed the build and left .KEY.tmp-* behind for ever.
    before = tree(tmp_path)
    code, err = _signal_once_writing(
        _start_build(tmp_path, tiny_model, "data.total_samples=200000"), tmp_path, signal.SIGTERM
    )
    assert code == EXIT_PREEMPTED, err[-3000:]
    assert "interrupted by SIGTERM" in err and "run the command again" in err and "Traceback" not in err
    assert tree(tmp_path) == before, f"left behind: {sorted(tree(tmp_path) - before)}"


def test_a_killed_builds_directory_is_removed_by_the_next_build(tmp_path: Path, tiny_model: Path) -> None:
    code, _ = _signal_once_writing(
        _start_build(tmp_path, tiny_model, "data.total_samples=200000"), tmp_path, signal.SIGKILL
    )
    assert code == -signal.SIGKILL
    left = _tmp_dirs(tmp_path)
    assert left, "SIGKILL cannot be handled: the temporary directory stays until the next build"
    proc = _start_build(tmp_path, tiny_model, "data.sources={gad: {}}")
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-3000:]
    assert _tmp_dirs(tmp_path) == [] and not any(p.exists() for p in left)


def test_only_stale_temporary_directories_are_removed(tmp_path: Path) -> None:
    from biotune.data.cache import STALE_AFTER_S, clean_stale_tmp

    host = socket.gethostname()
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True
    ).stdout.strip()
    names = {
        "mine-alive": f".aaaa.tmp-{os.getpid()}@{host}-abc123",
        "mine-dead": f".bbbb.tmp-{dead}@{host}-abc123",
        "other-host-fresh": ".cccc.tmp-1@elsewhere.example-abc123",
        "other-host-old": ".dddd.tmp-1@elsewhere.example-abc123x",
        "old-style-old": ".eeee.tmp-x1y2z3",
        "not-ours": "results.tmp-keep",
    }
    for name in names.values():
        (tmp_path / name).mkdir()
    old = time.time() - STALE_AFTER_S - 60
    for key in ("other-host-old", "old-style-old", "not-ours"):
        os.utime(tmp_path / names[key], (old, old))
    removed = {p.name for p in clean_stale_tmp(tmp_path)}
    assert removed == {names["mine-dead"], names["other-host-old"], names["old-style-old"]}
    assert (tmp_path / names["not-ours"]).is_dir(), "a name that is not a build's temporary directory is kept"

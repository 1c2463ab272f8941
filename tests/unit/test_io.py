"""``biotune.io``: a set of files written together (``staged_files``), and a failed write that names its file."""

from __future__ import annotations

import errno
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from biotune.errors import DataError
from biotune.io import atomic_write_text, staged_files


def _files(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): p.read_text() for p in root.rglob("*") if p.is_file()}


def test_staged_files_replace_the_previous_set_only_when_all_are_written(tmp_path: Path) -> None:
    out = tmp_path / "new" / "out"
    with staged_files(out) as stage:
        atomic_write_text(stage / "report.json", "1\n")
        atomic_write_text(stage / "predictions" / "a.jsonl", "a1\n")
    assert _files(tmp_path) == {"new/out/report.json": "1\n", "new/out/predictions/a.jsonl": "a1\n"}

    with pytest.raises(DataError) as err, staged_files(out) as stage:
        atomic_write_text(stage / "predictions" / "a.jsonl", "a2\n")
        atomic_write_text(stage / "predictions" / "b.jsonl", "b2\n")
        raise OSError(errno.ENOSPC, "No space left on device", str(stage / "report.json"))
    assert str(err.value).startswith(f"{out}: cannot write: No space left on device ({out / 'report.json'})")
    assert "free disk space on that file system" in str(err.value)
    assert _files(tmp_path) == {"new/out/report.json": "1\n", "new/out/predictions/a.jsonl": "a1\n"}
    assert not list(out.glob(".staged-*"))


def test_a_failed_first_write_leaves_no_new_directory(tmp_path: Path) -> None:
    with pytest.raises(DataError), staged_files(tmp_path / "a" / "b"):
        raise OSError(errno.EFBIG, "File too large")
    assert list(tmp_path.iterdir()) == []


def test_a_write_past_the_file_size_limit_names_the_file(tmp_path: Path) -> None:
    """A real EFBIG (``ulimit -f``): the error of a failed write names the file, not a temporary sibling."""
    code = (
        "import resource, sys; from biotune.io import atomic_write_text\n"
        f"resource.setrlimit(resource.RLIMIT_FSIZE, (1024, {resource.RLIM_INFINITY}))\n"
        "try:\n    atomic_write_text(sys.argv[1], 'x' * 4096)\n"
        "except OSError as err:\n    print(err.errno, err.filename)\n"
    )
    target = tmp_path / "big.txt"
    done = subprocess.run([sys.executable, "-c", code, str(target)], capture_output=True, text=True)
    assert done.stdout.split() == [str(errno.EFBIG), str(target)], done.stderr
    assert list(tmp_path.iterdir()) == []

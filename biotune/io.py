"""Files biotune writes and reads back: atomic text/JSON/JSONL writes and a JSONL reader that names lines.

Every file biotune writes goes through :func:`atomic_write_text` (or the JSON helpers on top of it): the content
goes to a hidden temporary sibling, is flushed, and is renamed over the target, so a crash or a signal leaves
either the old file or the new one, never half of one, and no temporary file behind on failure.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from biotune.errors import DataError


def inside(root: str | Path, path: str | Path) -> Path:
    """``path``, after checking that it resolves inside the directory ``root``; else a DataError naming both.

    Called where a file whose name comes from a config value is written, so that a name the config checks
    missed (:mod:`biotune.names`) still cannot write outside its output directory. Symbolic links on the way
    are resolved: a link that leads out of ``root`` is refused too.
    """
    root, path = Path(root), Path(path)
    resolved_root, resolved = root.resolve(), path.resolve()
    if resolved != resolved_root and resolved_root not in resolved.parents:
        raise DataError(
            path,
            f"resolves to {resolved}, outside its output directory {resolved_root}",
            "name sources, splits, instruction sets and variants with letters, digits and ._+- only (no '/', "
            "no '..'), and remove any link that leads out of the output directory",
        )
    return path


#: The fix for each way a write can fail for lack of room or rights (any other OSError gets the generic one).
_WRITE_FIXES = {
    errno.ENOSPC: "free disk space on that file system (or choose a directory on another), then run it again",
    errno.EDQUOT: "free space within your disk quota (or choose a directory elsewhere), then run it again",
    errno.EFBIG: "the file outgrew the file-size limit (see `ulimit -f`) or the disk: raise the limit or free "
    "space, then run it again",
    errno.EACCES: "make that directory writable for you, or choose a directory you can write to",
    errno.EPERM: "make that directory writable for you, or choose a directory you can write to",
    errno.EROFS: "that file system is read-only: choose a directory on a writable one",
}


def write_failed(path: str | Path, err: OSError) -> DataError:
    """The DataError for ``err`` raised while writing at ``path``: it names the path, the cause and the fix.

    Raise it ``from None`` in place of the OSError (disk full, file too large, quota, no permission, read-only
    file system) once what was half-written has been removed.
    """
    cause = err.strerror or str(err)
    where = f" ({err.filename})" if err.filename and str(err.filename) != str(path) else ""
    fix = _WRITE_FIXES.get(
        err.errno or 0, "check that the directory exists and is writable, then run it again"
    )
    return DataError(path, f"cannot write: {cause}{where}", fix)


@contextlib.contextmanager
def new_parents(path: str | Path) -> Iterator[None]:
    """Create ``path``'s missing parent directories; remove the ones made here if the block fails.

    So a failed write leaves no empty directory behind (only directories this call created, and only while
    they are empty, are removed).
    """
    parent = Path(path).parent
    missing = [p for p in (parent, *parent.parents) if not p.exists()]  # deepest first
    parent.mkdir(parents=True, exist_ok=True)
    try:
        yield
    except BaseException:
        for made in missing:
            with contextlib.suppress(OSError):
                made.rmdir()
        raise


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling of ``path`` to write; rename it over ``path`` on success, remove it on error.

    An OSError that names no file (a write or close that failed for lack of space) is raised again naming
    ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        _respect_umask(tmp)
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        # a failed write or close (disk full, file-size limit) names no file: name it
        if err.filename is None:
            raise OSError(err.errno, err.strerror, str(path)) from err
        raise
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def staged_files(out_dir: str | Path) -> Iterator[Path]:
    """Yield a hidden staging directory inside ``out_dir``; on success move what was written there into
    ``out_dir`` (each file by a rename over its place), on failure leave ``out_dir`` as it was.

    For a set of files that belong together (an evaluation's predictions and its report): a disk that fills up,
    a file-size limit or a signal while they are written leaves either the previous set or the new one, never
    new predictions beside an old report. The files are written while ``out_dir`` is untouched; only renames
    (which need no free space) and the creation of missing subdirectories (done before the first rename)
    follow. On failure the staging directory and the directories this call created are removed, and an
    OSError becomes :func:`write_failed`'s DataError naming ``out_dir`` and the file that could not be written
    (its final path, not the staging one).
    """
    out_dir = Path(out_dir)
    stage: Path | None = None
    try:
        with new_parents(out_dir / "_"):
            stage = Path(tempfile.mkdtemp(prefix=".staged-", dir=out_dir))
            try:
                yield stage
                _move_in(stage, out_dir)
            finally:
                shutil.rmtree(stage, ignore_errors=True)
    except OSError as err:
        failed = Path(err.filename) if err.filename else out_dir
        if stage is not None and failed.is_relative_to(stage):
            failed = out_dir / failed.relative_to(stage)
        raise write_failed(out_dir, OSError(err.errno, err.strerror, str(failed))) from None


def _move_in(stage: Path, out_dir: Path) -> None:
    """Rename every file under ``stage`` to the same place under ``out_dir`` (directories made first)."""
    files = sorted(p for p in stage.rglob("*") if p.is_file())
    made: list[Path] = []
    try:
        for directory in sorted({f.parent for f in files} - {stage}):
            target = out_dir / directory.relative_to(stage)
            if not target.is_dir():
                target.mkdir(parents=True)
                made.append(target)
    except OSError:
        for directory in reversed(made):
            with contextlib.suppress(OSError):
                directory.rmdir()
        raise
    for f in files:
        os.replace(f, out_dir / f.relative_to(stage))


def _respect_umask(path: Path, directory: bool = False) -> None:
    """mkstemp/mkdtemp create 0600/0700; give the mode a plain open()/mkdir() would (shared caches need it)."""
    umask = os.umask(0)
    os.umask(umask)
    path.chmod((0o777 if directory else 0o666) & ~umask)


def swap_in_dir(new: str | Path, out: str | Path) -> None:
    """Put the finished directory ``new`` at ``out`` by renames (never delete-then-write).

    ``new`` gets the umask's mode. An existing ``out`` is first moved aside by a rename into a hidden sibling,
    ``new`` is renamed into place, and only then is the old one removed: a crash leaves either the old or the
    new directory at ``out``.
    """
    new, out = Path(new), Path(out)
    _respect_umask(new, directory=True)
    if not out.exists():
        os.replace(new, out)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
    os.replace(out, old / out.name)
    os.replace(new, out)
    shutil.rmtree(old, ignore_errors=True)


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def atomic_write_json(path: str | Path, obj: Any, indent: int | None = 1) -> None:
    """Write ``obj`` as JSON to ``path`` atomically."""
    atomic_write_text(path, json.dumps(obj, indent=indent, ensure_ascii=False) + "\n")


def write_jsonl(path: str | Path, rows: Iterable[Mapping[str, Any]]) -> None:
    """Write ``rows`` as JSON Lines to ``path`` atomically."""
    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def read_json(path: str | Path, fix: str) -> Any:
    """Parse a JSON file; a missing, non-UTF-8 or malformed file is a DataError naming it (and the line)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "file not found" if not path.exists() else "not a file", fix)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as err:
        raise DataError(path, f"not UTF-8 text ({err.reason} at byte {err.start})", fix) from None
    except json.JSONDecodeError as err:
        raise DataError(path, f"invalid JSON: {err.msg} (column {err.colno})", fix, line=err.lineno) from None


def read_jsonl(path: str | Path, fix: str = "each line must be one JSON object") -> list[dict[str, Any]]:
    """JSON Lines -> list of objects (blank lines skipped); a bad line is a DataError with its line number."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "file not found" if not path.exists() else "not a file", fix)
    rows: list[dict[str, Any]] = []
    with path.open("rb") as fh:
        for number, raw in enumerate(fh, start=1):
            try:
                line = raw.decode("utf-8").strip()
            except UnicodeDecodeError as err:
                raise DataError(path, f"not UTF-8 text ({err.reason})", fix, line=number) from None
            if not line:
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise DataError(
                    path, f"invalid JSON: {err.msg} (column {err.colno})", fix, line=number
                ) from None
            if not isinstance(row, dict):
                raise DataError(path, f"expected a JSON object, got {type(row).__name__}", fix, line=number)
            rows.append(row)
    return rows


def truncate_jsonl(path: str | Path, max_step: int) -> None:
    """Drop lines whose ``step`` is beyond ``max_step`` (the tail a crash left after the resumed checkpoint)."""
    path = Path(path)
    if not path.is_file():
        return
    kept = [r for r in read_jsonl(path) if r.get("step", 0) <= max_step]
    write_jsonl(path, kept)


def replace_atomic(path: str | Path, write: Callable[[Path], None]) -> None:
    """Write ``path`` through ``write(temporary path)`` and an atomic rename (never a partial file).

    For writers that take a path rather than text (``pyarrow.parquet.write_table``, ``Figure.savefig``).
    """
    with atomic_path(path) as tmp:
        write(tmp)

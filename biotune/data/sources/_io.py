"""File access shared by the readers: existence, UTF-8 decoding and error messages naming file:line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from biotune.errors import DataError

REENCODE_FIX = "re-encode as UTF-8 (e.g. `iconv -f latin1 -t utf-8 IN > OUT`)"


def require_file(path: Path) -> Path:
    """Return ``path`` if it is a readable file, else raise :class:`DataError` saying what to do."""
    if not path.is_file():
        what = "is a directory, not a file" if path.is_dir() else "does not exist"
        raise DataError(
            path, f"data file {what}", "check data.root points at the corpora directory (or use '@sample')"
        )
    return path


def require_dir(path: Path) -> Path:
    """Return ``path`` if it is a directory, else raise :class:`DataError`."""
    if not path.is_dir():
        raise DataError(
            path, "data directory does not exist", "check data.root points at the corpora directory"
        )
    return path


def read_text(path: Path, allow_empty: bool = False) -> str:
    """Read a UTF-8 text file; non-UTF-8 bytes and (unless allowed) empty files raise :class:`DataError`."""
    raw = require_file(path).read_bytes()
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise DataError(
            path, f"byte {raw[exc.start]:#04x} is not valid UTF-8", REENCODE_FIX, line=line
        ) from None
    if not allow_empty and not text.strip():
        raise DataError(path, "file is empty", "restore the file from the corpus release (it has no records)")
    return text


def lines(path: Path) -> Iterator[tuple[int, str]]:
    """Yield ``(1-based line number, line without its newline)`` of a UTF-8 text file."""
    for number, line in enumerate(read_text(path).split("\n"), start=1):
        yield number, line.rstrip("\r")


def json_lines(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line number, object)`` for each non-blank line of a JSON-lines file."""
    for number, line in lines(path):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(
                path, f"invalid JSON: {exc.msg}", "fix the line: one JSON object per line", number
            ) from None
        if not isinstance(obj, dict):
            raise DataError(path, "line is not a JSON object", "write one JSON object per line", number)
        yield number, obj


def load_json(path: Path) -> Any:
    """Parse a UTF-8 JSON file, naming the line of a syntax error."""
    try:
        return json.loads(read_text(path))
    except json.JSONDecodeError as exc:
        raise DataError(path, f"invalid JSON: {exc.msg}", "fix the JSON syntax", exc.lineno) from None


def check_label(label: str, allowed: tuple[str, ...], path: Path, line: int | None) -> None:
    """Raise :class:`DataError` if ``label`` is not one of ``allowed``."""
    if label not in allowed:
        raise DataError(
            path,
            f"unknown label {label!r}",
            f"use one of {', '.join(allowed)} (or add it to the source's label set)",
            line,
        )

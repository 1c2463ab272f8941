"""File access shared by the readers: existence, UTF-8 decoding and error messages naming file:line.

Also the readers' counters: what a reader repaired or skipped on purpose (e.g. ``I-`` tags turned into ``B-``)
is counted with :func:`count` while :func:`biotune.sources.load_records` reads a split, and handed to the
build through :func:`biotune.sources.reader_counts`.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from biotune.errors import DataError

REENCODE_FIX = "re-encode as UTF-8 (e.g. `iconv -f latin1 -t utf-8 IN > OUT`)"
NUL_FIX = (
    "the file holds NUL bytes (binary or damaged data): restore it from the corpus release, "
    "or remove them (`tr -d '\\000' < IN > OUT`) and check the lines around"
)
_ESCAPED_NUL = re.compile(r"\\u0000", re.IGNORECASE)

#: Counts of the read in progress (see the module docstring); reset by ``load_records`` for each split.
_CURRENT: Counter[str] = Counter()


def count(what: str, n: int = 1) -> None:
    """Add ``n`` to the counter ``what`` of the split being read (a repair or a documented skip)."""
    _CURRENT[what] += n


def take_counts() -> dict[str, int]:
    """The counters of the read that just finished, and a fresh start for the next one."""
    out = dict(_CURRENT)
    _CURRENT.clear()
    return out


CORPUS_FIX = "check data.root points at the corpora directory (or use '@sample')"


def require_file(path: Path, fix: str = CORPUS_FIX) -> Path:
    """Return ``path`` if it is a readable file, else raise :class:`DataError` with ``fix``."""
    if not path.is_file():
        what = "is a directory, not a file" if path.is_dir() else "does not exist"
        raise DataError(path, f"data file {what}", fix)
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
    nul = text.find("\x00")
    if nul >= 0:
        raise DataError(path, "NUL byte in the text", NUL_FIX, line=text.count("\n", 0, nul) + 1)
    if not allow_empty and not text.strip():
        raise DataError(path, "file is empty", "restore the file from the corpus release (it has no records)")
    return text


def check_no_escaped_nul(text: str, path: Path, first_line: int = 1) -> None:
    """A JSON ``\\u0000`` escape decodes to a NUL character: refuse it like a raw NUL byte."""
    found = _ESCAPED_NUL.search(text)
    if found:
        line = first_line + text.count("\n", 0, found.start())
        raise DataError(path, "a JSON string holds \\u0000 (a NUL character)", NUL_FIX, line=line)


def lines(path: Path) -> Iterator[tuple[int, str]]:
    """Yield ``(1-based line number, line without its newline)`` of a UTF-8 text file."""
    return split_lines(read_text(path))


def split_lines(text: str) -> Iterator[tuple[int, str]]:
    """Yield ``(1-based line number, line without its newline)`` of a text (``\\n`` or ``\\r\\n`` endings)."""
    for number, line in enumerate(text.split("\n"), start=1):
        yield number, line.rstrip("\r")


def json_lines(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line number, object)`` for each non-blank line of a JSON-lines file."""
    for number, line in lines(path):
        if not line.strip():
            continue
        check_no_escaped_nul(line, path, number)
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(
                path, f"invalid JSON: {exc.msg}", "fix the line: one JSON object per line", number
            ) from None
        if not isinstance(obj, dict):
            raise DataError(path, "line is not a JSON object", "write one JSON object per line", number)
        yield number, obj


class _DuplicateKey(Exception):
    def __init__(self, key: str) -> None:
        self.key = key


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise _DuplicateKey(key)
        seen[key] = value
    return seen


def load_json(path: Path, key_name: str = "key", duplicate_fix: str = "keep one entry per key") -> Any:
    """Parse a UTF-8 JSON file, naming the line of a syntax error.

    A key repeated inside one object is an error naming the key (as ``key_name``) and the line of its second
    occurrence: ``json`` would silently keep the last value.
    """
    text = read_text(path)
    check_no_escaped_nul(text, path)
    try:
        return json.loads(text, object_pairs_hook=_unique_pairs)
    except json.JSONDecodeError as exc:
        raise DataError(path, f"invalid JSON: {exc.msg}", "fix the JSON syntax", exc.lineno) from None
    except _DuplicateKey as dup:
        places = [m.start() for m in re.finditer(re.escape(json.dumps(dup.key)) + r"\s*:", text)]
        line = text.count("\n", 0, places[1]) + 1 if len(places) > 1 else None
        first = f" (first on line {text.count(chr(10), 0, places[0]) + 1})" if places else ""
        raise DataError(
            path,
            f"{key_name} {dup.key} occurs twice{first}; JSON keeps only the last one",
            duplicate_fix,
            line,
        ) from None


def check_label(label: str, allowed: tuple[str, ...], path: Path, line: int | None) -> None:
    """Raise :class:`DataError` if ``label`` is not one of ``allowed``."""
    if label not in allowed:
        raise DataError(
            path,
            f"unknown label {label!r}",
            f"use one of {', '.join(allowed)} (or add it to the source's label set)",
            line,
        )

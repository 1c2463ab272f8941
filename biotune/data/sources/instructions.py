"""The published instruction-set schema -> :class:`InstructionRecord`.

Llama2-MedTuned published its data as ``nlpie/Llama2-MedTuned-Instructions`` with columns ``instruction``,
``input``, ``output`` and ``source``. :func:`load_instructions` reads that schema from a local file
(``.jsonl`` one object per line; ``.json`` a list of objects or ``{split: [objects]}``; ``.parquet``) or, only
when ``location`` is written ``hf://org/name``, from the Hugging Face hub with ``datasets.load_dataset(
"org/name", split=split)`` (needs network or a warm cache). A local path never becomes a hub request: a path
that does not exist is an error naming it. ``source`` may be missing (read as ``""``); the other three
columns must be strings. Record ids are ``<file stem or hub id>:<split>:<row index>``, so rows of different
files stay distinct.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from biotune.data.records import InstructionRecord
from biotune.data.sources._io import json_lines, load_json, require_file
from biotune.errors import DataError

log = logging.getLogger(__name__)

COLUMNS = ("instruction", "input", "output")
#: The prefix that marks an instruction set on the Hugging Face hub (``hf://nlpie/Llama2-MedTuned-Instructions``).
HUB_PREFIX = "hf://"
_FIX = "each row needs string columns instruction, input, output (and optionally source)"


def _record(row: Mapping[str, Any], rid: str, where: str | Path, line: int | None) -> InstructionRecord:
    missing = [c for c in COLUMNS if not isinstance(row.get(c), str)]
    if missing:
        raise DataError(where, f"row {rid} lacks string column(s) {', '.join(missing)}", _FIX, line)
    source = row.get("source")
    return InstructionRecord(rid, row["instruction"], row["input"], row["output"], str(source or ""))


def _json_rows(path: Path, split: str) -> list[tuple[int | None, Mapping[str, Any]]]:
    data = load_json(path)
    if isinstance(data, dict):
        if split not in data:
            raise DataError(
                path,
                f"no split {split!r}; the file has {', '.join(map(str, data))}",
                "pick one of those splits",
            )
        data = data[split]
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise DataError(path, "expected a list of objects (or {split: [objects]})", _FIX)
    return [(None, r) for r in data]


def _local_rows(path: Path, split: str) -> Iterable[tuple[int | None, Mapping[str, Any]]]:
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        return list(json_lines(path))
    if suffix == ".json":
        return _json_rows(path, split)
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        return [(None, r) for r in pq.read_table(path).to_pylist()]
    raise DataError(
        path, f"unsupported file type {suffix!r}", "use .jsonl, .json or .parquet, or a hub dataset id"
    )


def _hub_rows(dataset_id: str, split: str) -> Iterable[tuple[int | None, Mapping[str, Any]]]:
    import datasets

    try:
        ds = datasets.load_dataset(dataset_id, split=split)
    except Exception as exc:  # the hub client raises many types; name the id and the fix
        raise DataError(
            dataset_id,
            f"cannot load hub dataset split {split!r}: {exc}",
            "check the id and split, or download it and pass a local file",
        ) from exc
    return ((None, row) for row in ds)


def load_instructions(location: str | Path, split: str = "train") -> list[InstructionRecord]:
    """Read instruction records from a local file or a hub dataset id (see the module docstring)."""
    if str(location).startswith(HUB_PREFIX):
        hub_id = str(location)[len(HUB_PREFIX) :]
        rows, prefix, path = _hub_rows(hub_id, split), hub_id, Path(hub_id)
    else:
        path = Path(location)
        require_file(
            path,
            "check data.instruction_files: each entry must name an existing .jsonl, .json or "
            f".parquet file, or a hub dataset written {HUB_PREFIX}org/name",
        )
        rows, prefix = _local_rows(path, split), path.stem
    records = [_record(row, f"{prefix}:{split}:{i}", path, line) for i, (line, row) in enumerate(rows)]
    if not records:
        raise DataError(location, "no instruction rows", "check the file or the split name")
    log.info("read %d instruction records from %s (%s)", len(records), location, split)
    return records

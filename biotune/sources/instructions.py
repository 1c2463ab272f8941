"""The published instruction-set schema -> :class:`InstructionRecord`.

Llama2-MedTuned published its data as ``nlpie/Llama2-MedTuned-Instructions`` with columns ``instruction``,
``input``, ``output`` and ``source``, and its code ships evaluation sets as ``datasets`` ``save_to_disk``
directories. :func:`load_instructions` reads that schema from a local file (``.jsonl`` one object per line;
``.json`` a list of objects or ``{split: [objects]}``; ``.parquet``; ``.arrow``, a ``datasets`` Arrow file,
stream or file format), a ``save_to_disk`` directory (one ``Dataset``, or a ``DatasetDict`` whose ``split`` is
read), or, only when ``location`` is written ``hf://org/name@<commit>``, from the Hugging Face hub with
``datasets.load_dataset("org/name", split=split, revision=commit)`` (needs network or a warm cache). A hub id
must be pinned to a full commit hash (:func:`biotune.sources.hub.hub_pin_problem`): rows read by id alone could
change under a cached build. A local path never becomes a hub request: a path that does not exist is an error
naming it. Nothing here unpickles: Arrow files and the
``save_to_disk`` JSON state only.

:data:`PUBLISHED_SOURCES` maps the ``source`` values of the published set to biotune sources, whose task
parses and scores a row when instruction rows are evaluated (:func:`map_source`). ``source`` may be missing (read as ``""``); the other three
columns must be strings. Record ids are ``<file stem or hub id>:<split>:<row index>``, so rows of different
files stay distinct.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from biotune.errors import DataError
from biotune.sources._io import json_lines, load_json, require_file
from biotune.sources.hub import HUB_PREFIX, hub_location, hub_pin_problem
from biotune.sources.records import InstructionRecord
from biotune.sources.registry import SOURCES

log = logging.getLogger(__name__)

COLUMNS = ("instruction", "input", "output")

#: The published set's ``source`` names -> the biotune source whose task reads them (matched after
#: :func:`source_key`: case, spaces, ``-`` and ``_`` do not matter). Override or extend per set with
#: ``eval.instructions.NAME.source_map``.
PUBLISHED_SOURCES = {
    "NCBI-disease": "ncbi_disease",
    "BC5CDR-chem": "bc5cdr_chem",
    "BC5CDR-disease": "bc5cdr_disease",
    "BC2GM": "bc2gm",
    "JNLPBA": "jnlpba",
    "i2b2-2012": "i2b2_2012",
    "i2b2-2010": "i2b2_2010_re",
    "MedNLI": "mednli",
    "HoC": "hoc",
    "GAD": "gad",
}


def source_key(value: str) -> str:
    """A ``source`` value reduced for matching: lower case, without spaces, ``-``, ``_`` and ``.``."""
    return "".join(ch for ch in value.casefold() if ch not in " -_.")


def map_source(value: str, overrides: Mapping[str, str] | None = None) -> str | None:
    """The biotune source a row's ``source`` value names: ``overrides`` first (exact, then reduced), then
    :data:`PUBLISHED_SOURCES`, then a biotune source of that name; None when nothing matches."""
    overrides = dict(overrides or {})
    if value in overrides:
        return overrides[value] or None
    key = source_key(value)
    for table in (overrides, PUBLISHED_SOURCES, {n: n for n in SOURCES}):
        for raw, target in table.items():
            if source_key(raw) == key:
                return target or None
    return None


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
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            return [(None, r) for r in pq.read_table(path).to_pylist()]
        except (pa.ArrowException, OSError) as err:  # corrupt footer, page or thrift header
            what = " ".join(str(err).split())[:300]
            raise DataError(
                path, f"not a readable Parquet file ({what})", "write it again with pandas/pyarrow/datasets"
            ) from None
    if suffix == ".arrow":
        return [(None, r) for r in _arrow_table(path).to_pylist()]
    raise DataError(
        path,
        f"unsupported file type {suffix!r}",
        "use .jsonl, .json, .parquet or .arrow, a save_to_disk directory, or a hub dataset id",
    )


def _arrow_table(path: Path) -> Any:
    """An Arrow IPC file in either framing (``datasets`` writes the stream format; pyarrow's default is file)."""
    import pyarrow as pa

    errors = []
    for opener in (pa.ipc.open_stream, pa.ipc.open_file):
        try:
            with pa.memory_map(str(path)) as source:
                return opener(source).read_all()
        except (pa.ArrowInvalid, OSError) as err:
            errors.append(str(err))
    raise DataError(path, f"not an Arrow IPC file ({errors[-1]})", "write it with datasets or pyarrow.ipc")


def _disk_rows(path: Path, split: str) -> list[tuple[int | None, Mapping[str, Any]]]:
    """A ``save_to_disk`` directory: a ``Dataset`` (``state.json``), or a ``DatasetDict``
    (``dataset_dict.json``) whose ``split`` is read."""
    import datasets

    try:
        loaded = datasets.load_from_disk(str(path))
    except (FileNotFoundError, ValueError, OSError) as err:
        raise DataError(
            path,
            f"not a datasets save_to_disk directory ({str(err).splitlines()[0]})",
            "point at the folder written by Dataset.save_to_disk / DatasetDict.save_to_disk",
        ) from err
    if isinstance(loaded, datasets.DatasetDict):
        if split not in loaded:
            raise DataError(
                path,
                f"no split {split!r}; the DatasetDict has {', '.join(loaded)}",
                "set the instruction set's split to one of those",
            )
        loaded = loaded[split]
    return [(None, row) for row in loaded]


def _hub_rows(dataset_id: str, revision: str, split: str) -> Iterable[tuple[int | None, Mapping[str, Any]]]:
    import datasets

    try:
        ds = datasets.load_dataset(dataset_id, split=split, revision=revision)
    except Exception as exc:  # the hub client raises many types; name the id and the fix
        raise DataError(
            f"{HUB_PREFIX}{dataset_id}@{revision}",
            f"cannot load hub dataset split {split!r}: {exc}",
            "check the id, commit and split, or download it and pass a local file",
        ) from exc
    return ((None, row) for row in ds)


def load_instructions(location: str | Path, split: str = "train") -> list[InstructionRecord]:
    """Read instruction records from a local file or a hub dataset id (see the module docstring)."""
    hub = hub_location(str(location))
    if hub is not None:
        pin = hub_pin_problem("path", str(location))
        if (
            pin is not None
        ):  # config validation refuses it first; a caller of this function gets the same rule
            raise DataError(location, pin.problem, pin.fix)
        hub_id, revision = hub
        rows, prefix, path = _hub_rows(hub_id, revision, split), hub_id, Path(hub_id)
    else:
        path = Path(location)
        if path.is_dir():
            rows, prefix = _disk_rows(path, split), path.name
        else:
            require_file(
                path,
                "check the instruction set's path (data.instructions.NAME.path): it must name an existing "
                ".jsonl, .json, .parquet or .arrow file, a save_to_disk directory, or a hub dataset written "
                f"{HUB_PREFIX}org/name@<commit>",
            )
            rows, prefix = _local_rows(path, split), path.stem
    records = [_record(row, f"{prefix}:{split}:{i}", path, line) for i, (line, row) in enumerate(rows)]
    if not records:
        raise DataError(location, "no instruction rows", "check the file or the split name")
    log.info("read %d instruction records from %s (%s)", len(records), location, split)
    return records

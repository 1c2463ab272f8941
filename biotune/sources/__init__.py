"""Source readers: native corpus files -> typed records (:mod:`biotune.sources.records`).

``SOURCES`` names every corpus biotune knows (:mod:`.registry`); :func:`load_records` reads one split of one
source from a data root laid out like ``../shared/data``, or from the synthetic sample corpus shipped in the
package when ``root == "@sample"``. One module per native format: :mod:`.conll`, :mod:`.pubtator`,
:mod:`.relation`, :mod:`.nli`, :mod:`.classification`, :mod:`.qa` (:mod:`.formats` maps each format name to its
reader); :mod:`.instructions` reads the published instruction-set schema.

This package is the corpus catalogue: it never imports :mod:`biotune.config` (a declared source or a data config
arrives as a plain object), so the config's validation can name unknown sources and splits with it.
"""

from __future__ import annotations

import dataclasses
import difflib
import logging
from pathlib import Path
from typing import Any

from biotune.errors import BiotuneError, ConfigError, DataError, Problem
from biotune.sources import _io, custom
from biotune.sources.formats import FORMAT_KINDS, READERS
from biotune.sources.instructions import load_instructions
from biotune.sources.records import Record
from biotune.sources.registry import SOURCES
from biotune.sources.spec import KINDS, SourceSpec
from biotune.sources.splits import set_label

__all__ = [
    "FORMAT_KINDS",
    "KINDS",
    "SAMPLE_ROOT",
    "SOURCES",
    "SourceSpec",
    "UnknownSourceError",
    "available_splits",
    "catalog",
    "get_spec",
    "load_instructions",
    "load_records",
    "reader_counts",
    "reset_reader_counts",
    "resolve_root",
    "split_path",
]

log = logging.getLogger(__name__)

#: The synthetic sample corpus bundled with the package (``data.root: "@sample"``).
SAMPLE_ROOT = Path(__file__).resolve().parent.parent / "data" / "sample"
SAMPLE = "@sample"


class UnknownSourceError(BiotuneError):
    """A source name that is not in :data:`SOURCES`; the message lists close matches."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.close_matches = difflib.get_close_matches(name, list(SOURCES), n=3, cutoff=0.5)
        hint = f"did you mean {', '.join(self.close_matches)}? " if self.close_matches else ""
        self.fix = f"{hint}known sources: {', '.join(sorted(SOURCES))}"
        super().__init__(f"unknown source {name!r}\n  fix: {self.fix}")


def catalog(data: Any = None) -> dict[str, SourceSpec]:
    """Every source a config can name: the registry, the config's ``data.custom_sources`` (see
    :mod:`.custom`), with ``data.split_files`` applied (a split mapped to a file is read from there first).

    ``data`` is a :class:`biotune.config.DataConfig` (or None: the registry alone). Config validation has
    already rejected bad declarations; :func:`.custom.spec_of` builds each declared source's spec.
    """
    if data is None:
        return dict(SOURCES)
    out = dict(SOURCES)
    for name, declared in (getattr(data, "custom_sources", None) or {}).items():
        out[name] = custom.spec_of(name, declared)
    for name, files in (getattr(data, "split_files", None) or {}).items():
        if name in out and files:  # a mapped file is the split's only place: no silent fall-back elsewhere
            spec = out[name]
            layouts = {s: p for s, p in spec.layouts.items() if s not in files}
            out[name] = dataclasses.replace(spec, splits={**spec.splits, **files}, layouts=layouts)
    return out


def get_spec(name: str, data: Any = None) -> SourceSpec:
    """The spec of a source (registered, or declared in ``data``), or :class:`UnknownSourceError`."""
    try:
        return catalog(data)[name]
    except KeyError:
        raise UnknownSourceError(name) from None


def configured_spec(name: str, data: Any) -> SourceSpec:
    """The spec of a source named in the data config ``data`` (registered, or declared in
    ``data.custom_sources``); an unknown name is a :class:`ConfigError` on ``data.sources.<name>``."""
    known = catalog(data)
    if name not in known:
        raise ConfigError([Problem(f"data.sources.{name}", "unknown source", UnknownSourceError(name).fix)])
    return known[name]


def _expand_root(root: str | Path) -> Path:
    """``"@sample"`` -> the bundled sample corpus; anything else -> that path (not checked)."""
    return SAMPLE_ROOT if str(root) == SAMPLE else Path(root)


def resolve_root(root: str | Path) -> Path:
    """``data.root`` as an existing directory, absolute (``@sample`` = the corpus bundled inside the package).

    Raises:
        ConfigError: on ``data.root``, when it is a file or does not exist.
    """
    path = _expand_root(root).expanduser().resolve()
    if not path.is_dir():
        raise ConfigError(
            [
                Problem(
                    "data.root",
                    f"{path} is a file, not a directory of corpora"
                    if path.exists()
                    else f"directory {path} does not exist",
                    "point data.root (or $BIOTUNE_DATA_DIR) at the directory holding the corpora, or use "
                    "data.root=@sample",
                )
            ]
        )
    return path


def available_splits(spec: SourceSpec, root: str | Path) -> dict[str, Path]:
    """The splits of ``spec`` found under ``root`` -> the path each is read from (the first candidate that
    exists; see :meth:`SourceSpec.candidates`)."""
    base = _expand_root(root)
    found = {}
    for split in spec.split_names:
        path = next((base / rel for rel in spec.candidates(split) if (base / rel).exists()), None)
        if path is not None:
            found[split] = path
    return found


def split_path(spec: SourceSpec, split: str, root: str | Path) -> Path:
    """Where a split's file (or folder) lives: the first of its candidate paths that exists.

    Raises:
        DataError: for a split the source does not know, or one found nowhere: the message lists the paths
            searched and the splits that were found, and the fix says where to put the file or how to map it.
    """
    base = _expand_root(root)
    where = spec.config_key or f"data.sources.{spec.name}"
    if split not in spec.split_names:
        raise DataError(
            base / spec.name,
            f"source {spec.name!r} has no split {split!r} (its splits: {', '.join(spec.split_names)})",
            f"use one of its splits, or map a file to it with data.split_files.{spec.name}.{split}=PATH",
        )
    searched = [base / rel for rel in spec.candidates(split)]
    for path in searched:
        if path.exists():
            return path
    found = available_splits(spec, root)
    found_text = ", ".join(f"{s} ({p})" for s, p in found.items()) or "none"
    hint = "the sample corpus has no files for this source; " if str(root) == SAMPLE else ""
    raise DataError(
        searched[0],
        f"{set_label(spec.name, split)} data not found; searched {', '.join(map(str, searched))}; "
        f"splits found for {spec.name}: {found_text}",
        f"{hint}put the {split} file at {searched[0]} (data.root is {base}), or map it with "
        f"data.split_files.{spec.name}.{split}=PATH ({where})",
    )


def load_records(source: str | SourceSpec, split: str, root: str | Path) -> list[Record]:
    """Read one split of one source into typed records, in file order, with ids unique within the split.

    ``source`` is a registered name or a spec (from :func:`catalog`, for sources declared in a config).
    """
    spec = get_spec(source) if isinstance(source, str) else source
    name = spec.name
    path = split_path(spec, split, root)
    _io.take_counts()  # a reader that failed half-way must not leak its counts into this read
    records = READERS[spec.format](path, spec, split)
    counts = _io.take_counts()
    _READ_COUNTS[set_label(name, split)] = counts
    noted = {k: v for k, v in counts.items() if v}
    log.info(
        "%s: %d records from %s%s", set_label(name, split), len(records), path, f" {noted}" if noted else ""
    )
    return records


#: ``"<source>/<split>"`` -> what the reader repaired or skipped on purpose while reading it (see ``reader_counts``).
_READ_COUNTS: dict[str, dict[str, int]] = {}


def reader_counts() -> dict[str, dict[str, int]]:
    """What the readers repaired or skipped, per ``"<source>/<split>"`` read since :func:`reset_reader_counts`.

    Counters (absent = 0): ``iob_repairs`` (CoNLL ``I-`` tags that did not continue a mention, turned into
    ``B-``); ``duplicate_documents`` and ``overlapping_mentions`` (PubTator NER: verbatim repeats read once,
    mentions dropped under an earlier overlapping one); ``ddi_true_without_type`` (DDI pairs labelled
    ``DDI-int``). Every split read has an entry, so an empty dict means "read, nothing repaired".
    """
    return {key: dict(value) for key, value in _READ_COUNTS.items()}


def reset_reader_counts() -> None:
    """Forget earlier reads (call before a build collects its sources)."""
    _READ_COUNTS.clear()

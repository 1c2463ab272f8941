"""Source readers: native corpus files -> typed records (:mod:`biotune.data.records`).

``SOURCES`` names every corpus biotune knows (:mod:`.registry`); :func:`load_records` reads one split of one
source from a data root laid out like ``../shared/data``, or from the synthetic sample corpus shipped in the
package when ``root == "@sample"``. One module per native format: :mod:`.conll`, :mod:`.pubtator`,
:mod:`.relation`, :mod:`.nli`, :mod:`.classification`, :mod:`.qa`; :mod:`.instructions` reads the published
instruction-set schema.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Callable
from pathlib import Path

from biotune.data.records import Record
from biotune.data.sources import _io, classification, conll, nli, pubtator, qa, relation
from biotune.data.sources.instructions import load_instructions
from biotune.data.sources.registry import SOURCES
from biotune.data.sources.spec import KINDS, SourceSpec
from biotune.errors import BiotuneError, DataError

__all__ = [
    "KINDS",
    "SAMPLE_ROOT",
    "SOURCES",
    "SourceSpec",
    "UnknownSourceError",
    "get_spec",
    "load_instructions",
    "load_records",
    "reader_counts",
    "reset_reader_counts",
    "resolve_root",
]

log = logging.getLogger(__name__)

#: The synthetic sample corpus bundled with the package (``data.root: "@sample"``).
SAMPLE_ROOT = Path(__file__).resolve().parent.parent / "sample"
SAMPLE = "@sample"

Reader = Callable[[Path, SourceSpec, str], list]
READERS: dict[str, Reader] = {
    "conll": conll.load_conll,
    "pubtator_ner": pubtator.load_pubtator_ner,
    "pubtator_cid": pubtator.load_cid,
    "blue_tsv": relation.load_masked_tsv,
    "i2b2_re": relation.load_masked_tsv,
    "chemprot_jsonl": relation.load_chemprot_jsonl,
    "ddi_xml": relation.load_ddi,
    "mednli_jsonl": nli.load_mednli,
    "hoc": classification.load_hoc,
    "pubmedqa": qa.load_pubmedqa,
    "bioasq_tsv": qa.load_bioasq_tsv,
}


class UnknownSourceError(BiotuneError):
    """A source name that is not in :data:`SOURCES`; the message lists close matches."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.close_matches = difflib.get_close_matches(name, list(SOURCES), n=3, cutoff=0.5)
        hint = f"did you mean {', '.join(self.close_matches)}? " if self.close_matches else ""
        self.fix = f"{hint}known sources: {', '.join(sorted(SOURCES))}"
        super().__init__(f"unknown source {name!r}\n  fix: {self.fix}")


def get_spec(name: str) -> SourceSpec:
    """The spec of a registered source, or :class:`UnknownSourceError` listing close matches."""
    try:
        return SOURCES[name]
    except KeyError:
        raise UnknownSourceError(name) from None


def resolve_root(root: str | Path) -> Path:
    """``"@sample"`` -> the bundled sample corpus; anything else -> that path."""
    return SAMPLE_ROOT if str(root) == SAMPLE else Path(root)


def split_path(spec: SourceSpec, split: str, root: str | Path) -> Path:
    """Where a split's file (or folder) lives; an unknown split names the available ones."""
    if split not in spec.splits:
        raise DataError(
            resolve_root(root) / spec.name,
            f"source {spec.name!r} has no split {split!r}",
            f"use one of its splits: {', '.join(spec.splits)}",
        )
    return resolve_root(root) / spec.splits[split]


def load_records(name: str, split: str, root: str | Path) -> list[Record]:
    """Read one split of one source into typed records, in file order, with ids unique within the split."""
    spec = get_spec(name)
    path = split_path(spec, split, root)
    if not path.exists():
        hint = "the sample corpus has no files for this source" if str(root) == SAMPLE else "check data.root"
        raise DataError(
            path, f"{name}/{split} data not found", f"{hint}; expected the layout of ../shared/data"
        )
    _io.take_counts()  # a reader that failed half-way must not leak its counts into this read
    records = READERS[spec.format](path, spec, split)
    counts = _io.take_counts()
    _READ_COUNTS[f"{name}/{split}"] = counts
    noted = {k: v for k, v in counts.items() if v}
    log.info("%s/%s: %d records from %s%s", name, split, len(records), path, f" {noted}" if noted else "")
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

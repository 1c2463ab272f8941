"""Typed records: what a source reader yields and a task consumes.

Records are corpus-agnostic. Every record has a stable ``id`` (unique within its source and split) that
follows it through the mixture, the packed rows, the trainer's consumed-sample log and the evaluator.

This module owns the sample-id format: ``"<source>/<split>/<record id>"`` (record ids may contain ``/``), with
``#k`` appended to the k-th extra copy of a sample when the mixture upsamples. Make and read ids only through
:func:`sample_id`, :func:`repeat_id`, :func:`base_id` and :func:`parse_sample_id`.
"""

from __future__ import annotations

from dataclasses import dataclass

from biotune.errors import shown


@dataclass(frozen=True)
class NerSentence:
    """A tokenized sentence with one IOB2 tag per token (``O``, ``B-Disease``, ``I-Disease``...).

    Untyped corpora use the entity type of their source (e.g. BC2GM -> ``B-Gene``), so every tag is typed.
    """

    id: str
    tokens: tuple[str, ...]
    tags: tuple[str, ...]


@dataclass(frozen=True)
class RelationPair:
    """A sentence with two marked entities and the relation label between them.

    ``text`` keeps the corpus's own masking or marking (``@GENE$``, ``<< >>``/``[[ ]]``, ``@problem$``...).
    The negative class is named by the source spec (e.g. ``false``, ``No Relations``).
    """

    id: str
    text: str
    label: str
    head: str = ""
    tail: str = ""


@dataclass(frozen=True)
class NliPair:
    """A premise/hypothesis pair with ``entailment``, ``contradiction`` or ``neutral``."""

    id: str
    premise: str
    hypothesis: str
    label: str


@dataclass(frozen=True)
class QaItem:
    """A question with an optional context and a closed-set answer (``yes``/``no``/``maybe``)."""

    id: str
    question: str
    context: str
    label: str


@dataclass(frozen=True)
class DocLabels:
    """A text with a set of labels (possibly empty), e.g. HoC hallmarks."""

    id: str
    text: str
    labels: tuple[str, ...]


@dataclass(frozen=True)
class InstructionRecord:
    """A ready-made sample in the published instruction-set schema (``instruction, input, output, source``)."""

    id: str
    instruction: str
    input: str
    output: str
    source: str


Record = NerSentence | RelationPair | NliPair | QaItem | DocLabels | InstructionRecord


@dataclass(frozen=True)
class Sample:
    """An instruction sample: what a task makes of a record, and what the mixture composes.

    ``id`` is ``"<source>/<split>/<record id>"`` and stays unique across the whole mixture (repeats from
    upsampling get a ``#k`` suffix in the mixture, never here).
    """

    id: str
    source: str
    task: str
    instruction: str
    input: str
    output: str


#: Separates a sample id from the repeat number the mixture gives extra copies (``ncbi_disease/train/7#2``).
REPEAT_SEP = "#"


def sample_id(source: str, split: str, record_id: str) -> str:
    """The id of the sample made from ``record_id`` of ``source``'s ``split``."""
    return f"{source}/{split}/{record_id}"


def repeat_id(sid: str, k: int) -> str:
    """The id of the ``k``-th extra copy of sample ``sid`` (``k == 0`` is the sample itself)."""
    return sid if k == 0 else f"{sid}{REPEAT_SEP}{k}"


def base_id(sid: str) -> str:
    """``sid`` without a repeat suffix."""
    return sid.split(REPEAT_SEP, 1)[0]


def is_repeat(sid: str) -> bool:
    """True for an extra copy made by upsampling."""
    return REPEAT_SEP in sid


def parse_sample_id(sid: str) -> tuple[str, str, str]:
    """``"<source>/<split>/<record id>"`` (repeat suffix ignored) -> (source, split, record id); ValueError if malformed."""
    parts = base_id(sid).split("/", 2)
    if len(parts) != 3 or not all(parts):
        raise ValueError(f"sample id {shown(sid)!r} is not '<source>/<split>/<record id>'")
    return parts[0], parts[1], parts[2]

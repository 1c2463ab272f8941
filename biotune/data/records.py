"""Typed records: what a source reader yields and a task consumes.

Records are corpus-agnostic. Every record has a stable ``id`` (unique within its source and split) that
follows it through the mixture, the packed rows, the trainer's consumed-sample log and the evaluator.
"""

from __future__ import annotations

from dataclasses import dataclass


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

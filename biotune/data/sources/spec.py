"""What a corpus is: :class:`SourceSpec`, one per registered source (see :mod:`.registry`)."""

from __future__ import annotations

from dataclasses import dataclass, field

#: The kinds of record a source yields (see :mod:`biotune.data.records`).
KINDS = ("ner", "re", "nli", "qa", "cls")


@dataclass(frozen=True)
class SourceSpec:
    """A corpus: where its split files live, how to read them and what labels they may hold.

    ``restricted`` marks data that must not be redistributed freely or used commercially (credentialed,
    non-commercial, or of unknown/unclear licence): anything built from it stays private.
    """

    name: str
    kind: str
    """One of :data:`KINDS`."""
    format: str
    """Reader key, e.g. ``conll``, ``pubtator_ner``, ``blue_tsv``, ``ddi_xml`` (see ``load_records``)."""
    splits: dict[str, str]
    """Split name (the corpus's own: ``devel`` vs ``dev``) -> path relative to the data root."""
    labels: tuple[str, ...]
    """NER: entity types; RE: relation labels incl. the negative; NLI/QA: answers; CLS: label names."""
    licence: str
    restricted: bool
    credentialed: bool
    description: str
    negative_label: str | None = None
    """RE only: the label that means "no relation"."""
    headline_with_negative: bool = False
    """RE only: the headline micro-F1 counts the negative class too (the paper's i2b2-2010 convention); BLURB's,
    the default, leaves it out."""
    paper_count: int | None = None
    """Train examples Llama2-MedTuned used from this source, where the paper used it."""
    entity_type: str | None = None
    """NER only: the type given to untyped ``B``/``I`` tags (so every tag is typed IOB2)."""
    type_map: dict[str, str] = field(default_factory=dict)
    """PubTator only: corpus mention type -> entity type (e.g. ``SpecificDisease`` -> ``Disease``)."""
    generated: bool = False
    """True for corpora written by code (``synthetic_ner``) rather than found under the data root."""
    label_aliases: dict[str, str] = field(default_factory=dict)
    """Label spellings in the files -> the canonical label (e.g. ``false`` -> ``No Relations``)."""

    @property
    def tag_set(self) -> tuple[str, ...]:
        """NER: every valid IOB2 tag (``O`` first), in a stable order."""
        return ("O",) + tuple(f"{p}-{t}" for t in self.labels for p in ("B", "I"))

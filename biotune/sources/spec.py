"""What a corpus is: :class:`SourceSpec`, one per registered source (see :mod:`.registry`)."""

from __future__ import annotations

from dataclasses import dataclass, field

#: The kinds of record a source yields (see :mod:`biotune.sources.records`).
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
    """Split name (the corpus's own: ``devel`` vs ``dev``) -> path relative to the data root (or absolute).
    Every split of the corpus's official distributions is named here, present on disk or not; see
    :attr:`layouts` for the other places a split may be found."""
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
    layouts: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Split name -> further paths (relative to the data root) where the official distributions put it, tried
    in order after :attr:`splits` (e.g. DDI's ``DDICorpus/Test/Test for DDI Extraction task``, a ``dev.tsv``
    for a ``devel`` split). The first path that exists is read (:func:`biotune.sources.split_path`)."""
    config_key: str = ""
    """Where the source was declared: empty for the built-in registry, ``data.custom_sources.NAME`` for a
    source declared in a config (error messages point there)."""

    def candidates(self, split: str) -> tuple[str, ...]:
        """Every path a split may be found at, in the order they are tried (empty: not a split of this source)."""
        primary = (self.splits[split],) if split in self.splits else ()
        return primary + tuple(p for p in self.layouts.get(split, ()) if p not in primary)

    @property
    def split_names(self) -> tuple[str, ...]:
        """Every split the source knows (present on disk or not), in declaration order."""
        return tuple(dict.fromkeys([*self.splits, *self.layouts]))

    @property
    def labels_key(self) -> str:
        """The place to fix this source's label set: its config key, or the registry entry."""
        return f"{self.config_key}.labels" if self.config_key else f"SOURCES[{self.name!r}].labels"

    @property
    def tag_set(self) -> tuple[str, ...]:
        """NER: every valid IOB2 tag (``O`` first), in a stable order."""
        return ("O",) + tuple(f"{p}-{t}" for t in self.labels for p in ("B", "I"))

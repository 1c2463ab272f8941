"""Multi-label document classification (HoC hallmarks of cancer): any subset of the labels, possibly empty.

The answer is the label names separated by ``, `` (sorted), or ``None``. Reading: every label named anywhere in
the answer, by its name or a synonym of :mod:`.synonyms` (Llama2-MedTuned's ``Activating invasion & metastasis``);
and, per list item (items split at ``,``, ``;``, ``|`` and line ends, bullets dropped), a hallmark abbreviation
that is the whole item (``IM``) or closes it in parentheses (``Genome instability & mutation (GI)``), never an
abbreviation inside prose. An item whose name and abbreviation disagree is flagged (the name is read); an
answer naming no label and no ``None`` is flagged.

Scoring (:func:`biotune.data.tasks.metrics.multilabel_scores`): BLURB's micro-F1 over the document x label matrix is
the headline; per document, its true, spurious and missed labels are the additive statistics.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from biotune.data.tasks import metrics
from biotune.data.tasks.base import ParseResult, Task, bullets, config_error, definition, inline, register
from biotune.data.tasks.matching import LabelMatcher, clip, label_key, label_phrases, phrase_pattern
from biotune.data.tasks.synonyms import HALLMARK_ABBREVIATIONS, NONE_ANSWERS, synonyms_of
from biotune.errors import DataError
from biotune.sources.records import DocLabels

if TYPE_CHECKING:
    from biotune.sources import SourceSpec

HALLMARK_DEFINITIONS: dict[str, str] = {
    "sustaining proliferative signaling": (
        "cells keep growth-promoting signals switched on and proliferate "
        "chronically (growth factors, receptors, downstream signalling)"
    ),
    "evading growth suppressors": (
        "cells escape programs that limit proliferation, e.g. loss of tumour "
        "suppressors such as RB or TP53, or of contact inhibition"
    ),
    "resisting cell death": "cells avoid apoptosis, necrosis, or autophagy-induced death",
    "enabling replicative immortality": (
        "cells divide without limit, e.g. through telomerase or telomere maintenance, avoiding senescence"
    ),
    "inducing angiogenesis": "the tumour induces new blood vessels that supply it",
    "activating invasion and metastasis": (
        "cells invade tissue and spread to distant sites, e.g. through "
        "epithelial-mesenchymal transition or loss of adhesion"
    ),
    "genomic instability and mutation": "DNA damage, defective DNA repair, mutations, or chromosomal instability",
    "tumor promoting inflammation": "inflammation or immune cells that foster tumour development",
    "cellular energetics": "cells reprogram their energy metabolism, e.g. aerobic glycolysis (Warburg effect)",
    "deregulating cellular energetics": (
        "cells reprogram their energy metabolism, e.g. aerobic glycolysis (Warburg effect)"
    ),
    "avoiding immune destruction": "cells escape detection or killing by the immune system",
}

_ITEM_SEPARATORS = re.compile(r"[,;|\n]+")
_BULLET = re.compile(r"^\s*(?:[-*\u2022]+|\d+[.)])\s*")
_CLOSING_TAG = re.compile(r"\(\s*([^()]*?)\s*\)[\s.]*$")


def answer_items(completion: str) -> list[str]:
    """The list items of an answer: split at ``,``, ``;``, ``|`` and line ends, bullets and numbering dropped."""
    items = (_BULLET.sub("", item).strip() for item in _ITEM_SEPARATORS.split(completion))
    return [item for item in items if item]


@register
class ClassificationTask(Task):
    """Multi-label document classification (e.g. HoC hallmarks): any subset of the labels, possibly empty.

    Headline: micro-F1 over the document x label matrix (``f1``, BLURB's HoC score). Resampling unit: the
    document (the record id is its PMID).
    """

    kind = "cls"
    record_type = DocLabels
    headline = "f1"
    reducer = "f1"
    _intros: ClassVar[tuple[str, ...]] = (
        "Assign to the text every label below that applies. Answer with the label names separated by commas, or "
        "None if no label applies.",
        "Which of the following categories does the text discuss? List all that apply, separated by commas; "
        "write None when none applies.",
        "Classify the abstract into the categories it addresses (zero, one or several). Reply with a "
        "comma-separated list of category names, or None.",
        "Read the text and name each category that it is about, comma-separated; if it is about none of them, "
        "answer None.",
    )

    def __init__(self, spec: SourceSpec) -> None:
        self._labels = tuple(spec.labels)
        if not self._labels:
            raise config_error(
                spec.labels_key,
                "a classification source without labels",
                "list the label names in the source spec",
            )
        self._matcher = LabelMatcher(label_phrases(self._labels, {x: synonyms_of(x) for x in self._labels}))
        self._abbreviations = {
            label_key(abbreviation): label
            for label, abbreviation in HALLMARK_ABBREVIATIONS.items()
            if label in self._labels
        }
        super().__init__(spec)

    @property
    def labels(self) -> tuple[str, ...]:
        """The label names."""
        return self._labels

    def format_input(self, record: DocLabels) -> str:
        """The document text."""
        return record.text

    def format_output(self, record: DocLabels) -> str:
        """The gold labels, sorted, joined by ``, ``; ``None`` when there is none."""
        unknown = [x for x in record.labels if x not in self._labels]
        if unknown:
            raise DataError(
                self.spec.name,
                f"record {record.id}: labels {unknown} are not in {self._labels}",
                "fix the reader or the source spec's labels",
            )
        return ", ".join(sorted(record.labels)) or "None"

    def reference(self, record: DocLabels) -> tuple[str, ...]:
        """The gold labels, sorted."""
        return tuple(sorted(record.labels))

    def parse(self, completion: str, record: DocLabels) -> ParseResult:
        """Every label named in the completion (sorted), by name, synonym or an item's abbreviation (see the
        module docstring); ``None`` means the empty set."""
        found = set(self._matcher.find_all(completion))
        conflicts = []
        for item in answer_items(completion):
            abbreviated = self._abbreviated(item)
            if abbreviated is None:
                continue
            named = set(self._matcher.find_all(item))
            if named and abbreviated not in named:
                conflicts.append(item)
            else:
                found.add(abbreviated)
        labels = tuple(sorted(found))
        if conflicts:
            return ParseResult(
                labels, False, f"name and abbreviation disagree in {clip('; '.join(conflicts))}"
            )
        if labels:
            return ParseResult(labels, True)
        none = "|".join(phrase_pattern(p) for p in NONE_ANSWERS)
        if re.search(none, completion, re.IGNORECASE):
            return ParseResult((), True)
        return ParseResult((), False, f"no label names and no None in {clip(completion)}")

    def _abbreviated(self, item: str) -> str | None:
        """The label whose abbreviation is the whole of ``item`` or its closing parenthesised tag, else None."""
        whole = self._abbreviations.get(label_key(item))
        if whole is not None:
            return whole
        tag = _CLOSING_TAG.search(item)
        return self._abbreviations.get(label_key(tag.group(1))) if tag else None

    def score(self, gold: Sequence[Any], pred: Sequence[Any]) -> dict[str, float]:
        """Micro P/R/F1 over the document x label matrix, label macro-F1, example-based F1, exact match."""
        return metrics.multilabel_scores(gold, pred, self._labels)

    def example_stats(self, gold: Any, pred: Any) -> dict[str, float]:
        """Labels of one document that are predicted and gold (``tp``), predicted only (``fp``), gold only
        (``fn``); labels outside the label set are ignored and a ``None`` prediction is the empty set."""
        label_set = set(self._labels)
        g, p = set(gold) & label_set, set(pred or ()) & label_set
        return {"tp": float(len(g & p)), "fp": float(len(p - g)), "fn": float(len(g - p))}

    def _instructions(self) -> tuple[str, ...]:
        definitions = [(label, definition(HALLMARK_DEFINITIONS, label)) for label in self._labels]
        return tuple(
            f"{intro}\nLabels:\n{bullets(definitions)}"
            if i % 2 == 0
            else f"{intro} Labels: {inline(definitions)}."
            for i, intro in enumerate(self._intros)
        )

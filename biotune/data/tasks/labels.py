"""Single-label tasks: relation extraction (RE), natural language inference (NLI), closed questions (QA).

The answer is one label string: the source's label names, the negative class as the source names it, with the
synonyms of :mod:`.synonyms` accepted (``No Relations``, GAD's ``Positive``/``Negative``, the i2b2-2010 relation
names such as ``Treatment improves medical problem``: the spellings Llama2-MedTuned publishes). Reading order: the whole answer or its first line is a label (up to
case, spacing and punctuation); the answer starts with a label as a clause of its own (``Yes. Because ...``);
exactly one label is named anywhere in the prose. Several different labels -> the first, flagged; none -> the
negative label (``""`` where the task has none), flagged.

Scoring (:func:`biotune.data.tasks.metrics.classification_scores`): NLI and QA report accuracy. RE reports micro-F1
without the negative class (BLURB: ChemProt, DDI), with it where the source spec says so
(``SourceSpec.headline_with_negative``: the paper's i2b2-2010 convention), and the positive class's F1 for
binary corpora (GAD, EU-ADR, BC5CDR CID).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from biotune.data.tasks import metrics
from biotune.data.tasks.base import ParseResult, Task, bullets, config_error, definition, inline, register
from biotune.data.tasks.matching import LabelMatcher, label_phrases, read_label
from biotune.data.tasks.synonyms import (
    BINARY_NEGATIVE_SYNONYMS,
    NEGATIVE_SYNONYMS,
    POSITIVE_SYNONYMS,
    synonyms_of,
)
from biotune.errors import DataError
from biotune.sources.records import NliPair, QaItem, RelationPair

if TYPE_CHECKING:
    from biotune.sources import SourceSpec

RELATION_DEFINITIONS: dict[str, str] = {
    # i2b2-2010 relations between a treatment/test and a medical problem (and problem-problem)
    "trip": "the treatment improves or cures the medical problem",
    "trwp": "the treatment worsens the medical problem",
    "trcp": "the treatment causes the medical problem",
    "trap": "the treatment is administered for the medical problem",
    "trnap": "the treatment is not administered because of the medical problem",
    "terp": "the test reveals the medical problem",
    "tecp": "the test is conducted to investigate the medical problem",
    "pip": "one medical problem indicates the other medical problem",
    # ChemProt evaluated groups
    "cpr:3": "the chemical upregulates or activates the protein (upregulator, activator, indirect upregulator)",
    "cpr:4": (
        "the chemical downregulates or inhibits the protein (downregulator, inhibitor, indirect "
        "downregulator)"
    ),
    "cpr:5": "the chemical is an agonist of the protein",
    "cpr:6": "the chemical is an antagonist of the protein",
    "cpr:9": "the chemical is a substrate or product of the protein (substrate, product of)",
    # ChemProt fine-grained labels
    "inhibitor": "the chemical inhibits the protein",
    "activator": "the chemical activates the protein",
    "agonist": "the chemical is an agonist of the protein",
    "antagonist": "the chemical is an antagonist of the protein",
    "agonist-activator": "the chemical is an agonist that activates the protein",
    "agonist-inhibitor": "the chemical is an agonist that inhibits the protein",
    "substrate": "the chemical is a substrate of the protein",
    "product-of": "the chemical is a product of the protein",
    "substrate_product-of": "the chemical is both a substrate and a product of the protein",
    "upregulator": "the chemical directly upregulates the protein",
    "downregulator": "the chemical directly downregulates the protein",
    "indirect-upregulator": "the chemical indirectly upregulates the protein",
    "indirect-downregulator": "the chemical indirectly downregulates the protein",
    # DDI 2013
    "mechanism": (
        "a pharmacokinetic interaction: one drug changes the absorption, distribution, metabolism or "
        "excretion of the other"
    ),
    "effect": "the text describes the effect or pharmacodynamic mechanism of the interaction",
    "advise": "the text gives a recommendation or advice about using the two drugs together",
    "int": "the text states that the drugs interact without saying how",
    # BC5CDR chemical-induced disease
    "cid": "the chemical induces (causes) the disease",
    # binary association corpora (GAD, EU-ADR)
    "1": "the text asserts an association between the two marked entities",
    "0": "the text does not assert an association between the two marked entities",
    "true": "the text asserts a relation between the two marked entities",
}
RELATION_DEFINITIONS |= {
    f"ddi-{k}": RELATION_DEFINITIONS[k] for k in ("mechanism", "effect", "advise", "int")
}

NLI_DEFINITIONS: dict[str, str] = {
    "entailment": "the hypothesis must be true if the premise is true",
    "contradiction": "the hypothesis cannot be true if the premise is true",
    "neutral": "the premise neither confirms nor rules out the hypothesis",
}

QA_DEFINITIONS: dict[str, str] = {
    "yes": "the evidence supports a positive answer",
    "no": "the evidence supports a negative answer",
    "maybe": "the evidence is inconclusive or mixed",
}


class _LabelTask(Task):
    """A task whose answer is one label out of a closed set; scored by accuracy unless a subclass says else."""

    headline = "accuracy"
    reducer = "accuracy"
    _intros: ClassVar[tuple[str, ...]]
    _definitions: ClassVar[dict[str, str]]

    def __init__(self, spec: SourceSpec) -> None:
        negative = getattr(spec, "negative_label", None)
        self.negative: str | None = negative or None
        self._labels = tuple(dict.fromkeys([*spec.labels, *([negative] if negative else [])]))
        if not self._labels:
            raise config_error(
                spec.labels_key,
                "a classification source without labels",
                "list the label names in the source spec",
            )
        self._matcher = LabelMatcher(label_phrases(self._labels, self._synonyms()))
        super().__init__(spec)

    @property
    def labels(self) -> tuple[str, ...]:
        """The label names (the negative class included)."""
        return self._labels

    def format_output(self, record: Any) -> str:
        """The gold label name."""
        if record.label not in self._labels:
            raise DataError(
                self.spec.name,
                f"record {record.id}: label {record.label!r} is not one of {self._labels}",
                "fix the reader or the source spec's labels",
            )
        return record.label

    def reference(self, record: Any) -> str:
        """The gold label name."""
        return record.label

    def parse(self, completion: str, record: Any) -> ParseResult:
        """The label the completion states (exact answer, first line, leading label, or the one label in prose)."""
        return read_label(self._matcher, completion, self.negative or "")

    def score(self, gold: Sequence[Any], pred: Sequence[Any]) -> dict[str, float]:
        """Accuracy, macro-F1, and micro P/R/F1 with and without the negative class, and per-label F1."""
        return metrics.classification_scores(gold, pred, self._labels, self.negative)

    def example_stats(self, gold: Any, pred: Any) -> dict[str, float]:
        """``correct`` (1 when the prediction is the gold label) and ``n`` (1)."""
        return {"correct": float(pred == gold), "n": 1.0}

    def _synonyms(self) -> dict[str, tuple[str, ...]]:
        """Label -> its other names (:func:`~biotune.data.tasks.synonyms.synonyms_of`); subclasses add more."""
        return {label: synonyms_of(label) for label in self._labels}

    def _label_definitions(self) -> list[tuple[str, str]]:
        return [(label, self._define(label)) for label in self._labels]

    def _define(self, label: str) -> str:
        return definition(self._definitions, label)

    def _instructions(self) -> tuple[str, ...]:
        definitions = self._label_definitions()
        out = []
        for i, intro in enumerate(self._intros):
            if i % 2 == 0:
                out.append(f"{intro}\n{bullets(definitions)}")
            else:
                out.append(f"{intro} The labels are: {inline(definitions)}.")
        return tuple(out)


@register
class RelationTask(_LabelTask):
    """Relation classification between two marked entities of a sentence.

    Headline (all three micro-F1, reducer ``f1``): ``f1``, the positive class's F1, for binary corpora (one
    label besides the negative); ``micro_f1_with_negative`` where the source spec sets
    ``headline_with_negative``; else ``micro_f1`` over the labels other than the negative (BLURB). Resampling
    unit: the document (PMID, DDI document) where the record id names one, else the pair itself.
    """

    kind = "re"
    record_type = RelationPair
    reducer = "f1"
    _definitions = RELATION_DEFINITIONS
    _intros = (
        "Identify the relation between the two entities of interest (marked in the text, or named after it). "
        "Answer with exactly one of these labels:",
        "Classify the relationship that the text expresses between its two marked entities, and reply with the "
        "label only.",
        "Read the text and decide which relation holds between the two marked or named entities. Output one label "
        "from this list:",
        "Relation extraction: given a text with two marked entities, answer with the single label that describes "
        "how they are related.",
        "Which relation type best describes the link between the two entities of interest? Choose one label:",
    )

    def __init__(self, spec: SourceSpec) -> None:
        super().__init__(spec)
        positives = tuple(label for label in self._labels if label != self.negative)
        self.positive: str | None = positives[0] if self.negative and len(positives) == 1 else None
        """The positive label of a binary corpus (GAD's ``1``), else None."""
        if self.positive is not None:
            self.headline = "f1"
            self._counted: tuple[str, ...] = (self.positive,)
        elif spec.headline_with_negative:
            self.headline = "micro_f1_with_negative"
            self._counted = self._labels
        else:
            self.headline = "micro_f1"
            self._counted = positives

    def score(self, gold: Sequence[Any], pred: Sequence[Any]) -> dict[str, float]:
        """The label-task metrics; for a binary corpus ``precision``/``recall``/``f1`` are the positive class's."""
        out = super().score(gold, pred)
        if self.positive is not None:
            out.update(metrics.binary_f1(gold, pred, self.positive))
        return out

    def example_stats(self, gold: Any, pred: Any) -> dict[str, float]:
        """``tp``/``fp``/``fn`` of one pair over the labels the headline counts (see the class docstring): a
        prediction outside them (a parse failure, the negative class where it is left out) is no positive."""
        tp = float(pred == gold and gold in self._counted)
        return {"tp": tp, "fp": float(pred in self._counted) - tp, "fn": float(gold in self._counted) - tp}

    def format_input(self, record: RelationPair) -> str:
        """The text with the source's own entity marking, then the two entity names when the record has them."""
        if record.head or record.tail:
            return f"{record.text}\nEntity 1: {record.head}\nEntity 2: {record.tail}"
        return record.text

    def _define(self, label: str) -> str:
        if label == self.negative and label.casefold() not in self._definitions:
            return "none of the other relations holds between the two entities"
        return super()._define(label)

    def _synonyms(self) -> dict[str, tuple[str, ...]]:
        out = super()._synonyms()
        prefix = os.path.commonprefix(list(self._labels))
        if len(self._labels) > 1 and prefix.endswith(
            "-"
        ):  # DDI-mechanism ... DDI-false: 'mechanism' is enough
            for label in self._labels:
                if label[len(prefix) :].isalpha():
                    out[label] = out.get(label, ()) + (label[len(prefix) :],)
        if self.negative:
            out[self.negative] = out.get(self.negative, ()) + NEGATIVE_SYNONYMS
            positives = [x for x in self._labels if x != self.negative]
            if len(positives) == 1:
                out[positives[0]] = out.get(positives[0], ()) + POSITIVE_SYNONYMS
                out[self.negative] += BINARY_NEGATIVE_SYNONYMS
        return out


@register
class NliTask(_LabelTask):
    """Natural language inference over a premise/hypothesis pair; headline: accuracy."""

    kind = "nli"
    record_type = NliPair
    _definitions = NLI_DEFINITIONS
    _intros = (
        "Decide how the hypothesis relates to the premise. Answer with one of these labels:",
        "Natural language inference: read the premise and the hypothesis, then reply with a single label.",
        "Does the premise entail the hypothesis, contradict it, or neither? Output one label from this list:",
        "Given a clinical premise and a hypothesis, classify their logical relationship with exactly one label.",
    )

    def format_input(self, record: NliPair) -> str:
        """``Premise: ...`` and ``Hypothesis: ...`` lines."""
        return f"Premise: {record.premise}\nHypothesis: {record.hypothesis}"


@register
class QaTask(_LabelTask):
    """A closed-answer question (yes/no/maybe), with an optional context; headline: accuracy."""

    kind = "qa"
    record_type = QaItem
    _definitions = QA_DEFINITIONS
    _intros = (
        "Answer the biomedical research question using the context. Reply with one of these answers:",
        "Read the question and the supporting text, then answer with a single word.",
        "Based on the evidence given, what is the answer to the question? Choose one:",
        "Give the answer to the question below, judging only from the context provided.",
    )

    def format_input(self, record: QaItem) -> str:
        """``Question: ...`` and, when there is one, ``Context: ...``."""
        text = f"Question: {record.question}"
        return f"{text}\nContext: {record.context}" if record.context else text

"""The task contract: record -> instruction sample, completion -> prediction, predictions -> metrics.

One :class:`Task` subclass per task family (:mod:`.ner`, :mod:`.labels`, :mod:`.multilabel`) owns both
directions for a source, so training data and scoring cannot drift apart:

* :meth:`Task.to_sample` (and :func:`make_samples` for a whole split, with the seeded paraphrase choice);
* :meth:`Task.reference` and :meth:`Task.parse`: the gold value and a completion read into the same shape;
* :meth:`Task.score`, :attr:`Task.headline`: every metric of a set, and the one reported as its score;
* :meth:`Task.example_stats`, :attr:`Task.reducer`, :meth:`Task.unit`: additive per-example statistics whose
  sums give the headline through :func:`biotune.eval.example_stats.metric_from_stats`, and the unit a
  bootstrap resamples.

:func:`task_for` picks the class registered (with :func:`register`) for ``spec.kind``.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from biotune.config import NER_FORMATS
from biotune.errors import ConfigError, Problem
from biotune.sources.records import Record, Sample, sample_id

if TYPE_CHECKING:
    from biotune.sources import SourceSpec

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ParseResult:
    """A parsed completion: ``value`` has the shape of :meth:`Task.reference`; ``ok`` is False when any part of
    the completion could not be read, and ``error`` then says what."""

    value: Any
    ok: bool
    error: str | None = None


def config_error(key: str, problem: str, fix: str) -> ConfigError:
    """A one-problem :class:`~biotune.errors.ConfigError`."""
    return ConfigError([Problem(key, problem, fix)])


def check_ner_format(ner_format: str) -> None:
    """Raise a :class:`~biotune.errors.ConfigError` on ``data.ner_format`` unless it is one of NER_FORMATS."""
    if ner_format not in NER_FORMATS:
        raise config_error(
            "data.ner_format", f"unknown NER format {ner_format!r}", f"use one of {', '.join(NER_FORMATS)}"
        )


# ---------------------------------------------------------------------------------------------------------------
# Instruction wording shared by the task families


def definition(table: dict[str, str], label: str) -> str:
    """What ``label`` means, from ``table`` (keys case-folded); a label without an entry is named only."""
    text = table.get(label.casefold())
    if text is None:
        logger.debug("no definition for label %r; it is listed by name only", label)
        return f"the label {label}"
    return text


def bullets(pairs: Iterable[tuple[str, str]]) -> str:
    """``- name: text`` lines."""
    return "\n".join(f"- {name}: {text}" for name, text in pairs)


def inline(pairs: Iterable[tuple[str, str]]) -> str:
    """``name: text; name: text``."""
    return "; ".join(f"{name}: {text}" for name, text in pairs)


# ---------------------------------------------------------------------------------------------------------------
# Resampling units

#: Reader format -> the document a record id names, for readers whose ids carry one (see
#: :mod:`biotune.sources.pubtator` and :mod:`biotune.sources.relation`). Other readers' ids name
#: the example only (CoNLL sentences are ``<file stem>:<n>``, masked-TSV rows ``<file stem>:<index>``).
DOCUMENT_OF_ID: dict[str, Callable[[str], str]] = {
    "pubtator_ner": lambda rid: rid.split(":", 1)[0],  # "<PMID>:<sentence n>"
    "pubtator_cid": lambda rid: rid.split(":", 1)[0],  # "<PMID>:<chemical MeSH>:<disease MeSH>"
    "ddi_xml": lambda rid: re.sub(r"\.s\d+\.p\d+$", "", rid),  # "DDI-MedLine.d78.s1.p0" -> "DDI-MedLine.d78"
}


# ---------------------------------------------------------------------------------------------------------------
# Tasks


class Task(ABC):
    """Record -> instruction sample, completion -> prediction, and predictions -> metrics, for one source."""

    kind: ClassVar[str]
    record_type: ClassVar[type]
    headline: str
    """The metric reported as this source's score (a key of :meth:`score`; BLURB / paper conventions)."""
    reducer: str
    """How the headline follows from summed :meth:`example_stats`: a key of
    :data:`biotune.eval.example_stats.REDUCERS` (``f1``, ``accuracy`` or ``mean``)."""

    def __init__(self, spec: SourceSpec) -> None:
        self.spec = spec
        self.instructions: tuple[str, ...] = self._instructions()

    @classmethod
    def from_spec(cls, spec: SourceSpec, ner_format: str = "tags") -> Task:
        """The task for ``spec``; ``ner_format`` is used by NER tasks only."""
        return cls(spec)

    @property
    def labels(self) -> tuple[str, ...]:
        """The label set the instructions state (entity types for NER)."""
        return ()

    def to_sample(self, record: Record, source: str, split: str, rng: random.Random) -> Sample:
        """The instruction sample of ``record``; the paraphrase is drawn from ``rng`` (one draw per sample)."""
        self._check(record)
        instruction = self.instructions[rng.randrange(len(self.instructions))] if self.instructions else ""
        return Sample(
            id=sample_id(source, split, record.id),
            source=source,
            task=self.kind,
            instruction=instruction,
            input=self.format_input(record),
            output=self.format_output(record),
        )

    def unit(self, record: Record) -> str:
        """The resampling unit of ``record``, unique within its source split: the id of the document it comes
        from where its id names one (PubTator PMIDs, DDI documents), else the record id. Prefixed with
        ``<source>/<split>/`` (as ``score_set`` writes it), a record without a document gives its example id."""
        document = DOCUMENT_OF_ID.get(self.spec.format)
        return document(record.id) if document is not None else record.id

    @abstractmethod
    def format_input(self, record: Any) -> str:
        """The ``input`` text of a sample."""

    @abstractmethod
    def format_output(self, record: Any) -> str:
        """The gold ``output`` text of a sample (what a perfect model writes)."""

    @abstractmethod
    def reference(self, record: Any) -> Any:
        """The gold value, in the shape :meth:`parse` returns."""

    @abstractmethod
    def parse(self, completion: str, record: Any) -> ParseResult:
        """Read a model completion for ``record``."""

    @abstractmethod
    def score(self, gold: Sequence[Any], pred: Sequence[Any]) -> dict[str, float]:
        """Every metric of a set from gold values and parsed predictions (``None`` = unparsable), the
        :attr:`headline` among them."""

    @abstractmethod
    def example_stats(self, gold: Any, pred: Any) -> dict[str, float]:
        """Additive statistics of one example (the keys :attr:`reducer` needs): summed over a set and reduced,
        they give ``score(...)[headline]``."""

    @abstractmethod
    def _instructions(self) -> tuple[str, ...]:
        """The instruction paraphrases (each states every label and its meaning)."""

    def record_from_row(self, rid: str, input_text: str, output: str) -> tuple[Record, ParseResult]:
        """A record for a ready-made instruction row: its ``input`` as the record's text (NER: whitespace
        tokens) and the gold read from its ``output`` with this task's own parser. The second value says
        whether the output parsed cleanly (a row whose gold does not parse cannot be scored)."""
        blank = _blank_record(self.record_type, rid, input_text)
        parsed = self.parse(output, blank)
        gold = parsed.value if parsed.value is not None else getattr(blank, _gold_field(self.record_type))
        return dataclasses.replace(blank, **{_gold_field(self.record_type): gold}), parsed

    def _check(self, record: Record) -> None:
        if not isinstance(record, self.record_type):
            raise TypeError(
                f"{type(self).__name__} for source {self.spec.name!r} takes "
                f"{self.record_type.__name__} records, got {type(record).__name__}"
            )


def _gold_field(record_type: type) -> str:
    names = {f.name for f in dataclasses.fields(record_type)}
    return next(n for n in ("tags", "labels", "label") if n in names)


def _blank_record(record_type: type, rid: str, input_text: str) -> Any:
    """A record of ``record_type`` holding ``input_text`` and an empty gold."""
    names = [f.name for f in dataclasses.fields(record_type)]
    if "tokens" in names:
        tokens = tuple(input_text.split())
        return record_type(id=rid, tokens=tokens, tags=("O",) * len(tokens))
    text_field = next(n for n in ("text", "premise", "question") if n in names)
    values: dict[str, Any] = {n: "" for n in names if n not in ("id", "labels")}
    values[text_field] = input_text
    if "labels" in names:
        values["labels"] = ()
    return record_type(id=rid, **values)


def make_samples(task: Task, records: Iterable[Record], source: str, split: str, seed: int) -> list[Sample]:
    """Every record of one source split as a sample, the paraphrases drawn from one generator seeded by
    ``(seed, source, split)``: ``biotune data build`` and the evaluator get the same prompt for a record."""
    rng = random.Random(f"{seed}:paraphrase:{source}:{split}")
    return [task.to_sample(record, source, split, rng) for record in records]


# ---------------------------------------------------------------------------------------------------------------
# Registry

#: Task kind (``SourceSpec.kind``) -> its task class; filled by :func:`register` in each family's module.
TASKS: dict[str, type[Task]] = {}

TaskClass = TypeVar("TaskClass", bound=type[Task])


def register(cls: TaskClass) -> TaskClass:
    """Class decorator: ``cls`` serves every source whose ``kind`` is ``cls.kind``."""
    assert cls.kind not in TASKS, f"two task classes for kind {cls.kind!r}"
    TASKS[cls.kind] = cls
    return cls


def task_for(spec: SourceSpec, ner_format: str = "tags") -> Task:
    """The task for a source, chosen by ``spec.kind``; ``ner_format`` (``data.ner_format``) applies to NER."""
    check_ner_format(ner_format)
    if spec.kind not in TASKS:
        raise config_error(
            f"SOURCES[{spec.name!r}].kind",
            f"unknown task kind {spec.kind!r}",
            f"use one of {', '.join(TASKS)}",
        )
    return TASKS[spec.kind].from_spec(spec, ner_format)

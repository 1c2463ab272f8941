"""Tasks: a typed record becomes an instruction sample, a completion a structured prediction, and a set of
predictions its metrics.

One small class per task family owns all three, so training data and scoring cannot drift apart
(``task_for(spec)`` picks it from ``spec.kind``):

* :mod:`.base` -- the :class:`Task` contract, :class:`ParseResult`, the registry, :func:`task_for` and
  :func:`make_samples` (the one place the paraphrase generator is seeded);
* :mod:`.matching` -- text normalisation, label matching and line-token alignment the parsers share;
* :mod:`.ner` -- :class:`NerTask`; :mod:`.labels` -- :class:`RelationTask`, :class:`NliTask`, :class:`QaTask`;
  :mod:`.multilabel` -- :class:`ClassificationTask` (HoC);
* :mod:`.metrics` -- the scoring functions the tasks call (entity F1, classification, multi-label), tested
  against seqeval and scikit-learn; evaluation reaches them through the tasks.

Every instruction paraphrase names the whole label set and says what each label means. Parsing tolerates real
model output (prose around the answer, case and whitespace noise, label synonyms) and never drops a failure
silently: a completion it cannot read fully gets ``ok=False`` and an ``error``.
"""

from biotune.data.tasks.base import (
    TASKS,
    ParseResult,
    Task,
    make_samples,
    register,
    task_for,
)
from biotune.data.tasks.labels import NliTask, QaTask, RelationTask
from biotune.data.tasks.matching import LabelMatcher, align
from biotune.data.tasks.multilabel import ClassificationTask
from biotune.data.tasks.ner import NerTask, entity_types

__all__ = [
    "TASKS",
    "ClassificationTask",
    "LabelMatcher",
    "NerTask",
    "NliTask",
    "ParseResult",
    "QaTask",
    "RelationTask",
    "Task",
    "align",
    "entity_types",
    "make_samples",
    "register",
    "task_for",
]

"""Evaluation sets, predictions files, and scoring completions against gold.

An evaluation set is one source split turned into samples by the same task object that training uses
(``biotune.data.tasks.task_for``). Its example ids are the sample ids ``"<source>/<split>/<record id>"``.
A predictions file is JSONL with one ``{"id": ..., "completion": ...}`` per example; it may come from
``biotune eval`` or from any other model. Every completion is parsed by the task's parser; parse failures
are counted and reported (a failed parse scores as a wrong or empty prediction, never as a skipped one).
The task also scores the set (``task.score``, ``task.headline``) and gives each example its resampling unit
and additive statistics (``task.unit``, ``task.example_stats``; see :mod:`biotune.eval.example_stats`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from biotune.data.tasks import make_samples, task_for
from biotune.errors import DataError, shown
from biotune.eval.sets import resolve_split, source_spec
from biotune.sources import SOURCES, SourceSpec, catalog, load_instructions, load_records
from biotune.sources.instructions import map_source
from biotune.sources.records import Record, Sample, parse_sample_id
from biotune.sources.splits import set_label

log = logging.getLogger(__name__)


@dataclass
class EvalSet:
    """One source split prepared for evaluation: records, their samples and the task that made them."""

    source: str
    split: str
    kind: str
    spec: Any
    task: Any
    records: list[Record]
    samples: list[Sample]
    restricted: bool = True
    """Keep its examples and predictions private (the source's flag; for instruction rows, also the set's)."""
    origin: str = ""
    """Empty for a corpus split; ``eval.instructions.NAME`` for a set of instruction rows."""

    @property
    def ids(self) -> list[str]:
        """Example ids (sample ids), in record order."""
        return [s.id for s in self.samples]


@dataclass
class SetScore:
    """Scores of one evaluation set."""

    source: str
    split: str
    kind: str
    n: int
    parse_failures: int
    headline: str
    """Name of the metric the paper/BLURB reports for this set (``f1``, ``micro_f1``, ``accuracy``...)."""
    metrics: dict[str, float] = field(default_factory=dict)
    tokens_per_second: float | None = None
    reducer: str | None = None
    """How the headline follows from the per-example ``stats`` of the rows (a key of
    :data:`biotune.eval.example_stats.REDUCERS`); None for a score not made by :func:`score_set`."""

    @property
    def parse_failure_rate(self) -> float:
        """Share of examples whose completion did not parse cleanly."""
        return self.parse_failures / self.n if self.n else 0.0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (with the failure rate and the headline value)."""
        out = asdict(self)
        out["parse_failure_rate"] = self.parse_failure_rate
        out["score"] = self.metrics.get(self.headline)
        return out


def build_eval_set(
    name: str | SourceSpec,
    split: str,
    root: Path,
    ner_format: str = "tags",
    seed: int = 1234,
    max_examples: int | None = None,
) -> EvalSet:
    """Read one source split and turn its records into samples with the training task object.

    ``name`` is a registered source name or a spec (from ``catalog(cfg.data)``, for declared sources);
    ``split`` is any spelling of the split (resolved to the source's own). The instruction paraphrase is drawn
    with the same seeded generator as ``biotune data build``, so an evaluation prompt matches what the model
    was trained on. ``max_examples`` keeps the first N records.
    """
    spec = source_spec(name, SOURCES) if isinstance(name, str) else name
    real_split = resolve_split(spec, split)
    records = list(load_records(spec, real_split, root))
    if max_examples is not None:
        records = records[:max_examples]
    task = task_for(spec, ner_format)
    samples = make_samples(task, records, spec.name, real_split, seed)
    return EvalSet(spec.name, real_split, spec.kind, spec, task, records, samples, spec.restricted)


@dataclass
class Unscored:
    """The rows of one instruction set that were read but not scored, and why (``report.json``'s
    ``meta.unscored_rows[eval.instructions.NAME]``)."""

    unmapped: dict[str, int] = field(default_factory=dict)
    """Row ``source`` value -> rows whose source maps to no biotune task."""
    unparsable: list[dict[str, str]] = field(default_factory=list)
    """One entry per row whose ``output`` its task cannot read as gold: ``id``, ``source``, ``task``, ``reason``."""
    ids: set[str] = field(default_factory=set)
    """Record ids of every row not scored (a predictions file may hold completions for them: they are ignored)."""

    @property
    def count(self) -> int:
        """Rows not scored."""
        return sum(self.unmapped.values()) + len(self.unparsable)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``rows`` (the count), ``unmapped`` and ``unparsable``."""
        return {"rows": self.count, "unmapped": dict(self.unmapped), "unparsable": list(self.unparsable)}


def build_instruction_sets(
    key: str,
    declared: Any,
    known: dict[str, SourceSpec],
    ner_format: str = "tags",
    max_examples: int | None = None,
) -> tuple[list[EvalSet], Unscored]:
    """Instruction rows as evaluation sets, one per biotune source their ``source`` values map to.

    ``declared`` is an ``EvalInstructionSet`` (``key`` = ``eval.instructions.NAME``); ``known`` is
    ``catalog(cfg.data)``. Each row's ``source`` is mapped with :func:`map_source` (the set's ``source_map``
    over the published defaults); the gold is the row's ``output`` read by that source's parser, and the
    prompt is the row's own instruction and input. Example ids are the instruction record ids.
    ``max_examples`` keeps the first N rows of each source.

    A row whose source maps to no task is counted, never scored. A row whose ``output`` its task cannot read
    (the paper's released HoC set has one with an empty output) is listed with its id and reason and left out
    when ``declared.on_unparsable`` is ``skip`` (the default); with ``error`` it stops the evaluation.

    Returns:
        The sets (a source whose every row was left out has none) and the rows not scored.

    Raises:
        DataError: an unparsable row under ``on_unparsable: error`` (file and row named), or no row mapped.
    """
    rows = load_instructions(declared.path, declared.split)
    by_source: dict[str, list[Any]] = {}
    unscored = Unscored()
    for row in rows:
        target = map_source(row.source, declared.source_map)
        if target is None or target not in known:
            unscored.unmapped[row.source] = unscored.unmapped.get(row.source, 0) + 1
            unscored.ids.add(row.id)
            continue
        by_source.setdefault(target, []).append(row)
    if not by_source:
        seen = ", ".join(f"{k or '(empty)'} ({v})" for k, v in sorted(unscored.unmapped.items()))
        raise DataError(
            declared.path,
            f"no row's source maps to a biotune task (sources: {seen})",
            f"map them with {key}.source_map.SOURCE=BIOTUNE_SOURCE (e.g. ncbi_disease)",
        )
    split = declared.corpus_split or declared.split
    sets = []
    for target, source_rows in by_source.items():
        spec = known[target]
        task = task_for(spec, ner_format)
        records, samples = [], []
        for row in source_rows[:max_examples] if max_examples is not None else source_rows:
            record, parsed = task.record_from_row(row.id, row.input, row.output)
            if not parsed.ok:
                if declared.on_unparsable == "error":
                    raise DataError(
                        declared.path,
                        f"row {row.id} (source {shown(row.source)!r} -> {target}): its output cannot be read "
                        f"as gold: {shown(parsed.error, 300)}",
                        f"fix the row, map {shown(row.source)!r} to the right task with {key}.source_map, or set "
                        f"{key}.on_unparsable=skip to leave it out (listed in the report's unscored_rows)",
                    )
                reason = f"output cannot be read as gold: {parsed.error}"
                unscored.unparsable.append(
                    {"id": row.id, "source": row.source, "task": target, "reason": reason}
                )
                unscored.ids.add(row.id)
                continue
            records.append(record)
            samples.append(Sample(row.id, target, spec.kind, row.instruction, row.input, row.output))
        if records:
            restricted = bool(declared.restricted or spec.restricted)
            sets.append(EvalSet(target, split, spec.kind, spec, task, records, samples, restricted, key))
    if unscored.count:
        log.warning(
            "%s: %d row(s) not scored: %s",
            key,
            unscored.count,
            "; ".join(
                [
                    f"{k or '(empty)'} ({v}, source maps to no task)"
                    for k, v in sorted(unscored.unmapped.items())
                ]
                + [f"{u['id']} ({u['reason']})" for u in unscored.unparsable]
            ),
        )
    return sets, unscored


# --------------------------------------------------------------------------------------------- predictions


def read_predictions(path: str | Path) -> dict[str, str]:
    """Read a JSONL predictions file: ``{"id": str, "completion": str}`` per line.

    Raises:
        DataError: naming file:line for non-UTF-8 bytes, unreadable JSON, a missing/ill-typed field or a
            duplicate id.
    """
    path = Path(path)
    if not path.is_file():
        what = "is a directory, not a file" if path.is_dir() else "does not exist"
        raise DataError(
            path,
            f"predictions file {what}",
            "pass the JSONL file written by `biotune eval` (predictions.jsonl)",
        )
    out: dict[str, str] = {}
    first_line: dict[str, int] = {}
    with path.open("rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise DataError(
                    path,
                    f"not UTF-8 text ({err.reason} at byte {err.start} of the line)",
                    "write the predictions file as UTF-8 JSON lines (json.dumps(..., ensure_ascii=False) "
                    "to a file opened with encoding='utf-8')",
                    lineno,
                ) from None
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise DataError(
                    path,
                    f"not valid JSON ({err.msg})",
                    'write one {"id": ..., "completion": ...} object per line',
                    lineno,
                ) from err
            if (
                not isinstance(row, dict)
                or not isinstance(row.get("id"), str)
                or not isinstance(row.get("completion"), str)
            ):
                raise DataError(
                    path,
                    "each line needs a string 'id' and a string 'completion'",
                    'write e.g. {"id": "ncbi_disease/test/123", "completion": "..."}',
                    lineno,
                )
            pid = row["id"]
            if pid in out:
                raise DataError(
                    path,
                    f"duplicate id '{shown(pid)}' (first on line {first_line[pid]})",
                    "keep one completion per example id",
                    lineno,
                )
            out[pid] = row["completion"]
            first_line[pid] = lineno
    if not out:
        raise DataError(path, "predictions file is empty", "generate predictions first")
    return out


def sets_in_predictions(predictions: Iterable[str], path: str | Path) -> list[tuple[str, str]]:
    """The (source, split) pairs named by a predictions file's ids, in first-seen order."""
    seen: dict[tuple[str, str], None] = {}
    for pid in predictions:
        try:
            source, split, _ = parse_sample_id(pid)
        except ValueError as err:
            raise DataError(
                path,
                f"unknown id '{shown(pid)}': {err}",
                "use the example ids of `biotune eval` ('<source>/<split>/<record id>')",
            ) from err
        seen.setdefault((source, split), None)
    return list(seen)


def check_coverage(predictions: dict[str, str], sets: Sequence[EvalSet], path: str | Path) -> None:
    """Every prediction id must belong to an evaluation set, and every example must have a prediction.

    Raises:
        DataError: listing (up to 5 of) the unknown and the missing ids, with their counts.
    """
    expected = {i for s in sets for i in s.ids}
    unknown = [i for i in predictions if i not in expected]
    missing = [i for s in sets for i in s.ids if i not in predictions]
    problems = []
    if unknown:
        problems.append(f"{len(unknown)} unknown id(s), e.g. {', '.join(shown(i) for i in unknown[:5])}")
    if missing:
        problems.append(
            f"{len(missing)} example(s) without a prediction, e.g. {', '.join(shown(i) for i in missing[:5])}"
        )
    if problems:
        raise DataError(
            path,
            "; ".join(problems),
            "predict every example of each evaluated split exactly once, with ids "
            "'<source>/<split>/<record id>' (and the same --max-examples as generation)",
        )


# --------------------------------------------------------------------------------------------- scoring


def score_set(eval_set: EvalSet, completions: dict[str, str]) -> tuple[SetScore, list[dict[str, Any]]]:
    """Parse each completion with the set's task and score the set; also returns per-example rows.

    Each row holds the id, completion, parsed prediction, reference and parse status, the example's resampling
    ``unit`` (``"<source>/<split>/<task.unit(record)>"``: the example id unless the record names its document)
    and its additive ``stats`` (``task.example_stats``), whose sums reduce to the headline with
    ``metric_from_stats(score.reducer, ...)``.
    """
    task = eval_set.task
    gold: list[Any] = []
    pred: list[Any] = []
    rows: list[dict[str, Any]] = []
    failures = 0
    label = set_label(eval_set.source, eval_set.split)
    for record, sample in zip(eval_set.records, eval_set.samples, strict=True):
        completion = completions[sample.id]
        parsed = task.parse(completion, record)
        reference = task.reference(record)
        failures += not parsed.ok
        gold.append(reference)
        pred.append(parsed.value)
        rows.append(
            {
                "id": sample.id,
                "completion": completion,
                "prediction": _jsonable(parsed.value),
                "reference": _jsonable(reference),
                "parse_ok": parsed.ok,
                "parse_error": parsed.error,
                "unit": f"{label}/{task.unit(record)}",
                "stats": task.example_stats(reference, parsed.value),
            }
        )
    score = SetScore(
        eval_set.source,
        eval_set.split,
        eval_set.kind,
        len(gold),
        failures,
        task.headline,
        task.score(gold, pred),
        reducer=task.reducer,
    )
    if failures:
        log.warning(
            "%s: %d of %d completions did not parse cleanly",
            label,
            failures,
            len(gold),
        )
    return score, rows


def _jsonable(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def load_sets_for_predictions(
    predictions: dict[str, str],
    path: str | Path,
    root: Path,
    ner_format: str,
    seed: int,
    max_examples: int | None,
    known: dict[str, SourceSpec] | None = None,
) -> list[EvalSet]:
    """Build the evaluation sets that a predictions file's ids name, checking that the ids cover them.

    ``known`` is ``catalog(cfg.data)`` (the registry and the config's declared sources); None = the registry."""
    known = catalog() if known is None else known
    sets = []
    for source, split in sets_in_predictions(predictions, path):
        if source not in known:
            raise DataError(
                path,
                f"unknown source '{shown(source)}' in ids like '{shown(f'{source}/{split}')}/...'",
                f"use one of: {', '.join(sorted(known))} (ids of instruction rows need their "
                "eval.instructions entry in the config)",
            )
        spec = known[source]
        if split not in spec.split_names:
            raise DataError(
                path,
                f"source '{source}' has no split '{shown(split)}' (it has {', '.join(sorted(spec.split_names))})",
                "use the split names in the example ids that `biotune eval` writes",
            )
        sets.append(build_eval_set(spec, split, root, ner_format, seed, max_examples))
    check_coverage(predictions, sets, path)
    return sets

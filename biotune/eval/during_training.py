"""Generative evaluation at checkpoints inside the training job (``eval.during_training``).

The trainer (:mod:`biotune.train.trainer`) calls a :class:`StepEvaluation` at each scheduled step. Under ZeRO-3
every rank generates for its shard of the examples with the engine's own model: its weights gathered once per
evaluation (``gather_weights``, the default), or layer by layer at every forward with the ranks in lockstep
(``synced_gpus``, shards padded to equal batch counts: :func:`biotune.eval.generate.generate_sharded_lockstep`); rank 0 scores them with the
same code as ``biotune eval`` (:func:`biotune.eval.runner.generate_and_score`) and writes the same files under
``<train.output_dir>/eval/step-N/`` (:func:`biotune.eval.layout.step_eval_dir`), swapped in whole with a record
of the logged metrics. The metrics are ``eval/<source>/<split>/<metric>`` and ``.../parse_failures``
(:mod:`biotune.train.metric_names`).

Exactly once across resume: the step's directory, swapped in whole with its record, is the record that the step
was evaluated; a step that has one is never evaluated again. A resumed run that replays such a step (it resumed
from an earlier checkpoint, and ``metrics.jsonl`` was trimmed back to that checkpoint) writes the record's
metrics back to ``metrics.jsonl`` (:meth:`~biotune.train.tracking.Tracker.restore`; wandb kept them), so the
history holds one point per step. The trainer evaluates a scheduled step before it saves that step's
checkpoint, so a run never resumes past a scheduled step that has no record.

The ``biotune train`` command gets this evaluator from :mod:`biotune.eval.train_command`, which registers it
(``biotune.train`` sits below ``biotune.eval`` and cannot import it).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import tempfile
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from biotune import distributed
from biotune.config import DuringTrainingConfig, RunConfig
from biotune.data.sources import UnknownSourceError, catalog
from biotune.data.sources.splits import resolve
from biotune.data.tokenize import load_tokenizer, tokenizer_of
from biotune.errors import ConfigError, Problem
from biotune.eval import generate
from biotune.eval.layout import DURING_TRAINING_RECORD, step_eval_dir
from biotune.eval.runner import Scored, build_sets, generate_and_score, run_meta, write_eval_files
from biotune.eval.score import EvalSet
from biotune.eval.sets import plan_sets, plan_sources
from biotune.io import atomic_write_json, read_json, swap_in_dir
from biotune.train import metric_names as names

log = logging.getLogger(__name__)

KEY = "eval.during_training"

#: ``gather -> context manager yielding the model to generate with``: the training engine's
#: :meth:`~biotune.train.engine.Engine.generation_model`.
GenerationModel = Callable[[bool], AbstractContextManager[Any]]


def scheduled_steps(d: DuringTrainingConfig, total_steps: int) -> list[int]:
    """The optimizer steps evaluated in a run of ``total_steps``: every ``every_steps``, or each fraction's
    step (``ceil(fraction x total_steps)``, at least 1), sorted and without repeats.

    Raises:
        ConfigError: ``every_steps`` beyond the run (a run sized by ``train.epochs`` is checked here, once its
            step count is known).
    """
    if d.every_steps:
        if d.every_steps > total_steps:
            raise ConfigError(
                [
                    Problem(
                        f"{KEY}.every_steps",
                        f"{d.every_steps} is beyond the run's {total_steps} steps: nothing would be evaluated",
                        f"set {KEY}.every_steps to at most {total_steps}, or use {KEY}.at_fractions",
                    )
                ]
            )
        return list(range(d.every_steps, total_steps + 1, d.every_steps))
    return sorted({max(1, math.ceil(f * total_steps - 1e-9)) for f in d.at_fractions})


def eval_config(cfg: RunConfig) -> RunConfig:
    """``cfg`` with its ``eval`` section set to what is evaluated during training: the sources (or the
    ``eval.sources`` plan), splits and cap of ``eval.during_training``; no instruction-row sets."""
    d = cfg.eval.during_training
    sub = dataclasses.replace(
        cfg.eval,
        sources=list(d.sources or cfg.eval.sources),
        splits=list(d.splits),
        max_examples=d.max_examples,
        instructions={},
    )
    return dataclasses.replace(cfg, eval=sub)


def check_sets(cfg: RunConfig) -> list[Problem]:
    """Every problem of the sets ``eval.during_training`` names (unknown sources, missing splits), with keys
    under ``eval.during_training``; none when it is off. Reads only the source registry, not the corpora."""
    d = cfg.eval.during_training
    if not d.enabled:
        return []
    known = catalog(cfg.data)
    problems = [
        Problem(f"{KEY}.sources[{i}]", f"unknown source '{name}'", UnknownSourceError(name).fix)
        for i, name in enumerate(d.sources)
        if name not in known
    ]
    if problems:
        return problems
    try:
        plan_sets(eval_config(cfg), known)
    except ConfigError as err:
        return [Problem(_ours(p.key), p.problem, _ours(p.fix)) for p in err.problems]
    return []


def _ours(text: str) -> str:
    """``eval.sources``/``eval.splits`` in a problem of :func:`plan_sets` named as this section's keys."""
    return text.replace("eval.sources", f"{KEY}.sources").replace("eval.splits", f"{KEY}.splits")


class StepEvaluation:
    """Evaluates the training engine's model at the scheduled steps (every rank calls it together)."""

    def __init__(
        self, cfg: RunConfig, generation_model: GenerationModel, output_dir: Path, total_steps: int
    ) -> None:
        self.cfg, self.generation_model, self.output_dir = cfg, generation_model, Path(output_dir)
        self.steps = frozenset(scheduled_steps(cfg.eval.during_training, total_steps))
        self.sub = eval_config(cfg)
        self.sets: list[EvalSet] = build_sets(self.sub)
        tok = load_tokenizer(tokenizer_of(cfg), cfg.model.trust_remote_code)
        self.tokenizer = generate.prepare_tokenizer(tok)
        log.info(
            "evaluation during training at steps %s: %s",
            sorted(self.steps),
            ", ".join(f"{s.source}/{s.split} ({len(s.samples)})" for s in self.sets),
        )

    def is_done(self, step: int) -> bool:
        """Whether ``step`` was evaluated already (rank 0 looks; every rank gets its answer)."""
        here = (step_eval_dir(self.output_dir, step) / DURING_TRAINING_RECORD).is_file()
        return bool(distributed.all_gather_objects(here)[0])

    def recorded(self, step: int) -> dict[str, float]:
        """The metrics logged when ``step`` was evaluated, from its record (rank 0; empty elsewhere)."""
        if not distributed.is_rank_zero():
            return {}
        path = step_eval_dir(self.output_dir, step) / DURING_TRAINING_RECORD
        record = read_json(path, f"delete {path.parent} to evaluate step {step} again")
        return {k: float(v) for k, v in record["metrics"].items()}

    def evaluate(self, step: int, tokens: int) -> dict[str, float]:
        """Generate (every rank, its shard), score and write ``eval/step-N/`` (rank 0); the metrics, on rank 0."""
        e = self.cfg.eval
        gather = e.during_training.gather_weights
        start = time.perf_counter()
        with self.generation_model(gather) as model:
            scored = generate_and_score(
                self.sets,
                self.cfg.data.template,
                self.tokenizer,
                lambda prompts: generate.generate_sharded_lockstep(
                    model, self.tokenizer, prompts, e.batch_size, e.max_new_tokens, e.num_beams, not gather
                ),
            )
        metrics: dict[str, float] = {}
        if distributed.is_rank_zero():
            metrics = step_metrics(scored)
            seconds = time.perf_counter() - start
            self._write(step_eval_dir(self.output_dir, step), step, tokens, scored, metrics, seconds)
        distributed.barrier()
        return metrics

    def _write(
        self, out: Path, step: int, tokens: int, scored: Scored, metrics: dict[str, float], seconds: float
    ) -> None:
        """Every file of ``out`` in a temporary sibling, then swapped in whole (the record inside it)."""
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
        meta = run_meta(self.sub, f"{self.output_dir} at step {step} (in the training job)", {})
        meta["step"] = step
        write_eval_files(tmp, scored, meta)
        record = {
            "step": step,
            names.TRAIN_TOKENS: tokens,
            "metrics": metrics,
            "examples": len(scored.completions),
            "seconds": seconds,
            "generation_seconds": scored.generation_seconds,
        }
        atomic_write_json(tmp / DURING_TRAINING_RECORD, record)
        swap_in_dir(tmp, out)
        log.info("step %d evaluated: %s", step, out)


def step_metrics(scored: Scored) -> dict[str, float]:
    """``eval/<source>/<split>/<metric>`` for every numeric metric of every set, and its parse failures."""
    out: dict[str, float] = {}
    for score in scored.scores:
        for metric, value in score.metrics.items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                out[names.eval_metric(score.source, score.split, metric)] = float(value)
        out[names.eval_parse_failures(score.source, score.split)] = float(score.parse_failures)
    return out


#: The schedule and cap a sweep cell evaluates at unless its base config sets ``eval.during_training``: a quarter,
#: half and the end of the run, at most 64 examples per dev set. Generation costs decode steps x batches, so the
#: cap is one batch per rank on the demo's 2 ranks x ``eval.batch_size`` 32 (the overhead on the demo's cells is
#: measured by ``benchmarks/eval_during_training.py``; target <= 10% of the training time).
SWEEP_FRACTIONS = (0.25, 0.5, 1.0)
SWEEP_MAX_EXAMPLES = 64


def apply_sweep_default(cfg: RunConfig) -> None:
    """Turn evaluation during training on for a sweep cell whose config leaves it off: at
    :data:`SWEEP_FRACTIONS`, capped at :data:`SWEEP_MAX_EXAMPLES`, on the dev split of each evaluated source
    that has one (selection happens on dev splits, never on test). Left off when no source has a dev split."""
    d = cfg.eval.during_training
    if d.enabled:
        return
    known = catalog(cfg.data)
    sources = [
        name
        for name in plan_sources(cfg, known)
        if name in known and resolve(d.splits[0] if d.splits else "dev", known[name].split_names)
    ]
    if not sources:
        log.info("no evaluated source has a dev split: no evaluation during training for %s", cfg.name)
        return
    d.at_fractions = list(SWEEP_FRACTIONS)
    d.sources = sources
    d.splits = d.splits or ["dev"]
    d.max_examples = d.max_examples or SWEEP_MAX_EXAMPLES


def build_step_evaluation(
    cfg: RunConfig, generation_model: GenerationModel, output_dir: Path, total_steps: int
) -> StepEvaluation | None:
    """The evaluator of a training run, or None when ``eval.during_training`` is off."""
    if not cfg.eval.during_training.enabled:
        return None
    return StepEvaluation(cfg, generation_model, output_dir, total_steps)

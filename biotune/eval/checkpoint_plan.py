"""What ``eval.during_training`` evaluates and when: the schedule, the sets, their checks, and a sweep cell's default.

The light half of evaluation during training (no torch): :mod:`biotune.sweep.runner` applies the sweep default
and ``biotune train``'s preflight checks the sets without importing the generation code, which lives in
:mod:`biotune.eval.during_training`.
"""

from __future__ import annotations

import dataclasses
import logging
import math

from biotune.config import DuringTrainingConfig, RunConfig
from biotune.errors import ConfigError, Problem
from biotune.eval.sets import plan_sets, plan_sources
from biotune.sources import UnknownSourceError, catalog
from biotune.sources.splits import resolve

log = logging.getLogger(__name__)

KEY = "eval.during_training"


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

"""A sweep along the way: its variants compared at a checkpoint, learning curves, and each checkpoint's agreement
with the final ranking (issue 22, item 3).

Evaluation during training (``eval.during_training``, on by default in sweeps) writes, in each cell's training
directory, ``eval/step-N/`` (:func:`biotune.eval.layout.step_eval_dir`) with the same files as ``biotune eval``
plus ``during_training.json`` (the step and ``train/tokens``). From them:

* ``sweep collect --step N`` / ``--fraction F`` (:func:`at_checkpoint`): the same collect, each done cell's eval
  directory replaced by its evaluation at step N (or at the step scheduled at fraction F of that cell's run:
  ``ceil(F x total)``, as :func:`biotune.eval.checkpoint_plan.scheduled_steps`; a cell's total is the step of
  its last completed checkpoint, else its last evaluated step). Written to ``results/step-N/``
  (``results/fraction-F/``, :func:`output_name`), never over the final results.
* learning curves (:func:`learning_curves`): per eval set and variant, the score at each step evaluated in all
  of the variant's done cells, against the mean ``train/tokens``; the band is mean ± t-based 95% CI over the
  training seeds (t with m − 1 df, the seed variance unshrunk), or with one seed the paired bootstrap's 95%
  percentile interval over the examples (conditional on that trained model). ``learning_curves.csv`` holds
  the numbers, ``learning_curve_<set>.png`` (:func:`biotune.sweep.plots.learning_curve`) draws them.
* checkpoint-vs-final agreement (:func:`checkpoint_agreements`): for each intermediate step evaluated in every
  done cell, :func:`biotune.sweep.agreement.compare_levels` of that step's variant Δs against the final ones,
  per set and per task-family macro, written by the writers of ``agreement.csv``
  (``checkpoint_agreement.csv`` and a ``results.md`` section).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import logging
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import stats as sps

from biotune.config import DuringTrainingConfig
from biotune.errors import ConfigError, Problem
from biotune.eval.checkpoint_plan import KEY, scheduled_steps
from biotune.eval.layout import (
    DURING_TRAINING_RECORD,
    predictions_path,
    set_label,
    step_eval_dir,
    step_eval_dirs,
    step_name,
)
from biotune.io import atomic_write_text, read_json
from biotune.sources.splits import role_name
from biotune.sweep import agreement as agr
from biotune.sweep import agreement_report as report
from biotune.sweep import collect_fidelities as fid
from biotune.sweep import stats as st
from biotune.sweep.results import SCALE, CellResult, Results, load_example_stats, report_sets
from biotune.sweep.state import CellState
from biotune.train import checkpoint as ckpt
from biotune.train import metric_names as names

log = logging.getLogger(__name__)

STEP_OPTION = "--step"
FRACTION_OPTION = "--fraction"
CHECKPOINT_AGREEMENT_CSV = "checkpoint_agreement.csv"
LEARNING_CURVES_CSV = "learning_curves.csv"
#: The final evaluation's name as an agreement level.
FINAL = "final"
CHECKPOINT_TITLE = "Checkpoint-to-final agreement"
_OUTPUT_NAME = re.compile(r"^(step-\d+|fraction-[0-9.e+-]+)$")


# ------------------------------------------------------------------------------------------- steps on disk


def evaluated_steps(train_dir: str | Path) -> list[int]:
    """The steps evaluated during training in ``train_dir`` (those whose directory holds its record), sorted."""
    return sorted(step_eval_dirs(train_dir))


def step_tokens(train_dir: str | Path, step: int) -> float:
    """``train/tokens`` when ``step`` was evaluated, from its record (NaN when the record has none)."""
    path = step_eval_dir(train_dir, step) / DURING_TRAINING_RECORD
    record = read_json(
        path, f"delete {path.parent} and re-run the cell's training to evaluate step {step} again"
    )
    value = record.get(names.TRAIN_TOKENS) if isinstance(record, dict) else None
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else float("nan")


def final_step(train_dir: str | Path) -> int | None:
    """A cell's last training step: its last completed checkpoint's, else its last evaluated step (the sweep
    default evaluates at fraction 1.0, the last step); None when neither exists."""
    last = ckpt.latest_completed(train_dir) if (Path(train_dir) / ckpt.CHECKPOINTS_DIR).is_dir() else None
    if last is not None:
        return ckpt.read_state(last).step
    steps = evaluated_steps(train_dir)
    return steps[-1] if steps else None


# ------------------------------------------------------------------------------------------- --step / --fraction


def check_options(step: int | None, fraction: float | None) -> None:
    """ConfigError (every problem at once) for a bad ``--step`` / ``--fraction``."""
    problems: list[Problem] = []
    if step is not None and fraction is not None:
        problems.append(
            Problem(
                f"{STEP_OPTION}/{FRACTION_OPTION}",
                "both were given: a collect compares the variants at one checkpoint",
                f"pass only one of {STEP_OPTION} N or {FRACTION_OPTION} F",
            )
        )
    if step is not None and step < 1:
        problems.append(Problem(STEP_OPTION, f"must be >= 1, got {step}", "pass an evaluated optimizer step"))
    if fraction is not None and not (0.0 < fraction <= 1.0):
        problems.append(
            Problem(
                FRACTION_OPTION,
                f"{fraction!r} is outside (0, 1]",
                f"pass a fraction of the run in (0, 1], e.g. {FRACTION_OPTION} 0.5",
            )
        )
    if problems:
        raise ConfigError(problems)


def output_name(step: int | None, fraction: float | None) -> str:
    """The results subdirectory of a checkpoint collect: ``step-N`` or ``fraction-F``."""
    if step is not None:
        return step_name(step)
    assert fraction is not None
    return f"fraction-{fraction:g}"


def is_output_name(name: str) -> bool:
    """Whether ``name`` is a checkpoint collect's subdirectory of the results directory."""
    return bool(_OUTPUT_NAME.match(name))


def _step_at(train_dir: Path, fraction: float) -> int | None:
    total = final_step(train_dir)
    if total is None:
        return None
    return scheduled_steps(DuringTrainingConfig(at_fractions=[fraction]), total)[0]


def at_checkpoint(
    cells: Sequence[CellResult],
    train_dirs: Mapping[str, Path],
    *,
    step: int | None = None,
    fraction: float | None = None,
) -> list[CellResult]:
    """The cells with each done cell's eval directory replaced by its evaluation at ``step`` (or at the step
    scheduled at ``fraction`` of its run); other cells unchanged.

    Raises:
        ConfigError: a bad option (:func:`check_options`), or done cells with no evaluation there (every such
            cell named, with the steps it has).
    """
    check_options(step, fraction)
    if step is None and fraction is None:
        raise ConfigError(
            [Problem(STEP_OPTION, "no checkpoint given", f"pass {STEP_OPTION} or {FRACTION_OPTION}")]
        )
    option = STEP_OPTION if step is not None else FRACTION_OPTION
    out: list[CellResult] = []
    missing: list[tuple[str, int | None, list[int]]] = []
    for c in cells:
        if c.state != CellState.DONE:
            out.append(c)
            continue
        train_dir = Path(train_dirs[c.name])
        at = step if step is not None else _step_at(train_dir, fraction)  # type: ignore[arg-type]
        have = evaluated_steps(train_dir)
        if at is None or at not in have:
            missing.append((c.name, at, have))
            continue
        out.append(dataclasses.replace(c, eval_dir=step_eval_dir(train_dir, at)))
    if missing:
        common = sorted(
            set.intersection(
                *(set(evaluated_steps(Path(train_dirs[c.name]))) for c in cells if c.state == CellState.DONE)
            )
        )
        lines = "; ".join(
            f"cell {name!r} has no evaluation at step {at if at is not None else '?'} "
            f"(evaluated steps: {', '.join(map(str, have)) or 'none'})"
            for name, at, have in missing
        )
        fix = (
            f"pass {STEP_OPTION} with a step every done cell has: {', '.join(map(str, common))}"
            if common
            else "no step is evaluated in every done cell: train the cells with eval.during_training on "
            "(the sweep default), or collect without a checkpoint option"
        )
        raise ConfigError([Problem(option, lines, fix)])
    return out


# ------------------------------------------------------------------------------------------- learning curves


@dataclass(frozen=True)
class CurvePoint:
    """One variant's score on one eval set at one step, with its 95% band (percent)."""

    step: int
    tokens: float
    """Mean ``train/tokens`` over the seeds at this step."""
    mean: float
    ci_low: float
    ci_high: float
    n_seeds: int
    n_units: int
    band: str
    """``t`` (mean ± t-based CI over seeds) or ``bootstrap`` (one seed: percentile CI over the examples)."""


@dataclass(frozen=True)
class Curve:
    """One variant's learning curve on one eval set."""

    variant: str
    eval_set: str
    metric: str
    points: list[CurvePoint]


def band(seed_scores: np.ndarray, replicates: np.ndarray) -> tuple[float, float, str]:
    """A learning-curve point's 95% band: mean ± t(0.975, m − 1) x sd / √m over m ≥ 2 seeds (``t``), else the
    percentile interval of the bootstrap replicates over the examples (``bootstrap``)."""
    m = seed_scores.size
    if m > 1:
        half = float(sps.t.ppf(0.975, m - 1) * np.std(seed_scores, ddof=1) / math.sqrt(m))
        mean = float(np.mean(seed_scores))
        return mean - half, mean + half, "t"
    lo, hi = st.percentile_ci(replicates)
    return lo, hi, "bootstrap"


def _point(
    cells: Sequence[CellResult],
    train_dirs: Mapping[str, Path],
    step: int,
    eval_set: str,
    n_boot: int,
    seed: int,
) -> tuple[CurvePoint, str] | None:
    """The variant's point at ``step`` on ``eval_set`` (None when a seed's evaluation lacks the set)."""
    exs: list[st.ExampleStats] = []
    metric = ""
    for c in cells:
        d = step_eval_dir(train_dirs[c.name], step)
        info = report_sets(dataclasses.replace(c, eval_dir=d)).get(eval_set)
        if info is None:
            return None
        metric = info.metric
        ex = load_example_stats(predictions_path(d, info.source, info.split), info.reducer)
        exs.append(st.align(exs[0], ex) if exs else ex)
    codes, n_units = st.unit_codes(exs[0].units)
    summed = st.unit_sums(np.stack([e.stats for e in exs]), codes, n_units)
    resamples = st.Resamples.draw(eval_set, n_units, n_boot, seed)
    arm = st.score_arms(resamples, exs[0].reducer, exs[0].stat_names, {"arm": summed})["arm"]
    lo, hi, kind = band(arm.seed_scores, arm.replicates)
    tokens = float(np.mean([step_tokens(train_dirs[c.name], step) for c in cells]))
    point = CurvePoint(step, tokens, SCALE * arm.mean, SCALE * lo, SCALE * hi, len(exs), n_units, kind)
    return point, metric


def learning_curves(
    cells: Sequence[CellResult], train_dirs: Mapping[str, Path], *, n_boot: int = 1000, seed: int = 0
) -> dict[str, list[Curve]]:
    """Eval set -> one curve per variant over the steps evaluated in all of the variant's done cells; empty
    when no done cell was evaluated during training.

    Raises:
        DataError: a missing or malformed report, record or predictions file (named with its line and the fix).
    """
    by_variant: dict[str, list[CellResult]] = {}
    for c in cells:
        if c.state == CellState.DONE and c.name in train_dirs:
            by_variant.setdefault(c.variant, []).append(c)
    out: dict[str, list[Curve]] = {}
    for variant, group in by_variant.items():
        steps = sorted(set.intersection(*(set(evaluated_steps(train_dirs[c.name])) for c in group)))
        if not steps:
            continue
        first = step_eval_dir(train_dirs[group[0].name], steps[0])
        for eval_set in report_sets(dataclasses.replace(group[0], eval_dir=first)):
            points, metric = [], ""
            for s in steps:
                got = _point(group, train_dirs, s, eval_set, n_boot, seed)
                if got is not None:
                    points.append(got[0])
                    metric = got[1]
            if points:
                out.setdefault(eval_set, []).append(Curve(variant, eval_set, metric, points))
    return out


def curves_csv(curves: Mapping[str, Sequence[Curve]]) -> str:
    """``learning_curves.csv``: one row per eval set x variant x step."""
    buf = io.StringIO()
    cols = [
        "eval_set",
        "variant",
        "metric",
        "step",
        "tokens",
        "mean",
        "ci_low",
        "ci_high",
        "n_seeds",
        "n_units",
        "band",
    ]
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(cols)
    for eval_set, group in curves.items():
        for c in group:
            for p in c.points:
                writer.writerow(
                    [
                        eval_set,
                        c.variant,
                        c.metric,
                        p.step,
                        p.tokens,
                        p.mean,
                        p.ci_low,
                        p.ci_high,
                        p.n_seeds,
                        p.n_units,
                        p.band,
                    ]
                )
    return buf.getvalue()


# ------------------------------------------------------------------------------------------- agreement


def intermediate_steps(cells: Sequence[CellResult], train_dirs: Mapping[str, Path]) -> list[int]:
    """The steps evaluated in every done cell, before the earliest final step among them."""
    done = [c for c in cells if c.state == CellState.DONE and c.name in train_dirs]
    if not done:
        return []
    common = set.intersection(*(set(evaluated_steps(train_dirs[c.name])) for c in done))
    finals = [final_step(train_dirs[c.name]) for c in done]
    last = min(f for f in finals if f is not None) if any(f is not None for f in finals) else 0
    return sorted(s for s in common if s < last)


def checkpoint_agreements(
    results: Results, train_dirs: Mapping[str, Path], *, n_boot: int = 1000, seed: int = 0
) -> tuple[list[agr.LevelAgreement], dict[str, str]]:
    """Each intermediate step's variant Δs against the final ones (:func:`~biotune.sweep.agreement.compare_levels`,
    through collect's own levels :func:`biotune.sweep.collect_fidelities.level_of`); returns the agreements and,
    per step whose agreement cannot be measured, why (with the fix)."""
    steps = intermediate_steps(results.cells, train_dirs)
    if not steps:
        return [], {}
    if results.base is None:
        return [], {step_name(s): "the sweep has no base variant" for s in steps}
    final, families = _final_level(results, train_dirs)
    done: list[agr.LevelAgreement] = []
    missing: dict[str, str] = {}
    for s in steps:
        name = step_name(s)
        at = dataclasses.replace(results, cells=at_checkpoint(results.cells, train_dirs, step=s))
        level = dataclasses.replace(fid.level_of(name, at), key=KEY)
        measured = fid.compare_or_reason(level, final, results.base, families, n_boot, seed)
        if isinstance(measured, str):
            missing[name] = measured
        else:
            done.append(measured)
    return done, missing


def _final_level(results: Results, train_dirs: Mapping[str, Path]) -> tuple[agr.Level, dict[str, str]]:
    """The final level and the sets' task families: the final evaluation and, for the sets evaluated only
    during training (the sweep default evaluates dev splits there), the evaluation at the step every done cell
    ended its run at (the same final model), when there is one."""
    level = fid.level_of(FINAL, results)
    families = fid.families_of(results)
    done = [c for c in results.cells if c.state == CellState.DONE and c.name in train_dirs]
    common = set.intersection(*(set(evaluated_steps(train_dirs[c.name])) for c in done)) if done else set()
    finals = {final_step(train_dirs[c.name]) for c in done}
    if len(finals) != 1 or (last := finals.pop()) not in common:
        return dataclasses.replace(level, key=KEY), families
    cells = at_checkpoint(results.cells, train_dirs, step=last)
    at_last = fid.level_of(FINAL, dataclasses.replace(results, cells=cells))
    arms = {v: {**at_last.arms.get(v, {}), **level.arms.get(v, {})} for v in {*level.arms, *at_last.arms}}
    groups: dict[str, str] = {}
    for c in reversed(cells):  # the base's mapping wins, as in collect
        groups.update(c.groups)
    for c in cells:
        if c.state == CellState.DONE:
            for name, info in report_sets(c).items():
                family = groups.get(info.source) or info.kind or "other"
                families.setdefault(name, set_label(family, role_name(info.split)))
    return agr.Level(FINAL, arms, key=KEY), families


def agreement_markdown(agreements: Sequence[agr.LevelAgreement], not_measured: Mapping[str, str]) -> str:
    """The ``results.md`` section of the checkpoint-vs-final agreement."""
    parts = []
    if agreements:
        parts.append(report.to_markdown(agreements, scale=SCALE, title=CHECKPOINT_TITLE).rstrip("\n"))
    if not_measured:
        if not agreements:
            parts.append(f"## {CHECKPOINT_TITLE}\n\n{report.RULE}")
        parts.append(
            "\n".join(
                f"Agreement of {s} with {FINAL}: not measured: {why}." for s, why in not_measured.items()
            )
        )
    return "\n\n".join(parts) + "\n" if parts else ""


def write_agreement_csv(agreements: Sequence[agr.LevelAgreement], out: Path) -> Path:
    """``checkpoint_agreement.csv`` (the columns of ``agreement.csv``), atomically; returns its path."""
    path = out / CHECKPOINT_AGREEMENT_CSV
    atomic_write_text(path, report.to_csv(agreements, scale=SCALE))
    return path


def write_curves_csv(curves: Mapping[str, Sequence[Curve]], out: Path) -> Path:
    """``learning_curves.csv``, atomically; returns its path."""
    path = out / LEARNING_CURVES_CSV
    atomic_write_text(path, curves_csv(curves))
    return path


@dataclass
class Found:
    """What the cells' evaluations during training give ``collect``, computed before anything is written."""

    curves: dict[str, list[Curve]]
    agreements: list[agr.LevelAgreement]
    not_measured: dict[str, str]
    markdown: str


def find(results: Results, train_dirs: Mapping[str, Path]) -> Found | None:
    """The learning curves and the checkpoint-vs-final agreement of ``results``' cells; None when no done cell
    was evaluated during training."""
    curves = learning_curves(results.cells, train_dirs, n_boot=results.n_boot, seed=results.seed)
    if not curves:
        return None
    agreements, not_measured = checkpoint_agreements(
        results, train_dirs, n_boot=results.n_boot, seed=results.seed
    )
    return Found(curves, agreements, not_measured, agreement_markdown(agreements, not_measured))

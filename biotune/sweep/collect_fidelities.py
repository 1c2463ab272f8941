"""Collect a sweep with fidelities: one results table per fidelity, the proxies' agreement with the target, and
the measured cost of each fidelity.

A sweep with a ``fidelities:`` block (:mod:`biotune.sweep.fidelity`) runs its variants at several settings.
``collect`` (:mod:`biotune.sweep.collect`) then:

* computes the usual table once per fidelity (:func:`group` splits the cells): each variant's Δ is taken
  against the base AT THE SAME fidelity, multiple testing is corrected within each fidelity (each one is its
  own study; a proxy's many tests do not dilute the target's), and every row carries its fidelity
  (:func:`tag`; ``results.csv`` and ``results.md`` get a ``fidelity`` column only in such a sweep);
* measures, for each proxy fidelity against :data:`~biotune.sweep.fidelity.TARGET`, over the variants run at
  both, Spearman ρ, Kendall τ, pairwise sign agreement and the top variant, per eval set and per task-family
  macro (:func:`measure_agreements`, through :func:`biotune.sweep.agreement.compare_levels`). The units are
  drawn by ``stats.Resamples.draw(eval_set, ...)`` with collect's seed: the very draws of the tables, shared
  by every arm at both fidelities; seeds are redrawn per resample as in the tables;
* when an agreement cannot be measured (no target results, the base missing at a fidelity, fewer than
  ``agreement.MIN_VARIANTS`` variants at both), collect still writes everything else and ``results.md`` states,
  per proxy, why and what to run: a sweep whose anchors are still running is not an error;
* reports the measured cost: per cell, process-seconds (train wall seconds x processes), per fidelity the
  total and the ratio of its cost per cell to the target's (:func:`biotune.sweep.results.fidelity_costs`).

:func:`to_markdown` is the part of ``results.md`` this adds; :func:`write_outputs` writes ``agreement.csv`` and
the scatter plots (``agreement_<proxy>_vs_target.png``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

from biotune.errors import ConfigError
from biotune.eval.layout import predictions_path, set_label
from biotune.sources.splits import role_name
from biotune.sweep import agreement as agr
from biotune.sweep import agreement_report as report
from biotune.sweep import stats as st
from biotune.sweep.fidelity import TARGET
from biotune.sweep.results import (
    SCALE,
    CellResult,
    FidelityCost,
    ResultRow,
    Results,
    load_example_stats,
    report_sets,
)
from biotune.sweep.state import CellState

log = logging.getLogger(__name__)


def has_fidelities(cells: Sequence[CellResult]) -> bool:
    """Whether the cells come from a sweep with a ``fidelities:`` block (every such cell carries one)."""
    return any(c.fidelity for c in cells)


def group(cells: Sequence[CellResult]) -> dict[str, list[CellResult]]:
    """The cells of each fidelity, in order of first appearance (the target last, as the reference)."""
    out: dict[str, list[CellResult]] = {}
    for c in cells:
        out.setdefault(c.fidelity, []).append(c)
    if TARGET in out:
        out[TARGET] = out.pop(TARGET)
    return out


def tag(rows: Sequence[ResultRow], fidelity: str, cells: Sequence[CellResult]) -> None:
    """Mark ``rows`` with their fidelity and their variant's measured cost (summed over its done cells)."""
    cost: dict[str, float | None] = {}
    for c in cells:
        if c.state != CellState.DONE:
            continue
        prev = cost.get(c.variant, 0.0)
        cost[c.variant] = None if prev is None or c.process_seconds is None else prev + c.process_seconds
    for r in rows:
        r.fidelity = fidelity
        r.process_seconds = cost.get(r.variant)


def families_of(results: Results) -> dict[str, str]:
    """Eval set -> the label of its task-family macro (``<family>/<split role>``), as collect's macros."""
    return {
        r.eval_set: set_label(r.family, role_name(r.split))
        for r in results.rows
        if r.eval_set and r.family and r.split
    }


def level_of(fidelity: str, results: Results) -> agr.Level:
    """The per-example statistics of every done cell of one fidelity, as an agreement level.

    Raises:
        DataError: a missing or malformed predictions file (named with its line and the fix).
    """
    arms: dict[str, dict[str, list[st.ExampleStats]]] = {}
    for c in results.cells:
        if c.state != CellState.DONE or c.eval_dir is None:
            continue
        for name, info in report_sets(c).items():
            path = predictions_path(c.eval_dir, info.source, info.split)
            arms.setdefault(c.variant, {}).setdefault(name, []).append(load_example_stats(path, info.reducer))
    return agr.Level(fidelity, arms, key=f"fidelities.{fidelity}.variants")


def compare_or_reason(
    level: agr.Level,
    reference: agr.Level,
    base: str,
    families: Mapping[str, str],
    n_boot: int,
    seed: int,
) -> agr.LevelAgreement | str:
    """:func:`~biotune.sweep.agreement.compare_levels` of ``level`` against ``reference``, or, when it cannot be
    measured (too few variants in common, no base), why and the fix, as one line for ``results.md``. Shared by
    the proxy-to-target and the checkpoint-to-final agreements."""
    try:
        return agr.compare_levels(level, reference, base=base, families=families, n_boot=n_boot, seed=seed)
    except ConfigError as err:
        return "; ".join(f"{p.problem} ({p.key}); fix: {p.fix}" for p in err.problems)


def measure_agreements(
    per_fidelity: Mapping[str, Results], n_boot: int, seed: int
) -> tuple[list[agr.LevelAgreement], dict[str, str]]:
    """Each proxy fidelity against the target; returns the agreements and, per proxy whose agreement cannot
    be measured, why (with the fix)."""
    proxies = [f for f in per_fidelity if f != TARGET]
    if TARGET not in per_fidelity:
        why = f"the sweep has no {TARGET!r} fidelity; add one (the setting the proxies stand in for)"
        return [], dict.fromkeys(proxies, why)
    target_results = per_fidelity[TARGET]
    if target_results.base is None:
        return [], dict.fromkeys(proxies, "the sweep has no base variant; every fidelity runs the base")
    target = level_of(TARGET, target_results)
    families = families_of(target_results)
    done: list[agr.LevelAgreement] = []
    missing: dict[str, str] = {}
    for name in proxies:
        if not target.arms:
            missing[name] = f"no {TARGET} cell is done yet; run the target stage, then collect again"
            continue
        measured = compare_or_reason(
            level_of(name, per_fidelity[name]), target, target_results.base, families, n_boot, seed
        )
        if isinstance(measured, str):
            missing[name] = measured
        else:
            done.append(measured)
    for name, why in missing.items():
        log.warning("collect: agreement of %s with %s not measured: %s", name, TARGET, why)
    return done, missing


def write_outputs(results: Results, out: Path, plots: bool) -> dict[str, Path]:
    """``agreement.csv`` (header only when nothing was measured) and, with ``plots``, one scatter plot per
    proxy; returns name -> path."""
    paths = {"agreement": report.write_csv(results.agreements, out, scale=SCALE)}
    if plots:
        for a in results.agreements:
            path = report.plot(a, out, scale=SCALE)
            if path is not None:
                paths[path.stem] = path
    return paths


def _seconds(value: float) -> str:
    return "–" if not math.isfinite(value) else f"{value:,.0f}"


def cost_markdown(costs: Sequence[FidelityCost]) -> list[str]:
    """The measured-cost table of ``results.md``."""
    lines = [
        "## Measured cost per fidelity",
        "",
        "Process-seconds = wall seconds of a cell's train stage x its processes (ranks), as each cell recorded "
        f"them; ratio = cost per cell over the {TARGET}'s cost per cell.",
        "",
        "| fidelity | done cells | measured | process-s total | process-s per cell | ratio to target |",
        "|---|---|---|---|---|---|",
    ]
    for c in costs:
        ratio = "–" if not math.isfinite(c.ratio) else f"{c.ratio:.3f}"
        lines.append(
            f"| {c.fidelity} | {c.cells} | {c.measured} | {_seconds(c.total_s)} | {_seconds(c.per_cell_s)} "
            f"| {ratio} |"
        )
    if any(c.measured < c.cells for c in costs):
        lines += ["", "Cells without a recorded cost (trained before biotune recorded it) are left out."]
    return lines


def to_markdown(results: Results) -> str:
    """The sections a sweep with fidelities adds to ``results.md``: the agreement (or why it was not measured)
    and the measured cost."""
    parts: list[str] = []
    if results.agreements:
        parts.append(report.to_markdown(results.agreements, scale=SCALE).rstrip("\n"))
    if results.not_measured:
        if not results.agreements:
            parts.append(f"## Proxy-to-target agreement\n\n{report.RULE}")
        parts.append(
            "\n".join(
                f"Agreement of {proxy} with {TARGET}: not measured: {why}."
                for proxy, why in results.not_measured.items()
            )
        )
    parts.append("\n".join(cost_markdown(results.costs)))
    return "\n\n".join(parts) + "\n"

"""Collect a sweep: every cell's per-example predictions -> paired-bootstrap statistics -> tables and plots.

``collect(cells, out_dir)`` reads, for every cell in state ``done``, its eval output directory
(``report.json`` and ``predictions/<source>__<split>.jsonl``, whose rows carry ``id``, ``unit`` and ``stats``),
validates every per-example statistic (``stats.stat_problem``: a bad one is a DataError naming file:line
and field), recomputes every headline from the per-example statistics (``biotune.sweep.stats``), and
writes, each file atomically (temporary file, then ``os.replace``):

* ``results.md``: per split (dev sets for selection, test sets for the report), one row per variant x eval
  set: metric, n (units), mean ± sd over training seeds, Δ vs the base with its 95% CI (seed-aware t, or,
  with one seed per arm, the paired bootstrap's percentile CI marked † and labelled
  ``stats.CONDITIONAL_LABEL``), the corrected p-value and a significance mark, Δ vs the variant's
  size-matched control where one exists, and the budget (total samples, total tokens); then the
  task-family macro-averages; then every cell with its state and log path (failed and missing cells
  included).
* ``results.csv``: the same rows, numeric (with ``se``, ``df``, ``base_seeds`` and ``inference``), plus
  samples / tokens / epochs / weight per training source.
* ``results.parquet``: long format, one row per variant x seed x eval set x statistic (``seed`` is null for
  statistics over seeds; budget and weight rows have a null ``eval_set`` and the training source in
  ``source``).
* ``delta_heatmap_<axis>.png``, ``interaction_<axis>.png``, ``scaling_<axis>.png``: see ``biotune.sweep.plots``.

In a sweep with ``fidelities:`` (its cells carry one), the table is computed per fidelity (Δ vs the base at the
same fidelity, corrected within it) and its rows carry a ``fidelity`` column and the measured cost; then each
proxy's agreement with the target goes to ``agreement.csv``, ``agreement_<proxy>_vs_target.png`` and a
``results.md`` section, with the measured cost per fidelity; the plots above are drawn per fidelity
(``<fidelity>_delta_heatmap_<axis>.png``). See ``biotune.sweep.collect_fidelities``.

Given the cells' training directories (``train_dirs``) where the cells were evaluated during training
(``eval.during_training``), collect adds the learning curves (``learning_curves.csv``,
``learning_curve_<set>.png``) and each intermediate checkpoint's agreement with the final ranking
(``checkpoint_agreement.csv`` and a ``results.md`` section); ``sweep collect --step N`` / ``--fraction F`` runs
this same collect on the evaluations at that checkpoint into ``results/step-N/`` (see
``biotune.sweep.collect_steps``).

Scores are reported in percent (100 x ``metric_from_stats``), as in ``report.json``. Multiple testing:
three families, each corrected on its own across the whole table: Δ vs base per set, Δ vs control per
set, and Δ vs base of the macro-averages. A mark ``*`` means corrected p < ``ALPHA``.
"""

from __future__ import annotations

import csv
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from biotune.config import TrackingConfig
from biotune.errors import ConfigError, DataError, Problem
from biotune.eval.layout import predictions_path, report_path, set_label
from biotune.io import atomic_write_text, replace_atomic
from biotune.sources.splits import role_name, role_of
from biotune.sweep import collect_fidelities as fid
from biotune.sweep import collect_steps as steps
from biotune.sweep import plots as plotting
from biotune.sweep import stats as st
from biotune.sweep.agreement_report import AGREEMENT_CSV
from biotune.sweep.results import (
    SCALE,
    CellResult,
    ResultRow,
    Results,
    SetInfo,
    fidelity_costs,
    load_example_stats,
    ordered_cells,
    report_sets,
)
from biotune.sweep.state import CellState
from biotune.sweep.tables import (
    RESULTS_CSV,
    RESULTS_MD,
    RESULTS_PARQUET,
    TABLE_FILES,
    long_table,
    to_csv,
    to_markdown,
)
from biotune.train.tracking import open_run

log = logging.getLogger(__name__)


# ------------------------------------------------------------------------------------------- entry point


def collect(
    cells: Sequence[CellResult],
    out_dir: str | Path,
    *,
    correction: str = "holm",
    n_boot: int = 1000,
    seed: int = 0,
    plots: bool = True,
    train_dirs: Mapping[str, Path] | None = None,
) -> Results:
    """Compute the sweep's results table from every done cell's predictions and write it to ``out_dir``.

    Args:
        cells: every cell of the sweep, whatever its state (all of them appear in the output).
        out_dir: a new or empty directory, or one written by ``collect`` before (files are replaced).
        correction: ``holm`` (family-wise error) or ``bh`` (false discovery rate).
        n_boot: bootstrap resamples per eval set.
        seed: seeds the resamples (per eval set, see ``biotune.sweep.stats``).
        plots: draw the PNGs (the heatmap, scaling curves, interaction matrix, learning curves).
        train_dirs: cell name -> its training directory; where cells were evaluated during training, adds the
            learning curves and the checkpoint-vs-final agreement (:mod:`biotune.sweep.collect_steps`).

    Raises:
        ConfigError: inconsistent cells (duplicate names, unknown states, several base variants, a done
            cell without eval_dir, a control of an unknown variant), each named by its index in ``cells``.
        DataError: a missing or malformed report or predictions file (named with its line and the fix), or
            predictions of two cells that do not cover the same examples.
    """
    out = Path(out_dir)
    if correction not in st.CORRECTIONS:
        raise ConfigError(
            [
                Problem(
                    "correction",
                    f"unknown correction {correction!r}",
                    f"use one of {', '.join(st.CORRECTIONS)}",
                )
            ]
        )
    base = _check_cells(list(cells))
    cells = ordered_cells(cells)
    _check_out_dir(out)
    if fid.has_fidelities(cells):
        results = _collect_fidelities(cells, base, correction, n_boot, seed)
    else:
        rows, macro_rows = _compute(cells, base, n_boot, seed)
        _correct(rows, macro_rows, correction)
        results = Results(rows, macro_rows, list(cells), base, correction, n_boot, seed)
    found = steps.find(results, train_dirs) if train_dirs and not results.fidelities else None
    if train_dirs and results.fidelities:
        log.info(
            "collect: learning curves and checkpoint agreement are not drawn for a sweep with fidelities"
        )
    out.mkdir(parents=True, exist_ok=True)
    markdown = to_markdown(results)
    if results.fidelities:
        markdown += "\n" + fid.to_markdown(results)
        results.paths.update(fid.write_outputs(results, out, plots))
    if found is not None and found.markdown:
        markdown += "\n" + found.markdown
    atomic_write_text(out / RESULTS_MD, markdown)
    results.paths["md"] = out / RESULTS_MD
    atomic_write_text(out / RESULTS_CSV, to_csv(results))
    results.paths["csv"] = out / RESULTS_CSV
    replace_atomic(out / RESULTS_PARQUET, lambda tmp: pq.write_table(long_table(results), tmp))
    results.paths["parquet"] = out / RESULTS_PARQUET
    if plots:
        for prefix, part in (results.fidelities or {"": results}).items():
            for name, path in plotting.draw_all(part, out, prefix=f"{prefix}_" if prefix else "").items():
                results.paths[name] = path
    if found is not None:
        _write_steps(found, results, out, plots)
    log.info("collect: %d rows, %d macro rows -> %s", len(results.rows), len(results.macro_rows), out)
    return results


def _collect_fidelities(
    cells: Sequence[CellResult], base: str | None, correction: str, n_boot: int, seed: int
) -> Results:
    """The table per fidelity (Δ vs the base at the same fidelity, corrected within it), every row tagged
    with its fidelity, then each proxy's agreement with the target (``biotune.sweep.collect_fidelities``)."""
    per: dict[str, Results] = {}
    for fidelity, group in fid.group(cells).items():
        rows, macro_rows = _compute(group, base, n_boot, seed)
        _correct(rows, macro_rows, correction)
        fid.tag([*rows, *macro_rows], fidelity, group)
        per[fidelity] = Results(rows, macro_rows, group, base, correction, n_boot, seed)
    results = Results(
        [r for p in per.values() for r in p.rows],
        [r for p in per.values() for r in p.macro_rows],
        list(cells),
        base,
        correction,
        n_boot,
        seed,
        fidelities=per,
    )
    results.agreements, results.not_measured = fid.measure_agreements(per, n_boot, seed)
    results.costs = fidelity_costs(cells)
    return results


def _write_steps(found: steps.Found, results: Results, out: Path, plots: bool) -> None:
    """Write what the cells' evaluations during training gave: ``learning_curves.csv``,
    ``learning_curve_<set>.png`` and ``checkpoint_agreement.csv`` (its ``results.md`` section is written with
    the table)."""
    results.paths["learning_curves"] = steps.write_curves_csv(found.curves, out)
    results.paths["checkpoint_agreement"] = steps.write_agreement_csv(found.agreements, out)
    if plots:
        for eval_set, group in found.curves.items():
            path = plotting.learning_curve(eval_set, group, out)
            if path is not None:
                results.paths[path.stem] = path


def log_to_wandb(out_dir: Path, tracking: TrackingConfig, sweep_name: str) -> None:
    """The results table (``results.csv``), the agreement (``agreement.csv``) and the plots of ``out_dir`` as a wandb run in the sweep's group
    (``job_type=collect``, named ``<sweep>-collect``): a view of the files, nothing computed here. Nothing is sent
    when ``tracking.wandb_mode`` is ``disabled``."""
    if tracking.wandb_mode == "disabled":
        return
    import wandb

    run = open_run(
        tracking, name=f"{sweep_name}-collect", out_dir=out_dir, job_type="collect", group=sweep_name
    )
    try:
        with (out_dir / RESULTS_CSV).open(encoding="utf-8") as fh:
            rows = list(csv.reader(fh))
        if rows:
            run.log({"sweep/results": wandb.Table(columns=rows[0], data=rows[1:])})
        if (out_dir / AGREEMENT_CSV).is_file():
            with (out_dir / AGREEMENT_CSV).open(encoding="utf-8") as fh:
                rows = list(csv.reader(fh))
            if rows:
                run.log({"sweep/agreement": wandb.Table(columns=rows[0], data=rows[1:])})
        for png in sorted(out_dir.glob("*.png")):
            run.log({f"sweep/{png.stem}": wandb.Image(str(png))})
    finally:
        run.finish()


# ------------------------------------------------------------------------------------------- checks


def _check_cells(cells: Sequence[CellResult]) -> str | None:
    """Validate the cells together; returns the base variant's name (None when the sweep has no base)."""
    problems: list[Problem] = []
    seen: dict[str, int] = {}
    variants = {c.variant for c in cells}
    for i, c in enumerate(cells):
        if c.name in seen:
            problems.append(
                Problem(
                    f"cells[{i}].name",
                    f"cell name {c.name!r} is used twice",
                    "give every cell a unique name (variant and seed)",
                )
            )
        seen[c.name] = i
        if c.state not in set(CellState):
            problems.append(
                Problem(
                    f"cells[{i}].state",
                    f"unknown state {c.state!r}",
                    f"use one of {', '.join(s.value for s in CellState)}",
                )
            )
        if c.state == CellState.DONE and c.eval_dir is None:
            problems.append(
                Problem(
                    f"cells[{i}].eval_dir",
                    f"cell {c.name!r} is done but has no eval_dir",
                    "pass the cell's eval output directory (it holds report.json)",
                )
            )
        if c.control_for is not None and c.control_for not in variants:
            problems.append(
                Problem(
                    f"cells[{i}].control_for",
                    f"controls unknown variant {c.control_for!r}",
                    f"name one of: {', '.join(sorted(variants))}",
                )
            )
    bases = sorted({c.variant for c in cells if c.is_base})
    if len(bases) > 1:
        problems.append(
            Problem(
                "cells.is_base",
                f"several base variants: {', '.join(bases)}",
                "mark the cells of exactly one variant as the base",
            )
        )
    if problems:
        raise ConfigError(problems)
    if not bases:
        log.warning("collect: no base variant among the cells; no Δ will be computed")
    return bases[0] if bases else None


def _check_out_dir(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise DataError(out, "collect output path is a file", "pass a directory")
    theirs = [p for p in out.iterdir() if not steps.is_output_name(p.name)] if out.is_dir() else []
    if theirs and not any((out / f).exists() for f in TABLE_FILES):
        raise DataError(
            out,
            "directory is not empty and holds no earlier collect output",
            "pass a new or empty directory (collect never writes into someone else's files)",
        )


# ------------------------------------------------------------------------------------------- computing


@dataclass
class _Variant:
    """A variant's cells, and for each eval set the done cells (with the set's report row) that have it."""

    name: str
    cells: list[CellResult]
    sets: dict[str, list[tuple[CellResult, SetInfo]]] = field(default_factory=dict)

    @property
    def first(self) -> CellResult:
        """The first cell: axis, budget and weights are the same in every seed's cell."""
        return self.cells[0]

    @property
    def done(self) -> list[CellResult]:
        """The cells in state ``done``."""
        return [c for c in self.cells if c.state == CellState.DONE]

    def row(self, **kw: Any) -> ResultRow:
        """A table row of this variant, with its state, logs and budget filled in."""
        c = self.first
        not_done = [x for x in self.cells if x.state != CellState.DONE]
        state = (
            "done"
            if not not_done
            else ("partial" if self.done else ",".join(sorted({x.state for x in not_done})))
        )
        budget = c.budget
        return ResultRow(
            variant=self.name,
            axis=c.axis,
            axis_value=c.axis_value,
            is_base=c.is_base,
            control_for=c.control_for,
            state=state,
            seeds_done=len(self.done),
            seeds_planned=len(self.cells),
            logs="; ".join(f"{x.name}: {x.log_path or '-'}" for x in not_done),
            total_samples=int(sum(b.get("samples", 0) for b in budget.values())) if budget else None,
            total_tokens=int(sum(b.get("tokens", 0) for b in budget.values())) if budget else None,
            **kw,
        )


class _MacroAcc:
    """One variant's scores on the sets of a task family, gathered for its macro-average."""

    def __init__(self) -> None:
        self.sets: list[str] = []
        self.arms: list[st.ArmScore] = []
        self.seeds: list[list[int]] = []

    def add(self, eval_set: str, arm: st.ArmScore, seeds: list[int]) -> None:
        """Add one set's scores (and the training seeds behind them)."""
        self.sets.append(eval_set)
        self.arms.append(arm)
        self.seeds.append(seeds)

    def common_seeds(self) -> list[int]:
        """The seeds, when every set has the same ones in the same order; else empty."""
        return self.seeds[0] if all(s == self.seeds[0] for s in self.seeds) else []


def _compute(
    cells: Sequence[CellResult], base: str | None, n_boot: int, seed: int
) -> tuple[list[ResultRow], list[ResultRow]]:
    variants: dict[str, _Variant] = {}
    for c in cells:
        variants.setdefault(c.variant, _Variant(c.variant, [])).cells.append(c)
    set_infos: dict[str, SetInfo] = {}
    for v in variants.values():
        for c in v.done:
            for name, info in report_sets(c).items():
                prev = set_infos.setdefault(name, info)
                if (prev.reducer, prev.metric) != (info.reducer, info.metric):
                    raise DataError(
                        report_path(c.eval_dir or ""),
                        f"{name} is scored with {info.metric} ({info.reducer}) here but "
                        f"{prev.metric} ({prev.reducer}) in another cell",
                        "evaluate every cell of the sweep with the same biotune version",
                    )
                v.sets.setdefault(name, []).append((c, info))
    groups: dict[str, str] = {}
    for c in reversed(cells):  # the base's mapping wins
        groups.update(c.groups)
    families = {name: groups.get(info.source) or info.kind or "other" for name, info in set_infos.items()}
    controls = {c.control_for: c.variant for c in cells if c.control_for is not None}
    for v in variants.values():
        lacking = [name for name in set_infos if v.done and name not in v.sets]
        if lacking:
            log.warning("collect: %s has no predictions on %s", v.name, ", ".join(lacking))

    rows: list[ResultRow] = [v.row(eval_set="") for v in variants.values() if not v.done]
    macro: dict[tuple[str, str], dict[str, _MacroAcc]] = {}
    by_variant: dict[str, list[ResultRow]] = {v: [] for v in variants}
    for i, (name, info) in enumerate(set_infos.items(), 1):
        arms, set_rows = _compute_set(name, info, families[name], variants, base, controls, n_boot, seed)
        log.info("collect: set %d/%d %s: %d arms", i, len(set_infos), name, len(arms))
        for variant, row in set_rows.items():
            by_variant[variant].append(row)
            macro.setdefault((families[name], role_name(info.split)), {}).setdefault(
                variant, _MacroAcc()
            ).add(name, arms[variant], row.seeds)
    for v in variants:
        rows.extend(by_variant[v])
    macro_rows = _macro_rows(macro, set_infos, families, variants, base, controls)
    return rows, macro_rows


def _compute_set(
    name: str,
    info: SetInfo,
    family: str,
    variants: dict[str, _Variant],
    base: str | None,
    controls: dict[str, str],
    n_boot: int,
    seed: int,
) -> tuple[dict[str, st.ArmScore], dict[str, ResultRow]]:
    """Score every variant on one eval set against the base, on the set's shared resamples."""
    order = [v for v in variants if name in variants[v].sets]
    if base in order:
        order.remove(base)
        order.insert(0, base)
    loaded: dict[str, list[st.ExampleStats]] = {}
    reference: st.ExampleStats | None = None
    for v in order:
        exs = []
        for cell, _ in variants[v].sets[name]:
            assert cell.eval_dir is not None
            ex = load_example_stats(predictions_path(cell.eval_dir, info.source, info.split), info.reducer)
            reference = reference or ex
            exs.append(st.align(reference, ex))
        loaded[v] = exs
    assert reference is not None
    codes, n_units = st.unit_codes(reference.units)
    resamples = st.Resamples.draw(name, n_units, n_boot, seed)
    widths = [len(loaded[v]) for v in order]
    summed = st.unit_sums(np.stack([e.stats for v in order for e in loaded[v]]), codes, n_units)
    bounds = np.cumsum([0, *widths])
    arm_stats = {v: summed[bounds[j] : bounds[j + 1]] for j, v in enumerate(order)}
    arms = st.score_arms(resamples, reference.reducer, reference.stat_names, arm_stats)
    rows: dict[str, ResultRow] = {}
    for v in order:
        arm = arms[v]
        ok = [e.parse_ok for e in loaded[v] if e.parse_ok is not None]
        row = variants[v].row(
            eval_set=name,
            source=info.source,
            split=info.split,
            role=role_of(info.split),
            family=family,
            metric=info.metric,
            reducer=info.reducer,
            n=reference.n,
            n_units=n_units,
            seeds=[cell.seed for cell, _ in variants[v].sets[name]],
            seed_scores=[SCALE * s for s in arm.seed_scores.tolist()],
            mean=SCALE * arm.mean,
            sd=None if math.isnan(arm.sd) else SCALE * arm.sd,
            parse_failure_rate=float(1.0 - np.mean(np.concatenate(ok))) if ok else None,
        )
        row.seeds_done = len(loaded[v])
        if base in arms and v != base:
            _set_delta(row, st.delta(arm, arms[base]), control=False)
        control = controls.get(v)
        if control in arms:
            _set_delta(row, st.delta(arm, arms[control]), control=True)
        rows[v] = row
    return arms, rows


def _set_delta(row: ResultRow, d: st.Delta, *, control: bool) -> None:
    prefix = "control_" if control else ""
    setattr(row, f"{prefix}delta", SCALE * d.estimate)
    setattr(row, f"{prefix}ci_low", SCALE * d.ci_low)
    setattr(row, f"{prefix}ci_high", SCALE * d.ci_high)
    setattr(row, f"{prefix}p", d.p_value)
    setattr(row, f"{prefix}p_empirical", d.p_empirical)
    setattr(row, f"{prefix}se", SCALE * d.se)
    setattr(row, f"{prefix}df", d.df)
    setattr(row, "control_seeds" if control else "base_seeds", d.n_seeds[1])
    setattr(row, f"{prefix}inference", d.inference.value)


def _macro_rows(
    macro: dict[tuple[str, str], dict[str, _MacroAcc]],
    set_infos: dict[str, SetInfo],
    families: dict[str, str],
    variants: dict[str, _Variant],
    base: str | None,
    controls: dict[str, str],
) -> list[ResultRow]:
    """Macro-average rows per (family, split role): only variants evaluated on every set of the family (a
    family's ``devel`` and ``dev`` sets are averaged together, as ``dev``)."""
    rows: list[ResultRow] = []
    scored: dict[tuple[str, str], dict[str, st.ArmScore]] = {}
    for (family, split), accs in macro.items():
        members = [n for n, i in set_infos.items() if families[n] == family and role_name(i.split) == split]
        scored[(family, split)] = {
            v: st.macro_average(v, acc.arms) for v, acc in accs.items() if sorted(acc.sets) == sorted(members)
        }
    seeds = {(key, v): acc.common_seeds() for key, accs in macro.items() for v, acc in accs.items()}
    for v in variants:
        for (family, split), arms in scored.items():
            if v not in arms:
                continue
            arm = arms[v]
            members = [
                n for n, i in set_infos.items() if families[n] == family and role_name(i.split) == split
            ]
            row = variants[v].row(
                eval_set=f"macro:{set_label(family, split)}",
                split=split,
                role=role_of(split),
                family=family,
                metric=f"macro over {len(members)} set(s)",
                seeds=seeds[((family, split), v)]
                if len(seeds[((family, split), v)]) == arm.seed_scores.size
                else [],
                seed_scores=[SCALE * s for s in arm.seed_scores.tolist()],
                mean=SCALE * arm.mean,
                sd=None if math.isnan(arm.sd) else SCALE * arm.sd,
            )
            if base in arms and v != base:
                _set_delta(row, st.delta(arm, arms[base]), control=False)
            if controls.get(v) in arms:
                _set_delta(row, st.delta(arm, arms[controls[v]]), control=True)
            rows.append(row)
    return rows


def _correct(rows: list[ResultRow], macro_rows: list[ResultRow], method: str) -> None:
    """Adjust p-values in three families: per-set Δ vs base, per-set Δ vs control, macro Δ vs base."""
    for family, p_attr, adj_attr in (
        (rows, "p", "p_adj"),
        (rows, "control_p", "control_p_adj"),
        (macro_rows, "p", "p_adj"),
        (macro_rows, "control_p", "control_p_adj"),
    ):
        with_p = [r for r in family if getattr(r, p_attr) is not None]
        if not with_p:
            continue
        adjusted = st.adjust_p([getattr(r, p_attr) for r in with_p], method)  # type: ignore[arg-type]
        for r, a in zip(with_p, adjusted, strict=True):
            setattr(r, adj_attr, float(a))


def compute(
    cells: Sequence[CellResult], *, correction: str = "holm", n_boot: int = 1000, seed: int = 0
) -> Results:
    """What :func:`collect` computes, without writing anything (``sweep run --stage target`` ranks a proxy's
    variants with it). Same arguments and errors as :func:`collect`, less the output directory."""
    base = _check_cells(list(cells))
    cells = ordered_cells(cells)
    rows, macro_rows = _compute(cells, base, n_boot, seed)
    _correct(rows, macro_rows, correction)
    return Results(rows, macro_rows, list(cells), base, correction, n_boot, seed)

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

Scores are reported in percent (100 x ``metric_from_stats``), as in ``report.json``. Multiple testing:
three families, each corrected on its own across the whole table: Δ vs base per set, Δ vs control per
set, and Δ vs base of the macro-averages. A mark ``*`` means corrected p < ``ALPHA``.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.json as pj
import pyarrow.parquet as pq

from biotune.data.sources.splits import SplitRole, display_order, role_name, role_of
from biotune.errors import ConfigError, DataError, Problem
from biotune.eval.example_stats import REDUCERS
from biotune.eval.layout import predictions_path, report_path, set_label
from biotune.eval.report import read_report
from biotune.io import atomic_path, atomic_write_text
from biotune.sweep import stats as st
from biotune.sweep.state import CellState

log = logging.getLogger(__name__)

RESULTS_MD = "results.md"
RESULTS_CSV = "results.csv"
RESULTS_PARQUET = "results.parquet"
#: Scores and deltas are reported in percent points, like ``report.json``.
SCALE = 100.0
_OUR_FILES = (RESULTS_MD, RESULTS_CSV, RESULTS_PARQUET)


@dataclass
class CellResult:
    """One cell of a sweep (a variant trained with one seed) and where its evaluation lives."""

    name: str
    variant: str
    seed: int
    axis: str
    """Axis that made the variant, or ``"base"``."""
    axis_value: str | float | None
    """The axis value: a left-out source/group or mixture name (str), a factor (float), or None (swarm)."""
    is_base: bool
    control_for: str | None
    """For a size-matched control: the variant it controls; else None."""
    state: CellState
    """Where the cell stands (:class:`~biotune.sweep.state.CellState`; a plain value such as ``"done"`` is
    accepted too)."""
    log_path: str | None
    budget: dict[str, dict[str, float]]
    """Training source -> {"samples": int, "tokens": int, "epochs": float} realised in this cell's data."""
    weights: dict[str, float]
    """Training source -> mixture weight."""
    groups: dict[str, str]
    """Source -> group (task family); eval sets are macro-averaged per group."""
    eval_dir: Path | None


@dataclass
class ResultRow:
    """One row of the results table: a variant on one eval set, or on one task family's macro-average."""

    variant: str
    axis: str
    axis_value: str | float | None
    is_base: bool
    control_for: str | None
    eval_set: str
    """``<source>/<split>``, or ``macro:<family>/<split>``; empty for a variant without any evaluation."""
    state: str
    """``done``, ``partial`` (some seeds not done), or the cells' states when none is done."""
    seeds_done: int
    seeds_planned: int
    logs: str
    """Log paths of the variant's cells that are not done."""
    source: str | None = None
    split: str | None = None
    """The split in the source's own spelling (``devel``, ``dev``, ``test``)."""
    role: SplitRole | None = None
    """What the split is for (:class:`SplitRole`: selection on ``dev``, reporting on ``test``); None for a split
    outside the vocabulary. Selection and table order read this, never the spelling."""
    family: str | None = None
    metric: str | None = None
    reducer: str | None = None
    n: int | None = None
    n_units: int | None = None
    seeds: list[int] = field(default_factory=list)
    """Training seeds behind ``seed_scores``, in the same order (empty when they differ across a family's sets)."""
    seed_scores: list[float] = field(default_factory=list)
    mean: float | None = None
    sd: float | None = None
    delta: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    p: float | None = None
    p_adj: float | None = None
    p_empirical: float | None = None
    se: float | None = None
    """Standard error of Δ vs base (points): test-set sampling plus, with seeds, the seed variance."""
    df: float | None = None
    """Degrees of freedom behind ``p`` and the CI (Welch–Satterthwaite; inf for a conditional row)."""
    base_seeds: int | None = None
    """Training seeds of the base behind Δ (``seeds_done`` are the variant's)."""
    inference: str | None = None
    """How Δ vs base was tested (``stats.Inference``); one seed per arm gives ``stats.CONDITIONAL_LABEL``."""
    control_delta: float | None = None
    control_ci_low: float | None = None
    control_ci_high: float | None = None
    control_p: float | None = None
    control_p_adj: float | None = None
    control_p_empirical: float | None = None
    control_se: float | None = None
    control_df: float | None = None
    control_seeds: int | None = None
    control_inference: str | None = None
    parse_failure_rate: float | None = None
    total_samples: int | None = None
    total_tokens: int | None = None

    @property
    def significant(self) -> bool:
        """Corrected p-value of Δ vs base below ``ALPHA``."""
        return self.p_adj is not None and self.p_adj < st.ALPHA

    @property
    def conditional(self) -> bool:
        """Δ vs base (or vs control) compares two single-seed models: seed variance not measured."""
        return st.CONDITIONAL_LABEL in (self.inference, self.control_inference)

    @property
    def control_significant(self) -> bool:
        """Corrected p-value of Δ vs the size-matched control below ``ALPHA``."""
        return self.control_p_adj is not None and self.control_p_adj < st.ALPHA


@dataclass
class Results:
    """What ``collect`` computed and wrote."""

    rows: list[ResultRow]
    """Variant x eval set rows (and one row per variant without any done cell)."""
    macro_rows: list[ResultRow]
    cells: list[CellResult]
    base: str | None
    correction: str
    n_boot: int
    seed: int
    paths: dict[str, Path] = field(default_factory=dict)

    def variants(self) -> list[str]:
        """Variant names in table order (the base first)."""
        return list(dict.fromkeys(c.variant for c in _ordered(self.cells)))

    def cells_of(self, variant: str) -> list[CellResult]:
        """The cells of one variant."""
        return [c for c in self.cells if c.variant == variant]

    def scores(self, role: SplitRole | None = None) -> dict[str, dict[str, float]]:
        """Variant -> eval set -> mean headline over seeds (percent), optionally for the sets of one role only
        (every spelling of it: ``role=SplitRole.SELECTION`` keeps ``devel``, ``dev`` and ``validation`` sets)."""
        out: dict[str, dict[str, float]] = {}
        for r in self.rows:
            if r.mean is not None and (role is None or r.role is role):
                out.setdefault(r.variant, {})[r.eval_set] = r.mean
        return out


# ------------------------------------------------------------------------------------------- entry point


def collect(
    cells: Sequence[CellResult],
    out_dir: str | Path,
    *,
    correction: str = "holm",
    n_boot: int = 1000,
    seed: int = 0,
    plots: bool = True,
) -> Results:
    """Compute the sweep's results table from every done cell's predictions and write it to ``out_dir``.

    Args:
        cells: every cell of the sweep, whatever its state (all of them appear in the output).
        out_dir: a new or empty directory, or one written by ``collect`` before (files are replaced).
        correction: ``holm`` (family-wise error) or ``bh`` (false discovery rate).
        n_boot: bootstrap resamples per eval set.
        seed: seeds the resamples (per eval set, see ``biotune.sweep.stats``).
        plots: draw the PNGs (the heatmap, scaling curves, interaction matrix).

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
    cells = _ordered(cells)
    _check_out_dir(out)
    rows, macro_rows = _compute(cells, base, n_boot, seed)
    _correct(rows, macro_rows, correction)
    results = Results(rows, macro_rows, list(cells), base, correction, n_boot, seed)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / RESULTS_MD, to_markdown(results))
    results.paths["md"] = out / RESULTS_MD
    atomic_write_text(out / RESULTS_CSV, to_csv(results))
    results.paths["csv"] = out / RESULTS_CSV
    replace_atomic(out / RESULTS_PARQUET, lambda tmp: pq.write_table(long_table(results), tmp))
    results.paths["parquet"] = out / RESULTS_PARQUET
    if plots:
        from biotune.sweep import plots as plotting

        for name, path in plotting.draw_all(results, out).items():
            results.paths[name] = path
    log.info("collect: %d rows, %d macro rows -> %s", len(rows), len(macro_rows), out)
    return results


def replace_atomic(path: Path, write: Callable[[Path], None]) -> None:
    """Write ``path`` through ``write(temporary path)`` and an atomic rename (never a partial file)."""
    with atomic_path(path) as tmp:
        write(tmp)


# ------------------------------------------------------------------------------------------- checks


def _ordered(cells: Iterable[CellResult]) -> list[CellResult]:
    """Cells with the base variant's first, otherwise in the given order."""
    cells = list(cells)
    return [c for c in cells if c.is_base] + [c for c in cells if not c.is_base]


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
    if out.is_dir() and any(out.iterdir()) and not any((out / f).exists() for f in _OUR_FILES):
        raise DataError(
            out,
            "directory is not empty and holds no earlier collect output",
            "pass a new or empty directory (collect never writes into someone else's files)",
        )


# ------------------------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class _SetInfo:
    eval_set: str
    source: str
    split: str
    metric: str
    reducer: str
    kind: str | None


def _report_sets(cell: CellResult) -> dict[str, _SetInfo]:
    assert cell.eval_dir is not None
    path = report_path(cell.eval_dir)
    report = read_report(path)
    sets: dict[str, _SetInfo] = {}
    for i, row in enumerate(report.get("rows", [])):
        if "reducer" not in row:
            raise DataError(
                path,
                f"report row {i} ({row.get('dataset')}) has no 'reducer'",
                f"re-run `biotune eval` for cell {cell.name!r} (this report predates per-example stats)",
            )
        if row["reducer"] not in REDUCERS:
            raise DataError(
                path,
                f"report row {i} ({row.get('dataset')}) has unknown reducer {row['reducer']!r}",
                f"use one of {', '.join(REDUCERS)} (re-run `biotune eval` with this biotune version)",
            )
        name = set_label(row["source"], row["split"])
        sets[name] = _SetInfo(
            name,
            row["source"],
            row["split"],
            row.get("metric") or row.get("headline"),
            row["reducer"],
            row.get("kind"),
        )
    if not sets:
        raise DataError(path, "report has no rows", f"re-run `biotune eval` for cell {cell.name!r}")
    return sets


def load_example_stats(path: Path, reducer: str) -> st.ExampleStats:
    """Read one predictions file's ``id``, ``unit``, ``stats`` and ``parse_ok`` columns.

    A fast columnar read (pyarrow) serves well-formed files; anything unexpected is re-read line by line to
    name the exact problem.

    Raises:
        DataError: naming file:line for a line that is not JSON or lacks ``id``, ``unit`` or ``stats``.
    """
    if not path.is_file():
        raise DataError(
            path,
            "predictions file is missing",
            "re-run `biotune eval` for this cell (it writes predictions/<source>__<split>.jsonl)",
        )
    names = REDUCERS[reducer].keys
    try:
        return _read_fast(path, reducer, names)
    except (ValueError, pa.ArrowException):
        return _read_slow(path, reducer)


def _read_fast(path: Path, reducer: str, names: tuple[str, ...]) -> st.ExampleStats:
    schema = pa.schema(
        [
            ("id", pa.string()),
            ("unit", pa.string()),
            ("parse_ok", pa.bool_()),
            ("stats", pa.struct([(n, pa.float64()) for n in names])),
        ]
    )
    table = pj.read_json(
        path,
        read_options=pj.ReadOptions(use_threads=False, block_size=max(1 << 20, path.stat().st_size + 1)),
        parse_options=pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore"),
    )
    ids, units, ok = (table.column(c).combine_chunks() for c in ("id", "unit", "parse_ok"))
    stats_col = table.column("stats").combine_chunks()
    children = stats_col.flatten()
    if (
        table.num_rows == 0
        or ids.null_count
        or units.null_count
        or stats_col.null_count
        or any(c.null_count for c in children)
    ):
        raise ValueError("incomplete rows")  # the slow path names them
    stats = np.column_stack([c.to_numpy(zero_copy_only=False) for c in children]).astype(np.float64)
    if st.stat_problem(reducer, names, stats) is not None:
        raise ValueError("invalid statistics")  # the slow path names the line and the field
    parse_ok = None if ok.null_count == len(ok) else ok.fill_null(True).to_numpy(zero_copy_only=False)
    ex = st.ExampleStats(path, reducer, names, ids, units, stats.reshape(-1, len(names)), parse_ok)
    st.check_unique_ids(ex)
    return ex


def _read_slow(path: Path, reducer: str) -> st.ExampleStats:
    names = REDUCERS[reducer].keys
    rows: list[dict[str, Any]] = []
    with path.open("rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            if not raw.strip():
                continue
            try:
                row = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError) as err:
                msg = err.msg if isinstance(err, json.JSONDecodeError) else "not UTF-8"
                raise DataError(
                    path,
                    f"not valid JSON ({msg})",
                    "re-run `biotune eval` for this cell (the file is truncated or corrupted)",
                    lineno,
                ) from err
            _check_row(path, lineno, row, reducer, names)
            rows.append(row)
    if not rows:
        raise DataError(path, "predictions file is empty", "re-run `biotune eval` for this cell")
    return st.ExampleStats.from_rows(rows, path, reducer)


def _check_row(path: Path, lineno: int, row: Any, reducer: str, names: Sequence[str]) -> None:
    if not isinstance(row, dict) or not isinstance(row.get("id"), str):
        raise DataError(path, "row has no string 'id'", "re-run `biotune eval` for this cell", lineno)
    if row.get("unit") is None:
        raise DataError(path, "row has no 'unit' (the resampling unit)", st.STATS_FIX, lineno)
    stats = row.get("stats")
    if not isinstance(stats, dict):
        raise DataError(path, "row has no 'stats'", st.STATS_FIX, lineno)
    missing = [k for k in names if k not in stats]
    if missing:
        raise DataError(
            path,
            f"'stats' lacks {', '.join(missing)} (reducer {reducer} needs {', '.join(names)})",
            st.STATS_FIX,
            lineno,
        )
    bad = [k for k in names if isinstance(stats[k], bool) or not isinstance(stats[k], int | float)]
    if bad:
        raise DataError(
            path, f"'stats' values must be numbers ({', '.join(bad)} are not)", st.STATS_FIX, lineno
        )
    problem = st.stat_problem(reducer, names, np.array([[float(stats[k]) for k in names]]))
    if problem is not None:
        _, name, why = problem
        raise DataError(path, f"'stats.{name}' {why}", st.STATS_FIX, lineno)


# ------------------------------------------------------------------------------------------- computing


@dataclass
class _Variant:
    """A variant's cells, and for each eval set the done cells (with the set's report row) that have it."""

    name: str
    cells: list[CellResult]
    sets: dict[str, list[tuple[CellResult, _SetInfo]]] = field(default_factory=dict)

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
    set_infos: dict[str, _SetInfo] = {}
    for v in variants.values():
        for c in v.done:
            for name, info in _report_sets(c).items():
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
    info: _SetInfo,
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
    set_infos: dict[str, _SetInfo],
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


# ------------------------------------------------------------------------------------------- writing


def _f(value: float | None, signed: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:+.2f}" if signed else f"{value:.2f}"


def _p(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:.3f}" if value >= 0.001 else f"{value:.0e}"


def _axis(row: ResultRow) -> str:
    if row.is_base:
        return "base"
    value = row.axis_value
    shown = "" if value is None else f"={value:g}" if isinstance(value, float) else f"={value}"
    ctl = f" (control for {row.control_for})" if row.control_for else ""
    return f"{row.axis}{shown}{ctl}"


_MARK = " †"
#: Printed under every table with a row of two single-seed arms (marked † in its Δ).
CONDITIONAL_NOTE = (
    f"{_MARK.strip()} {st.CONDITIONAL_LABEL}: one training seed per arm, so the CI covers test-set "
    "sampling only. It says whether these two trained models differ on this population, not whether the "
    "data recipes do; train >= 3 seeds per variant for that."
)


def _md_rows(rows: Sequence[ResultRow], with_control: bool, label: str) -> list[str]:
    head = [
        "variant",
        "axis",
        "eval set",
        "metric",
        "n (units)",
        "seeds",
        "score (mean ± sd)",
        "Δ vs base [95% CI]",
        f"p ({label})",
        "sig",
    ]
    if with_control:
        head += ["Δ vs control [95% CI]", f"p ctl ({label})"]
    head += ["samples", "tokens", "state"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for r in rows:
        score = "–" if r.mean is None else _f(r.mean) + (f" ± {_f(r.sd)}" if r.sd is not None else "")
        d = "–" if r.delta is None else f"{_f(r.delta, True)} [{_f(r.ci_low, True)}, {_f(r.ci_high, True)}]"
        d += _MARK if r.inference == st.CONDITIONAL_LABEL else ""
        n = "–" if r.n is None else f"{r.n}" + (f" ({r.n_units})" if r.n_units is not None else "")
        state = r.state if not r.logs else f"{r.state} ({r.logs})"
        cells = [
            r.variant,
            _axis(r),
            r.eval_set or "–",
            r.metric or "–",
            n,
            f"{r.seeds_done}/{r.seeds_planned}",
            score,
            d,
            _p(r.p_adj),
            "*" if r.significant else "",
        ]
        if with_control:
            cd = (
                "–"
                if r.control_delta is None
                else f"{_f(r.control_delta, True)} [{_f(r.control_ci_low, True)}, {_f(r.control_ci_high, True)}]"
            )
            cd += _MARK if r.control_inference == st.CONDITIONAL_LABEL else ""
            cells += [cd + (" *" if r.control_significant else ""), _p(r.control_p_adj)]
        cells += [
            str(r.total_samples) if r.total_samples is not None else "–",
            str(r.total_tokens) if r.total_tokens is not None else "–",
            state,
        ]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    if any(r.conditional for r in rows):
        lines += ["", CONDITIONAL_NOTE]
    return lines


def to_markdown(results: Results) -> str:
    """The results as markdown: per-split tables, task-family macro-averages, and every cell's state."""
    label = {"holm": "Holm", "bh": "BH"}[results.correction]
    with_control = any(c.control_for for c in results.cells)
    n_done = sum(c.state == CellState.DONE for c in results.cells)
    out = [
        "# Sweep results",
        "",
        f"{len(results.variants())} variants, {len(results.cells)} cells ({n_done} done); base: "
        f"{results.base or 'none'}. Scores in percent; score = mean ± sd over training seeds; Δ = variant − "
        f"base in points with a 95% CI from a paired bootstrap ({results.n_boot} resamples of documents for "
        f"NER/RE, of examples otherwise; seed {results.seed}). Where an arm has >= 2 training seeds, seeds are "
        "a random factor: se² = test-set bootstrap se² + s²/m of each arm (unshrunk), CI and p from Student t "
        "with Welch–Satterthwaite df (columns se, df in results.csv). Rows marked † have one seed per arm: "
        f"{st.CONDITIONAL_LABEL} (percentile CI, normal p). p: two-sided, corrected by {label} within three "
        f"families (Δ vs base per set, Δ vs control per set, macro-averages); * = corrected p < {st.ALPHA}.",
        "",
    ]
    groups = sorted({role_name(r.split) for r in results.rows if r.split}, key=display_order)
    for group in groups:
        title = (
            "Dev sets (use these for selection)"
            if role_of(group) is SplitRole.SELECTION
            else f"{group.capitalize()} sets"
        )
        out += (
            [f"## {title}", ""]
            + _md_rows(
                [r for r in results.rows if r.split and role_name(r.split) == group], with_control, label
            )
            + [""]
        )
    not_evaluated = [r for r in results.rows if not r.split]
    if not_evaluated:
        out += ["## Variants without results", ""] + _md_rows(not_evaluated, with_control, label) + [""]
    if results.macro_rows:
        out += ["## Task-family macro-averages (mean of the family's sets)", ""]
        out += _md_rows(results.macro_rows, with_control, label) + [""]
    out += ["## Cells", "", "| cell | variant | seed | state | log | eval dir |", "|---|---|---|---|---|---|"]
    for c in results.cells:
        out.append(
            f"| {c.name} | {c.variant} | {c.seed} | {c.state} | {c.log_path or '–'} | {c.eval_dir or '–'} |"
        )
    return "\n".join(out) + "\n"


_ROW_FIELDS = [f.name for f in fields(ResultRow)]


def _train_sources(results: Results) -> list[str]:
    return list(dict.fromkeys(s for c in results.cells for s in [*c.budget, *c.weights]))


def to_csv(results: Results) -> str:
    """The results (per-set rows, then macro rows) as CSV, with budget and weight columns per training source."""
    sources = _train_sources(results)
    extra = [f"{k}:{s}" for s in sources for k in ("samples", "tokens", "epochs", "weight")]
    buf = io.StringIO()
    writer = csv.DictWriter(
        buf, fieldnames=[*_ROW_FIELDS, "significant", "control_significant", *extra], lineterminator="\n"
    )
    writer.writeheader()
    first = {v: results.cells_of(v)[0] for v in results.variants()}
    for r in [*results.rows, *results.macro_rows]:
        rec: dict[str, Any] = {k: getattr(r, k) for k in _ROW_FIELDS}
        rec["seed_scores"] = ";".join(f"{s:.6g}" for s in r.seed_scores)
        rec["seeds"] = ";".join(str(s) for s in r.seeds)
        rec["significant"], rec["control_significant"] = r.significant, r.control_significant
        cell = first[r.variant]
        for s in sources:
            b = cell.budget.get(s, {})
            rec[f"samples:{s}"], rec[f"tokens:{s}"], rec[f"epochs:{s}"] = (
                b.get("samples"),
                b.get("tokens"),
                b.get("epochs"),
            )
            rec[f"weight:{s}"] = cell.weights.get(s)
        writer.writerow(rec)
    return buf.getvalue()


_LONG_SCHEMA = pa.schema(
    [
        ("variant", pa.string()),
        ("seed", pa.int64()),
        ("eval_set", pa.string()),
        ("source", pa.string()),
        ("split", pa.string()),
        ("family", pa.string()),
        ("metric", pa.string()),
        ("axis", pa.string()),
        ("axis_value", pa.string()),
        ("is_base", pa.bool_()),
        ("statistic", pa.string()),
        ("value", pa.float64()),
    ]
)
_AGGREGATES = (
    "n",
    "n_units",
    "mean",
    "sd",
    "delta",
    "ci_low",
    "ci_high",
    "p",
    "p_adj",
    "p_empirical",
    "se",
    "df",
    "base_seeds",
    "control_delta",
    "control_ci_low",
    "control_ci_high",
    "control_p",
    "control_p_adj",
    "control_p_empirical",
    "control_se",
    "control_df",
    "control_seeds",
    "parse_failure_rate",
)


def long_table(results: Results) -> pa.Table:
    """The results in long format: one row per variant x seed x eval set x statistic (see the module doc)."""
    cols: dict[str, list[Any]] = {name: [] for name in _LONG_SCHEMA.names}

    def add(row_meta: tuple[Any, ...], seed: int | None, statistic: str, value: float | None) -> None:
        variant, eval_set, source, split, family, metric, axis, axis_value, is_base = row_meta
        for key, val in (
            ("variant", variant),
            ("seed", seed),
            ("eval_set", eval_set),
            ("source", source),
            ("split", split),
            ("family", family),
            ("metric", metric),
            ("axis", axis),
            ("axis_value", axis_value),
            ("is_base", is_base),
            ("statistic", statistic),
            ("value", value),
        ):
            cols[key].append(val)

    for r in [*results.rows, *results.macro_rows]:
        if not r.eval_set:
            continue
        meta = (
            r.variant,
            r.eval_set,
            r.source,
            r.split,
            r.family,
            r.metric,
            r.axis,
            None if r.axis_value is None else str(r.axis_value),
            r.is_base,
        )
        if len(r.seeds) == len(r.seed_scores):
            for s, score in zip(r.seeds, r.seed_scores, strict=True):
                add(meta, s, "score", score)
        for name in _AGGREGATES:
            value = getattr(r, name)
            if value is not None:
                add(meta, None, name, float(value))
    for v in results.variants():
        c = results.cells_of(v)[0]
        for src in dict.fromkeys([*c.budget, *c.weights]):
            meta = (
                v,
                None,
                src,
                None,
                c.groups.get(src),
                None,
                c.axis,
                None if c.axis_value is None else str(c.axis_value),
                c.is_base,
            )
            for key, val in c.budget.get(src, {}).items():
                add(meta, None, key, float(val))
            if src in c.weights:
                add(meta, None, "weight", float(c.weights[src]))
    return pa.table(cols, schema=_LONG_SCHEMA)

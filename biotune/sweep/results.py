"""A sweep's result rows, and the reading of each cell's evaluation that feeds them.

:class:`CellResult` is one cell of a sweep (what ``collect`` is given), :class:`ResultRow` one row of the results
table, :class:`Results` what ``collect`` computed. :func:`report_sets` reads a cell's ``report.json`` rows and
:func:`load_example_stats` one predictions file's per-example statistics, validating every row (a bad one is a
DataError naming file:line and field). ``biotune.sweep.collect`` computes the rows, ``biotune.sweep.tables``
writes them, ``biotune.sweep.plots`` draws them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.json as pj

from biotune.errors import DataError
from biotune.eval.example_stats import REDUCERS
from biotune.eval.layout import report_path, set_label
from biotune.eval.report import read_report
from biotune.sources.splits import SplitRole
from biotune.sweep import stats as st
from biotune.sweep.agreement import LevelAgreement
from biotune.sweep.fidelity import TARGET
from biotune.sweep.state import CellState

#: Scores and deltas are reported in percent points, like ``report.json``.
SCALE = 100.0


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
    fidelity: str = ""
    """The fidelity the cell ran at (:mod:`biotune.sweep.fidelity`); empty in a sweep without fidelities."""
    process_seconds: float | None = None
    """Measured training cost: wall seconds of the cell's train stage x its processes (:func:`process_seconds`);
    None when the cell did not record it."""


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
    fidelity: str = ""
    """The fidelity of the row (a sweep with ``fidelities:``); the tables show it only in such a sweep."""
    process_seconds: float | None = None
    """Measured training cost of the variant's done cells, summed (process-seconds); shown with fidelities."""

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
    fidelities: dict[str, Results] = field(default_factory=dict)
    """Per fidelity, its own results (Δ vs the base at that fidelity); empty in a sweep without fidelities,
    where ``rows`` are the whole table. With fidelities, ``rows`` hold every fidelity's rows, each tagged."""
    agreements: list[LevelAgreement] = field(default_factory=list)
    """Each proxy fidelity against the target (:func:`biotune.sweep.agreement.compare_levels`)."""
    not_measured: dict[str, str] = field(default_factory=dict)
    """Proxy fidelity -> why its agreement with the target could not be measured (and the fix)."""
    costs: list[FidelityCost] = field(default_factory=list)
    """Measured training cost per fidelity (:func:`fidelity_costs`)."""

    def variants(self) -> list[str]:
        """Variant names in table order (the base first)."""
        return list(dict.fromkeys(c.variant for c in ordered_cells(self.cells)))

    def cells_of(self, variant: str) -> list[CellResult]:
        """The cells of one variant."""
        return [c for c in self.cells if c.variant == variant]

    def scores(self, role: SplitRole | None = None) -> dict[str, dict[str, float]]:
        """Variant -> eval set -> mean headline over seeds (percent), optionally for the sets of one role only
        (every spelling of it: ``role=SplitRole.SELECTION`` keeps ``devel``, ``dev`` and ``validation`` sets).
        With fidelities, the target's scores (a proxy's are in ``fidelities[name]``)."""
        if self.fidelities:
            return self.fidelities[TARGET if TARGET in self.fidelities else list(self.fidelities)[-1]].scores(
                role
            )
        out: dict[str, dict[str, float]] = {}
        for r in self.rows:
            if r.mean is not None and (role is None or r.role is role):
                out.setdefault(r.variant, {})[r.eval_set] = r.mean
        return out


@dataclass(frozen=True)
class FidelityCost:
    """The measured training cost of one fidelity's cells (process-seconds: train wall seconds x processes)."""

    fidelity: str
    cells: int
    """Done cells of the fidelity."""
    measured: int
    """Of them, those that recorded their cost."""
    total_s: float
    """Process-seconds summed over the measured cells."""
    per_cell_s: float
    """Mean process-seconds per measured cell (NaN when none is measured)."""
    ratio: float
    """``per_cell_s`` over the target's (NaN without a measured target): what one proxy run costs."""


def process_seconds(train_seconds: float | None, processes: int | None) -> float | None:
    """A cell's measured training cost: its train stage's wall seconds times its processes (ranks); None
    when either is unknown. The one formula: the runner records both, ``collect`` reports their product."""
    if train_seconds is None or processes is None:
        return None
    return float(train_seconds) * int(processes)


def fidelity_costs(cells: Sequence[CellResult]) -> list[FidelityCost]:
    """Per fidelity (in order of first appearance), the measured cost of its done cells and its ratio to the
    target's cost per cell."""
    by: dict[str, list[CellResult]] = {}
    for c in cells:
        if c.state == CellState.DONE:
            by.setdefault(c.fidelity, []).append(c)
    raw = []
    for fid, done in by.items():
        measured = [c.process_seconds for c in done if c.process_seconds is not None]
        total = float(sum(measured))
        raw.append(
            (fid, len(done), len(measured), total, total / len(measured) if measured else float("nan"))
        )
    target = next((r[4] for r in raw if r[0] == TARGET), float("nan"))
    return [FidelityCost(f, n, m, t, p, p / target if target > 0 else float("nan")) for f, n, m, t, p in raw]


def ordered_cells(cells: Iterable[CellResult]) -> list[CellResult]:
    """Cells with the base variant's first, otherwise in the given order."""
    cells = list(cells)
    return [c for c in cells if c.is_base] + [c for c in cells if not c.is_base]


# ------------------------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class SetInfo:
    """One eval set of a cell's report: its label, source, split, metric, reducer and task kind."""

    eval_set: str
    source: str
    split: str
    metric: str
    reducer: str
    kind: str | None


def report_sets(cell: CellResult) -> dict[str, SetInfo]:
    """The eval sets of a done cell's ``report.json``, by ``<source>/<split>`` label.

    Raises:
        DataError: a report without rows, or a row without a known ``reducer`` (names the fix).
    """
    assert cell.eval_dir is not None
    path = report_path(cell.eval_dir)
    report = read_report(path)
    sets: dict[str, SetInfo] = {}
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
        sets[name] = SetInfo(
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

"""The results table of a sweep as files: ``results.md`` (Markdown), ``results.csv`` and ``results.parquet``.

:func:`to_markdown` renders per-split tables, the task-family macro-averages and every cell's state;
:func:`to_csv` the same rows, numeric, with budget and weight columns per training source; :func:`long_table`
the long format (one row per variant x seed x eval set x statistic). See ``biotune.sweep.collect`` for what
each column means. The file names are owned here.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import fields
from typing import Any

import pyarrow as pa

from biotune.sources.splits import SplitRole, display_order, role_name, role_of
from biotune.sweep import stats as st
from biotune.sweep.results import ResultRow, Results
from biotune.sweep.state import CellState

RESULTS_MD = "results.md"
RESULTS_CSV = "results.csv"
RESULTS_PARQUET = "results.parquet"
#: Every file the tables write (``collect`` may replace a directory holding one of them).
TABLE_FILES = (RESULTS_MD, RESULTS_CSV, RESULTS_PARQUET)


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


def _md_rows(
    rows: Sequence[ResultRow], with_control: bool, label: str, with_fidelity: bool = False
) -> list[str]:
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
    if with_fidelity:
        head = ["fidelity", *head, "train process-s"]
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
        if with_fidelity:
            cost = "–" if r.process_seconds is None else f"{r.process_seconds:,.0f}"
            cells = [r.fidelity, *cells, cost]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    if any(r.conditional for r in rows):
        lines += ["", CONDITIONAL_NOTE]
    return lines


def to_markdown(results: Results) -> str:
    """The results as markdown: per-split tables, task-family macro-averages, and every cell's state."""
    label = {"holm": "Holm", "bh": "BH"}[results.correction]
    with_control = any(c.control_for for c in results.cells)
    fid = bool(results.fidelities)
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
        f"families (Δ vs base per set, Δ vs control per set, macro-averages); * = corrected p < {st.ALPHA}."
        + (
            " Fidelities: each row's Δ is against the base at the SAME fidelity, and p-values are corrected "
            "within each fidelity; train process-s = train wall seconds x processes, summed over the seeds."
            if fid
            else ""
        ),
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
                [r for r in results.rows if r.split and role_name(r.split) == group], with_control, label, fid
            )
            + [""]
        )
    not_evaluated = [r for r in results.rows if not r.split]
    if not_evaluated:
        out += ["## Variants without results", ""] + _md_rows(not_evaluated, with_control, label, fid) + [""]
    if results.macro_rows:
        out += ["## Task-family macro-averages (mean of the family's sets)", ""]
        out += _md_rows(results.macro_rows, with_control, label, fid) + [""]
    if fid:
        out += [
            "## Cells",
            "",
            "| cell | fidelity | variant | seed | state | train process-s | log | eval dir |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for c in results.cells:
            cost = "–" if c.process_seconds is None else f"{c.process_seconds:,.0f}"
            out.append(
                f"| {c.name} | {c.fidelity} | {c.variant} | {c.seed} | {c.state} | {cost} | "
                f"{c.log_path or '–'} | {c.eval_dir or '–'} |"
            )
        return "\n".join(out) + "\n"
    out += ["## Cells", "", "| cell | variant | seed | state | log | eval dir |", "|---|---|---|---|---|---|"]
    for c in results.cells:
        out.append(
            f"| {c.name} | {c.variant} | {c.seed} | {c.state} | {c.log_path or '–'} | {c.eval_dir or '–'} |"
        )
    return "\n".join(out) + "\n"


#: Columns of a row shown only in a sweep with fidelities (so a sweep without them writes what it always did).
_FIDELITY_FIELDS = ("fidelity", "process_seconds")
_ROW_FIELDS = [f.name for f in fields(ResultRow) if f.name not in _FIDELITY_FIELDS]


def _row_fields(results: Results) -> list[str]:
    """The CSV's row columns: the fidelity first and the measured cost last in a sweep with fidelities."""
    return ["fidelity", *_ROW_FIELDS, "process_seconds"] if results.fidelities else _ROW_FIELDS


def _train_sources(results: Results) -> list[str]:
    return list(dict.fromkeys(s for c in results.cells for s in [*c.budget, *c.weights]))


def to_csv(results: Results) -> str:
    """The results (per-set rows, then macro rows) as CSV, with budget and weight columns per training source."""
    sources = _train_sources(results)
    extra = [f"{k}:{s}" for s in sources for k in ("samples", "tokens", "epochs", "weight")]
    buf = io.StringIO()
    row_fields = _row_fields(results)
    writer = csv.DictWriter(
        buf, fieldnames=[*row_fields, "significant", "control_significant", *extra], lineterminator="\n"
    )
    writer.writeheader()
    first = {v: results.cells_of(v)[0] for v in results.variants()}
    for r in [*results.rows, *results.macro_rows]:
        rec: dict[str, Any] = {k: getattr(r, k) for k in row_fields}
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
    "process_seconds",
)


def long_table(results: Results) -> pa.Table:
    """The results in long format: one row per variant x seed x eval set x statistic (see the module doc)."""
    cols: dict[str, list[Any]] = {name: [] for name in _LONG_SCHEMA.names}
    fidelity_col: list[str] = []
    fidelity = ""

    def add(row_meta: tuple[Any, ...], seed: int | None, statistic: str, value: float | None) -> None:
        fidelity_col.append(fidelity)
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
        fidelity = r.fidelity
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
    fidelity = ""  # budget and weights: the same realised data at every fidelity
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
    table = pa.table(cols, schema=_LONG_SCHEMA)
    if results.fidelities:
        table = table.add_column(0, pa.field("fidelity", pa.string()), pa.array(fidelity_col, pa.string()))
    return table

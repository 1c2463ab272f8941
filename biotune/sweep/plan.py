"""What a sweep will train on, before anything runs: per-variant samples and tokens, and the power of its tests.

With a ``fidelities:`` block, :func:`fidelity_costs` estimates each fidelity's GPU-hours (its own settings: a
smaller model, LoRA, fewer steps) times its cells, the design's total, and the cost of running every variant at
the target instead; :func:`format_fidelity_costs` renders them.

:func:`plan_rows` gives one tidy row per variant (realised samples, tokens and passes per source, samples and
tokens per group; cost columns from a caller-supplied estimator); :func:`format_plan` renders them as
Markdown.

:func:`power_rows` answers "can these eval sets and seeds show the difference I am looking for?": per eval set
the resampling units (:func:`eval_set_units`), the detectable effect at 80% power, the power at the sweep's
``min_effect`` and the seeds per arm that reach 80%, from the paired design's formula in
:mod:`biotune.sweep.power` (seed variance included, a t reference). Its inputs come from an earlier sweep's
per-example predictions and per-seed scores when one is given (:func:`read_pilot`), else from the sweep file's
``power`` block and the documented defaults. :func:`power_warnings` warns when an arm has fewer than 3 seeds and
for each set that cannot detect ``min_effect``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from biotune.config import RunConfig
from biotune.data.tasks import task_for
from biotune.errors import ConfigError, DataError
from biotune.eval.example_stats import REDUCERS
from biotune.eval.layout import predictions_path, report_path, set_label
from biotune.eval.report import read_report
from biotune.eval.sets import plan_sets
from biotune.plan import Plan, kept_bytes, make_plan
from biotune.sources import available_splits, catalog, load_records, resolve_root
from biotune.sweep import power as pw
from biotune.sweep import runner
from biotune.sweep import stats as st
from biotune.sweep.fidelity import ALL, TARGET, Anchors, Fidelity
from biotune.sweep.results import SCALE, CellResult, load_example_stats
from biotune.sweep.spec import BASE, SweepSpec, format_value
from biotune.sweep.state import CellState
from biotune.sweep.variants import Variant

#: An estimator of a variant's costs, e.g. ``{"gpu_hours": 12.5, "disk_gb": 14.0}`` (from ``biotune.plan``).
Estimator = Callable[[Variant], Mapping[str, float]]

_LEAD = ("variant", "kind", "value", "budget", "content_hash", "seeds", "samples", "tokens")


def _value(variant: Variant) -> str:
    if variant.kind == "scale":
        return f"{variant.target} x{format_value(variant.value)}"
    return "" if variant.value is None else format_value(variant.value)


def plan_rows(
    spec: SweepSpec,
    variants: Sequence[Variant],
    available: Mapping[str, int],
    tokens_per_sample: Mapping[str, float] | None = None,
    estimate: Estimator | None = None,
) -> list[dict[str, Any]]:
    """One flat row per variant, every row with the same keys.

    Keys: ``variant, kind, value, budget, content_hash, seeds`` (cells per variant), ``samples``, ``tokens``
    (``None`` without ``tokens_per_sample``), then per source ``samples[s]``, ``tokens[s]``, ``epochs[s]``
    (passes over its available samples), per group ``group_samples[g]``, ``group_tokens[g]``, then whatever
    ``estimate(variant)`` returns (GPU-hours, disk under ``spec.keep``, ...). Sources and groups are those of
    any variant, in order of first appearance.
    """
    sources = list(dict.fromkeys(s for v in variants for s in v.counts))
    groups = list(dict.fromkeys(g for v in variants for g in v.groups))
    tau = tokens_per_sample
    rows: list[dict[str, Any]] = []
    for v in variants:
        row: dict[str, Any] = {
            "variant": v.name,
            "kind": v.kind,
            "value": _value(v),
            "budget": v.budget,
            "content_hash": v.content_hash,
            "seeds": len(v.seeds),
            "samples": v.total,
        }
        tokens = {s: c * tau[s] for s, c in v.counts.items()} if tau is not None else None
        row["tokens"] = round(sum(tokens.values())) if tokens is not None else None
        for s in sources:
            count = v.counts.get(s, 0)
            row[f"samples[{s}]"] = count
            row[f"tokens[{s}]"] = round(tokens.get(s, 0.0)) if tokens is not None else None
            row[f"epochs[{s}]"] = round(count / available[s], 3) if available.get(s) else None
        for g in groups:
            members = [s for s in v.counts if v.source_groups[s] == g]
            row[f"group_samples[{g}]"] = v.groups.get(g, 0)
            row[f"group_tokens[{g}]"] = round(sum(tokens[s] for s in members)) if tokens is not None else None
        if estimate is not None:
            row.update(estimate(v))
        rows.append(row)
    return rows


def format_plan(rows: Sequence[Mapping[str, Any]], per_source: bool = True) -> str:
    """A Markdown table of :func:`plan_rows`: the lead columns, group samples, then (optionally) per-source
    samples and any estimate columns."""
    if not rows:
        return "(no variants)\n"
    keys = list(rows[0])
    cols = [k for k in _LEAD if k in keys and (k != "tokens" or rows[0]["tokens"] is not None)]
    cols += [k for k in keys if k.startswith("group_samples[")]
    if per_source:
        cols += [k for k in keys if k.startswith("samples[")]
    cols += [
        k for k in keys if k not in _LEAD and not k.startswith(("samples[", "tokens[", "epochs[", "group_"))
    ]

    def cell(value: Any, col: str) -> str:
        if value is None:
            return ""
        if col == "content_hash":
            return str(value)[:8]
        if isinstance(value, float):
            return f"{value:,.2f}"
        if isinstance(value, int) and not isinstance(value, bool):
            return f"{value:,}"
        return str(value)

    header = [c.replace("group_samples", "group").replace("content_hash", "hash") for c in cols]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    lines += ["| " + " | ".join(cell(r.get(c), c) for c in cols) + " |" for r in rows]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------- power


@dataclass(frozen=True)
class EvalSetSize:
    """One evaluation set as the base will score it: examples, resampling units and task kind."""

    examples: int
    units: int
    """Distinct resampling units (:meth:`Task.unit`: documents for NER/RE where records name them)."""
    kind: str
    items: float
    """Scored items (:func:`biotune.sweep.power.scored_items`: gold entities/relations/labels for F1 sets)."""


def power_rows(
    spec: SweepSpec,
    variants: Sequence[Variant],
    sets: Mapping[str, EvalSetSize],
    pilot: Mapping[str, pw.SetEstimate] | None = None,
) -> list[pw.SetPower]:
    """The power of each eval set's Δ vs base (:func:`biotune.sweep.power.plan_set`) at ``spec.min_effect``.

    Seeds: the base's, and the fewest any other variant runs with (the least powerful comparison). A set the
    pilot measured but the eval data here does not hold (corpora not on this machine) is sized by the pilot.
    """
    base = [v for v in variants if v.kind == BASE]
    others = [v for v in variants if v.kind != BASE]
    m_base = len(base[0].seeds) if base else max((len(v.seeds) for v in variants), default=1)
    m_variant = min((len(v.seeds) for v in others), default=m_base)
    pilot = pilot or {}
    rows = [
        pw.plan_set(
            name, s.units, s.kind, spec.power, spec.min_effect, m_base, m_variant, pilot.get(name), s.items
        )
        for name, s in sets.items()
    ]
    rows += [
        pw.plan_set(name, est.n_units, "", spec.power, spec.min_effect, m_base, m_variant, est)
        for name, est in pilot.items()
        if name not in sets
    ]
    return rows


def _pts(value: float) -> str:
    return "not reachable" if math.isinf(value) else f"{SCALE * value:.2f}"


def format_power(rows: Sequence[pw.SetPower]) -> str:
    """A Markdown table of :func:`power_rows`, effects in points."""
    if not rows:
        return "(no evaluation sets)\n"
    effect = _pts(rows[0].effect)
    lines = [
        f"power of Δ vs base per eval set (paired t test, two-sided alpha {st.ALPHA}; effects in points; "
        f"planned effect min_effect = {effect}):",
        "",
        f"| eval set | n units | seeds (base/variant) | score | σ_d per unit | seed sd | detectable (80%) "
        f"| power at {effect} | seeds for 80% | from |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r.eval_set} | {r.n_units:,} | {r.m_base}/{r.m_variant} | {SCALE * r.score:.1f} "
            f"| {SCALE * math.sqrt(r.paired_var):.1f} | {SCALE * r.seed_sd:.2f} | {_pts(r.detectable)} "
            f"| {r.power:.0%} | {r.seeds_needed if r.seeds_needed is not None else f'> {pw.MAX_SEEDS}'} "
            f"| {r.origin} |"
        )
    return "\n".join(lines) + "\n"


def power_warnings(rows: Sequence[pw.SetPower]) -> list[str]:
    """A warning when an arm has fewer than 3 seeds, and one per set that cannot detect the planned effect."""
    out: list[str] = []
    if rows and min(rows[0].m_base, rows[0].m_variant) < 3:
        m = min(rows[0].m_base, rows[0].m_variant)
        what = (
            "one seed per arm measures only these trained models (do they differ on this population?), not the "
            "data recipe: seed variance is not measured"
            if m < 2
            else f"{m} seeds estimate the seed variance with {m - 1} degree(s) of freedom per arm, so the t "
            "test has little power"
        )
        out.append(f"seeds: {m} per arm; {what}: list at least 3 seeds (seeds: [1, 2, 3])")
    for r in rows:
        if r.detectable > r.effect:
            need = (
                f"{r.seeds_needed} seeds per arm reach 80% power"
                if r.seeds_needed is not None
                else "no seed count reaches 80% power: use a larger eval set, or expect to see only larger effects"
            )
            out.append(
                f"{r.eval_set}: n={r.n_units} units with {r.m_base}/{r.m_variant} seeds detects differences of "
                f"{_pts(r.detectable)} points or more (80% power, alpha {st.ALPHA}), above the planned "
                f"{_pts(r.effect)} (power {r.power:.0%}); {need}"
            )
    return out


def estimate_from_cells(cells: Sequence[CellResult], n_boot: int = 1000) -> dict[str, pw.SetEstimate]:
    """What an earlier sweep's done cells measure per eval set (:func:`biotune.sweep.power.estimate_set`).

    Reads the base's report and the per-example predictions files of every done cell (as ``collect`` does);
    sets the base has no predictions for are left out.
    """
    done = [c for c in cells if c.state == CellState.DONE and c.eval_dir is not None]
    base = [c for c in done if c.is_base]
    if not base:
        return {}
    out: dict[str, pw.SetEstimate] = {}
    report = report_path(base[0].eval_dir)  # type: ignore[arg-type]
    for i, row in enumerate(read_report(report).get("rows", [])):
        source, split, red = row.get("source"), row.get("split"), row.get("reducer")
        if not source or not split or red is None:
            continue
        if red not in REDUCERS:
            raise DataError(
                report,
                f"report row {i} ({source}/{split}) has unknown reducer {red!r}",
                f"re-run `biotune eval` for cell {base[0].name!r} with this biotune version, or drop --pilot",
            )
        name = set_label(source, split)
        arms: dict[str, list[st.ExampleStats]] = {}
        for c in done:
            path = predictions_path(c.eval_dir, source, split)  # type: ignore[arg-type]
            if path.is_file():
                arms.setdefault("" if c.is_base else c.variant, []).append(load_example_stats(path, red))
        if arms.get(""):
            base_arm = arms.pop("")
            out[name] = pw.estimate_set(name, base_arm, arms, n_boot=n_boot)
    return out


def read_pilot(sweep_dir: str | Path) -> dict[str, pw.SetEstimate]:
    """:func:`estimate_from_cells` of the sweep in ``sweep_dir`` (``sweep plan --pilot``).

    Raises:
        DataError: when the directory holds no sweep, or no done base cell with predictions.
    """
    sweep = runner.from_dir(sweep_dir)
    found = estimate_from_cells(runner.cell_results(sweep))
    if not found:
        raise DataError(
            Path(sweep_dir) / runner.SWEEP_FILE,
            "no done base cell with per-example predictions",
            "run the earlier sweep's base (`biotune sweep run ... --local`) or drop --pilot",
        )
    return found


def eval_set_units(spec: SweepSpec) -> dict[str, EvalSetSize]:
    """Examples, resampling units and task kind per evaluation set (``source/split``, the split in the source's
    own spelling) that every cell evaluates on: the base's plan (:func:`biotune.eval.sets.plan_sets`), read
    from its corpora. Sets whose file is not on disk yet are left out; ``eval.max_examples`` keeps each set's
    first records, as the evaluation does.
    """
    base = spec.load_base()
    root = resolve_root(base.data.root)
    known = catalog(base.data)
    out: dict[str, EvalSetSize] = {}
    for ref in plan_sets(base, known):
        source = known[ref.source]
        if ref.split not in available_splits(source, root):
            continue
        records = list(load_records(source, ref.split, root))
        if base.eval.max_examples:
            records = records[: base.eval.max_examples]
        task = task_for(source, base.data.ner_format)
        units = len({task.unit(r) for r in records})
        items = sum(
            pw.scored_items(task.reducer, task.example_stats(task.reference(r), task.reference(r)))
            for r in records
        )
        out[ref.label] = EvalSetSize(len(records), units, source.kind, items)
    return out


def eval_set_sizes(spec: SweepSpec) -> dict[str, int]:
    """Examples per evaluation set (``source/split``) the base evaluates on (:func:`eval_set_units`)."""
    return {name: s.examples for name, s in eval_set_units(spec).items()}


def cell_estimator(
    sweep: runner.Sweep, tokens_per_sample: Mapping[str, float], gpus: int
) -> Estimator | None:
    """GPU-hours and disk of each variant's cells, from ``biotune plan``'s throughput estimate and the disk a
    cell keeps (``biotune.plan.kept_bytes``); None when the base model's size is unknown."""
    base = sweep.spec.load_base()
    try:
        plan = make_plan(base, nodes=1, gpus_per_node=gpus)
    except ConfigError:
        return None
    keep = kept_bytes(plan.dims.total_params(), sweep.spec.keep)
    epochs = base.train.epochs if base.train.max_steps <= 0 else None

    def estimate(variant: Variant) -> dict[str, float]:
        tokens = sum(n * tokens_per_sample.get(s, 0.0) for s, n in variant.counts.items())
        seen = tokens * (epochs or 1.0)
        hours = seen / max(plan.tokens_per_second_per_gpu * gpus, 1e-9) / 3600 * gpus
        return {
            "gpu_hours": round(hours * len(variant.seeds), 2),
            "disk_gb": round(keep * len(variant.seeds) / 1e9, 1),
        }

    return estimate


# --------------------------------------------------------------------------------------------- fidelities


@dataclass(frozen=True)
class FidelityCost:
    """What one fidelity of a sweep is estimated to cost (``biotune plan``'s throughput at its settings)."""

    fidelity: str
    cells: int
    """Cells it runs: (the base + its variants) x seeds; anchors chosen from results count as ``Anchors.n``."""
    gpu_hours_per_cell: float | None
    """Mean over its cells; None when the model's size is unknown to ``biotune plan``."""
    gpu_hours: float | None
    anchors: bool = False
    """Its variants are chosen from results: the cost assumes a variant of average cost per anchor."""


def fidelity_config(spec: SweepSpec, fidelity: Fidelity) -> RunConfig:
    """The base run config at one fidelity: the sweep's overrides, then the fidelity's (ConfigError when bad)."""
    return dataclasses.replace(spec, overrides=[*spec.overrides, *fidelity.overrides]).load_base()


def tokens_trained(cfg: RunConfig, tokens: float, plan: Plan) -> float:
    """Training tokens a cell of ``tokens`` data tokens processes under ``cfg``: ``train.epochs`` passes, or,
    with ``train.max_steps``, that many steps of full packed rows (an upper bound: rows are packed near full)."""
    if cfg.train.max_steps > 0:
        rows = plan.micro_batch_size * plan.nodes * plan.gpus_per_node * plan.grad_accum
        return float(cfg.train.max_steps * rows * plan.seq_len)
    return tokens * cfg.train.epochs


def _cell_hours(
    spec: SweepSpec, fidelity: Fidelity, tokens_per_sample: Mapping[str, float], gpus: int
) -> Callable[[Variant], float] | None:
    """GPU-hours of one cell of a variant at ``fidelity``; None when the model's size is unknown."""
    cfg = fidelity_config(spec, fidelity)
    try:
        plan = make_plan(cfg, nodes=1, gpus_per_node=gpus)
    except ConfigError:
        return None

    def hours(variant: Variant) -> float:
        tokens = sum(n * tokens_per_sample.get(s, 0.0) for s, n in variant.counts.items())
        seconds = tokens_trained(cfg, tokens, plan) / max(plan.tokens_per_second_per_gpu * gpus, 1e-9)
        return seconds / 3600 * gpus

    return hours


def _runs(fidelity: Fidelity, variants: Sequence[Variant]) -> tuple[list[Variant], int]:
    """The variants a fidelity runs for sure (the base always) and how many more anchors it will choose."""
    if isinstance(fidelity.variants, Anchors):
        return [v for v in variants if v.kind == BASE], fidelity.variants.n
    if fidelity.variants == ALL:
        return list(variants), 0
    named = set(fidelity.variants)
    return [v for v in variants if v.kind == BASE or v.name in named], 0


def fidelity_costs(
    spec: SweepSpec, variants: Sequence[Variant], tokens_per_sample: Mapping[str, float], gpus: int
) -> tuple[list[FidelityCost], float | None]:
    """Per fidelity (in the sweep file's order) its estimated GPU-hours, and the cost of running every variant
    at the target instead (None when the target's model size is unknown)."""
    out: list[FidelityCost] = []
    everything: float | None = None
    others = [v for v in variants if v.kind != BASE]
    for name, fidelity in spec.fidelities.items():
        hours = _cell_hours(spec, fidelity, tokens_per_sample, gpus)
        sure, anchors = _runs(fidelity, variants)
        seeds = max((len(v.seeds) for v in variants), default=1)
        cells = sum(len(v.seeds) for v in sure) + anchors * seeds
        total = None
        if hours is not None:
            mean_other = sum(hours(v) for v in others) / len(others) if others else 0.0
            total = sum(hours(v) * len(v.seeds) for v in sure) + anchors * seeds * mean_other
            if fidelity.is_target:
                everything = round(sum(hours(v) * len(v.seeds) for v in variants), 2)
        out.append(
            FidelityCost(
                name,
                cells,
                None if total is None or not cells else round(total / cells, 3),
                None if total is None else round(total, 2),
                anchors > 0,
            )
        )
    return out, everything


def format_fidelity_costs(costs: Sequence[FidelityCost], everything: float | None) -> str:
    """The ``sweep plan`` table of the fidelities' estimated cost, the design's total and, beside it, every
    variant at the target."""

    def h(value: float | None) -> str:
        return "unknown" if value is None else f"{value:,.2f}"

    lines = [
        "| fidelity | cells | GPU-h per cell | GPU-h |",
        "|---|---|---|---|",
        *(
            f"| {c.fidelity} | {c.cells}{' (anchors)' if c.anchors else ''} | {h(c.gpu_hours_per_cell)} "
            f"| {h(c.gpu_hours)} |"
            for c in costs
        ),
    ]
    known = [c.gpu_hours for c in costs]
    total = None if any(v is None for v in known) else round(sum(v or 0.0 for v in known), 2)
    lines.append(f"| **this design** | {sum(c.cells for c in costs)} |  | **{h(total)}** |")
    lines.append(f"| every variant at {TARGET} |  |  | {h(everything)} |")
    note = (
        "GPU-hours from `biotune plan`'s throughput estimate at each fidelity's settings; anchors chosen from "
        "results are costed as variants of average cost."
    )
    if total is not None and everything:
        note += f" This design costs {total / everything:.1%} of running every variant at {TARGET}."
    return "\n".join(lines) + "\n\n" + note + "\n"

"""What a sweep will train on, before anything runs: per-variant samples and tokens, and detectable effects.

:func:`plan_rows` gives one tidy row per variant (realised samples, tokens and passes per source, samples and
tokens per group; cost columns from a caller-supplied estimator); :func:`format_plan` renders them as
Markdown.

:func:`minimum_detectable_effect` answers "can these test sets show the difference I am looking for?". Two
models scored on the same n test examples are compared by McNemar's test on the examples where they disagree.
With the discordance rate psi (share of examples exactly one model gets right) and the true difference d, the
normal approximation of Connor (1987) needs

    n = (z_{1-alpha/2} * sqrt(psi) + z_{power} * sqrt(psi - d^2))^2 / d^2

examples; the helper solves it for d by bisection. Unless given, psi is 2 p (1 - p) for a baseline score p,
the rate when the two models err independently: fine-tuned variants of one base agree more often than that,
so the default overstates the detectable effect (it errs on the side of warning). A score that is not a mean
of per-example 0/1 outcomes (entity F1) is treated as one: a guide, not a guarantee.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from statistics import NormalDist
from typing import Any

from biotune.data.sources import available_splits, catalog, load_records, resolve_root
from biotune.eval.sets import plan_sets
from biotune.sweep.spec import SweepSpec, format_value
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


def minimum_detectable_effect(
    n: int, p: float, alpha: float = 0.05, power: float = 0.8, discordance: float | None = None
) -> float:
    """Smallest true score difference a paired test on ``n`` examples detects (module docstring).

    Args:
        n: test examples (both models scored on the same ones).
        p: baseline score as a proportion (accuracy, F1).
        alpha: two-sided significance level.
        power: probability of detecting a difference of the returned size.
        discordance: share of examples on which the two models disagree; default ``2 p (1 - p)``.

    Returns:
        The difference d in (0, sqrt(psi)], or ``math.inf`` when even d = sqrt(psi) is not detectable.
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p must be a proportion in [0, 1], got {p}")
    psi = 2 * p * (1 - p) if discordance is None else discordance
    if n <= 0 or psi <= 0:
        return math.inf
    za = NormalDist().inv_cdf(1 - alpha / 2)
    zb = NormalDist().inv_cdf(power)

    def needed(d: float) -> float:
        return (za * math.sqrt(psi) + zb * math.sqrt(max(psi - d * d, 0.0))) ** 2 / (d * d)

    hi = math.sqrt(psi)
    if needed(hi) > n:
        return math.inf
    lo = 1e-9
    for _ in range(100):  # needed() falls as d grows: find the smallest d with needed(d) <= n
        mid = (lo + hi) / 2
        if needed(mid) <= n:
            hi = mid
        else:
            lo = mid
    return hi


def mde_warnings(
    test_sizes: Mapping[str, int],
    effect: float,
    baseline: float | Mapping[str, float] = 0.5,
    alpha: float = 0.05,
    power: float = 0.8,
) -> list[str]:
    """One warning per eval set whose size cannot detect a difference of ``effect`` (``spec.min_effect``).

    Args:
        test_sizes: eval set name -> number of test examples.
        effect: the planned difference, as a proportion.
        baseline: the expected base score, one for all sets or per set (missing sets: 0.5, the worst case).
    """
    out: list[str] = []
    for name, n in test_sizes.items():
        p = baseline if isinstance(baseline, int | float) else baseline.get(name, 0.5)
        mde = minimum_detectable_effect(n, float(p), alpha, power)
        if mde > effect:
            shown = "not reachable" if math.isinf(mde) else f"{mde:.3g}"
            out.append(
                f"{name}: n={n} at a base score of {p:.2f} detects differences of {shown} or more "
                f"(alpha {alpha}, power {power}), above the planned {effect:.3g}: use a larger test set, "
                "or expect to see only larger effects"
            )
    return out


def eval_set_sizes(spec: SweepSpec) -> dict[str, int]:
    """Examples per evaluation set (``source/split``, the split in the source's own spelling) that every cell
    evaluates on: the base's plan (:func:`biotune.eval.sets.plan_sets`), read from its corpora. Sets whose file
    is not on disk yet are left out; ``eval.max_examples`` caps each set.
    """
    base = spec.load_base()
    root = resolve_root(base.data.root)
    known = catalog(base.data)
    out: dict[str, int] = {}
    for ref in plan_sets(base, known):
        if ref.split not in available_splits(known[ref.source], root):
            continue
        n = len(load_records(known[ref.source], ref.split, root))
        out[ref.label] = min(n, base.eval.max_examples) if base.eval.max_examples else n
    return out

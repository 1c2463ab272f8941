"""Writers of the level agreement (:mod:`biotune.sweep.agreement`): ``agreement.csv``, a ``results.md`` section
and scatter plots. They only lay out what :func:`~biotune.sweep.agreement.compare_levels` computed.

* ``agreement.csv`` (:func:`write_csv`): tidy long format, one row per (proxy, target, eval set or macro,
  statistic[, variant]) with ``estimate, ci_low, ci_high`` and the sizes behind it (``n_variants``,
  ``n_pairs``, ``n_separated``, ``n_units``, ``min_seeds_proxy``, ``min_seeds_target``) and the verdict.
  Statistics: ``spearman``, ``kendall``, ``pairwise_sign`` (over the separated pairs), ``top_agrees``
  (1/0, no interval), ``top_agree_share`` (share of resamples, no interval), ``regret``, and per variant
  ``proxy_delta`` / ``target_delta``. Δs and regret are scaled by ``scale`` (``collect`` passes its percent
  scale); the coefficients and shares are unitless.
* :func:`to_markdown`: the section for ``results.md``: the rule, then per proxy one table row per set and
  macro, the variants run at one level only, and the sets without an agreement.
* :func:`plot` (``agreement_<proxy>_vs_<target>.png``): proxy Δ (x) against target Δ (y), with 95% CI bars in
  both directions, one panel per set and per macro, titled with ρ [CI] and the verdict.

Every file is written atomically (``biotune.io``); matplotlib is imported only when a plot is drawn.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from biotune.io import atomic_path, atomic_write_text
from biotune.sweep.agreement import RHO_AGREES, RHO_FLOOR, Interval, LevelAgreement, SetAgreement

AGREEMENT_CSV = "agreement.csv"
CSV_COLUMNS: tuple[str, ...] = (
    "proxy",
    "target",
    "eval_set",
    "family",
    "statistic",
    "variant",
    "estimate",
    "ci_low",
    "ci_high",
    "n_variants",
    "n_pairs",
    "n_separated",
    "n_units",
    "min_seeds_proxy",
    "min_seeds_target",
    "verdict",
)
DPI = 150

RULE = (
    f"Verdict from Spearman ρ of the variants' Δs (each vs the base at its own level): **agrees** when "
    f"ρ ≥ {RHO_AGREES} and its 95% CI's lower bound ≥ {RHO_FLOOR}; **disagrees** when the upper bound < "
    f"{RHO_FLOOR}; else **uncertain** (also when the target separates no pair). Pairwise agreement counts the "
    "pairs the target separates (95% CI of the target difference excludes 0). CIs: paired bootstrap, the same "
    "unit draws at both levels, training seeds redrawn per resample."
)


def plot_name(agreement: LevelAgreement) -> str:
    """The scatter plot's file name for one proxy-vs-target comparison."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{agreement.proxy}_vs_{agreement.target}").strip("_")
    return f"agreement_{slug}.png"


def _num(value: float) -> float | str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else value


def _rows_of(a: LevelAgreement, s: SetAgreement, scale: float) -> Iterator[dict[str, Any]]:
    common = {
        "proxy": a.proxy,
        "target": a.target,
        "eval_set": s.eval_set,
        "family": s.family,
        "n_variants": s.n_variants,
        "n_pairs": s.n_pairs,
        "n_separated": len(s.separated),
        "n_units": s.n_units,
        "min_seeds_proxy": s.min_seeds[0],
        "min_seeds_target": s.min_seeds[1],
        "verdict": s.verdict.value,
    }

    def row(statistic: str, value: Interval | float, variant: str = "") -> dict[str, Any]:
        iv = value if isinstance(value, Interval) else Interval(float(value), float("nan"), float("nan"))
        return {
            **common,
            "statistic": statistic,
            "variant": variant,
            "estimate": _num(iv.estimate),
            "ci_low": _num(iv.ci_low),
            "ci_high": _num(iv.ci_high),
        }

    yield row("spearman", s.spearman)
    yield row("kendall", s.kendall)
    yield row("pairwise_sign", s.pairwise)
    yield row("top_agrees", float(s.top_agrees), s.top_proxy)
    yield row("top_agree_share", s.top_agree_share, s.top_proxy)
    yield row("regret", s.regret.scaled(scale), s.top_proxy)
    for v, p, t in zip(s.variants, s.proxy_delta, s.target_delta, strict=True):
        yield row("proxy_delta", p.scaled(scale), v)
        yield row("target_delta", t.scaled(scale), v)


def to_rows(agreements: Sequence[LevelAgreement], *, scale: float) -> list[dict[str, Any]]:
    """The tidy rows of ``agreement.csv`` (columns ``CSV_COLUMNS``); Δs and regret multiplied by ``scale``."""
    return [r for a in agreements for s in a.sets for r in _rows_of(a, s, scale)]


def to_csv(agreements: Sequence[LevelAgreement], *, scale: float) -> str:
    """``agreement.csv``'s text."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(CSV_COLUMNS), lineterminator="\n")
    writer.writeheader()
    writer.writerows(to_rows(agreements, scale=scale))
    return buf.getvalue()


def write_csv(agreements: Sequence[LevelAgreement], out_dir: Path, *, scale: float) -> Path:
    """Write ``out_dir/agreement.csv`` atomically; returns its path."""
    path = Path(out_dir) / AGREEMENT_CSV
    atomic_write_text(path, to_csv(agreements, scale=scale))
    return path


def _iv(iv: Interval, fmt: str = "{:.2f}") -> str:
    if not math.isfinite(iv.estimate):
        return "–"
    return f"{fmt.format(iv.estimate)} [{fmt.format(iv.ci_low)}, {fmt.format(iv.ci_high)}]"


def to_markdown(
    agreements: Sequence[LevelAgreement],
    *,
    scale: float,
    unit: str = "points",
    title: str = "Proxy-to-target agreement",
) -> str:
    """The ``results.md`` section: one table per proxy-vs-target comparison, with the rule stated once.

    ``title`` is the section heading (e.g. "Checkpoint-to-final agreement" for checkpoint levels).
    """
    lines = [f"## {title}", "", RULE, ""]
    for a in agreements:
        lines += [
            f"### {a.proxy} vs {a.target} (Δ vs {a.base} at each level; B = {a.n_boot})",
            "",
            "| set | variants | separated pairs | Spearman ρ [95% CI] | Kendall τ [95% CI] | pairwise sign "
            f"[95% CI] | top: {a.proxy} → {a.target} (share) | regret, {unit} [95% CI] | seeds | verdict |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for s in a.sets:
            top = (
                f"{s.top_proxy} → {s.top_target} ({'yes' if s.top_agrees else 'no'}, {s.top_agree_share:.2f})"
            )
            lines.append(
                f"| {s.eval_set} | {s.n_variants} | {len(s.separated)} / {s.n_pairs} | {_iv(s.spearman)} "
                f"| {_iv(s.kendall)} | {_iv(s.pairwise)} | {top} | {_iv(s.regret.scaled(scale), '{:+.2f}')} "
                f"| {s.min_seeds[0]} / {s.min_seeds[1]} | **{s.verdict.value}** |"
            )
        lines.append("")
        if any(1 in s.min_seeds for s in a.sets):
            lines.append(
                "Some arms have a single training seed: those intervals are conditional on the trained models "
                "(seeds (proxy / target) is the fewest of any arm)."
            )
        for level, lone in ((a.proxy, a.proxy_only), (a.target, a.target_only)):
            if lone:
                lines.append(f"Run at {level} only, not compared: {', '.join(lone)}.")
        for name, why in a.skipped.items():
            lines.append(f"No agreement on {name}: {why}.")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def plot(agreement: LevelAgreement, out_dir: Path, *, scale: float, unit: str = "points") -> Path | None:
    """Scatter of proxy Δ against target Δ with 95% CI bars, a panel per set and macro; returns the PNG path.

    None, and no file, when no set has an agreement (``agreement.skipped`` says why).
    """
    panels = list(agreement.sets)
    if not panels:
        return None
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    cols = min(3, len(panels))
    rows = math.ceil(len(panels) / cols)
    fig = Figure(figsize=(4.6 * cols, 4.2 * rows), layout="constrained")
    FigureCanvasAgg(fig)
    for k, s in enumerate(panels):
        ax = fig.add_subplot(rows, cols, k + 1)
        x = [scale * d.estimate for d in s.proxy_delta]
        y = [scale * d.estimate for d in s.target_delta]
        xerr = [
            [xi - scale * d.ci_low for xi, d in zip(x, s.proxy_delta, strict=True)],
            [scale * d.ci_high - xi for xi, d in zip(x, s.proxy_delta, strict=True)],
        ]
        yerr = [
            [yi - scale * d.ci_low for yi, d in zip(y, s.target_delta, strict=True)],
            [scale * d.ci_high - yi for yi, d in zip(y, s.target_delta, strict=True)],
        ]
        ax.axhline(0.0, color="#999999", linewidth=0.8)
        ax.axvline(0.0, color="#999999", linewidth=0.8)
        ax.errorbar(x, y, xerr=xerr, yerr=yerr, fmt="o", color="C0", ecolor="#7fa7cf", capsize=2)
        for v, xi, yi in zip(s.variants, x, y, strict=True):
            ax.annotate(v, (xi, yi), textcoords="offset points", xytext=(4, 4), fontsize=7)
        ax.set_title(f"{s.eval_set}: ρ {_iv(s.spearman)}\n{s.verdict.value}, n = {s.n_variants}", fontsize=9)
        ax.set_xlabel(f"Δ at {agreement.proxy} ({unit})")
        ax.set_ylabel(f"Δ at {agreement.target} ({unit})")
    fig.suptitle(f"{agreement.proxy} vs {agreement.target}: Δ vs {agreement.base}, 95% CI bars", fontsize=11)
    path = Path(out_dir) / plot_name(agreement)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=DPI, format="png")
    return path

"""Sweep figures, drawn from ``collect``'s results (never computing a statistic of their own).

* ``delta_heatmap_<axis>.png``: Δ vs base per variant of a categorical axis (rows: the left-out source or
  group, or the named mixture) x eval set; Δ printed in every cell; cells whose corrected p is not below
  ``ALPHA`` are greyed and hatched.
* ``interaction_<axis>.png``: the same rows x task family (macro-average per family and split): the
  source x task interaction matrix.
* ``scaling_<axis>.png``: for a factor axis (numeric values), Δ vs base against the factor with its 95% CI
  band, one panel per eval set; filled markers are significant after correction.

Matplotlib's object API with the Agg canvas (no pyplot, no global backend switch); 150 dpi PNGs written
atomically.
"""

from __future__ import annotations

import logging
import math
import re
import textwrap
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.ticker import FixedLocator, FuncFormatter, MaxNLocator, NullLocator

from biotune.io import replace_atomic
from biotune.sources.splits import display_order, parse_set_label
from biotune.sweep import stats as st
from biotune.sweep.collect_steps import LEARNING_CURVES_CSV, Curve
from biotune.sweep.results import SCALE, ResultRow, Results

log = logging.getLogger(__name__)

DPI = 150
CMAP = "RdBu"
_NAN_COLOUR = "#eeeeee"


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "axis"


def _save(fig: Figure, path: Path) -> Path:
    FigureCanvasAgg(fig)
    replace_atomic(path, lambda tmp: fig.savefig(tmp, dpi=DPI, format="png"))
    return path


def heatmap(
    values: np.ndarray,
    significant: np.ndarray,
    row_labels: Sequence[str],
    col_labels: Sequence[str],
    path: Path,
    *,
    title: str,
    xlabel: str,
    ylabel: str,
    cbar_label: str,
    mask_note: str,
) -> Path:
    """A diverging heatmap centred at 0 with each value printed; non-significant cells greyed and hatched.

    Args:
        values: (rows, cols) values, NaN where there is none ("n/a").
        significant: (rows, cols) bools; False cells are masked (grey, hatched, grey text).
    """
    n_rows, n_cols = values.shape
    finite = values[np.isfinite(values)]
    vmax = float(np.max(np.abs(finite))) if finite.size else 1.0
    vmax = vmax if vmax > 0 else 1.0
    width = min(30.0, 2.8 + 0.85 * n_cols + 0.07 * max(len(s) for s in row_labels))
    height = min(30.0, 2.2 + 0.45 * n_rows + 0.06 * max(len(s) for s in col_labels))
    fig = Figure(figsize=(width, height), layout="constrained")
    ax = fig.add_subplot()
    norm = TwoSlopeNorm(vmin=-vmax, vcenter=0.0, vmax=vmax)
    shown = np.ma.masked_invalid(values)
    image = ax.imshow(
        shown,
        cmap=colormaps[CMAP].with_extremes(bad=_NAN_COLOUR),
        norm=norm,
        aspect="auto",
        interpolation="nearest",
    )
    _annotate(ax, values, significant, norm)
    ax.set_xticks(range(n_cols), labels=list(col_labels), rotation=40, ha="right", rotation_mode="anchor")
    ax.set_yticks(range(n_rows), labels=list(row_labels))
    ax.set_xticks(np.arange(-0.5, n_cols, 1), minor=True)
    ax.set_yticks(np.arange(-0.5, n_rows, 1), minor=True)
    ax.grid(which="minor", color="white", linewidth=1.5)
    ax.tick_params(which="minor", length=0)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    fig.suptitle(title, fontsize=12)
    ax.set_title(textwrap.fill(mask_note, width=max(40, int(width * 11))), fontsize=7.5, color="#444444")
    bar = fig.colorbar(image, ax=ax, shrink=0.9, pad=0.02, fraction=0.05, aspect=30)
    bar.set_label(cbar_label)
    bar.locator = MaxNLocator(nbins=7, symmetric=True)
    bar.update_ticks()
    return _save(fig, path)


def _annotate(ax: Axes, values: np.ndarray, significant: np.ndarray, norm: TwoSlopeNorm) -> None:
    """Print each value in its cell; grey out and hatch the non-significant ones; "n/a" where none."""
    for (i, j), value in np.ndenumerate(values):
        if not np.isfinite(value):
            ax.text(j, i, "n/a", ha="center", va="center", fontsize=8, color="#888888")
        elif not significant[i, j]:
            mask = Rectangle(
                (j - 0.5, i - 0.5),
                1,
                1,
                facecolor="white",
                alpha=0.6,
                hatch="///",
                edgecolor="#999999",
                linewidth=0,
            )
            ax.add_patch(mask)
            ax.text(j, i, f"{value:+.1f}", ha="center", va="center", fontsize=8, color="#555555")
        else:
            dark = abs(norm(value) - 0.5) > 0.3
            ax.text(
                j,
                i,
                f"{value:+.1f}",
                ha="center",
                va="center",
                fontsize=8,
                fontweight="bold",
                color="white" if dark else "black",
            )


def _categorical_axes(rows: Sequence[ResultRow]) -> dict[str, list[str]]:
    """Axis -> its variants in order, for axes with string values (leave-outs, named mixtures)."""
    out: dict[str, list[str]] = {}
    for r in rows:
        if not r.is_base and r.control_for is None and isinstance(r.axis_value, str) and r.eval_set:
            variants = out.setdefault(r.axis, [])
            if r.variant not in variants:
                variants.append(r.variant)
    return out


def _numeric_axes(rows: Sequence[ResultRow]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for r in rows:
        value = r.axis_value
        if (
            not r.is_base
            and r.control_for is None
            and isinstance(value, int | float)
            and not isinstance(value, bool)
            and r.eval_set
        ):
            variants = out.setdefault(r.axis, [])
            if r.variant not in variants:
                variants.append(r.variant)
    return out


def _matrix(
    rows: Sequence[ResultRow], variants: Sequence[str]
) -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    """(variants x eval sets) Δ and significance; columns ordered by split role (dev first) then name."""
    cols = sorted(
        {r.eval_set for r in rows if r.variant in variants and r.eval_set},
        key=lambda s: (*display_order(_split_of(s)), s),
    )
    index = {c: j for j, c in enumerate(cols)}
    values = np.full((len(variants), len(cols)), np.nan)
    sig = np.zeros_like(values, dtype=bool)
    labels = []
    for i, v in enumerate(variants):
        for r in rows:
            if r.variant == v and r.eval_set in index and r.delta is not None:
                values[i, index[r.eval_set]] = r.delta
                sig[i, index[r.eval_set]] = r.significant
        value = next(r.axis_value for r in rows if r.variant == v)
        labels.append(str(value))
    return values, sig, labels, [c.removeprefix("macro:") for c in cols]


def _split_of(eval_set: str) -> str:
    return parse_set_label(eval_set)[1]


def conditional_caption(rows: Sequence[ResultRow], variants: Sequence[str]) -> str:
    """The single-seed label for a caption, when any shown Δ compares two single-seed models."""
    if not any(r.conditional for r in rows if r.variant in variants and r.delta is not None):
        return ""
    return f" One seed per arm: {st.CONDITIONAL_LABEL} (these trained models, not the recipes)."


def draw_all(results: Results, out_dir: Path, prefix: str = "") -> dict[str, Path]:
    """Every figure the results support; returns name -> PNG path. ``prefix`` starts every file name (a
    fidelity's, in a sweep with fidelities)."""
    out: dict[str, Path] = {}
    label = {"holm": "Holm", "bh": "Benjamini–Hochberg"}[results.correction]
    boot = (
        f"95% CI from a paired bootstrap ({results.n_boot} resamples), with seed variance and Student t "
        "where an arm has several seeds"
    )
    note = (
        f"Δ = variant − base in points. Hatched grey: not significant ({label}-corrected p ≥ {st.ALPHA}); "
        f"{boot}."
    )
    curve_note = f"Δ = variant − base in points; hollow markers: {label}-corrected p ≥ {st.ALPHA}; {boot}."
    if results.base is None:
        return out
    for axis, variants in _categorical_axes(results.rows).items():
        views = (
            (
                results.rows,
                "delta_heatmap",
                f"Effect of {axis} on each eval set (vs {results.base})",
                "eval set",
                "Δ vs base (points)",
            ),
            (
                results.macro_rows,
                "interaction",
                f"{axis} × task family (macro-average Δ vs {results.base})",
                "task family / split",
                "macro-average Δ vs base (points)",
            ),
        )
        for rows, view, title, xlabel, cbar_label in views:
            values, sig, row_labels, col_labels = _matrix(rows, variants)
            if not np.isfinite(values).any():
                continue
            name = f"{prefix}{view}_{_slug(axis)}"
            out[name] = heatmap(
                values,
                sig,
                row_labels,
                col_labels,
                out_dir / f"{name}.png",
                title=title,
                xlabel=xlabel,
                ylabel=axis,
                cbar_label=cbar_label,
                mask_note=note + conditional_caption(rows, variants),
            )
    for axis, variants in _numeric_axes(results.rows).items():
        name = f"{prefix}scaling_{_slug(axis)}"
        path = scaling_curves(
            results.rows,
            axis,
            variants,
            out_dir / f"{name}.png",
            base=results.base,
            note=curve_note + conditional_caption(results.rows, variants),
        )
        if path is not None:
            out[name] = path
    return out


def scaling_curves(
    rows: Sequence[ResultRow], axis: str, variants: Sequence[str], path: Path, *, base: str, note: str
) -> Path | None:
    """Δ vs base against a factor axis with 95% CI bands: one panel per eval set (small multiples)."""
    sets = sorted(
        {r.eval_set for r in rows if r.variant in variants and r.delta is not None},
        key=lambda s: (*display_order(_split_of(s)), s),
    )
    if not sets:
        return None
    factors = sorted({float(r.axis_value) for r in rows if r.variant in variants})  # type: ignore[arg-type]
    log_x = factors[0] > 0 and factors[-1] / factors[0] >= 4
    n_cols = min(4, len(sets))
    n_rows = math.ceil(len(sets) / n_cols)
    fig = Figure(figsize=(3.2 * n_cols + 0.6, 2.6 * n_rows + 0.9), layout="constrained")
    axes = fig.subplots(n_rows, n_cols, squeeze=False, sharex=True)
    for k, eval_set in enumerate(sets):
        ax = axes[k // n_cols][k % n_cols]
        pts = sorted(
            (
                (float(r.axis_value), r)
                for r in rows  # type: ignore[arg-type]
                if r.variant in variants and r.eval_set == eval_set and r.delta is not None
            ),
            key=lambda t: t[0],
        )
        x = np.array([p for p, _ in pts])
        y = np.array([r.delta for _, r in pts], dtype=float)
        lo = np.array([r.ci_low for _, r in pts], dtype=float)
        hi = np.array([r.ci_high for _, r in pts], dtype=float)
        sig = np.array([r.significant for _, r in pts])
        ax.axhline(0.0, color="#444444", linestyle="--", linewidth=0.8, label=f"base ({base})")
        ax.fill_between(x, lo, hi, color="C0", alpha=0.2, linewidth=0, label="95% CI")
        ax.plot(x, y, color="C0", linewidth=1.5)
        ax.scatter(x[sig], y[sig], color="C0", zorder=3, s=22, label="significant")
        ax.scatter(
            x[~sig], y[~sig], facecolor="white", edgecolor="C0", zorder=3, s=22, label="not significant"
        )
        ax.set_title(eval_set, fontsize=9)
        if log_x:
            ax.set_xscale("log")
        ax.xaxis.set_major_locator(FixedLocator(factors))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
    for k in range(len(sets), n_rows * n_cols):
        axes[k // n_cols][k % n_cols].set_visible(False)
    for k in range(len(sets)):
        if k + n_cols >= len(sets):  # lowest visible panel of its column
            ax = axes[k // n_cols][k % n_cols]
            ax.xaxis.set_tick_params(labelbottom=True)
            ax.set_xlabel(f"{axis} (factor)", fontsize=9)
    fig.supylabel("Δ vs base (points)")
    fig.suptitle(f"Scaling {axis}: change vs base with 95% CI", fontsize=12)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(
        handles,
        labels,
        loc="outside lower center",
        ncols=len(labels),
        fontsize=8,
        frameon=False,
        title=note,
        title_fontsize=7.5,
    )
    return _save(fig, path)


def learning_curve_name(eval_set: str) -> str:
    """The learning-curve picture's file name for one eval set: ``learning_curve_<set>.png``."""
    return f"learning_curve_{_slug(eval_set)}.png"


#: Characters per line of the learning curve's legend title (the band's note): unwrapped, the one-seed note
#: made the legend wider than the axes and squeezed them to a sliver.
LEGEND_NOTE_WIDTH = 44


def learning_curve(eval_set: str, curves: Sequence[Curve], out_dir: Path) -> Path | None:
    """Score (percent) against ``train/tokens`` on one eval set: one line per variant with its 95% band (mean
    ± t-based CI over the seeds, or the bootstrap over the examples with one seed, marked †)."""
    if not curves:
        return None
    return _save(learning_curve_figure(eval_set, curves), out_dir / learning_curve_name(eval_set))


def learning_curve_figure(eval_set: str, curves: Sequence[Curve]) -> Figure:
    """The figure :func:`learning_curve` saves (``curves`` not empty)."""
    fig = Figure(figsize=(8.6, 4.2), layout="constrained")
    ax = fig.subplots()
    one_seed = clipped = False
    for k, c in enumerate(curves):
        x = np.array([p.tokens if math.isfinite(p.tokens) else p.step for p in c.points], dtype=float)
        y = np.array([p.mean for p in c.points], dtype=float)
        lo = np.array([p.ci_low for p in c.points], dtype=float)
        hi = np.array([p.ci_high for p in c.points], dtype=float)
        boot = any(p.band == "bootstrap" for p in c.points)
        one_seed = one_seed or boot
        colour = f"C{k % 10}"
        seeds = min(p.n_seeds for p in c.points)
        # a score lies in [0, SCALE]; a t interval over few seeds need not, and would stretch the axis
        clipped = clipped or bool(np.any(lo < 0.0) or np.any(hi > SCALE))
        ax.fill_between(
            x, np.clip(lo, 0.0, SCALE), np.clip(hi, 0.0, SCALE), color=colour, alpha=0.18, linewidth=0
        )
        ax.plot(
            x,
            y,
            color=colour,
            marker="o",
            markersize=3.5,
            linewidth=1.5,
            label=f"{c.variant} (seeds={seeds}{'†' if boot else ''})",
        )
    no_tokens = any(not math.isfinite(p.tokens) for c in curves for p in c.points)
    ax.set_xlabel("optimizer step" if no_tokens else "train/tokens (mean over seeds)")
    metric = curves[0].metric
    n_units = curves[0].points[-1].n_units
    ax.set_ylabel(f"{metric} (%)")
    ax.grid(alpha=0.3)
    ax.set_title(f"{eval_set}: score during training (n={n_units} units)", fontsize=11)
    note = "band: mean ± t 95% CI over seeds"
    if one_seed:
        note += f"; †one seed: bootstrap 95% CI over examples, {st.CONDITIONAL_LABEL}"
    if clipped:
        note += f"; bands drawn cut at 0 and {SCALE:g} (whole in {LEARNING_CURVES_CSV})"
    title = textwrap.fill(note, width=LEGEND_NOTE_WIDTH)
    fig.legend(loc="outside right upper", fontsize=8, frameon=False, title=title, title_fontsize=7)
    return fig

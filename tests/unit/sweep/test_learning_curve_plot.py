"""The learning-curve picture stays readable: the legend (and its band note) never squeezes the axes."""

from __future__ import annotations

import pytest

from biotune.sweep import plots
from biotune.sweep.collect_steps import Curve, CurvePoint


def _curves(band: str, n_seeds: int) -> list[Curve]:
    """Four variants with the long names a scale axis gives, four evaluated steps each."""
    names = ["base", *(f"scale-chemprot_fine-x{f}" for f in ("0.11", "0.33", "3"))]
    return [
        Curve(
            name,
            "chemprot_fine/dev",
            "micro_f1",
            [
                CurvePoint(
                    s, 1000.0 * s, 10.0 * k + s / 10, 5.0 * k + s / 10, 15.0 * k + s / 10, n_seeds, 400, band
                )
                for s in (75, 150, 225, 300)
            ],
        )
        for k, name in enumerate(names)
    ]


@pytest.mark.parametrize(("band", "n_seeds"), [("bootstrap", 1), ("t", 2)])
def test_the_axes_keep_most_of_the_width(band: str, n_seeds: int) -> None:
    fig = plots.learning_curve_figure("chemprot_fine/dev", _curves(band, n_seeds))
    fig.draw_without_rendering()  # runs the constrained layout, which puts the legend beside the axes
    (ax,) = fig.axes
    box = ax.get_position()
    assert box.width >= 0.5, f"the axes got {box.width:.0%} of the figure's width"
    legend = fig.legends[0].get_window_extent().transformed(fig.transFigure.inverted())
    assert legend.x0 >= box.x1 - 1e-6, "the legend overlaps the axes"
    assert legend.x1 <= 1.0 + 1e-6, "the legend runs off the figure"


def test_a_band_beyond_the_score_range_is_drawn_cut_and_the_note_says_so() -> None:
    """Two seeds that disagree give a t band far outside [0, 100]; the axis stays on the scores."""
    curves = _curves("t", 2)
    wide = curves[0].points[0]
    curves[0].points[0] = CurvePoint(wide.step, wide.tokens, 20.0, -175.0, 215.0, 2, 400, "t")
    fig = plots.learning_curve_figure("chemprot_fine/dev", curves)
    fig.draw_without_rendering()
    low, high = fig.axes[0].get_ylim()
    assert low >= -10.0 and high <= 110.0
    assert "cut at 0 and 100" in fig.legends[0].get_title().get_text().replace("\n", " ")
    assert "cut at" not in plots.learning_curve_figure("chemprot_fine/dev", _curves("t", 2)).legends[
        0
    ].get_title().get_text().replace("\n", " ")

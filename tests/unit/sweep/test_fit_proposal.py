"""The proposal stays where the data is (issue 19, item 4): on a planted concave surface it is no worse than the
best observed run, it keeps the swarm's floor, it falls back to the best run when the fit cannot promise more,
and the swarm axis's fit keys reach the fit.

The swarms are drawn by the tool's own swarm axis (``configs/sweep/swarm.yaml``'s settings) and go through
:func:`biotune.sweep.fit.fit_and_propose` with its defaults: the same call on the old quadratic argmax lands
below the best observed run (``benchmarks/swarm_proposal.py`` measures the full grid).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import yaml

from biotune.sweep import fit, variants
from biotune.sweep.results import CellResult, ResultRow, Results
from biotune.sweep.spec import SwarmAxis, load_sweep
from biotune.testing.sweeps import done_row, write_sweep

REPO = Path(__file__).resolve().parents[3]
SOURCES = [f"src{i}" for i in range(6)]
OPTIMUM = np.array([0.30, 0.22, 0.16, 0.13, 0.11, 0.08])
SET = "src0/dev"
TOTAL = 6000


def concave(w: np.ndarray) -> float:
    """Separable and concave, interior optimum at OPTIMUM; the uniform mixture is 1.8 points below it."""
    uniform = np.full(6, 1 / 6)
    scale = 1.8 / float((OPTIMUM * np.log(OPTIMUM / uniform)).sum())
    return 60.0 + scale * float((OPTIMUM * np.log(w)).sum())


def _cell(name: str, w: np.ndarray, is_base: bool) -> CellResult:
    weights = dict(zip(SOURCES, w.tolist(), strict=True))
    budget = {s: {"samples": TOTAL * x, "tokens": 0.0, "epochs": 1.0} for s, x in weights.items()}
    kind = "base" if is_base else "swarm"
    return CellResult(
        f"{name}-s0", name, 0, kind, None, is_base, None, "done", None, budget, weights, {}, None
    )


def _results(axis: SwarmAxis, surface: Callable[[np.ndarray], float], sd: float, seed: int) -> Results:
    """The uniform base and the axis's swarm, each scored on one dev set: ``surface`` plus noise."""
    rng = np.random.default_rng(seed)
    mixtures = [np.full(6, 1 / 6), *variants.draw_swarm(6, axis)]
    cells = [_cell("base" if i == 0 else f"swarm-{i:03d}", w, i == 0) for i, w in enumerate(mixtures)]
    rows: list[ResultRow] = []
    for c, w in zip(cells, mixtures, strict=True):
        rows.append(done_row(c.variant, c.axis, c.is_base, SET, surface(w) + rng.normal(0, sd)))
    return Results(rows, [], cells, "base", "holm", 1000, 0)


def _swarm_axis(**changes: object) -> SwarmAxis:
    (axis,) = load_sweep(REPO / "configs/sweep/swarm.yaml").axes
    assert isinstance(axis, SwarmAxis)
    return dataclasses.replace(axis, **changes)


def _best_observed(results: Results) -> np.ndarray:
    row = max(results.rows, key=lambda r: r.mean)
    cell = results.cells_of(row.variant)[0]
    return np.array([cell.weights[s] for s in SOURCES])


def test_the_proposal_on_a_planted_concave_surface_is_no_worse_than_the_best_run(tmp_path: Path) -> None:
    """Fails on the old default (a quadratic's argmax over the whole simplex: shares at 0%, 3+ points lost)."""
    best = max(concave(w) for w in np.random.default_rng(0).dirichlet(20 * OPTIMUM, 20000))
    regrets, best_regrets = [], []
    for rep in range(3):
        axis = _swarm_axis(n=24, seed=100 + rep)
        results = _results(axis, concave, 0.5, rep)
        report = fit.fit_and_propose(results, tmp_path / str(rep), axis="swarm", seed=rep)
        w = np.array([report.proposal.weights[s] for s in SOURCES])
        assert w.min() >= axis.min_weight - 1e-9  # inside the swarm's support
        assert report.proposal.nearest_l1 <= fit.axis_options(axis)["max_l1"] + 1e-9
        regrets.append(best - concave(w))
        best_regrets.append(best - concave(_best_observed(results)))
    assert np.median(regrets) <= np.median(best_regrets) + 1e-9
    assert max(regrets) < 2.5  # the old argmax lost 2.7 to 12.6 points


def test_the_floor_defaults_to_the_swarm_min_weight_and_is_respected(tmp_path: Path) -> None:
    axis = _swarm_axis(n=24, seed=7)
    assert fit.axis_options(axis)["min_share"] == axis.min_weight == 0.02
    assert fit.axis_options(dataclasses.replace(axis, min_share=0.05))["min_share"] == 0.05
    # the surface's optimum puts src5 at 0: the floor holds it at the swarm's min_weight or above
    results = _results(axis, lambda w: 60 + 20 * w[0] + 10 * w[1] - 5 * w[5], 0.2, 0)
    options = {**fit.axis_options(axis), "model": "linear", "max_l1": 2.0}
    report = fit.fit_and_propose(results, tmp_path / "default", **options)
    assert min(report.proposal.weights.values()) >= 0.02 - 1e-9
    assert report.proposal.weights["src5"] == min(report.proposal.weights.values()) < 1 / 6
    higher = fit.fit_and_propose(results, tmp_path / "higher", **{**options, "min_share": 0.1})
    assert min(higher.proposal.weights.values()) >= 0.1 - 1e-9
    assert not higher.proposal.fallback  # no run has every share >= 0.1, so none can be fallen back to


def test_a_gain_within_the_held_out_error_proposes_the_midpoint_with_the_best_observed_run(
    tmp_path: Path,
) -> None:
    axis = _swarm_axis(n=24, seed=3)
    results = _results(axis, lambda w: 60.0, 1.0, 1)  # no signal: every difference is noise
    report = fit.fit_and_propose(results, tmp_path, **fit.axis_options(axis))
    p = report.proposal
    assert p.fallback and p.blend and p.gain <= p.gain_se
    best = max(results.rows, key=lambda r: r.mean)
    assert p.best_run == best.variant and p.best_observed == pytest.approx(best.mean)
    midpoint = (np.array(_best_observed(results)) + np.array([p.searched[s] for s in SOURCES])) / 2
    assert np.allclose([p.weights[s] for s in SOURCES], midpoint)
    assert min(p.weights.values()) >= axis.min_weight - 1e-9
    head = report.paths["proposal"].read_text(encoding="utf-8")
    assert f"the proposal is the midpoint of run {best.variant} and the search's mixture" in head
    assert f"{p.objective:.2f} ± {p.error:.2f} (held-out RMSE over n = 25 runs" in head
    assert f"{p.best_observed:.2f} observed, {p.best_predicted:.2f} predicted" in head
    summary = yaml.safe_load(report.paths["fit"].read_text(encoding="utf-8"))["proposal"]
    assert summary["fallback"] is True and summary["best_run"] == best.variant


def test_a_planted_gain_beyond_the_error_is_proposed_with_its_uncertainty(tmp_path: Path) -> None:
    axis = _swarm_axis(n=24, seed=5)
    results = _results(axis, lambda w: 60 + 30 * w[0], 0.2, 2)  # linear: more src0 is better
    report = fit.fit_and_propose(results, tmp_path, **{**fit.axis_options(axis), "max_l1": 0.4})
    p = report.proposal
    assert not p.fallback and p.gain > p.gain_se > 0
    assert p.weights["src0"] > max(r.weights["src0"] for r in results.cells)  # beyond every run...
    assert 0 < p.nearest_l1 <= 0.4 + 1e-9  # ...but inside the trust region
    assert report.fits[SET].model == "linear"  # auto: the smallest held-out error on a linear surface
    assert set(report.fits[SET].errors) == {"linear", "quadratic", "gbm"}
    gain = f"Predicted gain over the best observed run {p.gain:+.2f} ± {p.gain_se:.2f} (held-out SE"
    assert gain in report.paths["proposal"].read_text(encoding="utf-8")


def test_the_fit_keys_round_trip_through_the_sweep_loader(tmp_path: Path) -> None:
    path = write_sweep(
        tmp_path,
        "name: s\nbase: base.yaml\naxes:\n"
        "  - {type: swarm, n: 24, fit: true, model: gbm, min_share: 0.03, max_l1: 0.5, top_k: 7}\n",
    )
    (axis,) = load_sweep(path).axes
    assert isinstance(axis, SwarmAxis)
    assert (axis.model, axis.min_share, axis.max_l1, axis.top_k) == ("gbm", 0.03, 0.5, 7)
    options = fit.axis_options(axis)
    assert {k: options[k] for k in ("model", "min_share", "max_l1", "top_k")} == {
        "model": "gbm",
        "min_share": 0.03,
        "max_l1": 0.5,
        "top_k": 7,
    }
    default = SwarmAxis()
    assert (default.model, default.min_share) == ("auto", None)

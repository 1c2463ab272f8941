"""Regret of the swarm fit's proposal on planted concave surfaces (issue 19, item 4).

Each cell plants a score surface over 6 sources with an interior optimum, draws a swarm with the tool's own
swarm axis (``configs/sweep/swarm.yaml``'s settings, ``biotune.sweep.variants.draw_swarm``, a new seed per
replicate) plus the uniform base, adds Gaussian noise to every run's score, and runs the real fit
(``biotune.sweep.regression.fit_swarm``) and search (``biotune.sweep.fit.propose``) with the axis's fit
settings (``biotune.sweep.fit.axis_options``). Surfaces (score points; ``w`` the mixture):

* ``separable``: ``S * sum_i a_i log w_i``, optimum ``w = a`` = (.30, .22, .16, .13, .11, .08); ``S`` puts the
  uniform base 1.8 points below the optimum;
* ``interaction``: the same plus ``G * sqrt(w_1 w_4)`` (sources 1 and 4 help each other), optimum found
  numerically.

Per cell it reports the median and mean regret (optimum minus the true score of the chosen mixture) of the
proposal, of the search's mixture before the fallback (``Proposal.searched``), of a fallback to the best
run itself instead of the midpoint between it and that mixture (not what the tool does: a comparison), of the
best observed member (the run with the highest noisy score), of the base, and of the
quadratic argmax over the whole simplex with no floor (the old default, without its local refinement); how
often the proposal ties or beats the best observed member; how often it fell back to that member; the L1
distance from the proposal to its nearest run; its smallest share; and the proposal's predicted objective
minus its true score (optimism).

Targets: in every cell the proposal's median regret <= the best observed member's; no proposal has a share
below the swarm's ``min_weight``.

    python benchmarks/swarm_proposal.py                 # 2 surfaces x 2 swarm sizes x 2 noise levels x 20
    python benchmarks/swarm_proposal.py --reps 5        # a quick look
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.optimize
from _common import REPO, emit

from biotune.sweep import fit, regression, variants
from biotune.sweep.spec import SwarmAxis, load_sweep

SWARM_YAML = REPO / "configs" / "sweep" / "swarm.yaml"
N_SOURCES = 6
OPTIMUM = np.array([0.30, 0.22, 0.16, 0.13, 0.11, 0.08])
BASE_REGRET = 1.8
"""Points between the separable surface's optimum and the uniform base."""
SYNERGY = 6.0
"""G: weight of the interaction term sqrt(w_1 w_4)."""
SET = "planted/dev"


def _scale() -> float:
    uniform = np.full(N_SOURCES, 1 / N_SOURCES)
    return BASE_REGRET / float((OPTIMUM * (np.log(OPTIMUM) - np.log(uniform))).sum())


SCALE = _scale()


def separable(w: np.ndarray) -> np.ndarray:
    """Concave, separable, optimum at :data:`OPTIMUM`."""
    return 60.0 + SCALE * (OPTIMUM * np.log(np.atleast_2d(w))).sum(axis=1)


def interaction(w: np.ndarray) -> np.ndarray:
    """:func:`separable` plus a synergy between sources 1 and 4 (still concave)."""
    w = np.atleast_2d(w)
    return separable(w) + SYNERGY * np.sqrt(w[:, 1] * w[:, 4])


SURFACES: dict[str, Callable[[np.ndarray], np.ndarray]] = {"separable": separable, "interaction": interaction}


def maximum(surface: Callable[[np.ndarray], np.ndarray]) -> float:
    """The surface's maximum over the simplex (SLSQP from the separable optimum)."""
    res = scipy.optimize.minimize(
        lambda w: -float(surface(w)[0]),
        OPTIMUM,
        method="SLSQP",
        bounds=[(1e-6, 1.0)] * N_SOURCES,
        constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1.0}],
        options={"ftol": 1e-12, "maxiter": 500},
    )
    assert res.success, res.message
    return float(-res.fun)


def replicate(
    surface: Callable[[np.ndarray], np.ndarray], axis: SwarmAxis, sd: float, rep: int
) -> dict[str, float]:
    """One swarm, one noisy draw of its scores, the proposal and the old argmax; regrets and distances."""
    best_value = maximum(surface)
    runs = np.vstack([np.full(N_SOURCES, 1 / N_SOURCES), *variants.draw_swarm(N_SOURCES, axis)])
    rng = np.random.default_rng([rep, int(sd * 100), axis.n])
    observed = surface(runs) + rng.normal(0.0, sd, len(runs))
    names = ["base", *(f"swarm-{i:03d}" for i in range(axis.n))]
    domains = [f"s{i}" for i in range(N_SOURCES)]
    swarm = regression.Swarm(names, domains, runs, {SET: observed}, "base")
    opts = fit.axis_options(axis)
    base = dict(zip(domains, runs[0], strict=True))
    fits = regression.fit_swarm(swarm, model=opts["model"], seed=rep)
    constraints = fit.Constraints(min_share=opts["min_share"], base=base, max_l1=opts["max_l1"])
    proposal = fit.propose(swarm, fits, constraints=constraints, top_k=opts["top_k"], seed=rep)
    w = np.array([proposal.weights[d] for d in domains])
    w_searched = np.array([proposal.searched[d] for d in domains])
    # the old default: a quadratic's argmax over the whole simplex (no floor, no trust region, no fallback)
    quadratic = regression.fit_swarm(swarm, model="quadratic", seed=rep)[SET].estimator
    simplex = np.vstack([runs, rng.dirichlet(np.ones(N_SOURCES), 20000)])
    w_old = simplex[int(np.argmax(quadratic.predict(simplex)))]
    best = int(np.argmax(observed))
    return {
        "proposal": best_value - float(surface(w)[0]),
        "best_observed": best_value - float(surface(runs[best])[0]),
        "base": best_value - float(surface(runs[0])[0]),
        "old_argmax": best_value - float(surface(w_old)[0]),
        "searched": best_value - float(surface(w_searched)[0]),
        # for comparison only: what a fallback to the best run itself (instead of the midpoint) would give
        "run_fallback": best_value - float(surface(runs[best] if proposal.fallback else w)[0]),
        "nearest_l1": proposal.nearest_l1,
        "min_share": float(w.min()),
        "old_min_share": float(w_old.min()),
        "fallback": float(proposal.fallback),
        "optimism": proposal.objective - float(surface(w)[0]),
        "error": proposal.error,
    }


def cell(surface: str, axis: SwarmAxis, sd: float, reps: int) -> dict[str, Any]:
    """Every replicate of one (surface, swarm size, noise) cell, summarised."""
    rows = [
        replicate(SURFACES[surface], dataclasses.replace(axis, seed=1000 * axis.n + rep), sd, rep)
        for rep in range(reps)
    ]
    col = {k: np.array([r[k] for r in rows]) for k in rows[0]}
    out: dict[str, Any] = {"surface": surface, "n": axis.n, "sd": sd, "reps": reps}
    for k in ("proposal", "searched", "run_fallback", "best_observed", "base", "old_argmax"):
        out[f"median_regret_{k}"] = float(np.median(col[k]))
        out[f"mean_regret_{k}"] = float(col[k].mean())
    out["ties_or_beats_best"] = float(np.mean(col["proposal"] <= col["best_observed"] + 1e-9))
    out["fallback_rate"] = float(col["fallback"].mean())
    out["median_nearest_l1"] = float(np.median(col["nearest_l1"]))
    out["max_nearest_l1"] = float(col["nearest_l1"].max())
    out["min_share"] = float(col["min_share"].min())
    out["old_argmax_zero_share_rate"] = float(np.mean(col["old_min_share"] < 1e-3))
    out["mean_optimism"] = float(col["optimism"].mean())
    out["mean_held_out_rmse"] = float(col["error"].mean())
    out["target_met"] = bool(
        out["median_regret_proposal"] <= out["median_regret_best_observed"] + 1e-9
        and out["min_share"] >= axis.min_weight - 1e-9
    )
    return out


def table(cells: list[dict[str, Any]]) -> str:
    """The cells as a Markdown table."""
    head = (
        "| surface | runs | noise sd | median regret: proposal | search before fallback | fallback to the run "
        "| best observed | base | old argmax | proposal ties/beats best | fallback | median / max L1 to nearest run "
        "| min share |"
    )
    lines = [head, "|" + "---|" * 13]
    for c in cells:
        lines.append(
            f"| {c['surface']} | {c['n']} | {c['sd']} | {c['median_regret_proposal']:.2f} "
            f"| {c['median_regret_searched']:.2f} | {c['median_regret_run_fallback']:.2f} "
            f"| {c['median_regret_best_observed']:.2f} | {c['median_regret_base']:.2f} "
            f"| {c['median_regret_old_argmax']:.2f} | {c['ties_or_beats_best']:.0%} | {c['fallback_rate']:.0%} "
            f"| {c['median_nearest_l1']:.2f} / {c['max_nearest_l1']:.2f} | {c['min_share']:.3f} |"
        )
    return "\n".join(lines)


def main() -> None:
    """Run every cell and print the table, then the JSON line."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=20, help="replicates per cell (default 20)")
    ap.add_argument("--sizes", type=int, nargs="+", default=[24, 48], help="swarm sizes (default 24 48)")
    ap.add_argument("--noise", type=float, nargs="+", default=[0.5, 1.0], help="noise sds (default 0.5 1)")
    ap.add_argument("--surfaces", nargs="+", default=list(SURFACES), choices=list(SURFACES))
    args = ap.parse_args()
    (swarm_axis,) = load_sweep(SWARM_YAML).axes
    assert isinstance(swarm_axis, SwarmAxis)
    start = time.perf_counter()
    cells = [
        cell(surface, dataclasses.replace(swarm_axis, n=n), sd, args.reps)
        for surface in args.surfaces
        for n in args.sizes
        for sd in args.noise
    ]
    print(table(cells))
    emit(
        {
            "benchmark": "swarm_proposal",
            "swarm_axis": dataclasses.asdict(swarm_axis),
            "fit": {k: v for k, v in fit.axis_options(swarm_axis).items() if k not in ("axis", "level")},
            "surfaces": {"optimum": OPTIMUM.tolist(), "base_regret": BASE_REGRET, "synergy": SYNERGY},
            "cells": cells,
            "all_targets_met": all(c["target_met"] for c in cells),
            "seconds": round(time.perf_counter() - start, 1),
        }
    )


if __name__ == "__main__":
    main()

"""Regressions from a swarm's mixture weights to its dev scores, chosen by K-fold held-out error.

:func:`fit_swarm` fits, per dev set, one of ``linear`` (ridge on ``w``: ``D`` parameters for ``D`` domains),
``quadratic`` (ridge on ``w`` and its degree-2 products, a Scheffé quadratic mixture model: ``D (D + 1) / 2``
parameters) or ``gbm`` (scikit-learn's gradient-boosted trees; RegMix boosts with LightGBM). ``auto`` (the
default, :data:`biotune.sweep.swarm_fit_keys.AUTO_MODEL`) fits every one the swarm has enough runs for, on the same
shuffled folds, and keeps the one with the smallest held-out RMSE. Every fit reports its
held-out Spearman, R² and RMSE: the RMSE is the uncertainty :mod:`biotune.sweep.fit` puts on a proposal.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.stats
from sklearn.base import RegressorMixin
from sklearn.ensemble import GradientBoostingRegressor
from sklearn.linear_model import RidgeCV
from sklearn.metrics import r2_score
from sklearn.model_selection import KFold, cross_validate
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import PolynomialFeatures, StandardScaler

from biotune.errors import ConfigError, Problem
from biotune.sweep.swarm_fit_keys import AUTO_MODEL, FIT_MODELS

log = logging.getLogger(__name__)

MODELS: tuple[str, ...] = FIT_MODELS
#: The regressions ``auto`` chooses among.
REGRESSIONS: tuple[str, ...] = tuple(m for m in MODELS if m != AUTO_MODEL)
_ALPHAS = np.logspace(-4, 3, 15)


@dataclass
class Swarm:
    """The runs of a swarm: one mixture and one score per dev eval set each."""

    runs: list[str]
    """Variant names (the Olmix ``run`` column)."""
    domains: list[str]
    """Sources, or groups with ``level="group"``."""
    weights: np.ndarray
    """(runs, domains): each row sums to 1."""
    metrics: dict[str, np.ndarray]
    """Dev eval set -> (runs,) mean headline over training seeds, in percent."""
    base: str | None = None
    """The base variant's run name, when the base is one of the runs."""


def n_parameters(model: str, n_domains: int) -> int:
    """Identifiable parameters of ``model`` over ``n_domains`` mixture weights (which sum to 1).

    ``auto`` needs as many runs as its smallest candidate (``linear``); ``gbm`` counts as ``n_domains + 1``.
    """
    if model in ("linear", AUTO_MODEL):
        return n_domains
    if model == "quadratic":
        return n_domains * (n_domains + 1) // 2
    if model == "gbm":
        return n_domains + 1
    raise ConfigError([Problem("fit.model", f"unknown model {model!r}", f"use one of: {', '.join(MODELS)}")])


def make_regressor(model: str, seed: int = 0) -> RegressorMixin:
    """An unfitted scikit-learn-compatible regressor for ``model`` (one of :data:`REGRESSIONS`)."""
    n_parameters(model, 1)  # raises ConfigError for an unknown model
    if model == "linear":
        return make_pipeline(StandardScaler(), RidgeCV(alphas=_ALPHAS))
    if model == "quadratic":
        return make_pipeline(
            PolynomialFeatures(2, include_bias=False), StandardScaler(), RidgeCV(alphas=_ALPHAS)
        )
    if model != "gbm":
        raise ConfigError([Problem("fit.model", f"{model!r} is not one regression", "resolve auto first")])
    # exact (not histogram) boosting: no OpenMP thread pool, whose start-up costs more than a swarm-sized fit
    return GradientBoostingRegressor(
        n_estimators=200, learning_rate=0.05, max_depth=3, min_samples_leaf=3, random_state=seed
    )


@dataclass
class SetFit:
    """The regression of one dev set's score on the mixture weights."""

    eval_set: str
    model: str
    """The regression fitted (for ``auto``: the candidate with the smallest held-out error)."""
    estimator: Any
    """Fitted on every run; ``estimator.predict(weights (n, domains))`` -> scores."""
    spearman: float
    """Spearman correlation of K-fold held-out predictions with the observed scores."""
    r2: float
    """R² of the K-fold held-out predictions."""
    n_runs: int
    n_params: int
    held_out: np.ndarray = field(repr=False)
    """(runs,) the K-fold held-out prediction of each run."""
    rmse: float = float("nan")
    """Root mean squared error of the K-fold held-out predictions (score points)."""
    errors: dict[str, float] = field(default_factory=dict)
    """Held-out RMSE of every candidate regression tried (one entry unless the model is ``auto``)."""
    folds: list[Any] = field(default_factory=list, repr=False)
    """The K fold estimators of the chosen regression, each fitted without one fold of runs (the same folds
    for every set of one :func:`fit_swarm` call): the spread of their predictions is the fit's variance."""


def _candidates(model: str, n_runs: int, n_domains: int, axis: str | None) -> list[str]:
    """The regressions to fit: ``model`` itself, or for ``auto`` every one the swarm has enough runs for."""
    need = n_parameters(model, n_domains)
    if n_runs < need:
        alt = (
            f", or use model='linear' ({n_domains} parameters)" if model not in ("linear", AUTO_MODEL) else ""
        )
        raise ConfigError(
            [
                Problem(
                    f"axes.{axis or 'swarm'}",
                    f"{n_runs} runs with results for a {model} fit of {need} parameters over {n_domains} domains",
                    f"give the swarm at least {need} runs (and more for a trustworthy fit){alt}",
                )
            ]
        )
    if model != AUTO_MODEL:
        if model == "gbm" and n_runs < 10 * n_domains:
            log.warning("fit: %d runs is few for a boosted-tree fit over %d domains", n_runs, n_domains)
        return [model]
    return [m for m in REGRESSIONS if n_runs >= n_parameters(m, n_domains)]


def _cross_fit(
    estimator: RegressorMixin, x: np.ndarray, y: np.ndarray, cv: KFold
) -> tuple[np.ndarray, list[Any]]:
    """K-fold held-out predictions of every run, and the K fitted fold estimators."""
    out = cross_validate(estimator, x, y, cv=cv, return_estimator=True, return_indices=True)
    held_out = np.empty_like(y)
    for est, test in zip(out["estimator"], out["indices"]["test"], strict=True):
        held_out[test] = est.predict(x[test])
    return held_out, list(out["estimator"])


def fit_swarm(
    swarm: Swarm, *, model: str = AUTO_MODEL, n_folds: int = 5, seed: int = 0, axis: str | None = None
) -> dict[str, SetFit]:
    """Fit ``model`` per dev set with K-fold held-out Spearman, R² and RMSE (folds shuffled with ``seed``).

    ``model="auto"`` (the default) fits every regression of :data:`REGRESSIONS` that the swarm has enough runs
    for and keeps, per set, the one with the smallest held-out RMSE (all candidates' errors are kept in
    :attr:`SetFit.errors`). The same folds serve every candidate.

    Raises:
        ConfigError: when the swarm has fewer runs than the model's parameters (``axis`` names the key).
    """
    n_runs, n_domains = swarm.weights.shape
    candidates = _candidates(model, n_runs, n_domains, axis)
    cv = KFold(n_splits=min(n_folds, n_runs), shuffle=True, random_state=seed)
    fits: dict[str, SetFit] = {}
    for name, y in swarm.metrics.items():
        held = {m: _cross_fit(make_regressor(m, seed), swarm.weights, y, cv) for m in candidates}
        errors = {m: float(np.sqrt(np.mean((y - p) ** 2))) for m, (p, _) in held.items()}
        chosen = min(candidates, key=lambda m: errors[m])
        held_out, folds = held[chosen]
        rho = scipy.stats.spearmanr(y, held_out).statistic
        fits[name] = SetFit(
            name,
            chosen,
            make_regressor(chosen, seed).fit(swarm.weights, y),
            float(rho),
            float(r2_score(y, held_out)),
            n_runs,
            n_parameters(chosen, n_domains),
            held_out,
            errors[chosen],
            errors,
            folds,
        )
        log.info(
            "fit %s: %s, held-out Spearman %.3f, R² %.3f, RMSE %.3f (%d runs)",
            name,
            chosen,
            rho,
            fits[name].r2,
            errors[chosen],
            n_runs,
        )
    return fits

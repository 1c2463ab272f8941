"""Fit and propose for mixture swarms: weights -> score regressions, a constrained simplex search, Olmix CSVs.

For a Dirichlet swarm axis (RegMix, Olmix), each run is a mixture ``w`` on the simplex and a score per eval
set. Per **dev** set (selection never looks at test splits; report test at the end), :func:`fit_swarm` fits
a regression from ``w`` to the score and reports its K-fold held-out Spearman and R². Models:

* ``quadratic`` (default): ridge on ``w`` and its degree-2 products (a Scheffé quadratic mixture model on the
  simplex: ``D (D + 1) / 2`` identifiable parameters for ``D`` domains);
* ``linear``: ridge on ``w`` (``D`` parameters);
* ``gbm``: LightGBM where it is installed, else scikit-learn's histogram gradient boosting (RegMix's choice;
  it needs many more runs than ``D + 1``).

:func:`propose` searches the simplex for the mixture maximising a weighted sum of the fitted dev scores under
:class:`Constraints` (a minimum share per domain; a repetition cap: ``w_i * total_samples`` may not exceed
``max_epochs`` passes over domain i's available samples; a maximum L1 distance to the base mixture). It
samples seeded Dirichlet candidates (uniform, near the base, sparse, and the swarm's own runs), keeps the
feasible ones and refines the best by seeded local Dirichlet moves. :func:`proposal_yaml` writes the winner
as a data config fragment (``data.total_samples`` and ``data.sources.<name>.weight``).

A prediction is not a result: given the sweep, :func:`fit_and_propose` also writes ``confirm.yaml``
(:func:`confirm_sweep`), a ready-to-submit sweep of the base and the proposed mixture at >= 3 training seeds
under the swarm's budget rule and evaluation settings, and :func:`confirm_commands` gives the
``biotune sweep submit`` / ``biotune sweep run --local`` lines that run it (nothing is queued on its own).
:func:`write_olmix_csvs` exports ``ratios.csv`` (``run`` + one column per domain weight) and ``metrics.csv``
(``run`` + one column per metric), the files ``olmix fit`` reads.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.stats
import yaml
from sklearn.base import RegressorMixin, clone
from sklearn.linear_model import RidgeCV
from sklearn.metrics import r2_score
from sklearn.model_selection import KFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import PolynomialFeatures, StandardScaler

from biotune.data.sources.splits import SplitRole, parse_set_label, role_of
from biotune.errors import ConfigError, Problem
from biotune.io import atomic_write_text
from biotune.sweep import spec as sp
from biotune.sweep.collect import CellResult, Results

log = logging.getLogger(__name__)

MODELS: tuple[str, ...] = ("quadratic", "linear", "gbm")
#: The role of the splits a fit selects on (every spelling: ``devel``, ``dev``, ``validation``).
SELECTION = SplitRole.SELECTION
#: Training seeds of a confirmation sweep when the swarm's sweep has fewer than three.
CONFIRM_SEEDS = (0, 1, 2)
#: The proposal's mixture name in ``confirm.yaml`` (its variant is ``mix-proposed``).
PROPOSED = "proposed"
CONFIRM_FILE = "confirm.yaml"
_ALPHAS = np.logspace(-4, 3, 15)
_TOL = 1e-9


# ------------------------------------------------------------------------------------------- swarm data


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


def _domain_weights(cell: CellResult, level: str) -> dict[str, float]:
    if level == "source":
        return dict(cell.weights)
    out: dict[str, float] = {}
    for source, w in cell.weights.items():
        group = cell.groups.get(source, source)
        out[group] = out.get(group, 0.0) + w
    return out


def swarm_from_results(results: Results, *, axis: str | None = None, level: str = "source") -> Swarm:
    """The swarm's runs (variants of ``axis``, plus the base) with their weights and dev scores.

    ``axis=None`` takes every variant that has weights. Only dev sets are kept (selection never uses test
    splits), and only sets every run was evaluated on.

    Raises:
        ConfigError: for an unknown level or axis, or when there are no dev eval sets.
    """
    if level not in ("source", "group"):
        raise ConfigError([Problem("fit.level", f"unknown level {level!r}", "use 'source' or 'group'")])
    axes = {c.axis for c in results.cells if not c.is_base}
    if axis is not None and axis not in axes:
        raise ConfigError(
            [Problem("fit.axis", f"no variant of axis {axis!r}", f"use one of: {', '.join(sorted(axes))}")]
        )
    scores = results.scores(role=SELECTION)
    runs = [
        v
        for v in results.variants()
        if v in scores
        and results.cells_of(v)[0].weights
        and (axis is None or results.cells_of(v)[0].axis == axis or results.cells_of(v)[0].is_base)
    ]
    if not runs:
        raise ConfigError(
            [
                Problem(
                    "eval.splits",
                    "no run of the swarm has scores on a dev split (selection uses dev splits only)",
                    "evaluate the sweep on dev splits too (e.g. eval.splits=[dev, test])",
                )
            ]
        )
    sets = [s for s in scores[runs[0]] if all(s in scores[r] for r in runs)]
    dropped = sorted({s for r in runs for s in scores[r]} - set(sets))
    if dropped:
        log.warning("fit: leaving out dev sets not scored for every run: %s", ", ".join(dropped))
    per_run = [_domain_weights(results.cells_of(r)[0], level) for r in runs]
    domains = list(dict.fromkeys(d for w in per_run for d in w))
    weights = np.array([[w.get(d, 0.0) for d in domains] for w in per_run], dtype=np.float64)
    weights /= weights.sum(axis=1, keepdims=True)
    metrics = {s: np.array([scores[r][s] for r in runs], dtype=np.float64) for s in sets}
    return Swarm(runs, domains, weights, metrics, results.base if results.base in runs else None)


def write_olmix_csvs(swarm: Swarm, out_dir: str | Path) -> tuple[Path, Path]:
    """Write Olmix-compatible ``ratios.csv`` and ``metrics.csv`` (joined on ``run``); returns their paths."""
    out = Path(out_dir)
    ratios = io.StringIO()
    w = csv.writer(ratios, lineterminator="\n")
    w.writerow(["run", *swarm.domains])
    for run, row in zip(swarm.runs, swarm.weights, strict=True):
        w.writerow([run, *(f"{x:.10g}" for x in row)])
    metrics = io.StringIO()
    w = csv.writer(metrics, lineterminator="\n")
    names = list(swarm.metrics)
    w.writerow(["run", *names])
    for i, run in enumerate(swarm.runs):
        w.writerow([run, *(f"{swarm.metrics[n][i]:.10g}" for n in names)])
    atomic_write_text(out / "ratios.csv", ratios.getvalue())
    atomic_write_text(out / "metrics.csv", metrics.getvalue())
    return out / "ratios.csv", out / "metrics.csv"


# ------------------------------------------------------------------------------------------- regression


def n_parameters(model: str, n_domains: int) -> int:
    """Identifiable parameters of ``model`` over ``n_domains`` mixture weights (which sum to 1)."""
    if model == "linear":
        return n_domains
    if model == "quadratic":
        return n_domains * (n_domains + 1) // 2
    if model == "gbm":
        return n_domains + 1
    raise ConfigError([Problem("fit.model", f"unknown model {model!r}", f"use one of: {', '.join(MODELS)}")])


def make_regressor(model: str, seed: int = 0) -> RegressorMixin:
    """An unfitted scikit-learn-compatible regressor for ``model``."""
    n_parameters(model, 1)  # raises ConfigError for an unknown model
    if model == "linear":
        return make_pipeline(StandardScaler(), RidgeCV(alphas=_ALPHAS))
    if model == "quadratic":
        return make_pipeline(
            PolynomialFeatures(2, include_bias=False), StandardScaler(), RidgeCV(alphas=_ALPHAS)
        )
    try:
        import lightgbm

        return lightgbm.LGBMRegressor(
            n_estimators=300,
            learning_rate=0.05,
            num_leaves=15,
            min_child_samples=5,
            random_state=seed,
            verbose=-1,
        )
    except ImportError:
        from sklearn.ensemble import HistGradientBoostingRegressor

        return HistGradientBoostingRegressor(
            max_iter=300, learning_rate=0.05, min_samples_leaf=5, random_state=seed
        )


@dataclass
class SetFit:
    """The regression of one dev set's score on the mixture weights."""

    eval_set: str
    model: str
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


def fit_swarm(
    swarm: Swarm, *, model: str = "quadratic", n_folds: int = 5, seed: int = 0, axis: str | None = None
) -> dict[str, SetFit]:
    """Fit ``model`` per dev set with K-fold held-out Spearman and R² (folds shuffled with ``seed``).

    Raises:
        ConfigError: when the swarm has fewer runs than the model's parameters (``axis`` names the key).
    """
    n_runs, n_domains = swarm.weights.shape
    need = n_parameters(model, n_domains)
    if n_runs < need:
        alt = f", or use model='linear' ({n_domains} parameters)" if model != "linear" else ""
        raise ConfigError(
            [
                Problem(
                    f"axes.{axis or 'swarm'}",
                    f"{n_runs} runs with results for a {model} fit of {need} parameters over {n_domains} domains",
                    f"give the swarm at least {need} runs (and more for a trustworthy fit){alt}",
                )
            ]
        )
    if model == "gbm" and n_runs < 10 * n_domains:
        log.warning("fit: %d runs is few for a boosted-tree fit over %d domains", n_runs, n_domains)
    cv = KFold(n_splits=min(n_folds, n_runs), shuffle=True, random_state=seed)
    fits: dict[str, SetFit] = {}
    for name, y in swarm.metrics.items():
        estimator = make_regressor(model, seed)
        held_out = cross_val_predict(clone(estimator), swarm.weights, y, cv=cv)
        rho = scipy.stats.spearmanr(y, held_out).statistic
        fits[name] = SetFit(
            name,
            model,
            estimator.fit(swarm.weights, y),
            float(rho),
            float(r2_score(y, held_out)),
            n_runs,
            need,
            held_out,
        )
        log.info("fit %s: held-out Spearman %.3f, R² %.3f (%d runs)", name, rho, fits[name].r2, n_runs)
    return fits


# ------------------------------------------------------------------------------------------- proposal


@dataclass
class Constraints:
    """Where on the simplex a proposal may lie."""

    min_share: float | Mapping[str, float] = 0.0
    """Minimum weight of every domain (a number) or per domain."""
    max_epochs: float | None = None
    """Repetition cap: a domain may be seen at most this many times (needs ``available`` and ``total_samples``)."""
    available: Mapping[str, float] | None = None
    """Unique samples available per domain."""
    total_samples: int | None = None
    """Samples the proposed mixture trains on (``data.total_samples``)."""
    base: Mapping[str, float] | None = None
    """The base mixture (domain -> weight)."""
    max_l1: float | None = None
    """Maximum L1 distance from ``base`` (2 = anywhere on the simplex)."""

    @classmethod
    def from_base(
        cls,
        cell: CellResult,
        *,
        level: str = "source",
        min_share: float | Mapping[str, float] = 0.0,
        max_epochs: float | None = None,
        max_l1: float | None = None,
    ) -> Constraints:
        """Constraints relative to the base cell: its weights, its total samples, and each domain's available
        samples (realised samples / realised epochs)."""
        available: dict[str, float] = {}
        for source, b in cell.budget.items():
            if b.get("epochs"):
                domain = source if level == "source" else cell.groups.get(source, source)
                available[domain] = available.get(domain, 0.0) + b["samples"] / b["epochs"]
        total = int(sum(b.get("samples", 0) for b in cell.budget.values())) or None
        return cls(min_share, max_epochs, available, total, _domain_weights(cell, level), max_l1)

    def bounds(self, domains: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Per-domain lower and upper weight bounds."""
        if isinstance(self.min_share, Mapping):
            lower = np.array([float(self.min_share.get(d, 0.0)) for d in domains])
        else:
            lower = np.full(len(domains), float(self.min_share))
        upper = np.ones(len(domains))
        if self.max_epochs is not None:
            if not self.available or not self.total_samples:
                raise ConfigError(
                    [
                        Problem(
                            "fit.max_epochs",
                            "a repetition cap needs each domain's available samples and the total samples",
                            "build the constraints with Constraints.from_base(base cell)",
                        )
                    ]
                )
            for i, d in enumerate(domains):
                if d in self.available:
                    upper[i] = min(1.0, self.max_epochs * self.available[d] / self.total_samples)
        return lower, upper

    def base_vector(self, domains: Sequence[str]) -> np.ndarray | None:
        """The base mixture over ``domains`` (normalised), or None."""
        if not self.base:
            return None
        v = np.array([float(self.base.get(d, 0.0)) for d in domains])
        return v / v.sum()

    def feasible(self, w: np.ndarray, domains: Sequence[str]) -> np.ndarray:
        """(n,) whether each row of ``w`` (n, domains) satisfies every constraint."""
        lower, upper = self.bounds(domains)
        ok = np.all(w >= lower - _TOL, axis=1) & np.all(w <= upper + _TOL, axis=1)
        base = self.base_vector(domains)
        if self.max_l1 is not None and base is not None:
            ok &= np.abs(w - base).sum(axis=1) <= self.max_l1 + _TOL
        return ok


@dataclass
class Proposal:
    """The proposed mixture and what the fits predict for it."""

    weights: dict[str, float]
    """Domain -> weight (sums to 1)."""
    predicted: dict[str, float]
    """Dev set -> predicted score (percent)."""
    objective: float
    """Predicted weighted objective of the proposal."""
    base_objective: float | None
    """Predicted objective of the base mixture (same fits), when known."""
    objective_weights: dict[str, float]
    nearest_run: str
    nearest_l1: float
    """L1 distance to the closest swarm run: large values mean the fit extrapolates."""
    total_samples: int | None
    model: str


def _objective_weights(swarm: Swarm, objective: Mapping[str, float] | None) -> dict[str, float]:
    if objective is None:
        return {s: 1.0 for s in swarm.metrics}
    problems = []
    for name, weight in objective.items():
        if name not in swarm.metrics:
            try:
                split = parse_set_label(name)[1]
            except ValueError:
                split = ""
            why = (
                f"'{name}' is a {split} set: selection uses dev splits only"
                if split and role_of(split) is not SELECTION
                else f"no dev set '{name}' in the swarm's results"
            )
            problems.append(
                Problem(f"fit.objective.{name}", why, f"weight dev sets only: {', '.join(swarm.metrics)}")
            )
        elif weight < 0:
            problems.append(Problem(f"fit.objective.{name}", f"negative weight {weight}", "use weights >= 0"))
    if not problems and not any(w > 0 for w in objective.values()):
        problems.append(
            Problem("fit.objective", "every weight is zero", "give at least one dev set a weight > 0")
        )
    if problems:
        raise ConfigError(problems)
    return {k: float(v) for k, v in objective.items() if v > 0}


def _predict(fits: Mapping[str, SetFit], weights: Mapping[str, float], w: np.ndarray) -> np.ndarray:
    total = sum(weights.values())
    return sum(weights[s] * fits[s].estimator.predict(w) for s in weights) / total  # type: ignore[return-value]


def _local_moves(x: np.ndarray, concentration: float, n: int, rng: np.random.Generator) -> np.ndarray:
    return rng.dirichlet(x * concentration + 1e-3, size=n)


def propose(
    swarm: Swarm,
    fits: Mapping[str, SetFit],
    *,
    objective: Mapping[str, float] | None = None,
    constraints: Constraints | None = None,
    n_candidates: int = 20000,
    n_refine: int = 60,
    seed: int = 0,
) -> Proposal:
    """The feasible mixture maximising ``objective`` (dev set -> weight; default: all dev sets equally).

    Raises:
        ConfigError: an objective naming a test or unknown set, or constraints no mixture satisfies.
    """
    constraints = constraints or Constraints()
    weights = _objective_weights(swarm, objective)
    domains = swarm.domains
    lower, upper = constraints.bounds(domains)
    _check_satisfiable(lower, upper, domains)
    rng = np.random.default_rng(seed)
    d = len(domains)
    base = constraints.base_vector(domains)
    parts = [
        rng.dirichlet(np.ones(d), n_candidates // 2),
        rng.dirichlet(np.full(d, 0.3), n_candidates // 4),
        swarm.weights,
    ]
    if base is not None:
        parts += [base[None, :], rng.dirichlet(base * 50 + 0.5, n_candidates // 4)]
    # candidates that respect the bounds by construction: the lower bounds plus a scaled Dirichlet draw
    parts.append(lower + (1 - lower.sum()) * rng.dirichlet(np.ones(d), n_candidates // 4))
    cand = np.vstack(parts)
    ok = constraints.feasible(cand, domains)
    if not ok.any():
        raise ConfigError(
            [
                Problem(
                    "fit.constraints",
                    f"none of {len(cand)} sampled mixtures satisfies the constraints",
                    "relax min_share, max_epochs or max_l1",
                )
            ]
        )
    cand = cand[ok]
    scores = _predict(fits, weights, cand)
    top = cand[np.argsort(scores)[::-1][:8]]
    best_w, best = top[0], float(scores.max())
    for start in top:
        x, fx = start, float(_predict(fits, weights, start[None, :])[0])
        for step in range(n_refine):
            moves = _local_moves(x, 50.0 * (1 + step), 32, rng)
            moves = moves[constraints.feasible(moves, domains)]
            if not len(moves):
                continue
            values = _predict(fits, weights, moves)
            j = int(np.argmax(values))
            if values[j] > fx:
                x, fx = moves[j], float(values[j])
        if fx > best:
            best_w, best = x, fx
    dist = np.abs(swarm.weights - best_w).sum(axis=1)
    nearest = int(np.argmin(dist))
    if dist[nearest] > 0.5:
        log.warning(
            "fit: the proposal is %.2f (L1) from the nearest swarm run; the fit extrapolates", dist[nearest]
        )
    return Proposal(
        weights={dom: float(v) for dom, v in zip(domains, best_w, strict=True)},
        predicted={s: float(f.estimator.predict(best_w[None, :])[0]) for s, f in fits.items()},
        objective=best,
        base_objective=None if base is None else float(_predict(fits, weights, base[None, :])[0]),
        objective_weights=weights,
        nearest_run=swarm.runs[nearest],
        nearest_l1=float(dist[nearest]),
        total_samples=constraints.total_samples,
        model=next(iter(fits.values())).model,
    )


def _check_satisfiable(lower: np.ndarray, upper: np.ndarray, domains: Sequence[str]) -> None:
    problems = []
    if lower.sum() > 1 + _TOL:
        problems.append(
            Problem("fit.min_share", f"minimum shares sum to {lower.sum():.3f} > 1", "lower them")
        )
    if upper.sum() < 1 - _TOL:
        problems.append(
            Problem(
                "fit.max_epochs",
                f"repetition caps allow at most {upper.sum():.3f} of the total",
                "raise max_epochs or lower data.total_samples",
            )
        )
    bad = [d for d, lo, hi in zip(domains, lower, upper, strict=True) if lo > hi + _TOL]
    if bad:
        problems.append(
            Problem(
                "fit.min_share",
                f"minimum share above the repetition cap for {', '.join(bad)}",
                "lower min_share or raise max_epochs",
            )
        )
    if problems:
        raise ConfigError(problems)


def source_weights(proposal: Proposal, base: CellResult, level: str) -> dict[str, float]:
    """Per-source weights of a proposal; a group's weight is split by the base's shares within the group."""
    if level == "source":
        return dict(proposal.weights)
    out: dict[str, float] = {}
    for group, w in proposal.weights.items():
        members = {s: bw for s, bw in base.weights.items() if base.groups.get(s, s) == group}
        total = sum(members.values())
        for s, bw in members.items():
            out[s] = w * (bw / total if total > 0 else 1.0 / len(members))
    return out


def _rounded(weights: Mapping[str, float]) -> dict[str, float]:
    """Per-source weights as both written files hold them."""
    return {s: round(float(w), 6) for s, w in weights.items()}


def proposal_yaml(proposal: Proposal, weights: Mapping[str, float]) -> str:
    """The proposal as a data config fragment, with a header comment of what the fits predict."""
    data: dict[str, Any] = {}
    if proposal.total_samples:
        data["total_samples"] = int(proposal.total_samples)
    data["sources"] = {s: {"weight": w} for s, w in _rounded(weights).items()}
    head = [
        f"# Proposed by biotune sweep fit ({proposal.model} regression on dev sets).",
        f"# Objective (dev-set weights): {json.dumps(proposal.objective_weights)}",
        f"# Predicted objective {proposal.objective:.2f}"
        + (f" vs {proposal.base_objective:.2f} for the base" if proposal.base_objective is not None else "")
        + f"; nearest swarm run {proposal.nearest_run} at L1 {proposal.nearest_l1:.2f}.",
        "# Train it with the base at >= 3 seeds before trusting the prediction; report test splits at the end.",
    ]
    return "\n".join(head) + "\n" + yaml.safe_dump({"data": data}, sort_keys=False)


def _swarm_budget(spec: sp.SweepSpec, axis: str | None) -> str:
    """The budget rule the fitted runs were realised under: that of the first mixture axis of type ``axis``."""
    for a in spec.axes:
        if not isinstance(a, sp.ValuesAxis) and (axis is None or a.type == axis):
            return spec.budget_of(a)
    return spec.budget


def confirm_sweep(
    spec: sp.SweepSpec, weights: Mapping[str, float], *, axis: str | None = None
) -> dict[str, Any]:
    """The sweep that checks a proposal: the base and the proposed mixture, as a sweep YAML's mapping.

    Same base config and overrides as ``spec`` (those of the command line included), one ``mixtures`` axis
    holding the proposal's per-source ``weights`` under the budget rule the swarm's runs had (the proposed
    variant holds what the fitted runs held), and the base, which every sweep has. Training seeds: the sweep's
    own when it has at least three, else :data:`CONFIRM_SEEDS`. Evaluation: the base's settings, with the
    selection split added to ``eval.splits`` when it is missing. Keep policy and ``min_effect``: the sweep's.
    """
    seeds = list(spec.seeds) if len(spec.seeds) >= len(CONFIRM_SEEDS) else list(CONFIRM_SEEDS)
    overrides = list(spec.overrides)
    splits = list(spec.load_base().eval.splits)
    if not any(role_of(s) is SELECTION for s in splits):
        overrides.append(sp.override("eval.splits", [SELECTION.value, *splits]))
    return {
        "name": f"{spec.name}-confirm",
        "base": str(spec.base),
        "overrides": overrides,
        "budget": _swarm_budget(spec, axis),
        "seeds": seeds,
        "controls": False,
        "keep": spec.keep,
        "min_effect": spec.min_effect,
        "axes": [{"type": sp.MIXTURES, "over": sp.OVER_SOURCE, "mixtures": {PROPOSED: _rounded(weights)}}],
    }


def confirm_commands(path: str | Path) -> list[str]:
    """The command lines that run a confirmation sweep: on SLURM, then on this machine."""
    quoted = shlex.quote(str(path))
    return [f"biotune sweep submit {quoted}", f"biotune sweep run {quoted} --local"]


def confirm_yaml(sweep: Mapping[str, Any], path: str | Path) -> str:
    """The confirmation sweep as the YAML text written to ``path``, headed by the commands that run it."""
    submit, local = confirm_commands(path)
    head = [
        f"# Confirmation sweep written by biotune sweep fit: the base and the proposed mixture ({PROPOSED}),",
        f"# each at seeds {sweep['seeds']}; selection on dev splits, test splits reported at the end.",
        f"#   {submit}    # SLURM (add --gpus-per-node, --time, ...)",
        f"#   {local}    # this machine",
    ]
    return "\n".join(head) + "\n" + yaml.safe_dump(dict(sweep), sort_keys=False)


def _finite(value: float) -> float | None:
    return value if np.isfinite(value) else None


@dataclass
class FitReport:
    """What :func:`fit_and_propose` computed and wrote."""

    swarm: Swarm
    fits: dict[str, SetFit]
    proposal: Proposal
    paths: dict[str, Path]
    confirm: dict[str, Any] | None = None
    """The confirmation sweep written to ``paths["confirm"]`` (:func:`confirm_sweep`), when the spec was given."""


def fit_and_propose(
    results: Results,
    out_dir: str | Path,
    *,
    axis: str | None = None,
    level: str = "source",
    model: str = "quadratic",
    objective: Mapping[str, float] | None = None,
    min_share: float | Mapping[str, float] = 0.0,
    max_epochs: float | None = None,
    max_l1: float | None = None,
    seed: int = 0,
    spec: sp.SweepSpec | None = None,
) -> FitReport:
    """Fit the swarm of ``axis`` on dev sets, propose a mixture, and write ``ratios.csv``, ``metrics.csv``,
    ``fit.json`` (per set: held-out Spearman, R², runs, parameters) and ``proposal.yaml`` into ``out_dir``;
    given the swarm's sweep ``spec``, also ``confirm.yaml`` (:func:`confirm_sweep`).

    Raises:
        ConfigError: too few runs for the model, an objective naming a test set, unsatisfiable constraints,
            or no base variant (constraints and the proposal's total size come from the base).
    """
    if results.base is None:
        raise ConfigError(
            [Problem("cells.is_base", "the sweep has no base variant", "mark the base's cells is_base")]
        )
    out = Path(out_dir)
    swarm = swarm_from_results(results, axis=axis, level=level)
    fits = fit_swarm(swarm, model=model, seed=seed, axis=axis)
    base_cell = results.cells_of(results.base)[0]
    constraints = Constraints.from_base(
        base_cell, level=level, min_share=min_share, max_epochs=max_epochs, max_l1=max_l1
    )
    proposal = propose(swarm, fits, objective=objective, constraints=constraints, seed=seed)
    ratios, metrics = write_olmix_csvs(swarm, out)
    summary = {
        "model": model,
        "level": level,
        "axis": axis,
        "runs": len(swarm.runs),
        "domains": swarm.domains,
        "sets": {
            s: {
                "spearman": _finite(f.spearman),
                "r2": _finite(f.r2),
                "n_runs": f.n_runs,
                "n_params": f.n_params,
            }
            for s, f in fits.items()
        },
        "proposal": {
            "weights": proposal.weights,
            "predicted": proposal.predicted,
            "objective": proposal.objective,
            "base_objective": proposal.base_objective,
            "nearest_run": proposal.nearest_run,
            "nearest_l1": proposal.nearest_l1,
        },
    }
    atomic_write_text(out / "fit.json", json.dumps(summary, indent=2) + "\n")
    weights = source_weights(proposal, base_cell, level)
    atomic_write_text(out / "proposal.yaml", proposal_yaml(proposal, weights))
    paths = {"ratios": ratios, "metrics": metrics, "fit": out / "fit.json", "proposal": out / "proposal.yaml"}
    confirm = None
    if spec is not None:
        paths["confirm"] = (out / CONFIRM_FILE).resolve()
        confirm = confirm_sweep(spec, weights, axis=axis)
        atomic_write_text(paths["confirm"], confirm_yaml(confirm, paths["confirm"]))
    return FitReport(swarm, fits, proposal, paths, confirm)

"""Fit and propose for mixture swarms: weights -> score regressions, a trust-region search, Olmix CSVs.

For a Dirichlet swarm axis (RegMix, Olmix), each run is a mixture ``w`` on the simplex and a score per eval
set. Per **dev** set (selection never looks at test splits; report test at the end),
:func:`biotune.sweep.regression.fit_swarm` fits a regression from ``w`` to the score (``auto``, the default,
picks ``linear``, ``quadratic`` or ``gbm`` by K-fold held-out RMSE) and reports its held-out Spearman, R² and
RMSE.

:func:`propose` stays where the data is. It samples seeded mixtures inside :class:`Constraints`: a floor on
every share (by default the swarm's own ``min_weight``), a repetition cap (``w_i * total_samples`` may not
exceed ``max_epochs`` passes over domain i's available samples), and a trust region (at most ``max_l1``, L1,
from the nearest run). It averages the ``top_k`` best predicted (RegMix's top-k average) rather than one
argmax: a quadratic's argmax over the whole simplex sits at its edges, outside the swarm's support, and lands
below the best run (issue 19). When the predicted gain over the best observed run is within its held-out
error (the spread over the K fold fits), the proposal falls back (``Proposal.fallback``) to the midpoint of
that run and the search's mixture when the midpoint lies inside the constraints, else to the run itself, and
:func:`proposal_lines` says so next to the predicted score ± its held-out RMSE. The midpoint: on the planted
surfaces of ``benchmarks/swarm_proposal.py`` the search's mixture beats the best run in every cell even when
the fit cannot show it, and half the step keeps most of that gain (median regret 0.6-1.3 points against the
run's 1.6-1.8) while staying between two mixtures the fit has support for. ``benchmarks/swarm_proposal.py`` measures the regret on planted
surfaces. :func:`proposal_yaml` writes the proposal as a data config fragment (``data.total_samples`` and
``data.sources.<name>.weight``).

A prediction is not a result: given the sweep, :func:`fit_and_propose` also writes ``confirm.yaml``
(:func:`confirm_sweep`), a ready-to-submit sweep of the base and the proposed mixture at >= 5 training seeds
under the swarm's budget rule and evaluation settings, and :func:`confirm_commands` gives the
``biotune sweep submit`` / ``biotune sweep run --local`` lines that run it (nothing is queued on its own).
:func:`write_olmix_csvs` exports ``ratios.csv`` (``run`` + one column per domain weight) and ``metrics.csv``
(``run`` + one column per metric), the files ``olmix fit`` reads.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import logging
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from biotune.errors import ConfigError, Problem
from biotune.io import atomic_write_text
from biotune.sources.splits import SplitRole, parse_set_label, role_of
from biotune.sweep import spec as sp
from biotune.sweep.fidelity import ALL, TARGET
from biotune.sweep.regression import SetFit, Swarm, fit_swarm
from biotune.sweep.results import CellResult, Results

log = logging.getLogger(__name__)

#: The role of the splits a fit selects on (every spelling: ``devel``, ``dev``, ``validation``).
SELECTION = SplitRole.SELECTION
#: Training seeds of a confirmation sweep when the swarm's sweep has fewer than five (a 3-seed comparison
#: is itself liberal: seed variance is estimated from too few seeds).
CONFIRM_SEEDS = (0, 1, 2, 3, 4)
#: The fit settings of a swarm axis written without them (the defaults live in :class:`spec.SwarmAxis`).
_DEFAULTS = sp.SwarmAxis()
#: The proposal's mixture name in ``confirm.yaml`` (its variant is ``mix-proposed``).
PROPOSED = "proposed"
CONFIRM_FILE = "confirm.yaml"
_TOL = 1e-9


# ------------------------------------------------------------------------------------------- swarm data


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


# ------------------------------------------------------------------------------------------- proposal


@dataclass
class Constraints:
    """Where on the simplex a proposal may lie: the trust region around the swarm's runs, and the data's limits."""

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
    """Maximum L1 distance from the nearest swarm run (2 or None = anywhere on the simplex)."""

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

    def feasible(self, w: np.ndarray, domains: Sequence[str], runs: np.ndarray | None = None) -> np.ndarray:
        """(n,) whether each row of ``w`` (n, domains) satisfies every constraint (the trust region around
        ``runs`` (runs, domains) included when both it and ``max_l1`` are given)."""
        lower, upper = self.bounds(domains)
        ok = np.all(w >= lower - _TOL, axis=1) & np.all(w <= upper + _TOL, axis=1)
        if self.max_l1 is not None and runs is not None:
            ok &= _nearest(w, runs)[1] <= self.max_l1 + _TOL
        return ok


def _nearest(w: np.ndarray, runs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each row of ``w``: the index of the nearest run and its L1 distance."""
    dist = np.abs(w[:, None, :] - runs[None, :, :]).sum(axis=2)
    idx = np.argmin(dist, axis=1)
    return idx, dist[np.arange(len(w)), idx]


@dataclass
class Proposal:
    """The proposed mixture, what the fits predict for it, and the best observed run it is set against."""

    weights: dict[str, float]
    """Domain -> weight (sums to 1)."""
    predicted: dict[str, float]
    """Dev set -> predicted score (percent)."""
    objective: float
    """Predicted weighted objective of the proposal."""
    error: float
    """Held-out RMSE of the fitted objective over the runs (K-fold): the uncertainty of ``objective`` and of
    ``gain`` as predictions of an observed score."""
    n_runs: int
    best_run: str
    """The observed run with the highest objective among those inside the constraints."""
    best_observed: float
    """Its observed objective (mean over its training seeds)."""
    best_predicted: float
    """The fit's prediction for ``best_run`` (free of the winner's curse of ``best_observed``)."""
    gain: float
    """Predicted gain of the search's top-k mixture over ``best_run`` (both predicted by the same fit)."""
    gain_se: float
    """Held-out standard error of ``gain``: grouped jackknife over the K fold fits, each without one fold."""
    fallback: bool
    """True when ``gain`` was within ``gain_se``: the proposal is then the midpoint of ``best_run`` and the
    search's mixture (``blend``), or ``best_run``'s own mixture when the midpoint breaks a constraint."""
    blend: bool
    searched: dict[str, float]
    """The search's mixture (the top-k mean): ``weights`` unless the proposal fell back."""
    base_objective: float | None
    """Predicted objective of the base mixture (same fits), when known."""
    objective_weights: dict[str, float]
    nearest_run: str
    nearest_l1: float
    """L1 distance to the closest swarm run (0 for a fallback to the run itself)."""
    total_samples: int | None
    model: str
    """The fit's model setting (``auto`` or one regression); per set see ``models``."""
    models: dict[str, str] = field(default_factory=dict)
    """Dev set -> the regression fitted."""
    top_k: int = 1
    """Candidates averaged into the search's mixture."""


def _describe(models: set[str]) -> str:
    return next(iter(models)) if len(models) == 1 else "per set"


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


def _combine(weights: Mapping[str, float], per_set: Mapping[str, np.ndarray]) -> np.ndarray:
    """The weighted objective from per-set arrays."""
    return sum(weights[s] * per_set[s] for s in weights) / sum(weights.values())  # type: ignore[return-value]


def _predict(fits: Mapping[str, SetFit], weights: Mapping[str, float], w: np.ndarray) -> np.ndarray:
    return _combine(weights, {s: fits[s].estimator.predict(w) for s in weights})


def _search_points(
    runs: np.ndarray, lower: np.ndarray, max_l1: float | None, n: int, rng: np.random.Generator
) -> np.ndarray:
    """Seeded candidates: uniform above the floor or, with a trust region, moves from a random run toward such
    a point, each at most a random radius <= ``max_l1`` (the run itself included)."""
    d = runs.shape[1]
    toward = lower + (1.0 - lower.sum()) * rng.dirichlet(np.ones(d), n)
    if max_l1 is None or max_l1 >= 2:
        return np.vstack([runs, toward])
    start = runs[rng.integers(len(runs), size=n)]
    dist = np.abs(toward - start).sum(axis=1)
    radius = max_l1 * rng.uniform(size=n) ** (1.0 / max(d - 1, 1))
    t = np.minimum(1.0, radius / np.maximum(dist, _TOL))
    return np.vstack([runs, start + t[:, None] * (toward - start)])


def _top_k_mean(
    cand: np.ndarray,
    scores: np.ndarray,
    top_k: int,
    runs: np.ndarray,
    constraints: Constraints,
    domains: list[str],
) -> np.ndarray:
    """The mean of the ``top_k`` best candidates, pulled back into the trust region toward its nearest run
    when the mean left it (the union of L1 balls is not convex); the best single candidate if still outside."""
    top = cand[np.argsort(scores)[::-1][: max(1, top_k)]]
    w = top.mean(axis=0)
    if constraints.max_l1 is not None and not constraints.feasible(w[None, :], domains, runs)[0]:
        j, dist = _nearest(w[None, :], runs)
        w = runs[j[0]] + min(1.0, constraints.max_l1 / dist[0]) * (w - runs[j[0]])
    return w if constraints.feasible(w[None, :], domains, runs)[0] else top[0]


def _gain(
    fits: Mapping[str, SetFit], weights: Mapping[str, float], w: np.ndarray, run: np.ndarray
) -> tuple[float, float]:
    """The predicted gain of ``w`` over ``run`` and its grouped-jackknife standard error over the K fold fits
    (``(K - 1) / K * sum_k (gain_k - mean)^2``; each fold fit has left one fold of runs out)."""
    points = np.vstack([w, run])
    full = _predict(fits, weights, points)
    k = min(len(f.folds) for f in fits.values())
    per_fold = np.array(
        [_combine(weights, {s: fits[s].folds[i].predict(points) for s in weights}) for i in range(k)]
    )
    diffs = per_fold[:, 0] - per_fold[:, 1]
    se = float(np.sqrt((k - 1) / k * np.sum((diffs - diffs.mean()) ** 2))) if k > 1 else float("inf")
    return float(full[0] - full[1]), se


def propose(
    swarm: Swarm,
    fits: Mapping[str, SetFit],
    *,
    objective: Mapping[str, float] | None = None,
    constraints: Constraints | None = None,
    top_k: int = 100,
    n_candidates: int = 20000,
    seed: int = 0,
) -> Proposal:
    """A mixture inside the trust region that the fits predict maximises ``objective`` (dev set -> weight;
    default: all dev sets equally), or the best observed run when the fit cannot tell them apart.

    The search samples ``n_candidates`` seeded mixtures inside ``constraints`` (the floor, the repetition caps,
    at most ``max_l1`` from the nearest run) and averages the ``top_k`` best predicted (RegMix averages its
    top 100 rather than trusting one argmax of a noisy fit). If that mixture's predicted gain over the best
    observed run (both predicted by the fit) is not larger than the gain's held-out standard error (the
    spread of the gain over the K fold fits, each without one fold of runs), the proposal is that run's own
    mixture (``fallback``): the fit cannot promise better than what was already measured. ``error`` (the
    held-out RMSE of the objective) is the uncertainty of the predicted score itself.

    Raises:
        ConfigError: an objective naming a test or unknown set, or constraints no mixture satisfies.
    """
    constraints = constraints or Constraints()
    weights = _objective_weights(swarm, objective)
    domains = swarm.domains
    lower, upper = constraints.bounds(domains)
    _check_satisfiable(lower, upper, domains)
    rng = np.random.default_rng(seed)
    runs = swarm.weights
    cand = _search_points(runs, lower, constraints.max_l1, n_candidates, rng)
    ok = constraints.feasible(cand, domains, runs)
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
    searched = _top_k_mean(cand[ok], _predict(fits, weights, cand[ok]), top_k, runs, constraints, domains)
    observed = _combine(weights, swarm.metrics)
    error = float(
        np.sqrt(np.mean((observed - _combine(weights, {s: f.held_out for s, f in fits.items()})) ** 2))
    )
    inside = constraints.feasible(runs, domains, runs)
    best = (
        int(np.flatnonzero(inside)[np.argmax(observed[inside])]) if inside.any() else int(np.argmax(observed))
    )
    gain, gain_se = _gain(fits, weights, searched, runs[best])
    fallback = bool(inside.any()) and gain <= gain_se
    midpoint = (runs[best] + searched) / 2.0
    blend = fallback and bool(constraints.feasible(midpoint[None, :], domains, runs)[0])
    chosen = (midpoint if blend else runs[best]) if fallback else searched
    if fallback:
        log.info(
            "fit: predicted gain %+.2f is within its held-out error %.2f: proposing %s run %s",
            gain,
            gain_se,
            "the midpoint of the search's mixture and" if blend else "",
            swarm.runs[best],
        )
    nearest, dist = _nearest(chosen[None, :], runs)
    base = constraints.base_vector(domains)
    return Proposal(
        weights={dom: float(v) for dom, v in zip(domains, chosen, strict=True)},
        predicted={s: float(f.estimator.predict(chosen[None, :])[0]) for s, f in fits.items()},
        objective=float(_predict(fits, weights, chosen[None, :])[0]),
        error=error,
        n_runs=len(runs),
        best_run=swarm.runs[best],
        best_observed=float(observed[best]),
        best_predicted=float(_predict(fits, weights, runs[best][None, :])[0]),
        gain=gain,
        gain_se=gain_se,
        fallback=fallback,
        blend=blend,
        searched={dom: float(v) for dom, v in zip(domains, searched, strict=True)},
        base_objective=None if base is None else float(_predict(fits, weights, base[None, :])[0]),
        objective_weights=weights,
        nearest_run=swarm.runs[int(nearest[0])],
        nearest_l1=float(dist[0]),
        total_samples=constraints.total_samples,
        model=_describe({f.model for f in fits.values()}),
        models={s: f.model for s, f in fits.items()},
        top_k=top_k,
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


def proposal_lines(proposal: Proposal) -> list[str]:
    """What the fit predicts for the proposal, its uncertainty and n, next to the best observed run's score;
    and whether the proposal fell back to that run (the lines ``proposal.yaml`` and ``sweep collect`` print)."""
    p = proposal
    models = ", ".join(f"{s} {m}" for s, m in p.models.items())
    lines = [
        f"Predicted objective {p.objective:.2f} ± {p.error:.2f} (held-out RMSE over n = {p.n_runs} runs; "
        f"models: {models}); best observed run {p.best_run}: {p.best_observed:.2f} observed, "
        f"{p.best_predicted:.2f} predicted.",
    ]
    gain = f"{p.gain:+.2f} ± {p.gain_se:.2f} (held-out SE over the fold fits, n = {p.n_runs} runs)"
    if p.fallback:
        chosen = (
            f"the midpoint of run {p.best_run} and the search's mixture (at L1 {p.nearest_l1:.2f} from run "
            f"{p.nearest_run})"
            if p.blend
            else f"run {p.best_run} itself"
        )
        lines.append(
            f"The search's mixture (top {p.top_k} averaged) predicts {gain} over the best observed run: "
            f"within its error, so the proposal is {chosen} (the search's mixture: fit.json)."
        )
    else:
        lines.append(
            f"Predicted gain over the best observed run {gain}; mean of the top {p.top_k} candidates; "
            f"nearest run {p.nearest_run} at L1 {p.nearest_l1:.2f}."
        )
    if p.base_objective is not None:
        lines.append(f"The base's predicted objective: {p.base_objective:.2f} ± {p.error:.2f}.")
    return lines


def proposal_yaml(proposal: Proposal, weights: Mapping[str, float]) -> str:
    """The proposal as a data config fragment, with a header comment of what the fits predict."""
    data: dict[str, Any] = {}
    if proposal.total_samples:
        data["total_samples"] = int(proposal.total_samples)
    data["sources"] = {s: {"weight": w} for s, w in _rounded(weights).items()}
    head = [
        f"# Proposed by biotune sweep fit ({proposal.model} regression on dev sets).",
        f"# Objective (dev-set weights): {json.dumps(proposal.objective_weights)}",
        *(f"# {line}" for line in proposal_lines(proposal)),
        f"# Train it with the base at >= {len(CONFIRM_SEEDS)} seeds before trusting the prediction; "
        "report test splits at the end.",
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

    Same base config and overrides as ``spec`` (those of the command line included), and in a sweep with
    fidelities those of its target fidelity (a swarm fitted at a proxy is confirmed at the target), one ``mixtures`` axis
    holding the proposal's per-source ``weights`` under the budget rule the swarm's runs had (the proposed
    variant holds what the fitted runs held), and the base, which every sweep has. Training seeds: the sweep's
    own when it has at least five, else :data:`CONFIRM_SEEDS`. Evaluation: the base's settings, with the
    selection split added to ``eval.splits`` when it is missing. Keep policy and ``min_effect``: the sweep's.
    """
    seeds = list(spec.seeds) if len(spec.seeds) >= len(CONFIRM_SEEDS) else list(CONFIRM_SEEDS)
    target = spec.fidelities.get(TARGET)
    overrides = [*spec.overrides, *(target.overrides if target else ())]
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
    fidelity: str = ""
    """The fidelity whose results were fitted (:func:`fit_fidelity`); empty in a sweep without fidelities."""


def axis_options(axis: sp.SwarmAxis) -> dict[str, Any]:
    """:func:`fit_and_propose`'s keyword arguments for a swarm axis of a sweep file (its fit keys, with
    ``min_share`` defaulting to the axis's ``min_weight``)."""
    return {
        "axis": axis.type,
        "level": axis.over,
        "seed": axis.seed,
        "model": axis.model,
        "min_share": axis.min_weight if axis.min_share is None else axis.min_share,
        "max_l1": axis.max_l1,
        "top_k": axis.top_k,
    }


def fit_and_propose(
    results: Results,
    out_dir: str | Path,
    *,
    axis: str | None = None,
    level: str = "source",
    model: str = _DEFAULTS.model,
    objective: Mapping[str, float] | None = None,
    min_share: float | Mapping[str, float] | None = None,
    max_epochs: float | None = None,
    max_l1: float | None = _DEFAULTS.max_l1,
    top_k: int = _DEFAULTS.top_k,
    seed: int = 0,
    spec: sp.SweepSpec | None = None,
) -> FitReport:
    """Fit the swarm of ``axis`` on dev sets, propose a mixture, and write ``ratios.csv``, ``metrics.csv``,
    ``fit.json`` (per set: model, held-out Spearman, R², RMSE, runs, parameters; the proposal against the best
    observed run) and ``proposal.yaml`` into ``out_dir``; given the swarm's sweep ``spec``, also
    ``confirm.yaml`` (:func:`confirm_sweep`).

    The defaults of ``model``, ``max_l1`` and ``top_k`` are those of :class:`spec.SwarmAxis`
    (:func:`axis_options` maps an axis to these arguments). ``min_share=None`` floors each share at the
    smallest share any run of the swarm has (the swarm's support); ``max_l1=None`` lifts the trust region.

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
    floor = float(swarm.weights.min()) if min_share is None else min_share
    constraints = Constraints.from_base(
        base_cell, level=level, min_share=floor, max_epochs=max_epochs, max_l1=max_l1
    )
    proposal = propose(swarm, fits, objective=objective, constraints=constraints, top_k=top_k, seed=seed)
    ratios, metrics = write_olmix_csvs(swarm, out)
    summary = {
        "model": model,
        "level": level,
        "axis": axis,
        "runs": len(swarm.runs),
        "domains": swarm.domains,
        "trust_region": {"min_share": floor, "max_l1": max_l1, "top_k": top_k},
        "sets": {
            s: {
                "model": f.model,
                "spearman": _finite(f.spearman),
                "r2": _finite(f.r2),
                "rmse": _finite(f.rmse),
                "held_out_rmse": {m: _finite(e) for m, e in f.errors.items()},
                "n_runs": f.n_runs,
                "n_params": f.n_params,
            }
            for s, f in fits.items()
        },
        "proposal": {
            "weights": proposal.weights,
            "predicted": proposal.predicted,
            "objective": proposal.objective,
            "error": proposal.error,
            "best_run": proposal.best_run,
            "best_observed": proposal.best_observed,
            "best_predicted": proposal.best_predicted,
            "gain": proposal.gain,
            "gain_se": proposal.gain_se,
            "fallback": proposal.fallback,
            "blend": proposal.blend,
            "searched": proposal.searched,
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


def fit_fidelity(spec: sp.SweepSpec, results: Results) -> str:
    """The fidelity a sweep's swarms are fitted at: the first proxy (in the sweep file's order) that runs every
    variant and has results, else the target; empty in a sweep without fidelities."""
    if not results.fidelities:
        return ""
    for name, fidelity in spec.fidelities.items():
        if not fidelity.is_target and fidelity.variants == ALL and name in results.fidelities:
            return name
    return TARGET if TARGET in results.fidelities else next(iter(results.fidelities))


def fit_swarm_axes(spec: sp.SweepSpec, results: Results, out_dir: str | Path) -> list[tuple[int, FitReport]]:
    """Fit and propose for every swarm axis of ``spec`` with ``fit: true``, each into ``out_dir/fit-<index>``.

    In a sweep with fidelities the fit uses the results of :func:`fit_fidelity` (the proxy that ran every
    variant), and ``confirm.yaml`` runs the proposal at the target fidelity (:func:`confirm_sweep`).
    """
    fidelity = fit_fidelity(spec, results)
    fitted = results.fidelities[fidelity] if fidelity else results
    return [
        (
            i,
            dataclasses.replace(
                fit_and_propose(fitted, Path(out_dir) / f"fit-{i}", spec=spec, **axis_options(axis)),
                fidelity=fidelity,
            ),
        )
        for i, axis in enumerate(spec.axes)
        if isinstance(axis, sp.SwarmAxis) and axis.fit
    ]


def fit_summary(index: int, report: FitReport) -> list[str]:
    """What a swarm's fit found, where the proposal is, and the commands that confirm it (never run here): the
    lines ``sweep collect`` prints."""
    p = report.proposal
    held_out = ", ".join(f"{s} {f.spearman:.2f}" for s, f in report.fits.items())
    seeds = len(report.confirm["seeds"]) if report.confirm else 0
    return [
        f"fit of axis {index} ({p.model}, {len(report.swarm.runs)} runs over {len(report.swarm.domains)} "
        f"domains): held-out Spearman {held_out}",
        *proposal_lines(p),
        f"proposal: {report.paths['proposal']}",
        f"confirm it against the base at {seeds} seeds ({2 * seeds} cells)"
        + (f", at the {TARGET} fidelity (fitted at {report.fidelity})" if report.fidelity else "")
        + ", on SLURM or on this machine:",
        *(f"  {line}" for line in confirm_commands(report.paths["confirm"])),
    ]

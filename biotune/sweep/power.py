"""Power of a sweep's paired comparisons: the detectable effect, the power at a planned effect, the seeds needed.

The one owner of the formula that ``biotune sweep plan`` prints. ``collect`` tests Δ = variant − base on one
eval set with a t reference: Δ ± t·SE, where

    SE² = σ²_d / n_units + s²_seed (1 / m_base + 1 / m_variant)

* ``n_units``: the set's resampling units (documents for NER and RE where the record names its document, else
  examples: :meth:`biotune.data.tasks.base.Task.unit`), what the paired bootstrap resamples.
* ``σ²_d``: the per-unit variance of the paired difference (the bootstrap variance of Δ times ``n_units``).
  Measured from an earlier sweep's per-example predictions (:func:`estimate_set`), or, without one, from a
  score level ``p`` per task kind, a correlation ``ρ`` between the errors of two variants of one base and the
  set's scored items per unit ``k`` (gold entities, relations or labels for F1 sets, read from the eval data):
  ``σ²_d = 2 p (1 − p) (1 − ρ) / k``, every item an independent 0/1 outcome (:func:`default_paired_variance`).
  Errors cluster within documents, so this default understates σ²_d for document units; measure it with
  ``sweep plan --pilot`` once an earlier sweep's base has been evaluated.
* ``s_seed``: the training seed-to-seed standard deviation of a set's score, ``power.seed_sd`` in the sweep
  file or measured from an earlier sweep's per-seed scores. It enters unshrunk, each term with ``m − 1``
  degrees of freedom; the unit term has ``n_units − 1``. The test's degrees of freedom are
  Welch–Satterthwaite's (Dror et al. 2018; Dodge et al. 2020; Bouthillier et al. 2021).

With one seed on either arm the seed variance is not measured: the test (and this power) is conditional on the
trained models: "do these two models differ on this population", not "does the recipe differ", and the seed
term is left out.

Power of the two-sided level-α test at a true effect δ: T = Δ / SE follows a noncentral t with
``df`` degrees of freedom and noncentrality δ / SE, so ``power = P(|T| > t_{1−α/2, df})``
(:func:`power_at`). The detectable effect is the δ with 80% power (:func:`detectable_effect`; ≈ 2.80 SE for
large df), and :func:`seeds_for_power` the fewest seeds per arm that reach it. Every number is a proportion
(0.02 = 2 points). ``tests/unit/sweep/test_power.py`` checks them against simulated sweeps.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.optimize
import scipy.stats

from biotune.errors import Problem
from biotune.sweep import stats as st

#: Power a sweep is planned for.
TARGET_POWER = 0.8
#: The most seeds per arm :func:`seeds_for_power` considers.
MAX_SEEDS = 100

#: Training seed-to-seed sd of a fine-tuned model's score (a proportion). Dodge et al. (2020, "Fine-tuning
#: pretrained language models: weight initializations, data orders, and early stopping") show seed-to-seed
#: variation of a point or more when fine-tuning BERT on GLUE tasks; issue 19 simulates 0.5-1.5 points.
DEFAULT_SEED_SD = 0.01
#: Correlation between the per-unit errors of two fine-tuned variants of one base, when no earlier sweep
#: measures it. A planning assumption, not a measurement: issue 19's simulation of an NCBI-sized set found a
#: detectable effect of 0.76 points with correlated errors against 1.36 with independent ones, i.e.
#: 1 − ρ ≈ (0.76 / 1.36)² → ρ ≈ 0.7. Measure it with ``sweep plan --pilot EARLIER_SWEEP_DIR``.
DEFAULT_CORRELATION = 0.7
#: Score level per task kind when no earlier sweep measures it: the reference recipe's scores (DESIGN.md,
#: Llama2-MedTuned and BLURB: NER entity F1 ~0.85, RE ~0.75-0.8, NLI ~0.85, HoC ~0.8, PubMedQA ~0.6-0.7).
DEFAULT_SCORE: dict[str, float] = {"ner": 0.85, "re": 0.8, "nli": 0.85, "cls": 0.8, "qa": 0.65}
#: Score level of a kind not in :data:`DEFAULT_SCORE`: the worst case for a 0/1 outcome.
FALLBACK_SCORE = 0.5


@dataclass
class PowerSettings:
    """The sweep file's ``power`` block: what ``sweep plan`` assumes where no earlier sweep measures it."""

    seed_sd: float = DEFAULT_SEED_SD
    """Training seed-to-seed sd of a set's score, a proportion (0.01 = 1 point; Dodge et al. 2020)."""
    correlation: float = DEFAULT_CORRELATION
    """Correlation of the per-unit errors of two variants of one base, in [0, 1) (a planning default)."""


def check_settings(settings: PowerSettings, problems: list[Problem], prefix: str = "power.") -> None:
    """Append a problem for each bad ``power`` value (NaN, infinite, negative, out of range), naming the fix."""
    sd = settings.seed_sd
    if not (math.isfinite(sd) and 0.0 <= sd < 1.0):
        problems.append(
            Problem(
                f"{prefix}seed_sd",
                f"must be a finite proportion in [0, 1), got {sd}",
                f"use e.g. {prefix}seed_sd: {DEFAULT_SEED_SD} (1 point), or measure it with --pilot",
            )
        )
    rho = settings.correlation
    if not (math.isfinite(rho) and 0.0 <= rho < 1.0):
        problems.append(
            Problem(
                f"{prefix}correlation",
                f"must be in [0, 1), got {rho}",
                f"use e.g. {prefix}correlation: {DEFAULT_CORRELATION}, or measure it with --pilot",
            )
        )


# ----------------------------------------------------------------------------------------------- formula


def default_paired_variance(score: float, correlation: float, items_per_unit: float = 1.0) -> float:
    """σ²_d = 2 p (1 − p) (1 − ρ) / k: per-unit variance of the paired difference when each unit holds ``k``
    scored items (gold entities, relations or labels for an F1 set; 1 for an example), each one independent
    0/1 outcome at the score level ``p`` (so that a model's score has variance p (1 − p) / items)."""
    return 2.0 * score * (1.0 - score) * (1.0 - correlation) / max(items_per_unit, 1e-12)


def scored_items(reducer: str, perfect: Mapping[str, float]) -> float:
    """How many outcomes an example contributes to its set's score, from its statistics against itself
    (``task.example_stats(gold, gold)``): gold items (``tp + fn``) for ``f1``, else ``n``."""
    return float(perfect["tp"] + perfect["fn"]) if reducer == "f1" else float(perfect["n"])


def _conditional(m_base: int, m_variant: int) -> bool:
    return min(m_base, m_variant) < 2


def standard_error(n_units: int, paired_var: float, seed_sd: float, m_base: int, m_variant: int) -> float:
    """SE of Δ (module docstring); with one seed on either arm, the unit term alone (conditional)."""
    if n_units < 1:
        return math.inf
    var = paired_var / n_units
    if not _conditional(m_base, m_variant):
        var += seed_sd**2 * (1.0 / m_base + 1.0 / m_variant)
    return math.sqrt(var)


def degrees_of_freedom(n_units: int, paired_var: float, seed_sd: float, m_base: int, m_variant: int) -> float:
    """Welch–Satterthwaite df of SE²: unit term with ``n_units − 1``, each seed term with ``m − 1``."""
    terms = [(paired_var / n_units, n_units - 1)]
    if not _conditional(m_base, m_variant):
        terms += [(seed_sd**2 / m_base, m_base - 1), (seed_sd**2 / m_variant, m_variant - 1)]
    total = sum(v for v, _ in terms)
    denom = sum(v * v / df for v, df in terms if df > 0 and v > 0)
    return total * total / denom if denom > 0 else math.inf


def power_at(
    effect: float,
    n_units: int,
    paired_var: float,
    seed_sd: float = DEFAULT_SEED_SD,
    m_base: int = 3,
    m_variant: int = 3,
    alpha: float = st.ALPHA,
) -> float:
    """Probability that the two-sided level-``alpha`` t test finds a true difference ``effect`` (a proportion)."""
    if n_units < 2:
        return alpha if effect == 0 else 0.0
    se = standard_error(n_units, paired_var, seed_sd, m_base, m_variant)
    df = degrees_of_freedom(n_units, paired_var, seed_sd, m_base, m_variant)
    if se == 0.0:
        return 1.0 if effect != 0 else alpha
    crit = float(scipy.stats.t.ppf(1.0 - alpha / 2.0, df))
    ncp = abs(effect) / se
    if math.isinf(df):
        return float(scipy.stats.norm.sf(crit - ncp) + scipy.stats.norm.cdf(-crit - ncp))
    return float(scipy.stats.nct.sf(crit, df, ncp) + scipy.stats.nct.cdf(-crit, df, ncp))


def detectable_effect(
    n_units: int,
    paired_var: float,
    seed_sd: float = DEFAULT_SEED_SD,
    m_base: int = 3,
    m_variant: int = 3,
    power: float = TARGET_POWER,
    alpha: float = st.ALPHA,
) -> float:
    """The true difference (a proportion) the test detects with probability ``power``; inf with < 2 units."""
    if n_units < 2:
        return math.inf
    se = standard_error(n_units, paired_var, seed_sd, m_base, m_variant)
    if se == 0.0:
        return 0.0

    def gap(d: float) -> float:
        return power_at(d, n_units, paired_var, seed_sd, m_base, m_variant, alpha) - power

    hi = 4.0 * se
    while gap(hi) < 0:
        hi *= 2.0
    return float(scipy.optimize.brentq(gap, 0.0, hi, xtol=se * 1e-6))


def seeds_for_power(
    effect: float,
    n_units: int,
    paired_var: float,
    seed_sd: float = DEFAULT_SEED_SD,
    target: float = TARGET_POWER,
    alpha: float = st.ALPHA,
    max_seeds: int = MAX_SEEDS,
) -> int | None:
    """The fewest seeds per arm (at least 2, so that the seed variance is measured) with power ≥ ``target``
    at ``effect``; None when even ``max_seeds`` fall short (the set itself is too small for the effect)."""
    for m in range(2, max_seeds + 1):
        if power_at(effect, n_units, paired_var, seed_sd, m, m, alpha) >= target:
            return m
    return None


# ----------------------------------------------------------------------------------------------- per set


@dataclass(frozen=True)
class SetEstimate:
    """What an earlier sweep measured on one eval set (all proportions)."""

    eval_set: str
    n_units: int
    score: float
    """The base's score, averaged over its seeds."""
    unit_var: float
    """Per-unit variance of the base's score (its bootstrap variance times ``n_units``)."""
    paired_var: float | None
    """Per-unit variance of Δ, averaged over the variants with predictions (seed by seed); None without any."""
    correlation: float | None
    """Correlation of base and variant bootstrap replicates, averaged over the variants; None without any."""
    seed_sd: float | None
    """Pooled seed-to-seed sd over the arms with ≥ 2 seeds; None when every arm has one seed."""
    seed_df: int
    """Degrees of freedom behind ``seed_sd`` (Σ (m − 1) over the arms)."""


def estimate_set(
    eval_set: str,
    base: Sequence[st.ExampleStats],
    variants: Mapping[str, Sequence[st.ExampleStats]],
    n_boot: int = 1000,
    seed: int = 0,
) -> SetEstimate:
    """Measure σ²_d, ρ and the seed sd of one eval set from an earlier sweep's predictions files.

    ``base`` and each variant hold one :class:`~biotune.sweep.stats.ExampleStats` per training seed. The unit
    variances come from the same paired bootstrap ``collect`` runs (one seed against one seed, so that seed
    noise does not enter them); the seed sd pools ``var(seed scores)`` over every arm with ≥ 2 seeds.
    """
    if not base:
        raise ValueError(f"{eval_set}: no base predictions")
    ref = base[0]
    codes, n_units = st.unit_codes(ref.units)
    arms: dict[str, list[np.ndarray]] = {
        "": [st.unit_sums(st.align(ref, e).stats, codes, n_units) for e in base]
    }
    for name, exs in variants.items():
        if exs:
            arms[name] = [st.unit_sums(st.align(ref, e).stats, codes, n_units) for e in exs]
    resamples = st.Resamples.draw(eval_set, n_units, n_boot, seed)
    first = {name: sums[0][None] for name, sums in arms.items()}
    reps = {n: a.replicates for n, a in st.score_arms(resamples, ref.reducer, ref.stat_names, first).items()}
    base_reps = reps.pop("")
    paired = [n_units * float(np.var(r - base_reps, ddof=1)) for r in reps.values()]
    corr = [
        float(np.corrcoef(r, base_reps)[0, 1])
        for r in reps.values()
        if np.std(r) > 0 and np.std(base_reps) > 0
    ]
    ss, df = 0.0, 0
    for sums in arms.values():
        if len(sums) > 1:
            scores = st.headline(ref.reducer, ref.stat_names, np.stack([s.sum(axis=0) for s in sums]))
            ss += float(np.var(scores, ddof=1)) * (len(sums) - 1)
            df += len(sums) - 1
    base_scores = st.headline(ref.reducer, ref.stat_names, np.stack([s.sum(axis=0) for s in arms[""]]))
    return SetEstimate(
        eval_set,
        n_units,
        float(np.mean(base_scores)),
        n_units * float(np.var(base_reps, ddof=1)),
        float(np.mean(paired)) if paired else None,
        float(np.mean(corr)) if corr else None,
        math.sqrt(ss / df) if df else None,
        df,
    )


@dataclass(frozen=True)
class SetPower:
    """The power of one eval set's comparisons in a planned sweep (all effects are proportions)."""

    eval_set: str
    n_units: int
    m_base: int
    m_variant: int
    score: float
    paired_var: float
    seed_sd: float
    origin: str
    """Where σ²_d and the seed sd came from: ``default`` or ``pilot`` (each), e.g. ``σ²_d pilot, seed sd default``."""
    effect: float
    """The planned effect (``min_effect``)."""
    detectable: float
    """Detectable effect at 80% power with the planned seeds."""
    power: float
    """Power at ``effect`` with the planned seeds."""
    seeds_needed: int | None
    """Seeds per arm for 80% power at ``effect``; None when no seed count reaches it."""

    @property
    def conditional(self) -> bool:
        """One seed on an arm: the test is about the trained models, not the recipe."""
        return _conditional(self.m_base, self.m_variant)


def plan_set(
    eval_set: str,
    n_units: int,
    kind: str,
    settings: PowerSettings,
    effect: float,
    m_base: int,
    m_variant: int,
    pilot: SetEstimate | None = None,
    n_items: float | None = None,
) -> SetPower:
    """The power of ``eval_set`` under the sweep's settings, using what ``pilot`` measured where it did.

    σ²_d: the pilot's paired variance, else ``2 σ²_unit (1 − ρ)`` with the pilot's unit variance, else
    :func:`default_paired_variance` at :data:`DEFAULT_SCORE` of the set's task ``kind`` with ``n_items``
    scored items over the ``n_units`` (default: one per unit). Seed sd: the pilot's when it had arms with ≥ 2
    seeds, else ``settings.seed_sd``.
    """
    if pilot is not None and pilot.paired_var is not None:
        score, paired_var, var_from = pilot.score, pilot.paired_var, "pilot"
    elif pilot is not None:
        score, paired_var, var_from = pilot.score, 2 * pilot.unit_var * (1 - settings.correlation), "pilot+ρ"
    else:
        score = DEFAULT_SCORE.get(kind, FALLBACK_SCORE)
        per_unit = n_items / n_units if n_items and n_units else 1.0
        paired_var, var_from = default_paired_variance(score, settings.correlation, per_unit), "default"
    if pilot is not None and pilot.seed_sd is not None:
        seed_sd, sd_from = pilot.seed_sd, "pilot"
    else:
        seed_sd, sd_from = settings.seed_sd, "default"
    args = (n_units, paired_var, seed_sd)
    return SetPower(
        eval_set,
        n_units,
        m_base,
        m_variant,
        score,
        paired_var,
        seed_sd,
        f"σ²_d {var_from}, seed sd {sd_from}",
        effect,
        detectable_effect(*args, m_base, m_variant),
        power_at(effect, *args, m_base, m_variant),
        seeds_for_power(effect, *args),
    )

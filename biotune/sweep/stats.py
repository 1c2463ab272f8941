"""Paired bootstrap over resampling units, and multiple-testing corrections, for sweep comparisons.

The method (Koehn 2004; Berg-Kirkpatrick et al. 2012), exactly as :func:`paired_bootstrap` and ``collect`` run it:

* Every example of an eval set carries additive sufficient statistics (``stats``: ``tp/fp/fn``,
  ``correct/n``, ``value/n``) and a resampling unit (its document for NER and RE, else the example itself).
  The headline of any multiset of examples is ``metric_from_stats(reducer, summed stats)``: entity F1 is
  recomputed from summed counts on every resample, never averaged over examples.
* Examples are summed per unit into a (units x stats) matrix. A resample draws ``n_units`` units with
  replacement; ``B`` resamples form a (B x units) count matrix, and the summed statistics of every resample of
  every arm are ONE matrix product. Units are numbered in order of first appearance in the base's file.
* Paired: the base and every variant are scored on the SAME count matrix, and Δ_b = variant_b − base_b.
  The resamples of a set are drawn from ``set_rng(seed, eval_set)``, so all variants of a sweep share them and
  a result does not depend on which other variants were collected.
* One seed per arm (the conditional case below): 95% CI = the 2.5 and 97.5 percentiles of Δ_b (percentile
  method); two-sided p ``2 Φ(−|Δ| / sd(Δ_b))`` (normal approximation with the bootstrap standard error),
  because the share of replicates beyond 0, ``min(1, 2 * min(#{Δ_b <= 0} + 1, #{Δ_b >= 0} + 1) / (B + 1))``,
  cannot go below 2 / (B + 1) and so could never survive a Holm correction over a sweep-sized table. The
  share is kept as ``p_empirical`` for every row.
* Training seeds are a random factor (Dror et al. 2018; Dodge et al. 2020; Bouthillier et al. 2021): a
  data recipe is judged by models trained from it, and two seeds of one recipe differ by about as much as
  small recipe changes do. Each arm's replicate of a resample is the plain MEAN over ALL its m seeds (seeds
  are not resampled), so the sd of the Δ replicates, ``se_units``, is the test-set sampling error of the
  seed-averaged Δ. The seed component is added unshrunk: ``s_v²/m_v + s_b²/m_b``, with ``s²`` the
  unbiased (ddof=1) variance of an arm's per-seed scores on all examples. ``se² = se_units² + seed terms``,
  with Welch–Satterthwaite degrees of freedom (the unit term counted with ``n_units − 1``, each seed term
  with ``m − 1``); the two-sided p-value and the CI ``Δ ± t_{0.975, df} · se`` come from Student t
  (``Inference.SEED_T``). With 3 seeds per arm, df is about 4 when the seed variance dominates, so the
  t quantile (2.8) rather than 1.96 is what keeps the false-positive rate at 5%. Per-seed prediction noise
  enters both ``s²`` and ``se_units``, so the test errs on the conservative side when seed variance is tiny.
* An arm with one seed facing an arm with >= 2 borrows the other arm's seed variance: the seed term is
  ``s²(1/m + 1)`` with ``m − 1`` df (``Inference.BORROWED``; the same variance is assumed for both recipes).
* Both arms with one seed: the seed variance is not measured, and the comparison is **conditional on the
  trained models** (``Inference.CONDITIONAL``, :data:`CONDITIONAL_LABEL`): it answers "do these two models
  differ on this population", not "do these recipes differ". Its CI is the percentile interval of the Δ
  replicates and its p the normal one from their sd (see :func:`bootstrap_p_value`); ``collect`` labels
  such rows in every table and the heatmap caption.
* The point estimate is the metric averaged over all seeds on all examples; mean ± sd (ddof=1) over seeds is
  reported beside it. Seeds are not paired across arms. Calibration (false positives <= 6%, coverage >= 93%
  with >= 3 seeds) is measured by ``benchmarks/sweep_calibration.py`` on sweeps simulated by
  :mod:`biotune.testing.simulate`.
* A macro-average over a task family's sets is the mean of their headlines; its replicates are the mean of
  the sets' replicates for the same resample index (sets are resampled independently of each other), and
  its seed variance is that of the per-seed macro scores (:func:`macro_average`).
* Every per-example statistic is validated before use (:func:`stat_problem`): finite, non-negative, an
  integer where it counts, and within its bounds (``correct <= n``, ``value <= n``).
"""

from __future__ import annotations

import dataclasses
import logging
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse
import scipy.stats

from biotune.errors import DataError
from biotune.eval.example_stats import metric_from_stats, reducer

log = logging.getLogger(__name__)

#: The fix of a predictions file whose statistics are missing or invalid.
STATS_FIX = (
    "re-run `biotune eval` for this cell with a biotune that writes 'unit' and 'stats' (additive "
    'per-example statistics, e.g. {"tp": 1, "fp": 0, "fn": 2}: finite, non-negative, integer counts) on '
    "every prediction row"
)

#: Confidence level of every interval, and the significance level of the marks in the tables.
CI_LEVEL = 0.95
ALPHA = 0.05

Correction = Literal["holm", "bh"]
CORRECTIONS: tuple[str, ...] = ("holm", "bh")


# ------------------------------------------------------------------------------------------- resamples


def set_rng(seed: int, key: str) -> np.random.Generator:
    """The generator for one eval set (or one arm of it): seeded by ``seed`` and the key, not by call order."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), zlib.crc32(key.encode("utf-8"))]))


def resample_indices(n_units: int, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """``n_boot`` resamples of ``n_units`` unit indices drawn with replacement: an (n_boot, n_units) array."""
    return rng.integers(0, n_units, size=(n_boot, n_units))


def counts_from_indices(indices: np.ndarray, n_units: int) -> np.ndarray:
    """How often each unit is drawn in each resample: (B, n_units) float64 from (B, draws) indices."""
    n_boot = indices.shape[0]
    offsets = (np.arange(n_boot, dtype=np.int64) * n_units)[:, None]
    flat = np.bincount((indices + offsets).ravel(), minlength=n_boot * n_units)
    return flat.reshape(n_boot, n_units).astype(np.float64)


@dataclass(frozen=True)
class Resamples:
    """The bootstrap resamples of one eval set: unit indices drawn with replacement and their count matrix."""

    eval_set: str
    seed: int
    indices: np.ndarray
    """(B, n_units) unit indices; row b is resample b."""
    counts: np.ndarray
    """(B, n_units) float64: how often each unit is drawn in each resample."""

    @classmethod
    def draw(cls, eval_set: str, n_units: int, n_boot: int = 1000, seed: int = 0) -> Resamples:
        """Draw ``n_boot`` resamples of ``n_units`` units from ``set_rng(seed, eval_set)``."""
        if n_units < 1:
            raise ValueError(f"eval set {eval_set!r} has no resampling units")
        indices = resample_indices(n_units, n_boot, set_rng(seed, eval_set))
        return cls(eval_set, seed, indices, counts_from_indices(indices, n_units))

    @property
    def n_boot(self) -> int:
        """Number of resamples (B)."""
        return int(self.indices.shape[0])

    @property
    def n_units(self) -> int:
        """Number of resampling units of the set."""
        return int(self.counts.shape[1])


def unit_codes(units: pa.Array | pa.ChunkedArray | Sequence[str]) -> tuple[np.ndarray, int]:
    """Each example's unit index (units numbered in order of first appearance) and the number of units."""
    arr = units if isinstance(units, pa.Array | pa.ChunkedArray) else pa.array(list(units), type=pa.string())
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    encoded = pc.dictionary_encode(arr)
    return encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64), len(encoded.dictionary)


def unit_sums(stats: np.ndarray, codes: np.ndarray, n_units: int) -> np.ndarray:
    """Per-unit sums of per-example statistics: (..., n, k) -> (..., n_units, k)."""
    *lead, n, k = stats.shape
    if n_units == n and np.array_equal(codes, np.arange(n)):
        return np.asarray(stats, dtype=np.float64)
    member = scipy.sparse.csr_matrix((np.ones(n), (codes, np.arange(n))), shape=(n_units, n))
    flat = np.moveaxis(np.asarray(stats, dtype=np.float64).reshape(-1, n, k), 1, 0).reshape(n, -1)
    summed = np.asarray(member @ flat).reshape(n_units, -1, k)
    return np.moveaxis(summed, 0, 1).reshape(*lead, n_units, k)


def headline(reducer: str, stat_names: Sequence[str], sums: np.ndarray) -> np.ndarray:
    """The headline metric from summed statistics (..., k), stat ``i`` named ``stat_names[i]``."""
    values = metric_from_stats(reducer, {name: sums[..., i] for i, name in enumerate(stat_names)})
    return np.asarray(values, dtype=np.float64)


# ------------------------------------------------------------------------------------------- arms, deltas


class Inference(str, Enum):
    """How the uncertainty of a Δ was computed: the ``inference`` column of ``sweep collect``'s tables."""

    SEED_T = "seed-aware t (Welch–Satterthwaite df)"
    """Both arms have >= 2 training seeds: unit SE and both seed variances, Student t."""
    BORROWED = "seed-aware t, one-seed arm borrows the other arm's seed variance"
    """One arm has one seed: its seed variance is taken to equal the other arm's (measured) one."""
    CONDITIONAL = "conditional on the trained models: seed variance not measured"
    """Both arms have one seed: the CI covers test-set sampling only (these two models, not the recipes)."""


#: The label of a comparison of two single-seed arms, in results.md, results.csv and the heatmap caption.
CONDITIONAL_LABEL: str = Inference.CONDITIONAL.value


@dataclass(frozen=True)
class ArmScore:
    """One arm (a variant or the base) on one eval set (or a macro-average): its seeds and its replicates."""

    name: str
    seed_scores: np.ndarray
    """(m,) headline of each training seed on all examples (one value for a macro over uneven seeds)."""
    replicates: np.ndarray
    """(B,) headline per resample, averaged over ALL the arm's seeds (seeds are not resampled)."""
    n_seeds: int
    """Training seeds behind the arm (the fewest over a macro-average's sets)."""
    seed_var: float
    """Unbiased (ddof=1) seed-to-seed variance of one seed's score; NaN when not measured (one seed)."""
    seed_df: float
    """Degrees of freedom of :attr:`seed_var` (m − 1); NaN when not measured."""
    unit_df: float
    """Degrees of freedom of the test-set (unit) component: n_units − 1, summed over a macro's sets."""

    @classmethod
    def from_seeds(cls, name: str, seed_scores: np.ndarray, replicates: np.ndarray, n_units: int) -> ArmScore:
        """An arm from its per-seed scores, its seed-averaged replicates and its set's number of units."""
        scores = np.asarray(seed_scores, dtype=np.float64)
        m = int(scores.size)
        var = float(np.var(scores, ddof=1)) if m > 1 else float("nan")
        return cls(
            name,
            scores,
            np.asarray(replicates, dtype=np.float64),
            m,
            var,
            m - 1.0 if m > 1 else float("nan"),
            float(n_units - 1),
        )

    @property
    def mean(self) -> float:
        """Mean over training seeds (the point estimate)."""
        return float(np.mean(self.seed_scores))

    @property
    def sd(self) -> float:
        """Standard deviation over training seeds (ddof=1); NaN with a single seed."""
        return float(np.sqrt(self.seed_var)) if np.isfinite(self.seed_var) else float("nan")

    @property
    def seed_measured(self) -> bool:
        """Whether the arm's seed variance was estimated (at least two seeds)."""
        return bool(np.isfinite(self.seed_var))


@dataclass(frozen=True)
class Delta:
    """Δ = variant − base with its CI, two-sided p-value, standard error and degrees of freedom."""

    estimate: float
    ci_low: float
    ci_high: float
    p_value: float
    """Two-sided p of Δ = 0 (the one the corrections use): Student t for seed-aware rows, else normal."""
    p_empirical: float
    """Two-sided share of the test-set replicates beyond 0 (:func:`empirical_p_value`), resolution 2/(B + 1)."""
    replicates: np.ndarray
    """(B,) Δ per resample (each arm averaged over all its seeds): the test-set sampling distribution."""
    se: float
    """Standard error of Δ: sqrt(se_units² + seed_var)."""
    df: float
    """Welch–Satterthwaite degrees of freedom of ``se`` (inf for a conditional comparison)."""
    se_units: float
    """Bootstrap standard error from test-set sampling alone (sd of :attr:`replicates`)."""
    seed_var: float
    """The seed component of se² (s_v²/m_v + s_b²/m_b, unshrunk); NaN when not measured."""
    inference: Inference
    n_seeds: tuple[int, int]
    """Training seeds of (variant, base)."""

    @property
    def excludes_zero(self) -> bool:
        """Whether the CI lies entirely on one side of 0."""
        return bool(self.ci_low > 0 or self.ci_high < 0)

    @property
    def conditional(self) -> bool:
        """Both arms have one seed: the result holds for these two trained models only."""
        return self.inference is Inference.CONDITIONAL


def score_arms(
    resamples: Resamples, reducer: str, stat_names: Sequence[str], arms: Mapping[str, np.ndarray]
) -> dict[str, ArmScore]:
    """Score every arm on the set's resamples with one matrix product.

    Args:
        resamples: the set's resamples (shared by all arms: that is the pairing).
        reducer: the set's reducer (``f1``, ``accuracy``, ``mean``).
        stat_names: the names of the k statistics, in the order of the last axis.
        arms: arm name -> (m, n_units, k) per-unit summed statistics of its m training seeds.
    """
    names = list(arms)
    widths = [int(arms[n].shape[0]) for n in names]
    stacked = np.concatenate([np.asarray(arms[n], dtype=np.float64) for n in names], axis=0)  # (M, U, k)
    total, n_units, k = stacked.shape
    if n_units != resamples.n_units:
        raise ValueError(f"{n_units} units in the statistics, {resamples.n_units} in the resamples")
    sums = resamples.counts @ np.moveaxis(stacked, 1, 0).reshape(n_units, total * k)  # (B, M*k)
    boot = headline(reducer, stat_names, sums.reshape(resamples.n_boot, total, k))  # (B, M)
    point = headline(reducer, stat_names, stacked.sum(axis=1))  # (M,)
    out: dict[str, ArmScore] = {}
    start = 0
    for name, width in zip(names, widths, strict=True):
        cols = slice(start, start + width)
        out[name] = ArmScore.from_seeds(name, point[cols], boot[:, cols].mean(axis=1), n_units)
        start += width
    return out


def percentile_ci(replicates: np.ndarray, level: float = CI_LEVEL) -> tuple[float, float]:
    """The percentile interval of bootstrap replicates."""
    tail = 100.0 * (1.0 - level) / 2.0
    lo, hi = np.percentile(replicates, [tail, 100.0 - tail])
    return float(lo), float(hi)


def empirical_p_value(replicates: np.ndarray) -> float:
    """Two-sided share-based p of Δ = 0: twice the smaller tail share (+1 smoothed), at most 1.

    Its resolution is 2 / (B + 1) (0.002 at B = 1000): kept for reference, not used for the corrections.
    """
    n = replicates.size
    below = np.count_nonzero(replicates <= 0) + 1
    above = np.count_nonzero(replicates >= 0) + 1
    return float(min(1.0, 2.0 * min(below, above) / (n + 1)))


def bootstrap_p_value(estimate: float, replicates: np.ndarray) -> float:
    """Two-sided p of Δ = 0 from the bootstrap distribution: ``2 Φ(−|Δ| / se)``, se = sd of the replicates.

    The share of replicates beyond 0 (:func:`empirical_p_value`) cannot go below 2 / (B + 1), so no Holm
    family of more than ~25 comparisons could ever reach significance at B = 1000; the bootstrap standard
    error (normal approximation, Efron & Tibshirani 1993, ch. 16) resolves small p-values. With se = 0 the
    p-value is 1 for Δ = 0 and 0 otherwise.
    """
    se = float(np.std(replicates, ddof=1)) if replicates.size > 1 else 0.0
    return t_p_value(estimate, se, np.inf)


def t_p_value(estimate: float, se: float, df: float) -> float:
    """Two-sided p of Δ = 0 from Student t with ``df`` degrees of freedom (normal for inf); se = 0 -> 1 or 0."""
    if se == 0.0 or not np.isfinite(se):
        return 1.0 if estimate == 0 else 0.0
    return float(2.0 * scipy.stats.t.sf(abs(estimate) / se, df))


def welch_satterthwaite(terms: Sequence[tuple[float, float]]) -> tuple[float, float]:
    """(variance, df) of a sum of independent variance components given as (variance, df) pairs.

    df = (Σ v_i)² / Σ (v_i² / df_i) (Satterthwaite 1946; Welch 1947); components with v_i = 0 drop out, and
    df is inf when all do.
    """
    total = float(sum(v for v, _ in terms))
    denom = float(sum(v * v / d for v, d in terms if v > 0))
    return total, (total * total / denom if denom > 0 else float("inf"))


def delta(variant: ArmScore, base: ArmScore, level: float = CI_LEVEL) -> Delta:
    """Δ = variant − base from two arms scored on the same resamples (see the module docstring)."""
    reps = variant.replicates - base.replicates
    estimate = variant.mean - base.mean
    se_units = float(np.std(reps, ddof=1)) if reps.size > 1 else 0.0
    p_emp = empirical_p_value(reps)
    seeds = (variant.n_seeds, base.n_seeds)
    if not variant.seed_measured and not base.seed_measured:
        lo, hi = percentile_ci(reps, level)
        p = bootstrap_p_value(estimate, reps)
        nan = float("nan")
        return Delta(
            estimate, lo, hi, p, p_emp, reps, se_units, np.inf, se_units, nan, Inference.CONDITIONAL, seeds
        )
    if variant.seed_measured and base.seed_measured:
        seed_terms = [
            (variant.seed_var / variant.n_seeds, variant.seed_df),
            (base.seed_var / base.n_seeds, base.seed_df),
        ]
        how = Inference.SEED_T
    else:
        measured, single = (variant, base) if variant.seed_measured else (base, variant)
        share = 1.0 / measured.n_seeds + 1.0 / single.n_seeds
        seed_terms = [(measured.seed_var * share, measured.seed_df)]
        how = Inference.BORROWED
    unit_df = max(1.0, min(variant.unit_df, base.unit_df))
    seed_var = float(sum(v for v, _ in seed_terms))
    var, df = welch_satterthwaite([(se_units * se_units, unit_df), *seed_terms])
    se = float(np.sqrt(var))
    half = float(scipy.stats.t.ppf(0.5 + level / 2.0, df)) * se
    return Delta(
        estimate,
        estimate - half,
        estimate + half,
        t_p_value(estimate, se, df),
        p_emp,
        reps,
        se,
        df,
        se_units,
        seed_var,
        how,
        seeds,
    )


def macro_average(name: str, arms: Sequence[ArmScore]) -> ArmScore:
    """The mean of several sets' headlines (a task family), replicate by replicate and seed by seed.

    When every set has the same seeds (the usual case) the per-seed macro scores give the seed variance
    directly. Otherwise the seed component of the mean is (1/K²) Σ_k s_k²/m_k with Satterthwaite df, and it
    is not measured when any set has a single seed.
    """
    if not arms:
        raise ValueError("a macro-average needs at least one set")
    replicates = np.mean([a.replicates for a in arms], axis=0)
    unit_df = float(sum(a.unit_df for a in arms))
    widths = {a.seed_scores.size for a in arms}
    if len(widths) == 1:
        seed_scores = np.mean([a.seed_scores for a in arms], axis=0)
        return dataclasses.replace(ArmScore.from_seeds(name, seed_scores, replicates, 2), unit_df=unit_df)
    m = min(a.n_seeds for a in arms)
    seed_scores = np.array([np.mean([a.mean for a in arms])])
    if m < 2:
        nan = float("nan")
        return ArmScore(name, seed_scores, replicates, m, nan, nan, unit_df)
    k2 = float(len(arms) ** 2)
    term, df = welch_satterthwaite([(a.seed_var / a.n_seeds / k2, a.seed_df) for a in arms])
    return ArmScore(name, seed_scores, replicates, m, term * m, df, unit_df)


# ------------------------------------------------------------------------------------------- validation

#: Per reducer: the statistics that count things (non-negative integers), and the bounds between statistics
#: (``(a, b)``: a <= b). Every statistic must be finite and non-negative.
COUNT_STATS: dict[str, tuple[str, ...]] = {
    "f1": ("tp", "fp", "fn"),
    "accuracy": ("correct", "n"),
    "mean": ("n",),
}
STAT_BOUNDS: dict[str, tuple[tuple[str, str], ...]] = {
    "f1": (),
    "accuracy": (("correct", "n"),),
    "mean": (("value", "n"),),  # a per-example value in [0, 1] (e.g. example-based F1) times n
}


def stat_problem(
    reducer_name: str, stat_names: Sequence[str], stats: np.ndarray
) -> tuple[int, str, str] | None:
    """The first invalid per-example statistic of (n, k) ``stats``: (row index, field, what is wrong), or None.

    Checked in this order per row: finite, non-negative, an integer where it counts (:data:`COUNT_STATS`),
    within its bounds (:data:`STAT_BOUNDS`). One vectorised pass; the loop runs only to word the message.
    """
    x = np.asarray(stats, dtype=np.float64).reshape(-1, len(stat_names))
    col = {name: i for i, name in enumerate(stat_names)}
    with np.errstate(invalid="ignore"):
        finite = np.isfinite(x)
        checks: list[tuple[np.ndarray, Callable[[int], tuple[str, str]]]] = []
        for name, i in col.items():
            checks.append(
                (~finite[:, i], lambda r, n=name, i=i: (n, f"is {x[r, i]}: it must be a finite number"))
            )
            checks.append(
                (x[:, i] < 0, lambda r, n=name, i=i: (n, f"is {x[r, i]:g}: it must not be negative"))
            )
        for name in COUNT_STATS.get(reducer_name, ()):
            if name in col:
                i = col[name]
                checks.append(
                    (
                        finite[:, i] & (x[:, i] != np.round(x[:, i])),
                        lambda r, n=name, i=i: (n, f"is {x[r, i]:g}: it counts, so it must be an integer"),
                    )
                )
        for low, high in STAT_BOUNDS.get(reducer_name, ()):
            if low in col and high in col:
                a, b = col[low], col[high]
                checks.append(
                    (
                        x[:, a] > x[:, b],
                        lambda r, lo=low, hi=high, a=a, b=b: (
                            lo,
                            f"is {x[r, a]:g} but {hi} is {x[r, b]:g}: {lo} must be <= {hi}",
                        ),
                    )
                )
    bad_rows = [np.flatnonzero(mask) for mask, _ in checks]
    first = min((int(rows[0]) for rows in bad_rows if rows.size), default=None)
    if first is None:
        return None
    for (mask, word), rows in zip(checks, bad_rows, strict=True):
        if rows.size and mask[first]:
            name, why = word(first)
            return first, name, why
    raise AssertionError("unreachable: a bad row has a failing check")


# ------------------------------------------------------------------------------------------- one comparison


@dataclass(frozen=True)
class ExampleStats:
    """One model's per-example statistics on one eval set: one predictions file of one training seed."""

    path: Path
    reducer: str
    stat_names: tuple[str, ...]
    ids: pa.Array
    """Example ids (``<source>/<split>/<record id>``), unique."""
    units: pa.Array
    """Resampling unit of each example (document id for NER/RE, else the example id)."""
    stats: np.ndarray
    """(n, k) float64 additive statistics, column i named ``stat_names[i]``."""
    parse_ok: np.ndarray | None = None

    @property
    def n(self) -> int:
        """Number of examples."""
        return int(self.stats.shape[0])

    @classmethod
    def from_rows(
        cls, rows: Sequence[Mapping[str, Any]], path: str | Path, reducer_name: str
    ) -> ExampleStats:
        """Build from prediction rows (dicts with ``id``, ``unit``, ``stats`` and optionally ``parse_ok``).

        Only the reducer's statistics are kept (in the reducer's key order); other keys are ignored.
        """
        if not rows:
            raise DataError(path, "no predictions", "evaluate the set again")
        names = reducer(reducer_name).keys
        stats = np.array([[float(r["stats"][s]) for s in names] for r in rows], dtype=np.float64).reshape(
            -1, len(names)
        )
        bad = stat_problem(reducer_name, names, stats)
        if bad is not None:
            row, name, why = bad
            raise DataError(path, f"row {row + 1}: 'stats.{name}' {why}", STATS_FIX)
        parse_ok = np.array([bool(r.get("parse_ok", True)) for r in rows])
        out = cls(
            Path(path),
            reducer_name,
            names,
            pa.array([str(r["id"]) for r in rows], type=pa.string()),
            pa.array([str(r["unit"]) for r in rows], type=pa.string()),
            stats,
            parse_ok,
        )
        check_unique_ids(out)
        return out


def check_unique_ids(ex: ExampleStats) -> None:
    """Raise DataError naming the first duplicated example id of a file."""
    if pc.count_distinct(ex.ids).as_py() == len(ex.ids):
        return
    counts = pc.value_counts(ex.ids)
    dup = next(v["values"] for v in counts.to_pylist() if v["counts"] > 1)
    raise DataError(
        ex.path,
        f"example id {dup!r} appears more than once",
        "keep one prediction row per example id (re-run the evaluation of this cell)",
    )


def align(reference: ExampleStats, other: ExampleStats) -> ExampleStats:
    """``other`` reordered to ``reference``'s example order (paired by example id).

    Raises:
        DataError: when the two files hold different example ids, a different reducer or statistics, or
            give the same example different units; the message names both files.
    """
    if (other.reducer, other.stat_names) != (reference.reducer, reference.stat_names):
        raise DataError(
            other.path,
            f"reducer {other.reducer} over {list(other.stat_names)}, but "
            f"{reference.path} has {reference.reducer} over {list(reference.stat_names)}",
            "evaluate every cell of the sweep with the same biotune version",
        )
    if other.ids.equals(reference.ids):
        aligned = other
    else:
        pos = pc.index_in(reference.ids, value_set=other.ids)
        if pos.null_count or len(other.ids) != len(reference.ids):
            raise _id_mismatch(reference, other)
        idx = pos.to_numpy(zero_copy_only=False).astype(np.int64)
        parse_ok = None if other.parse_ok is None else other.parse_ok[idx]
        aligned = ExampleStats(
            other.path,
            other.reducer,
            other.stat_names,
            reference.ids,
            other.units.take(pa.array(idx)),
            other.stats[idx],
            parse_ok,
        )
    if not aligned.units.equals(reference.units):
        bad = int(np.argmin(pc.equal(aligned.units, reference.units).to_numpy(zero_copy_only=False)))
        raise DataError(
            other.path,
            f"example {reference.ids[bad].as_py()!r} has unit {aligned.units[bad].as_py()!r}"
            f" here but {reference.units[bad].as_py()!r} in {reference.path}",
            "evaluate every cell against the same eval data (same corpus copy and biotune version)",
        )
    return aligned


def _id_mismatch(reference: ExampleStats, other: ExampleStats) -> DataError:
    ref_ids, other_ids = set(reference.ids.to_pylist()), set(other.ids.to_pylist())
    missing, extra = sorted(ref_ids - other_ids), sorted(other_ids - ref_ids)
    parts = []
    if missing:
        parts.append(f"{len(missing)} id(s) of {reference.path} missing here (e.g. {', '.join(missing[:3])})")
    if extra:
        parts.append(f"{len(extra)} id(s) not in {reference.path} (e.g. {', '.join(extra[:3])})")
    return DataError(
        other.path,
        "example ids differ from the base's: " + "; ".join(parts),
        "evaluate both cells on the same eval sets with the same max_examples, or re-run the "
        "evaluation of this cell",
    )


@dataclass(frozen=True)
class Comparison:
    """Δ = variant − base on one eval set, with both arms' scores and the sizes the bootstrap saw."""

    eval_set: str
    base: ArmScore
    variant: ArmScore
    delta: Delta
    n_examples: int
    n_units: int
    resamples: Resamples


def paired_bootstrap(
    base: Sequence[ExampleStats],
    variant: Sequence[ExampleStats],
    *,
    n_boot: int = 1000,
    seed: int = 0,
    eval_set: str = "eval",
    names: tuple[str, str] = ("base", "variant"),
) -> Comparison:
    """Paired bootstrap of Δ = variant − base on one eval set (one ``ExampleStats`` per training seed).

    Every file is aligned to ``base[0]`` by example id; units come from ``base[0]``. See the module
    docstring for the method. ``eval_set`` keys the resamples (``collect`` passes ``<source>/<split>``, so the two
    agree exactly); ``names`` (base, variant) name the arms.

    Raises:
        DataError: when a file's example ids (or units) differ from ``base[0]``'s, naming both files.
    """
    if not base or not variant:
        raise ValueError("paired_bootstrap needs at least one seed per arm")
    if names[0] == names[1]:
        raise ValueError("the two arms need different names")
    reference = base[0]
    check_unique_ids(reference)
    codes, n_units = unit_codes(reference.units)
    arms = {
        name: unit_sums(np.stack([align(reference, e).stats for e in exs]), codes, n_units)
        for name, exs in zip(names, (base, variant), strict=True)
    }
    resamples = Resamples.draw(eval_set, n_units, n_boot, seed)
    scores = score_arms(resamples, reference.reducer, reference.stat_names, arms)
    b, v = scores[names[0]], scores[names[1]]
    return Comparison(eval_set, b, v, delta(v, b), reference.n, n_units, resamples)


# ------------------------------------------------------------------------------------------- corrections


def holm(p_values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Holm (1979) step-down adjusted p-values (family-wise error); NaNs stay NaN and are not counted."""
    p = np.asarray(p_values, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    m = ok.size
    if m == 0:
        return out
    order = ok[np.argsort(p[ok], kind="stable")]
    stepped = np.maximum.accumulate((m - np.arange(m)) * p[order])
    out[order] = np.minimum(stepped, 1.0)
    return out


def benjamini_hochberg(p_values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Benjamini–Hochberg (1995) adjusted p-values (false discovery rate); NaNs stay NaN and are not counted."""
    p = np.asarray(p_values, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    if ok.any():
        out[ok] = scipy.stats.false_discovery_control(p[ok], method="bh")
    return out


def adjust_p(p_values: Sequence[float] | np.ndarray, method: Correction) -> np.ndarray:
    """Adjusted p-values of one family of tests by ``holm`` or ``bh``."""
    if method == "holm":
        return holm(p_values)
    if method == "bh":
        return benjamini_hochberg(p_values)
    raise ValueError(f"unknown correction {method!r}: use one of {', '.join(CORRECTIONS)}")

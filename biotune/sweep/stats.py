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
* 95% CI: the 2.5 and 97.5 percentiles of Δ_b (percentile method). Two-sided p-value from the bootstrap
  distribution: ``2 Φ(−|Δ| / sd(Δ_b))`` (normal approximation with the bootstrap standard error), because the
  share of replicates beyond 0, ``min(1, 2 * min(#{Δ_b <= 0} + 1, #{Δ_b >= 0} + 1) / (B + 1))``, cannot go
  below 2 / (B + 1) and so could never survive a Holm correction over a sweep-sized table. The share is kept
  as ``p_empirical``.
* Training seeds: an arm trained with m >= 2 seeds is a two-level bootstrap. Each resample keeps the shared
  unit draw (paired over examples) and, per arm, also draws m of its seeds with replacement
  (``set_rng(seed, eval_set + arm)``) and averages the metric over the drawn seeds. Seed-to-seed variance
  thus widens the CI (with the plug-in factor (m - 1) / m, a little less than an unbiased estimate would for
  very few seeds). The point estimate is the metric averaged over all seeds on all examples; mean ± sd
  (ddof=1) over seeds is reported beside it. Seeds are not paired across arms.
* A macro-average over a task family's sets is the mean of their headlines; its replicates are the mean of
  the sets' replicates for the same resample index (sets are resampled independently of each other).
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
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

    def seed_rng(self, arm: str) -> np.random.Generator:
        """The generator of ``arm``'s seed draws on this set."""
        return set_rng(self.seed, f"{self.eval_set}\x00seeds\x00{arm}")


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


@dataclass(frozen=True)
class ArmScore:
    """One arm (a variant or the base) on one eval set: per-seed scores and seed-averaged bootstrap replicates."""

    name: str
    seed_scores: np.ndarray
    """(m,) headline of each training seed on all examples."""
    replicates: np.ndarray
    """(B,) headline per resample, averaged over the seeds drawn for that resample."""

    @property
    def mean(self) -> float:
        """Mean over training seeds (the point estimate)."""
        return float(np.mean(self.seed_scores))

    @property
    def sd(self) -> float:
        """Standard deviation over training seeds (ddof=1); NaN with a single seed."""
        return float(np.std(self.seed_scores, ddof=1)) if self.seed_scores.size > 1 else float("nan")


@dataclass(frozen=True)
class Delta:
    """Δ = variant − base with its percentile CI and two-sided bootstrap p-value."""

    estimate: float
    ci_low: float
    ci_high: float
    p_value: float
    """Two-sided p from the bootstrap standard error (:func:`bootstrap_p_value`); corrections use this one."""
    p_empirical: float
    """Two-sided share of replicates beyond 0 (:func:`empirical_p_value`), resolution 2 / (B + 1)."""
    replicates: np.ndarray
    """(B,) Δ per resample."""

    @property
    def excludes_zero(self) -> bool:
        """Whether the CI lies entirely on one side of 0."""
        return bool(self.ci_low > 0 or self.ci_high < 0)


def seed_average(replicates: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(B, m) per-seed replicates -> (B,): mean over m seeds drawn with replacement per resample."""
    n_boot, m = replicates.shape
    if m == 1:
        return replicates[:, 0].copy()
    draws = rng.integers(0, m, size=(n_boot, m))
    return np.take_along_axis(replicates, draws, axis=1).mean(axis=1)


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
        out[name] = ArmScore(name, point[cols], seed_average(boot[:, cols], resamples.seed_rng(name)))
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
    if se == 0.0 or not np.isfinite(se):
        return 1.0 if estimate == 0 else 0.0
    return float(2.0 * scipy.stats.norm.sf(abs(estimate) / se))


def delta(variant: ArmScore, base: ArmScore, level: float = CI_LEVEL) -> Delta:
    """Δ = variant − base from two arms scored on the same resamples."""
    reps = variant.replicates - base.replicates
    lo, hi = percentile_ci(reps, level)
    estimate = variant.mean - base.mean
    return Delta(estimate, lo, hi, bootstrap_p_value(estimate, reps), empirical_p_value(reps), reps)


def macro_average(name: str, arms: Sequence[ArmScore]) -> ArmScore:
    """The mean of several sets' headlines (a task family), replicate by replicate.

    Per-seed macro scores are kept only when every set has the same number of seeds (the usual case).
    """
    if not arms:
        raise ValueError("a macro-average needs at least one set")
    widths = {a.seed_scores.size for a in arms}
    if len(widths) == 1:
        seed_scores = np.mean([a.seed_scores for a in arms], axis=0)
    else:
        seed_scores = np.array([np.mean([a.mean for a in arms])])
    return ArmScore(name, seed_scores, np.mean([a.replicates for a in arms], axis=0))


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
    docstring for the method. ``eval_set`` keys the resamples and ``names`` (base, variant) key each arm's
    seed draws; ``collect`` passes ``<source>/<split>`` and the variant names, so the two agree exactly.

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

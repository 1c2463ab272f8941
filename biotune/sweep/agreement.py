"""Agreement between two levels of the same variants: does a cheap level rank them as the target does?

A *level* is one way of running every variant of a sweep: a proxy fidelity (a smaller model, LoRA, fewer
steps) or the target (issue 21), or an early checkpoint and the final one (issue 22). The same code serves
both: :func:`compare_levels` takes the per-example statistics of each variant (the base included) at the two
levels, on the SAME eval examples, and measures how well the first level's Δs (variant − base at that level)
predict the second's. The writers (``agreement.csv``, a ``results.md`` section, scatter plots) are in
:mod:`biotune.sweep.agreement_report`.

How ``collect`` calls it (one ``Level`` per fidelity, or per checkpoint step with the final one as target)::

    target = Level("target", {variant: {eval_set: [ExampleStats per seed]}}, key="fidelities.target")
    small = Level("small", {...}, key="fidelities.small")
    result = compare_levels(small, target, base=base, families={eval_set: "ner/test"}, n_boot=B, seed=seed)
    agreement_report.write_csv([result], out_dir, scale=SCALE)       # agreement.csv
    agreement_report.to_markdown([result], scale=SCALE)              # the results.md section
    agreement_report.plot(result, out_dir, scale=SCALE)              # agreement_small_vs_target.png

Per eval set, and per task-family macro (the mean of the family's sets' headlines), over the variants run at
both levels (the base excluded: its Δ is 0 by construction):

* Spearman ρ and Kendall τ-b of the proxy Δs against the target Δs (ties get average ranks; when one side has
  all Δs equal it carries no order and the coefficient is taken as 0, where scipy returns NaN);
* pairwise sign agreement: over the pairs of variants that the target *separates*, the share whose order the
  proxy gets right (a proxy tie counts one half). A pair is separated when the 95% percentile interval of its
  target difference (Δ_i − Δ_j, from the same bootstrap) excludes 0; no correction across pairs, since it only
  selects the pairs worth scoring;
* the top variant: whether the proxy's best Δ is the target's best (first in order on a tie), the share of
  bootstrap resamples in which it is, and the *regret*: target Δ of the target's best minus target Δ of the
  proxy's best (0 when the top agrees), i.e. what choosing by the proxy costs at the target;
* n: the number of variants, of pairs, of separated pairs, of resampling units and the fewest seeds per arm.

Every figure has a 95% percentile interval from one paired bootstrap (B resamples):

* Units (documents for NER/RE, else examples) are drawn from ``Resamples.draw(eval_set, ...)``, exactly the
  draws ``collect`` makes for the set, ONCE per set and applied to every arm at BOTH levels: the examples are
  the same, so their difficulty is shared, and the statistic's interval reflects that pairing.
* Training seeds are a random factor: per resample, each arm draws its m seeds with replacement and the drawn
  mean is moved away from the all-seed mean by √(m / (m − 1)), so that the seed variance enters unshrunk
  (s² / m, not the plug-in (m − 1) / m · s² / m). A variant's draws come from one generator keyed by its name,
  so the same seed indices are drawn on every set (a macro sees one trained model per seed) and at both
  levels (an early checkpoint and the final one of a run are the same training run). With one seed per arm the
  result is conditional on the trained models; the reports say so.
* A macro's replicates are the mean of its sets' replicates (sets are resampled independently).

The verdict, from ρ on the set (or macro):

* **agrees** when ρ ≥ ``RHO_AGREES`` (0.8) and the lower CI bound ≥ ``RHO_FLOOR`` (0.5): the proxy's order
  is strongly aligned with the target's, and even the pessimistic end of the interval is a clearly useful
  proxy. 0.8 sits between Olmix's 0.73 (1M-parameter proxies, judged weak) and 0.89 (≥ 15M, judged good),
  and is about DataDecide's 80% pairwise agreement (τ ≈ 0.6 ⇔ ρ ≈ 0.8 for a bivariate normal);
* **disagrees** when the upper CI bound < ``RHO_FLOOR``: even the optimistic end leaves the proxy's order
  barely related to the target's;
* **uncertain** otherwise, and always when the target separates no pair of variants (the target itself
  cannot rank them, so there is nothing to agree with).

Checked by simulation (``tests/unit/sweep/test_agreement.py``; 6 variants with graded effects, 800
examples, B = 200, 200 simulated studies per line, measured with the test module's generator):

* a proxy unrelated to the target (its variants equal its base, plus noise) was never "agrees" (0/200 with
  1 seed, and with 2 or 3 seeds of seed sd 0.1–0.3 on the logit); a learning-rate-0 proxy (every variant IS
  the base) has ρ = 0 on every resample and *disagrees*;
* the ρ interval covers the ρ of the true Δs at 0.97–0.99 when that ρ is inside (−1, 1) (true ρ 0 and 0.66),
  with one seed or with seed noise smaller than the spacing of the variants; with 2–3 seeds whose noise
  dominates, at 0.85–0.89 (a percentile bootstrap over 2–3 seeds is no t reference); τ's interval covers
  the true τ (0 and 0.47) at 0.95–1.00 (100 studies, 1 seed or 3 seeds of sd 0.1); for the unrelated proxy
  the pairwise interval covers 0.5 at 0.94 (1 seed), 0.98 (3 seeds, sd 0.1) and 0.91 (3 seeds, sd 0.3);
* at the boundary (true ρ = ±1) it under-covers (0.72 with one seed, less with noisy seeds): noise can only
  lower a perfect rank agreement, and the bootstrap re-adds noise, so the interval is biased toward 0. The
  verdict is then conservative (uncertain, never the opposite verdict): a perfect but noisy proxy needs
  less noise (more examples or seeds) to be called "agrees". A reverse-percentile interval fixes the boundary
  but covers a true ρ of 0 only about 60% of the time, and lets an unrelated proxy "agree" in 3–6%.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum

import numpy as np
import scipy.stats

from biotune.errors import ConfigError, Problem
from biotune.sweep import stats as st

log = logging.getLogger(__name__)

#: ρ at or above which (with the lower bound at or above ``RHO_FLOOR``) a proxy agrees with the target.
RHO_AGREES = 0.8
#: The floor of a useful proxy's ρ: the lower CI bound must reach it to agree; an upper bound below disagrees.
RHO_FLOOR = 0.5
#: Fewest variants (besides the base) run at both levels for a rank agreement to be measured.
MIN_VARIANTS = 3

#: variant -> eval set -> one ``ExampleStats`` per training seed (the i-th entry of every set is seed i's model).
Arms = Mapping[str, Mapping[str, Sequence[st.ExampleStats]]]


class Verdict(str, Enum):
    """Whether a proxy level ranks the variants as the target does (the rule is in the module docstring)."""

    AGREES = "agrees"
    UNCERTAIN = "uncertain"
    DISAGREES = "disagrees"


@dataclass(frozen=True)
class Level:
    """The variants of a sweep run one way (a fidelity, or a checkpoint step), with their predictions."""

    name: str
    """Its name in the reports: the fidelity (``small``, ``target``) or the checkpoint (``step-500``)."""
    arms: Arms
    """variant -> eval set -> per-seed statistics; the base among the variants."""
    key: str
    """The config key that defines which variants run at this level, named when there are too few."""


@dataclass(frozen=True)
class Interval:
    """A point estimate and its 95% percentile bootstrap interval (NaN when there is nothing to estimate)."""

    estimate: float
    ci_low: float
    ci_high: float

    @classmethod
    def from_replicates(cls, estimate: float, replicates: np.ndarray) -> Interval:
        """The estimate with the percentile interval of its replicates."""
        if not math.isfinite(estimate) or replicates.size == 0:
            return cls(float("nan"), float("nan"), float("nan"))
        lo, hi = st.percentile_ci(replicates)
        return cls(float(estimate), lo, hi)

    def scaled(self, factor: float) -> Interval:
        """The same interval in other units (percent points for Δs)."""
        return Interval(factor * self.estimate, factor * self.ci_low, factor * self.ci_high)


@dataclass(frozen=True)
class SetAgreement:
    """The agreement of two levels on one eval set or one task-family macro."""

    eval_set: str
    """``<source>/<split>``, or ``macro:<family>`` for a macro."""
    family: str
    sets: tuple[str, ...]
    """The eval sets behind it (one for a set, the family's for a macro)."""
    variants: tuple[str, ...]
    """The variants compared (run at both levels, base excluded), in input order."""
    proxy_delta: tuple[Interval, ...]
    """Each variant's Δ vs the base at the proxy level (metric units, not percent)."""
    target_delta: tuple[Interval, ...]
    """Each variant's Δ vs the base at the target level."""
    spearman: Interval
    kendall: Interval
    pairwise: Interval
    """Share of separated pairs the proxy orders as the target does; NaN when the target separates none."""
    n_pairs: int
    separated: tuple[tuple[str, str], ...]
    """The pairs the target separates (95% interval of the target difference excludes 0)."""
    top_proxy: str
    top_target: str
    top_agree_share: float
    """Share of bootstrap resamples in which the two levels' best variants are the same."""
    regret: Interval
    """Target Δ of the target's best minus target Δ of the proxy's best (metric units)."""
    n_units: int
    """Resampling units (summed over the sets of a macro)."""
    min_seeds: tuple[int, int]
    """Fewest training seeds of any compared arm at (proxy, target): 1 means conditional on the models."""
    verdict: Verdict

    @property
    def n_variants(self) -> int:
        """Number of variants compared."""
        return len(self.variants)

    @property
    def is_macro(self) -> bool:
        """Whether this is a task-family macro."""
        return self.eval_set.startswith("macro:")

    @property
    def top_agrees(self) -> bool:
        """Whether the proxy's best variant is the target's best."""
        return self.top_proxy == self.top_target


@dataclass(frozen=True)
class LevelAgreement:
    """Everything :func:`compare_levels` measured for one proxy level against one target level."""

    proxy: str
    target: str
    base: str
    sets: tuple[SetAgreement, ...]
    """Per eval set first, then the macros."""
    proxy_only: tuple[str, ...]
    """Variants with results at the proxy level only (not compared)."""
    target_only: tuple[str, ...]
    """Variants with results at the target level only (not compared)."""
    skipped: dict[str, str] = field(default_factory=dict)
    """Eval set or macro -> why it has no agreement (fewer than ``MIN_VARIANTS`` variants, one level only)."""
    n_boot: int = 1000


# ------------------------------------------------------------------------------------------- statistics


def rank_correlation(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Spearman ρ of each row of ``x`` with the same row of ``y``: (..., n) -> (...).

    Average ranks for ties (as scipy's ``spearmanr``); a row where either side is constant gives 0.
    """
    rx = scipy.stats.rankdata(x, axis=-1)
    ry = scipy.stats.rankdata(y, axis=-1)
    rx = rx - rx.mean(axis=-1, keepdims=True)
    ry = ry - ry.mean(axis=-1, keepdims=True)
    den = np.sqrt(np.sum(rx * rx, axis=-1) * np.sum(ry * ry, axis=-1))
    num = np.sum(rx * ry, axis=-1)
    safe = np.where(den > 0, den, 1.0)
    return np.where(den > 0, num / safe, 0.0)


def _pair_signs(x: np.ndarray) -> np.ndarray:
    """sign(x_i − x_j) for every pair i < j: (..., n) -> (..., n(n−1)/2)."""
    i, j = np.triu_indices(x.shape[-1], k=1)
    return np.sign(x[..., i] - x[..., j])


def kendall_tau(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Kendall τ-b of each row of ``x`` with the same row of ``y`` (as scipy's ``kendalltau``); constant: 0."""
    sx, sy = _pair_signs(x), _pair_signs(y)
    den = np.sqrt(np.sum(sx * sx, axis=-1) * np.sum(sy * sy, axis=-1))
    num = np.sum(sx * sy, axis=-1)
    safe = np.where(den > 0, den, 1.0)
    return np.where(den > 0, num / safe, 0.0)


def separated_pairs(replicates: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """Which ``pairs`` ((p, 2) indices) a level separates: the 95% percentile interval of the difference of
    their (B, n) Δ replicates excludes 0. Returns (p,) bools."""
    if pairs.size == 0:
        return np.zeros(0, dtype=bool)
    diff = replicates[:, pairs[:, 0]] - replicates[:, pairs[:, 1]]
    bounds = np.array([st.percentile_ci(diff[:, c]) for c in range(diff.shape[1])])
    return (bounds[:, 0] > 0) | (bounds[:, 1] < 0)


def pairwise_agreement(x: np.ndarray, y: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """Share of ``pairs`` ((p, 2) index pairs) that ``x`` orders as ``y`` does, per row; a tie in x counts 1/2."""
    if pairs.size == 0:
        return np.full(x.shape[:-1], np.nan)
    sx = np.sign(x[..., pairs[:, 0]] - x[..., pairs[:, 1]])
    sy = np.sign(y[..., pairs[:, 0]] - y[..., pairs[:, 1]])
    score = np.where(sx == 0, 0.5, (sx == sy).astype(np.float64))
    return score.mean(axis=-1)


def verdict(rho: Interval, n_separated: int) -> Verdict:
    """The verdict from ρ's interval (rule in the module docstring); uncertain when the target separates none."""
    if n_separated == 0 or not math.isfinite(rho.estimate):
        return Verdict.UNCERTAIN
    if rho.estimate >= RHO_AGREES and rho.ci_low >= RHO_FLOOR:
        return Verdict.AGREES
    if rho.ci_high < RHO_FLOOR:
        return Verdict.DISAGREES
    return Verdict.UNCERTAIN


# ------------------------------------------------------------------------------------------- resampling


@dataclass(frozen=True)
class _Deltas:
    """Δs of the compared variants at both levels: points (n,) and bootstrap replicates (B, n)."""

    variants: tuple[str, ...]
    proxy: np.ndarray
    target: np.ndarray
    proxy_reps: np.ndarray
    target_reps: np.ndarray
    n_units: int
    min_seeds: tuple[int, int]

    def subset(self, variants: Sequence[str]) -> _Deltas:
        """Only ``variants`` (a subset, in the given order)."""
        idx = [self.variants.index(v) for v in variants]
        return _Deltas(
            tuple(variants),
            self.proxy[idx],
            self.target[idx],
            self.proxy_reps[:, idx],
            self.target_reps[:, idx],
            self.n_units,
            self.min_seeds,
        )


def seed_replicates(per_seed: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(B, m) per-seed replicates -> (B,): per resample, m seeds drawn with replacement, variance unshrunk.

    The drawn mean's deviation from the all-seed mean is scaled by √(m / (m − 1)), so its variance over
    draws is s² / m (ddof = 1), not the plug-in (m − 1) / m · s² / m. One seed: the replicates as they are.
    """
    n_boot, m = per_seed.shape
    if m == 1:
        return per_seed[:, 0].copy()
    draws = rng.integers(0, m, size=(n_boot, m))
    full = per_seed.mean(axis=1)
    drawn = np.take_along_axis(per_seed, draws, axis=1).mean(axis=1)
    return full + math.sqrt(m / (m - 1)) * (drawn - full)


def seed_rng(seed: int, variant: str) -> np.random.Generator:
    """The generator of ``variant``'s seed draws: the same on every set and at every level."""
    return st.set_rng(seed, f"agreement\x00seeds\x00{variant}")


def _level_scores(
    level: Level,
    arms: Sequence[str],
    eval_set: str,
    reference: st.ExampleStats,
    resamples: st.Resamples,
    codes: np.ndarray,
    seed: int,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Points (arms,) and replicates (B, arms) of every arm at one level on one set; the fewest seeds."""
    per_arm = [[st.align(reference, e) for e in level.arms[a][eval_set]] for a in arms]
    widths = [len(p) for p in per_arm]
    stacked = np.stack([e.stats for p in per_arm for e in p])  # (M, n, k)
    units = st.unit_sums(stacked, codes, resamples.n_units)  # (M, U, k)
    total, n_units, k = units.shape
    sums = resamples.counts @ np.moveaxis(units, 1, 0).reshape(n_units, total * k)
    boot = st.headline(reference.reducer, reference.stat_names, sums.reshape(resamples.n_boot, total, k))
    point = st.headline(reference.reducer, reference.stat_names, units.sum(axis=1))
    bounds = np.cumsum([0, *widths])
    points = np.array([point[bounds[j] : bounds[j + 1]].mean() for j in range(len(arms))])
    reps = np.stack(
        [seed_replicates(boot[:, bounds[j] : bounds[j + 1]], seed_rng(seed, a)) for j, a in enumerate(arms)],
        axis=1,
    )
    return points, reps, min(widths)


def _set_deltas(
    eval_set: str, proxy: Level, target: Level, base: str, variants: Sequence[str], n_boot: int, seed: int
) -> _Deltas:
    """Δs on one set at both levels, on ONE unit draw shared by every arm at both levels."""
    reference = target.arms[base][eval_set][0]
    st.check_unique_ids(reference)
    codes, n_units = st.unit_codes(reference.units)
    resamples = st.Resamples.draw(eval_set, n_units, n_boot, seed)
    arms = [base, *variants]
    p_point, p_reps, p_seeds = _level_scores(proxy, arms, eval_set, reference, resamples, codes, seed)
    t_point, t_reps, t_seeds = _level_scores(target, arms, eval_set, reference, resamples, codes, seed)
    return _Deltas(
        tuple(variants),
        p_point[1:] - p_point[0],
        t_point[1:] - t_point[0],
        p_reps[:, 1:] - p_reps[:, :1],
        t_reps[:, 1:] - t_reps[:, :1],
        n_units,
        (p_seeds, t_seeds),
    )


def _macro(deltas: Sequence[_Deltas], variants: Sequence[str]) -> _Deltas:
    """The mean over sets of each variant's Δ (the macro's Δ), replicate by replicate."""
    parts = [d.subset(variants) for d in deltas]
    return _Deltas(
        tuple(variants),
        np.mean([p.proxy for p in parts], axis=0),
        np.mean([p.target for p in parts], axis=0),
        np.mean([p.proxy_reps for p in parts], axis=0),
        np.mean([p.target_reps for p in parts], axis=0),
        sum(p.n_units for p in parts),
        (min(p.min_seeds[0] for p in parts), min(p.min_seeds[1] for p in parts)),
    )


def _summarise(name: str, family: str, sets: Sequence[str], d: _Deltas) -> SetAgreement:
    """Every statistic of one set (or macro) with its interval, and the verdict."""
    n = len(d.variants)
    pairs = np.stack(np.triu_indices(n, k=1), axis=1)
    sep = pairs[separated_pairs(d.target_reps, pairs)]
    rho = Interval.from_replicates(
        float(rank_correlation(d.proxy, d.target)), rank_correlation(d.proxy_reps, d.target_reps)
    )
    tau = Interval.from_replicates(
        float(kendall_tau(d.proxy, d.target)), kendall_tau(d.proxy_reps, d.target_reps)
    )
    pairwise = Interval.from_replicates(
        float(pairwise_agreement(d.proxy, d.target, sep)),
        pairwise_agreement(d.proxy_reps, d.target_reps, sep),
    )
    top_p, top_t = int(np.argmax(d.proxy)), int(np.argmax(d.target))
    rows = np.arange(d.target_reps.shape[0])
    boot_top_p = np.argmax(d.proxy_reps, axis=1)
    regret = Interval.from_replicates(
        float(d.target[top_t] - d.target[top_p]),
        d.target_reps.max(axis=1) - d.target_reps[rows, boot_top_p],
    )
    return SetAgreement(
        eval_set=name,
        family=family,
        sets=tuple(sets),
        variants=d.variants,
        proxy_delta=tuple(Interval.from_replicates(float(d.proxy[i]), d.proxy_reps[:, i]) for i in range(n)),
        target_delta=tuple(
            Interval.from_replicates(float(d.target[i]), d.target_reps[:, i]) for i in range(n)
        ),
        spearman=rho,
        kendall=tau,
        pairwise=pairwise,
        n_pairs=len(pairs),
        separated=tuple((d.variants[i], d.variants[j]) for i, j in sep),
        top_proxy=d.variants[top_p],
        top_target=d.variants[top_t],
        top_agree_share=float(np.mean(boot_top_p == np.argmax(d.target_reps, axis=1))),
        regret=regret,
        n_units=d.n_units,
        min_seeds=d.min_seeds,
        verdict=verdict(rho, len(sep)),
    )


# ------------------------------------------------------------------------------------------- entry point


def _has(level: Level, variant: str, eval_set: str) -> bool:
    """Whether ``variant`` has at least one seed's statistics on ``eval_set`` at ``level``."""
    return bool(level.arms.get(variant, {}).get(eval_set))


def _common_variants(proxy: Level, target: Level, base: str) -> tuple[list[str], list[str], list[str]]:
    """(compared, proxy only, target only) variants, in the target's order; raises when too few."""
    problems = [
        Problem(
            lvl.key,
            f"the base {base!r} has no results at level {lvl.name!r}",
            f"run the base at {lvl.name!r} too: every level's Δs are taken against its own base",
        )
        for lvl in (proxy, target)
        if base not in lvl.arms
    ]
    if problems:
        raise ConfigError(problems)
    common = [v for v in target.arms if v != base and v in proxy.arms]
    proxy_only = [v for v in proxy.arms if v != base and v not in target.arms]
    target_only = [v for v in target.arms if v != base and v not in proxy.arms]
    if len(common) < MIN_VARIANTS:
        lone = "; ".join(
            f"at {lvl} only: {', '.join(vs)}"
            for lvl, vs in ((proxy.name, proxy_only), (target.name, target_only))
            if vs
        )
        raise ConfigError(
            [
                Problem(
                    target.key,
                    f"{len(common)} variant(s) besides the base ran at both {proxy.name!r} and "
                    f"{target.name!r} ({', '.join(common) or 'none'}); a rank agreement needs at least "
                    f"{MIN_VARIANTS}" + (f" ({lone})" if lone else ""),
                    f"run at least {MIN_VARIANTS} of the variants at both levels (e.g. {MIN_VARIANTS} or "
                    "more anchors at the target)",
                )
            ]
        )
    return common, proxy_only, target_only


def compare_levels(
    proxy: Level,
    target: Level,
    *,
    base: str,
    families: Mapping[str, str] | None = None,
    n_boot: int = 1000,
    seed: int = 0,
) -> LevelAgreement:
    """The agreement of ``proxy``'s variant Δs with ``target``'s, per eval set and per task-family macro.

    Args:
        proxy: the cheap level (a proxy fidelity, or an early checkpoint).
        target: the level it stands in for (the target fidelity, or the final checkpoint).
        base: the base variant; each level's Δs are against the base at that level.
        families: eval set -> task-family label (``collect`` passes ``<family>/<split>``); a macro per label
            over all its sets present at either level, with the variants present on every one of them (as
            ``collect``'s macros); skipped, with the reason, when one of its sets has no agreement.
        n_boot: bootstrap resamples.
        seed: the bootstrap seed; with ``collect``'s seed the unit draws are ``collect``'s.

    Raises:
        ConfigError: the base is missing at a level, or fewer than ``MIN_VARIANTS`` variants besides it ran
            at both levels (naming the level's key, and the variants run at one level only).
        DataError: a predictions file holds other examples than the target base's (from ``stats.align``).
    """
    common, proxy_only, target_only = _common_variants(proxy, target, base)
    for lvl, vs in ((proxy.name, proxy_only), (target.name, target_only)):
        if vs:
            log.info("agreement: variants at %s only, not compared: %s", lvl, ", ".join(vs))
    skipped: dict[str, str] = {}
    computed: dict[str, _Deltas] = {}
    names = list(target.arms[base]) + [s for s in proxy.arms[base] if s not in target.arms[base]]
    for name in names:
        if not (_has(proxy, base, name) and _has(target, base, name)):
            missing = proxy.name if not _has(proxy, base, name) else target.name
            skipped[name] = f"the base has no results at {missing!r}"
            continue
        variants = [v for v in common if _has(proxy, v, name) and _has(target, v, name)]
        if len(variants) < MIN_VARIANTS:
            skipped[name] = f"{len(variants)} variant(s) at both levels, fewer than {MIN_VARIANTS}"
            continue
        computed[name] = _set_deltas(name, proxy, target, base, variants, n_boot, seed)
    results = [_summarise(name, (families or {}).get(name, ""), [name], d) for name, d in computed.items()]
    macro_sets: dict[str, list[str]] = {}
    for name in names:
        if families and name in families:
            macro_sets.setdefault(families[name], []).append(name)
    for family, sets in macro_sets.items():
        lacking = [s for s in sets if s not in computed]
        if lacking:
            skipped[f"macro:{family}"] = f"no agreement on {', '.join(lacking)} (of the family's sets)"
            continue
        variants = [v for v in common if all(v in computed[s].variants for s in sets)]
        if len(variants) < MIN_VARIANTS:
            skipped[f"macro:{family}"] = f"{len(variants)} variant(s) on every set, fewer than {MIN_VARIANTS}"
            continue
        d = _macro([computed[s] for s in sets], variants)
        results.append(_summarise(f"macro:{family}", family, sets, d))
    for name, why in skipped.items():
        log.warning("agreement %s vs %s: no agreement on %s: %s", proxy.name, target.name, name, why)
    return LevelAgreement(
        proxy.name,
        target.name,
        base,
        tuple(results),
        tuple(proxy_only),
        tuple(target_only),
        skipped,
        n_boot,
    )

"""The sweep statistics against their nominal rates on simulated sweeps (fast versions of the benchmark).

``benchmarks/sweep_calibration.py`` runs >= 400 sweeps per cell; here each check runs 200 (or fewer), so the
bounds allow for that Monte Carlo error: a rate's MC se is sqrt(p (1 - p) / n), 1.5 points at p = 5%, n = 200.
The null test with 3 seeds and seed sd 1 point fails on the former method (seeds resampled, variance shrunk
by (m - 1)/m, normal reference), whose false-positive rate there is about 15%.
"""

from __future__ import annotations

import numpy as np
import pytest

from biotune.sweep import stats as st
from biotune.testing.simulate import Arm, NerDesign, simulate_accuracy, simulate_ner

DESIGN = NerDesign(n_docs=150, sentences_per_doc=4)
#: Where seed variance dominates (many documents, strongly correlated errors): the former method's worst case.
SEED_BOUND = NerDesign(n_docs=600, sentences_per_doc=4, shared=0.9)


def _outcomes(
    seed: int,
    effect: float,
    seed_sd: float,
    m: int,
    sweeps: int,
    n_boot: int = 200,
    design: NerDesign = DESIGN,
) -> tuple[np.ndarray, np.ndarray]:
    """(rejected at raw p < 0.05, CI covers the true Δ) for ``sweeps`` base-vs-variant comparisons."""
    rng = np.random.default_rng(seed)
    rejected, covered = [], []
    for i in range(sweeps):
        sim = simulate_ner(rng, [Arm(0.0, m), Arm(effect, m)], seed_sd, design, by="doc")
        us = sim.unit_stats()
        r = st.Resamples.draw(f"sim/{i}", sim.n_units, n_boot, seed)
        arms = st.score_arms(r, sim.reducer, sim.stat_names, {"base": us[0], "variant": us[1]})
        d = st.delta(arms["variant"], arms["base"])
        rejected.append(d.p_value < st.ALPHA)
        covered.append(d.ci_low <= effect / 100 <= d.ci_high)
    return np.array(rejected), np.array(covered)


def test_null_false_positive_rate_with_three_seeds_and_seed_sd_one_point() -> None:
    """Nominal 5% (5.0% measured here); main's two-level bootstrap gives 16.3% on these very sweeps.

    Bound 9%: 3.2 MC se above 5% and 3.3 below 16% at n = 300.
    """
    rejected, covered = _outcomes(seed=1, effect=0.0, seed_sd=1.0, m=3, sweeps=300, design=SEED_BOUND)
    assert rejected.mean() <= 0.09, f"false-positive rate {rejected.mean():.3f} with 3 seeds"
    assert covered.mean() >= 0.91


def test_coverage_of_a_planted_effect_with_five_seeds() -> None:
    rejected, covered = _outcomes(seed=2, effect=2.0, seed_sd=1.0, m=5, sweeps=160)
    assert covered.mean() >= 0.89, f"coverage {covered.mean():.3f}"  # nominal 95%, MC se 1.7 points
    assert rejected.mean() > 0.4  # and the test still finds a 2-point effect most of the time


def test_one_seed_per_arm_is_conditional_and_does_not_control_a_recipe_null() -> None:
    """With seed variance present and one seed per arm, 'these two models differ' is not 'the recipes differ':
    the rate of false recipe effects is far above 5%, which is why those rows are labelled."""
    rejected, _ = _outcomes(seed=3, effect=0.0, seed_sd=1.5, m=1, sweeps=80)
    assert rejected.mean() > 0.25
    rejected0, _ = _outcomes(seed=4, effect=0.0, seed_sd=0.0, m=1, sweeps=120)
    assert rejected0.mean() <= 0.11  # without seed variance, the conditional test is valid


def test_macro_average_null_rate_with_three_seeds() -> None:
    rng = np.random.default_rng(5)
    rejected = []
    for i in range(120):
        per_arm: dict[str, list[st.ArmScore]] = {"base": [], "variant": []}
        for sim in (
            simulate_ner(rng, [Arm(0.0, 3), Arm(0.0, 3)], 1.0, DESIGN, by="doc"),
            simulate_accuracy(rng, [Arm(0.0, 3), Arm(0.0, 3)], 1.0, n_examples=300),
        ):
            us = sim.unit_stats()
            r = st.Resamples.draw(f"{sim.reducer}/{i}", sim.n_units, 200, 0)
            scored = st.score_arms(r, sim.reducer, sim.stat_names, {"base": us[0], "variant": us[1]})
            for k in per_arm:
                per_arm[k].append(scored[k])
        macro_v = st.macro_average("variant", per_arm["variant"])
        d = st.delta(macro_v, st.macro_average("base", per_arm["base"]))
        assert d.inference is st.Inference.SEED_T and macro_v.n_seeds == 3
        rejected.append(d.p_value < st.ALPHA)
    assert np.mean(rejected) <= 0.11  # nominal 5%, MC se 2 points at n = 120


def test_simulated_effects_are_the_population_differences_they_claim() -> None:
    rng = np.random.default_rng(6)
    big = NerDesign(n_docs=20_000, sentences_per_doc=2)
    sim = simulate_ner(rng, [Arm(0.0, 1), Arm(3.0, 1)], 0.0, big, by="doc")
    f1 = [100 * float(st.headline("f1", sim.stat_names, a.sum(axis=(0, 1)))) for a in sim.arms]
    assert f1[0] == pytest.approx(sim.truth[0], abs=0.4) and f1[1] - f1[0] == pytest.approx(3.0, abs=0.25)
    acc = simulate_accuracy(rng, [Arm(0.0, 1), Arm(-2.0, 1)], 0.0, n_examples=100_000)
    means = [100 * a[0, :, 0].mean() for a in acc.arms]
    assert means[1] - means[0] == pytest.approx(-2.0, abs=0.3)
    # seed offsets have the sd they claim (in F1 points), measured over many seeds on a large set
    seeds = simulate_ner(rng, [Arm(0.0, 40)], 1.5, NerDesign(n_docs=4000), by="doc")
    per_seed = [100 * float(st.headline("f1", seeds.stat_names, s.sum(axis=0))) for s in seeds.arms[0]]
    assert 1.1 < np.std(per_seed, ddof=1) < 2.1

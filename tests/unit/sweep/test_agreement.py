"""Level agreement (proxy vs target, checkpoint vs final): statistics against scipy, the verdict on planted
agreement and disagreement, coverage and false "agrees" by simulation, joint resampling, writers, bad input.

Per-example predictions are synthetic (no training): accuracy sets where example i has a latent difficulty
z_i shared by every arm at both levels (the paired design), and each arm's per-example correctness is drawn
from Φ(effect + seed offset + z_i). The true Δs are monotone in the effects, so the true ρ is the Spearman
correlation of the planted effects.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import scipy.stats
from synthetic import ner_rows

from biotune.errors import ConfigError, DataError
from biotune.sweep import agreement as ag
from biotune.sweep import agreement_report as rep
from biotune.sweep import stats as st

STAT_NAMES = ("correct", "n")


def _accuracy_arms(
    level: str,
    effects: dict[str, float],
    z: np.ndarray,
    rng: np.random.Generator,
    *,
    seeds: int = 1,
    sd_seed: float = 0.0,
    eval_set: str = "hoc/test",
) -> dict[str, dict[str, list[st.ExampleStats]]]:
    n = z.size
    ids = pa.array([f"{eval_set}/{i}" for i in range(n)], type=pa.string())
    arms: dict[str, dict[str, list[st.ExampleStats]]] = {}
    for variant, effect in effects.items():
        exs = []
        for s in range(seeds):
            p = scipy.stats.norm.cdf(effect + rng.normal(0.0, sd_seed) + z)
            correct = (rng.random(n) < p).astype(np.float64)
            stats = np.stack([correct, np.ones(n)], axis=1)
            exs.append(
                st.ExampleStats(
                    Path(f"{level}/{variant}-s{s}.jsonl"), "accuracy", STAT_NAMES, ids, ids, stats
                )
            )
        arms[variant] = {eval_set: exs}
    return arms


def _names(k: int) -> list[str]:
    return ["base"] + [f"v{i}" for i in range(k)]


def _levels(
    target_effects: Sequence[float],
    proxy_effects: Sequence[float],
    rng: np.random.Generator,
    *,
    n: int = 1000,
    seeds: int = 1,
    sd_seed: float = 0.0,
) -> tuple[ag.Level, ag.Level]:
    names = _names(len(target_effects))
    z = rng.normal(0.0, 1.0, n)
    target = _accuracy_arms(
        "target", dict(zip(names, [0.0, *target_effects], strict=True)), z, rng, seeds=seeds, sd_seed=sd_seed
    )
    proxy = _accuracy_arms(
        "proxy", dict(zip(names, [0.0, *proxy_effects], strict=True)), z, rng, seeds=seeds, sd_seed=sd_seed
    )
    return ag.Level("small", proxy, "fidelities.small"), ag.Level("target", target, "fidelities.target")


def _accuracy(exs: Sequence[st.ExampleStats]) -> float:
    return float(np.mean([e.stats[:, 0].sum() / e.stats[:, 1].sum() for e in exs]))


GRADED = np.linspace(-0.3, 0.3, 6)


# ------------------------------------------------------------------------------------------- statistics


@pytest.mark.parametrize(
    ("x", "y"),
    [
        ([0.1, 0.4, -0.2, 0.3, 0.0, 0.25], [0.2, 0.5, -0.1, 0.1, 0.05, 0.6]),
        ([1.0, 2.0, 2.0, 3.0, 5.0], [2.0, 1.0, 4.0, 4.0, 3.0]),  # ties on both sides
        ([3.0, 1.0, 2.0], [-1.0, -3.0, -2.0]),
        ([0.5, 0.1, 0.3, 0.2], [0.1, 0.5, 0.2, 0.3]),
    ],
)
def test_coefficients_equal_scipy(x: list[float], y: list[float]) -> None:
    xa, ya = np.array(x), np.array(y)
    assert float(ag.rank_correlation(xa, ya)) == pytest.approx(
        scipy.stats.spearmanr(xa, ya).statistic, abs=1e-12
    )
    assert float(ag.kendall_tau(xa, ya)) == pytest.approx(scipy.stats.kendalltau(xa, ya).statistic, abs=1e-12)
    batch_x, batch_y = np.stack([xa, ya, xa[::-1]]), np.stack([ya, xa, ya])
    for row in range(3):
        bx, by = batch_x[row], batch_y[row]
        assert ag.rank_correlation(batch_x, batch_y)[row] == pytest.approx(
            scipy.stats.spearmanr(bx, by).statistic
        )
        assert ag.kendall_tau(batch_x, batch_y)[row] == pytest.approx(
            scipy.stats.kendalltau(bx, by).statistic
        )


def test_a_constant_side_has_no_order_and_counts_zero() -> None:
    x, y = np.zeros(5), np.arange(5.0)
    assert float(ag.rank_correlation(x, y)) == 0.0 and float(ag.kendall_tau(x, y)) == 0.0
    pairs = np.array([[0, 1], [2, 4]])
    assert float(ag.pairwise_agreement(x, y, pairs)) == 0.5  # ties count one half
    assert float(ag.pairwise_agreement(y, y, pairs)) == 1.0
    assert math.isnan(float(ag.pairwise_agreement(y, y, np.zeros((0, 2), dtype=np.int64))))


def test_compare_levels_point_statistics_equal_scipy_on_the_deltas() -> None:
    rng = np.random.default_rng(1)
    proxy, target = _levels(GRADED, GRADED[[1, 0, 3, 5, 2, 4]], rng, seeds=2, sd_seed=0.05)
    result = ag.compare_levels(proxy, target, base="base", n_boot=200, seed=3)
    (s,) = result.sets
    names = _names(6)[1:]
    assert s.variants == tuple(names) and s.n_variants == 6 and s.n_pairs == 15
    p = np.array(
        [_accuracy(proxy.arms[v]["hoc/test"]) - _accuracy(proxy.arms["base"]["hoc/test"]) for v in names]
    )
    t = np.array(
        [_accuracy(target.arms[v]["hoc/test"]) - _accuracy(target.arms["base"]["hoc/test"]) for v in names]
    )
    np.testing.assert_allclose([d.estimate for d in s.proxy_delta], p, atol=1e-12)
    np.testing.assert_allclose([d.estimate for d in s.target_delta], t, atol=1e-12)
    assert s.spearman.estimate == pytest.approx(scipy.stats.spearmanr(p, t).statistic, abs=1e-12)
    assert s.kendall.estimate == pytest.approx(scipy.stats.kendalltau(p, t).statistic, abs=1e-12)
    assert s.top_proxy == names[int(np.argmax(p))] and s.top_target == names[int(np.argmax(t))]
    assert s.regret.estimate == pytest.approx(t.max() - t[int(np.argmax(p))], abs=1e-12)
    index = {v: i for i, v in enumerate(names)}
    agree = [np.sign(p[index[a]] - p[index[b]]) == np.sign(t[index[a]] - t[index[b]]) for a, b in s.separated]
    assert s.separated and s.pairwise.estimate == pytest.approx(np.mean(agree))
    for iv in (s.spearman, s.kendall, s.pairwise, s.regret):
        assert iv.ci_low <= iv.ci_high
    assert s.min_seeds == (2, 2) and s.n_units == 1000


def test_separated_pairs_are_those_whose_target_interval_excludes_zero() -> None:
    rng = np.random.default_rng(2)
    # v0 and v1 are equal at the target; v2 is far above both
    proxy, target = _levels([0.0, 0.0, 0.8], [0.1, 0.0, 0.8], rng, n=1500)
    (s,) = ag.compare_levels(proxy, target, base="base", n_boot=400, seed=0).sets
    assert ("v0", "v2") in s.separated and ("v1", "v2") in s.separated
    assert ("v0", "v1") not in s.separated and len(s.separated) == 2


# ------------------------------------------------------------------------------------------- verdict


def test_verdict_rule() -> None:
    assert ag.verdict(ag.Interval(0.85, 0.55, 0.97), 3) is ag.Verdict.AGREES
    assert ag.verdict(ag.Interval(0.85, 0.45, 0.97), 3) is ag.Verdict.UNCERTAIN  # lower bound below the floor
    assert ag.verdict(ag.Interval(0.75, 0.6, 0.9), 3) is ag.Verdict.UNCERTAIN  # point below 0.8
    assert ag.verdict(ag.Interval(0.1, -0.6, 0.49), 3) is ag.Verdict.DISAGREES
    assert ag.verdict(ag.Interval(1.0, 1.0, 1.0), 0) is ag.Verdict.UNCERTAIN  # the target separates nothing


def test_planted_agreement_agrees_and_planted_disagreement_disagrees() -> None:
    rng = np.random.default_rng(4)
    weaker, target = _levels(GRADED, 0.5 * GRADED, rng, n=2000)
    agree = ag.compare_levels(weaker, target, base="base", n_boot=300, seed=1).sets[0]
    assert agree.verdict is ag.Verdict.AGREES and agree.spearman.ci_low >= ag.RHO_FLOOR
    assert agree.top_agrees and agree.pairwise.estimate >= 0.8 and agree.kendall.estimate >= 0.6
    reversed_, target = _levels(GRADED, -GRADED, rng, n=2000)
    disagree = ag.compare_levels(reversed_, target, base="base", n_boot=300, seed=1).sets[0]
    assert disagree.verdict is ag.Verdict.DISAGREES and disagree.spearman.ci_high < ag.RHO_FLOOR
    assert not disagree.top_agrees and disagree.regret.estimate > 0 and disagree.regret.ci_low > 0


def test_a_learning_rate_zero_proxy_disagrees() -> None:
    """Every variant at the proxy is the base model itself: all Δs are 0, on every resample."""
    rng = np.random.default_rng(5)
    _, target = _levels(GRADED, GRADED, rng)
    base_files = target.arms["base"]["hoc/test"]
    frozen = ag.Level("lr0", {v: {"hoc/test": base_files} for v in target.arms}, "fidelities.lr0")
    (s,) = ag.compare_levels(frozen, target, base="base", n_boot=200).sets
    assert (s.spearman.estimate, s.spearman.ci_low, s.spearman.ci_high) == (0.0, 0.0, 0.0)
    assert s.verdict is ag.Verdict.DISAGREES


@pytest.mark.parametrize(("seeds", "sd_seed"), [(1, 0.0), (3, 0.1)])
def test_an_unrelated_proxy_rarely_agrees(seeds: int, sd_seed: float) -> None:
    """A proxy whose variants all equal its base (plus noise) against a target with graded effects."""
    sims, agrees = 60, 0
    for k in range(sims):
        rng = np.random.default_rng(100 + k)
        proxy, target = _levels(GRADED, np.zeros(6), rng, n=800, seeds=seeds, sd_seed=sd_seed)
        agrees += ag.compare_levels(proxy, target, base="base", n_boot=200, seed=k).sets[0].verdict is (
            ag.Verdict.AGREES
        )
    assert agrees / sims <= 0.06


@pytest.mark.parametrize(("seeds", "sd_seed"), [(1, 0.0), (3, 0.1)])
def test_rho_and_tau_intervals_cover_the_truth(seeds: int, sd_seed: float) -> None:
    """The truth: ρ and τ of the true Δs, which are monotone in the planted effects (true ρ 0.66, τ 0.47)."""
    proxy_effects = GRADED[[1, 0, 3, 5, 2, 4]]
    rho_truth = scipy.stats.spearmanr(proxy_effects, GRADED).statistic
    tau_truth = scipy.stats.kendalltau(proxy_effects, GRADED).statistic
    sims, rho_covered, tau_covered = 60, 0, 0
    for k in range(sims):
        rng = np.random.default_rng(200 + k)
        proxy, target = _levels(GRADED, proxy_effects, rng, n=800, seeds=seeds, sd_seed=sd_seed)
        s = ag.compare_levels(proxy, target, base="base", n_boot=200, seed=k).sets[0]
        rho_covered += s.spearman.ci_low <= rho_truth <= s.spearman.ci_high
        tau_covered += s.kendall.ci_low <= tau_truth <= s.kendall.ci_high
    assert rho_covered / sims >= 0.93 and tau_covered / sims >= 0.93


# ------------------------------------------------------------------------------------------- resampling


def test_units_are_drawn_jointly_across_levels_and_as_collect_draws_them() -> None:
    """A proxy identical to the target gets identical Δ intervals and ρ = 1 on EVERY resample (independent
    draws per level would scatter ρ below 1); the unit draws are collect's (``paired_bootstrap``'s)."""
    rng = np.random.default_rng(6)
    _, target = _levels(GRADED, GRADED, rng, n=300)
    twin = ag.Level("twin", target.arms, "fidelities.twin")
    (s,) = ag.compare_levels(twin, target, base="base", n_boot=300, seed=9).sets
    assert s.proxy_delta == s.target_delta
    assert (s.spearman.ci_low, s.spearman.ci_high) == (1.0, 1.0) and s.top_agree_share == 1.0
    comp = st.paired_bootstrap(
        target.arms["base"]["hoc/test"],
        target.arms["v0"]["hoc/test"],
        n_boot=300,
        seed=9,
        eval_set="hoc/test",
        names=("base", "v0"),
    )
    got = s.target_delta[0]
    assert (got.ci_low, got.ci_high) == pytest.approx((comp.delta.ci_low, comp.delta.ci_high), abs=1e-12)


def test_seeds_are_drawn_jointly_across_levels_as_for_checkpoints_of_one_run() -> None:
    """Checkpoint levels: seed i at step N and at the end is the same run, so each resample must draw the same
    seeds at both levels. Twin levels with 3 noisy seeds then agree exactly on every resample."""
    rng = np.random.default_rng(13)
    _, final = _levels(GRADED, GRADED, rng, n=300, seeds=3, sd_seed=0.3)
    early = ag.Level("step-500", final.arms, "eval.during_training")
    (s,) = ag.compare_levels(early, final, base="base", n_boot=300, seed=2).sets
    assert s.min_seeds == (3, 3) and s.proxy_delta == s.target_delta
    assert (s.spearman.ci_low, s.spearman.ci_high) == (1.0, 1.0)
    assert (s.kendall.ci_low, s.kendall.ci_high) == (1.0, 1.0)


def test_seed_draws_keep_the_seed_variance_unshrunk() -> None:
    per_seed = np.tile(np.array([0.60, 0.64, 0.70]), (40_000, 1))  # no unit noise: only the seeds vary
    reps = ag.seed_replicates(per_seed, np.random.default_rng(0))
    s2 = np.var([0.60, 0.64, 0.70], ddof=1)
    assert np.mean(reps) == pytest.approx(per_seed[0].mean(), abs=1e-3)
    assert np.var(reps) == pytest.approx(s2 / 3, rel=0.03)  # the plug-in draw would give 2/3 of it
    np.testing.assert_array_equal(
        ag.seed_replicates(per_seed[:, :1], np.random.default_rng(0)), per_seed[:, 0]
    )


def test_ner_sets_resample_documents_and_macro_is_the_mean_of_the_sets() -> None:
    rng = np.random.default_rng(7)
    recalls = {"base": 0.6, "a": 0.62, "b": 0.7, "c": 0.8, "d": 0.55}

    def level(name: str, shift: float) -> ag.Level:
        arms: dict[str, dict[str, list[st.ExampleStats]]] = {}
        for v, r in recalls.items():
            ner = ner_rows("ncbi", "test", 30, 4, r + shift, rng)
            bc = ner_rows("bc5cdr", "test", 25, 3, r, rng)
            arms[v] = {
                "ncbi/test": [st.ExampleStats.from_rows(ner, f"{name}/{v}/ncbi.jsonl", "f1")],
                "bc5cdr/test": [st.ExampleStats.from_rows(bc, f"{name}/{v}/bc5cdr.jsonl", "f1")],
            }
        return ag.Level(name, arms, f"fidelities.{name}")

    families = {"ncbi/test": "ner/test", "bc5cdr/test": "ner/test"}
    result = ag.compare_levels(
        level("short", -0.05), level("target", 0.0), base="base", families=families, n_boot=200
    )
    by_name = {s.eval_set: s for s in result.sets}
    assert list(by_name) == ["ncbi/test", "bc5cdr/test", "macro:ner/test"]
    assert by_name["ncbi/test"].n_units == 30 and by_name["bc5cdr/test"].n_units == 25  # documents
    macro = by_name["macro:ner/test"]
    assert macro.n_units == 55 and macro.sets == ("ncbi/test", "bc5cdr/test")
    for i in range(4):
        expected = (
            by_name["ncbi/test"].target_delta[i].estimate + by_name["bc5cdr/test"].target_delta[i].estimate
        ) / 2
        assert macro.target_delta[i].estimate == pytest.approx(expected, abs=1e-12)


# ------------------------------------------------------------------------------------------- writers


def test_csv_markdown_and_plot_are_written(tmp_path: Path) -> None:
    rng = np.random.default_rng(8)
    proxy, target = _levels(GRADED, 0.5 * GRADED, rng, n=600, seeds=2, sd_seed=0.05)
    result = ag.compare_levels(proxy, target, base="base", families={"hoc/test": "cls/test"}, n_boot=200)
    path = rep.write_csv([result], tmp_path, scale=100.0)
    rows = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))
    assert tuple(rows[0]) == rep.CSV_COLUMNS
    sets = {r["eval_set"] for r in rows}
    assert sets == {"hoc/test", "macro:cls/test"}
    rho = next(r for r in rows if r["statistic"] == "spearman" and r["eval_set"] == "hoc/test")
    s = result.sets[0]
    assert float(rho["estimate"]) == pytest.approx(s.spearman.estimate) and rho["verdict"] == s.verdict.value
    assert rho["n_variants"] == "6" and rho["n_separated"] == str(len(s.separated))
    delta = next(
        r
        for r in rows
        if r["statistic"] == "target_delta" and r["variant"] == "v5" and r["eval_set"] == "hoc/test"
    )
    assert float(delta["estimate"]) == pytest.approx(100.0 * s.target_delta[5].estimate)
    assert sum(r["statistic"] == "proxy_delta" for r in rows) == 12
    md = rep.to_markdown([result], scale=100.0)
    assert "### small vs target" in md and f"**{s.verdict.value}**" in md and "| macro:cls/test |" in md
    png = rep.plot(result, tmp_path, scale=100.0)
    assert png == tmp_path / "agreement_small_vs_target.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["agreement.csv", "agreement_small_vs_target.png"]


# ------------------------------------------------------------------------------------------- bad input


def test_fewer_than_three_common_variants_is_a_config_error_naming_the_lone_ones() -> None:
    rng = np.random.default_rng(9)
    proxy, target = _levels(GRADED, GRADED, rng, n=100)
    few = ag.Level("target", {v: target.arms[v] for v in ("base", "v0", "v1")}, "fidelities.target.variants")
    lone = ag.Level("small", {v: proxy.arms[v] for v in ("base", "v0", "v1", "v4", "v5")}, "fidelities.small")
    with pytest.raises(ConfigError) as err:
        ag.compare_levels(lone, few, base="base")
    text = str(err.value)
    assert "fidelities.target.variants" in text and "2 variant(s)" in text and "at least 3" in text
    assert "at small only: v4, v5" in text and "fix:" in text


def test_variants_at_one_level_only_are_reported_and_missing_base_is_an_error() -> None:
    rng = np.random.default_rng(10)
    proxy, target = _levels(GRADED, GRADED, rng, n=200)
    partial = ag.Level("target", {v: target.arms[v] for v in _names(4)}, "fidelities.target")
    result = ag.compare_levels(proxy, partial, base="base", n_boot=100)
    assert result.proxy_only == ("v4", "v5") and result.target_only == ()
    assert result.sets[0].variants == ("v0", "v1", "v2", "v3")
    assert "Run at small only, not compared: v4, v5." in rep.to_markdown([result], scale=100.0)
    no_base = ag.Level("small", {v: proxy.arms[v] for v in _names(6)[1:]}, "fidelities.small")
    with pytest.raises(ConfigError, match="fidelities.small"):
        ag.compare_levels(no_base, target, base="base")


def test_sets_and_macros_without_an_agreement_are_skipped_with_the_reason(tmp_path: Path) -> None:
    rng = np.random.default_rng(11)
    proxy, target = _levels(GRADED, GRADED, rng, n=200)
    three = dict(zip(_names(2), [0.0, 0.1, 0.2], strict=True))
    only_target = _accuracy_arms("target", three, rng.normal(size=50), rng, eval_set="pubmedqa/test")
    z = rng.normal(size=60)
    few_t = _accuracy_arms("target", three, z, rng, eval_set="bioasq/test")
    few_p = _accuracy_arms("proxy", three, z, rng, eval_set="bioasq/test")
    t_arms = {v: {**sets, **only_target.get(v, {}), **few_t.get(v, {})} for v, sets in target.arms.items()}
    t_arms["v5"] = {**t_arms["v5"], "bioasq/test": []}  # no seed evaluated there: not a result
    p_arms = {v: {**sets, **few_p.get(v, {})} for v, sets in proxy.arms.items()}
    families = {"hoc/test": "cls/test", "pubmedqa/test": "qa/test", "bioasq/test": "qa/test"}
    result = ag.compare_levels(
        ag.Level("small", p_arms, "fidelities.small"),
        ag.Level("target", t_arms, "fidelities.target"),
        base="base",
        families=families,
        n_boot=100,
    )
    assert [s.eval_set for s in result.sets] == ["hoc/test", "macro:cls/test"]
    assert "has no results at 'small'" in result.skipped["pubmedqa/test"]
    assert result.skipped["bioasq/test"] == "2 variant(s) at both levels, fewer than 3"
    assert "pubmedqa/test, bioasq/test" in result.skipped["macro:qa/test"]
    md = rep.to_markdown([result], scale=100.0)
    assert "No agreement on bioasq/test: 2 variant(s) at both levels, fewer than 3." in md
    nothing = ag.LevelAgreement("small", "target", "base", (), (), (), dict(result.skipped))
    assert rep.plot(nothing, tmp_path, scale=100.0) is None and not any(tmp_path.iterdir())


def test_levels_scored_on_different_examples_name_the_file() -> None:
    rng = np.random.default_rng(12)
    proxy, target = _levels(GRADED, GRADED, rng, n=200)
    short = {
        v: {
            s: [
                st.ExampleStats(e.path, e.reducer, e.stat_names, e.ids[:150], e.units[:150], e.stats[:150])
                for e in exs
            ]
            for s, exs in sets.items()
        }
        for v, sets in proxy.arms.items()
    }
    with pytest.raises(DataError, match=r"proxy/base-s0\.jsonl: example ids differ"):
        ag.compare_levels(ag.Level("small", short, "fidelities.small"), target, base="base")

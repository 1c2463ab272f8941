"""The paired unit bootstrap against slow, independent references, and the multiple-testing corrections."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
from synthetic import cls_rows, ner_rows

from biotune.errors import DataError
from biotune.sweep import stats as st


def _examples(rows: list[dict], path: str, reducer: str) -> st.ExampleStats:
    return st.ExampleStats.from_rows(rows, path, reducer)


def _f1(tp: float, fp: float, fn: float) -> float:
    den = 2 * tp + fp + fn
    return 2 * tp / den if den else 0.0


def _reference_replicates(
    rows_by_seed: list[list[dict]], unit_order: list[str], indices: np.ndarray, seed_draws: np.ndarray | None
) -> np.ndarray:
    """Slow reference: for each resample, rebuild the example list unit by unit and recompute F1 with loops.

    ``seed_draws`` (B, m) are the training seeds drawn for each resample (None: one seed).
    """
    out = []
    for b in range(indices.shape[0]):
        per_seed = []
        for rows in rows_by_seed:
            by_unit: dict[str, list[dict]] = {}
            for r in rows:
                by_unit.setdefault(r["unit"], []).append(r)
            tp = fp = fn = 0.0
            for u in indices[b]:
                for r in by_unit[unit_order[u]]:
                    tp += r["stats"]["tp"]
                    fp += r["stats"]["fp"]
                    fn += r["stats"]["fn"]
            per_seed.append(_f1(tp, fp, fn))
        drawn = [0] if seed_draws is None else seed_draws[b]
        out.append(sum(per_seed[s] for s in drawn) / len(drawn))
    return np.array(out)


def _first_appearance(rows: list[dict]) -> list[str]:
    order: dict[str, None] = {}
    for r in rows:
        order.setdefault(r["unit"], None)
    return list(order)


def test_bootstrap_equals_a_slow_loop_reference_on_the_same_resamples() -> None:
    rng = np.random.default_rng(7)
    base_rows = ner_rows("ncbi", "test", 25, 4, 0.7, rng)
    variant_rows = ner_rows("ncbi", "test", 25, 4, 0.8, rng)
    shuffled = [variant_rows[i] for i in rng.permutation(len(variant_rows))]  # alignment is by id
    comp = st.paired_bootstrap(
        [_examples(base_rows, "base.jsonl", "f1")],
        [_examples(shuffled, "variant.jsonl", "f1")],
        n_boot=300,
        seed=3,
        eval_set="ncbi/test",
    )
    indices = comp.resamples.indices
    assert indices.shape == (300, 25) and comp.n_units == 25 and comp.n_examples == 100
    units = _first_appearance(base_rows)
    ref_base = _reference_replicates([base_rows], units, indices, None)
    ref_variant = _reference_replicates([variant_rows], units, indices, None)
    ref_delta = ref_variant - ref_base
    np.testing.assert_allclose(comp.delta.replicates, ref_delta, rtol=0, atol=1e-12)
    lo, hi = np.sort(ref_delta)[[0, -1]]
    assert lo <= comp.delta.ci_low < comp.delta.ci_high <= hi
    assert (comp.delta.ci_low, comp.delta.ci_high) == pytest.approx(
        tuple(np.percentile(ref_delta, [2.5, 97.5])), abs=1e-12
    )
    total = lambda rows: _f1(*(sum(r["stats"][k] for r in rows) for k in ("tp", "fp", "fn")))  # noqa: E731
    assert comp.delta.estimate == pytest.approx(total(variant_rows) - total(base_rows), abs=1e-12)


def test_seeds_are_averaged_per_resample_and_the_t_interval_equals_a_direct_computation() -> None:
    """Each arm's replicate is the mean over ALL its seeds (no seed resampling: that shrank the seed variance
    by (m - 1)/m); se² = sd(Δ replicates)² + s_v²/m_v + s_b²/m_b, Welch–Satterthwaite df, Student t."""
    rng = np.random.default_rng(11)
    base = [ner_rows("bc2gm", "test", 20, 3, 0.6 + 0.05 * s, rng) for s in range(3)]
    variant = [ner_rows("bc2gm", "test", 20, 3, 0.7 + 0.05 * s, rng) for s in range(2)]
    comp = st.paired_bootstrap(
        [_examples(r, f"b{i}", "f1") for i, r in enumerate(base)],
        [_examples(r, f"v{i}", "f1") for i, r in enumerate(variant)],
        n_boot=200,
        seed=5,
        eval_set="bc2gm/test",
    )
    units = _first_appearance(base[0])
    all_b, all_v = np.tile(np.arange(3), (200, 1)), np.tile(np.arange(2), (200, 1))
    ref = _reference_replicates(variant, units, comp.resamples.indices, all_v) - _reference_replicates(
        base, units, comp.resamples.indices, all_b
    )
    np.testing.assert_allclose(comp.delta.replicates, ref, rtol=0, atol=1e-12)
    assert comp.base.seed_scores.shape == (3,) and comp.variant.seed_scores.shape == (2,)
    assert comp.variant.sd == pytest.approx(np.std(comp.variant.seed_scores, ddof=1))

    # the interval, by hand
    total = lambda rows: _f1(*(sum(r["stats"][k] for r in rows) for k in ("tp", "fp", "fn")))  # noqa: E731
    sv, sb = np.array([total(r) for r in variant]), np.array([total(r) for r in base])
    est = sv.mean() - sb.mean()
    u2, v2, b2 = np.var(ref, ddof=1), sv.var(ddof=1) / 2, sb.var(ddof=1) / 3
    se = np.sqrt(u2 + v2 + b2)
    df = se**4 / (u2**2 / 19 + v2**2 / 1 + b2**2 / 2)
    d = comp.delta
    assert d.inference is st.Inference.SEED_T and not d.conditional and d.n_seeds == (2, 3)
    assert d.estimate == pytest.approx(est, abs=1e-12)
    assert d.se == pytest.approx(se, rel=1e-12) and d.df == pytest.approx(df, rel=1e-12)
    assert d.seed_var == pytest.approx(v2 + b2, rel=1e-12)
    q = scipy.stats.t.ppf(0.975, df)
    assert (d.ci_low, d.ci_high) == pytest.approx((est - q * se, est + q * se), rel=1e-12)
    assert d.p_value == pytest.approx(2 * scipy.stats.t.sf(abs(est) / se, df), rel=1e-10)


def test_a_single_seed_arm_borrows_and_two_single_seed_arms_are_conditional() -> None:
    rng = np.random.default_rng(12)
    base = [ner_rows("ncbi", "test", 30, 3, 0.6 + 0.03 * s, rng) for s in range(4)]
    one = ner_rows("ncbi", "test", 30, 3, 0.65, rng)
    b = [_examples(r, f"b{i}", "f1") for i, r in enumerate(base)]
    v = [_examples(one, "v", "f1")]
    borrowed = st.paired_bootstrap(b, v, n_boot=300).delta
    sb = np.var([st.paired_bootstrap([x], v, n_boot=10).base.mean for x in b], ddof=1)
    assert borrowed.inference is st.Inference.BORROWED
    assert borrowed.seed_var == pytest.approx(sb * (1 / 4 + 1), rel=1e-9)
    assert borrowed.se == pytest.approx(np.sqrt(borrowed.se_units**2 + borrowed.seed_var), rel=1e-12)

    cond = st.paired_bootstrap(b[:1], v, n_boot=300).delta
    assert cond.conditional and cond.inference.value == st.CONDITIONAL_LABEL
    assert cond.inference.value == "conditional on the trained models: seed variance not measured"
    assert (cond.ci_low, cond.ci_high) == pytest.approx(st.percentile_ci(cond.replicates), abs=1e-15)
    assert cond.p_value == pytest.approx(st.bootstrap_p_value(cond.estimate, cond.replicates), abs=1e-15)
    assert np.isnan(cond.seed_var) and cond.df == np.inf and cond.se == cond.se_units


def test_ci_agrees_with_scipy_paired_bootstrap_on_accuracy() -> None:
    rng = np.random.default_rng(0)
    n = 600
    base_rows = cls_rows("hoc", "test", n, 0.70, rng)
    variant_rows = cls_rows("hoc", "test", n, 0.76, rng)
    comp = st.paired_bootstrap(
        [_examples(base_rows, "b", "accuracy")],
        [_examples(variant_rows, "v", "accuracy")],
        n_boot=4000,
        seed=1,
    )
    x = np.array([r["stats"]["correct"] for r in base_rows], dtype=float)
    y = np.array([r["stats"]["correct"] for r in variant_rows], dtype=float)
    ref = scipy.stats.bootstrap(
        (x, y),
        lambda a, b, axis=-1: b.mean(axis=axis) - a.mean(axis=axis),
        paired=True,
        vectorized=True,
        n_resamples=4000,
        method="percentile",
        confidence_level=0.95,
        random_state=np.random.default_rng(2),
    )
    assert comp.delta.estimate == pytest.approx(y.mean() - x.mean(), abs=1e-12)
    assert comp.delta.ci_low == pytest.approx(ref.confidence_interval.low, abs=0.008)
    assert comp.delta.ci_high == pytest.approx(ref.confidence_interval.high, abs=0.008)


def test_ci_excludes_zero_for_a_planted_effect_and_includes_it_without_one() -> None:
    rng = np.random.default_rng(4)
    base_rows = ner_rows("ncbi", "test", 40, 5, 0.55, rng)
    better = ner_rows("ncbi", "test", 40, 5, 0.85, rng)
    big = st.paired_bootstrap([_examples(base_rows, "b", "f1")], [_examples(better, "v", "f1")], seed=0)
    assert big.delta.estimate > 0.15 and big.delta.ci_low > 0.05 and big.delta.excludes_zero
    assert big.delta.p_value < 1e-6 and big.delta.p_empirical == pytest.approx(2 / 1001)

    # no effect: the variant gains on some documents exactly what it loses on others
    same = [dict(r, stats=dict(r["stats"])) for r in base_rows]
    for r_up, r_down in zip(same[0:100:5], same[100:200:5], strict=True):
        if r_up["stats"]["fn"] >= 1 and r_down["stats"]["tp"] >= 1:
            r_up["stats"]["tp"] += 1
            r_up["stats"]["fn"] -= 1
            r_down["stats"]["tp"] -= 1
            r_down["stats"]["fn"] += 1
    null = st.paired_bootstrap([_examples(base_rows, "b", "f1")], [_examples(same, "v", "f1")], seed=0)
    assert null.delta.estimate == pytest.approx(0.0, abs=1e-12)
    assert null.delta.ci_low < 0 < null.delta.ci_high and not null.delta.excludes_zero
    assert null.delta.p_value > 0.5 and null.delta.p_empirical > 0.5


def test_resampling_documents_widens_the_ci_when_sentences_of_a_document_are_correlated() -> None:
    rng = np.random.default_rng(9)
    effects_b = rng.normal(0.0, 0.25, 30)
    effects_v = effects_b + rng.normal(0.0, 0.4, 30)  # the variant's gain differs by document
    base_rows = ner_rows("jnlpba", "test", 30, 10, 0.6, rng, effects_b)
    variant_rows = ner_rows("jnlpba", "test", 30, 10, 0.65, rng, effects_v)
    by_doc = st.paired_bootstrap([_examples(base_rows, "b", "f1")], [_examples(variant_rows, "v", "f1")])

    def per_sentence(rows: list[dict]) -> list[dict]:
        return [dict(r, unit=r["id"]) for r in rows]

    by_sentence = st.paired_bootstrap(
        [_examples(per_sentence(base_rows), "b", "f1")], [_examples(per_sentence(variant_rows), "v", "f1")]
    )
    assert by_doc.n_units == 30 and by_sentence.n_units == 300
    assert by_doc.delta.estimate == pytest.approx(by_sentence.delta.estimate)
    width = lambda c: c.delta.ci_high - c.delta.ci_low  # noqa: E731
    assert width(by_doc) > 1.5 * width(by_sentence)


def test_seed_to_seed_variance_widens_the_ci() -> None:
    rng = np.random.default_rng(21)
    base_rows = cls_rows("gad", "test", 400, 0.7, rng)
    v_rows = cls_rows("gad", "test", 400, 0.75, rng)

    def shifted(rows: list[dict], flip: int) -> list[dict]:
        out = [dict(r, stats=dict(r["stats"])) for r in rows]
        for r in out[:flip]:
            r["stats"]["correct"] = 1 - r["stats"]["correct"]
        return out

    base = [_examples(base_rows, "b", "accuracy")]
    steady = st.paired_bootstrap(base, [_examples(v_rows, f"v{i}", "accuracy") for i in range(3)], seed=2)
    noisy = st.paired_bootstrap(
        base, [_examples(shifted(v_rows, k), f"v{k}", "accuracy") for k in (0, 60, 120)], seed=2
    )
    assert steady.variant.sd == pytest.approx(0.0, abs=1e-12) and noisy.variant.sd > 0.05
    assert (noisy.delta.ci_high - noisy.delta.ci_low) > 1.3 * (steady.delta.ci_high - steady.delta.ci_low)


def test_macro_average_is_the_mean_of_the_sets_replicate_by_replicate() -> None:
    rng = np.random.default_rng(1)
    comps = [
        st.paired_bootstrap(
            [_examples(cls_rows(s, "test", 200, 0.6, rng), "b", "accuracy")],
            [_examples(cls_rows(s, "test", 200, 0.7, rng), "v", "accuracy")],
            eval_set=f"{s}/test",
        )
        for s in ("hoc", "gad", "euadr")
    ]
    base = st.macro_average("base", [c.base for c in comps])
    variant = st.macro_average("variant", [c.variant for c in comps])
    d = st.delta(variant, base)
    np.testing.assert_allclose(d.replicates, np.mean([c.delta.replicates for c in comps], axis=0), atol=1e-12)
    assert d.estimate == pytest.approx(np.mean([c.delta.estimate for c in comps]))
    single_widths = [c.delta.ci_high - c.delta.ci_low for c in comps]
    assert d.ci_high - d.ci_low < min(single_widths)  # averaging independent sets narrows the CI


def test_resamples_are_seeded_per_eval_set_and_independent_of_call_order() -> None:
    a = st.Resamples.draw("ncbi/test", 50, 100, seed=0)
    st.Resamples.draw("other/test", 50, 100, seed=0)
    again = st.Resamples.draw("ncbi/test", 50, 100, seed=0)
    np.testing.assert_array_equal(a.indices, again.indices)
    assert not np.array_equal(a.indices, st.Resamples.draw("ncbi/test", 50, 100, seed=1).indices)
    np.testing.assert_array_equal(a.counts.sum(axis=1), np.full(100, 50.0))
    np.testing.assert_array_equal(a.counts[3], np.bincount(a.indices[3], minlength=50))


def test_mismatched_example_ids_raise_a_data_error_naming_both_files() -> None:
    rng = np.random.default_rng(0)
    base_rows = cls_rows("hoc", "test", 50, 0.7, rng)
    variant_rows = cls_rows("hoc", "test", 49, 0.7, rng) + [dict(base_rows[0], id="hoc/test/other")]
    with pytest.raises(DataError) as err:
        st.paired_bootstrap(
            [_examples(base_rows, "runs/base/hoc__test.jsonl", "accuracy")],
            [_examples(variant_rows, "runs/loo/hoc__test.jsonl", "accuracy")],
        )
    msg = str(err.value)
    assert "runs/loo/hoc__test.jsonl" in msg and "runs/base/hoc__test.jsonl" in msg
    assert "hoc/test/49" in msg and "hoc/test/other" in msg and "fix:" in msg


def test_a_unit_that_differs_between_files_and_duplicate_ids_are_data_errors() -> None:
    rng = np.random.default_rng(0)
    rows = ner_rows("ncbi", "test", 5, 2, 0.7, rng)
    moved = [dict(r) for r in rows]
    moved[3]["unit"] = "d9"
    with pytest.raises(DataError, match="unit"):
        st.paired_bootstrap([_examples(rows, "b", "f1")], [_examples(moved, "v", "f1")])
    with pytest.raises(DataError, match="more than once"):
        _examples(rows + rows[:1], "dup.jsonl", "f1")


# ------------------------------------------------------------------------------------------- corrections

# Benjamini & Hochberg (1995), section 4.2: 15 p-values; BH at q = 0.05 rejects the 4 smallest, while
# Bonferroni-type procedures (Holm) reject 3.
BH_1995 = [
    0.0001,
    0.0004,
    0.0019,
    0.0095,
    0.0201,
    0.0278,
    0.0298,
    0.0344,
    0.0459,
    0.3240,
    0.4262,
    0.5719,
    0.6528,
    0.7590,
    1.000,
]


def test_benjamini_hochberg_on_the_1995_paper_example() -> None:
    adj = st.adjust_p(BH_1995, "bh")
    # p_(i) * m / i, then the running minimum from the largest p down (hand-computed)
    expected = [
        0.0015,
        0.003,
        0.0095,
        0.035625,
        0.0603,
        0.0298 * 15 / 7,
        0.0298 * 15 / 7,
        0.0645,
        0.0765,
        0.486,
        0.4262 * 15 / 11,
        0.5719 * 15 / 12,
        0.6528 * 15 / 13,
        0.7590 * 15 / 14,
        1.0,
    ]
    np.testing.assert_allclose(adj, expected, rtol=1e-12)
    assert int(np.sum(adj <= 0.05)) == 4


def test_holm_on_the_1995_example_and_a_small_hand_case() -> None:
    adj = st.adjust_p(BH_1995, "holm")
    # (m - i + 1) * p_(i), running maximum, capped at 1 (hand-computed)
    np.testing.assert_allclose(
        adj[:9], [0.0015, 0.0056, 0.0247, 0.114, 0.2211, 0.278, 0.278, 0.278, 0.3213], rtol=1e-12
    )
    assert np.all(adj[9:] == 1.0) and int(np.sum(adj <= 0.05)) == 3
    np.testing.assert_allclose(st.holm([0.01, 0.04, 0.03, 0.005]), [0.03, 0.06, 0.06, 0.02], rtol=1e-12)


def test_corrections_ignore_missing_p_values_and_reject_unknown_methods() -> None:
    adj = st.adjust_p([0.01, float("nan"), 0.04], "holm")
    assert np.isnan(adj[1]) and adj[0] == pytest.approx(0.02) and adj[2] == pytest.approx(0.04)
    assert np.isnan(st.adjust_p([float("nan")], "bh")).all()
    with pytest.raises(ValueError, match="holm"):
        st.adjust_p([0.1], "bonferroni")  # type: ignore[arg-type]

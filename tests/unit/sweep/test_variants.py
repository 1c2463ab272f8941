"""Variants: stable names, exact budgets, size-matched controls, seeded swarms, content hashes; and the plan.

No corpus is read except the bundled sample: every expansion takes an ``available`` dict.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest

from biotune.errors import ConfigError
from biotune.sweep import fidelity, limits
from biotune.sweep import plan as pl
from biotune.sweep import spec as sp
from biotune.sweep import variants as vr
from biotune.sweep.spec import load_sweep
from biotune.testing.sweeps import small_base, write_sweep

REPO = Path(__file__).resolve().parents[3]

BASE = small_base(seed=77)
AVAILABLE = {"ncbi_disease": 100, "bc5cdr_chem": 81, "gad": 60, "hoc": 47, "pubmedqa": 29, "bioasq_yesno": 40}
#: base realised counts: ncbi_disease has epochs 2
BASE_COUNTS = {"ncbi_disease": 200, "bc5cdr_chem": 81, "gad": 60, "hoc": 47, "pubmedqa": 29}
TAU = {
    "ncbi_disease": 50.0,
    "bc5cdr_chem": 40.0,
    "gad": 90.0,
    "hoc": 400.0,
    "pubmedqa": 350.0,
    "bioasq_yesno": 120.0,
}
GROUPS = {"ncbi_disease": "ner", "bc5cdr_chem": "ner", "gad": "re", "hoc": "cls", "pubmedqa": "qa"}


def sweep(tmp_path: Path, axes: str, base: str = BASE, **settings: object) -> sp.SweepSpec:
    """Write base + sweep YAML into ``tmp_path`` and load them."""
    head = {"name": "t", "base": "base.yaml", **settings}
    lines = [f"{k}: {v}" for k, v in head.items()]
    return load_sweep(write_sweep(tmp_path, "\n".join(lines) + "\naxes:\n" + axes, base))


def by_name(variants: list[vr.Variant]) -> dict[str, vr.Variant]:
    return {v.name: v for v in variants}


def tokens(v: vr.Variant) -> float:
    return sum(c * TAU[s] for s, c in v.counts.items())


def realised_through_config(spec: sp.SweepSpec, v: vr.Variant) -> dict[str, int]:
    """What the overrides give when loaded the normal way (config.load + requested_counts + cap)."""
    cfg = vr.load_variant(spec, v)
    return {n: c for n, c in vr.realised_counts(cfg.data, AVAILABLE).items() if c > 0}


# --------------------------------------------------------------------------------------------- names and base


def test_names_and_hashes_are_stable_across_runs(tmp_path: Path) -> None:
    axes = """\
  - {type: leave_one_out, over: source}
  - {type: scale, target: hoc, factors: [0.5, 3]}
  - {type: swarm, n: 6, seed: 1}
"""
    first = vr.expand(sweep(tmp_path / "a", axes), AVAILABLE)
    second = vr.expand(sweep(tmp_path / "b", axes), AVAILABLE)
    assert [(v.name, v.counts, v.content_hash) for v in first] == [
        (v.name, v.counts, v.content_hash) for v in second
    ]
    assert [v.name for v in first] == [
        "base",
        *[f"loo-source-{s}" for s in BASE_COUNTS],
        "scale-hoc-x0.5",
        "scale-hoc-x3",
        *[f"swarm-{j:03d}" for j in range(6)],
    ]


def test_base_variant_is_the_base(tmp_path: Path) -> None:
    spec = sweep(tmp_path, "  - {type: leave_one_out, only: [hoc]}\n")
    base = vr.expand(spec, AVAILABLE)[0]
    assert base.name == "base" and base.overrides == () and base.kind == "base"
    assert base.counts == BASE_COUNTS
    assert base.groups == {"ner": 281, "re": 60, "cls": 47, "qa": 29}
    assert base.source_groups == GROUPS
    assert math.isclose(sum(base.weights.values()), 1.0)
    assert base.seeds == (77,), "no seeds: the base's train.seed"


# --------------------------------------------------------------------------------------------- leave-outs


@pytest.mark.parametrize("budget", [sp.FIXED_SAMPLES, sp.FREE, sp.FIXED_TOKENS])
def test_leave_one_out_drops_exactly_that_source(tmp_path: Path, budget: str) -> None:
    spec = sweep(tmp_path, "  - {type: leave_one_out, over: source}\n", budget=budget, controls="false")
    variants = vr.expand(spec, AVAILABLE, TAU)
    for v in variants[1:]:
        assert set(v.counts) == set(BASE_COUNTS) - {v.value}
        assert f"data.sources.{v.value}.include=false" in v.overrides
        assert realised_through_config(spec, v) == v.counts


def test_leave_one_group_out_drops_the_whole_group(tmp_path: Path) -> None:
    spec = sweep(tmp_path, "  - {type: leave_one_out, over: group}\n")
    variants = by_name(vr.expand(spec, AVAILABLE))
    assert set(variants) == {"base", "loo-group-ner", "loo-group-re", "loo-group-cls", "loo-group-qa"}
    assert set(variants["loo-group-ner"].counts) == {"gad", "hoc", "pubmedqa"}
    assert "ner" not in variants["loo-group-ner"].groups


def test_group_follows_sourcemix_group(tmp_path: Path) -> None:
    base = BASE.replace("gad: {}", "gad: {group: bio}").replace("hoc: {}", "hoc: {group: bio}")
    spec = sweep(tmp_path, "  - {type: leave_one_out, over: group, only: [bio]}\n", base=base)
    loo = vr.expand(spec, AVAILABLE)[1]
    assert loo.name == "loo-group-bio" and set(loo.counts) == {"ncbi_disease", "bc5cdr_chem", "pubmedqa"}


def test_fixed_samples_holds_the_total_exactly(tmp_path: Path) -> None:
    axes = """\
  - {type: leave_one_out, over: source}
  - {type: leave_one_out, over: group}
  - {type: scale, target: gad, factors: [0.25, 4]}
  - {type: scale, over: group, target: ner, factors: [0.5]}
  - {type: mixtures, mixtures: {flat: {ncbi_disease: 1, gad: 1, hoc: 1}, qa_only: {pubmedqa: 2}}}
  - {type: swarm, n: 10, seed: 5, min_weight: 0.05}
"""
    spec = sweep(tmp_path, axes, budget=sp.FIXED_SAMPLES)
    variants = vr.expand(spec, AVAILABLE)
    total = sum(BASE_COUNTS.values())
    assert all(v.total == total for v in variants)
    assert all(f"data.total_samples={total}" in v.overrides for v in variants[1:])
    for v in variants[1:]:
        assert realised_through_config(spec, v) == v.counts, v.name


def test_fixed_samples_leave_out_renormalises_the_rest(tmp_path: Path) -> None:
    spec = sweep(tmp_path, "  - {type: leave_one_out, only: [ncbi_disease]}\n", budget=sp.FIXED_SAMPLES)
    loo = vr.expand(spec, AVAILABLE)[1]
    rest = {s: c for s, c in BASE_COUNTS.items() if s != "ncbi_disease"}
    scale = sum(BASE_COUNTS.values()) / sum(rest.values())
    for s, c in rest.items():
        assert abs(loo.counts[s] - c * scale) < 1, s


def test_free_leave_out_keeps_the_others_and_adds_a_size_matched_control(tmp_path: Path) -> None:
    spec = sweep(tmp_path, "  - {type: leave_one_out, over: source}\n", budget=sp.FREE)
    variants = by_name(vr.expand(spec, AVAILABLE))
    base_total = sum(BASE_COUNTS.values())
    assert len(variants) == 1 + 2 * len(BASE_COUNTS)
    for s in BASE_COUNTS:
        loo, control = variants[f"loo-source-{s}"], variants[f"control-loo-source-{s}"]
        assert loo.counts == {k: c for k, c in BASE_COUNTS.items() if k != s}
        assert loo.total == base_total - BASE_COUNTS[s]
        assert control.kind == "control" and control.value == loo.name
        assert control.total == loo.total, "size-matched"
        assert set(control.counts) == set(BASE_COUNTS), "the base's sources, subsampled"
        for k, c in BASE_COUNTS.items():
            assert abs(control.counts[k] - c * loo.total / base_total) < 1, "the base's shares"


def test_controls_off_or_under_fixed_budget_add_nothing(tmp_path: Path) -> None:
    off = sweep(tmp_path / "a", "  - {type: leave_one_out}\n", budget=sp.FREE, controls="false")
    fixed = sweep(tmp_path / "b", "  - {type: leave_one_out}\n", budget=sp.FIXED_SAMPLES, controls="true")
    for spec in (off, fixed):
        assert not [v for v in vr.expand(spec, AVAILABLE) if v.kind == "control"]


def test_axis_budget_overrides_the_sweep_default(tmp_path: Path) -> None:
    axes = "  - {type: leave_one_out, only: [hoc], budget: free}\n  - {type: leave_one_out, only: [gad], name: fixed}\n"
    variants = by_name(vr.expand(sweep(tmp_path, axes, budget=sp.FIXED_SAMPLES), AVAILABLE))
    assert variants["loo-source-hoc"].budget == sp.FREE and "control-loo-source-hoc" in variants
    assert variants["fixed-gad"].budget == sp.FIXED_SAMPLES
    assert variants["fixed-gad"].total == sum(BASE_COUNTS.values())


# --------------------------------------------------------------------------------------------- tokens, scale


def test_fixed_tokens_holds_the_tokens_to_within_rounding(tmp_path: Path) -> None:
    axes = """\
  - {type: leave_one_out, over: source}
  - {type: scale, target: hoc, factors: [0.5, 3]}
  - {type: swarm, n: 8, seed: 2, min_weight: 0.05}
"""
    spec = sweep(tmp_path, axes, budget=sp.FIXED_TOKENS)
    variants = vr.expand(spec, AVAILABLE, TAU)
    base_tokens = tokens(variants[0])
    for v in variants[1:]:
        assert abs(tokens(v) - base_tokens) <= max(TAU.values()), v.name
    dropped_hoc = by_name(variants)["loo-source-hoc"]
    assert dropped_hoc.total > sum(BASE_COUNTS.values()), "hoc is long: its tokens buy more short samples"


def test_fixed_tokens_without_token_counts_is_a_config_error(tmp_path: Path) -> None:
    spec = sweep(tmp_path, "  - {type: leave_one_out, only: [hoc, gad]}\n", budget=sp.FIXED_TOKENS)
    with pytest.raises(ConfigError) as info:
        vr.expand(spec, AVAILABLE)
    assert [p.key for p in info.value.problems] == ["axes[0]", "axes[0]"]
    assert "tokens_per_sample" in info.value.problems[0].fix


def test_scale_under_fixed_budget_raises_the_share_and_renormalises_the_others(tmp_path: Path) -> None:
    spec = sweep(tmp_path, "  - {type: scale, target: gad, factors: [3]}\n")
    scaled = vr.expand(spec, AVAILABLE)[1]
    weighted = {s: c * (3 if s == "gad" else 1) for s, c in BASE_COUNTS.items()}
    for s, w in weighted.items():
        assert abs(scaled.counts[s] - w * scaled.total / sum(weighted.values())) < 1, s
    assert scaled.target == "gad" and scaled.value == 3


def test_scale_under_free_multiplies_only_the_target(tmp_path: Path) -> None:
    spec = sweep(
        tmp_path, "  - {type: scale, over: group, target: ner, factors: [0.5, 1.5]}\n", budget=sp.FREE
    )
    half, more = vr.expand(spec, AVAILABLE)[1:]
    assert half.counts == {**BASE_COUNTS, "ncbi_disease": 100, "bc5cdr_chem": 40}  # round(40.5) = 40 (even)
    assert more.counts == {**BASE_COUNTS, "ncbi_disease": 300, "bc5cdr_chem": 122}


def test_caps_hold_and_the_others_absorb_the_rest(tmp_path: Path) -> None:
    base = BASE.replace("gad: {}", "gad: {cap: 60}")
    spec = sweep(tmp_path, "  - {type: leave_one_out, only: [ncbi_disease]}\n", base=base)
    loo = vr.expand(spec, AVAILABLE)[1]
    assert loo.counts["gad"] == 60 and loo.total == sum(BASE_COUNTS.values())
    assert realised_through_config(spec, loo) == loo.counts


def test_caps_that_stop_a_fixed_budget_are_reported(tmp_path: Path) -> None:
    capped = "\n".join(f"    {s}: {{cap: {c}}}" for s, c in BASE_COUNTS.items() if s != "ncbi_disease")
    base = BASE.split("  sources:")[0] + f"  sources:\n    ncbi_disease: {{epochs: 2}}\n{capped}\n"
    spec = sweep(tmp_path, "  - {type: leave_one_out, only: [ncbi_disease, hoc]}\n", base=base)
    with pytest.raises(ConfigError) as info:
        vr.expand(spec, AVAILABLE)
    (problem,) = info.value.problems
    assert (
        problem.key == "axes[0]"
        and "loo-source-ncbi_disease" in problem.problem
        and "caps" in problem.problem
    )


# --------------------------------------------------------------------------------------------- mixtures, swarm


def test_mixtures_leave_out_what_they_do_not_name_and_can_add_sources(tmp_path: Path) -> None:
    axes = "  - {type: mixtures, mixtures: {ner_heavy: {ncbi_disease: 3, hoc: 1}, plus: {hoc: 1, bioasq_yesno: 1}}}\n"
    spec = sweep(tmp_path, axes)
    ner_heavy, plus = vr.expand(spec, AVAILABLE)[1:]
    assert set(ner_heavy.counts) == {"ncbi_disease", "hoc"}
    assert ner_heavy.total == sum(BASE_COUNTS.values())
    assert abs(ner_heavy.counts["ncbi_disease"] - 0.75 * ner_heavy.total) < 1
    assert ner_heavy.mixture == {"ncbi_disease": 0.75, "hoc": 0.25}
    assert "data.sources.bioasq_yesno.include=true" in plus.overrides
    assert realised_through_config(spec, plus) == plus.counts == {"hoc": 208, "bioasq_yesno": 209}


def test_free_mixture_is_the_largest_subsample_of_the_base(tmp_path: Path) -> None:
    spec = sweep(
        tmp_path, "  - {type: mixtures, mixtures: {m: {ncbi_disease: 1, pubmedqa: 1}}}\n", budget=sp.FREE
    )
    mix = vr.expand(spec, AVAILABLE)[1]
    assert mix.counts == {"ncbi_disease": 29, "pubmedqa": 29}


def test_group_mixture_splits_each_share_by_the_base_counts(tmp_path: Path) -> None:
    spec = sweep(tmp_path, "  - {type: mixtures, over: group, mixtures: {m: {ner: 1, qa: 1}}}\n")
    mix = vr.expand(spec, AVAILABLE)[1]
    assert set(mix.groups) == {"ner", "qa"}
    assert all(abs(n - sum(BASE_COUNTS.values()) / 2) < 1 for n in mix.groups.values())
    assert abs(mix.counts["ncbi_disease"] / mix.counts["bc5cdr_chem"] - 200 / 81) < 0.05


def test_a_source_without_samples_is_reported(tmp_path: Path) -> None:
    axes = "  - {type: mixtures, mixtures: {m: {hoc: 1, bioasq_yesno: 1}}}\n"
    with pytest.raises(ConfigError) as info:
        vr.expand(sweep(tmp_path, axes), {**AVAILABLE, "bioasq_yesno": 0})
    assert info.value.problems[0].key == "axes[0].mixtures.m"
    assert "bioasq_yesno has no samples" in info.value.problems[0].problem


def test_swarm_is_seeded_bounded_and_distinct(tmp_path: Path) -> None:
    axes = "  - {type: swarm, n: 24, seed: 11, alpha: 0.5, min_weight: 0.04, min_distance: 0.3}\n"
    first = vr.expand(sweep(tmp_path / "a", axes), AVAILABLE)[1:]
    again = vr.expand(sweep(tmp_path / "b", axes), AVAILABLE)[1:]
    other = vr.expand(sweep(tmp_path / "c", axes.replace("seed: 11", "seed: 12")), AVAILABLE)[1:]
    assert [v.mixture for v in first] == [v.mixture for v in again]
    assert [v.mixture for v in first] != [v.mixture for v in other]
    shares = np.array([[v.mixture[s] for s in BASE_COUNTS] for v in first])
    assert len(first) == 24 and shares.shape == (24, 5)
    assert np.allclose(shares.sum(axis=1), 1.0) and shares.min() >= 0.04 - 1e-12
    assert min(np.abs(a - b).sum() for a, b in itertools.combinations(shares, 2)) >= 0.3
    assert len({v.content_hash for v in first}) == 24
    for v in first:  # the realised counts follow the drawn shares
        assert all(abs(v.counts[s] - v.mixture[s] * v.total) < 1 for s in BASE_COUNTS)


def test_swarm_over_groups(tmp_path: Path) -> None:
    spec = sweep(tmp_path, "  - {type: swarm, over: group, n: 5, fit: true, min_weight: 0.1}\n")
    for v in vr.expand(spec, AVAILABLE)[1:]:
        assert set(v.mixture) == {"ner", "re", "cls", "qa"}
        assert all(abs(v.groups[g] - w * v.total) <= 1 for g, w in v.mixture.items())


def test_a_swarm_that_cannot_keep_its_distance_is_reported(tmp_path: Path) -> None:
    spec = sweep(tmp_path, "  - {type: swarm, n: 8, min_distance: 1.9}\n")
    with pytest.raises(ConfigError) as info:
        vr.expand(spec, AVAILABLE)
    assert info.value.problems[0].key == "axes[0]" and "min_distance" in info.value.problems[0].fix


def test_draw_swarm_maps_into_the_min_weight_simplex() -> None:
    axis = sp.SwarmAxis(n=200, seed=0, alpha=0.1, min_weight=0.1)
    draws = np.array(vr.draw_swarm(4, axis))
    assert draws.shape == (200, 4) and draws.min() >= 0.1 - 1e-12 and np.allclose(draws.sum(axis=1), 1)


# --------------------------------------------------------------------------------------------- hashing


def test_identical_data_shares_a_hash_whatever_made_it(tmp_path: Path) -> None:
    axes = """\
  - {type: scale, target: gad, factors: [1]}
  - {type: mixtures, mixtures: {same: {ncbi_disease: 200, bc5cdr_chem: 81, gad: 60, hoc: 47, pubmedqa: 29}}}
  - {type: values, key: optim.lr, values: [1.0e-4, 3.0e-4]}
  - {type: values, key: train.epochs, values: [2]}
"""
    variants = vr.expand(sweep(tmp_path, axes), AVAILABLE)
    assert len({v.content_hash for v in variants}) == 1, [(v.name, v.content_hash) for v in variants]


def test_different_data_changes_the_hash(tmp_path: Path) -> None:
    axes = """\
  - {type: leave_one_out, over: source}
  - {type: scale, target: gad, factors: [2]}
  - {type: values, key: data.template, values: [alpaca]}
  - {type: values, key: data.ner_format, values: [entities]}
  - {type: values, key: data.seed, values: [5]}
  - {type: values, key: data.max_seq_len, values: [512]}
  - {type: values, key: data.sources.gad.epochs, values: [2]}
"""
    variants = vr.expand(sweep(tmp_path, axes), AVAILABLE)
    assert len({v.content_hash for v in variants}) == len(variants)


def test_training_seeds_do_not_change_the_hash(tmp_path: Path) -> None:
    axes = "  - {type: leave_one_out, only: [hoc]}\n"
    one = vr.expand(sweep(tmp_path / "a", axes, seeds="[0]"), AVAILABLE)
    three = vr.expand(sweep(tmp_path / "b", axes, seeds="[0, 1, 2]"), AVAILABLE)
    other_seed = vr.expand(sweep(tmp_path / "c", axes, overrides="[train.seed=9]"), AVAILABLE)
    assert (
        [v.content_hash for v in one]
        == [v.content_hash for v in three]
        == [v.content_hash for v in other_seed]
    )
    assert three[1].seeds == (0, 1, 2)


def test_controls_of_equal_size_share_a_build(tmp_path: Path) -> None:
    base = BASE.replace("gad: {}", "gad: {epochs: 0.5}").replace("pubmedqa: {}", "pubmedqa: {epochs: 1}")
    available = {**AVAILABLE, "gad": 58, "pubmedqa": 29}  # gad realises 29 samples, like pubmedqa
    variants = by_name(
        vr.expand(sweep(tmp_path, "  - {type: leave_one_out}\n", base=base, budget="free"), available)
    )
    a, b = variants["control-loo-source-gad"], variants["control-loo-source-pubmedqa"]
    assert a.total == b.total and a.content_hash == b.content_hash
    assert variants["loo-source-gad"].content_hash != variants["loo-source-pubmedqa"].content_hash


# --------------------------------------------------------------------------------------------- cells, corpora


def test_cells_cross_variants_and_seeds(tmp_path: Path) -> None:
    spec = sweep(
        tmp_path, "  - {type: leave_one_out, only: [hoc]}\n", seeds="[3, 4]", overrides="[train.max_steps=5]"
    )
    variants = vr.expand(spec, AVAILABLE)
    cells = vr.cells(spec, variants)
    assert [c.name for c in cells] == ["base-s3", "base-s4", "loo-source-hoc-s3", "loo-source-hoc-s4"]
    assert cells[3].overrides == ("train.max_steps=5", *variants[1].overrides, "train.seed=4")
    cfg = vr.load_variant(spec, variants[1], seed=4)
    assert cfg.train.seed == 4 and cfg.train.max_steps == 5 and not cfg.data.sources["hoc"].include


def test_realised_counts_needs_every_included_source() -> None:
    from biotune.config import DataConfig, SourceMix

    with pytest.raises(ValueError, match="hoc"):
        vr.realised_counts(DataConfig(sources={"hoc": SourceMix()}), {"gad": 3})


def test_leave_group_out_sweep_on_the_bundled_sample() -> None:
    spec = load_sweep(REPO / "configs/sweep/sample_loo.yaml")
    available = vr.count_available(spec)
    assert available and all(n > 0 for n in available.values())
    base, left_out = vr.expand(spec, available)
    assert left_out.total == base.total
    assert set(base.groups) - set(left_out.groups) == {"qa"}


# --------------------------------------------------------------------------------------------- plan


def test_plan_rows_and_table(tmp_path: Path) -> None:
    spec = sweep(tmp_path, "  - {type: leave_one_out, over: group}\n", budget="free")
    variants = vr.expand(spec, AVAILABLE)
    rows = pl.plan_rows(spec, variants, AVAILABLE, TAU, estimate=lambda v: {"gpu_hours": v.total / 100})
    assert len(rows) == len(variants) and all(list(r) == list(rows[0]) for r in rows)
    for row, v in zip(rows, variants, strict=True):
        assert row["samples"] == v.total == sum(row[f"samples[{s}]"] for s in BASE_COUNTS)
        assert row["tokens"] == round(tokens(v))
        assert sum(row[f"group_samples[{g}]"] for g in ("ner", "re", "cls", "qa")) == v.total
        assert row["epochs[ncbi_disease]"] == round(v.counts.get("ncbi_disease", 0) / 100, 3)
        assert row["gpu_hours"] == v.total / 100
    table = pl.format_plan(rows)
    lines = table.strip().splitlines()
    assert len(lines) == 2 + len(variants)
    assert lines[0].startswith("| variant |") and "gpu_hours" in lines[0] and "group[ner]" in lines[0]
    assert "control-loo-group-qa" in table
    assert pl.plan_rows(spec, variants, AVAILABLE)[0]["tokens"] is None


def test_eval_set_sizes_on_the_bundled_sample() -> None:
    spec = load_sweep(REPO / "configs/sweep/sample_loo.yaml")
    sizes = pl.eval_set_sizes(spec)
    assert sizes and all(0 < n <= 8 for n in sizes.values())  # demo: eval.max_examples 8
    assert "pubmedqa/test" in sizes


def test_measure_tokens_per_sample_counts_what_the_build_keeps(tmp_path: Path) -> None:
    from biotune.testing.tiny import train_tokenizer

    tok = train_tokenizer(
        ["### Instruction: find diseases ### Input: aspirin caused ulcers ### Output: none"] * 20
    )
    body = "name: t\nbase: configs/train/demo.yaml\noverrides: [data.max_seq_len={}]\naxes: [{{type: leave_one_out}}]\n"
    measured = {}
    for limit in (256, 100_000):
        path = tmp_path / f"s{limit}.yaml"
        path.write_text(body.format(limit))
        measured[limit] = vr.measure_tokens_per_sample(load_sweep(path), limit=6, tokenizer=tok)
    short, long = measured[256], measured[100_000]
    assert set(long) == set(vr.count_available(load_sweep(path))) and all(t > 0 for t in long.values())
    assert all(short[s] <= long[s] for s in long), "dropped samples count 0 tokens"
    assert any(short[s] < long[s] for s in long)
    assert vr.measure_tokens_per_sample(load_sweep(path), limit=6, tokenizer=tok) == long, "seeded"


# --------------------------------------------------------------------------------------------- issue 20, item 7


def test_draw_swarm_accepts_exactly_what_the_pairwise_rule_accepts() -> None:
    """The vectorised distance check keeps the rule: replay the same seeded draws and accept one by one."""
    axis = sp.SwarmAxis(n=40, seed=3, alpha=0.7, min_weight=0.02, min_distance=0.35)
    rng = np.random.default_rng(axis.seed)
    expected: list[np.ndarray] = []
    while len(expected) < axis.n:
        w = axis.min_weight + (1.0 - 5 * axis.min_weight) * rng.dirichlet(np.full(5, axis.alpha))
        if all(np.abs(w - a).sum() >= axis.min_distance for a in expected):
            expected.append(w)
    assert np.array_equal(np.array(vr.draw_swarm(5, axis)), np.array(expected))


def test_a_swarm_of_the_largest_size_expands(tmp_path: Path) -> None:
    """``n = MAX_SWARM_N`` is allowed and expands into that many distinct, named variants."""
    spec = sweep(tmp_path, f"  - {{type: swarm, n: {limits.MAX_SWARM_N}, min_distance: 0.01}}\n")
    variants = vr.expand(spec, AVAILABLE)
    assert len(variants) == limits.MAX_SWARM_N + 1
    assert variants[-1].name == f"swarm-{limits.MAX_SWARM_N - 1:04d}"


def test_an_unrealisable_axis_blames_the_sweep_file(tmp_path: Path) -> None:
    """The axis's value is wrong, not the base: the error names the sweep file, not base.yaml."""
    spec = sweep(tmp_path, "  - {type: swarm, n: 8, min_distance: 1.9}\n")
    with pytest.raises(ConfigError) as info:
        vr.expand(spec, AVAILABLE)
    assert info.value.source == str(tmp_path / "sweep.yaml")
    assert "base.yaml" not in str(info.value).splitlines()[0]


def test_the_longest_cell_directory_can_be_made(tmp_path: Path) -> None:
    """A variant name of MAX_NAME_LEN at the largest seed still makes a cell directory (no ENAMETOOLONG)."""
    from biotune.names import MAX_NAME_LEN

    name = fidelity.cell_name("v" * MAX_NAME_LEN, limits.MAX_SEED)
    (tmp_path / "cells" / name).mkdir(parents=True)
    assert len(name) == MAX_NAME_LEN + 12

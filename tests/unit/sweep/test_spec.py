"""The sweep config: every shipped sweep loads; every bad sweep is one ConfigError naming each key and fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from biotune import config
from biotune.errors import ConfigError
from biotune.sweep import limits
from biotune.sweep import spec as sp
from biotune.sweep.spec import load_sweep, points
from biotune.testing.sweeps import small_base, write_sweep

REPO = Path(__file__).resolve().parents[3]
SWEEPS = sorted((REPO / "configs" / "sweep").glob("*.yaml"))

BASE = small_base()  # five registered sources in four groups (ner x2, re, cls, qa), on the bundled sample


def problems_of(path: Path) -> dict[str, list[str]]:
    """Key -> problem texts of the ConfigError that loading ``path`` must raise."""
    with pytest.raises(ConfigError) as info:
        load_sweep(path)
    assert all(p.fix for p in info.value.problems), "every problem names its fix"
    assert str(path) in str(info.value)
    out: dict[str, list[str]] = {}
    for p in info.value.problems:
        out.setdefault(p.key, []).append(f"{p.problem} | {p.fix}")
    return out


# --------------------------------------------------------------------------------------------- shipped


def test_sweep_configs_exist() -> None:
    assert {p.stem for p in SWEEPS} >= {"demo", "medtuned_loo", "swarm"}


@pytest.mark.parametrize("path", SWEEPS, ids=[p.stem for p in SWEEPS])
def test_every_shipped_sweep_loads(path: Path) -> None:
    spec = load_sweep(path)
    assert Path(spec.base).is_absolute() and Path(spec.base).is_file()
    base = spec.load_base()
    names = [pt.name for pt in points(spec, base.data)]
    assert names[0] == "base" and len(names) == len(set(names)) >= 2
    assert f"biotune sweep plan configs/sweep/{path.name}" in path.read_text().split("\nname:")[0]


def test_demo_is_base_plus_one_task_left_out() -> None:
    spec = load_sweep(REPO / "configs/sweep/demo.yaml")
    base = spec.load_base()
    pts = points(spec, base.data)
    assert [pt.kind for pt in pts] == ["base", "leave_one_out"]
    assert [pt.value for pt in pts] == [None, "synthetic_re"]
    assert spec.base.endswith("configs/train/demo_ablation.yaml")


def test_medtuned_loo_has_controls_and_three_seeds() -> None:
    spec = load_sweep(REPO / "configs/sweep/medtuned_loo.yaml")
    base = spec.load_base()
    pts = points(spec, base.data)
    included = [n for n, m in base.data.sources.items() if m.include]
    assert spec.seeds == [0, 1, 2] and spec.budget == sp.FREE
    assert [pt.value for pt in pts if pt.kind == "leave_one_out"] == included
    assert [pt.value for pt in pts if pt.kind == "control"] == [f"loo-source-{n}" for n in included]


def test_swarm_is_large_enough_to_fit() -> None:
    spec = load_sweep(REPO / "configs/sweep/swarm.yaml")
    (axis,) = spec.axes
    assert isinstance(axis, sp.SwarmAxis) and axis.fit
    k = len(sp.source_groups(spec.load_base().data))
    assert axis.n >= k + 1 and axis.min_weight * k < 1


# --------------------------------------------------------------------------------------------- names


def test_names_follow_the_scheme(tmp_path: Path) -> None:
    path = write_sweep(
        tmp_path,
        """\
name: names
base: base.yaml
budget: free
axes:
  - {type: leave_one_out, over: source, only: [hoc]}
  - {type: leave_one_out, over: group, only: [ner]}
  - {type: scale, over: source, target: ncbi_disease, factors: [0.5, 2]}
  - {type: mixtures, mixtures: {ner_heavy: {ncbi_disease: 3, hoc: 1}}}
  - {type: swarm, n: 12, seed: 3}
  - {type: values, key: optim.lr, values: [1.0e-5, 2.0e-5]}
  - {type: values, key: data.ner_format, values: [entities], name: fmt}
""",
    )
    spec = load_sweep(path)
    names = [pt.name for pt in points(spec, spec.load_base().data)]
    assert names == [
        "base",
        "loo-source-hoc",
        "control-loo-source-hoc",
        "loo-group-ner",
        "control-loo-group-ner",
        "scale-ncbi_disease-x0.5",
        "scale-ncbi_disease-x2",
        "mix-ner_heavy",
        *[f"swarm-{j:03d}" for j in range(12)],
        "lr-1e-05",
        "lr-2e-05",
        "fmt-entities",
    ]


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("optim.lr", 2e-5),
        ("data.template", "alpaca"),
        ("data.total_samples", 100),
        ("model.gradient_checkpointing", False),
        ("optim.betas", [0.9, 0.99]),
        ("data.root", "@sample"),
        ("tracking.entity", None),
    ],
)
def test_override_reads_back_the_same_value(key: str, value: object) -> None:
    cfg = config.load(None, [sp.override(key, value)])
    section, field = key.split(".")
    assert getattr(getattr(cfg, section), field) == value


# --------------------------------------------------------------------------------------------- bad configs


def test_every_problem_is_listed_in_one_error(tmp_path: Path) -> None:
    path = write_sweep(
        tmp_path,
        """\
name: every-problem
base: base.yaml
overrides: [train.max_stepz=5]
budget: fixed_sample
keep: everything
seedz: [1]
axes:
  - {type: leave_one_out, over: source, only: [ncbi_disease, no_such_source]}
  - {type: scale, over: group, target: nerr, factors: [2, -1]}
  - {type: mixtures, mixtures: {m1: {ncbi_disease: -1, hoc: 0}}}
  - {type: mixtures, mixtures: {m1: {hoc: 1}}}
  - {type: swarm, n: 4, fit: true}
  - {type: values, key: optim.lrr, values: [1.0e-5]}
  - {type: values, key: optim.lr, values: [fast, 1.0e-5]}
  - {type: shuffle, over: source}
  - {type: scale, target: hoc, factors: [2], budget: fixed_everything}
""",
    )
    found = problems_of(path)
    expected = {
        "seedz",
        "budget",
        "keep",
        "overrides[0]",
        "axes[0].only[1]",
        "axes[1].target",
        "axes[1].factors[1]",
        "axes[2].mixtures.m1.ncbi_disease",
        "axes[2].mixtures.m1",
        "axes[3].mixtures.m1",
        "axes[4].n",
        "axes[5].key",
        "axes[6].values[0]",
        "axes[7].type",
        "axes[8].budget",
    }
    assert expected <= set(found), sorted(expected - set(found))
    assert "did you mean 'seeds'" in found["seedz"][0]
    assert "did you mean 'train.max_steps'" in found["overrides[0]"][0]
    assert "did you mean 'optim.lr'" in found["axes[5].key"][0]
    assert "unknown source 'no_such_source'" in found["axes[0].only[1]"][0]
    assert "unknown group 'nerr'" in found["axes[1].target"][0]
    assert "negative" in found["axes[2].mixtures.m1.ncbi_disease"][0]
    assert any("every weight is zero" in t for t in found["axes[2].mixtures.m1"])
    assert "variant name 'mix-m1'" in found["axes[3].mixtures.m1"][0]
    assert "6 parameters" in found["axes[4].n"][0] and "n >= 6" in found["axes[4].n"][0]
    assert "fixed_samples" in found["budget"][0]


def test_bad_yaml_names_file_and_line(tmp_path: Path) -> None:
    path = write_sweep(tmp_path, "name: x\nbase: base.yaml\naxes:\n  - {type: leave_one_out, over: source\n")
    found = problems_of(path)
    (key,) = found
    assert key == f"{path}:5" or key == f"{path}:4"
    assert "cannot parse" in found[key][0]


def test_missing_base_names_the_paths_tried(tmp_path: Path) -> None:
    path = write_sweep(tmp_path, "name: x\nbase: configs/train/nope.yaml\naxes: [{type: leave_one_out}]\n")
    found = problems_of(path)
    assert "configs/train/nope.yaml" in found["base"][0]
    assert str(tmp_path / "configs/train/nope.yaml") in found["base"][0]


def test_base_problems_surface_with_their_keys(tmp_path: Path) -> None:
    bad_base = BASE.replace(
        "train: {max_steps: 10}", "train: {max_steps: 10, micro_batch_size: 0}\noptim: {lrr: 1}"
    )
    path = write_sweep(
        tmp_path, "name: x\nbase: base.yaml\nbudget: nope\naxes: [{type: leave_one_out}]\n", bad_base
    )
    found = problems_of(path)
    assert {"train.micro_batch_size", "optim.lrr", "budget"} <= set(found)
    assert str(tmp_path / "base.yaml") in found["optim.lrr"][0]
    assert "did you mean 'optim.lr'" in found["optim.lrr"][0]


def test_leave_one_out_that_empties_the_mixture(tmp_path: Path) -> None:
    one = "data:\n  root: '@sample'\n  sources:\n    hoc: {}\n"
    path = write_sweep(
        tmp_path, "name: x\nbase: base.yaml\naxes: [{type: leave_one_out, over: source}]\n", one
    )
    assert "empties the mixture" in problems_of(path)["axes[0]"][0]


def test_leave_one_group_out_that_empties_the_mixture(tmp_path: Path) -> None:
    ner = "data:\n  root: '@sample'\n  sources:\n    ncbi_disease: {}\n    bc5cdr_chem: {}\n"
    body = "name: x\nbase: base.yaml\naxes: [{type: leave_one_out, over: group, only: [ner]}]\n"
    path = write_sweep(tmp_path, body, ner)
    assert "empties the mixture" in problems_of(path)["axes[0].only[0]"][0]


def test_unknown_source_in_the_base_and_source_not_in_base(tmp_path: Path) -> None:
    base = BASE.replace("    pubmedqa: {}\n", "    pubmedqa: {}\n    pubmedqaa: {}\n")
    body = "name: x\nbase: base.yaml\naxes: [{type: scale, target: bc2gm, factors: [2]}]\n"
    found = problems_of(write_sweep(tmp_path, body, base))
    assert "did you mean pubmedqa" in found["data.sources.pubmedqaa"][0]
    assert "not in the base mixture" in found["axes[0].target"][0]


def test_duplicate_names_from_collisions(tmp_path: Path) -> None:
    body = """\
name: x
base: base.yaml
axes:
  - {type: values, key: train.epochs, values: [2]}
  - {type: values, key: data.sources.hoc.epochs, values: [2]}
  - {type: values, key: data.sources.hoc.epochs, values: [3], name: hoc-epochs}
  - {type: leave_one_out, only: [hoc]}
  - {type: leave_one_out, only: [hoc, gad]}
"""
    found = problems_of(write_sweep(tmp_path, body))
    assert set(found) == {"axes[1]", "axes[4]"}
    assert "'epochs-2' is also made by axes[0]" in found["axes[1]"][0]
    assert "'loo-source-hoc' is also made by axes[3]" in found["axes[4]"][0]


def test_values_axis_checks_key_values_and_seeds(tmp_path: Path) -> None:
    body = """\
name: x
base: base.yaml
axes:
  - {type: values, key: data.templat, values: [alpaca]}
  - {type: values, key: data.template, values: [alpaca, jinja]}
  - {type: values, key: train.seed, values: [1, 2]}
  - {type: values, key: optim.lr, values: []}
"""
    found = problems_of(write_sweep(tmp_path, body))
    assert "did you mean 'data.template'" in found["axes[0].key"][0]
    assert set(found) == {"axes[0].key", "axes[1].values[1]", "axes[2].key", "axes[3].values"}
    assert "jinja" in found["axes[1].values[1]"][0]
    assert "seeds:" in found["axes[2].key"][0]


def test_swarm_bounds(tmp_path: Path) -> None:
    body = """\
name: x
base: base.yaml
axes:
  - {type: swarm, n: 5, fit: true}
  - {type: swarm, n: 40, min_weight: 0.25, alpha: 0}
  - {type: swarm, n: 0, over: group, min_distance: 2.5, name: s3}
"""
    found = problems_of(write_sweep(tmp_path, body))
    assert "5 sources has 6 parameters" in found["axes[0].n"][0]
    assert {"axes[1].min_weight", "axes[1].alpha", "axes[2].n", "axes[2].min_distance"} <= set(found)
    assert "1/5" in found["axes[1].min_weight"][0]


def test_fit_counts_groups_when_over_groups(tmp_path: Path) -> None:
    body = "name: x\nbase: base.yaml\naxes: [{type: swarm, over: group, n: 5, fit: true}]\n"
    load_sweep(write_sweep(tmp_path, body))  # 4 groups: 5 parameters, 5 mixtures


def test_structure_problems(tmp_path: Path) -> None:
    body = "name: x\nbase: base.yaml\nseeds: [1, 1]\nmin_effect: 2\naxes:\n  - 3\n  - {over: source}\n"
    found = problems_of(write_sweep(tmp_path, body))
    assert {"axes[0]", "axes[1].type", "seeds", "min_effect"} <= set(found)
    no_axes = problems_of(write_sweep(tmp_path, "name: x\nbase: base.yaml\n"))
    assert "axes" in no_axes and "base" not in no_axes


def test_missing_file() -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_sweep("configs/sweep/no_such_sweep.yaml")


# --------------------------------------------------------------------------------------------- issue 20, item 7


@pytest.mark.parametrize(
    ("axes", "head", "key"),
    [
        ("  - {type: scale, target: hoc, factors: [2, .nan]}\n", "", "axes[0].factors[1]"),
        ("  - {type: scale, target: hoc, factors: [.inf]}\n", "", "axes[0].factors[0]"),
        ("  - {type: mixtures, mixtures: {m: {hoc: .nan, gad: 1}}}\n", "", "axes[0].mixtures.m.hoc"),
        ("  - {type: mixtures, mixtures: {m: {hoc: .inf, gad: 1}}}\n", "", "axes[0].mixtures.m.hoc"),
        ("  - {type: swarm, n: 8, alpha: .nan}\n", "", "axes[0].alpha"),
        ("  - {type: swarm, n: 8, alpha: .inf}\n", "", "axes[0].alpha"),
        ("  - {type: swarm, n: 8, min_weight: .nan}\n", "", "axes[0].min_weight"),
        ("  - {type: swarm, n: 8, min_distance: .nan}\n", "", "axes[0].min_distance"),
        ("  - {type: values, key: optim.weight_decay, values: [0.1, .nan]}\n", "", "axes[0].values[1]"),
        ("  - {type: leave_one_out}\n", "min_effect: .nan\n", "min_effect"),
    ],
)
def test_nan_and_infinity_are_refused_where_they_are_written(
    tmp_path: Path, axes: str, head: str, key: str
) -> None:
    found = problems_of(write_sweep(tmp_path, f"name: t\nbase: base.yaml\n{head}axes:\n{axes}", BASE))
    assert key in found, found
    assert "min_distance" not in key or len(found) == 1, found  # a NaN alpha is not blamed on min_distance


def test_a_nan_alpha_is_blamed_on_alpha_alone(tmp_path: Path) -> None:
    path = write_sweep(
        tmp_path, "name: t\nbase: base.yaml\naxes:\n  - {type: swarm, n: 8, alpha: .nan}\n", BASE
    )
    found = problems_of(path)
    assert list(found) == ["axes[0].alpha"] and "not a finite number" in found["axes[0].alpha"][0]


def test_swarm_n_over_the_bound_is_refused_before_anything_is_drawn(tmp_path: Path) -> None:
    import time

    path = write_sweep(tmp_path, "name: t\nbase: base.yaml\naxes:\n  - {type: swarm, n: 100000000}\n", BASE)
    started = time.process_time()
    found = problems_of(path)
    assert time.process_time() - started < 60  # the bound, not a timing claim: it would never end otherwise
    assert f"n <= {limits.MAX_SWARM_N}" in found["axes[0].n"][0]
    assert "axes" not in found  # the variants are not counted (named) past a swarm over its bound


def test_the_number_of_variants_is_bounded(tmp_path: Path) -> None:
    half = limits.MAX_VARIANTS // 2
    factors = ", ".join(str(1 + j / 1000) for j in range(1, half + 1))
    values = ", ".join(f"{j}.0e-5" for j in range(1, half + 1))
    axes = f"  - {{type: scale, target: hoc, factors: [{factors}]}}\n  - {{type: values, key: optim.lr, values: [{values}]}}\n"
    found = problems_of(write_sweep(tmp_path, f"name: t\nbase: base.yaml\naxes:\n{axes}", BASE))
    (text,) = found["axes"]
    assert f"{2 * half + 1} variants" in text and f"axes[0]: {half}, axes[1]: {half}" in text
    # one less is allowed: the bound counts the base
    ok = write_sweep(
        tmp_path / "ok",
        f"name: t\nbase: base.yaml\naxes:\n  - {{type: scale, target: hoc, factors: [{factors}]}}\n",
        BASE,
    )
    assert len(points(load_sweep(ok), config.load(str(tmp_path / "ok" / "base.yaml")).data)) == half + 1


@pytest.mark.parametrize(
    ("seeds", "key", "text"),
    [
        ("[a, b]", "seeds[0]", "each seed must be an integer, got 'a'"),
        ("[1, 2.5]", "seeds[1]", "each seed must be an integer, got 2.5"),
        ("[0, true]", "seeds[1]", "each seed must be an integer, got True"),
        ("[-1]", "seeds[0]", "-1 is not in [0, 4294967295]"),
        ("7", "seeds", "must be a list of integers, got 7"),
    ],
)
def test_each_seed_must_be_an_integer(tmp_path: Path, seeds: str, key: str, text: str) -> None:
    path = write_sweep(
        tmp_path, f"name: t\nbase: base.yaml\nseeds: {seeds}\naxes:\n  - {{type: leave_one_out}}\n", BASE
    )
    found = problems_of(path)
    assert text in found[key][0] and "seeds: [0, 1, 2]" in found[key][0]
    assert "give a value of type list" not in str(found)


def test_a_bad_override_of_the_sweep_is_keyed_by_the_sweep(tmp_path: Path) -> None:
    """The sweep's ``overrides:`` entry is wrong, not base.yaml: the key is ``overrides[j]`` of the sweep."""
    path = write_sweep(
        tmp_path,
        "name: t\nbase: base.yaml\noverrides: [train.max_steps=5, optim.lr=-1]\naxes:\n  - {type: leave_one_out}\n",
        BASE,
    )
    found = problems_of(path)
    assert "optim.lr=-1: optim.lr: must be > 0" in found["overrides[1]"][0]
    assert "base.yaml" not in str(found)


def test_the_base_files_own_problem_still_names_the_base(tmp_path: Path) -> None:
    base = BASE.replace("train: {max_steps: 10}", "train: {max_steps: 10}\noptim: {lr: -1}")
    path = write_sweep(
        tmp_path,
        "name: t\nbase: base.yaml\noverrides: [train.max_steps=5]\naxes:\n  - {type: leave_one_out}\n",
        base,
    )
    found = problems_of(path)
    assert f"(in base {tmp_path / 'base.yaml'})" in found["optim.lr"][0]


def test_sweep_file_is_not_a_key_of_the_file(tmp_path: Path) -> None:
    path = write_sweep(
        tmp_path, "name: t\nbase: base.yaml\nsweep_file: x.yaml\naxes:\n  - {type: leave_one_out}\n", BASE
    )
    assert "remove it" in problems_of(path)["sweep_file"][0]
    good = write_sweep(tmp_path / "g", "name: t\nbase: base.yaml\naxes:\n  - {type: leave_one_out}\n", BASE)
    assert load_sweep(good).sweep_file == str(good)

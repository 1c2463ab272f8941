"""``eval.during_training``: its schedule, its validation, the sweep default, and the metrics it logs."""

from __future__ import annotations

import pytest

from biotune import config
from biotune.errors import ConfigError
from biotune.eval.checkpoint_plan import (
    SWEEP_FRACTIONS,
    SWEEP_MAX_EXAMPLES,
    apply_sweep_default,
    eval_config,
    scheduled_steps,
)
from biotune.eval.during_training import step_metrics
from biotune.eval.runner import Scored
from biotune.eval.score import SetScore
from biotune.train import metric_names as names

KEY = "eval.during_training"
TINY = config.REPO_ROOT / "configs/train/tiny.yaml"


def test_default_is_off() -> None:
    assert not config.load(TINY).eval.during_training.enabled


@pytest.mark.parametrize(
    ("overrides", "total", "steps"),
    [
        ([f"{KEY}.at_fractions=[0.25,0.5,1.0]"], 800, [200, 400, 800]),
        ([f"{KEY}.at_fractions=[0.25,0.5,1.0]"], 10, [3, 5, 10]),  # ceil: never before the fraction
        ([f"{KEY}.at_fractions=[0.01,0.02]"], 10, [1]),  # at least step 1, no repeats
        ([f"{KEY}.every_steps=3"], 10, [3, 6, 9]),
        ([f"{KEY}.every_steps=5"], 10, [5, 10]),
    ],
)
def test_scheduled_steps(overrides: list[str], total: int, steps: list[int]) -> None:
    d = config.load(TINY, overrides).eval.during_training
    assert d.enabled and scheduled_steps(d, total) == steps


def test_every_steps_beyond_an_epoch_sized_run_is_refused_once_its_length_is_known() -> None:
    d = config.load(TINY, ["train.max_steps=-1", f"{KEY}.every_steps=50"])
    with pytest.raises(ConfigError) as err:
        scheduled_steps(d.eval.during_training, 40)
    assert f"{KEY}.every_steps" in str(err.value) and "at most 40" in str(err.value)


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ([f"{KEY}.at_fractions=[1.01]"], f"{KEY}.at_fractions[0]"),
        ([f"{KEY}.at_fractions=[0.5,-0.1]"], f"{KEY}.at_fractions[1]"),
        ([f"{KEY}.every_steps=41"], f"{KEY}.every_steps"),
        ([f"{KEY}.every_steps=0"], f"{KEY}.every_steps"),
        ([f"{KEY}.every_steps=4", f"{KEY}.at_fractions=[1.0]"], f"{KEY}.at_fractions"),
        ([f"{KEY}.max_examples=0"], f"{KEY}.max_examples"),
    ],
)
def test_bad_settings_name_their_key(overrides: list[str], key: str) -> None:
    with pytest.raises(ConfigError) as err:
        config.load(TINY, overrides)  # train.max_steps: 40
    assert key in [p.key for p in err.value.problems]


def test_eval_config_takes_the_sections_sets_and_cap() -> None:
    cfg = config.load(
        "configs/train/tiny.yaml",
        [f"{KEY}.every_steps=5", f"{KEY}.sources=[gad]", f"{KEY}.splits=[test]", f"{KEY}.max_examples=7"],
    )
    sub = eval_config(cfg).eval
    assert (sub.sources, sub.splits, sub.max_examples, sub.instructions) == (["gad"], ["test"], 7, {})
    assert cfg.eval.splits == ["test"] and cfg.eval.max_examples is None, (
        "the run's own eval section is untouched"
    )


def test_sweep_default_evaluates_dev_splits_only() -> None:
    cfg = config.load(TINY)  # sample sources: only pubmedqa has a dev split
    apply_sweep_default(cfg)
    d = cfg.eval.during_training
    assert (d.at_fractions, d.sources, d.splits, d.max_examples) == (
        list(SWEEP_FRACTIONS),
        ["pubmedqa"],
        ["dev"],
        SWEEP_MAX_EXAMPLES,
    )
    demo = config.load(
        config.REPO_ROOT / "configs/train/demo_ablation.yaml"
    )  # synthetic corpora: train and test only
    apply_sweep_default(demo)
    assert not demo.eval.during_training.enabled


def test_sweep_default_leaves_a_base_that_sets_it() -> None:
    cfg = config.load(TINY, [f"{KEY}.every_steps=10", f"{KEY}.splits=[test]"])
    apply_sweep_default(cfg)
    d = cfg.eval.during_training
    assert (d.every_steps, d.at_fractions, d.splits, d.max_examples) == (10, [], ["test"], None)


def test_step_metrics_are_the_namespaced_names() -> None:
    scored = Scored(
        scores=[
            SetScore(
                "ncbi_disease", "devel", "ner", 3, 1, "f1", {"f1": 0.5, "precision": 1.0, "recall": 0.25}
            )
        ]
    )
    assert step_metrics(scored) == {
        names.eval_metric("ncbi_disease", "devel", "f1"): 0.5,
        names.eval_metric("ncbi_disease", "devel", "precision"): 1.0,
        names.eval_metric("ncbi_disease", "devel", "recall"): 0.25,
        names.eval_parse_failures("ncbi_disease", "devel"): 1.0,
    }

"""Bad ``eval.during_training`` settings of ``biotune train``: exit 2 with the key and the fix, before anything is
built, loaded or written (a fraction outside (0, 1], a step beyond the run, two schedules at once, an unknown
source, a split a source does not have)."""

from __future__ import annotations

import pytest
from bad_input_harness import Case, check, ids, run_selected

TINY = "{repo}/configs/train/tiny.yaml"  # train.max_steps: 40
KEY = "eval.during_training"


def train(case_id: str, overrides: tuple[str, ...], where: str, fix: str) -> Case:
    """``biotune train configs/train/tiny.yaml OVERRIDES`` (the real command, not a dry run)."""
    return Case(case_id, ("train", TINY, *overrides), where, fix)


CASES = [
    train(
        "fraction-above-one",
        (f"{KEY}.at_fractions=[0.5,1.5]",),
        f"{KEY}.at_fractions[1]",
        "give fractions of the run, e.g. [0.25, 0.5, 1.0]",
    ),
    train(
        "fraction-zero",
        (f"{KEY}.at_fractions=[0]",),
        f"{KEY}.at_fractions[0]",
        "give fractions of the run",
    ),
    train(
        "step-beyond-the-run",
        (f"{KEY}.every_steps=50",),
        f"{KEY}.every_steps",
        f"set {KEY}.every_steps to at most 40",
    ),
    train(
        "two-schedules",
        (f"{KEY}.every_steps=10", f"{KEY}.at_fractions=[0.5]"),
        f"{KEY}.at_fractions",
        "keep one schedule",
    ),
    train(
        "unknown-source",
        (f"{KEY}.every_steps=10", f"{KEY}.sources=[ncbi_diseas]"),
        f"{KEY}.sources[0]: unknown source 'ncbi_diseas'",
        "ncbi_disease",
    ),
    train(
        "split-the-source-lacks",
        (f"{KEY}.every_steps=10", f"{KEY}.sources=[gad]", f"{KEY}.splits=[dev]"),
        f"{KEY}.splits: source 'gad' has no 'dev' split",
        f"{KEY}.splits=[test]",
    ),
]


@pytest.fixture(scope="module")
def results(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict:
    return run_selected(request, CASES, tmp_path_factory.mktemp("bad_eval_during_training"))


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_bad_eval_during_training(case: Case, results) -> None:
    check(case, results[case.id])

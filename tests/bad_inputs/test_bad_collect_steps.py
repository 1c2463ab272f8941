"""Bad inputs of ``biotune sweep collect --step N | --fraction F`` (issue 22): exit 2 naming the option and the
fix, no traceback, nothing written (neither ``results/`` nor ``results/step-N/``).

The sweep is prepared with every cell done and evaluated during training at steps 2 and 4
(``biotune.testing.step_sweeps``), except where a case says otherwise.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from bad_input_harness import Case, check, ids, run_selected

from biotune.eval.layout import step_eval_dir
from biotune.sweep import runner
from biotune.testing.step_sweeps import prepare_step_sweep

COLLECT = ("sweep", "collect", "{tmp}/sweep.yaml", "--out", "{tmp}/sweep", "--no-plots", "--n-boot", "100")


def _prepared(tmp: Path) -> None:
    prepare_step_sweep(tmp, steps=(2, 4))


def _one_cell_without_step_2(tmp: Path) -> None:
    """Every cell evaluated at steps 2 and 4, except one whose step-2 evaluation is gone."""
    sweep = prepare_step_sweep(tmp, steps=(2, 4))
    cell = sweep.cells[-1].name
    shutil.rmtree(step_eval_dir(sweep.cell_dir(cell) / runner.TRAIN_DIR, 2))


def _never_evaluated(tmp: Path) -> None:
    prepare_step_sweep(tmp, steps=())


CASES = [
    Case(
        "step-not-evaluated",
        (*COLLECT, "--step", "3"),
        "--step",
        "with a step every done cell has: 2, 4",
        _prepared,
    ),
    Case(
        "step-missing-in-one-cell",
        (*COLLECT, "--step", "2"),
        "evaluated steps: 4",
        "with a step every done cell has: 4",
        _one_cell_without_step_2,
    ),
    Case(
        "step-never-evaluated",
        (*COLLECT, "--step", "2"),
        "--step",
        "train the cells with eval.during_training on",
        _never_evaluated,
    ),
    Case(
        "fraction-zero", (*COLLECT, "--fraction", "0"), "--fraction", "pass a fraction of the run in (0, 1]"
    ),
    Case(
        "fraction-above-one",
        (*COLLECT, "--fraction", "1.5"),
        "--fraction",
        "pass a fraction of the run in (0, 1]",
    ),
    Case(
        "fraction-not-evaluated",
        (*COLLECT, "--fraction", "0.6"),
        "--fraction",
        "with a step every done cell has: 2, 4",
        _prepared,
    ),
    Case(
        "step-and-fraction",
        (*COLLECT, "--step", "2", "--fraction", "0.5"),
        "--step/--fraction",
        "pass only one of --step N or --fraction F",
    ),
]
assert len({c.id for c in CASES}) == len(CASES)


@pytest.fixture(scope="module")
def results(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    return run_selected(request, CASES, tmp_path_factory.mktemp("bad_collect_steps"))


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_bad_collect_steps(case: Case, results) -> None:
    check(case, results[case.id])

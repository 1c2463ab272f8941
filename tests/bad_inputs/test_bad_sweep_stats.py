"""Corrupt per-example statistics through ``biotune sweep collect`` (issue 20 item 4): exit 2 naming the file,
line and field, no traceback, no results written.

Each case prepares a real sweep directory (``sweep.json`` and cell configs, as ``sweep run`` writes them: a
base and one leave-one-out variant on the bundled sample, one seed each), marks both cells done with an eval
output directory in the real format (a simulated NER set of 20 documents x 3 sentences and a 50-example
accuracy set), and corrupts one statistic on line 5 of one of the variant's predictions files.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from bad_input_harness import Case, check, ids, run_selected

from biotune.eval.layout import predictions_path
from biotune.sweep import runner
from biotune.sweep.state import CellState
from biotune.testing.simulate import Arm, NerDesign, simulate_accuracy, simulate_ner, write_eval_dir
from biotune.testing.sweeps import write_sweep

LINE = 5
BAD_DIR = "{tmp}/sweep/cells/loo-source-hoc-s7/eval/predictions"


def _prepared(tmp: Path, source: str, field: str, raw: str) -> None:
    """A collected-ready sweep whose variant's predictions have ``"<field>": <raw>`` on line ``LINE``."""
    path = write_sweep(
        tmp, "name: stats\nbase: base.yaml\nseeds: [7]\naxes: [{type: leave_one_out, only: [hoc]}]\n"
    )
    sweep = runner.load(path, out=tmp / "sweep")
    runner.prepare(sweep)
    rng, arms = np.random.default_rng(0), [Arm(0.0, 1), Arm(0.0, 1)]
    sets = {
        "simner/test": simulate_ner(rng, arms, 1.0, NerDesign(20, 3)),
        "simcls/test": simulate_accuracy(rng, arms, 1.0, 50),
    }
    for arm, cell in enumerate(sweep.cells):
        cell_dir = sweep.cell_dir(cell.name)
        write_eval_dir(cell_dir / runner.EVAL_DIR, {name: (sim, arm, 0) for name, sim in sets.items()})
        runner.write_state(cell_dir, CellState.RUNNING)
        runner.write_state(cell_dir, CellState.DONE)
    bad = predictions_path(sweep.cell_dir(sweep.cells[1].name) / runner.EVAL_DIR, source, "test")
    lines = bad.read_text(encoding="utf-8").splitlines()
    row = json.loads(lines[LINE - 1])
    text = json.dumps(row)
    old = f'"{field}": {row["stats"][field]}'
    assert old in text
    lines[LINE - 1] = text.replace(old, f'"{field}": {raw}')
    bad.write_text("\n".join(lines) + "\n", encoding="utf-8")


def stat(case_id: str, field: str, raw: str, why: str, source: str = "simner") -> Case:
    """``biotune sweep collect`` over a sweep whose variant has ``field = raw`` on line ``LINE`` of its
    ``source`` predictions (``simner``: tp/fp/fn; ``simcls``: correct/n)."""
    return Case(
        case_id,
        ("sweep", "collect", "{tmp}/sweep.yaml", "--out", "{tmp}/sweep", "--no-plots"),
        f"{BAD_DIR}/{source}__test.jsonl:{LINE}",
        f"'stats.{field}' {why}",
        lambda tmp: _prepared(tmp, source, field, raw),
    )


CASES = [
    stat("stats-nan", "tp", "NaN", "is nan: it must be a finite number"),
    stat("stats-negative-fn", "fn", "-4", "is -4: it must not be negative"),
    stat("stats-non-integer-count", "fp", "1.5", "is 1.5: it counts, so it must be an integer"),
    stat("stats-infinity", "fn", "Infinity", "is inf: it must be a finite number"),
    stat("stats-correct-above-n", "correct", "2", "is 2 but n is 1: correct must be <= n", source="simcls"),
]
assert len({c.id for c in CASES}) == len(CASES)


@pytest.fixture(scope="module")
def results(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    return run_selected(request, CASES, tmp_path_factory.mktemp("bad_sweep_stats"))


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_bad_sweep_stat(case: Case, results) -> None:
    check(case, results[case.id])

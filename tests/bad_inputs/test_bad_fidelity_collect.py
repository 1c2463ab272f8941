"""Bad inputs of ``biotune sweep collect`` on a sweep with fidelities (issue 21): exit 2 naming the file (and
line) and the fix, no traceback, no results written.

Each case prepares a real sweep directory whose cells run at a proxy fidelity (``small``) and at the target,
every cell done with a simulated evaluation (``biotune.testing.fidelity_sweeps``), then spoils the proxy's
predictions. Agreement needs every fidelity scored on the same examples, so a proxy evaluated on other
examples than the target is refused (naming the proxy's file and the target's), not compared.

What is NOT an error, by design: a target with fewer than 3 variants in common with a proxy, no target cell
done yet, or the base missing at a fidelity. ``collect`` then writes every table, and ``results.md`` says per
proxy why its agreement was not measured and what to run (``tests/unit/sweep/test_collect_fidelities.py``).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bad_input_harness import Case, check, ids, run_selected

from biotune.testing.fidelity_sweeps import prepare_fidelity_sweep

#: The proxy base's NER predictions: the first proxy file aligned to the target's base.
PROXY_BASE_NER = "{tmp}/sweep/cells/small.base-s7/eval/predictions/simner__test.jsonl"
COLLECT = ("sweep", "collect", "{tmp}/sweep.yaml", "--out", "{tmp}/sweep", "--no-plots", "--n-boot", "100")


def _rewrite(path: Path, edit) -> None:  # noqa: ANN001
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    path.write_text("".join(json.dumps(edit(i, r)) + "\n" for i, r in enumerate(rows, 1)), encoding="utf-8")


def _other_examples(tmp: Path) -> None:
    """Every proxy cell scored on other NER examples than the target's (ids renamed, consistently)."""
    prepare_fidelity_sweep(tmp)
    for path in (tmp / "sweep" / "cells").glob("small.*/eval/predictions/simner__test.jsonl"):
        _rewrite(path, lambda _, r: {**r, "id": r["id"] + "-other"})


def _corrupt_line(tmp: Path) -> None:
    """A proxy variant's NER predictions have a negative count on line 5."""
    prepare_fidelity_sweep(tmp)
    path = next((tmp / "sweep" / "cells").glob("small.loo-*-s7/eval/predictions/simner__test.jsonl"))
    _rewrite(path, lambda i, r: {**r, "stats": {**r["stats"], "fn": -3}} if i == 5 else r)


CASES = [
    Case(
        "proxy-scored-on-other-examples",
        COLLECT,
        PROXY_BASE_NER,
        "evaluate both cells on the same eval sets",
        _other_examples,
    ),
    Case(
        "proxy-predictions-negative-count",
        COLLECT,
        "simner__test.jsonl:5",
        "'stats.fn' is -3: it must not be negative",
        _corrupt_line,
    ),
]
assert len({c.id for c in CASES}) == len(CASES)


@pytest.fixture(scope="module")
def results(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    return run_selected(request, CASES, tmp_path_factory.mktemp("bad_fidelity_collect"))


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_bad_fidelity_collect(case: Case, results) -> None:
    check(case, results[case.id])

"""User text echoed in messages (issue 20, item 11): a huge id, source, split or override value is echoed cut
to a few dozen characters with its length (``biotune.errors.shown``), so the message stays a few lines long.

Each case is exit 2 naming the file (and line) or the override and the fix, no traceback, nothing left behind,
and (checked below for every case) stderr under 2,000 characters although the value is 100,000 or more.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bad_input_harness import Case, check, ids, run_selected, write

HUGE = "x" * 1_000_000
#: An argument of a command line may hold at most 128 KiB (MAX_ARG_STRLEN).
LONG = "y" * 100_000
#: The most stderr a case may print (the value alone is 100,000 characters or more).
MAX_STDERR = 2_000
GOOD = [{"id": f"gad/test/test:{k}", "completion": "1"} for k in range(8)]


def score(case_id: str, rows: list[dict[str, str]], where: str, fix: str) -> Case:
    """``biotune eval score {tmp}/pred.jsonl data.root=@sample`` with ``rows`` in ``pred.jsonl``."""

    def setup(tmp: Path) -> None:
        write(tmp / "pred.jsonl", "".join(json.dumps(r) + "\n" for r in rows))

    return Case(case_id, ("eval", "score", "{tmp}/pred.jsonl", "data.root=@sample"), where, fix, setup)


def override(case_id: str, value: str, where: str, fix: str) -> Case:
    """``biotune train configs/train/tiny.yaml VALUE --dry-run``."""
    return Case(case_id, ("train", "{repo}/configs/train/tiny.yaml", value, "--dry-run"), where, fix)


CASES = [
    score(
        "score-huge-malformed-id",
        [{"id": HUGE, "completion": "1"}],
        "{tmp}/pred.jsonl: unknown id 'xxxx",
        "use the example ids of `biotune eval`",
    ),
    score(
        "score-huge-unknown-source",
        [{"id": f"{HUGE}/test/1", "completion": "1"}],
        "...(1000000 characters)' in ids like",
        "use one of:",
    ),
    score(
        "score-huge-split",
        [{"id": f"gad/{HUGE}/1", "completion": "1"}],
        "source 'gad' has no split 'xxxx",
        "use the split names in the example ids",
    ),
    score(
        "score-huge-unknown-record",
        [*GOOD, {"id": f"gad/test/{HUGE}", "completion": "1"}],
        "1 unknown id(s), e.g. gad/test/xxxx",
        "predict every example of each evaluated split exactly once",
    ),
    score(
        "score-huge-duplicate-id",
        [{"id": f"gad/test/{HUGE}", "completion": "1"}] * 2,
        "{tmp}/pred.jsonl:2: duplicate id 'gad/test/xxxx",
        "keep one completion per example id",
    ),
    override(
        "override-huge-int",
        f"train.max_steps={LONG}",
        "train.max_steps: wrong type",
        "give a value of type int",
    ),
    override("override-huge-key", f"{LONG}=1", "...(100002 characters)", "remove it; valid keys"),
    override("override-huge-choice", f"model.dtype={LONG}", "model.dtype:", "set model.dtype to one of"),
]
assert len({c.id for c in CASES}) == len(CASES)


@pytest.fixture(scope="module")
def results(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    return run_selected(request, CASES, tmp_path_factory.mktemp("bad_echoes"))


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_a_huge_value_is_echoed_cut(case: Case, results) -> None:
    result = results[case.id]
    check(case, result)
    assert len(result.stderr) < MAX_STDERR, (
        f"{len(result.stderr)} characters of stderr:\n{result.stderr[:3000]}"
    )

"""Data builds that would be empty (issue 20, item 6), through ``biotune data build`` of the bundled sample with
the tiny tokenizer: a source whose every sample is longer than ``data.max_seq_len`` (and so dropped by
``data.truncation``), a build in which every source is dropped, and a mixture with nothing in it. Each exits 2
naming the source (or ``data.sources``) and ``max_seq_len`` with the fix, and writes no dataset directory.

Slow as a whole: each case loads the tokenizer and tokenizes the sample (a few seconds of CPU).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from bad_input_harness import Case, check, ids, run_selected, write

pytestmark = pytest.mark.slow

SAMPLE = "{repo}/configs/data/sample.yaml"


def build(case_id: str, overrides: tuple[str, ...], where: str, fix: str = "fix:") -> Case:
    """``biotune data build configs/data/sample.yaml data.tokenizer={tok} data.out_dir={tmp}/out OVERRIDES``."""
    args = ("data", "build", SAMPLE, "data.tokenizer={tok}", "data.out_dir={tmp}/out", *overrides)
    return Case(case_id, args, where, fix)


CASES = [
    build(
        "one-source-all-too-long",
        ("data.max_seq_len=400",),
        "data.sources.hoc: all 23 training samples of hoc (train) are longer than data.max_seq_len=400",
        "raise data.max_seq_len, set data.truncation=truncate",
    ),
    build(
        "every-source-too-long",
        ("data.max_seq_len=64",),
        "data.sources.bioasq_yesno: all 16 training samples",
        "data.sources.bioasq_yesno.include=false",
    ),
    Case(
        "empty-mixture",
        ("data", "build", "{tmp}/run.yaml", "data.tokenizer={tok}", "data.out_dir={tmp}/out"),
        "data.sources",
        "include at least one source with data",
        lambda tmp: write(tmp / "run.yaml", "data:\n  root: '@sample'\n  sources:\n    gad: {cap: 0}\n"),
    ),
]
assert len({c.id for c in CASES}) == len(CASES)


@pytest.fixture(scope="module")
def results(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, tiny_model: Path):
    return run_selected(request, CASES, tmp_path_factory.mktemp("bad_builds"), tiny_model)


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_bad_build(case: Case, results, tiny_model: Path) -> None:
    check(case, results[case.id], tiny_model)

"""Names that would write outside the output directory (issue 20, item 3): every config value that becomes a
path component (sources, custom sources, splits, ``data.split_files`` keys, instruction sets, ``corpus_split``,
sweeps and variants) follows the one rule of ``biotune.names`` and is refused when the config is loaded: exit 2,
the key and the fix, nothing written, and the user's file that the name pointed at left as it was.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from bad_input_harness import Case, check, ids, run_case, run_selected, write

from biotune.testing.sweeps import write_sweep

PRED = '{"id": "gad/test/x", "completion": "yes"}\n'
ROWS = '{"instruction": "Is there a relation?", "input": "a b", "output": "yes", "source": "GAD"}\n'
MINE = "my own training data\n"


def _user_files(tmp: Path) -> None:
    """A predictions file, an instruction set, and the user's own ``mydata/train.jsonl`` beside the output."""
    write(tmp / "pred.jsonl", PRED)
    write(tmp / "rows.jsonl", ROWS)
    write(tmp / "mydata" / "train.jsonl", MINE)


def score(case_id: str, overrides: tuple[str, ...], where: str, fix: str = "fix:") -> Case:
    """``biotune eval score {tmp}/pred.jsonl --out {tmp}/a/b/c/out data.root=@sample OVERRIDES``."""
    args = ("eval", "score", "{tmp}/pred.jsonl", "--out", "{tmp}/a/b/c/out", "data.root=@sample", *overrides)
    return Case(case_id, args, where, fix, _user_files)


def yaml_case(case_id: str, text: str, where: str, fix: str = "fix:") -> Case:
    """``biotune data build {tmp}/run.yaml --dry-run`` with ``run.yaml`` holding ``text``."""
    return Case(
        case_id,
        ("data", "build", "{tmp}/run.yaml", "--dry-run"),
        where,
        fix,
        lambda tmp: write(tmp / "run.yaml", text),
    )


def sweep_case(case_id: str, body: str, where: str, fix: str = "fix:") -> Case:
    """``biotune sweep plan {tmp}/sweep.yaml`` over the small sample base."""
    return Case(
        case_id, ("sweep", "plan", "{tmp}/sweep.yaml"), where, fix, lambda tmp: write_sweep(tmp, body)
    )


LONG = "a" * 101

CASES = [
    score(
        "corpus-split-climbs-out",
        (
            "eval.instructions.x.path={tmp}/rows.jsonl",
            "eval.instructions.x.corpus_split=../../../../mydata/train",
        ),
        "eval.instructions.x.corpus_split",
        "rename it, e.g. 'mydata_train'",
    ),
    score(
        "instruction-split-climbs-out",
        ("eval.instructions.x.path={tmp}/rows.jsonl", "eval.instructions.x.split=../../../../mydata/train"),
        "eval.instructions.x.split",
        "rename it",
    ),
    score(
        "eval-split-climbs-out", ("eval.splits=[../../../../mydata/train]",), "eval.splits[0]", "rename it"
    ),
    score("eval-source-is-dotdot", ("eval.sources=[..]",), "eval.sources[0]", "rename it"),
    yaml_case(
        "custom-source-named-dotdot",
        "data:\n  root: '@sample'\n  custom_sources:\n    '../../..': {kind: re, format: blue_tsv, "
        "files: {test: x.tsv}, labels: ['0', '1'], negative_label: '0'}\n",
        "data.custom_sources.../../..",
        "rename it",
    ),
    yaml_case(
        "custom-source-split-absolute",
        "data:\n  root: '@sample'\n  custom_sources:\n    mine: {kind: re, format: blue_tsv, "
        "files: {/tmp/x: x.tsv}, labels: ['0', '1'], negative_label: '0'}\n",
        "data.custom_sources.mine.files./tmp/x",
        "rename it",
    ),
    yaml_case(
        "split-files-key-climbs-out",
        "data:\n  root: '@sample'\n  sources: {gad: {}}\n  split_files:\n    gad: {'../test': x.tsv}\n",
        "data.split_files.gad.../test",
        "rename it",
    ),
    yaml_case(
        "source-split-climbs-out",
        "data:\n  root: '@sample'\n  sources: {gad: {split: ../../train}}\n",
        "data.sources.gad.split",
        "rename it",
    ),
    yaml_case(
        "instruction-set-name-with-slash",
        "data:\n  root: '@sample'\n  instructions:\n    'a/b': {path: rows.jsonl}\n",
        "data.instructions.a/b",
        "rename it, e.g. 'a_b'",
    ),
    yaml_case(
        "custom-source-name-too-long",
        f"data:\n  root: '@sample'\n  custom_sources:\n    {LONG}: {{kind: re, format: blue_tsv, "
        "files: {test: x.tsv}, labels: ['0', '1'], negative_label: '0'}\n",
        "longer than 100 characters",
        "use a shorter source name",
    ),
    sweep_case(
        "sweep-name-too-long",
        f"name: {LONG}\nbase: base.yaml\naxes:\n  - {{type: leave_one_out}}\n",
        "name: sweep name",
        "use a shorter sweep name",
    ),
    sweep_case(
        "variant-name-too-long",
        f"name: ok\nbase: base.yaml\naxes:\n  - {{type: mixtures, mixtures: {{{LONG}: {{gad: 1, hoc: 1}}}}}}\n",
        "axes[0]: variant name",
        "use a shorter variant name",
    ),
]
assert len({c.id for c in CASES}) == len(CASES)


@pytest.fixture(scope="module")
def results(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    return run_selected(request, CASES, tmp_path_factory.mktemp("bad_paths"))


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_bad_path_name(case: Case, results) -> None:
    check(case, results[case.id])


def test_the_users_file_is_left_as_it_was(results, tmp_path: Path) -> None:
    case = next(c for c in CASES if c.id == "corpus-split-climbs-out")
    result = results.get(case.id) or run_case(case, tmp_path / case.id)
    assert (result.tmp / "mydata" / "train.jsonl").read_text() == MINE

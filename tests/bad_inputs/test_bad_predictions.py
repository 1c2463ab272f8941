"""Bad predictions files and reports: ``biotune eval score`` and ``biotune eval compare``.

Gold comes from the bundled sample (``data.root=@sample``; GAD's test split has 8 pairs, ids ``gad/test/test:K``).
Every case exits 2 naming the file (and line) or the flag and the fix, and leaves no file behind: no report
from a failed score, no temporary file from a failed ``compare --json``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from bad_input_harness import Case, base_env, check, ids, run_selected, write

GAD_IDS = [f"gad/test/test:{k}" for k in range(8)]
GOOD_ROWS = "".join(json.dumps({"id": i, "completion": "1"}) + "\n" for i in GAD_IDS)
REPORT = {"meta": {}, "rows": [{"dataset": "gad/test", "metric": "f1", "score": 50.0}]}


def score(
    case_id: str,
    content: str | bytes,
    where: str,
    fix: str = "fix:",
    extra: tuple[str, ...] = (),
    files: dict[str, str] | None = None,
) -> Case:
    """``biotune eval score {tmp}/pred.jsonl data.root=@sample [extra]`` with ``pred.jsonl`` holding ``content``."""

    def setup(tmp: Path) -> None:
        write(tmp / "pred.jsonl", content)
        for rel, text in (files or {}).items():
            write(tmp / rel, text)

    return Case(
        case_id, ("eval", "score", "{tmp}/pred.jsonl", "data.root=@sample", *extra), where, fix, setup
    )


def compare(
    case_id: str,
    reports: dict[str, str | bytes],
    where: str,
    fix: str = "fix:",
    extra: tuple[str, ...] = (),
    runs: tuple[str, ...] = ("a", "b"),
    dirs: tuple[str, ...] = (),
) -> Case:
    """``biotune eval compare {tmp}/a {tmp}/b [extra]``; ``reports`` maps run name -> its report.json."""

    def setup(tmp: Path) -> None:
        for run, text in reports.items():
            write(tmp / run / "report.json", text)
        for d in dirs:
            (tmp / d).mkdir(parents=True)

    return Case(case_id, ("eval", "compare", *(f"{{tmp}}/{r}" for r in runs), *extra), where, fix, setup)


GOOD_REPORT = json.dumps(REPORT)

CASES = [
    score(
        "pred-not-utf8",
        (GOOD_ROWS + '{"id": "x", "completion": "caf\xe9"}\n').encode("latin-1"),
        "{tmp}/pred.jsonl:9",
        "write the predictions file as UTF-8",
    ),
    score(
        "pred-invalid-json",
        GOOD_ROWS + "{oops\n",
        "{tmp}/pred.jsonl:9",
        'write one {"id": ..., "completion": ...}',
    ),
    score(
        "pred-missing-completion",
        GOOD_ROWS + '{"id": "gad/test/test:9"}\n',
        "{tmp}/pred.jsonl:9",
        'write e.g. {"id": "ncbi_disease/test/123"',
    ),
    score(
        "pred-completion-not-text",
        '{"id": "gad/test/test:0", "completion": 1}\n',
        "{tmp}/pred.jsonl:1",
        'write e.g. {"id"',
    ),
    score(
        "pred-duplicate-id",
        GOOD_ROWS + json.dumps({"id": GAD_IDS[0], "completion": "0"}) + "\n",
        "{tmp}/pred.jsonl:9",
        "keep one completion per example id",
    ),
    score("pred-empty", "\n", "{tmp}/pred.jsonl", "generate predictions first"),
    score(
        "pred-unknown-source", '{"id": "gadd/test/1", "completion": "1"}\n', "{tmp}/pred.jsonl", "use one of:"
    ),
    score(
        "pred-bad-id",
        '{"id": "no-slashes", "completion": "1"}\n',
        "{tmp}/pred.jsonl",
        "use the example ids of `biotune eval`",
    ),
    score(
        "pred-missing-examples",
        "".join(GOOD_ROWS.splitlines(keepends=True)[:5]),
        "{tmp}/pred.jsonl",
        "predict every example of each evaluated split exactly once",
    ),
    score(
        "pred-unknown-split",
        '{"id": "gad/devel/x", "completion": "1"}\n',
        "{tmp}/pred.jsonl",
        "use the split names in the example ids",
    ),
    Case(
        "pred-file-missing",
        ("eval", "score", "{tmp}/absent.jsonl", "data.root=@sample"),
        "{tmp}/absent.jsonl",
        "pass the JSONL file written by `biotune eval`",
    ),
    score(
        "score-out-is-a-file",
        GOOD_ROWS,
        "--out",
        "give --out a directory path",
        extra=("--out", "{tmp}/taken"),
        files={"taken": "not a directory\n"},
    ),
    score(
        "score-out-under-a-file",
        GOOD_ROWS,
        "lies under the file {tmp}/taken",
        "give --out a directory path",
        extra=("--out", "{tmp}/taken/report"),
        files={"taken": "not a directory\n"},
    ),
    compare(
        "compare-wrong-shape",
        {"a": GOOD_REPORT, "b": json.dumps({"rows": {"gad/test": 50}})},
        "{tmp}/b/report.json",
        "re-run `biotune eval` for this run",
    ),
    compare(
        "compare-row-lacks-keys",
        {"a": GOOD_REPORT, "b": json.dumps({"rows": [{"dataset": "gad/test"}]})},
        "{tmp}/b/report.json",
        "re-run `biotune eval`",
    ),
    compare(
        "compare-score-not-a-number",
        {
            "a": GOOD_REPORT,
            "b": json.dumps({"rows": [{"dataset": "gad/test", "metric": "f1", "score": "high"}]}),
        },
        "{tmp}/b/report.json",
        "re-run `biotune eval`",
    ),
    compare(
        "compare-invalid-json",
        {"a": GOOD_REPORT, "b": '{"rows": [\n'},
        "{tmp}/b/report.json:2",
        "re-run `biotune eval`",
    ),
    compare(
        "compare-not-utf8",
        {"a": GOOD_REPORT, "b": b'{"rows": ["caf\xe9"]}'},
        "{tmp}/b/report.json",
        "re-run `biotune eval`",
    ),
    compare(
        "compare-no-report",
        {"a": GOOD_REPORT},
        "{tmp}/b/report.json",
        "pass a directory written by",
        dirs=("b",),
    ),
    compare(
        "compare-json-is-a-directory",
        {"a": GOOD_REPORT, "b": GOOD_REPORT},
        "--json",
        "give --json a file path",
        extra=("--json", "{tmp}/out"),
        dirs=("out",),
    ),
    compare(
        "compare-json-under-a-file",
        {"a": GOOD_REPORT, "b": GOOD_REPORT, "c": GOOD_REPORT},
        "lies under the file {tmp}/c/report.json",
        "give --json a file path in a directory",
        extra=("--json", "{tmp}/c/report.json/cmp.json"),
    ),
    compare(
        "compare-f1-against-accuracy",
        {
            "a": GOOD_REPORT,
            "b": json.dumps({"rows": [{"dataset": "gad/test", "metric": "accuracy", "score": 60.0}]}),
        },
        "{tmp}/b/report.json: gad/test is scored by accuracy here, by f1 in {tmp}/a",
        "compare runs that score each set by the same metric",
    ),
    compare(
        "compare-one-run", {"a": GOOD_REPORT}, "RUN", "pass two or more evaluation directories", runs=("a",)
    ),
]
assert len({c.id for c in CASES}) == len(CASES)


@pytest.fixture(scope="module")
def results(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    return run_selected(request, CASES, tmp_path_factory.mktemp("bad_predictions"))


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_bad_predictions_or_report(case: Case, results) -> None:
    check(case, results[case.id])


def test_gad_no_is_the_negative_label_not_a_parse_failure(tmp_path: Path) -> None:
    # Before: "yes" read as positive but "no" as a parse failure (scored as the negative, flagged as unparsed).
    rows = [{"id": i, "completion": "Yes." if k % 2 == 0 else "No."} for k, i in enumerate(GAD_IDS)]
    write(tmp_path / "pred.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "biotune.cli",
            "eval",
            "score",
            str(tmp_path / "pred.jsonl"),
            "data.root=@sample",
            "--out",
            str(tmp_path / "scored"),
        ],
        cwd=tmp_path,
        env=base_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    row = json.loads((tmp_path / "scored" / "report.json").read_text())["rows"][0]
    assert (row["dataset"], row["parse_failures"], row["score"]) == ("gad/test", 0, 100.0)

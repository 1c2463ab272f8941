"""Bad inputs met by a parallel data build (``data.num_proc=2``): the same answer as a serial build.

The bundled sample corpus is copied into the case directory and one file is damaged; the build reads every
source split in worker processes. A reader's error raised in a worker comes back as the serial build's error
(exit 2, the file and line, the fix, no traceback), in config order (a later source's error waits for the
earlier sources), and an overlap found by the leakage check (a worker's job, after the tokenization) stops
the workers; in every case nothing is left behind.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from bad_input_harness import Case, check, ids, run_selected, write

from biotune.sources import SAMPLE_ROOT

#: Every case loads the tiny tokenizer and starts two worker processes: a few seconds of CPU each.
pytestmark = pytest.mark.slow

NCBI = "ncbi_disease/iob/train.tsv"
GAD = "gad/fold1/train.tsv"
NCBI_LINES = len((SAMPLE_ROOT / NCBI).read_text(encoding="utf-8").splitlines())
GAD_LINES = len((SAMPLE_ROOT / GAD).read_text(encoding="utf-8").splitlines())


def parallel_build(case_id: str, damage: dict[str, str], where: str, fix: str = "fix:", *extra: str) -> Case:
    """A case: the sample corpus with ``damage`` (relative path -> text appended), built with two workers."""

    def setup(tmp: Path) -> None:
        shutil.copytree(SAMPLE_ROOT, tmp / "corpus")
        for rel, text in damage.items():
            path = tmp / "corpus" / rel
            write(path, path.read_text(encoding="utf-8") + text)

    return Case(
        case_id,
        (
            "data",
            "build",
            "{repo}/configs/data/sample.yaml",
            "data.root={tmp}/corpus",
            "data.tokenizer={tok}",
            "data.num_proc=2",
            *extra,
        ),
        where,
        fix,
        setup,
    )


CASES = [
    # The first source's file: its worker's DataError is the serial build's.
    parallel_build("np2-conll-line-without-tag", {NCBI: "bad\n"}, f"{{tmp}}/corpus/{NCBI}:{NCBI_LINES + 1}"),
    # A later source (gad is the 4th): read at the same time as the others, raised in its turn.
    parallel_build(
        "np2-later-source-bad-label",
        {GAD: "@GENE$ and @DISEASE$.\t2\n"},
        f"{{tmp}}/corpus/{GAD}:{GAD_LINES + 1}",
    ),
    # Two damaged sources: the first in config order is reported, whichever worker failed first.
    parallel_build(
        "np2-two-bad-sources-first-wins",
        {NCBI: "bad\n", GAD: "@GENE$ and @DISEASE$.\t2\n"},
        f"{{tmp}}/corpus/{NCBI}:{NCBI_LINES + 1}",
    ),
    # The leakage check's error (a worker runs it after the tokenization chunks): BC5CDR's chemical and disease
    # files share their sentences, so training on the chemical test split leaks the disease test split.
    parallel_build(
        "np2-leakage-error",
        {},
        "evaluation examples overlap",
        "set data.leakage=warn",
        "data.sources.bc5cdr_chem.split=test",
        "data.sources.bc5cdr_disease.cap=0",
        "data.leakage_splits=[test]",
        "data.leakage=error",
    ),
]
assert len({c.id for c in CASES}) == len(CASES)


@pytest.fixture(scope="module")
def results(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, tiny_model: Path):
    return run_selected(request, CASES, tmp_path_factory.mktemp("bad_num_proc"), tiny_model)


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_bad_input_in_a_parallel_build(case: Case, results, tiny_model: Path) -> None:
    check(case, results[case.id], tiny_model)

"""Bad inputs of the data a researcher brings (issue 12): sources declared in a config, mapped split files,
instruction sets for training and for evaluation. Each exits 2 naming the key (config problems) or the file and
line (data problems) with the fix, and writes nothing: the config cases stop at load (``--dry-run`` where the
problem is in the config alone), the data cases in a real ``data build`` or ``eval score``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bad_input_harness import Case, check, ids, run_selected, write

NER_TRAIN = "Patient\tO\nreports\tO\nheadache\tB\n.\tO\n"
CUSTOM = (
    "data:\n  root: '{{tmp}}'\n  leakage: 'off'\n  max_seq_len: 256\n"
    "  custom_sources:\n    clinic:\n      kind: {kind}\n      format: {format}\n"
    "      files: {{train: {train}}}\n      labels: {labels}\n{extra}"
    "  sources:\n    {source}: {{}}\n"
)


def custom_case(
    case_id: str,
    where: str,
    fix: str,
    kind: str = "ner",
    format: str = "conll",
    train: str = "clinic/train.tsv",
    labels: str = "[Symptom]",
    extra: str = "      entity_type: Symptom\n",
    source: str = "clinic",
    files: dict[str, str] | None = None,
    build: bool = False,
) -> Case:
    """A config declaring ``data.custom_sources.clinic``; ``build`` runs a real ``data build`` (else a dry run)."""
    text = CUSTOM.format(kind=kind, format=format, train=train, labels=labels, extra=extra, source=source)

    def setup(tmp: Path) -> None:
        write(tmp / "run.yaml", text.replace("{tmp}", str(tmp)))
        for rel, content in (files if files is not None else {"clinic/train.tsv": NER_TRAIN}).items():
            write(tmp / rel, content)

    args = ("data", "build", "{tmp}/run.yaml", "data.tokenizer={tok}", *(() if build else ("--dry-run",)))
    return Case(case_id, args, where, fix, setup)


BIOC_BAD = (
    '<?xml version="1.0"?><collection><document><id>1</id><passage><infon key="type">title</infon>'
    "<offset>0</offset><text>Aspirin causes ulcers.</text>"
    '<annotation id="0"><infon key="type">Chemical</infon><infon key="MESH">D001241</infon>'
    '<location offset="3" length="7"/><text>Aspirin</text></annotation></passage></document></collection>'
)
ROW = {"instruction": "Find the diseases.", "input": "Mutations cause cancer .", "source": "NCBI-disease"}


def eval_rows_case(
    case_id: str, rows: list[dict] | str, where: str, fix: str, extra: tuple[str, ...] = ()
) -> Case:
    """``biotune eval score`` of gold-shaped predictions against ``eval.instructions.pub`` holding ``rows``."""

    def setup(tmp: Path) -> None:
        text = rows if isinstance(rows, str) else "".join(json.dumps(r) + "\n" for r in rows)
        write(tmp / "rows.jsonl", text)
        write(tmp / "pred.jsonl", json.dumps({"id": "rows:test:0", "completion": "O"}) + "\n")

    args = (
        "eval", "score", "{tmp}/pred.jsonl", "data.root=@sample", "eval.instructions.pub.path={tmp}/rows.jsonl",
        "eval.instructions.pub.split=test", *extra,
    )  # fmt: skip
    return Case(case_id, args, where, fix, setup)


CASES = [
    # data.custom_sources: declarations (config load)
    custom_case("custom-unknown-format", "data.custom_sources.clinic.format", "use one of conll", format="iob9"),
    custom_case("custom-format-kind-mismatch", "data.custom_sources.clinic.format", "for kind ner use one of",
                format="blue_tsv"),
    custom_case("custom-unknown-kind", "data.custom_sources.clinic.kind", "use one of ner, re", kind="ner2"),
    custom_case("custom-no-labels", "data.custom_sources.clinic.labels", "list the labels", labels="[]", extra=""),
    Case("custom-shadows-builtin", ("train", "{tmp}/run.yaml", "--dry-run"), "data.custom_sources.gad",
         "give your source another name",
         lambda tmp: write(tmp / "run.yaml", "data:\n  custom_sources:\n    gad: {kind: re, format: blue_tsv, "
                                             "files: {train: x.tsv}, labels: ['1', '0']}\n")),
    custom_case("custom-entity-type-not-a-label", "data.custom_sources.clinic.entity_type", "add it to labels",
                extra="      entity_type: Sign\n"),
    custom_case("custom-unrestricted-without-licence", "data.custom_sources.clinic.restricted",
                "declare data.custom_sources.clinic.licence", extra="      restricted: false\n"),
    # data.custom_sources: the files (a real build)
    custom_case("custom-missing-file", "{tmp}/clinic/train.tsv", "put the train file at", files={}, build=True),
    custom_case("custom-label-not-in-file-labels", "{tmp}/clinic/train.tsv:3", "use one of Symptom",
                extra="", files={"clinic/train.tsv": "Patient\tO\nreports\tO\nheadache\tB-Sign\n"}, build=True),
    # BC5CDR's BioC XML release, read where its PubTator files are absent
    Case("bioc-mention-off-its-text", ("data", "build", "{tmp}/run.yaml", "data.tokenizer={tok}"),
         "{tmp}/bc5cdr/CDR_Data/CDR.Corpus.v010516/CDR_TestSet.BioC.xml", "offsets must index the document",
         lambda tmp: (write(tmp / "run.yaml", "data:\n  root: '" + str(tmp) + "'\n  leakage: 'off'\n  sources:\n"
                            "    bc5cdr_cid: {split: test}\n"),
                      write(tmp / "bc5cdr/CDR_Data/CDR.Corpus.v010516/CDR_TestSet.BioC.xml", BIOC_BAD))),
    # data.split_files
    Case("split-files-unknown-source", ("train", "{repo}/configs/train/tiny.yaml", "data.split_files.bcgm.test=x",
         "--dry-run"), "data.split_files.bcgm", "did you mean bc2gm"),
    Case("split-files-missing-file", ("eval", "score", "{tmp}/pred.jsonl", "data.root=@sample",
         "data.split_files.gad.test={tmp}/absent.tsv"), "{tmp}/absent.tsv", "data.split_files.gad.test",
         lambda tmp: write(tmp / "pred.jsonl", '{"id": "gad/test/test:0", "completion": "1"}\n')),
    # data.instructions (training)
    Case("instruction-files-old-key", ("train", "{repo}/configs/train/tiny.yaml", "data.instruction_files=[x.jsonl]",
         "--dry-run"), "data.instruction_files", "data.instructions.NAME"),
    Case("instructions-unrestricted-without-licence", ("train", "{repo}/configs/train/tiny.yaml",
         "data.instructions.pub.path=x.jsonl", "data.instructions.pub.restricted=false", "--dry-run"),
         "data.instructions.pub.restricted", "declare data.instructions.pub.licence"),
    Case("instructions-not-a-save-to-disk-dir", ("data", "build", "{repo}/configs/data/sample.yaml",
         "data.tokenizer={tok}", "data.instructions.pub.path={tmp}/empty_dir"), "{tmp}/empty_dir",
         "save_to_disk", lambda tmp: (tmp / "empty_dir").mkdir()),
    # eval.instructions
    eval_rows_case("eval-rows-missing-column", [ROW], "{tmp}/rows.jsonl:1", "each row needs string columns"),
    eval_rows_case("eval-rows-source-without-mapping", [{**ROW, "output": "x", "source": "ChatDoctor"}],
                   "{tmp}/rows.jsonl", "eval.instructions.pub.source_map"),
    eval_rows_case("eval-rows-map-to-unknown-source", [{**ROW, "output": "x"}],
                   "eval.instructions.pub.source_map.NCBI-disease", "did you mean ncbi_disease",
                   ("eval.instructions.pub.source_map.NCBI-disease=ncbi_disaese",)),
    eval_rows_case("eval-rows-gold-unreadable", [{**ROW, "output": "ohne Tags", "source": "GAD"}],
                   "{tmp}/rows.jsonl", "eval.instructions.pub.on_unparsable=skip",
                   ("eval.instructions.pub.on_unparsable=error",)),
    eval_rows_case("eval-rows-on-unparsable-unknown", [{**ROW, "output": "O"}],
                   "eval.instructions.pub.on_unparsable", "set eval.instructions.pub.on_unparsable to one of",
                   ("eval.instructions.pub.on_unparsable=ignore",)),
]  # fmt: skip
assert len({c.id for c in CASES}) == len(CASES)


@pytest.fixture(scope="module")
def results(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, tiny_model: Path):
    return run_selected(request, CASES, tmp_path_factory.mktemp("bad_your_data"), tiny_model)


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_bad_your_data(case: Case, results, tiny_model: Path) -> None:
    check(case, results[case.id], tiny_model)

"""Bad input to the source readers: each error names the file (and line) and the fix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from biotune.data.sources import SOURCES, UnknownSourceError, load_instructions, load_records
from biotune.errors import BiotuneError, DataError


def _write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def _error(name: str, split: str, root: Path) -> DataError:
    with pytest.raises(DataError) as info:
        load_records(name, split, root)
    return info.value


def test_conll_line_without_tag_column(tmp_path: Path) -> None:
    path = _write(tmp_path / "ncbi_disease/iob/train.tsv", "Cystic\tB-Disease\nfibrosis\tI-Disease\nbad\n")
    err = _error("ncbi_disease", "train", tmp_path)
    assert (err.path, err.line) == (str(path), 3)
    assert f"{path}:3" in str(err) and "add the tag column" in str(err)


@pytest.mark.parametrize(
    ("name", "rel", "text", "line", "label"),
    [
        ("ncbi_disease", "ncbi_disease/iob/test.tsv", "A\tO\nB\tB-Protein\n", 2, "'Protein'"),
        ("ncbi_disease", "ncbi_disease/iob/test.tsv", "A\tO\n\nB\tX-Disease\n", 3, "'X-Disease'"),
        ("i2b2_2012", "i2b2_2012/iob/test.tsv", "pain\tB\n", 1, "untyped"),
        ("gad", "gad/fold1/train.tsv", "@GENE$ causes @DISEASE$.\t1\n@GENE$ and @DISEASE$.\t2\n", 2, "'2'"),
        ("chemprot", "chemprot/cpr-groups/dev.tsv", "sentence\tlabel\nBC6ENTC binds BC6ENTG.\tCPR:7\n", 2, "'CPR:7'"),
        ("i2b2_2010_re", "i2b2_2010/re/test.tsv", "index\tsentence\tlabel\n0\t@test$ showed @problem$\tTeXP\n", 2, "'TeXP'"),
        ("mednli", "mednli/mli_test_v1.jsonl", json.dumps({"sentence1": "a", "sentence2": "b", "gold_label": "maybe"}), 1, "'maybe'"),
        ("bioasq_yesno", "bioasq_yesno/tsv/test.tsv", "yesno_label\tquestion\tideal_answer\n2\tIs it?\tYes.\n", 2, "'2'"),
    ],
)  # fmt: skip
def test_unknown_label_names_file_and_line(
    tmp_path: Path, name: str, rel: str, text: str, line: int, label: str
) -> None:
    split = next(s for s, p in SOURCES[name].splits.items() if p == rel)
    path = _write(tmp_path / rel, text)
    err = _error(name, split, tmp_path)
    assert f"{path}:{line}" in str(err) and label in str(err)


def test_hoc_unknown_hallmark(tmp_path: Path) -> None:
    _write(tmp_path / "hoc/text/1.txt", "One sentence .\n")
    path = _write(tmp_path / "hoc/labels/1.txt", "<Becoming purple--Sub\n")
    from biotune.data.sources.classification import hoc_split

    err = _error("hoc", hoc_split("1"), tmp_path)
    assert f"{path}:1" in str(err) and "'becoming purple'" in str(err)


def test_ddi_unknown_type(tmp_path: Path) -> None:
    _write(
        tmp_path / "ddi/Train/MedLine/d1.xml",
        '<?xml version="1.0" encoding="UTF-8"?>\n<document id="d1"><sentence id="d1.s0" text="A and B mix.">'
        '<entity id="d1.s0.e0" charOffset="0-0" type="drug" text="A"/><entity id="d1.s0.e1" charOffset="6-6" type="drug" text="B"/>'
        '<pair id="d1.s0.p0" e1="d1.s0.e0" e2="d1.s0.e1" ddi="true" type="synergy"/></sentence></document>\n',
    )
    err = _error("ddi", "train", tmp_path)
    assert "d1.xml" in str(err) and "'DDI-synergy'" in str(err)


@pytest.mark.parametrize(
    ("name", "split", "rel"),
    [
        ("ncbi_disease", "train", "ncbi_disease/iob/train.tsv"),
        ("gad", "test", "gad/fold1/test.tsv"),
        ("chemprot_fine", "dev", "chemprot/scibert-fine/dev.jsonl"),
        ("mednli", "train", "mednli/mli_train_v1.jsonl"),
        ("bioasq_yesno", "train", "bioasq_yesno/tsv/train.tsv"),
        ("bc5cdr_pubtator_ner", "test", "bc5cdr/pubtator/CDR_TestSet.PubTator.txt"),
    ],
)
def test_empty_file(tmp_path: Path, name: str, split: str, rel: str) -> None:
    path = _write(tmp_path / rel, "\n\n")
    err = _error(name, split, tmp_path)
    assert err.path == str(path) and "empty" in str(err)


def test_header_only_file_has_no_rows(tmp_path: Path) -> None:
    _write(tmp_path / "chemprot/cpr-groups/train.tsv", "sentence\tlabel\n")
    assert "no rows" in str(_error("chemprot", "train", tmp_path))


def test_missing_file_and_missing_split(tmp_path: Path) -> None:
    err = _error("bc2gm", "train", tmp_path)
    assert (
        err.path == str(tmp_path / "bc2gm/iob/train.tsv")
        and "not found" in str(err)
        and "data.root" in str(err)
    )
    err = _error("bc2gm", "test", tmp_path)
    assert "no split 'test'" in str(err) and "train, devel" in str(err)
    err = _error("gad", "devel", tmp_path)
    assert "train, test" in str(err)
    err = _error("linnaeus", "train", "@sample")  # type: ignore[arg-type]
    assert "sample corpus has no files" in str(err)


def test_wrong_encoding(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "ncbi_disease/iob/devel.tsv", "A\tO\n\nB\tO\nCaf\xe9\tB-Disease\n".encode("latin-1")
    )
    err = _error("ncbi_disease", "devel", tmp_path)
    assert f"{path}:4" in str(err) and "re-encode as UTF-8" in str(err)
    path = _write(
        tmp_path / "gad/fold1/train.tsv", "ok @GENE$ @DISEASE$\t1\nna\xefve @GENE$\t0\n".encode("cp1252")
    )
    err = _error("gad", "train", tmp_path)
    assert f"{path}:2" in str(err) and "re-encode as UTF-8" in str(err)


def test_wrong_encoding_in_ddi_xml(tmp_path: Path) -> None:
    _write(
        tmp_path / "ddi/Train/DrugBank/x.xml",
        '<?xml version="1.0" encoding="UTF-8"?>\n<document id="x">\n<sentence id="x.s0" text="caf\xe9"/>\n</document>\n'.encode(
            "latin-1"
        ),
    )
    err = _error("ddi", "train", tmp_path)
    assert err.line == 3 and "re-encode as UTF-8" in str(err)


def test_unknown_source_lists_close_matches() -> None:
    with pytest.raises(UnknownSourceError) as info:
        load_records("ncbi_diseas", "train", "@sample")
    assert isinstance(info.value, BiotuneError)
    assert info.value.close_matches[0] == "ncbi_disease" and "did you mean ncbi_disease" in str(info.value)
    with pytest.raises(UnknownSourceError, match="known sources: bc2gm"):
        load_records("zzz", "train", "@sample")


def test_pubtator_offsets_must_match_text(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "ncbi_disease/original/NCBItestset_corpus.txt",
        "1|t|Asthma in cats.\n1|a|Cats wheeze.\n1\t0\t6\tAsthma\tSpecificDisease\tD1\n1\t8\t12\tcats\tSpecificDisease\tD2\n",
    )
    err = _error("ncbi_disease_pubtator", "test", tmp_path)
    assert f"{path}:4" in str(err) and "'cats'" in str(err)


def test_pubtator_line_outside_document(tmp_path: Path) -> None:
    path = _write(tmp_path / "bc5cdr/pubtator/CDR_TrainingSet.PubTator.txt", "1\t0\t3\tabc\tChemical\tD1\n")
    assert f"{path}:1" in str(_error("bc5cdr_cid", "train", tmp_path))


def test_hoc_label_groups_must_match_sentences(tmp_path: Path) -> None:
    _write(tmp_path / "hoc/text/7.txt", "First .\nSecond .\n")
    path = _write(tmp_path / "hoc/labels/7.txt", "< \n")
    from biotune.data.sources.classification import hoc_split

    err = _error("hoc", hoc_split("7"), tmp_path)
    assert f"{path}:1" in str(err) and "1 label groups for 2 sentences" in str(err)


def test_malformed_json_lines(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "mednli/mli_dev_v1.jsonl",
        '{"sentence1": "a", "sentence2": "b", "gold_label": "neutral"}\n{oops\n',
    )
    assert f"{path}:2" in str(_error("mednli", "dev", tmp_path))
    path = _write(tmp_path / "mednli/mli_test_v1.jsonl", '{"sentence1": "a", "gold_label": "neutral"}\n')
    err = _error("mednli", "test", tmp_path)
    assert f"{path}:1" in str(err) and "sentence2" in str(err)


def test_tsv_with_wrong_column_count(tmp_path: Path) -> None:
    path = _write(tmp_path / "euadr/fold1/test.tsv", "index\tsentence\tlabel\n0\ta\tb\t1\n")
    err = _error("euadr", "test", tmp_path)
    assert f"{path}:2" in str(err) and "tab-separated columns" in str(err)


def test_instruction_file_errors(tmp_path: Path) -> None:
    path = _write(tmp_path / "set.jsonl", json.dumps({"instruction": "x", "input": "y"}) + "\n")
    with pytest.raises(DataError, match="output") as info:
        load_instructions(path)
    assert info.value.line == 1
    with pytest.raises(DataError, match="does not exist"):
        load_instructions(tmp_path / "absent.jsonl")
    with pytest.raises(DataError, match="no split 'test'"):
        load_instructions(_write(tmp_path / "s.json", json.dumps({"train": []})), "test")

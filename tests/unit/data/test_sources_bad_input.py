"""Bad input to the source readers: each error names the file (and line) and the fix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from biotune.errors import BiotuneError, DataError
from biotune.sources import SOURCES, UnknownSourceError, load_instructions, load_records


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
    from biotune.sources.classification import hoc_split

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
    # BC2GM's official test file is a split biotune knows even when absent: the error lists where it looked
    # and what it found, and how to map a file.
    _write(tmp_path / "bc2gm/iob/train.tsv", "BRCA1\tB-GENE\n")
    err = _error("bc2gm", "test", tmp_path)
    text = str(err)
    assert "bc2gm/test data not found" in text and str(tmp_path / "bc2gm/iob/test.tsv") in text
    assert f"train ({tmp_path / 'bc2gm/iob/train.tsv'})" in text and "data.split_files.bc2gm.test" in text
    err = _error("gad", "devel", tmp_path)
    assert "no split 'devel'" in str(err) and "train, test" in str(err)
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
    from biotune.sources.classification import hoc_split

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


# ------------------------------------------------------------------------------ silent corruption made loud


def test_tab_inside_a_sentence_of_a_two_column_file(tmp_path: Path) -> None:
    # Before: the first half of the sentence became the row index and the sentence was cut at the tab.
    path = _write(
        tmp_path / "gad/fold1/train.tsv", "@GENE$ causes @DISEASE$.\t1\n@GENE$ and\t@DISEASE$.\t0\n"
    )
    err = _error("gad", "train", tmp_path)
    assert f"{path}:2" in str(err) and "a tab inside the sentence?" in str(err) and "replace tabs" in str(err)


def test_tab_inside_a_sentence_of_an_indexed_file(tmp_path: Path) -> None:
    path = _write(tmp_path / "gad/fold1/test.tsv", "index\tsentence\tlabel\n0\t@GENE$ in\t@DISEASE$.\t1\n")
    err = _error("gad", "test", tmp_path)
    assert f"{path}:2" in str(err) and "found 4" in str(err)


def test_headerless_indexed_file_still_reads(tmp_path: Path) -> None:
    _write(tmp_path / "gad/fold1/train.tsv", "7\t@GENE$ causes @DISEASE$.\t1\n9\t@GENE$ and @DISEASE$.\t0\n")
    records = load_records("gad", "train", tmp_path)
    assert [r.id for r in records] == ["train:7", "train:9"] and records[1].text == "@GENE$ and @DISEASE$."


def _ddi(sentence_text: str, offset: str, entity_text: str) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<document id="d1">'
        f'<sentence id="d1.s0" text="{sentence_text}">'
        '<entity id="d1.s0.e0" charOffset="0-0" type="drug" text="A"/>'
        f'<entity id="d1.s0.e1" charOffset="{offset}" type="drug" text="{entity_text}"/>'
        '<pair id="d1.s0.p0" e1="d1.s0.e0" e2="d1.s0.e1" ddi="false"/></sentence></document>\n'
    )


@pytest.mark.parametrize(
    ("offset", "entity_text", "says"),
    [
        ("30-34", "B", "outside the sentence"),
        ("6-6;40-41", "B", "outside the sentence"),
        ("2-4", "B", "spells 'and'"),
    ],
)
def test_ddi_char_offset_must_fit_its_sentence(
    tmp_path: Path, offset: str, entity_text: str, says: str
) -> None:
    # Before: the drug stayed unmasked and @DRUG$ was appended at the end of the sentence.
    path = _write(tmp_path / "ddi/Train/MedLine/d1.xml", _ddi("A and B mix.", offset, entity_text))
    err = _error("ddi", "train", tmp_path)
    assert err.path == str(path) and "sentence d1.s0, entity d1.s0.e1" in str(err) and says in str(err)
    assert "fix the entity's charOffset" in str(err)


@pytest.mark.parametrize(
    ("text", "lacks"),
    [
        ("<< aspirin >> binds COX-1 .", "[[ ]] around the protein"),
        ("aspirin binds [[ COX-1 ]] .", "<< >> around the chemical"),
        ("aspirin binds COX-1 .", "<< >> around the chemical and [[ ]] around the protein"),
    ],
)
def test_chemprot_row_without_markers(tmp_path: Path, text: str, lacks: str) -> None:
    # Before: a sample with an empty head or tail.
    good = json.dumps({"text": "<< a >> binds [[ b ]] .", "label": "INHIBITOR"})
    path = _write(
        tmp_path / "chemprot/scibert-fine/train.jsonl",
        f"{good}\n{json.dumps({'text': text, 'label': 'INHIBITOR'})}\n",
    )
    err = _error("chemprot_fine", "train", tmp_path)
    assert f"{path}:2" in str(err) and lacks in str(err) and "<<chemical>>" in str(err)


def _pubmedqa(tmp_path: Path, pqal: str, truth: str = '{"2": "no"}') -> Path:
    _write(tmp_path / "pubmedqa/test_ground_truth.json", truth)
    return _write(tmp_path / "pubmedqa/ori_pqal.json", pqal)


def _entry(label: str) -> str:
    return json.dumps({"QUESTION": "Q?", "CONTEXTS": ["c"], "final_decision": label})


def test_duplicate_pubmedqa_pmid(tmp_path: Path) -> None:
    # Before: the last entry silently won, which can flip a test gold label.
    path = _pubmedqa(
        tmp_path, f'{{\n"1": {_entry("yes")},\n"2": {_entry("no")},\n"1": {_entry("maybe")}\n}}\n'
    )
    err = _error("pubmedqa", "train", tmp_path)
    assert (
        f"{path}:4" in str(err)
        and "PMID 1 occurs twice (first on line 2)" in str(err)
        and "gold label" in str(err)
    )
    truth = _write(tmp_path / "pubmedqa/test_ground_truth.json", '{"2": "no",\n "2": "yes"}')
    _write(tmp_path / "pubmedqa/ori_pqal.json", f'{{"1": {_entry("yes")}, "2": {_entry("no")}}}')
    err = _error("pubmedqa", "test", tmp_path)
    assert f"{truth}:2" in str(err) and "PMID 2 occurs twice" in str(err)


def test_pubmedqa_errors_name_the_pmid(tmp_path: Path) -> None:
    _pubmedqa(tmp_path, f'{{"1": {_entry("perhaps")}, "2": {_entry("no")}}}')
    assert "PMID 1: unknown final_decision 'perhaps'" in str(_error("pubmedqa", "train", tmp_path))


@pytest.mark.parametrize(
    ("name", "split", "rel", "text", "line"),
    [
        ("ncbi_disease", "train", "ncbi_disease/iob/train.tsv", "A\tO\nB\x00\tO\n", 2),
        ("gad", "train", "gad/fold1/train.tsv", "@GENE$ in @DISEASE$.\t1\n\n@GENE$\x00 x @DISEASE$.\t0\n", 3),
        ("chemprot_fine", "train", "chemprot/scibert-fine/train.jsonl", '{"text": "<< a >> [[ b\x00 ]]", "label": "INHIBITOR"}\n', 1),
        ("chemprot_fine", "train", "chemprot/scibert-fine/train.jsonl", '{"text": "<< a >> [[ b\\u0000 ]]", "label": "INHIBITOR"}\n', 1),
        ("mednli", "test", "mednli/mli_test_v1.jsonl", '{"sentence1": "a\x00", "sentence2": "b", "gold_label": "neutral"}\n', 1),
        ("bioasq_yesno", "test", "bioasq_yesno/tsv/test.tsv", "yesno_label\tquestion\tideal_answer\n1\tIs\x00 it?\tYes.\n", 2),
        ("bc5cdr_cid", "train", "bc5cdr/pubtator/CDR_TrainingSet.PubTator.txt", "1|t|Title\x00.\n1|a|Abstract.\n", 1),
        ("ddi", "train", "ddi/Train/MedLine/d1.xml", '<?xml version="1.0"?>\n<document id="d1">\n<sentence id="s" text="a\x00"/></document>\n', 3),
    ],
)  # fmt: skip
def test_nul_bytes_name_the_line(
    tmp_path: Path, name: str, split: str, rel: str, text: str, line: int
) -> None:
    path = _write(tmp_path / rel, text)
    err = _error(name, split, tmp_path)
    assert f"{path}:{line}" in str(err) and "NUL" in str(err) and "restore it" in str(err)


def test_nul_in_hoc_and_pubmedqa(tmp_path: Path) -> None:
    from biotune.sources.classification import hoc_split

    _write(tmp_path / "hoc/labels/5.txt", "< \n")
    path = _write(tmp_path / "hoc/text/5.txt", "One\x00 sentence .\n")
    assert f"{path}:1" in str(_error("hoc", hoc_split("5"), tmp_path))
    path = _pubmedqa(tmp_path, '{"1": {"QUESTION": "Q\\u0000?", "CONTEXTS": [], "final_decision": "yes"}}')
    assert f"{path}:1" in str(_error("pubmedqa", "train", tmp_path))


def test_iob_repairs_and_other_counts_reach_reader_counts(tmp_path: Path) -> None:
    from biotune.sources import reader_counts, reset_reader_counts

    _write(
        tmp_path / "ncbi_disease/iob/train.tsv",
        "A\tI-Disease\nB\tO\nC\tI-Disease\nD\tI-Disease\n\nE\tI-Disease\n",
    )
    _write(tmp_path / "ncbi_disease/iob/test.tsv", "A\tB-Disease\nB\tI-Disease\n")
    reset_reader_counts()
    sentences = load_records("ncbi_disease", "train", tmp_path)
    load_records("ncbi_disease", "test", tmp_path)
    assert [s.tags for s in sentences] == [("B-Disease", "O", "B-Disease", "I-Disease"), ("B-Disease",)]
    assert reader_counts() == {
        "ncbi_disease/train": {"iob_repairs": 3},
        "ncbi_disease/test": {"iob_repairs": 0},
    }
    reset_reader_counts()
    assert reader_counts() == {}


def test_pubtator_mention_with_non_integer_offsets_is_not_a_relation(tmp_path: Path) -> None:
    # Before: a 6-column line whose offset was not a number was read as a relation line and dropped silently.
    path = _write(
        tmp_path / "ncbi_disease/original/NCBItrainset_corpus.txt",
        "1|t|Asthma.\n1|a|x\n1\tzero\t6\tAsthma\tSpecificDisease\tD1\n",
    )
    err = _error("ncbi_disease_pubtator", "train", tmp_path)
    assert f"{path}:3" in str(err) and "not integers" in str(err)


def test_missing_instruction_file_hint_is_about_instruction_files(tmp_path: Path) -> None:
    # Before: the corpus hint ("check data.root ... or use '@sample'") was given for a missing instruction file.
    with pytest.raises(DataError) as info:
        load_instructions(tmp_path / "absent.jsonl")
    assert "data.instructions.NAME.path" in str(info.value) and "@sample" not in str(info.value)

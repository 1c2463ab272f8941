"""Source readers on the bundled sample corpus, credentialed formats on files written here, the published
instruction schema, and the registry. The counts of the real corpora are checked in
``tests/integration/data/test_sources_real.py``."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from biotune.sources import SAMPLE_ROOT, SOURCES, load_instructions, load_records
from biotune.sources.conll import read_conll
from biotune.sources.records import InstructionRecord, NliPair

Check = Callable[[str, list], None]


# --------------------------------------------------------------------------------------- credentialed formats


def _write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def test_i2b2_2012_typed_conll_with_repair(tmp_path: Path, assert_valid_records: Check) -> None:
    _write(
        tmp_path / "i2b2_2012/iob/train.tsv",
        "He\tO\nhad\tO\nchest\tB-PROBLEM\npain\tI-PROBLEM\n\n"
        "-DOCSTART-\tO\n\nCT\tB-TEST\nscan\tI-TEST\nshowed\tO\nedema\tI-PROBLEM\n.\tO\n",
    )
    result = read_conll(tmp_path / "i2b2_2012/iob/train.tsv", SOURCES["i2b2_2012"])
    assert result.repairs == 1
    records = load_records("i2b2_2012", "train", tmp_path)
    assert [r.id for r in records] == ["train:0", "train:1"]
    assert records[1].tags == ("B-TEST", "I-TEST", "O", "B-PROBLEM", "O")  # I- after O repaired to B-
    assert_valid_records("i2b2_2012", records)


def test_i2b2_2010_relations(tmp_path: Path) -> None:
    _write(
        tmp_path / "i2b2_2010/re/train.tsv",
        "index\tsentence\tlabel\n"
        "0\t@treatment$ improved her @problem$ .\tTrIP\n"
        "1\t@test$ revealed @problem$ .\tTeRP\n"
        "2\tShe has @problem$ and takes @treatment$ .\tfalse\n"
        "3\tNo link between @test$ and @treatment$ .\tNo Relations\n",
    )
    pairs = load_records("i2b2_2010_re", "train", tmp_path)
    assert [p.label for p in pairs] == ["TrIP", "TeRP", "No Relations", "No Relations"]
    assert [p.id for p in pairs] == ["train:0", "train:1", "train:2", "train:3"]
    assert pairs[0].text == "@treatment$ improved her @problem$ ."
    assert SOURCES["i2b2_2010_re"].negative_label == "No Relations"


def test_mednli(tmp_path: Path) -> None:
    rows = [
        {
            "sentence1": "BP was 80/40.",
            "sentence2": "The patient was hypotensive.",
            "gold_label": "entailment",
            "pairID": "a1",
        },
        {"sentence1": "No fever.", "sentence2": "The patient is febrile.", "gold_label": "contradiction"},
    ]
    _write(tmp_path / "mednli/mli_dev_v1.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n")
    pairs = load_records("mednli", "dev", tmp_path)
    assert pairs == [
        NliPair("a1", "BP was 80/40.", "The patient was hypotensive.", "entailment"),
        NliPair("mli_dev_v1:1", "No fever.", "The patient is febrile.", "contradiction"),
    ]


# --------------------------------------------------------------------------------------- instruction schema

ROWS = [
    {"instruction": "Find diseases.", "input": "He has asthma .", "output": "asthma", "source": "ncbi"},
    {"instruction": "Answer yes or no.", "input": "Is it?", "output": "yes", "source": "bioasq"},
]


def test_instructions_from_jsonl_json_and_parquet(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    jsonl = _write(tmp_path / "set.jsonl", "".join(json.dumps(r) + "\n" for r in ROWS))
    as_list = _write(tmp_path / "list.json", json.dumps(ROWS))
    by_split = _write(tmp_path / "splits.json", json.dumps({"train": ROWS[:1], "validation": ROWS[1:]}))
    parquet = tmp_path / "set.parquet"
    pq.write_table(pa.Table.from_pylist(ROWS), parquet)
    expected = [InstructionRecord(f"set:train:{i}", **r) for i, r in enumerate(ROWS)]
    assert load_instructions(jsonl) == expected
    assert load_instructions(parquet) == expected
    assert [r.output for r in load_instructions(as_list)] == ["asthma", "yes"]
    validation = load_instructions(by_split, "validation")
    assert validation == [InstructionRecord("splits:validation:0", **ROWS[1])]


# --------------------------------------------------------------------------------------- sample corpus

SAMPLE_SOURCES = {
    "ncbi_disease", "bc5cdr_chem", "bc5cdr_disease", "gad", "chemprot", "hoc", "pubmedqa", "bioasq_yesno",
    "mednli", "i2b2_2010_re",
}  # fmt: skip


def test_sample_corpus_loads_every_split_of_its_sources(assert_valid_records: Check) -> None:
    present = {
        n for n, spec in SOURCES.items() if all((SAMPLE_ROOT / p).exists() for p in spec.splits.values())
    }
    assert present == SAMPLE_SOURCES
    for name in sorted(SAMPLE_SOURCES):
        for split in SOURCES[name].splits:
            records = load_records(name, split, "@sample")
            assert_valid_records(name, records)
    assert {len(load_records("hoc", s, "@sample")) > 0 for s in ("train", "devel", "test")} == {True}
    assert {r.label for r in load_records("i2b2_2010_re", "train", "@sample")} >= {"No Relations", "TrIP"}


def test_sample_corpus_is_small_and_synthetic() -> None:
    files = [p for p in SAMPLE_ROOT.rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in files) < 200_000
    assert "synthetic" in (SAMPLE_ROOT / "README.md").read_text().lower()


# --------------------------------------------------------------------------------------- registry


def test_registry_specs_are_complete() -> None:
    paper = {"ncbi_disease": 5424, "bc5cdr_chem": 4560, "bc5cdr_disease": 4560, "bc2gm": 12574, "jnlpba": 14690,
             "i2b2_2012": 6755, "i2b2_2010_re": 22256, "mednli": 11232, "hoc": 12119}  # fmt: skip
    assert {n: s.paper_count for n, s in SOURCES.items() if s.paper_count} == paper
    assert {n for n, s in SOURCES.items() if s.credentialed} == {"i2b2_2012", "i2b2_2010_re", "mednli"}
    assert (
        SOURCES["ddi"].restricted
        and SOURCES["bioasq_yesno"].restricted
        and not SOURCES["ncbi_disease"].restricted
    )
    for name, spec in SOURCES.items():
        assert spec.name == name and spec.splits and spec.labels and spec.licence and spec.description
        assert (spec.kind == "re") == (spec.negative_label is not None) or name == "chemprot_fine"
        assert spec.negative_label is None or spec.negative_label in spec.labels


def test_a_local_instruction_path_never_becomes_a_hub_request(tmp_path: Path) -> None:
    """A path that does not exist (with or without a suffix) is an error naming it; hub ids are hf://org/name."""
    import pytest

    from biotune.errors import DataError

    for missing in (tmp_path / "lab" / "instructions", tmp_path / "rows.jsonl", "org/name"):
        with pytest.raises(DataError) as err:
            load_instructions(missing)
        assert str(missing) in str(err.value) and "hf://org/name" in str(err.value)
        assert "cannot load hub dataset" not in str(err.value)  # never asked the hub

"""Source readers on the real corpora (counts from ../shared/data READMEs), credentialed formats on files
written here, the published instruction schema, and the bundled sample corpus."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from biotune.data.records import DocLabels, InstructionRecord, NerSentence, NliPair, QaItem, RelationPair
from biotune.data.sources import SAMPLE_ROOT, SOURCES, load_instructions, load_records
from biotune.data.sources.conll import read_conll
from biotune.data.sources.pubtator import read_pubtator, read_pubtator_ner

RECORD_TYPES = {"ner": NerSentence, "re": RelationPair, "nli": NliPair, "qa": QaItem, "cls": DocLabels}


def mentions(records: list[NerSentence]) -> Counter[str]:
    """Mention count per entity type (one per B- tag)."""
    return Counter(tag[2:] for r in records for tag in r.tags if tag.startswith("B-"))


def assert_valid(name: str, records: list) -> None:
    """Records have the source's record type, unique ids, labels from the spec and aligned IOB2 tags."""
    spec = SOURCES[name]
    assert records and all(isinstance(r, RECORD_TYPES[spec.kind]) for r in records)
    assert len({r.id for r in records}) == len(records)
    if spec.kind == "ner":
        tags = set(spec.tag_set)
        for r in records:
            assert len(r.tokens) == len(r.tags) and set(r.tags) <= tags
            for prev, tag in zip(("O", *r.tags), r.tags, strict=False):
                assert not tag.startswith("I-") or prev[2:] == tag[2:], (r.id, r.tags)
    elif spec.kind == "cls":
        assert all(set(r.labels) <= set(spec.labels) for r in records)
    else:
        assert all(r.label in spec.labels for r in records)


# --------------------------------------------------------------------------------------- real corpora: NER

NER_COUNTS = [  # source, split, sentences, mentions per type
    ("ncbi_disease", "train", 5424, {"Disease": 5134}),
    ("ncbi_disease", "devel", 923, {"Disease": 787}),
    ("ncbi_disease", "test", 940, {"Disease": 960}),
    ("bc5cdr_chem", "train", 4560, {"Chemical": 5203}),
    ("bc5cdr_chem", "devel", 4581, {"Chemical": 5347}),
    ("bc5cdr_chem", "test", 4797, {"Chemical": 5385}),
    ("bc5cdr_disease", "train", 4560, {"Disease": 4182}),
    ("bc5cdr_disease", "devel", 4581, {"Disease": 4246}),
    ("bc5cdr_disease", "test", 4797, {"Disease": 4424}),
    ("bc2gm", "train", 12574, {"GENE": 15197}),
    ("bc2gm", "devel", 2519, {"GENE": 3061}),
    ("jnlpba", "train", 14690, {"Biomolecule": 32178}),
    ("jnlpba", "devel", 3856, {"Biomolecule": 8575}),
    ("jnlpba", "test", 3856, {"Biomolecule": 6241}),
    (
        "jnlpba_typed",
        "devel",
        1739,
        {"protein": 2466, "DNA": 1052, "cell_type": 526, "cell_line": 400, "RNA": 107},
    ),
    (
        "jnlpba_typed",
        "test",
        3856,
        {"protein": 5067, "cell_type": 1921, "DNA": 1056, "cell_line": 500, "RNA": 118},
    ),
    ("linnaeus", "train", 11935, {"Species": 2119}),
    ("linnaeus", "devel", 4078, {"Species": 711}),
    ("linnaeus", "test", 7142, {"Species": 1433}),
    ("s800", "train", 5733, {"Species": 2557}),
    ("s800", "devel", 830, {"Species": 384}),
    ("s800", "test", 1630, {"Species": 767}),
]


@pytest.mark.parametrize(("name", "split", "n_sentences", "n_mentions"), NER_COUNTS)
def test_conll_counts_match_readme(
    corpora: Path, name: str, split: str, n_sentences: int, n_mentions: dict
) -> None:
    records = load_records(name, split, corpora)
    assert len(records) == n_sentences
    assert dict(mentions(records)) == n_mentions
    assert_valid(name, records)
    assert records[0].id == f"{split}:0"


def test_conll_token_counts_and_no_repairs(corpora: Path) -> None:
    result = read_conll(corpora / "ncbi_disease/iob/train.tsv", SOURCES["ncbi_disease"])
    assert sum(len(s.tokens) for s in result.sentences) == 135_701
    assert result.repairs == 0  # the staged corpora are valid IOB2: nothing is rewritten
    typed = read_conll(corpora / "jnlpba/mtl-typed/devel.tsv", SOURCES["jnlpba_typed"])
    assert sum(len(s.tokens) for s in typed.sentences) == 47_461  # -DOCSTART- lines are not tokens
    assert typed.repairs == 0


def test_untyped_tags_get_the_source_type(corpora: Path) -> None:
    first = load_records("s800", "train", corpora)[0]
    assert first.tokens[:3] == ("Methanoregula", "formicica", "sp")
    assert first.tags[:2] == ("B-Species", "I-Species")


# --------------------------------------------------------------------------------------- real corpora: PubTator


def _stripped(text: str) -> str:
    return re.sub(r"\s+", "", text)


def _tagged_mentions(records: list[NerSentence]) -> Counter[tuple[str, str]]:
    out: Counter[tuple[str, str]] = Counter()
    for r in records:
        current: list[str] = []
        etype = ""
        for token, tag in zip(r.tokens, (*r.tags, "O"), strict=False):
            if tag.startswith("I-"):
                current.append(token)
                continue
            if current:
                out[(etype, "".join(current))] += 1
            current, etype = ([token], tag[2:]) if tag.startswith("B-") else ([], "")
        if current:
            out[(etype, "".join(current))] += 1
    return out


@pytest.mark.parametrize(
    ("name", "split", "documents", "n_mentions"),
    [
        ("ncbi_disease_pubtator", "train", 592, 5134),  # 593 in the file, PMID 8528200 twice (11 mentions)
        ("ncbi_disease_pubtator", "test", 100, 960),
        ("bc5cdr_pubtator_ner", "train", 500, 5203 + 4182),
        ("bc5cdr_pubtator_ner", "devel", 500, 5347 + 4244),
        ("bc5cdr_pubtator_ner", "test", 500, 5385 + 4424),
    ],
)
def test_pubtator_sentences_keep_every_mention_exactly(
    corpora: Path, name: str, split: str, documents: int, n_mentions: int
) -> None:
    spec = SOURCES[name]
    path = corpora / spec.splits[split]
    records, stats = read_pubtator_ner(path, spec)
    assert stats.documents == documents and stats.duplicates == (
        1 if split == "train" and "ncbi" in name else 0
    )
    assert stats.mentions == stats.kept == n_mentions
    assert stats.lost_at_boundaries == 0 and stats.overlapping == 0
    assert sum(mentions(records).values()) == n_mentions
    assert_valid(name, records)
    # offsets map exactly: the tokens of each tagged mention spell the annotated text
    expected: Counter[tuple[str, str]] = Counter()
    seen: set[str] = set()
    for doc in read_pubtator(path):
        if doc.pmid in seen:
            continue
        seen.add(doc.pmid)
        expected.update((spec.type_map.get(m.type, m.type), _stripped(m.text)) for m in doc.mentions)
    assert _tagged_mentions(records) == expected
    # the sentences cover the whole text: tokens of a document's sentences spell its text
    first = read_pubtator(path)[0]
    tokens = "".join(t for r in records if r.id.startswith(f"{first.pmid}:") for t in r.tokens)
    assert tokens == _stripped(first.text)


@pytest.mark.parametrize(
    ("split", "positives", "total"), [("train", 1038, 5432), ("devel", 1012, 5261), ("test", 1066, 5405)]
)
def test_bc5cdr_cid_pairs(corpora: Path, split: str, positives: int, total: int) -> None:
    pairs = load_records("bc5cdr_cid", split, corpora)
    assert Counter(p.label for p in pairs) == {"CID": positives, "none": total - positives}
    assert_valid("bc5cdr_cid", pairs)
    if split == "train":  # the first CID line of the train file
        first = next(p for p in pairs if p.id == "227508:D008750:D007022")
        assert (first.label, first.head, first.tail) == ("CID", "alpha-methyldopa", "hypotensive")
        assert first.text.startswith(
            "Naloxone reverses the antihypertensive effect of clonidine. In unanesthetized"
        )


# --------------------------------------------------------------------------------------- real corpora: RE, QA, CLS

LABEL_COUNTS = [
    ("gad", "train", {"1": 2520, "0": 2276}),
    ("gad", "test", {"1": 281, "0": 253}),
    ("euadr", "train", {"1": 235, "0": 83}),
    ("euadr", "test", {"1": 27, "0": 10}),
    ("euadr", "fold10_train", {"1": 236, "0": 84}),
    ("euadr", "fold3_test", {"1": 26, "0": 10}),
    (
        "chemprot",
        "train",
        {"CPR:3": 761, "CPR:4": 2251, "CPR:5": 172, "CPR:6": 235, "CPR:9": 713, "False": 12389},
    ),
    (
        "chemprot",
        "dev",
        {"CPR:3": 548, "CPR:4": 1093, "CPR:5": 115, "CPR:6": 199, "CPR:9": 457, "False": 7949},
    ),
    (
        "chemprot",
        "test",
        {"CPR:3": 664, "CPR:4": 1658, "CPR:5": 183, "CPR:6": 292, "CPR:9": 644, "False": 10955},
    ),
    ("bioasq_yesno", "train", {"yes": 579, "no": 149}),
    ("bioasq_yesno", "test", {"yes": 102, "no": 26}),
    ("pubmedqa", "test", {"yes": 276, "no": 169, "maybe": 55}),
]


@pytest.mark.parametrize(("name", "split", "counts"), LABEL_COUNTS)
def test_label_counts_match_readme(corpora: Path, name: str, split: str, counts: dict[str, int]) -> None:
    records = load_records(name, split, corpora)
    assert dict(Counter(r.label for r in records)) == counts
    assert_valid(name, records)


def test_masked_tsv_reads_header_and_headerless_files(corpora: Path) -> None:
    train, test = load_records("gad", "train", corpora), load_records("gad", "test", corpora)
    assert (
        train[0].text.startswith("this study proposes")
        and "@GENE$" in train[0].text
        and train[0].id == "train:0"
    )
    assert test[0].id == "test:0" and test[0].text.startswith("These results suggest")


@pytest.mark.parametrize(
    ("split", "n", "inhibitor"), [("train", 4169, 1642), ("dev", 2427, 812), ("test", 3469, 1255)]
)
def test_chemprot_fine(corpora: Path, split: str, n: int, inhibitor: int) -> None:
    records = load_records("chemprot_fine", split, corpora)
    assert len(records) == n and Counter(r.label for r in records)["INHIBITOR"] == inhibitor
    assert_valid("chemprot_fine", records)
    if split == "train":
        assert (records[0].head, records[0].tail) == ("Epidermal growth factor receptor", "gefitinib")


def test_ddi_pairs_are_masked_and_counted(corpora: Path) -> None:
    pairs = load_records("ddi", "train", corpora)
    assert len(pairs) == 27_792
    assert Counter(p.label for p in pairs) == {
        "DDI-false": 23_771, "DDI-effect": 1_687, "DDI-mechanism": 1_319, "DDI-advise": 826, "DDI-int": 188 + 1,
    }  # fmt: skip
    assert_valid("ddi", pairs)
    assert all(p.text.count("@DRUG$") in (1, 2) for p in pairs)
    assert sum(p.text.count("@DRUG$") == 2 for p in pairs) > 27_000  # overlapping pairs are masked once
    assert all("\n" not in p.text and "\r" not in p.text for p in pairs)


def test_hoc_documents_labels_and_split(corpora: Path) -> None:
    splits = {s: load_records("hoc", s, corpora) for s in ("train", "devel", "test")}
    assert {s: len(r) for s, r in splits.items()} == {"train": 1464, "devel": 194, "test": 194}
    docs = [d for r in splits.values() for d in r]
    assert len({d.id for d in docs}) == 1852
    counts = Counter(label for d in docs for label in d.labels)
    assert counts == {
        "sustaining proliferative signaling": 462, "resisting cell death": 429,
        "genomic instability and mutation": 333, "activating invasion and metastasis": 291,
        "tumor promoting inflammation": 240, "evading growth suppressors": 240, "inducing angiogenesis": 143,
        "enabling replicative immortality": 115, "avoiding immune destruction": 108, "cellular energetics": 105,
    }  # fmt: skip
    ghrelin = next(d for d in docs if d.id == "11724768")
    assert ghrelin.text.startswith("Ghrelin was identified in the stomach")
    assert ghrelin.labels == ("sustaining proliferative signaling",)
    for records in splits.values():
        assert_valid("hoc", records)


def test_pubmedqa_splits(corpora: Path) -> None:
    splits = {s: load_records("pubmedqa", s, corpora) for s in ("train", "devel", "test")}
    assert {s: len(r) for s, r in splits.items()} == {"train": 450, "devel": 50, "test": 500}
    ids = [set(r.id for r in records) for records in splits.values()]
    assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])
    truth = json.loads((corpora / "pubmedqa/test_ground_truth.json").read_text())
    assert ids[2] == set(truth) and all(truth[q.id] == q.label for q in splits["test"])
    pool = Counter(q.label for s in ("train", "devel") for q in splits[s])
    assert pool == {"yes": 276, "no": 169, "maybe": 55}
    assert all(q.question and q.context for q in splits["train"])


def test_every_open_source_split_is_read(corpora: Path) -> None:
    """Guards the tables above: every registered non-credentialed source split is covered by a test."""
    covered = {(n, s) for n, s, *_ in NER_COUNTS + LABEL_COUNTS}
    covered |= {
        ("ncbi_disease_pubtator", "devel"),
        ("ncbi_disease_pubtator", "train"),
        ("ncbi_disease_pubtator", "test"),
    }
    covered |= {
        (n, s) for n in ("bc5cdr_pubtator_ner", "bc5cdr_cid", "hoc") for s in ("train", "devel", "test")
    }
    covered |= {("chemprot_fine", s) for s in ("train", "dev", "test")} | {("ddi", "train")}
    covered |= {("pubmedqa", s) for s in ("train", "devel")}
    wanted = {
        (n, s)
        for n, spec in SOURCES.items()
        if not spec.credentialed and not spec.generated
        for s in spec.splits
        if not s.startswith("fold")
    }
    assert wanted <= covered, sorted(wanted - covered)
    spec = SOURCES["ncbi_disease_pubtator"]
    records, stats = read_pubtator_ner(corpora / spec.splits["devel"], spec)
    assert stats.kept == 787 and sum(mentions(records).values()) == 787


# --------------------------------------------------------------------------------------- credentialed formats


def _write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def test_i2b2_2012_typed_conll_with_repair(tmp_path: Path) -> None:
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
    assert_valid("i2b2_2012", records)


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


def test_sample_corpus_loads_every_split_of_its_sources() -> None:
    present = {
        n for n, spec in SOURCES.items() if all((SAMPLE_ROOT / p).exists() for p in spec.splits.values())
    }
    assert present == SAMPLE_SOURCES
    for name in sorted(SAMPLE_SOURCES):
        for split in SOURCES[name].splits:
            records = load_records(name, split, "@sample")
            assert_valid(name, records)
    assert {len(load_records("hoc", s, "@sample")) > 0 for s in ("train", "devel", "test")} == {True}
    assert {r.label for r in load_records("i2b2_2010_re", "train", "@sample")} >= {"No Relations", "TrIP"}


def test_sample_corpus_is_small_synthetic_and_not_copied(corpora: Path) -> None:
    files = [p for p in SAMPLE_ROOT.rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in files) < 200_000
    assert "synthetic" in (SAMPLE_ROOT / "README.md").read_text().lower()
    real = {r.tokens for s in ("train", "devel", "test") for r in load_records("ncbi_disease", s, corpora)}
    sample = {
        r.tokens for s in ("train", "devel", "test") for r in load_records("ncbi_disease", s, "@sample")
    }
    assert not real & sample
    real_gad = {r.text for r in load_records("gad", "train", corpora)}
    assert not real_gad & {r.text for r in load_records("gad", "train", "@sample")}


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

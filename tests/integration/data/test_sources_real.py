"""Source readers on the real corpora: record and mention counts from the ../shared/data READMEs, exact
PubTator offsets, masked relation files, and a check that the bundled sample corpus copies none of them."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from biotune.sources import SOURCES, load_records
from biotune.sources.conll import read_conll
from biotune.sources.pubtator import read_pubtator, read_pubtator_ner
from biotune.sources.records import NerSentence

Check = Callable[[str, list], None]


def mentions(records: list[NerSentence]) -> Counter[str]:
    """Mention count per entity type (one per B- tag)."""
    return Counter(tag[2:] for r in records for tag in r.tags if tag.startswith("B-"))


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
    corpora: Path, assert_valid_records: Check, name: str, split: str, n_sentences: int, n_mentions: dict
) -> None:
    records = load_records(name, split, corpora)
    assert len(records) == n_sentences
    assert dict(mentions(records)) == n_mentions
    assert_valid_records(name, records)
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
    corpora: Path, assert_valid_records: Check, name: str, split: str, documents: int, n_mentions: int
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
    assert_valid_records(name, records)
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
def test_bc5cdr_cid_pairs(
    corpora: Path, assert_valid_records: Check, split: str, positives: int, total: int
) -> None:
    pairs = load_records("bc5cdr_cid", split, corpora)
    assert Counter(p.label for p in pairs) == {"CID": positives, "none": total - positives}
    assert_valid_records("bc5cdr_cid", pairs)
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
def test_label_counts_match_readme(
    corpora: Path, assert_valid_records: Check, name: str, split: str, counts: dict[str, int]
) -> None:
    records = load_records(name, split, corpora)
    assert dict(Counter(r.label for r in records)) == counts
    assert_valid_records(name, records)


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
def test_chemprot_fine(
    corpora: Path, assert_valid_records: Check, split: str, n: int, inhibitor: int
) -> None:
    records = load_records("chemprot_fine", split, corpora)
    assert len(records) == n and Counter(r.label for r in records)["INHIBITOR"] == inhibitor
    assert_valid_records("chemprot_fine", records)
    if split == "train":
        assert (records[0].head, records[0].tail) == ("Epidermal growth factor receptor", "gefitinib")


def test_ddi_pairs_are_masked_and_counted(corpora: Path, assert_valid_records: Check) -> None:
    pairs = load_records("ddi", "train", corpora)
    assert len(pairs) == 27_792
    assert Counter(p.label for p in pairs) == {
        "DDI-false": 23_771, "DDI-effect": 1_687, "DDI-mechanism": 1_319, "DDI-advise": 826, "DDI-int": 188 + 1,
    }  # fmt: skip
    assert_valid_records("ddi", pairs)
    assert all(p.text.count("@DRUG$") in (1, 2) for p in pairs)
    assert sum(p.text.count("@DRUG$") == 2 for p in pairs) > 27_000  # overlapping pairs are masked once
    assert all("\n" not in p.text and "\r" not in p.text for p in pairs)


def test_hoc_documents_labels_and_split(corpora: Path, assert_valid_records: Check) -> None:
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
        assert_valid_records("hoc", records)


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
    """Guards the tables above: every staged split of a non-credentialed source is covered by a test (the official
    splits the staged copy lacks, e.g. BC2GM test, are read in tests/integration/data/test_your_data.py)."""
    from biotune.sources import available_splits

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
        for s in available_splits(spec, corpora)
        if not s.startswith("fold")
    }
    assert wanted <= covered, sorted(wanted - covered)
    spec = SOURCES["ncbi_disease_pubtator"]
    records, stats = read_pubtator_ner(corpora / spec.splits["devel"], spec)
    assert stats.kept == 787 and sum(mentions(records).values()) == 787


# --------------------------------------------------------------------------------------- sample corpus


def test_sample_corpus_is_not_copied_from_the_real_corpora(corpora: Path) -> None:
    real = {r.tokens for s in ("train", "devel", "test") for r in load_records("ncbi_disease", s, corpora)}
    sample = {
        r.tokens for s in ("train", "devel", "test") for r in load_records("ncbi_disease", s, "@sample")
    }
    assert not real & sample
    real_gad = {r.text for r in load_records("gad", "train", corpora)}
    assert not real_gad & {r.text for r in load_records("gad", "train", "@sample")}


def _to_bioc(pubtator: Path, out: Path) -> None:
    """Write a PubTator file of the BC5CDR release as BioC XML (the release's other format)."""
    import xml.etree.ElementTree as ET

    from biotune.sources.pubtator import read_pubtator

    collection = ET.Element("collection")
    for doc in read_pubtator(pubtator):
        d = ET.SubElement(collection, "document")
        ET.SubElement(d, "id").text = doc.pmid
        for kind, offset, text in (("title", 0, doc.title), ("abstract", len(doc.title) + 1, doc.abstract)):
            p = ET.SubElement(d, "passage")
            ET.SubElement(p, "infon", key="type").text = kind
            ET.SubElement(p, "offset").text = str(offset)
            ET.SubElement(p, "text").text = text
            for k, m in enumerate(doc.mentions):
                if offset <= m.start < offset + len(text) + 1:
                    a = ET.SubElement(p, "annotation", id=str(k))
                    ET.SubElement(a, "infon", key="type").text = m.type
                    ET.SubElement(a, "infon", key="MESH").text = "|".join(m.ids)
                    ET.SubElement(a, "location", offset=str(m.start), length=str(m.end - m.start))
                    ET.SubElement(a, "text").text = m.text
        for k, (rtype, chem, dis) in enumerate(doc.relations):
            r = ET.SubElement(d, "relation", id=f"R{k}")
            for key, value in (("relation", rtype), ("Chemical", chem), ("Disease", dis)):
                ET.SubElement(r, "infon", key=key).text = value
    ET.ElementTree(collection).write(out, encoding="utf-8", xml_declaration=True)


def test_bc5cdr_bioc_release_reads_as_its_pubtator_files(corpora: Path, tmp_path: Path) -> None:
    """With only the release's BioC XML under CDR_Data/, both BC5CDR readers give the PubTator records."""
    from biotune.sources import available_splits

    bioc = tmp_path / "bc5cdr/CDR_Data/CDR.Corpus.v010516/CDR_TestSet.BioC.xml"
    bioc.parent.mkdir(parents=True)
    _to_bioc(corpora / "bc5cdr/pubtator/CDR_TestSet.PubTator.txt", bioc)
    assert available_splits(SOURCES["bc5cdr_cid"], tmp_path) == {"test": bioc}
    for name in ("bc5cdr_pubtator_ner", "bc5cdr_cid"):
        assert load_records(name, "test", tmp_path) == load_records(name, "test", corpora), name

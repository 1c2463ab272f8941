"""Bad corpus files in every native format, through ``biotune data build`` on a temporary data root.

Each case writes one corpus file (the cases of ``tests/unit/data/test_sources_bad_input.py`` and the silent
corruptions of issue 13), a build config naming only that source, and runs the real command: exit 2, the file
with its line (or the PMID / DDI sentence id) and the fix in the message, nothing written under ``data.out_dir``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bad_input_harness import Case, check, ids, run_selected, write

from biotune.sources.classification import hoc_split

#: Every case loads the tiny tokenizer (``data build`` needs it before reading): ~3 s of CPU each.
pytestmark = pytest.mark.slow

REENCODE = "re-encode as UTF-8"
NUL = "restore it from the corpus release"
TSV_FIX = "replace tabs inside the sentence by spaces"


def _build_config(source: str, split: str, extra: str = "") -> str:
    return (
        f"data:\n  root: {{root}}\n  leakage: 'off'\n  max_seq_len: 512\n  sources:\n    {source}: {{split: {split}}}\n"
        f"{extra}"
    )


def corpus(
    case_id: str,
    source: str,
    split: str,
    files: dict[str, str | bytes],
    where: str,
    fix: str = "fix:",
    extra_yaml: str = "",
) -> Case:
    """A case: ``files`` (relative to the data root) hold the bad input; ``where`` is relative to the root."""

    def setup(tmp: Path) -> None:
        for rel, content in files.items():
            write(tmp / "corpus" / rel, content)
        write(
            tmp / "build.yaml",
            _build_config(source, split, extra_yaml).replace("{root}", str(tmp / "corpus")),
        )

    return Case(
        case_id,
        ("data", "build", "{tmp}/build.yaml", "data.tokenizer={tok}"),
        "{tmp}/corpus/" + where,
        fix,
        setup,
    )


def _ddi(
    offset: str = "6-6",
    entity_text: str = "B",
    ddi: str = 'ddi="false"',
    e2: str = "d1.s0.e1",
    text: str = "A and B mix.",
) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<document id="d1">\n'
        f'<sentence id="d1.s0" text="{text}">\n'
        '<entity id="d1.s0.e0" charOffset="0-0" type="drug" text="A"/>\n'
        f'<entity id="d1.s0.e1" charOffset="{offset}" type="drug" text="{entity_text}"/>\n'
        f'<pair id="d1.s0.p0" e1="d1.s0.e0" e2="{e2}" {ddi}/>\n</sentence>\n</document>\n'
    )


def _qa(label: str = "yes", question: str = "Q?") -> str:
    return json.dumps({"QUESTION": question, "CONTEXTS": ["c"], "final_decision": label})


def _pubmedqa(pqal: str, truth: str = '{"2": "no"}') -> dict[str, str | bytes]:
    return {"pubmedqa/ori_pqal.json": pqal, "pubmedqa/test_ground_truth.json": truth}


def _chem(text: str, label: str = "INHIBITOR") -> str:
    return json.dumps({"text": text, "label": label})


GOOD_CHEM = _chem("<< a >> binds [[ b ]] .")
NLI = '{"sentence1": "a", "sentence2": "b", "gold_label": "neutral", "pairID": "p1"}\n'
HOC_PMID = "11"
HOC_SPLIT = hoc_split(HOC_PMID)
NCBI = "ncbi_disease/iob/train.tsv"
PUBTATOR = "ncbi_disease/original/NCBItrainset_corpus.txt"
CDR = "bc5cdr/pubtator/CDR_TrainingSet.PubTator.txt"
GAD = "gad/fold1/train.tsv"
GAD_TEST = "gad/fold1/test.tsv"
CHEM = "chemprot/scibert-fine/train.jsonl"
DDI = "ddi/Train/MedLine/d1.xml"
MEDNLI = "mednli/mli_train_v1.jsonl"
BIOASQ = "bioasq_yesno/tsv/train.tsv"

CASES = [
    # CoNLL / IOB
    corpus(
        "conll-no-tag-column",
        "ncbi_disease",
        "train",
        {NCBI: "Cystic\tB-Disease\nbad\n"},
        f"{NCBI}:2",
        "add the tag column",
    ),
    corpus(
        "conll-unknown-type",
        "ncbi_disease",
        "train",
        {NCBI: "A\tO\nB\tB-Protein\n"},
        f"{NCBI}:2",
        "use one of Disease",
    ),
    corpus(
        "conll-not-iob2",
        "ncbi_disease",
        "train",
        {NCBI: "A\tO\n\nB\tX-Disease\n"},
        f"{NCBI}:3",
        "use O, B-<type> or I-<type>",
    ),
    corpus(
        "conll-untyped-tag-in-typed-corpus",
        "i2b2_2012",
        "train",
        {"i2b2_2012/iob/train.tsv": "pain\tB\n"},
        "i2b2_2012/iob/train.tsv:1",
        "give every B/I tag a type",
    ),
    corpus(
        "conll-latin1",
        "ncbi_disease",
        "train",
        {NCBI: "A\tO\n\nCaf\xe9\tB-Disease\n".encode("latin-1")},
        f"{NCBI}:3",
        REENCODE,
    ),
    corpus("conll-nul", "ncbi_disease", "train", {NCBI: "A\tO\nB\x00\tO\n"}, f"{NCBI}:2", NUL),
    corpus(
        "conll-missing-file",
        "ncbi_disease",
        "train",
        {"ncbi_disease/iob/devel.tsv": "A\tO\n"},
        NCBI,
        "put the train file at",
    ),
    # PubTator (NER and CID)
    corpus(
        "pubtator-offsets-off-text",
        "ncbi_disease_pubtator",
        "train",
        {
            PUBTATOR: "1|t|Asthma in cats.\n1|a|Cats wheeze.\n1\t0\t6\tAsthma\tSpecificDisease\tD1\n"
            "1\t8\t12\tcats\tSpecificDisease\tD2\n"
        },
        f"{PUBTATOR}:4",
        "offsets must index",
    ),
    corpus(
        "pubtator-line-outside-document",
        "bc5cdr_cid",
        "train",
        {CDR: "1\t0\t3\tabc\tChemical\tD1\n"},
        f"{CDR}:1",
        "start each document with PMID|t|title",
    ),
    corpus(
        "pubtator-offsets-not-integers",
        "ncbi_disease_pubtator",
        "train",
        {PUBTATOR: "1|t|Asthma.\n1|a|x\n1\tzero\t6\tAsthma\tSpecificDisease\tD1\n"},
        f"{PUBTATOR}:3",
        "write PMID<TAB>start<TAB>end",
    ),
    corpus(
        "pubtator-pmid-twice-different",
        "ncbi_disease_pubtator",
        "train",
        {PUBTATOR: "1|t|Asthma.\n1|a|x\n\n1|t|Other title.\n1|a|y\n"},
        f"{PUBTATOR}:4",
        "keep one copy",
    ),
    corpus("pubtator-nul", "bc5cdr_cid", "train", {CDR: "1|t|Title\x00.\n1|a|Abstract.\n"}, f"{CDR}:1", NUL),
    # BLUE TSV (GAD, EU-ADR, ChemProt groups) and the i2b2-2010 relation TSV
    corpus(
        "tsv-unknown-label",
        "gad",
        "train",
        {GAD: "@GENE$ causes @DISEASE$.\t1\n@GENE$ and @DISEASE$.\t2\n"},
        f"{GAD}:2",
        "use one of 1, 0",
    ),
    corpus(
        "tsv-tab-inside-sentence",
        "gad",
        "train",
        {GAD: "@GENE$ causes @DISEASE$.\t1\n@GENE$ and\t@DISEASE$.\t0\n"},
        f"{GAD}:2",
        TSV_FIX,
    ),
    corpus(
        "tsv-tab-inside-indexed-sentence",
        "gad",
        "test",
        {GAD_TEST: "index\tsentence\tlabel\n0\t@GENE$ in\t@DISEASE$.\t1\n"},
        f"{GAD_TEST}:2",
        TSV_FIX,
    ),
    corpus(
        "tsv-duplicate-index",
        "gad",
        "test",
        {GAD_TEST: "index\tsentence\tlabel\n0\t@GENE$ a @DISEASE$.\t1\n0\t@GENE$ b @DISEASE$.\t0\n"},
        f"{GAD_TEST}:3",
        "give every row a unique index",
    ),
    corpus(
        "tsv-nul",
        "euadr",
        "train",
        {"euadr/fold1/train.tsv": "@GENE$ x\x00 @DISEASE$.\t1\n"},
        "euadr/fold1/train.tsv:1",
        NUL,
    ),
    corpus(
        "i2b2-re-unknown-label",
        "i2b2_2010_re",
        "train",
        {"i2b2_2010/re/train.tsv": "index\tsentence\tlabel\n0\t@test$ showed @problem$\tTeXP\n"},
        "i2b2_2010/re/train.tsv:2",
        "use one of TrIP",
    ),
    # ChemProt JSON lines (SciBERT)
    corpus(
        "chemprot-no-markers",
        "chemprot_fine",
        "train",
        {CHEM: f"{GOOD_CHEM}\n{_chem('aspirin binds COX-1 .')}\n"},
        f"{CHEM}:2",
        "<<chemical>> and [[protein]]",
    ),
    corpus(
        "chemprot-invalid-json",
        "chemprot_fine",
        "train",
        {CHEM: f"{GOOD_CHEM}\n{{oops\n"},
        f"{CHEM}:2",
        "one JSON object per line",
    ),
    corpus(
        "chemprot-escaped-nul",
        "chemprot_fine",
        "train",
        {CHEM: '{"text": "<< a >> [[ b\\u0000 ]]", "label": "INHIBITOR"}\n'},
        f"{CHEM}:1",
        NUL,
    ),
    # DDI XML
    corpus(
        "ddi-offset-outside-sentence",
        "ddi",
        "train",
        {DDI: _ddi(offset="30-34")},
        DDI,
        "fix the entity's charOffset",
    ),
    corpus(
        "ddi-offset-spells-other-text",
        "ddi",
        "train",
        {DDI: _ddi(offset="2-4")},
        DDI,
        "fix the entity's charOffset",
    ),
    corpus("ddi-pair-unknown-entity", "ddi", "train", {DDI: _ddi(e2="d1.s0.e9")}, DDI, "fix e1/e2"),
    corpus(
        "ddi-unknown-type",
        "ddi",
        "train",
        {DDI: _ddi(ddi='ddi="true" type="synergy"')},
        DDI,
        "use one of DDI-",
    ),
    corpus(
        "ddi-malformed-xml",
        "ddi",
        "train",
        {DDI: '<?xml version="1.0"?>\n<document id="d1">\n<sentence id="s"\n'},
        f"{DDI}:3",
        "fix the XML syntax",
    ),
    corpus("ddi-nul", "ddi", "train", {DDI: _ddi(text="A and B\x00 mix.")}, f"{DDI}:3", NUL),
    # MedNLI JSON lines
    corpus(
        "mednli-unknown-label",
        "mednli",
        "train",
        {MEDNLI: '{"sentence1": "a", "sentence2": "b", "gold_label": "maybe"}\n'},
        f"{MEDNLI}:1",
        "use one of entailment",
    ),
    corpus(
        "mednli-duplicate-pair-id", "mednli", "train", {MEDNLI: NLI + NLI}, f"{MEDNLI}:2", "unique pairID"
    ),
    # HoC
    corpus(
        "hoc-unknown-hallmark",
        "hoc",
        HOC_SPLIT,
        {
            f"hoc/text/{HOC_PMID}.txt": "One sentence .\n",
            f"hoc/labels/{HOC_PMID}.txt": "<Becoming purple--Sub\n",
        },
        f"hoc/labels/{HOC_PMID}.txt:1",
        "use one of activating",
    ),
    corpus(
        "hoc-groups-do-not-match-sentences",
        "hoc",
        HOC_SPLIT,
        {f"hoc/text/{HOC_PMID}.txt": "First .\nSecond .\n", f"hoc/labels/{HOC_PMID}.txt": "< \n"},
        f"hoc/labels/{HOC_PMID}.txt:1",
        "write one '<' group per text line",
    ),
    corpus(
        "hoc-nul",
        "hoc",
        HOC_SPLIT,
        {f"hoc/text/{HOC_PMID}.txt": "One\x00 sentence .\n", f"hoc/labels/{HOC_PMID}.txt": "< \n"},
        f"hoc/text/{HOC_PMID}.txt:1",
        NUL,
    ),
    # PubMedQA
    corpus(
        "pubmedqa-duplicate-pmid",
        "pubmedqa",
        "train",
        _pubmedqa(f'{{\n"1": {_qa()},\n"2": {_qa("no")},\n"1": {_qa("maybe")}\n}}\n'),
        "pubmedqa/ori_pqal.json:4",
        "keep one entry per PMID",
    ),
    corpus(
        "pubmedqa-duplicate-test-id",
        "pubmedqa",
        "test",
        _pubmedqa(f'{{"1": {_qa()}, "2": {_qa("no")}}}', '{"2": "no",\n "2": "yes"}'),
        "pubmedqa/test_ground_truth.json:2",
        "keep one entry per PMID",
    ),
    corpus(
        "pubmedqa-unknown-decision",
        "pubmedqa",
        "train",
        _pubmedqa(f'{{"1": {_qa("perhaps")}, "2": {_qa()}}}'),
        "pubmedqa/ori_pqal.json: PMID 1",
        "use one of yes, no, maybe",
    ),
    corpus(
        "pubmedqa-test-id-unknown",
        "pubmedqa",
        "train",
        _pubmedqa(f'{{"1": {_qa()}}}', '{"7": "yes"}'),
        "pubmedqa/test_ground_truth.json",
        "use the matching ori_pqal.json",
    ),
    # BioASQ TSV
    corpus(
        "bioasq-unknown-label",
        "bioasq_yesno",
        "train",
        {BIOASQ: "yesno_label\tquestion\tideal_answer\n2\tIs it?\tYes.\n"},
        f"{BIOASQ}:2",
        "use one of yes, no",
    ),
    corpus(
        "bioasq-nul",
        "bioasq_yesno",
        "train",
        {BIOASQ: "yesno_label\tquestion\tideal_answer\n1\tIs\x00 it?\tYes.\n"},
        f"{BIOASQ}:2",
        NUL,
    ),
    # Published instruction sets
    corpus(
        "instructions-missing-column",
        "gad",
        "train",
        {GAD: "@GENE$ causes @DISEASE$.\t1\n", "inst.jsonl": '{"instruction": "x", "input": "y"}\n'},
        "inst.jsonl:1",
        "each row needs string columns",
        extra_yaml="  instructions: {pub: {path: '{root}/inst.jsonl'}}\n",
    ),
    corpus(
        "instructions-unsupported-suffix",
        "gad",
        "train",
        {GAD: "@GENE$ causes @DISEASE$.\t1\n", "inst.csv": "instruction,input,output\n"},
        "inst.csv",
        "use .jsonl, .json, .parquet or .arrow",
        extra_yaml="  instructions: {pub: {path: '{root}/inst.csv'}}\n",
    ),
]
assert len({c.id for c in CASES}) == len(CASES)


@pytest.fixture(scope="module")
def results(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, tiny_model: Path):
    return run_selected(request, CASES, tmp_path_factory.mktemp("bad_corpora"), tiny_model)


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_bad_corpus_file(case: Case, results, tiny_model: Path) -> None:
    check(case, results[case.id], tiny_model)

"""Llama2-MedTuned's published output spellings parse back to the gold, task kind by task kind.

Each test writes gold in a spelling the paper's data uses (``Activating invasion & metastasis (IM)``, ``Positive``,
``TrIP`` or ``Treatment improves medical problem``, ``Entailment``, ``token : B`` lines), parses it with the
source's task, and expects the gold back; biotune's own rendering must still round-trip; and spellings that are
ambiguous (an abbreviation's prefix, an abbreviation in prose, a name contradicting its abbreviation) are not read
as a label.
"""

from __future__ import annotations

import itertools

import pytest

from biotune.data.tasks import ParseResult, task_for
from biotune.data.tasks.matching import label_key, label_phrases
from biotune.data.tasks.synonyms import HALLMARK_ABBREVIATIONS, LABEL_SYNONYMS, synonyms_of
from biotune.sources import SOURCES
from biotune.sources.records import DocLabels, NerSentence, NliPair, QaItem, RelationPair
from biotune.sources.registry import HALLMARKS, I2B2_2010_LABELS

#: The paper's HoC output names (preprocess_hoc.py), by BLURB label.
PAPER_HALLMARKS = {
    "sustaining proliferative signaling": "Sustaining proliferative signaling",
    "evading growth suppressors": "Evading growth suppressors",
    "resisting cell death": "Resisting cell death",
    "enabling replicative immortality": "Enabling replicative immortality",
    "inducing angiogenesis": "Inducing angiogenesis",
    "activating invasion and metastasis": "Activating invasion & metastasis",
    "genomic instability and mutation": "Genome instability & mutation",
    "tumor promoting inflammation": "Tumor-promoting inflammation",
    "cellular energetics": "Deregulating cellular energetics",
    "avoiding immune destruction": "Avoiding immune destruction",
}
#: The i2b2-2010 relation names, as the paper's instructions list them (preprocess_i2b2_2010_re.py).
I2B2_NAMES = {
    "TrIP": "Treatment improves medical problem",
    "TrWP": "Treatment worsens medical problem",
    "TrCP": "Treatment causes medical problem",
    "TrAP": "Treatment is administered for medical problem",
    "TrNAP": "Treatment is not administered because of medical problem",
    "TeRP": "Test reveals medical problem",
    "TeCP": "Test conducted to investigate medical problem",
    "PIP": "Medical problem indicates medical problem",
}
CASINGS = (str, str.lower, str.upper, str.title)


def _hoc_spellings(label: str) -> list[str]:
    """Every way the gold ``label`` may be written: its name, the paper's name, each synonym, each with its
    abbreviation in parentheses, and the abbreviation alone, in several casings."""
    abbreviation = HALLMARK_ABBREVIATIONS[label]
    names = [label, PAPER_HALLMARKS[label], *synonyms_of(label)]
    spellings = [*names, *(f"{name} ({abbreviation})" for name in names), abbreviation]
    return [case(s) for s in spellings for case in CASINGS]


# ----------------------------------------------------------------------------------------------------------- HoC


def test_every_hoc_label_parses_back_from_each_of_its_spellings() -> None:
    task = task_for(SOURCES["hoc"])
    for label in HALLMARKS:
        record = DocLabels("d", "text", (label,))
        for spelling in _hoc_spellings(label):
            assert task.parse(spelling, record) == ParseResult((label,), True), spelling


@pytest.mark.parametrize("separator", [", ", ",", "; ", "\n", "\n- ", " | "])
def test_hoc_gold_written_as_the_paper_writes_it_parses_back(separator: str) -> None:
    """The paper joins ``Name (XX)`` items with ``, ``; lists, bullets and other separators read the same."""
    task = task_for(SOURCES["hoc"])
    golds = [(), tuple(sorted(HALLMARKS)), *itertools.combinations(sorted(HALLMARKS), 2)]
    for gold in golds:
        record = DocLabels("d", "text", gold)
        paper = separator.join(f"{PAPER_HALLMARKS[x]} ({HALLMARK_ABBREVIATIONS[x]})" for x in gold) or "None"
        short = separator.join(HALLMARK_ABBREVIATIONS[x] for x in gold) or "None"
        for text in (paper, short, short.lower(), paper.upper()):
            assert task.parse(text, record) == ParseResult(gold, True), text
        # biotune's own rendering still round-trips
        assert task.parse(task.format_output(record), record) == ParseResult(gold, True)


def test_hoc_abbreviations_are_read_only_where_unambiguous() -> None:
    task = task_for(SOURCES["hoc"])
    empty = DocLabels("d", "text", ())
    # prefixes of abbreviations (I of ID/IM, T/TP of TPI, C of CD/CE) and strings that merely contain one
    for text in ("I", "T", "TP", "C", "(I)", "ACE", "IMS", "GIS", "CDs", "PS1"):
        result = task.parse(text, empty)
        assert result == ParseResult((), False, result.error) and "no label names" in result.error, text
    # abbreviations are ordinary words in prose: 'a', 'ID', 'CD' do not name a hallmark there
    for text in ("This is a study of a tumour.", "The patient ID was lost.", "CD markers were measured."):
        assert not task.parse(text, empty).ok, text
    # a name contradicting its abbreviation is flagged, the name is read
    conflict = task.parse("Inducing angiogenesis (IM)", empty)
    assert conflict.value == ("inducing angiogenesis",) and not conflict.ok and "disagree" in conflict.error
    # an abbreviation in the middle of an item is not read as a tag
    assert not task.parse("Genome (GI) instability", empty).ok


# ------------------------------------------------------------------------------------------------------ i2b2-2010


def test_every_i2b2_label_parses_back_from_abbreviation_and_long_name() -> None:
    task = task_for(SOURCES["i2b2_2010_re"])
    for label in I2B2_2010_LABELS:
        record = RelationPair("r", "@treatment$ for @problem$", label)
        if label == "No Relations":
            spellings = ["No Relations", "No Relation", "false"]
        else:
            name = I2B2_NAMES[label]
            spellings = [label, name, f"{name} ({label})", f"{label}: {name}", f"The relation is {name}."]
        for spelling in spellings:
            for case in CASINGS:
                assert task.parse(case(spelling), record) == ParseResult(label, True), case(spelling)
        assert task.parse(task.format_output(record), record) == ParseResult(label, True)


def test_i2b2_prefixes_and_contradictions_are_not_read_as_a_label() -> None:
    task = task_for(SOURCES["i2b2_2010_re"])
    record = RelationPair("r", "@treatment$ for @problem$", "TrAP")
    for text in ("Tr", "TrA", "Te", "Treatment", "Medical problem", "Test", "P"):
        result = task.parse(text, record)
        assert result.value == "No Relations" and not result.ok, text
    # the long names differ by words ('is not administered because of' vs 'is administered for'): no overlap
    assert task.parse(I2B2_NAMES["TrNAP"], record) == ParseResult("TrNAP", True)
    conflict = task.parse(f"{I2B2_NAMES['TrAP']} (TrIP)", record)
    assert conflict.value == "TrAP" and not conflict.ok and "several labels" in conflict.error


# --------------------------------------------------------------------------------------------- binary RE, NLI, QA


@pytest.mark.parametrize("source", ["gad", "euadr"])
def test_binary_relations_read_positive_negative_yes_no_true_false(source: str) -> None:
    task = task_for(SOURCES[source])
    words = {"1": ("Positive", "yes", "true", "1"), "0": ("Negative", "no", "false", "0")}
    for gold, spellings in words.items():
        record = RelationPair("g", "@GENE$ in @DISEASE$", gold)
        for spelling in spellings:
            for case in CASINGS:
                assert task.parse(case(spelling), record) == ParseResult(gold, True), case(spelling)
        assert task.parse(task.format_output(record), record) == ParseResult(gold, True)


def test_multiclass_relations_keep_a_bare_no_a_failure() -> None:
    task = task_for(SOURCES["i2b2_2010_re"])
    result = task.parse("No", RelationPair("r", "t", "TrAP"))
    assert result.value == "No Relations" and not result.ok


def test_mednli_labels_in_any_case() -> None:
    task = task_for(SOURCES["mednli"])
    for label in ("entailment", "contradiction", "neutral"):
        record = NliPair("n", "premise", "hypothesis", label)
        for case in CASINGS:
            assert task.parse(case(label), record) == ParseResult(label, True)
        assert task.parse(task.format_output(record), record) == ParseResult(label, True)


def test_qa_answers_in_any_case() -> None:
    task = task_for(SOURCES["pubmedqa"])
    for label in ("yes", "no", "maybe"):
        item = QaItem("q", "Question?", "Context.", label)
        for case in CASINGS:
            assert task.parse(case(label), item) == ParseResult(label, True)


# ----------------------------------------------------------------------------------------------------------- NER


@pytest.mark.parametrize(
    ("source", "tokens", "tags"),
    [
        ("ncbi_disease", "Familial breast cancer in BRCA1 carriers .", "O B-Disease I-Disease O O O O"),
        ("jnlpba", "IL-2 gene expression in T cells", "B-Biomolecule I-Biomolecule O O O O"),
        ("i2b2_2012", "CT scan showed a bleed", "B-TEST I-TEST B-EVIDENTIAL O B-PROBLEM"),
    ],
)
def test_ner_tag_lines_as_the_paper_writes_them(source: str, tokens: str, tags: str) -> None:
    """``token : B`` lines (untyped for single-type corpora, typed for i2b2-2012), in any case."""
    task = task_for(SOURCES[source])
    record = NerSentence("s", tuple(tokens.split()), tuple(tags.split()))
    single = len(task.labels) == 1
    paper = [t if t == "O" or not single else t[0] for t in record.tags]
    for case in (str, str.lower, str.upper):
        text = "\n".join(f"{tok} : {case(tag)}" for tok, tag in zip(record.tokens, paper, strict=True))
        assert task.parse(text, record) == ParseResult(record.tags, True), text
    assert task.parse(task.format_output(record), record) == ParseResult(record.tags, True)


# ------------------------------------------------------------------------------------------------- the one table


def test_synonym_tables_name_registered_labels_and_never_two_labels() -> None:
    labels = {label for spec in SOURCES.values() for label in spec.labels}
    assert set(LABEL_SYNONYMS) <= labels
    assert set(HALLMARK_ABBREVIATIONS) == set(HALLMARKS) == set(PAPER_HALLMARKS)
    assert len({label_key(a) for a in HALLMARK_ABBREVIATIONS.values()}) == len(HALLMARK_ABBREVIATIONS)
    for label, name in PAPER_HALLMARKS.items():  # every published name is accepted for its label
        assert label_key(name) in {label_key(x) for x in (label, *synonyms_of(label))}, name
    for label, name in I2B2_NAMES.items():
        assert name in synonyms_of(label)
    for spec in SOURCES.values():  # within a source, no accepted phrase names two labels
        phrases = label_phrases(spec.labels, {x: synonyms_of(x) for x in spec.labels})
        owners: dict[str, set[str]] = {}
        for phrase, label in phrases.items():
            owners.setdefault(label_key(phrase), set()).add(label)
        assert all(len(v) == 1 for v in owners.values()), spec.name


def test_a_synonym_claimed_by_two_labels_is_taken_for_neither() -> None:
    phrases = label_phrases(("A1", "B1"), {"A1": ("shared", "only a"), "B1": ("Shared",)})
    assert phrases == {"A1": "A1", "B1": "B1", "only a": "A1"}
    # and a synonym that is another label's name never overrides that name
    assert label_phrases(("A1", "B1"), {"A1": ("b1",)}) == {"A1": "A1", "B1": "B1"}

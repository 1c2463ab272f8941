"""NER: tag lines and entity lists, written from gold and read back from noisy completions."""

from __future__ import annotations

import random

import pytest

from biotune.config import NER_FORMATS
from biotune.data.tasks import ParseResult, task_for
from biotune.errors import DataError
from biotune.sources import SOURCES, SourceSpec
from biotune.sources.records import NerSentence


def _ner(tokens: str, tags: str, rid: str = "s1") -> NerSentence:
    return NerSentence(rid, tuple(tokens.split()), tuple(tags.split()))


def _lines(record: NerSentence, tags: list[str] | None = None) -> list[str]:
    return [f"{tok} : {tag}" for tok, tag in zip(record.tokens, tags or record.tags, strict=True)]


@pytest.mark.parametrize("fmt", NER_FORMATS)
def test_credentialed_ner_round_trip_on_hand_made_records(fmt: str) -> None:
    """i2b2-2012 (typed, six types) is not shipped: round-trip hand-made records in its tag set."""
    task = task_for(SOURCES["i2b2_2012"], fmt)
    records = [
        _ner(
            "Patient was admitted to the ICU for chest pain ; CT scan showed no bleed .",
            "O O B-OCCURRENCE O O B-CLINICAL_DEPT O B-PROBLEM I-PROBLEM O B-TEST I-TEST B-EVIDENTIAL O B-PROBLEM O",
        ),
        _ner("aspirin and aspirin again", "B-TREATMENT O O O", "s2"),
        _ner("nothing here", "O O", "s3"),
    ]
    for record in records:
        out = task.to_sample(record, "i2b2_2012", "train", random.Random(1)).output
        assert task.parse(out, record) == ParseResult(record.tags, True)
    if fmt == "tags":  # multi-type corpora keep typed tags in the output
        assert "ICU : B-CLINICAL_DEPT" in task.format_output(records[0])
    else:
        assert task.format_output(records[1]) == "TREATMENT: aspirin"


# ----------------------------------------------------------------------------------------------- NER, tags


@pytest.fixture(scope="module")
def disease() -> SourceSpec:
    return SOURCES["ncbi_disease"]


def test_single_type_corpus_writes_plain_bio_and_reads_both(disease: SourceSpec) -> None:
    task = task_for(disease)
    rec = _ner("aspirin - induced asthma .", "B-Disease I-Disease I-Disease I-Disease O")
    assert task.format_output(rec).splitlines() == [
        "aspirin : B",
        "- : I",
        "induced : I",
        "asthma : I",
        ". : O",
    ]
    typed = "\n".join(_lines(rec))
    assert task.parse(typed, rec) == ParseResult(rec.tags, True)


def test_tags_tolerate_prose_case_and_spacing(disease: SourceSpec) -> None:
    task = task_for(disease)
    rec = _ner("Aspirin induced asthma in 3 patients .", "O O B-Disease O O O O")
    completion = (
        "Sure! Here is each token with its tag:\n\n"
        "ASPIRIN:o\n  induced   :   O \nasthma:b-disease\nin : O\n3\t:\tO\npatients : O.\n. : O\n"
        "\nLet me know if you need anything else."
    )
    assert task.parse(completion, rec) == ParseResult(rec.tags, True)


def test_repeated_tokens_keep_their_own_tags(disease: SourceSpec) -> None:
    """A parser keyed by token text would give both 'cancer' tokens one tag; ours aligns by position."""
    task = task_for(disease)
    rec = _ner("cancer risk and breast cancer in cancer patients", "O O O B-Disease I-Disease O O O")
    parsed = task.parse("\n".join(_lines(rec, ["O", "O", "O", "B", "I", "O", "O", "O"])), rec)
    assert parsed == ParseResult(rec.tags, True)
    # the first 'cancer' line is missing: it becomes O (flagged), the later ones keep their own lines' tags
    lines = _lines(rec)[1:]
    parsed = task.parse("\n".join(lines), rec)
    assert parsed.value == rec.tags and not parsed.ok and "position" in parsed.error


def test_missing_lines_become_o_and_are_flagged(disease: SourceSpec) -> None:
    task = task_for(disease)
    rec = _ner("the colon cancer cells", "O B-Disease I-Disease O")
    lines = _lines(rec)
    parsed = task.parse("\n".join([lines[0], lines[1], lines[3]]), rec)
    assert parsed.value == ("O", "B-Disease", "O", "O")
    assert parsed.ok is False and "1 of 4 tokens have no line" in parsed.error and "2" in parsed.error


def test_extra_lines_are_ignored(disease: SourceSpec) -> None:
    task = task_for(disease)
    rec = _ner("colon cancer cells", "B-Disease I-Disease O")
    lines = _lines(rec)
    completion = "\n".join([lines[0], "tumour : B-Disease", lines[1], lines[2], "cells : O", "extra : I"])
    assert task.parse(completion, rec) == ParseResult(rec.tags, True)


def test_changed_token_text_lends_its_tag_but_is_flagged(disease: SourceSpec) -> None:
    task = task_for(disease)
    rec = _ner("Crohn 's disease", "B-Disease I-Disease I-Disease")
    parsed = task.parse("Crohn : B\ns : I\ndisease : I", rec)
    assert parsed.value == rec.tags and parsed.ok is False and "do not match" in parsed.error


def test_tags_outside_the_tag_set_are_o_and_flagged() -> None:
    typed = task_for(SOURCES["jnlpba_typed"])
    rec = _ner("IL-2 gene in T cells", "B-protein O O B-cell_type I-cell_type")
    parsed = typed.parse("IL-2 : B\ngene : O\nin : O\nT : B-cell_type\ncells : I-CELL_TYPE", rec)
    assert parsed.value == ("O", "O", "O", "B-cell_type", "I-cell_type")  # untyped B in a 5-type corpus
    assert not parsed.ok and "outside the tag set" in parsed.error
    single = task_for(SOURCES["ncbi_disease"])
    rec = _ner("aspirin asthma", "O B-Disease")
    parsed = single.parse("aspirin : B-Chemical\nasthma : B-Disease", rec)
    assert parsed.value == ("O", "B-Disease") and not parsed.ok


def test_invalid_iob_is_kept_as_predicted(disease: SourceSpec) -> None:
    task = task_for(disease)
    rec = _ner("colon cancer cells", "B-Disease I-Disease O")
    parsed = task.parse("colon : O\ncancer : I\ncells : O", rec)
    assert parsed == ParseResult(("O", "I-Disease", "O"), True)


def test_unreadable_tags_completion_is_flagged(disease: SourceSpec) -> None:
    task = task_for(disease)
    rec = _ner("colon cancer", "B-Disease I-Disease")
    for completion in ("", "I cannot help with that.", "colon cancer is a disease"):
        parsed = task.parse(completion, rec)
        assert parsed.value == ("O", "O") and parsed.ok is False and parsed.error


# ----------------------------------------------------------------------------------------------- NER, entities


def test_entity_list_round_trip_with_repeats(disease: SourceSpec) -> None:
    task = task_for(disease, "entities")
    rec = _ner(
        "asthma drug causes aspirin - induced asthma and asthma",
        "O O O B-Disease I-Disease I-Disease I-Disease O B-Disease",
    )
    out = task.format_output(rec)
    assert out == "Disease: aspirin - induced asthma; Disease: asthma"
    assert task.parse(out, rec) == ParseResult(rec.tags, True)
    # the first 'asthma' is no mention: the output names the occurrence so that the parser picks the right one
    rec2 = _ner("asthma drugs for asthma", "O O O B-Disease")
    assert task.format_output(rec2) == "Disease: asthma (2nd occurrence)"
    assert task.parse("Disease: asthma (2nd occurrence)", rec2) == ParseResult(rec2.tags, True)
    assert task.parse("Disease: asthma", rec2).value == ("B-Disease", "O", "O", "O")  # first unused match


def test_entity_list_tolerates_noise(disease: SourceSpec) -> None:
    task = task_for(disease, "entities")
    # no '.' token after 'cancer': a trailing period in the answer is read as punctuation (were there one, the
    # mention 'colon cancer .' would match exactly and win)
    rec = _ner(
        "aspirin - induced asthma and colon cancer",
        "B-Disease I-Disease I-Disease I-Disease O B-Disease I-Disease",
    )
    for completion in (
        "The entities are:\ndisease: Aspirin-induced asthma\nDISEASE : colon cancer.",
        "Disease: colon cancer; Disease: aspirin-induced  asthma",  # out of order
        "Sure. Disease: aspirin - induced asthma; Disease: colon cancer;",
    ):
        assert task.parse(completion, rec) == ParseResult(rec.tags, True), completion


def test_entity_list_none_and_failures(disease: SourceSpec) -> None:
    task = task_for(disease, "entities")
    rec = _ner("no mention here", "O O O")
    assert task.format_output(rec) == "None"
    assert task.parse("None", rec) == ParseResult(("O", "O", "O"), True)
    assert task.parse("There are none.", rec) == ParseResult(("O", "O", "O"), True)
    parsed = task.parse("I am not sure", rec)
    assert parsed.value == ("O", "O", "O") and not parsed.ok
    rec2 = _ner("colon cancer", "B-Disease I-Disease")
    parsed = task.parse("Disease: colon cancer; Disease: leukemia", rec2)
    assert parsed.value == rec2.tags and not parsed.ok and "leukemia" in parsed.error


def test_unknown_gold_tag_is_a_data_error() -> None:
    with pytest.raises(DataError, match="B-Chemical"):
        task_for(SOURCES["ncbi_disease"]).format_output(_ner("aspirin", "B-Chemical"))

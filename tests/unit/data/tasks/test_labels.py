"""Single-label tasks (RE, NLI, QA): label spellings, synonyms and prose are read back to the label."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from biotune.data.tasks import ParseResult, task_for
from biotune.errors import DataError
from biotune.sources import SOURCES
from biotune.sources.records import NliPair, QaItem, RelationPair


def test_credentialed_label_tasks_round_trip_on_hand_made_records() -> None:
    re_task = task_for(SOURCES["i2b2_2010_re"])
    for label in SOURCES["i2b2_2010_re"].labels:
        rec = RelationPair("r", "@treatment$ was given for @problem$ .", label)
        assert re_task.parse(re_task.format_output(rec), rec) == ParseResult(label, True)
    nli = task_for(SOURCES["mednli"])
    for label in ("entailment", "contradiction", "neutral"):
        rec = NliPair("n", "The patient has a fever.", "The patient is febrile.", label)
        assert nli.parse(nli.to_sample(rec, "mednli", "dev", random.Random(0)).output, rec).value == label


# ----------------------------------------------------------------------------------------------- label tasks


def test_relation_labels_tolerate_case_synonyms_and_prose() -> None:
    task = task_for(SOURCES["i2b2_2010_re"])
    rec = RelationPair("r", "@treatment$ for @problem$", "TrAP")
    cases = {
        "TrAP": "TrAP",
        " trap\n": "TrAP",
        "The relation is TrAP.": "TrAP",
        "TrCP. The treatment caused it.": "TrCP",
        "No Relation": "No Relations",
        "no relations": "No Relations",
        "none": "No Relations",
    }
    for completion, label in cases.items():
        assert task.parse(completion, rec) == ParseResult(label, True), completion
    ambiguous = task.parse("TrAP or TrCP", rec)
    assert ambiguous.value == "TrAP" and not ambiguous.ok and "several labels" in ambiguous.error
    garbage = task.parse("I cannot tell.", rec)
    assert garbage.value == "No Relations" and not garbage.ok


def test_relation_label_spellings_per_source() -> None:
    chemprot = task_for(SOURCES["chemprot"])
    rec = RelationPair("c", "BC6ENTC inhibits BC6ENTG", "CPR:4")
    assert [chemprot.parse(c, rec).value for c in ("CPR:4", "cpr 4", "Cpr-4", "false", "No relation")] == [
        "CPR:4",
        "CPR:4",
        "CPR:4",
        "False",
        "False",
    ]
    ddi = task_for(SOURCES["ddi"])
    rec = RelationPair("d", "@DRUG$ raises @DRUG$ levels", "DDI-mechanism")
    assert [
        ddi.parse(c, rec).value for c in ("DDI-mechanism", "mechanism", "Advise", "DDI-false", "none")
    ] == ["DDI-mechanism", "DDI-mechanism", "DDI-advise", "DDI-false", "DDI-false"]
    gad = task_for(SOURCES["gad"])
    rec = RelationPair("g", "@GENE$ variants in @DISEASE$", "1")
    assert [gad.parse(c, rec).value for c in ("1", "0", "yes", "No association")] == ["1", "0", "1", "0"]


def test_relation_input_names_unmarked_entities() -> None:
    task = task_for(SOURCES["bc5cdr_cid"])
    rec = RelationPair("p:c:d", "Famotidine-associated delirium.", "CID", head="Famotidine", tail="delirium")
    assert (
        task.format_input(rec) == "Famotidine-associated delirium.\nEntity 1: Famotidine\nEntity 2: delirium"
    )


def test_nli_and_qa_answers() -> None:
    nli = task_for(SOURCES["mednli"])
    rec = NliPair("n", "He has a fever.", "He is febrile.", "entailment")
    assert nli.format_input(rec) == "Premise: He has a fever.\nHypothesis: He is febrile."
    assert nli.parse("Entailment", rec) == ParseResult("entailment", True)
    assert nli.parse("The premise entails the hypothesis.", rec) == ParseResult("entailment", True)
    assert nli.parse("Answer: NEUTRAL", rec) == ParseResult("neutral", True)
    unreadable = nli.parse("", rec)
    assert unreadable.value == "" and not unreadable.ok
    qa = task_for(SOURCES["pubmedqa"])
    item = QaItem("q", "Does X cause Y?", "X caused Y in mice.", "yes")
    assert qa.format_input(item) == "Question: Does X cause Y?\nContext: X caused Y in mice."
    assert qa.format_input(replace(item, context="")) == "Question: Does X cause Y?"
    assert qa.parse("Yes. The context shows no doubt about it.", item) == ParseResult("yes", True)
    assert qa.parse("no", item) == ParseResult("no", True)
    assert qa.parse("The answer is maybe", item) == ParseResult("maybe", True)


def test_unknown_gold_label_is_a_data_error() -> None:
    task = task_for(SOURCES["chemprot"])
    with pytest.raises(DataError, match="CPR:7"):
        task.format_output(RelationPair("c", "text", "CPR:7"))

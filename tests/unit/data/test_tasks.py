"""Tasks: record -> instruction sample -> (gold output | model completion) -> parsed value, on real corpora."""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path

import pytest

from biotune.data.records import DocLabels, InstructionRecord, NerSentence, NliPair, QaItem, RelationPair
from biotune.data.sources import SAMPLE_ROOT, SOURCES, SourceSpec, load_records
from biotune.data.tasks import NER_FORMATS, ParseResult, align, task_for
from biotune.errors import ConfigError, DataError

# Splits larger than this are checked on a seeded sample of this many records (keeps the file well under 60 s).
ROUND_TRIP_CAP = 6000

PUBLIC = [name for name, spec in SOURCES.items() if not spec.credentialed and not spec.generated]
ROUND_TRIPS = [
    pytest.param(name, split, fmt, id=f"{name}-{split}-{fmt}")
    for name in PUBLIC
    for split in SOURCES[name].splits
    if not (
        name == "euadr" and split.startswith("fold")
    )  # the 10 CV folds re-partition the same 355 sentences
    for fmt in (NER_FORMATS if SOURCES[name].kind == "ner" else ("tags",))
]


def _ner(tokens: str, tags: str, rid: str = "s1") -> NerSentence:
    return NerSentence(rid, tuple(tokens.split()), tuple(tags.split()))


def _lines(record: NerSentence, tags: list[str] | None = None) -> list[str]:
    return [f"{tok} : {tag}" for tok, tag in zip(record.tokens, tags or record.tags, strict=True)]


# ----------------------------------------------------------------------------------------------- round trip


@pytest.mark.parametrize(("name", "split", "fmt"), ROUND_TRIPS)
def test_gold_output_parses_back_to_reference_on_real_corpora(
    corpora: Path, name: str, split: str, fmt: str
) -> None:
    records = load_records(name, split, corpora)
    assert records, f"{name}/{split} is empty"
    if len(records) > ROUND_TRIP_CAP:
        records = random.Random(f"{name}/{split}").sample(records, ROUND_TRIP_CAP)
    task = task_for(SOURCES[name], fmt)
    rng = random.Random(0)
    failures = []
    for record in records:
        sample = task.to_sample(record, name, split, rng)
        assert sample.id == f"{name}/{split}/{record.id}"
        parsed = task.parse(sample.output, record)
        if not parsed.ok or parsed.value != task.reference(record):
            failures.append((record.id, parsed))
    assert not failures, f"{len(failures)} of {len(records)} records do not round-trip, e.g. {failures[:3]}"


SAMPLE_TRIPS = [
    pytest.param(name, split, fmt, id=f"{name}-{split}-{fmt}")
    for name, spec in SOURCES.items()
    for split, rel in spec.splits.items()
    if (SAMPLE_ROOT / rel).exists()
    for fmt in (NER_FORMATS if spec.kind == "ner" else ("tags",))
]


@pytest.mark.parametrize(("name", "split", "fmt"), SAMPLE_TRIPS)
def test_gold_output_parses_back_to_reference_on_the_sample_corpus(name: str, split: str, fmt: str) -> None:
    """The bundled sample also covers the credentialed formats (MedNLI, i2b2-2010) that the real data lacks."""
    task = task_for(SOURCES[name], fmt)
    rng = random.Random(0)
    for record in load_records(name, split, "@sample"):
        parsed = task.parse(task.to_sample(record, name, split, rng).output, record)
        assert parsed == ParseResult(task.reference(record), True), record


def test_sample_round_trip_includes_credentialed_sources() -> None:
    assert {"mednli", "i2b2_2010_re"} <= {p.values[0] for p in SAMPLE_TRIPS}


def test_round_trip_covers_every_public_source() -> None:
    covered = {p.values[0] for p in ROUND_TRIPS}
    assert covered == set(PUBLIC)
    assert {"ner", "re", "qa", "cls"} <= {SOURCES[n].kind for n in covered}


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


def test_credentialed_label_tasks_round_trip_on_hand_made_records() -> None:
    re_task = task_for(SOURCES["i2b2_2010_re"])
    for label in SOURCES["i2b2_2010_re"].labels:
        rec = RelationPair("r", "@treatment$ was given for @problem$ .", label)
        assert re_task.parse(re_task.format_output(rec), rec) == ParseResult(label, True)
    nli = task_for(SOURCES["mednli"])
    for label in ("entailment", "contradiction", "neutral"):
        rec = NliPair("n", "The patient has a fever.", "The patient is febrile.", label)
        assert nli.parse(nli.to_sample(rec, "mednli", "dev", random.Random(0)).output, rec).value == label


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


def test_align_is_positional_and_monotone() -> None:
    tokens = ["a", "b", "a", "b", "c"]
    assert align(["a", "b", "a", "b", "c"], tokens) == [(i, True) for i in range(5)]
    assert align(["A", "a", "b", "c"], tokens) == [(0, True), (None, False), (1, True), (2, True), (3, True)]
    assert align(["x", "a", "b", "a", "b", "c", "y"], tokens) == [(i + 1, True) for i in range(5)]
    assert align([], tokens) == [(None, False)] * 5


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
    with pytest.raises(DataError, match="B-Chemical"):
        task_for(SOURCES["ncbi_disease"]).format_output(_ner("aspirin", "B-Chemical"))


def test_multilabel_classification() -> None:
    task = task_for(SOURCES["hoc"])
    rec = DocLabels(
        "d",
        "Tumour cells evade apoptosis and proliferate.",
        ("sustaining proliferative signaling", "resisting cell death"),
    )
    assert task.format_output(rec) == "resisting cell death, sustaining proliferative signaling"
    assert task.reference(rec) == ("resisting cell death", "sustaining proliferative signaling")
    noisy = "The hallmarks are: Sustaining proliferative  signaling, RESISTING CELL DEATH."
    assert task.parse(noisy, rec) == ParseResult(task.reference(rec), True)
    empty = DocLabels("e", "Nothing.", ())
    assert task.format_output(empty) == "None"
    assert task.parse("None", empty) == ParseResult((), True)
    failed = task.parse("angiogenesis maybe?", empty)
    assert failed.value == () and not failed.ok


def test_instruction_records_pass_through() -> None:
    spec = SourceSpec(
        name="chatdoctor",
        kind="instruction",
        format="instructions",
        splits={"train": "x.jsonl"},
        labels=(),
        licence="test",
        restricted=False,
        credentialed=False,
        description="test",
    )
    task = task_for(spec)
    rec = InstructionRecord("7", "Answer the patient.", "I have a headache.", "Drink water.", "chatdoctor")
    sample = task.to_sample(rec, "chatdoctor", "train", random.Random(0))
    assert (sample.id, sample.instruction, sample.input, sample.output, sample.task) == (
        "chatdoctor/train/7",
        "Answer the patient.",
        "I have a headache.",
        "Drink water.",
        "instruction",
    )
    assert task.reference(rec) == "Drink water."
    assert task.parse("  anything at all \n", rec) == ParseResult("  anything at all \n", True)


def test_wrong_record_type_is_rejected() -> None:
    with pytest.raises(TypeError, match="NerSentence"):
        task_for(SOURCES["ncbi_disease"]).to_sample(
            QaItem("q", "?", "", "yes"), "ncbi_disease", "train", random.Random(0)
        )


def test_unknown_ner_format_names_the_config_key() -> None:
    with pytest.raises(ConfigError) as info:
        task_for(SOURCES["ncbi_disease"], "spans")
    assert info.value.problems[0].key == "data.ner_format"


# ----------------------------------------------------------------------------------------------- instructions


ALL_TASKS = [
    pytest.param(name, fmt, id=f"{name}-{fmt}")
    for name, spec in SOURCES.items()
    for fmt in (NER_FORMATS if spec.kind == "ner" else ("tags",))
]


@pytest.mark.parametrize(("name", "fmt"), ALL_TASKS)
def test_every_paraphrase_states_every_label(name: str, fmt: str) -> None:
    task = task_for(SOURCES[name], fmt)
    assert len(task.instructions) >= 4 and len(set(task.instructions)) == len(task.instructions)
    assert task.labels
    for text in task.instructions:
        missing = [label for label in task.labels if label not in text]
        assert not missing, f"paraphrase lacks {missing}: {text}"
        undefined = [label for label in task.labels if f"the label {label}" in text]  # the fallback wording
        assert not undefined, f"labels without a definition: {undefined}"
        if SOURCES[name].kind == "ner":
            assert ("token : TAG" in text) == (fmt == "tags") and ("None" in text) == (fmt == "entities")


def test_paraphrase_choice_is_seeded() -> None:
    task = task_for(SOURCES["ncbi_disease"])
    rec = _ner("colon cancer", "B-Disease I-Disease")

    def draws(seed: int) -> list[str]:
        rng = random.Random(seed)
        return [task.to_sample(rec, "ncbi_disease", "train", rng).instruction for _ in range(200)]

    assert draws(3) == draws(3)
    assert draws(3) != draws(4)
    assert set(draws(3)) == set(task.instructions)  # every paraphrase is used


@pytest.mark.parametrize("name", ["ncbi_disease", "bc5cdr_pubtator_ner", "jnlpba_typed"])
def test_noisy_completions_of_real_sentences(corpora: Path, name: str) -> None:
    """Perturb gold tag lines of real sentences the ways models do; check each token's tag stays in place."""
    split = next(iter(SOURCES[name].splits))
    records = [r for r in load_records(name, split, corpora)[:400] if len(r.tokens) >= 3]
    task = task_for(SOURCES[name])
    rng = random.Random(7)
    for record in records:
        lines = task.format_output(record).splitlines()
        noisy = [
            (line.upper() if rng.random() < 0.3 else line).replace(" : ", rng.choice([":", " :", "  :  "]))
            for line in lines
        ]
        completion = "Here are the tags:\n" + "\n".join(noisy) + "\nDone."
        assert task.parse(completion, record) == ParseResult(record.tags, True), completion
        # drop one line whose token differs from its neighbours: exactly that token becomes O, flagged
        norm = [t.casefold() for t in record.tokens]
        ks = [k for k in range(1, len(norm) - 1) if norm[k] not in (norm[k - 1], norm[k + 1])]
        if not ks:
            continue
        k = rng.choice(ks)
        parsed = task.parse("\n".join(lines[:k] + lines[k + 1 :]), record)
        expected = list(record.tags)
        expected[k] = "O"
        assert parsed.value == tuple(expected) and not parsed.ok and str(k) in parsed.error

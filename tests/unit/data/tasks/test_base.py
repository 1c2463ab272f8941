"""The task contract: gold outputs parse back (on the sample corpus), paraphrases, seeding, registry, units.

The round trip over every split of the real corpora is in ``tests/integration/data/tasks/test_base_real.py``.
"""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from biotune.config import NER_FORMATS
from biotune.data.tasks import TASKS, ParseResult, make_samples, task_for
from biotune.errors import ConfigError
from biotune.sources import SAMPLE_ROOT, SOURCES, load_records
from biotune.sources.records import NerSentence, QaItem, RelationPair


def _ner(tokens: str, tags: str, rid: str = "s1") -> NerSentence:
    return NerSentence(rid, tuple(tokens.split()), tuple(tags.split()))


# ----------------------------------------------------------------------------------------------- round trip

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


def test_make_samples_seeds_the_paraphrase_by_seed_source_and_split() -> None:
    task = task_for(SOURCES["ncbi_disease"])
    records = load_records("ncbi_disease", "train", "@sample")
    samples = make_samples(task, records, "ncbi_disease", "train", 1234)
    assert [s.id for s in samples] == [f"ncbi_disease/train/{r.id}" for r in records]
    assert samples == make_samples(task, records, "ncbi_disease", "train", 1234)
    rng = random.Random("1234:paraphrase:ncbi_disease:train")  # the documented seed string
    assert samples == [task.to_sample(r, "ncbi_disease", "train", rng) for r in records]
    instructions = [s.instruction for s in samples]
    assert len(set(instructions)) > 1  # the draw varies across records
    others = [make_samples(task, records, "ncbi_disease", "train", seed) for seed in (1, 2, 3)]
    others.append(make_samples(task, records, "ncbi_disease", "devel", 1234))
    assert all([s.instruction for s in other] != instructions for other in others)


def test_every_registered_kind_has_a_task_and_instruction_sets_have_none() -> None:
    assert {spec.kind for spec in SOURCES.values()} <= set(TASKS)
    spec = replace(SOURCES["gad"], name="chatdoctor", kind="instruction")
    with pytest.raises(ConfigError) as info:
        task_for(spec)
    assert info.value.problems[0].key == "SOURCES['chatdoctor'].kind"


@pytest.mark.parametrize(
    ("name", "record", "unit"),
    [
        ("ncbi_disease_pubtator", _ner("Colon cancer .", "B-Disease I-Disease O", "10021369:3"), "10021369"),
        ("bc5cdr_cid", RelationPair("227508:D009270:D003000", "text", "CID"), "227508"),
        ("ddi", RelationPair("DDI-MedLine.d78.s2.p1", "text", "DDI-false"), "DDI-MedLine.d78"),
        ("ncbi_disease", _ner("Colon cancer .", "B-Disease I-Disease O", "test:4"), "test:4"),
        ("gad", RelationPair("test:7", "text", "1"), "test:7"),
        ("pubmedqa", QaItem("21645374", "?", "", "yes"), "21645374"),
    ],
)
def test_unit_is_the_document_where_the_record_id_names_one(name: str, record: object, unit: str) -> None:
    assert task_for(SOURCES[name]).unit(record) == unit

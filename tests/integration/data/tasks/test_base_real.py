"""The task contract on every public source of the real corpora: gold outputs parse back to the reference,
and PubTator records group into their abstracts. The hand-made and sample-corpus cases are in
``tests/unit/data/tasks/test_base.py``."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from biotune.config import NER_FORMATS, default_data_root
from biotune.data.tasks import task_for
from biotune.sources import SOURCES, available_splits, load_records

# Splits larger than this are checked on a seeded sample of this many records (keeps the file well under 60 s).
ROUND_TRIP_CAP = 6000

PUBLIC = [name for name, spec in SOURCES.items() if not spec.credentialed and not spec.generated]
ROUND_TRIPS = [
    pytest.param(name, split, fmt, id=f"{name}-{split}-{fmt}")
    for name in PUBLIC
    for split in available_splits(
        SOURCES[name], default_data_root()
    )  # the staged splits (official-only ones:
    if not (  # tests/integration/data/test_your_data.py)
        name == "euadr" and split.startswith("fold")
    )  # the 10 CV folds re-partition the same 355 sentences
    for fmt in (NER_FORMATS if SOURCES[name].kind == "ner" else ("tags",))
]


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


def test_round_trip_covers_every_public_source() -> None:
    covered = {p.values[0] for p in ROUND_TRIPS}
    assert covered == set(PUBLIC)
    assert {"ner", "re", "qa", "cls"} <= {SOURCES[n].kind for n in covered}


# ----------------------------------------------------------------------------------------------- units


@pytest.mark.parametrize("name", ["bc5cdr_pubtator_ner", "bc5cdr_cid"])
def test_units_of_real_pubtator_records_are_their_abstracts(corpora: Path, name: str) -> None:
    task = task_for(SOURCES[name])
    records = load_records(name, "devel", corpora)
    units = {task.unit(r) for r in records}
    assert all(r.id.startswith(f"{task.unit(r)}:") for r in records)
    assert len(units) == 500  # the BC5CDR development set has 500 abstracts

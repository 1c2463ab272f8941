"""The synthetic probe corpora: held-out combinations really unseen, labels from the rule, deterministic."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from biotune.data import synthetic
from biotune.sources import SOURCES, load_records


def _carrier(tokens: list[str], tags: list[str]) -> tuple[str, tuple[str, ...]]:
    """(the carrier sentence with {D}/{C} slots, the entities in order) of one NER sentence."""
    words, ents = [], []
    for token, tag in zip(tokens, tags, strict=True):
        if tag == "O":
            words.append(token)
        else:
            words.append("{D}" if tag == "B-Disease" else "{C}")
            ents.append(token)
    return " ".join(words), tuple(ents)


# --- synthetic_re ---------------------------------------------------------------------------------


def test_re_test_split_holds_only_unseen_frame_cue_combinations() -> None:
    train, test = synthetic.generate_re(2000, 200, seed=0)
    train_combos = {(e.frame, e.cue) for e in train}
    test_combos = {(e.frame, e.cue) for e in test}
    assert train_combos.isdisjoint(test_combos)
    assert test_combos <= synthetic.re_held_out(0)
    assert {e.text for e in train}.isdisjoint({e.text for e in test})
    assert len({e.text for e in test}) == len(test) == 200


def test_re_every_test_cue_and_frame_is_seen_in_training_with_every_label() -> None:
    """The rule is learnable from training: every cue occurs there, and frames carry no label information."""
    train, test = synthetic.generate_re(2000, 200, seed=0)
    assert {e.cue for e in test} <= {e.cue for e in train}
    labels_by_frame: dict[int, set[str]] = {}
    for e in train:
        labels_by_frame.setdefault(e.frame, set()).add(e.label)
    assert set(labels_by_frame) == set(range(len(synthetic.RE_FRAMES)))
    assert all(labels == set(synthetic.RE_LABELS) for labels in labels_by_frame.values())


def test_re_label_is_the_cue_rule_and_the_splits_are_balanced() -> None:
    train, test = synthetic.generate_re(400, 200, seed=3)
    for e in [*train, *test]:
        assert e.label == synthetic.re_cue_label(e.cue)
        assert e.cue in e.text and synthetic.RE_CHEMICAL in e.text and synthetic.RE_GENE in e.text
    cues = [c for cs in synthetic.RE_CUES.values() for c in cs]
    assert len(cues) == len(set(cues)), "a cue must decide exactly one label"
    n = len(synthetic.RE_LABELS)
    assert Counter(e.label for e in test) == {label: 200 // n for label in synthetic.RE_LABELS}
    assert Counter(e.label for e in test[:20]) == {label: 20 // n for label in synthetic.RE_LABELS}
    assert Counter(e.label for e in train) == {label: 400 // n for label in synthetic.RE_LABELS}


def test_re_is_deterministic_by_seed() -> None:
    assert synthetic.generate_re(300, 100, seed=1) == synthetic.generate_re(300, 100, seed=1)
    assert synthetic.generate_re(300, 100, seed=1) != synthetic.generate_re(300, 100, seed=2)
    assert synthetic.re_held_out(1) == synthetic.re_held_out(1)
    assert synthetic.re_held_out(1) != synthetic.re_held_out(2)


def test_re_asking_for_more_test_sentences_than_exist_raises() -> None:
    distinct = len(synthetic.re_held_out(0)) * len(synthetic.RE_CONTEXTS)
    assert len(synthetic.generate_re(10, distinct, seed=0)[1]) == distinct
    with pytest.raises(ValueError, match="held-out"):
        synthetic.generate_re(10, distinct + 1, seed=0)


def test_re_corpus_reads_back_through_the_registered_blue_tsv_source(tmp_path: Path) -> None:
    synthetic.write_re_corpus(tmp_path, n_train=40, n_test=20, seed=0)
    spec = SOURCES["synthetic_re"]
    assert spec.generated and spec.kind == "re" and spec.format == "blue_tsv"
    assert spec.labels == synthetic.RE_LABELS and spec.negative_label == synthetic.RE_NEGATIVE
    train, test = synthetic.generate_re(40, 20, seed=0)
    for split, examples in (("train", train), ("test", test)):
        records = load_records("synthetic_re", split, tmp_path)
        assert [(r.text, r.label) for r in records] == [(e.text, e.label) for e in examples]


# --- synthetic_ner --------------------------------------------------------------------------------


def test_ner_test_split_holds_only_unseen_carrier_entity_combinations() -> None:
    train, test = synthetic.generate(2000, 200, seed=0)
    seen = {_carrier(tokens, tags) for tokens, tags in train}
    held = [_carrier(tokens, tags) for tokens, tags in test]
    assert len(held) == 200 and len(set(held)) == 200
    assert seen.isdisjoint(held)
    assert {c for c, _ in held} <= {c for c, _ in seen}, "every test carrier is a training carrier"


def test_ner_is_deterministic_by_seed_and_reads_back(tmp_path: Path) -> None:
    assert synthetic.generate(100, 20, seed=1) == synthetic.generate(100, 20, seed=1)
    assert synthetic.generate(100, 20, seed=1) != synthetic.generate(100, 20, seed=2)
    synthetic.write_corpora(tmp_path, n_train=50, n_test=10, seed=0)
    records = load_records("synthetic_ner", "test", tmp_path)
    assert [(list(r.tokens), list(r.tags)) for r in records] == synthetic.generate(50, 10, seed=0)[1]
    assert len(load_records("synthetic_re", "test", tmp_path)) == 10

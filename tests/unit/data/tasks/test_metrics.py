"""Our metrics equal seqeval (NER) and scikit-learn (classification) to 1e-9.

Each gold set is generated (seeded) over a registered source's tags or labels, imbalanced the way the real
corpora are: mostly O tokens with entities of one to four tokens, some back to back; a majority negative class
and ever rarer positive ones; documents with zero to three labels. Predictions are derived from the gold in
five ways: perfect, empty, shifted by one position, truncated halfway, and random.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import pytest
from seqeval import metrics as sq
from seqeval.scheme import IOB2
from sklearn import metrics as sk
from sklearn.preprocessing import MultiLabelBinarizer

from biotune.data.tasks import metrics
from biotune.sources import SOURCES, SourceSpec

TOL = 1e-9
VARIANTS = ("perfect", "empty", "shifted", "truncated", "random")
NO_PRED = "<unparsed>"


# ------------------------------------------------------------------------------------------------ NER


def _ner_variant(gold: list[tuple[str, ...]], variant: str, tag_set: Sequence[str]) -> list[list[str]]:
    rng = random.Random(7)
    out = []
    for tags in gold:
        n = len(tags)
        if variant == "perfect":
            out.append(list(tags))
        elif variant == "empty":
            out.append(["O"] * n)
        elif variant == "shifted":
            out.append((["O"] + list(tags))[:n])
        elif variant == "truncated":
            out.append(list(tags[: n // 2]) + ["O"] * (n - n // 2))
        else:
            out.append([rng.choice(tag_set) if rng.random() < 0.3 else t for t in tags])
    return out


def _untype(seqs: Sequence[Sequence[str]]) -> list[list[str]]:
    return [[t if t == "O" else t[0] for t in s] for s in seqs]


def _iob2_gold(spec: SourceSpec, n: int = 400) -> list[list[str]]:
    """Seeded IOB2 gold over the source's types: mostly O, entities of 1-4 tokens, later types rarer."""
    rng = random.Random(spec.name)
    types = list(spec.labels)
    weights = [1 / (i + 1) for i in range(len(types))]
    gold = []
    for _ in range(n):
        length = rng.randint(1, 30)
        tags: list[str] = []
        while len(tags) < length:
            if rng.random() < 0.15:
                etype = rng.choices(types, weights)[0]
                span = min(rng.choice((1, 1, 2, 2, 3, 4)), length - len(tags))
                tags += [f"B-{etype}"] + [f"I-{etype}"] * (span - 1)
            else:
                tags.append("O")
        gold.append(tags)
    return gold


@pytest.fixture(scope="module")
def ner_gold() -> dict[str, list[list[str]]]:
    """Gold tags for NCBI-disease (one type) and typed JNLPBA (five types)."""
    return {name: _iob2_gold(SOURCES[name]) for name in ("ncbi_disease", "jnlpba_typed")}


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("source", ["ncbi_disease", "jnlpba_typed"])
def test_ner_strict_equals_seqeval(ner_gold: dict, source: str, variant: str) -> None:
    gold = ner_gold[source]
    pred = _ner_variant(gold, variant, SOURCES[source].tag_set)
    ours = metrics.ner_scores(gold, pred, mode="strict")
    for key, fn in (("precision", sq.precision_score), ("recall", sq.recall_score), ("f1", sq.f1_score)):
        ref = fn(gold, pred, mode="strict", scheme=IOB2, zero_division=0)
        assert ours[key] == pytest.approx(ref, abs=TOL), key
        uref = fn(_untype(gold), _untype(pred), mode="strict", scheme=IOB2, zero_division=0)
        assert ours[f"untyped_{key}"] == pytest.approx(uref, abs=TOL), key
    if variant == "perfect":
        assert ours["f1"] == 1.0 and ours["gold_entities"] > 100
    if variant == "empty":
        assert ours["f1"] == 0.0 and ours["recall"] == 0.0


@pytest.mark.parametrize("variant", VARIANTS)
def test_ner_conlleval_mode_equals_seqeval_default(ner_gold: dict, variant: str) -> None:
    gold = ner_gold["jnlpba_typed"]
    pred = _ner_variant(gold, variant, SOURCES["jnlpba_typed"].tag_set)
    ours = metrics.ner_scores(gold, pred, mode="conlleval")
    assert ours["f1"] == pytest.approx(sq.f1_score(gold, pred, zero_division=0), abs=TOL)
    assert ours["precision"] == pytest.approx(sq.precision_score(gold, pred, zero_division=0), abs=TOL)


def test_ner_per_type_f1_equals_seqeval_report(ner_gold: dict) -> None:
    gold = ner_gold["jnlpba_typed"]
    pred = _ner_variant(gold, "random", SOURCES["jnlpba_typed"].tag_set)
    ours = metrics.ner_scores(gold, pred)
    report = sq.classification_report(
        gold, pred, mode="strict", scheme=IOB2, output_dict=True, zero_division=0
    )
    for etype in SOURCES["jnlpba_typed"].labels:
        assert ours[f"f1[{etype}]"] == pytest.approx(report[etype]["f1-score"], abs=TOL)


def test_ner_stray_inside_tags_open_no_entity_in_strict_mode() -> None:
    gold = [["B-D", "I-D", "O", "B-D"]]
    pred = [["I-D", "I-D", "O", "B-D"]]  # the first entity lacks its B-: strict mode does not count it
    assert metrics.entities_strict(pred[0]) == [("D", 3, 3)]
    assert metrics.entities_conlleval(pred[0]) == [("D", 0, 1), ("D", 3, 3)]
    s = metrics.ner_scores(gold, pred)
    assert (s["precision"], s["recall"]) == (1.0, 0.5)


def test_ner_repeated_tokens_are_scored_by_position() -> None:
    # "cancer ... cancer": only the second mention is an entity; a text-keyed scorer would confuse them.
    gold = [["O", "O", "O", "B-Disease"]]
    pred = [["B-Disease", "O", "O", "O"]]
    s = metrics.ner_scores(gold, pred)
    assert s["f1"] == 0.0 and s["pred_entities"] == 1.0


def test_ner_unparsed_prediction_counts_as_no_entities() -> None:
    s = metrics.ner_scores([["B-D", "I-D"], ["B-D"]], [None, ["B-D"]])
    assert (s["precision"], s["recall"]) == (1.0, 0.5)


def test_ner_length_mismatch_is_an_error() -> None:
    with pytest.raises(ValueError, match="sentence 0: 2 gold tags but 1"):
        metrics.ner_scores([["O", "O"]], [["O"]])


# ------------------------------------------------------------------------------- single-label classes


def _label_variant(gold: list[str], variant: str, labels: Sequence[str]) -> list[str | None]:
    rng = random.Random(11)
    n = len(gold)
    if variant == "perfect":
        return list(gold)
    if variant == "empty":
        return [None] * n
    if variant == "shifted":
        return gold[-1:] + gold[:-1]
    if variant == "truncated":
        return list(gold[: n // 2]) + [None] * (n - n // 2)
    return [rng.choice(labels) for _ in gold]


def _sk(pred: Sequence[str | None]) -> list[str]:
    return [NO_PRED if p is None else p for p in pred]


def _label_gold(spec: SourceSpec, n: int = 500) -> list[str]:
    """Seeded gold labels: the negative label (if any) is the majority, the other labels ever rarer."""
    rng = random.Random(spec.name)
    positives = [label for label in spec.labels if label != spec.negative_label]
    weights = {label: 1 / (i + 1) for i, label in enumerate(positives)}
    if spec.negative_label is not None:
        weights[spec.negative_label] = 2 * sum(weights.values())
    return rng.choices(list(weights), list(weights.values()), k=n)


@pytest.fixture(scope="module")
def label_gold() -> dict[str, list[str]]:
    """Gold labels for the single-label relation, QA and yes/no sources."""
    return {
        name: _label_gold(SOURCES[name])
        for name in ("chemprot", "ddi", "gad", "euadr", "pubmedqa", "bioasq_yesno")
    }


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("source", ["chemprot", "ddi", "pubmedqa", "bioasq_yesno"])
def test_classification_equals_sklearn(label_gold: dict, source: str, variant: str) -> None:
    spec = SOURCES[source]
    gold = label_gold[source]
    pred = _label_variant(gold, variant, spec.labels)
    ours = metrics.classification_scores(gold, pred, spec.labels, spec.negative_label)
    p = _sk(pred)
    assert ours["accuracy"] == pytest.approx(sk.accuracy_score(gold, p), abs=TOL)
    assert ours["macro_f1"] == pytest.approx(
        sk.f1_score(gold, p, labels=list(spec.labels), average="macro", zero_division=0), abs=TOL
    )
    assert ours["micro_f1_with_negative"] == pytest.approx(
        sk.f1_score(gold, p, labels=list(spec.labels), average="micro", zero_division=0), abs=TOL
    )
    positives = [label for label in spec.labels if label != spec.negative_label]
    for key, fn in (
        ("precision", sk.precision_score),
        ("recall", sk.recall_score),
        ("micro_f1", sk.f1_score),
    ):
        assert ours[key] == pytest.approx(
            fn(gold, p, labels=positives, average="micro", zero_division=0), abs=TOL
        )
    if variant == "perfect":
        assert ours["accuracy"] == 1.0 and ours["micro_f1"] == 1.0


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("source", ["gad", "euadr"])
def test_binary_f1_equals_sklearn(label_gold: dict, source: str, variant: str) -> None:
    spec = SOURCES[source]
    positive = next(label for label in spec.labels if label != spec.negative_label)
    gold = label_gold[source]
    pred = _label_variant(gold, variant, spec.labels)
    ours = metrics.binary_f1(gold, pred, positive)
    if None in pred:  # a third "label": sklearn's binary mode refuses it; micro over the positive is the same
        ref = sk.f1_score(gold, _sk(pred), labels=[positive], average="micro", zero_division=0)
    else:
        ref = sk.f1_score(gold, pred, pos_label=positive, average="binary", zero_division=0)
    assert ours["f1"] == pytest.approx(ref, abs=TOL)


def test_classification_rejects_gold_outside_label_set() -> None:
    with pytest.raises(ValueError, match="not in the label set"):
        metrics.classification_scores(["yes", "perhaps"], ["yes", "no"], ("yes", "no"))


# --------------------------------------------------------------------------------------- multi-label


def _set_variant(
    gold: list[tuple[str, ...]], variant: str, labels: Sequence[str]
) -> list[tuple[str, ...] | None]:
    rng = random.Random(3)
    n = len(gold)
    if variant == "perfect":
        return list(gold)
    if variant == "empty":
        return [None] * n
    if variant == "shifted":
        return gold[-1:] + gold[:-1]
    if variant == "truncated":
        return [tuple(g[:1]) for g in gold]  # only the first label of each document survives
    return [tuple(label for label in labels if rng.random() < 0.2) for _ in gold]


def _multilabel_gold(labels: Sequence[str], seed: int, n: int = 300) -> list[tuple[str, ...]]:
    """Seeded documents with zero to three labels each, one or none most often."""
    rng = random.Random(seed)
    return [tuple(rng.sample(list(labels), rng.choice((0, 0, 1, 1, 1, 2, 3)))) for _ in range(n)]


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("seed", [0, 1])
def test_hoc_multilabel_equals_sklearn(seed: int, variant: str) -> None:
    spec = SOURCES["hoc"]
    gold = _multilabel_gold(spec.labels, seed)
    assert len({label for g in gold for label in g}) == len(spec.labels) and () in gold
    pred = _set_variant(gold, variant, spec.labels)
    ours = metrics.multilabel_scores(gold, pred, spec.labels)
    mlb = MultiLabelBinarizer(classes=list(spec.labels))
    y = mlb.fit_transform(gold)
    yp = mlb.transform([p or () for p in pred])
    assert ours["f1"] == pytest.approx(sk.f1_score(y, yp, average="micro", zero_division=0), abs=TOL)
    assert ours["precision"] == pytest.approx(
        sk.precision_score(y, yp, average="micro", zero_division=0), abs=TOL
    )
    assert ours["recall"] == pytest.approx(sk.recall_score(y, yp, average="micro", zero_division=0), abs=TOL)
    assert ours["macro_f1"] == pytest.approx(sk.f1_score(y, yp, average="macro", zero_division=0), abs=TOL)
    assert ours["example_f1"] == pytest.approx(
        sk.f1_score(y, yp, average="samples", zero_division=1), abs=TOL
    )
    assert ours["exact_match"] == pytest.approx(sk.accuracy_score(y, yp), abs=TOL)


def test_prf_zero_division_is_zero() -> None:
    assert metrics.prf(0, 0, 0) == (0.0, 0.0, 0.0)
    assert metrics.prf(1, 2, 4) == pytest.approx((0.5, 0.25, 1 / 3))

"""Metrics on parsed predictions: entity-level NER, single-label and multi-label classification.

Pure functions over gold and predicted values (no model, no files). Our own implementation, tested to
equal seqeval (NER) and scikit-learn (classification) to 1e-9 on the same labels.

Conventions:

* NER: strict IOB2 entity extraction (seqeval's ``mode="strict", scheme=IOB2``): an entity is a ``B-T``
  followed by any number of ``I-T``; an ``I-T`` that does not continue an entity of type ``T`` starts
  nothing. ``mode="conlleval"`` reproduces seqeval's default (lenient) mode, where such an ``I-T`` opens
  a new entity. Predicted tags are aligned with gold tags by position. Micro P/R/F1 over all entities,
  typed (type and span must match) and untyped (types removed from the tags before extraction, so only
  boundaries count: ``B-protein I-DNA`` is one untyped entity).
* Single-label classification: a parse failure (``None``) is a prediction outside every label, so it is
  a false negative for the gold label and a false positive for none. Micro-F1 over a label subset is
  scikit-learn's ``f1_score(labels=subset, average="micro")``; excluding the negative class gives the
  BLURB relation-extraction convention (ChemProt, DDI), including it the paper's i2b2-2010 one.
* Multi-label (HoC): BLURB's "average micro F1": predictions and gold are label sets per document; the
  score is micro-F1 over the document x label indicator matrix (as LinkBERT's/BLURB's ``eval_hoc``),
  i.e. scikit-learn ``f1_score(Y, P, average="micro")``. Example-based F1 (BLUE's per-document average)
  and label macro-F1 are reported beside it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

Entity = tuple[str, int, int]  # (type, first token, last token) inclusive
NER_MODES = ("strict", "conlleval")


def _split_tag(tag: str) -> tuple[str, str]:
    """``"B-Disease"`` -> ``("B", "Disease")``; ``"O"`` and anything unrecognised -> ``("O", "")``."""
    if len(tag) >= 1 and tag[0] in "BI" and (len(tag) == 1 or tag[1] == "-"):
        return tag[0], tag[2:]
    return "O", ""


def entities_strict(tags: Sequence[str]) -> list[Entity]:
    """Entities of an IOB2 tag sequence in strict mode: ``B-T`` then ``I-T``*; stray ``I`` tags are ignored."""
    found: list[Entity] = []
    start, etype = -1, ""
    for i, tag in enumerate(tags):
        prefix, ttype = _split_tag(tag)
        if start >= 0 and prefix == "I" and ttype == etype:
            continue
        if start >= 0:
            found.append((etype, start, i - 1))
            start = -1
        if prefix == "B":
            start, etype = i, ttype
    if start >= 0:
        found.append((etype, start, len(tags) - 1))
    return found


def entities_conlleval(tags: Sequence[str]) -> list[Entity]:
    """Entities in conlleval's lenient reading (seqeval's default mode): an ``I-T`` may open an entity."""
    found: list[Entity] = []
    start, etype = -1, ""
    for i, tag in enumerate(tags):
        prefix, ttype = _split_tag(tag)
        continues = start >= 0 and prefix == "I" and ttype == etype
        if continues:
            continue
        if start >= 0:
            found.append((etype, start, i - 1))
            start = -1
        if prefix in ("B", "I"):
            start, etype = i, ttype
    if start >= 0:
        found.append((etype, start, len(tags) - 1))
    return found


def prf(tp: int, n_pred: int, n_gold: int) -> tuple[float, float, float]:
    """Precision, recall and F1 from counts; 0/0 is 0 (scikit-learn's ``zero_division=0``)."""
    p = tp / n_pred if n_pred else 0.0
    r = tp / n_gold if n_gold else 0.0
    f = 2 * tp / (n_pred + n_gold) if n_pred + n_gold else 0.0
    return p, r, f


def _entity_counts(gold: list[Entity], pred: list[Entity]) -> tuple[int, int, int]:
    """(matched, predicted, gold) entity counts; an entity matches on type and exact span."""
    tp = sum((Counter(gold) & Counter(pred)).values())
    return tp, len(pred), len(gold)


def untyped(tags: Sequence[str]) -> list[str]:
    """The tags with their entity types removed (``B-Chemical`` -> ``B``): boundaries only."""
    return [prefix if prefix != "O" else "O" for prefix, _ in map(_split_tag, tags)]


def ner_scores(
    gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str] | None], mode: str = "strict"
) -> dict[str, float]:
    """Entity-level micro precision/recall/F1, typed and untyped, plus per-type F1.

    Args:
        gold: one IOB2 tag sequence per sentence.
        pred: the predicted tags, aligned by position with ``gold`` (same length); ``None`` for a
            completion that could not be parsed at all (it predicts no entity).
        mode: ``strict`` (default) or ``conlleval``.

    Raises:
        ValueError: when the lists, or a sentence's tag sequences, differ in length.
    """
    if mode not in NER_MODES:
        raise ValueError(f"mode must be one of {NER_MODES}, got {mode!r}")
    if len(gold) != len(pred):
        raise ValueError(f"{len(gold)} gold sentences but {len(pred)} predictions")
    extract = entities_strict if mode == "strict" else entities_conlleval
    totals = {True: [0, 0, 0], False: [0, 0, 0]}
    per_type: dict[str, list[int]] = {}
    for i, (g_tags, p_tags) in enumerate(zip(gold, pred, strict=True)):
        if p_tags is not None and len(p_tags) != len(g_tags):
            raise ValueError(f"sentence {i}: {len(g_tags)} gold tags but {len(p_tags)} predicted tags")
        g_ents = extract(g_tags)
        p_ents = extract(p_tags) if p_tags is not None else []
        typed_counts = _entity_counts(g_ents, p_ents)
        untyped_counts = _entity_counts(
            extract(untyped(g_tags)), extract(untyped(p_tags)) if p_tags is not None else []
        )
        for k in range(3):
            totals[True][k] += typed_counts[k]
            totals[False][k] += untyped_counts[k]
        for etype in {e[0] for e in g_ents} | {e[0] for e in p_ents}:
            counts = _entity_counts(
                [e for e in g_ents if e[0] == etype], [e for e in p_ents if e[0] == etype]
            )
            slot = per_type.setdefault(etype, [0, 0, 0])
            for k, v in enumerate(counts):
                slot[k] += v
    p, r, f = prf(*totals[True])
    up, ur, uf = prf(*totals[False])
    out = {
        "precision": p,
        "recall": r,
        "f1": f,
        "untyped_precision": up,
        "untyped_recall": ur,
        "untyped_f1": uf,
        "gold_entities": float(totals[True][2]),
        "pred_entities": float(totals[True][1]),
    }
    for etype, counts in sorted(per_type.items()):
        out[f"f1[{etype or '-'}]"] = prf(*counts)[2]
    return out


def _label_counts(
    gold: Sequence[str], pred: Sequence[str | None], labels: Sequence[str]
) -> dict[str, tuple[int, int, int]]:
    """Per label: (true positives, predicted count, gold count)."""
    tp: Counter[str] = Counter()
    n_pred: Counter[str] = Counter()
    n_gold: Counter[str] = Counter()
    for g, p in zip(gold, pred, strict=True):
        n_gold[g] += 1
        if p is not None:
            n_pred[p] += 1
            if p == g:
                tp[g] += 1
    return {label: (tp[label], n_pred[label], n_gold[label]) for label in labels}


def micro_f1(counts: dict[str, tuple[int, int, int]], labels: Sequence[str]) -> tuple[float, float, float]:
    """Micro P/R/F1 pooled over ``labels`` (scikit-learn ``average="micro", labels=labels``)."""
    tp = sum(counts[label][0] for label in labels)
    n_pred = sum(counts[label][1] for label in labels)
    n_gold = sum(counts[label][2] for label in labels)
    return prf(tp, n_pred, n_gold)


def classification_scores(
    gold: Sequence[str], pred: Sequence[str | None], labels: Sequence[str], negative_label: str | None = None
) -> dict[str, float]:
    """Accuracy, macro-F1 and micro-F1 (with and without the negative class) for single-label tasks.

    Args:
        gold: gold labels (each must be in ``labels``).
        pred: predicted labels; ``None`` (parse failure) or a label outside ``labels`` is simply wrong.
        labels: the full label set, negative class included.
        negative_label: the "no relation" class, left out of ``micro_f1`` (BLURB's RE convention).

    Raises:
        ValueError: on length mismatch, an empty input, or a gold label outside ``labels``.
    """
    if len(gold) != len(pred):
        raise ValueError(f"{len(gold)} gold labels but {len(pred)} predictions")
    if not gold:
        raise ValueError("no examples to score")
    unknown = sorted(set(gold) - set(labels))
    if unknown:
        raise ValueError(f"gold labels {unknown} are not in the label set {list(labels)}")
    counts = _label_counts(gold, pred, labels)
    positives = [label for label in labels if label != negative_label]
    out: dict[str, float] = {"accuracy": sum(g == p for g, p in zip(gold, pred, strict=True)) / len(gold)}
    out["macro_f1"] = sum(prf(*counts[label])[2] for label in labels) / len(labels)
    p, r, f = micro_f1(counts, labels)
    out.update(micro_precision_with_negative=p, micro_recall_with_negative=r, micro_f1_with_negative=f)
    p, r, f = micro_f1(counts, positives)
    out.update(precision=p, recall=r, micro_f1=f)
    for label in labels:
        out[f"f1[{label}]"] = prf(*counts[label])[2]
    return out


def binary_f1(gold: Sequence[str], pred: Sequence[str | None], positive_label: str) -> dict[str, float]:
    """Precision, recall and F1 of the positive class (scikit-learn ``average="binary"``)."""
    if len(gold) != len(pred):
        raise ValueError(f"{len(gold)} gold labels but {len(pred)} predictions")
    counts = _label_counts(gold, pred, [positive_label])
    p, r, f = prf(*counts[positive_label])
    return {"precision": p, "recall": r, "f1": f}


def multilabel_scores(
    gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str] | None], labels: Sequence[str]
) -> dict[str, float]:
    """BLURB-style micro-F1 over the example x label matrix, plus label macro-F1 and example-based F1.

    ``None`` predictions (parse failures) predict the empty set. Example-based F1 counts an example
    whose gold and predicted sets are both empty as 1.0 (scikit-learn ``average="samples"``,
    ``zero_division=1``). Labels outside ``labels`` are ignored on both sides.
    """
    if len(gold) != len(pred):
        raise ValueError(f"{len(gold)} gold label sets but {len(pred)} predictions")
    if not gold:
        raise ValueError("no examples to score")
    label_set = set(labels)
    per_label = {label: [0, 0, 0] for label in labels}
    example_f1 = 0.0
    exact = 0
    for g_raw, p_raw in zip(gold, pred, strict=True):
        g = set(g_raw) & label_set
        p = set(p_raw or ()) & label_set
        for label in p:
            per_label[label][1] += 1
        for label in g:
            per_label[label][2] += 1
            if label in p:
                per_label[label][0] += 1
        example_f1 += 1.0 if not g and not p else 2 * len(g & p) / (len(g) + len(p))
        exact += g == p
    tp, n_pred, n_gold = (sum(c[k] for c in per_label.values()) for k in range(3))
    p, r, f = prf(tp, n_pred, n_gold)
    out = {
        "precision": p,
        "recall": r,
        "f1": f,
        "macro_f1": sum(prf(*c)[2] for c in per_label.values()) / len(labels),
        "example_f1": example_f1 / len(gold),
        "exact_match": exact / len(gold),
    }
    return out

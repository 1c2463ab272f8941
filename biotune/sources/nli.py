"""MedNLI JSON lines -> :class:`NliPair`.

MedNLI (credentialed, PhysioNet) files ``mli_{train,dev,test}_v1.jsonl`` hold one object per line with
``sentence1`` (premise), ``sentence2`` (hypothesis) and ``gold_label`` (``entailment``, ``contradiction``,
``neutral``); other keys are ignored. The record id is the object's ``pairID`` when present, else
``<file stem>:<line index>``.
"""

from __future__ import annotations

from pathlib import Path

from biotune.errors import DataError
from biotune.sources._io import check_label, json_lines
from biotune.sources.records import NliPair
from biotune.sources.spec import SourceSpec

_FIELDS = ("sentence1", "sentence2", "gold_label")


def load_mednli(path: Path, spec: SourceSpec, split: str) -> list[NliPair]:
    """Reader entry point for ``format="mednli_jsonl"``."""
    pairs: list[NliPair] = []
    seen: set[str] = set()
    for number, obj in json_lines(path):
        missing = [f for f in _FIELDS if not isinstance(obj.get(f), str)]
        if missing:
            raise DataError(
                path,
                f"missing string field(s) {', '.join(missing)}",
                "write sentence1, sentence2 and gold_label",
                number,
            )
        label = spec.label_aliases.get(obj["gold_label"], obj["gold_label"])
        check_label(label, spec.labels, path, number)
        rid = str(obj.get("pairID") or f"{path.stem}:{len(pairs)}")
        if rid in seen:
            raise DataError(path, f"pairID {rid!r} repeats", "give every pair a unique pairID", number)
        seen.add(rid)
        pairs.append(NliPair(rid, obj["sentence1"], obj["sentence2"], label))
    if not pairs:
        raise DataError(path, "file has no records", "restore the file: one JSON object per line")
    return pairs

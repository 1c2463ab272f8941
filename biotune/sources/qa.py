"""Yes/no(/maybe) question answering -> :class:`QaItem`.

``pubmedqa``
    PubMedQA PQA-L: ``ori_pqal.json`` (``{PMID: {QUESTION, CONTEXTS, final_decision, ...}}``) and, beside it,
    ``test_ground_truth.json`` (``{PMID: answer}``, the official test ids). ``test`` = those ids; the rest is
    the train/dev pool. ``devel`` = the ``len(pool) // 10`` pool PMIDs with the smallest sha256 hex digest
    (50 of the official 500, as the official 450/50 folds; our own deterministic choice, not BLURB's fold 0),
    ``train`` = the rest of the pool. Context = the ``CONTEXTS`` joined by one space; label = ``final_decision``.
    Record id = PMID. A PMID repeated in either file is an error naming it (JSON would keep the last entry).
``bioasq_tsv``
    BioASQ yes/no TSV (Bio-ELECTRA preprocessing) with header ``yesno_label<TAB>question<TAB>ideal_answer``;
    ``1`` -> ``yes``, ``0`` -> ``no``; context = the ideal answer. Record id = ``<file stem>:<row index>``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from biotune.errors import DataError
from biotune.sources._io import check_label, lines, load_json
from biotune.sources.records import QaItem
from biotune.sources.spec import SourceSpec

TEST_IDS_FILE = "test_ground_truth.json"
_BIOASQ_HEADER = ["yesno_label", "question", "ideal_answer"]
_BIOASQ_LABELS = {"1": "yes", "0": "no"}


_DUPLICATE_FIX = (
    "keep one entry per PMID: JSON keeps only the last of repeated keys, which can change a gold label; "
    "restore the file from the PubMedQA release"
)


def _pubmedqa_item(pmid: str, entry: Any, spec: SourceSpec, path: Path) -> QaItem:
    if not isinstance(entry, dict) or not isinstance(entry.get("QUESTION"), str):
        raise DataError(
            path, f"PMID {pmid}: entry lacks QUESTION", "each value needs QUESTION, CONTEXTS, final_decision"
        )
    contexts = entry.get("CONTEXTS") or []
    if not isinstance(contexts, list):
        raise DataError(path, f"PMID {pmid}: CONTEXTS is not a list", "write CONTEXTS as a list of strings")
    label = str(entry.get("final_decision", ""))
    if label not in spec.labels:
        raise DataError(
            path,
            f"PMID {pmid}: unknown final_decision {label!r}",
            f"use one of {', '.join(spec.labels)}",
        )
    return QaItem(pmid, entry["QUESTION"], " ".join(str(c) for c in contexts), label)


def pubmedqa_split_ids(all_ids: list[str], test_ids: set[str]) -> dict[str, list[str]]:
    """The PMIDs of each split (rules in the module docstring), each list sorted."""
    pool = sorted(i for i in all_ids if i not in test_ids)
    by_hash = sorted(pool, key=lambda i: hashlib.sha256(i.encode()).hexdigest())
    devel = set(by_hash[: len(pool) // 10])
    return {
        "train": [i for i in pool if i not in devel],
        "devel": sorted(devel),
        "test": sorted(i for i in all_ids if i in test_ids),
    }


def load_pubmedqa(path: Path, spec: SourceSpec, split: str) -> list[QaItem]:
    """Reader entry point for ``format="pubmedqa"``."""
    data = load_json(path, "PMID", _DUPLICATE_FIX)
    truth_path = path.parent / TEST_IDS_FILE
    truth = load_json(truth_path, "PMID", _DUPLICATE_FIX)
    if not isinstance(data, dict) or not data:
        raise DataError(
            path, "expected a non-empty JSON object keyed by PMID", "use PubMedQA's ori_pqal.json"
        )
    if not isinstance(truth, dict):
        raise DataError(
            truth_path, "expected a JSON object {PMID: answer}", "use PubMedQA's test_ground_truth.json"
        )
    unknown = sorted(set(truth) - set(data))
    if unknown:
        raise DataError(
            truth_path,
            f"test ids not in {path.name}: {', '.join(unknown[:5])}",
            "use the matching ori_pqal.json",
        )
    ids = pubmedqa_split_ids(list(data), set(truth))[split]
    return [_pubmedqa_item(pmid, data[pmid], spec, path) for pmid in ids]


def load_bioasq_tsv(path: Path, spec: SourceSpec, split: str) -> list[QaItem]:
    """Reader entry point for ``format="bioasq_tsv"``."""
    items: list[QaItem] = []
    for number, line in lines(path):
        if not line.strip():
            continue
        fields = line.split("\t")
        if number == 1 and [f.strip() for f in fields] == _BIOASQ_HEADER:
            continue
        if len(fields) != 3:
            raise DataError(
                path,
                f"expected 3 tab-separated columns, found {len(fields)}",
                "write yesno_label<TAB>question<TAB>ideal_answer",
                number,
            )
        raw = fields[0].strip()
        label = _BIOASQ_LABELS.get(raw, raw)
        check_label(label, spec.labels, path, number)
        items.append(QaItem(f"{path.stem}:{len(items)}", fields[1].strip(), fields[2].strip(), label))
    if not items:
        raise DataError(
            path,
            "file has no rows",
            "restore the file: expected yesno_label<TAB>question<TAB>ideal_answer rows",
        )
    return items

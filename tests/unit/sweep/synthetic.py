"""Synthetic sweep data for the tests: eval output directories in the real format, and cells pointing at them.

An eval output directory holds ``report.json`` (rows with source, split, kind, n, metric, score, reducer) and
``predictions/<source>__<split>.jsonl`` (rows with id, reference, prediction, parse_ok, unit, stats), as
``biotune eval`` writes them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from biotune.eval.example_stats import metric_from_stats, sum_stats
from biotune.sweep.results import CellResult

KINDS = {"f1": "ner", "accuracy": "cls", "mean": "qa"}
HEADLINES = {"f1": "f1", "accuracy": "accuracy", "mean": "f1"}


def ner_rows(
    source: str,
    split: str,
    n_docs: int,
    per_doc: int,
    recall: float,
    rng: np.random.Generator,
    doc_effects: np.ndarray | None = None,
) -> list[dict[str, Any]]:
    """Sentence rows of an NER set grouped in documents; each sentence has 2 gold entities.

    ``doc_effects`` (one number per document, added to ``recall``) makes sentences of a document correlated.
    """
    rows = []
    for d in range(n_docs):
        p = float(np.clip(recall + (0.0 if doc_effects is None else doc_effects[d]), 0.0, 1.0))
        for s in range(per_doc):
            tp = int(rng.binomial(2, p))
            fp = int(rng.random() < 0.1)
            rid = f"d{d}.s{s}"
            rows.append(
                {
                    "id": f"{source}/{split}/{rid}",
                    "reference": [["Disease", 0, 1]] * 2,
                    "prediction": [["Disease", 0, 1]] * (tp + fp),
                    "parse_ok": True,
                    "unit": f"d{d}",
                    "stats": {"tp": tp, "fp": fp, "fn": 2 - tp},
                }
            )
    return rows


def cls_rows(
    source: str, split: str, n: int, accuracy: float, rng: np.random.Generator
) -> list[dict[str, Any]]:
    """Rows of a classification set (one unit per example)."""
    rows = []
    for i in range(n):
        ok = bool(rng.random() < accuracy)
        eid = f"{source}/{split}/{i}"
        rows.append(
            {
                "id": eid,
                "reference": "yes",
                "prediction": "yes" if ok else "no",
                "parse_ok": bool(rng.random() < 0.95),
                "unit": eid,
                "stats": {"correct": int(ok), "n": 1},
            }
        )
    return rows


def write_eval_dir(path: Path, sets: Mapping[str, tuple[str, Sequence[Mapping[str, Any]]]]) -> Path:
    """Write an eval output directory: ``sets`` maps ``source/split`` -> (reducer, prediction rows)."""
    (path / "predictions").mkdir(parents=True, exist_ok=True)
    report_rows = []
    for name, (reducer, rows) in sets.items():
        source, split = name.split("/")
        with (path / "predictions" / f"{source}__{split}.jsonl").open("w", encoding="utf-8") as fh:
            fh.writelines(json.dumps(r) + "\n" for r in rows)
        score = float(metric_from_stats(reducer, sum_stats(r["stats"] for r in rows)))
        report_rows.append(
            {
                "dataset": name,
                "source": source,
                "split": split,
                "kind": KINDS[reducer],
                "n": len(rows),
                "metric": HEADLINES[reducer],
                "score": round(100 * score, 2),
                "reducer": reducer,
            }
        )
    (path / "report.json").write_text(json.dumps({"meta": {}, "rows": report_rows}), encoding="utf-8")
    return path


def make_cell(
    root: Path,
    variant: str,
    seed: int,
    sets: Mapping[str, tuple[str, Sequence[Mapping[str, Any]]]] | None,
    *,
    axis: str = "base",
    axis_value: str | float | None = None,
    control_for: str | None = None,
    state: str = "done",
    weights: Mapping[str, float] | None = None,
    groups: Mapping[str, str] | None = None,
    budget: Mapping[str, Mapping[str, float]] | None = None,
) -> CellResult:
    """A cell of ``variant`` (the base when ``axis == "base"``) whose eval dir holds ``sets``."""
    name = f"{variant}-s{seed}"
    eval_dir = write_eval_dir(root / name / "eval", sets) if sets is not None else None
    weights = dict(weights or {"ncbi": 0.5, "hoc": 0.5})
    budget = {
        k: dict(v)
        for k, v in (
            budget
            or {s: {"samples": 1000 * w, "tokens": 50_000 * w, "epochs": 1.0} for s, w in weights.items()}
        ).items()
    }
    return CellResult(
        name=name,
        variant=variant,
        seed=seed,
        axis=axis,
        axis_value=axis_value,
        is_base=axis == "base",
        control_for=control_for,
        state=state,
        log_path=str(root / name / "log.txt") if state != "done" else None,
        budget=budget,
        weights=weights,
        groups=dict(groups or {"ncbi": "ner", "hoc": "cls"}),
        eval_dir=eval_dir,
    )

"""Reports: a per-dataset table (markdown + JSON) beside published numbers, run comparisons, wandb.

A report row per evaluated set holds precision, recall, F1 or accuracy, the parse-failure rate and the
generation throughput, plus the published reference scores from ``baselines.json`` for that source. Each
published number records the split it was measured on (``dev`` or ``test``, compared by role: ``devel``,
``dev`` and ``validation`` are all ``dev``); a row of another split shows it only with a marker and a footnote
(``87.18†``, "† published on the dev split; this row is a test split").
``compare`` puts several runs' ``report.json`` side by side with deltas against the first run.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from biotune.config import TrackingConfig
from biotune.errors import DataError, shown
from biotune.eval.layout import (
    PREDICTIONS_FILE,
    REPORT_JSON,
    REPORT_MD,
    parse_set_label,
    predictions_path,
    set_label,
)
from biotune.eval.score import SetScore
from biotune.io import atomic_write_text, read_json, staged_files, write_jsonl
from biotune.sources.splits import role_name, role_of
from biotune.train.metric_names import eval_metric
from biotune.train.tracking import open_run

log = logging.getLogger(__name__)

BASELINES_PATH = Path(__file__).resolve().parent / "baselines.json"


def load_baselines(path: Path = BASELINES_PATH) -> dict[str, Any]:
    """The published reference numbers, with their sources (see ``baselines.json``)."""
    return json.loads(path.read_text(encoding="utf-8"))


def baseline_models(baselines: dict[str, Any]) -> list[str]:
    """Model names in the order the baselines file lists them."""
    return list(baselines["models"])


def baselines_for(
    source: str, baselines: dict[str, Any], split: str | None = None
) -> dict[str, dict[str, Any]]:
    """Published scores for ``source``: model -> {metric, value, split}, plus ``same_split`` (whether the number
    was measured on a split of ``split``'s role) when ``split`` is given; where a model has numbers for several
    splits, the one of ``split``'s role wins. ``split`` is None in an entry whose split the file does not state.
    """
    out: dict[str, dict[str, Any]] = {}
    for r in baselines["results"]:
        if r["source"] != source:
            continue
        entry: dict[str, Any] = {"metric": r["metric"], "value": r["value"], "split": r.get("split")}
        if r.get("note"):
            entry["note"] = r["note"]
        if split is not None:
            published = entry["split"]
            entry["same_split"] = published is not None and role_name(published) == role_name(split)
        kept = out.get(r["model"])
        if kept is None or (not kept.get("same_split") and entry.get("same_split")):
            out[r["model"]] = entry
    return out


def report_rows(scores: Sequence[SetScore], baselines: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """One JSON-ready row per evaluated set, scores in percent, with the published numbers beside them."""
    baselines = load_baselines() if baselines is None else baselines
    rows = []
    for s in scores:
        m = s.metrics
        accuracy_task = s.headline == "accuracy"
        row: dict[str, Any] = {
            "dataset": set_label(s.source, s.split),
            "source": s.source,
            "split": s.split,
            "role": _role(s.split),
            "kind": s.kind,
            "n": s.n,
            "metric": s.headline,
            "reducer": s.reducer,
            "score": _pct(m.get(s.headline)),
            "precision": None if accuracy_task else _pct(m.get("precision")),
            "recall": None if accuracy_task else _pct(m.get("recall")),
            "f1": _pct(m.get("macro_f1") if accuracy_task else m.get(s.headline)),
            "accuracy": _pct(m.get("accuracy")),
            "parse_failures": s.parse_failures,
            "parse_failure_rate": _pct(s.parse_failure_rate),
            "tokens_per_second": round(s.tokens_per_second, 1) if s.tokens_per_second is not None else None,
            "published": baselines_for(s.source, baselines, s.split),
        }
        rows.append(row)
    return rows


def _role(split: str) -> str | None:
    """A row's ``role``: ``train``, ``dev`` (selection) or ``test``; None for a split outside the vocabulary."""
    role = role_of(split)
    return None if role is None else role.value


def _pct(value: float | None) -> float | None:
    return None if value is None else round(100.0 * value, 2)


def _cell(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


#: Markers for a published number measured on another split than its row's, one per (published, row) pair.
SPLIT_MARKERS = ("†", "‡", "§", "¶", "‖")


def to_markdown(rows: Sequence[dict[str, Any]], baselines: dict[str, Any] | None = None) -> str:
    """The report as a markdown table; published columns only for models with a number in these rows.

    ``F1`` is the headline F1 (micro for RE, BLURB micro for HoC) or, for accuracy tasks, the macro-F1. A
    published number measured on another split than the row's carries a marker (``†``) whose footnote names
    both splits.
    """
    baselines = load_baselines() if baselines is None else baselines
    models = [m for m in baseline_models(baselines) if any(m in r["published"] for r in rows)]
    head = ["dataset", "n", "metric", "P", "R", "F1", "Acc", "parse fail %", "tok/s"] + models
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    mismatches: dict[str, str] = {}  # footnote -> marker
    notes: dict[str, None] = {}
    for r in rows:
        values = [
            r["dataset"],
            r["n"],
            r["metric"],
            r["precision"],
            r["recall"],
            r["f1"],
            r["accuracy"],
            r["parse_failure_rate"],
            r["tokens_per_second"],
        ]
        cells = [_cell(v) for v in values] + [
            _published_cell(r, r["published"].get(m), mismatches) for m in models
        ]
        lines.append("| " + " | ".join(cells) + " |")
        notes.update({f"{r['source']}: {p['note']}": None for p in r["published"].values() if p.get("note")})
    footer = [
        "",
        "Scores in percent. P/R/F1: entity-level micro (NER), micro without the negative class (RE; "
        "i2b2-2010 keeps it; GAD/EU-ADR binary), BLURB micro over document x label (HoC); for accuracy "
        "tasks F1 is the macro-F1.",
    ]
    if mismatches:
        footer += ["", *(f"{marker} {text}" for text, marker in mismatches.items())]
    if models:
        footer += ["", "Published numbers:"] + [f"- {m}: {baselines['models'][m]['source']}" for m in models]
        footer += [f"- {note}" for note in notes]
    return "\n".join(lines + footer) + "\n"


def _published_cell(row: dict[str, Any], published: dict[str, Any] | None, marks: dict[str, str]) -> str:
    """A published number; with the marker of its footnote when it was measured on another split than the
    row's (or on a split ``baselines.json`` does not state; entries of reports written before the splits were
    recorded have no ``same_split`` and read as not stated)."""
    if published is None:
        return _cell(None)
    if published.get("same_split"):
        return _cell(published["value"])
    split = published.get("split")
    row_role = role_name(row.get("split") or parse_set_label(str(row["dataset"]))[1])
    text = (
        f"published on the {role_name(split)} split; this row is a {row_role} split."
        if split and "same_split" in published
        else f"published split not stated; this row is a {row_role} split."
    )
    if text not in marks:
        marks[text] = SPLIT_MARKERS[len(marks) % len(SPLIT_MARKERS)] * (1 + len(marks) // len(SPLIT_MARKERS))
    return f"{_cell(published['value'])}{marks[text]}"


def write_set_predictions(out_dir: str | Path, details: dict[str, list[dict[str, Any]]]) -> None:
    """Write each set's per-example rows (``details`` keyed by ``"<source>/<split>"``)."""
    for dataset, rows in details.items():
        source, split = parse_set_label(dataset)
        write_jsonl(predictions_path(out_dir, source, split), rows)


def write_outputs(
    out_dir: str | Path,
    scores: Sequence[SetScore],
    details: dict[str, list[dict[str, Any]]],
    meta: dict[str, Any],
    completions: dict[str, str] | None = None,
) -> list[dict[str, Any]]:
    """Write an evaluation's outputs into ``out_dir`` as one set; returns the report rows.

    ``predictions.jsonl`` (``completions``: id -> completion, when given), each set's per-example predictions
    (``details``) and the report are written into a staging directory first and moved in only when all are
    written (:func:`biotune.io.staged_files`): a full disk leaves the previous outputs (or none), never new
    predictions beside an old report.

    Raises:
        DataError: naming ``out_dir``, the file that could not be written and what to free.
    """
    with staged_files(out_dir) as stage:
        if completions is not None:
            write_jsonl(
                stage / PREDICTIONS_FILE, [{"id": i, "completion": c} for i, c in completions.items()]
            )
        write_set_predictions(stage, details)
        return write_report(stage, scores, meta)


def write_report(out_dir: Path, scores: Sequence[SetScore], meta: dict[str, Any]) -> list[dict[str, Any]]:
    """Write ``report.json`` (rows, raw metrics, run metadata) and ``report.md``; returns the rows."""
    baselines = load_baselines()
    rows = report_rows(scores, baselines)
    payload = {"meta": meta, "rows": rows, "scores": [s.to_dict() for s in scores]}
    atomic_write_text(out_dir / REPORT_JSON, json.dumps(payload, indent=2, sort_keys=False) + "\n")
    markdown = to_markdown(rows, baselines) + unscored_markdown(meta.get("unscored_rows") or {})
    atomic_write_text(out_dir / REPORT_MD, markdown)
    return rows


def unscored_markdown(unscored: dict[str, dict[str, Any]]) -> str:
    """The rows read but not scored (``meta.unscored_rows``: instruction set -> ``Unscored.to_dict()``), one
    line per unmapped source value and per unparsable row with its id and reason; empty when there are none."""
    lines = []
    for key, entry in unscored.items():
        if not entry.get("rows"):
            continue
        lines.append(f"- {key}: {entry['rows']} row(s) not scored")
        for value, n in sorted(entry.get("unmapped", {}).items()):
            lines.append(f"  - {n} row(s) of source {value or '(empty)'!r}: the source maps to no task")
        for row in entry.get("unparsable", []):
            lines.append(f"  - {row['id']} (source {row['source']!r} -> {row['task']}): {row['reason']}")
    return "\n".join(["", "Rows not scored:", *lines]) + "\n" if lines else ""


#: Keys every row of a ``report.json`` has (what ``compare`` and ``sweep collect`` read).
REPORT_ROW_KEYS = ("dataset", "metric", "score")


def read_report(run: str | Path) -> dict[str, Any]:
    """A run's ``report.json`` (``run`` is the run directory or the file itself), checked for its shape.

    Raises:
        DataError: naming the file (and line or row) when it is missing, not UTF-8 JSON, or not a report:
            an object whose ``rows`` list holds objects with ``dataset``, ``metric`` and a numeric/null ``score``.
    """
    path = Path(run)
    path = path / REPORT_JSON if path.is_dir() else path
    fix = "pass a directory written by `biotune eval` (it holds report.json), or re-run `biotune eval` for this run"
    if not path.is_file():
        raise DataError(path, "no evaluation report here", fix)
    report = read_json(path, fix)
    rows = report.get("rows") if isinstance(report, dict) else None
    if not isinstance(rows, list):
        raise DataError(path, "not a biotune evaluation report (expected an object with a 'rows' list)", fix)
    for i, row in enumerate(rows):
        missing = [k for k in REPORT_ROW_KEYS if not isinstance(row, dict) or k not in row]
        if missing:
            raise DataError(path, f"report row {i} lacks {', '.join(missing)}", fix)
        score = row["score"]
        if (
            not isinstance(row["dataset"], str)
            or not isinstance(row["metric"], str)
            or not (score is None or isinstance(score, (int, float)) and not isinstance(score, bool))
        ):
            raise DataError(
                path,
                f"report row {i} has a non-text dataset/metric or a non-numeric score "
                f"({row['dataset']!r}, {row['metric']!r}, {score!r})",
                fix,
            )
    return report


def compare(runs: Sequence[str | Path]) -> tuple[str, dict[str, Any]]:
    """One table of several runs' headline scores, with each later run's delta to the first.

    Returns the markdown table and the same data as a dict.
    """
    reports = [(str(r), read_report(r)) for r in runs]
    names = _run_names([r for r, _ in reports])
    _check_same_metrics(reports)
    datasets: dict[str, str] = {}
    values: dict[str, dict[str, float | None]] = {}
    for name, (_, rep) in zip(names, reports, strict=True):
        for row in rep["rows"]:
            datasets.setdefault(row["dataset"], row["metric"])
            values.setdefault(row["dataset"], {})[name] = row["score"]
    head = ["dataset", "metric", names[0]] + [f"{n} (Δ)" for n in names[1:]]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    table: dict[str, Any] = {"runs": [r for r, _ in reports], "rows": []}
    for dataset, metric in datasets.items():
        base = values[dataset].get(names[0])
        cells = [dataset, metric, _cell(base)]
        entry: dict[str, Any] = {"dataset": dataset, "metric": metric, "scores": {}, "deltas": {}}
        entry["scores"][names[0]] = base
        for n in names[1:]:
            v = values[dataset].get(n)
            delta = round(v - base, 2) if v is not None and base is not None else None
            cells.append(f"{_cell(v)} ({'+' if delta is not None and delta >= 0 else ''}{_cell(delta)})")
            entry["scores"][n], entry["deltas"][n] = v, delta
        lines.append("| " + " | ".join(cells) + " |")
        table["rows"].append(entry)
    return "\n".join(lines) + "\n", table


def _check_same_metrics(reports: Sequence[tuple[str, dict[str, Any]]]) -> None:
    """Every set scored by one metric in all the reports; a score is never subtracted from another metric's.

    Raises:
        DataError: naming the first report that differs, each set whose metric differs and both metrics.
    """
    first: dict[str, tuple[str, str]] = {}  # dataset -> (metric, run)
    for run, rep in reports:
        clashes = []
        for row in rep["rows"]:
            metric, (known, where) = row["metric"], first.setdefault(row["dataset"], (row["metric"], run))
            if metric != known:
                clashes.append(
                    f"{shown(row['dataset'])} is scored by {shown(metric)} here, by {shown(known)} in {where}"
                )
        if clashes:
            path = Path(run) / REPORT_JSON if Path(run).is_dir() else Path(run)
            raise DataError(
                path,
                "; ".join(clashes) + ": scores of different metrics are not compared",
                "compare runs that score each set by the same metric (re-score a predictions file with "
                "`biotune eval score PREDICTIONS --out DIR` under the same version and config)",
            )


def _run_names(runs: Sequence[str]) -> list[str]:
    """Short column names for runs: the directory name, made unique with ``#k`` where names repeat."""
    names: list[str] = []
    for run in runs:
        base = Path(run).name or run
        name, k = base, 2
        while name in names:
            name, k = f"{base}#{k}", k + 1
        names.append(name)
    return names


def log_to_wandb(
    rows: Sequence[dict[str, Any]],
    predictions: dict[str, list[dict[str, Any]]],
    *,
    tracking: TrackingConfig,
    run_name: str,
    out_dir: Path,
    upload_predictions: bool,
    restricted: set[str],
) -> None:
    """Log the report as a wandb table, each set's headline score in the run summary (and per-example
    predictions only when allowed), in the training run's wandb group with ``job_type=eval``.

    Predictions are uploaded only when ``upload_predictions`` is true, and never for restricted sources.
    """
    if tracking.wandb_mode == "disabled":
        return
    import wandb

    run = open_run(
        tracking,
        name=run_name,
        out_dir=out_dir,
        job_type="eval",
        group=tracking.group,
        config=dict(tracking.run_config),
        tags=True,
    )
    try:
        cols = [
            "dataset",
            "n",
            "metric",
            "score",
            "precision",
            "recall",
            "f1",
            "accuracy",
            "parse_failure_rate",
            "tokens_per_second",
        ]
        run.log({"eval/report": wandb.Table(columns=cols, data=[[r[c] for c in cols] for r in rows])})
        scores = {
            eval_metric(r["source"], r["split"], r["metric"]): r["score"]
            for r in rows
            if r["score"] is not None
        }
        run.log(scores)
        run.summary.update(scores)
        if upload_predictions:
            for dataset, preds in predictions.items():
                if parse_set_label(dataset)[0] in restricted:
                    log.info("not uploading predictions of restricted source %s", dataset)
                    continue
                pcols = ["id", "completion", "prediction", "reference", "parse_ok"]
                run.log(
                    {
                        f"eval/predictions/{dataset}": wandb.Table(
                            columns=pcols,
                            data=[
                                [json.dumps(p[c]) if isinstance(p[c], list) else p[c] for c in pcols]
                                for p in preds
                            ],
                        )
                    }
                )
    finally:
        run.finish()

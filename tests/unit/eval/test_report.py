"""Report tables beside the published numbers, the baselines file, and run comparison."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from biotune.errors import DataError
from biotune.eval import report
from biotune.eval.score import SetScore
from biotune.sources import SOURCES


def _scores(f1: float) -> list[SetScore]:
    return [
        SetScore(
            "ncbi_disease",
            "test",
            "ner",
            940,
            47,
            "f1",
            {"precision": 0.8, "recall": f1, "f1": f1, "untyped_f1": 0.9},
            tokens_per_second=123.456,
        ),
        SetScore("pubmedqa", "test", "qa", 500, 0, "accuracy", {"accuracy": 0.5, "macro_f1": 0.4}),
    ]


def test_baselines_file_names_its_sources_and_known_datasets() -> None:
    data = report.load_baselines()
    assert data["results"]
    for row in data["results"]:
        assert row["model"] in data["models"], row
        assert row["source"] in SOURCES, row
        assert row["metric"] in ("f1", "micro_f1", "accuracy") and 0 < row["value"] <= 100
        assert row["split"] in ("dev", "test"), row
    for model, info in data["models"].items():
        assert info["source"] and info["citation"], model
    wanted = {"BioBERT", "PubMedBERT", "BioLinkBERT-large", "Llama2-MedTuned-7B", "Llama2-MedTuned-13B"}
    assert wanted <= set(data["models"])
    assert report.baselines_for("ncbi_disease", data)["Llama2-MedTuned-7B"]["value"] == 87.18


def test_report_rows_show_scores_failures_throughput_and_published_numbers() -> None:
    rows = report.report_rows(_scores(0.85))
    ncbi, qa = rows
    assert ncbi["dataset"] == "ncbi_disease/test" and ncbi["score"] == 85.0 and ncbi["precision"] == 80.0
    assert ncbi["parse_failure_rate"] == 5.0 and ncbi["tokens_per_second"] == 123.5
    assert ncbi["published"]["BioBERT"] == {
        "metric": "f1",
        "value": 88.62,
        "split": "test",
        "same_split": True,
    }
    assert (
        qa["accuracy"] == 50.0
        and qa["f1"] == 40.0
        and qa["precision"] is None
        and qa["published"]["BioLinkBERT-large"]["value"] == 72.2
    )
    md = report.to_markdown(rows)
    header = md.splitlines()[0]
    assert "parse fail %" in header and "tok/s" in header and "BioBERT" in header and "PubMedBERT" in header
    assert "| ncbi_disease/test | 940 | f1 | 80.00 | 85.00 | 85.00 | – | 5.00 | 123.50 |" in md
    assert "arXiv:2401.00579" in md


def test_write_report_and_compare_runs_with_deltas(tmp_path: Path) -> None:
    report.write_report(tmp_path / "run_a", _scores(0.80), {"model": "a"})
    report.write_report(tmp_path / "run_b", _scores(0.8525), {"model": "b"})
    saved = json.loads((tmp_path / "run_a" / "report.json").read_text())
    assert saved["meta"] == {"model": "a"} and saved["scores"][0]["parse_failures"] == 47
    assert (tmp_path / "run_a" / "report.md").read_text().startswith("| dataset |")
    assert not list(tmp_path.rglob(".*tmp*"))  # written through a rename, nothing left behind
    table, data = report.compare([tmp_path / "run_a", tmp_path / "run_b"])
    assert "| ncbi_disease/test | f1 | 80.00 | 85.25 (+5.25) |" in table
    assert "| pubmedqa/test | accuracy | 50.00 | 50.00 (+0.00) |" in table
    assert data["rows"][0]["deltas"]["run_b"] == pytest.approx(5.25)


def test_compare_rejects_a_directory_without_report(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no evaluation report here"):
        report.compare([tmp_path, tmp_path])


def test_compare_never_subtracts_scores_of_different_metrics(tmp_path: Path) -> None:
    """A set scored by F1 in one run and by accuracy in another is named with both metrics, never diffed;
    the third run that agrees with the first is fine, and the sets that agree in every run are not blamed."""
    report.write_report(tmp_path / "a", _scores(0.80), {})
    report.write_report(tmp_path / "b", _scores(0.85), {})
    other = _scores(0.85)
    other[0] = SetScore("ncbi_disease", "test", "ner", 940, 0, "accuracy", {"accuracy": 0.9})
    report.write_report(tmp_path / "c", other, {})
    assert report.compare([tmp_path / "a", tmp_path / "b"])[1]["rows"][0]["deltas"]["b"] == pytest.approx(5.0)
    with pytest.raises(DataError) as err:
        report.compare([tmp_path / "a", tmp_path / "b", tmp_path / "c"])
    text = str(err.value)
    assert text.startswith(f"{tmp_path / 'c' / 'report.json'}: ncbi_disease/test is scored by accuracy here")
    assert f"by f1 in {tmp_path / 'a'}" in text and "pubmedqa" not in text

"""Published numbers sit beside the split they were measured on: a test row and a devel row of one source.

Llama2-MedTuned's NER numbers were measured on the devel splits, BioBERT's and BLURB's on test: beside a test row
the Llama2-MedTuned number carries a marker and a footnote, beside a devel row the BioBERT one does.
"""

from __future__ import annotations

import json
from pathlib import Path

from biotune.eval import report
from biotune.eval.score import SetScore
from biotune.sources.splits import role_name


def _ner(split: str, n: int) -> SetScore:
    return SetScore("ncbi_disease", split, "ner", n, 0, "f1", {"precision": 0.8, "recall": 0.8, "f1": 0.8})


def _rows() -> dict[str, dict]:
    scores = [
        _ner("test", 940),
        _ner("devel", 923),
        SetScore("mednli", "dev", "nli", 1395, 0, "accuracy", {"accuracy": 0.8, "macro_f1": 0.8}),
    ]
    return {r["dataset"]: r for r in report.report_rows(scores)}


def test_every_published_number_records_a_split_and_the_decided_ones_hold() -> None:
    data = report.load_baselines()
    splits = {(r["model"], r["source"]): r["split"] for r in data["results"]}
    assert set(splits.values()) <= {"dev", "test"}
    for source in ("ncbi_disease", "bc5cdr_chem", "bc5cdr_disease", "bc2gm", "jnlpba"):
        assert splits[("Llama2-MedTuned-7B", source)] == splits[("Llama2-MedTuned-13B", source)] == "dev"
        assert splits[("BioBERT", source)] == "test"
    assert splits[("Llama2-MedTuned-13B", "mednli")] == "dev"
    assert all(
        s == "test" for (model, _), s in splits.items() if model in ("PubMedBERT", "BioLinkBERT-large")
    )


def test_split_roles_compare_corpus_spellings() -> None:
    assert [role_name(s) for s in ("devel", "dev", "validation", "valid", "test", "fold3_test")] == [
        "dev",
        "dev",
        "dev",
        "dev",
        "test",
        "fold3_test",
    ]


def test_report_json_rows_say_which_published_numbers_share_the_rows_split() -> None:
    rows = _rows()
    test, devel = rows["ncbi_disease/test"]["published"], rows["ncbi_disease/devel"]["published"]
    assert test["BioBERT"] == {"metric": "f1", "value": 88.62, "split": "test", "same_split": True}
    assert test["Llama2-MedTuned-7B"] == {"metric": "f1", "value": 87.18, "split": "dev", "same_split": False}
    assert devel["Llama2-MedTuned-7B"]["same_split"] and not devel["BioBERT"]["same_split"]
    # MedNLI spells its development split 'dev', the paper's number is 'dev': the same role
    mednli = rows["mednli/dev"]["published"]
    assert mednli["Llama2-MedTuned-13B"]["same_split"] and not mednli["BioClinicalBERT"]["same_split"]


def test_markdown_marks_a_number_from_another_split_and_explains_it() -> None:
    rows = _rows()
    md = report.to_markdown(list(rows.values()))
    header = md.splitlines()[0].strip("| ").split(" | ")
    table = {
        line.split(" | ")[0].strip("| "): line.strip("| ").split(" | ")
        for line in md.splitlines()
        if line.startswith("| ncbi") or line.startswith("| mednli")
    }
    col = {name: header.index(name) for name in ("BioBERT", "Llama2-MedTuned-7B", "Llama2-MedTuned-13B")}
    test, devel = table["ncbi_disease/test"], table["ncbi_disease/devel"]
    assert test[col["BioBERT"]] == "88.62" and devel[col["Llama2-MedTuned-7B"]] == "87.18"
    assert test[col["Llama2-MedTuned-7B"]] == "87.18†" and test[col["Llama2-MedTuned-13B"]] == "85.69†"
    assert devel[col["BioBERT"]] == "88.62‡"
    assert table["mednli/dev"][col["Llama2-MedTuned-13B"]] == "89.46"
    assert "† published on the dev split; this row is a test split." in md
    assert "‡ published on the test split; this row is a dev split." in md
    assert md.count("‡ published") == 1  # one footnote per pair of roles (devel and dev rows share it)


def test_only_matching_rows_get_no_marker_and_no_footnote() -> None:
    md = report.to_markdown(report.report_rows([_ner("test", 940)]), report.load_baselines())
    assert "88.62 |" in md and "87.18†" in md
    baselines = report.load_baselines()
    baselines["results"] = [r for r in baselines["results"] if r["model"] == "BioBERT"]
    clean = report.to_markdown(report.report_rows([_ner("test", 940)], baselines), baselines)
    assert "†" not in clean and "published on" not in clean


def test_a_model_with_numbers_on_both_splits_shows_each_beside_its_own_row() -> None:
    baselines = report.load_baselines()
    baselines["results"].append(
        {"model": "BioBERT", "source": "ncbi_disease", "metric": "f1", "value": 90.0, "split": "dev"}
    )
    rows = {r["dataset"]: r for r in report.report_rows([_ner("test", 940), _ner("devel", 923)], baselines)}
    assert rows["ncbi_disease/test"]["published"]["BioBERT"]["value"] == 88.62
    assert rows["ncbi_disease/devel"]["published"]["BioBERT"] == {
        "metric": "f1",
        "value": 90.0,
        "split": "dev",
        "same_split": True,
    }


def test_reports_written_before_splits_were_recorded_still_read_and_render(tmp_path: Path) -> None:
    """An older report.json (published entries without split) is read by ``read_report`` (what ``compare`` and
    ``sweep collect`` use) and renders with a 'split not stated' marker instead of a silent number."""
    report.write_report(tmp_path / "run", [_ner("test", 940)], {"model": "a"})
    path = tmp_path / "run" / "report.json"
    payload = json.loads(path.read_text())
    for row in payload["rows"]:
        row["published"] = {
            m: {"metric": p["metric"], "value": p["value"]} for m, p in row["published"].items()
        }
    path.write_text(json.dumps(payload))
    old = report.read_report(tmp_path / "run")
    assert old["rows"][0]["source"] == "ncbi_disease" and old["rows"][0]["reducer"] is None
    md = report.to_markdown(old["rows"])
    assert "88.62†" in md and "published split not stated; this row is a test split." in md
    table, _ = report.compare([tmp_path / "run", tmp_path / "run"])
    assert "| ncbi_disease/test | f1 | 80.00 |" in table

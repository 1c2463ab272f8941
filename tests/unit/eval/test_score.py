"""Evaluation sets from the bundled sample corpus, predictions files, and scoring completions through the task
parsers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from biotune.data.tasks import task_for
from biotune.errors import ConfigError, DataError
from biotune.eval import score as sc
from biotune.eval.sets import resolve_split
from biotune.sources import SAMPLE_ROOT, SOURCES


def _write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def ncbi() -> sc.EvalSet:
    """The NCBI-disease test split of the bundled sample corpus as an evaluation set."""
    return sc.build_eval_set("ncbi_disease", "test", SAMPLE_ROOT)


def test_eval_set_ids_are_sample_ids_of_the_split(ncbi: sc.EvalSet) -> None:
    assert len(ncbi.samples) == len(ncbi.records) > 3 and len(set(ncbi.ids)) == len(ncbi.ids)
    assert all(i == f"ncbi_disease/test/{r.id}" for i, r in zip(ncbi.ids, ncbi.records, strict=True))
    assert all(s.instruction and s.input for s in ncbi.samples)
    first = sc.build_eval_set("ncbi_disease", "test", SAMPLE_ROOT, max_examples=3)
    assert first.ids == ncbi.ids[:3] and first.samples == ncbi.samples[:3]  # the first N, prompts unchanged


def test_dev_resolves_to_the_corpus_spelling_and_missing_dev_split_is_an_error() -> None:
    assert resolve_split(SOURCES["ncbi_disease"], "dev") == "devel"
    assert resolve_split(SOURCES["chemprot"], "dev") == "dev"
    assert resolve_split(SOURCES["bc2gm"], "test") == "test"  # the official test file: a known split
    with pytest.raises(ConfigError, match="'gad' has no 'dev' split") as err:
        resolve_split(SOURCES["gad"], "dev")
    assert err.value.problems[0].key == "eval.splits"


def test_gold_completions_score_perfectly_and_parse_cleanly(ncbi: sc.EvalSet) -> None:
    result, rows = sc.score_set(ncbi, {s.id: s.output for s in ncbi.samples})
    assert result.metrics["f1"] == 1.0 and result.parse_failures == 0
    assert result.headline == "f1" and result.to_dict()["score"] == 1.0
    assert rows[0]["reference"] == list(ncbi.records[0].tags) and rows[0]["parse_ok"]


def test_repeated_tokens_with_different_tags_are_scored_by_position(tmp_path: Path) -> None:
    # One token text tagged as an entity in one place and O in another (the real NCBI-disease test split has
    # such sentences): a scorer keyed on token text (the paper's) cannot get these right; ours must score them
    # perfectly.
    sentences = [
        ("Patients with colon cancer were screened for cancer risk .", "O O B-Disease I-Disease O O O O O O"),
        (
            "Myotonic dystrophy ( DM ) is caused by the DM kinase gene .",
            "B-Disease I-Disease O B-Disease O O O O O O O O O",
        ),
    ]
    conll = "\n\n".join(
        "\n".join(f"{tok}\t{tag}" for tok, tag in zip(text.split(), tags.split(), strict=True))
        for text, tags in sentences
    )
    (tmp_path / "ncbi_disease" / "iob").mkdir(parents=True)
    (tmp_path / "ncbi_disease" / "iob" / "test.tsv").write_text(conll + "\n", encoding="utf-8")
    repeated = sc.build_eval_set("ncbi_disease", "test", tmp_path)
    assert [r.tags for r in repeated.records] == [tuple(tags.split()) for _, tags in sentences]
    result, _ = sc.score_set(repeated, {s.id: s.output for s in repeated.samples})
    assert result.metrics["f1"] == 1.0 and result.parse_failures == 0


def test_noisy_llm_output_is_tolerated_and_failures_are_counted() -> None:
    qa = sc.build_eval_set("pubmedqa", "test", SAMPLE_ROOT)
    n = len(qa.samples)
    assert n > 4
    completions = {}
    for k, s in enumerate(qa.samples):
        if k < 3:
            completions[s.id] = "I am not sure what you mean."  # unparsable
        elif k % 2:
            completions[s.id] = (
                f"  Answer:\n{s.output.upper()}  \nThis is my reasoning."  # prose + case noise
            )
        else:
            completions[s.id] = s.output
    result, rows = sc.score_set(qa, completions)
    assert result.parse_failures == 3 and result.parse_failure_rate == pytest.approx(3 / n)
    assert [r["parse_ok"] for r in rows[:4]] == [False, False, False, True]
    assert rows[0]["parse_error"]
    assert result.n == n  # failures are scored, not dropped
    assert result.metrics["accuracy"] == pytest.approx((n - 3) / n)  # every noisy-but-right answer counts


@pytest.mark.parametrize(
    ("source", "headline"),
    [
        ("ncbi_disease", "f1"),
        ("chemprot", "micro_f1"),
        ("ddi", "micro_f1"),
        ("i2b2_2010_re", "micro_f1_with_negative"),
        ("gad", "f1"),
        ("euadr", "f1"),
        ("mednli", "accuracy"),
        ("pubmedqa", "accuracy"),
        ("bioasq_yesno", "accuracy"),
        ("hoc", "f1"),
    ],
)
def test_headline_metric_follows_blurb_and_paper_conventions(source: str, headline: str) -> None:
    assert task_for(SOURCES[source]).headline == headline


def test_rows_carry_unit_and_stats_and_the_score_its_reducer(ncbi: sc.EvalSet) -> None:
    completions = {s.id: ("colon : O" if k % 3 == 0 else s.output) for k, s in enumerate(ncbi.samples)}
    result, rows = sc.score_set(ncbi, completions)
    assert result.reducer == "f1" and result.to_dict()["reducer"] == "f1"
    keys = {"id", "completion", "prediction", "reference", "parse_ok", "parse_error", "unit", "stats"}
    assert all(set(row) == keys for row in rows)
    assert [
        row["unit"] for row in rows
    ] == ncbi.ids  # CoNLL sentences name no document: the unit is the example
    assert all(set(row["stats"]) == {"tp", "fp", "fn"} for row in rows)
    tp, fp, fn = (sum(row["stats"][k] for row in rows) for k in ("tp", "fp", "fn"))
    assert result.metrics["gold_entities"] == tp + fn and result.metrics["pred_entities"] == tp + fp
    assert 0 < result.metrics["f1"] < 1


def test_read_predictions_rejects_bad_lines_with_file_and_line(tmp_path: Path) -> None:
    bad_json = tmp_path / "bad.jsonl"
    bad_json.write_text('{"id": "a/b/c", "completion": "x"}\n{not json\n')
    with pytest.raises(DataError, match=r"bad.jsonl:2: not valid JSON"):
        sc.read_predictions(bad_json)
    no_field = _write_jsonl(tmp_path / "nofield.jsonl", [{"id": "a/b/c"}])
    with pytest.raises(DataError, match=r"nofield.jsonl:1: .*'completion'"):
        sc.read_predictions(no_field)
    dup = _write_jsonl(
        tmp_path / "dup.jsonl", [{"id": "a/b/c", "completion": "x"}, {"id": "a/b/c", "completion": "y"}]
    )
    with pytest.raises(DataError, match=r"dup.jsonl:2: duplicate id 'a/b/c' \(first on line 1\)"):
        sc.read_predictions(dup)
    with pytest.raises(DataError, match="does not exist"):
        sc.read_predictions(tmp_path / "nope.jsonl")


def test_unknown_and_missing_ids_are_errors(tmp_path: Path, ncbi: sc.EvalSet) -> None:
    rows = [{"id": i, "completion": "O"} for i in ncbi.ids]
    path = _write_jsonl(
        tmp_path / "p.jsonl", rows[:-2] + [{"id": "ncbi_disease/test/nope", "completion": "x"}]
    )
    preds = sc.read_predictions(path)
    with pytest.raises(
        DataError, match=r"1 unknown id\(s\), e.g. ncbi_disease/test/nope; 2 example\(s\) without"
    ):
        sc.load_sets_for_predictions(preds, path, SAMPLE_ROOT, "tags", 1234, None)
    for bad_id, message in (
        ("nosuch/test/1", "unknown source 'nosuch'"),
        ("ncbi_disease/final/1", "no split 'final'"),
        ("no-slashes", "unknown id 'no-slashes'"),
    ):
        bad = _write_jsonl(tmp_path / "bad.jsonl", [{"id": bad_id, "completion": "x"}])
        with pytest.raises(DataError, match=message):
            sc.load_sets_for_predictions(sc.read_predictions(bad), bad, SAMPLE_ROOT, "tags", 1234, None)

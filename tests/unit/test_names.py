"""The one rule for names that become path components (biotune.names), and the write-time check (io.inside)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from biotune import config
from biotune.errors import ConfigError, DataError
from biotune.eval.layout import predictions_path
from biotune.io import inside
from biotune.names import MAX_NAME_LEN, name_problem, safe_name


@pytest.mark.parametrize("name", ["ncbi_disease", "devel", "fold1_train", "lr-2e-05", "scale-gad-x0.5", "a"])
def test_good_names_pass(name: str) -> None:
    assert name_problem("k", name) is None


@pytest.mark.parametrize(
    "name", ["..", ".", "", "../../x", "a/b", "/abs", ".hidden", "-flag", "a b", "a\\b", "é", "a\x00b"]
)
def test_names_that_are_not_one_safe_path_component_fail(name: str) -> None:
    problem = name_problem("data.sources.x", name, "source name")
    assert problem is not None and problem.key == "data.sources.x"
    assert name_problem("k", safe_name(name)) is None, "the suggested fix itself passes"


def test_length_limit() -> None:
    assert name_problem("k", "a" * MAX_NAME_LEN) is None
    problem = name_problem("k", "a" * (MAX_NAME_LEN + 1))
    assert problem is not None and "longer than" in problem.problem
    assert len(problem.problem) < 200, "a long name is not echoed in full"


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("eval.instructions.x.corpus_split=../../../../mydata/train", "eval.instructions.x.corpus_split"),
        ("eval.instructions.x.split=../up", "eval.instructions.x.split"),
        ("eval.splits=[test,../../out]", "eval.splits[1]"),
        ("eval.sources=[..]", "eval.sources[0]"),
        ("data.sources.gad.split=../train", "data.sources.gad.split"),
    ],
)
def test_config_load_names_the_key(override: str, key: str) -> None:
    overrides = ["eval.instructions.x.path=a.jsonl"] if "instructions" in override else []
    with pytest.raises(ConfigError) as err:
        config.load(None, [*overrides, override])
    assert any(p.key == key for p in err.value.problems), str(err.value)


def test_custom_source_and_instruction_set_names(tmp_path: Path) -> None:
    (tmp_path / "run.yaml").write_text(
        "data:\n  custom_sources:\n    '../../..': {kind: ner, format: conll, files: {train: a.tsv}}\n"
        "  instructions:\n    'a/b': {path: x.jsonl}\n  split_files:\n    gad: {'../x': a.tsv}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as err:
        config.load(tmp_path / "run.yaml")
    keys = {p.key for p in err.value.problems}
    assert {"data.custom_sources.../../..", "data.instructions.a/b", "data.split_files.gad.../x"} <= keys, (
        str(err.value)
    )


def test_inside_refuses_escapes_and_links(tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / "predictions").mkdir(parents=True)
    assert inside(out, out / "predictions" / "gad__test.jsonl") == out / "predictions" / "gad__test.jsonl"
    with pytest.raises(DataError, match="outside its output directory"):
        inside(out, out / "predictions" / ".." / ".." / "mydata" / "train.jsonl")
    os.symlink(tmp_path / "elsewhere", out / "predictions" / "link.jsonl")
    with pytest.raises(DataError, match="outside its output directory"):
        inside(out, out / "predictions" / "link.jsonl")


def test_predictions_path_cannot_escape_the_eval_output(tmp_path: Path) -> None:
    """Even if a name slipped past config validation, the write-time check stops it."""
    with pytest.raises(DataError):
        predictions_path(tmp_path, "gad", "../../../../mydata/train")
    assert predictions_path(tmp_path, "gad", "test").parent == tmp_path / "predictions"

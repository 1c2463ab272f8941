"""The eval plan: which sets a config evaluates, each split in the source's spelling with its role; the source
catalogue built once per evaluation; the split vocabulary and the set label."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from biotune import config
from biotune.errors import ConfigError
from biotune.eval import runner
from biotune.eval import sets as eval_sets
from biotune.eval.layout import predictions_path
from biotune.eval.sets import SetRef, plan_sets
from biotune.sources import catalog
from biotune.sources.splits import SplitRole, display_order, parse_set_label, resolve, role_of, set_label


def _cfg(*overrides: str) -> config.RunConfig:
    return config.load(None, ["data.root=@sample", *overrides])


def test_dev_is_planned_in_each_sources_spelling_with_the_selection_role() -> None:
    refs = plan_sets(_cfg("eval.sources=[ncbi_disease,chemprot,hoc]", "eval.splits=[dev,test]"))
    assert refs == [
        SetRef("ncbi_disease", "devel", SplitRole.SELECTION),
        SetRef("ncbi_disease", "test", SplitRole.TEST),
        SetRef("chemprot", "dev", SplitRole.SELECTION),
        SetRef("chemprot", "test", SplitRole.TEST),
        SetRef("hoc", "devel", SplitRole.SELECTION),
        SetRef("hoc", "test", SplitRole.TEST),
    ]
    assert refs[0].label == "ncbi_disease/devel"


def test_empty_eval_sources_plans_the_included_sources_and_every_problem_is_listed() -> None:
    cfg = _cfg("data.sources.gad.weight=1", "data.sources.hoc.weight=1", "data.sources.hoc.include=false")
    assert [r.label for r in plan_sets(cfg)] == ["gad/test"]
    with pytest.raises(ConfigError) as err:
        plan_sets(_cfg("eval.sources=[gad,ncbi_disaese,ddi]", "eval.splits=[dev]"))
    assert [(p.key, p.problem.split("'")[1]) for p in err.value.problems] == [
        ("eval.splits", "gad"),
        ("eval.sources", "ncbi_disaese"),
        ("eval.splits", "ddi"),
    ]
    assert "did you mean ncbi_disease" in err.value.problems[1].fix


def test_an_evaluation_builds_the_source_catalogue_once(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    rows = tmp_path / "rows.jsonl"
    rows.write_text(
        json.dumps({"instruction": "i", "input": "@GENE$ and @DISEASE$", "output": "1", "source": "GAD"})
    )
    cfg = _cfg(
        "eval.sources=[ncbi_disease,hoc]",
        "eval.splits=[dev,test]",
        f"eval.instructions.pub.path={rows}",
        "eval.instructions.pub.split=train",
    )
    calls: list[Any] = []

    def counted(data: Any = None) -> Any:
        calls.append(data)
        return catalog(data)

    monkeypatch.setattr(runner, "catalog", counted)
    monkeypatch.setattr(eval_sets, "catalog", counted)
    built = runner.build_sets(cfg)
    assert [(s.source, s.split) for s in built] == [
        ("ncbi_disease", "devel"),
        ("ncbi_disease", "test"),
        ("hoc", "devel"),
        ("hoc", "test"),
        ("gad", "train"),
    ]
    assert len(calls) == 1


def test_split_vocabulary() -> None:
    assert [role_of(s) for s in ("train", "devel", "dev", "validation", "valid", "test", "fold3_test")] == [
        SplitRole.TRAIN,
        *[SplitRole.SELECTION] * 4,
        SplitRole.TEST,
        None,
    ]
    assert resolve("dev", ["train", "devel", "test"]) == "devel"
    assert resolve("devel", ["train", "dev"]) == "dev"
    assert resolve("validation", ["train", "devel"]) == "devel"
    assert resolve("dev", ["train", "test"]) is None
    assert sorted(["test", "fold2_test", "devel", "train", "dev"], key=display_order) == [
        "dev",
        "devel",
        "test",
        "train",
        "fold2_test",
    ]
    assert parse_set_label(set_label("bc5cdr_chem", "devel")) == ("bc5cdr_chem", "devel")
    with pytest.raises(ValueError, match="not '<source>/<split>'"):
        parse_set_label("ncbi_disease")
    assert predictions_path("out", "ncbi_disease", "devel") == Path(
        "out/predictions/ncbi_disease__devel.jsonl"
    )

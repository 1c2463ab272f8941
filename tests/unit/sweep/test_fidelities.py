"""Fidelities in a sweep: the ``fidelities:`` block, cells per fidelity, the ``spread`` anchors, and the stages.

The stage tests plant per-example predictions (in the real eval format) in the cells of the proxy, so the
anchors chosen from them are known in advance; the real trained two-stage sweep is
``tests/integration/test_sweep_fidelities.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from synthetic import write_eval_dir

from biotune import config
from biotune.errors import ConfigError
from biotune.sweep import runner, stages
from biotune.sweep import variants as vr
from biotune.sweep.fidelity import ALL, ANCHORS_FILE, TARGET, Anchors, anchor_source, cell_name, spread
from biotune.sweep.spec import load_sweep, points
from biotune.sweep.state import CellState, write_record
from biotune.testing.sweeps import write_sweep

SOURCES = ("ncbi_disease", "bc5cdr_chem", "gad", "hoc", "pubmedqa")
AVAILABLE = dict.fromkeys(SOURCES, 50)
LOO = "axes: [{type: leave_one_out, over: source}]\n"
BLOCK = """\
fidelities:
  short: {overrides: [train.max_steps=2], variants: all}
  few: {overrides: [optim.lr=1.0e-4], variants: [loo-source-gad]}
  target: {variants: {anchors: 3, choose: spread}}
"""


def _sweep(tmp: Path, block: str = BLOCK, head: str = "seeds: [0, 1]\n") -> Path:
    return write_sweep(tmp, f"name: fid\nbase: base.yaml\n{head}overrides: [train.log_every=1]\n{LOO}{block}")


# ------------------------------------------------------------------------------------------------ parsing


def test_the_block_parses_into_fidelities_and_anchors(tmp_path: Path) -> None:
    spec = load_sweep(_sweep(tmp_path))
    assert list(spec.fidelities) == ["short", "few", TARGET]
    assert spec.fidelities["short"].overrides == ("train.max_steps=2",)
    assert spec.fidelities["short"].variants == ALL
    assert spec.fidelities["few"].variants == ("loo-source-gad",)
    assert spec.fidelities[TARGET].variants == Anchors(3, "spread", "")
    assert anchor_source(spec.fidelities) == "short"  # empty by: the first fidelity that runs every variant


def test_a_fixed_list_of_anchors_is_a_list(tmp_path: Path) -> None:
    block = "fidelities:\n  short: {variants: all}\n  target: {variants: {anchors: [loo-source-hoc]}}\n"
    spec = load_sweep(_sweep(tmp_path, block))
    assert spec.fidelities[TARGET].variants == ("loo-source-hoc",)


def test_every_problem_of_the_block_is_reported_at_once(tmp_path: Path) -> None:
    block = """\
fidelities:
  short: {overrides: [data.total_samples=10, train.max_stepz=1], variants: [nope]}
  target: {variants: {anchors: 9, by: short}}
"""
    with pytest.raises(ConfigError) as err:
        load_sweep(_sweep(tmp_path, block))
    keys = {p.key for p in err.value.problems}
    assert {
        "fidelities.short.overrides[0]",
        "fidelities.short.overrides[1]",
        "fidelities.short.variants[0]",
        "fidelities.target.variants.anchors",
        "fidelities.target.variants.by",
    } <= keys, err.value
    anchors = next(p for p in err.value.problems if p.key == "fidelities.target.variants.anchors")
    assert "9 anchors, but the sweep has 5 variant(s)" in anchors.problem and "between 1 and 5" in anchors.fix


# ------------------------------------------------------------------------------------------------ cells


def test_without_the_block_cells_are_as_before(tmp_path: Path) -> None:
    spec = load_sweep(_sweep(tmp_path, ""))
    variants = vr.expand(spec, AVAILABLE)
    cells = vr.cells(spec, variants)
    assert spec.fidelities == {}
    assert [c.name for c in cells[:2]] == ["base-s0", "base-s1"] and {c.fidelity for c in cells} == {""}
    assert cells[2].overrides == ("train.log_every=1", *variants[1].overrides, "train.seed=0")


def test_cells_cross_each_fidelity_with_its_variants_and_the_base(tmp_path: Path) -> None:
    spec = load_sweep(_sweep(tmp_path, BLOCK))
    variants = vr.expand(spec, AVAILABLE)
    by_fid: dict[str, list[str]] = {}
    for c in vr.cells(spec, variants):
        by_fid.setdefault(c.fidelity, []).append(c.name)
        assert c.name == cell_name(c.variant, c.seed, c.fidelity) == f"{c.fidelity}.{c.variant}-s{c.seed}"
    assert len(by_fid["short"]) == 6 * 2
    assert by_fid["few"] == ["few.base-s0", "few.base-s1", "few.loo-source-gad-s0", "few.loo-source-gad-s1"]
    assert by_fid[TARGET] == ["target.base-s0", "target.base-s1"]  # anchors not chosen yet: the base only
    cell = next(c for c in vr.cells(spec, variants) if c.name == "few.loo-source-gad-s1")
    gad = next(v for v in variants if v.name == "loo-source-gad")
    # the sweep's overrides, then the fidelity's, then the variant's, then the seed
    assert cell.overrides == ("train.log_every=1", "optim.lr=1.0e-4", *gad.overrides, "train.seed=1")
    chosen = vr.cells(spec, variants, anchors=["loo-source-hoc", "loo-source-gad"])
    target = [c.name for c in chosen if c.fidelity == TARGET]
    assert target == [
        f"target.{v}-s{s}" for v in ("base", "loo-source-gad", "loo-source-hoc") for s in (0, 1)
    ]


# ------------------------------------------------------------------------------------------------ spread


def test_spread_takes_the_best_the_worst_and_evenly_spaced_ranks() -> None:
    deltas = {"a": 5.0, "b": 4.0, "c": 3.0, "d": 2.0, "e": 1.0, "f": 0.0}
    assert spread(deltas, 1) == ["a"]
    assert spread(deltas, 2) == ["a", "f"]
    assert spread(deltas, 3) == ["a", "d", "f"]  # ranks 0, 2.5 -> 3 (halves round up), 5
    assert spread(deltas, 4) == ["a", "c", "d", "f"]  # ranks 0, 1.67, 3.33, 5
    assert spread(deltas, 6) == ["a", "b", "c", "d", "e", "f"]
    assert spread({"x": -1.0, "y": 2.0, "z": 0.5}, 2) == ["y", "x"]


def test_spread_breaks_ties_by_name() -> None:
    assert spread({"b": 1.0, "a": 1.0, "c": 1.0}, 2) == ["a", "c"]
    assert spread({"b": 1.0, "a": 1.0, "c": 0.0}, 1) == ["a"]


@pytest.mark.parametrize("n", [0, 4])
def test_spread_refuses_a_count_outside_the_variants(n: int) -> None:
    with pytest.raises(ValueError, match=f"cannot choose {n} anchors from 3"):
        spread({"a": 1.0, "b": 0.0, "c": 2.0}, n)


# ------------------------------------------------------------------------------------------------ stages

#: Planted accuracy (of 400 examples) per variant on the dev split and on the test split (ranked the other way).
DEV = {
    "base": 0.50,
    "loo-source-ncbi_disease": 0.40,
    "loo-source-bc5cdr_chem": 0.45,
    "loo-source-gad": 0.55,
    "loo-source-hoc": 0.60,
    "loo-source-pubmedqa": 0.70,
}
N = 400


def _rows(split: str, accuracy: float) -> list[dict]:
    ok = round(accuracy * N)
    return [
        {
            "id": f"hoc/{split}/{i}",
            "reference": "yes",
            "prediction": "yes" if i < ok else "no",
            "parse_ok": True,
            "unit": f"hoc/{split}/{i}",
            "stats": {"correct": int(i < ok), "n": 1},
        }
        for i in range(N)
    ]


def _finish(sweep: runner.Sweep, fidelity: str, dev: dict[str, float]) -> None:
    """Mark the fidelity's cells done, with planted predictions on hoc/dev and hoc/test."""
    for cell in sweep.cells:
        if cell.fidelity != fidelity:
            continue
        d = sweep.cell_dir(cell.name)
        acc = dev[cell.variant]
        write_eval_dir(
            d / runner.EVAL_DIR,
            {"hoc/dev": ("accuracy", _rows("dev", acc)), "hoc/test": ("accuracy", _rows("test", 1 - acc))},
        )
        write_record(d, CellState.RUNNING)
        write_record(d, CellState.DONE)


@pytest.fixture
def staged(tmp_path: Path) -> runner.Sweep:
    sweep = runner.load(
        _sweep(tmp_path, BLOCK, "seeds: [0]\n"),
        tmp_path / "out",
        AVAILABLE,
    )
    runner.prepare(sweep)
    return sweep


def test_stage_target_is_refused_until_the_proxy_is_done(staged: runner.Sweep) -> None:
    with pytest.raises(ConfigError) as err:
        stages.for_stage(staged, "target")
    (problem,) = err.value.problems
    assert problem.key == "--stage target" and "6 of its 6 cells are not done" in problem.problem
    assert "run the proxy stage and let it finish first" in problem.fix
    assert not (staged.out / ANCHORS_FILE).exists()


def test_stage_target_chooses_on_dev_writes_the_choice_and_reuses_it(staged: runner.Sweep) -> None:
    _finish(staged, "short", DEV)
    sweep, only = stages.for_stage(staged, "target")
    record = json.loads((staged.out / ANCHORS_FILE).read_text())
    # Δ on dev: pubmedqa +20, hoc +10, gad +5, chem -5, ncbi -10 -> spread of 3: ranks 0, 2, 4
    assert record["anchors"] == ["loo-source-pubmedqa", "loo-source-gad", "loo-source-ncbi_disease"]
    assert record["by"] == "short" and record["role"] == "dev" and record["n"] == 3
    assert record["deltas"]["loo-source-hoc"] == pytest.approx(10.0)
    row = record["rows"]["loo-source-hoc"][0]
    assert row["ci_low"] < 10.0 < row["ci_high"]
    assert only == [
        f"target.{v}-s0" for v in ("base", "loo-source-ncbi_disease", "loo-source-gad", "loo-source-pubmedqa")
    ]
    assert set(only) <= {c.name for c in sweep.cells}
    # the choice is written down: new proxy results do not change it
    _finish(staged, "short", {**DEV, "loo-source-hoc": 0.9})
    again = runner.load(staged.path, staged.out, AVAILABLE)  # a later command reads anchors.json
    assert {c.name for c in again.cells if c.fidelity == TARGET} == set(only)
    _, only_again = stages.for_stage(again, "target")
    assert only_again == only and json.loads((staged.out / ANCHORS_FILE).read_text()) == record


def test_a_changed_anchor_rule_is_refused_not_rechosen(staged: runner.Sweep, tmp_path: Path) -> None:
    _finish(staged, "short", DEV)
    stages.for_stage(staged, "target")
    _sweep(
        tmp_path,
        BLOCK.replace("anchors: 3", "anchors: 2"),
        "seeds: [0]\n",
    )
    with pytest.raises(ConfigError, match="remove that anchors.json to choose again"):
        stages.for_stage(runner.load(staged.path, staged.out, AVAILABLE), "target")


def test_stage_proxy_runs_what_is_known_now(staged: runner.Sweep) -> None:
    _, only = stages.for_stage(staged, "proxy")
    assert only is not None and "target.base-s0" in only and not any(n.startswith("target.loo") for n in only)
    assert stages.for_stage(staged, None) == (staged, None)


def test_stage_on_a_sweep_without_anchors_from_results_is_refused(tmp_path: Path) -> None:
    sweep = runner.load(_sweep(tmp_path, ""), tmp_path / "out", AVAILABLE)
    with pytest.raises(ConfigError, match="drop --stage"):
        stages.for_stage(sweep, "proxy")


def test_plan_counts_the_anchors_still_to_choose(staged: runner.Sweep) -> None:
    rows = {r["fidelity"]: r for r in stages.plan_rows(staged)}
    assert rows["short"]["cells"] == 6 and rows["few"]["cells"] == 2
    assert rows[TARGET]["cells"] == 4 and "3 anchors (spread by short" in rows[TARGET]["runs"]


def test_the_shipped_proxy_study_runs_every_variant_with_lora_and_4_anchors_at_7b() -> None:
    spec = load_sweep(config.REPO_ROOT / "configs" / "sweep" / "medtuned_proxy.yaml")
    loo = load_sweep(config.REPO_ROOT / "configs" / "sweep" / "medtuned_loo.yaml")
    assert spec.base == loo.base and list(spec.fidelities) == ["lora", TARGET]
    assert (
        spec.fidelities["lora"].variants == ALL and "train.lora.rank=16" in spec.fidelities["lora"].overrides
    )
    assert spec.fidelities[TARGET].variants == Anchors(4, "spread", "lora")
    assert spec.fidelities[TARGET].overrides == ()
    base = spec.load_base()
    lora = config.load(spec.base, [*spec.overrides, *spec.fidelities["lora"].overrides])
    assert base.train.lora is None and lora.train.lora is not None and lora.train.lora.rank == 16
    assert len(points(spec, base.data)) - 1 >= 4  # enough leave-outs to choose 4 anchors from

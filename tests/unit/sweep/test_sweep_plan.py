"""``biotune sweep plan``'s power: units per eval set, the table, the seed warning, the sweep file's ``power``
block and ``--pilot`` (an earlier sweep's predictions)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from synthetic import cls_rows, make_cell, ner_rows, write_eval_dir

from biotune.cli import main
from biotune.errors import DataError
from biotune.sweep import plan as pl
from biotune.sweep import power as pw
from biotune.sweep import runner
from biotune.sweep.spec import load_sweep
from biotune.sweep.state import CellState
from biotune.testing.sweeps import write_sweep

SETS = {
    "hoc/test": pl.EvalSetSize(examples=400, units=400, kind="cls", items=400),
    "ncbi_disease/test": pl.EvalSetSize(examples=950, units=100, kind="ner", items=250),
}


def _sweep(tmp: Path, seeds: str = "", head: str = "") -> Path:
    body = f"name: p\nbase: base.yaml\n{seeds}{head}axes: [{{type: leave_one_out, only: [hoc]}}]\n"
    return write_sweep(tmp, body)


def _plan(path: Path, *args: str, capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["sweep", "plan", str(path), "--out", str(path.parent / "out"), *args]) == 0
    return capsys.readouterr().out


@pytest.mark.parametrize(
    ("seeds", "warned"),
    [("", "one seed per arm"), ("seeds: [1, 2]\n", "2 seeds"), ("seeds: [1, 2, 3]\n", None)],
)
def test_power_rows_use_the_sweeps_seeds_and_warn_below_three(
    tmp_path: Path, seeds: str, warned: str | None
) -> None:
    sweep = runner.load(_sweep(tmp_path, seeds), tmp_path / "out")
    rows = pl.power_rows(sweep.spec, sweep.variants, SETS)
    m = len(sweep.spec.seeds) or 1
    assert [(r.m_base, r.m_variant) for r in rows] == [(m, m)] * 2
    assert [r.n_units for r in rows] == [400, 100]
    ner = rows[1]
    assert ner.paired_var == pytest.approx(
        pw.default_paired_variance(pw.DEFAULT_SCORE["ner"], pw.DEFAULT_CORRELATION, 2.5)
    )
    assert ner.detectable == pytest.approx(
        pw.detectable_effect(100, ner.paired_var, pw.DEFAULT_SEED_SD, m, m)
    )
    assert ner.power == pytest.approx(pw.power_at(0.02, 100, ner.paired_var, pw.DEFAULT_SEED_SD, m, m))
    warnings = pl.power_warnings(rows)
    seed_warnings = [w for w in warnings if w.startswith("seeds:")]
    if warned is None:
        assert seed_warnings == []
    else:
        assert (
            len(seed_warnings) == 1 and warned in seed_warnings[0] and "at least 3 seeds" in seed_warnings[0]
        )
    # the documents set cannot show 2 points; its warning gives the numbers
    assert any(
        w.startswith("ncbi_disease/test: n=100 units") and "above the planned 2.00" in w for w in warnings
    )
    table = pl.format_power(rows)
    assert "| ncbi_disease/test | 100 |" in table and "seeds for 80%" in table


def test_power_rows_size_a_set_only_the_pilot_holds(tmp_path: Path) -> None:
    sweep = runner.load(_sweep(tmp_path, "seeds: [1, 2, 3]\n"), tmp_path / "out")
    est = pw.SetEstimate("bc2gm/test", 5000, 0.8, 0.05, 0.01, 0.8, 0.008, 4)
    rows = pl.power_rows(sweep.spec, sweep.variants, SETS, {"bc2gm/test": est})
    assert [r.eval_set for r in rows] == ["hoc/test", "ncbi_disease/test", "bc2gm/test"]
    extra = rows[-1]
    assert (extra.n_units, extra.paired_var, extra.seed_sd) == (5000, 0.01, 0.008)
    assert extra.origin == "σ²_d pilot, seed sd pilot"
    assert extra.detectable == pytest.approx(pw.detectable_effect(5000, 0.01, 0.008, 3, 3))


def test_sweep_plan_prints_the_power_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _sweep(
        tmp_path, "seeds: [1, 2, 3]\n", "min_effect: 0.05\npower: {seed_sd: 0.005, correlation: 0.8}\n"
    )
    out = _plan(path, capsys=capsys)
    assert "power of Δ vs base per eval set" in out and "planned effect min_effect = 5.00" in out
    sets = pl.eval_set_units(load_sweep(path))
    assert sets and "hoc/test" in sets
    for name, s in sets.items():
        row = next(line for line in out.splitlines() if line.startswith(f"| {name} |"))
        assert f"| {name} | {s.units} | 3/3 |" in row and "| 0.50 |" in row  # units, seeds, seed sd in points
    assert "warning: seeds:" not in out
    data = json.loads(_plan(path, "--json", capsys=capsys))
    power = {r["eval_set"]: r for r in data["power"]}
    assert set(power) == set(sets)
    hoc = power["hoc/test"]
    assert hoc["seed_sd"] == 0.005 and hoc["m_base"] == 3 and hoc["effect"] == 0.05
    per_unit = sets["hoc/test"].items / sets["hoc/test"].units
    assert hoc["paired_var"] == pytest.approx(
        pw.default_paired_variance(pw.DEFAULT_SCORE["cls"], 0.8, per_unit)
    )
    assert hoc["seeds_needed"] == pw.seeds_for_power(0.05, sets["hoc/test"].units, hoc["paired_var"], 0.005)
    assert data["eval_sets"]["hoc/test"]["units"] == sets["hoc/test"].units


def test_sweep_plan_warns_for_one_seed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = _plan(_sweep(tmp_path), capsys=capsys)
    assert "warning: seeds: 1 per arm; one seed per arm measures only these trained models" in out
    assert "| 1/1 |" in out


def test_estimate_from_cells_reads_the_predictions_collect_reads(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    doc = rng.normal(0, 0.1, 40)
    cells = []
    for variant, axis, shift in (("base", "base", 0.0), ("loo-hoc", "leave_one_out", 0.02)):
        for seed in (1, 2):
            sets = {
                "ncbi/test": ("f1", ner_rows("ncbi", "test", 40, 5, 0.8 + shift, rng, doc)),
                "hoc/test": ("accuracy", cls_rows("hoc", "test", 120, 0.8, rng)),
            }
            cells.append(make_cell(tmp_path, variant, seed, sets, axis=axis))
    cells.append(make_cell(tmp_path, "loo-gad", 1, None, axis="leave_one_out", state="failed"))
    found = pl.estimate_from_cells(cells)
    assert set(found) == {"ncbi/test", "hoc/test"}
    ner = found["ncbi/test"]
    assert ner.n_units == 40 and ner.seed_df == 2 and ner.paired_var is not None and ner.seed_sd is not None
    assert 0 < ner.paired_var < 2 * ner.unit_var and 0 < ner.correlation < 1  # type: ignore[operator]
    assert found["hoc/test"].n_units == 120
    assert pl.estimate_from_cells([c for c in cells if not c.is_base]) == {}
    report = Path(cells[0].eval_dir) / "report.json"  # type: ignore[arg-type]
    report.write_text(report.read_text().replace('"reducer": "f1"', '"reducer": "median"'))
    with pytest.raises(DataError, match="unknown reducer 'median'") as err:
        pl.estimate_from_cells(cells)
    assert str(report) in str(err.value)


def test_sweep_plan_with_a_pilot_uses_what_it_measured(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    earlier = runner.load(_sweep(tmp_path / "earlier", "seeds: [1, 2]\n"), tmp_path / "earlier" / "out")
    runner.prepare(earlier)
    rng = np.random.default_rng(1)
    for cell in earlier.cells:
        shift = 0.0 if cell.variant == "base" else 0.03
        d = earlier.cell_dir(cell.name)
        write_eval_dir(
            d / runner.EVAL_DIR, {"hoc/test": ("accuracy", cls_rows("hoc", "test", 300, 0.7 + shift, rng))}
        )
        runner.write_state(d, CellState.RUNNING)
        runner.write_state(d, CellState.DONE)
    expected = pl.estimate_from_cells(runner.cell_results(runner.from_dir(earlier.out)))["hoc/test"]
    assert expected.seed_sd is not None and expected.paired_var is not None
    path = _sweep(tmp_path / "next", "seeds: [1, 2, 3]\n")
    data = json.loads(_plan(path, "--json", "--pilot", str(earlier.out), capsys=capsys))
    power = {r["eval_set"]: r for r in data["power"]}
    hoc = power["hoc/test"]
    assert hoc["origin"] == "σ²_d pilot, seed sd pilot"
    assert hoc["paired_var"] == pytest.approx(expected.paired_var)
    assert hoc["seed_sd"] == pytest.approx(expected.seed_sd) and hoc["score"] == pytest.approx(expected.score)
    assert hoc["detectable"] == pytest.approx(
        pw.detectable_effect(hoc["n_units"], expected.paired_var, expected.seed_sd, 3, 3)
    )
    others = [r for name, r in power.items() if name != "hoc/test"]
    assert others and all(r["origin"] == "σ²_d default, seed sd default" for r in others)
    out = _plan(path, "--pilot", str(earlier.out), capsys=capsys)
    assert "σ²_d pilot, seed sd pilot" in out and not math.isnan(hoc["power"])

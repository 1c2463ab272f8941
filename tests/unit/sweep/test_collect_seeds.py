"""collect on simulated sweeps: single-seed rows are labelled, seed-aware rows carry se/df/seeds, statistics
are validated line by line."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest

from biotune.errors import DataError
from biotune.sweep import plots
from biotune.sweep import stats as st
from biotune.sweep.collect import collect
from biotune.sweep.results import load_example_stats
from biotune.testing.simulate import Arm, NerDesign, simulate_accuracy, simulate_ner, sweep_cells

DESIGN = NerDesign(n_docs=60, sentences_per_doc=3)
NAMES = ["base", "null", "plus3"]


def _sweep(root: Path, seeds: int) -> tuple[dict, list]:
    rng = np.random.default_rng(seeds)
    arms = [Arm(0.0, seeds), Arm(0.0, seeds), Arm(3.0, seeds)]
    sets = {
        "simner/test": simulate_ner(rng, arms, 1.0, DESIGN),
        "simcls/test": simulate_accuracy(rng, arms, 1.0, n_examples=200),
    }
    return sets, sweep_cells(root, sets, NAMES)


def _csv(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))


def test_single_seed_rows_are_labelled_conditional_in_md_csv_and_caption(tmp_path: Path) -> None:
    _, cells = _sweep(tmp_path / "cells", seeds=1)
    results = collect(cells, tmp_path / "out", n_boot=200, plots=False)
    md = (tmp_path / "out" / "results.md").read_text(encoding="utf-8")
    label = "conditional on the trained models: seed variance not measured"
    assert label == st.CONDITIONAL_LABEL and label in md
    delta_rows = [line for line in md.splitlines() if line.startswith(("| null |", "| plus3 |"))]
    assert len(delta_rows) == 8 and all("] †" in line for line in delta_rows)  # 4 sets + 4 macros, all marked
    assert not any("†" in line for line in md.splitlines() if line.startswith("| base"))
    table = _csv(tmp_path / "out" / "results.csv")
    compared = [r for r in table if r["variant"] != "base"]
    assert compared and all(r["inference"] == label for r in compared)
    assert all(r["base_seeds"] == "1" and r["seeds_done"] == "1" and r["df"] == "inf" for r in compared)
    assert all(float(r["se"]) > 0 for r in compared)
    rows = [r for r in results.rows if r.delta is not None]
    assert all(r.conditional for r in rows)
    assert label in plots.conditional_caption(results.rows, NAMES)
    # single-seed numbers are today's: percentile CI and normal p from the bootstrap se
    row = next(r for r in rows if r.variant == "plus3" and r.eval_set == "simner/test")
    assert row.p == pytest.approx(st.t_p_value(row.delta, row.se, np.inf), rel=1e-9)


def test_seed_aware_rows_carry_se_df_and_seeds_and_are_not_labelled(tmp_path: Path) -> None:
    sets, cells = _sweep(tmp_path / "cells", seeds=3)
    results = collect(cells, tmp_path / "out", n_boot=300, seed=4, plots=False)
    md = (tmp_path / "out" / "results.md").read_text(encoding="utf-8")
    tables = md.split("## ", 1)[1]  # the header describes the label; no table row carries it
    assert "†" not in tables and st.CONDITIONAL_LABEL not in tables
    assert plots.conditional_caption(results.rows, NAMES) == ""
    table = {(r["variant"], r["eval_set"]): r for r in _csv(tmp_path / "out" / "results.csv")}
    for name, sim in sets.items():
        us = sim.unit_stats()
        scored = st.score_arms(
            st.Resamples.draw(name, sim.n_units, 300, 4),
            sim.reducer,
            sim.stat_names,
            dict(zip(NAMES, us, strict=True)),
        )
        for v in ("null", "plus3"):
            d = st.delta(scored[v], scored["base"])
            rec = table[(v, name)]
            assert rec["inference"] == st.Inference.SEED_T.value and rec["base_seeds"] == "3"
            assert float(rec["delta"]) == pytest.approx(100 * d.estimate, abs=1e-9)
            assert float(rec["se"]) == pytest.approx(100 * d.se, rel=1e-9)
            assert float(rec["df"]) == pytest.approx(d.df, rel=1e-9)
            assert float(rec["p"]) == pytest.approx(d.p_value, rel=1e-9)


@pytest.mark.parametrize(
    ("field", "value", "needle"),
    [
        ("fn", float("nan"), "must be a finite number"),
        ("fn", -4, "must not be negative"),
        ("tp", 1.5, "must be an integer"),
        ("fp", float("inf"), "must be a finite number"),
    ],
)
def test_a_bad_statistic_names_the_file_line_and_field(
    tmp_path: Path, field: str, value: float, needle: str
) -> None:
    rows = [
        {"id": f"s/test/{i}", "unit": f"d{i // 2}", "stats": {"tp": 1, "fp": 0, "fn": 1}} for i in range(6)
    ]
    rows[4]["stats"][field] = value
    path = tmp_path / "p.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    with pytest.raises(DataError) as err:
        load_example_stats(path, "f1")
    msg = str(err.value)
    assert f"{path}:5" in msg and f"stats.{field}" in msg and needle in msg and "fix:" in msg


def test_correct_above_n_and_a_good_file_read_fast(tmp_path: Path) -> None:
    rows = [{"id": f"c/test/{i}", "unit": f"c/test/{i}", "stats": {"correct": 1, "n": 1}} for i in range(4)]
    good = tmp_path / "good.jsonl"
    good.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    assert load_example_stats(good, "accuracy").stats.sum() == 8
    rows[2]["stats"] = {"correct": 2, "n": 1}
    bad = tmp_path / "bad.jsonl"
    bad.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    with pytest.raises(DataError, match=r"bad\.jsonl:3.*'stats\.correct' is 2 but n is 1"):
        load_example_stats(bad, "accuracy")


def test_stat_problem_checks_in_order_and_passes_good_stats() -> None:
    good = np.array([[3, 0, 1], [0, 2, 0]], dtype=float)
    assert st.stat_problem("f1", ("tp", "fp", "fn"), good) is None
    bad = good.copy()
    bad[1] = [-1.5, np.nan, 0]
    assert st.stat_problem("f1", ("tp", "fp", "fn"), bad)[:2] == (1, "tp")  # negative before non-integer
    assert st.stat_problem("mean", ("value", "n"), np.array([[0.5, 1], [1.5, 1]]))[:2] == (1, "value")
    assert st.stat_problem("mean", ("value", "n"), np.array([[0.25, 1]])) is None  # a value need not count

"""collect: a synthetic sweep in the real eval format -> results.md / .csv / .parquet and PNGs; bad input."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from matplotlib.image import imread
from synthetic import cls_rows, make_cell, ner_rows

from biotune.errors import ConfigError, DataError
from biotune.sweep import stats as st
from biotune.sweep.collect import collect
from biotune.sweep.results import CellResult, Results, load_example_stats

GROUPS = {"ncbi": "ner", "bc5cdr": "ner", "hoc": "cls", "gad": "cls"}
SETS = {
    "ncbi/test": ("f1", 0.80),
    "bc5cdr/test": ("f1", 0.75),
    "ncbi/dev": ("f1", 0.80),
    "hoc/test": ("accuracy", 0.70),
    "gad/test": ("accuracy", 0.80),
}


def _sets(seed: int, shift: dict[str, float]) -> dict[str, tuple[str, list[dict]]]:
    rng = np.random.default_rng(seed)
    out = {}
    for name, (reducer, level) in SETS.items():
        source, split = name.split("/")
        p = level + shift.get(source, 0.0)
        rows = (
            ner_rows(source, split, 40, 5, p, rng)
            if reducer == "f1"
            else cls_rows(source, split, 300, p, rng)
        )
        out[name] = (reducer, rows)
    return out


def _sweep(root: Path) -> list[CellResult]:
    """Base (2 seeds); leave-out ncbi (drops ncbi by 30 points) and hoc (drops hoc), 2 seeds each; a
    size-matched control for the ncbi leave-out; a factor axis; a failed and a missing cell."""
    cells = [make_cell(root, "base", s, _sets(s, {}), groups=GROUPS) for s in (1, 2)]
    for source, shift in (("ncbi", {"ncbi": -0.3}), ("hoc", {"hoc": -0.25})):
        cells += [
            make_cell(
                root,
                f"loo-{source}",
                s,
                _sets(10 * s + len(cells), shift),
                axis="leave_out",
                axis_value=source,
                groups=GROUPS,
            )
            for s in (1, 2)
        ]
    cells.append(
        make_cell(root, "ctl-ncbi", 1, _sets(99, {}), axis="control", control_for="loo-ncbi", groups=GROUPS)
    )
    cells += [
        make_cell(
            root,
            f"scale-ncbi-{f}",
            1,
            _sets(int(100 * f), {"ncbi": 0.04 * np.log2(f)}),
            axis="scale_ncbi",
            axis_value=f,
            groups=GROUPS,
        )
        for f in (0.5, 2.0, 4.0)
    ]
    cells.append(
        make_cell(root, "loo-bc5cdr", 1, _sets(7, {"bc5cdr": -0.2}), axis="leave_out", axis_value="bc5cdr")
    )
    cells.append(
        make_cell(root, "loo-bc5cdr", 2, None, axis="leave_out", axis_value="bc5cdr", state="running")
    )
    cells.append(make_cell(root, "loo-gad", 1, None, axis="leave_out", axis_value="gad", state="failed"))
    cells.append(make_cell(root, "loo-gad", 2, None, axis="leave_out", axis_value="gad", state="missing"))
    return cells


@pytest.fixture(scope="module")
def swept(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[CellResult], Results]:
    root = tmp_path_factory.mktemp("sweep")
    cells = _sweep(root)
    return cells, collect(cells, root / "collect", n_boot=500, seed=0)


def _row(results: Results, variant: str, eval_set: str):  # noqa: ANN202
    return next(
        r for r in results.rows + results.macro_rows if r.variant == variant and r.eval_set == eval_set
    )


def test_collect_writes_every_output_and_the_pngs_are_images(swept: tuple[list[CellResult], Results]) -> None:
    _, results = swept
    out = results.paths["md"].parent
    for name in (
        "results.md",
        "results.csv",
        "results.parquet",
        "delta_heatmap_leave_out.png",
        "interaction_leave_out.png",
        "scaling_scale_ncbi.png",
    ):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    assert not [p for p in out.iterdir() if ".tmp" in p.name]
    image = imread(out / "delta_heatmap_leave_out.png")
    assert image.ndim == 3 and image.shape[0] > 300 and image.shape[1] > 500
    assert set(results.paths) >= {"md", "csv", "parquet", "delta_heatmap_leave_out", "scaling_scale_ncbi"}


def test_the_left_out_task_drops_significantly_and_the_others_do_not(
    swept: tuple[list[CellResult], Results],
) -> None:
    _, results = swept
    drop = _row(results, "loo-ncbi", "ncbi/test")
    # two seeds per arm and seed sd ~3 points: seeds are a random factor, so df ~3 and p ~0.004 (not 1e-4)
    assert drop.delta < -20 and drop.ci_high < 0 and drop.p < 0.01 and drop.df < 10
    assert drop.inference == st.Inference.SEED_T and drop.base_seeds == 2 and drop.se > 0
    assert _row(results, "loo-ncbi", "ncbi/dev").significant
    assert _row(results, "loo-hoc", "hoc/test").significant
    for eval_set in ("bc5cdr/test", "gad/test"):
        row = _row(results, "loo-ncbi", eval_set)
        assert row.ci_low < 0 < row.ci_high and not row.significant
    # the control has one seed: it borrows loo-ncbi's seed variance (1 df on the test set here)
    assert drop.control_delta < -20 and drop.control_ci_high < 0
    assert drop.control_inference == st.Inference.BORROWED and drop.control_seeds == 1
    assert _row(results, "loo-ncbi", "ncbi/dev").control_significant
    base = _row(results, "base", "ncbi/test")
    assert base.delta is None and base.seeds_done == 2 and base.sd is not None and len(base.seed_scores) == 2
    assert drop.mean == pytest.approx(np.mean(drop.seed_scores))
    assert drop.total_samples == 1000 and drop.total_tokens == 50000


def test_collect_equals_a_single_paired_bootstrap_of_the_same_files(
    swept: tuple[list[CellResult], Results],
) -> None:
    cells, results = swept
    path = lambda c: c.eval_dir / "predictions" / "bc5cdr__test.jsonl"  # noqa: E731
    base = [load_example_stats(path(c), "f1") for c in cells if c.variant == "base"]
    variant = [load_example_stats(path(c), "f1") for c in cells if c.variant == "loo-hoc"]
    comp = st.paired_bootstrap(
        base, variant, n_boot=500, seed=0, eval_set="bc5cdr/test", names=("base", "loo-hoc")
    )
    row = _row(results, "loo-hoc", "bc5cdr/test")
    assert row.delta == pytest.approx(100 * comp.delta.estimate, abs=1e-9)
    assert (row.ci_low, row.ci_high) == pytest.approx(
        (100 * comp.delta.ci_low, 100 * comp.delta.ci_high), abs=1e-9
    )
    assert row.p == pytest.approx(comp.delta.p_value) and row.n == 200 and row.n_units == 40


def test_markdown_shows_every_cell_failed_and_missing_ones_with_their_logs(
    swept: tuple[list[CellResult], Results],
) -> None:
    cells, results = swept
    md = results.paths["md"].read_text(encoding="utf-8")
    for c in cells:
        assert f"| {c.name} | {c.variant} |" in md
    failed = next(c for c in cells if c.state == "failed")
    assert failed.log_path and failed.log_path in md
    partial = _row(results, "loo-bc5cdr", "bc5cdr/test")
    assert partial.state == "partial" and (partial.seeds_done, partial.seeds_planned) == (1, 2)
    assert partial.seeds == [1] and partial.sd is None and "loo-bc5cdr-s2" in partial.logs
    gad = next(r for r in results.rows if r.variant == "loo-gad")
    assert gad.state == "failed,missing" and not gad.eval_set and gad.seeds_done == 0
    assert "## Dev sets (use these for selection)" in md and "## Test sets" in md
    assert md.index("## Dev sets") < md.index("## Test sets")
    assert "Δ vs control" in md and "p (Holm)" in md and "macro:ner/test" in md


def test_csv_and_parquet_hold_the_same_numbers(swept: tuple[list[CellResult], Results]) -> None:
    cells, results = swept
    out = results.paths["md"].parent
    rows = list(csv.DictReader(io.StringIO((out / "results.csv").read_text(encoding="utf-8"))))
    assert len(rows) == len(results.rows) + len(results.macro_rows)
    loo = next(r for r in rows if r["variant"] == "loo-ncbi" and r["eval_set"] == "ncbi/test")
    assert float(loo["delta"]) == pytest.approx(_row(results, "loo-ncbi", "ncbi/test").delta)
    assert loo["samples:ncbi"] == "500.0" and loo["weight:hoc"] == "0.5"
    table = pq.read_table(out / "results.parquet").to_pylist()
    scores = [
        t
        for t in table
        if t["statistic"] == "score" and t["eval_set"] and not t["eval_set"].startswith("macro")
    ]
    done = [c for c in cells if c.state == "done"]
    assert len(scores) == len(done) * len(SETS)
    mean = next(
        t
        for t in table
        if t["variant"] == "loo-ncbi" and t["eval_set"] == "ncbi/test" and t["statistic"] == "mean"
    )
    per_seed = [t["value"] for t in scores if t["variant"] == "loo-ncbi" and t["eval_set"] == "ncbi/test"]
    assert mean["seed"] is None and mean["value"] == pytest.approx(np.mean(per_seed))
    weights = [t for t in table if t["statistic"] == "weight" and t["variant"] == "base"]
    assert {t["source"]: t["value"] for t in weights} == {"ncbi": 0.5, "hoc": 0.5}


def test_macro_average_per_task_family(swept: tuple[list[CellResult], Results]) -> None:
    _, results = swept
    ner = _row(results, "loo-ncbi", "macro:ner/test")
    sets = [_row(results, "loo-ncbi", s) for s in ("ncbi/test", "bc5cdr/test")]
    assert ner.family == "ner" and ner.split == "test"
    assert ner.mean == pytest.approx(np.mean([s.mean for s in sets]))
    assert ner.delta == pytest.approx(np.mean([s.delta for s in sets]))
    assert ner.ci_low < ner.delta < ner.ci_high and ner.p_adj is not None
    assert {r.eval_set for r in results.macro_rows} == {"macro:ner/test", "macro:ner/dev", "macro:cls/test"}


def test_pairing_is_by_example_id_not_by_line_order(tmp_path: Path) -> None:
    cells = _sweep(tmp_path)[:4]
    shuffled = cells[2].eval_dir / "predictions" / "ncbi__test.jsonl"
    lines = shuffled.read_text(encoding="utf-8").splitlines(keepends=True)
    before = collect(cells, tmp_path / "a", n_boot=200, plots=False)
    shuffled.write_text("".join(lines[::-1]), encoding="utf-8")
    after = collect(cells, tmp_path / "b", n_boot=200, plots=False)
    a, b = _row(before, "loo-ncbi", "ncbi/test"), _row(after, "loo-ncbi", "ncbi/test")
    assert (a.delta, a.ci_low, a.ci_high) == pytest.approx((b.delta, b.ci_low, b.ci_high), abs=1e-9)


def test_bh_correction_and_rerunning_into_the_same_directory(tmp_path: Path) -> None:
    cells = _sweep(tmp_path)[:6]
    holm = collect(cells, tmp_path / "out", n_boot=200, plots=False)
    bh = collect(cells, tmp_path / "out", n_boot=200, plots=False, correction="bh")  # replaces its own files
    pairs = [(h.p_adj, b.p_adj) for h, b in zip(holm.rows, bh.rows, strict=True) if h.p_adj is not None]
    assert pairs and all(b <= h + 1e-12 for h, b in pairs) and any(b < h for h, b in pairs)
    assert "p (BH)" in (tmp_path / "out" / "results.md").read_text(encoding="utf-8")
    with pytest.raises(ConfigError, match="correction"):
        collect(cells, tmp_path / "out", correction="bonferroni")


def test_a_foreign_non_empty_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(DataError, match="not empty"):
        collect(_sweep(tmp_path / "cells")[:2], tmp_path / "mine", n_boot=50)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_inconsistent_cells_are_reported_together(tmp_path: Path) -> None:
    cells = _sweep(tmp_path)[:4]
    cells[1].name = cells[0].name
    cells[2].is_base = True
    cells[3].state = "finished"
    with pytest.raises(ConfigError) as err:
        collect(cells, tmp_path / "out")
    msg = str(err.value)
    assert "used twice" in msg and "several base variants" in msg and "unknown state 'finished'" in msg


# ------------------------------------------------------------------------------------------- bad input


def _two_cells(tmp_path: Path) -> tuple[list[CellResult], Path]:
    cells = _sweep(tmp_path)[:4]
    return cells, cells[2].eval_dir / "predictions" / "hoc__test.jsonl"


def test_a_line_that_is_not_json_names_file_and_line(tmp_path: Path) -> None:
    cells, path = _two_cells(tmp_path)
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[6] = lines[6][:25] + "\n"  # truncated row on line 7
    path.write_text("".join(lines), encoding="utf-8")
    with pytest.raises(DataError) as err:
        collect(cells, tmp_path / "out", n_boot=50, plots=False)
    assert f"{path}:7: not valid JSON" in str(err.value) and "fix: re-run `biotune eval`" in str(err.value)
    assert err.value.line == 7


def test_a_row_without_stats_names_file_and_line_and_the_fix(tmp_path: Path) -> None:
    cells, path = _two_cells(tmp_path)
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    del rows[11]["stats"]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    with pytest.raises(DataError) as err:
        collect(cells, tmp_path / "out", n_boot=50, plots=False)
    assert f"{path}:12: row has no 'stats'" in str(err.value) and "'unit' and 'stats'" in str(err.value)


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda r: r.pop("unit"), "row has no 'unit'"),
        (lambda r: r["stats"].pop("n"), "'stats' lacks n"),
        (lambda r: r["stats"].update(correct="yes"), "must be numbers"),
    ],
)
def test_incomplete_rows_name_file_and_line(tmp_path: Path, edit, expected: str) -> None:  # noqa: ANN001
    cells, path = _two_cells(tmp_path)
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    edit(rows[4])
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    with pytest.raises(DataError, match=expected) as err:
        load_example_stats(path, "accuracy")
    assert err.value.line == 5


def test_missing_files_and_old_reports_are_data_errors(tmp_path: Path) -> None:
    cells, path = _two_cells(tmp_path)
    path.unlink()
    with pytest.raises(DataError, match="predictions file is missing"):
        collect(cells, tmp_path / "out1", n_boot=50, plots=False)
    cells, _ = _two_cells(tmp_path / "again")
    report = cells[0].eval_dir / "report.json"
    data = json.loads(report.read_text())
    del data["rows"][0]["reducer"]
    report.write_text(json.dumps(data))
    with pytest.raises(DataError, match="no 'reducer'") as err:
        collect(cells, tmp_path / "out2", n_boot=50, plots=False)
    assert str(report) in str(err.value) and "base-s1" in str(err.value)


def test_cells_evaluated_on_different_examples_name_both_files(tmp_path: Path) -> None:
    cells, path = _two_cells(tmp_path)
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    path.write_text("".join(lines[:-3]), encoding="utf-8")
    with pytest.raises(DataError) as err:
        collect(cells, tmp_path / "out", n_boot=50, plots=False)
    assert str(path) in str(err.value) and str(cells[0].eval_dir / "predictions" / "hoc__test.jsonl") in str(
        err.value
    )
    assert "3 id(s)" in str(err.value)

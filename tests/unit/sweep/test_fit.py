"""fit: planted weight -> score relationships are recovered, the proposal obeys its constraints, Olmix CSVs."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import yaml

from biotune.config import load
from biotune.errors import ConfigError
from biotune.sweep import fit
from biotune.sweep.results import CellResult, ResultRow, Results
from biotune.testing.sweeps import done_row

SOURCES = ["ncbi_disease", "bc5cdr_chem", "hoc", "gad"]
GROUPS = {"ncbi_disease": "ner", "bc5cdr_chem": "ner", "hoc": "cls", "gad": "cls"}
TOTAL = 4000


def _cell(name: str, weights: np.ndarray, *, is_base: bool = False) -> CellResult:
    w = dict(zip(SOURCES, weights.tolist(), strict=True))
    budget = {s: {"samples": TOTAL * x, "tokens": 100 * TOTAL * x, "epochs": 1.0} for s, x in w.items()}
    return CellResult(
        f"{name}-s0",
        name,
        0,
        "base" if is_base else "swarm",
        None,
        is_base,
        None,
        "done",
        None,
        budget,
        w,
        dict(GROUPS),
        None,
    )


def _row(cell: CellResult, eval_set: str, mean: float) -> ResultRow:
    return done_row(cell.variant, cell.axis, cell.is_base, eval_set, mean)


def _swarm_results(
    n_runs: int, score: Callable[[np.ndarray], dict[str, float]], seed: int = 0, noise: float = 0.3
) -> Results:
    """A base (uniform mixture) plus ``n_runs`` Dirichlet runs, scored on dev sets (and a test set)."""
    rng = np.random.default_rng(seed)
    cells = [_cell("base", np.full(len(SOURCES), 1 / len(SOURCES)), is_base=True)]
    cells += [_cell(f"swarm{i:03d}", rng.dirichlet(np.ones(len(SOURCES)))) for i in range(n_runs)]
    rows = []
    for c in cells:
        w = np.array([c.weights[s] for s in SOURCES])
        for eval_set, value in score(w).items():
            rows.append(_row(c, eval_set, value + rng.normal(0, noise)))
        rows.append(_row(c, "ncbi_disease/test", 50.0))
    return Results(rows, [], cells, "base", "holm", 1000, 0)


def _planted(w: np.ndarray) -> dict[str, float]:
    """NER dev is quadratic in ncbi_disease and linear in bc5cdr_chem (best: half each); hoc dev is linear."""
    ncbi, chem, hoc, _ = w
    return {
        "ncbi_disease/dev": 50 + 40 * ncbi + 10 * chem - 30 * ncbi**2,
        "hoc/dev": 60 + 20 * hoc + 5 * ncbi,
    }


def test_the_quadratic_fit_recovers_a_planted_relationship_and_the_proposal_follows_it(
    tmp_path: Path,
) -> None:
    results = _swarm_results(80, _planted)
    # the whole simplex and one argmax (the trust region's defaults would stop short of the planted edge optimum)
    report = fit.fit_and_propose(
        results,
        tmp_path,
        axis="swarm",
        model="quadratic",
        objective={"ncbi_disease/dev": 1.0},
        min_share=0.0,
        max_l1=2.0,
        top_k=1,
    )
    for f in report.fits.values():
        assert f.spearman > 0.9 and f.r2 > 0.8 and f.n_runs == 81 and f.n_params == 10
    assert set(report.fits) == {"ncbi_disease/dev", "hoc/dev"}  # dev only: the test set is never fitted
    w = report.proposal.weights
    # d/dw (40 w - 30 w^2) = 10 (the chem slope) at w = 1/2: the planted optimum is ncbi 1/2, chem 1/2
    assert w["ncbi_disease"] == pytest.approx(0.5, abs=0.1) and w["bc5cdr_chem"] == pytest.approx(
        0.5, abs=0.1
    )
    assert w["hoc"] + w["gad"] < 0.1
    assert report.proposal.objective > report.proposal.base_objective + 5
    assert not report.proposal.fallback and report.proposal.gain > report.proposal.gain_se


def test_a_linear_fit_moves_weight_to_the_best_source(tmp_path: Path) -> None:
    results = _swarm_results(12, lambda w: {"hoc/dev": 60 + 30 * w[2] + 5 * w[0]})
    report = fit.fit_and_propose(results, tmp_path, model="linear", min_share=0.05)
    assert report.fits["hoc/dev"].spearman > 0.9
    w = report.proposal.weights
    assert w["hoc"] > 0.25 and w["hoc"] == max(w.values())
    assert min(w.values()) >= 0.05 - 1e-9 and sum(w.values()) == pytest.approx(1.0)


def test_the_proposal_respects_repetition_and_distance_constraints(tmp_path: Path) -> None:
    results = _swarm_results(60, _planted)
    capped = fit.fit_and_propose(results, tmp_path / "cap", objective={"hoc/dev": 1}, max_epochs=1.6)
    # hoc has TOTAL / 4 available samples in the base: 1.6 passes allow at most 0.4 of TOTAL
    assert capped.proposal.weights["hoc"] <= 0.4 + 1e-9 and capped.proposal.weights["hoc"] > 0.35
    near = fit.fit_and_propose(results, tmp_path / "near", objective={"hoc/dev": 1}, max_l1=0.1)
    w = np.array([near.proposal.weights[d] for d in near.swarm.domains])
    assert near.proposal.nearest_l1 == pytest.approx(np.abs(near.swarm.weights - w).sum(axis=1).min())
    assert near.proposal.nearest_l1 <= 0.1 + 1e-9 and near.proposal.weights["hoc"] > 0.5
    with pytest.raises(ConfigError, match="min_share"):
        fit.fit_and_propose(results, tmp_path / "bad", min_share=0.3)


def test_group_level_fits_and_splits_group_weight_by_the_base_shares(tmp_path: Path) -> None:
    results = _swarm_results(30, _planted)
    report = fit.fit_and_propose(results, tmp_path, level="group", model="linear", objective={"hoc/dev": 1})
    assert report.swarm.domains == ["ner", "cls"]
    sources = yaml.safe_load(report.paths["proposal"].read_text())["data"]["sources"]
    assert sources["hoc"]["weight"] == pytest.approx(sources["gad"]["weight"], abs=1e-6)  # equal in the base
    assert sources["hoc"]["weight"] + sources["gad"]["weight"] == pytest.approx(
        report.proposal.weights["cls"], abs=1e-5
    )


def test_the_proposal_is_a_data_config_that_loads(tmp_path: Path) -> None:
    results = _swarm_results(40, _planted)
    report = fit.fit_and_propose(results, tmp_path, objective={"ncbi_disease/dev": 2, "hoc/dev": 1})
    text = report.paths["proposal"].read_text(encoding="utf-8")
    assert text.startswith("# Proposed by biotune sweep fit")
    data = yaml.safe_load(text)["data"]
    assert data["total_samples"] == TOTAL and set(data["sources"]) == set(SOURCES)
    cfg = load(report.paths["proposal"])
    assert cfg.data.total_samples == TOTAL
    assert cfg.data.sources["ncbi_disease"].weight == pytest.approx(
        report.proposal.weights["ncbi_disease"], abs=1e-6
    )


def test_olmix_csvs_hold_one_row_per_run(tmp_path: Path) -> None:
    results = _swarm_results(15, _planted)
    report = fit.fit_and_propose(results, tmp_path, model="linear")
    ratios = list(csv.DictReader(report.paths["ratios"].open()))
    metrics = list(csv.DictReader(report.paths["metrics"].open()))
    assert list(ratios[0]) == ["run", *SOURCES] and list(metrics[0]) == ["run", "ncbi_disease/dev", "hoc/dev"]
    assert [r["run"] for r in ratios] == [m["run"] for m in metrics] == report.swarm.runs
    assert len(ratios) == 16 and all(sum(float(r[s]) for s in SOURCES) == pytest.approx(1.0) for r in ratios)
    observed = {r.variant: r.mean for r in results.rows if r.eval_set == "hoc/dev"}
    assert all(float(m["hoc/dev"]) == pytest.approx(observed[m["run"]]) for m in metrics)


def test_a_swarm_smaller_than_the_parameter_count_raises(tmp_path: Path) -> None:
    results = _swarm_results(6, _planted)  # 7 runs; quadratic over 4 domains has 10 parameters
    with pytest.raises(ConfigError) as err:
        fit.fit_and_propose(results, tmp_path, axis="swarm", model="quadratic")
    assert "7 runs" in str(err.value) and "10 parameters" in str(err.value) and "axes.swarm" in str(err.value)
    with pytest.raises(ConfigError, match="4 parameters"):
        fit.fit_and_propose(_swarm_results(2, _planted), tmp_path, model="linear")


def test_selection_refuses_test_sets_and_unknown_models(tmp_path: Path) -> None:
    results = _swarm_results(20, _planted)
    with pytest.raises(ConfigError, match="dev splits only"):
        fit.fit_and_propose(results, tmp_path, model="linear", objective={"ncbi_disease/test": 1.0})
    with pytest.raises(ConfigError, match="unknown model"):
        fit.fit_and_propose(results, tmp_path, model="cubic")

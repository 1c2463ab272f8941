"""``sweep collect --step/--fraction``, learning curves and checkpoint-vs-final agreement (issue 22, item 3), on
sweeps whose cells' evaluations during training are fabricated (``biotune.testing.step_sweeps``)."""

from __future__ import annotations

import csv
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread
from scipy import stats as sps

from biotune.errors import ConfigError
from biotune.sweep import collect_steps as cs
from biotune.sweep import runner
from biotune.sweep import stats as st
from biotune.sweep.collect import collect
from biotune.sweep.results import CellResult
from biotune.sweep.tables import RESULTS_CSV, RESULTS_MD
from biotune.testing.step_sweeps import TOKENS_PER_STEP, prepare_step_sweep

N_BOOT = 200


def _cells(sweep: runner.Sweep) -> tuple[list[CellResult], dict[str, Path]]:
    cells = runner.cell_results(sweep)
    return cells, {c.name: sweep.cell_dir(c.name) / runner.TRAIN_DIR for c in cells}


def _csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_last_step_gives_the_final_table_and_an_earlier_step_its_own(tmp_path: Path) -> None:
    sweep = prepare_step_sweep(tmp_path, steps=(2, 4))
    cells, dirs = _cells(sweep)
    collect(cells, tmp_path / "final", n_boot=N_BOOT, plots=False)
    collect(cs.at_checkpoint(cells, dirs, step=4), tmp_path / "s4", n_boot=N_BOOT, plots=False)
    collect(cs.at_checkpoint(cells, dirs, step=2), tmp_path / "s2", n_boot=N_BOOT, plots=False)
    final = (tmp_path / "final" / RESULTS_CSV).read_text()
    assert (tmp_path / "s4" / RESULTS_CSV).read_text() == final
    early = _csv(tmp_path / "s2" / RESULTS_CSV)
    assert (tmp_path / "s2" / RESULTS_CSV).read_text() != final
    # the early step's effects were planted reversed: the variant that helps most at the end hurts most at step 2
    delta = {
        (r["variant"], r["eval_set"]): float(r["delta"])
        for r in early
        if r["delta"] and r["eval_set"] == "simcls/test"
    }
    late = {
        (r["variant"], r["eval_set"]): float(r["delta"])
        for r in _csv(tmp_path / "final" / RESULTS_CSV)
        if r["delta"] and r["eval_set"] == "simcls/test"
    }
    assert max(late, key=late.get) == min(delta, key=delta.get)
    # --fraction picks each cell's step at that fraction of its run (ceil(F x 4))
    collect(cs.at_checkpoint(cells, dirs, fraction=0.5), tmp_path / "f05", n_boot=N_BOOT, plots=False)
    collect(cs.at_checkpoint(cells, dirs, fraction=0.3), tmp_path / "f03", n_boot=N_BOOT, plots=False)
    assert (tmp_path / "f05" / RESULTS_CSV).read_text() == (tmp_path / "s2" / RESULTS_CSV).read_text()
    assert (tmp_path / "f03" / RESULTS_CSV).read_text() == (tmp_path / "s2" / RESULTS_CSV).read_text()
    collect(cs.at_checkpoint(cells, dirs, fraction=1.0), tmp_path / "f1", n_boot=N_BOOT, plots=False)
    assert (tmp_path / "f1" / RESULTS_CSV).read_text() == final


def test_a_step_some_cell_lacks_is_refused_with_the_steps_that_exist(tmp_path: Path) -> None:
    sweep = prepare_step_sweep(tmp_path, steps=(2, 4))
    cells, dirs = _cells(sweep)
    with pytest.raises(ConfigError) as err:
        cs.at_checkpoint(cells, dirs, step=3)
    (p,) = err.value.problems
    assert p.key == "--step" and "evaluated steps: 2, 4" in p.problem and "2, 4" in p.fix
    with pytest.raises(ConfigError) as err:
        cs.at_checkpoint(cells, dirs, fraction=0.6)  # ceil(0.6 x 4) = 3: not evaluated
    assert err.value.problems[0].key == "--fraction" and "step 3" in err.value.problems[0].problem


@pytest.mark.parametrize(
    ("step", "fraction", "key"),
    [
        (2, 0.5, "--step/--fraction"),
        (None, 0.0, "--fraction"),
        (None, 1.5, "--fraction"),
        (0, None, "--step"),
    ],
)
def test_bad_options(step: int | None, fraction: float | None, key: str) -> None:
    with pytest.raises(ConfigError) as err:
        cs.check_options(step, fraction)
    assert [p.key for p in err.value.problems] == [key]


def test_output_names() -> None:
    assert cs.output_name(500, None) == "step-500"
    assert cs.output_name(None, 0.25) == "fraction-0.25"
    assert cs.is_output_name("step-500") and cs.is_output_name("fraction-0.25")
    assert cs.is_output_name(cs.output_name(None, 1e-5))
    assert not cs.is_output_name("notes") and not cs.is_output_name("step-x")


def test_learning_curves_and_checkpoint_agreement(tmp_path: Path) -> None:
    sweep = prepare_step_sweep(tmp_path, steps=(1, 2, 4), seeds=2, same_as_final=(1,))
    cells, dirs = _cells(sweep)
    out = tmp_path / "results"
    results = collect(cells, out, n_boot=N_BOOT, plots=True, train_dirs=dirs)
    for name in ("learning_curve_simner_test.png", "learning_curve_simcls_test.png"):
        assert imread(out / name).shape[0] > 100
    curves = _csv(out / cs.LEARNING_CURVES_CSV)
    variants = {c.variant for c in cells}
    assert {(r["variant"], int(r["step"])) for r in curves if r["eval_set"] == "simcls/test"} == {
        (v, s) for v in variants for s in (1, 2, 4)
    }
    assert all(float(r["tokens"]) == TOKENS_PER_STEP * int(r["step"]) for r in curves)
    # the last step's point is the final table's mean, and its band is the t interval over the two seeds
    final = {(r.variant, r.eval_set): r for r in results.rows}
    for r in curves:
        if int(r["step"]) != 4:
            continue
        row = final[(r["variant"], r["eval_set"])]
        assert float(r["mean"]) == pytest.approx(row.mean)
        half = sps.t.ppf(0.975, 1) * np.std(row.seed_scores, ddof=1) / math.sqrt(2)
        assert (float(r["ci_low"]), float(r["ci_high"])) == pytest.approx((row.mean - half, row.mean + half))
        assert r["band"] == "t" and r["n_seeds"] == "2"
    # step 1's predictions equal the final ones: ρ = 1; step 2's effects are reversed: ρ = -1
    agreement = _csv(out / cs.CHECKPOINT_AGREEMENT_CSV)
    rho = {
        (r["proxy"], r["eval_set"]): float(r["estimate"]) for r in agreement if r["statistic"] == "spearman"
    }
    assert {p for p, _ in rho} == {"step-1", "step-2"}
    assert {k: v for k, v in rho.items() if k[0] == "step-1"} == {k: 1.0 for k in rho if k[0] == "step-1"}
    assert all(v < 0 for k, v in rho.items() if k[0] == "step-2")
    assert any(s.startswith("macro") or "/" in s for _, s in rho)
    md = (out / RESULTS_MD).read_text()
    assert cs.CHECKPOINT_TITLE in md and "step-1 vs final" in md


def test_one_seed_band_is_the_bootstrap_over_examples(tmp_path: Path) -> None:
    sweep = prepare_step_sweep(tmp_path, steps=(2, 4))
    cells, dirs = _cells(sweep)
    curves = cs.learning_curves(cells, dirs, n_boot=N_BOOT)
    pts = [p for group in curves.values() for c in group for p in c.points]
    assert pts and all(p.band == "bootstrap" and p.n_seeds == 1 for p in pts)
    assert all(p.ci_low < p.mean < p.ci_high for p in pts)


def test_cells_without_step_evaluations_get_no_curves(tmp_path: Path) -> None:
    sweep = prepare_step_sweep(tmp_path, steps=())
    cells, dirs = _cells(sweep)
    results = collect(cells, tmp_path / "out", n_boot=N_BOOT, plots=True, train_dirs=dirs)
    assert "learning_curves" not in results.paths
    assert not list((tmp_path / "out").glob("learning_curve_*.png"))


def test_cli_step_collect_writes_beside_the_final_results(tmp_path: Path) -> None:
    prepare_step_sweep(tmp_path, steps=(2, 4))
    env = {**os.environ, "WANDB_MODE": "disabled"}
    base = [sys.executable, "-m", "biotune.cli", "sweep", "collect", str(tmp_path / "sweep.yaml")]
    base += ["--out", str(tmp_path / "sweep"), "--n-boot", "100", "--no-plots"]
    for extra in (["--step", "2"], [], ["--fraction", "1"]):
        proc = subprocess.run([*base, *extra], env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
    results = tmp_path / "sweep" / runner.RESULTS_DIR
    assert (results / "step-2" / RESULTS_CSV).is_file()
    assert (results / "fraction-1" / RESULTS_CSV).read_text() == (results / RESULTS_CSV).read_text()
    assert (results / "step-2" / RESULTS_CSV).read_text() != (results / RESULTS_CSV).read_text()
    assert (results / cs.CHECKPOINT_AGREEMENT_CSV).is_file()


def test_band_coverage_by_simulation() -> None:
    """The band's nominal 95%: over seeds (t, m = 3, normal seed effects) its coverage of the seeds' mean, and
    with one seed (bootstrap over 300 examples) its coverage of the model's true accuracy."""
    rng = np.random.default_rng(0)
    reps = 2000
    hits = 0
    for _ in range(reps):
        scores = rng.normal(0.6, 0.02, 3)
        lo, hi, kind = cs.band(scores, np.empty(0))
        hits += lo <= 0.6 <= hi
        assert kind == "t"
    assert abs(hits / reps - 0.95) < 3 * math.sqrt(0.95 * 0.05 / reps)
    reps, n, p = 300, 300, 0.7
    hits = 0
    for i in range(reps):
        correct = (rng.random(n) < p).astype(float)
        summed = np.stack([correct, np.ones(n)], axis=-1)[None]
        arm = st.score_arms(
            st.Resamples.draw(f"rep{i}", n, 500, i), "accuracy", ("correct", "n"), {"a": summed}
        )["a"]
        lo, hi, kind = cs.band(arm.seed_scores, arm.replicates)
        hits += lo <= p <= hi
        assert kind == "bootstrap"
    assert abs(hits / reps - 0.95) < 3 * math.sqrt(0.95 * 0.05 / reps) + 0.01


def test_sets_evaluated_only_during_training_are_compared_with_the_last_step(tmp_path: Path) -> None:
    """Dev splits at the checkpoints, test splits at the end: the final level of a dev set is the run's last
    step (the same final model), so an early step equal to it agrees with ρ = 1."""
    sweep = prepare_step_sweep(tmp_path, steps=(1, 2, 4), same_as_final=(1,), dev_at_steps=True)
    cells, dirs = _cells(sweep)
    out = tmp_path / "results"
    collect(cells, out, n_boot=N_BOOT, plots=False, train_dirs=dirs)
    rho = {
        (r["proxy"], r["eval_set"]): float(r["estimate"])
        for r in _csv(out / cs.CHECKPOINT_AGREEMENT_CSV)
        if r["statistic"] == "spearman"
    }
    assert rho[("step-1", "simner/dev")] == 1.0 and rho[("step-1", "simcls/dev")] == 1.0
    assert rho[("step-2", "simner/dev")] < 0
    assert ("step-1", "macro:ner/dev") in rho

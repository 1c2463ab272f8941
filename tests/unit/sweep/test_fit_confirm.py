"""The fit's confirmation sweep: ``confirm.yaml`` loads with the real sweep loader, expands with the real planner
into the base and the proposed mixture at >= 5 seeds each, and the proposed cell trains on the proposal's weights.

The swarm is a real one (the small sweep base on the bundled sample, expanded by :mod:`biotune.sweep.runner`);
only its scores are planted, so that no model is trained here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from biotune.errors import ConfigError
from biotune.sweep import cli, fit, runner
from biotune.sweep import plan as planning
from biotune.sweep import variants as vr
from biotune.sweep.results import CellResult, ResultRow, Results
from biotune.sweep.spec import load_sweep
from biotune.testing.sweeps import done_row, write_sweep

SWARM = """\
name: swarm-small
base: base.yaml
overrides: [train.max_steps=3]
seeds: {seeds}
budget: {budget}
controls: false
axes:
  - {{type: swarm, over: source, n: 24, seed: 0, fit: true}}
"""


def _row(variant: str, is_base: bool, eval_set: str, mean: float) -> ResultRow:
    return done_row(variant, "base" if is_base else "swarm", is_base, eval_set, mean)


def _planted_results(sweep: runner.Sweep) -> Results:
    """The sweep's real variants as done cells, scored by a planted function of their realised weights."""
    available = vr.count_available(sweep.spec)
    rng = np.random.default_rng(0)
    cells, rows = [], []
    for v in sweep.variants:
        is_base = v.kind == "base"
        budget = {s: {"samples": c, "tokens": 0, "epochs": c / available[s]} for s, c in v.counts.items()}
        cells.append(
            CellResult(
                f"{v.name}-s{v.seeds[0]}",
                v.name,
                v.seeds[0],
                v.kind,
                None,
                is_base,
                None,
                "done",
                None,
                budget,
                dict(v.weights),
                dict(v.source_groups),
                None,
            )
        )
        w = v.weights
        ncbi, hoc = w.get("ncbi_disease", 0.0), w.get("hoc", 0.0)
        rows.append(
            _row(v.name, is_base, "ncbi_disease/dev", 50 + 40 * ncbi - 30 * ncbi**2 + rng.normal(0, 0.2))
        )
        rows.append(_row(v.name, is_base, "hoc/dev", 60 + 20 * hoc + rng.normal(0, 0.2)))
        rows.append(_row(v.name, is_base, "ncbi_disease/test", 50.0))
    return Results(rows, [], cells, "base", "holm", 1000, 0)


def _fit(tmp: Path, capsys: pytest.CaptureFixture[str], seeds: str = "[7]", budget: str = "fixed_samples"):
    path = write_sweep(tmp / "swarm", SWARM.format(seeds=seeds, budget=budget))
    sweep = runner.load(path, tmp / "swarm" / "out")
    results = _planted_results(sweep)
    out = sweep.out / runner.RESULTS_DIR
    cli._fit_if_swarm(sweep, out, results)
    return sweep, out / "fit-0", capsys.readouterr().out


def test_confirm_yaml_is_a_sweep_of_base_and_proposal_at_five_seeds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    swarm, fit_dir, printed = _fit(tmp_path, capsys)
    confirm = fit_dir / fit.CONFIRM_FILE
    proposal = yaml.safe_load((fit_dir / "proposal.yaml").read_text())["data"]

    # the printed lines name the file, ready to paste; nothing was submitted or run
    assert f"  biotune sweep submit {confirm}\n" in printed
    assert f"  biotune sweep run {confirm} --local\n" in printed
    assert "5 seeds (10 cells)" in printed and f"proposal: {fit_dir / 'proposal.yaml'}" in printed
    assert not (Path("runs") / "sweeps" / "swarm-small-confirm").exists()

    spec = load_sweep(confirm)  # the real loader: every check of a hand-written sweep file
    assert spec.name == "swarm-small-confirm" and spec.base == swarm.spec.base
    assert spec.seeds == [0, 1, 2, 3, 4] and spec.budget == "fixed_samples"
    assert spec.overrides[0] == "train.max_steps=3"  # the swarm's own overrides come along

    sweep = runner.load(confirm, tmp_path / "confirm-out")  # the real planner, on the real corpora counts
    assert [v.name for v in sweep.variants] == ["base", "mix-proposed"]
    assert sorted(c.name for c in sweep.cells) == sorted(
        f"{v}-s{s}" for v in ("base", "mix-proposed") for s in range(5)
    )
    rows = planning.plan_rows(spec, sweep.variants, vr.count_available(spec))
    assert [(r["variant"], r["seeds"]) for r in rows] == [("base", 5), ("mix-proposed", 5)]
    # the base is the swarm's base, trained on the same data
    assert sweep.variant("base").content_hash == swarm.variant("base").content_hash

    cfg = runner.cell_config(sweep, sweep.cell("mix-proposed-s1"))
    assert cfg.train.seed == 1 and cfg.train.max_steps == 3
    assert cfg.data.total_samples == proposal["total_samples"] == swarm.variant("base").total
    realised = {n: m.weight / cfg.data.total_samples for n, m in cfg.data.sources.items() if m.include}
    assert set(realised) == {n for n, e in proposal["sources"].items() if e["weight"] > 0}
    for name, entry in proposal["sources"].items():  # integer counts: within one sample of the proposal
        assert realised.get(name, 0.0) == pytest.approx(entry["weight"], abs=1.5 / cfg.data.total_samples)
    assert sorted(realised.values()) != sorted(swarm.variant("base").weights.values())  # not the base
    assert "dev" in cfg.eval.splits and "test" in cfg.eval.splits  # selection on dev, test reported


def test_a_sweep_with_five_seeds_keeps_them_and_its_budget_rule(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, fit_dir, printed = _fit(tmp_path, capsys, seeds="[11, 12, 13, 14, 15]", budget="free")
    spec = load_sweep(fit_dir / fit.CONFIRM_FILE)
    assert spec.seeds == [11, 12, 13, 14, 15] and spec.budget == "free"
    assert "5 seeds (10 cells)" in printed


def test_a_sweep_with_three_seeds_is_confirmed_at_five(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A 3-seed confirmation is itself liberal (issue 19): fewer than five seeds are replaced by five."""
    _, fit_dir, printed = _fit(tmp_path, capsys, seeds="[0, 1, 2]")
    assert load_sweep(fit_dir / fit.CONFIRM_FILE).seeds == list(fit.CONFIRM_SEEDS) == [0, 1, 2, 3, 4]
    assert "5 seeds (10 cells)" in printed and "held-out RMSE over n = 25 runs" in printed


def test_confirm_yaml_survives_quoting_and_a_mixture_with_no_weight_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "with space" / fit.CONFIRM_FILE
    assert fit.confirm_commands(path)[0] == f"biotune sweep submit '{path}'"
    base = write_sweep(tmp_path / "s", SWARM.format(seeds="[0]", budget="fixed_samples"))
    sweep = fit.confirm_sweep(load_sweep(base), {"ncbi_disease": 0.0, "hoc": 0.0})
    bad = tmp_path / "s" / "bad.yaml"
    bad.write_text(fit.confirm_yaml(sweep, bad))
    with pytest.raises(ConfigError, match="every weight is zero"):
        load_sweep(bad)

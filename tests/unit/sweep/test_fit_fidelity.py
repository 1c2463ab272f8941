"""Fit at the proxy, confirm at the target: a swarm with ``fit: true`` in a sweep with fidelities is fitted on
the proxy that ran every variant, and its ``confirm.yaml`` runs the proposal with the TARGET fidelity's
overrides (not the proxy's), loadable and expandable by the real sweep loader and planner."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import yaml
from test_fit_confirm import SWARM, _planted_results

from biotune.sweep import fit, runner
from biotune.sweep.fidelity import TARGET, Anchors, Fidelity
from biotune.sweep.results import Results
from biotune.sweep.spec import SweepSpec, load_sweep
from biotune.testing.sweeps import write_sweep

FIDELITIES = {
    "lora": Fidelity("lora", ("train.max_steps=1",)),
    TARGET: Fidelity(TARGET, ("train.max_steps=7",), Anchors(3)),
}


def test_a_swarm_fitted_at_a_proxy_writes_its_confirm_yaml_at_the_target(tmp_path: Path) -> None:
    path = write_sweep(tmp_path / "swarm", SWARM.format(seeds="[7]", budget="fixed_samples"))
    sweep = runner.load(path, tmp_path / "swarm" / "out")
    spec = dataclasses.replace(sweep.spec, fidelities=FIDELITIES)
    proxy = _planted_results(sweep)
    anchors = ["base", *[c.variant for c in proxy.cells if not c.is_base][:3]]
    # the target ran the base and 3 anchors: too few runs to fit, so a fit there would raise
    target = Results(
        [r for r in proxy.rows if r.variant in anchors],
        [],
        [c for c in proxy.cells if c.variant in anchors],
        "base",
        "holm",
        1000,
        0,
    )
    results = Results(
        [*proxy.rows, *target.rows],
        [],
        [*proxy.cells, *target.cells],
        "base",
        "holm",
        1000,
        0,
        fidelities={"lora": proxy, TARGET: target},
    )
    assert fit.fit_fidelity(spec, results) == "lora"
    ((index, report),) = fit.fit_swarm_axes(spec, results, tmp_path / "out")
    assert index == 0 and report.swarm.runs == proxy.variants()  # every proxy run was fitted
    confirm_path = report.paths["confirm"]
    confirm = yaml.safe_load(confirm_path.read_text())
    assert confirm["overrides"][:2] == ["train.max_steps=3", "train.max_steps=7"]  # sweep's, then target's
    assert "train.max_steps=1" not in confirm["overrides"] and "fidelities" not in confirm
    assert report.fidelity == "lora"
    assert "(10 cells), at the target fidelity (fitted at lora)" in "\n".join(fit.fit_summary(0, report))
    loaded = load_sweep(confirm_path)
    confirm_sweep = runner.load(confirm_path, tmp_path / "confirm-out")
    cfg = runner.cell_config(confirm_sweep, confirm_sweep.cells[0])
    assert cfg.train.max_steps == 7 and not loaded.fidelities


def test_without_fidelities_the_fit_uses_the_whole_table() -> None:
    results = Results([], [], [], "base", "holm", 1000, 0)
    assert fit.fit_fidelity(SweepSpec(), results) == ""

"""What ``sweep plan`` estimates per fidelity (``biotune plan``'s throughput at each fidelity's own settings), and
what ``collect`` reads as a cell's measured cost, on the real sweep loader and planner."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from biotune.plan import make_plan
from biotune.sweep import plan as planning
from biotune.sweep import runner
from biotune.sweep.fidelity import TARGET, Anchors, Fidelity
from biotune.sweep.results import process_seconds
from biotune.testing.sweeps import small_base, write_sweep

SWEEP = """\
name: cost
base: base.yaml
seeds: [0, 1]
controls: false
axes:
  - {type: leave_one_out, over: group}
"""
FIDELITIES = {
    "short": Fidelity("short", ("train.max_steps=2",)),
    TARGET: Fidelity(TARGET, (), Anchors(2)),
}


@pytest.fixture()
def sweep(tmp_path: Path) -> runner.Sweep:
    base = small_base().replace("runs/tiny_llama", "meta-llama/Llama-2-7b-hf")
    path = write_sweep(tmp_path, SWEEP, base=base)
    return runner.load(path, tmp_path / "out")


def test_each_fidelity_is_costed_at_its_own_settings_and_against_every_variant_at_the_target(
    sweep: runner.Sweep,
) -> None:
    spec = dataclasses.replace(sweep.spec, fidelities=FIDELITIES)
    costs, everything = planning.fidelity_costs(spec, sweep.variants, {}, gpus=8)
    by = {c.fidelity: c for c in costs}
    n_variants = len(sweep.variants)
    assert by["short"].cells == 2 * n_variants
    assert by[TARGET].cells == 2 * (1 + 2) and by[TARGET].anchors
    # the base config trains max_steps=10 full packed rows per step; the proxy 2: a fifth of the cost per cell
    plan = make_plan(spec.load_base(), nodes=1, gpus_per_node=8)
    rows = plan.micro_batch_size * 8 * plan.grad_accum
    per_cell = 10 * rows * plan.seq_len / (plan.tokens_per_second_per_gpu * 8) / 3600 * 8
    assert by[TARGET].gpu_hours == pytest.approx(round(6 * per_cell, 2))
    assert by["short"].gpu_hours == pytest.approx(round(2 * n_variants * per_cell / 5, 2), rel=1e-3)
    assert everything == pytest.approx(round(2 * n_variants * per_cell, 2))
    text = planning.format_fidelity_costs(costs, everything)
    assert "| **this design** |" in text and f"every variant at {TARGET}" in text
    assert "% of running every variant" in text


def test_an_unknown_model_size_is_said_not_guessed(tmp_path: Path) -> None:
    path = write_sweep(tmp_path, SWEEP)
    sweep = runner.load(path, tmp_path / "out")
    spec = dataclasses.replace(sweep.spec, fidelities=FIDELITIES)
    costs, everything = planning.fidelity_costs(spec, sweep.variants, {}, gpus=8)
    assert everything is None and all(c.gpu_hours is None for c in costs)
    assert "unknown" in planning.format_fidelity_costs(costs, everything)


def test_measured_cost_is_train_wall_seconds_times_processes(tmp_path: Path) -> None:
    cell = tmp_path / "cell"
    (cell / runner.TRAIN_DIR).mkdir(parents=True)
    assert runner._train_processes(cell) is None  # noqa: SLF001 (a cell that never trained)
    (cell / runner.TRAIN_DIR / "run_info.json").write_text(json.dumps({"world_size": 2}))
    assert runner._train_processes(cell) == 2  # noqa: SLF001
    assert process_seconds(12.5, 2) == 25.0
    assert process_seconds(None, 2) is None and process_seconds(12.5, None) is None

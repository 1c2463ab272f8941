"""What ``sweep plan`` estimates per variant: the disk a cell keeps (one rule, in ``biotune.plan``, per ``keep``
policy of the sweep file) and the GPU-hours, on the real sweep loader and planner."""

from __future__ import annotations

from pathlib import Path

import pytest

from biotune.plan import KEPT_BYTES_PER_PARAM, LLAMA2_7B, LLAMA2_70B, kept_bytes
from biotune.sweep import plan as planning
from biotune.sweep import runner
from biotune.sweep.spec import KEEP_POLICIES
from biotune.testing.sweeps import small_base, write_sweep

SWEEP = """\
name: estimate
base: base.yaml
seeds: [0, 1]
keep: {keep}
controls: false
axes:
  - {{type: leave_one_out, over: group}}
"""


def test_the_rule_covers_every_keep_policy_and_sizes_a_70b_checkpoint_near_1_tb() -> None:
    assert set(KEPT_BYTES_PER_PARAM) == set(KEEP_POLICIES)
    params = LLAMA2_70B.total_params()
    assert 1.0e12 < kept_bytes(params, "checkpoint") < 1.4e12  # DESIGN.md: "about 1 TB"
    assert kept_bytes(params, "export") == 2 * params  # bf16 weights
    assert kept_bytes(params, "predictions") == 0


@pytest.mark.parametrize("keep", KEEP_POLICIES)
def test_disk_per_variant_is_the_kept_bytes_of_each_seed(tmp_path: Path, keep: str) -> None:
    base = small_base().replace("runs/tiny_llama", "meta-llama/Llama-2-7b-hf")
    path = write_sweep(tmp_path, SWEEP.format(keep=keep), base=base)
    sweep = runner.load(path, tmp_path / "out")
    estimate = planning.cell_estimator(sweep, {}, gpus=8)
    assert estimate is not None
    variant = sweep.variants[0]
    got = estimate(variant)
    assert got["disk_gb"] == round(kept_bytes(LLAMA2_7B.total_params(), keep) * 2 / 1e9, 1)
    assert got["gpu_hours"] == 0.0  # no tokens measured, no training time


def test_an_unknown_model_size_gives_no_estimate(tmp_path: Path) -> None:
    path = write_sweep(tmp_path, SWEEP.format(keep="export"))
    sweep = runner.load(path, tmp_path / "out")
    assert planning.cell_estimator(sweep, {}, gpus=8) is None

"""Rank layout from torchrun or SLURM variables, rank_zero_first, RNG round trip."""

from __future__ import annotations

import random

import pytest
import torch

from biotune import distributed as dist
from biotune.errors import LaunchError


def test_torchrun_variables_win_over_slurm() -> None:
    env = {
        "RANK": "3",
        "LOCAL_RANK": "1",
        "WORLD_SIZE": "4",
        "MASTER_ADDR": "10.0.0.1",
        "MASTER_PORT": "29600",
        "SLURM_PROCID": "0",
        "SLURM_NTASKS": "2",
    }
    d = dist.read_env(env)
    assert (d.rank, d.local_rank, d.world_size, d.master_addr, d.master_port, d.launcher) == (
        3,
        1,
        4,
        "10.0.0.1",
        "29600",
        "torchrun",
    )
    assert not d.is_rank_zero


def test_srun_without_torchrun_uses_slurm_variables() -> None:
    d = dist.read_env({"SLURM_PROCID": "1", "SLURM_LOCALID": "1", "SLURM_NTASKS": "2", "MASTER_ADDR": "n1"})
    assert (d.rank, d.local_rank, d.world_size, d.launcher) == (1, 1, 2, "slurm")


def test_srun_without_master_addr_says_what_to_export() -> None:
    with pytest.raises(LaunchError, match="MASTER_ADDR"):
        dist.read_env({"SLURM_PROCID": "0", "SLURM_NTASKS": "2"})


def test_bad_rank_values_are_launch_errors() -> None:
    with pytest.raises(LaunchError, match="not an integer"):
        dist.read_env({"RANK": "x", "WORLD_SIZE": "2"})
    with pytest.raises(LaunchError, match="outside world size"):
        dist.read_env({"RANK": "2", "WORLD_SIZE": "2"})


def test_plain_process_is_a_world_of_one() -> None:
    d = dist.read_env({})
    assert (d.rank, d.world_size, d.launcher) == (0, 1, "single")


def test_rank_zero_first_without_process_group_runs_body() -> None:
    ran = []
    with dist.rank_zero_first():
        ran.append(dist.rank())
    assert ran == [0] and dist.all_gather_objects("x") == ["x"] and dist.all_reduce_sum([1.0]) == [1.0]


def test_rng_state_round_trip() -> None:
    dist.seed_everything(5)
    state = dist.rng_state()
    first = (random.random(), torch.rand(3))
    dist.set_rng_state(state)
    again = (random.random(), torch.rand(3))
    assert first[0] == again[0] and torch.equal(first[1], again[1])


def test_fault_injection_parsing() -> None:
    assert dist.fault_kill_step({}) is None
    assert dist.fault_kill_step({"BIOTUNE_FAULT_KILL_AT_STEP": "6:1"}) == (6, 1)
    assert dist.fault_kill_step({"BIOTUNE_FAULT_KILL_AT_STEP": "4"}) == (4, 0)

"""The peak MFU is taken against: config, table, or the measured matmul probe on CPU (so ``perf/mfu`` is never
absent), and a real CPU training step's MFU against the measured peak lies in (0, 1]."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch

from biotune.train.hardware import Peak, measured_peak_flops, mfu, resolve_peak, training_flops_per_token


def test_peak_sources_in_order() -> None:
    assert resolve_peak("bf16", 2.0, torch.bfloat16, name="cpu") == Peak(2e12, "config")
    assert resolve_peak("bf16", None, torch.bfloat16, name="NVIDIA H100 80GB HBM3") == Peak(989e12, "table")
    measured = resolve_peak("fp32", None, torch.float32, name="cpu")
    assert measured.source == "measured" and 1e8 < measured.flops < 1e14, measured


def test_measured_peak_is_cached_per_process() -> None:
    first = measured_peak_flops(torch.float32, "cpu")
    hits = measured_peak_flops.cache_info().hits
    assert measured_peak_flops(torch.float32, "cpu") == first
    assert measured_peak_flops.cache_info().hits == hits + 1


def test_cpu_training_mfu_against_the_measured_peak_is_in_unit_interval(tiny_model: Path) -> None:
    """Forward + backward of the tiny Llama on CPU, timed: MFU = 6N+attention FLOPs per token x tokens/s / peak."""
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32)
    seq, rows = 128, 4
    batch = torch.randint(0, model.config.vocab_size, (rows, seq))
    model(input_ids=batch, labels=batch).loss.backward()  # warm-up
    start = time.perf_counter()
    steps = 3
    for _ in range(steps):
        model(input_ids=batch, labels=batch, use_cache=False).loss.backward()
    tokens_per_s = steps * rows * seq / (time.perf_counter() - start)
    c = model.config
    flops = training_flops_per_token(model.num_parameters(), c.num_hidden_layers, c.hidden_size, seq)
    peak = resolve_peak("fp32", None, torch.float32, name="cpu")
    util = mfu(flops, tokens_per_s, peak.flops)
    assert util is not None and 0.0 < util <= 1.0, (util, tokens_per_s, peak)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
def test_probe_runs_in_the_runs_dtype(dtype: torch.dtype) -> None:
    assert measured_peak_flops(dtype, "cpu") > 0

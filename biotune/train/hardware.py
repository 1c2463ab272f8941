"""Device peaks and training FLOPs: the one table and the one formula behind every MFU biotune prints.

Both the trainer's logged MFU and ``biotune plan``'s throughput estimate use :func:`training_flops_per_token`
(6·N for the matmuls plus 12·L·h·s for the attention scores, PaLM appendix B) and :data:`PEAK_TFLOPS`, so a
planned MFU and a measured one are comparable.

The trainer's peak (:func:`resolve_peak`) comes from ``train.peak_tflops`` when set, else from the table matched
against the CUDA device name, else (CPUs, unknown GPUs) from :func:`measured_peak_flops`: the best throughput of
a dense square matmul in the run's dtype on this process's device, measured once per process. So ``perf/mfu`` is
always logged; against a measured peak it is the fraction of what this machine's matmul kernel reaches, not of a
datasheet number, and it is comparable between runs on the same machine only. Set ``train.peak_tflops`` to
compare against a fixed figure.
This module imports no torch at import time (``biotune plan`` stays torch-free).
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from typing import Any

from biotune.config import PRECISIONS

#: Dense peak TFLOP/s per device for 16-bit (bf16/fp16) and fp32 (TF32 tensor cores where they exist).
PEAK_TFLOPS: dict[str, dict[str, float]] = {
    "H200": {"bf16": 989.0, "fp16": 989.0, "fp32": 494.5},
    "H100 SXM": {"bf16": 989.0, "fp16": 989.0, "fp32": 494.5},
    "H100 NVL": {"bf16": 835.0, "fp16": 835.0, "fp32": 417.5},
    "H100 PCIe": {"bf16": 756.0, "fp16": 756.0, "fp32": 378.0},
    "H100": {"bf16": 989.0, "fp16": 989.0, "fp32": 494.5},
    "GH200": {"bf16": 989.0, "fp16": 989.0, "fp32": 494.5},
    "B200": {"bf16": 2250.0, "fp16": 2250.0, "fp32": 1100.0},
    "A100": {"bf16": 312.0, "fp16": 312.0, "fp32": 156.0},
    "A800": {"bf16": 312.0, "fp16": 312.0, "fp32": 156.0},
    "L40S": {"bf16": 362.0, "fp16": 362.0, "fp32": 183.0},
    "A10G": {"bf16": 70.0, "fp16": 70.0, "fp32": 35.0},
    "L4": {"bf16": 121.0, "fp16": 121.0, "fp32": 60.0},
    "V100": {"bf16": 0.0, "fp16": 125.0, "fp32": 15.7},
    "MI300X": {"bf16": 1307.0, "fp16": 1307.0, "fp32": 163.4},
    "MI250X": {"bf16": 383.0, "fp16": 383.0, "fp32": 47.9},
}
assert all(tuple(row) == PRECISIONS for row in PEAK_TFLOPS.values()), "one peak per model.dtype choice"

#: The device ``biotune plan`` assumes when neither ``--peak-tflops`` nor ``train.peak_tflops`` is given.
DEFAULT_PLAN_DEVICE = "H100"


def device_name() -> str:
    """The accelerator's name (``cpu`` without CUDA)."""
    import torch

    return torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"


def lookup_peak_tflops(name: str, dtype: str) -> float | None:
    """The table's peak for a device name (longest matching key wins), or None when unknown."""
    for key in sorted(PEAK_TFLOPS, key=len, reverse=True):
        if key.lower() in name.lower():
            peak = PEAK_TFLOPS[key].get(dtype, 0.0)
            return peak or None
    return None


def peak_flops(dtype: str, override_tflops: float | None = None, name: str | None = None) -> float | None:
    """Peak FLOP/s per device: the config's override, else the table entry for this device."""
    if override_tflops:
        return override_tflops * 1e12
    tflops = lookup_peak_tflops(name or device_name(), dtype)
    return tflops * 1e12 if tflops else None


#: Side of the square matrices the peak probe multiplies (2·n³ FLOPs each), on CPU and on an unknown GPU.
PROBE_SIZE: dict[str, int] = {"cpu": 512, "cuda": 4096}
#: The probe times multiplications (after one warm-up) for at least :data:`PROBE_SECONDS` and at least
#: :data:`PROBE_MIN_REPEATS` of them, at most :data:`PROBE_MAX_REPEATS`; the fastest gives the peak. Taking the
#: best over a quarter second finds the kernel's speed even on a shared machine, where the median can be 5x
#: slower (measured: 512² fp32 on a loaded 2-core VM, best 188 GFLOP/s, median 32).
PROBE_SECONDS = 0.25
PROBE_MIN_REPEATS = 5
PROBE_MAX_REPEATS = 200


@dataclass(frozen=True)
class Peak:
    """The per-device peak MFU is taken against, and where it came from."""

    flops: float
    """Peak FLOP/s of one device (one rank)."""
    source: str
    """``config`` (``train.peak_tflops``), ``table`` (:data:`PEAK_TFLOPS`) or ``measured`` (the matmul probe)."""


@functools.cache
def measured_peak_flops(torch_dtype: Any, device: str) -> float:
    """FLOP/s of the fastest of repeated square matmuls in ``torch_dtype`` on ``device`` (see :data:`PROBE_SECONDS`).

    Cached per process (per dtype and device): the probe runs once, on this process's threads, before training,
    and takes about :data:`PROBE_SECONDS` (more when one multiplication is slower than that). It measures what the matmul kernel reaches here (no datasheet), so
    it is the peak for CPUs and for GPUs missing from :data:`PEAK_TFLOPS`.
    """
    import torch

    n = PROBE_SIZE["cuda" if device.startswith("cuda") else "cpu"]
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=gen).to(device=device, dtype=torch_dtype)
    b = torch.randn(n, n, generator=gen).to(device=device, dtype=torch_dtype)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    torch.matmul(a, b)
    sync()
    best, repeats, began = float("inf"), 0, time.perf_counter()
    while repeats < PROBE_MIN_REPEATS or (
        repeats < PROBE_MAX_REPEATS and time.perf_counter() - began < PROBE_SECONDS
    ):
        start = time.perf_counter()
        torch.matmul(a, b)
        sync()
        best = min(best, time.perf_counter() - start)
        repeats += 1
    return 2.0 * n**3 / max(best, 1e-9)


def resolve_peak(
    dtype: str, override_tflops: float | None, torch_dtype: Any, name: str | None = None
) -> Peak:
    """The trainer's peak: ``train.peak_tflops``, else the table entry of this device, else the matmul probe.

    Args:
        dtype: ``model.dtype`` (a key of the table's rows).
        override_tflops: ``train.peak_tflops`` (validated positive and finite by the config).
        torch_dtype: the torch dtype of ``dtype``, for the probe.
        name: the device name (default :func:`device_name`).
    """
    if override_tflops:
        return Peak(override_tflops * 1e12, "config")
    name = name or device_name()
    known = peak_flops(dtype, name=name)
    if known:
        return Peak(known, "table")
    return Peak(measured_peak_flops(torch_dtype, "cpu" if name == "cpu" else "cuda"), "measured")


def training_flops_per_token(
    num_params: int, layers: int, hidden: int, seq_len: int, trainable_params: int | None = None
) -> float:
    """Training FLOPs per token: forward 2·N, backward 2·N for the activation gradients plus 2·T for the weight
    gradients of the T trainable parameters (T = N: the usual 6·N; LoRA: T = the adapter's), plus 12·L·h·s for
    the attention scores.

    No activation recomputation is counted (MFU, not hardware FLOPs utilisation).
    """
    trainable = num_params if trainable_params is None else trainable_params
    return 4.0 * num_params + 2.0 * trainable + 12.0 * layers * hidden * seq_len


def mfu(flops_per_token: float, tokens_per_s_per_device: float, peak: float | None) -> float | None:
    """Fraction of the peak reached by ``tokens_per_s_per_device``; None without a known peak."""
    if not peak:
        return None
    return flops_per_token * tokens_per_s_per_device / peak

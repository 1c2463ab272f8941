"""Device peaks and training FLOPs: the one table and the one formula behind every MFU biotune prints.

Both the trainer's logged MFU and ``biotune plan``'s throughput estimate use :func:`training_flops_per_token`
(6·N for the matmuls plus 12·L·h·s for the attention scores, PaLM appendix B) and :data:`PEAK_TFLOPS`, so a
planned MFU and a measured one are comparable. The peak comes from ``train.peak_tflops`` when set, else from
the table matched against the CUDA device name; unknown devices (and CPUs) give no MFU rather than a guess.
This module imports no torch at import time (``biotune plan`` stays torch-free).
"""

from __future__ import annotations

#: What ``model.dtype`` accepts: the precisions the peak table and the engine know.
PRECISIONS: tuple[str, ...] = ("bf16", "fp16", "fp32")

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

"""The learning-rate schedule: linear warmup, then cosine, linear or constant (torch-free, so the config can
name the choices)."""

from __future__ import annotations

import math

from biotune.config import SCHEDULES

#: The schedules ``optim.schedule`` names (declared with the config field).
COSINE, LINEAR, CONSTANT = SCHEDULES


def lr_factor(step: int, warmup: int, total: int, schedule: str, min_ratio: float) -> float:
    """Multiplier of the peak lr after ``step`` optimizer steps: linear warmup, then cosine/linear/constant."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    if schedule == CONSTANT or total <= warmup:
        return 1.0
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    decay = 0.5 * (1.0 + math.cos(math.pi * progress)) if schedule == COSINE else 1.0 - progress
    return min_ratio + (1.0 - min_ratio) * decay

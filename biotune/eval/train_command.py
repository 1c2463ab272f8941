"""Registers ``biotune train`` (:mod:`biotune.train.run`) with its evaluation at checkpoints.

``biotune.train`` sits below ``biotune.eval`` and cannot import the evaluation code, so the command is registered
from here and handed :func:`biotune.eval.during_training.build_step_evaluation` (the evaluator the trainer calls
at ``eval.during_training`` steps) and :func:`biotune.eval.checkpoint_plan.check_sets` (the check of its sets that
runs with the other preflight checks). Like every command module, this one imports only light modules when the
parser is built; the evaluation code (torch, transformers) is imported when the command runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from biotune.config import RunConfig
from biotune.eval.checkpoint_plan import check_sets
from biotune.train import run as train_run


def _evaluator(
    cfg: RunConfig, generation_model: Any, output_dir: Path, total_steps: int, resumed_step: int | None
) -> Any:
    from biotune.eval.during_training import build_step_evaluation

    return build_step_evaluation(cfg, generation_model, output_dir, total_steps, resumed_step)


def register(subparsers: Any) -> None:
    """Add the ``train`` command with the evaluator of ``eval.during_training`` and its checks."""
    train_run.register(subparsers, evaluator=_evaluator, check=check_sets)

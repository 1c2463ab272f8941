"""The names of the metrics a training run logs: the one owner of the dashboard's sections.

Every writer (the trainer, the tracker, checkpoint evaluation) and every reader (tests, benchmarks, sweeps)
imports its names from here; ``grep`` for a literal such as ``"train/loss"`` finds only this module.

A name is ``<section>/<metric>``, and the sections are the wandb panels' groups:

=========  =====================================================================================
section    names
=========  =====================================================================================
``train``  ``train/loss``, ``train/lr``, ``train/grad_norm``, ``train/tokens`` (the x-axis),
           ``train/epoch``
``perf``   ``perf/tokens_per_s``, ``perf/tokens_per_s_per_device``, ``perf/mfu``,
           ``perf/peak_tflops`` (the peak MFU is taken against), ``perf/peak_mem_gb``
``eval``   ``eval/loss``; ``eval/<source>/<split>/<metric>`` and ``eval/<source>/<split>/parse_failures``
           (:func:`eval_metric`, :func:`eval_parse_failures`)
``data``   ``data/examples``: a table of training examples, once, where ``tracking.log_dataset_text`` allows
=========  =====================================================================================

Every section is plotted against :data:`X_AXIS` (``train/tokens``, the training tokens seen), so runs with
different batch sizes line up (:data:`STEP_METRICS`, passed to ``wandb.define_metric``). ``metrics.jsonl``
holds the same names, each line with its optimizer ``step``.

biotune releases before the sections logged flat names (``loss``, ``eval_loss``, ``tokens_per_s``...);
:data:`LEGACY_NAMES` maps each one to its section name and :func:`rename_legacy` applies the map to a record.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: The key of the optimizer step in every ``metrics.jsonl`` line (not a metric: wandb's own step).
STEP = "step"

TRAIN_LOSS = "train/loss"
"""Mean loss per unmasked token over the optimizer steps since the last log line."""
TRAIN_LR = "train/lr"
"""Learning rate after the step."""
TRAIN_GRAD_NORM = "train/grad_norm"
"""Global gradient norm of the last step (before clipping)."""
TRAIN_TOKENS = "train/tokens"
"""Training tokens seen so far, all ranks together: the x-axis of every section."""
TRAIN_EPOCH = "train/epoch"
"""Current pass over the packed rows (0-based)."""

PERF_TOKENS_PER_S = "perf/tokens_per_s"
"""Training tokens per second, all ranks together, over the steps since the last log line."""
PERF_TOKENS_PER_S_PER_DEVICE = "perf/tokens_per_s_per_device"
"""``perf/tokens_per_s`` divided by the number of ranks."""
PERF_MFU = "perf/mfu"
"""Model FLOPs utilisation per device against ``perf/peak_tflops`` (:mod:`biotune.train.hardware`)."""
PERF_PEAK_TFLOPS = "perf/peak_tflops"
"""The per-device peak MFU is measured against: ``train.peak_tflops``, the device table, or a matmul probe."""
PERF_PEAK_MEM_GB = "perf/peak_mem_gb"
"""Peak accelerator memory of rank 0 (its peak resident set size on CPU), GiB."""

EVAL_LOSS = "eval/loss"
"""Mean loss per unmasked token over the held-out split."""

DATA_EXAMPLES = "data/examples"
"""A table of training examples as text (only with ``tracking.log_dataset_text``; wandb only, logged once)."""

#: The dashboard's plotted sections (``data/`` holds one table, no curve).
SECTIONS: tuple[str, ...] = ("train", "perf", "eval")

#: The x-axis of every section: curves of runs with different batch sizes line up on tokens seen.
X_AXIS = TRAIN_TOKENS

#: ``wandb.define_metric`` arguments: each section's names (a glob) plotted against :data:`X_AXIS`.
#: The x-axis itself is defined first, without a step metric of its own.
STEP_METRICS: dict[str, str] = {f"{section}/*": X_AXIS for section in SECTIONS}

#: Flat names that biotune logged before the sections, mapped to their section names.
LEGACY_NAMES: dict[str, str] = {
    "loss": TRAIN_LOSS,
    "lr": TRAIN_LR,
    "grad_norm": TRAIN_GRAD_NORM,
    "tokens_seen": TRAIN_TOKENS,
    "epoch": TRAIN_EPOCH,
    "tokens_per_s": PERF_TOKENS_PER_S,
    "tokens_per_s_per_device": PERF_TOKENS_PER_S_PER_DEVICE,
    "mfu": PERF_MFU,
    "peak_mem_gb": PERF_PEAK_MEM_GB,
    "eval_loss": EVAL_LOSS,
}

#: What the last part of :func:`eval_parse_failures` is called.
PARSE_FAILURES = "parse_failures"


def _part(kind: str, value: str) -> str:
    if not value or "/" in value or value != value.strip():
        raise ValueError(
            f"a metric name's {kind} must be a non-empty name without '/' or blanks, got {value!r}"
        )
    return value


def eval_metric(source: str, split: str, metric: str) -> str:
    """``eval/<source>/<split>/<metric>``: a task score of one evaluation set, e.g. ``eval/ncbi_disease/dev/f1``.

    Raises:
        ValueError: a part is empty, has surrounding blanks, or contains ``/`` (it would shift the sections).
    """
    return "/".join(("eval", _part("source", source), _part("split", split), _part("metric", metric)))


def eval_parse_failures(source: str, split: str) -> str:
    """``eval/<source>/<split>/parse_failures``: the completions of one evaluation set that did not parse."""
    return eval_metric(source, split, PARSE_FAILURES)


def rename_legacy(record: Mapping[str, Any]) -> dict[str, Any]:
    """``record`` with every flat name of :data:`LEGACY_NAMES` replaced by its section name, in the same order.

    Section names and unknown keys pass unchanged; where a record holds both a flat name and its section name,
    the section name's value is kept.
    """
    out: dict[str, Any] = {}
    for key, value in record.items():
        new = LEGACY_NAMES.get(key, key)
        if new != key and new in record:
            continue
        out[new] = value
    return out


def has_legacy_names(record: Mapping[str, Any]) -> bool:
    """Whether ``record`` holds any flat name of :data:`LEGACY_NAMES`."""
    return any(key in LEGACY_NAMES for key in record)

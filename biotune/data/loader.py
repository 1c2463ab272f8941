"""Packed rows -> per-rank micro-batches, token-balanced, with an exact and cheap data position.

A built dataset split (``train/``, ``eval/``) holds unpadded packed rows. Each epoch is a seeded
permutation of the rows; each optimizer step takes the next ``world * grad_accum * micro`` rows and assigns them
to ranks and micro-steps by longest-processing-time so the non-pad tokens per rank stay balanced. The plan is
a pure function of (row lengths, seed, epoch, layout), so resuming at ``(epoch, step_in_epoch)`` skips the
consumed rows without reading them. Incomplete last steps of an epoch are dropped.

:func:`collate_packed` stacks a micro-batch of packed rows into tensors (no attention mask): rows are
right-padded to the longest row in the micro-batch, ``input_ids`` with the pad id, ``labels`` with -100, and
``position_ids`` with ``0..k-1`` for ``k`` pad tokens, i.e. the padding is one more "sequence" of the
block-diagonal attention: real tokens never attend to it and it carries no loss. This needs ``use_cache=False``
and no ``attention_mask`` in the forward call (see ``biotune.data.packing``).
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from biotune.data.dataset import ROW_COLUMNS
from biotune.data.tokenize import IGNORE_INDEX
from biotune.errors import DataError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Layout:
    """How rows are spread: ranks x micro-steps per optimizer step x rows per micro-batch."""

    world_size: int
    grad_accum: int
    micro_batch_size: int

    @property
    def rows_per_step(self) -> int:
        """Rows consumed by one optimizer step over all ranks."""
        return self.world_size * self.grad_accum * self.micro_batch_size


@dataclass(frozen=True)
class DataPosition:
    """Where the next step's rows start: epoch number and optimizer step inside that epoch."""

    epoch: int = 0
    step_in_epoch: int = 0


def _lpt(indices: list[int], lengths: np.ndarray, bins: int, capacity: int) -> list[list[int]]:
    """Longest-first into the lightest bin that still has room; every bin gets exactly ``capacity`` rows."""
    heap = [(0, b) for b in range(bins)]
    out: list[list[int]] = [[] for _ in range(bins)]
    for i in sorted(indices, key=lambda i: (-int(lengths[i]), i)):
        load, b = heapq.heappop(heap)
        out[b].append(i)
        if len(out[b]) < capacity:
            heapq.heappush(heap, (load + int(lengths[i]), b))
    return out


def plan_step(indices: list[int], lengths: np.ndarray, layout: Layout) -> list[list[list[int]]]:
    """One step's rows -> ``[rank][micro_step] -> row indices``, token-balanced across ranks."""
    per_rank = _lpt(indices, lengths, layout.world_size, layout.grad_accum * layout.micro_batch_size)
    return [_lpt(rows, lengths, layout.grad_accum, layout.micro_batch_size) for rows in per_rank]


def epoch_order(num_rows: int, seed: int, epoch: int) -> np.ndarray:
    """The seeded row permutation of ``epoch``."""
    return np.random.default_rng([seed, epoch]).permutation(num_rows)


def steps_per_epoch(num_rows: int, layout: Layout) -> int:
    """Complete optimizer steps in one pass over ``num_rows`` rows."""
    return num_rows // layout.rows_per_step


def step_rows(lengths: np.ndarray, layout: Layout, seed: int, pos: DataPosition) -> list[list[list[int]]]:
    """The rows of the step at ``pos`` (see :func:`plan_step`), computed without touching the data."""
    order = epoch_order(len(lengths), seed, pos.epoch)
    start = pos.step_in_epoch * layout.rows_per_step
    return plan_step([int(i) for i in order[start : start + layout.rows_per_step]], lengths, layout)


def advance(pos: DataPosition, per_epoch: int) -> DataPosition:
    """The position after one more step."""
    nxt = pos.step_in_epoch + 1
    return DataPosition(pos.epoch + 1, 0) if nxt >= per_epoch else DataPosition(pos.epoch, nxt)


def eval_plan(lengths: np.ndarray, layout: Layout) -> list[list[list[int]]]:
    """Eval rows -> ``[rank][batch]``; each rank gets the same number of batches (ZeRO-3 needs lockstep).

    Missing slots hold -1 (the trainer runs a zero-weight forward for them).
    """
    n, world, micro = len(lengths), layout.world_size, layout.micro_batch_size
    per_batch = world * micro
    batches = -(-n // per_batch) if n else 0
    padded = list(range(n)) + [-1] * (batches * per_batch - n)
    out: list[list[list[int]]] = [[] for _ in range(world)]
    for b in range(batches):
        chunk = padded[b * per_batch : (b + 1) * per_batch]
        for r in range(world):
            out[r].append(chunk[r::world])
    return out


def loss_tokens(batch: dict[str, torch.Tensor]) -> int:
    """Tokens that carry loss after the causal shift (labels[..., 1:] != -100)."""
    return int((batch["labels"][..., 1:] != -100).sum())


class PackedSplit:
    """One split of a built dataset directory, memory-mapped; rows are fetched by index."""

    def __init__(self, path: Path) -> None:
        from datasets import load_from_disk

        try:
            self.ds = load_from_disk(str(path))
        except FileNotFoundError as err:
            raise DataError(
                path, "not a saved dataset split", "rebuild it with `biotune data build`"
            ) from err
        except (ValueError, OSError) as err:  # pyarrow's ArrowInvalid (a ValueError) for a truncated shard
            raise DataError(
                path,
                f"the saved split cannot be read ({type(err).__name__}: {err})",
                "the built dataset is damaged: delete its directory and run `biotune data build` again",
            ) from None
        missing = [c for c in ROW_COLUMNS if c not in self.ds.column_names]
        if missing:
            raise DataError(
                path, f"missing columns {missing}", "rebuild the dataset with `biotune data build`"
            )
        self.lengths = np.asarray(self.ds["num_tokens"], dtype=np.int64)

    def __len__(self) -> int:
        return len(self.lengths)

    def rows(self, indices: list[int]) -> dict[str, list[Any]]:
        """Columns of the rows at ``indices`` (in that order)."""
        return self.ds[list(indices)]


def collate_packed(rows: Sequence[Mapping[str, Any]], pad_token_id: int | None) -> dict[str, torch.Tensor]:
    """Right-pad and stack packed rows: ``input_ids``, ``labels``, ``position_ids`` as ``(batch, longest)`` LongTensors.

    Row values may be lists or arrays. Padding is never attended by real tokens and carries no loss, so any valid
    id works: ``pad_token_id=None`` (Llama tokenizers have no pad token) pads with id 0.
    """
    if not rows:
        raise ValueError("collate_packed needs at least one row")
    pad_token_id = 0 if pad_token_id is None else pad_token_id
    width = max(len(r["input_ids"]) for r in rows)
    batch = len(rows)
    input_ids = torch.full((batch, width), int(pad_token_id), dtype=torch.long)
    labels = torch.full((batch, width), IGNORE_INDEX, dtype=torch.long)
    position_ids = torch.arange(width, dtype=torch.long).repeat(batch, 1)
    for b, row in enumerate(rows):
        n = len(row["input_ids"])
        input_ids[b, :n] = torch.as_tensor(row["input_ids"], dtype=torch.long)
        labels[b, :n] = torch.as_tensor(row["labels"], dtype=torch.long)
        position_ids[b, :n] = torch.as_tensor(row["position_ids"], dtype=torch.long)
        position_ids[b, n:] = torch.arange(width - n, dtype=torch.long)
    return {"input_ids": input_ids, "labels": labels, "position_ids": position_ids}

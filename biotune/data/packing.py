"""Best-fit-decreasing packing of tokenized samples into unpadded rows with per-sequence ``position_ids``.

A packed row is the concatenation of whole samples (never split) of at most ``capacity`` tokens, with
``position_ids`` restarting at 0 at each sample. With ``use_cache=False`` and no attention mask, transformers
derives a block-diagonal causal mask from those ``position_ids`` (sdpa, eager, flex, flash-attn varlen), so each
sample attends only to itself: packing is exact. Because every sample's first label is ``-100`` (BOS/prompt), the
shifted loss never crosses a sample boundary either.

This module owns bin packing and the row layout of the dataset contract; it does not tokenize, pad or batch
(see ``biotune.data.tokenize`` and ``biotune.data.collate``).
"""

from __future__ import annotations

import bisect
import heapq
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

ROW_COLUMNS = ("input_ids", "labels", "position_ids", "seq_lens", "sample_ids", "num_tokens", "num_loss_tokens")
"""Columns of a packed row (the built-dataset contract)."""


def _check_lengths(lengths: Sequence[int], capacity: int) -> np.ndarray:
    if capacity < 1:
        raise ValueError(f"capacity must be positive, got {capacity}")
    arr = np.asarray(lengths, dtype=np.int64).reshape(-1)
    if arr.size and arr.min() < 1:
        raise ValueError(f"sequence {int(np.argmin(arr))} is empty; every sequence needs at least one token")
    if arr.size and arr.max() > capacity:
        i = int(np.argmax(arr))
        raise ValueError(f"sequence {i} has {int(arr[i])} tokens, more than the capacity {capacity}; "
                         "drop or truncate it when tokenizing (data.truncation)")
    return arr


def pack_bfd(lengths: Sequence[int], capacity: int) -> list[list[int]]:
    """Best-fit-decreasing bin packing: indices of ``lengths`` grouped into bins whose sum is <= ``capacity``.

    Sequences are placed longest first (equal lengths in index order), each into the open bin with the smallest
    remaining space that still fits it; among bins with that same remaining space, the oldest bin wins; when none
    fits, a new bin opens. Open bins are kept in buckets keyed by remaining space, with a sorted list of the
    non-empty bucket keys, so a placement costs O(log capacity): O(n log n) overall, deterministic.
    Bins come out in opening order, each listing its indices in placement order.

    Raises ``ValueError`` for a sequence longer than ``capacity`` (or empty).
    """
    arr = _check_lengths(lengths, capacity)
    order = np.argsort(-arr, kind="stable")  # longest first, ties by index
    bins: list[list[int]] = []
    buckets: dict[int, list[int]] = {}  # remaining space -> heap of bin ids with exactly that space left
    spaces: list[int] = []  # sorted keys of non-empty buckets
    for idx, length in zip(order.tolist(), arr[order].tolist()):
        pos = bisect.bisect_left(spaces, length)
        if pos < len(spaces):
            space = spaces[pos]
            heap = buckets[space]
            b = heapq.heappop(heap)
            if not heap:
                del buckets[space]
                del spaces[pos]
        else:
            space, b = capacity, len(bins)
            bins.append([])
        bins[b].append(idx)
        left = space - length
        if left > 0:
            heap = buckets.get(left)
            if heap is None:
                buckets[left] = [b]
                bisect.insort(spaces, left)
            else:
                heapq.heappush(heap, b)
    return bins


def pack_rows(input_ids: Sequence[Sequence[int]], labels: Sequence[Sequence[int]], sample_ids: Sequence[str],
              capacity: int) -> list[dict[str, Any]]:
    """Pack tokenized samples into rows of the dataset contract (see ``ROW_COLUMNS``) with :func:`pack_bfd`.

    Each row holds whole samples back to back: ``input_ids`` and ``labels`` concatenated, ``position_ids``
    restarting at 0 per sample, ``seq_lens`` and ``sample_ids`` per sample, ``num_tokens`` (the row length) and
    ``num_loss_tokens`` (labels != -100). Token columns are int32 numpy arrays; no padding, no attention mask.
    """
    if not len(input_ids) == len(labels) == len(sample_ids):
        raise ValueError(f"{len(input_ids)} input_ids, {len(labels)} labels, {len(sample_ids)} sample_ids")
    lengths = [len(ids) for ids in input_ids]
    for i, (ids, lab) in enumerate(zip(input_ids, labels)):
        if len(ids) != len(lab):
            raise ValueError(f"sample {sample_ids[i]!r}: {len(ids)} input_ids but {len(lab)} labels")
    bins = pack_bfd(lengths, capacity)
    ramp = np.arange(capacity, dtype=np.int32)
    rows: list[dict[str, Any]] = []
    for members in bins:
        seq_lens = np.fromiter((lengths[i] for i in members), dtype=np.int32, count=len(members))
        ids = np.concatenate([np.asarray(input_ids[i], dtype=np.int32) for i in members])
        lab = np.concatenate([np.asarray(labels[i], dtype=np.int32) for i in members])
        pos = np.concatenate([ramp[:n] for n in seq_lens.tolist()])
        rows.append({"input_ids": ids, "labels": lab, "position_ids": pos, "seq_lens": seq_lens,
                     "sample_ids": [str(sample_ids[i]) for i in members], "num_tokens": int(ids.size),
                     "num_loss_tokens": int(np.count_nonzero(lab != -100))})
    log.info("packed %d samples into %d rows of capacity %d (efficiency %.4f)",
             len(lengths), len(rows), capacity, packing_efficiency(rows, capacity))
    return rows


def packing_efficiency(rows: Sequence[Mapping[str, Any]], capacity: int) -> float:
    """Non-pad tokens / (rows * capacity): 1.0 means every row is full."""
    if not rows:
        return 0.0
    return sum(int(r["num_tokens"]) for r in rows) / (len(rows) * capacity)

"""Best-fit-decreasing packing of tokenized samples into unpadded rows with per-sequence ``position_ids``.

A packed row is the concatenation of whole samples (never split) of at most ``capacity`` tokens, with
``position_ids`` restarting at 0 at each sample. With ``use_cache=False`` and no attention mask, transformers
derives a block-diagonal causal mask from those ``position_ids`` (sdpa, eager, flex, flash-attn varlen), so each
sample attends only to itself: packing is exact. Because every sample's first label is ``-100`` (BOS/prompt), the
shifted loss never crosses a sample boundary either.

This module owns bin packing and the row layout of the dataset contract; it does not tokenize, pad or batch
(see ``biotune.data.tokenize`` and ``biotune.data.loader``).
"""

from __future__ import annotations

import bisect
import heapq
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from biotune.data.dataset import ROW_COLUMNS

log = logging.getLogger(__name__)


def _check_lengths(lengths: Sequence[int], capacity: int) -> np.ndarray:
    if capacity < 1:
        raise ValueError(f"capacity must be positive, got {capacity}")
    arr = np.asarray(lengths, dtype=np.int64).reshape(-1)
    if arr.size and arr.min() < 1:
        raise ValueError(f"sequence {int(np.argmin(arr))} is empty; every sequence needs at least one token")
    if arr.size and arr.max() > capacity:
        i = int(np.argmax(arr))
        raise ValueError(
            f"sequence {i} has {int(arr[i])} tokens, more than the capacity {capacity}; "
            "drop or truncate it when tokenizing (data.truncation)"
        )
    return arr


def pack_bfd(lengths: Sequence[int], capacity: int) -> list[list[int]]:
    """Best-fit-decreasing bin packing: indices of ``lengths`` grouped into bins whose sum is <= ``capacity``.

    Sequences are placed longest first (equal lengths in index order), each into the open bin with the smallest
    remaining space that still fits it; among bins with that same remaining space, the oldest bin wins; when none
    fits, a new bin opens. Open bins are kept in buckets keyed by remaining space, with a sorted list of the
    non-empty bucket keys, so a placement costs O(log capacity): O(n log n) overall, deterministic.
    Bins come out in opening order (the first bins hold the longest sequences: shuffle rows before training),
    each listing its indices in placement order.

    Raises ``ValueError`` for a sequence longer than ``capacity`` (or empty).
    """
    arr = _check_lengths(lengths, capacity)
    order = np.argsort(-arr, kind="stable")  # longest first, ties by index
    bins: list[list[int]] = []
    buckets: dict[int, list[int]] = {}  # remaining space -> heap of bin ids with exactly that space left
    spaces: list[int] = []  # sorted keys of non-empty buckets
    for idx, length in zip(order.tolist(), arr[order].tolist(), strict=True):
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


def _gather(seqs: Sequence[Sequence[int]], order: list[int]) -> np.ndarray:
    """``seqs`` in ``order``, concatenated into one int32 array (zero conversion when they are int32 arrays)."""
    if not order:
        return np.zeros(0, dtype=np.int32)
    return np.concatenate([np.asarray(seqs[i], dtype=np.int32) for i in order])


def _restarting_positions(seq_lens: np.ndarray, total: int) -> np.ndarray:
    """0..n-1 for each sequence laid end to end (int32): a cumulative sum of +1 steps that jumps back at starts
    (summed in place: one token-sized array, not two)."""
    steps = np.ones(total, dtype=np.int32)
    if total:
        starts = np.cumsum(seq_lens[:-1], dtype=np.int64)
        steps[starts] = 1 - seq_lens[:-1]
        steps[0] = 0
    return np.cumsum(steps, dtype=np.int32, out=steps)


def pack_rows(
    input_ids: Sequence[Sequence[int]],
    labels: Sequence[Sequence[int]],
    sample_ids: Sequence[str],
    capacity: int,
    one_per_row: bool = False,
    loss_counts: Sequence[int] | np.ndarray | None = None,
) -> list[dict[str, Any]]:
    """Pack tokenized samples into rows of the dataset contract (see ``ROW_COLUMNS``) with :func:`pack_bfd`.

    Each row holds whole samples back to back: ``input_ids`` and ``labels`` concatenated, ``position_ids``
    restarting at 0 per sample, ``seq_lens`` and ``sample_ids`` per sample, ``num_tokens`` (the row length) and
    ``num_loss_tokens`` (labels != -100). Token columns are int32 numpy arrays (views into shared buffers; the
    fastest input is int32 arrays, e.g. ``TokenizedBatch.input_ids``); no padding, no attention mask.
    ``one_per_row=True`` skips packing (``data.pack=false``): one sample per row, in input order, same columns.
    ``loss_counts`` (labels other than -100, per sample) spares counting them here (``TokenizedBatch`` knows).
    """
    if not len(input_ids) == len(labels) == len(sample_ids):
        raise ValueError(f"{len(input_ids)} input_ids, {len(labels)} labels, {len(sample_ids)} sample_ids")
    lengths = np.fromiter(map(len, input_ids), dtype=np.int64, count=len(input_ids))
    label_lengths = np.fromiter(map(len, labels), dtype=np.int64, count=len(labels))
    if (bad := np.flatnonzero(lengths != label_lengths)).size:
        i = int(bad[0])
        raise ValueError(f"sample {sample_ids[i]!r}: {lengths[i]} input_ids but {label_lengths[i]} labels")
    if one_per_row:
        _check_lengths(lengths, capacity)
        bins = [[i] for i in range(len(lengths))]
    else:
        bins = pack_bfd(lengths, capacity)
    order = [i for members in bins for i in members]
    ids, lab = _gather(input_ids, order), _gather(labels, order)
    seq_lens = lengths[order].astype(np.int32)
    positions = _restarting_positions(seq_lens, ids.size)
    per_bin = np.fromiter(map(len, bins), dtype=np.int64, count=len(bins))
    seq_bounds = np.concatenate([[0], np.cumsum(per_bin)])
    tok_bounds = np.concatenate([[0], np.cumsum(np.add.reduceat(seq_lens, seq_bounds[:-1]))]) if bins else [0]
    if loss_counts is None:
        loss_counts = [int(np.count_nonzero(np.asarray(x) != -100)) for x in labels]
    loss_per_sample = np.asarray(loss_counts, dtype=np.int64)[order] if bins else np.zeros(0, np.int64)
    loss_per_row = np.add.reduceat(loss_per_sample, seq_bounds[:-1]) if bins else []
    rows: list[dict[str, Any]] = []
    for b, members in enumerate(bins):
        t0, t1, s0, s1 = (
            int(tok_bounds[b]),
            int(tok_bounds[b + 1]),
            int(seq_bounds[b]),
            int(seq_bounds[b + 1]),
        )
        rows.append(
            {
                "input_ids": ids[t0:t1],
                "labels": lab[t0:t1],
                "position_ids": positions[t0:t1],
                "seq_lens": seq_lens[s0:s1],
                "sample_ids": [str(sample_ids[i]) for i in members],
                "num_tokens": t1 - t0,
                "num_loss_tokens": int(loss_per_row[b]),
            }
        )
    log.info(
        "packed %d samples into %d rows of capacity %d (efficiency %.4f)",
        len(lengths),
        len(rows),
        capacity,
        packing_efficiency(rows, capacity),
    )
    return rows


def _end_to_end(parts: Sequence[np.ndarray]) -> np.ndarray:
    """The int32 arrays laid end to end: a view of their buffer when they already lie in it back to back (the
    rows of :func:`pack_rows` are consecutive slices of one array per column), else a copy."""
    base = parts[0].base if parts else None
    if isinstance(base, np.ndarray) and base.dtype == np.int32 and base.ndim == 1 and base.flags.c_contiguous:
        first = parts[0].__array_interface__["data"][0]
        at = first
        for p in parts:
            if p.base is not base or p.dtype != np.int32 or p.__array_interface__["data"][0] != at:
                break
            at += p.nbytes
        else:
            start = (first - base.__array_interface__["data"][0]) // base.itemsize
            return base[start : start + (at - first) // base.itemsize]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int32)


def rows_to_arrow(rows: Sequence[Mapping[str, Any]]) -> pa.Table:
    """Packed rows as a pyarrow Table with the contract's types (list<int32>, list<string>, int32), built from
    the arrays in bulk (without a copy when they are :func:`pack_rows`' views of one array per column);
    ``datasets.Dataset(table)`` wraps it without another conversion."""

    def int_lists(key: str) -> pa.Array:
        parts = [np.asarray(r[key], dtype=np.int32) for r in rows]
        offsets = np.zeros(len(parts) + 1, dtype=np.int64)
        np.cumsum([p.size for p in parts], out=offsets[1:])
        values = pa.array(_end_to_end(parts))
        if offsets[-1] < 2**31:
            return pa.ListArray.from_arrays(pa.array(offsets.astype(np.int32)), values)
        return pa.LargeListArray.from_arrays(pa.array(offsets), values)

    columns = {key: int_lists(key) for key in ("input_ids", "labels", "position_ids", "seq_lens")}
    columns["sample_ids"] = pa.array([list(r["sample_ids"]) for r in rows], type=pa.list_(pa.string()))
    for key in ("num_tokens", "num_loss_tokens"):
        columns[key] = pa.array(np.asarray([r[key] for r in rows], dtype=np.int32))
    return pa.table({key: columns[key] for key in ROW_COLUMNS})


def packing_efficiency(rows: Sequence[Mapping[str, Any]], capacity: int) -> float:
    """Non-pad tokens / (rows * capacity): 1.0 means every row is full."""
    if not rows:
        return 0.0
    return sum(int(r["num_tokens"]) for r in rows) / (len(rows) * capacity)

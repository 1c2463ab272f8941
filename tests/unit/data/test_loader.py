"""Token-balanced step plans, exact data positions, eval lockstep, and the tokenizer guard."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from biotune.data.dataset import Manifest
from biotune.data.loader import (
    DataPosition,
    Layout,
    PackedSplit,
    advance,
    epoch_order,
    eval_plan,
    loss_tokens,
    plan_step,
    step_rows,
    steps_per_epoch,
)
from biotune.errors import DataError


def test_plan_step_gives_every_rank_its_rows_and_balances_tokens() -> None:
    rng = np.random.default_rng(0)
    lengths = rng.integers(50, 2048, size=64)
    layout = Layout(world_size=4, grad_accum=2, micro_batch_size=2)
    plan = plan_step(list(range(16)), lengths, layout)
    assert [len(m) for r in plan for m in r] == [2] * 8
    assert sorted(i for r in plan for m in r for i in m) == list(range(16))
    per_rank = [sum(int(lengths[i]) for m in r for i in m) for r in plan]
    assert max(per_rank) - min(per_rank) <= int(lengths[:16].max())
    naive = [int(lengths[r * 4 : (r + 1) * 4].sum()) for r in range(4)]  # contiguous split, no balancing
    assert max(per_rank) - min(per_rank) <= max(naive) - min(naive)


def test_epoch_covers_each_row_once_and_positions_are_exact() -> None:
    lengths = np.arange(1, 31)
    layout = Layout(2, 2, 1)
    per_epoch = steps_per_epoch(len(lengths), layout)
    assert per_epoch == 7
    pos, seen = DataPosition(), []
    for _ in range(per_epoch):
        seen += [i for r in step_rows(lengths, layout, 7, pos) for m in r for i in m]
        pos = advance(pos, per_epoch)
    assert pos == DataPosition(1, 0)
    assert len(seen) == len(set(seen)) == 28  # two rows dropped: an incomplete last step
    assert step_rows(lengths, layout, 7, DataPosition(0, 3)) == step_rows(
        lengths, layout, 7, DataPosition(0, 3)
    )
    assert not np.array_equal(epoch_order(30, 7, 0), epoch_order(30, 7, 1))


def test_eval_plan_is_lockstep_with_padding_slots() -> None:
    plan = eval_plan(np.ones(5), Layout(2, 1, 2))
    assert [len(r) for r in plan] == [2, 2]
    flat = sorted(i for r in plan for b in r for i in b)
    assert flat == [-1, -1, -1, 0, 1, 2, 3, 4]


def test_loss_tokens_counts_shifted_labels() -> None:
    import torch

    batch = {"labels": torch.tensor([[5, -100, 7, 8], [-100, -100, 3, -100]])}
    assert loss_tokens(batch) == 3  # the first label of a row is never predicted


def test_tokenizer_mismatch_names_manifest_and_fix(tmp_path: Path) -> None:
    with pytest.raises(DataError) as err:
        Manifest(tokenizer_fingerprint="aaa").check_tokenizer("bbb", tmp_path)
    assert "manifest.json" in str(err.value) and "rebuild" in str(err.value)
    Manifest(tokenizer_fingerprint="aaa").check_tokenizer("aaa", tmp_path)


def test_packed_split_rejects_missing_columns(tmp_path: Path) -> None:
    from datasets import Dataset

    Dataset.from_dict({"input_ids": [[1, 2]]}).save_to_disk(str(tmp_path / "train"))
    with pytest.raises(DataError, match="missing columns"):
        PackedSplit(tmp_path / "train")

"""Best-fit-decreasing packing, the packed-row contract, the collator, and exactness of packed attention."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from biotune.data.loader import collate_packed
from biotune.data.packing import ROW_COLUMNS, pack_bfd, pack_rows, packing_efficiency, rows_to_arrow
from biotune.data.tokenize import IGNORE_INDEX, TokenizedBatch, tokenize_pairs
from biotune.sources import SAMPLE, load_records
from biotune.train import attention

# ---------------------------------------------------------------------------------------------- pack_bfd


def _first_fit_decreasing(lengths: list[int], capacity: int) -> int:
    space: list[int] = []
    for n in sorted(lengths, reverse=True):
        for b, s in enumerate(space):
            if s >= n:
                space[b] -= n
                break
        else:
            space.append(capacity - n)
    return len(space)


def _first_fit(lengths: list[int], capacity: int) -> int:
    space: list[int] = []
    for n in lengths:
        for b, s in enumerate(space):
            if s >= n:
                space[b] -= n
                break
        else:
            space.append(capacity - n)
    return len(space)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pack_bfd_places_every_index_once_within_capacity_and_beats_first_fit(seed: int) -> None:
    rng = random.Random(seed)
    capacity = 512
    lengths = [max(1, min(capacity, int(rng.lognormvariate(4.3, 0.7)))) for _ in range(3000)]
    bins = pack_bfd(lengths, capacity)
    flat = sorted(i for b in bins for i in b)
    assert flat == list(range(len(lengths)))
    assert all(sum(lengths[i] for i in b) <= capacity for b in bins)
    lower_bound = -(-sum(lengths) // capacity)
    assert lower_bound <= len(bins) <= _first_fit(lengths, capacity)
    assert len(bins) <= _first_fit_decreasing(lengths, capacity) + 1
    assert len(bins) <= 1.02 * lower_bound + 1


def test_pack_bfd_is_best_fit_not_first_fit() -> None:
    # 6 opens bin 0 (space 4), 5 opens bin 1 (space 5), then 4 must go to bin 0 (exact fit) not bin 1.
    assert pack_bfd([6, 5, 4], 10) == [[0, 2], [1]]


def test_pack_bfd_is_deterministic_and_breaks_ties_by_index() -> None:
    lengths = [3, 7, 3, 7, 5, 5, 1]
    assert pack_bfd(lengths, 10) == pack_bfd(list(lengths), 10)
    assert pack_bfd(lengths, 10) == [[1, 0], [3, 2], [4, 5], [6]]
    rng = random.Random(7)
    many = [rng.randint(1, 300) for _ in range(5000)]
    assert pack_bfd(many, 1024) == pack_bfd(np.array(many), 1024)


def test_pack_bfd_rejects_sequences_over_capacity() -> None:
    with pytest.raises(ValueError, match="more than the capacity"):
        pack_bfd([3, 11, 2], 10)
    assert pack_bfd([], 10) == []


def test_pack_rows_builds_the_dataset_contract() -> None:
    ids = [[1, 5, 6, 2], [1, 7, 2], [1, 8, 9, 9, 2], [1, 3, 2]]
    labels = [
        [IGNORE_INDEX, IGNORE_INDEX, 6, 2],
        [IGNORE_INDEX, 7, 2],
        [IGNORE_INDEX] * 3 + [9, 2],
        [IGNORE_INDEX, 3, 2],
    ]
    rows = pack_rows(ids, labels, ["a", "b", "c", "d"], capacity=8)
    assert [r["sample_ids"] for r in rows] == [["c", "b"], ["a", "d"]]
    first = rows[0]
    assert set(first) == set(ROW_COLUMNS)
    assert first["input_ids"].tolist() == [1, 8, 9, 9, 2, 1, 7, 2]
    assert first["labels"].tolist() == [IGNORE_INDEX] * 3 + [9, 2, IGNORE_INDEX, 7, 2]
    assert first["position_ids"].tolist() == [0, 1, 2, 3, 4, 0, 1, 2]
    assert first["seq_lens"].tolist() == [5, 3]
    assert (first["num_tokens"], first["num_loss_tokens"]) == (8, 4)
    assert rows[1]["num_tokens"] == 7 and rows[1]["position_ids"].tolist() == [0, 1, 2, 3, 0, 1, 2]
    assert packing_efficiency(rows, 8) == pytest.approx(15 / 16)
    given = pack_rows(ids, labels, ["a", "b", "c", "d"], capacity=8, loss_counts=[2, 2, 2, 2])
    assert [r["num_loss_tokens"] for r in given] == [r["num_loss_tokens"] for r in rows] == [4, 4]


# --------------------------------------------- exactness of packed attention (sdpa's block mask, sdpa_packed)


def _sample_pairs(n: int) -> tuple[list[str], list[str]]:
    """The first ``n`` BC5CDR-chemical sentences of 4 to 14 tokens of the sample corpus, as NER pairs."""
    prompts, targets = [], []
    for record in load_records("bc5cdr_chem", "train", SAMPLE):
        if 4 <= len(record.tokens) <= 14:
            prompts.append(
                "### Instruction: Tag chemicals.\n ### Input: " + " ".join(record.tokens) + "\n ### Output: "
            )
            lines = (f"{t} : {tag}" for t, tag in zip(record.tokens, record.tags, strict=True))
            targets.append("\n".join(lines))
            if len(prompts) == n:
                break
    return prompts, targets


@pytest.fixture(scope="module", params=["sdpa", "sdpa_packed"])
def leaky_llama(tiny_model: Path, request):
    """The tiny Llama re-initialised with std 0.5 (at 0.02 the attention is near-uniform and hides leaks), in float64.

    Once with transformers' sdpa (a block-diagonal mask from the position ids) and once with biotune's
    ``sdpa_packed`` (sdpa on each sequence alone).

    float64 keeps the comparison about attention, not rounding: in float32 the per-token losses (~15 nats at this
    init) already differ by ~2e-5 between two batch shapes, above the 1e-5 tolerance.
    """
    from transformers import AutoConfig, LlamaForCausalLM

    config = AutoConfig.from_pretrained(tiny_model)
    config.initializer_range = 0.5
    config.use_cache = False
    config._attn_implementation = attention.resolve(request.param)
    torch.manual_seed(0)
    return LlamaForCausalLM(config).double().eval()


@pytest.fixture(scope="module")
def samples(tiny_tokenizer: Any) -> TokenizedBatch:
    """Seven sample-corpus pairs of different token lengths, tokenized with prompt-masked labels."""
    prompts, targets = _sample_pairs(7)
    batch = tokenize_pairs(prompts, targets, tiny_tokenizer, max_seq_len=400)
    assert len(batch.kept) == 7 and len(set(batch.lengths)) > 3
    return batch


def _token_losses(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per-token next-token loss at every labelled position (labels shifted by one, as HF does)."""
    shifted = labels[1:]
    losses = torch.nn.functional.cross_entropy(
        logits[:-1].double(), shifted, reduction="none", ignore_index=IGNORE_INDEX
    )
    return losses[shifted != IGNORE_INDEX]


def _alone(model, samples) -> dict[int, torch.Tensor]:
    out = {}
    with torch.no_grad():
        for ids, labels in zip(samples.input_ids, samples.labels, strict=True):
            logits = model(input_ids=torch.as_tensor(ids).long()[None], use_cache=False).logits[0]
            out[len(out)] = _token_losses(logits, torch.as_tensor(labels).long())
    return out


def _per_sequence(logits: torch.Tensor, row: dict, n_real: int | None = None) -> dict[int, torch.Tensor]:
    out, start = {}, 0
    labels = torch.as_tensor(row["labels"], dtype=torch.long)
    for sid, n in zip(row["sample_ids"], row["seq_lens"].tolist(), strict=True):
        out[int(sid)] = _token_losses(logits[start : start + n], labels[start : start + n])
        start += n
    return out


def _max_diff(reference: dict[int, torch.Tensor], packed: dict[int, torch.Tensor]) -> float:
    assert set(packed) <= set(reference)
    return max(float((packed[k] - reference[k]).abs().max()) for k in packed)


def test_packed_forward_gives_each_sequence_its_unpacked_loss(leaky_llama, samples) -> None:
    reference = _alone(leaky_llama, samples)
    sids = [str(i) for i in range(len(samples.kept))]
    (row,) = pack_rows(samples.input_ids, samples.labels, sids, capacity=sum(samples.lengths))
    assert len(row["seq_lens"]) == 7
    ids = torch.as_tensor(row["input_ids"], dtype=torch.long)[None]
    with torch.no_grad():
        packed = leaky_llama(
            input_ids=ids, position_ids=torch.as_tensor(row["position_ids"]).long()[None], use_cache=False
        ).logits[0]
        leaked = leaky_llama(
            input_ids=ids, position_ids=torch.arange(ids.shape[1])[None], use_cache=False
        ).logits[0]
    assert _max_diff(reference, _per_sequence(packed, row)) < 1e-5
    # Negative control: one position ramp over the whole row = one long sequence, so later samples see earlier ones.
    assert _max_diff(reference, _per_sequence(leaked, row)) > 1e-2


def test_collated_rows_of_different_length_give_the_unpacked_losses(
    leaky_llama, samples, tiny_tokenizer
) -> None:
    reference = _alone(leaky_llama, samples)
    sids = [str(i) for i in range(len(samples.kept))]
    capacity = sum(samples.lengths) // 2 + max(samples.lengths)
    rows = pack_rows(samples.input_ids, samples.labels, sids, capacity=capacity)
    assert len(rows) == 2 and rows[0]["num_tokens"] != rows[1]["num_tokens"]
    batch = collate_packed(rows, pad_token_id=tiny_tokenizer.pad_token_id)
    width = max(r["num_tokens"] for r in rows)
    assert set(batch) == {"input_ids", "labels", "position_ids"}
    assert all(t.shape == (2, width) and t.dtype == torch.long for t in batch.values())
    short = min(range(2), key=lambda b: rows[b]["num_tokens"])
    n = rows[short]["num_tokens"]
    assert batch["input_ids"][short, n:].eq(tiny_tokenizer.pad_token_id).all()
    assert batch["labels"][short, n:].eq(IGNORE_INDEX).all()
    assert batch["position_ids"][short, n:].tolist() == list(range(width - n))
    with torch.no_grad():
        logits = leaky_llama(
            input_ids=batch["input_ids"], position_ids=batch["position_ids"], use_cache=False
        ).logits
    got: dict[int, torch.Tensor] = {}
    for b, row in enumerate(rows):
        got.update(_per_sequence(logits[b, : row["num_tokens"]], row))
    assert sorted(got) == list(range(len(samples.kept)))
    assert _max_diff(reference, got) < 1e-5
    # The whole-batch loss the trainer sees equals the token-weighted mean of the unpacked losses.
    flat = torch.nn.functional.cross_entropy(
        logits[:, :-1].reshape(-1, logits.shape[-1]).double(),
        batch["labels"][:, 1:].reshape(-1),
        ignore_index=IGNORE_INDEX,
    )
    assert float(flat) == pytest.approx(float(torch.cat(list(reference.values())).mean()), abs=1e-5)


def test_rows_to_arrow_keeps_the_contract_types_and_values(tmp_path: Path) -> None:
    from datasets import Dataset

    ids = [np.array([1, 5, 6, 2], dtype=np.int32), [1, 7, 2], [1, 8, 9, 9, 2]]
    labels = [[IGNORE_INDEX, IGNORE_INDEX, 6, 2], [IGNORE_INDEX, 7, 2], [IGNORE_INDEX] * 3 + [9, 2]]
    rows = pack_rows(ids, labels, ["a", "b", "c"], capacity=8)
    Dataset(rows_to_arrow(rows)).save_to_disk(tmp_path / "train")
    ds = Dataset.load_from_disk(tmp_path / "train")
    assert ds.column_names == list(ROW_COLUMNS)
    assert ds.features["input_ids"].feature.dtype == "int32" and ds.features["num_tokens"].dtype == "int32"
    assert ds[0] == {
        "input_ids": [1, 8, 9, 9, 2, 1, 7, 2],
        "labels": [-100] * 3 + [9, 2, -100, 7, 2],
        "position_ids": [0, 1, 2, 3, 4, 0, 1, 2],
        "seq_lens": [5, 3],
        "sample_ids": ["c", "b"],
        "num_tokens": 8,
        "num_loss_tokens": 4,
    }
    assert ds[1]["sample_ids"] == ["a"] and ds[1]["num_tokens"] == 4


def test_one_per_row_keeps_input_order_without_packing() -> None:
    ids = [[1, 5, 2], [1, 7, 7, 2], [1, 2]]
    labels = [[IGNORE_INDEX, 5, 2], [IGNORE_INDEX, 7, 7, 2], [IGNORE_INDEX, 2]]
    rows = pack_rows(ids, labels, ["a", "b", "c"], capacity=8, one_per_row=True)
    assert [r["sample_ids"] for r in rows] == [["a"], ["b"], ["c"]]
    assert [r["position_ids"].tolist() for r in rows] == [[0, 1, 2], [0, 1, 2, 3], [0, 1]]
    with pytest.raises(ValueError, match="more than the capacity"):
        pack_rows(ids, labels, ["a", "b", "c"], capacity=3, one_per_row=True)


def test_collate_pads_with_a_separate_position_block_and_accepts_list_rows() -> None:
    rows = [
        {"input_ids": [5, 6, 7, 8, 9], "labels": [-100, 6, 7, -100, 9], "position_ids": [0, 1, 2, 0, 1]},
        {"input_ids": [3, 4], "labels": [-100, 4], "position_ids": [0, 1]},
    ]
    batch = collate_packed(rows, pad_token_id=None)
    assert batch["input_ids"].tolist() == [[5, 6, 7, 8, 9], [3, 4, 0, 0, 0]]
    assert batch["labels"].tolist() == [[-100, 6, 7, -100, 9], [-100, 4, -100, -100, -100]]
    assert batch["position_ids"].tolist() == [[0, 1, 2, 0, 1], [0, 1, 0, 1, 2]]
    with pytest.raises(ValueError):
        collate_packed([], pad_token_id=0)

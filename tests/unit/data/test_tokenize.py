"""Prompt masking, truncation policies and the tokenizer fingerprint, on the tiny tokenizer and the text
of the bundled sample corpus."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from biotune.data.tokenize import IGNORE_INDEX, tokenize_pairs, tokenize_sample, tokenizer_fingerprint
from biotune.errors import ConfigError
from biotune.sources import SAMPLE, load_records


@pytest.fixture(scope="module")
def pairs() -> tuple[list[str], list[str]]:
    """NER prompt/target pairs from every NCBI-disease sentence of the bundled sample corpus (all splits)."""
    prompts, targets = [], []
    for split in ("train", "devel", "test"):
        for record in load_records("ncbi_disease", split, SAMPLE):
            words = " ".join(record.tokens)
            prompts.append(f"### Instruction: Tag every disease mention.\n ### Input: {words}\n ### Output: ")
            lines = (f"{tok} : {tag}" for tok, tag in zip(record.tokens, record.tags, strict=True))
            targets.append("\n".join(lines))
    return prompts, targets


def test_prompt_is_masked_exactly_and_target_plus_eos_is_labelled(tiny_tokenizer, pairs) -> None:
    prompts, targets = pairs
    batch = tokenize_pairs(prompts, targets, tiny_tokenizer, max_seq_len=100_000, truncation="drop")
    assert batch.kept == list(range(len(prompts))) and batch.dropped == 0 and batch.truncated == 0
    eos = tiny_tokenizer.eos_token_id
    for i, (ids, labels) in enumerate(zip(batch.input_ids, batch.labels, strict=True)):
        ids, labels = ids.tolist(), labels.tolist()
        p = tiny_tokenizer(prompts[i]).input_ids  # the tokenizer's own BOS convention
        t = tiny_tokenizer(targets[i], add_special_tokens=False).input_ids
        assert p[0] == tiny_tokenizer.bos_token_id
        assert ids == p + t + [eos]
        assert labels[: len(p)] == [IGNORE_INDEX] * len(p)
        assert labels[len(p) :] == t + [eos]
        assert IGNORE_INDEX not in labels[len(p) :]
    assert batch.total_tokens == sum(len(x) for x in batch.input_ids) == batch.offsets[-1]
    assert batch.loss_tokens == sum(sum(1 for v in lab.tolist() if v != IGNORE_INDEX) for lab in batch.labels)
    assert batch.flat_input_ids.dtype == batch.flat_labels.dtype == np.int32


def _expected_lengths(tok, prompts: list[str], targets: list[str]) -> tuple[list[int], list[int]]:
    p = [len(tok(x).input_ids) for x in prompts]
    t = [len(tok(x, add_special_tokens=False).input_ids) + 1 for x in targets]
    return p, t


def test_drop_policy_removes_and_counts_long_samples(tiny_tokenizer, pairs) -> None:
    prompts, targets = pairs
    p, t = _expected_lengths(tiny_tokenizer, prompts, targets)
    full = sorted(a + b for a, b in zip(p, t, strict=True))
    max_len = full[len(full) // 2]  # about half the samples are too long
    batch = tokenize_pairs(prompts, targets, tiny_tokenizer, max_seq_len=max_len, truncation="drop")
    expected_drop = [i for i in range(len(p)) if p[i] + t[i] > max_len]
    assert 0 < len(expected_drop) < len(p)
    assert batch.dropped_indices == expected_drop and batch.dropped == len(expected_drop)
    assert batch.kept == [i for i in range(len(p)) if i not in expected_drop]
    assert batch.truncated == 0
    assert all(len(x) <= max_len for x in batch.input_ids)
    assert batch.counts()["samples"] == len(prompts)


def test_truncate_policy_cuts_the_prompt_before_its_tail_and_keeps_the_target(tiny_tokenizer, pairs) -> None:
    prompts, targets = pairs
    p, t = _expected_lengths(tiny_tokenizer, prompts, targets)
    tail = 6
    max_len = sorted(a + b for a, b in zip(p, t, strict=True))[len(p) // 2]
    batch = tokenize_pairs(
        prompts, targets, tiny_tokenizer, max_seq_len=max_len, truncation="truncate", keep_prompt_tail=tail
    )
    too_long = [i for i in range(len(p)) if p[i] + t[i] > max_len]
    target_too_long = [i for i in too_long if t[i] + 1 + tail > max_len]
    assert batch.dropped_indices == target_too_long
    assert batch.truncated_indices == [i for i in too_long if i not in target_too_long]
    assert batch.truncated > 0
    eos = tiny_tokenizer.eos_token_id
    for j, i in enumerate(batch.kept):
        ids, labels = batch.input_ids[j].tolist(), batch.labels[j].tolist()
        full_p = tiny_tokenizer(prompts[i]).input_ids
        full_t = tiny_tokenizer(targets[i], add_special_tokens=False).input_ids
        assert len(ids) <= max_len and len(ids) == len(labels)
        assert ids[len(ids) - len(full_t) - 1 :] == full_t + [eos]  # target never cut
        n_prompt = len(ids) - len(full_t) - 1
        assert labels == [IGNORE_INDEX] * n_prompt + full_t + [eos]
        kept_p = ids[:n_prompt]
        if i in batch.truncated_indices:
            assert len(ids) == max_len
            assert (
                kept_p == full_p[: n_prompt - tail] + full_p[-tail:]
            )  # head (BOS, instruction) + output cue
        else:
            assert kept_p == full_p


def test_target_longer_than_max_seq_len_is_dropped_even_when_truncating(tiny_tokenizer) -> None:
    target = " ".join(["disease : O"] * 200)
    assert tokenize_sample("### Input: x\n ### Output: ", target, tiny_tokenizer, 64, "truncate") is None
    kept = tokenize_sample("### Input: x\n ### Output: ", "x : O", tiny_tokenizer, 64, "truncate")
    assert kept is not None and kept[0][-1] == tiny_tokenizer.eos_token_id


def test_unknown_truncation_policy_names_the_config_key(tiny_tokenizer) -> None:
    with pytest.raises(ConfigError, match="data.truncation"):
        tokenize_pairs(["a"], ["b"], tiny_tokenizer, 16, truncation="cut")


def test_doubled_bos_from_a_rendered_template_is_collapsed(tiny_tokenizer) -> None:
    ids, labels = tokenize_sample("<s>[INST] hi [/INST]", "yes", tiny_tokenizer, 64)
    bos = tiny_tokenizer.bos_token_id
    assert ids[0] == bos and ids[1] != bos


def test_fingerprint_survives_save_load_and_differs_for_another_tokenizer(
    tiny_tokenizer, pairs, tmp_path: Path
) -> None:
    from transformers import AutoTokenizer

    from biotune.testing.tiny import train_tokenizer

    fp = tokenizer_fingerprint(tiny_tokenizer)
    assert fp == tokenizer_fingerprint(tiny_tokenizer)
    tiny_tokenizer.save_pretrained(tmp_path / "copy")
    assert tokenizer_fingerprint(AutoTokenizer.from_pretrained(tmp_path / "copy")) == fp
    tiny_tokenizer(["a", "a longer text"], padding=True)  # runtime padding state must not matter
    assert tokenizer_fingerprint(tiny_tokenizer) == fp

    prompts, targets = pairs
    other = train_tokenizer(prompts + targets, vocab_size=400)
    assert tokenizer_fingerprint(other) != fp
    renamed = AutoTokenizer.from_pretrained(tmp_path / "copy", eos_token="<pad>")
    assert tokenizer_fingerprint(renamed) != fp


def test_backend_fast_path_and_fallback_give_the_tokenizers_own_ids(tiny_model: Path, pairs) -> None:
    from transformers import AutoTokenizer

    prompts, targets = pairs
    plain = AutoTokenizer.from_pretrained(tiny_model)
    expected = tokenize_pairs(prompts, targets, plain, 100_000)
    assert expected.flat_input_ids.tolist() == [
        i
        for p, t in zip(prompts, targets, strict=True)
        for i in plain(p).input_ids + plain(t, add_special_tokens=False).input_ids + [plain.eos_token_id]
    ]
    configured = AutoTokenizer.from_pretrained(tiny_model)
    configured.backend_tokenizer.enable_truncation(max_length=5)  # a tokenizer.json with truncation set
    got = tokenize_pairs(prompts, targets, configured, 100_000)
    assert got.flat_input_ids.tolist() == expected.flat_input_ids.tolist()
    assert got.flat_labels.tolist() == expected.flat_labels.tolist()


def test_first_token_is_never_labelled_even_with_an_empty_prompt(tiny_model: Path) -> None:
    from transformers import AutoTokenizer

    no_bos = AutoTokenizer.from_pretrained(tiny_model)
    no_bos.backend_tokenizer.post_processor = None  # a tokenizer that adds no BOS
    ids, labels = tokenize_sample("", "x : O", no_bos, 64)
    assert ids[0] != no_bos.bos_token_id and labels[0] == IGNORE_INDEX
    assert labels[1:] == ids[1:] and ids[-1] == no_bos.eos_token_id


def test_loss_counts_are_the_labels_that_carry_loss_also_across_chunks(tiny_tokenizer: Any) -> None:
    from biotune.data.tokenize import ChunkedBatch

    prompts = ["", "Instruction: tag the genes.", "x " * 300, "Short."]
    targets = ["BRCA1 : B", "", "O", "none"]
    whole = tokenize_pairs(prompts, targets, tiny_tokenizer, 64, "truncate")
    counted = [int(np.count_nonzero(lab != -100)) for lab in whole.labels]
    assert whole.loss_counts.tolist() == counted and whole.loss_tokens == sum(counted)
    parts = ChunkedBatch(
        [
            tokenize_pairs(prompts[:2], targets[:2], tiny_tokenizer, 64, "truncate"),
            tokenize_pairs(prompts[2:], targets[2:], tiny_tokenizer, 64, "truncate"),
        ]
    )
    assert parts.loss_counts.tolist() == counted


def test_chunks_read_as_one_batch_without_copying_their_tokens(tiny_tokenizer: Any) -> None:
    from biotune.data.tokenize import ChunkedBatch

    prompts = ["Tag the genes.", "x " * 300, "", "Short.", "y " * 40]
    targets = ["BRCA1 : B", "O", "none", "", "O"]
    whole = tokenize_pairs(prompts, targets, tiny_tokenizer, 48, "drop")
    chunks = [
        tokenize_pairs(prompts[a:b], targets[a:b], tiny_tokenizer, 48, "drop") for a, b in ((0, 2), (2, 5))
    ]
    chunked = ChunkedBatch(chunks)
    assert whole.dropped == chunked.dropped >= 1
    assert chunked.kept == whole.kept and chunked.dropped_indices == whole.dropped_indices
    assert [x.tolist() for x in chunked.input_ids] == [x.tolist() for x in whole.input_ids]
    assert [x.tolist() for x in chunked.labels] == [x.tolist() for x in whole.labels]
    assert any(np.shares_memory(view, chunks[1].flat_input_ids) for view in chunked.input_ids)
    assert (chunked.total_tokens, chunked.loss_tokens) == (whole.total_tokens, whole.loss_tokens)


def test_tokenizer_of_is_the_data_tokenizer_else_the_models() -> None:
    from biotune.config import RunConfig
    from biotune.data.tokenize import load_tokenizer, tokenizer_of

    cfg = RunConfig()
    cfg.model.name_or_path = "runs/base"
    assert tokenizer_of(cfg) == "runs/base"
    assert tokenizer_of(cfg, Path("runs/x/export")) == "runs/x/export", "eval: the model it scores"
    cfg.data.tokenizer = "tok"
    assert tokenizer_of(cfg) == tokenizer_of(cfg, Path("runs/x/export")) == "tok"
    cfg.data.tokenizer = cfg.model.name_or_path = ""
    with pytest.raises(ConfigError, match="data.tokenizer"):
        load_tokenizer(tokenizer_of(cfg))

"""``sdpa_packed``: the same numbers as transformers' sdpa on packed rows (values and gradients), and an exact
hand-over to sdpa wherever it does not apply (padding masks, generation with a cache, short sliding windows).

The models are tiny and random, re-initialised with std 0.5 so that attention is far from uniform (a leak across
sequences, or a missing mask, moves the numbers well above the tolerances), and run in float64.
"""

from __future__ import annotations

import pytest
import torch

from biotune.train import attention


def _model(impl: str, kind: str = "llama", **overrides):
    from transformers import LlamaConfig, LlamaForCausalLM, MistralConfig, MistralForCausalLM

    config_cls, model_cls = (
        (LlamaConfig, LlamaForCausalLM) if kind == "llama" else (MistralConfig, MistralForCausalLM)
    )
    fields = dict(
        vocab_size=97,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=128,
        initializer_range=0.5,
        use_cache=False,
    )
    fields.update(overrides)
    config = config_cls(**fields)
    config._attn_implementation = attention.resolve(impl)
    torch.manual_seed(0)
    return model_cls(config).double()


def _packed_batch(seed: int = 0) -> dict[str, torch.Tensor]:
    """Two rows: [7, 12, 5] tokens and [9, 4] tokens + 11 padding collated as its own 0..10 ramp."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, 97, (2, 24), generator=g)
    pos = torch.stack(
        [
            torch.cat([torch.arange(7), torch.arange(12), torch.arange(5)]),
            torch.cat([torch.arange(9), torch.arange(4), torch.arange(11)]),
        ]
    )
    labels = ids.clone()
    labels[1, 13:] = -100
    return {"input_ids": ids, "position_ids": pos, "labels": labels}


def test_sequence_bounds_follow_position_restarts_and_pad_blocks() -> None:
    pos = _packed_batch()["position_ids"]
    assert attention.sequence_bounds(pos, 2) == [[0, 7, 19, 24], [0, 9, 13, 24]]
    assert (
        attention.sequence_bounds(torch.arange(6)[None], 3) == [[0, 6]] * 3
    )  # one ramp, broadcast to the batch
    # a position that jumps (not a restart at 0) also starts a sequence, as in transformers
    assert attention.sequence_bounds(torch.tensor([[0, 1, 2, 5, 6]]), 1) == [[0, 3, 5]]


@pytest.mark.parametrize("kv_heads", [4, 2], ids=["mha", "gqa"])
def test_packed_rows_match_sdpa_values_and_gradients(kv_heads: int) -> None:
    batch = _packed_batch()
    out = {}
    for impl in ("sdpa", "sdpa_packed"):
        model = _model(impl, num_key_value_heads=kv_heads).train()
        result = model(**batch)
        result.loss.backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters()}
        out[impl] = (result.logits.detach(), result.loss.detach(), grads)
    (ref_logits, ref_loss, ref_grads), (logits, loss, grads) = out["sdpa"], out["sdpa_packed"]
    real = (
        batch["labels"] != -100
    )  # the padding block's outputs are ignored, and sdpa fully masks nothing there
    assert torch.allclose(logits[real], ref_logits[real], atol=1e-10)
    assert float(loss) == pytest.approx(float(ref_loss), abs=1e-10)
    assert max(float((grads[n] - ref_grads[n]).abs().max()) for n in grads) < 1e-9


def test_each_packed_sequence_sees_only_itself() -> None:
    """Negative control on the same model: cutting the row at the wrong places changes the logits."""
    model = _model("sdpa_packed").eval()
    batch = _packed_batch()
    ids = batch["input_ids"][:1, 7:19]
    with torch.no_grad():
        packed = model(input_ids=batch["input_ids"][:1], position_ids=batch["position_ids"][:1]).logits[
            0, 7:19
        ]
        alone = model(input_ids=ids).logits[0]
        one_ramp = model(input_ids=batch["input_ids"][:1], position_ids=torch.arange(24)[None]).logits[
            0, 7:19
        ]
    assert torch.allclose(packed, alone, atol=1e-10)
    assert float((one_ramp - alone).abs().max()) > 1e-2


def test_padding_masks_hand_over_to_sdpa() -> None:
    """A left-padded batch with an attention mask gives exactly sdpa's outputs (dropping the mask would not)."""
    batch = _packed_batch()
    mask = torch.ones(2, 24, dtype=torch.long)
    mask[1, :9] = 0
    with torch.no_grad():
        ref = _model("sdpa").eval()(input_ids=batch["input_ids"], attention_mask=mask).logits
        got = _model("sdpa_packed").eval()(input_ids=batch["input_ids"], attention_mask=mask).logits
    assert torch.allclose(got[mask.bool()], ref[mask.bool()], atol=1e-10)


def test_generation_with_a_cache_matches_sdpa() -> None:
    prompts = torch.tensor([[0, 0, 5, 9, 14, 3], [8, 7, 6, 5, 4, 3]])
    mask = (prompts != 0).long()
    outputs = {}
    for impl in ("sdpa", "sdpa_packed"):
        model = _model(impl, use_cache=True).eval()
        outputs[impl] = model.generate(
            input_ids=prompts, attention_mask=mask, max_new_tokens=8, do_sample=False, pad_token_id=0
        )
    assert torch.equal(outputs["sdpa"], outputs["sdpa_packed"])
    # unpadded single prompt: no mask at all, the cached decode path still agrees
    single = {
        impl: _model(impl, use_cache=True)
        .eval()
        .generate(input_ids=prompts[1:], max_new_tokens=8, do_sample=False, pad_token_id=0)
        for impl in ("sdpa", "sdpa_packed")
    }
    assert torch.equal(single["sdpa"], single["sdpa_packed"])


def test_a_sliding_window_shorter_than_the_row_hands_over_to_sdpa() -> None:
    ids = torch.randint(3, 97, (1, 20), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ref = _model("sdpa", kind="mistral", sliding_window=6).eval()(input_ids=ids).logits
        got = _model("sdpa_packed", kind="mistral", sliding_window=6).eval()(input_ids=ids).logits
        no_window = _model("sdpa", kind="mistral", sliding_window=None).eval()(input_ids=ids).logits
    assert torch.allclose(got, ref, atol=1e-10)
    assert float((no_window - ref).abs().max()) > 1e-2  # the window matters at this length


def test_saved_model_does_not_depend_on_biotune(tmp_path) -> None:
    """The attention choice is not written into config.json: exports load anywhere with any attention."""
    model = _model("sdpa_packed")
    model.save_pretrained(tmp_path)
    assert "sdpa_packed" not in (tmp_path / "config.json").read_text()

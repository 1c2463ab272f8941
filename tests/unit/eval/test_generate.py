"""Batched generation with the tiny Llama: left padding, length sorting, EOS/max_new_tokens, model loading."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from biotune.errors import CheckpointError, ConfigError, DataError
from biotune.eval import generate
from biotune.train import checkpoint as layout

PROMPTS = {
    f"ex{i}": "### Instruction: tag the diseases\n### Input: "
    + " ".join(["cancer of the breast"] * (i + 1))
    + "\n### Output:"
    for i in range(7)
}


@pytest.fixture(scope="module")
def loaded(tiny_model: Path):
    return generate.load_model(
        generate.resolve_model_dir(str(tiny_model)), dtype="fp32", attn_implementation="sdpa"
    )


def test_batched_left_padded_generation_equals_one_at_a_time(loaded) -> None:
    model, tok = loaded
    assert tok.padding_side == "left"
    batched = generate.generate_hf(model, tok, PROMPTS, batch_size=4, max_new_tokens=6, progress=False)
    single = generate.generate_hf(model, tok, PROMPTS, batch_size=1, max_new_tokens=6, progress=False)
    assert set(batched.completions) == set(PROMPTS)
    assert batched.completions == single.completions  # prompts of 7 different lengths share padded batches
    assert batched.new_tokens == single.new_tokens <= 6 * len(PROMPTS)
    assert batched.new_tokens > 0 and batched.tokens_per_second > 0


def test_an_empty_shard_generates_nothing(loaded) -> None:
    """A rank whose strided shard of a small set is empty (a 1-example dev set on 2 ranks) gets no completions;
    the fast tokenizer raised IndexError on an empty batch and killed the training job's evaluation."""
    model, tok = loaded
    out = generate.generate_hf(model, tok, {}, batch_size=4, max_new_tokens=6, progress=False)
    assert out.completions == {} and out.new_tokens == 0


def test_generation_stops_at_eos_and_at_max_new_tokens(loaded) -> None:
    model, tok = loaded
    free = generate.generate_hf(model, tok, {"a": PROMPTS["ex0"]}, max_new_tokens=3, progress=False)
    assert free.new_tokens == 3  # the random model never emits EOS: it stops at max_new_tokens
    # Make the model's second greedy token the EOS: generation must stop there, and EOS is not in the text.
    ids = tok(PROMPTS["ex0"])["input_ids"]
    import torch

    with torch.inference_mode():
        out = model.generate(input_ids=torch.tensor([ids]), max_new_tokens=2, do_sample=False)
    first, second = out[0, len(ids) :].tolist()
    saved = model.generation_config.eos_token_id
    try:
        model.generation_config.eos_token_id = second
        stopped = generate.generate_hf(model, tok, {"a": PROMPTS["ex0"]}, max_new_tokens=10, progress=False)
    finally:
        model.generation_config.eos_token_id = saved
    assert stopped.new_tokens == 2
    assert stopped.completions["a"] == tok.decode([first], skip_special_tokens=True)


def test_beam_search_is_a_config_choice(loaded) -> None:
    model, tok = loaded
    beams = generate.generate_hf(
        model,
        tok,
        dict(list(PROMPTS.items())[:3]),
        batch_size=2,
        max_new_tokens=4,
        num_beams=2,
        progress=False,
    )
    assert len(beams.completions) == 3 and 0 < beams.new_tokens <= 12


def test_shards_cover_every_id_exactly_once() -> None:
    ids = [f"x{i}" for i in range(11)]
    parts = [generate.shard(ids, r, 3) for r in range(3)]
    assert sorted(sum(parts, [])) == sorted(ids) and [len(p) for p in parts] == [4, 4, 3]
    single = generate.generate_distributed(
        {"a": "p"}, lambda ps: generate.Generations({k: "c" for k in ps}, 1, 1.0)
    )
    assert single.completions == {"a": "c"}


def test_vllm_absence_falls_back_to_hf() -> None:
    assert generate.choose_backend("hf") == "hf"
    assert generate.choose_backend("vllm") == ("vllm" if generate.vllm_available() else "hf")


def test_model_directory_errors(tmp_path: Path, tiny_model: Path) -> None:
    with pytest.raises(ConfigError, match="eval.model"):
        generate.resolve_model_dir("")
    with pytest.raises(ConfigError, match="does not exist"):
        generate.resolve_model_dir(str(tmp_path / "missing"))
    weights_only = tmp_path / "weights_only"
    weights_only.mkdir()
    for name in ("config.json", "model.safetensors", "generation_config.json"):
        shutil.copy(tiny_model / name, weights_only / name)
    with pytest.raises(DataError, match="no tokenizer"):
        generate.resolve_model_dir(str(weights_only))


def test_incomplete_zero_checkpoint_is_a_clear_error(tmp_path: Path) -> None:
    ckpt = layout.checkpoint_dir(tmp_path, 1)
    (ckpt / layout.ZERO_DIR).mkdir(parents=True)
    assert layout.is_checkpoint(ckpt)
    with pytest.raises(CheckpointError, match=f"no {layout.COMPLETED} marker"):
        generate.resolve_model_dir(str(ckpt))


def test_a_training_output_dir_resolves_to_its_export(tmp_path: Path, tiny_model: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(tiny_model, layout.export_dir(run))
    assert generate.resolve_model_dir(str(run)) == layout.export_dir(run).resolve()

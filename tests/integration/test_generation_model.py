"""``Engine.generation_model(gather=True)`` on a real ZeRO-3 engine: a plain model inside, training unchanged after.

Single-process ZeRO-3 (gloo world of one) on the tiny Llama, in a child process of its own per case (spawned:
DeepSpeed keeps process-wide state, its groups among them, that would outlive the case and break the next test
that builds an engine inside pytest), as the evaluation during training uses it (``generate_sharded_lockstep`` with ``synced=False``: each rank alone, under ``torch.inference_mode``). Inside the
block the model runs none of DeepSpeed's forward hooks and reads its parameters from plain dicts, and its logits
are the engine's; after it, DeepSpeed's hooks and parameter dicts are back and a training step gives the loss
and weights of an engine that never generated; with full fine-tuning and with LoRA adapters (peft).
"""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path
from typing import Any

import pytest
import torch
from train_support import free_port, make_packed_dataset

pytestmark = pytest.mark.slow

PROMPTS = {"a": "Aspirin reduces fever", "b": "The BRCA1 gene", "c": "Patients with"}


def _hooks(module: torch.nn.Module) -> list[Any]:
    """Per submodule: its forward pre-hooks and hooks (how many: DeepSpeed registers its per-layer ones anew after
    a gather), the type of its parameter dict and which parameters it holds."""
    return [
        (
            len(m._forward_pre_hooks),
            len(m._forward_hooks),
            type(m._parameters).__name__,
            list(map(id, m.parameters(False))),
        )
        for m in module.modules()
    ]


def _one_step(
    model: Path, data: Path, out: Path, pad_id: int, tokenizer: Any, generate_first: bool, lora: bool
) -> dict:
    from biotune.config import LoraConfig, RunConfig
    from biotune.data.loader import PackedSplit
    from biotune.eval import generate
    from biotune.train.ds_config import build_ds_config
    from biotune.train.engine import build_engine
    from biotune.train.tracking import NullTracker
    from biotune.train.trainer import Trainer

    cfg = RunConfig()
    cfg.model.name_or_path, cfg.model.dtype, cfg.model.gradient_checkpointing = str(model), "fp32", False
    cfg.optim.lr, cfg.optim.schedule, cfg.optim.warmup_steps = 1e-2, "constant", 0
    cfg.train.micro_batch_size, cfg.train.grad_accum, cfg.train.output_dir = 2, 1, str(out)
    cfg.train.lora = LoraConfig(rank=4, dropout=0.0) if lora else None
    engine = build_engine(cfg, build_ds_config(cfg, 1), total_steps=1)
    assert engine.partitions_weights
    trainer = Trainer(cfg, engine, PackedSplit(data / "train"), None, NullTracker(), out, 1, None, pad_id)
    probe = trainer._collate(trainer.data.rows([0, 1]))
    engine.train(False)
    result: dict[str, Any] = {"before": engine.logits(probe)}
    if generate_first:
        deepspeed_state = _hooks(engine.ds.module)
        assert any(pre for pre, *_ in deepspeed_state), "a ZeRO-3 engine's model carries forward hooks"
        assert "ZeROOrderedDict" in {kind for _, _, kind, _ in deepspeed_state}
        with engine.generation_model(True) as m:
            result["inside_hooks"] = _hooks(m)
            with torch.inference_mode():
                batch = {k: v for k, v in probe.items() if k != "labels"}
                result["inside"] = m(**batch, use_cache=False).logits.float().cpu()
            gen = generate.generate_sharded_lockstep(
                m, generate.prepare_tokenizer(tokenizer), PROMPTS, 2, 8, synced=False
            )
            result["completions"] = gen.completions
        result["restored"] = _hooks(engine.ds.module) == deepspeed_state
        result["attention"] = engine.ds.module.config._attn_implementation
    engine.train(True)
    result["loss"] = trainer.train_step()["loss_local"]
    engine.train(False)
    result["after"] = engine.logits(probe)
    return result


def _case(model: Path, data: Path, tmp: Path, lora: bool) -> dict[str, Any]:
    """Both runs of one case (generate then step, step alone) in a gloo world of one, in this (child) process;
    what the test asserts, as plain values."""
    from transformers import AutoTokenizer

    from biotune import distributed as dist

    for key in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        os.environ.pop(key, None)
    tokenizer = AutoTokenizer.from_pretrained(model)
    pad = tokenizer.pad_token_id
    dist.init_process_group(dist.DistEnv(master_port=str(free_port())))
    try:
        gen = _one_step(model, data, tmp / "a", pad, tokenizer, True, lora)
        plain = _one_step(model, data, tmp / "b", pad, tokenizer, False, lora)
    finally:
        dist.destroy_process_group()
    return {
        "inside_plain": all(
            pre == post == 0 and kind == "dict" for pre, post, kind, _ in gen["inside_hooks"]
        ),
        "inside_vs_before": float((gen["inside"] - gen["before"]).abs().max()),
        "completions": sorted(gen["completions"]),
        "attention": gen["attention"],
        "restored": gen["restored"],
        "step_moved": float((plain["after"] - plain["before"]).abs().max()),
        "losses": (float(gen["loss"]), float(plain["loss"])),
        "after_equal": bool(torch.equal(gen["after"], plain["after"])),
    }


@pytest.mark.parametrize("lora", [False, True], ids=["full", "lora"])
def test_gathered_generation_model_is_plain_inside_and_training_is_unchanged_after(
    tmp_path: Path, tiny_model: Path, tiny_tokenizer, corpora: Path, lora: bool
) -> None:
    data = make_packed_dataset(tmp_path / "data", corpora, tiny_tokenizer)
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        got = pool.apply(_case, (tiny_model, data, tmp_path, lora))
    assert got["inside_plain"], "inside the block: no forward hooks, plain parameter dicts"
    assert got["inside_vs_before"] < 1e-5, got["inside_vs_before"]
    assert got["completions"] == sorted(PROMPTS)
    assert got["attention"] == "sdpa_packed", "training attention is back after generating with sdpa"
    assert got["restored"], "DeepSpeed's hooks and ZeROOrderedDicts are back, on the same parameters"
    assert got["step_moved"] > 1e-3, "the step changed nothing"
    assert got["losses"][0] == got["losses"][1]
    assert got["after_equal"], "a training step after generating is bitwise the one without"

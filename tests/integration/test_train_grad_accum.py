"""The loss is normalised per unmasked token of the whole step: 4 micro-steps x 1 row == 1 micro-step x 4 rows.

Single-process ZeRO-3 inside pytest (gloo world of one), the real Trainer.train_step on real packed rows
of different lengths and loss-token counts, so a per-micro-batch mean would give a different loss and gradient.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
import torch
from train_support import free_port, make_packed_dataset

pytestmark = pytest.mark.slow


def _one_step(model: Path, data: Path, out: Path, micro: int, accum: int, pad_id: int) -> dict:
    from biotune.config import RunConfig
    from biotune.data.loader import PackedSplit
    from biotune.train.ds_config import build_ds_config
    from biotune.train.engine import build_engine
    from biotune.train.tracking import NullTracker
    from biotune.train.trainer import Trainer

    cfg = RunConfig()
    cfg.model.name_or_path, cfg.model.dtype, cfg.model.attn_implementation = str(model), "fp32", "sdpa"
    cfg.model.gradient_checkpointing = False
    cfg.optim.lr, cfg.optim.schedule, cfg.optim.warmup_steps, cfg.optim.grad_clip = 1e-2, "constant", 0, 1e6
    cfg.train.micro_batch_size, cfg.train.grad_accum, cfg.train.output_dir = micro, accum, str(out)
    engine = build_engine(cfg, build_ds_config(cfg, 1), total_steps=1)
    trainer = Trainer(cfg, engine, PackedSplit(data / "train"), None, NullTracker(), out, 1, None, pad_id)
    probe = trainer._collate(trainer.data.rows([0, 1]))
    engine.train(False)
    before = engine.logits(probe)
    engine.train(True)
    rows = trainer.train_step()
    engine.train(False)
    after = engine.logits(probe)
    return {
        "loss": rows["loss_local"],
        "grad_norm": engine.grad_norm(),
        "before": before,
        "after": after,
        "lengths": trainer.data.lengths,
    }


def test_accumulation_4x1_equals_1x4(
    tmp_path: Path, tiny_model: Path, tiny_tokenizer, corpora: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from biotune import distributed as dist

    data = make_packed_dataset(tmp_path / "data", corpora, tiny_tokenizer)
    for key in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(key, raising=False)
    handlers = {s: signal.getsignal(s) for s in (signal.SIGUSR1, signal.SIGTERM)}
    dist.init_process_group(dist.DistEnv(master_port=str(free_port())))
    try:
        accum = _one_step(tiny_model, data, tmp_path / "a", 1, 4, tiny_tokenizer.pad_token_id)
        batch = _one_step(tiny_model, data, tmp_path / "b", 4, 1, tiny_tokenizer.pad_token_id)
    finally:
        dist.destroy_process_group()
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    torch.testing.assert_close(accum["before"], batch["before"])
    assert (accum["after"] - accum["before"]).abs().max() > 1e-3, "the step changed nothing"
    assert accum["loss"] == pytest.approx(batch["loss"], rel=1e-5)
    assert accum["grad_norm"] == pytest.approx(batch["grad_norm"], rel=1e-4)
    torch.testing.assert_close(accum["after"], batch["after"], atol=1e-4, rtol=1e-4)

"""DeepSpeed config filling, batch arithmetic, schedules, attention choice, model-dir errors, FLOPs table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from biotune.config import REPO_ROOT, RunConfig
from biotune.errors import ConfigError, DataError
from biotune.train import attention
from biotune.train.ds_config import build_ds_config, check_batch_arithmetic, offloads_optimizer
from biotune.train.engine import check_model_source
from biotune.train.hardware import lookup_peak_tflops, mfu, peak_flops, training_flops_per_token
from biotune.train.schedule import lr_factor

DS_FILES = sorted((REPO_ROOT / "configs" / "deepspeed").glob("*.json"))


def _cfg(**train: object) -> RunConfig:
    cfg = RunConfig()
    for key, value in train.items():
        setattr(cfg.train, key, value)
    return cfg


@pytest.mark.parametrize("path", DS_FILES, ids=[p.name for p in DS_FILES])
def test_every_deepspeed_json_is_filled_without_auto(path: Path) -> None:
    cfg = _cfg(deepspeed=str(path), micro_batch_size=2, grad_accum=4)
    cfg.model.dtype, cfg.optim.grad_clip = "bf16", 0.5
    ds = build_ds_config(cfg, world_size=8)
    assert ds["train_micro_batch_size_per_gpu"] == 2 and ds["gradient_accumulation_steps"] == 4
    assert ds["train_batch_size"] == 64 and ds["gradient_clipping"] == 0.5
    assert ds["bf16"]["enabled"] and not ds["fp16"]["enabled"]
    assert ds["zero_optimization"]["stage"] == 3
    assert "auto" not in json.dumps(ds)
    assert ("optimizer" in ds) == offloads_optimizer(ds) == ("offload" in path.name)


def test_the_three_zero3_variants_exist() -> None:
    assert {p.name for p in DS_FILES} >= {
        "zero3.json",
        "zero3_offload_optimizer.json",
        "zero3_offload_all.json",
    }
    offload_all = json.loads((REPO_ROOT / "configs/deepspeed/zero3_offload_all.json").read_text())
    assert offload_all["zero_optimization"]["offload_param"]["device"] == "cpu"


def test_batch_arithmetic_that_does_not_divide_names_the_fix() -> None:
    with pytest.raises(ConfigError) as err:
        check_batch_arithmetic(_cfg(micro_batch_size=2, grad_accum=2, global_batch_size=48), world_size=4)
    assert "train.global_batch_size" in str(err.value) and "grad_accum=6" in str(err.value)
    check_batch_arithmetic(_cfg(micro_batch_size=2, grad_accum=6, global_batch_size=48), world_size=4)


def test_auto_left_in_a_template_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "ds.json"
    path.write_text(json.dumps({"zero_optimization": {"stage": 3, "reduce_bucket_size": "auto"}}))
    with pytest.raises(ConfigError, match="reduce_bucket_size"):
        build_ds_config(_cfg(deepspeed=str(path)), 1)


def test_missing_deepspeed_json_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="train.deepspeed"):
        build_ds_config(_cfg(deepspeed="configs/deepspeed/nope.json"), 1)


@pytest.mark.parametrize("schedule", ["cosine", "linear"])
def test_schedule_warms_up_then_decays_to_floor(schedule: str) -> None:
    f = [lr_factor(s, 10, 110, schedule, 0.1) for s in range(111)]
    assert f[0] == pytest.approx(0.1) and f[9] == pytest.approx(1.0) and f[10] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(f[10:], f[11:], strict=False))
    assert f[110] == pytest.approx(0.1)
    assert f[60] == pytest.approx(0.55)  # halfway: cosine and linear meet at the midpoint


def test_constant_schedule_after_warmup() -> None:
    assert [lr_factor(s, 2, 10, "constant", 0.0) for s in range(4)] == [0.5, 1.0, 1.0, 1.0]


def test_attention_auto_is_sdpa_packed_without_flash_attn_or_cuda() -> None:
    assert attention.resolve("auto") == "sdpa_packed"
    assert attention.resolve("eager") == "eager" and attention.resolve("sdpa") == "sdpa"


def test_missing_model_directory_says_what_to_do(tmp_path: Path) -> None:
    cfg = RunConfig()
    cfg.model.name_or_path = str(tmp_path / "no_model")
    with pytest.raises(DataError) as err:
        check_model_source(cfg.model)
    assert "no_model" in str(err.value) and "save_pretrained" in str(err.value)
    cfg.model.name_or_path = "meta-llama/Llama-2-7b-chat-hf"  # a hub id passes the local check
    check_model_source(cfg.model)


def test_peak_flops_table_and_mfu() -> None:
    assert lookup_peak_tflops("NVIDIA H100 80GB HBM3", "bf16") == 989.0
    assert lookup_peak_tflops("NVIDIA H100 PCIe", "bf16") == 756.0
    assert lookup_peak_tflops("NVIDIA A100-SXM4-80GB", "fp32") == 156.0
    assert lookup_peak_tflops("cpu", "bf16") is None
    assert peak_flops("bf16", override_tflops=2.0) == 2e12
    assert mfu(6e6, 1000.0, 6e9) == pytest.approx(1.0)
    assert mfu(6e6, 1000.0, None) is None
    assert training_flops_per_token(1_000_000, 2, 64, 128) == 6e6 + 12 * 2 * 64 * 128

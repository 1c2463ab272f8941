"""biotune plan: Llama parameter counts, agreement with DeepSpeed's ZeRO-3 estimator, and the shipped jobs fit."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

from biotune import config
from biotune.cli import main as cli_main
from biotune.plan import (
    GIB,
    KNOWN_MODELS,
    LLAMA2_7B,
    LLAMA2_13B,
    LLAMA2_70B,
    OFFLOAD_VARIANTS,
    LlamaDims,
    activation_memory,
    adapter_params,
    dims_for,
    make_plan,
    tokens_per_second,
    zero3_model_states,
)

REPO = Path(__file__).resolve().parents[2]


def test_llama2_parameter_counts_match_the_published_models() -> None:
    assert LLAMA2_7B.total_params() == 6_738_415_616
    assert LLAMA2_13B.total_params() == 13_015_864_320
    assert LLAMA2_70B.total_params() == 68_976_648_192
    assert LLAMA2_70B.largest_module_params() == 32000 * 8192  # embedding / LM head, as DeepSpeed finds it


def test_local_model_dims_are_read_from_config_json(tiny_model: Path) -> None:
    import torch
    from deepspeed.runtime.zero.stage3 import model_to_params
    from transformers import AutoModelForCausalLM

    dims = dims_for(str(tiny_model))
    model = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32)
    total, largest = model_to_params(model)
    assert (dims.total_params(), dims.largest_module_params()) == (total, largest)


def _deepspeed_rows(
    total: int, largest: int, gpus: int, nodes: int
) -> dict[tuple[bool, bool], tuple[float, float]]:
    """DeepSpeed's printed table as {(offload optimizer, offload params): (GiB per CPU, GiB per GPU)}, zero_init=1."""
    from deepspeed.runtime.zero.stage3 import estimate_zero3_model_states_mem_needs_all_cold

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        estimate_zero3_model_states_mem_needs_all_cold(
            total_params=total, largest_layer_params=largest, num_gpus_per_node=gpus, num_nodes=nodes
        )
    rows = {}
    for line in out.getvalue().splitlines():
        m = re.match(r"\s*([\d.]+)GB \|\s*([\d.]+)GB \| (.*)$", line)
        if m and m.group(3).rstrip().endswith("zero_init=1"):
            opts = m.group(3)
            key = ("offload_optimizer=none" not in opts, "offload_param=none" not in opts)
            rows[key] = (float(m.group(1)), float(m.group(2)))
    return rows


@pytest.mark.parametrize(
    "dims,nodes,gpus", [(LLAMA2_7B, 1, 8), (LLAMA2_13B, 2, 8), (LLAMA2_70B, 4, 8), (LLAMA2_70B, 8, 4)]
)
def test_states_agree_with_deepspeed_estimate_all_cold(dims, nodes: int, gpus: int) -> None:
    total, largest = dims.total_params(), dims.largest_module_params()
    ds = _deepspeed_rows(total, largest, gpus, nodes)
    assert set(ds) == set(OFFLOAD_VARIANTS.values())
    for variant, (opt, params) in OFFLOAD_VARIANTS.items():
        ours = zero3_model_states(total, largest, gpus, nodes, opt, params)
        ds_cpu, ds_gpu = ds[(opt, params)]
        assert ours.gpu_bytes / GIB == pytest.approx(ds_gpu, abs=0.006), variant
        assert ours.cpu_bytes / GIB == pytest.approx(ds_cpu, abs=0.006), variant


def test_offload_and_checkpointing_shrink_the_estimate() -> None:
    cfg = config.load(REPO / "configs/train/llama2_70b.yaml")
    plan = make_plan(cfg, nodes=4, gpus_per_node=8)
    none, opt, both = (plan.total_bytes(v) for v in OFFLOAD_VARIANTS)
    assert none > opt > both
    acts = activation_memory(LLAMA2_70B, 2, 2048)
    assert acts.full > 5 * acts.checkpointed
    more_gpus = make_plan(cfg, nodes=8, gpus_per_node=8)
    assert more_gpus.states["none"].gpu_bytes < plan.states["none"].gpu_bytes


def _sbatch_value(script: Path, option: str) -> int:
    m = re.search(rf"^#SBATCH --{option}=(\d+)$", script.read_text(), re.M)
    assert m, f"{script} has no #SBATCH --{option}"
    return int(m.group(1))


@pytest.mark.parametrize("size", ["7b", "13b", "70b"])
def test_default_configs_of_the_slurm_scripts_fit_80gb_gpus(size: str) -> None:
    script = REPO / "slurm" / f"train_{size}.sh"
    default = re.search(r"^biotune_prepare (\S+)$", script.read_text(), re.M)
    assert default, f"{script} names no default config"
    cfg = config.load(REPO / default.group(1))
    assert cfg.model.name_or_path in KNOWN_MODELS
    plan = make_plan(
        cfg,
        nodes=_sbatch_value(script, "nodes"),
        gpus_per_node=_sbatch_value(script, "gpus-per-node"),
        gpu_memory_gb=80.0,
    )
    assert plan.offload == "none" and plan.gradient_checkpointing
    assert plan.fits, f"{size}: {plan.total_bytes() / GIB:.1f} GiB > {plan.gpu_memory_bytes / GIB:.1f} GiB"
    assert plan.activations.full > plan.activations.checkpointed


def test_tokens_per_second_scales_with_mfu_and_model_size() -> None:
    t7 = tokens_per_second(LLAMA2_7B, 2048, peak_tflops=989.0, mfu=0.4)
    assert 8000 < t7 < 10000  # 0.4 * 989e12 / (6 * 6.74e9 + attention) ~ 9.1k
    assert tokens_per_second(LLAMA2_7B, 2048, 989.0, 0.2) == pytest.approx(t7 / 2)
    assert tokens_per_second(LLAMA2_70B, 2048, 989.0, 0.4) < t7 / 8


def test_cli_prints_plan_and_exit_code_says_whether_it_fits(capsys: pytest.CaptureFixture[str]) -> None:
    cfg = str(REPO / "configs/train/llama2_70b.yaml")
    assert cli_main(["plan", cfg, "--nodes", "4", "--gpus-per-node", "8", "--mfu", "0.5"]) == 0
    out = capsys.readouterr().out
    assert "FITS" in out and "tokens/s per GPU at MFU 50%" in out and "68.98B params" in out
    assert cli_main(["plan", cfg, "--nodes", "1", "--gpus-per-node", "1"]) == 1
    assert "DOES NOT FIT" in capsys.readouterr().out
    assert cli_main(["plan", cfg, "launch.cpu_procs_per_node=3", "--cpu-procs-per-node"]) == 0
    assert capsys.readouterr().out.strip() == "3"


def test_unknown_model_is_a_config_error(tmp_path: Path) -> None:
    cfg = config.load(REPO / "configs/train/llama2_7b.yaml", [f"model.name_or_path={tmp_path}"])
    with pytest.raises(config.ConfigError, match="model.name_or_path"):
        make_plan(cfg, 1, 8)


# --------------------------------------------------------------------------------------------- LoRA


def _peft_count(llama_config, lora: config.LoraConfig) -> int:
    """peft's own trainable-parameter count for ``lora`` on a Llama built on the meta device (no memory)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(llama_config)
        peft_cfg = LoraConfig(r=lora.rank, lora_alpha=lora.alpha, target_modules=lora.target_modules)
        trainable, _ = get_peft_model(model, peft_cfg).get_nb_trainable_parameters()
    return trainable


def test_lora_adapter_count_is_peft_count(tiny_model: Path) -> None:
    from transformers import AutoConfig, LlamaConfig

    # peft's documented count for Llama-2-7B, rank 8 on q_proj and v_proj: "trainable params: 4,194,304"
    assert adapter_params(LLAMA2_7B, config.LoraConfig(rank=8)) == 4_194_304
    cases = [
        (
            AutoConfig.from_pretrained(tiny_model),
            dims_for(str(tiny_model)),
            ["q_proj", "down_proj", "lm_head"],
        ),
        (
            LlamaConfig(  # grouped-query attention (70B-style kv heads) at a size that builds instantly
                hidden_size=256,
                num_hidden_layers=3,
                intermediate_size=688,
                num_attention_heads=8,
                num_key_value_heads=2,
                vocab_size=1000,
            ),
            LlamaDims(hidden=256, layers=3, intermediate=688, heads=8, kv_heads=2, vocab=1000),
            ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        ),
    ]
    for hf_config, dims, targets in cases:
        for rank, chosen in ((4, targets), (16, targets[:1]), (2, ["layers.1.self_attn.q_proj"])):
            lora = config.LoraConfig(rank=rank, target_modules=chosen)
            assert adapter_params(dims, lora) == _peft_count(hf_config, lora), (dims, rank, chosen)


def test_lora_states_hold_optimizer_and_gradients_for_the_adapter_only() -> None:
    total, largest, adapter = LLAMA2_7B.total_params(), LLAMA2_7B.largest_module_params(), 4_194_304
    for opt, params in OFFLOAD_VARIANTS.values():
        full = zero3_model_states(total, largest, 8, 1, opt, params)
        assert zero3_model_states(total, largest, 8, 1, opt, params, total) == full  # all trainable = full FT
    # no offload: 18 bytes per adapter parameter, 2 per frozen one, the largest (frozen) module gathered
    # without a gradient: DeepSpeed's own estimate for the adapter alone, plus the frozen base's bf16 shard.
    ds = _deepspeed_rows(adapter, largest, 8, 1)
    lora = zero3_model_states(total + adapter, largest, 8, 1, False, False, adapter)
    expected = ds[(False, False)][1] * GIB - 2 * largest + 2 * total / 8
    assert lora.gpu_bytes == pytest.approx(expected, abs=0.006 * GIB)
    # optimizer offload: the host holds the adapter's fp32 states only
    host = zero3_model_states(total + adapter, largest, 8, 1, True, False, adapter).cpu_bytes
    assert host / GIB == pytest.approx(ds[(True, False)][0], abs=0.006)


def test_lora_plan_is_smaller_and_says_what_trains(capsys: pytest.CaptureFixture[str]) -> None:
    path = REPO / "configs/train/llama2_7b.yaml"
    full = make_plan(config.load(path), nodes=1, gpus_per_node=8)
    lora = make_plan(config.load(path, ["train.lora.rank=8"]), nodes=1, gpus_per_node=8)
    assert lora.adapter_params == lora.trainable_params == 4_194_304
    assert full.trainable_params == full.dims.total_params() and full.adapter_params == 0
    assert lora.states["none"].gpu_bytes < full.states["none"].gpu_bytes / 7
    # the adapters' dropout outputs, masks and rank-8 projections come on top of the layers' activations
    extra = 32 * 4 * 2048 * 2 * (2 * 8 + 3 * 4096)
    assert lora.activations.full - full.activations.full == extra
    assert lora.activations.checkpointed - full.activations.checkpointed == extra // 32
    # no weight gradients for the frozen base: 4 N + 2 T instead of 6 N
    n, t = full.dims.total_params(), lora.adapter_params
    assert lora.tokens_per_second_per_gpu / full.tokens_per_second_per_gpu == pytest.approx(
        (6 * n + 12 * 32 * 4096 * 2048) / (4 * (n + t) + 2 * t + 12 * 32 * 4096 * 2048)
    )
    assert cli_main(["plan", str(path), "train.lora.rank=8", "--json"]) == 0
    out = __import__("json").loads(capsys.readouterr().out)
    assert out["adapter_params"] == 4_194_304 and out["lora"]["target_modules"] == ["q_proj", "v_proj"]


def test_lora_target_the_model_lacks_is_a_config_error() -> None:
    cfg = config.load(REPO / "configs/train/llama2_7b.yaml", ["train.lora.target_modules=[q_proj,qkv]"])
    with pytest.raises(config.ConfigError, match="train.lora.target_modules") as err:
        make_plan(cfg, 1, 8)
    assert "'qkv'" in str(err.value) and "gate_proj" in str(err.value)

"""Size a ZeRO-3 job before submitting it: per-GPU memory and expected throughput.

Launch line::

    biotune plan configs/train/llama2_7b.yaml --nodes 1 --gpus-per-node 8 [key=value ...]

For a model config (its Llama dimensions), a number of nodes and GPUs per node, a micro-batch and a sequence length,
the plan adds up what one GPU holds under DeepSpeed ZeRO-3:

* model states -- sharded bf16 parameters, bf16 gradients and fp32 Adam states (master weights, two moments),
  plus the one gathered layer -- with DeepSpeed's own accounting, so that this part equals
  ``deepspeed.runtime.zero.stage3.estimate_zero3_model_states_mem_needs_all_cold`` for each offload variant
  (no offload; optimizer offloaded to CPU; optimizer and parameters offloaded to CPU);
* activations of one micro-batch, with and without gradient checkpointing (memory-efficient attention assumed,
  i.e. flash/sdpa: no stored ``seq x seq`` score matrix), and the logits of the loss;
* DeepSpeed's communication buckets and a fixed runtime allowance (CUDA context, NCCL, allocator slack).

With ``train.lora`` the base is frozen: it holds only its sharded bf16 parameters (and the gathered module, without
a gradient), while gradients and the fp32 master weights and Adam moments exist for the adapter parameters alone
(counted module by module, as peft adds them). The adapters' own activations (dropout output and mask, the rank-r
projection) are added to the layers'; the base layers' are counted as in full fine-tuning (an upper bound).

It also prints the expected tokens/s per GPU at a stated model-FLOPs utilisation (MFU), so that a user can turn a
token budget into GPU hours. Nothing here imports torch or deepspeed: planning is instant and runs anywhere.

``biotune plan CONFIG --cpu-procs-per-node`` prints only ``launch.cpu_procs_per_node`` (used by
``launch/srun_node.sh`` on machines without GPUs, so the shell never parses YAML).
"""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import dataclass
from pathlib import Path

from biotune import config as config_mod
from biotune.config import LoraConfig, RunConfig
from biotune.errors import ConfigError, DataError, Problem
from biotune.io import read_json
from biotune.train.ds_config import OFFLOAD_VARIANTS, offload_variant, read_template
from biotune.train.hardware import (
    DEFAULT_PLAN_DEVICE,
    PEAK_TFLOPS,
    lookup_peak_tflops,
    training_flops_per_token,
)
from biotune.train.lora import target_problem, targets

logger = logging.getLogger(__name__)

GIB = 2**30
GB = 10**9

#: Bytes per parameter of ZeRO-3 model states that live on the GPU without offload, as DeepSpeed counts them:
#: bf16 params 2 + bf16 grads 2 + fp32 master 4 + Adam exp_avg 4 + exp_avg_sq 4 + fp32 gradient partition 2.
STATE_BYTES_NO_OFFLOAD = 18
#: With the optimizer on CPU the GPU keeps only the bf16 parameter shard.
STATE_BYTES_PARAMS_ONLY = 2
#: Host bytes per parameter: 16 (optimizer offload) / 18 (optimizer + parameter offload), as DeepSpeed counts them.
CPU_BYTES_OPTIMIZER = 16
CPU_BYTES_OPTIMIZER_AND_PARAMS = 18
#: Disk bytes per parameter of what a sweep cell keeps after its evaluation, by its ``keep`` policy
#: (``biotune.sweep.spec.KEEP_POLICIES``): a ZeRO-3 checkpoint holds the optimizer states (16 bytes, as
#: CPU_BYTES_OPTIMIZER counts them) beside its bf16 export (2); an export is the bf16 weights alone; predictions
#: are negligible next to either.
KEPT_BYTES_PER_PARAM: dict[str, int] = {
    "checkpoint": CPU_BYTES_OPTIMIZER + STATE_BYTES_PARAMS_ONLY,
    "export": STATE_BYTES_PARAMS_ONLY,
    "predictions": 0,
}
#: DeepSpeed's safety factor on the host-memory estimate.
CPU_BUFFER_FACTOR = 1.5
#: bf16 logits + their fp32 upcast for the loss + the fp32 gradient of the logits.
LOGIT_BYTES = 2 + 4 + 4
#: CUDA context, NCCL buffers and allocator fragmentation, per GPU.
RUNTIME_OVERHEAD_BYTES = 3 * GIB


@dataclass(frozen=True)
class LlamaDims:
    """The dimensions of a Llama-family decoder that memory and FLOPs depend on."""

    hidden: int
    layers: int
    intermediate: int
    heads: int
    kv_heads: int
    vocab: int
    tied_embeddings: bool = False

    @property
    def head_dim(self) -> int:
        """Size of one attention head."""
        return self.hidden // self.heads

    def layer_params(self) -> int:
        """Parameters of one decoder layer: attention, SwiGLU MLP and two RMSNorms."""
        kv = self.kv_heads * self.head_dim
        attention = 2 * self.hidden * self.hidden + 2 * self.hidden * kv
        mlp = 3 * self.hidden * self.intermediate
        return attention + mlp + 2 * self.hidden

    def total_params(self) -> int:
        """All parameters: embeddings, layers, final norm and (unless tied) the LM head."""
        embed = self.vocab * self.hidden
        head = 0 if self.tied_embeddings else embed
        return embed + self.layers * self.layer_params() + self.hidden + head

    def linear_modules(self) -> dict[str, tuple[int, int]]:
        """Every linear module by its full Hugging Face name -> (in_features, out_features)."""
        kv = self.kv_heads * self.head_dim
        h, i = self.hidden, self.intermediate
        shapes = {
            "self_attn.q_proj": (h, h),
            "self_attn.k_proj": (h, kv),
            "self_attn.v_proj": (h, kv),
            "self_attn.o_proj": (h, h),
            "mlp.gate_proj": (h, i),
            "mlp.up_proj": (h, i),
            "mlp.down_proj": (i, h),
        }
        out = {f"model.layers.{n}.{k}": v for n in range(self.layers) for k, v in shapes.items()}
        out["lm_head"] = (h, self.vocab)
        return out

    def largest_module_params(self) -> int:
        """Largest parameter count held directly by one module (what DeepSpeed gathers at once)."""
        kv = self.kv_heads * self.head_dim
        return max(
            self.vocab * self.hidden,
            self.hidden * self.intermediate,
            self.hidden * self.hidden,
            self.hidden * kv,
        )


#: The real Llama-2 configurations (from their published config.json), so planning needs no hub access.
LLAMA2_7B = LlamaDims(hidden=4096, layers=32, intermediate=11008, heads=32, kv_heads=32, vocab=32000)
LLAMA2_13B = LlamaDims(hidden=5120, layers=40, intermediate=13824, heads=40, kv_heads=40, vocab=32000)
LLAMA2_70B = LlamaDims(hidden=8192, layers=80, intermediate=28672, heads=64, kv_heads=8, vocab=32000)
KNOWN_MODELS: dict[str, LlamaDims] = {
    "meta-llama/Llama-2-7b-hf": LLAMA2_7B,
    "meta-llama/Llama-2-7b-chat-hf": LLAMA2_7B,
    "meta-llama/Llama-2-13b-hf": LLAMA2_13B,
    "meta-llama/Llama-2-13b-chat-hf": LLAMA2_13B,
    "meta-llama/Llama-2-70b-hf": LLAMA2_70B,
    "meta-llama/Llama-2-70b-chat-hf": LLAMA2_70B,
}


@dataclass(frozen=True)
class StatesEstimate:
    """Model-state memory for one offload variant, in bytes."""

    variant: str
    gpu_bytes: int
    """Per GPU: sharded states plus the largest gathered module (DeepSpeed's ``gpu_mem``)."""
    cpu_bytes: int
    """Per node (host memory), zero.Init assumed (DeepSpeed's ``cpu_mem``)."""


@dataclass(frozen=True)
class ActivationEstimate:
    """Activation memory of one micro-batch on one GPU, in bytes."""

    checkpointed: int
    """Layer inputs kept for recomputation + one layer recomputed in backward + logits."""
    full: int
    """Every layer's saved tensors + logits (no checkpointing)."""


@dataclass(frozen=True)
class Plan:
    """A per-GPU memory plan and a throughput estimate for one job shape."""

    model: str
    dims: LlamaDims
    nodes: int
    gpus_per_node: int
    micro_batch_size: int
    seq_len: int
    gradient_checkpointing: bool
    offload: str
    states: dict[str, StatesEstimate]
    activations: ActivationEstimate
    buffers_bytes: int
    overhead_bytes: int
    gpu_memory_bytes: int
    mfu: float
    peak_tflops: float
    grad_accum: int = 1
    """Micro-steps per optimizer step that give ``train.global_batch_size`` on this job."""
    lora: LoraConfig | None = None
    """``train.lora``: None for full fine-tuning."""
    adapter_params: int = 0
    """Parameters of the LoRA adapters (0 for full fine-tuning)."""

    @property
    def trainable_params(self) -> int:
        """Parameters with gradients and optimizer state: the adapters under LoRA, else all of them."""
        return self.adapter_params if self.lora else self.dims.total_params()

    @property
    def activation_bytes(self) -> int:
        """Activations under the configured checkpointing choice."""
        return self.activations.checkpointed if self.gradient_checkpointing else self.activations.full

    def total_bytes(self, variant: str | None = None) -> int:
        """Per-GPU total for an offload variant (default: the configured one)."""
        states = self.states[variant or self.offload].gpu_bytes
        return states + self.activation_bytes + self.buffers_bytes + self.overhead_bytes

    @property
    def fits(self) -> bool:
        """Whether the configured variant fits the GPU's memory."""
        return self.total_bytes() <= self.gpu_memory_bytes

    @property
    def tokens_per_second_per_gpu(self) -> float:
        """Expected training tokens/s per GPU at ``mfu`` of ``peak_tflops``."""
        return tokens_per_second(
            self.dims, self.seq_len, self.peak_tflops, self.mfu, self.adapter_params if self.lora else None
        )


# --------------------------------------------------------------------------------------------- estimators


def zero3_model_states(
    total_params: int,
    largest_layer_params: int,
    gpus_per_node: int,
    nodes: int,
    offload_optimizer: bool,
    offload_params: bool,
    trainable_params: int | None = None,
) -> StatesEstimate:
    """ZeRO-3 model-state memory per GPU and per node, counted as DeepSpeed counts it (zero.Init on).

    ``trainable_params`` (default: all) have gradients and optimizer states; the others (a LoRA run's frozen
    base, ``total_params`` includes the adapters) hold only their bf16 parameters, and the largest module,
    frozen, is gathered without a gradient.
    """
    total_gpus = nodes * gpus_per_node
    trainable = total_params if trainable_params is None else trainable_params
    frozen = total_params - trainable
    # the largest module's bf16 params + grads, gathered in full (no gradient when it is frozen)
    gathered = (2 if frozen else 4) * largest_layer_params
    sharded = STATE_BYTES_NO_OFFLOAD * trainable + STATE_BYTES_PARAMS_ONLY * frozen
    if offload_optimizer and offload_params:
        gpu = gathered
        host = CPU_BYTES_OPTIMIZER_AND_PARAMS * trainable + STATE_BYTES_PARAMS_ONLY * frozen
        cpu = host / nodes * CPU_BUFFER_FACTOR
    elif offload_optimizer:
        gpu = gathered + int(STATE_BYTES_PARAMS_ONLY * total_params / total_gpus)
        cpu = trainable * CPU_BYTES_OPTIMIZER / nodes * CPU_BUFFER_FACTOR
    else:
        gpu = gathered + int(sharded / total_gpus)
        cpu = largest_layer_params * 4 * gpus_per_node * CPU_BUFFER_FACTOR
    variant = next(k for k, v in OFFLOAD_VARIANTS.items() if v == (offload_optimizer, offload_params))
    return StatesEstimate(variant, int(gpu), int(cpu))


def layer_activation_bytes(dims: LlamaDims, micro_batch_size: int, seq_len: int) -> int:
    """bf16 tensors one decoder layer saves for backward (memory-efficient attention, no dropout).

    Per token: the two RMSNorm inputs and outputs (4h), Q/K/V (h + 2 kv), the attention output (h), and the
    SwiGLU gate, up, silu(gate) and product (4 i); two bytes each.
    """
    kv = dims.kv_heads * dims.head_dim
    per_token = 4 * dims.hidden + (dims.hidden + 2 * kv) + dims.hidden + 4 * dims.intermediate
    return 2 * per_token * micro_batch_size * seq_len


def activation_memory(dims: LlamaDims, micro_batch_size: int, seq_len: int) -> ActivationEstimate:
    """Activation memory of one micro-batch with and without gradient checkpointing."""
    tokens = micro_batch_size * seq_len
    layer = layer_activation_bytes(dims, micro_batch_size, seq_len)
    logits = LOGIT_BYTES * tokens * dims.vocab
    checkpoints = 2 * tokens * dims.hidden * dims.layers  # each layer's bf16 input
    return ActivationEstimate(checkpointed=checkpoints + layer + logits, full=dims.layers * layer + logits)


def lora_activation_bytes(
    dims: LlamaDims, lora: LoraConfig, micro_batch_size: int, seq_len: int
) -> tuple[int, int]:
    """bf16 bytes the adapters save for backward: (one decoder layer, the LM head if targeted).

    Per targeted module and token: its rank-r projection (saved for B's gradient) and, with dropout, the dropout
    output (saved for A's gradient, 2 bytes) and mask (1 byte) of its input; without dropout A's input is the
    base layer's, already counted.
    """
    tokens = micro_batch_size * seq_len

    def per_token(in_features: int) -> int:
        return 2 * lora.rank + (3 * in_features if lora.dropout > 0 else 0)

    modules = dims.linear_modules()
    layer = sum(
        per_token(i)
        for name, (i, _) in modules.items()
        if name.startswith("model.layers.0.") and targets(lora, name)
    )
    head = per_token(dims.hidden) if targets(lora, "lm_head") else 0
    return layer * tokens, head * tokens


def adapter_params(dims: LlamaDims, lora: LoraConfig) -> int:
    """Parameters peft adds for ``lora``: ``rank * (in + out)`` per targeted linear module.

    Raises:
        ConfigError: a target that names no linear module of the model (``train.lora.target_modules``).
    """
    modules = dims.linear_modules()
    problem = target_problem(lora, list(modules))
    if problem:
        raise ConfigError([problem])
    return sum(lora.rank * (i + o) for name, (i, o) in modules.items() if targets(lora, name))


def deepspeed_buffers(dims: LlamaDims, ds_config: dict | None) -> int:
    """bf16 bytes of ZeRO-3's reduce and prefetch buckets (HF-style ``auto`` sizes when unset)."""
    zero = (ds_config or {}).get("zero_optimization", {})

    def size(key: str, auto: float) -> float:
        value = zero.get(key, "auto")
        return auto if value == "auto" else float(value)

    reduce = size("reduce_bucket_size", dims.hidden * dims.hidden)
    prefetch = size("stage3_prefetch_bucket_size", 0.9 * dims.hidden * dims.hidden)
    return int(2 * (reduce + prefetch))


def flops_per_token(dims: LlamaDims, seq_len: int, adapter: int | None = None) -> float:
    """Training FLOPs per token of this model (with ``adapter`` LoRA parameters the only trainable ones), by the
    formula the trainer's logged MFU uses."""
    if adapter is None:
        return training_flops_per_token(dims.total_params(), dims.layers, dims.hidden, seq_len)
    return training_flops_per_token(dims.total_params() + adapter, dims.layers, dims.hidden, seq_len, adapter)


def tokens_per_second(
    dims: LlamaDims, seq_len: int, peak_tflops: float, mfu: float, adapter: int | None = None
) -> float:
    """Tokens/s one GPU trains at model-FLOPs utilisation ``mfu`` of ``peak_tflops`` (LoRA: ``adapter``)."""
    return mfu * peak_tflops * 1e12 / flops_per_token(dims, seq_len, adapter)


# --------------------------------------------------------------------------------------------- config -> plan


_DIM_KEYS = ("hidden_size", "num_hidden_layers", "intermediate_size", "num_attention_heads", "vocab_size")


def dims_for(name_or_path: str) -> LlamaDims:
    """Llama dimensions of a model: a known Llama-2 hub id, or a local directory with ``config.json``.

    Raises:
        ConfigError: an unknown model, or a ``config.json`` without positive integer Llama dimensions.
        DataError: a ``config.json`` that is not UTF-8 JSON (naming its line).
    """
    if name_or_path in KNOWN_MODELS:
        return KNOWN_MODELS[name_or_path]
    cfg_file = Path(name_or_path) / "config.json"
    if not cfg_file.is_file():
        known = ", ".join(KNOWN_MODELS)
        raise ConfigError(
            [
                Problem(
                    "model.name_or_path",
                    f"'{name_or_path}' is neither a known model nor a directory with config.json",
                    f"use one of {known} or a local model dir",
                )
            ]
        )
    fix = "point model.name_or_path at a directory written by save_pretrained (its config.json is a JSON object)"
    raw = read_json(cfg_file, fix)
    if not isinstance(raw, dict):
        raise DataError(cfg_file, f"expected a JSON object, got {type(raw).__name__}", fix)
    values: dict[str, int] = {}
    problems: list[Problem] = []
    for key in (*_DIM_KEYS, "num_key_value_heads"):
        value = raw.get(key)
        if key == "num_key_value_heads" and value is None:
            continue
        if value is None:
            problems.append(
                Problem(
                    key,
                    "missing",
                    "give the model's Llama dimensions (hidden_size, "
                    "num_hidden_layers, intermediate_size, num_attention_heads, vocab_size)",
                )
            )
        elif isinstance(value, bool) or not isinstance(value, int) or value < 1:
            problems.append(
                Problem(
                    key,
                    f"must be a positive integer, got {value!r}",
                    f"set {key} to the model's value (a Llama config has e.g. num_attention_heads: 32)",
                )
            )
        else:
            values[key] = value
    heads, kv = values.get("num_attention_heads"), values.get("num_key_value_heads")
    if heads and values.get("hidden_size") and values["hidden_size"] % heads:
        problems.append(
            Problem(
                "num_attention_heads",
                f"{heads} does not divide hidden_size {values['hidden_size']}",
                "use the model's own config.json",
            )
        )
    if heads and kv and heads % kv:
        problems.append(
            Problem(
                "num_key_value_heads",
                f"{kv} does not divide num_attention_heads {heads}",
                "use the model's own config.json",
            )
        )
    if problems:
        raise ConfigError(problems, cfg_file)
    heads = values["num_attention_heads"]
    return LlamaDims(
        hidden=values["hidden_size"],
        layers=values["num_hidden_layers"],
        intermediate=values["intermediate_size"],
        heads=heads,
        kv_heads=kv or heads,
        vocab=values["vocab_size"],
        tied_embeddings=bool(raw.get("tie_word_embeddings", False)),
    )


def default_peak_tflops(dtype: str) -> float:
    """The peak of :data:`~biotune.train.hardware.DEFAULT_PLAN_DEVICE` for ``dtype``."""
    return gpu_peak_tflops(DEFAULT_PLAN_DEVICE, dtype)


def gpu_peak_tflops(gpu: str, dtype: str) -> float:
    """Dense peak TFLOP/s of a GPU type (the trainer's table); ConfigError for an unknown type."""
    peak = lookup_peak_tflops(gpu, dtype)
    if peak is None:
        raise ConfigError(
            [
                Problem(
                    "--gpu",
                    f"no {dtype} peak known for GPU type '{gpu}'",
                    f"use one of {', '.join(PEAK_TFLOPS)}, or set train.peak_tflops",
                )
            ]
        )
    return peak


def check_job(
    cfg: RunConfig,
    nodes: int,
    gpus_per_node: int,
    gpu_memory_gb: float,
    mfu: float,
    seq_len: int | None,
    micro_batch_size: int | None,
) -> None:
    """Every problem with the plan's arguments at once, and the global batch against nodes x GPUs.

    Raises:
        ConfigError: naming each bad argument (``--mfu`` ...) or key and its fix.
    """
    p: list[Problem] = []
    if nodes < 1 or gpus_per_node < 1:
        p.append(
            Problem(
                "--nodes/--gpus-per-node",
                f"got {nodes} x {gpus_per_node}",
                "give at least one node and one GPU per node",
            )
        )
    if not 0.0 < mfu <= 1.0:
        p.append(
            Problem("--mfu", f"must be in (0, 1], got {mfu}", "give a utilisation such as --mfu 0.4 (40 %)")
        )
    if not gpu_memory_gb > 0:
        p.append(
            Problem("--gpu-memory-gb", f"must be > 0, got {gpu_memory_gb}", "give one GPU's memory, e.g. 80")
        )
    if seq_len is not None and seq_len < 1:
        p.append(
            Problem(
                "--seq-len",
                f"must be >= 1, got {seq_len}",
                "give a sequence length such as 2048, or omit it to use data.max_seq_len",
            )
        )
    if micro_batch_size is not None and micro_batch_size < 1:
        p.append(
            Problem(
                "--micro-batch-size",
                f"must be >= 1, got {micro_batch_size}",
                "give packed rows per GPU per micro-step, or omit it to use train.micro_batch_size",
            )
        )
    if not p:
        p += _batch_problems(cfg, nodes * gpus_per_node, micro_batch_size or cfg.train.micro_batch_size)
    if p:
        raise ConfigError(p)


def job_grad_accum(cfg: RunConfig, world_size: int, micro_batch_size: int) -> int:
    """The gradient accumulation that reaches ``train.global_batch_size`` on ``world_size`` GPUs (else grad_accum)."""
    t = cfg.train
    if t.global_batch_size is None:
        return t.grad_accum
    return t.global_batch_size // (micro_batch_size * world_size)


def _batch_problems(cfg: RunConfig, world_size: int, micro_batch_size: int) -> list[Problem]:
    """``train.global_batch_size`` must be a whole number of micro-batches on every GPU of the job."""
    t = cfg.train
    if t.global_batch_size is None:
        return []
    per_step = micro_batch_size * world_size
    if t.global_batch_size % per_step == 0 and t.global_batch_size >= per_step:
        return []
    return [
        Problem(
            "train.global_batch_size",
            f"{t.global_batch_size} is not a multiple of micro_batch_size {micro_batch_size} x {world_size} "
            f"GPU(s) = {per_step}: train would refuse this job",
            f"choose --nodes/--gpus-per-node so that micro_batch_size x GPUs divides {t.global_batch_size}, "
            "or change train.global_batch_size / train.micro_batch_size",
        )
    ]


def make_plan(
    cfg: RunConfig,
    nodes: int,
    gpus_per_node: int,
    gpu_memory_gb: float = 80.0,
    mfu: float = 0.4,
    peak_tflops: float | None = None,
    seq_len: int | None = None,
    micro_batch_size: int | None = None,
) -> Plan:
    """Build the plan for ``cfg`` on ``nodes`` x ``gpus_per_node`` GPUs of ``gpu_memory_gb`` (decimal GB)."""
    check_job(cfg, nodes, gpus_per_node, gpu_memory_gb, mfu, seq_len, micro_batch_size)
    dims = dims_for(cfg.model.name_or_path)
    ds_config = read_template(cfg.train.deepspeed)
    mbs = micro_batch_size if micro_batch_size is not None else cfg.train.micro_batch_size
    seq = seq_len if seq_len is not None else cfg.data.max_seq_len
    lora = cfg.train.lora
    adapter = adapter_params(dims, lora) if lora else 0
    states = {
        name: zero3_model_states(
            dims.total_params() + adapter,
            dims.largest_module_params(),
            gpus_per_node,
            nodes,
            opt,
            par,
            adapter if lora else None,
        )
        for name, (opt, par) in OFFLOAD_VARIANTS.items()
    }
    activations = activation_memory(dims, mbs, seq)
    if lora:
        layer, head = lora_activation_bytes(dims, lora, mbs, seq)
        activations = ActivationEstimate(
            checkpointed=activations.checkpointed + layer + head,
            full=activations.full + dims.layers * layer + head,
        )
    return Plan(
        model=cfg.model.name_or_path,
        dims=dims,
        nodes=nodes,
        gpus_per_node=gpus_per_node,
        micro_batch_size=mbs,
        seq_len=seq,
        gradient_checkpointing=cfg.model.gradient_checkpointing,
        offload=offload_variant(ds_config),
        states=states,
        activations=activations,
        buffers_bytes=deepspeed_buffers(dims, ds_config),
        overhead_bytes=RUNTIME_OVERHEAD_BYTES,
        gpu_memory_bytes=int(gpu_memory_gb * GB),
        mfu=mfu,
        peak_tflops=peak_tflops or cfg.train.peak_tflops or default_peak_tflops(cfg.model.dtype),
        grad_accum=job_grad_accum(cfg, nodes * gpus_per_node, mbs),
        lora=lora,
        adapter_params=adapter,
    )


def format_plan(plan: Plan) -> str:
    """A human-readable table of the plan."""
    d = plan.dims

    def gib(n: float) -> str:
        return f"{n / GIB:8.2f} GiB"

    lines = [
        f"model      {plan.model}: {d.total_params() / 1e9:.2f}B params ({d.layers} layers, hidden {d.hidden}, "
        f"heads {d.heads}/{d.kv_heads} kv, vocab {d.vocab}); largest module {d.largest_module_params() / 1e6:.0f}M",
        f"job        {plan.nodes} node(s) x {plan.gpus_per_node} GPU(s), micro-batch {plan.micro_batch_size} x "
        f"seq {plan.seq_len}, gradient checkpointing {'on' if plan.gradient_checkpointing else 'off'}, "
        f"offload {plan.offload}, grad accumulation {plan.grad_accum}",
        *(
            [
                f"LoRA       rank {plan.lora.rank} on {', '.join(plan.lora.target_modules)}: "
                f"{plan.adapter_params:,} adapter params ({plan.adapter_params / d.total_params():.3%} of the base); "
                "gradients and optimizer states for them only, the base frozen"
            ]
            if plan.lora
            else []
        ),
        "",
        "per GPU, ZeRO-3          no offload   opt->CPU     opt+params->CPU",
        "  model states        " + "".join(gib(plan.states[v].gpu_bytes) for v in OFFLOAD_VARIANTS),
        "  host memory / node  " + "".join(gib(plan.states[v].cpu_bytes) for v in OFFLOAD_VARIANTS),
        f"  activations         {gib(plan.activations.checkpointed)} with checkpointing, "
        f"{gib(plan.activations.full).strip()} without",
        f"  DeepSpeed buckets   {gib(plan.buffers_bytes)}",
        f"  runtime overhead    {gib(plan.overhead_bytes)}",
        "  total               " + "".join(gib(plan.total_bytes(v)) for v in OFFLOAD_VARIANTS),
        "",
        f"configured ({plan.offload}): {plan.total_bytes() / GIB:.2f} GiB of {plan.gpu_memory_bytes / GIB:.2f} GiB "
        f"-> {'FITS' if plan.fits else 'DOES NOT FIT'}",
        f"throughput {plan.tokens_per_second_per_gpu:,.0f} tokens/s per GPU at MFU {plan.mfu:.0%} of "
        f"{plan.peak_tflops:.0f} TFLOPS; {plan.tokens_per_second_per_gpu * plan.nodes * plan.gpus_per_node:,.0f} "
        f"tokens/s for the job",
    ]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------- CLI


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``biotune plan CONFIG [key=value ...]``."""
    p = subparsers.add_parser(
        "plan",
        help="per-GPU memory and tokens/s estimate for a ZeRO-3 job",
        description=__doc__.splitlines()[0],
    )
    p.add_argument("config", help="training config YAML")
    p.add_argument("overrides", nargs="*", help="key.sub=value overrides")
    p.add_argument("--nodes", type=int, default=1)
    p.add_argument("--gpus-per-node", type=int, default=8)
    p.add_argument("--gpu-memory-gb", type=float, default=80.0, help="memory of one GPU in GB (default 80)")
    p.add_argument(
        "--mfu", type=float, default=0.4, help="model-FLOPs utilisation for tokens/s (default 0.4)"
    )
    p.add_argument(
        "--gpu",
        default=None,
        help=f"GPU type for the peak TFLOPS, matched like CUDA device names ({', '.join(PEAK_TFLOPS)}; "
        f"default: train.peak_tflops, else {DEFAULT_PLAN_DEVICE})",
    )
    p.add_argument("--seq-len", type=int, default=None, help="default: data.max_seq_len")
    p.add_argument("--micro-batch-size", type=int, default=None, help="default: train.micro_batch_size")
    p.add_argument("--json", action="store_true", help="print the plan as JSON")
    p.add_argument(
        "--cpu-procs-per-node",
        action="store_true",
        help="only print launch.cpu_procs_per_node (for launch/srun_node.sh)",
    )
    p.set_defaults(func=run)


def plan_to_dict(plan: Plan) -> dict:
    """The plan as a JSON-able dict (bytes)."""
    return {
        "model": plan.model,
        "params": plan.dims.total_params(),
        "lora": config_mod.to_dict(plan.lora) if plan.lora else None,
        "adapter_params": plan.adapter_params,
        "trainable_params": plan.trainable_params,
        "nodes": plan.nodes,
        "gpus_per_node": plan.gpus_per_node,
        "micro_batch_size": plan.micro_batch_size,
        "seq_len": plan.seq_len,
        "gradient_checkpointing": plan.gradient_checkpointing,
        "offload": plan.offload,
        "states_gpu_bytes": {k: v.gpu_bytes for k, v in plan.states.items()},
        "states_cpu_bytes": {k: v.cpu_bytes for k, v in plan.states.items()},
        "activations_bytes": {"checkpointed": plan.activations.checkpointed, "full": plan.activations.full},
        "buffers_bytes": plan.buffers_bytes,
        "overhead_bytes": plan.overhead_bytes,
        "total_bytes": plan.total_bytes(),
        "gpu_memory_bytes": plan.gpu_memory_bytes,
        "fits": plan.fits,
        "mfu": plan.mfu,
        "peak_tflops": plan.peak_tflops,
        "grad_accum": plan.grad_accum,
        "tokens_per_second_per_gpu": plan.tokens_per_second_per_gpu,
    }


def run(args: argparse.Namespace) -> int:
    """Run ``biotune plan``: exit 0 when the configured variant fits, 1 when it does not."""
    cfg = config_mod.load(args.config, args.overrides)
    if args.cpu_procs_per_node:
        print(cfg.launch.cpu_procs_per_node)
        return 0
    plan = make_plan(
        cfg,
        args.nodes,
        args.gpus_per_node,
        gpu_memory_gb=args.gpu_memory_gb,
        mfu=args.mfu,
        peak_tflops=gpu_peak_tflops(args.gpu, cfg.model.dtype) if args.gpu else None,
        seq_len=args.seq_len,
        micro_batch_size=args.micro_batch_size,
    )
    print(json.dumps(plan_to_dict(plan), indent=2) if args.json else format_plan(plan))
    if plan.grad_accum != cfg.train.grad_accum:
        logger.warning(
            "train.global_batch_size=%s on %d GPU(s) needs train.grad_accum=%d (the config has %d): "
            "pass train.grad_accum=%d to train",
            cfg.train.global_batch_size,
            plan.nodes * plan.gpus_per_node,
            plan.grad_accum,
            cfg.train.grad_accum,
            plan.grad_accum,
        )
    return 0 if plan.fits else 1


def kept_bytes(params: int, keep: str) -> int:
    """Disk bytes one sweep cell of a ``params``-parameter model keeps after its evaluation (``keep`` policy)."""
    return KEPT_BYTES_PER_PARAM[keep] * params

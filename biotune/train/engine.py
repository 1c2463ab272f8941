"""The DeepSpeed ZeRO-3 engine: the only module that imports ``deepspeed``.

It fills the ZeRO-3 JSON's batch/clipping/precision fields from the run config, creates
``HfDeepSpeedConfig`` before ``from_pretrained`` (so ZeRO-3 partitions the weights at load time), builds the
optimizer and warmup+cosine/linear schedule, and saves and loads the ZeRO shards of a checkpoint. Keeping DeepSpeed behind this one door leaves room for FSDP2 later.
"""

from __future__ import annotations

import contextlib
import logging
import pickle
import re
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from biotune.config import ModelConfig, RunConfig
from biotune.errors import CheckpointError, ConfigError, DataError, Problem
from biotune.train import attention, lora
from biotune.train.checkpoint import ADAPTER_DIR, MODEL_META_DIR, ZERO_DIR
from biotune.train.ds_config import offloads_optimizer
from biotune.train.hardware import PRECISIONS, training_flops_per_token
from biotune.train.schedule import lr_factor

log = logging.getLogger(__name__)

DTYPES = dict(zip(PRECISIONS, (torch.bfloat16, torch.float16, torch.float32), strict=True))


# --------------------------------------------------------------------------------------------- config


# --------------------------------------------------------------------------------------------- safe loading

#: The only non-tensor types DeepSpeed's ZeRO-3 checkpoint files hold (found by loading real ones under
#: ``weights_only=True``): the stage enum and the loss scaler (static for fp32/bf16, dynamic for fp16).
#: Everything else torch's weights-only unpickler allows by itself (tensors, storages, dtypes, containers).
SAFE_DEEPSPEED_TYPES = (
    "deepspeed.runtime.zero.config.ZeroStageEnum",
    "deepspeed.runtime.fp16.loss_scaler.LossScaler",
    "deepspeed.runtime.fp16.loss_scaler.DynamicLossScaler",
)

_UNSAFE_FIX = (
    "a checkpoint may hold only tensors and DeepSpeed's own state; this file was not written by "
    "biotune/DeepSpeed or has been altered. Nothing in it was run. Restore the checkpoint from a "
    "trusted copy, or resume from / export another checkpoint"
)
_DAMAGED_FIX = (
    "the file is truncated or damaged: restore the checkpoint from a copy, or resume from / export "
    "an older checkpoint under <output_dir>/checkpoints/"
)


def _safe_types() -> list[type]:
    """The classes of :data:`SAFE_DEEPSPEED_TYPES` (imported here: ``deepspeed`` is imported only in this module)."""
    import importlib

    out = []
    for dotted in SAFE_DEEPSPEED_TYPES:
        module, _, name = dotted.rpartition(".")
        out.append(getattr(importlib.import_module(module), name))
    return out


def _checked_load(original: Callable[..., Any]) -> Callable[..., Any]:
    """``torch.load`` forced to ``weights_only=True``; a refused or damaged file is a CheckpointError naming it."""

    def load(f: Any, *args: Any, **kwargs: Any) -> Any:
        kwargs["weights_only"] = True
        kwargs.pop("pickle_module", None)
        try:
            return original(f, *args, **kwargs)
        except pickle.UnpicklingError as err:
            found = re.search(r"Unsupported global: GLOBAL (\S+)", str(err))
            first = (str(err).splitlines() or ["unpickling refused"])[0]
            what = (
                f"it holds '{found.group(1)}', which is not a tensor or DeepSpeed state"
                if found
                else f"it is not a weights-only file ({first})"
            )
            raise CheckpointError(f"{f}: refused to load: {what}\n  fix: {_UNSAFE_FIX}") from None
        except (RuntimeError, EOFError, ValueError, OSError, zipfile.BadZipFile) as err:
            reason = (str(err).splitlines() or [type(err).__name__])[0].split(". ")[0]
            raise CheckpointError(f"{f}: cannot read it ({reason})\n  fix: {_DAMAGED_FIX}") from None

    return load


@contextlib.contextmanager
def weights_only_loads() -> Iterator[None]:
    """Make every ``torch.load`` inside the block (DeepSpeed's resume and ``zero_to_fp32``) weights-only.

    DeepSpeed calls ``torch.load(..., weights_only=False)``, which would run any code a crafted file carries.
    Inside this block ``torch.load`` unpickles only tensors, plain containers and :data:`SAFE_DEEPSPEED_TYPES`
    (``torch.serialization.safe_globals``); anything else, and a truncated file, is a CheckpointError naming
    the file. Not re-entrant across threads: the patch is process-wide while the block runs.
    """
    original = torch.load
    with torch.serialization.safe_globals(_safe_types()):
        torch.load = _checked_load(original)
        try:
            yield
        finally:
            torch.load = original


# --------------------------------------------------------------------------------------------- model


def check_model_source(m: ModelConfig) -> None:
    """DataError/ConfigError when ``model.name_or_path`` is empty or a local path without a model in it."""
    name = m.name_or_path
    if not name:
        raise ConfigError(
            [Problem("model.name_or_path", "is empty", "set it to a model directory or hub id")]
        )
    looks_local = name.startswith((".", "/", "~")) or name.count("/") != 1 or Path(name).exists()
    if looks_local and not (Path(name).expanduser() / "config.json").is_file():
        raise DataError(
            name,
            "model directory not found (or it has no config.json)",
            "point model.name_or_path at a directory written by save_pretrained, or a hub id "
            "(with network access or a filled HF cache)",
        )


def _attach_deepspeed_comm() -> None:
    """Make DeepSpeed's comm layer use the process group that ``biotune.distributed`` created.

    DeepSpeed's config reads the world size from its own comm layer, so this must run before
    ``HfDeepSpeedConfig``; with an existing torch process group it only wraps it.
    """
    import deepspeed
    import torch.distributed as tdist

    if tdist.is_initialized():
        deepspeed.init_distributed(dist_backend=tdist.get_backend())


def load_model(m: ModelConfig, ds_config: dict[str, Any]) -> tuple[torch.nn.Module, Any, str]:
    """``from_pretrained`` under ``HfDeepSpeedConfig`` (partitioned at load). Returns (model, hf_ds, attn)."""
    from transformers import AutoModelForCausalLM
    from transformers.integrations import HfDeepSpeedConfig

    check_model_source(m)
    _attach_deepspeed_comm()
    hf_ds = HfDeepSpeedConfig(ds_config)  # must stay referenced while the engine lives
    attn = attention.resolve(m.attn_implementation)
    try:
        model = AutoModelForCausalLM.from_pretrained(
            m.name_or_path,
            dtype=DTYPES[m.dtype],
            attn_implementation=attn,
            trust_remote_code=m.trust_remote_code,
        )
    except OSError as err:
        raise DataError(
            m.name_or_path,
            f"cannot load the model: {err}",
            "check model.name_or_path; offline runs need a local directory",
        ) from err
    model.config.use_cache = (
        False  # packed rows: the block-diagonal mask needs no cache (PLATFORM.md section 4)
    )
    if m.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    log.info(
        "model %s: dtype=%s attention=%s gradient_checkpointing=%s",
        m.name_or_path,
        m.dtype,
        attn,
        m.gradient_checkpointing,
    )
    return model, hf_ds, attn


@contextlib.contextmanager
def bare_forwards(module: torch.nn.Module) -> Iterator[torch.nn.Module]:
    """``module`` whose forwards run as a plain transformers model's inside the block; restored exactly on exit.

    A DeepSpeed engine's model keeps bookkeeping that costs Python time at every forward, i.e. at every decoding
    step, even when its weights are whole (measured by ``benchmarks/eval_during_training.py``):

    * forward hooks: the engine's prologue and epilogue (its timers, and a walk over every submodule that flags
      the ZeRO-3 "in forward" state) and ZeRO-3's start-of-forward hook (its parameter coordinator's reset);
    * ZeRO-3's ``ZeROOrderedDict`` as every submodule's ``_parameters``, whose Python ``__getitem__`` runs at
      every parameter read.

    Inside the block every submodule's forward hooks are set aside and its parameters are read from a plain
    ``dict`` holding the same parameter objects. Only for weights that are whole on this rank (ZeRO-3's
    per-layer gathers are such hooks). Nothing may register hooks or parameters on ``module`` inside the block.
    """
    hook_dicts = (
        "_forward_pre_hooks",
        "_forward_pre_hooks_with_kwargs",
        "_forward_hooks",
        "_forward_hooks_with_kwargs",
        "_forward_hooks_always_called",
    )
    saved_hooks: list[tuple[dict[Any, Any], dict[Any, Any]]] = []
    saved_params: list[tuple[torch.nn.Module, dict[str, Any]]] = []
    try:
        for sub in module.modules():
            for name in hook_dicts:
                hooks = getattr(sub, name)
                if hooks:
                    saved_hooks.append((hooks, dict(hooks)))
                    hooks.clear()
            if type(sub._parameters) is not dict:
                saved_params.append((sub, sub._parameters))
                sub._parameters = dict(sub._parameters)
        yield module
    finally:
        for hooks, content in saved_hooks:
            hooks.update(content)
        for sub, params in saved_params:
            sub._parameters = params


@contextlib.contextmanager
def _attention(model: torch.nn.Module, implementation: str) -> Iterator[None]:
    """``model`` set to attention ``implementation`` inside the block, and back to its own on exit."""
    own = model.config._attn_implementation
    if implementation == own:
        yield
        return
    model.set_attn_implementation(implementation)
    try:
        yield
    finally:
        model.set_attn_implementation(own)


# --------------------------------------------------------------------------------------------- engine


@dataclass
class Engine:
    """A DeepSpeed engine plus what the trainer needs to know about it."""

    ds: Any
    hf_ds: Any
    attn_implementation: str
    num_params: int
    """All parameters of the trained model (under LoRA: the base and the adapters)."""
    flops_per_token: float
    """Training FLOPs per token at ``data.max_seq_len`` (:func:`biotune.train.hardware.training_flops_per_token`)."""
    trainable_params: int = 0
    """Parameters that train: all of them, or only the adapters under ``train.lora``."""

    @property
    def partitions_weights(self) -> bool:
        """True under ZeRO-3 (each rank stores a shard of every large parameter)."""
        return int(self.ds.zero_optimization_stage()) == 3

    @contextlib.contextmanager
    def generation_model(self, gather: bool) -> Iterator[torch.nn.Module]:
        """The model to generate with inside the block. With ``gather`` its weights are whole on every rank: under
        ZeRO-3 gathered once (DeepSpeed's own ``unwrap_model_for_generation``, which also takes off the per-layer
        gather hooks), at the cost of the full weights' memory on each device; and its forwards run as a plain
        model's (:func:`bare_forwards`), so each rank generates alone, as fast per example as the exported model.
        Without ``gather`` every forward gathers each layer's weights (all ranks must run forwards in lockstep).
        Either way it runs the attention ``biotune eval`` runs (:func:`biotune.train.attention.for_generation`).
        Every rank enters the block together."""
        model = self.ds.module
        with contextlib.ExitStack() as stack:
            if gather and self.partitions_weights:
                from deepspeed.runtime.zero.stage3 import unwrap_model_for_generation

                stack.enter_context(unwrap_model_for_generation(self.ds))
            if gather:
                stack.enter_context(bare_forwards(model))
            stack.enter_context(_attention(model, attention.for_generation(self.attn_implementation)))
            yield model

    def forward_loss(self, batch: dict[str, torch.Tensor], denominator: float) -> torch.Tensor:
        """Summed token loss of ``batch`` divided by ``denominator`` (labels -100 carry no loss)."""
        batch = {k: v.to(self.ds.device) for k, v in batch.items()}
        norm = torch.tensor(float(denominator), device=self.ds.device)
        return self.ds(**batch, num_items_in_batch=norm, use_cache=False).loss

    def backward_step(self, loss: torch.Tensor) -> None:
        """Backward without DeepSpeed's 1/grad_accum scaling (the trainer normalises), then a micro-step."""
        self.ds.backward(loss, scale_wrt_gas=False)
        self.ds.step()

    def logits(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Logits of ``batch`` (no labels), for checks against an export."""
        batch = {k: v.to(self.ds.device) for k, v in batch.items() if k != "labels"}
        with torch.no_grad():
            return self.ds(**batch, use_cache=False).logits.float().cpu()

    def lr(self) -> float:
        """The current learning rate."""
        return float(self.ds.get_lr()[0])

    def grad_norm(self) -> float:
        """Global gradient norm of the last optimizer step (before clipping)."""
        norm = self.ds.get_global_grad_norm()
        return float(norm) if norm is not None else float("nan")

    def local_partition_fraction(self) -> float:
        """Share of all parameter elements stored on this rank (1/world_size when ZeRO-3 partitions)."""
        params = list(self.ds.module.parameters())
        full = sum(getattr(p, "ds_numel", p.numel()) for p in params)
        local = sum(p.ds_tensor.numel() if hasattr(p, "ds_tensor") else p.numel() for p in params)
        return local / max(1, full)

    def optimizer_params(self) -> int:
        """Parameter elements the ZeRO-3 optimizer updates (its parameter groups; every rank sees them all)."""
        groups = getattr(self.ds.optimizer, "fp16_groups", None)
        if groups is None:  # not a ZeRO-3 optimizer: its torch parameter groups
            groups = [g["params"] for g in self.ds.optimizer.param_groups]
        return int(sum(getattr(p, "ds_numel", p.numel()) for group in groups for p in group))

    def train(self, mode: bool = True) -> None:
        """Switch train/eval mode."""
        self.ds.train(mode)

    def save(self, ckpt_dir: Path, tokenizer_dir: str | None, is_rank_zero: bool) -> None:
        """Save the ZeRO shards (every rank) and, on rank 0, the HF config/tokenizer needed by export."""
        self.ds.save_checkpoint(str(ckpt_dir), tag=ZERO_DIR)
        if is_rank_zero:
            _save_hf_meta(self.ds.module, ckpt_dir / MODEL_META_DIR, tokenizer_dir)

    def load(self, ckpt_dir: Path) -> None:
        """Restore shards, optimizer and lr-schedule state from one of our checkpoint directories."""
        with weights_only_loads():
            path, _ = self.ds.load_checkpoint(str(ckpt_dir), tag=ZERO_DIR)
        if path is None:
            raise CheckpointError(
                f"{ckpt_dir}: DeepSpeed found no '{ZERO_DIR}' shards; pick another checkpoint "
                "or start with train.resume=none"
            )


def _save_hf_meta(module: torch.nn.Module, out: Path, tokenizer_dir: str | None) -> None:
    out.mkdir(parents=True, exist_ok=True)
    lora.save_meta(module, out)
    module.config.save_pretrained(out)
    if getattr(module, "generation_config", None) is not None:
        module.generation_config.save_pretrained(out)
    if tokenizer_dir:
        from transformers import AutoTokenizer

        AutoTokenizer.from_pretrained(tokenizer_dir).save_pretrained(out)


def build_engine(cfg: RunConfig, ds_config: dict[str, Any], total_steps: int) -> Engine:
    """Load the model partitioned, build optimizer + schedule, and ``deepspeed.initialize`` them."""
    import deepspeed

    model, hf_ds, attn = load_model(cfg.model, ds_config)
    if cfg.train.lora is not None:
        model = lora.wrap(model, cfg.train.lora, cfg.train.seed, cfg.model.name_or_path)
    num_params = sum(getattr(p, "ds_numel", p.numel()) for p in model.parameters())
    params = lora.trainable_parameters(model)
    trainable = int(sum(getattr(p, "ds_numel", p.numel()) for p in params))
    o = cfg.optim
    optimizer = None
    if not offloads_optimizer(ds_config):
        optimizer = torch.optim.AdamW(
            params, lr=o.lr, betas=tuple(o.betas), eps=o.eps, weight_decay=o.weight_decay
        )

    def schedule(opt: torch.optim.Optimizer) -> torch.optim.lr_scheduler.LambdaLR:
        return torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: lr_factor(s, o.warmup_steps, total_steps, o.schedule, o.min_lr_ratio)
        )

    ds_engine, *_ = deepspeed.initialize(
        model=model,
        optimizer=optimizer,
        lr_scheduler=schedule,
        model_parameters=None if optimizer else params,
        config=ds_config,
    )
    mc = model.config
    flops = training_flops_per_token(
        int(num_params), mc.num_hidden_layers, mc.hidden_size, cfg.data.max_seq_len, trainable
    )
    return Engine(ds_engine, hf_ds, attn, int(num_params), flops, trainable)


# --------------------------------------------------------------------------------------------- export (biotune.train.export)


def write_hf_model(
    ckpt_dir: Path, out_dir: Path, dtype: str | None = None, max_shard_size: str = "5GB"
) -> None:
    """Consolidate ``ckpt_dir``'s ZeRO shards and save a Hugging Face model into the new directory ``out_dir``.

    A LoRA checkpoint (:func:`biotune.train.lora.has_adapter`) is saved as merged full weights, with the adapter
    in peft's format in ``out_dir/adapter/``. Called by :func:`biotune.train.export.export_checkpoint`, which
    checks the paths and swaps the result in.
    """
    from deepspeed.utils.zero_to_fp32 import get_fp32_state_dict_from_zero_checkpoint
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, GenerationConfig
    from transformers.integrations.deepspeed import unset_hf_deepspeed_config

    unset_hf_deepspeed_config()  # build the full model here, not a ZeRO-3-partitioned one
    meta = ckpt_dir / MODEL_META_DIR
    with weights_only_loads():
        state = get_fp32_state_dict_from_zero_checkpoint(str(ckpt_dir), tag=ZERO_DIR)
    config = AutoConfig.from_pretrained(meta)
    config.use_cache = True
    torch_dtype = DTYPES[dtype] if dtype else getattr(config, "dtype", None) or torch.float32
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    if lora.has_adapter(meta):
        model = lora.wrap_saved(model, meta)
    _load_consolidated(model, state, ckpt_dir, meta)
    if lora.is_peft_model(model):
        model = lora.save_adapter_and_merge(model, out_dir / ADAPTER_DIR)
    model.to(torch_dtype)
    model.save_pretrained(out_dir, safe_serialization=True, max_shard_size=max_shard_size)
    if (meta / "generation_config.json").is_file():
        GenerationConfig.from_pretrained(meta).save_pretrained(out_dir)
    if (meta / "tokenizer_config.json").is_file():
        AutoTokenizer.from_pretrained(meta).save_pretrained(out_dir)


def _load_consolidated(
    model: torch.nn.Module, state: dict[str, torch.Tensor], ckpt: Path, meta: Path
) -> None:
    """``load_state_dict`` of consolidated shards; a CheckpointError when they belong to another model."""
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as err:  # shape mismatches raise even with strict=False
        first = next(
            (line.strip() for line in str(err).splitlines() if "size mismatch" in line), str(err)[:200]
        )
        raise CheckpointError(
            f"{ckpt}: shards do not match {meta / 'config.json'} ({first}); was the "
            "checkpoint written by another model?\n  fix: restore model_meta/ from the run that "
            "wrote these shards"
        ) from None
    tied = bool(getattr(model.config, "tie_word_embeddings", False))
    missing = [k for k in missing if not (tied and k.endswith("lm_head.weight"))]
    if missing or unexpected:
        raise CheckpointError(
            f"{ckpt}: shards do not match the model config (missing {missing[:5]}, "
            f"unexpected {unexpected[:5]}); was the checkpoint written by another model?"
        )

"""LoRA through peft: wrap the base model, check the target names, and merge a trained adapter for export.

``train.lora`` (:class:`biotune.config.LoraConfig`) turns full fine-tuning into LoRA: peft's ``get_peft_model``
freezes the base and adds ``B @ A`` adapters to the named linear modules; the engine then gives the optimizer
only the adapter parameters (:func:`trainable_parameters`). Nothing here writes LoRA by hand: the layers, their
initialisation, the merge and the adapter's file format are peft's.

Under ZeRO-3 the base is already partitioned when peft wraps it (peft reads the shapes from ``ds_shape``);
the new adapter parameters are plain tensors that ``deepspeed.initialize`` partitions. They are initialised
from ``train.seed`` alone, so every rank starts from the same adapter whatever its own RNG stream.

A checkpoint of a LoRA run holds the whole peft model's shards (frozen base included) plus peft's config in
``model_meta/lora/`` (:data:`~biotune.train.checkpoint.LORA_META_DIR`); export rebuilds the peft model from
them (:func:`wrap_saved`), saves the adapter in peft's format and writes the merged full weights
(:func:`save_adapter_and_merge`).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from biotune.config import LoraConfig
from biotune.errors import CheckpointError, ConfigError, DataError, Problem
from biotune.io import read_json
from biotune.train.checkpoint import LORA_META_DIR, MODEL_META_DIR

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

#: peft's adapter name for the one adapter a biotune run trains.
ADAPTER_NAME = "default"
#: The file peft writes its adapter config to (``peft.utils.CONFIG_NAME``), in ``model_meta/lora/`` and ``adapter/``.
ADAPTER_CONFIG_FILE = "adapter_config.json"


def peft_config(lora: LoraConfig, base_name_or_path: str = "") -> Any:
    """The ``peft.LoraConfig`` of ``train.lora`` (causal LM, no bias terms trained)."""
    from peft import LoraConfig as PeftLoraConfig

    return PeftLoraConfig(
        r=lora.rank,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=list(lora.target_modules),
        bias="none",
        task_type="CAUSAL_LM",
        base_model_name_or_path=base_name_or_path or None,
    )


def linear_module_names(model: torch.nn.Module) -> list[str]:
    """The full names of the model's ``nn.Linear`` modules (``model.layers.0.self_attn.q_proj``, ...)."""
    import torch

    return [name for name, m in model.named_modules() if isinstance(m, torch.nn.Linear)]


def _matches(name: str, target: str) -> bool:
    """peft's rule for a list of target names: the full module name, or a ``.``-suffix of it."""
    return name == target or name.endswith(f".{target}")


def targets(lora: LoraConfig, name: str) -> bool:
    """Whether ``train.lora.target_modules`` selects the module ``name``."""
    return any(_matches(name, t) for t in lora.target_modules)


def target_problem(lora: LoraConfig, linear_names: list[str]) -> Problem | None:
    """The problem with ``train.lora.target_modules`` given the model's linear module names, or None."""
    missing = [t for t in lora.target_modules if not any(_matches(n, t) for n in linear_names)]
    if not missing:
        return None
    short = sorted({n.rsplit(".", 1)[-1] for n in linear_names})
    return Problem(
        "train.lora.target_modules",
        f"the model has no linear module named {', '.join(repr(m) for m in missing)}",
        f"choose among the model's linear modules: {', '.join(short)}",
    )


def check_targets(lora: LoraConfig, model: torch.nn.Module) -> None:
    """ConfigError naming ``train.lora.target_modules`` and the model's linear names when a target is missing."""
    problem = target_problem(lora, linear_module_names(model))
    if problem:
        raise ConfigError([problem])


def check_targets_of_config(lora: LoraConfig, model_dir: str | Path, trust_remote_code: bool = False) -> None:
    """:func:`check_targets` on the model that ``model_dir``'s config describes (a directory with config.json,
    or a hub id already in the cache), built on the meta device.

    Needs no weights and no memory, so ``biotune train`` (also with ``--dry-run``) rejects a wrong name before
    it builds data or writes anything.
    """
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(model_dir, trust_remote_code=trust_remote_code)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config, trust_remote_code=trust_remote_code)
    check_targets(lora, model)


def wrap(model: torch.nn.Module, lora: LoraConfig, seed: int, base_name_or_path: str) -> torch.nn.Module:
    """``get_peft_model`` with adapters initialised from ``seed`` (the same on every rank; global RNG untouched).

    The adapters keep the base's dtype (``autocast_adapter_dtype=False``): DeepSpeed's mixed precision keeps the
    fp32 master copies, and ZeRO-3 flattens one dtype per group.
    """
    import torch
    from peft import get_peft_model

    check_targets(lora, model)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        peft_model = get_peft_model(
            model,
            peft_config(lora, base_name_or_path),
            adapter_name=ADAPTER_NAME,
            autocast_adapter_dtype=False,
        )
    trainable = sum(getattr(p, "ds_numel", p.numel()) for p in trainable_parameters(peft_model))
    log.info(
        "LoRA rank %d alpha %g dropout %g on %s: %d trainable parameters",
        lora.rank,
        lora.alpha,
        lora.dropout,
        ",".join(lora.target_modules),
        trainable,
    )
    return peft_model


def trainable_parameters(model: torch.nn.Module) -> list[torch.nn.Parameter]:
    """The parameters the optimizer gets: all of them in full fine-tuning, only the adapters under LoRA."""
    return [p for p in model.parameters() if p.requires_grad]


def is_peft_model(model: torch.nn.Module) -> bool:
    """True for a peft-wrapped model."""
    return hasattr(model, "peft_config") and hasattr(model, "merge_and_unload")


def save_meta(model: torch.nn.Module, meta_dir: Path) -> None:
    """Store the peft config of a LoRA model in a checkpoint's ``model_meta/`` (nothing for full fine-tuning)."""
    if is_peft_model(model):
        model.peft_config[ADAPTER_NAME].save_pretrained(str(meta_dir / LORA_META_DIR))


def has_adapter(meta_dir: Path) -> bool:
    """True when a checkpoint's ``model_meta/`` says its shards are a LoRA (peft) model."""
    return (meta_dir / LORA_META_DIR / ADAPTER_CONFIG_FILE).is_file()


def wrap_saved(base: torch.nn.Module, meta_dir: Path) -> torch.nn.Module:
    """The peft model a LoRA checkpoint's shards belong to: ``base`` wrapped by the config in ``model_meta/lora``."""
    from peft import LoraConfig as PeftLoraConfig
    from peft import get_peft_model

    peft_cfg = PeftLoraConfig.from_pretrained(str(meta_dir / LORA_META_DIR))
    base.name_or_path = (
        peft_cfg.base_model_name_or_path or ""
    )  # the trained base, not model_meta/, in the adapter
    return get_peft_model(base, peft_cfg, adapter_name=ADAPTER_NAME, autocast_adapter_dtype=False)


def save_adapter_and_merge(model: torch.nn.Module, adapter_out: Path) -> torch.nn.Module:
    """Save the adapter to ``adapter_out`` in peft's format (``adapter_config.json`` +
    ``adapter_model.safetensors``) and return the base model with the adapter merged in (``merge_and_unload``)."""
    model.save_pretrained(str(adapter_out), safe_serialization=True)
    return model.merge_and_unload()


def _describe(lora: LoraConfig | None) -> str:
    if lora is None:
        return "full fine-tuning (no train.lora)"
    return f"LoRA rank {lora.rank}, alpha {lora.alpha:g}, dropout {lora.dropout:g} on {', '.join(lora.target_modules)}"


def saved_settings(ckpt: Path) -> LoraConfig | None:
    """The ``train.lora`` a checkpoint was trained with (None: full fine-tuning), read from peft's JSON config."""
    path = Path(ckpt) / MODEL_META_DIR / LORA_META_DIR / ADAPTER_CONFIG_FILE
    if not path.is_file():
        return None
    try:
        raw = read_json(path, "restore model_meta/ from the run that wrote this checkpoint")
        return LoraConfig(
            rank=int(raw["r"]),
            alpha=float(raw["lora_alpha"]),
            dropout=float(raw["lora_dropout"]),
            target_modules=sorted(raw["target_modules"]),
        )
    except DataError as err:
        raise CheckpointError(str(err)) from None
    except (KeyError, TypeError, ValueError) as err:
        raise CheckpointError(
            f"{path}: not a peft LoRA config ({type(err).__name__}: {err})\n"
            "  fix: restore model_meta/ from the run that wrote this checkpoint"
        ) from None


def check_resume(ckpt: Path, lora: LoraConfig | None) -> None:
    """CheckpointError when ``ckpt`` was trained with other ``train.lora`` settings than this run's: its shards
    and optimizer state would not fit this model."""
    saved = saved_settings(ckpt)
    now = (
        None if lora is None else LoraConfig(lora.rank, lora.alpha, lora.dropout, sorted(lora.target_modules))
    )
    if saved != now:
        raise CheckpointError(
            f"{ckpt} was trained with {_describe(saved)}, but this run has {_describe(now)}.\n"
            "  fix: resume with the checkpoint's train.lora settings, or start a new run in another "
            "train.output_dir (or with train.resume=none)"
        )

"""The DeepSpeed JSON: where ``train.deepspeed`` points, how it is read, what it offloads, how it is filled.

Shared by the engine (which fills and uses it) and ``biotune plan`` (which reads its offload and bucket sizes),
so both find the same file, reject the same problems and agree on the offload variant. Torch-free.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from biotune.config import REPO_ROOT, RunConfig
from biotune.errors import ConfigError, DataError, Problem

#: Offload variants: name -> (offload optimizer, offload parameters).
OFFLOAD_VARIANTS: dict[str, tuple[bool, bool]] = {
    "none": (False, False),
    "optimizer": (True, False),
    "optimizer+params": (True, True),
}

_SHIPPED = "configs/deepspeed/zero3.json, zero3_offload_optimizer.json or zero3_offload_all.json"


def template_path(path: str) -> Path:
    """The file ``train.deepspeed`` names: relative to the working directory, else to the repository."""
    p = Path(path)
    if not p.is_absolute() and not p.exists():
        p = REPO_ROOT / path
    if not p.is_file():
        raise ConfigError(
            [Problem("train.deepspeed", f"DeepSpeed config {path} does not exist", f"use {_SHIPPED}")]
        )
    return p


def read_template(path: str) -> dict[str, Any]:
    """The DeepSpeed JSON named by ``train.deepspeed``, parsed; a malformed file names its line."""
    p = template_path(path)
    try:
        ds = json.loads(p.read_text(encoding="utf-8"))
    except UnicodeDecodeError as err:
        raise DataError(
            p, f"not UTF-8 text ({err.reason})", f"point train.deepspeed at a JSON file like {_SHIPPED}"
        ) from None
    except json.JSONDecodeError as err:
        raise DataError(
            p,
            f"invalid JSON: {err.msg} (column {err.colno})",
            "fix the JSON syntax (compare with configs/deepspeed/zero3.json)",
            line=err.lineno,
        ) from None
    if not isinstance(ds, dict):
        raise DataError(p, "the top level is not a JSON object", "start from configs/deepspeed/zero3.json")
    return ds


def offload_variant(ds: dict[str, Any]) -> str:
    """Which offload variant a DeepSpeed config selects (a key of :data:`OFFLOAD_VARIANTS`)."""
    zero = ds.get("zero_optimization") or {}

    def on_host(key: str) -> bool:
        return str((zero.get(key) or {}).get("device", "none")).lower() in ("cpu", "nvme")

    opt, params = on_host("offload_optimizer"), on_host("offload_param")
    if params and not opt:
        raise ConfigError(
            [
                Problem(
                    "train.deepspeed: zero_optimization.offload_param",
                    "parameter offload without optimizer offload is not a ZeRO-3 variant biotune supports",
                    "offload the optimizer too (see configs/deepspeed/zero3_offload_all.json)",
                )
            ]
        )
    return next(k for k, v in OFFLOAD_VARIANTS.items() if v == (opt, params))


def offloads_optimizer(ds: dict[str, Any]) -> bool:
    """True when the ZeRO config offloads optimizer states (to CPU or NVMe)."""
    return OFFLOAD_VARIANTS[offload_variant(ds)][0]


def check_batch_arithmetic(cfg: RunConfig, world_size: int) -> None:
    """Raise a ConfigError unless micro_batch_size * grad_accum * world_size matches global_batch_size."""
    t = cfg.train
    actual = t.micro_batch_size * t.grad_accum * world_size
    if t.global_batch_size is not None and t.global_batch_size != actual:
        per_rank = t.global_batch_size / (t.micro_batch_size * world_size)
        fix = (
            f"set train.grad_accum={int(per_rank)}"
            if per_rank.is_integer() and per_rank >= 1
            else f"choose train.global_batch_size as a multiple of micro_batch_size*world_size = "
            f"{t.micro_batch_size * world_size}"
        )
        raise ConfigError(
            [
                Problem(
                    "train.global_batch_size",
                    f"{t.global_batch_size} != micro_batch_size {t.micro_batch_size} * grad_accum "
                    f"{t.grad_accum} * world_size {world_size} = {actual}",
                    fix,
                )
            ]
        )


def _find_auto(node: Any, prefix: str = "") -> list[str]:
    if isinstance(node, dict):
        return [k for key, v in node.items() for k in _find_auto(v, f"{prefix}{key}.")]
    return [prefix.rstrip(".")] if node == "auto" else []


def build_ds_config(cfg: RunConfig, world_size: int) -> dict[str, Any]:
    """The DeepSpeed config: the JSON template with batch, clipping and precision filled from ``cfg``."""
    check_batch_arithmetic(cfg, world_size)
    ds = read_template(cfg.train.deepspeed)
    t = cfg.train
    ds.update(
        {
            "train_micro_batch_size_per_gpu": t.micro_batch_size,
            "gradient_accumulation_steps": t.grad_accum,
            "train_batch_size": t.micro_batch_size * t.grad_accum * world_size,
            "gradient_clipping": cfg.optim.grad_clip,
            "steps_per_print": 10**9,
            "bf16": {"enabled": cfg.model.dtype == "bf16"},
            "fp16": {"enabled": cfg.model.dtype == "fp16", "initial_scale_power": 16},
            "zero_allow_untested_optimizer": True,
        }
    )
    ds.setdefault("zero_optimization", {})["stage"] = 3
    if offloads_optimizer(ds):  # DeepSpeedCPUAdam, built by DeepSpeed from this block
        o = cfg.optim
        ds["optimizer"] = {
            "type": "AdamW",
            "params": {"lr": o.lr, "betas": list(o.betas), "eps": o.eps, "weight_decay": o.weight_decay},
        }
    leftover = _find_auto(ds)
    if leftover:
        raise ConfigError(
            [
                Problem(
                    "train.deepspeed",
                    f"fields still 'auto' after filling: {leftover}",
                    "remove them from the JSON; biotune derives them from the run config",
                )
            ]
        )
    return ds

"""Attention for packed rows: which implementation runs, and ``sdpa_packed``, a variable-length sdpa.

A packed row holds several sequences, separated by ``position_ids`` that restart (``biotune.data.packing``).
``flash_attention_2`` handles that natively (its varlen kernel, from the position ids). Plain ``sdpa`` handles it
exactly too, but through a dense ``seq x seq`` block-diagonal mask: every row pays attention over its whole width,
and the explicit mask takes sdpa off its causal fast path. On CPU that made packed training slower per token than
padded batches (``benchmarks/train_throughput.py``).

``sdpa_packed`` is registered with transformers' ``AttentionInterface`` and ``AttentionMaskInterface``. When the
model runs without a padding mask and without a cache (training on packed rows), the mask function returns
``None`` and the attention function cuts each row at its sequence starts and runs causal sdpa on every sequence
alone: the cost is ``sum(len_i^2)`` instead of ``width^2``, on sdpa's causal kernel. In every other case (a
padding mask, a KV cache, a sliding window shorter than the row, custom mask functions) both hand over to
transformers' own sdpa mask and attention, so generation and padded batches behave exactly like ``sdpa``.

torch's own ``torch.nn.attention.varlen.varlen_attn`` would be the library choice, but it runs on CUDA flash
kernels only (``NotImplementedError`` on CPU); flex attention has no backward on CPU.
"""

from __future__ import annotations

import importlib.util
import itertools
import weakref
from typing import TYPE_CHECKING, Any

from biotune.config import SDPA_PACKED

if TYPE_CHECKING:
    import torch


def resolve(requested: str) -> str:
    """``auto`` -> ``flash_attention_2`` when flash-attn is installed and CUDA is present, else ``sdpa_packed``.

    Registers ``sdpa_packed`` with transformers whenever it is the answer, so the name can go to ``from_pretrained``.
    """
    if requested == "auto":
        has_flash = importlib.util.find_spec("flash_attn") is not None
        import torch

        requested = "flash_attention_2" if has_flash and torch.cuda.is_available() else SDPA_PACKED
    if requested == SDPA_PACKED:
        register()
    return requested


def for_generation(requested: str) -> str:
    """The attention that generation runs where ``requested`` (a configured or resolved name) trains: ``sdpa`` for
    ``auto`` and ``sdpa_packed``, any other unchanged. Generation batches are left-padded and decoded with a KV
    cache, where ``sdpa_packed`` hands over to sdpa anyway; ``biotune eval`` and the evaluation during training
    both run this, so they do the same work."""
    return "sdpa" if requested in ("auto", SDPA_PACKED) else requested


def register() -> None:
    """Make ``attn_implementation="sdpa_packed"`` known to transformers (idempotent)."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface

    AttentionInterface.register(SDPA_PACKED, packed_sdpa_attention)
    AttentionMaskInterface.register(SDPA_PACKED, packed_sdpa_mask)


def packed_sdpa_mask(
    batch_size: int,
    q_length: int,
    kv_length: int,
    q_offset: int = 0,
    kv_offset: int = 0,
    attention_mask: torch.Tensor | None = None,
    use_vmap: bool = False,
    config: Any = None,
    **kwargs: Any,
) -> torch.Tensor | None:
    """No mask for packed training rows (the attention cuts them itself); transformers' sdpa mask otherwise."""
    from transformers.masking_utils import sdpa_mask

    window = getattr(config, "sliding_window", None)
    if (
        attention_mask is None
        and not use_vmap
        and q_offset == 0
        and kv_offset == 0
        and q_length == kv_length
        and (window is None or window >= q_length)
        and getattr(config, "is_causal", True)
    ):
        return None
    return sdpa_mask(
        batch_size=batch_size,
        q_length=q_length,
        kv_length=kv_length,
        q_offset=q_offset,
        kv_offset=kv_offset,
        attention_mask=attention_mask,
        use_vmap=use_vmap,
        config=config,
        **kwargs,
    )


def packed_sdpa_attention(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """Causal sdpa on each sequence of each row; shapes as transformers' ``sdpa_attention_forward``.

    ``query``: ``(batch, heads, seq, dim)``; ``key``/``value`` may have fewer (grouped) heads. Returns
    ``(batch, seq, heads, dim)``.
    """
    import torch
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    position_ids = kwargs.get("position_ids")
    seq = query.shape[2]
    if (
        attention_mask is not None
        or position_ids is None
        or seq != key.shape[2]
        or seq == 1
        or not getattr(module, "is_causal", True)
    ):
        return sdpa_attention_forward(
            module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs
        )
    gqa = query.shape[1] != key.shape[1]
    dropout = dropout if module.training else 0.0
    rows = []
    for b, bounds in enumerate(sequence_bounds(position_ids, query.shape[0])):
        parts = [
            torch.nn.functional.scaled_dot_product_attention(
                query[b : b + 1, :, s:e],
                key[b : b + 1, :, s:e],
                value[b : b + 1, :, s:e],
                dropout_p=dropout,
                is_causal=True,
                scale=scaling,
                enable_gqa=gqa,
            )
            for s, e in zip(bounds[:-1], bounds[1:], strict=True)
        ]
        rows.append(parts[0] if len(parts) == 1 else torch.cat(parts, dim=2))
    out = rows[0] if len(rows) == 1 else torch.cat(rows, dim=0)
    return out.transpose(1, 2).contiguous(), None


_bounds_cache: tuple[Any, int, list[list[int]]] | None = None


def sequence_bounds(position_ids: torch.Tensor, batch_size: int) -> list[list[int]]:
    """Per row, the offsets where a sequence starts, plus the row width: ``[0, s1, s2, ..., width]``.

    A sequence starts wherever the position does not follow the previous one by exactly 1 (transformers'
    ``find_packed_sequence_indices``, used here, so both sdpa paths cut rows alike), so right-padding collated as
    its own ``0..k-1`` ramp is one more sequence. The answer is cached for the tensor it came from: every layer of one forward asks about the same
    ``position_ids``, and on a GPU each fresh answer is a device sync.
    """
    import torch

    global _bounds_cache
    if (
        _bounds_cache is not None
        and _bounds_cache[0]() is position_ids
        and _bounds_cache[1] == position_ids._version
    ):
        return _bounds_cache[2]
    from transformers.masking_utils import find_packed_sequence_indices

    pos = position_ids.expand(batch_size, -1)
    seq = find_packed_sequence_indices(
        pos
    )  # per token, the index of its sequence in the row; None: one per row
    if seq is None:
        bounds = [[0, pos.shape[1]] for _ in range(batch_size)]
    else:
        bounds = [[0, *itertools.accumulate(torch.bincount(row).tolist())] for row in seq]
    _bounds_cache = (weakref.ref(position_ids), position_ids._version, bounds)
    return bounds

"""Stack a micro-batch of packed rows into tensors for the trainer (no attention mask).

Rows are right-padded to the longest row in the micro-batch: ``input_ids`` with the pad id, ``labels`` with -100,
and ``position_ids`` with ``0..k-1`` for ``k`` pad tokens, i.e. the padding is one more "sequence". transformers
starts a new sequence wherever ``position_ids`` do not increase by exactly 1, so the padding gets its own block of
the block-diagonal mask: real tokens never attend to padding (it comes after them and is a different block) and
padding never attends into real sequences; its outputs are ignored by the -100 labels. This needs
``use_cache=False`` and no ``attention_mask`` in the forward call (see ``biotune.data.packing``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from biotune.data.tokenize import IGNORE_INDEX


def collate_packed(rows: Sequence[Mapping[str, Any]], pad_token_id: int | None) -> dict[str, torch.Tensor]:
    """Right-pad and stack packed rows: ``input_ids``, ``labels``, ``position_ids`` as ``(batch, longest)`` LongTensors.

    Row values may be lists or arrays. Padding is never attended by real tokens and carries no loss, so any valid
    id works: ``pad_token_id=None`` (Llama tokenizers have no pad token) pads with id 0.
    """
    if not rows:
        raise ValueError("collate_packed needs at least one row")
    pad_token_id = 0 if pad_token_id is None else pad_token_id
    width = max(len(r["input_ids"]) for r in rows)
    batch = len(rows)
    input_ids = torch.full((batch, width), int(pad_token_id), dtype=torch.long)
    labels = torch.full((batch, width), IGNORE_INDEX, dtype=torch.long)
    position_ids = torch.arange(width, dtype=torch.long).repeat(batch, 1)
    for b, row in enumerate(rows):
        n = len(row["input_ids"])
        input_ids[b, :n] = torch.as_tensor(row["input_ids"], dtype=torch.long)
        labels[b, :n] = torch.as_tensor(row["labels"], dtype=torch.long)
        position_ids[b, :n] = torch.as_tensor(row["position_ids"], dtype=torch.long)
        position_ids[b, n:] = torch.arange(width - n, dtype=torch.long)
    return {"input_ids": input_ids, "labels": labels, "position_ids": position_ids}

"""Tokenize rendered (prompt, target) pairs into ``input_ids`` + prompt-masked ``labels``.

A sample becomes ``[bos?] + prompt_ids + target_ids + [eos]``. The prompt (and the BOS the tokenizer adds in
front of it) is labelled ``-100``; the target ids and the EOS id carry the loss. Prompts are encoded with
``add_special_tokens=True`` so the tokenizer's own BOS convention applies; targets with ``add_special_tokens=False``.
EOS is appended as an id, never as text. Prompt and target are encoded separately (two batched calls on the fast
tokenizer), so the token at the boundary can differ from encoding ``prompt + target`` as one string: the model is
trained on exactly the split it sees at generation time (prompt encoded alone, then continued).

Over-long samples (``len > max_seq_len``) follow ``truncation``:

* ``drop``: the sample is removed and counted.
* ``truncate``: tokens are cut from the prompt, just before its last ``keep_prompt_tail`` tokens. For the biotune
  templates the prompt ends with the input followed by the output cue (``### Input: {input}\\n ### Output:``), so
  this removes the *end of the input* (the input is cut on its right) while keeping the BOS, the instruction at
  the start and the output cue at the end. The target and EOS are never cut. When even
  ``[bos] + tail + target + [eos]`` does not fit, the sample is dropped and counted.

This module owns no template logic and no packing: see ``biotune.data.templates`` and ``biotune.data.packing``.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from biotune.errors import ConfigError, Problem

log = logging.getLogger(__name__)

IGNORE_INDEX = -100
"""Label of tokens that carry no loss (prompt, BOS, padding)."""

TRUNCATION_POLICIES = ("drop", "truncate")

DEFAULT_KEEP_PROMPT_TAIL = 8
"""Prompt tokens kept at the end under ``truncate``: covers the output cue (``\\n ### Output:`` is 5-7 tokens)."""


@dataclass
class TokenizedBatch:
    """Tokenized samples (only the kept ones, in input order) and the counts the manifest reports."""

    input_ids: list[list[int]]
    labels: list[list[int]]
    kept: list[int]
    """Index, in the inputs, of each kept sample (``input_ids[j]`` is sample ``kept[j]``)."""
    dropped_indices: list[int] = field(default_factory=list)
    truncated_indices: list[int] = field(default_factory=list)
    total_tokens: int = 0
    loss_tokens: int = 0

    @property
    def dropped(self) -> int:
        """Number of samples removed because they could not fit ``max_seq_len``."""
        return len(self.dropped_indices)

    @property
    def truncated(self) -> int:
        """Number of kept samples whose prompt was shortened."""
        return len(self.truncated_indices)

    @property
    def lengths(self) -> list[int]:
        """Token length of each kept sample."""
        return [len(ids) for ids in self.input_ids]

    def counts(self) -> dict[str, int]:
        """The counts as a plain dict (for the manifest and logs)."""
        return {"samples": len(self.kept) + self.dropped, "kept": len(self.kept), "dropped": self.dropped,
                "truncated": self.truncated, "total_tokens": self.total_tokens, "loss_tokens": self.loss_tokens}


def _check_arguments(prompts: Sequence[str], targets: Sequence[str], tokenizer: Any, max_seq_len: int,
                     truncation: str, keep_prompt_tail: int) -> None:
    problems: list[Problem] = []
    if truncation not in TRUNCATION_POLICIES:
        problems.append(Problem("data.truncation", f"unknown policy {truncation!r}",
                                f"use one of {', '.join(TRUNCATION_POLICIES)}"))
    if max_seq_len < 2:
        problems.append(Problem("data.max_seq_len", f"{max_seq_len} is too small", "use e.g. 2048"))
    if keep_prompt_tail < 0:
        problems.append(Problem("keep_prompt_tail", f"{keep_prompt_tail} is negative", "use 0 or more"))
    if not getattr(tokenizer, "is_fast", False):
        problems.append(Problem("data.tokenizer", f"{type(tokenizer).__name__} is not a fast tokenizer",
                                "use a tokenizer directory with tokenizer.json (or one transformers converts)"))
    if getattr(tokenizer, "eos_token_id", None) is None:
        problems.append(Problem("data.tokenizer", "the tokenizer has no eos_token",
                                "set eos_token in tokenizer_config.json"))
    if problems:
        raise ConfigError(problems)
    if len(prompts) != len(targets):
        raise ValueError(f"{len(prompts)} prompts but {len(targets)} targets")


def _encode(tokenizer: Any, texts: Sequence[str], add_special_tokens: bool) -> list[list[int]]:
    """One batched fast-tokenizer call; no padding, no truncation, ids only."""
    if not texts:
        return []
    enc = tokenizer(list(texts), add_special_tokens=add_special_tokens, padding=False, truncation=False,
                    return_attention_mask=False, return_token_type_ids=False, verbose=False)
    return enc["input_ids"]


def tokenize_pairs(prompts: Sequence[str], targets: Sequence[str], tokenizer: Any, max_seq_len: int,
                   truncation: str = "drop", keep_prompt_tail: int = DEFAULT_KEEP_PROMPT_TAIL) -> TokenizedBatch:
    """Tokenize rendered prompts and targets into prompt-masked samples of at most ``max_seq_len`` tokens.

    Two batched fast-tokenizer calls (prompts with special tokens, targets without); the rest is a loop over
    samples with list concatenation only (no per-token Python work). A doubled BOS (a prompt whose text already
    starts with the BOS token, e.g. from a chat template) is collapsed to one. See the module docstring for the
    ``drop`` / ``truncate`` policies.
    """
    _check_arguments(prompts, targets, tokenizer, max_seq_len, truncation, keep_prompt_tail)
    prompt_ids = _encode(tokenizer, prompts, add_special_tokens=True)
    target_ids = _encode(tokenizer, targets, add_special_tokens=False)
    eos = [int(tokenizer.eos_token_id)]
    bos = tokenizer.bos_token_id
    cut = truncation == "truncate"

    out = TokenizedBatch(input_ids=[], labels=[], kept=[])
    total = loss = 0
    for i, (p, t) in enumerate(zip(prompt_ids, target_ids)):
        if bos is not None and len(p) > 1 and p[0] == bos and p[1] == bos:
            p = p[1:]
        n_target = len(t) + 1
        budget = max_seq_len - n_target  # room left for the prompt
        if len(p) > budget:
            # Keep at least one head token (the BOS or the first prompt token) in front of the tail.
            if not cut or budget < keep_prompt_tail + 1:
                out.dropped_indices.append(i)
                continue
            p = p[:budget - keep_prompt_tail] + p[len(p) - keep_prompt_tail:]
            out.truncated_indices.append(i)
        out.input_ids.append(p + t + eos)
        out.labels.append([IGNORE_INDEX] * len(p) + t + eos)
        out.kept.append(i)
        total += len(p) + n_target
        loss += n_target
    out.total_tokens, out.loss_tokens = total, loss
    log.info("tokenized %d samples: kept %d, dropped %d, truncated %d, %d tokens (%d with loss)",
             len(prompt_ids), len(out.kept), out.dropped, out.truncated, total, loss)
    return out


def tokenize_sample(prompt: str, target: str, tokenizer: Any, max_seq_len: int, truncation: str = "drop",
                    keep_prompt_tail: int = DEFAULT_KEEP_PROMPT_TAIL) -> tuple[list[int], list[int]] | None:
    """One sample: ``(input_ids, labels)``, or ``None`` when it is dropped. Same rules as :func:`tokenize_pairs`."""
    batch = tokenize_pairs([prompt], [target], tokenizer, max_seq_len, truncation, keep_prompt_tail)
    if not batch.kept:
        return None
    return batch.input_ids[0], batch.labels[0]


def tokenizer_fingerprint(tokenizer: Any) -> str:
    """A stable sha256 of what decides token ids: the backend (vocabulary, merges/model, normalizer, pre-tokenizer,
    post-processor, added tokens), the special tokens and their ids, and the chat template.

    Runtime-only settings of the backend (``padding``, ``truncation``) are left out, so the fingerprint is the same
    after a ``save_pretrained``/``from_pretrained`` round trip and before/after a padded call.
    """
    if not getattr(tokenizer, "is_fast", False):
        raise ConfigError([Problem("data.tokenizer", f"{type(tokenizer).__name__} is not a fast tokenizer",
                                   "use a tokenizer directory with tokenizer.json")])
    backend = json.loads(tokenizer.backend_tokenizer.to_str())
    backend.pop("padding", None)
    backend.pop("truncation", None)
    specials = {name: [str(tok), tokenizer.convert_tokens_to_ids(str(tok))]
                for name, tok in sorted(tokenizer.special_tokens_map.items()) if isinstance(tok, str)}
    payload = {"backend": backend, "special_tokens": specials,
               "chat_template": getattr(tokenizer, "chat_template", None)}
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()

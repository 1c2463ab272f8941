"""Tokenize rendered (prompt, target) pairs into ``input_ids`` + prompt-masked ``labels``.

A sample becomes ``[bos?] + prompt_ids + target_ids + [eos]``. The prompt (and the BOS the tokenizer adds in
front of it) is labelled ``-100``; the target ids and the EOS id carry the loss. Prompts are encoded with
``add_special_tokens=True`` so the tokenizer's own BOS convention applies; targets with ``add_special_tokens=False``.
EOS is appended as an id, never as text. The first token of a sample is always labelled ``-100`` (it is the BOS
or a prompt token, except for an empty prompt with no BOS), so in a packed row no loss crosses a sample boundary. Prompt and target are encoded separately (two batched calls on the fast
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
from functools import cached_property
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np

from biotune.config import TRUNCATION_POLICIES, RunConfig
from biotune.errors import ConfigError, Problem

log = logging.getLogger(__name__)

IGNORE_INDEX = -100
"""Label of tokens that carry no loss (prompt, BOS, padding)."""

DEFAULT_KEEP_PROMPT_TAIL = 8
"""Prompt tokens kept at the end under ``truncate``: covers the output cue (``\\n ### Output:`` is 5-7 tokens)."""


@dataclass
class TokenizedBatch:
    """Tokenized samples (only the kept ones, in input order) and the counts the manifest reports.

    The tokens of all kept samples live in two flat int32 arrays (``flat_input_ids``, ``flat_labels``) cut by
    ``offsets``; ``input_ids[j]`` / ``labels[j]`` are zero-copy views of sample ``kept[j]``.
    """

    flat_input_ids: np.ndarray
    flat_labels: np.ndarray
    offsets: np.ndarray
    """``len(kept) + 1`` int64 boundaries: sample ``j`` is ``flat[offsets[j]:offsets[j + 1]]``."""
    loss_counts: np.ndarray
    """int64 per kept sample: its tokens that carry loss (labels other than -100: the target and the EOS)."""
    kept: list[int]
    """Index, in the inputs, of each kept sample."""
    dropped_indices: list[int] = field(default_factory=list)
    truncated_indices: list[int] = field(default_factory=list)

    @cached_property
    def input_ids(self) -> list[np.ndarray]:
        """One int32 view per kept sample."""
        return np.split(self.flat_input_ids, self.offsets[1:-1])

    @cached_property
    def labels(self) -> list[np.ndarray]:
        """One int32 view per kept sample (-100 over the prompt)."""
        return np.split(self.flat_labels, self.offsets[1:-1])

    @property
    def lengths(self) -> list[int]:
        """Token length of each kept sample."""
        return np.diff(self.offsets).tolist()

    @property
    def dropped(self) -> int:
        """Number of samples removed because they could not fit ``max_seq_len``."""
        return len(self.dropped_indices)

    @property
    def truncated(self) -> int:
        """Number of kept samples whose prompt was shortened."""
        return len(self.truncated_indices)

    @property
    def total_tokens(self) -> int:
        """Tokens over all kept samples."""
        return int(self.flat_input_ids.size)

    @property
    def loss_tokens(self) -> int:
        """Tokens that carry loss (target + EOS) over all kept samples."""
        return int(self.loss_counts.sum())

    def counts(self) -> dict[str, int]:
        """The counts as a plain dict (for the manifest and logs)."""
        return {
            "samples": len(self.kept) + self.dropped,
            "kept": len(self.kept),
            "dropped": self.dropped,
            "truncated": self.truncated,
            "total_tokens": self.total_tokens,
            "loss_tokens": self.loss_tokens,
        }


def _check_arguments(
    prompts: Sequence[str],
    targets: Sequence[str],
    tokenizer: Any,
    max_seq_len: int,
    truncation: str,
    keep_prompt_tail: int,
) -> None:
    problems: list[Problem] = []
    if truncation not in TRUNCATION_POLICIES:
        problems.append(
            Problem(
                "data.truncation",
                f"unknown policy {truncation!r}",
                f"use one of {', '.join(TRUNCATION_POLICIES)}",
            )
        )
    if max_seq_len < 2:
        problems.append(Problem("data.max_seq_len", f"{max_seq_len} is too small", "use e.g. 2048"))
    if keep_prompt_tail < 0:
        problems.append(Problem("keep_prompt_tail", f"{keep_prompt_tail} is negative", "use 0 or more"))
    if not getattr(tokenizer, "is_fast", False):
        problems.append(
            Problem(
                "data.tokenizer",
                f"{type(tokenizer).__name__} is not a fast tokenizer",
                "use a tokenizer directory with tokenizer.json (or one transformers converts)",
            )
        )
    if getattr(tokenizer, "eos_token_id", None) is None:
        problems.append(
            Problem(
                "data.tokenizer", "the tokenizer has no eos_token", "set eos_token in tokenizer_config.json"
            )
        )
    if problems:
        raise ConfigError(problems)
    if len(prompts) != len(targets):
        raise ValueError(f"{len(prompts)} prompts but {len(targets)} targets")


def _encode(tokenizer: Any, texts: Sequence[str], add_special_tokens: bool) -> list[list[int]]:
    """One batched call on the Rust backend; ids only, no padding, no truncation.

    The backend is called directly (``encode_batch_fast``: no offsets) when it has no padding/truncation of its
    own configured: same ids as ``tokenizer(texts)`` (tested), without transformers' per-encoding conversion,
    which costs about a third of the encode time. Otherwise the ordinary ``tokenizer(...)`` call is used.
    """
    if not texts:
        return []
    backend = tokenizer.backend_tokenizer
    encode = getattr(backend, "encode_batch_fast", None)
    if encode is not None and backend.truncation is None and backend.padding is None:
        return [e.ids for e in encode(list(texts), add_special_tokens=add_special_tokens)]
    enc = tokenizer(
        list(texts),
        add_special_tokens=add_special_tokens,
        padding=False,
        truncation=False,
        return_attention_mask=False,
        return_token_type_ids=False,
        verbose=False,
    )
    return enc["input_ids"]


def _flatten(seqs: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    """Lists of ids -> (flat int32 array, int64 lengths): the one pass that touches every token in Python objects."""
    lengths = np.fromiter(map(len, seqs), dtype=np.int64, count=len(seqs))
    flat = np.fromiter(chain.from_iterable(seqs), dtype=np.int32, count=int(lengths.sum()))
    return flat, lengths


#: Texts per fast-tokenizer call in :func:`_encode_flat`.
ENCODE_CHUNK = 4096


def _encode_flat(
    tokenizer: Any, texts: Sequence[str], add_special_tokens: bool
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_encode` then :func:`_flatten`, :data:`ENCODE_CHUNK` texts at a time: the ids exist as Python
    ints (36 bytes each) for one chunk only, so a build of 30M tokens does not hold a gigabyte of them, and
    each chunk's memory is reused by the next. Every text is encoded on its own: the same ids as one call.

    A doubled BOS (a prompt whose text already starts with the BOS token, e.g. from a chat template, encoded
    with special tokens) is collapsed to one.
    """
    bos = tokenizer.bos_token_id if add_special_tokens else None
    flats: list[np.ndarray] = []
    lengths: list[np.ndarray] = []
    for start in range(0, len(texts), ENCODE_CHUNK):
        ids = _encode(tokenizer, texts[start : start + ENCODE_CHUNK], add_special_tokens)
        if bos is not None:
            ids = [p[1:] if len(p) > 1 and p[0] == bos and p[1] == bos else p for p in ids]
        flat, length = _flatten(ids)
        flats.append(flat)
        lengths.append(length)
    if not flats:
        return np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.int64)
    return np.concatenate(flats), np.concatenate(lengths)


def _segments(pattern: Sequence[int], lengths: np.ndarray) -> np.ndarray:
    """Per-sample segments laid end to end, as an int8 label per element: sample ``i`` contributes
    ``pattern[k]`` repeated ``lengths[i, k]`` times, for each k. ``lengths`` has shape ``(n, len(pattern))``."""
    codes = np.tile(np.asarray(pattern, dtype=np.int8), lengths.shape[0])
    return np.repeat(codes, lengths.reshape(-1))


def _prompt_keep_mask(
    p_len: np.ndarray, budget: np.ndarray, truncated: np.ndarray, keep: np.ndarray, tail: int
) -> np.ndarray:
    """Which flat prompt tokens survive: none of a dropped sample's; of a truncated prompt, all but the middle
    ``[budget - tail, len - tail)``; all of the others."""
    head = np.where(truncated, budget - tail, p_len)
    cut = np.where(truncated, p_len - tail - head, 0)
    rest = p_len - head - cut
    return _segments((1, 0, 1), np.stack([head, cut, rest], axis=1)).astype(bool) & np.repeat(keep, p_len)


def tokenize_pairs(
    prompts: Sequence[str],
    targets: Sequence[str],
    tokenizer: Any,
    max_seq_len: int,
    truncation: str = "drop",
    keep_prompt_tail: int = DEFAULT_KEEP_PROMPT_TAIL,
    log: bool = True,
) -> TokenizedBatch:
    """Tokenize rendered prompts and targets into prompt-masked samples of at most ``max_seq_len`` tokens.

    Batched fast-tokenizer calls (prompts with special tokens, targets without; :func:`_encode_flat`), one pass
    converting the ids to int32 arrays, then vectorised numpy: no per-token Python work. A doubled BOS (a prompt whose text already
    starts with the BOS token, e.g. from a chat template) is collapsed to one. See the module docstring for the
    ``drop`` / ``truncate`` policies.
    """
    _check_arguments(prompts, targets, tokenizer, max_seq_len, truncation, keep_prompt_tail)
    p_flat, p_len = _encode_flat(tokenizer, prompts, add_special_tokens=True)
    t_flat, t_len = _encode_flat(tokenizer, targets, add_special_tokens=False)

    budget = max_seq_len - t_len - 1  # room left for the prompt once target + EOS are in
    over = p_len > budget
    fits_cut = budget >= keep_prompt_tail + 1  # one head token (BOS or the first prompt token) + the tail
    truncated = over & fits_cut if truncation == "truncate" else np.zeros_like(over)
    keep = ~over | truncated
    new_p_len = np.where(truncated, budget, p_len)

    if not keep.all() or truncated.any():
        p_flat = p_flat[_prompt_keep_mask(p_len, budget, truncated, keep, keep_prompt_tail)]
        t_flat = t_flat[np.repeat(keep, t_len)]
        new_p_len, t_len = new_p_len[keep], t_len[keep]
    seq_len = new_p_len + t_len + 1
    offsets = np.zeros(seq_len.size + 1, dtype=np.int64)
    np.cumsum(seq_len, out=offsets[1:])

    # Each sample is [prompt | target | eos]: label every output slot with its part, then fill by boolean masks.
    part = _segments((0, 1, 2), np.stack([new_p_len, t_len, np.ones_like(t_len)], axis=1))
    ids = np.empty(part.size, dtype=np.int32)
    is_prompt = part == 0
    ids[is_prompt] = p_flat
    ids[part == 1] = t_flat
    ids[part == 2] = int(tokenizer.eos_token_id)
    labels = ids.copy()
    labels[is_prompt] = IGNORE_INDEX
    labels[offsets[:-1]] = (
        IGNORE_INDEX  # an empty prompt: a first token is never predicted (packing relies on it)
    )

    out = TokenizedBatch(
        flat_input_ids=ids,
        flat_labels=labels,
        offsets=offsets,
        # target + EOS, less the first token when the prompt is empty (it is labelled -100 above)
        loss_counts=t_len + 1 - (new_p_len == 0),
        kept=np.flatnonzero(keep).tolist(),
        dropped_indices=np.flatnonzero(~keep).tolist(),
        truncated_indices=np.flatnonzero(truncated).tolist(),
    )
    if log:
        log_counts(out)
    return out


def log_counts(batch: TokenizedBatch | ChunkedBatch) -> None:
    """One INFO line with the counts of a tokenized batch."""
    log.info(
        "tokenized %d samples: kept %d, dropped %d, truncated %d, %d tokens (%d with loss)",
        len(batch.kept) + batch.dropped,
        len(batch.kept),
        batch.dropped,
        batch.truncated,
        batch.total_tokens,
        batch.loss_tokens,
    )


@dataclass
class ChunkedBatch:
    """The batches of consecutive chunks of the inputs, read as the one batch :func:`tokenize_pairs` makes of all
    of them, without copying their tokens: :attr:`input_ids` and :attr:`labels` are views into each chunk's
    arrays (what packing reads).

    Every sample is tokenized on its own, so the chunks in input order hold the same samples, byte for byte, as
    one call over all inputs (tested); input indices are shifted by what comes before.
    """

    batches: Sequence[TokenizedBatch]

    @cached_property
    def input_ids(self) -> list[np.ndarray]:
        """One int32 view per kept sample."""
        return [view for b in self.batches for view in b.input_ids]

    @cached_property
    def labels(self) -> list[np.ndarray]:
        """One int32 view per kept sample (-100 over the prompt)."""
        return [view for b in self.batches for view in b.labels]

    @cached_property
    def loss_counts(self) -> np.ndarray:
        """Tokens that carry loss, per kept sample."""
        return np.concatenate([b.loss_counts for b in self.batches] or [np.zeros(0, np.int64)]).astype(
            np.int64
        )

    def _shifted(self, name: str) -> list[int]:
        starts = np.cumsum([0] + [len(b.kept) + b.dropped for b in self.batches])
        return [
            i + int(start) for b, start in zip(self.batches, starts, strict=False) for i in getattr(b, name)
        ]

    @cached_property
    def kept(self) -> list[int]:
        """Index, in the inputs, of each kept sample."""
        return self._shifted("kept")

    @cached_property
    def dropped_indices(self) -> list[int]:
        return self._shifted("dropped_indices")

    @cached_property
    def truncated_indices(self) -> list[int]:
        return self._shifted("truncated_indices")

    @property
    def dropped(self) -> int:
        return sum(b.dropped for b in self.batches)

    @property
    def truncated(self) -> int:
        return sum(b.truncated for b in self.batches)

    @property
    def total_tokens(self) -> int:
        return sum(b.total_tokens for b in self.batches)

    @property
    def loss_tokens(self) -> int:
        return int(self.loss_counts.sum())


class BackendTokenizer:
    """What :func:`tokenize_pairs` uses of a fast tokenizer, rebuilt from the JSON of its Rust backend.

    This is how a worker process of a parallel build gets the tokenizer: exactly the one the build fingerprinted
    (no second hub lookup, no remote code, no ``transformers`` import), loaded once per worker. Padding and
    truncation are off, as :func:`_encode` asks of the full tokenizer, so the ids are the same.
    """

    is_fast = True

    def __init__(self, backend_json: str, bos_token_id: int | None, eos_token_id: int | None) -> None:
        from tokenizers import Tokenizer

        self.backend_tokenizer = Tokenizer.from_str(backend_json)
        self.backend_tokenizer.no_padding()
        self.backend_tokenizer.no_truncation()
        self.bos_token_id = bos_token_id
        self.eos_token_id = eos_token_id

    @staticmethod
    def parts(tokenizer: Any) -> tuple[str, int | None, int | None]:
        """The picklable arguments that rebuild ``tokenizer`` (a fast one) in another process."""
        return tokenizer.backend_tokenizer.to_str(), tokenizer.bos_token_id, tokenizer.eos_token_id


def tokenize_sample(
    prompt: str,
    target: str,
    tokenizer: Any,
    max_seq_len: int,
    truncation: str = "drop",
    keep_prompt_tail: int = DEFAULT_KEEP_PROMPT_TAIL,
) -> tuple[list[int], list[int]] | None:
    """One sample: ``(input_ids, labels)``, or ``None`` when it is dropped. Same rules as :func:`tokenize_pairs`."""
    batch = tokenize_pairs([prompt], [target], tokenizer, max_seq_len, truncation, keep_prompt_tail)
    if not batch.kept:
        return None
    return batch.flat_input_ids.tolist(), batch.flat_labels.tolist()


def tokenizer_fingerprint(tokenizer: Any) -> str:
    """A stable sha256 of what decides token ids: the backend (vocabulary, merges/model, normalizer, pre-tokenizer,
    post-processor, added tokens), the special tokens and their ids, and the chat template.

    Runtime-only settings of the backend (``padding``, ``truncation``) are left out, so the fingerprint is the same
    after a ``save_pretrained``/``from_pretrained`` round trip and before/after a padded call.
    """
    if not getattr(tokenizer, "is_fast", False):
        raise ConfigError(
            [
                Problem(
                    "data.tokenizer",
                    f"{type(tokenizer).__name__} is not a fast tokenizer",
                    "use a tokenizer directory with tokenizer.json",
                )
            ]
        )
    backend = json.loads(tokenizer.backend_tokenizer.to_str())
    backend.pop("padding", None)
    backend.pop("truncation", None)
    specials = {
        name: [str(tok), tokenizer.convert_tokens_to_ids(str(tok))]
        for name, tok in sorted(tokenizer.special_tokens_map.items())
        if isinstance(tok, str)
    }
    payload = {
        "backend": backend,
        "special_tokens": specials,
        "chat_template": getattr(tokenizer, "chat_template", None),
    }
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


# ----------------------------------------------------------------------------------------------- which tokenizer


def tokenizer_of(cfg: RunConfig, model: str | Path | None = None) -> str:
    """The tokenizer of a run, the one rule that data build, training, sweeps and evaluation share:
    ``data.tokenizer``, else the model's own (``model``: the model a command loads, e.g. the exported model that
    ``biotune eval`` scores; ``model.name_or_path`` when not given). Empty when neither is set
    (:func:`load_tokenizer` then names the keys to set)."""
    return cfg.data.tokenizer or str(model or cfg.model.name_or_path or "")


def load_tokenizer(path: str, trust_remote_code: bool = False) -> Any:
    """Load a (fast) tokenizer from a local directory or hub id (:func:`tokenizer_of`), with a clear error if
    it is missing or none was given."""
    from transformers import AutoTokenizer

    if not path:
        raise ConfigError(
            [
                Problem(
                    "data.tokenizer",
                    "no tokenizer given (data.tokenizer and model.name_or_path are empty)",
                    "set data.tokenizer=PATH_OR_HUB_ID or model.name_or_path",
                )
            ]
        )
    local = Path(path).expanduser()
    # A path under an existing local directory (runs/tiny_llama while runs/ exists) is never sent to the hub.
    looks_local = path.startswith((".", "/", "~")) or local.exists() or Path(local.parts[0]).is_dir()
    if looks_local and not local.is_dir():
        raise ConfigError(
            [
                Problem(
                    "data.tokenizer",
                    f"tokenizer directory {local} does not exist",
                    "build or export a model first, or point data.tokenizer at a directory",
                )
            ]
        )
    try:
        return AutoTokenizer.from_pretrained(
            str(local) if local.is_dir() else path, trust_remote_code=trust_remote_code
        )
    except (OSError, ValueError) as err:
        raise ConfigError(
            [
                Problem(
                    "data.tokenizer",
                    f"cannot load a tokenizer from {path}: {err}",
                    "pass a directory with tokenizer files, or a reachable hub id",
                )
            ]
        ) from err

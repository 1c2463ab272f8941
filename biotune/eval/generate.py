"""Batched generation: load a model, turn prompts into completions, data-parallel across ranks.

Prompts are sorted by token length (longest first, so a batch that does not fit fails early), split into
batches, left-padded, and decoded greedily (or with beam search) until EOS or ``max_new_tokens``.
With several ranks each rank generates a strided shard and rank 0 gathers every completion. An optional
vLLM backend is used when ``eval.backend=vllm`` and vLLM is installed.
"""

from __future__ import annotations

import importlib.util
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from biotune import distributed
from biotune.errors import CheckpointError, ConfigError, DataError, Problem
from biotune.train import attention
from biotune.train import checkpoint as layout
from biotune.train.checkpoint import require_complete
from biotune.train.export import export_checkpoint, export_matches

log = logging.getLogger(__name__)

TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "tokenizer_config.json", "vocab.json")
DTYPES = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}


@dataclass(frozen=True)
class Lockstep:
    """How a rank keeps pace with the others under ZeRO-3: the batch count every rank runs, and a prompt for
    the filler batches of a rank that has fewer."""

    num_batches: int
    filler: str


@dataclass
class Generations:
    """Completions by prompt id, with the counts that throughput is computed from."""

    completions: dict[str, str] = field(default_factory=dict)
    new_tokens: int = 0
    """Generated tokens, counted up to and including EOS (padding excluded)."""
    seconds: float = 0.0
    """Wall time spent generating (with several ranks: the slowest rank's)."""

    @property
    def tokens_per_second(self) -> float:
        """Generated tokens per second of wall time (0 when nothing was timed)."""
        return self.new_tokens / self.seconds if self.seconds > 0 else 0.0


def resolve_model_dir(path: str, export_dir: Path | None = None) -> Path:
    """A loadable HF model directory from ``eval.model``.

    Accepts an exported HF directory, a training run's output directory (its final export is used), or a
    checkpoint directory, which is exported into ``export_dir`` unless that already holds the export of this
    very checkpoint (same path and COMPLETED content; any other export there is replaced).

    Raises:
        ConfigError: when ``path`` is empty or does not exist.
        CheckpointError: when a checkpoint is incomplete or cannot be exported.
        DataError: when the directory has no tokenizer.
    """

    if not path:
        raise ConfigError(
            [
                Problem(
                    "eval.model", "no model given", "set eval.model=DIR (an exported model or a checkpoint)"
                )
            ]
        )
    model_dir = Path(path).expanduser().resolve()
    if not model_dir.is_dir():
        raise ConfigError(
            [
                Problem(
                    "eval.model",
                    f"directory {model_dir} does not exist",
                    "point eval.model at an exported HF model or a checkpoint directory",
                )
            ]
        )
    run_export = layout.export_dir(model_dir)
    if (
        not (model_dir / "config.json").is_file()
        and (run_export / "config.json").is_file()
        and not layout.is_checkpoint(model_dir)
    ):
        model_dir = run_export  # a training run's output directory: its final export
    elif layout.is_checkpoint(model_dir):
        model_dir = _export_checkpoint(model_dir, export_dir or model_dir.parent / f"{model_dir.name}-hf")
    if not any((model_dir / name).is_file() for name in TOKENIZER_FILES):
        raise DataError(
            model_dir,
            "model directory has no tokenizer (no tokenizer.json, tokenizer.model or tokenizer_config.json)",
            "save the tokenizer beside the weights (tokenizer.save_pretrained(DIR)) "
            "or export the model with `biotune export`, which copies it",
        )
    return model_dir


def _export_checkpoint(ckpt: Path, out: Path) -> Path:
    """Consolidate a checkpoint into an HF directory with the trainer's exporter (``biotune export``)."""
    require_complete(ckpt)
    if export_matches(out, ckpt):
        log.info("reusing %s: the export of %s", out, ckpt)
        return out
    log.info("exporting checkpoint %s to %s", ckpt, out)
    try:
        export_checkpoint(ckpt, out)
    except ModuleNotFoundError as err:
        if err.name != "deepspeed":
            raise
        raise CheckpointError(
            f"{ckpt} is a ZeRO checkpoint and the exporter is unavailable ({err}); export it "
            "with `biotune export CKPT OUT` where DeepSpeed is installed and set eval.model=OUT"
        ) from err
    return out


def load_model(
    model_dir: Path, dtype: str = "fp32", attn_implementation: str = "sdpa", tokenizer_dir: str | None = None
) -> tuple[Any, Any]:
    """Load ``AutoModelForCausalLM`` + ``AutoTokenizer`` (left padding, pad token set) for generation.

    A folder that needs its own code (``auto_map``) or holds weights that are not plain tensors (a pickled
    ``.bin``) is refused by transformers and torch; that refusal is a CheckpointError naming the folder.
    """
    import pickle

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    attn = attention.for_generation(attn_implementation)
    try:
        tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir or model_dir, trust_remote_code=False)
        model = AutoModelForCausalLM.from_pretrained(
            model_dir,
            dtype=getattr(torch, DTYPES.get(dtype, dtype)),
            attn_implementation=attn,
            trust_remote_code=False,
        )
    except (OSError, ValueError, pickle.UnpicklingError) as err:
        what = " ".join(str(err).split())[:400]
        raise CheckpointError(
            f"{model_dir}: cannot load the model for evaluation: {what}\n  fix: biotune never runs code or "
            "unpickles objects from a model folder; point eval.model at a Hugging Face folder with safetensors "
            "weights and no auto_map code (e.g. the output of `biotune export`)"
        ) from None
    prepare_tokenizer(tokenizer)
    if torch.cuda.is_available():
        model = model.to(torch.device("cuda", torch.cuda.current_device()))
    model.eval()
    return model, tokenizer


def prepare_tokenizer(tokenizer: Any) -> Any:
    """Set ``tokenizer`` up for batched generation: left padding, a pad token (EOS or UNK when it has none)."""
    tokenizer.padding_side = "left"
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    return tokenizer


def _encode(tokenizer: Any, prompts: Sequence[str]) -> list[list[int]]:
    """Token ids of each prompt, encoded exactly as training encodes prompts (``add_special_tokens=True``); none for
    no prompts (a rank whose shard of a small set is empty: fast tokenizers fail on an empty batch)."""
    if not prompts:
        return []
    return [list(ids) for ids in tokenizer(list(prompts), add_special_tokens=True)["input_ids"]]


def _until_eos(row: list[int], eos_ids: set[int], pad_id: int | None) -> tuple[list[int], int]:
    """The generated ids before the first EOS, and how many tokens were generated (EOS included, padding not)."""
    for n, tok in enumerate(row):
        if tok in eos_ids:
            return row[:n], n + 1
    end = len(row)
    while end and pad_id is not None and row[end - 1] == pad_id:
        end -= 1
    return row[:end], end


def generate_hf(
    model: Any,
    tokenizer: Any,
    prompts: dict[str, str],
    batch_size: int = 16,
    max_new_tokens: int = 256,
    num_beams: int = 1,
    progress: bool = True,
    lockstep: Lockstep | None = None,
    inference_mode: bool = True,
) -> Generations:
    """Greedy (or beam) generation in length-sorted, left-padded batches; returns completions by id.

    With ``lockstep`` (ZeRO-3 across ranks) every rank runs ``lockstep.num_batches`` batches with
    ``synced_gpus=True``: a rank with fewer real batches runs filler batches (``lockstep.filler``) whose output
    is discarded, so every rank joins every collective of every forward pass. ``inference_mode=False`` runs
    under ``torch.no_grad`` instead: a training model's ZeRO-3 parameters gathered inside inference mode
    could not be updated by the next optimizer step.
    """
    import torch
    from tqdm.auto import tqdm

    ids = list(prompts)
    encoded = dict(zip(ids, _encode(tokenizer, [prompts[i] for i in ids]), strict=True))
    order = sorted(ids, key=lambda i: len(encoded[i]), reverse=True)
    eos = model.generation_config.eos_token_id
    eos_ids = set(eos if isinstance(eos, list) else [eos if eos is not None else tokenizer.eos_token_id])
    device = next(model.parameters()).device
    result = Generations()
    bar = tqdm(total=len(order), desc="generate", unit="ex", disable=not progress or not order)
    start = time.perf_counter()
    batches = [order[b : b + batch_size] for b in range(0, len(order), batch_size)]
    filler: list[int] = []
    if lockstep is not None:
        filler = _encode(tokenizer, [lockstep.filler])[0]
        batches += [[]] * (lockstep.num_batches - len(batches))
    # explicit: transformers would otherwise sync every rank's decoding whenever a ZeRO-3 config is live
    extra: dict[str, Any] = {"synced_gpus": lockstep is not None}
    for batch in batches:
        rows = [encoded[i] for i in batch] if batch else [filler]
        enc = tokenizer.pad({"input_ids": rows}, padding=True, return_tensors="pt")
        with torch.inference_mode() if inference_mode else torch.no_grad():
            out = model.generate(
                input_ids=enc["input_ids"].to(device),
                attention_mask=enc["attention_mask"].to(device),
                max_new_tokens=max_new_tokens,
                do_sample=False,
                num_beams=num_beams,
                use_cache=True,
                pad_token_id=tokenizer.pad_token_id,
                eos_token_id=sorted(eos_ids),
                **extra,
            )
        if not batch:
            continue  # a filler batch: it only kept this rank in step with the others
        for pid, row in zip(batch, out[:, enc["input_ids"].shape[1] :].tolist(), strict=True):
            ids_before_eos, generated = _until_eos(row, eos_ids, tokenizer.pad_token_id)
            result.completions[pid] = tokenizer.decode(ids_before_eos, skip_special_tokens=True)
            result.new_tokens += generated
        bar.update(len(batch))
    bar.close()
    result.seconds = time.perf_counter() - start
    return result


def vllm_available() -> bool:
    """True when the optional vLLM package is importable (never on the CPU CI machine)."""
    return importlib.util.find_spec("vllm") is not None


def generate_vllm(
    model_dir: Path, prompts: dict[str, str], max_new_tokens: int = 256, num_beams: int = 1
) -> Generations:
    """Generate with vLLM (greedy; beam search through vLLM's beam API). Requires vLLM and a GPU."""
    import vllm  # type: ignore[import-not-found]

    llm = vllm.LLM(model=str(model_dir))
    ids = list(prompts)
    start = time.perf_counter()
    result = Generations()
    if num_beams > 1:
        from vllm.sampling_params import BeamSearchParams  # type: ignore[import-not-found]

        outs = llm.beam_search(
            [{"prompt": prompts[i]} for i in ids],
            BeamSearchParams(beam_width=num_beams, max_tokens=max_new_tokens),
        )
        for pid, out in zip(ids, outs, strict=True):
            best = out.sequences[0]
            result.completions[pid] = best.text
            result.new_tokens += len(best.tokens)
    else:
        params = vllm.SamplingParams(temperature=0.0, max_tokens=max_new_tokens)
        for pid, out in zip(ids, llm.generate([prompts[i] for i in ids], params), strict=True):
            result.completions[pid] = out.outputs[0].text
            result.new_tokens += len(out.outputs[0].token_ids)
    result.seconds = time.perf_counter() - start
    return result


def choose_backend(requested: str) -> str:
    """``vllm`` only when asked for and installed; otherwise ``hf`` (with a warning when vLLM was asked for)."""
    if requested == "vllm" and not vllm_available():
        log.warning(
            "eval.backend=vllm but vLLM is not installed (pip install biotune[vllm]); using the hf backend"
        )
        return "hf"
    return requested


def shard(ids: Sequence[str], rank: int, world_size: int) -> list[str]:
    """This rank's strided share of ``ids`` (every id lands on exactly one rank)."""
    return list(ids[rank::world_size])


def generate_distributed(prompts: dict[str, str], generate_fn: Any) -> Generations:
    """Run ``generate_fn(shard_prompts)`` on this rank's shard; rank 0 returns the merged result.

    Other ranks return their own (partial) result. Without a process group this is a plain call.
    """
    rank, world = distributed.rank(), distributed.world_size()
    mine = {i: prompts[i] for i in shard(sorted(prompts), rank, world)}
    local: Generations = generate_fn(mine)
    return _gather(local, rank, world)


def generate_sharded_lockstep(
    model: Any,
    tokenizer: Any,
    prompts: dict[str, str],
    batch_size: int,
    max_new_tokens: int,
    num_beams: int = 1,
    synced: bool = True,
) -> Generations:
    """:func:`generate_distributed` with the training engine's ``model``.

    Each rank generates for the same strided shard as ``biotune eval`` with the same batches. With ``synced``
    (a ZeRO-3 model whose forwards gather weights across ranks) the ranks stay in lockstep (``synced_gpus``,
    shards padded to equal batch counts by :class:`Lockstep`) under ``torch.no_grad``; without, each rank
    generates alone (its weights are whole, gathered before this call) under ``torch.inference_mode``, as
    ``biotune eval`` does. Rank 0 returns every completion; the others return their own.
    """
    rank, world = distributed.rank(), distributed.world_size()
    mine = {i: prompts[i] for i in shard(sorted(prompts), rank, world)}
    lockstep = None
    if world > 1 and synced:
        counts = distributed.all_gather_objects(-(-len(mine) // batch_size))
        lockstep = Lockstep(max(counts), prompts[min(prompts)]) if prompts else None
    local = generate_hf(
        model,
        tokenizer,
        mine,
        batch_size,
        max_new_tokens,
        num_beams,
        rank == 0,
        lockstep=lockstep,
        inference_mode=not synced,
    )
    return _gather(local, rank, world)


def _gather(local: Generations, rank: int, world: int) -> Generations:
    """Rank 0: every rank's completions merged (the slowest rank's time); other ranks: their own."""
    if world == 1:
        return local
    parts = distributed.all_gather_objects((local.completions, local.new_tokens, local.seconds))
    merged = Generations()
    for completions, tokens, seconds in parts:
        merged.completions.update(completions)
        merged.new_tokens += tokens
        merged.seconds = max(merged.seconds, seconds)
    return merged if rank == 0 else local

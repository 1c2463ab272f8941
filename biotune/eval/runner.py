"""The evaluation run: config -> evaluation sets -> completions -> scores -> report.

``evaluate(cfg)`` is what ``biotune eval CONFIG`` runs; ``score_predictions`` is ``biotune eval score``.
Outputs (rank 0, under ``eval.output_dir``): ``predictions.jsonl`` (id + completion, re-scorable with
``biotune eval score``), ``predictions/<source>__<split>.jsonl`` (parsed value, reference, parse status),
``report.json`` and ``report.md`` (the layout: :mod:`biotune.eval.layout`). Predictions stay local unless
``eval.upload_predictions`` is true.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from biotune import distributed
from biotune.config import RunConfig, to_dict
from biotune.data.templates import render_prompt
from biotune.data.tokenize import tokenizer_of
from biotune.errors import ConfigError, Problem
from biotune.eval import generate, report
from biotune.eval.generate import Generations
from biotune.eval.layout import REPORT_MD, export_cache_dir, set_label
from biotune.eval.score import (
    EvalSet,
    SetScore,
    Unscored,
    build_eval_set,
    build_instruction_sets,
    check_coverage,
    load_sets_for_predictions,
    read_predictions,
    score_set,
)
from biotune.eval.sets import plan_sets
from biotune.sources import SourceSpec, catalog, resolve_root
from biotune.train.checkpoint import export_dir

log = logging.getLogger(__name__)


def data_root(cfg: RunConfig) -> Path:
    """``data.root`` as a directory (``@sample`` = the bundled sample corpus)."""
    return resolve_root(cfg.data.root)


def build_sets(
    cfg: RunConfig,
    unscored: dict[str, Unscored] | None = None,
    known: dict[str, SourceSpec] | None = None,
) -> list[EvalSet]:
    """Every evaluation set the config asks for: the corpus sets of :func:`~biotune.eval.sets.plan_sets`, then
    instruction-row sets. ``known`` is ``catalog(cfg.data)`` when the caller has it (it is built once)."""
    known = catalog(cfg.data) if known is None else known
    root = data_root(cfg)
    sets = [
        build_eval_set(
            known[ref.source], ref.split, root, cfg.data.ner_format, cfg.data.seed, cfg.eval.max_examples
        )
        for ref in plan_sets(cfg, known)
    ]
    sets += instruction_sets(cfg, unscored, known)
    _check_unique(sets)
    return sets


def instruction_sets(
    cfg: RunConfig,
    unscored: dict[str, Unscored] | None = None,
    known: dict[str, SourceSpec] | None = None,
) -> list[EvalSet]:
    """The sets of ``eval.instructions``. Rows read but not scored (a source that maps to no task, an output
    that is not readable gold) are logged and recorded in ``unscored`` (``eval.instructions.NAME`` ->
    :class:`~biotune.eval.score.Unscored`), which the report's meta records as ``unscored_rows``."""
    if not cfg.eval.instructions:
        return []
    known = catalog(cfg.data) if known is None else known
    out: list[EvalSet] = []
    for name, declared in cfg.eval.instructions.items():
        key = f"eval.instructions.{name}"
        sets, left_out = build_instruction_sets(
            key, declared, known, cfg.data.ner_format, cfg.eval.max_examples
        )
        out += sets
        if left_out.count and unscored is not None:
            unscored[key] = left_out
    return out


def _check_unique(sets: list[EvalSet]) -> None:
    """Two sets may not share ``source/split``: their reports and predictions files would collide."""
    seen: dict[str, str] = {}
    problems = []
    for s in sets:
        label, origin = set_label(s.source, s.split), s.origin or "eval.sources"
        if label in seen:
            problems.append(
                Problem(
                    origin,
                    f"{label} is evaluated twice (also by {seen[label]})",
                    "evaluate it once: drop it from eval.sources, or give the instruction set another "
                    "corpus_split",
                )
            )
        seen.setdefault(label, origin)
    if problems:
        raise ConfigError(problems)


def render_prompts(eval_set: EvalSet, template: str, tokenizer: Any) -> dict[str, str]:
    """Sample id -> the prompt text (everything up to where the output starts)."""

    return {s.id: render_prompt(template, s.instruction, s.input, tokenizer) for s in eval_set.samples}


def _generator(cfg: RunConfig, model_dir: Path) -> tuple[Any, Any]:
    """The tokenizer and a function prompts -> Generations for the configured backend."""
    e = cfg.eval
    if generate.choose_backend(e.backend) == "vllm":
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(tokenizer_of(cfg, model_dir))
        return tokenizer, lambda prompts: generate.generate_vllm(
            model_dir, prompts, e.max_new_tokens, e.num_beams
        )
    model, tokenizer = generate.load_model(
        model_dir, cfg.model.dtype, cfg.model.attn_implementation, tokenizer_of(cfg, model_dir)
    )
    progress = distributed.is_rank_zero()
    return tokenizer, lambda prompts: generate.generate_hf(
        model, tokenizer, prompts, e.batch_size, e.max_new_tokens, e.num_beams, progress
    )


def evaluate(cfg: RunConfig) -> Path | None:
    """Generate, score and report every configured evaluation set; returns the output dir on rank 0."""
    denv = distributed.read_env()
    if denv.world_size == 1:
        return _evaluate(cfg)
    distributed.init_process_group(denv)
    try:
        return _evaluate(cfg)
    finally:
        distributed.destroy_process_group()


@dataclass
class Scored:
    """What generation and scoring of some sets produced (complete on rank 0 only)."""

    scores: list[SetScore] = field(default_factory=list)
    details: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """Per-example rows by set label."""
    completions: dict[str, str] = field(default_factory=dict)
    generation_seconds: float = 0.0
    """Wall time spent generating, summed over the sets (each set: the slowest rank's)."""


def generate_and_score(
    sets: list[EvalSet], template: str, tokenizer: Any, gen: Callable[[dict[str, str]], Generations]
) -> Scored:
    """Generate for every set with ``gen`` (this rank's shard -> gathered on rank 0) and score on rank 0.

    ``gen`` maps all of a set's prompts to their completions; it is :func:`generate.generate_distributed` around
    a loaded model for ``biotune eval``, and :func:`generate.generate_sharded_lockstep` around the training
    engine's model during training. Every rank runs the same sets in the same order.
    """
    out = Scored()
    for eval_set in sets:
        label = set_label(eval_set.source, eval_set.split)
        log.info("evaluating %s: %d examples", label, len(eval_set.samples))
        result = gen(render_prompts(eval_set, template, tokenizer))
        if not distributed.is_rank_zero():
            continue
        score, rows = score_set(eval_set, result.completions)
        score.tokens_per_second = result.tokens_per_second
        out.generation_seconds += result.seconds
        out.scores.append(score)
        out.details[label] = rows
        out.completions.update({i: result.completions[i] for i in eval_set.ids})
    return out


def _evaluate(cfg: RunConfig) -> Path | None:
    model_dir = generate.resolve_model_dir(
        cfg.eval.model or str(export_dir(cfg.train.output_dir)), export_cache_dir(cfg.eval.output_dir)
    )
    unscored: dict[str, Unscored] = {}
    sets = build_sets(cfg, unscored)
    tokenizer, gen = _generator(cfg, model_dir)
    scored = generate_and_score(
        sets, cfg.data.template, tokenizer, lambda p: generate.generate_distributed(p, gen)
    )
    distributed.barrier()
    if not distributed.is_rank_zero():
        return None
    restricted = {set_label(s.source, s.split): s.restricted for s in sets}
    return _write_outputs(cfg, model_dir, scored, restricted, unscored)


def run_meta(cfg: RunConfig, model: str, unscored: dict[str, Unscored]) -> dict[str, Any]:
    """The ``meta`` block of a report: model, template, generation settings, world size, time, unscored rows."""
    return {
        "model": model,
        "template": cfg.data.template,
        "ner_format": cfg.data.ner_format,
        "backend": generate.choose_backend(cfg.eval.backend),
        "num_beams": cfg.eval.num_beams,
        "max_new_tokens": cfg.eval.max_new_tokens,
        "max_examples": cfg.eval.max_examples,
        "world_size": distributed.world_size(),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "config": to_dict(cfg.eval),
        "unscored_rows": {key: entry.to_dict() for key, entry in unscored.items()},
    }


def write_eval_files(out: Path, scored: Scored, meta: dict[str, Any]) -> list[dict[str, Any]]:
    """``predictions.jsonl``, ``predictions/<source>__<split>.jsonl``, ``report.json`` and ``report.md`` in
    ``out`` (the layout of :mod:`biotune.eval.layout`), written as one set (:func:`report.write_outputs`: staged,
    then moved in); returns the report rows. The report's meta gets the number of examples and the generation
    time."""
    timing = {"examples": len(scored.completions), "generation_seconds": scored.generation_seconds}
    return report.write_outputs(out, scored.scores, scored.details, {**meta, **timing}, scored.completions)


def _write_outputs(
    cfg: RunConfig,
    model_dir: Path,
    scored: Scored,
    restricted_sets: dict[str, bool],
    unscored: dict[str, Unscored],
) -> Path:
    out = Path(cfg.eval.output_dir)
    rows = write_eval_files(out, scored, run_meta(cfg, str(model_dir), unscored))
    t = cfg.tracking
    scores = scored.scores
    restricted = {s.source for s in scores if restricted_sets.get(set_label(s.source, s.split), True)}
    report.log_to_wandb(
        rows,
        scored.details,
        tracking=t,
        run_name=f"{cfg.name}-eval",
        out_dir=out,
        upload_predictions=cfg.eval.upload_predictions,
        restricted=restricted,
    )
    log.info("report written to %s", out / REPORT_MD)
    return out


def score_predictions(path: str | Path, cfg: RunConfig, out_dir: str | Path | None = None) -> list[SetScore]:
    """Score a predictions JSONL (from any model) against gold; writes a report when ``out_dir`` is given."""
    predictions = read_predictions(path)
    unscored: dict[str, Unscored] = {}
    known = catalog(cfg.data)
    sets = instruction_sets(cfg, unscored, known)
    left_out = {i for entry in unscored.values() for i in entry.ids}
    predictions = {i: c for i, c in predictions.items() if i not in left_out}  # rows read but not scored
    covered = {i for s in sets for i in s.ids}
    rest = {i: c for i, c in predictions.items() if i not in covered}
    if rest:
        sets += load_sets_for_predictions(
            rest, path, data_root(cfg), cfg.data.ner_format, cfg.data.seed, cfg.eval.max_examples, known
        )
    _check_unique(sets)
    check_coverage(predictions, sets, path)
    scores = []
    details = {}
    for eval_set in sets:
        score, rows = score_set(eval_set, predictions)
        scores.append(score)
        details[set_label(eval_set.source, eval_set.split)] = rows
    if out_dir is not None:
        meta = {
            "predictions": str(path),
            "ner_format": cfg.data.ner_format,
            "unscored_rows": {key: entry.to_dict() for key, entry in unscored.items()},
        }
        report.write_outputs(out_dir, scores, details, meta)
    return scores

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
from pathlib import Path
from typing import Any

from biotune import distributed
from biotune.config import RunConfig, to_dict
from biotune.data.sources import SourceSpec, catalog, resolve_root
from biotune.data.tokenize import tokenizer_of
from biotune.errors import ConfigError, Problem
from biotune.eval import generate, report
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
    from biotune.data.templates import render_prompt

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


def _evaluate(cfg: RunConfig) -> Path | None:
    model_dir = generate.resolve_model_dir(
        cfg.eval.model or str(export_dir(cfg.train.output_dir)), export_cache_dir(cfg.eval.output_dir)
    )
    unscored: dict[str, Unscored] = {}
    sets = build_sets(cfg, unscored)
    tokenizer, gen = _generator(cfg, model_dir)
    scores: list[SetScore] = []
    details: dict[str, list[dict[str, Any]]] = {}
    all_completions: dict[str, str] = {}
    for eval_set in sets:
        label = set_label(eval_set.source, eval_set.split)
        log.info("evaluating %s: %d examples", label, len(eval_set.samples))
        result = generate.generate_distributed(render_prompts(eval_set, cfg.data.template, tokenizer), gen)
        if not distributed.is_rank_zero():
            continue
        score, rows = score_set(eval_set, result.completions)
        score.tokens_per_second = result.tokens_per_second
        scores.append(score)
        details[label] = rows
        all_completions.update({i: result.completions[i] for i in eval_set.ids})
    distributed.barrier()
    if not distributed.is_rank_zero():
        return None
    restricted = {set_label(s.source, s.split): s.restricted for s in sets}
    return _write_outputs(cfg, model_dir, scores, details, all_completions, restricted, unscored)


def _write_outputs(
    cfg: RunConfig,
    model_dir: Path,
    scores: list[SetScore],
    details: dict[str, list[dict[str, Any]]],
    completions: dict[str, str],
    restricted_sets: dict[str, bool],
    unscored: dict[str, Unscored],
) -> Path:
    out = Path(cfg.eval.output_dir)
    meta = {
        "model": str(model_dir),
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
    rows = report.write_outputs(out, scores, details, meta, completions)
    t = cfg.tracking
    restricted = {s.source for s in scores if restricted_sets.get(set_label(s.source, s.split), True)}
    report.log_to_wandb(
        rows,
        details,
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

"""Generative evaluation at checkpoints inside the training job (``eval.during_training``).

The trainer (:mod:`biotune.train.trainer`) calls a :class:`StepEvaluation` at each scheduled step. Under ZeRO-3
every rank generates for its shard of the examples with the engine's own model: its weights gathered once per
evaluation (``gather_weights``, the default; its forwards then run as a plain model's, under
``torch.inference_mode``, as fast per example as ``biotune eval`` of the export:
:meth:`biotune.train.engine.Engine.generation_model`), or layer by layer at every forward with the ranks in lockstep
(``synced_gpus``, shards padded to equal batch counts: :func:`biotune.eval.generate.generate_sharded_lockstep`); rank 0 scores them with the
same code as ``biotune eval`` (:func:`biotune.eval.runner.generate_and_score`) and writes the same files under
``<train.output_dir>/eval/step-N/`` (:func:`biotune.eval.layout.step_eval_dir`), swapped in whole with a record
of the logged metrics. The metrics are ``eval/<source>/<split>/<metric>`` and ``.../parse_failures``
(:mod:`biotune.train.metric_names`).

Exactly once across resume: the step's directory, swapped in whole with its record, is the record that the step
was evaluated; a step that has one is never evaluated again. A resumed run that replays such a step (it resumed
from an earlier checkpoint, and ``metrics.jsonl`` was trimmed back to that checkpoint) writes the record's
metrics back to ``metrics.jsonl`` (:meth:`~biotune.train.tracking.Tracker.restore`; wandb kept them), so the
history holds one point per step. The trainer evaluates a scheduled step before it saves that step's
checkpoint, so a run never resumes past a scheduled step that has no record. A run that starts from step 0 (no
checkpoint resumed) trusts no record in its directory: rank 0 first moves the step evaluations an earlier run left
there to ``eval/replaced-<UTC time>/`` (:func:`set_aside_earlier_run`), so they are neither taken for this run's
nor lost.

The ``biotune train`` command gets this evaluator from :mod:`biotune.eval.train_command`, which registers it
(``biotune.train`` sits below ``biotune.eval`` and cannot import it).
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from biotune import distributed
from biotune.config import RunConfig
from biotune.data.tokenize import load_tokenizer, tokenizer_of
from biotune.eval import generate
from biotune.eval.checkpoint_plan import eval_config, scheduled_steps
from biotune.eval.layout import DURING_TRAINING_RECORD, replaced_step_evals_dir, step_eval_dir, step_eval_dirs
from biotune.eval.runner import Scored, build_sets, generate_and_score, run_meta, write_eval_files
from biotune.eval.score import EvalSet
from biotune.io import atomic_write_json, read_json, swap_in_dir
from biotune.train import metric_names as names

log = logging.getLogger(__name__)

#: ``gather -> context manager yielding the model to generate with``: the training engine's
#: :meth:`~biotune.train.engine.Engine.generation_model`.
GenerationModel = Callable[[bool], AbstractContextManager[Any]]


class StepEvaluation:
    """Evaluates the training engine's model at the scheduled steps (every rank calls it together)."""

    def __init__(
        self,
        cfg: RunConfig,
        generation_model: GenerationModel,
        output_dir: Path,
        total_steps: int,
        resumed_step: int | None,
    ) -> None:
        self.cfg, self.generation_model, self.output_dir = cfg, generation_model, Path(output_dir)
        if resumed_step is None and distributed.is_rank_zero():
            set_aside_earlier_run(self.output_dir)
        self.steps = frozenset(scheduled_steps(cfg.eval.during_training, total_steps))
        self.sub = eval_config(cfg)
        self.sets: list[EvalSet] = build_sets(self.sub)
        tok = load_tokenizer(tokenizer_of(cfg), cfg.model.trust_remote_code)
        self.tokenizer = generate.prepare_tokenizer(tok)
        log.info(
            "evaluation during training at steps %s: %s",
            sorted(self.steps),
            ", ".join(f"{s.source}/{s.split} ({len(s.samples)})" for s in self.sets),
        )

    def is_done(self, step: int) -> bool:
        """Whether ``step`` was evaluated already (rank 0 looks; every rank gets its answer)."""
        here = (step_eval_dir(self.output_dir, step) / DURING_TRAINING_RECORD).is_file()
        return bool(distributed.all_gather_objects(here)[0])

    def recorded(self, step: int) -> dict[str, float]:
        """The metrics logged when ``step`` was evaluated, from its record (rank 0; empty elsewhere)."""
        if not distributed.is_rank_zero():
            return {}
        path = step_eval_dir(self.output_dir, step) / DURING_TRAINING_RECORD
        record = read_json(path, f"delete {path.parent} to evaluate step {step} again")
        return {k: float(v) for k, v in record["metrics"].items()}

    def evaluate(self, step: int, tokens: int) -> dict[str, float]:
        """Generate (every rank, its shard), score and write ``eval/step-N/`` (rank 0); the metrics, on rank 0."""
        e = self.cfg.eval
        gather = e.during_training.gather_weights
        start = time.perf_counter()
        with self.generation_model(gather) as model:
            scored = generate_and_score(
                self.sets,
                self.cfg.data.template,
                self.tokenizer,
                lambda prompts: generate.generate_sharded_lockstep(
                    model, self.tokenizer, prompts, e.batch_size, e.max_new_tokens, e.num_beams, not gather
                ),
            )
        metrics: dict[str, float] = {}
        if distributed.is_rank_zero():
            metrics = step_metrics(scored)
            seconds = time.perf_counter() - start
            self._write(step_eval_dir(self.output_dir, step), step, tokens, scored, metrics, seconds)
        distributed.barrier()
        return metrics

    def _write(
        self, out: Path, step: int, tokens: int, scored: Scored, metrics: dict[str, float], seconds: float
    ) -> None:
        """Every file of ``out`` in a temporary sibling, then swapped in whole (the record inside it)."""
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
        meta = run_meta(self.sub, f"{self.output_dir} at step {step} (in the training job)", {})
        meta["step"] = step
        write_eval_files(tmp, scored, meta)
        record = {
            "step": step,
            names.TRAIN_TOKENS: tokens,
            "metrics": metrics,
            "examples": len(scored.completions),
            "seconds": seconds,
            "generation_seconds": scored.generation_seconds,
        }
        atomic_write_json(tmp / DURING_TRAINING_RECORD, record)
        swap_in_dir(tmp, out)
        log.info("step %d evaluated: %s", step, out)


def step_metrics(scored: Scored) -> dict[str, float]:
    """``eval/<source>/<split>/<metric>`` for every numeric metric of every set, and its parse failures."""
    out: dict[str, float] = {}
    for score in scored.scores:
        for metric, value in score.metrics.items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                out[names.eval_metric(score.source, score.split, metric)] = float(value)
        out[names.eval_parse_failures(score.source, score.split)] = float(score.parse_failures)
    return out


def set_aside_earlier_run(output_dir: Path) -> Path | None:
    """Move every step evaluation (``eval/step-N/`` with its record) in ``output_dir`` to
    ``eval/replaced-<UTC time>/step-N/``: a run starting from step 0 must not take an earlier run's evaluations for
    its own. Directories without our record are not ours and stay. Returns where they went (None: nothing)."""
    found = step_eval_dirs(output_dir)
    if not found:
        return None
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    dest = replaced_step_evals_dir(output_dir, stamp)
    dest.mkdir(parents=True, exist_ok=False)
    for path in found.values():
        path.rename(dest / path.name)
    log.warning(
        "this run starts from step 0: the step evaluations of an earlier run in %s (steps %s) were moved to %s",
        output_dir,
        ", ".join(map(str, sorted(found))),
        dest,
    )
    return dest


def build_step_evaluation(
    cfg: RunConfig,
    generation_model: GenerationModel,
    output_dir: Path,
    total_steps: int,
    resumed_step: int | None,
) -> StepEvaluation | None:
    """The evaluator of a training run (``resumed_step``: the checkpoint's step it resumed from, None when it
    starts from step 0), or None when ``eval.during_training`` is off."""
    if not cfg.eval.during_training.enabled:
        return None
    return StepEvaluation(cfg, generation_model, output_dir, total_steps, resumed_step)

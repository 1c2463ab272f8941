"""The training loop on a DeepSpeed ZeRO-3 engine: ``fit``, ``train_step``, ``evaluate``, ``save_checkpoint``.

Loss normalisation: each optimizer step first all-reduces the number of loss tokens ``N`` of the whole step
(all micro-batches, all ranks); every micro-batch then contributes ``sum(token losses) * world / N`` and
DeepSpeed averages gradients over ranks, so the gradient is that of the mean over the step's unmasked tokens
whatever the split into ranks and accumulation steps.

Generative evaluation at scheduled steps (``eval.during_training``) runs through a :class:`StepEvaluator`
handed in by :mod:`biotune.eval.during_training`, after the step and before its checkpoint is saved.

Checkpoints follow the layout that :mod:`biotune.train.checkpoint` owns. SIGUSR1/SIGTERM finish the current
step, save, and make :meth:`Trainer.fit` return :data:`~biotune.errors.EXIT_PREEMPTED`.
"""

from __future__ import annotations

import logging
import resource
import shutil
import signal
import time
from dataclasses import asdict
from pathlib import Path
from types import FrameType
from typing import Any, Protocol

import torch

from biotune import distributed as dist
from biotune.config import RunConfig
from biotune.data.loader import (
    DataPosition,
    Layout,
    PackedSplit,
    advance,
    collate_packed,
    eval_plan,
    loss_tokens,
    step_rows,
    steps_per_epoch,
)
from biotune.errors import EXIT_OK, EXIT_PREEMPTED, CheckpointError, ConfigError, Problem
from biotune.train import checkpoint as ckpt_layout
from biotune.train import metric_names as names
from biotune.train.checkpoint import CONSUMED_FILE, PROBE_FILE, TrainerState, check_world_size, read_state
from biotune.train.engine import DTYPES, Engine
from biotune.train.hardware import mfu, resolve_peak
from biotune.train.tracking import JsonlWriter, Tracker

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------------- signals


class PreemptionFlag:
    """Set by SIGUSR1/SIGTERM; the loop checks it (all ranks agree) after each step."""

    def __init__(self) -> None:
        self.signum = 0
        for sig in (signal.SIGUSR1, signal.SIGTERM):
            signal.signal(sig, self._handle)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.signum = signum
        log.warning(
            "received %s: finishing the current step, then saving a checkpoint", signal.Signals(signum).name
        )


# --------------------------------------------------------------------------------------------- evaluation


class StepEvaluator(Protocol):
    """Generative evaluation at scheduled steps (``eval.during_training``; built by
    :mod:`biotune.eval.during_training`). Every rank calls each method at the same steps."""

    steps: frozenset[int]
    """The optimizer steps to evaluate."""

    def is_done(self, step: int) -> bool:
        """Whether ``step`` was evaluated already (the same answer on every rank)."""

    def evaluate(self, step: int, tokens: int) -> dict[str, float]:
        """Evaluate the model at ``step``, write its files and record; the metrics to log (rank 0)."""

    def recorded(self, step: int) -> dict[str, float]:
        """The metrics recorded when ``step`` was evaluated (rank 0; empty elsewhere)."""


# --------------------------------------------------------------------------------------------- trainer


class Trainer:
    """Runs steps on an :class:`Engine` over a packed split; saves, resumes, evaluates, logs."""

    def __init__(
        self,
        cfg: RunConfig,
        engine: Engine,
        train: PackedSplit,
        eval_split: PackedSplit | None,
        tracker: Tracker,
        output_dir: Path,
        total_steps: int,
        tokenizer_dir: str | None,
        pad_token_id: int,
        step_eval: StepEvaluator | None = None,
    ) -> None:
        self.step_eval = step_eval
        self.cfg, self.engine, self.data, self.eval_data = cfg, engine, train, eval_split
        self.tracker, self.output_dir, self.total_steps = tracker, Path(output_dir), total_steps
        self.tokenizer_dir, self.pad_token_id = tokenizer_dir, pad_token_id
        self.rank, self.world = dist.rank(), dist.world_size()
        self.layout = Layout(self.world, cfg.train.grad_accum, cfg.train.micro_batch_size)
        self.per_epoch = steps_per_epoch(len(train), self.layout)
        self.state = TrainerState(world_size=self.world, run_id=tracker.run_id)
        self.preempt = PreemptionFlag()
        self.consumed: JsonlWriter | None = None  # opened by fit(), after resume() trimmed the logs
        self.peak = resolve_peak(cfg.model.dtype, cfg.train.peak_tflops, DTYPES[cfg.model.dtype])
        log.info(
            "MFU is taken against %.4g TFLOP/s per device (%s)", self.peak.flops / 1e12, self.peak.source
        )
        self._window: dict[str, float] = {"loss": 0.0, "tokens": 0.0, "time": 0.0, "steps": 0.0}

    # ----------------------------------------------------------------------------------------- resume

    def resume(self, ckpt: Path) -> None:
        """Load shards, optimizer, schedule, RNG and data position from ``ckpt``; drop logs past it."""
        state = read_state(ckpt)
        check_world_size(ckpt, state, self.world)
        self.engine.load(ckpt)
        dist.set_rng_state(ckpt_layout.load_rng(ckpt, self.rank))
        self.state = TrainerState(**{**asdict(state), "run_id": self.tracker.run_id or state.run_id})
        log.info(
            "resumed from %s at step %d (epoch %d, step %d of the epoch)",
            ckpt,
            state.step,
            state.epoch,
            state.step_in_epoch,
        )

    # ----------------------------------------------------------------------------------------- loop

    def fit(self) -> int:
        """Train to ``total_steps``; returns EXIT_OK, or EXIT_PREEMPTED after a signal-triggered save."""
        t = self.cfg.train
        log.info(
            "training %d steps (%d per epoch), %d ranks x %d micro-steps x %d rows, attention=%s",
            self.total_steps,
            self.per_epoch,
            self.world,
            t.grad_accum,
            t.micro_batch_size,
            self.engine.attn_implementation,
        )
        self.engine.train()
        if dist.is_rank_zero():
            self.consumed = JsonlWriter(self.output_dir / CONSUMED_FILE)
        last_saved = self.state.step
        if self._eval_due(self.state.step) and not self.step_eval.is_done(self.state.step):  # type: ignore[union-attr]
            self._generative_eval(self.state.step)  # resumed from a checkpoint of a step not yet evaluated
        while self.state.step < self.total_steps:
            metrics = self.train_step()
            if metrics.get("preempted"):
                self.save_checkpoint()
                log.warning(
                    "preempted at step %d: checkpoint saved, exiting with %d", self.state.step, EXIT_PREEMPTED
                )
                return EXIT_PREEMPTED
            step = self.state.step
            self._maybe_fault(step)
            if step % t.log_every == 0 or step == self.total_steps:
                self._log_window(step)
            if t.eval_every and step % t.eval_every == 0:
                self._log_eval_loss(step)
            if self._eval_due(step):
                self._generative_eval(step)
            if step % t.save_every == 0 and step != self.total_steps:
                self.save_checkpoint()
                last_saved = step
        if self.eval_data is not None and not (t.eval_every and self.state.step % t.eval_every == 0):
            self._log_eval_loss(self.state.step)
        if last_saved != self.state.step or not ckpt_layout.list_checkpoints(self.output_dir):
            self.save_checkpoint()
        self._write_probe()
        return EXIT_OK

    def train_step(self) -> dict[str, Any]:
        """One optimizer step over this rank's micro-batches; ``{"preempted": True}`` if a signal came first."""
        pos = DataPosition(self.state.epoch, self.state.step_in_epoch)
        mine = step_rows(self.data.lengths, self.layout, self.cfg.train.seed, pos)[self.rank]
        start = time.perf_counter()
        micro = [self.data.rows(idx) for idx in mine]
        batches = [self._collate(rows) for rows in micro]
        n_local = sum(loss_tokens(b) for b in batches)
        tokens_local = sum(int(n) for rows in micro for n in rows["num_tokens"])
        n_global, tokens_global, stop = dist.all_reduce_sum(
            [n_local, tokens_local, float(self.preempt.signum)]
        )
        if stop:
            return {"preempted": True}
        denominator = max(n_global, 1.0) / self.world
        loss_sum = 0.0
        for batch in batches:
            loss = self.engine.forward_loss(batch, denominator)
            self.engine.backward_step(loss)
            loss_sum += float(loss.detach()) / self.world
        elapsed = time.perf_counter() - start
        self._record_consumed([sid for rows in micro for row_ids in rows["sample_ids"] for sid in row_ids])
        nxt = advance(pos, self.per_epoch)
        self.state.step += 1
        self.state.epoch, self.state.step_in_epoch = nxt.epoch, nxt.step_in_epoch
        self.state.tokens_seen += int(tokens_global)
        w = self._window
        w["loss"] += loss_sum
        w["tokens"] += tokens_global
        w["time"] += elapsed
        w["steps"] += 1
        return {"loss_local": loss_sum}

    def _collate(self, rows: dict[str, list[Any]]) -> dict[str, torch.Tensor]:
        keys = ("input_ids", "labels", "position_ids")
        as_rows = [dict(zip(keys, vals, strict=True)) for vals in zip(*(rows[k] for k in keys), strict=True)]
        return collate_packed(as_rows, self.pad_token_id)

    def _record_consumed(self, sample_ids: list[str]) -> None:
        """Append this step's sample ids, per rank in rank order, to consumed.jsonl (rank 0 writes)."""
        gathered = dist.all_gather_objects(sample_ids)
        if self.consumed is not None:
            self.consumed.write({"step": self.state.step + 1, "sample_ids": gathered})

    def _log_window(self, step: int) -> None:
        w = self._window
        (loss_total,) = dist.all_reduce_sum([w["loss"]])
        tok_s = w["tokens"] / max(w["time"], 1e-9)
        util = mfu(self.engine.flops_per_token, tok_s / self.world, self.peak.flops)
        assert util is not None, "resolve_peak always gives a positive peak"
        metrics: dict[str, float] = {
            names.TRAIN_LOSS: loss_total / max(w["steps"], 1),
            names.TRAIN_LR: self.engine.lr(),
            names.TRAIN_GRAD_NORM: self.engine.grad_norm(),
            names.TRAIN_TOKENS: float(self.state.tokens_seen),
            names.TRAIN_EPOCH: self.state.epoch,
            names.PERF_TOKENS_PER_S: tok_s,
            names.PERF_TOKENS_PER_S_PER_DEVICE: tok_s / self.world,
            names.PERF_MFU: util,
            names.PERF_PEAK_TFLOPS: self.peak.flops / 1e12,
            names.PERF_PEAK_MEM_GB: _peak_memory_gb(),
        }
        self.tracker.log(metrics, step)
        log.info(
            "step %d/%d loss %.4f lr %.2e grad_norm %.3f tok/s %.0f",
            step,
            self.total_steps,
            metrics[names.TRAIN_LOSS],
            metrics[names.TRAIN_LR],
            metrics[names.TRAIN_GRAD_NORM],
            tok_s,
        )
        self._window = {"loss": 0.0, "tokens": 0.0, "time": 0.0, "steps": 0.0}

    def _log_eval_loss(self, step: int) -> None:
        """Held-out loss at ``step``, beside the x-axis value it is plotted against."""
        loss = self.evaluate()
        self.tracker.log({names.EVAL_LOSS: loss, names.TRAIN_TOKENS: float(self.state.tokens_seen)}, step)

    def _eval_due(self, step: int) -> bool:
        return self.step_eval is not None and step in self.step_eval.steps

    def _generative_eval(self, step: int) -> None:
        """Task scores at ``step`` (every rank), logged against ``train/tokens``. Training is not perturbed: the
        mode switches back and every RNG is restored. A step evaluated before a crash is not evaluated again:
        its record goes back into metrics.jsonl (the resume trimmed it; wandb kept it)."""
        assert self.step_eval is not None
        x_axis = {names.TRAIN_TOKENS: float(self.state.tokens_seen)}
        if self.step_eval.is_done(step):
            if recorded := self.step_eval.recorded(step):
                self.tracker.restore({**recorded, **x_axis}, step)
            return
        rng = dist.rng_state()
        self.engine.train(False)
        metrics = self.step_eval.evaluate(step, self.state.tokens_seen)
        self.engine.train(True)
        dist.set_rng_state(rng)
        if metrics:
            self.tracker.log({**metrics, **x_axis}, step)

    def _maybe_fault(self, step: int) -> None:
        fault = dist.fault_kill_step()
        if fault is not None and fault == (step, self.rank):
            import os

            log.warning("fault injection: SIGKILL rank %d after step %d", self.rank, step)
            os.kill(os.getpid(), signal.SIGKILL)

    # ----------------------------------------------------------------------------------------- eval

    def evaluate(self) -> float:
        """Mean loss per unmasked token over the held-out split (all ranks in lockstep)."""
        if self.eval_data is None:
            return float("nan")
        plan = eval_plan(self.eval_data.lengths, Layout(self.world, 1, self.layout.micro_batch_size))[
            self.rank
        ]
        self.engine.train(False)
        total, count = 0.0, 0
        with torch.no_grad():
            for idx in plan:
                real = [i for i in idx if i >= 0]
                batch = self._collate(self.eval_data.rows(real or [0]))
                loss = float(self.engine.forward_loss(batch, 1.0))
                if real:
                    total, count = total + loss, count + loss_tokens(batch)
        self.engine.train(True)
        total, count = dist.all_reduce_sum([total, float(count)])
        return total / max(count, 1.0)

    # ----------------------------------------------------------------------------------------- saving

    def save_checkpoint(self) -> Path:
        """Shards + trainer state + RNG, then COMPLETED (written last, by rank 0); keep the last K."""
        ckpt = ckpt_layout.checkpoint_dir(self.output_dir, self.state.step)
        if (
            ckpt.exists() and not ckpt_layout.is_checkpoint(ckpt) and any(ckpt.iterdir())
        ):  # every rank sees it
            raise CheckpointError(
                f"{ckpt} exists and is not a biotune checkpoint; move it out of "
                f"{ckpt.parent} (biotune writes its checkpoints there)"
            )
        if dist.is_rank_zero() and ckpt.exists():
            shutil.rmtree(ckpt)  # an interrupted save of this very step (ours), or an empty directory
        dist.barrier()
        with ckpt_layout.saving(ckpt):
            self.engine.save(ckpt, self.tokenizer_dir, dist.is_rank_zero())
            ckpt_layout.save_rng(ckpt, self.rank, dist.rng_state())
            if dist.is_rank_zero():
                self.state.run_id = self.tracker.run_id
                ckpt_layout.write_state(ckpt, self.state)
        dist.barrier()
        if dist.is_rank_zero():
            ckpt_layout.mark_completed(ckpt, self.state.step)
            ckpt_layout.prune(self.output_dir, self.cfg.train.keep_last)
            log.info("saved checkpoint %s", ckpt)
        dist.barrier()
        return ckpt

    def _write_probe(self) -> None:
        """Engine logits on the first row, saved so an export can be checked against the engine."""
        split = self.eval_data or self.data
        batch = self._collate(split.rows([0]))
        self.engine.train(False)
        logits = self.engine.logits(batch)
        self.engine.train(True)
        if dist.is_rank_zero():
            torch.save({"batch": batch, "logits": logits}, self.output_dir / PROBE_FILE)

    def close(self) -> None:
        """Close the tracker and the consumed-ids log."""
        self.tracker.finish()
        if self.consumed is not None:
            self.consumed.close()


def _peak_memory_gb() -> float:
    """Peak accelerator memory of this process, or its peak resident set size on CPU."""
    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def total_steps(cfg: RunConfig, num_rows: int, world_size: int) -> int:
    """Optimizer steps of the run: ``train.max_steps``, else ``train.epochs`` passes over the data."""
    layout = Layout(world_size, cfg.train.grad_accum, cfg.train.micro_batch_size)
    per_epoch = steps_per_epoch(num_rows, layout)
    if per_epoch == 0:
        raise ConfigError(
            [
                Problem(
                    "train.micro_batch_size",
                    f"the data has {num_rows} rows but one step needs "
                    f"{layout.rows_per_step} (world {world_size} x grad_accum x micro_batch_size)",
                    "lower train.grad_accum/micro_batch_size or build more data",
                )
            ]
        )
    if cfg.train.max_steps > 0:
        return cfg.train.max_steps
    return max(1, int(cfg.train.epochs * per_epoch))

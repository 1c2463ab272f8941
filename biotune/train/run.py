"""``biotune train CONFIG [key=value ...] [--dry-run]``: full-parameter SFT (or LoRA) with DeepSpeed ZeRO-3.

Launch lines::

    torchrun --nproc_per_node 8 -m biotune.cli train configs/train/llama2_7b.yaml
    deepspeed --num_gpus 8 --module biotune.cli train configs/train/llama2_7b.yaml
    DS_ACCELERATOR=cpu biotune train configs/train/tiny.yaml        # one CPU process
    DS_ACCELERATOR=cpu biotune train configs/train/tiny.yaml train.lora.rank=8   # LoRA (peft) instead

Exit codes: 0 done, 2 bad input, 75 (``EXIT_PREEMPTED``) preempted by SIGUSR1/SIGTERM after saving a
checkpoint: requeue the job and it resumes (``train.resume=auto``).
"""

from __future__ import annotations

import argparse
import functools
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from biotune.config import RunConfig, load, to_dict, to_yaml
from biotune.data.build import build_dataset
from biotune.data.dataset import EVAL_SPLIT, TRAIN_SPLIT, Manifest
from biotune.data.tokenize import load_tokenizer, tokenizer_fingerprint, tokenizer_of
from biotune.errors import ConfigError, DataError, Problem
from biotune.io import atomic_write_json, atomic_write_text
from biotune.sources import UnknownSourceError, catalog
from biotune.train.checkpoint import (
    CONFIG_FILE,
    RUN_INFO_FILE,
    check_world_size,
    export_dir,
    latest_completed,
    read_state,
    resolve_resume,
    trim_logs,
)
from biotune.train.ds_config import build_ds_config, read_template
from biotune.train.export import export_checkpoint
from biotune.train.lora import check_resume, check_targets_of_config
from biotune.train.tracking import build_tracker
from biotune.versions import library_versions

log = logging.getLogger(__name__)


#: Builds the evaluation at checkpoints of a run: ``(cfg, engine.generation_model, output_dir, total_steps,
#: resumed_step)`` (``resumed_step``: the resumed checkpoint's step, None from step 0) -> a
#: :class:`~biotune.train.trainer.StepEvaluator`, or None when ``eval.during_training`` is off. Supplied by
#: :mod:`biotune.eval.during_training`, which registers this command (train cannot import eval).
EvaluatorFactory = Callable[[RunConfig, Any, Path, int, int | None], Any]
#: Checks of the config that only the evaluation code can make (its sets), run by :func:`preflight`.
ExtraCheck = Callable[[RunConfig], list[Problem]]


def register(
    subparsers: Any, evaluator: EvaluatorFactory | None = None, check: ExtraCheck | None = None
) -> None:
    """Add the ``train`` subcommand; ``evaluator`` and ``check`` serve ``eval.during_training``."""
    p = subparsers.add_parser(
        "train",
        help="train a model with DeepSpeed ZeRO-3",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("config", help="run config YAML, e.g. configs/train/tiny.yaml")
    p.add_argument("overrides", nargs="*", help="key=value overrides, e.g. train.max_steps=10")
    p.add_argument("--dry-run", action="store_true", help="print the resolved config and exit")
    p.set_defaults(func=functools.partial(run, evaluator=evaluator, check=check))


def run(
    args: argparse.Namespace, evaluator: EvaluatorFactory | None = None, check: ExtraCheck | None = None
) -> int:
    """The ``train`` command: resolve the config, then :func:`main` (or print it with --dry-run)."""
    cfg = load(args.config, args.overrides)
    preflight(cfg, check)
    if args.dry_run:
        print(to_yaml(cfg), end="")
        return 0
    return main(cfg, evaluator)


def preflight(cfg: RunConfig, check: ExtraCheck | None = None) -> None:
    """Every problem found without a model, the corpora or a process group, reported together.

    Unknown sources (with close matches), splits a source does not have, and the DeepSpeed JSON (missing or
    malformed). ``--dry-run`` runs it too, so a dry run fails where the real run would.
    """

    known = catalog(cfg.data)

    problems: list[Problem] = []
    named = [
        (f"data.sources.{n}", n, mix.split if mix.include else None) for n, mix in cfg.data.sources.items()
    ]
    named += [(f"eval.sources[{i}]", n, None) for i, n in enumerate(cfg.eval.sources)]
    for key, name, split in named:
        if name not in known:
            problems.append(Problem(key, f"unknown source '{name}'", UnknownSourceError(name).fix))
        elif split is not None and split not in known[name].split_names:
            problems.append(
                Problem(
                    f"{key}.split",
                    f"source {name} has no split '{split}'",
                    f"use one of: {', '.join(known[name].split_names)}",
                )
            )
    try:
        read_template(cfg.train.deepspeed)
    except ConfigError as err:
        problems += err.problems
    except DataError as err:
        problems.append(Problem("train.deepspeed", str(err).split("\n")[0], err.fix))
    problems += _lora_problems(cfg)
    if check is not None:
        problems += check(cfg)
    if problems:
        raise ConfigError(problems)


def _lora_problems(cfg: RunConfig) -> list[Problem]:
    """``train.lora.target_modules`` against the model's linear modules (from its config alone, no weights)."""
    if cfg.train.lora is None or not cfg.model.name_or_path:
        return []
    try:
        check_targets_of_config(cfg.train.lora, cfg.model.name_or_path, cfg.model.trust_remote_code)
    except ConfigError as err:
        return list(err.problems)
    except (
        OSError,
        ValueError,
    ):  # no such model (yet): reported when it is loaded, before anything is written
        return []
    return []


def resolve_data_dir(cfg: RunConfig) -> Path:
    """``train.data_dir``, or the cached build of ``data`` (built once, by rank 0 first)."""
    if cfg.train.data_dir:
        return Path(cfg.train.data_dir)
    from biotune import distributed as dist

    with dist.rank_zero_first():
        return Path(build_dataset(cfg))


def open_data(cfg: RunConfig, data_dir: Path) -> tuple[Any, Any, Any, int]:
    """Train/eval splits, the manifest and the pad id, after checking the tokenizer fingerprint."""
    from biotune.data.loader import PackedSplit

    manifest = Manifest.read(data_dir)
    tok = load_tokenizer(tokenizer_of(cfg), cfg.model.trust_remote_code)
    manifest.check_tokenizer(tokenizer_fingerprint(tok), data_dir)
    eval_split = PackedSplit(data_dir / EVAL_SPLIT) if (data_dir / EVAL_SPLIT).is_dir() else None
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    return PackedSplit(data_dir / TRAIN_SPLIT), eval_split, manifest, int(pad)


def _save_resolved_config(cfg: RunConfig, output_dir: Path) -> None:
    atomic_write_text(output_dir / CONFIG_FILE, to_yaml(cfg))


def main(cfg: RunConfig, evaluator: EvaluatorFactory | None = None) -> int:
    """Build the environment, data, engine, tracker and trainer; run; return the exit code.

    ``evaluator`` builds the evaluation at checkpoints (``eval.during_training``); without one that setting is
    refused, since nothing would evaluate.
    """
    from biotune import distributed as dist
    from biotune.train.engine import build_engine, check_model_source
    from biotune.train.trainer import Trainer, total_steps

    denv = dist.read_env()
    dist.setup_logging(denv)
    output_dir = Path(cfg.train.output_dir)
    # the checkpoint to resume must fit this run (ranks, train.lora) before any network, data build or write
    ckpt = resolve_resume(cfg.train.resume, output_dir)
    state = read_state(ckpt) if ckpt else None
    if ckpt and state:
        check_resume(ckpt, cfg.train.lora)
        check_world_size(ckpt, state, denv.world_size)
    dist.init_process_group(denv)
    dist.seed_everything(cfg.train.seed, denv.rank)
    check_model_source(cfg.model)
    ds_config = build_ds_config(cfg, denv.world_size)
    train_split, eval_split, manifest, pad_id = open_data(cfg, resolve_data_dir(cfg))
    steps = total_steps(cfg, len(train_split), denv.world_size)
    if cfg.eval.during_training.enabled and evaluator is None:
        raise ConfigError(
            [
                Problem(
                    "eval.during_training",
                    "is set, but this caller of biotune.train.run.main gave no evaluator",
                    "run `biotune train` (or pass biotune.eval.during_training.build_step_evaluation)",
                )
            ]
        )
    engine = build_engine(cfg, ds_config, steps)
    resumed_step = state.step if state else None
    step_eval = (
        evaluator(cfg, engine.generation_model, output_dir, steps, resumed_step) if evaluator else None
    )
    if denv.is_rank_zero:  # only now that the inputs are known to be good: a rejected run leaves nothing
        _save_resolved_config(cfg, output_dir)
        if state:
            trim_logs(output_dir, state.step)
    dist.barrier()
    tracker = build_tracker(
        cfg.tracking,
        output_dir,
        cfg.name,
        to_dict(cfg),
        manifest,
        denv.is_rank_zero,
        run_id=state.run_id if state else None,
    )
    if state is None and cfg.tracking.log_dataset_text:
        decode = load_tokenizer(tokenizer_of(cfg), cfg.model.trust_remote_code).decode
        tracker.log_examples(train_split, manifest, decode)  # rank 0 only; restricted sources never
    trainer = Trainer(
        cfg, engine, train_split, eval_split, tracker, output_dir, steps, tokenizer_of(cfg), pad_id, step_eval
    )
    _write_run_info(trainer, output_dir, denv.is_rank_zero)
    if ckpt:
        trainer.resume(ckpt)
    try:
        code = trainer.fit()
    finally:
        trainer.close()
    if code == 0 and cfg.train.export_on_finish and denv.is_rank_zero:
        export_checkpoint(latest_completed(output_dir), export_dir(output_dir), cfg.model.dtype)
    return code


def _write_run_info(trainer: Any, output_dir: Path, is_rank_zero: bool) -> None:
    """Attention backend, parameter count, each rank's share of the parameters and the library versions this
    run imported (run_info.json)."""
    """Attention backend, parameter counts (all, trainable, in the optimizer), LoRA settings and each rank's share
    of the parameters (run_info.json)."""
    from biotune import distributed as dist

    shares = dist.all_gather_objects(trainer.engine.local_partition_fraction())
    if is_rank_zero:
        info = {
            "attn_implementation": trainer.engine.attn_implementation,
            "num_params": trainer.engine.num_params,
            "trainable_params": trainer.engine.trainable_params,
            "optimizer_params": trainer.engine.optimizer_params(),
            "lora": to_dict(lora) if (lora := trainer.cfg.train.lora) else None,
            "world_size": trainer.world,
            "partition_fraction_per_rank": shares,
            "versions": library_versions(),
        }
        atomic_write_json(output_dir / RUN_INFO_FILE, info)

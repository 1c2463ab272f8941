"""The run directory and its checkpoints: the one owner of every name in them, and of reading them back.

A run's ``output_dir`` (``train.output_dir``)::

    config.yaml            the resolved run config            run_info.json   attention, params, partition
    metrics.jsonl          one line per logged step           tracking.json   the tracker's run id
    consumed.jsonl         sample ids consumed per step       export_probe.pt engine logits for export checks
    hf/                    the final Hugging Face export (``train.export_on_finish``): full weights
        adapter/           with ``train.lora``: the adapter in peft's format (the weights above are merged)
    eval/step-N/           evaluation during training (``eval.during_training``): the files of ``biotune eval``
                           and a record; owned by :mod:`biotune.eval.layout` (``step_eval_dir``)
    checkpoints/step-NNNNNNNN/
        zero/              DeepSpeed's ZeRO-3 shards (its tag directory; under LoRA the whole peft model)
        model_meta/        the HF model config, generation config and tokenizer, for export
            lora/          with ``train.lora``: peft's adapter_config.json
        trainer_state.json step, data position, world size, tracking run id (:class:`TrainerState`)
        rng-rankR.json     each rank's RNG states, as JSON
        COMPLETED          written last: a checkpoint without it is an interrupted save

Trust model: biotune's own state is JSON, which cannot carry code; DeepSpeed's shards are read only under
``torch.load(weights_only=True)`` with an allowlist (see :mod:`biotune.train.engine`).
"""

from __future__ import annotations

import contextlib
import logging
import re
import shutil
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from biotune.errors import CheckpointError, DataError
from biotune.io import atomic_write_json, atomic_write_text, read_json, truncate_jsonl

log = logging.getLogger(__name__)

# ------------------------------------------------------------------------------------------- run directory
CONFIG_FILE = "config.yaml"
RUN_INFO_FILE = "run_info.json"
METRICS_FILE = "metrics.jsonl"
RUN_ID_FILE = "tracking.json"
CONSUMED_FILE = "consumed.jsonl"
PROBE_FILE = "export_probe.pt"
EXPORT_DIR = "hf"
#: Inside an export (any ``biotune export`` OUT): the LoRA adapter, in peft's save format.
ADAPTER_DIR = "adapter"
CHECKPOINTS_DIR = "checkpoints"
STEP_PREFIX = "step-"
#: A checkpoint directory's name: the prefix and the step in 8 or more digits (nothing else there is one).
STEP_NAME = re.compile(rf"^{STEP_PREFIX}\d{{8,}}$")
#: Appended to a checkpoint's name for its default export directory (:func:`checkpoint_export_dir`).
CHECKPOINT_EXPORT_SUFFIX = "-hf"

# ------------------------------------------------------------------------------------------- one checkpoint
ZERO_DIR = "zero"
MODEL_META_DIR = "model_meta"
#: Inside ``model_meta/``: peft's config of a LoRA run (its presence makes the checkpoint a LoRA one).
LORA_META_DIR = "lora"
STATE_FILE = "trainer_state.json"
COMPLETED = "COMPLETED"


@dataclass
class TrainerState:
    """What a checkpoint needs beyond the ZeRO shards to continue exactly."""

    step: int = 0
    epoch: int = 0
    step_in_epoch: int = 0
    world_size: int = 1
    run_id: str | None = None
    tokens_seen: int = 0


def checkpoint_root(output_dir: str | Path) -> Path:
    """Where a run's checkpoints live."""
    return Path(output_dir) / CHECKPOINTS_DIR


def checkpoint_dir(output_dir: str | Path, step: int) -> Path:
    """The checkpoint directory of optimizer step ``step``."""
    return checkpoint_root(output_dir) / f"{STEP_PREFIX}{step:08d}"


def export_dir(output_dir: str | Path) -> Path:
    """The run's final Hugging Face export."""
    return Path(output_dir) / EXPORT_DIR


def checkpoint_export_dir(ckpt: str | Path) -> Path:
    """Where a checkpoint's own Hugging Face export goes by default: its ``step-NNNNNNNN-hf`` sibling."""
    ckpt = Path(ckpt)
    return ckpt.parent / f"{ckpt.name}{CHECKPOINT_EXPORT_SUFFIX}"


def export_places(ckpt: str | Path) -> tuple[Path, Path]:
    """The only places inside a checkpoint's run where an export may be written (resolved paths).

    The run's final export (:func:`export_dir`) and the checkpoint's own export (:func:`checkpoint_export_dir`):
    neither is taken for a checkpoint by :func:`list_checkpoints`.
    """
    ckpt = Path(ckpt).resolve()
    return export_dir(run_dir_of(ckpt)), checkpoint_export_dir(ckpt)


def run_dir_of(ckpt: str | Path) -> Path:
    """The run directory a checkpoint belongs to (the checkpoint itself when it is not under ``checkpoints/``)."""
    ckpt = Path(ckpt)
    return ckpt.parent.parent if ckpt.parent.name == CHECKPOINTS_DIR else ckpt


def rng_file(rank: int) -> str:
    """The RNG-state file name of ``rank``."""
    return f"rng-rank{rank}.json"


def is_complete(ckpt: str | Path) -> bool:
    """True when ``ckpt`` carries the COMPLETED marker."""
    return (Path(ckpt) / COMPLETED).is_file()


def is_checkpoint(path: str | Path) -> bool:
    """True for a biotune checkpoint directory (complete or not): it has ZeRO shards or a state file."""
    path = Path(path)
    return (path / ZERO_DIR).is_dir() or (path / STATE_FILE).is_file() or (path / COMPLETED).is_file()


def list_checkpoints(output_dir: str | Path) -> list[Path]:
    """Checkpoint directories, oldest first (complete or not)."""
    root = checkpoint_root(output_dir)
    if not root.is_dir():
        return []
    return sorted((p for p in root.glob(f"{STEP_PREFIX}*") if STEP_NAME.match(p.name)), key=lambda p: p.name)


def latest_completed(output_dir: str | Path) -> Path | None:
    """The newest checkpoint with a COMPLETED marker; newer incomplete ones are skipped with a warning."""
    for ckpt in reversed(list_checkpoints(output_dir)):
        if is_complete(ckpt):
            return ckpt
        log.warning(
            "skipping checkpoint %s: no %s marker (the save was interrupted); "
            "falling back to the previous one",
            ckpt,
            COMPLETED,
        )
    return None


def require_complete(ckpt: str | Path) -> Path:
    """``ckpt`` as a Path if it is a complete checkpoint; a CheckpointError saying what it is otherwise."""
    ckpt = Path(ckpt)
    if not ckpt.exists():
        raise CheckpointError(
            f"{ckpt}: no such directory; pass a checkpoint like "
            f"<output_dir>/{CHECKPOINTS_DIR}/{STEP_PREFIX}00000100"
        )
    if not ckpt.is_dir():
        raise CheckpointError(
            f"{ckpt}: not a directory; pass a checkpoint directory like "
            f"<output_dir>/{CHECKPOINTS_DIR}/{STEP_PREFIX}00000100"
        )
    if not is_complete(ckpt):
        if is_checkpoint(ckpt):
            raise CheckpointError(
                f"{ckpt} has no {COMPLETED} marker: its save was interrupted; pick an older "
                f"complete checkpoint under <output_dir>/{CHECKPOINTS_DIR}/"
            )
        raise CheckpointError(
            f"{ckpt} is not a biotune checkpoint (no {ZERO_DIR}/, {STATE_FILE} or {COMPLETED}); "
            f"pass a directory like <output_dir>/{CHECKPOINTS_DIR}/{STEP_PREFIX}00000100"
        )
    return ckpt


def resolve_resume(resume: str, output_dir: str | Path) -> Path | None:
    """The checkpoint to resume from for ``train.resume`` (``auto``, ``none`` or a path)."""
    if resume == "none":
        return None
    if resume == "auto":
        return latest_completed(output_dir)
    return require_complete(resume)


def read_state(ckpt: str | Path) -> TrainerState:
    """The trainer state stored in ``ckpt``; a missing, corrupt or foreign state file is a CheckpointError."""
    path = Path(ckpt) / STATE_FILE
    fix = (
        f"this checkpoint is damaged: resume from an older one (train.resume=<output_dir>/{CHECKPOINTS_DIR}/"
        f"{STEP_PREFIX}...) or start over with train.resume=none"
    )
    try:
        raw = read_json(path, fix)
    except DataError as err:  # same place and fix, reported as a checkpoint problem
        raise CheckpointError(str(err)) from None
    names = {f.name for f in fields(TrainerState)}
    if not isinstance(raw, dict) or set(raw) - names or "step" not in raw:
        extra = sorted(set(raw) - names) if isinstance(raw, dict) else []
        raise CheckpointError(
            f"{path}: not a biotune trainer state (unexpected keys {extra} or no 'step')\n  fix: {fix}"
        )
    bad = [k for k, v in raw.items() if k != "run_id" and not isinstance(v, int)]
    if bad or (raw.get("run_id") is not None and not isinstance(raw["run_id"], str)):
        raise CheckpointError(f"{path}: wrong value types for {bad or ['run_id']}\n  fix: {fix}")
    return TrainerState(**raw)


def write_state(ckpt: Path, state: TrainerState) -> None:
    """Store ``state`` in ``ckpt`` (atomically)."""
    atomic_write_json(ckpt / STATE_FILE, asdict(state))


def save_rng(ckpt: Path, rank: int, state: dict[str, Any]) -> None:
    """Store one rank's JSON-able RNG state (:func:`biotune.distributed.rng_state`)."""
    atomic_write_json(ckpt / rng_file(rank), state, indent=None)


def load_rng(ckpt: Path, rank: int) -> dict[str, Any]:
    """One rank's RNG state from ``ckpt`` (plain JSON; nothing is unpickled)."""
    path = ckpt / rng_file(rank)
    try:
        state = read_json(path, "resume from another checkpoint, or start over with train.resume=none")
    except DataError as err:
        raise CheckpointError(str(err)) from None
    if not isinstance(state, dict) or not {"python", "numpy", "torch"} <= set(state):
        raise CheckpointError(
            f"{path}: not a biotune RNG state (needs python, numpy and torch entries)\n"
            "  fix: resume from another checkpoint, or start over with train.resume=none"
        )
    return state


#: What torch's C++ writer says when a write fails (it raises RuntimeError, not OSError, on a full disk).
_TORCH_WRITE_FAILED = ("file write failed", "PytorchStreamWriter failed", "unexpected pos")


@contextlib.contextmanager
def saving(ckpt: Path) -> Iterator[None]:
    """Around a checkpoint save: a write that fails (disk full, quota, file-size limit) removes the half-written
    ``ckpt`` (made by this save) and becomes a CheckpointError naming it, so nothing is left that a resume could
    mistake for a checkpoint and the command exits 2."""
    try:
        yield
    except (OSError, RuntimeError) as err:
        if isinstance(err, RuntimeError) and not any(s in str(err) for s in _TORCH_WRITE_FAILED):
            raise
        shutil.rmtree(ckpt, ignore_errors=True)
        cause = err.strerror if isinstance(err, OSError) and err.strerror else str(err).splitlines()[0]
        raise CheckpointError(
            f"{ckpt}: cannot write the checkpoint ({cause}); the half-written save was removed\n"
            "  fix: free disk space (or raise the file-size limit, `ulimit -f`, or the quota) under "
            f"{ckpt.parent}, then run the same command again: it resumes from the last complete checkpoint"
        ) from None


def mark_completed(ckpt: Path, step: int) -> None:
    """Write the COMPLETED marker: the last file of a checkpoint."""
    atomic_write_text(ckpt / COMPLETED, f"step {step}\n")


def check_world_size(ckpt: Path, state: TrainerState, world_size: int) -> None:
    """CheckpointError when the checkpoint was written by a different number of ranks."""
    if state.world_size != world_size:
        raise CheckpointError(
            f"{ckpt} was saved by {state.world_size} ranks but this run has {world_size}. ZeRO-3 shards are "
            "per rank. Either relaunch with the original world size, or convert the checkpoint with DeepSpeed's "
            f"universal-checkpoint path (`python -m deepspeed.checkpoint.ds_to_universal --input_folder "
            f'{ckpt}/{ZERO_DIR} --output_folder <dir>` and set "checkpoint": {{"load_universal": true}} in the '
            f"DeepSpeed JSON), or `biotune export {ckpt} <hf_dir>` and start a new run from the export (optimizer "
            "state is lost)"
        )


def trim_logs(output_dir: str | Path, step: int) -> None:
    """Drop consumed.jsonl/metrics.jsonl lines past ``step`` (what a crash left after the resumed checkpoint).

    Call on rank 0 before the tracker and the trainer open these files.
    """
    for name in (CONSUMED_FILE, METRICS_FILE):
        truncate_jsonl(Path(output_dir) / name, step)


def prune(output_dir: str | Path, keep_last: int) -> None:
    """Keep the newest ``keep_last`` complete checkpoints; drop interrupted saves older than the newest one.

    Only directories that are biotune checkpoints (:func:`is_checkpoint`) are ever removed.
    """
    complete = [c for c in list_checkpoints(output_dir) if is_complete(c)]
    newest = complete[-1].name if complete else ""
    for ckpt in complete[:-keep_last]:
        shutil.rmtree(ckpt, ignore_errors=True)
    for ckpt in list_checkpoints(output_dir):
        if not is_complete(ckpt) and is_checkpoint(ckpt) and ckpt.name < newest:
            shutil.rmtree(ckpt, ignore_errors=True)

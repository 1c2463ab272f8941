"""``biotune export CKPT OUT``: a checkpoint's ZeRO shards -> a Hugging Face model directory, offline.

Runs in one process without a GPU or a process group: DeepSpeed's zero_to_fp32 consolidation, then
``save_pretrained`` (sharded safetensors) with the tokenizer and generation config saved beside the shards.
The result loads with ``AutoModelForCausalLM.from_pretrained(OUT)``.

Safe with the user's files: OUT may not be, contain or lie inside the checkpoint's run (except the run's own
``hf/`` and the checkpoint's ``step-NNNNNNNN-hf`` sibling), nor be or contain the current directory; a non-empty OUT that is
not a previous biotune export is refused unless ``--force``; an old export is replaced by renames (the new one
is complete before the old one is moved away), never deleted first. Each export records the checkpoint it came
from (:data:`EXPORT_MARKER`), so an evaluation can tell whether an existing export is the one it needs.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from biotune.errors import CheckpointError, ConfigError, Problem
from biotune.io import atomic_write_json, new_parents, read_json, swap_in_dir, write_failed
from biotune.train.checkpoint import (
    COMPLETED,
    MODEL_META_DIR,
    ZERO_DIR,
    export_places,
    require_complete,
    run_dir_of,
)

log = logging.getLogger(__name__)

#: Written into every export: which checkpoint (path and COMPLETED content) it was made from.
EXPORT_MARKER = "biotune_export.json"
#: How a Rust writer (safetensors) quotes the OS error of a failed write.
_OS_ERROR = re.compile(r"\(os error (\d+)\)")
_SHARD_SIZE = re.compile(r"^\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KIB|MIB|GIB|TIB)$", re.IGNORECASE)


def register(subparsers: Any) -> None:
    """Add the ``export`` subcommand."""
    p = subparsers.add_parser(
        "export",
        help="export a training checkpoint to Hugging Face format",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("checkpoint", help="a checkpoint directory, e.g. runs/train/checkpoints/step-00000100")
    p.add_argument("out", help="output directory for the Hugging Face model")
    p.add_argument(
        "--dtype",
        choices=("bf16", "fp16", "fp32"),
        default=None,
        help="weights dtype (default: the model config's)",
    )
    p.add_argument(
        "--max-shard-size", default="5GB", help="safetensors shard size, e.g. 5GB or 500MB (default 5GB)"
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="replace OUT even when it is a non-empty directory that biotune did not write",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """The ``export`` command."""
    if not _SHARD_SIZE.match(args.max_shard_size.strip()):
        raise ConfigError(
            [
                Problem(
                    "--max-shard-size",
                    f"'{args.max_shard_size}' is not a size",
                    "give a number and a unit, e.g. 5GB or 500MB",
                )
            ]
        )
    out = export_checkpoint(
        Path(args.checkpoint), Path(args.out), args.dtype, args.max_shard_size, force=args.force
    )
    print(out)
    return 0


def checkpoint_identity(ckpt: Path) -> dict[str, str]:
    """What identifies a checkpoint: its resolved path and its COMPLETED marker's content."""
    return {"checkpoint": str(Path(ckpt).resolve()), "completed": (Path(ckpt) / COMPLETED).read_text()}


def export_matches(out: Path, ckpt: Path) -> bool:
    """True when ``out`` is a biotune export of exactly ``ckpt`` (same path and COMPLETED content)."""
    marker = Path(out) / EXPORT_MARKER
    if not marker.is_file() or not (Path(out) / "config.json").is_file():
        return False
    try:
        return read_json(marker, "re-export") == checkpoint_identity(ckpt)
    except Exception:  # an unreadable marker is simply not a match: the export is redone
        return False


def check_destination(ckpt: Path, out: Path, force: bool = False) -> None:
    """Refuse an OUT that would overwrite the checkpoint, its run, the current directory, or foreign files.

    Nothing may be written inside the checkpoint's run except where the run's layout puts exports
    (:func:`biotune.train.checkpoint.export_places`): anything else there (``checkpoints/step-00000099``)
    would be taken for a checkpoint, or overwrite the run's own files.
    """
    ckpt_r, out_r = ckpt.resolve(), out.resolve()
    run_dir = run_dir_of(ckpt_r)
    for owner, what in ((ckpt_r, "the checkpoint"), (run_dir, "the checkpoint's run directory")):
        if out_r == owner or owner.is_relative_to(out_r):
            raise ConfigError(
                [
                    Problem(
                        "OUT",
                        f"{out} is or contains {what} ({owner})",
                        "export to a new directory outside the run, e.g. runs/exports/NAME",
                    )
                ]
            )
    if out_r.is_relative_to(ckpt_r):
        raise ConfigError(
            [
                Problem(
                    "OUT",
                    f"{out} lies inside the checkpoint {ckpt}",
                    "export to a directory outside the checkpoint",
                )
            ]
        )
    if out_r.is_relative_to(run_dir) and out_r not in export_places(ckpt_r):
        raise ConfigError(
            [
                Problem(
                    "OUT",
                    f"{out} lies inside the checkpoint's run directory {run_dir}",
                    "export to a directory outside the run, e.g. runs/exports/NAME (inside the run only "
                    f"{', '.join(str(p) for p in export_places(ckpt_r))} may hold an export)",
                )
            ]
        )
    cwd = Path.cwd().resolve()
    if cwd.is_relative_to(out_r):
        raise ConfigError(
            [
                Problem(
                    "OUT",
                    f"{out} is or contains the current directory ({cwd})",
                    "name a new directory for the export, e.g. ./model",
                )
            ]
        )
    if out.exists() and not out.is_dir():
        raise ConfigError(
            [Problem("OUT", f"{out} exists and is a file", "choose a directory path for the export")]
        )
    if out.is_dir() and any(out.iterdir()) and not (out / EXPORT_MARKER).is_file() and not force:
        raise ConfigError(
            [
                Problem(
                    "OUT",
                    f"{out} is a non-empty directory that is not a biotune export",
                    "choose an empty or new directory, or pass --force to replace it",
                )
            ]
        )


def export_checkpoint(
    ckpt_dir: Path, out_dir: Path, dtype: str | None = None, max_shard_size: str = "5GB", force: bool = False
) -> Path:
    """Consolidate a checkpoint's ZeRO shards into a Hugging Face model directory (offline, one process)."""
    ckpt_dir, out_dir = require_complete(ckpt_dir), Path(out_dir)
    meta = ckpt_dir / MODEL_META_DIR
    if not (ckpt_dir / ZERO_DIR).is_dir() or not (meta / "config.json").is_file():
        raise CheckpointError(
            f"{ckpt_dir} is not a complete biotune checkpoint (needs {ZERO_DIR}/ shards and "
            f"{MODEL_META_DIR}/config.json); pass a directory like <output_dir>/checkpoints/step-00000100"
        )
    check_destination(ckpt_dir, out_dir, force)
    out_dir = Path(os.path.abspath(out_dir))  # a name to put beside: "model/." or "x/.." have none
    try:
        with new_parents(out_dir):
            _write_export(ckpt_dir, out_dir, dtype, max_shard_size)
    except OSError as err:
        raise write_failed(out_dir, err) from None
    log.info("exported %s -> %s", ckpt_dir, out_dir)
    return out_dir


def _write_export(ckpt_dir: Path, out_dir: Path, dtype: str | None, max_shard_size: str) -> None:
    """Write the export into a hidden sibling of ``out_dir``, then swap it in; the sibling is removed on error."""
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.export-", dir=out_dir.parent))
    try:
        # the engine is the door to torch and deepspeed: loaded when an export is written, not by `biotune --help`
        from biotune.train.engine import write_hf_model

        try:
            write_hf_model(ckpt_dir, tmp, dtype, max_shard_size)
        except (
            Exception
        ) as err:  # safetensors' writer reports a failed write as SafetensorError "(os error N)"
            code = _OS_ERROR.search(str(err))
            if isinstance(err, OSError) or code is None:
                raise
            raise OSError(int(code.group(1)), os.strerror(int(code.group(1)))) from err
        atomic_write_json(tmp / EXPORT_MARKER, checkpoint_identity(ckpt_dir))
        swap_in_dir(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)  # ours: made above
        raise

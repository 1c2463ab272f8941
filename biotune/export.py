"""``biotune export CKPT OUT``: a checkpoint's ZeRO shards -> a Hugging Face model directory, offline.

Runs in one process without a GPU or a process group: DeepSpeed's zero_to_fp32 consolidation, then
``save_pretrained`` (sharded safetensors) with the tokenizer and generation config saved beside the shards.
The result loads with ``AutoModelForCausalLM.from_pretrained(OUT)``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    """Add the ``export`` subcommand."""
    p = subparsers.add_parser("export", help="export a training checkpoint to Hugging Face format",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", help="a checkpoint directory, e.g. runs/train/checkpoints/step-00000100")
    p.add_argument("out", help="output directory for the Hugging Face model")
    p.add_argument("--dtype", choices=("bf16", "fp16", "fp32"), default=None,
                   help="weights dtype (default: the model config's)")
    p.add_argument("--max-shard-size", default="5GB", help="safetensors shard size (default 5GB)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """The ``export`` command."""
    from biotune.engine import export_checkpoint
    from biotune.errors import CheckpointError
    from biotune.trainer import COMPLETED

    ckpt = Path(args.checkpoint)
    if not (ckpt / COMPLETED).is_file():
        raise CheckpointError(f"{ckpt} has no {COMPLETED} marker: its save was interrupted or it is not a "
                              "checkpoint directory; pick a complete one under <output_dir>/checkpoints/")
    out = export_checkpoint(ckpt, Path(args.out), args.dtype, args.max_shard_size)
    print(out)
    return 0

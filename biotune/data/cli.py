"""``biotune data build CONFIG [key=value ...]`` and ``biotune data stats DIR``.

Example::

    biotune data build configs/data/medtuned.yaml data.tokenizer=/models/llama2-7b-chat
    biotune data stats runs/data/3f2a9c0d1e2b4a5f
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    """Add the ``data`` command group."""
    data = subparsers.add_parser("data", help="build and inspect instruction datasets")
    sub = data.add_subparsers(dest="data_command", required=True)
    build = sub.add_parser("build", help="sources -> samples -> mixture -> tokenized, packed shards (cached)")
    build.add_argument("config", help="YAML config (e.g. configs/data/medtuned.yaml)")
    build.add_argument("overrides", nargs="*", help="key.sub=value overrides")
    build.add_argument("--force", action="store_true", help="rebuild even when the cache has this build")
    build.add_argument("--dry-run", action="store_true", help="print the resolved config and exit")
    build.set_defaults(func=_build)
    stats = sub.add_parser("stats", help="composition table and length histogram of a built dataset")
    stats.add_argument("dir", help="a built dataset directory")
    stats.set_defaults(func=_stats)


def _build(args: argparse.Namespace) -> int:
    from biotune import config
    from biotune.data.build import build_dataset
    from biotune.data.dataset import Manifest

    cfg = config.load(args.config, args.overrides)
    if args.dry_run:
        print(config.to_yaml(cfg))
        return 0
    out = build_dataset(cfg, force=args.force)
    print(Manifest.read(out).format_stats())
    print(out)
    return 0


def _stats(args: argparse.Namespace) -> int:
    from biotune.data.dataset import Manifest

    print(Manifest.read(Path(args.dir)).format_stats())
    return 0

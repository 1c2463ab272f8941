"""``biotune data build CONFIG [key=value ...]``, ``biotune data stats DIR`` and ``biotune data download``.

Example::

    biotune data build configs/data/medtuned.yaml data.tokenizer=/models/llama2-7b-chat
    biotune data stats runs/data/3f2a9c0d1e2b4a5f
    biotune data download ncbi_disease gad --root ~/corpora [--mirror URL] [--accept-licence ddi]
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from biotune import config
from biotune.data import download as dl
from biotune.data.build import build_dataset
from biotune.data.dataset import Manifest
from biotune.errors import ConfigError, DataError, Problem
from biotune.io import atomic_write_json, read_json
from biotune.sources import UnknownSourceError, get_spec


def register(subparsers: Any) -> None:
    """Add the ``data`` command group."""
    data = subparsers.add_parser("data", help="build and inspect instruction datasets")
    sub = data.add_subparsers(dest="data_command", required=True)
    build = sub.add_parser("build", help="sources -> samples -> mixture -> tokenized, packed shards (cached)")
    build.add_argument("config", help="YAML config (e.g. configs/data/medtuned.yaml)")
    build.add_argument("overrides", nargs="*", help="key.sub=value overrides")
    build.add_argument("--force", action="store_true", help="rebuild even when the cache has this build")
    build.add_argument("--dry-run", action="store_true", help="print the resolved config and exit")
    build.add_argument(
        "--record",
        metavar="FILE",
        help='also write the built dataset\'s directory to FILE as JSON {"data_dir": ...} (read by '
        "slurm/common.sh and the sweep runner instead of the printed output)",
    )
    build.set_defaults(func=_build)
    stats = sub.add_parser("stats", help="composition table and length histogram of a built dataset")
    stats.add_argument("dir", help="a built dataset directory")
    stats.set_defaults(func=_stats)
    dl_defaults = dl.Limits()
    download = sub.add_parser(
        "download", help="fetch public corpora at pinned versions into a data root (checksummed, resumable)"
    )
    download.add_argument(
        "sources", nargs="*", metavar="SOURCE", help="registry source names (default: all public)"
    )
    download.add_argument(
        "--root", help="data root to fill (default: $BIOTUNE_DATA_DIR, else ../shared/data)"
    )
    download.add_argument("--mirror", help="base URL serving a data root: fetch <URL>/<path under the root>")
    download.add_argument(
        "--accept-licence", action="append", default=[], metavar="NAME", help="fetch restricted source NAME"
    )
    download.add_argument(
        "--min-rate",
        type=float,
        default=dl_defaults.min_rate,
        metavar="BYTES_PER_S",
        help="stop a file that arrives slower than this on average (default %(default)g); rerun resumes it",
    )
    download.add_argument(
        "--read-timeout",
        type=float,
        default=dl_defaults.read_timeout_s,
        metavar="S",
        help="longest wait for one read from the server, and the grace added to each file's deadline "
        "(default %(default)g)",
    )
    download.set_defaults(func=_download)


def _build(args: argparse.Namespace) -> int:
    cfg = config.load(args.config, args.overrides)
    if args.dry_run:
        check_sources(cfg)
        print(config.to_yaml(cfg))
        return 0
    if args.record and Path(args.record).is_dir():  # refused before anything is built
        raise ConfigError(
            [Problem("--record", f"{args.record} is a directory", "pass the path of a JSON file to write")]
        )
    out = build_dataset(cfg, force=args.force)
    if args.record:
        write_build_record(Path(args.record), out)
    print(Manifest.read(out).format_stats())
    print(out)
    return 0


def check_sources(cfg: Any) -> None:
    """Every ``data.sources`` name must be a registered or declared source, as the build requires: a dry run
    reports what the build would, every unknown name at once.

    Raises:
        ConfigError: one problem per unknown source, keyed ``data.sources.<name>``, with close matches.
    """
    problems = []
    for name in cfg.data.sources:
        try:
            get_spec(name, cfg.data)
        except UnknownSourceError as err:
            problems.append(Problem(f"data.sources.{name}", "unknown source", err.fix))
    if problems:
        raise ConfigError(problems)


#: The key of ``data build --record FILE`` that holds the built dataset's directory.
RECORD_DATA_DIR = "data_dir"


def write_build_record(path: Path, data_dir: Path) -> None:
    """Write ``{"data_dir": "<absolute dir>"}`` to ``path`` atomically."""
    atomic_write_json(path, {RECORD_DATA_DIR: str(Path(data_dir).resolve())})


def read_build_record(path: Path) -> Path:
    """The dataset directory a ``data build --record`` wrote; DataError when the record is unusable."""
    fix = "re-run `biotune data build CONFIG --record FILE`"
    record = read_json(path, fix)
    if not isinstance(record, dict) or not isinstance(record.get(RECORD_DATA_DIR), str):
        raise DataError(path, f"no string {RECORD_DATA_DIR!r} in the build record", fix)
    return Path(record[RECORD_DATA_DIR])


def _stats(args: argparse.Namespace) -> int:
    print(Manifest.read(Path(args.dir)).format_stats())
    return 0


def _download(args: argparse.Namespace) -> int:
    root = Path(args.root or config.default_data_root())
    limits = dl.Limits(args.read_timeout, args.min_rate)
    limits.check()
    if args.mirror:
        dl.check_mirror(args.mirror)
    dl.check_root(root)
    catalogue = dl.load_catalogue()
    plan = dl.make_plan(args.sources, args.accept_licence, catalogue)
    print(dl.describe(plan, root), flush=True)
    pins = dl.unique_pins(catalogue, plan.fetch, args.mirror)
    complete = dl.complete_files([p for ps in pins.values() for p in ps], root)
    for name, source_pins in pins.items():
        done = dl.fetch_source(source_pins, root, complete, limits)
        shared = len(catalogue[name]) - len(source_pins)
        also = f", {shared} shared with a source above" if shared else ""
        print(
            f"{name}: {done.fetched} fetched ({done.bytes:,} bytes), {done.complete} already complete{also}",
            flush=True,
        )
    print(f"data root: {root}")
    return 0

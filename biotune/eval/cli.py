"""``biotune eval``: generate + score + report, score a predictions file, or compare runs.

Examples::

    biotune eval configs/eval/medtuned.yaml eval.model=runs/train/medtuned-7b   # uses its hf/ export
    biotune eval score runs/eval/predictions.jsonl --config configs/eval/medtuned.yaml --out runs/eval-rescored
    biotune eval compare runs/eval-7b runs/eval-13b
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from biotune import config
from biotune.errors import ConfigError, Problem
from biotune.eval.layout import REPORT_MD
from biotune.eval.report import compare, report_rows, to_markdown
from biotune.io import atomic_write_text

USAGE = """biotune eval CONFIG [key=value ...] [--dry-run]
       biotune eval score PREDICTIONS.jsonl [--config CONFIG] [--out DIR] [key=value ...]
       biotune eval compare RUN_A RUN_B [RUN ...]"""


def register(subparsers: Any) -> None:
    """Add the ``eval`` command (its three forms are dispatched on the first word)."""
    p = subparsers.add_parser(
        "eval",
        help="evaluate a model, score a predictions file, or compare runs",
        usage=USAGE,
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "target", metavar="CONFIG|score|compare", help="a YAML config, or the word score / compare"
    )
    p.add_argument("rest", nargs=argparse.REMAINDER, help="overrides or the subcommand's arguments")
    p.set_defaults(func=_dispatch)


def _dispatch(args: argparse.Namespace) -> int:
    if args.target == "score":
        return _score(_score_parser().parse_intermixed_args(args.rest))
    if args.target == "compare":
        return _compare(_compare_parser().parse_args(args.rest))
    run = argparse.ArgumentParser(prog="biotune eval", usage=USAGE)
    run.add_argument("overrides", nargs="*", help="key.sub=value overrides")
    run.add_argument("--dry-run", action="store_true", help="print the resolved config and exit")
    ns = run.parse_intermixed_args(args.rest)
    return _run(args.target, ns.overrides, ns.dry_run)


def _score_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="biotune eval score", description="score a JSONL of {id, completion} against gold"
    )
    p.add_argument(
        "predictions", help='JSONL: one {"id": "<source>/<split>/<record id>", "completion": ...} per line'
    )
    p.add_argument(
        "--config", default=None, help="YAML config for data.root, data.ner_format, eval.max_examples"
    )
    p.add_argument("--out", default=None, help="write report.json/report.md and parsed predictions here")
    p.add_argument("overrides", nargs="*", help="key.sub=value overrides (e.g. data.root=DIR)")
    return p


def _compare_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="biotune eval compare", description="one table of several runs, with deltas"
    )
    p.add_argument("runs", nargs="+", help="evaluation output directories (each holds report.json)")
    p.add_argument("--json", default=None, help="also write the comparison as JSON here")
    return p


def _run(config_path: str, overrides: list[str], dry_run: bool) -> int:
    from biotune.eval.runner import evaluate

    cfg = config.load(config_path, overrides)
    if dry_run:
        print(config.to_yaml(cfg))
        return 0
    out = evaluate(cfg)
    if out is not None:
        print((out / REPORT_MD).read_text(encoding="utf-8"))
        print(out)
    return 0


def _file_in_the_way(path: Path) -> Path | None:
    """The nearest existing ancestor of ``path`` (or ``path`` itself) when it is not a directory."""
    for place in (path, *path.parents):
        if place.exists():
            return None if place.is_dir() else place
    return None


def _check_out_dir(flag: str, out: str | None) -> None:
    """ConfigError unless ``out`` is a directory or can become one (no file in the way)."""

    if out is None:
        return
    blocker = _file_in_the_way(Path(out))
    if blocker is not None:
        what = "is a file" if blocker == Path(out) else f"lies under the file {blocker}"
        raise ConfigError(
            [
                Problem(
                    flag,
                    f"{out} {what}, not a directory",
                    f"give {flag} a directory path (new or existing), e.g. runs/eval-rescored",
                )
            ]
        )


def _check_out_file(flag: str, out: str | None) -> None:
    """ConfigError when ``out`` is a directory, or lies under a file."""

    if out is None:
        return
    path = Path(out)
    if path.is_dir():
        raise ConfigError(
            [Problem(flag, f"{out} is a directory", f"give {flag} a file path, e.g. {path / 'compare.json'}")]
        )
    blocker = _file_in_the_way(path.parent)
    if blocker is not None:
        raise ConfigError(
            [
                Problem(
                    flag,
                    f"{out} lies under the file {blocker}",
                    f"give {flag} a file path in a directory, e.g. runs/compare.json",
                )
            ]
        )


def _writing(flag: str, what: Any) -> Any:
    """Run ``what()``; an OSError while writing output becomes a ConfigError naming the flag and the path."""

    try:
        return what()
    except OSError as err:
        raise ConfigError(
            [
                Problem(
                    flag,
                    f"cannot write {err.filename or 'the output'}: {err.strerror or err}",
                    f"give {flag} a path you can write to",
                )
            ]
        ) from None


def _score(ns: argparse.Namespace) -> int:
    from biotune.eval.runner import score_predictions

    _check_out_dir("--out", ns.out)
    cfg = config.load(ns.config, ns.overrides)
    scores = _writing("--out", lambda: score_predictions(ns.predictions, cfg, ns.out))
    print(to_markdown(report_rows(scores)))
    return 0


def _compare(ns: argparse.Namespace) -> int:
    import json

    if len(ns.runs) < 2:
        raise ConfigError(
            [Problem("RUN", "compare needs at least two runs", "pass two or more evaluation directories")]
        )
    _check_out_file("--json", ns.json)
    table, data = compare(ns.runs)
    print(table)
    if ns.json:
        _writing("--json", lambda: atomic_write_text(Path(ns.json), json.dumps(data, indent=2) + "\n"))
    return 0

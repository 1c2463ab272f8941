"""The ``biotune`` command: ``biotune data|train|export|eval|sweep|plan|demo ...``.

Each subcommand lives in the module that owns the work; this file only wires them. Every module's
``register(subparsers)`` adds its parser with light imports; heavy imports happen when a command runs.
A :class:`~biotune.errors.BiotuneError` becomes a message on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from biotune.errors import EXIT_ERROR, BiotuneError

#: Modules that own a subcommand, in the order ``--help`` lists them.
COMMAND_MODULES = (
    "biotune.data.cli",
    "biotune.eval.train_command",  # `train` (biotune.train.run), with its evaluation at checkpoints
    "biotune.train.export",
    "biotune.eval.cli",
    "biotune.sweep.cli",
    "biotune.plan",
    "biotune.demo",
)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (each subcommand registered by its owning module)."""
    parser = argparse.ArgumentParser(prog="biotune", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``biotune`` console script."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # key=value overrides may follow options (`sweep run X.yaml --local a.b=1`): argparse stops at the option
    if extra and hasattr(args, "overrides") and all("=" in e and not e.startswith("-") for e in extra):
        args.overrides = [*args.overrides, *extra]
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    try:
        return int(args.func(args) or 0)
    except BiotuneError as err:
        print(f"biotune {args.command}: error: {err}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())

"""The ``biotune`` command: ``biotune data|train|export|eval|sweep|plan|demo ...``.

Each subcommand lives in the module that owns the work; this file only wires them. A command's module is imported
when that command runs (its ``register(subparsers)`` adds its parser); ``biotune --help`` lists the commands from
:data:`COMMANDS` without importing any of them, so it stays fast and needs neither torch nor the sweep's libraries.
A :class:`~biotune.errors.BiotuneError` becomes a message on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Iterable

from biotune.errors import EXIT_ERROR, BiotuneError

#: Subcommand -> (the module that owns it, its line in ``biotune --help``), in the order ``--help`` lists them.
COMMANDS: dict[str, tuple[str, str]] = {
    "data": ("biotune.data.cli", "build and inspect instruction datasets"),
    "train": (
        "biotune.eval.train_command",
        "train a model with DeepSpeed ZeRO-3",
    ),  # train.run + evaluation at checkpoints
    "export": ("biotune.train.export", "export a training checkpoint to Hugging Face format"),
    "eval": ("biotune.eval.cli", "evaluate a model, score a predictions file, or compare runs"),
    "sweep": ("biotune.sweep.cli", "dataset-composition ablation sweeps"),
    "plan": ("biotune.plan", "per-GPU memory and tokens/s estimate for a ZeRO-3 job"),
    "demo": ("biotune.demo", "a two-variant composition ablation on CPU (a few minutes)"),
}
#: Modules that own a subcommand, in the order ``--help`` lists them.
COMMAND_MODULES = tuple(module for module, _ in COMMANDS.values())


def build_parser(commands: Iterable[str] | None = None) -> argparse.ArgumentParser:
    """The argument parser: the subcommands in ``commands`` registered in full by their owning modules (None =
    all of them); each other one is a placeholder that only names the command and its help line, so that
    ``biotune --help`` and ``biotune data ...`` import no other command's module."""
    parser = argparse.ArgumentParser(prog="biotune", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    full = set(COMMANDS) if commands is None else set(commands)
    for name, (module, help_line) in COMMANDS.items():
        if name in full:
            importlib.import_module(module).register(sub)
        else:
            sub.add_parser(name, help=help_line, add_help=False)
    return parser


def command_of(argv: list[str]) -> str | None:
    """The subcommand ``argv`` names (its first word that is not an option), or None when it names none."""
    word = next((arg for arg in argv if not arg.startswith("-")), None)
    return word if word in COMMANDS else None


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``biotune`` console script: imports the module of the command being run, and only it."""
    argv = sys.argv[1:] if argv is None else list(argv)
    command = command_of(argv)
    parser = build_parser([command] if command else [])
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

"""The ``biotune`` command: every subcommand is registered without importing torch, deepspeed or transformers,
so ``--help``, ``plan`` and the sweep commands start fast and run where torch is not installed."""

from __future__ import annotations

import subprocess
import sys


def test_building_the_parser_imports_no_heavy_library() -> None:
    code = (
        "import sys, biotune.cli; biotune.cli.build_parser(); "
        "print(sorted(m for m in ('torch', 'deepspeed', 'transformers', 'datasets') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_every_subcommand_has_help() -> None:
    from biotune.cli import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    assert {"data", "train", "export", "eval", "sweep", "plan", "demo"} <= set(sub.choices)

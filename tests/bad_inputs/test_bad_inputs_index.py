"""The case counts printed in ``bad_input_harness``'s docstring are the sizes of the modules' case tables
(one row per module; no stated total, so that branches adding cases to different modules never conflict)."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import bad_input_harness


def test_docstring_counts_match_the_case_tables() -> None:
    rows = re.findall(r"^(.+?)\s+(test_bad_\w+)\.py\s+(\d+)\s+(\d+)$", bad_input_harness.__doc__ or "", re.M)
    on_disk = {p.stem for p in Path(__file__).parent.glob("test_bad_*.py")} - {Path(__file__).stem}
    assert {module for _, module, _, _ in rows} == on_disk, "one row per bad-input module"
    total = 0
    for _, module, cases, _slow in rows:
        table = getattr(importlib.import_module(module), "CASES", [])
        assert len(table) == int(cases), f"{module}: the docstring says {cases}, the table has {len(table)}"
        total += len(table)
    assert total >= 200, "the bad-input suite only grows"

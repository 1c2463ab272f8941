"""Small sweep files for tests: a base run config on the bundled sample and a sweep written beside it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from biotune.sources.splits import parse_set_label, role_of
from biotune.sweep.results import ResultRow


def small_base(seed: int | None = None) -> str:
    """A base run config of five registered sources in four groups (ner x2, re, cls, qa) on ``@sample``."""
    train = f"{{max_steps: 10, seed: {seed}}}" if seed is not None else "{max_steps: 10}"
    return f"""\
name: sweep-test-base
model: {{name_or_path: runs/tiny_llama}}
data:
  root: "@sample"
  sources:
    ncbi_disease: {{epochs: 2}}
    bc5cdr_chem: {{}}
    gad: {{}}
    hoc: {{}}
    pubmedqa: {{}}
train: {train}
"""


def write_sweep(directory: str | Path, body: str, base: str | None = None, name: str = "sweep.yaml") -> Path:
    """Write ``base.yaml`` (default :func:`small_base`) and a sweep file ``name`` whose ``body`` refers to it."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "base.yaml").write_text(small_base() if base is None else base)
    path = directory / name
    path.write_text(body)
    return path


def done_row(variant: str, axis: str, is_base: bool, eval_set: str, mean: float) -> Any:
    """A collected :class:`~biotune.sweep.results.ResultRow` of a done single-seed cell with score ``mean``
    (for tests that plant results)."""

    split = parse_set_label(eval_set)[1]
    return ResultRow(
        variant=variant,
        axis=axis,
        axis_value=None,
        is_base=is_base,
        control_for=None,
        eval_set=eval_set,
        state="done",
        seeds_done=1,
        seeds_planned=1,
        logs="",
        split=split,
        role=role_of(split),
        mean=mean,
    )

"""The library versions a run resolved, recorded with every run and sweep, and compared across a sweep's cells.

``launch/install.sh`` installs every dependency at its version in ``launch/constraints.txt`` (the lock file), so
a sweep that runs for weeks does not change its libraries halfway. What was actually imported is recorded
anyway: ``run_info.json`` of every training run and ``sweep.json`` of every sweep hold
:func:`library_versions`, and ``biotune sweep collect`` warns (:func:`differences`) when the cells of one sweep
ran with different versions, because a number measured under transformers 5.24 need not hold under 5.25.
"""

from __future__ import annotations

import importlib.metadata
import platform
from collections.abc import Mapping

#: The distributions whose versions change biotune's numbers (training, tokenization, evaluation, statistics).
TRACKED: tuple[str, ...] = (
    "biotune",
    "torch",
    "transformers",
    "tokenizers",
    "deepspeed",
    "datasets",
    "accelerate",
    "peft",
    "flash-attn",
    "numpy",
    "scipy",
    "scikit-learn",
    "pyarrow",
)

#: The value recorded for a tracked distribution that is not installed.
ABSENT = "absent"


def library_versions() -> dict[str, str]:
    """Installed version of every :data:`TRACKED` distribution (``absent`` when not installed), and Python's."""
    out = {"python": platform.python_version()}
    for name in TRACKED:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = ABSENT
    return out


def differences(records: Mapping[str, Mapping[str, str]]) -> dict[str, dict[str, list[str]]]:
    """The libraries whose version differs between records: library -> version -> the records that had it.

    Args:
        records: a name (a cell, a run) -> its recorded :func:`library_versions`. Records without versions
            (runs of an older biotune) are left out by the caller.
    """
    out: dict[str, dict[str, list[str]]] = {}
    libraries = sorted({lib for versions in records.values() for lib in versions})
    for lib in libraries:
        by_version: dict[str, list[str]] = {}
        for name, versions in records.items():
            by_version.setdefault(str(versions.get(lib, ABSENT)), []).append(name)
        if len(by_version) > 1:
            out[lib] = {v: sorted(names) for v, names in sorted(by_version.items())}
    return out


def describe(diffs: Mapping[str, Mapping[str, list[str]]], limit: int = 3) -> str:
    """One line per library of :func:`differences`: ``transformers: 5.24.0 (cell-a, cell-b), 5.25.0 (cell-c)``."""
    lines = []
    for lib, by_version in diffs.items():
        parts = []
        for version, names in by_version.items():
            shown = ", ".join(names[:limit]) + (f", +{len(names) - limit} more" if len(names) > limit else "")
            parts.append(f"{version} ({shown})")
        lines.append(f"{lib}: " + "; ".join(parts))
    return "\n".join(lines)

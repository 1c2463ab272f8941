"""The bounds of a sweep file, checked before anything is named, drawn or written (issue 20, items 7 and 11).

* :data:`MAX_SWARM_N` mixtures per swarm axis and :data:`MAX_VARIANTS` variants per sweep: ``n: 100000000``
  is an error, not a plan that never ends.
* Every number read from the file is finite (:func:`non_finite_problems`): a NaN scale factor is not a
  leave-out, and a NaN ``alpha`` is not a ``min_distance`` problem.
* ``seeds:`` is a list of integers in [0, :data:`MAX_SEED`], each bad one named by its index
  (:func:`check_raw`).
* A problem that a ``key=value`` of the sweep's own ``overrides:`` causes is keyed ``overrides[j]``: the sweep
  file's value is wrong, not the base's (:func:`override_problems`).

:mod:`biotune.sweep.spec` calls these from :func:`~biotune.sweep.spec.load_sweep` and
:func:`~biotune.sweep.spec.validate`; the names the variants make are checked there (``biotune.names``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any

from biotune import config
from biotune.errors import ConfigError, Problem

#: The most mixtures one swarm axis may draw (``n``). RegMix fits on 512 proxy runs; a fine-tuning swarm is
#: far smaller.
MAX_SWARM_N = 1024
#: The most variants one sweep may expand to (the base, every axis's points and the controls): each is at
#: least one training run per seed, and ``sweep plan`` realises every one of them.
MAX_VARIANTS = 2048
#: Training seeds lie in [0, MAX_SEED]: numpy's seed range. It also keeps a cell's directory name
#: ``<variant>-s<seed>`` within ``MAX_NAME_LEN + 12`` characters, far below the 255-byte file-name limit.
MAX_SEED = 2**32 - 1
#: Set by ``load_sweep`` (the file's own path), never by the file.
SWEEP_FILE_KEY = "sweep_file"


def check_raw(data: dict[str, Any], problems: list[Problem]) -> dict[str, Any]:
    """Checks of the file's raw mapping that the typed parse would word badly; a bad value is removed from
    ``data`` (so it is reported once): ``seeds`` and the reserved ``sweep_file``. Returns ``data``."""
    if SWEEP_FILE_KEY in data:
        problems.append(
            Problem(
                SWEEP_FILE_KEY, "is not a key of a sweep file (biotune records the file's path)", "remove it"
            )
        )
        del data[SWEEP_FILE_KEY]
    seeds = data.get("seeds")
    if seeds is None:
        return data
    fix = "list integer training seeds, e.g. seeds: [0, 1, 2]"
    if not isinstance(seeds, list):
        problems.append(Problem("seeds", f"must be a list of integers, got {seeds!r}"[:200], fix))
        del data["seeds"]
        return data
    before = len(problems)
    for j, seed in enumerate(seeds):
        if isinstance(seed, bool) or not isinstance(seed, int):
            problems.append(Problem(f"seeds[{j}]", f"each seed must be an integer, got {seed!r}"[:200], fix))
        elif not 0 <= seed <= MAX_SEED:
            problems.append(
                Problem(f"seeds[{j}]", f"{seed} is not in [0, {MAX_SEED}] (numpy's seed range)", fix)
            )
    if len(problems) > before:
        del data["seeds"]
    return data


def _walk(value: Any, key: str, problems: list[Problem]) -> None:
    if isinstance(value, float):
        if not math.isfinite(value):
            problems.append(
                Problem(key, f"{value} is not a finite number", "write a finite number (no .nan or .inf)")
            )
    elif is_dataclass(value):
        for f in fields(value):
            _walk(getattr(value, f.name), f"{key}.{f.name}" if key else f.name, problems)
    elif isinstance(value, list | tuple):
        for j, item in enumerate(value):
            _walk(item, f"{key}[{j}]", problems)
    elif isinstance(value, dict):
        for name, item in value.items():
            _walk(item, f"{key}.{name}", problems)


def non_finite_problems(named: Iterable[tuple[str, Any]]) -> list[Problem]:
    """Every NaN or infinite float under each ``(key, value)`` (dataclasses, lists and mappings are walked;
    keys as in the file: ``axes[1].factors[0]``, ``axes[0].mixtures.m.hoc``)."""
    problems: list[Problem] = []
    for key, value in named:
        _walk(value, key, problems)
    return problems


def merge_non_finite(non_finite: list[Problem], problems: list[Problem]) -> list[Problem]:
    """``problems`` and each non-finite number no other check reported under its key (a range check that
    already rejects ``.inf`` keeps its own words and fix)."""
    keys = {p.key for p in problems}
    return problems + [p for p in non_finite if p.key not in keys]


def size_problems(swarms: Iterable[tuple[str, int]], per_axis: Iterable[tuple[str, int]]) -> list[Problem]:
    """Swarms over MAX_SWARM_N (``(key of n, n)``) and a sweep over MAX_VARIANTS (``(axis key, variants)``
    per axis; the base is added)."""
    problems = [
        Problem(
            key,
            f"{n} mixtures is more than the {MAX_SWARM_N} a swarm may draw",
            f"use n <= {MAX_SWARM_N} (RegMix fits on 512), or split it into swarms with other seeds",
        )
        for key, n in swarms
        if n > MAX_SWARM_N
    ]
    counts = list(per_axis)
    total = 1 + sum(n for _, n in counts)
    if total > MAX_VARIANTS:
        each = ", ".join(f"{key}: {n}" for key, n in counts)
        problems.append(
            Problem(
                "axes",
                f"the sweep expands to {total} variants ({each}, plus the base), more than {MAX_VARIANTS}",
                f"keep it to {MAX_VARIANTS}: fewer values, factors, mixtures or swarm draws, or several sweeps",
            )
        )
    return problems


def bound_problems(
    axes: list[tuple[str, Any]], swarm: type, made_by: Callable[[], list[int]] | None
) -> list[Problem]:
    """Swarms over MAX_SWARM_N, then (only when every swarm is in bounds) a sweep over MAX_VARIANTS.

    Args:
        axes: ``(key, axis)`` of each axis, in the spec's order.
        swarm: the swarm axis class (its ``n`` is bounded).
        made_by: the position in ``axes`` of the axis that made each variant but the base (the spec's
            ``points``); None when the base did not load (nothing is counted).
    """
    problems = size_problems([(f"{key}.n", a.n) for key, a in axes if isinstance(a, swarm)], [])
    if problems or made_by is None:
        return problems
    made = made_by()
    return size_problems([], [(key, made.count(j)) for j, (key, _) in enumerate(axes)])


def override_problems(err: ConfigError, base: Path | None, overrides: list[str]) -> list[Problem]:
    """The base's problems as the sweep reports them: one that an entry of the sweep's ``overrides:`` causes
    is keyed by that entry (``overrides[1]``); the others are the base file's own and say so."""
    out: list[Problem] = []
    for p in err.problems:
        j = next((j for j, ov in enumerate(overrides) if config._blame(None, [ov], [p]) is not None), None)
        if j is not None:
            out.append(Problem(f"overrides[{j}]", f"{overrides[j]}: {p.key}: {p.problem}", p.fix))
        else:
            out.append(Problem(p.key, f"{p.problem} (in base {base})", p.fix))
    return out

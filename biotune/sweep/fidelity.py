"""Fidelities: the cheap settings (a smaller model, LoRA, fewer steps) a sweep also runs its variants at.

A sweep file may hold a ``fidelities:`` block of named settings. Each one crosses the variants it is given, and
the base always::

    fidelities:
      small:  {overrides: [model.name_or_path=...], variants: all}   # a smaller model of the same family
      lora:   {overrides: [train.lora.rank=16], variants: all}       # LoRA on the target model
      short:  {overrides: [train.max_steps=50], variants: all}       # fewer tokens
      target: {overrides: [], variants: {anchors: 4, choose: spread}}

One fidelity is the reference every proxy is measured against; it is called :data:`TARGET`. A fidelity's
overrides change how the model is trained, never the data: every fidelity trains each variant on the same
realised mixture, so the proxy-to-target agreement compares like with like (``data.*`` overrides are refused).

This module owns the fidelity names, the cell naming with a fidelity, the anchor rule and the stage names;
:mod:`biotune.sweep.spec` reads the block, :mod:`biotune.sweep.runner` runs the stages and
:mod:`biotune.sweep.collect` measures the agreement (:mod:`biotune.sweep.agreement`).
A sweep without ``fidelities:`` behaves exactly as before: its cells carry the empty fidelity.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from biotune.errors import DataError
from biotune.io import read_json

#: The reference fidelity's name: the setting every proxy's ranking of the variants is compared with.
TARGET = "target"
#: ``variants: all``: the fidelity runs every variant of the sweep.
ALL = "all"
#: Anchor choosers. ``spread``: the best, the worst and evenly spaced ranks in between, by the proxy's macro Δ.
SPREAD = "spread"
CHOOSERS = (SPREAD,)
#: Where ``--stage target`` writes down the anchors it chose (in the sweep directory).
ANCHORS_FILE = "anchors.json"
#: Stages of a sweep whose anchors are chosen from results: the proxies first, then the target's anchors.
STAGE_PROXY = "proxy"
STAGE_TARGET = "target"
STAGES = (STAGE_PROXY, STAGE_TARGET)


@dataclass(frozen=True)
class Anchors:
    """Variants the target runs, chosen from a proxy's collected results."""

    n: int
    """How many variants (besides the base, which every fidelity runs)."""
    choose: str = SPREAD
    """The rule (one of CHOOSERS)."""
    by: str = ""
    """The proxy fidelity whose results choose; empty = the first fidelity that runs every variant."""


@dataclass(frozen=True)
class Fidelity:
    """One named setting of a sweep's ``fidelities:`` block."""

    name: str
    """``[A-Za-z0-9_-]`` (no dot: the cell name's first dot ends it)."""
    overrides: tuple[str, ...] = ()
    """``key=value`` overrides on every cell of this fidelity (after the sweep's, before the variant's)."""
    variants: str | tuple[str, ...] | Anchors = ALL
    """:data:`ALL`, an explicit list of variant names, or :class:`Anchors` chosen from a proxy's results."""

    @property
    def is_target(self) -> bool:
        """Whether this is the reference fidelity."""
        return self.name == TARGET


def cell_name(variant: str, seed: int, fidelity: str = "") -> str:
    """The name of a variant's cell (its directory) at one training seed and fidelity.

    ``<variant>-s<seed>`` without a fidelity (sweeps without ``fidelities:``), ``<fidelity>.<variant>-s<seed>``
    with one. ``biotune.sweep.limits.MAX_SEED`` and ``biotune.names.MAX_NAME_LEN`` keep it far below the
    file-name limit.
    """
    return f"{fidelity}.{variant}-s{seed}" if fidelity else f"{variant}-s{seed}"


def anchors_from_results(fidelities: Mapping[str, Fidelity]) -> Anchors | None:
    """The target's :class:`Anchors` when they are chosen from a proxy's results (the sweep then runs in two
    stages); None for a sweep without fidelities or whose target runs a known list of variants."""
    target = fidelities.get(TARGET)
    return target.variants if target is not None and isinstance(target.variants, Anchors) else None


def runs_all(fidelity: Fidelity) -> bool:
    """Whether a fidelity runs every variant of the sweep (only such a fidelity can choose anchors)."""
    return fidelity.variants == ALL


def anchor_source(fidelities: Mapping[str, Fidelity]) -> str:
    """The proxy whose results choose the anchors: ``by``, else the first fidelity that runs every variant
    (empty when there is none: the sweep file is then refused)."""
    anchors = anchors_from_results(fidelities)
    if anchors is not None and anchors.by:
        return anchors.by
    return next((f.name for f in fidelities.values() if not f.is_target and runs_all(f)), "")


def spread(deltas: Mapping[str, float], n: int) -> list[str]:
    """The ``spread`` anchors: the best, the worst and ``n - 2`` evenly spaced ranks in between, by Δ.

    Variants are ranked by Δ from the highest down, ties broken by name; rank ``round(i (k - 1) / (n - 1))``
    is taken for ``i = 0 .. n - 1`` (``k`` variants; halves round up), which are ``n`` distinct ranks whenever
    ``n <= k``; ``n = 1`` takes the best. The result is in rank order.

    Raises:
        ValueError: ``n`` is not in ``[1, len(deltas)]``.
    """
    k = len(deltas)
    if not 1 <= n <= k:
        raise ValueError(f"cannot choose {n} anchors from {k} variants")
    ranked = sorted(deltas, key=lambda name: (-deltas[name], name))
    if n == 1:
        return ranked[:1]
    return [ranked[math.floor(i * (k - 1) / (n - 1) + 0.5)] for i in range(n)]


CHOOSE: dict[str, Callable[[Mapping[str, float], int], list[str]]] = {SPREAD: spread}
"""Anchor chooser name -> the function (Δ per variant, n) -> anchors."""


def read_anchors(sweep_dir: str | Path) -> dict[str, Any]:
    """The anchors written down in ``<sweep_dir>/anchors.json`` by ``--stage target`` (``{}`` before).

    Keys: ``anchors`` (the chosen variants, in rank order), ``by``, ``choose``, ``n``, ``deltas`` (the proxy's
    macro Δ per variant that chose them) and ``rows`` (the macro rows behind each Δ, with their CIs).

    Raises:
        DataError: the file is not JSON or lacks a list of ``anchors``.
    """
    path = Path(sweep_dir) / ANCHORS_FILE
    if not path.exists():
        return {}
    fix = f"restore {path} from the proxy stage, or remove it to choose the anchors again with --stage target"
    record = read_json(path, fix)
    if not isinstance(record, dict) or not isinstance(record.get("anchors"), list):
        raise DataError(path, "holds no list of 'anchors'", fix)
    return record

"""Per-example sufficient statistics: every headline metric as a function of sums of per-example numbers.

A task (:mod:`biotune.data.tasks`) gives each example additive statistics (``task.example_stats(gold, pred)``)
and names the reducer that turns their sums into its headline (``task.reducer``); ``score_set`` writes them in
each per-example row. Summing the rows of any resample of a set and reducing gives the headline of that
resample without re-parsing or re-scoring, so a bootstrap over B resamples is one matrix product and one call
of :func:`metric_from_stats` on arrays of shape ``(B,)``.

Reducers (each returns 0 where its denominator is 0):

* ``f1`` -- keys ``tp``, ``fp``, ``fn``: ``2 tp / (2 tp + fp + fn)`` (micro-F1: NER entities, RE pairs, HoC
  document x label cells);
* ``accuracy`` -- keys ``correct``, ``n``: ``correct / n``;
* ``mean`` -- keys ``value``, ``n``: ``value / n``, for metrics averaged over examples (e.g. example-based F1).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import numpy as np

Stat = np.ndarray | float


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """``numerator / denominator`` elementwise, 0 where the denominator is 0."""
    out = np.zeros(np.broadcast(numerator, denominator).shape, dtype=np.float64)
    np.divide(numerator, denominator, out=out, where=denominator != 0)
    return out


@dataclass(frozen=True)
class Reducer:
    """A headline metric as a function of summed per-example statistics."""

    keys: tuple[str, ...]
    """The statistics each example contributes (the keys of ``task.example_stats``)."""
    formula: Callable[..., np.ndarray]
    """The metric from the sums, keyword arguments named by :attr:`keys`, as float64 arrays."""


REDUCERS: dict[str, Reducer] = {
    "f1": Reducer(("tp", "fp", "fn"), lambda tp, fp, fn: _ratio(2 * tp, 2 * tp + fp + fn)),
    "accuracy": Reducer(("correct", "n"), lambda correct, n: _ratio(correct, n)),
    "mean": Reducer(("value", "n"), lambda value, n: _ratio(value, n)),
}
"""Reducer name (``task.reducer``) -> its statistics and formula."""


def reducer(name: str) -> Reducer:
    """The reducer called ``name``.

    Raises:
        ValueError: for a name not in :data:`REDUCERS`.
    """
    if name not in REDUCERS:
        raise ValueError(f"unknown reducer {name!r}; known: {', '.join(REDUCERS)}")
    return REDUCERS[name]


def sum_stats(rows: Iterable[Mapping[str, float]]) -> dict[str, float]:
    """Key-wise sums of per-example statistics (the keys of the first row; every row must have them)."""
    total: dict[str, float] = {}
    for row in rows:
        if not total:
            total = {key: 0.0 for key in row}
        for key in total:
            total[key] += row[key]
    return total


def metric_from_stats(name: str, sums: Mapping[str, Stat]) -> Stat:
    """The metric of reducer ``name`` from summed statistics: scalars give a float, arrays (e.g. shape ``(B,)``
    for B bootstrap resamples) give an array of the broadcast shape.

    Raises:
        ValueError: for an unknown reducer, or ``sums`` without one of its keys.
    """
    spec = reducer(name)
    missing = [key for key in spec.keys if key not in sums]
    if missing:
        raise ValueError(
            f"reducer {name!r} needs statistics {', '.join(spec.keys)}; missing {', '.join(missing)}"
        )
    values = {key: np.asarray(sums[key], dtype=np.float64) for key in spec.keys}
    out = spec.formula(**values)
    return float(out) if out.ndim == 0 else out

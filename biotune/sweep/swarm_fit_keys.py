"""The swarm axis's fit keys (``model``, ``min_share``, ``max_l1``, ``top_k``): the regressions a fit may use
and the checks of the keys' values. Their defaults live on :class:`biotune.sweep.spec.SwarmAxis`; the fit that
reads them is :mod:`biotune.sweep.fit` (via :func:`biotune.sweep.fit.axis_options`).
"""

from __future__ import annotations

from typing import Any

from biotune.errors import Problem

#: ``model: auto`` fits every regression of FIT_MODELS the swarm has enough runs for and keeps, per set, the one
#: with the smallest K-fold held-out error (:mod:`biotune.sweep.regression`).
AUTO_MODEL = "auto"
FIT_MODELS: tuple[str, ...] = (AUTO_MODEL, "linear", "quadratic", "gbm")
FIT_KEYS: tuple[str, ...] = ("model", "min_share", "max_l1", "top_k")


def check_fit_keys(prefix: str, axis: Any, default: Any, k: int, kind: str, problems: list[Problem]) -> None:
    """Append a problem for each bad fit key of ``axis`` (a swarm axis over ``k`` sources or groups), and for
    each one set away from ``default`` on an axis with ``fit: false`` (it would do nothing)."""
    if axis.model not in FIT_MODELS:
        problems.append(
            Problem(f"{prefix}model", f"unknown model {axis.model!r}", f"use one of: {', '.join(FIT_MODELS)}")
        )
    if axis.min_share is not None and (axis.min_share < 0 or (k and axis.min_share * k >= 1)):
        problems.append(
            Problem(
                f"{prefix}min_share",
                f"{axis.min_share} is not in [0, 1/{k}) for {k} {kind}s",
                f"use a value below {1 / max(k, 1):.3g}, or drop the key to use min_weight",
            )
        )
    if not 0 < axis.max_l1 <= 2:
        problems.append(
            Problem(f"{prefix}max_l1", f"must be in (0, 2], got {axis.max_l1}", "use e.g. max_l1: 0.25")
        )
    if axis.top_k < 1:
        problems.append(Problem(f"{prefix}top_k", f"must be >= 1, got {axis.top_k}", "use e.g. top_k: 100"))
    if not axis.fit:
        for name in FIT_KEYS:
            if getattr(axis, name) != getattr(default, name):
                problems.append(
                    Problem(
                        f"{prefix}{name}", "only used by a fit, and fit is false", "set fit: true, or drop it"
                    )
                )

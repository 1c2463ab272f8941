"""The ``fidelities:`` block of a sweep file: parsed into :class:`~biotune.sweep.fidelity.Fidelity` and checked.

::

    fidelities:
      lora:   {overrides: [train.lora.rank=16, optim.lr=2.0e-4], variants: all}
      short:  {overrides: [train.max_steps=50], variants: [base, loo-source-hoc]}
      target: {overrides: [], variants: {anchors: 4, choose: spread, by: lora}}

Decisions (each refused with exit 2, naming the key and the fix, when broken):

* the reference fidelity is called ``target`` (:data:`~biotune.sweep.fidelity.TARGET`); a block without it is
  refused;
* fidelity names are ``[A-Za-z0-9_-]+``: no dot, since a cell is ``<fidelity>.<variant>-s<seed>``;
* ``variants:`` is ``all``, a list of variant names, ``{anchors: N, choose: spread, by: <proxy>}`` (anchors
  chosen from the proxy's collected results: only the target takes them, ``1 <= N <=`` the number of variants
  besides the base, ``by`` a fidelity that runs ``all`` variants; empty ``by`` = the first such fidelity), or
  ``{anchors: [names]}`` (a fixed list, the same as listing the names);
* ``overrides:`` are ``key=value`` on the base config (after the sweep's own overrides, before the variant's);
  each is checked against the base (``fidelities.<name>.overrides[i]``). ``data.*`` keys are refused: a
  fidelity changes how the model is trained, never the data, so every fidelity trains each variant on the
  same realised mixture and the proxy-to-target agreement compares like with like;
* the base variant runs at every fidelity, whatever ``variants:`` says.

A sweep without the block is exactly a sweep as before (no fidelity; cells ``<variant>-s<seed>``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from biotune import config
from biotune.errors import ConfigError, Problem
from biotune.sweep import limits
from biotune.sweep.fidelity import ALL, CHOOSERS, SPREAD, TARGET, Anchors, Fidelity, anchor_source, runs_all

#: A fidelity's name: letters, digits, ``_`` and ``-`` (the cell name's first dot ends it).
NAME_RE = re.compile(r"[A-Za-z0-9_-]+")
#: The keys of one fidelity, and of a ``variants: {anchors: ...}`` mapping.
FIDELITY_KEYS = ("overrides", "variants")
ANCHOR_KEYS = ("anchors", "choose", "by")
#: Config sections a fidelity may not override (they change the data, not how the model trains on it).
DATA_PREFIX = "data."

_EXAMPLE = (
    "e.g. fidelities: {short: {overrides: [train.max_steps=50], variants: all}, target: {overrides: []}}"
)


def parse_fidelities(raw: Any, problems: list[Problem]) -> dict[str, Fidelity]:
    """The ``fidelities:`` block (None = no block) as Fidelity objects by name; shape problems join ``problems``."""
    if raw is None:
        return {}
    if not isinstance(raw, dict) or not raw:
        problems.append(
            Problem("fidelities", f"expected a mapping of named fidelities, got {raw!r}", _EXAMPLE)
        )
        return {}
    out: dict[str, Fidelity] = {}
    for name, body in raw.items():
        key = f"fidelities.{name}"
        name = str(name)
        if not NAME_RE.fullmatch(name):
            problems.append(
                Problem(
                    key,
                    f"fidelity name {name!r} has characters outside [A-Za-z0-9_-]",
                    "rename it with letters, digits, '_' or '-' (no dot: it ends the fidelity in a cell name)",
                )
            )
            continue
        fidelity = _parse_one(name, {} if body is None else body, problems)
        if fidelity is not None:
            out[name] = fidelity
    if TARGET not in raw:
        problems.append(
            Problem(
                "fidelities",
                f"no '{TARGET}' fidelity (found {', '.join(map(str, raw))})",
                f"add {TARGET}: {{overrides: [], variants: all}}: the target is the reference every proxy is "
                "measured against (rename the full-scale setting to target)",
            )
        )
    return out


def _parse_one(name: str, body: Any, problems: list[Problem]) -> Fidelity | None:
    key = f"fidelities.{name}"
    if not isinstance(body, dict):
        problems.append(
            Problem(
                key, f"expected a mapping, got {body!r}", "write {overrides: [key=value, ...], variants: all}"
            )
        )
        return None
    for unknown in sorted(set(map(str, body)) - set(FIDELITY_KEYS)):
        problems.append(Problem(f"{key}.{unknown}", "unknown key", f"use {' or '.join(FIDELITY_KEYS)}"))
    overrides = body.get("overrides") or []
    if not isinstance(overrides, list) or not all(isinstance(o, str) and "=" in o for o in overrides):
        problems.append(
            Problem(
                f"{key}.overrides",
                f"expected a list of key=value, got {overrides!r}",
                "e.g. [train.max_steps=50]",
            )
        )
        overrides = []
    variants = _parse_variants(key, body.get("variants", ALL), problems)
    return Fidelity(name, tuple(overrides), variants) if variants is not None else None


def _parse_variants(key: str, raw: Any, problems: list[Problem]) -> str | tuple[str, ...] | Anchors | None:
    key = f"{key}.variants"
    if raw == ALL:
        return ALL
    if isinstance(raw, list) and all(isinstance(v, str) for v in raw):
        return tuple(raw)
    if not isinstance(raw, dict):
        problems.append(
            Problem(
                key,
                f"expected all, a list of variant names or {{anchors: ...}}, got {raw!r}",
                "write variants: all, variants: [base, loo-source-hoc], or variants: {anchors: 4, choose: spread}",
            )
        )
        return None
    for unknown in sorted(set(map(str, raw)) - set(ANCHOR_KEYS)):
        problems.append(Problem(f"{key}.{unknown}", "unknown key", f"use {', '.join(ANCHOR_KEYS)}"))
    anchors = raw.get("anchors")
    if isinstance(anchors, list) and all(isinstance(v, str) for v in anchors):
        for extra in ("choose", "by"):
            if extra in raw:
                problems.append(
                    Problem(f"{key}.{extra}", "a fixed list of anchors is not chosen", f"remove {extra}")
                )
        return tuple(anchors)
    if isinstance(anchors, bool) or not isinstance(anchors, int):
        problems.append(
            Problem(
                f"{key}.anchors",
                f"expected a number of anchors or a list of variant names, got {anchors!r}",
                "write anchors: 4 (chosen from a proxy's results) or anchors: [loo-source-hoc, ...]",
            )
        )
        return None
    choose, by = str(raw.get("choose", SPREAD)), str(raw.get("by", "") or "")
    if choose not in CHOOSERS:
        problems.append(
            Problem(f"{key}.choose", f"unknown chooser {choose!r}", f"use one of {', '.join(CHOOSERS)}")
        )
    return Anchors(anchors, choose, by)


def check_fidelities(
    fidelities: dict[str, Fidelity],
    variant_names: Sequence[str] | None,
    base: str | None,
    sweep_overrides: Sequence[str],
    problems: list[Problem],
) -> None:
    """The checks that need the base config and the sweep's variants; problems join ``problems``.

    Args:
        fidelities: the parsed block.
        variant_names: every variant of the sweep, the base first (None when they cannot be known).
        base: the base config's path (None when it does not load: the overrides are then not checked).
        sweep_overrides: the sweep's own overrides (a fidelity's come after them).
    """
    for fid in fidelities.values():
        _check_overrides(fid, base, sweep_overrides, problems)
        key = f"fidelities.{fid.name}.variants"
        if isinstance(fid.variants, tuple) and variant_names is not None:
            for j, name in enumerate(fid.variants):
                if name not in variant_names:
                    problems.append(
                        Problem(
                            f"{key}[{j}]",
                            f"unknown variant {name!r}",
                            f"name variants of this sweep (`biotune sweep plan` lists them): "
                            f"{', '.join(variant_names[:12])}{' ...' if len(variant_names) > 12 else ''}",
                        )
                    )
        if isinstance(fid.variants, Anchors):
            _check_anchors(fid, fidelities, variant_names, problems)


def _check_overrides(
    fid: Fidelity, base: str | None, sweep_overrides: Sequence[str], problems: list[Problem]
) -> None:
    key = f"fidelities.{fid.name}.overrides"
    clean = []
    for i, ov in enumerate(fid.overrides):
        if ov.strip().startswith(DATA_PREFIX):
            problems.append(
                Problem(
                    f"{key}[{i}]",
                    f"{ov}: a fidelity may not change the data",
                    "remove it: every fidelity trains each variant on the same mixture (vary data with an axis)",
                )
            )
        else:
            clean.append(ov)
    if base is None or not clean:
        return
    try:
        config.load(base, [*sweep_overrides, *clean])
    except ConfigError as err:
        for p in limits.override_problems(err, None, clean):
            if p.key.startswith("overrides["):  # the base's own problems are reported by the base
                j = int(p.key[len("overrides[") : -1])
                problems.append(Problem(f"{key}[{fid.overrides.index(clean[j])}]", p.problem, p.fix))


def _check_anchors(
    fid: Fidelity,
    fidelities: dict[str, Fidelity],
    variant_names: Sequence[str] | None,
    problems: list[Problem],
) -> None:
    anchors = fid.variants
    assert isinstance(anchors, Anchors)
    key = f"fidelities.{fid.name}.variants"
    if not fid.is_target:
        problems.append(
            Problem(
                f"{key}.anchors",
                "only the target's variants are anchors chosen from results",
                f"give {fid.name} variants: all or a list (a proxy runs what it is given)",
            )
        )
        return
    if variant_names is not None:
        k = len(variant_names) - 1
        if not 1 <= anchors.n <= k:
            problems.append(
                Problem(
                    f"{key}.anchors",
                    f"{anchors.n} anchors, but the sweep has {k} variant(s) besides the base",
                    f"set anchors between 1 and {k}" if k else "add an axis: there is nothing to choose from",
                )
            )
    runners = [f.name for f in fidelities.values() if not f.is_target and runs_all(f)]
    by = anchor_source(fidelities)
    if anchors.by and (anchors.by not in fidelities or anchors.by not in runners):
        what = (
            "is not a fidelity of this sweep"
            if anchors.by not in fidelities
            else "does not run every variant"
        )
        problems.append(
            Problem(
                f"{key}.by",
                f"'{anchors.by}' {what}",
                f"name a proxy fidelity with variants: all ({', '.join(runners) or 'none yet: add one'})",
            )
        )
    elif not by:
        problems.append(
            Problem(
                f"{key}.anchors",
                "no proxy fidelity runs every variant, so no results can choose the anchors",
                "add a proxy with variants: all (e.g. short: {overrides: [train.max_steps=50], variants: all}), "
                "or list the anchors",
            )
        )

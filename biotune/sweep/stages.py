"""The two stages of a sweep whose target anchors are chosen from a proxy's results.

A sweep whose ``fidelities.target.variants`` is ``{anchors: N, choose: spread, by: <proxy>}`` runs in two stages:

1. ``proxy`` (``sweep run --local`` / ``sweep submit``, or ``--stage proxy``): every cell whose variant set is
   known now: every proxy fidelity's cells, the target's base cells (the base runs at every fidelity) and the
   cells of fidelities with fixed lists;
2. ``target`` (``--stage target``): refused (exit 2) until every cell of the ``by`` proxy is done; then each
   variant's macro Δ vs the base at that proxy is computed from the collected proxy results (the same
   computation as ``sweep collect``: :func:`biotune.sweep.collect.compute`), the anchors are chosen by the
   rule (:func:`biotune.sweep.fidelity.spread`), written down in ``<sweep>/anchors.json`` (atomically, with the
   Δs and the proxy that chose them) and the anchor cells are added to ``sweep.json``; then the target's cells
   run (or are submitted).

The macro Δ of a variant is the mean over task families of its macro-averaged Δ vs the base on the selection
(``dev``) splits, or on the test splits when the sweep evaluates no dev split (Tulu 3: select on dev).
Re-running ``--stage target`` reuses the written choice; it never chooses again silently: a sweep file whose
anchor rule changed since (``n``, ``choose``, ``by``) is refused until ``anchors.json`` is removed.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from typing import Any

from biotune.errors import ConfigError, Problem
from biotune.io import atomic_write_json
from biotune.sources.splits import SplitRole
from biotune.sweep import collect
from biotune.sweep import variants as vr
from biotune.sweep.fidelity import (
    ANCHORS_FILE,
    CHOOSE,
    STAGE_PROXY,
    STAGE_TARGET,
    TARGET,
    Anchors,
    anchor_source,
    anchors_from_results,
    read_anchors,
)
from biotune.sweep.results import ResultRow
from biotune.sweep.runner import Sweep, cell_results, cell_state
from biotune.sweep.state import CellState

#: Bootstrap resamples and seed behind the CIs written beside the Δs that chose the anchors (the Δs themselves
#: are point estimates and do not depend on them).
N_BOOT = 1000
SEED = 0


def for_stage(sweep: Sweep, stage: str | None) -> tuple[Sweep, list[str] | None]:
    """The sweep (with the anchor cells once chosen) and the names of the cells ``stage`` runs (None: every cell
    the sweep knows now). ``--stage target`` chooses and writes down the anchors first, when they are not yet.

    Raises:
        ConfigError: ``--stage`` on a sweep without anchors chosen from results; ``--stage target`` before every
            cell of the proxy that chooses is done, or when the sweep file's anchor rule changed since the choice.
    """
    anchors = anchors_from_results(sweep.spec.fidelities)
    if stage is None:
        return sweep, None
    if anchors is None:
        raise ConfigError(
            [
                Problem(
                    "--stage",
                    f"sweep {sweep.spec.name} has no anchors chosen from results: all its cells run in one stage",
                    "drop --stage (stages need fidelities.target.variants: {anchors: N, choose: spread})",
                )
            ],
            sweep.path,
        )
    proxy = [c.name for c in vr.cells(sweep.spec, sweep.variants)]
    if stage == STAGE_PROXY:
        return sweep, proxy
    assert stage == STAGE_TARGET, stage
    record = read_anchors(sweep.out) or choose_anchors(sweep, anchors)
    _check_same_rule(sweep, anchors, record)
    sweep = dataclasses.replace(sweep, cells=vr.cells(sweep.spec, sweep.variants, record["anchors"]))
    return sweep, [c.name for c in sweep.cells if c.fidelity == TARGET]


def _check_same_rule(sweep: Sweep, anchors: Anchors, record: dict[str, Any]) -> None:
    now = {"n": anchors.n, "choose": anchors.choose, "by": anchor_source(sweep.spec.fidelities)}
    then = {k: record.get(k) for k in now}
    known = {v.name for v in sweep.variants}
    unknown = [a for a in record["anchors"] if a not in known]
    if now != then or unknown:
        what = (
            f"names variants the sweep no longer has: {', '.join(map(str, unknown))}"
            if unknown
            else (f"was chosen with {then}, but the sweep file now says {now}")
        )
        raise ConfigError(
            [
                Problem(
                    "fidelities.target.variants",
                    f"{sweep.out / ANCHORS_FILE} {what}",
                    "restore the sweep file's anchor rule, or remove that anchors.json to choose again "
                    "(cells already run at the target stay in the sweep directory)",
                )
            ],
            sweep.path,
        )


def choose_anchors(sweep: Sweep, anchors: Anchors) -> dict[str, Any]:
    """Choose the target's anchors from the ``by`` proxy's collected results and write them down.

    Raises:
        ConfigError: a cell of the proxy is not done, or a variant has no macro Δ there.
    """
    by = anchor_source(sweep.spec.fidelities)
    proxy = [c for c in sweep.cells if c.fidelity == by]
    waiting = [f"{c.name} ({cell_state(sweep, c)})" for c in proxy if cell_state(sweep, c) != CellState.DONE]
    if waiting:
        shown = ", ".join(waiting[:8]) + (" ..." if len(waiting) > 8 else "")
        raise ConfigError(
            [
                Problem(
                    "--stage target",
                    f"the anchors are chosen from the proxy '{by}', but {len(waiting)} of its {len(proxy)} "
                    f"cells are not done: {shown}",
                    "run the proxy stage and let it finish first (`biotune sweep run SWEEP --local` or "
                    "`biotune sweep submit SWEEP`; `biotune sweep status SWEEP` shows it), then --stage target",
                )
            ],
            sweep.path,
        )
    names = {c.name for c in proxy}
    results = collect.compute([r for r in cell_results(sweep) if r.name in names], n_boot=N_BOOT, seed=SEED)
    role, rows = selection_rows(results.macro_rows)
    deltas = {v: sum(r.delta for r in rs) / len(rs) for v, rs in rows.items()}  # type: ignore[misc]
    lacking = [v.name for v in sweep.variants if v.kind != "base" and v.name not in deltas]
    if lacking:
        raise ConfigError(
            [
                Problem(
                    "--stage target",
                    f"no macro Δ at the proxy '{by}' for {', '.join(lacking)} (no evaluation on every set)",
                    "check those cells' logs, re-run them (`biotune sweep run SWEEP --local --failed`), then "
                    "--stage target",
                )
            ],
            sweep.path,
        )
    chosen = CHOOSE[anchors.choose](deltas, anchors.n)
    record = {
        "fidelity": TARGET,
        "by": by,
        "choose": anchors.choose,
        "n": anchors.n,
        "anchors": chosen,
        "role": role,
        "deltas": deltas,
        "rows": {
            v: [
                {
                    k: getattr(r, k)
                    for k in ("eval_set", "delta", "ci_low", "ci_high", "seeds_done", "inference")
                }
                for r in rs
            ]
            for v, rs in rows.items()
        },
        "n_boot": N_BOOT,
        "seed": SEED,
        "chosen_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    atomic_write_json(sweep.out / ANCHORS_FILE, record)
    return record


def selection_rows(macro_rows: Sequence[ResultRow]) -> tuple[str, dict[str, list[ResultRow]]]:
    """The macro rows with a Δ that rank the variants, by variant: the selection (dev) splits', else the test
    splits' (the role used is returned with them)."""
    with_delta = [r for r in macro_rows if r.delta is not None and not r.is_base]
    for role in (SplitRole.SELECTION, SplitRole.TEST):
        picked = [r for r in with_delta if r.role is role]
        if picked:
            out: dict[str, list[ResultRow]] = {}
            for r in picked:
                out.setdefault(r.variant, []).append(r)
            return role.value, out
    return "", {}


def describe(record: dict[str, Any]) -> str:
    """One line naming the anchors, the proxy and the Δs that chose them."""
    deltas = record.get("deltas", {})
    shown = ", ".join(f"{a} ({deltas.get(a, float('nan')):+.2f})" for a in record["anchors"])
    return (
        f"target anchors, chosen by {record.get('choose')} from the proxy '{record.get('by')}' (macro Δ vs the "
        f"base on {record.get('role') or '?'} splits, points, over {len(deltas)} variants): {shown}"
    )


def plan_rows(sweep: Sweep) -> list[dict[str, Any]]:
    """One row per fidelity for ``sweep plan``: its overrides, the variants it runs and its cells (anchors still
    to be chosen counted as planned)."""
    rows = []
    anchors = (
        read_anchors(sweep.out).get("anchors", []) if anchors_from_results(sweep.spec.fidelities) else []
    )
    seeds = max((len(v.seeds) for v in sweep.variants), default=1)
    for fid in sweep.spec.fidelities.values():
        known = [
            c
            for c in vr.cells(
                dataclasses.replace(sweep.spec, fidelities={fid.name: fid}), sweep.variants, anchors
            )
        ]
        variants = len({c.variant for c in known})
        pending = 0
        if isinstance(fid.variants, Anchors) and not anchors:
            pending = fid.variants.n
            what = f"base + {pending} anchors ({fid.variants.choose} by {anchor_source(sweep.spec.fidelities)}, chosen at --stage target)"
        else:
            what = (
                "all"
                if variants == len(sweep.variants)
                else ", ".join(dict.fromkeys(c.variant for c in known))
            )
        rows.append(
            {
                "fidelity": fid.name,
                "overrides": list(fid.overrides),
                "variants": variants + pending,
                "runs": what,
                "cells": len(known) + pending * seeds,
            }
        )
    return rows


def format_plan(rows: Sequence[dict[str, Any]]) -> str:
    """The fidelity rows as a Markdown table."""
    lines = ["| fidelity | overrides | variants | cells | runs |", "|---|---|---|---|---|"]
    lines += [
        f"| {r['fidelity']} | {' '.join(r['overrides']) or '-'} | {r['variants']} | {r['cells']} | {r['runs']} |"
        for r in rows
    ]
    return "\n".join(lines) + "\n"

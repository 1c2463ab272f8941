"""Realise a sweep's declared points into :class:`Variant` s: overrides, per-source counts, content hash.

Counts. The base's realised per-source counts ``B`` come from :func:`biotune.data.mixture.requested_counts`
on its data config and the available samples (then ``cap``; a source with no samples gives 0). Every
variant that changes the mixture is written in one canonical form: ``data.total_samples=<sum>`` plus
``data.sources.<s>.weight=<count>`` for every source it uses (``include=false`` for the rest,
``include=true`` for sources the base left out). Integer weights that sum to the total make
``requested_counts`` return exactly those counts, so the overrides reproduce the mixture sample for sample.

Budget rules (an axis's ``budget``, else the sweep's):

* ``fixed_samples``: the variant holds ``sum(B)``; its shares are split by largest remainder (the rule of
  ``requested_counts``); a source whose ``cap`` would be passed is held at the cap and the rest renormalise.
* ``fixed_tokens``: the variant holds ``T_B = sum_s B_s * tau_s`` tokens, where ``tau_s`` is the mean
  number of tokens per sample of source ``s`` (:func:`measure_tokens_per_sample`: a seeded subsample
  tokenized as the build does, a dropped over-long sample counting 0). The total is
  ``round(T_B / sum_s share_s * tau_s)`` samples, split as above: the tokens match to within rounding
  (a few samples' worth).
* ``free``: leave-outs keep the other sources' counts (the variant shrinks); scales multiply the target's
  count (rounded); mixtures and swarms take the largest subsample of the base at the given shares that
  uses no source more than the base does (a source the base lacks: at most one pass over it). Under
  ``free`` each leave-out gets ``control-<name>`` (when ``controls``): the base's shares at its total.

Groups split a share among their sources in proportion to the base's counts. Swarms draw from a symmetric
Dirichlet(``alpha``) with ``numpy.random.default_rng(seed)``, map each draw into the part of the simplex
with every share >= ``min_weight`` (``w' = m + (1 - k m) w``, exact and without rejection) and reject a
draw within ``min_distance`` (L1) of one already accepted.

Content hash: sha256 over the data config with ``sources`` replaced by the realised
``[name, split, count]`` list (in config order: the build's shuffle depends on it) and ``total_samples``
by their sum, less ``out_dir`` and ``num_proc``, plus the tokenizer (``data.tokenizer`` or
``model.name_or_path``) and the build's ``BUILD_VERSION``. Variants with identical data share a hash
whatever rule produced them; training seeds and keys outside ``data`` (``optim.lr``) leave it unchanged.
It identifies data within one machine's corpora; ``biotune.data.cache.cache_key`` adds the files' sizes
and mtimes and the tokenizer's fingerprint.

Seeds: a variant carries the sweep's training seeds; :func:`cells` expands them into one :class:`Cell`
per (variant, seed), named ``<variant>-s<seed>``, with ``train.seed`` set. The data is the same for every
seed. Fidelities (``fidelities:``, :mod:`biotune.sweep.fidelity`) cross the variants they run: one cell per
(fidelity, variant, seed), named ``<fidelity>.<variant>-s<seed>``; the data is the same at every fidelity.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from omegaconf import OmegaConf

from biotune import config
from biotune.config import DataConfig, RunConfig, SourceMix
from biotune.data.build import source_samples
from biotune.data.cache import BUILD_VERSION, data_settings
from biotune.data.mixture import requested_counts
from biotune.data.templates import render_prompt, render_target
from biotune.data.tokenize import load_tokenizer, tokenize_pairs, tokenizer_of
from biotune.errors import ConfigError, Problem
from biotune.sources import catalog, load_instructions, load_records, resolve_root
from biotune.sweep import spec as sp
from biotune.sweep.fidelity import ALL, Anchors, Fidelity, cell_name
from biotune.sweep.spec import Point, SweepSpec

logger = logging.getLogger(__name__)


#: DataConfig fields that do not change the built data (left out of the content hash).
@dataclass(frozen=True)
class Variant:
    """One variant of a sweep: how to make it from the base, and the mixture it realises."""

    name: str
    """Stable name (see :func:`biotune.sweep.spec.points`), unique in the sweep."""
    kind: str
    """``base``, ``control`` or the axis type that made it."""
    axis: int
    """Index of the axis in ``spec.axes`` (-1 for the base)."""
    value: Any
    """The axis value: left-out source/group, scale factor, mixture name, swarm index, config value, or
    (control) the leave-out variant it is matched to."""
    target: str
    """Scale axes: the scaled source or group; empty otherwise."""
    budget: str
    """The budget rule applied; empty for the base and for values axes."""
    overrides: tuple[str, ...]
    """``key=value`` overrides that turn the base (with the sweep's overrides) into this variant."""
    counts: dict[str, int]
    """Realised samples per included source (config order; sources it leaves out are absent)."""
    weights: dict[str, float]
    """``counts`` normalised to sum to 1."""
    groups: dict[str, int]
    """Realised samples per task group."""
    source_groups: dict[str, str]
    """The task group of each source in ``counts``."""
    mixture: dict[str, float]
    """Mixtures and swarms: the requested shares (over sources or groups, summing to 1); empty otherwise."""
    content_hash: str
    """Hash of the realised data config: equal exactly when the built data would be equal."""
    seeds: tuple[int, ...]
    """Training seeds this variant runs with (one cell each)."""

    @property
    def total(self) -> int:
        """Realised samples in all."""
        return sum(self.counts.values())


@dataclass(frozen=True)
class Cell:
    """One training run of a sweep: a variant at one training seed."""

    name: str
    """:func:`biotune.sweep.fidelity.cell_name`; unique in the sweep, stable across reruns."""
    variant: str
    seed: int
    overrides: tuple[str, ...]
    """Every override on the base file: the sweep's, the fidelity's, the variant's and ``train.seed``."""
    fidelity: str = ""
    """The fidelity this cell runs at (:mod:`biotune.sweep.fidelity`); empty in a sweep without fidelities."""


def cells(spec: SweepSpec, variants: list[Variant], anchors: Sequence[str] = ()) -> list[Cell]:
    """Every cell, variants in order, seeds in the sweep's order.

    Without ``fidelities:`` one cell per (variant, seed). With them, fidelity by fidelity in the block's order,
    one cell per (variant it runs, seed), named ``<fidelity>.<variant>-s<seed>``, with the sweep's, the
    fidelity's and the variant's overrides (the base runs at every fidelity). ``anchors``: the target's
    variants chosen from results (:mod:`biotune.sweep.stages`); before they are chosen the target runs only
    the base.
    """
    if not spec.fidelities:
        return [
            Cell(cell_name(v.name, s), v.name, s, (*spec.overrides, *v.overrides, f"train.seed={s}"))
            for v in variants
            for s in v.seeds
        ]
    return [
        Cell(
            cell_name(v.name, s, fid.name),
            v.name,
            s,
            (*spec.overrides, *fid.overrides, *v.overrides, f"train.seed={s}"),
            fid.name,
        )
        for fid in spec.fidelities.values()
        for v in variants
        if runs_variant(fid, v, anchors)
        for s in v.seeds
    ]


def runs_variant(fidelity: Fidelity, variant: Variant, anchors: Sequence[str] = ()) -> bool:
    """Whether ``fidelity`` runs ``variant``: the base always; ``all``; a listed one; a chosen anchor."""
    chosen = fidelity.variants
    if variant.kind == sp.BASE or chosen == ALL:
        return True
    return variant.name in (anchors if isinstance(chosen, Anchors) else chosen)


def load_variant(spec: SweepSpec, variant: Variant, seed: int | None = None) -> RunConfig:
    """The full run config of a variant (at a training seed, if given), via :func:`biotune.config.load`."""
    extra = [f"train.seed={seed}"] if seed is not None else []
    return config.load(spec.base, [*spec.overrides, *variant.overrides, *extra])


# --------------------------------------------------------------------------------------------- counts


def realised_counts(data: DataConfig, available: Mapping[str, int]) -> dict[str, int]:
    """Samples each included source contributes: ``requested_counts``, then ``cap``; 0 when it has no samples.

    Raises:
        ValueError: ``available`` lacks an included source.
    """
    included = [n for n, m in data.sources.items() if m.include]
    missing = [n for n in included if n not in available]
    if missing:
        raise ValueError(f"no available sample count for {', '.join(missing)} (see count_available)")
    requested = requested_counts(data, dict(available))
    out: dict[str, int] = {}
    for name in included:
        count = requested.get(name, 0)
        cap = data.sources[name].cap
        out[name] = min(count, cap) if cap is not None else count
        if available[name] <= 0:
            out[name] = 0
    return out


def _split(total: int, shares: Mapping[str, float]) -> dict[str, int]:
    """``total`` split by ``shares`` with the mixture's largest-remainder rule."""
    if total <= 0:
        return {k: 0 for k in shares}
    data = DataConfig(
        root="", total_samples=total, sources={k: SourceMix(weight=w) for k, w in shares.items()}
    )
    return requested_counts(data, {})


def _allocate(total: int, shares: Mapping[str, float], caps: Mapping[str, int | None]) -> dict[str, int]:
    """Split ``total`` by ``shares``; a source over its cap is held at it and the others share the rest."""
    free = {k: w for k, w in shares.items() if w > 0}
    fixed: dict[str, int] = {}
    left = total
    while free:
        counts = _split(left, free)
        over = {k: cap for k, c in counts.items() if (cap := caps.get(k)) is not None and c > cap}
        if not over:
            return {**fixed, **counts}
        for k, cap in over.items():
            fixed[k] = cap
            left -= cap
            del free[k]
    return fixed


def _normalised(counts: Mapping[str, float]) -> dict[str, float]:
    total = sum(counts.values())
    return {k: v / total for k, v in counts.items()} if total else {}


# --------------------------------------------------------------------------------------------- hashing


def content_hash(data: DataConfig, counts: Mapping[str, int], tokenizer: str) -> str:
    """Hash of what determines the built data: the data config with its realised counts (module docstring)."""
    payload = data_settings(data)
    payload["sources"] = [
        [n, m.split, int(counts[n])] for n, m in data.sources.items() if counts.get(n, 0) > 0
    ]
    payload["total_samples"] = int(sum(counts.values()))
    blob = json.dumps(
        {"data": payload, "tokenizer": tokenizer, "build_version": BUILD_VERSION}, sort_keys=True, default=str
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


# --------------------------------------------------------------------------------------------- swarm


def draw_swarm(k: int, axis: sp.SwarmAxis) -> list[np.ndarray]:
    """``axis.n`` seeded Dirichlet mixtures over ``k`` components (module docstring); the distance to every
    accepted draw is one vectorised step, so a swarm of ``MAX_SWARM_N`` is drawn in well under a second.

    Raises:
        ValueError: fewer than ``n`` mixtures at ``min_distance`` from each other were found.
    """
    rng = np.random.default_rng(axis.seed)
    accepted = np.empty((axis.n, k))
    count, tries, limit = 0, 0, 1000 + 200 * axis.n
    while count < axis.n:
        if tries == limit:
            raise ValueError(
                f"only {count} of {axis.n} mixtures at L1 distance >= {axis.min_distance} after {limit} draws"
            )
        tries += 1
        w = axis.min_weight + (1.0 - k * axis.min_weight) * rng.dirichlet(np.full(k, axis.alpha))
        if not count or np.abs(accepted[:count] - w).sum(axis=1).min() >= axis.min_distance:
            accepted[count] = w
            count += 1
    return list(accepted)


# --------------------------------------------------------------------------------------------- expansion


class _Unrealisable(Exception):
    """A point cannot be realised (becomes a Problem on its axis)."""

    def __init__(self, problem: str, fix: str) -> None:
        super().__init__(problem)
        self.problem, self.fix = problem, fix


@dataclass
class _Context:
    spec: SweepSpec
    base: RunConfig
    counts: dict[str, int]
    """B: the base's realised counts per included source."""
    available: Mapping[str, int]
    tokens: Mapping[str, float] | None
    swarms: dict[int, list[np.ndarray]] = field(default_factory=dict)
    done: dict[str, Variant] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def caps(self) -> dict[str, int | None]:
        return {n: m.cap for n, m in self.base.data.sources.items()}

    def tau(self, names: list[str]) -> dict[str, float]:
        missing = [n for n in names if self.tokens is None or n not in self.tokens]
        if missing:
            raise _Unrealisable(
                f"budget fixed_tokens needs the mean tokens per sample of {', '.join(missing)}",
                "pass tokens_per_sample (sweep plan measures them), or use fixed_samples",
            )
        assert self.tokens is not None
        return {n: float(self.tokens[n]) for n in names}


def _base_tokens(ctx: _Context) -> float:
    tau = ctx.tau([n for n, c in ctx.counts.items() if c > 0])
    return sum(c * tau[n] for n, c in ctx.counts.items() if c > 0)


def _fixed(shares: Mapping[str, float], rule: str, ctx: _Context) -> dict[str, int]:
    """Counts at ``shares`` holding the base's samples or tokens."""
    shares = {k: w for k, w in shares.items() if w > 0}
    norm = _normalised(shares)
    if rule == sp.FIXED_TOKENS:
        tau = ctx.tau(list(norm))
        per_sample = sum(norm[n] * tau[n] for n in norm)
        if per_sample <= 0:
            raise _Unrealisable(
                "its sources keep no tokens (every sample too long?)", "check data.max_seq_len"
            )
        total = round(_base_tokens(ctx) / per_sample)
    else:
        total = ctx.total
    counts = _allocate(total, norm, ctx.caps())
    if sum(counts.values()) < total:
        capped = [n for n, c in counts.items() if ctx.caps().get(n) == c]
        raise _Unrealisable(
            f"the caps of {', '.join(capped)} stop the variant reaching {total} samples",
            "raise those caps in the base, or use budget: free",
        )
    return counts


def _largest_subsample(shares: Mapping[str, float], ctx: _Context) -> dict[str, int]:
    """The largest mixture at ``shares`` that uses no source more than the base (or one pass of a new one)."""
    norm = _normalised({k: w for k, w in shares.items() if w > 0})
    limits = {n: ctx.counts[n] if n in ctx.counts else ctx.available.get(n, 0) for n in norm}
    caps = ctx.caps()
    limits = {n: v if (cap := caps.get(n)) is None else min(v, cap) for n, v in limits.items()}
    total = int(min(limits[n] / norm[n] for n in norm))
    return _split(total, norm)


def _spread(group_shares: Mapping[str, float], ctx: _Context) -> dict[str, float]:
    """Group shares -> source shares, each group's share split by the base's counts of its sources."""
    members = sp.groups_in(ctx.base.data)
    out: dict[str, float] = {}
    for group, w in group_shares.items():
        if w <= 0:
            continue
        counts = {s: ctx.counts.get(s, 0) for s in members.get(group, [])}
        if not sum(counts.values()):
            raise _Unrealisable(f"group '{group}' has no samples in the base", "give it a weight of 0")
        out.update({s: w * c / sum(counts.values()) for s, c in counts.items() if c > 0})
    return out


def _loo_counts(pt: Point, axis: sp.LeaveOneOutAxis, rule: str, ctx: _Context) -> dict[str, int]:
    data = ctx.base.data
    dropped = {pt.value} if axis.over == sp.OVER_SOURCE else set(sp.groups_in(data).get(pt.value, []))
    kept = {n: c for n, c in ctx.counts.items() if n not in dropped and c > 0}
    return kept if rule == sp.FREE else _fixed(kept, rule, ctx)


def _scale_counts(pt: Point, axis: sp.ScaleAxis, rule: str, ctx: _Context) -> dict[str, int]:
    data = ctx.base.data
    targets = {pt.target} if axis.over == sp.OVER_SOURCE else set(sp.groups_in(data).get(pt.target, []))
    factor = float(pt.value)
    if rule != sp.FREE:
        return _fixed({n: c * factor if n in targets else c for n, c in ctx.counts.items()}, rule, ctx)
    caps = ctx.caps()
    out = {n: round(c * factor) if n in targets else c for n, c in ctx.counts.items()}
    for n in targets:
        cap = caps.get(n)
        if cap is not None and out.get(n, 0) > cap:
            logger.warning("%s: the cap %d of %s binds", pt.name, cap, n)
            out[n] = cap
    return out


def _shares_counts(shares: dict[str, float], rule: str, ctx: _Context) -> dict[str, int]:
    return _largest_subsample(shares, ctx) if rule == sp.FREE else _fixed(shares, rule, ctx)


def _mixture_shares(pt: Point, axis: sp.MixturesAxis | sp.SwarmAxis, ctx: _Context) -> dict[str, float]:
    """The requested shares (over the axis's sources or groups), normalised."""
    if isinstance(axis, sp.MixturesAxis):
        return _normalised({k: float(w) for k, w in axis.mixtures[pt.value].items()})
    dims = (
        list(sp.source_groups(ctx.base.data))
        if axis.over == sp.OVER_SOURCE
        else list(sp.groups_in(ctx.base.data))
    )
    if pt.axis not in ctx.swarms:
        try:
            ctx.swarms[pt.axis] = draw_swarm(len(dims), axis)
        except ValueError as err:
            raise _Unrealisable(str(err), "lower min_distance or n, or raise alpha") from err
    return dict(zip(dims, (float(x) for x in ctx.swarms[pt.axis][pt.value]), strict=True))


def _point_counts(pt: Point, ctx: _Context) -> tuple[dict[str, int], str, dict[str, float]]:
    """(counts, budget rule, requested shares) of a point that changes the mixture."""
    if pt.kind == sp.CONTROL:
        matched = ctx.done[pt.value]
        return _allocate(matched.total, _normalised(ctx.counts), ctx.caps()), sp.FREE, {}
    axis = ctx.spec.axes[pt.axis]
    rule = ctx.spec.budget_of(axis)
    if isinstance(axis, sp.LeaveOneOutAxis):
        return _loo_counts(pt, axis, rule, ctx), rule, {}
    if isinstance(axis, sp.ScaleAxis):
        return _scale_counts(pt, axis, rule, ctx), rule, {}
    assert isinstance(axis, sp.MixturesAxis | sp.SwarmAxis)
    requested = _mixture_shares(pt, axis, ctx)
    shares = requested if axis.over == sp.OVER_SOURCE else _spread(requested, ctx)
    return _shares_counts(shares, rule, ctx), rule, requested


def count_overrides(data: DataConfig, counts: Mapping[str, int]) -> list[str]:
    """The canonical overrides that make ``data`` realise exactly ``counts`` (module docstring)."""
    out = [f"data.total_samples={sum(counts.values())}"]
    for name in [*data.sources, *(n for n in counts if n not in data.sources)]:
        count, mix = counts.get(name, 0), data.sources.get(name)
        if count > 0:
            out.append(f"data.sources.{name}.weight={count}")
            if mix is None or not mix.include:
                out.append(f"data.sources.{name}.include=true")
        elif mix is not None and mix.include:
            out.append(f"data.sources.{name}.include=false")
    return out


def _apply_data(data: DataConfig, overrides: list[str]) -> DataConfig:
    """``data`` with ``data.*`` overrides applied (the same merge that ``config.load`` does)."""
    dotlist = [o.removeprefix("data.") for o in overrides]
    merged = OmegaConf.merge(OmegaConf.structured(copy.deepcopy(data)), OmegaConf.from_dotlist(dotlist))
    return OmegaConf.to_object(merged)  # type: ignore[return-value]


def _make(
    pt: Point,
    cfg: RunConfig,
    overrides: list[str],
    counts: dict[str, int],
    ctx: _Context,
    budget: str,
    requested: dict[str, float],
) -> Variant:
    counts = {n: counts[n] for n in cfg.data.sources if counts.get(n, 0) > 0}
    if not counts:
        raise _Unrealisable("the variant's mixture is empty", "check the corpora and the axis")
    members = {name: sp.group_of(name, cfg.data) for name in counts}
    groups: dict[str, int] = {}
    for name, c in counts.items():
        groups[members[name]] = groups.get(members[name], 0) + c
    seeds = tuple(ctx.spec.seeds) or (ctx.base.train.seed,)
    return Variant(
        name=pt.name,
        kind=pt.kind,
        axis=pt.axis,
        value=pt.value,
        target=pt.target,
        budget=budget,
        overrides=tuple(overrides),
        counts=counts,
        weights=_normalised(counts),
        groups=groups,
        source_groups=members,
        mixture=requested,
        content_hash=content_hash(cfg.data, counts, tokenizer_of(cfg)),
        seeds=seeds,
    )


def _realise(pt: Point, ctx: _Context) -> Variant:
    if pt.kind == sp.BASE:
        return _make(pt, ctx.base, [], ctx.counts, ctx, "", {})
    if pt.kind == sp.VALUES:
        axis = ctx.spec.axes[pt.axis]
        assert isinstance(axis, sp.ValuesAxis)
        ov = [sp.override(axis.key, pt.value)]
        cfg = config.load(ctx.spec.base, [*ctx.spec.overrides, *ov])
        try:
            counts = realised_counts(cfg.data, ctx.available)
        except ValueError as err:
            raise _Unrealisable(str(err), "pass the available samples of every source it includes") from err
        return _make(pt, cfg, ov, counts, ctx, "", {})
    counts, rule, requested = _point_counts(pt, ctx)
    empty = [n for n, c in counts.items() if c > 0 and ctx.available.get(n, 0) <= 0]
    if empty:
        raise _Unrealisable(
            f"{', '.join(empty)} has no samples in the corpora", "give it no share, or add its files"
        )
    ov = count_overrides(ctx.base.data, counts)
    cfg = copy.copy(ctx.base)
    cfg.data = _apply_data(ctx.base.data, ov)
    check = {n: c for n, c in realised_counts(cfg.data, ctx.available).items() if c > 0}
    assert check == {n: c for n, c in counts.items() if c > 0}, (pt.name, check, counts)
    return _make(pt, cfg, ov, counts, ctx, rule, requested)


def _problem_key(pt: Point) -> str:
    if pt.kind == sp.BASE:
        return "base"
    if pt.kind == sp.MIXTURES:
        return f"axes[{pt.axis}].mixtures.{pt.value}"
    return f"axes[{pt.axis}]"


def expand(
    spec: SweepSpec, available: Mapping[str, int], tokens_per_sample: Mapping[str, float] | None = None
) -> list[Variant]:
    """Every variant of a loaded sweep, in :func:`~biotune.sweep.spec.points` order.

    Args:
        spec: from :func:`~biotune.sweep.spec.load_sweep`.
        available: samples per source in its configured split (:func:`count_available`), for every source the
            base includes and every source a mixture names.
        tokens_per_sample: mean tokens per sample per source (:func:`measure_tokens_per_sample`); needed
            only by ``fixed_tokens`` axes.

    Raises:
        ConfigError: every point that cannot be realised with these counts (an empty mixture, caps that stop a
            fixed budget, a source without samples, a swarm that cannot keep its distance), with its axis key.
    """
    base = spec.load_base()
    ctx = _Context(spec, base, realised_counts(base.data, available), available, tokens_per_sample)
    if not ctx.total:
        raise ConfigError(
            [
                Problem(
                    "base",
                    "the base mixture is empty with the available samples",
                    "check data.root and the base's sources",
                )
            ],
            spec.base,
        )
    problems: list[Problem] = []
    variants: list[Variant] = []
    for pt in sp.points(spec, base.data):
        try:
            variant = _realise(pt, ctx)
        except _Unrealisable as err:
            problems.append(Problem(_problem_key(pt), f"{pt.name}: {err.problem}", err.fix))
            continue
        ctx.done[pt.name] = variant
        variants.append(variant)
    if problems:  # each is an axis's value (or the sweep's own settings): the sweep file is to blame
        raise ConfigError(problems, spec.sweep_file or spec.base)
    logger.info(
        "sweep %s: %d variants, %d distinct data builds",
        spec.name,
        len(variants),
        len({v.content_hash for v in variants}),
    )
    return variants


# --------------------------------------------------------------------------------------------- corpora


def sweep_sources(spec: SweepSpec, base: RunConfig) -> list[str]:
    """Every source a sweep may use: the base's included sources and those its mixtures name."""
    names = list(sp.source_groups(base.data))
    for axis in spec.axes:
        if isinstance(axis, sp.MixturesAxis) and axis.over == sp.OVER_SOURCE:
            names += [n for weights in axis.mixtures.values() for n in weights if n not in names]
    return names


def count_available(spec: SweepSpec) -> dict[str, int]:
    """Samples per source in its configured split, read from the base's ``data.root`` (for ``plan``).

    Corpus sources are read with their reader; sources of ``data.instructions`` are counted by row.
    """

    base = spec.load_base()
    data = base.data
    root = resolve_root(data.root)
    out: dict[str, int] = {}
    known = catalog(data)
    for one in data.instructions.values():
        for rec in load_instructions(one.path, one.split):
            out[rec.source] = out.get(rec.source, 0) + 1
    for name in sweep_sources(spec, base):
        if name in known:
            split = data.sources[name].split if name in data.sources else "train"
            out[name] = len(load_records(known[name], split, root))
    return out


def measure_tokens_per_sample(spec: SweepSpec, limit: int = 256, tokenizer: Any = None) -> dict[str, float]:
    """Mean tokens per sample of each registered source a sweep may use, as the build would tokenize them.

    A seeded subsample of at most ``limit`` samples per source is rendered with the base's template and
    ner_format and tokenized with its tokenizer (prompt + output + EOS, over-long samples dropped or truncated
    as ``data.truncation`` says). A dropped sample counts 0 tokens, so that samples x mean = the tokens the
    build keeps.
    """

    base = spec.load_base()
    d = base.data
    tok = tokenizer or load_tokenizer(tokenizer_of(base), base.model.trust_remote_code)
    root = resolve_root(d.root)
    out: dict[str, float] = {}
    known = catalog(d)
    for name in sweep_sources(spec, base):
        if name not in known:
            continue
        split = d.sources[name].split if name in d.sources else "train"
        samples = source_samples(known[name], split, root, d.ner_format, d.seed)
        if len(samples) > limit:
            samples = random.Random(f"{d.seed}:tokens:{name}").sample(samples, limit)
        prompts = [render_prompt(d.template, s.instruction, s.input, tok) for s in samples]
        targets = [render_target(d.template, s.output, tok) for s in samples]
        batch = tokenize_pairs(prompts, targets, tok, d.max_seq_len, d.truncation)
        out[name] = float(np.diff(batch.offsets).sum() / len(samples)) if samples else 0.0
    return out

"""The typed sweep config: a base train config plus axes that each expand into named variants.

A sweep YAML (``configs/sweep/*.yaml``) names a base run config and a list of axes::

    name: medtuned-loo
    base: configs/train/llama2_7b.yaml    # relative to the sweep file or the repo root
    overrides: [train.max_steps=60]       # key=value overrides applied to the base
    budget: fixed_samples                 # default budget rule of the axes (BUDGETS)
    seeds: [0, 1, 2]                      # training seeds of every variant (train.seed)
    controls: true                        # size-matched controls for leave-out variants under budget: free
    keep: export                          # what a cell keeps after its evaluation (KEEP_POLICIES)
    axes:
      - {type: leave_one_out, over: source}
      - {type: scale, over: source, target: ncbi_disease, factors: [0.5, 2]}
      - {type: mixtures, mixtures: {ner_heavy: {ncbi_disease: 3, hoc: 1}}}
      - {type: swarm, over: source, n: 32, seed: 0, min_weight: 0.02, fit: true}
      - {type: values, key: optim.lr, values: [1.0e-5, 2.0e-5]}
    fidelities: {lora: {overrides: [train.lora.rank=16]}, target: {}}   # optional: biotune.sweep.fidelity_spec

Axes do not cross: each one varies the base on its own, and the training seeds cross every variant.
:func:`load_sweep` reads the file with OmegaConf, loads the base with :func:`biotune.config.load` and checks
everything that can be checked without the corpora; one :class:`~biotune.errors.ConfigError` lists every
problem with its key (``axes[1].target``) and the fix; the bounds (swarm ``n``, variants, seeds, finite
numbers) are :mod:`biotune.sweep.limits`'s. :func:`points` is the one owner of the variant naming scheme;
:mod:`biotune.sweep.variants` realises the points into mixtures.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Union

import yaml
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from biotune import config
from biotune.config import REPO_ROOT, DataConfig, RunConfig
from biotune.config_checks import check_choice, parse_section
from biotune.errors import ConfigError, Problem
from biotune.names import name_problem, safe_name
from biotune.sources import UnknownSourceError, catalog
from biotune.sweep import limits
from biotune.sweep.fidelity import Fidelity
from biotune.sweep.fidelity_spec import check_fidelities, parse_fidelities
from biotune.sweep.power import PowerSettings, check_settings
from biotune.sweep.swarm_fit_keys import AUTO_MODEL, check_fit_keys

logger = logging.getLogger(__name__)

#: Budget rules. ``fixed_samples``: the variant keeps the base's realised number of samples (the other
#: sources renormalise); ``fixed_tokens``: it keeps the base's number of tokens (from mean tokens per sample
#: per source); ``free``: the variant may shrink or grow (leave-outs then get size-matched controls).
FIXED_SAMPLES = "fixed_samples"
FIXED_TOKENS = "fixed_tokens"
FREE = "free"
BUDGETS = (FIXED_SAMPLES, FIXED_TOKENS, FREE)

#: What a cell keeps after its evaluation: the HF export (the ZeRO optimizer state is deleted), nothing but
#: its predictions, or the full checkpoint.
KEEP_POLICIES = ("export", "predictions", "checkpoint")

#: What mixture axes act on: single sources, or task groups (``SourceMix.group``, default the source's kind).
OVER_SOURCE = "source"
OVER_GROUP = "group"
OVER = (OVER_SOURCE, OVER_GROUP)

LEAVE_ONE_OUT = "leave_one_out"
SCALE = "scale"
MIXTURES = "mixtures"
SWARM = "swarm"
VALUES = "values"
AXIS_TYPES = (LEAVE_ONE_OUT, SCALE, MIXTURES, SWARM, VALUES)
#: Point kinds that are not axes: the base itself, and a size-matched control of a leave-out variant.
BASE = "base"
CONTROL = "control"

# --------------------------------------------------------------------------------------------- schema


@dataclass
class LeaveOneOutAxis:
    """One variant per source (or group) of the base, with that source (or the group's sources) left out."""

    type: str = LEAVE_ONE_OUT
    """Always ``leave_one_out``."""
    over: str = OVER_SOURCE
    """``source`` or ``group``."""
    only: list[str] = field(default_factory=list)
    """Leave out only these sources (or groups); empty = each included one in turn."""
    budget: str = ""
    """Budget rule of this axis (one of BUDGETS); empty = the sweep's ``budget``."""
    name: str = ""
    """Prefix of the variant names; empty = ``loo-source`` / ``loo-group``."""


@dataclass
class ScaleAxis:
    """One variant per factor: the target source (or every source of the target group) scaled by it."""

    type: str = SCALE
    """Always ``scale``."""
    over: str = OVER_SOURCE
    """``source`` or ``group``."""
    target: str = ""
    """The source (or group) to scale; it must be in the base mixture."""
    factors: list[float] = field(default_factory=list)
    """Multipliers of the target's sample count; each > 0. Under a fixed budget the scaled counts are then
    renormalised to the base's total, so the target's share becomes ``f·s / (f·s + 1 − s)``, not ``f·s``."""
    budget: str = ""
    """Budget rule of this axis (one of BUDGETS); empty = the sweep's ``budget``."""
    name: str = ""
    """Prefix of the variant names; empty = ``scale``."""


@dataclass
class MixturesAxis:
    """Explicit named mixtures: relative weights per source (or group); anything not named is left out."""

    type: str = MIXTURES
    """Always ``mixtures``."""
    over: str = OVER_SOURCE
    """``source`` (any registered source; ones the base lacks are added) or ``group`` (the base's groups)."""
    mixtures: dict[str, dict[str, float]] = field(default_factory=dict)
    """Mixture name -> {source or group: relative weight >= 0}; weights are normalised to sum to 1."""
    budget: str = ""
    """Budget rule of this axis (one of BUDGETS); empty = the sweep's ``budget``."""
    name: str = ""
    """Prefix of the variant names; empty = ``mix``."""


@dataclass
class SwarmAxis:
    """``n`` random mixtures over the base's sources (or groups) from a seeded Dirichlet (RegMix-style)."""

    type: str = SWARM
    """Always ``swarm``."""
    over: str = OVER_SOURCE
    """``source`` or ``group``."""
    n: int = 32
    """Number of mixtures."""
    seed: int = 0
    """Seed of the draws: the same seed gives the same mixtures."""
    alpha: float = 1.0
    """Concentration of the symmetric Dirichlet (1 = uniform on the simplex; < 1 favours sparse mixtures)."""
    min_weight: float = 0.0
    """Every share is at least this (the draw is mapped affinely into that part of the simplex)."""
    min_distance: float = 0.0
    """A draw closer than this (L1 distance of the shares) to an accepted one is rejected."""
    fit: bool = False
    """A regression from weights to score will be fitted: requires n >= number of sources (or groups) + 1."""
    model: str = AUTO_MODEL
    """The fit's regression (``swarm_fit_keys.FIT_MODELS``): ``auto`` (default) picks, per dev set, the one of
    ``linear``, ``quadratic`` and ``gbm`` with the smallest K-fold held-out error; needs ``fit: true``."""
    min_share: float | None = None
    """Floor of every share in the proposal; empty (default) = ``min_weight``, the swarm's own floor, so the
    proposal stays in the swarm's support. Needs ``fit: true``."""
    max_l1: float = 0.25
    """Trust region: the proposal is at most this L1 distance from its nearest run (default 0.25; 2 = anywhere
    on the simplex). Needs ``fit: true``."""
    top_k: int = 100
    """The proposal averages the ``top_k`` best candidates of the search (default 100, RegMix-style) instead
    of taking one argmax. Needs ``fit: true``."""
    budget: str = ""
    """Budget rule of this axis (one of BUDGETS); empty = the sweep's ``budget``."""
    name: str = ""
    """Prefix of the variant names; empty = ``swarm``."""


@dataclass
class ValuesAxis:
    """One variant per value of any config key (``data.template``, ``data.ner_format``, ``optim.lr``, ...)."""

    type: str = VALUES
    """Always ``values``."""
    key: str = ""
    """A dotted key of the run config (``biotune.config.RunConfig``)."""
    values: list[Any] = field(default_factory=list)
    """The values to try, each written as ``key=value`` over the base."""
    name: str = ""
    """Prefix of the variant names; empty = the key's last part (``lr`` for ``optim.lr``)."""


Axis = Union[LeaveOneOutAxis, ScaleAxis, MixturesAxis, SwarmAxis, ValuesAxis]  # noqa: UP007
AXIS_CLASSES: dict[str, type] = {
    LEAVE_ONE_OUT: LeaveOneOutAxis,
    SCALE: ScaleAxis,
    MIXTURES: MixturesAxis,
    SWARM: SwarmAxis,
    VALUES: ValuesAxis,
}


#: Base configs loaded in this process, by (base path, overrides): every variant starts from one.
_BASES: dict[tuple[str, tuple[str, ...]], RunConfig] = {}


@dataclass
class SweepSettings:
    """The scalar settings of a sweep (everything but its axes)."""

    name: str = ""
    """The sweep's name ([A-Za-z0-9._+-]); names its output directory and its wandb group."""
    base: str = ""
    """Train config path, relative to the sweep file or the repo root (:func:`load_sweep` resolves it)."""
    overrides: list[str] = field(default_factory=list)
    """``key=value`` overrides applied to the base before any axis."""
    budget: str = FIXED_SAMPLES
    """Default budget rule of the mixture axes: one of BUDGETS."""
    seeds: list[int] = field(default_factory=list)
    """Training seeds (``train.seed``) every variant runs with; empty = the base's ``train.seed``."""
    controls: bool = True
    """Add a size-matched control (the base subsampled to its total) per leave-out variant under ``free``."""
    keep: str = "export"
    """What each cell keeps after its evaluation: one of KEEP_POLICIES."""
    min_effect: float = 0.02
    """The smallest score difference (a proportion) the sweep means to detect; ``sweep plan`` prints the power
    at it per eval set and warns for sets and seed counts that cannot detect it."""
    power: PowerSettings = field(default_factory=PowerSettings)
    """What ``sweep plan``'s power assumes where no earlier sweep measures it: ``seed_sd``, ``correlation``."""


@dataclass
class SweepSpec(SweepSettings):
    """A whole sweep: its settings and its axes."""

    axes: list[Axis] = field(default_factory=list)
    """The axes; each expands into named variants of the base (they do not cross)."""
    fidelities: dict[str, Fidelity] = field(default_factory=dict)
    """The ``fidelities:`` block by name (:mod:`biotune.sweep.fidelity`); empty = every cell at the base's own
    setting, as a sweep without the block."""
    sweep_file: str = ""
    """The sweep YAML read (set by :func:`load_sweep`, not a file key): errors in its own values name it."""

    def load_base(self) -> RunConfig:
        """The base run config: ``base`` with ``overrides`` (raises ConfigError when it is invalid).

        Loaded once per process for each (base, overrides); callers get their own copy.
        """
        key = (str(self.base), tuple(self.overrides))
        if key not in _BASES:
            _BASES[key] = config.load(self.base, list(self.overrides))
        return copy.deepcopy(_BASES[key])

    def budget_of(self, axis: Axis) -> str:
        """The budget rule an axis runs under (its own, else the sweep's)."""
        return getattr(axis, "budget", "") or self.budget


@dataclass(frozen=True)
class Point:
    """A declared variant before it is realised: its stable name and what makes it."""

    name: str
    kind: str
    """``base``, ``control`` or an axis type."""
    axis: int
    """Index in ``spec.axes`` (-1 for the base; a control carries its leave-out axis)."""
    value: Any = None
    """Left-out source/group; scale factor; mixture name; swarm index; config value; controlled variant."""
    target: str = ""
    """Scale axes: the scaled source or group."""


# --------------------------------------------------------------------------------------------- groups


def group_of(name: str, data: DataConfig) -> str:
    """The task group of a source: its ``SourceMix.group``, else its kind (unregistered: ``instruction``)."""

    mix = data.sources.get(name)
    if mix is not None and mix.group:
        return mix.group
    spec = catalog(data).get(name)
    return spec.kind if spec is not None else "instruction"


def source_groups(data: DataConfig) -> dict[str, str]:
    """Included source -> group, in config order."""
    return {n: group_of(n, data) for n, m in data.sources.items() if m.include}


def groups_in(data: DataConfig) -> dict[str, list[str]]:
    """Group -> its included sources, groups in order of first appearance."""
    out: dict[str, list[str]] = {}
    for src, grp in source_groups(data).items():
        out.setdefault(grp, []).append(src)
    return out


# --------------------------------------------------------------------------------------------- naming


def format_value(value: Any) -> str:
    """A value as it appears in a variant name: integral numbers without ``.0``, floats by ``repr``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        v = float(value)
        return str(int(v)) if v.is_integer() and abs(v) < 1e15 else repr(v)
    if value is None:
        return "null"
    if isinstance(value, list | tuple):
        return "_".join(format_value(v) for v in value)
    return str(value)


def _axis_items(axis: Axis, data: DataConfig) -> list[str]:
    """The sources or groups a leave-one-out axis leaves out, in config order."""
    assert isinstance(axis, LeaveOneOutAxis)
    if axis.only:
        return list(axis.only)
    return list(source_groups(data)) if axis.over == OVER_SOURCE else list(groups_in(data))


def _axis_points(i: int, axis: Axis, data: DataConfig) -> list[Point]:
    if isinstance(axis, LeaveOneOutAxis):
        prefix = axis.name or f"loo-{axis.over}"
        return [Point(safe_name(f"{prefix}-{x}"), LEAVE_ONE_OUT, i, x) for x in _axis_items(axis, data)]
    if isinstance(axis, ScaleAxis):
        prefix = axis.name or "scale"
        return [
            Point(safe_name(f"{prefix}-{axis.target}-x{format_value(f)}"), SCALE, i, f, axis.target)
            for f in axis.factors
        ]
    if isinstance(axis, MixturesAxis):
        prefix = axis.name or "mix"
        return [Point(safe_name(f"{prefix}-{m}"), MIXTURES, i, m) for m in axis.mixtures]
    if isinstance(axis, SwarmAxis):
        prefix = axis.name or "swarm"
        width = max(3, len(str(max(axis.n - 1, 0))))
        return [Point(f"{safe_name(prefix)}-{j:0{width}d}", SWARM, i, j) for j in range(max(axis.n, 0))]
    prefix = axis.name or axis.key.rsplit(".", 1)[-1]
    return [Point(safe_name(f"{prefix}-{format_value(v)}"), VALUES, i, v) for v in axis.values]


def points(spec: SweepSpec, data: DataConfig) -> list[Point]:
    """Every variant the sweep declares, in order: the base, then each axis's points (a leave-out variant
    under ``free`` is followed by its ``control-<name>`` when ``controls`` is on). ``data``: the base's.

    Names: ``base``; ``loo-source-<source>``, ``loo-group-<group>``; ``scale-<target>-x<factor>``;
    ``mix-<mixture>``; ``swarm-<index>`` (zero-padded to 3+ digits); ``<key's last part>-<value>``
    (``lr-2e-05``); ``control-<leave-out variant>``. An axis's ``name:`` replaces its prefix; characters
    outside ``[A-Za-z0-9._+-]`` become ``_``. Cells add ``-s<seed>`` (``biotune.sweep.fidelity.cell_name``).
    """
    out = [Point(BASE, BASE, -1)]
    for i, axis in enumerate(spec.axes):
        for pt in _axis_points(i, axis, data):
            out.append(pt)
            if pt.kind == LEAVE_ONE_OUT and spec.controls and spec.budget_of(axis) == FREE:
                out.append(Point(f"control-{pt.name}", CONTROL, i, pt.name))
    return out


# --------------------------------------------------------------------------------------------- loading


def _read_yaml(path: Path) -> dict[str, Any]:
    """The sweep file as a plain dict; a syntax error names ``file:line``."""
    try:
        raw = OmegaConf.load(path)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        what = " ".join(str(getattr(err, "problem", None) or err).split())
        raise ConfigError(
            [Problem(where, f"cannot parse the YAML: {what}", "fix the YAML syntax at that line")], path
        ) from err
    except OmegaConfBaseException as err:  # e.g. a duplicate key
        raise ConfigError([Problem(str(path), str(err).splitlines()[0], "fix the YAML")], path) from err
    data = OmegaConf.to_container(raw, resolve=False) if raw is not None else {}
    if not isinstance(data, dict):
        raise ConfigError(
            [Problem("<root>", "a sweep file must hold a mapping", "write key: value pairs")], path
        )
    return data  # type: ignore[return-value]


def _parse_axis(i: int, raw: Any, problems: list[Problem]) -> Axis | None:
    key = f"axes[{i}]"
    if not isinstance(raw, dict):
        problems.append(
            Problem(key, f"expected a mapping, got {raw!r}", "write e.g. {type: leave_one_out, over: source}")
        )
        return None
    kind = raw.get("type")
    if kind not in AXIS_CLASSES:
        what = "missing" if kind is None else f"unknown axis type '{kind}'"
        problems.append(Problem(f"{key}.type", what, f"set type to one of {', '.join(AXIS_TYPES)}"))
        return None
    return parse_section(AXIS_CLASSES[kind], dict(raw), f"{key}.", problems)  # type: ignore[no-any-return]


def _parse(data: dict[str, Any], problems: list[Problem]) -> tuple[SweepSpec, list[int]]:
    """The typed spec, and the file's index of each axis it holds (axes that fail to parse are left out)."""
    raw_axes = data.pop("axes", None)
    fidelities = parse_fidelities(data.pop("fidelities", None), problems)
    settings: SweepSettings = parse_section(SweepSettings, data, "", problems, keys_of=SweepSpec)
    if raw_axes is None:
        raw_axes = []
        problems.append(
            Problem("axes", "no axes", "list at least one axis, e.g. [{type: leave_one_out, over: source}]")
        )
    elif not isinstance(raw_axes, list):
        problems.append(
            Problem("axes", f"expected a list, got {raw_axes!r}", "write axes: [{type: ..., ...}]")
        )
        raw_axes = []
    parsed = [(i, _parse_axis(i, raw, problems)) for i, raw in enumerate(raw_axes)]
    values = {f.name: getattr(settings, f.name) for f in fields(SweepSettings)}
    spec = SweepSpec(**values, axes=[a for _, a in parsed if a is not None], fidelities=fidelities)
    return spec, [i for i, a in parsed if a is not None]


def _resolve_base(
    spec: SweepSpec, sweep_file: Path, problems: list[Problem]
) -> tuple[RunConfig | None, bool]:
    """Make ``spec.base`` absolute and load it with the overrides; its problems join ``problems``.

    Returns the base and whether it loaded with the overrides (if they fail: the base alone, when it loads,
    so that the axes are still checked against its sources; None when the base itself fails).
    """
    if not spec.base:
        problems.append(
            Problem("base", "missing", "set base to a train config, e.g. configs/train/demo.yaml")
        )
        found = None
    else:
        given = Path(spec.base).expanduser()
        tries = [given] if given.is_absolute() else [sweep_file.parent / given, REPO_ROOT / given]
        found = next((p.resolve() for p in tries if p.is_file()), None)
        if found is None:
            problems.append(
                Problem(
                    "base",
                    f"base config '{spec.base}' not found (looked at {', '.join(map(str, tries))})",
                    "give a train config path relative to the sweep file or the repo root",
                )
            )
        else:
            spec.base = str(found)
    try:
        loaded = config.load(found, list(spec.overrides))  # without a base file: checks the override keys
        return (loaded, True) if found else (None, False)
    except ConfigError as err:
        problems += limits.override_problems(err, found, spec.overrides)
    if found is None:
        return None, False
    try:  # the axes can still be checked against the base without the overrides
        return config.load(found), False
    except ConfigError:
        return None, False


def _known_names(axis: Axis, data: DataConfig) -> tuple[set[str], str]:
    """The sources or groups an axis may name, and what they are called in messages."""
    over = getattr(axis, "over", OVER_SOURCE)
    if over == OVER_GROUP:
        return set(groups_in(data)), "group"
    return set(source_groups(data)), "source"


def _unknown_problem(key: str, name: str, kind: str, data: DataConfig) -> Problem:

    if kind == "group":
        return Problem(
            key,
            f"unknown group '{name}' (the base's groups: {', '.join(groups_in(data))})",
            "name a group of the base's included sources, or set data.sources.<name>.group in the base",
        )
    if name in catalog(data):
        return Problem(
            key,
            f"source '{name}' is not in the base mixture (absent or include: false)",
            f"add data.sources.{name} to the base (include: true), or remove it here",
        )
    close = UnknownSourceError(name).close_matches
    hint = f"did you mean {', '.join(close)}? " if close else ""
    return Problem(key, f"unknown source '{name}'", f"{hint}use a source of biotune.sources.SOURCES")


def _check_choice(
    problems: list[Problem], key: str, value: str, allowed: tuple[str, ...], empty_ok: bool = False
) -> None:
    if not (empty_ok and value == ""):
        check_choice(problems, key, value, allowed)


def _check_settings(spec: SweepSpec, problems: list[Problem]) -> None:
    if not spec.name:
        problems.append(Problem("name", "missing", "give the sweep a name, e.g. name: medtuned-loo"))
    elif (bad := name_problem("name", spec.name, "sweep name")) is not None:
        problems.append(bad)
    _check_choice(problems, "budget", spec.budget, BUDGETS)
    _check_choice(problems, "keep", spec.keep, KEEP_POLICIES)
    if len(set(spec.seeds)) != len(spec.seeds):
        problems.append(Problem("seeds", f"repeated seeds in {spec.seeds}", "list each training seed once"))
    if not 0.0 < spec.min_effect < 1.0:
        problems.append(Problem("min_effect", f"must be in (0, 1), got {spec.min_effect}", "use e.g. 0.02"))
    check_settings(spec.power, problems)


def _check_mixture_axis(
    key: str,
    axis: LeaveOneOutAxis | ScaleAxis | MixturesAxis | SwarmAxis,
    data: DataConfig | None,
    problems: list[Problem],
) -> None:
    """Checks shared by the four axes that act on the mixture."""
    _check_choice(problems, f"{key}.over", axis.over, OVER)
    _check_choice(problems, f"{key}.budget", axis.budget, BUDGETS, empty_ok=True)
    if data is None or axis.over not in OVER:
        return
    known, kind = _known_names(axis, data)
    if isinstance(axis, LeaveOneOutAxis):
        for j, name in enumerate(_axis_items(axis, data)):
            where = f"{key}.only[{j}]" if axis.only else key
            if name not in known:
                problems.append(_unknown_problem(where, name, kind, data))
            elif known == {name}:
                problems.append(
                    Problem(
                        where,
                        f"leaving out {kind} '{name}' empties the mixture (the base has no other {kind})",
                        "add sources to the base, or drop this axis",
                    )
                )
    elif isinstance(axis, ScaleAxis):
        if not axis.target:
            problems.append(Problem(f"{key}.target", "missing", f"name the {kind} to scale"))
        elif axis.target not in known:
            problems.append(_unknown_problem(f"{key}.target", axis.target, kind, data))
    elif isinstance(axis, MixturesAxis):
        _check_mixtures(key, axis, data, problems)
    elif isinstance(axis, SwarmAxis):
        _check_swarm(key, axis, len(known), kind, problems)


def _check_mixtures(key: str, axis: MixturesAxis, data: DataConfig, problems: list[Problem]) -> None:

    known, kind = _known_names(axis, data)
    if kind == "source":
        known |= set(catalog(data)) | set(data.sources)
    if not axis.mixtures:
        problems.append(
            Problem(
                f"{key}.mixtures", "no mixtures", "give e.g. mixtures: {ner_heavy: {ncbi_disease: 3, hoc: 1}}"
            )
        )
    for mname, weights in axis.mixtures.items():
        mkey = f"{key}.mixtures.{mname}"
        for name, w in weights.items():
            if name not in known:
                problems.append(_unknown_problem(f"{mkey}.{name}", name, kind, data))
            if w < 0:
                problems.append(
                    Problem(f"{mkey}.{name}", f"negative weight {w}", "use a weight >= 0 (0 leaves it out)")
                )
        if not weights or all(w <= 0 for w in weights.values()):
            problems.append(
                Problem(
                    mkey,
                    "every weight is zero: the mixture is empty",
                    f"give at least one {kind} a weight > 0",
                )
            )


def _check_swarm(key: str, axis: SwarmAxis, k: int, kind: str, problems: list[Problem]) -> None:
    if axis.n < 1:
        problems.append(Problem(f"{key}.n", f"must be >= 1, got {axis.n}", "use e.g. n: 32"))
    elif axis.fit and axis.n < k + 1:
        problems.append(
            Problem(
                f"{key}.n",
                f"a fit over {k} {kind}s has {k + 1} parameters but the swarm has only {axis.n} mixtures",
                f"set n >= {k + 1} (RegMix uses several times more), or fit: false",
            )
        )
    if axis.alpha <= 0:
        problems.append(Problem(f"{key}.alpha", f"must be > 0, got {axis.alpha}", "use e.g. alpha: 1.0"))
    if axis.min_weight < 0 or (k and axis.min_weight * k >= 1):
        problems.append(
            Problem(
                f"{key}.min_weight",
                f"{axis.min_weight} is not in [0, 1/{k}) for {k} {kind}s",
                f"use a value below {1 / max(k, 1):.3g}, e.g. 0.02",
            )
        )
    check_fit_keys(f"{key}.", axis, SwarmAxis(), k, kind, problems)
    reach = 2 * (1 - k * axis.min_weight) if k else 0.0
    if axis.min_distance < 0 or (k > 1 and axis.min_distance >= reach > 0):
        problems.append(
            Problem(
                f"{key}.min_distance",
                f"{axis.min_distance} is not in [0, {reach:.3g}) (the largest L1 "
                "distance between two allowed mixtures)",
                "use e.g. 0.05",
            )
        )


def _check_values_axis(
    key: str, axis: ValuesAxis, base: str | None, overrides: list[str], problems: list[Problem]
) -> None:
    """Each value must give a valid run config: the key is checked against RunConfig with config.load."""
    if not axis.key:
        problems.append(Problem(f"{key}.key", "missing", "name a config key, e.g. key: optim.lr"))
        return
    if axis.key == "train.seed":
        problems.append(
            Problem(
                f"{key}.key",
                "training seeds are not a values axis",
                "list them under seeds: (they cross every variant)",
            )
        )
        return
    if not axis.values:
        problems.append(Problem(f"{key}.values", "no values", f"list the values of {axis.key} to try"))
    known_key_problem = False
    for j, value in enumerate(axis.values):
        try:
            config.load(base, [*overrides, override(axis.key, value)])
        except ConfigError as err:
            for p in err.problems:
                if p.problem == "unknown key":
                    if not known_key_problem:
                        problems.append(Problem(f"{key}.key", f"unknown config key '{p.key}'", p.fix))
                    known_key_problem = True
                else:
                    problems.append(
                        Problem(f"{key}.values[{j}]", f"{axis.key}={value!r}: {p.problem}", p.fix)
                    )


def override(key: str, value: Any) -> str:
    """``key=value`` with the value written so that the config loader reads back the same value."""
    return f"{key}={_yaml_value(value)}"


def _yaml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ",".join(_yaml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}:{_yaml_value(v)}" for k, v in value.items()) + "}"
    text = str(value)
    try:
        plain = yaml.safe_load(text) == text and not text.startswith(("@", "%", "`"))
    except yaml.YAMLError:
        plain = False
    return text if plain else "'" + text.replace("'", "''") + "'"


def _check_names(spec: SweepSpec, data: DataConfig, index: list[int], problems: list[Problem]) -> None:
    seen: dict[str, int] = {}
    misnamed: set[int] = set()
    for pt in points(spec, data):
        where = index[pt.axis] if pt.axis >= 0 else -1
        bad = name_problem(f"axes[{where}]", pt.name, "variant name")
        if bad is not None and where not in misnamed:  # the axis's first bad name is enough to fix its prefix
            misnamed.add(where)
            problems.append(bad)
        if pt.name in seen:
            first = "the base" if seen[pt.name] < 0 else f"axes[{seen[pt.name]}]"
            key = f"axes[{where}].mixtures.{pt.value}" if pt.kind == MIXTURES else f"axes[{where}]"
            problems.append(
                Problem(
                    key,
                    f"variant name '{pt.name}' is also made by {first}",
                    "give one of the axes a distinct name: prefix, or remove the duplicate",
                )
            )
        else:
            seen[pt.name] = where


def validate(
    spec: SweepSpec, base: RunConfig | None, with_overrides: bool = True, index: list[int] | None = None
) -> list[Problem]:
    """Every problem of a parsed sweep that can be seen without the corpora.

    Args:
        spec: the parsed sweep (``spec.base`` resolved).
        base: its base config (None when it fails to load).
        with_overrides: whether ``base`` includes the sweep's overrides.
        index: the file's index of each axis in ``spec.axes`` (default: their position).
    """
    index = list(range(len(spec.axes))) if index is None else index
    problems: list[Problem] = []
    keyed = [(f"axes[{i}]", axis) for i, axis in zip(index, spec.axes, strict=True)]
    settings = [(f.name, getattr(spec, f.name)) for f in fields(SweepSettings)]
    non_finite = limits.non_finite_problems([*settings, *keyed])
    _check_settings(spec, problems)
    data = base.data if base is not None else None
    made_by = (lambda: [pt.axis for pt in points(spec, data)][1:]) if data and source_groups(data) else None
    if too_big := limits.bound_problems(keyed, SwarmAxis, made_by):  # checking them all would not end
        return limits.merge_non_finite(non_finite, problems + too_big)
    if data is not None and not source_groups(data):
        problems.append(
            Problem(
                "base",
                "the base config has no included data sources",
                "use a train config whose data.sources include at least one source",
            )
        )
        data = None
    if data is not None:
        known = catalog(data)
        if not data.instructions:
            for name in data.sources:
                if name not in known:
                    close = UnknownSourceError(name).close_matches
                    hint = f"did you mean {', '.join(close)}? " if close else ""
                    problems.append(
                        Problem(
                            f"data.sources.{name}",
                            f"unknown source '{name}' in the base",
                            f"{hint}use a source of biotune.sources.SOURCES",
                        )
                    )
    base_path = spec.base if base is not None else None
    overrides = list(spec.overrides) if base is not None and with_overrides else []
    for i, axis in zip(index, spec.axes, strict=True):
        key = f"axes[{i}]"
        if isinstance(axis, ValuesAxis):
            _check_values_axis(key, axis, base_path, overrides, problems)
        else:
            _check_mixture_axis(key, axis, data, problems)
            if isinstance(axis, ScaleAxis):
                if not axis.factors:
                    problems.append(Problem(f"{key}.factors", "no factors", "list factors, e.g. [0.5, 2]"))
                for j, f in enumerate(axis.factors):
                    if f <= 0:
                        problems.append(
                            Problem(
                                f"{key}.factors[{j}]",
                                f"must be > 0, got {f}",
                                "use a positive factor (to remove a source use leave_one_out)",
                            )
                        )
    if data is not None:
        _check_names(spec, data, index, problems)
    names = [pt.name for pt in points(spec, data)] if data is not None else None
    check_fidelities(spec.fidelities, names, base_path, overrides, problems)
    return limits.merge_non_finite(non_finite, problems)


def load_sweep(path: str | Path) -> SweepSpec:
    """Read, type and validate a sweep YAML; load its base config.

    Raises:
        ConfigError: one error listing every problem (the sweep's and the base's) with its key and fix.
    """
    path = Path(path).expanduser().resolve()
    if not path.is_file():
        raise ConfigError(
            [
                Problem(
                    "<file>",
                    f"sweep file {path} does not exist",
                    "pass a sweep YAML, e.g. configs/sweep/demo.yaml",
                )
            ]
        )
    problems: list[Problem] = []
    spec, index = _parse(limits.check_raw(_read_yaml(path), problems), problems)
    spec.sweep_file = str(path)
    base, with_overrides = _resolve_base(spec, path, problems)
    typed = {p.key for p in problems}  # a value already reported (and defaulted) is not reported again
    problems += [p for p in validate(spec, base, with_overrides, index) if p.key not in typed]
    if problems:
        raise ConfigError(problems, path)
    if spec.controls and not any(
        spec.budget_of(a) == FREE for a in spec.axes if isinstance(a, LeaveOneOutAxis)
    ):
        logger.info("controls: true has no effect: no leave_one_out axis runs under budget: free")
    return spec

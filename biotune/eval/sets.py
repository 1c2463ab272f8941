"""The evaluation plan: which (source, split) sets a config evaluates, resolved once.

:func:`plan_sets` is the one answer to "what does this run evaluate?": ``biotune eval`` builds exactly these
sets, ``sweep plan`` sizes them, and every cell of a sweep evaluates its base's plan (so a variant that leaves
a source out is still scored on it). Each :class:`SetRef` carries the split in the source's own spelling
(``eval.splits=[dev]`` is ``devel`` for NCBI-disease, ``dev`` for MedNLI) and the split's role
(:class:`~biotune.sources.splits.SplitRole`), which selection code reads instead of a spelling.
Instruction-row sets (``eval.instructions``) are added by the runner once their rows are read.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from biotune.config import RunConfig
from biotune.errors import ConfigError, Problem
from biotune.sources import SourceSpec, catalog
from biotune.sources.splits import SplitRole, resolve, role_of, set_label


@dataclass(frozen=True)
class SetRef:
    """One evaluation set: a source, the split in the source's spelling, and the split's role."""

    source: str
    split: str
    role: SplitRole | None
    """None for a split name outside the vocabulary (``fold3_test``): shown, never selected on."""

    @property
    def label(self) -> str:
        """``<source>/<split>``."""
        return set_label(self.source, self.split)


def set_ref(source: str, split: str) -> SetRef:
    """The reference of a set whose split is already in the source's spelling."""
    return SetRef(source, split, role_of(split))


def plan_sets(cfg: RunConfig, known: dict[str, SourceSpec] | None = None) -> list[SetRef]:
    """The corpus sets ``cfg`` evaluates: ``eval.sources`` x ``eval.splits``, each split resolved to the
    source's own spelling.

    ``eval.sources`` empty means every included source of ``data.sources`` that is a task source, unless
    ``eval.instructions`` names rows to evaluate (then only those are evaluated and this returns ``[]``).
    ``known`` is ``catalog(cfg.data)`` when the caller already has it.

    Raises:
        ConfigError: when nothing is left to evaluate, or for every source that is unknown or lacks a
            requested split (all listed at once).
    """
    known = catalog(cfg.data) if known is None else known
    names = plan_sources(cfg, known)
    problems: list[Problem] = []
    refs: list[SetRef] = []
    for name in names:
        try:
            spec = source_spec(name, known)
        except ConfigError as err:
            problems += err.problems
            continue
        for split in cfg.eval.splits:
            try:
                refs.append(set_ref(name, resolve_split(spec, split)))
            except ConfigError as err:
                problems += err.problems
    if problems:
        raise ConfigError(problems)
    return refs


def plan_sources(cfg: RunConfig, known: dict[str, SourceSpec] | None = None) -> list[str]:
    """The sources ``cfg`` evaluates (the first half of :func:`plan_sets`, before any split is resolved):
    ``eval.sources``, else every included task source of ``data.sources``; none when ``eval.sources`` is empty
    and ``eval.instructions`` names rows to evaluate.

    Raises:
        ConfigError: when there is nothing at all to evaluate.
    """
    if cfg.eval.sources or cfg.eval.instructions:
        return list(cfg.eval.sources)
    known = catalog(cfg.data) if known is None else known
    names = [n for n, mix in cfg.data.sources.items() if mix.include and n in known]
    if not names:
        raise ConfigError(
            [
                Problem(
                    "eval.sources",
                    "nothing to evaluate: eval.sources is empty and data.sources has no task source",
                    "set eval.sources=[ncbi_disease,...]",
                )
            ]
        )
    return names


def source_spec(name: str, known: dict[str, SourceSpec]) -> SourceSpec:
    """The spec called ``name`` in ``known`` (``catalog(cfg.data)``).

    Raises:
        ConfigError: for an unknown name (key ``eval.sources``), with close matches.
    """
    if name not in known:
        raise ConfigError([Problem("eval.sources", f"unknown source '{name}'", _unknown_fix(name, known))])
    return known[name]


def resolve_split(spec: SourceSpec, split: str) -> str:
    """The source's own name for ``split`` (``dev`` -> ``devel`` where the corpus spells it so).

    Raises:
        ConfigError: when the source has no split of that name or role (e.g. a task without a dev split).
    """
    own = resolve(split, spec.split_names)
    if own is None:
        raise ConfigError(
            [
                Problem(
                    "eval.splits",
                    f"source '{spec.name}' has no '{split}' split (it has: {', '.join(sorted(spec.split_names))})",
                    _other_split_fix(spec),
                )
            ]
        )
    return own


def _unknown_fix(name: str, known: dict[str, SourceSpec]) -> str:
    close = difflib.get_close_matches(name, list(known), n=3)
    return f"did you mean {', '.join(close)}?" if close else f"known sources: {', '.join(sorted(known))}"


def _other_split_fix(spec: SourceSpec) -> str:
    """A fix that never suggests scoring on the training split."""
    held_out = sorted(s for s in spec.split_names if role_of(s) is not SplitRole.TRAIN)
    if held_out:
        return f"evaluate it on a held-out split it has (e.g. eval.splits=[{held_out[0]}]) or drop it from eval.sources"
    return f"drop {spec.name} from eval.sources: it has only a training split here (or add its official test file)"

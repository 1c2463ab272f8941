"""Dataset composition: per-source weight / epochs / cap / leave-out, seeded and deterministic.

Input: instruction samples per source. Output: one shuffled list of samples plus a table of requested vs
realised counts. Two ways to size a source:

* ``data.total_samples`` unset: ``round(available * epochs)`` samples (``epochs=2.5`` = two full passes and a
  seeded half).
* ``data.total_samples`` set: the total is split across included sources in proportion to their weights
  (largest-remainder rounding, so the parts add up exactly), upsampling with repeats where a source is
  smaller than its share.

``cap`` then bounds each source. Repeats of a sample get an ``#k`` suffix on their id so that every id in
the mixture is unique. Randomness comes from ``random.Random`` seeded with strings, which is stable across
processes and Python runs: the same config gives the same mixture, byte for byte.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from biotune.config import DataConfig, SourceMix
from biotune.errors import ConfigError, Problem
from biotune.sources.records import Sample, base_id, is_repeat, repeat_id


@dataclass(frozen=True)
class SourceCount:
    """Requested vs realised size of one source in the mixture."""

    source: str
    task: str
    group: str
    available: int
    requested: int
    realised: int
    weight: float
    epochs: float
    cap: int | None
    included: bool


def _largest_remainder(total: int, weights: dict[str, float]) -> dict[str, int]:
    norm = sum(weights.values())
    exact = {k: total * w / norm for k, w in weights.items()}
    floors = {k: math.floor(v) for k, v in exact.items()}
    left = total - sum(floors.values())
    order = sorted(exact, key=lambda k: (-(exact[k] - floors[k]), k))
    for k in order[:left]:
        floors[k] += 1
    return floors


#: The task group of the sources that come from instruction sets (``data.instructions``).
INSTRUCTION_GROUP = "instruction"


def source_mixes(cfg: DataConfig, instruction_sources: Iterable[str] = ()) -> dict[str, SourceMix]:
    """How each source enters the mixture: ``data.sources`` in config order, then each instruction-set source
    (a ``source`` value of the ``data.instructions`` rows) with the defaults of :class:`SourceMix` in the
    :data:`INSTRUCTION_GROUP`. A new mapping: the caller's config is never changed."""
    mixes = dict(cfg.sources)
    for name in instruction_sources:
        mixes.setdefault(name, SourceMix(group=INSTRUCTION_GROUP))
    return mixes


def requested_counts(
    cfg: DataConfig, available: dict[str, int], mixes: Mapping[str, SourceMix] | None = None
) -> dict[str, int]:
    """How many samples each included source should contribute, before ``cap``. ``mixes``: the sources and how
    they enter (:func:`source_mixes`; ``data.sources`` when not given)."""
    mixes = cfg.sources if mixes is None else mixes
    included = {n: m for n, m in mixes.items() if m.include}
    if cfg.total_samples:
        weights = {n: m.weight for n, m in included.items() if m.weight > 0}
        if not weights:
            raise ConfigError(
                [
                    Problem(
                        "data.sources.*.weight",
                        "all included weights are zero",
                        "give at least one included source a weight > 0",
                    )
                ]
            )
        counts = _largest_remainder(cfg.total_samples, weights)
        return {n: counts.get(n, 0) for n in included}
    return {n: round(available[n] * m.epochs) for n, m in included.items()}


def _realise(samples: list[Sample], count: int, rng: random.Random) -> list[Sample]:
    """``count`` samples from ``samples``: full passes, then a seeded subset; repeats get ``#k`` ids."""
    n = len(samples)
    if n == 0 or count <= 0:
        return []
    full, rest = divmod(count, n)
    out: list[Sample] = []
    for k in range(full):
        out += [replace(s, id=repeat_id(s.id, k)) for s in samples] if k else samples
    if rest:
        picked = sorted(rng.sample(range(n), rest))
        out += [
            replace(samples[i], id=repeat_id(samples[i].id, full)) if full else samples[i] for i in picked
        ]
    return out


def compose(
    samples_by_source: dict[str, list[Sample]],
    cfg: DataConfig,
    kinds: dict[str, str],
    instructions: Mapping[str, list[Sample]] | None = None,
) -> tuple[list[Sample], list[SourceCount]]:
    """Compose the training mixture.

    Args:
        samples_by_source: every included source's samples, in reader order.
        cfg: the data config (weights, epochs, caps, include flags, seed); never changed.
        kinds: source name -> task kind (the default task group).
        instructions: the samples of the instruction sets (``data.instructions``) by their ``source`` value;
            each joins after the configured sources as in :func:`source_mixes`.

    Returns:
        The shuffled mixture and one :class:`SourceCount` per source (left-out ones included).

    Raises:
        ConfigError: an instruction-set source has the name of a configured source, or the mixture is empty.
    """
    instructions = instructions or {}
    clash = [name for name in instructions if name in cfg.sources]
    if clash:
        raise ConfigError(
            [
                Problem(
                    "data.instructions",
                    f"instruction rows name source '{name}', which is also a configured corpus",
                    "rename the source column in the instruction file",
                )
                for name in clash
            ]
        )
    mixes = source_mixes(cfg, instructions)
    by_source = {**samples_by_source, **instructions}
    kinds = {**kinds, **dict.fromkeys(instructions, INSTRUCTION_GROUP)}
    available = {n: len(s) for n, s in by_source.items()}
    requested = requested_counts(cfg, available, mixes)
    mixture: list[Sample] = []
    table: list[SourceCount] = []
    for name, mix in mixes.items():
        req = requested.get(name, 0)
        count = min(req, mix.cap) if mix.cap is not None else req
        chosen = (
            _realise(by_source.get(name, []), count, random.Random(f"{cfg.seed}:mix:{name}"))
            if mix.include
            else []
        )
        mixture += chosen
        table.append(_count_row(name, mix, kinds.get(name, "?"), available.get(name, 0), req, len(chosen)))
    if not mixture:
        raise ConfigError(
            [
                Problem(
                    "data.sources",
                    "the mixture is empty (no included source has samples)",
                    "include at least one source with data, and check weights/caps/epochs",
                )
            ]
        )
    random.Random(f"{cfg.seed}:shuffle").shuffle(mixture)
    return mixture, table


def _count_row(
    name: str, mix: SourceMix, kind: str, available: int, requested: int, realised: int
) -> SourceCount:
    return SourceCount(
        source=name,
        task=kind,
        group=mix.group or kind,
        available=available,
        requested=requested if mix.include else 0,
        realised=realised,
        weight=mix.weight,
        epochs=mix.epochs,
        cap=mix.cap,
        included=mix.include,
    )


def split_heldout(samples: list[Sample], fraction: float, seed: int) -> tuple[list[Sample], list[Sample]]:
    """Hold out ``fraction`` of the mixture for the trainer's eval loss (by base id, so repeats stay together)."""
    if fraction <= 0:
        return samples, []
    base_ids = sorted({base_id(s.id) for s in samples})
    k = max(1, round(len(base_ids) * fraction))
    held = set(random.Random(f"{seed}:heldout").sample(base_ids, k))
    train = [s for s in samples if base_id(s.id) not in held]
    evals = [s for s in samples if base_id(s.id) in held and not is_repeat(s.id)]
    return train, evals


#: A source that loses more than this fraction of its training samples to ``data.truncation`` is a warning
#: (in the log and the manifest's ``warnings``); one that loses all of them stops the build.
DROP_WARN_FRACTION = 0.10


def truncation_losses(
    composed: Mapping[str, int], kept: Mapping[str, int], cfg: DataConfig, heldout: tuple[int, int] = (0, 0)
) -> list[str]:
    """Check what tokenization dropped (``data.truncation``) against what the mixture composed.

    Args:
        composed: training samples per source before tokenization (repeats included).
        kept: the same after over-long samples were dropped.
        cfg: the data config (``max_seq_len``, ``truncation``, each source's split).
        heldout: (held-out samples composed, kept) when ``data.eval_fraction`` holds some out.

    Returns:
        One warning per source that lost more than :data:`DROP_WARN_FRACTION` of its samples.

    Raises:
        ConfigError: a source (or the held-out split) lost every sample: it names the source and split,
            ``data.max_seq_len`` and the fix. An empty build cannot pass this check.
    """
    problems: list[Problem] = []
    warnings: list[str] = []
    fix = (
        "raise data.max_seq_len, set data.truncation=truncate (cuts the input side, never the output), or leave "
        "the source out"
    )
    for name, n in composed.items():
        lost = n - kept.get(name, 0)
        split = cfg.sources[name].split if name in cfg.sources else "train"
        if n and lost == n:
            problems.append(
                Problem(
                    f"data.sources.{name}",
                    f"all {n} training samples of {name} ({split}) are longer than data.max_seq_len="
                    f"{cfg.max_seq_len} tokens and were dropped (data.truncation={cfg.truncation})",
                    f"{fix} (data.sources.{name}.include=false)",
                )
            )
        elif n and lost / n > DROP_WARN_FRACTION:
            warnings.append(
                f"{name} ({split}): {lost} of {n} training samples ({100 * lost / n:.1f}%) are longer than "
                f"data.max_seq_len={cfg.max_seq_len} tokens and were dropped (data.truncation={cfg.truncation})"
            )
    held, held_kept = heldout
    if held and not held_kept:
        problems.append(
            Problem(
                "data.eval_fraction",
                f"all {held} held-out samples are longer than data.max_seq_len={cfg.max_seq_len} tokens and were "
                f"dropped (data.truncation={cfg.truncation}): the eval split would be empty",
                f"{fix}, or set data.eval_fraction=0",
            )
        )
    if problems:
        raise ConfigError(problems)
    return warnings

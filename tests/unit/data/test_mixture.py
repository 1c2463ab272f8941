"""Mixture composition: weights, epochs, caps, leave-outs; seeded and exact."""

from __future__ import annotations

from collections import Counter

import pytest

from biotune.config import DataConfig, SourceMix
from biotune.data import mixture
from biotune.errors import ConfigError
from biotune.sources.records import Sample


def _samples(source: str, n: int) -> list[Sample]:
    return [
        Sample(
            id=f"{source}/train/{i}",
            source=source,
            task="ner",
            instruction="i",
            input=f"{source} {i}",
            output="o",
        )
        for i in range(n)
    ]


def _cfg(**sources: SourceMix) -> DataConfig:
    return DataConfig(root="/nonexistent", sources=dict(sources), seed=7)


BY_SOURCE = {"a": _samples("a", 10), "b": _samples("b", 40), "c": _samples("c", 5)}
KINDS = {"a": "ner", "b": "re", "c": "qa"}


def test_epochs_caps_and_leave_out() -> None:
    cfg = _cfg(a=SourceMix(epochs=2.5), b=SourceMix(cap=12), c=SourceMix(include=False))
    mixed, table = mixture.compose(BY_SOURCE, cfg, KINDS)
    counts = Counter(s.source for s in mixed)
    assert counts == {"a": 25, "b": 12}
    rows = {r.source: r for r in table}
    assert (rows["a"].requested, rows["a"].realised) == (25, 25)
    assert (rows["b"].requested, rows["b"].realised) == (40, 12)
    assert (rows["c"].requested, rows["c"].realised, rows["c"].included) == (0, 0, False)
    ids = [s.id for s in mixed]
    assert len(ids) == len(set(ids)), "repeats must get unique ids"
    base_a = Counter(s.id.split("#")[0] for s in mixed if s.source == "a")
    assert sorted(set(base_a.values())) == [2, 3], "2.5 epochs = two full passes + half the source once more"


def test_total_samples_split_by_weight_exactly() -> None:
    cfg = _cfg(a=SourceMix(weight=1), b=SourceMix(weight=2), c=SourceMix(weight=1))
    cfg.total_samples = 101
    mixed, table = mixture.compose(BY_SOURCE, cfg, KINDS)
    counts = Counter(s.source for s in mixed)
    assert sum(counts.values()) == 101
    assert counts["b"] in (50, 51) and counts["a"] in (25, 26) and counts["c"] in (25, 26)
    assert counts["c"] > len(BY_SOURCE["c"]), "a small source is upsampled to its share"


def test_seeded_and_deterministic() -> None:
    cfg = _cfg(a=SourceMix(epochs=1.5), b=SourceMix(epochs=0.5))
    first, _ = mixture.compose(BY_SOURCE, cfg, KINDS)
    second, _ = mixture.compose(BY_SOURCE, cfg, KINDS)
    assert first == second
    cfg.seed = 8
    third, _ = mixture.compose(BY_SOURCE, cfg, KINDS)
    assert [s.id for s in third] != [s.id for s in first]


def test_empty_mixture_and_zero_weights() -> None:
    with pytest.raises(ConfigError, match="empty"):
        mixture.compose(BY_SOURCE, _cfg(a=SourceMix(cap=0)), KINDS)
    cfg = _cfg(a=SourceMix(weight=0))
    cfg.total_samples = 10
    with pytest.raises(ConfigError, match="weights are zero"):
        mixture.compose(BY_SOURCE, cfg, KINDS)


def test_heldout_split_keeps_repeats_together() -> None:
    mixed, _ = mixture.compose(BY_SOURCE, _cfg(a=SourceMix(epochs=3)), KINDS)
    train, held = mixture.split_heldout(mixed, 0.2, seed=1)
    held_ids = {s.id for s in held}
    assert held and all("#" not in i for i in held_ids)
    assert not {s.id.split("#")[0] for s in train} & held_ids


def test_instruction_sets_join_after_the_sources_and_the_config_is_not_changed() -> None:
    cfg = _cfg(a=SourceMix(weight=1), b=SourceMix(weight=3))
    cfg.total_samples = 50
    mixed, table = mixture.compose(BY_SOURCE, cfg, KINDS, {"chat": _samples("chat", 8)})
    assert list(cfg.sources) == ["a", "b"], "the caller's data.sources are left as they were"
    assert [r.source for r in table] == ["a", "b", "chat"]
    chat = table[-1]
    assert (chat.group, chat.task, chat.weight) == ("instruction", "instruction", 1.0)
    # The instruction set takes its weight-1 share of data.total_samples, like a configured source.
    assert Counter(s.source for s in mixed) == {"a": 10, "b": 30, "chat": 10}


def test_an_instruction_source_named_like_a_configured_one_is_refused() -> None:
    with pytest.raises(ConfigError, match="data.instructions"):
        mixture.compose(
            BY_SOURCE, _cfg(a=SourceMix(), c=SourceMix(include=False)), KINDS, {"c": _samples("c", 2)}
        )

"""Matching helpers: line-token alignment."""

from __future__ import annotations

from biotune.data.tasks import align


def test_align_is_positional_and_monotone() -> None:
    tokens = ["a", "b", "a", "b", "c"]
    assert align(["a", "b", "a", "b", "c"], tokens) == [(i, True) for i in range(5)]
    assert align(["A", "a", "b", "c"], tokens) == [(0, True), (None, False), (1, True), (2, True), (3, True)]
    assert align(["x", "a", "b", "a", "b", "c", "y"], tokens) == [(i + 1, True) for i in range(5)]
    assert align([], tokens) == [(None, False)] * 5

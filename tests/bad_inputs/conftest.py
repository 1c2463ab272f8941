"""Fixtures of the bad-input suite: a tokenizer (the demo's tiny Llama, made from the bundled sample corpus)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def sample_llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny random Llama + tokenizer of ``biotune.testing.make_sample_llama`` (needs no ../shared/data)."""
    from biotune.testing.tiny import make_sample_llama

    return make_sample_llama(tmp_path_factory.mktemp("sample_llama") / "model")

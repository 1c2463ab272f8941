"""Shared fixtures: where the real corpora are, a tiny random Llama + tokenizer built locally, record checks.

``tiny_model``/``tiny_tokenizer`` have a tokenizer trained on the bundled ``@sample`` corpus, so
``pytest tests/unit`` needs no ``../shared/data``. Integration tests read the real corpora through ``corpora``
(which fails, never skips, when they are missing) and use the same tiny model: byte-level BPE never meets an
unknown token, and real NCBI-disease text takes about as many tokens as with one trained on real text.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("DS_ACCELERATOR", "cpu")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


def data_root() -> Path:
    """The real corpora: ``$BIOTUNE_DATA_DIR``, defaulting to ``../shared/data`` beside the repo."""
    from biotune.config import default_data_root

    return Path(default_data_root()).resolve()


@pytest.fixture(scope="session")
def corpora() -> Path:
    """The real corpora directory. Fails (never skips) when it is missing: CI always has it."""
    root = data_root()
    assert (root / "ncbi_disease").is_dir(), f"real corpora not found at {root}: set BIOTUNE_DATA_DIR"
    return root


# ----------------------------------------------------------------------------------------------- tiny models


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Llama whose BPE tokenizer is trained on the bundled sample corpus (session-scoped)."""
    from biotune.testing.tiny import make_sample_llama

    return make_sample_llama(tmp_path_factory.mktemp("sample_llama") / "model")


@pytest.fixture(scope="session")
def tiny_tokenizer(tiny_model: Path) -> Any:
    """The tokenizer of :func:`tiny_model`, loaded once per session."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model)


# ------------------------------------------------------------------------------------------- record checks


def _assert_valid_records(name: str, records: Sequence[Any]) -> None:
    """Records have the source's record type, unique ids, labels from the spec and aligned IOB2 tags."""
    from biotune.sources import SOURCES
    from biotune.sources.records import DocLabels, NerSentence, NliPair, QaItem, RelationPair

    record_types = {"ner": NerSentence, "re": RelationPair, "nli": NliPair, "qa": QaItem, "cls": DocLabels}
    spec = SOURCES[name]
    assert records and all(isinstance(r, record_types[spec.kind]) for r in records)
    assert len({r.id for r in records}) == len(records)
    if spec.kind == "ner":
        tags = set(spec.tag_set)
        for r in records:
            assert len(r.tokens) == len(r.tags) and set(r.tags) <= tags
            for prev, tag in zip(("O", *r.tags), r.tags, strict=False):
                assert not tag.startswith("I-") or prev[2:] == tag[2:], (r.id, r.tags)
    elif spec.kind == "cls":
        assert all(set(r.labels) <= set(spec.labels) for r in records)
    else:
        assert all(r.label in spec.labels for r in records)


@pytest.fixture(scope="session")
def assert_valid_records() -> Callable[[str, Sequence[Any]], None]:
    """``check(name, records)``: asserts the records read for source ``name`` are well formed.

    Shared by the reader tests on the sample corpus (unit) and on the real corpora (integration).
    """
    return _assert_valid_records


# ------------------------------------------------------------------------------------------- the demo


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``biotune demo`` (the main job), run once per session through the real CLI; returns its ``--out``.

    The sweep is ``configs/sweep/demo.yaml`` as shipped except ``keep: export``, so that each cell keeps its
    Hugging Face export beside its predictions (``keep`` acts only after a cell's evaluation). Two slow modules
    share this one run: ``test_ablation_effect.py`` checks the ablation it computes, and ``test_learnability.py``
    takes its base cell (the probes' recipe on the probes' corpora and model) as its good run, so the
    probes' 800 ZeRO-3 steps are trained once per session instead of twice.
    """
    out = tmp_path_factory.mktemp("demo")
    spec = yaml.safe_load((REPO_ROOT / "configs" / "sweep" / "demo.yaml").read_text(encoding="utf-8"))
    sweep_file = out.parent / f"{out.name}-sweep.yaml"  # beside --out: the demo wants its directory to itself
    sweep_file.write_text(yaml.safe_dump({**spec, "keep": "export"}), encoding="utf-8")
    res = subprocess.run(
        [sys.executable, "-m", "biotune.cli", "demo", "--out", str(out), "--sweep", str(sweep_file)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-4000:]
    print(res.stdout[res.stdout.find("==> [5/5]") :])  # the headline, for the test log
    return out

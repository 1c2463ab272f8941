"""Shared fixtures: where the real corpora are, and a tiny random Llama + tokenizer built locally."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("DS_ACCELERATOR", "cpu")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


def data_root() -> Path:
    """The real corpora: ``$BIOTUNE_DATA_DIR``, defaulting to ``../shared/data`` beside the repo."""
    return Path(os.environ.get("BIOTUNE_DATA_DIR", REPO_ROOT.parent / "shared" / "data")).resolve()


@pytest.fixture(scope="session")
def corpora() -> Path:
    """The real corpora directory. Fails (never skips) when it is missing: CI always has it."""
    root = data_root()
    assert (root / "ncbi_disease").is_dir(), f"real corpora not found at {root}: set BIOTUNE_DATA_DIR"
    return root


def _corpus_texts(root: Path, limit: int = 3000) -> list[str]:
    texts: list[str] = []
    for rel in ("ncbi_disease/iob/train.tsv", "bc5cdr/chem-iob/train.tsv", "gad/fold1/train.tsv"):
        path = root / rel
        if path.is_file():
            lines = path.read_text(encoding="utf-8").splitlines()[:limit]
            texts.append(" ".join(line.replace("\t", " : ") for line in lines))
    texts.append("### Instruction: ### Input: ### Output: ### Response: Below is an instruction")
    return texts


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory, corpora: Path) -> Path:
    """A tiny random Llama with a BPE tokenizer trained on real corpus text (session-scoped)."""
    from biotune.testing.tiny import make_tiny_llama

    return make_tiny_llama(tmp_path_factory.mktemp("tiny_llama"), _corpus_texts(corpora))


@pytest.fixture(scope="session")
def tiny_tokenizer(tiny_model: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model)

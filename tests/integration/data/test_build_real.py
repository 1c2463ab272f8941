"""The data build on the real corpora: leakage between BC5CDR's chemical and disease test splits at full size."""

from __future__ import annotations

from pathlib import Path

import pytest

from biotune import config
from biotune.data.build import build_dataset
from biotune.data.dataset import Manifest
from biotune.errors import DataError


def test_leakage_is_detected_and_fatal_when_configured(
    tmp_path: Path, tiny_model: Path, corpora: Path
) -> None:
    # Real corpora: BC5CDR's chemical and disease files share their sentences, so training on the chemical
    # test split leaks every sentence of the disease test split.
    def cfg(out: Path, mode: str) -> config.RunConfig:
        return config.load(
            None,
            [
                f"data.root={corpora}",
                f"data.tokenizer={tiny_model}",
                f"data.out_dir={out}",
                "data.sources.bc5cdr_chem.split=test",
                "data.sources.bc5cdr_disease.cap=0",
                "data.leakage_splits=[test]",
                f"data.leakage={mode}",
                "data.max_seq_len=1024",
            ],
        )

    leak = Manifest.read(build_dataset(cfg(tmp_path / "warn", "warn"))).to_dict()["leakage"]
    assert leak["checked"]["bc5cdr_disease/test"] == 4797
    assert leak["exact"]["bc5cdr_disease/test"] >= 4700, leak
    assert "bc5cdr_chem/test" not in leak["checked"], "a source's own training split is not an eval split"
    with pytest.raises(DataError, match="overlap"):
        build_dataset(cfg(tmp_path / "err", "error"))
    assert not (tmp_path / "err").exists() or not any((tmp_path / "err").iterdir())

"""The built-dataset contract: the typed manifest round-trips, rejects what is not a manifest, and records the
repairs the readers made."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from biotune import config
from biotune.data.build import build_dataset
from biotune.data.dataset import MANIFEST_FILE, Manifest, SourceEntry
from biotune.errors import DataError


def test_manifest_round_trips(tmp_path: Path) -> None:
    m = Manifest(
        cache_key="k",
        tokenizer_fingerprint="f",
        sources={"ncbi_disease": SourceEntry(realised=3, restricted=False)},
        repairs={"ncbi_disease/train: iob_repairs": 2},
    )
    m.write(tmp_path)
    assert Manifest.read(tmp_path) == m
    assert Manifest.read(tmp_path).unrestricted_sources() == {"ncbi_disease"}


@pytest.mark.parametrize(
    "content, match",
    [
        ("", "invalid JSON"),
        ("{broken", "invalid JSON"),
        ("[1]", "not a JSON object"),
        (json.dumps({"cache_key": "k"}), "not a biotune manifest"),
        (json.dumps({"tokenizer_fingerprint": "f", "evil": 1}), "unexpected keys"),
        (json.dumps({"tokenizer_fingerprint": "f", "sources": {"a": 3}}), "malformed 'sources'"),
    ],
)
def test_bad_manifests_name_the_file(tmp_path: Path, content: str, match: str) -> None:
    (tmp_path / MANIFEST_FILE).write_text(content)
    with pytest.raises(DataError, match=match) as err:
        Manifest.read(tmp_path)
    assert MANIFEST_FILE in str(err.value) and "biotune data build" in str(err.value)


def test_reader_repairs_reach_the_manifest(tmp_path: Path, tiny_model: Path) -> None:
    corpus = tmp_path / "corpus" / "ncbi_disease" / "iob"
    corpus.mkdir(parents=True)
    sentence = (
        "Severe\tO\nbreast\tI-Disease\ncancer\tI-Disease\nwas\tO\nseen\tO\n\n"  # I- after O: repaired to B-
    )
    plain = "Patients\tO\nwith\tO\nasthma\tB-Disease\n\n"
    (corpus / "train.tsv").write_text(sentence + plain * 5)
    cfg = config.load(
        None,
        [
            f"data.root={tmp_path / 'corpus'}",
            "data.sources.ncbi_disease.weight=1",
            f"data.tokenizer={tiny_model}",
            f"data.out_dir={tmp_path / 'out'}",
            "data.leakage=off",
        ],
    )
    manifest = Manifest.read(build_dataset(cfg))
    assert manifest.repairs == {"ncbi_disease/train: iob_repairs": 1}
    assert "iob_repairs x1" in manifest.format_stats()

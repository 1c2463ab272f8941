"""Dataset text reaches a tracker only when ``tracking.log_dataset_text`` allows it, and never from a restricted source.

The data is a real build of the bundled sample corpus, which mixes open sources with a restricted one
(BioASQ yes/no); the tracker is a real offline wandb run, whose files on disk are searched for the text.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from biotune import config
from biotune.config import TrackingConfig
from biotune.data.build import build_dataset
from biotune.data.dataset import Manifest
from biotune.data.loader import PackedSplit
from biotune.data.tokenize import load_tokenizer
from biotune.train.tracking import build_tracker, dataset_examples

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def sample_build(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path):
    out = tmp_path_factory.mktemp("text") / "data"
    cfg = config.load(
        REPO / "configs/data/sample.yaml", [f"data.tokenizer={tiny_model}", f"data.out_dir={out}"]
    )
    data_dir = build_dataset(cfg)
    manifest = Manifest.read(data_dir)
    assert manifest.sources["bioasq_yesno"].restricted and manifest.sources["bioasq_yesno"].realised
    return PackedSplit(data_dir / "train"), manifest, load_tokenizer(str(tiny_model))


def _all_text(path: Path) -> str:
    return "\n".join(p.read_bytes().decode("utf-8", "replace") for p in path.rglob("*") if p.is_file())


def _restricted_texts(split: PackedSplit, manifest: Manifest, tokenizer) -> list[str]:
    """Every restricted sample's response text, decoded the same way (what must never leave)."""
    open_all = dataclasses.replace(
        manifest, sources={k: dataclasses.replace(v, restricted=False) for k, v in manifest.sources.items()}
    )
    everything = dataset_examples(split, open_all, tokenizer.decode, limit=10**6)
    return [e["prompt"] for e in everything if manifest.sources[e["source"]].restricted]


def test_examples_skip_restricted_and_unknown_sources(sample_build) -> None:
    split, manifest, tokenizer = sample_build
    examples = dataset_examples(split, manifest, tokenizer.decode, limit=10**6)
    sources = {e["source"] for e in examples}
    assert "bioasq_yesno" not in sources and {"ncbi_disease", "hoc"} <= sources
    assert all(
        e["sample_id"].startswith(e["source"] + "/") and e["prompt"] and e["response"] for e in examples
    )
    assert len(dataset_examples(split, manifest, tokenizer.decode, limit=5)) == 5
    # a source the manifest does not describe counts as restricted
    unknown = dataclasses.replace(
        manifest, sources={k: v for k, v in manifest.sources.items() if k != "ncbi_disease"}
    )
    assert "ncbi_disease" not in {
        e["source"] for e in dataset_examples(split, unknown, tokenizer.decode, 10**6)
    }


def test_no_text_in_the_wandb_run_by_default(tmp_path: Path, sample_build) -> None:
    split, manifest, tokenizer = sample_build
    cfg = TrackingConfig(wandb_mode="offline", project="p")
    tracker = build_tracker(cfg, tmp_path, "r", {"a": 1}, manifest, is_rank_zero=True)
    tracker.log_examples(split, manifest, tokenizer.decode)
    tracker.log({"loss": 1.0}, step=1)
    tracker.finish()
    written = _all_text(tmp_path)
    some_open = dataset_examples(split, manifest, tokenizer.decode, limit=3)
    assert not any(e["prompt"] in written or e["response"] in written for e in some_open)


def test_allowed_text_is_logged_without_restricted_sources(tmp_path: Path, sample_build) -> None:
    split, manifest, tokenizer = sample_build
    cfg = TrackingConfig(wandb_mode="offline", project="p", log_dataset_text=True, dataset_text_examples=400)
    tracker = build_tracker(cfg, tmp_path, "r", {"a": 1}, manifest, is_rank_zero=True)
    tracker.log_examples(split, manifest, tokenizer.decode)
    tracker.finish()
    tables = list((tmp_path / "wandb").rglob("*.table.json"))
    assert len(tables) == 1
    table = tables[0].read_text()
    shown = dataset_examples(split, manifest, tokenizer.decode, limit=3)
    assert all(e["sample_id"] in table for e in shown)
    written = _all_text(tmp_path)
    restricted = _restricted_texts(split, manifest, tokenizer)
    assert restricted and not any(text in written for text in restricted)
    assert "bioasq_yesno/" not in table

"""The data build end to end: cache, determinism, manifest, leakage, bad input leaves nothing behind."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from biotune import config
from biotune.data.build import build_dataset
from biotune.data.cache import HASH_MEMO, FileHashes, cache_key, file_signature
from biotune.data.dataset import Manifest
from biotune.errors import ConfigError, DataError
from biotune.sources import resolve_root

REPO = Path(__file__).resolve().parents[3]


def _cfg(tmp_path: Path, tiny_model: Path, *overrides: str) -> config.RunConfig:
    return config.load(
        REPO / "configs/data/sample.yaml",
        [f"data.tokenizer={tiny_model}", f"data.out_dir={tmp_path / 'out'}", *overrides],
    )


def _files(d: Path) -> dict[str, bytes]:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def test_sample_build_manifest_and_cache(
    tmp_path: Path, tiny_model: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from datasets import load_from_disk

    cfg = _cfg(tmp_path, tiny_model, "data.eval_fraction=0.1")
    out = build_dataset(cfg)
    m = Manifest.read(out).to_dict()
    assert m["template"] == "medtuned" and m["tokenizer_fingerprint"]
    ncbi = m["sources"]["ncbi_disease"]
    assert ncbi["realised"] == ncbi["requested"] == 2 * ncbi["available"] > 0
    assert m["sources"]["gad"]["licence"]
    assert m["packing"]["efficiency"] > 0.5
    assert m["totals"]["samples_kept"] + m["truncation"]["dropped"] == m["totals"]["samples_mixed"]
    ds = load_from_disk(str(out / "train"))
    row = ds[0]
    assert len(row["input_ids"]) == len(row["labels"]) == len(row["position_ids"]) == row["num_tokens"]
    assert sum(row["seq_lens"]) == row["num_tokens"] and len(row["sample_ids"]) == len(row["seq_lens"])
    starts = [i for i, p in enumerate(row["position_ids"]) if p == 0]
    assert len(starts) == len(row["seq_lens"]), "position_ids restart at 0 for every packed sequence"
    assert (out / "eval").is_dir() and m["heldout"]["samples"] > 0
    all_ids = [i for ids in ds["sample_ids"] for i in ids]
    assert len(all_ids) == len(set(all_ids)) == m["totals"]["samples_kept"]

    caplog.set_level("INFO")
    assert build_dataset(cfg) == out
    assert "cache hit" in caplog.text

    other = build_dataset(_cfg(tmp_path / "second", tiny_model, "data.eval_fraction=0.1"))
    assert other.name == out.name
    assert _files(other) == _files(out), "same config -> byte-identical output"
    changed = build_dataset(_cfg(tmp_path, tiny_model, "data.eval_fraction=0.1", "data.seed=99"))
    assert changed != out


def test_stats_command_prints_the_composition(tmp_path: Path, tiny_model: Path) -> None:
    out = build_dataset(_cfg(tmp_path, tiny_model))
    proc = subprocess.run(
        [sys.executable, "-m", "biotune.cli", "data", "stats", str(out)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "ncbi_disease" in proc.stdout and "realised" in proc.stdout and "token lengths" in proc.stdout


def test_leakage_is_detected_and_fatal_when_configured(tmp_path: Path, tiny_model: Path) -> None:
    # The bundled sample, like the real corpus (tests/integration/data/test_build_real.py): BC5CDR's chemical and
    # disease files share their sentences, so training on the chemical test split leaks the disease test split.
    def cfg(out: Path, mode: str) -> config.RunConfig:
        return config.load(
            None,
            [
                "data.root=@sample",
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
    assert leak["checked"]["bc5cdr_disease/test"] == 7
    assert leak["exact"]["bc5cdr_disease/test"] == 7, leak
    assert "bc5cdr_chem/test" not in leak["checked"], "a source's own training split is not an eval split"
    with pytest.raises(DataError, match="overlap"):
        build_dataset(cfg(tmp_path / "err", "error"))
    assert not (tmp_path / "err").exists() or not any((tmp_path / "err").iterdir())


def test_bad_input_names_the_problem_and_writes_nothing(tmp_path: Path, tiny_model: Path) -> None:
    with pytest.raises(ConfigError, match="unknown source"):
        build_dataset(_cfg(tmp_path, tiny_model, "data.sources.ncbi_diseas={}"))
    with pytest.raises(ConfigError, match="no split"):
        build_dataset(_cfg(tmp_path, tiny_model, "data.sources.gad.split=devel"))
    root = tmp_path / "corpus"
    shutil.copytree(resolve_root("@sample"), root)
    bad = root / "ncbi_disease" / "iob" / "train.tsv"
    lines = bad.read_text().splitlines()
    n = next(
        i for i, line in enumerate(lines) if i >= 3 and line.strip() and not line.startswith("-DOCSTART-")
    )
    lines[n] = lines[n].split("\t")[0]  # a token without its tag column
    bad.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError) as info:
        build_dataset(_cfg(tmp_path, tiny_model, f"data.root={root}"))
    assert f"{bad}:{n + 1}" in str(info.value)
    out_dir = tmp_path / "out"
    assert not out_dir.exists() or not [p for p in out_dir.iterdir()]


def test_cli_build_failure_exits_nonzero(tmp_path: Path, tiny_model: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "biotune.cli",
            "data",
            "build",
            str(REPO / "configs/data/sample.yaml"),
            f"data.tokenizer={tiny_model}",
            f"data.out_dir={tmp_path / 'out'}",
            "data.sources.nope.weight=1",
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and "data.sources.nope" in proc.stderr
    manifest = list((tmp_path / "out").rglob("manifest.json")) if (tmp_path / "out").exists() else []
    assert manifest == []


def test_published_instruction_files_join_the_mixture(tmp_path: Path, tiny_model: Path) -> None:
    rows = [
        {
            "instruction": "Answer the medical question.",
            "input": f"What treats condition {i}?",
            "output": f"Drug {i}.",
            "source": "chatdoctor",
        }
        for i in range(12)
    ]
    path = tmp_path / "instructions.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = build_dataset(_cfg(tmp_path, tiny_model, f"data.instructions.chat.path={path}"))
    m = Manifest.read(out).to_dict()
    chat = m["sources"]["chatdoctor"]
    assert (chat["available"], chat["realised"], chat["group"]) == (12, 12, "instruction")
    # No licence declared: the rows count as restricted, so they are never uploaded.
    assert chat["restricted"] is True and "not declared" in chat["licence"]
    assert "chatdoctor" not in Manifest.read(out).unrestricted_sources()
    declared = build_dataset(
        _cfg(
            tmp_path,
            tiny_model,
            f"data.instructions.chat.path={path}",
            "data.instructions.chat.licence=CC BY 4.0",
            "data.instructions.chat.restricted=false",
        )
    )
    chat = Manifest.read(declared).to_dict()["sources"]["chatdoctor"]
    assert (chat["licence"], chat["restricted"]) == ("CC BY 4.0", False)
    assert "chatdoctor" in Manifest.read(declared).unrestricted_sources()
    assert m["tasks"]["instruction"]["realised"] == 12
    assert "ncbi_disease" in m["sources"]


def test_build_leaves_the_callers_config_as_it_was(tmp_path: Path, tiny_model: Path) -> None:
    # Before: the build added each instruction set's `source` values to cfg.data.sources, so the config.yaml
    # that `biotune train` saves (train.run._save_resolved_config) listed them as corpora, and reloading it
    # (or building again from the same config) failed with "unknown source".
    from biotune.train.checkpoint import CONFIG_FILE
    from biotune.train.run import _save_resolved_config

    rows = [
        {
            "instruction": "Answer.",
            "input": f"Question {i}?",
            "output": f"Answer {i}.",
            "source": "chatdoctor",
        }
        for i in range(6)
    ]
    path = tmp_path / "instructions.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = _cfg(tmp_path, tiny_model, f"data.instructions.chat.path={path}")
    before = config.to_yaml(cfg)
    out = build_dataset(cfg)
    assert config.to_yaml(cfg) == before and "chatdoctor" not in cfg.data.sources
    assert Manifest.read(out).to_dict()["sources"]["chatdoctor"]["realised"] == 6
    assert "chatdoctor" not in Manifest.read(out).config["sources"]
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    _save_resolved_config(cfg, run_dir)
    reloaded = config.load(run_dir / CONFIG_FILE)
    assert config.to_yaml(reloaded) == before
    assert build_dataset(reloaded) == build_dataset(cfg) == out


# ------------------------------------------------------------------------------------------- cache key


def _same_size_other_content(path: Path) -> None:
    """Rewrite ``path`` with different bytes of the same length and the same mtime (ns)."""
    st = path.stat()
    text = path.read_text(encoding="utf-8")
    i = next(i for i, c in enumerate(text) if c.isalpha())
    path.write_text(text[:i] + ("X" if text[i] != "X" else "Y") + text[i + 1 :], encoding="utf-8")
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert (path.stat().st_size, path.stat().st_mtime_ns) == (st.st_size, st.st_mtime_ns)


def test_corpora_with_equal_sizes_and_mtimes_are_different_builds(tmp_path: Path, tiny_model: Path) -> None:
    # Before: the key held sizes and whole-second mtimes, so the second corpus got the first one's dataset.
    root = tmp_path / "corpus"
    shutil.copytree(resolve_root("@sample"), root)
    one = ["data.sources={ncbi_disease: {}}", f"data.root={root}"]
    first = build_dataset(_cfg(tmp_path, tiny_model, *one))
    first_files = _files(first)
    _same_size_other_content(root / "ncbi_disease" / "iob" / "train.tsv")
    second = build_dataset(_cfg(tmp_path, tiny_model, *one))
    assert second != first, "same size and mtime, other content: a new build, not a cache hit"
    assert _files(second)["train/data-00000-of-00001.arrow"] != first_files["train/data-00000-of-00001.arrow"]
    copy = tmp_path / "copy"
    shutil.copytree(root, copy)
    assert (
        build_dataset(_cfg(tmp_path, tiny_model, "data.sources={ncbi_disease: {}}", f"data.root={copy}"))
        != second
    )


def test_file_hashes_are_memoised_by_size_and_times_in_ns(tmp_path: Path) -> None:
    f = tmp_path / "a.tsv"
    f.write_text("one\n")
    memo = FileHashes(tmp_path / "out")
    real = memo.digest(f)
    memo.save()
    saved = json.loads((tmp_path / "out" / HASH_MEMO).read_text())
    assert saved[str(f.resolve())][1] == real
    saved[str(f.resolve())][1] = "memoised"
    (tmp_path / "out" / HASH_MEMO).write_text(json.dumps(saved))
    assert FileHashes(tmp_path / "out").digest(f) == "memoised", "an unchanged file is not read again"
    os.utime(f, ns=(f.stat().st_atime_ns, f.stat().st_mtime_ns + 1))
    assert FileHashes(tmp_path / "out").digest(f) == real, "a touched file is hashed again"
    (tmp_path / "out" / HASH_MEMO).write_text("{broken")
    assert FileHashes(tmp_path / "out").digest(f) == real, "a damaged memo is ignored"


def test_source_order_is_part_of_the_key_because_it_changes_the_mixture(tmp_path: Path) -> None:
    from biotune.data import mixture
    from biotune.sources.records import Sample

    forward = config.load(None, ["data.root=@sample", "data.sources={gad: {}, hoc: {}}"]).data
    backward = config.load(None, ["data.root=@sample", "data.sources={hoc: {}, gad: {}}"]).data
    root = resolve_root("@sample")
    memo = FileHashes(tmp_path)
    assert cache_key(forward, root, "tok", memo) != cache_key(backward, root, "tok", memo)
    samples = {
        n: [
            Sample(id=f"{n}/train/{i}", source=n, task="re", instruction="i", input=str(i), output="o")
            for i in range(20)
        ]
        for n in ("gad", "hoc")
    }
    kinds = {"gad": "re", "hoc": "cls"}
    ids = [[s.id for s in mixture.compose(samples, d, kinds)[0]] for d in (forward, backward)]
    assert ids[0] != ids[1], "compose concatenates sources in config order before its seeded shuffle"


def test_built_directories_respect_the_umask(tmp_path: Path, tiny_model: Path) -> None:
    # Before: mkdtemp's 0700 became the dataset directory's mode, unreadable for a lab sharing the cache.
    old = os.umask(0o022)
    try:
        out = build_dataset(_cfg(tmp_path, tiny_model, "data.sources={gad: {}}"))
    finally:
        os.umask(old)
    assert stat.S_IMODE(out.stat().st_mode) == 0o755


def test_the_key_follows_every_file_of_a_split_folder_through_links(tmp_path: Path) -> None:
    """HoC reads a folder: a file changed below it, in a linked subfolder too, is a new key; a link cycle
    is listed once; the three splits that share the folder each list its files."""
    from biotune.sources import SOURCES

    root = tmp_path / "corpus"
    shutil.copytree(resolve_root("@sample") / "hoc", root / "hoc")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "extra.txt").write_text("one")
    (root / "hoc" / "linked").symlink_to(elsewhere, target_is_directory=True)
    (elsewhere / "loop").symlink_to(root / "hoc", target_is_directory=True)
    data = config.load(None, [f"data.root={root}", "data.sources={hoc: {}}"]).data
    before = cache_key(data, root, "tok", FileHashes(tmp_path / "memo"))
    sig = file_signature(root, [SOURCES["hoc"]], FileHashes(tmp_path / "memo"))
    names = [name for source, split, name, _ in sig if split == "train"]
    assert "hoc/linked/extra.txt" in names and len(names) == len(set(names))
    assert {split for _, split, _, _ in sig} == set(SOURCES["hoc"].split_names)
    (elsewhere / "extra.txt").write_text("two")
    assert cache_key(data, root, "tok", FileHashes(tmp_path / "memo")) != before

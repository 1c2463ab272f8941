"""``data.num_proc``: a parallel build writes the same bytes as a serial one, and really runs in workers.

Each test builds one config twice, with ``data.num_proc=1`` and ``data.num_proc=2``, into two cache
directories and compares every file written (the shards, the manifest, the file-hash memo) byte for byte. The
worker processes are observed through the build's own log record, which names the processes that ran the reads
and tokenization chunks. Errors raised in a worker come back as the serial build's error.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from biotune import config
from biotune.data import synthetic
from biotune.data.build import build_dataset
from biotune.data.dataset import Manifest
from biotune.errors import DataError

REPO = Path(__file__).resolve().parents[3]


def _files(d: Path) -> dict[str, bytes]:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def _worker_pids(caplog: pytest.LogCaptureFixture) -> set[int]:
    """The processes that the build's log names as having run its reads and tokenization chunks."""
    pids: set[int] = set()
    for rec in caplog.records:
        if rec.name == "biotune.data.build" and rec.msg.startswith("data.num_proc="):
            pids |= {int(p) for p in str(rec.args[1]).split(", ")}
    return pids


def _build_both(tmp_path: Path, base: str | Path, *overrides: str) -> tuple[Path, Path]:
    outs = []
    for num_proc in (1, 2):
        cfg = config.load(
            base, [f"data.out_dir={tmp_path / f'out{num_proc}'}", f"data.num_proc={num_proc}", *overrides]
        )
        outs.append(build_dataset(cfg))
    return outs[0], outs[1]


def _assert_same_bytes(serial: Path, parallel: Path) -> None:
    assert parallel.name == serial.name, "num_proc is not part of the cache key"
    a, b = _files(serial.parent), _files(parallel.parent)
    assert sorted(a) == sorted(b)
    assert [k for k in a if a[k] != b[k]] == [], "every file written is byte-identical"


def test_parallel_build_is_byte_identical_and_runs_in_two_workers(
    tmp_path: Path, tiny_model: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Synthetic corpora large enough that each tokenization chunk is real work: 20,000 distinct samples.
    root = synthetic.write_corpora(tmp_path / "corpus", n_train=10_000, n_test=500)
    base = _write_config(tmp_path, root, tiny_model, "  eval_fraction: 0.05\n  total_samples: 30000\n")
    caplog.set_level("INFO", logger="biotune.data.build")
    serial, parallel = _build_both(tmp_path, base)
    _assert_same_bytes(serial, parallel)
    m = Manifest.read(parallel)
    assert m.heldout and m.heldout["samples"] > 0 and m.leakage and sum(m.leakage["checked"].values()) == 1000
    pids = _worker_pids(caplog)
    assert len(pids) == 2 and os.getpid() not in pids, (
        f"num_proc=2 ran in {pids} (this process: {os.getpid()})"
    )


@pytest.mark.parametrize(
    "overrides",
    [
        ("data.eval_fraction=0.1", "data.total_samples=20000"),
        ("data.pack=false", "data.truncation=truncate", "data.max_seq_len=96"),
        ("data.truncation=drop", "data.max_seq_len=200", "data.leakage=off"),
    ],
    ids=["packed-heldout-leakage", "unpacked-truncated", "dropped"],
)
def test_parallel_build_of_the_sample_is_byte_identical(
    tmp_path: Path, tiny_model: Path, overrides: tuple[str, ...]
) -> None:
    serial, parallel = _build_both(
        tmp_path, REPO / "configs/data/sample.yaml", f"data.tokenizer={tiny_model}", *overrides
    )
    _assert_same_bytes(serial, parallel)
    m = Manifest.read(parallel)
    if "data.truncation=truncate" in overrides:  # samples cut and dropped inside the chunks
        assert m.truncation["truncated"] > 0 and m.truncation["dropped"] > 0
    if "data.truncation=drop" in overrides:
        assert m.truncation["dropped"] > 0


def _write_config(tmp_path: Path, root: Path, tiny_model: Path, extra: str = "") -> Path:
    path = tmp_path / "build.yaml"
    path.write_text(
        f"data:\n  root: {root}\n  tokenizer: {tiny_model}\n  max_seq_len: 256\n"
        f"  sources:\n    synthetic_ner: {{}}\n    synthetic_re: {{weight: 2.0}}\n{extra}"
    )
    return path


def test_an_error_in_a_worker_is_the_serial_builds_error(tmp_path: Path, tiny_model: Path) -> None:
    root = synthetic.write_corpora(tmp_path / "corpus", n_train=50, n_test=10)
    bad = root / "synthetic_re" / "train.tsv"
    lines = bad.read_text().splitlines()
    lines[7] = "no tabs on this line"
    bad.write_text("\n".join(lines) + "\n")
    base = _write_config(tmp_path, root, tiny_model)
    messages = []
    for num_proc in (1, 2):
        out = tmp_path / f"out{num_proc}"
        cfg = config.load(base, [f"data.out_dir={out}", f"data.num_proc={num_proc}"])
        with pytest.raises(DataError) as caught:
            build_dataset(cfg)
        assert caught.value.path == str(bad) and caught.value.line == 8
        messages.append(str(caught.value))
        assert list(out.rglob("*")) == [], "a failed build leaves nothing behind"
    assert messages[0] == messages[1]

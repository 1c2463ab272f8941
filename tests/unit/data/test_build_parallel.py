"""``data.num_proc``: a parallel build writes the same bytes as a serial one, and really runs in workers.

Each test builds one config twice, with ``data.num_proc=1`` and ``data.num_proc=2``, into two cache
directories and compares every file written (the shards, the manifest, the file-hash memo) byte for byte. The
worker processes are observed through the build's own log record, which names the processes that ran the reads
and tokenization chunks. Errors raised in a worker come back as the serial build's error.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from biotune import config
from biotune.data import synthetic
from biotune.data.build import build_dataset
from biotune.data.dataset import Manifest
from biotune.data.packing import pack_rows, rows_to_arrow
from biotune.errors import EXIT_PREEMPTED, DataError

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
        # some samples of ncbi_disease and bc5cdr_disease are dropped; hoc (all over 512 tokens) would lose all
        (
            "data.truncation=drop",
            "data.max_seq_len=360",
            "data.sources.hoc.include=false",
            "data.leakage=off",
        ),
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


def test_rows_to_arrow_of_packed_views_equals_the_copied_rows() -> None:
    # pack_rows' token columns are consecutive views of one array each: rows_to_arrow takes them without a copy.
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 40, size=300)
    ids = [rng.integers(0, 500, n).astype(np.int32) for n in lengths]
    labels = [
        np.where(rng.random(n) < 0.3, -100, x).astype(np.int32) for n, x in zip(lengths, ids, strict=True)
    ]
    rows = pack_rows(ids, labels, [f"s{i}" for i in range(len(ids))], 64)
    copied = [{k: (np.array(v) if isinstance(v, np.ndarray) else v) for k, v in r.items()} for r in rows]
    assert rows_to_arrow(rows).equals(rows_to_arrow(copied))
    assert rows_to_arrow(rows[3:9]).equals(rows_to_arrow(copied[3:9]))
    assert rows_to_arrow(rows[::2]).equals(rows_to_arrow(copied[::2])), "non-adjacent views are copied"


def _write_config(tmp_path: Path, root: Path, tiny_model: Path, extra: str = "") -> Path:
    path = tmp_path / "build.yaml"
    path.write_text(
        # synthetic_ner samples are 256-438 tokens with the tiny tokenizer: 512 keeps them (a build that drops a
        # whole source stops)
        f"data:\n  root: {root}\n  tokenizer: {tiny_model}\n  max_seq_len: 512\n"
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


def _children(pid: int) -> set[int]:
    """The live child processes of ``pid`` (Linux ``/proc``)."""
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return {int(c) for c in path.read_text().split()} if path.is_file() else set()


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")  # a zombie has exited


@pytest.mark.slow
def test_sigterm_during_a_parallel_build_exits_75_and_stops_its_workers(
    tmp_path: Path, tiny_model: Path
) -> None:
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "biotune.cli",
            "data",
            "build",
            str(REPO / "configs/data/sample.yaml"),
            f"data.tokenizer={tiny_model}",
            "data.out_dir=cache",
            "data.leakage=off",
            "data.total_samples=200000",
            "data.num_proc=2",
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    cache = tmp_path / "cache"
    while not (cache.is_dir() and list(cache.glob(".*.tmp-*"))):  # the workers are up: reading is done
        assert proc.poll() is None, f"the build ended before writing: {proc.communicate()[1][-3000:]}"
        time.sleep(0.02)
    workers = _children(proc.pid)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == EXIT_PREEMPTED, err[-3000:]
    assert "interrupted by SIGTERM" in err and "Traceback" not in err
    assert not cache.exists(), "the temporary directory (and the cache directory it made) are removed"
    assert len(workers) >= 2, f"the parallel build had worker processes: {workers}"
    deadline = time.monotonic() + 120  # a guard against a hang, not a measurement
    while any(_running(pid) for pid in workers):  # the resource tracker ends once its pipe closes
        assert time.monotonic() < deadline, f"still running: {[p for p in workers if _running(p)]}"
        time.sleep(0.05)


def _tokenizer_threads_setting() -> str | None:
    return os.environ.get("TOKENIZERS_PARALLELISM")


def test_workers_encode_on_one_thread_unless_the_user_chose(
    tiny_tokenizer: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two workers on two cores: each encodes on one thread; a user's explicit setting is kept."""
    from biotune.data.build import _Job, open_runner

    for setting, expected in ((None, "false"), ("true", "true")):
        if setting is None:
            monkeypatch.delenv("TOKENIZERS_PARALLELISM", raising=False)
        else:
            monkeypatch.setenv("TOKENIZERS_PARALLELISM", setting)
        with open_runner(2, tiny_tokenizer) as runner:
            jobs = [_Job(runner, _tokenizer_threads_setting, ()) for _ in range(4)]
            assert {job.result() for job in jobs} == {expected}
            assert os.getpid() not in runner.pids
        assert os.environ.get("TOKENIZERS_PARALLELISM") == setting, "this process's setting is left alone"

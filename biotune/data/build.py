"""The data build: sources -> tasks -> mixture -> tokenize (prompt-masked) -> pack -> Arrow on disk + manifest.

``build_dataset(cfg)`` is the one entry point (``biotune data build`` and the trainer call it). The output
directory is ``data.out_dir/<cache key>/`` where the key hashes the data config (with the sources in their
config order, which the mixture depends on), the resolved ``data.root``, the tokenizer's fingerprint, the
template, a SHA-256 of every source file's content and :data:`BUILD_VERSION`; a rerun with the same inputs is a
cache hit. File hashes are memoised in ``data.out_dir/.file_hashes.json`` by path, size, mtime and ctime in ns
(and inode), so unchanged files are not read again. The build writes into a temporary sibling directory
(``.<key>.tmp-<pid>@<host>-*``) and renames it at the end, so a failed build leaves nothing half-written;
SIGTERM during a build removes it and exits 75 (rerun to build again), and the next build removes the
temporary directories of builds that were killed.

``data.num_proc > 1`` reads the training splits, tokenizes the distinct samples in contiguous chunks and runs
the leakage check (which reads the evaluation splits) in a pool of that many worker processes; the results are
put back in input order, so every file written is byte-identical to ``num_proc=1`` (which is why ``num_proc`` is
not in the cache key). The workers are *spawned*, not forked: the build also runs inside ``biotune train``,
where torch, DeepSpeed and their threads (OpenMP, NCCL, the tokenizers' Rayon pool) live, and forking a
threaded process can deadlock on a lock another thread held; a spawned worker imports only the data modules
(~0.2 s). Each worker rebuilds the tokenizer once, from the JSON of the parent's Rust backend
(:class:`biotune.data.tokenize.BackendTokenizer`: the fingerprinted tokenizer itself, no hub lookup, no remote
code), and encodes on one thread unless ``TOKENIZERS_PARALLELISM`` says otherwise. Workers ignore SIGINT and
SIGTERM; on any error or signal the parent kills them before it cleans up, and a worker that dies is a
DataError, never a hang (:class:`_WorkerPool`). The leakage check is queued after the tokenization chunks: a
worker runs it while the parent packs (a serial build checks before it tokenizes, so an overlap under
``data.leakage=error`` fails early). A spawned worker imports the main module, so a script that builds with
``num_proc > 1`` must do it under ``if __name__ == "__main__":``. Objects cross between the build and its own
workers by pickle (multiprocessing's transport); nothing read from disk is ever unpickled.

Memory: the cyclic garbage collector is paused for the build (:func:`gc_paused`), a serial build tokenizes in
chunks of :data:`biotune.data.tokenize.ENCODE_CHUNK` samples (small temporaries, reused), and packing reads the
chunks' token arrays where they lie (:class:`biotune.data.tokenize.ChunkedBatch`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import hashlib
import json
import logging
import os
import re
import shutil
import signal
import socket
import statistics
import tempfile
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from biotune import __version__
from biotune.config import DataConfig, RunConfig, SourceMix
from biotune.data import leakage, mixture
from biotune.data.dataset import MANIFEST_FILE, Manifest, SourceEntry
from biotune.data.records import Sample, base_id, sample_id
from biotune.errors import EXIT_PREEMPTED, BiotuneError, ConfigError, DataError, Problem
from biotune.io import atomic_write_json, swap_in_dir

logger = logging.getLogger(__name__)

#: Bump when the build's output for the same inputs changes (tasks, templates, tokenization, packing).
BUILD_VERSION = "1"


# ----------------------------------------------------------------------------------------------- inputs


def resolve_root(root: str) -> Path:
    """``data.root`` as an existing directory (``@sample`` = the corpus bundled inside the package)."""
    from biotune.data import sources

    path = sources.resolve_root(root).expanduser().resolve()
    if not path.is_dir():
        raise ConfigError(
            [
                Problem(
                    "data.root",
                    f"{path} is a file, not a directory of corpora"
                    if path.exists()
                    else f"directory {path} does not exist",
                    "point data.root (or $BIOTUNE_DATA_DIR) at the directory holding the corpora, or use "
                    "data.root=@sample",
                )
            ]
        )
    return path


def tokenizer_path(cfg: RunConfig) -> str:
    """The tokenizer to build with: ``data.tokenizer``, else the model's."""
    path = cfg.data.tokenizer or cfg.model.name_or_path
    if not path:
        raise ConfigError(
            [
                Problem(
                    "data.tokenizer",
                    "no tokenizer given (data.tokenizer and model.name_or_path are empty)",
                    "set data.tokenizer=PATH_OR_HUB_ID or model.name_or_path",
                )
            ]
        )
    return path


def load_tokenizer(path: str, trust_remote_code: bool = False) -> Any:
    """Load a (fast) tokenizer from a local directory or hub id, with a clear error if it is missing."""
    from transformers import AutoTokenizer

    local = Path(path).expanduser()
    # A path under an existing local directory (runs/tiny_llama while runs/ exists) is never sent to the hub.
    looks_local = path.startswith((".", "/", "~")) or local.exists() or Path(local.parts[0]).is_dir()
    if looks_local and not local.is_dir():
        raise ConfigError(
            [
                Problem(
                    "data.tokenizer",
                    f"tokenizer directory {local} does not exist",
                    "build or export a model first, or point data.tokenizer at a directory",
                )
            ]
        )
    try:
        return AutoTokenizer.from_pretrained(
            str(local) if local.is_dir() else path, trust_remote_code=trust_remote_code
        )
    except (OSError, ValueError) as err:
        raise ConfigError(
            [
                Problem(
                    "data.tokenizer",
                    f"cannot load a tokenizer from {path}: {err}",
                    "pass a directory with tokenizer files, or a reachable hub id",
                )
            ]
        ) from err


def _spec(name: str, data: DataConfig) -> Any:
    """The spec of a source named in ``data`` (registered, or declared in ``data.custom_sources``)."""
    from biotune.data.sources import UnknownSourceError, catalog

    known = catalog(data)
    if name not in known:
        raise ConfigError([Problem(f"data.sources.{name}", "unknown source", UnknownSourceError(name).fix)])
    return known[name]


#: The memo of file hashes, under ``data.out_dir`` (path -> [[size, mtime_ns, ctime_ns, inode], sha256]).
HASH_MEMO = ".file_hashes.json"


class FileHashes:
    """SHA-256 of files, memoised in ``out_dir/.file_hashes.json`` by resolved path and (size, st_mtime_ns,
    st_ctime_ns, inode): the ctime changes on every write and cannot be set back, so a rewrite that keeps the
    size and restores the mtime (``cp -p``, ``rsync -t``, ``tar``) is still hashed again."""

    def __init__(self, out_dir: str | Path) -> None:
        self.path = Path(out_dir) / HASH_MEMO
        self.memo: dict[str, list[Any]] = {}
        self.dirty = False
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
            self.memo = (
                {k: v for k, v in raw.items() if isinstance(v, list) and len(v) == 2}
                if isinstance(raw, dict)
                else {}
            )
        except (OSError, ValueError):  # no memo yet, or a damaged one: hash again and rewrite it
            self.memo = {}

    def digest(self, path: Path, resolved: bool = False) -> str:
        """The file's SHA-256, read again only when its size or mtime (ns) changed. ``resolved``: the caller
        passes a path with no links in it (the memo is keyed by resolved paths)."""
        path = path if resolved else path.resolve()
        st = path.stat()
        stamp = [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]
        known = self.memo.get(str(path))
        if known and known[0] == stamp:
            return str(known[1])
        sha = hashlib.sha256()
        with path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                sha.update(block)
        self.memo[str(path)] = [stamp, sha.hexdigest()]
        self.dirty = True
        return sha.hexdigest()

    def save(self) -> None:
        """Write the memo (atomically) if a hash was added; a read-only cache directory is not an error."""
        if not self.dirty:
            return
        try:
            atomic_write_json(self.path, self.memo, indent=None)
            self.dirty = False
        except OSError as err:
            logger.warning("cannot write the file-hash memo %s: %s", self.path, err)


def _file_signature(root: Path, specs: list[Any], hashes: FileHashes) -> list[list[Any]]:
    """[source, split, file relative to root, sha256] for every file a source split reads (its siblings too:
    a split file's whole folder, a split folder's whole tree). Splits that share a folder (HoC's three) list
    and hash it once."""
    from biotune.data.sources import available_splits

    sig: list[list[Any]] = []
    listed: dict[tuple[Path, bool], list[tuple[str, str]]] = {}
    for spec in specs:
        found = available_splits(spec, root)
        for split in sorted(spec.split_names):
            path = found.get(split)
            if path is None:
                sig.append([spec.name, split, str(spec.candidates(split)[0]), "missing"])
                continue
            tree = (path if path.is_dir() else path.parent, path.is_dir())
            if tree not in listed:
                base = _relative(tree[0], root)
                listed[tree] = [
                    (
                        "/".join(parts if base == "." else (base, *parts)),
                        hashes.digest(Path(real), resolved=True),
                    )
                    for parts, real in _files(*tree)
                ]
            sig.extend([spec.name, split, name, digest] for name, digest in listed[tree])
    return sig


def _files(folder: Path, recursive: bool) -> list[tuple[tuple[str, ...], str]]:
    """The files in ``folder`` (and, if ``recursive``, below it, following links to folders once each), as
    (path parts under ``folder``, resolved path), sorted by those parts. One directory scan per folder: the
    kind of each entry comes from the scan itself."""
    out: list[tuple[tuple[str, ...], str]] = []
    seen: set[str] = set()

    def scan(parts: tuple[str, ...], real: str) -> None:
        if real in seen:  # a link back up the tree
            return
        seen.add(real)
        with os.scandir(real) as entries:
            for entry in entries:
                path = os.path.realpath(entry.path) if entry.is_symlink() else entry.path
                if entry.is_file():
                    out.append(((*parts, entry.name), path))
                elif recursive and entry.is_dir():
                    scan((*parts, entry.name), path)

    scan((), os.path.realpath(folder))
    return sorted(out)


def _relative(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` where it lies under it (a declared source's file may lie anywhere)."""
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path.resolve())


def instruction_digest(ref: str, hashes: FileHashes) -> str:
    """The content of an instruction set: a file's SHA-256, a ``save_to_disk`` folder's files' hashes
    combined, or a note for a hub id (whose revision is not pinned)."""
    local = Path(ref).expanduser()
    if local.is_file():
        return hashes.digest(local)
    if local.is_dir():
        parts = [f"{_relative(f, local)}:{hashes.digest(f)}" for f in sorted(local.rglob("*")) if f.is_file()]
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()
    return "hub dataset (revision not pinned)"


#: DataConfig fields that do not change what a build writes (where it goes, how many processes make it).
NOT_DATA = ("out_dir", "num_proc")


def data_settings(cfg: DataConfig) -> dict[str, Any]:
    """The data config without :data:`NOT_DATA`: what a build's output depends on, besides the files."""
    data = dataclasses.asdict(cfg)
    for key in NOT_DATA:
        data.pop(key, None)
    return data


def cache_key(cfg: DataConfig, root: Path, fingerprint: str, hashes: FileHashes | None = None) -> str:
    """Hash of everything that determines the build's output.

    ``root`` is the resolved ``data.root``; files are identified by their content (``hashes``, a memo under
    ``data.out_dir`` when not given). The sources keep their config order: :func:`biotune.data.mixture.compose`
    concatenates them in that order before its seeded shuffle, so reordering them changes the mixture.
    """
    hashes = hashes or FileHashes(cfg.out_dir)
    data = data_settings(cfg)
    for identified_elsewhere in ("root", "tokenizer"):  # by the resolved root and the tokenizer's fingerprint
        data.pop(identified_elsewhere, None)
    specs = [_spec(n, cfg) for n, m in cfg.sources.items() if m.include]
    instruction_files = [
        [name, one.path, one.split, instruction_digest(one.path, hashes)]
        for name, one in cfg.instructions.items()
    ]
    payload = {
        "data": data,
        "source_order": list(cfg.sources),
        "root": str(root.resolve()),
        "tokenizer": fingerprint,
        "version": BUILD_VERSION,
        "files": _file_signature(root, specs, hashes),
        "instruction_files": instruction_files,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


# ----------------------------------------------------------------------------------------------- temporary dirs

#: ``.<key>.tmp-<pid>@<host>-<random>``: a build's temporary directory, named after the process writing it.
_TMP_NAME = re.compile(r"^\.(?P<key>[0-9a-f]+)\.tmp-(?:(?P<pid>\d+)@(?P<host>.+)-)?[a-z0-9_]+$")
#: A temporary directory from another machine (or of unknown owner) is stale after this long untouched.
STALE_AFTER_S = 24 * 3600


def _tmp_prefix(key: str) -> str:
    return f".{key}.tmp-{os.getpid()}@{socket.gethostname()}-"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def clean_stale_tmp(out_dir: Path) -> list[Path]:
    """Remove temporary build directories left by killed builds; returns what was removed.

    Stale: written by a process of this host that is gone, or (another host, or an unknown owner) untouched for
    :data:`STALE_AFTER_S`. A live build's directory is never touched.
    """
    removed: list[Path] = []
    if not out_dir.is_dir():
        return removed
    host = socket.gethostname()
    for path in out_dir.iterdir():
        found = _TMP_NAME.match(path.name)
        if not found or not path.is_dir():
            continue
        if found["pid"] and found["host"] == host:
            stale = not _pid_alive(int(found["pid"]))
        else:
            try:
                stale = time.time() - path.stat().st_mtime > STALE_AFTER_S
            except OSError:
                continue
        if stale:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
            logger.info("removed %s, the temporary directory of a build that was killed", path)
    return removed


@contextmanager
def gc_paused() -> Iterator[None]:
    """The cyclic garbage collector off for the block (back on after it, if it was on).

    A build makes millions of container objects (samples, records, the id lists of each encode chunk) and frees
    them by reference counting; meanwhile every full collection would walk all of them again, about a tenth of
    a cold build's time (benchmarks/data_build.py). The few reference cycles made meanwhile are collected
    after it.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class BuildInterrupted(SystemExit):
    """SIGTERM during a build: the temporary directory is removed and the command exits 75 (rerun to build)."""

    def __init__(self) -> None:
        super().__init__(EXIT_PREEMPTED)


@contextmanager
def _sigterm_raises() -> Iterator[None]:
    """While building, SIGTERM raises :class:`BuildInterrupted` (so cleanup runs) instead of killing the process.

    Only in the main thread (where Python delivers signals); the previous handler comes back afterwards.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupted(signum: int, frame: Any) -> None:
        logger.error("data build interrupted by SIGTERM: nothing was written; run the command again to build")
        raise BuildInterrupted()

    previous = signal.signal(signal.SIGTERM, interrupted)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


# ----------------------------------------------------------------------------------------------- workers

#: Tokenization chunks per worker process: enough to even out the load, few enough that each is a large batch.
CHUNKS_PER_WORKER = 4

#: The tokenizer of a worker process, built once by :func:`_init_worker`.
_WORKER_TOKENIZER: Any = None


class _RaisedInWorker:
    """An exception raised in a worker, carried back by value: biotune's errors take keyword-rich constructors
    that pickle cannot call, so the class, ``args`` and attributes travel and the parent rebuilds the same error."""

    def __init__(self, err: BaseException) -> None:
        self.cls, self.args, self.state = type(err), err.args, dict(vars(err))
        self.trace = "".join(traceback.format_exception(err))

    def rebuild(self) -> BaseException:
        err = self.cls.__new__(self.cls)
        err.args = self.args
        vars(err).update(self.state)
        if not isinstance(err, BiotuneError):  # an unexpected error: keep where it happened in the worker
            err.add_note(f"raised in a data-build worker process:\n{self.trace}")
        return err


def _init_worker(backend_json: str, bos_token_id: int | None, eos_token_id: int | None) -> None:
    """A worker's start: leave SIGINT/SIGTERM to the parent (it kills the pool), build the tokenizer once."""
    from biotune.data.tokenize import BackendTokenizer

    global _WORKER_TOKENIZER
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    gc.disable()  # a worker lives for one build (see gc_paused)
    # num_proc workers share the cores: one encode thread each, unless the user chose otherwise.
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    _WORKER_TOKENIZER = BackendTokenizer(backend_json, bos_token_id, eos_token_id)


def _worker_main(conn: Any, backend_json: str, bos_token_id: int | None, eos_token_id: int | None) -> None:
    """A worker process: start, say so, then run ``(fn, args)`` jobs from ``conn`` until ``None``."""
    _init_worker(backend_json, bos_token_id, eos_token_id)
    conn.send(os.getpid())
    while (job := conn.recv()) is not None:
        fn, args = job
        conn.send(_task(fn, *args))


def _task(fn: Callable[..., Any], *args: Any) -> tuple[Any, int]:
    """Run ``fn(*args)``; return (its result, or the error it raised, by value) and this process's id."""
    try:
        return fn(*args), os.getpid()
    except Exception as err:
        return _RaisedInWorker(err), os.getpid()


def _tokenize_chunk(
    prompts: list[str], targets: list[str], max_seq_len: int, truncation: str, tokenizer: Any = None
) -> Any:
    """:func:`biotune.data.tokenize.tokenize_pairs` with the given tokenizer, or the worker's (the counts are
    logged once, for all chunks)."""
    from biotune.data.tokenize import tokenize_pairs

    return tokenize_pairs(
        prompts, targets, tokenizer or _WORKER_TOKENIZER, max_seq_len, truncation, log=False
    )


class _Job:
    """One read or tokenization chunk; :meth:`result` returns its value or raises its error, and records which
    process ran it. In the serial build it runs in this process when its result is first asked for."""

    def __init__(self, runner: Runner, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self.runner = runner
        self.future = runner.pool.submit(fn, args) if runner.pool else None
        self.call: tuple[Callable[..., Any], tuple[Any, ...]] | None = (fn, args)

    def result(self) -> Any:
        if self.future is not None:
            value, pid = self.future.result()
        else:
            assert self.call is not None, "a serial job's result is asked for once"
            fn, args = self.call
            self.call = None
            value, pid = fn(*args), os.getpid()
        self.runner.pids.add(pid)
        if isinstance(value, _RaisedInWorker):
            raise value.rebuild()
        return value


class Runner:
    """Where the build's reads and tokenization chunks run: in this process (``num_proc=1``, each when its
    result is asked for: the order of a serial build), or in a pool of spawned worker processes (see the module
    docstring). :attr:`pids` are the processes that ran them (observable: tests check that a parallel build
    really used its workers)."""

    def __init__(self, tokenizer: Any, num_proc: int = 1, pool: _WorkerPool | None = None) -> None:
        self.tokenizer = tokenizer
        self.num_proc = num_proc
        self.pool = pool
        self.pids: set[int] = set()

    def read(self, spec: Any, split: str, root: Path, ner_format: str, seed: int) -> _Job:
        """Read one source split into samples (a :class:`SplitRead`)."""
        return _Job(self, read_split, (spec, split, root, ner_format, seed))

    def leakage(self, train_texts: list[str], cfg: DataConfig, root: Path) -> _Job:
        """The leakage check of the training texts against every evaluation split (a :func:`leakage_report`)."""
        splits = _eval_splits(cfg, root)
        return _Job(self, leakage_report, (train_texts, splits, root, cfg.ner_format, cfg.seed))

    def tokenize(
        self, prompts: list[str], targets: list[str], max_seq_len: int, truncation: str
    ) -> list[_Job]:
        """Tokenize the pairs in contiguous chunks (in input order): run here one by one, or spread over the workers."""
        from biotune.data.tokenize import ENCODE_CHUNK

        if self.pool is None:  # chunks of ENCODE_CHUNK: their temporary arrays are small and reused
            step = ENCODE_CHUNK
            return [
                _Job(
                    self,
                    _tokenize_chunk,
                    (prompts[a : a + step], targets[a : a + step], max_seq_len, truncation, self.tokenizer),
                )
                for a in range(0, max(1, len(prompts)), step)
            ]
        k = max(1, min(len(prompts), self.num_proc * CHUNKS_PER_WORKER))
        bounds = [len(prompts) * i // k for i in range(k + 1)]
        return [
            _Job(self, _tokenize_chunk, (prompts[a:b], targets[a:b], max_seq_len, truncation))
            for a, b in zip(bounds[:-1], bounds[1:], strict=True)
        ]


class _WorkerDied(Exception):
    """A worker process ended without answering (killed for memory, or it could not start)."""


class _WorkerPool:
    """Spawned worker processes, each fed by one daemon thread of this process over its own pipe.

    A thread waits until every worker has started (so that each takes jobs from the first one on), then sends its
    worker one ``(fn, args)`` job at a time from the shared queue and sets the job's future from the answer. A
    worker that dies closes its pipe: its thread fails its job and every queued one with :class:`_WorkerDied`.
    The threads are daemons and block only on their own pipe, so killing the workers can never leave this
    process waiting at exit (``concurrent.futures.ProcessPoolExecutor`` can: a worker killed while it sends a
    result leaves its reader thread waiting for the rest of the message).
    """

    def __init__(self, num_proc: int, worker_args: tuple[Any, ...]) -> None:
        import multiprocessing
        import queue

        context = multiprocessing.get_context("spawn")
        self.jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.started = threading.Barrier(num_proc)
        self.died: _WorkerDied | None = None
        self.processes: list[Any] = []
        self.threads: list[threading.Thread] = []
        for _ in range(num_proc):
            mine, theirs = context.Pipe()
            proc = context.Process(target=_worker_main, args=(theirs, *worker_args), daemon=True)
            proc.start()
            theirs.close()  # the worker holds the other end alone: its death is an EOF here
            thread = threading.Thread(target=self._feed, args=(mine,), daemon=True)
            thread.start()
            self.processes.append(proc)
            self.threads.append(thread)

    def submit(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        """A future of ``_task(fn, *args)`` run by the next free worker."""
        from concurrent.futures import Future

        future: Future[Any] = Future()
        self.jobs.put((future, fn, args))
        if self.died is not None:  # no thread may be left to run it
            self._fail_queued()
        return future

    def _fail_queued(self) -> None:
        """Fail every queued job with :attr:`died` (end-of-work markers stay for their threads)."""
        import queue

        while True:
            try:
                item = self.jobs.get_nowait()
            except queue.Empty:
                return
            if item is None:
                self.jobs.put(None)
                return
            item[0].set_exception(self.died)

    def _feed(self, conn: Any) -> None:
        future = None
        try:
            conn.recv()  # the worker has started
            self.started.wait()
            while (item := self.jobs.get()) is not None:
                future, fn, args = item
                conn.send((fn, args))
                future.set_result(conn.recv())
                future = None
            conn.send(None)  # the worker ends
        except (EOFError, OSError, threading.BrokenBarrierError) as err:
            self.started.abort()
            self.died = _WorkerDied(f"{type(err).__name__}: {err}" if str(err) else type(err).__name__)
            if future is not None:
                future.set_exception(self.died)
            self._fail_queued()
        finally:
            with contextlib.suppress(OSError):
                conn.close()

    def close(self) -> None:
        """Let the workers finish their jobs and end."""
        for _ in self.threads:
            self.jobs.put(None)
        for thread in self.threads:
            thread.join()
        for proc in self.processes:
            proc.join()

    def kill(self) -> None:
        """Stop now: the workers (which ignore SIGTERM) are killed and reaped; their threads end on the EOF."""
        for proc in self.processes:
            with contextlib.suppress(Exception):
                proc.kill()
        for proc in self.processes:
            with contextlib.suppress(Exception):
                proc.join(timeout=10)


@contextmanager
def open_runner(num_proc: int, tokenizer: Any) -> Iterator[Runner]:
    """A :class:`Runner` for ``data.num_proc``; its workers are shut down on the way out, killed on an error,
    SIGTERM (:class:`BuildInterrupted`) or Ctrl-C. A worker that dies (e.g. out of memory) is a DataError."""
    if num_proc <= 1:
        yield Runner(tokenizer)
        return
    from biotune.data.tokenize import BackendTokenizer

    pool = _WorkerPool(num_proc, BackendTokenizer.parts(tokenizer))
    runner = Runner(tokenizer, num_proc, pool)
    try:
        yield runner
    except BaseException as err:
        pool.kill()
        if isinstance(err, _WorkerDied):
            raise DataError(
                "data.num_proc",
                f"a data-build worker process died ({err})",
                "if it was killed for memory, lower data.num_proc (or build with data.num_proc=1); a script "
                "that builds with data.num_proc > 1 must do so under `if __name__ == '__main__':` (the "
                "workers are spawned: they import the main module)",
            ) from err
        raise
    pool.close()
    logger.info(
        "data.num_proc=%d: reads and tokenization ran in worker processes %s",
        num_proc,
        ", ".join(map(str, sorted(runner.pids))),
    )


# ----------------------------------------------------------------------------------------------- samples


@dataclasses.dataclass
class SplitRead:
    """One source split read into samples, with what its reader repaired (``biotune.data.sources.reader_counts``)."""

    samples: list[Sample]
    repairs: dict[str, int]


def read_split(spec: Any, split: str, root: Path, ner_format: str, seed: int) -> SplitRead:
    """Every record of one split of the source ``spec`` as an instruction sample (paraphrase choice seeded per
    source). A pure function of its (picklable) arguments: the worker processes of a parallel build run it."""
    from biotune.data.sources import load_records, reader_counts
    from biotune.data.tasks import make_samples, task_for

    task = task_for(spec, ner_format)
    samples = make_samples(task, load_records(spec, split, root), spec.name, split, seed)
    return SplitRead(samples, reader_counts().get(f"{spec.name}/{split}", {}))


def source_samples(spec: Any, split: str, root: Path, ner_format: str, seed: int) -> list[Sample]:
    """Every record of one source split as an instruction sample (paraphrase choice seeded per source)."""
    return read_split(spec, split, root, ner_format, seed).samples


def _instruction_samples(cfg: DataConfig) -> tuple[dict[str, list[Sample]], dict[str, tuple[str, bool]]]:
    """Published-schema instruction sets (``data.instructions``), grouped by their ``source`` column, and each
    ``source`` value's (licence, restricted): a value found in several sets lists every licence and is
    restricted if any set is (or declares no licence)."""
    from biotune.data.sources.instructions import load_instructions

    out: dict[str, list[Sample]] = {}
    terms: dict[str, tuple[str, bool]] = {}
    for one in cfg.instructions.values():
        records = load_instructions(one.path, one.split)
        for source in dict.fromkeys(r.source for r in records):
            licence, restricted = terms.get(source, ("", False))
            licences = "; ".join(x for x in dict.fromkeys([licence, one.licence]) if x)
            terms[source] = (licences, restricted or one.restricted or not one.licence)
        for rec in records:
            out.setdefault(rec.source, []).append(
                Sample(
                    id=sample_id(rec.source, "train", rec.id),
                    source=rec.source,
                    task="instruction",
                    instruction=rec.instruction,
                    input=rec.input,
                    output=rec.output,
                )
            )
    return out, terms


def _eval_splits(cfg: DataConfig, root: Path) -> list[tuple[str, Any, str]]:
    """``("<source>/<split>", spec, split)`` for every evaluation split on disk of every included source (what
    the leakage check reads)."""
    from biotune.data.sources import available_splits, catalog

    known = catalog(cfg)
    out: list[tuple[str, Any, str]] = []
    for name, mix in cfg.sources.items():
        if not mix.include or name not in known:  # instruction-set sources have no eval splits
            continue
        spec = known[name]
        found = available_splits(spec, root)
        out.extend(
            (f"{name}/{split}", spec, split)
            for split in cfg.leakage_splits
            if split in found and split != mix.split
        )
    return out


def leakage_report(
    train_texts: list[str], splits: list[tuple[str, Any, str]], root: Path, ner_format: str, seed: int
) -> leakage.LeakageReport:
    """Read each evaluation split ``(key, spec, split)`` into samples and count those whose text is among the
    training texts (:func:`biotune.data.leakage.check_texts`). A pure function of its (picklable) arguments:
    a worker of a parallel build runs it, so the evaluation samples never cross to the parent."""
    evaluation = {key: read_split(spec, split, root, ner_format, seed).samples for key, spec, split in splits}
    return leakage.check_texts(train_texts, evaluation)


# ----------------------------------------------------------------------------------------------- tokens


@dataclasses.dataclass
class _Tokenizing:
    """Samples whose distinct texts are being tokenized: ``which[i]`` is sample i's index among the distinct."""

    samples: list[Sample]
    unique: list[Sample]
    which: list[int]
    jobs: list[_Job]


def _distinct(samples: list[Sample]) -> tuple[list[Sample], list[int]]:
    """The distinct samples (upsampled repeats share their base id and text) and each sample's index among them."""
    first: dict[str, int] = {}
    unique: list[Sample] = []
    which: list[int] = []
    for s in samples:
        base = base_id(s.id)
        if base not in first:
            first[base] = len(unique)
            unique.append(s)
        which.append(first[base])
    return unique, which


def _start_tokenize(samples: list[Sample], cfg: RunConfig, tokenizer: Any, runner: Runner) -> _Tokenizing:
    """Render the distinct samples and start tokenizing them (prompt-masked), in ``runner``'s processes.

    Upsampled repeats of a sample are identical text, so only distinct samples are tokenized; repeats reuse
    the same token arrays.
    """
    from biotune.data.templates import render_prompt, render_target

    d = cfg.data
    unique, which = _distinct(samples)
    prompts = [render_prompt(d.template, s.instruction, s.input, tokenizer) for s in unique]
    targets = [render_target(d.template, s.output, tokenizer) for s in unique]
    return _Tokenizing(samples, unique, which, runner.tokenize(prompts, targets, d.max_seq_len, d.truncation))


def _pack_tokens(pending: _Tokenizing, cfg: RunConfig) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The tokenized samples (repeats included), packed. Returns (rows, stats)."""
    from biotune.data.packing import pack_rows
    from biotune.data.tokenize import ChunkedBatch, log_counts

    d = cfg.data
    samples, which = pending.samples, pending.which
    # The chunks' tokens are packed from where they lie: no joined copy of them first.
    tok = ChunkedBatch([job.result() for job in pending.jobs])
    log_counts(tok)
    slot = {u: j for j, u in enumerate(tok.kept)}
    ids_u, labels_u = tok.input_ids, tok.labels
    kept_index = [i for i, u in enumerate(which) if u in slot]
    slots = [slot[which[i]] for i in kept_index]
    input_ids = [ids_u[j] for j in slots]
    labels = [labels_u[j] for j in slots]
    sample_ids = [samples[i].id for i in kept_index]
    loss = tok.loss_counts[np.asarray(slots, dtype=np.int64)]
    rows = pack_rows(input_ids, labels, sample_ids, d.max_seq_len, one_per_row=not d.pack, loss_counts=loss)
    dropped_u, truncated_u = set(tok.dropped_indices), set(tok.truncated_indices)
    stats = {
        "samples_in": len(samples),
        "samples_kept": len(kept_index),
        "dropped": sum(1 for u in which if u in dropped_u),
        "truncated": sum(1 for u in which if u in truncated_u),
        "lengths": [len(x) for x in input_ids],
        "kept_index": kept_index,
    }
    return rows, stats


def _length_stats(lengths: list[int], max_seq_len: int) -> dict[str, Any]:
    if not lengths:
        return {"count": 0}
    arr = np.asarray(lengths)
    edges = [0, 64, 128, 256, 512, 1024, 2048, 4096, 8192, max(max_seq_len, 8192) + 1]
    hist, _ = np.histogram(arr, bins=edges)
    return {
        "count": int(arr.size),
        "total": int(arr.sum()),
        "mean": round(float(arr.mean()), 2),
        "p50": int(np.percentile(arr, 50)),
        "p90": int(np.percentile(arr, 90)),
        "p99": int(np.percentile(arr, 99)),
        "max": int(arr.max()),
        "histogram": {
            f"{lo}-{hi - 1}": int(c) for lo, hi, c in zip(edges[:-1], edges[1:], hist, strict=True)
        },
    }


def _save_split(rows: list[dict[str, Any]], path: Path, fingerprint: str) -> str:
    """Write one split with ``datasets`` (deterministic fingerprint) and return its content hash."""
    from datasets import Dataset

    from biotune.data.packing import rows_to_arrow

    table = rows_to_arrow(rows)
    digest = hashlib.sha256()
    for name in table.column_names:
        for chunk in table.column(name).chunks:
            for buf in chunk.buffers():
                if buf is not None:
                    digest.update(buf)
    content = digest.hexdigest()
    Dataset(table, fingerprint=f"{fingerprint}-{content[:16]}").save_to_disk(str(path))
    return content


# ----------------------------------------------------------------------------------------------- build


def build_dataset(cfg: RunConfig, force: bool = False) -> Path:
    """Build (or find in the cache) the packed training data for ``cfg``; return its directory."""
    from biotune.data.tokenize import tokenizer_fingerprint

    d = cfg.data
    if not d.sources and not d.instructions:
        raise ConfigError(
            [
                Problem(
                    "data.sources",
                    "no sources configured",
                    "add sources, e.g. data.sources.ncbi_disease.weight=1, or use configs/data/*.yaml",
                )
            ]
        )
    root = resolve_root(d.root)
    tok_path = tokenizer_path(cfg)
    tokenizer = load_tokenizer(tok_path, cfg.model.trust_remote_code)
    fingerprint = tokenizer_fingerprint(tokenizer)
    hashes = FileHashes(d.out_dir)
    key = cache_key(d, root, fingerprint, hashes)
    out = Path(d.out_dir) / key
    if (out / MANIFEST_FILE).is_file() and not force:
        logger.info("data cache hit: %s", out)
        hashes.save()
        return out
    clean_stale_tmp(out.parent)
    start = time.perf_counter()
    with _sigterm_raises(), gc_paused():
        manifest = _build_into(out, cfg, root, tokenizer, tok_path, fingerprint, key)
    hashes.save()
    logger.info(
        "built %s rows (%s samples) in %.1fs -> %s",
        manifest.packing["rows"],
        manifest.totals["samples_kept"],
        time.perf_counter() - start,
        out,
    )
    return out


def _collect(
    cfg: RunConfig, root: Path, runner: Runner | None = None
) -> tuple[dict[str, list[Sample]], dict[str, str], dict[str, int], dict[str, tuple[str, bool]]]:
    """The training samples of every included source in config order (read by ``runner``: all reads start
    before the first is awaited), each source's kind, what the readers repaired (``"<source>/<split>:
    <what>"`` -> count), and the (licence, restricted) of each instruction-set source. A problem with a source
    is raised in its turn, as a serial build meets it."""
    d = cfg.data
    runner = runner or Runner(None)
    kinds: dict[str, str] = {}
    reads: dict[str, _Job | ConfigError] = {}
    for name, mix in d.sources.items():
        try:
            spec = _spec(name, d)
        except ConfigError as err:
            reads[name] = err
            continue
        kinds[name] = spec.kind
        if not mix.include:
            continue
        if mix.split not in spec.split_names:
            reads[name] = ConfigError(
                [
                    Problem(
                        f"data.sources.{name}.split",
                        f"source {name} has no split '{mix.split}'",
                        f"use one of: {', '.join(spec.split_names)}",
                    )
                ]
            )
            continue
        reads[name] = runner.read(spec, mix.split, root, d.ner_format, d.seed)
    by_source: dict[str, list[Sample]] = {}
    repairs: dict[str, int] = {}
    for name, job in reads.items():
        if isinstance(job, ConfigError):
            raise job
        split = d.sources[name].split
        got = job.result()
        by_source[name] = got.samples
        repairs.update({f"{name}/{split}: {what}": n for what, n in got.repairs.items() if n})
        logger.info("source %-24s %-6s %7d samples", name, split, len(by_source[name]))
    instruction_samples, instruction_terms = _instruction_samples(d)
    for name, samples in instruction_samples.items():
        if name in by_source:
            raise ConfigError(
                [
                    Problem(
                        "data.instructions",
                        f"instruction rows name source '{name}', which is also a configured corpus",
                        "rename the source column in the instruction file",
                    )
                ]
            )
        by_source[name] = samples
        kinds[name] = "instruction"
        d.sources.setdefault(name, SourceMix(group="instruction"))
    return by_source, kinds, repairs, instruction_terms


def _build_into(
    out: Path, cfg: RunConfig, root: Path, tokenizer: Any, tok_path: str, fingerprint: str, key: str
) -> Manifest:
    d = cfg.data
    with open_runner(d.num_proc, tokenizer) as runner:
        by_source, kinds, repairs, instruction_terms = _collect(cfg, root, runner)
        mixed, table = mixture.compose(by_source, d, kinds)
        train, held = mixture.split_heldout(mixed, d.eval_fraction, d.seed)
        train_tok = _start_tokenize(train, cfg, tokenizer, runner)
        held_tok = _start_tokenize(held, cfg, tokenizer, runner) if held else None
        leak_job = _start_leakage(d, root, train_tok, runner)
        # A serial build checks first (an overlap under data.leakage=error fails before tokenizing); in a
        # parallel one a worker checks after its last tokenization chunk, while this process packs.
        leak = _leakage_verdict(d, leak_job) if runner.pool is None else None
        created = [d for d in (out.parent, *out.parent.parents) if not d.exists()]
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=_tmp_prefix(key), dir=out.parent))
        try:
            train_cols, train_stats = _pack_tokens(train_tok, cfg)
            heldout_stats = None
            if held_tok is not None:
                eval_cols, heldout_stats = _pack_tokens(held_tok, cfg)
            warnings = mixture.truncation_losses(
                Counter(s.source for s in train),
                Counter(train[i].source for i in train_stats["kept_index"]),
                d,
                (len(held), heldout_stats["samples_kept"]) if heldout_stats else (0, 0),
            )
            for warning in warnings:
                logger.warning("%s", warning)
            content = {"train": _save_split(train_cols, tmp / "train", key)}
            if heldout_stats is not None:
                content["eval"] = _save_split(eval_cols, tmp / "eval", key)
            if runner.pool is not None:
                leak = _leakage_verdict(d, leak_job)
            manifest = _manifest(
                cfg,
                key,
                tok_path,
                fingerprint,
                table,
                train,
                train_stats,
                train_cols,
                heldout_stats,
                leak,
                content,
                instruction_terms,
            )
            manifest.repairs = repairs
            manifest.warnings = warnings
            manifest.write(tmp)
            swap_in_dir(tmp, out)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            for d in created:  # innermost first; a directory another build uses now is not empty and stays
                with contextlib.suppress(OSError):
                    d.rmdir()
            raise
    return manifest


def _start_leakage(d: DataConfig, root: Path, train: _Tokenizing, runner: Runner) -> _Job | None:
    """Start the leakage check of ``data.leakage`` (None when off) on the distinct training texts: repeats add
    no text, and two samples of one sentence (BC5CDR's chemical and disease sets) give one text."""
    if d.leakage == leakage.OFF:
        return None
    texts = list(dict.fromkeys(map(leakage.sample_text, train.unique)))
    return runner.leakage(texts, d, root)


def _leakage_verdict(d: DataConfig, job: _Job | None) -> leakage.LeakageReport | None:
    """The leakage report (None when off); an overlap fails the build under ``data.leakage=error``."""
    if job is None:
        return None
    leak: leakage.LeakageReport = job.result()
    if leak.total_normalised:
        msg = (
            f"{leak.total_normalised} evaluation examples overlap the training mixture "
            f"({leak.total_exact} exactly): {leak.normalised}"
        )
        if d.leakage == leakage.ERROR:
            raise DataError(d.out_dir, msg, "remove the overlapping sources/splits, or set data.leakage=warn")
        logger.warning("leakage: %s", msg)
    return leak


def _manifest(
    cfg: RunConfig,
    key: str,
    tok_path: str,
    fingerprint: str,
    table: list[mixture.SourceCount],
    train: list[Sample],
    stats: dict[str, Any],
    cols: list[dict[str, Any]],
    heldout: dict[str, Any] | None,
    leak: leakage.LeakageReport | None,
    content: dict[str, str],
    instruction_terms: dict[str, tuple[str, bool]],
) -> Manifest:
    from biotune.data.sources import catalog

    d = cfg.data
    known = catalog(d)
    kept = [train[i] for i in stats["kept_index"]]
    per_source_tokens: dict[str, list[int]] = {}
    for s, n in zip(kept, stats["lengths"], strict=True):
        per_source_tokens.setdefault(s.source, []).append(n)
    realised_after_tok: dict[str, int] = {k: len(v) for k, v in per_source_tokens.items()}
    sources = {}
    for row in table:
        spec = known.get(row.source)
        licence, restricted = (
            (spec.licence, spec.restricted)
            if spec is not None
            else instruction_terms.get(row.source, ("", True))
        )
        sources[row.source] = SourceEntry(
            **dataclasses.asdict(row),
            kept_after_tokenize=realised_after_tok.get(row.source, 0),
            licence=licence or "not declared (treated as restricted)",
            restricted=bool(restricted),
            credentialed=bool(getattr(spec, "credentialed", False)),
            paper_count=getattr(spec, "paper_count", None),
            tokens=_length_stats(per_source_tokens.get(row.source, []), d.max_seq_len),
        )
    tasks: dict[str, dict[str, int]] = {}
    for row in table:
        t = tasks.setdefault(row.group, {"requested": 0, "realised": 0})
        t["requested"] += row.requested
        t["realised"] += row.realised
    n_rows = len(cols)
    n_tok = int(sum(int(r["num_tokens"]) for r in cols))
    return Manifest(
        biotune_version=__version__,
        build_version=BUILD_VERSION,
        cache_key=key,
        content_hash=hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest(),
        split_hashes=content,
        config={k: v for k, v in dataclasses.asdict(d).items() if k not in NOT_DATA},
        template=d.template,
        ner_format=d.ner_format,
        tokenizer=tok_path,
        tokenizer_fingerprint=fingerprint,
        max_seq_len=d.max_seq_len,
        truncation={"policy": d.truncation, "dropped": stats["dropped"], "truncated": stats["truncated"]},
        sources=sources,
        tasks=tasks,
        totals={
            "samples_mixed": stats["samples_in"],
            "samples_kept": stats["samples_kept"],
            "tokens": n_tok,
            "loss_tokens": int(sum(int(r["num_loss_tokens"]) for r in cols)),
        },
        length_stats=_length_stats(stats["lengths"], d.max_seq_len),
        packing={
            "enabled": d.pack,
            "rows": n_rows,
            "capacity": d.max_seq_len,
            "efficiency": round(n_tok / max(1, n_rows * d.max_seq_len), 6),
            "mean_seqs_per_row": round(statistics.fmean(len(r["seq_lens"]) for r in cols), 3)
            if n_rows
            else 0,
        },
        heldout=None
        if heldout is None
        else {"samples": heldout["samples_kept"], "dropped": heldout["dropped"]},
        leakage=leak.to_dict() if leak else None,
        restricted_sources=sorted(name for name, e in sources.items() if e.restricted and e.realised),
    )

"""The data build's process pool: where reads, tokenization chunks and the leakage check run.

A :class:`Runner` runs jobs (``fn(*args)``) either in this process, each when its result is first asked for
(``data.num_proc=1``: the order of a serial build), or in a pool of ``num_proc`` *spawned* worker processes
(:func:`open_runner`). Spawned, not forked: the build also runs inside ``biotune train``, where torch, DeepSpeed
and their threads live, and forking a threaded process can deadlock on a lock another thread held. Each worker
rebuilds the tokenizer once, from the JSON of the parent's Rust backend
(:class:`biotune.data.tokenize.BackendTokenizer`), and encodes on one thread unless ``TOKENIZERS_PARALLELISM``
says otherwise. Workers ignore SIGINT and SIGTERM; on any error or signal the parent kills them, and a worker that
dies is a DataError, never a hang (:class:`_WorkerPool`). Objects cross by pickle (multiprocessing's transport):
a job's function must be importable by name, and an error raised in a worker comes back by value
(:class:`_RaisedInWorker`). Nothing read from disk is ever unpickled.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import multiprocessing
import os
import queue
import signal
import threading
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from typing import Any

from biotune.data.tokenize import ENCODE_CHUNK, BackendTokenizer, tokenize_pairs
from biotune.errors import BiotuneError, DataError

logger = logging.getLogger(__name__)

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
    return tokenize_pairs(
        prompts, targets, tokenizer or _WORKER_TOKENIZER, max_seq_len, truncation, log=False
    )


class Job:
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

    def submit(self, fn: Callable[..., Any], *args: Any) -> Job:
        """Run ``fn(*args)`` here when its result is asked for, or in the next free worker. ``fn`` must be a
        module-level function and ``args`` picklable (they cross to a spawned process)."""
        return Job(self, fn, args)

    def tokenize(
        self, prompts: list[str], targets: list[str], max_seq_len: int, truncation: str
    ) -> list[Job]:
        """Tokenize the pairs in contiguous chunks (in input order): run here one by one, or spread over the workers."""
        if self.pool is None:  # chunks of ENCODE_CHUNK: their temporary arrays are small and reused
            step = ENCODE_CHUNK
            return [
                Job(
                    self,
                    _tokenize_chunk,
                    (prompts[a : a + step], targets[a : a + step], max_seq_len, truncation, self.tokenizer),
                )
                for a in range(0, max(1, len(prompts)), step)
            ]
        k = max(1, min(len(prompts), self.num_proc * CHUNKS_PER_WORKER))
        bounds = [len(prompts) * i // k for i in range(k + 1)]
        return [
            Job(self, _tokenize_chunk, (prompts[a:b], targets[a:b], max_seq_len, truncation))
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
        future: Future[Any] = Future()
        self.jobs.put((future, fn, args))
        if self.died is not None:  # no thread may be left to run it
            self._fail_queued()
        return future

    def _fail_queued(self) -> None:
        """Fail every queued job with :attr:`died` (end-of-work markers stay for their threads)."""
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

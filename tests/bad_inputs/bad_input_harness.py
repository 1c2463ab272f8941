"""The bad-input suite (issue 13): every bad input gets exit 2 (75 for signals), a message naming the file and
line or the key and the fix, no traceback, and leaves no file behind.

Cases per category (``CASES`` tables, plus the slow tests that need a real checkpoint, build or signal; the
numbers are kept equal to the tables by ``test_bad_inputs_index.py``). The corpus and build modules are marked
slow as a whole: ``data build`` loads the tokenizer before it reads a corpus, about 3 s of CPU per case; the
other tables need no model and run in about 2.5 CPU-minutes together.

=====================================  ==========================  =====  ====
category                               module                      cases  slow
=====================================  ==========================  =====  ====
corpus files, every native format      test_bad_corpora.py            40     0
configs and overrides                  test_bad_configs.py            43     0
sweep configs and commands             test_bad_sweeps.py             32     0
sweep statistics (collect)             test_bad_sweep_stats.py         5     0
predictions files and reports          test_bad_predictions.py        23     0
checkpoints, manifests and shards      test_bad_checkpoints.py        18     5
plan arguments                         test_bad_plan.py               17     0
interrupted commands                   test_bad_interrupts.py          0     2
corpus downloads                       test_bad_downloads.py          13     0
your data: own sources, instr. sets    test_bad_your_data.py          20     0
parallel data builds (num_proc)        test_bad_num_proc.py            4     0
names that become paths                test_bad_paths.py              12     0
empty data builds (all dropped)        test_bad_builds.py              3     0
remaining tracebacks (issue 20)        test_bad_tracebacks.py          9     2
sweep-spec bounds, silent acceptances  test_bad_sweep_spec.py         17     0
export destinations, failed writes     test_bad_exports.py            12     4
huge values echoed in messages         test_bad_echoes.py              8     0
hub instr. sets pinned to a commit     test_bad_hub_pins.py            5     0
collect with fidelities (issue 21)     test_bad_fidelity_collect.py    2     0
sweep fidelities and --stage           test_bad_fidelities.py         18     0
evaluation during training             test_bad_train_eval.py          6     0
collect at a checkpoint (--step)       test_bad_collect_steps.py       7     0
=====================================  ==========================  =====  ====

Beside them, inputs that used to be rejected and must be accepted (``data.leakage: off``, ``defaults: one.yaml``,
``data.root=@sample``, GAD's "no", a good model ``config.json`` for ``plan``) and the stale-directory rule of
the data build are checked in the same modules. Add a case for every new command.

This module runs the cases through the real ``biotune`` CLI and checks what every bad input must get.

A :class:`Case` names its command line, an optional setup that writes the bad files into a fresh directory,
and what the message must contain: where (``file:line``, a file, or a config key) and how to fix it. Each case
runs ``python -m biotune.cli ...`` in a subprocess with that directory as the working directory, and
:func:`check` asserts:

* the exit code (2, or 75 for signals);
* ``where`` and ``fix`` appear in stderr, and no Python traceback does;
* no file or directory appeared in the case directory (its tree is compared before and after).

The tree comparison excludes nothing: a failed command writes no cache either (the data build's
``.file_hashes.json`` memo is written only after a successful build or a cache hit).

Cases of one module run concurrently (a few subprocesses at a time) through :func:`run_selected`, which the
modules call from a module-scoped fixture; only the cases pytest selected are run.

Each case's process is forked from a fork server (``cli_forkserver.py``) that imported torch, transformers
and datasets once per session, instead of started from scratch: those imports were most of the CPU of the
suite (~3 s per ``data build`` case), and the command still runs in a process of its own, in the case's
directory and environment, through ``runpy`` as ``python -m biotune.cli`` does, with biotune imported
afresh. A case whose environment differs from the server's in a variable outside :data:`FORKABLE_ENV` (a
preloaded library may have read it at import) gets a fresh ``python -m biotune.cli`` as before.
"""

from __future__ import annotations

import atexit
import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
#: Subprocesses at once: the CLI spends most of its time importing, so a little overlap pays even on 2 cores.
WORKERS = 3
TIMEOUT_S = 300
FORKSERVER = Path(__file__).with_name("cli_forkserver.py")
#: Variables a case may set differently from the fork server's environment and still be forked: none of the
#: preloaded libraries reads them at import (biotune, imported afresh in each child, reads them when it runs).
FORKABLE_ENV = ("BIOTUNE_", "PATH")


@dataclass(frozen=True)
class Case:
    """One bad input: the command, the files it needs, and what the user must be told."""

    id: str
    args: tuple[str, ...]
    """Arguments after ``python -m biotune.cli``; ``{tmp}``, ``{repo}`` and ``{tok}`` are filled in."""
    where: str
    """Must appear in stderr: the file (with ``:line`` where there is one) or the config key."""
    fix: str = "fix:"
    """Must appear in stderr: the fix (by default the ``fix:`` line every biotune error has)."""
    setup: Callable[[Path], None] | None = None
    code: int = 2
    extra_env: tuple[tuple[str, str], ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class Result:
    """What one run of a case gave."""

    code: int
    stderr: str
    stdout: str
    new_paths: list[str]
    tmp: Path


def base_env(tok: Path | None = None) -> dict[str, str]:
    """The environment of every case: offline, CPU, no wandb, corpora root pointing nowhere useful."""
    env = dict(os.environ)
    env.update(
        {
            "WANDB_MODE": "disabled",
            "HF_HUB_OFFLINE": "1",
            "HF_DATASETS_OFFLINE": "1",
            "DS_ACCELERATOR": "cpu",
            "TOKENIZERS_PARALLELISM": "false",
            "OMP_NUM_THREADS": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}",
        }
    )
    for key in (
        "RANK",
        "LOCAL_RANK",
        "WORLD_SIZE",
        "MASTER_ADDR",
        "MASTER_PORT",
        "SLURM_PROCID",
        "SLURM_NTASKS",
    ):
        env.pop(key, None)
    return env


def tree(root: Path) -> set[str]:
    """Every file and directory under ``root``, relative to it."""
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def fill(text: str, tmp: Path, tok: Path | None) -> str:
    """Replace the ``{tmp}``/``{repo}``/``{tok}`` placeholders."""
    return text.replace("{tmp}", str(tmp)).replace("{repo}", str(REPO)).replace("{tok}", str(tok or ""))


def run_case(case: Case, tmp: Path, tok: Path | None = None) -> Result:
    """Set up ``tmp``, run the case's command there, and report the exit code, stderr and new paths."""
    tmp.mkdir(parents=True, exist_ok=True)
    if case.setup is not None:
        case.setup(tmp)
    before = tree(tmp)
    env = {**base_env(tok), **{k: fill(v, tmp, tok) for k, v in case.extra_env}}
    env.setdefault("BIOTUNE_DATA_DIR", str(tmp / "no-corpora-here"))
    argv = [fill(a, tmp, tok) for a in case.args]
    server_env = base_env()
    if all(env.get(k) == server_env.get(k) for k in {*env, *server_env} if not k.startswith(FORKABLE_ENV)):
        code, stdout, stderr = _FORK_SERVERS.run(argv, tmp, env)
    else:
        proc = subprocess.run(
            [sys.executable, "-m", "biotune.cli", *argv],
            cwd=tmp,
            env=env,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
        )
        code, stdout, stderr = proc.returncode, proc.stdout, proc.stderr
    return Result(code, stderr, stdout, sorted(tree(tmp) - before), tmp)


class ForkServers:
    """Fork servers (``cli_forkserver.py``), started on demand, one per concurrent case, stopped at exit."""

    def __init__(self) -> None:
        self._idle: queue.SimpleQueue[subprocess.Popen[str]] = queue.SimpleQueue()
        self._started: list[subprocess.Popen[str]] = []
        self._lock = threading.Lock()
        self._dir: Path | None = None

    def _start(self) -> subprocess.Popen[str]:
        with self._lock:
            if self._dir is None:
                self._dir = Path(tempfile.mkdtemp(prefix="biotune-forkserver-"))
                atexit.register(self.stop)
            log = self._dir / f"server-{len(self._started)}.log"
            with log.open("w") as err:
                server = subprocess.Popen(
                    [sys.executable, str(FORKSERVER)],
                    cwd=REPO,
                    env=base_env(),
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=err,
                    text=True,
                )
            self._started.append(server)
        assert server.stdout is not None
        if not server.stdout.readline():
            raise AssertionError(f"the fork server did not start:\n{log.read_text()[-3000:]}")
        return server

    def run(self, argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[int, str, str]:
        """``python -m biotune.cli ARGV`` in ``cwd`` with ``env``: exit code, stdout, stderr."""
        try:
            server = self._idle.get_nowait()
        except queue.Empty:
            server = self._start()
        assert self._dir is not None and server.stdin is not None and server.stdout is not None
        out, err = (self._dir / f"{uuid.uuid4().hex}.{name}" for name in ("out", "err"))
        request = {"argv": argv, "cwd": str(cwd), "env": env, "stdout": str(out), "stderr": str(err)}
        server.stdin.write(json.dumps({**request, "timeout": TIMEOUT_S}) + "\n")
        server.stdin.flush()
        answer = server.stdout.readline()
        if not answer:
            raise AssertionError(f"the fork server died running {argv}")
        self._idle.put(server)
        code = json.loads(answer)["code"]
        stdout, stderr = out.read_text(), err.read_text()
        out.unlink()
        err.unlink()
        if code is None:
            raise subprocess.TimeoutExpired(["python", "-m", "biotune.cli", *argv], TIMEOUT_S, stdout, stderr)
        return code, stdout, stderr

    def stop(self) -> None:
        """Close every server's input (each then exits) and remove the output directory."""
        for server in self._started:
            if server.stdin is not None:
                server.stdin.close()
        for server in self._started:
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)


_FORK_SERVERS = ForkServers()


def check(case: Case, result: Result, tok: Path | None = None) -> None:
    """The four promises of a bad input (see the module docstring)."""
    err = result.stderr
    assert result.code == case.code, f"exit {result.code}, expected {case.code}\n{err[-3000:]}"
    assert "Traceback" not in err, err[-3000:]
    where = fill(case.where, result.tmp, tok)
    assert where in err, f"the message does not name {where!r}:\n{err[-3000:]}"
    assert fill(case.fix, result.tmp, tok) in err, f"the message has no fix {case.fix!r}:\n{err[-3000:]}"
    assert not result.new_paths, f"left behind: {result.new_paths}"


def run_selected(
    request: pytest.FixtureRequest, cases: Iterable[Case], tmp_root: Path, tok: Path | None = None
) -> dict[str, Result]:
    """Run the cases of the calling module that pytest selected, a few at a time; results by case id."""
    module = request.module.__name__
    selected = {
        item.callspec.params["case"].id
        for item in request.session.items
        if getattr(item, "module", None) is not None
        and item.module.__name__ == module
        and hasattr(item, "callspec")
        and "case" in item.callspec.params
    }
    todo = [c for c in cases if c.id in selected]
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        results = pool.map(lambda c: run_case(c, tmp_root / c.id, tok), todo)
        return {c.id: r for c, r in zip(todo, results, strict=True)}


def write(path: Path, content: str | bytes) -> Path:
    """Write ``content`` (text as UTF-8, or bytes) to ``path``, creating its directory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def ids(cases: Iterable[Case]) -> list[str]:
    """Test ids of ``cases``."""
    return [c.id for c in cases]

"""A fork server for the bad-input cases: ``python -m biotune.cli ...`` without re-importing torch each time.

Most bad-input cases spend their CPU importing torch and transformers (``data build`` loads the tokenizer
before it reads a corpus: ~3 s of CPU, of which ~0.1 s is biotune's own work). This script imports those
third-party libraries once, then serves requests, one JSON object per line on stdin::

    {"argv": [...], "cwd": "...", "env": {...}, "stdout": "FILE", "stderr": "FILE", "timeout": 300}

For each it forks a child that becomes what ``python -m biotune.cli ARGV`` would be in ``cwd`` with ``env``:
its own process, file descriptors 1 and 2 on the two files, stdin on /dev/null, ``sys.argv`` and
``sys.path[0]`` set the way ``-m`` sets them, and the module run by :func:`runpy.run_module` as
``__main__``. biotune itself is imported afresh in every child (this script never imports it). The child
leaves through the interpreter's own exit path: ``SystemExit`` gives its code, an uncaught exception prints
its traceback and exits 1, and ``atexit`` handlers and buffered output run and flush as in any process.
The server answers ``{"code": N}`` (a negative N: killed by signal -N, as :mod:`subprocess` reports it) or
``{"code": null}`` when the child ran past its timeout and was killed.

Only the environment the server started with is seen by the preloaded libraries (they read some variables
at import, e.g. ``HF_HUB_OFFLINE``), so the harness sends here only cases whose environment differs from
the server's in variables that no preloaded library reads (see ``bad_input_harness.FORKABLE_ENV``).
"""

from __future__ import annotations

import importlib
import json
import os
import runpy
import signal
import sys
import time

#: Imported once here, inherited by every child: what the CLI's heavy commands import. ``module:name`` also
#: reads the attribute, since transformers imports its submodules lazily on first access.
PRELOAD = (
    "numpy",
    "yaml",
    "omegaconf",
    "torch",
    "datasets",
    "transformers:AutoConfig",
    "transformers:AutoTokenizer",
    "transformers:PreTrainedTokenizerFast",
    "transformers:AutoModelForCausalLM",
    "transformers:GenerationConfig",
    "transformers.utils.type_validators",
)


def _child(request: dict) -> None:
    """Become ``python -m biotune.cli ARGV`` (never returns: the interpreter exits with the CLI's code)."""
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    for fd, path, flags in (
        (0, os.devnull, os.O_RDONLY),
        (1, request["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC),
        (2, request["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC),
    ):
        new = os.open(path, flags, 0o644)
        os.dup2(new, fd)
        os.close(new)
    sys.argv = ["-m", *request["argv"]]  # runpy puts the module's path in argv[0], as ``-m`` does
    sys.path[0] = os.getcwd()  # ``python -m`` puts the working directory first
    runpy.run_module("biotune.cli", run_name="__main__", alter_sys=True)
    sys.exit(0)


def _wait(pid: int, timeout: float) -> int | None:
    """The child's exit code as :mod:`subprocess` reports it; None (and the child killed) after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return None
        time.sleep(0.01)


def main() -> None:
    """Preload, say ready, then serve one request at a time until stdin closes."""
    for entry in PRELOAD:
        module, _, attr = entry.partition(":")
        imported = importlib.import_module(module)
        if attr:
            getattr(imported, attr)
    answers = os.fdopen(os.dup(1), "w")
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)  # stray output of the server must not reach the answers
    print(json.dumps({"ready": True}), file=answers, flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            answers.close()
            _child(request)
        print(json.dumps({"code": _wait(pid, request["timeout"])}), file=answers, flush=True)


if __name__ == "__main__":
    main()

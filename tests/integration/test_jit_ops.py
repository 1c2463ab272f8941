"""DeepSpeed's JIT-built CPU communication op lives in one directory per environment, and a second start reuses it
(issue 20 item 12: the per-user cache shared by every virtualenv rebuilt it on every start)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from biotune.launch import launch_env, torch_extensions_dir

pytestmark = pytest.mark.slow

LOAD = "from deepspeed.ops.op_builder.cpu import ShareMemCommBuilder; ShareMemCommBuilder().load()"


def _start(env: dict[str, str]) -> None:
    done = subprocess.run([sys.executable, "-c", LOAD], env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]


def test_a_second_start_reuses_the_environments_build(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TORCH_EXTENSIONS_DIR", raising=False)  # the rule, not a directory the caller chose
    env = launch_env({"DS_ACCELERATOR": "cpu"})
    where = Path(env["TORCH_EXTENSIONS_DIR"])
    assert where == torch_extensions_dir(Path(sys.prefix))
    _start(env)  # builds it, unless an earlier launch of this environment already did
    built = sorted(where.glob("**/deepspeed_shm_comm.so"))
    assert len(built) == 1, f"expected the op under {where}"
    so, log = built[0], built[0].parent / ".ninja_log"
    before = (so.stat().st_mtime_ns, log.read_text())
    _start(env)
    assert (so.stat().st_mtime_ns, log.read_text()) == before, "the second start rebuilt the op"

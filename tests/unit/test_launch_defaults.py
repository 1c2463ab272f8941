"""The shell scripts and Python agree on the pre-emption exit code and the collective timeout.

``launch/defaults.sh`` is the shell's one copy of each value; every script sources it instead of writing the number.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from biotune.config import REPO_ROOT
from biotune.distributed import DEFAULT_COLLECTIVE_TIMEOUT_MIN, collective_timeout_min
from biotune.errors import EXIT_PREEMPTED
from biotune.launch import TORCH_EXTENSIONS_SUBDIR, launch_env, torch_extensions_dir

DEFAULTS = REPO_ROOT / "launch" / "defaults.sh"
SCRIPTS = sorted([*(REPO_ROOT / "launch").glob("*.sh"), *(REPO_ROOT / "slurm").glob("*.sh")])


def _shell_value(name: str) -> int:
    return int(_shell_text(name))


def _shell_text(name: str) -> str:
    out = subprocess.run(
        ["bash", "-c", f'set -euo pipefail; source "{DEFAULTS}"; echo "${name}"'],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return out.strip()


def test_shell_and_python_share_the_preemption_exit_code() -> None:
    assert _shell_value("BIOTUNE_EXIT_PREEMPTED") == EXIT_PREEMPTED


def test_shell_and_python_share_the_collective_timeout() -> None:
    assert _shell_value("BIOTUNE_DEFAULT_COLLECTIVE_TIMEOUT_MIN") == DEFAULT_COLLECTIVE_TIMEOUT_MIN
    assert collective_timeout_min({}) == DEFAULT_COLLECTIVE_TIMEOUT_MIN
    assert collective_timeout_min({"BIOTUNE_COLLECTIVE_TIMEOUT_MIN": "7"}) == 7


def test_no_script_writes_the_numbers_itself() -> None:
    """Only defaults.sh spells 75 or the timeout; the others source it (torchrun.sh, common.sh) or common.sh."""
    offenders = []
    for script in SCRIPTS:
        if script == DEFAULTS:
            continue
        for n, line in enumerate(script.read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            # the exit code anywhere; the timeout as a default or an assignment (``* 60`` converts to seconds)
            if re.search(rf"\b{EXIT_PREEMPTED}\b|(:-|=){DEFAULT_COLLECTIVE_TIMEOUT_MIN}\b", code):
                offenders.append(f"{script.relative_to(REPO_ROOT)}:{n}: {line.strip()}")
    assert not offenders, "\n".join(offenders)
    sourcing = {p.name for p in SCRIPTS if "defaults.sh" in p.read_text() or "common.sh" in p.read_text()}
    assert {"torchrun.sh", "common.sh", "sweep.sh", "train_7b.sh", "train_13b.sh", "train_70b.sh"} <= sourcing


def test_every_shell_script_parses() -> None:
    for script in SCRIPTS:
        res = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
        assert res.returncode == 0, f"{Path(script).name}: {res.stderr}"


def test_deepspeed_ops_build_in_one_directory_per_environment(tmp_path: Path) -> None:
    """launch_env, launch/torchrun.sh and slurm/common.sh place DeepSpeed's JIT ops per environment (issue 20.12)."""
    assert _shell_text("BIOTUNE_TORCH_EXTENSIONS_SUBDIR") == TORCH_EXTENSIONS_SUBDIR
    env = launch_env({"BIOTUNE_VENV": str(tmp_path / "venv")})
    if "TORCH_EXTENSIONS_DIR" not in __import__("os").environ:
        assert env["TORCH_EXTENSIONS_DIR"] == str(tmp_path / "venv" / TORCH_EXTENSIONS_SUBDIR)
    assert launch_env({"TORCH_EXTENSIONS_DIR": "/x"})["TORCH_EXTENSIONS_DIR"] == "/x"  # the user's wins
    assert torch_extensions_dir(tmp_path) == tmp_path / TORCH_EXTENSIONS_SUBDIR
    torchrun_sh = (REPO_ROOT / "launch" / "torchrun.sh").read_text()
    assert (
        "TORCH_EXTENSIONS_DIR=${TORCH_EXTENSIONS_DIR:-$BIOTUNE_VENV/$BIOTUNE_TORCH_EXTENSIONS_SUBDIR}"
        in torchrun_sh
    )
    common = subprocess.run(
        [
            "bash",
            "-c",
            f'source "{REPO_ROOT}/slurm/common.sh"; biotune_use_venv; echo "$TORCH_EXTENSIONS_DIR"',
        ],
        capture_output=True,
        text=True,
        env={
            "PATH": "/usr/bin:/bin",
            "BIOTUNE_HOME": str(REPO_ROOT),
            "BIOTUNE_VENV": sys.prefix,
            "TMPDIR": "/n",
        },
    )
    assert common.returncode == 0, common.stderr
    node_local = Path(common.stdout.strip())
    assert node_local.parts[:2] == ("/", "n") and node_local.name == TORCH_EXTENSIONS_SUBDIR

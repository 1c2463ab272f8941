"""The shell scripts and Python agree on the pre-emption exit code and the collective timeout.

``launch/defaults.sh`` is the shell's one copy of each value; every script sources it instead of writing the number.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from biotune.config import REPO_ROOT
from biotune.distributed import DEFAULT_COLLECTIVE_TIMEOUT_MIN, collective_timeout_min
from biotune.errors import EXIT_PREEMPTED

DEFAULTS = REPO_ROOT / "launch" / "defaults.sh"
SCRIPTS = sorted([*(REPO_ROOT / "launch").glob("*.sh"), *(REPO_ROOT / "slurm").glob("*.sh")])


def _shell_value(name: str) -> int:
    out = subprocess.run(
        ["bash", "-c", f'set -euo pipefail; source "{DEFAULTS}"; echo "${name}"'],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return int(out)


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

"""The lock file and the recorded library versions (biotune/versions.py, launch/constraints.txt)."""

from __future__ import annotations

import configparser
import importlib.metadata
import re

import torch
import transformers

from biotune import versions
from biotune.config import REPO_ROOT

CONSTRAINTS = REPO_ROOT / "launch" / "constraints.txt"


def _pins() -> dict[str, str]:
    pins = {}
    for line in CONSTRAINTS.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, version = line.split("==")
            pins[re.sub(r"[-_.]+", "-", name).lower()] = version.strip()
    return pins


def _requirement_names(text: str) -> list[str]:
    return [re.split(r"[<>=!~\[; ]", r.strip(), maxsplit=1)[0] for r in text.splitlines() if r.strip()]


def test_the_lock_file_pins_every_dependency_and_extra_of_setup_cfg() -> None:
    cfg = configparser.ConfigParser()
    cfg.read(REPO_ROOT / "setup.cfg")
    needed = _requirement_names(cfg["options"]["install_requires"])
    needed += _requirement_names(cfg["options.extras_require"]["dev"])
    pins = _pins()
    missing = [n for n in needed if re.sub(r"[-_.]+", "-", n).lower() not in pins and n != "torch"]
    assert not missing, f"add {missing} to launch/constraints.txt (bash launch/lock.sh)"


def test_the_installed_environment_is_the_locked_one() -> None:
    """launch/install.sh installs with -c launch/constraints.txt: what is installed is what is pinned."""
    pins = _pins()
    for name in ("transformers", "deepspeed", "datasets", "numpy", "scipy", "scikit-learn", "pyarrow"):
        assert importlib.metadata.version(name) == pins[name], name


def test_library_versions_are_the_imported_ones() -> None:
    found = versions.library_versions()
    assert found["torch"] == torch.__version__
    assert found["transformers"] == transformers.__version__
    assert set(versions.TRACKED) <= set(found)
    assert found["python"].count(".") == 2


def test_differences_name_each_library_version_and_cell() -> None:
    records = {
        "base-s0": {"transformers": "5.24.0", "torch": "2.13.0"},
        "base-s1": {"transformers": "5.25.0", "torch": "2.13.0"},
        "drop_re-s0": {"transformers": "5.25.0", "torch": "2.13.0"},
    }
    diffs = versions.differences(records)
    assert diffs == {"transformers": {"5.24.0": ["base-s0"], "5.25.0": ["base-s1", "drop_re-s0"]}}
    assert versions.describe(diffs) == "transformers: 5.24.0 (base-s0); 5.25.0 (base-s1, drop_re-s0)"
    assert versions.differences({"a": records["base-s1"], "b": records["drop_re-s0"]}) == {}

"""Instruction sets on the Hugging Face hub are pinned to a commit (issue 20, item 10).

A hub dataset changes under the same id, and the data build is cached by its inputs: an id read without a commit
would keep serving the first rows it was built from, and an evaluation would score other rows than the run it is
compared with. So ``hf://org/name`` must be written ``hf://org/name@<40-hex commit>``; an id without one, or with
a branch or tag (they move), is exit 2 naming the key and how to find the commit, before anything is read or
written. The pinned commit is part of the build's cache key, so another commit is another build. A local path is
never sent to the hub.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from bad_input_harness import REPO, Case, base_env, check, ids, run_selected

from biotune.config import load
from biotune.data.cache import FileHashes, cache_key
from biotune.errors import DataError
from biotune.sources import resolve_root
from biotune.sources.instructions import load_instructions

TRAIN = "{repo}/configs/train/tiny.yaml"
EVAL = "{repo}/configs/eval/tiny.yaml"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
FIX = "pin the dataset's commit: write hf://org/name@<40-hex commit>"


def train(case_id: str, path: str, where: str) -> Case:
    """``biotune train configs/train/tiny.yaml data.instructions.x.path=PATH --dry-run``."""
    return Case(case_id, ("train", TRAIN, f"data.instructions.x.path={path}", "--dry-run"), where, FIX)


CASES = [
    train(
        "train-hub-unpinned",
        "hf://org/name",
        "data.instructions.x.path: hub dataset hf://org/name: no revision",
    ),
    train("train-hub-branch", "hf://org/name@main", "revision 'main' is not a commit"),
    train("train-hub-short-commit", "hf://org/name@0123456", "revision '0123456' is not a commit"),
    Case(
        "eval-hub-unpinned",
        ("eval", EVAL, "eval.instructions.x.path=hf://org/name", "--dry-run"),
        "eval.instructions.x.path: hub dataset hf://org/name: no revision is pinned",
        FIX,
    ),
    Case(
        "data-build-hub-tag",
        ("data", "build", TRAIN, "data.tokenizer={tok}", "data.instructions.x.path=hf://org/name@v1.0"),
        "revision 'v1.0' is not a commit",
        FIX,
    ),
]
assert len({c.id for c in CASES}) == len(CASES)


@pytest.fixture(scope="module")
def results(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, tiny_model: Path):
    return run_selected(request, CASES, tmp_path_factory.mktemp("bad_hub_pins"), tiny_model)


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_an_unpinned_hub_set_is_refused(case: Case, results, tiny_model: Path) -> None:
    check(case, results[case.id], tiny_model)


def _key(path: str, tmp: Path) -> str:
    cfg = load(REPO / "configs/train/tiny.yaml", [f"data.instructions.x.path={path}", f"data.out_dir={tmp}"])
    return cache_key(cfg.data, resolve_root(cfg.data.root), "tokenizer", FileHashes(tmp))


def test_the_commit_is_part_of_the_build_cache_key(tmp_path: Path) -> None:
    """Another commit of the same id is another build; the same commit is the same build."""
    other = "f" * 40
    assert _key(f"hf://org/name@{COMMIT}", tmp_path) == _key(f"hf://org/name@{COMMIT}", tmp_path)
    assert _key(f"hf://org/name@{COMMIT}", tmp_path) != _key(f"hf://org/name@{other}", tmp_path)


def test_a_pinned_set_is_read_at_its_commit_and_an_unpinned_one_never_asks_the_hub(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Offline, the pinned id reaches the hub client, which names the id and commit it could not fetch; the
    unpinned one is refused before any request (the library function applies the config's rule too)."""
    for key, value in base_env().items():
        if key.startswith(("HF_", "WANDB_")):
            monkeypatch.setenv(key, value)
    with pytest.raises(DataError, match="no revision is pinned") as refused:
        load_instructions("hf://org/name")
    assert "cannot load hub dataset" not in str(refused.value)
    with pytest.raises(DataError) as offline:
        load_instructions(f"hf://org/name@{COMMIT}", "train")
    assert str(offline.value).startswith(f"hf://org/name@{COMMIT}: cannot load hub dataset split 'train'")

"""Instruction sets on the Hugging Face hub: how one is written (``hf://org/name@<commit>``) and the pin rule.

One owner for the rule that a hub set is read only at a full commit: :mod:`biotune.config` checks it when a
config is loaded, :mod:`biotune.sources.instructions` before it reads, and :mod:`biotune.data.cache` keys
builds by the commit. It sits at the catalogue's floor (below :mod:`biotune.config`), so it imports nothing of
biotune's but errors and messages.
"""

from __future__ import annotations

import re

from biotune.errors import Problem, shown

#: The prefix that marks an instruction set on the Hugging Face hub: ``hf://org/name@<commit>``.
HUB_PREFIX = "hf://"
#: A hub revision biotune accepts: a full commit hash (a branch or a tag can move; a commit cannot).
HUB_COMMIT = re.compile(r"[0-9a-f]{40}")
HUB_PIN_FIX = (
    "pin the dataset's commit: write {path}@<40-hex commit> (the commit is on the dataset's 'Files and "
    "versions' page, or `huggingface_hub.HfApi().dataset_info('{id}').sha`), or download the rows and give a "
    "local file"
)


def hub_location(path: str) -> tuple[str, str] | None:
    """``(dataset id, revision)`` of an instruction-set path written ``hf://org/name@revision`` (revision ``""``
    when none is written); None for a local path, which is never sent to the hub."""
    if not path.startswith(HUB_PREFIX):
        return None
    dataset_id, _, revision = path[len(HUB_PREFIX) :].partition("@")
    return dataset_id, revision


def hub_pin_problem(key: str, path: str) -> Problem | None:
    """A :class:`Problem` for ``key`` when ``path`` is a hub id not pinned to a commit; None otherwise.

    A hub dataset's rows change under the same id: the data build's cache key and the evaluation's rows follow
    the commit, so an unpinned id (or a branch or tag, which move) is refused rather than silently reused.
    """
    hub = hub_location(path)
    if hub is None:
        return None
    dataset_id, revision = hub
    if HUB_COMMIT.fullmatch(revision):
        return None
    what = f"revision {shown(revision)!r} is not a commit" if revision else "no revision is pinned"
    return Problem(
        key,
        f"hub dataset {shown(path)}: {what}, so a later change to the dataset would be read silently",
        HUB_PIN_FIX.format(path=shown(f"{HUB_PREFIX}{dataset_id}"), id=shown(dataset_id)),
    )

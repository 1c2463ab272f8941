"""The split vocabulary: every spelling of a split's name, the role each plays, and the ``<source>/<split>`` label.

Corpora spell their development split differently (``devel`` in the BioBERT/BLURB IOB copies, ``dev`` in
ChemProt and MedNLI, ``validation`` in the Hugging Face copies); a config asks for a split by any spelling
(``eval.splits=[dev, test]``) and a source answers with its own name. What a split is *for* is its role:

* ``train``: trained on;
* ``dev`` (:attr:`SplitRole.SELECTION`): used to choose (mixtures, checkpoints, fits); never reported as the result;
* ``test``: reported at the end, never used to choose.

A split name outside :data:`SPELLINGS` (``fold3_test``, a custom source's own name) has no role: it is shown
under its own name and never selected on. This module is the only place that lists the spellings; the
registry, evaluation, reports and the sweep import it.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable


class SplitRole(enum.StrEnum):
    """What a split is used for; the value is the name tables and configs show."""

    TRAIN = "train"
    SELECTION = "dev"
    TEST = "test"


#: Role -> the names corpora give a split of that role, the canonical one (the role's value) first.
SPELLINGS: dict[SplitRole, tuple[str, ...]] = {
    SplitRole.TRAIN: ("train",),
    SplitRole.SELECTION: ("dev", "devel", "validation", "valid"),
    SplitRole.TEST: ("test",),
}
_ROLE_OF = {name: role for role, names in SPELLINGS.items() for name in names}

#: Separates source and split in a set label (``ncbi_disease/devel``).
LABEL_SEP = "/"


def role_of(split: str) -> SplitRole | None:
    """The role of a split name (any spelling), or None for a name outside the vocabulary."""
    return _ROLE_OF.get(split)


def role_name(split: str) -> str:
    """The role's name for a split of the vocabulary (``devel`` -> ``dev``), else the split's own name."""
    role = role_of(split)
    return split if role is None else role.value


def spellings_of(split: str) -> tuple[str, ...]:
    """``split`` first, then the other spellings of its role (``devel`` -> devel, dev, validation, valid)."""
    role = role_of(split)
    others = () if role is None else tuple(s for s in SPELLINGS[role] if s != split)
    return (split, *others)


def resolve(requested: str, split_names: Iterable[str]) -> str | None:
    """The source's own name for a requested split (``dev`` -> ``devel`` where the corpus spells it so), trying
    ``requested`` and then the other spellings of its role in :data:`SPELLINGS` order; None when it has none."""
    names = set(split_names)
    return next((s for s in spellings_of(requested) if s in names), None)


#: Tables and plots show the sets of each role in this order (selection first); other names follow by name.
_SHOW_ORDER = (SplitRole.SELECTION, SplitRole.TEST, SplitRole.TRAIN)


def display_order(split: str) -> tuple[int, str]:
    """A sort key that puts dev (selection) splits of any spelling first, then test, then train, then other
    names (alphabetically within each)."""
    role = role_of(split)
    return (_SHOW_ORDER.index(role) if role is not None else len(_SHOW_ORDER), split)


def set_label(source: str, split: str) -> str:
    """The label of one evaluation set: ``<source>/<split>`` (the split in the source's own spelling)."""
    return f"{source}{LABEL_SEP}{split}"


def parse_set_label(label: str) -> tuple[str, str]:
    """``<source>/<split>`` -> (source, split).

    Raises:
        ValueError: for a label without both parts.
    """
    source, sep, split = label.rpartition(LABEL_SEP)
    if not sep or not source or not split:
        raise ValueError(f"set label {label!r} is not '<source>{LABEL_SEP}<split>'")
    return source, split

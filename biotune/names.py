"""The one rule for names that become file or directory names.

Sources, custom sources, splits, ``data.split_files`` keys, instruction sets, an evaluation set's
``corpus_split``, sweep variants and sweeps all end up as one component of a path that biotune writes
(``predictions/<source>__<split>.jsonl``, ``runs/sweeps/<sweep>/cells/<variant>-s<seed>/``, ...). Such a name
must stay one component inside its output directory: :data:`NAME_PATTERN` allows letters, digits and
``._+-``, starting with a letter or digit (so no ``/``, no ``..``, no hidden file), and :data:`MAX_NAME_LEN`
leaves room under the 255-byte file-name limit of common file systems for the two names and the suffixes
one file name joins (``<source>__<split>.jsonl``, ``<variant>-s<seed>``). Config validation and the sweep
spec call :func:`name_problem`; :func:`biotune.io.inside` checks every such path again where it is written.
"""

from __future__ import annotations

import re
from typing import Any

from biotune.errors import Problem, shown

#: The longest name a path component built from a config value may have (two of them + suffixes < 255 bytes).
MAX_NAME_LEN = 100
#: Letters, digits and ``._+-``, starting with a letter or digit.
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")
_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]+")
_LEADING = re.compile(r"^[^A-Za-z0-9]+")


def safe_name(text: str) -> str:
    """``text`` with every run of characters outside ``[A-Za-z0-9._+-]`` replaced by ``_``, and what comes
    before its first letter or digit dropped (its length is left to :func:`name_problem` to judge)."""
    return _LEADING.sub("", _UNSAFE.sub("_", text)).rstrip("_") or "x"


def name_problem(key: str, value: object, what: str = "name") -> Problem | None:
    """A :class:`Problem` for ``key`` when ``value`` cannot be used as a file name; None when it can.

    ``what`` says what the name is (``source name``, ``split``, ...) in the message.
    """
    text = str(value)
    echo = shown(text)
    if len(text) > MAX_NAME_LEN:
        return Problem(
            key,
            f"{what} {echo!r} is longer than {MAX_NAME_LEN} characters (it becomes a file name)",
            f"use a shorter {what}, e.g. {safe_name(text)[:40].rstrip('_')!r}",
        )
    if not NAME_PATTERN.fullmatch(text):
        return Problem(
            key,
            f"{what} {echo!r} cannot be a file name: use letters, digits and ._+- only, starting with a "
            "letter or digit (no '/', no '..')",
            f"rename it, e.g. {safe_name(text)!r}",
        )
    return None


def config_name_problems(cfg: Any) -> list[Problem]:
    """Every config value of a ``RunConfig`` that becomes a path component and breaks the rule.

    The keys: ``data.sources`` names and their ``split``; ``data.custom_sources`` names and their ``files``
    splits; ``data.split_files`` sources and splits; ``data.instructions`` names; ``eval.sources`` and
    ``eval.splits``; ``eval.instructions`` names and the split their predictions are filed under
    (``corpus_split``, else ``split``). A training instruction set's ``split`` only selects rows (a hub split
    may be ``train[:10%]``), so it is not checked.
    """
    d, e = cfg.data, cfg.eval
    named: list[tuple[str, object, str]] = []
    for name, mix in d.sources.items():
        named += [
            (f"data.sources.{name}", name, "source name"),
            (f"data.sources.{name}.split", mix.split, "split"),
        ]
    for name, custom in d.custom_sources.items():
        named.append((f"data.custom_sources.{name}", name, "source name"))
        named += [(f"data.custom_sources.{name}.files.{s}", s, "split") for s in custom.files]
    for name, files in d.split_files.items():
        named.append((f"data.split_files.{name}", name, "source name"))
        named += [(f"data.split_files.{name}.{s}", s, "split") for s in files]
    named += [(f"data.instructions.{name}", name, "instruction set name") for name in d.instructions]
    named += [(f"eval.sources[{i}]", name, "source name") for i, name in enumerate(e.sources)]
    named += [(f"eval.splits[{i}]", split, "split") for i, split in enumerate(e.splits)]
    for name, one in e.instructions.items():
        named.append((f"eval.instructions.{name}", name, "instruction set name"))
        field = "corpus_split" if one.corpus_split else "split"
        if one.corpus_split or one.split.strip():  # an empty split is reported by the config's own check
            named.append((f"eval.instructions.{name}.{field}", one.corpus_split or one.split, "split"))
    return [p for key, value, what in named if (p := name_problem(key, value, what)) is not None]

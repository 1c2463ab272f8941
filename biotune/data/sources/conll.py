"""CoNLL/IOB NER files -> :class:`NerSentence`.

Format: one token per line, ``token<TAB>tag`` (or whitespace-separated when a line has no tab; the token
is the first column and the tag the last), a blank line between sentences, ``-DOCSTART-`` lines ignored
(they also end a sentence). Tags are IOB2: ``O``, ``B-<type>``, ``I-<type>``. Untyped ``B``/``I`` tags
(BioBERT copies of JNLPBA and S800) get the source's ``entity_type``, so every tag we return is typed.

Repair: an ``I-X`` that does not continue an ``X`` mention (after ``O`` or after another type) is turned
into ``B-X`` and counted (the ``iob_repairs`` counter of :func:`biotune.data.sources.reader_counts`). None of the staged corpora need it (their repair count is 0, checked by the tests);
user-supplied files such as i2b2-2012 conversions sometimes do.

Record ids are ``<file stem>:<sentence index>`` (0-based, counting the sentences returned).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from biotune.data.records import NerSentence
from biotune.data.sources._io import check_label, count, lines
from biotune.data.sources.spec import SourceSpec
from biotune.errors import DataError

log = logging.getLogger(__name__)

DOCSTART = "-DOCSTART-"


@dataclass(frozen=True)
class ConllResult:
    """Sentences read from one file and how many ``I-`` tags were repaired to ``B-``."""

    sentences: list[NerSentence]
    repairs: int


def _typed_tag(tag: str, spec: SourceSpec, path: Path, number: int) -> str:
    """Normalise one tag to typed IOB2, or raise naming the line."""
    if tag == "O":
        return tag
    prefix, _, etype = tag.partition("-")
    if prefix not in ("B", "I"):
        raise DataError(path, f"tag {tag!r} is not IOB2", "use O, B-<type> or I-<type>", number)
    if not etype:
        if spec.entity_type is None:
            raise DataError(
                path,
                f"untyped tag {tag!r} in a typed corpus",
                "give every B/I tag a type, e.g. B-PROBLEM",
                number,
            )
        etype = spec.entity_type
    check_label(etype, spec.labels, path, number)
    return f"{prefix}-{etype}"


def _split_line(line: str, path: Path, number: int) -> tuple[str, str]:
    """Return ``(token, tag)`` of a token line."""
    parts = line.split("\t") if "\t" in line else line.split()
    if len(parts) < 2 or not parts[0].strip() or not parts[-1].strip():
        raise DataError(
            path,
            f"expected 'token<TAB>tag', found {line!r}",
            "add the tag column (O, B-<type>, I-<type>) or remove the line; sentences are separated by blank lines",
            number,
        )
    return parts[0].strip(), parts[-1].strip()


def read_conll(path: Path, spec: SourceSpec) -> ConllResult:
    """Read one CoNLL/IOB file into typed IOB2 sentences (see the module docstring for the rules)."""
    sentences: list[NerSentence] = []
    tokens: list[str] = []
    tags: list[str] = []
    repairs = 0

    def flush() -> None:
        if tokens:
            sentences.append(NerSentence(f"{path.stem}:{len(sentences)}", tuple(tokens), tuple(tags)))
            tokens.clear()
            tags.clear()

    for number, line in lines(path):
        if not line.strip() or line.startswith(DOCSTART):
            flush()
            continue
        token, raw_tag = _split_line(line, path, number)
        tag = _typed_tag(raw_tag, spec, path, number)
        if tag.startswith("I-") and (not tags or tags[-1][2:] != tag[2:]):
            tag = "B-" + tag[2:]
            repairs += 1
        tokens.append(token)
        tags.append(tag)
    flush()
    if not sentences:
        raise DataError(path, "file has no sentences", "restore the file: expected token<TAB>tag lines")
    if repairs:
        log.warning("%s: repaired %d I- tags that did not continue a mention into B- tags", path, repairs)
    return ConllResult(sentences, repairs)


def load_conll(path: Path, spec: SourceSpec, split: str) -> list[NerSentence]:
    """Reader entry point for ``format="conll"``; the repairs go to the ``iob_repairs`` reader counter."""
    result = read_conll(path, spec)
    count("iob_repairs", result.repairs)
    return result.sentences

"""CoNLL/IOB NER files -> :class:`NerSentence`.

Format: one token per line, ``token<TAB>tag`` (or whitespace-separated when a line has no tab; the token
is the first column and the tag the last), a blank line between sentences, ``-DOCSTART-`` lines ignored
(they also end a sentence). Tags are IOB2: ``O``, ``B-<type>``, ``I-<type>``. Untyped ``B``/``I`` tags
(BioBERT copies of JNLPBA and S800) get the source's ``entity_type``, so every tag we return is typed.

Repair: an ``I-X`` that does not continue an ``X`` mention (after ``O`` or after another type) is turned
into ``B-X`` and counted (the ``iob_repairs`` counter of :func:`biotune.sources.reader_counts`). None of the staged corpora need it (their repair count is 0, checked by the tests);
user-supplied files such as i2b2-2012 conversions sometimes do.

Record ids are ``<file stem>:<sentence index>`` (0-based, counting the sentences returned).

A file in the common shape (every line blank, a ``-DOCSTART-`` line or exactly ``token<TAB>tag`` with nothing
to strip, no ``\\r``, every tag known and no repair needed) is read by :func:`_read_plain`, with string methods
over whole sentences and checks on the distinct cells and tags only. Anything else, including every error,
goes through the line-by-line reader, which names the line; both give the same sentences (tested).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

from biotune.errors import DataError, shown
from biotune.sources._io import check_label, count, read_text, split_lines
from biotune.sources.records import NerSentence
from biotune.sources.spec import SourceSpec

log = logging.getLogger(__name__)

DOCSTART = "-DOCSTART-"

_DOCSTART_LINE = re.compile(rf"^{DOCSTART}[^\n]*", re.MULTILINE)
_BLANK_LINES = re.compile(r"\n\n+")


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
            f"expected 'token<TAB>tag', found {shown(line)!r}",
            "add the tag column (O, B-<type>, I-<type>) or remove the line; sentences are separated by blank lines",
            number,
        )
    return parts[0].strip(), parts[-1].strip()


def read_conll(path: Path, spec: SourceSpec) -> ConllResult:
    """Read one CoNLL/IOB file into typed IOB2 sentences (see the module docstring for the rules)."""
    text = read_text(path)
    result = _read_plain(text, path, spec) or _read_lines(text, path, spec)
    if not result.sentences:
        raise DataError(path, "file has no sentences", "restore the file: expected token<TAB>tag lines")
    if result.repairs:
        log.warning(
            "%s: repaired %d I- tags that did not continue a mention into B- tags", path, result.repairs
        )
    return result


def _read_plain(text: str, path: Path, spec: SourceSpec) -> ConllResult | None:
    """The sentences of a file in the common shape (module docstring), or None for any other file.

    Per token only C-level string and set operations run: a sentence block is cut into cells at tabs and
    newlines and must join back into itself with tab, newline, tab, ... (each line exactly one tab); the
    distinct cells must have nothing to strip, the distinct tags must be known, and the distinct adjacent tag
    pairs must need no repair.
    """
    if "\r" in text:
        return None
    if DOCSTART in text:  # a -DOCSTART- line ends a sentence, as a blank line does
        text = _DOCSTART_LINE.sub("", text)
    typed: dict[str, str] = {}
    cells_seen: set[str] = set()
    pairs_seen: set[tuple[str, str]] = set()
    blocks: list[tuple[list[str], list[str]]] = []
    for block in _BLANK_LINES.split(text.strip("\n")):
        if not block:
            continue
        cells = block.replace("\n", "\t").split("\t")
        tokens, tags = cells[0::2], cells[1::2]
        if len(tokens) != len(tags) or "\n".join(map("\t".join, zip(tokens, tags, strict=True))) != block:
            return None
        cells_seen.update(cells)
        blocks.append((tokens, tags))
    if not all(cell and cell == cell.strip() for cell in cells_seen):
        return None
    for raw in {t for _, tags in blocks for t in set(tags)}:
        try:
            typed[raw] = _typed_tag(raw, spec, path, 0)
        except DataError:
            return None  # the line-by-line reader names the line
    sentences: list[NerSentence] = []
    for tokens, tags in blocks:
        tags = [typed[t] for t in tags]
        pairs_seen.update(zip(["O", *tags], tags, strict=False))
        sentences.append(NerSentence(f"{path.stem}:{len(sentences)}", tuple(tokens), tuple(tags)))
    if any(tag[0] == "I" and prev[2:] != tag[2:] for prev, tag in pairs_seen):
        return None  # a repair: counted by the line-by-line reader
    return ConllResult(sentences, 0)


def _read_lines(text: str, path: Path, spec: SourceSpec) -> ConllResult:
    """Any CoNLL file, line by line: blank and ``-DOCSTART-`` lines end a sentence; errors name the line."""
    sentences: list[NerSentence] = []
    tokens: list[str] = []
    tags: list[str] = []
    repairs = 0

    def flush() -> None:
        if tokens:
            sentences.append(NerSentence(f"{path.stem}:{len(sentences)}", tuple(tokens), tuple(tags)))
            tokens.clear()
            tags.clear()

    for number, line in split_lines(text):
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
    return ConllResult(sentences, repairs)


def load_conll(path: Path, spec: SourceSpec, split: str) -> list[NerSentence]:
    """Reader entry point for ``format="conll"``; the repairs go to the ``iob_repairs`` reader counter."""
    result = read_conll(path, spec)
    count("iob_repairs", result.repairs)
    return result.sentences

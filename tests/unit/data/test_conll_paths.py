"""The CoNLL reader's two paths: the plain-file fast path and the line-by-line reader give the same sentences.

Files in shapes only the line-by-line reader handles fall back to it, with the same result or the same error.
Every staged CoNLL split of the real corpora is read both ways in
``tests/integration/data/test_conll_paths_real.py``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from biotune.errors import DataError
from biotune.sources import SOURCES
from biotune.sources.conll import _read_lines, _read_plain, read_conll


def _spec(entity_type: str | None = "Disease") -> object:
    spec = SOURCES["ncbi_disease"]
    return dataclasses.replace(spec, entity_type=entity_type) if entity_type != spec.entity_type else spec


PLAIN = "Aspirin\tO\ncauses\tO\nReye\tB-Disease\nsyndrome\tI-Disease\n\n\n\nIt\tO\n.\tO\n"
FALLBACK = {
    "crlf": PLAIN.replace("\n", "\r\n"),
    "docstart glued to a sentence": "-DOCSTART-\tO\nIt\tO\n" + PLAIN,
    "space separated": "Aspirin O\ncauses  O\n\nIt\tO\n",
    "blank line of spaces": "Aspirin\tO\n   \nIt\tO\n",
    "padded cells": "Aspirin \tO\ncauses\t O\n\nIt\tO\n",
    "three columns": "Aspirin\tNN\tO\nIt\tPRP\tB-Disease\n",
    "untyped tags": "Reye\tB\nsyndrome\tI\n",
    "repair": "It\tO\nsyndrome\tI-Disease\n",
    "leading blank lines": "\n\n" + PLAIN,
    "no final newline": PLAIN.rstrip("\n"),
    "non-breaking space": "Aspirin\u00a0\tO\nIt\tO\n",
}


@pytest.mark.parametrize("case", sorted(FALLBACK))
def test_other_shapes_read_the_same_either_way(tmp_path: Path, case: str) -> None:
    path = tmp_path / "train.tsv"
    path.write_text(FALLBACK[case], encoding="utf-8", newline="")
    spec = _spec()
    careful = _read_lines(FALLBACK[case], path, spec)
    assert read_conll(path, spec) == careful
    plain = _read_plain(FALLBACK[case], path, spec)
    assert plain is None or plain == careful


def test_the_plain_file_reads_as_sentences(tmp_path: Path) -> None:
    path = tmp_path / "train.tsv"
    path.write_text(PLAIN, encoding="utf-8")
    result = read_conll(path, _spec())
    assert [(s.id, s.tokens, s.tags) for s in result.sentences] == [
        ("train:0", ("Aspirin", "causes", "Reye", "syndrome"), ("O", "O", "B-Disease", "I-Disease")),
        ("train:1", ("It", "."), ("O", "O")),
    ]
    assert result.repairs == 0


@pytest.mark.parametrize(
    ("text", "line"),
    [("It\tO\nReye\tB-Virus\n", 2), ("It\tO\n\nReye\tX-Disease\n", 3), ("It\tO\nReye\t\n", 2)],
)
def test_errors_in_plain_looking_files_name_the_line(tmp_path: Path, text: str, line: int) -> None:
    path = tmp_path / "train.tsv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DataError) as err:
        read_conll(path, _spec())
    assert err.value.line == line

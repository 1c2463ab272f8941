"""Every staged CoNLL split of the real corpora takes the CoNLL reader's plain-file fast path (it is what makes
builds fast) and reads the same sentences as the line-by-line reader. Needs the real corpora (``corpora``)."""

from __future__ import annotations

from pathlib import Path

from biotune.sources import SOURCES, available_splits
from biotune.sources.conll import _read_lines, _read_plain


def test_every_staged_conll_split_takes_the_plain_path_with_the_same_sentences(corpora: Path) -> None:
    read = 0
    for spec in SOURCES.values():
        if spec.format != "conll":
            continue
        for split, path in available_splits(spec, corpora).items():
            text = path.read_text(encoding="utf-8")
            plain = _read_plain(text, path, spec)
            assert plain is not None, f"{spec.name}/{split} ({path}) missed the fast path"
            assert plain == _read_lines(text, path, spec), f"{spec.name}/{split}"
            read += len(plain.sentences)
    assert read > 100_000  # every NER corpus, all splits

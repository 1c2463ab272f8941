"""The leakage check's text normalisation: the ASCII fast path gives what the full Unicode path gives."""

from __future__ import annotations

import re
import unicodedata

from biotune.data.leakage import normalise


def _full(text: str) -> str:
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c))
    return re.sub(r"[\W_]+", " ", text.lower()).strip()


def test_ascii_fast_path_equals_the_unicode_path() -> None:
    texts = [
        "BRCA1 mutations cause Breast-Cancer (see Fig. 2).",
        "  @GENE$ and @DISEASE$ ;; under_scores  ",
        "Naïve café: Sjögren's syndrome",  # not ASCII: the full path
        "",
    ]
    assert [normalise(t) for t in texts] == [_full(t) for t in texts]
    assert normalise("Sjögren's") == "sjogren s"


def test_ascii_fast_path_over_every_ascii_character() -> None:
    import random

    rng = random.Random(0)
    alphabet = [chr(c) for c in range(128)]
    texts = ["".join(alphabet), *("".join(rng.choices(alphabet, k=rng.randint(0, 80))) for _ in range(2000))]
    assert [normalise(t) for t in texts] == [_full(t) for t in texts]

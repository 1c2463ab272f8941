"""NER on the real corpora: gold tag lines of real sentences, perturbed the ways models write them, read back.

The hand-made cases are in ``tests/unit/data/tasks/test_ner.py``.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from biotune.data.tasks import ParseResult, task_for
from biotune.sources import SOURCES, available_splits, load_records


@pytest.mark.parametrize("name", ["ncbi_disease", "bc5cdr_pubtator_ner", "jnlpba_typed"])
def test_noisy_completions_of_real_sentences(corpora: Path, name: str) -> None:
    """Perturb gold tag lines of real sentences the ways models do; check each token's tag stays in place."""
    split = next(iter(available_splits(SOURCES[name], corpora)))  # the first staged split
    records = [r for r in load_records(name, split, corpora)[:400] if len(r.tokens) >= 3]
    task = task_for(SOURCES[name])
    rng = random.Random(7)
    for record in records:
        lines = task.format_output(record).splitlines()
        noisy = [
            (line.upper() if rng.random() < 0.3 else line).replace(" : ", rng.choice([":", " :", "  :  "]))
            for line in lines
        ]
        completion = "Here are the tags:\n" + "\n".join(noisy) + "\nDone."
        assert task.parse(completion, record) == ParseResult(record.tags, True), completion
        # drop one line whose token differs from its neighbours: exactly that token becomes O, flagged
        norm = [t.casefold() for t in record.tokens]
        ks = [k for k in range(1, len(norm) - 1) if norm[k] not in (norm[k - 1], norm[k + 1])]
        if not ks:
            continue
        k = rng.choice(ks)
        parsed = task.parse("\n".join(lines[:k] + lines[k + 1 :]), record)
        expected = list(record.tags)
        expected[k] = "O"
        assert parsed.value == tuple(expected) and not parsed.ok and str(k) in parsed.error

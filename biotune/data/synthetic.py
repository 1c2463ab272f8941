"""A synthetic NER corpus from small bundled lexicons: the learnability probe of the whole pipeline.

Entities (diseases and chemicals) are placed in varied carrier sentences and written as a CoNLL file with
typed IOB2 tags, read back through the ordinary CoNLL reader as the source ``synthetic_ner``. The test split
uses only (carrier, entity) combinations that never occur in training, so a model that scores well on it has
learnt to tag, not to recall sentences. Nothing here is real data.
"""

from __future__ import annotations

import itertools
import random
from pathlib import Path

DISEASES = (
    "asthma", "migraine", "psoriasis", "gout", "anemia", "hepatitis", "glaucoma", "epilepsy", "malaria",
    "leukemia", "lupus", "sepsis", "tuberculosis", "pneumonia", "nephritis", "colitis", "dermatitis",
    "arthritis", "hypertension", "cardiomyopathy", "neuropathy", "pancreatitis", "myopathy", "cirrhosis",
    "bronchitis", "lymphoma", "melanoma", "scoliosis", "sarcoidosis", "vasculitis",
)
CHEMICALS = (
    "aspirin", "cisplatin", "warfarin", "heparin", "lithium", "morphine", "insulin", "caffeine", "nicotine",
    "ibuprofen", "tamoxifen", "digoxin", "quinine", "atropine", "dopamine", "cocaine", "ethanol", "codeine",
    "ketamine", "naloxone", "penicillin", "metformin", "clozapine", "fluoxetine", "propofol", "lidocaine",
    "cortisol", "ozone", "arsenic", "benzene",
)
# {D} = a disease, {C} = a chemical. Each carrier holds one or two entities.
CARRIERS = (
    "Patients with {D} were treated with {C} for six weeks .",
    "The risk of {D} increased after exposure to {C} .",
    "{C} reduced the symptoms of {D} in most subjects .",
    "We report a case of {D} induced by {C} .",
    "Long term use of {C} may cause {D} in older adults .",
    "No association between {C} and {D} was found .",
    "Chronic {D} is a common reason for hospital visits .",
    "The cohort included children diagnosed with {D} .",
    "Serum levels of {C} were measured every morning .",
    "A single dose of {C} was given before surgery .",
    "Several studies describe {D} after treatment with {C} .",
    "The trial compared {C} with placebo in adults with {D} .",
    "Early signs of {D} were seen in the second group .",
    "High doses of {C} are toxic to the liver .",
    "{D} and {D} often occur together in this population .",
    "Both {C} and {C} were detected in the samples .",
    "The mice developed {D} when fed {C} daily .",
    "Withdrawal of {C} improved the {D} within days .",
    "Most cases of {D} resolved without therapy .",
    "Exposure to {C} is linked to later {D} .",
)


def _fill(carrier: str, rng: random.Random) -> tuple[list[str], list[str], tuple[str, ...]]:
    tokens: list[str] = []
    tags: list[str] = []
    used: list[str] = []
    for word in carrier.split():
        if word in ("{D}", "{C}"):
            pool, etype = (DISEASES, "Disease") if word == "{D}" else (CHEMICALS, "Chemical")
            entity = rng.choice([e for e in pool if e not in used])
            used.append(entity)
            parts = entity.split()
            tokens += parts
            tags += [f"B-{etype}"] + [f"I-{etype}"] * (len(parts) - 1)
        else:
            tokens.append(word)
            tags.append("O")
    return tokens, tags, tuple(used)


def generate(n_train: int, n_test: int, seed: int = 0) -> tuple[list[tuple[list[str], list[str]]], list[tuple[list[str], list[str]]]]:
    """Sentences for train and test; no (carrier, entities) combination of test occurs in train."""
    rng = random.Random(f"synthetic-ner:{seed}")
    seen: set[tuple[int, tuple[str, ...]]] = set()
    train: list[tuple[list[str], list[str]]] = []
    for _ in itertools.count():
        if len(train) >= n_train:
            break
        c = rng.randrange(len(CARRIERS))
        tokens, tags, ents = _fill(CARRIERS[c], rng)
        seen.add((c, ents))
        train.append((tokens, tags))
    test: list[tuple[list[str], list[str]]] = []
    for _ in range(n_test * 1000):
        if len(test) >= n_test:
            break
        c = rng.randrange(len(CARRIERS))
        tokens, tags, ents = _fill(CARRIERS[c], rng)
        if (c, ents) not in seen:
            seen.add((c, ents))
            test.append((tokens, tags))
    return train, test


def write_conll(sentences: list[tuple[list[str], list[str]]], path: Path) -> None:
    """One ``token<TAB>tag`` line per token, a blank line between sentences."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines: list[str] = []
    for tokens, tags in sentences:
        lines += [f"{t}\t{g}" for t, g in zip(tokens, tags, strict=True)] + [""]
    path.write_text("\n".join(lines), encoding="utf-8")


def write_corpus(root: str | Path, n_train: int = 2000, n_test: int = 200, seed: int = 0) -> Path:
    """Write ``root/synthetic_ner/{train,test}.tsv`` and return ``root``."""
    root = Path(root)
    train, test = generate(n_train, n_test, seed)
    write_conll(train, root / "synthetic_ner" / "train.tsv")
    write_conll(test, root / "synthetic_ner" / "test.tsv")
    return root


def corpus_text() -> list[str]:
    """Text to train a tokenizer on: every lexicon entry and carrier word."""
    return [" ".join(DISEASES), " ".join(CHEMICALS), *CARRIERS]

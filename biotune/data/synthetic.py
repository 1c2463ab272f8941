"""Synthetic corpora from small bundled lexicons: the learnability probes of the whole pipeline.

``synthetic_ner``
    Entities (diseases and chemicals) are placed in varied carrier sentences and written as a CoNLL file with
    typed IOB2 tags, read back through the ordinary CoNLL reader. The test split uses only (carrier, entity)
    combinations that never occur in training, so a model that scores well on it has learnt to tag, not to
    recall sentences.
``synthetic_re``
    Chemical-protein relation sentences in the BLUE masked-TSV layout (``@CHEMICAL$``, ``@GENE$``), read back
    through the ordinary ``blue_tsv`` reader. The label is a deterministic function of one cue phrase (e.g.
    ``suppresses`` -> ``INHIBITOR``); the frame around it and a context phrase carry no label information.
    The test split uses only (frame, cue) combinations that never occur in training, while every cue and every
    frame does occur there, so scoring above chance on it requires the cue -> label rule, not recall.

Nothing here is real data.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass
from pathlib import Path

from biotune.data.build import source_samples
from biotune.data.templates import render_prompt
from biotune.sources import SOURCES

DISEASES = (
    "migraine", "psoriasis", "gout", "anemia", "hepatitis", "glaucoma", "epilepsy", "malaria", "leukemia",
    "lupus", "sepsis", "tuberculosis", "pneumonia", "colitis", "arthritis", "lymphoma",
)  # fmt: skip
CHEMICALS = (
    "warfarin", "heparin", "morphine", "insulin", "caffeine", "ibuprofen", "tamoxifen", "digoxin", "quinine",
    "atropine", "cocaine", "ethanol", "ketamine", "penicillin", "metformin", "lidocaine",
)  # fmt: skip
# {D} = a disease, {C} = a chemical. Each carrier holds two or three entities.
CARRIERS = (
    "Patients with {D} were treated with {C} for six weeks .",
    "The risk of {D} increased after exposure to {C} and {C} .",
    "{C} reduced the symptoms of {D} in most subjects .",
    "We report a case of {D} and {D} induced by {C} .",
    "Long term use of {C} may cause {D} in older adults .",
    "No association between {C} and {D} was found .",
    "Chronic {D} is a common complication of {D} .",
    "The cohort included children with {D} who received {C} .",
    "Serum levels of {C} and {C} were measured every morning .",
    "A single dose of {C} was given to prevent {D} before surgery .",
    "Several studies describe {D} after treatment with {C} .",
    "The trial compared {C} with {C} in adults with {D} .",
    "Early signs of {D} were seen in patients taking {C} .",
    "High doses of {C} worsen {D} and {D} .",
    "{D} and {D} often occur together in this population .",
    "Both {C} and {C} were detected in patients with {D} .",
    "The mice developed {D} when fed {C} daily .",
    "Withdrawal of {C} improved the {D} within days .",
    "Most cases of {D} resolved after {C} was stopped .",
    "Exposure to {C} is linked to later {D} and {D} .",
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


def generate(
    n_train: int, n_test: int, seed: int = 0
) -> tuple[list[tuple[list[str], list[str]]], list[tuple[list[str], list[str]]]]:
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


# ----------------------------------------------------------------------------------------------------
# synthetic_re: chemical-protein relations whose label is decided by one cue phrase

RE_CHEMICAL, RE_GENE = "@CHEMICAL$", "@GENE$"
#: The negative class of ``synthetic_re`` ("no relation").
RE_NEGATIVE = "none"
#: Label -> the cue phrases that decide it. Every cue belongs to exactly one label.
RE_CUES: dict[str, tuple[str, ...]] = {
    "ACTIVATOR": ("activates", "stimulates", "enhances", "potentiates", "induces"),
    "INHIBITOR": ("inhibits", "blocks", "suppresses", "attenuates", "represses"),
    "SUBSTRATE": (
        "is metabolized by",
        "is oxidized by",
        "is hydroxylated by",
        "is cleaved by",
        "is transported by",
    ),
    RE_NEGATIVE: (
        "does not affect",
        "does not bind",
        "has no effect on",
        "is unrelated to",
        "does not alter",
    ),
}
RE_LABELS: tuple[str, ...] = tuple(RE_CUES)
# {V} = the cue phrase, {X} = a context phrase. Neither the frame nor the context depends on the label.
RE_FRAMES = (
    "@CHEMICAL$ {V} @GENE$ in {X} .",
    "In {X} , @CHEMICAL$ {V} @GENE$ .",
    "We show that @CHEMICAL$ {V} @GENE$ in {X} .",
    "Experiments in {X} revealed that @CHEMICAL$ {V} @GENE$ .",
    "The drug @CHEMICAL$ {V} the enzyme @GENE$ in {X} .",
    "Our data from {X} indicate that @CHEMICAL$ {V} @GENE$ .",
    "At low doses , @CHEMICAL$ {V} @GENE$ in {X} .",
    "Previous work in {X} found that @CHEMICAL$ {V} @GENE$ .",
    "As expected , the compound @CHEMICAL$ {V} @GENE$ in {X} .",
    "These assays in {X} confirm that @CHEMICAL$ {V} the protein @GENE$ .",
    "It was observed in {X} that @CHEMICAL$ {V} @GENE$ .",
    "Taken together , @CHEMICAL$ {V} @GENE$ in {X} .",
)
RE_CONTEXTS = (
    "rat liver", "human cells", "mice", "cultured neurons", "HeLa cells", "kidney tissue",
    "healthy volunteers",
    "yeast", "zebrafish larvae", "patient samples", "primary hepatocytes", "cell lines",
)  # fmt: skip


@dataclass(frozen=True)
class RelationExample:
    """One ``synthetic_re`` sentence with the parts it was made of."""

    frame: int
    """Index into :data:`RE_FRAMES`."""
    cue: str
    context: str
    label: str
    text: str


def re_cue_label(cue: str) -> str:
    """The label a cue phrase decides (the rule a model must learn)."""
    return next(label for label, cues in RE_CUES.items() if cue in cues)


def re_held_out(seed: int = 0) -> frozenset[tuple[int, str]]:
    """The (frame, cue) combinations reserved for the test split.

    For every frame and every label exactly one of the label's cues is held out, chosen by a seeded
    Latin-square rotation: each cue is held out with some frames and seen with the others, and each frame is
    seen in training with the remaining cues of every label, so neither frames nor cues alone predict the
    split.
    """
    rng = random.Random(f"synthetic-re-holdout:{seed}")
    held: set[tuple[int, str]] = set()
    for cues in RE_CUES.values():
        offset = rng.randrange(len(cues))
        held |= {(f, cues[(f + offset) % len(cues)]) for f in range(len(RE_FRAMES))}
    return frozenset(held)


def _re_example(frame: int, cue: str, context: str) -> RelationExample:
    text = RE_FRAMES[frame].replace("{V}", cue).replace("{X}", context)
    return RelationExample(frame, cue, context, re_cue_label(cue), text)


def _balanced(pool: list[RelationExample], n: int, rng: random.Random, repeat: bool) -> list[RelationExample]:
    """``n`` examples drawn so that every prefix of ``k * len(RE_LABELS)`` holds each label ``k`` times.

    Each label's examples are shuffled and used without replacement; when ``repeat`` is True a label that runs
    out starts over with a fresh shuffle, otherwise running out raises ``ValueError``.
    """
    by_label = {label: [e for e in pool if e.label == label] for label in RE_LABELS}
    queues: dict[str, list[RelationExample]] = {label: [] for label in RE_LABELS}
    used: set[str] = set()
    out: list[RelationExample] = []
    while len(out) < n:
        for label in rng.sample(RE_LABELS, len(RE_LABELS)):
            if len(out) >= n:
                break
            if not queues[label]:
                if label in used and not repeat:
                    raise ValueError(f"too few distinct {label} sentences for {n} balanced examples")
                used.add(label)
                queues[label] = rng.sample(by_label[label], len(by_label[label]))
            out.append(queues[label].pop())
    return out


def generate_re(
    n_train: int, n_test: int, seed: int = 0
) -> tuple[list[RelationExample], list[RelationExample]]:
    """Label-balanced ``synthetic_re`` sentences for train and test.

    Test sentences use only the held-out (frame, cue) combinations of :func:`re_held_out` and are distinct;
    training sentences use only the others and repeat (as an upsampled source would) once ``n_train`` exceeds
    the distinct ones.

    Raises:
        ValueError: when ``n_test`` exceeds the number of distinct held-out sentences.
    """
    held = re_held_out(seed)
    cues = [cue for label_cues in RE_CUES.values() for cue in label_cues]
    every = [_re_example(f, cue, x) for f in range(len(RE_FRAMES)) for cue in cues for x in RE_CONTEXTS]
    rng = random.Random(f"synthetic-re:{seed}")
    train = _balanced([e for e in every if (e.frame, e.cue) not in held], n_train, rng, repeat=True)
    test_pool = [e for e in every if (e.frame, e.cue) in held]
    if n_test > len(test_pool):
        raise ValueError(f"n_test={n_test} exceeds the {len(test_pool)} distinct held-out sentences")
    return train, _balanced(test_pool, n_test, rng, repeat=False)


def write_blue_tsv(examples: list[RelationExample], path: Path) -> None:
    """BLUE masked-TSV: an ``index<TAB>sentence<TAB>label`` header, then one row per sentence."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = ["index\tsentence\tlabel", *(f"{i}\t{e.text}\t{e.label}" for i, e in enumerate(examples))]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")


def write_re_corpus(root: str | Path, n_train: int = 2000, n_test: int = 200, seed: int = 0) -> Path:
    """Write ``root/synthetic_re/{train,test}.tsv`` and return ``root``."""
    root = Path(root)
    train, test = generate_re(n_train, n_test, seed)
    write_blue_tsv(train, root / "synthetic_re" / "train.tsv")
    write_blue_tsv(test, root / "synthetic_re" / "test.tsv")
    return root


def write_corpora(root: str | Path, n_train: int = 2000, n_test: int = 200, seed: int = 0) -> Path:
    """Write every synthetic source (``synthetic_ner``, ``synthetic_re``) under ``root``; returns ``root``."""
    write_corpus(root, n_train, n_test, seed)
    return write_re_corpus(root, n_train, n_test, seed)


def corpus_text() -> list[str]:
    """Text to train a tokenizer on: every lexicon entry, carrier, frame, cue, context and label."""
    return [
        " ".join(DISEASES),
        " ".join(CHEMICALS),
        *CARRIERS,
        *RE_FRAMES,
        *(c for cues in RE_CUES.values() for c in cues),
        " ".join(RE_CONTEXTS),
        " ".join(RE_LABELS),
    ]


def probe_texts(
    root: str | Path,
    template: str = "medtuned",
    ner_format: str = "entities",
    seed: int = 1234,
    per_source: int = 500,
) -> list[str]:
    """Text to train a probe model's tokenizer on: rendered training samples of each synthetic source under
    ``root`` (the first ``per_source``, as the build renders them) plus :func:`corpus_text`.

    A tokenizer trained on these keeps every lexicon entity, cue and label a single token or two, which the
    tiny probe models need (with a generic tokenizer the entities split into sub-words and copying stalls).
    """
    root = Path(root)
    texts: list[str] = []
    for name in ("synthetic_ner", "synthetic_re"):
        if (root / name / "train.tsv").is_file():
            samples = source_samples(SOURCES[name], "train", root, ner_format, seed)[:per_source]
            texts += [render_prompt(template, s.instruction, s.input) + s.output for s in samples]
    return texts + corpus_text()

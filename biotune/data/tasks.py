"""Tasks: a typed record becomes an instruction sample, and a model completion becomes a structured prediction.

One small class per task kind owns both directions, so training data and scoring cannot drift apart
(``task_for(spec)`` picks it from ``spec.kind``):

* :meth:`Task.to_sample` -- record -> :class:`~biotune.data.records.Sample`. The instruction is one of several
  paraphrases (chosen with the caller's seeded ``random.Random``); every paraphrase names the whole label set
  and says what each label means.
* :meth:`Task.reference` -- the gold value of a record.
* :meth:`Task.parse` -- completion -> :class:`ParseResult` whose ``value`` has the same shape as the reference.
  Parsing tolerates real model output (prose around the answer, case and whitespace noise, label synonyms) and
  never drops a failure silently: a completion it cannot read fully gets ``ok=False`` and an ``error``.

Output formats
--------------
NER, ``data.ner_format=tags`` (the paper's): one ``token : TAG`` line per input token, in order. Corpora with one
entity type use plain ``B``/``I``/``O`` as the paper did (the type is the source's); corpora with several types use
typed tags (``B-protein``). The parser accepts both spellings for single-type corpora and always returns typed IOB2
tags. Lines are aligned to ``record.tokens`` **by position**: a monotone alignment (edit distance over
normalised token text) pairs the completion's lines with the sentence's tokens, so repeated tokens keep their own
tags. Tokens without a line get ``O`` (flagged); a line paired with a token of different text lends its tag
(flagged); extra lines are ignored (not flagged: every token still has its tag); a tag outside the corpus's tag set
becomes ``O`` (flagged). Invalid IOB sequences (``I-X`` with no ``B-X`` before it) are kept as predicted: the
entity scorer (seqeval) decides how to read them.

NER, ``data.ner_format=entities``: ``Type: mention; Type: mention`` in sentence order, or ``None``. Each mention is
mapped back to token positions by its text (whitespace and case insensitive): the first unused match at or after
the end of the previous mention, else the first unused match from the sentence start. When that rule would pick
the wrong span for a gold mention (the same text occurs earlier and is not that mention), the output names the
occurrence, e.g. ``Disease: cancer (2nd occurrence)``, and the parser honours it (rare: 8 of 5,424 NCBI-disease
train sentences). A mention whose exact text is absent is retried without trailing punctuation; mentions that
cannot be found are flagged and the rest are kept.

RE / NLI / QA: one label string (the source's label names; the negative class as the source names it, with
synonyms such as ``No Relations`` accepted). Reading order: the whole answer or its first line is a label (up to
case, spacing and punctuation); the answer starts with a label as a clause of its own (``Yes. Because ...``);
exactly one label is named anywhere in the prose. Several different labels -> the first, flagged; none -> the
negative label (``""`` where the task has none), flagged. Multi-label classification (HoC): label names separated
by ``, `` (sorted) or ``None``; every label named in the answer is read, and an answer naming no label and no
``None`` is flagged.
"""

from __future__ import annotations

import logging
import os
import random
import re
import unicodedata
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from biotune.data.records import (
    DocLabels,
    InstructionRecord,
    NerSentence,
    NliPair,
    QaItem,
    Record,
    RelationPair,
    Sample,
)
from biotune.errors import ConfigError, DataError, Problem

if TYPE_CHECKING:
    from biotune.data.sources import SourceSpec

logger = logging.getLogger(__name__)

#: Values of ``data.ner_format``.
NER_FORMATS: tuple[str, ...] = ("tags", "entities")


@dataclass(frozen=True)
class ParseResult:
    """A parsed completion: ``value`` has the shape of :meth:`Task.reference`; ``ok`` is False when any part of
    the completion could not be read, and ``error`` then says what."""

    value: Any
    ok: bool
    error: str | None = None


# ---------------------------------------------------------------------------------------------------------------
# Label definitions (keys are case-folded label names). A label without a definition is still listed by name.

ENTITY_TYPE_DEFINITIONS: dict[str, str] = {
    "disease": (
        "a disease, disorder, syndrome, or abnormal condition (e.g. 'aspirin-induced asthma', 'colorectal "
        "cancer', 'hypertension')"
    ),
    "chemical": "a chemical compound or drug (e.g. 'cisplatin', 'lithium carbonate', 'nicotine')",
    "gene": "a gene or gene product such as a protein (e.g. 'BRCA1', 'p53', 'insulin receptor')",
    "gene/protein": "a gene or gene product such as a protein (e.g. 'BRCA1', 'p53', 'insulin receptor')",
    "biomolecule": "a protein, DNA, or RNA molecule, gene, or region (e.g. 'IL-2', 'IL-2 promoter', 'c-fos mRNA')",
    "protein": "a protein, protein family, complex or domain (e.g. 'IL-2', 'NF-kappa B')",
    "dna": "a DNA sequence, gene, or DNA region such as a promoter or enhancer (e.g. 'IL-2 promoter')",
    "rna": "an RNA molecule or transcript (e.g. 'IL-2 mRNA')",
    "cell_line": "a cultured cell line (e.g. 'Jurkat T cells', 'HeLa')",
    "cell_type": "a naturally occurring cell type (e.g. 'T lymphocytes', 'monocytes')",
    "species": "an organism or species (e.g. 'human', 'mice', 'Escherichia coli')",
    "problem": "a medical problem: a disease, symptom, finding, or injury (e.g. 'chest pain', 'pneumonia')",
    "test": "a test, measurement, or examination done on the patient (e.g. 'CT scan', 'blood pressure')",
    "treatment": (
        "a treatment: a drug, procedure, therapy, or device given to the patient (e.g. 'aspirin', "
        "'bypass surgery')"
    ),
    "occurrence": "an event that happens to the patient, such as an admission, transfer, or discharge",
    "evidential": "a word or phrase that states the source of a piece of information (e.g. 'reports', 'showed')",
    "clinical_dept": "a hospital department or unit (e.g. 'ICU', 'cardiology')",
    "drug": "a generic drug name (e.g. 'warfarin')",
    "brand": "a brand name of a drug (e.g. 'Coumadin')",
    "group": "a group or class of drugs (e.g. 'anticoagulants', 'fluoroquinolones')",
    "drug_n": "an active substance not approved for human use (e.g. a toxin or experimental compound)",
}

RELATION_DEFINITIONS: dict[str, str] = {
    # i2b2-2010 relations between a treatment/test and a medical problem (and problem-problem)
    "trip": "the treatment improves or cures the medical problem",
    "trwp": "the treatment worsens the medical problem",
    "trcp": "the treatment causes the medical problem",
    "trap": "the treatment is administered for the medical problem",
    "trnap": "the treatment is not administered because of the medical problem",
    "terp": "the test reveals the medical problem",
    "tecp": "the test is conducted to investigate the medical problem",
    "pip": "one medical problem indicates the other medical problem",
    # ChemProt evaluated groups
    "cpr:3": "the chemical upregulates or activates the protein (upregulator, activator, indirect upregulator)",
    "cpr:4": (
        "the chemical downregulates or inhibits the protein (downregulator, inhibitor, indirect "
        "downregulator)"
    ),
    "cpr:5": "the chemical is an agonist of the protein",
    "cpr:6": "the chemical is an antagonist of the protein",
    "cpr:9": "the chemical is a substrate or product of the protein (substrate, product of)",
    # ChemProt fine-grained labels
    "inhibitor": "the chemical inhibits the protein",
    "activator": "the chemical activates the protein",
    "agonist": "the chemical is an agonist of the protein",
    "antagonist": "the chemical is an antagonist of the protein",
    "agonist-activator": "the chemical is an agonist that activates the protein",
    "agonist-inhibitor": "the chemical is an agonist that inhibits the protein",
    "substrate": "the chemical is a substrate of the protein",
    "product-of": "the chemical is a product of the protein",
    "substrate_product-of": "the chemical is both a substrate and a product of the protein",
    "upregulator": "the chemical directly upregulates the protein",
    "downregulator": "the chemical directly downregulates the protein",
    "indirect-upregulator": "the chemical indirectly upregulates the protein",
    "indirect-downregulator": "the chemical indirectly downregulates the protein",
    # DDI 2013
    "mechanism": (
        "a pharmacokinetic interaction: one drug changes the absorption, distribution, metabolism or "
        "excretion of the other"
    ),
    "effect": "the text describes the effect or pharmacodynamic mechanism of the interaction",
    "advise": "the text gives a recommendation or advice about using the two drugs together",
    "int": "the text states that the drugs interact without saying how",
    # BC5CDR chemical-induced disease
    "cid": "the chemical induces (causes) the disease",
    # binary association corpora (GAD, EU-ADR)
    "1": "the text asserts an association between the two marked entities",
    "0": "the text does not assert an association between the two marked entities",
    "true": "the text asserts a relation between the two marked entities",
}
RELATION_DEFINITIONS |= {
    f"ddi-{k}": RELATION_DEFINITIONS[k] for k in ("mechanism", "effect", "advise", "int")
}

NLI_DEFINITIONS: dict[str, str] = {
    "entailment": "the hypothesis must be true if the premise is true",
    "contradiction": "the hypothesis cannot be true if the premise is true",
    "neutral": "the premise neither confirms nor rules out the hypothesis",
}

QA_DEFINITIONS: dict[str, str] = {
    "yes": "the evidence supports a positive answer",
    "no": "the evidence supports a negative answer",
    "maybe": "the evidence is inconclusive or mixed",
}

HALLMARK_DEFINITIONS: dict[str, str] = {
    "sustaining proliferative signaling": (
        "cells keep growth-promoting signals switched on and proliferate "
        "chronically (growth factors, receptors, downstream signalling)"
    ),
    "evading growth suppressors": (
        "cells escape programs that limit proliferation, e.g. loss of tumour "
        "suppressors such as RB or TP53, or of contact inhibition"
    ),
    "resisting cell death": "cells avoid apoptosis, necrosis, or autophagy-induced death",
    "enabling replicative immortality": (
        "cells divide without limit, e.g. through telomerase or telomere maintenance, avoiding senescence"
    ),
    "inducing angiogenesis": "the tumour induces new blood vessels that supply it",
    "activating invasion and metastasis": (
        "cells invade tissue and spread to distant sites, e.g. through "
        "epithelial-mesenchymal transition or loss of adhesion"
    ),
    "genomic instability and mutation": "DNA damage, defective DNA repair, mutations, or chromosomal instability",
    "tumor promoting inflammation": "inflammation or immune cells that foster tumour development",
    "cellular energetics": "cells reprogram their energy metabolism, e.g. aerobic glycolysis (Warburg effect)",
    "deregulating cellular energetics": (
        "cells reprogram their energy metabolism, e.g. aerobic glycolysis (Warburg effect)"
    ),
    "avoiding immune destruction": "cells escape detection or killing by the immune system",
}

# Phrases read as the negative class of a relation task, whatever the source calls it.
NEGATIVE_SYNONYMS: tuple[str, ...] = (
    "No Relations",
    "No Relation",
    "No relationship",
    "No interaction",
    "No association",
    "none",
    "negative",
    "false",
    "DDI-false",
    "not related",
    "unrelated",
)
# Phrases read as the positive class of a binary relation task (one positive label besides the negative).
POSITIVE_SYNONYMS: tuple[str, ...] = ("yes", "true", "positive", "related", "association")
NLI_SYNONYMS: dict[str, tuple[str, ...]] = {
    "entailment": ("entails", "entailed", "entail"),
    "contradiction": ("contradicts", "contradictory", "contradicted", "contradict"),
}
NONE_ANSWERS: tuple[str, ...] = (
    "None",
    "no labels",
    "no label",
    "no hallmarks",
    "no entities",
    "no mentions",
)


def _config_error(key: str, problem: str, fix: str) -> ConfigError:
    return ConfigError([Problem(key, problem, fix)])


def _check_ner_format(ner_format: str) -> None:
    if ner_format not in NER_FORMATS:
        raise _config_error(
            "data.ner_format", f"unknown NER format {ner_format!r}", f"use one of {', '.join(NER_FORMATS)}"
        )


def _definition(table: dict[str, str], label: str) -> str:
    text = table.get(label.casefold())
    if text is None:
        logger.debug("no definition for label %r; it is listed by name only", label)
        return f"the label {label}"
    return text


def _bullets(pairs: Iterable[tuple[str, str]]) -> str:
    return "\n".join(f"- {name}: {text}" for name, text in pairs)


def _inline(pairs: Iterable[tuple[str, str]]) -> str:
    return "; ".join(f"{name}: {text}" for name, text in pairs)


# ---------------------------------------------------------------------------------------------------------------
# Text normalisation and label matching


def _squash(text: str) -> str:
    """Case-folded text without any whitespace: how token and mention texts are compared."""
    return "".join(unicodedata.normalize("NFKC", text).split()).casefold()


def _key(text: str) -> str:
    """Case-folded alphanumerics only: how a whole answer is compared with a label name."""
    return re.sub(r"[^0-9a-z]+", "", unicodedata.normalize("NFKC", text).casefold())


def _phrase_pattern(phrase: str) -> str:
    words = re.findall(r"[0-9a-z]+", phrase.casefold())
    return r"(?<![0-9a-z])" + r"[\W_]*".join(map(re.escape, words)) + r"(?![0-9a-z])"


class _LabelMatcher:
    """Finds label names (and their synonyms) in free text: exact answers first, then a scan of the text."""

    def __init__(self, phrases: dict[str, str]) -> None:
        """``phrases`` maps each accepted phrase to its canonical label."""
        self._by_key = {_key(p): label for p, label in phrases.items() if _key(p)}
        ordered = sorted(self._by_key, key=len, reverse=True)  # longest phrase wins at a position
        self._canon = [self._by_key[k] for k in ordered]
        patterns = [_phrase_pattern(p) for p in _keys_to_phrases(phrases, ordered)]
        self._scan = re.compile("|".join(f"({p})" for p in patterns), re.IGNORECASE)

    def exact(self, text: str) -> str | None:
        """The label whose name (or synonym) is the whole of ``text`` up to case, spaces and punctuation."""
        return self._by_key.get(_key(text))

    def at_start(self, text: str) -> str | None:
        """The label that ``text`` starts with as a clause of its own (``"Yes. Because ..."``, ``"No, ..."``)."""
        text = text.strip()
        m = self._scan.match(text)
        if m is None or not m.lastindex or not _CLAUSE_END.match(text, m.end()):
            return None
        return self._canon[m.lastindex - 1]

    def find_all(self, text: str) -> list[str]:
        """Labels mentioned anywhere in ``text``, in order of appearance (longest phrase wins at a position)."""
        return [self._canon[m.lastindex - 1] for m in self._scan.finditer(text) if m.lastindex]


_CLAUSE_END = re.compile(r"\s*(?:$|[\n.,;:!?)\]])")


def _keys_to_phrases(phrases: dict[str, str], keys: list[str]) -> list[str]:
    first: dict[str, str] = {}
    for p in phrases:
        first.setdefault(_key(p), p)
    return [first[k] for k in keys]


def _read_label(matcher: _LabelMatcher, completion: str, fallback: str) -> ParseResult:
    """One label out of a completion: exact answer, first line, leading label, or a single label in prose."""
    lines = [ln for ln in completion.splitlines() if ln.strip()]
    for candidate in (completion, lines[0] if lines else ""):
        label = matcher.exact(candidate)
        if label is not None:
            return ParseResult(label, True)
    label = matcher.at_start(completion)
    if label is not None:
        return ParseResult(label, True)
    found = list(dict.fromkeys(matcher.find_all(completion)))
    if len(found) == 1:
        return ParseResult(found[0], True)
    if found:
        return ParseResult(
            found[0], False, f"several labels in the answer ({', '.join(found)}); took the first"
        )
    return ParseResult(fallback, False, f"no label found in {_clip(completion)}")


def _clip(text: str, n: int = 80) -> str:
    text = " ".join(text.split())
    return repr(text if len(text) <= n else text[: n - 3] + "...")


# ---------------------------------------------------------------------------------------------------------------
# Tasks


class Task(ABC):
    """Record -> instruction sample, and completion -> prediction, for one source."""

    kind: ClassVar[str]
    record_type: ClassVar[type]

    def __init__(self, spec: SourceSpec) -> None:
        self.spec = spec
        self.instructions: tuple[str, ...] = self._instructions()

    @property
    def labels(self) -> tuple[str, ...]:
        """The label set the instructions state (entity types for NER)."""
        return ()

    def to_sample(self, record: Record, source: str, split: str, rng: random.Random) -> Sample:
        """The instruction sample of ``record``; the paraphrase is drawn from ``rng`` (one draw per sample)."""
        self._check(record)
        instruction = self.instructions[rng.randrange(len(self.instructions))] if self.instructions else ""
        return Sample(
            id=f"{source}/{split}/{record.id}",
            source=source,
            task=self.kind,
            instruction=instruction,
            input=self.format_input(record),
            output=self.format_output(record),
        )

    @abstractmethod
    def format_input(self, record: Any) -> str:
        """The ``input`` text of a sample."""

    @abstractmethod
    def format_output(self, record: Any) -> str:
        """The gold ``output`` text of a sample (what a perfect model writes)."""

    @abstractmethod
    def reference(self, record: Any) -> Any:
        """The gold value, in the shape :meth:`parse` returns."""

    @abstractmethod
    def parse(self, completion: str, record: Any) -> ParseResult:
        """Read a model completion for ``record``."""

    @abstractmethod
    def _instructions(self) -> tuple[str, ...]:
        """The instruction paraphrases (each states every label and its meaning)."""

    def _check(self, record: Record) -> None:
        if not isinstance(record, self.record_type):
            raise TypeError(
                f"{type(self).__name__} for source {self.spec.name!r} takes "
                f"{self.record_type.__name__} records, got {type(record).__name__}"
            )


# --- NER --------------------------------------------------------------------------------------------------------

_TAG = r"(?P<tag>[A-Za-z][A-Za-z0-9_/\-]*)\s*[.,;]?\s*$"
# 'token : TAG' (the last colon separates), else CoNLL-style 'token<TAB>TAG'
_TAG_LINES = (
    re.compile(r"^\s*(?P<token>.*\S)\s*:\s*" + _TAG),
    re.compile(r"^\s*(?P<token>.*\S)\t+\s*" + _TAG),
)
_OCCURRENCE = re.compile(r"\s*\((\d+)(?:st|nd|rd|th) occurrence\)\s*$", re.IGNORECASE)

_NER_INTROS: tuple[str, ...] = (
    "Your task is to find every {what} mentioned in the input text.",
    "Perform named entity recognition on the biomedical text below: mark each {what} mention.",
    "Read the sentence and identify all mentions of {what_plural}.",
    "Label the entity mentions in this text. The entities of interest are {what_plural}.",
    "Extract the {what} mentions from the following sentence.",
)


def entity_types(spec: SourceSpec) -> tuple[str, ...]:
    """The entity types of an NER source: ``spec.labels`` without ``O`` and IOB prefixes, else ``entity_type``."""
    types: list[str] = []
    for label in getattr(spec, "labels", ()) or ():
        if label == "O":
            continue
        name = label[2:] if re.match(r"^[BI]-", label) else label
        if name not in types:
            types.append(name)
    if not types and getattr(spec, "entity_type", None):
        types.append(spec.entity_type)
    if not types:
        raise _config_error(
            f"SOURCES[{spec.name!r}].labels",
            "an NER source without entity types",
            "list the entity types in the source spec's labels",
        )
    return tuple(types)


def _spans(tags: Sequence[str]) -> list[tuple[int, int, str]]:
    """``(start, end, type)`` of each entity in IOB2 tags; an ``I-X`` that continues nothing starts an entity."""
    spans: list[tuple[int, int, str]] = []
    for i, tag in enumerate(tags):
        if tag == "O" or "-" not in tag:
            continue
        prefix, typ = tag.split("-", 1)
        if prefix == "I" and spans and spans[-1][1] == i and spans[-1][2] == typ:
            spans[-1] = (spans[-1][0], i + 1, typ)
        else:
            spans.append((i, i + 1, typ))
    return spans


def _ordinal(k: int) -> str:
    suffix = "th" if 10 <= k % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(k % 10, "th")
    return f"{k}{suffix}"


class NerTask(Task):
    """Named entity recognition over a tokenized sentence (``tags`` or ``entities`` output format)."""

    kind = "ner"
    record_type = NerSentence

    def __init__(self, spec: SourceSpec, ner_format: str = "tags") -> None:
        _check_ner_format(ner_format)
        self.ner_format = ner_format
        self.types = entity_types(spec)
        self._type_by_key = {t.casefold(): t for t in self.types}
        self._type_by_key.update({t.casefold().replace("_", " "): t for t in self.types})
        self.single_type = self.types[0] if len(self.types) == 1 else None
        super().__init__(spec)

    @property
    def labels(self) -> tuple[str, ...]:
        """The entity types."""
        return self.types

    # -- samples

    def format_input(self, record: NerSentence) -> str:
        """The sentence: tokens joined by single spaces."""
        return " ".join(record.tokens)

    def format_output(self, record: NerSentence) -> str:
        """``token : TAG`` lines, or the ``Type: mention; ...`` list."""
        self._check_tags(record)
        if self.ner_format == "tags":
            return "\n".join(
                f"{tok} : {self._display_tag(tag)}"
                for tok, tag in zip(record.tokens, record.tags, strict=True)
            )
        return self._entity_list(record)

    def reference(self, record: NerSentence) -> tuple[str, ...]:
        """The gold IOB2 tags, one per token."""
        return tuple(record.tags)

    def parse(self, completion: str, record: NerSentence) -> ParseResult:
        """Tags aligned by position to ``record.tokens`` (see the module docstring for the rules)."""
        if self.ner_format == "tags":
            return self._parse_tag_lines(completion, record.tokens)
        return self._parse_entity_list(completion, record.tokens)

    def _display_tag(self, tag: str) -> str:
        return tag[0] if self.single_type is not None and tag != "O" else tag

    def _check_tags(self, record: NerSentence) -> None:
        if len(record.tags) != len(record.tokens):
            raise DataError(
                self.spec.name,
                f"record {record.id}: {len(record.tokens)} tokens but {len(record.tags)} tags",
                "fix the reader: one tag per token",
            )
        for tag in record.tags:
            if tag != "O" and (tag[:2] not in ("B-", "I-") or tag[2:] not in self.types):
                raise DataError(
                    self.spec.name,
                    f"record {record.id}: tag {tag!r} is not O or B-/I- with one of "
                    f"the source's entity types {self.types}",
                    "fix the reader or add the type to the source spec's labels",
                )

    # -- instructions

    def _instructions(self) -> tuple[str, ...]:
        names = ", ".join(self.types)
        what = self.types[0] if self.single_type else "named entity (" + names + ")"
        what_plural = f"{self.types[0]} entities" if self.single_type else f"the entity types {names}"
        definitions = [(t, _definition(ENTITY_TYPE_DEFINITIONS, t)) for t in self.types]
        out = []
        for i, intro in enumerate(_NER_INTROS):
            defs = _bullets(definitions) if i % 2 == 0 else _inline(definitions)
            head = intro.format(what=what, what_plural=what_plural)
            out.append(
                f"{head} {self._format_help(i)}\nEntity types: {defs}"
                if i % 2
                else f"{head} {self._format_help(i)}\nEntity types:\n{defs}"
            )
        return tuple(out)

    def _format_help(self, variant: int) -> str:
        if self.ner_format == "entities":
            return (
                "List every mention as 'Type: mention text', separated by '; ', in the order they appear in "
                "the text; write None if there is no mention."
                if variant % 2 == 0
                else "Answer with a '; '-separated list of 'Type: mention' items in text order, or None when the "
                "text mentions no entity."
            )
        if self.single_type is not None:
            scheme = (
                f"B for the first token of a {self.single_type} mention, I for each following token of the "
                "same mention, and O for every token outside a mention"
            )
        else:
            scheme = (
                "B-<type> for the first token of a mention, I-<type> for each following token of the same "
                "mention, and O for every token outside a mention"
            )
        return (
            f"Write one line 'token : TAG' for every token of the input, in order, where TAG is {scheme}."
            if variant % 2 == 0
            else f"For each input token, in order, output a line of the form 'token : TAG'; use {scheme}."
        )

    # -- tags format

    def _read_tag(self, raw: str) -> tuple[str, bool] | None:
        """``(IOB2 tag, valid)`` for a tag string, or None when ``raw`` does not look like a tag at all."""
        if raw.casefold() == "o":
            return "O", True
        m = re.fullmatch(r"([BbIi])(?:[-_](.+))?", raw)
        if m is None:
            return None
        prefix, typ = m.group(1).upper(), m.group(2)
        if typ is None:
            return (f"{prefix}-{self.single_type}", True) if self.single_type else ("O", False)
        canonical = self._type_by_key.get(typ.casefold())
        return (f"{prefix}-{canonical}", True) if canonical else ("O", False)

    def _parse_tag_lines(self, completion: str, tokens: Sequence[str]) -> ParseResult:
        lines: list[tuple[str, str, bool, str]] = []  # token text, tag, tag valid, raw tag
        for line in completion.splitlines():
            m = _TAG_LINES[0].match(line) or _TAG_LINES[1].match(line)
            read = self._read_tag(m.group("tag")) if m else None
            if m and read is not None:
                lines.append((m.group("token"), read[0], read[1], m.group("tag")))
        pairs = align([ln[0] for ln in lines], tokens)
        tags = ["O"] * len(tokens)
        missing, mismatched, invalid = [], [], []
        for pos, (line_idx, same_text) in enumerate(pairs):
            if line_idx is None:
                missing.append(pos)
                continue
            text, tag, valid, raw = lines[line_idx]
            tags[pos] = tag
            if not same_text:
                mismatched.append(f"{pos} ({tokens[pos]!r} vs {text!r})")
            if not valid:
                invalid.append(f"{pos} ({raw!r})")
        problems = []
        if not lines:
            problems.append("no 'token : TAG' lines")
        elif missing:
            problems.append(
                f"{len(missing)} of {len(tokens)} tokens have no line (positions "
                f"{_first(map(str, missing))}); tagged O"
            )
        if mismatched:
            problems.append(f"{len(mismatched)} lines do not match their token's text: {_first(mismatched)}")
        if invalid:
            problems.append(f"{len(invalid)} tags outside the tag set, read as O: {_first(invalid)}")
        return ParseResult(tuple(tags), not problems, "; ".join(problems) or None)

    # -- entities format

    def _entity_list(self, record: NerSentence) -> str:
        norm = [_squash(t) for t in record.tokens]
        used = [False] * len(norm)
        cursor = 0
        items = []
        for start, end, typ in _spans(record.tags):
            text = " ".join(record.tokens[start:end])
            target = _squash(text)
            item = f"{typ}: {text}"
            if _find_unused(norm, target, used, cursor) != (start, end):
                starts = _occurrences(norm, target)
                item += f" ({_ordinal(starts.index((start, end)) + 1)} occurrence)"
            used[start:end] = [True] * (end - start)
            cursor = end
            items.append(item)
        return "; ".join(items) if items else "None"

    def _parse_entity_list(self, completion: str, tokens: Sequence[str]) -> ParseResult:
        items = self._entity_items(completion)
        tags = ["O"] * len(tokens)
        if not items:
            if re.search(
                r"(?<![0-9a-z])(none|no entities|no mentions)(?![0-9a-z])", completion, re.IGNORECASE
            ):
                return ParseResult(tuple(tags), True)
            return ParseResult(
                tuple(tags), False, f"no 'Type: mention' items and no None in {_clip(completion)}"
            )
        norm = [_squash(t) for t in tokens]
        used = [False] * len(norm)
        cursor = 0
        unfound = []
        for typ, text in items:
            span = self._locate(norm, text, used, cursor)
            if span is None:
                unfound.append(f"{typ}: {text}")
                continue
            start, end = span
            tags[start:end] = [f"B-{typ}"] + [f"I-{typ}"] * (end - start - 1)
            used[start:end] = [True] * (end - start)
            cursor = end
        error = f"{len(unfound)} mentions not found in the text: {_first(unfound)}" if unfound else None
        return ParseResult(tuple(tags), not unfound, error)

    def _entity_items(self, completion: str) -> list[tuple[str, str]]:
        """``(type, mention text)`` pairs: each known type name followed by ':' starts an item."""
        names = sorted(self._type_by_key, key=len, reverse=True)
        head = re.compile(
            r"(?<![0-9A-Za-z_])(" + "|".join(re.escape(n) for n in names) + r")\s*:\s*", re.IGNORECASE
        )
        items = []
        for line in completion.splitlines():
            heads = list(head.finditer(line))
            for i, m in enumerate(heads):
                stop = heads[i + 1].start() if i + 1 < len(heads) else len(line)
                text = line[m.end() : stop].strip().rstrip(";").rstrip()
                if text:
                    items.append((self._type_by_key[m.group(1).casefold()], text))
        return items

    def _locate(self, norm: list[str], text: str, used: list[bool], cursor: int) -> tuple[int, int] | None:
        occ = _OCCURRENCE.search(text)
        if occ:
            starts = _occurrences(norm, _squash(text[: occ.start()]))
            k = int(occ.group(1))
            if 1 <= k <= len(starts) and not any(used[starts[k - 1][0] : starts[k - 1][1]]):
                return starts[k - 1]
            text = text[: occ.start()]
        for candidate in (text, text.rstrip(".,;: ")):
            span = _find_unused(norm, _squash(candidate), used, cursor)
            if span is not None:
                return span
        return None


def _match_at(norm: Sequence[str], target: str, start: int) -> int | None:
    """End index when tokens from ``start`` concatenate exactly to ``target``, else None."""
    if not target:
        return None
    built = ""
    for j in range(start, len(norm)):
        built += norm[j]
        if built == target:
            return j + 1
        if not target.startswith(built):
            return None
    return None


def _occurrences(norm: Sequence[str], target: str) -> list[tuple[int, int]]:
    """Every span whose tokens concatenate to ``target``, left to right."""
    spans = []
    for i in range(len(norm)):
        end = _match_at(norm, target, i)
        if end is not None:
            spans.append((i, end))
    return spans


def _find_unused(
    norm: Sequence[str], target: str, used: Sequence[bool], cursor: int
) -> tuple[int, int] | None:
    """First span matching ``target`` with no used token: from ``cursor`` on, then from the sentence start."""
    for i in [*range(cursor, len(norm)), *range(0, min(cursor, len(norm)))]:
        end = _match_at(norm, target, i)
        if end is not None and not any(used[i:end]):
            return i, end
    return None


def align(lines: Sequence[str], tokens: Sequence[str]) -> list[tuple[int | None, bool]]:
    """Pair completion lines with sentence tokens by position.

    Returns, for each token, ``(index of its line or None, whether the texts match)``. The pairing is a minimum
    edit-distance alignment over normalised texts (a skipped line or token costs 1, a line paired with a token of
    different text costs 1), so it keeps order, tolerates missing and extra lines, and gives repeated tokens their
    own lines. Ties prefer pairing, then treating the line as extra.
    """
    a = [_squash(s) for s in lines]
    b = [_squash(s) for s in tokens]
    if a == b:
        return [(i, True) for i in range(len(b))]
    n, m = len(a), len(b)
    cost = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n + 1):
        cost[i][0] = i
    for j in range(m + 1):
        cost[0][j] = j
    for i in range(1, n + 1):
        row, prev = cost[i], cost[i - 1]
        for j in range(1, m + 1):
            row[j] = min(prev[j - 1] + (a[i - 1] != b[j - 1]), prev[j] + 1, row[j - 1] + 1)
    pairs: list[tuple[int | None, bool]] = [(None, False)] * m
    i, j = n, m
    while i > 0 and j > 0:
        same = a[i - 1] == b[j - 1]
        if cost[i][j] == cost[i - 1][j - 1] + (not same):
            pairs[j - 1] = (i - 1, same)
            i, j = i - 1, j - 1
        elif cost[i][j] == cost[i - 1][j] + 1:
            i -= 1
        else:
            j -= 1
    return pairs


def _first(items: Iterable[str], n: int = 5) -> str:
    items = list(items)
    return ", ".join(items[:n]) + (f", ... (+{len(items) - n})" if len(items) > n else "")


# --- single-label tasks (RE, NLI, QA) ---------------------------------------------------------------------------


class _LabelTask(Task):
    """A task whose answer is one label out of a closed set."""

    _intros: ClassVar[tuple[str, ...]]
    _definitions: ClassVar[dict[str, str]]

    def __init__(self, spec: SourceSpec) -> None:
        negative = getattr(spec, "negative_label", None)
        self.negative: str | None = negative or None
        self._labels = tuple(dict.fromkeys([*spec.labels, *([negative] if negative else [])]))
        if not self._labels:
            raise _config_error(
                f"SOURCES[{spec.name!r}].labels",
                "a classification source without labels",
                "list the label names in the source spec",
            )
        self._matcher = _LabelMatcher(self._phrases())
        super().__init__(spec)

    @property
    def labels(self) -> tuple[str, ...]:
        """The label names (the negative class included)."""
        return self._labels

    def format_output(self, record: Any) -> str:
        """The gold label name."""
        if record.label not in self._labels:
            raise DataError(
                self.spec.name,
                f"record {record.id}: label {record.label!r} is not one of {self._labels}",
                "fix the reader or the source spec's labels",
            )
        return record.label

    def reference(self, record: Any) -> str:
        """The gold label name."""
        return record.label

    def parse(self, completion: str, record: Any) -> ParseResult:
        """The label the completion states (exact answer, first line, leading label, or the one label in prose)."""
        return _read_label(self._matcher, completion, self.negative or "")

    def _phrases(self) -> dict[str, str]:
        phrases = {label: label for label in self._labels}
        for label, synonyms in self._synonyms().items():
            for phrase in synonyms:
                if _key(phrase) not in {_key(x) for x in self._labels}:
                    phrases.setdefault(phrase, label)
        return phrases

    def _synonyms(self) -> dict[str, tuple[str, ...]]:
        return {}

    def _label_definitions(self) -> list[tuple[str, str]]:
        return [(label, self._define(label)) for label in self._labels]

    def _define(self, label: str) -> str:
        return _definition(self._definitions, label)

    def _instructions(self) -> tuple[str, ...]:
        definitions = self._label_definitions()
        out = []
        for i, intro in enumerate(self._intros):
            if i % 2 == 0:
                out.append(f"{intro}\n{_bullets(definitions)}")
            else:
                out.append(f"{intro} The labels are: {_inline(definitions)}.")
        return tuple(out)


class RelationTask(_LabelTask):
    """Relation classification between two marked entities of a sentence."""

    kind = "re"
    record_type = RelationPair
    _definitions = RELATION_DEFINITIONS
    _intros = (
        "Identify the relation between the two entities of interest (marked in the text, or named after it). "
        "Answer with exactly one of these labels:",
        "Classify the relationship that the text expresses between its two marked entities, and reply with the "
        "label only.",
        "Read the text and decide which relation holds between the two marked or named entities. Output one label "
        "from this list:",
        "Relation extraction: given a text with two marked entities, answer with the single label that describes "
        "how they are related.",
        "Which relation type best describes the link between the two entities of interest? Choose one label:",
    )

    def format_input(self, record: RelationPair) -> str:
        """The text with the source's own entity marking, then the two entity names when the record has them."""
        if record.head or record.tail:
            return f"{record.text}\nEntity 1: {record.head}\nEntity 2: {record.tail}"
        return record.text

    def _define(self, label: str) -> str:
        if label == self.negative and label.casefold() not in self._definitions:
            return "none of the other relations holds between the two entities"
        return super()._define(label)

    def _synonyms(self) -> dict[str, tuple[str, ...]]:
        out: dict[str, tuple[str, ...]] = {}
        prefix = os.path.commonprefix(list(self._labels))
        if len(self._labels) > 1 and prefix.endswith(
            "-"
        ):  # DDI-mechanism ... DDI-false: 'mechanism' is enough
            out = {label: (label[len(prefix) :],) for label in self._labels if label[len(prefix) :].isalpha()}
        if self.negative:
            out[self.negative] = out.get(self.negative, ()) + NEGATIVE_SYNONYMS
            positives = [x for x in self._labels if x != self.negative]
            if len(positives) == 1:
                out[positives[0]] = out.get(positives[0], ()) + POSITIVE_SYNONYMS
        return out


class NliTask(_LabelTask):
    """Natural language inference over a premise/hypothesis pair."""

    kind = "nli"
    record_type = NliPair
    _definitions = NLI_DEFINITIONS
    _intros = (
        "Decide how the hypothesis relates to the premise. Answer with one of these labels:",
        "Natural language inference: read the premise and the hypothesis, then reply with a single label.",
        "Does the premise entail the hypothesis, contradict it, or neither? Output one label from this list:",
        "Given a clinical premise and a hypothesis, classify their logical relationship with exactly one label.",
    )

    def format_input(self, record: NliPair) -> str:
        """``Premise: ...`` and ``Hypothesis: ...`` lines."""
        return f"Premise: {record.premise}\nHypothesis: {record.hypothesis}"

    def _synonyms(self) -> dict[str, tuple[str, ...]]:
        return {label: NLI_SYNONYMS.get(label.casefold(), ()) for label in self._labels}


class QaTask(_LabelTask):
    """A closed-answer question (yes/no/maybe), with an optional context."""

    kind = "qa"
    record_type = QaItem
    _definitions = QA_DEFINITIONS
    _intros = (
        "Answer the biomedical research question using the context. Reply with one of these answers:",
        "Read the question and the supporting text, then answer with a single word.",
        "Based on the evidence given, what is the answer to the question? Choose one:",
        "Give the answer to the question below, judging only from the context provided.",
    )

    def format_input(self, record: QaItem) -> str:
        """``Question: ...`` and, when there is one, ``Context: ...``."""
        text = f"Question: {record.question}"
        return f"{text}\nContext: {record.context}" if record.context else text


# --- multi-label classification ---------------------------------------------------------------------------------


class ClassificationTask(Task):
    """Multi-label document classification (e.g. HoC hallmarks): any subset of the labels, possibly empty."""

    kind = "cls"
    record_type = DocLabels
    _intros: ClassVar[tuple[str, ...]] = (
        "Assign to the text every label below that applies. Answer with the label names separated by commas, or "
        "None if no label applies.",
        "Which of the following categories does the text discuss? List all that apply, separated by commas; "
        "write None when none applies.",
        "Classify the abstract into the categories it addresses (zero, one or several). Reply with a "
        "comma-separated list of category names, or None.",
        "Read the text and name each category that it is about, comma-separated; if it is about none of them, "
        "answer None.",
    )

    def __init__(self, spec: SourceSpec) -> None:
        self._labels = tuple(spec.labels)
        if not self._labels:
            raise _config_error(
                f"SOURCES[{spec.name!r}].labels",
                "a classification source without labels",
                "list the label names in the source spec",
            )
        self._matcher = _LabelMatcher({label: label for label in self._labels})
        super().__init__(spec)

    @property
    def labels(self) -> tuple[str, ...]:
        """The label names."""
        return self._labels

    def format_input(self, record: DocLabels) -> str:
        """The document text."""
        return record.text

    def format_output(self, record: DocLabels) -> str:
        """The gold labels, sorted, joined by ``, ``; ``None`` when there is none."""
        unknown = [x for x in record.labels if x not in self._labels]
        if unknown:
            raise DataError(
                self.spec.name,
                f"record {record.id}: labels {unknown} are not in {self._labels}",
                "fix the reader or the source spec's labels",
            )
        return ", ".join(sorted(record.labels)) or "None"

    def reference(self, record: DocLabels) -> tuple[str, ...]:
        """The gold labels, sorted."""
        return tuple(sorted(record.labels))

    def parse(self, completion: str, record: DocLabels) -> ParseResult:
        """Every label named in the completion (sorted); ``None`` means the empty set."""
        found = tuple(sorted(set(self._matcher.find_all(completion))))
        if found:
            return ParseResult(found, True)
        none = "|".join(_phrase_pattern(p) for p in NONE_ANSWERS)
        if re.search(none, completion, re.IGNORECASE):
            return ParseResult((), True)
        return ParseResult((), False, f"no label names and no None in {_clip(completion)}")

    def _instructions(self) -> tuple[str, ...]:
        definitions = [(label, _definition(HALLMARK_DEFINITIONS, label)) for label in self._labels]
        return tuple(
            f"{intro}\nLabels:\n{_bullets(definitions)}"
            if i % 2 == 0
            else f"{intro} Labels: {_inline(definitions)}."
            for i, intro in enumerate(self._intros)
        )


# --- published instruction sets ---------------------------------------------------------------------------------


class InstructionTask(Task):
    """Ready-made samples in the published schema, passed through unchanged; a completion parses to itself."""

    kind = "instruction"
    record_type = InstructionRecord

    def to_sample(self, record: Record, source: str, split: str, rng: random.Random) -> Sample:
        """The record's own instruction, input and output (``rng`` is not used)."""
        self._check(record)
        assert isinstance(record, InstructionRecord)
        return Sample(
            id=f"{source}/{split}/{record.id}",
            source=source,
            task=self.kind,
            instruction=record.instruction,
            input=record.input,
            output=record.output,
        )

    def format_input(self, record: InstructionRecord) -> str:
        """The record's input."""
        return record.input

    def format_output(self, record: InstructionRecord) -> str:
        """The record's output."""
        return record.output

    def reference(self, record: InstructionRecord) -> str:
        """The record's output."""
        return record.output

    def parse(self, completion: str, record: InstructionRecord) -> ParseResult:
        """The raw completion."""
        return ParseResult(completion, True)

    def _instructions(self) -> tuple[str, ...]:
        return ()


_TASKS: dict[str, type[Task]] = {
    "re": RelationTask,
    "nli": NliTask,
    "qa": QaTask,
    "cls": ClassificationTask,
    "instruction": InstructionTask,
}


def task_for(spec: SourceSpec, ner_format: str = "tags") -> Task:
    """The task for a source, chosen by ``spec.kind``; ``ner_format`` (``data.ner_format``) applies to NER."""
    _check_ner_format(ner_format)
    if spec.kind == "ner":
        return NerTask(spec, ner_format)
    if spec.kind not in _TASKS:
        raise _config_error(
            f"SOURCES[{spec.name!r}].kind",
            f"unknown task kind {spec.kind!r}",
            f"use one of ner, {', '.join(_TASKS)}",
        )
    return _TASKS[spec.kind](spec)

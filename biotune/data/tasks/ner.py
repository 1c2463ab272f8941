"""Named entity recognition: a tokenized sentence becomes a sample, a completion becomes IOB2 tags.

``data.ner_format=tags`` (the paper's): one ``token : TAG`` line per input token, in order. Corpora with one
entity type use plain ``B``/``I``/``O`` as the paper did (the type is the source's); corpora with several types use
typed tags (``B-protein``). The parser accepts both spellings for single-type corpora and always returns typed IOB2
tags. Lines are aligned to ``record.tokens`` **by position**: a monotone alignment (edit distance over
normalised token text) pairs the completion's lines with the sentence's tokens, so repeated tokens keep their own
tags. Tokens without a line get ``O`` (flagged); a line paired with a token of different text lends its tag
(flagged); extra lines are ignored (not flagged: every token still has its tag); a tag outside the corpus's tag set
becomes ``O`` (flagged). Invalid IOB sequences (``I-X`` with no ``B-X`` before it) are kept as predicted: the
entity scorer (seqeval) decides how to read them.

``data.ner_format=entities``: ``Type: mention; Type: mention`` in sentence order, or ``None``. Each mention is
mapped back to token positions by its text (whitespace and case insensitive): the first unused match at or after
the end of the previous mention, else the first unused match from the sentence start. When that rule would pick
the wrong span for a gold mention (the same text occurs earlier and is not that mention), the output names the
occurrence, e.g. ``Disease: cancer (2nd occurrence)``, and the parser honours it (rare: 8 of 5,424 NCBI-disease
train sentences). A mention whose exact text is absent is retried without trailing punctuation; mentions that
cannot be found are flagged and the rest are kept.

Scoring: entity-level strict micro-F1 (:func:`biotune.data.tasks.metrics.ner_scores`); per sentence, the matched,
spurious and missed entities are its additive statistics.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from biotune.data.tasks import metrics
from biotune.data.tasks.base import (
    ParseResult,
    Task,
    bullets,
    check_ner_format,
    config_error,
    definition,
    inline,
    register,
)
from biotune.data.tasks.matching import align, clip, first_few, squash
from biotune.errors import DataError
from biotune.sources.records import NerSentence

if TYPE_CHECKING:
    from biotune.sources import SourceSpec

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
        raise config_error(
            spec.labels_key,
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


@register
class NerTask(Task):
    """Named entity recognition over a tokenized sentence (``tags`` or ``entities`` output format).

    Headline: entity-level strict micro-F1 (``f1``). Resampling unit: the abstract (PMID) for sentences that
    PubTator readers split out of abstracts; a CoNLL sentence names no document, so its unit is the sentence
    itself (its example id).
    """

    kind = "ner"
    record_type = NerSentence
    headline = "f1"
    reducer = "f1"

    def __init__(self, spec: SourceSpec, ner_format: str = "tags") -> None:
        check_ner_format(ner_format)
        self.ner_format = ner_format
        self.types = entity_types(spec)
        self._type_by_key = {t.casefold(): t for t in self.types}
        self._type_by_key.update({t.casefold().replace("_", " "): t for t in self.types})
        self.single_type = self.types[0] if len(self.types) == 1 else None
        super().__init__(spec)

    @classmethod
    def from_spec(cls, spec: SourceSpec, ner_format: str = "tags") -> NerTask:
        """The task for ``spec`` with output format ``ner_format`` (``data.ner_format``)."""
        return cls(spec, ner_format)

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
            tags = record.tags if self.single_type is None else map(self._display_tag, record.tags)
            return "\n".join(map(" : ".join, zip(record.tokens, tags, strict=True)))
        return self._entity_list(record)

    def reference(self, record: NerSentence) -> tuple[str, ...]:
        """The gold IOB2 tags, one per token."""
        return tuple(record.tags)

    def parse(self, completion: str, record: NerSentence) -> ParseResult:
        """Tags aligned by position to ``record.tokens`` (see the module docstring for the rules)."""
        if self.ner_format == "tags":
            return self._parse_tag_lines(completion, record.tokens)
        return self._parse_entity_list(completion, record.tokens)

    # -- scoring

    def score(self, gold: Sequence[Any], pred: Sequence[Any]) -> dict[str, float]:
        """Entity-level micro P/R/F1, typed and untyped, and per-type F1 (strict IOB2)."""
        return metrics.ner_scores(gold, pred)

    def example_stats(self, gold: Any, pred: Any) -> dict[str, float]:
        """Matched (``tp``), spurious (``fp``) and missed (``fn``) entities of one sentence, strict IOB2; a
        ``None`` prediction predicts no entity."""
        if pred is not None and len(pred) != len(gold):
            raise ValueError(f"{len(gold)} gold tags but {len(pred)} predicted tags")
        gold_entities = metrics.entities_strict(gold)
        pred_entities = metrics.entities_strict(pred) if pred is not None else []
        tp = sum((Counter(gold_entities) & Counter(pred_entities)).values())
        return {"tp": float(tp), "fp": float(len(pred_entities) - tp), "fn": float(len(gold_entities) - tp)}

    def _display_tag(self, tag: str) -> str:
        return tag[0] if self.single_type is not None and tag != "O" else tag

    def _check_tags(self, record: NerSentence) -> None:
        if len(record.tags) != len(record.tokens):
            raise DataError(
                self.spec.name,
                f"record {record.id}: {len(record.tokens)} tokens but {len(record.tags)} tags",
                "fix the reader: one tag per token",
            )
        for tag in dict.fromkeys(record.tags):  # each distinct tag once, the first bad one named
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
        definitions = [(t, definition(ENTITY_TYPE_DEFINITIONS, t)) for t in self.types]
        out = []
        for i, intro in enumerate(_NER_INTROS):
            defs = bullets(definitions) if i % 2 == 0 else inline(definitions)
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
                f"{first_few(map(str, missing))}); tagged O"
            )
        if mismatched:
            problems.append(
                f"{len(mismatched)} lines do not match their token's text: {first_few(mismatched)}"
            )
        if invalid:
            problems.append(f"{len(invalid)} tags outside the tag set, read as O: {first_few(invalid)}")
        return ParseResult(tuple(tags), not problems, "; ".join(problems) or None)

    # -- entities format

    def _entity_list(self, record: NerSentence) -> str:
        norm = [squash(t) for t in record.tokens]
        used = [False] * len(norm)
        cursor = 0
        items = []
        for start, end, typ in _spans(record.tags):
            text = " ".join(record.tokens[start:end])
            target = squash(text)
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
                tuple(tags), False, f"no 'Type: mention' items and no None in {clip(completion)}"
            )
        norm = [squash(t) for t in tokens]
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
        error = f"{len(unfound)} mentions not found in the text: {first_few(unfound)}" if unfound else None
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
            starts = _occurrences(norm, squash(text[: occ.start()]))
            k = int(occ.group(1))
            if 1 <= k <= len(starts) and not any(used[starts[k - 1][0] : starts[k - 1][1]]):
                return starts[k - 1]
            text = text[: occ.start()]
        for candidate in (text, text.rstrip(".,;: ")):
            span = _find_unused(norm, squash(candidate), used, cursor)
            if span is not None:
                return span
        return None

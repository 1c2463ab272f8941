"""PubTator documents (NCBI-disease and BC5CDR originals) -> NER sentences and BC5CDR CID pairs.

A ``.xml`` split file is read as BioC XML (the BC5CDR release ships both; :mod:`.bioc`) into the same documents.

File format: documents separated by blank lines; ``PMID|t|title``, ``PMID|a|abstract``, mention lines
``PMID<TAB>start<TAB>end<TAB>text<TAB>type<TAB>ids[<TAB>...]`` with character offsets into
``title + " " + abstract``, and (BC5CDR) relation lines ``PMID<TAB>CID<TAB>chemical id<TAB>disease id``.

Sentence splitting (deterministic, documented here so results can be reproduced):

1. the end of the title is always a boundary;
2. otherwise a boundary follows ``.``, ``?`` or ``!`` (plus any closing quotes/brackets) when whitespace and
   then an upper-case letter, a digit or an opening bracket follow, unless the word before the ``.`` is a
   single letter (an initial) or one of :data:`ABBREVIATIONS`;
3. a boundary that would fall inside a mention is skipped, so no mention is cut by a sentence boundary
   (``lost_at_boundaries`` counts mentions that still cross one; it is 0 by construction and kept as a check).

Tokenization: maximal runs of word characters (``\\w+``) and single other non-space characters, additionally
cut at every mention start and end, so each mention maps exactly to whole tokens. Mentions are tagged IOB2
with their (mapped) type. Overlapping mentions cannot both be tagged: the earlier (then longer) one is kept
and the other is counted in ``overlapping``.

Record ids: NER ``<PMID>:<sentence index>``; CID ``<PMID>:<chemical id>:<disease id>``. A document repeated
verbatim in a file (NCBI train has PMID 8528200 twice) is read once and counted in ``duplicates``.
"""

from __future__ import annotations

import bisect
import itertools
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from biotune.errors import DataError
from biotune.sources._io import check_label, count, lines
from biotune.sources.bioc import read_bioc
from biotune.sources.documents import Document, Mention
from biotune.sources.records import NerSentence, RelationPair
from biotune.sources.spec import SourceSpec

log = logging.getLogger(__name__)

ABBREVIATIONS = frozenset({"e.g", "i.e", "vs", "al", "Fig", "Figs", "Dr", "approx", "ca", "cf", "No", "Ref"})
_BOUNDARY = re.compile(r"[.?!][\"')\]]*(\s+)(?=[A-Z0-9(\[])")
_TOKEN = re.compile(r"\w+|[^\w\s]")
_WORD_BEFORE = re.compile(r"(\S+)$")


@dataclass
class SplitStats:
    """What sentence splitting did to one file's mentions."""

    documents: int = 0
    duplicates: int = 0
    sentences: int = 0
    mentions: int = 0
    kept: int = 0
    overlapping: int = 0
    lost_at_boundaries: int = 0


def _parse_mention(doc: Document, fields: list[str], path: Path, number: int) -> None:
    try:
        start, end = int(fields[1]), int(fields[2])
    except ValueError:
        raise DataError(
            path,
            "mention offsets are not integers",
            "write PMID<TAB>start<TAB>end<TAB>text<TAB>type<TAB>id",
            number,
        ) from None
    if len(fields) < 5:
        raise DataError(
            path,
            "mention line has fewer than 5 columns",
            "write PMID<TAB>start<TAB>end<TAB>text<TAB>type<TAB>id",
            number,
        )
    text = doc.text
    if not 0 <= start < end <= len(text) or text[start:end].strip() != fields[3].strip():
        raise DataError(
            path,
            f"mention {fields[3]!r} does not match the text at {start}-{end}",
            "offsets must index title + ' ' + abstract (0-based, end exclusive)",
            number,
        )
    ids = tuple(i for i in fields[5].split("|") if i) if len(fields) > 5 else ()
    doc.mentions.append(Mention(start, end, fields[3], fields[4], ids))


def read_documents(path: Path) -> list[Document]:
    """The documents of a PubTator file, or of a BioC XML file of the same release (``*.xml``: :mod:`.bioc`)."""
    if path.suffix.lower() == ".xml":
        return read_bioc(path)
    return read_pubtator(path)


def read_pubtator(path: Path) -> list[Document]:
    """Parse a PubTator file into documents, checking that every mention matches its offsets."""
    docs: list[Document] = []
    doc: Document | None = None
    for number, line in lines(path):
        if not line.strip():
            doc = None
            continue
        if "|t|" in line[:20] and line.split("|", 1)[0].isdigit():
            pmid, _, title = line.split("|", 2)
            doc = Document(pmid, title, "", number)
            docs.append(doc)
            continue
        if doc is None:
            raise DataError(path, "line outside a document", "start each document with PMID|t|title", number)
        if line.startswith(f"{doc.pmid}|a|"):
            doc.abstract = line.split("|", 2)[2]
            continue
        fields = line.split("\t")
        if fields[0] != doc.pmid or len(fields) < 4:
            raise DataError(
                path,
                f"unexpected line {line[:60]!r}",
                "use PubTator lines: PMID|a|..., mention or relation lines with tabs",
                number,
            )
        if fields[1].isdigit() or len(fields) > 4:  # relation lines have 4 columns; more is a mention
            _parse_mention(doc, fields, path, number)
        else:
            doc.relations.append((fields[1], fields[2], fields[3]))
    if not docs:
        raise DataError(
            path, "file has no PubTator documents", "restore the file: expected PMID|t|title lines"
        )
    return docs


def _dedupe(docs: list[Document], stats: SplitStats, path: Path) -> list[Document]:
    """Drop verbatim repeats of a document; different documents sharing a PMID raise."""
    seen: dict[str, Document] = {}
    unique: list[Document] = []
    for doc in docs:
        prior = seen.get(doc.pmid)
        if prior is None:
            seen[doc.pmid] = doc
            unique.append(doc)
        elif (prior.text, prior.mentions, prior.relations) == (doc.text, doc.mentions, doc.relations):
            stats.duplicates += 1
        else:
            raise DataError(
                path, f"PMID {doc.pmid} occurs twice with different content", "keep one copy", doc.line
            )
    return unique


def sentence_spans(doc: Document) -> list[tuple[int, int]]:
    """Split ``doc.text`` into ``(start, end)`` sentence spans (rules in the module docstring)."""
    text = doc.text
    inside = [(m.start, m.end) for m in doc.mentions]

    def allowed(pos: int) -> bool:
        return not any(s < pos < e for s, e in inside)

    cuts: list[int] = []
    title_end = len(doc.title)
    for match in _BOUNDARY.finditer(text):
        pos = match.start(1)
        word = _WORD_BEFORE.search(text, 0, match.start())
        before = word.group(1).lstrip("([\"'") if word else ""
        if text[match.start()] == "." and (len(before) == 1 and before.isalpha() or before in ABBREVIATIONS):
            continue
        cuts.append(pos)
    cuts.append(title_end)
    spans: list[tuple[int, int]] = []
    start = 0
    for pos in sorted(set(cuts)):
        if pos <= start or not allowed(pos):
            continue
        spans.append((start, pos))
        start = pos
    spans.append((start, len(text)))
    return spans


def _tokens(text: str, start: int, end: int, cuts: list[int]) -> list[tuple[int, int]]:
    """Token offsets inside ``text[start:end]``, also cut at every offset in the sorted ``cuts``."""
    out: list[tuple[int, int]] = []
    for match in _TOKEN.finditer(text, start, end):
        s, e = match.span()
        inner = cuts[bisect.bisect_right(cuts, s) : bisect.bisect_left(cuts, e)]
        for a, b in itertools.pairwise([s, *inner, e]):
            out.append((a, b))
    return out


def _choose_mentions(
    doc: Document, spec: SourceSpec, path: Path, stats: SplitStats
) -> list[tuple[Mention, str]]:
    """Map mention types and drop mentions overlapping an earlier kept one."""
    kept: list[tuple[Mention, str]] = []
    last_end = -1
    for m in sorted(doc.mentions, key=lambda m: (m.start, -m.end)):
        etype = spec.type_map.get(m.type, m.type)
        check_label(etype, spec.labels, path, doc.line)
        stats.mentions += 1
        if m.start < last_end:
            stats.overlapping += 1
            continue
        kept.append((m, etype))
        last_end = m.end
    return kept


def document_sentences(doc: Document, spec: SourceSpec, path: Path, stats: SplitStats) -> list[NerSentence]:
    """Split one document into tagged sentences, updating ``stats``."""
    text = doc.text
    mentions = _choose_mentions(doc, spec, path, stats)
    cuts = sorted({m.start for m, _ in mentions} | {m.end for m, _ in mentions})
    out: list[NerSentence] = []
    for s_start, s_end in sentence_spans(doc):
        offsets = _tokens(text, s_start, s_end, cuts)
        if not offsets:
            continue
        tags = ["O"] * len(offsets)
        for m, etype in mentions:
            if not (s_start <= m.start < s_end):
                continue
            if m.end > s_end:
                stats.lost_at_boundaries += 1
                continue
            inside = [i for i, (a, b) in enumerate(offsets) if a >= m.start and b <= m.end]
            tags[inside[0]] = f"B-{etype}"
            for i in inside[1:]:
                tags[i] = f"I-{etype}"
            stats.kept += 1
        tokens = tuple(text[a:b] for a, b in offsets)
        out.append(NerSentence(f"{doc.pmid}:{len(out)}", tokens, tuple(tags)))
    return out


def read_pubtator_ner(path: Path, spec: SourceSpec) -> tuple[list[NerSentence], SplitStats]:
    """Every document's tagged sentences, in file order, and the counts of what splitting did."""
    stats = SplitStats()
    docs = _dedupe(read_documents(path), stats, path)
    sentences: list[NerSentence] = []
    for doc in docs:
        sentences.extend(document_sentences(doc, spec, path, stats))
    stats.documents, stats.sentences = len(docs), len(sentences)
    return sentences, stats


def load_pubtator_ner(path: Path, spec: SourceSpec, split: str) -> list[NerSentence]:
    """Reader entry point for ``format="pubtator_ner"``."""
    sentences, stats = read_pubtator_ner(path, spec)
    log.info("%s: %s", path.name, stats)
    count("duplicate_documents", stats.duplicates)
    count("overlapping_mentions", stats.overlapping)
    if stats.lost_at_boundaries or stats.overlapping:
        log.warning(
            "%s: %d mentions lost at sentence boundaries, %d overlapping mentions dropped",
            path.name,
            stats.lost_at_boundaries,
            stats.overlapping,
        )
    return sentences


def _first_names(doc: Document, etype: str) -> dict[str, str]:
    """Concept id -> text of its first mention of ``etype`` (ids ``-1`` are not normalised: skipped)."""
    names: dict[str, str] = {}
    for m in doc.mentions:
        if m.type == etype:
            for cid in m.ids:
                if cid != "-1":
                    names.setdefault(cid, m.text)
    return names


def cid_pairs(doc: Document, spec: SourceSpec, path: Path) -> list[RelationPair]:
    """Every (chemical, disease) concept pair of a document, labelled ``CID`` or the negative label."""
    chemicals, diseases = _first_names(doc, "Chemical"), _first_names(doc, "Disease")
    positive: set[tuple[str, str]] = set()
    for rtype, chem, dis in doc.relations:
        check_label(rtype, spec.labels, path, doc.line)
        positive.add((chem, dis))
        chemicals.setdefault(chem, chem)
        diseases.setdefault(dis, dis)
    negative = spec.negative_label or "none"
    return [
        RelationPair(
            id=f"{doc.pmid}:{chem}:{dis}",
            text=doc.text,
            label="CID" if (chem, dis) in positive else negative,
            head=chem_name,
            tail=dis_name,
        )
        for chem, chem_name in chemicals.items()
        for dis, dis_name in diseases.items()
    ]


def load_cid(path: Path, spec: SourceSpec, split: str) -> list[RelationPair]:
    """Reader entry point for ``format="pubtator_cid"``: document-level chemical-induced-disease pairs."""
    docs = _dedupe(read_documents(path), SplitStats(), path)
    return [pair for doc in docs for pair in cid_pairs(doc, spec, path)]

"""BioC XML collections (the BC5CDR release's ``CDR_*.BioC.xml``) -> the same :class:`~.documents.Document` s as
the PubTator files of the same release, so ``pubtator_ner`` and ``pubtator_cid`` read either.

A ``<document>`` has an ``<id>`` (the PMID), a ``title`` passage and an ``abstract`` passage (``<infon
key="type">``), each with its ``<offset>`` into the document and its ``<text>``; the title must start at 0 and
the abstract at ``len(title) + 1``, which is the text ``title + " " + abstract`` that PubTator offsets index.
An ``<annotation>`` gives its ``type`` and ``MESH`` infons (ids joined by ``|``), its ``<text>`` and one or more
``<location offset= length=>``; a mention with several locations (discontinuous) is read at its first one, as
the DDI reader does. A ``<relation>`` gives ``relation`` (e.g. ``CID``) and the ``Chemical`` and ``Disease``
ids. Every mention is checked against the text at its offsets; errors name the file and the document.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from biotune.errors import DataError
from biotune.sources._io import require_file
from biotune.sources.documents import Document, Mention

_FIX = "use the BioC XML of the corpus release (collection/document/passage/annotation)"


def _infons(element: ET.Element) -> dict[str, str]:
    return {i.get("key", ""): (i.text or "") for i in element.findall("infon")}


def _document(element: ET.Element, path: Path) -> Document:
    pmid = (element.findtext("id") or "").strip()
    passages = {_infons(p).get("type", ""): p for p in element.findall("passage")}
    if not pmid or "title" not in passages:
        raise DataError(path, f"document {pmid or '?'} lacks an id or a title passage", _FIX)
    title = passages["title"].findtext("text") or ""
    abstract_el = passages.get("abstract")
    abstract = (abstract_el.findtext("text") or "") if abstract_el is not None else ""
    offsets = (int(passages["title"].findtext("offset") or 0),
               int(abstract_el.findtext("offset") or 0) if abstract_el is not None else len(title) + 1)  # fmt: skip
    if offsets != (0, len(title) + 1):
        raise DataError(
            path, f"document {pmid}: passage offsets {offsets}, expected (0, {len(title) + 1})", _FIX
        )
    doc = Document(pmid, title, abstract, 0)
    text = doc.text
    for passage in passages.values():
        for ann in passage.findall("annotation"):
            infons = _infons(ann)
            loc = ann.find("location")
            if loc is None:
                raise DataError(path, f"document {pmid}: annotation {ann.get('id')} has no location", _FIX)
            start = int(loc.get("offset", "-1"))
            end = start + int(loc.get("length", "0"))
            if not 0 <= start < end <= len(text):
                raise DataError(
                    path, f"document {pmid}: annotation {ann.get('id')} lies outside the text", _FIX
                )
            spelled = (ann.findtext("text") or "").strip()
            if len(ann.findall("location")) == 1 and text[start:end].strip() != spelled:
                raise DataError(
                    path,
                    f"document {pmid}: annotation {ann.get('id')} {spelled!r} does not match the text at {start}-{end}",
                    "offsets must index the document (title at 0, abstract after one space)",
                )
            ids = tuple(i for i in infons.get("MESH", "").split("|") if i)
            doc.mentions.append(Mention(start, end, text[start:end], infons.get("type", ""), ids))
    for rel in element.findall("relation"):
        infons = _infons(rel)
        doc.relations.append(
            (infons.get("relation", ""), infons.get("Chemical", ""), infons.get("Disease", ""))
        )
    return doc


def read_bioc(path: Path) -> list[Document]:
    """Every document of a BioC XML collection, in file order."""
    try:
        root = ET.parse(require_file(path)).getroot()
    except ET.ParseError as err:
        raise DataError(path, f"not well-formed XML ({err})", _FIX, err.position[0]) from None
    docs = [_document(d, path) for d in root.iter("document")]
    if not docs:
        raise DataError(path, "no <document> elements", _FIX)
    return docs

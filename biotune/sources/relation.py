"""Relation-extraction files -> :class:`RelationPair`.

Formats (``SourceSpec.format``):

``blue_tsv``
    BioBERT/BLUE-style TSV with the pair already masked in the sentence (GAD, EU-ADR: ``@GENE$``,
    ``@DISEASE$``; ChemProt CPR groups: ``BC6ENTC``/``BC6ENTG``). Rows are ``sentence<TAB>label`` or
    ``index<TAB>sentence<TAB>label``; a first line ``sentence<TAB>label`` or ``index<TAB>sentence<TAB>label`` is
    a header and skipped (GAD/EU-ADR train files have none, their test files have one). The header, else the
    first row (three fields with an integer first = indexed), fixes the number of columns, and every row must
    have exactly that many: a tab inside a sentence is an error naming the line, never a shifted row.
``chemprot_jsonl``
    SciBERT ChemProt JSON lines ``{"text", "label"}``; the chemical is wrapped in ``<< >>`` and the protein in
    ``[[ ]]`` (either first); ``head``/``tail`` are the two wrapped strings; a row without both markers is an
    error naming its line.
``ddi_xml``
    DDI 2013 XML, one document per file under a directory (read recursively, sorted by path). Every
    ``<pair>`` becomes one record: the two entities are replaced by ``@DRUG$`` as in BLUE, whitespace is
    collapsed, and the label is ``DDI-<type>`` for ``ddi="true"`` or ``DDI-false``. For a discontinuous
    mention (``charOffset="a-b;c-d"``) only its first range is masked; if the two masked ranges overlap they
    are masked once. Each range must lie inside the sentence, and a one-range mention must spell the entity's
    ``text`` (else an error naming the sentence and entity ids). One training pair is ``ddi="true"`` with no
    type: it is labelled ``DDI-int`` (the corpus's class for an interaction stated without detail), logged and
    counted (``ddi_true_without_type``, :func:`biotune.sources.reader_counts`).
``i2b2_re``
    The i2b2-2010 relation format used by Llama2-MedTuned. The corpus is credentialed (n2c2/DBMI), so this
    reader follows an assumed layout: TSV with header ``index<TAB>sentence<TAB>label``, the two concepts masked
    as ``@problem$``, ``@treatment$`` or ``@test$``; labels ``TrIP TrWP TrCP TrAP TrNAP TeRP TeCP PIP`` and a
    negative written ``No Relations`` or ``false`` (``false`` is read as ``No Relations``). It is the
    ``blue_tsv`` reader with the source's label aliases.

Record ids: ``<file stem>:<row index>`` (0-based data rows; the ``index`` column when the file has one);
DDI: the corpus's pair id.
"""

from __future__ import annotations

import logging
import re
import xml.etree.ElementTree as ET
from pathlib import Path

from biotune.errors import DataError
from biotune.sources._io import (
    NUL_FIX,
    REENCODE_FIX,
    check_label,
    count,
    json_lines,
    lines,
    require_dir,
    require_file,
)
from biotune.sources.records import RelationPair
from biotune.sources.spec import SourceSpec

log = logging.getLogger(__name__)

_HEADERS = (["sentence", "label"], ["index", "sentence", "label"])
_ROW_FIX = (
    "write 'sentence<TAB>label' or 'index<TAB>sentence<TAB>label' on every row (replace tabs inside the "
    "sentence by spaces; a file with an index column needs the header 'index<TAB>sentence<TAB>label' or integer "
    "indices)"
)
DDI_MASK = "@DRUG$"


def _label(raw: str, spec: SourceSpec, path: Path, number: int) -> str:
    label = spec.label_aliases.get(raw, raw)
    check_label(label, spec.labels, path, number)
    return label


def _tsv_columns(path: Path) -> tuple[int, bool]:
    """The file's layout: (2 or 3 columns, whether line 1 is a header).

    A header names it; without one, a first row of three fields whose first is an integer is ``index<TAB>sentence
    <TAB>label``, anything else ``sentence<TAB>label``. Every row must then have that many fields: a tab inside
    a sentence would otherwise turn a word into the index and cut the sentence.
    """
    for number, line in lines(path):
        if not line.strip():
            continue
        fields = line.split("\t")
        header = [f.strip().lower() for f in fields]
        if number == 1 and header in _HEADERS:
            return len(header), True
        return (3 if len(fields) == 3 and fields[0].strip().isdigit() else 2), False
    return 2, False


def load_masked_tsv(path: Path, spec: SourceSpec, split: str) -> list[RelationPair]:
    """Reader entry point for ``format="blue_tsv"`` and ``"i2b2_re"`` (see the module docstring)."""
    pairs: list[RelationPair] = []
    ids: set[str] = set()
    width, has_header = _tsv_columns(path)
    layout = "index<TAB>sentence<TAB>label" if width == 3 else "sentence<TAB>label"
    for number, line in lines(path):
        if not line.strip() or (number == 1 and has_header):
            continue
        fields = line.split("\t")
        if len(fields) != width or not fields[-2].strip():
            hint = " (a tab inside the sentence?)" if len(fields) > width else ""
            raise DataError(
                path,
                f"expected {width} tab-separated columns ({layout}, as the file's "
                f"{'header' if has_header else 'first row'} says), found {len(fields)}{hint}",
                _ROW_FIX,
                number,
            )
        rid = f"{path.stem}:{fields[0].strip() if width == 3 else len(pairs)}"
        if rid in ids:
            raise DataError(path, f"index {fields[0]!r} repeats", "give every row a unique index", number)
        ids.add(rid)
        pairs.append(RelationPair(rid, fields[-2].strip(), _label(fields[-1].strip(), spec, path, number)))
    if not pairs:
        raise DataError(path, "file has no rows", "restore the file: expected sentence<TAB>label rows")
    return pairs


def _between(text: str, left: str, right: str) -> str:
    match = re.search(re.escape(left) + r"\s*(.*?)\s*" + re.escape(right), text)
    return match.group(1) if match else ""


def load_chemprot_jsonl(path: Path, spec: SourceSpec, split: str) -> list[RelationPair]:
    """Reader entry point for ``format="chemprot_jsonl"`` (SciBERT ChemProt)."""
    pairs: list[RelationPair] = []
    for number, obj in json_lines(path):
        text, raw = obj.get("text"), obj.get("label")
        if not isinstance(text, str) or not isinstance(raw, str):
            raise DataError(
                path,
                "object lacks string fields 'text' and 'label'",
                'write {"text": ..., "label": ...}',
                number,
            )
        label = _label(raw, spec, path, number)
        head, tail = _between(text, "<<", ">>"), _between(text, "[[", "]]")
        missing = [
            m
            for m, found in (("<< >> around the chemical", head), ("[[ ]] around the protein", tail))
            if not found
        ]
        if missing:
            raise DataError(
                path,
                f"the text lacks {' and '.join(missing)}",
                "mark the pair as SciBERT's ChemProt does: <<chemical>> and [[protein]] (non-empty), or drop the row",
                number,
            )
        pairs.append(RelationPair(f"{path.stem}:{len(pairs)}", text, label, head, tail))
    if not pairs:
        raise DataError(path, "file has no records", "restore the file: one JSON object per line")
    return pairs


def _entity_span(entity: ET.Element, text: str, sentence_id: str, path: Path) -> tuple[int, int]:
    """``charOffset="a-b;c-d"`` -> ``(a, b + 1)``: the first range, end made exclusive, checked against the text.

    Every range must lie inside the sentence, and a one-range mention must spell the entity's ``text``: an offset
    off the sentence would leave the drug unmasked and append ``@DRUG$`` at the end.
    """
    offset, eid = entity.get("charOffset", ""), entity.get("id")
    where = f"sentence {sentence_id}, entity {eid}"
    ranges: list[tuple[int, int]] = []
    for part in offset.split(";"):
        try:
            start, end = part.split("-")
            ranges.append((int(start), int(end) + 1))
        except ValueError:
            raise DataError(
                path, f"{where}: bad charOffset {offset!r}", "write charOffset as start-end (inclusive)"
            ) from None
    fix = "fix the entity's charOffset: 0-based, inclusive, within the sentence's text attribute"
    for start, end in ranges:
        if not 0 <= start < end <= len(text):
            raise DataError(
                path,
                f"{where}: charOffset {offset!r} lies outside the sentence ({len(text)} characters)",
                fix,
            )
    if (
        len(ranges) == 1
        and entity.get("text") is not None
        and text[ranges[0][0] : ranges[0][1]] != entity.get("text")
    ):
        raise DataError(
            path,
            f"{where}: charOffset {offset!r} spells {text[ranges[0][0] : ranges[0][1]]!r}, "
            f"not the entity's text {entity.get('text')!r}",
            fix,
        )
    return ranges[0]


def _mask(text: str, spans: list[tuple[int, int]]) -> str:
    """Replace each span (merged where they overlap) with :data:`DDI_MASK` and collapse whitespace."""
    merged: list[list[int]] = []
    for s, e in sorted(spans):
        if merged and s < merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([s, e])
    out, pos = [], 0
    for s, e in merged:
        out += [text[pos:s], DDI_MASK]
        pos = e
    out.append(text[pos:])
    return " ".join("".join(out).split())


def _ddi_label(pair: ET.Element, spec: SourceSpec, path: Path) -> str:
    if pair.get("ddi") != "true":
        return spec.negative_label or "DDI-false"
    kind = pair.get("type")
    if kind is None:
        log.warning("%s: pair %s is ddi=true without a type; labelled DDI-int", path.name, pair.get("id"))
        count("ddi_true_without_type")
        kind = "int"
    label = f"DDI-{kind}"
    check_label(label, spec.labels, path, None)
    return label


def _parse_xml(path: Path) -> ET.Element:
    raw = require_file(path).read_bytes()
    nul = raw.find(b"\x00")
    if nul >= 0:
        raise DataError(path, "NUL byte in the XML", NUL_FIX, raw.count(b"\n", 0, nul) + 1)
    try:
        return ET.parse(path).getroot()
    except ET.ParseError as exc:
        line = exc.position[0]
        fix = REENCODE_FIX if "invalid token" in str(exc) or "encoding" in str(exc) else "fix the XML syntax"
        raise DataError(path, f"malformed XML: {exc}", fix, line) from None


def read_ddi_file(path: Path, spec: SourceSpec) -> list[RelationPair]:
    """All pairs of one DDI XML document."""
    pairs: list[RelationPair] = []
    for sentence in _parse_xml(path).iter("sentence"):
        text, sid = sentence.get("text", ""), str(sentence.get("id"))
        entities = {e.get("id"): e for e in sentence.iter("entity")}
        for pair in sentence.iter("pair"):
            e1, e2 = entities.get(pair.get("e1")), entities.get(pair.get("e2"))
            if e1 is None or e2 is None:
                raise DataError(
                    path,
                    f"sentence {sid}: pair {pair.get('id')} names an unknown entity",
                    "fix e1/e2 to entity ids of the sentence",
                )
            spans = [_entity_span(e, text, sid, path) for e in (e1, e2)]
            pairs.append(
                RelationPair(
                    id=str(pair.get("id")),
                    text=_mask(text, spans),
                    label=_ddi_label(pair, spec, path),
                    head=e1.get("text", ""),
                    tail=e2.get("text", ""),
                )
            )
    return pairs


def load_ddi(path: Path, spec: SourceSpec, split: str) -> list[RelationPair]:
    """Reader entry point for ``format="ddi_xml"``: every ``*.xml`` under the split's directory."""
    files = sorted(require_dir(path).rglob("*.xml"))
    if not files:
        raise DataError(path, "no *.xml files", "point the split at the DDI corpus folder (e.g. ddi/Train)")
    return [pair for file in files for pair in read_ddi_file(file, spec)]

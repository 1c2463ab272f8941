"""Relation-extraction files -> :class:`RelationPair`.

Formats (``SourceSpec.format``):

``blue_tsv``
    BioBERT/BLUE-style TSV with the pair already masked in the sentence (GAD, EU-ADR: ``@GENE$``,
    ``@DISEASE$``; ChemProt CPR groups: ``BC6ENTC``/``BC6ENTG``). Rows are ``sentence<TAB>label`` or
    ``index<TAB>sentence<TAB>label``; a first line ``sentence<TAB>label`` or ``index<TAB>sentence<TAB>label`` is
    a header and skipped (GAD/EU-ADR train files have none, their test files have one).
``chemprot_jsonl``
    SciBERT ChemProt JSON lines ``{"text", "label"}``; the chemical is wrapped in ``<< >>`` and the protein in
    ``[[ ]]`` (either first); ``head``/``tail`` are the two wrapped strings.
``ddi_xml``
    DDI 2013 XML, one document per file under a directory (read recursively, sorted by path). Every
    ``<pair>`` becomes one record: the two entities are replaced by ``@DRUG$`` as in BLUE, whitespace is
    collapsed, and the label is ``DDI-<type>`` for ``ddi="true"`` or ``DDI-false``. For a discontinuous
    mention (``charOffset="a-b;c-d"``) only its first range is masked; if the two masked ranges overlap they
    are masked once. One training pair is ``ddi="true"`` with no type: it is labelled ``DDI-int`` (the corpus's
    class for an interaction stated without detail) and logged.
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

from biotune.data.records import RelationPair
from biotune.data.sources._io import REENCODE_FIX, check_label, json_lines, lines, require_dir
from biotune.data.sources.spec import SourceSpec
from biotune.errors import DataError

log = logging.getLogger(__name__)

_HEADERS = (["sentence", "label"], ["index", "sentence", "label"])
_ROW_FIX = (
    "write 'sentence<TAB>label' or 'index<TAB>sentence<TAB>label' (tabs inside the sentence are not allowed)"
)
DDI_MASK = "@DRUG$"


def _label(raw: str, spec: SourceSpec, path: Path, number: int) -> str:
    label = spec.label_aliases.get(raw, raw)
    check_label(label, spec.labels, path, number)
    return label


def load_masked_tsv(path: Path, spec: SourceSpec, split: str) -> list[RelationPair]:
    """Reader entry point for ``format="blue_tsv"`` and ``"i2b2_re"`` (see the module docstring)."""
    pairs: list[RelationPair] = []
    ids: set[str] = set()
    for number, line in lines(path):
        if not line.strip():
            continue
        fields = line.split("\t")
        if number == 1 and [f.strip().lower() for f in fields] in _HEADERS:
            continue
        if len(fields) not in (2, 3) or not fields[-2].strip():
            raise DataError(
                path, f"expected 2 or 3 tab-separated columns, found {len(fields)}", _ROW_FIX, number
            )
        rid = f"{path.stem}:{fields[0].strip() if len(fields) == 3 else len(pairs)}"
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
        pairs.append(RelationPair(f"{path.stem}:{len(pairs)}", text, label, head, tail))
    if not pairs:
        raise DataError(path, "file has no records", "restore the file: one JSON object per line")
    return pairs


def _first_range(offset: str, path: Path, line: int | None) -> tuple[int, int]:
    """``"a-b;c-d"`` -> ``(a, b + 1)``: the first range, end made exclusive."""
    try:
        start, end = offset.split(";")[0].split("-")
        return int(start), int(end) + 1
    except ValueError:
        raise DataError(
            path, f"bad charOffset {offset!r}", "write charOffset as start-end (inclusive)", line
        ) from None


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
        kind = "int"
    label = f"DDI-{kind}"
    check_label(label, spec.labels, path, None)
    return label


def _parse_xml(path: Path) -> ET.Element:
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
        text = sentence.get("text", "")
        entities = {e.get("id"): e for e in sentence.iter("entity")}
        for pair in sentence.iter("pair"):
            e1, e2 = entities.get(pair.get("e1")), entities.get(pair.get("e2"))
            if e1 is None or e2 is None:
                raise DataError(
                    path,
                    f"pair {pair.get('id')} names an unknown entity",
                    "fix e1/e2 to entity ids of the sentence",
                )
            spans = [_first_range(e.get("charOffset", ""), path, None) for e in (e1, e2)]
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

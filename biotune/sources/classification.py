"""Text classification files -> :class:`DocLabels`: Hallmarks of Cancer (``hoc``) and a plain TSV (``cls_tsv``).

``cls_tsv`` (for a lab's own corpus, declared in ``data.custom_sources``): one example per line,
``text<TAB>labels`` or ``id<TAB>text<TAB>labels``; ``labels`` is a comma-separated list of the source's labels
(multi-label), empty or ``None`` for none. A first line ``text<TAB>labels`` / ``id<TAB>text<TAB>labels`` is a
header. Every row must have the header's (else the first row's) number of fields, and every label must be one
of the source's labels: an error names the file and line. Record ids: the ``id`` column, else
``<file stem>:<row index>``.

``hoc`` layout: ``hoc/text/<PMID>.txt`` (tokenised abstract, one sentence per line) and ``hoc/labels/<PMID>.txt``
(one line of per-sentence groups, each introduced by ``<`` and aligned with the text lines; labels inside a
group are separated by ``AND``; each label is a taxonomy path ``Top level--sub class...``; an empty group or
``NULL`` means no label). Every document has both files: a labels file without its text is an error. A document's labels are the union of its sentences' top-level hallmarks, lower-cased
and sorted; its text is the abstract (sentence lines joined by one space). The record id is the PMID.

Split (the corpus ships none; BLUE's/BLURB's lists are not available): a document goes to ``train``,
``devel`` or ``test`` by ``int(sha256(PMID), 16) % 10``: 0-7 train, 8 devel, 9 test (about 80/10/10; on the
1,852 documents: see the tests for the exact counts). The split is a pure function of the PMID.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from biotune.errors import DataError
from biotune.sources._io import check_label, lines, read_text, require_dir, require_file
from biotune.sources.records import DocLabels
from biotune.sources.spec import SourceSpec

SPLIT_BUCKETS = {"train": range(0, 8), "devel": range(8, 9), "test": range(9, 10)}


def hoc_split(pmid: str) -> str:
    """The split of a HoC document (see the module docstring)."""
    bucket = int(hashlib.sha256(pmid.encode()).hexdigest(), 16) % 10
    return next(name for name, buckets in SPLIT_BUCKETS.items() if bucket in buckets)


def parse_labels(line: str, spec: SourceSpec, path: Path) -> list[set[str]]:
    """One HoC label line -> per-sentence sets of top-level labels."""
    groups: list[set[str]] = []
    for group in line.split("<")[1:]:
        labels: set[str] = set()
        for item in group.split("AND"):
            top = item.split("--")[0].strip().lower()
            if top and top != "null":
                check_label(top, spec.labels, path, 1)
                labels.add(top)
        groups.append(labels)
    return groups


def read_document(root: Path, pmid: str, spec: SourceSpec) -> DocLabels:
    """Read one PMID's text and labels."""
    text_path, label_path = root / "text" / f"{pmid}.txt", root / "labels" / f"{pmid}.txt"
    sentences = [s.strip() for s in read_text(text_path).strip("\n").split("\n")]
    groups = parse_labels(read_text(label_path, allow_empty=True).strip("\n"), spec, label_path)
    if len(groups) != len(sentences):
        raise DataError(
            label_path,
            f"{len(groups)} label groups for {len(sentences)} sentences in {text_path.name}",
            "write one '<' group per text line (an empty group for an unlabelled sentence)",
            1,
        )
    labels = set().union(*groups) if groups else set()
    return DocLabels(pmid, " ".join(s for s in sentences if s), tuple(sorted(labels)))


def load_hoc(path: Path, spec: SourceSpec, split: str) -> list[DocLabels]:
    """Reader entry point for ``format="hoc"``: the documents of ``split``, sorted by PMID."""
    text_dir = require_dir(path / "text")
    pmids = sorted(p.stem for p in text_dir.glob("*.txt"))
    if not pmids:
        raise DataError(
            text_dir, "no <PMID>.txt files", "point the source at the HoC folder with text/ and labels/"
        )
    label_dir = require_dir(path / "labels")
    orphans = sorted({p.stem for p in label_dir.glob("*.txt")} - set(pmids))
    if orphans:  # a document whose text is missing is an error, not a document dropped from every split
        more = f" (and {len(orphans) - 1} more)" if len(orphans) > 1 else ""
        raise DataError(
            label_dir / f"{orphans[0]}.txt",
            f"labels without a text file: {text_dir / orphans[0]}.txt is missing{more}",
            "restore the document's text/<PMID>.txt, or remove its labels file",
        )
    return [read_document(path, pmid, spec) for pmid in pmids if hoc_split(pmid) == split]


_CLS_HEADERS = (["text", "labels"], ["id", "text", "labels"])


def load_cls_tsv(path: Path, spec: SourceSpec, split: str) -> list[DocLabels]:
    """Reader entry point for ``format="cls_tsv"`` (see the module docstring)."""
    records: list[DocLabels] = []
    width: int | None = None
    for number, line in lines(require_file(path)):
        if not line.strip():
            continue
        fields = line.split("\t")
        if width is None:
            width = len(fields)
            if width not in (2, 3):
                raise DataError(
                    path,
                    f"{width} tab-separated fields",
                    "write text<TAB>labels or id<TAB>text<TAB>labels",
                    number,
                )
            if [f.strip().lower() for f in fields] in _CLS_HEADERS:
                continue
        if len(fields) != width:
            raise DataError(
                path,
                f"{len(fields)} fields where the file has {width}",
                "keep one example per line with the same columns (no tab inside the text)",
                number,
            )
        rid = fields[0] if width == 3 else f"{path.stem}:{len(records)}"
        text, raw = fields[-2].strip(), fields[-1].strip()
        if not text:
            raise DataError(path, "empty text", "give every example its text", number)
        labels = [x.strip() for x in raw.split(",") if x.strip()] if raw.lower() not in ("", "none") else []
        for label in labels:
            check_label(label, spec.labels, path, number)
        records.append(DocLabels(rid, text, tuple(sorted(set(labels)))))
    if not records:
        raise DataError(path, "no examples", "write one text<TAB>labels line per example")
    return records

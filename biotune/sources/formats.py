"""The readers, one per native file format: format name -> reader, and the kind of record each yields.

A registered source (:mod:`.registry`) or a declared one (:mod:`.custom`) names its ``format``; :func:`biotune.data.
sources.load_records` calls that reader on the split's path.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from biotune.sources import classification, conll, nli, pubtator, qa, relation
from biotune.sources.spec import SourceSpec

Reader = Callable[[Path, SourceSpec, str], list]
READERS: dict[str, Reader] = {
    "conll": conll.load_conll,
    "pubtator_ner": pubtator.load_pubtator_ner,
    "pubtator_cid": pubtator.load_cid,
    "blue_tsv": relation.load_masked_tsv,
    "i2b2_re": relation.load_masked_tsv,
    "chemprot_jsonl": relation.load_chemprot_jsonl,
    "ddi_xml": relation.load_ddi,
    "mednli_jsonl": nli.load_mednli,
    "hoc": classification.load_hoc,
    "cls_tsv": classification.load_cls_tsv,
    "pubmedqa": qa.load_pubmedqa,
    "bioasq_tsv": qa.load_bioasq_tsv,
}
#: Reader format -> the kind of record it yields (a declared source's ``kind`` must match its ``format``).
FORMAT_KINDS: dict[str, str] = {
    "conll": "ner",
    "pubtator_ner": "ner",
    "pubtator_cid": "re",
    "blue_tsv": "re",
    "i2b2_re": "re",
    "chemprot_jsonl": "re",
    "ddi_xml": "re",
    "mednli_jsonl": "nli",
    "hoc": "cls",
    "cls_tsv": "cls",
    "pubmedqa": "qa",
    "bioasq_tsv": "qa",
}
assert set(FORMAT_KINDS) == set(READERS)

"""The registered corpora: :data:`SOURCES`, name -> :class:`SourceSpec`.

Paths are relative to the data root (``../shared/data`` layout). ``restricted`` is True where outputs built
from the data must stay private: credentialed corpora (i2b2, MedNLI), non-commercial ones (DDI, CC BY-NC), and
those whose redistribution terms are unknown or unclear (BioASQ; S800 and EU-ADR state no licence; the ChemProt
CPR-groups copy comes from a repository under a non-profit research licence).
"""

from __future__ import annotations

import dataclasses

from biotune.sources.spec import SourceSpec
from biotune.sources.splits import spellings_of

_NCBI = "NCBI Public Domain Notice (IOB copy: CC BY 4.0, MTL-Bioinformatics-2016)"
_TRAIN_DEVEL_TEST = ("train", "devel", "test")
HALLMARKS = (
    "activating invasion and metastasis",
    "avoiding immune destruction",
    "cellular energetics",
    "enabling replicative immortality",
    "evading growth suppressors",
    "genomic instability and mutation",
    "inducing angiogenesis",
    "resisting cell death",
    "sustaining proliferative signaling",
    "tumor promoting inflammation",
)
I2B2_2010_LABELS = ("TrIP", "TrWP", "TrCP", "TrAP", "TrNAP", "TeRP", "TeCP", "PIP", "No Relations")
I2B2_2012_TYPES = ("PROBLEM", "TEST", "TREATMENT", "CLINICAL_DEPT", "EVIDENTIAL", "OCCURRENCE")
CHEMPROT_FINE = (
    "ACTIVATOR", "AGONIST", "AGONIST-ACTIVATOR", "AGONIST-INHIBITOR", "ANTAGONIST", "DOWNREGULATOR",
    "INDIRECT-DOWNREGULATOR", "INDIRECT-UPREGULATOR", "INHIBITOR", "PRODUCT-OF", "SUBSTRATE",
    "SUBSTRATE_PRODUCT-OF", "UPREGULATOR",
)  # fmt: skip


def _files(folder: str, names: tuple[str, ...] = _TRAIN_DEVEL_TEST, ext: str = "tsv") -> dict[str, str]:
    return {name: f"{folder}/{name}.{ext}" for name in names}


def _spelling_layouts(spec: SourceSpec) -> dict[str, tuple[str, ...]]:
    """For split files named ``<split>.<ext>``, the same folder's file under each other spelling of the split
    (``dev.tsv`` or ``validation.tsv`` for ``devel``: BLURB and the Hugging Face copies say ``validation``; see
    :mod:`.splits`), tried after the split's own name."""
    out = {split: list(paths) for split, paths in spec.layouts.items()}
    for split, rel in spec.splits.items():
        folder, _, filename = rel.rpartition("/")
        stem, dot, ext = filename.partition(".")
        if stem != split or not dot:
            continue
        for other in spellings_of(split)[1:]:
            alt = f"{folder}/{other}.{ext}"
            if alt not in out.setdefault(split, []):
                out[split].append(alt)
    return {split: tuple(paths) for split, paths in out.items() if paths}


def _ner(
    name: str, folder: str, types: tuple[str, ...], licence: str, description: str, **kw: object
) -> SourceSpec:
    splits = kw.pop("splits", None) or _files(folder)
    return SourceSpec(
        name=name, kind="ner", format="conll", splits=splits, labels=types, licence=licence,
        restricted=bool(kw.pop("restricted", False)), credentialed=bool(kw.pop("credentialed", False)),
        description=description, **kw,  # type: ignore[arg-type]
    )  # fmt: skip


def _euadr_splits() -> dict[str, str]:
    splits = {"train": "euadr/fold1/train.tsv", "test": "euadr/fold1/test.tsv"}
    for k in range(1, 11):
        splits |= {f"fold{k}_train": f"euadr/fold{k}/train.tsv", f"fold{k}_test": f"euadr/fold{k}/test.tsv"}
    return splits


#: The official BC5CDR zip (CDR_Data.zip) unpacked under ``bc5cdr/``: its PubTator files, else its BioC XML.
_CDR_ZIP = {
    split: tuple(
        f"bc5cdr/CDR_Data/CDR.Corpus.v010516/CDR_{name}.{fmt}" for fmt in ("PubTator.txt", "BioC.xml")
    )
    for split, name in (("train", "TrainingSet"), ("devel", "DevelopmentSet"), ("test", "TestSet"))
}
#: BC5CDR's PubTator files in biotune's own layout (the NER and the CID readers both read them).
_CDR_PUBTATOR = {
    split: f"bc5cdr/pubtator/CDR_{name}.PubTator.txt"
    for split, name in (("train", "TrainingSet"), ("devel", "DevelopmentSet"), ("test", "TestSet"))
}
#: The folder PhysioNet's MedNLI zip unpacks to.
_MEDNLI_ZIP = "mednli-a-natural-language-inference-dataset-for-the-clinical-domain-1.0.0"

_SPECS = [
    _ner("ncbi_disease", "ncbi_disease/iob", ("Disease",), _NCBI, "NCBI-disease NER (BioBERT/BLURB IOB).", paper_count=5424),
    _ner("bc5cdr_chem", "bc5cdr/chem-iob", ("Chemical",), _NCBI, "BC5CDR chemical NER (IOB).", paper_count=4560),
    _ner("bc5cdr_disease", "bc5cdr/disease-iob", ("Disease",), _NCBI, "BC5CDR disease NER (IOB).", paper_count=4560),
    _ner("bc2gm", "bc2gm/iob", ("GENE",), _NCBI,
         "BioCreative II gene mention NER (IOB; the staged copy has train/devel: add the official test.tsv).",
         paper_count=12574),
    _ner("jnlpba", "jnlpba/biobert-untyped", ("Biomolecule",), "GENIA Project License (annotations CC BY 3.0)",
         "JNLPBA NER, BioBERT copy: untyped B/I/O over protein, DNA and RNA mentions, typed here as Biomolecule.",
         entity_type="Biomolecule", paper_count=14690),
    _ner("jnlpba_typed", "jnlpba/mtl-typed", ("protein", "DNA", "RNA", "cell_line", "cell_type"),
         "GENIA Project License (annotations CC BY 3.0)",
         "JNLPBA NER with the 5 types (MTL copy; the staged copy has devel/test; do not mix splits with jnlpba)."),
    _ner("linnaeus", "linnaeus/iob", ("Species",), "CC BY 4.0", "LINNAEUS species NER (IOB)."),
    _ner("s800", "s800/biobert", ("Species",), "not stated (BigBIO: other); research use with citation",
         "SPECIES-800 species NER (BioBERT copy, untyped B/I/O typed here as Species).",
         entity_type="Species", restricted=True),
    _ner("i2b2_2012", "i2b2_2012/iob", I2B2_2012_TYPES, "n2c2/DBMI data use agreement (credentialed)",
         "i2b2-2012 temporal relations corpus, event NER as typed CoNLL (user-supplied files).",
         splits=_files("i2b2_2012/iob", ("train", "test")), restricted=True, credentialed=True, paper_count=6755),
    SourceSpec(
        name="ncbi_disease_pubtator", kind="ner", format="pubtator_ner",
        splits={"train": "ncbi_disease/original/NCBItrainset_corpus.txt",
                "devel": "ncbi_disease/original/NCBIdevelopset_corpus.txt",
                "test": "ncbi_disease/original/NCBItestset_corpus.txt"},
        labels=("Disease",), licence="NCBI Public Domain Notice", restricted=False, credentialed=False,
        description="NCBI-disease original abstracts, sentence-split and tokenized by biotune; 4 mention types -> Disease.",
        type_map={"SpecificDisease": "Disease", "DiseaseClass": "Disease", "Modifier": "Disease",
                  "CompositeMention": "Disease"},
    ),
    SourceSpec(
        name="bc5cdr_pubtator_ner", kind="ner", format="pubtator_ner",
        splits=_CDR_PUBTATOR,
        layouts=_CDR_ZIP,
        labels=("Chemical", "Disease"), licence="NCBI Public Domain Notice", restricted=False, credentialed=False,
        description="BC5CDR original abstracts, sentence-split and tokenized by biotune (Chemical, Disease).",
    ),
    SourceSpec(
        name="bc5cdr_cid", kind="re", format="pubtator_cid",
        splits=_CDR_PUBTATOR,
        layouts=_CDR_ZIP,
        labels=("CID", "none"), negative_label="none", licence="NCBI Public Domain Notice", restricted=False,
        credentialed=False,
        description="BC5CDR document-level chemical-induced-disease pairs: every chemical x disease MeSH pair of an abstract.",
    ),
    SourceSpec(
        name="gad", kind="re", format="blue_tsv", splits={"train": "gad/fold1/train.tsv", "test": "gad/fold1/test.tsv"},
        labels=("1", "0"), negative_label="0", licence="CC BY 4.0 (BigBIO)", restricted=False, credentialed=False,
        description="GAD gene-disease association (BioBERT fold 1; @GENE$/@DISEASE$ masked; 1 = associated).",
    ),
    SourceSpec(
        name="euadr", kind="re", format="blue_tsv", splits=_euadr_splits(),
        labels=("1", "0"), negative_label="0", licence="not stated (BigBIO: unknown)", restricted=True,
        credentialed=False,
        description="EU-ADR gene-disease relation (BioBERT 10 folds; train/test = fold 1, foldK_train/foldK_test).",
    ),
    SourceSpec(
        name="chemprot", kind="re", format="blue_tsv", splits=_files("chemprot/cpr-groups", ("train", "dev", "test")),
        labels=("CPR:3", "CPR:4", "CPR:5", "CPR:6", "CPR:9", "False"), negative_label="False",
        licence="ChemProt: Public Domain Mark (BigBIO); this copy: UC non-profit research licence (bio_electra)",
        restricted=True, credentialed=False,
        description="ChemProt CPR groups (BLURB-style, all candidate pairs incl. False; BC6ENTC/BC6ENTG masked).",
    ),
    SourceSpec(
        name="chemprot_fine", kind="re", format="chemprot_jsonl",
        splits=_files("chemprot/scibert-fine", ("train", "dev", "test"), "jsonl"),
        labels=CHEMPROT_FINE, negative_label=None,
        licence="ChemProt: Public Domain Mark (BigBIO); this copy: Apache-2.0 repository (SciBERT)",
        restricted=False, credentialed=False,
        description="ChemProt 13 fine relation labels, positives only (SciBERT; << chemical >>, [[ protein ]]).",
    ),
    SourceSpec(
        name="ddi", kind="re", format="ddi_xml",
        splits={"train": "ddi/Train", "test": "ddi/Test/Test for DDI Extraction task"},
        layouts={"train": ("ddi/DDICorpus/Train",),
                 "test": ("ddi/DDICorpus/Test/Test for DDI Extraction task",)},
        labels=("DDI-mechanism", "DDI-effect", "DDI-advise", "DDI-int", "DDI-false"), negative_label="DDI-false",
        licence="CC BY-NC 4.0 (non-commercial)", restricted=True, credentialed=False,
        description="DDI 2013 drug-drug interaction pairs (the official zip's Train/ and Test/Test for DDI "
                    "Extraction task/; the staged copy has Train only; both drugs masked as @DRUG$).",
    ),
    SourceSpec(
        name="i2b2_2010_re", kind="re", format="i2b2_re", splits=_files("i2b2_2010/re", ("train", "test")),
        labels=I2B2_2010_LABELS, negative_label="No Relations", headline_with_negative=True,
        label_aliases={"false": "No Relations"},
        licence="n2c2/DBMI data use agreement (credentialed)", restricted=True, credentialed=True, paper_count=22256,
        description="i2b2-2010 concept relations, masked-entity TSV as used by Llama2-MedTuned (user-supplied files).",
    ),
    SourceSpec(
        name="mednli", kind="nli", format="mednli_jsonl",
        splits={"train": "mednli/mli_train_v1.jsonl", "dev": "mednli/mli_dev_v1.jsonl", "test": "mednli/mli_test_v1.jsonl"},
        layouts={s: (f"mednli/{_MEDNLI_ZIP}/mli_{s}_v1.jsonl",) for s in ("train", "dev", "test")},
        labels=("entailment", "contradiction", "neutral"),
        licence="PhysioNet Credentialed Health Data License", restricted=True, credentialed=True, paper_count=11232,
        description="MedNLI clinical natural-language inference (user-supplied files).",
    ),
    SourceSpec(
        name="hoc", kind="cls", format="hoc", splits={s: "hoc" for s in _TRAIN_DEVEL_TEST}, labels=HALLMARKS,
        licence="GPL-3.0", restricted=False, credentialed=False, paper_count=12119,
        description="Hallmarks of Cancer, document level (union of sentence labels); biotune's sha256(PMID) 80/10/10 split.",
    ),
    SourceSpec(
        name="pubmedqa", kind="qa", format="pubmedqa", splits={s: "pubmedqa/ori_pqal.json" for s in _TRAIN_DEVEL_TEST},
        labels=("yes", "no", "maybe"), licence="MIT", restricted=False, credentialed=False,
        description="PubMedQA PQA-L: official 500 test ids; pool split 450 train / 50 devel by sha256(PMID).",
    ),
    SourceSpec(
        name="bioasq_yesno", kind="qa", format="bioasq_tsv", splits=_files("bioasq_yesno/tsv", ("train", "test")),
        labels=("yes", "no"), licence="BioASQ terms of use (registration); redistribution unclear", restricted=True,
        credentialed=False, description="BioASQ Task B yes/no questions with the ideal answer as context (Bio-ELECTRA TSV).",
    ),
    _ner("synthetic_ner", "synthetic_ner", ("Disease", "Chemical"), "synthetic (biotune.data.synthetic)",
         "Synthetic NER from bundled lexicons: the pipeline's learnability probe (write it with "
         "biotune.data.synthetic.write_corpus).", splits=_files("synthetic_ner", ("train", "test")), generated=True),
    SourceSpec(
        name="synthetic_re", kind="re", format="blue_tsv", splits=_files("synthetic_re", ("train", "test")),
        labels=("ACTIVATOR", "INHIBITOR", "SUBSTRATE", "none"), negative_label="none",
        licence="synthetic (biotune.data.synthetic)", restricted=False, credentialed=False, generated=True,
        description="Synthetic chemical-protein relations (@CHEMICAL$/@GENE$ masked), label decided by a cue "
                    "phrase; a learnability probe (write it with biotune.data.synthetic.write_re_corpus).",
    ),
]  # fmt: skip

SOURCES: dict[str, SourceSpec] = {
    spec.name: dataclasses.replace(spec, layouts=_spelling_layouts(spec)) for spec in _SPECS
}

"""Every label spelling the parsers accept besides the label names themselves: the one table of synonyms.

The parsers (:mod:`.labels`, :mod:`.multilabel`) compare answers with these spellings up to case, spacing and
punctuation (:func:`biotune.data.tasks.matching.label_key`, :func:`~biotune.data.tasks.matching.phrase_pattern`),
so ``TRIP``, ``trip`` and ``Tr-IP`` are all ``TrIP`` and a spelling that differs only in those is listed once.
The label names are the registry's (:mod:`biotune.sources.registry`); this module only adds other ways
of writing them. A spelling that would name two labels of one task is accepted for neither (see
:func:`biotune.data.tasks.matching.label_phrases`).

Published spellings: Llama2-MedTuned (Rohanian et al., arXiv:2401.00579; data ``nlpie/Llama2-MedTuned-Instructions``)
writes its outputs as the authors' preprocessing scripts made them (github.com/nlpie-research/BioInstTune-LLM,
``preprocessing-datasets/preprocess_{hoc,gad,MedNLI,i2b2_2010_re,ncbi}.py``):

==========  ============================================================================================
task        published output
==========  ============================================================================================
HoC         ``Activating invasion & metastasis (IM), Genome instability & mutation (GI)``: the names below
            with their abbreviation in parentheses, joined by ``, ``; ``None`` when no hallmark applies
GAD         ``Positive`` / ``Negative`` (their script maps BLUE label 1 to ``Negative``; biotune reads the
            words by meaning: ``Positive`` is the association class ``1``)
i2b2-2010   the abbreviation alone (``TrIP`` ... ``PIP``) or ``No Relations``; the instructions list each
            relation as ``Treatment improves medical problem (TrIP)``
MedNLI      ``Entailment`` / ``Contradiction`` / ``Neutral`` (capitalised)
NER         ``token : B`` lines (``B``/``I``/``O``; typed tags for i2b2-2012): read by :mod:`.ner`, no synonyms
==========  ============================================================================================
"""

from __future__ import annotations

from biotune.data.tasks.matching import label_key

#: Canonical label (spelled as the source spec names it) -> other names of it, read wherever they appear in an
#: answer (whole answer, a list item, or prose).
LABEL_SYNONYMS: dict[str, tuple[str, ...]] = {
    # i2b2-2010 relations: the relation names of the i2b2/VA 2010 annotation guidelines, as Llama2-MedTuned's
    # instructions list them ("Treatment improves medical problem (TrIP)"); the abbreviations are the labels.
    "TrIP": ("Treatment improves medical problem",),
    "TrWP": ("Treatment worsens medical problem",),
    "TrCP": ("Treatment causes medical problem",),
    "TrAP": ("Treatment is administered for medical problem",),
    "TrNAP": ("Treatment is not administered because of medical problem",),
    "TeRP": ("Test reveals medical problem",),
    "TeCP": ("Test conducted to investigate medical problem",),
    "PIP": ("Medical problem indicates medical problem",),
    # MedNLI: verb forms of the labels (the paper writes the labels capitalised, which case-folding covers).
    "entailment": ("entails", "entailed", "entail"),
    "contradiction": ("contradicts", "contradictory", "contradicted", "contradict"),
    # HoC hallmarks (BLURB's names are the labels): Llama2-MedTuned's names and their '&'/'and' variants.
    "activating invasion and metastasis": ("Activating invasion & metastasis",),  # Llama2-MedTuned
    "avoiding immune destruction": (),  # Llama2-MedTuned: "Avoiding immune destruction" (same name)
    "cellular energetics": ("Deregulating cellular energetics",),  # Llama2-MedTuned; Hanahan & Weinberg 2011
    "enabling replicative immortality": (),  # Llama2-MedTuned: same name
    "evading growth suppressors": (),  # Llama2-MedTuned: same name
    "genomic instability and mutation": (
        "Genome instability & mutation",  # Llama2-MedTuned
        "Genome instability and mutation",  # Hanahan & Weinberg 2011
        "Genomic instability & mutation",
    ),
    "inducing angiogenesis": (),  # Llama2-MedTuned: same name
    "resisting cell death": (),  # Llama2-MedTuned: same name
    "sustaining proliferative signaling": ("Sustaining proliferative signalling",),  # British spelling
    "tumor promoting inflammation": (
        "Tumor-promoting inflammation",  # Llama2-MedTuned (equal to the label up to punctuation)
        "Tumour-promoting inflammation",  # British spelling
    ),
}

#: HoC label -> its standard abbreviation (Baker et al. 2016's HoC corpus; Llama2-MedTuned writes
#: ``Name (XX)``). Read only where an abbreviation is unambiguous: a whole list item (``IM, GI``) or a
#: parenthesised tag closing an item (``... (IM)``), never from prose, where ``A``, ``ID`` or ``CD`` are
#: ordinary words.
HALLMARK_ABBREVIATIONS: dict[str, str] = {
    "activating invasion and metastasis": "IM",
    "avoiding immune destruction": "ID",
    "cellular energetics": "CE",
    "enabling replicative immortality": "RI",
    "evading growth suppressors": "GS",
    "genomic instability and mutation": "GI",
    "inducing angiogenesis": "A",
    "resisting cell death": "CD",
    "sustaining proliferative signaling": "PS",
    "tumor promoting inflammation": "TPI",
}

#: Phrases read as the negative class of a relation task, whatever the source calls it.
NEGATIVE_SYNONYMS: tuple[str, ...] = (
    "No Relations",  # i2b2-2010 as Llama2-MedTuned writes it
    "No Relation",
    "No relationship",
    "No interaction",
    "No association",
    "none",
    "negative",  # GAD / EU-ADR as Llama2-MedTuned writes it ("Negative")
    "false",  # the i2b2-2010 and ChemProt files' own spelling
    "DDI-false",
    "not related",
    "unrelated",
)

#: Phrases read as the positive class of a binary relation task (one positive label besides the negative:
#: GAD, EU-ADR ``1``, BC5CDR ``CID``).
POSITIVE_SYNONYMS: tuple[str, ...] = (
    "yes",
    "true",
    "positive",  # GAD / EU-ADR as Llama2-MedTuned writes it ("Positive")
    "related",
    "association",
)

#: Phrases read as the negative class of a binary relation task only (GAD, EU-ADR answer yes/no questions); on
#: a multi-class corpus a bare "no" names no relation type, so it stays a parse failure there.
BINARY_NEGATIVE_SYNONYMS: tuple[str, ...] = ("no",)

#: Answers of a multi-label task that mean "no label applies" (Llama2-MedTuned writes ``None``).
NONE_ANSWERS: tuple[str, ...] = (
    "None",
    "no labels",
    "no label",
    "no hallmarks",
    "no entities",
    "no mentions",
)


_SYNONYMS_BY_KEY = {label_key(label): phrases for label, phrases in LABEL_SYNONYMS.items()}


def synonyms_of(label: str) -> tuple[str, ...]:
    """The other names of ``label`` in :data:`LABEL_SYNONYMS`, the label found up to case, spacing and
    punctuation (a source spelling ``Entailment`` gets ``entailment``'s); ``()`` for a label without any."""
    return _SYNONYMS_BY_KEY.get(label_key(label), ())

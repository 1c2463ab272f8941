"""The documents of the PubTator and BioC XML releases (NCBI-disease, BC5CDR): text, mentions and relations.

Both readers (:mod:`.pubtator`, :mod:`.bioc`) yield these, so ``pubtator_ner`` and ``pubtator_cid`` read either
file format of a release.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Mention:
    """One annotated mention: offsets into the document text, its text, type and concept ids."""

    start: int
    end: int
    text: str
    type: str
    ids: tuple[str, ...]


@dataclass
class Document:
    """One PubTator document."""

    pmid: str
    title: str
    abstract: str
    line: int
    mentions: list[Mention] = field(default_factory=list)
    relations: list[tuple[str, str, str]] = field(default_factory=list)

    @property
    def text(self) -> str:
        """The text the offsets refer to: title, one space, abstract."""
        return f"{self.title} {self.abstract}"

"""Reading free text against what a task expects: text normalisation, label matching, line-token alignment.

Used by the parsers of every task family. A whole answer is compared with a label name up to case, spacing and
punctuation (:func:`label_key`); token and mention texts up to case and whitespace (:func:`squash`).
:class:`LabelMatcher` finds label names and their synonyms in prose, :func:`read_label` applies the reading
order of single-label answers, and :func:`align` pairs the lines of an NER completion with the sentence's
tokens by position.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence

from biotune.data.tasks.base import ParseResult


def squash(text: str) -> str:
    """Case-folded text without any whitespace: how token and mention texts are compared."""
    return "".join(unicodedata.normalize("NFKC", text).split()).casefold()


def label_key(text: str) -> str:
    """Case-folded alphanumerics only: how a whole answer is compared with a label name."""
    return re.sub(r"[^0-9a-z]+", "", unicodedata.normalize("NFKC", text).casefold())


def phrase_pattern(phrase: str) -> str:
    """A regex for ``phrase`` as whole words, any run of non-alphanumerics between its words."""
    words = re.findall(r"[0-9a-z]+", phrase.casefold())
    return r"(?<![0-9a-z])" + r"[\W_]*".join(map(re.escape, words)) + r"(?![0-9a-z])"


def label_phrases(labels: Sequence[str], synonyms: dict[str, Sequence[str]]) -> dict[str, str]:
    """Accepted phrase -> label for a :class:`LabelMatcher`: each label's name, then its ``synonyms``.

    A label name always means that label, so a synonym equal to a name (up to :func:`label_key`) is not taken;
    a synonym that two labels claim is ambiguous and taken for neither.
    """
    label_keys = {label_key(label) for label in labels}
    owners: dict[str, set[str]] = {}
    for label, phrases in synonyms.items():
        for phrase in phrases:
            owners.setdefault(label_key(phrase), set()).add(label)
    out = {label: label for label in labels}
    for label, phrases in synonyms.items():
        for phrase in phrases:
            key = label_key(phrase)
            if key and key not in label_keys and len(owners[key]) == 1:
                out.setdefault(phrase, label)
    return out


_CLAUSE_END = re.compile(r"\s*(?:$|[\n.,;:!?)\]])")


class LabelMatcher:
    """Finds label names (and their synonyms) in free text: exact answers first, then a scan of the text."""

    def __init__(self, phrases: dict[str, str]) -> None:
        """``phrases`` maps each accepted phrase to its canonical label."""
        self._by_key = {label_key(p): label for p, label in phrases.items() if label_key(p)}
        ordered = sorted(self._by_key, key=len, reverse=True)  # longest phrase wins at a position
        self._canon = [self._by_key[k] for k in ordered]
        patterns = [phrase_pattern(p) for p in _keys_to_phrases(phrases, ordered)]
        self._scan = re.compile("|".join(f"({p})" for p in patterns), re.IGNORECASE)

    def exact(self, text: str) -> str | None:
        """The label whose name (or synonym) is the whole of ``text`` up to case, spaces and punctuation."""
        return self._by_key.get(label_key(text))

    def at_start(self, text: str) -> str | None:
        """The label that ``text`` starts with as a clause of its own (``"Yes. Because ..."``, ``"No, ..."``)."""
        text = text.strip()
        m = self._scan.match(text)
        if m is None or not m.lastindex or not _CLAUSE_END.match(text, m.end()):
            return None
        return self._canon[m.lastindex - 1]

    def find_all(self, text: str) -> list[str]:
        """Labels mentioned anywhere in ``text``, in order of appearance (longest phrase wins at a position)."""
        return [self._canon[m.lastindex - 1] for m in self._scan.finditer(text) if m.lastindex]


def _keys_to_phrases(phrases: dict[str, str], keys: list[str]) -> list[str]:
    first: dict[str, str] = {}
    for p in phrases:
        first.setdefault(label_key(p), p)
    return [first[k] for k in keys]


def read_label(matcher: LabelMatcher, completion: str, fallback: str) -> ParseResult:
    """One label out of a completion: exact answer, first line, leading label, or a single label in prose."""
    lines = [ln for ln in completion.splitlines() if ln.strip()]
    for candidate in (completion, lines[0] if lines else ""):
        label = matcher.exact(candidate)
        if label is not None:
            return ParseResult(label, True)
    label = matcher.at_start(completion)
    if label is not None:
        return ParseResult(label, True)
    found = list(dict.fromkeys(matcher.find_all(completion)))
    if len(found) == 1:
        return ParseResult(found[0], True)
    if found:
        return ParseResult(
            found[0], False, f"several labels in the answer ({', '.join(found)}); took the first"
        )
    return ParseResult(fallback, False, f"no label found in {clip(completion)}")


def clip(text: str, n: int = 80) -> str:
    """``text`` on one line, cut to ``n`` characters, quoted: for error messages."""
    text = " ".join(text.split())
    return repr(text if len(text) <= n else text[: n - 3] + "...")


def first_few(items: Iterable[str], n: int = 5) -> str:
    """The first ``n`` items joined by ``, `` and how many more there are: for error messages."""
    items = list(items)
    return ", ".join(items[:n]) + (f", ... (+{len(items) - n})" if len(items) > n else "")


def align(lines: Sequence[str], tokens: Sequence[str]) -> list[tuple[int | None, bool]]:
    """Pair completion lines with sentence tokens by position.

    Returns, for each token, ``(index of its line or None, whether the texts match)``. The pairing is a minimum
    edit-distance alignment over normalised texts (a skipped line or token costs 1, a line paired with a token of
    different text costs 1), so it keeps order, tolerates missing and extra lines, and gives repeated tokens their
    own lines. Ties prefer pairing, then treating the line as extra.
    """
    a = [squash(s) for s in lines]
    b = [squash(s) for s in tokens]
    if a == b:
        return [(i, True) for i in range(len(b))]
    n, m = len(a), len(b)
    cost = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n + 1):
        cost[i][0] = i
    for j in range(m + 1):
        cost[0][j] = j
    for i in range(1, n + 1):
        row, prev = cost[i], cost[i - 1]
        for j in range(1, m + 1):
            row[j] = min(prev[j - 1] + (a[i - 1] != b[j - 1]), prev[j] + 1, row[j - 1] + 1)
    pairs: list[tuple[int | None, bool]] = [(None, False)] * m
    i, j = n, m
    while i > 0 and j > 0:
        same = a[i - 1] == b[j - 1]
        if cost[i][j] == cost[i - 1][j - 1] + (not same):
            pairs[j - 1] = (i - 1, same)
            i, j = i - 1, j - 1
        elif cost[i][j] == cost[i - 1][j] + 1:
            i -= 1
        else:
            j -= 1
    return pairs

"""The built-dataset contract: what ``biotune data build`` writes and every reader of a built dataset relies on.

A built dataset is a directory holding ``manifest.json`` and one ``datasets`` ``save_to_disk`` directory per
split (``train/``, and ``eval/`` when ``data.eval_fraction`` holds rows out). Each row is a packed row with the
columns :data:`ROW_COLUMNS`. The manifest is the typed :class:`Manifest`: training, tracking, the CLI, the sweep
runner, benchmarks and test fixtures read and write it only through this type.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from biotune.errors import DataError
from biotune.io import atomic_write_json, read_json

MANIFEST_FILE = "manifest.json"
TRAIN_SPLIT = "train"
EVAL_SPLIT = "eval"
#: Columns of a packed row: token columns, positions restarting per sample, per-sample lengths and ids, counts.
ROW_COLUMNS = (
    "input_ids",
    "labels",
    "position_ids",
    "seq_lens",
    "sample_ids",
    "num_tokens",
    "num_loss_tokens",
)

_REBUILD = (
    "rebuild it with `biotune data build CONFIG` (a dataset directory is what that command prints last)"
)


@dataclass
class SourceEntry:
    """One source of the mixture: requested vs realised size, tokens, and its licence."""

    task: str = ""
    group: str = ""
    available: int = 0
    requested: int = 0
    realised: int = 0
    """Samples composed into the mixture (repeats included)."""
    kept_after_tokenize: int = 0
    """Samples left after over-long ones were dropped."""
    weight: float = 1.0
    epochs: float = 1.0
    cap: int | None = None
    included: bool = True
    licence: str = "unknown"
    restricted: bool = True
    """Restricted sources never have their text uploaded (``tracking.log_dataset_text``)."""
    credentialed: bool = False
    paper_count: int | None = None
    tokens: dict[str, Any] = field(default_factory=dict)
    """Token-length statistics of the kept samples: count, total, mean, p50/p90/p99, max, histogram."""
    source: str = ""


@dataclass
class Manifest:
    """Everything a built dataset records about how it was made (``manifest.json``)."""

    cache_key: str = ""
    content_hash: str = ""
    tokenizer: str = ""
    tokenizer_fingerprint: str = ""
    template: str = ""
    ner_format: str = ""
    max_seq_len: int = 0
    biotune_version: str = ""
    build_version: int = 0
    split_hashes: dict[str, str] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    truncation: dict[str, Any] = field(default_factory=dict)
    sources: dict[str, SourceEntry] = field(default_factory=dict)
    tasks: dict[str, dict[str, int]] = field(default_factory=dict)
    totals: dict[str, int] = field(default_factory=dict)
    length_stats: dict[str, Any] = field(default_factory=dict)
    packing: dict[str, Any] = field(default_factory=dict)
    heldout: dict[str, int] | None = None
    leakage: dict[str, Any] | None = None
    restricted_sources: list[str] = field(default_factory=list)
    repairs: dict[str, int] = field(default_factory=dict)
    """What the readers repaired or skipped on purpose, per ``"<source>/<split>: <counter>"`` (e.g. ``iob_repairs``:
    CoNLL ``I-`` tags that did not continue a mention, read as ``B-``); see ``biotune.sources.reader_counts``."""
    warnings: list[str] = field(default_factory=list)
    """What the build warned about: each source that lost more than 10% of its samples to ``data.truncation``
    (``biotune.data.mixture.DROP_WARN_FRACTION``)."""

    # ----------------------------------------------------------------------------------------- io

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return dataclasses.asdict(self)

    def write(self, directory: str | Path) -> Path:
        """Write ``manifest.json`` into ``directory`` (atomically)."""
        path = Path(directory) / MANIFEST_FILE
        atomic_write_json(path, self.to_dict(), indent=2)
        return path

    @classmethod
    def read(cls, directory: str | Path) -> Manifest:
        """The manifest of a built dataset; a missing, corrupt or foreign manifest is a DataError naming it."""
        path = Path(directory) / MANIFEST_FILE
        if not path.is_file():
            raise DataError(path, "not a built biotune dataset (no manifest.json)", _REBUILD)
        raw = read_json(path, _REBUILD)
        if not isinstance(raw, dict):
            raise DataError(path, "the manifest is not a JSON object", _REBUILD)
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(raw) - names)
        if unknown or "tokenizer_fingerprint" not in raw:
            raise DataError(
                path,
                f"not a biotune manifest (unexpected keys {unknown[:5]} or no tokenizer_fingerprint)",
                _REBUILD,
            )
        entry_names = {f.name for f in dataclasses.fields(SourceEntry)}
        try:
            sources = {
                name: SourceEntry(**{k: v for k, v in entry.items() if k in entry_names})
                for name, entry in (raw.get("sources") or {}).items()
            }
        except (AttributeError, TypeError) as err:
            raise DataError(path, f"malformed 'sources' ({err})", _REBUILD) from None
        return cls(**{**raw, "sources": sources})

    # ----------------------------------------------------------------------------------------- queries

    def check_tokenizer(self, fingerprint: str, directory: str | Path) -> None:
        """DataError when the rows were tokenized by another tokenizer than the model's."""
        if self.tokenizer_fingerprint != fingerprint:
            raise DataError(
                Path(directory) / MANIFEST_FILE,
                f"shards were built with tokenizer {self.tokenizer_fingerprint}, but the model's "
                f"tokenizer is {fingerprint}",
                "rebuild the data with this tokenizer (`biotune data build` with the same model/"
                "data.tokenizer), or point model.name_or_path at the model the data was built for",
            )

    def unrestricted_sources(self) -> set[str]:
        """Sources whose text may be uploaded: those the manifest lists as not restricted."""
        return {name for name, entry in self.sources.items() if not entry.restricted}

    def summary(self) -> dict[str, Any]:
        """The few numbers a tracker logs in its run config."""
        return {
            "cache_key": self.cache_key,
            "content_hash": self.content_hash,
            "template": self.template,
            "tokenizer_fingerprint": self.tokenizer_fingerprint,
            "totals": dict(self.totals),
            "sources": {name: e.realised for name, e in self.sources.items()},
        }

    def format_stats(self) -> str:
        """The composition table (requested vs realised per source and task) and the token-length histogram."""
        lines = [
            f"dataset {self.cache_key}  template={self.template}  ner_format={self.ner_format}  "
            f"max_seq_len={self.max_seq_len}  tokenizer={self.tokenizer}",
            "",
        ]
        head = (
            f"{'source':<24} {'task':<12} {'avail':>8} {'request':>8} {'realised':>8} {'kept':>8} "
            f"{'mean tok':>8}  licence"
        )
        lines += [head, "-" * len(head)]
        for name, s in sorted(self.sources.items()):
            flag = " (restricted)" if s.restricted else ""
            lines.append(
                f"{name:<24} {s.group:<12} {s.available:>8} {s.requested:>8} {s.realised:>8} "
                f"{s.kept_after_tokenize:>8} {s.tokens.get('mean', 0):>8}  {s.licence}{flag}"
            )
        lines += ["", f"{'task group':<24} {'requested':>10} {'realised':>10}"]
        lines += [f"{g:<24} {t['requested']:>10} {t['realised']:>10}" for g, t in sorted(self.tasks.items())]
        t, p, tr = self.totals, self.packing, self.truncation
        lines += [
            "",
            f"samples kept {t.get('samples_kept')} of {t.get('samples_mixed')} (dropped {tr.get('dropped')}, "
            f"truncated {tr.get('truncated')}, policy {tr.get('policy')}); tokens {t.get('tokens')} "
            f"({t.get('loss_tokens')} with loss)",
            f"packed rows {p.get('rows')}  efficiency {p.get('efficiency', 0):.4f}  sequences/row "
            f"{p.get('mean_seqs_per_row')}",
        ]
        if self.leakage:
            lines.append(
                f"leakage: {self.leakage['total_exact']} exact / {self.leakage['total_normalised']} "
                "normalised overlaps with eval splits"
            )
        lines += [f"warning: {w}" for w in self.warnings]
        if self.repairs:
            lines.append("repairs: " + ", ".join(f"{k} x{n}" for k, n in sorted(self.repairs.items())))
        hist = self.length_stats.get("histogram", {})
        if hist:
            top = max(hist.values()) or 1
            lines += ["", "token lengths per sample:"]
            lines += [
                f"  {rng:>11} {n:>8} {'#' * round(40 * n / top)}"
                for rng, n in hist.items()
                if n or rng.startswith("0")
            ]
        return "\n".join(lines)

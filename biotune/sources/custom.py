"""Sources declared in a config (``data.custom_sources.NAME``): validation and their :class:`SourceSpec`.

A declared source names a built-in reader (``format``), its task ``kind`` (which must be the kind that reader
yields, :data:`biotune.sources.formats.FORMAT_KINDS`), a file per split (absolute, or relative to ``data.root``),
its labels and its licence. :func:`spec_of` turns it into the same :class:`SourceSpec` the registry holds, so
the build, the leakage check, evaluation, reports and sweeps treat it like a built-in source; its spec's
``config_key`` points error messages at the declaration. Label problems inside the files are found by the
readers (each label is checked against ``labels``, with the file and line).

:func:`problems` reports every bad declaration at config load (one :class:`~biotune.errors.Problem` each).
"""

from __future__ import annotations

from typing import Any

from biotune.errors import Problem
from biotune.sources.formats import FORMAT_KINDS
from biotune.sources.registry import SOURCES
from biotune.sources.spec import KINDS, SourceSpec

PREFIX = "data.custom_sources"


def spec_of(name: str, declared: Any) -> SourceSpec:
    """The :class:`SourceSpec` of a declared source (``declared`` is a ``biotune.config.CustomSource``)."""
    labels = tuple(declared.labels)
    licence = declared.licence or "not declared"
    return SourceSpec(
        name=name,
        kind=declared.kind,
        format=declared.format,
        splits=dict(declared.files),
        labels=labels,
        licence=licence,
        restricted=bool(declared.restricted),
        credentialed=False,
        description=declared.description or f"declared in the config ({PREFIX}.{name})",
        negative_label=declared.negative_label,
        entity_type=declared.entity_type,
        config_key=f"{PREFIX}.{name}",
    )


def problems(custom: dict[str, Any]) -> list[Problem]:
    """Every problem of the ``data.custom_sources`` declarations (empty: all valid)."""
    out: list[Problem] = []
    for name, d in custom.items():
        key = f"{PREFIX}.{name}"
        if name in SOURCES:
            out.append(
                Problem(
                    key,
                    f"'{name}' is a built-in source",
                    "give your source another name (e.g. my_" + name + ")",
                )
            )
        if d.kind not in KINDS:
            out.append(Problem(f"{key}.kind", f"unknown kind {d.kind!r}", f"use one of {', '.join(KINDS)}"))
        if d.format not in FORMAT_KINDS:
            out.append(
                Problem(
                    f"{key}.format", f"unknown format {d.format!r}", f"use one of {', '.join(FORMAT_KINDS)}"
                )
            )
        elif d.kind in KINDS and FORMAT_KINDS[d.format] != d.kind:
            fitting = [f for f, k in FORMAT_KINDS.items() if k == d.kind]
            out.append(
                Problem(
                    f"{key}.format",
                    f"format {d.format!r} holds {FORMAT_KINDS[d.format]} records, not {d.kind}",
                    f"for kind {d.kind} use one of {', '.join(fitting)}",
                )
            )
        if not d.files:
            out.append(
                Problem(
                    f"{key}.files",
                    "no files",
                    "map each split to its file, e.g. files: {train: ..., test: ...}",
                )
            )
        for split, path in d.files.items():
            if not str(path).strip():
                out.append(Problem(f"{key}.files.{split}", "empty path", "give the file's path"))
        if not d.labels:
            out.append(Problem(f"{key}.labels", "no labels", "list the labels (NER: the entity types)"))
        if len(set(d.labels)) != len(d.labels):
            out.append(Problem(f"{key}.labels", "a label is listed twice", "list each label once"))
        if d.negative_label is not None:
            if d.kind != "re":
                out.append(Problem(f"{key}.negative_label", "only relation sources have one", "remove it"))
            elif d.negative_label not in d.labels:
                out.append(
                    Problem(
                        f"{key}.negative_label", f"{d.negative_label!r} is not in labels", "add it to labels"
                    )
                )
        if d.entity_type is not None:
            if d.kind != "ner":
                out.append(Problem(f"{key}.entity_type", "only NER sources have one", "remove it"))
            elif d.entity_type not in d.labels:
                out.append(
                    Problem(f"{key}.entity_type", f"{d.entity_type!r} is not in labels", "add it to labels")
                )
        if not d.restricted and not d.licence.strip():
            out.append(
                Problem(
                    f"{key}.restricted",
                    "restricted: false without a licence",
                    f"declare {key}.licence (what allows sharing it), or keep restricted: true",
                )
            )
    return out

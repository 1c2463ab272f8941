"""Schema checks shared by every YAML biotune reads: the run config (``biotune.config``) and sweep files.

Each check appends a :class:`~biotune.errors.Problem` naming the key and its fix, and never stops at the first,
so that ``load`` reports every problem at once:

* :func:`read_yaml`: a YAML file with its ``defaults:`` files merged first (a syntax error names file:line);
* :func:`parse_overrides`: ``key.sub=value`` strings, each parsed on its own;
* :func:`check_keys` (unknown keys with a did-you-mean, renamed keys), :func:`check_items` (containers where a
  plain value belongs), :func:`check_types` (values of the wrong type), :func:`drop_unknown`;
* :func:`parse_section`: a plain mapping as an instance of one dataclass section, through the three checks;
* :func:`check_choice`, :func:`check_positive`: the value checks that ``validate`` and sweep files share.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from biotune.errors import ConfigError, Problem


def _is_dataclass_type(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def _unwrap_optional(tp: Any) -> Any:
    if get_origin(tp) in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return tp


#: Keys of earlier versions -> how to write them now.
RENAMED = {
    "data.instruction_files": "write each file as data.instructions.NAME: {path: FILE, licence: ..., restricted: "
    "true|false} (an undeclared licence counts as restricted)",
}


def check_keys(schema: type, data: Any, prefix: str, problems: list[Problem]) -> None:
    """Recursively report keys in ``data`` that the dataclass ``schema`` does not have."""
    if not isinstance(data, dict):
        return
    hints = get_type_hints(schema)
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if dotted in RENAMED:
            problems.append(Problem(dotted, "this key was replaced", RENAMED[dotted]))
            continue
        if key not in hints:
            close = difflib.get_close_matches(str(key), list(hints), n=1)
            fix = (
                f"did you mean '{prefix}{close[0]}'?"
                if close
                else f"remove it; valid keys: {', '.join(hints)}"
            )
            problems.append(Problem(dotted, "unknown key", fix))
            continue
        tp = _unwrap_optional(hints[key])
        if _is_dataclass_type(tp):
            if value is not None and not isinstance(value, dict):
                problems.append(
                    Problem(dotted, f"expected a mapping, got {value!r}", f"give {dotted} sub-keys")
                )
            else:
                check_keys(tp, value, dotted + ".", problems)
        elif get_origin(tp) is dict:
            val_tp = get_args(tp)[1]
            if _is_dataclass_type(val_tp) and isinstance(value, dict):
                for sub, subval in value.items():
                    if subval is not None and not isinstance(subval, dict):
                        problems.append(
                            Problem(
                                f"{dotted}.{sub}",
                                f"expected a mapping, got {subval!r}",
                                f"write {dotted}.{sub}: {{weight: 1.0}} or similar",
                            )
                        )
                    else:
                        check_keys(val_tp, subval or {}, f"{dotted}.{sub}.", problems)


_SCALARS = (str, int, float, bool)


def check_items(schema: type, data: Any, prefix: str, problems: list[Problem]) -> None:
    """Report each list or mapping of plain values (``tracking.tags``, ``eval.sources``, ``source_map``, ...) that
    holds a list or a mapping where a value belongs (``tracking.tags=[[a]]``); the bad container is removed from
    ``data`` so that the rest can still be checked."""
    if not isinstance(data, dict):
        return
    hints = get_type_hints(schema)
    for key, value in list(data.items()):
        if key not in hints:
            continue
        dotted, tp = f"{prefix}{key}", _unwrap_optional(hints[key])
        if _is_dataclass_type(tp):
            check_items(tp, value, dotted + ".", problems)
            continue
        origin, args = get_origin(tp), get_args(tp)
        if origin is dict and args and _is_dataclass_type(args[1]) and isinstance(value, dict):
            for sub, subval in value.items():
                check_items(args[1], subval, f"{dotted}.{sub}.", problems)
            continue
        items = (
            list(enumerate(value))
            if origin is list and isinstance(value, list)
            else list(value.items())
            if origin is dict and isinstance(value, dict) and args and args[1] in _SCALARS
            else []
        )
        for index, item in items:
            if isinstance(item, list | dict):
                where = f"{dotted}[{index}]" if origin is list else f"{dotted}.{index}"
                kind = "a list" if isinstance(item, list) else "a mapping"
                problems.append(
                    Problem(
                        where,
                        f"expected a plain value, got {kind}: {item!r}"[:200],
                        f"write {dotted} as {'a flat list, e.g. [a, b]' if origin is list else 'key: value pairs'}",
                    )
                )
                del data[key]
                break


def _section_schema(schema_cfg: DictConfig, key: str) -> DictConfig | None:
    """The schema of ``key`` when it is a section, also an optional one that is null by default (``train.lora``)."""
    if not isinstance(schema_cfg, DictConfig) or key not in schema_cfg:
        return None
    node = schema_cfg._get_node(key)
    if not isinstance(node, DictConfig):
        return None
    ref = node._metadata.ref_type
    return OmegaConf.structured(ref) if node._is_none() and _is_dataclass_type(ref) else node


def check_types(schema_cfg: DictConfig, data: Any, prefix: str, problems: list[Problem]) -> None:
    """Report each leaf whose value cannot be merged into the structured schema (a wrong type).

    Bad leaves are removed from ``data`` so that the remaining keys can still be validated together.
    """
    if not isinstance(data, dict):
        return
    for key, value in list(data.items()):
        dotted = f"{prefix}{key}"
        section = _section_schema(schema_cfg, key)
        if isinstance(value, dict):
            if section is not None:
                check_types(section, value, dotted + ".", problems)
            continue
        if section is not None and value is not None:  # reported by check_keys ("expected a mapping")
            del data[key]
            continue
        probe = OmegaConf.structured(schema_cfg) if not isinstance(schema_cfg, DictConfig) else schema_cfg
        try:
            OmegaConf.merge(probe, {key: value})
        except OmegaConfBaseException as err:
            if key not in probe:  # unknown keys are reported by check_keys; dict-of-dataclass is open
                continue
            expected = OmegaConf.get_type(probe, key)
            msg = str(err).splitlines()[0]
            problems.append(
                Problem(
                    dotted,
                    f"wrong type: {msg}",
                    f"give a value of type {getattr(expected, '__name__', expected)}",
                )
            )
            del data[key]


def read_yaml(path: Path, seen: tuple[Path, ...] = (), included_by: Path | None = None) -> dict[str, Any]:
    """Read a YAML file, merging the files it lists under ``defaults:`` (relative to it) first.

    ``defaults`` is a list of paths or one path. A missing or broken included file is reported against the file
    that includes it (``included_by``), so the user knows which ``defaults:`` line to fix.
    """
    if not path.is_file():
        if included_by is not None:
            raise ConfigError(
                [
                    Problem(
                        "defaults",
                        f"included file {path} does not exist",
                        f"fix the path under defaults: in {included_by} (paths there are relative "
                        "to that file)",
                    )
                ],
                included_by,
            )
        what = "is a directory, not a YAML file" if path.is_dir() else "does not exist"
        raise ConfigError(
            [
                Problem(
                    "<file>",
                    f"config file {path} {what}",
                    "pass the path of a YAML file, e.g. configs/train/demo.yaml",
                )
            ]
        )
    if path in seen:
        raise ConfigError([Problem("defaults", f"{path} includes itself", "remove the cycle")], path)
    try:
        raw = OmegaConf.load(path)
    except UnicodeDecodeError as err:
        raise ConfigError(
            [
                Problem(
                    "<file>", f"not UTF-8 text ({err.reason} at byte {err.start})", "save the config as UTF-8"
                )
            ],
            path,
        ) from None
    except Exception as err:  # yaml.YAMLError carries the line in its message; OmegaConf: duplicate keys
        what = " ".join(str(err).split())
        raise ConfigError(
            [Problem("<yaml>", f"cannot parse: {what}", "fix the YAML syntax at that line")], path
        ) from None
    data = OmegaConf.to_container(raw, resolve=False) or {}
    if not isinstance(data, dict):
        raise ConfigError([Problem("<root>", "the file must hold a mapping", "write key: value pairs")], path)
    includes = data.pop("defaults", None) or []
    if isinstance(includes, str):  # `defaults: base.yaml` means one file, not one file per character
        includes = [includes]
    if not isinstance(includes, list) or not all(isinstance(i, str) and i for i in includes):
        raise ConfigError(
            [
                Problem(
                    "defaults",
                    f"expected a list of YAML paths, got {includes!r}",
                    "write defaults: [../model/tiny.yaml, ../data/sample.yaml]",
                )
            ],
            path,
        )
    merged: DictConfig = OmegaConf.create({})
    for inc in includes:
        included = read_yaml((path.parent / inc).resolve(), (*seen, path), included_by=path)
        try:
            merged = OmegaConf.merge(merged, included)
        except OmegaConfBaseException as err:
            raise ConfigError(
                [
                    Problem(
                        "defaults",
                        f"{inc} cannot be merged: {str(err).splitlines()[0]}",
                        "give each key the same kind of value (mapping, list or scalar) in every "
                        "included file",
                    )
                ],
                path,
            ) from None
    try:
        merged = OmegaConf.merge(merged, data)
    except OmegaConfBaseException as err:
        key = getattr(err, "full_key", None) or "defaults"
        raise ConfigError(
            [
                Problem(
                    str(key),
                    f"cannot be merged over the defaults: {str(err).splitlines()[0]}",
                    "give it the same kind of value (mapping, list or scalar) as the included files do",
                )
            ],
            path,
        ) from None
    return OmegaConf.to_container(merged, resolve=False)  # type: ignore[return-value]


#: Characters YAML reserves at the start of a plain value: ``data.root=@sample`` means the string ``@sample``.
_RESERVED_VALUE_START = ("@", "`")


def parse_overrides(overrides: list[str]) -> tuple[list[tuple[str, dict[str, Any]]], list[Problem]]:
    """``key.sub=value`` strings -> one (key, nested dict) per override, in order, plus their problems.

    The overrides are merged one by one by :func:`load`, so that one bad override is reported by itself.
    """
    problems: list[Problem] = []
    parsed: list[tuple[str, dict[str, Any]]] = []
    for ov in overrides:
        key, _, value = ov.partition("=")
        key = key.strip()
        if not _ or not key or any(not part for part in key.split(".")):
            problems.append(
                Problem(
                    ov,
                    "an override must look like key.sub=value",
                    f"write e.g. train.max_steps=10, not '{ov}'",
                )
            )
            continue
        try:
            if value.startswith(_RESERVED_VALUE_START):
                one = OmegaConf.to_container(OmegaConf.from_dotlist([f"{key}=x"]), resolve=False)
                node = one
                for part in key.split(".")[:-1]:
                    node = node[part]  # type: ignore[index]
                node[key.split(".")[-1]] = value  # type: ignore[index]
            else:
                one = OmegaConf.to_container(OmegaConf.from_dotlist([ov]), resolve=False)
        except Exception as err:  # a YAML scanner error, e.g. an unclosed bracket
            problems.append(
                Problem(
                    key,
                    f"cannot parse the value {value!r}: {str(err).splitlines()[0]}",
                    f"quote it, e.g. {key}='\"{value}\"', or fix its YAML (lists: [a,b])",
                )
            )
            continue
        parsed.append((key, one))  # type: ignore[arg-type]
    return parsed, problems


def drop_unknown(schema: type, data: Any) -> None:
    """Remove keys already reported as unknown, so the rest of the config can still be checked."""
    if not isinstance(data, dict):
        return
    hints = get_type_hints(schema)
    for key in list(data):
        if key not in hints:
            del data[key]
            continue
        tp = _unwrap_optional(hints[key])
        if _is_dataclass_type(tp):
            drop_unknown(tp, data[key])
        elif get_origin(tp) is dict and _is_dataclass_type(get_args(tp)[1]) and isinstance(data[key], dict):
            for sub in data[key].values():
                drop_unknown(get_args(tp)[1], sub)


def check_choice(problems: list[Problem], key: str, value: str, allowed: tuple[str, ...]) -> None:
    """Report ``key`` when its ``value`` is not one of ``allowed``."""
    if value not in allowed:
        problems.append(
            Problem(key, f"'{value}' is not one of {', '.join(allowed)}", f"set {key} to one of {allowed}")
        )


def check_positive(
    problems: list[Problem], key: str, value: float | int | None, allow_zero: bool = False
) -> None:
    """Report ``key`` when its ``value`` is negative (or zero, unless ``allow_zero``); None passes."""
    if value is None:
        return
    if value < 0 or (value == 0 and not allow_zero):
        problems.append(
            Problem(
                key,
                f"must be {'>= 0' if allow_zero else '> 0'}, got {value}",
                f"set {key} to a positive value",
            )
        )


def parse_section(
    schema: type, data: dict[str, Any], prefix: str, problems: list[Problem], keys_of: type | None = None
) -> Any:
    """``data`` as an instance of the dataclass ``schema``; unknown keys and wrong types go to ``problems``.

    Keys are named with ``prefix`` (``"settings."``). ``keys_of``: the dataclass whose keys are valid, when it is
    wider than ``schema``. A value that still cannot be merged is reported too, and the schema's defaults are
    returned, so the caller can go on checking the rest.
    """
    check_keys(keys_of or schema, data, prefix, problems)
    drop_unknown(keys_of or schema, data)
    structured = OmegaConf.structured(schema)
    check_types(structured, data, prefix, problems)
    try:
        return OmegaConf.to_object(OmegaConf.merge(structured, data))
    except OmegaConfBaseException as err:
        key = getattr(err, "full_key", "") or ""
        problems.append(Problem(f"{prefix}{key}".rstrip("."), str(err).splitlines()[0], "correct the value"))
        return schema()

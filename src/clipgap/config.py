"""Typed configuration: dataclasses built from plain dicts (YAML) with precise errors.

``from_dict(Cls, data, where="study.yaml")`` checks unknown keys (suggesting close matches) and
value types against the dataclass annotations; ``apply_overrides`` applies dotted
``key.sub=value`` strings (values parsed as YAML scalars/lists). YAML is read with the safe loader
only: no code execution from config files.

What of a typed config enters an identity (a run's hash, a study's identity) is declared on its
fields, once, as metadata (:data:`NOT_HASHED`, :data:`NEW_SETTING`, :data:`INLINE`), and read by
one function, :func:`identity`; :func:`digest` hashes the result.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import types
import typing
from pathlib import Path
from typing import Any, TypeVar, Union, get_args, get_origin, get_type_hints

import yaml

from clipgap.errors import ConfigError, suggest

T = TypeVar("T")

# Field metadata read by :func:`identity` (and only there).
NOT_HASHED = {"hash": False}
"""Where or how something runs, never what it computes: left out of every identity."""
NEW_SETTING = {"omit_default": True}
"""A setting added after identities were first published: left out while it holds its default,
so existing runs and studies keep their hashes."""
INLINE = {"inline": True}
"""A nested dataclass whose entries enter its parent's identity directly (None: none)."""


def load_yaml(path: str | Path) -> dict:
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file {p} does not exist")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"config file {p} is not valid YAML{where}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {p} must hold a mapping of keys, not {type(data).__name__}")
    return data


def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in get_args(tp))
    if origin is tuple and get_args(tp)[1:] == (Ellipsis,):  # written as a list in YAML
        return f"list[{_type_name(get_args(tp)[0])}]"
    if origin is not None:
        args = ", ".join(_type_name(a) for a in get_args(tp))
        return f"{origin.__name__}[{args}]"
    if tp is type(None):
        return "null"
    return getattr(tp, "__name__", str(tp))


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check ``value`` against type ``tp``; returns the value (ints accepted for floats)."""
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        for arg in get_args(tp):
            try:
                return _coerce(value, arg, key)
            except ConfigError:
                continue
        raise _type_error(key, value, tp)
    if tp is type(None):
        if value is None:
            return None
        raise _type_error(key, value, tp)
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise _type_error(key, value, tp)
        return from_dict(tp, value, where=key)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise _type_error(key, value, tp)
        (item_tp, *_) = get_args(tp) or (Any,)
        return [_coerce(v, item_tp, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise _type_error(key, value, tp)
        _, val_tp = get_args(tp) or (Any, Any)
        return {str(k): _coerce(v, val_tp, f"{key}.{k}") for k, v in value.items()}
    if origin is typing.Literal:
        if value in get_args(tp):
            return value
        raise ConfigError(
            f"{key}: {value!r} is not allowed; choose from {', '.join(map(repr, get_args(tp)))}"
        )
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp is float and isinstance(value, str):
        try:
            return float(value)  # YAML reads 1e-4 as a string
        except ValueError:
            raise _type_error(key, value, tp) from None
    if (
        isinstance(tp, type)
        and isinstance(value, tp)
        and not (tp is int and isinstance(value, bool))
    ):
        return value
    raise _type_error(key, value, tp)


def _type_error(key: str, value: Any, tp: Any) -> ConfigError:
    return ConfigError(f"{key}: expected {_type_name(tp)}, got {type(value).__name__} {value!r}")


def from_dict(cls: type[T], data: dict, *, where: str = "") -> T:
    """Build dataclass ``cls`` from ``data``, naming the offending key on any error."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where or cls.__name__}: expected a mapping, got {type(data).__name__}")
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    kwargs = {}
    for key, value in data.items():
        full = f"{where}.{key}" if where else str(key)
        if key not in fields:
            raise ConfigError(
                f"unknown key {full!r}{suggest(str(key), fields)}; valid keys: {', '.join(fields)}"
            )
        kwargs[key] = _coerce(value, hints[key], full)
    try:
        return cls(**kwargs)
    except ConfigError as exc:
        if where and not str(exc).startswith(where):
            raise ConfigError(f"{where}.{exc}") from None
        raise
    except TypeError as exc:
        raise ConfigError(f"{where or cls.__name__}: {exc}") from None


def to_dict(obj: Any) -> Any:
    """A dataclass (nested) as plain JSON-able data, every field included."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj


def _is_default(f: dataclasses.Field, value: Any) -> bool:
    if f.default is not dataclasses.MISSING:
        return value == f.default
    if f.default_factory is not dataclasses.MISSING:
        return value == f.default_factory()
    return False


def identity(obj: Any) -> Any:
    """``obj`` as it enters a hash: plain JSON-able data (tuples as lists) in field order, read
    from the fields' metadata: :data:`NOT_HASHED` fields are left out, :data:`NEW_SETTING`
    fields while they hold their default, and an :data:`INLINE` dataclass's entries are merged
    into its parent. The one place these rules are applied."""
    if dataclasses.is_dataclass(obj):
        out: dict = {}
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            if f.metadata.get("hash", True) is False:
                continue
            if f.metadata.get("omit_default") and _is_default(f, value):
                continue
            if f.metadata.get("inline"):
                out.update(identity(value) if value is not None else {})
            else:
                out[f.name] = identity(value)
        return out
    if isinstance(obj, (list, tuple)):
        return [identity(v) for v in obj]
    if isinstance(obj, dict):
        return {k: identity(v) for k, v in obj.items()}
    return obj


def digest(*parts: object) -> str:
    """A short stable hash of JSON-serialisable parts (run ids, study identities, caches)."""
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def parse_override(text: str) -> tuple[list[str], Any]:
    """``train.lr=1e-4`` -> (["train", "lr"], 0.0001)."""
    key, eq, raw = text.partition("=")
    if not eq or not key.strip():
        raise ConfigError(f"override {text!r} is not of the form key.sub=value")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    return key.strip().split("."), value


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """Return a copy of ``data`` with dotted overrides applied (validation happens later)."""
    import copy

    out = copy.deepcopy(data)
    for text in overrides:
        path, value = parse_override(text)
        node = out
        for part in path[:-1]:
            nxt = node.get(part)
            if nxt is None:
                nxt = node[part] = {}
            if not isinstance(nxt, dict):
                raise ConfigError(f"override {text!r}: {part!r} is not a mapping")
            node = nxt
        node[path[-1]] = value
    return out

"""Config plumbing: frozen dataclasses built from dicts/YAML, where unknown keys are errors.

Each component defines its own frozen ``@dataclass`` config next to its code (as flux's ``FluxParams``)
and checks its values in ``__post_init__``. This module only turns plain data into those dataclasses.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

from avgen.errors import ConfigError

T = TypeVar("T")


def _suggest(key: str, known: list[str]) -> str:
    close = difflib.get_close_matches(key, known, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """Convert ``value`` to annotation ``tp`` where that is unambiguous (nested dataclasses, tuples)."""
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp) and isinstance(value, dict):
        return from_dict(tp, value, where=where)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        if len(args) == 1:
            return _coerce(value, args[0], where)
        return value
    if origin is tuple and isinstance(value, list | tuple):
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0], f"{where}[{i}]") for i, v in enumerate(value))
        return tuple(value)
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp is tuple and isinstance(value, list):
        return tuple(value)
    return value


def from_dict(cls: type[T], data: dict[str, Any], *, where: str = "config") -> T:
    """Build dataclass ``cls`` from ``data``; an unknown key raises ConfigError naming it.

    ``where`` names the source (file or section) in error messages.
    """
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass")
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping for {cls.__name__}, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for key, value in data.items():
        if key not in fields:
            raise ConfigError(
                f"{where}: unknown key {key!r} for {cls.__name__}{_suggest(key, list(fields))}; "
                f"known keys: {', '.join(sorted(fields))}"
            )
        kwargs[key] = _coerce(value, hints[key], f"{where}.{key}")
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as e:
        if isinstance(e, ConfigError):
            raise
        raise ConfigError(f"{where}: invalid {cls.__name__}: {e}") from e


def to_dict(cfg: Any) -> dict[str, Any]:
    """The inverse of from_dict: plain JSON/YAML-ready data (tuples become lists)."""

    def plain(v: Any) -> Any:
        if dataclasses.is_dataclass(v):
            return {f.name: plain(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, tuple | list):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v

    return plain(cfg)


def parse_override(text: str) -> tuple[list[str], Any]:
    """Parse ``a.b.c=value`` (value read as YAML, so ``1e-4``, ``true``, ``[1, 2]`` work)."""
    import yaml

    if "=" not in text:
        raise ConfigError(f"--set {text!r}: expected key=value, e.g. --set optim.lr=1e-4")
    key, raw = text.split("=", 1)
    if not key:
        raise ConfigError(f"--set {text!r}: empty key")
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError as e:
        raise ConfigError(f"--set {text!r}: value is not valid YAML: {e}") from e
    return key.split("."), value


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Return a copy of ``data`` with each ``key.path=value`` override set."""
    import copy

    out = copy.deepcopy(data)
    for text in overrides:
        path, value = parse_override(text)
        node = out
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {text!r}: {part!r} is not a section")
        node[path[-1]] = value
    return out


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping with safe_load; errors name the file."""
    import yaml

    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: config file not found")
    try:
        data = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{p}: not valid YAML: {e}") from e
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: expected a mapping at the top level, got {type(data).__name__}")
    return data

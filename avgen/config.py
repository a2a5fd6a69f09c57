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


def _kind(tp: Any) -> str:
    """A short name of annotation ``tp`` for error messages."""
    return {int: "a whole number", float: "a number", bool: "true or false", str: "a string"}.get(
        tp, getattr(tp, "__name__", str(tp))
    )


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _got(value: Any) -> str:
    return f"{value!r} ({type(value).__name__})"


def _coerce(value: Any, tp: Any, where: str, widen: bool = True) -> Any:
    """``value`` checked against annotation ``tp`` and converted where that is unambiguous (an int where a
    float is wanted, a list where a tuple is, a mapping where a nested dataclass is).

    A bool is not a number here, though Python counts it as an int; a float is not a whole number, even
    6.0 (a count written as a float is more likely a mistake than a 6). Annotations it does not know
    (``Any``, other classes) pass values through for the dataclass's own checks. ``widen=False`` (items of
    lists and mappings) checks an int against ``float`` without converting it, as before these checks.
    """
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(
                f"{where}: expected a section of {tp.__name__} settings (a mapping), got {_got(value)}"
            )
        return from_dict(tp, value, where=where)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None:
            if type(None) in args:
                return None
            raise ConfigError(f"{where}: must not be null")
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(value, arg, where, widen)
            except ConfigError as e:
                errors.append(e)
        kinds = " or ".join(_kind(a) for a in args if a is not type(None))
        raise ConfigError(f"{where}: expected {kinds}, got {_got(value)}") from errors[0]
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {_got(value)}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            hint = f"; write {int(value)}" if isinstance(value, float) and value.is_integer() else ""
            raise ConfigError(f"{where}: expected a whole number, got {_got(value)}{hint}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            hint = ""
            if isinstance(value, str) and _is_number(value):
                hint = f"; YAML reads {value} as text: write it with a decimal point, e.g. 1.0e-4"
            raise ConfigError(f"{where}: expected a number, got {_got(value)}{hint}")
        return float(value) if widen else value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {_got(value)}")
        return value
    if origin is tuple or tp is tuple:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{where}: expected a list, got {_got(value)}")
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0], f"{where}[{i}]", False) for i, v in enumerate(value))
        if args:
            if len(value) != len(args):
                raise ConfigError(
                    f"{where}: expected a list of {len(args)} values, got {len(value)}: {value!r}"
                )
            return tuple(_coerce(v, a, f"{where}[{i}]", False) for i, (v, a) in enumerate(zip(value, args)))
        return tuple(value)
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {_got(value)}")
        args = typing.get_args(tp)
        if len(args) == 2:
            return {k: _coerce(v, args[1], f"{where}.{k}", False) for k, v in value.items()}
        return value
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
        if isinstance(node.get(path[-1]), dict) and not isinstance(value, dict):
            key = ".".join(path)
            raise ConfigError(
                f"--set {text!r}: {key} is a section of settings, not a value; set one of its keys, "
                f"e.g. --set {key}.{next(iter(node[path[-1]]), 'KEY')}=VALUE"
            )
        node[path[-1]] = value
    return out


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping with safe_load; errors name the file."""
    import yaml

    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: config file not found")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(
            f"{p}: not a YAML text file (byte {e.start} is not UTF-8); give a recipe such as "
            "configs/examples/small_dit_synth.yaml"
        ) from None
    except OSError as e:
        raise ConfigError(f"{p}: cannot be read ({e.strerror})") from e
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{p}: not valid YAML: {e}") from e
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: expected a mapping at the top level, got {type(data).__name__}")
    return data

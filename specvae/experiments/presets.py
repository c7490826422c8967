"""Presets: one code path, four sizes (``smoke``, ``cpu``, ``gpu``, ``paper``; see the presets
table of README.md and ``book/reproducibility.md``).

Each chapter module defines its own ``Sizes`` dataclass and ``PRESETS = {"smoke": Sizes(...), ...}``; it turns a
user's preset name and overrides (papermill parameters, CLI ``-p KEY VALUE``) into a ``Sizes`` once, with
:func:`select_preset`, which checks the name and each override key and converts override values to the type
of the field they replace (``"20000"`` → ``20000`` for an int field, ``1`` → ``1.0`` for a float field), so that
a config hashes the same however the value was typed.

- ``smoke``: CPU, seconds per chapter, tiny data/steps; proves the path works (CI).
- ``cpu``: a laptop run, minutes per chapter, already shows the effect (teaching).
- ``gpu``: what the book reports: one H100, a few minutes per run, several runs side by side.
- ``paper``: the papers' own settings for users with the hardware and data.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any, Mapping, TypeVar

__all__ = ["PRESET_NAMES", "check_preset", "select_preset", "coerce_value"]

#: the four preset names, smallest first
PRESET_NAMES: tuple[str, ...] = ("smoke", "cpu", "gpu", "paper")

T = TypeVar("T")

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def check_preset(name: str) -> str:
    """Return ``name`` when it is one of :data:`PRESET_NAMES`; otherwise raise ``ValueError`` listing them."""
    if not isinstance(name, str) or name not in PRESET_NAMES:
        hint = ""
        if isinstance(name, str) and name.strip().lower() in PRESET_NAMES:
            hint = f" (did you mean {name.strip().lower()!r}?)"
        raise ValueError(f"unknown preset {name!r}{hint}; choose one of {', '.join(PRESET_NAMES)} "
                         "(smoke: seconds on a CPU, cpu: minutes on a laptop, gpu: the book's runs on one H100, "
                         "paper: the papers' own settings)")
    return name


def _parse_scalar(text: str, kind: type, key: str) -> Any:
    stripped = text.strip()
    if kind is bool:
        low = stripped.lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise ValueError(f"override {key}={text!r}: expected a boolean (true/false)")
    if kind is int:
        try:
            return int(stripped)
        except ValueError:
            as_float = float(stripped)  # allow "2e4" for an int field when it is integral
            if as_float.is_integer():
                return int(as_float)
            raise
    if kind is float:
        return float(stripped)
    return text


def coerce_value(key: str, value: Any, current: Any, annotation: Any = None) -> Any:
    """Convert an override ``value`` to the type of the field it replaces (``current`` is the field's value).

    Strings are parsed for bool/int/float fields, ints become floats for float fields, lists become tuples for
    tuple fields, ``"none"``/``"null"`` becomes ``None`` for optional fields. Anything else is returned unchanged.

    Raises:
        ValueError: the value cannot be read as the field's type (the message names the key).
    """
    optional = current is None or _allows_none(annotation)
    if isinstance(value, str) and value.strip().lower() in {"none", "null"} and optional:
        return None
    target = type(current) if current is not None else _scalar_of(annotation)
    if value is None or target is None:
        return value
    try:
        if target is bool:
            if isinstance(value, str):
                return _parse_scalar(value, bool, key)
            if isinstance(value, int) and value in (0, 1):
                return bool(value)
            raise ValueError("expected a boolean")
        if target is int:
            if isinstance(value, str):
                return _parse_scalar(value, int, key)
            if isinstance(value, bool):
                raise ValueError("expected an integer, got a boolean")
            if isinstance(value, float):
                if value.is_integer():
                    return int(value)
                raise ValueError("expected an integer")
            return value
        if target is float:
            if isinstance(value, str):
                return _parse_scalar(value, float, key)
            if isinstance(value, bool):
                raise ValueError("expected a number, got a boolean")
            if isinstance(value, int):
                return float(value)
            return value
        if target is tuple and isinstance(value, list):
            return tuple(value)
    except ValueError as err:
        raise ValueError(f"override {key}={value!r} cannot be read as {target.__name__} ({err})") from None
    return value


def _allows_none(annotation: Any) -> bool:
    return annotation is not None and type(None) in typing.get_args(annotation)


def _scalar_of(annotation: Any) -> type | None:
    if annotation is None:
        return None
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if len(args) == 1 and args[0] in (bool, int, float, str):
        return args[0]
    return annotation if annotation in (bool, int, float, str) else None


def select_preset(presets: Mapping[str, T], name: str, **overrides: Any) -> T:
    """The preset ``name`` from a chapter's ``presets`` dict, with ``overrides`` applied by ``dataclasses.replace``.

    Args:
        presets: ``{"smoke": Sizes(...), "cpu": ..., "gpu": ..., "paper": ...}`` (dataclass instances).
        name: one of :data:`PRESET_NAMES` (checked with :func:`check_preset`).
        **overrides: field values to change; each key must be a field of the preset's dataclass, each value is
            converted to that field's type (see :func:`coerce_value`).

    Raises:
        ValueError: unknown preset name, a preset missing from ``presets``, unknown override keys (the message
            lists the valid ones), or an override value of the wrong type.
    """
    check_preset(name)
    if name not in presets:
        raise ValueError(f"preset {name!r} is not defined here; defined: {', '.join(presets)}")
    base = presets[name]
    if not dataclasses.is_dataclass(base) or isinstance(base, type):
        raise TypeError(f"presets[{name!r}] must be a dataclass instance, got {type(base).__name__}")
    if not overrides:
        return base
    fields = {f.name: f for f in dataclasses.fields(base)}
    unknown = sorted(set(overrides) - set(fields))
    if unknown:
        raise ValueError(f"unknown override(s) {', '.join(unknown)} for {type(base).__name__}; valid keys: "
                         f"{', '.join(fields)}")
    try:
        hints = typing.get_type_hints(type(base))
    except Exception:  # noqa: BLE001 - annotations that cannot be resolved: fall back to the current values
        hints = {}
    converted = {key: coerce_value(key, value, getattr(base, key), hints.get(key)) for key, value in overrides.items()}
    return dataclasses.replace(base, **converted)

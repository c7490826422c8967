"""Stable hashes of run configs: the key under which a run's results are stored.

A run config is a dataclass. :func:`canonical_config` turns it into plain JSON data with the class name
included (``{"__type__": "RunConfig", "lr": 0.0001, ...}``), nested dataclasses and enums included, tuples as
lists; :func:`config_hash` is the first 16 hex digits of the SHA-256 of that JSON written with sorted keys and no
spaces. The hash is the same in every process and on every machine (no ``hash()``, no ``PYTHONHASHSEED``
dependence, floats written by ``repr``, which round-trips exactly), and it changes when any field value, the
set of fields or the class name changes, so a changed config never finds an old result.

A field can be kept out of the hash with ``dataclasses.field(..., metadata={"hash": False})`` (e.g. a number of
worker processes that does not change the result). A field added to a config *after* results were stored can be
declared with ``metadata={"hash": "nondefault"}``: it enters the hash only when its value differs from its default,
so the runs stored before it existed (which all ran with the default's behaviour) keep their keys, and a run with
another value gets a new one. Use it only when the default reproduces the old behaviour exactly. Unsupported values (functions, modules, tensors, paths, sets)
raise :class:`ConfigHashError` naming the field: keep such things out of run configs.

``int`` and ``float`` are distinct (``1`` and ``1.0`` hash differently): turn user strings into typed configs with
:func:`specvae.experiments.select_preset`, which converts overrides to each field's type.

Ref: the practice of keying stored results by a hash of the full config (CONTRIBUTING.md: every result in the book
is stored under ``book/results/``; ``specvae.experiments.store`` keys each file by this hash).
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
import math
from typing import Any

__all__ = ["canonical_config", "canonical_json", "config_hash", "ConfigHashError", "HASH_LENGTH"]

#: number of hex digits of the SHA-256 kept in :func:`config_hash` (64 bits)
HASH_LENGTH = 16


class ConfigHashError(TypeError):
    """A config holds a value that cannot be hashed stably (the message names the field)."""


def _canon(value: Any, where: str) -> Any:
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, enum.Enum):
        return {"__enum__": type(value).__qualname__, "value": _canon(value.value, where)}
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if math.isfinite(value):
            return float(value)
        return {"__float__": repr(value)}  # nan / inf / -inf: JSON has no literal for them
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out: dict[str, Any] = {"__type__": type(value).__qualname__}
        for f in dataclasses.fields(value):
            rule = f.metadata.get("hash", True)
            if rule is False:
                continue
            item = getattr(value, f.name)
            if rule == "nondefault":
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                    raise ConfigHashError(f"{where}.{f.name} is hashed 'nondefault' but has no default")
                default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
                if item == default:
                    continue
            elif rule is not True:
                raise ConfigHashError(f"{where}.{f.name}: metadata 'hash' must be True, False or 'nondefault', "
                                      f"got {rule!r}")
            out[f.name] = _canon(item, f"{where}.{f.name}")
        return out
    if isinstance(value, (list, tuple)):
        return [_canon(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise ConfigHashError(f"{where} is a dict with a non-string key {key!r}; use string keys")
            out[key] = _canon(item, f"{where}[{key!r}]")
        return out
    # NumPy scalars and torch dtypes without importing either library
    module = type(value).__module__
    if module == "numpy" and hasattr(value, "item"):
        return _canon(value.item(), where)
    if module == "torch" and type(value).__name__ == "dtype":
        return str(value)
    raise ConfigHashError(
        f"{where} = {value!r} has type {type(value).__name__}, which has no stable hash. Run configs may hold "
        "None, bool, int, float, str, enums, tuples/lists, dicts with string keys and nested dataclasses; keep "
        "paths, tensors, functions and modules out of them (describe them by a name or a number instead).")


def canonical_config(cfg: Any) -> dict[str, Any]:
    """``cfg`` (a dataclass instance) as plain JSON data, with ``"__type__"`` naming its class.

    Raises:
        ConfigHashError: ``cfg`` is not a dataclass instance, or a field holds an unsupported value.
    """
    if not dataclasses.is_dataclass(cfg) or isinstance(cfg, type):
        raise ConfigHashError(f"a run config must be a dataclass instance, got {type(cfg).__name__}; define the "
                              "run's settings as a @dataclass (see specvae.experiments)")
    return _canon(cfg, type(cfg).__qualname__)


def canonical_json(cfg: Any) -> str:
    """The canonical JSON text hashed by :func:`config_hash` (sorted keys, no spaces, ASCII only)."""
    return json.dumps(canonical_config(cfg), sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                      allow_nan=False)


def config_hash(cfg: Any) -> str:
    """First :data:`HASH_LENGTH` hex digits of the SHA-256 of :func:`canonical_json` of ``cfg``."""
    return hashlib.sha256(canonical_json(cfg).encode("ascii")).hexdigest()[:HASH_LENGTH]

"""Run configs, presets, the results store and the grid runner (the core shared by every chapter).

- :func:`config_hash` — stable 16-hex-digit hash of a run-config dataclass (:mod:`~specvae.experiments.hashing`)
- :class:`ResultStore` — one atomic JSON per run under ``book/results/<chapter>/<hash>.json``
  (:mod:`~specvae.experiments.store`)
- :func:`provenance` — git commit, versions, device, time (:mod:`~specvae.experiments.provenance`)
- :data:`PRESET_NAMES`, :func:`check_preset`, :func:`select_preset` — the four sizes (:mod:`~specvae.experiments.presets`)
- :func:`run_grid` — run the missing configs, optionally as several processes (:mod:`~specvae.experiments.grid`)

Each chapter has its own module here (``specvae.experiments.<chapter>``, imported on demand, never from this file)
with ``CHAPTER``, ``Sizes``/``PRESETS``, ``configs(preset, **overrides)``, ``run(cfg)`` and ``run_all(...)``.
"""

from specvae.experiments.atomic import atomic_write, atomic_write_bytes, atomic_write_text
from specvae.experiments.grid import GridError, RunFailure, run_grid, save_run_output
from specvae.experiments.hashing import ConfigHashError, canonical_config, canonical_json, config_hash
from specvae.experiments.presets import PRESET_NAMES, check_preset, coerce_value, select_preset
from specvae.experiments.provenance import device_name, git_commit, provenance
from specvae.experiments.store import (
    MAX_ARRAY_ELEMENTS,
    SCHEMA_VERSION,
    MissingResultError,
    ResultMismatchError,
    ResultStore,
)

__all__ = [
    "config_hash",
    "canonical_config",
    "canonical_json",
    "ConfigHashError",
    "ResultStore",
    "ResultMismatchError",
    "MissingResultError",
    "SCHEMA_VERSION",
    "MAX_ARRAY_ELEMENTS",
    "provenance",
    "git_commit",
    "device_name",
    "PRESET_NAMES",
    "check_preset",
    "select_preset",
    "coerce_value",
    "run_grid",
    "save_run_output",
    "GridError",
    "RunFailure",
    "atomic_write",
    "atomic_write_bytes",
    "atomic_write_text",
]

"""The results store: one JSON file per run, keyed by the hash of its config.

``ResultStore("01_simpler_is_better")`` keeps the results of one chapter under
``<results root>/01_simpler_is_better/<config_hash>.json`` (results root: :func:`specvae.paths.results_root`,
i.e. ``book/results`` of the checkout, or ``SPECVAE_RESULTS``). Each file holds::

    {"schema": 1, "chapter": ..., "hash": ..., "config_type": "RunConfig",
     "config":     the full canonical config (see specvae.experiments.hashing),
     "metrics":    {name: number or string},
     "arrays":     {name: {"dtype": "float32", "shape": [...], "data": [flat list]}}   small arrays for figures,
     "history":    {"step": [...], term: [...]}                                         training curves,
     "extra":      {...}                                                                 anything else JSON-able,
     "provenance": {git_commit, git_dirty, specvae/torch/numpy/python versions, device, timestamp_utc,
                    preset, seed, wall_time_s, code, ...}}

``provenance.code`` is the fingerprint of the code the run depends on (:mod:`~specvae.experiments.fingerprint`):
the module that defines the chapter's ``run`` and the ``specvae`` modules it imports, each hashed by its code.
:func:`~specvae.experiments.run_grid` passes the module of its ``run_fn``; a direct :meth:`ResultStore.save` takes
``run_module=`` and otherwise uses the chapter's module ``specvae.experiments.<name>`` (chapter ``NN_name``).
Inside :func:`~specvae.experiments.fingerprint.track_code` (``specvae run``), :meth:`ResultStore.load` checks
each record's code against the current code and counts the stale ones (or, with ``rerun_stale``, treats them
as missing so that they are retrained).

Files are written atomically (temp file in the same folder, fsync, ``os.replace``), so an interrupted run leaves
either the old file or the new one. :meth:`ResultStore.load` re-checks that the stored config equals the one asked
for and raises :class:`ResultMismatchError` naming the file otherwise, so a result is never reused for another
config, nor one written by an older layout of the store. Arrays larger than :data:`MAX_ARRAY_ELEMENTS` numbers
are refused: save them with :meth:`ResultStore.save_npz` beside the JSON.

Non-finite floats are written as ``NaN``/``Infinity`` (what Python's :mod:`json` reads back; strict JSON parsers
in other languages reject them).
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import re
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from specvae.experiments import fingerprint as _fingerprint
from specvae.experiments.atomic import TEMP_SUFFIX, atomic_write, atomic_write_text, remove_stale_temps
from specvae.experiments.hashing import canonical_config, config_hash

__all__ = ["ResultStore", "ResultMismatchError", "MissingResultError", "SCHEMA_VERSION", "MAX_ARRAY_ELEMENTS",
           "encode_array", "decode_array", "converged_flag", "said_converged"]

#: layout version of the result files; files of another version are never reused
SCHEMA_VERSION = 1
#: largest array (number of elements) stored inside a result JSON
MAX_ARRAY_ELEMENTS = 200_000

# a temp file of a result older than this was left by a killed writer (writing a result takes milliseconds)
_STALE_TEMP_S = 600.0
_CHAPTER_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")


class ResultMismatchError(RuntimeError):
    """A results file does not belong to the config it was looked up for (or has another layout version)."""


class MissingResultError(LookupError):
    """Results were required (e.g. ``train=False``) but some runs have none stored."""


# ----------------------------------------------------------------------------------------------------------
# encoding
# ----------------------------------------------------------------------------------------------------------
def converged_flag(value: Any) -> bool | None:
    """A stored ``metrics.converged`` value read as True / False / None.

    None means "not recorded": the key is missing (None), the run had no convergence rule (None, e.g. at
    ``smoke``), or a table cell is NaN. Every chapter writes a bool (or None); JSON/pandas may hand it back as
    a NumPy bool, 0/1 or a float, and old notebooks' frames as "true"/"false". Anything else is a defect of the
    record and raises :class:`ValueError` naming the value, instead of being counted one way or the other.
    """
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)) and value in (0, 1):
        return bool(value)
    if isinstance(value, (float, np.floating)):
        if value != value:  # NaN: a missing cell
            return None
        if value in (0.0, 1.0):
            return bool(value)
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ValueError(f"a run's 'converged' must be true/false (or missing), got {value!r}")


def said_converged(value: Any) -> bool:
    """Whether a stored ``converged`` value says yes (:func:`converged_flag` is True; "not recorded" says no)."""
    return converged_flag(value) is True


def _to_numpy(value: Any, where: str) -> np.ndarray:
    if type(value).__module__.startswith("torch"):
        value = value.detach().cpu()
        if str(value.dtype) == "torch.bfloat16":  # NumPy has no bfloat16; float32 holds every bfloat16 value exactly
            value = value.float()
        value = value.numpy()
    arr = np.asarray(value)
    if arr.dtype == object or arr.dtype.kind not in "biuf":
        raise TypeError(f"{where}: arrays must hold booleans, integers or real floats, got dtype {arr.dtype}")
    return arr


def encode_array(value: Any, where: str = "array") -> dict[str, Any]:
    """A small array (NumPy, torch or nested lists) as ``{"dtype", "shape", "data"}`` (data flattened, C order).

    Raises:
        ValueError: more than :data:`MAX_ARRAY_ELEMENTS` elements (use ``ResultStore.save_npz`` for those).
    """
    arr = _to_numpy(value, where)
    if arr.size > MAX_ARRAY_ELEMENTS:
        raise ValueError(
            f"{where} has {arr.size} numbers (shape {tuple(arr.shape)}), more than the {MAX_ARRAY_ELEMENTS} a result "
            "JSON holds. Store small summaries in the JSON (e.g. mean radial spectra) and save images or large "
            "arrays beside it with ResultStore.save_npz(cfg, name, **arrays).")
    if arr.dtype.kind == "f" and arr.dtype.itemsize > 8:
        arr = arr.astype(np.float64)
    flat = arr.ravel()
    if arr.dtype.kind == "f" and arr.dtype.itemsize < 8:
        # the shortest decimal that reads back as the same float32/float16 (NumPy's repr), not the 17 digits of
        # its float64 widening: ~40% smaller files, still exact after decode_array
        data = flat.astype(str).astype(np.float64).tolist()
    else:
        data = flat.tolist()
    return {"dtype": arr.dtype.name, "shape": list(arr.shape), "data": data}


def decode_array(encoded: Mapping[str, Any]) -> np.ndarray:
    """Inverse of :func:`encode_array`."""
    return np.asarray(encoded["data"], dtype=np.dtype(encoded["dtype"])).reshape(encoded["shape"])


def _jsonable(value: Any, where: str) -> Any:
    """Plain JSON data for metrics/history/extra: numbers, strings, lists, dicts (NumPy/torch scalars unwrapped)."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, Path):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return canonical_config(value)
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v, f"{where}[{k!r}]") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v, f"{where}[{i}]") for i, v in enumerate(value)]
    module = type(value).__module__
    if module.startswith(("numpy", "torch")) and hasattr(value, "tolist"):
        size = int(np.prod(getattr(value, "shape", ()) or (1,)))
        if size > MAX_ARRAY_ELEMENTS:
            raise ValueError(f"{where} has {size} numbers; put arrays in `arrays=` (small) or save_npz (large)")
        if hasattr(value, "detach"):
            value = value.detach().cpu()
        return _jsonable(value.tolist(), where)
    raise TypeError(f"{where} = {value!r} ({type(value).__name__}) cannot be stored in a result JSON; use numbers, "
                    "strings, lists and dicts")


def _dump_record(record: Mapping[str, Any]) -> str:
    """JSON text of a record: readable (one line per config field, metric and provenance entry), with each array
    and history curve on one line of its own so files stay small and diffs stay short."""
    parts = []
    for key, value in record.items():
        if key in ("arrays", "history") and value:
            inner = ",\n".join(f"  {json.dumps(k)}: {json.dumps(v, separators=(',', ':'), allow_nan=True)}"
                               for k, v in value.items())
            text = "{\n" + inner + "\n }"
        else:
            text = json.dumps(value, indent=1, allow_nan=True).replace("\n", "\n ")
        parts.append(f" {json.dumps(key)}: {text}")
    return "{\n" + ",\n".join(parts) + "\n}\n"


def _read_json(path: Path) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as handle:
            record = json.load(handle)
    except json.JSONDecodeError as err:
        raise ResultMismatchError(f"the results file {path} is not valid JSON ({err}); delete it and rerun the "
                                  "run to store it again") from err
    if not isinstance(record, dict):
        raise ResultMismatchError(f"the results file {path} does not hold a result record; delete it and rerun")
    return record


def _decode_record(record: dict[str, Any]) -> dict[str, Any]:
    out = dict(record)
    out["arrays"] = {k: decode_array(v) for k, v in (record.get("arrays") or {}).items()}
    return out


def _diff(stored: Any, wanted: Any, prefix: str = "") -> list[str]:
    if isinstance(stored, dict) and isinstance(wanted, dict):
        out: list[str] = []
        for key in sorted(set(stored) | set(wanted)):
            name = f"{prefix}.{key}" if prefix else key
            if key not in stored:
                out.append(f"{name} (not in the file)")
            elif key not in wanted:
                out.append(f"{name} (only in the file)")
            else:
                out.extend(_diff(stored[key], wanted[key], name))
        return out
    return [] if stored == wanted else [f"{prefix or 'config'}: {stored!r} in the file, {wanted!r} asked for"]


def _flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key == "__type__" and prefix:
            continue
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, f"{name}."))
        elif isinstance(value, list):
            out[name] = tuple(tuple(v) if isinstance(v, list) else v for v in value)
        else:
            out[name] = value
    return out


# ----------------------------------------------------------------------------------------------------------
# the store
# ----------------------------------------------------------------------------------------------------------
class ResultStore:
    """Results of one chapter: ``<root>/<chapter>/<config_hash>.json`` (see the module docstring).

    Args:
        chapter: the chapter's folder name, e.g. ``"01_simpler_is_better"``.
        root: the results root; default :func:`specvae.paths.results_root` (``SPECVAE_RESULTS`` or
            ``<project root>/book/results``).
    """

    def __init__(self, chapter: str, root: str | os.PathLike | None = None) -> None:
        if not isinstance(chapter, str) or not _CHAPTER_RE.match(chapter):
            raise ValueError(f"chapter must be a folder name such as '01_simpler_is_better' (letters, digits, "
                             f"'_', '-', '.'), got {chapter!r}")
        if root is None:
            from specvae.paths import results_root

            root = results_root()
        self.chapter = chapter
        self.root = Path(root)
        self.folder = self.root / chapter

    def __repr__(self) -> str:
        return f"ResultStore({self.chapter!r}, root={str(self.root)!r})"

    def default_run_module(self) -> str | None:
        """``specvae.experiments.<name>`` for a chapter ``NN_name`` when that module exists, else None."""
        name = _fingerprint.chapter_module(self.chapter)
        return name if name is not None and _fingerprint.module_exists(name) else None

    # -- paths ------------------------------------------------------------------------------------------
    def path_for(self, cfg: Any) -> Path:
        """The JSON file of ``cfg``'s result (whether or not it exists)."""
        return self.folder / f"{config_hash(cfg)}.json"

    def run_dir(self, cfg: Any, runs_root: str | os.PathLike | None = None) -> Path:
        """Checkpoint folder for ``cfg``'s training run: ``<runs root>/<chapter>/<hash>`` (never committed).

        Runs root: ``runs_root`` if given, else :func:`specvae.paths.runs_root` (``SPECVAE_RUNS`` or
        ``<project root>/runs``). Pass it to :func:`specvae.train.fit` as ``run_dir`` so that a killed run resumes.
        """
        if runs_root is None:
            from specvae.paths import runs_root as default_runs_root

            runs_root = default_runs_root()
        return Path(runs_root) / self.chapter / config_hash(cfg)

    def npz_path(self, cfg: Any, name: str) -> Path:
        """The ``.npz`` file ``name`` saved beside ``cfg``'s JSON (``<hash>.<name>.npz``)."""
        if not isinstance(name, str) or not _NAME_RE.match(name):
            raise ValueError(f"npz name must be letters, digits, '_' or '-', got {name!r}")
        return self.folder / f"{config_hash(cfg)}.{name}.npz"

    # -- reading ----------------------------------------------------------------------------------------
    def load(self, cfg: Any) -> dict[str, Any] | None:
        """The stored record of ``cfg`` (arrays decoded to NumPy), or ``None`` when none is stored.

        Inside :func:`~specvae.experiments.fingerprint.track_code` the record's code is checked against the
        current code (and a stale record counts as not stored when the block was opened with ``rerun_stale``).

        Raises:
            ResultMismatchError: the file at ``path_for(cfg)`` holds another config or another layout version.
        """
        path = self.path_for(cfg)
        if not path.is_file():
            return None
        record = _read_json(path)
        if record.get("schema") != SCHEMA_VERSION:
            raise ResultMismatchError(
                f"the results file {path} has layout version {record.get('schema')!r}, this specvae reads version "
                f"{SCHEMA_VERSION}; it was written by another version of specvae. Delete it and rerun the run.")
        wanted = canonical_config(cfg)
        if record.get("config") != wanted:
            diffs = _diff(record.get("config"), wanted)
            raise ResultMismatchError(
                f"the results file {path} holds a result for a different config ({'; '.join(diffs[:8])}"
                f"{' ...' if len(diffs) > 8 else ''}). It was written by another config or an older config layout "
                "and is not reused: delete it (or move it away) and rerun the run.")
        tracker = _fingerprint.active_tracker()
        if tracker is not None and not tracker.observe(path, record):
            return None
        return _decode_record(record)

    def exists(self, cfg: Any) -> bool:
        """Whether a valid result of ``cfg`` is stored (a mismatching file raises, see :meth:`load`)."""
        return self.load(cfg) is not None

    def load_npz(self, cfg: Any, name: str) -> dict[str, np.ndarray]:
        """The arrays saved by :meth:`save_npz` (``FileNotFoundError`` with a hint when missing)."""
        path = self.npz_path(cfg, name)
        if not path.is_file():
            raise FileNotFoundError(f"no {name!r} arrays stored for this config ({path}); run it first")
        with np.load(path, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}

    def records(self) -> list[dict[str, Any]]:
        """Every result record of the chapter (arrays decoded), sorted by file name."""
        if not self.folder.is_dir():
            return []
        records = []
        for path in sorted(self.folder.glob("*.json")):
            if path.name.startswith(".") or path.name.endswith(TEMP_SUFFIX):
                continue
            record = _read_json(path)
            if record.get("schema") != SCHEMA_VERSION:
                raise ResultMismatchError(f"the results file {path} has layout version {record.get('schema')!r}, "
                                          f"not {SCHEMA_VERSION}; delete it and rerun the run")
            records.append(_decode_record(record))
        return records

    def frame(self, configs: Sequence[Any] | None = None, *, missing: str = "error") -> "pandas.DataFrame":  # noqa: F821
        """Results as a table: one row per run; columns = config fields (nested ones as ``a.b``), metrics,
        then ``hash``, ``config_type`` and provenance (``preset``, ``seed``, ``wall_time_s``, ``device``,
        ``git_commit``, ``timestamp_utc``). A metric whose name is also a config field becomes ``metric.<name>``.

        Args:
            configs: the runs to include (in this order); ``None`` = every record of the chapter.
            missing: with ``configs``: ``"error"`` raises :class:`MissingResultError` if some have no result,
                ``"skip"`` leaves them out.
        """
        import pandas as pd

        if missing not in ("error", "skip"):
            raise ValueError(f"missing must be 'error' or 'skip', got {missing!r}")
        if configs is None:
            records = self.records()
        else:
            records, absent = [], []
            for cfg in configs:
                record = self.load(cfg)
                if record is None:
                    absent.append(cfg)
                else:
                    records.append(record)
            if absent and missing == "error":
                raise MissingResultError(
                    f"{len(absent)} of {len(configs)} runs have no stored result in {self.folder} (first: "
                    f"{absent[0]!r}). Train them (run_all(..., train=True) / `specvae run {self.chapter}`) or pass "
                    "missing='skip'.")
        rows = []
        for record in records:
            row = _flatten(record.get("config", {}))
            row.pop("__type__", None)
            for key, value in (record.get("metrics") or {}).items():
                row[f"metric.{key}" if key in row else key] = value
            row["hash"] = record.get("hash")
            row["config_type"] = record.get("config_type")
            prov = record.get("provenance") or {}
            for key in ("preset", "seed", "wall_time_s", "device", "git_commit", "timestamp_utc"):
                name = key if key not in row else f"provenance.{key}"
                row[name] = prov.get(key)
            rows.append(row)
        return pd.DataFrame(rows)

    # -- writing ----------------------------------------------------------------------------------------
    def save(
        self,
        cfg: Any,
        *,
        metrics: Mapping[str, Any],
        arrays: Mapping[str, Any] | None = None,
        history: Mapping[str, Sequence[float]] | None = None,
        extra: Mapping[str, Any] | None = None,
        wall_time_s: float | None = None,
        preset: str | None = None,
        seed: int | None = None,
        device: Any = None,
        run_module: str | None = None,
        code: Mapping[str, Any] | None = None,
    ) -> Path:
        """Write ``cfg``'s result atomically and return its path.

        Args:
            cfg: the run config (a dataclass).
            metrics: named scalar results (numbers or strings; NumPy/torch scalars are unwrapped).
            arrays: small arrays for figures (each at most :data:`MAX_ARRAY_ELEMENTS` numbers).
            history: training curves, e.g. ``FitResult.history``.
            extra: anything else JSON-able (notes, per-class tables, ...).
            wall_time_s: the run's wall time (stored in the provenance).
            preset, seed: stored in the provenance; default ``cfg.preset`` / ``cfg.seed`` when the config has them.
            device: the device the run used (for the device name); default: the one ``fit`` would pick.
            run_module: the module that defines the run function, whose code (and that of the ``specvae``
                modules it imports) is fingerprinted into ``provenance.code``; default: the chapter's module
                ``specvae.experiments.<name>`` when it exists (no fingerprint otherwise).
            code: a fingerprint computed already (``CodeFingerprint.to_record()``, as ``run_grid`` does before
                the run starts); takes precedence over ``run_module``. An empty mapping stores no fingerprint
                (the run's code then shows as unknown).
        """
        from specvae.experiments.provenance import provenance

        if not isinstance(metrics, Mapping):
            raise TypeError(f"metrics must be a dict of name -> number, got {type(metrics).__name__}")
        canonical = canonical_config(cfg)
        digest = config_hash(cfg)
        encoded_arrays = {str(k): encode_array(v, f"arrays[{k!r}]") for k, v in (arrays or {}).items()}
        if code is None:
            code = _fingerprint.code_record(run_module or self.default_run_module())
        record = {
            "schema": SCHEMA_VERSION,
            "chapter": self.chapter,
            "hash": digest,
            "config_type": type(cfg).__qualname__,
            "config": canonical,
            "metrics": _jsonable(dict(metrics), "metrics"),
            "arrays": encoded_arrays,
            "history": _jsonable(dict(history or {}), "history"),
            "extra": _jsonable(dict(extra or {}), "extra"),
            "provenance": provenance(
                device,
                preset=preset if preset is not None else getattr(cfg, "preset", None),
                seed=seed if seed is not None else getattr(cfg, "seed", None),
                wall_time_s=None if wall_time_s is None else float(wall_time_s),
                code=_jsonable(dict(code), "code") if code else None,
            ),
        }
        text = _dump_record(record)
        path = self.folder / f"{digest}.json"
        remove_stale_temps(path, older_than_s=_STALE_TEMP_S)
        return atomic_write_text(path, text)

    def save_npz(self, cfg: Any, name: str, **arrays: Any) -> Path:
        """Save (larger) arrays, e.g. sample images, as ``<hash>.<name>.npz`` beside the JSON, atomically."""
        if not arrays:
            raise ValueError("save_npz needs at least one array, e.g. save_npz(cfg, 'samples', recon=x)")
        data = {key: _to_numpy(value, f"{name}[{key!r}]") for key, value in arrays.items()}
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **data)
        path = self.npz_path(cfg, name)
        remove_stale_temps(path, older_than_s=_STALE_TEMP_S)
        return atomic_write(path, lambda handle: handle.write(buffer.getbuffer()))

    def orphans(self, configs: Sequence[Any]) -> list[Path]:
        """Result files of the chapter that belong to none of ``configs`` (left by older configs or layouts).

        They are never read for those configs; list them to review or remove them (the book commits results).
        """
        keep = {config_hash(cfg) for cfg in configs}
        if not self.folder.is_dir():
            return []
        return sorted(p for p in self.folder.iterdir()
                      if p.is_file() and not p.name.startswith(".") and p.name.split(".", 1)[0] not in keep)

    def delete(self, cfg: Any) -> bool:
        """Remove ``cfg``'s JSON and its ``.npz`` files; return whether a JSON was there."""
        path = self.path_for(cfg)
        found = path.is_file()
        if found:
            path.unlink()
        for npz in self.folder.glob(f"{config_hash(cfg)}.*.npz"):
            npz.unlink()
        return found

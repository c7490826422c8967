"""Run configs, presets, the results store and the grid runner (the core shared by every chapter).

- :func:`config_hash` — stable 16-hex-digit hash of a run-config dataclass (:mod:`~specvae.experiments.hashing`)
- :class:`ResultStore` — one atomic JSON per run under ``book/results/<chapter>/<hash>.json``
  (:mod:`~specvae.experiments.store`)
- :func:`provenance` — git commit, versions, device, time (:mod:`~specvae.experiments.provenance`)
- :data:`PRESET_NAMES`, :func:`check_preset`, :func:`select_preset` — the four sizes (:mod:`~specvae.experiments.presets`)
- :func:`run_grid` — run the missing configs, optionally as several processes (:mod:`~specvae.experiments.grid`)

Each chapter has its own module here (``specvae.experiments.<chapter>``, imported on demand, never from this file)
with ``CHAPTER``, ``Sizes``/``PRESETS``, ``configs(preset, **overrides)``, ``run(cfg)`` and ``run_all(...)``.
The pattern, in short (``tests/test_experiments.py::test_chapter_pattern_end_to_end`` runs it)::

    from dataclasses import dataclass, replace
    from specvae.experiments import ResultStore, run_grid, select_preset
    from specvae.train import TrainConfig, fit

    CHAPTER = "01_simpler_is_better"

    @dataclass(frozen=True)
    class Sizes:                      # one per preset: the knobs that scale with the hardware
        steps: int
        n_images: int

    PRESETS = {"smoke": Sizes(20, 256), "cpu": Sizes(2000, 5000), "gpu": Sizes(20000, 50000),
               "paper": Sizes(200000, 162770)}

    @dataclass(frozen=True)
    class RunConfig:                  # everything that changes a result; hashed into its file name
        loss: str
        seed: int
        preset: str
        train: TrainConfig

    def configs(preset, **overrides):
        sizes = select_preset(PRESETS, preset, **overrides)   # clear errors for bad names/keys
        train = TrainConfig(steps=sizes.steps, batch_size=64)
        return [RunConfig(loss, seed, preset, train) for loss in ("mse", "fft") for seed in (0, 1)]

    def run(cfg):                     # module level: worker processes import it
        store = ResultStore(CHAPTER)
        result = fit(make_model(cfg), make_objective(cfg), load_images(cfg), cfg.train,
                     run_dir=store.run_dir(cfg))              # checkpoints: a killed run resumes
        return {"metrics": evaluate(result.model), "history": result.history,
                "wall_time_s": result.total_wall_time_s, "device": result.device}

    def run_all(preset, *, workers=1, train=True, **overrides):
        cfgs = configs(preset, **overrides)
        store = ResultStore(CHAPTER)
        if train:
            run_grid(cfgs, run, store, workers=workers)        # runs only the missing ones
        return store.frame(cfgs)                               # MissingResultError if some are missing
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

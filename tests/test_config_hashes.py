"""The hashes of the project's real run configs: every hashed field matters, and the committed results still match.

``test_experiments`` checks ``config_hash`` on a sample dataclass; these tests check the configs that key the
stored results in ``book/results/``: a field that changes what a run computes must change its hash (else two
different runs would share one stored result), the fields left out of the hash are exactly the ones stated, and
the hashes of the chapters' ``cpu`` grids still name the committed result files (a drift in the hashing or in a
preset would orphan every stored run and make the chapters retrain).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from specvae.experiments import ResultStore, config_hash
from specvae.experiments import simpler_is_better as ch1
from specvae.experiments import spectral_bias as sb
from specvae.train import TrainConfig

RESULTS = Path(__file__).resolve().parent.parent / "book" / "results"

# fields deliberately left out of each hash (they do not change what a run computes), as documented
NOT_HASHED = {
    TrainConfig: {"compile", "checkpoint_every", "device", "deterministic"},
    ch1.RunConfig: {"checkpoint_every"},
    sb.RegressionConfig: {"preset"},
    sb.ImageFitConfig: {"preset"},
    sb.AutoencoderConfig: {"preset", "checkpoint_every"},
}


def _changed(cls, name: str, value):
    """Another valid value for field ``name`` (chosen by hand for strings, generic for numbers and tuples)."""
    special = {
        (ch1.RunConfig, "dataset"): lambda v: next(d for d in ch1.DATASETS if d != v),
        (ch1.RunConfig, "objective"): lambda v: next(o for o in ch1.OBJECTIVES if o != v),
        (ch1.RunConfig, "upsample"): lambda v: next(u for u in ch1.UPSAMPLERS if u != v),
        (sb.AutoencoderConfig, "upsample"): lambda v: "nearest" if v != "nearest" else "transposed",
        (sb.AutoencoderConfig, "spectral_loss"): lambda v: "focal" if v != "focal" else "fft",
        (sb.AutoencoderConfig, "dataset"): lambda v: v + "-other",
        (sb.AutoencoderConfig, "code"): lambda v: "spatial" if v != "spatial" else "dense",
        (sb.AutoencoderConfig, "band_edges"): lambda v: tuple(e * 0.9 for e in v),
        (TrainConfig, "optimizer"): lambda v: "adamw" if v != "adamw" else "adam",
        (TrainConfig, "precision"): lambda v: "fp32" if v != "fp32" else "bf16",
        (ch1.RunConfig, "precision"): lambda v: "fp32" if v != "fp32" else "bf16",
        (TrainConfig, "converge_on"): lambda v: "recon" if v != "recon" else "loss",
        (TrainConfig, "betas"): lambda v: (v[0], 0.99),
        (TrainConfig, "lr_decay"): lambda v: 0.5,
        (TrainConfig, "device"): lambda v: "cpu" if v != "cpu" else "auto",
        (TrainConfig, "ema_decay"): lambda v: 0.999 if v is None else None,
    }
    if (cls, name) in special:
        return special[(cls, name)](value)
    if value is None:
        return 1
    if isinstance(value, str) and name == "precision":
        return "fp32" if value != "fp32" else "bf16"
    if isinstance(value, str) and name == "preset":
        return "gpu" if value != "gpu" else "cpu"
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return value / 2 if value else 0.25  # never a fixed point; stays in [0, 1] for alpha, beta, ...
    if isinstance(value, tuple):
        return value + (value[-1] + 1,) if value else (1,)
    raise AssertionError(f"no changed value for {cls.__name__}.{name} = {value!r}: add one to _changed")


def _base_configs():
    sb_cfgs = sb.configs("smoke")
    out = [TrainConfig(steps=10, batch_size=4), ch1.configs("smoke")[0]]
    for cls in (sb.RegressionConfig, sb.ImageFitConfig, sb.AutoencoderConfig):
        out.append(next(c for c in sb_cfgs if type(c) is cls))
    return out


@pytest.mark.parametrize("base", _base_configs(), ids=lambda c: type(c).__qualname__)
def test_every_hashed_field_of_a_real_run_config_changes_its_hash(base) -> None:
    cls = type(base)
    fields = dataclasses.fields(cls)
    unhashed = {f.name for f in fields if not f.metadata.get("hash", True)}
    assert unhashed == NOT_HASHED[cls], "a field was added to or removed from the hash: check it on purpose"
    seen = {config_hash(base): "base"}
    for f in fields:
        value = getattr(base, f.name)
        changed = dataclasses.replace(base, **{f.name: _changed(cls, f.name, value)})
        digest = config_hash(changed)
        if f.name in unhashed:
            assert digest == config_hash(base), f.name
        else:
            assert digest not in seen, f"{cls.__name__}.{f.name} does not change the hash (same as {seen.get(digest)})"
            seen[digest] = f.name


def _executed_grid(module) -> list:
    """The cpu configs the committed, executed chapter read: its grid at the parameters it was executed with
    (chapter 1 may be executed with fewer seeds than the preset's while the rest of its grid trains)."""
    nb = json.loads((RESULTS.parent / f"{module.CHAPTER}.ipynb").read_text(encoding="utf-8"))
    params = nb["metadata"].get("papermill", {}).get("parameters", {})
    assert params.get("preset", "cpu") == "cpu", f"{module.CHAPTER} was executed at {params['preset']!r}"
    if module is ch1:
        overrides = {"seeds": params["seeds"]} if params.get("seeds") is not None else {}
        return ch1.all_configs("cpu", alpha_sweep=params.get("alpha_sweep", True), controls=True, **overrides)
    return module.configs("cpu")


@pytest.mark.parametrize("module", [ch1, sb], ids=lambda m: m.CHAPTER)
def test_cpu_grid_hashes_name_the_committed_results(module) -> None:
    """The cpu runs the executed chapter read are found by the hashes computed today, each file holds its own
    config, and so does every other committed run of the full cpu grid (a grid still training may be partial)."""
    store = ResultStore(module.CHAPTER, root=RESULTS)
    executed = _executed_grid(module)
    assert executed
    for cfg in executed:
        path = store.path_for(cfg)
        assert path == RESULTS / module.CHAPTER / f"{config_hash(cfg)}.json"
        assert path.is_file(), f"no committed result for {cfg} ({path.name}): the hash or the cpu preset drifted"
    full = module.all_configs("cpu") if module is ch1 else module.configs("cpu")
    for cfg in full:
        path = store.path_for(cfg)
        if not path.is_file():
            continue
        record = json.loads(path.read_text())
        assert record["hash"] == config_hash(cfg)
        assert store.load(cfg) is not None  # the store's own check: the stored config equals cfg

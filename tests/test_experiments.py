"""Tests of specvae.experiments: config hashing, the results store, provenance, presets and the grid runner."""

from __future__ import annotations

import dataclasses
import enum
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from specvae.experiments import (
    MAX_ARRAY_ELEMENTS,
    PRESET_NAMES,
    ConfigHashError,
    GridError,
    MissingResultError,
    ResultMismatchError,
    ResultStore,
    canonical_json,
    check_preset,
    config_hash,
    provenance,
    run_grid,
    select_preset,
)

TESTS = Path(__file__).resolve().parent


# ----------------------------------------------------------------------------------------------------------
# sample configs (module level: the hash is recomputed in subprocesses and worker processes import them)
# ----------------------------------------------------------------------------------------------------------
class Upsample(enum.Enum):
    TRANSPOSED = "transposed"
    NEAREST = "nearest_conv5"


@dataclass(frozen=True)
class Inner:
    width: int = 32
    alpha: float = 0.5


@dataclass(frozen=True)
class SampleConfig:
    preset: str = "smoke"
    seed: int = 0
    lr: float = 1e-4
    steps: int = 100
    betas: tuple[float, float] = (0.9, 0.999)
    use_fft: bool = True
    loss: str | None = None
    upsample: Upsample = Upsample.TRANSPOSED
    inner: Inner = field(default_factory=Inner)
    weights: dict = field(default_factory=lambda: {"mse": 1.0, "fft": 0.1})
    workers: int = field(default=1, metadata={"hash": False})


@dataclass(frozen=True)
class OtherConfig:  # same fields as Inner, another class: must hash differently
    width: int = 32
    alpha: float = 0.5


# one changed value per hashed field of SampleConfig
CHANGED = {
    "preset": "cpu",
    "seed": 1,
    "lr": 1.0000000000000002e-4,  # one ulp away: repr keeps it apart
    "steps": 101,
    "betas": (0.9, 0.99),
    "use_fft": False,
    "loss": "fft",
    "upsample": Upsample.NEAREST,
    "inner": Inner(alpha=0.25),
    "weights": {"mse": 1.0, "fft": 0.2},
}


def test_golden_hash_and_canonical_json() -> None:
    """Stored golden values: the canonicalisation must not drift between versions (that would orphan results)."""
    assert canonical_json(Inner()) == '{"__type__":"Inner","alpha":0.5,"width":32}'
    assert config_hash(Inner()) == "d212c2a54be62636"
    assert len(config_hash(SampleConfig())) == 16


@pytest.mark.parametrize("hashseed", ["0", "12345"])
def test_hash_stable_across_processes(hashseed: str) -> None:
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import test_experiments as t; "
            "from specvae.experiments import config_hash; print(config_hash(t.SampleConfig()))")
    env = {**os.environ, "PYTHONHASHSEED": hashseed}
    out = subprocess.run([sys.executable, "-c", code, str(TESTS)], capture_output=True, text=True, env=env,
                         check=True)
    assert out.stdout.strip() == config_hash(SampleConfig())


def test_hash_sensitive_to_every_field() -> None:
    base = SampleConfig()
    hashed = [f.name for f in dataclasses.fields(SampleConfig) if f.metadata.get("hash", True)]
    assert sorted(hashed) == sorted(CHANGED)  # the table above covers every hashed field
    seen = {config_hash(base)}
    for name in hashed:
        changed = dataclasses.replace(base, **{name: CHANGED[name]})
        digest = config_hash(changed)
        assert digest not in seen, name
        seen.add(digest)
    # a field marked metadata={"hash": False} does not change the hash
    assert config_hash(dataclasses.replace(base, workers=8)) == config_hash(base)
    # the class name is part of the hash, and int is not float
    assert config_hash(Inner()) != config_hash(OtherConfig())
    assert config_hash(Inner(alpha=1)) != config_hash(Inner(alpha=1.0))
    # dict key order does not matter
    assert config_hash(dataclasses.replace(base, weights={"fft": 0.1, "mse": 1.0})) == config_hash(base)


@dataclass(frozen=True)
class Inner2:  # Inner after a field was added with metadata={"hash": "nondefault"}
    width: int = 32
    alpha: float = 0.5
    decay_at: float | None = field(default=None, metadata={"hash": "nondefault"})
    taps: tuple = field(default_factory=tuple, metadata={"hash": "nondefault"})


def test_a_field_added_later_keeps_old_keys_at_its_default() -> None:
    """A field hashed 'nondefault' is absent from the hash at its default (old runs keep their keys) and present
    otherwise; it must have a default, and the rule's value is checked."""
    Inner2.__qualname__ = "Inner"  # the same class, one version later (the class name is part of the hash)
    try:
        assert config_hash(Inner2()) == config_hash(Inner()) == "d212c2a54be62636"
        assert config_hash(Inner2(decay_at=0.6)) != config_hash(Inner())
        assert config_hash(Inner2(taps=(1,))) not in (config_hash(Inner()), config_hash(Inner2(decay_at=0.6)))
        assert canonical_json(Inner2(decay_at=0.6)).count("decay_at") == 1
    finally:
        Inner2.__qualname__ = "Inner2"

    @dataclass(frozen=True)
    class NoDefault:
        x: int = field(metadata={"hash": "nondefault"})

    with pytest.raises(ConfigHashError, match="has no default"):
        config_hash(NoDefault(1))

    @dataclass(frozen=True)
    class BadRule:
        x: int = field(default=0, metadata={"hash": "sometimes"})

    with pytest.raises(ConfigHashError, match="must be True, False or 'nondefault'"):
        config_hash(BadRule())


def test_hash_rejects_unsupported_values() -> None:
    with pytest.raises(ConfigHashError, match=r"SampleConfig\.loss = .*function"):
        config_hash(SampleConfig(loss=print))  # type: ignore[arg-type]
    with pytest.raises(ConfigHashError, match=r"SampleConfig\.loss = .*PosixPath|WindowsPath"):
        config_hash(SampleConfig(loss=Path("/tmp")))  # type: ignore[arg-type]
    with pytest.raises(ConfigHashError, match="must be a dataclass instance"):
        config_hash({"lr": 1})
    assert config_hash(Inner(width=np.int64(32))) == config_hash(Inner())  # NumPy scalars are unwrapped


# ----------------------------------------------------------------------------------------------------------
# the store
# ----------------------------------------------------------------------------------------------------------
def test_save_load_roundtrip_with_provenance(tmp_path: Path) -> None:
    store = ResultStore("00_test", root=tmp_path)
    cfg = SampleConfig(seed=3)
    assert store.load(cfg) is None and not store.exists(cfg)
    spectrum = np.linspace(0, 1, 17, dtype=np.float32) ** 2
    counts = np.arange(6, dtype=np.int64).reshape(2, 3)
    path = store.save(cfg, metrics={"rmse_ft": np.float32(0.125), "psnr": 31.5, "note": "ok"},
                      arrays={"spectrum": spectrum, "counts": counts},
                      history={"step": [1, 2], "loss": [0.5, float("nan")]}, extra={"n_images": 10},
                      wall_time_s=1.5)
    assert path == tmp_path / "00_test" / f"{config_hash(cfg)}.json"
    rec = store.load(cfg)
    assert rec is not None and store.exists(cfg)
    assert rec["metrics"] == {"rmse_ft": 0.125, "psnr": 31.5, "note": "ok"}
    assert rec["arrays"]["spectrum"].dtype == np.float32 and np.array_equal(rec["arrays"]["spectrum"], spectrum)
    assert rec["arrays"]["counts"].dtype == np.int64 and np.array_equal(rec["arrays"]["counts"], counts)
    noise = np.random.default_rng(0).standard_normal((3, 50)).astype(np.float32) * np.float32(1e-3)
    halves = noise.astype(np.float16)
    store.save(cfg, metrics={}, arrays={"noise": noise, "halves": halves, "spectrum": spectrum, "counts": counts})
    back = store.load(cfg)["arrays"]
    assert back["noise"].dtype == np.float32 and np.array_equal(back["noise"], noise)  # exact, not approximately
    assert back["halves"].dtype == np.float16 and np.array_equal(back["halves"], halves)
    assert json.loads(path.read_text())["arrays"]["noise"]["data"][0] == float(str(noise[0, 0]))  # shortest repr
    store.save(cfg, metrics={"rmse_ft": np.float32(0.125), "psnr": 31.5, "note": "ok"},
               arrays={"spectrum": spectrum, "counts": counts},
               history={"step": [1, 2], "loss": [0.5, float("nan")]}, extra={"n_images": 10}, wall_time_s=1.5)
    rec = store.load(cfg)
    assert rec["history"]["step"] == [1, 2] and np.isnan(rec["history"]["loss"][1])
    assert rec["config"]["inner"] == {"__type__": "Inner", "alpha": 0.5, "width": 32}
    prov = rec["provenance"]
    assert prov["preset"] == "smoke" and prov["seed"] == 3 and prov["wall_time_s"] == 1.5
    import torch

    assert prov["torch_version"] == torch.__version__ and prov["device"]
    head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=TESTS).stdout.strip()
    assert prov["git_commit"] == head and isinstance(prov["git_dirty"], bool)


def test_load_refuses_a_file_of_another_config(tmp_path: Path) -> None:
    store = ResultStore("00_test", root=tmp_path)
    a, b = SampleConfig(seed=1), SampleConfig(seed=2)
    store.save(a, metrics={"x": 1.0})
    store.path_for(b).write_text(store.path_for(a).read_text())  # a stray/renamed file at b's path
    with pytest.raises(ResultMismatchError, match=rf"{config_hash(b)}\.json.*seed: 1 in the file, 2 asked for"):
        store.load(b)
    with pytest.raises(ResultMismatchError):
        store.exists(b)
    # a file from an older config layout (a field missing) is not reused either
    record = json.loads(store.path_for(a).read_text())
    del record["config"]["use_fft"]
    store.path_for(a).write_text(json.dumps(record))
    with pytest.raises(ResultMismatchError, match="use_fft \\(not in the file\\)"):
        store.load(a)
    record["schema"] = 0
    store.path_for(a).write_text(json.dumps(record))
    with pytest.raises(ResultMismatchError, match="layout version 0"):
        store.load(a)


@pytest.mark.parametrize("where", ["fsync", "replace", "interrupt"])
def test_atomic_write_survives_a_crash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str) -> None:
    store = ResultStore("00_test", root=tmp_path)
    cfg = SampleConfig()
    path = store.save(cfg, metrics={"x": 1.0})
    before = path.read_bytes()

    def boom(*args, **kwargs):
        raise KeyboardInterrupt if where == "interrupt" else OSError("disk full (simulated)")

    import specvae.experiments.atomic as atomic

    if where == "fsync":
        monkeypatch.setattr(atomic.os, "fsync", boom)
    elif where == "replace":
        monkeypatch.setattr(atomic.os, "replace", boom)
    else:  # Ctrl-C after the new bytes were written to the temp file, before the replace
        monkeypatch.setattr(atomic.os, "fsync", boom)
    with pytest.raises((OSError, KeyboardInterrupt)):
        store.save(cfg, metrics={"x": 2.0})
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert store.load(cfg)["metrics"] == {"x": 1.0}
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no temp file left behind


def test_temp_files_of_killed_writers_are_cleaned(tmp_path: Path) -> None:
    """A SIGKILL between writing the temp file and the rename leaves a temp file; the next save removes it."""
    store = ResultStore("00_test", root=tmp_path)
    cfg = SampleConfig()
    path = store.path_for(cfg)
    path.parent.mkdir(parents=True)
    old = path.parent / f".{path.name}.abc123.tmp"
    fresh = path.parent / f".{path.name}.def456.tmp"  # another writer busy right now: left alone
    other = path.parent / ".0123456789abcdef.json.xyz.tmp"  # another config's temp: left alone
    for tmp in (old, fresh, other):
        tmp.write_text("{half")
    os.utime(old, (1e9, 1e9))
    os.utime(other, (1e9, 1e9))
    store.save(cfg, metrics={"x": 1.0})
    assert not old.exists() and fresh.exists() and other.exists()
    assert [r["hash"] for r in store.records()] == [config_hash(cfg)]  # temp files are never read as results


def test_run_dir_is_keyed_by_hash_under_runs_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = ResultStore("00_test", root=tmp_path / "results")
    cfg = SampleConfig()
    assert store.run_dir(cfg, tmp_path / "runs") == tmp_path / "runs" / "00_test" / config_hash(cfg)
    monkeypatch.setenv("SPECVAE_RUNS", str(tmp_path / "elsewhere"))
    assert store.run_dir(cfg) == tmp_path / "elsewhere" / "00_test" / config_hash(cfg)


def test_large_arrays_go_to_npz(tmp_path: Path) -> None:
    store = ResultStore("00_test", root=tmp_path)
    cfg = SampleConfig()
    big = np.zeros(MAX_ARRAY_ELEMENTS + 1, dtype=np.float32)
    with pytest.raises(ValueError, match="save_npz"):
        store.save(cfg, metrics={}, arrays={"big": big})
    assert not store.path_for(cfg).exists()
    images = np.random.default_rng(0).integers(0, 256, (4, 3, 8, 8), dtype=np.uint8)
    npz = store.save_npz(cfg, "samples", images=images, big=big)
    assert npz.name == f"{config_hash(cfg)}.samples.npz"
    back = store.load_npz(cfg, "samples")
    assert back["images"].dtype == np.uint8 and np.array_equal(back["images"], images)
    assert np.array_equal(back["big"], big)
    with pytest.raises(FileNotFoundError, match="run it first"):
        store.load_npz(SampleConfig(seed=9), "samples")


def test_records_and_frame(tmp_path: Path) -> None:
    store = ResultStore("00_test", root=tmp_path)
    cfgs = [SampleConfig(seed=s, lr=lr) for s in (0, 1) for lr in (1e-4, 1e-3)]
    for i, cfg in enumerate(cfgs):
        store.save(cfg, metrics={"score": float(i), "seed": 100 + i})
    assert len(store.records()) == 4
    df = store.frame(cfgs)
    assert list(df["score"]) == [0.0, 1.0, 2.0, 3.0]
    assert list(df["seed"]) == [0, 0, 1, 1] and list(df["metric.seed"]) == [100, 101, 102, 103]
    assert list(df["inner.width"]) == [32] * 4 and df["betas"][0] == (0.9, 0.999)
    assert df.groupby("lr")["score"].mean().to_dict() == {1e-4: 1.0, 1e-3: 2.0}
    assert set(df["hash"]) == {config_hash(c) for c in cfgs} and set(df["config_type"]) == {"SampleConfig"}
    missing = [*cfgs, SampleConfig(seed=7)]
    with pytest.raises(MissingResultError, match="1 of 5 runs have no stored result"):
        store.frame(missing)
    assert len(store.frame(missing, missing="skip")) == 4
    store.save_npz(cfgs[0], "samples", x=np.zeros(3))
    assert store.orphans(cfgs) == []
    assert store.orphans(cfgs[1:]) == sorted([store.path_for(cfgs[0]), store.npz_path(cfgs[0], "samples")])
    assert store.delete(cfgs[0]) and store.orphans(cfgs[1:]) == [] and not store.delete(cfgs[0])


def test_provenance_fields() -> None:
    prov = provenance("cpu", preset="smoke", seed=4, wall_time_s=2.0)
    assert prov["device"].startswith("CPU: ") and prov["preset"] == "smoke" and prov["seed"] == 4
    assert prov["timestamp_utc"].endswith("Z") and prov["python_version"].count(".") == 2
    import specvae

    assert prov["specvae_version"] == specvae.__version__


# ----------------------------------------------------------------------------------------------------------
# presets
# ----------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Sizes:
    steps: int
    image_size: int
    lr: float = 1e-4
    grad_clip: float | None = None
    amp: bool = True
    betas: tuple = (0.9, 0.999)


PRESETS = {"smoke": Sizes(10, 16), "cpu": Sizes(500, 32), "gpu": Sizes(20000, 64), "paper": Sizes(100000, 64)}


def test_presets_check_and_select() -> None:
    assert PRESET_NAMES == ("smoke", "cpu", "gpu", "paper")
    assert check_preset("gpu") == "gpu"
    with pytest.raises(ValueError, match="unknown preset 'laptop'; choose one of smoke, cpu, gpu, paper"):
        check_preset("laptop")
    with pytest.raises(ValueError, match="did you mean 'cpu'"):
        check_preset("CPU")
    assert select_preset(PRESETS, "cpu") is PRESETS["cpu"]
    sizes = select_preset(PRESETS, "smoke", steps="20000", lr=1, grad_clip="none", amp="false", betas=[0.5, 0.9])
    assert sizes == Sizes(20000, 16, lr=1.0, grad_clip=None, amp=False, betas=(0.5, 0.9))
    assert isinstance(sizes.lr, float) and isinstance(sizes.steps, int)
    assert select_preset(PRESETS, "smoke", grad_clip="1.5").grad_clip == 1.5
    with pytest.raises(ValueError, match="unknown override\\(s\\) stepz for Sizes; valid keys: steps, image_size"):
        select_preset(PRESETS, "smoke", stepz=3)
    with pytest.raises(ValueError, match="override steps='many' cannot be read as int"):
        select_preset(PRESETS, "smoke", steps="many")
    with pytest.raises(ValueError, match="override steps=2.5 cannot be read as int"):
        select_preset(PRESETS, "smoke", steps=2.5)
    with pytest.raises(ValueError, match="override amp='maybe' cannot be read as bool"):
        select_preset(PRESETS, "smoke", amp="maybe")
    assert select_preset(PRESETS, "smoke", steps=3.0, lr="1e-3").steps == 3
    with pytest.raises(ValueError, match="unknown preset"):
        select_preset(PRESETS, "tiny")


# ----------------------------------------------------------------------------------------------------------
# the grid runner
# ----------------------------------------------------------------------------------------------------------
def run_square(cfg: SampleConfig) -> dict:
    """A run_fn: fails for seed 13, writes a marker so the test can count calls."""
    if cfg.seed == 13:
        raise RuntimeError("unlucky seed")
    marker = os.environ.get("SPECVAE_TEST_MARKERS")
    if marker:
        Path(marker, f"{cfg.seed}-{os.getpid()}").touch()
    return {"metrics": {"square": cfg.seed ** 2}, "arrays": {"ramp": np.arange(cfg.seed + 1)},
            "npz": {"samples": {"x": np.full((2, 2), cfg.seed, dtype=np.uint8)}}, "extra": {"pid": os.getpid()}}


def test_run_grid_skips_done_and_reports_failures(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    markers = tmp_path / "markers"
    markers.mkdir()
    monkeypatch.setenv("SPECVAE_TEST_MARKERS", str(markers))
    store = ResultStore("00_grid", root=tmp_path)
    cfgs = [SampleConfig(seed=s) for s in (1, 2, 3)]
    paths = run_grid(cfgs + [cfgs[0]], run_square, store, progress=False)  # the duplicate runs once
    assert paths == [store.path_for(c) for c in cfgs + [cfgs[0]]]
    assert len(list(markers.iterdir())) == 3
    assert store.load(cfgs[2])["metrics"] == {"square": 9}
    assert store.load_npz(cfgs[1], "samples")["x"].tolist() == [[2, 2], [2, 2]]
    # the second call finds everything stored and runs nothing
    run_grid(cfgs, run_square, store, progress=False)
    assert len(list(markers.iterdir())) == 3
    # one failing run is reported with its config; the others are run and saved
    more = [SampleConfig(seed=13), SampleConfig(seed=4)]
    with pytest.raises(GridError, match=r"(?s)1 run\(s\) of the grid failed.*seed=13.*RuntimeError: unlucky seed") as err:
        run_grid(more, run_square, store, progress=False)
    assert err.value.paths == [None, store.path_for(more[1])]
    assert store.exists(more[1]) and not store.exists(more[0])


def test_run_grid_reports_or_reruns_runs_of_stale_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from specvae.experiments.fingerprint import check_record, track_code

    markers = tmp_path / "markers"
    markers.mkdir()
    monkeypatch.setenv("SPECVAE_TEST_MARKERS", str(markers))
    monkeypatch.setenv("SPECVAE_RUNS", str(tmp_path / "runs"))
    store = ResultStore("00_grid", root=tmp_path)
    cfgs = [SampleConfig(seed=s) for s in (1, 2)]
    run_grid(cfgs, run_square, store, progress=False)
    code = store.load(cfgs[0])["provenance"]["code"]
    assert code["run_module"] == run_square.__module__ and check_record(store.load(cfgs[0])).state == "current"
    # make run 2 look as if an older run_square had made it, with a checkpoint left by that old code
    path = store.path_for(cfgs[1])
    record = json.loads(path.read_text())
    record["provenance"]["code"]["units"][run_square.__module__]["run_square"] = "0" * 16
    record["provenance"]["code"]["fingerprint"] = "1" * 16
    path.write_text(json.dumps(record))
    store.run_dir(cfgs[1]).mkdir(parents=True)
    (store.run_dir(cfgs[1]) / "checkpoint.pt").write_text("old")
    # reported, not rerun
    with track_code() as tracker:
        run_grid(cfgs, run_square, store, progress=False)
        assert store.load(cfgs[1])["metrics"] == {"square": 4}
    assert len(list(markers.iterdir())) == 2
    reused = tracker.reused()
    assert list(reused.states) == [config_hash(cfgs[1])] and reused.changed_modules() == [run_square.__module__]
    assert reused.changed_units() == [f"{run_square.__module__}:run_square"]
    # rerun: only the stale run, its old checkpoint folder removed first
    for marker in markers.iterdir():
        marker.unlink()
    with track_code(rerun_stale=True) as tracker:
        run_grid(cfgs, run_square, store, progress=False)
    assert [p.name.split("-")[0] for p in markers.iterdir()] == ["2"]
    assert tracker.rerun() == [config_hash(cfgs[1])]
    assert not (store.run_dir(cfgs[1]) / "checkpoint.pt").exists()
    assert check_record(store.load(cfgs[1])).state == "current" and not tracker.reused().states


def test_run_grid_in_worker_processes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    markers = tmp_path / "markers"
    markers.mkdir()
    monkeypatch.setenv("SPECVAE_TEST_MARKERS", str(markers))
    store = ResultStore("00_grid", root=tmp_path)
    cfgs = [SampleConfig(seed=s) for s in (5, 6, 13)]
    with pytest.raises(GridError, match="unlucky seed"):
        run_grid(cfgs, run_square, store, workers=2, progress=False)
    pids = {int(p.name.split("-")[1]) for p in markers.iterdir()}
    assert os.getpid() not in pids and len(list(markers.iterdir())) == 2
    assert [store.load(c)["metrics"]["square"] for c in cfgs[:2]] == [25, 36]
    # each worker stored the fingerprint of what run_square reaches (computed in the worker, before the run)
    from specvae.experiments.fingerprint import code_fingerprint

    expected = code_fingerprint(run_square.__module__, "run_square").to_record()
    assert [store.load(c)["provenance"]["code"] for c in cfgs[:2]] == [expected, expected]
    with pytest.raises(ValueError, match="lambda or a nested function"):
        run_grid([SampleConfig(seed=8)], lambda c: {"metrics": {}}, store, workers=2, progress=False)


# ----------------------------------------------------------------------------------------------------------
# the chapter pattern of the package docstring, end to end (real training through fit)
# ----------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ChapterSizes:
    steps: int
    n_images: int


CHAPTER_PRESETS = {"smoke": ChapterSizes(6, 16), "cpu": ChapterSizes(50, 64), "gpu": ChapterSizes(500, 256),
                   "paper": ChapterSizes(5000, 1024)}


@dataclass(frozen=True)
class ChapterRun:
    width: int
    seed: int
    preset: str
    train: object  # a TrainConfig (typed loosely so this module imports without torch)


def chapter_configs(preset: str, **overrides) -> list[ChapterRun]:
    from specvae.train import TrainConfig

    sizes = select_preset(CHAPTER_PRESETS, preset, **overrides)
    train = TrainConfig(steps=sizes.steps, batch_size=4, lr=1e-2, log_every=2, seed=0, device="cpu")
    return [ChapterRun(width, seed, preset, dataclasses.replace(train, seed=seed)) for width in (2, 4)
            for seed in (0, 1)]


def chapter_run(cfg: ChapterRun) -> dict:
    import torch
    from torch import nn

    from specvae.data.shapes import generate_shapes
    from specvae.train import fit

    images, _ = generate_shapes(CHAPTER_PRESETS[cfg.preset].n_images, image_size=8, seed=cfg.seed)
    torch.manual_seed(cfg.seed)
    model = nn.Sequential(nn.Conv2d(1, cfg.width, 3, padding=1), nn.ReLU(), nn.Conv2d(cfg.width, 1, 3, padding=1))

    def objective(m, batch, step):
        mse = (m(batch) - batch).pow(2).mean()
        return mse, {"mse": mse}

    store = ResultStore("00_chapter", root=os.environ["SPECVAE_TEST_RESULTS"])
    res = fit(model, objective, images, cfg.train, run_dir=store.run_dir(cfg, os.environ["SPECVAE_TEST_RUNS"]),
              progress=False)
    with torch.no_grad():
        x = images.float() / 255
        final = float((res.model(x) - x).pow(2).mean())
    return {"metrics": {"final_mse": final}, "history": res.history, "wall_time_s": res.total_wall_time_s,
            "device": res.device}


def test_chapter_pattern_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPECVAE_TEST_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("SPECVAE_TEST_RUNS", str(tmp_path / "runs"))
    store = ResultStore("00_chapter", root=tmp_path / "results")
    cfgs = chapter_configs("smoke")
    run_grid(cfgs, chapter_run, store, progress=False)
    df = store.frame(cfgs)
    assert len(df) == 4 and list(df["width"]) == [2, 2, 4, 4] and list(df["train.steps"]) == [6] * 4
    assert (df["final_mse"] > 0).all() and (df["preset"] == "smoke").all()
    rec = store.load(cfgs[0])
    assert rec["history"]["step"] == [2, 4, 6] and len(rec["history"]["mse"]) == 3
    assert rec["provenance"]["wall_time_s"] > 0 and rec["provenance"]["device"].startswith("CPU")
    # each run left its final checkpoint under runs/<chapter>/<hash>
    assert all((store.run_dir(c, tmp_path / "runs") / "checkpoint.pt").is_file() for c in cfgs)
    # an override makes new configs (new hashes): they are missing, the old results are not reused
    longer = chapter_configs("smoke", steps="8")
    assert {config_hash(c) for c in longer}.isdisjoint(config_hash(c) for c in cfgs)
    with pytest.raises(MissingResultError):
        store.frame(longer)


_SLEEPER = '''
import os, sys, time
from dataclasses import dataclass
from pathlib import Path

@dataclass(frozen=True)
class Cfg:
    seed: int

def run_sleep(cfg):
    Path(os.environ["SPECVAE_TEST_MARKERS"], str(os.getpid())).touch()
    time.sleep(120)
    return {"metrics": {}}

if __name__ == "__main__":
    from specvae.experiments import ResultStore, run_grid
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import sleeper
    run_grid([sleeper.Cfg(0), sleeper.Cfg(1)], sleeper.run_sleep, ResultStore("00_grid", root=sys.argv[1]),
             workers=2, progress=False)
'''


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's prctl")
def test_grid_workers_end_when_the_grid_process_is_killed(tmp_path: Path) -> None:
    """Killing the process that runs the grid (SIGKILL: no clean-up runs in it) also ends its spawned workers,
    instead of leaving them training as orphans beside a restarted grid."""
    import signal
    import time

    (tmp_path / "sleeper.py").write_text(_SLEEPER)
    markers = tmp_path / "markers"
    markers.mkdir()
    env = {**os.environ, "SPECVAE_TEST_MARKERS": str(markers),
           "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    parent = subprocess.Popen([sys.executable, str(tmp_path / "sleeper.py"), str(tmp_path / "results")], env=env)
    try:
        deadline = time.time() + 120
        while len(list(markers.iterdir())) < 2 and time.time() < deadline and parent.poll() is None:
            time.sleep(0.2)
        workers = [int(p.name) for p in markers.iterdir()]
        assert len(workers) == 2, f"the grid did not start two workers (parent exit code {parent.poll()})"
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=30)

        def alive(pid: int) -> bool:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return False
            return Path(f"/proc/{pid}/stat").exists() and Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"

        deadline = time.time() + 30
        while any(alive(p) for p in workers) and time.time() < deadline:
            time.sleep(0.2)
        assert not any(alive(p) for p in workers), "a worker outlived the killed grid process"
    finally:
        if parent.poll() is None:
            parent.kill()
        for p in markers.iterdir():
            try:
                os.kill(int(p.name), signal.SIGKILL)
            except ProcessLookupError:
                pass

"""Tests of the gpu-preset staging/unpacking (specvae.gpu) and of specvae bench's training measurements."""

from __future__ import annotations

import dataclasses
import importlib
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import types
from pathlib import Path

import pytest

from specvae import gpu


# ----------------------------------------------------------------------------------------------------------- gpu
def _tar(path: Path, files: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def _record(preset: str) -> bytes:
    return json.dumps({"schema": 1, "config": {"preset": preset}, "provenance": {"preset": preset}}).encode()


def test_unpack_writes_gpu_results_and_refuses_anything_else(tmp_path: Path) -> None:
    good = {"./01_simpler_is_better/0123456789abcdef.json": _record("gpu"),
            "./01_simpler_is_better/0123456789abcdef.samples.npz": b"npz"}
    written = gpu.unpack(_tar(tmp_path / "ok.tar.gz", good), results_root=tmp_path / "res")
    assert sorted(p.relative_to(tmp_path / "res").as_posix() for p in written) == [
        "01_simpler_is_better/0123456789abcdef.json", "01_simpler_is_better/0123456789abcdef.samples.npz"]
    assert (tmp_path / "res/01_simpler_is_better/0123456789abcdef.samples.npz").read_bytes() == b"npz"
    for bad, match in (({"../evil.json": _record("gpu")}, "not chapter result files"),
                       ({"01_simpler_is_better/notahash.json": _record("gpu")}, "not chapter result files"),
                       ({"01_simpler_is_better/0123456789abcdef.json": _record("cpu")}, "not 'gpu'")):
        out = tmp_path / "bad"
        with pytest.raises(ValueError, match=match):
            gpu.unpack(_tar(tmp_path / "bad.tar.gz", bad), results_root=out)
        assert not out.exists()  # nothing written


@dataclasses.dataclass(frozen=True)
class _Cfg:
    """A run config of the fake chapter (stored with the real ResultStore)."""

    dataset: str
    seed: int
    preset: str = "gpu"


def _fake_chapter(tmp_path: Path, sizes: dict[str, int], *, tree: int = 1) -> tuple[types.SimpleNamespace, dict]:
    """A fake chapter ``07_fake`` with one data file per data set (``sizes``: data set -> bytes; ``0`` = generated,
    no file), one weights file, a git checkout of ``tree`` bytes and an empty results root; returns the module and
    the keyword arguments of :func:`gpu.stage` / :func:`gpu.plan`."""
    project = tmp_path / "repo"
    project.mkdir()
    subprocess.run(["git", "init", "-q", str(project)], check=True)
    (project / "small.txt").write_bytes(b"x" * tree)
    subprocess.run(["git", "-C", str(project), "add", "small.txt"], check=True)
    data = tmp_path / "data"
    files: dict[str, tuple[str, ...]] = {}
    for name, size in sizes.items():
        files[name] = (f"{name}/{name}.bin",) if size else ()
        if size:
            (data / name).mkdir(parents=True)
            (data / name / f"{name}.bin").write_bytes(b"d" * size)
    weights = tmp_path / "weights"
    (weights / "watson").mkdir(parents=True)
    (weights / "watson/w.pth").write_bytes(b"w")

    def dataset_runs(dataset: str, preset: str = "gpu") -> list[_Cfg]:
        return [_Cfg(dataset, seed, preset) for seed in range(2)]

    module = types.SimpleNamespace(__name__="fake", CHAPTER="07_fake", GPU_DATA=files, GPU_WEIGHTS=("watson/w.pth",),
                                   GPU_WORKERS=3, dataset_runs=dataset_runs)
    kwargs = dict(data_root=data, weights_root=weights, project_root=project, results_root=tmp_path / "results")
    return module, kwargs


def _store_runs(module: types.SimpleNamespace, kwargs: dict, dataset: str) -> None:
    from specvae.experiments.store import ResultStore

    store = ResultStore(module.CHAPTER, root=kwargs["results_root"])
    for cfg in module.dataset_runs(dataset):
        store.save(cfg, metrics={"loss": 1.0}, run_module="specvae.gpu", code={})


def test_stage_copies_the_declared_files_and_names_the_data_sets_in_the_command(tmp_path: Path) -> None:
    module, kw = _fake_chapter(tmp_path, {"shapes": 0, "mnist": 1000, "faces": 500})
    summary = gpu.stage(module, **kw)
    project = kw["project_root"]
    assert summary["datasets"] == ["shapes", "mnist", "faces"] and summary["remaining"] == []
    assert (project / ".stage/data/mnist/mnist.bin").read_bytes() == b"d" * 1000
    assert (project / ".stage/data/faces/faces.bin").read_bytes() == b"d" * 500
    assert (project / ".stage/weights/watson/w.pth").read_bytes() == b"w"
    assert summary["command"] == "bash scripts/gpu_chapter.sh 07 3 540 shapes,mnist,faces"
    assert summary["carry"] == [".stage"]
    # given data sets override the choice (stored or not), in the order given, and nothing else is staged
    summary = gpu.stage(module, datasets=["faces"], **kw)
    assert summary["datasets"] == ["faces"] and summary["command"].endswith(" 540 faces")
    assert not (project / ".stage/data/mnist").exists() and (project / ".stage/data/faces/faces.bin").exists()
    with pytest.raises(ValueError, match=r"declares no gpu data set \['celeba'\]"):
        gpu.plan(module, datasets=["celeba"], **kw)
    module.GPU_DATA = {**module.GPU_DATA, "mnist": ("mnist/missing.gz",)}
    with pytest.raises(FileNotFoundError, match="missing.gz"):
        gpu.stage(module, **kw)
    module.GPU_DATA = ("mnist/mnist.bin",)  # the old flat tuple: says how to declare it now
    with pytest.raises(ValueError, match="must map each data set"):
        gpu.stage(module, **kw)


def test_stage_finds_weights_in_any_weights_folder_and_stages_the_declared_wheels(tmp_path: Path,
                                                                                 monkeypatch) -> None:
    module, kw = _fake_chapter(tmp_path, {"mnist": 1000})
    cache = tmp_path / "cache"
    (cache / "weights/lpips").mkdir(parents=True)
    (cache / "weights/lpips/alex.pth").write_bytes(b"a" * 10)  # in specvae's cache, not in SPECVAE_WEIGHTS
    monkeypatch.setenv("SPECVAE_CACHE", str(cache))
    monkeypatch.setenv("SPECVAE_WEIGHTS", str(kw.pop("weights_root")))
    module.GPU_WEIGHTS = ("watson/w.pth", "lpips/alex.pth")
    module.GPU_WHEELS = ("lpips==0.1.4",)
    wheel = tmp_path / "lpips-0.1.4-py3-none-any.whl"
    wheel.write_bytes(b"z" * 100)
    monkeypatch.setattr(gpu, "fetch_wheel", lambda req: wheel)
    summary = gpu.plan(module, **kw)  # plans the wheel's reserve, not its bytes
    assert summary["wheels"] == ["lpips==0.1.4"] and summary["files"][-1] == ("weights/lpips/alex.pth", 10)
    summary = gpu.stage(module, **kw)
    project = kw["project_root"]
    assert (project / ".stage/weights/lpips/alex.pth").read_bytes() == b"a" * 10
    assert (project / ".stage/weights/watson/w.pth").read_bytes() == b"w"
    assert (project / ".stage/wheels" / wheel.name).read_bytes() == b"z" * 100
    assert ("wheels/" + wheel.name, 100) in summary["files"]
    assert summary["staged_mib"] * 2**20 == pytest.approx(1000 + 1 + 10 + 100)
    monkeypatch.setattr(gpu, "WHEEL_RESERVE_BYTES", 50)
    with pytest.raises(ValueError, match="exceed the"):
        gpu.stage(module, **kw)
    module.GPU_WEIGHTS = ("lpips/vgg.pth",)
    with pytest.raises(FileNotFoundError, match=r"no weights folder holds it \(looked in .*weights, .*cache/weights\)"):
        gpu.plan(module, **kw)


def test_fetch_wheel_reads_the_cache_and_refuses_an_unpinned_requirement(tmp_path: Path, monkeypatch) -> None:
    import subprocess as sp

    (tmp_path / "lpips-0.1.4-py3-none-any.whl").write_bytes(b"w")
    monkeypatch.setattr(sp, "run", lambda *a, **k: pytest.fail("pip must not run when the cache holds the wheel"))
    assert gpu.fetch_wheel("lpips==0.1.4", cache=tmp_path).name == "lpips-0.1.4-py3-none-any.whl"
    with pytest.raises(ValueError, match="name==version"):
        gpu.fetch_wheel("lpips>=0.1", cache=tmp_path)
    monkeypatch.setattr(sp, "run", lambda *a, **k: sp.CompletedProcess(a, 1, "", "no network"))
    with pytest.raises(RuntimeError, match="no network"):
        gpu.fetch_wheel("lpips==0.1.5", cache=tmp_path)


def test_stage_takes_data_sets_in_order_while_they_fit_and_leaves_the_rest(tmp_path: Path, monkeypatch) -> None:
    module, kw = _fake_chapter(tmp_path, {"shapes": 0, "mnist": 300, "cifar10": 500, "faces": 200})
    monkeypatch.setattr(gpu, "_tree_bytes", lambda root: 400)
    monkeypatch.setattr(gpu, "CARRY_LIMIT_BYTES", 1000)  # tree 400 + weights 1 leaves 599 bytes of data
    summary = gpu.plan(module, **kw)
    # shapes (0) + mnist (300) fit, cifar10 (500) would make 1201, faces (200) still fits after it is skipped
    assert summary["datasets"] == ["shapes", "mnist", "faces"] and summary["remaining"] == ["cifar10"]
    assert summary["command"] == "bash scripts/gpu_chapter.sh 07 3 540 shapes,mnist,faces"
    assert sum(b for _, b in summary["files"]) == 300 + 200 + 1 <= 1000 - 400
    # once those are stored, the next call stages what was left
    for name in ("shapes", "mnist", "faces"):
        _store_runs(module, kw, name)
    summary = gpu.stage(module, **kw)
    assert summary["datasets"] == ["cifar10"] and summary["remaining"] == []
    assert summary["done"] == ["shapes", "mnist", "faces"]
    assert summary["command"].endswith(" 540 cifar10")
    assert sorted(p.name for p in (kw["project_root"] / ".stage/data").rglob("*.bin")) == ["cifar10.bin"]
    # given data sets must fit together
    with pytest.raises(ValueError, match=r"need 0\.0 MiB together.*stage \['mnist', 'faces'\] in this call and "
                                         r"\['cifar10'\] in another"):
        gpu.plan(module, datasets=["mnist", "faces", "cifar10"], **kw)


def test_stage_skips_data_sets_whose_runs_are_all_stored(tmp_path: Path) -> None:
    module, kw = _fake_chapter(tmp_path, {"shapes": 0, "mnist": 300, "faces": 200})
    _store_runs(module, kw, "mnist")
    from specvae.experiments.store import ResultStore

    store = ResultStore(module.CHAPTER, root=kw["results_root"])
    store.save(_Cfg("faces", 0), metrics={"loss": 1.0}, run_module="specvae.gpu", code={})  # 1 of 2 faces runs
    assert gpu.pending_datasets(module, results_root=kw["results_root"]) == ["shapes", "faces"]
    summary = gpu.stage(module, **kw)
    assert summary["datasets"] == ["shapes", "faces"] and summary["done"] == ["mnist"]
    assert not (kw["project_root"] / ".stage/data/mnist").exists()
    for name in ("shapes", "faces"):
        _store_runs(module, kw, name)
    summary = gpu.stage(module, **kw)
    assert summary["datasets"] == [] and summary["command"] is None and summary["files"] == []
    assert not (kw["project_root"] / ".stage").exists()


def test_stage_refuses_a_data_set_that_does_not_fit_even_alone(tmp_path: Path, monkeypatch) -> None:
    module, kw = _fake_chapter(tmp_path, {"mnist": 300, "faces": 700})
    monkeypatch.setattr(gpu, "_tree_bytes", lambda root: 400)
    monkeypatch.setattr(gpu, "CARRY_LIMIT_BYTES", 1000)
    with pytest.raises(ValueError, match=r"data set 'faces' of 07_fake does not fit one device call even alone: "
                                         r"its files \(0\.0 MiB\) \+ the checkout .* over the 0\.0 MiB"):
        gpu.stage(module, **kw)
    assert not (kw["project_root"] / ".stage").exists()  # nothing copied
    _store_runs(module, kw, "faces")  # stored: no longer a candidate, so the rest stages
    assert gpu.plan(module, **kw)["datasets"] == ["mnist"]
    # the real limit: a file over 64 MiB
    monkeypatch.undo()
    with open(tmp_path / "data/mnist/mnist.bin", "wb") as handle:
        handle.truncate(gpu.CARRY_LIMIT_BYTES + 1)
    with pytest.raises(ValueError, match=r"'mnist' .*its files \(64\.0 MiB\) .* over the 64\.0 MiB a call carries"):
        gpu.plan(module, **kw)


def test_device_command_and_cli_pass_the_data_sets_on(monkeypatch, capsys) -> None:
    from specvae import cli

    assert gpu.device_command("04", 12) == "bash scripts/gpu_chapter.sh 04 12 540"
    assert (gpu.device_command("04", 12, datasets=["mnist", "cifar10"])
            == "bash scripts/gpu_chapter.sh 04 12 540 mnist,cifar10")
    calls = []
    name = "specvae.experiments.fake_gpu_chapter"
    module = types.ModuleType(name)

    def run_all(preset, *, workers=1, train=True, only_datasets=None, **overrides):
        calls.append({"preset": preset, "only_datasets": only_datasets, **overrides})
        return "frame"

    module.run_all = run_all
    monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.setattr(cli, "_module_chapters", lambda: {"07_fake_gpu_chapter": name})
    assert cli.main(["run", "07", "--preset", "gpu", "--datasets", "mnist,cifar10"]) == 0
    assert cli.main(["run", "07", "--preset", "gpu"]) == 0
    assert calls == [{"preset": "gpu", "only_datasets": ("mnist", "cifar10")}, {"preset": "gpu", "only_datasets": None}]
    module.run_all = lambda preset, *, workers=1, train=True, **overrides: "frame"  # no only_datasets parameter
    with pytest.raises(SystemExit, match="cannot limit its runs to data sets"):
        cli.main(["run", "07", "--preset", "gpu", "--datasets", "mnist"])


def test_gpu_chapter_script_passes_the_data_sets_and_packs_only_new_results(tmp_path: Path) -> None:
    """scripts/gpu_chapter.sh with a stand-in ``python3``: stored results are visible to the grid (so it skips
    them), ``--datasets`` reaches ``specvae run``, and the archive holds only the result files this call wrote."""
    root = Path(__file__).resolve().parents[1]
    repo = tmp_path / "repo"
    (repo / "scripts").mkdir(parents=True)
    shutil.copy(root / "scripts/gpu_chapter.sh", repo / "scripts/gpu_chapter.sh")
    old = repo / "book/results/04_fq_vae/0000000000000000.json"
    old.parent.mkdir(parents=True)
    old.write_text("{}")
    (repo / "book/results/code_equivalence.json").write_text("[]")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "python3"
    fake.write_text('#!/usr/bin/env bash\n'
                    'if [ "$1" = "-c" ]; then echo "torch (stand-in)"; exit 0; fi\n'
                    'echo "args: $*"\n'
                    'test -f "$SPECVAE_RESULTS/04_fq_vae/0000000000000000.json" && echo "sees the stored run"\n'
                    'touch "$SPECVAE_RESULTS/04_fq_vae/0123456789abcdef.json" '
                    '"$SPECVAE_RESULTS/04_fq_vae/0123456789abcdef.samples.npz" '
                    '"$SPECVAE_RESULTS/04_fq_vae/.fedcba9876543210.json.x1.tmp"\n')
    fake.chmod(0o755)
    out = tmp_path / "out"
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "OUT": str(out)}
    done = subprocess.run(["bash", "scripts/gpu_chapter.sh", "04", "2", "60", "mnist,cifar10"], cwd=repo, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    log = (out / "run-04.log").read_text()
    assert "args: -m specvae.cli run 04 --preset gpu --workers 2 --datasets mnist,cifar10" in log
    assert "sees the stored run" in log
    assert "packed 1 result file(s)" in done.stdout
    with tarfile.open(out / "results-04.tar.gz") as tar:
        assert sorted(tar.getnames()) == ["./04_fq_vae/0123456789abcdef.json",
                                          "./04_fq_vae/0123456789abcdef.samples.npz"]
    assert not (repo / "book/results/04_fq_vae/0123456789abcdef.json").exists()  # the checkout is left alone


# ------------------------------------------------------------------------------------ the chapters' gpu data
_GPU_CHAPTERS = {
    "simpler_is_better": "specvae.experiments.simpler_is_better",
    "fq_vae": "specvae.experiments.fq_vae",
    "fa_vae": "specvae.experiments.fa_vae",
}


def _what_run_all_trains(module_name: str) -> tuple[list, list]:
    """``(grid, priors)``: the runs ``run_all("gpu")`` of a chapter trains with its defaults (the tables' grid, and
    for chapter 4 Fig. 6's priors on the faces)."""
    module = importlib.import_module(module_name)
    if module_name.endswith("fq_vae"):
        from specvae.experiments import fq_vae_prior

        return module.configs("gpu"), fq_vae_prior.configs("gpu")
    if module_name.endswith("fa_vae"):
        return module.configs("gpu"), []
    return module.all_configs("gpu"), []


@pytest.mark.parametrize("chapter", sorted(_GPU_CHAPTERS))
def test_chapter_gpu_data_covers_every_data_set_and_dataset_runs_split_the_grid(chapter: str) -> None:
    module = importlib.import_module(_GPU_CHAPTERS[chapter])
    assert list(gpu.declared_data(module)) == list(module.DATASETS)  # every data set, in the chapter's order
    grid, priors = _what_run_all_trains(_GPU_CHAPTERS[chapter])
    split = [c for d in module.DATASETS for c in module.dataset_runs(d, "gpu")]
    assert len(split) == len(set(split)) and set(split) == set(grid) | set(priors)
    for d in module.DATASETS:
        assert set(module.only_on(grid, (d,))) == {c for c in module.dataset_runs(d) if c not in priors}
    assert set(priors) <= set(module.dataset_runs("faces"))
    with pytest.raises(ValueError, match="unknown data sets"):
        module.only_on(grid, ("nope",))


@pytest.mark.parametrize("chapter", sorted(set(_GPU_CHAPTERS) - {"fa_vae"}))  # chapter 2 trains on the faces only
def test_run_all_only_datasets_keeps_the_runs_of_those_data_sets(chapter: str, tmp_path: Path, monkeypatch) -> None:
    from specvae.experiments.store import MissingResultError

    module = importlib.import_module(_GPU_CHAPTERS[chapter])
    monkeypatch.setenv("SPECVAE_RESULTS", str(tmp_path))  # nothing stored: train=False names how many are missing
    n = len(module.dataset_runs("mnist", "smoke"))
    with pytest.raises(MissingResultError, match=rf"^{n} of {n} runs"):
        module.run_all("smoke", train=False, progress=False, only_datasets=("mnist",))
    with pytest.raises(MissingResultError) as every:
        module.run_all("smoke", train=False, progress=False)
    assert not str(every.value).startswith(f"{n} of")  # more than the MNIST runs without the filter


@pytest.mark.parametrize("chapter", [
    pytest.param("simpler_is_better", marks=[pytest.mark.data("mnist", "faces"),
                                             pytest.mark.weights("watson-gray", "watson-rgb")]),
    pytest.param("fq_vae", marks=pytest.mark.data("mnist", "cifar10", "faces")),
    pytest.param("fa_vae", marks=[pytest.mark.data("faces", "imagenet-samples"), pytest.mark.weights("lpips-alex")]),
])
def test_every_gpu_data_set_fits_one_device_call_alone_with_todays_checkout(chapter: str) -> None:
    """A growing checkout fails here before it fails on a GPU machine: each declared data set, with the weights
    and the checkout as it is now, stays within the 64 MiB a device call carries."""
    module = importlib.import_module(_GPU_CHAPTERS[chapter])
    for dataset in gpu.declared_data(module):
        summary = gpu.plan(module, datasets=[dataset])  # raises, naming the sizes, when it does not fit
        total = summary["staged_mib"] + summary["tree_mib"]
        assert summary["datasets"] == [dataset] and total <= summary["limit_mib"], (dataset, total)


# --------------------------------------------------------------------------------------------------------- bench
def test_bench_rows_are_medians_and_ratios_of_interleaved_rounds(tmp_path: Path, monkeypatch) -> None:
    from specvae.bench import bench_training, store_rows

    monkeypatch.setenv("SPECVAE_RESULTS", str(tmp_path))
    rows = bench_training(["simpler_is_better"], families=["mnist-vae"], preset="smoke", steps=2, warmup=1,
                          rounds=3, progress=False)
    (row,) = rows
    for variant in ("plain-fp32", "plain-bf16-cl", "fit"):
        assert len(row[f"{variant}_rounds"]) == 3
        assert row[f"{variant}_img_s"] == statistics.median(row[f"{variant}_rounds"]) > 0
    assert row["fit_vs_plain_fp32"] == pytest.approx(row["fit_img_s"] / row["plain-fp32_img_s"])
    assert row["precision"] == "bf16" and row["batch_size"] == 8
    (path,) = store_rows(rows, preset="smoke", steps=2, warmup=1, rounds=3, layout=False, compile=False)
    stored = json.loads(path.read_text())
    assert stored["metrics"]["fit_img_s"] == row["fit_img_s"] and stored["provenance"]["preset"] == "smoke"
    # the CPU kind is part of the key: the same benchmark on another processor is stored beside it, not over it
    provenance = importlib.import_module("specvae.experiments.provenance")  # the package re-exports a function of that name

    assert stored["config"]["cpu"] == provenance.cpu_name()
    monkeypatch.setattr(provenance, "cpu_name", lambda: "AMD EPYC (test)")
    (other,) = store_rows(rows, preset="smoke", steps=2, warmup=1, rounds=3, layout=False, compile=False)
    assert other != path and path.exists() and json.loads(other.read_text())["config"]["cpu"] == "AMD EPYC (test)"


def test_bench_names_unknown_families_and_chapters() -> None:
    from specvae.bench import bench_training, chapter_families

    with pytest.raises(ValueError, match="unknown model family.*mnist-vae"):
        bench_training(["simpler_is_better"], families=["nope"], preset="smoke", progress=False)
    with pytest.raises(ValueError, match="no bench_families"):
        chapter_families("specvae.experiments.presets")
    with pytest.raises(ValueError, match="steps must be"):
        bench_training(["simpler_is_better"], steps=0, progress=False)

"""Tests of the gpu-preset staging/unpacking (specvae.gpu) and of specvae bench's training measurements."""

from __future__ import annotations

import importlib
import io
import json
import statistics
import subprocess
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


def test_stage_copies_the_declared_files_and_checks_the_budget(tmp_path: Path) -> None:
    project = tmp_path / "repo"
    project.mkdir()
    subprocess.run(["git", "init", "-q", str(project)], check=True)
    (project / "small.txt").write_text("x")
    subprocess.run(["git", "-C", str(project), "add", "small.txt"], check=True)
    data = tmp_path / "data"
    (data / "mnist").mkdir(parents=True)
    (data / "mnist/a.gz").write_bytes(b"a" * 1000)
    weights = tmp_path / "weights"
    (weights / "watson").mkdir(parents=True)
    (weights / "watson/w.pth").write_bytes(b"w")
    module = types.SimpleNamespace(__name__="fake", CHAPTER="07_fake", GPU_DATA=("mnist/a.gz",),
                                   GPU_WEIGHTS=("watson/w.pth",), GPU_WORKERS=3)
    summary = gpu.stage(module, data_root=data, weights_root=weights, project_root=project)
    assert (project / ".stage/data/mnist/a.gz").read_bytes() == b"a" * 1000
    assert (project / ".stage/weights/watson/w.pth").read_bytes() == b"w"
    assert summary["command"] == "bash scripts/gpu_chapter.sh 07 3 540" and summary["carry"] == [".stage"]
    module.GPU_DATA = ("mnist/missing.gz",)
    with pytest.raises(FileNotFoundError, match="missing.gz"):
        gpu.stage(module, data_root=data, weights_root=weights, project_root=project)
    big = data / "big.bin"
    with open(big, "wb") as handle:
        handle.truncate(gpu.CARRY_LIMIT_BYTES + 1)
    module.GPU_DATA = ("big.bin",)
    with pytest.raises(ValueError, match="exceed"):
        gpu.stage(module, data_root=data, weights_root=weights, project_root=project)


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

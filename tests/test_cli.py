"""Tests of the ``specvae`` command line (specvae.cli): parsing, typing of parameters, dispatch, lazy imports."""

from __future__ import annotations

import importlib.machinery
import subprocess
import sys
import types

import pandas as pd
import pytest

from specvae import book, cli


def test_help_is_fast_and_imports_nothing_heavy():
    code = (
        "import sys, contextlib, io\n"
        "import specvae.cli as c\n"
        "buf = io.StringIO()\n"
        "with contextlib.redirect_stdout(buf):\n"
        "    try:\n"
        "        c.main(['--help'])\n"
        "    except SystemExit as e:\n"
        "        assert e.code == 0\n"
        "heavy = [m for m in ('torch', 'papermill', 'pandas', 'jupytext', 'specvae.experiments', 'specvae.metrics')"
        " if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "print(buf.getvalue())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    for command in ("book", "run", "weights", "data"):
        assert command in out.stdout


def test_console_script_entry_point():
    out = subprocess.run([sys.executable, "-m", "specvae.cli", "book", "execute", "--help"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0
    assert "--preset" in out.stdout and "--smoke" in out.stdout and "--output-dir" in out.stdout


@pytest.fixture
def recorded_execute(monkeypatch):
    calls = []

    def fake_execute_chapters(chapters, preset, parameters, **kwargs):
        calls.append({"chapters": chapters, "preset": preset, "parameters": parameters, **kwargs})
        return []

    monkeypatch.setattr(book, "execute_chapters", fake_execute_chapters)
    return calls


def test_book_execute_types_parameters(recorded_execute):
    rc = cli.main(["book", "execute", "01", "spectral_bias", "--preset", "cpu", "-p", "steps", "20",
                   "-p", "lr", "1e-4", "-p", "ema", "true", "-p", "data", "faces", "-p", "sizes", "[32, 64]",
                   "--output-dir", "/tmp/x"])
    assert rc == 0
    (call,) = recorded_execute
    assert call["chapters"] == ["01", "spectral_bias"]
    assert call["preset"] == "cpu"
    assert call["parameters"] == {"steps": 20, "lr": 1e-4, "ema": True, "data": "faces", "sizes": [32, 64]}
    assert type(call["parameters"]["steps"]) is int and type(call["parameters"]["lr"]) is float
    assert call["output_dir"] == "/tmp/x"


def test_book_execute_smoke_flag(recorded_execute):
    assert cli.main(["book", "execute", "--smoke"]) == 0
    assert recorded_execute[0]["preset"] == "smoke" and recorded_execute[0]["chapters"] == []
    with pytest.raises(SystemExit, match="contradict"):
        cli.main(["book", "execute", "--smoke", "--preset", "gpu"])


def test_unknown_preset_lists_the_valid_ones(recorded_execute):
    with pytest.raises(SystemExit, match=r"smoke.*cpu.*gpu.*paper"):
        cli.main(["book", "execute", "--preset", "laptop"])
    assert recorded_execute == []


def test_book_execute_unknown_chapter_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "notebooks" / "00_spectral_bias.py").write_text("# %%\nx = 1\n")
    rc = cli.main(["book", "execute", "7", "--root", str(tmp_path)])
    assert rc == 1
    assert "unknown chapter '7'. Available chapters: 00_spectral_bias" in capsys.readouterr().err


@pytest.fixture
def fake_chapter_module(monkeypatch):
    """A chapter module ``specvae.experiments.fake_chapter`` whose run_all records its arguments."""
    calls = []
    name = "specvae.experiments.fake_chapter"
    module = types.ModuleType(name)
    module.__spec__ = importlib.machinery.ModuleSpec(name, None)

    def run_all(preset, *, workers=1, train=True, **overrides):
        calls.append({"preset": preset, "workers": workers, "train": train, **overrides})
        return pd.DataFrame({"loss": ["fft", "bce"], "rmse_ft": [1.25, 1.5]})

    module.run_all = run_all
    monkeypatch.setitem(sys.modules, name, module)
    return calls


def test_run_dispatches_to_run_all_and_prints_the_table(fake_chapter_module, capsys):
    rc = cli.main(["run", "fake_chapter", "--preset", "cpu", "--workers", "3", "--set", "steps=200",
                   "--set", "alpha=0.5", "--no-train"])
    assert rc == 0
    assert fake_chapter_module == [{"preset": "cpu", "workers": 3, "train": False, "steps": 200, "alpha": 0.5}]
    out = capsys.readouterr().out
    assert "rmse_ft" in out and "1.25" in out and "fft" in out


def test_run_reports_missing_results_without_a_traceback(fake_chapter_module, monkeypatch, capsys):
    class MissingResultError(LookupError):
        pass

    def run_all(preset, *, workers=1, train=True, **overrides):
        raise MissingResultError("2 runs have no stored result: ...")

    monkeypatch.setattr(sys.modules["specvae.experiments.fake_chapter"], "run_all", run_all)
    assert cli.main(["run", "fake_chapter", "--preset", "gpu", "--no-train"]) == 1
    assert "specvae run: MissingResultError: 2 runs have no stored result" in capsys.readouterr().err


def test_run_rejects_bad_set_and_unknown_chapter(fake_chapter_module):
    with pytest.raises(SystemExit, match="KEY=VALUE"):
        cli.main(["run", "fake_chapter", "--preset", "cpu", "--set", "steps"])
    with pytest.raises(SystemExit, match="--rerun-stale retrains runs and --no-train forbids training"):
        cli.main(["run", "fake_chapter", "--preset", "cpu", "--no-train", "--rerun-stale"])
    with pytest.raises(SystemExit, match="chapter 'no_such_chapter' unknown: chapters with a run module: "):
        cli.main(["run", "no_such_chapter", "--preset", "cpu"])
    assert fake_chapter_module == []


@pytest.mark.parametrize("name", ["07", "07_fake_chapter", "fake_chapter"])
def test_run_finds_the_module_by_chapter_number_or_name(fake_chapter_module, monkeypatch, name):
    monkeypatch.setattr(cli, "_module_chapters", lambda: {"07_fake_chapter": "specvae.experiments.fake_chapter"})
    assert cli.main(["run", name, "--preset", "smoke"]) == 0
    assert fake_chapter_module == [{"preset": "smoke", "workers": 1, "train": True}]


def test_module_chapters_reads_the_chapter_constants():
    from pathlib import Path

    found = cli._module_chapters()
    for chapter, module in found.items():
        path = Path(__file__).resolve().parents[1] / "specvae" / "experiments" / (module.rsplit(".", 1)[1] + ".py")
        assert f'CHAPTER = "{chapter}"' in path.read_text() or f"CHAPTER: str = \"{chapter}\"" in path.read_text()
    assert "specvae.experiments.store" not in found.values()  # infrastructure modules are not chapters


def test_weights_fetch_and_data_check_dispatch(monkeypatch, capsys):
    weights = types.ModuleType("specvae.metrics.weights")
    seen = {}

    def fetch_all(offline=False):
        seen["offline"] = offline
        print("lpips-alex     /cache/alex.pth")  # the real fetch_all reports each network itself
        return {"lpips-alex": {"path": "/cache/alex.pth"}, "fid-inception": {"path": "/cache/fid.pt"}}

    weights.fetch_all = fetch_all
    metrics = types.ModuleType("specvae.metrics")
    metrics.weights = weights
    monkeypatch.setitem(sys.modules, "specvae.metrics", metrics)
    monkeypatch.setitem(sys.modules, "specvae.metrics.weights", weights)
    assert cli.main(["weights", "fetch", "--offline"]) == 0
    assert seen == {"offline": True}
    out = capsys.readouterr().out
    assert out == "lpips-alex     /cache/alex.pth\n2 pretrained networks available\n"

    class WeightsError(RuntimeError):
        pass

    def missing(offline=False):
        raise WeightsError("lpips-alex not found; looked in /nowhere")

    weights.WeightsError = WeightsError
    weights.fetch_all = missing
    assert cli.main(["weights", "fetch"]) == 1
    assert "lpips-alex not found; looked in /nowhere" in capsys.readouterr().err

    data = types.ModuleType("specvae.data")
    roots = []

    def check_data(root=None):
        roots.append(root)
        return {"mnist": "found (70000 images)", "celeba": "missing"}

    data.check_data = check_data
    monkeypatch.setitem(sys.modules, "specvae.data", data)
    assert cli.main(["data", "check"]) == 0
    out = capsys.readouterr().out
    assert "mnist: found (70000 images)" in out and "celeba: missing" in out
    assert cli.main(["data", "check", "--root", "/data/here"]) == 0
    assert roots == [None, "/data/here"]


def test_book_status_reports_chapters(tmp_path, capsys):
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "notebooks" / "00_spectral_bias.py").write_text("# %%\nx = 1\n")
    (tmp_path / "book").mkdir()
    (tmp_path / "book" / "intro.md").write_text("# Intro\n")
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: book/intro\nchapters:\n  - file: book/00_spectral_bias\n")
    assert cli.main(["book", "status", "--root", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "00_spectral_bias: not executed yet" in out
    assert "book/00_spectral_bias: listed in _toc.yml but missing" in out

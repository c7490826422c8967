"""A fresh machine: stand-in data at smoke, missing data/weights skipped loudly (or failed under
SPECVAE_REQUIRE_DATA=1), the Watson-DFT parameters fetched like the other weights, hosted reruns of a chapter.

Nothing here needs the network: downloads are replaced by stand-ins that return the pinned bytes (or wrong ones).
"""

from __future__ import annotations

import ast
import re
import gzip
import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from specvae import hosted
from specvae.book import list_chapters, notebook_from_source
from specvae.cli import main as cli_main
from specvae.data import (DataFallbackWarning, DatasetNotFoundError, DataFormatError, fallback_summary, fallbacks,
                          load_dataset, smoke_fallback)
from specvae.data import fallback as fb
from specvae.metrics import weights as W

pytest_plugins = ["pytester"]

REPO = Path(__file__).resolve().parents[1]
WATSON_COMMIT = "3729dd1fc7e7082c0c66f7dc74d119a78948cb17"


@pytest.fixture
def nothing_here(tmp_path, monkeypatch) -> Path:
    """A machine with no data and no pretrained files: empty data root, cache and torch hub; no SPECVAE_WEIGHTS."""
    for var in ("SPECVAE_WEIGHTS", fb.REQUIRE_ENV):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("SPECVAE_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("SPECVAE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    (tmp_path / "data").mkdir()
    fb.clear_fallbacks()
    yield tmp_path
    fb.clear_fallbacks()


def _write_fake_mnist(root: Path, split: str, n: int = 5) -> torch.Tensor:
    prefix = "train" if split == "train" else "t10k"
    rng = np.random.default_rng(3)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    (root / "mnist").mkdir(parents=True, exist_ok=True)
    (root / "mnist" / f"{prefix}-images-idx3-ubyte.gz").write_bytes(gzip.compress(
        b"\x00\x00\x08\x03" + b"".join(d.to_bytes(4, "big") for d in (n, 28, 28)) + images.tobytes()))
    (root / "mnist" / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(
        b"\x00\x00\x08\x01" + n.to_bytes(4, "big") + bytes(range(n))))
    return torch.from_numpy(images)


# ------------------------------------------------------------------------------------------- stand-in data
def test_missing_data_set_is_replaced_by_the_generated_shapes_and_said(nothing_here):
    with pytest.warns(DataFallbackWarning, match=r"STAND-IN: data set 'mnist' \(train\) was not found under "):
        mnist = load_dataset("mnist", "train", limit=12, fallback="shapes")
    with pytest.warns(DataFallbackWarning, match="STAND-IN: data set 'faces'"):
        faces = load_dataset("faces", "test", limit=4, fallback="shapes")
    # shaped like the data set asked for (MNIST 1x32x32 by default, faces 3x64x64), and exactly the generated set
    assert mnist.shape == (12, 1, 32, 32) and faces.shape == (4, 3, 64, 64)
    assert torch.equal(mnist.images, load_dataset("shapes", "train", image_size=32, limit=12, channels=1).images)
    assert torch.equal(faces.images, load_dataset("shapes", "test", image_size=64, limit=4, channels=3).images)
    assert (mnist.name, mnist.stand_in, mnist.is_subset) == ("mnist", "shapes", True)
    assert mnist.notes.startswith("STAND-IN") and "specvae data check" in mnist.notes
    assert [(n.requested, n.split) for n in fallbacks()] == [("mnist", "train"), ("faces", "test")]
    summary = fallback_summary()
    assert "faces, mnist are not on this machine" in summary and "smoke preset only" in summary


def test_no_stand_in_unless_asked_or_when_required(nothing_here, monkeypatch):
    with pytest.raises(DatasetNotFoundError, match="not found"):
        load_dataset("mnist", "test")
    with pytest.raises(ValueError, match="fallback must be None .* or one of \\('shapes',\\)"):
        load_dataset("mnist", "test", fallback="mnist")
    monkeypatch.setenv(fb.REQUIRE_ENV, "1")
    with pytest.raises(DatasetNotFoundError, match="No stand-in: SPECVAE_REQUIRE_DATA=1"):
        load_dataset("mnist", "test", fallback="shapes")
    assert fallbacks() == []
    assert [smoke_fallback(p) for p in ("smoke", "cpu", "gpu", "paper", None)] == ["shapes", None, None, None, None]


def test_present_or_corrupt_data_is_never_replaced(nothing_here):
    root = nothing_here / "data"
    raw = _write_fake_mnist(root, "test")
    d = load_dataset("mnist", "test", image_size=28, fallback="shapes")
    assert d.stand_in is None and torch.equal(d.images[:, 0], raw)
    (root / "mnist" / "train-images-idx3-ubyte.gz").write_bytes(b"not gzip")
    (root / "mnist" / "train-labels-idx1-ubyte.gz").write_bytes(b"not gzip")
    with pytest.raises(DataFormatError):  # a broken file is an error to fix, not something to paper over
        load_dataset("mnist", "train", fallback="shapes")
    assert fallbacks() == []


# ------------------------------------------------------------------------------------------ Watson-DFT files
def _watson_bytes(color: str) -> bytes:
    try:
        return W.resolve(f"watson-{color}", fetch=False).read_bytes()
    except W.WeightsNotFoundError:
        pytest.fail(f"watson-{color} is missing (the weights marker should have skipped this test)")


def test_watson_files_are_pinned_to_the_authors_commit():
    for color in ("gray", "rgb"):
        spec = W.WEIGHTS[f"watson-{color}"]
        assert spec.url == (f"https://raw.githubusercontent.com/SteffenCzolbe/PerceptualSimilarity/{WATSON_COMMIT}"
                            f"/src/loss/weights/{color}_watson_fft_trial0.pth")
        assert spec.kind == "file" and len(spec.sha256) == 64 and spec.pypi_requirement is None
        assert spec.cache_name == f"watson/{color}_watson_fft_trial0.pth"  # where WatsonDFTLoss looks


@pytest.mark.weights("watson-gray", "watson-rgb")
def test_watson_pins_are_the_files_the_book_used():
    for color in ("gray", "rgb"):
        data = _watson_bytes(color)
        assert hashlib.sha256(data).hexdigest() == W.WEIGHTS[f"watson-{color}"].sha256


@pytest.fixture
def watson_gray_file(tmp_path) -> Path:
    """A copy of the verified gray Watson file, taken before the machine is emptied."""
    try:
        src = W.resolve("watson-gray", fetch=False)
    except W.WeightsNotFoundError:
        pytest.fail("watson-gray is missing (the weights marker should have skipped this test)")
    dst = tmp_path / "have" / "gray_watson_fft_trial0.pth"
    dst.parent.mkdir()
    shutil.copyfile(src, dst)
    return dst


@pytest.mark.weights("watson-gray")
def test_watson_download_is_verified_and_cached(watson_gray_file, nothing_here, monkeypatch):
    good = watson_gray_file.read_bytes()
    served = {"bytes": good, "urls": []}

    class Response:
        def __init__(self, url):
            served["urls"].append(url)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def read(self):
            return served["bytes"]

    monkeypatch.setattr(W.urllib.request, "urlopen", lambda url, timeout: Response(url))
    # tampered bytes from the URL are refused and nothing is cached
    served["bytes"] = good[:-1] + bytes([good[-1] ^ 1])
    with pytest.raises(W.WeightsNotFoundError, match="pinned") as err:
        W.fetch_all(names=("watson-gray",), verbose=False)
    assert err.value.report == {}
    cached = nothing_here / "cache" / "weights" / "watson" / "gray_watson_fft_trial0.pth"
    assert not cached.exists()
    served["bytes"] = good
    report = W.fetch_all(names=("watson-gray",), verbose=False)
    assert served["urls"][-1] == W.WEIGHTS["watson-gray"].url
    assert report["watson-gray"]["path"] == str(cached) and cached.read_bytes() == good
    from specvae.losses import WatsonDFTLoss

    x = torch.rand(1, 1, 16, 16)
    assert WatsonDFTLoss.pretrained("gray")(x, x).item() < WatsonDFTLoss.pretrained("gray")(x.flip(-1), x).item()


@pytest.mark.weights("watson-gray")
def test_fetch_from_a_folder_copies_with_the_hash_check(watson_gray_file, nothing_here, monkeypatch):
    monkeypatch.setattr(W.urllib.request, "urlopen", lambda *a, **k: pytest.fail("no download expected"))
    report = W.fetch_all(offline=True, names=("watson-gray",), source_dir=watson_gray_file.parent, verbose=False)
    assert report["watson-gray"]["source"] == f"folder {watson_gray_file}"
    cached = Path(report["watson-gray"]["path"])
    assert cached.read_bytes() == watson_gray_file.read_bytes() and cached.is_relative_to(nothing_here / "cache")
    # a wrong file in the user's folder is an error, and the cached copy stays the verified one
    watson_gray_file.write_bytes(b"x" + watson_gray_file.read_bytes()[1:])
    with pytest.raises(W.WeightsChecksumError, match="refused"):
        W.fetch_all(offline=True, names=("watson-gray",), source_dir=watson_gray_file.parent, verbose=False)
    assert W.file_sha256(cached) == W.WEIGHTS["watson-gray"].sha256


def test_offline_fetch_says_where_it_looked(nothing_here, capsys):
    with pytest.raises(W.WeightsNotFoundError) as err:
        W.fetch_all(offline=True, names=("watson-gray", "watson-rgb"))
    msg = str(err.value)
    assert msg.startswith("2 of 2 pretrained files could not be had (offline): watson-gray, watson-rgb")
    for color in ("gray", "rgb"):
        assert str(nothing_here / "cache" / "weights" / "watson" / f"{color}_watson_fft_trial0.pth") in msg
        assert f"{W.WEIGHTS[f'watson-{color}'].url} (skipped: offline)" in msg
    assert "specvae weights fetch --from DIR" in msg and "PyPI" not in msg
    assert "watson-gray    MISSING" in capsys.readouterr().out


def test_cli_weights_fetch_from_and_data_check(nothing_here, monkeypatch, capsys):
    seen = {}

    def fetch_all(offline=False, source_dir=None):
        seen.update(offline=offline, source_dir=source_dir)
        err = W.WeightsNotFoundError("1 of 2 pretrained files could not be had: watson-rgb. Looked at: /x")
        err.report = {"watson-gray": {}}
        raise err

    monkeypatch.setattr(W, "fetch_all", fetch_all)
    assert cli_main(["weights", "fetch", "--from", "/some/folder"]) == 1
    out, errout = capsys.readouterr()
    assert seen == {"offline": False, "source_dir": "/some/folder"}
    assert "1 pretrained files available: watson-gray" in out and "Looked at: /x" in errout
    assert cli_main(["data", "check"]) == 0
    out = capsys.readouterr().out
    assert f"data root: {nothing_here / 'data'}" in out
    assert "watson-rgb        MISSING" in out and "lpips-alex        MISSING" in out
    assert ("missing for the book and its tests: mnist, cifar10, faces, imagenet-samples, lpips-alex, lpips-vgg, "
            "fid-inception, watson-gray, watson-rgb.") in out


# ------------------------------------------------------------------------------------ tests/conftest.py itself
INNER_TESTS = '''
import pytest

@pytest.mark.data("mnist")
def test_needs_mnist():
    pass

@pytest.mark.weights("watson-gray")
def test_needs_watson():
    pass

@pytest.mark.data("mnist", "faces")
@pytest.mark.parametrize("dataset", ["mnist", "faces"])
def test_per_data_set(dataset):
    pass

def test_needs_nothing():
    pass
'''


@pytest.fixture
def inner(pytester, nothing_here):
    pytester.makeconftest((REPO / "tests" / "conftest.py").read_text(encoding="utf-8"))
    pytester.makeini("[pytest]\nmarkers =\n    data\n    weights\n"
                     "addopts = -p no:cacheprovider --strict-markers --import-mode=importlib\n")
    pytester.makepyfile(test_inner=INNER_TESTS)
    return pytester


def test_conftest_skips_loudly_and_lists_what_is_missing(inner, nothing_here):
    _write_fake_mnist(nothing_here / "data", "train")
    _write_fake_mnist(nothing_here / "data", "test")
    result = inner.runpytest("-rs")
    result.assert_outcomes(passed=3, skipped=2)  # mnist is here: its tests run; faces and Watson are not
    result.stdout.fnmatch_lines([
        "*= data sets and pretrained files =*",
        "Missing on this machine (skipped the tests that need them; set SPECVAE_REQUIRE_DATA=1*",
        "  faces  * 1 test skipped",
        "*copy any of the shards faces64-00.zip*",
        "  watson-gray * 1 test skipped",
        "*specvae weights fetch*--from DIR*",
        "Check this machine with `specvae data check`*",
    ])
    assert result.ret == 0


def test_conftest_fails_them_under_require_data(inner, monkeypatch):
    monkeypatch.setenv(fb.REQUIRE_ENV, "1")
    result = inner.runpytest()
    result.assert_outcomes(passed=1, errors=4)
    result.stdout.fnmatch_lines(["*SPECVAE_REQUIRE_DATA=1 and this test needs what this machine lacks: mnist*",
                                 "Missing on this machine (FAILED the tests that need them):"])
    assert result.ret != 0


def test_conftest_rejects_an_unknown_name(inner):
    inner.makepyfile(test_typo="import pytest\n@pytest.mark.data('mnsit')\ndef test_x():\n    pass\n")
    result = inner.runpytest("test_typo.py")
    assert result.ret != 0
    assert "names nothing known; valid names: shapes, mnist" in result.stderr.str() + result.stdout.str()


# ------------------------------------------------------------------------------------ rerunning elsewhere
def _first_code_cell(source: Path):
    return next(c for c in notebook_from_source(source).cells if c.cell_type == "code")


@pytest.mark.parametrize("chapter", list_chapters(REPO), ids=lambda c: c.name)
def test_every_chapter_opens_with_the_hidden_install_cell(chapter):
    cell = _first_code_cell(chapter.source)
    assert "remove-cell" in cell.metadata.get("tags", []), f"{chapter.name}: tag the install cell remove-cell"
    line = cell.source.strip()
    assert "\n" not in line, f"{chapter.name}: the install cell is one line"
    call = ast.parse(line).body[-1].value  # specvae.hosted.prepare([...], [...])
    datasets, weights = (ast.literal_eval(a) for a in call.args)
    extras = re.search(r"specvae\[([\w,]+)\]", line).group(1).split(",")
    assert line == hosted.install_cell(datasets, weights, extras), f"{chapter.name}: write the cell with install_cell()"
    hosted.prepare(datasets, weights, download=False)  # every name it passes is known (else ValueError)


def test_install_cell_installs_nothing_where_specvae_is(nothing_here, monkeypatch, capsys):
    import subprocess

    monkeypatch.setattr(subprocess, "run", lambda *a, **k: pytest.fail(f"pip should not run: {a}"))
    exec(compile(hosted.install_cell(["shapes"], []), "<install cell>", "exec"), {})
    assert capsys.readouterr().out == ""  # nothing missing: nothing said


def test_prepare_says_before_training_what_cannot_be_had(nothing_here, capsys):
    out = hosted.prepare(["mnist", "faces"], ["watson-gray"], download=False)
    assert out == {"missing_data": ["mnist", "faces"], "missing_weights": ["watson-gray"]}
    text = capsys.readouterr().out
    assert "data set 'faces' is not under" in text and "it cannot be downloaded here" in text
    assert "data set 'mnist' is not under" in text and "can be downloaded here: rerun with download=True" in text
    assert "At the smoke preset the chapter runs on generated Shapes images in place of mnist, faces" in text
    assert "pretrained file 'watson-gray' is missing" in text
    with pytest.raises(ValueError, match="unknown names \\['mnsit'\\]"):
        hosted.prepare(["mnsit"])


def test_prepare_downloads_on_a_hosted_runtime(nothing_here, monkeypatch, capsys):
    from specvae.data import loaders

    calls = []

    def fake_download(name, root, fn):  # stands in for torchvision's downloader: writes the files it would
        calls.append(name)
        _write_fake_mnist(root, "train")
        _write_fake_mnist(root, "test")

    monkeypatch.setattr(loaders, "_torchvision_download", fake_download)
    monkeypatch.setenv("COLAB_RELEASE_TAG", "test")
    assert hosted.is_hosted()
    out = hosted.prepare(["mnist", "faces"])
    assert calls == ["mnist"] and out == {"missing_data": ["faces"], "missing_weights": []}
    assert "data set 'faces' is not under" in capsys.readouterr().out


def test_launch_buttons_open_chapters_from_the_repository():
    import yaml

    config = yaml.safe_load((REPO / "_config.yml").read_text(encoding="utf-8"))
    assert config["repository"]["url"] == hosted.REPOSITORY
    assert config["launch_buttons"]["colab_url"] == "https://colab.research.google.com"
    assert f"git+{hosted.REPOSITORY}" in hosted.install_cell()

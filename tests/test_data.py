"""Tests of specvae.data: the Shape generator, the loaders, the cache, TensorBatcher and the errors.

Tests marked ``data`` read the real data sets under ``SPECVAE_DATA``: skipped when missing (failed with
``SPECVAE_REQUIRE_DATA=1``; see tests/conftest.py).
Everything else builds its own small files in a temporary folder.
"""

from __future__ import annotations

import gzip
import json
import os
import pickle
import shutil
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from specvae.data import (DATASETS, DataFormatError, DatasetNotFoundError, ImageData, TensorBatcher, check_data,
                          format_check, generate_shapes, load_dataset, resize_images, shape_parameters)
from specvae.data.shapes import CIRCLE, SQUARE

# cv2's filled circles (LINE_8, integer centre), pixels per row from the top row down, for radii 3..8.
# Golden values computed once with opencv-python-headless 5.0.0: cv2.circle(img, (16, 16), r, 255, -1) on a 32x32
# image, then (img[16 + d] > 0).sum() for d = -r..r.
CV2_CIRCLE_ROW_WIDTHS = {
    3: [1, 5, 5, 7, 5, 5, 1],
    4: [1, 5, 7, 7, 9, 7, 7, 5, 1],
    5: [1, 7, 9, 9, 9, 11, 9, 9, 9, 7, 1],
    6: [1, 7, 9, 11, 11, 11, 13, 11, 11, 11, 9, 7, 1],
    7: [1, 7, 9, 11, 13, 13, 13, 15, 13, 13, 13, 11, 9, 7, 1],
    8: [1, 7, 11, 13, 13, 15, 15, 15, 17, 15, 15, 15, 13, 13, 11, 7, 1],
}

MNIST_TRAIN_CLASS_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]  # LeCun et al. 1998
MNIST_TEST_CLASS_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.fixture
def real_root() -> Path:
    value = os.environ.get("SPECVAE_DATA", "").strip()
    if not value or not Path(value).is_dir():
        pytest.fail("this test needs the real data sets: set SPECVAE_DATA to the folder holding mnist/, "
                    "cifar10-subset/, faces64/ and imagenet-samples/ (see the data README)")
    return Path(value)


@pytest.fixture
def tmp_cache(tmp_path, monkeypatch) -> Path:
    """A private decoded-image cache (so fake files never touch the user's cache)."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("SPECVAE_CACHE", str(cache))
    return cache


# ------------------------------------------------------------------------------------------------ Shapes
def _expected_area(kind: int, cx: int, cy: int, size: int, s: int = 32) -> int:
    """Pixels of the cv2 shape inside an s x s image, from the golden cv2 rows (circle) or the inclusive box."""
    if kind == SQUARE:
        return (min(cx + size, s - 1) - cx + 1) * (min(cy + size, s - 1) - cy + 1)
    area = 0
    for d, width in zip(range(-size, size + 1), CV2_CIRCLE_ROW_WIDTHS[size]):
        if 0 <= cy + d < s:
            half = width // 2
            area += min(cx + half, s - 1) - max(cx - half, 0) + 1
    return area


def test_circle_rasteriser_matches_cv2_golden_rows():
    for r, widths in CV2_CIRCLE_ROW_WIDTHS.items():
        yy, xx = np.mgrid[0:32, 0:32]
        mask = (xx - 16) ** 2 + (yy - 16) ** 2 <= r * r
        assert [int(mask[16 + d].sum()) for d in range(-r, r + 1)] == widths


def test_shapes_deterministic_and_seeded():
    a, la = generate_shapes(500, seed=3)
    b, lb = generate_shapes(500, seed=3)
    assert torch.equal(a, b) and torch.equal(la, lb)
    c, _ = generate_shapes(500, seed=4)
    assert (a != c).flatten(1).any(1).float().mean() > 0.95  # different seeds: different images
    # image i depends only on (seed, split, i): a window equals the same rows of a longer run
    w, lw = generate_shapes(50, seed=3, start=123)
    assert torch.equal(w, a[123:173]) and torch.equal(lw, la[123:173])
    # train and test are different streams
    t, _ = generate_shapes(500, seed=3, split="test")
    assert (a != t).flatten(1).any(1).float().mean() > 0.95
    assert not any(torch.equal(t[i], a[i]) for i in range(50))


def test_shapes_statistics():
    n = 20_000
    x, labels = generate_shapes(n, seed=0)
    p = shape_parameters(n, seed=0)
    assert x.shape == (n, 1, 32, 32) and x.dtype == torch.uint8
    assert torch.equal(labels, torch.from_numpy(p["kind"]))
    frac_circle = (labels == CIRCLE).float().mean().item()
    assert abs(frac_circle - 0.5) < 0.02  # binomial sd 0.0035
    # IRMAE's ranges, every value used, each about equally often
    for key, lo, hi in (("cx", 8, 24), ("cy", 8, 24), ("size", 3, 8)):
        values, counts = np.unique(p[key], return_counts=True)
        assert values.tolist() == list(range(lo, hi + 1))
        expected = n / len(values)
        assert np.all(np.abs(counts - expected) < 6 * np.sqrt(expected))
    colour = p["colour"]
    assert colour.min() >= 0 and colour.max() < 1 and abs(colour.mean() - 0.5) < 0.01
    # every image: background exactly 0, the shape one flat level = round(255 * luma), area as cv2 draws it
    levels = np.rint(colour @ np.array([0.299, 0.587, 0.114]) * 255).astype(np.uint8)
    img = x[:, 0].numpy()
    for i in range(2000):
        lv = levels[i]
        if lv == 0:
            assert img[i].max() == 0
            continue
        assert set(np.unique(img[i]).tolist()) == {0, int(lv)}
        assert (img[i] > 0).sum() == _expected_area(p["kind"][i], p["cx"][i], p["cy"][i], p["size"][i])
    areas = (img > 0).reshape(n, -1).sum(1)
    assert areas.min() >= 1 and areas.max() <= 197  # largest: a radius-8 circle (cv2) or a 9x9 square (81)
    sq = labels.numpy() == SQUARE
    assert areas[sq & (levels > 0)].max() <= 81 and areas[sq & (levels > 0)].min() >= 1


def test_shapes_gray_is_luma_of_colour_version():
    rgb, l1 = generate_shapes(300, seed=7, gray=False)
    gray, l2 = generate_shapes(300, seed=7, gray=True)
    assert rgb.shape == (300, 3, 32, 32) and torch.equal(l1, l2)
    luma = (rgb.double() * torch.tensor([0.299, 0.587, 0.114], dtype=torch.double).view(1, 3, 1, 1)).sum(1, True)
    assert (luma - gray.double()).abs().max() <= 1.0  # uint8 rounding of colour and of luma
    assert ((gray > 0) <= (rgb.amax(1, keepdim=True) > 0)).all()  # same shape and place, no new pixels


def test_shapes_fast_and_other_sizes():
    t0 = time.perf_counter()
    x, _ = generate_shapes(50_000)
    elapsed = time.perf_counter() - t0
    assert x.shape == (50_000, 1, 32, 32)
    assert elapsed < 5.0, f"50k Shape images took {elapsed:.2f} s (about 0.5 s expected)"
    y, _ = generate_shapes(10, image_size=64)
    assert y.shape == (10, 1, 64, 64)
    with pytest.raises(ValueError, match="image_size"):
        generate_shapes(10, image_size=4)
    with pytest.raises(ValueError, match="split"):
        generate_shapes(10, split="val")


def test_load_shapes():
    d = load_dataset("shapes", "test", limit=64, seed=1)
    assert isinstance(d, ImageData) and d.shape == (64, 1, 32, 32) and d.split == "test"
    assert d.class_names == ["circle", "square"] and "Shape" in d.notes
    x, lab = generate_shapes(64, seed=1, split="test")
    assert torch.equal(d.images, x) and torch.equal(d.labels, lab)
    c = load_dataset("shapes", limit=8, channels=3)
    assert c.shape == (8, 3, 32, 32)
    full = load_dataset("shapes", "test")
    assert len(full) == 10_000 and not full.is_subset


# ------------------------------------------------------------------------------------------------ resizing
def test_resize_matches_pil_bilinear():
    from PIL import Image

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (3, 3, 64, 64), dtype=np.uint8)
    for size in (32, 48, 16):
        ours = resize_images(torch.from_numpy(x), size).numpy().astype(int)
        pil = np.stack([np.asarray(Image.fromarray(im.transpose(1, 2, 0)).resize((size, size), Image.BILINEAR))
                        .transpose(2, 0, 1) for im in x]).astype(int)
        assert np.abs(ours - pil).max() <= 1
    const = torch.full((2, 1, 40, 40), 77, dtype=torch.uint8)
    assert torch.equal(resize_images(const, 10), torch.full((2, 1, 10, 10), 77, dtype=torch.uint8))
    # non-square inputs are centre-cropped first
    rect = torch.zeros((1, 1, 40, 20), dtype=torch.uint8)
    rect[..., 10:30, :] = 200
    assert torch.equal(resize_images(rect, 20), torch.full((1, 1, 20, 20), 200, dtype=torch.uint8))


def test_gray_conversion_matches_pil():
    from PIL import Image

    from specvae.data.base import convert_channels

    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (4, 3, 16, 16), dtype=np.uint8)
    ours = convert_channels(torch.from_numpy(x), 1, name="t").numpy()[:, 0].astype(int)
    pil = np.stack([np.asarray(Image.fromarray(im.transpose(1, 2, 0)).convert("L")) for im in x]).astype(int)
    assert np.abs(ours - pil).max() <= 1  # PIL rounds its fixed-point BT.601 luma slightly differently
    rgb = convert_channels(torch.from_numpy(x[:, :1]), 3, name="t")
    assert rgb.shape == (4, 3, 16, 16) and torch.equal(rgb[:, 2], torch.from_numpy(x[:, 0]))


# ------------------------------------------------------------------------------------------------ TensorBatcher
def test_batcher_exactly_resumable_across_epochs():
    images = torch.arange(10 * 2 * 2, dtype=torch.uint8).view(10, 1, 2, 2)
    a = TensorBatcher(images, 3, seed=5)
    [next(a) for _ in range(4)]  # k = 4 batches: crosses the first epoch (3 batches per epoch)
    state = json.loads(json.dumps(a.state_dict()))  # plain, JSON-safe
    expected = [next(a) for _ in range(7)]  # m = 7 more, over two more epoch boundaries
    b = TensorBatcher(images.clone(), 3, seed=0)  # a fresh batcher (even with another seed)
    b.load_state_dict(state)
    got = [next(b) for _ in range(7)]
    assert all(torch.equal(e, g) for e, g in zip(expected, got))
    # an uninterrupted run gives the same stream
    c = TensorBatcher(images, 3, seed=5)
    stream = [next(c) for _ in range(11)]
    assert all(torch.equal(e, g) for e, g in zip(expected, stream[4:]))


def test_batcher_epochs_are_permutations():
    n = 23
    images = torch.arange(n, dtype=torch.uint8).view(n, 1, 1, 1)
    b = TensorBatcher(images, 5, seed=1, drop_last=False)
    assert len(b) == 5
    epochs = []
    for _ in range(3):
        vals = torch.cat([next(b).flatten() for _ in range(5)])
        epochs.append((vals * 255).round().long())
        assert sorted(epochs[-1].tolist()) == list(range(n))  # each image exactly once per epoch
    assert not torch.equal(epochs[0], epochs[1])  # reshuffled every epoch
    d = TensorBatcher(images, 5, seed=1, drop_last=True)
    assert len(d) == 4
    seen = torch.cat([next(d).flatten() for _ in range(4)])
    assert seen.numel() == 20 and len(set((seen * 255).round().long().tolist())) == 20
    other = TensorBatcher(images, 5, seed=2, drop_last=False)
    assert not torch.equal(torch.cat([next(other).flatten() for _ in range(5)]), epochs[0].float() / 255)


def test_batcher_values_and_errors():
    images = torch.randint(0, 256, (16, 3, 4, 4), dtype=torch.uint8)
    b = TensorBatcher(ImageData(images=images), 4, device="cpu", seed=0)
    x = next(b)
    assert x.dtype == torch.float32 and x.shape == (4, 3, 4, 4) and 0 <= x.min() and x.max() <= 1
    idx = TensorBatcher(images, 4, seed=0).next_indices()
    assert torch.equal(x, images[idx].float() / 255)
    with pytest.raises(TypeError, match="uint8"):
        TensorBatcher(images.float(), 4)
    with pytest.raises(ValueError, match="batch_size"):
        TensorBatcher(images, 32)
    with pytest.raises(ValueError, match="batch_size"):
        b.load_state_dict({**b.state_dict(), "batch_size": 8})


def test_package_docstring_example_runs():
    import doctest

    import specvae.data

    result = doctest.testmod(specvae.data, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 4 and result.failed == 0


def test_imagedata_container():
    images = torch.randint(0, 256, (6, 1, 8, 8), dtype=torch.uint8)
    d = ImageData(images=images, labels=torch.arange(6), name="x", split="train")
    assert len(d) == 6 and d.float().dtype == torch.float32
    assert torch.allclose(d.float(2), images[2:3].float() / 255)
    assert d.to("cpu").images.dtype == torch.uint8
    s = d.subset([1, 3])
    assert s.is_subset and torch.equal(s.labels, torch.tensor([1, 3]))
    with pytest.raises(DataFormatError, match="uint8"):
        ImageData(images=images.float())
    with pytest.raises(DataFormatError, match="labels"):
        ImageData(images=images, labels=torch.arange(5))


# ------------------------------------------------------------------------------------------------ errors
def test_unknown_name_lists_valid_names():
    with pytest.raises(ValueError) as err:
        load_dataset("cifar100")
    for name in DATASETS:
        assert name in str(err.value)


def test_bad_arguments(tmp_path):
    for bad in (0, -3, 3.5, "32", True):
        with pytest.raises(ValueError, match="image_size"):
            load_dataset("shapes", image_size=bad)
    with pytest.raises(ValueError, match="channels"):
        load_dataset("shapes", channels=2)
    with pytest.raises(ValueError, match="limit"):
        load_dataset("shapes", limit=0)
    with pytest.raises(ValueError, match="valid splits"):
        load_dataset("shapes", split="validation")
    with pytest.raises(ValueError, match="test"):
        load_dataset("imagenet-samples", "train", root=tmp_path)
    with pytest.raises(ValueError, match="mnist_mode"):
        load_dataset("mnist", root=tmp_path, mnist_mode="crop")


def test_missing_data_names_paths_and_env(tmp_path, monkeypatch, tmp_cache):
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("SPECVAE_DATA", str(empty))
    with pytest.raises(DatasetNotFoundError) as err:
        load_dataset("mnist")
    msg = str(err.value)
    assert "SPECVAE_DATA" in msg and str(empty) in msg and "train-images-idx3-ubyte.gz" in msg
    assert "download=True" in msg
    for name, needle in (("cifar10", "cifar10-subset.npz"), ("faces", "faces64-00.zip"),
                         ("imagenet-samples", "imagenet-samples-128.zip"), ("celeba", "img_align_celeba"),
                         ("ffhq", "ffhq"), ("lsun-church", "lsun-church/train")):
        with pytest.raises(DatasetNotFoundError) as err:
            load_dataset(name, "test")
        assert needle in str(err.value) and "SPECVAE_DATA" in str(err.value), name


def test_download_failure_is_clear(tmp_path, monkeypatch, tmp_cache):
    import torchvision.datasets

    def offline(*args, **kwargs):
        raise OSError("<urlopen error [Errno -3] Temporary failure in name resolution>")

    monkeypatch.setattr(torchvision.datasets, "MNIST", offline)
    with pytest.raises(DatasetNotFoundError, match="download of 'mnist'.*failed.*copy the files"):
        load_dataset("mnist", root=tmp_path, download=True)


def test_corrupt_files_named(tmp_path, tmp_cache):
    (tmp_path / "faces64").mkdir()
    bad_zip = tmp_path / "faces64" / "faces64-00.zip"
    bad_zip.write_bytes(b"this is not a zip file" * 100)
    with pytest.raises(DataFormatError) as err:
        load_dataset("faces", root=tmp_path, progress=False)
    assert str(bad_zip) in str(err.value) and "corrupt" in str(err.value)
    (tmp_path / "mnist").mkdir()
    bad_gz = tmp_path / "mnist" / "train-images-idx3-ubyte.gz"
    bad_gz.write_bytes(gzip.compress(b"\x00\x00\x08\x03" + (100).to_bytes(4, "big") + bytes(8) + bytes(50)))
    (tmp_path / "mnist" / "train-labels-idx1-ubyte.gz").write_bytes(
        gzip.compress(b"\x00\x00\x08\x01" + (100).to_bytes(4, "big") + bytes(100)))
    with pytest.raises(DataFormatError) as err:
        load_dataset("mnist", root=tmp_path)
    assert str(bad_gz) in str(err.value) and "truncated" in str(err.value)


# ------------------------------------------------------------------------------------------------ fake data
def _write_cifar_batches(folder: Path, per_batch: int = 6) -> dict[str, np.ndarray]:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    out = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
        labels = rng.integers(0, 10, per_batch).tolist()
        with open(folder / name, "wb") as f:
            pickle.dump({"data": data, "labels": labels}, f)
        out[name] = data
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
                                     "truck"]}, f)
    return out


def test_cifar_full_batches_preferred_and_upsampling(tmp_path, tmp_cache):
    raw = _write_cifar_batches(tmp_path / "cifar-10-batches-py")
    np.savez(tmp_path / "cifar10-subset.npz", x_train=np.zeros((2, 3, 32, 32), np.uint8), y_train=np.zeros(2),
             x_test=np.zeros((1, 3, 32, 32), np.uint8), y_test=np.zeros(1))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the full set must not warn about a subset
        d = load_dataset("cifar10", root=tmp_path)
    assert len(d) == 30 and not d.is_subset and d.class_names[0] == "airplane"
    # row-major 3072 = R plane (32x32), G plane, B plane
    assert torch.equal(d.images[0], torch.from_numpy(raw["data_batch_1"][0].reshape(3, 32, 32)))
    assert torch.equal(d.images[6], torch.from_numpy(raw["data_batch_2"][0].reshape(3, 32, 32)))
    t = load_dataset("cifar10", "test", root=tmp_path, image_size=16, channels=1)
    assert t.shape == (6, 1, 16, 16)
    with pytest.raises(ValueError, match="allow_upsample"):
        load_dataset("cifar10", root=tmp_path, image_size=64)
    assert load_dataset("cifar10", root=tmp_path, image_size=64, allow_upsample=True).shape == (30, 3, 64, 64)


def _write_images(folder: Path, names: list[str], size: tuple[int, int], seed: int = 0) -> None:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for n in names:
        arr = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
        Image.fromarray(arr).save(folder / n)


def test_image_folder_datasets(tmp_path, tmp_cache):
    _write_images(tmp_path / "ffhq" / "thumbnails128x128", ["00000.png", "00001.png", "60000.png"], (128, 128))
    tr = load_dataset("ffhq", root=tmp_path, image_size=64, progress=False)
    te = load_dataset("ffhq", "test", root=tmp_path, image_size=64, progress=False)
    assert tr.shape == (2, 3, 64, 64) and te.shape == (1, 3, 64, 64)
    assert tr.indices.tolist() == [0, 1] and te.indices.tolist() == [60000]
    with pytest.raises(ValueError, match="allow_upsample"):
        load_dataset("ffhq", root=tmp_path, progress=False)  # default 256 > 128 px files
    _write_images(tmp_path / "celeba" / "img_align_celeba", ["000001.jpg", "162771.jpg", "182638.jpg"], (178, 218))
    for split, number in (("train", 1), ("valid", 162771), ("test", 182638)):
        c = load_dataset("celeba", split, root=tmp_path, progress=False)
        assert c.shape == (1, 3, 64, 64) and c.indices.tolist() == [number]
    # with list_eval_partition.txt present, it decides the split (here against the file-number ranges)
    (tmp_path / "celeba" / "list_eval_partition.txt").write_text("000001.jpg 2\n162771.jpg 0\n182638.jpg 0\n")
    assert load_dataset("celeba", "test", root=tmp_path, progress=False).indices.tolist() == [1]
    assert load_dataset("celeba", "train", root=tmp_path, progress=False).indices.tolist() == [162771, 182638]
    with pytest.raises(DatasetNotFoundError, match="No image of the valid split"):
        load_dataset("celeba", "valid", root=tmp_path, progress=False)
    _write_images(tmp_path / "lsun-church" / "train", ["a.webp", "b.webp"], (341, 256))
    _write_images(tmp_path / "lsun-church" / "test", ["c.webp"], (256, 300))
    assert load_dataset("lsun-church", root=tmp_path, progress=False).shape == (2, 3, 256, 256)
    assert load_dataset("lsun-church", "test", root=tmp_path, image_size=32, progress=False).shape == (1, 3, 32, 32)


def test_check_data_reports_missing(tmp_path):
    rows = check_data(tmp_path)
    assert [r["name"] for r in rows] == list(DATASETS)
    by = {r["name"]: r for r in rows}
    assert by["shapes"]["present"]
    for name in ("mnist", "cifar10", "faces", "imagenet-samples", "celeba", "ffhq", "lsun-church"):
        assert not by[name]["present"] and by[name]["action"], name
    text = format_check(rows)
    assert "MISSING" in text and str(tmp_path) in text and rows.to_string() == text


# ------------------------------------------------------------------------------------------------ real data
@pytest.mark.data("mnist")
def test_mnist_counts_and_pixel_statistics(real_root):
    tr = load_dataset("mnist", "train", root=real_root, image_size=28)
    te = load_dataset("mnist", "test", root=real_root, image_size=28)
    assert tr.shape == (60_000, 1, 28, 28) and te.shape == (10_000, 1, 28, 28)
    x = tr.float()
    assert round(x.mean().item(), 4) == 0.1307 and round(x.std().item(), 4) == 0.3081
    assert torch.bincount(tr.labels).tolist() == MNIST_TRAIN_CLASS_COUNTS
    assert torch.bincount(te.labels).tolist() == MNIST_TEST_CLASS_COUNTS
    # default: 32x32 by resizing as IRMAE (bilinear keeps the mean); "pad" keeps the digits and adds a zero border
    r = load_dataset("mnist", "test", root=real_root)
    assert r.shape == (10_000, 1, 32, 32) and "resized" in r.notes
    assert abs(r.float().mean().item() - te.float().mean().item()) < 0.003
    p = load_dataset("mnist", "test", root=real_root, mnist_mode="pad")
    assert torch.equal(p.images[:, :, 2:30, 2:30], te.images) and p.images[:, :, :2].max() == 0
    s = load_dataset("mnist", "test", root=real_root, limit=100, seed=1)
    assert s.is_subset and len(s) == 100 and torch.equal(s.images, r.images[s.indices])


@pytest.mark.data("mnist")
def test_mnist_torchvision_layout(real_root, tmp_path, tmp_cache):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for f in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        os.symlink(real_root / "mnist" / f, raw / f)
    d = load_dataset("mnist", "test", root=tmp_path, image_size=28)
    assert len(d) == 10_000 and str(raw) in d.source


@pytest.mark.data("cifar10")
def test_cifar10_subset(real_root):
    with pytest.warns(UserWarning, match="SUBSET"):
        tr = load_dataset("cifar10", "train", root=real_root)
    with pytest.warns(UserWarning, match="SUBSET"):
        te = load_dataset("cifar10", "test", root=real_root)
    assert tr.shape == (5_085, 3, 32, 32) and te.shape == (1_017, 3, 32, 32)
    assert tr.is_subset and te.is_subset and "SUBSET" in tr.notes and "NOT comparable" in tr.notes
    assert tr.class_names[:3] == ["airplane", "automobile", "bird"] and len(tr.class_names) == 10
    counts = torch.bincount(tr.labels, minlength=10)
    assert counts.sum() == 5_085 and counts.min() > 400 and counts.max() < 600
    assert sorted(torch.unique(te.labels).tolist()) == list(range(10))
    assert 0.3 < tr.float().mean().item() < 0.6  # natural RGB images, not blank or noise


@pytest.mark.data("imagenet-samples")
def test_imagenet_samples(real_root):
    d = load_dataset("imagenet-samples", "test", root=real_root, progress=False)
    assert d.shape == (1_000, 3, 128, 128)
    assert torch.equal(d.labels, torch.arange(1_000))  # one per class, sorted WordNet ids
    assert d.class_names[0] == "tench" and d.captions[0] == "a photo of a tench"
    assert d.captions[2] == "a photo of a great white shark"
    small = load_dataset("imagenet-samples", "test", root=real_root, image_size=64, progress=False)
    assert small.shape == (1_000, 3, 64, 64) and "imagenet-samples-64.zip" in small.notes
    # the 64-px zip and our resize of the 128-px zip show the same images
    diff = (small.images.float() - resize_images(d.images, 64).float()).abs().mean()
    assert diff < 8, diff
    with pytest.raises(ValueError, match="allow_upsample"):
        load_dataset("imagenet-samples", "test", root=real_root, image_size=256)


def _faces_root_with(real_root: Path, tmp_path: Path, shards: list[str]) -> Path:
    root = tmp_path / "_".join(s[8:10] for s in shards)
    (root / "faces64").mkdir(parents=True)
    for s in shards:  # symlinks: the same file size and mtime, so the decoded cache is shared
        os.symlink(real_root / "faces64" / s, root / "faces64" / s)
    return root


@pytest.mark.data("faces")
def test_faces_split_rule_and_shard_subsets(real_root, tmp_path):
    one = _faces_root_with(real_root, tmp_path, ["faces64-04.zip"])
    two = _faces_root_with(real_root, tmp_path, ["faces64-03.zip", "faces64-04.zip"])
    a_tr, a_te = (load_dataset("faces", s, root=one, progress=False) for s in ("train", "test"))
    b_tr, b_te = (load_dataset("faces", s, root=two, progress=False) for s in ("train", "test"))
    assert a_tr.is_subset and "missing faces64-00.zip" in a_tr.notes
    assert a_tr.shape[1:] == (3, 64, 64)
    assert len(a_tr) + len(a_te) == 4_711 and len(b_tr) + len(b_te) == 9_711
    assert torch.all(a_te.indices % 10 == 0) and torch.all(a_tr.indices % 10 != 0)
    assert set(a_tr.indices.tolist()).isdisjoint(a_te.indices.tolist())
    for small, big in ((a_tr, b_tr), (a_te, b_te)):  # shard 04's images land in the same split with the same pixels
        pos = torch.searchsorted(big.indices, small.indices)
        assert torch.equal(big.indices[pos], small.indices) and torch.equal(big.images[pos], small.images)
    # resized copies are cached per split; a limited load is exactly the same rows of the resized split
    r = load_dataset("faces", "test", root=one, image_size=32, progress=False)
    assert r.shape == (len(a_te), 3, 32, 32) and torch.equal(r.images, resize_images(a_te.images, 32))
    lim = load_dataset("faces", "test", root=one, image_size=32, limit=10, seed=3, progress=False)
    pos = torch.searchsorted(r.indices, lim.indices)
    assert lim.is_subset and len(lim) == 10 and torch.equal(lim.images, r.images[pos])


@pytest.mark.data("faces")
@pytest.mark.slow
def test_faces_full_split_and_cache_speed(real_root, tmp_path):
    full_tr = load_dataset("faces", "train", root=real_root)  # decodes once (~20 s on 2 cores), then cached
    t0 = time.perf_counter()
    full_tr = load_dataset("faces", "train", root=real_root)
    full_te = load_dataset("faces", "test", root=real_root)
    elapsed = time.perf_counter() - t0
    assert elapsed < 2.0, f"cached faces load took {elapsed:.2f} s (about 0.6 s expected)"
    assert len(full_tr) == 22_239 and len(full_te) == 2_472 and not full_tr.is_subset
    assert full_te.indices.tolist() == list(range(0, 24_711, 10))
    assert set(full_tr.indices.tolist()) == set(range(24_711)) - set(range(0, 24_711, 10))
    sub = _faces_root_with(real_root, tmp_path, ["faces64-00.zip", "faces64-03.zip"])
    for full, split in ((full_tr, "train"), (full_te, "test")):
        part = load_dataset("faces", split, root=sub, progress=False)
        keep = ((full.indices < 5_000) | ((full.indices >= 15_000) & (full.indices < 20_000)))
        assert torch.equal(part.indices, full.indices[keep]) and torch.equal(part.images, full.images[keep])
    # the profile-heavy first images are spread over both splits
    assert (full_te.indices < 500).sum() == 50


@pytest.mark.data
def test_check_data_on_real_root(real_root):
    by = {r["name"]: r for r in check_data(real_root)}
    assert by["mnist"]["present"] and by["mnist"]["images"] == {"train": 60_000, "test": 10_000}
    assert by["cifar10"]["is_subset"] and by["cifar10"]["images"] == {"train": 5_085, "test": 1_017}
    assert by["faces"]["images"] == {"train": 22_239, "test": 2_472} and not by["faces"]["is_subset"]
    assert by["imagenet-samples"]["images"] == {"test": 1_000}


# ------------------------------------------------------------------------------------------------ golden inputs
# sha256[:16] of (images, labels or indices) bytes, recorded on 2026-11-30 from the data behind the committed
# results of chapter 1 (book/results/01_simpler_is_better, preset cpu). The images themselves are checked against
# independent oracles above (cv2 circles, PIL resizes, MNIST counts); these pins catch any later drift of the
# generator, a loader, a resize or a subset rule, which would silently invalidate the stored runs.
CHAPTER1_CPU_INPUTS = {
    ("shapes", "train"): ((50_000, 1, 32, 32), "7c0acdf532056e2f"),
    ("shapes", "test"): ((1_000, 1, 32, 32), "274e005c38962f5e"),
    ("mnist", "train"): ((60_000, 1, 32, 32), "7c67ae6dabf7a985"),
    ("mnist", "test"): ((1_000, 1, 32, 32), "5d94745c135128a5"),
    ("faces", "train"): ((22_239, 3, 64, 64), "a4f9a2278349a24a"),
    ("faces", "test"): ((1_000, 3, 64, 64), "21c526a6938ca341"),
}


def _digest(d: ImageData) -> str:
    import hashlib

    h = hashlib.sha256()
    for t in (d.images, d.labels if d.labels is not None else d.indices):
        h.update(t.contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def _chapter1_inputs(dataset: str, split: str) -> ImageData:
    from specvae.experiments import simpler_is_better as ch1

    return ch1._load(ch1.configs("cpu", datasets=[dataset])[0], split)  # what the chapter's runs trained on


def test_shapes_generator_golden_values():
    for key in (("shapes", "train"), ("shapes", "test")):
        shape, digest = CHAPTER1_CPU_INPUTS[key]
        d = _chapter1_inputs(*key)
        assert tuple(d.shape) == shape and d.images.dtype == torch.uint8
        assert _digest(d) == digest, f"{key}: the Shape images changed; the stored chapter-1 runs no longer match"


@pytest.mark.data("mnist", "faces")
@pytest.mark.slow  # faces: the first load decodes the shards (~20 s on 2 cores), then it is cached
@pytest.mark.parametrize("dataset", ["mnist", "faces"])
def test_chapter1_real_inputs_golden_values(dataset, real_root, monkeypatch):
    monkeypatch.setenv("SPECVAE_DATA", str(real_root))
    for split in ("train", "test"):
        shape, digest = CHAPTER1_CPU_INPUTS[(dataset, split)]
        d = _chapter1_inputs(dataset, split)
        assert tuple(d.shape) == shape and d.images.dtype == torch.uint8
        assert _digest(d) == digest, f"{dataset} {split}: the loaded images changed; stored chapter-1 runs are stale"

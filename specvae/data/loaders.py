"""``load_dataset``: every data set of the book as an :class:`~specvae.data.ImageData` (uint8, values 0 … 255).

Where files are looked for: under the data root (argument ``root`` → ``SPECVAE_DATA`` → ``specvae.paths.cache_dir()/data``),
both in specvae's own folder names (``mnist/``, ``cifar10-subset/``, ``faces64/``, ``imagenet-samples/``, ...) and in
torchvision's (``MNIST/raw/``, ``cifar-10-batches-py/``, ``celeba/img_align_celeba/``), so existing torchvision
downloads work. ``download=True`` uses torchvision's downloaders where they exist (MNIST, CIFAR-10, CelebA).

Choices (the papers leave them open; each is also written into ``ImageData.notes``):

- **Resizing** (``image_size``): anti-aliased bilinear (:func:`specvae.data.base.resize_images`, as torchvision's
  ``Resize`` and PIL), after a centre crop to a square. Up-sampling beyond a data set's native resolution adds no
  detail and would fake the spectra this project measures, so it raises an error unless ``allow_upsample=True``;
  the one exception is MNIST 28 → 32, which is the papers' protocol.
- **MNIST** at 32×32 (IRMAE, used by Björk et al., resizes MNIST to 32×32): ``mnist_mode="resize"`` (default,
  bilinear as IRMAE's ``transforms.Resize(32)``) or ``"pad"`` (zero-pad 2 px each side, LeNet's 32×32 layout);
  ``image_size=28`` gives the native images.
- **CIFAR-10**: the full python batches when present, else the 6,102-image subset file, flagged ``is_subset`` with
  a warning.
- **faces** (the 64-px CelebA-style crops): image number ``k`` (from its file name) is ``test`` when ``k % 10 == 0``,
  else ``train``, so an image's split never depends on which shards are present.
- **imagenet-samples**: one image per class, so there is only a ``test`` split (too few to train on); labels are the
  index in the sorted WordNet-id list, captions follow CLIP's template ``"a photo of a {class name}"``.
- **limit**: a random subset of ``limit`` images chosen with ``seed`` (the first ``limit`` of one seeded
  permutation, kept in source order, so subsets are nested as ``limit`` grows), flagged ``is_subset``.
- **celeba**: IRMAE's crop (centre 148 × 148, then resize, default 64) on ``img_align_celeba``; official
  partition (``list_eval_partition.txt`` or the official file-number ranges); splits train/valid/test.
- **ffhq**: image folder, numbers < 60,000 train, ≥ 60,000 test (taming-transformers' ffhqtrain/ffhqvalidation
  split); default 256 px. **lsun-church**: image folders ``lsun-church/{train,test}`` or the official lmdb
  (``church_outdoor_{train,val}_lmdb``, needs the ``lmdb`` package); centre crop, default 256 px.
"""

from __future__ import annotations

import gzip
import io
import os
import pickle
import re
import warnings
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from specvae import paths
from specvae.data.base import (DataFormatError, DatasetNotFoundError, ImageData, _file_signature, cached_arrays,
                               check_image_size, convert_channels, resize_images, center_crop)
from specvae.data.fallback import check_fallback, stand_in
from specvae.data.shapes import generate_shapes

__all__ = ["load_dataset", "check_data", "format_check", "DataCheck", "DATASETS", "BOOK_DATASETS", "DatasetInfo",
           "MNIST_MODES"]

MNIST_MODES = ("resize", "pad")
_IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".webp", ".bmp")


@dataclass(frozen=True)
class DatasetInfo:
    """What specvae knows about a data set (for messages, ``check_data`` and the book)."""

    name: str
    description: str
    splits: tuple[str, ...]
    native_size: int | None  # None: varies (image folders)
    default_size: int | None  # image size returned when image_size=None (None: native)
    channels: int
    expected: tuple[str, ...]  # paths relative to the data root that the loader looks for
    downloadable: bool
    how_to_get: str
    ref: str = ""


DATASETS: dict[str, DatasetInfo] = {
    "shapes": DatasetInfo(
        "shapes", "synthetic Shape data (one filled circle or square), gray 32x32, generated", ("train", "test"),
        32, 32, 1, (), False, "generated on the fly; nothing to download",
        "Jing et al. 2020 (IRMAE) ShapeDataset; Björk et al. 2022 §3"),
    "mnist": DatasetInfo(
        "mnist", "MNIST digits, 60,000 train / 10,000 test, 28x28 gray (resized to 32x32 by default)",
        ("train", "test"), 28, 32, 1,
        ("mnist/train-images-idx3-ubyte.gz", "mnist/train-labels-idx1-ubyte.gz", "mnist/t10k-images-idx3-ubyte.gz",
         "mnist/t10k-labels-idx1-ubyte.gz", "MNIST/raw/ (torchvision layout)"),
        True, "pass download=True (torchvision's MNIST downloader) or copy the four idx .gz files into <root>/mnist/",
        "LeCun et al. 1998"),
    "cifar10": DatasetInfo(
        "cifar10", "CIFAR-10, 32x32 RGB: the full python batches, else the 6,102-image subset file",
        ("train", "test"), 32, None, 3,
        ("cifar-10-batches-py/ (data_batch_1..5, test_batch, batches.meta)", "cifar10-subset/cifar10-subset.npz"),
        True, "pass download=True (torchvision's CIFAR10 downloader) or unpack cifar-10-python.tar.gz into <root>",
        "Krizhevsky 2009"),
    "faces": DatasetInfo(
        "faces", "24,711 CelebA-style face crops, 64x64 RGB, in 5 zip shards (test = every 10th image number)",
        ("train", "test"), 64, None, 3, tuple(f"faces64/faces64-0{i}.zip" for i in range(5)), False,
        "copy any of the shards faces64-00.zip ... faces64-04.zip into <root>/faces64/ (see the data README)",
        "CelebA-style crops (a substitute for CelebA / CelebA-HQ / FFHQ)"),
    "imagenet-samples": DatasetInfo(
        "imagenet-samples", "1,000 ImageNet images, one per class, 64 or 128 px RGB (test split only)",
        ("test",), 128, None, 3,
        ("imagenet-samples/imagenet-samples-128.zip", "imagenet-samples/imagenet-samples-64.zip"), False,
        "copy imagenet-samples-64.zip and/or imagenet-samples-128.zip into <root>/imagenet-samples/",
        "Deng et al. 2009 (ImageNet), one sample per class"),
    "celeba": DatasetInfo(
        "celeba", "CelebA aligned faces (img_align_celeba), IRMAE crop 148 -> 64x64 RGB",
        ("train", "valid", "test"), None, 64, 3,
        ("celeba/img_align_celeba/*.jpg", "celeba/list_eval_partition.txt (optional)"), True,
        "pass download=True (torchvision's CelebA downloader, Google Drive; often rate-limited) or unpack "
        "img_align_celeba.zip into <root>/celeba/img_align_celeba/",
        "Liu et al. 2015"),
    "ffhq": DatasetInfo(
        "ffhq", "FFHQ faces, image folder (numbers < 60,000 train, >= 60,000 test), 256x256 RGB by default",
        ("train", "test"), None, 256, 3, ("ffhq/**/NNNNN.png (images1024x1024 or thumbnails128x128)",), False,
        "download FFHQ (github.com/NVlabs/ffhq-dataset) and put its images under <root>/ffhq/",
        "Karras et al. 2019"),
    "lsun-church": DatasetInfo(
        "lsun-church", "LSUN church_outdoor, 256x256 RGB (centre crop)", ("train", "test"), None, 256, 3,
        ("lsun-church/train/*.jpg and lsun-church/test/*.jpg",
         "lsun/church_outdoor_train_lmdb and lsun/church_outdoor_val_lmdb (needs the lmdb package)"), False,
        "download LSUN church_outdoor (github.com/fyu/lsun) and export it to image folders "
        "<root>/lsun-church/{train,test}/ or put the lmdb folders under <root>/lsun/",
        "Yu et al. 2015"),
}

#: The stored data sets the book's chapters and tests read (the other loaders are for users who have those sets).
BOOK_DATASETS: tuple[str, ...] = ("mnist", "cifar10", "faces", "imagenet-samples")

_ALIASES = {"shape": "shapes", "cifar-10": "cifar10", "cifar": "cifar10", "faces64": "faces", "celeba64": "celeba",
            "imagenet": "imagenet-samples", "lsun_church": "lsun-church", "church": "lsun-church"}


# ------------------------------------------------------------------------------------------------ helpers
@dataclass
class _Raw:
    """A loader's result before the generic limit / resize / channel steps."""

    images: torch.Tensor
    labels: torch.Tensor | None = None
    class_names: list[str] | None = None
    captions: list[str] | None = None
    indices: torch.Tensor | None = None
    notes: list[str] = field(default_factory=list)
    is_subset: bool = False
    source: str = ""
    native_size: int = 0
    done: bool = False  # limit and size already applied (image-folder loaders decode only what is needed)
    extra: dict = field(default_factory=dict)
    cache_key: dict | None = None  # identifies the source files: lets load_dataset cache resized copies


def _resolve_name(name: str) -> str:
    if not isinstance(name, str):
        raise TypeError(f"dataset name must be a string, one of {sorted(DATASETS)}; got {name!r}")
    key = name.strip().lower().replace("_", "-")
    key = _ALIASES.get(key, _ALIASES.get(name.strip().lower(), key))
    if key not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; valid names: {', '.join(DATASETS)}")
    return key


def _missing(name: str, root: Path, looked: Sequence[Path], extra: str = "") -> DatasetNotFoundError:
    info = DATASETS[name]
    env = os.environ.get("SPECVAE_DATA")
    where = (f"the data root {root} (from SPECVAE_DATA={env})" if env and Path(env).expanduser() == root
             else f"the data root {root} (set SPECVAE_DATA or pass root=... to use another folder)")
    looked_s = "\n  ".join(str(p) for p in looked)
    return DatasetNotFoundError(
        f"data set {name!r} not found under {where}.\nLooked for:\n  {looked_s}\n"
        f"Expected (relative to the data root): {'; '.join(info.expected)}.\nWhat to do: {info.how_to_get}."
        + (f"\n{extra}" if extra else ""))


def _first_existing(candidates: Sequence[Path]) -> Path | None:
    for p in candidates:
        if p.exists():
            return p
    return None


def _limit_positions(n: int, limit: int | None, seed: int) -> np.ndarray | None:
    """Positions of a seeded random subset of ``limit`` of ``n`` items (sorted), or None for all of them."""
    if limit is None or limit >= n:
        return None
    perm = np.random.default_rng(seed).permutation(n)[:limit]
    return np.sort(perm)


def _check_limit(limit: object) -> int | None:
    if limit is None:
        return None
    if isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or int(limit) <= 0:
        raise ValueError(f"limit must be a positive int (number of images) or None for all, got {limit!r}")
    return int(limit)


def _upsample_error(name: str, image_size: int, native: int) -> ValueError:
    return ValueError(
        f"image_size={image_size} is larger than the native {native}x{native} px of {name!r}: up-sampling adds no "
        "detail and changes the high-frequency spectrum this project measures. Use image_size <= "
        f"{native}, or pass allow_upsample=True if you really want interpolated images.")


def _pil_decode(data: bytes, what: str) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            return np.asarray(im.convert("RGB"))
    except Exception as err:
        raise DataFormatError(f"cannot decode image {what} ({type(err).__name__}: {err}); the file is corrupt: "
                              "replace it with a fresh copy") from err


def _progress(iterable, total: int, desc: str, enabled: bool):
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, unit="img", leave=False, mininterval=0.5)


# ------------------------------------------------------------------------------------------------ shapes
def _load_shapes(root: Path, split: str, image_size: int | None, *, limit: int | None, seed: int,
                 channels: int | None, **_: object) -> _Raw:
    n = limit if limit is not None else (50_000 if split == "train" else 10_000)
    size = image_size or 32
    gray = channels != 3
    images, labels = generate_shapes(n, size, seed=seed, gray=gray, split=split)
    note = (f"Shape data (IRMAE generator, our deterministic re-implementation), {n} images, seed {seed}, "
            f"{'gray-scale (luma of the IRMAE colour), as Björk et al.' if gray else 'RGB colour, as IRMAE'}"
            f"{'' if size == 32 else f'; geometry scaled to {size}x{size} (IRMAE has 32x32 only)'}.")
    return _Raw(images, labels, ["circle", "square"], None, torch.arange(n), [note], False,
                "generated by specvae.data.shapes", size, done=True)


# ------------------------------------------------------------------------------------------------ MNIST
_MNIST_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
                "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def _mnist_candidates(root: Path, stem: str) -> list[Path]:
    out = []
    for folder in (root / "mnist", root / "MNIST" / "raw", root):
        out += [folder / f"{stem}.gz", folder / stem]
    return out


def _read_idx(path: Path, ndim: int) -> np.ndarray:
    """Read an idx file (optionally gzip'd). Ref: the format on yann.lecun.com/exdb/mnist (magic 0x0000 08 ndim)."""
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as err:
        raise DataFormatError(f"cannot read {path} ({err}): the file is corrupt or truncated; delete it and copy or "
                              "download it again") from err
    if len(data) < 4 + 4 * ndim or data[0:2] != b"\x00\x00" or data[2] != 0x08 or data[3] != ndim:
        raise DataFormatError(f"{path} is not an idx file of unsigned bytes with {ndim} dimensions (bad header "
                              f"{data[:4].hex()}); replace it with the original MNIST file")
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise DataFormatError(f"{path} holds {body.size} values but its header says {dims}: the file is truncated; "
                              "copy or download it again")
    return body.reshape(dims)


def _find_mnist(root: Path, split: str) -> tuple[Path | None, Path | None, list[Path]]:
    img_stem, lab_stem = _MNIST_FILES[split]
    ci, cl = _mnist_candidates(root, img_stem), _mnist_candidates(root, lab_stem)
    return _first_existing(ci), _first_existing(cl), ci + cl


def _load_mnist(root: Path, split: str, image_size: int | None, *, download: bool, allow_upsample: bool,
                mnist_mode: str, **_: object) -> _Raw:
    if mnist_mode not in MNIST_MODES:
        raise ValueError(f"mnist_mode must be one of {MNIST_MODES} (how 28x28 becomes 32x32), got {mnist_mode!r}")
    img_path, lab_path, looked = _find_mnist(root, split)
    if (img_path is None or lab_path is None) and download:
        _torchvision_download("mnist", root, lambda: __import__("torchvision").datasets.MNIST(
            str(root), train=(split == "train"), download=True))
        img_path, lab_path, looked = _find_mnist(root, split)
    if img_path is None or lab_path is None:
        raise _missing("mnist", root, looked)
    target = 32 if image_size is None else image_size
    if target > 32 and not allow_upsample:
        raise _upsample_error("mnist", target, 28)

    def build() -> dict[str, np.ndarray]:
        images = _read_idx(img_path, 3)
        labels = _read_idx(lab_path, 1)
        if images.shape[0] != labels.shape[0] or images.shape[1:] != (28, 28):
            raise DataFormatError(f"MNIST files {img_path} and {lab_path} disagree: images {images.shape}, labels "
                                  f"{labels.shape}; expected (N, 28, 28) and (N,)")
        x, _ = _mnist_size(torch.from_numpy(images.copy()).unsqueeze(1), target, mnist_mode)
        return {"images": x.numpy(), "labels": labels.astype(np.int64)}

    key = {"files": [_file_signature(img_path), _file_signature(lab_path)], "size": target,
           "mode": mnist_mode if target == 32 else "resize"}
    arrays = cached_arrays("mnist", key, build, mmap=True)
    _, how = _mnist_size(None, target, mnist_mode)
    x = torch.from_numpy(arrays["images"])
    return _Raw(x, torch.from_numpy(arrays["labels"]), [str(i) for i in range(10)], None, torch.arange(x.shape[0]),
                [f"MNIST {split} set: {how}"], False, str(img_path.parent), target, done=True)


def _mnist_size(images: torch.Tensor | None, target: int, mode: str) -> tuple[torch.Tensor | None, str]:
    """MNIST at ``target`` px: native (28), zero-padded (32, mode 'pad') or anti-aliased bilinear resize."""
    if target == 28:
        return images, "native 28x28."
    if target == 32 and mode == "pad":
        out = None if images is None else F.pad(images, (2, 2, 2, 2))
        return out, "28x28 zero-padded by 2 px to 32x32 (mnist_mode='pad')."
    how = " as IRMAE / Björk et al" if target == 32 else ""
    out = None if images is None else resize_images(images, target)
    return out, f"28x28 resized to {target}x{target} (anti-aliased bilinear){how}."


# ------------------------------------------------------------------------------------------------ CIFAR-10
def _cifar_full_dir(root: Path) -> Path | None:
    for folder in (root / "cifar-10-batches-py", root / "cifar10" / "cifar-10-batches-py",
                   root / "CIFAR10" / "cifar-10-batches-py"):
        if (folder / "test_batch").is_file() and all((folder / f"data_batch_{i}").is_file() for i in range(1, 6)):
            return folder
    return None


def _cifar_subset_file(root: Path) -> Path | None:
    return _first_existing([root / "cifar10-subset" / "cifar10-subset.npz", root / "cifar10-subset.npz"])


def _unpickle(path: Path) -> dict:
    try:
        with open(path, "rb") as f:
            return pickle.load(f, encoding="latin1")
    except Exception as err:
        raise DataFormatError(f"cannot read the CIFAR-10 batch {path} ({type(err).__name__}: {err}); unpack "
                              "cifar-10-python.tar.gz again") from err


def _load_cifar10(root: Path, split: str, image_size: int | None, *, download: bool, **_: object) -> _Raw:
    folder = _cifar_full_dir(root)
    if folder is None and download:
        _torchvision_download("cifar10", root, lambda: __import__("torchvision").datasets.CIFAR10(
            str(root), train=(split == "train"), download=True))
        folder = _cifar_full_dir(root)
    if folder is not None:
        names = ["test_batch"] if split == "test" else [f"data_batch_{i}" for i in range(1, 6)]
        xs, ys = [], []
        for n in names:
            d = _unpickle(folder / n)
            data = np.asarray(d.get("data"))
            if data.ndim != 2 or data.shape[1] != 3072:
                raise DataFormatError(f"{folder / n}: 'data' has shape {data.shape}, expected (N, 3072)")
            xs.append(data.reshape(-1, 3, 32, 32))
            ys.append(np.asarray(d["labels"], dtype=np.int64))
        meta = _unpickle(folder / "batches.meta") if (folder / "batches.meta").is_file() else {}
        class_names = list(meta.get("label_names", [])) or _CIFAR_CLASSES
        x = torch.from_numpy(np.concatenate(xs).astype(np.uint8, copy=False))
        return _Raw(x, torch.from_numpy(np.concatenate(ys)), class_names, None, torch.arange(x.shape[0]),
                    [f"CIFAR-10, full {split} set ({x.shape[0]} images)."], False, str(folder), 32,
                    cache_key={"files": [_file_signature(folder / n) for n in names]})
    path = _cifar_subset_file(root)
    if path is None:
        raise _missing("cifar10", root, [root / "cifar-10-batches-py", root / "cifar10-subset" / "cifar10-subset.npz",
                                         root / "cifar10-subset.npz"])
    key = "train" if split == "train" else "test"
    try:
        with np.load(path, allow_pickle=False) as z:
            x, y = z[f"x_{key}"], z[f"y_{key}"]
            class_names = [str(s) for s in z["label_names"]] if "label_names" in z.files else _CIFAR_CLASSES
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as err:
        raise DataFormatError(f"cannot read the CIFAR-10 subset file {path} ({type(err).__name__}: {err}); it must "
                              "be an .npz with x_train, y_train, x_test, y_test (uint8 (N,3,32,32)); copy it again")
    if x.dtype != np.uint8 or x.ndim != 4 or x.shape[1:] != (3, 32, 32) or y.shape != (x.shape[0],):
        raise DataFormatError(f"{path}: x_{key} is {x.dtype} {x.shape} and y_{key} {y.shape}; expected uint8 "
                              "(N, 3, 32, 32) and (N,)")
    msg = (f"CIFAR-10 SUBSET: {x.shape[0]} {split} images from {path.name} (the first 1,017 images of each official "
           "batch), not the full 50,000/10,000 set; rFID and other set-level numbers are NOT comparable with "
           "published full-set numbers.")
    warnings.warn(msg + " Put the full python batches (cifar-10-batches-py/) under the data root to use the full set.",
                  UserWarning, stacklevel=3)
    return _Raw(torch.from_numpy(x.copy()), torch.from_numpy(y.astype(np.int64)), class_names, None,
                torch.arange(x.shape[0]), [msg], True, str(path), 32)


_CIFAR_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


# ------------------------------------------------------------------------------------------------ faces
_FACES_SHARDS = tuple(f"faces64-0{i}.zip" for i in range(5))
_FACES_TOTAL = 24_711
_FACE_RE = re.compile(r"(?:^|/)(\d+)\.(?:jpe?g|png)$", re.IGNORECASE)


def _find_face_shards(root: Path) -> list[Path]:
    found: dict[str, Path] = {}
    for folder in (root / "faces64", root / "faces", root):
        if folder.is_dir():
            for p in sorted(folder.glob("faces64-*.zip")):
                found.setdefault(p.name, p)
    return [found[k] for k in sorted(found)]


def _open_zip(path: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, EOFError) as err:
        raise DataFormatError(f"{path} is not a readable zip file ({type(err).__name__}: {err}): it is corrupt or "
                              "truncated. Copy it again, or remove it (the loader uses whichever shards are present)."
                              ) from err


def _decode_face_shard(path: Path, progress: bool) -> dict[str, np.ndarray]:
    with _open_zip(path) as z:
        members = [(m, int(mt.group(1))) for m in z.namelist() if (mt := _FACE_RE.search(m))]
        if not members:
            raise DataFormatError(f"{path} holds no NNNNN.jpg images; is it a faces64 shard?")
        images = np.empty((len(members), 64, 64, 3), dtype=np.uint8)
        numbers = np.empty(len(members), dtype=np.int64)
        for i, (m, num) in enumerate(_progress(members, len(members), f"decoding {path.name}", progress)):
            try:
                data = z.read(m)
            except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as err:
                raise DataFormatError(f"{path}: member {m} is corrupt ({err}); copy the shard again") from err
            arr = _pil_decode(data, f"{m} in {path}")
            if arr.shape != (64, 64, 3):
                raise DataFormatError(f"{path}: {m} is {arr.shape[1]}x{arr.shape[0]}, expected 64x64 RGB")
            images[i], numbers[i] = arr, num
    order = np.argsort(numbers, kind="stable")
    return {"images": np.ascontiguousarray(images[order].transpose(0, 3, 1, 2)), "numbers": numbers[order]}


def _load_faces(root: Path, split: str, image_size: int | None, *, progress: bool, **_: object) -> _Raw:
    shards = _find_face_shards(root)
    if not shards:
        raise _missing("faces", root, [root / "faces64" / "faces64-0*.zip", root / "faces64-0*.zip"])
    sigs = [_file_signature(p) for p in shards]
    if len({s[0] for s in sigs}) != len(sigs):
        raise DataFormatError(f"two faces shards with the same name under {root}: {[str(p) for p in shards]}; keep one "
                              "copy of each shard")

    def assemble() -> dict[str, np.ndarray]:
        parts = [cached_arrays("faces64", {"file": sig, "kind": "faces64-shard"},
                               lambda p=p: _decode_face_shard(p, progress), mmap=True) for p, sig in zip(shards, sigs)]
        numbers = np.concatenate([np.asarray(a["numbers"]) for a in parts])
        if len(np.unique(numbers)) != len(numbers):
            raise DataFormatError(f"the faces shards {[p.name for p in shards]} contain duplicate image numbers; "
                                  "keep one copy of each shard under the data root")
        keep_in = [np.asarray(a["numbers"] % 10 == 0) if split == "test" else np.asarray(a["numbers"] % 10 != 0)
                   for a in parts]
        total = int(sum(k.sum() for k in keep_in))
        out = np.empty((total, 3, 64, 64), dtype=np.uint8)
        nums = np.empty(total, dtype=np.int64)
        at = 0
        for a, k in zip(parts, keep_in):
            rows = np.flatnonzero(k)
            np.take(a["images"], rows, axis=0, out=out[at:at + len(rows)])
            nums[at:at + len(rows)] = a["numbers"][rows]
            at += len(rows)
        order = np.argsort(nums, kind="stable")
        if not np.all(order == np.arange(total)):
            out, nums = out[order], nums[order]
        return {"images": out, "numbers": nums}

    # two cache levels: each shard decoded once (any subset of shards reuses it), and each (shard set, split)
    # assembled once, so a repeated load is a memory map of one file
    arrays = cached_arrays("faces64-split", {"files": sigs, "split": split}, assemble, mmap=True)
    images, nums = torch.from_numpy(arrays["images"]), np.asarray(arrays["numbers"])
    total = len(nums)
    missing = [s for s in _FACES_SHARDS if s not in {p.name for p in shards}]
    notes = [f"CelebA-style faces 64x64 (a substitute for CelebA/CelebA-HQ/FFHQ), {split} = image numbers "
             f"{'divisible by 10' if split == 'test' else 'not divisible by 10'}: {total} images."]
    if missing:
        notes.append(f"SUBSET of shards: {len(shards)} of 5 present ({', '.join(p.name for p in shards)}); missing "
                     f"{', '.join(missing)}.")
    return _Raw(images, None, None, None, torch.from_numpy(nums), notes, bool(missing),
                ", ".join(str(p) for p in shards), 64, cache_key={"files": sigs})


# ------------------------------------------------------------------------------------------------ ImageNet samples
def _imagenet_zips(root: Path) -> dict[int, Path]:
    found: dict[int, Path] = {}
    for folder in (root / "imagenet-samples", root):
        for size in (64, 128):
            p = folder / f"imagenet-samples-{size}.zip"
            if p.is_file():
                found.setdefault(size, p)
    return found


def _decode_imagenet_zip(path: Path, size: int, progress: bool) -> dict[str, np.ndarray]:
    with _open_zip(path) as z:
        members = sorted(m for m in z.namelist() if re.search(r"(?:^|/)n\d{8}_.+\.(?:jpe?g|png)$", m, re.I))
        if not members:
            raise DataFormatError(f"{path} holds no <wnid>_<class name>.jpg images; is it an imagenet-samples zip?")
        images = np.empty((len(members), size, size, 3), dtype=np.uint8)
        for i, m in enumerate(_progress(members, len(members), f"decoding {path.name}", progress)):
            arr = _pil_decode(z.read(m), f"{m} in {path}")
            if arr.shape != (size, size, 3):
                raise DataFormatError(f"{path}: {m} is {arr.shape[1]}x{arr.shape[0]}, expected {size}x{size} RGB")
            images[i] = arr
    stems = [Path(m).stem for m in members]
    return {"images": np.ascontiguousarray(images.transpose(0, 3, 1, 2)), "stems": np.asarray(stems)}


def _load_imagenet_samples(root: Path, split: str, image_size: int | None, *, allow_upsample: bool, progress: bool,
                           **_: object) -> _Raw:
    zips = _imagenet_zips(root)
    if not zips:
        raise _missing("imagenet-samples", root, [root / "imagenet-samples" / "imagenet-samples-{64,128}.zip"])
    if image_size is None:
        size = max(zips)
    else:
        bigger = [s for s in zips if s >= image_size]
        if not bigger and not allow_upsample:
            raise _upsample_error("imagenet-samples", image_size, max(zips))
        size = min(bigger) if bigger else max(zips)
    path = zips[size]
    arrays = cached_arrays("imagenet-samples", {"file": _file_signature(path), "size": size},
                           lambda: _decode_imagenet_zip(path, size, progress), mmap=True)
    stems = [str(s) for s in arrays["stems"]]
    wnids = [s.split("_", 1)[0] for s in stems]
    names = [s.split("_", 1)[1].replace("_", " ") if "_" in s else s for s in stems]
    order = sorted(set(wnids))
    if len(order) != len(wnids):
        raise DataFormatError(f"{path}: expected one image per class, found {len(wnids)} images of {len(order)} "
                              "classes")
    lookup = {w: i for i, w in enumerate(order)}
    labels = torch.tensor([lookup[w] for w in wnids], dtype=torch.long)
    class_names = [""] * len(order)
    for w, n in zip(wnids, names):
        class_names[lookup[w]] = n
    captions = [f"a photo of a {n}" for n in names]
    note = (f"ImageNet samples: {len(stems)} images, one per class, from {path.name} ({size}x{size}); too few to "
            "train on (zero-shot reconstruction only); captions 'a photo of a <class name>' (CLIP's template).")
    return _Raw(torch.from_numpy(arrays["images"]), labels, class_names, captions, labels.clone(), [note], False,
                str(path), size, cache_key={"file": _file_signature(path)})


# ------------------------------------------------------------------------------------------------ image folders
def _list_images(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in _IMAGE_EXTS and p.is_file())


def _decode_files(files: Sequence[Path], size: int, crop: int | None, allow_upsample: bool, name: str,
                  progress: bool) -> dict[str, np.ndarray]:
    from PIL import Image

    out = np.empty((len(files), 3, size, size), dtype=np.uint8)
    for i, f in enumerate(_progress(files, len(files), f"decoding {name}", progress)):
        try:
            with Image.open(f) as im:
                arr = np.asarray(im.convert("RGB"))
        except Exception as err:
            raise DataFormatError(f"cannot decode {f} ({type(err).__name__}: {err}); replace or remove it") from err
        x = torch.from_numpy(arr.copy()).permute(2, 0, 1).unsqueeze(0)
        if crop is not None:
            x = center_crop(x, min(crop, *x.shape[-2:]))
        side = min(x.shape[-2:])
        if side < size and not allow_upsample:
            raise _upsample_error(name, size, side)
        out[i] = resize_images(x, size)[0].numpy()
    return {"images": out}


def _folder_raw(name: str, files: list[Path], numbers: np.ndarray, size: int, crop: int | None, *, limit: int | None,
                seed: int, allow_upsample: bool, progress: bool, notes: list[str], source: str) -> _Raw:
    pos = _limit_positions(len(files), limit, seed)
    if pos is not None:
        files, numbers = [files[i] for i in pos], numbers[pos]
    key = {"files": [_file_signature(f) for f in files], "parents": sorted({str(f.parent) for f in files}),
           "size": size, "crop": crop}
    arrays = cached_arrays(name, key, lambda: _decode_files(files, size, crop, allow_upsample, name, progress))
    if pos is not None:
        notes = notes + [f"Random subset of {len(files)} images (limit={limit}, seed={seed})."]
    return _Raw(torch.from_numpy(arrays["images"]), None, None, None, torch.from_numpy(numbers), notes,
                pos is not None, source, size, done=True)


def _number(p: Path) -> int:
    digits = re.sub(r"\D", "", p.stem)
    return int(digits) if digits else -1


def _load_celeba(root: Path, split: str, image_size: int | None, *, download: bool, limit: int | None, seed: int,
                 allow_upsample: bool, progress: bool, **_: object) -> _Raw:
    folders = [root / "celeba" / "img_align_celeba", root / "img_align_celeba"]
    folder = next((f for f in folders if f.is_dir()), None)
    if folder is None and download:
        _torchvision_download("celeba", root, lambda: __import__("torchvision").datasets.CelebA(
            str(root), split="all", target_type=[], download=True))
        folder = next((f for f in folders if f.is_dir()), None)
    files = _list_images(folder) if folder is not None else []
    if not files:
        raise _missing("celeba", root, folders)
    part_file = folder.parent / "list_eval_partition.txt"
    want = {"train": 0, "valid": 1, "test": 2}[split]
    if part_file.is_file():
        part = {}
        for line in part_file.read_text().split("\n"):
            bits = line.split()
            if len(bits) == 2 and bits[1].isdigit():
                part[bits[0]] = int(bits[1])
        files = [f for f in files if part.get(f.name) == want]
        how = f"official partition from {part_file.name}"
    else:  # the official partition by file number (1-162770 train, 162771-182637 valid, 182638-202599 test)
        bounds = {0: (1, 162_770), 1: (162_771, 182_637), 2: (182_638, 202_599)}[want]
        files = [f for f in files if bounds[0] <= _number(f) <= bounds[1]]
        how = "official partition by file number (list_eval_partition.txt not found)"
    if not files:
        raise _missing("celeba", root, folders, extra=f"No image of the {split} split was found in {folder}.")
    size = image_size or 64
    numbers = np.asarray([_number(f) for f in files], dtype=np.int64)
    notes = [f"CelebA img_align_celeba, {split} ({how}), centre crop 148 then resize to {size} (IRMAE)."]
    return _folder_raw("celeba", files, numbers, size, 148, limit=limit, seed=seed, allow_upsample=allow_upsample,
                       progress=progress, notes=notes, source=str(folder))


def _load_ffhq(root: Path, split: str, image_size: int | None, *, limit: int | None, seed: int,
               allow_upsample: bool, progress: bool, **_: object) -> _Raw:
    folder = root / "ffhq"
    files = _list_images(folder)
    if not files:
        raise _missing("ffhq", root, [folder])
    numbers = np.asarray([_number(f) for f in files], dtype=np.int64)
    keep = numbers >= 60_000 if split == "test" else (numbers >= 0) & (numbers < 60_000)
    files = [f for f, k in zip(files, keep) if k]
    if not files:
        raise _missing("ffhq", root, [folder], extra=f"No image of the {split} split (numbers "
                       f"{'>= 60000' if split == 'test' else '< 60000'}) was found in {folder}.")
    size = image_size or 256
    notes = [f"FFHQ {split} (numbers {'>= 60000' if split == 'test' else '< 60000'}, taming-transformers' split), "
             f"resized to {size}."]
    return _folder_raw("ffhq", files, numbers[keep], size, None, limit=limit, seed=seed,
                       allow_upsample=allow_upsample, progress=progress, notes=notes, source=str(folder))


def _load_lsun_church(root: Path, split: str, image_size: int | None, *, limit: int | None, seed: int,
                      allow_upsample: bool, progress: bool, **_: object) -> _Raw:
    size = image_size or 256
    sub = ["train"] if split == "train" else ["test", "val"]
    folders = [root / "lsun-church" / s for s in sub]
    files: list[Path] = []
    for f in folders:
        files = _list_images(f)
        if files:
            break
    if files:
        numbers = np.arange(len(files), dtype=np.int64)
        notes = [f"LSUN church_outdoor {split} (image folder), centre crop, resized to {size}."]
        return _folder_raw("lsun-church", files, numbers, size, None, limit=limit, seed=seed,
                           allow_upsample=allow_upsample, progress=progress, notes=notes, source=str(files[0].parent))
    lmdb_dir = root / "lsun" / f"church_outdoor_{'train' if split == 'train' else 'val'}_lmdb"
    if lmdb_dir.is_dir():
        return _load_lsun_lmdb(root / "lsun", split, size, limit=limit, seed=seed, allow_upsample=allow_upsample,
                               progress=progress)
    raise _missing("lsun-church", root, folders + [lmdb_dir])


def _load_lsun_lmdb(folder: Path, split: str, size: int, *, limit: int | None, seed: int, allow_upsample: bool,
                    progress: bool) -> _Raw:
    try:
        import lmdb  # noqa: F401
        from torchvision.datasets import LSUN
    except ImportError as err:
        raise DatasetNotFoundError(f"LSUN church lmdb found under {folder}, but reading it needs the 'lmdb' package: "
                                   "pip install lmdb (or export the images to <root>/lsun-church/{train,test}/)") from err
    ds = LSUN(str(folder), classes=[f"church_outdoor_{'train' if split == 'train' else 'val'}"])
    pos = _limit_positions(len(ds), limit, seed)
    idx = np.arange(len(ds)) if pos is None else pos
    lmdb_file = folder / f"church_outdoor_{'train' if split == 'train' else 'val'}_lmdb" / "data.mdb"

    def build() -> dict[str, np.ndarray]:
        out = np.empty((len(idx), 3, size, size), dtype=np.uint8)
        for j, i in enumerate(_progress(idx, len(idx), "decoding lsun-church", progress)):
            x = torch.from_numpy(np.asarray(ds[int(i)][0].convert("RGB")).copy()).permute(2, 0, 1).unsqueeze(0)
            if min(x.shape[-2:]) < size and not allow_upsample:
                raise _upsample_error("lsun-church", size, min(x.shape[-2:]))
            out[j] = resize_images(x, size)[0].numpy()
        return {"images": out}

    sig = _file_signature(lmdb_file) if lmdb_file.is_file() else [str(folder)]
    arrays = cached_arrays("lsun-church", {"lmdb": sig, "idx": idx.tolist(), "size": size}, build)
    notes = [f"LSUN church_outdoor {split} (lmdb), centre crop, resized to {size}."]
    if pos is not None:
        notes.append(f"Random subset of {len(idx)} images (limit={limit}, seed={seed}).")
    return _Raw(torch.from_numpy(arrays["images"]), None, None, None, torch.from_numpy(idx.astype(np.int64)), notes,
                pos is not None, str(folder), size, done=True)


def _torchvision_download(name: str, root: Path, fn: Callable[[], object]) -> None:
    try:
        root.mkdir(parents=True, exist_ok=True)
        fn()
    except Exception as err:
        raise DatasetNotFoundError(
            f"download of {name!r} into {root} failed ({type(err).__name__}: {err}). Without internet, copy the files "
            f"by hand: {DATASETS[name].how_to_get}; expected (relative to the data root): "
            f"{'; '.join(DATASETS[name].expected)}.") from err


_LOADERS: dict[str, Callable[..., _Raw]] = {
    "shapes": _load_shapes, "mnist": _load_mnist, "cifar10": _load_cifar10, "faces": _load_faces,
    "imagenet-samples": _load_imagenet_samples, "celeba": _load_celeba, "ffhq": _load_ffhq,
    "lsun-church": _load_lsun_church,
}


# ------------------------------------------------------------------------------------------------ public API
def load_dataset(name: str, split: str = "train", root: str | os.PathLike | None = None,
                 image_size: int | None = None, *, download: bool = False, limit: int | None = None, seed: int = 0,
                 channels: int | None = None, allow_upsample: bool = False, mnist_mode: str = "resize",
                 progress: bool = True, fallback: str | None = None) -> ImageData:
    """Load one split of a data set as uint8 images ``(N, C, H, W)`` in 0 … 255 (``.float()`` gives [0, 1]).

    Args:
        name: one of ``shapes``, ``mnist``, ``cifar10``, ``faces``, ``imagenet-samples``, ``celeba``, ``ffhq``,
            ``lsun-church`` (see :data:`DATASETS`).
        split: ``"train"`` or ``"test"`` (``celeba`` also ``"valid"``; ``imagenet-samples`` has only ``"test"``).
        root: data root; default ``SPECVAE_DATA``, else ``specvae.paths.cache_dir()/data``.
        image_size: output side length; ``None`` = the data set's default (shapes 32, MNIST 32 as the papers,
            CIFAR-10 32, faces 64, ImageNet samples the largest zip present, CelebA 64, FFHQ/LSUN 256).
            Smaller sizes are anti-aliased bilinear down-sampling; larger than native is an error unless
            ``allow_upsample=True`` (MNIST 28 → 32 is always allowed: it is the papers' protocol).
        download: fetch with torchvision when the files are missing (MNIST, CIFAR-10, CelebA; needs internet).
        limit: at most this many images (a seeded random subset for stored data; the first ``limit`` for shapes).
        seed: Shape generator seed, and the seed of the ``limit`` subset.
        channels: ``None`` (the data set's own), ``1`` (BT.601 luma) or ``3`` (gray repeated / Shapes in IRMAE's
            colour).
        allow_upsample: permit ``image_size`` above the native resolution.
        mnist_mode: how MNIST becomes 32×32: ``"resize"`` (IRMAE/Björk) or ``"pad"`` (2-px zero border).
        progress: show tqdm bars while decoding image files (only the first load; later loads hit the cache).
        fallback: ``None`` (a missing data set is an error) or ``"shapes"``: when the files are missing, generated
            Shape images of the same size and channels stand in, marked ``stand_in="shapes"`` and ``STAND-IN``
            in ``notes``, with a :class:`~specvae.data.DataFallbackWarning`. Refused (the error is raised) when
            ``SPECVAE_REQUIRE_DATA=1``. Chapters pass :func:`~specvae.data.smoke_fallback` ``(preset)``.

    Raises:
        ValueError: unknown name / split, bad ``image_size``, ``limit``, ``channels`` or ``mnist_mode``.
        DatasetNotFoundError: files missing (the message lists the paths looked at and what to do).
        DataFormatError: a file is corrupt or has unexpected content (the message names the file).
    """
    key = _resolve_name(name)
    info = DATASETS[key]
    if split not in info.splits:
        extra = (" (one image per class: too few to train on; use split='test')" if key == "imagenet-samples" else "")
        raise ValueError(f"{key!r} has no split {split!r}; valid splits: {', '.join(info.splits)}{extra}")
    size = check_image_size(image_size, name=key)
    limit = _check_limit(limit)
    if channels is not None and (isinstance(channels, bool) or channels not in (1, 3)):
        raise ValueError(f"channels must be 1 (gray), 3 (RGB) or None (the data set's own), got {channels!r}")
    check_fallback(fallback)
    data_root = paths.data_root(root)
    try:
        raw = _LOADERS[key](data_root, split, size, download=download, limit=limit, seed=seed, channels=channels,
                            allow_upsample=allow_upsample, mnist_mode=mnist_mode, progress=progress)
    except DatasetNotFoundError as err:
        if fallback is None or key == fallback:
            raise
        return stand_in(key, split, size, limit=limit, seed=seed, channels=channels, fallback=fallback,
                        root=str(data_root), error=err, load=load_dataset)
    images, labels, indices, captions = raw.images, raw.labels, raw.indices, raw.captions
    notes, is_subset = list(raw.notes), raw.is_subset
    resize_to = size if (not raw.done and size is not None and size != raw.native_size) else None
    if resize_to is not None:
        if resize_to > raw.native_size and not allow_upsample:
            raise _upsample_error(key, resize_to, raw.native_size)
        notes.append(f"Resized {raw.native_size} -> {resize_to} px (anti-aliased bilinear).")
        if raw.cache_key is not None:  # resize the whole split once and cache it (a later load is a memory map)
            full = images
            images = torch.from_numpy(cached_arrays(
                f"{key}-resized", {**raw.cache_key, "size": resize_to, "split": split},
                lambda: {"images": resize_images(full, resize_to).numpy()}, mmap=True)["images"])
            resize_to = None
    if not raw.done or key == "mnist":
        pos = _limit_positions(images.shape[0], limit, seed)
        if pos is not None:
            t = torch.from_numpy(pos)
            images = images[t]
            labels = None if labels is None else labels[t]
            indices = None if indices is None else indices[t]
            captions = None if captions is None else [captions[i] for i in pos]
            is_subset = True
            notes.append(f"Random subset of {len(pos)} images (limit={limit}, seed={seed}).")
    if resize_to is not None:
        images = resize_images(images, resize_to)
    if channels is not None and key != "shapes":
        if images.shape[1] != channels:
            notes.append("Converted to gray-scale (BT.601 luma)." if channels == 1 else "Gray repeated to 3 channels.")
        images = convert_channels(images, channels, name=key)
    return ImageData(images=images.contiguous(), labels=labels, class_names=raw.class_names, captions=captions,
                     name=key, split=split, notes=" ".join(notes), is_subset=is_subset, indices=indices,
                     source=raw.source)


# ------------------------------------------------------------------------------------------------ check_data
def _probe(name: str, root: Path) -> dict:
    info = DATASETS[name]
    row: dict = {"name": name, "present": False, "images": {}, "is_subset": False, "path": "", "notes": "",
                 "action": ""}
    if name == "shapes":
        row.update(present=True, images={"train": 50_000, "test": 10_000}, path="(generated)",
                   notes="generated on the fly (any number of images)")
        return row
    if name == "mnist":
        counts, where = {}, ""
        for split in ("train", "test"):
            img, lab, _ = _find_mnist(root, split)
            if img is not None and lab is not None:
                opener = gzip.open if img.suffix == ".gz" else open
                with opener(img, "rb") as f:
                    head = f.read(8)
                counts[split] = int.from_bytes(head[4:8], "big")
                where = str(img.parent)
        row.update(present=len(counts) == 2, images=counts, path=where)
    elif name == "cifar10":
        full = _cifar_full_dir(root)
        if full is not None:
            row.update(present=True, images={"train": 50_000, "test": 10_000}, path=str(full), notes="full set")
        else:
            sub = _cifar_subset_file(root)
            if sub is not None:
                with np.load(sub, allow_pickle=False) as z:
                    counts = {"train": int(z["y_train"].shape[0]), "test": int(z["y_test"].shape[0])}
                row.update(present=True, images=counts, path=str(sub), is_subset=True,
                           notes="SUBSET (6,102 images): set-level numbers not comparable with the full set")
    elif name == "faces":
        shards = _find_face_shards(root)
        counts = {"train": 0, "test": 0}
        for p in shards:
            with _open_zip(p) as z:
                nums = [int(m.group(1)) for n in z.namelist() if (m := _FACE_RE.search(n))]
            counts["test"] += sum(1 for k in nums if k % 10 == 0)
            counts["train"] += sum(1 for k in nums if k % 10 != 0)
        if shards:
            missing = [s for s in _FACES_SHARDS if s not in {p.name for p in shards}]
            row.update(present=True, images=counts, path=str(shards[0].parent), is_subset=bool(missing),
                       notes=f"{len(shards)} of 5 shards" + (f"; missing {', '.join(missing)}" if missing else ""))
    elif name == "imagenet-samples":
        zips = _imagenet_zips(root)
        if zips:
            with _open_zip(zips[max(zips)]) as z:
                n = sum(1 for m in z.namelist() if m.lower().endswith((".jpg", ".jpeg", ".png")))
            row.update(present=True, images={"test": n}, path=str(zips[max(zips)].parent),
                       notes="sizes: " + ", ".join(f"{s}px" for s in sorted(zips)))
    elif name == "celeba":
        folder = next((f for f in (root / "celeba" / "img_align_celeba", root / "img_align_celeba") if f.is_dir()),
                      None)
        n = len(_list_images(folder)) if folder is not None else 0
        if n:
            row.update(present=True, images={"all": n}, path=str(folder))
    elif name == "ffhq":
        n = len(_list_images(root / "ffhq"))
        if n:
            row.update(present=True, images={"all": n}, path=str(root / "ffhq"))
    elif name == "lsun-church":
        counts = {s: len(_list_images(root / "lsun-church" / s)) for s in ("train", "test", "val")}
        counts = {k: v for k, v in counts.items() if v}
        lmdb_dirs = [p for p in (root / "lsun").glob("church_outdoor_*_lmdb")] if (root / "lsun").is_dir() else []
        if counts or lmdb_dirs:
            row.update(present=True, images=counts, path=str(root / ("lsun-church" if counts else "lsun")))
    if not row["present"]:
        row["action"] = f"{info.how_to_get} (expected: {'; '.join(info.expected)})"
    return row


class DataCheck(list):
    """The rows of :func:`check_data` (a plain ``list`` of dicts) that also print as a table (``to_string()``)."""

    def to_string(self) -> str:
        return format_check(list(self))

    def __str__(self) -> str:
        return self.to_string()


def check_data(root: str | os.PathLike | None = None) -> list[dict]:
    """Report, per data set, whether it is present under the data root, how many images, and what to do if not.

    Returns a list of dicts with keys ``name``, ``present``, ``images`` (split → count), ``is_subset``, ``path``,
    ``notes``, ``action`` (what to do when missing) and ``root``. Reading errors are reported, not raised.
    """
    data_root = paths.data_root(root)
    rows = []
    for name in DATASETS:
        try:
            row = _probe(name, data_root)
        except Exception as err:  # a corrupt file: report it
            row = {"name": name, "present": False, "images": {}, "is_subset": False, "path": "",
                   "notes": f"ERROR: {err}", "action": "replace the corrupt file named in the error"}
        row["root"] = str(data_root)
        rows.append(row)
    return DataCheck(rows)


def format_check(rows: list[dict]) -> str:
    """A plain-text table of :func:`check_data`'s rows (what ``specvae data check`` prints)."""
    lines = [f"data root: {rows[0]['root'] if rows else paths.data_root()}"]
    for r in rows:
        counts = ", ".join(f"{k} {v:,}" for k, v in r["images"].items()) or "-"
        state = "ok" if r["present"] else "MISSING"
        subset = " [SUBSET]" if r["is_subset"] else ""
        lines.append(f"{r['name']:<17} {state:<8} {counts}{subset}  {r['path']}")
        if r["notes"]:
            lines.append(f"{'':<17} {r['notes']}")
        if r["action"]:
            lines.append(f"{'':<17} to get it: {r['action']}")
    return "\n".join(lines)

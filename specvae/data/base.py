"""The container every loader returns (:class:`ImageData`), the data errors, and shared image helpers.

Value range: ``ImageData.images`` is always a ``uint8`` tensor ``(N, C, H, W)`` with values 0 … 255;
:meth:`ImageData.float` gives float32 in [0, 1] (``value / 255``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from specvae import paths
from specvae.spectral import BT601

__all__ = [
    "ImageData",
    "DataError",
    "DatasetNotFoundError",
    "DataFormatError",
    "resize_images",
    "center_crop",
    "convert_channels",
    "check_image_size",
    "cached_arrays",
    "LUMA_WEIGHTS",
]

#: ITU-R BT.601 luma weights (RGB → gray), as PIL ``convert("L")``: the spectral toolkit's constant.
LUMA_WEIGHTS = BT601
_CACHE_VERSION = 1


class DataError(Exception):
    """Base class of specvae's data errors."""


class DatasetNotFoundError(DataError, FileNotFoundError):
    """A data set's files were not found (the message names the paths looked at and what to do)."""


class DataFormatError(DataError, ValueError):
    """A data file exists but is unreadable or has the wrong content (the message names the file)."""


@dataclass
class ImageData:
    """A data set split held in memory as uint8.

    Attributes:
        images: uint8 tensor ``(N, C, H, W)``, values 0 … 255.
        labels: int64 tensor ``(N,)`` or ``None``.
        class_names: label index → name, or ``None``.
        captions: one text per image (e.g. ``"a photo of a tench"``), or ``None``.
        name: data set name as passed to :func:`specvae.data.load_dataset`.
        split: ``"train"``, ``"test"`` (or ``"valid"`` where a data set has one).
        notes: human-readable provenance and caveats (substitutes, subsets, resizing); show it next to results.
        is_subset: ``True`` when these are not the full standard split (a subset file, missing shards, ``limit``).
        indices: int64 ``(N,)`` stable ids of the images in their source (file number, index in the split), or None.
        source: the files or folder read.
        stand_in: the generated data set used in place of ``name`` when it was missing and ``fallback=`` allowed
            a substitute (see :mod:`specvae.data.fallback`); ``None`` for the real data.
    """

    images: torch.Tensor
    labels: torch.Tensor | None = None
    class_names: list[str] | None = None
    captions: list[str] | None = None
    name: str = ""
    split: str = ""
    notes: str = ""
    is_subset: bool = False
    indices: torch.Tensor | None = None
    source: str = ""
    stand_in: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.images, torch.Tensor) or self.images.dtype != torch.uint8 or self.images.ndim != 4:
            got = (f"{type(self.images).__name__} dtype={getattr(self.images, 'dtype', None)} "
                   f"shape={tuple(getattr(self.images, 'shape', ()))}")
            raise DataFormatError(f"ImageData.images must be a uint8 tensor (N, C, H, W); got {got}")
        n = self.images.shape[0]
        for attr in ("labels", "indices"):
            value = getattr(self, attr)
            if value is not None and (value.ndim != 1 or value.shape[0] != n):
                raise DataFormatError(f"ImageData.{attr} must have shape ({n},), got {tuple(value.shape)}")
        if self.captions is not None and len(self.captions) != n:
            raise DataFormatError(f"ImageData.captions must have {n} entries, got {len(self.captions)}")

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def shape(self) -> tuple[int, int, int, int]:
        """``(N, C, H, W)``."""
        return tuple(self.images.shape)  # type: ignore[return-value]

    @property
    def image_size(self) -> int:
        """Height (= width for every loader here)."""
        return int(self.images.shape[-1])

    @property
    def channels(self) -> int:
        return int(self.images.shape[1])

    def float(self, idx: int | slice | Sequence[int] | torch.Tensor | None = None) -> torch.Tensor:
        """Images (all, or ``images[idx]``) as float32 in [0, 1] on the images' device."""
        x = self.images if idx is None else self.images[idx]
        if x.ndim == 3:  # a single integer index
            x = x.unsqueeze(0)
        return x.to(torch.float32).div_(255.0)

    def to(self, device: str | torch.device) -> "ImageData":
        """A copy whose ``images``, ``labels`` and ``indices`` live on ``device`` (uint8 stays uint8)."""
        move = lambda t: None if t is None else t.to(device)  # noqa: E731
        return dataclasses.replace(self, images=self.images.to(device), labels=move(self.labels),
                                   indices=move(self.indices))

    def subset(self, idx: Sequence[int] | torch.Tensor | np.ndarray, *, note: str | None = None) -> "ImageData":
        """The images at positions ``idx`` (marked ``is_subset``)."""
        idx_t = torch.as_tensor(np.asarray(idx), dtype=torch.long)
        pick = lambda t: None if t is None else t[idx_t.to(t.device)]  # noqa: E731
        captions = None if self.captions is None else [self.captions[i] for i in idx_t.tolist()]
        notes = self.notes + (f" {note}" if note else f" Subset of {len(idx_t)} of {len(self)} images.")
        return dataclasses.replace(self, images=pick(self.images), labels=pick(self.labels), captions=captions,
                                   indices=pick(self.indices), is_subset=True, notes=notes.strip())

    def __repr__(self) -> str:
        return (f"ImageData(name={self.name!r}, split={self.split!r}, images={tuple(self.images.shape)} "
                f"{self.images.dtype} on {self.images.device}, labels={'yes' if self.labels is not None else 'no'}, "
                f"is_subset={self.is_subset}, {f'stand_in={self.stand_in!r}, ' if self.stand_in else ''}"
                f"notes={self.notes!r})")


def check_image_size(image_size: object, *, name: str) -> int | None:
    """Validate an ``image_size`` argument: ``None`` or a positive int (else a clear error)."""
    if image_size is None:
        return None
    if isinstance(image_size, bool) or not isinstance(image_size, (int, np.integer)) or int(image_size) <= 0:
        raise ValueError(f"image_size for {name!r} must be a positive int (side length in pixels) or None for the "
                         f"data set's default, got {image_size!r}")
    return int(image_size)


def center_crop(images: torch.Tensor, size: int | tuple[int, int]) -> torch.Tensor:
    """Centre crop ``(..., H, W)`` to ``size`` (int → square), with torchvision's rounding of the offsets."""
    th, tw = (size, size) if isinstance(size, int) else size
    h, w = images.shape[-2:]
    if th > h or tw > w:
        raise ValueError(f"cannot centre-crop {h}x{w} images to {th}x{tw}")
    top = int(round((h - th) / 2.0))
    left = int(round((w - tw) / 2.0))
    return images[..., top:top + th, left:left + tw]


def resize_images(images: torch.Tensor, size: int, *, chunk: int = 2048) -> torch.Tensor:
    """Resize uint8 images ``(N, C, H, W)`` to ``size × size``: bilinear with anti-aliasing, rounded back to uint8.

    Anti-aliased bilinear is what ``torchvision.transforms.Resize`` does on tensors (``antialias=True``) and what PIL's
    ``Image.resize(..., BILINEAR)`` does, so down-sampling does not alias (which would corrupt exactly the high
    frequencies this project studies). Non-square inputs are first centre-cropped to a square.
    Ref: torch.nn.functional.interpolate(mode="bilinear", antialias=True, align_corners=False).
    """
    if images.dtype != torch.uint8 or images.ndim != 4:
        raise DataFormatError(f"resize_images expects uint8 (N, C, H, W), got {images.dtype} {tuple(images.shape)}")
    h, w = images.shape[-2:]
    if h != w:
        images = center_crop(images, min(h, w))
    if images.shape[-1] == size:
        return images
    out = torch.empty((images.shape[0], images.shape[1], size, size), dtype=torch.uint8, device=images.device)
    for a in range(0, images.shape[0], chunk):
        x = images[a:a + chunk].to(torch.float32)
        y = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        out[a:a + chunk] = y.round_().clamp_(0, 255).to(torch.uint8)
    return out


def convert_channels(images: torch.Tensor, channels: int | None, *, name: str) -> torch.Tensor:
    """Return images with ``channels`` channels: 1 → luma (BT.601) of RGB, 3 → gray repeated; None → unchanged."""
    if channels is None:
        return images
    if isinstance(channels, bool) or channels not in (1, 3):
        raise ValueError(f"channels for {name!r} must be 1 (gray), 3 (RGB) or None (the data set's own), "
                         f"got {channels!r}")
    c = images.shape[1]
    if c == channels:
        return images
    if c == 1 and channels == 3:
        return images.expand(-1, 3, -1, -1).contiguous()
    if c == 3 and channels == 1:
        w = torch.tensor(LUMA_WEIGHTS, dtype=torch.float32, device=images.device).view(1, 3, 1, 1)
        out = torch.empty((images.shape[0], 1, *images.shape[2:]), dtype=torch.uint8, device=images.device)
        for a in range(0, images.shape[0], 4096):
            y = (images[a:a + 4096].to(torch.float32) * w).sum(1, keepdim=True)
            out[a:a + 4096] = y.round_().clamp_(0, 255).to(torch.uint8)
        return out
    raise DataFormatError(f"{name!r}: cannot convert images with {c} channels to {channels}; expected 1 or 3")


# ------------------------------------------------------------------------------------------------ cache
def _cache_root() -> Path:
    return paths.cache_dir() / "decoded"


def _file_signature(path: Path) -> list:
    st = path.stat()
    return [path.name, st.st_size, st.st_mtime_ns]


def cached_arrays(namespace: str, key: dict, build: Callable[[], dict[str, np.ndarray]], *,
                  mmap: bool = False) -> dict[str, np.ndarray]:
    """Return ``build()``, cached as ``.npy`` files under ``specvae.paths.cache_dir()/decoded/<namespace>/<hash>/``.

    ``key`` (JSON-able; include the source files' names, sizes and mtimes) is hashed into the folder name, so a
    changed source is decoded again. The folder is written under a temporary name and renamed into place (atomic:
    a killed write leaves no half cache). With ``mmap=True`` a cached array comes back memory-mapped copy-on-write
    (``mmap_mode="c"``: writable, changes stay private): loading is instant and the pages are read from the OS page
    cache when first touched. This matters here: filling freshly allocated memory costs ~7 µs per 4 KiB page on these
    machines (2 s for the 0.3 GB of faces), while mapping cached file pages costs ~0.1 s. Otherwise the arrays are
    read into ordinary memory. An unwritable cache only warns.
    """
    blob = json.dumps({"v": _CACHE_VERSION, **key}, sort_keys=True, default=str)
    digest = hashlib.sha1(blob.encode()).hexdigest()[:20]
    folder = _cache_root() / namespace
    target = folder / digest
    done = target / "_complete.json"
    if done.is_file():
        try:
            names = json.loads(done.read_text())["arrays"]
            return {n: np.load(target / f"{n}.npy", mmap_mode="c" if mmap else None, allow_pickle=False)
                    for n in names}
        except Exception as err:  # a damaged cache entry: rebuild it
            warnings.warn(f"ignoring unreadable cache {target} ({err}); decoding again", stacklevel=3)
            shutil.rmtree(target, ignore_errors=True)
    arrays = build()
    try:
        if target.exists() and not done.is_file():  # an incomplete entry: replace it
            shutil.rmtree(target, ignore_errors=True)
        folder.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=folder, prefix=f".{digest}-"))
        try:
            for n, a in arrays.items():
                np.save(tmp / f"{n}.npy", np.asarray(a), allow_pickle=False)
            (tmp / "_complete.json").write_text(json.dumps({"arrays": list(arrays), "key": json.loads(blob)}))
            try:
                os.rename(tmp, target)
            except OSError:  # another process cached it first
                pass
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    except OSError as err:
        warnings.warn(f"could not write the decoded-image cache under {folder} ({err}); set SPECVAE_CACHE to a "
                      "writable folder to make the next load fast", stacklevel=3)
    return arrays

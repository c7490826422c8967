"""specvae.metrics: the standard image-reconstruction metrics, each computed with the standard network.

=============================  =====================================================================
``ssim(x, y) -> (N,)``          Wang et al. 2004, Gaussian 11×11 σ = 1.5 (= scikit-image's settings)
``psnr(x, y) -> (N,)``          10·log10(1/MSE) per image, images in [0, 1]
``LPIPS(net="alex"|"vgg")``     LPIPS v0.1 with torchvision's ImageNet trunks (also a training loss)
``InceptionFeatures``           TF-2015 FID Inception pool3 (2048-d)
``frechet_distance(a, b)``      Fréchet distance of two feature Gaussians (float64, symmetric eigen-solves)
``rfid(real, recon)``           reconstruction FID (+ the number of images), cached real statistics
``codebook_usage``              histogram, perplexity, used/dead fractions
``unit_information_capacity``   FQ-VAE's per-code rise of the data-set MSE when the code is removed
``spectral_metrics``            Björk et al.'s RMSE in the AI / 2-D FT / spatial domains, band errors
``reconstruction_metrics``      all of the above for one batch, as mean ± std
=============================  =====================================================================

The spectral functions of :mod:`specvae.spectral` (``rmse_ai``, ``rmse_ft``, ``rmse_spatial``,
``radial_profile``, ``band_errors``, …) are re-exported here. Pretrained weights are resolved by
:mod:`specvae.metrics.weights` (``specvae weights fetch``). Submodules are imported on first use, so
``import specvae.metrics`` stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "ssim": "image", "psnr": "image", "SSIM_SETTINGS": "image", "gaussian_window": "image",
    "LPIPS": "lpips", "lpips_distance": "lpips", "LPIPS_NETS": "lpips",
    "InceptionFeatures": "fid", "FIDStats": "fid", "FIDResult": "fid", "inception_features": "fid",
    "frechet_distance": "fid", "real_statistics": "fid", "rfid": "fid",
    "codebook_usage": "codebook", "unit_information_capacity": "codebook", "nearest_other_code": "codebook",
    "mean_std": "summary", "spectral_metrics": "summary", "reconstruction_metrics": "summary",
    "resolve": "weights", "fetch_all": "weights", "WEIGHTS": "weights",
}

#: Re-exported from :mod:`specvae.spectral` (written by the spectral developer).
_SPECTRAL = (
    "rmse_ai", "rmse_ft", "rmse_spatial", "pixel_squared_errors", "radial_profile", "azimuthal_average",
    "frequency_axis", "band_energies", "band_errors", "DEFAULT_BAND_EDGES",
)

__all__ = sorted([*_LAZY, *_SPECTRAL, "weights"])


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(f"specvae.metrics.{_LAZY[name]}"), name)
    elif name in _SPECTRAL:
        try:
            spectral = importlib.import_module("specvae.spectral")
        except ModuleNotFoundError as exc:  # pragma: no cover - only while the package is being assembled
            raise AttributeError(f"specvae.metrics.{name} comes from specvae.spectral, which is missing") from exc
        value = getattr(spectral, name)
    elif name == "weights":
        value = importlib.import_module("specvae.metrics.weights")
    else:
        raise AttributeError(f"module 'specvae.metrics' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__

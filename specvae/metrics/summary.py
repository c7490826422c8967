"""One call that measures a batch of reconstructions the way the book's tables report them.

Every value is a mean (and std) over images of a per-image metric, except rFID (a set-level distance, with its
image count) and the pixel squared-error statistics of Björk et al.'s "spatial" column (over pixels).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

__all__ = ["mean_std", "spectral_metrics", "reconstruction_metrics"]


def mean_std(values: Tensor, name: str) -> dict[str, float]:
    """``{name_mean, name_std}`` of per-image values (population std, as ``numpy.std``).

    Non-finite values are left out of both (NaN when none is finite). Note what that means for PSNR: an exact
    reconstruction has PSNR = inf and is *not* counted, so the mean is over the imperfect images only.
    """
    v = values.detach().double().cpu()
    finite = v[torch.isfinite(v)]
    return {f"{name}_mean": float(finite.mean()) if finite.numel() else float("nan"),
            f"{name}_std": float(finite.std(unbiased=False)) if finite.numel() else float("nan")}


def spectral_metrics(pred: Tensor, target: Tensor, edges=None) -> dict[str, float]:
    """Björk et al. Tables 1–2 metrics (RMSE in the AI, 2-D FT and spatial domains) and band-wise errors.

    Returns ``rmse_ai_mean/std``, ``rmse_ft_mean/std``, ``rmse_spatial_mean/std`` (over images),
    ``pixel_se_mean/std`` (over pixels: our reading of the paper's "spatial" column, see :mod:`specvae.spectral`)
    and ``band_mse_<band>_mean/std`` (each band's share of the per-image MSE).
    """
    from specvae import spectral

    out: dict[str, float] = {}
    with torch.no_grad():
        out.update(mean_std(spectral.rmse_ai(pred, target), "rmse_ai"))
        out.update(mean_std(spectral.rmse_ft(pred, target), "rmse_ft"))
        out.update(mean_std(spectral.rmse_spatial(pred, target), "rmse_spatial"))
        out.update(mean_std(spectral.pixel_squared_errors(pred, target), "pixel_se"))
        bands = spectral.band_errors(pred, target, edges) if edges is not None else spectral.band_errors(pred, target)
        for band, v in bands.items():
            out.update(mean_std(v, f"band_mse_{band}"))
    return out


def reconstruction_metrics(
    pred: Tensor,
    target: Tensor,
    *,
    lpips_net: str | None = "alex",
    spectral: bool = True,
    fid: bool = False,
    dataset: str | None = None,
    split: str | None = None,
    batch_size: int = 64,
    progress: bool = False,
) -> dict[str, Any]:
    """SSIM, PSNR, LPIPS (``lpips_net``; ``None`` skips it), the spectral metrics and, if ``fid``, rFID.

    ``pred``/``target``: ``(N, C, H, W)`` in [0, 1] on any device. Keys: ``ssim_mean``, ``ssim_std``,
    ``psnr_mean``, ``psnr_std``, ``lpips_<net>_mean/std``, the keys of :func:`spectral_metrics`, ``rfid``,
    ``rfid_n_real``, ``rfid_n_recon``, and ``n_images``.
    """
    from specvae.metrics.image import psnr, ssim

    out: dict[str, Any] = {"n_images": int(pred.shape[0])}
    with torch.no_grad():
        out.update(mean_std(torch.cat([ssim(pred[i:i + batch_size], target[i:i + batch_size])
                                       for i in range(0, pred.shape[0], batch_size)]), "ssim"))
        out.update(mean_std(psnr(pred, target), "psnr"))
        if lpips_net is not None:
            from specvae.metrics.lpips import lpips_distance

            out.update(mean_std(lpips_distance(pred, target, lpips_net, batch_size=batch_size), f"lpips_{lpips_net}"))
    if spectral:
        out.update(spectral_metrics(pred, target))
    if fid:
        from specvae.metrics.fid import rfid

        out.update(rfid(target, pred, dataset=dataset, split=split, progress=progress).as_dict())
    return out

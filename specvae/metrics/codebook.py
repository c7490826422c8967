"""Codebook metrics for vector-quantised autoencoders: usage, perplexity, dead codes, unit information capacity.

Ref: perplexity as in VQ-VAE practice (exp of the entropy of code usage; e.g. Zheng & Vedaldi 2023, CVQ-VAE);
unit information capacity as defined in Feng & Liu 2025 (FQ-VAE), §4 "Unit Information Capacity of Codebook"
(Fig. 4; the paper gives it in words, with no equation number).
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

__all__ = ["codebook_usage", "unit_information_capacity", "nearest_other_code"]


def _check_indices(indices: Tensor, codebook_size: int, fn: str) -> Tensor:
    if not isinstance(indices, Tensor) or indices.is_floating_point() or indices.is_complex():
        raise TypeError(f"{fn}: indices must be an integer tensor of code ids")
    if codebook_size < 1:
        raise ValueError(f"{fn}: codebook_size must be positive, got {codebook_size}")
    if indices.numel() == 0:
        raise ValueError(f"{fn}: no indices given")
    lo, hi = int(indices.min()), int(indices.max())
    if lo < 0 or hi >= codebook_size:
        raise ValueError(f"{fn}: code ids must lie in [0, {codebook_size - 1}], found ids in [{lo}, {hi}]")
    return indices.long()


def codebook_usage(indices: Tensor, codebook_size: int) -> dict:
    """How a codebook is used over a set of code assignments (any shape of integer ids).

    Returns a dict:

    * ``histogram``: ``(K,)`` int64 counts of each code (on the CPU);
    * ``entropy``: :math:`H = -\\sum_k p_k \\ln p_k` in nats (:math:`0\\ln 0 = 0`), with :math:`p_k` the usage shares;
    * ``perplexity``: :math:`e^{H}`, the effective number of codes used (K for uniform use, 1 for collapse);
    * ``usage_fraction``: the share of the K codes used at least once; ``dead_fraction`` = 1 − that;
    * ``n_used``, ``n_dead``, ``codebook_size``, ``n_assignments``.
    """
    idx = _check_indices(indices, codebook_size, "codebook_usage").reshape(-1)
    hist = torch.bincount(idx, minlength=codebook_size).cpu()
    p = hist.double() / hist.sum()
    nz = p[p > 0]
    entropy = float(-(nz * nz.log()).sum())
    n_used = int((hist > 0).sum())
    return {
        "histogram": hist,
        "entropy": entropy,
        "perplexity": float(torch.tensor(entropy, dtype=torch.float64).exp()),
        "usage_fraction": n_used / codebook_size,
        "dead_fraction": 1.0 - n_used / codebook_size,
        "n_used": n_used,
        "n_dead": codebook_size - n_used,
        "codebook_size": codebook_size,
        "n_assignments": int(idx.numel()),
    }


def nearest_other_code(codebook: Tensor) -> Tensor:
    """For each code k, the index of the nearest *other* code (squared Euclidean distance), ``(K,)``."""
    if codebook.ndim != 2 or codebook.shape[0] < 2:
        raise ValueError(f"codebook must be (K >= 2, D), got {tuple(codebook.shape)}")
    d = torch.cdist(codebook.double(), codebook.double())
    d.fill_diagonal_(float("inf"))
    return d.argmin(dim=1)


def unit_information_capacity(
    decode: Callable[[Tensor], Tensor],
    indices: Tensor,
    images: Tensor,
    codebook_size: int,
    *,
    codebook: Tensor | None = None,
    latents: Tensor | None = None,
    replacement: Tensor | None = None,
    codes: Tensor | list[int] | None = None,
    batch_size: int = 64,
    progress: bool = True,
) -> dict:
    """FQ-VAE's unit information capacity of each code: the rise of the data set's MSE when that code is removed.

    .. math::
        \\mathrm{UIC}_k = \\mathrm{MSE}\\big(\\mathrm{dec}(q_{\\setminus k}(z)), x\\big) - \\mathrm{MSE}\\big(\\mathrm{dec}(q(z)), x\\big),

    both MSEs over the whole data set (all images, channels, pixels). Only images that use code k change, so
    only those are decoded again. Unused codes have UIC 0.

    *Removing* a code is not spelled out in the paper; what replaces it here, in order of preference:

    1. ``latents`` given (encoder outputs, shape ``indices.shape + (D,)``) and ``codebook`` given: every
       position that used k is re-quantised to its nearest remaining code — exactly the quantiser without k;
    2. ``codebook`` given: every use of k is replaced by the code nearest to k (:func:`nearest_other_code`);
    3. ``replacement`` given: a ``(K,)`` map from each code to the code that replaces it.

    Args:
        decode: maps a batch of code ids (``indices[i:j]``, on ``indices``' device) to images shaped like ``images``.
        indices: ``(N, ...)`` code ids of the N images, e.g. ``(N, h, w)``.
        images: ``(N, C, H, W)`` originals in [0, 1] (uint8 is converted).
        codes: evaluate only these codes (default: all K).

    Returns:
        ``{"capacity": (K,) float64 tensor (NaN for codes not evaluated), "base_mse": float,
        "replacement_rule": str, "counts": (K,) usage histogram}``.

    Ref: Feng & Liu 2025, "FQ-VAE", §4 "Unit Information Capacity of Codebook" (following Huang et al. 2024,
    PQ-VAE); see the module docstring.
    """
    from tqdm.auto import tqdm

    idx = _check_indices(indices, codebook_size, "unit_information_capacity")
    if images.shape[0] != idx.shape[0]:
        raise ValueError(f"indices ({idx.shape[0]}) and images ({images.shape[0]}) must have the same length")
    imgs = images.float() / 255.0 if images.dtype == torch.uint8 else images.float()
    n = idx.shape[0]
    flat = idx.reshape(n, -1)

    if latents is not None:
        if codebook is None:
            raise ValueError("unit_information_capacity: latents need the codebook to re-quantise")
        if tuple(latents.shape[:-1]) != tuple(idx.shape):
            raise ValueError(f"latents must have shape indices.shape + (D,) = {tuple(idx.shape)} + (D,), "
                             f"got {tuple(latents.shape)}")
        rule = "re-quantise each latent that used k to its nearest remaining code"
        lat = latents.reshape(n, flat.shape[1], -1)
    elif codebook is not None:
        rule = "replace k by the code nearest to k"
        replacement = nearest_other_code(codebook).to(idx.device)
    elif replacement is not None:
        rule = "replace k by replacement[k] (given)"
        replacement = replacement.long().to(idx.device)
        if replacement.shape != (codebook_size,):
            raise ValueError(f"replacement must have shape ({codebook_size},), got {tuple(replacement.shape)}")
    else:
        raise ValueError("unit_information_capacity: give `codebook` (and optionally `latents`) or `replacement` "
                         "so that a removed code can be replaced")

    def sse_per_image(ids: Tensor, sel: Tensor) -> Tensor:
        out = []
        with torch.no_grad():
            for i in range(0, sel.numel(), batch_size):
                b = sel[i:i + batch_size]
                rec = decode(ids[i:i + batch_size]).float()
                target = imgs[b.to(imgs.device)].to(rec.device)
                out.append((rec - target).pow(2).flatten(1).sum(1).double().cpu())
        return torch.cat(out)

    all_sel = torch.arange(n, device=idx.device)
    base_sse = sse_per_image(idx, all_sel)
    numel = imgs[0].numel() * n
    counts = torch.bincount(flat.reshape(-1), minlength=codebook_size).cpu()
    capacity = torch.full((codebook_size,), float("nan"), dtype=torch.float64)
    todo = range(codebook_size) if codes is None else [int(c) for c in codes]
    bad = [c for c in todo if not 0 <= c < codebook_size]
    if bad:
        raise ValueError(f"unit_information_capacity: codes {bad} are not code ids of a codebook of size "
                         f"{codebook_size}; pick codes in [0, {codebook_size - 1}]")
    cb = codebook.to(idx.device).double() if codebook is not None else None
    for k in tqdm(todo, desc="unit information capacity", disable=not progress, leave=False):
        if counts[k] == 0:
            capacity[k] = 0.0
            continue
        uses = flat == k
        sel = uses.any(dim=1).nonzero().flatten()
        new = flat[sel].clone()
        mask = uses[sel]
        if latents is not None:
            z = lat[sel.to(lat.device)].to(idx.device).double()[mask]  # (M, D) latents that used k
            d = torch.cdist(z, cb)
            d[:, k] = float("inf")
            new[mask] = d.argmin(dim=1)
        else:
            new[mask] = replacement[k]
        new_sse = sse_per_image(new.reshape((sel.numel(),) + tuple(idx.shape[1:])), sel)
        capacity[k] = float((new_sse - base_sse[sel.cpu()]).sum()) / numel
    return {
        "capacity": capacity,
        "base_mse": float(base_sse.sum()) / numel,
        "replacement_rule": rule,
        "counts": counts,
    }

"""What every quantiser of :mod:`specvae.models.quantizers` shares: the codebook, the lookup, the checks.

A quantiser maps encoder outputs ``z`` of shape ``(..., dim)`` (the last axis is the code vector; the leading axes
are the token grid, e.g. ``(B, h, w)`` for spatial VQ or ``(B, U)`` for FQ-VAE's frequency components) to

``(z_q, indices, terms)``:

* ``z_q``: the quantised vectors, same shape as ``z``, float32 (with the gradient path of the method:
  straight-through for VQ-VAE, CVQ-VAE and FQ-VAE, the relaxed categorical for SQ-VAE and HQA);
* ``indices``: ``z.shape[:-1]`` int64 code ids;
* ``terms``: a dict; ``terms["loss"]`` is the quantiser's part of the training loss (a scalar that carries
  gradients), every other entry is a detached scalar for logging (``codebook``, ``commitment``, ``perplexity``, …).

Quantisers compute in float32 with autocast disabled (a bf16 distance would mis-assign codes), like the project's
spectral code; the decoder after them runs under whatever autocast the caller set. Codebook updates that are not
gradient steps (CVQ-VAE / FQ-VAE anchors, HQA code resets) happen inside ``forward`` in training mode, as in the
official CVQ-VAE code, so that :func:`specvae.train.fit` needs no hook; their state lives in buffers, so a
checkpoint resumes them exactly.

Ref: van den Oord et al. 2017 (VQ-VAE) for the lookup and the straight-through estimator.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["CodebookQuantizer", "squared_distances", "batch_perplexity", "straight_through", "uniform_codebook"]


def squared_distances(z: Tensor, codebook: Tensor) -> Tensor:
    """``‖z_m − e_k‖²`` for ``z (M, D)`` and ``codebook (K, D)``: ``(M, K)``, clamped at 0 (float round-off)."""
    d = z.pow(2).sum(1, keepdim=True) + codebook.pow(2).sum(1) - 2.0 * z @ codebook.t()
    return d.clamp_min_(0.0) if not d.requires_grad else d.clamp_min(0.0)


def batch_perplexity(indices: Tensor, num_codes: int) -> Tensor:
    """``exp(−Σ p log p)`` of the code shares ``p`` among ``indices`` (a detached 0-d float tensor)."""
    p = torch.bincount(indices.reshape(-1), minlength=num_codes).float()
    p = p / p.sum().clamp_min(1.0)
    nz = p[p > 0]
    return torch.exp(-(nz * nz.log()).sum()).detach()


def straight_through(z: Tensor, z_q: Tensor) -> Tensor:
    """``z + sg[z_q − z]``: the value of ``z_q`` with the gradient of the identity to ``z`` (VQ-VAE §3.1)."""
    return z + (z_q - z).detach()


class CodebookQuantizer(nn.Module):
    """A codebook of ``num_codes`` vectors of dimension ``dim`` (the ``codebook`` parameter) and its checks.

    Subclasses implement ``forward(z) -> (z_q, indices, terms)``. Shared here: :meth:`flatten` (shape check and
    ``(M, dim)`` view), :meth:`lookup` (code ids → vectors) and :meth:`nearest` (L2 nearest code ids).
    """

    def __init__(self, num_codes: int, dim: int, normalize: bool = False) -> None:
        super().__init__()
        for name, value in (("num_codes", num_codes), ("dim", dim)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{type(self).__name__}: {name} must be a positive integer, got {value!r}")
        self.num_codes = int(num_codes)
        self.dim = int(dim)
        self.normalize = bool(normalize)

    # subclasses set self.codebook (nn.Parameter (K, D))
    codebook: nn.Parameter
    #: ℓ2-normalise the input vectors and the codes before the lookup and the losses (ViT-VQGAN's "ℓ2-normalised
    #: codes", Yu et al. 2022 §3.2): every vector and code then lies on the unit sphere, so the encoder's output
    #: cannot run away from the codebook in scale. Set from the ``normalize`` argument.
    normalize: bool

    def codes(self) -> Tensor:
        """The codebook as the lookup uses it: float32 ``(K, D)``, unit rows when :attr:`normalize`."""
        e = self.codebook.float()
        return F.normalize(e, dim=1) if self.normalize else e

    def extra_repr(self) -> str:
        return f"num_codes={self.num_codes}, dim={self.dim}"

    def flatten(self, z: Tensor) -> tuple[Tensor, torch.Size]:
        """Check ``z (..., dim)`` and return ``(z as float32 (M, dim), leading shape)`` (unit rows when
        :attr:`normalize`)."""
        if not isinstance(z, Tensor) or z.ndim < 2:
            raise ValueError(f"{type(self).__name__}: expected code vectors of shape (..., {self.dim}), got "
                             f"{getattr(z, 'shape', type(z).__name__)}")
        if z.shape[-1] != self.dim:
            raise ValueError(
                f"{type(self).__name__}: the input's last axis has {z.shape[-1]} values but the codebook holds "
                f"vectors of dimension {self.dim}; build the quantiser with dim={z.shape[-1]} or change the encoder "
                "so that each code vector has that many values")
        if z.is_complex():
            raise TypeError(f"{type(self).__name__}: quantise real vectors (use torch.view_as_real on complex "
                            "components and flatten the real/imaginary pairs into the last axis)")
        lead = z.shape[:-1]
        flat = z.float().reshape(-1, self.dim)
        return (F.normalize(flat, dim=1) if self.normalize else flat), lead

    def lookup(self, indices: Tensor) -> Tensor:
        """Code ids of any shape → their vectors ``indices.shape + (dim,)`` (float32)."""
        if indices.is_floating_point():
            raise TypeError("lookup expects integer code ids")
        lo, hi = (int(indices.min()), int(indices.max())) if indices.numel() else (0, 0)
        if lo < 0 or hi >= self.num_codes:
            raise ValueError(f"code ids must lie in [0, {self.num_codes - 1}], found ids in [{lo}, {hi}]")
        return F.embedding(indices.long(), self.codes())

    @torch.no_grad()
    def nearest(self, flat: Tensor) -> Tensor:
        """L2-nearest code id of each row of ``flat (M, dim)`` (rows normalised first when :attr:`normalize`)."""
        flat = flat.float()
        return squared_distances(F.normalize(flat, dim=1) if self.normalize else flat, self.codes()).argmin(dim=1)

    def commitment_terms(self, flat: Tensor, q: Tensor, beta: float) -> tuple[Tensor, Tensor, Tensor]:
        """``(β·‖z − sg[q]‖² + ‖sg[z] − q‖², codebook term, commitment term)`` as means over elements (eq. 1)."""
        codebook_term = F.mse_loss(q, flat.detach())
        commitment_term = F.mse_loss(flat, q.detach())
        return codebook_term + beta * commitment_term, codebook_term, commitment_term


def uniform_codebook(num_codes: int, dim: int) -> Tensor:
    """``U(−1/K, 1/K)`` initial codebook (zalandoresearch/pytorch-vq-vae and CVQ-VAE ``quantise.py``)."""
    return torch.empty(num_codes, dim).uniform_(-1.0 / num_codes, 1.0 / num_codes)


def check_fraction(name: str, value: float, owner: str) -> float:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and 0.0 < value < 1.0):
        raise ValueError(f"{owner}: {name} must lie strictly between 0 and 1, got {value!r}")
    return float(value)

"""VQ-VAE's vector quantiser (van den Oord, Vinyals & Kavukcuoglu, NeurIPS 2017).

.. math::
    k^*(z) = \\arg\\min_k \\|z - e_k\\|_2^2,\\qquad z_q = e_{k^*},

    \\mathcal L_{\\mathrm{vq}} = \\|\\mathrm{sg}[z] - z_q\\|_2^2 + \\beta\\,\\|z - \\mathrm{sg}[z_q]\\|_2^2,\\quad \\beta = 0.25,

with the straight-through estimator ``z + sg[z_q − z]`` passing the decoder's gradient to the encoder. Both
squared norms are means over elements, as in the reference code. The codebook is trained by the gradient of the
first term only; nothing revives unused ("dead") codes.

Ref: van den Oord et al. 2017, eqs. (1)-(3); zalandoresearch/pytorch-vq-vae ``vq-vae.ipynb`` (``VectorQuantizer``:
initial codebook U(−1/K, 1/K), mean-squared losses) and lyndonzheng/CVQ-VAE ``quantise.py`` (same loss form,
β = 0.25), which FQ-VAE's eq. (1) restates (Feng & Liu 2025, §3.1).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .base import CodebookQuantizer, batch_perplexity, squared_distances, straight_through, uniform_codebook

__all__ = ["VectorQuantizer"]


class VectorQuantizer(CodebookQuantizer):
    """VQ-VAE quantiser: L2 nearest code, codebook + β·commitment loss, straight-through gradient.

    Args:
        num_codes: codebook size K (512: the CVQ-VAE protocol FQ-VAE follows).
        dim: code dimension D (64 in the CVQ-VAE toy models).
        beta: commitment weight β (0.25, VQ-VAE and FQ-VAE eq. 1).
        normalize: ℓ2-normalise vectors and codes (:attr:`CodebookQuantizer.normalize`; off for VQ-VAE).

    Shapes: ``z (..., D)`` → ``z_q (..., D)``, ``indices (...)``; terms ``loss``, ``codebook``, ``commitment``,
    ``perplexity``.
    """

    def __init__(self, num_codes: int = 512, dim: int = 64, beta: float = 0.25, normalize: bool = False) -> None:
        super().__init__(num_codes, dim, normalize)
        if not beta >= 0:
            raise ValueError(f"VectorQuantizer: beta must be >= 0, got {beta!r}")
        self.beta = float(beta)
        self.codebook = nn.Parameter(uniform_codebook(num_codes, dim))

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        with torch.autocast(z.device.type, enabled=False):
            flat, lead = self.flatten(z)
            codes = self.codes()
            with torch.no_grad():
                idx = squared_distances(flat, codes).argmin(dim=1)
            q = torch.nn.functional.embedding(idx, codes)
            loss, cb, cm = self.commitment_terms(flat, q, self.beta)
            z_q = straight_through(flat, q)
        terms = {"loss": loss, "codebook": cb.detach(), "commitment": cm.detach(),
                 "perplexity": batch_perplexity(idx, self.num_codes)}
        return z_q.reshape(*lead, self.dim), idx.reshape(lead), terms

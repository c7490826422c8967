"""CVQ-VAE's online clustered codebook (Zheng & Vedaldi, ICCV 2023).

A VQ-VAE quantiser (codebook + β·commitment loss, straight-through) whose codes are, at every training step,
pulled towards an *anchor* drawn from the current batch, the less so the more they are used:

.. math::
    N_k(t) = \\gamma N_k(t-1) + (1-\\gamma)\\,\\frac{n_k(t)}{M_t},\\qquad
    \\alpha_k(t) = \\exp\\!\\Big(-\\frac{N_k(t)\\,K\\,10}{1-\\gamma} - \\epsilon\\Big),

    e_k(t) = (1-\\alpha_k(t))\\,e_k(t-1) + \\alpha_k(t)\\,\\hat z_k(t),

with :math:`n_k(t)` the uses of code k among the batch's :math:`M_t` assignments, γ = 0.99, ε = 1e-3, K the
codebook size, and the anchor :math:`\\hat z_k(t)` the batch vector closest to code k (``anchor="closest"``, the
README's setting) or a uniformly drawn batch vector (``"random"``). A code used at the uniform rate 1/K has
α = exp(−1000): unchanged; a code that stops being used drifts to its anchor within a few steps ("dead codes are
re-anchored"). The update overwrites the codebook values outside the optimiser, inside ``forward`` in training
mode, after the loss terms are computed (the official code's order); the codebook also receives the gradient of
the codebook loss.

The lookup uses the cosine similarity of ``z`` and the codes by default (``distance="cos"``: the official
``main.py`` default and README command), while ``z_q`` is the raw code vector (as the official code).

Ref: Zheng & Vedaldi 2023, "Online Clustered Codebook", eqs. (4)-(6); lyndonzheng/CVQ-VAE ``quantise.py``
(``embed_prob``, ``decay = exp(−embed_prob·K·10/(1−0.99) − 1e−3)``, ``anchor='closest'``), ``main.py`` defaults.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .base import CodebookQuantizer, batch_perplexity, check_fraction, squared_distances, straight_through, uniform_codebook

__all__ = ["ClusteredQuantizer", "DISTANCES", "ANCHORS"]

DISTANCES = ("cos", "l2")
ANCHORS = ("closest", "random")


class ClusteredQuantizer(CodebookQuantizer):
    """CVQ-VAE quantiser: VQ lookup + loss, and the usage-weighted anchor update of the codebook.

    Args:
        num_codes: codebook size K (512).
        dim: code dimension (64).
        beta: commitment weight β (0.25).
        decay: γ of the usage average (0.99).
        distance: ``"cos"`` (official default) or ``"l2"`` for the lookup and the anchors.
        anchor: ``"closest"`` (the batch vector nearest each code; official README) or ``"random"``.
        eps: ε in α (1e-3).
        usage_scale: the factor 10 in α.
        normalize: ℓ2-normalise vectors and codes (:attr:`CodebookQuantizer.normalize`; off for CVQ-VAE, whose
            ``"cos"`` lookup normalises only for the lookup).

    Buffers: ``usage`` (K,) = :math:`N_k`, the running average code share. Terms: ``loss``, ``codebook``,
    ``commitment``, ``perplexity``, ``mean_alpha`` (mean update weight of the step; 0 in eval mode).
    """

    def __init__(self, num_codes: int = 512, dim: int = 64, beta: float = 0.25, decay: float = 0.99,
                 distance: str = "cos", anchor: str = "closest", eps: float = 1e-3, usage_scale: float = 10.0,
                 normalize: bool = False) -> None:
        super().__init__(num_codes, dim, normalize)
        name = type(self).__name__
        if distance not in DISTANCES:
            raise ValueError(f"{name}: unknown distance {distance!r}; choose one of {DISTANCES}")
        if anchor not in ANCHORS:
            raise ValueError(f"{name}: unknown anchor {anchor!r}; choose one of {ANCHORS}")
        if not beta >= 0:
            raise ValueError(f"{name}: beta must be >= 0, got {beta!r}")
        self.beta = float(beta)
        self.decay = check_fraction("decay", decay, name)
        self.distance = distance
        self.anchor = anchor
        self.eps = float(eps)
        self.usage_scale = float(usage_scale)
        self.codebook = nn.Parameter(uniform_codebook(num_codes, dim))
        self.register_buffer("usage", torch.zeros(num_codes))

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, beta={self.beta}, decay={self.decay}, distance={self.distance!r}, anchor={self.anchor!r}"

    # -------------------------------------------------------------------------------------------- maths
    def scores(self, flat: Tensor) -> Tensor:
        """Similarity of each row of ``flat (M, D)`` to each code, higher = closer: ``(M, K)`` (no grad)."""
        with torch.no_grad():
            codebook = self.codes().detach()
            if self.distance == "cos":
                return F.normalize(flat.detach(), dim=1) @ F.normalize(codebook, dim=1).t()
            return -squared_distances(flat.detach(), codebook)

    def update_weights(self) -> Tensor:
        """α_k of the current usage: ``exp(−N_k·K·10/(1−γ) − ε)`` (K,)."""
        return torch.exp(-self.usage * (self.num_codes * self.usage_scale / (1.0 - self.decay)) - self.eps)

    def anchors(self, flat: Tensor, scores: Tensor) -> Tensor:
        """One anchor per code from the batch ``flat (M, D)``: ``(K, D)``."""
        if self.anchor == "closest":
            return flat[scores.argmax(dim=0)]
        pick = torch.randint(0, flat.shape[0], (self.num_codes,), device=flat.device)
        return flat[pick]

    @torch.no_grad()
    def update_codebook(self, flat: Tensor, scores: Tensor, idx: Tensor) -> Tensor:
        """One online update (usage average, then α, then the anchor pull); returns α (K,)."""
        counts = torch.bincount(idx, minlength=self.num_codes).to(self.usage.dtype)
        self.usage.mul_(self.decay).add_(counts / idx.numel(), alpha=1.0 - self.decay)
        alpha = self.update_weights().unsqueeze(1)
        anchors = self.anchors(flat.detach(), scores)
        new = self.codebook.data.float() * (1.0 - alpha) + anchors * alpha
        self.codebook.data.copy_(new.to(self.codebook.dtype))
        return alpha.squeeze(1)

    # -------------------------------------------------------------------------------------------- forward
    def forward(self, z: Tensor) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        with torch.autocast(z.device.type, enabled=False):
            flat, lead = self.flatten(z)
            s = self.scores(flat)
            idx = s.argmax(dim=1)
            q = F.embedding(idx, self.codes())
            loss, cb, cm = self.commitment_terms(flat, q, self.beta)
            z_q = straight_through(flat, q)
            mean_alpha = torch.zeros((), device=flat.device)
            if self.training:
                mean_alpha = self.update_codebook(flat, s, idx).mean()
        terms = {"loss": loss, "codebook": cb.detach(), "commitment": cm.detach(),
                 "perplexity": batch_perplexity(idx, self.num_codes), "mean_alpha": mean_alpha}
        return z_q.reshape(*lead, self.dim), idx.reshape(lead), terms


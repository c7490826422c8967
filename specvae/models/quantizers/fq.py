"""FQ-VAE's codebook update: usage average, anchors and the Pearson dependency of the codes (Feng & Liu 2025).

FQ-VAE keeps VQ-VAE's lookup and loss (eq. 1, β = 0.25, straight-through) and moves every code towards an anchor
at every training step (eqs. 6-8, CVQ-VAE's update), with an update weight that also grows with the code's
linear dependency on the rest of the codebook (eqs. 7, 9, 10):

.. math::
    N_k(t) = \\gamma N_k(t-1) + (1-\\gamma)\\,\\frac{n_k(t)}{B\\cdot U}  \\quad (8)

    \\delta_k = \\max_{j \\ne k} \\frac{\\mathrm{cov}(e_k, e_j)}{\\sigma_{e_k}\\sigma_{e_j}},\\quad
    \\mathrm{cov}(e_k, e_j) = \\tfrac{1}{n-1}\\sum_{i=1}^{n}(e_{ki}-\\bar e_k)(e_{ji}-\\bar e_j)  \\quad (9, 10)

    \\alpha_k(t) = \\exp\\!\\Big(-\\frac{N_k(t)}{\\max(\\delta_k, \\delta_{\\min})}\\cdot\\frac{M\\cdot 10}{1-\\gamma}
                   - \\epsilon\\Big)  \\quad (7)

    e_k(t) = (1-\\alpha_k(t))\\,e_k(t-1) + \\alpha_k(t)\\,\\hat z_k(t)  \\quad (6)

with γ = 0.99, ε = 1e-3, M = K anchors (one per code), n the code dimension, :math:`n_k(t)` the uses of code k
among the batch's B·U assignments and :math:`\\hat z_k(t)` the batch vector nearest to code k.

Choices where the paper is open (each once, here):

* **Divide by δ** (eq. 7 extracts ambiguously as ``N_k/δ_k`` or ``N_k·δ_k``): only division matches "the higher the
  correlation, the larger the update for that codevector" (§3.2.3). ``dependency="multiply"`` gives the other
  reading; ``"none"`` sets δ ≡ 1, i.e. CVQ-VAE's update with FQ-VAE's L2 lookup (ablation configuration C).
* **δ is clamped below at** δ_min = 1e-3 (a Pearson coefficient can be ≤ 0, which the formula cannot divide by);
  a code uncorrelated with all others is then updated only while it is (nearly) unused.
* δ is computed on the detached codebook **before** the step's update (the :math:`e(t-1)` of eq. 6), at every
  training step, over the code dimension (eq. 10's n), excluding j = k; the index set {0,…,M} of eq. 9 is read as
  "every other code". Constant codes (σ = 0) have correlation 0.
* **Lookup by L2 distance** (eq. 1's norm); CVQ-VAE's cosine lookup is ``distance="cos"``.
* :math:`B\\cdot h\\cdot w` of eq. 8 is read as the number of assignments of the batch (B·U for FQ-VAE).

Ref: Feng & Liu 2025, "Frequency-Quantized Variational Autoencoder Based on 2D-FFT", CMC 83(2), §3.2.3, eqs. (6)-(10)
and §3.1 eq. (1); the constants 10 and 1e-3 and the anchor rule from lyndonzheng/CVQ-VAE ``quantise.py``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .cvq import ClusteredQuantizer

__all__ = ["FQQuantizer", "pearson_dependency", "DEPENDENCY_MODES"]

DEPENDENCY_MODES = ("divide", "multiply", "none")


def pearson_dependency(codebook: Tensor) -> Tensor:
    """δ_k of FQ-VAE eq. (9): each code's largest Pearson correlation with another code, ``(K,)`` float32.

    The correlation of two codes is taken across their n components (eq. 10; the 1/(n−1) cancels in the
    coefficient). Needs K >= 2.
    """
    if codebook.ndim != 2 or codebook.shape[0] < 2:
        raise ValueError(f"pearson_dependency: need a (K >= 2, n) codebook, got shape {tuple(codebook.shape)}")
    e = codebook.detach().float()
    centred = e - e.mean(dim=1, keepdim=True)
    norm = centred.norm(dim=1, keepdim=True)
    unit = torch.where(norm > 0, centred / norm.clamp_min(torch.finfo(e.dtype).tiny), torch.zeros_like(centred))
    corr = unit @ unit.t()
    corr.fill_diagonal_(float("-inf"))
    return corr.max(dim=1).values


class FQQuantizer(ClusteredQuantizer):
    """FQ-VAE quantiser: VQ lookup + loss (eq. 1) and the usage + Pearson-dependency codebook update (eqs. 6-10).

    Args:
        num_codes: codebook size K = M (512: "same hyperparameter settings" as the CVQ-VAE protocol).
        dim: code dimension n (for FQ-VAE's frequency components 2·h·(⌊w/2⌋+1), e.g. 1088 on CIFAR-10).
        beta: commitment weight β (0.25, eq. 1, cited to CVQ-VAE).
        gamma: γ of eq. (8) (0.99).
        eps: ε of eq. (7) (1e-3).
        dependency: ``"divide"`` (eq. 7 as read here), ``"multiply"`` or ``"none"`` (δ ≡ 1: CVQ-VAE's update).
        delta_min: lower clamp of δ (1e-3).
        distance: ``"l2"`` (eq. 1) or ``"cos"`` (CVQ-VAE's lookup).
        anchor: ``"closest"`` (eq. 6: "the nearest latent vector") or ``"random"``.
        normalize: ℓ2-normalise the components and the codes (:attr:`CodebookQuantizer.normalize`; FQ-VAE's
            frequency quantiser sets it, see :class:`specvae.models.fqvae.FQVAE`). δ is unchanged by it (a Pearson
            coefficient does not depend on a row's scale).

    Buffers: ``usage`` (K,) = N_k of eq. (8). Terms: ``loss``, ``codebook``, ``commitment``, ``perplexity``,
    ``mean_alpha``, ``mean_delta`` (mean δ_k of the step's codebook; NaN in eval mode or with ``dependency="none"``).
    """

    def __init__(self, num_codes: int = 512, dim: int = 64, beta: float = 0.25, gamma: float = 0.99,
                 eps: float = 1e-3, dependency: str = "divide", delta_min: float = 1e-3, distance: str = "l2",
                 anchor: str = "closest", normalize: bool = False) -> None:
        super().__init__(num_codes, dim, beta=beta, decay=gamma, distance=distance, anchor=anchor, eps=eps,
                         normalize=normalize)
        if dependency not in DEPENDENCY_MODES:
            raise ValueError(f"FQQuantizer: unknown dependency {dependency!r}; choose one of {DEPENDENCY_MODES}")
        if num_codes < 2 and dependency != "none":
            raise ValueError("FQQuantizer: the Pearson dependency needs at least 2 codes (num_codes >= 2)")
        if not 0.0 < delta_min <= 1.0:
            raise ValueError(f"FQQuantizer: delta_min must lie in (0, 1], got {delta_min!r}")
        self.dependency = dependency
        self.delta_min = float(delta_min)
        self._last_delta: Tensor | None = None

    @property
    def gamma(self) -> float:
        return self.decay

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, dependency={self.dependency!r}, delta_min={self.delta_min}"

    def delta(self) -> Tensor:
        """δ_k (eq. 9) of the current codebook, clamped to ``[delta_min, 1]`` (K,)."""
        return pearson_dependency(self.codebook).clamp(self.delta_min, 1.0)

    def update_weights(self) -> Tensor:
        """α_k of eq. (7) from the current usage and codebook (K,)."""
        scale = self.num_codes * self.usage_scale / (1.0 - self.decay)
        if self.dependency == "none":
            self._last_delta = None
            return torch.exp(-self.usage * scale - self.eps)
        d = self.delta()
        self._last_delta = d
        n = self.usage / d if self.dependency == "divide" else self.usage * d
        return torch.exp(-n * scale - self.eps)

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        self._last_delta = None
        z_q, idx, terms = super().forward(z)
        d = self._last_delta
        terms["mean_delta"] = (d.mean() if d is not None else torch.full((), float("nan"), device=z.device)).detach()
        return z_q, idx, terms

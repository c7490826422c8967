"""The VAE objective of IRMAE / Björk et al. (2022), and Björk's eq. (3) spatial + spectral combination.

**IRMAE's VAE loss** (Jing et al. 2020, ``model.py``, ``AE.forward`` with ``vae=True``)::

    L = BCE_mean(x̂, x) − β · mean_{batch, latent}(1 + logvar − mu² − exp(logvar)),   β = 0.1

``BCE_mean`` is :func:`torch.nn.functional.binary_cross_entropy` averaged over every pixel and channel of the
batch. There is no ½ in front of the KL sum, so the second term equals ``2β · KL`` averaged over batch and latent
units, with ``KL = −½(1 + logvar − mu² − e^logvar)`` per unit. We keep IRMAE's form and call the whole second
term ``kl`` in the logs.

**Björk et al. eq. (3)**: the reconstruction term ``L`` of the VAE (eq. 1, "replace L in Sec. 2.1 with Eq. 3") is

    L(x, x̂) = (1 − α) · L_s(x, x̂) + α · L_f(x, x̂),   α ∈ [0, 1],

with ``L_s`` the spatial BCE and ``L_f`` a spectral term (the FFT loss of eq. 2, or the AI loss of Durall et al.).
The KL term is added unchanged. The paper does not state α; :data:`DEFAULT_ALPHA` is our choice (see its comment
and the chapter's reproduction notes).

**Watson-DFT** (Czolbe et al. 2020, and Björk Sec. 2.1: "replace [log p(x|z)] with an energy-based model
p(x|z) ∝ exp{−L(x, μ_x(z))}"): the perceptual distance *replaces* the BCE, as in Czolbe's own VAE. Czolbe sums the
distance and the KL over the batch; IRMAE averages BCE over pixels. To keep one KL weight β for all objectives, the
per-image Watson distance is divided by the number of values per image (C·H·W), exactly as IRMAE's mean BCE is the
summed negative log-likelihood divided by it (:class:`PerPixel`).

Ref: Jing et al., NeurIPS 2020, code ``facebookresearch/irmae`` ``model.py`` (loss, β = 0.1 in ``train.py``);
Björk et al., ICASSP 2022, eqs. (1) and (3); Czolbe et al., NeurIPS 2020, Sec. 4 (VAE with Watson loss).
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor, nn
from torch.nn import functional as F

__all__ = [
    "DEFAULT_BETA",
    "DEFAULT_ALPHA",
    "irmae_kl",
    "BCELoss",
    "SpectralCombination",
    "PerPixel",
    "VAELoss",
]

#: IRMAE's KL weight (``train.py --beta``, default 0.1)
DEFAULT_BETA: float = 0.1
#: Björk's α of eq. (3): not stated in the paper. 0.5 (equal weights, the neutral point of α ∈ [0, 1]) is our
#: default; the chapter runs a small α sweep on MNIST to show its effect.
DEFAULT_ALPHA: float = 0.5


def irmae_kl(mu: Tensor, logvar: Tensor) -> Tensor:
    """IRMAE's KL term ``−mean(1 + logvar − mu² − exp(logvar))`` over batch and latent units (a scalar ≥ 0).

    Equals twice the mean per-unit KL divergence ``KL(N(mu, e^logvar) || N(0, 1))``; zero iff mu = 0, logvar = 0.
    Ref: ``facebookresearch/irmae`` ``model.py`` (``AE.forward``); Kingma & Welling 2014, Appendix B.
    """
    if mu.shape != logvar.shape:
        raise ValueError(f"mu and logvar must have the same shape, got {tuple(mu.shape)} and {tuple(logvar.shape)}")
    mu, logvar = mu.float(), logvar.float()
    return -torch.mean(1 + logvar - mu.square() - logvar.exp())


class BCELoss(nn.Module):
    """Binary cross-entropy averaged over all pixels, channels and images: IRMAE's spatial loss ``L_s``.

    ``forward(pred, target) -> scalar`` with both ``(N, C, H, W)`` in [0, 1]; computed in float32 outside autocast
    (BCE is not autocast-safe). ``pred`` is clamped to ``[eps, 1 − eps]`` (torch clamps the log at −100 anyway).
    Ref: IRMAE ``model.py`` (``F.binary_cross_entropy(x_hat, x)``).
    """

    def __init__(self, eps: float = 1e-7) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        if pred.shape != target.shape:
            raise ValueError(f"pred and target must have the same shape, got {tuple(pred.shape)} and "
                             f"{tuple(target.shape)}")
        with torch.autocast(pred.device.type, enabled=False):
            p = pred.float().clamp(self.eps, 1 - self.eps)
            return F.binary_cross_entropy(p, target.float())


class SpectralCombination(nn.Module):
    """Björk et al. eq. (3): ``(1 − α) · L_s(pred, target) + α · L_f(pred, target)``.

    Args:
        spatial: ``L_s``, an ``nn.Module`` ``(pred, target) -> scalar`` (Björk: the BCE).
        spectral: ``L_f``, e.g. :class:`specvae.losses.FFTLoss` (eq. 2) or :class:`specvae.losses.AzimuthalLoss`.
        alpha: α ∈ [0, 1]; α = 0 gives ``L_s`` alone and α = 1 gives ``L_f`` alone.

    ``terms(pred, target)`` returns ``{"spatial": L_s, "spectral": L_f, "recon": combined}`` for logging.
    Ref: Björk et al., ICASSP 2022, eq. (3).
    """

    def __init__(self, spatial: nn.Module, spectral: nn.Module, alpha: float = DEFAULT_ALPHA) -> None:
        super().__init__()
        if not (isinstance(alpha, (int, float)) and 0.0 <= float(alpha) <= 1.0):
            raise ValueError(f"alpha must be a number in [0, 1] (Björk eq. 3), got {alpha!r}")
        self.spatial, self.spectral, self.alpha = spatial, spectral, float(alpha)

    def terms(self, pred: Tensor, target: Tensor) -> dict[str, Tensor]:
        a = self.alpha
        ls = self.spatial(pred, target) if a < 1.0 else None
        lf = self.spectral(pred, target) if a > 0.0 else None
        if ls is None:
            recon = lf
        elif lf is None:
            recon = ls
        else:
            recon = (1.0 - a) * ls + a * lf
        out = {"recon": recon}
        if ls is not None:
            out["spatial"] = ls
        if lf is not None:
            out["spectral"] = lf
        return out

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        return self.terms(pred, target)["recon"]


class PerPixel(nn.Module):
    """A summed (per-image) distance turned into a per-value mean: ``mean_n D(pred_n, target_n) / (C·H·W)``.

    Wraps a loss whose ``forward(pred, target)`` returns either one number per image ``(N,)`` or the *sum* over
    the batch (Czolbe's ``reduction="sum"``); divides by ``N·C·H·W`` so it sits on the same scale as a mean BCE.
    Ref: the normalisation argued in this module's docstring (IRMAE mean BCE = summed NLL / (N·C·H·W)).
    """

    def __init__(self, loss: nn.Module | Callable[[Tensor, Tensor], Tensor]) -> None:
        super().__init__()
        self.loss = loss

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        d = self.loss(pred, target)
        n, c, h, w = pred.shape
        if d.ndim == 1:
            if d.shape[0] != n:
                raise ValueError(f"per-image distance has {d.shape[0]} entries for a batch of {n}")
            d = d.sum()
        elif d.ndim != 0:
            raise ValueError(f"the wrapped loss must return a scalar (batch sum) or one value per image, got shape "
                             f"{tuple(d.shape)}")
        return d / (n * c * h * w)


class VAELoss(nn.Module):
    """The full VAE objective: ``recon(x̂, x) + β · irmae_kl(mu, logvar)``.

    Args:
        recon: the reconstruction loss ``(pred, target) -> scalar``; default :class:`BCELoss` (vanilla VAE);
            a :class:`SpectralCombination` for Björk's eq. (3); a :class:`PerPixel` Watson-DFT for Czolbe's VAE.
        beta: KL weight (IRMAE: 0.1).

    ``forward(recon_x, x, mu, logvar) -> scalar``; ``terms(...)`` returns ``{"loss", "recon", "kl", ...}`` (plus
    ``spatial``/``spectral`` for eq. 3).
    Ref: IRMAE ``model.py``; Björk et al. eq. (1) with L replaced by eq. (3).
    """

    def __init__(self, recon: nn.Module | None = None, beta: float = DEFAULT_BETA) -> None:
        super().__init__()
        if not (isinstance(beta, (int, float)) and beta >= 0):
            raise ValueError(f"beta must be a number >= 0, got {beta!r}")
        self.recon = recon if recon is not None else BCELoss()
        self.beta = float(beta)

    def terms(self, recon_x: Tensor, x: Tensor, mu: Tensor, logvar: Tensor) -> dict[str, Tensor]:
        if isinstance(self.recon, SpectralCombination):
            out = self.recon.terms(recon_x, x)
        else:
            out = {"recon": self.recon(recon_x, x)}
        kl = irmae_kl(mu, logvar)
        out["kl"] = kl
        out["loss"] = out["recon"].float() + self.beta * kl
        return out

    def forward(self, recon_x: Tensor, x: Tensor, mu: Tensor, logvar: Tensor) -> Tensor:
        return self.terms(recon_x, x, mu, logvar)["loss"]

"""The VQGAN / FA-VAE training objective: every term named and weighted by a dataclass.

* :class:`VQGANLossWeights` -- the weights of L1, LPIPS, codebook, GAN, image FFL and the feature spectrum loss.
* :class:`VQGANTraining` -- the module :func:`specvae.train.fit` trains: the :class:`~specvae.models.vqgan.VQGAN`,
  its discriminator, and the feature spectrum loss (which holds DSL's σ, so σ is a model parameter, eq. 10).
* :class:`VQGANObjective` -- the generator step (``fit``'s main objective).
* :class:`DiscriminatorObjective` -- the discriminator step (a ``specvae.train.Phase``'s objective).
* :func:`phases` -- the discriminator's ``Phase`` (started at ``disc_start``).

Generator loss per step (images on the [-1, 1] scale X, X̂ as in FA-VAE; fact sheet §3.2, Lin et al. eq. 9):

``L_G = w_l1·|X − X̂|₁ + w_lpips·LPIPS(X̂, X) + w_cb·L_Q + 𝟙[step ≥ disc_start]·λ·w_gan·(−mean D(X̂))
+ w_ffl·FFL(X̂, X) + w_spectrum·mean_k SL_k(A_k, C_k)``

with λ the adaptive weight on the decoder's last layer computed from ``L_rec = |X − X̂|₁ + w_lpips·LPIPS`` (the
code's; clamped to [0, 1e4], detached). FA-VAE's values: all weights 1 except ``gan`` 0.75 (CelebA-HQ) and
``spectrum`` 0.01 (on the mean over its 4 pairs). The discriminator step uses the generator step's reconstruction,
cached and detached (the official code re-encodes the batch in train mode instead, which runs the codebook EMA a
second time per step; we do not copy that).

Logged terms: ``l1``, ``lpips``, ``rec`` (= l1 + lpips, unweighted: the paper's eq. 1 and the term the
convergence rule of a GAN run watches), ``codebook``, ``ffl``, ``spectrum`` and ``spectrum_<k>`` per pair,
``sigma_<j>`` (every σ), ``gan``, ``gan_weight`` (λ), ``d_weight``; the discriminator phase logs ``disc/loss``,
``disc/logits_real``, ``disc/logits_fake``.

Ref: Esser et al., CVPR 2021 (VQGAN loss, taming ``vqperceptual.py``); Lin et al., CVPR 2023 eq. (1), (9), (10);
FA-VAE ``favae_scripts/train_favae.py`` (fact sheet §3.2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

import torch
from torch import Tensor, nn

from specvae.losses.adversarial import (PatchDiscriminator, adaptive_weight, check_disc_start, hinge_d_loss,
                                        hinge_g_loss)
from specvae.losses.focal_frequency import focal_frequency_loss
from specvae.losses.spectrum import FeatureSpectrumLoss
from specvae.models.vqgan import VQGAN

__all__ = ["VQGANLossWeights", "VQGANTraining", "VQGANObjective", "DiscriminatorObjective", "phases"]


@dataclass(frozen=True)
class VQGANLossWeights:
    """Weights of the generator loss's terms (defaults: FA-VAE's CelebA-HQ scripts; a plain VQGAN sets
    ``ffl`` and ``spectrum`` to 0).

    Args:
        l1: weight of ``mean |X − X̂|`` on [-1, 1] images (1).
        lpips: weight of LPIPS (1; VGG in FA-VAE).
        codebook: weight of the quantiser loss L_Q (1; FA-VAE's commitment MSE).
        gan: w_D, weight of the adaptive-weighted generator hinge term (0.75 CelebA-HQ, 0.25 FFHQ).
        ffl: α, weight of the image focal frequency loss (1 for FA-VAE, 0 for VQGAN).
        spectrum: β on the mean over the feature pairs of (D)SL (0.01 for FA-VAE = 0.0025 per pair of 4).
        disc: weight of the discriminator's hinge loss (1).
    """

    l1: float = 1.0
    lpips: float = 1.0
    codebook: float = 1.0
    gan: float = 0.75
    ffl: float = 1.0
    spectrum: float = 0.01
    disc: float = 1.0

    def __post_init__(self) -> None:
        for name in ("l1", "lpips", "codebook", "gan", "ffl", "spectrum", "disc"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                raise ValueError(f"VQGANLossWeights.{name} must be a finite number >= 0, got {v!r}")


class VQGANTraining(nn.Module):
    """Everything trainable in a VQGAN / FA-VAE run, as one module for :func:`specvae.train.fit`.

    Args:
        vqgan: the autoencoder.
        disc: the discriminator (``None``: no GAN term).
        spectrum: the feature spectrum loss (``None``: none); its σ (DSL) are trained with the generator. Its own
            ``loss_weight`` should be 1: the objective applies :attr:`VQGANLossWeights.spectrum`.
    """

    def __init__(self, vqgan: VQGAN, disc: PatchDiscriminator | None = None,
                 spectrum: FeatureSpectrumLoss | None = None) -> None:
        super().__init__()
        self.vqgan = vqgan
        self.disc = disc
        self.spectrum = spectrum
        if spectrum is not None:
            n = len(vqgan.pair_names())
            if n == 0:
                raise ValueError("a feature spectrum loss needs FCMs (VQGANConfig.fcm) to pair features with")
            if spectrum.n_pairs != n:
                raise ValueError(f"the spectrum loss has {spectrum.n_pairs} pairs, the model {n} "
                                 f"({vqgan.pair_names()})")
            if spectrum.sigma_layout == "official" and [c for _, c in vqgan.pair_names()] != \
                    ["out", "mid", "dec_in", "z"]:
                raise ValueError("sigma_layout='official' indexes σ by the official code's four feature lists; it "
                                 "needs exactly the four default FCM positions")

    def forward(self, x: Tensor):
        return self.vqgan(x)


def _lpips_default(net: str) -> nn.Module:
    from specvae.metrics import LPIPS

    return LPIPS(net, reduction="mean", normalize=False)


class VQGANObjective:
    """The generator objective ``objective(model, batch, step) -> (loss, terms)`` (see the module docstring).

    Args:
        weights: :class:`VQGANLossWeights`.
        disc_start: first step with the GAN term (and the discriminator phase).
        lpips: the LPIPS module (inputs on [-1, 1], ``normalize=False``, ``reduction="mean"``); ``None`` builds
            :class:`specvae.metrics.LPIPS` of ``lpips_net`` on first use. Unused when ``weights.lpips == 0``.
        lpips_net: ``"vgg"`` (FA-VAE/VQGAN) or ``"alex"`` (cheaper on a CPU).
        max_gan_weight: clamp of the adaptive weight λ (1e4).
    """

    def __init__(self, weights: VQGANLossWeights = VQGANLossWeights(), *, disc_start: int = 0,
                 lpips: nn.Module | None = None, lpips_net: str = "vgg", max_gan_weight: float = 1e4) -> None:
        if not isinstance(weights, VQGANLossWeights):
            raise TypeError(f"weights must be a VQGANLossWeights, got {type(weights).__name__}")
        if isinstance(disc_start, bool) or not isinstance(disc_start, int) or disc_start < 0:
            raise ValueError(f"disc_start must be an integer step >= 0, got {disc_start!r}")
        self.weights, self.disc_start = weights, disc_start
        self.lpips_net, self.max_gan_weight = lpips_net, max_gan_weight
        self._lpips = lpips
        self.cached_recon: Tensor | None = None

    def lpips(self, device: torch.device) -> nn.Module:
        if self._lpips is None:
            self._lpips = _lpips_default(self.lpips_net)
        if next(self._lpips.buffers(), torch.empty(0)).device != device:
            self._lpips = self._lpips.to(device)
        return self._lpips

    def __call__(self, model: VQGANTraining, x: Tensor, step: int) -> tuple[Tensor, dict[str, Any]]:
        w = self.weights
        out = model.vqgan(x)
        x_pm, y = 2 * x - 1, out.recon_pm
        l1 = (x_pm - y).abs().float().mean()
        terms: dict[str, Any] = {"l1": l1.detach()}
        lp = self.lpips(x.device)(y, x_pm) if w.lpips > 0 else l1.new_zeros(())
        terms["lpips"] = lp.detach()
        terms["rec"] = (l1 + lp).detach()
        rec = w.l1 * l1 + w.lpips * lp
        loss = rec + w.codebook * out.codebook_loss
        terms["codebook"] = out.codebook_loss.detach()
        if w.ffl > 0:
            ffl = focal_frequency_loss(y, x_pm)
            loss = loss + w.ffl * ffl
            terms["ffl"] = ffl.detach()
        if model.spectrum is not None and w.spectrum > 0:
            sl, per_pair = model.spectrum(*out.pairs())
            loss = loss + w.spectrum * sl
            terms["spectrum"] = sl.detach()
            for k, v in enumerate(per_pair):
                terms[f"spectrum_{k}"] = v
            if model.spectrum.sigma is not None:
                for j, s in enumerate(model.spectrum.sigma.detach()):
                    terms[f"sigma_{j}"] = s
        if model.disc is not None and w.gan > 0 and step >= self.disc_start:
            g = hinge_g_loss(model.disc(y))
            if torch.is_grad_enabled() and model.training:
                lam = adaptive_weight(l1 + w.lpips * lp, g, model.vqgan.last_layer, max_weight=self.max_gan_weight)
            else:
                lam = g.new_zeros(())
            loss = loss + lam * w.gan * g
            terms["gan"] = g.detach()
            terms["gan_weight"] = lam
        self.cached_recon = y.detach()
        return loss, terms


class DiscriminatorObjective:
    """The discriminator step: ``w_disc · hinge_d_loss(D(X), D(sg(X̂)))`` on the generator step's cached X̂."""

    def __init__(self, generator: VQGANObjective) -> None:
        self.generator = generator

    def __call__(self, model: VQGANTraining, x: Tensor, step: int) -> tuple[Tensor, Mapping[str, Any]]:
        if model.disc is None:
            raise ValueError("the model has no discriminator (VQGANTraining(disc=None))")
        fake = self.generator.cached_recon
        if fake is None or fake.shape != x.shape:
            raise RuntimeError("the discriminator step needs the generator step's reconstruction of the same batch; "
                               "run it as a Phase after VQGANObjective in specvae.train.fit")
        real_logits = model.disc(2 * x - 1)
        fake_logits = model.disc(fake)
        loss = self.generator.weights.disc * hinge_d_loss(real_logits, fake_logits)
        return loss, {"logits_real": real_logits.detach().float().mean(),
                      "logits_fake": fake_logits.detach().float().mean()}


def phases(generator: VQGANObjective, steps: int, *, lr: float | None = None,
           betas: tuple[float, float] | None = None) -> tuple:
    """The discriminator's :class:`specvae.train.Phase` (``"disc"``, from ``generator.disc_start``).

    ``steps`` is the run length, checked against the start (a start at or past the end is an error).
    """
    from specvae.train import Phase

    check_disc_start(generator.disc_start, steps)
    return (Phase("disc", DiscriminatorObjective(generator), lambda m: m.disc.parameters(), lr=lr, betas=betas,
                  start_step=generator.disc_start),)

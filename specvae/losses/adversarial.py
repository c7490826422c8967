"""The VQGAN adversarial parts: PatchGAN discriminator, hinge losses, the adaptive generator weight.

* :class:`PatchDiscriminator` -- FA-VAE's default discriminator (pix2pix PatchGAN, 3 layers, BatchNorm).
* :func:`hinge_d_loss` -- ``½(mean relu(1 − D(x)) + mean relu(1 + D(x̂)))``.
* :func:`hinge_g_loss` -- ``−mean D(x̂)``.
* :func:`adaptive_weight` -- ``λ = ‖∇_W L_rec‖ / (‖∇_W L_G‖ + 1e-4)``, clamped to [0, 1e4], detached.
* :func:`check_disc_start` -- a discriminator start past the end of training is an error.

Ref: Esser et al., CVPR 2021, eq. (7) (adaptive weight) and taming-transformers@3ba01b24
``taming/modules/losses/vqperceptual.py``, ``taming/modules/discriminator/model.py``; Isola et al., CVPR 2017
(PatchGAN); Lim & Ye 2017 (hinge loss); FA-VAE ``models/discriminator.py`` and ``train_favae.py`` (fact sheet §3.2).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["PatchDiscriminator", "hinge_d_loss", "hinge_g_loss", "adaptive_weight", "check_disc_start"]


class PatchDiscriminator(nn.Module):
    """PatchGAN: 4×4 convs ``in→ndf`` (stride 2, LeakyReLU 0.2), then ``n_layers − 1`` more stride-2 and one
    stride-1 conv doubling the width up to ``8·ndf`` (no bias, BatchNorm, LeakyReLU 0.2), head 4×4 → 1 logit map.

    ``(N, 3, H, W)`` on the [-1, 1] scale -> logits ``(N, 1, h, w)`` (64 px: 6×6 with ``n_layers=3``).
    PyTorch's default initialisation, as FA-VAE's ``Discriminator`` (taming re-initialises with N(0, 0.02)).
    Ref: FA-VAE ``models/discriminator.py``; taming ``NLayerDiscriminator`` (fact sheet §3.2).
    """

    def __init__(self, in_channels: int = 3, ndf: int = 64, n_layers: int = 3) -> None:
        super().__init__()
        if n_layers < 1:
            raise ValueError(f"n_layers must be >= 1, got {n_layers}")
        layers: list[nn.Module] = [nn.Conv2d(in_channels, ndf, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
        mult = 1
        for n in range(1, n_layers + 1):
            prev, mult = mult, min(2**n, 8)
            stride = 2 if n < n_layers else 1
            layers += [nn.Conv2d(ndf * prev, ndf * mult, 4, stride=stride, padding=1, bias=False),
                       nn.BatchNorm2d(ndf * mult), nn.LeakyReLU(0.2)]
        layers.append(nn.Conv2d(ndf * mult, 1, 4, stride=1, padding=1))
        self.main = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.main(x)


def hinge_d_loss(logits_real: Tensor, logits_fake: Tensor) -> Tensor:
    """Discriminator hinge loss ``½·(mean relu(1 − D(x)) + mean relu(1 + D(x̂)))`` (taming ``hinge_d_loss``)."""
    return 0.5 * (F.relu(1.0 - logits_real.float()).mean() + F.relu(1.0 + logits_fake.float()).mean())


def hinge_g_loss(logits_fake: Tensor) -> Tensor:
    """Generator loss ``−mean D(x̂)`` (taming's ``g_loss``)."""
    return -logits_fake.float().mean()


def adaptive_weight(rec_loss: Tensor, g_loss: Tensor, last_layer: Tensor, *, max_weight: float = 1e4,
                    eps: float = 1e-4) -> Tensor:
    """``λ = ‖∇_W L_rec‖₂ / (‖∇_W L_G‖₂ + eps)``, clamped to ``[0, max_weight]``, detached (Esser et al. eq. 7).

    ``W`` = ``last_layer`` (the decoder's output conv weight). Both losses must depend on it; the graphs are
    kept for the later backward. ``L_rec`` is FA-VAE's L1 + LPIPS only (fact sheet §3.2).
    """
    g_rec = torch.autograd.grad(rec_loss, last_layer, retain_graph=True)[0]
    g_gan = torch.autograd.grad(g_loss, last_layer, retain_graph=True)[0]
    lam = g_rec.float().norm() / (g_gan.float().norm() + eps)
    return lam.clamp(0.0, max_weight).detach()


def check_disc_start(disc_start: int, steps: int) -> int:
    """Validate a discriminator start step against the run length (clear error when it would never start)."""
    if isinstance(disc_start, bool) or not isinstance(disc_start, int) or disc_start < 0:
        raise ValueError(f"disc_start must be an integer step >= 0, got {disc_start!r}")
    if disc_start >= steps:
        raise ValueError(f"the discriminator starts at step {disc_start}, at or past the end of training ({steps} "
                         "steps), so it would never train; lower disc_start (FA-VAE starts it after 1 of 800 "
                         "epochs on CelebA-HQ) or train longer")
    return disc_start

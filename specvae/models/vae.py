"""The convolutional VAE of IRMAE (Jing, Zbontar & LeCun, NeurIPS 2020), as used by Björk et al. (2022).

Björk et al. (ICASSP 2022, "Simpler is Better", Sec. 3) "employ the VAE networks from [37]" (IRMAE) for three data
sets: gray-scale Shapes and MNIST at 32×32 and CelebA at 64×64. The layers below follow IRMAE's ``model.py``
(``Shape_*``, ``MNIST_*``, ``CelebA_*`` encoders/decoders with ``vae=True``), read for facts only:

``shapes`` (32×32; Björk's Shapes are gray, so ``in_channels=1``; IRMAE's own Shapes are RGB)
    enc: Conv(C→32, 4, s2, p1) ReLU · Conv(32→64) ReLU · Conv(64→128) ReLU · Conv(128→256) ReLU   [32→16→8→4→2]
         · Conv(256→2n, k2, s1, p0)                                                                 [2→1]
    dec: ConvT(n→256, k2, s1, p0) ReLU · ConvT(256→128, 4, s2, p1) ReLU · ConvT(128→64) ReLU
         · ConvT(64→32) ReLU · **ConvT(32→C, 4, s2, p1)** · Sigmoid                                  [1→2→4→8→16→32]
``mnist`` (32×32, 1 channel; IRMAE resizes MNIST to 32×32)
    enc: Conv(1→32→64→128→256, 4, s2, p1) with ReLU after each · flatten 256·2·2 · Linear(1024→2n)
    dec: Linear(n→128·8·8) · ReLU · ConvT(128→64, 4, s2, p1) ReLU · **ConvT(64→32, 4, s2, p1)** ReLU
         · ConvT(32→1, k1, s1) · Sigmoid                                                            [8→16→32]
``celeba`` (64×64 RGB)
    enc: Conv(3→128→256→512→1024, 4, s2, p1) with ReLU after each · flatten 1024·4·4 · Linear(16384→2n)
    dec: Linear(n→1024·8·8) (no activation, as IRMAE) · ConvT(1024→512) ReLU · ConvT(512→256) ReLU
         · **ConvT(256→128, 4, s2, p1)** ReLU · ConvT(128→3, k1, s1) · Sigmoid                        [8→16→32→64]

The encoder's output is split into ``mu = out[:, :n]`` and ``logvar = out[:, n:]`` (IRMAE's order). IRMAE's
default latent size is ``n = 128`` for every data set (``train.py -n``, default 128); Björk et al. do not state
another, so 128 is our default.

**Up-sampling of the last layer** (``upsample``). ``"transposed"`` is IRMAE as written. ``"nearest_conv5"``
is Björk's "N.1.5" (Chandrasegaran et al., CVPR 2021): the last *up-sampling* layer (the one in bold above)
becomes nearest-neighbour ×2 followed by one 5×5 convolution (stride 1, padding 2) with the same input and output
channels, built by :func:`specvae.models.upsample.make_upsample`. For Shapes that is the decoder's last layer. For
MNIST and CelebA the decoder's last layer is a 1×1 stride-1 transposed convolution, which does not up-sample and
is a per-pixel linear map; "replace the last up-sampling layer" can therefore only mean the last *stride-2*
transposed convolution. We replace that one and keep the ReLU and the 1×1 head after it, so that N.1.5 changes
exactly one layer and nothing else (the alternative, replacing both, would also remove a layer and a
non-linearity). This choice is an ambiguity of the paper; the chapter's reproduction notes repeat it.

Ref: Jing et al., "Implicit Rank-Minimizing Autoencoder", NeurIPS 2020, code ``facebookresearch/irmae``
``model.py`` (layers) and ``train.py`` (n = 128); Björk et al. 2022 Sec. 2.3 and 3; Chandrasegaran et al. 2021 Sec. 4
(N.1.5).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from .upsample import UPSAMPLE_KINDS, make_upsample

__all__ = ["IRMAEVAE", "VAEArch", "ARCHITECTURES", "reparameterize", "irmae_vae_for"]

VAEArch = Literal["shapes", "mnist", "celeba"]
#: the three IRMAE architectures and the image size / default channels each expects
ARCHITECTURES: dict[str, dict[str, int]] = {
    "shapes": {"image_size": 32, "in_channels": 1},
    "mnist": {"image_size": 32, "in_channels": 1},
    "celeba": {"image_size": 64, "in_channels": 3},
}


def reparameterize(mu: Tensor, logvar: Tensor) -> Tensor:
    """Sample ``z = mu + exp(logvar / 2) · eps`` with ``eps ~ N(0, I)`` (Kingma & Welling 2014, Sec. 2.4)."""
    return mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)


def _conv_stack(channels: list[int]) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for c_in, c_out in zip(channels[:-1], channels[1:]):
        layers += [nn.Conv2d(c_in, c_out, 4, 2, 1), nn.ReLU(inplace=True)]
    return layers


class IRMAEVAE(nn.Module):
    """IRMAE's convolutional VAE for ``shapes`` / ``mnist`` (32×32) or ``celeba`` (64×64) images in [0, 1].

    Args:
        arch: ``"shapes"``, ``"mnist"`` or ``"celeba"`` (layers in the module docstring).
        latent_dim: ``n``, the size of ``z`` (IRMAE default 128); the encoder outputs ``2n`` numbers.
        in_channels: image channels; defaults to the architecture's (1 for shapes/mnist, 3 for celeba).
            IRMAE's MNIST net is gray only (``mnist`` accepts 1 channel); shapes and celeba accept 1 or 3.
        upsample: ``"transposed"`` (IRMAE) or ``"nearest_conv5"`` (N.1.5 in the last up-sampling layer).
        width_div: divide every hidden channel count by this (1 = IRMAE exactly). Only the ``cpu``/``smoke``
            presets use more than 1, to fit the wide CelebA net (128→1024 channels, 35M parameters) on a CPU;
            the book says so wherever such runs are shown.

    Shapes: ``encode(x: (N, C, S, S)) -> (mu, logvar)`` each ``(N, n)``; ``decode(z: (N, n)) -> (N, C, S, S)`` in
    (0, 1); ``forward(x) -> (recon, mu, logvar)`` with ``z`` sampled by :func:`reparameterize` in training mode
    and ``z = mu`` in eval mode (deterministic reconstructions for evaluation; IRMAE samples in both).
    """

    def __init__(self, arch: VAEArch = "mnist", latent_dim: int = 128, in_channels: int | None = None,
                 upsample: str = "transposed", width_div: int = 1) -> None:
        super().__init__()
        if arch not in ARCHITECTURES:
            raise ValueError(f"unknown IRMAE architecture {arch!r}; choose one of {tuple(ARCHITECTURES)}")
        if upsample not in UPSAMPLE_KINDS:
            raise ValueError(f"unknown up-sampling kind {upsample!r}; choose one of {UPSAMPLE_KINDS}")
        if isinstance(latent_dim, bool) or not isinstance(latent_dim, int) or latent_dim < 1:
            raise ValueError(f"latent_dim must be a positive integer, got {latent_dim!r}")
        c = ARCHITECTURES[arch]["in_channels"] if in_channels is None else in_channels
        if c not in (1, 3) or (arch == "mnist" and c != 1):
            raise ValueError(f"in_channels={c} is not supported by the {arch!r} net (mnist: 1; shapes/celeba: 1 or 3)")
        if isinstance(width_div, bool) or not isinstance(width_div, int) or width_div < 1 or 32 % width_div:
            raise ValueError(f"width_div must be a positive divisor of 32 (1 = IRMAE's widths), got {width_div!r}")
        self.arch, self.latent_dim, self.in_channels, self.upsample = arch, latent_dim, c, upsample
        self.width_div = width_div
        self.image_size = ARCHITECTURES[arch]["image_size"]
        n = latent_dim

        def h(channels: int) -> int:  # hidden width, IRMAE's divided by width_div
            return channels // width_div

        if arch == "shapes":
            self.encoder = nn.Sequential(*_conv_stack([c, h(32), h(64), h(128), h(256)]), nn.Conv2d(h(256), 2 * n, 2, 1, 0),
                                         nn.Flatten())
            self.decoder = nn.Sequential(
                nn.Unflatten(1, (n, 1, 1)),
                nn.ConvTranspose2d(n, h(256), 2, 1, 0), nn.ReLU(inplace=True),
                nn.ConvTranspose2d(h(256), h(128), 4, 2, 1), nn.ReLU(inplace=True),
                nn.ConvTranspose2d(h(128), h(64), 4, 2, 1), nn.ReLU(inplace=True),
                nn.ConvTranspose2d(h(64), h(32), 4, 2, 1), nn.ReLU(inplace=True),
                make_upsample(upsample, h(32), c),
                nn.Sigmoid(),
            )
        elif arch == "mnist":
            self.encoder = nn.Sequential(*_conv_stack([c, h(32), h(64), h(128), h(256)]), nn.Flatten(),
                                         nn.Linear(h(256) * 2 * 2, 2 * n))
            self.decoder = nn.Sequential(
                nn.Linear(n, h(128) * 8 * 8), nn.Unflatten(1, (h(128), 8, 8)), nn.ReLU(inplace=True),
                nn.ConvTranspose2d(h(128), h(64), 4, 2, 1), nn.ReLU(inplace=True),
                make_upsample(upsample, h(64), h(32)), nn.ReLU(inplace=True),
                nn.ConvTranspose2d(h(32), c, 1, 1, 0),
                nn.Sigmoid(),
            )
        else:  # celeba
            self.encoder = nn.Sequential(*_conv_stack([c, h(128), h(256), h(512), h(1024)]), nn.Flatten(),
                                         nn.Linear(h(1024) * 4 * 4, 2 * n))
            self.decoder = nn.Sequential(
                nn.Linear(n, h(1024) * 8 * 8), nn.Unflatten(1, (h(1024), 8, 8)),
                nn.ConvTranspose2d(h(1024), h(512), 4, 2, 1), nn.ReLU(inplace=True),
                nn.ConvTranspose2d(h(512), h(256), 4, 2, 1), nn.ReLU(inplace=True),
                make_upsample(upsample, h(256), h(128)), nn.ReLU(inplace=True),
                nn.ConvTranspose2d(h(128), c, 1, 1, 0),
                nn.Sigmoid(),
            )

    @property
    def last_upsampling_layer(self) -> nn.Module:
        """The decoder layer that ``upsample`` selects (the one N.1.5 replaces)."""
        index = {"shapes": -2, "mnist": -4, "celeba": -4}[self.arch]
        return self.decoder[index]

    def _check_input(self, x: Tensor) -> None:
        s, c = self.image_size, self.in_channels
        if not isinstance(x, Tensor) or x.ndim != 4 or x.shape[1] != c or x.shape[-2:] != (s, s):
            shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"the {self.arch!r} VAE expects images of shape (N, {c}, {s}, {s}) in [0, 1], got "
                             f"{shape}; load the data at image_size={s} with {c} channel(s)")

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(mu, logvar)``, each ``(N, latent_dim)``, of images ``x`` ``(N, C, S, S)`` in [0, 1]."""
        self._check_input(x)
        h = self.encoder(x)
        return h[:, : self.latent_dim], h[:, self.latent_dim:]

    def decode(self, z: Tensor) -> Tensor:
        """Images ``(N, C, S, S)`` in (0, 1) from latents ``z`` ``(N, latent_dim)``."""
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"decode expects latents of shape (N, {self.latent_dim}), got {tuple(z.shape)}")
        return self.decoder(z)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``(recon, mu, logvar)``; ``z`` is sampled in training mode and equals ``mu`` in eval mode."""
        mu, logvar = self.encode(x)
        z = reparameterize(mu, logvar) if self.training else mu
        return self.decode(z), mu, logvar


def irmae_vae_for(dataset: str, *, channels: int | None = None, latent_dim: int = 128,
                  upsample: str = "transposed", width_div: int = 1) -> IRMAEVAE:
    """The IRMAE VAE Björk et al. use for ``dataset`` (``shapes``, ``mnist``, or ``faces``/``celeba`` → celeba net)."""
    arch = {"shapes": "shapes", "mnist": "mnist", "faces": "celeba", "celeba": "celeba"}.get(dataset)
    if arch is None:
        raise ValueError(f"no IRMAE VAE for data set {dataset!r}; choose shapes, mnist, faces or celeba")
    return IRMAEVAE(arch, latent_dim=latent_dim, in_channels=channels, upsample=upsample,
                   width_div=width_div)  # type: ignore[arg-type]

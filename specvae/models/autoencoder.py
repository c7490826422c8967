"""A small convolutional decoder and autoencoder for chapter 0 (up-sampling fingerprints, autoencoders blur).

Both follow the DCGAN/IRMAE pattern the reproduced papers use: stride-2 4×4 convolutions down, ×2 up-sampling
layers up (:func:`specvae.models.upsample.make_upsample`: ``"transposed"`` or ``"nearest_conv5"``), ReLU between
layers, a Sigmoid at the end so outputs lie in [0, 1]. The bottleneck of :class:`ConvAutoencoder` is a dense
code of ``latent_dim`` numbers (as in IRMAE's MNIST/CelebA models), which is what makes reconstructions blur.

Ref: IRMAE (Jing et al., NeurIPS 2020; facebookresearch/irmae ``model.py``) for the layer pattern;
Odena et al. (Distill 2016) and Chandrasegaran et al. (CVPR 2021) for the two up-sampling kinds.
"""

from __future__ import annotations

import torch
from torch import nn

from .upsample import UPSAMPLE_KINDS, UpsampleKind, make_upsample

__all__ = ["ConvDecoder", "ConvEncoder", "ConvAutoencoder"]


def _check_kind(kind: str) -> None:
    if kind not in UPSAMPLE_KINDS:
        raise ValueError(f"unknown up-sampling kind {kind!r}: choose one of {UPSAMPLE_KINDS}")


def _widths(width: int, n: int) -> list[int]:
    """Channel widths from the deepest level to the shallowest: width·2^(n-1), ..., width."""
    return [width * 2 ** (n - 1 - i) for i in range(n)]


class ConvDecoder(nn.Module):
    """Feature map ``(N, in_channels, s, s)`` -> image ``(N, out_channels, s·2^n_up, s·2^n_up)`` in [0, 1].

    ``n_up`` ×2 up-sampling layers of the chosen kind; the channels halve from ``width·2^(n_up-1)`` to
    ``width``; the last up-sampling layer maps straight to ``out_channels`` (as in IRMAE's Shape decoder and
    Chandrasegaran's setups, where the *last* layer is the one replaced), then Sigmoid.

    Args:
        in_channels: channels of the input feature map.
        out_channels: image channels (1 or 3).
        width: channels of the last hidden level.
        n_up: number of ×2 up-sampling layers (>= 1).
        upsample: ``"transposed"`` or ``"nearest_conv5"`` for every up-sampling layer.
        out_activation: "sigmoid" (default) or None (raw outputs, e.g. to study a spectrum without squashing).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int = 3,
        width: int = 32,
        n_up: int = 3,
        upsample: UpsampleKind = "transposed",
        out_activation: str | None = "sigmoid",
    ) -> None:
        super().__init__()
        _check_kind(upsample)
        if n_up < 1:
            raise ValueError(f"n_up must be >= 1; got {n_up}")
        if out_activation not in (None, "sigmoid"):
            raise ValueError(f"out_activation must be 'sigmoid' or None; got {out_activation!r}")
        widths = _widths(width, n_up)
        layers: list[nn.Module] = []
        c = in_channels
        for i, w in enumerate(widths):
            last = i == n_up - 1
            layers.append(make_upsample(upsample, c, out_channels if last else w))
            if not last:
                layers.append(nn.ReLU())
            c = w
        if out_activation == "sigmoid":
            layers.append(nn.Sigmoid())
        self.net = nn.Sequential(*layers)
        self.in_channels = in_channels
        self.upsample = upsample

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.ndim != 4 or z.shape[1] != self.in_channels:
            raise ValueError(f"expected (N, {self.in_channels}, s, s) input; got shape {tuple(z.shape)}")
        return self.net(z)


class ConvEncoder(nn.Module):
    """Image ``(N, in_channels, H, W)`` -> feature map ``(N, width·2^(n_down-1), H/2^n_down, W/2^n_down)``.

    ``n_down`` 4×4 stride-2 convolutions (padding 1), channels doubling from ``width``, ReLU after each.
    """

    def __init__(self, in_channels: int = 3, width: int = 32, n_down: int = 3) -> None:
        super().__init__()
        if n_down < 1:
            raise ValueError(f"n_down must be >= 1; got {n_down}")
        layers: list[nn.Module] = []
        c = in_channels
        for w in reversed(_widths(width, n_down)):
            layers += [nn.Conv2d(c, w, 4, stride=2, padding=1), nn.ReLU()]
            c = w
        self.net = nn.Sequential(*layers)
        self.out_channels = c

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class ConvAutoencoder(nn.Module):
    """A deterministic conv autoencoder with a dense code: ``x -> z (latent_dim) -> x̂`` in [0, 1].

    Args:
        in_channels: image channels (1 or 3).
        image_size: height = width of the images (divisible by ``2^n_levels``).
        width: channels of the shallowest level (doubling at each deeper level).
        n_levels: number of stride-2 levels down and ×2 up-sampling levels up.
        latent_dim: size of the dense code (the bottleneck; smaller = blurrier reconstructions).
        upsample: ``"transposed"`` or ``"nearest_conv5"``.

    ``encode(x) -> (N, latent_dim)``, ``decode(z) -> (N, C, H, W)``, ``forward(x) -> x̂``.
    """

    def __init__(
        self,
        in_channels: int = 3,
        image_size: int = 32,
        width: int = 32,
        n_levels: int = 3,
        latent_dim: int = 64,
        upsample: UpsampleKind = "transposed",
    ) -> None:
        super().__init__()
        _check_kind(upsample)
        if in_channels not in (1, 3):
            raise ValueError(f"in_channels must be 1 or 3; got {in_channels}")
        if image_size % (2**n_levels):
            raise ValueError(f"image_size {image_size} must be divisible by 2^n_levels = {2 ** n_levels}")
        self.s = image_size // 2**n_levels
        self.encoder = ConvEncoder(in_channels, width, n_levels)
        c = self.encoder.out_channels
        self.to_code = nn.Linear(c * self.s * self.s, latent_dim)
        self.from_code = nn.Sequential(nn.Linear(latent_dim, c * self.s * self.s), nn.ReLU())
        self.decoder = ConvDecoder(c, in_channels, width, n_levels, upsample)
        self.in_channels = in_channels
        self.image_size = image_size
        self.latent_dim = latent_dim
        self._c = c

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1:] != (self.in_channels, self.image_size, self.image_size):
            raise ValueError(
                f"expected images (N, {self.in_channels}, {self.image_size}, {self.image_size}); "
                f"got shape {tuple(x.shape)}"
            )
        return self.to_code(self.encoder(x).flatten(1))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        h = self.from_code(z).view(z.shape[0], self._c, self.s, self.s)
        return self.decoder(h)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))

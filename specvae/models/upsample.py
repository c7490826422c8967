"""Up-sampling layers whose spectral fingerprints the book studies.

``transposed``     ``ConvTranspose2d(k=4, s=2, p=1)``: the DCGAN/IRMAE default. Its uneven kernel overlap leaves
                   checkerboard artefacts and periodic peaks in the spectrum (Odena et al., Distill 2016).
``nearest_conv5``  "N.1.5" of Chandrasegaran et al. (CVPR 2021, Sec. 4): nearest-neighbour ×2 up-sampling followed
                   by one 5×5 convolution (stride 1, padding 2). Ref: their ``src/gans/module.py`` setup code X.Y.Z with
                   X = N (nearest), Y = 1 convolution, Z = kernel 5; used by Björk et al. (2022) Table 2.
"""

from __future__ import annotations

from typing import Literal

from torch import nn

__all__ = ["UpsampleKind", "UPSAMPLE_KINDS", "make_upsample"]

UpsampleKind = Literal["transposed", "nearest_conv5"]
UPSAMPLE_KINDS: tuple[str, ...] = ("transposed", "nearest_conv5")


def make_upsample(kind: UpsampleKind, in_channels: int, out_channels: int, bias: bool = True) -> nn.Module:
    """A ×2 up-sampling layer mapping ``(N, in_channels, H, W)`` to ``(N, out_channels, 2H, 2W)``.

    Args:
        kind: ``"transposed"`` (ConvTranspose2d 4×4, stride 2, padding 1) or ``"nearest_conv5"`` (N.1.5).
        in_channels: channels of the input.
        out_channels: channels of the output.
        bias: whether the convolution has a bias.
    """
    if kind == "transposed":
        return nn.ConvTranspose2d(in_channels, out_channels, kernel_size=4, stride=2, padding=1, bias=bias)
    if kind == "nearest_conv5":
        return nn.Sequential(
            nn.Upsample(scale_factor=2, mode="nearest"),
            nn.Conv2d(in_channels, out_channels, kernel_size=5, stride=1, padding=2, bias=bias),
        )
    raise ValueError(f"unknown up-sampling kind {kind!r}: choose one of {UPSAMPLE_KINDS}")

"""Test doubles for chapter 3: a stand-in VQ tokenizer (no training) with the protocol CAT needs."""

from __future__ import annotations

import itertools

import torch
from torch import nn


class PaletteTokenizer(nn.Module):
    """Stand-in for FA-VAE's tokenizer: each ``f × f`` patch becomes the nearest of ``codebook_size`` fixed colours
    (its mean colour); decoding paints the patch in that colour. Deterministic, untrained, exact on flat patches."""

    def __init__(self, codebook_size: int = 64, image_size: int = 32, downsample: int = 4) -> None:
        super().__init__()
        levels = max(2, round(codebook_size ** (1 / 3)))
        grid = torch.tensor(list(itertools.product(range(levels), repeat=3)), dtype=torch.float32) / (levels - 1)
        extra = torch.rand(max(0, codebook_size - grid.shape[0]), 3, generator=torch.Generator().manual_seed(0))
        self.register_buffer("palette", torch.cat([grid, extra])[:codebook_size])
        self.codebook_size = int(codebook_size)
        self.f = int(downsample)
        self.grid_size = (image_size // downsample, image_size // downsample)

    def encode_indices(self, x: torch.Tensor) -> torch.Tensor:
        m = nn.functional.avg_pool2d(x.float(), self.f)  # (N, 3, h, w)
        d = ((m.permute(0, 2, 3, 1)[..., None, :] - self.palette) ** 2).sum(-1)
        return d.argmin(-1)

    def decode_indices(self, idx: torch.Tensor) -> torch.Tensor:
        img = self.palette[idx].permute(0, 3, 1, 2)
        return nn.functional.interpolate(img, scale_factor=self.f, mode="nearest")

"""FA-VAE's Frequency Complement Modules (FCM): where they sit in the decoder, what they compute, what they pair with.

**Positions** (decoder places, official code; paper numbering FCM_1 … FCM_4 in decoding order):

=========  ======================================  ====================================================  =====
position   decoder feature the FCM acts on         encoder feature it is compared with (the loss pair)   paper
=========  ======================================  ====================================================  =====
``z``      ẑ_q, before the decoder's conv_in        encoder output z (after its final 1×1 conv)            FCM_1
``dec_in`` after the decoder's conv_in              after the encoder's mid block                          FCM_2
``mid``    after the decoder's mid block            after all encoder down levels (before its mid block)  FCM_3
``out``    after all up levels, before the head     output of the encoder's conv_in (full resolution)      FCM_4
=========  ======================================  ====================================================  =====

The official loss reverses the decoder's list, so encoder list entry k (conv_in, down, mid, z) meets decoder entry
3-k: :data:`OFFICIAL_PAIR_ORDER` lists the pairs in that order (what
:class:`specvae.losses.spectrum.FeatureSpectrumLoss` with ``sigma_layout="official"`` expects).

An extension, not in the official code (Eq. 3 reads as one FCM per decoder level): ``level{i}`` for an
intermediate level ``0 < i < L-1`` of a model with ``L = len(ch_mult)`` levels, at resolution ``R / 2^i``:
after the decoder level's blocks (before its up-sampling) ↔ after the encoder level's blocks (before its
down-sampling). ``level1`` exists for f ≥ 4, ``level2`` for f ≥ 8, ``level3`` for f = 16.

**Variants** (paper Fig. 5; official ``DecoderFcm*``): each module maps ``h -> (h_next, tapped)``, where
``h_next`` continues the decoder and ``tapped`` is the feature C_i the spectrum loss sees.

- :class:`ConvFCM` (CONV): C = GN → SiLU → 3×3 conv → GN → SiLU → dropout → 3×3 conv (no internal skip);
  ``h_next = h + C``, tapped = C (the complement itself).
- :class:`ResFCM` (RES): a standard ResBlock; ``h_next`` = tapped = its output (B + complement).
- :class:`AttnFCM` (ATTN): GroupNorm → ``TransformerEncoderLayer(C, 8 heads)`` with torch's defaults (feed-forward
  2048, dropout 0.1, ReLU, post-norm), no outer skip; ``h_next`` = tapped = its output. At the full-resolution
  ``out`` position the official code uses a ResBlock with dropout 0.1 instead (:func:`make_fcm` does the same).

Ref: Lin et al., CVPR 2023, eq. (3)-(4), Fig. 5, §4.2 (rows 7-9); oppo-us-research/FA-VAE@1b26643f
``models/codec.py``, ``models/vqgan_fcm.py`` (fact sheet §2).
"""

from __future__ import annotations

import re

from einops import rearrange
from torch import Tensor, nn

from specvae.models.taming import Normalize, ResBlock

__all__ = [
    "FCM_KINDS",
    "DEFAULT_POSITIONS",
    "ENCODER_TAP",
    "OFFICIAL_PAIR_ORDER",
    "PAPER_INDEX",
    "ConvFCM",
    "ResFCM",
    "AttnFCM",
    "make_fcm",
    "encoder_tap",
    "check_positions",
]

#: FCM variants (paper Fig. 5): CONV, RES, ATTN
FCM_KINDS: tuple[str, ...] = ("conv", "res", "attn")
#: the official code's four positions, in decoding order (FCM_1 … FCM_4)
DEFAULT_POSITIONS: tuple[str, ...] = ("z", "dec_in", "mid", "out")
#: decoder position -> the encoder feature it is paired with
ENCODER_TAP: dict[str, str] = {"z": "z", "dec_in": "mid", "mid": "down", "out": "conv_in"}
#: the official loss's pair order: encoder list k = (conv_in, down, mid, z) with decoder list 3-k
OFFICIAL_PAIR_ORDER: tuple[str, ...] = ("out", "mid", "dec_in", "z")
#: decoder position -> paper index i of FCM_i / C_i
PAPER_INDEX: dict[str, int] = {"z": 1, "dec_in": 2, "mid": 3, "out": 4}
_LEVEL = re.compile(r"^level(\d+)$")


def encoder_tap(position: str) -> str:
    """The encoder feature paired with decoder ``position`` (``level{i}`` pairs with ``level{i}``)."""
    if position in ENCODER_TAP:
        return ENCODER_TAP[position]
    if _LEVEL.match(position):
        return position
    raise ValueError(f"unknown FCM position {position!r}; valid: {', '.join(DEFAULT_POSITIONS)} or level<i>")


def valid_positions(num_levels: int) -> tuple[str, ...]:
    """Every position a model with ``num_levels`` resolution levels has (the four defaults + intermediate levels)."""
    return DEFAULT_POSITIONS + tuple(f"level{i}" for i in range(1, num_levels - 1))


def check_positions(positions: tuple[str, ...], num_levels: int) -> tuple[str, ...]:
    """Validate FCM positions for a model with ``num_levels`` levels (f = 2^(num_levels-1)); clear errors."""
    valid = valid_positions(num_levels)
    f = 2 ** (num_levels - 1)
    bad = [p for p in positions if p not in valid]
    if bad:
        raise ValueError(
            f"FCM position(s) {bad} do not exist at f = {f} ({num_levels} levels); valid positions at this f: "
            f"{', '.join(valid)} (level<i> needs 0 < i < {num_levels - 1}: an intermediate resolution)")
    if len(set(positions)) != len(positions):
        raise ValueError(f"FCM positions repeat: {positions}")
    return tuple(positions)


class ConvFCM(nn.Module):
    """CONV FCM: ``C = conv(drop(SiLU(GN(conv(SiLU(GN(h)))))))``; ``h -> (h + C, C)`` (paper Fig. 5a)."""

    def __init__(self, channels: int, *, dropout: float = 0.0, groups: int = 32, eps: float = 1e-5) -> None:
        super().__init__()
        self.block = ResBlock(channels, channels, dropout=dropout, groups=groups, eps=eps)

    def forward(self, h: Tensor) -> tuple[Tensor, Tensor]:
        c = self.block.branch(h)
        return h + c, c


class ResFCM(nn.Module):
    """RES FCM: a ResBlock; ``h -> (B, B)`` with ``B = h + branch(h)`` (paper Fig. 5b)."""

    def __init__(self, channels: int, *, dropout: float = 0.0, groups: int = 32, eps: float = 1e-5) -> None:
        super().__init__()
        self.block = ResBlock(channels, channels, dropout=dropout, groups=groups, eps=eps)

    def forward(self, h: Tensor) -> tuple[Tensor, Tensor]:
        out = self.block(h)
        return out, out


class AttnFCM(nn.Module):
    """ATTN FCM: GN → ``TransformerEncoderLayer(C, heads)`` over the H·W positions, no outer skip (Fig. 5c).

    ``h -> (T, T)``. Torch's layer defaults (feed-forward 2048, dropout 0.1, ReLU, post-norm) as in the official
    code; ``channels`` must be divisible by ``heads`` (8).
    """

    def __init__(self, channels: int, *, heads: int = 8, dim_feedforward: int = 2048, dropout: float = 0.1,
                 groups: int = 32, eps: float = 1e-5) -> None:
        super().__init__()
        if channels % heads:
            raise ValueError(f"ATTN FCM: {channels} channels are not divisible by {heads} heads")
        self.norm = Normalize(channels, groups, eps)
        self.layer = nn.TransformerEncoderLayer(channels, heads, dim_feedforward=dim_feedforward, dropout=dropout,
                                                batch_first=True)

    def forward(self, h: Tensor) -> tuple[Tensor, Tensor]:
        hh, ww = h.shape[-2:]
        t = self.layer(rearrange(self.norm(h), "n c h w -> n (h w) c"))
        out = rearrange(t, "n (h w) c -> n c h w", h=hh, w=ww)
        return out, out


def make_fcm(kind: str, channels: int, position: str, *, groups: int = 32, eps: float = 1e-5) -> nn.Module:
    """The FCM of ``kind`` for ``position`` (ATTN at ``out``: a ResBlock with dropout 0.1, as the official code)."""
    if kind == "conv":
        return ConvFCM(channels, groups=groups, eps=eps)
    if kind == "res":
        return ResFCM(channels, groups=groups, eps=eps)
    if kind == "attn":
        if position == "out":
            return ResFCM(channels, dropout=0.1, groups=groups, eps=eps)
        return AttnFCM(channels, groups=groups, eps=eps)
    raise ValueError(f"unknown FCM kind {kind!r}; choose one of {FCM_KINDS}")

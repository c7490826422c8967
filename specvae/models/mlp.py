"""A small coordinate MLP, optionally with random Fourier-feature inputs: the model of chapter 0's regressions.

A coordinate network maps a position ``v`` (a time in 1-D, a pixel position in 2-D) to a value (a signal
sample, a pixel colour). Plain ReLU MLPs learn the low frequencies of their target first and the high ones
late or never, the *spectral bias* (Rahaman et al., ICML 2019). Feeding the network
``γ(v) = [cos(2π B v), sin(2π B v)]`` with a random Gaussian matrix ``B ~ N(0, σ²)`` instead of ``v`` lets it fit
high frequencies quickly (Tancik et al., NeurIPS 2020, Sec. 5 "Gaussian" mapping); ``σ`` sets the bandwidth.

Ref: Rahaman et al. 2019, "On the Spectral Bias of Neural Networks", Sec. 2 (MLP fitting a sum of sinusoids);
Tancik et al. 2020, "Fourier Features Let Networks Learn High Frequency Functions in Low Dimensional Domains",
eq. (5)/Sec. 5: ``γ(v) = [a_j cos(2π b_jᵀ v), a_j sin(2π b_jᵀ v)]_j`` with ``a_j = 1`` and ``b_j ~ N(0, σ² I)``.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import nn

__all__ = ["FourierFeatures", "MLP", "ACTIVATIONS"]

ACTIVATIONS: tuple[str, ...] = ("relu", "tanh", "gelu", "silu")


def _activation(name: str) -> nn.Module:
    if name == "relu":
        return nn.ReLU()
    if name == "tanh":
        return nn.Tanh()
    if name == "gelu":
        return nn.GELU()
    if name == "silu":
        return nn.SiLU()
    raise ValueError(f"unknown activation {name!r}: choose one of {ACTIVATIONS}")


class FourierFeatures(nn.Module):
    """Random Fourier-feature mapping ``γ(v) = [cos(2π vBᵀ), sin(2π vBᵀ)]`` (Tancik et al. 2020, Sec. 5).

    Args:
        in_features: dimension ``d`` of the input coordinates ``v``.
        n_features: number ``m`` of frequencies (the output has ``2m`` features).
        scale: standard deviation ``σ`` of the entries of ``B`` (in cycles per unit of ``v``).
        seed: seed of the generator that draws ``B`` (kept fixed, not trained: a buffer).

    Shapes: ``(..., d) -> (..., 2m)``; computed in float32 with autocast disabled (the phases need the precision).
    """

    def __init__(self, in_features: int, n_features: int = 128, scale: float = 10.0, seed: int = 0) -> None:
        super().__init__()
        if in_features < 1 or n_features < 1:
            raise ValueError(f"in_features and n_features must be >= 1; got {in_features}, {n_features}")
        if not scale > 0:
            raise ValueError(f"scale (σ of the Fourier frequencies) must be > 0; got {scale}")
        g = torch.Generator().manual_seed(int(seed))
        self.register_buffer("B", torch.randn(n_features, in_features, generator=g) * float(scale))
        self.in_features = in_features
        self.n_features = n_features
        self.scale = float(scale)

    @property
    def out_features(self) -> int:
        return 2 * self.n_features

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        if v.shape[-1] != self.in_features:
            raise ValueError(f"expected coordinates with last dim {self.in_features}; got shape {tuple(v.shape)}")
        # float32 (float64 stays float64) with autocast off: under bf16 autocast the phases 2π·vBᵀ (tens of
        # radians for σ = 10) would keep only 8 mantissa bits, an error of a fair fraction of a radian
        dtype = torch.promote_types(v.dtype, torch.float32)
        with torch.autocast(v.device.type, enabled=False):
            proj = 2 * math.pi * v.to(dtype) @ self.B.t().to(dtype)
            return torch.cat([torch.cos(proj), torch.sin(proj)], dim=-1)


class MLP(nn.Module):
    """A fully connected network ``R^d -> R^k`` with ``depth`` hidden layers of ``width`` units.

    Args:
        in_features: input dimension ``d`` (1 for a 1-D signal, 2 for pixel coordinates).
        out_features: output dimension ``k`` (1 for a signal or a gray image, 3 for RGB).
        width: units per hidden layer.
        depth: number of hidden layers (each ``Linear`` + activation).
        activation: "relu" (the spectral-bias setting of Rahaman et al.), "tanh", "gelu" or "silu".
        fourier_features: ``m > 0`` puts a :class:`FourierFeatures` mapping with ``m`` frequencies in front;
            0 feeds the raw coordinates.
        fourier_scale: ``σ`` of that mapping.
        out_activation: "sigmoid" to squash the output to (0, 1) (images), or None (regression).
        seed: seed for the Fourier matrix (the layer weights follow the global torch seed).

    Shapes: ``(N, d) -> (N, k)``.
    """

    def __init__(
        self,
        in_features: int = 1,
        out_features: int = 1,
        width: int = 256,
        depth: int = 4,
        activation: str = "relu",
        fourier_features: int = 0,
        fourier_scale: float = 10.0,
        out_activation: Literal["sigmoid"] | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if depth < 1 or width < 1:
            raise ValueError(f"depth and width must be >= 1; got depth={depth}, width={width}")
        if fourier_features < 0:
            raise ValueError(f"fourier_features must be >= 0 (0 = raw coordinates); got {fourier_features}")
        if out_activation not in (None, "sigmoid"):
            raise ValueError(f"out_activation must be None or 'sigmoid'; got {out_activation!r}")
        self.features = (
            FourierFeatures(in_features, fourier_features, fourier_scale, seed) if fourier_features else None
        )
        d = self.features.out_features if self.features is not None else in_features
        layers: list[nn.Module] = []
        for _ in range(depth):
            layers += [nn.Linear(d, width), _activation(activation)]
            d = width
        layers.append(nn.Linear(d, out_features))
        if out_activation == "sigmoid":
            layers.append(nn.Sigmoid())
        self.net = nn.Sequential(*layers)
        self.in_features = in_features

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        if v.shape[-1] != self.in_features:
            raise ValueError(f"expected inputs with last dim {self.in_features}; got shape {tuple(v.shape)}")
        if self.features is not None:
            v = self.features(v)
        return self.net(v)

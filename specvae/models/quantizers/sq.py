"""SQ-VAE's stochastic quantiser with self-annealing, Gaussian-I (Takida et al., ICML 2022).

The encoder output z is quantised *stochastically*: each code k has the probability

.. math::
    P(k\\mid z) = \\mathrm{softmax}_k\\Big(-\\frac{\\|z - b_k\\|^2}{2 s^2}\\Big),\\qquad s^2 = 1 + \\exp(\\lambda),

with λ a learnable scalar (initialised to log 20 for 512 × 64 codebooks on CIFAR-10/CelebA, log 10 for MNIST's
128 codes). In training, z_q is a Gumbel-softmax relaxation of a draw, ``z_q = softmax((logits + g)/τ)·B``, with
temperature ``τ = max(τ₀·exp(−r·step), τ_min)`` (τ₀ = 1, r = 1e-5, τ_min = 0: the official defaults); there is no
straight-through estimator and no dead-code step. As s² is learned downwards, the quantisation becomes
deterministic by itself ("self-annealing"). At test time z_q is the most probable code (``argmax``: the official
``flg_quant_det=True`` evaluation), so the quantiser is deterministic in ``eval()`` mode.

Loss terms (per image, summed over the token grid, as in the official code; the reconstruction term
``(dim_x/2)·log(MSE_sum/B)`` belongs to the model's objective):

.. math::
    \\mathrm{KL}_{\\mathrm{disc}} = \\tfrac1B\\sum_{b,t,k} P_{btk}\\log P_{btk},\\qquad
    \\mathrm{KL}_{\\mathrm{cont}} = \\tfrac1B\\sum_{b}\\sum_{t,d}\\frac{(z_{btd} - z_{q,btd})^2}{2 s^2}.

The codebook is drawn from N(0, 1). Gumbel noise is drawn on the input's device (the official code hard-codes CUDA).

Ref: Takida et al. 2022, "SQ-VAE: Variational Bayes on Discrete Representation with Self-annealed Stochastic
Quantization", §3-4 (Gaussian SQ-VAE, param. I); sony/sqvae ``vision/quantizer.py`` (``GaussianVectorQuantizer``),
``vision/model.py`` (``param_q = exp(0) + exp(log_param_q_scalar)``, codebook ``randn``),
``vision/trainer_base.py`` (``_set_temperature``) and ``vision/configs/defaults.py`` (temperature 1.0, decay 1e-5, min 0).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .base import CodebookQuantizer, batch_perplexity, squared_distances

__all__ = ["StochasticQuantizer"]


class StochasticQuantizer(CodebookQuantizer):
    """SQ-VAE Gaussian-I quantiser (stochastic in training, argmax in eval).

    Args:
        num_codes: codebook size (512; the official MNIST config uses 128, we keep one K for all methods).
        dim: code dimension (64).
        log_var_init: initial λ (log 20; official CIFAR-10/CelebA value, "larger for larger code dimension").
        temperature_init: τ₀ (1.0).
        temperature_decay: r (1e-5 per step).
        temperature_min: τ_min (0.0); τ never falls below 1e-8 so that the softmax stays finite.

    Buffers: ``step`` (training forward calls so far; sets τ). Terms: ``loss`` (= ``kl_discrete + kl_continuous``),
    ``kl_discrete``, ``kl_continuous``, ``variance`` (s²), ``temperature``, ``perplexity``.
    """

    def __init__(self, num_codes: int = 512, dim: int = 64, log_var_init: float = math.log(20.0),
                 temperature_init: float = 1.0, temperature_decay: float = 1e-5, temperature_min: float = 0.0) -> None:
        super().__init__(num_codes, dim)
        if not temperature_init > 0:
            raise ValueError(f"StochasticQuantizer: temperature_init must be > 0, got {temperature_init!r}")
        if temperature_decay < 0 or temperature_min < 0:
            raise ValueError("StochasticQuantizer: temperature_decay and temperature_min must be >= 0")
        self.codebook = nn.Parameter(torch.randn(num_codes, dim))
        self.log_param_q = nn.Parameter(torch.tensor(float(log_var_init)))
        self.temperature_init = float(temperature_init)
        self.temperature_decay = float(temperature_decay)
        self.temperature_min = float(temperature_min)
        self.register_buffer("step", torch.zeros((), dtype=torch.long))

    def temperature(self, step: int | None = None) -> float:
        """τ at ``step`` (default: the current one): ``max(τ₀·exp(−r·step), τ_min)``."""
        s = int(self.step) if step is None else int(step)
        return max(self.temperature_init * math.exp(-self.temperature_decay * s), self.temperature_min, 1e-8)

    def variance(self) -> Tensor:
        """s² = 1 + exp(λ) (``param_q`` of the official Gaussian-I model)."""
        return 1.0 + self.log_param_q.float().exp()

    def logits(self, flat: Tensor) -> Tensor:
        """``−‖z − b_k‖²/(2 s²)`` for ``flat (M, D)``: ``(M, K)`` (differentiable in z, B and λ)."""
        precision = 1.0 / self.variance().clamp_min(1e-10)
        return -0.5 * precision * squared_distances(flat, self.codebook.float())

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        with torch.autocast(z.device.type, enabled=False):
            flat, lead = self.flatten(z)
            batch = int(z.shape[0])
            logits = self.logits(flat)
            probs = logits.softmax(dim=-1)
            log_probs = logits.log_softmax(dim=-1)
            idx = logits.detach().argmax(dim=-1)
            tau = self.temperature()
            if self.training:
                u = torch.rand_like(logits)
                gumbel = -torch.log(-torch.log(u + 1e-10) + 1e-10)
                encodings = F.softmax((logits + gumbel) / tau, dim=-1)
                q = encodings @ self.codebook.float()
                self.step.add_(1)
            else:
                q = F.embedding(idx, self.codebook.float())
            precision = 1.0 / self.variance().clamp_min(1e-10)
            kl_disc = (probs * log_probs).sum() / batch
            kl_cont = 0.5 * precision * (flat - q).pow(2).sum() / batch
            loss = kl_disc + kl_cont
        terms = {"loss": loss, "kl_discrete": kl_disc.detach(), "kl_continuous": kl_cont.detach(),
                 "variance": self.variance().detach(), "temperature": torch.tensor(tau, device=z.device),
                 "perplexity": batch_perplexity(idx, self.num_codes)}
        return q.reshape(*lead, self.dim), idx.reshape(lead), terms

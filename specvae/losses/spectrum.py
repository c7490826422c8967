"""FA-VAE's Spectrum Loss (SL) and Dynamic Spectrum Loss (DSL): the focal frequency loss of Gaussian-filtered maps.

* :func:`gaussian_kernel2d`, :func:`gaussian_blur` -- the blur of eq. (7), reflect-padded as the official code.
* :class:`SpectrumLoss` / :class:`DynamicSpectrumLoss` -- SL / DSL of **one** feature pair ``(A_i, C_i)``.
* :class:`FeatureSpectrumLoss` -- the term FA-VAE adds to its loss: SL/DSL over all its feature pairs, with the
  σ layouts of the paper (one σ per pair, or two) and of the official code (σ_k, σ_{n-1-k}), weighted on the
  **mean** over the pairs as the code does (``loss_weight=0.01`` there = 0.0025 per pair for 4 pairs).

Ref: X. Lin, Y. Li, J. Hsiao, C. Ho, Y. Kong, "Catch Missing Details: Image Reconstruction with Frequency
Augmented Variational Autoencoder", CVPR 2023, Sec. 3.1.2, eq. (6)-(10), Sec. 4.2 and Table 2 (kernel size μ,
initial σ_i, pair-wise σ_i); official code oppo-us-research/FA-VAE@1b26643f (``losses/``, ``models/codec.py``,
``favae_scripts/*.sh``) as summarised in the project's FA-VAE fact sheet §3.2.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from specvae.losses.fft import _check
from specvae.losses.focal_frequency import focal_frequency_loss
from specvae.spectral import no_autocast

__all__ = [
    "SpectrumLoss",
    "DynamicSpectrumLoss",
    "FeatureSpectrumLoss",
    "gaussian_kernel2d",
    "gaussian_blur",
    "SIGMA_LAYOUTS",
    "SIGMA_PARAMS",
    "PADDINGS",
]

#: how σ is stored: ``"raw"`` (σ itself, as the official code; Adam's lr is then in units of σ) or ``"log"`` (log σ)
SIGMA_PARAMS: tuple[str, ...] = ("raw", "log")
#: blur padding: ``"reflect"`` (FA-VAE and torchvision's ``GaussianBlur``) or ``"zeros"``
PADDINGS: tuple[str, ...] = ("reflect", "zeros")
#: σ layouts of :class:`FeatureSpectrumLoss` (see there)
SIGMA_LAYOUTS: tuple[str, ...] = ("shared", "separate", "official")

# σ² is floored here: σ -> 0 makes the kernel a delta (identity) instead of NaN (0/0 in the official code)
_MIN_SIGMA2 = 1e-12


def gaussian_kernel2d(kernel_size: int, sigma: Tensor) -> Tensor:
    """Normalised 2-D Gaussian ``(k, k)``, centred; differentiable in σ.

    Taps ``x = -(k-1)/2 … (k-1)/2``, ``g(x) = exp(-x² / (2σ²)) / Σ g``, outer product ``g gᵀ`` (which equals the
    2-D normalised ``exp(-(x²+y²)/(2σ²))``). Only σ² enters, so σ and -σ give the same kernel; σ → 0 gives a delta.
    Ref: FA-VAE official code (Gaussian kernel of the DSL, fact sheet §3.2) = torchvision ``_get_gaussian_kernel1d``.
    """
    if isinstance(kernel_size, bool) or not isinstance(kernel_size, int) or kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be a positive odd integer, got {kernel_size!r}")
    sigma = torch.as_tensor(sigma)
    if not sigma.is_floating_point():
        sigma = sigma.float()
    r = torch.arange(kernel_size, dtype=sigma.dtype, device=sigma.device) - (kernel_size - 1) / 2
    g = torch.exp(-(r**2) / (2 * (sigma**2).clamp_min(_MIN_SIGMA2)))
    g = g / g.sum()
    return g[:, None] * g[None, :]


def gaussian_blur(x: Tensor, kernel_size: int, sigma: Tensor, *, padding: str = "reflect") -> Tensor:
    """Depthwise Gaussian blur of every channel of ``x`` ``(N, C, H, W)``, same size out (eq. 7's ``K ⋆ x``).

    ``padding="reflect"`` pads by ``μ//2`` with reflection, as FA-VAE (and torchvision's ``GaussianBlur``);
    reflection needs ``μ//2 < min(H, W)``, otherwise a :class:`ValueError` says which kernel sizes fit.
    ``"zeros"`` zero-pads (darkens the borders of positive maps; kept only for comparison).
    Ref: FA-VAE official code (fact sheet §3.2: reflect padding μ//2); Lin et al. eq. (7).
    """
    if padding not in PADDINGS:
        raise ValueError(f"padding must be one of {PADDINGS}, got {padding!r}")
    k = gaussian_kernel2d(kernel_size, sigma).to(x.dtype)
    pad = kernel_size // 2
    h, w = x.shape[-2:]
    if padding == "reflect":
        if pad >= min(h, w):
            fit = 2 * min(h, w) - 1
            raise ValueError(
                f"Gaussian kernel size {kernel_size} needs reflect padding {pad}, which must be smaller than the "
                f"feature map's side ({h}x{w}); use kernel_size <= {fit} for these features, or tap features of a "
                "larger resolution (a smaller down-sampling factor f)")
        x = F.pad(x, (pad, pad, pad, pad), mode="reflect")
        pad = 0
    c = x.shape[1]
    return F.conv2d(x, k.expand(c, 1, kernel_size, kernel_size), padding=pad, groups=c)


class _SigmaParams(nn.Module):
    """``n`` σ values stored as σ (``"raw"``) or log σ (``"log"``), times a learning-rate scale.

    The stored parameter is ``θ`` with ``σ = lr_scale · θ`` (raw) or ``σ = exp(lr_scale · θ)`` (log). Adam's step
    is invariant to the scale of the gradient as long as the gradient is well above Adam's ε, so an optimiser at
    learning rate ``lr`` moves σ (raw) or log σ (log) by at most about ``lr_scale · lr`` per step:
    ``lr_scale = 2e-7 / lr`` approximates FA-VAE's own σ learning rate 2e-7 (pair-wise σ) inside the model's
    single optimiser. θ's gradient is ``lr_scale`` times σ's; where that falls below ε (1e-8; measured for μ = 3
    on a trained FA-VAE, σ's gradients 2.5e-10 to 3.9e-9) the step shrinks further and σ moves less than
    ``lr_scale · lr`` — near-frozen, as in the official code.
    """

    def __init__(self, n: int, sigma: float | Sequence[float], *, learnable: bool, param: str, lr_scale: float) -> None:
        super().__init__()
        if param not in SIGMA_PARAMS:
            raise ValueError(f"sigma_param must be one of {SIGMA_PARAMS}, got {param!r}")
        if not (math.isfinite(lr_scale) and lr_scale > 0):
            raise ValueError(f"sigma_lr_scale must be a positive number, got {lr_scale!r}")
        values = [float(sigma)] * n if isinstance(sigma, (int, float)) else [float(s) for s in sigma]
        if len(values) != n:
            raise ValueError(f"expected {n} initial σ values, got {len(values)}")
        if any(not (math.isfinite(s) and s > 0) for s in values):
            raise ValueError(f"sigma must be positive, got {values}")
        self.param, self.lr_scale = param, float(lr_scale)
        init = torch.tensor(values, dtype=torch.float32)
        init = init.log() if param == "log" else init
        self.theta = nn.Parameter(init / self.lr_scale, requires_grad=learnable)

    def forward(self) -> Tensor:
        s = self.theta * self.lr_scale
        return s.exp() if self.param == "log" else s

    def extra_repr(self) -> str:
        return f"n={self.theta.numel()}, param={self.param!r}, lr_scale={self.lr_scale:g}"


class SpectrumLoss(nn.Module):
    r"""Spectrum loss of one feature pair: ``SL(A, C) = FFL(K(μ, σ) ⋆ C, K(μ, σ) ⋆ A)`` (Lin et al. eq. (7)-(8)).

    ``K`` is the normalised ``μ × μ`` Gaussian of :func:`gaussian_kernel2d` (``kernel_size`` = μ; the paper calls
    μ a "mean", Table 2 and the code use it as the kernel size), applied to every channel with reflect padding
    μ//2 (:func:`gaussian_blur`). The focal frequency loss has the official package's semantics (α = 1, no
    patches, max-normalised detached weights, mean over N·C·H·W) times ``loss_weight``.

    σ (eq. 7's σ_i): with ``shared_sigma=True`` (default) **one σ serves A and C** — the paper's "pair-wise σ_i"
    (Table 2 rows 10-14, the setting of its other experiments); ``shared_sigma=False`` gives two σ, one for A
    and one for C — the paper's non-pair-wise rows 7-9 ("two learnable σ for A_i and C_i respectively", §4.2).
    Fixed here unless ``learnable`` (:class:`DynamicSpectrumLoss` learns it).

    σ storage (``sigma_param``): ``"raw"`` stores σ itself, as the official code, so a learning rate means the
    same as the paper's (2e-7 for pair-wise σ moves σ by ≲ 2e-7 per Adam step); ``"log"`` stores log σ (σ stays
    positive), where the same learning rate moves σ ≈ σ times as far (×3 at σ = 3). ``sigma_lr_scale``
    rescales σ's effective learning rate inside a shared optimiser (see :class:`_SigmaParams`).

    ``forward(a, c) -> scalar``: ``a`` the encoder activations ``A_i`` (the target), ``c`` the FCM outputs
    ``C_i``, both ``(N, C, H, W)`` with ``μ//2 < min(H, W)``. Computed in float32, autocast off. A is not
    detached (as in the official code): the loss also pulls the encoder towards the decoder.
    Ref: Lin et al., CVPR 2023, eq. (6)-(8), §4.2; Jiang et al., ICCV 2021 (FFL); FA-VAE official code.
    """

    def __init__(
        self,
        kernel_size: int = 9,
        sigma: float = 3.0,
        *,
        learnable: bool = False,
        shared_sigma: bool = True,
        sigma_param: str = "raw",
        sigma_lr_scale: float = 1.0,
        padding: str = "reflect",
        alpha: float = 1.0,
        loss_weight: float = 1.0,
    ) -> None:
        super().__init__()
        if isinstance(kernel_size, bool) or not isinstance(kernel_size, int) or kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be a positive odd integer, got {kernel_size!r}")
        if padding not in PADDINGS:
            raise ValueError(f"padding must be one of {PADDINGS}, got {padding!r}")
        self.kernel_size, self.padding = kernel_size, padding
        self.alpha, self.loss_weight = alpha, loss_weight
        self.shared_sigma = bool(shared_sigma)
        self.sigmas = _SigmaParams(1 if shared_sigma else 2, sigma, learnable=learnable, param=sigma_param,
                                   lr_scale=sigma_lr_scale)

    @property
    def sigma(self) -> Tensor:
        """Current σ: ``(1,)`` when shared, else ``(2,)`` (for ``a``, ``c``)."""
        return self.sigmas()

    def blur(self, x: Tensor, sigma: Tensor) -> Tensor:
        return gaussian_blur(x, self.kernel_size, sigma.to(x.dtype), padding=self.padding)

    @no_autocast
    def forward(self, a: Tensor, c: Tensor) -> Tensor:
        a, c = _check(a, c, type(self).__name__)
        s = self.sigma
        sa, sc = (s[0], s[0]) if self.shared_sigma else (s[0], s[1])
        return focal_frequency_loss(self.blur(c, sc), self.blur(a, sa), alpha=self.alpha,
                                    loss_weight=self.loss_weight)

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, sigma={[round(v, 6) for v in self.sigma.detach().tolist()]}, "
                f"learnable={self.sigmas.theta.requires_grad}, shared_sigma={self.shared_sigma}, "
                f"padding={self.padding!r}, loss_weight={self.loss_weight}")


class DynamicSpectrumLoss(SpectrumLoss):
    """Dynamic spectrum loss (DSL) of one feature pair: :class:`SpectrumLoss` with learnable σ (eq. (9)-(10)).

    Defaults are the paper's chosen setting: kernel size μ = 3 ("in other experiments, we choose a kernel size of
    3", §4.2), initial σ = 3, one σ shared by A_i and C_i ("pair-wise σ_i", Table 2 rows 10-14). Rows 7-9 use
    ``shared_sigma=False``. σ is a parameter of this module: put the module inside the trained model.
    Ref: Lin et al., CVPR 2023, Sec. 3.1.2, Table 2.
    """

    def __init__(
        self,
        kernel_size: int = 3,
        sigma: float = 3.0,
        *,
        shared_sigma: bool = True,
        sigma_param: str = "raw",
        sigma_lr_scale: float = 1.0,
        padding: str = "reflect",
        alpha: float = 1.0,
        loss_weight: float = 1.0,
    ) -> None:
        super().__init__(kernel_size, sigma, learnable=True, shared_sigma=shared_sigma, sigma_param=sigma_param,
                         sigma_lr_scale=sigma_lr_scale, padding=padding, alpha=alpha, loss_weight=loss_weight)


class FeatureSpectrumLoss(nn.Module):
    r"""FA-VAE's feature term: (D)SL over ``n_pairs`` feature pairs, ``loss_weight · mean_k SL(A_k, C_k)``.

    The official code weights the **mean** over its 4 pairs by ``DSL_weight_features`` = 0.01, i.e. β = 0.0025
    per pair in eq. (9)'s sum form; ``loss_weight=0.01`` (default) reproduces it.

    ``kernel_size=None`` is Table 2 row 5 ("SL w/o kernel"): plain FFL of the feature pairs, no σ.

    σ layouts (``sigma_layout``), for ``n`` pairs:

    - ``"shared"`` (paper, "pair-wise σ_i", rows 10-14): ``n`` σ, pair k blurs A_k and C_k with σ_k.
    - ``"separate"`` (paper and code, non-pair-wise, rows 7-9): ``2n`` σ, pair k blurs A_k with σ_k and C_k with
      σ_{n+k}.
    - ``"official"`` (the official code's pair-wise mode): ``n`` σ indexed by the code's feature lists; the loss
      pairs encoder feature k with decoder feature n-1-k, and the code blurs encoder k with σ_k and decoder
      feature n-1-k with σ_{n-1-k}, so pair k uses ``(σ_k, σ_{n-1-k})`` — not one shared σ.

    Args:
        n_pairs: number of (A, C) pairs (4 in FA-VAE).
        kernel_size: μ (odd) or ``None`` (no blur, row 5).
        sigma: initial σ (3.0 in every script).
        learnable: DSL (True) or SL (False).
        sigma_layout, sigma_param, sigma_lr_scale, padding, alpha: see above and :class:`SpectrumLoss`.
        loss_weight: weight of the mean over pairs (0.01).

    ``forward(a_feats, c_feats) -> (loss, per_pair)``: two sequences of ``n_pairs`` tensors, pair k being
    ``(a_feats[k], c_feats[k])`` with equal shapes; ``per_pair`` is the ``(n_pairs,)`` unweighted SL values
    (detached). Ref: Lin et al. eq. (9); FA-VAE official code (``--DSL_weight_features 0.01``, fact sheet §3.2).
    """

    def __init__(
        self,
        n_pairs: int = 4,
        kernel_size: int | None = 3,
        sigma: float = 3.0,
        *,
        learnable: bool = True,
        sigma_layout: str = "shared",
        sigma_param: str = "raw",
        sigma_lr_scale: float = 1.0,
        padding: str = "reflect",
        alpha: float = 1.0,
        loss_weight: float = 0.01,
    ) -> None:
        super().__init__()
        if isinstance(n_pairs, bool) or not isinstance(n_pairs, int) or n_pairs < 1:
            raise ValueError(f"n_pairs must be a positive integer, got {n_pairs!r}")
        if sigma_layout not in SIGMA_LAYOUTS:
            raise ValueError(f"sigma_layout must be one of {SIGMA_LAYOUTS}, got {sigma_layout!r}")
        if padding not in PADDINGS:
            raise ValueError(f"padding must be one of {PADDINGS}, got {padding!r}")
        if kernel_size is not None:
            gaussian_kernel2d(kernel_size, torch.tensor(1.0))  # validates μ
        self.n_pairs, self.kernel_size, self.sigma_layout = n_pairs, kernel_size, sigma_layout
        self.padding, self.alpha, self.loss_weight = padding, alpha, loss_weight
        self.sigmas: _SigmaParams | None = None
        if kernel_size is not None:
            n = 2 * n_pairs if sigma_layout == "separate" else n_pairs
            self.sigmas = _SigmaParams(n, sigma, learnable=learnable, param=sigma_param, lr_scale=sigma_lr_scale)

    @property
    def sigma(self) -> Tensor | None:
        """All σ values in the layout's order (``None`` without a kernel)."""
        return None if self.sigmas is None else self.sigmas()

    def pair_sigmas(self) -> list[tuple[Tensor, Tensor]]:
        """``[(σ for A_k, σ for C_k)]`` for every pair k, as the chosen layout assigns them."""
        s, n = self.sigma, self.n_pairs
        if s is None:
            raise ValueError("this FeatureSpectrumLoss has no kernel (kernel_size=None), hence no σ")
        if self.sigma_layout == "shared":
            return [(s[k], s[k]) for k in range(n)]
        if self.sigma_layout == "separate":
            return [(s[k], s[n + k]) for k in range(n)]
        return [(s[k], s[n - 1 - k]) for k in range(n)]

    @no_autocast
    def forward(self, a_feats: Sequence[Tensor], c_feats: Sequence[Tensor]) -> tuple[Tensor, Tensor]:
        if len(a_feats) != self.n_pairs or len(c_feats) != self.n_pairs:
            raise ValueError(f"FeatureSpectrumLoss expects {self.n_pairs} encoder and {self.n_pairs} decoder "
                             f"features, got {len(a_feats)} and {len(c_feats)}")
        sig = self.pair_sigmas() if self.sigmas is not None else [None] * self.n_pairs
        values = []
        for k, (a, c, s) in enumerate(zip(a_feats, c_feats, sig)):
            a, c = _check(a, c, f"FeatureSpectrumLoss pair {k}")
            if s is not None:
                a = gaussian_blur(a, self.kernel_size, s[0].to(a.dtype), padding=self.padding)
                c = gaussian_blur(c, self.kernel_size, s[1].to(c.dtype), padding=self.padding)
            values.append(focal_frequency_loss(c, a, alpha=self.alpha))
        per_pair = torch.stack(values)
        return self.loss_weight * per_pair.mean(), per_pair.detach()

    def extra_repr(self) -> str:
        sig = None if self.sigma is None else [round(v, 6) for v in self.sigma.detach().tolist()]
        return (f"n_pairs={self.n_pairs}, kernel_size={self.kernel_size}, sigma_layout={self.sigma_layout!r}, "
                f"sigma={sig}, padding={self.padding!r}, loss_weight={self.loss_weight}")

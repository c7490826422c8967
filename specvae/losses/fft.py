"""Björk et al.'s FFT loss: MSE between the real parts plus MSE between the imaginary parts of the 2-D FFTs.

Ref: S. Björk, J. N. Myhre, T. H. Johansen, "Simpler is better: spectral regularization and up-sampling
techniques for variational autoencoders", ICASSP 2022, eq. (2).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from specvae.spectral import no_autocast

__all__ = ["FFTLoss", "fft_loss", "ParsevalMSE"]

Reduction = Literal["mean", "sum", "none"]


def _check(pred: Tensor, target: Tensor, name: str) -> tuple[Tensor, Tensor]:
    if not isinstance(pred, Tensor) or not isinstance(target, Tensor):
        raise TypeError(f"{name}: pred and target must be tensors")
    if pred.shape != target.shape:
        raise ValueError(f"{name}: pred and target must have the same shape, got {tuple(pred.shape)} and {tuple(target.shape)}")
    if pred.ndim != 4:
        raise ValueError(f"{name}: expected image batches (N, C, H, W), got shape {tuple(pred.shape)}")
    for t, what in ((pred, "pred"), (target, "target")):
        if not t.is_floating_point():
            raise TypeError(f"{name}: {what} must be a float tensor in [0, 1], got {t.dtype}; use x.float() / 255")
    dtype = torch.float64 if pred.dtype == torch.float64 else torch.float32
    return pred.to(dtype), target.to(dtype)


@no_autocast
def fft_loss(
    pred: Tensor,
    target: Tensor,
    *,
    norm: Literal["backward", "ortho", "forward"] = "backward",
    onesided: bool = False,
    reduction: Reduction = "mean",
) -> Tensor:
    r"""Björk et al. eq. (2): :math:`\frac1n\sum(\Im F\{x\}-\Im F\{\hat x\})^2 + \frac1n\sum(\Re F\{x\}-\Re F\{\hat x\})^2`.

    Args:
        pred, target: images ``(N, C, H, W)`` (in [0, 1]); the FFT runs over ``(H, W)`` of each channel.
        norm: FFT normalisation. ``"backward"`` (default, torch's default ``torch.fft.fft2``) is the
            unnormalised DFT; ``"ortho"`` the unitary one.
        onesided: use ``torch.fft.rfft2`` (half spectrum) instead of the full ``fft2``.
        reduction: ``"mean"`` over all N·C·H·W elements (the paper's 1/n, "n the total number of pixels"),
            ``"sum"``, or ``"none"`` (per image, mean over C·H·W).

    Returns: a scalar (or ``(N,)`` for ``reduction="none"``), float32.

    Note (checked by the tests): with the full FFT, Parseval makes eq. (2) an exactly rescaled pixel MSE:
    ``mean|F(x) - F(x̂)|^2 = H·W · mean|x - x̂|^2`` for ``norm="backward"`` and ``= mean|x - x̂|^2`` for
    ``"ortho"``. The loss therefore adds to the spatial loss an MSE weighted by ``H·W`` (1024 at 32x32, 4096
    at 64x64); what the paper calls spectral alignment acts as a strong, uniformly weighted squared error.
    The paper does not state the FFT normalisation or whether ``rfft2`` was used: we default to torch's
    ``fft2`` default and offer both as options.
    Ref: Björk et al., ICASSP 2022, eq. (2).
    """
    pred, target = _check(pred, target, "fft_loss")
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    fft = torch.fft.rfft2 if onesided else torch.fft.fft2
    d = fft(pred, norm=norm) - fft(target, norm=norm)
    sq = d.real.square() + d.imag.square()
    if reduction == "mean":
        return sq.mean()
    if reduction == "sum":
        return sq.sum()
    return sq.mean(dim=(1, 2, 3))


class FFTLoss(nn.Module):
    r"""Björk et al.'s FFT loss as a module; see :func:`fft_loss` for the math, shapes and options.

    ``FFTLoss()(pred, target) -> scalar``. Combine with a spatial loss as in eq. (3),
    ``(1 - α)·L_s + α·L_f``, in ``specvae.losses.vae``.
    Ref: Björk et al., ICASSP 2022, eq. (2).
    """

    def __init__(
        self,
        *,
        norm: Literal["backward", "ortho", "forward"] = "backward",
        onesided: bool = False,
        reduction: Reduction = "mean",
    ) -> None:
        super().__init__()
        if norm not in ("backward", "ortho", "forward"):
            raise ValueError(f"norm must be 'backward', 'ortho' or 'forward', got {norm!r}")
        if reduction not in ("mean", "sum", "none"):
            raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
        self.norm = norm
        self.onesided = onesided
        self.reduction = reduction

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        return fft_loss(pred, target, norm=self.norm, onesided=self.onesided, reduction=self.reduction)

    def extra_repr(self) -> str:
        return f"norm={self.norm!r}, onesided={self.onesided}, reduction={self.reduction!r}"


class ParsevalMSE(nn.Module):
    r"""What :class:`FFTLoss` equals by Parseval, computed without any FFT: ``weight · H · W · mean((pred − target)²)``.

    For the full, unnormalised FFT, ``mean_{u,v}|F\{x\} − F\{\hat x\}|^2 = H·W · mean_{x,y}(x − \hat x)^2``
    (the tests check the identity), so this module and ``weight · FFTLoss()`` give the same value and the same
    gradient up to rounding. It is the control that separates a spectral effect of Björk's FFT loss from the
    effect of adding a heavily weighted pixel L2 term (chapter 1's "H·W-MSE (no FFT)" runs).

    Args:
        weight: a constant factor (chapter 1 uses eq. 3's α, so the term has the weight the FFT term has there).

    ``forward(pred, target) -> scalar``; ``(N, C, H, W)`` in [0, 1]; float32 with autocast disabled.
    Ref: Björk et al., ICASSP 2022, eq. (2), and Parseval's theorem for the DFT.
    """

    def __init__(self, weight: float = 1.0) -> None:
        super().__init__()
        if not (isinstance(weight, (int, float)) and weight > 0):
            raise ValueError(f"weight must be a positive number, got {weight!r}")
        self.weight = float(weight)

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        with torch.autocast(pred.device.type, enabled=False):
            pred, target = _check(pred, target, "ParsevalMSE")
            h, w = pred.shape[-2:]
            return self.weight * h * w * (pred - target).square().mean()

    def extra_repr(self) -> str:
        return f"weight={self.weight}"

"""Watson-DFT perceptual loss (Czolbe et al.), gray and RGB (YCbCr), with the authors' learned parameters.

Ref: S. Czolbe, O. Krause, I. Cox, C. Igel, "A Loss Function for Generative Neural Networks Based on Watson's
Perceptual Model", NeurIPS 2020, Sec. 3 (Watson's model on 8x8 DFT blocks: luminance masking, contrast masking,
Minkowski pooling, phase term); every step as read from the authors' code (SteffenCzolbe/PerceptualSimilarity,
``src/loss/watson_fft.py``, ``rfft2d.py``, ``color_wrapper.py``, ``shift_wrapper.py``) is listed in
reference-facts §3. Their ``torch.rfft`` (removed in torch 1.8) is re-expressed with ``torch.fft.rfft2``.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from specvae.losses.fft import _check
from specvae.paths import weights_dirs
from specvae.spectral import no_autocast

__all__ = ["WatsonDFTLoss", "WatsonDFT", "block_rfft2", "watson_weights_path", "YCBCR_TRANSFORM", "YCBCR_BIAS"]

EPS = 1e-10  # Czolbe et al.'s EPS, added to amplitudes, ratios and the pooled terms
_PHASE_ACOS_FACTOR = 1.0 - 1e-7  # keeps the acos gradient finite at equal phases

#: RGB -> YCbCr (JPEG / BT.601 full range) as ``ycbcr = rgb @ YCBCR_TRANSFORM + YCBCR_BIAS`` (pixels last);
#: the same numbers are stored in Czolbe et al.'s RGB weights file.
YCBCR_TRANSFORM = ((0.299, -0.1687, 0.5), (0.587, -0.3313, -0.4187), (0.114, 0.5, -0.0813))
YCBCR_BIAS = (0.0, 0.5, 0.5)

Reduction = Literal["sum", "mean", "none"]


@no_autocast
def block_rfft2(x: Tensor, blocksize: int = 8) -> Tensor:
    """One-sided DFT of each non-overlapping ``b x b`` block: ``(N, 1, H, W) -> complex (N, K, b, b//2+1)``.

    ``K = (H/b)(W/b)`` blocks in row-major order (as ``nn.Unfold(b, stride=b)``), each transformed with
    ``torch.fft.rfft2(block) / b**2`` -- Czolbe et al.'s ``torch.rfft(x, 2)`` (unnormalised, one-sided)
    divided by ``blocksize**2``. H and W must be divisible by ``b``.
    Ref: Czolbe et al. NeurIPS 2020 (``rfft2d.py``), reference-facts §3.
    """
    if x.ndim != 4 or x.shape[1] != 1:
        raise ValueError(f"block_rfft2 expects a one-channel batch (N, 1, H, W), got shape {tuple(x.shape)}")
    h, w = x.shape[-2:]
    if h % blocksize or w % blocksize:
        raise ValueError(
            f"the Watson-DFT loss works on {blocksize}x{blocksize} blocks: image size {h}x{w} must be divisible "
            f"by {blocksize} (resize or crop the images, e.g. to {h - h % blocksize}x{w - w % blocksize})"
        )
    blocks = rearrange(x, "n 1 (hb b1) (wb b2) -> n (hb wb) b1 b2", b1=blocksize, b2=blocksize)
    return torch.fft.rfft2(blocks) / blocksize**2


def _smoothmax(a: Tensor, b: Tensor) -> Tensor:
    """``a·softmax([a, b])_0 + b·softmax([a, b])_1`` elementwise."""
    w = torch.softmax(torch.stack([a, b], dim=0), dim=0)
    return a * w[0] + b * w[1]


class WatsonDFT(nn.Module):
    r"""Watson's perceptual distance on 8x8 DFT blocks of a one-channel image, per sample: ``(N,)``.

    With ``c0 = block_rfft2(target)``, ``c1 = block_rfft2(input)`` and amplitudes ``A = |c + EPS|``:

    * sensitivity ``t = exp(t_tild)`` ``(b, b//2+1)``; luminance masking
      ``t_l = t · ((A0_dc + EPS) / (mean(A0_dc) + EPS))^alpha`` with the mean over **batch and blocks**
      (so the value of one image depends on the others in its batch, as in the reference code);
    * contrast masking ``s = smoothmax(t_l, (A0 + EPS)^w · t_l^(1-w))``, ``w = sigmoid(w_tild)``;
    * pooling ``D_w = (Σ_{k,u,v} [dropout((|A0 - A1| / s + EPS)^beta) + EPS])^(1/beta)``;
    * phase ``D_p = Σ_{k,u,v} dropout(w_phase · acos((1 - 1e-7)·cos(φ0 - φ1)))``, ``φ = atan2(im, re + EPS)``,
      ``w_phase = exp(w_phase_tild)``, zeroed at the purely real bins (0,0), (0,b/2), (b/2,0), (b/2,b/2)
      when not trainable;
    * distance ``D_w + D_p``.

    Initial values (untrained): ``t_tild = 0``, ``alpha = 0.1``, ``w = 0.2``, ``beta = 1``,
    ``w_phase = exp(-2)``; dropout p=0.5 only when ``trainable``.
    Ref: Czolbe et al., NeurIPS 2020, Sec. 3; reference-facts §3.
    """

    def __init__(self, blocksize: int = 8, *, trainable: bool = False) -> None:
        super().__init__()
        if blocksize < 2:
            raise ValueError(f"blocksize must be >= 2, got {blocksize}")
        self.blocksize = blocksize
        self.trainable = trainable
        shape = (blocksize, blocksize // 2 + 1)
        self.t_tild = nn.Parameter(torch.zeros(shape), requires_grad=trainable)
        self.alpha = nn.Parameter(torch.tensor(0.1), requires_grad=trainable)
        self.w_tild = nn.Parameter(torch.tensor(math.log(0.2 / 0.8)), requires_grad=trainable)
        self.beta = nn.Parameter(torch.tensor(1.0), requires_grad=trainable)
        self.w_phase_tild = nn.Parameter(torch.full(shape, -2.0), requires_grad=trainable)
        mask = torch.ones(shape)
        if not trainable:
            half = blocksize // 2
            for i, j in ((0, 0), (0, half), (half, 0), (half, half)):
                mask[i, j] = 0.0
        self.register_buffer("phase_mask", mask, persistent=False)
        self.dropout = nn.Dropout(0.5 if trainable else 0.0)

    @property
    def t(self) -> Tensor:
        return torch.exp(self.t_tild)

    @property
    def w(self) -> Tensor:
        return torch.sigmoid(self.w_tild)

    @property
    def w_phase(self) -> Tensor:
        return torch.exp(self.w_phase_tild) * self.phase_mask

    @no_autocast
    def forward(self, input: Tensor, target: Tensor) -> Tensor:  # noqa: A002 (the reference code's names)
        c1 = block_rfft2(input, self.blocksize)
        c0 = block_rfft2(target, self.blocksize)
        a0 = torch.sqrt((c0.real + EPS) ** 2 + (c0.imag + EPS) ** 2)
        a1 = torch.sqrt((c1.real + EPS) ** 2 + (c1.imag + EPS) ** 2)
        t, w, beta = self.t.to(a0), self.w.to(a0), self.beta.to(a0)
        dc = a0[:, :, 0, 0]
        lum = ((dc + EPS) / (dc.mean() + EPS)) ** self.alpha.to(a0)
        t_l = t * lum[..., None, None]
        s = _smoothmax(t_l, (a0 + EPS) ** w * t_l ** (1.0 - w))
        pooled = self.dropout(((a0 - a1).abs() / s + EPS) ** beta) + EPS
        d_w = pooled.sum(dim=(1, 2, 3)) ** (1.0 / beta)
        phi0 = torch.atan2(c0.imag, c0.real + EPS)
        phi1 = torch.atan2(c1.imag, c1.real + EPS)
        phase = torch.acos(torch.cos(phi0 - phi1) * _PHASE_ACOS_FACTOR) * self.w_phase.to(a0)
        d_p = self.dropout(phase).sum(dim=(1, 2, 3))
        return d_w + d_p


def watson_weights_path(color: Literal["gray", "rgb"], path: str | os.PathLike | None = None) -> Path:
    """Find ``{color}_watson_fft_trial0.pth``: ``path`` itself if it is a file, else ``<dir>/watson/<name>`` or
    ``<dir>/<name>`` for each folder of :func:`specvae.paths.weights_dirs` (``path``, ``SPECVAE_WEIGHTS``,
    the cache). Raises ``FileNotFoundError`` listing every place searched."""
    if color not in ("gray", "rgb"):
        raise ValueError(f"color must be 'gray' or 'rgb', got {color!r}")
    name = f"{color}_watson_fft_trial0.pth"
    if path is not None and Path(path).expanduser().is_file():
        return Path(path).expanduser()
    tried = []
    for d in weights_dirs(path):
        for cand in (d / "watson" / name, d / name):
            tried.append(str(cand))
            if cand.is_file():
                return cand
    raise FileNotFoundError(
        f"Watson-DFT weights {name!r} not found. Searched: {', '.join(tried)}. Put the file (from Czolbe et al.'s "
        "PerceptualSimilarity repository, src/loss/weights/) in one of these folders, set SPECVAE_WEIGHTS to the "
        "folder that holds watson/, or pass path=."
    )


class WatsonDFTLoss(nn.Module):
    r"""Watson-DFT loss of Czolbe et al. for gray (``color="gray"``, 1 channel) or RGB (``"rgb"``, 3 channels).

    ``forward(pred, target) -> scalar`` (``reduction="sum"`` over the batch by default, as in the reference
    code and Czolbe's VAE objective ``Watson_sum + KLD_sum``; ``"mean"`` divides by N; ``"none"`` gives
    ``(N,)``). Inputs in [0, 1], ``(N, C, H, W)`` with H and W divisible by 8. The target masks the
    prediction (it is ``c0`` of :class:`WatsonDFT`).

    RGB: ``ycbcr = rgb @ T + b`` (JPEG YCbCr, stored in the weights file), three independent
    :class:`WatsonDFT` losses on Y, Cb, Cr, combined with weights ``softmax(w_tild)`` (3).

    ``deterministic=True`` (default, for evaluation) compares the images as they are. ``deterministic=False``
    is the reference code's ``ShiftWrapper``: both images are padded by ``b/2`` pixels (replicate) and the
    same random ``H x W`` crop (shift 0..b-1 in each direction, one shift per batch) is taken from both,
    which makes the block grid random during training. Use :meth:`pretrained` for the authors' learned
    parameters; a fresh module has the untrained initial values.
    Ref: Czolbe et al., NeurIPS 2020; reference-facts §3.
    """

    def __init__(
        self,
        color: Literal["gray", "rgb"] = "gray",
        *,
        blocksize: int = 8,
        deterministic: bool = True,
        trainable: bool = False,
        reduction: Reduction = "sum",
    ) -> None:
        super().__init__()
        if color not in ("gray", "rgb"):
            raise ValueError(f"color must be 'gray' or 'rgb', got {color!r}")
        if reduction not in ("sum", "mean", "none"):
            raise ValueError(f"reduction must be 'sum', 'mean' or 'none', got {reduction!r}")
        self.color = color
        self.blocksize = blocksize
        self.deterministic = deterministic
        self.reduction = reduction
        if color == "gray":
            self.watson = WatsonDFT(blocksize, trainable=trainable)
        else:
            self.ly = WatsonDFT(blocksize, trainable=trainable)
            self.lcb = WatsonDFT(blocksize, trainable=trainable)
            self.lcr = WatsonDFT(blocksize, trainable=trainable)
            self.w_tild = nn.Parameter(torch.zeros(3), requires_grad=trainable)
            self.register_buffer("ycbcr_transform", torch.tensor(YCBCR_TRANSFORM))
            self.register_buffer("ycbcr_bias", torch.tensor(YCBCR_BIAS))

    @property
    def channel_weights(self) -> Tensor:
        """``softmax(w_tild)`` over (Y, Cb, Cr); RGB only."""
        if self.color != "rgb":
            raise AttributeError("channel_weights exist only for color='rgb'")
        return torch.softmax(self.w_tild, dim=0)

    @classmethod
    def pretrained(
        cls,
        color: Literal["gray", "rgb"] = "gray",
        path: str | os.PathLike | None = None,
        **kwargs,
    ) -> "WatsonDFTLoss":
        """The loss with Czolbe et al.'s learned parameters (``{color}_watson_fft_trial0.pth``).

        The file is found by :func:`watson_weights_path` (``path`` may be the file or a folder; then
        ``SPECVAE_WEIGHTS``, then the cache) and read with ``torch.load(..., weights_only=True)``. Its
        ``_tild`` entries are the unconstrained parameters: ``t = exp(t_tild)``, ``w = sigmoid(w_tild)``,
        ``w_phase = exp(w_phase_tild)``, channel weights ``softmax(w_tild)``; ``alpha`` and ``beta`` are used
        as stored. ``kwargs`` go to the constructor (``deterministic``, ``reduction``, ...).
        """
        file = watson_weights_path(color, path)
        try:
            state = torch.load(file, map_location="cpu", weights_only=True)
        except Exception as err:  # pragma: no cover - depends on the file
            raise RuntimeError(f"could not read Watson-DFT weights from {file}: {err}") from err
        loss = cls(color, **kwargs)
        loss.load_czolbe_state_dict(state)
        return loss

    def load_czolbe_state_dict(self, state: dict[str, Tensor]) -> None:
        """Load a state dict with the reference code's keys (``t_tild``, ``ly.alpha``, ``to_YCbCr.bias`` ...)."""
        params = ("t_tild", "alpha", "w_tild", "beta", "w_phase_tild")
        if self.color == "gray":
            groups = {"": self.watson}
        else:
            groups = {"ly.": self.ly, "lcb.": self.lcb, "lcr.": self.lcr}
        with torch.no_grad():
            for prefix, mod in groups.items():
                missing = [prefix + p for p in params if prefix + p not in state]
                if missing:
                    raise KeyError(
                        f"not a {self.color} Watson-DFT weights file: missing {missing} (keys: {sorted(state)})"
                    )
                bs = state.get(prefix + "blocksize")
                if bs is not None and int(bs) != mod.blocksize:
                    raise ValueError(f"weights are for blocksize {int(bs)}, the loss has {mod.blocksize}")
                for p in params:
                    getattr(mod, p).copy_(state[prefix + p])
            if self.color == "rgb":
                self.w_tild.copy_(state["w_tild"])
                if "to_YCbCr.transform" in state:
                    self.ycbcr_transform.copy_(state["to_YCbCr.transform"])
                    self.ycbcr_bias.copy_(state["to_YCbCr.bias"])

    def _shift(self, pred: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
        pad = self.blocksize // 2
        h, w = pred.shape[-2:]
        both = F.pad(torch.cat([pred, target]), (pad, pad, pad, pad), mode="replicate")
        dy, dx = (int(v) for v in torch.randint(0, self.blocksize, (2,)))
        both = both[..., dy : dy + h, dx : dx + w]
        return both[: pred.shape[0]], both[pred.shape[0] :]

    @no_autocast
    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        pred, target = _check(pred, target, "WatsonDFTLoss")
        want = 1 if self.color == "gray" else 3
        if pred.shape[1] != want:
            raise ValueError(
                f"WatsonDFTLoss(color={self.color!r}) expects {want} channel(s), got {pred.shape[1]}: "
                + ("use color='rgb' or convert with specvae.spectral.to_gray" if want == 1 else "use color='gray'")
            )
        h, w = pred.shape[-2:]
        if h % self.blocksize or w % self.blocksize:
            raise ValueError(
                f"the Watson-DFT loss needs H and W divisible by {self.blocksize}, got {h}x{w}; resize or crop"
            )
        if not self.deterministic:
            pred, target = self._shift(pred, target)
        if self.color == "gray":
            dist = self.watson(pred, target)
        else:
            tr, bias = self.ycbcr_transform.to(pred), self.ycbcr_bias.to(pred)
            yp = torch.einsum("nihw,ij->njhw", pred, tr) + bias.view(1, 3, 1, 1)
            yt = torch.einsum("nihw,ij->njhw", target, tr) + bias.view(1, 3, 1, 1)
            cw = self.channel_weights.to(pred)
            dist = sum(
                cw[k] * mod(yp[:, k : k + 1], yt[:, k : k + 1]) for k, mod in enumerate((self.ly, self.lcb, self.lcr))
            )
        if self.reduction == "sum":
            return dist.sum()
        if self.reduction == "mean":
            return dist.mean()
        return dist

    def extra_repr(self) -> str:
        return f"color={self.color!r}, deterministic={self.deterministic}, reduction={self.reduction!r}"

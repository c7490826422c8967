"""LPIPS v0.1 with the real trunks equals the `lpips` package given the same trunk weights."""

from __future__ import annotations

import pytest
import torch

from specvae.metrics import LPIPS, LPIPS_NETS
from specvae.metrics import weights as W


def require(name: str):
    try:
        return W.resolve(name, fetch=False)
    except W.WeightsNotFoundError as exc:
        pytest.fail(f"pretrained network {name} is missing: run `specvae weights fetch` first.\n{exc}")


def _reference(net: str):
    """lpips.LPIPS with a random trunk (no download), then our converted trunk loaded into its slices."""
    import lpips

    ref = lpips.LPIPS(net=net, pretrained=True, pnet_rand=True, verbose=False)
    state = W.load_trunk_state_dict(require(f"lpips-{net}"), f"lpips-{net}")
    ends = LPIPS_NETS[net]["slices"]
    mapped = {}
    for key, value in state.items():
        idx = int(key.split(".")[0])
        s = next(i for i, e in enumerate(ends) if idx < e)
        mapped[f"slice{s + 1}.{key}"] = value
    ref.net.load_state_dict(mapped, strict=True)
    return ref.eval()


def _images(n=3, size=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 3, size, size, generator=g)
    y = (x + 0.2 * torch.randn(n, 3, size, size, generator=g)).clamp(0, 1)
    return x, y


@pytest.mark.weights("lpips-alex", "lpips-vgg")
@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_lpips_equals_lpips_package(net):
    require(f"lpips-{net}")
    ours, ref = LPIPS(net), _reference(net)
    x, y = _images(size=48 if net == "alex" else 32)
    with torch.no_grad():
        a = ours(x, y)
        b = ref(x, y, normalize=True).flatten()
        c = ref(2 * x - 1, 2 * y - 1).flatten()  # the lpips convention: inputs in [-1, 1]
    assert a.shape == (3,)
    torch.testing.assert_close(a, b, atol=1e-6, rtol=0)
    torch.testing.assert_close(LPIPS(net, normalize=False)(2 * x - 1, 2 * y - 1).detach(), c, atol=1e-6, rtol=0)


@pytest.mark.weights("lpips-alex")
def test_lpips_as_a_loss():
    require("lpips-alex")
    loss = LPIPS("alex", reduction="mean")
    assert not any(p.requires_grad for p in loss.parameters())
    x, y = _images(2, 32)
    assert loss(x, x).item() == pytest.approx(0.0, abs=1e-7)
    xr = x.clone().requires_grad_(True)
    value = loss(xr, y)
    value.backward()
    assert value.ndim == 0 and value.item() > 0
    assert torch.isfinite(xr.grad).all() and xr.grad.abs().sum() > 0
    loss.train()
    assert not loss.training  # a metric has no training mode
    # more distortion, larger distance
    g = torch.Generator().manual_seed(1)
    noise = torch.randn(x.shape, generator=g)
    d = [LPIPS("alex")(x, (x + s * noise).clamp(0, 1)).mean().item() for s in (0.02, 0.1, 0.3)]
    assert d[0] < d[1] < d[2]
    # gray images are repeated to RGB
    gray = x[:, :1]
    torch.testing.assert_close(LPIPS("alex")(gray, y[:, :1]), LPIPS("alex")(gray.expand(-1, 3, -1, -1),
                                                                             y[:, :1].expand(-1, 3, -1, -1)))


@pytest.mark.weights("lpips-alex")
def test_lpips_bad_input():
    require("lpips-alex")
    m = LPIPS("alex")
    with pytest.raises(ValueError, match="at least 32"):
        m(torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16))
    with pytest.raises(ValueError, match="same shape"):
        m(torch.rand(1, 3, 32, 32), torch.rand(2, 3, 32, 32))
    with pytest.raises(ValueError, match="unknown net"):
        LPIPS("squeeze")


def _lpips_before(model, pred, target):
    """The former LPIPS forward (one trunk pass over both, plain nn.Sequential slices), written out independently."""
    import torch.nn.functional as F

    x, y = 2 * pred - 1, 2 * target - 1
    n = x.shape[0]
    h = (torch.cat([x, y]) - model.shift) / model.scale
    d = 0.0
    for s, w in zip(model.slices, model.lins):
        h = s(h)
        f = h / (h.pow(2).sum(dim=1, keepdim=True).sqrt() + 1e-10)
        d = d + F.conv2d((f[:n] - f[n:]).pow(2), w).mean(dim=(1, 2, 3))
    return d


@pytest.mark.weights
@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_lpips_loss_gradient_equals_the_one_pass_gradient(net):
    """As a loss only the prediction gets a backward pass (the target's features run without autograd); the value
    and the gradient equal those of one autograd pass over both (fp32, 1e-6), on whichever side needs grad."""
    require(f"lpips-{net}")
    m = LPIPS(net, reduction="mean", precision="fp32")
    x, y = _images(2, 48 if net == "alex" else 32, seed=2)
    for side in (0, 1):
        a = [x.clone(), y.clone()]
        a[side].requires_grad_(True)
        value = m(*a)
        value.backward()
        b = [x.clone().requires_grad_(True), y.clone().requires_grad_(True)]  # both sides: the one-pass path
        ref = _lpips_before(m, *b).mean()
        ref.backward()
        torch.testing.assert_close(value.detach(), ref.detach(), atol=1e-6, rtol=0)
        torch.testing.assert_close(a[side].grad, b[side].grad, atol=1e-7, rtol=1e-4)
    with torch.no_grad():  # the metric path (fused conv+ReLU on the CPU) gives the same numbers
        torch.testing.assert_close(LPIPS(net, precision="fp32")(x, y), _lpips_before(m, x, y), atol=1e-6, rtol=0)


@pytest.mark.weights
@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_lpips_bf16_is_close_to_fp32(net):
    """bf16 trunk (channels_last), fp32 normalisation and heads: distances within 2 % per image. As a loss the
    prediction's pass stays fp32 by default (gradient cosine > 0.99); with grad_precision="bf16" it is bf16 too
    (the bound on real pairs is measured in specvae.bench.metrics.precision_effect)."""
    require(f"lpips-{net}")
    m32, m16 = LPIPS(net, precision="fp32"), LPIPS(net, precision="bf16")
    m16g = LPIPS(net, precision="bf16", grad_precision="bf16")
    assert (m16.precision, m16.grad_precision) == ("bf16", "fp32") and "grad_precision='fp32'" in repr(m16)
    # the state dict is the fp32 trunk, whatever the precision: checkpoints that hold an LPIPS do not change
    assert all(v.dtype == torch.float32 for v in m16.state_dict().values())
    assert m16.state_dict().keys() == m32.state_dict().keys()
    x, y = _images(4, 64, seed=3)
    with torch.no_grad():
        d32, d16 = m32(x, y), m16(x, y)
    assert all(p.dtype == torch.bfloat16 for p in m16._trunk(torch.bfloat16, x.device).parameters())
    assert d16.dtype == torch.float32
    rel = ((d16 - d32).abs() / d32).max().item()
    assert 0 < rel < 0.02, rel
    assert m16(x, x).abs().max().item() < 1e-6  # still exactly zero on identical images
    grads = []
    for m in (m32, m16, m16g):
        xr = y.clone().requires_grad_(True)
        m(xr, x).mean().backward()
        grads.append(xr.grad.flatten())
    cos = [torch.nn.functional.cosine_similarity(grads[0], g, dim=0).item() for g in grads[1:]]
    assert cos[0] > 0.99 and 0.9 < cos[1] < 1.0 and cos[1] < cos[0], cos
    with pytest.raises(ValueError, match="precision must be"):
        LPIPS(net, precision="fp16")
    with pytest.raises(ValueError, match="precision must be"):
        LPIPS(net, grad_precision="half")
    # under an outer bf16 autocast (a bf16 training step) the fp32 model still computes in fp32
    with torch.autocast("cpu", dtype=torch.bfloat16), torch.no_grad():
        torch.testing.assert_close(m32(x, y), d32, atol=1e-6, rtol=0)

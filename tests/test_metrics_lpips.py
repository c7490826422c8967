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

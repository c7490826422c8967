"""SSIM and PSNR against scikit-image (the reference the papers' numbers follow)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from specvae.metrics import SSIM_SETTINGS, psnr, ssim


def _pairs(n=3, c=3, h=32, w=40, noise=0.1, seed=0):
    g = torch.Generator().manual_seed(seed)
    # smooth structure + noise so SSIM is neither ~0 nor ~1
    base = torch.nn.functional.avg_pool2d(torch.rand(n, c, h + 4, w + 4, generator=g), 5, stride=1)
    x = base
    y = (x + noise * torch.randn(n, c, h, w, generator=g)).clamp(0, 1)
    return x, y


def _skimage_ssim(x, y):
    out = []
    for a, b in zip(x.double().numpy(), y.double().numpy()):
        out.append(structural_similarity(
            np.moveaxis(a, 0, -1), np.moveaxis(b, 0, -1), data_range=1.0, channel_axis=-1,
            gaussian_weights=True, sigma=1.5, use_sample_covariance=False))
    return torch.tensor(out, dtype=torch.float64)


@pytest.mark.parametrize("shape", [(3, 3, 32, 40), (2, 1, 11, 11), (2, 1, 64, 64), (1, 3, 17, 23)])
@pytest.mark.parametrize("noise", [0.02, 0.3])
def test_ssim_equals_skimage(shape, noise):
    n, c, h, w = shape
    x, y = _pairs(n, c, h, w, noise)
    ref = _skimage_ssim(x, y)
    # measured: float64 agrees to ~3e-8, float32 to ~2e-6 (a 0.3 % change of K2 moves SSIM by ~1e-4)
    assert torch.allclose(ssim(x, y).double(), ref, atol=1e-6, rtol=0)
    assert torch.allclose(ssim(x, y, dtype=torch.float32).double(), ref, atol=1e-5, rtol=0)


def test_ssim_equals_skimage_on_dark_images():
    """Near-black images: the luminance constant C1 = (K1 L)^2 matters only where the local means are small."""
    x, y = _pairs(3, 3, 32, 40, 0.3)
    x, y = 0.03 * x, 0.03 * y
    ref = _skimage_ssim(x, y)
    assert torch.allclose(ssim(x, y).double(), ref, atol=1e-6, rtol=0)
    assert not torch.allclose(ssim(x, y, k1=0.0105).double(), ref, atol=1e-6, rtol=0)  # the case is sensitive


def test_ssim_properties():
    x, y = _pairs()
    assert torch.allclose(ssim(x, x), torch.ones(3), atol=1e-6)
    assert torch.allclose(ssim(x, y), ssim(y, x), atol=1e-7)  # symmetric
    assert (ssim(x, y) < 0.999).all()
    assert ssim(x, y).shape == (3,)
    assert SSIM_SETTINGS["sigma"] == 1.5 and SSIM_SETTINGS["win_size"] == 11


def test_ssim_data_range_scales():
    x, y = _pairs(noise=0.2)
    assert torch.allclose(ssim(255 * x, 255 * y, data_range=255.0), ssim(x, y), atol=1e-6)


def test_ssim_gradient_float64():
    x, y = _pairs(1, 1, 12, 12, 0.2)
    x = x.double().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a: ssim(a, y.double()), (x,), eps=1e-6, atol=1e-5)


def test_psnr_equals_skimage():
    x, y = _pairs(4, 3, 16, 16, 0.05)
    ref = [peak_signal_noise_ratio(a.numpy(), b.numpy(), data_range=1.0) for a, b in zip(x, y)]
    assert torch.allclose(psnr(x, y).double(), torch.tensor(ref, dtype=torch.float64), atol=1e-4)
    # analytic: a constant error e gives 10 log10(1/e^2) = -20 log10(e)
    z = torch.full((1, 1, 8, 8), 0.5)
    assert psnr(z, z + 0.1).item() == pytest.approx(20.0, abs=1e-4)
    assert torch.isinf(psnr(x, x)).all()


@pytest.mark.parametrize("fn", [ssim, psnr])
def test_bad_input_is_refused_with_a_clear_message(fn):
    x = torch.rand(2, 3, 16, 16)
    with pytest.raises(ValueError, match="same shape"):
        fn(x, x[:1])
    with pytest.raises(TypeError, match="float"):
        fn((x * 255).to(torch.uint8), (x * 255).to(torch.uint8))


def test_ssim_too_small_image():
    x = torch.rand(1, 1, 8, 8)
    with pytest.raises(ValueError, match="at least 11"):
        ssim(x, x)

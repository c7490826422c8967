"""The spectral metrics as re-exported by specvae.metrics: analytic radial spectra and the summary table."""

from __future__ import annotations

import math

import pytest
import torch

import specvae.metrics as M


def test_reexports_are_specvae_spectral():
    from specvae import spectral

    for name in ("rmse_ai", "rmse_ft", "rmse_spatial", "radial_profile", "band_errors", "frequency_axis"):
        assert getattr(M, name) is getattr(spectral, name)


@pytest.mark.parametrize("k", [4, 8, 12])
def test_radial_spectrum_of_a_pure_sinusoid_peaks_at_its_frequency(k):
    n = 64
    yy, xx = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
    img = 0.5 + 0.4 * torch.cos(2 * math.pi * (k * xx + k * yy) / n)  # frequency (k, k)/n, radius k*sqrt(2)/n
    # rings measured from the DC bin, all kept (Durall's default centre is half a pixel off DC, which
    # splits the two mirror peaks (k, k) and (-k, -k) over two rings)
    prof = M.radial_profile(img[None, None].float(), log=False, center="dc", bins="all")[0]
    freqs = M.frequency_axis(n, n, center="dc", bins="all")
    prof[0] = 0.0  # ring 0 holds DC (the mean 0.5)
    peak = float(freqs[prof.argmax()])
    assert peak == pytest.approx(k * math.sqrt(2) / n, abs=1.0 / n)
    # everything off the peak ring is zero up to float error
    others = torch.cat([prof[: prof.argmax()], prof[prof.argmax() + 1:]])
    assert others.max() < 1e-6 * prof.max()


def test_radial_spectrum_of_white_noise_is_flat():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(64, 1, 64, 64, generator=g)
    prof = M.radial_profile(x, log=False).mean(0)  # expected power per bin = H*W*var = 4096/12
    expected = 64 * 64 / 12.0
    assert torch.allclose(prof[2:], torch.full_like(prof[2:], expected), rtol=0.12)


def test_spectral_metrics_summary():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(5, 3, 32, 32, generator=g)
    zero = M.spectral_metrics(x, x)
    assert zero["rmse_ai_mean"] == pytest.approx(0.0, abs=1e-6)
    assert zero["rmse_spatial_mean"] == 0.0 and zero["band_mse_high_mean"] == pytest.approx(0.0, abs=1e-12)
    y = (x + 0.1 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    s = M.spectral_metrics(y, x)
    per_image = M.rmse_spatial(y, x).double()
    assert s["rmse_spatial_mean"] == pytest.approx(float(per_image.mean()), rel=1e-6)
    assert s["rmse_spatial_std"] == pytest.approx(float(per_image.std(unbiased=False)), rel=1e-5, abs=1e-9)
    # bands split the MSE (Parseval): low + mid + high = mean squared error
    bands = sum(s[f"band_mse_{b}_mean"] for b in ("low", "mid", "high"))
    assert bands == pytest.approx(s["pixel_se_mean"], rel=1e-4)


def test_reconstruction_metrics_without_networks():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(4, 3, 16, 16, generator=g)
    y = (x + 0.05 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    out = M.reconstruction_metrics(y, x, lpips_net=None)
    assert out["n_images"] == 4
    assert out["psnr_mean"] == pytest.approx(float(M.psnr(y, x).double().mean()), rel=1e-9)
    assert out["ssim_mean"] == pytest.approx(float(M.ssim(y, x).double().mean()), rel=1e-9)
    assert "rmse_ai_mean" in out and "lpips_alex_mean" not in out

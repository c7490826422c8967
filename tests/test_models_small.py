"""The small models of chapter 0: coordinate MLP with Fourier features, conv decoder/autoencoder."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from specvae.models.autoencoder import ConvAutoencoder, ConvDecoder, ConvEncoder
from specvae.models.mlp import MLP, FourierFeatures
from specvae.models.upsample import make_upsample


@pytest.fixture(autouse=True)
def _flush_denormals():
    """ReLU nets on the CPU slow down up to 20x on denormal floats; flushing them keeps these tests fast."""
    old = torch.set_flush_denormal(True) and False
    yield
    torch.set_flush_denormal(old)


def test_fourier_features_formula_and_seed():
    ff = FourierFeatures(2, 8, scale=3.0, seed=1)
    v = torch.rand(5, 2)
    B = ff.B.numpy().astype(np.float64)
    proj = 2 * np.pi * v.numpy().astype(np.float64) @ B.T
    ref = np.concatenate([np.cos(proj), np.sin(proj)], -1)
    np.testing.assert_allclose(ff(v).numpy(), ref, atol=1e-5)
    assert ff.out_features == 16
    assert torch.equal(ff.B, FourierFeatures(2, 8, scale=3.0, seed=1).B)
    assert not torch.equal(ff.B, FourierFeatures(2, 8, scale=3.0, seed=2).B)
    assert not ff.B.requires_grad and "B" in dict(ff.named_buffers())


def test_fourier_features_scale_is_std_of_B():
    ff = FourierFeatures(1, 20000, scale=10.0, seed=0)
    assert ff.B.std().item() == pytest.approx(10.0, rel=0.03)
    assert abs(ff.B.mean().item()) < 0.3


def test_fourier_features_bad_args():
    with pytest.raises(ValueError, match="scale"):
        FourierFeatures(1, 4, scale=0)
    with pytest.raises(ValueError, match="last dim 2"):
        FourierFeatures(2, 4)(torch.zeros(3, 1))


def test_mlp_shapes_and_structure():
    m = MLP(2, 3, width=16, depth=3, fourier_features=8, out_activation="sigmoid")
    y = m(torch.rand(7, 2))
    assert y.shape == (7, 3) and (y > 0).all() and (y < 1).all()
    linears = [l for l in m.net if isinstance(l, nn.Linear)]
    assert len(linears) == 4 and linears[0].in_features == 16
    raw = MLP(1, 1, width=16, depth=2)
    assert [l for l in raw.net if isinstance(l, nn.Linear)][0].in_features == 1
    assert raw.features is None


def test_mlp_bad_args():
    with pytest.raises(ValueError, match="activation"):
        MLP(activation="swishy")
    with pytest.raises(ValueError, match="fourier_features"):
        MLP(fourier_features=-1)
    with pytest.raises(ValueError, match="last dim 1"):
        MLP(1, 1)(torch.zeros(4, 2))


def test_mlp_fourier_features_fit_high_frequency_fast():
    """Tancik et al.: with Fourier features a sinusoid of 12 cycles is fitted in 100 steps; a raw MLP is not."""
    torch.manual_seed(0)
    x = torch.arange(128.0)[:, None] / 128
    y = torch.sin(2 * math.pi * 12 * x)
    losses = {}
    for ff in (0, 32):
        torch.manual_seed(0)
        m = MLP(1, 1, width=64, depth=3, fourier_features=ff, fourier_scale=10.0)
        opt = torch.optim.Adam(m.parameters(), 1e-3)
        for _ in range(100):
            loss = ((m(x) - y) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        losses[ff] = loss.item()
    assert losses[32] < 0.05 < 0.3 < losses[0]


@pytest.mark.parametrize("kind", ["transposed", "nearest_conv5"])
def test_decoder_shapes(kind):
    dec = ConvDecoder(16, 3, width=8, n_up=3, upsample=kind)
    y = dec(torch.randn(2, 16, 4, 4))
    assert y.shape == (2, 3, 32, 32) and y.min() >= 0 and y.max() <= 1
    with pytest.raises(ValueError, match="expected"):
        dec(torch.randn(2, 15, 4, 4))


def test_decoder_bad_kind():
    with pytest.raises(ValueError, match="up-sampling kind"):
        ConvDecoder(4, 1, upsample="bilinear")


def test_transposed_layer_output_is_period_two_from_constant_input():
    """Odena et al.: a stride-2 transposed conv maps a constant input to a period-2 (checkerboard) pattern."""
    torch.manual_seed(0)
    up = make_upsample("transposed", 1, 1)
    with torch.no_grad():
        y = up(torch.ones(1, 1, 8, 8))[0, 0, 2:-2, 2:-2]  # away from the borders
    assert torch.allclose(y[:-2], y[2:], atol=1e-6) and torch.allclose(y[:, :-2], y[:, 2:], atol=1e-6)
    assert (y[0, 0] - y[0, 1]).abs() > 1e-3 or (y[0, 0] - y[1, 0]).abs() > 1e-3


def test_nearest_upsampling_has_no_energy_at_nyquist():
    """Nearest ×2 copies each pixel twice, so the DFT along that axis is exactly zero at 1/2 cycles/pixel."""
    up = make_upsample("nearest_conv5", 1, 1, bias=False)
    with torch.no_grad():
        up[1].weight.zero_()
        up[1].weight[0, 0, 2, 2] = 1.0  # identity convolution: the layer is plain nearest ×2
        y = up(torch.randn(1, 1, 8, 8))[0, 0]
    F = torch.fft.fft2(y.double())
    assert F[:, 8].abs().max() < 1e-9 and F[8, :].abs().max() < 1e-9
    assert F.abs().max() > 1


def test_autoencoder_shapes_and_errors():
    ae = ConvAutoencoder(3, 32, width=8, n_levels=3, latent_dim=12, upsample="nearest_conv5")
    x = torch.rand(4, 3, 32, 32)
    z = ae.encode(x)
    assert z.shape == (4, 12)
    assert ae(x).shape == x.shape and ae.decode(z).shape == x.shape
    assert ConvEncoder(1, 4, 2)(torch.rand(1, 1, 16, 16)).shape == (1, 8, 4, 4)
    with pytest.raises(ValueError, match="divisible"):
        ConvAutoencoder(3, 36, n_levels=3)
    with pytest.raises(ValueError, match="expected images"):
        ae.encode(torch.rand(4, 1, 32, 32))
    with pytest.raises(ValueError, match="in_channels"):
        ConvAutoencoder(2, 32)


def test_autoencoder_learns_to_reconstruct():
    """A few Adam steps on 8 fixed images lower the reconstruction MSE (the model is trainable end to end)."""
    torch.manual_seed(0)
    x = torch.nn.functional.interpolate(torch.rand(8, 1, 4, 4), size=16, mode="bilinear").clamp(0, 1)
    ae = ConvAutoencoder(1, 16, width=8, n_levels=2, latent_dim=16)
    opt = torch.optim.Adam(ae.parameters(), 3e-3)
    first = None
    for _ in range(40):
        loss = ((ae(x) - x) ** 2).mean()
        first = loss.item() if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.7 * first

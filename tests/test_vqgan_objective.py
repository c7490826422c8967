"""The VQGAN / FA-VAE objective: every term at its weight, λ on the last layer, σ trained (DSL) or fixed (SL),
the discriminator step on the cached reconstruction."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from specvae.losses.adversarial import PatchDiscriminator, hinge_d_loss
from specvae.losses.focal_frequency import focal_frequency_loss
from specvae.losses.spectrum import FeatureSpectrumLoss
from specvae.losses.vqgan import DiscriminatorObjective, VQGANLossWeights, VQGANObjective, VQGANTraining
from specvae.models.vqgan import VQGAN, VQGANConfig


class FakeLPIPS(nn.Module):
    """Stands in for LPIPS (no pretrained weights needed): mean squared difference."""

    def forward(self, a, b):
        return (a - b).pow(2).mean()


def build(learnable=True, disc=True, fcm="conv"):
    torch.manual_seed(0)
    vq = VQGAN(VQGANConfig(resolution=32, ch=16, ch_mult=(1, 2, 2, 4), num_res_blocks=1, attn_resolutions=(4,),
                           z_channels=16, codebook_size=32, norm_groups=8, fcm=fcm))
    spec = FeatureSpectrumLoss(4, 3, learnable=learnable, loss_weight=1.0) if fcm else None
    return VQGANTraining(vq, PatchDiscriminator(ndf=8) if disc else None, spec)


def test_loss_is_the_weighted_sum_of_named_terms() -> None:
    model = build()
    w = VQGANLossWeights(l1=1.5, lpips=0.7, codebook=2.0, gan=0.5, ffl=0.3, spectrum=0.05)
    obj = VQGANObjective(w, disc_start=0, lpips=FakeLPIPS())
    x = torch.rand(2, 3, 32, 32)
    model.train()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    loss, terms = obj(model, x, 0)
    # recompute every term independently from a copy at the same state
    ref = build()
    ref.load_state_dict(state)
    ref.train()
    out = ref.vqgan(x)
    xp, y = 2 * x - 1, out.recon_pm
    l1 = (xp - y).abs().mean()
    lp = (y - xp).pow(2).mean()
    ffl = focal_frequency_loss(y, xp)
    sl, _ = ref.spectrum(*out.pairs())
    g = -ref.disc(y).mean()
    last = ref.vqgan.last_layer
    gr = torch.autograd.grad(l1 + 0.7 * lp, last, retain_graph=True)[0]
    gg = torch.autograd.grad(g, last, retain_graph=True)[0]
    lam = (gr.norm() / (gg.norm() + 1e-4)).clamp(0, 1e4)
    want = 1.5 * l1 + 0.7 * lp + 2.0 * out.codebook_loss + 0.3 * ffl + 0.05 * sl + lam * 0.5 * g
    assert loss.item() == pytest.approx(want.item(), rel=1e-5)
    assert terms["gan_weight"].item() == pytest.approx(lam.item(), rel=1e-5)
    assert terms["rec"].item() == pytest.approx((l1 + lp).item(), rel=1e-6)
    assert {"l1", "lpips", "rec", "codebook", "ffl", "spectrum", "gan", "gan_weight", "sigma_0", "spectrum_3"} <= set(terms)


def test_no_gan_term_before_disc_start() -> None:
    model = build()
    obj = VQGANObjective(VQGANLossWeights(), disc_start=5, lpips=FakeLPIPS())
    model.train()
    _, terms = obj(model, torch.rand(2, 3, 32, 32), 4)
    assert "gan" not in terms and "gan_weight" not in terms
    _, terms = obj(model, torch.rand(2, 3, 32, 32), 5)
    assert "gan" in terms


@pytest.mark.parametrize("learnable", [True, False])
def test_dsl_sigma_trains_sl_sigma_does_not(learnable: bool) -> None:
    model = build(learnable=learnable)
    obj = VQGANObjective(VQGANLossWeights(gan=0.0), lpips=FakeLPIPS())
    model.train()
    loss, _ = obj(model, torch.rand(2, 3, 32, 32), 0)
    loss.backward()
    theta = model.spectrum.sigmas.theta
    if learnable:
        assert theta.grad is not None and (theta.grad != 0).all()
    else:
        assert theta.grad is None and not theta.requires_grad
    # the encoder is pulled by the feature loss too (A is not detached, as in the official code)
    assert model.vqgan.encoder.conv_in.weight.grad is not None


def test_discriminator_step_uses_the_cached_reconstruction() -> None:
    model = build()
    gen = VQGANObjective(VQGANLossWeights(), lpips=FakeLPIPS())
    disc = DiscriminatorObjective(gen)
    x = torch.rand(2, 3, 32, 32)
    with pytest.raises(RuntimeError, match="generator step"):
        disc(model, x, 0)
    model.train()
    gen(model, x, 0)
    loss, terms = disc(model, x, 0)
    want = hinge_d_loss(model.disc(2 * x - 1), model.disc(gen.cached_recon))
    assert loss.item() == pytest.approx(want.item(), rel=1e-5)
    loss.backward()
    assert all(p.grad is not None for p in model.disc.parameters())
    assert all(p.grad is None for p in model.vqgan.parameters())  # X̂ is detached


def test_spectrum_loss_needs_matching_pairs() -> None:
    vq = build(fcm=None).vqgan
    with pytest.raises(ValueError, match="needs FCMs"):
        VQGANTraining(vq, None, FeatureSpectrumLoss(4, 3))
    with pytest.raises(ValueError, match="must be a finite number"):
        VQGANLossWeights(gan=-1.0)

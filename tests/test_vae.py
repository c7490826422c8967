"""IRMAE VAE (specvae.models.vae) and the VAE objective / Björk eq. (3) (specvae.losses.vae)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from specvae.losses.vae import BCELoss, PerPixel, SpectralCombination, VAELoss, irmae_kl
from specvae.models.vae import IRMAEVAE, irmae_vae_for


def conv(cin: int, cout: int, k: int) -> int:
    """Parameters of a Conv2d / ConvTranspose2d with bias."""
    return cin * cout * k * k + cout


def linear(i: int, o: int) -> int:
    return i * o + o


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


# Expected counts from IRMAE's layer list (reference-facts §7 / facebookresearch/irmae model.py), n = 128.
N = 128
EXPECTED = {
    ("shapes", 1): conv(1, 32, 4) + conv(32, 64, 4) + conv(64, 128, 4) + conv(128, 256, 4) + conv(256, 2 * N, 2)
    + conv(N, 256, 2) + conv(256, 128, 4) + conv(128, 64, 4) + conv(64, 32, 4) + conv(32, 1, 4),
    ("mnist", 1): conv(1, 32, 4) + conv(32, 64, 4) + conv(64, 128, 4) + conv(128, 256, 4) + linear(1024, 2 * N)
    + linear(N, 128 * 64) + conv(128, 64, 4) + conv(64, 32, 4) + conv(32, 1, 1),
    ("celeba", 3): conv(3, 128, 4) + conv(128, 256, 4) + conv(256, 512, 4) + conv(512, 1024, 4)
    + linear(1024 * 16, 2 * N) + linear(N, 1024 * 64) + conv(1024, 512, 4) + conv(512, 256, 4) + conv(256, 128, 4)
    + conv(128, 3, 1),
}


@pytest.mark.parametrize("arch,channels", list(EXPECTED))
def test_parameter_count_matches_irmae(arch, channels):
    model = IRMAEVAE(arch, in_channels=channels)
    assert n_params(model) == EXPECTED[(arch, channels)]


@pytest.mark.parametrize("arch,channels", list(EXPECTED))
def test_nearest_conv5_changes_only_the_last_upsampling_layer(arch, channels):
    a = IRMAEVAE(arch, in_channels=channels, upsample="transposed")
    b = IRMAEVAE(arch, in_channels=channels, upsample="nearest_conv5")
    # the replaced layer: a 4x4 stride-2 transposed conv becomes nearest x2 + 5x5 conv with the same channels
    la, lb = a.last_upsampling_layer, b.last_upsampling_layer
    assert isinstance(la, nn.ConvTranspose2d) and la.stride == (2, 2) and la.kernel_size == (4, 4)
    assert isinstance(lb, nn.Sequential) and isinstance(lb[0], nn.Upsample) and lb[0].mode == "nearest"
    assert isinstance(lb[1], nn.Conv2d) and lb[1].kernel_size == (5, 5) and lb[1].padding == (2, 2)
    assert (lb[1].in_channels, lb[1].out_channels) == (la.in_channels, la.out_channels)
    # it is the last stride-2 layer of the decoder
    strided = [m for m in a.decoder.modules() if isinstance(m, nn.ConvTranspose2d) and m.stride == (2, 2)]
    assert strided[-1] is la
    # every other layer is identical in type and parameter shapes; the encoders are identical
    assert [tuple(p.shape) for p in a.encoder.parameters()] == [tuple(p.shape) for p in b.encoder.parameters()]
    others_a = [(type(m), [tuple(p.shape) for p in m.parameters()]) for m in a.decoder if m is not la]
    others_b = [(type(m), [tuple(p.shape) for p in m.parameters()]) for m in b.decoder if m is not lb]
    assert others_a == others_b
    # parameter difference is exactly 5x5 vs 4x4 kernels of that layer
    cin, cout = la.in_channels, la.out_channels
    assert n_params(b) - n_params(a) == cin * cout * (25 - 16)


@pytest.mark.parametrize("arch,size,channels,upsample", [
    ("shapes", 32, 1, "transposed"), ("shapes", 32, 3, "nearest_conv5"), ("mnist", 32, 1, "transposed"),
    ("mnist", 32, 1, "nearest_conv5"), ("celeba", 64, 3, "transposed"), ("celeba", 64, 3, "nearest_conv5"),
])
def test_shapes_and_output_range(arch, size, channels, upsample):
    torch.manual_seed(0)
    model = IRMAEVAE(arch, latent_dim=16, in_channels=channels, upsample=upsample, width_div=8 if arch == "celeba" else 1)
    x = torch.rand(3, channels, size, size)
    mu, logvar = model.encode(x)
    assert mu.shape == logvar.shape == (3, 16)
    recon, mu2, _ = model(x)
    assert recon.shape == x.shape
    assert torch.all(recon > 0) and torch.all(recon < 1)  # Sigmoid output
    # the encoder output is split as IRMAE: first n = mu, last n = logvar
    h = model.encoder(x)
    assert torch.equal(h[:, :16], mu) and torch.equal(h[:, 16:], logvar)


def test_encoder_feature_map_sizes_follow_irmae():
    model = IRMAEVAE("shapes")
    x = torch.rand(2, 1, 32, 32)
    sizes = []
    for layer in model.encoder:
        x = layer(x)
        if isinstance(layer, nn.Conv2d):
            sizes.append(x.shape[-1])
    assert sizes == [16, 8, 4, 2, 1]
    z = torch.randn(2, 128)
    out_sizes = []
    for layer in model.decoder:
        z = layer(z)
        if isinstance(layer, nn.ConvTranspose2d):
            out_sizes.append(z.shape[-1])
    assert out_sizes == [2, 4, 8, 16, 32]


def test_eval_mode_is_deterministic_and_training_samples():
    torch.manual_seed(0)
    model = IRMAEVAE("mnist", latent_dim=8)
    x = torch.rand(4, 1, 32, 32)
    model.eval()
    r1, mu, _ = model(x)
    r2, _, _ = model(x)
    assert torch.equal(r1, r2)
    assert torch.allclose(r1, model.decode(mu))
    model.train()
    with torch.no_grad():
        model.encoder[-1].bias[8:] = 2.0  # large variance -> sampled reconstructions differ
    r3, _, _ = model(x)
    r4, _, _ = model(x)
    assert not torch.allclose(r3, r4)


def test_bad_input_is_a_clear_error():
    model = IRMAEVAE("mnist")
    with pytest.raises(ValueError, match=r"\(N, 1, 32, 32\)"):
        model(torch.rand(2, 1, 28, 28))
    with pytest.raises(ValueError, match="unknown IRMAE architecture"):
        IRMAEVAE("cifar")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="up-sampling"):
        IRMAEVAE("mnist", upsample="bilinear")
    with pytest.raises(ValueError, match="in_channels"):
        IRMAEVAE("mnist", in_channels=3)
    with pytest.raises(ValueError, match="decode expects"):
        model.decode(torch.randn(2, 7))
    assert irmae_vae_for("faces").arch == "celeba"


# ------------------------------------------------------------------------------------------------ losses
def test_vae_loss_matches_hand_computation():
    x = torch.tensor([0.0, 1.0, 0.25, 0.5]).view(1, 1, 2, 2)
    p = torch.tensor([0.1, 0.8, 0.5, 0.5]).view(1, 1, 2, 2)
    mu = torch.tensor([[0.5, -1.0]])
    logvar = torch.tensor([[0.0, math.log(2.0)]])
    bce = -sum(xi * math.log(pi) + (1 - xi) * math.log(1 - pi)
               for xi, pi in zip([0.0, 1.0, 0.25, 0.5], [0.1, 0.8, 0.5, 0.5])) / 4
    # IRMAE: - beta * mean(1 + logvar - mu^2 - exp(logvar)); terms: (1+0-0.25-1) = -0.25; (1+ln2-1-2) = ln2-2
    kl = -((-0.25) + (math.log(2.0) - 2.0)) / 2
    loss = VAELoss(beta=0.1)
    terms = loss.terms(p, x, mu, logvar)
    assert terms["recon"].item() == pytest.approx(bce, rel=1e-6)
    assert terms["kl"].item() == pytest.approx(kl, rel=1e-6)
    assert loss(p, x, mu, logvar).item() == pytest.approx(bce + 0.1 * kl, rel=1e-6)


def test_irmae_kl_is_twice_the_mean_gaussian_kl():
    torch.manual_seed(1)
    mu, logvar = torch.randn(5, 7), torch.randn(5, 7)
    q = torch.distributions.Normal(mu, torch.exp(0.5 * logvar))
    p = torch.distributions.Normal(torch.zeros_like(mu), torch.ones_like(mu))
    ref = torch.distributions.kl_divergence(q, p).mean()
    assert irmae_kl(mu, logvar).item() == pytest.approx(2 * ref.item(), rel=1e-5)
    assert irmae_kl(torch.zeros(3, 4), torch.zeros(3, 4)).item() == 0.0


def test_bce_matches_torch():
    torch.manual_seed(2)
    p, x = torch.rand(2, 3, 8, 8) * 0.98 + 0.01, torch.rand(2, 3, 8, 8)
    assert BCELoss()(p, x).item() == pytest.approx(F.binary_cross_entropy(p, x).item(), rel=1e-6)


class _Const(nn.Module):
    """A loss returning a fixed function of its inputs (to check eq. 3's arithmetic)."""

    def __init__(self, scale: float) -> None:
        super().__init__()
        self.scale = scale

    def forward(self, pred, target):
        return self.scale * (pred - target).abs().mean()


def test_eq3_reduces_to_each_term_at_alpha_0_and_1():
    torch.manual_seed(3)
    p, x = torch.rand(2, 1, 8, 8), torch.rand(2, 1, 8, 8)
    ls, lf = _Const(1.0), _Const(7.0)
    a, b = ls(p, x).item(), lf(p, x).item()
    assert SpectralCombination(ls, lf, alpha=0.0)(p, x).item() == pytest.approx(a)
    assert SpectralCombination(ls, lf, alpha=1.0)(p, x).item() == pytest.approx(b)
    assert SpectralCombination(ls, lf, alpha=0.3)(p, x).item() == pytest.approx(0.7 * a + 0.3 * b)
    terms = VAELoss(SpectralCombination(ls, lf, alpha=0.3), beta=0.0).terms(p, x, torch.zeros(2, 3), torch.zeros(2, 3))
    assert set(terms) == {"recon", "spatial", "spectral", "kl", "loss"}
    with pytest.raises(ValueError, match="alpha"):
        SpectralCombination(ls, lf, alpha=1.5)


def test_eq3_with_fft_loss_alpha_1_equals_fft_loss():
    from specvae.losses import FFTLoss

    torch.manual_seed(4)
    p, x = torch.rand(2, 1, 16, 16), torch.rand(2, 1, 16, 16)
    assert SpectralCombination(BCELoss(), FFTLoss(), 1.0)(p, x).item() == pytest.approx(FFTLoss()(p, x).item())
    # Parseval: with the unnormalised FFT, eq. 2 is H*W times the pixel MSE (a fact the chapter discusses)
    assert FFTLoss()(p, x).item() == pytest.approx(16 * 16 * F.mse_loss(p, x).item(), rel=1e-4)


def test_per_pixel_normalisation():
    p, x = torch.rand(4, 3, 8, 8), torch.rand(4, 3, 8, 8)
    per_image = lambda a, b: (a - b).abs().flatten(1).sum(1)  # noqa: E731
    summed = lambda a, b: (a - b).abs().sum()  # noqa: E731
    ref = (p - x).abs().mean().item()
    assert PerPixel(per_image)(p, x).item() == pytest.approx(ref, rel=1e-6)
    assert PerPixel(summed)(p, x).item() == pytest.approx(ref, rel=1e-6)


def test_parseval_mse_equals_the_fft_loss_in_value_and_gradient():
    """ParsevalMSE (chapter 1's control) is weight · FFTLoss without an FFT: same value, same gradient (RGB, 64×48)."""
    from specvae.losses import FFTLoss, ParsevalMSE

    torch.manual_seed(5)
    x = torch.rand(3, 3, 64, 48, dtype=torch.float64)
    p1 = torch.rand(3, 3, 64, 48, dtype=torch.float64, requires_grad=True)
    p2 = p1.detach().clone().requires_grad_(True)
    a = ParsevalMSE(weight=0.5)(p1, x)
    b = 0.5 * FFTLoss()(p2, x)
    a.backward()
    b.backward()
    assert a.item() == pytest.approx(b.item(), rel=1e-12)
    assert torch.allclose(p1.grad, p2.grad, rtol=1e-10, atol=1e-15)
    assert a.item() == pytest.approx(0.5 * 64 * 48 * F.mse_loss(p1, x).item(), rel=1e-12)
    with pytest.raises(ValueError, match="weight"):
        ParsevalMSE(weight=0.0)

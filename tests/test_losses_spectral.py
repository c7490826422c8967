"""Tests for the spectral losses: FFT (Björk eq. 2), AI (Durall), Watson-DFT (Czolbe), focal frequency (Jiang)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torchvision.transforms.functional import gaussian_blur

from specvae.losses import AzimuthalLoss, FFTLoss, FocalFrequencyLoss, WatsonDFTLoss, azimuthal_loss, fft_loss
from specvae.losses.azimuthal import normalized_profile
from specvae.spectral import radial_profile
from specvae.losses.focal_frequency import focal_frequency_loss, focal_weights
from specvae.losses.spectrum import DynamicSpectrumLoss, SpectrumLoss, gaussian_kernel2d
from specvae.losses.watson import WatsonDFT, block_rfft2, watson_weights_path


def smooth_images(n: int = 4, c: int = 1, size: int = 32, seed: int = 0) -> torch.Tensor:
    """Natural-ish test images in [0, 1]: bicubic up-sampled 8x8 noise plus a little fine texture."""
    g = torch.Generator().manual_seed(seed)
    low = F.interpolate(torch.rand(n, c, 8, 8, generator=g), size=(size, size), mode="bicubic", align_corners=False)
    return (0.8 * low + 0.2 * torch.rand(n, c, size, size, generator=g)).clamp(0, 1)


def noisy(x: torch.Tensor, sigma: float, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (x + sigma * torch.randn(x.shape, generator=g)).clamp(0, 1)


def blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    return gaussian_blur(x, [7, 7], [sigma, sigma])


ALL_LOSSES = [
    pytest.param(lambda: FFTLoss(), 3, id="fft"),
    pytest.param(lambda: AzimuthalLoss(), 3, id="ai"),
    pytest.param(lambda: WatsonDFTLoss("gray"), 1, id="watson-gray-init"),
    pytest.param(lambda: WatsonDFTLoss("rgb"), 3, id="watson-rgb-init"),
    pytest.param(lambda: FocalFrequencyLoss(), 3, id="ffl"),
    pytest.param(lambda: DynamicSpectrumLoss(), 3, id="dsl"),
    pytest.param(lambda: SpectrumLoss(), 3, id="sl"),
]


# ------------------------------------------------------------------------------------------ common properties
@pytest.mark.parametrize("make,c", ALL_LOSSES)
def test_finite_gradient_at_zero_error(make, c: int) -> None:
    x = smooth_images(c=c)
    pred = x.clone().requires_grad_(True)
    loss = make()(pred, x)
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    assert torch.isfinite(pred.grad).all()
    assert pred.grad.abs().max() < 1e-2  # identical inputs are a minimum: (near-)zero gradient


@pytest.mark.parametrize("make,c", ALL_LOSSES)
def test_float32_under_bf16_autocast(make, c: int) -> None:
    x = smooth_images(c=c)
    y = noisy(x, 0.1)
    loss = make()
    ref = loss(y, x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = loss(y.bfloat16(), x.bfloat16())
    assert out.dtype == torch.float32
    assert torch.isfinite(out)
    assert out.item() == pytest.approx(ref.item(), rel=0.1)


@pytest.mark.parametrize("make,c", ALL_LOSSES)
def test_wrong_shapes_are_clear_errors(make, c: int) -> None:
    loss = make()
    with pytest.raises(ValueError, match="same shape"):
        loss(torch.rand(2, c, 32, 32), torch.rand(2, c, 16, 16))
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        loss(torch.rand(c, 32, 32), torch.rand(c, 32, 32))
    with pytest.raises(TypeError, match="float"):
        loss(torch.zeros(2, c, 32, 32, dtype=torch.uint8), torch.zeros(2, c, 32, 32, dtype=torch.uint8))


# ------------------------------------------------------------------------------------------------- FFT loss
def test_fft_loss_against_numpy() -> None:
    x, y = smooth_images(3, 3), noisy(smooth_images(3, 3), 0.1)
    fx, fy = np.fft.fft2(x.double().numpy()), np.fft.fft2(y.double().numpy())
    ref = np.mean((fx.imag - fy.imag) ** 2) + np.mean((fx.real - fy.real) ** 2)  # eq. (2), n = all pixels
    assert fft_loss(y, x).item() == pytest.approx(ref, rel=1e-5)


def test_fft_loss_is_a_rescaled_mse_by_parseval() -> None:
    x, y = smooth_images(3, 3), noisy(smooth_images(3, 3), 0.1)
    mse = F.mse_loss(y, x).item()
    assert FFTLoss()(y, x).item() == pytest.approx(32 * 32 * mse, rel=1e-5)
    assert FFTLoss(norm="ortho")(y, x).item() == pytest.approx(mse, rel=1e-5)
    per_image = FFTLoss(reduction="none")(y, x)
    assert per_image.shape == (3,)
    torch.testing.assert_close(per_image, 1024 * (y - x).square().mean(dim=(1, 2, 3)), rtol=1e-5, atol=0)
    # the one-sided variant counts the conjugate half once: not a rescaled MSE, but zero on identical inputs
    assert FFTLoss(onesided=True)(x, x).item() == 0
    assert FFTLoss(onesided=True)(y, x).item() != pytest.approx(1024 * mse, rel=1e-3)
    with pytest.raises(ValueError, match="reduction"):
        FFTLoss(reduction="max")  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------------- AI loss
def _durall_profile_numpy(gray: np.ndarray) -> np.ndarray:
    """Durall et al.'s per-image pipeline (reference-facts §2) in NumPy, for one gray image."""
    f = np.fft.fftshift(np.fft.fft2(gray)) + 1e-8
    mag = 20 * np.log(np.abs(f))
    y, x = np.indices(mag.shape)
    cx, cy = (x.max() - x.min()) / 2.0, (y.max() - y.min()) / 2.0
    r = np.hypot(x - cx, y - cy)
    order = np.argsort(r.flat, kind="stable")
    r_int = r.flat[order].astype(int)
    csim = np.cumsum(mag.flat[order], dtype=float)
    rind = np.where(r_int[1:] - r_int[:-1])[0]
    prof = (csim[rind[1:]] - csim[rind[:-1]]) / (rind[1:] - rind[:-1])
    return (prof - prof.min()) / (prof.max() - prof.min())


def test_ai_profile_matches_durall_pipeline() -> None:
    x = smooth_images(3, 1).double()
    ours = normalized_profile(x).numpy()
    ref = np.stack([_durall_profile_numpy(img[0]) for img in x.numpy()])
    assert ours.shape == (3, 20)
    np.testing.assert_allclose(ours, ref, atol=1e-6)


def test_ai_loss_value_and_minimum() -> None:
    x = smooth_images(4, 3)
    y = blur(x, 1.0)
    pp, pt = normalized_profile(y).clamp(1e-6, 1 - 1e-6), normalized_profile(x).clamp(1e-6, 1 - 1e-6)
    # reference: torch's own BCE with the target profile as the target ("paper" order)
    assert azimuthal_loss(y, x).item() == pytest.approx(F.binary_cross_entropy(pp, pt).item(), rel=1e-5)
    assert azimuthal_loss(y, x, order="durall").item() == pytest.approx(F.binary_cross_entropy(pt, pp).item(), rel=1e-5)
    # at identical inputs the value is the entropy of the target profile, a minimum below any distortion
    entropy = F.binary_cross_entropy(pt, pt).item()
    assert azimuthal_loss(x, x).item() == pytest.approx(entropy, rel=1e-5)
    assert azimuthal_loss(y, x).item() > entropy
    assert azimuthal_loss(noisy(x, 0.2), x).item() > entropy


@pytest.mark.parametrize("order", ["paper", "durall"])
def test_ai_loss_is_differentiable(order: str) -> None:
    x = smooth_images(2, 3)
    pred = blur(x, 1.0).requires_grad_(True)
    AzimuthalLoss(order=order)(pred, x).backward()  # type: ignore[arg-type]
    assert torch.isfinite(pred.grad).all() and pred.grad.abs().sum() > 0


def test_ai_loss_gradcheck_float64() -> None:
    x = smooth_images(1, 1, size=16).double()
    pred = blur(x, 0.8).clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda p: azimuthal_loss(p, x), (pred,), fast_mode=True)


@pytest.mark.parametrize("order", ["paper", "durall"])
def test_ai_loss_values_unchanged_by_the_flat_profile_fix(order: str) -> None:
    """range_eps only matters at (nearly) flat profiles: on ordinary images, blurred, noisy and square ones (exact
    spectral zeros), the loss equals torch's BCE on Durall's plain min-max profiles (range_eps=0) to 1e-7."""
    x = smooth_images(3, 3).double()
    sq = torch.zeros(3, 3, 32, 32, dtype=torch.float64)
    sq[:, :, 8:16, 10:18] = torch.tensor([0.2, 0.5, 0.9], dtype=torch.float64).view(1, 3, 1, 1)
    for pred, target in [(blur(x, 1.0), x), (noisy(x, 0.1), x), (x, x), (blur(sq, 1.0), sq), (noisy(sq, 0.05), sq)]:
        ours = azimuthal_loss(pred, target, order=order).item()  # type: ignore[arg-type]
        pp = normalized_profile(pred, range_eps=0.0).clamp(1e-6, 1 - 1e-6)
        pt = normalized_profile(target, range_eps=0.0).clamp(1e-6, 1 - 1e-6)
        ref = F.binary_cross_entropy(pp, pt) if order == "paper" else F.binary_cross_entropy(pt, pp)
        assert ours == pytest.approx(ref.item(), rel=1e-7)


@pytest.mark.parametrize("order", ["paper", "durall"])
def test_ai_loss_gradient_at_a_flat_profile(order: str) -> None:
    """A single-pixel impulse has |F| = const, so its ring profile is flat. Durall's min-max maps it to 0, the clamp
    cuts the gradient and the loss cannot move the prediction (range_eps=0 below); with range_eps the profile
    is 0.5 and the gradient is finite and non-zero, and a small step along it lowers the loss."""
    target = smooth_images(2, 1).double()
    pred = torch.zeros(2, 1, 32, 32, dtype=torch.float64)
    pred[:, :, 0, 0] = 1 - 1e-8  # DFT exactly 1 - 1e-8 everywhere, so 20 ln(|F| + 1e-8) is exactly 0: flat
    assert torch.all(radial_profile(pred, units="durall") == 0)
    torch.testing.assert_close(normalized_profile(pred), torch.full((2, 20), 0.5, dtype=torch.float64))
    # an impulse of 0.5 is flat up to FFT round-off (1e-14): plain min-max blows that up to [0, 1], ours stays 0.5
    half = torch.zeros(1, 1, 32, 32, dtype=torch.float64)
    half[..., 16, 16] = 0.5
    assert normalized_profile(half, range_eps=0.0).std() > 0.1
    torch.testing.assert_close(normalized_profile(half), torch.full((1, 20), 0.5, dtype=torch.float64),
                               rtol=0, atol=1e-5)
    pred.requires_grad_(True)
    azimuthal_loss(pred, target, order=order).backward()  # type: ignore[arg-type]
    g = pred.grad
    assert g is not None and torch.isfinite(g).all() and g.abs().max() > 0
    with torch.no_grad():
        before = azimuthal_loss(pred, target, order=order).item()  # type: ignore[arg-type]
        step = 1e-3 * g / g.abs().max()
        after = azimuthal_loss(pred - step, target, order=order).item()  # type: ignore[arg-type]
    assert after < before
    # Durall's plain min-max (range_eps = 0): the profile is 0 and the gradient exactly zero
    pred0 = pred.detach().clone().requires_grad_(True)
    pp = normalized_profile(pred0, range_eps=0.0)
    assert torch.all(pp == 0)
    pt = normalized_profile(target, range_eps=0.0)
    from specvae.losses.azimuthal import _bce

    loss0 = (_bce(pp, pt, 1e-6) if order == "paper" else _bce(pt, pp, 1e-6)).mean()
    loss0.backward()
    assert pred0.grad is not None and torch.all(pred0.grad == 0)


def test_ai_loss_errors() -> None:
    with pytest.raises(ValueError, match="1 or 3 channels"):
        AzimuthalLoss()(torch.rand(1, 2, 32, 32), torch.rand(1, 2, 32, 32))
    with pytest.raises(ValueError, match="order"):
        AzimuthalLoss(order="reverse")  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------- focal frequency loss
FFL_CONFIGS = [
    {},
    {"alpha": 0.5, "patch_factor": 2},
    {"ave_spectrum": True, "log_matrix": True},
    {"batch_matrix": True, "loss_weight": 3.0},
    {"alpha": 2.0, "patch_factor": 4, "log_matrix": True, "batch_matrix": True},
]


@pytest.mark.parametrize("kwargs", FFL_CONFIGS)
def test_ffl_matches_official_package(kwargs: dict) -> None:
    # test-only reference: the official package (dev extra, focal-frequency-loss==0.3.0)
    from focal_frequency_loss import FocalFrequencyLoss as Official

    x, y = smooth_images(3, 3), noisy(smooth_images(3, 3), 0.1)
    p1, p2 = y.clone().requires_grad_(True), y.clone().requires_grad_(True)
    ours, ref = FocalFrequencyLoss(**kwargs)(p1, x), Official(**kwargs)(p2, x)
    assert ours.item() == pytest.approx(ref.item(), rel=1e-5)
    ours.backward()
    ref.backward()
    torch.testing.assert_close(p1.grad, p2.grad, rtol=1e-4, atol=1e-9)


def test_ffl_alpha0_is_mse() -> None:
    x, y = smooth_images(3, 3), noisy(smooth_images(3, 3), 0.1)
    assert FocalFrequencyLoss(alpha=0.0)(y, x).item() == pytest.approx(F.mse_loss(y, x).item(), rel=1e-5)


def test_ffl_weights_are_detached() -> None:
    x, y = smooth_images(2, 3), noisy(smooth_images(2, 3), 0.1)
    # the loss with its own weights equals the loss with those weights passed in as a constant matrix,
    # value and gradient: no gradient flows through W
    fx, fy = torch.fft.fft2(x, norm="ortho")[:, None], torch.fft.fft2(y, norm="ortho")[:, None]
    d = (fy - fx).abs().square()
    w = focal_weights(d)
    assert not w.requires_grad and float(w.max()) == 1.0 and float(w.min()) >= 0.0
    p1, p2 = y.clone().requires_grad_(True), y.clone().requires_grad_(True)
    l1 = focal_frequency_loss(p1, x)
    l2 = focal_frequency_loss(p2, x, matrix=w)
    assert l1.item() == pytest.approx(l2.item(), rel=1e-6)
    l1.backward()
    l2.backward()
    torch.testing.assert_close(p1.grad, p2.grad)


def test_ffl_errors_and_zero() -> None:
    x = smooth_images(2, 3)
    assert FocalFrequencyLoss()(x, x).item() == 0.0  # W = 0/0 -> NaN -> 0
    with pytest.raises(ValueError, match="patch_factor"):
        FocalFrequencyLoss(patch_factor=3)(x, x)
    with pytest.raises(ValueError, match="patch_factor"):
        FocalFrequencyLoss(patch_factor=0)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        focal_frequency_loss(x, x, matrix=torch.full((1,), 2.0))


# ------------------------------------------------------------------------------------------- Watson-DFT loss
def test_block_rfft2_layout() -> None:
    x = torch.rand(2, 1, 16, 24, dtype=torch.float64)
    c = block_rfft2(x)
    assert c.shape == (2, 6, 8, 5)
    xn = x.numpy()
    for k, (i, j) in enumerate((i, j) for i in range(2) for j in range(3)):  # row-major blocks, like nn.Unfold
        ref = np.fft.rfft2(xn[:, 0, 8 * i : 8 * i + 8, 8 * j : 8 * j + 8]) / 64
        np.testing.assert_allclose(c[:, k].numpy(), ref, atol=1e-12)
    # DC of each block is its mean (unnormalised DFT / 64)
    torch.testing.assert_close(c[:, 0, 0, 0].real, x[:, 0, :8, :8].mean(dim=(-2, -1)))


def test_watson_size_and_channel_errors() -> None:
    with pytest.raises(ValueError, match="divisible by 8"):
        WatsonDFTLoss("gray")(torch.rand(1, 1, 30, 32), torch.rand(1, 1, 30, 32))
    with pytest.raises(ValueError, match="color='rgb'"):
        WatsonDFTLoss("gray")(torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32))
    with pytest.raises(ValueError, match="expects 3 channel"):
        WatsonDFTLoss("rgb")(torch.rand(1, 1, 32, 32), torch.rand(1, 1, 32, 32))
    with pytest.raises(ValueError, match="color"):
        WatsonDFTLoss("ycbcr")  # type: ignore[arg-type]


def test_watson_initial_parameters() -> None:
    m = WatsonDFT()
    torch.testing.assert_close(m.t, torch.ones(8, 5))
    assert m.w.item() == pytest.approx(0.2) and m.alpha.item() == pytest.approx(0.1) and m.beta.item() == 1.0
    wp = m.w_phase
    assert wp[0, 0] == 0 and wp[0, 4] == 0 and wp[4, 0] == 0 and wp[4, 4] == 0
    assert wp[1, 1].item() == pytest.approx(math.exp(-2))
    assert not any(p.requires_grad for p in m.parameters())
    assert all(p.requires_grad for p in WatsonDFT(trainable=True).parameters())


def test_watson_missing_weights_error(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("SPECVAE_WEIGHTS", str(tmp_path / "nowhere"))
    monkeypatch.setenv("SPECVAE_CACHE", str(tmp_path / "cache"))
    with pytest.raises(FileNotFoundError, match="Searched: .*nowhere"):
        WatsonDFTLoss.pretrained("gray")


@pytest.mark.weights("watson-gray", "watson-rgb")
def test_watson_pretrained_parameters() -> None:
    gray = WatsonDFTLoss.pretrained("gray")
    assert gray.watson.alpha.item() == pytest.approx(-0.1352, abs=1e-4)
    assert gray.watson.w.item() == pytest.approx(0.206, abs=1e-3)
    assert gray.watson.beta.item() == pytest.approx(0.6145, abs=1e-4)
    rgb = WatsonDFTLoss.pretrained("rgb", path=watson_weights_path("rgb").parent)
    torch.testing.assert_close(rgb.channel_weights, torch.tensor([0.351, 0.301, 0.348]), atol=1e-3, rtol=0)
    for mod, alpha, w, beta in ((rgb.ly, 0.171, 0.263, 0.612), (rgb.lcb, -0.867, 0.046, 0.592),
                                (rgb.lcr, 1.513, 0.047, 0.586)):
        assert mod.alpha.item() == pytest.approx(alpha, abs=1e-3)
        assert mod.w.item() == pytest.approx(w, abs=1e-3)
        assert mod.beta.item() == pytest.approx(beta, abs=1e-3)
    torch.testing.assert_close(rgb.ycbcr_transform[:, 0], torch.tensor([0.299, 0.587, 0.114]))


@pytest.mark.weights("watson-gray", "watson-rgb")
@pytest.mark.parametrize("color,c", [("gray", 1), ("rgb", 3)])
def test_watson_pretrained_grows_with_distortion(color: str, c: int) -> None:
    loss = WatsonDFTLoss.pretrained(color)
    x = smooth_images(4, c)
    base = loss(noisy(x, 0.02), x).item()
    assert loss(x, x).item() < 1e-3 * base  # (near) zero on identical images: only the EPS terms remain
    noise = [loss(noisy(x, s), x).item() for s in (0.02, 0.05, 0.1, 0.2)]
    blurs = [loss(blur(x, s), x).item() for s in (0.5, 1.0, 2.0)]
    assert noise == sorted(noise) and blurs == sorted(blurs), (noise, blurs)
    # reductions
    per = WatsonDFTLoss.pretrained(color, reduction="none")(blur(x, 1.0), x)
    assert per.shape == (4,) and per.sum().item() == pytest.approx(blurs[1], rel=1e-5)


@pytest.mark.weights("watson-rgb")
def test_watson_random_shift_wrapper() -> None:
    x = smooth_images(2, 3)
    y = blur(x, 1.0)
    det = WatsonDFTLoss.pretrained("rgb")
    rnd = WatsonDFTLoss.pretrained("rgb", deterministic=False)
    torch.manual_seed(0)
    vals = torch.stack([rnd(y, x) for _ in range(8)])
    assert torch.isfinite(vals).all() and vals.std() > 0  # the block grid moves
    assert vals.mean().item() == pytest.approx(det(y, x).item(), rel=0.5)
    assert rnd(x, x).item() < 1e-3 * det(y, x).item()


def test_watson_gradcheck_float64() -> None:
    loss = WatsonDFTLoss("gray").double()
    x = smooth_images(2, 1, size=16).double()
    pred = blur(x, 1.0).clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda p: loss(p, x), (pred,), fast_mode=True)


def _watson_numpy(inp: np.ndarray, tgt: np.ndarray, t_tild, alpha, w_tild, beta, w_phase_tild) -> np.ndarray:
    """Czolbe et al.'s Watson-DFT distance per sample, from the formulas of reference-facts §3, in NumPy
    (an independent second implementation: loops over blocks, numpy's rfft2, explicit real/imag pairs)."""
    eps = 1e-10
    n, _, h, w = inp.shape

    def coeffs(x):
        out = []
        for b in range(n):
            blocks = [np.fft.rfft2(x[b, 0, i : i + 8, j : j + 8]) / 64 for i in range(0, h, 8) for j in range(0, w, 8)]
            out.append(np.stack(blocks))
        return np.stack(out)  # (N, K, 8, 5) complex

    c0, c1 = coeffs(tgt), coeffs(inp)
    amp = lambda c: np.sqrt((c.real + eps) ** 2 + (c.imag + eps) ** 2)  # noqa: E731
    a0, a1 = amp(c0), amp(c1)
    t = np.exp(t_tild)
    wc = 1 / (1 + np.exp(-w_tild))
    avg = a0[:, :, 0, 0].mean()
    t_l = t[None, None] * (((a0[:, :, 0, 0] + eps) / (avg + eps)) ** alpha)[:, :, None, None]
    b2 = (np.abs(a0) + eps) ** wc * t_l ** (1 - wc)
    m = np.maximum(t_l, b2)
    e1, e2 = np.exp(t_l - m), np.exp(b2 - m)
    s = (t_l * e1 + b2 * e2) / (e1 + e2)
    d_w = ((np.abs(a0 - a1) / s + eps) ** beta + eps).sum(axis=(1, 2, 3)) ** (1 / beta)
    wp = np.exp(w_phase_tild)
    for i, j in ((0, 0), (0, 4), (4, 0), (4, 4)):
        wp[i, j] = 0
    ph = lambda c: np.arctan2(c.imag, c.real + eps)  # noqa: E731
    d_p = (np.arccos(np.cos(ph(c0) - ph(c1)) * (1 - 1e-7)) * wp).sum(axis=(1, 2, 3))
    return d_w + d_p


@pytest.mark.weights("watson-gray")
def test_watson_gray_matches_numpy_reference() -> None:
    loss = WatsonDFTLoss.pretrained("gray", reduction="none").double()
    x = smooth_images(3, 1, size=24).double()
    y = noisy(blur(x, 0.8), 0.03).double()
    m = loss.watson
    ref = _watson_numpy(
        y.numpy(), x.numpy(), m.t_tild.detach().double().numpy(), m.alpha.item(), m.w_tild.item(), m.beta.item(),
        m.w_phase_tild.detach().double().numpy().copy(),
    )
    np.testing.assert_allclose(loss(y, x).numpy(), ref, rtol=1e-9)


@pytest.mark.weights("watson-rgb")
def test_watson_rgb_is_weighted_sum_over_ycbcr() -> None:
    rgb = WatsonDFTLoss.pretrained("rgb", reduction="none")
    x = smooth_images(2, 3)
    y = blur(x, 1.0)
    m = torch.tensor([[0.299, -0.1687, 0.5], [0.587, -0.3313, -0.4187], [0.114, 0.5, -0.0813]])
    to_ycc = lambda im: torch.einsum("nihw,ij->njhw", im, m) + torch.tensor([0, 0.5, 0.5]).view(1, 3, 1, 1)  # noqa
    yx, yy = to_ycc(x), to_ycc(y)
    w = torch.softmax(torch.tensor([0.0385, -0.1147, 0.0300]), 0)
    expected = sum(w[k] * mod(yy[:, k : k + 1], yx[:, k : k + 1]) for k, mod in enumerate((rgb.ly, rgb.lcb, rgb.lcr)))
    torch.testing.assert_close(rgb(y, x), expected, rtol=5e-5, atol=0)  # measured 4e-6 (w_tild rounded to 1e-4)


# ------------------------------------------------------------------------------------ FA-VAE SL / DSL
def ref_blur(x: torch.Tensor, mu: int, sigma: float) -> torch.Tensor:
    """The reference blur: torchvision's GaussianBlur (FA-VAE's SL uses it; same kernel, reflect padding μ//2)."""
    return gaussian_blur(x, [mu, mu], [sigma, sigma])


def test_gaussian_kernel_matches_reference_definition() -> None:
    # g(x) = exp(-x²/(2σ²)) on taps -(μ-1)/2 … (μ-1)/2, normalised, outer product (FA-VAE / torchvision)
    for mu, sigma in ((3, 3.0), (5, 1.0), (9, 3.0), (15, 0.7)):
        x = np.arange(mu) - (mu - 1) / 2
        g = np.exp(-(x**2) / (2 * sigma**2))
        g /= g.sum()
        np.testing.assert_allclose(gaussian_kernel2d(mu, torch.tensor(sigma, dtype=torch.float64)).numpy(),
                                   np.outer(g, g), rtol=1e-12)
    k = gaussian_kernel2d(5, torch.tensor(1.0))
    assert k[2, 3].item() / k[2, 2].item() == pytest.approx(math.exp(-0.5))
    # σ -> 0 is the identity (a delta), not NaN as 0/0 would give
    assert torch.equal(gaussian_kernel2d(3, torch.tensor(0.0)), torch.tensor([[0.0, 0, 0], [0, 1, 0], [0, 0, 0]]))
    with pytest.raises(ValueError, match="odd"):
        gaussian_kernel2d(4, torch.tensor(1.0))


@pytest.mark.parametrize("mu,sigma,size", [(5, 3.0, 8), (9, 3.0, 16), (3, 1.5, 4), (7, 2.0, 4)])
def test_blur_is_reflect_padded_like_the_reference(mu: int, sigma: float, size: int) -> None:
    x = torch.rand(2, 3, size, size, generator=torch.Generator().manual_seed(mu)) + 0.5
    torch.testing.assert_close(gaussian_blur_ours(x, mu, sigma), ref_blur(x, mu, sigma), rtol=1e-5, atol=1e-6)


def gaussian_blur_ours(x, mu, sigma):
    from specvae.losses.spectrum import gaussian_blur as blur_ours

    return blur_ours(x, mu, torch.tensor(sigma))


def test_spectrum_loss_is_ffl_of_reflect_blurred_maps() -> None:
    # positive 8×8 features, μ = 5 (issue 13: zero padding changed SL by 2.4× here)
    g = torch.Generator().manual_seed(0)
    a, c = torch.rand(2, 4, 8, 8, generator=g) + 0.5, torch.rand(2, 4, 8, 8, generator=g) + 0.5
    want = FocalFrequencyLoss()(ref_blur(c, 5, 3.0), ref_blur(a, 5, 3.0)).item()
    assert SpectrumLoss(5, 3.0)(a, c).item() == pytest.approx(want, rel=1e-5)
    zero = SpectrumLoss(5, 3.0, padding="zeros")(a, c).item()
    assert abs(zero / want - 1) > 0.5  # the padding matters this much on such maps
    # a vanishing σ makes the Gaussian a delta: SL reduces to FFL of the maps themselves
    assert SpectrumLoss(sigma=1e-3)(a, c).item() == pytest.approx(FocalFrequencyLoss()(c, a).item(), rel=1e-5)
    assert not SpectrumLoss().sigmas.theta.requires_grad


def test_reflect_padding_refuses_too_large_kernels() -> None:
    a = torch.rand(1, 2, 4, 4)
    with pytest.raises(ValueError, match=r"kernel size 9 .*4x4.*kernel_size <= 7"):
        SpectrumLoss(9)(a, a)
    SpectrumLoss(7)(a, a)  # μ//2 = 3 < 4 is fine


def test_dynamic_spectrum_loss_defaults_to_one_shared_sigma() -> None:
    # the paper's chosen setting: μ = 3, σ₀ = 3, one σ shared by (A_i, C_i) ("pair-wise", Table 2 rows 10-14)
    dsl = DynamicSpectrumLoss()
    assert dsl.kernel_size == 3 and dsl.shared_sigma and dsl.sigma.tolist() == pytest.approx([3.0])
    g = torch.Generator().manual_seed(1)
    a, c = torch.randn(2, 4, 16, 16, generator=g), torch.randn(2, 4, 16, 16, generator=g)
    # one σ for both: equals SL with the σ applied to both maps
    want = FocalFrequencyLoss()(ref_blur(c, 3, 3.0), ref_blur(a, 3, 3.0)).item()
    assert dsl(a, c).item() == pytest.approx(want, rel=1e-5)
    # rows 7-9 (non-pair-wise): two σ, A's and C's
    two = DynamicSpectrumLoss(shared_sigma=False, sigma=2.0)
    assert two.sigma.shape == (2,)
    with torch.no_grad():
        two.sigmas.theta.copy_(torch.tensor([1.0, 2.0]))
    want2 = FocalFrequencyLoss()(ref_blur(c, 3, 2.0), ref_blur(a, 3, 1.0)).item()
    assert two(a, c).item() == pytest.approx(want2, rel=1e-5)


def test_dsl_sigma_gets_a_gradient_and_sl_sigma_does_not() -> None:
    g = torch.Generator().manual_seed(2)
    a, c = torch.randn(2, 4, 16, 16, generator=g), torch.randn(2, 4, 16, 16, generator=g)
    dsl = DynamicSpectrumLoss(kernel_size=5)
    dsl(a, c).backward()
    grad = dsl.sigmas.theta.grad
    assert grad is not None and torch.isfinite(grad).all() and (grad != 0).all()
    # with α = 0 (no detached focal weights) the gradient is the derivative of the loss in σ (central difference)
    a64, c64 = a.double(), c.double()
    flat = DynamicSpectrumLoss(kernel_size=5, alpha=0.0)
    flat.double()
    flat(a64, c64).backward()
    eps = 1e-5

    def at(sigma: float) -> float:
        m = DynamicSpectrumLoss(kernel_size=5, alpha=0.0).double()
        with torch.no_grad():
            m.sigmas.theta.fill_(sigma)
        return m(a64, c64).item()

    assert flat.sigmas.theta.grad.item() == pytest.approx((at(3.0 + eps) - at(3.0 - eps)) / (2 * eps), rel=1e-6)
    sl = SpectrumLoss(5)
    c_req = c.clone().requires_grad_(True)
    sl(a, c_req).backward()
    assert sl.sigmas.theta.grad is None and c_req.grad is not None
    assert not any(p.requires_grad for p in sl.parameters())
    assert dsl(a, a).item() == 0.0


def test_sigma_storage_and_what_a_learning_rate_means() -> None:
    # one Adam step moves a parameter by lr (first step: m/sqrt(v) = ±1). Raw σ (the official code's storage)
    # therefore moves σ by lr; log σ moves σ by σ·(e^lr − 1) ≈ 3·lr at σ = 3; sigma_lr_scale rescales either.
    g = torch.Generator().manual_seed(3)
    a, c = torch.randn(2, 4, 16, 16, generator=g), torch.randn(2, 4, 16, 16, generator=g)
    lr = 1e-2
    moved = {}
    for name, kw in {"raw": {}, "log": {"sigma_param": "log"}, "scaled": {"sigma_lr_scale": 0.1}}.items():
        dsl = DynamicSpectrumLoss(**kw)
        opt = torch.optim.Adam(dsl.parameters(), lr=lr)
        dsl(a, c).backward()
        opt.step()
        moved[name] = abs(dsl.sigma.item() - 3.0)
    assert moved["raw"] == pytest.approx(lr, rel=1e-4)
    assert moved["log"] == pytest.approx(3.0 * math.expm1(lr), rel=1e-3)
    assert moved["scaled"] == pytest.approx(0.1 * lr, rel=1e-3)


def test_feature_spectrum_loss_weights_the_mean_over_pairs() -> None:
    from specvae.losses.spectrum import FeatureSpectrumLoss

    g = torch.Generator().manual_seed(4)
    shapes = [(2, 4, 16, 16), (2, 8, 8, 8), (2, 8, 8, 8), (2, 4, 8, 8)]
    a = [torch.randn(s, generator=g) for s in shapes]
    c = [torch.randn(s, generator=g) for s in shapes]
    fsl = FeatureSpectrumLoss(4, kernel_size=3, sigma=3.0)  # FA-VAE: 0.01 on the mean = 0.0025 per pair
    per = [FocalFrequencyLoss()(ref_blur(ci, 3, 3.0), ref_blur(ai, 3, 3.0)).item() for ai, ci in zip(a, c)]
    loss, per_pair = fsl(a, c)
    assert per_pair.tolist() == pytest.approx(per, rel=1e-5)
    assert loss.item() == pytest.approx(0.0025 * sum(per), rel=1e-5)
    # row 5 ("SL w/o kernel"): FFL of the pairs, no σ at all
    plain = FeatureSpectrumLoss(4, kernel_size=None)
    assert plain.sigma is None and not list(plain.parameters())
    want = 0.01 * np.mean([FocalFrequencyLoss()(ci, ai).item() for ai, ci in zip(a, c)])
    assert plain(a, c)[0].item() == pytest.approx(want, rel=1e-5)
    with pytest.raises(ValueError, match="expects 4"):
        fsl(a[:3], c[:3])


def test_feature_spectrum_loss_sigma_layouts() -> None:
    from specvae.losses.spectrum import FeatureSpectrumLoss

    g = torch.Generator().manual_seed(5)
    a = [torch.randn(1, 2, 8, 8, generator=g) for _ in range(4)]
    c = [torch.randn(1, 2, 8, 8, generator=g) for _ in range(4)]

    def ffl_pair(k, sa, sc):
        return FocalFrequencyLoss()(ref_blur(c[k], 3, sc), ref_blur(a[k], 3, sa)).item()

    def with_sigmas(layout, values):
        m = FeatureSpectrumLoss(4, 3, sigma_layout=layout, loss_weight=1.0)
        with torch.no_grad():
            m.sigmas.theta.copy_(torch.tensor(values))
        return m(a, c)[1].tolist()

    s = [1.0, 2.0, 3.0, 4.0]
    assert with_sigmas("shared", s) == pytest.approx([ffl_pair(k, s[k], s[k]) for k in range(4)], rel=1e-5)
    # the official code: pair k blurs A_k with σ_k and C_k (= decoder list entry 3−k) with σ_{3−k}
    assert with_sigmas("official", s) == pytest.approx([ffl_pair(k, s[k], s[3 - k]) for k in range(4)], rel=1e-5)
    s8 = [1.0, 2.0, 3.0, 4.0, 0.5, 1.5, 2.5, 3.5]
    assert with_sigmas("separate", s8) == pytest.approx([ffl_pair(k, s8[k], s8[4 + k]) for k in range(4)], rel=1e-5)
    with pytest.raises(ValueError, match="sigma_layout"):
        FeatureSpectrumLoss(4, 3, sigma_layout="pairwise")

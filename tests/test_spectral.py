"""Tests for specvae.spectral: analytic cases, a reference re-implementation of Durall's ring average, gradients."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from specvae import spectral as S


def _astrobetter_profile(image: np.ndarray) -> np.ndarray:
    """Durall et al.'s ``azimuthalAverage`` written from its description (reference-facts §2), in NumPy:
    centre ((W-1)/2, (H-1)/2), int radii, sorted, bin means by cumsum differences at the radius changes."""
    y, x = np.indices(image.shape)
    cx, cy = (x.max() - x.min()) / 2.0, (y.max() - y.min()) / 2.0
    r = np.hypot(x - cx, y - cy)
    order = np.argsort(r.flat, kind="stable")
    r_int = r.flat[order].astype(int)
    vals = image.flat[order]
    rind = np.where(r_int[1:] - r_int[:-1])[0]
    nr = rind[1:] - rind[:-1]
    csim = np.cumsum(vals, dtype=float)
    return (csim[rind[1:]] - csim[rind[:-1]]) / nr


@pytest.mark.parametrize("size,expected", [(32, 20), (64, 43), (128, 88), (256, 179)])
def test_durall_bin_counts(size: int, expected: int) -> None:
    assert S.azimuthal_average(torch.zeros(size, size)).shape == (expected,)
    assert S.frequency_axis(size, size).shape == (expected,)


@pytest.mark.parametrize("shape", [(32, 32), (33, 33), (24, 40)])
def test_azimuthal_average_matches_astrobetter_recipe(shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(0)
    m = rng.normal(size=shape)
    ref = _astrobetter_profile(m)
    ours = S.azimuthal_average(torch.from_numpy(m)).numpy()
    np.testing.assert_allclose(ours, ref, rtol=1e-10, atol=1e-12)


def test_radius_map_centres() -> None:
    r = S.radius_map(8, 8, center="dc")
    assert r[4, 4] == 0 and r[4, 7] == 3 and r[0, 0] == int(math.hypot(4, 4))
    rd = S.radius_map(8, 8, center="durall")  # centre (3.5, 3.5): the four middle pixels are ring 0
    assert (rd[3:5, 3:5] == 0).all() and rd[4, 6] == int(math.hypot(0.5, 2.5))
    with pytest.raises(ValueError, match="center"):
        S.radius_map(8, 8, center="middle")  # type: ignore[arg-type]


def test_to_gray_bt601() -> None:
    x = torch.rand(2, 3, 5, 7)
    expected = 0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]
    torch.testing.assert_close(S.to_gray(x)[:, 0], expected)
    g = torch.rand(2, 1, 5, 7)
    torch.testing.assert_close(S.to_gray(g), g)
    # scikit-image's rgb2gray uses BT.709 weights, not BT.601: the two must differ on a saturated colour.
    from skimage.color import rgb2gray

    red = np.zeros((1, 1, 3))
    red[..., 0] = 1.0
    assert rgb2gray(red)[0, 0] == pytest.approx(0.2125)
    assert S.to_gray(torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1)).item() == pytest.approx(0.299)
    with pytest.raises(ValueError, match="1 or 3 channels"):
        S.to_gray(torch.rand(1, 2, 4, 4))


@pytest.mark.parametrize("h,w", [(8, 8), (7, 9)])
def test_fft2c_dc_at_centre(h: int, w: int) -> None:
    x = torch.full((1, 1, h, w), 0.25)
    f = S.fft2c(x)
    assert f[0, 0, h // 2, w // 2].real.item() == pytest.approx(0.25 * h * w)
    f[0, 0, h // 2, w // 2] = 0
    assert f.abs().max().item() < 1e-5


def test_parseval() -> None:
    x = torch.rand(3, 2, 16, 12, dtype=torch.float64)
    hw = 16 * 12
    torch.testing.assert_close(S.power_spectrum(x).sum(dim=(-2, -1)), hw * x.square().sum(dim=(-2, -1)))
    torch.testing.assert_close(S.power_spectrum(x, norm="ortho").sum(dim=(-2, -1)), x.square().sum(dim=(-2, -1)))


@pytest.mark.parametrize("k", [3, 6, 10])
def test_sinusoid_profile_peaks_at_its_frequency(k: int) -> None:
    n = 32
    j = torch.arange(n, dtype=torch.float32)
    img = (0.5 + 0.4 * torch.cos(2 * math.pi * k * j / n)).expand(n, n)[None, None]
    prof = S.radial_profile(img, log=False, center="dc", bins="all")[0]
    freqs = S.frequency_axis(n, n, center="dc", bins="all")
    peak = int(prof[1:].argmax()) + 1  # skip DC
    assert peak == k
    assert freqs[peak].item() == pytest.approx(k / n, abs=0.5 / n)
    # Durall's half-pixel-offset centre splits the two peaks over neighbouring rings: within one ring.
    prof_d = S.radial_profile(img, log=False)[0]
    freqs_d = S.frequency_axis(n, n)
    assert abs(freqs_d[int(prof_d.argmax())].item() - k / n) <= 1.0 / n


def test_white_noise_profile_is_flat() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(256, 1, 32, 32, generator=g) * 0.1
    prof = S.radial_profile(x, log=False).mean(dim=0)  # E|F|^2 = H*W*sigma^2 at every frequency
    expected = 32 * 32 * 0.01
    assert torch.all((prof / expected - 1).abs() < 0.15), prof / expected


def test_frequency_axis_monotone_and_linear() -> None:
    f = S.frequency_axis(64, 64, center="dc", bins="all")
    assert torch.all(f[1:] > f[:-1])
    r = torch.arange(1, f.numel(), dtype=torch.float32)  # ring r holds radii [r, r+1): centre (r + 1/2)/N
    assert torch.all((f[1:] - (r + 0.5) / 64).abs() <= 0.5 / 64)
    f2 = S.frequency_axis(32, 48)  # non-square: still increasing, within (0, sqrt(0.5))
    assert torch.all(f2[1:] > f2[:-1]) and f2.min() > 0 and f2.max() < math.sqrt(0.5)


def test_band_energies_and_errors_parseval() -> None:
    x = torch.rand(4, 3, 16, 16, dtype=torch.float64)
    y = torch.rand(4, 3, 16, 16, dtype=torch.float64)
    e = S.band_energies(x)
    assert set(e) == {"low", "mid", "high"}
    torch.testing.assert_close(sum(e.values()), x.square().mean(dim=(1, 2, 3)))
    rel = S.band_energies(x, relative=True)
    torch.testing.assert_close(sum(rel.values()), torch.ones(4, dtype=torch.float64))
    err = S.band_errors(x, y)
    torch.testing.assert_close(sum(err.values()), (x - y).square().mean(dim=(1, 2, 3)))
    # a constant offset lives only at DC, i.e. the low band
    err_dc = S.band_errors(x, x + 0.1)
    assert err_dc["low"].allclose(torch.full((4,), 0.01, dtype=torch.float64))
    assert err_dc["high"].abs().max() < 1e-12
    with pytest.raises(ValueError, match="increasing"):
        S.band_energies(x, edges=(0.2, 0.1))


def test_rmse_properties() -> None:
    g = torch.Generator().manual_seed(1)
    x = torch.rand(5, 3, 16, 16, generator=g)
    y = (x + 0.05 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    for fn in (S.rmse_ai, S.rmse_ft, S.rmse_spatial):
        assert fn(x, y).shape == (5,)
        assert torch.all(fn(x, x) == 0)
        torch.testing.assert_close(fn(x, y), fn(y, x))
        assert torch.all(fn(x, y) > 0)
    ref = torch.stack([torch.sqrt(F.mse_loss(a, b)) for a, b in zip(x, y)])
    torch.testing.assert_close(S.rmse_spatial(x, y), ref)
    # Parseval bound behind the rmse_ft choice: RMSE of |F| (unitary FFT) <= pixel RMSE.
    assert torch.all(S.rmse_ft(x, y, log=False, norm="ortho") <= S.rmse_spatial(x, y) + 1e-6)
    # the min-max normalised AI variant is bounded by 1
    assert torch.all(S.rmse_ai(x, y, normalize=True) <= 1)
    torch.testing.assert_close(S.pixel_squared_errors(x, y).mean(), F.mse_loss(x, y))


def test_rmse_grows_with_blur() -> None:
    from torchvision.transforms.functional import gaussian_blur

    g = torch.Generator().manual_seed(2)
    x = torch.rand(4, 1, 32, 32, generator=g)
    weak, strong = gaussian_blur(x, [7, 7], [0.6, 0.6]), gaussian_blur(x, [7, 7], [1.5, 1.5])
    for fn in (S.rmse_ai, S.rmse_ft, S.rmse_spatial):
        assert torch.all(fn(x, strong) > fn(x, weak))


def test_errors_are_clear() -> None:
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        S.radial_profile(torch.rand(16, 16))
    with pytest.raises(ValueError, match="same shape"):
        S.rmse_ai(torch.rand(1, 1, 8, 8), torch.rand(1, 1, 8, 9))
    with pytest.raises(TypeError, match="float"):
        S.rmse_ai(torch.zeros(1, 1, 8, 8, dtype=torch.uint8), torch.zeros(1, 1, 8, 8, dtype=torch.uint8))
    with pytest.raises(TypeError, match="real"):
        S.rmse_spatial(torch.rand(1, 1, 8, 8, dtype=torch.complex64), torch.rand(1, 1, 8, 8))


def test_gradcheck_float64() -> None:
    g = torch.Generator().manual_seed(3)
    x = torch.rand(2, 3, 8, 8, dtype=torch.float64, generator=g, requires_grad=True)
    y = torch.rand(2, 3, 8, 8, dtype=torch.float64, generator=g)
    assert torch.autograd.gradcheck(lambda a: S.rmse_ai(a, y), (x,), fast_mode=True)
    assert torch.autograd.gradcheck(lambda a: S.rmse_ft(a, y), (x,), fast_mode=True)
    assert torch.autograd.gradcheck(lambda a: S.radial_profile(a, normalize=True), (x,), fast_mode=True)
    assert torch.autograd.gradcheck(lambda a: S.band_errors(a, y)["high"], (x,), fast_mode=True)
    m = torch.rand(2, 9, 9, dtype=torch.float64, generator=g, requires_grad=True)
    assert torch.autograd.gradcheck(S.azimuthal_average, (m,), fast_mode=True)


def test_float32_under_autocast() -> None:
    x = torch.rand(2, 3, 16, 16)
    y = torch.rand(2, 3, 16, 16)
    ref = S.rmse_ai(x, y)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = S.rmse_ai(x.bfloat16(), y.bfloat16())
        prof = S.radial_profile(x)
    assert out.dtype == torch.float32 and prof.dtype == torch.float32
    torch.testing.assert_close(out, ref, rtol=0.05, atol=0.05)  # inputs rounded to bf16, maths in fp32


@pytest.mark.parametrize("channels", [1, 3])
def test_ai_ft_ratio_in_the_papers_range(channels: int) -> None:
    """The evidence behind rmse_ai's natural log power: the paper's AI/FT ratios are 1.0-2.1 (Table 1 vanilla)."""
    from torchvision.transforms.functional import gaussian_blur

    g = torch.Generator().manual_seed(0)
    low = F.interpolate(torch.rand(16, channels, 8, 8, generator=g), size=(32, 32), mode="bicubic")
    x = (0.8 * low + 0.2 * torch.rand(16, channels, 32, 32, generator=g)).clamp(0, 1)
    for sigma, noise in [(0.7, 0.01), (1.0, 0.02), (2.0, 0.03)]:
        y = (gaussian_blur(x, [9, 9], [sigma, sigma]) + noise * torch.randn(x.shape, generator=g)).clamp(0, 1)
        ft = S.rmse_ft(x, y).mean()
        assert 1.0 < S.rmse_ai(x, y).mean() / ft < 2.5
        # dB is the same profile times 10 / ln 10 (4.34), out of the paper's range; so is Durall's 20 ln|F|
        torch.testing.assert_close(S.rmse_ai(x, y, units="db"), S.rmse_ai(x, y) * (10 / math.log(10)))
        assert S.rmse_ai(x, y, units="db").mean() / ft > 4
        assert S.rmse_ai(x, y, units="durall").mean() / ft > 10


# ------------------------------------------------------------------------- the 8-bit noise floor of the log spectra
def test_noise_floor_is_the_rms_dft_of_8bit_rounding_noise() -> None:
    """Rounding [0, 1] images to k/255 leaves an error of std 1/(255 sqrt 12); its DFT has E|F|^2 = HW q^2 per bin."""
    assert S.ROUNDING_NOISE_STD == pytest.approx(1 / (255 * math.sqrt(12)))
    g = torch.Generator().manual_seed(0)
    x = torch.rand(400, 1, 32, 24, generator=g, dtype=torch.float64)
    err = (x * 255).round() / 255 - x
    for norm in ("backward", "ortho", "forward"):
        measured = S.power_spectrum(err, norm=norm).mean().sqrt().item()  # type: ignore[arg-type]
        assert measured == pytest.approx(S.noise_floor(32, 24, norm), rel=0.02)  # type: ignore[arg-type]
    assert S.noise_floor(32, 24) == pytest.approx(math.sqrt(32 * 24) / (255 * math.sqrt(12)))
    assert S.noise_floor(32, 24, "ortho") == pytest.approx(S.ROUNDING_NOISE_STD)
    assert S.noise_floor(32, 24, "forward") == pytest.approx(S.ROUNDING_NOISE_STD / math.sqrt(32 * 24))
    with pytest.raises(ValueError, match="norm"):
        S.noise_floor(8, 8, "unitary")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="floor must be >= 0"):
        S.rmse_ft(x[:1], x[:1], floor=-1.0)
    with pytest.raises(ValueError, match="units"):
        S.radial_profile(x[:1], units="neper")  # type: ignore[arg-type]


def test_log_spectra_with_the_floor_do_not_depend_on_the_fft_norm() -> None:
    g = torch.Generator().manual_seed(4)
    x = torch.rand(3, 3, 16, 20, generator=g, dtype=torch.float64)
    y = (x + 0.05 * torch.randn(x.shape, generator=g, dtype=torch.float64)).clamp(0, 1)
    ref = S.rmse_ft(x, y)
    base = S.radial_profile(x, units="ln")
    for norm, k in (("ortho", 1), ("forward", 2)):
        torch.testing.assert_close(S.rmse_ft(x, y, norm=norm), ref)  # type: ignore[arg-type]
        torch.testing.assert_close(S.rmse_ai(x, y), S.rmse_ai(x, y, units="ln"))
        # the floored log power shifts by exactly -k ln(HW) (power and floor^2 both scale by (HW)^-k)
        shifted = S.radial_profile(x, units="ln", norm=norm)  # type: ignore[arg-type]
        torch.testing.assert_close(shifted, base - k * math.log(16 * 20))


def _shapes_and_copies(n: int = 200):
    """Shapes test images (float64) and three copies: near-perfect (a 0.3 px blur keeps the exact spectral zeros of
    the squares), sub-grey-level noise, and a VAE-like reconstruction (1 px blur plus noise, no exact zeros)."""
    from torchvision.transforms.functional import gaussian_blur

    from specvae.data import generate_shapes

    imgs, labels = generate_shapes(n, seed=0, split="test")
    x = imgs.double() / 255
    g = torch.Generator().manual_seed(0)
    near = gaussian_blur(x, [5, 5], [0.3, 0.3])
    noisy = (x + 0.5 / 255 * torch.randn(x.shape, generator=g, dtype=x.dtype)).clamp(0, 1)
    vae = (gaussian_blur(x, [9, 9], [1.0, 1.0]) + 0.01 * torch.randn(x.shape, generator=g, dtype=x.dtype)).clamp(0, 1)
    return x, labels, near, noisy, vae


def _u8(x: torch.Tensor) -> torch.Tensor:
    return (x * 255).round() / 255


@pytest.mark.parametrize("fn", [S.rmse_ft, S.rmse_ai], ids=["ft", "ai"])
def test_spectral_rmse_is_precision_independent_on_shapes(fn) -> None:
    """float32 and float64 agree to 1e-3 (relative) and an 8-bit round trip of a near-perfect reconstruction stays
    small (< 0.2, a fifth of what a 1 px blur costs). With Durall's tiny eps (floor=1e-8) neither holds: the exact
    spectral zeros of the squares are filled by round-off (float32 ~1e-5, 8-bit ~0.04), and the log of it decides."""
    x, _, near, noisy, vae = _shapes_and_copies()
    for y in (near, noisy):
        r64 = fn(x, y).mean().item()
        r32 = fn(x.float(), y.float()).mean().item()
        assert r32 == pytest.approx(r64, rel=1e-3, abs=1e-4)
        assert fn(x, _u8(y)).mean().item() < 0.2
    assert fn(x, vae).mean().item() > 1.0
    # the old convention fails both properties on the same images (so this test can fail)
    old = dict(floor=1e-8) if fn is S.rmse_ft else dict(units="durall")
    per_ln = 1.0 if fn is S.rmse_ft else 0.1  # Durall's 20 ln|F| in units of ln|F|^2
    r64, r32 = fn(x, near, **old).mean().item(), fn(x.float(), near.float(), **old).mean().item()
    assert r32 > 1.3 * r64  # float32 round-off alone moves it by a third or more
    assert per_ln * fn(x, _u8(near), **old).mean().item() > 0.5


@pytest.mark.parametrize("fn", [S.rmse_ft, S.rmse_ai], ids=["ft", "ai"])
def test_squares_and_circles_score_alike_for_the_same_degradation(fn) -> None:
    """Axis-aligned squares have exact DFT zeros on whole rows and columns, circles do not. For the same blur and
    noise the two kinds now score within a factor 2 of each other (with floor 1e-8 squares score 2.5+ times more)."""
    x, labels, _, _, vae = _shapes_and_copies()
    sq = labels == 1
    r = fn(x, vae)
    ratio = (r[sq].mean() / r[~sq].mean()).item()
    assert 0.5 < ratio < 2.0
    old = fn(x, vae, **(dict(floor=1e-8) if fn is S.rmse_ft else dict(units="durall")))
    assert (old[sq].mean() / old[~sq].mean()).item() > 1.8


def test_floor_changes_nothing_far_above_it() -> None:
    """Far above the floor the floored log spectrum is ln|F| (it adds ln(1 + floor^2/|F|^2) / 2 <= 5e-5 there)."""
    g = torch.Generator().manual_seed(7)
    x = torch.rand(2, 1, 16, 16, generator=g, dtype=torch.float64)
    f = S.fft2c(x).abs()
    big = f > 100 * S.noise_floor(16, 16)
    assert big.sum() > 0
    torch.testing.assert_close(S.log_magnitude(x)[big], torch.log(f)[big], rtol=0, atol=5e-5)
    torch.testing.assert_close(S.log_magnitude(x, 0.0), torch.log(f))
    torch.testing.assert_close(S.radial_profile(x, units="db"), S.radial_profile(x, units="ln") * (10 / math.log(10)))


# ----------------------------------------------------------------- the book's AI and 2D-FT metrics, re-derived in NumPy
def _gray601(img: np.ndarray) -> np.ndarray:
    return img[0] if img.shape[0] == 1 else 0.299 * img[0] + 0.587 * img[1] + 0.114 * img[2]


def _floor(plane: np.ndarray) -> float:
    return np.sqrt(plane.size) / (255 * np.sqrt(12))  # RMS |DFT| of 8-bit rounding noise, written out


def _log_power(plane: np.ndarray) -> np.ndarray:
    """ln(|F|^2 + floor^2), the unnormalised centred DFT, floor = sqrt(HW) / (255 sqrt 12)."""
    return np.log(np.abs(np.fft.fftshift(np.fft.fft2(plane))) ** 2 + _floor(plane) ** 2)


def _durall_log(plane: np.ndarray, eps: float = 1e-8) -> np.ndarray:
    return 20 * np.log(np.abs(np.fft.fftshift(np.fft.fft2(plane))) + eps)


def _pair(c: int, seed: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    """Three random images and noisy copies; image 0 is a bright square on black (a DFT with exact zeros)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(3, c, 24, 20, generator=g, dtype=torch.float64)
    x[0] = 0.0
    x[0, :, 8:12, 6:10] = 0.75
    y = (x + 0.1 * torch.randn(x.shape, generator=g, dtype=torch.float64)).clamp(0, 1)
    return x, y


@pytest.mark.parametrize("c", [1, 3])
def test_rmse_ai_equals_numpy_rederivation(c: int) -> None:
    """Default rmse_ai: gray (BT.601) -> unnormalised FFT -> ln(|F|^2 + floor^2) -> Durall's rings -> RMSE over
    rings, floor = the 8-bit noise floor. Without the min-max normalisation, a wrong log base, scale, floor or FFT
    normalisation changes the value (the normalised profile of test_losses_spectral cannot see those)."""
    x, y = _pair(c)
    ref = []
    for a, b in zip(x.numpy(), y.numpy()):
        pa = _astrobetter_profile(_log_power(_gray601(a)))
        pb = _astrobetter_profile(_log_power(_gray601(b)))
        ref.append(np.sqrt(np.mean((pa - pb) ** 2)))
    np.testing.assert_allclose(S.rmse_ai(x, y).numpy(), ref, rtol=1e-9)
    # float32 inputs (what the chapters pass) agree to float32 precision, also on the image with exact zeros
    np.testing.assert_allclose(S.rmse_ai(x.float(), y.float()).numpy(), ref, rtol=1e-4)
    # dB: 10 log10 of the same floored power
    ref_db = []
    for a, b in zip(x.numpy(), y.numpy()):
        pa = _astrobetter_profile(10 * _log_power(_gray601(a)) / np.log(10))
        pb = _astrobetter_profile(10 * _log_power(_gray601(b)) / np.log(10))
        ref_db.append(np.sqrt(np.mean((pa - pb) ** 2)))
    np.testing.assert_allclose(S.rmse_ai(x, y, units="db").numpy(), ref_db, rtol=1e-9)
    # gray=False with Durall's 20 ln(|F| + 1e-8): per-channel ring profiles averaged over channels, then differenced
    ref_c = []
    for a, b in zip(x.numpy(), y.numpy()):
        pa = np.mean([_astrobetter_profile(_durall_log(p)) for p in a], axis=0)
        pb = np.mean([_astrobetter_profile(_durall_log(p)) for p in b], axis=0)
        ref_c.append(np.sqrt(np.mean((pa - pb) ** 2)))
    np.testing.assert_allclose(S.rmse_ai(x, y, gray=False, units="durall").numpy(), ref_c, rtol=1e-9)


@pytest.mark.parametrize("c", [1, 3])
def test_rmse_ft_equals_numpy_rederivation(c: int) -> None:
    """Default rmse_ft: RMSE of 0.5 ln(|F|^2 + floor^2) over every channel and frequency bin (unnormalised FFT)."""
    x, y = _pair(c, seed=6)
    ref = [np.sqrt(np.mean([(0.5 * _log_power(p) - 0.5 * _log_power(q)) ** 2 for p, q in zip(a, b)]))
           for a, b in zip(x.numpy(), y.numpy())]
    np.testing.assert_allclose(S.rmse_ft(x, y).numpy(), ref, rtol=1e-9)
    np.testing.assert_allclose(S.rmse_ft(x.float(), y.float()).numpy(), ref, rtol=1e-4)
    # an explicit floor is a magnitude in the units of the unnormalised FFT
    lp = lambda p, fl: 0.5 * np.log(np.abs(np.fft.fft2(p)) ** 2 + fl**2)  # noqa: E731
    ref_fl = [np.sqrt(np.mean([(lp(p, 0.5) - lp(q, 0.5)) ** 2 for p, q in zip(a, b)]))
              for a, b in zip(x.numpy(), y.numpy())]
    np.testing.assert_allclose(S.rmse_ft(x, y, floor=0.5).numpy(), ref_fl, rtol=1e-9)
    # magnitudes with the unitary FFT: |F| / sqrt(HW)
    mag = lambda p: np.abs(np.fft.fft2(p)) / np.sqrt(p.size)  # noqa: E731
    ref_mag = [np.sqrt(np.mean([(mag(p) - mag(q)) ** 2 for p, q in zip(a, b)]))
               for a, b in zip(x.numpy(), y.numpy())]
    np.testing.assert_allclose(S.rmse_ft(x, y, log=False, norm="ortho").numpy(), ref_mag, rtol=1e-9)


@pytest.mark.parametrize("ky,kx", [(0, 5), (3, 4), (7, 2)])
def test_power_profile_of_a_sinusoid_has_its_analytic_values(ky: int, kx: int) -> None:
    """0.5 + a cos(2π(ky y + kx x)/n): |F|^2 = (n^2/2)^2 at DC and (a n^2/2)^2 at (±ky, ±kx), zero elsewhere, so
    each ring's mean power is the sum of those that fall in it over the ring's pixel count (counted in NumPy)."""
    n, a = 32, 0.3
    yy, xx = np.mgrid[0:n, 0:n]
    img = 0.5 + a * np.cos(2 * np.pi * (ky * yy + kx * xx) / n)
    prof = S.radial_profile(torch.from_numpy(img)[None, None], log=False, center="dc", bins="all")[0].numpy()
    ring = np.hypot(yy - n // 2, xx - n // 2).astype(int)  # DC at (n/2, n/2) after fftshift
    counts = np.bincount(ring.ravel())
    expected = np.zeros(counts.size)
    expected[0] = (0.5 * n * n) ** 2
    r = int(math.hypot(ky, kx))
    expected[r] += 2 * (a * n * n / 2) ** 2
    expected /= counts
    assert prof.shape == expected.shape
    np.testing.assert_allclose(prof, expected, rtol=1e-9, atol=1e-9 * expected.max())


@pytest.mark.parametrize(
    "k,band", [(3, "low"), (4, "mid"), (6, "mid"), (7, "mid"), (8, "high"), (12, "high"), (16, "high")]
)
def test_band_energies_put_a_sinusoid_in_its_band(k: int, band: str) -> None:
    """a cos(2π k x / n) has radial frequency k/n cycles/pixel and mean energy a^2/2 (a^2 at Nyquist, k = n/2);
    default bands [0, 1/8), [1/8, 1/4), [1/4, inf), half-open: 3/32 is low, 4/32 to 7/32 mid, 8/32 and up high."""
    n, a = 32, 0.4
    xx = np.arange(n)[None, :].repeat(n, 0)
    img = torch.from_numpy(a * np.cos(2 * np.pi * k * xx / n))[None, None].expand(2, 3, n, n)
    e = S.band_energies(img)
    expected = a * a if 2 * k == n else a * a / 2
    for name, value in e.items():
        torch.testing.assert_close(value, torch.full((2,), expected if name == band else 0.0, dtype=torch.float64),
                                   atol=1e-12, rtol=1e-10)
    # the same sinusoid as an error between two images lands in the same band of band_errors
    err = S.band_errors(img + 0.25, torch.full_like(img, 0.25))
    assert max(err, key=lambda b: float(err[b][0])) == band

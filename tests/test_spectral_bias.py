"""Chapter 0's experiment module: presets, the measurement helpers, and the effects the chapter teaches."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from specvae.experiments import spectral_bias as sb
from specvae.experiments import spectral_bias_report as rep


@pytest.fixture(autouse=True)
def _flush_denormals():
    old = torch.set_flush_denormal(True) and False
    yield
    torch.set_flush_denormal(old)


@pytest.fixture
def results_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv("SPECVAE_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("SPECVAE_RUNS", str(tmp_path / "runs"))
    return tmp_path / "results"


def _need_data():
    root = os.environ.get("SPECVAE_DATA", "")
    if not root or not Path(root).is_dir():
        pytest.fail("this test needs the real data sets: set SPECVAE_DATA to the folder holding faces64/ and mnist/")


# -- presets and configs -------------------------------------------------------------------------------------
def test_presets_cover_the_four_names_and_overrides():
    assert set(sb.PRESETS) == {"smoke", "cpu", "gpu", "paper"}
    s = sb.sizes("smoke", frequencies=[1, 2, 4], fourier_features=None, fft_weight=0.25)
    assert s.frequencies == (1.0, 2.0, 4.0) and s.fft_weight == 0.25
    assert s.fourier_features == sb.PRESETS["smoke"].fourier_features
    with pytest.raises(ValueError, match="valid keys"):
        sb.sizes("cpu", frequency=[1])
    with pytest.raises(ValueError, match="upsample"):
        sb.sizes("cpu", upsample="bilinear")
    with pytest.raises(ValueError, match="eq. 3"):
        sb.sizes("cpu", fft_weight=2.0)
    with pytest.raises(ValueError, match="focal_weight"):
        sb.sizes("cpu", focal_weight=-0.1)
    with pytest.raises(ValueError, match="multiple of 16"):
        sb.sizes("cpu", recover_code=1000)  # a 4x4 grid at 32 px
    assert sb.sizes("smoke", pca_codes=[8, 16]).pca_codes == (8, 16)
    with pytest.raises(ValueError, match="smoke"):
        sb.sizes("laptop")


def test_configs_are_unique_and_hash_differently():
    from specvae.experiments.hashing import config_hash

    cfgs = sb.configs("smoke")
    # 2 regressions, 2 image fits, 2 up-sampling AEs, the MSE + FFT AE (the MSE/transposed AE is shared by
    # sections 4-6), the focal-frequency and spatial-code AEs of section 6, the 2 exercise regressions
    assert len(cfgs) == 11
    assert len({config_hash(c) for c in cfgs}) == 11
    ae = [c for c in cfgs if isinstance(c, sb.AutoencoderConfig)]
    assert [(c.code, c.spectral_loss) for c in ae] == [
        ("dense", "none"), ("dense", "none"), ("dense", "fft"), ("dense", "focal"), ("spatial", "none")]
    assert {c.upsample for c in ae[2:]} == {"transposed"} and ae[1].upsample == "nearest_conv5"
    # every autoencoder trains by the convergence rule, in bf16; the coordinate MLPs in fp32, fixed length
    assert all(c.converge_tol == 0.01 and c.precision == "bf16" for c in ae)
    assert all(c.precision == "fp32" for c in cfgs if not isinstance(c, sb.AutoencoderConfig))
    fft = [c for c in sb.configs("smoke", fft_weight=0.3) if getattr(c, "spectral_loss", "") == "fft"]
    assert config_hash(fft[0]) != config_hash(ae[2])
    # asking section 5 for the focal loss makes its second run the one of section 6: one run, not two
    assert len(sb.configs("smoke", spectral_loss="focal", fft_weight=0.5)) == 10


def test_run_all_without_training_reports_missing_results(results_tmp):
    from specvae.experiments.store import MissingResultError

    with pytest.raises(MissingResultError, match="train=True"):
        sb.run_all("smoke", train=False)


# -- section 1 helpers ---------------------------------------------------------------------------------------
def test_power_law_slope_recovers_exponent():
    f = np.linspace(0.01, 0.5, 50)
    beta, c = rep.power_law_slope(f, 3.0 * f**-2.0, 0.02, 0.4)
    assert beta == pytest.approx(-2.0, abs=1e-9) and c == pytest.approx(math.log(3.0), abs=1e-9)
    with pytest.raises(ValueError, match="slope_range"):
        rep.power_law_slope(f, f, 0.6, 0.7)


def test_degradations_move_high_frequency_energy_the_right_way():
    from specvae.spectral import band_energies

    torch.manual_seed(0)
    # a smooth random image plus fine texture
    x = (0.5 + 0.2 * torch.nn.functional.interpolate(torch.randn(4, 1, 8, 8), size=32, mode="bicubic")
         + 0.05 * torch.randn(4, 1, 32, 32)).clamp(0, 1)
    edges = (0.0, 0.25, 0.71)

    def high(y):
        return band_energies(y, edges)["0.25-0.71"].mean().item()

    h0 = high(x)
    assert high(rep.degrade(x, "blur", blur_sigma=1.0)) < 0.4 * h0
    assert high(rep.degrade(x, "downsample")) < 0.5 * h0
    assert high(rep.degrade(x, "noise", noise_std=0.2)) > 2 * h0
    j = rep.degrade(x, "jpeg", jpeg_quality=10)
    assert j.shape == x.shape and j.dtype == torch.float32 and not torch.equal(j, x)
    # JPEG quantises the high frequencies hardest: at quality 10 the fine texture's energy drops; at quality 100
    # the round trip is within a few grey levels of the input (gray and colour images alike)
    assert high(j) < 0.6 * h0
    for img in (x, x.expand(-1, 3, -1, -1)):
        near = rep.degrade(img, "jpeg", jpeg_quality=100)
        assert near.shape == img.shape and (near - img).abs().max().item() < 6 / 255
    assert rep.degrade(x, "original") is x
    with pytest.raises(ValueError, match="degradation"):
        rep.degrade(x, "sharpen")


# -- section 2 ------------------------------------------------------------------------------------------------
def test_regression_target_formula():
    x, y = sb.regression_target([1, 3], 64, seed=0)
    g = torch.Generator().manual_seed(0)
    ph = torch.rand(2, generator=g, dtype=torch.float64) * 2 * math.pi
    ref = torch.sin(2 * math.pi * x.double() + ph[0]) + torch.sin(2 * math.pi * 3 * x.double() + ph[1])
    assert torch.allclose(y.double(), ref, atol=1e-6)
    assert x.shape == (64, 1) and x.min() == 0 and x.max() < 1
    with pytest.raises(ValueError, match="Nyquist"):
        sb.regression_target([40], 64)


def test_frequency_errors_are_zero_when_exact_and_one_when_a_component_is_missing():
    x, y = sb.regression_target([2, 5, 9], 128, seed=1)
    assert np.allclose(sb.frequency_errors_1d(y, y, [2, 5, 9]), 0, atol=1e-9)
    missing5 = y - torch.sin(2 * math.pi * 5 * x + sb.regression_target([2, 5, 9], 128, seed=1)[1] * 0
                             + float(torch.rand(3, generator=torch.Generator().manual_seed(1),
                                                dtype=torch.float64)[1] * 2 * math.pi))
    err = sb.frequency_errors_1d(missing5, y, [2, 5, 9])
    assert err[0] == pytest.approx(0, abs=1e-4) and err[1] == pytest.approx(1, abs=1e-4)
    assert err[2] == pytest.approx(0, abs=1e-4)
    assert np.allclose(sb.frequency_errors_1d(torch.zeros_like(y), y, [2, 5, 9]), 1)


def test_spectral_bias_low_frequency_learned_before_high_and_fourier_features_fix_it():
    """Rahaman et al.: the raw MLP's lowest frequency error ends far below the highest; Fourier features learn all."""
    s = sb.sizes("smoke", reg_steps=200, reg_eval_every=50)
    raw, ff = sb._regression_configs(s, "smoke")
    out_raw = sb.run(raw)
    err = out_raw["arrays"]["errors"]  # (K, T)
    assert err.shape == (len(s.frequencies), 5)
    assert np.allclose(err[:, 0], err[:, 0].mean(), atol=0.1)  # all near 1 at initialisation
    assert err[0, -1] < 0.5 * err[-1, -1]
    assert err[-1, -1] > 0.8  # the highest frequency is still (almost) not learned
    out_ff = sb.run(ff)
    assert out_ff["arrays"]["errors"][:, -1].max() < 0.1


# -- section 4 ------------------------------------------------------------------------------------------------
def test_checkerboard_score_detects_period_two_pattern():
    from specvae.spectral import log_magnitude

    torch.manual_seed(0)
    smooth = torch.nn.functional.interpolate(torch.rand(1, 1, 4, 4), size=32, mode="bicubic")
    m, n = (torch.arange(32)[:, None] % 2).float(), (torch.arange(32)[None] % 2).float()
    cb = 0.7 * m + 0.5 * n + 0.3 * m * n  # a 2x2 tile repeated: energy at all three Nyquist frequencies
    checker = smooth + 0.2 * cb
    s_smooth = sb.checkerboard_score(log_magnitude(smooth)[0, 0])
    s_checker = sb.checkerboard_score(log_magnitude(checker)[0, 0])
    assert s_checker > 3 > s_smooth
    with pytest.raises(ValueError, match="even"):
        sb.checkerboard_score(np.zeros((5, 5)))


def test_checkerboard_score_is_in_the_units_of_the_map():
    torch.manual_seed(0)
    x = torch.rand(4, 1, 16, 16)
    from specvae.spectral import log_magnitude

    ln = sb.checkerboard_score(log_magnitude(x).mean(dim=(0, 1)))
    db = sb.checkerboard_score(sb.mean_db_map(x))
    assert db == pytest.approx(20 / math.log(10) * ln, rel=1e-5)


def test_mean_db_map_is_ten_log10_power_with_the_noise_floor():
    torch.manual_seed(1)
    x = torch.rand(3, 3, 8, 8)
    gray = (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]).numpy()
    power = np.abs(np.fft.fftshift(np.fft.fft2(gray), axes=(-2, -1))) ** 2
    ref = (10 * np.log10(power + 64 / (255**2 * 12))).mean(0)
    np.testing.assert_allclose(sb.mean_db_map(x), ref, atol=1e-3)


def test_axis_slice_reads_the_horizontal_axis_up_to_nyquist():
    m = np.zeros((8, 8))
    m[4, 4 + 2] = 5.0  # f_x = 2/8
    m[4, 0] = 7.0  # f_x = -1/2, the same frequency as +1/2
    m[3, 4 + 1] = 9.0  # off the axis: not in the slice
    f, v = rep.axis_slice(m)
    np.testing.assert_allclose(f, [0, 0.125, 0.25, 0.375, 0.5])
    np.testing.assert_allclose(v, [0, 0, 5.0, 0, 7.0])


def test_transposed_decoder_at_init_has_nyquist_peaks_nearest_does_not():
    init = rep.upsampling_at_init("smoke")
    scores = init["scores"].set_index("upsampling")["checkerboard_score"]  # dB
    assert scores["transposed"] > 5.0
    assert scores["transposed"] > scores["nearest_conv5"] + 10.0
    f, mu, sd = init["profiles"]["transposed"]
    assert f.shape == mu.shape == sd.shape and f.max() > 0.5
    # along the f_x axis: a peak at 1/2 for transposed convolutions, a dip for nearest-neighbour copies
    for kind, sign in (("transposed", 1), ("nearest_conv5", -1)):
        f, v = init["slices"][kind]
        assert f[-1] == 0.5
        assert sign * (v[-1] - np.median(v[1:])) > 3.0


# -- band measures and section 6 ------------------------------------------------------------------------------
def test_band_labels_name_bands_in_cycles_per_pixel():
    assert rep.band_label("0.125-0.25") == "1/8–1/4"
    assert rep.band_label("0-0.125") == "0–1/8"
    assert rep.band_label("0.5-0.75") == "corners (> 1/2)"
    assert rep.band_labels((0.0, 0.125, 0.25, 0.375, 0.5, 0.75)) == [
        "0–1/8", "1/8–1/4", "1/4–3/8", "3/8–1/2", "corners (> 1/2)"]


def test_band_measures_on_analytic_cases():
    torch.manual_seed(0)
    edges = (0.0, 0.125, 0.25, 0.375, 0.5, 0.75)
    x = torch.rand(6, 1, 16, 16)
    # a reconstruction that is twice the image has 4x the energy and the image's own energy as error, per band
    for v in sb.band_energy_ratios(x, 2 * x, edges).values():
        assert v == pytest.approx(4.0, rel=1e-5)
    for v in sb.relative_band_errors(x, 2 * x, edges).values():
        assert v == pytest.approx(1.0, rel=1e-5)
    for v in sb.relative_band_errors(x, torch.zeros_like(x), edges).values():
        assert v == pytest.approx(1.0, rel=1e-5)
    # white noise of variance s^2: the unitary FFT gives s^2 per frequency bin, in every band
    noise = 0.1 * torch.randn(400, 1, 16, 16, generator=torch.Generator().manual_seed(1))
    per_bin = rep.per_bin_band_errors(torch.zeros_like(noise), noise, edges)
    assert list(per_bin) == rep.band_labels(edges)
    for v in per_bin.values():
        assert v == pytest.approx(0.01, rel=0.05)


def test_converged_mark():
    assert rep.converged_mark({"converged": True, "steps_done": 2400}) == "yes (2,400 steps)"
    assert rep.converged_mark({"converged": False, "steps_done": 6000}) == "no: stopped at the cap (6,000 steps)"
    assert rep.converged_mark({"converged": None, "steps_done": 600}) == "fixed length (600 steps)"


def test_spatial_code_autoencoder_keeps_a_grid_of_the_given_size():
    torch.manual_seed(0)
    m = sb.SpatialCodeAutoencoder(3, 32, 8, 3, latent_dim=256)
    x = torch.rand(2, 3, 32, 32)
    z = m.encode(x)
    assert z.shape == (2, 16, 4, 4) and z[0].numel() == 256
    y = m(x)
    assert y.shape == x.shape and 0 <= float(y.min()) and float(y.max()) <= 1
    # each code cell describes its own region: changing one cell changes the output near it most
    z2 = z.clone()
    z2[:, :, 0, 0] += 5.0
    d = (m.decode(z2) - m.decode(z)).abs().mean(dim=(0, 1))
    assert d[:16, :16].mean() > 3 * d[16:, 16:].mean()
    with pytest.raises(ValueError, match="multiple of s²"):
        sb.SpatialCodeAutoencoder(3, 32, 8, 3, latent_dim=100)


# -- sections 3-5 end to end on real data ---------------------------------------------------------------------
@pytest.mark.data("faces")
def test_autoencoder_run_is_stored_and_reloaded(results_tmp):
    _need_data()
    overrides = dict(ae_steps=6, ae_train=32, ae_eval=16, ae_batch=8, ae_eval_every=3)
    out = rep.autoencoders("smoke", **overrides)
    assert set(out["runs"]) == {"MSE", "MSE + FFT (α=0.5)"}
    rec = out["runs"]["MSE"]
    bands = rec["extra"]["band_history"]
    assert bands["step"] == [0, 3, 6]
    assert set(bands) - {"step"} == {"0-0.125", "0.125-0.25", "0.25-0.375", "0.375-0.5", "0.5-0.75"}
    assert rec["images"]["recon"].shape == (8, 3, 32, 32)
    m = rec["metrics"]
    assert 0 < m["psnr"] < 60
    # 6 steps never satisfy the rule (it waits for 10 logged intervals and converge_min_steps): flagged
    assert m["converged"] is False and m["steps_done"] == 6
    assert m["band_error_0.5-0.75"] == pytest.approx(bands["0.5-0.75"][-1])
    assert set(out["table"].columns) >= {"autoencoder", "PSNR (dB)", "1/8–1/4", "corners (> 1/2)", "converged"}
    assert len(list(Path(results_tmp, sb.CHAPTER).glob("*.json"))) == 2
    # stored: train=False now reads without training
    again = rep.autoencoders("smoke", train=False, **overrides)
    assert again["runs"]["MSE"]["metrics"] == rec["metrics"]
    # the band history is kept beside the checkpoints, so a resumed run keeps the points it recorded
    saved = Path(os.environ["SPECVAE_RUNS"], sb.CHAPTER)
    assert len(list(saved.glob("*/band_history.json"))) == 2


@pytest.mark.data
def test_section_6_runs_and_the_linear_bound(results_tmp):
    _need_data()
    overrides = dict(ae_steps=4, ae_train=64, ae_eval=16, ae_batch=8, ae_eval_every=2, pca_codes=[8, 32])
    out = rep.recovering("smoke", **overrides)
    assert list(out["runs"]) == ["MSE", "MSE + FFT (α=0.5)", "MSE + focal frequency (α=0.5)",
                                 "MSE, spatial code (256 numbers)"]
    assert list(out["errors"]["autoencoder"]) == list(out["runs"])
    pca = out["pca"].set_index("numbers in the code")
    # more components, lower error: in total (PSNR) and in the band just above the lowest
    assert pca.loc[32, "PSNR (dB)"] > pca.loc[8, "PSNR (dB)"]
    assert pca.loc[32, "1/8–1/4"] < pca.loc[8, "1/8–1/4"]
    with pytest.raises(ValueError, match="training images"):
        rep.pca_band_errors("smoke", codes=[128], ae_train=64)


@pytest.mark.data("faces", "mnist")
def test_reading_spectra_on_real_images():
    _need_data()
    out = rep.reading_spectra("smoke", n_images=8)
    slopes = out["slopes"].set_index("images")["slope"]
    assert set(slopes.index) >= {"faces", "MNIST", "Shapes", "faces, original", "faces, blur", "faces, noise"}
    # power decays with frequency, faster after blur, slower with white noise
    assert slopes["faces"] < -1
    assert slopes["faces, blur"] < slopes["faces, original"] < slopes["faces, noise"]
    # the three data sets share one size (one colour scale for their maps)
    assert {out["maps"][n].shape for n in ("faces", "MNIST", "Shapes")} == {(32, 32)}
    # white noise adds equal power per frequency to a spectrum that falls: its relative error grows from band to
    # band and outweighs the faces' own (weak) corners; blur keeps the lowest band and damages all above it
    # (not monotonically: the image-border jumps on the axes survive a blur that pads by reflection)
    err = out["errors"].set_index("degradation")
    bands = rep.band_labels(sb.PRESETS["smoke"].band_edges)
    assert np.all(np.diff(err.loc["noise", bands].to_numpy(dtype=float)) > 0)
    assert err.loc["noise", bands[-1]] > 1
    assert err.loc["blur", bands[0]] < 0.01 and err.loc["blur", bands[1:]].min() > 10 * err.loc["blur", bands[0]]
    assert err.loc["blur", "PSNR (dB)"] > 20


def test_runs_record_the_preset_they_came_from():
    # a Sizes obtained from sizes("smoke", ...) keeps its preset name, so the run configs (and the provenance of
    # the stored results) say "smoke", also when the notebook passes the Sizes object rather than the name
    s = sb.sizes("smoke", fft_weight=0.25)
    assert s.preset == "smoke"
    assert {c.preset for c in sb.configs(s)} == {"smoke"}
    assert {c.preset for c in sb.configs("cpu")} == {"cpu"}

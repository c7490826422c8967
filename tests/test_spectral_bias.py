"""Chapter 0's experiment module: presets, the measurement helpers, and the effects the chapter teaches."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from specvae.experiments import spectral_bias as sb


@pytest.fixture(autouse=True)
def _flush_denormals():
    old = torch.set_flush_denormal(True) and False
    yield
    torch.set_flush_denormal(old)


@pytest.fixture
def results_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv("SPECVAE_RESULTS", str(tmp_path / "results"))
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
    with pytest.raises(ValueError, match="smoke"):
        sb.sizes("laptop")


def test_configs_are_unique_and_hash_differently():
    from specvae.experiments.hashing import config_hash

    cfgs = sb.configs("smoke")
    # 2 regressions, 2 image fits, 2 up-sampling AEs; the MSE/transposed AE is shared by sections 4 and 5
    assert len(cfgs) == 7
    assert len({config_hash(c) for c in cfgs}) == 7
    assert config_hash(sb.configs("smoke", fft_weight=0.3)[-1]) != config_hash(cfgs[-1])


def test_run_all_without_training_reports_missing_results(results_tmp):
    from specvae.experiments.store import MissingResultError

    with pytest.raises(MissingResultError, match="train=True"):
        sb.run_all("smoke", train=False)


# -- section 1 helpers ---------------------------------------------------------------------------------------
def test_power_law_slope_recovers_exponent():
    f = np.linspace(0.01, 0.5, 50)
    beta, c = sb.power_law_slope(f, 3.0 * f**-2.0, 0.02, 0.4)
    assert beta == pytest.approx(-2.0, abs=1e-9) and c == pytest.approx(math.log(3.0), abs=1e-9)
    with pytest.raises(ValueError, match="slope_range"):
        sb.power_law_slope(f, f, 0.6, 0.7)


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
    assert high(sb.degrade(x, "blur", blur_sigma=1.0)) < 0.4 * h0
    assert high(sb.degrade(x, "downsample")) < 0.5 * h0
    assert high(sb.degrade(x, "noise", noise_std=0.2)) > 2 * h0
    j = sb.degrade(x, "jpeg", jpeg_quality=10)
    assert j.shape == x.shape and j.dtype == torch.float32 and not torch.equal(j, x)
    # JPEG quantises the high frequencies hardest: at quality 10 the fine texture's energy drops; at quality 100
    # the round trip is within a few grey levels of the input (gray and colour images alike)
    assert high(j) < 0.6 * h0
    for img in (x, x.expand(-1, 3, -1, -1)):
        near = sb.degrade(img, "jpeg", jpeg_quality=100)
        assert near.shape == img.shape and (near - img).abs().max().item() < 6 / 255
    assert sb.degrade(x, "original") is x
    with pytest.raises(ValueError, match="degradation"):
        sb.degrade(x, "sharpen")


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


def test_transposed_decoder_at_init_has_nyquist_peaks_nearest_does_not():
    init = sb.upsampling_at_init("smoke")
    scores = init["scores"].set_index("upsampling")["checkerboard_score"]
    assert scores["transposed"] > 1.0
    assert scores["transposed"] > scores["nearest_conv5"] + 2.0
    f, mu, sd = init["profiles"]["transposed"]
    assert f.shape == mu.shape == sd.shape and f.max() > 0.5


# -- sections 3-5 end to end on real data ---------------------------------------------------------------------
@pytest.mark.data("faces")
def test_autoencoder_run_is_stored_and_reloaded(results_tmp):
    _need_data()
    overrides = dict(ae_steps=6, ae_train=32, ae_eval=16, ae_batch=8, ae_eval_every=3)
    out = sb.autoencoders("smoke", **overrides)
    assert set(out["runs"]) == {"MSE", "MSE + FFT (α=0.5)"}
    rec = out["runs"]["MSE"]
    bands = rec["extra"]["band_history"]
    assert bands["step"] == [0, 3, 6]
    assert set(bands) - {"step"} == {"0-0.125", "0.125-0.25", "0.25-0.375", "0.375-0.5"}
    assert rec["images"]["recon"].shape == (8, 3, 32, 32)
    assert 0 < rec["metrics"]["psnr"] < 60
    assert len(list(Path(results_tmp, sb.CHAPTER).glob("*.json"))) == 2
    # stored: train=False now reads without training
    again = sb.autoencoders("smoke", train=False, **overrides)
    assert again["runs"]["MSE"]["metrics"] == rec["metrics"]


@pytest.mark.data("faces", "mnist")
def test_reading_spectra_on_real_images():
    _need_data()
    out = sb.reading_spectra("smoke", n_images=8)
    slopes = out["slopes"].set_index("images")["slope"]
    assert set(slopes.index) >= {"faces", "MNIST", "Shapes", "faces, blur", "faces, noise"}
    # power decays with frequency, faster after blur, slower with white noise
    assert slopes["faces"] < -1
    assert slopes["faces, blur"] < slopes["faces"] < slopes["faces, noise"]


def test_runs_record_the_preset_they_came_from():
    # a Sizes obtained from sizes("smoke", ...) keeps its preset name, so the run configs (and the provenance of
    # the stored results) say "smoke", also when the notebook passes the Sizes object rather than the name
    s = sb.sizes("smoke", fft_weight=0.25)
    assert s.preset == "smoke"
    assert {c.preset for c in sb.configs(s)} == {"smoke"}
    assert {c.preset for c in sb.configs("cpu")} == {"cpu"}

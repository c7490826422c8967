"""specvae.experiments.simpler_is_better: the chapter-1 grid, one smoke run, the evaluation and the losses
(the tables and the text are tested in test_simpler_is_better_report.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from specvae.experiments import config_hash
from specvae.experiments import simpler_is_better as ch1
from specvae.experiments.store import MissingResultError
from specvae.metrics import psnr, ssim


def test_grid_is_tables_1_and_2_times_seeds():
    cfgs = ch1.configs("gpu")
    assert len(cfgs) == 72
    keys = {(c.dataset, c.objective, c.upsample) for c in cfgs}
    assert len(keys) == 24
    assert {c.seed for c in cfgs} == {0, 1, 2}
    assert len({config_hash(c) for c in cfgs}) == 72
    # the faces net is IRMAE's full width at gpu, narrowed only at cpu/smoke
    assert {c.width_div for c in cfgs if c.dataset == "faces"} == {1}
    assert {c.width_div for c in ch1.configs("cpu") if c.dataset == "faces"} == {8}
    assert len(ch1.configs("cpu")) == 72 and len(ch1.configs("cpu", seeds=1)) == 24
    # presets never share a result file
    assert not {config_hash(c) for c in ch1.configs("smoke")} & {config_hash(c) for c in ch1.configs("cpu")}


def test_bad_names_are_clear_errors():
    with pytest.raises(ValueError, match="unknown preset"):
        ch1.configs("laptop")
    with pytest.raises(ValueError, match="unknown override"):
        ch1.configs("cpu", epochs=3)
    with pytest.raises(ValueError, match="unknown objectives"):
        ch1.configs("cpu", objectives=["l1"])
    with pytest.raises(ValueError, match="alpha"):
        ch1.alpha_sweep_configs("cpu", alphas=[2.0])
    assert ch1.configs("cpu", steps="20")[0].steps == 20  # papermill/CLI strings are typed once


def test_run_all_without_training_reports_missing(tmp_path, monkeypatch):
    monkeypatch.setenv("SPECVAE_RESULTS", str(tmp_path))
    with pytest.raises(MissingResultError, match="specvae run 01_simpler_is_better"):
        ch1.run_all("smoke", train=False, progress=False)


@pytest.mark.parametrize("objective", ["vanilla", "fft", "ai"])
def test_smoke_run_produces_a_complete_record(objective, tmp_path, monkeypatch):
    monkeypatch.setenv("SPECVAE_RUNS", str(tmp_path / "runs"))
    cfg = ch1.configs("smoke", datasets=["shapes"], objectives=[objective], upsamplers=["nearest_conv5"])[0]
    out = ch1.run(cfg)
    m = out["metrics"]
    for key in ("rmse_ai_mean", "rmse_ai_std", "rmse_ft_mean", "rmse_ft_std", "rmse_spatial_mean",
                "rmse_spatial_std", "final_loss", "train_images_per_s", "n_params"):
        assert np.isfinite(m[key]), key
    assert 0 < m["rmse_spatial_mean"] < 1
    a = out["arrays"]
    r = a["freqs"].shape[0]
    assert r > 0 and all(a[k].shape == (r,) for k in ("profile_real_mean", "profile_recon_mean", "profile_real_std"))
    assert out["history"]["step"][-1] == cfg.steps and len(out["history"]["loss"]) == cfg.steps
    if objective != "vanilla":
        assert "spectral" in out["history"] and "spatial" in out["history"]
    s = out["npz"]["samples"]
    assert s["real"].shape == s["recon"].shape == (cfg.n_samples, 1, 32, 32) and s["recon"].dtype == np.uint8
    assert out["extra"]["n_test_images"] == cfg.n_test


@pytest.mark.weights("watson-gray")
def test_watson_objective_uses_the_pretrained_parameters(tmp_path, monkeypatch):
    monkeypatch.setenv("SPECVAE_RUNS", str(tmp_path / "runs"))
    cfg = ch1.configs("smoke", datasets=["shapes"], objectives=["watson"], upsamplers=["transposed"])[0]
    loss = ch1.build_loss(cfg)
    assert not any(p.requires_grad for p in loss.parameters())
    x = torch.rand(2, 1, 32, 32)
    assert loss.recon(x, x).item() < loss.recon(x.flip(-1), x).item()
    out = ch1.run(cfg)
    assert np.isfinite(out["metrics"]["rmse_ai_mean"])


def test_evaluate_on_a_perfect_model_gives_zero_error():
    class Identity(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.p = torch.nn.Parameter(torch.zeros(1))

        def forward(self, x):
            return x, None, None

    imgs = (torch.rand(6, 1, 32, 32) * 255).to(torch.uint8)
    ev = ch1.evaluate(Identity(), imgs, batch_size=4)
    rmse = {k: v for k, v in ev["metrics"].items() if k.startswith("rmse_")}
    assert len(rmse) == 6 and all(abs(v) < 1e-6 for v in rmse.values())
    assert ev["metrics"]["ssim_mean"] == pytest.approx(1.0, abs=1e-9) and ev["metrics"]["ssim_std"] < 1e-9
    # PSNR is +inf for every exact reconstruction: left out of the mean (NaN when nothing is left), never inf
    assert np.isnan(ev["metrics"]["psnr_mean"]) and np.isinf(ev["per_image"]["psnr"]).all()
    np.testing.assert_allclose(ev["arrays"]["profile_real_mean"], ev["arrays"]["profile_recon_mean"])


def test_evaluate_aggregates_per_image_metrics_in_eval_mode():
    """evaluate() on a model that blurs (in eval mode) and adds noise (in train mode): the per-image values are
    specvae.spectral's (tested against NumPy in test_spectral) on the uint8 images / 255, the table's mean/std
    are over all images whatever the batch size, and the training flag is restored."""
    from torchvision.transforms.functional import gaussian_blur

    from specvae import spectral as S

    class Blur(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.p = torch.nn.Parameter(torch.zeros(1))

        def forward(self, x):
            y = gaussian_blur(x, [5, 5], [1.0, 1.0])
            return (y + 0.3 * torch.rand_like(y) if self.training else y), None, None

    g = torch.Generator().manual_seed(0)
    imgs = (torch.rand(7, 1, 32, 32, generator=g) * 255).to(torch.uint8)
    model = Blur().train()
    ev = ch1.evaluate(model, imgs, batch_size=3)  # batches of 3, 3, 1
    assert model.training
    x = imgs.float() / 255.0
    xr = gaussian_blur(x, [5, 5], [1.0, 1.0])
    for key, fn in (("ai", S.rmse_ai), ("ft", S.rmse_ft), ("spatial", S.rmse_spatial)):
        ref = fn(x, xr).double().numpy()
        np.testing.assert_allclose(ev["per_image"][key], ref, rtol=1e-5)
        assert ev["metrics"][f"rmse_{key}_mean"] == pytest.approx(ref.mean(), rel=1e-5)
        assert ev["metrics"][f"rmse_{key}_std"] == pytest.approx(ref.std(), rel=1e-4)  # over images, ddof 0
        assert ev["metrics"][f"rmse_{key}_mean"] > 0
    np.testing.assert_allclose(ev["arrays"]["profile_recon_mean"], S.radial_profile(xr).double().mean(0).numpy(),
                               rtol=1e-5)
    # the spread of the test images: population std (ddof 0) like the RMSE columns
    np.testing.assert_allclose(ev["arrays"]["profile_real_std"],
                               S.radial_profile(x).double().std(0, correction=0).numpy(), rtol=1e-4)
    for key, fn in (("psnr", psnr), ("ssim", ssim)):
        ref = fn(x, xr.clamp(0, 1)).double().numpy()
        np.testing.assert_allclose(ev["per_image"][key], ref, rtol=1e-5)
        assert ev["metrics"][f"{key}_mean"] == pytest.approx(ref.mean(), rel=1e-5)
        assert ev["metrics"][f"{key}_std"] == pytest.approx(ref.std(), rel=1e-4)
    np.testing.assert_allclose(ev["arrays"]["freqs"], S.frequency_axis(32, 32).numpy())
    # blurring removes high-frequency power: the reconstruction's profile falls below the real one at the top
    assert ev["arrays"]["profile_recon_mean"][-1] < ev["arrays"]["profile_real_mean"][-1]


@pytest.mark.parametrize("objective", ["vanilla", "fft", "ai"])
def test_build_loss_is_the_papers_objective(objective):
    """vanilla: BCE + β·KL_IRMAE; fft / ai: (1−α)·BCE + α·spectral (Björk eq. 3) + β·KL, with eq. 2 and the BCE
    written out in NumPy and the KL as IRMAE's −mean(1 + logvar − μ² − e^logvar)."""
    from specvae.losses import AzimuthalLoss

    cfg = ch1.configs("cpu", datasets=["mnist"], objectives=[objective], upsamplers=["transposed"], alpha=0.3)[0]
    assert (cfg.alpha, cfg.beta) == (0.3, 0.1)  # α ≠ 1/2, so swapped weights are seen
    g = torch.Generator().manual_seed(0)
    x = torch.rand(3, 1, 32, 32, generator=g, dtype=torch.float64)
    p = torch.rand(3, 1, 32, 32, generator=g, dtype=torch.float64) * 0.98 + 0.01
    mu, logvar = torch.randn(3, 16, generator=g, dtype=torch.float64), torch.randn(3, 16, generator=g,
                                                                                    dtype=torch.float64)
    xn, pn = x.numpy(), p.numpy()
    bce = float(-(xn * np.log(pn) + (1 - xn) * np.log(1 - pn)).mean())
    kl = float(-(1 + logvar - mu**2 - logvar.exp()).mean())
    if objective == "vanilla":
        recon = bce
    elif objective == "fft":
        d = np.fft.fft2(pn) - np.fft.fft2(xn)
        recon = 0.7 * bce + 0.3 * float((d.real**2 + d.imag**2).mean())
    else:
        recon = 0.7 * bce + 0.3 * AzimuthalLoss()(p, x).item()
    loss = ch1.build_loss(cfg)
    assert loss(p, x, mu, logvar).item() == pytest.approx(recon + 0.1 * kl, rel=1e-6)

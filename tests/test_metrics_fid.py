"""Fréchet distance (analytic cases, an independent eigenvalue computation) and rFID with the TF Inception."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch
import torch.nn as nn

from specvae.metrics import fid as fidmod
from specvae.metrics import weights as W
from specvae.metrics.fid import FIDStats, InceptionFeatures, frechet_distance, inception_features, real_statistics, rfid


def require(name: str):
    try:
        return W.resolve(name, fetch=False)
    except W.WeightsNotFoundError as exc:
        pytest.fail(f"pretrained network {name} is missing: run `specvae weights fetch` first.\n{exc}")


def frechet_by_eigenvalues(f1: np.ndarray, f2: np.ndarray) -> float:
    """Independent reference: tr((S1 S2)^1/2) = sum sqrt(eig(S1^1/2 S2 S1^1/2)), all by symmetric eigh."""
    mu1, mu2 = f1.mean(0), f2.mean(0)
    s1, s2 = np.cov(f1, rowvar=False), np.cov(f2, rowvar=False)
    w, v = np.linalg.eigh(s1)
    r1 = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    m = np.linalg.eigvalsh(r1 @ s2 @ r1)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.sqrt(np.clip(m, 0, None)).sum())


def test_frechet_univariate_gaussians_analytic():
    # d^2 = (mu1 - mu2)^2 + (s1 - s2)^2 for 1-D Gaussians
    a = FIDStats(mu=np.array([1.0]), sigma=np.array([[4.0]]), n=10)
    b = FIDStats(mu=np.array([-2.0]), sigma=np.array([[9.0]]), n=10)
    assert frechet_distance(a, b) == pytest.approx(9.0 + 1.0, abs=1e-12)


def test_frechet_diagonal_covariances_analytic():
    rng = np.random.default_rng(0)
    mu1, mu2 = rng.normal(size=5), rng.normal(size=5)
    v1, v2 = rng.uniform(0.5, 2, 5), rng.uniform(0.5, 2, 5)
    expected = ((mu1 - mu2) ** 2).sum() + ((np.sqrt(v1) - np.sqrt(v2)) ** 2).sum()
    got = frechet_distance(FIDStats(mu1, np.diag(v1), 2), FIDStats(mu2, np.diag(v2), 2))
    assert got == pytest.approx(expected, rel=1e-10)


def test_frechet_equals_independent_computation_on_features():
    rng = np.random.default_rng(1)
    f1 = rng.normal(size=(200, 16))
    f2 = rng.normal(size=(150, 16)) @ rng.normal(size=(16, 16)) * 0.5 + 0.3
    assert frechet_distance(f1, f2) == pytest.approx(frechet_by_eigenvalues(f1, f2), rel=1e-8)
    assert frechet_distance(f1, f1) == pytest.approx(0.0, abs=1e-8)
    with pytest.warns(UserWarning, match="singular"):  # fewer samples than feature dimensions
        frechet_distance(f1[:10], f2[:10])
    assert frechet_distance(f1, f2) == pytest.approx(frechet_distance(f2, f1), rel=1e-8)
    # against scipy's sqrtm written out directly
    s1, s2 = np.cov(f1, rowvar=False), np.cov(f2, rowvar=False)
    direct = ((f1.mean(0) - f2.mean(0)) ** 2).sum() + np.trace(s1 + s2 - 2 * scipy.linalg.sqrtm(s1 @ s2).real)
    assert frechet_distance(f1, f2) == pytest.approx(direct, rel=1e-10)


def test_frechet_bad_input():
    with pytest.raises(ValueError, match="dimensions"):
        frechet_distance(np.zeros((4, 3)) + np.arange(4)[:, None], np.zeros((4, 2)) + np.arange(4)[:, None])
    with pytest.raises(ValueError, match="N >= 2"):
        frechet_distance(np.zeros((1, 3)), np.zeros((5, 3)))


class TinyExtractor(nn.Module):
    """A fixed random projection of 8x8-pooled images: stands in for Inception in fast tests."""

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.register_buffer("proj", torch.randn(3 * 8 * 8, 6, generator=g))

    def forward(self, x):
        return nn.functional.adaptive_avg_pool2d(x, 8).flatten(1) @ self.proj


def test_rfid_pipeline_with_a_tiny_extractor():
    g = torch.Generator().manual_seed(0)
    real = (torch.rand(40, 3, 16, 16, generator=g) * 255).to(torch.uint8)  # uint8 is accepted
    recon = real.float() / 255 * 0.8
    ext = TinyExtractor()
    res = rfid(real, recon, extractor=ext, batch_size=7, progress=False)
    f_real = ext(real.float() / 255).double().numpy()
    f_rec = ext(recon).double().numpy()
    assert res.value == pytest.approx(frechet_by_eigenvalues(f_real, f_rec), rel=1e-6)
    assert (res.n_real, res.n_recon, res.name) == (40, 40, "rfid_40")
    assert res.as_dict()["rfid_n_recon"] == 40 and float(res) == res.value
    with pytest.raises(ValueError, match="differ in shape"):
        rfid(real, recon[:, :, :8], extractor=ext, progress=False)


def test_fidstats_roundtrip(tmp_path):
    rng = np.random.default_rng(0)
    s = FIDStats.from_features(rng.normal(size=(10, 4)))
    t = FIDStats.load(s.save(tmp_path / "a" / "s.npz"))
    np.testing.assert_array_equal(s.mu, t.mu)
    np.testing.assert_array_equal(s.sigma, t.sigma)
    assert t.n == 10


def _structured_images(n: int, size: int = 32, seed: int = 0) -> torch.Tensor:
    """Random coloured rectangles on stripes: sharp edges, so blurring changes the Inception features."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 3, 1, 1, generator=g).expand(n, 3, size, size).clone()
    col = torch.arange(size).view(1, -1).float()
    for i in range(n):
        for _ in range(3):
            a, b = sorted(torch.randint(0, size, (2,), generator=g).tolist())
            c, d = sorted(torch.randint(0, size, (2,), generator=g).tolist())
            x[i, :, a:b + 3, c:d + 3] = torch.rand(3, 1, 1, generator=g)
        period = float(torch.randint(3, 8, (1,), generator=g))
        x[i] *= 0.75 + 0.25 * torch.sign(torch.sin(col * 6.2832 / period))
    return x.clamp(0, 1)


@pytest.mark.weights("fid-inception")
@pytest.mark.filterwarnings("ignore:Fréchet distance from")
def test_inception_features_and_cached_real_statistics(tmp_path, monkeypatch):
    weights_file = require("fid-inception")
    monkeypatch.setenv("SPECVAE_CACHE", str(tmp_path))  # a fresh stats cache; the network from where it was
    monkeypatch.setenv("SPECVAE_WEIGHTS", str(weights_file.parent.parent))
    x = _structured_images(4)
    s1 = real_statistics(x, dataset="unit", split="test", batch_size=4, progress=False)
    files = list((tmp_path / "fid_stats").glob("unit-test-32x32-n4-*.npz"))
    assert len(files) == 1 and s1.n == 4
    net = InceptionFeatures()
    feats = inception_features(x, extractor=net, batch_size=4, progress=False)
    assert feats.shape == (4, 2048) and np.isfinite(feats).all() and feats.min() >= 0  # pool3 after ReLU
    np.testing.assert_allclose(FIDStats.from_features(feats).mu, s1.mu, rtol=1e-5, atol=1e-6)
    assert abs(frechet_distance(feats, feats)) < 1e-2  # FID(X, X) = 0 up to sqrtm's precision

    def boom(*a, **k):
        raise AssertionError("the real statistics should have come from the cache")

    monkeypatch.setattr(fidmod, "inception_features", boom)
    s2 = real_statistics(x, dataset="unit", split="test", progress=False)
    np.testing.assert_array_equal(s1.sigma, s2.sigma)


@pytest.mark.weights("fid-inception")
@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:Fréchet distance from")
def test_fid_grows_with_blur_and_matches_direct_computation():
    import torchvision.transforms.functional as TF

    require("fid-inception")
    x = _structured_images(5, seed=1)
    feats = {0.0: inception_features(x, batch_size=5, progress=False)}
    for s in (0.7, 1.5, 3.0):
        xb = TF.gaussian_blur(x, kernel_size=2 * int(3 * s) + 1, sigma=s)
        feats[s] = inception_features(xb, batch_size=5, progress=False)
    fids = [frechet_distance(feats[0.0], feats[s]) for s in (0.7, 1.5, 3.0)]
    assert fids[0] > 1.0 and fids[0] < fids[1] < fids[2], fids
    for s in (0.7, 3.0):
        assert frechet_distance(feats[0.0], feats[s]) == pytest.approx(
            frechet_by_eigenvalues(feats[0.0], feats[s]), rel=1e-4)

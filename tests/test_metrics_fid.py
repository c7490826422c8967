"""Fréchet distance (analytic cases, an independent eigenvalue computation) and rFID with the TF Inception."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch
import torch.nn as nn
import torch.nn.functional as F

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


# ------------------------------------------------------------------------------------------ the eager network
def test_folded_batchnorm_conv_equals_conv_then_tf_batchnorm():
    """The fold TFInception.load_torchscript_state applies: conv → BN(no scale, eps 1e-3) → ReLU, written out."""
    from specvae.metrics.fid import TFInception

    g = torch.Generator().manual_seed(0)
    net = TFInception()
    ref = {}
    for name, theirs in fidmod._torchscript_names().items():  # a random state of the file's layout
        mod = net.get_submodule(name)
        conv = mod.conv if isinstance(mod, fidmod._PoolBranch) else mod
        for t, w in zip(theirs, _split_out(conv.weight.shape, theirs, name)):
            ref[f"net.layers.{t}.weight"] = torch.randn(w, *conv.weight.shape[1:], generator=g) * 0.1
            ref[f"net.layers.{t}.beta"] = torch.randn(w, generator=g)
            ref[f"net.layers.{t}.mean"] = torch.randn(w, generator=g)
            ref[f"net.layers.{t}.var"] = torch.rand(w, generator=g) + 0.01
    net.load_torchscript_state(ref)
    x = torch.randn(2, 3, 9, 9, generator=g)
    conv = net.conv  # the stem conv: 3 → 32, 3×3, stride 2
    p = "net.layers.conv."
    expected = F.relu(F.batch_norm(F.conv2d(x, ref[p + "weight"], None, 2), ref[p + "mean"], ref[p + "var"], None,
                                   ref[p + "beta"], False, 0.0, 1e-3))
    with torch.no_grad():
        torch.testing.assert_close(conv(x), expected, rtol=1e-5, atol=1e-5)
    # a stacked 1×1 group: its second member's channels are the TorchScript conv of that name
    p = "net.layers.mixed.tower.conv."
    y = torch.randn(2, 192, 5, 5, generator=g)
    expected = F.relu(F.batch_norm(F.conv2d(y, ref[p + "weight"]), ref[p + "mean"], ref[p + "var"], None,
                                   ref[p + "beta"], False, 0.0, 1e-3))
    with torch.no_grad():
        torch.testing.assert_close(net.mixed.heads(y)[:, 64:112], expected, rtol=1e-5, atol=1e-5)
    with pytest.raises(KeyError, match="lacks"):
        TFInception().load_torchscript_state({k: v for k, v in ref.items() if "mixed_10" not in k})


def _split_out(shape, theirs, name):
    """Output channels of each TorchScript conv stacked into one of our convs (the widths of the paper's net)."""
    if len(theirs) == 1:
        return [shape[0]]
    if name.endswith("heads"):
        blk = name.split(".")[0]
        if blk in ("mixed", "mixed_1", "mixed_2"):
            return [64, 48, 64]
        if blk == "mixed_8":
            return [192, 192]
        if blk in ("mixed_9", "mixed_10"):
            return [320, 384, 448]
        c7 = (shape[0] - 192) // 2
        return [192, c7, c7]
    raise AssertionError(name)


def test_pool_branch_conv_and_average_pool_commute():
    """relu(conv1x1(avgpool(x)) + b) == relu(avgpool(conv1x1(x)) + b), count_include_pad=False, borders included."""
    g = torch.Generator().manual_seed(0)
    branch = fidmod._PoolBranch(7, 5)
    branch.conv.weight.data = torch.randn(5, 7, 1, 1, generator=g)
    branch.bias.data = torch.randn(5, generator=g)
    x = torch.randn(3, 7, 6, 5, generator=g)
    pooled = F.avg_pool2d(x, 3, 1, 1, count_include_pad=False)
    expected = F.relu(F.conv2d(pooled, branch.conv.weight, branch.bias))
    with torch.no_grad():
        torch.testing.assert_close(branch(x), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_fused_conv_relu_equals_conv_then_relu(dtype):
    from specvae.metrics.precision import conv_relu

    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 8, 11, 9, generator=g).to(dtype=dtype, memory_format=torch.channels_last)
    w = (torch.randn(6, 8, 1, 7, generator=g) * 0.2).to(dtype=dtype, memory_format=torch.channels_last)
    b = torch.randn(6, generator=g).to(dtype)
    with torch.no_grad():
        for stride, pad, relu in ((1, (0, 3), True), (2, (0, 0), True), (1, (0, 3), False)):
            ref = F.conv2d(x, w, b, stride, pad)
            ref = F.relu(ref) if relu else ref
            got = conv_relu(x, w, b, stride, pad, relu)
            tol = 0 if dtype == torch.float32 else 1e-2
            torch.testing.assert_close(got.float(), ref.float(), rtol=tol, atol=tol)
    # with autograd it falls back to conv2d + relu and the gradient is the textbook one
    xr = x.float().contiguous().requires_grad_(True)
    conv_relu(xr, w.float(), b.float(), 1, (0, 3)).sum().backward()
    xs = x.float().contiguous().requires_grad_(True)
    F.relu(F.conv2d(xs, w.float(), b.float(), 1, (0, 3))).sum().backward()
    torch.testing.assert_close(xr.grad, xs.grad)


def test_precision_is_checked_and_recorded(tmp_path, monkeypatch):
    monkeypatch.setenv("SPECVAE_CACHE", str(tmp_path))
    with pytest.raises(ValueError, match="fp32, bf16"):
        fidmod.check_precision("fp16")
    with pytest.raises(ValueError, match="precision must be"):
        rfid(torch.rand(4, 3, 8, 8), torch.rand(4, 3, 8, 8), extractor=TinyExtractor(), precision="half")
    ext = TinyExtractor()
    ext.precision = "fp32"
    res = rfid(torch.rand(6, 3, 16, 16), torch.rand(6, 3, 16, 16), extractor=ext, progress=False)
    assert res.precision == "fp32" and res.as_dict()["rfid_precision"] == "fp32"
    assert rfid(torch.rand(6, 3, 16, 16), torch.rand(6, 3, 16, 16), extractor=TinyExtractor(),
                progress=False).precision == "unknown"  # a custom extractor that does not say
    # the real statistics' cache key names the precision: bf16 and fp32 statistics never mix
    calls = []
    monkeypatch.setattr(fidmod, "inception_features", lambda images, **kw: calls.append(kw["precision"]) or
                        images.float().mean(dim=(2, 3)).double().numpy())
    x = torch.rand(5, 3, 8, 8)
    real_statistics(x, dataset="unit", precision="bf16", progress=False)
    real_statistics(x, dataset="unit", precision="fp32", progress=False)
    real_statistics(x, dataset="unit", precision="bf16", progress=False)  # from the cache
    assert calls == ["bf16", "fp32"]
    names = sorted(p.name for p in (tmp_path / "fid_stats").glob("unit-*.npz"))
    assert len(names) == 2 and "-bf16-" in names[0] and "-fp32-" in names[1]


def test_rfid_takes_reconstructions_batch_by_batch():
    g = torch.Generator().manual_seed(0)
    real = (torch.rand(30, 3, 16, 16, generator=g) * 255).to(torch.uint8)
    recon = real.float() / 255 * 0.7 + 0.1
    ext = TinyExtractor()
    whole = rfid(real, recon, extractor=ext, batch_size=8, progress=False)
    seen = []

    def decode():  # a generator, as a chapter would decode its reconstructions
        for i in range(0, 30, 7):
            seen.append(i)
            yield recon[i:i + 7]

    streamed = rfid(real, decode(), extractor=ext, batch_size=8, progress=False)
    # the extractor sees other batch sizes (7 instead of 8): float32 kernels may sum in another order for another
    # batch size (on AMD EPYC the FID moved by 1e-7 relative; on Intel Xeon it did not), hence float32's tolerance
    assert streamed.value == pytest.approx(whole.value, rel=1e-6) and streamed.n_recon == 30 and seen == [0, 7, 14,
                                                                                                         21, 28]
    assert rfid(real, [recon[:10], recon[10:]], extractor=ext, progress=False).value == pytest.approx(whole.value,
                                                                                                       rel=1e-6)
    with pytest.raises(ValueError, match="differ in shape"):
        rfid(real, (b[:, :, :8] for b in [recon]), extractor=ext, progress=False)
    with pytest.raises(TypeError, match="iterable"):
        rfid(real, 3.0, extractor=ext, progress=False)


def _tf_range_inputs(n: int = 3, seed: int = 0) -> torch.Tensor:
    x = _structured_images(n, size=32, seed=seed)
    x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
    return (x * 255 - 128) / 128


@pytest.mark.weights
def test_eager_inception_equals_the_torchscript_module():
    """pool3 of TFInception (fp32) equals the pinned TorchScript module's to ≤ 1e-4 relative, through
    InceptionFeatures too (RGB and gray, float and uint8 inputs)."""
    require("fid-inception")
    ts = InceptionFeatures(precision="fp32", backend="torchscript")
    eager = InceptionFeatures(precision="fp32")
    assert eager.backend == "eager" and isinstance(eager.net, fidmod.TFInception)
    assert eager.net.conv.weight.is_contiguous(memory_format=torch.channels_last)
    x = _structured_images(4, size=48, seed=3)
    gray = x[:2].mean(dim=1, keepdim=True)
    with torch.no_grad():
        for inp in (x, gray):
            a, b = ts(inp), eager(inp)
            assert a.shape == b.shape == (inp.shape[0], 2048)
            rel = ((b - a).norm(dim=1) / a.norm(dim=1)).max().item()
            assert rel <= 1e-4, rel
            assert ((b - a).abs().max() / a.abs().max()).item() <= 1e-4
        # the bare networks on TF-range 299×299 input
        z = _tf_range_inputs(2)
        a, b = ts.net(z), eager.net(z.contiguous(memory_format=torch.channels_last))
        assert ((b - a).norm(dim=1) / a.norm(dim=1)).max().item() <= 1e-4
    # bf16 is close but not equal (its effect on FID is measured in specvae.bench.metrics.precision_effect)
    bf16 = InceptionFeatures(precision="bf16")
    with torch.no_grad():
        a, c = ts(x), bf16(x)
    rel = ((c - a).norm() / a.norm()).item()
    assert 1e-4 < rel < 0.1, rel
    with pytest.raises(ValueError, match="fp32 only"):
        InceptionFeatures(precision="bf16", backend="torchscript")


@pytest.mark.weights
@pytest.mark.data
@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:Fréchet distance from")
def test_fid_of_a_reference_pair_equals_the_torchscript_value():
    """FID(faces, blurred faces) with the eager fp32 network equals the TorchScript network's to ≤ 0.1 %."""
    import torchvision.transforms.functional as TF

    from specvae.data import load_dataset

    require("fid-inception")
    faces = load_dataset("faces", "test", limit=48, progress=False).images
    blurred = TF.gaussian_blur(faces.float(), kernel_size=7, sigma=1.0).round().clamp(0, 255).to(torch.uint8)
    values = {}
    for backend in ("torchscript", "eager"):
        ext = InceptionFeatures(precision="fp32", backend=backend)
        values[backend] = rfid(faces, blurred, extractor=ext, batch_size=24, progress=False)
    ts, eager = values["torchscript"].value, values["eager"].value
    assert ts > 1.0  # a real distance, not round-off
    assert abs(eager - ts) / ts <= 1e-3, (eager, ts)
    assert values["eager"].precision == "fp32" and values["eager"].n_recon == 48


def test_default_precision_is_backed_by_the_stored_measurement():
    """rFID uses bf16 by default only if every stored bf16-vs-fp32 measurement is within BF16_FID_BOUND."""
    import json

    from specvae.paths import project_root

    path = project_root() / "book" / "results" / "bench" / "metric_precision.json"
    if not path.is_file():  # not measured: bf16 may not be the default
        assert fidmod.DEFAULT_PRECISION == "fp32", "run `python -m specvae.bench.metrics precision` first"
        return
    rows = [r for r in json.loads(path.read_text())["rows"] if r["metric"] == "rfid"]
    assert {r["pair"] for r in rows} >= {"faces-vs-blur", "mnist-train-vs-test"}
    assert all(r["n"] >= 2000 for r in rows)
    for r in rows:  # the stored flag agrees with the stored numbers
        assert r["within_bound"] == (abs(r["fid_bf16"] - r["fid_fp32"]) / r["fid_fp32"] <= fidmod.BF16_FID_BOUND)
    assert (fidmod.DEFAULT_PRECISION == "bf16") == all(r["within_bound"] for r in rows)


def test_trace_sqrt_product_equals_scipy_sqrtm_also_for_singular_covariances():
    import scipy.linalg

    from specvae.metrics.fid import trace_sqrt_product

    rng = np.random.default_rng(1)
    for n, d in ((500, 64), (8, 64)):  # full rank, then rank 7 of 64 (fewer images than features)
        s1 = np.cov(rng.normal(size=(n, d)), rowvar=False)
        s2 = np.cov(rng.normal(size=(n, d)) * rng.uniform(0.5, 2.0, d), rowvar=False)
        ref = float(np.trace(scipy.linalg.sqrtm(s1 @ s2)).real)
        assert trace_sqrt_product(s1, s2) == pytest.approx(ref, rel=1e-5)
    # commuting case, analytic: diagonal covariances give sum sqrt(a_i b_i)
    a, b = rng.uniform(0.1, 3.0, 10), rng.uniform(0.1, 3.0, 10)
    assert trace_sqrt_product(np.diag(a), np.diag(b)) == pytest.approx(np.sqrt(a * b).sum(), rel=1e-12)

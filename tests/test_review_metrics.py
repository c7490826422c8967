"""Review fixes in the metrics: LPIPS refuses integer images instead of scoring their 0..255 values."""

import pytest
import torch

from specvae.metrics import LPIPS
from specvae.metrics import weights as W


@pytest.mark.weights("lpips-alex")
def test_lpips_rejects_uint8_images_with_what_to_do():
    try:
        W.resolve("lpips-alex", fetch=False)
    except W.WeightsNotFoundError as exc:
        pytest.fail(f"pretrained network lpips-alex is missing: run `specvae weights fetch` first.\n{exc}")
    m = LPIPS("alex")
    x = torch.randint(0, 256, (1, 3, 32, 32), dtype=torch.uint8)
    with pytest.raises(TypeError, match=r"x\.float\(\) / 255"):
        m(x, x)
    # the documented conversion gives a valid distance: zero for identical images
    assert m(x.float() / 255, x.float() / 255).abs().max().item() < 1e-6


def test_unit_information_capacity_names_codes_outside_the_codebook():
    from specvae.metrics.codebook import unit_information_capacity

    codebook = torch.tensor([[0.0], [1.0], [0.5]])
    idx = torch.tensor([[0, 1], [2, 2]])
    images = codebook[idx].reshape(2, 1, 1, 2)

    def decode(ids):
        return codebook[ids].reshape(ids.shape[0], 1, 1, 2)

    with pytest.raises(ValueError, match=r"codes \[-1, 3\] are not code ids .* \[0, 2\]"):
        unit_information_capacity(decode, idx, images, 3, codebook=codebook, codes=[0, -1, 3], progress=False)
    # valid codes: removing code 2 (used twice, replaced by its nearest other code, 0 or 1 at distance 0.5)
    # raises the data set's MSE by 2 * 0.25 / 4 values
    out = unit_information_capacity(decode, idx, images, 3, codebook=codebook, codes=[2], progress=False)
    assert out["base_mse"] == 0.0
    assert out["capacity"][2].item() == pytest.approx(0.125)


def test_real_statistics_cache_accepts_bfloat16_images(tmp_path, monkeypatch):
    import numpy as np

    import specvae.metrics.fid as fidmod

    monkeypatch.setenv("SPECVAE_CACHE", str(tmp_path))
    x = torch.rand(6, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    # a stand-in for the Inception network: per-image channel means (what reaches it is checked to be float)
    monkeypatch.setattr(fidmod, "inception_features",
                        lambda images, **kw: images.float().mean(dim=(2, 3)).double().numpy())
    stats = fidmod.real_statistics(x.bfloat16(), dataset="unit", split="test", progress=False)
    assert len(list((tmp_path / "fid_stats").glob("unit-test-8x8-n6-*.npz"))) == 1
    np.testing.assert_allclose(stats.mu, x.bfloat16().float().mean(dim=(2, 3)).mean(0).double().numpy(), rtol=1e-6)

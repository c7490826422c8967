"""Review fixes in the metrics: LPIPS refuses integer images instead of scoring their 0..255 values."""

import pytest
import torch

from specvae.metrics import LPIPS
from specvae.metrics import weights as W


@pytest.mark.weights
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

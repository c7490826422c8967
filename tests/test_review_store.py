"""Review fix in the results store: bfloat16 tensors (e.g. outputs of a model run under bf16 autocast) encode."""

import numpy as np
import torch

from specvae.experiments.store import decode_array, encode_array


def test_bfloat16_arrays_round_trip_exactly_as_float32():
    x = torch.tensor([0.1, 1.0 / 3.0, -2.5, 1e-3]).bfloat16()
    enc = encode_array(x, "profile")
    assert enc["dtype"] == "float32"
    np.testing.assert_array_equal(decode_array(enc), x.float().numpy())  # every bfloat16 is a float32

"""Frequency Complement Modules: the variants' maths, the positions and the encoder↔decoder pairing."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from specvae.models.fcm import (DEFAULT_POSITIONS, ENCODER_TAP, OFFICIAL_PAIR_ORDER, PAPER_INDEX, AttnFCM, ConvFCM,
                                ResFCM, check_positions, encoder_tap, make_fcm)


def test_pairing_is_the_official_codes() -> None:
    # official lists: enc = [conv_in, down, mid, z]; dec = [FCM_1 .. FCM_4] = [z, dec_in, mid, out]; the loss
    # pairs enc[k] with dec[3 - k] (fact sheet §2)
    enc = ["conv_in", "down", "mid", "z"]
    dec = list(DEFAULT_POSITIONS)
    assert [PAPER_INDEX[p] for p in dec] == [1, 2, 3, 4]
    assert {dec[3 - k]: enc[k] for k in range(4)} == ENCODER_TAP
    assert [ENCODER_TAP[p] for p in OFFICIAL_PAIR_ORDER] == enc
    assert encoder_tap("level2") == "level2"
    with pytest.raises(ValueError, match="unknown FCM position"):
        encoder_tap("up2")


def test_positions_that_do_not_exist_at_f() -> None:
    assert check_positions(("z", "level1"), 3) == ("z", "level1")  # f = 4: one intermediate level
    with pytest.raises(ValueError, match=r"do not exist at f = 4 .*valid positions at this f: z, dec_in, mid, out, "
                                         r"level1"):
        check_positions(("level2",), 3)
    with pytest.raises(ValueError, match="repeat"):
        check_positions(("z", "z"), 3)


def _branch(block, h):
    x = block.conv1(F.silu(block.norm1(h)))
    return block.conv2(F.silu(block.norm2(x)))


def test_conv_fcm_adds_the_complement_and_taps_it() -> None:
    torch.manual_seed(0)
    fcm = ConvFCM(16, groups=8)
    h = torch.randn(2, 16, 5, 5)
    nxt, c = fcm(h)
    torch.testing.assert_close(c, _branch(fcm.block, h))
    torch.testing.assert_close(nxt, h + c)


def test_res_fcm_taps_its_output() -> None:
    torch.manual_seed(0)
    fcm = ResFCM(16, groups=8)
    h = torch.randn(2, 16, 5, 5)
    nxt, tapped = fcm(h)
    torch.testing.assert_close(tapped, h + _branch(fcm.block, h))
    assert nxt is tapped


def test_attn_fcm_has_no_outer_skip_and_out_is_a_resblock() -> None:
    torch.manual_seed(0)
    fcm = AttnFCM(16, groups=8).eval()
    h = torch.randn(2, 16, 3, 4)
    nxt, tapped = fcm(h)
    t = fcm.layer(fcm.norm(h).flatten(2).transpose(1, 2))
    torch.testing.assert_close(tapped, t.transpose(1, 2).reshape(2, 16, 3, 4))
    assert fcm.layer.self_attn.num_heads == 8 and fcm.layer.linear1.out_features == 2048
    assert isinstance(make_fcm("attn", 16, "out", groups=8), ResFCM)
    assert make_fcm("attn", 16, "out", groups=8).block.dropout.p == 0.1
    with pytest.raises(ValueError, match="divisible by 8 heads"):
        AttnFCM(12, groups=4)
    with pytest.raises(ValueError, match="unknown FCM kind"):
        make_fcm("dense", 16, "z")

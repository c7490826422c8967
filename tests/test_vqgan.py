"""VQGAN of FA-VAE: shapes and feature taps at f = 4/8/16, the cosine-EMA quantiser against a hand computation,
the tokenizer API and its safetensors file, and clear errors for bad input."""

from __future__ import annotations

import pytest
import torch

from specvae.models.vqgan import VQGAN, CosineEMAQuantizer, VQGANConfig, parameter_count

CH_MULT = {4: (1, 2, 4), 8: (1, 2, 2, 4), 16: (1, 1, 2, 2, 4)}


def small(f: int = 8, fcm: str | None = "conv", **kw) -> VQGAN:
    torch.manual_seed(0)
    cfg = dict(resolution=32, ch=16, ch_mult=CH_MULT[f], num_res_blocks=1, attn_resolutions=(32 // f,),
               z_channels=16, codebook_size=32, norm_groups=8, fcm=fcm)
    cfg.update(kw)
    return VQGAN(VQGANConfig(**cfg))


@pytest.mark.parametrize("f", [4, 8, 16])
def test_shapes_and_feature_taps(f: int) -> None:
    m = small(f)
    x = torch.rand(2, 3, 32, 32)
    out = m(x)
    h = 32 // f
    assert out.recon_pm.shape == (2, 3, 32, 32) and out.indices.shape == (2, h, h) and out.indices.dtype == torch.long
    assert m.grid_size() == (h, h) and m.f == f and m.codebook_size == 32
    top = 16 * CH_MULT[f][-1]
    want_enc = {"conv_in": (2, 16, 32, 32), "down": (2, top, h, h), "mid": (2, top, h, h), "z": (2, 16, h, h)}
    for i, mult in enumerate(CH_MULT[f]):
        want_enc[f"level{i}"] = (2, 16 * mult, 32 >> i, 32 >> i)
    assert {k: tuple(v.shape) for k, v in out.enc_feats.items()} == want_enc
    # the official loss order: encoder conv_in/down/mid/z with decoder out/mid/dec_in/z (fact sheet §2)
    assert out.pair_names == [("conv_in", "out"), ("down", "mid"), ("mid", "dec_in"), ("z", "z")]
    a, c = out.pairs()
    assert [t.shape for t in a] == [t.shape for t in c]
    assert parameter_count(m) > 0


def test_taps_are_the_layer_outputs_they_name() -> None:
    m = small(8, fcm="conv")
    seen = {}
    hooks = [m.encoder.conv_in.register_forward_hook(lambda mod, i, o: seen.__setitem__("conv_in", o)),
             m.encoder.mid.register_forward_hook(lambda mod, i, o: seen.__setitem__("enc_mid_in", i[0])),
             m.encoder.mid.register_forward_hook(lambda mod, i, o: seen.__setitem__("enc_mid", o)),
             m.decoder.conv_in.register_forward_hook(lambda mod, i, o: seen.__setitem__("dec_conv_in", (i[0], o))),
             m.decoder.mid.register_forward_hook(lambda mod, i, o: seen.__setitem__("dec_mid", o)),
             m.decoder.norm_out.register_forward_hook(lambda mod, i, o: seen.__setitem__("dec_head_in", i[0]))]
    m.eval()
    out = m(torch.rand(2, 3, 32, 32))
    for hk in hooks:
        hk.remove()
    assert torch.equal(out.enc_feats["conv_in"], seen["conv_in"])
    assert torch.equal(out.enc_feats["down"], seen["enc_mid_in"])
    assert torch.equal(out.enc_feats["mid"], seen["enc_mid"])
    assert torch.equal(out.dec_feats["dec_in"], seen["dec_conv_in"][1])
    assert torch.equal(out.dec_feats["mid"], seen["dec_mid"])
    # CONV FCM: the decoder continues with B + C, and the loss sees C (the complement)
    assert torch.allclose(seen["dec_head_in"], out.dec_feats["out"] + out.fcm_feats["out"])
    b_z, c_z = out.dec_feats["z"], out.fcm_feats["z"]
    assert torch.allclose(seen["dec_conv_in"][0], b_z + c_z)
    # in eval the decoder starts from the stored codes (no post-quant conv in FCM models)
    codes = m.quantizer.embed[out.indices].permute(0, 3, 1, 2)
    assert torch.equal(b_z, codes)


def test_res_fcm_taps_the_block_output_and_baseline_has_no_fcm() -> None:
    m = small(8, fcm="res").eval()
    out = m(torch.rand(1, 3, 32, 32))
    fcm = m.decoder.fcms["mid"]
    assert torch.allclose(out.fcm_feats["mid"], fcm.block(out.dec_feats["mid"]))
    base = small(8, fcm=None).eval()
    out = base(torch.rand(1, 3, 32, 32))
    assert out.fcm_feats == {} and out.pair_names == [] and len(base.decoder.fcms) == 0
    assert set(out.dec_feats) == {"z", "dec_in", "mid", "level1", "level2", "out"}  # B, for the figures


def test_intermediate_level_positions_pair_equal_resolutions() -> None:
    m = small(16, fcm="conv", fcm_positions=("z", "level1", "level3", "out"))
    out = m(torch.rand(1, 3, 32, 32))
    assert out.pair_names == [("conv_in", "out"), ("z", "z"), ("level1", "level1"), ("level3", "level3")]
    a, c = out.pairs()
    assert [tuple(t.shape) for t in a] == [tuple(t.shape) for t in c]
    assert tuple(c[2].shape) == (1, 16, 16, 16) and tuple(c[3].shape) == (1, 32, 4, 4)


def test_bad_configs_and_inputs_are_clear_errors() -> None:
    with pytest.raises(ValueError, match=r"f = 16 .* does not divide the image size 40"):
        VQGANConfig(resolution=40, ch_mult=(1, 1, 2, 2, 4))
    with pytest.raises(ValueError, match=r"level3.* do not exist at f = 4"):
        VQGANConfig(resolution=32, ch_mult=(1, 2, 4), fcm="conv", fcm_positions=("z", "level3"))
    with pytest.raises(ValueError, match="level1"):
        VQGANConfig(resolution=32, ch_mult=(1, 2), fcm="conv", fcm_positions=("level1",))
    with pytest.raises(ValueError, match="fcm must be"):
        VQGANConfig(fcm="dense")
    with pytest.raises(ValueError, match="divisible by 32"):
        VQGAN(VQGANConfig(resolution=32, ch=16, ch_mult=(1, 2), z_channels=16, attn_resolutions=()))
    m = small(8)
    with pytest.raises(ValueError, match=r"36x36 is not divisible by the down-sampling factor f = 8"):
        m(torch.rand(1, 3, 36, 36))
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        m(torch.rand(3, 32, 32))
    with pytest.raises(ValueError, match="indices must lie in"):
        m.decode_indices(torch.full((1, 4, 4), 32))


def test_quantizer_lookup_and_ema_step_by_hand() -> None:
    q = CosineEMAQuantizer(3, 2, decay=0.8, commitment_weight=1.0)
    e = torch.tensor([[1.0, 0.0], [0.0, 2.0], [-0.6, -0.8]])  # code 1 deliberately not unit length
    q.embed.copy_(e)
    # z: (N=1, d=2, h=1, w=4): two vectors near code 0 (one long), one near code 1 (cosine), none near code 2
    z = torch.tensor([[3.0, 1.0], [0.5, 0.0], [0.1, 5.0], [1.0, 0.2]]).t().reshape(1, 2, 1, 4)
    q.train()
    zq, idx, loss = q(z)
    assert idx.tolist() == [[[0, 0, 1, 0]]]
    # straight-through output equals the stored (pre-update, not re-normalised) codes
    zflat = z.reshape(2, 4).t()
    codes = e[[0, 0, 1, 0]]
    torch.testing.assert_close(zq.reshape(2, 4).t(), codes)
    torch.testing.assert_close(loss, ((codes - zflat) ** 2).mean())
    # EMA by hand: code k <- 0.8 e_k + 0.2 normalize(mean of normalised z assigned to k); no hits: normalize(e_k)
    zn = zflat / zflat.norm(dim=1, keepdim=True)
    m0 = zn[[0, 1, 3]].mean(0)
    m0 = m0 / m0.norm()
    m1 = zn[2] / zn[2].norm()
    m2 = e[2] / e[2].norm()
    want = torch.stack([0.8 * e[0] + 0.2 * m0, 0.8 * e[1] + 0.2 * m1, 0.8 * e[2] + 0.2 * m2])
    torch.testing.assert_close(q.embed, want)
    # gradients pass straight through to z; eval: no EMA, loss 0, raw codes
    zz = z.clone().requires_grad_(True)
    q(zz)[0].sum().backward()
    torch.testing.assert_close(zz.grad, torch.ones_like(z))
    q.eval()
    before = q.embed.clone()
    zq, idx, loss = q(z)
    assert torch.equal(q.embed, before) and loss.item() == 0.0
    torch.testing.assert_close(zq.reshape(2, 4).t(), before[idx.flatten()])


def test_tokenizer_round_trip_and_file(tmp_path) -> None:
    m = small(8, fcm="conv")
    x = torch.rand(3, 3, 32, 32)
    m.train()
    m(x)  # one EMA step, so the saved codebook is not the initial one
    idx = m.encode_indices(x)
    assert idx.shape == (3, 4, 4) and idx.dtype == torch.long and m.training  # flag restored
    img = m.decode_indices(idx)
    assert img.shape == (3, 3, 32, 32) and img.min() >= 0 and img.max() <= 1
    torch.testing.assert_close(img, m.reconstruct(x))  # decoding the indices = the eval reconstruction
    path = m.save_tokenizer(tmp_path / "tok.safetensors", metadata={"run": "abc"})
    back = VQGAN.load_tokenizer(path)
    assert back.config == m.config and not back.training
    assert torch.equal(back.encode_indices(x), idx)
    torch.testing.assert_close(back.decode_indices(idx), img)
    half = m.save_tokenizer(tmp_path / "half.safetensors", dtype=torch.bfloat16)
    assert half.stat().st_size < 0.6 * path.stat().st_size
    assert torch.equal(VQGAN.load_tokenizer(half).quantizer.embed, m.quantizer.embed)  # codebook kept exact
    with pytest.raises(FileNotFoundError, match="no tokenizer file"):
        VQGAN.load_tokenizer(tmp_path / "missing.safetensors")
    from safetensors.torch import save_file

    save_file({"a": torch.zeros(1)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(ValueError, match="not a specvae VQGAN tokenizer"):
        VQGAN.load_tokenizer(tmp_path / "other.safetensors")


def test_attention_resolutions_place_attention() -> None:
    from specvae.models.taming import AttnBlock

    m = small(8, attn_resolutions=(8,))
    enc_attn = [type(a).__name__ for lv in m.encoder.levels for a in lv.attn]
    # levels at 32, 16, 8, 4 px with one block each: attention only at 8 px
    assert enc_attn == ["Identity", "Identity", "AttnBlock", "Identity"]
    assert isinstance(m.encoder.mid[1], AttnBlock)


def test_attn_block_is_one_head_attention_over_positions() -> None:
    from specvae.models.taming import AttnBlock

    torch.manual_seed(0)
    blk = AttnBlock(8, groups=4)
    x = torch.randn(2, 8, 3, 5)
    t = blk.norm(x).flatten(2).transpose(1, 2)
    w_q, w_k, w_v = blk.attn.in_proj_weight.chunk(3)
    b_q, b_k, b_v = blk.attn.in_proj_bias.chunk(3)
    q, k, v = t @ w_q.T + b_q, t @ w_k.T + b_k, t @ w_v.T + b_v
    a = torch.softmax(q @ k.transpose(1, 2) / 8**0.5, dim=-1) @ v
    o = a @ blk.attn.out_proj.weight.T + blk.attn.out_proj.bias
    torch.testing.assert_close(blk(x), x + o.transpose(1, 2).reshape(2, 8, 3, 5), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_layout_safe_group_norm_equals_torch_group_norm(dtype: torch.dtype) -> None:
    """taming.GroupNorm (computed on a contiguous copy) gives nn.GroupNorm's output and gradients, keeps the
    channels-last layout of its input, and loads nn.GroupNorm's state dict."""
    from specvae.models.taming import GroupNorm, Normalize

    torch.manual_seed(0)
    ref = torch.nn.GroupNorm(8, 32, eps=1e-5)
    with torch.no_grad():
        ref.weight.uniform_(0.5, 1.5)
        ref.bias.uniform_(-0.5, 0.5)
    ours = Normalize(32, 8)
    assert isinstance(ours, GroupNorm) and isinstance(ours, torch.nn.GroupNorm)
    ours.load_state_dict(ref.state_dict())
    base = (torch.randn(4, 32, 16, 16) * 3 + 1).to(dtype)
    outs = []
    for mod in (ref, ours):
        x = base.clone().contiguous(memory_format=torch.channels_last).requires_grad_(True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == torch.bfloat16):
            y = mod(x)
        (y.float() * torch.linspace(-1, 1, 16)).sum().backward()
        outs.append((y, x.grad, mod.weight.grad.clone()))
    (y_ref, gx_ref, gw_ref), (y, gx, gw) = outs
    assert y.is_contiguous(memory_format=torch.channels_last) and not y.is_contiguous()
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == torch.float32 else dict(rtol=2e-2, atol=2e-2)
    torch.testing.assert_close(y.float(), y_ref.float(), **tol)
    torch.testing.assert_close(gx.float(), gx_ref.float(), **tol)
    torch.testing.assert_close(gw, gw_ref, rtol=1e-4 if dtype == torch.float32 else 2e-2, atol=1e-4)
    # and a contiguous input stays contiguous
    assert ours(base.float()).is_contiguous()

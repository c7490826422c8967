"""FQ-VAE's parts (dynamic filter eqs. 3-5, FFT round trip, GCM eq. 12, token parity) and the baselines' models."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from specvae.models.fqvae import FQVAE, GCM, DynamicFilter, check_token_parity, frequency_code_dim, token_pairs
from specvae.models.quantizers import HQAQuantizer, VectorQuantizer
from specvae.models.vqvae import HQAStack, VQAutoencoder, check_divisible, to_signed


def _filter(D=2, N=3, h=6, w=8, route_in=5, seed=0):
    torch.manual_seed(seed)
    return DynamicFilter(D, N, h, w, route_in=route_in)


# ------------------------------------------------------------------------------------------------ eqs. 3-5
def test_routing_is_eq4_softmax_over_filters_channel_major():
    f = _filter(D=3, N=4)
    feats = torch.randn(2, 5, 6, 8)
    m = f.coefficients(feats).detach().double().numpy()  # (B, N·D), entry d·N + i
    r = f.routing(feats).detach().numpy()
    for b in range(2):
        for d in range(3):
            ex = np.exp(m[b, d * 4:(d + 1) * 4])
            np.testing.assert_allclose(r[b, d], ex / ex.sum(), rtol=1e-5)
    # the MLP sees the global average pool of the features
    torch.testing.assert_close(f.coefficients(feats), f.route(feats.mean(dim=(2, 3))))


def test_filter_mixing_equals_direct_einsum_and_eq3():
    f = _filter(D=2, N=3, h=6, w=8)
    z = torch.randn(2, 2, 6, 8)
    feats = torch.randn(2, 5, 6, 8)
    r = f.routing(feats)
    K = (f.bases[..., 0] + 1j * f.bases[..., 1]).detach().to(torch.complex64)  # (N, h, w/2+1)
    want = torch.einsum("bdn,nhw->bdhw", r.detach().to(torch.complex64), K)
    torch.testing.assert_close(f.filters(r).detach(), want)
    spec = torch.fft.rfft2(z, norm="ortho")
    comps = f.components(z, r).detach()
    assert comps.shape == (2, 2, 3, 6, 5)
    for i in range(3):  # Y_{d,i} = r_{d,i} K_i ⊙ F_d
        torch.testing.assert_close(comps[:, :, i], r.detach()[:, :, i, None, None] * K[i] * spec)
    # eq. 3 with eq. 5: z_e = (Σ_i r_i K_i) ⊙ F = Σ_i Y_i
    torch.testing.assert_close(f(z, feats).detach(), comps.sum(2), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("h,w", [(28, 28), (32, 32), (6, 7)])
def test_rfft2_irfft2_round_trip_is_exact(h, w):
    f = _filter(D=2, N=1, h=h, w=w)
    z = torch.randn(3, 2, h, w)
    spec = f.spectrum(z)
    np.testing.assert_allclose(spec.numpy(), np.fft.rfft2(z.numpy().astype(np.float64), norm="ortho"), rtol=1e-4,
                               atol=1e-5)
    torch.testing.assert_close(f.inverse(spec), z, rtol=0, atol=2e-6)


def test_fft_runs_in_float32_under_bf16_autocast():
    f = _filter()
    z = torch.randn(2, 2, 6, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        spec = f.spectrum(z.to(torch.bfloat16))
        back = f.inverse(spec)
    assert spec.dtype == torch.complex64 and back.dtype == torch.float32


def test_components_recombine_to_the_conv_stage_output():
    """With every basis K_i = 1 the filter is the identity (Σ_i r_i = 1): tokens → sum over i → IFFT gives z."""
    m = FQVAE(1, 8, D=2, N=8, f=2, hidden=8, res_hidden=4, n_res=1, gcm=False, codebook_update="none")
    with torch.no_grad():
        m.filter.bases.zero_()
        m.filter.bases[..., 0] = 1.0
    m.decoder = nn.Identity()  # detokenize then returns (z + 1)/2 of the recombined maps
    x = torch.rand(3, 1, 8, 8)
    tokens = m.tokenize(x)
    assert tokens.shape == (3, 16, frequency_code_dim(8, 8))
    z = m.stage(to_signed(x))
    torch.testing.assert_close(m.detokenize(tokens), (z + 1) / 2, rtol=0, atol=1e-5)


# ------------------------------------------------------------------------------------------------ eq. 12
def test_gcm_shapes_and_roles():
    torch.manual_seed(0)
    g = GCM(6)
    s = torch.rand(4, 6)
    w = g(s)
    assert w.shape == (4, 6) and bool(((w > 0) & (w < 1)).all())
    # A: the identity, fixed (a buffer, not a parameter)
    assert torch.equal(g.A, torch.eye(6)) and "A" not in dict(g.named_parameters())
    # B: diagonal, from a 1-D convolution + softmax over the vertices
    y = g.proj(s)
    b = g.vertex_weights(y)
    torch.testing.assert_close(b, torch.softmax(g.vertex_conv(y[:, None]).squeeze(1), dim=-1))
    torch.testing.assert_close(b.sum(1), torch.ones(4))
    # C: a learnable U × U adjacency initialised to 1e-6
    assert g.C.requires_grad and g.C.shape == (6, 6) and torch.all(g.C == 1e-6)
    adj = g.adjacency(y)
    torch.testing.assert_close(adj, torch.diag_embed(b) + g.C)
    # the forward is f̂ = W f (A × B + C), then ReLU(Conv1d), then sigmoid(linear)
    graph = torch.einsum("bu,buv->bv", y, adj)
    want = torch.sigmoid(g.out(torch.relu(g.mix(graph[:, None]).squeeze(1))))
    torch.testing.assert_close(w, want)
    w.sum().backward()
    assert g.C.grad is not None and g.C.grad.abs().sum() > 0


def test_gcm_with_zero_adjacency_weights_each_vertex_by_itself():
    """With C = 0 the graph product is y ⊙ diag(B): a vertex's output does not depend on the other vertices."""
    g = GCM(5)
    with torch.no_grad():
        g.C.zero_()
    y = torch.randn(1, 5)
    out = torch.einsum("bu,buv->bv", y, g.adjacency(y))
    torch.testing.assert_close(out, y * g.vertex_weights(y))


def test_fqvae_gcm_reweights_each_component():
    torch.manual_seed(0)
    m = FQVAE(1, 8, D=1, N=4, f=4, hidden=8, res_hidden=4, n_res=1, gcm=True, codebook_update="none").eval()
    q = torch.randn(2, 4, m.code_dim)
    w = m.gcm(m.vertex_summary(q))
    torch.testing.assert_close(m.refine(q), q * w[..., None])
    # the vertex summary of a complex component is its mean modulus
    mod = torch.view_as_complex(q.reshape(2, 4, -1, 2).contiguous()).abs().mean(-1)
    torch.testing.assert_close(m.vertex_summary(q), mod)


# ------------------------------------------------------------------------------------------------ the model
def test_fqvae_shapes_code_dims_and_token_parity():
    mn = FQVAE(1, 28, D=1, N=49)
    assert (mn.tokens, mn.code_dim) == (49, 840)
    ci = FQVAE(3, 32, D=2, N=32, hidden=16, res_hidden=8)
    x = torch.rand(2, 3, 32, 32)
    recon, idx, terms = ci(x)
    assert recon.shape == x.shape and idx.shape == (2, 64) and ci.code_dim == 1088
    assert {"loss", "codebook", "commitment", "perplexity", "mean_delta"} <= set(terms)
    assert check_token_parity((64, 64), 4, 2, 128) == 256
    assert token_pairs(49) == [(1, 49), (7, 7), (49, 1)]


def test_bad_input_errors_name_the_values():
    with pytest.raises(ValueError, match=r"D·N = 3·20 = 60 .* 8·8 = 64 code vectors.*D=2, N=32"):
        FQVAE(3, 32, D=3, N=20)
    with pytest.raises(ValueError, match=r"30×30 is not divisible by the down-sampling factor f = 4.*28 or 32"):
        FQVAE(3, 30, D=2, N=32)
    with pytest.raises(ValueError, match=r"30×30 is not divisible"):
        check_divisible(30, 30, 4)
    m = FQVAE(1, 28, D=1, N=49, hidden=8, res_hidden=4)
    with pytest.raises(ValueError, match=r"built for \(1, 28, 28\) images; got a batch of shape \(2, 1, 32, 32\)"):
        m(torch.rand(2, 1, 32, 32))
    with pytest.raises(ValueError, match="unknown extractor"):
        FQVAE(extractor="wavelet")
    with pytest.raises(ValueError, match="code dimension"):
        VQAutoencoder(VectorQuantizer(16, 32), 3, code_dim=64)


def test_straight_through_reaches_filters_routing_and_conv_stage():
    torch.manual_seed(0)
    m = FQVAE(1, 8, D=2, N=8, f=2, hidden=8, res_hidden=4, n_res=1).train()
    x = torch.rand(4, 1, 8, 8)
    recon, _, terms = m(x)
    ((recon - x) ** 2).mean().backward()
    for name in ("filter.bases", "filter.route.0.weight", "stage.to_code.weight", "gcm.C", "decoder.body.0.weight"):
        grad = dict(m.named_parameters())[name].grad
        assert grad is not None and grad.abs().sum() > 0, name


@pytest.mark.parametrize("extractor", ["fft", "conv", "transformer"])
def test_decode_codes_equals_forward_in_eval(extractor):
    torch.manual_seed(0)
    m = FQVAE(3, 16, D=2, N=8, extractor=extractor, hidden=8, res_hidden=4, n_res=1, transformer_width=16,
              transformer_heads=2).eval()
    x = torch.rand(2, 3, 16, 16)
    recon, idx, _ = m(x)
    assert idx.shape == (2, 16)
    torch.testing.assert_close(m.decode_codes(idx), recon, rtol=1e-5, atol=1e-5)
    tokens, idx2 = m.latents(x)
    assert torch.equal(idx, idx2) and tokens.shape == (2, 16, m.code_dim)


def test_conv_extractor_without_options_is_the_vqvae_network():
    a = FQVAE(3, 32, extractor="conv", codebook_update="none", gcm=False)
    b = VQAutoencoder(VectorQuantizer(512, 64), 3)
    shapes = lambda m: sorted(tuple(p.shape) for p in m.parameters())  # noqa: E731
    assert shapes(a) == shapes(b)


def test_vq_autoencoder_maps_to_and_from_the_signed_range():
    m = VQAutoencoder(VectorQuantizer(8, 4), 1, hidden=8, res_hidden=4, n_res=1, code_dim=4).eval()
    x = torch.rand(2, 1, 28, 28)
    z = m.encode(x)
    torch.testing.assert_close(z, m.encoder(2 * x - 1))
    recon, idx, _ = m(x)
    assert idx.shape == (2, 7, 7)
    torch.testing.assert_close(recon, (m.decoder(m.quantize(z)[0]) + 1) / 2)


def test_hqa_stack_trains_one_layer_at_a_time():
    torch.manual_seed(0)
    h = HQAStack([HQAQuantizer(16, 4, anneal_steps=5), HQAQuantizer(16, 4, anneal_steps=5)], 1, hidden=8,
                 res_hidden=4, n_res=1, code_dim=4)
    x = torch.rand(3, 1, 28, 28)
    h.set_active_layer(0)
    assert all(not p.requires_grad for p in h.encoders[1].parameters())
    loss, terms = h.layer_loss(x)
    loss.backward()
    assert h.encoders[0].to_code.weight.grad is not None
    h.zero_grad()
    h.set_active_layer(1)
    h.train()
    loss, terms = h.layer_loss(x)
    loss.backward()
    assert h.encoders[0].to_code.weight.grad is None and h.encoders[1].to_code.weight.grad is not None
    # layer 1 reconstructs the normalised z_e of layer 0 (mean ≈ 0 per channel after the running statistics)
    z0 = h.encoders[0](2 * x - 1)
    assert float(h.norms[0].count) == 3 * 14 * 14
    torch.testing.assert_close(h.norms[0].mean.flatten(), z0.mean(dim=(0, 2, 3)).detach(), rtol=1e-4, atol=1e-5)
    h.eval()
    recon, idx, _ = h(x)
    assert recon.shape == x.shape and idx.shape == (3, 7, 7)
    with pytest.raises(ValueError, match="layer 2 does not exist"):
        h.set_active_layer(2)


@pytest.mark.parametrize("extractor,grid", [("fft", (2, 8)), ("conv", (4, 4)), ("transformer", (4, 4))])
def test_tokenizer_interface_round_trips(extractor, grid):
    """encode_indices → decode_indices reproduces the eval-mode reconstruction (the interface a code prior uses)."""
    torch.manual_seed(0)
    m = FQVAE(3, 16, D=2, N=8, extractor=extractor, hidden=8, res_hidden=4, n_res=1, transformer_width=16,
              transformer_heads=2).eval()
    x = torch.rand(2, 3, 16, 16)
    ids = m.encode_indices(x)
    assert m.grid_size == grid and ids.shape == (2, *grid) and m.codebook_size == 512
    torch.testing.assert_close(m.decode_indices(ids), m(x)[0], rtol=1e-5, atol=1e-5)
    v = VQAutoencoder(VectorQuantizer(16, 4), 3, hidden=8, res_hidden=4, n_res=1, code_dim=4, image_size=16).eval()
    assert v.grid_size == (4, 4) and v.codebook_size == 16
    torch.testing.assert_close(v.decode_indices(v.encode_indices(x)), v(x)[0])


def test_global_normalization_is_welford_in_float32_under_bf16():
    from specvae.models.vqvae import GlobalNormalization

    torch.manual_seed(0)
    g = GlobalNormalization(3).train()
    chunks = [torch.randn(4, 3, 5, 5) * torch.tensor([1.0, 1e-3, 10.0]).view(1, 3, 1, 1) + 7 for _ in range(3)]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        for c in chunks:
            out = g(c.to(torch.bfloat16))
    allx = torch.cat([c.to(torch.bfloat16).float() for c in chunks])
    torch.testing.assert_close(g.mean.flatten(), allx.mean(dim=(0, 2, 3)), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(g.std().flatten(), allx.std(dim=(0, 2, 3), unbiased=False), rtol=1e-3, atol=1e-6)
    assert out.dtype == torch.float32 and torch.isfinite(out).all()
    torch.testing.assert_close(g.unnorm(g.eval()(allx)), allx, rtol=1e-5, atol=1e-4)

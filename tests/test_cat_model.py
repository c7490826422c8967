"""CAT: causality, the text padding mask, condition dropout, guidance, filters, seeded sampling and bad input."""

from __future__ import annotations

import math

import pytest
import torch

from specvae.models.cat import (CAT, CATConfig, TextCondition, TokenizerMismatchError, check_tokenizer,
                                filter_logits, guided_logits, sample)

V, GRID, D_TEXT = 24, (3, 4), 384


def model(mode: str = "cross", seed: int = 0, **kw) -> CAT:
    torch.manual_seed(seed)
    m = CAT(CATConfig(vocab_size=V, grid=GRID, width=32, depth=2, heads=4, conditioning=mode, **kw))
    # non-zero nulls and start so that nothing is trivially symmetric
    return m.eval()


def cond(b: int = 3, t: int = 6, seed: int = 1) -> TextCondition:
    g = torch.Generator().manual_seed(seed)
    mask = torch.zeros(b, t, dtype=torch.bool)
    for i in range(b):
        mask[i, : 2 + (i * 2) % (t - 1)] = True
    tokens = torch.randn(b, t, D_TEXT, generator=g) * mask[..., None]
    return TextCondition(tokens=tokens, mask=mask, pooled=torch.randn(b, D_TEXT, generator=g))


def codes(b: int = 3, seed: int = 2) -> torch.Tensor:
    return torch.randint(0, V, (b, GRID[0] * GRID[1]), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("mode", ["cross", "prefix", "none"])
def test_causal_a_token_never_sees_the_future(mode):
    m = model(mode)
    c = None if mode == "none" else cond()
    x = codes()
    base = m(x, c)
    assert base.shape == (3, 12, V)
    for k in range(12):
        y = x.clone()
        y[:, k] = (y[:, k] + 5) % V
        out = m(y, c)
        # logits at positions <= k predict codes 0..k from codes < position: unchanged by code k
        assert torch.equal(out[:, : k + 1], base[:, : k + 1]), k
        if k < 11:
            assert not torch.allclose(out[:, k + 1], base[:, k + 1])  # the next position does see it


def test_text_mask_hides_padding():
    m = model("cross")
    c, x = cond(), codes()
    base = m(x, c)
    t2 = c.tokens.clone()
    t2[~c.mask] = torch.randn(int((~c.mask).sum()), D_TEXT) * 100
    assert torch.equal(m(x, TextCondition(t2, c.mask, c.pooled)), base)
    # a real token does matter
    t3 = c.tokens.clone()
    t3[0, 0] += 1.0
    out = m(x, TextCondition(t3, c.mask, c.pooled))
    assert not torch.allclose(out[0], base[0]) and torch.equal(out[1:], base[1:])


def test_cross_uses_every_token_and_prefix_only_the_pooled_vector():
    c, x = cond(), codes()
    cross, prefix = model("cross"), model("prefix")
    t2 = c.tokens.clone()
    t2[:, 1] += 0.5 * c.mask[:, 1, None]
    changed_tokens = TextCondition(t2, c.mask, c.pooled)
    assert not torch.allclose(cross(x, changed_tokens), cross(x, c))
    assert torch.equal(prefix(x, changed_tokens), prefix(x, c))
    changed_pooled = TextCondition(c.tokens, c.mask, c.pooled + 0.5)
    assert torch.equal(cross(x, changed_pooled), cross(x, c))
    assert not torch.allclose(prefix(x, changed_pooled), prefix(x, c))


@pytest.mark.parametrize("mode", ["cross", "prefix"])
def test_dropped_condition_is_the_unconditional_model(mode):
    m = model(mode)
    c, x = cond(), codes()
    dropped = m(x, c, drop=torch.ones(3, dtype=torch.bool))
    assert torch.allclose(dropped, m(x, None), atol=1e-6)
    other = cond(seed=7)
    assert torch.allclose(m(x, other, drop=torch.ones(3, dtype=torch.bool)), dropped, atol=1e-6)
    mixed = m(x, c, drop=torch.tensor([True, False, True]))
    assert torch.allclose(mixed[1], m(x, c)[1], atol=1e-6) and torch.allclose(mixed[0], dropped[0], atol=1e-6)


def test_condition_dropout_rate_in_training():
    m = model("cross", cond_drop=0.25).train()
    torch.manual_seed(0)
    drops = torch.stack([m._drop_mask(1000, cond(), None, torch.device("cpu")) for _ in range(4)])
    assert abs(float(drops.float().mean()) - 0.25) < 0.03
    assert not m.eval()._drop_mask(1000, cond(), None, torch.device("cpu")).any()


@pytest.mark.parametrize("mode", ["cross", "prefix"])
def test_guidance_formula(mode):
    m = model(mode)
    c, x = cond(), codes()
    full = m(x, c, drop=torch.zeros(3, dtype=torch.bool))
    null = m(x, c, drop=torch.ones(3, dtype=torch.bool))
    assert torch.allclose(guided_logits(m, x, c, 1.0), full, atol=1e-5)
    assert torch.allclose(guided_logits(m, x, c, 0.0), null, atol=1e-6)
    assert torch.allclose(guided_logits(m, x, c, 3.0), null + 3 * (full - null), atol=1e-5)


def test_loss_is_the_mean_cross_entropy_in_nats():
    m = model("cross")
    c, x = cond(), codes()
    logits = m(x, c)
    expect = -logits.log_softmax(-1).gather(-1, x[..., None]).mean()
    assert torch.allclose(m.loss(x, c), expect, atol=1e-6)
    # an untrained model is close to uniform: about log V nats per code
    assert abs(float(m.loss(x, c).detach()) - math.log(V)) < 0.5


def test_kv_cache_decoding_equals_the_full_forward():
    m = model("cross")
    c, x = cond(), codes()
    full = m(x, c)
    caches, ctx, h = m._step_state(3, c, torch.zeros(3, dtype=torch.bool), torch.device("cpu"))
    pos = m.positions()
    for i in range(12):
        step = m._step(h, caches, ctx)
        assert torch.allclose(step, full[:, i], atol=1e-5), i
        h = (m.tok(x[:, i]) + pos[i])[:, None]


def test_filter_logits_top_k_and_top_p_by_hand():
    logits = torch.log(torch.tensor([[0.5, 0.2, 0.15, 0.1, 0.05]]))
    keep = torch.isfinite(filter_logits(logits, top_k=2))
    assert keep.tolist() == [[True, True, False, False, False]]
    # nucleus 0.8: 0.5, 0.7 (< 0.8), then 0.85 crosses 0.8 and is kept
    keep = torch.isfinite(filter_logits(logits, top_p=0.8))
    assert keep.tolist() == [[True, True, True, False, False]]
    keep = torch.isfinite(filter_logits(logits, top_p=0.7))
    assert keep.tolist() == [[True, True, False, False, False]]
    keep = torch.isfinite(filter_logits(logits, top_p=0.01))
    assert keep.tolist() == [[True, False, False, False, False]]
    keep = torch.isfinite(filter_logits(logits[:, [4, 3, 2, 1, 0]], top_k=3, top_p=0.6))
    assert keep.tolist() == [[False, False, False, True, True]]


def test_sampling_is_deterministic_with_a_seed_and_respects_the_filters():
    m = model("cross")
    c = cond()
    a = sample(m, c, guidance=3.0, top_k=5, top_p=0.9, seed=11)
    b = sample(m, c, guidance=3.0, top_k=5, top_p=0.9, seed=11)
    assert a.shape == (3, *GRID) and a.dtype == torch.long and torch.equal(a, b)
    assert not torch.equal(a, sample(m, c, guidance=3.0, top_k=5, top_p=0.9, seed=12))
    # top_k=1 is greedy decoding: the argmax of the guided logits at every step (checked by teacher forcing)
    g = sample(m, c, guidance=2.0, top_k=1, seed=0).flatten(1)
    assert torch.equal(guided_logits(m, g, c, 2.0).argmax(-1), g)
    u = sample(model("none"), None, n=5, top_k=1, seed=0)
    assert u.shape == (5, *GRID)
    # batching does not change the draws' validity: codes stay in range
    assert int(sample(m, c, guidance=0.0, batch_size=2, seed=3).max()) < V


def test_bad_input_is_a_clear_error():
    m = model("cross")
    c = cond()
    with pytest.raises(ValueError, match="guidance scale must be"):
        sample(m, c, guidance=-1.0)
    with pytest.raises(ValueError, match="guidance scale must be"):
        guided_logits(m, codes(), c, -0.5)
    with pytest.raises(ValueError, match="temperature"):
        sample(m, c, temperature=0.0)
    with pytest.raises(ValueError, match="top_p"):
        sample(m, c, top_p=1.5)
    with pytest.raises(ValueError, match="top_k"):
        sample(m, c, top_k=0)
    with pytest.raises(ValueError, match="codes must be"):
        m(torch.zeros(2, 5, dtype=torch.long), None)
    with pytest.raises(ValueError, match="cond.tokens"):
        m(codes(), TextCondition(torch.zeros(3, 4, 100), torch.ones(3, 4, dtype=torch.bool)))
    with pytest.raises(ValueError, match="unconditional"):
        model("none")(codes(), c)
    with pytest.raises(ValueError, match="unconditional sampling needs n"):
        sample(m, None)
    with pytest.raises(ValueError, match="conditioning"):
        CATConfig(vocab_size=8, conditioning="both")
    with pytest.raises(ValueError, match="divisible"):
        CATConfig(vocab_size=8, width=30, heads=4)


def test_tokenizer_whose_codebook_does_not_match_is_refused():
    class Tok:
        codebook_size = 512
        grid_size = (8, 8)

    cfg = CATConfig(vocab_size=256, grid=(8, 8))
    with pytest.raises(TokenizerMismatchError, match="512 codes but the transformer predicts 256"):
        check_tokenizer(cfg, Tok())
    with pytest.raises(TokenizerMismatchError, match="grid"):
        check_tokenizer(CATConfig(vocab_size=512, grid=(4, 4)), Tok())
    check_tokenizer(CATConfig(vocab_size=512, grid=(8, 8)), Tok())


def test_training_learns_a_caption_dependent_distribution():
    # two captions, each always followed by its own fixed code grid: after a few hundred steps the conditional
    # model reproduces each grid greedily, and the unconditional one (guidance 0) cannot tell them apart
    torch.manual_seed(0)
    m = CAT(CATConfig(vocab_size=V, grid=(2, 3), width=32, depth=2, heads=4, dropout=0.0, cond_drop=0.25))
    g = torch.Generator().manual_seed(0)
    tokens = torch.randn(2, 4, D_TEXT, generator=g)
    mask = torch.ones(2, 4, dtype=torch.bool)
    c = TextCondition(tokens, mask, tokens.mean(1))
    target = torch.tensor([[1, 2, 3, 4, 5, 6], [7, 7, 8, 8, 9, 9]])
    opt = torch.optim.Adam(m.parameters(), 3e-3)
    m.train()
    for _ in range(300):
        idx = torch.randint(0, 2, (16,))
        loss = m.loss(target[idx], TextCondition(tokens[idx], mask[idx], c.pooled[idx]))
        opt.zero_grad()
        loss.backward()
        opt.step()
    out = sample(m, c, guidance=1.0, top_k=1, seed=0).flatten(1)
    assert torch.equal(out, target)

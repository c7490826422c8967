"""CAT: an autoregressive transformer over a VQ tokenizer's codes, with cross-attention to every text token.

FA-VAE's text-to-image model (Lin et al. 2023 §3.2, Eq. 11–12) factorises the code grid ``s`` of an image (raster
order) as ``p(s | c) = Π_i p(s_i | s_<i, c)`` and trains by maximum likelihood,
``L_CAT = E[−log p(s | c)]`` — cross-entropy over every position. The condition ``c`` is **all token embeddings**
of the caption, read by a cross-attention layer in every block (rather than one sentence embedding placed at the
start of the sequence, as taming-transformers and CLIP-GEN do).

:class:`CAT` has three conditioning modes (:attr:`CATConfig.conditioning`):

- ``"cross"`` — CAT: each block is ``x += SelfAttn(LN x)`` (causal), ``x += CrossAttn(LN x, text)``,
  ``x += MLP(LN x)``. Cross-attention keys/values are projected from the text tokens; padding is masked out, and a
  learned **null key/value** is always visible (so a dropped condition leaves exactly the null token);
- ``"prefix"`` — the single-embedding baseline of the same width, depth and heads: the pooled sentence embedding,
  projected to the width, **replaces the start token** (a dropped condition gives the learned start token); no
  cross-attention;
- ``"none"`` — unconditional: the same decoder as a prior over codes (the FQ-VAE chapter reuses it).

Sequence layout (as the official code): inputs ``[start, e(s_0) + p_0, …, e(s_{L−2}) + p_{L−2}]`` predict
``s_0 … s_{L−1}``; ``p_k`` is an axial position embedding (a learned row vector plus a learned column vector of
the ``h × w`` grid); the output layer shares the token embedding matrix (tied, as the code). Attention is the
standard multi-head kind (``torch.nn.functional.scaled_dot_product_attention``), not the code's single tied
key = value head with relative-position bias (the fact sheet's open choice 18: a clean multi-head variant).

**Classifier-free guidance** (Ho & Salimans 2022, as the code): in training each sample's condition is dropped
with probability ``cond_drop`` (0.25 in the code); at sampling the logits are
``ℓ = ℓ_null + s · (ℓ_cond − ℓ_null)`` (the code's ``cond_scale``, 3), so ``s = 1`` is the conditional model and
``s = 0`` the unconditional one. Then ``top-k``, then ``top-p`` (nucleus: the smallest set of most likely codes
whose probability reaches p, the one crossing p included), then temperature, then a draw from a seeded generator.

Ref: Lin et al. 2023 §3.2, Eq. 11–12; official FA-VAE code ``models/gpt_ca.py``, ``models/txt_cond_transformer.py``
(layout, null key/value, condition dropout 0.25, cond_scale 3, top-k 500 then top-p 0.95; read and described in
``fa-vae-facts.md`` §6, no code copied); Radford et al. 2019 (GPT-2 pre-norm blocks); Holtzman et al. 2020 (top-p).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "VQTokenizer",
    "CATConfig",
    "CAT",
    "TextCondition",
    "CONDITIONINGS",
    "check_tokenizer",
    "tokenizer_grid",
    "filter_logits",
    "guided_logits",
    "sample",
    "TokenizerMismatchError",
]

CONDITIONINGS = ("cross", "prefix", "none")


@runtime_checkable
class VQTokenizer(Protocol):
    """What CAT needs from an image tokenizer (FA-VAE's VQGAN, :mod:`specvae.models.vqgan`, provides it).

    ``encode_indices(x)``: images ``(N, C, H, W)`` in [0, 1] → code indices, int64 ``(N, h, w)``;
    ``decode_indices(idx)``: ``(N, h, w)`` → images in [0, 1]; ``codebook_size``: number of codes;
    ``grid_size``: ``(h, w)``, or a method returning it for the images the tokenizer was built for (as
    :meth:`specvae.models.vqgan.VQGAN.grid_size`); read it with :func:`tokenizer_grid`.
    """

    codebook_size: int

    def encode_indices(self, x: Tensor) -> Tensor: ...

    def decode_indices(self, idx: Tensor) -> Tensor: ...


class TokenizerMismatchError(ValueError):
    """A tokenizer whose codebook size or code grid does not match the transformer's."""


@dataclass(frozen=True)
class CATConfig:
    """Sizes of a :class:`CAT`.

    Args:
        vocab_size: codebook size of the tokenizer (the output classes).
        grid: ``(h, w)`` code grid (the sequence has ``h·w`` positions).
        width: model width D.
        depth: number of blocks.
        heads: attention heads (``width`` must divide by it).
        text_dim: width of the text features (384 for all-MiniLM-L6-v2; 768 for CLIP ViT-L/14 in the paper).
        conditioning: ``"cross"`` (CAT), ``"prefix"`` (single pooled embedding as the start token) or ``"none"``.
        mlp_ratio: hidden width of the MLP over ``width``.
        dropout: dropout on attention outputs, MLP output and the embeddings (0.1 in the code).
        cond_drop: probability of dropping a sample's condition in training (0.25 in the code).
    """

    vocab_size: int
    grid: tuple[int, int] = (8, 8)
    width: int = 256
    depth: int = 6
    heads: int = 4
    text_dim: int = 384
    conditioning: str = "cross"
    mlp_ratio: int = 4
    dropout: float = 0.1
    cond_drop: float = 0.25

    def __post_init__(self) -> None:
        object.__setattr__(self, "grid", tuple(int(g) for g in self.grid))
        for name in ("vocab_size", "width", "depth", "heads", "text_dim", "mlp_ratio"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"CATConfig.{name} must be a positive int, got {v!r}")
        if len(self.grid) != 2 or min(self.grid) < 1:
            raise ValueError(f"CATConfig.grid must be (h, w) with positive sides, got {self.grid}")
        if self.width % self.heads:
            raise ValueError(f"CATConfig.width={self.width} must be divisible by heads={self.heads}")
        if self.conditioning not in CONDITIONINGS:
            raise ValueError(f"CATConfig.conditioning={self.conditioning!r}: choose one of {CONDITIONINGS}")
        if not 0.0 <= self.dropout < 1.0 or not 0.0 <= self.cond_drop < 1.0:
            raise ValueError(f"CATConfig.dropout and cond_drop must be in [0, 1), got {self.dropout}, {self.cond_drop}")

    @property
    def seq_len(self) -> int:
        return self.grid[0] * self.grid[1]


@dataclass
class TextCondition:
    """The condition of a batch: ``tokens`` ``(B, T, text_dim)`` with ``mask`` ``(B, T)`` (True = real token) for
    ``"cross"``, ``pooled`` ``(B, text_dim)`` for ``"prefix"``. Any object with these attributes works
    (e.g. :class:`specvae.models.text.TextEmbeddings`)."""

    tokens: Tensor | None = None
    mask: Tensor | None = None
    pooled: Tensor | None = None


def tokenizer_grid(tokenizer: Any) -> tuple[int, ...]:
    """A tokenizer's code grid ``(h, w)`` (``grid_size`` as an attribute or a method)."""
    grid = getattr(tokenizer, "grid_size", ())
    if callable(grid):
        grid = grid()
    return tuple(int(g) for g in (grid or ()))


def check_tokenizer(config: CATConfig, tokenizer: Any) -> None:
    """Raise :class:`TokenizerMismatchError` unless ``tokenizer``'s codebook size and grid match ``config``."""
    size = getattr(tokenizer, "codebook_size", None)
    grid = tokenizer_grid(tokenizer)
    if size != config.vocab_size:
        raise TokenizerMismatchError(
            f"the tokenizer has {size} codes but the transformer predicts {config.vocab_size}: train the transformer "
            "on this tokenizer's codes (CATConfig(vocab_size=tokenizer.codebook_size)) or load the tokenizer "
            "checkpoint it was trained with")
    if grid != tuple(config.grid):
        raise TokenizerMismatchError(
            f"the tokenizer makes a {grid} code grid but the transformer models {tuple(config.grid)}: use the same "
            "image size and down-sampling factor as in training")


# ------------------------------------------------------------------------------------------------ layers
class _Attention(nn.Module):
    """Multi-head attention with an optional key/value cache (self) or fixed context (cross)."""

    def __init__(self, width: int, heads: int, dropout: float, *, context_dim: int | None = None,
                 null_kv: bool = False) -> None:
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.q = nn.Linear(width, width)
        kv_in = width if context_dim is None else context_dim
        self.kv = nn.Linear(kv_in, 2 * width)
        self.out = nn.Linear(width, width)
        self.null = nn.Parameter(torch.randn(2, width) * 0.02) if null_kv else None

    def _split(self, t: Tensor) -> Tensor:  # (B, T, D) -> (B, H, T, D/H)
        b, n, d = t.shape
        return t.view(b, n, self.heads, d // self.heads).transpose(1, 2)

    def context_kv(self, context: Tensor, mask: Tensor | None) -> tuple[Tensor, Tensor, Tensor | None]:
        """Keys, values and the boolean attention mask ``(B, 1, 1, T)`` of a context (null pair prepended)."""
        k, v = self.kv(context.to(self.kv.weight.dtype)).chunk(2, -1)
        if self.null is not None:
            b = context.shape[0]
            nk, nv = self.null[0].expand(b, 1, -1).to(k.dtype), self.null[1].expand(b, 1, -1).to(v.dtype)
            k, v = torch.cat([nk, k], 1), torch.cat([nv, v], 1)
            if mask is not None:
                mask = torch.cat([torch.ones_like(mask[:, :1]), mask], 1)
        m = None if mask is None else mask[:, None, None, :].bool()
        return self._split(k), self._split(v), m

    def forward(self, x: Tensor, *, causal: bool = False, cache: dict | None = None,
                context: tuple[Tensor, Tensor, Tensor | None] | None = None) -> Tensor:
        q = self._split(self.q(x))
        if context is not None:
            k, v, m = context
        else:
            k, v = (self._split(t) for t in self.kv(x).chunk(2, -1))
            m = None
            if cache is not None:
                if "k" in cache:
                    k, v = torch.cat([cache["k"], k], 2), torch.cat([cache["v"], v], 2)
                    causal = False  # one new query attends to every cached key
                cache["k"], cache["v"] = k, v
        if m is not None and m.dtype == torch.bool and m.shape[0] != q.shape[0]:
            m = m.expand(q.shape[0], -1, -1, -1)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=m, is_causal=causal and q.shape[2] > 1,
                                           dropout_p=self.dropout if self.training else 0.0)
        b, h, n, d = y.shape
        return self.out(y.transpose(1, 2).reshape(b, n, h * d))


class _Block(nn.Module):
    def __init__(self, c: CATConfig) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(c.width)
        self.attn = _Attention(c.width, c.heads, c.dropout)
        self.cross = c.conditioning == "cross"
        if self.cross:
            self.ln2 = nn.LayerNorm(c.width)
            self.xattn = _Attention(c.width, c.heads, c.dropout, context_dim=c.text_dim, null_kv=True)
        self.ln3 = nn.LayerNorm(c.width)
        self.mlp = nn.Sequential(nn.Linear(c.width, c.mlp_ratio * c.width), nn.GELU(),
                                 nn.Linear(c.mlp_ratio * c.width, c.width), nn.Dropout(c.dropout))
        self.drop = nn.Dropout(c.dropout)

    def forward(self, x: Tensor, context: Any = None, cache: dict | None = None) -> Tensor:
        x = x + self.drop(self.attn(self.ln1(x), causal=True, cache=cache))
        if self.cross:
            x = x + self.drop(self.xattn(self.ln2(x), context=context))
        return x + self.mlp(self.ln3(x))


# ------------------------------------------------------------------------------------------------ model
class CAT(nn.Module):
    """The transformer (see the module docstring).

    ``forward(codes, cond=None, *, drop=None) -> logits``: ``codes`` int64 ``(B, L)`` (or ``(B, h, w)``) with
    ``L = h·w``; ``cond`` a :class:`TextCondition` (``None``: every sample unconditional); ``drop`` bool ``(B,)``
    marks samples whose condition is dropped (``None``: drawn with ``cond_drop`` in training, none in eval).
    Returns float logits ``(B, L, vocab_size)``; position ``i`` predicts ``codes[:, i]`` from ``codes[:, :i]``.
    """

    def __init__(self, config: CATConfig) -> None:
        super().__init__()
        if not isinstance(config, CATConfig):
            raise TypeError(f"CAT takes a CATConfig, got {type(config).__name__}")
        self.config = c = config
        self.tok = nn.Embedding(c.vocab_size, c.width)
        self.row = nn.Parameter(torch.randn(c.grid[0], c.width) * 0.02)
        self.col = nn.Parameter(torch.randn(c.grid[1], c.width) * 0.02)
        self.start = nn.Parameter(torch.randn(c.width) * 0.02)
        self.prefix = nn.Linear(c.text_dim, c.width) if c.conditioning == "prefix" else None
        self.emb_drop = nn.Dropout(c.dropout)
        self.blocks = nn.ModuleList(_Block(c) for _ in range(c.depth))
        self.ln_f = nn.LayerNorm(c.width)
        self.bias = nn.Parameter(torch.zeros(c.vocab_size))
        self.apply(self._init)
        for name, p in self.named_parameters():  # GPT-2: residual projections scaled by 1/sqrt(2·depth)
            if name.endswith("out.weight") or name.endswith("mlp.2.weight"):
                nn.init.normal_(p, 0.0, 0.02 / math.sqrt(2 * c.depth))

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, 0.0, 0.02)

    # -------------------------------------------------------------------------------------- pieces
    def positions(self) -> Tensor:
        """Axial position embeddings ``(L, D)`` in raster order."""
        return (self.row[:, None, :] + self.col[None, :, :]).reshape(-1, self.config.width)

    def _check_cond(self, cond: Any, b: int) -> None:
        mode = self.config.conditioning
        if mode == "none":
            if cond is not None:
                raise ValueError("this CAT is unconditional (conditioning='none'); pass cond=None")
            return
        if cond is None:
            return
        if mode == "cross":
            tokens, mask = getattr(cond, "tokens", None), getattr(cond, "mask", None)
            if tokens is None or mask is None:
                raise ValueError("conditioning='cross' needs cond.tokens (B, T, text_dim) and cond.mask (B, T)")
            if tokens.ndim != 3 or tokens.shape[0] != b or tokens.shape[-1] != self.config.text_dim:
                raise ValueError(f"cond.tokens must be ({b}, T, {self.config.text_dim}), got {tuple(tokens.shape)}")
            if tuple(mask.shape) != tuple(tokens.shape[:2]):
                raise ValueError(f"cond.mask must be {tuple(tokens.shape[:2])}, got {tuple(mask.shape)}")
        else:
            pooled = getattr(cond, "pooled", None)
            if pooled is None or tuple(pooled.shape) != (b, self.config.text_dim):
                raise ValueError(f"conditioning='prefix' needs cond.pooled ({b}, {self.config.text_dim}), got "
                                 f"{None if pooled is None else tuple(pooled.shape)}")

    def _drop_mask(self, b: int, cond: Any, drop: Tensor | None, device: torch.device) -> Tensor:
        if cond is None or self.config.conditioning == "none":
            return torch.ones(b, dtype=torch.bool, device=device)
        if drop is None:
            if self.training and self.config.cond_drop > 0:
                return torch.rand(b, device=device) < self.config.cond_drop
            return torch.zeros(b, dtype=torch.bool, device=device)
        drop = torch.as_tensor(drop, device=device).bool()
        if drop.shape != (b,):
            raise ValueError(f"drop must be a bool tensor ({b},), got {tuple(drop.shape)}")
        return drop

    def _start(self, b: int, cond: Any, dropped: Tensor) -> Tensor:
        start = self.start.expand(b, -1)
        if self.prefix is not None and cond is not None:
            p = self.prefix(cond.pooled.to(self.prefix.weight.dtype))
            start = torch.where(dropped[:, None], start.to(p.dtype), p)
        return start[:, None, :]

    def _context(self, cond: Any, dropped: Tensor, b: int, device: torch.device) -> list | None:
        if not self.config.conditioning == "cross":
            return None
        if cond is None:
            tokens = torch.zeros(b, 1, self.config.text_dim, device=device)
            mask = torch.zeros(b, 1, dtype=torch.bool, device=device)
        else:
            tokens, mask = cond.tokens, cond.mask.bool() & ~dropped[:, None]
        return [blk.xattn.context_kv(tokens, mask) for blk in self.blocks]

    def _logits(self, h: Tensor) -> Tensor:
        return F.linear(self.ln_f(h), self.tok.weight, self.bias).float()

    # -------------------------------------------------------------------------------------- forward
    def forward(self, codes: Tensor, cond: Any = None, *, drop: Tensor | None = None) -> Tensor:
        c = self.config
        if codes.ndim == 3:
            codes = codes.flatten(1)
        if codes.ndim != 2 or codes.shape[1] != c.seq_len:
            raise ValueError(f"codes must be (B, {c.seq_len}) or (B, {c.grid[0]}, {c.grid[1]}), "
                             f"got {tuple(codes.shape)}")
        if codes.dtype not in (torch.int64, torch.int32):
            raise TypeError(f"codes must be integer indices, got {codes.dtype}")
        b, device = codes.shape[0], codes.device
        self._check_cond(cond, b)
        dropped = self._drop_mask(b, cond, drop, device)
        x = self.tok(codes[:, :-1]) + self.positions()[:-1]
        x = torch.cat([self._start(b, cond, dropped).to(x.dtype), x], 1)
        x = self.emb_drop(x)
        ctx = self._context(cond, dropped, b, device)
        for i, blk in enumerate(self.blocks):
            x = blk(x, None if ctx is None else ctx[i])
        return self._logits(x)

    def loss(self, codes: Tensor, cond: Any = None, *, drop: Tensor | None = None) -> Tensor:
        """``L_CAT``: mean cross-entropy (nats per code) of ``codes`` (Eq. 12)."""
        logits = self(codes, cond, drop=drop)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), codes.flatten(1).reshape(-1))

    # -------------------------------------------------------------------------------------- decoding
    @torch.no_grad()
    def _step_state(self, b: int, cond: Any, dropped: Tensor, device: torch.device) -> tuple[list, list | None, Tensor]:
        caches: list[dict] = [{} for _ in self.blocks]
        ctx = self._context(cond, dropped, b, device)
        start = self._start(b, cond, dropped)
        return caches, ctx, start

    @torch.no_grad()
    def _step(self, x: Tensor, caches: list, ctx: list | None) -> Tensor:
        for i, blk in enumerate(self.blocks):
            x = blk(x, None if ctx is None else ctx[i], cache=caches[i])
        return self._logits(x)[:, -1]


# ------------------------------------------------------------------------------------------------ guidance/sampling
def _check_guidance(scale: float) -> float:
    if not isinstance(scale, (int, float)) or not math.isfinite(scale) or scale < 0:
        raise ValueError(f"guidance scale must be a finite number >= 0 (0 = unconditional, 1 = conditional, "
                         f"> 1 = stronger text), got {scale!r}")
    return float(scale)


def guided_logits(model: CAT, codes: Tensor, cond: Any, scale: float) -> Tensor:
    """Classifier-free guided logits ``ℓ_null + s·(ℓ_cond − ℓ_null)`` for every position (teacher forcing)."""
    s = _check_guidance(scale)
    b = codes.shape[0]
    cond_l = model(codes, cond, drop=torch.zeros(b, dtype=torch.bool, device=codes.device))
    null_l = model(codes, cond, drop=torch.ones(b, dtype=torch.bool, device=codes.device))
    return null_l + s * (cond_l - null_l)


def filter_logits(logits: Tensor, *, top_k: int | None = None, top_p: float | None = None) -> Tensor:
    """Keep the ``top_k`` largest logits, then the nucleus of probability ``top_p``; the rest become −inf.

    The nucleus is the smallest set of the most likely codes whose probabilities sum to at least ``top_p`` (the
    code that crosses ``top_p`` is kept; the most likely code is always kept).
    """
    if top_k is not None:
        if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
            raise ValueError(f"top_k must be a positive int or None, got {top_k!r}")
        if top_k < logits.shape[-1]:
            kth = torch.topk(logits, top_k, dim=-1).values[..., -1:]
            logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None:
        if not (isinstance(top_p, (int, float)) and 0.0 < top_p <= 1.0):
            raise ValueError(f"top_p must be in (0, 1] or None, got {top_p!r}")
        if top_p < 1.0:
            sorted_l, order = torch.sort(logits, dim=-1, descending=True)
            probs = sorted_l.softmax(-1)
            before = probs.cumsum(-1) - probs  # mass of the strictly more likely codes
            remove_sorted = before >= top_p
            remove = torch.zeros_like(remove_sorted).scatter(-1, order, remove_sorted)
            logits = logits.masked_fill(remove, float("-inf"))
    return logits


@torch.no_grad()
def sample(model: CAT, cond: Any = None, n: int | None = None, *, guidance: float = 3.0, top_k: int | None = None,
           top_p: float | None = None, temperature: float = 1.0, seed: int = 0, batch_size: int = 256,
           progress: bool = False) -> Tensor:
    """Draw code grids, int64 ``(N, h, w)``, one per condition row (or ``n`` unconditional ones).

    Args:
        model: a :class:`CAT` (put in eval mode for the call).
        cond: a :class:`TextCondition` of ``N`` captions, or ``None`` (unconditional; then ``n`` is required).
        guidance: classifier-free guidance scale ``s`` ≥ 0 (ignored without a condition).
        top_k, top_p, temperature: the filters and temperature (> 0) applied, in this order, to the guided logits.
        seed: seeds the draws; the same seed, inputs and device give the same codes.
        batch_size: conditions decoded at once (the guided pass doubles it internally).
    """
    from tqdm.auto import tqdm

    s = _check_guidance(guidance)
    if not (isinstance(temperature, (int, float)) and math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature must be a positive number, got {temperature!r}")
    filter_logits(torch.zeros(1, 2), top_k=top_k, top_p=top_p)  # argument checks before any work
    c = model.config
    if cond is None:
        if n is None or n < 1:
            raise ValueError("unconditional sampling needs n >= 1 (the number of code grids)")
        total = int(n)
    else:
        if c.conditioning == "none":
            raise ValueError("this CAT is unconditional (conditioning='none'); sample with cond=None and n")
        total = int((cond.tokens if c.conditioning == "cross" else cond.pooled).shape[0])
        if n is not None and n != total:
            raise ValueError(f"n={n} but the condition holds {total} captions; leave n=None")
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    gen = torch.Generator(device=device)
    gen.manual_seed(int(seed))
    out = []
    try:
        for a in tqdm(range(0, total, batch_size), desc="sampling", disable=not progress, leave=False):
            b = min(batch_size, total - a)
            part = None if cond is None else _slice_cond(cond, a, a + b, device)
            guided = part is not None and s != 1.0
            if part is None:
                dropped = torch.ones(b, dtype=torch.bool, device=device)
            elif guided:
                part = _slice_cond(_repeat2(part), 0, 2 * b, device)
                dropped = torch.cat([torch.zeros(b, dtype=torch.bool), torch.ones(b, dtype=torch.bool)]).to(device)
            else:
                dropped = torch.zeros(b, dtype=torch.bool, device=device)
            rows = dropped.shape[0]
            caches, ctx, x = model._step_state(rows, part, dropped, device)
            pos = model.positions()
            codes = torch.empty(b, c.seq_len, dtype=torch.long, device=device)
            for i in range(c.seq_len):
                logits = model._step(x, caches, ctx)
                if guided:
                    logits = logits[b:] + s * (logits[:b] - logits[b:])
                logits = filter_logits(logits / temperature, top_k=top_k, top_p=top_p)
                nxt = torch.multinomial(logits.softmax(-1), 1, generator=gen)[:, 0]
                codes[:, i] = nxt
                tok = nxt.repeat(2) if guided else nxt
                x = (model.tok(tok) + pos[i])[:, None, :]
            out.append(codes)
    finally:
        model.train(was_training)
    return torch.cat(out).view(total, *c.grid)


def _slice_cond(cond: Any, a: int, b: int, device: torch.device) -> TextCondition:
    def take(t):
        return None if t is None else t[a:b].to(device)

    tokens = take(getattr(cond, "tokens", None))
    pooled = take(getattr(cond, "pooled", None))
    return TextCondition(tokens=None if tokens is None else tokens.float(), mask=take(getattr(cond, "mask", None)),
                         pooled=None if pooled is None else pooled.float())


def _repeat2(cond: TextCondition) -> TextCondition:
    def rep(t):
        return None if t is None else torch.cat([t, t])

    return TextCondition(tokens=rep(cond.tokens), mask=rep(cond.mask), pooled=rep(cond.pooled))

"""The VQGAN of FA-VAE: taming-style encoder/decoder, cosine-EMA quantiser, optional FCMs; also a tokenizer.

* :class:`VQGANConfig` -- widths, levels (``ch_mult`` sets f = 2^(len-1)), attention resolutions, codebook, FCMs.
* :class:`CosineEMAQuantizer` -- FA-VAE's quantiser (l2-normalised lookup, EMA codebook, commitment MSE).
* :class:`Encoder`, :class:`Decoder` -- exposing the features the spectrum losses pair (:mod:`specvae.models.fcm`).
* :class:`VQGAN` -- the autoencoder: ``forward(x) -> VQGANOutput``; tokenizer API ``encode_indices``,
  ``decode_indices``, ``codebook_size``, ``grid_size``, ``save_tokenizer`` / :meth:`VQGAN.load_tokenizer`.

Images in and out are ``(N, 3, H, W)`` in [0, 1]; inside, the network works on [-1, 1] as taming/FA-VAE, and
:attr:`VQGANOutput.recon_pm` is the raw decoder output on that scale (no tanh, unclamped), which the training
losses use.

Layout (fact sheet §1): encoder conv_in → per level ``num_res_blocks`` ResBlocks (+ attention at
``attn_resolutions``) and a stride-2 down-sampling except at the last level → mid (ResBlock, attention, ResBlock)
→ GN, SiLU, 3×3 conv to ``z_channels`` → 1×1 conv. Decoder: [1×1 post-quant conv only without FCMs] → conv_in →
mid → per level (reversed) ``num_res_blocks + 1`` ResBlocks (+ attention) and nearest ×2 up-sampling → GN, SiLU,
3×3 conv to 3 channels. FCMs sit at their positions (:mod:`specvae.models.fcm`).

Ref: Esser et al., CVPR 2021 (taming-transformers@3ba01b24 ``model.py``, ``quantize.py``); Lin et al., CVPR 2023
§3.1 (FA-VAE) and oppo-us-research/FA-VAE@1b26643f ``models/codec.py``, ``models/l2_quantize.py`` (fact sheet
§1-2); Yu et al., ICLR 2022 (ViT-VQGAN, l2-normalised codes); van den Oord et al., NeurIPS 2017 (EMA codebook).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from specvae.models.fcm import (DEFAULT_POSITIONS, FCM_KINDS, OFFICIAL_PAIR_ORDER, PAPER_INDEX, check_positions,
                                encoder_tap, make_fcm)
from specvae.models.taming import AttnBlock, Downsample, Normalize, ResBlock, Upsample
from specvae.spectral import no_autocast

__all__ = ["VQGANConfig", "CosineEMAQuantizer", "Encoder", "Decoder", "VQGAN", "VQGANOutput", "TOKENIZER_FORMAT"]

#: ``format`` entry of a saved tokenizer's safetensors metadata
TOKENIZER_FORMAT = "specvae.vqgan.tokenizer/1"


@dataclass(frozen=True)
class VQGANConfig:
    """Architecture of a :class:`VQGAN` (defaults: FA-VAE's CelebA-HQ f = 16 model, fact sheet §1).

    Args:
        resolution: the image side the model is built for (places attention; inputs of other sizes work when
            divisible by f).
        ch: base width; level i has ``ch * ch_mult[i]`` channels.
        ch_mult: width multipliers per level; f = 2^(len(ch_mult) - 1) (e.g. (1,2,4) f = 4, (1,2,2,4) f = 8,
            (1,1,2,2,4) f = 16). ``ch_mult[0]`` must be 1 when the ``out`` FCM is used (its pair is conv_in).
        num_res_blocks: ResBlocks per encoder level (the decoder has one more).
        attn_resolutions: feature-map sides (at ``resolution``) where levels get self-attention.
        z_channels: latent and codebook dimension (``embed_dim``).
        codebook_size: number of codes K.
        dropout: dropout in the ResBlocks (0).
        norm_groups, norm_eps: GroupNorm groups (32) and eps (1e-5, FA-VAE; taming 1e-6).
        fcm: ``None`` (plain VQGAN) or ``"conv"`` / ``"res"`` / ``"attn"``.
        fcm_positions: decoder positions with an FCM (the official four by default).
        ema_decay: codebook EMA decay (0.8, FA-VAE).
        commitment_weight: weight of MSE(sg(e), z) (1.0).
        in_channels: image channels (3).
    """

    resolution: int = 256
    ch: int = 128
    ch_mult: tuple[int, ...] = (1, 1, 2, 2, 4)
    num_res_blocks: int = 2
    attn_resolutions: tuple[int, ...] = (16,)
    z_channels: int = 256
    codebook_size: int = 1024
    dropout: float = 0.0
    norm_groups: int = 32
    norm_eps: float = 1e-5
    fcm: str | None = None
    fcm_positions: tuple[str, ...] = DEFAULT_POSITIONS
    ema_decay: float = 0.8
    commitment_weight: float = 1.0
    in_channels: int = 3

    def __post_init__(self) -> None:
        object.__setattr__(self, "ch_mult", tuple(int(m) for m in self.ch_mult))
        object.__setattr__(self, "attn_resolutions", tuple(int(r) for r in self.attn_resolutions))
        object.__setattr__(self, "fcm_positions", tuple(self.fcm_positions))
        if len(self.ch_mult) < 1 or any(m < 1 for m in self.ch_mult):
            raise ValueError(f"ch_mult must be a non-empty tuple of positive integers, got {self.ch_mult}")
        for name in ("resolution", "ch", "num_res_blocks", "z_channels", "codebook_size", "norm_groups"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < (0 if name == "num_res_blocks" else 1):
                raise ValueError(f"VQGANConfig.{name} must be a positive integer, got {v!r}")
        if self.resolution % self.f:
            raise ValueError(f"the down-sampling factor f = {self.f} (ch_mult {self.ch_mult}) does not divide the "
                             f"image size {self.resolution}; pick ch_mult with 2^(len-1) dividing it")
        if self.fcm is not None and self.fcm not in FCM_KINDS:
            raise ValueError(f"fcm must be None or one of {FCM_KINDS}, got {self.fcm!r}")
        if self.fcm is not None:
            check_positions(self.fcm_positions, len(self.ch_mult))
            if "out" in self.fcm_positions and self.ch_mult[0] != 1:
                raise ValueError("the 'out' FCM pairs with the encoder's conv_in output (ch channels), so ch_mult[0] "
                                 f"must be 1, got ch_mult={self.ch_mult}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay}")

    @property
    def f(self) -> int:
        """Down-sampling factor 2^(levels - 1)."""
        return 2 ** (len(self.ch_mult) - 1)

    @property
    def num_levels(self) -> int:
        return len(self.ch_mult)


# ------------------------------------------------------------------------------------------------ quantiser
class CosineEMAQuantizer(nn.Module):
    r"""FA-VAE's vector quantiser: cosine nearest code, EMA codebook, commitment loss (fact sheet §1).

    - Codebook ``embed`` ``(K, d)``: a buffer (not an optimiser parameter), kaiming-uniform then l2-normalised.
    - Lookup: ``k* = argmax_k <z/|z|, e_k/|e_k|>`` (cosine; Lin et al. eq. 2 with ViT-VQGAN's l2-normalisation).
    - Output: the **stored** code ``e_{k*}`` (not re-normalised); in training the straight-through
      ``z + sg(e - z)``.
    - EMA (training only): for each code the mean of the l2-normalised z assigned to it, l2-normalised
      (a code with no hits uses its own normalised value), then ``e ← decay·e + (1-decay)·mean``.
    - Loss (training only): ``commitment_weight · MSE(sg(e_{k*}), z)`` on the un-normalised z; 0 in eval.

    ``forward(z)``: ``z`` ``(N, d, h, w)`` -> ``(z_q (N, d, h, w), indices (N, h, w) long, loss scalar)``.
    Computed in float32 with autocast off.
    Ref: FA-VAE ``models/l2_quantize.py`` (a 2022 copy of lucidrains' ``VectorQuantize`` with
    ``use_cosine_sim``), decay 0.8, commitment weight 1; van den Oord et al. 2017 (EMA).
    """

    def __init__(self, codebook_size: int, dim: int, *, decay: float = 0.8, commitment_weight: float = 1.0) -> None:
        super().__init__()
        self.codebook_size, self.dim = int(codebook_size), int(dim)
        self.decay, self.commitment_weight = float(decay), float(commitment_weight)
        embed = torch.empty(self.codebook_size, self.dim)
        nn.init.kaiming_uniform_(embed)
        self.register_buffer("embed", F.normalize(embed, dim=-1))

    @torch.no_grad()
    def ema_update(self, z_flat: Tensor, indices: Tensor) -> None:
        """One EMA step from the flattened ``z`` ``(M, d)`` and their codes ``(M,)`` (training only)."""
        zn = F.normalize(z_flat.float(), dim=-1)
        onehot = F.one_hot(indices, self.codebook_size).to(zn.dtype)  # (M, K)
        counts = onehot.sum(0)  # (K,)
        sums = onehot.t() @ zn  # (K, d)
        means = F.normalize(sums / counts.clamp_min(1.0)[:, None], dim=-1)
        means = torch.where((counts > 0)[:, None], means, F.normalize(self.embed, dim=-1))
        self.embed.lerp_(means, 1.0 - self.decay)

    def lookup(self, z_flat: Tensor) -> Tensor:
        """Cosine nearest code of each row of ``z_flat`` ``(M, d)`` -> ``(M,)``."""
        sim = F.normalize(z_flat.float(), dim=-1) @ F.normalize(self.embed, dim=-1).t()
        return sim.argmax(dim=-1)

    @no_autocast
    def forward(self, z: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        if z.ndim != 4 or z.shape[1] != self.dim:
            raise ValueError(f"CosineEMAQuantizer expects (N, {self.dim}, h, w), got {tuple(z.shape)}")
        n, d, h, w = z.shape
        z = z.float()
        flat = z.permute(0, 2, 3, 1).reshape(-1, d)
        idx = self.lookup(flat)
        q = self.embed[idx].view(n, h, w, d).permute(0, 3, 1, 2)
        if self.training:
            loss = self.commitment_weight * F.mse_loss(q.detach(), z)
            self.ema_update(flat.detach(), idx)
            q = z + (q - z).detach()
        else:
            loss = z.new_zeros(())
        return q.contiguous(), idx.view(n, h, w), loss

    def extra_repr(self) -> str:
        return f"codebook_size={self.codebook_size}, dim={self.dim}, decay={self.decay}, " \
               f"commitment_weight={self.commitment_weight}"


# ------------------------------------------------------------------------------------------------ encoder
class Encoder(nn.Module):
    """Taming encoder; ``forward(x_pm) -> (z, feats)`` with ``feats`` = ``conv_in``, ``level{i}``, ``down``,
    ``mid``, ``z`` (see :mod:`specvae.models.fcm` for which decoder position each pairs with)."""

    def __init__(self, cfg: VQGANConfig) -> None:
        super().__init__()
        g, e = cfg.norm_groups, cfg.norm_eps
        self.conv_in = nn.Conv2d(cfg.in_channels, cfg.ch, 3, padding=1)
        self.levels = nn.ModuleList()
        res, c_in = cfg.resolution, cfg.ch
        for i, m in enumerate(cfg.ch_mult):
            c_out = cfg.ch * m
            level = nn.Module()
            level.blocks = nn.ModuleList()
            level.attn = nn.ModuleList()
            for _ in range(cfg.num_res_blocks):
                level.blocks.append(ResBlock(c_in, c_out, dropout=cfg.dropout, groups=g, eps=e))
                c_in = c_out
                level.attn.append(AttnBlock(c_in, groups=g, eps=e) if res in cfg.attn_resolutions else nn.Identity())
            level.down = Downsample(c_in) if i < cfg.num_levels - 1 else nn.Identity()
            res = res // 2 if i < cfg.num_levels - 1 else res
            self.levels.append(level)
        self.mid = nn.Sequential(ResBlock(c_in, c_in, dropout=cfg.dropout, groups=g, eps=e),
                                 AttnBlock(c_in, groups=g, eps=e),
                                 ResBlock(c_in, c_in, dropout=cfg.dropout, groups=g, eps=e))
        self.norm_out = Normalize(c_in, g, e)
        self.conv_out = nn.Conv2d(c_in, cfg.z_channels, 3, padding=1)
        self.to_z = nn.Conv2d(cfg.z_channels, cfg.z_channels, 1)  # FA-VAE: takes quant_conv's place

    def forward(self, x: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        feats: dict[str, Tensor] = {}
        h = self.conv_in(x)
        feats["conv_in"] = h
        for i, level in enumerate(self.levels):
            for block, attn in zip(level.blocks, level.attn):
                h = attn(block(h))
            feats[f"level{i}"] = h
            h = level.down(h)
        feats["down"] = h
        h = self.mid(h)
        feats["mid"] = h
        z = self.to_z(self.conv_out(F.silu(self.norm_out(h))))
        feats["z"] = z
        return z, feats


# ------------------------------------------------------------------------------------------------ decoder
class Decoder(nn.Module):
    """Taming decoder with FCMs; ``forward(z_q) -> (y_pm, dec_feats, fcm_feats)``.

    ``dec_feats[p]`` is the decoder feature arriving at position ``p`` (B; recorded at every position, also
    without FCMs, for the feature-spectrum figures); ``fcm_feats[p]`` is the FCM's tapped output C_p.
    """

    def __init__(self, cfg: VQGANConfig) -> None:
        super().__init__()
        g, e = cfg.norm_groups, cfg.norm_eps
        self.positions = cfg.fcm_positions if cfg.fcm is not None else ()
        c = cfg.ch * cfg.ch_mult[-1]
        width = {"z": cfg.z_channels, "dec_in": c, "mid": c, "out": cfg.ch * cfg.ch_mult[0]}
        width.update({f"level{i}": cfg.ch * m for i, m in enumerate(cfg.ch_mult)})
        # FA-VAE has no post-quant 1x1 conv in FCM models (FCM_1 acts on z_q); the plain VQGAN keeps taming's
        self.post_quant = nn.Identity() if cfg.fcm is not None else nn.Conv2d(cfg.z_channels, cfg.z_channels, 1)
        self.fcms = nn.ModuleDict({p: make_fcm(cfg.fcm, width[p], p, groups=g, eps=e) for p in self.positions}) \
            if cfg.fcm is not None else nn.ModuleDict()
        self.conv_in = nn.Conv2d(cfg.z_channels, c, 3, padding=1)
        self.mid = nn.Sequential(ResBlock(c, c, dropout=cfg.dropout, groups=g, eps=e), AttnBlock(c, groups=g, eps=e),
                                 ResBlock(c, c, dropout=cfg.dropout, groups=g, eps=e))
        res = cfg.resolution // cfg.f
        levels = []
        c_in = c
        for i in reversed(range(cfg.num_levels)):
            c_out = cfg.ch * cfg.ch_mult[i]
            level = nn.Module()
            level.blocks = nn.ModuleList()
            level.attn = nn.ModuleList()
            for _ in range(cfg.num_res_blocks + 1):
                level.blocks.append(ResBlock(c_in, c_out, dropout=cfg.dropout, groups=g, eps=e))
                c_in = c_out
                level.attn.append(AttnBlock(c_in, groups=g, eps=e) if res in cfg.attn_resolutions else nn.Identity())
            level.up = Upsample(c_in) if i > 0 else nn.Identity()
            res = res * 2 if i > 0 else res
            levels.append(level)
        self.levels = nn.ModuleList(levels)  # levels[j] is resolution level num_levels-1-j
        self.num_levels = cfg.num_levels
        self.norm_out = Normalize(c_in, g, e)
        self.conv_out = nn.Conv2d(c_in, cfg.in_channels, 3, padding=1)

    def _at(self, name: str, h: Tensor, dec: dict[str, Tensor], fcm: dict[str, Tensor]) -> Tensor:
        dec[name] = h
        if name in self.fcms:
            h, tapped = self.fcms[name](h)
            fcm[name] = tapped
        return h

    def forward(self, zq: Tensor) -> tuple[Tensor, dict[str, Tensor], dict[str, Tensor]]:
        dec: dict[str, Tensor] = {}
        fcm: dict[str, Tensor] = {}
        h = self._at("z", self.post_quant(zq), dec, fcm)
        h = self._at("dec_in", self.conv_in(h), dec, fcm)
        h = self._at("mid", self.mid(h), dec, fcm)
        for j, level in enumerate(self.levels):
            i = self.num_levels - 1 - j
            for block, attn in zip(level.blocks, level.attn):
                h = attn(block(h))
            if 0 < i < self.num_levels - 1:
                h = self._at(f"level{i}", h, dec, fcm)
            h = level.up(h)
        h = self._at("out", h, dec, fcm)
        return self.conv_out(F.silu(self.norm_out(h))), dec, fcm


# ------------------------------------------------------------------------------------------------ model
@dataclass
class VQGANOutput:
    """What :meth:`VQGAN.forward` returns.

    Attributes:
        recon_pm: raw reconstruction on the [-1, 1] scale, ``(N, 3, H, W)`` (unclamped; the losses use it).
        indices: code indices ``(N, h, w)``.
        codebook_loss: the quantiser's loss (scalar; 0 in eval).
        enc_feats: encoder features by tap name (``conv_in``, ``level{i}``, ``down``, ``mid``, ``z``).
        dec_feats: decoder features arriving at each position (B).
        fcm_feats: FCM outputs C by position (empty without FCMs).
        pair_names: the (encoder tap, decoder position) pairs of the spectrum loss, in loss order.
    """

    recon_pm: Tensor
    indices: Tensor
    codebook_loss: Tensor
    enc_feats: dict[str, Tensor]
    dec_feats: dict[str, Tensor]
    fcm_feats: dict[str, Tensor]
    pair_names: list[tuple[str, str]] = field(default_factory=list)

    @property
    def recon(self) -> Tensor:
        """Reconstruction on the [0, 1] scale (unclamped)."""
        return (self.recon_pm + 1) / 2

    def pairs(self) -> tuple[list[Tensor], list[Tensor]]:
        """``(A list, C list)`` of the spectrum loss, in :attr:`pair_names` order."""
        return ([self.enc_feats[a] for a, _ in self.pair_names], [self.fcm_feats[c] for _, c in self.pair_names])


class VQGAN(nn.Module):
    """FA-VAE's autoencoder (a VQGAN; with FCMs when ``config.fcm`` is set) and a tokenizer.

    ``forward(x)``: ``x`` ``(N, 3, H, W)`` in [0, 1], ``H, W`` divisible by f -> :class:`VQGANOutput`.

    Spectrum-loss pairs (:meth:`pair_names`): for the official four positions in the official loss order
    (encoder conv_in/down/mid/z with decoder out/mid/dec_in/z, :data:`~specvae.models.fcm.OFFICIAL_PAIR_ORDER`),
    then any ``level{i}`` positions.

    Tokenizer: :meth:`encode_indices`, :meth:`decode_indices`, :attr:`codebook_size`, :meth:`grid_size`,
    :meth:`save_tokenizer`, :meth:`load_tokenizer`.
    Ref: see the module docstring.
    """

    def __init__(self, config: VQGANConfig | None = None, **kwargs: Any) -> None:
        super().__init__()
        if config is None:
            config = VQGANConfig(**kwargs)
        elif kwargs:
            raise TypeError("pass either a VQGANConfig or keyword arguments, not both")
        self.config = config
        self.encoder = Encoder(config)
        self.quantizer = CosineEMAQuantizer(config.codebook_size, config.z_channels, decay=config.ema_decay,
                                            commitment_weight=config.commitment_weight)
        self.decoder = Decoder(config)

    # -- structure ------------------------------------------------------------------------------------
    @property
    def f(self) -> int:
        return self.config.f

    @property
    def codebook_size(self) -> int:
        return self.config.codebook_size

    def grid_size(self, image_size: int | tuple[int, int] | None = None) -> tuple[int, int]:
        """Token grid ``(h, w)`` for images of ``image_size`` (default: the config's resolution)."""
        if image_size is None:
            image_size = self.config.resolution
        hh, ww = (image_size, image_size) if isinstance(image_size, int) else image_size
        self._check_size(hh, ww)
        return hh // self.f, ww // self.f

    @property
    def last_layer(self) -> Tensor:
        """The decoder's output conv weight (the adaptive GAN weight's reference layer)."""
        return self.decoder.conv_out.weight

    def pair_names(self) -> list[tuple[str, str]]:
        """(encoder tap, decoder position) of every spectrum-loss pair, in loss order (empty without FCMs)."""
        pos = self.decoder.positions
        order = [p for p in OFFICIAL_PAIR_ORDER if p in pos] + [p for p in pos if p not in OFFICIAL_PAIR_ORDER]
        return [(encoder_tap(p), p) for p in order]

    def _check_size(self, h: int, w: int) -> None:
        if h % self.f or w % self.f:
            raise ValueError(f"image size {h}x{w} is not divisible by the down-sampling factor f = {self.f}; "
                             f"crop or resize the images to a multiple of {self.f}")

    # -- running --------------------------------------------------------------------------------------
    def encode(self, x: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """``x`` in [0, 1] -> (z, encoder features)."""
        if x.ndim != 4 or x.shape[1] != self.config.in_channels:
            raise ValueError(f"VQGAN expects images (N, {self.config.in_channels}, H, W) in [0, 1], got "
                             f"{tuple(x.shape)}")
        self._check_size(*x.shape[-2:])
        return self.encoder(2 * x - 1)

    def forward(self, x: Tensor) -> VQGANOutput:
        z, enc = self.encode(x)
        zq, idx, qloss = self.quantizer(z)
        y, dec, fcm = self.decoder(zq.to(z.dtype))
        return VQGANOutput(recon_pm=y, indices=idx, codebook_loss=qloss, enc_feats=enc, dec_feats=dec,
                           fcm_feats=fcm, pair_names=self.pair_names())

    @torch.no_grad()
    def reconstruct(self, x: Tensor) -> Tensor:
        """Eval-mode reconstruction in [0, 1] (clamped); restores the training flag."""
        was = self.training
        self.eval()
        try:
            return self(x).recon.clamp(0, 1).float()
        finally:
            self.train(was)

    @torch.no_grad()
    def encode_indices(self, x: Tensor) -> Tensor:
        """Images ``(N, 3, H, W)`` in [0, 1] -> code indices ``(N, H/f, W/f)`` (long), eval mode, no EMA."""
        was = self.training
        self.eval()
        try:
            z, _ = self.encode(x)
            return self.quantizer(z)[1]
        finally:
            self.train(was)

    @torch.no_grad()
    def decode_indices(self, indices: Tensor) -> Tensor:
        """Code indices ``(N, h, w)`` -> images ``(N, 3, h·f, w·f)`` in [0, 1] (clamped), eval mode."""
        if indices.ndim != 3 or indices.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8):
            raise ValueError(f"decode_indices expects integer indices (N, h, w), got {indices.dtype} "
                             f"{tuple(indices.shape)}")
        if indices.numel() and (int(indices.min()) < 0 or int(indices.max()) >= self.codebook_size):
            raise ValueError(f"indices must lie in [0, {self.codebook_size}), got [{int(indices.min())}, "
                             f"{int(indices.max())}]")
        was = self.training
        self.eval()
        try:
            zq = self.quantizer.embed[indices.long()].permute(0, 3, 1, 2).contiguous()
            return ((self.decoder(zq)[0] + 1) / 2).clamp(0, 1).float()
        finally:
            self.train(was)

    # -- tokenizer files ------------------------------------------------------------------------------
    def save_tokenizer(self, path: str | os.PathLike, *, dtype: torch.dtype = torch.float32,
                       metadata: dict[str, str] | None = None) -> Path:
        """Write the weights (codebook included) and the config as one ``.safetensors`` file, atomically.

        ``dtype=torch.bfloat16`` halves the size (the codebook is kept in float32). ``metadata`` adds strings
        (e.g. the run's config hash). Returns the path.
        """
        from safetensors.torch import save

        from specvae.experiments.atomic import atomic_write_bytes

        state = {k: (v.detach().to("cpu").contiguous() if k.endswith("quantizer.embed") or not v.is_floating_point()
                     else v.detach().to("cpu", dtype).contiguous()) for k, v in self.state_dict().items()}
        meta = {"format": TOKENIZER_FORMAT, "config": json.dumps(asdict(self.config))}
        meta.update({str(k): str(v) for k, v in (metadata or {}).items()})
        return atomic_write_bytes(Path(path), save(state, metadata=meta))

    @classmethod
    def load_tokenizer(cls, path: str | os.PathLike, *, device: str | torch.device = "cpu") -> "VQGAN":
        """A :class:`VQGAN` (eval mode, float32) from :meth:`save_tokenizer`'s file; clear errors otherwise."""
        from safetensors import safe_open
        from safetensors.torch import load_file

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no tokenizer file at {path}; train the run first (it writes one) or check "
                                    "the path")
        with safe_open(str(path), framework="pt") as handle:
            meta = handle.metadata() or {}
        if meta.get("format") != TOKENIZER_FORMAT:
            raise ValueError(f"{path} is not a specvae VQGAN tokenizer (format {meta.get('format')!r}, expected "
                             f"{TOKENIZER_FORMAT!r})")
        raw = json.loads(meta["config"])
        for key in ("ch_mult", "attn_resolutions", "fcm_positions"):
            raw[key] = tuple(raw[key])
        model = cls(VQGANConfig(**raw))
        state = {k: v.float() if v.is_floating_point() else v for k, v in load_file(str(path)).items()}
        model.load_state_dict(state, strict=True)
        return model.to(device).eval()


def parameter_count(model: nn.Module) -> int:
    """Number of parameters (buffers excluded)."""
    return int(sum(p.numel() for p in model.parameters()))

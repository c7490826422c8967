"""Chapter 4, Figure 6: generation from a prior over the codes of the faces tokenizers (CVQ-VAE vs FQ-VAE).

The paper (Feng & Liu 2025, §4.4, Fig. 6) trains a latent diffusion model on CelebA with CVQ-VAE and with FQ-VAE as
its first stage and shows samples (qualitative only; LR, UNet, sample count not stated; fact sheet row "6"). The
issue allows a smaller prior, stated as such. Ours is the classic second stage of a VQ model (VQ-VAE, van den
Oord et al. 2017; VQGAN, Esser et al. 2021): an **autoregressive transformer over the code ids** of each
tokenizer — :class:`specvae.models.cat.CAT` with ``conditioning="none"`` (a GPT: causal self-attention, axial
position embeddings over the code grid, weight-tied output) — trained on the code ids of the training faces and
sampled ancestrally (temperature 1, no top-k: the plain model distribution, so that FID measures the prior and the
decoder, not a sampling heuristic).

The two tokenizers are Table 1's faces runs of seed 0 (:func:`tokenizer_config`), loaded from their checkpoints
(:func:`specvae.experiments.fq_vae.trained_model`; checkpoints are not committed: where they are missing, as on a
fresh machine, :func:`run_all` first recreates them by training the stored runs again with
:func:`specvae.experiments.fq_vae.retrain_checkpoint`, and each prior's record says how closely that training
followed the stored one, ``extra.tokenizer_retrained``). Both quantise U = 256 vectors with K = 512 codes, so the
two priors model sequences of the same length and vocabulary and differ only in what a code means:

* CVQ-VAE: a 16 × 16 spatial grid of codes, raster order (row-major);
* FQ-VAE: the D × N = 2 × 128 frequency components (channel × dynamic filter basis), channel-major order. The order
  of FQ-VAE's components carries no spatial neighbourhood; the transformer's axial embeddings over (D, N) let it
  learn whatever order structure there is.

What is measured (:func:`run`), on ``n_fid`` held-out test faces (the every-10th-index validation split):

* ``fid``: FID of ``n_samples`` decoded samples against the held-out faces;
* ``fid_recon``: FID of the tokenizer's reconstructions of the same held-out faces — the best a prior can reach
  through this decoder (a perfect prior's samples are distributed as these reconstructions);
* ``fid_real``: FID of as many training faces against the held-out faces — the floor of FID itself at this N;
* ``test_bits_per_code``: the prior's cross-entropy (bits per code) on the held-out faces' code ids, against
  ``log2 K = 9`` for a uniform guess — how much structure the prior found in each code sequence;
* spectra of samples vs real faces (:func:`specvae.spectral.radial_profile`), the chapter's question asked of
  generation.

Ref: Feng & Liu 2025 §4.4 (Fig. 6); van den Oord et al. 2017 (autoregressive prior over VQ codes); Esser et al. 2021
(transformer over VQGAN codes); Heusel et al. 2017 (FID).
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch
from torch import Tensor

from specvae.experiments import fq_vae
from specvae.experiments.presets import check_preset, select_preset
from specvae.models.cat import CATConfig

CHAPTER = fq_vae.CHAPTER
#: the tokenizers of Fig. 6 (the paper's two first stages)
METHODS: tuple[str, ...] = ("cvqvae", "fqvae")
DATASET = "faces"


@dataclass(frozen=True)
class Sizes:
    """Sizes of the prior at one preset (any field can be overridden: ``configs("cpu", steps=4000)``).

    Args:
        steps: cap on the transformer's updates (it stops earlier when the convergence rule is met).
        batch_size: code sequences per batch.
        lr: AdamW learning rate (after a linear warm-up of ``warmup_steps``; chapter 3's transformer settings).
        width, depth, heads: transformer sizes.
        n_samples: samples decoded for FID (the issue asks ≥ 2,000; more than Inception's 2,048 feature dimensions
            keeps the covariance full rank).
        n_fid: held-out test faces FID compares against (``None``: the whole test split, 2,471 faces).
        n_val: held-out test faces whose codes give ``test_bits_per_code``.
        converge_tol: the project's rule on the logged loss (relative change over the last 20 % of steps).
        n_show: samples kept for the figure.
        image_metrics: measure the three FIDs (``False`` at ``smoke``: Inception costs more than the smoke run; the
            FID columns are then NaN).
        log_every, checkpoint_every: history and checkpoint intervals (steps).

    ``cpu`` arithmetic, measured 2026-11-30 on the 2-core machine (one torch thread, nice 0 beside chapter 4's niced
    grid, random codes, AdamW step included): width 128 × 4 blocks × 4 heads (0.88 M parameters) over 256 codes at
    batch 32 takes 1.43-1.49 s a step with bf16 autocast, 2.05 s in fp32 — so 2,000 steps ≈ 50 min. Encoding the
    22,240 training faces once per tokenizer ≈ 2-6 min (FQ-VAE's 4,224-dim lookup), 2,471 samples of 256 codes
    ≈ 6 min, three FIDs at N = 2,471 ≈ 15 min (Inception ≈ 0.12 s an image; the real statistics are cached and
    shared by both priors). About 1.2 h of one core per prior; the two train side by side (``workers=2``).
    """

    steps: int
    batch_size: int = 32
    lr: float = 1e-3
    warmup_steps: int = 100
    width: int = 128
    depth: int = 4
    heads: int = 4
    n_samples: int = 2000
    n_fid: int | None = 2000
    n_val: int = 1000
    converge_tol: float | None = 0.01
    n_show: int = 32
    image_metrics: bool = True
    log_every: int = 25
    checkpoint_every: int = 250


#: ``smoke``: seconds (CI, on the smoke tokenizers). ``cpu``: ≈ 1.2 h of one core per prior (see :class:`Sizes`).
#: ``gpu``: chapter 3's gpu transformer widths, 5,000 steps (they run after the grid, inside the same 9-minute device
#: call: an estimate of a few minutes on one H100/H200, not measured — no GPU was lent), 5,000 samples against the
#: whole test split. ``paper``: longer (the paper's LDM is not reproduced; its sizes are not stated).
PRESETS: dict[str, Sizes] = {
    "smoke": Sizes(steps=3, batch_size=4, warmup_steps=1, width=16, depth=1, heads=2, n_samples=6, n_fid=6, n_val=4,
                   converge_tol=None, n_show=4, image_metrics=False, log_every=1, checkpoint_every=0),
    # all 2,471 held-out faces and as many samples: above Inception's 2,048 feature dimensions, so both covariances
    # are full rank (at N = 2,000 they are singular and FID is biased upward)
    "cpu": Sizes(steps=2000, n_samples=2471, n_fid=None),
    "gpu": Sizes(steps=5000, batch_size=128, lr=5e-4, warmup_steps=500, width=384, depth=8, heads=6,
                 n_samples=5000, n_fid=None, n_val=2471, log_every=100, checkpoint_every=1000),
    "paper": Sizes(steps=20_000, batch_size=128, lr=5e-4, warmup_steps=500, width=384, depth=8, heads=6,
                   n_samples=5000, n_fid=None, n_val=2471, log_every=100, checkpoint_every=2000),
}


def sizes(preset: str, **overrides: Any) -> Sizes:
    """The :class:`Sizes` of ``preset`` with ``overrides`` (unknown keys are a clear error)."""
    return select_preset(PRESETS, check_preset(preset), **overrides)


@dataclass(frozen=True)
class PriorConfig:
    """One prior (its hash keys the stored result; the tokenizer's config is part of it)."""

    method: str
    preset: str
    tokenizer: Any  # specvae.experiments.fq_vae.RunConfig
    cat: CATConfig
    train: Any  # specvae.train.TrainConfig
    n_samples: int
    n_fid: int | None
    n_val: int
    n_show: int
    image_metrics: bool = True
    temperature: float = 1.0
    seed: int = 0
    kind: str = field(default="fig6-prior")  # keeps a prior's hash apart from any grid run's

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"Fig. 6 compares the priors of {METHODS}; got method {self.method!r}")
        if self.tokenizer.method != self.method or self.tokenizer.dataset != DATASET:
            raise ValueError(f"the prior of {self.method!r} needs that method's {DATASET!r} run as its tokenizer, got "
                             f"{self.tokenizer.method!r} on {self.tokenizer.dataset!r}")
        if self.cat.conditioning != "none":
            raise ValueError("Fig. 6's prior is unconditional: CATConfig(conditioning='none')")
        if self.cat.vocab_size != self.tokenizer.codebook_size:
            raise ValueError(f"the prior predicts {self.cat.vocab_size} codes but the tokenizer has "
                             f"{self.tokenizer.codebook_size}")
        if self.n_samples < 1 or self.n_val < 1 or (self.n_fid is not None and self.n_fid < 2):
            raise ValueError(f"n_samples ({self.n_samples}) and n_val ({self.n_val}) must be >= 1 and n_fid "
                             f"({self.n_fid}) >= 2 or None")
        if not (math.isfinite(self.temperature) and self.temperature > 0):
            raise ValueError(f"temperature must be a positive number, got {self.temperature!r}")


def tokenizer_config(method: str, preset: str = "cpu", **grid_overrides: Any) -> Any:
    """The faces run of Table 1 (seed 0) whose codes the prior of ``method`` models (``grid_overrides`` go to
    :func:`specvae.experiments.fq_vae.sizes`, as the grid was run)."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; Fig. 6 uses {METHODS}")
    return next(c for c in fq_vae.table1_configs(preset, datasets=(DATASET,), **grid_overrides)
                if c.method == method and c.seed == 0)


def code_grid(tok_cfg: Any) -> tuple[int, int]:
    """The code-id grid of a faces tokenizer: ``(h, w)`` = ``(H/4, W/4)`` for the spatial baselines, ``(D, N)`` for
    FQ-VAE (as the models' ``grid_size``)."""
    if tok_cfg.method == "fqvae":
        return (int(tok_cfg.D), int(tok_cfg.N))
    side = tok_cfg.image_size // 4
    return (side, side)


def configs(preset: str = "cpu", *, methods: Sequence[str] = METHODS, grid_overrides: dict[str, Any] | None = None,
            **overrides: Any) -> list[PriorConfig]:
    """The priors of Fig. 6 at ``preset``: one per tokenizer in ``methods``; ``overrides`` go to :func:`sizes`,
    ``grid_overrides`` to the tokenizers' :func:`specvae.experiments.fq_vae.sizes`."""
    from specvae.train import TrainConfig

    s = sizes(preset, **overrides)
    bad = [m for m in methods if m not in METHODS]
    if bad:
        raise ValueError(f"unknown methods {bad}; Fig. 6 uses {METHODS}")
    out = []
    for m in methods:
        tok = tokenizer_config(m, preset, **(grid_overrides or {}))
        cat = CATConfig(vocab_size=tok.codebook_size, grid=code_grid(tok), width=s.width, depth=s.depth, heads=s.heads,
                        conditioning="none", cond_drop=0.0)
        train = TrainConfig(steps=s.steps, batch_size=s.batch_size, lr=float(s.lr), betas=(0.9, 0.95),
                            weight_decay=0.01, optimizer="adamw", grad_clip=1.0, warmup_steps=s.warmup_steps, seed=0,
                            log_every=s.log_every, checkpoint_every=s.checkpoint_every, precision="bf16",
                            converge_tol=s.converge_tol, converge_window=0.2,
                            converge_min_steps=min(s.steps, 5 * s.log_every))
        out.append(PriorConfig(method=m, preset=preset, tokenizer=tok, cat=cat, train=train, n_samples=s.n_samples,
                               n_fid=s.n_fid, n_val=s.n_val, n_show=s.n_show, image_metrics=s.image_metrics))
    return out


# ------------------------------------------------------------------------------------------------ codes
def code_batches(codes: Tensor, batch_size: int, *, seed: int = 0, device: str | torch.device | None = None):
    """Infinite shuffled, resumable batches ``{"codes": (B, L), ...}`` of code sequences: chapter 3's
    :class:`~specvae.experiments.cat.CodeTextBatcher` with one empty caption for every sequence (the unconditional
    prior ignores the caption fields)."""
    from types import SimpleNamespace

    from specvae.experiments.cat import CodeTextBatcher

    empty = SimpleNamespace(tokens=torch.zeros(1, 1, 1), mask=torch.zeros(1, 1, dtype=torch.bool),
                            pooled=torch.zeros(1, 1))
    return CodeTextBatcher(codes, torch.zeros(codes.shape[0], dtype=torch.long), empty, batch_size, seed=seed,
                           device=device)


@torch.no_grad()
def bits_per_code(model: torch.nn.Module, codes: Tensor, batch_size: int = 256) -> float:
    """Mean cross-entropy of ``codes`` under the prior, in bits per code (eval mode, no dropout)."""
    was = model.training
    model.eval()
    device = next(model.parameters()).device
    total, n = 0.0, 0
    try:
        for a in range(0, codes.shape[0], batch_size):
            c = codes[a:a + batch_size].to(device).flatten(1)
            total += float(model.loss(c)) * c.numel()
            n += c.numel()
    finally:
        model.train(was)
    return total / n / math.log(2)


# ------------------------------------------------------------------------------------------------ run
def run(cfg: PriorConfig, *, progress: bool = False) -> dict[str, Any]:
    """Train one prior on its tokenizer's codes of the training faces, sample and measure it (see the module
    docstring); returns the store's record parts."""
    from specvae import spectral
    from specvae.experiments.cat import decode_codes, encode_codes, make_objective
    from specvae.experiments.store import ResultStore
    from specvae.metrics.fid import rfid
    from specvae.models.cat import CAT, check_tokenizer, sample
    from specvae.train import fit, resolve_device

    if not isinstance(cfg, PriorConfig):
        raise TypeError(f"run() takes a PriorConfig (see configs()), got {type(cfg).__name__}")
    torch.set_flush_denormal(True)
    t0 = time.perf_counter()
    store = ResultStore(CHAPTER)
    run_dir = store.run_dir(cfg)
    device = resolve_device(cfg.train.device)
    tokenizer = fq_vae.trained_model(cfg.tokenizer).to(device)
    check_tokenizer(cfg.cat, tokenizer)
    train = fq_vae._load(cfg.tokenizer, "train")
    test = fq_vae._load(dataclasses.replace(cfg.tokenizer, n_test=None), "test")
    codes = encode_codes(tokenizer, train.images, cache_dir=run_dir)  # cached by the images' hash
    t_codes = time.perf_counter() - t0

    torch.manual_seed(cfg.seed)
    model = CAT(cfg.cat)
    batcher = code_batches(codes, cfg.train.batch_size, seed=cfg.seed, device=device)
    result = fit(model, make_objective(), batcher, cfg.train, run_dir=run_dir, progress=progress)
    model = result.model.eval()
    hist = result.history
    train_wall = float(result.total_wall_time_s or result.wall_time_s)

    t_eval = time.perf_counter()
    n_fid = test.images.shape[0] if cfg.n_fid is None else min(cfg.n_fid, test.images.shape[0])
    real = test.images[:n_fid]
    test_codes = encode_codes(tokenizer, test.images[:max(cfg.n_val, n_fid)])  # once for bits/code and recon.
    drawn = sample(model, None, cfg.n_samples, seed=cfg.seed, temperature=cfg.temperature, progress=progress)
    samples = decode_codes(tokenizer, drawn)  # uint8, as the images FID compares them with
    recon = decode_codes(tokenizer, test_codes[:n_fid])
    fid_kw = dict(dataset=DATASET, split=f"test{n_fid}", progress=progress)

    def fid(images: Tensor) -> float:
        return float(rfid(real, images, **fid_kw).value) if cfg.image_metrics else float("nan")

    metrics: dict[str, Any] = {
        "fid": fid(samples), "fid_recon": fid(recon),
        "fid_real": fid(train.images[_subset(train.images.shape[0], n_fid)]),
        "fid_n_real": int(n_fid), "fid_n_samples": int(samples.shape[0]),
        "test_bits_per_code": bits_per_code(model, test_codes[:cfg.n_val]),
        "train_bits_per_code": float(hist["bits_per_code"][-1]) if hist.get("bits_per_code") else float("nan"),
        "uniform_bits_per_code": math.log2(cfg.cat.vocab_size),
        "codes_used_by_samples": int(torch.unique(drawn).numel()),
        "codes_used_by_data": int(torch.unique(codes).numel()),
        "converged": None if result.converged is None else bool(result.converged),
        "loss_rel_change_last20": float(result.rel_change), "steps_done": int(result.steps),
        "train_wall_s": train_wall, "encode_wall_s": t_codes,
        "n_params": int(sum(p.numel() for p in model.parameters())),
    }
    metrics["train_sequences_per_s"] = metrics["steps_done"] * cfg.train.batch_size / train_wall if train_wall else 0.0
    metrics["eval_wall_s"] = time.perf_counter() - t_eval
    h, w = real.shape[-2:]

    def profile(images: Tensor) -> np.ndarray:
        return spectral.radial_profile(images.float() / 255.0, log=True, gray=True).double().mean(0).numpy()

    arrays = {"freqs": spectral.frequency_axis(h, w).cpu().numpy(), "profile_real": profile(real),
              "profile_samples": profile(samples), "profile_recon": profile(recon)}
    k = min(cfg.n_show, samples.shape[0])
    npz = {"samples": {"samples": samples[:k].numpy(), "real": real[:k].numpy(), "recon": recon[:k].numpy()}}
    extra = {"train_notes": train.notes, "test_notes": test.notes, "stand_in": train.stand_in or test.stand_in,
             "n_train_sequences": int(codes.shape[0]), "code_grid": list(cfg.cat.grid),
             "resumed_from": result.resumed_from, "total_wall_s": time.perf_counter() - t0,
             "tokenizer_hash": _hash(cfg.tokenizer), "tokenizer_retrained": fq_vae.retrain_note(cfg.tokenizer)}
    return {"metrics": metrics, "arrays": arrays, "history": hist, "extra": extra, "npz": npz,
            "device": result.device}


def _subset(n: int, k: int, seed: int = 0) -> Tensor:
    """``k`` of ``n`` indices drawn without replacement, seeded (the training split is ordered by file index, and
    its first faces are mostly profiles: a prefix would not be a fair sample)."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:min(k, n)]


def _hash(cfg: Any) -> str:
    from specvae.experiments.hashing import config_hash

    return config_hash(cfg)


def run_all(preset: str = "cpu", *, train: bool = True, workers: int = 1, progress: bool = True,
            methods: Sequence[str] = METHODS, grid_overrides: dict[str, Any] | None = None, **overrides: Any):
    """Fig. 6's priors at ``preset`` as a DataFrame (one row per prior), training the missing ones — and, first, the
    faces tokenizer runs they need (Table 1's faces runs of seed 0, through :func:`fq_vae.run`)."""
    from specvae.experiments.grid import run_grid
    from specvae.experiments.store import MissingResultError, ResultStore

    cfgs = configs(preset, methods=methods, grid_overrides=grid_overrides, **overrides)
    store = ResultStore(CHAPTER)
    missing = [c for c in cfgs if not store.exists(c)]
    if missing and not train:
        raise MissingResultError(
            f"{len(missing)} of Fig. 6's {len(cfgs)} priors at preset {preset!r} have no stored result in "
            f"{store.folder} (first: {missing[0].method}). Train them with `specvae run {CHAPTER} --preset {preset}` "
            "(it recreates the faces runs' checkpoints first where they are missing).")
    if missing:
        toks = [c.tokenizer for c in missing if not store.exists(c.tokenizer)]
        if toks:
            run_grid(toks, fq_vae.run, store, workers=min(workers, len(toks)), progress=progress)
        for tok in dict.fromkeys(c.tokenizer for c in missing if not fq_vae.has_checkpoint(c.tokenizer)):
            if progress:
                print(f"Fig. 6: the {tok.method} faces run is stored but its checkpoint is not here; training it "
                      "again (seeded, as stored) to recreate it", flush=True)
            note = fq_vae.retrain_checkpoint(tok, progress=progress)
            if progress:
                print(f"  recreated: {note['steps']} steps (stored {note['stored_steps']}), training history "
                      f"differs from the stored one by at most {note['history_max_abs_diff']:.3g}", flush=True)
        run_grid(missing, run, store, workers=min(workers, len(missing)), progress=progress)
    return store.frame(cfgs)

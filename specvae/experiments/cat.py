"""Chapter 3, CAT (Lin et al. 2023 §3.2, Table 4): text-to-image with cross-attention over every text token.

FA-VAE's second contribution is CAT, an autoregressive transformer over FA-VAE's code indices that reads the
caption through cross-attention to **all** its token embeddings, where earlier models put one sentence embedding at
the start of the sequence. The paper reports only FID on MM-CelebA-HQ (Table 4) against published GAN numbers;
it has no single-embedding baseline and no measure of whether an image follows its caption. We have neither the
data set nor CLIP, so this chapter asks the paper's question where it can be measured:

- **Captioned Shapes** (:mod:`specvae.data.captioned_shapes`): one or two coloured shapes; the caption names each
  shape's colour, kind, size and grid position, in several wordings; three (colour, kind) pairs never occur in
  training. An exact analytic parser reads the attributes back from a generated image, so we report per-attribute
  accuracy, binding accuracy (right colour on the right shape) and FID against held-out images.
- **MNIST** and the **CIFAR-10 subset** with class-name captions ("a handwritten seven", "a photo of a cat"):
  class accuracy of generated images, read by a small CNN trained on the real training images, and FID against
  real test images.

Every data set gets its own tokenizer (FA-VAE's VQGAN from chapter 2, :mod:`specvae.models.vqgan`, 32 px,
f = 4 → 8 × 8 codes), trained once (:func:`run_tokenizer`); then two transformers of the same width, depth and
heads are trained on its codes (:func:`run`): ``cat`` (cross-attention to all MiniLM tokens) and ``baseline``
(the pooled sentence embedding as the start token), each with ``Sizes.seeds`` seeds, both with classifier-free
guidance (condition dropout 0.25) and sampled at several guidance scales.

The chapter-module contract: :data:`CHAPTER`, :class:`Sizes`, :data:`PRESETS`, :func:`configs`, :func:`run`,
:func:`run_all`; also :func:`tokenizer_configs`, :func:`run_tokenizer`, :func:`bench_families`.

Ref: Lin et al. 2023 §3.2 (Eq. 11–12), §4.3, Table 4; official code as described in ``fa-vae-facts.md`` §6
(condition dropout 0.25, cond_scale 3, top-k ≈ half the codebook then top-p 0.95, AdamW (0.9, 0.95), wd 0.01).
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from specvae.experiments.presets import check_preset, select_preset
from specvae.models.cat import CATConfig

__all__ = [
    "CHAPTER",
    "DATASETS",
    "MODELS",
    "MODEL_LABELS",
    "GRID_CAPTIONS",
    "Sizes",
    "PRESETS",
    "sizes",
    "TokenizerConfig",
    "ClassifierConfig",
    "RunConfig",
    "tokenizer_configs",
    "configs",
    "TokenizerUnavailable",
    "train_tokenizer",
    "load_pairs",
    "CodeTextBatcher",
    "make_objective",
    "ClassifierNet",
    "train_classifier",
    "run_tokenizer",
    "tokenizer_file",
    "tokenizer_training_record",
    "run",
    "run_all",
    "bench_families",
]

CHAPTER = "03_cat"
DATASETS: tuple[str, ...] = ("shapes", "mnist", "cifar10")
#: model name → conditioning of :class:`specvae.models.cat.CAT`
MODELS: dict[str, str] = {"cat": "cross", "baseline": "prefix"}
MODEL_LABELS: dict[str, str] = {"cat": "CAT (all tokens, cross-attention)", "baseline": "Baseline (pooled, prefix)"}
IMAGE_SIZE = 32
#: fixed captions of the sample grid (held-out pairs marked in the notebook); per data set
GRID_CAPTIONS: dict[str, tuple[str, ...]] = {
    "shapes": (
        "a large red circle in the centre",
        "a small blue triangle in the top left corner",
        "a large yellow square in the bottom right corner",
        "a large red triangle in the centre",  # held out: red triangle
        "a large green circle in the top middle",  # held out: green circle
        "a large red circle in the top left corner and also a large blue triangle in the bottom right corner",
        "a large blue circle in the top left corner and also a large red triangle in the bottom right corner",
        "a small cyan square in the middle left; a large magenta circle in the middle right",
    ),
    "mnist": tuple(f"a handwritten {w}" for w in
                   ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")),
    "cifar10": ("a photo of an airplane", "a photo of a car", "a photo of a bird", "a photo of a cat",
                "a photo of a deer", "a photo of a dog", "a photo of a frog", "a photo of a horse",
                "a photo of a ship", "a photo of a truck"),
}


@dataclass(frozen=True)
class Sizes:
    """Sizes of one preset (any field can be overridden: ``configs("cpu", steps=3000)``).

    ``cpu`` arithmetic. Measured 2026-11-30 on the shared 2-core machine under a load average of 5–7 (other jobs
    running; variants interleaved in one process, one torch thread, 8 × 8 codes, 26 text tokens, batch 64, AdamW
    step included): width 128 × 4 blocks × 4 heads (cat 1.39 M / baseline 0.91 M parameters at 512 codes) ran at
    44–52 (cat) and 58–81 (baseline) pairs/s with bf16 autocast, 33–34 and 45–48 in fp32; width 192 × 4: 33 / 49
    (bf16); width 256 × 6: 21 / 64 (bf16). bf16 pays on this CPU (AMX). On a quiet core we expect ~2.5× that
    (~120 pairs/s for cat): 2,500 steps at batch 32 ≈ 11 min, 1,500 ≈ 7 min. Evaluation per run: 2,000 + 5 × 500
    guided samples (≈ 1.6 TFLOP for cat) and their decoding ≈ 3 min, FID's Inception on 2,000 samples ≈ 4 min,
    the MNIST / CIFAR-10 reader (width 16, 400 steps) ≈ 1.5 min once per data set. Tokenizers (chapter 2's ``cpu``
    VQGAN at 32 px, a quarter of its 64-px step): ≈ 0.35 s a step at batch 16, ≤ 2,000 steps ≈ 12 min each.
    Text: MiniLM encoded 28 captions/s under that load (≈ 70/s quiet), once per distinct caption (cached):
    ≈ 4 min for Captioned Shapes. In all: 3 × 12 (tokenizers) + 4 × 11 + 4 × 7 (transformers) + 8 × 7
    (evaluation) ≈ 165 min of one core, ≈ 1.5 h as two 1-thread workers; under the measured load expect ~2×.

    Measured in the book's cpu run (2026-11-30, two workers beside other niced training, after chapter 2's
    GroupNorm fix): tokenizers met the rule at 1,400-1,600 steps in 16-26 min each; a Captioned Shapes
    transformer run took 11-14 min of training (2,500 steps, 119 pairs/s for the baseline) and 11-13 min of
    evaluation; an MNIST run 11-14 + 10-11 min.

    Caps raised 2026-11-30 (after :func:`specvae.train.fit`'s rule stopped counting a rising loss as converged):
    at 2,000 steps, with the discriminator from step 1,000, the Captioned Shapes and MNIST tokenizers were still
    improving by 27 % and 10 % over the last 20 % of their steps (0.5 s a step beside another worker), and the
    transformers by 6 % (Captioned Shapes, 2,500 steps) and 1-2.5 % (MNIST, CIFAR-10, 1,500 steps). The ``cpu``
    caps are now 6,000 tokenizer steps with the discriminator from step 1,000 (chapter 2's ``cpu`` start), 5,000
    and 3,000 transformer steps: at most ≈ 2 × 35 min (tokenizers side by side), 4 × 37 and 4 × 24 min
    (transformer runs with evaluation), ≈ 2.7 h as two workers if nothing converges early.

    Args:
        steps: transformer updates per run on Captioned Shapes (a cap when ``converge_tol`` is set).
        real_steps: transformer updates per run on MNIST and CIFAR-10.
        batch_size: (code grid, caption) pairs per batch.
        lr: AdamW learning rate (constant after a linear warm-up of ``warmup_steps``).
        width, depth, heads: transformer sizes (the same for ``cat`` and ``baseline``).
        seeds: seeds per (data set, model).
        n_train: Captioned Shapes training images.
        n_train_real: MNIST / CIFAR-10 training images (``None``: the whole split).
        n_test: test captions sampled once each at ``default_guidance`` for FID and accuracy (≥ 2,000 at cpu).
        n_curve: test captions sampled at every scale of ``guidance`` (the curve).
        guidance: guidance scales of the curve.
        fid_guidance: scales at which FID is also computed (on ``n_test`` samples; Inception is the costly part).
        default_guidance: the code's cond_scale, 3.
        top_k_frac: top-k as a fraction of the codebook (the code: 500 of 1024).
        top_p: nucleus mass (the code: 0.95).
        tokenizer_steps, tokenizer_batch, tokenizer_codebook: VQGAN updates (a cap: the convergence rule watches
            its reconstruction term), batch and codebook size of each data set's tokenizer.
        tokenizer_disc_start: the step the tokenizer's discriminator starts at (``None``: half of
            ``tokenizer_steps``); the rule may stop the run from 1.4 × that step on.
        classifier_steps: updates of the MNIST / CIFAR-10 class reader.
        converge_tol: relative change of the smoothed loss over the last 20 % of steps that counts as converged.
        grid_samples: samples per grid caption.
        log_every, checkpoint_every: history and checkpoint intervals (steps).
    """

    steps: int
    real_steps: int
    batch_size: int = 32
    lr: float = 1e-3
    warmup_steps: int = 100
    width: int = 128
    depth: int = 4
    heads: int = 4
    seeds: int = 2
    n_train: int = 12_000
    n_train_real: int | None = 12_000
    n_test: int = 2000
    n_curve: int = 500
    guidance: tuple[float, ...] = (0.0, 1.0, 2.0, 3.0, 5.0)
    fid_guidance: tuple[float, ...] = (3.0,)
    default_guidance: float = 3.0
    top_k_frac: float = 0.5
    top_p: float = 0.95
    tokenizer_steps: int = 2000
    tokenizer_disc_start: int | None = None
    tokenizer_batch: int = 16
    tokenizer_codebook: int = 512
    classifier_steps: int = 400
    converge_tol: float | None = 0.01
    grid_samples: int = 4
    log_every: int = 25
    checkpoint_every: int = 250


#: ``smoke``: seconds (CI). ``cpu``: the 2-core machine, sized by measurement (see the chapter's note): two
#: transformers of width 128 × 4 blocks per data set, about 1.4 M (cat) and 0.9 M (baseline) parameters.
#: ``gpu``: the fact sheet's small CAT (width 384, 8 blocks, 6 heads). ``paper``: the code's ``gpt2_medium``
#: widths (24 blocks, width 1536, 16 heads) at our 8 × 8 code grid.
PRESETS: dict[str, Sizes] = {
    "smoke": Sizes(steps=3, real_steps=3, batch_size=8, warmup_steps=1, width=32, depth=1, heads=2, seeds=1,
                   n_train=64, n_train_real=64, n_test=24, n_curve=8, guidance=(0.0, 3.0), fid_guidance=(3.0,),
                   tokenizer_steps=2, tokenizer_batch=8, tokenizer_codebook=64, classifier_steps=3, converge_tol=None,
                   grid_samples=1, log_every=1, checkpoint_every=0),
    "cpu": Sizes(steps=5000, real_steps=3000, tokenizer_steps=6000, tokenizer_disc_start=1000),
    "gpu": Sizes(steps=20_000, real_steps=10_000, batch_size=128, lr=5e-4, warmup_steps=500, width=384, depth=8,
                 heads=6, seeds=3, n_train=50_000, n_train_real=None, n_test=5000, n_curve=2000,
                 fid_guidance=(0.0, 1.0, 2.0, 3.0, 5.0), tokenizer_steps=20_000, tokenizer_batch=64,
                 classifier_steps=3000,
                 log_every=100, checkpoint_every=2000),
    "paper": Sizes(steps=200_000, real_steps=100_000, batch_size=64, lr=2.56e-4, warmup_steps=5000, width=1536,
                   depth=24, heads=16, seeds=3, n_train=50_000, n_train_real=None, n_test=10_000, n_curve=2000,
                   fid_guidance=(0.0, 1.0, 2.0, 3.0, 5.0), tokenizer_codebook=1024, tokenizer_steps=100_000,
                   tokenizer_batch=8,
                   classifier_steps=5000, log_every=500, checkpoint_every=5000),
}


def sizes(preset: str, **overrides: Any) -> Sizes:
    """The :class:`Sizes` of ``preset`` with ``overrides`` (unknown keys are a clear error)."""
    return select_preset(PRESETS, check_preset(preset), **overrides)


@dataclass(frozen=True)
class TokenizerConfig:
    """One tokenizer (FA-VAE's VQGAN) per data set; its hash keys its record, checkpoint and cached codes.

    ``steps`` is a cap (the convergence rule watches the reconstruction term); ``disc_start`` the step the
    discriminator starts at (None: half of ``steps``; hashed only when set, so the configs without it keep their
    hashes).
    """

    dataset: str
    preset: str
    steps: int
    codebook_size: int
    n_train: int | None
    image_size: int = IMAGE_SIZE
    downsample: int = 4
    batch_size: int = 32
    seed: int = 0
    n_test: int = 2000
    checkpoint_every: int = field(default=0, metadata={"hash": False})
    disc_start: int | None = field(default=None, metadata={"hash": "nondefault"})

    def __post_init__(self) -> None:
        if self.dataset not in DATASETS:
            raise ValueError(f"unknown data set {self.dataset!r}; choose one of {DATASETS}")
        if self.disc_start is not None and not 0 < self.disc_start < self.steps:
            raise ValueError(f"disc_start must lie in (0, steps = {self.steps}) so that the discriminator trains, "
                             f"got {self.disc_start}; None starts it at half the run")
        if self.image_size % self.downsample:
            raise ValueError(f"downsample {self.downsample} does not divide image_size {self.image_size}")

    @property
    def gan_from(self) -> int:
        """The step the PatchGAN discriminator (and the generator's adversarial term) starts at: ``disc_start``,
        or half the run when that is None."""
        return self.disc_start if self.disc_start is not None else max(1, self.steps // 2)

    @property
    def grid(self) -> tuple[int, int]:
        side = self.image_size // self.downsample
        return (side, side)


@dataclass(frozen=True)
class ClassifierConfig:
    """The class reader of MNIST / CIFAR-10 generated images (a small CNN on the real training images)."""

    dataset: str
    steps: int
    n_train: int | None
    batch_size: int = 64
    lr: float = 2e-3
    width: int = 16
    seed: int = 0


@dataclass(frozen=True)
class RunConfig:
    """One transformer run of the chapter (its hash keys the stored result)."""

    dataset: str
    model: str
    seed: int
    preset: str
    tokenizer: TokenizerConfig
    cat: CATConfig
    train: Any  # specvae.train.TrainConfig
    n_train: int | None
    n_test: int
    n_curve: int
    guidance: tuple[float, ...]
    fid_guidance: tuple[float, ...]
    default_guidance: float
    top_k: int | None
    top_p: float | None
    grid_samples: int
    classifier: ClassifierConfig | None = None

    def __post_init__(self) -> None:
        if self.dataset not in DATASETS:
            raise ValueError(f"unknown data set {self.dataset!r}; choose one of {DATASETS}")
        if self.model not in MODELS:
            raise ValueError(f"unknown model {self.model!r}; choose one of {tuple(MODELS)}")
        for s in (*self.guidance, *self.fid_guidance, self.default_guidance):
            if not (math.isfinite(s) and s >= 0):
                raise ValueError(f"guidance scales must be >= 0, got {s}")
        if self.cat.vocab_size != self.tokenizer.codebook_size or tuple(self.cat.grid) != self.tokenizer.grid:
            raise ValueError(f"the transformer ({self.cat.vocab_size} codes, grid {self.cat.grid}) does not match its "
                             f"tokenizer ({self.tokenizer.codebook_size} codes, grid {self.tokenizer.grid})")


def _train_config(**kw: Any):
    """A :class:`specvae.train.TrainConfig` (imported late: the chapter module loads without torch work)."""
    from specvae.train import TrainConfig

    return TrainConfig(**kw)


def tokenizer_configs(preset: str = "cpu", *, datasets: Sequence[str] = DATASETS,
                      **overrides: Any) -> list[TokenizerConfig]:
    """The tokenizer of each data set at ``preset``."""
    s = sizes(preset, **overrides)
    _check_names("datasets", datasets, DATASETS)
    return [TokenizerConfig(dataset=d, preset=preset, steps=s.tokenizer_steps, codebook_size=s.tokenizer_codebook,
                            n_train=s.n_train if d == "shapes" else s.n_train_real, n_test=s.n_test,
                            batch_size=s.tokenizer_batch, disc_start=s.tokenizer_disc_start,
                            checkpoint_every=s.checkpoint_every)
            for d in datasets]


def _check_names(what: str, given: Sequence[str], valid: Sequence[str]) -> None:
    bad = [g for g in given if g not in valid]
    if bad:
        raise ValueError(f"unknown {what} {bad}; choose from {tuple(valid)}")


def configs(preset: str = "cpu", *, datasets: Sequence[str] = DATASETS, models: Sequence[str] = tuple(MODELS),
            **overrides: Any) -> list[RunConfig]:
    """The chapter's transformer runs at ``preset``: data sets × models × seeds, seed-major.

    Captioned Shapes gets ``Sizes.seeds`` seeds; MNIST and CIFAR-10 (the real-image check) one seed below the
    ``gpu`` preset.
    """
    s = sizes(preset, **overrides)
    _check_names("datasets", datasets, DATASETS)
    _check_names("models", models, tuple(MODELS))
    toks = {t.dataset: t for t in tokenizer_configs(preset, datasets=datasets, **overrides)}
    out = []
    for seed in range(s.seeds):
        for d in datasets:
            if d != "shapes" and seed > 0 and preset in ("smoke", "cpu"):
                continue
            tok = toks[d]
            for m in models:
                cat = CATConfig(vocab_size=tok.codebook_size, grid=tok.grid, width=s.width, depth=s.depth,
                                heads=s.heads, conditioning=MODELS[m])
                steps = s.steps if d == "shapes" else s.real_steps
                train = _train_config(
                    steps=steps, batch_size=s.batch_size, lr=float(s.lr), betas=(0.9, 0.95), weight_decay=0.01,
                    optimizer="adamw", grad_clip=1.0, warmup_steps=s.warmup_steps, seed=seed, log_every=s.log_every,
                    checkpoint_every=s.checkpoint_every, device="auto", precision="bf16",
                    converge_tol=s.converge_tol, converge_window=0.2, converge_min_steps=min(steps, 5 * s.log_every))
                clf = None if d == "shapes" else ClassifierConfig(d, s.classifier_steps, s.n_train_real)
                out.append(RunConfig(
                    dataset=d, model=m, seed=seed, preset=preset, tokenizer=tok, cat=cat, train=train,
                    n_train=tok.n_train, n_test=s.n_test, n_curve=min(s.n_curve, s.n_test),
                    guidance=tuple(float(g) for g in s.guidance), fid_guidance=tuple(float(g) for g in s.fid_guidance),
                    default_guidance=float(s.default_guidance),
                    top_k=max(1, int(round(s.top_k_frac * tok.codebook_size))) if s.top_k_frac else None,
                    top_p=float(s.top_p) if s.top_p else None, grid_samples=s.grid_samples, classifier=clf))
    return out


# ------------------------------------------------------------------------------------------------ data
@dataclass
class Pairs:
    """Images with their captions and ground truth (shapes: ``targets`` = ShapeSpecs per image; MNIST / CIFAR:
    ``labels``)."""

    images: Tensor
    captions: list[str]
    targets: list | None = None
    labels: Tensor | None = None
    held_out: Tensor | None = None
    notes: str = ""


def load_pairs(dataset: str, split: str, n: int | None, *, seed: int = 0) -> Pairs:
    """Images (uint8 ``(N, 3, 32, 32)``) and captions of ``dataset``'s ``split`` (first ``n``; shapes: generated)."""
    from specvae.data.captioned_shapes import captioned_shapes, class_captions

    if dataset == "shapes":
        if n is None:
            raise ValueError("Captioned Shapes needs a number of images (n)")
        d = captioned_shapes(n, split, seed=seed, image_size=IMAGE_SIZE)
        return Pairs(d.images, d.captions, targets=d.shapes, held_out=d.held_out, notes=d.notes)
    from specvae.data import load_dataset

    data = load_dataset(dataset, split, image_size=IMAGE_SIZE, limit=n, seed=seed, channels=3, progress=False)
    caps, _ = class_captions(data.labels, dataset, split, seed=seed)
    return Pairs(data.images, caps, labels=data.labels, notes=data.notes)


# ------------------------------------------------------------------------------------------------ tokenizer
class TokenizerUnavailable(RuntimeError):
    """FA-VAE's tokenizer (chapter 2's :mod:`specvae.models.vqgan`) is not available in this checkout."""


def train_tokenizer(cfg: TokenizerConfig, images: Tensor, *, run_dir: Path, progress: bool = False):
    """Train FA-VAE's tokenizer on ``images`` (or load it from ``run_dir``) and return it (eval mode).

    The model is chapter 2's FA-VAE setting (:mod:`specvae.experiments.fa_vae` variant ``favae``: CONV FCMs at the
    official four positions, image FFL, pair-wise DSL with μ = 3, σ₀ = 3; cosine/EMA codebook; PatchGAN from
    step ``cfg.gan_from`` (half the run unless ``disc_start`` is set; the rule may stop the run from 1.4 × that);
    LPIPS-AlexNet in the loss, as chapter 2's ``cpu`` preset) at 32 px with f = 4 (``ch_mult`` (1, 2, 4), 8 × 8
    codes), using chapter 2's building blocks: :class:`~specvae.models.vqgan.VQGAN`,
    :class:`~specvae.losses.vqgan.VQGANTraining`, :class:`~specvae.losses.vqgan.VQGANObjective` and its
    discriminator phase, trained by :func:`specvae.train.fit` (convergence watched on the reconstruction term).
    The trained tokenizer is saved as ``run_dir/tokenizer.safetensors`` and loaded from there next time.
    """
    try:
        from specvae.losses.adversarial import PatchDiscriminator
        from specvae.losses.spectrum import FeatureSpectrumLoss
        from specvae.losses.vqgan import VQGANLossWeights, VQGANObjective, VQGANTraining, phases
        from specvae.models.vqgan import VQGAN, VQGANConfig
    except ImportError as err:
        raise TokenizerUnavailable(
            "chapter 3 models the codes of FA-VAE's tokenizer, specvae.models.vqgan (chapter 2), which this checkout "
            f"does not have ({err}); update to a version with chapter 2 (git merge main)") from err
    from specvae.train import fit

    path = Path(run_dir) / "tokenizer.safetensors"
    if path.is_file():
        return VQGAN.load_tokenizer(path).eval()
    ch_mult = {4: (1, 2, 4), 8: (1, 2, 2, 4)}.get(cfg.downsample)
    if ch_mult is None:
        raise ValueError(f"downsample must be 4 or 8 for a {cfg.image_size}-px tokenizer, got {cfg.downsample}")
    small = cfg.preset == "smoke"
    width = 8 if small else 32
    # seeded before any weight is drawn: until 2026-11-30 the VQGAN was built before this line, from torch's
    # unseeded start-up state, so a tokenizer could not be trained again from its config
    torch.manual_seed(cfg.seed)
    vq = VQGAN(VQGANConfig(resolution=cfg.image_size, ch=width, ch_mult=ch_mult, num_res_blocks=1,
                           attn_resolutions=(), z_channels=width, codebook_size=cfg.codebook_size,
                           norm_groups=8 if small else 32, fcm="conv"))
    spectrum = FeatureSpectrumLoss(4, 3, 3.0, learnable=True, sigma_layout="shared", sigma_lr_scale=0.0125,
                                   loss_weight=1.0)
    model = VQGANTraining(vq, PatchDiscriminator(ndf=8 if small else 32), spectrum)
    disc_start = cfg.gan_from
    objective = VQGANObjective(VQGANLossWeights(gan=0.75, ffl=1.0, spectrum=0.01), disc_start=disc_start,
                               lpips_net="alex")
    tc = _train_config(steps=cfg.steps, batch_size=cfg.batch_size, lr=1e-4, betas=(0.5, 0.9), seed=cfg.seed,
                       precision="bf16", log_every=max(1, min(25, cfg.steps)), checkpoint_every=cfg.checkpoint_every,
                       converge_tol=None if small else 0.01, converge_window=0.2,
                       converge_min_steps=min(cfg.steps, disc_start + max(1, 2 * disc_start // 5)),
                       converge_on="rec",
                       device="auto")
    result = fit(model, objective, images, tc, run_dir=run_dir, progress=progress,
                 phases=phases(objective, cfg.steps))
    tok = result.model.vqgan.to("cpu").eval()
    tok.save_tokenizer(path, metadata={"chapter": CHAPTER, "dataset": cfg.dataset})
    return tok


def _fingerprint(t: Tensor) -> str:
    return hashlib.sha256(t.detach().cpu().contiguous().numpy().tobytes()).hexdigest()[:16]


@torch.no_grad()
def encode_codes(tokenizer: Any, images: Tensor, *, cache_dir: Path | None = None, batch_size: int = 256) -> Tensor:
    """Code indices ``(N, h, w)`` of uint8 ``images`` (cached in ``cache_dir`` by the images' hash)."""
    path = None if cache_dir is None else Path(cache_dir) / f"codes-{_fingerprint(images)}.pt"
    if path is not None and path.is_file():
        return torch.load(path, map_location="cpu", weights_only=True)
    out = []
    dev = _module_device(tokenizer)
    for a in range(0, images.shape[0], batch_size):
        x = images[a:a + batch_size].to(dev).float() / 255.0
        out.append(tokenizer.encode_indices(x).long().cpu())
    codes = torch.cat(out)
    if path is not None:
        from specvae.experiments.atomic import atomic_write

        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda f: torch.save(codes, f))
    return codes


@torch.no_grad()
def decode_codes(tokenizer: Any, codes: Tensor, *, batch_size: int = 256) -> Tensor:
    """uint8 images of code grids ``(N, h, w)``."""
    out = []
    dev = _module_device(tokenizer)
    for a in range(0, codes.shape[0], batch_size):
        x = tokenizer.decode_indices(codes[a:a + batch_size].to(dev)).float().clamp(0, 1)
        out.append((x * 255).round().to(torch.uint8).cpu())
    return torch.cat(out)


def _module_device(obj: Any) -> torch.device:
    if isinstance(obj, nn.Module):
        p = next(obj.parameters(), None)
        if p is not None:
            return p.device
    return torch.device("cpu")


_TOKENIZERS: dict[str, Any] = {}


def tokenizer_file(cfg: TokenizerConfig, store=None) -> Path:
    """The trained tokenizer's copy beside its record (``<hash>.tokenizer.safetensors`` in the results folder;
    float32, ≈ 14 MB at ``cpu``), so that later transformer runs on this machine do not retrain it. Git ignores
    these files: three of them would take most of the 64 MiB working tree a GPU call may carry; a checkout without
    them retrains a tokenizer on first use (seeded, so the same model: at ``cpu``, ≈ 0.34 s a step on one core
    up to the 6,000-step cap, i.e. ≤ 35 min)."""
    from specvae.experiments.hashing import config_hash

    store = store if store is not None else _store()
    return store.folder / f"{config_hash(cfg)}.tokenizer.safetensors"


def get_tokenizer(cfg: TokenizerConfig, *, progress: bool = False):
    """The trained tokenizer of ``cfg``: the stored copy beside its record (:func:`tokenizer_file`) when there is
    one, else trained on first use (checkpoint in ``ResultStore(CHAPTER).run_dir``)."""
    from specvae.experiments.hashing import config_hash
    from specvae.experiments.store import ResultStore

    key = config_hash(cfg)
    if key not in _TOKENIZERS:
        stored = tokenizer_file(cfg)
        if stored.is_file():
            from specvae.models.vqgan import VQGAN

            tok = VQGAN.load_tokenizer(stored)
        else:
            train = load_pairs(cfg.dataset, "train", cfg.n_train, seed=0)
            tok = train_tokenizer(cfg, train.images, run_dir=ResultStore(CHAPTER).run_dir(cfg), progress=progress)
        from specvae.models.cat import tokenizer_grid

        if isinstance(tok, nn.Module):
            tok.eval()
        if tokenizer_grid(tok) != cfg.grid or int(tok.codebook_size) != cfg.codebook_size:
            raise ValueError(f"the tokenizer made for {cfg} has {tok.codebook_size} codes on a {tokenizer_grid(tok)} "
                             f"grid, not {cfg.codebook_size} on {cfg.grid}")
        _TOKENIZERS[key] = tok
    return _TOKENIZERS[key]


def tokenizer_training_record(run_dir: Path) -> tuple[dict[str, Any], dict[str, list[float]] | None]:
    """Convergence figures and the reconstruction-term curve of a tokenizer's training, read from ``fit``'s last
    checkpoint in ``run_dir``: ``({"converged", "loss_rel_change_last20", "steps_done", "train_wall_s"},
    history)``, or
    ``({"converged": None}, None)`` (not recorded) when no checkpoint is there (e.g. a tokenizer loaded from its
    stored copy; ``converged`` is None too when the run had no rule, as at ``smoke``). The rule is the one ``fit``
    applied (``converge_on="rec"``, its ``converge_window``)."""
    from specvae.train import relative_change

    path = Path(run_dir) / "checkpoint.pt"
    if not path.is_file():
        return {"converged": None}, None
    state = torch.load(path, map_location="cpu", weights_only=False)
    hist = state.get("history") or {}
    steps, rec = hist.get("step") or [], hist.get("rec") or []
    window = (state.get("config") or {}).get("converge_window", 0.2)
    rule_on = (state.get("config") or {}).get("converge_tol") is not None
    record = {"converged": (state.get("converged_at") is not None) if rule_on else None,
              "steps_done": int(state.get("step", 0)),
              "train_wall_s": float(state.get("total_wall_time_s", math.nan)),
              "loss_rel_change_last20": float(relative_change(steps, rec, window=window)) if steps else math.nan}
    curves = {k: [float(v) for v in hist[k]] for k in ("step", "rec", "loss", "l1", "lpips") if k in hist}
    return record, curves


def run_tokenizer(cfg: TokenizerConfig, *, progress: bool = False) -> dict[str, Any]:
    """Train one data set's tokenizer and measure it on test images: PSNR of the reconstructions, codebook usage,
    and for Captioned Shapes the parser's accuracy on real test images and on their reconstructions (the ceiling
    any generated image can reach)."""
    from specvae.data.captioned_shapes import agreement, parse_image
    from specvae.experiments.store import ResultStore

    if not isinstance(cfg, TokenizerConfig):
        raise TypeError(f"run_tokenizer() takes a TokenizerConfig, got {type(cfg).__name__}")
    t0 = time.perf_counter()
    tok = get_tokenizer(cfg, progress=progress)
    run_dir = ResultStore(CHAPTER).run_dir(cfg)
    training, history = tokenizer_training_record(run_dir)
    stored = tokenizer_file(cfg)
    if hasattr(tok, "save_tokenizer") and not stored.is_file():
        tok.save_tokenizer(stored, metadata={"chapter": CHAPTER, "dataset": cfg.dataset})
    test = load_pairs(cfg.dataset, "test", cfg.n_test, seed=0)
    codes = encode_codes(tok, test.images, cache_dir=run_dir)
    recon = decode_codes(tok, codes)
    x, r = test.images.float() / 255, recon.float() / 255
    mse = ((x - r) ** 2).flatten(1).mean(1).clamp_min(1e-10)
    counts = torch.bincount(codes.flatten(), minlength=cfg.codebook_size).double()
    p = counts / counts.sum()
    metrics: dict[str, Any] = {
        "psnr": float((10 * torch.log10(1 / mse)).mean()),
        "codebook_used": int((counts > 0).sum()),
        "codebook_perplexity": float(torch.exp(-(p[p > 0] * p[p > 0].log()).sum())),
        "wall_s": time.perf_counter() - t0,
        **training,
    }
    if cfg.dataset == "shapes":
        real = agreement(test.targets, [parse_image(im) for im in test.images], test.held_out.tolist())
        rec = agreement(test.targets, [parse_image(im) for im in recon], test.held_out.tolist())
        metrics.update({f"parser_real_{k}": v for k, v in real.items() if not k.startswith("n_")})
        metrics.update({f"parser_recon_{k}": v for k, v in rec.items() if not k.startswith("n_")})
    k = min(16, test.images.shape[0])
    extra = {"test_notes": test.notes, "tokenizer": stored.name if stored.is_file() else None}
    return {"metrics": metrics, "extra": extra, "history": history,
            "npz": {"recon": {"real": test.images[:k].numpy(), "recon": recon[:k].numpy()}}}


# ------------------------------------------------------------------------------------------------ training
class CodeTextBatcher:
    """Infinite shuffled batches ``{"codes": (B, L), "tokens", "mask", "pooled"}`` of (code grid, caption) pairs.

    The order comes from a :class:`specvae.data.TensorBatcher` over the pair indices (same seeding and resumable
    ``state_dict``); each pair's caption is a row of a table of distinct-caption embeddings (``caption_index``).
    """

    def __init__(self, codes: Tensor, caption_index: Tensor, table: Any, batch_size: int, *, seed: int = 0,
                 device: str | torch.device | None = None) -> None:
        from specvae.data import TensorBatcher

        if codes.shape[0] != caption_index.shape[0]:
            raise ValueError(f"{codes.shape[0]} code grids but {caption_index.shape[0]} caption indices")
        self.device = torch.device(device) if device is not None else codes.device
        self.codes = codes.flatten(1).to(self.device)
        self.index = caption_index.to(self.device)
        self.tokens, self.mask, self.pooled = (table.tokens.to(self.device), table.mask.to(self.device),
                                               table.pooled.to(self.device))
        self._order = TensorBatcher(torch.zeros(codes.shape[0], 1, 1, 1, dtype=torch.uint8), batch_size, seed=seed,
                                    device="cpu")

    def __iter__(self) -> "CodeTextBatcher":
        return self

    def __next__(self) -> dict[str, Tensor]:
        idx = self._order.next_indices().to(self.device)
        row = self.index[idx]
        return {"codes": self.codes[idx], "tokens": self.tokens[row].float(), "mask": self.mask[row],
                "pooled": self.pooled[row].float()}

    def state_dict(self) -> dict:
        return self._order.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self._order.load_state_dict(state)


def make_objective():
    """``objective(model, batch, step)``: CAT's loss (Eq. 12) with condition dropout; logs bits per code too."""
    from specvae.models.cat import TextCondition

    def objective(model, batch, step):
        cond = None if model.config.conditioning == "none" else TextCondition(batch["tokens"], batch["mask"],
                                                                             batch["pooled"])
        loss = model.loss(batch["codes"], cond)
        return loss, {"bits_per_code": loss.detach() / math.log(2)}

    return objective


# ------------------------------------------------------------------------------------------------ class reader
class ClassifierNet(nn.Module):
    """A small CNN reading the class of a 32 × 32 RGB image (three conv stages, global average pooling)."""

    def __init__(self, classes: int = 10, width: int = 32) -> None:
        super().__init__()
        w = width

        def stage(cin: int, cout: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(),
                                 nn.Conv2d(cout, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU())

        self.net = nn.Sequential(stage(3, w), nn.MaxPool2d(2), stage(w, 2 * w), nn.MaxPool2d(2), stage(2 * w, 4 * w),
                                 nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4 * w, classes))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class _LabelBatcher:
    """Shuffled ``{"x", "y"}`` batches of uint8 images and labels (order and state from a TensorBatcher)."""

    def __init__(self, images: Tensor, labels: Tensor, batch_size: int, *, seed: int = 0) -> None:
        from specvae.data import TensorBatcher

        self.images, self.labels = images, labels
        self._order = TensorBatcher(torch.zeros(images.shape[0], 1, 1, 1, dtype=torch.uint8), batch_size, seed=seed,
                                    device="cpu")

    def __iter__(self) -> "_LabelBatcher":
        return self

    def __next__(self) -> dict[str, Tensor]:
        idx = self._order.next_indices()
        return {"x": self.images[idx].float() / 255, "y": self.labels[idx]}

    def state_dict(self) -> dict:
        return self._order.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self._order.load_state_dict(state)


def train_classifier(cfg: ClassifierConfig, *, progress: bool = False) -> tuple[nn.Module, float]:
    """Train (or load from its run folder) the class reader; return it and its accuracy on the real test split."""
    from specvae.experiments.store import ResultStore
    from specvae.train import fit

    train = load_pairs(cfg.dataset, "train", cfg.n_train, seed=0)
    test = load_pairs(cfg.dataset, "test", None, seed=0)
    torch.manual_seed(cfg.seed)
    net = ClassifierNet(width=cfg.width)
    tc = _train_config(steps=cfg.steps, batch_size=cfg.batch_size, lr=cfg.lr, optimizer="adam", seed=cfg.seed,
                       log_every=max(1, cfg.steps // 10), device="auto", precision="bf16")

    def objective(model, batch, step):
        loss = nn.functional.cross_entropy(model(batch["x"]), batch["y"])
        return loss, {}

    res = fit(net, objective, _LabelBatcher(train.images, train.labels, cfg.batch_size, seed=cfg.seed), tc,
              run_dir=ResultStore(CHAPTER).run_dir(cfg), progress=progress)
    net = res.model.eval()
    acc = float((classify(net, test.images) == test.labels).float().mean())
    return net, acc


@torch.no_grad()
def classify(net: nn.Module, images: Tensor, batch_size: int = 512) -> Tensor:
    """Predicted class of each uint8 image."""
    dev = _module_device(net)
    out = [net(images[a:a + batch_size].to(dev).float() / 255).argmax(-1).cpu()
           for a in range(0, images.shape[0], batch_size)]
    return torch.cat(out)


# ------------------------------------------------------------------------------------------------ evaluation
def _cond(table: Any, index: Tensor):
    from specvae.models.cat import TextCondition

    return TextCondition(table.tokens[index].float(), table.mask[index], table.pooled[index].float())


def _generate(model, tokenizer, table, index: Tensor, cfg: RunConfig, scale: float, seed: int) -> Tensor:
    from specvae.models.cat import sample

    codes = sample(model, _cond(table, index), guidance=scale, top_k=cfg.top_k, top_p=cfg.top_p, seed=seed)
    return decode_codes(tokenizer, codes)


def _score(cfg: RunConfig, images: Tensor, test: Pairs, idx: Tensor, reader: Any) -> dict[str, float]:
    from specvae.data.captioned_shapes import agreement, parse_image

    if cfg.dataset == "shapes":
        return agreement([test.targets[i] for i in idx.tolist()], [parse_image(im) for im in images],
                         test.held_out[idx].tolist())
    pred = classify(reader, images)
    return {"class_acc": float((pred == test.labels[idx]).float().mean()), "n_images": float(len(idx))}


def run(cfg: RunConfig, *, progress: bool = False) -> dict[str, Any]:
    """Train one transformer on its tokenizer's codes and evaluate it; return the store's record parts.

    Metrics (at the default guidance unless the name says ``@<scale>``): the final loss and bits per code, the
    convergence rule's figures, for Captioned Shapes the agreement figures of
    :func:`specvae.data.captioned_shapes.agreement` on ``n_test`` samples, for MNIST / CIFAR-10 ``class_acc`` and the
    reader's own ``classifier_test_acc``; ``fid@<scale>`` against ``n_test`` real test images at every scale of
    ``fid_guidance``; and the curve (``<metric>@<scale>`` on ``n_curve`` samples for each scale of ``guidance``).
    """
    from specvae.experiments.store import ResultStore
    from specvae.metrics.fid import rfid
    from specvae.models.cat import CAT, check_tokenizer
    from specvae.models.text import encode_cached
    from specvae.train import fit

    if not isinstance(cfg, RunConfig):
        raise TypeError(f"run() takes a RunConfig (see configs()), got {type(cfg).__name__}")
    torch.set_flush_denormal(True)
    t0 = time.perf_counter()
    store = ResultStore(CHAPTER)
    tok = get_tokenizer(cfg.tokenizer, progress=progress)
    check_tokenizer(cfg.cat, tok)
    train = load_pairs(cfg.dataset, "train", cfg.n_train, seed=0)
    test = load_pairs(cfg.dataset, "test", cfg.n_test, seed=0)
    tok_dir = store.run_dir(cfg.tokenizer)
    codes = encode_codes(tok, train.images, cache_dir=tok_dir)
    grid_caps = list(GRID_CAPTIONS[cfg.dataset])
    table, index = encode_cached(train.captions + test.captions + grid_caps)
    train_idx = index[:len(train.captions)]
    test_idx = index[len(train.captions):len(train.captions) + len(test.captions)]
    grid_idx = index[len(train.captions) + len(test.captions):]

    torch.manual_seed(cfg.seed)
    model = CAT(cfg.cat)
    from specvae.train import resolve_device

    device = resolve_device(cfg.train.device)
    batcher = CodeTextBatcher(codes, train_idx, table, cfg.train.batch_size, seed=cfg.seed, device=device)
    t_train = time.perf_counter()
    result = fit(model, make_objective(), batcher, cfg.train, run_dir=store.run_dir(cfg), progress=progress)
    train_wall = float(result.total_wall_time_s or result.wall_time_s)
    model = result.model.eval()
    hist = result.history
    metrics: dict[str, Any] = {
        "final_loss": float(hist["loss"][-1]) if hist.get("loss") else float("nan"),
        "final_bits_per_code": float(hist["bits_per_code"][-1]) if hist.get("bits_per_code") else float("nan"),
        "train_wall_s": train_wall, "n_params": int(sum(p.numel() for p in model.parameters())),
    }
    metrics.update(_convergence(result, hist))
    metrics["train_pairs_per_s"] = metrics["steps_done"] * cfg.train.batch_size / train_wall if train_wall else 0.0

    reader, reader_acc = (None, float("nan"))
    if cfg.classifier is not None:
        reader, reader_acc = train_classifier(cfg.classifier, progress=progress)
        metrics["classifier_test_acc"] = reader_acc

    t_eval = time.perf_counter()
    n_test = len(test.captions)
    all_idx = torch.arange(n_test)
    gen = _generate(model, tok, table, test_idx, cfg, cfg.default_guidance, seed=cfg.seed)
    metrics.update(_score(cfg, gen, test, all_idx, reader))
    fids: dict[float, float] = {}
    for s in cfg.fid_guidance:
        imgs = gen if s == cfg.default_guidance else _generate(model, tok, table, test_idx, cfg, s, seed=cfg.seed)
        fids[s] = float(rfid(test.images, imgs, dataset=f"{CHAPTER}-{cfg.dataset}", split="test",
                             progress=progress).value)
        metrics[f"fid@{s:g}"] = fids[s]
    if cfg.default_guidance in fids:
        metrics["fid"] = fids[cfg.default_guidance]
    curve: dict[str, list[float]] = {"guidance": list(cfg.guidance)}
    sub = torch.arange(cfg.n_curve)
    for s in cfg.guidance:
        imgs = _generate(model, tok, table, test_idx[sub], cfg, s, seed=cfg.seed + 1)
        for k, v in _score(cfg, imgs, test, sub, reader).items():
            if k.startswith("n_"):
                continue
            metrics[f"{k}@{s:g}"] = v
            curve.setdefault(k, []).append(v)
    metrics["eval_wall_s"] = time.perf_counter() - t_eval
    # the sample grid: fixed captions, a few samples each
    rep = grid_idx.repeat_interleave(cfg.grid_samples)
    grid_imgs = _generate(model, tok, table, rep, cfg, cfg.default_guidance, seed=1000 + cfg.seed)
    k = min(16, n_test)
    npz = {"grid": {"images": grid_imgs.numpy()},
           "samples": {"generated": gen[:k].numpy(), "real": test.images[:k].numpy()}}
    extra = {"train_notes": train.notes, "test_notes": test.notes, "n_train_pairs": len(train.captions),
             "n_test_captions": n_test, "resumed_from": result.resumed_from, "device": str(result.device),
             "total_wall_s": time.perf_counter() - t0, "top_k": cfg.top_k, "top_p": cfg.top_p,
             "distinct_captions": int(table.tokens.shape[0]), "grid_captions": grid_caps,
             "sample_captions": test.captions[:k]}
    arrays = {k: np.asarray(v, dtype=np.float64) for k, v in curve.items()}
    return {"metrics": metrics, "arrays": arrays, "history": hist, "extra": extra, "npz": npz,
            "device": result.device}


def _convergence(result: Any, hist: dict) -> dict[str, Any]:
    """The convergence rule's figures of a :class:`specvae.train.FitResult` as the chapters store them."""
    conv = result.converged
    return {"converged": None if conv is None else bool(conv), "loss_rel_change_last20": float(result.rel_change),
            "steps_done": int(result.steps)}


def _store():
    from specvae.experiments.store import ResultStore

    return ResultStore(CHAPTER)


def run_all(preset: str = "cpu", *, workers: int = 1, train: bool = True, progress: bool = True,
            datasets: Sequence[str] = DATASETS, **overrides: Any):
    """The chapter's results at ``preset``: ``(tokenizers, runs)`` as two DataFrames.

    Trains the missing tokenizers (:func:`run_tokenizer`), then the missing transformer runs (:func:`run`), each
    stored on its own; with ``train=False`` a missing result raises
    :class:`~specvae.experiments.store.MissingResultError`.
    """
    from specvae.experiments.grid import run_grid
    from specvae.experiments.store import MissingResultError

    toks = tokenizer_configs(preset, datasets=datasets, **overrides)
    cfgs = configs(preset, datasets=datasets, **overrides)
    store = _store()
    missing = [c for c in [*toks, *cfgs] if not store.exists(c)]
    if missing and not train:
        raise MissingResultError(
            f"{len(missing)} runs of chapter {CHAPTER} at preset {preset!r} have no stored result in {store.folder} "
            f"(first: {missing[0]}). Train them with `specvae run {CHAPTER} --preset {preset}` or run_all(..., "
            "train=True).")
    if missing:
        run_grid(toks, run_tokenizer, store, workers=workers, progress=progress)
        run_grid(cfgs, run, store, workers=workers, progress=progress)
    return store.frame(toks), store.frame(cfgs)


def load_records(preset: str = "cpu", **overrides: Any) -> tuple[list[dict], list[dict]]:
    """Stored records of the tokenizers and the transformer runs at ``preset``."""
    store = _store()
    return ([store.load(c) for c in tokenizer_configs(preset, **overrides)],
            [store.load(c) for c in configs(preset, **overrides)])


# ------------------------------------------------------------------------------------------------ benchmark
def bench_families(preset: str = "cpu") -> dict[str, Any]:
    """CAT and the baseline as the chapter trains them at ``preset``, for ``specvae bench``.

    The bench feeds uint8 images; the objective turns each batch into code grids (the first channel's top-left
    ``h × w`` pixels modulo the codebook size) and gives every row a fixed random caption of 24 tokens, so the
    measured step is the transformer's real one (sizes, bf16, cross-attention) on the chapter's shapes.
    """
    from specvae.bench import BenchCase
    from specvae.models.cat import CAT, TextCondition

    out: dict[str, Any] = {}
    for m in MODELS:
        cfg = next(c for c in configs(preset, datasets=("shapes",)) if c.model == m and c.seed == 0)
        gen = torch.Generator().manual_seed(0)
        images = torch.randint(0, 256, (512, 3, IMAGE_SIZE, IMAGE_SIZE), generator=gen, dtype=torch.uint8)
        tokens = torch.randn(cfg.train.batch_size, 24, cfg.cat.text_dim, generator=gen)
        mask = torch.ones(cfg.train.batch_size, 24, dtype=torch.bool)

        def objective(model, _cfg=cfg, _t=tokens, _m=mask):
            h, w = _cfg.cat.grid

            def step(mod, batch, i):
                codes = (batch[:, 0, :h, :w] * 255).round().long().flatten(1) % _cfg.cat.vocab_size
                b = codes.shape[0]
                t = _t[:b].to(codes.device)
                cond = TextCondition(t, _m[:b].to(codes.device), t.mean(1))
                loss = mod.loss(codes, cond)
                return loss, {}

            return step

        out[f"shapes-{m}"] = BenchCase(model=lambda c=cfg.cat: CAT(c), objective=objective, images=images,
                                       config=cfg.train, note=f"{MODEL_LABELS[m]}, width {cfg.cat.width}, "
                                                              f"{cfg.cat.depth} blocks")
    return out

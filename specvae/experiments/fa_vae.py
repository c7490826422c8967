"""Chapter 2, FA-VAE (Lin et al., CVPR 2023): every run behind the chapter's tables and figures.

The grid (each run: one :class:`~specvae.models.vqgan.VQGAN` trained on the 64-px CelebA-style faces by
:func:`specvae.train.fit` with the discriminator as a ``Phase``, then evaluated on held-out faces):

- **Table 2** (the ablation): every row the paper lists except row 2 ("VQ-GAN + Style [53]", defined neither in the
  paper nor in the code), at the main down-sampling factor :data:`MAIN_F` = 4: 13 runs (:data:`TABLE2_ROWS`).
- **Table 1** (compression rate): f = 4, 8, 16 × {VQGAN (row 1's setting), FA-VAE (:data:`VARIANTS`
  ``"favae"``: CONV FCM + pair-wise DSL, μ = 3, the paper's "we choose a kernel size of 3" and its ImageNet
  scripts; the FFHQ script uses μ = 9)}; the f = 4
  VQGAN is Table 2's row 1 (same config, trained once): 5 more runs.
- **Table 3** (zero-shot): the Table 1 models at f = 4 and 16 (the paper's two f) also reconstruct ImageNet samples
  (64 px) and the CIFAR-10 subset's test images (32 px), ``n_zero_shot`` of each (a seeded subset; 500 at ``cpu``,
  of 1,000 and 1,017); stored with their run.

**f mapping**: the paper trains at 256 px with f = 16 (16×16 tokens); at 64 px, f = 4 gives the same 16×16 token
grid, each token covering the same 1/16 of the image side, so :data:`MAIN_F` = 4 is our "f = 16", and Table 1's
f = 4/8/16 at 64 px give 16², 8², 4² tokens (the paper's f = 16/32/64 at 256 px in grid terms).

Evaluation per run (:func:`evaluate`): SSIM, PSNR (on [0, 1]), L1 on [-1, 1] (Table 2's L1), LPIPS (VGG, the
paper's Table 2 LPIPS; AlexNet too), rFID (TF-Inception, :func:`specvae.metrics.rfid`, on ``n_test`` held-out faces),
per-band squared error (:func:`specvae.spectral.band_errors`), codebook usage, mean feature spectra of the encoder
feature A and decoder features B (before) and C (FCM output) at every position, and the reconstructions of the first
test images. σ of DSL over training is in the run's history (``sigma_<j>``).

Contract: :data:`CHAPTER`, :class:`Sizes`, :data:`PRESETS`, :func:`configs`, :func:`run`, :func:`run_all`, plus
:func:`bench_families`, :func:`load_tokenizer`; for a lent GPU machine (:mod:`specvae.gpu`) :data:`GPU_DATA`,
:data:`GPU_WEIGHTS`, :data:`GPU_WHEELS`, :data:`GPU_WORKERS`, :func:`dataset_runs` and :func:`only_on` (every run
trains on the faces, :data:`DATASETS`). Tables and text live in :mod:`specvae.experiments.fa_vae_report`
(kept out of the run path, so editing a table does not make runs stale).

Ref: Lin et al., "Catch Missing Details: Image Reconstruction with Frequency Augmented Variational
Autoencoder", CVPR 2023, Tables 1-3, Figs. 1, 3, 7; official code oppo-us-research/FA-VAE@1b26643f (fact sheet).
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from specvae.experiments.presets import check_preset, select_preset

__all__ = [
    "CHAPTER",
    "Variant",
    "VARIANTS",
    "TABLE2_ROWS",
    "TABLE1_VARIANTS",
    "CLAIM_ROWS",
    "TABLE1_F",
    "ZERO_SHOT_F",
    "MAIN_F",
    "CH_MULT",
    "Sizes",
    "PRESETS",
    "RunConfig",
    "sizes",
    "configs",
    "table2_configs",
    "table1_configs",
    "repeat_configs",
    "GRID_PARTS",
    "build_model",
    "build_objective",
    "train_config",
    "converged",
    "evaluate",
    "run",
    "run_all",
    "load_records",
    "tokenizer_path",
    "load_tokenizer",
    "bench_families",
    "DATASETS",
    "only_on",
    "dataset_runs",
    "GPU_DATA",
    "GPU_WEIGHTS",
    "GPU_WORKERS",
    "GPU_WHEELS",
    "METRIC_WEIGHTS",
]

CHAPTER = "02_fa_vae"


@dataclass(frozen=True)
class Variant:
    """One model/loss setting of the chapter (a row of the paper's Table 2, or FA-VAE's default).

    Args:
        name: key in :data:`VARIANTS`.
        label: how tables print it.
        fcm: ``None`` (plain VQGAN) or ``"conv"``/``"res"``/``"attn"``.
        ffl: image-level focal frequency loss (α = 1).
        features: feature term over the 4 pairs: ``"none"``, ``"ffl"`` (row 5: no kernel), ``"sl"`` (fixed σ),
            ``"dsl"`` (learned σ).
        kernel_size: μ of SL/DSL.
        sigma0: initial σ (3).
        sigma_layout: ``"shared"`` (paper's pair-wise σ, rows 10-14) or ``"separate"`` (rows 7-9: σ for A and C).
        paper_row: the paper's Table 2 row (``None`` for ``favae``).
    """

    name: str
    label: str
    fcm: str | None = None
    ffl: bool = False
    features: str = "none"
    kernel_size: int | None = None
    sigma0: float = 3.0
    sigma_layout: str = "shared"
    paper_row: int | None = None


def _row(n: int, label: str, **kw: Any) -> tuple[str, Variant]:
    name = f"row{n:02d}"
    return name, Variant(name, label, paper_row=n, **kw)


VARIANTS: dict[str, Variant] = dict([
    _row(1, "VQ-GAN"),
    _row(3, "VQ-GAN + FFL", ffl=True),
    _row(4, "CONV FCM + FFL", fcm="conv", ffl=True),
    _row(5, "+ feature FFL (SL w/o kernel)", fcm="conv", ffl=True, features="ffl"),
    # row 6: the table prints μ = 9; the official script used 5 ("a small typo in the paper, in fact we used mu=5")
    _row(6, "+ SL, μ = 5", fcm="conv", ffl=True, features="sl", kernel_size=5),
    _row(7, "CONV + DSL (two σ)", fcm="conv", ffl=True, features="dsl", kernel_size=9, sigma_layout="separate"),
    _row(8, "RES + DSL (two σ)", fcm="res", ffl=True, features="dsl", kernel_size=9, sigma_layout="separate"),
    _row(9, "ATTN + DSL (two σ)", fcm="attn", ffl=True, features="dsl", kernel_size=9, sigma_layout="separate"),
    *[_row(n, f"RES + DSL, μ = {mu}", fcm="res", ffl=True, features="dsl", kernel_size=mu)
      for n, mu in ((10, 3), (11, 5), (12, 9), (13, 11), (14, 15))],
    ("favae", Variant("favae", "FA-VAE (CONV + DSL, μ = 3)", fcm="conv", ffl=True, features="dsl", kernel_size=3)),
])
#: Table 2's rows we run (row 2, "VQ-GAN + Style", is undefined)
TABLE2_ROWS: tuple[str, ...] = tuple(k for k in VARIANTS if k.startswith("row"))
#: Table 1: VQGAN vs FA-VAE at every f
TABLE1_VARIANTS: tuple[str, ...] = ("row01", "favae")
TABLE1_F: tuple[int, ...] = (4, 8, 16)
#: Table 3 (zero-shot): the paper's two f
ZERO_SHOT_F: tuple[int, ...] = (4, 16)
#: the Table 2 rows the paper's pair-wise claims compare besides VQ-GAN (row 1, one of :data:`TABLE1_VARIANTS`):
#: image FFL (row 3), an FCM (row 4), SL vs DSL (rows 6, 7); :attr:`Sizes.claim_seeds` repeats them. (Rows 8 and 9,
#: RES and ATTN, would complete "CONV is the best FCM"; at ``cpu`` they cost 1.7× and 3× a CONV row, about 2.3 h of
#: one core for the two, so that claim compares row 7's mean with their single runs.)
CLAIM_ROWS: tuple[str, ...] = ("row03", "row04", "row06", "row07")
#: the main down-sampling factor (16×16 tokens at 64 px, as the paper's f = 16 at 256 px)
MAIN_F = 4
#: ch_mult per f (taming/FA-VAE); attention at the lowest level for f ≥ 8, none for f = 4 (fact sheet §1)
CH_MULT: dict[int, tuple[int, ...]] = {4: (1, 2, 4), 8: (1, 2, 2, 4), 16: (1, 1, 2, 2, 4)}
IMAGE_SIZE = 64
#: zero-shot data sets: name -> (loader name, split, image size)
ZERO_SHOT_DATA: dict[str, tuple[str, str, int]] = {"imagenet": ("imagenet-samples", "test", 64),
                                                   "cifar10": ("cifar10", "test", 32)}
#: the data sets the chapter trains on (every run trains on the faces; the zero-shot sets are only evaluated)
DATASETS: tuple[str, ...] = ("faces",)
#: what the ``gpu`` runs read on a lent GPU machine (``specvae gpu stage 02``): one of the five faces shards, 04, the
#: smallest (about 4,240 training and 470 held-out faces; the call has little room to spare), and the 64-px ImageNet
#: samples for Table 3. The CIFAR-10 subset (16.4 MiB) does not fit beside them and the checkout, so the ``gpu``
#: preset evaluates zero-shot on ImageNet only
#: (``Sizes.zero_shot_sets``).
GPU_DATA: dict[str, tuple[str, ...]] = {"faces": ("faces64/faces64-04.zip", "imagenet-samples/imagenet-samples-64.zip")}
#: the training loss's LPIPS trunk at ``gpu`` (AlexNet, 9.4 MiB; VGG's 56 MiB does not fit a call)
GPU_WEIGHTS: tuple[str, ...] = ("lpips/alexnet_features.pth",)
#: dependencies the device's Python lacks (its package list: /work/.library/device/KINDS.md), staged as wheels:
#: ``lpips`` carries LPIPS's linear layers (:class:`specvae.metrics.LPIPS`)
GPU_WHEELS: tuple[str, ...] = ("lpips==0.1.4",)
#: runs side by side on the one GPU (see ``PRESETS`` for the arithmetic)
GPU_WORKERS = 4
#: the metric networks :func:`evaluate` needs beyond the training loss's: without them (on a lent GPU machine, where
#: the 87 MB Inception and the 59 MB VGG do not travel) a ``gpu`` run leaves rFID and LPIPS-VGG NaN and says so
METRIC_WEIGHTS: tuple[str, ...] = ("lpips-vgg", "fid-inception")


@dataclass(frozen=True)
class Sizes:
    """Sizes of one preset (every field can be overridden: ``configs("cpu", steps=500)``).

    ``cpu`` arithmetic. First measured 2026-11-30 under a load average of 6-8 (one torch thread, batch 8, 64 px,
    f = 4, ch 32, codebook 512): a generator + discriminator step took 1.6-2.8 s with bf16 autocast +
    channels_last, 3.1-3.8 s in fp32. LPIPS-VGG in the training loss added ~8 s a step (12.8 vs 5.2 s with AlexNet,
    ch 32 at f = 8, bf16), LPIPS-AlexNet < 0.5 s: the ``cpu`` preset trains with **LPIPS-AlexNet** (captions say
    so; the tables report LPIPS-VGG). ndf 32 instead of 64 cut the discriminator to 0.69 M parameters (from 2.77 M).
    A profile then showed PyTorch's channels-last group-norm backward taking 47 % of a step;
    :class:`specvae.models.taming.GroupNorm` works around it. Re-measured after that fix (one thread at normal
    priority beside two niced training processes, full GAN step from step 0, best of two 6-step ``fit`` runs):
    f = 4: row 1 (VQGAN) 0.48 s, FA-VAE (CONV FCM + DSL) 0.64 s, rows 10-14 (RES FCM) 0.94 s, row 8 (RES, two σ)
    1.14 s, row 9 (ATTN FCM: transformer layers over the 16 × 16 latent positions; at full resolution the ATTN
    kind is a res block) 1.68 s; f = 8: 0.61 / 0.67 s,
    f = 16: 0.52 / 0.70 s (VQGAN / FA-VAE). One step of every run of the grid: ≈ 14 s; 2,000 steps (the
    discriminator from step 1,000, cheaper before) ≈ 440 min of one core, evaluation ≈ 3 min a run (LPIPS,
    Inception on 500 faces) plus ≈ 3 min for the 4 zero-shot runs: ≈ 510 min of one core ≈ 4.3 h as two 1-thread
    workers. Measured in the first stored runs (Intel Xeon, two 1-thread workers side by side, 2026-12-01): 2,000
    steps took 650 s (rows 1 and 3), 930 s (FA-VAE), 1,080 s (row 8) and 1,990 s (row 9), evaluation 1.5 min
    (4 min with the zero-shot sets, 6 min when the real-image statistics are computed first): the grid is about
    3.5 h of both cores, less than the estimate above. 2,000 steps at batch 8 are 16,000 images, 0.7 of an epoch of
    the 22,240 training faces — far from the paper's 800 epochs: every table says whether a run met the convergence
    rule. Runs are stored one by one and resume from checkpoints.

    Args:
        steps: optimizer updates per run (the cap when ``converge_tol`` is set).
        batch_size: images per batch.
        lr: Adam learning rate (betas (0.5, 0.9) as FA-VAE; the official scripts' 2e-6 × batch = 1.6e-5 at batch
            8 is too slow for short runs).
        ch, num_res_blocks, z_channels, codebook_size, norm_groups: the VQGAN's size (FA-VAE: 128, 2, 256, 1024, 32).
        ndf: discriminator width (FA-VAE 64).
        disc_start: first step of the GAN term and discriminator (FA-VAE: after 1 epoch on CelebA-HQ).
        gan_weight: w_D (0.75, CelebA-HQ script).
        lpips_net: LPIPS trunk of the training loss (FA-VAE: ``"vgg"``).
        precision: ``"bf16"`` or ``"fp32"`` (TrainConfig).
        converge_tol: the convergence rule's tolerance: a run is flagged converged when the smoothed
            reconstruction term (L1 + LPIPS, ``rec``) changed by less than this (either way) over the last
            ``converge_window`` of its steps; ``None`` = no flag. Runs are **never stopped early**: Table 2 is an
            ablation, and the issue asks for every row at the same budget. (Stopping each row where the rule first
            fires confounded rows with training length: at the ``cpu`` preset the rule fired 400 steps after the
            discriminator started, where the GAN holds ``rec`` level, while before it ``rec`` had still been falling
            by 8 % per 200 steps; runs that stopped there had 400 GAN steps against the 1,000 of runs that did not.)
        converge_window: see above (0.2 = the last 20 %).
        pairwise_sigma_lr_ratio: σ's learning rate / the main one for pair-wise (shared) σ (the official code:
            2e-7 / 1.6e-5 = 0.0125 at batch 8; 0.1 at the batch 1 its scripts show); non-pair-wise σ train at the
            main rate (as the code).
        n_train: training faces (``None`` = all 22,240).
        n_test: held-out faces evaluated (rFID, SSIM, ...).
        n_zero_shot: images per zero-shot set (``None`` = all: 1,000 ImageNet, 1,017 CIFAR-10; a seeded subset
            otherwise).
        zero_shot_sets: the zero-shot sets of Table 3 (keys of ``ZERO_SHOT_DATA``), evaluated by the Table 1 runs
            at f = 4 and 16.
        seeds: seeds per configuration.
        repeat_seeds: seeds of the two Table 1 models (VQ-GAN and FA-VAE) at :data:`MAIN_F`, counting the grid's
            own: more than ``seeds`` adds runs at the further seeds (:func:`repeat_configs`), which measure how far
            one model's numbers move from seed to seed, the yardstick for differences between rows.
        claim_seeds: seeds of the Table 2 rows the paper's claims compare (:data:`CLAIM_ROWS`), counting the grid's
            own: more than ``seeds`` adds those rows at the further seeds (:func:`repeat_configs`), so that each claim
            compares means over seeds, not single runs.
        log_every, checkpoint_every: history and checkpoint intervals (steps).
        n_samples: test reconstructions saved for the figures.
        n_feature_images: test images whose feature spectra are averaged.
    """

    steps: int
    batch_size: int = 8
    lr: float = 1e-4
    ch: int = 32
    num_res_blocks: int = 1
    z_channels: int = 32
    codebook_size: int = 512
    norm_groups: int = 32
    ndf: int = 32
    disc_start: int = 750
    gan_weight: float = 0.75
    lpips_net: str = "alex"
    precision: str = "bf16"
    converge_tol: float | None = 0.01
    converge_window: float = 0.2
    pairwise_sigma_lr_ratio: float = 0.0125
    n_train: int | None = None
    n_test: int = 500
    n_zero_shot: int | None = None
    zero_shot_sets: tuple[str, ...] = ("imagenet", "cifar10")
    seeds: int = 1
    repeat_seeds: int = 1
    claim_seeds: int = 1
    log_every: int = 25
    checkpoint_every: int = 250
    n_samples: int = 8
    n_feature_images: int = 16


#: ``smoke``: seconds (CI); ``cpu``: the book's runs on the shared 2-core CPU (see :class:`Sizes`); ``gpu``: the
#: paper's widths at 64 px (ch 128, 2 res blocks, z 256, codebook 1024, ndf 64) on one H100/H200, run over several
#: 9-minute device calls (``specvae gpu stage 02``, see :mod:`specvae.gpu`): each call carries one faces shard (the
#: training set is then about 4,240 faces; the run records which shards it read), trains :data:`GPU_WORKERS` runs side
#: by side and keeps the runs that finished. What travels is capped at 64 MiB, so the ``gpu`` preset trains with
#: LPIPS-AlexNet (as ``cpu``), evaluates zero-shot on the ImageNet samples only, and leaves rFID and LPIPS-VGG NaN
#: (their networks do not travel; the record lists them in ``extra.missing_metric_weights``). 2,500 steps at batch
#: 32 (80,000 images, 18 epochs of the shard) is an estimate, not a measurement (no GPU was lent while the chapter
#: was written). Counted with ``torch.utils.flop_counter`` on the CPU: a generator step (forward and backward) is
#: 5.8 TFLOP (VQ-GAN, 58 M parameters) to 6.6 TFLOP (FA-VAE, 69 M) at f = 4; LPIPS-AlexNet and the discriminator add
#: under 2 %. Four runs side by side are 10,000 steps, ≈ 65 PFLOP: 270 s at a third of the H200's ~790 TFLOP/s bf16,
#: 410 s at a fifth, inside the 540 s a call runs. Runs that side by side all finish together, so :data:`GPU_WORKERS`
#: is 4, not more: a call whose runs do not finish keeps none of them (18 runs: five calls).
#: ``paper``: the paper's 800 epochs at batch 8 and lr 2e-6 × 8.
PRESETS: dict[str, Sizes] = {
    "smoke": Sizes(steps=4, batch_size=4, ch=8, z_channels=8, codebook_size=32, norm_groups=8, ndf=8,
                   disc_start=2, converge_tol=None, n_train=64, n_test=8, n_zero_shot=8, repeat_seeds=2,
                   claim_seeds=2, log_every=1, checkpoint_every=0, n_samples=4, n_feature_images=4),
    "cpu": Sizes(steps=2000, batch_size=8, lr=1e-4, ch=32, z_channels=32, codebook_size=512, ndf=32,
                 disc_start=1000, converge_tol=0.01, n_train=None, n_test=500, n_zero_shot=500, repeat_seeds=3,
                 claim_seeds=2, log_every=25, checkpoint_every=250),
    "gpu": Sizes(steps=2500, batch_size=32, lr=2e-4, ch=128, num_res_blocks=2, z_channels=256, codebook_size=1024,
                 ndf=64, disc_start=1250, lpips_net="alex", converge_tol=0.01, n_train=None, n_test=500,
                 n_zero_shot=None, zero_shot_sets=("imagenet",), log_every=50, checkpoint_every=500),
    "paper": Sizes(steps=800 * 2780, batch_size=8, lr=1.6e-5, ch=128, num_res_blocks=2, z_channels=256,
                   codebook_size=1024, ndf=64, disc_start=2780, lpips_net="vgg", converge_tol=None, n_train=None,
                   n_test=2471, log_every=500, checkpoint_every=10_000),
}


@dataclass(frozen=True)
class RunConfig:
    """One training run of the chapter (its hash keys the stored result)."""

    variant: str
    f: int
    seed: int
    preset: str
    steps: int
    batch_size: int
    lr: float
    ch: int
    num_res_blocks: int
    z_channels: int
    codebook_size: int
    norm_groups: int
    ndf: int
    disc_start: int
    gan_weight: float
    lpips_net: str
    precision: str
    converge_tol: float | None
    converge_window: float
    pairwise_sigma_lr_ratio: float
    n_train: int | None
    n_test: int
    n_zero_shot: int | None
    zero_shot: bool = False
    save_tokenizer: bool = False
    #: added after the ``cpu`` runs were stored: enters the hash only when it is not both sets (their behaviour)
    zero_shot_sets: tuple[str, ...] = field(default=("imagenet", "cifar10"), metadata={"hash": "nondefault"})
    n_samples: int = 8
    n_feature_images: int = 16
    log_every: int = field(default=25, metadata={"hash": False})
    checkpoint_every: int = field(default=250, metadata={"hash": False})

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ValueError(f"unknown variant {self.variant!r}; choose one of {', '.join(VARIANTS)}")
        if self.f not in CH_MULT:
            raise ValueError(f"f = {self.f} is not one of the chapter's factors {tuple(CH_MULT)}; at {IMAGE_SIZE} px "
                             f"f must divide the image size (4, 8 or 16)")
        if IMAGE_SIZE % self.f:
            raise ValueError(f"f = {self.f} does not divide the image size {IMAGE_SIZE}")
        unknown = [z for z in self.zero_shot_sets if z not in ZERO_SHOT_DATA]
        if unknown:
            raise ValueError(f"unknown zero-shot sets {unknown}; choose from {tuple(ZERO_SHOT_DATA)}")
        if self.lpips_net not in ("alex", "vgg"):
            raise ValueError(f"lpips_net must be 'alex' or 'vgg', got {self.lpips_net!r}")
        from specvae.losses.adversarial import check_disc_start

        check_disc_start(self.disc_start, self.steps)
        v = VARIANTS[self.variant]
        if v.kernel_size is not None and v.kernel_size // 2 >= IMAGE_SIZE // self.f:
            raise ValueError(f"{self.variant}: kernel size μ = {v.kernel_size} needs μ//2 < the latent side "
                             f"{IMAGE_SIZE // self.f} at f = {self.f} (reflect padding); use a smaller f")

    @property
    def variant_spec(self) -> Variant:
        return VARIANTS[self.variant]

    @property
    def dataset(self) -> str:
        """The training data set (every run of the chapter trains on the faces)."""
        return "faces"


def sizes(preset: str, **overrides: Any) -> Sizes:
    """The :class:`Sizes` of ``preset`` with ``overrides`` (typed; unknown keys are a clear error)."""
    return select_preset(PRESETS, check_preset(preset), **overrides)


def _config(s: Sizes, preset: str, variant: str, f: int, seed: int) -> RunConfig:
    return RunConfig(
        variant=variant, f=f, seed=seed, preset=preset, steps=s.steps, batch_size=s.batch_size, lr=float(s.lr),
        ch=s.ch, num_res_blocks=s.num_res_blocks, z_channels=s.z_channels, codebook_size=s.codebook_size,
        norm_groups=s.norm_groups, ndf=s.ndf, disc_start=s.disc_start, gan_weight=float(s.gan_weight),
        lpips_net=s.lpips_net, precision=s.precision,
        converge_tol=None if s.converge_tol is None else float(s.converge_tol),
        converge_window=float(s.converge_window), pairwise_sigma_lr_ratio=float(s.pairwise_sigma_lr_ratio),
        n_train=s.n_train, n_test=s.n_test, n_zero_shot=s.n_zero_shot,
        zero_shot=variant in TABLE1_VARIANTS and f in ZERO_SHOT_F,
        save_tokenizer=variant == "favae" and f in (4, 8) and seed == 0,  # the one load_tokenizer reads
        zero_shot_sets=tuple(s.zero_shot_sets),
        n_samples=s.n_samples, n_feature_images=s.n_feature_images, log_every=s.log_every,
        checkpoint_every=s.checkpoint_every)


def table2_configs(preset: str = "cpu", *, rows: Sequence[str] = TABLE2_ROWS, **overrides: Any) -> list[RunConfig]:
    """Table 2's runs at :data:`MAIN_F` (``rows``: a subset of :data:`TABLE2_ROWS`)."""
    s = sizes(preset, **overrides)
    bad = [r for r in rows if r not in TABLE2_ROWS]
    if bad:
        raise ValueError(f"unknown Table 2 rows {bad}; choose from {TABLE2_ROWS} (row 2 is undefined in the paper)")
    return [_config(s, preset, r, MAIN_F, seed) for seed in range(s.seeds) for r in rows]


def table1_configs(preset: str = "cpu", *, factors: Sequence[int] = TABLE1_F, **overrides: Any) -> list[RunConfig]:
    """Table 1's runs: VQGAN and FA-VAE at each f of ``factors`` (Table 3 reads the f = 4 and 16 ones)."""
    s = sizes(preset, **overrides)
    return [_config(s, preset, v, f, seed) for seed in range(s.seeds) for f in factors for v in TABLE1_VARIANTS]


def repeat_configs(preset: str = "cpu", **overrides: Any) -> list[RunConfig]:
    """The runs at further seeds, all at :data:`MAIN_F`: VQ-GAN and FA-VAE at the seeds from ``seeds`` to
    ``repeat_seeds`` − 1 (they measure run-to-run spread), then the :data:`CLAIM_ROWS` at the seeds from ``seeds`` to
    ``claim_seeds`` − 1 (the claims then compare seed means); none where those counts are ≤ ``seeds``."""
    s = sizes(preset, **overrides)
    return ([_config(s, preset, v, MAIN_F, seed) for seed in range(s.seeds, s.repeat_seeds) for v in TABLE1_VARIANTS]
            + [_config(s, preset, r, MAIN_F, seed) for seed in range(s.seeds, s.claim_seeds) for r in CLAIM_ROWS])


#: the parts of the grid :func:`configs` can select
GRID_PARTS = ("table2", "table1", "repeats")


def configs(preset: str = "cpu", *, tables: Sequence[str] = GRID_PARTS, **overrides: Any) -> list[RunConfig]:
    """All runs of the chapter at ``preset``: Table 2, then Table 1, then the repeats (duplicates removed: 18 at one
    seed, plus 2 repeats at ``cpu``)."""
    unknown = [t for t in tables if t not in GRID_PARTS]
    if unknown:
        raise ValueError(f"unknown tables {unknown}; choose from {', '.join(map(repr, GRID_PARTS))} (Table 3 reads "
                         "Table 1's runs)")
    out: list[RunConfig] = []
    if "table2" in tables:
        out += table2_configs(preset, **overrides)
    if "table1" in tables:
        out += [c for c in table1_configs(preset, **overrides) if c not in out]
    if "repeats" in tables:
        out += [c for c in repeat_configs(preset, **overrides) if c not in out]
    return out


# ------------------------------------------------------------------------------------------------ building
def model_config(cfg: RunConfig):
    """The :class:`~specvae.models.vqgan.VQGANConfig` of a run."""
    from specvae.models.vqgan import VQGANConfig

    v = cfg.variant_spec
    return VQGANConfig(resolution=IMAGE_SIZE, ch=cfg.ch, ch_mult=CH_MULT[cfg.f], num_res_blocks=cfg.num_res_blocks,
                       attn_resolutions=() if cfg.f == 4 else (IMAGE_SIZE // cfg.f,), z_channels=cfg.z_channels,
                       codebook_size=cfg.codebook_size, norm_groups=cfg.norm_groups, fcm=v.fcm)


def build_model(cfg: RunConfig):
    """The :class:`~specvae.losses.vqgan.VQGANTraining` of a run (VQGAN, discriminator, feature loss with σ)."""
    from specvae.losses.adversarial import PatchDiscriminator
    from specvae.losses.spectrum import FeatureSpectrumLoss
    from specvae.losses.vqgan import VQGANTraining
    from specvae.models.vqgan import VQGAN

    v = cfg.variant_spec
    vq = VQGAN(model_config(cfg))
    spectrum = None
    if v.features != "none":
        kernel = v.kernel_size if v.features in ("sl", "dsl") else None
        ratio = cfg.pairwise_sigma_lr_ratio if v.sigma_layout == "shared" else 1.0
        spectrum = FeatureSpectrumLoss(4, kernel, v.sigma0, learnable=v.features == "dsl",
                                       sigma_layout=v.sigma_layout, sigma_lr_scale=ratio, loss_weight=1.0)
    disc = PatchDiscriminator(ndf=cfg.ndf) if cfg.gan_weight > 0 else None
    return VQGANTraining(vq, disc, spectrum)


def build_objective(cfg: RunConfig, lpips: torch.nn.Module | None = None):
    """The generator objective of a run (:class:`~specvae.losses.vqgan.VQGANObjective`)."""
    from specvae.losses.vqgan import VQGANLossWeights, VQGANObjective

    v = cfg.variant_spec
    weights = VQGANLossWeights(gan=cfg.gan_weight, ffl=1.0 if v.ffl else 0.0,
                               spectrum=0.01 if v.features != "none" else 0.0)
    return VQGANObjective(weights, disc_start=cfg.disc_start, lpips=lpips, lpips_net=cfg.lpips_net)


def train_config(cfg: RunConfig):
    """The run's :class:`specvae.train.TrainConfig` (Adam (0.5, 0.9); the rule's figure measured on ``rec``).

    Every run trains all ``cfg.steps`` (no early stop: the same budget for every row, see :class:`Sizes`);
    :func:`converged` applies ``cfg.converge_tol`` to the figure afterwards.
    """
    from specvae.train import TrainConfig

    return TrainConfig(steps=cfg.steps, batch_size=cfg.batch_size, lr=cfg.lr, betas=(0.5, 0.9), seed=cfg.seed,
                       precision=cfg.precision, channels_last=True, log_every=cfg.log_every,
                       checkpoint_every=cfg.checkpoint_every, converge_tol=None,
                       converge_window=cfg.converge_window, converge_on="rec", device="auto")


def converged(cfg: RunConfig, rel_change: float) -> bool | None:
    """The convergence flag of a run that trained all its steps: ``|rel_change| < cfg.converge_tol``.

    ``rel_change`` is :attr:`specvae.train.FitResult.rel_change` (the relative change of the smoothed ``rec``
    over the last ``cfg.converge_window`` of the steps). ``None`` when the config sets no tolerance; ``False``
    when the figure is NaN (too few logged points to judge).
    """
    if cfg.converge_tol is None:
        return None
    return bool(math.isfinite(rel_change) and abs(rel_change) < cfg.converge_tol)


def _load(name: str, split: str, size: int, limit: int | None):
    from specvae.data import load_dataset

    return load_dataset(name, split, image_size=size, limit=limit, seed=0, channels=3, progress=False)


# ------------------------------------------------------------------------------------------------ evaluation
def _mean_log_spectrum(feat: torch.Tensor) -> np.ndarray:
    """Mean over images and channels of the centred per-channel log-magnitude ``ln(|F| + 1e-8)``, ``(H, W)``."""
    from specvae.spectral import log_magnitude

    return log_magnitude(feat.float()).mean(dim=(0, 1)).cpu().numpy()


@torch.no_grad()
def feature_spectra(vqgan, images: torch.Tensor) -> dict[str, np.ndarray]:
    """Mean log spectra of the encoder taps (``A_<tap>``), decoder features (``B_<pos>``) and FCM outputs
    (``C_<pos>``) for ``images`` (uint8), eval mode (Fig. 3 analogue; "average of all channels" read as the mean of
    per-channel log spectra, so signed activations do not cancel)."""
    was = vqgan.training
    vqgan.eval()
    try:
        device = next(vqgan.parameters()).device
        out = vqgan(images.to(device).float() / 255.0)
        arrays = {f"A_{k}": _mean_log_spectrum(v) for k, v in out.enc_feats.items()
                  if k in ("conv_in", "down", "mid", "z")}
        arrays.update({f"B_{k}": _mean_log_spectrum(v) for k, v in out.dec_feats.items() if not k.startswith("level")})
        arrays.update({f"C_{k}": _mean_log_spectrum(v) for k, v in out.fcm_feats.items()})
        return arrays
    finally:
        vqgan.train(was)


@torch.no_grad()
def evaluate(vqgan, images: torch.Tensor, *, dataset: str, split: str, batch_size: int = 64,
             progress: bool = False, skip: Sequence[str] = ()) -> dict[str, Any]:
    """Reconstruct ``images`` (uint8 ``(N, 3, H, W)``) in eval mode and compute every metric of the chapter.

    Returns ``{"metrics": {...}, "recon": uint8 tensor}``: ``ssim``, ``psnr`` (means over images, [0, 1]),
    ``l1_pm`` (mean |x − x̂| on [-1, 1], Table 2's L1), ``lpips_vgg``, ``lpips_alex`` (means), ``rfid`` (+ numbers
    of images), ``band_<name>`` (mean per-band squared error), codebook ``perplexity`` and ``usage``.
    ``skip`` names metric networks of :data:`METRIC_WEIGHTS` that are not available (``"lpips-vgg"``,
    ``"fid-inception"``): their metrics are NaN (``rfid_n_*`` 0) instead of an error.
    """
    from specvae import spectral
    from specvae.metrics import codebook_usage, lpips_distance, psnr, rfid, ssim

    was = vqgan.training
    vqgan.eval()
    device = next(vqgan.parameters()).device
    recon, idx = [], []
    try:
        for start in range(0, images.shape[0], batch_size):
            x = images[start:start + batch_size].to(device).float() / 255.0
            out = vqgan(x)
            recon.append(out.recon.clamp(0, 1).float().cpu())
            idx.append(out.indices.cpu())
    finally:
        vqgan.train(was)
    xr = torch.cat(recon)
    # evaluate the stored (uint8) reconstructions, as a saved image would be
    r8 = (xr * 255).round().clamp(0, 255).to(torch.uint8)
    x = images.float() / 255.0
    y = r8.float() / 255.0
    m: dict[str, Any] = {
        "ssim": float(ssim(x, y).mean()), "psnr": float(psnr(x, y).clamp(max=100).mean()),
        "l1_pm": float((2 * (x - y)).abs().mean()),
        "lpips_vgg": math.nan if "lpips-vgg" in skip else float(lpips_distance(y, x, "vgg").mean()),
        "lpips_alex": float(lpips_distance(y, x, "alex").mean()) if min(x.shape[-2:]) >= 32 else math.nan,
    }
    if "fid-inception" in skip:
        m.update({"rfid": math.nan, "rfid_n_real": 0, "rfid_n_recon": 0})
    else:
        fid = rfid(images, r8, dataset=dataset, split=f"{split}-n{images.shape[0]}", progress=progress)
        m.update(fid.as_dict())
    for band, err in spectral.band_errors(x, y).items():
        m[f"band_{band}"] = float(err.mean())
    usage = codebook_usage(torch.cat(idx), vqgan.codebook_size)
    m["perplexity"], m["usage"] = usage["perplexity"], usage["usage_fraction"]
    return {"metrics": m, "recon": r8}


def _radial(x: torch.Tensor) -> np.ndarray:
    from specvae import spectral

    return spectral.radial_profile(x.float() / 255.0, log=True, gray=True).mean(0).cpu().numpy()


# ------------------------------------------------------------------------------------------------ one run
def tokenizer_path(cfg: RunConfig, store=None) -> Path:
    """Where a run's tokenizer is stored beside its run JSON: ``<hash>.tokenizer.safetensors``."""
    from specvae.experiments.hashing import config_hash

    store = store if store is not None else _store()
    return store.folder / f"{config_hash(cfg)}.tokenizer.safetensors"


def load_tokenizer(preset: str = "cpu", f: int = MAIN_F, *, variant: str = "favae", **overrides: Any):
    """The trained tokenizer (a :class:`~specvae.models.vqgan.VQGAN`, eval mode) of ``variant`` at ``f``.

    Stored for FA-VAE (:data:`VARIANTS` ``"favae"``) at f = 4 and 8 beside the run's JSON, by the run itself; the
    files are not committed (about 14 MB each at ``cpu``, see ``.gitignore``). Raises ``FileNotFoundError`` (with
    the command that recreates it) when missing.
    """
    from specvae.models.vqgan import VQGAN

    s = sizes(preset, **overrides)
    cfg = _config(s, preset, variant, f, 0)
    store = _store()
    path = tokenizer_path(cfg, store)
    if not path.is_file():
        how = (f"its run is stored without it (tokenizers are not committed): delete {store.path_for(cfg)} and run "
               f"`specvae run {CHAPTER} --preset {preset}`, which retrains that run" if store.exists(cfg)
               else f"train it with `specvae run {CHAPTER} --preset {preset}` (Table 1 runs)")
        raise FileNotFoundError(f"no tokenizer stored for {variant} at f = {f}, preset {preset!r} ({path}); {how}")
    return VQGAN.load_tokenizer(path)


def run(cfg: RunConfig, *, progress: bool = False) -> dict[str, Any]:
    """Train and evaluate one run; return ``{"metrics", "arrays", "history", "extra", "npz", "device"}``.

    Checkpoints go to ``ResultStore(CHAPTER).run_dir(cfg)`` (a killed run resumes); the trained autoencoder is also
    written there as ``tokenizer.safetensors``, and beside the run JSON for ``cfg.save_tokenizer`` runs.
    """
    from specvae.losses.vqgan import phases as disc_phases
    from specvae.train import fit

    if not isinstance(cfg, RunConfig):
        raise TypeError(f"run() takes a RunConfig (see configs()), got {type(cfg).__name__}")
    t0 = time.perf_counter()
    if not torch.cuda.is_available():
        torch.set_flush_denormal(True)
    train = _load("faces", "train", IMAGE_SIZE, cfg.n_train)
    test = _load("faces", "test", IMAGE_SIZE, cfg.n_test)
    torch.manual_seed(cfg.seed)
    model = build_model(cfg)
    objective = build_objective(cfg)
    tc = train_config(cfg)
    store = _store()
    run_dir = store.run_dir(cfg)
    ph = disc_phases(objective, cfg.steps) if model.disc is not None else ()
    result = fit(model, objective, train.images, tc, run_dir=run_dir, progress=progress, phases=ph)
    vq = result.model.vqgan
    train_wall = float(result.total_wall_time_s or result.wall_time_s)
    t_eval = time.perf_counter()
    from specvae.metrics.weights import unavailable

    missing = unavailable(METRIC_WEIGHTS) if cfg.preset == "gpu" else []
    ev = evaluate(vq, test.images, dataset="faces", split="test", progress=progress, skip=missing)
    metrics = dict(ev["metrics"])
    hist = result.history
    metrics.update({
        "converged": converged(cfg, result.rel_change), "loss_rel_change_last20": float(result.rel_change),
        "steps_done": int(result.steps), "final_rec": float(hist["rec"][-1]) if hist.get("rec") else math.nan,
        "train_wall_s": train_wall,
        "train_images_per_s": result.steps * cfg.batch_size / train_wall if train_wall > 0 else math.nan,
        "n_params": int(sum(p.numel() for p in vq.parameters())),
        "n_params_disc": int(sum(p.numel() for p in model.disc.parameters())) if model.disc is not None else 0,
    })
    k = min(cfg.n_samples, test.images.shape[0])
    npz = {"samples": {"real": test.images[:k].numpy(), "recon": ev["recon"][:k].numpy()}}
    arrays: dict[str, Any] = {"profile_real": _radial(test.images), "profile_recon": _radial(ev["recon"])}
    arrays.update(feature_spectra(vq, test.images[:cfg.n_feature_images]))
    zero_shot = {}
    if cfg.zero_shot:
        for name in cfg.zero_shot_sets:
            loader, split, size = ZERO_SHOT_DATA[name]
            data = _load(loader, split, size, cfg.n_zero_shot)
            zs = evaluate(vq, data.images, dataset=loader, split=split, progress=progress, skip=missing)
            metrics.update({f"{name}_{key}": value for key, value in zs["metrics"].items()})
            npz[f"zeroshot_{name}"] = {"real": data.images[:k].numpy(), "recon": zs["recon"][:k].numpy()}
            zero_shot[name] = {"n_images": int(data.images.shape[0]), "notes": data.notes}
    metrics["eval_wall_s"] = time.perf_counter() - t_eval
    vq_cpu = vq.to("cpu")
    vq_cpu.save_tokenizer(Path(run_dir) / "tokenizer.safetensors", metadata={"run": str(cfg)})
    tokenizer_file = None
    if cfg.save_tokenizer:
        n_bytes = 4 * metrics["n_params"]
        dtype = torch.float32 if n_bytes <= 20e6 else torch.bfloat16
        tokenizer_file = vq_cpu.save_tokenizer(tokenizer_path(cfg, store), dtype=dtype,
                                               metadata={"chapter": CHAPTER, "variant": cfg.variant, "f": str(cfg.f)})
    extra = {
        "train_notes": train.notes, "test_notes": test.notes, "n_train_images": int(train.images.shape[0]),
        "n_test_images": int(test.images.shape[0]), "resumed_from": result.resumed_from,
        "device": str(result.device), "total_wall_s": time.perf_counter() - t0, "zero_shot": zero_shot,
        "tokenizer": None if tokenizer_file is None else Path(tokenizer_file).name,
        "pair_names": [list(p) for p in vq.pair_names()], "missing_metric_weights": missing,
    }
    return {"metrics": metrics, "arrays": arrays, "history": hist, "extra": extra, "npz": npz,
            "device": result.device}


def _store():
    from specvae.experiments.store import ResultStore

    return ResultStore(CHAPTER)


def only_on(cfgs: Sequence[RunConfig], datasets: Sequence[str] | None) -> list[RunConfig]:
    """The runs of ``cfgs`` that train on ``datasets`` (all of them when ``None``; every run trains on the faces).

    Raises:
        ValueError: a name that is not one of :data:`DATASETS`.
    """
    from specvae.experiments.grid import only_datasets

    return only_datasets(cfgs, datasets, DATASETS)


def dataset_runs(dataset: str, preset: str = "gpu") -> list[RunConfig]:
    """Every run ``run_all(preset, only_datasets=(dataset,))`` trains; ``specvae gpu stage 02`` stages a data set
    while some of these are not stored."""
    return only_on(configs(preset), (dataset,))


def run_all(preset: str = "cpu", *, workers: int = 1, train: bool = True, tables: Sequence[str] = GRID_PARTS,
            progress: bool = True, only_datasets: Sequence[str] | None = None, **overrides: Any):
    """The chapter's results at ``preset`` as a DataFrame (one row per run); trains the missing runs.

    With ``train=False`` a missing result raises :class:`~specvae.experiments.store.MissingResultError`.
    ``only_datasets`` keeps the runs on those training data sets (:data:`DATASETS`; ``specvae run 02 --datasets
    faces``, as the device script passes it, see :mod:`specvae.gpu`).
    """
    from specvae.experiments.grid import run_grid
    from specvae.experiments.store import MissingResultError

    cfgs = only_on(configs(preset, tables=tables, **overrides), only_datasets)
    store = _store()
    missing = [c for c in cfgs if not store.exists(c)]
    if missing and not train:
        raise MissingResultError(
            f"{len(missing)} of {len(cfgs)} runs of chapter {CHAPTER} at preset {preset!r} have no stored result in "
            f"{store.folder} (first: {missing[0].variant} at f = {missing[0].f}). Train them with "
            f"`specvae run {CHAPTER} --preset {preset}` or run_all(..., train=True).")
    if missing:
        run_grid(cfgs, run, store, workers=workers, progress=progress)
    return store.frame(cfgs)


def load_records(preset: str = "cpu", *, train: bool = False, **overrides: Any) -> dict[tuple[str, int], dict]:
    """Stored records by ``(variant, f)`` (seed 0) at ``preset``."""
    run_all(preset, train=train, progress=False, **overrides)
    store = _store()
    return {(c.variant, c.f): store.load(c) for c in configs(preset, **overrides) if c.seed == 0}


# ------------------------------------------------------------------------------------------------ benchmarks
def bench_families(preset: str = "cpu") -> dict[str, Any]:
    """Model families for ``specvae bench`` at ``preset``: the plain VQGAN and FA-VAE (row 1, ``favae``) at f = 4.

    Each case trains the generator and discriminator (the discriminator phase starts at step 0 here, so the
    measured step is the full GAN step).
    """
    from specvae.bench import BenchCase  # the lead's benchmark module

    s = sizes(preset)
    images = _load("faces", "train", IMAGE_SIZE, 512).images
    out = {}
    for variant in TABLE1_VARIANTS:
        cfg = dataclasses.replace(_config(s, preset, variant, MAIN_F, 0), disc_start=0)
        tc = dataclasses.replace(train_config(cfg), converge_tol=None, checkpoint_every=0)

        def make_objective(model, cfg=cfg):
            obj = build_objective(cfg)
            model._bench_objective = obj  # the phases read the same objective's cached reconstruction
            return obj

        def make_phases(model, cfg=cfg):
            from specvae.losses.vqgan import phases as disc_phases

            return disc_phases(model._bench_objective, cfg.steps)

        out[f"{variant}-f{MAIN_F}"] = BenchCase(
            model=lambda cfg=cfg: build_model(cfg), objective=make_objective, images=images, config=tc,
            phases=make_phases, note=f"ch {cfg.ch}, ndf {cfg.ndf}, batch {cfg.batch_size}, LPIPS-{cfg.lpips_net}")
    return out

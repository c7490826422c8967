"""Chapter 4, FQ-VAE (Feng & Liu 2025) and its four baselines: every run behind the chapter's tables and figures.

Five methods — VQ-VAE, HQA ("HVQ-VAE"), SQ-VAE, CVQ-VAE and FQ-VAE — trained the same way on MNIST (28×28),
the CIFAR-10 subset (32×32; rFID on its 1,017 test images is **not** comparable with full-set numbers) and the
CelebA-style faces (64×64, our stand-in for CelebA). LSUN Church is not available here; its configs exist for users
who have the data (``datasets=("lsun-church",)``: 128×128, FQ-VAE's conv stage halves the resolution, §4.1).

The grid (:func:`configs`) is the union of

* **Table 1** (:func:`table1_configs`): the five methods × data sets × seeds (``Sizes.seeds`` on MNIST and CIFAR,
  ``Sizes.faces_seeds`` on faces);
* **Table 2** (:func:`table2_configs`): the ablation configurations A-I (:data:`ABLATION`) on MNIST and CIFAR (faces
  when ``Sizes.ablation_faces``); A is Table 1's VQ-VAE and I its FQ-VAE, so only B-H are new runs;
* **Table 3** (:func:`table3_configs`): D × N with D·N = U: MNIST D ∈ {1, 7} (U = 49 has no other divisor ≤ 8,
  OPEN-9), CIFAR D ∈ {1, 2, 4, 8};
* **Table 4** (:func:`table4_configs`): the FFT, conv and transformer feature extractors with everything else as
  in configuration I (the conv row is therefore configuration G; the paper derives its conv row from H).

Shared protocol (the CVQ-VAE toy protocol FQ-VAE follows, fact sheet §4.5): down-sampling f = 4, so every method
quantises the same number of code vectors U = (H/4)·(W/4) (FQ-VAE: U = D·N components); K = 512 codes for every
method; the toy conv backbone (hidden 128, residual 32, 2 residual layers, code dim 64) for the baselines; inputs
normalised to [−1, 1]; Adam with the paper's learning rates (2e-3 on MNIST, 3e-3 otherwise, §4.1) for every
method ("all experiments utilize the same downsampling rates and hyperparameter settings", §4). Each method keeps
its own loss (official codes, which the paper says it ran):

* VQ-VAE, CVQ-VAE, FQ-VAE and the ablations: ``MSE(x̂, x)/var + L_vq`` (CVQ-VAE ``main.py``: the MSE on the
  [−1, 1] scale over the variance of the training pixels in [0, 1]; 1 for faces as CVQ's CelebA);
* SQ-VAE: ``(dim_x/2)·log(Σ(x̂ − x)²/B) + KL_disc + KL_cont`` (the official ``flg_arelbo`` objective);
* HQA: per layer, ``(Σ(x̂ − x)² + 0.001·KL + 0.001·commit)/dims`` (official ``get_loss_hqa``), the two layers trained
  greedily, each for half of the run's step budget, with the gradient norm clipped at 1.0 as HQA's official
  training does (:data:`HQA_GRAD_CLIP`; the other methods are not clipped).

Training goes through :func:`specvae.train.fit` with bf16 autocast and channels_last (the quantisers and FFTs run in
float32 themselves) and the project's convergence rule on the logged pixel MSE (``converge_on="mse"``): a run stops
when that changed by less than ``converge_tol`` over the last 20 % of its steps, or at the step cap, flagged
``converged = False``.

Evaluation of each run (:func:`evaluate`, on the first ``n_test`` test images): SSIM, PSNR and VGG-LPIPS (mean and
std over images), rFID (on the first ``n_fid`` of them; their number is stored), codebook usage and perplexity
over the whole evaluation set, per-band reconstruction errors (:func:`specvae.spectral.band_errors`), the radial
power spectra of originals and reconstructions, inference throughput and peak memory (Table 4), the usage
histogram (Fig. 3), the unit information of each code (Fig. 4; faces, seed 0, on ``n_uic`` images) and a few
reconstructions (Fig. 5).

The chapter-module contract: :data:`CHAPTER`, :class:`Sizes`, :data:`PRESETS`, :func:`configs`, :func:`run`,
:func:`run_all`. Tables and figures are drawn by :mod:`specvae.experiments.fq_vae_report` (kept out of the run path).

Ref: Feng & Liu 2025, "Frequency-Quantized Variational Autoencoder Based on 2D-FFT for Enhanced Image Reconstruction
and Generation", CMC 83(2):2087-2107, §4 (Tables 1-4, Figs. 3-6); the baselines' official codes as cited in
:mod:`specvae.models.quantizers` and :mod:`specvae.models.vqvae`.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import torch

from specvae.experiments.presets import check_preset, select_preset

__all__ = [
    "CHAPTER", "DATASETS", "ALL_DATASETS", "METHODS", "METHOD_LABELS", "PAPER_DATASET", "ABLATION", "ABLATION_LABELS",
    "EXTRACTOR_LABELS", "HQA_GRAD_CLIP", "Sizes", "PRESETS", "RunConfig", "sizes", "default_dn", "configs", "table1_configs",
    "table2_configs", "table3_configs", "table4_configs", "method_config", "ablation_config", "build_model",
    "build_objective",
    "data_variance", "train_model", "evaluate", "run", "run_all", "load_records", "bench_families", "GPU_DATA",
    "GPU_WEIGHTS", "GPU_WORKERS", "trained_model", "dataset_runs", "only_on",
]

CHAPTER = "04_fq_vae"
#: the data sets we run (LSUN Church is in :data:`ALL_DATASETS` for users who have it)
DATASETS: tuple[str, ...] = ("mnist", "cifar10", "faces")
ALL_DATASETS: tuple[str, ...] = DATASETS + ("lsun-church",)
#: the paper's name of each data set (for the reference tables)
PAPER_DATASET: dict[str, str] = {"mnist": "MNIST", "cifar10": "CIFAR10", "faces": "CelebA",
                                 "lsun-church": "LSUN Church"}
METHODS: tuple[str, ...] = ("vqvae", "hqa", "sqvae", "cvqvae", "fqvae")
METHOD_LABELS: dict[str, str] = {"vqvae": "VQ-VAE", "hqa": "HVQ-VAE", "sqvae": "SQ-VAE", "cvqvae": "CVQ-VAE",
                                 "fqvae": "FQ-VAE"}
EXTRACTOR_LABELS: dict[str, str] = {"conv": "Conv", "transformer": "Transformer", "fft": "2D-FFT"}
_IMAGE_SIZE = {"mnist": 28, "cifar10": 32, "faces": 64, "lsun-church": 128}
_CHANNELS = {"mnist": 1, "cifar10": 3, "faces": 3, "lsun-church": 3}
#: FQ-VAE's (D, N) per data set: the paper's best on MNIST (D = 1) and CIFAR-10 (D = 2, N = 32); D = 2 elsewhere
_DEFAULT_DN = {"mnist": (1, 49), "cifar10": (2, 32), "faces": (2, 128), "lsun-church": (2, 512)}
#: HQA's gradient-norm clip (speechmatics/hqa trains with ``clip_grad_norm_(…, 1.0)``). Without it the top layer's
#: training blew up as the Gumbel temperature fell towards 0.001 (CIFAR-10, seed 0, cpu: the layer's MSE of the
#: normalised lower z_e rose from 0.38 to 0.65 in the last 25 steps and the stack's SSIM fell to 0.22, its bottom
#: layer alone giving 0.87); the same layer retrained with the clip at our shared lr 3e-3 gave SSIM 0.55, and with
#: HQA's own RAdam-like lr 4e-4 0.59 (256 test images, one-off check, 2026-11-30).
HQA_GRAD_CLIP: float = 1.0
#: Table 3's channel counts per data set (D·N = U)
TABLE3_D: dict[str, tuple[int, ...]] = {"mnist": (1, 7), "cifar10": (1, 2, 4, 8)}
#: Table 2: configuration → (frequency quantisation, usage/anchor re-init, Pearson dependency, GCM)
ABLATION: dict[str, tuple[bool, bool, bool, bool]] = {
    "A": (False, False, False, False), "B": (True, False, False, False), "C": (False, True, False, False),
    "D": (False, True, True, False), "E": (False, False, False, True), "F": (True, True, True, False),
    "G": (False, True, True, True), "H": (True, False, False, True), "I": (True, True, True, True),
}
ABLATION_LABELS = ("Freq. quant.", "Anchor re-init", "Pearson dep.", "GCM")


def default_dn(dataset: str) -> tuple[int, int]:
    """FQ-VAE's (D, N) for ``dataset`` (MNIST (1, 49), CIFAR-10 (2, 32), faces (2, 128), LSUN (2, 512))."""
    return _DEFAULT_DN[dataset]


@dataclass(frozen=True)
class Sizes:
    """Sizes of one preset (every field can be overridden: ``configs("cpu", steps=2000)``).

    Args:
        steps: cap on optimizer updates per run on MNIST and CIFAR (a run stops earlier when it converges).
        faces_steps: the same cap on faces (64×64).
        batch_size: images per batch on MNIST and CIFAR.
        faces_batch_size: images per batch on faces.
        lr_mnist, lr: Adam learning rates (2e-3 on MNIST, 3e-3 otherwise: §4.1).
        seeds: seeds of Table 1 on MNIST and CIFAR (0 … seeds−1).
        faces_seeds: seeds of Table 1 on faces.
        ablation_seeds: seeds of Tables 2-4's new runs.
        ablation_faces: also run Table 2's ablation on faces.
        n_train: training images per data set (``None`` = the whole train split).
        n_test: test images evaluated per run (``None`` = the whole test split).
        n_fid: test images used for rFID (≤ n_test; ``None`` = all evaluated ones).
        n_uic: images of the unit-information measurement (Fig. 4; faces, seed 0; 0 = skip).
        hidden, res_hidden, n_res: the baselines' backbone widths (toy network: 128, 32, 2).
        fq_hidden, fq_res_hidden: FQ-VAE's conv stage widths (it runs at full resolution, 16× the pixels of the
            baselines' f = 4 grid; the ``cpu`` preset narrows it to match the baselines' cost per image).
        transformer_width: width of Table 4's transformer extractor.
        codebook_size: K for every method (512).
        converge_tol: the convergence rule's relative tolerance on the logged MSE (``None`` = train to the cap).
        converge_min_steps: no early stop before this many updates.
        log_every: history interval (steps).
        checkpoint_every: checkpoint interval (steps; 0 = only at the end); a killed run resumes from it.
        n_samples: test reconstructions saved per run (Fig. 5).
        image_metrics: measure VGG-LPIPS and rFID (``False`` at ``smoke``: loading and running their networks costs
            more than the whole smoke run; those columns then show "—").

    ``cpu`` arithmetic. Measured 2026-12-01 on the shared 2-core machine under a load average of 3-5 (other jobs
    running), one torch thread, bf16 + channels_last through :func:`specvae.train.fit`, CPU seconds per update at
    the ``cpu`` sizes — MNIST (batch 64): VQ-VAE 0.08, CVQ-VAE 0.09, SQ-VAE 0.17, FQ-VAE 0.24, its conv (G) 0.10 and
    transformer 0.41, HQA 0.83 (layer 0, which works at H/2 × W/2) / 0.20 (layer 1); CIFAR-10 (batch 64): 0.11,
    0.12, 0.24, 0.49, 0.14, 0.46, HQA 1.70 / 0.39; faces (batch 32): 0.17, 0.23, 0.32, FQ-VAE 3.09 (its 512 × 4,224
    codebook: lookup and eq. 9's Pearson matrix every step), HQA 3.45 / 0.51. Evaluation per run (1,000 test
    images): Inception for rFID 0.12 s an image, VGG-LPIPS 0.01-0.05 s, unit information on the faces ≤ ~13 min
    (FQ-VAE). The 55 runs then take 7.9 CPU-hours of training if every run hits its cap (2.9 if every run converges
    at ``converge_min_steps``) plus 2.5 of evaluation: 5.4-10.4 CPU-hours, i.e. **2.7-5.2 hours as two 1-thread
    workers** on two free cores (within the ~6 h budget; twice that if the cores are shared). Runs are stored one
    by one and resume from checkpoints, so the grid can span sessions; ``seeds=2`` saves ~0.8 h.
    Measured 2026-11-30: FQ-VAE on faces spends 1.66 of its 3.57 s a step in the kernel (≈ 820 k minor page
    faults a step: glibc maps every block above 32 MiB afresh and PyTorch's CPU allocator does not cache). jemalloc
    preloaded with its decay off (``LD_PRELOAD=libjemalloc.so.2 MALLOC_CONF=dirty_decay_ms:-1,muzzy_decay_ms:-1``)
    took it to 1.81 s; glibc ``mallopt`` tuning (no mmap, no trim) to 2.07 s but its heap then grew by each large
    block (a freed block does not fit the next aligned request of the same size), so it was not adopted.
    ``specvae run`` now preloads jemalloc when it is installed (:mod:`specvae.allocator`).
    Measured in the book's cpu run (2026-11-30, two workers at nice 10, jemalloc): MNIST / CIFAR-10 runs train in
    180-320 s (HQA 1,500 s, CIFAR-10 SQ-VAE 700 s) and evaluate in 110-150 s once the real images' Inception
    statistics are cached (400-480 s for a data set's first run); FQ-VAE meets the rule at 850-875 steps, the
    baselines stop at the 1,500-step cap. About 6-8 min a run on average: ≈ 5.5 h for the 55 runs.
    """

    steps: int
    faces_steps: int
    batch_size: int = 64
    faces_batch_size: int = 32
    lr_mnist: float = 2e-3
    lr: float = 3e-3
    seeds: int = 3
    faces_seeds: int = 1
    ablation_seeds: int = 1
    ablation_faces: bool = False
    n_train: int | None = None
    n_test: int | None = None
    n_fid: int | None = None
    n_uic: int = 0
    hidden: int = 128
    res_hidden: int = 32
    n_res: int = 2
    fq_hidden: int = 128
    fq_res_hidden: int = 32
    transformer_width: int = 128
    codebook_size: int = 512
    converge_tol: float | None = 0.01
    converge_min_steps: int = 0
    log_every: int = 25
    checkpoint_every: int = 500
    n_samples: int = 8
    image_metrics: bool = True


#: ``smoke``: seconds (CI; no LPIPS/rFID). ``cpu``: at most ~6 hours of the shared 2-core machine as two 1-thread
#: workers (arithmetic in the :class:`Sizes` docstring). ``gpu``: full widths (FQ-VAE's conv stage at the baselines' 128), the whole
#: grid (73 runs) in one 9-minute call with :data:`GPU_WORKERS` processes on the one GPU (an estimate: no GPU was
#: lent while the chapter was written). ``paper``: the CVQ-VAE protocol's length (OPEN-15: 500 epochs at batch 1024).
PRESETS: dict[str, Sizes] = {
    "smoke": Sizes(steps=2, faces_steps=2, batch_size=8, faces_batch_size=4, seeds=1, faces_seeds=1, n_train=32,
                   n_test=8, n_fid=8, n_uic=2, hidden=16, res_hidden=8, n_res=1, fq_hidden=8, fq_res_hidden=4,
                   transformer_width=16, codebook_size=32, converge_tol=None, log_every=1, checkpoint_every=0,
                   n_samples=2, image_metrics=False),
    "cpu": Sizes(steps=1500, faces_steps=1000, batch_size=64, faces_batch_size=32, seeds=3, faces_seeds=1,
                 n_train=None, n_test=1000, n_fid=1000, n_uic=128, hidden=128, res_hidden=32, n_res=2,
                 fq_hidden=32, fq_res_hidden=8, transformer_width=64, converge_tol=0.01, converge_min_steps=500,
                 log_every=25, checkpoint_every=250),
    "gpu": Sizes(steps=1500, faces_steps=1000, batch_size=256, faces_batch_size=128, seeds=3, faces_seeds=3,
                 ablation_faces=True, n_train=None, n_test=None, n_fid=None, n_uic=512, converge_tol=0.01,
                 converge_min_steps=500, log_every=25, checkpoint_every=500),
    # CVQ-VAE's README run: 500 epochs at batch 1024 (MNIST 60k → 29,300 steps; faces ~22k → 10,900)
    "paper": Sizes(steps=29_300, faces_steps=10_900, batch_size=1024, faces_batch_size=1024, seeds=3, faces_seeds=3,
                   ablation_faces=True, n_train=None, n_test=None, n_fid=None, n_uic=1024, converge_tol=None,
                   log_every=100, checkpoint_every=2000),
}

#: what the ``gpu`` runs of each data set read on a lent GPU machine (``specvae gpu stage 04`` stages the data sets
#: still to run, as many as fit beside the checkout in the 64 MiB a call carries): MNIST, the CIFAR-10 subset and
#: one of the five faces shards (5,000 faces: 4,500 train, 500 test)
GPU_DATA: dict[str, tuple[str, ...]] = {
    "mnist": ("mnist/train-images-idx3-ubyte.gz", "mnist/train-labels-idx1-ubyte.gz",
              "mnist/t10k-images-idx3-ubyte.gz", "mnist/t10k-labels-idx1-ubyte.gz"),
    "cifar10": ("cifar10-subset/cifar10-subset.npz",),
    "faces": ("faces64/faces64-00.zip",),
}
#: the metric networks do not fit (Inception 87 MB, VGG 59 MB): gpu runs leave rFID and VGG-LPIPS NaN there
GPU_WEIGHTS: tuple[str, ...] = ()
#: runs side by side on the one GPU
GPU_WORKERS = 12


@dataclass(frozen=True)
class RunConfig:
    """One training run of the chapter (its hash keys the stored result).

    ``method`` is one of :data:`METHODS`. For ``"fqvae"`` the options ``extractor`` (``"fft"``, ``"conv"``,
    ``"transformer"``), ``codebook_update`` (``"none"``, ``"anchor"``, ``"dependency"``), ``gcm`` and ``D``/``N``
    select the Table 2-4 variants; for the baselines they are unused and left at their defaults.
    """

    dataset: str
    method: str
    seed: int
    preset: str
    steps: int
    batch_size: int
    lr: float
    n_train: int | None
    n_test: int | None
    n_fid: int | None
    hidden: int = 128
    res_hidden: int = 32
    n_res: int = 2
    codebook_size: int = 512
    code_dim: int = 64
    beta: float = 0.25
    D: int = 0
    N: int = 0
    extractor: str = "fft"
    codebook_update: str = "dependency"
    gcm: bool = True
    fq_hidden: int = 128
    fq_res_hidden: int = 32
    transformer_width: int = 128
    converge_tol: float | None = 0.01
    converge_min_steps: int = 0
    n_uic: int = 0
    n_samples: int = 8
    image_metrics: bool = True
    log_every: int = 25  # hashed: the convergence rule is checked at logging steps
    checkpoint_every: int = field(default=500, metadata={"hash": False})
    #: clip the global gradient norm to this value (``None``: no clipping); HQA's official training clips at 1.0
    #: (:data:`HQA_GRAD_CLIP`); hashed only when set, so the runs of the other methods keep their hashes
    grad_clip: float | None = field(default=None, metadata={"hash": "nondefault"})

    def __post_init__(self) -> None:
        if self.dataset not in ALL_DATASETS:
            raise ValueError(f"unknown data set {self.dataset!r}; choose one of {ALL_DATASETS}")
        if self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r}; choose one of {METHODS}")
        from specvae.models.fqvae import CODEBOOK_UPDATES, EXTRACTORS, check_token_parity

        if self.extractor not in EXTRACTORS:
            raise ValueError(f"unknown extractor {self.extractor!r}; choose one of {EXTRACTORS}")
        if self.codebook_update not in CODEBOOK_UPDATES:
            raise ValueError(f"unknown codebook_update {self.codebook_update!r}; choose one of {CODEBOOK_UPDATES}")
        if self.method == "fqvae" and self.extractor == "fft":
            check_token_parity((self.image_size, self.image_size), 4, self.D, self.N)
        if self.n_fid is not None and self.n_test is not None and self.n_fid > self.n_test:
            raise ValueError(f"n_fid={self.n_fid} exceeds n_test={self.n_test}: rFID uses the evaluated images")

    @property
    def image_size(self) -> int:
        return _IMAGE_SIZE[self.dataset]

    @property
    def channels(self) -> int:
        return _CHANNELS[self.dataset]

    @property
    def ablation(self) -> str | None:
        """The Table 2 configuration letter this run is (``None`` for SQ-VAE, HQA and the non-default D, N)."""
        return ablation_letter(self)


def sizes(preset: str, **overrides: Any) -> Sizes:
    """The :class:`Sizes` of ``preset`` with ``overrides`` (typed; unknown keys are a clear error)."""
    return select_preset(PRESETS, check_preset(preset), **overrides)


def _base(s: Sizes, preset: str, dataset: str, method: str, seed: int, **fq: Any) -> RunConfig:
    faces = dataset in ("faces", "lsun-church")
    D, N = fq.pop("D", None), fq.pop("N", None)
    if method == "fqvae":
        d0, n0 = default_dn(dataset)
        D, N = (d0 if D is None else D), (n0 if N is None else N)
    else:
        D, N = 0, 0
    return RunConfig(
        dataset=dataset, method=method, seed=seed, preset=preset,
        steps=s.faces_steps if faces else s.steps, batch_size=s.faces_batch_size if faces else s.batch_size,
        lr=float(s.lr_mnist if dataset == "mnist" else s.lr), n_train=s.n_train, n_test=s.n_test, n_fid=s.n_fid,
        hidden=s.hidden, res_hidden=s.res_hidden, n_res=s.n_res, codebook_size=s.codebook_size, D=D, N=N,
        fq_hidden=s.fq_hidden, fq_res_hidden=s.fq_res_hidden, transformer_width=s.transformer_width,
        converge_tol=s.converge_tol, converge_min_steps=s.converge_min_steps,
        n_uic=s.n_uic if (dataset == "faces" and seed == 0 and method in _UIC_METHODS
                          and fq.get("extractor", "fft") == "fft"
                          and fq.get("codebook_update", "dependency") == "dependency" and fq.get("gcm", True)
                          and (D, N) in ((0, 0), default_dn(dataset))) else 0,
        n_samples=s.n_samples, image_metrics=s.image_metrics, log_every=s.log_every,
        checkpoint_every=s.checkpoint_every, grad_clip=HQA_GRAD_CLIP if method == "hqa" else None, **fq)


#: the methods of Fig. 4 (unit information per code)
_UIC_METHODS = ("vqvae", "sqvae", "cvqvae", "fqvae")


def _check_names(datasets: Sequence[str]) -> None:
    bad = [d for d in datasets if d not in ALL_DATASETS]
    if bad:
        raise ValueError(f"unknown data sets {bad}; choose from {ALL_DATASETS}")


def table1_configs(preset: str = "cpu", *, datasets: Sequence[str] = DATASETS, **overrides: Any) -> list[RunConfig]:
    """Table 1: the five methods × ``datasets`` × seeds, seed-major (first seeds first)."""
    s = sizes(preset, **overrides)
    _check_names(datasets)
    out = []
    for seed in range(max(s.seeds, s.faces_seeds)):
        for d in datasets:
            if seed < (s.faces_seeds if d in ("faces", "lsun-church") else s.seeds):
                out += [_base(s, preset, d, m, seed) for m in METHODS]
    return out


def method_config(preset: str, dataset: str, method: str, seed: int = 0, **overrides: Any) -> RunConfig:
    """Table 1's run of ``method`` on ``dataset`` (FQ-VAE: configuration I with the data set's default D, N)."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {METHODS}")
    return _base(sizes(preset, **overrides), preset, dataset, method, seed)


def ablation_config(preset: str, dataset: str, letter: str, seed: int = 0, **overrides: Any) -> RunConfig:
    """The run of Table 2's configuration ``letter`` (A = Table 1's VQ-VAE, I = its FQ-VAE)."""
    if letter not in ABLATION:
        raise ValueError(f"unknown ablation configuration {letter!r}; choose one of {', '.join(ABLATION)}")
    s = sizes(preset, **overrides)
    freq, anchor, dep, gcm = ABLATION[letter]
    if letter == "A":
        return _base(s, preset, dataset, "vqvae", seed)
    update = "dependency" if dep else ("anchor" if anchor else "none")
    return _base(s, preset, dataset, "fqvae", seed, extractor="fft" if freq else "conv", codebook_update=update,
                 gcm=gcm)


def ablation_letter(cfg: RunConfig) -> str | None:
    if cfg.method == "vqvae":
        return "A"
    if cfg.method != "fqvae" or cfg.extractor == "transformer" or (cfg.D, cfg.N) != default_dn(cfg.dataset):
        return None
    key = (cfg.extractor == "fft", cfg.codebook_update != "none", cfg.codebook_update == "dependency", cfg.gcm)
    return next(k for k, v in ABLATION.items() if v == key)


def table2_configs(preset: str = "cpu", **overrides: Any) -> list[RunConfig]:
    """Table 2: configurations A-I on MNIST and CIFAR (and faces if ``ablation_faces``), ``ablation_seeds`` seeds."""
    s = sizes(preset, **overrides)
    datasets = ("mnist", "cifar10") + (("faces",) if s.ablation_faces else ())
    return [ablation_config(preset, d, k, seed, **overrides)
            for seed in range(s.ablation_seeds) for d in datasets for k in ABLATION]


def table3_configs(preset: str = "cpu", **overrides: Any) -> list[RunConfig]:
    """Table 3: FQ-VAE with every D of :data:`TABLE3_D` (N = U/D) on MNIST and CIFAR, ``ablation_seeds`` seeds."""
    s = sizes(preset, **overrides)
    out = []
    for seed in range(s.ablation_seeds):
        for d, ds in TABLE3_D.items():
            u = math.prod(default_dn(d))
            out += [_base(s, preset, d, "fqvae", seed, D=D, N=u // D) for D in ds]
    return out


def table4_configs(preset: str = "cpu", **overrides: Any) -> list[RunConfig]:
    """Table 4: configuration I with the conv, transformer and 2D-FFT extractors on MNIST and CIFAR (+ faces if
    ``ablation_faces``)."""
    s = sizes(preset, **overrides)
    datasets = ("mnist", "cifar10") + (("faces",) if s.ablation_faces else ())
    return [_base(s, preset, d, "fqvae", seed, extractor=e)
            for seed in range(s.ablation_seeds) for d in datasets for e in ("conv", "transformer", "fft")]


def configs(preset: str = "cpu", *, datasets: Sequence[str] = DATASETS, tables: Sequence[int] = (1, 2, 3, 4),
            **overrides: Any) -> list[RunConfig]:
    """Every run of the chapter at ``preset`` (the union of the tables' runs, each once), Table 1 first.

    ``datasets`` limits Table 1 (e.g. ``("lsun-church",)`` for users with LSUN); Tables 2-4 use MNIST and CIFAR.
    """
    bad = [t for t in tables if t not in (1, 2, 3, 4)]
    if bad:
        raise ValueError(f"unknown tables {bad}; choose from 1, 2, 3, 4")
    makers: dict[int, Callable[..., list[RunConfig]]] = {
        1: lambda: table1_configs(preset, datasets=datasets, **overrides),
        2: lambda: table2_configs(preset, **overrides),
        3: lambda: table3_configs(preset, **overrides), 4: lambda: table4_configs(preset, **overrides)}
    out: list[RunConfig] = []
    seen: set[RunConfig] = set()
    for t in tables:
        for c in makers[t]():
            if c not in seen:
                seen.add(c)
                out.append(c)
    return out


# ------------------------------------------------------------------------------------------------------------
# building blocks
# ------------------------------------------------------------------------------------------------------------
def build_model(cfg: RunConfig) -> torch.nn.Module:
    """The model of ``cfg`` (see the module docstring for each method)."""
    from specvae.models import quantizers as Q
    from specvae.models.fqvae import FQVAE
    from specvae.models.vqvae import HQAStack, VQAutoencoder

    K, dim = cfg.codebook_size, cfg.code_dim
    backbone = dict(in_channels=cfg.channels, hidden=cfg.hidden, res_hidden=cfg.res_hidden, n_res=cfg.n_res)
    spatial = dict(code_dim=dim, image_size=cfg.image_size, **backbone)
    if cfg.method == "vqvae":
        return VQAutoencoder(Q.VectorQuantizer(K, dim, cfg.beta), **spatial)
    if cfg.method == "cvqvae":
        return VQAutoencoder(Q.ClusteredQuantizer(K, dim, cfg.beta), **spatial)
    if cfg.method == "sqvae":
        # official configs: λ₀ = log 10 for MNIST, log 20 for CIFAR-10/CelebA
        log_var = math.log(10.0) if cfg.dataset == "mnist" else math.log(20.0)
        return VQAutoencoder(Q.StochasticQuantizer(K, dim, log_var_init=log_var), **spatial)
    if cfg.method == "hqa":
        # each HQA layer has one ×2 level, so it runs at 4× the pixels of the f = 4 backbone: at half its widths a
        # layer's convolutions cost what the backbone's do per image (FLOPs counted), and HQA's own widths are
        # smaller still; measured on the CPU, a layer-0 step still costs 8-20× a VQ-VAE step (its Gumbel-softmax
        # quantiser works on 4× the positions; see the Sizes docstring)
        half = _hqa_steps(cfg)
        return HQAStack([Q.HQAQuantizer(K, dim, anneal_steps=half[0]), Q.HQAQuantizer(K, dim, anneal_steps=half[1])],
                        in_channels=cfg.channels, hidden=cfg.hidden // 2, res_hidden=max(1, cfg.res_hidden // 2),
                        n_res=cfg.n_res, code_dim=dim)
    conv = cfg.extractor == "conv"
    return FQVAE(cfg.channels, cfg.image_size, cfg.D if not conv else 1, cfg.N if not conv else 1,
                 extractor=cfg.extractor, f=4, stage_down=1 if cfg.dataset == "lsun-church" else 0,
                 codebook_size=K, beta=cfg.beta, codebook_update=cfg.codebook_update, gcm=cfg.gcm,
                 hidden=cfg.hidden if conv else cfg.fq_hidden, res_hidden=cfg.res_hidden if conv else cfg.fq_res_hidden,
                 n_res=cfg.n_res, code_dim=dim, transformer_width=cfg.transformer_width)


def _hqa_steps(cfg: RunConfig) -> tuple[int, int]:
    """HQA's step caps per layer: half of the run's budget each (HQA trains its layers for equal epochs)."""
    first = max(1, cfg.steps // 2)
    return first, max(1, cfg.steps - first)


def data_variance(cfg: RunConfig, train_images: torch.Tensor) -> float:
    """CVQ-VAE's ``data_variance``: the variance of the training pixels in [0, 1]; 1 for faces/LSUN (CVQ's CelebA)."""
    if cfg.dataset in ("faces", "lsun-church"):
        return 1.0
    return float((train_images.double() / 255.0).var(unbiased=False))


def build_objective(cfg: RunConfig, variance: float) -> Callable:
    """``objective(model, batch, step) -> (loss, terms)`` of ``cfg.method`` (batches in [0, 1]).

    Every objective logs ``mse``, the pixel MSE on the [0, 1] scale (the convergence rule watches it).
    """
    if cfg.method == "hqa":
        def hqa_objective(model, batch, step):
            return model.layer_loss(batch)
        return hqa_objective

    dim_x = cfg.channels * cfg.image_size ** 2

    def objective(model, batch, step):
        recon, _, terms = model(batch)
        diff = recon.float() - batch.float()
        mse = diff.pow(2).mean()
        if cfg.method == "sqvae":
            recon_loss = dim_x / 2.0 * torch.log(diff.pow(2).flatten(1).sum(1).mean())
        else:
            recon_loss = 4.0 * mse / variance  # MSE on the [−1, 1] scale / var of [0, 1] pixels (CVQ-VAE main.py)
        logged = {k: v for k, v in terms.items() if k != "loss"}
        logged.update(mse=mse.detach(), recon=recon_loss.detach(), quant=terms["loss"].detach())
        return recon_loss + terms["loss"], logged

    return objective


def _load(cfg: RunConfig, split: str):
    """``cfg``'s data (at ``smoke``, generated Shapes stand in for a missing data set, and say so)."""
    from specvae.data import load_dataset, smoke_fallback

    limit = cfg.n_train if split == "train" else cfg.n_test
    return load_dataset(cfg.dataset, split, image_size=cfg.image_size, limit=limit, seed=0, channels=cfg.channels,
                        progress=False, fallback=smoke_fallback(cfg.preset))


def _train_config(cfg: RunConfig, steps: int):
    """The :class:`specvae.train.TrainConfig` of a run (bf16 + channels_last, the convergence rule on ``mse``)."""
    from specvae.train import TrainConfig

    return TrainConfig(steps=steps, batch_size=cfg.batch_size, lr=cfg.lr, seed=cfg.seed, log_every=cfg.log_every,
                       checkpoint_every=cfg.checkpoint_every, grad_clip=cfg.grad_clip, device="auto",
                       precision="bf16", channels_last=True,
                       converge_tol=cfg.converge_tol, converge_window=0.2,
                       converge_min_steps=min(cfg.converge_min_steps, steps), converge_on="mse")


def _fit_summary(result: Any) -> dict[str, Any]:
    return {"converged": result.converged, "rel_change": float(result.rel_change), "steps": int(result.steps),
            "wall": float(result.total_wall_time_s or result.wall_time_s), "history": result.history}


def train_model(cfg: RunConfig, model: torch.nn.Module, images: torch.Tensor, *, run_dir=None,
                progress: bool = False) -> dict[str, Any]:
    """Train ``model`` as ``cfg`` says (HQA: its two layers one after the other); return a summary dict
    ``{converged, rel_change, steps, wall, history}`` (HQA: both layers' histories concatenated with a ``layer``
    column, ``converged`` = both layers converged, ``rel_change`` = the larger of the two layers' figures)."""
    from pathlib import Path

    from specvae.train import fit

    objective = build_objective(cfg, data_variance(cfg, images))
    if cfg.method != "hqa":
        result = fit(model, objective, images, _train_config(cfg, cfg.steps), run_dir=run_dir, progress=progress)
        return _fit_summary(result)
    parts = []
    for layer, steps in enumerate(_hqa_steps(cfg)):
        model.set_active_layer(layer)
        sub = None if run_dir is None else Path(run_dir) / f"layer{layer}"
        result = fit(model, objective, images, _train_config(cfg, steps), run_dir=sub, progress=progress)
        parts.append(_fit_summary(result))
    model.set_active_layer(model.n_layers - 1)
    model.requires_grad_(True)
    hist: dict[str, list[float]] = {}
    offset = 0
    for part in parts:
        h = part["history"]
        before, n = len(hist.get("step", [])), len(h["step"])
        for k in sorted(set(hist) | set(h)):
            column = hist.setdefault(k, [math.nan] * before)
            column.extend([s + offset for s in h[k]] if k == "step" else h.get(k, [math.nan] * n))
        offset += part["steps"]
    flags = [p["converged"] for p in parts]
    return {"converged": None if any(f is None for f in flags) else all(flags),
            "rel_change": max([p["rel_change"] for p in parts if p["rel_change"] == p["rel_change"]] or [math.nan]),
            "steps": sum(p["steps"] for p in parts),
            "wall": sum(p["wall"] for p in parts), "history": hist, "per_layer_steps": [p["steps"] for p in parts],
            "per_layer_converged": flags, "per_layer_rel_change": [p["rel_change"] for p in parts]}


# ------------------------------------------------------------------------------------------------------------
# evaluation
# ------------------------------------------------------------------------------------------------------------
def _reconstruct(model, images: torch.Tensor, batch_size: int, seed: int):
    """Reconstructions (float [0, 1], clamped, CPU) and code ids of ``images`` (uint8), in eval mode, seeded."""
    device = next(model.parameters()).device
    torch.manual_seed(seed)  # HQA draws its codes at test time
    recons, ids = [], []
    with torch.no_grad():
        for i in range(0, images.shape[0], batch_size):
            x = images[i:i + batch_size].to(device).float() / 255.0
            r, idx, _ = model(x)
            recons.append(r.float().clamp(0, 1).cpu())
            ids.append(idx.reshape(idx.shape[0], -1).cpu())
    return torch.cat(recons), torch.cat(ids)


def _throughput(model, images: torch.Tensor, batch_size: int = 64, repeats: int = 3) -> float:
    """Inference images/s at ``batch_size`` after one warm-up batch (Table 4; OPEN-10)."""
    device = next(model.parameters()).device
    x = (images[:batch_size].to(device).float() / 255.0)
    with torch.no_grad():
        model(x)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        for _ in range(repeats):
            model(x)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
    return repeats * x.shape[0] / (time.perf_counter() - t0)


def _heap_in_use() -> int | None:
    """Bytes of the C heap in use, or None where it cannot be read.

    Under jemalloc (preloaded by ``specvae run``, :mod:`specvae.allocator`): its ``stats.allocated`` after an
    ``epoch`` refresh (``mallctl``). Otherwise glibc's ``mallinfo2`` (small blocks + mmap'ed blocks); glibc's
    counters see nothing of what jemalloc serves, so they are never read under jemalloc.
    """
    import ctypes

    proc = ctypes.CDLL(None)
    mallctl = getattr(proc, "mallctl", None)
    if mallctl is not None:
        epoch, value = ctypes.c_uint64(1), ctypes.c_size_t(0)
        size = ctypes.c_size_t(ctypes.sizeof(value))
        if mallctl(b"epoch", None, None, ctypes.byref(epoch), ctypes.c_size_t(ctypes.sizeof(epoch))) != 0:
            return None
        if mallctl(b"stats.allocated", ctypes.byref(value), ctypes.byref(size), None, ctypes.c_size_t(0)) != 0:
            return None
        return int(value.value)

    class _MallInfo2(ctypes.Structure):
        _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                    "fsmblks", "uordblks", "fordblks", "keepcost")]

    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallinfo2.restype = _MallInfo2
    except (OSError, AttributeError):
        return None
    info = libc.mallinfo2()
    return int(info.uordblks + info.hblkhd)


def peak_memory_mb(model, images: torch.Tensor, batch_size: int = 64) -> float:
    """Peak memory (MB) allocated by one test forward of ``batch_size`` images (Table 4's "peak memory").

    CUDA: ``max_memory_allocated`` above the memory held before the call. CPU: the largest rise of the C heap in use
    (:func:`_heap_in_use`: jemalloc's ``stats.allocated`` when it is preloaded, else glibc's ``mallinfo2``), read
    after every aten operation of the forward through a ``TorchDispatchMode`` (NaN where neither can be read).
    """
    from torch.utils._python_dispatch import TorchDispatchMode

    device = next(model.parameters()).device
    x = images[:batch_size].to(device).float() / 255.0
    with torch.no_grad():
        if device.type == "cuda":
            torch.cuda.synchronize(device)
            base = torch.cuda.memory_allocated(device)
            torch.cuda.reset_peak_memory_stats(device)
            model(x)
            torch.cuda.synchronize(device)
            return (torch.cuda.max_memory_allocated(device) - base) / 2 ** 20
        start = _heap_in_use()
        if start is None:
            return float("nan")

        class _Peak(TorchDispatchMode):
            peak = 0

            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                out = func(*args, **(kwargs or {}))
                self.peak = max(self.peak, (_heap_in_use() or 0) - start)
                return out

        with _Peak() as probe:
            model(x)
    return probe.peak / 2 ** 20


@torch.no_grad()
def evaluate(model: torch.nn.Module, cfg: RunConfig, test_images: torch.Tensor, *, progress: bool = False,
             lpips: bool = True, fid: bool = True) -> dict[str, Any]:
    """Reconstruct ``test_images`` (uint8) and measure them; returns ``{"metrics", "arrays", "npz", "extra"}``.

    Metrics: ``mse``, ``psnr_mean/std``, ``ssim_mean/std``, ``lpips_vgg_mean/std``, ``rfid`` (and ``rfid_n``),
    ``usage`` (share of the K codes used over the evaluation set), ``perplexity``, ``dead_codes``,
    ``band_mse_<band>`` (each frequency band's share of the per-image MSE, mean over images), ``infer_images_per_s``,
    ``peak_memory_mb``, and for Fig. 4 ``uic_mean`` (with ``uic`` per code in the arrays).
    """
    from specvae import spectral
    from specvae.metrics.codebook import codebook_usage, unit_information_capacity
    from specvae.metrics.image import psnr, ssim
    from specvae.metrics.summary import mean_std

    model.eval()
    recon, ids = _reconstruct(model, test_images, 64, cfg.seed)
    real = test_images.float() / 255.0
    metrics: dict[str, Any] = {"n_test": int(real.shape[0]), "mse": float((recon - real).pow(2).mean())}
    metrics.update(mean_std(psnr(recon, real), "psnr"))
    metrics.update(mean_std(torch.cat([ssim(recon[i:i + 256], real[i:i + 256]) for i in range(0, len(real), 256)]),
                            "ssim"))
    if lpips:
        from specvae.metrics.lpips import lpips_distance

        metrics.update(mean_std(lpips_distance(recon, real, "vgg", batch_size=64), "lpips_vgg"))
    else:
        metrics.update(lpips_vgg_mean=float("nan"), lpips_vgg_std=float("nan"))
    if not fid:
        metrics.update(rfid=float("nan"), rfid_n=0)
    else:
        from specvae.metrics.fid import rfid

        n = real.shape[0] if cfg.n_fid is None else min(cfg.n_fid, real.shape[0])
        res = rfid(test_images[:n], recon[:n], dataset=cfg.dataset, split=f"test{n}", progress=progress)
        metrics["rfid"], metrics["rfid_n"] = float(res.value), int(res.n_recon)
    K = model.quantizer.num_codes
    use = codebook_usage(ids, K)
    metrics.update(usage=use["usage_fraction"], perplexity=use["perplexity"], dead_codes=use["n_dead"])
    bands = spectral.band_errors(recon, real)
    for band, v in bands.items():
        metrics[f"band_mse_{band}"] = float(v.mean())
    metrics["infer_images_per_s"] = _throughput(model, test_images)
    metrics["peak_memory_mb"] = peak_memory_mb(model, test_images)
    h, w = real.shape[-2:]
    arrays: dict[str, Any] = {
        "usage_histogram": use["histogram"].numpy(),
        "freqs": spectral.frequency_axis(h, w).cpu().numpy(),
        "profile_real": spectral.radial_profile(real, log=True, gray=True).double().mean(0).numpy(),
        "profile_recon": spectral.radial_profile(recon, log=True, gray=True).double().mean(0).numpy(),
    }
    if cfg.n_uic > 0:
        n = min(cfg.n_uic, test_images.shape[0])
        device = next(model.parameters()).device
        shape = ids.shape[1:]

        def decode(codes):
            return model.decode_codes(codes.reshape(codes.shape[0], *_code_grid(model, shape)).to(device)).float()

        uic = unit_information_capacity(decode, ids[:n], real[:n], K, codebook=_codes(model.quantizer),
                                        batch_size=64, progress=progress)
        arrays["uic"] = uic["capacity"].numpy()
        used = uic["counts"] > 0
        metrics["uic_mean"] = float(uic["capacity"][used].mean()) if bool(used.any()) else float("nan")
        metrics["uic_base_mse"] = float(uic["base_mse"])
    k = min(cfg.n_samples, test_images.shape[0])
    npz = {"samples": {"real": test_images[:k].numpy(),
                       "recon": (recon[:k] * 255).round().clamp(0, 255).to(torch.uint8).numpy()}}
    return {"metrics": metrics, "arrays": arrays, "npz": npz, "extra": {}}


def _codes(quantizer) -> torch.Tensor:
    """The code vectors as the quantiser looks them up (unit rows for ℓ2-normalised codes), detached, on the CPU."""
    return quantizer.codes().detach().float().cpu()


def _code_grid(model, flat_shape) -> tuple[int, ...]:
    """The code-id grid a model's ``decode_codes`` expects: ``(h, w)`` for spatial VQ models, ``(U,)`` for FQ-VAE."""
    if hasattr(model, "tokens"):
        return (int(model.tokens),)
    n = int(np.prod(flat_shape))
    side = int(round(math.sqrt(n)))
    return (side, n // side)


def _train_run(cfg: RunConfig, run_dir, *, progress: bool = False):
    """Load ``cfg``'s data, seed, build and train its model with checkpoints in ``run_dir``: ``(train data, test
    data, model, training summary)``. The one training path of :func:`run` and :func:`retrain_checkpoint`, so a
    recreated checkpoint is trained exactly as the stored run was (the test split is loaded before seeding, as the
    grid always did)."""
    torch.set_flush_denormal(True)
    train = _load(cfg, "train")
    test = _load(cfg, "test")
    torch.manual_seed(cfg.seed)
    model = build_model(cfg)
    summary = train_model(cfg, model, train.images, run_dir=run_dir, progress=progress)
    return train, test, model, summary


def run(cfg: RunConfig, *, progress: bool = False) -> dict[str, Any]:
    """Train and evaluate one run; return ``{"metrics", "arrays", "history", "extra", "npz", "device"}``.

    Module-level, so a process pool (:func:`specvae.experiments.run_grid`) can call it. Checkpoints go to
    ``ResultStore(CHAPTER).run_dir(cfg)``, so a killed run resumes where it stopped.
    """
    from specvae.experiments.store import ResultStore

    if not isinstance(cfg, RunConfig):
        raise TypeError(f"run() takes a RunConfig (see configs()), got {type(cfg).__name__}")
    t0 = time.perf_counter()
    train, test, model, summary = _train_run(cfg, ResultStore(CHAPTER).run_dir(cfg), progress=progress)
    t_eval = time.perf_counter()
    missing = _missing_metric_weights() if cfg.preset == "gpu" else []
    ev = evaluate(model, cfg, test.images, progress=progress, lpips=cfg.image_metrics and "lpips-vgg" not in missing,
                  fid=cfg.image_metrics and "fid-inception" not in missing)
    metrics = dict(ev["metrics"])
    n_params = int(sum(p.numel() for p in model.parameters()))
    train_ips = summary["steps"] * cfg.batch_size / summary["wall"] if summary["wall"] > 0 else float("nan")
    metrics.update({
        "converged": summary["converged"], "loss_rel_change_last20": summary["rel_change"],
        "steps_done": summary["steps"], "train_wall_s": summary["wall"], "train_images_per_s": train_ips,
        "seconds_per_epoch": (train.images.shape[0] / train_ips if train_ips == train_ips and train_ips > 0
                              else float("nan")),
        "n_params": n_params, "eval_wall_s": time.perf_counter() - t_eval,
        "data_variance": data_variance(cfg, train.images),
        "final_mse_train": float(summary["history"]["mse"][-1]) if summary["history"].get("mse") else float("nan"),
    })
    extra = {"train_notes": train.notes, "test_notes": test.notes, "stand_in": train.stand_in or test.stand_in,
             "n_train_images": int(train.images.shape[0]),
             "n_test_images": int(test.images.shape[0]), "total_wall_s": time.perf_counter() - t0,
             "missing_metric_weights": missing, **{k: v for k, v in summary.items() if k.startswith("per_layer")}}
    device = str(next(model.parameters()).device)
    return {"metrics": metrics, "arrays": ev["arrays"], "history": summary["history"], "extra": extra,
            "npz": ev["npz"], "device": device}


def trained_model(cfg: RunConfig, runs_root=None) -> torch.nn.Module:
    """The trained model of ``cfg`` from its checkpoint in ``ResultStore(CHAPTER).run_dir(cfg)`` (eval mode, CPU).

    For Fig. 6's prior over codes (the models offer ``encode_indices``/``decode_indices``). Checkpoints are not
    committed: this works where the run was trained (or its ``runs/`` folder was copied).
    """
    from pathlib import Path

    from specvae.train import load_checkpoint

    run_dir = _checkpoint_dir(cfg, runs_root)
    if not (run_dir / "checkpoint.pt").is_file():
        raise FileNotFoundError(f"no checkpoint of {cfg} in {run_dir}: train the run here first "
                                f"(run_all({cfg.preset!r})), recreate it with retrain_checkpoint(cfg) when its "
                                "result is stored, or copy its runs/ folder")
    model = build_model(cfg)
    model.load_state_dict(load_checkpoint(run_dir)["model"])
    return model.eval()


def _checkpoint_dir(cfg: RunConfig, runs_root=None):
    """The folder of the checkpoint that holds ``cfg``'s whole trained model (HQA: its second layer's)."""
    from pathlib import Path

    run_dir = Path(_store().run_dir(cfg, runs_root))
    return run_dir / "layer1" if cfg.method == "hqa" else run_dir


def has_checkpoint(cfg: RunConfig, runs_root=None) -> bool:
    """Whether :func:`trained_model` can load ``cfg`` here (its checkpoint is in the runs folder)."""
    return (_checkpoint_dir(cfg, runs_root) / "checkpoint.pt").is_file()


def _stored_threads(record: dict[str, Any]) -> int | None:
    """The torch thread count a stored run trained with, from its provenance's device line ("…, 1 torch threads)")."""
    import re

    found = re.search(r"(\d+) torch threads", str((record.get("provenance") or {}).get("device", "")))
    return int(found.group(1)) if found else None


def _retrain_threads(record: dict[str, Any], here: str) -> int:
    """Torch threads for retraining a stored run on the device described by ``here`` (a
    :func:`~specvae.experiments.provenance.device_name` line): the stored run's count where it trained on the same
    kind of device (the same count sums in the same order, so the training can repeat exactly), else every core
    this process has — on another CPU the training cannot repeat the stored one anyway (see
    :func:`retrain_checkpoint`), so it may as well be fast."""
    stored = str((record.get("provenance") or {}).get("device", ""))
    same_kind = stored.split(" (", 1)[0] == here.split(" (", 1)[0]
    return (_stored_threads(record) if same_kind else None) or (os.cpu_count() or 1)


#: the file :func:`retrain_checkpoint` leaves beside the recreated checkpoint (read into the prior's record)
RETRAIN_NOTE = "retrained.json"


def retrain_checkpoint(cfg: RunConfig, *, progress: bool = False) -> dict[str, Any]:
    """Recreate the checkpoint of a stored run by training it again, exactly as :func:`run` trained it.

    Checkpoints are not committed (nor kept by a fresh machine), but Fig. 6's priors need the trained faces models
    of Table 1. The training is seeded (data order, weights, quantiser) and runs on as many torch threads as the
    stored run did (read from its provenance: a reduction split over another number of threads sums in another
    order), so on the same software and the same kind of CPU it reproduces the stored run. On another CPU it does
    not: bf16 kernels differ between CPUs (AMX on Intel Xeon, AVX-512 BF16 on AMD EPYC), and the same seeded
    CVQ-VAE faces training differed from its first logged step (2026-12-01); there it trains on every core
    (:func:`_retrain_threads`). This returns (and writes to
    :data:`RETRAIN_NOTE` in the run folder) how closely it followed: the largest absolute difference between the
    new and the stored training histories over their common logged terms (0.0 = the same training, step for
    step), the steps of both, and the device lines of both (``device``, ``stored_device``). Evaluation is not
    repeated: the stored record keeps its metrics. Raises
    :class:`~specvae.experiments.store.MissingResultError` when ``cfg`` has no stored result (train it with
    :func:`run_all` instead).
    """
    import json
    from pathlib import Path

    from specvae.experiments.provenance import device_name
    from specvae.experiments.store import MissingResultError

    store = _store()
    record = store.load(cfg)
    if record is None:
        raise MissingResultError(f"{cfg} has no stored result in {store.folder}: train it with run_all() (`specvae "
                                 f"run {CHAPTER} --preset {cfg.preset}`), which also leaves its checkpoint")
    threads = torch.get_num_threads()
    torch.set_num_threads(_retrain_threads(record, device_name("auto")))
    try:
        device = device_name("auto")  # where fit trains, with the thread count just set
        summary = _train_run(cfg, store.run_dir(cfg), progress=progress)[3]
    finally:
        torch.set_num_threads(threads)
    old, new = record.get("history") or {}, summary["history"]
    diffs = [_curve_diff(old[key], new[key]) for key in sorted(set(old) & set(new) - {"step"})]
    note = {"history_max_abs_diff": max(diffs) if diffs else math.inf, "history_terms": len(diffs),
            "steps": int(summary["steps"]), "stored_steps": int(record["metrics"].get("steps_done", -1)),
            "torch": torch.__version__, "stored_torch": (record.get("provenance") or {}).get("torch_version"),
            "device": device, "stored_device": (record.get("provenance") or {}).get("device")}
    (Path(store.run_dir(cfg)) / RETRAIN_NOTE).write_text(json.dumps(note, indent=1))
    return note


def _curve_diff(old: Sequence[float], new: Sequence[float]) -> float:
    """Largest absolute difference of two logged curves; inf when their lengths or their NaN positions differ."""
    a, b = np.asarray(old, float), np.asarray(new, float)
    if a.shape != b.shape or not np.array_equal(np.isfinite(a), np.isfinite(b)):
        return math.inf
    both = np.isfinite(a)
    return float(np.abs(a[both] - b[both]).max()) if both.any() else 0.0


def retrain_note(cfg: RunConfig) -> dict[str, Any] | None:
    """What :func:`retrain_checkpoint` wrote when it recreated ``cfg``'s checkpoint here (how closely the new training
    followed the stored one), or None when the checkpoint is the grid's own."""
    import json
    from pathlib import Path

    path = Path(_store().run_dir(cfg)) / RETRAIN_NOTE
    return json.loads(path.read_text()) if path.is_file() else None


def _missing_metric_weights() -> list[str]:
    """Metric networks not available locally (on a lent GPU machine the 87 MB Inception and the 59 MB VGG do not fit
    the 64 MiB that travels with the checkout; their metrics are then NaN and the record says so)."""
    from specvae.metrics.weights import WeightsError, resolve

    out = []
    for name in ("lpips-vgg", "fid-inception"):
        try:
            resolve(name, fetch=False)
        except WeightsError:
            out.append(name)
    return out


def _store():
    from specvae.experiments.store import ResultStore

    return ResultStore(CHAPTER)


def only_on(cfgs: Sequence[RunConfig], datasets: Sequence[str] | None) -> list[RunConfig]:
    """The runs of ``cfgs`` on ``datasets`` (all of them when ``None``), in their order.

    Raises:
        ValueError: a name that is not one of :data:`ALL_DATASETS`.
    """
    from specvae.experiments.grid import only_datasets

    return only_datasets(cfgs, datasets, ALL_DATASETS)


def dataset_runs(dataset: str, preset: str = "gpu") -> list[Any]:
    """Every run ``run_all(preset, only_datasets=(dataset,))`` trains: the tables' runs on ``dataset`` and, for the
    faces, Fig. 6's priors; ``specvae gpu stage`` stages a data set while some of these are not stored."""
    out: list[Any] = only_on(configs(preset), (dataset,))
    if dataset == "faces":
        from specvae.experiments import fq_vae_prior

        out += fq_vae_prior.configs(preset)
    return out


def run_all(preset: str = "cpu", *, workers: int = 1, train: bool = True, tables: Sequence[int] = (1, 2, 3, 4),
            datasets: Sequence[str] = DATASETS, progress: bool = True, figure6: bool = True,
            only_datasets: Sequence[str] | None = None, **overrides: Any):
    """The chapter's results at ``preset`` as a DataFrame (one row per run).

    Loads stored results and trains the missing ones with :func:`specvae.experiments.run_grid` (``workers`` processes
    side by side); with ``train=False`` a missing result raises :class:`~specvae.experiments.store.MissingResultError`.
    ``overrides`` go to :func:`sizes` (e.g. ``seeds=1``). ``datasets`` chooses Table 1's data sets (see
    :func:`configs`); ``only_datasets`` then keeps only the runs of every table on those data sets (``specvae run
    04 --datasets mnist,cifar10``: one device call carries the data of only some, see :mod:`specvae.gpu`; default
    all). With ``train`` and ``figure6`` (and Table 1 on the faces in the grid), Fig. 6's two priors
    (:mod:`specvae.experiments.fq_vae_prior`, at the preset's own prior sizes) are trained afterwards on the faces
    runs' checkpoints; their results are read with that module.
    """
    from specvae.experiments.grid import run_grid
    from specvae.experiments.store import MissingResultError

    cfgs = only_on(configs(preset, datasets=datasets, tables=tables, **overrides), only_datasets)
    store = _store()
    missing = [c for c in cfgs if not store.exists(c)]
    if missing and not train:
        raise MissingResultError(
            f"{len(missing)} of {len(cfgs)} runs of chapter {CHAPTER} at preset {preset!r} have no stored result in "
            f"{store.folder} (first: {missing[0]}). Train them with `specvae run {CHAPTER} --preset {preset}` or "
            "run_all(..., train=True) (papermill -p train True).")
    if missing:
        run_grid(cfgs, run, store, workers=workers, progress=progress)
    faces_kept = only_datasets is None or "faces" in only_datasets
    if train and figure6 and 1 in tables and "faces" in datasets and faces_kept:
        from specvae.experiments import fq_vae_prior

        fq_vae_prior.run_all(preset, workers=workers, progress=progress, grid_overrides=overrides)
    return store.frame(cfgs)


def load_records(preset: str = "cpu", *, train: bool = False, **overrides: Any) -> dict[RunConfig, dict[str, Any]]:
    """The stored record of every run of the grid at ``preset`` (training the missing ones if ``train``)."""
    run_all(preset, train=train, progress=False, **overrides)
    store = _store()
    return {c: store.load(c) for c in configs(preset, **overrides)}


def bench_families(preset: str = "cpu") -> dict[str, Any]:
    """The chapter's model families for ``specvae bench``: the five methods on CIFAR-10, Table 4's conv (G) and
    transformer extractors, and VQ-VAE / FQ-VAE on the 64×64 faces, each with its objective, random images of the
    right shape and the ``preset``'s TrainConfig."""
    from specvae.bench import BenchCase

    s = sizes(preset)
    cases: dict[str, Any] = {}
    picks = [("cifar10", m, {}) for m in METHODS] + [
        ("cifar10", "fqvae", {"extractor": "conv", "codebook_update": "dependency", "gcm": True}),
        ("cifar10", "fqvae", {"extractor": "transformer"}), ("faces", "vqvae", {}), ("faces", "fqvae", {})]
    for ds, method, fq in picks:
        cfg = _base(s, preset, ds, method, 0, **fq)
        gen = torch.Generator().manual_seed(0)
        images = torch.randint(0, 256, (4 * cfg.batch_size, cfg.channels, cfg.image_size, cfg.image_size),
                               dtype=torch.uint8, generator=gen)
        name = f"{ds}/{method}" + (f"-{fq['extractor']}" if fq else "")
        width = cfg.hidden if (method != "fqvae" or fq.get("extractor") == "conv") else cfg.fq_hidden
        cases[name] = BenchCase(model=lambda c=cfg: _bench_model(c),
                                objective=lambda m, c=cfg: build_objective(c, 0.06 if c.dataset != "faces" else 1.0),
                                images=images, config=_train_config(cfg, cfg.steps),
                                note=f"batch {cfg.batch_size}, conv width {width}")
    return cases


def _bench_model(cfg: RunConfig) -> torch.nn.Module:
    model = build_model(cfg)
    if cfg.method == "hqa":
        model.set_active_layer(0)
    return model

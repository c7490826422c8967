"""Chapter 1, "Simpler is Better" (Björk et al., ICASSP 2022): every run behind the chapter's tables and figures.

The grid is the paper's Tables 1 and 2: data sets ``shapes`` (gray, 32×32), ``mnist`` (32×32) and ``faces``
(CelebA-style, 64×64 RGB; our substitute for CelebA) × objectives ``vanilla`` (BCE + KL), ``ai`` (Durall et al.'s
azimuthal-integration loss, eq. 3), ``fft`` (Björk eq. 2 combined by eq. 3) and ``watson`` (Czolbe et al.'s
Watson-DFT replacing the BCE) × last-layer up-sampling ``transposed`` (Table 1) and ``nearest_conv5`` ("N.1.5",
Table 2) = 24 configurations, each trained with ``Sizes.seeds`` seeds. The paper omits Watson on Shapes ("did not
work correctly"); we run it anyway.

Each run (:func:`run`) trains IRMAE's VAE (:class:`specvae.models.vae.IRMAEVAE`) with :func:`specvae.train.fit`,
then evaluates on a fixed set of test images exactly as the paper's tables: the per-image RMSE in the AI domain,
in the 2-D FT domain and in the spatial domain (:func:`specvae.spectral.rmse_ai`, ``rmse_ft``, ``rmse_spatial``),
reported as mean and std over the test images; and, for Fig. 2, the average azimuthal power spectrum of the test
images and of their reconstructions. Reconstructions are taken at ``z = mu`` (the model in eval mode).

The chapter-module contract: :data:`CHAPTER`, :class:`Sizes`, :data:`PRESETS`, :func:`configs`, :func:`run`,
:func:`run_all`. Also: :func:`alpha_sweep_configs` (the α of eq. 3 is not stated in the paper), the tables and the
generated discussion live in :mod:`specvae.experiments.simpler_is_better_report` (kept apart so that editing how
results are shown never changes the code fingerprint of the runs).

Ref: Björk et al., "Simpler is Better: Spectral Regularization and Up-sampling Techniques for Variational
Autoencoders", ICASSP 2022, Sec. 3, Tables 1-2, Fig. 1-2.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch

from specvae.experiments.presets import check_preset, select_preset

__all__ = [
    "CHAPTER",
    "DATASETS",
    "OBJECTIVES",
    "CONTROLS",
    "control_configs",
    "UPSAMPLERS",
    "PAPER_DATASET",
    "OBJECTIVE_LABELS",
    "Sizes",
    "PRESETS",
    "RunConfig",
    "sizes",
    "configs",
    "alpha_sweep_configs",
    "build_model",
    "build_loss",
    "evaluate",
    "ALPHA_SWEEP",
    "run",
    "run_all",
    "all_configs",
    "bench_families",
    "GPU_DATA",
    "GPU_WEIGHTS",
    "dataset_runs",
    "only_on",
    "GPU_WORKERS",
    "load_records",
]

CHAPTER = "01_simpler_is_better"
#: our data sets, in the paper's order (``faces`` is the CelebA-style substitute for CelebA)
DATASETS: tuple[str, ...] = ("shapes", "mnist", "faces")
#: the paper's name of each of our data sets (for the reference tables)
PAPER_DATASET: dict[str, str] = {"shapes": "Shape", "mnist": "MNIST", "faces": "CelebA"}
#: objective names as the paper's tables print them (plus our control, which the paper does not have)
OBJECTIVE_LABELS: dict[str, str] = {"vanilla": "Vanilla-VAE", "watson": "Watson-DFT", "ai": "AI", "fft": "FFT",
                                    "mse": "H·W-MSE (no FFT)"}
#: objectives, in the paper's row order
OBJECTIVES: tuple[str, ...] = ("vanilla", "watson", "ai", "fft")
#: our control runs (not in the paper): ``mse`` = the FFT objective with its FFT term replaced by the pixel MSE it
#: equals by Parseval (:class:`specvae.losses.ParsevalMSE`) and without the BCE, see :func:`build_loss`
CONTROLS: tuple[str, ...] = ("mse",)
UPSAMPLERS: tuple[str, ...] = ("transposed", "nearest_conv5")
_IMAGE_SIZE = {"shapes": 32, "mnist": 32, "faces": 64}
_CHANNELS = {"shapes": 1, "mnist": 1, "faces": 3}
_ARCH = {"shapes": "shapes", "mnist": "mnist", "faces": "celeba"}


@dataclass(frozen=True)
class Sizes:
    """Sizes of one preset (every field can be overridden: ``configs("cpu", steps=2000)``).

    Args:
        steps: optimizer updates per run for Shapes and MNIST (the cap when ``converge_tol`` is set).
        faces_steps: optimizer updates per run for faces (64×64, the wide net; a cap likewise).
        batch_size: images per batch (IRMAE: 32).
        lr: Adam learning rate (IRMAE: 1e-4; Adam betas (0.9, 0.999)).
        seeds: seeds per configuration (0 … seeds−1); the paper gives none.
        n_train: training images per data set (``None`` = the whole train split).
        n_test: test images evaluated per run (``None`` = the whole test split).
        latent_dim: IRMAE's ``n`` (128).
        beta: IRMAE's KL weight (0.1).
        alpha: Björk's eq. (3) α for the ``fft`` and ``ai`` objectives (not stated in the paper; see notes).
        width_div: divide the Shapes and MNIST nets' hidden widths by this (1 = IRMAE; >1 only to fit a CPU).
        faces_width_div: divide the faces net's hidden widths by this (1 = IRMAE; >1 only to fit a CPU).
        precision: ``"bf16"`` (autocast; FFTs and losses in float32) or ``"fp32"`` (:class:`specvae.train.TrainConfig`).
        converge_tol: stop a run once its smoothed training loss changed by less than this fraction (either way) over
            the last 20 % of its steps (``None``: always train the full ``steps``); see
            :func:`specvae.train.relative_change`.
        converge_min_epochs: never stop before this many epochs of the training set.
        log_every: history interval (steps).
        checkpoint_every: checkpoint interval (steps, 0 = only at the end); a killed run resumes from it.
        n_samples: test images whose reconstructions are saved (``.npz``) for Fig. 1.
    """

    steps: int
    faces_steps: int
    batch_size: int = 32
    lr: float = 1e-4
    seeds: int = 3
    n_train: int | None = None
    n_test: int | None = 1000
    latent_dim: int = 128
    beta: float = 0.1
    alpha: float = 0.5
    width_div: int = 1
    faces_width_div: int = 1
    log_every: int = 50
    checkpoint_every: int = 1000
    n_samples: int = 8
    precision: str = "bf16"
    converge_tol: float | None = None
    converge_min_epochs: float = 0.0


#: ``smoke``: seconds (CI). ``cpu``: what this edition reports, sized to the project's 2-core AMX-BF16 CPUs (two
#: 1-thread runs side by side; ``specvae bench 01`` measures the nets): bf16 autocast + channels-last, batch 64,
#: Adam lr 5e-4, every run trained until the convergence rule holds (smoothed training loss improved by < 1 %
#: over the last 20 % of its steps, after at least 5 epochs) or the cap: 15,000 steps for Shapes/MNIST (19 / 16
#: epochs) with the nets' widths ÷ 4, 5,000 steps for faces (14 epochs) with the faces net's widths ÷ 8 (IRMAE's
#: full faces net, 35 M parameters, trains at ~7 img/s on one core). Measured for scale while the other cores
#: were busy: MNIST ÷4 ~2,100 img/s and faces ÷8 ~400 img/s per 1-thread process (vanilla objective; Watson-DFT
#: costs 2.7× on faces, AI/FFT 1.4×), so the 84 runs take ~5-8 hours of wall time at the caps, less where the
#: rule stops them. ``gpu``: IRMAE's widths, one H100/H200, 6 runs side by side. ``paper``: IRMAE's 100 epochs.
PRESETS: dict[str, Sizes] = {
    "smoke": Sizes(steps=2, faces_steps=2, batch_size=8, seeds=1, n_train=64, n_test=16, faces_width_div=8,
                   width_div=4, log_every=1, checkpoint_every=0, n_samples=4),
    "cpu": Sizes(steps=15_000, faces_steps=5_000, batch_size=64, lr=5e-4, seeds=3, n_train=None, n_test=1000,
                 width_div=4, faces_width_div=8, log_every=50, checkpoint_every=500, precision="bf16",
                 converge_tol=0.01, converge_min_epochs=5.0),
    # not yet run on a GPU: the caps are estimates (see book/reproducibility.md, "Running the gpu preset")
    "gpu": Sizes(steps=10_000, faces_steps=6_000, batch_size=64, lr=5e-4, seeds=3, n_train=None, n_test=None,
                 faces_width_div=1, log_every=100, checkpoint_every=2000, precision="bf16", converge_tol=0.01,
                 converge_min_epochs=5.0),
    # IRMAE: 100 epochs at batch 32 (MNIST 60k: 187,500 steps; faces 22,240 train images: 69,500 steps)
    "paper": Sizes(steps=187_500, faces_steps=69_500, batch_size=32, seeds=3, n_train=None, n_test=None,
                   faces_width_div=1, log_every=500, checkpoint_every=5000),
}


#: what the ``gpu`` runs of each data set read on a lent GPU machine (``specvae gpu stage 01`` stages the data
#: sets still to run, as many as fit beside the checkout in the 64 MiB a call carries): MNIST, and two of the five
#: faces shards, the two smallest, 00 and 04 (about 8,740 training faces); Shapes are generated
GPU_DATA: dict[str, tuple[str, ...]] = {
    "shapes": (),
    "mnist": ("mnist/train-images-idx3-ubyte.gz", "mnist/train-labels-idx1-ubyte.gz",
              "mnist/t10k-images-idx3-ubyte.gz", "mnist/t10k-labels-idx1-ubyte.gz"),
    "faces": ("faces64/faces64-00.zip", "faces64/faces64-04.zip"),
}
#: the Watson-DFT parameters (``specvae gpu stage`` copies them from the weights root)
GPU_WEIGHTS: tuple[str, ...] = ("watson/gray_watson_fft_trial0.pth", "watson/rgb_watson_fft_trial0.pth")
#: runs side by side on the one GPU
GPU_WORKERS = 6


@dataclass(frozen=True)
class RunConfig:
    """One training run of the chapter (its hash keys the stored result)."""

    dataset: str
    objective: str
    upsample: str
    seed: int
    preset: str
    steps: int
    batch_size: int
    lr: float
    n_train: int | None
    n_test: int | None
    latent_dim: int = 128
    beta: float = 0.1
    alpha: float = 0.5
    width_div: int = 1
    # the convergence rule smooths the logged intervals, so the logging interval can move the stopping step
    log_every: int = 50
    checkpoint_every: int = field(default=1000, metadata={"hash": False})
    n_samples: int = 8
    precision: str = "bf16"
    converge_tol: float | None = None
    converge_min_steps: int = 0

    def __post_init__(self) -> None:
        if self.dataset not in DATASETS:
            raise ValueError(f"unknown data set {self.dataset!r}; choose one of {DATASETS}")
        if self.objective not in OBJECTIVES + CONTROLS:
            raise ValueError(f"unknown objective {self.objective!r}; choose one of {OBJECTIVES + CONTROLS}")
        if self.upsample not in UPSAMPLERS:
            raise ValueError(f"unknown up-sampling {self.upsample!r}; choose one of {UPSAMPLERS}")
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1] (Björk eq. 3), got {self.alpha}")

    @property
    def image_size(self) -> int:
        return _IMAGE_SIZE[self.dataset]

    @property
    def channels(self) -> int:
        return _CHANNELS[self.dataset]


def sizes(preset: str, **overrides: Any) -> Sizes:
    """The :class:`Sizes` of ``preset`` with ``overrides`` (typed; unknown keys are a clear error)."""
    return select_preset(PRESETS, check_preset(preset), **overrides)


#: training-split sizes (images) of the data sets as the chapter loads them, for ``converge_min_epochs``
_TRAIN_SIZE = {"shapes": 50_000, "mnist": 60_000, "faces": 22_239}


def _config(s: Sizes, preset: str, dataset: str, objective: str, upsample: str, seed: int,
            alpha: float | None = None) -> RunConfig:
    n_train = min(s.n_train, _TRAIN_SIZE[dataset]) if s.n_train else _TRAIN_SIZE[dataset]
    return RunConfig(
        dataset=dataset, objective=objective, upsample=upsample, seed=seed, preset=preset,
        steps=s.faces_steps if dataset == "faces" else s.steps, batch_size=s.batch_size, lr=float(s.lr),
        n_train=s.n_train, n_test=s.n_test, latent_dim=s.latent_dim, beta=float(s.beta),
        alpha=float(s.alpha if alpha is None else alpha),
        width_div=s.faces_width_div if dataset == "faces" else s.width_div,
        log_every=s.log_every, checkpoint_every=s.checkpoint_every, n_samples=s.n_samples,
        precision=s.precision, converge_tol=None if s.converge_tol is None else float(s.converge_tol),
        converge_min_steps=int(math.ceil(s.converge_min_epochs * n_train / s.batch_size)))


def configs(preset: str = "cpu", *, datasets: Sequence[str] = DATASETS, objectives: Sequence[str] = OBJECTIVES,
            upsamplers: Sequence[str] = UPSAMPLERS, **overrides: Any) -> list[RunConfig]:
    """The chapter's grid at ``preset``: data sets × objectives × up-samplers × seeds (72 at 3 seeds).

    Ordered seed-major, so that with fewer finished runs every configuration has its first seed first.
    """
    s = sizes(preset, **overrides)
    for name, given, valid in (("datasets", datasets, DATASETS), ("objectives", objectives, OBJECTIVES),
                               ("upsamplers", upsamplers, UPSAMPLERS)):
        bad = [g for g in given if g not in valid]
        if bad:
            raise ValueError(f"unknown {name} {bad}; choose from {valid}")
    return [_config(s, preset, d, o, u, seed)
            for seed in range(s.seeds) for d in datasets for u in upsamplers for o in objectives]


def precision_twin_configs(preset: str = "cpu", **overrides: Any) -> list[RunConfig]:
    """The bf16 A/B: float32 twins of the vanilla VAE (transposed up-sampling, first seed) on MNIST and the faces.

    Each twin is the grid's run with ``precision="fp32"`` (same seed, data, steps and convergence rule), so the
    final metrics of the two precisions can be set side by side; only at presets that train in bf16.
    """
    grid = configs(preset, datasets=("mnist", "faces"), objectives=("vanilla",), upsamplers=("transposed",),
                   **overrides)
    return [dataclasses.replace(c, precision="fp32") for c in grid if c.seed == 0 and c.precision != "fp32"]


def control_configs(preset: str = "cpu", *, datasets: Sequence[str] = DATASETS, **overrides: Any) -> list[RunConfig]:
    """The ``mse`` control runs (:data:`CONTROLS`): every data set, transposed up-sampling, every seed.

    Each is the ``fft`` run of the grid with its FFT term computed as the pixel MSE it equals by Parseval and its
    BCE term dropped (:func:`build_loss`), so "does the FFT loss act through the spectrum or as a heavy L2 term?"
    can be read off the two rows.
    """
    s = sizes(preset, **overrides)
    bad = [d for d in datasets if d not in DATASETS]
    if bad:
        raise ValueError(f"unknown datasets {bad}; choose from {DATASETS}")
    return [_config(s, preset, d, objective, "transposed", seed)
            for seed in range(s.seeds) for d in datasets for objective in CONTROLS]


#: the α values of the sweep (on MNIST, transposed, ``fft`` objective, seed 0)
ALPHA_SWEEP: tuple[float, ...] = (0.01, 0.1, 0.5, 0.9)


def alpha_sweep_configs(preset: str = "cpu", alphas: Sequence[float] = ALPHA_SWEEP, *, dataset: str = "mnist",
                        **overrides: Any) -> list[RunConfig]:
    """The FFT-loss α sweep (eq. 3): ``dataset``, transposed, seed 0, one run per α (α = 0.5 is in the grid)."""
    s = sizes(preset, **overrides)
    return [_config(s, preset, dataset, "fft", "transposed", 0, alpha=float(a)) for a in alphas]


# ------------------------------------------------------------------------------------------------------------
# building blocks
# ------------------------------------------------------------------------------------------------------------
def build_model(cfg: RunConfig) -> torch.nn.Module:
    """IRMAE's VAE for ``cfg.dataset`` with ``cfg.upsample`` in the last up-sampling layer."""
    from specvae.models.vae import IRMAEVAE

    return IRMAEVAE(_ARCH[cfg.dataset], latent_dim=cfg.latent_dim, in_channels=cfg.channels,  # type: ignore[arg-type]
                    upsample=cfg.upsample, width_div=cfg.width_div)


def build_loss(cfg: RunConfig, *, weights: str | None = None) -> torch.nn.Module:
    """The VAE objective of ``cfg.objective`` (a :class:`specvae.losses.vae.VAELoss`).

    - ``vanilla``: BCE + β·KL (IRMAE).
    - ``fft``: ``(1−α)·BCE + α·FFTLoss`` (Björk eqs. 2-3) + β·KL.
    - ``ai``: ``(1−α)·BCE + α·AzimuthalLoss`` (Durall et al.'s AI loss combined as eq. 3; differentiable,
      unlike Durall's official NumPy code) + β·KL.
    - ``watson``: Watson-DFT (Czolbe et al.'s learned parameters, gray for 1-channel data, RGB for faces, with
      the reference code's random block-grid shift during training) replacing the BCE, per value, + β·KL.
    - ``mse`` (our control, not in the paper): ``α·H·W·MSE`` (:class:`specvae.losses.ParsevalMSE`) + β·KL: the
      ``fft`` objective without its BCE term, its FFT term computed in pixel space (equal by Parseval).
    """
    from specvae.losses.vae import BCELoss, PerPixel, SpectralCombination, VAELoss

    if cfg.objective == "vanilla":
        recon: torch.nn.Module = BCELoss()
    elif cfg.objective == "fft":
        from specvae.losses import FFTLoss

        recon = SpectralCombination(BCELoss(), FFTLoss(), alpha=cfg.alpha)
    elif cfg.objective == "ai":
        from specvae.losses import AzimuthalLoss

        recon = SpectralCombination(BCELoss(), AzimuthalLoss(), alpha=cfg.alpha)
    elif cfg.objective == "mse":
        from specvae.losses import ParsevalMSE

        recon = ParsevalMSE(weight=cfg.alpha)
    else:
        from specvae.losses import WatsonDFTLoss

        color = "gray" if cfg.channels == 1 else "rgb"
        watson = WatsonDFTLoss.pretrained(color, weights, deterministic=False, reduction="none")
        watson.requires_grad_(False)
        recon = PerPixel(watson)
    return VAELoss(recon, beta=cfg.beta)


def _load(cfg: RunConfig, split: str):
    from specvae.data import load_dataset, smoke_fallback  # at smoke, generated Shapes stand in for missing data

    limit = cfg.n_train if split == "train" else cfg.n_test
    return load_dataset(cfg.dataset, split, image_size=cfg.image_size, limit=limit, seed=0,
                        channels=cfg.channels, progress=False, fallback=smoke_fallback(cfg.preset))


def _make_objective(loss: torch.nn.Module):
    def objective(model, batch, step):
        if next(loss.parameters(), None) is not None or any(True for _ in loss.buffers()):
            loss.to(batch.device)
        recon, mu, logvar = model(batch)
        terms = loss.terms(recon, batch, mu, logvar)
        out = terms.pop("loss")
        return out, {k: v.detach() for k, v in terms.items()}

    return objective


@torch.no_grad()
def evaluate(model: torch.nn.Module, images_uint8: torch.Tensor, *, batch_size: int = 256) -> dict[str, Any]:
    """Reconstruct ``images_uint8`` (N, C, H, W) at ``z = mu`` and compute the paper's metrics.

    Returns ``{"metrics": {rmse_<ai|ft|spatial>_<mean|std>, psnr_<mean|std>, ssim_<mean|std>}, "arrays": {freqs,
    profile_real_mean/std, profile_recon_mean/std}, "per_image": {ai, ft, spatial, psnr, ssim}}``. Spectral metrics
    use :mod:`specvae.spectral`, PSNR and SSIM :mod:`specvae.metrics` (per image; mean and std over the images as
    in the paper's tables). Every std here is the spread of the test images (population std, ``ddof=0``).
    """
    from specvae import spectral
    from specvae.metrics import psnr, ssim

    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    per: dict[str, list[torch.Tensor]] = {"ai": [], "ft": [], "spatial": [], "psnr": [], "ssim": []}
    prof_real, prof_recon = [], []
    for start in range(0, images_uint8.shape[0], batch_size):
        x = images_uint8[start:start + batch_size].to(device).float() / 255.0
        xr = model(x)[0].float()
        per["ai"].append(spectral.rmse_ai(x, xr).cpu())
        per["ft"].append(spectral.rmse_ft(x, xr).cpu())
        per["spatial"].append(spectral.rmse_spatial(x, xr).cpu())
        per["psnr"].append(psnr(x, xr.clamp(0, 1)).cpu())
        per["ssim"].append(ssim(x, xr.clamp(0, 1)).cpu())
        prof_real.append(spectral.radial_profile(x, log=True, gray=True).cpu())
        prof_recon.append(spectral.radial_profile(xr, log=True, gray=True).cpu())
    model.train(was_training)
    per_image = {k: torch.cat(v).double().numpy() for k, v in per.items()}
    metrics: dict[str, float] = {}
    for k, v in per_image.items():
        name = k if k in ("psnr", "ssim") else f"rmse_{k}"
        finite = v[np.isfinite(v)]  # PSNR is +inf for an exact reconstruction
        metrics[f"{name}_mean"] = float(finite.mean()) if finite.size else float("nan")
        metrics[f"{name}_std"] = float(finite.std()) if finite.size else float("nan")
    pr, pc = torch.cat(prof_real).double(), torch.cat(prof_recon).double()
    h, w = images_uint8.shape[-2:]
    arrays = {
        "freqs": spectral.frequency_axis(h, w).cpu().numpy(),
        "profile_real_mean": pr.mean(0).numpy(), "profile_real_std": pr.std(0, correction=0).numpy(),
        "profile_recon_mean": pc.mean(0).numpy(), "profile_recon_std": pc.std(0, correction=0).numpy(),
    }
    return {"metrics": metrics, "arrays": arrays, "per_image": per_image}


def run(cfg: RunConfig, *, progress: bool = False) -> dict[str, Any]:
    """Train and evaluate one run; return ``{"metrics", "arrays", "history", "extra", "npz", "device"}``.

    Module-level, so a process pool (:func:`specvae.experiments.run_grid`) can call it. Checkpoints go to
    ``ResultStore(CHAPTER).run_dir(cfg)``, so a killed run resumes where it stopped.
    """
    from specvae.experiments.store import ResultStore
    from specvae.train import TrainConfig, fit

    if not isinstance(cfg, RunConfig):
        raise TypeError(f"run() takes a RunConfig (see configs()), got {type(cfg).__name__}")
    t0 = time.perf_counter()
    train = _load(cfg, "train")
    test = _load(cfg, "test")
    torch.manual_seed(cfg.seed)
    model = build_model(cfg)
    loss = build_loss(cfg)
    tc = TrainConfig(steps=cfg.steps, batch_size=cfg.batch_size, lr=cfg.lr, seed=cfg.seed, log_every=cfg.log_every,
                     checkpoint_every=cfg.checkpoint_every, device="auto", precision=cfg.precision,
                     converge_tol=cfg.converge_tol, converge_min_steps=cfg.converge_min_steps)
    run_dir = ResultStore(CHAPTER).run_dir(cfg)
    result = fit(model, _make_objective(loss), train.images, tc, run_dir=run_dir, progress=progress)
    ev = evaluate(result.model, test.images)
    metrics = dict(ev["metrics"])
    hist = result.history
    metrics["final_loss"] = float(hist["loss"][-1]) if hist.get("loss") else float("nan")
    train_wall = float(result.total_wall_time_s or result.wall_time_s)
    # images per second over the whole run (a resumed run's own FitResult.images_per_s covers only its last part)
    metrics["train_images_per_s"] = result.steps * cfg.batch_size / train_wall if train_wall > 0 else float("nan")
    metrics["steps_done"] = int(result.steps)
    metrics["epochs_done"] = result.steps * cfg.batch_size / int(train.images.shape[0])
    # the rule's verdict (None → False when no rule was set: such a run is not shown as converged)
    metrics["converged"] = bool(result.converged)
    metrics["loss_rel_change_last20"] = float(result.rel_change)
    metrics["train_wall_s"] = train_wall
    metrics["n_params"] = int(sum(p.numel() for p in result.model.parameters()))
    k = min(cfg.n_samples, test.images.shape[0])
    with torch.no_grad():
        model_dev = next(result.model.parameters()).device
        recon = result.model(test.images[:k].to(model_dev).float() / 255.0)[0].float().cpu()
    samples = {"real": test.images[:k].numpy(), "recon": (recon * 255).round().clamp(0, 255).to(torch.uint8).numpy()}
    extra = {
        "train_notes": train.notes, "test_notes": test.notes, "n_train_images": int(train.images.shape[0]),
        "n_test_images": int(test.images.shape[0]), "resumed_from": result.resumed_from,
        "device": str(result.device), "total_wall_s": time.perf_counter() - t0,
        "precision": cfg.precision, "torch_threads": torch.get_num_threads(),
    }
    return {"metrics": metrics, "arrays": ev["arrays"], "history": hist, "extra": extra,
            "npz": {"samples": samples}, "device": result.device}


def bench_families(preset: str = "cpu") -> dict[str, Any]:
    """The chapter's three nets (Shapes, MNIST, faces) as its runs train them at ``preset``, for ``specvae bench``.

    Each family is the vanilla VAE objective on random images of the data set's shape (speed does not depend on
    the objective's spectral terms much; they run in float32 either way).
    """
    from specvae.bench import BenchCase
    from specvae.train import TrainConfig

    s = sizes(preset)
    out: dict[str, Any] = {}
    for dataset in DATASETS:
        cfg = _config(s, preset, dataset, "vanilla", "transposed", 0)
        gen = torch.Generator().manual_seed(0)
        images = torch.randint(0, 256, (512, cfg.channels, cfg.image_size, cfg.image_size), generator=gen,
                               dtype=torch.uint8)
        tc = TrainConfig(steps=1, batch_size=cfg.batch_size, lr=cfg.lr, precision=cfg.precision,
                         log_every=cfg.log_every, device="cpu")
        out[f"{dataset}-vae"] = BenchCase(
            model=lambda cfg=cfg: build_model(cfg),
            objective=lambda model, cfg=cfg: _make_objective(build_loss(cfg)),
            images=images, config=tc, note=f"IRMAE {_ARCH[dataset]} VAE, width ÷ {cfg.width_div}")
    return out


def _store():
    from specvae.experiments.store import ResultStore

    return ResultStore(CHAPTER)


def all_configs(preset: str = "cpu", *, alpha_sweep: bool = True, controls: bool = True,
                **overrides: Any) -> list[RunConfig]:
    """Every run of the chapter at ``preset``: the grid, then the controls and the α sweep (duplicates removed)."""
    cfgs = configs(preset, **overrides)
    if controls:
        cfgs += control_configs(preset, **overrides)
    if alpha_sweep:
        cfgs += alpha_sweep_configs(preset, **overrides)
    return list(dict.fromkeys(cfgs))


def only_on(cfgs: Sequence[RunConfig], datasets: Sequence[str] | None) -> list[RunConfig]:
    """The runs of ``cfgs`` on ``datasets`` (all of them when ``None``), in their order.

    Raises:
        ValueError: a name that is not one of :data:`DATASETS`.
    """
    from specvae.experiments.grid import only_datasets

    return only_datasets(cfgs, datasets, DATASETS)


def dataset_runs(dataset: str, preset: str = "gpu") -> list[RunConfig]:
    """Every run ``run_all(preset, only_datasets=(dataset,))`` trains (grid, controls and α sweep on ``dataset``);
    ``specvae gpu stage`` stages a data set while some of these are not stored."""
    return only_on(all_configs(preset), (dataset,))


def run_all(preset: str = "cpu", *, workers: int = 1, train: bool = True, alpha_sweep: bool = True,
            controls: bool = True, progress: bool = True, only_datasets: Sequence[str] | None = None,
            **overrides: Any):
    """The chapter's results at ``preset`` as a DataFrame (one row per run).

    Loads stored results and trains the missing ones with :func:`specvae.experiments.run_grid` (``workers``
    processes side by side); with ``train=False`` a missing result raises
    :class:`~specvae.experiments.store.MissingResultError`. ``alpha_sweep=True`` adds :func:`alpha_sweep_configs`,
    ``controls=True`` (default) :func:`control_configs`; ``only_datasets`` keeps only the runs on those data sets
    (``specvae run 01 --datasets mnist``: one device call carries the data of only some, see :mod:`specvae.gpu`;
    default all); the frame holds every run asked for. ``overrides`` go to :func:`sizes` (e.g. ``seeds=1``,
    ``steps=2000``).
    """
    from specvae.experiments.grid import run_grid
    from specvae.experiments.store import MissingResultError

    cfgs = only_on(all_configs(preset, alpha_sweep=alpha_sweep, controls=controls, **overrides), only_datasets)
    store = _store()
    missing = [c for c in cfgs if not store.exists(c)]
    if missing and not train:
        raise MissingResultError(
            f"{len(missing)} of {len(cfgs)} runs of chapter {CHAPTER} at preset {preset!r} have no stored result in "
            f"{store.folder} (first: {missing[0]}). Train them with `specvae run {CHAPTER} --preset {preset}` or "
            "run_all(..., train=True) (papermill -p train True).")
    if missing:
        run_grid(cfgs, run, store, workers=workers, progress=progress)
    return store.frame(cfgs)


def load_records(preset: str = "cpu", *, train: bool = False, **overrides: Any) -> list[dict[str, Any]]:
    """The stored records (dicts with config, metrics, arrays, history, provenance) of the grid at ``preset``."""
    run_all(preset, train=train, progress=False, **overrides)
    store = _store()
    return [store.load(c) for c in configs(preset, **overrides)]

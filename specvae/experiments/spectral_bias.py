"""Chapter 0, "Spectral bias, hands on": the runs behind the chapter (what is trained and stored).

The notebook ``notebooks/00_spectral_bias.py`` is thin: it picks a preset and calls one function per section of
:mod:`specvae.experiments.spectral_bias_report`, which loads (or trains, through :func:`load_or_train`) the runs
defined here and turns them into tables; the live computations of sections 1, 4 and 6 (spectra of data sets and
degradations, untrained decoders, the linear bound) live there too. This module holds only what a stored run
depends on, so that editing how results are shown never changes the code fingerprint of the runs:

2. regression runs (:class:`RegressionConfig`): Rahaman et al.'s experiment, an MLP fits a 1-D sum of
   equal-amplitude sinusoids; the error of each frequency over training, with raw coordinates and with Fourier
   features (Tancik et al.); also the two runs the exercises ask about.
3. image fits (:class:`ImageFitConfig`): an MLP fits one image from its pixel coordinates.
4-6. autoencoders (:class:`AutoencoderConfig`) on faces: transposed convolution vs nearest + 5×5 convolution
   (section 4), MSE vs MSE + FFT loss (section 5), MSE + focal frequency loss and a spatial code
   (:class:`SpatialCodeAutoencoder`, section 6); per-band spectral error over training.

Units: radial spectra are in dB of power (``10 log10(|F|^2 + floor^2)``, :func:`specvae.spectral.radial_profile`'s
default) and so are the chapter's frequency maps (:func:`mean_db_map`) and the checkerboard score; the 8-bit
noise floor of :mod:`specvae.spectral` bounds them from below.

Every run trains through :func:`specvae.train.fit`; results are stored in a
:class:`~specvae.experiments.store.ResultStore` (``book/results/00_spectral_bias/``), so the book is rebuilt
without retraining (``train=False`` reads them and fails clearly when one is missing). The coordinate MLPs train
for a fixed number of steps in float32 (they show learning *speed*; their errors go down to 1e-8, below what
bf16 resolves); the autoencoders train in bf16 autocast (measured 1.5x faster per step on the CPU) until the
convergence rule of :class:`specvae.train.TrainConfig` stops them (or the step cap), with their learning rate
halved every ``ae_lr_decay_every`` steps, and record ``converged``, ``loss_rel_change_last20`` and
``steps_done``.

The chapter-module contract: :data:`CHAPTER`, :class:`Sizes`, :data:`PRESETS`, :func:`configs`, :func:`run`,
:func:`run_all`.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence, Union

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from specvae.experiments.presets import check_preset, select_preset

__all__ = [
    "CHAPTER",
    "Sizes",
    "PRESETS",
    "RegressionConfig",
    "ImageFitConfig",
    "AutoencoderConfig",
    "RunConfig",
    "SpatialCodeAutoencoder",
    "CODES",
    "SPECTRAL_LOSSES",
    "sizes",
    "configs",
    "run",
    "run_all",
    "load_or_train",
    "regression_target",
    "frequency_errors_1d",
    "checkerboard_score",
    "relative_band_errors",
    "band_energy_ratios",
    "mean_db_map",
]

#: spectral losses sections 5-6 can add to the MSE (``spectral_loss`` knob: the second run of section 5)
SPECTRAL_LOSSES: tuple[str, ...] = ("fft", "focal")

#: the autoencoder's code: a dense vector (``ConvAutoencoder``) or a grid that keeps the spatial layout
CODES: tuple[str, ...] = ("dense", "spatial")

CHAPTER = "00_spectral_bias"


# ----------------------------------------------------------------------------------------------------------------
# sizes and run configs
# ----------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Sizes:
    """Every knob of the chapter, with one value per preset (see :data:`PRESETS`).

    Section 1: ``n_images`` images per data set for the mean spectra; the three data sets are compared at 32
    pixels (MNIST and Shapes are stored at that size; faces are down-scaled to it) and the degradations are
    shown on faces at ``image_size`` pixels; ``blur_sigma`` (pixels), ``jpeg_quality`` (1-100) and
    ``noise_std`` (in [0, 1] units) set the degradations; ``slope_range`` is the frequency range
    (cycles/pixel) of the power-law fit.

    Section 2: ``frequencies`` (cycles per unit interval) of the target ``Σ_k sin(2π k x + φ_k)`` sampled at
    ``n_points`` points of [0, 1); an MLP of ``reg_depth`` × ``reg_width`` ReLU units trained full-batch for
    ``reg_steps`` Adam steps at ``reg_lr``; errors recorded every ``reg_eval_every`` steps. The Fourier-feature
    run uses ``fourier_features`` random frequencies of standard deviation ``fourier_scale``. The exercises'
    runs: raw coordinates on ``ex_frequencies``, and Fourier features of scale ``ex_fourier_scale``.

    Section 3: one face at ``fit_size`` pixels (gray), MLP ``fit_depth`` × ``fit_width``, ``fit_steps`` steps,
    snapshots at ``fit_snapshots``; Fourier features of scale ``fit_fourier_scale`` (0 = only the raw MLP).

    Sections 4-6: autoencoders on faces at ``ae_size`` pixels, ``ae_train`` training and ``ae_eval`` held-out
    images, batch ``ae_batch``, Adam at ``ae_lr`` multiplied by ``ae_lr_decay`` every ``ae_lr_decay_every``
    steps, in ``ae_precision``; a run stops when the smoothed training loss changed by less than
    ``ae_converge_tol`` (either way) over the last 20 % of its steps (not before ``ae_converge_min_steps``) or at
    the cap ``ae_steps``. A dense code of ``ae_latent`` numbers, ``ae_width`` channels at the first level, per-band
    errors every ``ae_eval_every`` steps in the bands ``band_edges`` (cycles/pixel; the last band holds the
    corners of the spectrum, beyond 1/2). ``upsample`` is the up-sampling of the section-5 and -6 runs;
    ``fft_weight`` is α of Björk et al.'s eq. 3 for the second run of section 5 (``spectral_loss``) and
    ``focal_weight`` the α of the focal-frequency run of section 6; ``recover_code`` is the number of values in
    the spatial code of section 6's last autoencoder and ``recover_steps`` its step cap (a code of 16 times
    more numbers takes longer to converge); ``pca_codes`` the code sizes of the linear bound. At
    initialisation, ``n_init`` random decoders per kind.
    """

    # section 1
    n_images: int = 256
    image_size: int = 64
    blur_sigma: float = 1.0
    jpeg_quality: int = 10
    noise_std: float = 0.05
    slope_range: tuple[float, float] = (0.03, 0.35)
    # section 2
    frequencies: tuple[float, ...] = (2.0, 5.0, 10.0, 15.0, 20.0)
    n_points: int = 256
    reg_width: int = 256
    reg_depth: int = 4
    reg_steps: int = 2000
    reg_lr: float = 1e-3
    reg_eval_every: int = 25
    fourier_features: int = 64
    fourier_scale: float = 10.0
    ex_frequencies: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0, 16.0)
    ex_fourier_scale: float = 1.0
    # section 3
    fit_size: int = 64
    fit_width: int = 128
    fit_depth: int = 4
    fit_steps: int = 600
    fit_lr: float = 1e-3
    fit_snapshots: tuple[int, ...] = (25, 100, 300, 600)
    fit_fourier_scale: float = 10.0
    fit_image: int = 5
    # sections 4-6
    ae_size: int = 32
    ae_train: int = 4096
    ae_eval: int = 256
    ae_steps: int = 6000
    ae_batch: int = 32
    ae_lr: float = 2e-3
    ae_lr_decay: float = 0.5
    ae_lr_decay_every: int = 600
    ae_converge_tol: float = 0.01
    ae_converge_min_steps: int = 1200
    ae_precision: str = "bf16"
    ae_latent: int = 64
    ae_width: int = 32
    ae_eval_every: int = 100
    band_edges: tuple[float, ...] = (0.0, 0.125, 0.25, 0.375, 0.5, 0.75)
    upsample: str = "transposed"
    fft_weight: float = 0.5
    spectral_loss: str = "fft"
    focal_weight: float = 0.5
    recover_code: int = 1024
    recover_steps: int = 9000
    pca_codes: tuple[int, ...] = (64, 256, 1024)
    n_init: int = 16
    seed: int = 0
    #: the preset these sizes came from (set by :func:`sizes`; recorded in each run's provenance)
    preset: str = "custom"


#: the four presets: ``smoke`` (CI, seconds), ``cpu`` (laptop, minutes), ``gpu`` and ``paper`` (longer, larger)
PRESETS: dict[str, Sizes] = {
    "smoke": Sizes(
        n_images=32, image_size=32, n_points=128, reg_width=64, reg_depth=3, reg_steps=300, reg_eval_every=20,
        fourier_features=32, fit_size=32, fit_width=64, fit_depth=3, fit_steps=60, fit_snapshots=(10, 30, 60),
        ae_train=128, ae_eval=32, ae_steps=30, ae_batch=16, ae_latent=32, ae_width=8, ae_eval_every=10,
        ae_lr_decay_every=10, ae_converge_min_steps=10, recover_code=256, recover_steps=30, pca_codes=(16, 64),
        n_init=4,
    ),
    "cpu": Sizes(),
    "gpu": Sizes(
        n_images=1000, reg_steps=10000, reg_eval_every=100, fit_size=64, fit_width=256, fit_steps=3000,
        fit_snapshots=(50, 300, 1000, 3000), ae_size=64, ae_train=20000, ae_eval=1000, ae_steps=40000,
        ae_batch=64, ae_lr_decay_every=4000, ae_converge_min_steps=8000, ae_latent=128, ae_width=64,
        ae_eval_every=500, recover_code=4096, recover_steps=60000, pca_codes=(128, 1024, 4096), n_init=64,
    ),
    "paper": Sizes(
        n_images=2000, n_points=200, frequencies=(5.0, 10.0, 15.0, 20.0, 25.0, 30.0, 35.0, 40.0, 45.0, 50.0),
        reg_depth=6, reg_lr=3e-4, reg_steps=80000, reg_eval_every=500, fit_size=64, fit_width=256,
        fit_steps=5000, fit_snapshots=(50, 500, 2000, 5000), ae_size=64, ae_train=22000, ae_eval=2000,
        ae_steps=100000, ae_batch=64, ae_lr_decay_every=10000, ae_converge_min_steps=20000, ae_latent=128,
        ae_width=64, ae_eval_every=1000, recover_code=4096, recover_steps=150000, pca_codes=(128, 1024, 4096),
        n_init=64,
    ),
}


@dataclass(frozen=True)
class RegressionConfig:
    """One 1-D regression run of section 2 (Rahaman et al. 2019, Sec. 2; Fourier features: Tancik et al. 2020).

    A fixed number of full-batch steps (the experiment measures *when* each frequency is learned), in
    ``precision`` (float32: the errors of interest go down to 1e-8, below what bf16 resolves).
    """

    frequencies: tuple[float, ...]
    n_points: int
    width: int
    depth: int
    steps: int
    lr: float
    eval_every: int
    fourier_features: int  # 0 = raw coordinate input
    fourier_scale: float
    seed: int = 0
    precision: str = "fp32"
    preset: str = field(default="custom", metadata={"hash": False})


@dataclass(frozen=True)
class ImageFitConfig:
    """One 2-D image fit of section 3: an MLP maps pixel coordinates to the gray value of one face."""

    image_size: int
    image_index: int
    width: int
    depth: int
    steps: int
    lr: float
    snapshots: tuple[int, ...]
    fourier_features: int  # 0 = raw coordinates
    fourier_scale: float
    seed: int = 0
    precision: str = "fp32"
    preset: str = field(default="custom", metadata={"hash": False})


@dataclass(frozen=True)
class AutoencoderConfig:
    """One autoencoder run of sections 4-6: faces, MSE (+ α·spectral loss, Björk et al. eq. 3), an up-sampling
    kind, a dense or spatial code of ``latent_dim`` numbers; trained until the convergence rule stops it
    (``converge_tol``, see :class:`specvae.train.TrainConfig`) or ``steps`` (the cap)."""

    image_size: int
    n_train: int
    n_eval: int
    upsample: str
    fft_weight: float  # α of eq. 3; 0 = plain MSE
    spectral_loss: str  # "fft" (Björk eq. 2), "focal" (Jiang et al. 2021) or "none"
    latent_dim: int  # numbers in the code (dense: a vector; spatial: a grid of latent_dim / s² channels)
    width: int
    steps: int
    batch_size: int
    lr: float
    eval_every: int
    band_edges: tuple[float, ...]
    dataset: str = "faces"
    code: str = "dense"
    precision: str = "bf16"
    lr_decay: float = 1.0
    lr_decay_every: int = 0
    converge_tol: float | None = None
    converge_min_steps: int = 0
    seed: int = 0
    checkpoint_every: int = field(default=500, metadata={"hash": False})
    preset: str = field(default="custom", metadata={"hash": False})


RunConfig = Union[RegressionConfig, ImageFitConfig, AutoencoderConfig]


def sizes(preset: str, **overrides: Any) -> Sizes:
    """The :class:`Sizes` of ``preset`` with ``overrides`` applied; ``None`` values mean "keep the preset's".

    Lists (e.g. from papermill) are turned into tuples; unknown keys raise ``ValueError`` listing the valid ones.
    """
    clean = {}
    for k, v in overrides.items():
        if v is None:
            continue
        ints = k in ("fit_snapshots", "pca_codes")
        clean[k] = tuple(int(x) if ints else float(x) for x in v) if isinstance(v, list) else v
    out = dataclasses.replace(select_preset(PRESETS, preset, **clean), preset=check_preset(preset))
    from specvae.models.upsample import UPSAMPLE_KINDS

    if out.upsample not in UPSAMPLE_KINDS:
        raise ValueError(f"unknown upsample {out.upsample!r}: choose one of {UPSAMPLE_KINDS}")
    if out.spectral_loss not in SPECTRAL_LOSSES:
        raise ValueError(f"unknown spectral_loss {out.spectral_loss!r}: choose one of {SPECTRAL_LOSSES}")
    for name in ("fft_weight", "focal_weight"):
        if not 0.0 <= getattr(out, name) <= 1.0:
            raise ValueError(f"{name} is α of Björk et al.'s eq. 3 and must lie in [0, 1]; got {getattr(out, name)}")
    cells = (out.ae_size // 8) ** 2  # the code grid of a 3-level encoder
    if out.recover_code % cells:
        raise ValueError(f"recover_code={out.recover_code} must be a multiple of {cells}: the spatial code is a "
                         f"{out.ae_size // 8}x{out.ae_size // 8} grid of recover_code / {cells} channels")
    return out


def _sizes_of(preset: str | Sizes, overrides: dict[str, Any]) -> tuple[str, Sizes]:
    if isinstance(preset, Sizes):
        if overrides:
            raise ValueError("pass overrides with a preset name, not with a Sizes instance")
        return preset.preset, preset
    return check_preset(preset), sizes(preset, **overrides)


def _regression_configs(s: Sizes, preset: str) -> list[RegressionConfig]:
    base = dict(frequencies=tuple(float(f) for f in s.frequencies), n_points=s.n_points, width=s.reg_width,
                depth=s.reg_depth, steps=s.reg_steps, lr=s.reg_lr, eval_every=s.reg_eval_every,
                fourier_scale=s.fourier_scale, seed=s.seed, preset=preset)
    out = [RegressionConfig(fourier_features=0, **base)]
    if s.fourier_features > 0:
        out.append(RegressionConfig(fourier_features=s.fourier_features, **base))
    return out


def _exercise_regression_configs(s: Sizes, preset: str) -> list[RegressionConfig]:
    """Exercise 1 (raw coordinates on octave-spaced ``ex_frequencies``) and exercise 2 (Fourier features of
    scale ``ex_fourier_scale`` on the section's own target)."""
    raw = dataclasses.replace(_regression_configs(s, preset)[0],
                              frequencies=tuple(float(f) for f in s.ex_frequencies))
    ff = RegressionConfig(frequencies=tuple(float(f) for f in s.frequencies), n_points=s.n_points,
                          width=s.reg_width, depth=s.reg_depth, steps=s.reg_steps, lr=s.reg_lr,
                          eval_every=s.reg_eval_every, fourier_features=max(s.fourier_features, 1),
                          fourier_scale=float(s.ex_fourier_scale), seed=s.seed, preset=preset)
    return [raw, ff]


def _image_fit_configs(s: Sizes, preset: str) -> list[ImageFitConfig]:
    snaps = tuple(sorted({int(t) for t in s.fit_snapshots if 0 < int(t) <= s.fit_steps} | {s.fit_steps}))
    base = dict(image_size=s.fit_size, image_index=s.fit_image, width=s.fit_width, depth=s.fit_depth,
                steps=s.fit_steps, lr=s.fit_lr, snapshots=snaps, seed=s.seed, preset=preset)
    out = [ImageFitConfig(fourier_features=0, fourier_scale=s.fit_fourier_scale, **base)]
    if s.fit_fourier_scale > 0 and s.fourier_features > 0:
        out.append(ImageFitConfig(fourier_features=max(s.fourier_features, 64), fourier_scale=s.fit_fourier_scale,
                                  **base))
    return out


def _ae_config(s: Sizes, preset: str, upsample: str, weight: float, loss: str | None = None,
               code: str = "dense", latent: int | None = None) -> AutoencoderConfig:
    loss = s.spectral_loss if loss is None else loss
    return AutoencoderConfig(
        image_size=s.ae_size, n_train=s.ae_train, n_eval=s.ae_eval, upsample=upsample, fft_weight=float(weight),
        spectral_loss=loss if weight > 0 else "none", latent_dim=s.ae_latent if latent is None else int(latent),
        width=s.ae_width, steps=s.ae_steps, batch_size=s.ae_batch, lr=s.ae_lr, eval_every=s.ae_eval_every,
        band_edges=tuple(float(e) for e in s.band_edges), code=code, precision=s.ae_precision,
        lr_decay=float(s.ae_lr_decay), lr_decay_every=s.ae_lr_decay_every, converge_tol=float(s.ae_converge_tol),
        converge_min_steps=s.ae_converge_min_steps, seed=s.seed, preset=preset)


def _upsampling_configs(s: Sizes, preset: str) -> list[AutoencoderConfig]:
    return [_ae_config(s, preset, kind, 0.0) for kind in ("transposed", "nearest_conv5")]


def _autoencoder_configs(s: Sizes, preset: str) -> list[AutoencoderConfig]:
    return [_ae_config(s, preset, s.upsample, 0.0), _ae_config(s, preset, s.upsample, s.fft_weight)]


def _recovering_configs(s: Sizes, preset: str) -> list[AutoencoderConfig]:
    """Section 6: MSE + focal frequency loss (dense code), and MSE with a spatial code of ``recover_code``."""
    return [_ae_config(s, preset, s.upsample, s.focal_weight, loss="focal"),
            dataclasses.replace(_ae_config(s, preset, s.upsample, 0.0, code="spatial", latent=s.recover_code),
                                steps=s.recover_steps)]


def configs(preset: str | Sizes, **overrides: Any) -> list[RunConfig]:
    """Every trained run of the chapter at ``preset`` (sections 2-6 and the exercises' runs), without duplicates,
    in section order."""
    name, s = _sizes_of(preset, overrides)
    out: list[RunConfig] = []
    for cfg in (*_regression_configs(s, name), *_image_fit_configs(s, name), *_upsampling_configs(s, name),
                *_autoencoder_configs(s, name), *_recovering_configs(s, name),
                *_exercise_regression_configs(s, name)):
        if cfg not in out:
            out.append(cfg)
    return out


# ----------------------------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------------------------
def _store():
    from specvae.experiments.store import ResultStore

    return ResultStore(CHAPTER)


def _seed(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)


def _profile_stats(x: torch.Tensor) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(freqs, mean, std) over images of the radial power spectra ``x`` (N, C, H, W) in [0, 1], in dB.

    :func:`specvae.spectral.radial_profile` with its defaults: gray, ``10 log10(|F|^2 + floor^2)`` with the 8-bit
    noise floor, Durall's rings (the last ring beyond ``1/2`` cycles/pixel holds only the corners).
    """
    from specvae import spectral

    prof = spectral.radial_profile(x.float(), log=True, units="db", gray=True)
    freqs = spectral.frequency_axis(x.shape[-2], x.shape[-1])
    return freqs.cpu().numpy(), prof.mean(0).cpu().numpy(), prof.std(0).cpu().numpy()


_DB_PER_LN_MAGNITUDE = 20.0 / math.log(10.0)  # 10 log10 |F|^2 = (20 / ln 10) ln|F|


def mean_db_map(x: torch.Tensor) -> np.ndarray:
    """Mean centred power map ``10 log10(|F|^2 + floor^2)`` (dB, 8-bit noise floor) of images (N, C, H, W), gray.

    The chapter's frequency maps and the checkerboard score use it, so they are in the same unit (dB of power) as
    its radial spectra. ``(H, W)``, DC at ``(H // 2, W // 2)``.
    """
    from specvae import spectral

    x = x.float()
    if x.shape[1] == 3:
        x = spectral.to_gray(x)
    return spectral.log_magnitude(x, scale=_DB_PER_LN_MAGNITUDE).mean(dim=(0, 1)).cpu().numpy()


def _load(name: str, split: str, image_size: int | None, limit: int | None, seed: int = 0, preset: str = ""):
    from specvae.data import load_dataset, smoke_fallback  # at smoke, generated Shapes stand in for missing data

    return load_dataset(name, split, image_size=image_size, limit=limit, seed=seed, progress=False,
                        fallback=smoke_fallback(preset))


class _FullBatch:
    """The TensorBatcher protocol for full-batch training on fixed tensors (coordinate regressions)."""

    def __init__(self, *tensors: torch.Tensor) -> None:
        self.batch = tensors

    def __iter__(self) -> "_FullBatch":
        return self

    def __next__(self) -> tuple[torch.Tensor, ...]:
        return self.batch

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


def _train_config(steps: int, batch_size: int, lr: float, seed: int, log_every: int, precision: str = "fp32",
                  **rule: Any):
    """The :class:`~specvae.train.TrainConfig` of a chapter run; ``rule``: lr decay, convergence, checkpoints."""
    from specvae.train import TrainConfig

    return TrainConfig(steps=steps, batch_size=batch_size, lr=lr, seed=seed, log_every=max(1, log_every),
                       device="auto", precision=precision, **rule)


def _fit_metrics(res: Any) -> dict[str, Any]:
    """The convergence record of a run: ``converged`` (None: a fixed-length run), the rule's figure, steps done."""
    rel = float(res.rel_change)
    return {"converged": res.converged, "loss_rel_change_last20": rel if math.isfinite(rel) else None,
            "steps_done": int(res.steps)}


def _device_of(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


# ----------------------------------------------------------------------------------------------------------------
# section 2: spectral bias in 1-D regression
# ----------------------------------------------------------------------------------------------------------------
def regression_target(frequencies: Sequence[float], n_points: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``x`` (n, 1) uniform on [0, 1) and ``y = Σ_k sin(2π k x + φ_k)`` (n, 1), phases ``φ_k ~ U[0, 2π)``.

    Ref: Rahaman et al. 2019, Sec. 2 (equal amplitudes, random phases, frequencies in cycles per unit).
    """
    freqs = [float(k) for k in frequencies]
    if not freqs:
        raise ValueError("frequencies is empty: give at least one frequency (cycles per unit interval)")
    if max(freqs) >= n_points / 2:
        raise ValueError(f"frequency {max(freqs)} is at or above the Nyquist limit n_points/2 = {n_points / 2}; "
                         "use more points or lower frequencies")
    g = torch.Generator().manual_seed(seed)
    phases = torch.rand(len(freqs), generator=g, dtype=torch.float64) * 2 * math.pi
    x = torch.arange(n_points, dtype=torch.float64) / n_points
    k = torch.tensor(freqs, dtype=torch.float64)
    y = torch.sin(2 * math.pi * k[:, None] * x[None] + phases[:, None]).sum(0)
    return x[:, None].float(), y[:, None].float()


def frequency_errors_1d(pred: torch.Tensor, target: torch.Tensor, frequencies: Sequence[float]) -> np.ndarray:
    """Normalised error ``|F̂_k − F_k| / |F_k|`` of each target frequency ``k`` on the sampling grid.

    ``pred``/``target`` (n,) or (n, 1) are samples on ``x = j/n``; ``F`` is their DFT (``torch.fft.rfft``), so an
    integer frequency ``k`` falls on bin ``k``. 1 means "not learned at all" (prediction has none of it), 0 means
    learned exactly. Ref: Rahaman et al. 2019, Fig. 1 (spectrum of the network's function during training).
    """
    p = torch.fft.rfft(pred.detach().double().reshape(-1))
    t = torch.fft.rfft(target.detach().double().reshape(-1))
    idx = torch.tensor([int(round(k)) for k in frequencies])
    return ((p[idx] - t[idx]).abs() / t[idx].abs().clamp_min(1e-12)).cpu().numpy()


def _run_regression(cfg: RegressionConfig, progress: bool) -> dict[str, Any]:
    from specvae.models.mlp import MLP
    from specvae.train import fit

    _seed(cfg.seed)
    x, y = regression_target(cfg.frequencies, cfg.n_points, cfg.seed)
    model = MLP(1, 1, cfg.width, cfg.depth, "relu", cfg.fourier_features, cfg.fourier_scale, seed=cfg.seed)
    steps_rec: list[int] = [0]
    errs: list[np.ndarray] = [frequency_errors_1d(model(x), y, cfg.frequencies)]

    def objective(m, batch, step):
        bx, by = batch
        loss = F.mse_loss(m(bx), by)
        return loss, {"mse": loss.detach()}

    def record(step, m, terms):
        if step % cfg.eval_every == 0 or step == cfg.steps:
            with torch.no_grad():
                dev = _device_of(m)
                errs.append(frequency_errors_1d(m(x.to(dev)).cpu(), y, cfg.frequencies))
            steps_rec.append(step)

    res = fit(model, objective, _FullBatch(x, y), _train_config(cfg.steps, cfg.n_points, cfg.lr, cfg.seed,
                                                                 cfg.eval_every, cfg.precision),
              progress=progress, callbacks=[record])
    with torch.no_grad():
        pred = res.model(x.to(_device_of(res.model))).cpu()
    err = np.stack(errs, 1)  # (K, T)
    # first step at which each frequency's error falls below 0.1 (NaN: never)
    learned = [float(np.array(steps_rec)[np.argmax(e < 0.1)]) if (e < 0.1).any() else float("nan") for e in err]
    metrics = {"final_mse": float(F.mse_loss(pred, y)), "wall_time_s": res.wall_time_s, **_fit_metrics(res)}
    for k, st, e in zip(cfg.frequencies, learned, err[:, -1]):
        metrics[f"steps_to_0.1_k{k:g}"] = st
        metrics[f"final_error_k{k:g}"] = float(e)
    return {
        "metrics": metrics,
        "arrays": {"errors": err.astype(np.float32), "eval_steps": np.array(steps_rec, dtype=np.int64),
                   "x": x[:, 0].numpy(), "y": y[:, 0].numpy(), "pred": pred[:, 0].numpy()},
        "history": res.history,
        "wall_time_s": res.wall_time_s,
        "device": res.device,
    }


# ----------------------------------------------------------------------------------------------------------------
# section 3: fitting one image
# ----------------------------------------------------------------------------------------------------------------
def _coords(h: int, w: int) -> torch.Tensor:
    """Pixel-centre coordinates in [0, 1)², shape (h·w, 2), row-major (y, x)."""
    ys = torch.arange(h, dtype=torch.float32) / h
    xs = torch.arange(w, dtype=torch.float32) / w
    return torch.stack(torch.meshgrid(ys, xs, indexing="ij"), -1).reshape(-1, 2)


def _fit_image(cfg: ImageFitConfig) -> torch.Tensor:
    """The gray target image (1, 1, H, W) of section 3."""
    from specvae import spectral

    data = _load("faces", "test", cfg.image_size, cfg.image_index + 1, 0, cfg.preset)
    x = data.float()[cfg.image_index : cfg.image_index + 1]
    return spectral.to_gray(x) if x.shape[1] == 3 else x


def _run_image_fit(cfg: ImageFitConfig, progress: bool) -> dict[str, Any]:
    from specvae import spectral
    from specvae.models.mlp import MLP
    from specvae.train import fit

    _seed(cfg.seed)
    target = _fit_image(cfg)
    h, w = target.shape[-2:]
    xy = _coords(h, w)
    vals = target.reshape(-1, 1)
    model = MLP(2, 1, cfg.width, cfg.depth, "relu", cfg.fourier_features, cfg.fourier_scale,
                out_activation="sigmoid", seed=cfg.seed)
    snaps: dict[int, np.ndarray] = {}

    def objective(m, batch, step):
        bx, by = batch
        loss = F.mse_loss(m(bx), by)
        return loss, {"mse": loss.detach()}

    def record(step, m, terms):
        if step in cfg.snapshots:
            with torch.no_grad():
                snaps[step] = m(xy.to(_device_of(m))).cpu().reshape(1, 1, h, w).numpy()

    res = fit(model, objective, _FullBatch(xy, vals),
              _train_config(cfg.steps, h * w, cfg.lr, cfg.seed, max(1, cfg.steps // 50), cfg.precision),
              progress=progress, callbacks=[record])
    steps = sorted(snaps)
    recon = torch.from_numpy(np.concatenate([snaps[t] for t in steps]))  # (S, 1, H, W)
    prof_t = spectral.radial_profile(target, log=True, units="db").numpy()[0]  # dB of power
    prof_r = spectral.radial_profile(recon, log=True, units="db").numpy()  # (S, R)
    psnr = [float(-10 * torch.log10(F.mse_loss(r[None], target))) for r in recon]
    metrics = {"final_psnr": psnr[-1], "wall_time_s": res.wall_time_s, **_fit_metrics(res)}
    for t, p in zip(steps, psnr):
        metrics[f"psnr_step{t}"] = p
    return {
        "metrics": metrics,
        "arrays": {"snapshot_steps": np.array(steps, dtype=np.int64), "profile_target": prof_t,
                   "profiles": prof_r, "freqs": spectral.frequency_axis(h, w).numpy()},
        "npz": {"images": {"target": target.numpy(), "recon": recon.numpy()}},
        "history": res.history,
        "wall_time_s": res.wall_time_s,
        "device": res.device,
    }


# ----------------------------------------------------------------------------------------------------------------
# sections 4-5: up-sampling and autoencoders
# ----------------------------------------------------------------------------------------------------------------
def checkerboard_score(maps: np.ndarray | torch.Tensor) -> float:
    """How much the Nyquist points stand out in a centred log map (H, W) (even H, W), in the map's unit.

    The mean log spectrum at the three Nyquist frequencies (1/2, 0), (0, 1/2), (1/2, 1/2) cycles/pixel, minus the
    median over all non-DC frequencies. The chapter passes power maps in dB (:func:`mean_db_map`), so the score
    is in dB (10 dB = ten times the power of the median bin); for ``ln|F|`` maps divide by 8.69. A period-2
    pattern (a checkerboard) puts energy exactly there, so a transposed convolution of stride 2 scores high;
    nearest-neighbour ×2 up-sampling has a zero of its frequency response at 1/2 cycles/pixel along each axis
    and scores low. Blur lowers the median and so raises the score without any artefact (see
    ``spectral_bias_report.nyquist_and_median``). Ref: Odena et al. 2016.
    """
    m = torch.as_tensor(np.asarray(maps), dtype=torch.float64)
    h, w = m.shape[-2:]
    if h % 2 or w % 2:
        raise ValueError(f"checkerboard_score needs even sizes (a Nyquist bin); got {h}x{w}")
    cy, cx = h // 2, w // 2  # DC after fftshift; index 0 is -1/2 cycles/pixel
    nyq = torch.stack([m[..., cy, 0], m[..., 0, cx], m[..., 0, 0]]).mean(0)
    mask = torch.ones(h, w, dtype=torch.bool)
    mask[cy, cx] = False
    return float((nyq - m[..., mask].median(-1).values).mean())


def relative_band_errors(x: torch.Tensor, y: torch.Tensor, edges: Sequence[float]) -> dict[str, float]:
    """Relative error of ``y`` against ``x`` in each frequency band, over the whole batch:

    ``Σ_images Σ_band |F(x) − F(y)|² / Σ_images Σ_band |F(x)|²`` (unitary FFT, all channels; bands
    ``[e_k, e_{k+1})`` of radial frequency in cycles/pixel), from :func:`specvae.spectral.band_errors` and
    :func:`specvae.spectral.band_energies`. 0 = the band is reproduced exactly; 1 = the reconstruction's
    content in that band is as far from the truth as an empty band would be (e.g. a band lost to blur).
    """
    from specvae import spectral

    err = spectral.band_errors(x, y, list(edges))
    ene = spectral.band_energies(x, list(edges))
    return {str(k): float(err[k].sum() / ene[k].sum().clamp_min(1e-20)) for k in err}


def band_energy_ratios(x: torch.Tensor, y: torch.Tensor, edges: Sequence[float]) -> dict[str, float]:
    """Energy of ``y`` over energy of ``x`` in each frequency band, over the whole batch (same bands as
    :func:`relative_band_errors`): 1 = the band holds as much power as in the truth, below 1 = power missing
    (blur), above 1 = power added (noise, artefacts). It says nothing about whether the content is *right*;
    :func:`relative_band_errors` does."""
    from specvae import spectral

    ey = spectral.band_energies(y, list(edges))
    ex = spectral.band_energies(x, list(edges))
    return {str(k): float(ey[k].sum() / ex[k].sum().clamp_min(1e-20)) for k in ex}


class SpatialCodeAutoencoder(nn.Module):
    """:class:`~specvae.models.autoencoder.ConvAutoencoder` with a *spatial* code: the same encoder and decoder,
    but the bottleneck is a ``s × s`` grid of ``latent_dim / s²`` channels (1×1 convolutions) instead of a dense
    vector of ``latent_dim`` numbers (``s = image_size / 2^n_levels``).

    Each code value then describes one region of the image, as the codes of VQ-VAE and VQGAN do
    (van den Oord et al. 2017; Esser et al. 2021). ``encode(x) -> (N, k, s, s)``, ``forward(x) -> x̂`` in [0, 1].
    """

    def __init__(self, in_channels: int = 3, image_size: int = 32, width: int = 32, n_levels: int = 3,
                 latent_dim: int = 1024, upsample: str = "transposed") -> None:
        super().__init__()
        from specvae.models.autoencoder import ConvDecoder, ConvEncoder

        if image_size % (2**n_levels):
            raise ValueError(f"image_size {image_size} must be divisible by 2^n_levels = {2 ** n_levels}")
        self.s = image_size // 2**n_levels
        if latent_dim % (self.s**2):
            raise ValueError(f"latent_dim={latent_dim} must be a multiple of s² = {self.s ** 2} "
                             f"(a {self.s}x{self.s} grid of latent_dim / s² channels)")
        self.encoder = ConvEncoder(in_channels, width, n_levels)
        c = self.encoder.out_channels
        k = latent_dim // self.s**2
        self.to_code = nn.Conv2d(c, k, 1)
        self.from_code = nn.Sequential(nn.Conv2d(k, c, 1), nn.ReLU())
        self.decoder = ConvDecoder(c, in_channels, width, n_levels, upsample)
        self.latent_dim = latent_dim

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.to_code(self.encoder(x))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.from_code(z))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))


def _band_history_io(run_dir: Any) -> tuple[dict[str, list[float]], Callable[[dict[str, list[float]]], None]]:
    """The band history saved beside a run's checkpoints (so a resumed run keeps its curve) and a saver."""
    import json

    from specvae.experiments.atomic import atomic_write_text

    path = None if run_dir is None else os.path.join(run_dir, "band_history.json")
    hist: dict[str, list[float]] = {"step": []}
    if path is not None and os.path.exists(path):
        with open(path, encoding="utf-8") as fh:
            hist = json.load(fh)

    def save(h: dict[str, list[float]]) -> None:
        if path is not None:
            os.makedirs(run_dir, exist_ok=True)
            atomic_write_text(path, json.dumps(h))

    return hist, save


def _run_autoencoder(cfg: AutoencoderConfig, progress: bool) -> dict[str, Any]:
    from specvae import spectral
    from specvae.losses.fft import FFTLoss
    from specvae.models.autoencoder import ConvAutoencoder
    from specvae.train import fit

    _seed(cfg.seed)
    train = _load(cfg.dataset, "train", cfg.image_size, cfg.n_train, cfg.seed, cfg.preset)
    test = _load(cfg.dataset, "test", cfg.image_size, cfg.n_eval, cfg.seed, cfg.preset)
    x_eval = test.float()
    c = x_eval.shape[1]
    if cfg.code == "dense":
        model: nn.Module = ConvAutoencoder(c, cfg.image_size, cfg.width, 3, cfg.latent_dim, cfg.upsample)
    elif cfg.code == "spatial":
        model = SpatialCodeAutoencoder(c, cfg.image_size, cfg.width, 3, cfg.latent_dim, cfg.upsample)
    else:
        raise ValueError(f"unknown code {cfg.code!r}: choose one of {CODES}")
    if cfg.spectral_loss == "focal":
        from specvae.losses.focal_frequency import FocalFrequencyLoss

        spec_loss: nn.Module | None = FocalFrequencyLoss()
    elif cfg.spectral_loss == "fft":
        spec_loss = FFTLoss()
    elif cfg.spectral_loss == "none":
        spec_loss = None
    else:
        raise ValueError(f"unknown spectral_loss {cfg.spectral_loss!r}: choose one of {SPECTRAL_LOSSES}")
    alpha = cfg.fft_weight
    run_dir = _store().run_dir(cfg) if cfg.checkpoint_every > 0 else None
    band_hist, save_hist = _band_history_io(run_dir)

    def objective(m, batch, step):
        recon = m(batch)
        mse = F.mse_loss(recon.float(), batch.float())
        terms: dict[str, Any] = {"mse": mse.detach()}
        if alpha > 0 and spec_loss is not None:
            lf = spec_loss(recon, batch)
            terms[cfg.spectral_loss] = lf.detach()
            loss = (1 - alpha) * mse + alpha * lf  # Björk et al. 2022, eq. 3
        else:
            loss = mse
        return loss, terms

    def evaluate(m) -> torch.Tensor:
        was_training = m.training
        m.eval()
        with torch.no_grad():
            dev = _device_of(m)
            r = torch.cat([m(x_eval[i : i + 256].to(dev)).float().cpu() for i in range(0, len(x_eval), 256)])
        m.train(was_training)
        return r

    def append(step: int, recon: torch.Tensor) -> None:
        errs = relative_band_errors(x_eval, recon, cfg.band_edges)
        keep = [i for i, t in enumerate(band_hist["step"]) if t < step]  # a resumed run records again
        for k in band_hist:
            band_hist[k] = [band_hist[k][i] for i in keep]
        band_hist["step"].append(step)
        for k, v in errs.items():
            band_hist.setdefault(k, []).append(v)
        save_hist(band_hist)

    def record(step, m, terms):
        if step % cfg.eval_every == 0 or step == cfg.steps:
            append(step, evaluate(m))

    if not band_hist["step"]:
        append(0, evaluate(model))
    rule = dict(lr_decay=cfg.lr_decay, lr_decay_every=cfg.lr_decay_every, converge_tol=cfg.converge_tol,
                converge_min_steps=cfg.converge_min_steps, checkpoint_every=cfg.checkpoint_every)
    res = fit(model, objective, train.images,
              _train_config(cfg.steps, cfg.batch_size, cfg.lr, cfg.seed, max(1, cfg.eval_every // 2),
                            cfg.precision, **rule),
              run_dir=run_dir, progress=progress, callbacks=[record])
    recon = evaluate(res.model)
    if band_hist["step"][-1] != res.steps:  # stopped by the convergence rule between two evaluations
        append(res.steps, recon)
    mse = F.mse_loss(recon, x_eval, reduction="none").mean(dim=(1, 2, 3))
    psnr = -10 * torch.log10(mse.clamp_min(1e-12))
    f, mu_r, sd_r = _profile_stats(recon)
    _, mu_x, sd_x = _profile_stats(x_eval)
    metrics: dict[str, Any] = {
        "mse": float(mse.mean()), "psnr": float(psnr.mean()),
        "rmse_ai": float(spectral.rmse_ai(x_eval, recon).mean()),
        "rmse_ft": float(spectral.rmse_ft(x_eval, recon).mean()),
        "checkerboard_score": checkerboard_score(mean_db_map(recon)),
        "checkerboard_score_data": checkerboard_score(mean_db_map(x_eval)),
        "wall_time_s": res.total_wall_time_s or res.wall_time_s, "images_per_s": res.images_per_s,
        **_fit_metrics(res),
    }
    for k, v in relative_band_errors(x_eval, recon, cfg.band_edges).items():
        metrics[f"band_error_{k}"] = v
    for k, v in band_energy_ratios(x_eval, recon, cfg.band_edges).items():
        metrics[f"band_energy_{k}"] = v
    n_show = min(8, len(x_eval))
    return {
        "metrics": metrics,
        "arrays": {"freqs": f, "profile_recon_mean": mu_r, "profile_recon_std": sd_r, "profile_data_mean": mu_x,
                   "profile_data_std": sd_x, "map_recon": mean_db_map(recon), "map_data": mean_db_map(x_eval)},
        "npz": {"images": {"data": x_eval[:n_show].numpy(), "recon": recon[:n_show].numpy()}},
        "history": res.history,
        "extra": {"band_history": band_hist, "data_notes": str(getattr(train, "notes", ""))},
        "wall_time_s": res.total_wall_time_s or res.wall_time_s,
        "device": res.device,
    }


# ----------------------------------------------------------------------------------------------------------------
# the chapter-module contract: run / run_all
# ----------------------------------------------------------------------------------------------------------------
def run(cfg: RunConfig, *, progress: bool = False) -> dict[str, Any]:
    """Train and evaluate one run; return ``{"metrics", "arrays", "history", ...}`` (not stored; see :func:`run_all`).

    Module-level, so a process pool can call it. On the CPU it trains on one thread (see the comment below) with
    denormal floats flushed to zero, and restores both settings afterwards.
    """
    fns: dict[type, Callable[[Any, bool], dict[str, Any]]] = {
        RegressionConfig: _run_regression, ImageFitConfig: _run_image_fit, AutoencoderConfig: _run_autoencoder}
    fn = fns.get(type(cfg))
    if fn is not None:
        # ReLU MLPs drive many activations/gradients into denormal floats, which made CPU steps up to 20x slower
        # (measured: 57 ms vs 3 ms per step); flushing them to zero changes nothing visible in the results.
        torch.set_flush_denormal(True)
        # These models are too small to gain from intra-op parallelism on a CPU, and on a shared 2-core machine
        # two threads were ~4x slower than one (the smoke chapter: 90 s vs 22 s): train them on one thread.
        threads = torch.get_num_threads()
        if not torch.cuda.is_available():
            torch.set_num_threads(1)
        try:
            return fn(cfg, progress)
        finally:
            torch.set_flush_denormal(False)
            torch.set_num_threads(threads)
    raise TypeError(f"run() takes a RegressionConfig, ImageFitConfig or AutoencoderConfig; got {type(cfg).__name__}")


def load_or_train(cfgs: Sequence[RunConfig], train: bool = True, progress: bool = True,
                  workers: int = 1) -> list[dict[str, Any]]:
    """The stored records of ``cfgs``, training (and storing) the missing ones unless ``train`` is False."""
    store = _store()
    missing = [c for c in cfgs if not store.exists(c)]
    if missing and not train:
        from specvae.experiments.store import MissingResultError

        raise MissingResultError(
            f"{len(missing)} run(s) of chapter {CHAPTER} have no stored result in {store.folder} (first: {missing[0]!r}). "
            "Run with train=True (papermill -p train True) or `specvae run 00_spectral_bias --preset <preset>`.")
    if missing:
        from specvae.experiments.grid import run_grid

        run_grid(missing, run, store, workers=workers, progress=progress)
    return [store.load(c) for c in cfgs]


def run_all(preset: str = "cpu", *, workers: int = 1, train: bool = True, **overrides: Any):
    """Every trained run of the chapter at ``preset``: load stored results, train the missing ones (unless
    ``train=False``, where a missing result raises :class:`~specvae.experiments.store.MissingResultError`), and
    return the table of results (one row per run; config fields, metrics, provenance)."""
    cfgs = configs(preset, **overrides)
    load_or_train(cfgs, train, workers=workers)
    return _store().frame(cfgs)


_ensure = load_or_train

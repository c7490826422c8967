"""Chapter 0, "Spectral bias, hands on": every computation behind the chapter's tables and figures.

The notebook ``notebooks/00_spectral_bias.py`` is thin: it picks a preset, then calls one function per section
and plots what it returns with :mod:`specvae.plots`. The sections:

1. :func:`reading_spectra` - spectra of real images (faces, MNIST, Shapes) and of degraded faces (blur,
   down-sampling, JPEG, noise); the power-law slope of the radial power spectrum. Computed live (seconds).
2. :func:`regression_1d` - Rahaman et al.'s experiment: an MLP fits a 1-D sum of equal-amplitude sinusoids; the
   error of each frequency over training, with raw coordinates and with Fourier features (Tancik et al.).
3. :func:`image_fit_2d` - an MLP fits one image from its pixel coordinates; reconstructions and radial spectra
   at several training steps.
4. :func:`upsampling` - transposed convolution vs nearest + 5×5 convolution, at initialisation (live) and after
   training a small autoencoder (stored).
5. :func:`autoencoders` - a small autoencoder trained with MSE vs MSE + FFT loss on faces; per-band spectral
   error over training.

Sections 2-5 train through :func:`specvae.train.fit`; their results are stored in a
:class:`~specvae.experiments.store.ResultStore` (``book/results/00_spectral_bias/``), so the book is rebuilt
without retraining (``train=False`` reads them and fails clearly when one is missing).

The chapter-module contract: :data:`CHAPTER`, :class:`Sizes`, :data:`PRESETS`, :func:`configs`, :func:`run`,
:func:`run_all`.
"""

from __future__ import annotations

import dataclasses
import io
import math
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence, Union

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
    "sizes",
    "configs",
    "run",
    "run_all",
    "reading_spectra",
    "power_law_slope",
    "degrade",
    "DEGRADATIONS",
    "regression_1d",
    "image_fit_2d",
    "upsampling_at_init",
    "checkerboard_score",
    "upsampling",
    "autoencoders",
    "regression_target",
    "frequency_errors_1d",
    "relative_band_errors",
    "SPECTRAL_LOSSES",
]

#: spectral losses section 5 can add to the MSE (``spectral_loss`` knob)
SPECTRAL_LOSSES: tuple[str, ...] = ("fft", "focal")

CHAPTER = "00_spectral_bias"

#: degradations of section 1, in display order
DEGRADATIONS: tuple[str, ...] = ("original", "blur", "downsample", "jpeg", "noise")


# ----------------------------------------------------------------------------------------------------------------
# sizes and run configs
# ----------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Sizes:
    """Every knob of the chapter, with one value per preset (see :data:`PRESETS`).

    Section 1: ``n_images`` images per data set for the mean spectra, at ``image_size`` pixels (faces);
    ``blur_sigma`` (pixels), ``jpeg_quality`` (1-100) and ``noise_std`` (in [0, 1] units) set the degradations;
    ``slope_range`` is the frequency range (cycles/pixel) of the power-law fit.

    Section 2: ``frequencies`` (cycles per unit interval) of the target ``Σ_k sin(2π k x + φ_k)`` sampled at
    ``n_points`` points of [0, 1); an MLP of ``reg_depth`` × ``reg_width`` ReLU units trained full-batch for
    ``reg_steps`` Adam steps at ``reg_lr``; errors recorded every ``reg_eval_every`` steps. The Fourier-feature
    run uses ``fourier_features`` random frequencies of standard deviation ``fourier_scale``.

    Section 3: one face at ``fit_size`` pixels (gray), MLP ``fit_depth`` × ``fit_width``, ``fit_steps`` steps,
    snapshots at ``fit_snapshots``; Fourier features of scale ``fit_fourier_scale`` (0 = only the raw MLP).

    Sections 4-5: autoencoders on faces at ``ae_size`` pixels, ``ae_train`` training and ``ae_eval`` held-out
    images, ``ae_steps`` steps of batch ``ae_batch`` at ``ae_lr``, a dense code of ``ae_latent`` numbers,
    ``ae_width`` channels at the first level, per-band errors every ``ae_eval_every`` steps in the bands
    ``band_edges`` (cycles/pixel). ``upsample`` is the up-sampling of the section-5 runs; ``fft_weight`` is
    α of Björk et al.'s eq. 3 for the FFT run. At initialisation, ``n_init`` random decoders per kind.
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
    # section 3
    fit_size: int = 64
    fit_width: int = 128
    fit_depth: int = 4
    fit_steps: int = 600
    fit_lr: float = 1e-3
    fit_snapshots: tuple[int, ...] = (25, 100, 300, 600)
    fit_fourier_scale: float = 10.0
    fit_image: int = 5
    # sections 4-5
    ae_size: int = 32
    ae_train: int = 4096
    ae_eval: int = 256
    ae_steps: int = 1500
    ae_batch: int = 32
    ae_lr: float = 1e-3
    ae_latent: int = 64
    ae_width: int = 32
    ae_eval_every: int = 100
    band_edges: tuple[float, ...] = (0.0, 0.125, 0.25, 0.375, 0.5)
    upsample: str = "transposed"
    fft_weight: float = 0.5
    spectral_loss: str = "fft"
    n_init: int = 16
    seed: int = 0
    #: the preset these sizes came from (set by :func:`sizes`; recorded in each run's provenance)
    preset: str = "custom"


#: the four presets: ``smoke`` (CI, seconds), ``cpu`` (laptop, minutes), ``gpu`` and ``paper`` (longer, larger)
PRESETS: dict[str, Sizes] = {
    "smoke": Sizes(
        n_images=32, image_size=32, n_points=128, reg_width=64, reg_depth=3, reg_steps=300, reg_eval_every=20,
        fourier_features=32, fit_size=32, fit_width=64, fit_depth=3, fit_steps=60, fit_snapshots=(10, 30, 60),
        ae_train=128, ae_eval=32, ae_steps=30, ae_batch=16, ae_latent=32, ae_width=8, ae_eval_every=10, n_init=4,
    ),
    "cpu": Sizes(),
    "gpu": Sizes(
        n_images=1000, reg_steps=10000, reg_eval_every=100, fit_size=64, fit_width=256, fit_steps=3000,
        fit_snapshots=(50, 300, 1000, 3000), ae_size=64, ae_train=20000, ae_eval=1000, ae_steps=20000,
        ae_batch=64, ae_latent=128, ae_width=64, ae_eval_every=500, n_init=64,
    ),
    "paper": Sizes(
        n_images=2000, n_points=200, frequencies=(5.0, 10.0, 15.0, 20.0, 25.0, 30.0, 35.0, 40.0, 45.0, 50.0),
        reg_depth=6, reg_lr=3e-4, reg_steps=80000, reg_eval_every=500, fit_size=64, fit_width=256,
        fit_steps=5000, fit_snapshots=(50, 500, 2000, 5000), ae_size=64, ae_train=22000, ae_eval=2000,
        ae_steps=50000, ae_batch=64, ae_latent=128, ae_width=64, ae_eval_every=1000, n_init=64,
    ),
}


@dataclass(frozen=True)
class RegressionConfig:
    """One 1-D regression run of section 2 (Rahaman et al. 2019, Sec. 2; Fourier features: Tancik et al. 2020)."""

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
    preset: str = field(default="custom", metadata={"hash": False})


@dataclass(frozen=True)
class AutoencoderConfig:
    """One autoencoder run of sections 4-5: faces, MSE (+ α·FFT loss, Björk et al. eq. 3), an up-sampling kind."""

    image_size: int
    n_train: int
    n_eval: int
    upsample: str
    fft_weight: float  # α of eq. 3; 0 = plain MSE
    spectral_loss: str  # "fft" (Björk eq. 2) or "focal" (Jiang et al. 2021)
    latent_dim: int
    width: int
    steps: int
    batch_size: int
    lr: float
    eval_every: int
    band_edges: tuple[float, ...]
    dataset: str = "faces"
    seed: int = 0
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
        clean[k] = tuple(float(x) if k != "fit_snapshots" else int(x) for x in v) if isinstance(v, list) else v
    out = dataclasses.replace(select_preset(PRESETS, preset, **clean), preset=check_preset(preset))
    from specvae.models.upsample import UPSAMPLE_KINDS

    if out.upsample not in UPSAMPLE_KINDS:
        raise ValueError(f"unknown upsample {out.upsample!r}: choose one of {UPSAMPLE_KINDS}")
    if out.spectral_loss not in SPECTRAL_LOSSES:
        raise ValueError(f"unknown spectral_loss {out.spectral_loss!r}: choose one of {SPECTRAL_LOSSES}")
    if not 0.0 <= out.fft_weight <= 1.0:
        raise ValueError(f"fft_weight is α of Björk et al.'s eq. 3 and must lie in [0, 1]; got {out.fft_weight}")
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


def _image_fit_configs(s: Sizes, preset: str) -> list[ImageFitConfig]:
    snaps = tuple(sorted({int(t) for t in s.fit_snapshots if 0 < int(t) <= s.fit_steps} | {s.fit_steps}))
    base = dict(image_size=s.fit_size, image_index=s.fit_image, width=s.fit_width, depth=s.fit_depth,
                steps=s.fit_steps, lr=s.fit_lr, snapshots=snaps, seed=s.seed, preset=preset)
    out = [ImageFitConfig(fourier_features=0, fourier_scale=s.fit_fourier_scale, **base)]
    if s.fit_fourier_scale > 0 and s.fourier_features > 0:
        out.append(ImageFitConfig(fourier_features=max(s.fourier_features, 64), fourier_scale=s.fit_fourier_scale,
                                  **base))
    return out


def _ae_config(s: Sizes, preset: str, upsample: str, fft_weight: float) -> AutoencoderConfig:
    return AutoencoderConfig(
        image_size=s.ae_size, n_train=s.ae_train, n_eval=s.ae_eval, upsample=upsample, fft_weight=float(fft_weight),
        spectral_loss=s.spectral_loss if fft_weight > 0 else "none",
        latent_dim=s.ae_latent, width=s.ae_width, steps=s.ae_steps, batch_size=s.ae_batch, lr=s.ae_lr,
        eval_every=s.ae_eval_every, band_edges=tuple(float(e) for e in s.band_edges), seed=s.seed, preset=preset)


def _upsampling_configs(s: Sizes, preset: str) -> list[AutoencoderConfig]:
    return [_ae_config(s, preset, kind, 0.0) for kind in ("transposed", "nearest_conv5")]


def _autoencoder_configs(s: Sizes, preset: str) -> list[AutoencoderConfig]:
    return [_ae_config(s, preset, s.upsample, 0.0), _ae_config(s, preset, s.upsample, s.fft_weight)]


def configs(preset: str | Sizes, **overrides: Any) -> list[RunConfig]:
    """Every trained run of the chapter at ``preset`` (sections 2-5), without duplicates, in section order."""
    name, s = _sizes_of(preset, overrides)
    out: list[RunConfig] = []
    for cfg in (*_regression_configs(s, name), *_image_fit_configs(s, name), *_upsampling_configs(s, name),
                *_autoencoder_configs(s, name)):
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
    """(freqs, mean, std) of the log radial power spectra of the images ``x`` (N, C, H, W) in [0, 1]."""
    from specvae import spectral

    prof = spectral.radial_profile(x.float(), log=True, gray=True)
    freqs = spectral.frequency_axis(x.shape[-2], x.shape[-1])
    return freqs.cpu().numpy(), prof.mean(0).cpu().numpy(), prof.std(0).cpu().numpy()


def _mean_log_map(x: torch.Tensor) -> np.ndarray:
    """Mean centred log-magnitude map (H, W) of images (N, C, H, W), gray."""
    from specvae import spectral

    x = x.float()
    if x.shape[1] == 3:
        x = spectral.to_gray(x)
    return spectral.log_magnitude(x).mean(dim=(0, 1)).cpu().numpy()


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


def _train_config(steps: int, batch_size: int, lr: float, seed: int, log_every: int):
    from specvae.train import TrainConfig

    return TrainConfig(steps=steps, batch_size=batch_size, lr=lr, seed=seed, log_every=max(1, log_every),
                       device="auto", precision="fp32")


def _device_of(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


# ----------------------------------------------------------------------------------------------------------------
# section 1: reading a spectrum
# ----------------------------------------------------------------------------------------------------------------
def _jpeg_roundtrip(x: torch.Tensor, quality: int) -> torch.Tensor:
    """Encode each image of ``x`` (N, C, H, W) in [0, 1] as JPEG at ``quality`` with Pillow and decode it again.

    Pillow rather than ``torchvision.io`` (whose image codecs are deprecated since torchvision 0.29).
    """
    import io

    from PIL import Image

    if not 1 <= quality <= 100:
        raise ValueError(f"jpeg_quality must lie in 1..100; got {quality}")
    u8 = (x.clamp(0, 1) * 255).round().to(torch.uint8).cpu()
    out = []
    for img in u8:
        arr = img[0].numpy() if img.shape[0] == 1 else img.permute(1, 2, 0).numpy()
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, format="JPEG", quality=quality)
        dec = torch.from_numpy(np.asarray(Image.open(io.BytesIO(buf.getvalue()))).copy())
        out.append(dec[None] if dec.ndim == 2 else dec.permute(2, 0, 1))
    return torch.stack(out).float().div(255).to(x.device)


def degrade(x: torch.Tensor, kind: str, *, blur_sigma: float = 1.0, jpeg_quality: int = 10,
            noise_std: float = 0.05, seed: int = 0) -> torch.Tensor:
    """A degraded copy of the images ``x`` (N, C, H, W) in [0, 1].

    ``"blur"``: Gaussian blur of standard deviation ``blur_sigma`` pixels (kernel ±3σ, torchvision);
    ``"downsample"``: ×2 down-sampling by area averaging, then bicubic ×2 up-sampling back to the input size;
    ``"jpeg"``: JPEG at quality ``jpeg_quality`` (Pillow/libjpeg, baseline, 4:2:0 chroma for colour images);
    ``"noise"``: added white Gaussian noise of
    standard deviation ``noise_std``, clipped to [0, 1]; ``"original"``: ``x`` itself.
    """
    import torchvision.transforms.functional as TF

    if kind == "original":
        return x
    if kind == "blur":
        k = 2 * math.ceil(3 * blur_sigma) + 1
        return TF.gaussian_blur(x, [k, k], [blur_sigma, blur_sigma])
    if kind == "downsample":
        h, w = x.shape[-2:]
        small = F.avg_pool2d(x, 2)
        return F.interpolate(small, size=(h, w), mode="bicubic", align_corners=False).clamp(0, 1)
    if kind == "jpeg":
        return _jpeg_roundtrip(x, int(jpeg_quality))
    if kind == "noise":
        g = torch.Generator(device="cpu").manual_seed(seed)
        return (x + noise_std * torch.randn(x.shape, generator=g).to(x.device)).clamp(0, 1)
    raise ValueError(f"unknown degradation {kind!r}: choose one of {DEGRADATIONS}")


def power_law_slope(freqs: np.ndarray, power: np.ndarray, fmin: float, fmax: float) -> tuple[float, float]:
    """Least-squares fit of ``log P(f) = c + β log f`` over ``fmin <= f <= fmax``; returns ``(β, c)``.

    ``power`` is the (linear) radial power spectrum; natural images give β close to -2
    (Field 1987; van der Schaaf & van Hateren 1996).
    """
    f = np.asarray(freqs, dtype=np.float64)
    p = np.asarray(power, dtype=np.float64)
    keep = (f >= fmin) & (f <= fmax) & (p > 0)
    if keep.sum() < 2:
        raise ValueError(f"fewer than two frequency bins in [{fmin}, {fmax}] cycles/pixel; widen slope_range")
    beta, c = np.polyfit(np.log(f[keep]), np.log(p[keep]), 1)
    return float(beta), float(c)


def reading_spectra(preset: str | Sizes = "cpu", *, progress: bool = False, **overrides: Any) -> dict[str, Any]:
    """Section 1: spectra of real images and of degraded faces, and the power-law slope of each.

    Returns a dict with
      ``examples``: {name: one example image (C, H, W)} for faces/MNIST/Shapes and each degradation of a face;
      ``maps``: {name: mean centred log-magnitude map (H, W)} over the ``n_images`` images;
      ``profiles``: {name: (freqs, mean, std)} log radial power spectra (cycles/pixel), data sets and degradations;
      ``slopes``: a pandas DataFrame (name, slope β of P ∝ f^β, intercept, n_images, image_size);
      ``power``: {name: (freqs, ln of the mean radial power)} (what the slope is fitted to);
      ``fits``: {name: (freqs, fitted ln power)} over the fit range.
    """
    import pandas as pd

    from specvae import spectral

    _, s = _sizes_of(preset, overrides)
    sets = {
        "faces": _load("faces", "test", s.image_size, s.n_images, s.seed, s.preset),
        "MNIST": _load("mnist", "test", 32, s.n_images, s.seed, s.preset),
        "Shapes": _load("shapes", "test", 32, s.n_images, s.seed),
    }
    images = {name: d.float() for name, d in sets.items()}
    faces = images["faces"]
    for kind in DEGRADATIONS[1:]:
        images[f"faces, {kind}"] = degrade(faces, kind, blur_sigma=s.blur_sigma, jpeg_quality=s.jpeg_quality,
                                           noise_std=s.noise_std, seed=s.seed)
    out: dict[str, Any] = {"examples": {}, "maps": {}, "profiles": {}, "fits": {}, "power": {}, "notes": {}}
    rows = []
    for name, x in images.items():
        out["examples"][name] = x[0]
        out["maps"][name] = _mean_log_map(x)
        out["profiles"][name] = _profile_stats(x)
        freqs = spectral.frequency_axis(x.shape[-2], x.shape[-1]).numpy()
        power = spectral.radial_profile(x, log=False, gray=True).mean(0).numpy()
        beta, c = power_law_slope(freqs, power, *s.slope_range)
        keep = (freqs >= s.slope_range[0]) & (freqs <= s.slope_range[1])
        out["fits"][name] = (freqs[keep], c + beta * np.log(freqs[keep]))
        out["power"][name] = (freqs, np.log(power))
        rows.append({"images": name, "slope": beta, "intercept": c, "n_images": x.shape[0],
                     "image_size": x.shape[-1]})
    for name, d in sets.items():
        out["notes"][name] = getattr(d, "notes", "")
    out["slopes"] = pd.DataFrame(rows)
    return out


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
                                                                 cfg.eval_every),
              progress=progress, callbacks=[record])
    with torch.no_grad():
        pred = res.model(x.to(_device_of(res.model))).cpu()
    err = np.stack(errs, 1)  # (K, T)
    # first step at which each frequency's error falls below 0.1 (NaN: never)
    learned = [float(np.array(steps_rec)[np.argmax(e < 0.1)]) if (e < 0.1).any() else float("nan") for e in err]
    metrics = {"final_mse": float(F.mse_loss(pred, y)), "wall_time_s": res.wall_time_s}
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
              _train_config(cfg.steps, h * w, cfg.lr, cfg.seed, max(1, cfg.steps // 50)),
              progress=progress, callbacks=[record])
    steps = sorted(snaps)
    recon = torch.from_numpy(np.concatenate([snaps[t] for t in steps]))  # (S, 1, H, W)
    prof_t = spectral.radial_profile(target, log=True).numpy()[0]
    prof_r = spectral.radial_profile(recon, log=True).numpy()  # (S, R)
    psnr = [float(-10 * torch.log10(F.mse_loss(r[None], target))) for r in recon]
    metrics = {"final_psnr": psnr[-1], "wall_time_s": res.wall_time_s}
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
    """How much the Nyquist points stand out in a centred log-magnitude map (H, W) (even H, W).

    The mean log magnitude at the three Nyquist frequencies (1/2, 0), (0, 1/2), (1/2, 1/2) cycles/pixel, minus the
    median log magnitude over all non-DC frequencies. A period-2 pattern (a checkerboard) puts energy exactly
    there, so a transposed convolution of stride 2 scores high; nearest-neighbour ×2 up-sampling has a zero of
    its frequency response at 1/2 cycles/pixel along each axis and scores low. Ref: Odena et al. 2016.
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


def upsampling_at_init(preset: str | Sizes = "cpu", **overrides: Any) -> dict[str, Any]:
    """Section 4a: outputs of randomly initialised decoders (no Sigmoid) for both up-sampling kinds.

    ``n_init`` decoders per kind (seeds 0..n_init-1), each fed a 4×4 map of 64 standard-normal channels
    (fixed across kinds) and up-sampling ×2 three times to 32×32 with one output channel.

    Returns ``{"examples": {kind: (1, H, W)}, "maps": {kind: (H, W)}, "profiles": {kind: (f, mean, std)},
    "scores": DataFrame(kind, checkerboard_score)}``.
    """
    import pandas as pd

    from specvae.models.autoencoder import ConvDecoder

    _, s = _sizes_of(preset, overrides)
    g = torch.Generator().manual_seed(s.seed)
    z = torch.randn(s.n_init, 64, 4, 4, generator=g)
    out: dict[str, Any] = {"examples": {}, "maps": {}, "profiles": {}}
    rows = []
    for kind in ("transposed", "nearest_conv5"):
        ys = []
        with torch.no_grad():
            for i in range(s.n_init):
                torch.manual_seed(s.seed * 1000 + i)
                dec = ConvDecoder(64, 1, 32, 3, kind, out_activation=None)
                ys.append(dec(z[i : i + 1]))
        y = torch.cat(ys)
        # rescale each output to [0, 1] so spectra of the two kinds compare on one scale
        lo = y.amin(dim=(1, 2, 3), keepdim=True)
        hi = y.amax(dim=(1, 2, 3), keepdim=True)
        y = (y - lo) / (hi - lo).clamp_min(1e-12)
        out["examples"][kind] = y[0]
        from specvae import spectral

        maps = spectral.log_magnitude(y)[:, 0]  # (N, H, W)
        out["maps"][kind] = maps.mean(0).numpy()
        out["profiles"][kind] = _profile_stats(y)
        score = np.array([checkerboard_score(mm.numpy()) for mm in maps])
        rows.append({"upsampling": kind, "checkerboard_score": float(score.mean()),
                     "checkerboard_score_std": float(score.std()), "n_decoders": s.n_init})
    out["scores"] = pd.DataFrame(rows)
    return out


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
    model = ConvAutoencoder(c, cfg.image_size, cfg.width, 3, cfg.latent_dim, cfg.upsample)
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
    band_hist: dict[str, list[float]] = {"step": []}

    def objective(m, batch, step):
        recon = m(batch)
        mse = F.mse_loss(recon, batch)
        terms: dict[str, Any] = {"mse": mse.detach()}
        if alpha > 0 and spec_loss is not None:
            lf = spec_loss(recon, batch)
            terms[cfg.spectral_loss] = lf.detach()
            loss = (1 - alpha) * mse + alpha * lf  # Björk et al. 2022, eq. 3
        else:
            loss = mse
        return loss, terms

    def evaluate(m) -> torch.Tensor:
        m.eval()
        with torch.no_grad():
            dev = _device_of(m)
            r = torch.cat([m(x_eval[i : i + 256].to(dev)).float().cpu() for i in range(0, len(x_eval), 256)])
        m.train()
        return r

    def record(step, m, terms):
        if step % cfg.eval_every == 0 or step == cfg.steps:
            errs = relative_band_errors(x_eval, evaluate(m), cfg.band_edges)
            band_hist["step"].append(step)
            for k, v in errs.items():
                band_hist.setdefault(k, []).append(v)

    record(0, model, {})
    res = fit(model, objective, train.images, _train_config(cfg.steps, cfg.batch_size, cfg.lr, cfg.seed,
                                                            max(1, cfg.eval_every // 2)),
              progress=progress, callbacks=[record])
    recon = evaluate(res.model)
    mse = F.mse_loss(recon, x_eval, reduction="none").mean(dim=(1, 2, 3))
    psnr = -10 * torch.log10(mse.clamp_min(1e-12))
    f, mu_r, sd_r = _profile_stats(recon)
    _, mu_x, sd_x = _profile_stats(x_eval)
    metrics: dict[str, Any] = {
        "mse": float(mse.mean()), "psnr": float(psnr.mean()),
        "rmse_ai": float(spectral.rmse_ai(x_eval, recon).mean()),
        "rmse_ft": float(spectral.rmse_ft(x_eval, recon).mean()),
        "checkerboard_score": checkerboard_score(_mean_log_map(recon)),
        "checkerboard_score_data": checkerboard_score(_mean_log_map(x_eval)),
        "wall_time_s": res.wall_time_s, "images_per_s": res.images_per_s,
    }
    for k, v in band_hist.items():
        if k != "step":
            metrics[f"band_error_{k}"] = v[-1]
    n_show = min(8, len(x_eval))
    return {
        "metrics": metrics,
        "arrays": {"freqs": f, "profile_recon_mean": mu_r, "profile_recon_std": sd_r, "profile_data_mean": mu_x,
                   "profile_data_std": sd_x, "map_recon": _mean_log_map(recon), "map_data": _mean_log_map(x_eval)},
        "npz": {"images": {"data": x_eval[:n_show].numpy(), "recon": recon[:n_show].numpy()}},
        "history": res.history,
        "extra": {"band_history": band_hist, "data_notes": str(getattr(train, "notes", ""))},
        "wall_time_s": res.wall_time_s,
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


def _ensure(cfgs: Sequence[RunConfig], train: bool, progress: bool = True, workers: int = 1) -> list[dict[str, Any]]:
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
    _ensure(cfgs, train, workers=workers)
    return _store().frame(cfgs)


# ----------------------------------------------------------------------------------------------------------------
# per-section accessors used by the notebook
# ----------------------------------------------------------------------------------------------------------------
def regression_1d(preset: str | Sizes = "cpu", *, train: bool = True, **overrides: Any) -> dict[str, Any]:
    """Section 2: {label: record} for the raw-coordinate MLP and (if ``fourier_features`` > 0) the Fourier-feature
    MLP; each record's ``arrays["errors"]`` is (K frequencies, T evaluations) at ``arrays["eval_steps"]``.
    Also ``"table"``: a DataFrame (input, frequency, steps to error < 0.1, final error)."""
    import pandas as pd

    name, s = _sizes_of(preset, overrides)
    cfgs = _regression_configs(s, name)
    recs = _ensure(cfgs, train)
    out: dict[str, Any] = {}
    rows = []
    for cfg, rec in zip(cfgs, recs):
        label = "raw coordinates" if cfg.fourier_features == 0 else f"Fourier features (σ={cfg.fourier_scale:g})"
        out[label] = rec
        for k in cfg.frequencies:
            rows.append({"input": label, "frequency": k,
                         "steps to error < 0.1": rec["metrics"][f"steps_to_0.1_k{k:g}"],
                         "final error": rec["metrics"][f"final_error_k{k:g}"]})
    return {"runs": out, "table": pd.DataFrame(rows), "configs": cfgs}


def image_fit_2d(preset: str | Sizes = "cpu", *, train: bool = True, **overrides: Any) -> dict[str, Any]:
    """Section 3: {label: record (+ "images": target/recon snapshots)} for the raw and Fourier-feature MLPs,
    and ``"table"``: PSNR at each snapshot step."""
    import pandas as pd

    name, s = _sizes_of(preset, overrides)
    cfgs = _image_fit_configs(s, name)
    recs = _ensure(cfgs, train)
    store = _store()
    out: dict[str, Any] = {}
    rows = []
    for cfg, rec in zip(cfgs, recs):
        label = "raw coordinates" if cfg.fourier_features == 0 else f"Fourier features (σ={cfg.fourier_scale:g})"
        rec = dict(rec)
        rec["images"] = store.load_npz(cfg, "images")
        out[label] = rec
        for t in rec["arrays"]["snapshot_steps"]:
            rows.append({"input": label, "step": int(t), "PSNR (dB)": rec["metrics"][f"psnr_step{int(t)}"]})
    return {"runs": out, "table": pd.DataFrame(rows), "configs": cfgs}


def _ae_records(cfgs: Sequence[AutoencoderConfig], train: bool) -> list[dict[str, Any]]:
    recs = _ensure(cfgs, train)
    store = _store()
    out = []
    for cfg, rec in zip(cfgs, recs):
        rec = dict(rec)
        rec["images"] = store.load_npz(cfg, "images")
        out.append(rec)
    return out


def upsampling(preset: str | Sizes = "cpu", *, train: bool = True, **overrides: Any) -> dict[str, Any]:
    """Section 4: ``"init"`` = :func:`upsampling_at_init`; ``"trained"`` = {kind: record} of MSE autoencoders
    with each up-sampling kind; ``"table"``: checkerboard score and spectral errors per kind."""
    import pandas as pd

    name, s = _sizes_of(preset, overrides)
    init = upsampling_at_init(s)
    cfgs = _upsampling_configs(s, name)
    recs = _ae_records(cfgs, train)
    trained = {cfg.upsample: rec for cfg, rec in zip(cfgs, recs)}
    rows = []
    for kind, rec in trained.items():
        m = rec["metrics"]
        rows.append({"upsampling": kind,
                     "checkerboard score at init": float(init["scores"].set_index("upsampling").loc[kind,
                                                                                                     "checkerboard_score"]),
                     "checkerboard score trained": m["checkerboard_score"],
                     "checkerboard score data": m["checkerboard_score_data"],
                     "PSNR (dB)": m["psnr"], "RMSE (AI)": m["rmse_ai"], "RMSE (FT)": m["rmse_ft"],
                     **{f"band {k[len('band_error_'):]}": v for k, v in m.items() if k.startswith("band_error_")}})
    return {"init": init, "trained": trained, "table": pd.DataFrame(rows), "configs": cfgs}


def autoencoders(preset: str | Sizes = "cpu", *, train: bool = True, **overrides: Any) -> dict[str, Any]:
    """Section 5: {label: record} for the MSE and MSE + FFT autoencoders (``extra["band_history"]``: per-band
    error over training), and ``"table"``: final metrics per loss."""
    import pandas as pd

    name, s = _sizes_of(preset, overrides)
    cfgs = _autoencoder_configs(s, name)
    recs = _ae_records(cfgs, train)
    runs = {}
    rows = []
    for cfg, rec in zip(cfgs, recs):
        name = {"fft": "FFT", "focal": "focal frequency"}.get(cfg.spectral_loss, cfg.spectral_loss)
        label = "MSE" if cfg.fft_weight == 0 else f"MSE + {name} (α={cfg.fft_weight:g})"
        runs[label] = rec
        m = rec["metrics"]
        row = {"loss": label, "PSNR (dB)": m["psnr"], "RMSE (AI)": m["rmse_ai"], "RMSE (FT)": m["rmse_ft"]}
        for k, v in m.items():
            if k.startswith("band_error_"):
                row[f"band {k[len('band_error_'):]}"] = v
        rows.append(row)
    return {"runs": runs, "table": pd.DataFrame(rows), "configs": cfgs}

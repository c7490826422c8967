"""Chapter 0 report: everything the notebook shows that is not a stored run of
:mod:`specvae.experiments.spectral_bias`.

Two kinds of functions live here, apart from the run module so that editing them never changes the code
fingerprint of the stored runs:

* live computations that take seconds and are never stored: the spectra of section 1 (:func:`reading_spectra`,
  :func:`degrade`, :func:`power_law_slope`, :func:`degradation_errors`), the untrained decoders of section 4
  (:func:`upsampling_at_init`), the linear (PCA) bound of section 6 (:func:`pca_band_errors`);
* per-section accessors that load (or train, through the run module) the stored runs and turn them into
  reader-facing tables with reader names: :func:`regression_1d`, :func:`exercise_regressions`,
  :func:`image_fit_2d`, :func:`upsampling`, :func:`autoencoders`, :func:`recovering`, with :func:`ae_table`,
  :func:`converged_mark`, :func:`band_label`.

Units as in the run module: dB of power for spectra and maps (:func:`~specvae.experiments.spectral_bias.mean_db_map`).
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import torch
from torch.nn import functional as F

from specvae.experiments.spectral_bias import (
    _DB_PER_LN_MAGNITUDE,
    AutoencoderConfig,
    RegressionConfig,
    Sizes,
    _autoencoder_configs,
    load_or_train,
    _exercise_regression_configs,
    _image_fit_configs,
    _load,
    _profile_stats,
    _recovering_configs,
    _regression_configs,
    _sizes_of,
    _store,
    _upsampling_configs,
    checkerboard_score,
    mean_db_map,
    relative_band_errors,
)

__all__ = [
    "DEGRADATIONS",
    "UPSAMPLE_NAMES",
    "degrade",
    "power_law_slope",
    "reading_spectra",
    "degradation_errors",
    "axis_slice",
    "upsampling_at_init",
    "nyquist_and_median",
    "band_label",
    "band_labels",
    "per_bin_band_errors",
    "converged_mark",
    "ae_table",
    "regression_1d",
    "exercise_regressions",
    "image_fit_2d",
    "upsampling",
    "autoencoders",
    "recovering",
    "pca_band_errors",
]

#: degradations of section 1, in display order
DEGRADATIONS: tuple[str, ...] = ("original", "blur", "downsample", "jpeg", "noise")


def axis_slice(m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The row ``f_y = 0`` of a centred map (H, W) for ``f_x = 0, 1/W, ..., 1/2``: ``(freqs, values)``.

    Unlike a ring average, which spreads a single bright bin over all the bins of its ring, the slice shows
    each frequency along the horizontal axis on its own (the Nyquist bin ``f_x = 1/2`` sits at column 0 of a
    centred map of even width).
    """
    m = np.asarray(m)
    h, w = m.shape
    k = np.arange(w // 2 + 1)
    return k / w, m[h // 2, (w // 2 + k) % w]


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

    ``power`` is the (linear) radial power spectrum; photographs of natural scenes give β close to -2
    (Field 1987; van der Schaaf & van Hateren 1996), isolated sharp-edged objects on a flat background about -3
    (a straight edge puts power ∝ f^-2 on one line of the 2-D spectrum, which a ring average thins by 1/f).
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

    The data sets ``"faces"``, ``"MNIST"``, ``"Shapes"`` are compared at 32 × 32 pixels (one size, so their maps
    share a colour scale); the degradations ``"faces, <kind>"`` (``kind`` in :data:`DEGRADATIONS`, ``original``
    included) are of faces at ``image_size`` pixels.

    Returns a dict with
      ``examples``: {name: one example image (C, H, W)};
      ``maps``: {name: mean centred power map in dB (H, W)} over the ``n_images`` images (:func:`mean_db_map`);
      ``profiles``: {name: (freqs, mean, std)} radial power spectra in dB over images (cycles/pixel);
      ``slopes``: a pandas DataFrame (images, slope β of P ∝ f^β, intercept, n_images, image_size);
      ``power``: {name: (freqs, 10 log10 of the mean radial power)} (what the slope is fitted to, in dB);
      ``fits``: {name: (freqs, fitted power in dB)} over the fit range;
      ``errors``: :func:`degradation_errors` of the degraded faces against the originals.
    """
    import pandas as pd

    from specvae import spectral

    _, s = _sizes_of(preset, overrides)
    sets = {
        "faces": _load("faces", "test", 32, s.n_images, s.seed, s.preset),
        "MNIST": _load("mnist", "test", 32, s.n_images, s.seed, s.preset),
        "Shapes": _load("shapes", "test", 32, s.n_images, s.seed),
    }
    images = {name: d.float() for name, d in sets.items()}
    faces = _load("faces", "test", s.image_size, s.n_images, s.seed, s.preset).float()
    for kind in DEGRADATIONS:
        images[f"faces, {kind}"] = degrade(faces, kind, blur_sigma=s.blur_sigma, jpeg_quality=s.jpeg_quality,
                                           noise_std=s.noise_std, seed=s.seed)
    out: dict[str, Any] = {"examples": {}, "maps": {}, "profiles": {}, "fits": {}, "power": {}, "notes": {}}
    rows = []
    db = 10.0 / math.log(10.0)
    for name, x in images.items():
        out["examples"][name] = x[0]
        out["maps"][name] = mean_db_map(x)
        out["profiles"][name] = _profile_stats(x)
        freqs = spectral.frequency_axis(x.shape[-2], x.shape[-1]).numpy()
        power = spectral.radial_profile(x, log=False, gray=True).mean(0).numpy()
        beta, c = power_law_slope(freqs, power, *s.slope_range)
        keep = (freqs >= s.slope_range[0]) & (freqs <= s.slope_range[1])
        out["fits"][name] = (freqs[keep], db * (c + beta * np.log(freqs[keep])))
        out["power"][name] = (freqs, db * np.log(power))
        rows.append({"images": name, "slope": beta, "intercept": c, "n_images": x.shape[0],
                     "image_size": x.shape[-1]})
    for name, d in sets.items():
        out["notes"][name] = getattr(d, "notes", "")
    out["slopes"] = pd.DataFrame(rows)
    out["errors"] = degradation_errors({k: images[f"faces, {k}"] for k in DEGRADATIONS[1:]}, faces, s.band_edges)
    return out


def degradation_errors(degraded: dict[str, torch.Tensor], original: torch.Tensor,
                       edges: Sequence[float]) -> "pandas.DataFrame":  # noqa: F821
    """PSNR and per-band error of each degraded copy against the originals: one row per degradation.

    Columns ``degradation``, ``PSNR (dB)`` (mean over images of ``-10 log10 MSE``), and per band (named as
    :func:`band_label`) the relative error :func:`relative_band_errors`.
    """
    import pandas as pd

    rows = []
    for kind, y in degraded.items():
        mse = (y - original).square().mean(dim=(1, 2, 3)).clamp_min(1e-12)
        row: dict[str, Any] = {"degradation": kind, "PSNR (dB)": float((-10 * torch.log10(mse)).mean())}
        row.update({band_label(k): v for k, v in relative_band_errors(original, y, edges).items()})
        rows.append(row)
    return pd.DataFrame(rows)


def nyquist_and_median(m: np.ndarray) -> tuple[float, float]:
    """The two terms of :func:`~specvae.experiments.spectral_bias.checkerboard_score` of a centred log map
    (H, W): the mean at the three Nyquist frequencies and the median over all non-DC frequencies (their
    difference is the score). Blur lowers the median, so a blurred image scores high without any artefact;
    the two terms show which moved."""
    m = np.asarray(m, dtype=np.float64)
    h, w = m.shape
    cy, cx = h // 2, w // 2
    nyq = float(np.mean([m[cy, 0], m[0, cx], m[0, 0]]))
    mask = np.ones_like(m, dtype=bool)
    mask[cy, cx] = False
    return nyq, float(np.median(m[mask]))


def upsampling_at_init(preset: str | Sizes = "cpu", **overrides: Any) -> dict[str, Any]:
    """Section 4a: outputs of randomly initialised decoders (no Sigmoid) for both up-sampling kinds.

    ``n_init`` decoders per kind (seeds 0..n_init-1), each fed a 4×4 map of 64 standard-normal channels
    (fixed across kinds) and up-sampling ×2 three times to 32×32 with one output channel.

    Returns ``{"examples": {kind: (1, H, W)}, "maps": {kind: mean power map in dB (H, W)}, "profiles": {kind:
    (f, mean, std) in dB}, "slices": {kind: (f, dB)} (:func:`axis_slice` of the map), "scores": DataFrame(kind,
    checkerboard_score in dB)}``.
    """
    import pandas as pd

    from specvae.models.autoencoder import ConvDecoder

    _, s = _sizes_of(preset, overrides)
    g = torch.Generator().manual_seed(s.seed)
    z = torch.randn(s.n_init, 64, 4, 4, generator=g)
    out: dict[str, Any] = {"examples": {}, "maps": {}, "profiles": {}, "slices": {}}
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

        maps = spectral.log_magnitude(y, scale=_DB_PER_LN_MAGNITUDE)[:, 0]  # (N, H, W), dB of power
        out["maps"][kind] = maps.mean(0).numpy()
        out["slices"][kind] = axis_slice(out["maps"][kind])
        out["profiles"][kind] = _profile_stats(y)
        score = np.array([checkerboard_score(mm.numpy()) for mm in maps])
        rows.append({"upsampling": kind, "checkerboard_score": float(score.mean()),
                     "checkerboard_score_std": float(score.std()), "n_decoders": s.n_init})
    out["scores"] = pd.DataFrame(rows)
    return out


def band_labels(edges: Sequence[float]) -> list[str]:
    """:func:`band_label` of every band of ``edges``, in order (the column names of the chapter's tables)."""
    from specvae import spectral

    return [band_label(n) for n in spectral.band_errors(torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 4, 4),
                                                         list(edges))]


def per_bin_band_errors(x: torch.Tensor, y: torch.Tensor, edges: Sequence[float]) -> dict[str, float]:
    """Mean squared error *per frequency bin* in each band, ``mean_{images, bins in band} |F(x) − F(y)|²``
    (unitary FFT, all channels), keyed by :func:`band_label`: what a loss that weights each bin by its own
    absolute error (the focal frequency loss) sees, unlike :func:`relative_band_errors`."""
    from specvae import spectral

    h, w = x.shape[-2:]
    f = spectral.frequency_map(h, w)
    err = spectral.band_errors(x, y, list(edges))
    out = {}
    for (name, e), lo, hi in zip(err.items(), list(edges)[:-1], list(edges)[1:]):
        n_bins = int(((f >= lo) & (f < hi)).sum())
        out[band_label(name)] = float(e.mean()) * h * w / max(n_bins, 1)
    return out


def band_label(name: str) -> str:
    """A reader's name for a band of :func:`specvae.spectral.band_errors` (``"0.125-0.25"`` ->
    ``"1/8–1/4"``; a band that starts at 1/2 cycles/pixel holds only the corners of the spectrum)."""
    from fractions import Fraction

    lo, _, hi = name.partition("-")
    try:
        a, b = float(lo), float(hi)
    except ValueError:
        return name
    if a >= 0.5:
        return "corners (> 1/2)"

    def frac(v: float) -> str:
        f = Fraction(v).limit_denominator(64)
        return str(f) if abs(float(f) - v) < 1e-9 else f"{v:g}"

    return f"{frac(a)}–{frac(b)}"


# ----------------------------------------------------------------------------------------------------------------
# per-section accessors used by the notebook
# ----------------------------------------------------------------------------------------------------------------
def _regression_label(cfg: RegressionConfig) -> str:
    return "raw coordinates" if cfg.fourier_features == 0 else f"Fourier features (σ={cfg.fourier_scale:g})"


def _regression_table(cfgs: Sequence[RegressionConfig],
                      recs: Sequence[dict[str, Any]]) -> "pandas.DataFrame":  # noqa: F821
    import pandas as pd

    rows = []
    for cfg, rec in zip(cfgs, recs):
        for k in cfg.frequencies:
            rows.append({"input": _regression_label(cfg), "frequency": k,
                         "steps to error < 0.1": rec["metrics"][f"steps_to_0.1_k{k:g}"],
                         "final error": rec["metrics"][f"final_error_k{k:g}"]})
    return pd.DataFrame(rows)


def regression_1d(preset: str | Sizes = "cpu", *, train: bool = True, **overrides: Any) -> dict[str, Any]:
    """Section 2: {label: record} for the raw-coordinate MLP and (if ``fourier_features`` > 0) the Fourier-feature
    MLP; each record's ``arrays["errors"]`` is (K frequencies, T evaluations) at ``arrays["eval_steps"]``.
    Also ``"table"``: a DataFrame (input, frequency, steps to error < 0.1, final error)."""
    name, s = _sizes_of(preset, overrides)
    cfgs = _regression_configs(s, name)
    recs = load_or_train(cfgs, train)
    out = {_regression_label(cfg): rec for cfg, rec in zip(cfgs, recs)}
    return {"runs": out, "table": _regression_table(cfgs, recs), "configs": cfgs}


def exercise_regressions(preset: str | Sizes = "cpu", *, train: bool = True, **overrides: Any) -> dict[str, Any]:
    """The stored runs behind the answers to exercises 1 and 2: ``"octaves"`` (raw coordinates on
    ``ex_frequencies``) and ``"low_sigma"`` (Fourier features of scale ``ex_fourier_scale``), each a
    :func:`regression_1d`-style record, with ``"tables"`` of the same form."""
    name, s = _sizes_of(preset, overrides)
    cfgs = _exercise_regression_configs(s, name)
    recs = load_or_train(cfgs, train)
    keys = ("octaves", "low_sigma")
    return {"runs": dict(zip(keys, recs)), "tables": {k: _regression_table([c], [r]) for k, c, r in
                                                     zip(keys, cfgs, recs)}, "configs": cfgs}


def image_fit_2d(preset: str | Sizes = "cpu", *, train: bool = True, **overrides: Any) -> dict[str, Any]:
    """Section 3: {label: record (+ "images": target/recon snapshots)} for the raw and Fourier-feature MLPs,
    and ``"table"``: PSNR at each snapshot step."""
    import pandas as pd

    name, s = _sizes_of(preset, overrides)
    cfgs = _image_fit_configs(s, name)
    recs = load_or_train(cfgs, train)
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
    recs = load_or_train(cfgs, train)
    store = _store()
    out = []
    for cfg, rec in zip(cfgs, recs):
        rec = dict(rec)
        rec["images"] = store.load_npz(cfg, "images")
        out.append(rec)
    return out


#: reader's names of the up-sampling kinds
UPSAMPLE_NAMES: dict[str, str] = {"transposed": "transposed convolution", "nearest_conv5": "nearest + 5×5 conv."}


def upsampling(preset: str | Sizes = "cpu", *, train: bool = True, **overrides: Any) -> dict[str, Any]:
    """Section 4: ``"init"`` = :func:`upsampling_at_init`; ``"trained"`` = {kind: record} of MSE autoencoders
    with each up-sampling kind; ``"table"``: a reader-facing table per kind (checkerboard scores in dB at
    initialisation, after training and of the data, headed ``score ...``; PSNR; AI-domain RMSE; convergence)."""
    import pandas as pd

    name, s = _sizes_of(preset, overrides)
    init = upsampling_at_init(s)
    cfgs = _upsampling_configs(s, name)
    recs = _ae_records(cfgs, train)
    trained = {cfg.upsample: rec for cfg, rec in zip(cfgs, recs)}
    at_init = init["scores"].set_index("upsampling")["checkerboard_score"]
    rows = []
    for kind, rec in trained.items():
        m = rec["metrics"]
        rows.append({"up-sampling": UPSAMPLE_NAMES.get(kind, kind),
                     "score at init": float(at_init[kind]), "score trained": m["checkerboard_score"],
                     "score of the data": m["checkerboard_score_data"],
                     "PSNR (dB)": m["psnr"], "RMSE (AI)": m["rmse_ai"], "converged": converged_mark(m)})
    return {"init": init, "trained": trained, "table": pd.DataFrame(rows), "configs": cfgs}


def _ae_label(cfg: AutoencoderConfig) -> str:
    """``MSE``, ``MSE + FFT (α=0.5)``, ``MSE + focal frequency (α=0.5)``, ``MSE, spatial code (1024 numbers)``."""
    name = {"fft": "FFT", "focal": "focal frequency"}.get(cfg.spectral_loss, cfg.spectral_loss)
    label = "MSE" if cfg.fft_weight == 0 else f"MSE + {name} (α={cfg.fft_weight:g})"
    if cfg.code == "spatial":
        label += f", spatial code ({cfg.latent_dim} numbers)"
    return label


def _band_columns(metrics: dict[str, Any], prefix: str) -> dict[str, float]:
    return {band_label(k[len(prefix):]): v for k, v in metrics.items() if k.startswith(prefix)}


def converged_mark(metrics: dict[str, Any]) -> str:
    """How a table shows a run's convergence: ``"yes (2,400 steps)"``, ``"no: cap (6,000 steps)"``, or the
    number of steps of a fixed-length run (no rule)."""
    steps = metrics.get("steps_done")
    n = "?" if steps is None else f"{int(steps):,}"
    if metrics.get("converged") is None:
        return f"fixed length ({n} steps)"
    return f"yes ({n} steps)" if metrics["converged"] else f"no: stopped at the cap ({n} steps)"


def ae_table(runs: dict[str, dict[str, Any]], *, energy: bool = False) -> "pandas.DataFrame":  # noqa: F821
    """Reader-facing table of autoencoder runs: one row per run (its label), PSNR, the AI-domain RMSE, the
    relative error per band (or, with ``energy=True``, the energy ratio per band) and the convergence mark."""
    import pandas as pd

    rows = []
    for label, rec in runs.items():
        m = rec["metrics"]
        row = {"autoencoder": label, "PSNR (dB)": m["psnr"], "RMSE (AI)": m["rmse_ai"]}
        row.update(_band_columns(m, "band_energy_" if energy else "band_error_"))
        row["converged"] = converged_mark(m)
        rows.append(row)
    return pd.DataFrame(rows)


def autoencoders(preset: str | Sizes = "cpu", *, train: bool = True, **overrides: Any) -> dict[str, Any]:
    """Section 5: {label: record} for the MSE and MSE + FFT autoencoders (``extra["band_history"]``: per-band
    error over training), and ``"table"``: final metrics per loss (:func:`ae_table`)."""
    name, s = _sizes_of(preset, overrides)
    cfgs = _autoencoder_configs(s, name)
    recs = _ae_records(cfgs, train)
    runs = {_ae_label(cfg): rec for cfg, rec in zip(cfgs, recs)}
    return {"runs": runs, "table": ae_table(runs), "configs": cfgs}


def recovering(preset: str | Sizes = "cpu", *, train: bool = True, **overrides: Any) -> dict[str, Any]:
    """Section 6: the autoencoders of section 5 beside MSE + focal frequency loss (same dense code) and the MSE
    autoencoder with a spatial code of ``recover_code`` numbers: ``"runs"`` {label: record} in that order,
    ``"errors"`` / ``"energy"`` (:func:`ae_table` of per-band error / energy ratio), and ``"pca"``
    (:func:`pca_band_errors`, the linear bound for codes of ``pca_codes`` numbers)."""
    name, s = _sizes_of(preset, overrides)
    cfgs = [*_autoencoder_configs(s, name), *_recovering_configs(s, name)]
    cfgs = [c for i, c in enumerate(cfgs) if c not in cfgs[:i]]
    recs = _ae_records(cfgs, train)
    runs = {_ae_label(cfg): rec for cfg, rec in zip(cfgs, recs)}
    return {"runs": runs, "errors": ae_table(runs), "energy": ae_table(runs, energy=True),
            "pca": pca_band_errors(s), "configs": cfgs}


def pca_band_errors(preset: str | Sizes = "cpu", codes: Sequence[int] | None = None,
                    **overrides: Any) -> "pandas.DataFrame":  # noqa: F821
    """The best a *linear* code of ``k`` numbers can do, per band: principal component analysis of the training
    faces (``ae_train`` images, at most 4096, at ``ae_size`` pixels), each held-out face (``ae_eval``) projected
    on the first ``k`` components and back. One row per ``k`` in ``codes`` (default ``pca_codes``): ``numbers
    in the code``, ``PSNR (dB)``, then the relative error per band (:func:`band_label` names).

    PCA minimises the training MSE over all linear codes of ``k`` numbers (Eckart-Young), so it is the bound a
    linear encoder/decoder can reach; a trained autoencoder is nonlinear and may beat it, but an MSE autoencoder
    near this row is limited by its code size, not by its loss. Ref: Baldi & Hornik 1989 (a linear autoencoder
    trained with MSE spans the principal subspace).
    """
    import pandas as pd

    _, s = _sizes_of(preset, overrides)
    ks = [int(k) for k in (s.pca_codes if codes is None else codes)]
    train = _load("faces", "train", s.ae_size, min(s.ae_train, 4096), s.seed, s.preset).float()
    test = _load("faces", "test", s.ae_size, s.ae_eval, s.seed, s.preset).float()
    d = train[0].numel()
    if max(ks) > min(d, len(train)):
        raise ValueError(f"a code of {max(ks)} numbers needs at least as many training images and pixel values; "
                         f"have {len(train)} images of {d} values")
    x = train.reshape(len(train), -1)
    mean = x.mean(0)
    _, _, vt = torch.linalg.svd(x - mean, full_matrices=False)
    t = test.reshape(len(test), -1) - mean
    rows = []
    for k in ks:
        p = vt[:k]
        recon = ((t @ p.T) @ p + mean).reshape(test.shape)
        mse = (recon - test).square().mean(dim=(1, 2, 3)).clamp_min(1e-12)
        row = {"numbers in the code": k, "PSNR (dB)": float((-10 * torch.log10(mse)).mean())}
        row.update({band_label(b): v for b, v in relative_band_errors(test, recon, s.band_edges).items()})
        rows.append(row)
    return pd.DataFrame(rows)

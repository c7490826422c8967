# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Spectral bias, hands on
#
# Autoencoders return blurry images. Before the chapters that reproduce published remedies
# {cite:p}`bjork2022simpler,lin2023catch,feng2025frequency`, this chapter makes the problem visible with small
# runs that finish on a laptop CPU: what an image's spectrum is, why networks learn low frequencies first,
# how up-sampling layers leave fingerprints in the spectrum, what a plain autoencoder loses, and what brings
# the lost frequencies back. Every number and figure is computed by the `specvae` package: the cells that
# call it are shown, the plotting code is left out of the page (it is in the chapter's source,
# `notebooks/00_spectral_bias.py`). Rerun the chapter with one parameter changed (see the exercises at the
# end) to see how the picture moves.

# %% tags=["remove-cell"]
import importlib.util as _u, subprocess as _s, sys as _y; _u.find_spec("specvae") or _s.run([_y.executable, "-m", "pip", "install", "-q", "specvae[book] @ git+https://github.com/specvae/specvae"], check=True); import specvae.hosted; specvae.hosted.prepare(["mnist", "faces"], [])

# %% tags=["parameters"]
preset = "cpu"  # smoke | cpu | gpu | paper
seed = 0
data_root = None  # data folder (None: SPECVAE_DATA)
train = True  # False: only read stored results
# knobs to change (None: the preset's value)
frequencies = None  # section 2, e.g. [1, 2, 4, 8, 16]
fourier_features = None  # sections 2-3 (0: none)
fourier_scale = None  # section 2: σ of B
upsample = None  # sections 5-6: "transposed" or "nearest_conv5"
fft_weight = None  # section 5: α of Björk et al.'s eq. 3
spectral_loss = None  # section 5: "fft" or "focal"

# %% tags=["remove-input"]
import specvae.book

specvae.book.banner(preset=preset, chapter="00_spectral_bias")

# %% tags=["hide-input", "remove-stderr"]
import dataclasses
import math
import os
import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from matplotlib.lines import Line2D
from myst_nb import glue

from specvae import plots, spectral
from specvae.experiments import spectral_bias as sb
from specvae.experiments import spectral_bias_report as report

if data_root is not None:
    os.environ["SPECVAE_DATA"] = str(data_root)
plots.set_style()
knobs = dict(seed=seed, frequencies=frequencies, fourier_features=fourier_features,
             fourier_scale=fourier_scale, upsample=upsample, fft_weight=fft_weight,
             spectral_loss=spectral_loss)
sizes = sb.sizes(preset, **knobs)
timings = {}


TABLE_STYLE = [
    {"selector": "", "props": "border-collapse: collapse; font-size: 0.9em;"},
    {"selector": "caption", "props": "caption-side: top; text-align: left;"},
    {"selector": "th", "props": "border-bottom: 1px solid #888; vertical-align: bottom;"},
    {"selector": "th, td", "props": "padding: 0.2em 0.7em; text-align: right;"},
    {"selector": "th:first-child, td:first-child", "props": "text-align: left;"},
]


def figure(name, fig):
    """Store a figure for a numbered {glue:figure} caption (the cell shows nothing)."""
    glue(name, fig, display=False)
    plt.close(fig)


def table(df, caption, digits=3, formats=None):
    """A reader-facing table: no index, numbers rounded, a dash where missing, a caption."""
    style = df.style.hide(axis="index").set_table_styles(TABLE_STYLE)
    return style.format(precision=digits, na_rep="–", formatter=formats).set_caption(caption)


def band_names():
    return report.band_labels(sizes.band_edges)


# %% [markdown]
# ## 1. Reading a spectrum
#
# An image $x$ of $H \times W$ pixels is a sum of waves. The 2-D discrete Fourier transform (DFT) gives the
# amplitude and phase of each wave:
#
# $$F(u, v) = \sum_{m=0}^{H-1} \sum_{n=0}^{W-1} x[m, n]\, e^{-2\pi i \left(\frac{u m}{H} + \frac{v n}{W}\right)},$$
#
# where $(u/H, v/W)$ is the wave's frequency in **cycles per pixel**: 0 is the mean brightness, $1/2$ (a
# pattern that flips every pixel, like a checkerboard) is the highest frequency a pixel grid can hold along
# one axis (the Nyquist frequency). The corners of the spectrum, $(\pm\frac12, \pm\frac12)$, are diagonal
# waves of radial frequency $\sqrt{1/2} \approx 0.71$ cycles/pixel.
#
# All spectra in this chapter are **power in decibels**, $10 \log_{10}\!\left(|F|^2 + \varepsilon^2\right)$:
# +10 dB is ten times the power, +3 dB twice. The floor $\varepsilon^2 = HW q^2$, with
# $q = 1/(255\sqrt{12})$, is the power that rounding to 8 bits adds to every frequency
# ({doc}`metrics`); it keeps frequencies that an image does not contain at all at a finite level
# ({glue:text}`floor_32:.1f` dB at 32 × 32 pixels, {glue:text}`floor_64:.1f` dB at 64 × 64) instead of
# $-\infty$. A *frequency map* shows this power for every $(u, v)$ with the zero frequency in the centre;
# the further from the centre, the finer the detail. Averaging the map over rings of equal radius gives the
# *azimuthally integrated spectrum* {cite:p}`durall2020watch`, one number per radial frequency $f$:
#
# $$P(f) = \frac{1}{|R_f|} \sum_{(u, v) \in R_f} 10 \log_{10}\!\left(|F(u, v)|^2 + \varepsilon^2\right),$$
#
# where the ring $R_f$ holds the frequencies $(u, v)$ with $f \le \sqrt{(u/H)^2 + (v/W)^2} < f + 1/H$.
#
# The book computes both with `specvae.spectral` (`log_magnitude`, `radial_profile`, `frequency_axis`).

# %% tags=["remove-input"]
glue("floor_32", 20 * math.log10(spectral.noise_floor(32, 32)), display=False)
glue("floor_64", 20 * math.log10(spectral.noise_floor(64, 64)), display=False)

# %% tags=["remove-cell"]
t0 = time.perf_counter()

# %% tags=["remove-stderr"]
spectra = report.reading_spectra(sizes)

# %% tags=["remove-input"]
timings["1. reading a spectrum"] = time.perf_counter() - t0
names = ["faces", "MNIST", "Shapes"]
fig = plt.figure(figsize=(10, 6.2))
top, bottom = fig.subfigures(2, 1, height_ratios=[1, 1.25])
plots.image_grid([[spectra["examples"][n].mean(0, keepdim=True) for n in names]],
                 col_labels=names, fig=top, cell_size=1.6)
plots.frequency_maps(bottom.subplots(1, 3), [spectra["maps"][n] for n in names], titles=names,
                     units="db")
figure("fig_datasets", fig)

# %% [markdown]
# ```{glue:figure} fig_datasets
# :name: fig-datasets
#
# Top: one example of each data set, at 32 × 32 pixels (the faces are the CelebA-style crops described in
# {doc}`reproducibility`, here in gray). Bottom: the mean power spectrum of {glue:text}`n_images` images of
# each, in dB on one colour scale, zero frequency in the centre.
# ```
#
# All three maps are brightest in the centre: most of an image's energy sits in its low frequencies. The three
# differ in their lines. The **faces** show a bright cross along the axes: the DFT treats an image as
# periodic, so the jump from its bottom row to its top row (and from right to left) is a straight edge across
# the whole image, and a horizontal edge puts its power on the vertical frequency axis (with a Hann window,
# which removes those jumps, the cross disappears). **Shapes** shows a grid of *dark* lines at multiples of
# 1/8 cycles/pixel. Its squares have sides of 4 to 9 pixels, and a square of side $s$ has a spectrum that is
# exactly zero on every row and column at a multiple of $1/s$; on a 32-pixel grid those rows and columns
# exist for sides 4 and 8 (multiples of 1/4 and 1/8) and 6 (1/2). There such a square has only the noise
# floor, and an average of logarithms, which weighs a zero heavily, turns the rows and columns dark.
# **MNIST** strokes run in every direction and leave no lines.

# %% tags=["remove-input"]
glue("n_images", sizes.n_images, display=False)
fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
plots.radial_spectra(axes[0], {n: spectra["profiles"][n] for n in names},
                     title="azimuthal spectra (mean ± std over images)")
plots.radial_spectra(axes[1], {n: (*spectra["power"][n], None) for n in names}, logx=True,
                     ylabel="mean power (dB)", title="power law: mean power vs f (log axis)")
for i, n in enumerate(names):
    f, fitted = spectra["fits"][n]
    axes[1].plot(f, fitted, ls="--", color="k", lw=1, label="fit" if i == 0 else None)
axes[1].legend(frameon=False, fontsize="small")
for ax in axes:
    ax.axvline(0.5, color="0.6", lw=0.8, ls=":")
figure("fig_radial", fig)
slopes = spectra["slopes"].set_index("images")["slope"]
for n in slopes.index:
    glue(f"slope_{n.replace(', ', '_')}", float(slopes[n]), display=False)
glue("fit_lo", sizes.slope_range[0], display=False)
glue("fit_hi", sizes.slope_range[1], display=False)

# %% [markdown]
# ```{glue:figure} fig_radial
# :name: fig-radial
#
# Left: azimuthally integrated spectra of the three data sets in dB (line: mean over images; band: ± one
# standard deviation). Right: the ring mean of the *linear* power, in dB, against a logarithmic frequency axis;
# dashed: least-squares power laws $P \propto f^{\beta}$ over {glue:text}`fit_lo:.2f`–{glue:text}`fit_hi:.2f`
# cycles/pixel. The dotted line marks the Nyquist frequency 1/2.
# ```
#
# Two features of these curves come from the square grid, not from the images. The curves go on beyond 1/2
# cycles/pixel: up to 1/2 a ring is a full circle, beyond it only the four corner arcs of the ring lie inside
# the spectrum, so those points average diagonal frequencies only (up to 0.71 at the corners). And each curve
# has a **kink at 1/2**: when the rings leave the axes, they lose the frequencies near the horizontal and
# vertical axes, where these images hold more power than along the diagonals (the cross of the faces and the
# lines of Shapes in {numref}`fig-datasets` are part of it), so the ring mean drops.

# %% tags=["remove-input"]
sets = spectra["slopes"].set_index("images").loc[names].reset_index()
sets["pixels"] = sets["image_size"].map("{0} × {0}".format)
table(sets[["images", "pixels", "slope"]].rename(columns={"slope": "slope β"}),
      "Power-law exponents β of the three data sets (fits of the right panel).", digits=2)

# %% [markdown]
# On log-log axes the mean power falls close to a straight line, $P(f) \propto f^{\beta}$: a power law. All
# three data sets give similar exponents, faces {glue:text}`slope_faces:.2f`, MNIST
# {glue:text}`slope_MNIST:.2f` and Shapes {glue:text}`slope_Shapes:.2f`. Photographs of natural scenes are
# flatter, $\beta \approx -2$ (an amplitude spectrum falling as $1/f$)
# {cite:p}`field1987relations,vanderschaaf1996modelling`: their edges come at every scale and in every
# direction. Isolated objects with sharp edges on a plain background, which is what all three of our data sets
# are, give about $-3$: a straight edge puts power $\propto f^{-2}$ on one line through the centre of the map,
# and the ring average divides it over a ring of $\propto f$ frequencies; a disc's boundary gives the same
# $f^{-3}$. Whatever the exact value, the message for this book is the decay itself: the high frequencies hold
# orders of magnitude less energy than the low ones, so any loss that sums errors over pixels (MSE) pays
# little attention to them.

# %% tags=["remove-input"]
kinds = [f"faces, {k}" for k in report.DEGRADATIONS]
labels = list(report.DEGRADATIONS)
fig = plt.figure(figsize=(12.5, 6.4))
top, bottom = fig.subfigures(2, 1, height_ratios=[1, 1.1])
plots.image_grid([[spectra["examples"][n] for n in kinds]], col_labels=labels, fig=top,
                 cell_size=1.8)
plots.frequency_maps(bottom.subplots(1, len(kinds)), [spectra["maps"][n] for n in kinds],
                     titles=labels, units="db")
figure("fig_degraded_maps", fig)
fig, ax = plt.subplots(figsize=(7, 4))
pal = plots.palette(5)
deg_colors = dict(zip(labels, ["k", pal[0], pal[2], pal[1], pal[4]]))
plots.radial_spectra(ax, {lab: spectra["profiles"][n] for n, lab in zip(kinds, labels)},
                     title="faces and degraded copies", colors=deg_colors)
ax.axvline(0.5, color="0.6", lw=0.8, ls=":")
figure("fig_degraded_profiles", fig)
glue("blur_sigma", sizes.blur_sigma, display=False)
glue("jpeg_quality", sizes.jpeg_quality, display=False)
glue("noise_std", sizes.noise_std, display=False)
glue("image_size", sizes.image_size, display=False)

# %% [markdown]
# ```{glue:figure} fig_degraded_maps
# :name: fig-degraded-maps
#
# A face at {glue:text}`image_size` × {glue:text}`image_size` pixels and four degraded copies (top), and the
# mean power spectra of {glue:text}`n_images` faces treated the same way (bottom, dB, one colour scale).
# ```
#
# ```{glue:figure} fig_degraded_profiles
# :name: fig-degraded-profiles
#
# Azimuthal spectra (dB, mean ± std over images) of the faces and of their degraded copies.
# ```
#
# Each degradation leaves its own signature. **Blur** (Gaussian, σ = {glue:text}`blur_sigma` px) multiplies
# the spectrum by a Gaussian: the high-frequency power drops steeply. **Down-sampling** by 2 discards everything
# above 1/4 cycles/pixel; bicubic up-sampling back to the original size refills that range only with weak
# mirror images of the lower frequencies, so the outer part of the map darkens. **JPEG** at quality
# {glue:text}`jpeg_quality` stores each 8×8 block as a few coarsely quantised cosine waves: most high-frequency
# coefficients become zero, so high-frequency power drops, while the block grid, which repeats every 8
# pixels, can only put its own structure at multiples of 1/8 cycles/pixel. **Noise** (white, standard
# deviation {glue:text}`noise_std`) has equal power at every frequency: it *raises* the high-frequency end to a
# flat floor. A blurry autoencoder output looks like the blurred curve; an output with up-sampling artefacts
# adds peaks.

# %% tags=["remove-input"]
deg = spectra["slopes"].set_index("images").loc[kinds, ["slope"]].reset_index()
deg["images"] = labels
psnr_deg = spectra["errors"].set_index("degradation")["PSNR (dB)"]
deg["PSNR (dB)"] = deg["images"].map(psnr_deg)
table(deg.rename(columns={"images": "faces", "slope": "slope β"}),
      "Power-law exponent and PSNR against the originals of each degraded copy.", digits=2)

# %% [markdown]
# ## 2. Spectral bias in regression
#
# {cite:t}`rahaman2019spectral` fit a function that is a sum of sinusoids of equal amplitude,
#
# $$y(x) = \sum_{k \in K} \sin(2\pi k x + \varphi_k), \qquad x \in [0, 1),$$
#
# with a ReLU multi-layer perceptron, and watch the spectrum of the network's function during training. With
# $\hat F_k$ and $F_k$ the DFT coefficients at frequency $k$ of the prediction and of the target (on the
# sampling grid), the normalised error $|\hat F_k - F_k| / |F_k|$ is 1 when the network has learned nothing of
# frequency $k$ and 0 when it has learned it exactly. The same network with *Fourier features*
# {cite:p}`tancik2020fourier` receives $\gamma(x) = [\cos(2\pi B x), \sin(2\pi B x)]$, with $B$ drawn from
# $\mathcal N(0, \sigma^2)$, instead of $x$. Both train with Adam {cite:p}`kingma2015adam` on all points at
# once, for a fixed number of steps: the experiment measures *when* each frequency is learned.

# %% tags=["remove-cell"]
t0 = time.perf_counter()

# %% tags=["remove-stderr"]
reg = report.regression_1d(sizes, train=train)

# %% tags=["remove-input"]
timings["2. 1-D regression"] = time.perf_counter() - t0
runs = reg["runs"]
errs = [rec["arrays"]["errors"] for rec in runs.values()]
lo = 1e-3  # three decades: the raw run's errors (0.02-1) keep their contrast
hi = max(float(e.max()) for e in errs)
fig, axes = plt.subplots(1, len(runs), figsize=(6 * len(runs), 3.6), squeeze=False)
for ax, (label, rec) in zip(axes[0], runs.items()):
    a = rec["arrays"]
    plots.error_heatmap(ax, a["errors"], x=a["eval_steps"].tolist(), y=list(sizes.frequencies),
                        xlabel="training step", ylabel="frequency k (cycles per unit)",
                        log=True, vmin=lo, vmax=hi, title=label, colorbar=False)
cb = fig.colorbar(axes[0, -1].images[-1], ax=list(axes[0]))
cb.set_label("normalised error |F̂−F|/|F| (log scale)")
figure("fig_regression_errors", fig)
fig, ax = plt.subplots(figsize=(10, 2.8))
a = runs["raw coordinates"]["arrays"]
ax.plot(a["x"], a["y"], color="k", lw=1, label="target")
for label, rec in runs.items():
    ax.plot(rec["arrays"]["x"], rec["arrays"]["pred"], lw=1.2, label=f"MLP, {label}")
ax.set_xlabel("x")
ax.set_ylabel("y")
ax.legend(frameon=False, fontsize="small", ncol=3)
figure("fig_regression_fit", fig)
t2 = reg["table"]
raw = t2[t2["input"] == "raw coordinates"].set_index("frequency")
glue("reg_steps", sizes.reg_steps, display=False)
glue("raw_err_low", float(raw["final error"].iloc[0]), display=False)
glue("raw_err_high", float(raw["final error"].iloc[-1]), display=False)
glue("k_low", float(raw.index[0]), display=False)
glue("k_high", float(raw.index[-1]), display=False)
glue("err_lo", lo, display=False)
if len(runs) > 1:
    ff = t2[t2["input"] != "raw coordinates"]
    glue("ff_slowest", float(ff["steps to error < 0.1"].max()), display=False)
    glue("ff_err_max", float(ff["final error"].max()), display=False)

# %% [markdown]
# ```{glue:figure} fig_regression_errors
# :name: fig-regression-errors
#
# Normalised error of each target frequency (rows) over training (columns), on one logarithmic colour scale
# from {glue:text}`err_lo:.0e` (black; smaller errors are black too) to the largest error (white). Left: the
# MLP sees $x$; right: it sees Fourier features.
# ```
#
# ```{glue:figure} fig_regression_fit
# :name: fig-regression-fit
#
# The target and both networks' functions after {glue:text}`reg_steps` steps.
# ```
#
# Read the left heat map from the bottom up: the lowest frequency turns dark (learned) first, and each higher
# frequency later. After {glue:text}`reg_steps` steps the error at $k =$ {glue:text}`k_low:g` is
# {glue:text}`raw_err_low:.3f` while at $k =$ {glue:text}`k_high:g` it is still {glue:text}`raw_err_high:.3f`,
# although all components have the same amplitude. This is the *spectral bias*: gradient descent on a ReLU
# network fits smooth, low-frequency functions first. With Fourier features (right) every frequency falls
# below 0.1 within {glue:text}`ff_slowest:g` steps and keeps falling, to at most {glue:text}`ff_err_max:.0e`:
# the features already contain waves of many frequencies, so the network only has to combine them. (On a
# linear colour scale the right map would look uniformly black after the first steps.)

# %% tags=["remove-input"]
wide = t2.pivot(index="frequency", columns="input",
                values=["steps to error < 0.1", "final error"])
wide.columns = [f"{inp}: {what}" for what, inp in wide.columns]
wide = wide[sorted(wide.columns, key=lambda c: (not c.startswith("raw"), c))].reset_index()
wide = wide.rename(columns={"frequency": "k"})
table(wide,
      "First evaluated step at which each frequency's error fell below 0.1 (a dash: never "
      "within the run) and the error at the end of the run.",
      formats={c: "{:.2g}" if c.endswith("error") else "{:.0f}" if "steps" in c else "{:g}"
               for c in wide.columns})

# %% [markdown]
# ## 3. The same in 2-D: fitting one image
#
# Now the MLP maps a pixel position $(m/H, n/W) \in [0, 1)^2$ to its gray value, trained with MSE on every pixel
# of one face. We save the network's image at a few steps and compare its azimuthal spectrum with the target's.

# %% tags=["remove-cell"]
t0 = time.perf_counter()

# %% tags=["remove-stderr"]
fit2d = report.image_fit_2d(sizes, train=train)

# %% tags=["remove-input"]
timings["3. image fit"] = time.perf_counter() - t0
runs3 = fit2d["runs"]
first = next(iter(runs3.values()))
steps3 = first["arrays"]["snapshot_steps"].tolist()
target = first["images"]["target"]
rows = [np.concatenate([rec["images"]["recon"], target]) for rec in runs3.values()]
fig = plots.image_grid(rows, row_labels=list(runs3), cell_size=1.7,
                       col_labels=[f"step {t}" for t in steps3] + ["target"])
figure("fig_fit_images", fig)
fig, axes = plt.subplots(1, len(runs3), figsize=(6 * len(runs3), 3.8), squeeze=False,
                         sharey=True)
for ax, (label, rec) in zip(axes[0], runs3.items()):
    a = rec["arrays"]
    profs = {f"step {t}": (a["freqs"], p, None) for t, p in zip(steps3, a["profiles"])}
    profs["target"] = (a["freqs"], a["profile_target"], None)
    plots.radial_spectra(ax, profs, title=label)
figure("fig_fit_spectra", fig)
glue("fit_steps", steps3[-1], display=False)
glue("psnr_raw", float(runs3["raw coordinates"]["metrics"]["final_psnr"]), display=False)
if len(runs3) > 1:
    glue("psnr_ff", float(list(runs3.values())[1]["metrics"]["final_psnr"]), display=False)

# %% [markdown]
# ```{glue:figure} fig_fit_images
# :name: fig-fit-images
#
# The MLP's image of one face at several training steps, from raw pixel coordinates (top) and from Fourier
# features (bottom).
# ```
#
# ```{glue:figure} fig_fit_spectra
# :name: fig-fit-spectra
#
# Azimuthal spectra (dB) of the images of {numref}`fig-fit-images` and of the target.
# ```
#
# The raw-coordinate MLP paints a smooth blob first and adds detail slowly: its spectrum (left) matches the
# target at low frequencies early on and stays far below it at high frequencies; after {glue:text}`fit_steps`
# steps it reaches {glue:text}`psnr_raw:.1f` dB PSNR. With Fourier features the high-frequency end of the
# spectrum rises to the target's within the same steps ({glue:text}`psnr_ff:.1f` dB). A network that is asked
# to reconstruct images, such as an autoencoder's decoder, inherits this bias.

# %% tags=["remove-input"]
t3 = fit2d["table"].pivot(index="step", columns="input", values="PSNR (dB)").reset_index()
t3.columns.name = None
table(t3, "PSNR (dB) of the MLP's image at each saved step.", digits=1)

# %% [markdown]
# ## 4. Up-sampling leaves fingerprints
#
# Decoders grow an image from a small feature map with ×2 up-sampling layers. The classic choice, a *transposed
# convolution* with a 4×4 kernel and stride 2, lets neighbouring output pixels receive different numbers of
# kernel taps, which prints a checkerboard into the output {cite:p}`odena2016deconvolution`; in the spectrum a
# pattern that repeats every 2 pixels is a peak at 1/2 cycles/pixel {cite:p}`durall2020watch`. Replacing the
# last layer with *nearest-neighbour up-sampling + a 5×5 convolution* ("N.1.5") removes the peaks
# {cite:p}`chandrasegaran2021closer`; {cite:t}`bjork2022simpler` adopt it. We first look at decoders that were
# never trained: 3 up-sampling layers, 4×4 → 32×32, fed random feature maps. The *checkerboard score* is the
# mean power at the three Nyquist frequencies $(\frac12, 0), (0, \frac12), (\frac12, \frac12)$ minus the
# median power of the map, in dB: large means "peaks".

# %% tags=["remove-cell"]
t0 = time.perf_counter()

# %% tags=["remove-stderr"]
ups = report.upsampling(sizes, train=train)

# %% tags=["remove-input"]
timings["4. up-sampling"] = time.perf_counter() - t0
init = ups["init"]
kinds4 = list(init["examples"])
names4 = [report.UPSAMPLE_NAMES[k] for k in kinds4]
fig = plt.figure(figsize=(12, 6.6))
top, bottom = fig.subfigures(2, 1, height_ratios=[1, 1])
left, right = top.subfigures(1, 2, width_ratios=[1, 1.5])
plots.image_grid([[init["examples"][k] for k in kinds4]], col_labels=names4, fig=left,
                 cell_size=1.9)
plots.frequency_maps(right.subplots(1, 2), [init["maps"][k] for k in kinds4], titles=names4,
                     units="db")
axes = bottom.subplots(1, 2)
plots.radial_spectra(axes[0], {n: (*init["slices"][k], None) for n, k in zip(names4, kinds4)},
                     xlabel="$f_x$ (cycles/pixel), along $f_y = 0$",
                     title="one row of the maps: the horizontal axis")
plots.radial_spectra(axes[1], {n: init["profiles"][k] for n, k in zip(names4, kinds4)},
                     title="ring averages (azimuthal spectra)")
for ax in axes:
    ax.axvline(0.5, color="0.6", lw=0.8, ls=":")
figure("fig_init", fig)
scores = init["scores"].set_index("upsampling")
glue("cb_init_transposed", float(scores.loc["transposed", "checkerboard_score"]),
     display=False)
glue("cb_init_nearest", float(scores.loc["nearest_conv5", "checkerboard_score"]),
     display=False)
glue("n_init", sizes.n_init, display=False)
for k in kinds4:
    f, v = init["slices"][k]
    glue(f"peak_half_{k}", float(v[-1] - np.median(v[1:])), display=False)
    glue(f"peak_quarter_{k}", float(v[len(v) // 2] - np.median(v[1:])), display=False)

# %% [markdown]
# ```{glue:figure} fig_init
# :name: fig-init
#
# Untrained decoders. Top: one output of each kind (rescaled to [0, 1]) and the mean power spectrum of
# {glue:text}`n_init` decoders' outputs (dB, one colour scale). Bottom left: the row $f_y = 0$ of the two maps,
# frequency by frequency; bottom right: the ring averages of the same spectra.
# ```
#
# Untrained, the transposed-convolution decoder prints a regular grid, and its map has bright dots on a grid
# of frequencies. Along the horizontal axis (bottom left) they are peaks at 1/2 cycles/pixel, the Nyquist
# frequency, {glue:text}`peak_half_transposed:.0f` dB above the median of that row, and at 1/4,
# {glue:text}`peak_quarter_transposed:.0f` dB above it: patterns that repeat every 2 and every 4 pixels, left
# by the last two up-sampling layers. Nearest + convolution has no peak there; its ×2 nearest-neighbour copy
# has a zero of its frequency response exactly at 1/2 cycles/pixel, where its row falls to
# {glue:text}`peak_half_nearest_conv5:.0f` dB relative to the median. The ring averages (bottom right) do
# *not* show the peaks: a ring through a bright dot also holds many dark frequencies, and the average hides
# the dot; the transposed decoder's spectrum only looks flat. That is why this chapter measures the artefact
# on the map: the checkerboard score is {glue:text}`cb_init_transposed:.1f` dB for the transposed
# convolutions and {glue:text}`cb_init_nearest:.1f` dB for nearest + convolution. Training must undo these
# peaks. Below, both decoders are part of the same small autoencoder (a dense code of
# {glue:text}`ae_latent` numbers), trained with MSE on {glue:text}`ae_size` × {glue:text}`ae_size` faces.

# %% tags=["remove-input"]
glue("ae_latent", sizes.ae_latent, display=False)
glue("ae_size", sizes.ae_size, display=False)
trained = ups["trained"]
data_imgs = next(iter(trained.values()))["images"]["data"]
fig = plots.image_grid([data_imgs, *[rec["images"]["recon"] for rec in trained.values()]],
                       row_labels=["data", "transposed", "nearest"], cell_size=1.25)
figure("fig_ups_images", fig)
rec0 = next(iter(trained.values()))
fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
plots.frequency_maps(axes, [rec0["arrays"]["map_data"], *[r["arrays"]["map_recon"]
                                                          for r in trained.values()]],
                     titles=["data", *[report.UPSAMPLE_NAMES[k] for k in trained]], units="db")
figure("fig_ups_maps", fig)
fig, ax = plt.subplots(figsize=(7, 4))
a0 = rec0["arrays"]
profs = {"data": (a0["freqs"], a0["profile_data_mean"], a0["profile_data_std"])}
for k, rec in trained.items():
    a = rec["arrays"]
    name = report.UPSAMPLE_NAMES[k]
    profs[name] = (a["freqs"], a["profile_recon_mean"], a["profile_recon_std"])
plots.radial_spectra(ax, profs, title="after training (MSE)")
ax.axvline(0.5, color="0.6", lw=0.8, ls=":")
figure("fig_ups_profiles", fig)
m_t = trained["transposed"]["metrics"]
m_n = trained["nearest_conv5"]["metrics"]
glue("cb_trained_transposed", m_t["checkerboard_score"], display=False)
glue("cb_trained_nearest", m_n["checkerboard_score"], display=False)
glue("cb_data", m_t["checkerboard_score_data"], display=False)
glue("rmse_ai_transposed", m_t["rmse_ai"], display=False)
glue("rmse_ai_nearest", m_n["rmse_ai"], display=False)
glue("psnr_transposed", m_t["psnr"], display=False)
glue("psnr_nearest", m_n["psnr"], display=False)
maps4 = {"data": rec0["arrays"]["map_data"],
         "transposed": trained["transposed"]["arrays"]["map_recon"],
         "nearest": trained["nearest_conv5"]["arrays"]["map_recon"]}
for key, m in maps4.items():
    nyq, med = report.nyquist_and_median(m)
    glue(f"nyq_{key}", nyq, display=False)
    glue(f"med_{key}", med, display=False)

# %% [markdown]
# ```{glue:figure} fig_ups_images
# :name: fig-ups-images
#
# Held-out faces (top) and their reconstructions by the two trained autoencoders (middle: transposed
# convolutions, bottom: nearest + 5×5 convolution).
# ```
#
# ```{glue:figure} fig_ups_maps
# :name: fig-ups-maps
#
# Mean power spectra (dB, one colour scale) of the held-out faces and of the two autoencoders'
# reconstructions of them.
# ```
#
# ```{glue:figure} fig_ups_profiles
# :name: fig-ups-profiles
#
# Azimuthal spectra (dB, mean ± std over images) of the same images.
# ```

# %% tags=["remove-input"]
table(ups["table"], "The two MSE autoencoders: checkerboard score (dB) at initialisation, "
      "after training and of the data itself; PSNR and AI-domain RMSE (natural log of power) "
      "of the reconstructions; whether the run converged.", digits=2)

# %% [markdown]
# After training both autoencoders blur: beyond the lowest frequencies their azimuthal spectra fall below the
# data's, and their frequency maps darken away from the centre. The nearest model learns more slowly: with the
# same learning-rate schedule it reached the convergence rule at {glue:text}`psnr_nearest:.1f` dB PSNR, the
# transposed one at {glue:text}`psnr_transposed:.1f` dB. Both checkerboard scores are high,
# {glue:text}`cb_trained_transposed:.1f` dB (transposed) and {glue:text}`cb_trained_nearest:.1f` dB (nearest),
# against {glue:text}`cb_data:.1f` dB for the data, but the score is measured against the median of the map,
# and blur lowers that median: it is {glue:text}`med_transposed:.1f` dB and {glue:text}`med_nearest:.1f` dB
# for the reconstructions, {glue:text}`med_data:.1f` dB for the data. At the Nyquist frequencies themselves
# the transposed model keeps {glue:text}`nyq_transposed:.1f` dB, as much as the faces have
# ({glue:text}`nyq_data:.1f` dB) although it has lost power at almost every other frequency, while the nearest
# model has {glue:text}`nyq_nearest:.1f` dB there. So the score after training mixes two things, the artefact
# and the blur, and the map and the absolute levels are needed to tell them apart. The AI-domain RMSE, which
# compares the two ring averages, is {glue:text}`rmse_ai_transposed:.2f` (transposed) and
# {glue:text}`rmse_ai_nearest:.2f` (nearest); a smaller value means a ring average closer to the data's,
# whatever the content. Two different problems meet here: up-sampling *adds* wrong high frequencies,
# spectral bias and the bottleneck *remove* the right ones.

# %% [markdown]
# ## 5. Autoencoders blur
#
# The same autoencoder, trained once with MSE alone and once with Björk et al.'s combination
# {cite:p}`bjork2022simpler` (their eq. 3, with the MSE as the spatial loss $\mathcal L_s$):
#
# $$\begin{aligned}
# \mathcal L &= (1 - \alpha)\, \mathcal L_s(x, \hat x) + \alpha\, \mathcal L_f(x, \hat x), \\
# \mathcal L_f &= \frac1n \sum \left(\Re\,\mathcal F\{x\} - \Re\,\mathcal F\{\hat x\}\right)^2
# + \frac1n \sum \left(\Im\,\mathcal F\{x\} - \Im\,\mathcal F\{\hat x\}\right)^2 .
# \end{aligned}$$
#
# We track the *relative error per frequency band* on held-out faces during training:
# $\sum_{\text{band}} |F(x) - F(\hat x)|^2 / \sum_{\text{band}} |F(x)|^2$, where 0 is perfect and 1 means the band
# is as wrong as if it were empty (`specvae.spectral.band_errors`). The bands are rings of radial frequency,
# the last one the corners beyond 1/2; together they hold the whole MSE (Parseval). Every autoencoder of
# sections 4-6 trains with Adam {cite:p}`kingma2015adam` at a learning rate of {glue:text}`ae_lr`, halved every
# {glue:text}`ae_decay_every` steps, until its smoothed training loss changes by less than
# {glue:text}`ae_tol_pct:.0f` % (either way) over the last 20 % of its steps (at most {glue:text}`ae_cap` steps); the tables
# say whether each run got there.

# %% tags=["remove-input"]
glue("ae_lr", sizes.ae_lr, display=False)
glue("ae_decay_every", sizes.ae_lr_decay_every, display=False)
glue("ae_tol_pct", 100 * sizes.ae_converge_tol, display=False)
glue("ae_cap", f"{sizes.ae_steps:,}", display=False)

# %% tags=["remove-cell"]
t0 = time.perf_counter()

# %% tags=["remove-stderr"]
aes = report.autoencoders(sizes, train=train)

# %% tags=["remove-input"]
timings["5. autoencoders"] = time.perf_counter() - t0
runs5 = aes["runs"]
labels5 = list(runs5)
bands = band_names()
cols = plots.palette(len(bands))
fig, axes = plt.subplots(1, 2, figsize=(13, 4))
for (label, rec), style in zip(runs5.items(), ["-", "--"]):
    hist = rec["extra"]["band_history"]
    for key, name, c in zip([k for k in hist if k != "step"], bands, cols):
        axes[0].plot(hist["step"], hist[key], ls=style, color=c, lw=1.4)
    h = rec["history"]
    axes[1].plot(h["step"], h["mse"], ls=style, color="k", lw=1.2)
axes[0].set(xlabel="training step", ylabel="relative band error",
            title="per-band error on held-out faces")
axes[1].set(xlabel="training step", ylabel="training MSE", yscale="log", title="training MSE")
handles = [Line2D([], [], color=c, lw=2, label=f"band {n}") for n, c in zip(bands, cols)]
handles += [Line2D([], [], color="0.3", ls=s, label=lab)
            for lab, s in zip(labels5, ["-", "--"])]
fig.legend(handles=handles, loc="outside right center", frameon=False, fontsize="small")
figure("fig_ae_curves", fig)
fig = plots.image_grid([runs5[labels5[0]]["images"]["data"],
                        *[rec["images"]["recon"] for rec in runs5.values()]],
                       row_labels=["data", *labels5], cell_size=1.25)
figure("fig_ae_images", fig)
t5 = aes["table"]
b5 = t5.set_index("autoencoder")[bands]
glue("band_low_mse", float(b5.iloc[0, 0]), display=False)
glue("band_rest_min", float(b5.iloc[0, 1:].min()), display=False)
glue("band_rest_max", float(b5.iloc[0, 1:].max()), display=False)
glue("band_rest_min_other", float(b5.iloc[1, 1:].min()), display=False)
glue("band_rest_max_other", float(b5.iloc[1, 1:].max()), display=False)
glue("psnr_mse", float(t5["PSNR (dB)"].iloc[0]), display=False)
glue("psnr_other", float(t5["PSNR (dB)"].iloc[1]), display=False)
glue("label_other", labels5[1], display=False)
glue("steps_mse", f"{runs5[labels5[0]]['metrics']['steps_done']:,}", display=False)

# %% [markdown]
# ```{glue:figure} fig_ae_curves
# :name: fig-ae-curves
#
# Left: relative error of each frequency band on held-out faces during training (colours: bands; solid: MSE,
# dashed: {glue:text}`label_other`). Right: the training MSE of both runs.
# ```
#
# ```{glue:figure} fig_ae_images
# :name: fig-ae-images
#
# Held-out faces and their reconstructions by the two autoencoders.
# ```

# %% tags=["remove-input"]
table(t5.drop(columns=["RMSE (AI)"]), "Final PSNR and relative error per band "
      "(cycles/pixel) of the two autoencoders on held-out faces.")

# %% [markdown]
# The lowest band (below 1/8 cycles/pixel) is learned within the first few hundred steps and ends at a relative
# error of {glue:text}`band_low_mse:.3f` with MSE, while every band above it keeps between
# {glue:text}`band_rest_min:.2f` and {glue:text}`band_rest_max:.2f` of its error after
# {glue:text}`steps_mse` steps and improves only slowly: the autoencoder reproduces the coarse face and gives up
# much of the fine detail, which is what "blurry" means in the frequency domain. With
# {glue:text}`label_other` the same bands end between {glue:text}`band_rest_min_other:.2f` and
# {glue:text}`band_rest_max_other:.2f`, and the PSNR at {glue:text}`psnr_other:.2f` dB (MSE alone:
# {glue:text}`psnr_mse:.2f` dB): the two runs are almost the same.
#
# Why so little difference? By Parseval's theorem the FFT loss $\mathcal L_f$ of the full, unnormalised 2-D FFT
# equals $H W$ times the pixel MSE exactly (`specvae.losses.fft` tests this), so eq. 3 with an MSE spatial loss
# is the MSE multiplied by a constant, and Adam's updates hardly depend on the scale of the loss (only through
# its small ε). The FFT loss changes training only where the spatial loss is *not* an MSE: Björk et al. add it
# to the binary cross-entropy of a variational autoencoder {cite:p}`kingma2014auto`, and chapter 1 reproduces
# that. To change *which* frequencies are learned, a loss must weight them unequally. The next section tries
# one.

# %% [markdown]
# ## 6. Getting the high frequencies back
#
# The *focal frequency loss* {cite:p}`jiang2021focal` weights every frequency by its own current error,
# $\mathcal L_{\text{FFL}} = \frac1n \sum_{u,v} w(u,v)\, |F_x(u,v) - F_{\hat x}(u,v)|^2$ with
# $w = |F_x - F_{\hat x}|^{\alpha}$ scaled to a maximum of 1, so the frequencies the network gets most wrong
# receive the largest gradients. We add it to the MSE with eq. 3 (α = {glue:text}`focal_weight`). A second
# question is how much the code can carry at all. *Principal component analysis* (PCA) with $k$ components
# is the best *linear* code of $k$ numbers for the MSE, and a linear autoencoder trained with MSE finds it
# {cite:p}`baldi1989neural`; a nonlinear autoencoder may do better, but PCA is a yardstick for what a code of
# that size holds, and we compute it per band for codes of several sizes. The last autoencoder keeps the encoder and decoder of the others but replaces
# the dense code of {glue:text}`ae_latent` numbers by a *spatial* code: a 4 × 4 grid of
# {glue:text}`recover_channels` channels, {glue:text}`recover_code` numbers, each describing one region of the
# image, as the codes of VQ-VAE and VQGAN do {cite:p}`vandenoord2017neural,esser2021taming`.

# %% tags=["remove-input"]
glue("focal_weight", sizes.focal_weight, display=False)
glue("recover_code", sizes.recover_code, display=False)
glue("recover_channels", sizes.recover_code // (sizes.ae_size // 8) ** 2, display=False)

# %% tags=["remove-cell"]
t0 = time.perf_counter()

# %% tags=["remove-stderr"]
rec6 = report.recovering(sizes, train=train)

# %% tags=["remove-input"]
timings["6. recovering"] = time.perf_counter() - t0
runs6 = rec6["runs"]
labels6 = list(runs6)
errors6 = rec6["errors"].set_index("autoencoder")[bands]
energy6 = rec6["energy"].set_index("autoencoder")[bands]
pca = rec6["pca"].set_index("numbers in the code")
pal6 = plots.palette(5)
cols6 = [pal6[0], pal6[1], pal6[2], pal6[4]]  # spatial code in pink, apart from FFT's orange
marks6 = ["o", "s", "^", "D"]
xs = np.arange(len(bands))
fig, axes = plt.subplots(1, 2, figsize=(12, 5.2))
for label, c, mk in zip(labels6, cols6, marks6):
    axes[0].plot(xs, errors6.loc[label], marker=mk, color=c, lw=1.6, label=label)
    axes[1].plot(xs, energy6.loc[label], marker=mk, color=c, lw=1.6, label=label)
greys = np.linspace(0.25, 0.7, len(pca))
for (k, row), g in zip(pca.iterrows(), greys):
    axes[0].plot(xs, row[bands], ls="--", color=str(g), lw=1.2, label=f"PCA, {k} numbers")
axes[1].axhline(1.0, color="k", lw=0.8, ls=":")
axes[0].set(ylabel="relative band error", title="error per band (0 = exact)")
axes[1].set(ylabel="energy / data energy", title="energy per band (1 = as much as the data)")
for ax in axes:
    ax.set_xticks(xs, bands)
    ax.set_xlabel("frequency band (cycles/pixel)")
handles, labs = axes[0].get_legend_handles_labels()
fig.legend(handles, labs, loc="outside lower center", frameon=False, fontsize="small", ncol=3)
figure("fig_recover_bands", fig)
short = {lab: lab.replace(" frequency", "").replace("MSE, ", "").split(" (")[0]
         for lab in labels6}
fig = plots.image_grid([runs6[labels6[0]]["images"]["data"],
                        *[rec["images"]["recon"] for rec in runs6.values()]],
                       row_labels=["data", *short.values()], cell_size=1.25)
figure("fig_recover_images", fig)
fig, ax = plt.subplots(figsize=(7.5, 4))
a0 = runs6[labels6[0]]["arrays"]
profs = {"data": (a0["freqs"], a0["profile_data_mean"], None)}
for label, rec in runs6.items():
    profs[label] = (rec["arrays"]["freqs"], rec["arrays"]["profile_recon_mean"], None)
plots.radial_spectra(ax, profs, title="mean azimuthal spectra",
                     colors={"data": "k", **dict(zip(labels6, cols6))})
ax.legend(frameon=False, fontsize="x-small")
figure("fig_recover_profiles", fig)
mse_lab, ffl_lab, sp_lab = labels6[0], labels6[-2], labels6[-1]
hi_bands = bands[1:]
for key, lab in (("mse", mse_lab), ("ffl", ffl_lab), ("sp", sp_lab)):
    glue(f"r6_{key}_hi_min", float(errors6.loc[lab, hi_bands].min()), display=False)
    glue(f"r6_{key}_hi_max", float(errors6.loc[lab, hi_bands].max()), display=False)
    glue(f"r6_{key}_psnr", float(runs6[lab]["metrics"]["psnr"]), display=False)
    glue(f"r6_{key}_e_mid", float(energy6.loc[lab, bands[1]]), display=False)
    glue(f"r6_{key}_e_top", float(energy6.loc[lab, bands[-2]]), display=False)
glue("r6_ffl_label", ffl_lab, display=False)
im = runs6[mse_lab]["images"]
per_bin = report.per_bin_band_errors(*(torch.from_numpy(im[k]) for k in ("data", "recon")),
                                 sizes.band_edges)
glue("abs_ratio_low_top", per_bin[bands[0]] / per_bin[bands[-2]], display=False)
glue("abs_ratio_mid_top", per_bin[bands[1]] / per_bin[bands[-2]], display=False)
glue("r6_sp_label", sp_lab, display=False)
k_small = int(pca.index[0])
glue("pca_small", k_small, display=False)
glue("pca_small_psnr", float(pca.loc[k_small, "PSNR (dB)"]), display=False)
glue("pca_small_hi_min", float(pca.loc[k_small, hi_bands].min()), display=False)
glue("pca_small_hi_max", float(pca.loc[k_small, hi_bands].max()), display=False)
k_rec = sizes.recover_code if sizes.recover_code in pca.index else int(pca.index[-1])
glue("pca_rec", k_rec, display=False)
glue("pca_rec_hi2_min", float(pca.loc[k_rec, bands[2:]].min()), display=False)
glue("pca_rec_hi2_max", float(pca.loc[k_rec, bands[2:]].max()), display=False)
for key, lab in (("mse", mse_lab), ("sp", sp_lab)):
    glue(f"r6_{key}_b1", float(errors6.loc[lab, bands[1]]), display=False)
    glue(f"r6_{key}_hi2_min", float(errors6.loc[lab, bands[2:]].min()), display=False)
    glue(f"r6_{key}_hi2_max", float(errors6.loc[lab, bands[2:]].max()), display=False)

# %% [markdown]
# ```{glue:figure} fig_recover_bands
# :name: fig-recover-bands
#
# The four autoencoders on held-out faces, per frequency band. Left: relative error (dashed: the best a linear
# code of $k$ numbers can do, PCA of the training faces). Right: the energy of the reconstructions in each band
# over the energy of the faces.
# ```
#
# ```{glue:figure} fig_recover_images
# :name: fig-recover-images
#
# Held-out faces (top) and their reconstructions by the four autoencoders (rows as in
# {numref}`fig-recover-bands`: MSE, MSE + FFT, MSE + focal frequency, spatial code).
# ```
#
# ```{glue:figure} fig_recover_profiles
# :name: fig-recover-profiles
#
# Mean azimuthal spectra (dB) of the held-out faces and of the four autoencoders' reconstructions.
# ```

# %% tags=["remove-input"]
display(table(rec6["errors"].drop(columns=["RMSE (AI)"]),
              "Final PSNR and relative error per band of the four autoencoders on "
              "held-out faces."))
table(pca.reset_index(), "The linear bound: principal component analysis of the training "
      "faces; PSNR and relative error per band on the held-out faces for codes of several "
      "sizes.",
      formats={"numbers in the code": "{:d}"})

# %% [markdown]
# The focal frequency loss does not bring the high frequencies back here: with
# {glue:text}`r6_ffl_label` the bands above 1/8 cycles/pixel end between {glue:text}`r6_ffl_hi_min:.2f` and
# {glue:text}`r6_ffl_hi_max:.2f` of their error, against {glue:text}`r6_mse_hi_min:.2f` to
# {glue:text}`r6_mse_hi_max:.2f` with MSE alone. Two things stand in its way. Its weights follow the *absolute*
# error, and on faces the largest absolute errors sit where the power is: for the MSE autoencoder the squared
# error per frequency is {glue:text}`abs_ratio_low_top:.0f` times larger below 1/8 cycles/pixel, and
# {glue:text}`abs_ratio_mid_top:.0f` times larger between 1/8 and 1/4, than between 3/8 and 1/2. So the loss
# hardly shifts the balance toward the fine detail. And the code is small for the detail: PCA with
# {glue:text}`pca_small` numbers, the best linear code of that size, reaches {glue:text}`pca_small_psnr:.1f` dB
# and still leaves {glue:text}`pca_small_hi_min:.2f`–{glue:text}`pca_small_hi_max:.2f` of the error in the
# bands above 1/8. The MSE autoencoder ends close to that yardstick ({glue:text}`r6_mse_psnr:.1f` dB), so a
# loss that only reweights the errors has little room to move, unless the network finds a much better
# nonlinear code.
#
# The spatial code brings much of them back. With {glue:text}`r6_sp_label` the band 1/8–1/4 keeps
# {glue:text}`r6_sp_b1:.2f` of its error (dense code: {glue:text}`r6_mse_b1:.2f`) and holds
# {glue:text}`r6_sp_e_mid:.2f` of the faces' energy (dense code: {glue:text}`r6_mse_e_mid:.2f`), and the PSNR
# rises to {glue:text}`r6_sp_psnr:.1f` dB (dense code: {glue:text}`r6_mse_psnr:.1f` dB). The bands above 1/4
# improve less, to {glue:text}`r6_sp_hi2_min:.2f`–{glue:text}`r6_sp_hi2_max:.2f` of their error (dense code:
# {glue:text}`r6_mse_hi2_min:.2f`–{glue:text}`r6_mse_hi2_max:.2f`), although PCA with as many numbers,
# {glue:text}`pca_rec`, leaves only {glue:text}`pca_rec_hi2_min:.2f`–{glue:text}`pca_rec_hi2_max:.2f` there:
# this code could carry them, but the network did not learn to put them in before its run converged. That is
# what the spectral bias of sections 2 and 3 predicts, the highest frequencies come last; how much of the gap
# longer training would close, we have not measured. So in this small experiment the detail comes back
# through what the code can hold, a loss that reweights the frequencies does not replace that, and the finest
# detail needs more than a bigger code. The chapters that follow build on these levers: FA-VAE
# {cite:p}`lin2023catch` adds modules and a spectrum loss to a VQGAN whose spatial code loses detail at high
# compression, and FQ-VAE {cite:p}`feng2025frequency` quantises the code in the frequency domain.

# %% [markdown]
# ## 7. Exercises
#
# Each exercise changes one papermill parameter (`specvae book execute 00 --preset cpu -p KEY VALUE`, or
# `papermill ... -p KEY VALUE`) or one line of code. The answers quote runs of this chapter: the runs of
# exercises 1 and 2 are stored with the chapter, the others are computed when it is executed.
#
# :::{admonition} Exercise 1: where does spectral bias start?
# :class: tip
# Rerun section 2 with `-p frequencies "[1, 2, 4, 8, 16]"`. Which frequencies are learned within the run, and
# does the order change?
# :::
#
# :::{dropdown} Answer
# The order is the same, lowest first, and the octave spacing shows how quickly the delay grows with
# frequency. In the stored run at preset {glue:text}`preset_name` ({glue:text}`reg_steps` steps) the error
# fell below 0.1 at step {glue:text}`ex1_steps_1` for 1 cycle, {glue:text}`ex1_steps_2` for 2 and
# {glue:text}`ex1_steps_4` for 4 cycles (a dash: never), while 8 and 16 cycles ended with
# {glue:text}`ex1_err_8:.2f` and {glue:text}`ex1_err_16:.2f` of their error. Another seed gives somewhat
# different steps, not a different order.
# :::
#
# :::{admonition} Exercise 2: Fourier features with a small bandwidth
# :class: tip
# Set `-p fourier_scale 1` (σ of the random frequencies, in cycles per unit; the target goes up to
# {glue:text}`k_high:g`). Look at the right heat map of section 2: is the order of learning still visible?
# :::
#
# :::{dropdown} Answer
# Yes. With σ = 1 almost all random frequencies lie below 3 cycles, so the network has to build the higher
# target frequencies itself, and the spectral bias reappears. In the stored run the error of $k =$
# {glue:text}`k_low:g` fell below 0.1 at step {glue:text}`ex2_steps_low`, that of $k =$ {glue:text}`k_high:g`
# at step {glue:text}`ex2_steps_high` (a dash: never), and the errors at the end range from
# {glue:text}`ex2_err_min:.1e` to {glue:text}`ex2_err_max:.1e` (σ = 10: at most {glue:text}`ff_err_max:.0e`).
# σ sets the bandwidth of the functions the network prefers {cite:p}`tancik2020fourier`: too low and it learns
# high frequencies slowly, too high and it fits noise between the samples.
# :::
#
# :::{admonition} Exercise 3: same PSNR, different damage
# :class: tip
# Compare the degraded faces of section 1 by their errors, not their spectra: the table
# `spectra["errors"]` holds the PSNR of each copy against the originals and its relative error per band
# (computed by `report.degradation_errors`). Which copy has the highest PSNR, and where does each one's
# error sit?
# :::
#
# :::{dropdown} Answer
# ```{glue:} ex3_table
# ```
#
# The highest PSNR is {glue:text}`ex3_best`'s ({glue:text}`ex3_best_psnr:.1f` dB).
# Blur and down-sampling leave the lowest band almost untouched and damage every band above it; blur
# scores {glue:text}`ex3_blur_psnr:.1f` dB with a relative error of {glue:text}`ex3_blur_top:.2f` between 3/8
# and 1/2. (A Gaussian alone would remove more of that band: a large part of its energy in these faces lies on
# the two axes, in the image-border jumps behind the cross of {numref}`fig-datasets`, and a blur that pads by
# reflection keeps them.) Noise adds the same *amount* of error to every frequency, a small part of the strong
# low band and several times the energy of the weak corners (relative error {glue:text}`ex3_noise_corner:.1f`
# there), and scores {glue:text}`ex3_noise_psnr:.1f` dB. A single PSNR cannot tell blur from noise; the
# per-band errors can, which is why this book reports them.
# :::
#
# :::{admonition} Exercise 4: how many numbers does the detail need?
# :class: tip
# Call `report.pca_band_errors(sizes, codes=[64, 128, 256, 512, 1024, 2048])` (section 6's linear bound for more
# code sizes). How many numbers does a linear code need before each band's relative error falls below 0.1?
# :::
#
# :::{dropdown} Answer
# ```{glue:} ex4_table
# ```
#
# Each band needs many more numbers than the one below it: below 0.1 the band 1/8–1/4 needs
# {glue:text}`ex4_need_mid` numbers, the band 3/8–1/2 {glue:text}`ex4_need_top` (a dash: more than
# {glue:text}`ex4_kmax`). The faces have {glue:text}`ex4_dims` pixel values; fine detail is the last thing a
# compressed code keeps.
# :::
#
# :::{admonition} Exercise 5: a lighter JPEG
# :class: tip
# In section 1, change one line: `report.reading_spectra(sizes)` to
# `report.reading_spectra(dataclasses.replace(sizes, jpeg_quality=90))`. What happens to the JPEG frequency map
# and to its slope?
# :::
#
# :::{dropdown} Answer
# At quality 90 the 8×8 blocks are quantised lightly and keep most of their high-frequency coefficients: the
# fitted slope is {glue:text}`ex5_slope_q90:.2f` (quality {glue:text}`jpeg_quality`:
# {glue:text}`ex5_slope_q10:.2f`, original: {glue:text}`ex5_slope_orig:.2f`), and the PSNR against the
# originals rises from {glue:text}`ex5_psnr_q10:.1f` dB to {glue:text}`ex5_psnr_q90:.1f` dB.
# :::

# %% tags=["remove-input", "remove-stderr"]
glue("preset_name", preset, display=False)
ex = report.exercise_regressions(sizes, train=train)
oct_t = ex["tables"]["octaves"].set_index("frequency")
for k in oct_t.index:
    st = oct_t.loc[k, "steps to error < 0.1"]
    glue(f"ex1_steps_{k:g}", "–" if np.isnan(st) else f"{st:g}", display=False)
    glue(f"ex1_err_{k:g}", float(oct_t.loc[k, "final error"]), display=False)
low = ex["tables"]["low_sigma"].set_index("frequency")
for key, k in (("low", low.index[0]), ("high", low.index[-1])):
    st = low.loc[k, "steps to error < 0.1"]
    glue(f"ex2_steps_{key}", "–" if np.isnan(st) else f"{st:g}", display=False)
glue("ex2_err_min", float(low["final error"].min()), display=False)
glue("ex2_err_max", float(low["final error"].max()), display=False)
e3 = spectra["errors"]
glue("ex3_table", table(e3, "PSNR and relative error per band of the degraded faces."),
     display=False)
e3 = e3.set_index("degradation")
glue("ex3_blur_top", float(e3.loc["blur", bands[-2]]), display=False)
glue("ex3_blur_psnr", float(e3.loc["blur", "PSNR (dB)"]), display=False)
glue("ex3_noise_corner", float(e3.loc["noise", bands[-1]]), display=False)
glue("ex3_noise_psnr", float(e3.loc["noise", "PSNR (dB)"]), display=False)
glue("ex3_best", str(e3["PSNR (dB)"].idxmax()), display=False)
glue("ex3_best_psnr", float(e3["PSNR (dB)"].max()), display=False)
most = min(3 * sizes.ae_size ** 2, sizes.ae_train, 4096)  # PCA needs as many images as numbers
codes4 = [k for k in (64, 128, 256, 512, 1024, 2048) if k <= most]
p4 = report.pca_band_errors(sizes, codes=codes4)
glue("ex4_table", table(p4, "Linear bound per band for more code sizes.",
                        formats={"numbers in the code": "{:d}"}), display=False)


def first_below(band, level=0.1):
    ok = p4[p4[band] < level]["numbers in the code"]
    return f"{int(ok.iloc[0]):,}" if len(ok) else "–"


glue("ex4_need_mid", first_below(bands[1]), display=False)
glue("ex4_need_top", first_below(bands[-2]), display=False)
glue("ex4_kmax", f"{max(codes4):,}", display=False)
glue("ex4_dims", f"{3 * sizes.ae_size ** 2:,}", display=False)
q90 = report.reading_spectra(dataclasses.replace(sizes, jpeg_quality=90))
glue("ex5_slope_q90", float(q90["slopes"].set_index("images").loc["faces, jpeg", "slope"]),
     display=False)
glue("ex5_slope_q10", float(slopes["faces, jpeg"]), display=False)
glue("ex5_slope_orig", float(slopes["faces, original"]), display=False)
glue("ex5_psnr_q90", float(q90["errors"].set_index("degradation").loc["jpeg", "PSNR (dB)"]),
     display=False)
glue("ex5_psnr_q10", float(psnr_deg["jpeg"]), display=False)

# %% [markdown]
# ## Run time of this chapter
#
# Two clocks: how long each section took in *this* execution of the notebook (short when the runs were already
# stored), and how long each stored run took to *train* (from its provenance record).

# %% tags=["remove-input"]
total = sum(timings.values())
glue("total_minutes", total / 60, display=False)
stored = sb.run_all(preset, train=False, **{k: v for k, v in knobs.items() if v is not None})
kind = {"RegressionConfig": "2. 1-D regression (and exercises)",
        "ImageFitConfig": "3. image fit", "AutoencoderConfig": "4-6. autoencoders"}
stored = stored.assign(section=stored["config_type"].map(kind))
train_time = (stored.groupby("section")["wall_time_s"].agg(["count", "sum"])
              .rename(columns={"count": "runs", "sum": "training seconds"}).reset_index())
glue("train_minutes", float(stored["wall_time_s"].sum()) / 60, display=False)
glue("n_runs", len(stored), display=False)
display(table(pd.DataFrame({"section": list(timings), "seconds": list(timings.values())}),
              "Seconds per section in this execution.", digits=1))
table(train_time, "Stored runs per section and their training time.", digits=0)

# %% [markdown]
# At preset **{glue:text}`preset_name`** the {glue:text}`n_runs` stored runs took
# {glue:text}`train_minutes:.1f` minutes of training in total, and this execution of the notebook took
# {glue:text}`total_minutes:.1f` minutes. The provenance box at the top names the machine; the runs of the
# rendered book were trained on a 2-core CPU shared with other jobs, so a quiet laptop is faster.

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
# Autoencoders return blurry images. Before reading the three papers this book reproduces
# {cite:p}`bjork2022simpler,lin2023catch,feng2025frequency`, this chapter makes the problem visible with small
# runs that finish on a laptop CPU: what an image's spectrum is, why networks learn low frequencies first,
# how up-sampling layers leave fingerprints in the spectrum, and what a plain autoencoder loses.
# Every figure is computed by the `specvae` package in the code cells below; rerun the chapter with one
# parameter changed (see the exercises at the end) to see how the picture moves.

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
upsample = None  # section 5: "transposed" or "nearest_conv5"
fft_weight = None  # section 5: α of Björk et al.'s eq. 3
spectral_loss = None  # section 5: "fft" or "focal"

# %%
import specvae.book

specvae.book.banner(preset=preset, chapter="00_spectral_bias")

# %% tags=["remove-stderr"]
import os
import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from myst_nb import glue

from specvae import plots
from specvae.experiments import spectral_bias as sb

if data_root is not None:
    os.environ["SPECVAE_DATA"] = str(data_root)
plots.set_style()
knobs = dict(seed=seed, frequencies=frequencies, fourier_features=fourier_features, fourier_scale=fourier_scale,
             upsample=upsample, fft_weight=fft_weight, spectral_loss=spectral_loss)
sizes = sb.sizes(preset, **knobs)
timings = {}
pd.set_option("display.precision", 3)
sizes

# %% [markdown]
# ## 1. Reading a spectrum
#
# An image $x$ of $H \times W$ pixels is a sum of waves. The 2-D discrete Fourier transform (DFT) gives the
# amplitude and phase of each wave:
#
# $$F(u, v) = \sum_{m=0}^{H-1} \sum_{n=0}^{W-1} x[m, n]\, e^{-2\pi i \left(\frac{u m}{H} + \frac{v n}{W}\right)},$$
#
# where $(u/H, v/W)$ is the wave's frequency in **cycles per pixel**: 0 is the mean brightness, $1/2$ (a
# pattern that flips every pixel, like a checkerboard) is the highest frequency a pixel grid can hold (the
# Nyquist frequency). A *frequency map* shows $\ln |F(u, v)|$ with the zero frequency moved to the centre;
# the further from the centre, the finer the detail. Averaging the map over rings of equal radius gives the
# *azimuthally integrated spectrum* {cite:p}`durall2020watch`, one number per radial frequency $f$:
#
# $$P(f) = \frac{1}{|R_f|} \sum_{(u, v) \in R_f} 20 \ln |F(u, v)|, \qquad
# R_f = \left\{(u, v) : f \le \sqrt{(u/H)^2 + (v/W)^2} < f + \tfrac{1}{H}\right\}.$$
#
# The book computes both with `specvae.spectral` (`log_magnitude`, `radial_profile`, `frequency_axis`).

# %% tags=["remove-stderr"]
t0 = time.perf_counter()
spectra = sb.reading_spectra(sizes)
timings["1. reading a spectrum"] = time.perf_counter() - t0
names = ["faces", "MNIST", "Shapes"]
fig = plt.figure(figsize=(10, 6.2))
top, bottom = fig.subfigures(2, 1, height_ratios=[1, 1.25])
plots.image_grid([[spectra["examples"][n].mean(0, keepdim=True) for n in names]],
                 col_labels=names, fig=top, cell_size=1.6)
axes = bottom.subplots(1, 3)
for ax, n in zip(axes, names):
    plots.frequency_map(ax, spectra["maps"][n], spectrum=True, title=f"{n}: mean ln|F|")
plt.show()

# %% [markdown]
# Top: one example of each data set (faces are the CelebA-style crops described in the reproducibility page,
# here in gray). Bottom: the frequency maps, averaged over the images. All three are brightest in the centre:
# most of an image's energy sits in its low frequencies. MNIST digits and the synthetic Shapes have long
# straight edges, which show up as bright lines through the centre (an edge along one direction puts energy
# along the perpendicular frequency axis).

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
plots.radial_spectra(axes[0], {n: spectra["profiles"][n] for n in names}, title="azimuthal spectra (mean ± std)",
                     ylabel="log power, 20 ln|F|")
plots.radial_spectra(axes[1], {n: (*spectra["power"][n], None) for n in names}, logx=True,
                     ylabel="ln of mean power", title="power law: ln P(f) vs ln f")
for i, n in enumerate(names):
    f, fit = spectra["fits"][n]
    axes[1].plot(f, fit, ls="--", color="k", lw=1)
plt.show()
slopes = spectra["slopes"].set_index("images")
for n in slopes.index:
    glue(f"slope_{n.replace(', ', '_')}", float(slopes.loc[n, "slope"]), display=False)
slopes

# %% [markdown]
# On log-log axes (right) the mean power of natural images falls close to a straight line,
# $P(f) \propto f^{\beta}$: a power law. The dashed lines are least-squares fits over
# {glue:text}`fit_lo:.2f`–{glue:text}`fit_hi:.2f` cycles/pixel; the faces give
# $\beta =$ {glue:text}`slope_faces:.2f`. Photographs of natural scenes are classically near $\beta \approx -2$;
# our faces are down-sampled with an anti-aliasing filter, which removes power near the Nyquist frequency and
# steepens the fit. Whatever the exact value, the message for this book is the decay itself: the high
# frequencies hold orders of magnitude less energy than the low ones, so any loss that sums errors over
# pixels (MSE) pays little attention to them.

# %%
glue("fit_lo", sizes.slope_range[0], display=False)
glue("fit_hi", sizes.slope_range[1], display=False)
kinds = [f"faces, {k}" for k in sb.DEGRADATIONS[1:]]
shown = ["faces", *kinds]
labels = ["original", *sb.DEGRADATIONS[1:]]
fig = plt.figure(figsize=(12, 6.6))
top, bottom = fig.subfigures(2, 1, height_ratios=[1, 1.1])
plots.image_grid([[spectra["examples"][n] for n in shown]], col_labels=labels, fig=top,
                 cell_size=1.8)
axes = bottom.subplots(1, len(shown))
vmin = min(spectra["maps"][n].min() for n in shown)
vmax = max(spectra["maps"][n].max() for n in shown)
for ax, n, lab in zip(axes, shown, labels):
    plots.frequency_map(ax, spectra["maps"][n], spectrum=True, title=lab, vmin=vmin, vmax=vmax,
                        colorbar=(lab == labels[-1]))
plt.show()
fig, ax = plt.subplots(figsize=(7, 4))
plots.radial_spectra(ax, {lab: spectra["profiles"][n] for n, lab in zip(shown, labels)},
                     ylabel="log power, 20 ln|F|", title="faces and degraded copies")
plt.show()
slopes.loc[shown, ["slope"]].rename(index=dict(zip(shown, labels)))

# %% [markdown]
# Each degradation leaves its own signature, and the frequency maps (shared colour scale) read them at a
# glance. **Blur** (Gaussian, σ = {glue:text}`blur_sigma` px) multiplies the spectrum by a Gaussian: the
# high-frequency power drops steeply. **Down-sampling** by 2 discards everything above 1/4 cycles/pixel;
# bicubic up-sampling back to the original size refills that range only with weak mirror images of the lower
# frequencies, so the outer part of the map darkens. **JPEG** at quality {glue:text}`jpeg_quality` stores each 8×8 block
# as a few coarsely quantised cosine waves: most high-frequency coefficients become zero, so high-frequency power
# drops, while the block grid, which repeats every 8 pixels, can only put its own structure at multiples of
# 1/8 cycles/pixel.
# **Noise** is white (equal power at every frequency): it *raises* the high-frequency end to a flat floor.
# A blurry autoencoder output looks like the blurred curve; an output with up-sampling artefacts adds peaks.

# %%
glue("blur_sigma", sizes.blur_sigma, display=False)
glue("jpeg_quality", sizes.jpeg_quality, display=False)

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
# $\mathcal N(0, \sigma^2)$, instead of $x$.

# %% tags=["remove-stderr"]
t0 = time.perf_counter()
reg = sb.regression_1d(sizes, train=train)
timings["2. 1-D regression"] = time.perf_counter() - t0
runs = reg["runs"]
fig, axes = plt.subplots(1, len(runs), figsize=(6 * len(runs), 3.6), squeeze=False)
for ax, (label, rec) in zip(axes[0], runs.items()):
    a = rec["arrays"]
    plots.error_heatmap(ax, a["errors"], x=a["eval_steps"].tolist(), y=list(sizes.frequencies),
                        xlabel="training step", ylabel="frequency k (cycles per unit)", vmax=1.0,
                        cbar_label="normalised error |F̂−F|/|F|", title=label)
plt.show()
fig, ax = plt.subplots(figsize=(10, 2.8))
a = runs["raw coordinates"]["arrays"]
ax.plot(a["x"], a["y"], color="k", lw=1, label="target")
for label, rec in runs.items():
    ax.plot(rec["arrays"]["x"], rec["arrays"]["pred"], lw=1.2, label=f"MLP, {label}")
ax.set_xlabel("x")
ax.set_ylabel("y")
ax.legend(frameon=False, fontsize="small", ncol=3)
ax.set_title(f"after {sizes.reg_steps} steps")
plt.show()
table2 = reg["table"].pivot(index="frequency", columns="input", values=["steps to error < 0.1", "final error"])
raw_final = reg["table"].query("input == 'raw coordinates'").set_index("frequency")["final error"]
glue("reg_steps", sizes.reg_steps, display=False)
glue("raw_err_low", float(raw_final.iloc[0]), display=False)
glue("raw_err_high", float(raw_final.iloc[-1]), display=False)
glue("k_low", float(raw_final.index[0]), display=False)
glue("k_high", float(raw_final.index[-1]), display=False)
table2

# %% [markdown]
# Read the left heat map from the bottom up: the lowest frequency turns dark (learned) first, and each higher
# frequency later. After {glue:text}`reg_steps` steps the error at $k =$ {glue:text}`k_low:g` is
# {glue:text}`raw_err_low:.3f` while at $k =$ {glue:text}`k_high:g` it is still {glue:text}`raw_err_high:.3f`,
# although all components have the same amplitude. This is the *spectral bias*: gradient descent on a ReLU
# network fits smooth, low-frequency functions first. With Fourier features (right) every frequency is learned
# within a few dozen steps: the features already contain waves of many frequencies, so the network only has to
# combine them. (The table gives the first evaluated step at which each frequency's error fell below 0.1; NaN
# means never within the run.)

# %% [markdown]
# ## 3. The same in 2-D: fitting one image
#
# Now the MLP maps a pixel position $(m/H, n/W) \in [0, 1)^2$ to its gray value, trained with MSE on every pixel
# of one face. We save the network's image at a few steps and compare its azimuthal spectrum with the target's.

# %% tags=["remove-stderr"]
t0 = time.perf_counter()
fit2d = sb.image_fit_2d(sizes, train=train)
timings["3. image fit"] = time.perf_counter() - t0
runs3 = fit2d["runs"]
first = next(iter(runs3.values()))
steps3 = first["arrays"]["snapshot_steps"].tolist()
target = first["images"]["target"]
rows = [np.concatenate([rec["images"]["recon"], target]) for rec in runs3.values()]
plots.image_grid(rows, row_labels=list(runs3), col_labels=[f"step {t}" for t in steps3] + ["target"],
                 cell_size=1.7)
plt.show()
fig, axes = plt.subplots(1, len(runs3), figsize=(6 * len(runs3), 3.8), squeeze=False, sharey=True)
for ax, (label, rec) in zip(axes[0], runs3.items()):
    a = rec["arrays"]
    profs = {f"step {t}": (a["freqs"], p, None) for t, p in zip(steps3, a["profiles"])}
    profs["target"] = (a["freqs"], a["profile_target"], None)
    plots.radial_spectra(ax, profs, title=label, ylabel="log power, 20 ln|F|")
plt.show()
glue("fit_steps", steps3[-1], display=False)
glue("psnr_raw", float(runs3["raw coordinates"]["metrics"]["final_psnr"]), display=False)
if len(runs3) > 1:
    glue("psnr_ff", float(list(runs3.values())[1]["metrics"]["final_psnr"]), display=False)
fit2d["table"].pivot(index="step", columns="input", values="PSNR (dB)")

# %% [markdown]
# The raw-coordinate MLP paints a smooth blob first and adds detail slowly: its spectrum (left) matches the
# target at low frequencies early on and stays far below it at high frequencies; after {glue:text}`fit_steps`
# steps it reaches {glue:text}`psnr_raw:.1f` dB. With Fourier features the high-frequency end of the spectrum
# rises to the target's within the same steps ({glue:text}`psnr_ff:.1f` dB). A network that is asked to
# reconstruct images, such as an autoencoder's decoder, inherits this bias.

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
# mean $\ln|F|$ at the three Nyquist frequencies $(\frac12, 0), (0, \frac12), (\frac12, \frac12)$ minus the
# median $\ln|F|$ of the map: large means "peaks".

# %% tags=["remove-stderr"]
t0 = time.perf_counter()
ups = sb.upsampling(sizes, train=train)
timings["4. up-sampling"] = time.perf_counter() - t0
init = ups["init"]
kinds4 = list(init["examples"])
fig = plt.figure(figsize=(11, 3.4))
left, mid, right = fig.subfigures(1, 3, width_ratios=[1, 1.6, 1.6])
plots.image_grid([[init["examples"][k] for k in kinds4]], col_labels=kinds4, fig=left,
                 ncols=2, cell_size=1.6)
axes = mid.subplots(1, 2)
for ax, k in zip(axes, kinds4):
    plots.frequency_map(ax, init["maps"][k], spectrum=True, title=k, colorbar=False)
plots.radial_spectra(right.subplots(1, 1), init["profiles"], ylabel="log power, 20 ln|F|",
                     title="at initialisation")
plt.show()
scores = init["scores"].set_index("upsampling")
glue("cb_init_transposed", float(scores.loc["transposed", "checkerboard_score"]), display=False)
glue("cb_init_nearest", float(scores.loc["nearest_conv5", "checkerboard_score"]), display=False)
scores

# %% [markdown]
# Untrained, the transposed-convolution decoder already prints a regular grid (left) whose frequency map has
# bright dots at the Nyquist frequencies and at the frequencies of the coarser layers (1/4, 1/8 cycles/pixel):
# checkerboard score {glue:text}`cb_init_transposed:.2f`, against {glue:text}`cb_init_nearest:.2f` for
# nearest + convolution, whose ×2 nearest-neighbour copy has a zero of its frequency response exactly at
# 1/2 cycles/pixel. Training must undo these peaks. Below, both decoders are part of the same small autoencoder
# (dense code of {glue:text}`ae_latent` numbers), trained with MSE on {glue:text}`ae_size`×{glue:text}`ae_size`
# faces.

# %%
glue("ae_latent", sizes.ae_latent, display=False)
glue("ae_size", sizes.ae_size, display=False)
trained = ups["trained"]
data_imgs = next(iter(trained.values()))["images"]["data"]
plots.image_grid([data_imgs, *[rec["images"]["recon"] for rec in trained.values()]],
                 row_labels=["data", *trained], cell_size=1.25)
plt.show()
fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
rec0 = next(iter(trained.values()))
vmin = min(rec["arrays"]["map_recon"].min() for rec in trained.values())
vmax = rec0["arrays"]["map_data"].max()
plots.frequency_map(axes[0], rec0["arrays"]["map_data"], spectrum=True, title="data", colorbar=False,
                    vmin=vmin, vmax=vmax)
for ax, (k, rec) in zip(axes[1:], trained.items()):
    plots.frequency_map(ax, rec["arrays"]["map_recon"], spectrum=True, title=f"reconstructions, {k}",
                        vmin=vmin, vmax=vmax)
plt.show()
fig, ax = plt.subplots(figsize=(7, 4))
a0 = rec0["arrays"]
profs = {"data": (a0["freqs"], a0["profile_data_mean"], a0["profile_data_std"])}
for k, rec in trained.items():
    a = rec["arrays"]
    profs[k] = (a["freqs"], a["profile_recon_mean"], a["profile_recon_std"])
plots.radial_spectra(ax, profs, ylabel="log power, 20 ln|F|", title="after training (MSE)")
plt.show()
t4 = ups["table"].set_index("upsampling")
glue("cb_trained_transposed", float(t4.loc["transposed", "checkerboard score trained"]), display=False)
glue("cb_trained_nearest", float(t4.loc["nearest_conv5", "checkerboard score trained"]), display=False)
glue("cb_data", float(t4.loc["transposed", "checkerboard score data"]), display=False)
glue("rmse_ai_transposed", float(t4.loc["transposed", "RMSE (AI)"]), display=False)
glue("rmse_ai_nearest", float(t4.loc["nearest_conv5", "RMSE (AI)"]), display=False)
t4

# %% [markdown]
# After training both autoencoders blur: beyond the lowest frequencies their azimuthal spectra fall below the
# data's, and their frequency maps darken away from the centre. Training has not removed the fingerprints: the
# reconstructions' checkerboard scores are {glue:text}`cb_trained_transposed:.2f` (transposed) and
# {glue:text}`cb_trained_nearest:.2f` (nearest + convolution), against {glue:text}`cb_data:.2f` for the data
# itself. The nearest model is not at the data's level either: its exact zero at 1/2 cycles/pixel holds only
# for the linear part of the decoder, and the final Sigmoid and the zero padding at the image borders are
# likely sources of what is left. Note also that the
# transposed model keeps *more* high-frequency power than the nearest one (its AI-domain RMSE is
# {glue:text}`rmse_ai_transposed:.2f` against {glue:text}`rmse_ai_nearest:.2f`): part of that power is the
# artefact, not detail. Two different problems meet here: up-sampling *adds* wrong high frequencies, spectral
# bias and the bottleneck *remove* the right ones.

# %% [markdown]
# ## 5. Autoencoders blur
#
# The same autoencoder, trained once with MSE alone and once with Björk et al.'s combination
# {cite:p}`bjork2022simpler` (their eq. 3, with the MSE as the spatial loss $\mathcal L_s$):
#
# $$\mathcal L = (1 - \alpha)\, \mathcal L_s(x, \hat x) + \alpha\, \mathcal L_f(x, \hat x), \qquad
# \mathcal L_f = \frac1n \sum \left(\Re\,\mathcal F\{x\} - \Re\,\mathcal F\{\hat x\}\right)^2
# + \frac1n \sum \left(\Im\,\mathcal F\{x\} - \Im\,\mathcal F\{\hat x\}\right)^2 .$$
#
# We track the *relative error per frequency band* on held-out faces during training:
# $\sum_{\text{band}} |F(x) - F(\hat x)|^2 / \sum_{\text{band}} |F(x)|^2$, where 0 is perfect and 1 means the band
# is as wrong as if it were empty.

# %% tags=["remove-stderr"]
t0 = time.perf_counter()
aes = sb.autoencoders(sizes, train=train)
timings["5. autoencoders"] = time.perf_counter() - t0
runs5 = aes["runs"]
labels5 = list(runs5)
fig, axes = plt.subplots(1, 2, figsize=(13, 4))
for (label, rec), style in zip(runs5.items(), ["-", "--"]):
    hist = rec["extra"]["band_history"]
    plots.loss_curves(axes[0], hist, ls=style, logy=False, label_prefix=f"{label}: ", ylabel="relative band error",
                      title="per-band error on held-out faces (solid: first run, dashed: second)")
    plots.loss_curves(axes[1], {"step": rec["history"]["step"], "mse": rec["history"]["mse"]}, ls=style,
                      label_prefix=f"{label}: ", ylabel="training MSE", title="training MSE")
axes[0].legend(frameon=False, fontsize="x-small", ncol=2)
plt.show()
plots.image_grid([runs5[labels5[0]]["images"]["data"], *[rec["images"]["recon"] for rec in runs5.values()]],
                 row_labels=["data", *labels5], cell_size=1.25)
plt.show()
fig, ax = plt.subplots(figsize=(7, 4))
a0 = runs5[labels5[0]]["arrays"]
profs = {"data": (a0["freqs"], a0["profile_data_mean"], a0["profile_data_std"])}
for label, rec in runs5.items():
    a = rec["arrays"]
    profs[label] = (a["freqs"], a["profile_recon_mean"], a["profile_recon_std"])
plots.radial_spectra(ax, profs, ylabel="log power, 20 ln|F|", title="reconstructions vs data")
plt.show()
t5 = aes["table"].set_index("loss")
band_cols = [c for c in t5.columns if c.startswith("band ")]
glue("band_low_mse", float(t5.loc[labels5[0], band_cols[0]]), display=False)
glue("band_rest_min", float(t5.loc[labels5[0], band_cols[1:]].min()), display=False)
glue("band_rest_max", float(t5.loc[labels5[0], band_cols[1:]].max()), display=False)
glue("band_rest_min_other", float(t5.loc[labels5[1], band_cols[1:]].min()), display=False)
glue("band_rest_max_other", float(t5.loc[labels5[1], band_cols[1:]].max()), display=False)
glue("psnr_mse", float(t5.loc[labels5[0], "PSNR (dB)"]), display=False)
glue("psnr_other", float(t5.loc[labels5[1], "PSNR (dB)"]), display=False)
glue("label_other", labels5[1], display=False)
t5

# %% [markdown]
# The lowest band (below 1/8 cycles/pixel) is learned within the first couple of hundred steps and ends at a
# relative error of {glue:text}`band_low_mse:.3f` with MSE, while every band above it keeps between
# {glue:text}`band_rest_min:.2f` and {glue:text}`band_rest_max:.2f` of its error at the end of the run and
# improves only slowly: the autoencoder reproduces the coarse face and gives up much of the fine detail, which is
# what "blurry" means in the frequency domain. With {glue:text}`label_other` the same bands end between
# {glue:text}`band_rest_min_other:.2f` and {glue:text}`band_rest_max_other:.2f`, and the PSNR at
# {glue:text}`psnr_other:.2f` dB (MSE alone: {glue:text}`psnr_mse:.2f` dB): the two runs are almost the same.
#
# Why so little difference? By Parseval's theorem the FFT loss $\mathcal L_f$ of the full, unnormalised 2-D FFT
# equals $H W$ times the pixel MSE exactly (`specvae.losses.fft` tests this), so eq. 3 with an MSE spatial loss
# is the MSE multiplied by a constant, and Adam's updates hardly depend on the scale of the loss (only through its
# small ε). The FFT loss
# changes training only where the spatial loss is *not* an MSE: Björk et al. add it to the binary cross-entropy
# of a VAE, and chapter 1 reproduces that. To change *which* frequencies are learned, a loss must weight them
# unequally: the focal frequency loss {cite:p}`jiang2021focal` (exercise 4), the spectrum losses of FA-VAE
# {cite:p}`lin2023catch`, or the frequency-aware quantisation of FQ-VAE {cite:p}`feng2025frequency`, the
# subjects of the next chapters.

# %% [markdown]
# ## 6. Exercises
#
# Each exercise changes one papermill parameter (`specvae book execute 00 --preset cpu -p KEY VALUE`, or
# `papermill ... -p KEY VALUE`) or one line of code.
#
# :::{admonition} Exercise 1: where does spectral bias start?
# :class: tip
# Rerun section 2 with `-p frequencies "[1, 2, 4, 8, 16]"` and `-p fourier_features 0`. Which frequencies are
# learned within the run, and does the order change?
# :::
#
# :::{dropdown} Answer
# The order is the same, lowest first, and the octave spacing shows how quickly the delay grows with
# frequency: 1 and 2 cycles are learned within the first couple of hundred steps, 4 cycles several hundred
# steps later, while 8 and 16 cycles are not learned within the run (16 cycles ends with about half of its
# error left). (Observed at preset `cpu`; your numbers will differ a little with the seed.)
# :::
#
# :::{admonition} Exercise 2: Fourier features with a small bandwidth
# :class: tip
# Set `-p fourier_scale 1` (σ of the random frequencies, in cycles per unit; the target goes up to 20).
# Look at the right heat map of section 2: is the order of learning still visible?
# :::
#
# :::{dropdown} Answer
# Yes: with σ = 1 almost all random frequencies lie below 3 cycles, so the network has to build the higher
# target frequencies itself, and the spectral bias reappears: the lowest frequency is learned first, the
# highest last. It is still much faster than with raw coordinates (at preset `cpu` every frequency was learned
# within a few hundred steps). σ sets the bandwidth of the functions the network prefers
# {cite:p}`tancik2020fourier`: too low and it learns high frequencies slowly, too high and it fits noise
# between the samples.
# :::
#
# :::{admonition} Exercise 3: the up-sampling of the autoencoder
# :class: tip
# Set `-p upsample nearest_conv5` and rerun section 5. Compare the checkerboard score and the high-band error
# with the transposed-convolution run of section 4.
# :::
#
# :::{dropdown} Answer
# The MSE run with `nearest_conv5` is the one already trained in section 4, so compare with its row there: the
# reconstructions' checkerboard score falls (the Nyquist peaks were largely put there by the transposed
# convolution), but the high-frequency bands do not get better, and the azimuthal RMSE gets worse: removing
# wrong high frequencies does not create the right ones.
# :::
#
# :::{admonition} Exercise 4: a loss that weights frequencies unequally
# :class: tip
# Set `-p spectral_loss focal` (the focal frequency loss of {cite:t}`jiang2021focal`, which up-weights the
# frequencies with the largest current error). Does the high-band error of section 5 move now?
# :::
#
# :::{dropdown} Answer
# Unlike the FFT loss, which is an MSE in disguise (Parseval), the focal frequency loss re-weights each
# frequency by its own current error, so the neglected bands get larger gradients. At preset `cpu` (α = 0.5,
# 1,500 steps) that was still not enough: the per-band errors ended marginally *higher* than with MSE alone and
# the AI-domain RMSE marginally lower. A likely reason is the bottleneck: a code of 64 numbers has little room
# for the detail of a face, whatever the loss asks for. Test that guess with one changed line,
# `sizes = sb.sizes(preset, ae_latent=256, **knobs)`, and compare the two losses again.
# :::
#
# :::{admonition} Exercise 5: a lighter JPEG
# :class: tip
# In section 1, change one line: `sb.reading_spectra(sizes)` to
# `sb.reading_spectra(dataclasses.replace(sizes, jpeg_quality=90))` (import `dataclasses`). What happens to the
# JPEG frequency map and to its slope in the table?
# :::
#
# :::{dropdown} Answer
# At quality 90 the 8×8 blocks are quantised lightly and keep their high-frequency coefficients: the JPEG
# frequency map and azimuthal spectrum become almost indistinguishable from the original's, and so does the
# fitted slope.
# :::

# %% [markdown]
# ## Run time of this chapter
#
# Two clocks: how long each section took in *this* execution of the notebook (short when the runs were already
# stored), and how long each stored run took to *train* (from its provenance record).

# %%
total = sum(timings.values())
glue("total_minutes", total / 60, display=False)
glue("preset_name", preset, display=False)
pd.DataFrame({"seconds": timings}).rename_axis("section (this execution)")

# %%
stored = sb.run_all(preset, train=False, **{k: v for k, v in knobs.items() if v is not None})
kind = {"RegressionConfig": "2. 1-D regression", "ImageFitConfig": "3. image fit", "AutoencoderConfig": "4-5. autoencoder"}
stored = stored.assign(section=stored["config_type"].map(kind))
train_time = stored.groupby("section")["wall_time_s"].agg(["count", "sum"]).rename(
    columns={"count": "runs", "sum": "training seconds"})
glue("train_minutes", float(stored["wall_time_s"].sum()) / 60, display=False)
glue("n_runs", len(stored), display=False)
train_time

# %% [markdown]
# At preset **{glue:text}`preset_name`** the {glue:text}`n_runs` stored runs took
# {glue:text}`train_minutes:.1f` minutes of training in total, and this execution of the notebook took
# {glue:text}`total_minutes:.1f` minutes. The provenance box at the top names the machine; the runs of the
# rendered book were trained on a 2-core CPU shared with other jobs, so a quiet laptop is faster.

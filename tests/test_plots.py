"""specvae.plots: what the helpers draw (data equal to the input, labels with units, the book's colour map)."""

from __future__ import annotations

import os

os.environ.setdefault("MPLBACKEND", "Agg")

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from specvae import plots


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def test_set_style_applies_palette_and_cmap():
    plots.set_style()
    assert plt.rcParams["image.cmap"] == plots.FREQ_CMAP == "magma"
    import seaborn as sns

    first = matplotlib.colors.to_rgb(plt.rcParams["axes.prop_cycle"].by_key()["color"][0])
    assert np.allclose(first, sns.color_palette(plots.PALETTE)[0])


def test_frequency_map_of_an_image_matches_fft_and_axes_in_cycles_per_pixel():
    # a pure cosine along x at 1/4 cycles/pixel: peaks at f_x = ±1/4, f_y = 0
    h = w = 16
    n = torch.arange(w, dtype=torch.float32)
    img = (0.5 + 0.4 * torch.cos(2 * np.pi * 0.25 * n)).expand(h, w).clone()
    fig, ax = plt.subplots()
    plots.frequency_map(ax, img)
    im = ax.images[-1]
    arr = np.asarray(im.get_array())
    ref = np.abs(np.fft.fftshift(np.fft.fft2(img.numpy())))
    floor = 16 / (255 * np.sqrt(12))  # the 8-bit noise floor of a 16 x 16 spectrum (specvae.spectral)
    np.testing.assert_allclose(np.exp(arr), np.sqrt(ref**2 + floor**2), rtol=1e-4)  # ln|F| with the floor
    assert im.get_cmap().name == "magma"
    assert "cycles/pixel" in ax.get_xlabel() and "cycles/pixel" in ax.get_ylabel()
    left, right, bottom, top = im.get_extent()
    assert left == pytest.approx(-0.5 - 0.5 / w) and right == pytest.approx(0.5 - 1 / w + 0.5 / w)
    # the brightest non-DC pixel sits at f_x = ±1/4, f_y = 0
    a = arr.copy()
    a[h // 2, w // 2] = -np.inf
    iy, ix = np.unravel_index(np.argmax(a), a.shape)
    fx = np.fft.fftshift(np.fft.fftfreq(w))[ix]
    fy = np.fft.fftshift(np.fft.fftfreq(h))[iy]
    assert abs(fx) == pytest.approx(0.25) and fy == 0
    assert len(fig.axes) == 2  # colour bar
    assert fig.axes[1].get_ylabel() == "ln|F|"


def test_frequency_map_rgb_uses_gray_and_batch_mean():
    torch.manual_seed(0)
    x = torch.rand(3, 3, 8, 8)
    fig, ax = plt.subplots()
    plots.frequency_map(ax, x, colorbar=False)
    gray = 0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]
    power = np.abs(np.fft.fftshift(np.fft.fft2(gray.numpy()), axes=(-2, -1))) ** 2
    floor2 = 64 / (255**2 * 12)  # H W q^2, q = 1 / (255 sqrt 12)
    ref = 0.5 * np.log(power + floor2).mean(0)
    np.testing.assert_allclose(np.asarray(ax.images[-1].get_array()), ref, atol=1e-4)
    assert len(fig.axes) == 1
    # the same map in dB of power: 10 log10(|F|^2 + floor^2) = (20 / ln 10) ln|F|
    fig2, ax2 = plt.subplots()
    plots.frequency_map(ax2, x, units="db")
    np.testing.assert_allclose(np.asarray(ax2.images[-1].get_array()), 10 * np.log10(power + floor2).mean(0),
                               atol=1e-3)
    assert fig2.axes[1].get_ylabel() == "power (dB)"


def test_frequency_map_rejects_bad_input():
    fig, ax = plt.subplots()
    with pytest.raises(ValueError, match="channels"):
        plots.frequency_map(ax, torch.rand(1, 8, 8, 3))
    with pytest.raises(ValueError, match="2-D"):
        plots.frequency_map(ax, np.zeros((2, 8, 8)), spectrum=True)
    with pytest.raises(ValueError, match="units"):
        plots.frequency_map(ax, np.zeros((8, 8)), spectrum=True, units="log")


def test_frequency_maps_share_one_colour_range_and_one_colour_bar():
    a, b = np.zeros((8, 8)), np.full((8, 8), 5.0)
    b[0, 0] = 9.0
    fig, axes = plt.subplots(1, 2)
    cb = plots.frequency_maps(axes, [a, b], titles=["a", "b"], units="db")
    for ax in axes:
        assert ax.images[-1].get_clim() == (0.0, 9.0)  # min and max over both maps
    np.testing.assert_allclose(np.asarray(axes[1].images[-1].get_array()), b)
    assert cb.ax.get_ylabel() == "power (dB)" and len(fig.axes) == 3  # two maps, one colour bar
    assert [ax.get_title() for ax in axes] == ["a", "b"]
    fig, axes = plt.subplots(1, 2)
    plots.frequency_maps(axes, [a, b], vmin=-1.0, vmax=2.0)
    assert axes[0].images[-1].get_clim() == (-1.0, 2.0)
    with pytest.raises(ValueError, match="one axes per map"):
        plots.frequency_maps(axes, [a])


def test_radial_spectra_plots_input_data_with_labels_and_bands():
    f = np.linspace(0.05, 0.5, 10)
    mu = -3 * np.log(f)
    sd = np.full(10, 0.5)
    fig, ax = plt.subplots()
    plots.radial_spectra(ax, {"a": (f, mu, sd), "b": (f, mu + 1, None)})
    assert [l.get_label() for l in ax.lines] == ["a", "b"]
    np.testing.assert_allclose(ax.lines[0].get_xdata(), f)
    np.testing.assert_allclose(ax.lines[1].get_ydata(), mu + 1)
    assert ax.get_xlabel() == "spatial frequency (cycles/pixel)"
    assert ax.get_ylabel() == plots.POWER_LABEL == "power (dB)"
    assert len(ax.collections) == 1  # one ±std band (b has none)
    band = ax.collections[0].get_paths()[0].vertices
    assert band[:, 1].max() == pytest.approx((mu + sd).max()) and band[:, 1].min() == pytest.approx((mu - sd).min())
    assert ax.get_legend() is not None


def test_radial_spectra_logx_and_errors():
    f = np.linspace(0.05, 0.5, 10)
    fig, ax = plt.subplots()
    plots.radial_spectra(ax, {"a": (f, f, None)}, logx=True)
    assert ax.get_xscale() == "log"
    with pytest.raises(ValueError, match="empty"):
        plots.radial_spectra(ax, {})
    with pytest.raises(ValueError, match="freqs has 10"):
        plots.radial_spectra(ax, {"a": (f, f[:5], None)})


def test_image_grid_rows_and_values():
    torch.manual_seed(0)
    a = torch.rand(3, 1, 8, 8)
    b = torch.rand(3, 3, 8, 8) * 1.5  # out of range: clipped for display
    fig = plots.image_grid([a, b], row_labels=["one", "two"], col_labels=["x", "y", "z"])
    axes = fig.axes
    assert len(axes) == 6
    np.testing.assert_allclose(np.asarray(axes[1].images[0].get_array()), a[1, 0].numpy())
    shown = np.asarray(axes[4].images[0].get_array())
    np.testing.assert_allclose(shown, b[1].clamp(0, 1).permute(1, 2, 0).numpy(), atol=1e-6)
    assert axes[0].get_ylabel() == "one" and axes[3].get_ylabel() == "two"
    assert axes[2].get_title() == "z"
    with pytest.raises(ValueError, match="row labels"):
        plots.image_grid([a], row_labels=["one", "two"])


def test_image_grid_row_of_mixed_sizes():
    fig = plots.image_grid([[torch.zeros(1, 8, 8), torch.ones(3, 4, 4)]])
    assert np.asarray(fig.axes[0].images[0].get_array()).shape == (8, 8)
    assert np.asarray(fig.axes[1].images[0].get_array()).shape == (4, 4, 3)


def test_image_grid_single_batch_wraps_columns():
    fig = plots.image_grid(torch.zeros(5, 1, 4, 4), ncols=2)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(fig.axes) == 6 and len(visible) == 5


def test_loss_curves_draws_history_terms():
    hist = {"step": [10, 20, 30], "loss": [3.0, 2.0, 1.0], "mse": [1.5, 1.0, 0.5]}
    fig, ax = plt.subplots()
    plots.loss_curves(ax, hist, label_prefix="run: ")
    assert [l.get_label() for l in ax.lines] == ["run: loss", "run: mse"]
    np.testing.assert_allclose(ax.lines[1].get_ydata(), [1.5, 1.0, 0.5])
    np.testing.assert_allclose(ax.lines[0].get_xdata(), [10, 20, 30])
    assert ax.get_yscale() == "log" and ax.get_xlabel() == "training step"
    plots.loss_curves(ax, hist, keys=["mse"], ls="--")
    assert ax.lines[-1].get_linestyle() == "--"
    with pytest.raises(KeyError, match="nope"):
        plots.loss_curves(ax, hist, keys=["nope"])


def test_loss_curves_accepts_dataframe():
    import pandas as pd

    df = pd.DataFrame({"step": [1, 2], "loss": [2.0, 1.0]})
    fig, ax = plt.subplots()
    plots.loss_curves(ax, df, logy=False)
    np.testing.assert_allclose(ax.lines[0].get_ydata(), [2.0, 1.0])


def test_error_heatmap_orientation_and_cmap():
    v = np.arange(12, dtype=float).reshape(3, 4) / 11
    fig, ax = plt.subplots()
    plots.error_heatmap(ax, v, x=[0, 10, 20, 30], y=[1, 2, 4], xlabel="training step", ylabel="frequency")
    im = ax.images[-1]
    np.testing.assert_allclose(np.asarray(im.get_array()), v)
    assert im.origin == "lower" and im.get_cmap().name == plots.ERROR_CMAP
    assert [t.get_text() for t in ax.get_yticklabels()] == ["1", "2", "4"]
    with pytest.raises(ValueError, match="shape"):
        plots.error_heatmap(ax, v, x=[0, 1], y=[1, 2, 4], xlabel="s", ylabel="f")


def test_smooth_curve_is_a_trailing_moving_average():
    y = np.array([4.0, 2.0, 6.0, np.nan, 8.0, 0.0, 2.0, 4.0, 6.0, 8.0])
    s = plots.smooth_curve(y, 0.3)  # window of 3 points, NaN skipped
    np.testing.assert_allclose(s, [4.0, 3.0, 4.0, 4.0, 7.0, 4.0, 10 / 3, 2.0, 4.0, 6.0])
    np.testing.assert_array_equal(plots.smooth_curve(y[:3], 0.0), y[:3])
    with pytest.raises(ValueError, match="frac"):
        plots.smooth_curve(y, 1.5)


def test_convergence_curves_normalise_mark_the_end_and_shade_the_window():
    fig, ax = plt.subplots()
    steps = np.arange(1, 101)
    plots.convergence_curves(ax, {"a": (steps, 10.0 / steps + 1.0), "b": (steps[:50], np.full(50, 3.0))},
                             converged={"a": True, "b": False}, smooth=0.0, colors={"a": "red"},
                             linestyles={"b": "--"}, legend=True)
    line_a, end_a, line_b, end_b = ax.lines
    np.testing.assert_allclose(line_a.get_ydata(), (10.0 / steps + 1.0) / 1.1)  # divided by its last value
    assert line_a.get_ydata()[-1] == 1.0 and line_b.get_linestyle() == "--"
    assert end_a.get_marker() == "o" and matplotlib.colors.to_rgb(end_a.get_markerfacecolor()) == (1.0, 0.0, 0.0)
    assert end_b.get_marker() == "X"
    assert ax.get_xscale() == "log" and ax.get_ylabel() == "loss ÷ final loss"
    (span,) = ax.patches
    assert span.get_x() == pytest.approx(80.0) and span.get_width() == pytest.approx(20.0)  # last 20 % of 100
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["a", "b"]
    # unknown convergence: an open circle
    fig2, ax2 = plt.subplots()
    plots.convergence_curves(ax2, {"c": (steps, steps * 1.0)}, window=None)
    assert ax2.lines[1].get_markerfacecolor() == "white" and not ax2.patches
    with pytest.raises(ValueError, match="steps but"):
        plots.convergence_curves(ax2, {"d": (steps, steps[:5])})


def test_log_unit_label_reads_the_scale_from_the_function():
    from specvae import spectral

    assert plots.log_unit_label(spectral.log_magnitude) == "ln |F|"
    ln_f = lambda x: torch.log(torch.fft.fft2(x).abs() + 1e-12)  # noqa: E731
    assert plots.log_unit_label(lambda x: 2 * ln_f(x)) == "ln |F|² (log power)"
    assert plots.log_unit_label(lambda x: 10 * torch.log10(torch.fft.fft2(x).abs() ** 2)) == "power (dB)"
    assert plots.log_unit_label(lambda x: 20 * ln_f(x)) == "20 ln |F|"
    assert plots.log_unit_label(lambda x: 3 * ln_f(x)) == f"log scale ({3 * np.log(2):.3g} per doubling of amplitude)"


def test_radial_spectra_line_styles():
    fig, ax = plt.subplots()
    f = np.linspace(0, 0.5, 5)
    plots.radial_spectra(ax, {"a": (f, f, None), "b": (f, f, None)}, linestyles={"b": ":"})
    assert [ln.get_linestyle() for ln in ax.lines] == ["-", ":"]


def test_error_heatmap_log_scale():
    from matplotlib.colors import LogNorm

    v = np.array([[1.0, 1e-2, 1e-8], [0.5, 0.0, 1e-4]])
    fig, ax = plt.subplots()
    plots.error_heatmap(ax, v, x=[0, 1, 2], y=[1, 2], xlabel="s", ylabel="f", log=True, vmax=1.0)
    norm = ax.images[-1].norm
    # vmin=0 (the default) on a log scale means "the smallest positive value"
    assert isinstance(norm, LogNorm) and norm.vmin == pytest.approx(1e-8) and norm.vmax == 1.0
    # equal ratios get equal colour steps: 1e-8 -> 0, 1e-4 -> 1/2, 1 -> 1
    assert norm(1e-4) == pytest.approx(0.5) and norm(1.0) == pytest.approx(1.0)
    assert len(fig.axes) == 2
    fig, ax = plt.subplots()
    plots.error_heatmap(ax, v, x=[0, 1, 2], y=[1, 2], xlabel="s", ylabel="f", log=True, vmin=1e-3,
                        colorbar=False)
    assert ax.images[-1].norm.vmin == 1e-3 and len(fig.axes) == 1
    with pytest.raises(ValueError, match="vmin > 0"):
        plots.error_heatmap(ax, v, x=[0, 1, 2], y=[1, 2], xlabel="s", ylabel="f", log=True, vmin=-1.0)

"""Figure helpers shared by every chapter of the book, on matplotlib + seaborn.

One look across the book:

- :data:`FREQ_CMAP` (``"magma"``) is the one sequential colour map for every frequency map (centred
  log-magnitude spectra) and every heat map of errors; :data:`PALETTE` (seaborn ``"colorblind"``) is the one
  categorical palette for lines (methods, losses, up-sampling kinds).
- Frequency axes are always labelled in **cycles/pixel** (Nyquist = 0.5 along an axis; the corners of a 2-D
  spectrum reach ``sqrt(0.5) = 0.71``). Log spectra say their unit: radial profiles in **dB** of power
  (``10 log10 |F|^2``, :data:`POWER_LABEL`), frequency maps in ``ln|F|`` or dB (:data:`MAP_LABELS`).
- Every helper draws into an ``Axes`` it is given (or makes a figure when told to) and returns that ``Axes``
  (or the ``Figure``), so a chapter can compose panels freely and tests can inspect what was drawn.

Spectra are computed with :mod:`specvae.spectral` (imported on first use), so the figures show exactly the
quantities the losses and metrics use.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

__all__ = [
    "FREQ_CMAP",
    "ERROR_CMAP",
    "PALETTE",
    "FREQ_LABEL",
    "POWER_LABEL",
    "MAP_LABELS",
    "set_style",
    "palette",
    "frequency_map",
    "frequency_maps",
    "radial_spectra",
    "image_grid",
    "loss_curves",
    "convergence_curves",
    "smooth_curve",
    "log_unit_label",
    "error_heatmap",
]

#: the sequential colour map of every frequency map in the book
FREQ_CMAP = "magma"
#: the sequential colour map of every error heat map (the same map, so "bright = more" reads the same)
ERROR_CMAP = FREQ_CMAP
#: the categorical palette of every line plot in the book
PALETTE = "colorblind"
#: axis label of a radial frequency axis
FREQ_LABEL = "spatial frequency (cycles/pixel)"
#: axis label of a log power axis: ``specvae.spectral.radial_profile``'s default units, 10 log10 of power
POWER_LABEL = "power (dB)"
#: colour-bar label of a frequency map in each of its units (see :func:`frequency_map`)
MAP_LABELS: dict[str, str] = {"ln": "ln|F|", "db": "power (dB)"}


_DB_PER_LN_MAGNITUDE = 20.0 / np.log(10.0)  # 10 log10 |F|^2 = (20 / ln 10) ln|F|


def set_style(context: str = "notebook", font_scale: float = 1.0) -> None:
    """Apply the book's seaborn theme (white grid, :data:`PALETTE`, readable sizes) to matplotlib.

    Call once at the top of a chapter. ``context`` is a seaborn context ("paper", "notebook", "talk").
    """
    sns.set_theme(context=context, style="whitegrid", palette=PALETTE, font_scale=font_scale)
    plt.rcParams.update(
        {
            "figure.dpi": 100,
            "savefig.dpi": 150,
            "image.cmap": FREQ_CMAP,
            "axes.titlesize": "medium",
            "figure.constrained_layout.use": True,
        }
    )


def palette(n: int) -> list[tuple[float, float, float]]:
    """The first ``n`` colours of the book's categorical palette (cycled when ``n`` exceeds its length)."""
    return list(sns.color_palette(PALETTE, n))


def _as_numpy(x: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().float().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def _as_image_batch(img: Any) -> torch.Tensor:
    """(H,W) | (C,H,W) | (N,C,H,W) tensor/array -> float32 (N,C,H,W)."""
    t = img if isinstance(img, torch.Tensor) else torch.as_tensor(np.asarray(img))
    t = t.detach().float().cpu()
    if t.ndim == 2:
        t = t[None, None]
    elif t.ndim == 3:
        t = t[None]
    if t.ndim != 4:
        raise ValueError(
            f"expected an image of shape (H, W), (C, H, W) or (N, C, H, W); got shape {tuple(t.shape)}"
        )
    if t.shape[1] not in (1, 3):
        raise ValueError(f"expected 1 or 3 channels in dim 1; got shape {tuple(t.shape)} (is it channels-last?)")
    return t


def _freq_extent(h: int, w: int) -> tuple[float, float, float, float]:
    """imshow extent so that pixel centres of a centred (fftshift) spectrum sit at their frequencies."""
    fx = np.fft.fftshift(np.fft.fftfreq(w))
    fy = np.fft.fftshift(np.fft.fftfreq(h))
    dx = 1.0 / w
    dy = 1.0 / h
    # origin="lower": y grows upwards
    return (fx[0] - dx / 2, fx[-1] + dx / 2, fy[0] - dy / 2, fy[-1] + dy / 2)


def frequency_map(
    ax: Axes,
    img: Any,
    *,
    spectrum: bool = False,
    title: str | None = None,
    colorbar: bool = True,
    vmin: float | None = None,
    vmax: float | None = None,
    cmap: str = FREQ_CMAP,
    units: str = "ln",
) -> Axes:
    """Draw the centred log spectrum of an image, ``ln|F(u, v)|`` or its power in dB, axes in cycles/pixel.

    Args:
        ax: the axes to draw into.
        img: an image in [0, 1], ``(H, W)``, ``(C, H, W)`` or ``(N, C, H, W)`` (tensor or array). Colour
            images are converted to gray (ITU-R 601 luma, :func:`specvae.spectral.to_gray`); a batch shows the
            mean log spectrum over its images (with :mod:`specvae.spectral`'s 8-bit noise floor). With
            ``spectrum=True``, ``img`` is already a centred 2-D log map ``(H, W)`` in ``units`` (e.g. an average
            computed elsewhere) and is drawn as is.
        spectrum: see ``img``.
        title: axes title.
        colorbar: add a colour bar labelled with the unit (:data:`MAP_LABELS`).
        vmin, vmax: colour limits (pass the same to several maps to compare them, or use
            :func:`frequency_maps`, which shares them and one colour bar).
        cmap: colour map; keep the default :data:`FREQ_CMAP` so maps agree across the book.
        units: ``"ln"`` (default): ``ln|F|`` (:func:`specvae.spectral.log_magnitude`); ``"db"``: power in
            decibels, ``10 log10(|F|^2 + floor^2)`` (= ``20 / ln 10`` = 8.69 times ``ln|F|``). With
            ``spectrum=True`` it only names the unit of the given map.

    Returns:
        ``ax``; the drawn image is ``ax.images[-1]`` and its array is the plotted map.
    """
    if units not in MAP_LABELS:
        raise ValueError(f"units must be one of {sorted(MAP_LABELS)} (ln|F| or dB of power), got {units!r}")
    if spectrum:
        m = _as_numpy(img)
        if m.ndim != 2:
            raise ValueError(f"with spectrum=True, img must be a 2-D (H, W) map; got shape {m.shape}")
    else:
        from specvae import spectral

        x = _as_image_batch(img)
        if x.shape[1] == 3:
            x = spectral.to_gray(x)
        m = spectral.log_magnitude(x, scale=_DB_PER_LN_MAGNITUDE if units == "db" else 1.0).mean(dim=(0, 1)).numpy()
    h, w = m.shape
    im = ax.imshow(m, cmap=cmap, origin="lower", extent=_freq_extent(h, w), vmin=vmin, vmax=vmax,
                   interpolation="nearest")
    ax.set_xlabel("$f_x$ (cycles/pixel)")
    ax.set_ylabel("$f_y$ (cycles/pixel)")
    ax.grid(False)
    if title is not None:
        ax.set_title(title)
    if colorbar:
        cb = ax.figure.colorbar(im, ax=ax, shrink=0.8)
        cb.set_label(MAP_LABELS[units])
    return ax


def frequency_maps(
    axes: Sequence[Axes],
    maps: Sequence[Any],
    *,
    titles: Sequence[str] | None = None,
    units: str = "ln",
    vmin: float | None = None,
    vmax: float | None = None,
) -> Any:
    """Several precomputed centred log maps ``(H, W)`` side by side on **one** colour range with one colour bar.

    The range is ``[min, max]`` over all maps unless ``vmin``/``vmax`` are given, so equal colours mean equal
    values across the panels (use it whenever maps are compared). Each map is drawn by :func:`frequency_map`
    with ``spectrum=True``; the colour bar, labelled with ``units`` (:data:`MAP_LABELS`), spans all ``axes``.

    Returns:
        the colour bar (its ``mappable`` holds the shared limits).
    """
    axes = list(np.ravel(axes))
    if len(axes) != len(maps) or not maps:
        raise ValueError(f"need one axes per map; got {len(axes)} axes and {len(maps)} maps")
    arrs = [_as_numpy(m) for m in maps]
    lo = min(float(np.nanmin(a)) for a in arrs) if vmin is None else vmin
    hi = max(float(np.nanmax(a)) for a in arrs) if vmax is None else vmax
    for i, (ax, a) in enumerate(zip(axes, arrs)):
        frequency_map(ax, a, spectrum=True, title=None if titles is None else titles[i], colorbar=False,
                      vmin=lo, vmax=hi, units=units)
        if i:
            ax.set_ylabel("")
    cb = axes[0].figure.colorbar(axes[-1].images[-1], ax=axes, shrink=0.8)
    cb.set_label(MAP_LABELS[units])
    return cb


def radial_spectra(
    ax: Axes,
    profiles: Mapping[str, tuple[Any, Any, Any]],
    *,
    ylabel: str = POWER_LABEL,
    xlabel: str = FREQ_LABEL,
    logx: bool = False,
    title: str | None = None,
    band: bool = True,
    legend: bool = True,
    colors: Mapping[str, Any] | None = None,
    linestyles: Mapping[str, str] | None = None,
) -> Axes:
    """Draw azimuthally integrated spectra: one line (mean) and a shaded ±1 std band per entry.

    Args:
        ax: the axes to draw into.
        profiles: ``{label: (freqs, mean, std)}`` with 1-D arrays of equal length; ``freqs`` in cycles/pixel
            (e.g. :func:`specvae.spectral.frequency_axis`), ``mean``/``std`` the profile across images
            (``std`` may be None for no band). Lines keep the dict's order and the book's palette.
        ylabel, xlabel: axis labels (defaults: "power (dB)", the unit of
            :func:`specvae.spectral.radial_profile`'s default, and "spatial frequency (cycles/pixel)").
        logx: logarithmic frequency axis (for power-law plots; the DC bin at 0 is then not shown).
        title: axes title.
        band: draw the ±std bands.
        legend: draw a legend.
        colors: optional ``{label: colour}`` to keep a method's colour fixed across figures.
        linestyles: optional ``{label: matplotlib line style}`` (e.g. ``"--"`` for a control), so that lines
            stay distinguishable without colour.

    Returns:
        ``ax``; ``ax.lines[i]`` holds the i-th profile's mean as drawn.
    """
    if not profiles:
        raise ValueError("profiles is empty: pass {label: (freqs, mean, std)}")
    cols = palette(len(profiles))
    for i, (label, entry) in enumerate(profiles.items()):
        if len(entry) != 3:
            raise ValueError(f"profile {label!r} must be (freqs, mean, std); got {len(entry)} items")
        f, mu, sd = entry
        f, mu = _as_numpy(f).ravel(), _as_numpy(mu).ravel()
        if f.shape != mu.shape:
            raise ValueError(f"profile {label!r}: freqs has {f.size} values but mean has {mu.size}")
        c = (colors or {}).get(label, cols[i])
        ax.plot(f, mu, label=str(label), color=c, lw=1.6, ls=(linestyles or {}).get(label, "-"))
        if band and sd is not None:
            s = _as_numpy(sd).ravel()
            if s.shape != mu.shape:
                raise ValueError(f"profile {label!r}: std has {s.size} values but mean has {mu.size}")
            ax.fill_between(f, mu - s, mu + s, color=c, alpha=0.2, lw=0)
    if logx:
        from matplotlib.ticker import FormatStrFormatter, LogLocator, NullFormatter

        ax.set_xscale("log")
        ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(FormatStrFormatter("%g"))
        ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title is not None:
        ax.set_title(title)
    if legend:
        ax.legend(frameon=False, fontsize="small")
    return ax


def image_grid(
    rows: Any,
    *,
    row_labels: Sequence[str] | None = None,
    col_labels: Sequence[str] | None = None,
    ncols: int | None = None,
    cell_size: float = 1.3,
    cmap: str = "gray",
    vmin: float = 0.0,
    vmax: float = 1.0,
    fig: Figure | None = None,
) -> Figure:
    """Show images in a grid: one row per batch (e.g. originals, then reconstructions of each model).

    Args:
        rows: a list of batches ``[(N, C, H, W), ...]`` (one grid row each; a row may also be a list of single
            images ``(C, H, W)`` of different sizes), or one batch
            ``(N, C, H, W)`` laid out in rows of ``ncols`` (default: all in one row). Values in [0, 1];
            gray images are drawn with ``cmap``, values outside [vmin, vmax] are clipped.
        row_labels: one label per row (drawn as the y label of its first image).
        col_labels: one title per column.
        ncols: columns when ``rows`` is a single batch.
        cell_size: inches per image.
        cmap: colour map for 1-channel images.
        vmin, vmax: display range.
        fig: draw into this figure (its contents are cleared) instead of a new one.

    Returns:
        The figure; ``fig.axes`` are the cells in row-major order.
    """
    if isinstance(rows, (torch.Tensor, np.ndarray)):
        batch = _as_image_batch(rows)
        n = batch.shape[0]
        ncols = ncols or n
        grid = [list(batch[i : i + ncols]) for i in range(0, n, ncols)]
    else:
        grid = []
        for r in rows:
            if isinstance(r, (list, tuple)):  # a row of single images, sizes may differ
                grid.append([_as_image_batch(im)[0] for im in r])
            else:
                grid.append(list(_as_image_batch(r)))
        if not grid:
            raise ValueError("rows is empty")
    nrows = len(grid)
    ncols_ = max(len(b) for b in grid)
    if row_labels is not None and len(row_labels) != nrows:
        raise ValueError(f"{len(row_labels)} row labels for {nrows} rows")
    if col_labels is not None and len(col_labels) > ncols_:
        raise ValueError(f"{len(col_labels)} column labels for {ncols_} columns")
    if fig is None:
        fig = plt.figure(figsize=(cell_size * ncols_ + 0.6, cell_size * nrows + 0.3))
    else:
        fig.clf()
    axes = fig.subplots(nrows, ncols_, squeeze=False)
    for r, batch in enumerate(grid):
        for c in range(ncols_):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            ax.grid(False)
            for s in ax.spines.values():
                s.set_visible(False)
            if c >= len(batch):
                ax.set_visible(False)
                continue
            im = batch[c].clamp(vmin, vmax).numpy()
            if im.shape[0] == 1:
                ax.imshow(im[0], cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
            else:
                ax.imshow((im.transpose(1, 2, 0) - vmin) / (vmax - vmin), interpolation="nearest")
            if r == 0 and col_labels is not None and c < len(col_labels):
                ax.set_title(str(col_labels[c]), fontsize="small")
            if c == 0 and row_labels is not None:
                ax.set_ylabel(str(row_labels[r]), fontsize="small")
    return fig


def loss_curves(
    ax: Axes,
    history: Any,
    *,
    keys: Sequence[str] | None = None,
    step_key: str = "step",
    logy: bool = True,
    label_prefix: str = "",
    ylabel: str = "loss",
    title: str | None = None,
    color: Any = None,
    linestyles: Sequence[str] = ("-", "--", ":", "-."),
    ls: str = "-",
) -> Axes:
    """Plot training curves from a ``FitResult.history``-style record.

    Args:
        ax: the axes to draw into.
        history: ``{"step": [...], term: [...], ...}`` (dict of lists/arrays) or a pandas DataFrame with those
            columns.
        keys: the terms to draw (default: every column but ``step_key``).
        step_key: the column of training steps (x axis).
        logy: logarithmic y axis (losses span decades).
        label_prefix: prepended to each line's label (to overlay several runs on one axes).
        ylabel: y label.
        title: axes title.
        color: one colour for all terms of this history (else the palette, one per term); terms then differ by
            line style.
        linestyles: the styles cycled through the terms when ``color`` is given.
        ls: the line style of every term when ``color`` is None (overlay a second run with ``ls="--"``: the
            terms keep their palette colours, the runs differ by style).

    Returns:
        ``ax``; one line per term.
    """
    if hasattr(history, "to_dict") and hasattr(history, "columns"):
        history = {c: history[c].to_numpy() for c in history.columns}
    if step_key not in history:
        raise KeyError(f"history has no {step_key!r} column; it has {sorted(history)}")
    steps = _as_numpy(history[step_key]).ravel()
    keys = [k for k in history if k != step_key] if keys is None else list(keys)
    missing = [k for k in keys if k not in history]
    if missing:
        raise KeyError(f"history has no term(s) {missing}; it has {sorted(history)}")
    cols = palette(len(keys))
    for i, k in enumerate(keys):
        y = _as_numpy(history[k]).ravel()
        if y.shape != steps.shape:
            raise ValueError(f"term {k!r} has {y.size} values but {step_key!r} has {steps.size}")
        kw = dict(color=cols[i], ls=ls) if color is None else dict(color=color, ls=linestyles[i % len(linestyles)])
        ax.plot(steps, y, label=f"{label_prefix}{k}", lw=1.4, **kw)
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel("training step")
    ax.set_ylabel(ylabel)
    if title is not None:
        ax.set_title(title)
    ax.legend(frameon=False, fontsize="small")
    return ax


def smooth_curve(y: Any, frac: float = 0.05) -> np.ndarray:
    """Trailing moving average of ``y`` over a window of ``frac`` of its length (at least 1 point).

    Point ``i`` is the mean of ``y[max(0, i - w + 1) : i + 1]`` with ``w = max(1, round(frac * len(y)))``, so the
    curve keeps its length and never looks ahead (it shows what a rule applied at step ``i`` could see).
    NaNs are skipped in each window.
    """
    v = _as_numpy(y).ravel().astype(np.float64)
    if not 0.0 <= frac <= 1.0:
        raise ValueError(f"frac must be in [0, 1], got {frac}")
    w = max(1, int(round(frac * v.size)))
    ok = ~np.isnan(v)
    c = np.concatenate([[0.0], np.cumsum(np.where(ok, v, 0.0))])
    n = np.concatenate([[0], np.cumsum(ok)])
    i = np.arange(v.size)
    lo = np.maximum(0, i - w + 1)
    cnt = n[i + 1] - n[lo]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(cnt > 0, (c[i + 1] - c[lo]) / np.maximum(cnt, 1), np.nan)


def convergence_curves(
    ax: Axes,
    curves: Mapping[str, tuple[Any, Any]],
    *,
    converged: Mapping[str, bool | None] | None = None,
    smooth: float = 0.05,
    normalise: bool = True,
    logx: bool = True,
    logy: bool = True,
    window: float | None = 0.2,
    colors: Mapping[str, Any] | None = None,
    linestyles: Mapping[str, str] | None = None,
    title: str | None = None,
    legend: bool = False,
) -> Axes:
    """Training curves drawn to show whether they reached a plateau.

    Each curve is smoothed (:func:`smooth_curve`), optionally divided by its own last smoothed value (so curves
    of losses on different scales share one axis and a plateau is a line approaching 1), and drawn on a
    logarithmic step axis, where a plateau is visible as a flat tail. The end of each curve is marked: a
    filled circle when ``converged[label]`` is true, a cross when false, an open circle when unknown (None or
    absent). With ``window``, the last ``window`` fraction of the longest curve's steps is shaded (the span a
    "change over the last 20 % of steps" rule looks at).

    Args:
        ax: the axes to draw into.
        curves: ``{label: (steps, loss)}`` with 1-D arrays of equal length (steps > 0 for ``logx``).
        converged: ``{label: True | False | None}``.
        smooth: the moving-average window as a fraction of each curve's length (0: raw).
        normalise: divide each curve by its last smoothed value (y label "loss ÷ final loss").
        logx, logy: logarithmic axes.
        window: the shaded final fraction of the steps (None: no shading).
        colors, linestyles: ``{label: colour}`` / ``{label: style}`` (default: the book's palette, solid).
        title: axes title.
        legend: draw a legend on this axes (for a figure-level legend, pass False and collect
            ``ax.get_legend_handles_labels()``).

    Returns:
        ``ax``; ``ax.lines`` holds, per curve, the drawn line and then its end marker.
    """
    if not curves:
        raise ValueError("curves is empty: pass {label: (steps, loss)}")
    cols = palette(len(curves))
    last_step = 0.0
    for i, (label, entry) in enumerate(curves.items()):
        if len(entry) != 2:
            raise ValueError(f"curve {label!r} must be (steps, loss); got {len(entry)} items")
        x, y = _as_numpy(entry[0]).ravel(), _as_numpy(entry[1]).ravel()
        if x.shape != y.shape or x.size == 0:
            raise ValueError(f"curve {label!r}: {x.size} steps but {y.size} loss values")
        ys = smooth_curve(y, smooth) if smooth else y.astype(np.float64)
        if normalise:
            ys = ys / ys[-1]
        c = (colors or {}).get(label, cols[i])
        ax.plot(x, ys, color=c, ls=(linestyles or {}).get(label, "-"), lw=1.4, label=str(label))
        flag = (converged or {}).get(label)
        marker, face = {True: ("o", c), False: ("X", c)}.get(flag, ("o", "white"))
        ax.plot([x[-1]], [ys[-1]], ls="none", marker=marker, ms=7, mec=c, mfc=face, zorder=3)
        last_step = max(last_step, float(x[-1]))
    if window:
        ax.axvspan(last_step * (1 - window), last_step, color="0.85", zorder=0, lw=0)
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel("training step")
    ax.set_ylabel("loss ÷ final loss" if normalise else "loss")
    if title is not None:
        ax.set_title(title)
    if legend:
        ax.legend(frameon=False, fontsize="small")
    return ax


#: label of each known log scale, keyed by its change when the amplitude doubles, divided by ln 2
_LOG_SCALES: tuple[tuple[float, str], ...] = (
    (1.0, "ln |F|"),
    (2.0, "ln |F|² (log power)"),
    (20.0, "20 ln |F|"),
    (20.0 / np.log(10.0), "power (dB)"),
    (1.0 / np.log(10.0), "log₁₀ |F|"),
    (2.0 / np.log(10.0), "log₁₀ |F|²"),
)


def log_unit_label(fn: Any, *, size: int = 8) -> str:
    """The axis label for what a log-spectrum function returns, read from the function itself.

    ``fn`` maps images ``(N, C, H, W)`` to any log-spectral quantity (e.g. :func:`specvae.spectral.log_magnitude`
    or :func:`specvae.spectral.radial_profile`). It is evaluated on two ``size × size`` impulses, of amplitude 1
    and 1/2 (flat spectra ``|F| = a`` at every frequency, far above a noise floor such as
    :func:`specvae.spectral.noise_floor`, 0.009 at 8 × 8); the mean change of its output when the amplitude doubles
    identifies the scale: ``ln 2`` → "ln |F|", ``2 ln 2`` → "ln |F|² (log power)", ``20 ln 2`` → "20 ln |F|",
    ``10 log₁₀ 4 ≈ 6.02`` → "power (dB)", and the base-10 magnitudes. Any other scale gives
    ``"log scale (<change> per doubling of amplitude)"``. So a figure's axis stays true when the toolkit's
    convention changes.
    """
    x = torch.zeros(2, 1, size, size)
    x[0, 0, 0, 0], x[1, 0, 0, 0] = 1.0, 0.5
    with torch.no_grad():
        out = fn(x)
    out = out.detach().double() if isinstance(out, torch.Tensor) else torch.as_tensor(np.asarray(out, float))
    d = float((out[0] - out[1]).mean())
    r = d / float(np.log(2.0))
    for k, label in _LOG_SCALES:
        if abs(r - k) < 2e-3 * k:
            return label
    return f"log scale ({d:.3g} per doubling of amplitude)"


def error_heatmap(
    ax: Axes,
    values: Any,
    *,
    x: Sequence[Any],
    y: Sequence[Any],
    xlabel: str,
    ylabel: str,
    cbar_label: str = "normalised error",
    title: str | None = None,
    vmin: float | None = 0.0,
    vmax: float | None = None,
    max_xticks: int = 8,
    fmt_y: str = "{:g}",
    fmt_x: str = "{:g}",
    log: bool = False,
    colorbar: bool = True,
) -> Axes:
    """A heat map of ``values[i, j]`` (row i ↔ ``y[i]``, column j ↔ ``x[j]``) in :data:`ERROR_CMAP`.

    Used e.g. for "error of each frequency (rows) over training steps (columns)". Row 0 is drawn at the bottom.
    ``log=True`` uses a logarithmic colour scale (errors that span decades, e.g. 1 down to 1e-8); then
    ``vmin`` must be positive or ``None``/0 (= the smallest positive value), and values below it are drawn in
    the lowest colour. Pass the same ``vmin``/``vmax`` to heat maps that are compared. ``colorbar=False``
    leaves the colour bar to the caller (e.g. one bar for a row of maps).

    Returns:
        ``ax``; the drawn image is ``ax.images[-1]``.
    """
    v = _as_numpy(values)
    if v.ndim != 2 or v.shape != (len(y), len(x)):
        raise ValueError(f"values must have shape (len(y), len(x)) = ({len(y)}, {len(x)}); got {v.shape}")
    norm = None
    if log:
        from matplotlib.colors import LogNorm

        positive = v[np.isfinite(v) & (v > 0)]
        lo = vmin if vmin else (float(positive.min()) if positive.size else 1e-12)
        if lo <= 0:
            raise ValueError(f"log=True needs vmin > 0 (or None for the smallest positive value); got {vmin}")
        hi = vmax if vmax is not None else max(float(positive.max()) if positive.size else 1.0, lo * 10)
        norm = LogNorm(vmin=lo, vmax=hi, clip=True)
        vmin = vmax = None
    im = ax.imshow(v, cmap=ERROR_CMAP, origin="lower", aspect="auto", vmin=vmin, vmax=vmax, norm=norm,
                   interpolation="nearest")
    xt = np.unique(np.linspace(0, len(x) - 1, min(max_xticks, len(x))).round().astype(int))
    ax.set_xticks(xt, [fmt_x.format(x[i]) for i in xt])
    yt = np.unique(np.linspace(0, len(y) - 1, min(max_xticks, len(y))).round().astype(int))
    ax.set_yticks(yt, [fmt_y.format(y[i]) for i in yt])
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(False)
    if title is not None:
        ax.set_title(title)
    if colorbar:
        cb = ax.figure.colorbar(im, ax=ax)
        cb.set_label(cbar_label)
    return ax

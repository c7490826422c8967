"""Throughput of the metric networks (rFID's Inception, LPIPS) before and after the evaluation-speed work, and
the measured effect of bf16 on the metric values.

:func:`bench_metrics` measures images per second, **interleaved in one process** (round 1: every variant of a
case, round 2: every variant again, …; the median over rounds is reported) so that all variants see the same
machine load:

=====================  =============================================================================================
case                   variants
=====================  =============================================================================================
``inception/metric``   ``before``: the TorchScript module in fp32, contiguous (the code path rFID used before);
                       ``after-fp32`` / ``after-bf16``: :class:`~specvae.metrics.fid.TFInception` (batch-norm folded,
                       channels_last, fused conv+ReLU) in fp32 / bf16. Forward only, under ``no_grad``.
``lpips-<net>/metric``  ``before``: the former LPIPS forward (fp32, contiguous, one trunk pass over pred and target,
                       separate ReLUs), reproduced here by :func:`_lpips_before` on the same weights;
                       ``after-fp32`` / ``after-bf16``: :class:`~specvae.metrics.LPIPS` with ``precision=``.
``lpips-<net>/loss``    the same variants, forward + backward to the prediction (``reduction="mean"``; the target
                       does not require gradients, as in a training loss). ``after-bf16`` is ``precision="bf16"``
                       (the target's pass in bf16, the prediction's pass and its backward in fp32, the default
                       ``grad_precision``); ``after-bf16-grad`` also runs the prediction's pass in bf16.
=====================  =============================================================================================

Each row also carries the CPU time per image of each variant (``time.process_time``; on a shared machine it
varies less than wall-clock throughput) and the 1-minute load average before and after, to read the numbers by.

:func:`precision_effect` measures what bf16 does to the values: rFID with bf16 vs fp32 features on pairs of real
image sets, and LPIPS (as a metric: the mean distance; as a loss: the gradient's direction) on real image pairs.
It stores its table in ``book/results/bench/metric_precision.json`` and a Markdown table beside it
(``metric_precision.md``), which the book's Metrics page includes.

Run ``python -m specvae.bench.metrics throughput`` or ``… precision`` (``specvae bench --metrics`` calls :func:`main`).
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["bench_metrics", "store_metric_rows", "speed_table", "precision_effect", "precision_table", "main",
           "MetricBenchConfig", "CASES", "PAIRS"]

#: The cases :func:`bench_metrics` knows (``metric/mode``).
CASES = ("inception/metric", "lpips-alex/metric", "lpips-alex/loss", "lpips-vgg/metric", "lpips-vgg/loss")

#: The real image-set pairs :func:`precision_effect` measures by default: a clear blur (σ = 1 px), a slight one
#: (σ = 0.5 px: a small distance, the hard case for a relative bound) and two samples of the same distribution.
PAIRS = ("faces-vs-blur", "faces-vs-slight-blur", "mnist-train-vs-test")

#: The variants of every case, in the order they are interleaved (``after-bf16-grad``: LPIPS losses only).
VARIANTS = ("before", "after-fp32", "after-bf16", "after-bf16-grad")


@dataclass(frozen=True)
class MetricBenchConfig:
    """What one stored metric benchmark measured (its hash names the file under ``book/results/bench/``; ``cpu``,
    the processor's model name, is part of the key, so a run on another kind of CPU is stored beside this one)."""

    case: str
    batch_size: int
    image_size: int
    rounds: int
    min_seconds: float
    threads: int
    cpu: str


# --------------------------------------------------------------------------------------------- the variants
def _lpips_before(model: torch.nn.Module, pred: Tensor, target: Tensor) -> Tensor:
    """The LPIPS forward as it was before this work (fp32, contiguous, one trunk pass, separate ReLUs), per image.

    ``model`` is an :class:`~specvae.metrics.LPIPS` in fp32 whose trunk was put back in contiguous layout; the
    arithmetic is the former ``LPIPS.forward`` line for line (inputs in [0, 1]).
    """
    with torch.autocast(pred.device.type, enabled=False):
        x, y = 2 * pred.float() - 1, 2 * target.float() - 1
        n = x.shape[0]
        h = (torch.cat([x, y]) - model.shift) / model.scale
        d = 0.0
        for s, w in zip(model.slices, model.lins):
            h = s(h)
            f = h / (h.pow(2).sum(dim=1, keepdim=True).sqrt() + 1e-10)
            d = d + F.conv2d((f[:n] - f[n:]).pow(2), w).mean(dim=(1, 2, 3))
    return d


def _inception_variants() -> dict[str, Callable[[Tensor], Any]]:
    from specvae.metrics.fid import InceptionFeatures

    nets = {"before": InceptionFeatures(precision="fp32", backend="torchscript"),
            "after-fp32": InceptionFeatures(precision="fp32"),
            "after-bf16": InceptionFeatures(precision="bf16")}

    def call(net: torch.nn.Module) -> Callable[[Tensor], Any]:
        def run(x: Tensor) -> Any:
            with torch.no_grad():
                return net(x)
        return run

    return {name: call(net) for name, net in nets.items()}


def _lpips_variants(net: str, mode: str) -> dict[str, Callable[[Tensor, Tensor], Any]]:
    from specvae.metrics.lpips import LPIPS

    before = LPIPS(net, precision="fp32")
    before.slices.to(memory_format=torch.contiguous_format)
    reduction = "mean" if mode == "loss" else "none"
    models = {"after-fp32": LPIPS(net, precision="fp32", reduction=reduction),
              "after-bf16": LPIPS(net, precision="bf16", reduction=reduction)}
    if mode == "loss":
        models["after-bf16-grad"] = LPIPS(net, precision="bf16", grad_precision="bf16", reduction=reduction)

    def run_before(x: Tensor, y: Tensor) -> Any:
        if mode == "metric":
            with torch.no_grad():
                return _lpips_before(before, x, y)
        xr = x.detach().requires_grad_(True)
        _lpips_before(before, xr, y).mean().backward()
        return xr.grad

    def call(model: torch.nn.Module) -> Callable[[Tensor, Tensor], Any]:
        def run(x: Tensor, y: Tensor) -> Any:
            if mode == "metric":
                with torch.no_grad():
                    return model(x, y)
            xr = x.detach().requires_grad_(True)
            model(xr, y).backward()
            return xr.grad
        return run

    return {"before": run_before, **{name: call(m) for name, m in models.items()}}


def _images(batch_size: int, size: int, seed: int = 0) -> tuple[Tensor, Tensor]:
    """A batch of smooth random images and a noisy copy, float in [0, 1] (speed does not depend on content)."""
    g = torch.Generator().manual_seed(seed)
    x = F.interpolate(torch.rand(batch_size, 3, max(size // 4, 1), max(size // 4, 1), generator=g), size=size,
                      mode="bilinear", align_corners=False)
    y = (x + 0.1 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    return x, y


def _measure(fn: Callable[[], Any], batch: int, min_seconds: float) -> tuple[float, float]:
    """Call ``fn`` until ``min_seconds`` have passed (at least once); return (images/s, CPU ms per image)."""
    calls, t0, c0 = 0, time.perf_counter(), time.process_time()
    while True:
        fn()
        calls += 1
        elapsed = time.perf_counter() - t0
        if elapsed >= min_seconds:
            break
    return calls * batch / elapsed, 1000.0 * (time.process_time() - c0) / (calls * batch)


# ------------------------------------------------------------------------------------------------ the bench
def bench_metrics(
    cases: Sequence[str] = CASES,
    *,
    batch_size: int = 32,
    image_size: int = 64,
    rounds: int = 3,
    min_seconds: float = 1.0,
    threads: int | None = None,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Throughput of each metric network before/after, interleaved in one process; one row per case.

    Args:
        cases: some of :data:`CASES` (``"inception/metric"``, ``"lpips-vgg/loss"``, …).
        batch_size: images per call (LPIPS: pairs per call).
        image_size: side of the square RGB input images (Inception resizes them to 299 inside, as rFID does).
        rounds: interleaved rounds; the median over rounds is reported.
        min_seconds: each measurement repeats calls until this much wall time has passed.
        threads: torch threads during the bench (``None``: leave as is); restored afterwards.

    Returns:
        rows with ``case, metric, mode, batch_size, image_size, threads, precision`` (the default precision of the
        metric after this work), per variant ``<variant>_img_s`` (median), ``<variant>_rounds``,
        ``<variant>_cpu_ms_per_img`` (median), ``speedup_fp32`` / ``speedup_bf16`` (/ ``speedup_bf16_grad``:
        after / before, medians), and ``load_1min_before`` / ``load_1min_after``.

    Raises:
        ValueError: an unknown case (the message lists them) or a bad size.
    """
    unknown = [c for c in cases if c not in CASES]
    if unknown:
        raise ValueError(f"unknown metric bench case(s) {unknown}; known: {', '.join(CASES)}")
    for name, value, low in (("batch_size", batch_size, 1), ("image_size", image_size, 32), ("rounds", rounds, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    from specvae.metrics import fid, lpips

    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    rows: list[dict[str, Any]] = []
    try:
        x, y = _images(batch_size, image_size)
        for case in cases:
            metric, mode = case.split("/")
            if metric == "inception":
                fns = {k: (lambda f=f: f(x)) for k, f in _inception_variants().items()}
                default = fid.DEFAULT_PRECISION
            else:
                fns = {k: (lambda f=f: f(x, y)) for k, f in _lpips_variants(metric.split("-")[1], mode).items()}
                default = lpips.DEFAULT_PRECISION
            load0 = os.getloadavg()[0]
            for fn in fns.values():  # warm-up (oneDNN primitive creation, allocator) outside the timed rounds
                fn()
            img_s: dict[str, list[float]] = {k: [] for k in fns}
            cpu: dict[str, list[float]] = {k: [] for k in fns}
            for r in range(rounds):
                for name, fn in fns.items():
                    a, b = _measure(fn, batch_size, min_seconds)
                    img_s[name].append(a)
                    cpu[name].append(b)
            row: dict[str, Any] = {"case": case, "metric": metric, "mode": mode, "batch_size": batch_size,
                                   "image_size": image_size, "threads": torch.get_num_threads(),
                                   "precision": default}
            for name in fns:
                row[f"{name}_img_s"] = statistics.median(img_s[name])
                row[f"{name}_rounds"] = img_s[name]
                row[f"{name}_cpu_ms_per_img"] = statistics.median(cpu[name])
            for name in fns:
                if name != "before":
                    row[f"speedup_{name[len('after-'):].replace('-', '_')}"] = row[f"{name}_img_s"] / row["before_img_s"]
            row["load_1min_before"], row["load_1min_after"] = load0, os.getloadavg()[0]
            if progress:
                print(f"{case:18s} before {row['before_img_s']:7.1f} img/s"
                      + "".join(f" · {n[6:]} {row[f'{n}_img_s']:7.1f} ({row[f'{n}_img_s'] / row['before_img_s']:.2f}×)"
                                for n in fns if n != "before")
                      + f"   load {load0:.1f}→{row['load_1min_after']:.1f}", flush=True)
            rows.append(row)
    finally:
        torch.set_num_threads(previous)
    return rows


def store_metric_rows(rows: Sequence[dict[str, Any]], *, rounds: int, min_seconds: float) -> list[Path]:
    """Save each row under ``book/results/bench/`` (one JSON per case, with provenance); return the paths."""
    from specvae.experiments.provenance import cpu_name
    from specvae.experiments.store import ResultStore

    store = ResultStore("bench")
    paths = []
    for row in rows:
        cfg = MetricBenchConfig(case=row["case"], batch_size=int(row["batch_size"]), image_size=int(row["image_size"]),
                                rounds=rounds, min_seconds=float(min_seconds), threads=int(row["threads"]),
                                cpu=cpu_name())
        metrics = {k: v for k, v in row.items()
                   if (isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v)))
                   or isinstance(v, str)}
        extra = {k: v for k, v in row.items() if k not in metrics}
        paths.append(store.save(cfg, metrics=metrics, extra=extra, device="cpu"))
    return paths


# ------------------------------------------------------------------------------------- the effect of bf16
def _features_cached(name: str, images: Tensor, precision: str, *, batch_size: int, progress: bool,
                     folder: Path) -> np.ndarray:
    """Inception features of ``images`` in ``precision``, computed in chunks saved to ``folder`` (resumable)."""
    from specvae.metrics.fid import inception_features

    digest = hashlib.sha256(images.contiguous().numpy().tobytes()).hexdigest()[:12]
    final = folder / f"{name}-n{images.shape[0]}-{precision}-{digest}.npy"
    if final.is_file():
        return np.load(final)
    folder.mkdir(parents=True, exist_ok=True)
    chunk = 4 * batch_size  # one saved part: a killed or paused run loses at most this much
    parts = []
    for start in range(0, images.shape[0], chunk):
        part = folder / f"{final.stem}.part{start:06d}.npy"
        if part.is_file():
            parts.append(np.load(part))
            continue
        feats = inception_features(images[start:start + chunk], batch_size=batch_size, precision=precision,
                                   progress=progress, desc=f"{name} {precision} {start}+")
        np.save(part, feats.astype(np.float32))
        parts.append(feats.astype(np.float32))
    out = np.concatenate(parts)
    np.save(final, out)
    for part in folder.glob(f"{final.stem}.part*.npy"):
        part.unlink()
    return out


def _blur(images: Tensor, sigma: float) -> Tensor:
    """Gaussian blur of uint8 images (torchvision's kernel, reflect padding), rounded back to uint8."""
    import torchvision.transforms.functional as TF

    out = TF.gaussian_blur(images.float(), kernel_size=2 * math.ceil(3 * sigma) + 1, sigma=sigma)
    return out.round().clamp(0, 255).to(torch.uint8)


def _pairs(n: int, names: Sequence[str]) -> dict[str, tuple[str, Tensor, str, Tensor]]:
    """The real image-set pairs: name → (label A, uint8 images A, label B, uint8 images B)."""
    from specvae.data import load_dataset

    out = {}
    for name in names:
        if name in ("faces-vs-blur", "faces-vs-slight-blur"):
            a = load_dataset("faces", "test", limit=n, progress=False).images
            sigma = 1.0 if name == "faces-vs-blur" else 0.5
            out[name] = ("faces-test", a, f"faces-test-blur{sigma:g}", _blur(a, sigma))
        elif name == "mnist-train-vs-test":
            out[name] = ("mnist-train", load_dataset("mnist", "train", limit=n, progress=False).images,
                         "mnist-test", load_dataset("mnist", "test", limit=n, progress=False).images)
        elif name == "faces-train-vs-test":
            out[name] = ("faces-train", load_dataset("faces", "train", limit=n, progress=False).images,
                         "faces-test", load_dataset("faces", "test", limit=n, progress=False).images)
        else:
            raise ValueError(f"unknown pair {name!r}; known: {', '.join(PAIRS)}, faces-train-vs-test")
    return out


def _lpips_effect(a: Tensor, b: Tensor, net: str, *, batch_size: int = 32) -> dict[str, float]:
    """bf16 vs fp32 LPIPS on real pairs: the mean distance (metric) and the loss gradient (direction and size)."""
    from specvae.metrics.lpips import LPIPS

    fp32, bf16 = LPIPS(net, precision="fp32"), LPIPS(net, precision="bf16")
    bf16_grad = LPIPS(net, precision="bf16", grad_precision="bf16")
    x, y = a.float() / 255, b.float() / 255
    with torch.no_grad():
        d32 = torch.cat([fp32(x[i:i + batch_size], y[i:i + batch_size]) for i in range(0, len(x), batch_size)])
        d16 = torch.cat([bf16(x[i:i + batch_size], y[i:i + batch_size]) for i in range(0, len(x), batch_size)])
    cos: dict[str, list[float]] = {"loss": [], "loss_bf16_grad": []}
    norm: dict[str, list[float]] = {"loss": [], "loss_bf16_grad": []}
    for i in range(0, min(len(x), 4 * batch_size), batch_size):  # the loss: gradients of a few batches
        grads = []
        for m in (fp32, bf16, bf16_grad):
            xr = y[i:i + batch_size].clone().requires_grad_(True)  # the "prediction" is the distorted image
            m(xr, x[i:i + batch_size]).mean().backward()
            grads.append(xr.grad.flatten().double())
        for key, g in (("loss", grads[1]), ("loss_bf16_grad", grads[2])):
            cos[key].append(float(F.cosine_similarity(grads[0], g, dim=0)))
            norm[key].append(float(g.norm() / grads[0].norm()))
    mean32, mean16 = float(d32.mean()), float(d16.mean())
    out = {"lpips_fp32_mean": mean32, "lpips_bf16_mean": mean16,
           "lpips_rel_diff_mean": abs(mean16 - mean32) / mean32,
           "lpips_rel_diff_per_image_max": float(((d16 - d32).abs() / d32.clamp_min(1e-12)).max()),
           "n_pairs": int(len(x)), "n_grad_batches": len(cos["loss"])}
    for key in cos:  # loss: bf16 target pass, fp32 prediction pass (the default); loss_bf16_grad: both in bf16
        out[f"{key}_grad_cosine_min"] = min(cos[key])
        out[f"{key}_grad_norm_ratio_min"], out[f"{key}_grad_norm_ratio_max"] = min(norm[key]), max(norm[key])
    return out


def precision_effect(
    pairs: Sequence[str] = PAIRS,
    *,
    n: int = 2000,
    batch_size: int = 50,
    lpips_pairs: int = 256,
    progress: bool = True,
    save: bool = True,
) -> list[dict[str, Any]]:
    """The effect of bf16 on rFID and LPIPS, measured on real image pairs; one row per (pair, metric).

    rFID rows: ``fid_fp32``, ``fid_bf16``, ``rel_diff = |bf16 − fp32| / fp32``, ``feature_rel_err`` (relative
    L2 error of the bf16 features, all images), ``within_bound`` (``rel_diff <= BF16_FID_BOUND``), both sets in the
    same precision (as :func:`~specvae.metrics.fid.rfid` computes them). LPIPS rows (alex, vgg; the first
    ``lpips_pairs`` pairs of images): see :func:`_lpips_effect`, with ``within_bound`` for the mean distance
    (``BF16_LPIPS_BOUND``) and ``loss_within_bound`` / ``loss_bf16_grad_within_bound`` for the loss gradient
    (cosine ≥ ``BF16_GRAD_COSINE``) with the prediction's pass in fp32 / in bf16. Features are cached in chunks under
    ``cache_dir()/bench_features`` so a long measurement resumes. With ``save``, the rows go to
    ``book/results/bench/metric_precision.json`` (with provenance) and a Markdown table to ``metric_precision.md``.
    """
    from specvae.metrics.fid import BF16_FID_BOUND, frechet_distance
    from specvae.metrics.lpips import BF16_GRAD_COSINE, BF16_LPIPS_BOUND
    from specvae.paths import cache_dir

    folder = cache_dir() / "bench_features"
    rows: list[dict[str, Any]] = []
    for pair, (la, a, lb, b) in _pairs(n, pairs).items():
        feats = {(lab, p): _features_cached(lab, imgs, p, batch_size=batch_size, progress=progress, folder=folder)
                 for lab, imgs in ((la, a), (lb, b)) for p in ("fp32", "bf16")}
        fid32 = frechet_distance(feats[la, "fp32"].astype(np.float64), feats[lb, "fp32"].astype(np.float64))
        fid16 = frechet_distance(feats[la, "bf16"].astype(np.float64), feats[lb, "bf16"].astype(np.float64))
        err = [float(np.linalg.norm(feats[lab, "bf16"] - feats[lab, "fp32"]) / np.linalg.norm(feats[lab, "fp32"]))
               for lab in (la, lb)]
        rows.append({"pair": pair, "metric": "rfid", "set_a": la, "set_b": lb, "n": int(a.shape[0]),
                     "image_shape": list(a.shape[1:]), "fid_fp32": fid32, "fid_bf16": fid16,
                     "rel_diff": abs(fid16 - fid32) / fid32, "feature_rel_err": max(err),
                     "bound": BF16_FID_BOUND, "within_bound": abs(fid16 - fid32) / fid32 <= BF16_FID_BOUND})
        k = min(lpips_pairs, a.shape[0], b.shape[0])
        for net in ("alex", "vgg"):
            if progress:
                print(f"LPIPS-{net} bf16 vs fp32 on {k} pairs of {pair}", flush=True)
            eff = _lpips_effect(a[:k], b[:k], net)
            rows.append({"pair": pair, "metric": f"lpips-{net}", "set_a": la, "set_b": lb, **eff,
                         "bound": BF16_LPIPS_BOUND, "grad_cosine_bound": BF16_GRAD_COSINE,
                         "within_bound": eff["lpips_rel_diff_mean"] <= BF16_LPIPS_BOUND,
                         "loss_within_bound": eff["loss_grad_cosine_min"] >= BF16_GRAD_COSINE,
                         "loss_bf16_grad_within_bound": eff["loss_bf16_grad_grad_cosine_min"] >= BF16_GRAD_COSINE})
        if progress:
            print(f"{pair}: FID fp32 {fid32:.3f}, bf16 {fid16:.3f} ({100 * rows[-3]['rel_diff']:.3f} %)", flush=True)
    if save:
        _save_precision(rows, n=n)
    return rows


def _save_precision(rows: list[dict[str, Any]], *, n: int) -> Path:
    from specvae.experiments.atomic import atomic_write_text
    from specvae.experiments.provenance import provenance
    from specvae.paths import results_root

    folder = results_root() / "bench"
    path = folder / "metric_precision.json"
    atomic_write_text(path, json.dumps({"n": n, "rows": rows, "provenance": provenance("cpu")}, indent=1) + "\n")
    atomic_write_text(folder / "metric_precision.md", precision_table(rows))
    return path


def precision_table(rows: Sequence[dict[str, Any]]) -> str:
    """A Markdown table of :func:`precision_effect`'s rows (what the book's Metrics page includes)."""
    lines = ["| pair | metric | fp32 | bf16 | relative change | bound | other |",
             "|---|---|---:|---:|---:|---:|---|"]
    for r in rows:
        if r["metric"] == "rfid":
            lines.append(f"| {r['set_a']} vs {r['set_b']} ({r['n']} each) | rFID | {r['fid_fp32']:.3f} | "
                         f"{r['fid_bf16']:.3f} | {100 * r['rel_diff']:.3f} % | {100 * r['bound']:.1f} % | "
                         f"features: {100 * r['feature_rel_err']:.2f} % relative L2 error |")
        else:
            lines.append(f"| {r['set_a']} vs {r['set_b']} ({r['n_pairs']} pairs) | {r['metric'].upper()} (mean) | "
                         f"{r['lpips_fp32_mean']:.4f} | {r['lpips_bf16_mean']:.4f} | "
                         f"{100 * r['lpips_rel_diff_mean']:.3f} % | {100 * r['bound']:.1f} % | "
                         f"per image ≤ {100 * r['lpips_rel_diff_per_image_max']:.2f} % |")
            lines.append(f"| {r['set_a']} vs {r['set_b']} | {r['metric'].upper()} loss gradient | | | cosine ≥ "
                         f"{r['loss_grad_cosine_min']:.4f} | cosine ≥ {r['grad_cosine_bound']:g} | backward in bf16 too: "
                         f"cosine ≥ {r['loss_bf16_grad_grad_cosine_min']:.4f}, norm ratio "
                         f"{r['loss_bf16_grad_grad_norm_ratio_min']:.3f}–{r['loss_bf16_grad_grad_norm_ratio_max']:.3f} |")
    return "\n".join(lines) + "\n"


def speed_table(rows: Sequence[dict[str, Any]], cpu: str | None = None) -> str:
    """A Markdown table of :func:`bench_metrics`' rows, one line per variant (what the book's Metrics page includes).

    ``cpu``: the processor the rows were measured on (default: this machine's, :func:`cpu_name`), named under the
    table.
    """
    from specvae.experiments.provenance import cpu_name

    what = {"metric": "forward", "loss": "forward + backward"}
    label = {"before": "before", "after-fp32": "fp32", "after-bf16": "bf16",
             "after-bf16-grad": "bf16, backward in bf16 too"}
    lines = ["| network | pass | variant | img/s | speed-up | CPU ms/img | load |", "|---|---|---|---:|---:|---:|---|"]
    for r in rows:
        name = "Inception (rFID)" if r["metric"] == "inception" else f"LPIPS-{r['metric'].split('-')[1].upper()}"
        for v in VARIANTS:
            if f"{v}_img_s" not in r:
                continue
            lines.append(f"| {name} | {what[r['mode']]} | {label[v]} | {r[f'{v}_img_s']:.1f} | "
                         f"{r[f'{v}_img_s'] / r['before_img_s']:.2f}× | {r[f'{v}_cpu_ms_per_img']:.0f} | "
                         f"{r['load_1min_before']:.1f}–{r['load_1min_after']:.1f} |")
    first = rows[0] if rows else {}
    lines.append("")
    lines.append(f"Batches of {first.get('batch_size', '?')} images of {first.get('image_size', '?')}×"
                 f"{first.get('image_size', '?')} px, {first.get('threads', '?')} torch thread(s) on "
                 f"{cpu or cpu_name()}; the median of the interleaved rounds; load: the 1-minute load average "
                 "before–after.")
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------------------------------- main
def main(threads: int | None = None, *, cases: Sequence[str] = CASES, rounds: int = 3, min_seconds: float = 1.0,
         batch_size: int = 32, image_size: int = 64) -> list[dict[str, Any]]:
    """``specvae bench --metrics``: measure every case, store the rows under ``book/results/bench/``, print them."""
    rows = bench_metrics(cases, batch_size=batch_size, image_size=image_size, rounds=rounds,
                         min_seconds=min_seconds, threads=threads)
    paths = store_metric_rows(rows, rounds=rounds, min_seconds=min_seconds)
    if paths and set(cases) == set(CASES):
        from specvae.experiments.atomic import atomic_write_text

        atomic_write_text(paths[0].parent / "metric_speed.md", speed_table(rows))
    print(f"stored {len(paths)} metric result(s) under {paths[0].parent if paths else 'book/results/bench'}")
    return rows


if __name__ == "__main__":  # pragma: no cover - a command-line entry for the measurements
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=("throughput", "precision"))
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--case", action="append", default=None, help=f"one of {', '.join(CASES)} (repeatable)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--n", type=int, default=2000, help="images per set (precision)")
    parser.add_argument("--pair", action="append", default=None,
                        help=f"{', '.join(PAIRS)}, faces-train-vs-test (precision; repeatable)")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if args.what == "throughput":
        main(args.threads, cases=args.case or CASES, rounds=args.rounds)
    else:
        precision_effect(args.pair or PAIRS, n=args.n)

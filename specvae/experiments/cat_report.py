"""Chapter 3's tables, curves, sample grid and reading, computed from the stored runs of
:mod:`specvae.experiments.cat` (kept apart from the run code, so editing a table does not make runs stale)."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from specvae.experiments.store import said_converged

__all__ = ["ATTRIBUTE_LABELS", "shapes_table", "real_table", "curve_frame", "tokenizer_table", "run_note",
           "sample_grid", "reading", "compare_models", "tokenizer_ceiling"]

ATTRIBUTE_LABELS: dict[str, str] = {
    "fid": "FID ↓", "acc_colour": "colour", "acc_kind": "kind", "acc_size": "size", "acc_position": "position",
    "acc_count": "count", "binding": "binding", "acc_all_seen": "all right (seen pairs)",
    "acc_all_held_out": "all right (held-out pairs)", "acc_all": "all right",
}
_MODEL = {"cat": "CAT", "baseline": "Baseline"}
_DATASET = {"shapes": "Captioned Shapes", "mnist": "MNIST", "cifar10": "CIFAR-10 (subset)"}


def _fmt(mean: float, std: float, digits: int = 3) -> str:
    if not np.isfinite(mean):
        return "—"
    return f"{mean:.{digits}g}" if not np.isfinite(std) else f"{mean:.{digits}g} ± {std:.2g}"


def _converged_label(values: Sequence[Any]) -> str:
    vals = [v for v in values]
    if any(v is None or (isinstance(v, float) and np.isnan(v)) for v in vals):
        return "no rule"
    n_ok = sum(bool(v) for v in vals)
    return "yes" if n_ok == len(vals) else f"NOT CONVERGED ({len(vals) - n_ok} of {len(vals)})"


def shapes_table(frame) -> Any:
    """Captioned Shapes, CAT vs baseline: each metric as mean ± std over seeds (default guidance), with the number
    of seeds and whether every run converged."""
    import pandas as pd

    f = frame[frame["dataset"] == "shapes"]
    rows = []
    for model, g in f.groupby("model", sort=False):
        row = {"model": _MODEL.get(model, model), "seeds": len(g)}
        for key, label in ATTRIBUTE_LABELS.items():
            if key == "acc_all" or key not in g:
                continue
            v = g[key].astype(float)
            row[label] = _fmt(float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else float("nan"))
        row["converged"] = _converged_label(list(g["converged"]) if "converged" in g else [None])
        rows.append(row)
    return pd.DataFrame(rows).set_index("model")


def real_table(frame) -> Any:
    """MNIST and CIFAR-10 (class-name captions): class accuracy of generated images, the reader's own test
    accuracy, FID against real test images, convergence."""
    import pandas as pd

    f = frame[frame["dataset"] != "shapes"]
    rows = []
    for (ds, model), g in f.groupby(["dataset", "model"], sort=False):
        rows.append({"data set": _DATASET.get(ds, ds),
                     "model": _MODEL.get(model, model),
                     "class accuracy of samples": _fmt(float(g["class_acc"].mean()), float("nan")),
                     "reader's test accuracy": _fmt(float(g["classifier_test_acc"].mean()), float("nan")),
                     "FID ↓": _fmt(float(g["fid"].mean()) if "fid" in g else float("nan"), float("nan")),
                     "converged": _converged_label(list(g["converged"]))})
    return pd.DataFrame(rows).set_index(["data set", "model"])


def curve_frame(frame, metrics: Sequence[str] = ("acc_all", "binding", "acc_all_held_out", "class_acc", "fid")):
    """Long table ``dataset, model, seed, guidance, metric, value`` from the ``<metric>@<scale>`` entries."""
    import pandas as pd

    rows = []
    for _, r in frame.iterrows():
        for col in frame.columns:
            if "@" not in col:
                continue
            name, scale = col.rsplit("@", 1)
            if name in metrics and np.isfinite(float(r[col])):
                rows.append({"dataset": r["dataset"], "model": _MODEL.get(r["model"], r["model"]), "seed": r["seed"],
                             "guidance": float(scale), "metric": name, "value": float(r[col])})
    return pd.DataFrame(rows)


def tokenizer_table(frame) -> Any:
    """The tokenizers: PSNR, codebook use, (Captioned Shapes) the parser's accuracy on real test images and on
    their reconstructions, training steps and whether the convergence rule was met ("not recorded" for a
    tokenizer loaded from its stored copy without its training checkpoint)."""
    import pandas as pd

    rows = []
    for _, r in frame.iterrows():
        row = {"data set": r["dataset"], "PSNR (dB)": f"{r['psnr']:.2f}",
               "codes used": f"{int(r['codebook_used'])} of {int(r['codebook_size'])}",
               "perplexity": f"{r['codebook_perplexity']:.0f}"}
        parsed = "parser_real_acc_all" in r and np.isfinite(float(r.get("parser_real_acc_all", np.nan)))
        row["parser, real images"] = f"{r['parser_real_acc_all']:.3f}" if parsed else "—"
        row["parser, reconstructions"] = f"{r['parser_recon_acc_all']:.3f}" if parsed else "—"
        steps = r.get("steps_done", np.nan)
        row["steps"] = f"{int(steps):,}" if steps is not None and np.isfinite(float(steps)) else "—"
        conv = r.get("converged", None)
        row["converged"] = ("not recorded" if conv is None or (isinstance(conv, float) and np.isnan(conv))
                            else "yes" if bool(conv) else "NOT CONVERGED")
        rows.append(row)
    return pd.DataFrame(rows).set_index("data set")


def _tokenizer_minutes(tok_frame) -> float:
    """Minutes the tokenizers took: their training (``train_wall_s``, read from the training checkpoint, when
    recorded) plus the run that measured them (``wall_time_s``)."""
    train = tok_frame["train_wall_s"].astype(float).fillna(0.0).sum() if "train_wall_s" in tok_frame else 0.0
    return float((train + tok_frame["wall_time_s"].astype(float).sum()) / 60)


def _n_converged(frame) -> int:
    """How many rows of ``frame`` say ``converged`` (None / NaN / missing: not counted)."""
    return int(sum(said_converged(v) for v in (frame["converged"] if "converged" in frame else [])))


def run_note(tok_frame, frame, sizes: Any, preset: str) -> str:
    """What was run: runs, sizes, wall time and convergence, as Markdown."""
    n_conv = _n_converged(frame)
    lines = [
        f"**Preset `{preset}`**: {len(tok_frame)} tokenizers and {len(frame)} transformer runs "
        f"(width {sizes.width}, {sizes.depth} blocks, {sizes.heads} heads; "
        f"{int(frame['n_params'].min()):,}–{int(frame['n_params'].max()):,} parameters), "
        f"batch {sizes.batch_size}, AdamW lr {sizes.lr:g}, at most {sizes.steps} steps on Captioned Shapes and "
        f"{sizes.real_steps} on MNIST / CIFAR-10; {sizes.seeds} seed(s) on Captioned Shapes.",
        f"Wall time: tokenizers {_tokenizer_minutes(tok_frame):.1f} min (training and evaluation), transformers "
        f"{frame['wall_time_s'].sum() / 60:.1f} min (training and evaluation), on {frame['device'].iloc[0]}.",
        (f"Convergence (the smoothed loss changed by less than {sizes.converge_tol:.0%}, either way, over the last "
         f"20 % of steps; the tokenizers watch their reconstruction term): {n_conv} of {len(frame)} transformer runs "
         f"and {_n_converged(tok_frame)} of {len(tok_frame)} tokenizers converged; the others are flagged in every "
         "table." if sizes.converge_tol else
         "Convergence: not checked at this preset (every run trains for its fixed number of steps)."),
    ]
    return "\n\n".join(lines)


def sample_grid(images_cat: np.ndarray, images_base: np.ndarray, captions: Sequence[str], per_caption: int,
                held_out: Sequence[bool] | None = None, *, columns: int = 4):
    """A figure: per caption (title), a CAT row and a baseline row of ``per_caption`` samples each."""
    import matplotlib.pyplot as plt

    n = len(captions)
    rows = -(-n // columns)
    fig = plt.figure(figsize=(3.1 * columns, 2.2 * rows * max(1, per_caption) ** 0 + 0.6 * rows), layout="constrained")
    sub = fig.subfigures(rows, columns, squeeze=False)
    for i, cap in enumerate(captions):
        sf = sub[i // columns, i % columns]
        mark = " (held out)" if held_out is not None and held_out[i] else ""
        wrapped = "\n".join(_wrap(cap + mark, 34))
        sf.suptitle(wrapped, fontsize=7)
        axes = sf.subplots(2, per_caption, squeeze=False)
        for j in range(per_caption):
            for r, (imgs, name) in enumerate(((images_cat, "CAT"), (images_base, "Baseline"))):
                ax = axes[r, j]
                ax.imshow(imgs[i * per_caption + j].transpose(1, 2, 0), interpolation="nearest")
                ax.set_xticks([])
                ax.set_yticks([])
                if j == 0:
                    ax.set_ylabel(name, fontsize=7)
    for k in range(n, rows * columns):
        sub[k // columns, k % columns].set_visible(False)
    return fig


def _wrap(text: str, width: int) -> list[str]:
    import textwrap

    return textwrap.wrap(text, width) or [""]


def compare_models(frame, key: str, *, lower_better: bool = False) -> dict[str, Any]:
    """CAT against the baseline on one metric of Captioned Shapes: the means over seeds and whether the seeds are
    separated (every seed of one model beyond every seed of the other; needs ≥ 2 seeds each, else ``None``).

    Returns ``{"cat", "baseline", "better" ("cat" | "baseline" | "tie"), "separated" (bool | None)}``."""
    f = frame[frame["dataset"] == "shapes"]
    c = f.loc[f["model"] == "cat", key].astype(float).to_numpy()
    b = f.loc[f["model"] == "baseline", key].astype(float).to_numpy()
    cm, bm = float(np.nanmean(c)), float(np.nanmean(b))
    sign = -1.0 if lower_better else 1.0
    better = "tie" if cm == bm else ("cat" if sign * (cm - bm) > 0 else "baseline")
    separated = None
    if len(c) >= 2 and len(b) >= 2:
        hi, lo = (c, b) if better == "cat" else (b, c)
        separated = bool(np.nanmin(sign * hi) > np.nanmax(sign * lo)) if better != "tie" else False
    return {"cat": cm, "baseline": bm, "better": better, "separated": separated}


def _cmp_text(frame, key: str, label: str, lower_better: bool = False) -> str:
    r = compare_models(frame, key, lower_better=lower_better)
    verdict = {"cat": "CAT better", "baseline": "baseline better", "tie": "equal"}[r["better"]]
    spread = ("one seed: spread unknown" if r["separated"] is None else
              "every seed apart" if r["separated"] else "within the seed spread")
    return f"{label}: CAT {r['cat']:.3g} vs baseline {r['baseline']:.3g} ({verdict}, {spread})"


def tokenizer_ceiling(tok_frame) -> str:
    """One bullet: how often the exact parser reads Captioned Shapes' attributes right on the tokenizer's
    reconstructions of real test images — the ceiling for any generated image (empty without that record)."""
    if tok_frame is None or "parser_recon_acc_all" not in tok_frame:
        return ""
    row = tok_frame[tok_frame["dataset"] == "shapes"]
    if not len(row) or not np.isfinite(float(row["parser_recon_acc_all"].iloc[0])):
        return ""
    r = row.iloc[0]
    parts = ", ".join(f"{name} {r[f'parser_recon_acc_{name}']:.2f}" for name in ("colour", "kind", "size", "position")
                      if f"parser_recon_acc_{name}" in r)
    weakest = min((n for n in ("colour", "kind", "size", "position") if f"parser_recon_acc_{n}" in r),
                  key=lambda n: r[f"parser_recon_acc_{n}"])
    return (f"- **What the tokenizer allows.** The parser reads every attribute right on "
            f"{r['parser_real_acc_all']:.3g} of the real test images but on {r['parser_recon_acc_all']:.3g} of their "
            f"reconstructions by the tokenizer ({parts}; binding {r['parser_recon_binding']:.2f}). A generated "
            f"image is made of the same codes, so these are ceilings: read CAT's and the baseline's accuracies "
            f"against them, not against 1 — {weakest} is where the tokenizer loses most.")


def reading(frame, curves, tokenizers=None) -> str:
    """The chapter's reading as Markdown bullets, written from the numbers (true at any preset). A difference
    between CAT and the baseline is called clear only when every seed of one is beyond every seed of the other
    (:func:`compare_models`); ``tokenizers`` (the tokenizers' frame) adds the reconstruction ceiling."""
    out = []
    ceiling = tokenizer_ceiling(tokenizers)
    if ceiling:
        out.append(ceiling)
    f = frame[frame["dataset"] == "shapes"]
    if len(f):
        m = f.groupby("model")[[c for c in ("acc_all", "binding", "acc_all_held_out", "acc_all_seen", "fid",
                                            "acc_position", "acc_colour", "acc_kind", "acc_size") if c in f]].mean()
        if {"cat", "baseline"} <= set(m.index):
            c, b = m.loc["cat"], m.loc["baseline"]
            out.append("- **Does attending to all tokens help?** On Captioned Shapes at the default guidance, "
                       + "; ".join(_cmp_text(frame, k, lbl) for k, lbl in (("acc_all", "all attributes right"),
                                                                          ("binding", "binding"),
                                                                          ("acc_position", "position"),
                                                                          ("acc_all_held_out", "held-out pairs"))
                                   if k in m)
                       + (f"; {_cmp_text(frame, 'fid', 'FID', lower_better=True)}" if "fid" in m else "") + ".")
            if "acc_all_seen" in m and "acc_all_held_out" in m:
                out.append(f"- **Composition**: images whose caption holds a held-out (colour, kind) pair are all "
                           f"right {c['acc_all_held_out']:.3g} (CAT) / {b['acc_all_held_out']:.3g} (baseline) of the "
                           f"time, against {c['acc_all_seen']:.3g} / {b['acc_all_seen']:.3g} for seen pairs.")
    if curves is not None and len(curves):
        sh = curves[(curves.dataset == "shapes") & (curves.metric == "acc_all")]
        if len(sh):
            best = sh.groupby(["model", "guidance"])["value"].mean().reset_index()
            parts = [f"{mdl} best at scale {g.loc[g['value'].idxmax(), 'guidance']:g} ({g['value'].max():.3g}; "
                     f"scale 0 = unconditional: {g.loc[g['guidance'] == 0, 'value'].mean():.3g})"
                     for mdl, g in best.groupby("model")]
            out.append("- **Guidance** (all attributes right, on the curve's subset): " + "; ".join(parts) + ".")
    r = frame[frame["dataset"] != "shapes"]
    for ds, g in r.groupby("dataset", sort=False):
        acc = g.groupby("model")["class_acc"].mean()
        if {"cat", "baseline"} <= set(acc.index):
            out.append(f"- **{_DATASET.get(ds, ds)}** (class-name captions): class accuracy of samples CAT {acc['cat']:.3g} vs baseline "
                       f"{acc['baseline']:.3g}; the reader itself is right on {g['classifier_test_acc'].iloc[0]:.3g} "
                       "of the real test images, which caps what it can certify.")
    return "\n".join(out) if out else "_No runs to read._"

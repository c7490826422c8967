"""Chapter 4's tables and figures from the stored runs (reporting only: nothing here changes a run's result).

Every function takes the DataFrame of :func:`specvae.experiments.fq_vae.run_all` (one row per run; config fields,
metrics, provenance) and/or the paper's reference data (:func:`specvae.reference.load` ``("feng2025", ...)``).

* :func:`label_runs` adds ``variant`` (Table 2 letter, ``D=…,N=…`` or the extractor) and readable labels;
* :func:`seed_summary` gives mean ± std over seeds and whether every seed converged;
* :func:`paper_cells` gives the paper's known cells: quoted in the prose, or *derived* from quoted cells and the
  quoted relations of ``feng2025_claims.csv`` (each derived cell says how);
* :func:`table1` … :func:`table4` lay out the chapter's tables (ours beside the paper's, best marked, runs that
  stopped before converging flagged ``†``);
* :func:`claims_check` evaluates every quoted relation and ordering on our numbers;
* ``plot_*`` draw Figs. 3-5 and the per-band / spectrum figures;
* :func:`reproduction_notes` lists every open choice and substitute (Markdown).
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Sequence

import numpy as np

from specvae.experiments.fq_vae import (_IMAGE_SIZE, ABLATION, ABLATION_LABELS, EXTRACTOR_LABELS, METHOD_LABELS,
                                         METHODS, PAPER_DATASET, default_dn)
from specvae.experiments.store import said_converged

__all__ = ["METRICS", "LOWER_IS_BETTER", "label_runs", "seed_summary", "paper_cells", "table1", "table2", "table3",
           "table4", "published_baselines", "published_sources", "known_paper_cells", "claims_check", "claims_table",
           "convergence_table", "collapsed_runs", "band_table", "component_effects", "crop_errors", "plot_usage",
           "plot_unit_information", "plot_reconstructions", "plot_band_errors", "plot_spectra", "reproduction_notes",
           "run_note", "reading_table1", "reading_claims", "reading_table2", "reading_table3", "reading_table4",
           "reading_usage",
           "reading_unit_information", "reading_reconstructions", "reading_bands", "reading_convergence",
           "prior_table", "plot_prior_samples", "reading_prior", "quantisation_fit", "reading_quantisation_fit"]

#: our metric column of each of the paper's metric names
METRICS: dict[str, str] = {"SSIM": "ssim_mean", "LPIPS": "lpips_vgg_mean", "rFID": "rfid",
                           "seconds_per_epoch": "seconds_per_epoch", "images_per_s": "infer_images_per_s",
                           "peak_memory_mb": "peak_memory_mb"}
#: reader-facing names of the metric columns of the paper's reference files
METRIC_LABELS: dict[str, str] = {"seconds_per_epoch": "s / epoch", "images_per_s": "images / s",
                                 "peak_memory_mb": "peak MB"}
LOWER_IS_BETTER = {"LPIPS", "rFID", "seconds_per_epoch", "peak_memory_mb"}
DATASET_LABELS = {"mnist": "MNIST", "cifar10": "CIFAR-10 (subset)", "faces": "faces (for CelebA)",
                  "lsun-church": "LSUN Church"}
_FMT = {"SSIM": "{:.4f}", "LPIPS": "{:.4f}", "rFID": "{:.2f}", "seconds_per_epoch": "{:.1f}",
        "images_per_s": "{:.0f}", "peak_memory_mb": "{:.1f}"}


# ------------------------------------------------------------------------------------------------------------
# run labels and seed summaries
# ------------------------------------------------------------------------------------------------------------
def _variant(row) -> str:
    if row["method"] != "fqvae":
        return "A" if row["method"] == "vqvae" else "-"
    if row["extractor"] == "transformer":
        return "transformer"
    if (int(row["D"]), int(row["N"])) != default_dn(row["dataset"]) and row["extractor"] == "fft":
        return f"D={int(row['D'])},N={int(row['N'])}"
    key = (row["extractor"] == "fft", row["codebook_update"] != "none", row["codebook_update"] == "dependency",
           bool(row["gcm"]))
    return next(k for k, v in ABLATION.items() if v == key)


def label_runs(frame):
    """``frame`` with ``variant`` (A-I, ``D=…,N=…``, ``transformer`` or ``-``), ``method_label``, ``dataset_label``,
    ``table1`` (whether the run is one of Table 1's) and ``extractor_label`` (Table 4's conv/transformer/FFT row).
    ``converged`` is the stored verdict of :func:`specvae.train.fit`'s rule (|change| < tolerance, so a run whose
    loss rose is not converged).
    """
    f = frame.copy()
    f["variant"] = [_variant(r) for _, r in f.iterrows()]
    f["method_label"] = f["method"].map(METHOD_LABELS)
    f["dataset_label"] = f["dataset"].map(DATASET_LABELS)
    f["table1"] = (f["method"] != "fqvae") | (f["variant"] == "I")
    ext = {"I": "2D-FFT", "G": "Conv", "transformer": "Transformer"}
    f["extractor_label"] = f["variant"].map(ext)
    return f


def seed_summary(frame, by: Sequence[str], metrics: Iterable[str]):
    """Mean, std (over seeds; NaN with one seed) and count of each metric per ``by`` group, plus ``converged``
    (every seed's run converged) and ``steps`` (mean updates done)."""
    import pandas as pd

    rows = []
    for key, g in frame.groupby(list(by), sort=False, dropna=False):
        row = dict(zip(by, key if isinstance(key, tuple) else (key,)))
        for m in metrics:
            v = pd.to_numeric(g[m], errors="coerce") if m in g else pd.Series([np.nan])
            row[f"{m}__mean"] = float(v.mean())
            row[f"{m}__std"] = float(v.std(ddof=1)) if v.notna().sum() > 1 else float("nan")
        conv = g["converged"] if "converged" in g else pd.Series([None])
        row["n_seeds"] = int(len(g))
        row["converged"] = bool(all(said_converged(c) for c in conv))
        row["steps"] = float(pd.to_numeric(g.get("steps_done", pd.Series([np.nan])), errors="coerce").mean())
        rows.append(row)
    return pd.DataFrame(rows)


def _cell(mean: float, std: float, n: int, metric: str, best: bool, converged: bool) -> str:
    if mean != mean:
        return "—"
    fmt = _FMT.get(metric, "{:.4g}")
    text = fmt.format(mean)
    if n > 1 and std == std:
        text += " ± " + fmt.format(std)
    return text + (" ✓" if best else "") + ("" if converged else " †")


# ------------------------------------------------------------------------------------------------------------
# the paper's cells (quoted or derived)
# ------------------------------------------------------------------------------------------------------------
def paper_cells(reference: dict[str, Any]) -> "Any":
    """The paper's known cells: ``table, row, dataset, metric, value, kind ("quoted"/"derived"), how``.

    ``reference`` maps ``"table1"`` … ``"table4"`` and ``"claims"`` to the frames of :func:`specvae.reference.load`.
    Rows are method names (Table 1), configuration letters (Table 2), ``D=…`` (Table 3) or extractor names
    (Table 4). A derived cell comes from a quoted (or derived) cell and a quoted relation: an absolute difference,
    a relative change (per cent) or a ratio. Table 3's quoted MNIST D = 1 SSIM is also used as Table 1's and
    Table 2's configuration I on MNIST, and Table 1's FQ-VAE row as configuration I of Table 2 (the paper's final
    model in both).
    """
    import pandas as pd

    cells: dict[tuple[str, str, str, str], tuple[float, str, str]] = {}
    row_col = {"table1": "method", "table2": "config", "table4": "extractor"}
    for t, col in row_col.items():
        for r in reference[t].itertuples(index=False):
            if r.value == r.value and str(r.value) != "":
                cells[(t, getattr(r, col), r.dataset, r.metric)] = (float(r.value), "quoted", r.source)
    for r in reference["table3"].itertuples(index=False):
        if r.value == r.value and str(r.value) != "":
            cells[("table3", f"D={int(r.D)}", r.dataset, r.metric)] = (float(r.value), "quoted", r.source)
    # the final model appears in several tables
    for (t, row, ds, metric), (v, kind, how) in list(cells.items()):
        if t == "table1" and row == "FQ-VAE":
            cells.setdefault(("table2", "I", ds, metric), (v, "derived", "Table 1's FQ-VAE (configuration I)"))
    mn = cells.get(("table3", "D=1", "MNIST", "SSIM"))
    if mn:
        cells.setdefault(("table1", "FQ-VAE", "MNIST", "SSIM"), (mn[0], "derived", "Table 3, D = 1 (MNIST's best)"))
        cells.setdefault(("table2", "I", "MNIST", "SSIM"), (mn[0], "derived", "Table 3, D = 1 (MNIST's best)"))
    claims = reference["claims"]
    for _ in range(3):  # derived cells can feed further derivations
        for c in claims.itertuples(index=False):
            s_key = (c.table, c.subject, c.dataset, c.metric)
            r_key = (c.table, c.reference, c.dataset, c.metric)
            v = float(c.value)
            if s_key in cells and r_key not in cells:
                s = cells[s_key][0]
                ref = {"abs_diff": s - v, "rel_pct": s / (1 + v / 100), "ratio": s / v}[c.kind]
                cells[r_key] = (ref, "derived", f"{c.subject} and the quoted {c.kind.replace('_', ' ')} {c.value}")
            elif r_key in cells and s_key not in cells:
                r = cells[r_key][0]
                sub = {"abs_diff": r + v, "rel_pct": r * (1 + v / 100), "ratio": r * v}[c.kind]
                cells[s_key] = (sub, "derived", f"{c.reference} and the quoted {c.kind.replace('_', ' ')} {c.value}")
    return pd.DataFrame([{"table": t, "row": row, "dataset": ds, "metric": m, "value": v, "kind": kind, "how": how}
                         for (t, row, ds, m), (v, kind, how) in cells.items()])


def _paper_value(cells, table: str, row: str, dataset: str, metric: str) -> tuple[float, str]:
    hit = cells[(cells.table == table) & (cells.row == row) & (cells.dataset == dataset) & (cells.metric == metric)]
    if not len(hit):
        return float("nan"), ""
    return float(hit.value.iloc[0]), str(hit.kind.iloc[0])


def _paper_text(value: float, kind: str, metric: str) -> str:
    if value != value:
        return ""
    return _FMT.get(metric, "{:.4g}").format(value) + ("" if kind == "quoted" else " (d)")


# ------------------------------------------------------------------------------------------------------------
# tables
# ------------------------------------------------------------------------------------------------------------
def _layout(summary, row_key: str, rows: Sequence[str], datasets: Sequence[str], metrics: Sequence[str],
            paper: Any = None, table: str = "", paper_row=lambda r: r, ours: bool = True):
    """Wide table: rows × (data set, metric[, paper]) with ✓ on our best per column and † on unconverged runs."""
    import pandas as pd

    out: dict[tuple[str, str], list[str]] = {}
    for ds in datasets:
        sub = summary[summary.dataset == ds]
        for metric in metrics:
            col = METRICS[metric]
            means = {r: float(sub.loc[sub[row_key] == r, f"{col}__mean"].iloc[0]) if (sub[row_key] == r).any()
                     else float("nan") for r in rows}
            finite = {r: v for r, v in means.items() if v == v}
            best = (min if metric in LOWER_IS_BETTER else max)(finite, key=finite.get) if finite else None
            cells = []
            for r in rows:
                hit = sub[sub[row_key] == r]
                if not len(hit):
                    cells.append("—")
                    continue
                h = hit.iloc[0]
                cells.append(_cell(h[f"{col}__mean"], h[f"{col}__std"], int(h["n_seeds"]), metric, r == best,
                                   bool(h["converged"])))
            label = DATASET_LABELS.get(ds, ds)
            if ours:
                out[(label, metric)] = cells
            if paper is not None:
                pds = PAPER_DATASET.get(ds, ds)
                out[(label, f"{metric} (paper)")] = [_paper_text(*_paper_value(paper, table, paper_row(r), pds, metric),
                                                                 metric) for r in rows]
    frame = pd.DataFrame(out)
    frame.columns = pd.MultiIndex.from_tuples(frame.columns)
    return frame


def table1(frame, paper=None, datasets: Sequence[str] | None = None):
    """Table 1: the five methods (rows) × data set × SSIM / LPIPS / rFID: ours (mean ± std over seeds, ✓ best,
    † not converged) beside the paper's quoted (or derived, "(d)") numbers."""
    f = label_runs(frame)
    f = f[f.table1]
    datasets = list(datasets or [d for d in ("mnist", "cifar10", "faces", "lsun-church") if d in set(f.dataset)])
    s = seed_summary(f, ["dataset", "method"], [METRICS[m] for m in ("SSIM", "LPIPS", "rFID")])
    t = _layout(s, "method", list(METHODS), datasets, ["SSIM", "LPIPS", "rFID"], paper, "table1",
                paper_row=lambda r: METHOD_LABELS[r])
    t.index = [METHOD_LABELS[m] for m in METHODS]
    return t


def table2(frame, paper=None, datasets: Sequence[str] | None = None):
    """Table 2: configurations A-I (rows, with their components) × data set × SSIM / LPIPS / rFID, seed 0."""
    import pandas as pd

    f = label_runs(frame)
    f = f[f.variant.isin(list(ABLATION)) & (f.seed == 0)]  # seed 0 for all (A and I have more seeds in Table 1)
    datasets = list(datasets or [d for d in ("mnist", "cifar10", "faces") if d in set(f.dataset)
                                 and f[f.dataset == d].variant.nunique() > 2])
    s = seed_summary(f, ["dataset", "variant"], [METRICS[m] for m in ("SSIM", "LPIPS", "rFID")])
    t = _layout(s, "variant", list(ABLATION), datasets, ["SSIM", "LPIPS", "rFID"], paper, "table2")
    comp = pd.DataFrame({("", name): ["✓" if ABLATION[k][i] else "" for k in ABLATION]
                         for i, name in enumerate(ABLATION_LABELS)})
    comp.columns = pd.MultiIndex.from_tuples(comp.columns)
    out = pd.concat([comp, t], axis=1)
    out.index = list(ABLATION)
    return out


def table3(frame, paper=None):
    """Table 3: FQ-VAE with D channels × N bases (D·N = U) on MNIST and CIFAR-10."""
    import pandas as pd

    f = label_runs(frame)
    f = f[(f.method == "fqvae") & (f.extractor == "fft") & (f.codebook_update == "dependency") & f.gcm.astype(bool)
          & f.dataset.isin(["mnist", "cifar10"]) & (f.seed == 0)]
    s = seed_summary(f, ["dataset", "D", "N"], [METRICS[m] for m in ("SSIM", "LPIPS", "rFID")])
    rows = []
    for r in s.itertuples(index=False):
        row = {"data set": DATASET_LABELS[r.dataset], "D": int(r.D), "N": int(r.N)}
        for metric in ("SSIM", "LPIPS", "rFID"):
            col = METRICS[metric]
            row[metric] = _cell(getattr(r, f"{col}__mean"), float("nan"), 1, metric, False, bool(r.converged))
            if paper is not None:
                row[f"{metric} (paper)"] = _paper_text(*_paper_value(paper, "table3", f"D={int(r.D)}",
                                                                     PAPER_DATASET[r.dataset], metric), metric)
        rows.append(row)
    out = pd.DataFrame(rows).sort_values(["data set", "D"]).reset_index(drop=True)
    for ds in out["data set"].unique():  # ✓ marks the best D per data set and metric
        idx = out.index[out["data set"] == ds]
        for metric in ("SSIM", "LPIPS", "rFID"):
            vals = [float(str(out.at[i, metric]).split(" ")[0]) if str(out.at[i, metric])[0].isdigit() else np.nan
                    for i in idx]
            if np.all(np.isnan(vals)):
                continue
            j = idx[int(np.nanargmin(vals) if metric in LOWER_IS_BETTER else np.nanargmax(vals))]
            text = str(out.at[j, metric])
            out.at[j, metric] = text.replace(" †", "") + " ✓" + (" †" if "†" in text else "")
    return out.set_index(["data set", "D", "N"])


def table4(frame, paper=None, device: str = ""):
    """Table 4: the conv, transformer and 2D-FFT extractors (rows) × data set × rFID, s/epoch, images/s (inference,
    batch 64) and peak memory (MB, one test batch), on ``device``, beside the paper's A800 numbers."""
    f = label_runs(frame)
    f = f[f.extractor_label.notna() & f.dataset.isin(["mnist", "cifar10", "faces"]) & (f.seed == 0)]
    datasets = [d for d in ("mnist", "cifar10", "faces") if f[f.dataset == d].extractor_label.nunique() == 3]
    columns = [METRICS[m] for m in ("rFID", "seconds_per_epoch", "images_per_s", "peak_memory_mb")]
    s = seed_summary(f, ["dataset", "extractor_label"], columns)
    rows = ["Conv", "Transformer", "2D-FFT"]
    t = _layout(s, "extractor_label", rows, datasets, ["rFID", "seconds_per_epoch", "images_per_s", "peak_memory_mb"],
                paper, "table4")
    t.index = rows
    t = t.rename(columns={"seconds_per_epoch": "s / epoch", "images_per_s": "images / s", "peak_memory_mb": "peak MB",
                          "seconds_per_epoch (paper)": "s / epoch (paper, A800)",
                          "images_per_s (paper)": "images / s (paper, A800)",
                          "peak_memory_mb (paper)": "peak MB (paper, A800)", "rFID (paper)": "rFID (paper)"}, level=1)
    return t


def _short_source(source: str) -> str:
    """A short label for a long source string of ``feng2025_published_baselines.csv`` (its first words)."""
    if source.startswith("ArcVQ-VAE"):
        return "ArcVQ-VAE note (unverified)"
    if "visual-tokenizer-pytorch" in source:
        return "visual-tokenizer-pytorch"
    return source.split(" (")[0][:40]


def published_baselines(reference_frame, datasets: Sequence[str] = ("MNIST", "CIFAR10", "CelebA 64x64")):
    """The fact sheet's §7 numbers for the same baselines, one row per source × data set × method × setting, one
    column per metric (short source labels; :func:`published_sources` gives the full ones)."""
    f = reference_frame[reference_frame.dataset.isin(datasets)].copy()
    f["source"] = f["source"].map(_short_source)
    wide = f.pivot_table(index=["source", "dataset", "method", "setting"], columns="metric", values="value",
                         aggfunc="first", sort=False).reset_index()
    wide.columns.name = None
    order = [m for m in ("PSNR", "SSIM", "LPIPS", "rFID", "codebook usage %") if m in wide.columns]
    return wide.rename(columns={"source": "source", "dataset": "data set", "method": "method",
                                "setting": "setting"})[["source", "data set", "method", "setting", *order]]


def published_sources(reference_frame) -> str:
    """Markdown list: each short source label of :func:`published_baselines` with its full source and status."""
    seen = reference_frame.drop_duplicates("source")
    return "\n".join(f"- **{_short_source(r.source)}**: {r.source}; {r.status}." for r in seen.itertuples(index=False))


def known_paper_cells(paper):
    """The paper's known Table 1 cells for readers: method, data set, metric, value, quoted or derived, and how."""
    t = paper[paper.table == "table1"]
    out = t.rename(columns={"row": "method", "dataset": "data set", "metric": "metric", "value": "value",
                            "kind": "quoted or derived", "how": "how derived"})
    out = out[["method", "data set", "metric", "value", "quoted or derived", "how derived"]].copy()
    out.loc[out["quoted or derived"] == "quoted", "how derived"] = ""
    return out.reset_index(drop=True)


# ------------------------------------------------------------------------------------------------------------
# the paper's claims on our numbers
# ------------------------------------------------------------------------------------------------------------
def _ours_lookup(frame) -> dict[tuple[str, str, str, str], float]:
    """(table, row, paper data set, metric) → our mean over seeds (faces stand for CelebA)."""
    f = label_runs(frame)
    out: dict[tuple[str, str, str, str], float] = {}
    for metric, col in METRICS.items():
        if col not in f:
            continue
        for (ds, method), g in f[f.table1].groupby(["dataset", "method"]):
            out[("table1", METHOD_LABELS[method], PAPER_DATASET[ds], metric)] = float(g[col].astype(float).mean())
        for (ds, v), g in f[f.variant.isin(list(ABLATION))].groupby(["dataset", "variant"]):
            out[("table2", v, PAPER_DATASET[ds], metric)] = float(g[col].astype(float).mean())
        for (ds, e), g in f[f.extractor_label.notna()].groupby(["dataset", "extractor_label"]):
            out[("table4", e, PAPER_DATASET[ds], metric)] = float(g[col].astype(float).mean())
        t3 = f[(f.method == "fqvae") & (f.extractor == "fft") & (f.codebook_update == "dependency")
               & f.gcm.astype(bool)]
        for (ds, D), g in t3.groupby(["dataset", "D"]):
            out[("table3", f"D={int(D)}", PAPER_DATASET[ds], metric)] = float(g[col].astype(float).mean())
    return out


def claims_check(frame, reference: dict[str, Any]):
    """Every quoted relation (``feng2025_claims.csv``) and ordering (``feng2025_orderings.csv``) on our numbers.

    Columns: ``claim, table, data set, relation, paper, ours, holds`` — ``holds`` is whether our relation has the
    paper's direction (for differences and changes: the same sign; for ratios: the same side of 1); ``not run``
    where the data set was not run (LSUN Church) or a value is missing.
    """
    import pandas as pd

    ours = _ours_lookup(frame)
    rows = []
    for c in reference["claims"].itertuples(index=False):
        s = ours.get((c.table, c.subject, c.dataset, c.metric), float("nan"))
        r = ours.get((c.table, c.reference, c.dataset, c.metric), float("nan"))
        v = float(c.value)
        if c.kind == "abs_diff":
            mine, unit = s - r, ""
        elif c.kind == "rel_pct":
            mine, unit = (s - r) / r * 100 if r else float("nan"), " %"
        else:
            mine, unit = s / r if r else float("nan"), "×"
        if mine != mine:
            holds = "not run"
        elif c.kind == "ratio":
            holds = "yes" if (mine - 1) * (v - 1) > 0 else "no"
        else:
            holds = "yes" if mine * v > 0 else "no"
        rows.append({"claim": c.claim, "table": c.table, "data set": c.dataset,
                     "relation": f"{METRIC_LABELS.get(c.metric, c.metric)}: {c.subject} vs {c.reference}",
                     "paper": f"{v:+g}{unit}" if c.kind != "ratio" else f"{v:g}{unit}",
                     "ours": "" if mine != mine else (f"{mine:+.3g}{unit}" if c.kind != "ratio"
                                                      else f"{mine:.3g}{unit}"),
                     "holds": holds})
    rows += _orderings(frame, ours)
    return pd.DataFrame(rows)


def claims_table(claims):
    """:func:`claims_check`'s frame for readers (no claim ids; "Table 1" for ``table1``)."""
    out = claims.drop(columns=["claim"]).copy()
    out["table"] = out["table"].str.replace("table", "Table ", regex=False)
    return out.reset_index(drop=True)


def _orderings(frame, ours) -> list[dict[str, str]]:
    """The qualitative orderings of ``feng2025_orderings.csv`` that our grid can test."""
    out = []

    def best(table: str, rows: Sequence[str], ds: str, metric: str) -> str | None:
        vals = {r: ours.get((table, r, ds, metric), float("nan")) for r in rows}
        vals = {k: v for k, v in vals.items() if v == v}
        if not vals:
            return None
        return (min if metric in LOWER_IS_BETTER else max)(vals, key=vals.get)

    labels = [METHOD_LABELS[m] for m in METHODS]
    for ds in ("MNIST", "CIFAR10", "CelebA"):
        for metric in ("SSIM", "LPIPS", "rFID"):
            b = best("table1", labels, ds, metric)
            if b is None:
                continue
            expected = not (metric == "SSIM" and ds in ("MNIST", "CelebA"))
            out.append({"claim": "t1_best", "table": "table1", "data set": ds,
                        "relation": f"{metric}: FQ-VAE best" + ("" if expected else " (paper: not best here)"),
                        "paper": "best" if expected else "not best", "ours": f"best: {b}",
                        "holds": "yes" if (b == "FQ-VAE") == expected else "no"})
    for ds in ("MNIST", "CIFAR10", "CelebA"):
        for metric in ("SSIM", "LPIPS", "rFID"):
            b = best("table2", list(ABLATION), ds, metric)
            if b is not None:
                out.append({"claim": "t2_i_best", "table": "table2", "data set": ds, "relation": f"{metric}: I best",
                            "paper": "I", "ours": f"best: {b}", "holds": "yes" if b == "I" else "no"})
    for ds, want in (("MNIST", "D=1"), ("CIFAR10", "D=2")):
        b = best("table3", [f"D={d}" for d in (1, 2, 4, 7, 8)], ds, "SSIM")
        if b is not None:
            out.append({"claim": "t3_mnist" if ds == "MNIST" else "t3_cifar", "table": "table3", "data set": ds,
                        "relation": "SSIM: best D", "paper": want, "ours": b, "holds": "yes" if b == want else "no"})
    for ds in ("MNIST", "CIFAR10", "CelebA"):
        vals = {e: ours.get(("table4", e, ds, "rFID"), float("nan")) for e in ("2D-FFT", "Transformer", "Conv")}
        if all(v == v for v in vals.values()):
            order = " < ".join(sorted(vals, key=vals.get))
            out.append({"claim": "t4_rfid", "table": "table4", "data set": ds, "relation": "rFID order",
                        "paper": "2D-FFT < Transformer < Conv", "ours": order,
                        "holds": "yes" if order == "2D-FFT < Transformer < Conv" else "no"})
    return out


# ------------------------------------------------------------------------------------------------------------
# convergence, bands
# ------------------------------------------------------------------------------------------------------------
def _conv_text(c) -> str:
    """A run's ``converged`` as the tables show it: yes / no, or "not checked" where the preset has no rule."""
    if isinstance(c, (bool, np.bool_)) or c in (0, 1):
        return "yes" if c else "no"
    return "not checked"


def convergence_table(frame):
    """One row per run: data set, method, variant, seed, steps done, relative change of the MSE over the last 20 %,
    converged (yes / no / "not checked" where the preset has no tolerance), training seconds, training images/s."""
    f = label_runs(frame)
    cols = {"dataset_label": "data set", "method_label": "method", "variant": "variant", "seed": "seed",
            "steps_done": "steps", "loss_rel_change_last20": "rel. change (last 20 %)", "converged": "converged",
            "train_wall_s": "train s", "train_images_per_s": "train images/s"}
    out = f[[c for c in cols if c in f]].rename(columns=cols)
    out["converged"] = out["converged"].map(_conv_text)
    out["variant"] = out["variant"].replace({"-": ""})
    return out.reset_index(drop=True)


def band_table(frame, bands: Sequence[str] | None = None):
    """Table 1's runs: each frequency band's share of the per-image MSE (mean over images and seeds), ×10³."""
    f = label_runs(frame)
    f = f[f.table1]
    bands = list(bands or [c[len("band_mse_"):] for c in f.columns if c.startswith("band_mse_")])
    s = seed_summary(f, ["dataset", "method"], [f"band_mse_{b}" for b in bands])
    out = s.pivot_table(index="method", columns="dataset", values=[f"band_mse_{b}__mean" for b in bands],
                        sort=False) * 1e3
    out.columns = [(DATASET_LABELS.get(ds, ds), b.replace("band_mse_", "").replace("__mean", ""))
                   for b, ds in out.columns]
    import pandas as pd

    out.columns = pd.MultiIndex.from_tuples(out.columns)
    out = out.reindex(columns=sorted(out.columns, key=lambda c: (list(DATASET_LABELS.values()).index(c[0]),
                                                                 bands.index(c[1]))))
    out.index = [METHOD_LABELS[m] for m in out.index]
    return out


# ------------------------------------------------------------------------------------------------------------
# figures
# ------------------------------------------------------------------------------------------------------------
def plot_usage(ax, histogram: np.ndarray, title: str = "") -> None:
    """Fig. 3 panel: use count of each code by index (blue) and the counts sorted in decreasing order (orange),
    as CVQ-VAE's ``test.py`` draws it; the title adds the share of codes used and the perplexity."""
    h = np.asarray(histogram, dtype=float)
    p = h / h.sum() if h.sum() else h
    nz = p[p > 0]
    perplexity = float(np.exp(-(nz * np.log(nz)).sum())) if nz.size else 0.0
    ax.plot(np.arange(len(h)), h, color="C0", lw=0.8, label="count by code index")
    ax.plot(np.arange(len(h)), np.sort(h)[::-1], color="C1", lw=1.5, label="sorted")
    ax.set_title(f"{title}\nused {int((h > 0).sum())}/{len(h)}, perplexity {perplexity:.0f}", fontsize=9)
    ax.set_xlabel("code")
    ax.set_ylabel("uses")


def plot_unit_information(ax, capacities: dict[str, np.ndarray], colors: dict[str, str] | None = None) -> None:
    """Fig. 4: each used code's unit information (ΔMSE when the code is removed), sorted, one colour per method,
    with each method's mean as a dashed line."""
    colors = colors or {"FQ-VAE": "red", "VQ-VAE": "blue", "SQ-VAE": "gray", "CVQ-VAE": "green"}
    for name, cap in capacities.items():
        c = np.asarray(cap, dtype=float)
        c = np.sort(c[np.isfinite(c) & (c != 0)])[::-1]
        if not c.size:
            continue
        ax.scatter(np.arange(c.size), c, s=4, color=colors.get(name), label=f"{name} (mean {c.mean():.2e})")
        ax.axhline(c.mean(), color=colors.get(name), ls="--", lw=0.8)
    ax.set_yscale("symlog", linthresh=1e-6)
    ax.set_xlabel("code (sorted by unit information)")
    ax.set_ylabel("ΔMSE when removed")
    ax.legend(fontsize=8)


def plot_reconstructions(axes, real: np.ndarray, recons: dict[str, np.ndarray], index: int = 0,
                         crop: tuple[int, int, int] | None = None) -> None:
    """Fig. 5: one test image and each method's reconstruction (top row), and a detail crop of each (bottom row).

    ``real``/``recons[name]``: uint8 ``(n, C, H, W)``; ``crop = (top, left, size)`` (default: the centre quarter).
    """
    import matplotlib.patches as patches

    imgs = {"original": real[index], **{k: v[index] for k, v in recons.items()}}
    _, h, w = real[index].shape
    top, left, size = crop or (h // 4, w // 4, h // 2)
    for j, (name, img) in enumerate(imgs.items()):
        im = np.transpose(img, (1, 2, 0)).squeeze()
        cmap = "gray" if im.ndim == 2 else None
        axes[0, j].imshow(im, cmap=cmap, vmin=0, vmax=255)
        axes[0, j].add_patch(patches.Rectangle((left - 0.5, top - 0.5), size, size, fill=False, color="red", lw=1))
        axes[0, j].set_title(name, fontsize=9)
        axes[1, j].imshow(im[top:top + size, left:left + size], cmap=cmap, vmin=0, vmax=255, interpolation="nearest")
        for ax in axes[:, j]:
            ax.axis("off")


def plot_band_errors(ax, summary, dataset: str, bands: Sequence[str]) -> None:
    """Grouped bars: each method's share of the MSE per frequency band on ``dataset`` (×10³, log scale)."""
    sub = summary[summary.dataset == dataset]
    x = np.arange(len(bands))
    width = 0.8 / max(1, len(sub))
    for i, r in enumerate(sub.itertuples(index=False)):
        vals = [getattr(r, f"band_mse_{b}__mean") * 1e3 for b in bands]
        ax.bar(x + i * width, vals, width, label=METHOD_LABELS[r.method])
    ax.set_xticks(x + width * (len(sub) - 1) / 2, bands)
    ax.set_yscale("log")
    ax.set_title(DATASET_LABELS.get(dataset, dataset), fontsize=10)
    ax.set_ylabel("band MSE ×10³")


def plot_spectra(ax, freqs: np.ndarray, real: np.ndarray, recons: dict[str, np.ndarray], title: str = "") -> None:
    """Radial log-power spectra of the originals (black) and each method's reconstructions."""
    ax.plot(freqs, real, color="black", lw=2, label="originals")
    for name, prof in recons.items():
        ax.plot(freqs, prof, lw=1, label=name)
    ax.set_xlabel("spatial frequency (cycles/pixel)")
    ax.set_ylabel("mean log power")
    ax.set_title(title, fontsize=10)


# ------------------------------------------------------------------------------------------------------------
# readings: one paragraph per section, generated from the numbers (nothing typed)
# ------------------------------------------------------------------------------------------------------------
def _finite(v) -> bool:
    try:
        return math.isfinite(float(v))
    except (TypeError, ValueError):
        return False


def _rank(vals: dict[str, float], key: str, lower: bool) -> int:
    """1-based rank of ``vals[key]`` (1 = best)."""
    order = sorted(vals, key=vals.get, reverse=not lower)
    return order.index(key) + 1


def _unmeasured(frame, metrics: Sequence[str]) -> list[str]:
    """The metrics of ``metrics`` with no finite value in ``frame`` (not measured at this preset)."""
    import pandas as pd

    return [m for m in metrics if METRICS[m] not in frame
            or not pd.to_numeric(frame[METRICS[m]], errors="coerce").notna().any()]


def run_note(frame, sizes, preset: str, device: str) -> str:
    """The chapter's "what was run" note (Markdown): preset, runs, caps, seeds, evaluation size, convergence."""
    n_conv = int(frame["converged"].map(said_converged).sum())
    rule = (f"|relative change| of the training MSE over the last 20 % of steps < {sizes.converge_tol}"
            if sizes.converge_tol else "not checked at this preset: every run trains for its fixed steps")
    small = ("" if preset in ("gpu", "paper") else
             "\n\n**This is not the `gpu` preset.** These runs are sized for a shared 2-core CPU: narrower FQ-VAE "
             f"conv stage, at most {max(sizes.steps, sizes.faces_steps):,} steps, {sizes.n_test or 'all'} test "
             "images. Read the tables as a controlled small-scale comparison, not as the paper's training length.")
    metrics = ("" if sizes.image_metrics
               else " **LPIPS and rFID are not measured at this preset** (their columns show —).")
    return (f"**Preset `{preset}`**: {len(frame)} runs on {device}; steps capped at {sizes.steps} (MNIST, CIFAR) "
            f"and {sizes.faces_steps} (faces), batch {sizes.batch_size} / {sizes.faces_batch_size}, Adam lr "
            f"{sizes.lr_mnist:g} (MNIST) / {sizes.lr:g}; {sizes.seeds} seed(s) for Table 1 on MNIST and CIFAR, "
            f"{sizes.faces_seeds} on faces; K = {sizes.codebook_size} codes; evaluation on "
            f"{sizes.n_test or 'all'} test images (rFID on {sizes.n_fid or 'all'}).{metrics} "
            f"**{n_conv} of {len(frame)} runs converged** (rule: {rule}); the others stopped at the cap and are "
            f"marked † in every table. Training time summed over runs: {frame['train_wall_s'].sum() / 3600:.2f} h."
            + small)


def reading_table1(frame) -> str:
    """Table 1 in words: per data set and metric the best method and FQ-VAE's rank; whether FQ-VAE's lead over
    VQ-VAE exceeds the seed spread; how many cells hold a run that stopped before converging."""
    f = label_runs(frame)
    f = f[f.table1]
    s = seed_summary(f, ["dataset", "method"], [METRICS[m] for m in ("SSIM", "LPIPS", "rFID")])
    out = []
    for ds in [d for d in ("mnist", "cifar10", "faces", "lsun-church") if d in set(s.dataset)]:
        sub = s[s.dataset == ds].set_index("method")
        parts = []
        for metric in ("SSIM", "LPIPS", "rFID"):
            col = f"{METRICS[metric]}__mean"
            vals = {m: float(sub.at[m, col]) for m in sub.index if _finite(sub.at[m, col])}
            if "fqvae" not in vals or len(vals) < 2:
                continue
            lower = metric in LOWER_IS_BETTER
            best = (min if lower else max)(vals, key=vals.get)
            fmt = _FMT[metric]
            text = (f"{metric} best {METHOD_LABELS[best]} ({fmt.format(vals[best])}), FQ-VAE "
                    f"{_rank(vals, 'fqvae', lower)} of {len(vals)}")
            if "vqvae" in vals:
                sd = [float(sub.at[m, f"{METRICS[metric]}__std"]) for m in ("fqvae", "vqvae")]
                gap = vals["vqvae"] - vals["fqvae"] if lower else vals["fqvae"] - vals["vqvae"]
                if all(_finite(x) for x in sd):
                    side = "ahead of" if gap > 0 else "behind"
                    clear = "beyond" if abs(gap) > sd[0] + sd[1] else "within"
                    text += f" ({side} VQ-VAE by {fmt.format(abs(gap))}, {clear} the seeds' spread)"
            parts.append(text)
        if parts:
            out.append(f"On {DATASET_LABELS.get(ds, ds)}: " + "; ".join(parts) + ".")
    missing = _unmeasured(f, ("SSIM", "LPIPS", "rFID"))
    if missing:
        out.append(f"{' and '.join(missing)} {'was' if len(missing) == 1 else 'were'} not measured at this preset.")
    if int(s.n_seeds.max()) < 2:
        out.append("With one seed per cell there is no spread to compare a difference with.")
    n_flag = int((~s.converged.astype(bool)).sum())
    if n_flag:
        out.append(f"{n_flag} of {len(s)} cells hold a run that stopped at its step cap before converging (†): "
                   "their numbers are lower bounds on what the method reaches.")
    collapsed = collapsed_runs(f)
    if len(collapsed):
        runs = "; ".join(f"{METHOD_LABELS[r.method]} on {DATASET_LABELS.get(r.dataset, r.dataset)}, seed {int(r.seed)} "
                         f"(perplexity {r.perplexity:.2f}, SSIM {getattr(r, METRICS['SSIM']):.3f})"
                         for r in collapsed.itertuples(index=False))
        out.append(f"Codebook collapse: {runs} — every image is coded with (nearly) one code. The loss is then flat "
                   "at a poor value, so the convergence rule may count such a run as converged; it is kept in the "
                   "means and spreads above, as a seed of the method.")
    return " ".join(out) if out else "No run of Table 1 is stored yet."


#: a run whose codes' perplexity over the evaluation images is below this uses (nearly) one code
COLLAPSE_PERPLEXITY = 2.0


def collapsed_runs(frame, threshold: float = COLLAPSE_PERPLEXITY):
    """The runs of ``frame`` whose codebook collapsed: perplexity of the code usage over the evaluation images below
    ``threshold`` (perplexity = exp of the usage entropy, the effective number of codes used; 1 = one code for
    every vector). Columns dataset, method, seed, perplexity and SSIM."""
    import pandas as pd

    if "perplexity" not in frame:
        return frame.iloc[0:0]
    p = pd.to_numeric(frame["perplexity"], errors="coerce")
    cols = [c for c in ("dataset", "method", "seed", "perplexity", METRICS["SSIM"]) if c in frame]
    return frame.loc[p < threshold, cols].sort_values(["dataset", "method", "seed"]).reset_index(drop=True)


def reading_claims(claims) -> str:
    """The claims check in words: how many of the testable relations hold in direction, and which do not."""
    tested = claims[claims.holds.isin(["yes", "no"])]
    if not len(tested):
        return "None of the paper's quoted relations can be tested on the runs stored here."
    fails = tested[tested.holds == "no"]
    text = (f"{int((tested.holds == 'yes').sum())} of the {len(tested)} relations our runs can test hold in the "
            f"paper's direction; {len(claims) - len(tested)} cannot be tested here (LSUN Church, or a metric not "
            "measured at this preset).")
    if len(fails):
        listed = "; ".join(f"{r['data set']}, {r.relation} (paper {r.paper}, ours {r.ours})"
                           for _, r in fails.head(6).iterrows())
        text += f" Those that do not: {listed}" + (" …" if len(fails) > 6 else "") + "."
    return text


def component_effects(frame, metric: str = "SSIM"):
    """Table 2's components one at a time: for every pair of configurations that differ only in one component,
    the relative change of ``metric`` (per cent, positive = better) when it is switched on, per data set (seed 0).

    Columns: ``component, data set, pair, change``."""
    import pandas as pd

    f = label_runs(frame)
    f = f[f.variant.isin(list(ABLATION)) & (f.seed == 0)]
    col = METRICS[metric]
    rows = []
    for ds, g in f.groupby("dataset", sort=False):
        val = {r.variant: float(getattr(r, col)) for r in g.itertuples(index=False) if _finite(getattr(r, col))}
        for i, name in enumerate(ABLATION_LABELS):
            for off, a in ABLATION.items():
                for on, b in ABLATION.items():
                    differ = [j for j in range(4) if a[j] != b[j]]
                    if differ == [i] and b[i] and off in val and on in val and val[off]:
                        change = (val[on] - val[off]) / abs(val[off]) * 100
                        rows.append({"component": name, "data set": DATASET_LABELS.get(ds, ds),
                                     "pair": f"{off} → {on}", "change": -change if metric in LOWER_IS_BETTER
                                     else change})
    return pd.DataFrame(rows, columns=["component", "data set", "pair", "change"])


def reading_table2(frame) -> str:
    """Table 2 in words: the best configuration per data set (SSIM) and each component's effect over the pairs
    of configurations that differ only in it."""
    f = label_runs(frame)
    f = f[f.variant.isin(list(ABLATION)) & (f.seed == 0)]
    out = []
    for ds, g in f.groupby("dataset", sort=False):
        vals = {r.variant: float(r.ssim_mean) for r in g.itertuples(index=False) if _finite(r.ssim_mean)}
        if len(vals) > 2:
            best = max(vals, key=vals.get)
            out.append(f"Best SSIM on {DATASET_LABELS.get(ds, ds)}: configuration {best}"
                       + ("" if best == "I" else " (the paper's best is I)") + ".")
    eff = component_effects(frame, "SSIM")
    for name in ABLATION_LABELS:
        e = eff[eff.component == name]
        if len(e):
            out.append(f"{name}: SSIM {float(e.change.mean()):+.2f} % on average when switched on, better in "
                       f"{int((e.change > 0).sum())} of {len(e)} pairs that differ only in it.")
    return " ".join(out) if out else "No ablation run is stored yet."


def reading_table3(frame) -> str:
    """Table 3 in words: the best D per data set (SSIM) against the paper's (MNIST D = 1, CIFAR-10 D = 2)."""
    f = label_runs(frame)
    f = f[(f.method == "fqvae") & (f.extractor == "fft") & (f.codebook_update == "dependency") & f.gcm.astype(bool)
          & (f.seed == 0)]
    out = []
    for ds, want in (("mnist", 1), ("cifar10", 2)):
        g = f[f.dataset == ds]
        vals = {int(r.D): float(r.ssim_mean) for r in g.itertuples(index=False) if _finite(r.ssim_mean)}
        if len(vals) > 1:
            best = max(vals, key=vals.get)
            spread = max(vals.values()) - min(vals.values())
            out.append(f"{DATASET_LABELS[ds]}: best SSIM at D = {best} (paper: D = {want}; "
                       f"{'agrees' if best == want else 'differs'}), the D values spanning {spread:.4f} in SSIM.")
    return " ".join(out) if out else "No run of Table 3 is stored yet."


def reading_table4(frame, device: str = "") -> str:
    """Table 4 in words: rFID order of the extractors and the FFT's training time and throughput relative to the
    transformer's, beside the paper's 30.8 % and 1.81× (CIFAR-10, A800)."""
    f = label_runs(frame)
    f = f[f.extractor_label.notna() & (f.seed == 0)]
    out = []
    for ds, g in f.groupby("dataset", sort=False):
        by = {r.extractor_label: r for r in g.itertuples(index=False)}
        if not {"2D-FFT", "Transformer"} <= set(by):
            continue
        fft, tr = by["2D-FFT"], by["Transformer"]
        parts = []
        if _finite(fft.seconds_per_epoch) and _finite(tr.seconds_per_epoch) and tr.seconds_per_epoch:
            parts.append(f"an FFT epoch takes {fft.seconds_per_epoch / tr.seconds_per_epoch:.0%} of a transformer "
                         "epoch (paper: 31 %)")
        if _finite(fft.infer_images_per_s) and _finite(tr.infer_images_per_s) and tr.infer_images_per_s:
            parts.append(f"it reconstructs {fft.infer_images_per_s / tr.infer_images_per_s:.2f}× as many images "
                         "per second (paper: 1.81×)")
        rf = {k: float(v.rfid) for k, v in by.items() if _finite(v.rfid)}
        if len(rf) == 3:
            parts.append("rFID order " + " < ".join(sorted(rf, key=rf.get)) + " (paper: 2D-FFT < Transformer < Conv)")
        if parts:
            out.append(f"On {DATASET_LABELS.get(ds, ds)}, " + ", ".join(parts) + ".")
    if out and device:
        out.append(f"Times are from the runs themselves on {device}, with other work sharing the machine; "
                   "their ratios mean more than their values.")
    return " ".join(out) if out else "No run of Table 4 is stored yet."


def reading_usage(frame) -> str:
    """Fig. 3 in words: share of codes used and perplexity of VQ-VAE, CVQ-VAE and FQ-VAE (Table 1 runs)."""
    f = label_runs(frame)
    f = f[f.table1 & f.method.isin(["vqvae", "cvqvae", "fqvae"])]
    s = seed_summary(f, ["dataset", "method"], ["usage", "perplexity"])
    out = []
    for ds in [d for d in ("mnist", "cifar10", "faces") if d in set(s.dataset)]:
        sub = s[s.dataset == ds].set_index("method")
        parts = [f"{METHOD_LABELS[m]} {sub.at[m, 'usage__mean']:.0%} (perplexity {sub.at[m, 'perplexity__mean']:.0f})"
                 for m in ("vqvae", "cvqvae", "fqvae") if m in sub.index and _finite(sub.at[m, "usage__mean"])]
        if parts:
            out.append(f"{DATASET_LABELS[ds]}: " + ", ".join(parts))
    if not out:
        return "No usage is stored yet."
    return ("Share of the codebook used over the evaluation images (mean over seeds): " + "; ".join(out) + ". "
            "The paper's Fig. 3 shows FQ-VAE and CVQ-VAE using the whole codebook and VQ-VAE collapsing onto few "
            "codes.")


def reading_unit_information(capacities: dict[str, np.ndarray]) -> str:
    """Fig. 4 in words: each method's mean unit information over its used codes, and which is largest."""
    means = {}
    for name, cap in capacities.items():
        c = np.asarray(cap, dtype=float)
        c = c[np.isfinite(c) & (c != 0)]
        if c.size:
            means[name] = (float(c.mean()), int(c.size))
    if not means:
        return "No unit information is stored yet."
    top = max(means, key=lambda k: means[k][0])
    listed = ", ".join(f"{k} {v[0]:.2e} over {v[1]} codes" for k, v in means.items())
    return (f"Mean rise of the MSE when a code is replaced by its nearest other code: {listed}. The largest is "
            f"{top}'s" + ("" if top == "FQ-VAE" else " (the paper finds FQ-VAE's largest)") + ". A method that uses "
            "few codes has few dots, each carrying much; read the mean together with Fig. 3.")


def crop_errors(real: np.ndarray, recons: dict[str, np.ndarray], index: int = 0,
                crop: tuple[int, int, int] | None = None) -> dict[str, float]:
    """MSE (on [0, 1]) of each method's reconstruction of image ``index`` inside the crop of
    :func:`plot_reconstructions` (default: the centre quarter)."""
    _, h, w = real[index].shape
    top, left, size = crop or (h // 4, w // 4, h // 2)
    ref = real[index, :, top:top + size, left:left + size].astype(float) / 255
    return {k: float(((v[index, :, top:top + size, left:left + size].astype(float) / 255 - ref) ** 2).mean())
            for k, v in recons.items()}


def reading_reconstructions(real: np.ndarray, recons: dict[str, np.ndarray], n: int = 2) -> str:
    """Fig. 5 in words: each method's MSE inside the crops shown (mean over the images shown), best first."""
    errs: dict[str, list[float]] = {}
    for k in range(min(n, real.shape[0])):
        for name, v in crop_errors(real, recons, k).items():
            errs.setdefault(name, []).append(v)
    order = sorted(errs, key=lambda k: np.mean(errs[k]))
    return ("MSE ×10³ inside the crops shown (mean over the images above), lowest first: "
            + ", ".join(f"{k} {np.mean(errs[k]) * 1e3:.2f}" for k in order)
            + ". Two images are a sample, not a measurement: Table 1 holds the averages.")


def reading_bands(frame, records: dict[Any, dict[str, Any]] | None = None) -> str:
    """The chapter's question in words: FQ-VAE's error in the highest frequency band against VQ-VAE's and the
    best method's there, per data set (Table 1 runs, mean over seeds); with ``records``, also the spectral deficit
    of each method's reconstructions above 1/4 cycle per pixel (seed 0)."""
    f = label_runs(frame)
    f = f[f.table1]
    bands = [c[len("band_mse_"):] for c in f.columns if c.startswith("band_mse_")]
    if not bands:
        return "No band errors are stored yet."
    high = bands[-1]
    s = seed_summary(f, ["dataset", "method"], [f"band_mse_{high}"])
    out, wins, n = [], 0, 0
    for ds in [d for d in ("mnist", "cifar10", "faces") if d in set(s.dataset)]:
        sub = s[s.dataset == ds].set_index("method")
        vals = {m: float(sub.at[m, f"band_mse_{high}__mean"]) for m in sub.index}
        if "fqvae" not in vals or "vqvae" not in vals or not vals["vqvae"]:
            continue
        n += 1
        wins += vals["fqvae"] < vals["vqvae"]
        best = min(vals, key=vals.get)
        out.append(f"{DATASET_LABELS[ds]}: FQ-VAE's {high}-band error is {vals['fqvae'] / vals['vqvae']:.2f}× "
                   f"VQ-VAE's, lowest {METHOD_LABELS[best]}")
    if not out:
        return "No band errors of FQ-VAE and VQ-VAE are stored yet."
    text = (f"In the {high} band FQ-VAE's error is below VQ-VAE's on {wins} of {n} data sets (" + "; ".join(out)
            + ").")
    if records:
        deficits: dict[str, list[float]] = {}
        for cfg, rec in records.items():
            a = rec.get("arrays", {})
            if cfg.seed != 0 or not {"freqs", "profile_real", "profile_recon"} <= set(a):
                continue
            if cfg.method == "fqvae" and _variant({"method": cfg.method, "extractor": cfg.extractor, "D": cfg.D,
                                                   "N": cfg.N, "dataset": cfg.dataset,
                                                   "codebook_update": cfg.codebook_update, "gcm": cfg.gcm}) != "I":
                continue
            fr = np.asarray(a["freqs"], dtype=float)
            sel = fr >= 0.25
            if sel.any():
                d = float(np.mean(np.asarray(a["profile_real"])[sel] - np.asarray(a["profile_recon"])[sel]))
                deficits.setdefault(METHOD_LABELS[cfg.method], []).append(d)
        if deficits:
            order = sorted(deficits, key=lambda k: np.mean(deficits[k]))
            text += (" Above 1/4 cycle per pixel the reconstructions' power falls short of the originals' by, "
                     "averaged over the data sets (spectrum units, smallest first): "
                     + ", ".join(f"{k} {np.mean(deficits[k]):.2f}" for k in order) + ".")
    return text


def quantisation_fit(records: dict[Any, dict[str, Any]], tail: float = 0.2):
    """How closely FQ-VAE's codes fit the frequency components they replace, read off its training history.

    For each stored Table-1 FQ-VAE run (2D-FFT extractor, ℓ2-normalised components and codes): the commitment term
    ``mean((ẑ − q)²)`` over the elements of unit vectors ẑ, q of ``n`` = 2·h·(⌊w/2⌋+1) reals, averaged over the
    last ``tail`` of the logged steps, gives ``‖ẑ − q‖² = n·commitment`` and the cosine ``1 − ‖ẑ − q‖²/2`` between a
    component and its code; ``cos²`` is the share of the component's energy along its code.

    Returns a frame with ``dataset, seed, code_dim, sq_error, cosine, energy_kept`` (empty when no such run is
    stored).
    """
    import pandas as pd

    from specvae.models.fqvae import frequency_code_dim

    rows = []
    for rec in records.values():
        c = rec.get("config", {})
        if c.get("method") != "fqvae" or _variant(c) != "I":  # Table 1's FQ-VAE (configuration I)
            continue
        commit = [v for v in rec.get("history", {}).get("commitment", []) if _finite(v)]
        if not commit:
            continue
        last = commit[-max(1, int(round(len(commit) * tail))):]
        # the components live on the conv stage's grid: the image size, halved on LSUN (its one stride-2 level)
        size = _IMAGE_SIZE[c["dataset"]] // (2 if c["dataset"] == "lsun-church" else 1)
        n = frequency_code_dim(size, size)
        err = n * float(np.mean(last))
        cos = 1.0 - err / 2.0
        rows.append({"dataset": c["dataset"], "seed": int(c.get("seed", 0)), "code_dim": n, "sq_error": err,
                     "cosine": cos, "energy_kept": max(cos, 0.0) ** 2})
    return pd.DataFrame(rows, columns=["dataset", "seed", "code_dim", "sq_error", "cosine", "energy_kept"])


def reading_quantisation_fit(fit, frame=None) -> str:
    """The quantisation fit of FQ-VAE in words (mean over seeds per data set); with Table 1's ``frame``, also
    whether FQ-VAE trails the baselines on SSIM and how many of its runs and theirs met the convergence rule."""
    if fit is None or not len(fit):
        return "No FQ-VAE run of Table 1 is stored yet."
    parts = []
    for ds in [d for d in ("mnist", "cifar10", "faces", "lsun-church") if d in set(fit.dataset)]:
        sub = fit[fit.dataset == ds]
        parts.append(f"{DATASET_LABELS[ds]} {sub.cosine.mean():.2f} (energy kept {100 * sub.energy_kept.mean():.0f} %, "
                     f"{len(sub)} seed{'s' if len(sub) != 1 else ''}, vectors of {int(sub.code_dim.iloc[0])} reals)")
    kept = float(fit.energy_kept.mean())
    text = ("At the end of training, the cosine between an FQ-VAE frequency component and the code that replaces "
            "it is " + "; ".join(parts) + ". ")
    if kept >= 0.8:
        return text + "The codes fit their components closely."
    text += (f"A code thus carries about {100 * kept:.0f} % of its component's energy in the right direction: with "
             "512 codes shared by all U components of every image, each a whole filtered spectrum, the codebook "
             "covers the components only coarsely, and the decoder receives a coarse sum of them.")
    if frame is None:
        return text
    f = label_runs(frame)
    f = f[f.table1]
    s = seed_summary(f, ["dataset", "method"], [METRICS["SSIM"]])
    behind = [DATASET_LABELS[ds] for ds in dict.fromkeys(s.dataset)
              if "fqvae" in set(s[s.dataset == ds].method)
              and (s[s.dataset == ds].set_index("method")[f"{METRICS['SSIM']}__mean"].idxmax() != "fqvae")]
    conv = f["converged"].map(said_converged)
    fq, base = conv[f.method == "fqvae"], conv[f.method != "fqvae"]
    if behind:
        text += (f" FQ-VAE trails the best baseline on SSIM on {', '.join(behind)}; {int(fq.sum())} of its {len(fq)} "
                 f"runs met the convergence rule (the baselines: {int(base.sum())} of {len(base)}), so more steps "
                 "would not close the gap where its runs converged: the coarse fit of the codes is the likelier "
                 "limit.")
    return text


def reading_convergence(frame) -> str:
    """How many runs converged, and which methods hit the cap most."""
    f = label_runs(frame)
    conv = f["converged"]
    checked = conv.map(lambda c: isinstance(c, (bool, np.bool_)) or c in (0, 1))
    if not checked.any():
        return (f"None of the {len(f)} runs checked the convergence rule (this preset trains every run for its "
                "fixed number of steps), so every cell is marked †.")
    done = conv[checked].astype(bool)
    text = f"{int(done.sum())} of {len(f)} runs converged by the rule."
    capped = f[checked & ~conv.fillna(False).astype(bool)]
    if len(capped):
        by = capped.groupby("method_label").size().sort_values(ascending=False)
        text += " Stopped at the cap: " + ", ".join(f"{k} {v}" for k, v in by.items()) + "."
    return text


# ------------------------------------------------------------------------------------------------------------
# Fig. 6: generation from a prior over the codes (specvae.experiments.fq_vae_prior)
# ------------------------------------------------------------------------------------------------------------
def prior_table(frame):
    """One row per prior (tokenizer): FID of the samples, of the tokenizer's reconstructions (the ceiling through
    that decoder) and of real training faces (FID's own floor at this N), all against the same held-out faces;
    bits per code on held-out codes beside the uniform guess; training steps and convergence. A prior that stopped
    before converging is marked † on its FID."""
    import pandas as pd

    rows = []
    for _, r in frame.iterrows():
        flag = "" if (r["converged"] is True or r["converged"] == 1) else " †"
        fid = float(r["fid"])
        rows.append({"tokenizer": METHOD_LABELS.get(r["method"], r["method"]),
                     "FID samples": (f"{fid:.1f}{flag}" if _finite(fid) else "—"),
                     "FID recon.": f"{float(r['fid_recon']):.1f}" if _finite(r["fid_recon"]) else "—",
                     "FID train faces": f"{float(r['fid_real']):.1f}" if _finite(r["fid_real"]) else "—",
                     "bits/code (test)": f"{float(r['test_bits_per_code']):.2f}",
                     "uniform": f"{float(r['uniform_bits_per_code']):.0f}",
                     "steps": int(r["steps_done"]), "converged": _conv_text(r["converged"])})
    return pd.DataFrame(rows)


def plot_prior_samples(axes, real: np.ndarray, samples: dict[str, np.ndarray], n: int = 8) -> None:
    """Rows of images: held-out faces, then each prior's samples (uint8 ``(N, C, H, W)``), ``n`` per row; ``axes``
    is a ``(1 + len(samples), n)`` array."""
    rows = {"held-out faces": real, **samples}
    for i, (name, imgs) in enumerate(rows.items()):
        for j in range(n):
            ax = axes[i, j]
            ax.axis("off")
            if j < len(imgs):
                im = np.asarray(imgs[j])
                ax.imshow(im.transpose(1, 2, 0).squeeze(), cmap="gray" if im.shape[0] == 1 else None)
        axes[i, 0].set_title(name, fontsize=9, loc="left")


def reading_prior(frame) -> str:
    """Fig. 6 in words: which prior's samples are closer to the held-out faces, how far each is above its
    tokenizer's ceiling, and how much structure each prior found (bits per code)."""
    if frame is None or len(frame) == 0:
        return "No prior is stored yet at this preset."
    f = frame.assign(label=[METHOD_LABELS.get(m, m) for m in frame["method"]])
    parts = []
    fids = {r.label: float(r.fid) for r in f.itertuples() if _finite(r.fid)}
    if len(fids) == 2:
        (a, fa), (b, fb) = sorted(fids.items(), key=lambda kv: kv[1])
        parts.append(f"{a}'s prior gives the lower sample FID ({fa:.1f} vs {b}'s {fb:.1f}, one seed each; FID at "
                     "this N moves by a few points between draws, so a small gap is not a ranking).")
    for r in f.itertuples():
        if _finite(r.fid) and _finite(r.fid_recon):
            parts.append(f"{r.label}: samples {r.fid:.1f} vs its own reconstructions {r.fid_recon:.1f} "
                         f"(the prior adds {r.fid - r.fid_recon:+.1f}); real training faces score "
                         f"{r.fid_real:.1f} against the same held-out faces.")
        parts.append(f"{r.label}'s prior needs {r.test_bits_per_code:.2f} bits per code on held-out faces "
                     f"(uniform: {r.uniform_bits_per_code:.0f}); its samples use {int(r.codes_used_by_samples)} "
                     f"of the codes the training faces use ({int(r.codes_used_by_data)}).")
    if not fids:
        parts.append("FID is not measured at this preset.")
    parts += _information_per_face(f)
    unconv = [r.label for r in f.itertuples() if not (r.converged is True or r.converged == 1)]
    if unconv:
        parts.append("Not converged by the rule (marked †): " + ", ".join(unconv) + ".")
    return " ".join(parts)


def _information_per_face(f) -> list[str]:
    """How much each prior says a face's code sequence carries: bits per code (its held-out cross-entropy) × the
    codes per face (``cat.grid``), and, when one tokenizer's faces carry a quarter or less of the other's, what that
    means for its samples. ``f``: the prior frame with a ``label`` column."""
    if "cat.grid" not in f.columns:
        return []
    bits = {}
    for r in f.to_dict("records"):
        n = int(np.prod(r["cat.grid"])) if r["cat.grid"] is not None else 0
        if n and _finite(r["test_bits_per_code"]):
            bits[r["label"]] = (n, float(r["test_bits_per_code"]) * n, r)
    if not bits:
        return []
    out = ["By its prior's measure (bits per code × codes per face), a face's code sequence carries about "
           + " and ".join(f"{b:,.0f} bits for {label} ({n} codes)" for label, (n, b, _) in bits.items()) + "."]
    if len(bits) == 2:
        (lo, (_, blo, rlo)), (hi, (_, bhi, _)) = sorted(bits.items(), key=lambda kv: kv[1][1])
        if blo > 0 and bhi / blo >= 4:
            fid, recon = rlo.get("fid"), rlo.get("fid_recon")
            gap = (f" (its prior adds {fid - recon:+.1f} to its reconstructions' FID)"
                   if _finite(fid) and _finite(recon) else "")
            out.append(f"{lo}'s codes carry {bhi / blo:.0f}× less than {hi}'s: its code sequences are nearly "
                       f"predictable, so its prior has little to learn and its samples sit at its tokenizer's "
                       f"ceiling{gap}. A low sample FID from such a prior measures the tokenizer, not the prior.")
    return out


def reading_prior_spectra(arrays: dict[str, dict[str, np.ndarray]], cut: float = 0.25) -> str:
    """Fig. 6's spectra in words: how much power each prior's samples lack above ``cut`` cycles/pixel, against the
    held-out faces and against the prior's own tokenizer's reconstructions (mean difference of the radial profiles
    in dB over those frequencies). ``arrays``: method label → the prior record's arrays (``freqs``,
    ``profile_real``, ``profile_samples``, ``profile_recon``)."""
    gaps = {}
    for label, a in arrays.items():
        freqs = np.asarray(a["freqs"], float)
        high = freqs > cut
        if not high.any():
            continue
        samples = np.asarray(a["profile_samples"], float)[high]
        gaps[label] = (float(np.mean(samples - np.asarray(a["profile_real"], float)[high])),
                       float(np.mean(samples - np.asarray(a["profile_recon"], float)[high])))
    if not gaps:
        return ""
    text = (f"Above {cut:g} cycles/pixel the samples have " + ", ".join(
        f"{abs(d):.1f} dB {'less' if d < 0 else 'more'} power than the held-out faces for {label} ({dr:+.1f} dB against "
        "its own reconstructions)" for label, (d, dr) in gaps.items()) + ".")
    if len(gaps) == 2:
        smoother = min(gaps, key=lambda k: gaps[k][0])
        text += f" {smoother}'s samples are the smoother"
        text += (": quantising frequency components did not keep the high ones here." if smoother == "FQ-VAE"
                 else ".")
    return text


def reading_retrained(notes: dict[str, dict[str, Any] | None]) -> str:
    """Which of Fig. 6's tokenizers were recreated by training their stored run again, and how closely that
    training followed the stored one (``notes``: prior label → its record's ``extra.tokenizer_retrained``, None
    for the grid's own checkpoint; :func:`specvae.experiments.fq_vae.retrain_checkpoint` writes them). A training
    that did not repeat the stored one makes the prior's tokenizer a re-draw of Table 1's model, and the reader is
    told so."""
    parts = []
    for label, note in notes.items():
        if not note:
            continue
        diff = float(note.get("history_max_abs_diff", math.inf))
        where = note.get("device") or "this machine"
        if diff == 0.0:
            parts.append(f"{label}: its tokenizer's checkpoint (never committed) was recreated by training the stored "
                         f"run again on {where}; the training repeated the stored one exactly (identical curves over "
                         f"{int(note.get('history_terms', 0))} logged terms), so the prior sits on Table 1's model.")
        else:
            parts.append(f"{label}: its tokenizer's checkpoint (never committed) was recreated by training the stored "
                         f"run again (same code, seed and data) on {where}, the stored run having trained on "
                         f"{note.get('stored_device') or 'an unrecorded device'}; the training did not repeat the "
                         f"stored one (largest difference of the logged training curves {diff:.3g}; "
                         f"{int(note.get('steps', -1)):,} vs {int(note.get('stored_steps', -1)):,} steps), so this "
                         "prior sits on a re-draw of Table 1's faces model, not on that model itself: the "
                         "reconstruction FID beside it is the ceiling that applies.")
    return " ".join(parts)


# ------------------------------------------------------------------------------------------------------------
# notes
# ------------------------------------------------------------------------------------------------------------
def reproduction_notes() -> str:
    """Every open choice and substitute of the chapter, as Markdown bullets (the docstrings hold the details)."""
    return "\n".join([
        "- **Data.** MNIST 28×28 (official split); CIFAR-10: the 6,102-image subset (5,085 train, 1,017 test) — "
        "**rFID on 1,017 test images is not comparable with full-set numbers**; CelebA → our 64×64 CelebA-style "
        "faces (every 10th image is test); LSUN Church not available (its column keeps the paper's numbers; "
        "`configs(datasets=('lsun-church',))` runs it for users who have it, 128×128, conv stage at h, w = H/2, W/2).",
        "- **Shared protocol** (the CVQ-VAE toy protocol, fact sheet §4.5): f = 4 for every method, so every method "
        "quantises U = (H/4)(W/4) code vectors (MNIST 49, CIFAR 64, faces 256; FQ-VAE: U = D·N components); "
        "K = 512 codes for all; the baselines share the toy backbone (hidden 128, residual 32, 2 residual layers, "
        "code dim 64); inputs in [−1, 1]; Adam, lr 2e-3 (MNIST) / 3e-3 (others) for every method (§4.1, 'same "
        "hyperparameter settings').",
        "- **Losses**: each method its official one — VQ/CVQ/FQ: MSE/var + codebook + 0.25·commitment (CVQ-VAE's "
        "data variance; 1 for faces); SQ-VAE: (dim/2)·log(Σ err²/B) + KL terms; HQA: (Σ err² + 0.001 KL + "
        "0.001 commit)/dims per layer, two layers trained greedily on half the step budget each, with the "
        "gradient norm clipped at 1.0 as in HQA's official training (without it the top layer blew up as the "
        "Gumbel temperature fell to 0.001; the other methods are not clipped).",
        "- **Baselines as adapted to the shared backbone**: SQ-VAE without BatchNorm, HQA's layers built from the toy "
        "blocks (one stride-2 level each, at half the widths so that a layer's convolutions cost what the "
        "backbone's do per image; its quantiser at 4× the positions still makes HQA the dearest baseline to "
        "train), both on [−1, 1] inputs (their official nets use [0, 1] and a Sigmoid); "
        "HQA's codes are drawn at test time (official), seeded.",
        "- **FQ-VAE (no official code)**: conv stage = the toy encoder with stride-1 convolutions (its width "
        "`fq_hidden` is narrowed at the `cpu` preset to match the baselines' cost per image); rFFT2 with 'ortho' "
        "norm in float32; routing MLP on the pooled conv features (width hidden/4), bases 0.02·N(0, 1); each of "
        "the U = D·N components Y_{d,i} = r_{d,i}K_i⊙F_d is one code vector of 2·h·(⌊w/2⌋+1) reals; eq. 7 divides "
        "by δ (clamped at 1e-3), δ on the codebook before each update; L2 lookup; GCM on the mean modulus of "
        "each component with A = I fixed, B = diag(softmax(Conv1d)), C learnable (init 1e-6), sigmoid weights; "
        "weighted components summed per channel, then irFFT2. **ℓ2-normalised components and codes** "
        "(ViT-VQGAN's normalised codes) wherever the components are quantised (B, F, H, I, Tables 3-4's FFT rows): "
        "the paper does not state its codebook init or lookup, and with raw components (≈ 2e-4 a value at "
        "initialisation) and the U(−1/K, 1/K) codebook the components grew a millionfold within 60 steps at the "
        "paper's learning rate and every vector mapped to one code; the spatial configurations keep raw vectors "
        "as their baselines do, so Table 2's 'Freq. quant.' toggles the normalisation with it.",
        "- **Ablation**: 'spatial' configurations (A, C, D, E, G) use the baselines' conv backbone with FQ-VAE's "
        "codebook update / GCM on its h·w tokens; A is Table 1's VQ-VAE and I its FQ-VAE.",
        "- **Table 3, MNIST**: U = 49, so D ∈ {1, 7} (the paper's grid there is unknown).",
        "- **Table 4**: all three extractors with everything else as configuration I (the conv row is G; the paper "
        "derives it from H); transformer = ViT-VQGAN-style blocks over 4×4 patches of the conv stage's output; "
        "s/epoch = training images / training images per s; images/s = inference at batch 64 after a warm-up; "
        "peak memory = one test batch's forward (CUDA: max_memory_allocated above the memory held before; CPU: the "
        "largest rise of the C heap in use (jemalloc's allocated bytes under `specvae run`, which preloads it; "
        "glibc's counters otherwise), read after every operation).",
        "- **Metrics**: SSIM (Gaussian 11×11, σ = 1.5) and VGG-LPIPS per image on lossless reconstructions "
        "(CVQ-VAE's evaluation used JPEG-q75 files and a uniform SSIM window); rFID with the TF-Inception "
        "(specvae.metrics) against the same test images; codebook usage/perplexity over the evaluation set; "
        "unit information = rise of the data set's MSE when a code is replaced by its nearest other code "
        "(the paper's 'removal', unspecified), faces, seed 0.",
        "- **Fig. 6 (generation)**: the paper's latent diffusion model (sizes not stated) is replaced by an "
        "autoregressive transformer over each tokenizer's code ids (chapter 3's transformer, unconditional; width "
        "128, 4 blocks at `cpu`), trained on the faces runs' codes of the training faces (CVQ-VAE: 16 × 16 grid, "
        "raster order; FQ-VAE: D × N = 2 × 128 components, channel-major) with chapter 3's optimiser and the "
        "convergence rule on its loss; plain ancestral sampling (temperature 1, no top-k); FID of 2,471 samples "
        "against all 2,471 held-out faces (`cpu`; more than Inception's 2,048 feature dimensions), beside the tokenizer's reconstructions and real training faces on "
        "the same held-out faces.",
        "- **Training length**: the convergence rule of the project (relative change of the logged MSE over the last "
        "20 % of steps below the preset's tolerance), capped at the preset's steps; runs that hit the cap are "
        "flagged † in every table.",
    ])

"""Chapter 1 report: the tables and the discussion built from the stored runs of
:mod:`specvae.experiments.simpler_is_better`.

Nothing here trains or evaluates a model: these functions read result frames (``ResultStore.frame``) and the
paper's reference tables (:mod:`specvae.reference`). They live apart from the run module so that changing how the
results are shown never changes the code fingerprint of the runs.

Ref: Björk et al., "Simpler is Better", ICASSP 2022, Tables 1-2.
"""

from __future__ import annotations

from typing import Any

from specvae.experiments.simpler_is_better import OBJECTIVE_LABELS, PAPER_DATASET, UPSAMPLERS

__all__ = ["summary_table", "compare_with_paper", "ordering_agreement", "paper_table", "discussion"]

# ------------------------------------------------------------------------------------------------------------
_DOMAINS = {"ai": "AI", "ft": "2D FT", "spatial": "Spatial"}


def summary_table(frame) -> "Any":
    """Mean and std *over seeds* of each run's mean test RMSE, per (upsample, dataset, objective, domain).

    Columns: ``upsample, dataset, objective, domain, mean, std, n_seeds, test_std_mean`` where ``test_std_mean`` is
    the std over test images (the paper's ±) averaged over seeds. ``std`` is NaN with a single seed.
    """
    import pandas as pd

    rows = []
    for (up, ds, obj), g in frame.groupby(["upsample", "dataset", "objective"], sort=False):
        for key, name in _DOMAINS.items():
            vals = g[f"rmse_{key}_mean"].astype(float)
            rows.append({"upsample": up, "dataset": ds, "objective": obj, "domain": name,
                         "mean": vals.mean(), "std": vals.std(ddof=1) if len(vals) > 1 else float("nan"),
                         "n_seeds": len(vals), "test_std_mean": g[f"rmse_{key}_std"].astype(float).mean()})
    return pd.DataFrame(rows)


def compare_with_paper(summary, reference) -> "Any":
    """Ours beside the paper's numbers: one row per (table, dataset, objective, domain) the paper reports.

    ``reference`` is :func:`specvae.reference.load` ("bjork2022", "table1"/"table2") concatenated. Adds ``gap`` =
    ours − paper and ``paper_best`` (the paper's lowest mean in that dataset/domain column).
    """
    import pandas as pd

    table_of = {"transposed": "table1", "nearest_conv5": "table2"}
    obj_of = OBJECTIVE_LABELS
    s = summary.copy()
    s["table"] = s["upsample"].map(table_of)
    s["paper_dataset"] = s["dataset"].map(PAPER_DATASET)
    s["paper_objective"] = s["objective"].map(obj_of)
    ref = reference.reset_index(drop=True).rename(columns={"mean": "paper_mean", "std": "paper_std", "dataset": "paper_dataset",
                                    "objective": "paper_objective"})
    out = s.merge(ref, on=["table", "paper_dataset", "paper_objective", "domain"], how="left")
    out["gap"] = out["mean"] - out["paper_mean"]
    best = ref.loc[ref.groupby(["table", "paper_dataset", "domain"])["paper_mean"].idxmin()]
    best = best[["table", "paper_dataset", "domain", "paper_objective"]].rename(
        columns={"paper_objective": "paper_best_objective"})
    out = out.merge(best, on=["table", "paper_dataset", "domain"], how="left")
    out["paper_best"] = out["paper_objective"] == out["paper_best_objective"]
    return pd.DataFrame(out)


def ordering_agreement(comparison) -> "Any":
    """Per (table, dataset, domain): Kendall τ between our ranking of the objectives and the paper's, over the
    objectives the paper reports; also whether our best objective is the paper's best.

    Columns: ``table, dataset, domain, n, kendall_tau, p_value, our_best, paper_best, same_best``.
    """
    import pandas as pd
    from scipy.stats import kendalltau

    rows = []
    have = comparison.dropna(subset=["paper_mean", "mean"])
    for (table, ds, dom), g in have.groupby(["table", "dataset", "domain"], sort=False):
        if len(g) >= 2:
            tau, p = kendalltau(g["mean"].to_numpy(), g["paper_mean"].to_numpy())
        else:
            tau, p = float("nan"), float("nan")
        ours = g.loc[g["mean"].idxmin(), "objective"]
        theirs = g.loc[g["paper_mean"].idxmin(), "objective"]
        rows.append({"table": table, "dataset": ds, "domain": dom, "n": len(g), "kendall_tau": float(tau),
                     "p_value": float(p), "our_best": ours, "paper_best": theirs, "same_best": ours == theirs})
    return pd.DataFrame(rows)


def _short_upsample(upsample: str) -> str:
    return "T" if upsample == "transposed" else "N.1.5"


def _our_best(comparison) -> "Any":
    """The row of our lowest mean per (upsample, dataset, domain) column."""
    return comparison.loc[comparison.groupby(["upsample", "dataset", "domain"])["mean"].idxmin()]


def paper_table(comparison, upsample: str) -> "Any":
    """Table 1 (``upsample="transposed"``) or Table 2 (``"nearest_conv5"``) as the chapter shows it.

    Rows (data set, objective); for each domain (AI, 2D FT, Spatial) the columns ``ours`` (mean over seeds; ✓ marks
    our best objective in that column), ``± (seeds)``, ``± (images)`` (std over test images, averaged over seeds:
    the paper's kind of ±), ``paper`` (mean ± std; ★ marks the paper's best; — where the paper has no number) and
    ``gap`` (ours − paper). ``comparison`` is :func:`compare_with_paper`'s output.
    """
    import numpy as np

    if upsample not in UPSAMPLERS:
        raise ValueError(f"unknown upsample {upsample!r}: choose one of {UPSAMPLERS}")
    best_rows = set(_our_best(comparison).index)
    c = comparison[comparison.upsample == upsample].copy()
    c["our_best"] = c.index.isin(best_rows)
    c["objective"] = c["objective"].map(OBJECTIVE_LABELS)
    c["dataset"] = c["dataset"].map(lambda d: "faces (CelebA)" if d == "faces" else PAPER_DATASET[d])
    c["ours"] = [f"{m:.4g}{' ✓' if b else ''}" for m, b in zip(c["mean"], c["our_best"])]
    c["± (seeds)"] = ["" if np.isnan(v) else f"{v:.2g}" for v in c["std"]]
    c["± (images)"] = [f"{v:.2g}" for v in c["test_std_mean"]]
    c["paper"] = ["—" if np.isnan(m) else f"{m:.4g} ± {v:.2g}{' ★' if b else ''}"
                  for m, v, b in zip(c["paper_mean"], c["paper_std"], c["paper_best"])]
    c["gap"] = ["" if np.isnan(g) else f"{g:+.3g}" for g in c["gap"]]
    kinds = ("ours", "± (seeds)", "± (images)", "paper", "gap")
    wide = c.pivot_table(index=["dataset", "objective"], columns="domain", values=list(kinds), aggfunc="first",
                         sort=False).swaplevel(0, 1, axis=1)
    return wide[[(d, k) for d in _DOMAINS.values() for k in kinds]]


def discussion(summary, comparison, ordering) -> str:
    """The chapter's discussion as Markdown bullets, written from the numbers so it stays true at any preset.

    Which of the paper's claims hold in our runs: is the FFT loss best per column, does our ordering of the
    objectives agree (Kendall τ, same best), does N.1.5 lower the RMSE, how Watson-DFT does on Shapes (which the
    paper omits), and the scale of our numbers against the paper's.
    """
    import numpy as np

    best = _our_best(comparison)
    out = [f"- **FFT loss best?** The paper's FFT loss is best in most columns of Tables 1-2. In our runs the FFT "
           f"objective has the lowest mean RMSE in {int((best.objective == 'fft').sum())} of {len(best)} columns "
           "(data set × domain × up-sampler, Watson on Shapes included)."]
    for domain in _DOMAINS.values():
        sub = best[best.domain == domain]
        out.append(f"  - {domain}: best objective per column — " + ", ".join(
            f"{r.dataset}/{_short_upsample(r.upsample)}: {OBJECTIVE_LABELS[r.objective]}" for r in sub.itertuples()))
    out.append(f"- **Ordering**: mean Kendall τ between our and the paper's ranking over {len(ordering)} columns "
               f"is {float(ordering['kendall_tau'].mean()):.2f}; the best objective agrees in "
               f"{int(ordering['same_best'].sum())} of {len(ordering)} columns.")
    wide = summary.pivot_table(index=["dataset", "objective", "domain"], columns="upsample", values="mean")
    if set(UPSAMPLERS) <= set(wide.columns):
        better = wide["nearest_conv5"] < wide["transposed"]
        out.append("- **N.1.5 vs transposed**: the paper finds the effect of N.1.5 inconsistent. In our runs N.1.5 "
                   f"lowers the RMSE in {int(better.sum())} of {len(better)} (data set, objective, domain) cells.")
    w = comparison[(comparison.dataset == "shapes") & (comparison.objective == "watson")]
    if len(w):
        out.append("- **Watson-DFT on Shapes** (omitted by the paper): our runs give " + ", ".join(
            f"{r.domain} {r.mean:.3g} ({_short_upsample(r.upsample)})" for r in w.itertuples())
            + "; compare with the vanilla row to judge whether it 'works'.")
    have = comparison.dropna(subset=["paper_mean"])
    ratio = {d: float(np.median(g["mean"] / g["paper_mean"])) for d, g in have.groupby("domain")}
    out.append("- **Scale of the numbers**: median ratio ours / paper per domain: "
               + ", ".join(f"{d} {v:.3g}" for d, v in ratio.items())
               + ". The paper does not define its RMSE conventions (log base, FFT normalisation, whether the "
                 "spatial number is an RMSE or an MSE on which pixel scale), so absolute values are not comparable; "
                 "the orderings are.")
    return "\n".join(out)

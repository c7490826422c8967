"""Chapter 1 report: the tables, the comparison with the paper and the discussion, built from the stored runs of
:mod:`specvae.experiments.simpler_is_better`.

Nothing here trains or evaluates a model: these functions read result frames (``ResultStore.frame``), stored
records (for the spectra) and the paper's reference tables (:mod:`specvae.reference`). They live apart from the
run module so that changing how the results are shown never changes the code fingerprint of the runs.

How uncertainty is respected
----------------------------
- A run's number is its mean over the test images; a configuration's number is the **mean over seeds** of that,
  with the seeds' standard deviation, minimum and maximum (:func:`summary_table`).
- **Best mark** (:data:`BEST_MARK`): in a column (up-sampler × data set × domain) the objective with the lowest
  mean is marked only when *every* seed of it scored lower than *every* seed of the runner-up (the ranges over
  seeds do not overlap; :func:`best_per_column`). With a single seed nothing is marked. :func:`best_rule` states
  the rule with its chance level (two equally good objectives with 3 seeds each are separated this way with
  probability 2 / C(6, 3) = 1/10).
- **Converged** (:func:`convergence`): a row is flagged when any of its seeds stopped at the step cap without
  meeting the convergence rule (``metrics.converged`` false); "not recorded" when a seed has no such record.
- **Orderings** against the paper (:func:`ordering_agreement`) come with exact chance baselines under random
  orderings: the distribution of Kendall's τ for n objectives (:func:`tau_null`), of the mean τ over columns
  (:func:`mean_tau_null`) and of the number of columns with the same best objective (:func:`same_best_null`),
  all by exact enumeration with fractions.

The paper's spatial column is shown for reference only: its numbers (e.g. Shapes 0.0004 ± 0.0088) are not RMSEs
of [0, 1] pixels (see :mod:`specvae.spectral`), so it carries no paper-best mark, no ratio, and takes no part in
the ordering analysis (:data:`COMPARABLE_DOMAINS`).

Reader-facing tables (``*_table`` functions whose output goes to the book) have plain-language headers and a
default ``RangeIndex`` that is never shown: render them with :func:`myst_table`, which writes a MyST ``{table}``
block (a numbered caption in the book) without the index.

Ref: Björk et al., "Simpler is Better", ICASSP 2022, Tables 1-2, Fig. 2; Kendall, "A new measure of rank
correlation", Biometrika 1938 (τ and its permutation distribution).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from fractions import Fraction
from typing import Any

import numpy as np

from specvae.experiments.simpler_is_better import OBJECTIVE_LABELS, PAPER_DATASET, UPSAMPLERS
from specvae.experiments.store import converged_flag

__all__ = [
    "DOMAINS",
    "COMPARABLE_DOMAINS",
    "PAPER_OBJECTIVES",
    "CONTROL",
    "DATASET_LABELS",
    "UPSAMPLE_LABELS",
    "BEST_MARK",
    "PAPER_BEST_MARK",
    "objective_label",
    "convergence",
    "convergence_label",
    "power_law_steps",
    "fit_power_law",
    "convergence_outlook",
    "convergence_outlook_sentence",
    "summary_table",
    "best_per_column",
    "best_rule",
    "compare_with_paper",
    "paper_table",
    "ordering_agreement",
    "ordering_table",
    "kendall_tau",
    "tau_null",
    "mean_tau_null",
    "same_best_null",
    "tau_null_table",
    "chance_baselines",
    "ordering_text",
    "control_comparison",
    "control_table",
    "control_sentence",
    "quality_table",
    "quality_sentence",
    "spectral_excess",
    "peaks_sentence",
    "upsampler_sentence",
    "fft_wins_sentence",
    "watson_shapes_sentence",
    "alpha_sweep_table",
    "timing_table",
    "convergence_note",
    "caveats",
    "discussion",
    "myst_table",
]

# ------------------------------------------------------------------------------------------------------------
# names as the reader sees them
# ------------------------------------------------------------------------------------------------------------
#: metric key → the paper's domain name
DOMAINS: dict[str, str] = {"ai": "AI", "ft": "2D FT", "spatial": "Spatial"}
#: the domains where our RMSE is the same kind of quantity as the paper's (the spatial column is not)
COMPARABLE_DOMAINS: tuple[str, ...] = ("AI", "2D FT")
#: the objectives of the paper's tables, in its row order
PAPER_OBJECTIVES: tuple[str, ...] = ("vanilla", "watson", "ai", "fft")
#: the control run beside the FFT objective: α·H·W·pixel-MSE + β·KL (the FFT term replaced by the pixel MSE it
#: equals by Parseval, and no BCE)
CONTROL = "mse"
#: our data sets as the reader sees them (``faces`` are CelebA-style crops, never "CelebA")
DATASET_LABELS: dict[str, str] = {"shapes": "Shapes", "mnist": "MNIST", "faces": "CelebA-style faces"}
UPSAMPLE_LABELS: dict[str, str] = {"transposed": "transposed", "nearest_conv5": "N.1.5"}
_TABLE_OF = {"transposed": "table1", "nearest_conv5": "table2"}
_DATASET_ORDER = ("shapes", "mnist", "faces")
_OBJECTIVE_ORDER = ("vanilla", "watson", "ai", "fft", CONTROL)
_LABELS = {CONTROL: "H·W-MSE (no FFT)", **OBJECTIVE_LABELS}
#: our best objective in a column, when the seed ranges separate it from the runner-up
BEST_MARK = "✓"
#: the paper's best (lowest) objective in a comparable column
PAPER_BEST_MARK = "★"
_DASH = "—"
#: no-break space: a number, its ± and its mark stay on one line of a table cell
_NBSP = "\u00a0"


def objective_label(objective: str) -> str:
    """The reader's name of an objective (the paper's for its four; ``"H·W-MSE (no FFT)"`` for the control)."""
    return _LABELS.get(objective, objective)


def _ds_label(dataset: str) -> str:
    return DATASET_LABELS.get(dataset, dataset)


def _order_key(dataset: str, objective: str) -> tuple[int, int]:
    d = _DATASET_ORDER.index(dataset) if dataset in _DATASET_ORDER else len(_DATASET_ORDER)
    o = _OBJECTIVE_ORDER.index(objective) if objective in _OBJECTIVE_ORDER else len(_OBJECTIVE_ORDER)
    return d, o


def _require(frame, columns: Iterable[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise KeyError(f"{what}: the frame has no column(s) {missing}; pass the runs' frame "
                       f"(ResultStore.frame / simpler_is_better.run_all); it has {sorted(frame.columns)[:20]}")


# ------------------------------------------------------------------------------------------------------------
# convergence
# ------------------------------------------------------------------------------------------------------------
def _status(values: Iterable[Any]) -> dict[str, Any]:
    flags = [converged_flag(v) for v in values]
    n_not = sum(f is False for f in flags)
    n_unknown = sum(f is None for f in flags)
    status = False if n_not else (None if n_unknown else True)
    return {"n_seeds": len(flags), "n_converged": sum(f is True for f in flags), "n_not_converged": n_not,
            "n_unknown": n_unknown, "converged": status}


def convergence(frame, keys: Sequence[str] = ("upsample", "dataset", "objective")) -> Any:
    """Convergence per configuration: one row per ``keys`` group of the runs' frame.

    Columns: ``*keys, n_seeds, n_converged, n_not_converged, n_unknown, converged`` where ``converged`` is
    ``False`` when any seed did not converge, ``True`` when every seed did, and ``None`` otherwise (some seed
    has no ``converged`` record and none failed). A frame without a ``converged`` column gives ``None`` rows.
    """
    import pandas as pd

    _require(frame, keys, "convergence")
    rows = []
    for key, g in frame.groupby(list(keys), sort=False):
        vals = g["converged"].tolist() if "converged" in g.columns else [None] * len(g)
        rows.append({**dict(zip(keys, key)), **_status(vals)})
    return pd.DataFrame(rows)


def convergence_label(converged: Any, n_not: int = 0, n_seeds: int = 0) -> str:
    """``"yes"``, ``"no (k of n seeds)"`` or ``"not recorded"`` for a row's convergence status."""
    flag = converged_flag(converged)
    if flag is True:
        return "yes"
    if flag is False:
        return f"no ({int(n_not)} of {int(n_seeds)} seeds)"
    return "not recorded"


# ------------------------------------------------------------------------------------------------------------
# summary over seeds
# ------------------------------------------------------------------------------------------------------------
def summary_table(frame) -> Any:
    """Per (upsample, dataset, objective, domain): statistics *over seeds* of each run's mean test RMSE.

    Columns: ``upsample, dataset, objective, domain, mean, std, min, max, n_seeds, test_std_mean, converged,
    n_not_converged``. ``std`` is the sample std over seeds (NaN with one seed); ``test_std_mean`` is the std
    over test images (the paper's ±) averaged over seeds; ``converged`` as :func:`convergence`.
    A configuration must have a single α: pass the grid, not the α sweep.
    """
    import pandas as pd

    _require(frame, ["upsample", "dataset", "objective"], "summary_table")
    if "alpha" in frame.columns:
        n_alpha = frame.groupby(["upsample", "dataset", "objective"])["alpha"].nunique()
        if (n_alpha > 1).any():
            bad = n_alpha[n_alpha > 1].index[0]
            raise ValueError(f"configuration {bad} has runs with {int(n_alpha[bad])} different α values: pass the "
                             "chapter's grid (simpler_is_better.configs), not the α sweep, to summary_table")
    rows = []
    for (up, ds, obj), g in frame.groupby(["upsample", "dataset", "objective"], sort=False):
        conv = _status(g["converged"].tolist() if "converged" in g.columns else [None] * len(g))
        for key, name in DOMAINS.items():
            vals = g[f"rmse_{key}_mean"].astype(float)
            rows.append({"upsample": up, "dataset": ds, "objective": obj, "domain": name,
                         "mean": vals.mean(), "std": vals.std(ddof=1) if len(vals) > 1 else float("nan"),
                         "min": vals.min(), "max": vals.max(), "n_seeds": len(vals),
                         "test_std_mean": g[f"rmse_{key}_std"].astype(float).mean(),
                         "converged": conv["converged"], "n_not_converged": conv["n_not_converged"]})
    return pd.DataFrame(rows)


def _separated(lo_max: float, hi_min: float, n_lo: int, n_hi: int) -> bool:
    """Every seed of the lower configuration below every seed of the higher one (needs ≥ 2 seeds each)."""
    return n_lo >= 2 and n_hi >= 2 and bool(lo_max < hi_min)


def _overlap(a, b) -> bool | None:
    """Do the seed ranges [min, max] of rows ``a`` and ``b`` overlap? ``None`` when one has a single seed."""
    if a["n_seeds"] < 2 or b["n_seeds"] < 2:
        return None
    return not (a["max"] < b["min"] or b["max"] < a["min"])


def _best_of(g, lower_is_better: bool = True) -> dict[str, Any]:
    """Best and runner-up of one column's rows (``mean``, ``min``, ``max``, ``n_seeds``, ``objective``)."""
    s = g.sort_values("mean", ascending=lower_is_better)
    best = s.iloc[0]
    if len(s) < 2:
        return {"best": best["objective"], "runner_up": None, "best_mean": best["mean"],
                "runner_up_mean": float("nan"), "clear": False}
    run = s.iloc[1]
    if lower_is_better:
        clear = _separated(best["max"], run["min"], best["n_seeds"], run["n_seeds"])
    else:
        clear = _separated(-best["min"], -run["max"], best["n_seeds"], run["n_seeds"])
    return {"best": best["objective"], "runner_up": run["objective"], "best_mean": float(best["mean"]),
            "runner_up_mean": float(run["mean"]), "clear": clear}


def best_per_column(summary, objectives: Sequence[str] = PAPER_OBJECTIVES) -> Any:
    """Our best objective per column (upsample × dataset × domain) among ``objectives`` (the control is not a
    contender), with the runner-up and ``clear`` = the best's seed range lies entirely below the runner-up's.

    Columns: ``upsample, dataset, domain, best, runner_up, best_mean, runner_up_mean, clear``.
    """
    import pandas as pd

    s = summary[summary["objective"].isin(objectives)]
    rows = [{"upsample": up, "dataset": ds, "domain": dom, **_best_of(g)}
            for (up, ds, dom), g in s.groupby(["upsample", "dataset", "domain"], sort=False)]
    return pd.DataFrame(rows, columns=["upsample", "dataset", "domain", "best", "runner_up", "best_mean",
                                       "runner_up_mean", "clear"])


def best_rule(n_seeds: int) -> str:
    """The best-mark rule in words, with the chance that two equally good objectives are separated by it."""
    if n_seeds < 2:
        return (f"{BEST_MARK} would mark our best objective in a column when every seed of it scored lower than "
                "every seed of the runner-up; with a single seed per configuration the spread over seeds is "
                "unknown, so nothing is marked.")
    p = Fraction(2, math.comb(2 * n_seeds, n_seeds))
    return (f"{BEST_MARK} marks our best (lowest) objective in a column only when every one of its {n_seeds} seeds "
            f"scored lower than every seed of the runner-up, i.e. their ranges over seeds do not overlap. Two "
            f"equally good objectives are separated this way by chance with probability {p} "
            f"(2 / C({2 * n_seeds}, {n_seeds})); a column without {BEST_MARK} has no clear winner.")


# ------------------------------------------------------------------------------------------------------------
# ours beside the paper
# ------------------------------------------------------------------------------------------------------------
def compare_with_paper(summary, reference) -> Any:
    """Ours beside the paper's numbers: the summary rows of the paper's objectives joined with its tables.

    ``reference`` is :func:`specvae.reference.load` ("bjork2022", "table1"/"table2") concatenated. Adds
    ``table``, ``paper_mean``, ``paper_std`` (NaN where the paper has no number), ``comparable`` (domain in
    :data:`COMPARABLE_DOMAINS`), ``ratio`` = ours ÷ paper (comparable domains only) and ``paper_best`` (the
    paper's lowest mean in that table/data set/domain column; comparable domains only).
    """
    import pandas as pd

    s = summary[summary["objective"].isin(PAPER_OBJECTIVES)].copy()
    s["table"] = s["upsample"].map(_TABLE_OF)
    s["paper_dataset"] = s["dataset"].map(PAPER_DATASET)
    s["paper_objective"] = s["objective"].map(OBJECTIVE_LABELS)
    ref = reference.reset_index(drop=True).rename(columns={
        "mean": "paper_mean", "std": "paper_std", "dataset": "paper_dataset", "objective": "paper_objective"})
    out = s.merge(ref[["table", "paper_dataset", "paper_objective", "domain", "paper_mean", "paper_std"]],
                  on=["table", "paper_dataset", "paper_objective", "domain"], how="left")
    out["comparable"] = out["domain"].isin(COMPARABLE_DOMAINS)
    out["ratio"] = np.where(out["comparable"], out["mean"] / out["paper_mean"], np.nan)
    best = ref.loc[ref.groupby(["table", "paper_dataset", "domain"])["paper_mean"].idxmin()]
    best = best[["table", "paper_dataset", "domain", "paper_objective"]].rename(
        columns={"paper_objective": "paper_best_objective"})
    out = out.merge(best, on=["table", "paper_dataset", "domain"], how="left")
    out["paper_best"] = out["comparable"] & (out["paper_objective"] == out["paper_best_objective"])
    return pd.DataFrame(out.drop(columns=["paper_best_objective"]))


def _pm(mean: float, std: float, fmt: str = ".4g", sfmt: str = ".2g") -> str:
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return _DASH
    if std is None or (isinstance(std, float) and math.isnan(std)):
        return format(mean, fmt)
    return f"{format(mean, fmt)}{_NBSP}±{_NBSP}{format(std, sfmt)}"


def paper_table(comparison, upsample: str, domain: str, *, summary=None, control: bool = True) -> Any:
    """Table 1 (``upsample="transposed"``) or Table 2 (``"nearest_conv5"``), one ``domain`` ("AI", "2D FT",
    "Spatial"), as the chapter shows it: one row per (data set, objective), columns

    - ``Data set``, ``Objective``;
    - ``Ours`` — mean ± std over seeds, with :data:`BEST_MARK` on the clear best (:func:`best_per_column`);
    - ``± images`` — std over test images, averaged over seeds (the paper's kind of ±);
    - ``Paper`` — the paper's mean ± std over images, :data:`PAPER_BEST_MARK` on its best (comparable domains
      only), "—" where it has no number; headed ``Paper (another quantity)`` in the spatial domain;
    - ``Converged`` (:func:`convergence_label`).

    Means have 3 significant digits and spreads 2, so that a cell fits one line of the book's page; the
    ratio ours ÷ paper is left to :func:`discussion` (it is near 1 partly by construction).

    With ``summary`` and ``control``, the H·W-MSE control's row follows the FFT row (no paper number, no mark).
    The frame has a ``RangeIndex`` and is meant for :func:`myst_table`.
    """
    import pandas as pd

    if upsample not in UPSAMPLERS:
        raise ValueError(f"unknown upsample {upsample!r}: choose one of {UPSAMPLERS}")
    if domain not in DOMAINS.values():
        raise ValueError(f"unknown domain {domain!r}: choose one of {tuple(DOMAINS.values())}")
    comparable = domain in COMPARABLE_DOMAINS
    c = comparison[(comparison.upsample == upsample) & (comparison.domain == domain)]
    best = best_per_column(c)
    clear = {(r.dataset, r.best) for r in best.itertuples() if r.clear}
    rows = []
    for r in c.itertuples():
        rows.append({
            "_key": _order_key(r.dataset, r.objective),
            "Data set": _ds_label(r.dataset), "Objective": objective_label(r.objective),
            "Ours": _pm(r.mean, r.std, ".3g") + (_NBSP + BEST_MARK if (r.dataset, r.objective) in clear else ""),
            "± images": format(r.test_std_mean, ".2g"),
            "Paper": (_DASH if math.isnan(r.paper_mean) else
                      _pm(r.paper_mean, r.paper_std, ".3g") + (_NBSP + PAPER_BEST_MARK if r.paper_best else "")),
            "Converged": convergence_label(r.converged, r.n_not_converged, r.n_seeds)})
    if control and summary is not None:
        k = summary[(summary.objective == CONTROL) & (summary.upsample == upsample) & (summary.domain == domain)]
        for r in k.itertuples():
            rows.append({
                "_key": _order_key(r.dataset, r.objective), "Data set": _ds_label(r.dataset),
                "Objective": objective_label(r.objective), "Ours": _pm(r.mean, r.std, ".3g"),
                "± images": format(r.test_std_mean, ".2g"), "Paper": _DASH,
                "Converged": convergence_label(r.converged, r.n_not_converged, r.n_seeds)})
    out = pd.DataFrame(rows).sort_values("_key", kind="stable").drop(columns="_key").reset_index(drop=True)
    if not comparable:
        out = out.rename(columns={"Paper": "Paper (another quantity)"})
    return out


# ------------------------------------------------------------------------------------------------------------
# orderings and their chance baselines
# ------------------------------------------------------------------------------------------------------------
def kendall_tau(a: Sequence[float], b: Sequence[float]) -> float:
    """Kendall's τ-b between two score vectors (SciPy's; equals (concordant − discordant) / C(n, 2) without
    ties). NaN for fewer than two items."""
    from scipy.stats import kendalltau

    if len(a) < 2:
        return float("nan")
    return float(kendalltau(np.asarray(a, float), np.asarray(b, float)).statistic)


def _tau_of_permutation(perm: Sequence[int]) -> Fraction:
    n = len(perm)
    s = sum(1 if perm[i] < perm[j] else -1 for i in range(n) for j in range(i + 1, n))
    return Fraction(s, math.comb(n, 2))


def tau_null(n: int) -> dict[Fraction, Fraction]:
    """Exact distribution of Kendall's τ between a fixed ranking of ``n`` items and a uniformly random one
    (enumerating all n! orderings): ``{τ: probability}``, sorted by τ.

    Ref: Kendall 1938 (the number of orderings with a given τ is the Mahonian number of inversions).
    """
    if not isinstance(n, int) or n < 2 or n > 8:
        raise ValueError(f"n must be an integer between 2 and 8 (n! orderings are enumerated), got {n!r}")
    counts: dict[Fraction, int] = {}
    for perm in itertools.permutations(range(n)):
        t = _tau_of_permutation(perm)
        counts[t] = counts.get(t, 0) + 1
    total = math.factorial(n)
    return {t: Fraction(c, total) for t, c in sorted(counts.items())}


def _convolve(a: Mapping[Fraction, Fraction], b: Mapping[Fraction, Fraction]) -> dict[Fraction, Fraction]:
    out: dict[Fraction, Fraction] = {}
    for x, p in a.items():
        for y, q in b.items():
            out[x + y] = out.get(x + y, Fraction(0)) + p * q
    return out


def mean_tau_null(ns: Sequence[int]) -> dict[Fraction, Fraction]:
    """Exact distribution of the mean of independent Kendall τ's, one per column with ``ns[i]`` objectives,
    under random orderings: ``{mean τ: probability}``, sorted."""
    if len(ns) == 0:
        raise ValueError("ns is empty: give the number of objectives of each column")
    dist: dict[Fraction, Fraction] = {Fraction(0): Fraction(1)}
    for n in ns:
        dist = _convolve(dist, tau_null(int(n)))
    m = len(ns)
    return {t / m: p for t, p in sorted(dist.items())}


def same_best_null(ns: Sequence[int]) -> list[Fraction]:
    """Exact ``P(K = k)``, k = 0 … len(ns), for K = the number of columns whose best objective is the paper's
    when each column's best is a uniformly random one of its ``ns[i]`` objectives (a Poisson-binomial law)."""
    probs = [Fraction(1)]
    for n in ns:
        if int(n) < 1:
            raise ValueError(f"every column needs at least one objective, got {n!r}")
        p = Fraction(1, int(n))
        nxt = [Fraction(0)] * (len(probs) + 1)
        for k, q in enumerate(probs):
            nxt[k] += q * (1 - p)
            nxt[k + 1] += q * p
        probs = nxt
    return probs


def _frac(x: Fraction) -> str:
    s = str(x)
    return s.replace("-", "−")


def tau_null_table(ns: Sequence[int] = (3, 4)) -> Any:
    """Reader-facing: the chance of each Kendall τ under random orderings, one row per number of objectives.

    Columns: ``Objectives`` then one column per possible τ (``"τ = −1"`` …), cells the exact probability as a
    fraction ("" where that τ cannot occur for that n).
    """
    import pandas as pd

    dists = {n: tau_null(int(n)) for n in ns}
    taus = sorted(set().union(*dists.values()))
    rows = []
    for n, d in dists.items():
        row = {"Objectives": str(n)}
        for t in taus:
            row[f"τ = {_frac(t)}"] = _frac(d[t]) if t in d else ""
        rows.append(row)
    return pd.DataFrame(rows)


def ordering_agreement(comparison, domains: Sequence[str] = COMPARABLE_DOMAINS) -> Any:
    """Per (table, dataset, domain) column in ``domains``: Kendall τ between our means and the paper's over the
    objectives the paper reports, our best and the paper's, and whether our best is clear (its seed range
    below the runner-up's, as :func:`best_per_column`).

    Columns: ``table, upsample, dataset, domain, n, kendall_tau, our_best, our_best_clear, paper_best,
    same_best``.
    """
    import pandas as pd

    rows = []
    have = comparison.dropna(subset=["paper_mean", "mean"])
    have = have[have["domain"].isin(domains)]
    for (table, up, ds, dom), g in have.groupby(["table", "upsample", "dataset", "domain"], sort=False):
        ours = _best_of(g)
        theirs = g.loc[g["paper_mean"].idxmin(), "objective"]
        rows.append({"table": table, "upsample": up, "dataset": ds, "domain": dom, "n": len(g),
                     "kendall_tau": kendall_tau(g["mean"].to_numpy(), g["paper_mean"].to_numpy()),
                     "our_best": ours["best"], "our_best_clear": ours["clear"], "paper_best": theirs,
                     "same_best": ours["best"] == theirs})
    return pd.DataFrame(rows, columns=["table", "upsample", "dataset", "domain", "n", "kendall_tau", "our_best",
                                       "our_best_clear", "paper_best", "same_best"])


def ordering_table(ordering) -> Any:
    """Reader-facing view of :func:`ordering_agreement`: ``Data set, Table, Domain, n, Kendall τ, Our best,
    Paper's best, Same best``; "?" after our best when it is within the runner-up's seed spread."""
    import pandas as pd

    return pd.DataFrame({
        "Data set": ordering["dataset"].map(_ds_label),
        "Table": ordering["table"].map({"table1": "1", "table2": "2"}),
        "Domain": ordering["domain"],
        "n": ordering["n"].astype(int).astype(str),
        "Kendall τ": [_signed(t) if not math.isnan(t) else _DASH for t in ordering["kendall_tau"]],
        "Our best": [objective_label(o) + ("" if c else " ?")
                     for o, c in zip(ordering["our_best"], ordering["our_best_clear"])],
        "Paper's best": ordering["paper_best"].map(objective_label),
        "Same best": ordering["same_best"].map({True: "yes", False: "no"}),
    }).reset_index(drop=True)


def chance_baselines(ordering) -> dict[str, Any]:
    """Observed agreement and its chance level under random orderings (exact, columns taken as independent).

    Returns ``{"m", "ns", "mean_tau", "p_tau" (P(mean τ ≥ observed)), "same_best", "expected_same_best",
    "p_same_best" (P(K ≥ observed))}``; probabilities as floats.
    """
    o = ordering.dropna(subset=["kendall_tau"])
    ns = [int(n) for n in o["n"]]
    m = len(ns)
    if m == 0:
        return {"m": 0, "ns": [], "mean_tau": float("nan"), "p_tau": float("nan"), "same_best": 0,
                "expected_same_best": 0.0, "p_same_best": float("nan")}
    mean_tau = float(o["kendall_tau"].mean())
    dist = mean_tau_null(ns)
    p_tau = float(sum(p for t, p in dist.items() if float(t) >= mean_tau - 1e-9))
    k = int(o["same_best"].sum())
    pk = same_best_null(ns)
    return {"m": m, "ns": ns, "mean_tau": mean_tau, "p_tau": p_tau, "same_best": k,
            "expected_same_best": float(sum(Fraction(1, n) for n in ns)), "p_same_best": float(sum(pk[k:]))}


def _signed(x: float) -> str:
    """``+0.33`` / ``−0.33`` (a true minus sign) / ``0.00``."""
    t = format(x, "+.2f")
    return "0.00" if t in ("+0.00", "-0.00") else t.replace("-", "−")


def _p(p: float) -> str:
    return "< 0.001" if p < 0.001 else f"{p:.2g}"


def ordering_text(ordering, alpha: float = 0.05) -> str:
    """The ordering analysis in plain words, with the chance baselines of :func:`chance_baselines`; says
    plainly when there is no agreement beyond chance."""
    b = chance_baselines(ordering)
    if b["m"] == 0:
        return "No column has both our numbers and the paper's, so no ordering can be compared."
    m, mt, k = b["m"], b["mean_tau"], b["same_best"]
    n_clear = int(ordering["our_best_clear"].sum()) if "our_best_clear" in ordering else 0
    counts = {n: b["ns"].count(n) for n in sorted(set(b["ns"]))}
    cols = " and ".join(f"{c} with {n} objectives" for n, c in counts.items())
    parts = [
        f"Over {m} columns ({cols}) the mean Kendall τ between our ordering of the objectives and the paper's is "
        f"{_signed(mt)}. Random orderings give 0 on average, and a mean of {_signed(mt)} or more with probability "
        f"{_p(b['p_tau'])}.",
        f"Our best objective is the paper's in {k} of {m} columns; random orderings would match "
        f"{b['expected_same_best']:.1f} on average, and {k} or more with probability {_p(b['p_same_best'])}. "
        f"In {n_clear} of the {m} columns our best is clear of the runner-up's seed spread.",
    ]
    tau_ok = mt > 0 and b["p_tau"] < alpha
    best_ok = b["p_same_best"] < alpha
    if tau_ok and best_ok:
        parts.append("So our orderings agree with the paper's more than chance would explain.")
    elif mt <= 0 and not best_ok:
        parts.append("There is no agreement: our orderings are no closer to the paper's than random orderings "
                     "would be" + (" (they lean towards the reverse order)." if mt < 0 else "."))
    elif tau_ok or best_ok:
        which = "the rank correlation" if tau_ok else "the count of same best objectives"
        other = "the count of same best objectives" if tau_ok else "the rank correlation"
        parts.append(f"The evidence is mixed: {which} is above chance (p < {alpha:g}), {other} is not.")
    else:
        parts.append(f"There is no clear agreement: random orderings would do as well as ours with probability "
                     f"{_p(min(b['p_tau'], b['p_same_best']))} or more.")
    parts.append("(The probabilities treat the columns as independent; they are not, since the AI and 2D FT "
                 "columns of one data set and up-sampler come from the same runs, so read them as optimistic.)")
    return " ".join(parts)


# ------------------------------------------------------------------------------------------------------------
# the H·W-MSE control beside the FFT objective
# ------------------------------------------------------------------------------------------------------------
def control_comparison(summary, *, control: str = CONTROL, against: str = "fft",
                       upsample: str = "transposed") -> Any:
    """The control beside ``against`` per (dataset, domain) at ``upsample``.

    Columns: ``dataset, domain, ref_mean, ref_std, ctrl_mean, ctrl_std, n_seeds, overlap, lower`` where
    ``overlap`` says whether the two seed ranges overlap (``None`` with a single seed) and ``lower`` names the
    objective with the lower mean.
    """
    import pandas as pd

    s = summary[summary["upsample"] == upsample]
    rows = []
    for (ds, dom), g in s.groupby(["dataset", "domain"], sort=False):
        ref, ctrl = g[g.objective == against], g[g.objective == control]
        if ref.empty or ctrl.empty:
            continue
        a, b = ref.iloc[0], ctrl.iloc[0]
        rows.append({"dataset": ds, "domain": dom, "ref_mean": a["mean"], "ref_std": a["std"],
                     "ctrl_mean": b["mean"], "ctrl_std": b["std"], "n_seeds": int(min(a["n_seeds"], b["n_seeds"])),
                     "overlap": _overlap(a, b), "lower": control if b["mean"] < a["mean"] else against,
                     "ref_converged": a["converged"], "ctrl_converged": b["converged"]})
    out = pd.DataFrame(rows, columns=["dataset", "domain", "ref_mean", "ref_std", "ctrl_mean", "ctrl_std",
                                      "n_seeds", "overlap", "lower", "ref_converged", "ctrl_converged"])
    if len(out):
        out = out.assign(_k=[_order_key(d, "fft")[0] for d in out["dataset"]]).sort_values("_k", kind="stable")
        out = out.drop(columns="_k").reset_index(drop=True)
    return out


def control_table(control_frame, *, control: str = CONTROL, against: str = "fft") -> Any:
    """Reader-facing view of :func:`control_comparison`: ``Data set, Domain, <FFT>, <control>, Same within
    seed spread?``."""
    import pandas as pd

    verdict = {True: "yes", False: "no", None: "one seed: cannot tell"}
    return pd.DataFrame({
        "Data set": control_frame["dataset"].map(_ds_label),
        "Domain": control_frame["domain"],
        objective_label(against): [_pm(m, s) for m, s in zip(control_frame["ref_mean"], control_frame["ref_std"])],
        objective_label(control): [_pm(m, s) for m, s in zip(control_frame["ctrl_mean"],
                                                              control_frame["ctrl_std"])],
        "Same within seed spread?": [verdict[o] for o in control_frame["overlap"]],
    }).reset_index(drop=True)


def control_sentence(control_frame, *, control: str = CONTROL, against: str = "fft") -> str:
    """Does the control reproduce ``against``'s numbers within the seed spread? One paragraph, from the numbers."""
    c, a = objective_label(control), objective_label(against)
    n = len(control_frame)
    if n == 0:
        return f"There are no runs of the {c} control beside the {a} objective to compare."
    lower = int((control_frame["lower"] == control).sum())
    if control_frame["overlap"].isna().any():
        return (f"With a single seed per configuration the seed spread is unknown, so whether the {c} control "
                f"reproduces the {a} objective cannot be judged; its mean RMSE is lower in {lower} of {n} "
                "(data set × domain) cells.")
    same = control_frame[control_frame["overlap"].astype(bool)]
    diff = control_frame[~control_frame["overlap"].astype(bool)]
    if len(diff) == 0:
        return (f"In all {n} (data set × domain) cells the seeds of the {c} control overlap those of the {a} "
                f"objective: a pixel MSE weighted by H·W, with no FFT and no BCE, reproduces the {a} loss's numbers "
                "within the seed spread, as Parseval's theorem predicts (the FFT term of eq. 2 is H·W times the "
                "pixel MSE).")
    listed = "; ".join(f"{_ds_label(r.dataset)}, {r.domain}: {objective_label(r.lower)} lower "
                       f"({r.ref_mean:.4g} for {a}, {r.ctrl_mean:.4g} for the control)"
                       for r in diff.itertuples())
    head = ("does not reproduce the " + a + " objective's numbers in any of the following" if len(same) == 0 else
            f"reproduces the {a} objective's numbers within the seed spread in {len(same)} of {n} cells, but not in "
            "the following")
    return (f"The {c} control {head} {len(diff)} (data set × domain) cells: {listed}. The FFT "
            "term itself equals H·W times the pixel MSE (Parseval), so these differences come from the BCE term "
            "that the FFT objective keeps and the control leaves out, not from anything spectral.")


# ------------------------------------------------------------------------------------------------------------
# image quality (PSNR / SSIM) of one data set
# ------------------------------------------------------------------------------------------------------------
def _seed_stats(values) -> dict[str, float]:
    v = np.asarray(values, dtype=float)
    return {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if len(v) > 1 else float("nan"),
            "min": float(v.min()), "max": float(v.max()), "n_seeds": len(v)}


def quality_table(frame, dataset: str = "faces") -> Any:
    """Reader-facing: test PSNR (dB) and SSIM of ``dataset`` per objective and up-sampler, mean ± std over seeds.

    Columns: ``Objective, PSNR (dB), transposed, PSNR (dB), N.1.5, SSIM, transposed, SSIM, N.1.5, Converged``
    ("—" where a configuration was not run, e.g. the control with N.1.5).
    """
    import pandas as pd

    _require(frame, ["dataset", "objective", "upsample", "psnr_mean", "ssim_mean"], "quality_table")
    f = frame[frame["dataset"] == dataset]
    if f.empty:
        raise ValueError(f"no runs of data set {dataset!r} in the frame")
    rows = []
    for obj in sorted(f["objective"].unique(), key=lambda o: _order_key(dataset, o)):
        g = f[f["objective"] == obj]
        row: dict[str, Any] = {"Objective": objective_label(obj)}
        for metric, name, fmt, sfmt in (("psnr_mean", "PSNR (dB)", ".1f", ".1f"), ("ssim_mean", "SSIM", ".3f", ".2g")):
            for up in UPSAMPLERS:
                v = g[g["upsample"] == up][metric].astype(float)
                st = _seed_stats(v) if len(v) else None
                row[f"{name}, {UPSAMPLE_LABELS[up]}"] = _DASH if st is None else _pm(st["mean"], st["std"], fmt, sfmt)
        st = _status(g["converged"].tolist() if "converged" in g.columns else [None] * len(g))
        row["Converged"] = convergence_label(st["converged"], st["n_not_converged"], st["n_seeds"])
        rows.append(row)
    return pd.DataFrame(rows)


def quality_sentence(frame, dataset: str = "faces", upsample: str = "transposed") -> str:
    """Which objective reconstructs ``dataset`` best by PSNR (higher is better), respecting the seed spread."""
    import pandas as pd

    f = frame[(frame["dataset"] == dataset) & (frame["upsample"] == upsample)]
    if f.empty:
        return f"No runs of {_ds_label(dataset)} with {UPSAMPLE_LABELS.get(upsample, upsample)} up-sampling."
    stats = pd.DataFrame([{"objective": o, **_seed_stats(g["psnr_mean"])} for o, g in f.groupby("objective")])
    b = _best_of(stats, lower_is_better=False)
    lo = stats.loc[stats["mean"].idxmin()]
    first = (f"On the {_ds_label(dataset)} test images ({UPSAMPLE_LABELS.get(upsample, upsample)} up-sampling) "
             f"the mean PSNR ranges from {lo['mean']:.1f} dB ({objective_label(lo['objective'])}) to "
             f"{b['best_mean']:.1f} dB ({objective_label(b['best'])})")
    if b["runner_up"] is None:
        return first + "."
    if int(stats["n_seeds"].min()) < 2:
        return first + "; with one seed per objective the seed spread is unknown."
    if b["clear"]:
        return first + f"; {objective_label(b['best'])} is clearly best (every seed above every seed of " \
                       f"{objective_label(b['runner_up'])})."
    return first + f"; {objective_label(b['best'])} and {objective_label(b['runner_up'])} are within each " \
                   "other's seed spread."


# ------------------------------------------------------------------------------------------------------------
# up-sampling peaks in the spectra (Fig. 2)
# ------------------------------------------------------------------------------------------------------------
def spectral_excess(records: Iterable[Mapping[str, Any]], fmin: float = 0.25) -> Any:
    """Per run: how far the reconstructions' mean azimuthal spectrum rises *above* the test images' at
    frequencies ≥ ``fmin`` cycles/pixel (an up-sampling artefact: more power than the data has).

    ``records`` are stored records (``config`` with dataset/objective/upsample/seed, ``arrays`` with ``freqs``,
    ``profile_real_mean``, ``profile_recon_mean``). Columns: ``dataset, objective, upsample, seed, excess``
    (max over f ≥ fmin of recon − real, in the profile's units), ``f_peak`` (where it is).
    """
    import pandas as pd

    rows = []
    for rec in records:
        cfg, arr = rec["config"], rec["arrays"]
        f = np.asarray(arr["freqs"], float)
        d = np.asarray(arr["profile_recon_mean"], float) - np.asarray(arr["profile_real_mean"], float)
        sel = f >= fmin
        if not sel.any():
            raise ValueError(f"no frequency ≥ {fmin} in the run's profile (max {f.max():.3g} cycles/pixel)")
        i = int(np.argmax(np.where(sel, d, -np.inf)))
        rows.append({"dataset": cfg["dataset"], "objective": cfg["objective"], "upsample": cfg["upsample"],
                     "seed": cfg["seed"], "excess": float(d[i]), "f_peak": float(f[i])})
    return pd.DataFrame(rows, columns=["dataset", "objective", "upsample", "seed", "excess", "f_peak"])


def peaks_sentence(excess, unit: str = "", fmin: float = 0.25) -> str:
    """Does N.1.5 remove the up-sampling peaks? A configuration has a peak when *every* seed's reconstruction
    spectrum rises above the test images' somewhere at ≥ ``fmin`` cycles/pixel (:func:`spectral_excess`);
    the sentence pairs each (data set, objective) across the two up-samplers."""
    if len(excess) == 0:
        return "No spectra to compare."
    u = f", in {unit}" if unit else ""
    per = excess.groupby(["dataset", "objective", "upsample"]).agg(
        peak=("excess", lambda v: bool((v > 0).all())), excess=("excess", "mean")).reset_index()
    pairs = per.pivot_table(index=["dataset", "objective"], columns="upsample", values=["peak", "excess"],
                            aggfunc="first")
    if not set(UPSAMPLERS) <= set(pairs.columns.get_level_values(1)):
        return "Only one up-sampler has spectra, so the effect of N.1.5 cannot be judged."
    pairs = pairs.dropna()
    t_peak = pairs[("peak", "transposed")].astype(bool)
    n_peak = pairs[("peak", "nearest_conv5")].astype(bool)
    n = len(pairs)
    a, removed, added = int(t_peak.sum()), int((t_peak & ~n_peak).sum()), int((~t_peak & n_peak).sum())
    head = (f"Above {fmin:g} cycles/pixel, the reconstructions' mean spectrum rises above the test images' in "
            f"every seed for {a} of {n} (data set, objective) pairs with transposed up-sampling and "
            f"{int(n_peak.sum())} with N.1.5")
    if a:
        worst = pairs[("excess", "transposed")].idxmax()
        head += (f" (largest transposed excess: {pairs.loc[worst, ('excess', 'transposed')]:.2g}{u}, "
                 f"{_ds_label(worst[0])} / {objective_label(worst[1])})")
    head += "."
    if a == 0 and added == 0:
        verdict = "Neither up-sampler leaves such a peak in our runs, so there is nothing for N.1.5 to remove."
    elif a == 0:
        verdict = f"The transposed runs show no such peak; N.1.5 shows one in {added} pairs."
    elif removed == a and added == 0:
        verdict = "N.1.5 removes every one of them."
    elif removed == 0:
        verdict = "N.1.5 removes none of them" + (f" and adds one in {added} pairs." if added else ".")
    else:
        verdict = (f"N.1.5 removes {removed} of the {a}" + (f" and adds one in {added} other pairs." if added else "."))
    return head + " " + verdict


# ------------------------------------------------------------------------------------------------------------
# generated sentences about our own numbers
# ------------------------------------------------------------------------------------------------------------
def fft_wins_sentence(summary, objective: str = "fft") -> str:
    """Is the FFT objective our best, per column (up-sampler × data set × domain), respecting the seed spread?"""
    best = best_per_column(summary)
    m = len(best)
    lowest = best["best"] == objective
    clear = int((lowest & best["clear"]).sum())
    unclear = int((lowest & ~best["clear"]).sum())
    other_clear = best[(~lowest) & best["clear"]]
    name = objective_label(objective)
    if int(summary["n_seeds"].min()) < 2:
        return (f"{name} has the lowest mean RMSE in {int(lowest.sum())} of our {m} columns (up-sampler × data "
                "set × domain); with one seed per configuration the seed spread is unknown, so no winner is clear.")
    s = (f"{name} has the lowest mean RMSE in {int(lowest.sum())} of our {m} columns (up-sampler × data set × "
         f"domain): clearly (outside the runner-up's seed spread) in {clear}, within the spread in {unclear}.")
    if len(other_clear):
        by = other_clear.groupby("best").size().sort_values(ascending=False)
        s += " Another objective is clearly best in " + ", ".join(
            f"{int(c)} ({objective_label(o)})" for o, c in by.items()) + "."
    verdict = ("So the FFT loss still wins, clearly, in most columns." if clear > m / 2 else
               "So the FFT loss is not a clear winner in most columns." if clear <= m / 2 and lowest.sum() > m / 2
               else "So the FFT loss does not win in most columns.")
    return s + " " + verdict


def upsampler_sentence(summary, objectives: Sequence[str] = PAPER_OBJECTIVES) -> str:
    """N.1.5 against transposed per (data set, objective, domain), respecting the seed spread."""
    s = summary[summary["objective"].isin(objectives)]
    t = s[s.upsample == "transposed"].set_index(["dataset", "objective", "domain"])
    n5 = s[s.upsample == "nearest_conv5"].set_index(["dataset", "objective", "domain"])
    keys = t.index.intersection(n5.index)
    if len(keys) == 0:
        return "There are no configurations with both up-samplers to compare."
    lower = higher = within = unknown = 0
    for k in keys:
        a, b = t.loc[k], n5.loc[k]
        ov = _overlap(a, b)
        if ov is None:
            unknown += 1
        elif ov:
            within += 1
        elif b["mean"] < a["mean"]:
            lower += 1
        else:
            higher += 1
    if unknown == len(keys):
        n_lower = int(sum(n5.loc[k, "mean"] < t.loc[k, "mean"] for k in keys))
        return (f"With one seed per configuration the seed spread is unknown; N.1.5 has the lower RMSE in "
                f"{n_lower} of {len(keys)} (data set, objective, domain) cells.")
    return (f"Across {len(keys)} (data set, objective, domain) cells, N.1.5 gives a lower RMSE than transposed "
            f"up-sampling outside the seed spread in {lower}, a higher one in {higher}, and one within the spread "
            f"in {within}" + (f" ({unknown} cells with one seed not judged)" if unknown else "") + ".")


def watson_shapes_sentence(summary) -> str:
    """How Watson-DFT does on Shapes (the paper omits it: "did not work correctly") against the vanilla VAE,
    per up-sampler and domain, respecting the seed spread; "" when there are no such runs."""
    w = summary[(summary.dataset == "shapes") & (summary.objective == "watson")]
    v = summary[(summary.dataset == "shapes") & (summary.objective == "vanilla")].set_index(["upsample", "domain"])
    if w.empty or v.empty:
        return ""
    worse = better = within = unknown = 0
    parts = []
    for up, g in w.groupby("upsample", sort=False):
        cells = []
        for r in g.itertuples():
            ref = v.loc[(up, r.domain)]
            cells.append(f"{r.domain} {r.mean:.3g} vs {ref['mean']:.3g}")
            ov = _overlap(r._asdict(), ref)
            if ov is None:
                unknown += 1
            elif ov:
                within += 1
            elif r.mean > ref["mean"]:
                worse += 1
            else:
                better += 1
        parts.append(f"{UPSAMPLE_LABELS.get(up, up)}: " + ", ".join(cells))
    n = worse + better + within + unknown
    head = "Watson-DFT against Vanilla-VAE, mean RMSE: " + "; ".join(parts) + "."
    if unknown == n:
        return head + " With one seed per configuration the seed spread is unknown."
    return (head + f" Watson-DFT is worse outside the seed spread in {worse} of these {n} cells, better in "
            f"{better}, and within the spread in {within}"
            + (f" ({unknown} not judged)" if unknown else "") + ".")


def alpha_sweep_table(sweep, vanilla=None) -> Any:
    """Reader-facing α sweep: ``α, Objective, RMSE AI, RMSE 2D FT, RMSE spatial, Converged`` sorted by α, with
    the vanilla VAE (α = 0: BCE only) first when ``vanilla`` rows are given."""
    import pandas as pd

    def rows(f, label, alpha=None):
        out = []
        for r in f.to_dict("records"):
            st = _status([r.get("converged")])
            out.append({"α": format(alpha if alpha is not None else r["alpha"], "g"), "Objective": label,
                        **{f"RMSE {name}": format(float(r[f"rmse_{k}_mean"]), ".4g") for k, name in DOMAINS.items()},
                        "Converged": convergence_label(st["converged"], st["n_not_converged"], 1),
                        "_a": alpha if alpha is not None else float(r["alpha"])})
        return out

    body = rows(sweep, objective_label("fft"))
    head = rows(vanilla, objective_label("vanilla") + " (BCE only)", 0.0) if vanilla is not None else []
    out = pd.DataFrame(head + sorted(body, key=lambda r: r["_a"]))
    return out.drop(columns="_a").reset_index(drop=True)


def timing_table(frame) -> Any:
    """Reader-facing: per data set and up-sampler, runs, mean steps done, images/s and training minutes per run."""
    import pandas as pd

    _require(frame, ["dataset", "upsample", "train_images_per_s", "train_wall_s"], "timing_table")
    rows = []
    for (ds, up), g in frame.groupby(["dataset", "upsample"], sort=False):
        steps = g["steps_done"].astype(float).mean() if "steps_done" in g.columns else float("nan")
        rows.append({"_k": _order_key(ds, "vanilla")[0], "Data set": _ds_label(ds),
                     "Up-sampling": UPSAMPLE_LABELS.get(up, up), "Runs": str(len(g)),
                     "Steps done (mean)": _DASH if math.isnan(steps) else f"{steps:,.0f}",
                     "Images/s (mean)": f"{g['train_images_per_s'].astype(float).mean():,.0f}",
                     "Minutes per run (mean)": f"{g['train_wall_s'].astype(float).mean() / 60:.1f}"})
    return pd.DataFrame(rows).sort_values("_k", kind="stable").drop(columns="_k").reset_index(drop=True)


def convergence_note(frame) -> str:
    """How many runs met the convergence rule, and the rule's figure, in one sentence."""
    n = len(frame)
    st = _status(frame["converged"].tolist() if "converged" in frame.columns else [None] * n)
    if st["n_unknown"] == n:
        return f"None of the {n} runs records whether it converged; read every number as possibly unconverged."
    s = f"{st['n_converged']} of {n} runs met the convergence rule"
    if "loss_rel_change_last20" in frame.columns:
        rc = frame["loss_rel_change_last20"].astype(float)
        s += (f" (the smoothed training loss changed by {rc.min():.2%} to {rc.max():.2%} over the last 20 % of "
              "their steps)")
    s += "; "
    if st["n_not_converged"]:
        s += (f"{st['n_not_converged']} stopped at the step cap without meeting it, and every table marks their "
              "configuration as not converged")
    else:
        s += "none stopped at the step cap unconverged"
    if st["n_unknown"]:
        s += f"; {st['n_unknown']} have no convergence record"
    return s + "."


def power_law_steps(a: float, b: float, c: float, *, tol: float = 0.01, window: float = 0.2) -> float:
    """Smallest step t at which ``L(t) = a + b·t^(−c)`` meets the convergence rule ``(L((1−w)t) − L(t)) / L(t) < tol``.

    ``L((1−w)t) − L(t) = b·t^(−c)·((1−w)^(−c) − 1)``, so the rule holds once
    ``t^(−c) < tol·a / (b·((1−w)^(−c) − 1 − tol))``, i.e. ``t > (b·((1−w)^(−c) − 1 − tol) / (tol·a))^(1/c)``.
    Returns 0 when the rule holds at every t (``(1−w)^(−c) − 1 ≤ tol``: a decay too slow for the rule to see) and
    ``inf`` when it never holds (no positive floor ``a``, i.e. the loss keeps falling as a power law to 0, or
    ``c ≤ 0``). ``b ≤ 0`` (a loss rising towards its floor) also gives 0.
    """
    if b <= 0:
        return 0.0
    if c <= 0 or a <= 0:
        return math.inf
    excess = (1.0 - window) ** (-c) - 1.0 - tol
    if excess <= 0:
        return 0.0
    return (b * excess / (tol * a)) ** (1.0 / c)


def fit_power_law(steps: Sequence[float], values: Sequence[float], *, start: float = 0.3) -> tuple[float, float, float]:
    """Least-squares fit of ``L(t) = a + b·(t/T)^(−c)`` (T the last step) to the logged points after ``start·T``;
    returns ``(a, b·T^c, c)`` so that ``L(t) = a + b'·t^(−c)`` in steps. Raises ``RuntimeError`` when the fit fails.
    Ref: the power-law learning curves of Hestness et al., "Deep learning scaling is predictable, empirically",
    arXiv 1712.00409 (2017); ``scipy.optimize.curve_fit``."""
    from scipy.optimize import curve_fit

    s = np.asarray(steps, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    keep = np.isfinite(s) & np.isfinite(v) & (s > 0)
    s, v = s[keep], v[keep]
    if s.size < 5:
        raise RuntimeError(f"{s.size} logged points are too few to fit a learning curve")
    T = s[-1]
    tail = s >= start * T
    model = lambda t, a, b, c: a + b * (t / T) ** (-c)  # noqa: E731
    p0 = [float(v[tail][-1]) * 0.9, float(v[tail][-1]) * 0.1, 1.0]
    try:
        (a, b, c), _ = curve_fit(model, s[tail], v[tail], p0=p0, maxfev=20_000)
    except (RuntimeError, ValueError) as err:
        raise RuntimeError(f"the power-law fit did not converge ({err})") from err
    return float(a), float(b) * T ** float(c), float(c)


#: the column of :func:`convergence_outlook` with the extrapolated steps, and its entry for "no cap would do"
NEVER = "never (no floor)"
OUTLOOK_COLUMN = "Steps needed (× cap)"


def convergence_outlook(records: Iterable[Mapping[str, Any]], *, tol: float = 0.01, window: float = 0.2) -> Any:
    """For the runs that stopped at their cap without meeting the rule: how many more steps would it take?

    Each run's logged training loss after 30 % of its steps is fitted by ``a + b·t^(−c)`` (:func:`fit_power_law`)
    and :func:`power_law_steps` solves for the step at which the rule would hold under the same (constant)
    learning rate. One row per (data set, up-sampler, objective, α): the seeds at their cap, the loss change over
    the last 20 % (mean over seeds), the fitted exponent and the steps needed as a multiple of the cap (medians
    over seeds; :data:`NEVER` when the fit finds no positive floor). An extrapolation, not a measurement: it says how far
    off the rule is, and whether a larger cap could reach it.
    """
    import pandas as pd

    rows: dict[tuple, list[dict[str, float]]] = {}
    for rec in records:
        m, c = rec.get("metrics") or {}, rec.get("config") or {}
        if converged_flag(m.get("converged")) is not False:
            continue
        h = rec.get("history") or {}
        cap = float(m.get("steps_done") or (h.get("step") or [np.nan])[-1])
        try:
            a, b, expo = fit_power_law(h["step"], h["loss"])
            need = power_law_steps(a, b, expo, tol=tol, window=window) / cap
        except (RuntimeError, KeyError):
            expo, need = math.nan, math.nan
        key = (c.get("dataset"), c.get("upsample"), c.get("objective"), c.get("alpha"))
        rows.setdefault(key, []).append({"change": float(m.get("loss_rel_change_last20", math.nan)),
                                         "c": expo, "need": need})
    out = []
    for (ds, up, obj, alpha), runs in sorted(rows.items(), key=lambda kv: (*_order_key(kv[0][0], kv[0][2]),
                                                                           str(kv[0][1]), str(kv[0][3]))):
        # median over the seeds with a fit (inf = no floor counts; NaN = no fit): NaN only when no seed has one
        need = float(np.nanmedian([r["need"] for r in runs])) if any(not math.isnan(r["need"])
                                                                      for r in runs) else math.nan
        out.append({"Data set": _ds_label(ds), "Up-sampling": UPSAMPLE_LABELS.get(up, up),
                    "Objective": objective_label(obj) + ("" if alpha in (None, 0.5) else f" (α = {alpha:g})"),
                    "Seeds at cap": len(runs),
                    "Change, last 20 %": f"{np.nanmean([r['change'] for r in runs]):.1%}",
                    "Exponent c": f"{np.nanmedian([r['c'] for r in runs]):.2f}"
                    if any(np.isfinite(r["c"]) for r in runs) else "—",
                    OUTLOOK_COLUMN: NEVER if need == math.inf else
                    ("fit failed" if not np.isfinite(need) else f"{need:.1f}×" if need < 10 else f"{need:.0f}×")})
    return pd.DataFrame(out)


def convergence_outlook_sentence(outlook) -> str:
    """One sentence over :func:`convergence_outlook`'s table: the range of the extrapolated multiples."""
    if len(outlook) == 0:
        return "No run is recorded as stopped at its cap unconverged; there is nothing to extrapolate."
    col = outlook[OUTLOOK_COLUMN]
    mult = [float(x[:-1]) for x in col if x.endswith("×")]
    never = int((col == NEVER).sum())
    parts = []
    if mult:
        parts.append(f"the fitted curves would meet the rule after {min(mult):g} to {max(mult):g} times their cap "
                     f"(median {float(np.median(mult)):g}×) at the same learning rate")
    if never:
        parts.append(f"{never} configuration(s) show no positive floor at all (a power law falling towards 0), so no "
                     "cap would do")
    return ("Of the configurations that stopped at their cap, " + "; ".join(parts) + ". For most of them a larger cap "
            "is not a practical remedy; the usual one is a learning-rate decay at the end of training (or a rule on "
            "the test metric).")


def caveats(frame, preset: str, *, width_div: int = 1, faces_width_div: int = 1, gpu_pending: bool = True) -> str:
    """The chapter's caveats as a MyST admonition (class ``warning``, title "Read this first"), from the runs'
    frame: preset and convergence (:func:`convergence_note`), the data's provenance, the metric conventions,
    the model size and the pending GPU runs."""
    items = [
        f"**Preset `{preset}`.** " + convergence_note(frame),
        "**Data.** Our faces are *CelebA-style faces*: 64×64 celebrity crops in the CelebA style, not the aligned "
        "CelebA files the paper used (provenance: section \"Data, and what we substituted\" of "
        "[Reproducibility](reproducibility.md)); our Shapes are our own re-implementation of IRMAE's "
        "generator. Rows labelled CelebA-style faces are compared with the paper's CelebA numbers.",
        "**Metrics.** The paper does not define its three RMSEs. Our AI and 2D FT conventions were chosen partly "
        "from the paper's own numbers, so that ours have its scale: \"ours ÷ paper ≈ 1\" is partly by "
        "construction (see \"How the AI and 2-D FT conventions were chosen\" on the [Metrics](metrics.md) page). "
        "The paper's spatial numbers "
        "are not RMSEs of [0, 1] pixels and are shown for reference only. Compare orderings, not absolute values.",
    ]
    if width_div > 1 or faces_width_div > 1:
        items.append(f"**Model size.** The nets' hidden widths are divided by {width_div} (Shapes, MNIST) and "
                     f"{faces_width_div} (faces) so that they train on a CPU; IRMAE's full widths need a GPU.")
    if gpu_pending and preset not in ("gpu", "paper"):
        items.append("**GPU runs pending.** The `gpu` preset (the papers' widths) has not been run for this edition.")
    body = "\n".join(f"- {i}" for i in items)
    return f":::{{admonition}} Read this first\n:class: warning\n\n{body}\n:::\n"


def discussion(summary, comparison, ordering, *, control=None, excess=None, unit: str = "") -> str:
    """The chapter's discussion as Markdown bullets, written from the numbers so it stays true at any preset.

    Does the FFT loss still win (respecting the seed spread), do the paper's orderings hold (with chance
    baselines), does N.1.5 lower the RMSE and remove the up-sampling peaks, does the H·W-MSE control reproduce
    the FFT numbers, how Watson-DFT does on Shapes (which the paper omits), and the scale against the paper.
    """
    out = [f"- **Does the FFT loss still win?** {fft_wins_sentence(summary)}",
           f"- **Do the paper's orderings hold?** {ordering_text(ordering)}",
           f"- **N.1.5 against transposed up-sampling.** {upsampler_sentence(summary)}"]
    if excess is not None and len(excess):
        out.append(f"- **Does N.1.5 remove the up-sampling peaks?** {peaks_sentence(excess, unit)}")
    if control is not None:
        out.append(f"- **Is the FFT loss an L2 loss in disguise?** {control_sentence(control)}")
    watson = watson_shapes_sentence(summary)
    if watson:
        out.append(f"- **Watson-DFT on Shapes** (omitted by the paper). {watson}")
    have = comparison.dropna(subset=["paper_mean"])
    have = have[have["comparable"]]
    if len(have):
        ratio = {d: float(np.median(g["mean"] / g["paper_mean"])) for d, g in have.groupby("domain", sort=False)}
        out.append("- **Scale against the paper.** Median of ours ÷ paper: " + ", ".join(
            f"{d} {v:.2f}" for d, v in ratio.items()) + ". Our AI and 2D FT conventions were chosen to match the "
            "scale of the paper's numbers, so a ratio near 1 is partly by construction; the spatial column is "
            "another quantity and is not compared.")
    return "\n".join(out)


# ------------------------------------------------------------------------------------------------------------
# rendering
# ------------------------------------------------------------------------------------------------------------
def _is_label(value: Any) -> bool:
    s = "" if value is None else str(value).strip()
    return s == "" or s[0].isalpha()


def _cell(value: Any) -> str:
    s = "" if value is None else str(value)
    return s.replace("|", "\\|").replace("\n", " ")


def precision_table(pairs: Sequence[tuple[Mapping[str, Any], Mapping[str, Any]]]) -> Any:
    """The bf16 A/B as a reader-facing frame: one row per metric and data set, bf16 beside fp32.

    ``pairs`` holds ``(bf16 record, fp32 record)`` of the same config (:func:`~specvae.experiments.
    simpler_is_better.precision_twin_configs`); a record is the store's dict with ``config`` and ``metrics``.
    Columns: data set, metric, bf16, fp32, the difference bf16 − fp32, and the steps each run trained.
    """
    import pandas as pd

    metrics = (("psnr_mean", "PSNR (dB)", ".2f"), ("ssim_mean", "SSIM", ".3f"), ("rmse_ai_mean", "RMSE AI", ".3f"),
               ("rmse_ft_mean", "RMSE 2D FT", ".3f"), ("rmse_spatial_mean", "RMSE spatial", ".4f"))
    rows = []
    for bf, fp in pairs:
        cb, cf = bf["config"], fp["config"]
        if (cb["precision"], cf["precision"]) != ("bf16", "fp32"):
            raise ValueError(f"precision_table: expected (bf16, fp32) pairs, got ({cb['precision']}, {cf['precision']})")
        same = {k: v for k, v in cb.items() if k != "precision"} == {k: v for k, v in cf.items() if k != "precision"}
        if not same:
            raise ValueError("precision_table: a pair differs in more than its precision; pair each run with its twin")
        steps = f"{bf['metrics']['steps_done']:,} / {fp['metrics']['steps_done']:,}"
        for key, label, fmt in metrics:
            b, f = float(bf["metrics"][key]), float(fp["metrics"][key])
            rows.append({"Data set": _ds_label(cb["dataset"]), "Metric": label, "bf16": format(b, fmt),
                         "fp32": format(f, fmt), "bf16 − fp32": format(b - f, "+" + fmt), "Steps (bf16 / fp32)": steps})
    return pd.DataFrame(rows)


def myst_table(table, caption: str, *, name: str | None = None, blank_repeats: Sequence[str] = ("Data set",),
               align: Mapping[str, str] | None = None) -> str:
    """A reader-facing frame as a MyST ``{table}`` block (numbered caption in the book; the index is not shown).

    Args:
        table: the frame (its index is ignored; headers are its column names).
        caption: the caption (MyST inline markup allowed).
        name: the label to reference it by (``{numref}`` / ``{ref}``).
        blank_repeats: grouping columns, left to right: a value equal to the one above is left blank as long as
            the grouping columns to its left are blank too (so a new group shows all its labels).
        align: ``{column: "left" | "right" | "center"}``; default: left for columns of words (every value
            starts with a letter, or is empty), right for columns of numbers.

    Render the string with ``display(Markdown(...))`` in a cell whose metadata has
    ``mystnb: {markdown_format: myst}``.
    """
    cols = [str(c) for c in table.columns]
    bad = [c for c in cols if "_" in c]
    if bad:
        raise ValueError(f"column headers {bad} look like code names: give reader-facing headers")
    marks = {"left": ":--", "right": "--:", "center": ":-:"}
    al = {c: "left" if all(_is_label(v) for v in table[c]) else "right" for c in cols}
    al.update(align or {})
    lines = ["| " + " | ".join(_cell(c) for c in cols) + " |",
             "| " + " | ".join(marks[al[c]] for c in cols) + " |"]
    prev: dict[str, Any] = {}
    for row in table.itertuples(index=False):
        cells, grouped = [], True
        for c, v in zip(cols, row):
            # blank only while every grouping column to the left was blanked too (a new group shows all)
            grouped = grouped and c in blank_repeats and prev.get(c) == v if c in blank_repeats else grouped
            cells.append("" if c in blank_repeats and grouped else _cell(v))
            prev[c] = v
        lines.append("| " + " | ".join(cells) + " |")
    head = f":::{{table}} {caption}\n"
    if name:
        head += f":name: {name}\n"
    head += ":align: left\n\n"
    return head + "\n".join(lines) + "\n:::\n"

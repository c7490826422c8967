"""specvae.experiments.simpler_is_better_report: every table and every generated sentence of chapter 1, on fake
run frames whose right answers are known by construction (and the chance baselines against brute-force
enumeration)."""

from __future__ import annotations

import dataclasses
import itertools
import math
import re
from fractions import Fraction
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binom, kendalltau

from specvae.experiments import simpler_is_better as ch1
from specvae.experiments import simpler_is_better_report as report

ROOT = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------------------------------------------------
# fake runs
# ------------------------------------------------------------------------------------------------------------
def _frame(spec, converged=None, *, spatial_scale=0.1, alpha=0.5):
    """One row per seed. ``spec[(dataset, objective, upsample)] = [value per seed]`` gives rmse_ai_mean and
    rmse_ft_mean = value, rmse_spatial_mean = value × spatial_scale, the std over images 0.5 / 0.25 / 0.01,
    psnr_mean = 30 − value, ssim_mean = 1 − value / 100. ``converged[(dataset, objective, upsample)]`` = one
    flag per seed (default True)."""
    rows = []
    for (ds, obj, up), values in spec.items():
        flags = (converged or {}).get((ds, obj, up), [True] * len(values))
        for seed, (v, c) in enumerate(zip(values, flags)):
            rows.append({"dataset": ds, "objective": obj, "upsample": up, "seed": seed, "alpha": alpha,
                         "rmse_ai_mean": v, "rmse_ai_std": 0.5, "rmse_ft_mean": v, "rmse_ft_std": 0.25,
                         "rmse_spatial_mean": v * spatial_scale, "rmse_spatial_std": 0.01,
                         "psnr_mean": 30.0 - v, "ssim_mean": 1.0 - v / 100, "converged": c,
                         "loss_rel_change_last20": 0.005 if c else 0.03, "steps_done": 1000,
                         "train_images_per_s": 100.0 * (seed + 1), "train_wall_s": 600.0})
    return pd.DataFrame(rows)


def _reference():
    from specvae import reference

    return pd.concat([reference.load("bjork2022", "table1"), reference.load("bjork2022", "table2")],
                     ignore_index=True)


def _paper_as_ours(ref, *, sign=1.0, seeds=(0.0,)):
    """A frame whose seed means equal the paper's numbers (× sign) in the AI and 2D FT domains."""
    inv_ds = {"Shape": "shapes", "MNIST": "mnist", "CelebA": "faces"}
    inv_obj = {"Vanilla-VAE": "vanilla", "Watson-DFT": "watson", "AI": "ai", "FFT": "fft"}
    inv_up = {"table1": "transposed", "table2": "nearest_conv5"}
    rows = []
    for (t, d, o), g in ref.groupby(["table", "dataset", "objective"]):
        m = g.set_index("domain")["mean"]
        for k, off in enumerate(seeds):
            rows.append({"dataset": inv_ds[d], "objective": inv_obj[o], "upsample": inv_up[t], "seed": k,
                         "rmse_ai_mean": sign * m["AI"] + off, "rmse_ai_std": 0.1,
                         "rmse_ft_mean": sign * m["2D FT"] + off, "rmse_ft_std": 0.1,
                         "rmse_spatial_mean": sign * m["Spatial"] + off, "rmse_spatial_std": 0.1,
                         "converged": True})
    return pd.DataFrame(rows)


def _assert_reader_facing(table):
    assert isinstance(table.index, pd.RangeIndex)
    assert not [c for c in table.columns if "_" in str(c)], table.columns


# ------------------------------------------------------------------------------------------------------------
# summary and convergence
# ------------------------------------------------------------------------------------------------------------
def test_summary_is_over_seeds_and_a_row_is_flagged_when_any_seed_did_not_converge():
    spec = {("mnist", "fft", "transposed"): [1.0, 3.0, 2.0], ("mnist", "ai", "transposed"): [5.0, 5.0, 5.0],
            ("mnist", "vanilla", "transposed"): [4.0, 4.5, 5.0]}
    conv = {("mnist", "fft", "transposed"): [True, False, True], ("mnist", "ai", "transposed"): [True, None, True]}
    s = report.summary_table(_frame(spec, conv)).set_index(["objective", "domain"])
    fft = s.loc[("fft", "AI")]
    assert fft["mean"] == 2.0 and fft["std"] == pytest.approx(1.0) and (fft["min"], fft["max"]) == (1.0, 3.0)
    assert fft["n_seeds"] == 3 and fft["test_std_mean"] == pytest.approx(0.5)
    assert s.loc[("fft", "Spatial"), "mean"] == pytest.approx(0.2)
    assert fft["converged"] is False and fft["n_not_converged"] == 1
    assert s.loc[("ai", "AI"), "converged"] is None  # one seed without a record, none failed
    assert s.loc[("vanilla", "AI"), "converged"] is True
    c = report.convergence(_frame(spec, conv)).set_index("objective")
    assert c.loc["fft", ["n_converged", "n_not_converged", "n_unknown"]].tolist() == [2, 1, 0]
    assert c.loc["ai", "n_unknown"] == 1
    # a frame of runs that recorded nothing about convergence
    no_rule = _frame(spec).drop(columns="converged")
    assert report.summary_table(no_rule)["converged"].isna().all()
    assert report.convergence_label(False, 1, 3) == "no (1 of 3 seeds)"
    assert report.convergence_label(True) == "yes" and report.convergence_label(None) == "not recorded"


def test_summary_refuses_a_mixed_alpha_frame_and_bad_flags():
    f = _frame({("mnist", "fft", "transposed"): [1.0, 2.0]})
    f.loc[1, "alpha"] = 0.1
    with pytest.raises(ValueError, match="α sweep"):
        report.summary_table(f)
    g = _frame({("mnist", "fft", "transposed"): [1.0]})
    g["converged"] = g["converged"].astype(object)
    g.loc[0, "converged"] = "maybe"
    with pytest.raises(ValueError, match="true/false"):
        report.summary_table(g)
    with pytest.raises(KeyError, match="upsample"):
        report.summary_table(g.drop(columns="upsample"))


# ------------------------------------------------------------------------------------------------------------
# best marks and the paper tables
# ------------------------------------------------------------------------------------------------------------
def _column(fft, ai, vanilla, watson=(9.0, 9.1, 9.2), mse=None, ds="mnist", up="transposed"):
    spec = {(ds, "fft", up): list(fft), (ds, "ai", up): list(ai), (ds, "vanilla", up): list(vanilla),
            (ds, "watson", up): list(watson)}
    if mse is not None:
        spec[(ds, "mse", up)] = list(mse)
    return spec


def test_best_is_marked_only_outside_the_runner_ups_seed_spread():
    clear = report.best_per_column(report.summary_table(_frame(_column([1.0, 1.1, 1.2], [1.5, 1.6, 1.7],
                                                                        [3, 3, 3])))).iloc[0]
    assert (clear["best"], clear["runner_up"], bool(clear["clear"])) == ("fft", "ai", True)
    # fft still has the lowest mean, but one ai seed (1.15) lies inside fft's range [1.0, 1.2]
    unclear = report.best_per_column(report.summary_table(_frame(_column([1.0, 1.1, 1.2], [1.15, 1.6, 1.7],
                                                                          [3, 3, 3])))).iloc[0]
    assert unclear["best"] == "fft" and not unclear["clear"]
    # one seed: the spread is unknown, never marked
    single = report.best_per_column(report.summary_table(_frame(_column([1.0], [5.0], [9.0], [9.0])))).iloc[0]
    assert single["best"] == "fft" and not single["clear"]
    # the control is never a contender, even when it is lowest
    ctrl = report.best_per_column(report.summary_table(_frame(_column([1.0, 1.1, 1.2], [1.5, 1.6, 1.7],
                                                                       [3, 3, 3], mse=[0.1, 0.1, 0.1])))).iloc[0]
    assert ctrl["best"] == "fft"


def test_best_rule_states_the_exact_chance_of_separated_seed_ranges():
    # two equally good objectives, 3 seeds each: all 6! orderings of their scores are equally likely; the
    # ranges are separated when the three lowest scores belong to one objective
    hits = sum(set(p[:3]) in ({0, 1, 2}, {3, 4, 5}) for p in itertools.permutations(range(6)))
    assert Fraction(hits, math.factorial(6)) == Fraction(1, 10)
    assert "probability 1/10" in report.best_rule(3) and "2 / C(6, 3)" in report.best_rule(3)
    assert "probability 1/35" in report.best_rule(4)
    assert "nothing is marked" in report.best_rule(1)


def test_paper_table_marks_split_per_domain_and_the_control_follows_fft():
    ref = _reference()
    spec = {}
    for ds in ("shapes", "mnist", "faces"):
        spec.update(_column([1.0, 1.1, 1.2], [1.15, 1.6, 1.7], [3, 3, 3], ds=ds))  # fft lowest, not clear
        spec[(ds, "mse", "transposed")] = [1.05, 1.1, 1.15]
    spec.update(_column([1.0, 1.1, 1.2], [1.5, 1.6, 1.7], [3, 3, 3], ds="faces", up="nearest_conv5"))
    conv = {("mnist", "ai", "transposed"): [True, True, False]}
    summary = report.summary_table(_frame(spec, conv))
    comp = report.compare_with_paper(summary, ref)
    t = report.paper_table(comp, "transposed", "AI", summary=summary)
    _assert_reader_facing(t)
    assert list(t.columns) == ["Data set", "Objective", "Ours", "± images", "Paper", "Converged"]
    # 3 data sets × (4 objectives + control) rows, the control right after FFT, faces as CelebA-style faces
    assert len(t) == 15 and t["Objective"].tolist()[:5] == ["Vanilla-VAE", "Watson-DFT", "AI", "FFT",
                                                           "H·W-MSE (no FFT)"]
    assert set(t["Data set"]) == {"Shapes", "MNIST", "CelebA-style faces"}
    row = t[(t["Data set"] == "MNIST") & (t["Objective"] == "FFT")].iloc[0]
    assert row["Ours"] == "1.1\u00a0±\u00a00.1"  # unclear best: no mark
    assert row["± images"] == "0.5"
    paper = ref[(ref.table == "table1") & (ref.dataset == "MNIST") & (ref.objective == "FFT") & (ref.domain == "AI")]
    assert row["Paper"] == f"{paper['mean'].iloc[0]:.3g}\u00a0±\u00a0{paper['std'].iloc[0]:.2g}\u00a0★"
    assert t[(t["Data set"] == "MNIST") & (t["Objective"] == "AI")].iloc[0]["Converged"] == "no (1 of 3 seeds)"
    assert t[t["Objective"] == "H·W-MSE (no FFT)"]["Paper"].eq("—").all()
    assert t[(t["Data set"] == "Shapes") & (t["Objective"] == "Watson-DFT")].iloc[0]["Paper"] == "—"
    # Table 2, faces: FFT's seeds all below AI's → marked
    t2 = report.paper_table(comp, "nearest_conv5", "2D FT", summary=summary)
    assert t2.iloc[3]["Ours"].endswith("\u00a0✓") and len(t2) == 4  # no control with N.1.5
    # spatial: another quantity, never a paper-best mark
    sp = report.paper_table(comp, "transposed", "Spatial", summary=summary)
    assert "Paper (another quantity)" in sp.columns and not sp["Paper (another quantity)"].str.contains("★").any()
    with pytest.raises(ValueError, match="unknown upsample"):
        report.paper_table(comp, "bilinear", "AI")
    with pytest.raises(ValueError, match="unknown domain"):
        report.paper_table(comp, "transposed", "Fourier")


def test_comparison_ratio_and_paper_best_only_in_comparable_domains():
    ref = _reference()
    comp = report.compare_with_paper(report.summary_table(_paper_as_ours(ref)), ref)
    assert len(comp) == 66
    ok = comp[comp.comparable]
    assert set(ok.domain) == {"AI", "2D FT"} and np.allclose(ok["ratio"], 1.0)
    assert comp.loc[~comp.comparable, "ratio"].isna().all()
    assert not comp.loc[comp.domain == "Spatial", "paper_best"].any()
    best = comp[(comp.table == "table1") & (comp.dataset == "mnist") & comp.paper_best]
    assert set(best.objective) == {"fft"} and set(best.domain) == {"AI", "2D FT"}


# ------------------------------------------------------------------------------------------------------------
# orderings and chance baselines
# ------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("n", [2, 3, 4, 5])
def test_tau_null_is_the_enumerated_distribution_of_scipys_tau(n):
    counts = {}
    for perm in itertools.permutations(range(n)):
        t = round(float(kendalltau(range(n), perm).statistic), 9)
        counts[t] = counts.get(t, 0) + 1
    got = report.tau_null(n)
    assert sum(got.values()) == 1
    assert {round(float(t), 9): p for t, p in got.items()} == {t: Fraction(c, math.factorial(n))
                                                               for t, c in counts.items()}


def test_tau_null_for_three_and_four_objectives():
    assert report.tau_null(3) == {Fraction(-1): Fraction(1, 6), Fraction(-1, 3): Fraction(1, 3),
                                  Fraction(1, 3): Fraction(1, 3), Fraction(1): Fraction(1, 6)}
    # Mahonian numbers of 4 items: 1, 3, 5, 6, 5, 3, 1 orderings with 6 … 0 inversions
    assert [p * 24 for p in report.tau_null(4).values()] == [1, 3, 5, 6, 5, 3, 1]
    t = report.tau_null_table((3, 4))
    _assert_reader_facing(t)
    assert list(t.columns) == ["Objectives", "τ = −1", "τ = −2/3", "τ = −1/3", "τ = 0", "τ = 1/3", "τ = 2/3",
                               "τ = 1"]
    assert t.iloc[0].tolist() == ["3", "1/6", "", "1/3", "", "1/3", "", "1/6"]
    assert t.iloc[1]["τ = 0"] == "1/4"
    with pytest.raises(ValueError, match="between 2 and 8"):
        report.tau_null(1)


def test_mean_tau_null_equals_brute_force_over_all_pairs_of_orderings():
    brute = {}
    p3, p4 = list(itertools.permutations(range(3))), list(itertools.permutations(range(4)))
    for a in p3:
        for b in p4:
            t = (report._tau_of_permutation(a) + report._tau_of_permutation(b)) / 2
            brute[t] = brute.get(t, 0) + Fraction(1, len(p3) * len(p4))
    assert report.mean_tau_null([3, 4]) == dict(sorted(brute.items()))
    assert sum(report.mean_tau_null([4, 4, 3, 3]).values()) == 1


def test_same_best_null_is_poisson_binomial():
    assert [float(p) for p in report.same_best_null([4] * 6)] == pytest.approx(binom.pmf(range(7), 6, 0.25))
    brute = [Fraction(0)] * 4
    for picks in itertools.product(range(3), range(4), range(4)):  # the paper's best is item 0 in each column
        brute[sum(p == 0 for p in picks)] += Fraction(1, 48)
    assert report.same_best_null([3, 4, 4]) == brute


def _ordering(taus, same, ns, clear=None):
    return pd.DataFrame({"table": "table1", "upsample": "transposed", "dataset": "mnist", "domain": "AI",
                         "n": ns, "kendall_tau": taus, "our_best": "fft", "paper_best": "fft",
                         "our_best_clear": clear if clear is not None else [True] * len(ns), "same_best": same})


def test_chance_baselines_and_plain_words():
    perfect = _ordering([1.0, 1.0], [True, True], [4, 4])
    b = report.chance_baselines(perfect)
    assert b["p_tau"] == pytest.approx(1 / 24**2) and b["p_same_best"] == pytest.approx(1 / 16)
    assert b["expected_same_best"] == pytest.approx(0.5)
    many = _ordering([1.0] * 6, [True] * 6, [4] * 6)
    assert "agree with the paper's more than chance would explain" in report.ordering_text(many)
    # reversed orders and no same best: said plainly, with a true minus sign
    none = _ordering([-1 / 3, -1.0, 0.0], [False, False, False], [3, 4, 4])
    text = report.ordering_text(none)
    assert "There is no agreement" in text and "−0.44" in text and "lean towards the reverse" in text
    assert report.chance_baselines(none)["p_same_best"] == pytest.approx(1.0)
    weak = _ordering([1 / 3, 0.0, 1 / 3], [True, False, False], [3, 4, 4])
    assert "There is no clear agreement" in report.ordering_text(weak)
    mixed = _ordering([1.0] * 4, [False] * 4, [4] * 4)
    assert "The evidence is mixed" in report.ordering_text(mixed)
    assert "no ordering can be compared" in report.ordering_text(_ordering([], [], []))


def test_ordering_against_the_paper_uses_comparable_columns_only():
    ref = _reference()
    same = report.ordering_agreement(report.compare_with_paper(report.summary_table(_paper_as_ours(ref)), ref))
    assert len(same) == 2 * 3 * 2 and set(same.domain) == {"AI", "2D FT"}
    assert same["same_best"].all() and np.allclose(same["kendall_tau"], 1.0)
    assert set(same.loc[same.dataset == "shapes", "n"]) == {3}  # no Watson on Shapes in the paper
    rev = report.ordering_agreement(report.compare_with_paper(
        report.summary_table(_paper_as_ours(ref, sign=-1.0)), ref))
    assert np.allclose(rev["kendall_tau"], -1.0)
    view = report.ordering_table(rev)
    _assert_reader_facing(view)
    assert view["Kendall τ"].eq("−1.00").all() and view["Same best"].eq("no").all()
    assert set(view["Data set"]) == {"Shapes", "MNIST", "CelebA-style faces"}
    # a single seed: our best is never clear
    assert view["Our best"].str.endswith("\u00a0?").all()
    assert list(view.columns) == ["Data set", "Table", "Domain", "n", "Kendall τ", "Our best", "Paper's best",
                                  "Same best"]


# ------------------------------------------------------------------------------------------------------------
# the MSE control
# ------------------------------------------------------------------------------------------------------------
def test_control_sentence_both_ways_and_with_one_seed():
    same = report.control_comparison(report.summary_table(_frame(
        {("mnist", "fft", "transposed"): [1.0, 1.2, 1.4], ("mnist", "mse", "transposed"): [1.1, 1.3, 1.5]})))
    assert len(same) == 3 and same["overlap"].all()
    text = report.control_sentence(same)
    assert text.startswith("In all 3 (data set × domain) cells the seeds of the H·W-MSE (no FFT) control overlap")
    assert "reproduces the FFT loss's numbers within the seed spread" in text
    differ = report.control_comparison(report.summary_table(_frame(
        {("faces", "fft", "transposed"): [1.0, 1.1, 1.2], ("faces", "mse", "transposed"): [2.0, 2.1, 2.2]})))
    assert not differ["overlap"].any() and differ["lower"].eq("fft").all()
    text = report.control_sentence(differ)
    assert "does not reproduce the FFT objective's numbers in any of the following 3" in text
    assert "CelebA-style faces, AI: FFT lower (1.1 for FFT, 2.1 for the control)" in text
    mixed = report.control_comparison(report.summary_table(_frame(
        {("faces", "fft", "transposed"): [1.0, 1.1, 1.2], ("faces", "mse", "transposed"): [2.0, 2.1, 2.2],
         ("mnist", "fft", "transposed"): [1.0, 1.2, 1.4], ("mnist", "mse", "transposed"): [1.1, 1.3, 1.5]})))
    assert list(mixed["dataset"].unique()) == ["mnist", "faces"]  # the paper's order
    assert "within the seed spread in 3 of 6 cells, but not in the following 3 (data set × domain) cells:" in (
        report.control_sentence(mixed))
    one = report.control_comparison(report.summary_table(_frame(
        {("mnist", "fft", "transposed"): [1.0], ("mnist", "mse", "transposed"): [0.9]})))
    assert one["overlap"].isna().all()
    assert "cannot be judged; its mean RMSE is lower in 3 of 3" in report.control_sentence(one)
    view = report.control_table(mixed)
    _assert_reader_facing(view)
    assert list(view.columns) == ["Data set", "Domain", "FFT", "H·W-MSE (no FFT)", "Same within seed spread?"]
    assert view["Same within seed spread?"].tolist() == ["yes"] * 3 + ["no"] * 3
    assert report.control_sentence(report.control_comparison(report.summary_table(_frame(
        {("mnist", "fft", "transposed"): [1.0]})))).startswith("There are no runs")


# ------------------------------------------------------------------------------------------------------------
# image quality, spectra, sentences
# ------------------------------------------------------------------------------------------------------------
def test_quality_table_and_sentence():
    spec = {("faces", "vanilla", "transposed"): [12.0, 12.2, 12.4], ("faces", "fft", "transposed"): [10.0, 10.1, 10.2],
            ("faces", "mse", "transposed"): [10.15, 10.3, 10.4], ("faces", "vanilla", "nearest_conv5"): [12.0, 12.0, 12.0],
            ("faces", "fft", "nearest_conv5"): [11.0, 11.0, 11.0], ("mnist", "fft", "transposed"): [1.0, 1.0, 1.0]}
    f = _frame(spec, {("faces", "fft", "nearest_conv5"): [True, False, True]})
    t = report.quality_table(f, "faces")
    _assert_reader_facing(t)
    assert t["Objective"].tolist() == ["Vanilla-VAE", "FFT", "H·W-MSE (no FFT)"]
    fft = t.iloc[1]
    assert fft["PSNR (dB), transposed"] == "19.9\u00a0±\u00a00.1" and fft["PSNR (dB), N.1.5"] == "19.0\u00a0±\u00a00.0"
    assert fft["SSIM, transposed"] == "0.899\u00a0±\u00a00.001" and fft["Converged"] == "no (1 of 6 seeds)"
    assert t.iloc[2]["PSNR (dB), N.1.5"] == "—"
    # PSNR: higher is better; FFT (19.8–20.0) overlaps the control (19.6–19.85)
    text = report.quality_sentence(f, "faces")
    assert "from 17.8 dB (Vanilla-VAE) to 19.9 dB (FFT)" in text and "within each other's seed spread" in text
    clear = report.quality_sentence(f[f.objective != "mse"], "faces")
    assert "FFT is clearly best" in clear
    assert report.quality_sentence(f[f.seed == 0], "faces").endswith("the seed spread is unknown.")
    with pytest.raises(ValueError, match="no runs of data set"):
        report.quality_table(f, "cifar")


def _record(ds, obj, up, seed, bump):
    f = np.linspace(0.05, 0.7, 14)
    real = -40.0 * f
    recon = real - 5.0 + np.where(f > 0.45, bump, 0.0)
    return {"config": {"dataset": ds, "objective": obj, "upsample": up, "seed": seed},
            "arrays": {"freqs": f, "profile_real_mean": real, "profile_recon_mean": recon}}


def test_spectral_excess_and_whether_n15_removes_the_peaks():
    recs = [_record("mnist", "fft", "transposed", s, 8.0) for s in range(3)]
    recs += [_record("mnist", "fft", "nearest_conv5", s, 0.0) for s in range(3)]
    recs += [_record("mnist", "ai", "transposed", s, 8.0 if s else 0.0) for s in range(3)]  # one seed below
    recs += [_record("mnist", "ai", "nearest_conv5", s, 0.0) for s in range(3)]
    ex = report.spectral_excess(recs)
    row = ex[(ex.objective == "fft") & (ex.upsample == "transposed")].iloc[0]
    assert row["excess"] == pytest.approx(3.0) and row["f_peak"] > 0.45
    assert ex[ex.upsample == "nearest_conv5"]["excess"].lt(0).all()
    text = report.peaks_sentence(ex, "power (dB)")
    assert "in every seed for 1 of 2 (data set, objective) pairs with transposed up-sampling and 0 with N.1.5" in text
    assert "(largest transposed excess: 3, in power (dB), MNIST / FFT)" in text
    assert text.endswith("N.1.5 removes every one of them.")
    flat = [_record("mnist", "fft", up, s, 0.0) for up in ("transposed", "nearest_conv5") for s in range(2)]
    assert report.peaks_sentence(report.spectral_excess(flat)).endswith("nothing for N.1.5 to remove.")
    both = [_record("mnist", "fft", up, s, 8.0) for up in ("transposed", "nearest_conv5") for s in range(2)]
    assert report.peaks_sentence(report.spectral_excess(both)).endswith("N.1.5 removes none of them.")
    with pytest.raises(ValueError, match="no frequency"):
        report.spectral_excess(recs, fmin=0.9)


def test_fft_wins_upsampler_and_watson_sentences():
    spec = {}
    spec.update(_column([1.0, 1.1, 1.2], [1.5, 1.6, 1.7], [3, 3, 3], ds="mnist"))  # fft clear in 3 domains
    spec.update(_column([1.0, 1.1, 1.2], [1.15, 1.6, 1.7], [3, 3, 3], ds="faces"))  # fft lowest, unclear
    spec.update(_column([5.0, 5.0, 5.0], [6, 6, 6], [1.0, 1.1, 1.2], [9, 9, 9], ds="shapes"))  # vanilla clear
    spec.update(_column([0.5, 0.6, 0.7], [1.5, 1.6, 1.7], [3, 3, 3], ds="mnist", up="nearest_conv5"))
    s = report.summary_table(_frame(spec))
    text = report.fft_wins_sentence(s)
    assert text.startswith("FFT has the lowest mean RMSE in 9 of our 12 columns")
    assert "clearly (outside the runner-up's seed spread) in 6, within the spread in 3" in text
    assert "Another objective is clearly best in 3 (Vanilla-VAE)" in text
    assert text.endswith("So the FFT loss is not a clear winner in most columns.")  # clear in 6 = half
    no_shapes = report.fft_wins_sentence(s[s.dataset != "shapes"])
    assert no_shapes.endswith("So the FFT loss still wins, clearly, in most columns.")  # 6 of 9
    vanilla_wins = report.fft_wins_sentence(s[s.dataset == "shapes"])
    assert vanilla_wins.endswith("So the FFT loss does not win in most columns.")
    one_seed = report.fft_wins_sentence(report.summary_table(_frame({k: v[:1] for k, v in spec.items()})))
    assert one_seed.endswith("the seed spread is unknown, so no winner is clear.")
    up = report.upsampler_sentence(s)
    # mnist N.1.5 vs transposed: fft lower and separated (3 domains); vanilla, ai, watson identical (overlap)
    assert "Across 12 (data set, objective, domain) cells" in up and "outside the seed spread in 3, a higher one in 0" in up
    w = report.watson_shapes_sentence(s)
    assert w.startswith("Watson-DFT against Vanilla-VAE, mean RMSE: transposed: AI 9 vs 1.1")
    assert "worse outside the seed spread in 3 of these 3 cells" in w
    assert report.watson_shapes_sentence(s[s.dataset != "shapes"]) == ""


def test_discussion_is_assembled_from_the_sentences():
    ref = _reference()
    frame = _paper_as_ours(ref, seeds=(-0.01, 0.0, 0.01))
    summary = report.summary_table(frame)
    comp = report.compare_with_paper(summary, ref)
    ordering = report.ordering_agreement(comp)
    text = report.discussion(summary, comp, ordering)
    heads = [line.split("**")[1] for line in text.splitlines() if line.startswith("- **")]
    # no Watson bullet (the paper, whose numbers these are, has no Watson row for Shapes), no control, no peaks
    assert heads == ["Does the FFT loss still win?", "Do the paper's orderings hold?",
                     "N.1.5 against transposed up-sampling.", "Scale against the paper."]
    assert "agree with the paper's more than chance would explain" in text
    assert "Median of ours ÷ paper: AI 1.00, 2D FT 1.00" in text and "partly by construction" in text
    assert "Spatial" not in text.split("Median of ours ÷ paper:")[1].split(".")[0]
    ctrl = report.control_comparison(report.summary_table(_frame(
        {("mnist", "fft", "transposed"): [1.0, 1.2, 1.4], ("mnist", "mse", "transposed"): [1.1, 1.3, 1.5]})))
    with_ctrl = report.discussion(summary, comp, ordering, control=ctrl)
    assert "**Is the FFT loss an L2 loss in disguise?** In all 3" in with_ctrl


# ------------------------------------------------------------------------------------------------------------
# smaller tables and notes
# ------------------------------------------------------------------------------------------------------------
def test_alpha_sweep_and_timing_tables():
    sweep = _frame({("mnist", "fft", "transposed"): [2.0]})
    sweep = pd.concat([sweep.assign(alpha=a, rmse_ai_mean=v) for a, v in ((0.9, 1.0), (0.01, 3.0), (0.5, 2.0))])
    sweep.loc[sweep.alpha == 0.01, "converged"] = False
    vanilla = _frame({("mnist", "vanilla", "transposed"): [4.0]})
    t = report.alpha_sweep_table(sweep, vanilla)
    _assert_reader_facing(t)
    assert t["α"].tolist() == ["0", "0.01", "0.5", "0.9"]
    assert t["Objective"].tolist() == ["Vanilla-VAE (BCE only)", "FFT", "FFT", "FFT"]
    assert t["RMSE AI"].tolist() == ["4", "3", "2", "1"]
    assert t["Converged"].tolist() == ["yes", "no (1 of 1 seeds)", "yes", "yes"]
    timing = report.timing_table(_frame({("faces", "fft", "transposed"): [1, 1], ("mnist", "fft", "transposed"): [1]}))
    _assert_reader_facing(timing)
    assert timing["Data set"].tolist() == ["MNIST", "CelebA-style faces"]
    assert timing.iloc[1][["Runs", "Images/s (mean)", "Minutes per run (mean)", "Steps done (mean)"]].tolist() == \
        ["2", "150", "10.0", "1,000"]


def test_convergence_note_and_caveats():
    f = _frame({("mnist", "fft", "transposed"): [1, 1, 1]}, {("mnist", "fft", "transposed"): [True, False, True]})
    note = report.convergence_note(f)
    assert note.startswith("2 of 3 runs met the convergence rule (the smoothed training loss changed by 0.50% to "
                           "3.00%")
    assert "1 stopped at the step cap without meeting it" in note
    assert "none stopped" in report.convergence_note(f.assign(converged=True))
    assert report.convergence_note(f.drop(columns="converged")).startswith("None of the 3 runs records")
    c = report.caveats(f, "cpu", width_div=4, faces_width_div=8)
    assert c.startswith(":::{admonition} Read this first\n:class: warning\n") and c.rstrip().endswith(":::")
    assert "*CelebA-style faces*" in c and "divided by 4 (Shapes, MNIST) and 8 (faces)" in c
    assert "GPU runs pending" in c
    assert "(reproducibility.md)" in c and "(metrics.md)" in c
    # "CelebA" alone only names the paper's data set, never ours
    for m in re.finditer(r"CelebA(?!-style)", c):
        assert re.search(r"(the paper's |aligned |in the )$", c[:m.start()]), c[m.start() - 30:m.end() + 10]
    g = report.caveats(f, "gpu")
    assert "GPU runs pending" not in g and "Model size" not in g


def test_myst_table_renders_a_numbered_table_without_the_index():
    t = pd.DataFrame({"Data set": ["MNIST", "MNIST", "Shapes"], "Objective": ["FFT", "A|B", "FFT"],
                      "Ours": ["1\u00a0±\u00a00.1", "2", "3"]}, index=[7, 8, 9])
    md = report.myst_table(t, "A caption", name="ch1-x")
    lines = md.splitlines()
    assert lines[:3] == [":::{table} A caption", ":name: ch1-x", ":align: left"]
    assert lines[4] == "| Data set | Objective | Ours |" and lines[5] == "| :-- | :-- | --: |"
    assert lines[6] == "| MNIST | FFT | 1\u00a0±\u00a00.1 |"
    assert lines[7] == "|  | A\\|B | 2 |"  # repeated data set blanked, pipe escaped
    assert lines[8].startswith("| Shapes |") and lines[-1] == ":::"
    assert "7" not in "".join(lines[6:9]).replace("±", "")  # the index is not shown
    with pytest.raises(ValueError, match="code names"):
        report.myst_table(pd.DataFrame({"rmse_ai": [1]}), "x")
    # grouping is hierarchical: a new data set shows its table number even when it repeats
    g = pd.DataFrame({"Data set": ["A", "A", "B"], "Table": ["2", "2", "2"], "x": ["1", "2", "3"]})
    rows = report.myst_table(g, "c", blank_repeats=("Data set", "Table")).splitlines()[5:8]
    assert rows == ["| A | 2 | 1 |", "|  |  | 2 |", "| B | 2 | 3 |"]


# ------------------------------------------------------------------------------------------------------------
# the chapter's source
# ------------------------------------------------------------------------------------------------------------
def _chapter_cells():
    import jupytext

    return jupytext.read(ROOT / "notebooks" / "01_simpler_is_better.py").cells


def test_chapter_code_fits_the_page_and_markdown_outputs_are_parsed_as_myst():
    code = [c for c in _chapter_cells() if c.cell_type == "code"]
    shown = [c for c in code if "remove-cell" not in c.metadata.get("tags", [])]  # a removed cell is never on the page
    long = [(i, line) for i, c in enumerate(shown) for line in c.source.splitlines() if len(line) > 95]
    assert not long, long
    for c in code:
        tags = c.metadata.get("tags", [])
        if "myst_table(" in c.source or "report.caveats(" in c.source:
            # tables and admonitions are MyST: without this metadata they render as raw text
            assert c.metadata.get("mystnb", {}).get("markdown_format") == "myst", c.source[:80]
            assert "remove-input" in tags, c.source[:80]
        if "glue(" in c.source and "fig" in c.source:
            assert {"hide-input", "remove-input"} & set(tags), c.source[:80]


def test_chapter_never_calls_our_faces_celeba_alone():
    text = "\n".join(c.source for c in _chapter_cells() if c.cell_type == "markdown")
    for m in re.finditer(r"CelebA(?!-style)", text):
        before = text[max(0, m.start() - 60):m.start()]
        assert re.search(r"(paper's|paper's Fig\. 1 shows a|on Shapes, MNIST and|for MNIST and|not)\s*$", before), \
            before + text[m.start():m.end() + 20]


def test_precision_twins_and_table():
    from specvae.experiments import config_hash

    twins = ch1.precision_twin_configs("cpu")
    assert [(c.dataset, c.objective, c.upsample, c.seed, c.precision) for c in twins] == [
        ("mnist", "vanilla", "transposed", 0, "fp32"), ("faces", "vanilla", "transposed", 0, "fp32")]
    grid = {config_hash(c): c for c in ch1.configs("cpu")}
    for t in twins:  # each twin is a grid run but for its precision, and has its own hash
        base = dataclasses.replace(t, precision="bf16")
        assert config_hash(base) in grid and config_hash(t) not in grid
    cfg = dataclasses.asdict(dataclasses.replace(twins[0], precision="bf16"))
    m = {"psnr_mean": 21.5, "ssim_mean": 0.8, "rmse_ai_mean": 1.2, "rmse_ft_mean": 1.04, "rmse_spatial_mean": 0.088,
         "steps_done": 8150}
    bf = {"config": cfg, "metrics": m}
    fp = {"config": {**cfg, "precision": "fp32"}, "metrics": {**m, "psnr_mean": 21.25, "steps_done": 8000}}
    t = report.precision_table([(bf, fp)])
    row = t[t.Metric == "PSNR (dB)"].iloc[0]
    assert (row["bf16"], row["fp32"], row["bf16 − fp32"]) == ("21.50", "21.25", "+0.25")
    assert row["Steps (bf16 / fp32)"] == "8,150 / 8,000" and len(t) == 5
    with pytest.raises(ValueError, match="more than its precision"):
        report.precision_table([(bf, {**fp, "config": {**fp["config"], "seed": 1}})])
    with pytest.raises(ValueError, match="expected \\(bf16, fp32\\)"):
        report.precision_table([(fp, bf)])


# ---------------------------------------------------------------------------------------------- convergence outlook
def _rule(a: float, b: float, c: float, t: float) -> float:
    L = lambda s: a + b * s ** (-c)  # noqa: E731
    return (L(0.8 * t) - L(t)) / L(t)


def test_power_law_steps_solves_the_rule_exactly() -> None:
    a, b, c = 0.12, 3.0, 0.7
    t = report.power_law_steps(a, b, c, tol=0.01, window=0.2)
    assert math.isfinite(t) and t > 1
    assert _rule(a, b, c, t) == pytest.approx(0.01, rel=1e-9)  # the boundary
    assert _rule(a, b, c, 0.9 * t) > 0.01 and _rule(a, b, c, 1.1 * t) < 0.01
    assert report.power_law_steps(0.0, b, c) == math.inf  # falling to 0: never
    assert report.power_law_steps(-1.0, b, c) == math.inf
    assert report.power_law_steps(a, b, 0.04) == 0.0  # 1.25**0.04 - 1 < 1 %: the rule holds everywhere
    assert report.power_law_steps(a, -b, c) == 0.0


def test_fit_power_law_recovers_a_noise_free_curve() -> None:
    steps = np.arange(50, 15_001, 50, dtype=float)
    a, b, c = 0.13, 4.0, 0.65
    a_hat, b_hat, c_hat = report.fit_power_law(steps, a + b * steps ** (-c))
    assert (a_hat, b_hat, c_hat) == pytest.approx((a, b, c), rel=1e-4)


def test_convergence_outlook_reads_capped_runs_only() -> None:
    steps = np.arange(50, 15_001, 50, dtype=float)
    a, b, c = 0.13, 4.0, 0.65
    loss = a + b * steps ** (-c)
    want = report.power_law_steps(a, b, c) / 15_000

    def rec(converged, seed, objective="fft"):
        return {"config": {"dataset": "mnist", "upsample": "transposed", "objective": objective, "alpha": 0.5,
                           "seed": seed},
                "metrics": {"converged": converged, "steps_done": 15_000, "loss_rel_change_last20": 0.09},
                "history": {"step": steps.tolist(), "loss": loss.tolist()}}

    table = report.convergence_outlook([rec(False, 0), rec(False, 1), rec(True, 0, "vanilla")])
    assert len(table) == 1 and table.loc[0, "Seeds at cap"] == 2 and table.loc[0, "Objective"] == "FFT"
    assert table.loc[0, report.OUTLOOK_COLUMN] == (f"{want:.1f}×" if want < 10 else f"{want:.0f}×")
    assert "times their cap" in report.convergence_outlook_sentence(table)
    assert report.convergence_outlook([rec(True, 0)]).empty

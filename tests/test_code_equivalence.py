"""The committed declarations of code equivalence (book/results/code_equivalence.json) and their evidence.

A declaration says that a changed definition computes, for one chapter, what the stored runs computed, and names
the tests that show it (specvae.experiments.code_equivalence). Evidence that has no more natural home lives here.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from specvae.experiments import code_equivalence

REPO = Path(__file__).resolve().parents[1]


def test_committed_declarations_are_valid():
    """No entry of the committed file is refused (each has a reason and evidence tests that exist), and each
    names a chapter of the book."""
    declarations = code_equivalence.load(REPO / "book" / "results" / code_equivalence.FILE_NAME,
                                         tests_dir=REPO / "tests")
    assert declarations.problems == []
    for entry in declarations.entries:
        assert (REPO / "notebooks" / f"{entry.chapter}.py").is_file(), entry.label()


def test_chapter1_data_fallback_acts_only_at_smoke(monkeypatch, tmp_path):
    """Evidence for the chapter-1 declaration: since 0a381f0, ``_load`` passes ``fallback=smoke_fallback(preset)``
    to ``load_dataset``, which gained ``fallback=`` (generated Shapes in place of a missing data set), and
    ``ImageData`` a ``stand_in`` field. At every preset but smoke, ``_load`` makes the call it made at 0a381f0 plus
    ``fallback=None``, and ``load_dataset(..., fallback=None)`` returns the same data as the call without it (or
    raises for a missing data set, with no stand-in)."""
    import specvae.data as data
    from specvae.data import DatasetNotFoundError, fallbacks, load_dataset
    from specvae.experiments import simpler_is_better as ch1

    calls = []
    with monkeypatch.context() as patch:
        patch.setattr(data, "load_dataset", lambda name, split, **kw: calls.append((name, split, kw)) or "data")
        for preset in ("cpu", "gpu", "paper", "smoke"):
            for cfg in ch1.configs(preset):
                for split in ("train", "test"):
                    calls.clear()
                    assert ch1._load(cfg, split) == "data"
                    limit = cfg.n_train if split == "train" else cfg.n_test
                    # the call of `git show 0a381f0:specvae/experiments/simpler_is_better.py` (_load) ...
                    before = dict(image_size=cfg.image_size, limit=limit, seed=0, channels=cfg.channels,
                                  progress=False)
                    # ... plus fallback=None, except at smoke
                    fallback = "shapes" if preset == "smoke" else None
                    assert calls == [(cfg.dataset, split, {**before, "fallback": fallback})], (preset, cfg)

    monkeypatch.delenv("SPECVAE_REQUIRE_DATA", raising=False)
    args = dict(image_size=32, limit=64, seed=0, channels=1, progress=False)
    plain = load_dataset("shapes", "test", **args)
    none = load_dataset("shapes", "test", **args, fallback=None)
    for field in dataclasses.fields(plain):
        a, b = getattr(plain, field.name), getattr(none, field.name)
        assert (torch.equal(a, b) if isinstance(a, torch.Tensor) else a == b), field.name
    assert none.stand_in is None and "stand_in" not in repr(none)  # the repr is as before without a stand-in
    seen = len(fallbacks())
    with pytest.raises(DatasetNotFoundError):
        load_dataset("mnist", "test", root=tmp_path, **args, fallback=None)
    assert len(fallbacks()) == seen


def _convergence_figures(record: dict) -> list[tuple[str, object, float]]:
    """(where, converged, relative change) of every training a stored record reports: the run's own
    (``metrics``) and, for a stacked model trained layer by layer (HQA), each layer's (``extra.per_layer_*``)."""
    metrics, extra = record.get("metrics") or {}, record.get("extra") or {}
    found = []
    if "converged" in metrics and "loss_rel_change_last20" in metrics:
        found.append(("metrics", metrics["converged"], metrics["loss_rel_change_last20"]))
    for i, (flag, change) in enumerate(zip(extra.get("per_layer_converged") or [],
                                           extra.get("per_layer_rel_change") or [])):
        found.append((f"layer {i}", flag, change))
    return found


def _tolerance(config: object) -> float | None:
    """The convergence tolerance a stored config names (``converge_tol`` / ``ae_converge_tol``, at any depth)."""
    if isinstance(config, dict):
        for key in ("converge_tol", "ae_converge_tol"):
            if isinstance(config.get(key), (int, float)):
                return float(config[key])
        for value in config.values():
            tol = _tolerance(value)
            if tol is not None:
                return tol
    return None


def test_no_stored_run_converged_on_a_rising_loss():
    """Evidence for the declarations of ``specvae.train:fit`` (the rule became |change| < tol on 2026-11-30):
    every stored run (and every layer of a stacked one) that the rule stopped had a figure >= -tol there, so the
    current rule stops it at the same step (tests/test_train_rules.py::
    test_the_rule_stops_where_the_signed_rule_did_unless_the_loss_had_risen); runs at their cap are unchanged
    too. A run that an older rule stopped on a rising loss must be removed and retrained, not declared."""
    import json

    results = REPO / "book" / "results"
    checked, offenders = 0, []
    for path in sorted(results.glob("*/*.json")):
        record = json.loads(path.read_text())
        if not isinstance(record, dict) or "metrics" not in record:
            continue
        tol = _tolerance(record.get("config")) or 0.01  # 0.01: every chapter's cpu preset
        for where, converged, change in _convergence_figures(record):
            if converged is True and change is not None:
                checked += 1
                if not abs(float(change)) < tol:
                    offenders.append(f"{path.relative_to(REPO)} ({where}): change {float(change):+.4f}, tol {tol}")
    assert checked > 20  # the stored chapters' converged runs are really read
    assert offenders == [], "stopped on a rising loss (remove and retrain): " + "; ".join(offenders)

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

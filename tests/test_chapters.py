"""Every chapter runs end to end at the ``smoke`` preset, executed by papermill as the book does.

This is the CI proof that the path package → runs → results store → executed notebook works for each chapter.
Runs train from scratch into a temporary results folder, so the committed results are neither read nor touched.
The chapters need the real data sets (``SPECVAE_DATA``) and the Watson-DFT parameters (``SPECVAE_WEIGHTS``);
without them the test fails with the chapter's own error message.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from specvae.book import find_banner, list_chapters

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = [c.name for c in list_chapters(ROOT)]

pytestmark = [pytest.mark.data, pytest.mark.weights]  # chapter 1 needs the Watson-DFT parameters


def test_every_chapter_in_the_toc_has_a_source():
    # the two chapters of this edition exist as jupytext sources (guards against the parametrisation below
    # silently shrinking to nothing)
    assert {"00_spectral_bias", "01_simpler_is_better"} <= set(CHAPTERS)


@pytest.mark.parametrize("name", CHAPTERS)
def test_chapter_runs_at_smoke(name, tmp_path, monkeypatch):
    from specvae.book import execute_chapter

    for var in ("SPECVAE_DATA", "SPECVAE_WEIGHTS"):
        if not os.environ.get(var):
            pytest.fail(f"{var} is not set: point it at the data sets / weights folder (see README) to run chapter {name}")
    results = tmp_path / "results"
    monkeypatch.setenv("SPECVAE_RESULTS", str(results))  # inherited by the papermill kernel
    monkeypatch.setenv("SPECVAE_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("MPLBACKEND", "Agg")

    start = time.perf_counter()
    path = execute_chapter(name, preset="smoke", root=ROOT, output_dir=tmp_path / "book", progress=False)
    elapsed = time.perf_counter() - start
    nb = json.loads(path.read_text(encoding="utf-8"))

    outputs = [o for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    banner = find_banner(nb)
    assert banner is not None and banner.preset == "smoke" and banner.chapter == name
    # the chapter made its figures and tables from runs it trained into the temporary store
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 3
    assert any("<table" in "".join(o.get("data", {}).get("text/html", "")) for o in outputs)
    stored = list((results / name).glob("*.json"))
    assert stored, f"chapter {name} stored no run results under {results / name}"
    for record in stored:
        data = json.loads(record.read_text(encoding="utf-8"))
        assert data["provenance"]["preset"] == "smoke"
    # CI budget: a smoke chapter takes seconds to a couple of minutes on 2 CPU cores
    assert elapsed < 420, f"chapter {name} took {elapsed:.0f} s at smoke"

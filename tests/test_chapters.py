"""Every chapter runs end to end at the ``smoke`` preset, executed by papermill as the book does.

This is the CI proof that the path package → runs → results store → executed notebook works for each chapter.
Runs train from scratch into a temporary results folder, so the committed results are neither read nor touched.
Where a chapter's data set is missing, the smoke preset runs on generated Shape images in its place and the
executed notebook says so (``STAND-IN``); with ``SPECVAE_REQUIRE_DATA=1`` (CI with the data) there is no stand-in
and a missing data set fails the chapter. Chapter 1 needs the Watson-DFT parameters (skipped without them).
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from specvae.book import find_banner, list_chapters
from specvae.data import check_data, require_data

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = [c.name for c in list_chapters(ROOT)]
#: the data sets each chapter reads, for the chapters whose smoke run lets generated Shapes stand in for a missing
#: one (``fallback=smoke_fallback(preset)``); the notebook must name exactly the missing ones as stand-ins
READS = {"00_spectral_bias": ("mnist", "faces"), "01_simpler_is_better": ("mnist", "faces"),
         "04_fq_vae": ("mnist", "cifar10", "faces")}
#: pretrained files a chapter cannot run without; a chapter not in READS needs every data set and file (skipped
#: when any is missing)
NEEDS = {"00_spectral_bias": (), "01_simpler_is_better": pytest.mark.weights("watson-gray", "watson-rgb"),
         "04_fq_vae": ()}  # chapter 4 measures LPIPS and rFID only above smoke
_NO_STAND_IN = (pytest.mark.data, pytest.mark.weights)


def test_every_chapter_in_the_toc_has_a_source():
    # the two chapters of this edition exist as jupytext sources (guards against the parametrisation below
    # silently shrinking to nothing)
    assert {"00_spectral_bias", "01_simpler_is_better"} <= set(CHAPTERS)


def _figures(outputs) -> int:
    """The figures among a notebook's outputs: shown in place (image/png) or glued for a numbered figure
    (papermill.record/image/png)."""
    return sum(any(k.endswith("image/png") for k in o.get("data", {})) for o in outputs)


@pytest.mark.parametrize("name", [pytest.param(c, marks=NEEDS.get(c, _NO_STAND_IN)) for c in CHAPTERS])
def test_chapter_runs_at_smoke(name, tmp_path, monkeypatch, record_property):
    from specvae.book import execute_chapter

    present = {r["name"] for r in check_data() if r["present"]}
    absent = sorted(set(READS.get(name, ())) - present)
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
    # a data set missing here was replaced by generated images, and the executed notebook says which
    text = "\n".join("".join(o.get("text", "")) for o in outputs)
    stood_in = sorted(set(re.findall(r"STAND-IN: data set '([\w-]+)'", text)))
    assert stood_in == absent, f"missing here: {absent}; the notebook names as stand-ins: {stood_in}"
    assert not (absent and require_data())  # SPECVAE_REQUIRE_DATA=1 would have failed the chapter instead
    record_property("stand_in", ",".join(absent))
    banner = find_banner(nb)
    assert banner is not None and banner.preset == "smoke" and banner.chapter == name
    # the chapter made its figures and tables from runs it trained into the temporary store
    assert _figures(outputs) >= 3
    # a table as HTML (a DataFrame) or as a MyST/Markdown table (a header row, then its | --- | separator)
    html = ["".join(o.get("data", {}).get("text/html", "")) for o in outputs]
    md = ["".join(o.get("data", {}).get("text/markdown", "")) for o in outputs]
    separator = re.compile(r"^\|.*\|\n\|(\s*:?-+:?\s*\|)+", re.M)
    assert any("<table" in h for h in html) or any(separator.search(m) for m in md)
    stored = list((results / name).glob("*.json"))
    assert stored, f"chapter {name} stored no run results under {results / name}"
    for record in stored:
        data = json.loads(record.read_text(encoding="utf-8"))
        assert data["provenance"]["preset"] == "smoke"
    CHAPTER_CHECKS.get(name, lambda *a: None)(nb, outputs, results / name)
    # CI budget: a smoke chapter takes seconds to a couple of minutes on 2 CPU cores
    assert elapsed < 420, f"chapter {name} took {elapsed:.0f} s at smoke"


def _fa_vae_checks(nb, outputs, results: Path) -> None:
    """Chapter 2: every figure and table of the paper, the whole grid stored, its two tokenizers loadable."""
    import torch

    from specvae.models.vqgan import VQGAN

    assert _figures(outputs) >= 5
    assert sum("<table" in "".join(o.get("data", {}).get("text/html", "")) for o in outputs) >= 4
    from specvae.experiments import fa_vae

    # 18 + 2 seed repeats of VQ-GAN and FA-VAE + the 4 claim rows at seed 1
    assert len(list(results.glob("*.json"))) == len(fa_vae.configs("smoke")) == 24
    html = "".join("".join(o.get("data", {}).get("text/html", "")) for o in outputs)
    assert "max − min" in html and "rFID by seed" in html  # the seed tables, which grade the claims
    md = "".join("".join(o.get("data", {}).get("text/markdown", "")) for o in outputs)
    assert "The yardstick the claims use" in md and "(mean of " in md  # claims compare seed means
    toks = sorted(results.glob("*.tokenizer.safetensors"))
    assert len(toks) == 2 and all(t.stat().st_size < 20e6 for t in toks)
    tok = VQGAN.load_tokenizer(toks[0])
    idx = tok.encode_indices(torch.rand(2, 3, 64, 64))
    assert idx.dtype == torch.long and idx.shape[0] == 2 and int(idx.max()) < tok.codebook_size


def _fq_vae_checks(nb, outputs, results: Path) -> None:
    """Chapter 4: the whole smoke grid stored, Tables 1-4 and the figures shown, every section's reading."""
    from specvae.experiments import fq_vae, fq_vae_prior

    assert len(list(results.glob("*.json"))) == len(fq_vae.configs("smoke")) + len(fq_vae_prior.configs("smoke"))
    assert _figures(outputs) >= 5
    html = "".join("".join(o.get("data", {}).get("text/html", "")) for o in outputs)
    for caption in ("Table 1a", "Table 2: ablation", "Table 3", "Table 4", "Error per frequency band",
                    "Fig. 6 in numbers"):
        assert caption in html, caption
    md = "".join("".join(o.get("data", {}).get("text/markdown", "")) for o in outputs)
    assert "LPIPS and rFID are not measured at this preset" in md
    assert "band FQ-VAE's error is" in md and "Share of the codebook used" in md


#: what a chapter's executed smoke notebook must show beyond the checks every chapter passes (one execution per
#: chapter in the whole suite: a chapter's own test module does not execute it again)
CHAPTER_CHECKS = {"02_fa_vae": _fa_vae_checks, "04_fq_vae": _fq_vae_checks}

"""The paper's Table 4 as shipped: the numbers of the paper's text, labelled with its data set."""

from __future__ import annotations

from pathlib import Path

import pytest

from specvae import reference

PAPER = Path("/work/shared/papers/fa-vae_lin-et-al-2023.txt")


def test_table4_values_and_labels():
    t = reference.load("lin2023", "table4")
    assert list(t["model"]) == ["AttnGAN", "ControlGAN", "DM-GAN", "DF-GAN", "TediGAN", "LAFITE", "CAT (Ours)"]
    assert set(t["dataset"]) == {"MM-CelebA-HQ"} and set(t["metric"]) == {"FID"}
    values = dict(zip(t["model"], t["value"].astype(float)))
    assert values["CAT (Ours)"] == 10.23 and min(values, key=values.get) == "CAT (Ours)"
    assert sum(values.values()) == pytest.approx(640.09)  # digest: an edited number is caught


def test_table4_matches_the_paper_text():
    if not PAPER.is_file():
        pytest.skip("the paper's text is not on this machine (the digest test above still guards the file)")
    text = PAPER.read_text(encoding="utf-8")
    block = text[text.index("Model\tFID"):text.index("Table 4.")]
    t = reference.load("lin2023", "table4")
    for model, value in zip(t["model"], t["value"]):
        assert f"{model} " in block or f"{model}\t" in block
        assert f"{float(value):.2f}" in block

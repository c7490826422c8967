"""The reproduced papers' own numbers, one CSV per table or figure, shipped with the package.

These are the only typed-in numbers of the project: each file is a table of a paper copied once from its text
(``<paper>_<table>.csv``), with the table id in a ``table`` column. Our results never live here (they are computed
and stored under ``book/results/``).

Files:

``bjork2022_table1.csv``  Björk et al., ICASSP 2022, Table 1 (transposed-convolution up-sampling).
``bjork2022_table2.csv``  Björk et al., ICASSP 2022, Table 2 ("N.1.5" up-sampling in the last layer).
    Columns ``table, objective, dataset, domain, mean, std``; objectives ``Vanilla-VAE``, ``Watson-DFT``, ``AI``,
    ``FFT``; datasets ``Shape``, ``MNIST``, ``CelebA``; domains ``AI``, ``2D FT``, ``Spatial`` (RMSE, mean ± std over
    test images, as printed; Watson-DFT on Shape is absent, as in the paper). Two entries look like typos in the
    paper and are kept as printed: Table 2, AI/CelebA, 2D FT std 4.3116 and Spatial mean 0.7356.
``lin2023_table1.csv``  Lin et al., CVPR 2023 (FA-VAE), Table 1: rFID vs codebook size and token grid (FFHQ,
    ImageNet); columns ``table, model, dataset, codebook_size, grid, rfid, note`` (VQ-VAE-2's "~ 10 (train)" is
    stored as 10 with the printed text in ``note``).
``lin2023_table2.csv``  Lin et al., Table 2: the CelebA-HQ ablation, rows 1-14 as printed (row 6 prints μ = 9;
    the official script used 5); columns ``table, row, ablation_on, ffl, sl, fcm, kernel, dsl, mu, sigma0,
    pairwise, l1, lpips, rfid`` (yes/no for the ✓/× marks).
``lin2023_table3.csv``  Lin et al., Table 3: zero-shot reconstruction of ImageNet-trained models on CelebA-HQ
    and FFHQ; columns ``table, model, f, celeba_rfid, celeba_psnr, ffhq_rfid, ffhq_psnr``.
``lin2023_table4.csv``  Lin et al. (FA-VAE), CVPR 2023, Table 4: text-to-image FID on **MM-CelebA-HQ** (the
    paper's data set, not ours). Columns ``table, model, dataset, metric, value, reference`` (the paper's citation
    number of each baseline, whose FID the paper quotes from other papers).

Usage: ``specvae.reference.load("bjork2022", "table1") -> pandas.DataFrame``; ``available()`` lists the tables.
"""

from __future__ import annotations

from importlib import resources

__all__ = ["load", "available", "path"]


def available() -> list[tuple[str, str]]:
    """``(paper, table)`` pairs of every reference CSV shipped with the package, sorted."""
    out = []
    for entry in resources.files(__name__).iterdir():
        name = entry.name
        if name.endswith(".csv") and "_" in name:
            paper, table = name[:-4].split("_", 1)
            out.append((paper, table))
    return sorted(out)


def path(paper: str, table: str):
    """The packaged file of ``paper``'s ``table`` (a ``Traversable``); clear error listing what exists."""
    entry = resources.files(__name__) / f"{paper}_{table}.csv"
    if not entry.is_file():
        have = ", ".join(f"{p}/{t}" for p, t in available()) or "none"
        raise ValueError(f"no reference data for paper {paper!r}, table {table!r}; available: {have}")
    return entry


def load(paper: str, table: str):
    """The paper's own numbers of ``table`` as a :class:`pandas.DataFrame` (e.g. ``load("bjork2022", "table1")``).

    Numeric columns (``mean``, ``std``) are floats; everything else is kept as text.
    """
    import pandas as pd

    with path(paper, table).open("r", encoding="utf-8") as handle:
        frame = pd.read_csv(handle, dtype={"table": str, "objective": str, "dataset": str, "domain": str})
    for column in ("mean", "std", "value"):
        if column in frame:
            frame[column] = frame[column].astype(float)
    return frame

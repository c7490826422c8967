"""specvae.reference: the papers' own numbers (Björk et al. 2022 Tables 1-2)."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pandas as pd
import pytest

from specvae import reference

PAPER = Path(__file__).resolve().parents[1] / ".." / "shared" / "papers" / "simpler-is-better_bjork-et-al-2022.txt"


@pytest.mark.parametrize("table", ["table1", "table2"])
def test_bjork_tables_shape_and_round_trip(table):
    frame = reference.load("bjork2022", table)
    assert list(frame.columns) == ["table", "objective", "dataset", "domain", "mean", "std"]
    # 11 rows per table (Watson-DFT on Shape omitted by the paper) x 3 domains
    assert len(frame) == 33
    assert set(frame["table"]) == {table}
    assert frame.groupby(["objective", "dataset"]).size().eq(3).all()
    assert not ((frame["objective"] == "Watson-DFT") & (frame["dataset"] == "Shape")).any()
    assert set(frame["domain"]) == {"AI", "2D FT", "Spatial"}
    assert not frame.duplicated(["objective", "dataset", "domain"]).any()
    assert frame["mean"].dtype == float and (frame["std"] >= 0).all()
    # round trip: the packaged CSV, re-read after writing it back, is the same table
    text = frame.to_csv(index=False)
    again = pd.read_csv(io.StringIO(text))
    pd.testing.assert_frame_equal(frame, again)


def test_spot_values():
    t1 = reference.load("bjork2022", "table1").set_index(["objective", "dataset", "domain"])
    t2 = reference.load("bjork2022", "table2").set_index(["objective", "dataset", "domain"])
    assert t1.loc[("FFT", "CelebA", "2D FT"), "mean"] == 3.5406
    assert t1.loc[("Watson-DFT", "CelebA", "AI"), "std"] == 2.7038
    assert t2.loc[("FFT", "Shape", "Spatial"), "mean"] == 2.6892e-05
    assert t2.loc[("AI", "CelebA", "Spatial"), "mean"] == 0.7356  # as printed (likely a typo in the paper)


def test_unknown_table_is_a_clear_error():
    assert ("bjork2022", "table1") in reference.available()
    with pytest.raises(ValueError, match="available: .*bjork2022/table1"):
        reference.load("bjork2022", "table9")


def _paper_rows(text: str, caption: str) -> list[tuple[str, str, list[float]]]:
    start = text.index(caption)
    rows = []
    for line in text[start:].splitlines()[3:]:
        m = re.match(r"^(Vanilla-VAE|Watson-DFT|AI|FFT):\s+(\w+)\s+(.*)$", line)
        if not m:
            if rows:
                break
            continue
        cells = line.split("\t")[2:]
        nums = []
        for cell in cells:
            cell = re.sub(r"\$|\\boldsymbol\{|\}|\\pm", " ", cell).replace("±", " ")
            nums += [float(v) for v in cell.split()]
        rows.append((m.group(1), m.group(2), nums))
    return rows


@pytest.mark.parametrize("table,caption", [("table1", "Table 1: Mean"), ("table2", "Table 2: Mean")])
def test_csv_matches_paper_text(table, caption):
    if not PAPER.is_file():
        pytest.skip(f"the paper's text is not on this machine ({PAPER}); the CSV itself ships with the package")
    rows = _paper_rows(PAPER.read_text(encoding="utf-8"), caption)
    assert len(rows) == 11
    frame = reference.load("bjork2022", table).set_index(["objective", "dataset", "domain"])
    for objective, dataset, nums in rows:
        assert len(nums) == 6, (objective, dataset, nums)
        for i, domain in enumerate(("AI", "2D FT", "Spatial")):
            assert frame.loc[(objective, dataset, domain), "mean"] == pytest.approx(nums[2 * i], rel=1e-9)
            assert frame.loc[(objective, dataset, domain), "std"] == pytest.approx(nums[2 * i + 1], rel=1e-9)


# Digests of the tables' numbers, recorded on 2026-11-23 right after test_csv_matches_paper_text passed against the
# paper's text. That test skips where the paper is not on the machine (a fresh clone); this one always runs, so an
# edit of the packaged numbers cannot pass unnoticed there.
TABLE_DIGESTS = {"table1": "0082567a7a294d12", "table2": "78366c6791ce210e"}


@pytest.mark.parametrize("table", sorted(TABLE_DIGESTS))
def test_packaged_numbers_are_the_ones_checked_against_the_paper(table):
    import hashlib

    frame = reference.load("bjork2022", table)
    rows = sorted((r.objective, r.dataset, r.domain, repr(float(r.mean)), repr(float(r.std)))
                  for r in frame.itertuples())
    assert hashlib.sha256(repr(rows).encode()).hexdigest()[:16] == TABLE_DIGESTS[table], (
        f"the numbers of bjork2022/{table} changed: check them against the paper (test_csv_matches_paper_text) "
        "and update TABLE_DIGESTS")

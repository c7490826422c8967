"""Chapter 2's ``gpu`` path: what a run on a lent GPU machine reads, computes without the metric networks that do
not travel, and how its configs keep the stored ``cpu`` runs' keys."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from specvae.experiments import fa_vae as ch
from specvae.experiments.hashing import canonical_config, config_hash

RESULTS = Path(__file__).resolve().parents[1] / "book" / "results" / ch.CHAPTER


def test_gpu_preset_reads_only_what_travels() -> None:
    cfgs = ch.configs("gpu")
    assert {c.lpips_net for c in cfgs} == {"alex"}  # VGG's trunk does not fit a device call
    assert {c.zero_shot_sets for c in cfgs} == {("imagenet",)}  # the CIFAR subset does not fit beside the faces
    assert all(c.steps > c.disc_start for c in cfgs) and {c.ch for c in cfgs} == {128}  # the paper's width
    staged = {Path(p).parts[0] for p in ch.GPU_DATA["faces"]}
    loaders = {ch.ZERO_SHOT_DATA[z][0] for c in cfgs if c.zero_shot for z in c.zero_shot_sets}
    assert loaders <= staged and "faces64" in staged
    assert ch.GPU_WEIGHTS == ("lpips/alexnet_features.pth",)
    from specvae.metrics.weights import WEIGHTS

    assert WEIGHTS["lpips-alex"].cache_name in ch.GPU_WEIGHTS
    assert set(ch.METRIC_WEIGHTS) == {"lpips-vgg", "fid-inception"}


def test_every_run_trains_on_the_faces_and_dataset_runs_is_the_grid() -> None:
    grid = ch.configs("gpu")
    assert ch.DATASETS == ("faces",) and list(ch.GPU_DATA) == list(ch.DATASETS)
    assert ch.dataset_runs("faces") == grid and len(set(grid)) == 18
    assert ch.only_on(grid, None) == grid and ch.only_on(grid, ()) == []
    with pytest.raises(ValueError, match="unknown data sets"):
        ch.only_on(grid, ("mnist",))
    with pytest.raises(ValueError, match="unknown zero-shot sets"):
        ch.configs("smoke", zero_shot_sets=("lsun",))


def test_zero_shot_sets_enter_the_hash_only_when_not_both() -> None:
    """The field came after the ``cpu`` runs were stored: their keys must not move, a ``gpu`` run's must differ."""
    import dataclasses

    cfg = ch.configs("cpu")[0]
    assert cfg.zero_shot_sets == ("imagenet", "cifar10")
    assert "zero_shot_sets" not in json.dumps(canonical_config(cfg))
    other = dataclasses.replace(cfg, zero_shot_sets=("imagenet",))
    assert config_hash(other) != config_hash(cfg)


@pytest.mark.skipif(not RESULTS.is_dir(), reason="no stored chapter-2 results in this checkout")
def test_every_stored_cpu_run_keeps_its_key() -> None:
    """Each stored ``cpu`` record's config, rebuilt by today's ``configs``, hashes to the file it is stored in."""
    stored = {p.stem: json.loads(p.read_text()) for p in RESULTS.glob("*.json")}
    cpu = {h: r for h, r in stored.items() if r["config"]["preset"] == "cpu"}
    assert len(cpu) >= 20
    now = {config_hash(c) for c in ch.configs("cpu")}
    assert set(cpu) <= now


class _Recorder:
    def __init__(self, value):
        self.calls, self.value = [], value

    def __call__(self, *args, **kwargs):
        self.calls.append((args, kwargs))
        return self.value


def test_evaluate_skips_exactly_the_unavailable_metric_networks(monkeypatch) -> None:
    """With nothing skipped evaluate calls LPIPS-VGG and rFID as before; each skipped network leaves only its own
    metrics NaN (rFID's image counts 0) and the other metrics unchanged."""
    import specvae.metrics as metrics
    from specvae.metrics.fid import FIDResult

    torch.manual_seed(0)
    s = ch.sizes("smoke")
    vq = ch.build_model(ch._config(s, "smoke", "row01", 4, 0)).vqgan
    images = torch.randint(0, 256, (4, 3, 64, 64), dtype=torch.uint8)
    lp = _Recorder(torch.full((4,), 0.25))
    fid = _Recorder(FIDResult(value=12.5, n_real=4, n_recon=4, precision="fp32"))
    monkeypatch.setattr(metrics, "lpips_distance", lp)
    monkeypatch.setattr(metrics, "rfid", fid)
    full = ch.evaluate(vq, images, dataset="faces", split="test")["metrics"]
    assert [c[0][2] for c in lp.calls] == ["vgg", "alex"] and len(fid.calls) == 1
    assert full["lpips_vgg"] == 0.25 and full["rfid"] == 12.5 and full["rfid_n_real"] == 4
    lp.calls.clear()
    fid.calls.clear()
    part = ch.evaluate(vq, images, dataset="faces", split="test", skip=["lpips-vgg", "fid-inception"])["metrics"]
    assert [c[0][2] for c in lp.calls] == ["alex"] and fid.calls == []
    assert math.isnan(part["lpips_vgg"]) and math.isnan(part["rfid"]) and part["rfid_n_real"] == 0
    same = [k for k in full if k not in ("lpips_vgg", "rfid", "rfid_n_real", "rfid_n_recon", "rfid_precision")]
    assert {k: part[k] for k in same} == {k: full[k] for k in same}
    assert "rfid_precision" not in part


def test_unavailable_names_the_networks_without_a_local_copy(tmp_path, monkeypatch) -> None:
    from specvae.metrics import weights

    monkeypatch.setenv("SPECVAE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("SPECVAE_WEIGHTS", str(tmp_path / "none"))
    monkeypatch.setattr(weights, "_resolve", lambda name, *a, **k: (_ for _ in ()).throw(
        weights.WeightsNotFoundError(name)) if name != "lpips-alex" else (tmp_path / "alex.pth", "local"))
    assert weights.unavailable(("lpips-vgg", "lpips-alex", "fid-inception")) == ["lpips-vgg", "fid-inception"]
    with pytest.raises(KeyError, match="unknown pretrained network"):
        weights.unavailable(("nope",))


#: metrics of the smoke FA-VAE run at f = 4, seed 0 (bf16 autocast, one thread), computed with the code of
#: dd2ae18 (the code the chapter's 20 stored runs were trained and evaluated with) on the CPU named; bf16
#: kernels differ between CPUs (see tests/test_fq_vae_golden.py), so other CPUs skip
GOLDEN_SMOKE_RUN: dict[str, dict[str, float]] = {
    "Intel(R) Xeon(R) Processor": {
        "psnr": 10.564118385314941, "ssim": 0.0824195146560669, "l1_pm": 0.4935230016708374,
        "lpips_vgg": 0.7659521102905273, "lpips_alex": 0.5844317078590393, "rfid": 459.19804437016586,
        "band_high": 0.007196034770458937, "perplexity": 3.7183966173905736, "final_rec": 1.124664306640625,
        "imagenet_rfid": 460.34315490134753, "imagenet_lpips_vgg": 0.7390620112419128,
        "cifar10_rfid": 387.81291611693337, "cifar10_psnr": 11.358155250549316,
        "cifar10_lpips_alex": 0.22697150707244873,
    },
}


@pytest.mark.data("faces", "imagenet-samples", "cifar10")
@pytest.mark.weights("lpips-alex", "lpips-vgg", "fid-inception")
def test_a_smoke_run_computes_what_it_computed_before_the_gpu_path(tmp_path, monkeypatch) -> None:
    """Evidence for the declaration that the stored ``cpu`` runs stay current: away from ``gpu`` a run evaluates
    every metric on both zero-shot sets as before (the values of dd2ae18's code, to float rounding)."""
    from specvae.experiments.provenance import cpu_name

    golden = GOLDEN_SMOKE_RUN.get(cpu_name())
    if golden is None:
        pytest.skip(f"no golden values for this CPU ({cpu_name()}); bf16 kernels differ between CPUs")
    monkeypatch.setenv("SPECVAE_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("SPECVAE_RESULTS", str(tmp_path / "results"))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        cfg = next(c for c in ch.configs("smoke") if c.variant == "favae" and c.f == 4 and c.seed == 0)
        out = ch.run(cfg)
    finally:
        torch.set_num_threads(threads)
    got = {k: out["metrics"][k] for k in golden}
    assert got == pytest.approx(golden, rel=1e-6)
    assert out["extra"]["missing_metric_weights"] == [] and set(out["extra"]["zero_shot"]) == {"imagenet", "cifar10"}


def test_report_says_which_metrics_gpu_runs_left_out_and_table3_reads_them() -> None:
    from specvae.experiments import fa_vae_report as report

    zs = {"imagenet_rfid": math.nan, "imagenet_psnr": 19.0}
    cpu = {"metrics": {**zs, "imagenet_rfid": 80.0, "cifar10_rfid": 70.0, "cifar10_psnr": 21.0}, "extra": {}}
    gpu = {"metrics": zs, "extra": {"missing_metric_weights": ["lpips-vgg", "fid-inception"]}}
    assert report.missing_metrics_note({("row01", 4): cpu}) == ""
    note = report.missing_metrics_note({("row01", 4): gpu, ("favae", 4): gpu, ("row03", 4): cpu})
    assert note.startswith("2 of these 3 runs") and "rFID and LPIPS-VGG" in note
    t3 = report.table3({("row01", 4): cpu, ("favae", 4): gpu})
    assert t3["CIFAR-10 rFID ↓"].tolist()[0] == 70.0 and math.isnan(t3["CIFAR-10 rFID ↓"].tolist()[1])
    assert t3["ImageNet PSNR ↑"].tolist() == [19.0, 19.0]


def test_readings_give_no_verdict_on_metrics_a_gpu_run_did_not_compute() -> None:
    """rFID NaN (its network did not travel) is no value, not a claim that fails or a trend."""
    import pandas as pd

    from specvae import reference
    from specvae.experiments import fa_vae_report as report

    def rec(psnr: float) -> dict:
        return {"metrics": {"rfid": math.nan, "lpips_vgg": math.nan, "psnr": psnr, "ssim": 0.7, "l1_pm": 0.1,
                            "steps_done": 10, "converged": True, "rfid_n_real": 0, "band_mid": 0.1, "band_high": 0.1},
                "extra": {"missing_metric_weights": ["fid-inception"]}, "history": {}, "config": {}}

    records = {(v, f): rec(20.0 - f / 4) for v in ("row01", "favae") for f in ch.TABLE1_F}
    records.update({(r, 4): rec(19.0) for r in ch.TABLE2_ROWS if r != "row01"})
    reading = report.table1_reading(records, {"psnr": None, "rfid": None})
    assert "PSNR (dB) against f" in reading and "rFID against f" not in reading and "nan" not in reading
    t2 = report.table2(records, reference.load("lin2023", "table2"))
    text = report.claims(records, t2, report.orderings(t2), reference.load("lin2023", "table2"))
    assert "does not hold" not in text and "nan" not in text
    assert text.count("ours — vs —: **no value**") == 3 and "no rFID values to compare: **no value**" in text
    runs = {(v, 4, s): {"metrics": {"rfid": math.nan}} for v in ("row01", "favae") for s in (0, 1)}
    assert report.seed_spread(runs) is None
    assert isinstance(t2, pd.DataFrame)

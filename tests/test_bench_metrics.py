"""The metric benchmark: its 'before' variants are the former code paths, its rows say what was measured."""

from __future__ import annotations

import json

import pytest
import torch

from specvae.bench import metrics as bm
from specvae.experiments.provenance import cpu_name
from specvae.metrics import weights as W


def require(name: str):
    try:
        return W.resolve(name, fetch=False)
    except W.WeightsNotFoundError as exc:
        pytest.fail(f"pretrained network {name} is missing: run `specvae weights fetch` first.\n{exc}")


@pytest.mark.weights
def test_lpips_before_variant_is_the_former_forward():
    """The 'before' LPIPS reproduces the lpips package (given our trunk), i.e. the former code path, to 1e-6."""
    import lpips

    from specvae.metrics import LPIPS, LPIPS_NETS

    require("lpips-alex")
    ours = LPIPS("alex", precision="fp32")
    ours.slices.to(memory_format=torch.contiguous_format)
    ref = lpips.LPIPS(net="alex", pretrained=True, pnet_rand=True, verbose=False)
    state = W.load_trunk_state_dict(require("lpips-alex"), "lpips-alex")
    ends = LPIPS_NETS["alex"]["slices"]
    ref.net.load_state_dict({f"slice{next(i for i, e in enumerate(ends) if int(k.split('.')[0]) < e) + 1}.{k}": v
                             for k, v in state.items()})
    x, y = bm._images(3, 48)
    with torch.no_grad():
        torch.testing.assert_close(bm._lpips_before(ours, x, y), ref.eval()(x, y, normalize=True).flatten(),
                                   atol=1e-6, rtol=0)


@pytest.mark.weights
def test_bench_rows_report_every_variant(tmp_path, monkeypatch):
    monkeypatch.setenv("SPECVAE_RESULTS", str(tmp_path))
    require("lpips-alex")
    rows = bm.bench_metrics(["lpips-alex/metric", "lpips-alex/loss"], batch_size=2, image_size=32, rounds=2,
                            min_seconds=0.0, threads=1, progress=False)
    assert [r["case"] for r in rows] == ["lpips-alex/metric", "lpips-alex/loss"]
    for r in rows:
        assert r["threads"] == 1 and r["batch_size"] == 2 and r["precision"] in ("fp32", "bf16")
        variants = bm.VARIANTS if r["mode"] == "loss" else bm.VARIANTS[:3]
        assert [v for v in bm.VARIANTS if f"{v}_img_s" in r] == list(variants)
        for v in variants:
            assert r[f"{v}_img_s"] > 0 and len(r[f"{v}_rounds"]) == 2 and r[f"{v}_cpu_ms_per_img"] > 0
        assert r["speedup_bf16"] == pytest.approx(r["after-bf16_img_s"] / r["before_img_s"])
    assert rows[1]["speedup_bf16_grad"] == pytest.approx(rows[1]["after-bf16-grad_img_s"] / rows[1]["before_img_s"])
    table = bm.speed_table(rows).splitlines()
    assert len(table) == 2 + 3 + 4 + 2 and table[2].startswith("| LPIPS-ALEX | forward | before |")
    assert "| LPIPS-ALEX | forward + backward | bf16, backward in bf16 too |" in table[8]
    assert "thread(s) on Some CPU 9000;" in bm.speed_table(rows, cpu="Some CPU 9000").splitlines()[-1]
    paths = bm.store_metric_rows(rows, rounds=2, min_seconds=0.0)
    stored = [json.loads(p.read_text()) for p in paths]
    assert [s["config"]["cpu"] for s in stored] == [cpu_name()] * 2  # the CPU kind is part of the key
    with pytest.raises(ValueError, match="known: inception/metric"):
        bm.bench_metrics(["lpips-squeeze/metric"])
    with pytest.raises(ValueError, match="rounds"):
        bm.bench_metrics(["lpips-alex/metric"], rounds=0)


def test_precision_table_shows_every_row():
    rows = [{"pair": "p", "metric": "rfid", "set_a": "a", "set_b": "b", "n": 2000, "fid_fp32": 10.0,
             "fid_bf16": 10.02, "rel_diff": 0.002, "feature_rel_err": 0.02, "bound": 0.005, "within_bound": True},
            {"pair": "p", "metric": "lpips-vgg", "set_a": "a", "set_b": "b", "n_pairs": 256, "lpips_fp32_mean": 0.2,
             "lpips_bf16_mean": 0.2002, "lpips_rel_diff_mean": 0.001, "lpips_rel_diff_per_image_max": 0.01,
             "loss_grad_cosine_min": 0.999, "loss_grad_norm_ratio_min": 0.99, "loss_grad_norm_ratio_max": 1.01,
             "loss_bf16_grad_grad_cosine_min": 0.97, "loss_bf16_grad_grad_norm_ratio_min": 0.98,
             "loss_bf16_grad_grad_norm_ratio_max": 1.02, "bound": 0.005, "grad_cosine_bound": 0.99}]
    table = bm.precision_table(rows).splitlines()
    assert len(table) == 5 and "| 10.000 | 10.020 | 0.200 % | 0.5 % |" in table[2]
    assert "LPIPS-VGG (mean)" in table[3] and "0.100 %" in table[3]
    assert "cosine ≥ 0.9990 | cosine ≥ 0.99 |" in table[4] and "cosine ≥ 0.9700, norm ratio 0.980–1.020" in table[4]

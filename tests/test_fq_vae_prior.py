"""Chapter 4, Fig. 6: the prior over the faces tokenizers' codes — its configs, its batcher, its likelihood against
the cross-entropy and an analytic uniform model, the tokenizer round trip, and a smoke run stored for the report."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from specvae.experiments import fq_vae as ch
from specvae.experiments import fq_vae_prior as prior
from specvae.experiments import fq_vae_report as report
from specvae.models.cat import CAT, CATConfig


def test_each_prior_models_its_own_faces_run_codes():
    cfgs = prior.configs("cpu")
    assert [c.method for c in cfgs] == ["cvqvae", "fqvae"]
    for c in cfgs:
        tok = c.tokenizer
        assert tok == next(t for t in ch.table1_configs("cpu", datasets=("faces",))
                           if t.method == c.method and t.seed == 0)
        assert c.cat.conditioning == "none" and c.cat.vocab_size == tok.codebook_size == 512
        assert c.cat.seq_len == 256  # both quantise U = 256 vectors: (64/4)² and D·N = 2·128
        assert tuple(c.cat.grid) == tuple(ch.build_model(tok).grid_size)
    assert cfgs[0].cat.grid == (16, 16) and cfgs[1].cat.grid == (2, 128)
    assert cfgs[0].n_samples >= 2000  # the issue: FID of >= 2,000 samples
    # grid overrides reach the tokenizers (a grid run with other sizes has other checkpoints)
    other = prior.configs("cpu", grid_overrides={"faces_steps": 10})
    assert all(o.tokenizer.steps == 10 for o in other)


def test_bad_configs_name_what_is_wrong():
    good = prior.configs("smoke")[0]
    with pytest.raises(ValueError, match="Fig. 6 compares"):
        prior.PriorConfig(**{**good.__dict__, "method": "vqvae"})
    with pytest.raises(ValueError, match="unconditional"):
        prior.PriorConfig(**{**good.__dict__, "cat": CATConfig(vocab_size=good.cat.vocab_size, grid=good.cat.grid,
                                                                width=16, depth=1, heads=2, conditioning="cross")})
    with pytest.raises(ValueError, match="needs that method's"):
        prior.PriorConfig(**{**good.__dict__, "tokenizer": prior.tokenizer_config("fqvae", "smoke")})
    with pytest.raises(ValueError, match="unknown methods"):
        prior.configs("smoke", methods=("vqvae",))
    with pytest.raises(ValueError, match="unknown preset"):
        prior.configs("laptop")


def test_code_batcher_resumes_where_it_stopped():
    codes = torch.arange(40 * 6).reshape(40, 2, 3)
    a = prior.code_batches(codes, 7, seed=3)
    for _ in range(4):
        next(a)
    b = prior.code_batches(codes, 7, seed=3)
    b.load_state_dict(a.state_dict())
    for _ in range(9):  # across an epoch boundary
        assert torch.equal(next(a)["codes"], next(b)["codes"])
    first = next(iter(prior.code_batches(codes, 40, seed=0)))["codes"]
    assert sorted(first[:, 0].tolist()) == sorted(codes.flatten(1)[:, 0].tolist())  # an epoch sees every sequence


def test_bits_per_code_is_the_cross_entropy_in_bits():
    torch.manual_seed(0)
    model = CAT(CATConfig(vocab_size=11, grid=(2, 3), width=16, depth=1, heads=2, conditioning="none"))
    codes = torch.randint(0, 11, (9, 2, 3))
    model.eval()
    with torch.no_grad():
        logits = model(codes)
    expected = F.cross_entropy(logits.reshape(-1, 11), codes.flatten()).item() / math.log(2)
    assert prior.bits_per_code(model, codes, batch_size=4) == pytest.approx(expected, rel=1e-5)
    assert model.training is False
    # a model whose logits are all equal is the uniform guess: exactly log2 K bits a code
    with torch.no_grad():
        model.tok.weight.zero_()
        model.bias.zero_()
    assert prior.bits_per_code(model, codes) == pytest.approx(math.log2(11), rel=1e-6)


@pytest.mark.parametrize("method", prior.METHODS)
def test_codes_decode_to_the_models_own_reconstruction(method):
    """encode → decode through the tokenizer interface (chapter 3's helpers, which the prior uses) is the model's
    forward reconstruction (eval mode), as uint8 images."""
    from specvae.experiments.cat import decode_codes, encode_codes

    torch.manual_seed(0)
    tok = ch.build_model(prior.tokenizer_config(method, "smoke")).eval()
    images = torch.randint(0, 256, (5, 3, 64, 64), dtype=torch.uint8)
    codes = encode_codes(tok, images, batch_size=2)
    assert codes.shape == (5, *tok.grid_size) and codes.dtype == torch.int64
    assert int(codes.max()) < tok.codebook_size
    with torch.no_grad():
        recon, idx, _ = tok(images.float() / 255.0)
    assert torch.equal(codes.flatten(1), idx.reshape(5, -1))
    expected = (recon.float().clamp(0, 1) * 255).round().to(torch.uint8)
    assert torch.equal(decode_codes(tok, codes, batch_size=3), expected)


def test_smoke_priors_store_what_the_report_reads(tmp_path, monkeypatch):
    """Both priors at smoke, with their faces tokenizers trained first: the records hold what Fig. 6's table and
    reading use; unmeasured FIDs are NaN and shown as such; a second call only loads."""
    monkeypatch.setenv("SPECVAE_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("SPECVAE_RUNS", str(tmp_path / "runs"))
    with pytest.raises(Exception, match="no stored result"):
        prior.run_all("smoke", train=False, progress=False)
    frame = prior.run_all("smoke", progress=False)
    s = prior.sizes("smoke")
    assert list(frame.method) == ["cvqvae", "fqvae"]
    assert (frame.steps_done == s.steps).all() and frame.fid.isna().all()
    assert ((frame.test_bits_per_code > 0) & (frame.test_bits_per_code < 2 * frame.uniform_bits_per_code)).all()
    assert (frame.codes_used_by_samples <= 32).all() and (frame.codes_used_by_data >= 1).all()
    from specvae.experiments.store import ResultStore

    store = ResultStore(ch.CHAPTER)
    for c in prior.configs("smoke"):
        npz = store.load_npz(c, "samples")
        assert npz["samples"].shape == (s.n_show, 3, 64, 64) and npz["samples"].dtype.name == "uint8"
        assert store.exists(c.tokenizer)  # the faces run was trained and stored on the way
    table = report.prior_table(frame)
    assert list(table["FID samples"]) == ["—", "—"] and list(table["converged"]) == ["not checked"] * 2
    text = report.reading_prior(frame)
    assert "FID is not measured" in text and "bits per code" in text
    again = prior.run_all("smoke", train=False, progress=False)
    assert list(again.test_bits_per_code) == list(frame.test_bits_per_code)


def test_a_lost_tokenizer_checkpoint_is_recreated_by_training_the_stored_run_again(tmp_path, monkeypatch):
    """On a fresh machine the faces runs are stored but their checkpoints (never committed) are gone: the priors'
    run_all trains them again, seeded as run() did, and gets the very same models (weights equal bit for bit, the
    training history identical), and each prior's record says so."""
    import shutil

    from specvae.experiments.store import MissingResultError, ResultStore

    monkeypatch.setenv("SPECVAE_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("SPECVAE_RUNS", str(tmp_path / "runs"))
    toks = [prior.tokenizer_config(m, "smoke") for m in prior.METHODS]
    with pytest.raises(MissingResultError, match="no stored result"):
        ch.retrain_checkpoint(toks[0])
    first = prior.run_all("smoke", progress=False)
    assert all(ch.has_checkpoint(t) for t in toks)
    weights = {t.method: {k: v.clone() for k, v in ch.trained_model(t).state_dict().items()} for t in toks}
    store = ResultStore(ch.CHAPTER)
    shutil.rmtree(tmp_path / "runs")                      # a fresh machine: stored results, no checkpoints
    for c in prior.configs("smoke"):
        store.delete(c)                                   # the priors are to be trained (here: again)
    assert not any(ch.has_checkpoint(t) for t in toks)
    with pytest.raises(FileNotFoundError, match="retrain_checkpoint"):
        ch.trained_model(toks[0])
    again = prior.run_all("smoke", progress=False)
    for t in toks:
        new = ch.trained_model(t).state_dict()
        assert new.keys() == weights[t.method].keys()
        assert all(torch.equal(new[k], weights[t.method][k]) for k in new), t.method
    for c in prior.configs("smoke"):
        note = store.load(c)["extra"]["tokenizer_retrained"]
        assert note["history_max_abs_diff"] == 0.0 and note["history_terms"] >= 3
        assert note["device"].startswith("CPU: ") and note["device"] == store.load(c.tokenizer)["provenance"]["device"]
        assert note["steps"] == note["stored_steps"] == store.load(c.tokenizer)["metrics"]["steps_done"]
    assert list(again.test_bits_per_code) == list(first.test_bits_per_code)  # the priors see the same codes


def test_reading_ranks_the_measured_fids():
    import pandas as pd

    frame = pd.DataFrame([
        {"method": "cvqvae", "fid": 80.0, "fid_recon": 40.0, "fid_real": 5.0, "test_bits_per_code": 6.5,
         "uniform_bits_per_code": 9.0, "codes_used_by_samples": 400, "codes_used_by_data": 450, "converged": True,
         "steps_done": 900},
        {"method": "fqvae", "fid": 60.0, "fid_recon": 50.0, "fid_real": 5.0, "test_bits_per_code": 7.0,
         "uniform_bits_per_code": 9.0, "codes_used_by_samples": 300, "codes_used_by_data": 310, "converged": False,
         "steps_done": 3000}])
    text = report.reading_prior(frame)
    assert "FQ-VAE's prior gives the lower sample FID (60.0 vs CVQ-VAE's 80.0" in text
    assert "(the prior adds +40.0)" in text and "(the prior adds +10.0)" in text
    assert "Not converged by the rule (marked †): FQ-VAE." in text
    table = report.prior_table(frame)
    assert list(table["FID samples"]) == ["80.0", "60.0 †"]


def test_reading_says_which_tokenizers_were_recreated_and_whether_exactly():
    same = {"history_max_abs_diff": 0.0, "history_terms": 8, "steps": 975, "stored_steps": 975,
            "device": "CPU: Intel(R) Xeon(R) Processor (2 logical cores, 1 torch threads)",
            "stored_device": "CPU: Intel(R) Xeon(R) Processor (2 logical cores, 1 torch threads)"}
    other = dict(same, history_max_abs_diff=44.09, steps=1000, stored_steps=975,
                 device="CPU: AMD EPYC (2 logical cores, 1 torch threads)")
    assert report.reading_retrained({"CVQ-VAE prior": None, "FQ-VAE prior": None}) == ""
    text = report.reading_retrained({"CVQ-VAE prior": same, "FQ-VAE prior": other})
    first, second = text.split("FQ-VAE prior: ")
    assert first.startswith("CVQ-VAE prior: ") and "repeated the stored one exactly" in first
    assert "8 logged terms" in first and "re-draw" not in first
    assert "on CPU: AMD EPYC" in second and "on CPU: Intel(R) Xeon(R)" in second
    assert "largest difference of the logged training curves 44.1" in second and "1,000 vs 975 steps" in second
    assert "re-draw of Table 1's faces model" in second


def test_a_retraining_keeps_the_stored_thread_count_only_on_the_same_kind_of_cpu(monkeypatch):
    import os

    monkeypatch.setattr(os, "cpu_count", lambda: 16)
    record = {"provenance": {"device": "CPU: Intel(R) Xeon(R) Processor (2 logical cores, 1 torch threads)"}}
    assert ch._retrain_threads(record, "CPU: Intel(R) Xeon(R) Processor (2 logical cores, 2 torch threads)") == 1
    assert ch._retrain_threads(record, "CPU: AMD EPYC (2 logical cores, 1 torch threads)") == 16
    assert ch._retrain_threads({"provenance": {}}, "CPU: AMD EPYC (2 logical cores, 1 torch threads)") == 16
    assert ch._retrain_threads({"provenance": {"device": "CPU: AMD EPYC (2 logical cores)"}},
                               "CPU: AMD EPYC (16 logical cores, 4 torch threads)") == 16


def test_reading_counts_the_bits_a_face_carries_and_says_when_one_prior_has_little_to_learn():
    import pandas as pd

    row = {"fid_real": 5.0, "uniform_bits_per_code": 9.0, "codes_used_by_samples": 300, "codes_used_by_data": 310,
           "converged": True, "steps_done": 900}
    frame = pd.DataFrame([
        {"method": "cvqvae", "fid": 80.0, "fid_recon": 40.0, "test_bits_per_code": 4.0, "cat.grid": (16, 16), **row},
        {"method": "fqvae", "fid": 50.5, "fid_recon": 50.0, "test_bits_per_code": 0.25, "cat.grid": (2, 128), **row}])
    text = report.reading_prior(frame)
    assert "about 1,024 bits for CVQ-VAE (256 codes) and 64 bits for FQ-VAE (256 codes)" in text
    assert "FQ-VAE's codes carry 16× less than CVQ-VAE's" in text and "(its prior adds +0.5 to" in text
    frame.loc[1, "test_bits_per_code"] = 2.0  # 512 vs 1,024 bits: not a quarter, no such sentence
    assert "× less than" not in report.reading_prior(frame)
    assert "bits for" not in report.reading_prior(frame.drop(columns=["cat.grid"]))


def test_spectra_reading_measures_the_missing_high_frequency_power():
    freqs = np.linspace(0.0, 0.5, 11)
    real = np.full(11, 10.0)
    arrays = {"CVQ-VAE": {"freqs": freqs, "profile_real": real, "profile_samples": real - np.where(freqs > 0.25, 2, 0),
                          "profile_recon": real - np.where(freqs > 0.25, 1, 0)},
              "FQ-VAE": {"freqs": freqs, "profile_real": real, "profile_samples": real - np.where(freqs > 0.25, 6, 0),
                         "profile_recon": real - np.where(freqs > 0.25, 6, 0)}}
    text = report.reading_prior_spectra(arrays)
    assert "2.0 dB less power than the held-out faces for CVQ-VAE (-1.0 dB against its own reconstructions)" in text
    assert "6.0 dB less power than the held-out faces for FQ-VAE (+0.0 dB against" in text
    assert "FQ-VAE's samples are the smoother: quantising frequency components did not keep" in text
    arrays["FQ-VAE"]["profile_samples"] = real + 1
    more = report.reading_prior_spectra(arrays)
    assert "CVQ-VAE's samples are the smoother." in more
    assert ", 1.0 dB more power than the held-out faces for FQ-VAE (+7.0 dB against" in more  # a magnitude, no sign
    assert report.reading_prior_spectra({}) == ""

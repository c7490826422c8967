"""Chapter 3 end to end at ``smoke``: runs stored, metrics, curves, sample grids, and the notebook's code.

FA-VAE's tokenizer (chapter 2) is replaced by a stand-in with the same protocol (``tests/cat_doubles.py``), so this
test checks chapter 3's own path; ``tests/test_chapters.py`` runs the notebook with the real tokenizer.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from cat_doubles import PaletteTokenizer
from specvae.experiments import cat as ch3

ROOT = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.data, pytest.mark.weights]  # MNIST / CIFAR-10 and the FID Inception


def _patch(mp: pytest.MonkeyPatch, folder: Path) -> None:
    if not os.environ.get("SPECVAE_DATA"):
        pytest.fail("SPECVAE_DATA is not set: point it at the data sets (see README)")
    mp.setenv("SPECVAE_RESULTS", str(folder / "results"))
    mp.setenv("SPECVAE_RUNS", str(folder / "runs"))
    mp.setenv("HF_HUB_OFFLINE", "1")
    mp.setattr(ch3, "train_tokenizer", lambda cfg, images, run_dir, progress=False: PaletteTokenizer(cfg.codebook_size))
    mp.setattr(ch3, "_TOKENIZERS", {})


@pytest.fixture()
def chapter_env(tmp_path, monkeypatch):
    _patch(monkeypatch, tmp_path)
    return tmp_path


@pytest.fixture(scope="module")
def smoke_store(tmp_path_factory):
    """The smoke grid trained once for this module (stand-in tokenizer, temporary results and runs)."""
    folder = tmp_path_factory.mktemp("ch3")
    with pytest.MonkeyPatch.context() as mp:
        _patch(mp, folder)
        toks, runs = ch3.run_all("smoke", progress=False)
        yield toks, runs


def test_configs_grid_and_matching():
    cfgs = ch3.configs("cpu")
    assert {(c.dataset, c.model) for c in cfgs} == {(d, m) for d in ch3.DATASETS for m in ch3.MODELS}
    shapes = [c for c in cfgs if c.dataset == "shapes"]
    assert sorted({c.seed for c in shapes}) == [0, 1] and len(cfgs) == 8
    for c in cfgs:
        assert c.cat.vocab_size == c.tokenizer.codebook_size and c.cat.grid == (8, 8)
        assert c.cat.conditioning == ch3.MODELS[c.model]
        assert c.top_k == c.tokenizer.codebook_size // 2 and c.top_p == 0.95 and c.default_guidance == 3.0
        assert c.n_test >= 2000
    # same sizes for CAT and baseline (only the conditioning differs)
    a, b = (c.cat for c in shapes if c.seed == 0)
    assert dict(a.__dict__, conditioning=None) == dict(b.__dict__, conditioning=None)
    with pytest.raises(ValueError, match=r"unknown datasets \['faces'\]"):
        ch3.configs("cpu", datasets=("faces",))
    with pytest.raises(ValueError, match="does not match its tokenizer"):
        import dataclasses

        dataclasses.replace(cfgs[0], cat=dataclasses.replace(cfgs[0].cat, vocab_size=7))
    with pytest.raises(ValueError, match="guidance"):
        import dataclasses

        dataclasses.replace(cfgs[0], guidance=(-1.0,))


def test_tokenizer_disc_start_keeps_the_old_hashes_and_a_raised_cap_extends_a_run_exactly(tmp_path):
    """The cpu tokenizers' discriminator start became explicit (step 1,000) when their cap went from 2,000 to 6,000
    steps: configs without it keep their hashes and their start (half the run); a tokenizer is trained again
    exactly from its config (seeded before its weights are drawn), also when a run stopped at one cap is resumed
    under a higher one."""
    import dataclasses

    from specvae.experiments.hashing import config_hash

    new = ch3.tokenizer_configs("cpu")
    old = {t.dataset: config_hash(dataclasses.replace(t, steps=2000, disc_start=None)) for t in new}
    assert old == {"shapes": "4e97a88f5c6bff6d", "mnist": "e06863a26f28c0ad", "cifar10": "e1217680bf437e71"}
    assert all(t.steps == 6000 and t.disc_start == t.gan_from == 1000 for t in new)
    assert dataclasses.replace(new[0], steps=2000, disc_start=None).gan_from == 1000  # the old start, the same
    with pytest.raises(ValueError, match="disc_start"):
        dataclasses.replace(new[0], disc_start=6000)
    pytest.importorskip("specvae.models.vqgan")
    images = ch3.load_pairs("shapes", "train", 16).images
    short, long = (dataclasses.replace(ch3.tokenizer_configs("smoke", datasets=("shapes",))[0], steps=n,
                                       disc_start=13) for n in (26, 40))
    ch3.train_tokenizer(short, images, run_dir=tmp_path / "a")
    (tmp_path / "a" / "tokenizer.safetensors").unlink()  # keep the checkpoint only, as carried over
    resumed = ch3.train_tokenizer(long, images, run_dir=tmp_path / "a")
    straight = ch3.train_tokenizer(long, images, run_dir=tmp_path / "b")
    torch.manual_seed(12345)  # the global RNG's state before a call does not matter: the config seeds everything
    again = ch3.train_tokenizer(long, images, run_dir=tmp_path / "c")
    for other in (straight, again):
        a, b = resumed.state_dict(), other.state_dict()
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    record, _ = ch3.tokenizer_training_record(tmp_path / "a")
    assert record["steps_done"] == 40


def test_tokenizer_is_chapter_2s_vqgan_or_a_clear_error(tmp_path):
    cfg = ch3.tokenizer_configs("smoke", datasets=("shapes",))[0]
    images = ch3.load_pairs("shapes", "train", 16).images
    try:
        import specvae.models.vqgan  # noqa: F401
    except ImportError:
        with pytest.raises(ch3.TokenizerUnavailable, match="specvae.models.vqgan"):
            ch3.train_tokenizer(cfg, images, run_dir=tmp_path)
        return
    from specvae.models.cat import tokenizer_grid

    tok = ch3.train_tokenizer(cfg, images, run_dir=tmp_path)
    assert tok.codebook_size == cfg.codebook_size and tokenizer_grid(tok) == cfg.grid == (8, 8)
    codes = tok.encode_indices(images[:4].float() / 255)
    assert codes.shape == (4, 8, 8) and int(codes.max()) < cfg.codebook_size
    again = ch3.train_tokenizer(cfg, images, run_dir=tmp_path)  # loaded from tokenizer.safetensors
    a, b = tok.state_dict(), again.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k].float(), b[k].float()) for k in a)
    # codes agree (an untrained codebook has near-ties, so memory layout alone may flip a few argmins)
    assert float((again.encode_indices(images[:4].float() / 255) == codes).float().mean()) > 0.9
    # the training record comes from fit's last checkpoint: steps, the rule's figure, no rule at smoke
    record, history = ch3.tokenizer_training_record(tmp_path)
    assert record["steps_done"] == cfg.steps and record["converged"] is None and record["train_wall_s"] > 0
    assert history["step"][-1] == cfg.steps and len(history["rec"]) == len(history["step"])
    from specvae.train import relative_change

    assert record["loss_rel_change_last20"] == pytest.approx(relative_change(history["step"], history["rec"]),
                                                             nan_ok=True)
    assert ch3.tokenizer_training_record(tmp_path / "nothing") == ({"converged": None}, None)


def test_a_stored_tokenizer_copy_is_used_instead_of_training(chapter_env, monkeypatch):
    pytest.importorskip("specvae.models.vqgan")
    from specvae.models.vqgan import VQGAN, VQGANConfig

    cfg = ch3.tokenizer_configs("smoke", datasets=("shapes",))[0]
    torch.manual_seed(0)
    vq = VQGAN(VQGANConfig(resolution=32, ch=8, ch_mult=(1, 2, 4), num_res_blocks=1, attn_resolutions=(),
                           z_channels=8, codebook_size=cfg.codebook_size, norm_groups=8, fcm="conv"))
    ch3.tokenizer_file(cfg).parent.mkdir(parents=True, exist_ok=True)
    vq.save_tokenizer(ch3.tokenizer_file(cfg))

    def no_training(*a, **k):
        raise AssertionError("trained although a stored copy exists")

    monkeypatch.setattr(ch3, "train_tokenizer", no_training)
    tok = ch3.get_tokenizer(cfg)
    x = ch3.load_pairs("shapes", "test", 4).images.float() / 255
    assert torch.equal(tok.encode_indices(x), vq.eval().encode_indices(x))


def test_a_tokenizer_with_another_codebook_is_refused(chapter_env, monkeypatch):
    monkeypatch.setattr(ch3, "train_tokenizer", lambda cfg, images, run_dir, progress=False: PaletteTokenizer(27))
    cfg = ch3.tokenizer_configs("smoke", datasets=("shapes",))[0]
    with pytest.raises(ValueError, match="27 codes"):
        ch3.get_tokenizer(cfg)


def test_batcher_resumes_exactly():
    from specvae.models.text import TextEmbeddings

    codes = torch.arange(40 * 4).view(40, 2, 2)
    table = TextEmbeddings(torch.randn(5, 3, 8).half(), torch.ones(5, 3, dtype=torch.bool), torch.randn(5, 8))
    idx = torch.arange(40) % 5
    a = ch3.CodeTextBatcher(codes, idx, table, 8, seed=3)
    for _ in range(7):
        next(a)
    b = ch3.CodeTextBatcher(codes, idx, table, 8, seed=3)
    b.load_state_dict(a.state_dict())
    x, y = next(a), next(b)
    assert torch.equal(x["codes"], y["codes"]) and torch.equal(x["tokens"], y["tokens"])
    # each pair keeps its own caption
    row = x["codes"][:, 0] // 4
    assert torch.equal(x["pooled"], table.pooled[row % 5])


def test_chapter_at_smoke(smoke_store):
    toks, runs = smoke_store
    assert len(toks) == 3 and len(runs) == 6
    store = ch3._store()
    for cfg in ch3.configs("smoke"):
        rec = store.load(cfg)
        m = rec["metrics"]
        assert rec["provenance"]["preset"] == "smoke"
        assert m["steps_done"] == cfg.train.steps and "loss_rel_change_last20" in m and "converged" in m
        assert math.isfinite(m["fid@3"]) and m["fid"] == m["fid@3"]
        for s in cfg.guidance:
            key = "acc_all" if cfg.dataset == "shapes" else "class_acc"
            assert 0.0 <= m[f"{key}@{s:g}"] <= 1.0
        if cfg.dataset == "shapes":
            assert {"acc_colour", "acc_kind", "acc_size", "acc_position", "binding", "acc_all_held_out"} <= set(m)
        else:
            assert 0.0 <= m["classifier_test_acc"] <= 1.0
        assert list(rec["arrays"]["guidance"]) == list(cfg.guidance)
        grid = store.load_npz(cfg, "grid")
        assert grid["images"].shape == (len(ch3.GRID_CAPTIONS[cfg.dataset]) * cfg.grid_samples, 3, 32, 32)
        assert grid["images"].dtype == np.uint8
    tok = store.load(ch3.tokenizer_configs("smoke", datasets=("shapes",))[0])["metrics"]
    assert tok["parser_real_acc_all"] == 1.0  # the parser is exact on real renders
    # a second call trains nothing and returns the same table
    again = ch3.run_all("smoke", train=False, progress=False)[1]
    assert list(again["fid"]) == list(runs["fid"])


def test_notebook_code_runs_at_smoke(smoke_store):
    import jupytext
    import matplotlib

    matplotlib.use("Agg")
    nb = jupytext.read(ROOT / "notebooks" / "03_cat.py")
    ns: dict = {}
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        src = cell.source
        if "parameters" in cell.metadata.get("tags", []):
            src += "\npreset = 'smoke'\n"
        exec(compile(src, "03_cat.py", "exec"), ns)  # noqa: S102 - our own notebook
    assert len(ns["frame"]) == 6 and "CAT" in ns["shapes_tab"].index
    text = ns["rep"].reading(ns["frame"], ns["curves"])
    assert "CAT" in text and "baseline" in text


def test_tokenizer_table_states_convergence():
    import pandas as pd

    from specvae.experiments import cat_report

    frame = pd.DataFrame([
        {"dataset": "shapes", "psnr": 23.7, "codebook_used": 201, "codebook_size": 512, "codebook_perplexity": 90.5,
         "parser_real_acc_all": 1.0, "parser_recon_acc_all": 0.39, "steps_done": 1400, "converged": True},
        {"dataset": "mnist", "psnr": 22.3, "codebook_used": 249, "codebook_size": 512, "codebook_perplexity": 182.2,
         "steps_done": 2000, "converged": False},
        {"dataset": "cifar10", "psnr": 20.0, "codebook_used": 300, "codebook_size": 512, "codebook_perplexity": 200.0,
         "steps_done": float("nan"), "converged": None}])
    t = cat_report.tokenizer_table(frame)
    assert list(t["converged"]) == ["yes", "NOT CONVERGED", "not recorded"]
    assert list(t["steps"]) == ["1,400", "2,000", "—"]
    assert t.loc["shapes", "parser, reconstructions"] == "0.390" and t.loc["shapes", "codes used"] == "201 of 512"


def test_reading_calls_a_difference_clear_only_outside_the_seed_spread():
    import pandas as pd

    from specvae.experiments import cat_report

    def frame(cat, base):
        rows = [{"dataset": "shapes", "model": "cat", "seed": i, "acc_all": v} for i, v in enumerate(cat)]
        rows += [{"dataset": "shapes", "model": "baseline", "seed": i, "acc_all": v} for i, v in enumerate(base)]
        return pd.DataFrame(rows)

    apart = cat_report.compare_models(frame([0.5, 0.6], [0.3, 0.4]), "acc_all")
    assert apart == {"cat": 0.55, "baseline": 0.35, "better": "cat", "separated": True}
    overlap = cat_report.compare_models(frame([0.5, 0.2], [0.3, 0.35]), "acc_all")
    assert overlap["better"] == "cat" and overlap["separated"] is False
    assert cat_report.compare_models(frame([0.5], [0.3]), "acc_all")["separated"] is None
    fid = cat_report.compare_models(frame([10.0, 11.0], [20.0, 21.0]), "acc_all", lower_better=True)
    assert fid["better"] == "cat" and fid["separated"] is True
    text = cat_report.reading(frame([0.5, 0.2], [0.3, 0.35]), None)
    assert "CAT better, within the seed spread" in text
    tok = pd.DataFrame([{"dataset": "shapes", "parser_real_acc_all": 1.0, "parser_recon_acc_all": 0.39,
                         "parser_recon_acc_colour": 0.96, "parser_recon_acc_kind": 0.55, "parser_recon_acc_size": 0.94,
                         "parser_recon_acc_position": 0.99, "parser_recon_binding": 0.27}])
    ceiling = cat_report.tokenizer_ceiling(tok)
    assert "on 0.39 of their reconstructions" in ceiling and "kind is where the tokenizer loses most" in ceiling
    assert cat_report.tokenizer_ceiling(None) == ""
    real = pd.DataFrame([{"dataset": d, "model": m, "seed": 0, "class_acc": a, "classifier_test_acc": 0.98}
                         for d, m, a in (("mnist", "cat", 0.99), ("mnist", "baseline", 0.9),
                                         ("cifar10", "cat", 0.44), ("cifar10", "baseline", 0.32))])
    text = cat_report.reading(real, None)
    assert "- **MNIST** (class-name captions): class accuracy of samples CAT 0.99 vs baseline 0.9" in text
    assert text.index("**MNIST**") < text.index("**CIFAR-10 (subset)**") and "**mnist**" not in text


def test_run_note_counts_the_tokenizers_training_time():
    import pandas as pd

    from specvae.experiments import cat_report

    tok = pd.DataFrame({"wall_time_s": [60.0, 60.0], "train_wall_s": [1200.0, float("nan")]})
    assert cat_report._tokenizer_minutes(tok) == 22.0  # 20 min training of one + 2 × 1 min measuring
    assert cat_report._tokenizer_minutes(tok.drop(columns="train_wall_s")) == 2.0


def test_run_note_counts_converged_transformers_and_tokenizers():
    import pandas as pd

    from specvae.experiments import cat as ch3
    from specvae.experiments import cat_report

    sizes = ch3.sizes("cpu")
    tok = pd.DataFrame({"wall_time_s": [60.0] * 3, "converged": [False, True, None]})
    runs = pd.DataFrame({"wall_time_s": [60.0] * 4, "converged": [True, False, float("nan"), 1.0],
                         "n_params": [10, 12, 10, 12], "device": ["cpu"] * 4})
    note = cat_report.run_note(tok, runs, sizes, "cpu")
    assert "2 of 4 transformer runs and 1 of 3 tokenizers converged" in note
    assert "changed by less than 1%, either way" in note


def test_tokenizer_config_rejects_a_downsample_that_does_not_divide_the_image_and_every_preset_passes():
    """Evidence for code_equivalence.json #7: the check that ``downsample`` divides ``image_size`` (misplaced after
    a ``return`` in a6f2542, so it never ran) is back in ``__post_init__``; every preset's tokenizer configs pass it,
    so the stored runs, made while it did not run, are what the restored check computes."""
    import dataclasses

    good = ch3.tokenizer_configs("cpu")[0]
    with pytest.raises(ValueError, match="does not divide image_size"):
        dataclasses.replace(good, downsample=3)
    for preset in ("smoke", "cpu", "gpu", "paper"):
        for cfg in ch3.tokenizer_configs(preset):
            assert cfg.image_size % cfg.downsample == 0, (preset, cfg)

"""Chapter 1 pilot (not stored in the book): do capped runs meet the 1 % rule when the learning rate drops 10x
at 60 % of the cap? Same code as simpler_is_better.run, TrainConfig with lr_decay=0.1, lr_decay_every=0.6*cap,
for three seed-0 configurations that hit their cap; prints and writes (to $PILOT_DIR/result.json) the rule's
figure and the test metrics beside the stored run's. Run from the repository root with the chapter's environment
(SPECVAE_DATA, SPECVAE_RESULTS holding the stored chapter-1 runs): python scripts/pilot_ch1_lr_decay.py

Measured 2026-11-30 (issue 8's note): the decay did not make the runs meet the rule and lowered their test PSNR."""
import json, os, time
from pathlib import Path
import torch
from specvae.experiments import simpler_is_better as ch1
from specvae.experiments.store import ResultStore
from specvae.train import TrainConfig, fit

torch.set_num_threads(1)
PICK = [("mnist", "transposed", "fft"), ("mnist", "transposed", "watson"), ("shapes", "nearest_conv5", "fft")]
store = ResultStore(ch1.CHAPTER)
cfgs = ch1.all_configs("cpu", alpha_sweep=False, controls=False)
out = {}
root = Path(os.environ.get("PILOT_DIR", "runs/pilot_ch1"))
root.mkdir(parents=True, exist_ok=True)
for ds, up, obj in PICK:
    cfg = next(c for c in cfgs if c.dataset == ds and c.upsample == up and c.objective == obj and c.seed == 0
               and c.alpha == 0.5)
    base = store.load(cfg)
    train = ch1._load(cfg, "train"); test = ch1._load(cfg, "test")
    torch.manual_seed(cfg.seed)
    model = ch1.build_model(cfg); loss = ch1.build_loss(cfg)
    tc = TrainConfig(steps=cfg.steps, batch_size=cfg.batch_size, lr=cfg.lr, seed=cfg.seed, log_every=cfg.log_every,
                     checkpoint_every=cfg.checkpoint_every, device="auto", precision=cfg.precision,
                     converge_tol=cfg.converge_tol, converge_min_steps=cfg.converge_min_steps,
                     lr_decay=0.1, lr_decay_every=int(0.6 * cfg.steps))
    t0 = time.perf_counter()
    res = fit(model, ch1._make_objective(loss), train.images, tc, run_dir=root / f"{ds}-{up}-{obj}",
              progress=False)
    ev = ch1.evaluate(res.model, test.images)
    keys = [k for k in ev["metrics"] if k.startswith(("rmse_", "psnr", "mse"))]
    out[f"{ds}/{up}/{obj}"] = {
        "decay": {"steps": int(res.steps), "converged": bool(res.converged), "rel_change": float(res.rel_change),
                  "wall": time.perf_counter() - t0, **{k: ev["metrics"][k] for k in keys}},
        "stored": {"steps": base["metrics"]["steps_done"], "converged": base["metrics"]["converged"],
                   "rel_change": base["metrics"]["loss_rel_change_last20"],
                   **{k: base["metrics"].get(k) for k in keys}}}
    json.dump(out, open(root / "result.json", "w"), indent=1)
    print(ds, up, obj, json.dumps(out[f"{ds}/{up}/{obj}"]), flush=True)

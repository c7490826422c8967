"""Tests of specvae.train.fit: exact resume, seeding, clipping, EMA, logging, errors."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import nn

from specvae.train import (
    CHECKPOINT_NAME,
    EMA,
    CheckpointMismatchError,
    FitResult,
    NonFiniteLossError,
    TrainConfig,
    fit,
    load_checkpoint,
)


# ----------------------------------------------------------------------------------------------------------
# fixtures: a tiny stochastic autoencoder and a batcher with the TensorBatcher protocol
# ----------------------------------------------------------------------------------------------------------
class TinyAE(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.enc = nn.Conv2d(1, 4, 3, padding=1)
        self.dec = nn.Conv2d(4, 1, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.enc(x))
        h = h + 0.1 * torch.randn_like(h)  # stochastic like a VAE's reparameterisation: tests the RNG restore
        return torch.sigmoid(self.dec(h))


def ae_objective(model: nn.Module, batch: torch.Tensor, step: int):
    recon = model(batch)
    mse = (recon - batch).pow(2).mean()
    l1 = (recon - batch).abs().mean()
    return mse + 0.1 * l1, {"mse": mse, "l1": l1}


class ProtoBatcher:
    """Shuffling batcher with the TensorBatcher protocol (next(), state_dict, load_state_dict)."""

    def __init__(self, images: torch.Tensor, batch_size: int, seed: int = 0) -> None:
        self.images, self.batch_size = images, batch_size
        self.gen = torch.Generator().manual_seed(seed)
        self.perm: torch.Tensor | None = None
        self.pos = 0

    def __iter__(self):
        return self

    def __next__(self) -> torch.Tensor:
        n = self.images.shape[0]
        if self.perm is None or self.pos + self.batch_size > n:
            self.perm, self.pos = torch.randperm(n, generator=self.gen), 0
        idx = self.perm[self.pos:self.pos + self.batch_size]
        self.pos += self.batch_size
        return self.images[idx].float() / 255.0

    def state_dict(self) -> dict:
        return {"gen": self.gen.get_state(), "perm": self.perm, "pos": self.pos}

    def load_state_dict(self, state: dict) -> None:
        self.gen.set_state(state["gen"])
        self.perm, self.pos = state["perm"], state["pos"]


def images(n: int = 24, size: int = 8, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 1, size, size), generator=g, dtype=torch.uint8)


def make_model(seed: int = 0) -> TinyAE:
    torch.manual_seed(seed)
    return TinyAE()


CFG = TrainConfig(steps=12, batch_size=4, lr=1e-2, log_every=2, seed=3, device="cpu", ema_decay=0.9, grad_clip=5.0)


def assert_same_state(a: nn.Module, b: nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key


def assert_same_history(h1: dict, h2: dict) -> None:
    assert h1.keys() == h2.keys()
    for key in h1:
        assert len(h1[key]) == len(h2[key]), key
        for x, y in zip(h1[key], h2[key]):
            assert (math.isnan(x) and math.isnan(y)) or x == y, (key, h1[key], h2[key])


# ----------------------------------------------------------------------------------------------------------
# resume = uninterrupted
# ----------------------------------------------------------------------------------------------------------
def test_resume_after_stop_equals_uninterrupted(tmp_path: Path) -> None:
    data = images()
    full = fit(make_model(), ae_objective, ProtoBatcher(data, 4, seed=7), CFG, progress=False)
    assert full.history["step"] == [2, 4, 6, 8, 10, 12]
    assert full.resumed_from is None

    run_dir = tmp_path / "run"
    k = 5  # not a multiple of log_every: the half-filled logging interval must be carried over too
    first = fit(make_model(), ae_objective, ProtoBatcher(data, 4, seed=7),
                TrainConfig(**{**CFG.__dict__, "steps": k, "checkpoint_every": k}), run_dir=run_dir, progress=False)
    assert first.steps == k and (run_dir / CHECKPOINT_NAME).is_file()
    # a different initialisation and a fresh batcher: everything must come from the checkpoint
    second = fit(make_model(seed=99), ae_objective, ProtoBatcher(data, 4, seed=7), CFG, run_dir=run_dir,
                 progress=False)
    assert second.resumed_from == k
    assert_same_history(full.history, second.history)
    assert_same_state(full.model, second.model)
    assert_same_state(full.ema_model, second.ema_model)
    # the training actually changed the weights (otherwise the equality above would prove nothing)
    assert not torch.equal(make_model().enc.weight, full.model.enc.weight)


def test_resume_after_kill_equals_uninterrupted(tmp_path: Path) -> None:
    data = images()
    full = fit(make_model(), ae_objective, ProtoBatcher(data, 4, seed=7), CFG, progress=False)

    def kill_at_7(step: int, model: nn.Module, terms: dict) -> None:
        if step == 7:
            raise KeyboardInterrupt  # simulated kill, after the checkpoint at step 6

    cfg = TrainConfig(**{**CFG.__dict__, "checkpoint_every": 3})
    run_dir = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        fit(make_model(), ae_objective, ProtoBatcher(data, 4, seed=7), cfg, run_dir=run_dir, progress=False,
            callbacks=[kill_at_7])
    assert load_checkpoint(run_dir)["step"] == 6
    (run_dir / f".{CHECKPOINT_NAME}.x1y2.tmp").write_bytes(b"half a checkpoint")  # as if SIGKILLed mid-write
    resumed = fit(make_model(seed=5), ae_objective, ProtoBatcher(data, 4, seed=7), cfg, run_dir=run_dir,
                  progress=False)
    assert resumed.resumed_from == 6
    assert_same_history(full.history, resumed.history)
    assert_same_state(full.model, resumed.model)
    assert_same_state(full.ema_model, resumed.ema_model)
    # nothing half-written is left in the run folder
    assert sorted(p.name for p in run_dir.iterdir()) == [CHECKPOINT_NAME]
    # a finished run resumed again does no more steps and returns the same weights
    again = fit(make_model(seed=6), ae_objective, ProtoBatcher(data, 4, seed=7), cfg, run_dir=run_dir,
                progress=False)
    assert again.resumed_from == 12
    assert_same_state(full.model, again.model)


def test_resume_refuses_other_config(tmp_path: Path) -> None:
    data = images()
    cfg = TrainConfig(steps=2, batch_size=4, device="cpu", log_every=1)
    fit(make_model(), ae_objective, ProtoBatcher(data, 4), cfg, run_dir=tmp_path, progress=False)
    other = TrainConfig(steps=4, batch_size=4, device="cpu", log_every=1, lr=3e-4)
    with pytest.raises(CheckpointMismatchError, match=r"lr: 0\.0001 → 0\.0003"):
        fit(make_model(), ae_objective, ProtoBatcher(data, 4), other, run_dir=tmp_path, progress=False)
    shorter = TrainConfig(steps=1, batch_size=4, device="cpu", log_every=1)
    with pytest.raises(CheckpointMismatchError, match="past TrainConfig.steps=1"):
        fit(make_model(), ae_objective, ProtoBatcher(data, 4), shorter, run_dir=tmp_path, progress=False)
    # resume=False starts over and overwrites
    res = fit(make_model(), ae_objective, ProtoBatcher(data, 4), other, run_dir=tmp_path, resume=False,
              progress=False)
    assert res.resumed_from is None and load_checkpoint(tmp_path)["step"] == 4


# ----------------------------------------------------------------------------------------------------------
# seeds, logging, callbacks
# ----------------------------------------------------------------------------------------------------------
def test_same_seed_same_run_other_seed_other_run() -> None:
    data = images()
    runs = [fit(make_model(), ae_objective, ProtoBatcher(data, 4, seed=7), TrainConfig(**{**CFG.__dict__, "seed": s}),
                progress=False) for s in (3, 3, 4)]
    assert_same_history(runs[0].history, runs[1].history)
    assert_same_state(runs[0].model, runs[1].model)
    assert runs[0].history["loss"] != runs[2].history["loss"]  # the seed drives the model's sampling noise


def test_history_holds_interval_means_and_callbacks_see_every_step() -> None:
    seen: list[int] = []

    def objective(model: nn.Module, batch: torch.Tensor, step: int):
        loss = (model(batch) - batch).pow(2).mean()
        terms = {"step_value": float(step), "double": torch.tensor(2.0 * step)}
        if step >= 6:
            terms["late"] = torch.tensor(1.0)  # a term that appears later (e.g. a delayed loss)
        return loss, terms

    cfg = TrainConfig(steps=10, batch_size=4, log_every=4, device="cpu")
    res = fit(make_model(), objective, ProtoBatcher(images(), 4), cfg, progress=False,
              callbacks=[lambda step, model, terms: seen.append(step)])
    assert seen == list(range(1, 11))
    h = res.history
    assert h["step"] == [4, 8, 10]
    assert h["step_value"] == [1.5, 5.5, 8.5]  # means of (0..3), (4..7), (8, 9)
    assert h["double"] == [3.0, 11.0, 17.0]
    assert math.isnan(h["late"][0]) and h["late"][1:] == [1.0, 1.0]
    assert len(h["loss"]) == 3 and all(v > 0 for v in h["loss"])
    assert isinstance(res, FitResult) and res.steps == 10 and res.images_per_s > 0 and res.wall_time_s > 0
    assert not res.model.training  # returned in eval mode


def test_objective_sees_step_count_and_lr_schedule_is_applied() -> None:
    # loss = w with SGD: each update moves w by exactly −lr_t, so the schedule can be read off the weights.
    steps_seen: list[int] = []
    weights: list[float] = []

    def objective(m: nn.Module, batch: torch.Tensor, step: int):
        steps_seen.append(step)
        return m(batch).sum(), {}

    cfg = TrainConfig(steps=6, batch_size=4, lr=0.1, warmup_steps=2, lr_decay=0.5, lr_decay_every=3,
                      optimizer="sgd", device="cpu", log_every=6)
    model = Linear1([0.0])
    fit(model, objective, ProtoBatcher(images(), 4), cfg, progress=False,
        callbacks=[lambda step, m, terms: weights.append(m.w.item())])
    assert steps_seen == [0, 1, 2, 3, 4, 5]
    moves = [-(b - a) for a, b in zip([0.0] + weights[:-1], weights)]
    assert moves == pytest.approx([0.05, 0.1, 0.1, 0.05, 0.05, 0.05], rel=1e-5)
    assert [cfg.lr_at(s) for s in range(6)] == pytest.approx(moves, rel=1e-5)


# ----------------------------------------------------------------------------------------------------------
# clipping and EMA against analytic values
# ----------------------------------------------------------------------------------------------------------
class Linear1(nn.Module):
    def __init__(self, value: list[float]) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.tensor(value))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w


def test_grad_clip_scales_the_update_to_the_clip_norm() -> None:
    c = torch.tensor([3.0, 4.0])  # gradient of (w·c) is c, norm 5

    def objective(model: nn.Module, batch: torch.Tensor, step: int):
        return (model(batch) * c).sum(), {}

    for clip, expected_norm in ((None, 5.0), (1.0, 1.0), (10.0, 5.0)):
        model = Linear1([0.0, 0.0])
        cfg = TrainConfig(steps=1, batch_size=4, lr=1.0, optimizer="sgd", grad_clip=clip, device="cpu", log_every=1)
        res = fit(model, objective, ProtoBatcher(images(), 4), cfg, progress=False)
        step = -model.w.detach()
        assert step.norm().item() == pytest.approx(expected_norm, rel=1e-6)
        assert torch.allclose(step / step.norm(), c / 5.0)  # direction unchanged by clipping
        if clip is not None:
            assert res.history["grad_norm"] == [pytest.approx(5.0)]  # the norm before clipping is logged


def test_ema_update_rule_on_a_known_sequence() -> None:
    model = Linear1([1.0])
    ema = EMA(model, decay=0.9)
    expected = None
    for value in (1.0, 2.0, 4.0, -1.0):
        with torch.no_grad():
            model.w.fill_(value)
        ema.update(model)
        expected = value if expected is None else 0.9 * expected + 0.1 * value
        assert ema.module.w.item() == pytest.approx(expected, rel=1e-6)
    assert ema.num_updates == 4 and not ema.module.w.requires_grad


def test_ema_inside_fit_matches_closed_form() -> None:
    # loss = w  →  SGD with lr 0.1 moves w by −0.1 per step: w_t = −0.1 t.
    def objective(model: nn.Module, batch: torch.Tensor, step: int):
        return model(batch).sum(), {}

    d, n = 0.8, 5
    cfg = TrainConfig(steps=n, batch_size=4, lr=0.1, optimizer="sgd", ema_decay=d, device="cpu", log_every=1)
    res = fit(Linear1([0.0]), objective, ProtoBatcher(images(), 4), cfg, progress=False)
    ema = None
    for t in range(1, n + 1):
        w = -0.1 * t
        ema = w if ema is None else d * ema + (1 - d) * w
    assert res.model.w.item() == pytest.approx(-0.1 * n, rel=1e-6)
    assert res.ema_model.w.item() == pytest.approx(ema, rel=1e-5)


def _hand_optimizer(kind: str, w0: list[float], steps: int, lr: float, betas=(0.9, 0.999), weight_decay=0.0,
                    momentum=0.0, eps=1e-8) -> list[float]:
    """Kingma & Ba's Adam (L2 weight decay added to the gradient), Loshchilov & Hutter's AdamW (decoupled decay)
    and SGD with momentum (torch's form v = mu v + g), written out for loss = sum(w^2)/2, whose gradient is w."""
    w = [float(v) for v in w0]
    m = [0.0] * len(w)
    v = [0.0] * len(w)
    b1, b2 = betas
    for t in range(1, steps + 1):
        for i in range(len(w)):
            g = w[i] + (weight_decay * w[i] if kind in ("adam", "sgd") else 0.0)
            if kind == "sgd":
                m[i] = g if t == 1 else momentum * m[i] + g
                w[i] -= lr * m[i]
                continue
            if kind == "adamw":
                w[i] -= lr * weight_decay * w[i]
            m[i] = b1 * m[i] + (1 - b1) * g
            v[i] = b2 * v[i] + (1 - b2) * g * g
            w[i] -= lr * (m[i] / (1 - b1**t)) / (math.sqrt(v[i] / (1 - b2**t)) + eps)
    return w


@pytest.mark.parametrize("kind,kwargs", [
    ("adam", {}),
    ("adam", {"betas": (0.5, 0.9)}),
    ("adam", {"betas": (0.8, 0.95), "weight_decay": 0.3}),
    ("adamw", {"betas": (0.7, 0.99), "weight_decay": 0.3}),
    ("sgd", {"momentum": 0.9, "weight_decay": 0.1}),
])
def test_optimizer_settings_reach_the_update(kind: str, kwargs: dict) -> None:
    """TrainConfig's optimizer, betas, weight decay and momentum give exactly the textbook update rules."""
    def objective(model: nn.Module, batch: torch.Tensor, step: int):
        return 0.5 * model(batch).double().square().sum(), {}

    w0, n, lr = [1.0, -2.0, 0.5], 7, 0.05
    cfg = TrainConfig(steps=n, batch_size=4, lr=lr, optimizer=kind, device="cpu", log_every=n, **kwargs)
    model = Linear1(w0).double()
    fit(model, objective, ProtoBatcher(images(), 4), cfg, progress=False)
    expected = _hand_optimizer(kind, w0, n, lr, **kwargs)
    assert model.w.detach().tolist() == pytest.approx(expected, rel=1e-9, abs=1e-12)
    # and the settings matter: the defaults would have ended elsewhere
    if kwargs:
        assert model.w.detach().tolist() != pytest.approx(_hand_optimizer(kind, w0, n, lr), rel=1e-6)


# ----------------------------------------------------------------------------------------------------------
# errors
# ----------------------------------------------------------------------------------------------------------
def test_non_finite_loss_stops_naming_step_and_terms() -> None:
    def objective(model: nn.Module, batch: torch.Tensor, step: int):
        loss = (model(batch) - batch).pow(2).mean()
        bad = torch.log(torch.tensor(0.0)) if step == 3 else torch.tensor(0.0)
        return loss + bad, {"logterm": bad}

    cfg = TrainConfig(steps=10, batch_size=4, device="cpu")
    with pytest.raises(NonFiniteLossError, match=r"at step 3 \(loss=-inf, logterm=-inf\)"):
        fit(make_model(), objective, ProtoBatcher(images(), 4), cfg, progress=False)


def test_bad_inputs_give_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown optimizer; choose one of adam, adamw, sgd"):
        TrainConfig(steps=1, batch_size=1, optimizer="lion")
    with pytest.raises(ValueError, match="ema_decay"):
        TrainConfig(steps=1, batch_size=1, ema_decay=1.5)
    with pytest.raises(ValueError, match="steps"):
        TrainConfig(steps=0, batch_size=1)
    with pytest.raises(ValueError, match="needs a run_dir"):
        fit(make_model(), ae_objective, ProtoBatcher(images(), 4),
            TrainConfig(steps=2, batch_size=4, checkpoint_every=1, device="cpu"), progress=False)
    with pytest.raises(TypeError, match="uint8 tensor"):
        fit(make_model(), ae_objective, torch.rand(8, 1, 8, 8), TrainConfig(steps=2, batch_size=4, device="cpu"),
            progress=False)
    with pytest.raises(TypeError, match="must return \\(loss, terms\\)"):
        fit(make_model(), lambda m, b, s: (m(b) - b).pow(2).mean(), ProtoBatcher(images(), 4),
            TrainConfig(steps=2, batch_size=4, device="cpu"), progress=False)
    with pytest.raises(RuntimeError, match="does not require grad"):
        fit(make_model(), lambda m, b, s: (b.mean(), {}), ProtoBatcher(images(), 4),
            TrainConfig(steps=2, batch_size=4, device="cpu"), progress=False)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            fit(make_model(), ae_objective, ProtoBatcher(images(), 4), TrainConfig(steps=2, batch_size=4,
                                                                                  device="cuda"), progress=False)


def test_uint8_tensor_is_batched_by_tensorbatcher(tmp_path: Path) -> None:
    """The contract path: a uint8 tensor goes through specvae.data.TensorBatcher; resume stays exact."""
    from specvae.data import TensorBatcher  # noqa: F401  (fails, never skips, while it is missing)

    data = images(n=20)
    full = fit(make_model(), ae_objective, data, CFG, progress=False)
    assert len(full.history["loss"]) == 6
    fit(make_model(), ae_objective, data, TrainConfig(**{**CFG.__dict__, "steps": 7, "checkpoint_every": 7}),
        run_dir=tmp_path, progress=False)
    resumed = fit(make_model(seed=1), ae_objective, data, CFG, run_dir=tmp_path, progress=False)
    assert_same_history(full.history, resumed.history)
    assert_same_state(full.model, resumed.model)


def test_deferred_non_finite_check_names_the_step_and_keeps_checkpoints_clean(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The check used on CUDA (no sync per step), exercised on the CPU."""
    import specvae.train as train

    monkeypatch.setattr(train, "_CHECK_EACH_STEP_ON_CPU", False)

    def objective(model: nn.Module, batch: torch.Tensor, step: int):
        loss = (model(batch) - batch).pow(2).mean()
        bad = torch.tensor(float("nan")) if step == 2 else torch.tensor(0.0)
        return loss + bad, {"bad": bad}

    cfg = TrainConfig(steps=10, batch_size=4, device="cpu", log_every=8, checkpoint_every=4)
    with pytest.raises(NonFiniteLossError, match=r"at step 2 \(means of the terms over the steps up to 4: loss=nan"):
        fit(make_model(), objective, ProtoBatcher(images(), 4), cfg, run_dir=tmp_path, progress=False)
    assert list(tmp_path.iterdir()) == []  # the checkpoint due at step 4 was not written


def test_trainconfig_fields_that_do_not_change_results_are_not_hashed() -> None:
    from specvae.experiments import config_hash

    base = TrainConfig(steps=10, batch_size=4)
    same = TrainConfig(steps=10, batch_size=4, device="cpu", compile=True, checkpoint_every=5, deterministic=True)
    assert config_hash(base) == config_hash(same)
    assert config_hash(base) != config_hash(TrainConfig(steps=10, batch_size=4, precision="fp32"))
    assert config_hash(base) != config_hash(TrainConfig(steps=10, batch_size=4, converge_tol=0.01))


def test_compile_trains_like_eager_and_keeps_state_dict_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """compile=True goes through nn.Module.compile (in place); TorchDynamo's 'eager' backend keeps this test fast
    on the CPU (inductor needs ~1 min of C++ compilation here) and numerically identical to no compilation."""
    import torch._dynamo

    original = nn.Module.compile
    calls: list[nn.Module] = []

    def eager_compile(self: nn.Module, *args, **kwargs) -> None:
        calls.append(self)
        original(self, backend="eager")

    monkeypatch.setattr(nn.Module, "compile", eager_compile)
    torch._dynamo.reset()
    data = images()
    cfg = TrainConfig(steps=6, batch_size=4, lr=1e-2, log_every=2, seed=3, device="cpu")
    plain = fit(make_model(), ae_objective, ProtoBatcher(data, 4, seed=7), cfg, progress=False)
    ccfg = TrainConfig(**{**cfg.__dict__, "compile": True, "checkpoint_every": 3})
    compiled = fit(make_model(), ae_objective, ProtoBatcher(data, 4, seed=7), ccfg, run_dir=tmp_path, progress=False)
    assert len(calls) == 1
    assert_same_history(plain.history, compiled.history)
    assert_same_state(plain.model, compiled.model)
    assert load_checkpoint(tmp_path)["model"].keys() == plain.model.state_dict().keys()  # no "_orig_mod." prefix
    torch._dynamo.reset()


def _fast_path_run(tmp_path: Path, device: str, kill_at: int | None, precision: str = "bf16",
                   channels_last: bool = True):
    seen: dict[str, list] = {"autocast": [], "dtype": [], "batch_cl": [], "weight_cl": [], "fft_dtype": []}

    def objective(model: nn.Module, batch: torch.Tensor, step: int):
        seen["autocast"].append(torch.is_autocast_enabled(batch.device.type))
        seen["batch_cl"].append(batch.is_contiguous(memory_format=torch.channels_last))
        seen["weight_cl"].append(model.enc.weight.is_contiguous(memory_format=torch.channels_last))
        recon = model(batch)
        seen["dtype"].append(recon.dtype)
        with torch.autocast(batch.device.type, enabled=False):  # how spectral losses run: float32, no autocast
            spec = torch.fft.fft2(recon.float()) - torch.fft.fft2(batch.float())
            seen["fft_dtype"].append(spec.dtype)
            fft_term = spec.abs().mean()
        mse = (recon.float() - batch).pow(2).mean()
        return mse + 1e-3 * fft_term, {"mse": mse, "fft": fft_term}

    def kill(step: int, model: nn.Module, terms: dict) -> None:
        if step == kill_at:
            raise KeyboardInterrupt

    cfg = TrainConfig(steps=8, batch_size=4, lr=1e-2, log_every=3, checkpoint_every=4, ema_decay=0.9, grad_clip=1.0,
                      device=device, seed=1, deterministic=device.startswith("cuda"), precision=precision,
                      channels_last=channels_last)
    run_dir = tmp_path / f"run-{kill_at}"
    if kill_at is not None:
        with pytest.raises(KeyboardInterrupt):
            fit(make_model(), objective, images(), cfg, run_dir=run_dir, progress=False, callbacks=[kill])
    return fit(make_model(), objective, images(), cfg, run_dir=run_dir, progress=False), seen


def test_bf16_and_channels_last_on_the_cpu_with_exact_resume(tmp_path: Path) -> None:
    """precision="bf16" + channels_last act on the CPU (the project's AMX-BF16 machines): autocast is on, the
    model computes in bf16, float32 FFTs stay float32, and a killed run still resumes exactly; precision="fp32"
    and channels_last=False switch both off."""
    full, seen = _fast_path_run(tmp_path, "cpu", kill_at=None)
    assert all(seen["autocast"]) and all(seen["batch_cl"]) and all(seen["weight_cl"])
    assert set(seen["dtype"]) == {torch.bfloat16} and set(seen["fft_dtype"]) == {torch.complex64}
    resumed, _ = _fast_path_run(tmp_path, "cpu", kill_at=6)
    assert resumed.resumed_from == 4
    assert_same_history(full.history, resumed.history)
    assert_same_state(full.model, resumed.model)
    assert_same_state(full.ema_model, resumed.ema_model)
    assert all(p.dtype == torch.float32 for p in full.model.parameters())  # weights stay float32
    _, plain = _fast_path_run(tmp_path / "plain", "cpu", kill_at=None, precision="fp32", channels_last=False)
    assert not any(plain["autocast"]) and set(plain["dtype"]) == {torch.float32}


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_fast_path_and_exact_resume(tmp_path: Path) -> None:
    """On a GPU: bf16 autocast, channels_last, fused Adam, the deferred non-finite check and CUDA RNG state in
    the checkpoint; with deterministic=True a killed run resumes to the same weights."""
    full, seen = _fast_path_run(tmp_path, "cuda", kill_at=None)
    assert all(seen["autocast"]) and all(seen["batch_cl"]) and all(seen["weight_cl"])
    assert set(seen["dtype"]) == {torch.bfloat16} and set(seen["fft_dtype"]) == {torch.complex64}
    assert full.device.startswith("cuda") and next(full.model.parameters()).is_cuda
    resumed, _ = _fast_path_run(tmp_path, "cuda", kill_at=6)
    assert resumed.resumed_from == 4
    assert_same_history(full.history, resumed.history)
    assert_same_state(full.model, resumed.model)
    assert "cuda" in load_checkpoint(tmp_path / "run-6")["rng"]


def test_kill_while_writing_a_checkpoint_keeps_the_previous_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A crash inside the checkpoint write (here: os.replace fails at the step-6 checkpoint) leaves the step-3
    checkpoint intact and no temp file; the resumed run still ends exactly like an uninterrupted one."""
    import specvae.experiments.atomic as atomic

    data = images()
    cfg = TrainConfig(**{**CFG.__dict__, "checkpoint_every": 3})
    full = fit(make_model(), ae_objective, ProtoBatcher(data, 4, seed=7), CFG, progress=False)
    real_replace = atomic.os.replace
    writes: list[int] = []

    def replace(src, dst):
        writes.append(1)
        if len(writes) == 2:
            raise KeyboardInterrupt  # killed between writing the temp file and the rename
        return real_replace(src, dst)

    monkeypatch.setattr(atomic.os, "replace", replace)
    run_dir = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        fit(make_model(), ae_objective, ProtoBatcher(data, 4, seed=7), cfg, run_dir=run_dir, progress=False)
    monkeypatch.undo()
    assert sorted(p.name for p in run_dir.iterdir()) == [CHECKPOINT_NAME]
    assert load_checkpoint(run_dir)["step"] == 3
    resumed = fit(make_model(seed=2), ae_objective, ProtoBatcher(data, 4, seed=7), cfg, run_dir=run_dir,
                  progress=False)
    assert resumed.resumed_from == 3
    assert_same_history(full.history, resumed.history)
    assert_same_state(full.model, resumed.model)

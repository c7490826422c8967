"""The one training loop of specvae: :func:`fit`.

Every model of the book trains through :func:`fit`. Models and losses plug in without subclassing anything: the
caller passes an *objective*, a plain function

    ``objective(model, batch, step) -> (loss, terms)``

that runs the model on a batch and returns the scalar loss to minimise and a dict of named terms to log
(tensors or floats). ``step`` is the number of optimizer updates the model has had so far (0 on the first call).

What the loop does for every model:

- **devices and speed**: ``device="auto"`` picks CUDA when present. With ``precision="bf16"`` (the default) the
  objective runs under bf16 autocast on the CPU and on CUDA (spectral code and the losses that need it disable
  autocast themselves and work in float32); ``precision="fp32"`` turns autocast off. ``channels_last=True`` puts
  the model's 4-D weights and the batches in channels-last layout (CPU and CUDA). On the project's 2-core
  AMX-BF16 CPUs the two together train chapter 1's conv VAEs about twice as fast as fp32 (``specvae bench``).
  On CUDA, Adam is fused. ``compile=True`` compiles the model in place with :func:`torch.compile` (state-dict
  keys are unchanged).
- **convergence**: with ``converge_tol`` set, the run stops at the first logging step where the smoothed logged
  ``converge_on`` term changed by less than ``converge_tol`` (relative, either way) over the last
  ``converge_window`` of the steps done (see :func:`relative_change`): a term that fell less than that has
  levelled off; one that rose by more than that is not converged, and the run goes on. ``steps`` is then a cap.
  Every run reports the rule's figure (:attr:`FitResult.rel_change`) and whether it converged.
- **extra optimizers**: ``phases=`` adds optimizers stepped after the main one at every step on their own
  parameters and objective (a GAN's discriminator, see :class:`Phase`).
- **data**: a ``uint8`` tensor ``(N, C, H, W)`` (or an :class:`~specvae.data.ImageData`) is moved to the device
  once and batched there by :class:`specvae.data.TensorBatcher`; any object with the TensorBatcher protocol
  (``next(obj)`` gives a batch; ``state_dict()``/``load_state_dict()`` for resuming) can be passed instead.
- **optimisation**: Adam/AdamW/SGD, optional linear warm-up and step decay of the learning rate, gradient
  clipping by global norm (the pre-clip norm is logged as ``grad_norm``), optional EMA of the weights.
- **logging**: every ``log_every`` steps the *averages* of the loss and of each term over the interval are
  appended to ``history`` and shown in the tqdm bar.
- **safety**: a non-finite loss stops the run with :class:`NonFiniteLossError`, naming the step and the terms.
- **checkpoints and resume**: with ``run_dir`` set, the model, optimizer, EMA, batcher, RNG states (Python,
  NumPy, torch CPU and CUDA), step and history are written atomically to ``run_dir/checkpoint.pt`` every
  ``checkpoint_every`` steps and at the end. ``fit`` called again with the same ``run_dir`` continues from there,
  and a run killed and restarted ends with exactly the same history and weights as an uninterrupted one
  (bit-for-bit on the CPU; on CUDA as far as the kernels used are deterministic, see ``deterministic``).

Ref: the project's training-loop practices (CONTRIBUTING.md: spectral code in float32 with autocast disabled;
bf16 autocast, channels_last, clipping, EMA as in taming-transformers/ldm ``LitEma``, checkpoint/resume, tqdm
progress); PyTorch docs for :class:`torch.autocast`, :func:`torch.nn.utils.clip_grad_norm_` and reproducibility
(https://pytorch.org/docs/stable/notes/randomness.html).
"""

from __future__ import annotations

import copy
import dataclasses
import io
import math
import os
import random
import time
import warnings
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import numpy as np
import torch
from torch import Tensor, nn

__all__ = [
    "TrainConfig",
    "FitResult",
    "Phase",
    "PRECISIONS",
    "relative_change",
    "fit",
    "EMA",
    "Objective",
    "Callback",
    "NonFiniteLossError",
    "CheckpointMismatchError",
    "CHECKPOINT_NAME",
    "load_checkpoint",
    "seed_everything",
    "resolve_device",
]

#: file name of the checkpoint inside ``run_dir``
CHECKPOINT_NAME = "checkpoint.pt"
#: version of the checkpoint layout; a checkpoint of another version is refused with a clear error
CHECKPOINT_VERSION = 1

#: ``objective(model, batch, step) -> (loss, terms)``
Objective = Callable[[nn.Module, Any, int], "tuple[Tensor, Mapping[str, Tensor | float]]"]
#: ``callback(step, model, terms)``, called after every optimizer update (``step`` = updates done so far)
Callback = Callable[[int, nn.Module, Mapping[str, Any]], None]

_OPTIMIZERS = ("adam", "adamw", "sgd")
# fields that may change between a run and its resumption (they do not change the maths of a step)
_RESUMABLE_CHANGES = ("steps", "checkpoint_every", "device", "compile", "deterministic")
#: the values of TrainConfig.precision
PRECISIONS: tuple[str, ...] = ("bf16", "fp32")
# check the loss after every step on the CPU (where reading it costs no device sync); tests switch it off to
# exercise the deferred check used on CUDA
_CHECK_EACH_STEP_ON_CPU = True


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN or infinite during training (the message names the step and the terms)."""


class CheckpointMismatchError(RuntimeError):
    """A checkpoint in ``run_dir`` was written by another training configuration or model."""


# fields that do not change what a run computes are left out of config hashes (specvae.experiments.config_hash)
_NOT_HASHED = {"hash": False}


@dataclass(frozen=True)
class TrainConfig:
    """Settings of one training run (everything :func:`fit` needs besides model, objective and data).

    Args:
        steps: total optimizer updates of the run (a resumed run counts the ones already done).
        batch_size: images per batch (used when ``fit`` builds the batcher from a tensor).
        lr: base learning rate.
        betas: Adam/AdamW betas.
        weight_decay: weight decay (L2 for Adam/SGD, decoupled for AdamW).
        optimizer: ``"adam"``, ``"adamw"`` or ``"sgd"``.
        momentum: SGD momentum (ignored by Adam/AdamW).
        grad_clip: clip the global gradient norm to this value; ``None`` = no clipping.
        precision: ``"bf16"``: bf16 autocast around the objective (CPU and CUDA); ``"fp32"``: no autocast. The
            weights, the optimizer state and every loss that disables autocast stay float32 either way.
        channels_last: channels-last memory format for the model's 4-D weights and the batches (CPU and CUDA).
        compile: compile the model in place with ``torch.compile``.
        ema_decay: keep an exponential moving average of the weights with this decay (e.g. 0.999); ``None`` = off.
        checkpoint_every: write a checkpoint every this many steps (0 = only at the end); needs ``run_dir``.
        log_every: append interval averages of the loss terms to ``history`` every this many steps.
        seed: seeds Python, NumPy and torch at the start of the run, and the batcher's shuffling.
        device: ``"auto"`` (CUDA if available, else CPU), ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...
        warmup_steps: linear learning-rate warm-up over this many steps (0 = none).
        lr_decay: multiply the learning rate by this factor every ``lr_decay_every`` steps (1.0 = constant).
        lr_decay_every: steps between two decays (0 = no decay), e.g. one epoch in steps.
        deterministic: call ``torch.use_deterministic_algorithms(True, warn_only=True)`` during the run (and set
            ``CUBLAS_WORKSPACE_CONFIG=:4096:8`` unless set); slower, for bit-exact reruns on GPUs.
        converge_tol: stop early once the smoothed ``converge_on`` term changed by less than this fraction (either
            way: ``|relative_change| < converge_tol``) over the last ``converge_window`` of the steps done (e.g.
            0.01 = 1 %); a rising term does not stop the run. ``None`` = always run ``steps``.
        converge_window: the fraction of the steps done that the rule looks back over (0.2 = the last 20 %).
        converge_min_steps: never stop before this many steps (the rule also waits for 10 logged intervals).
        converge_on: the logged term the rule watches (``"loss"``, or e.g. a reconstruction term of a GAN).

    A ``TrainConfig`` can be a field of a chapter's run config: ``compile``, ``checkpoint_every``, ``device`` and
    ``deterministic`` are marked ``metadata={"hash": False}``, so they do not change the run's result hash (a
    result computed on a GPU is found again on a CPU; ``precision`` does count, as bf16 changes the numbers).
    """

    steps: int
    batch_size: int
    lr: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0
    optimizer: str = "adam"
    grad_clip: float | None = None
    precision: str = "bf16"
    channels_last: bool = True
    compile: bool = field(default=False, metadata=_NOT_HASHED)
    ema_decay: float | None = None
    checkpoint_every: int = field(default=0, metadata=_NOT_HASHED)
    log_every: int = 50
    seed: int = 0
    device: str = field(default="auto", metadata=_NOT_HASHED)
    momentum: float = 0.0
    warmup_steps: int = 0
    lr_decay: float = 1.0
    lr_decay_every: int = 0
    deterministic: bool = field(default=False, metadata=_NOT_HASHED)
    converge_tol: float | None = None
    converge_window: float = 0.2
    converge_min_steps: int = 0
    converge_on: str = "loss"

    def __post_init__(self) -> None:
        def bad(name: str, why: str) -> ValueError:
            return ValueError(f"TrainConfig.{name}={getattr(self, name)!r}: {why}")

        for name in ("steps", "batch_size", "log_every"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise bad(name, "must be a positive integer")
        for name in ("checkpoint_every", "seed", "warmup_steps", "lr_decay_every", "converge_min_steps"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise bad(name, "must be an integer >= 0")
        if not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and self.lr > 0):
            raise bad("lr", "must be a positive finite number")
        if len(tuple(self.betas)) != 2 or not all(0.0 <= float(b) < 1.0 for b in self.betas):
            raise bad("betas", "must be two numbers in [0, 1)")
        if self.weight_decay < 0:
            raise bad("weight_decay", "must be >= 0")
        if self.optimizer not in _OPTIMIZERS:
            raise bad("optimizer", f"unknown optimizer; choose one of {', '.join(_OPTIMIZERS)}")
        if self.grad_clip is not None and not (math.isfinite(self.grad_clip) and self.grad_clip > 0):
            raise bad("grad_clip", "must be None (no clipping) or a positive number")
        if self.ema_decay is not None and not (0.0 < self.ema_decay < 1.0):
            raise bad("ema_decay", "must be None (no EMA) or a number strictly between 0 and 1, e.g. 0.999")
        if not (0.0 < self.lr_decay <= 1.0):
            raise bad("lr_decay", "must be in (0, 1] (1.0 = no decay)")
        if self.momentum < 0:
            raise bad("momentum", "must be >= 0")
        if self.precision not in PRECISIONS:
            raise bad("precision", f"choose one of {', '.join(map(repr, PRECISIONS))} (bf16 autocast or none)")
        if self.converge_tol is not None and not (math.isfinite(self.converge_tol) and self.converge_tol > 0):
            raise bad("converge_tol", "must be None (no early stop) or a positive fraction, e.g. 0.01")
        if not 0.0 < self.converge_window < 1.0:
            raise bad("converge_window", "must be a fraction strictly between 0 and 1, e.g. 0.2")
        if not isinstance(self.converge_on, str) or not self.converge_on:
            raise bad("converge_on", "must name a logged term, e.g. 'loss'")
        if not isinstance(self.device, (str, torch.device)):
            raise bad("device", "must be a string such as 'auto', 'cpu' or 'cuda'")
        object.__setattr__(self, "betas", tuple(float(b) for b in self.betas))

    def lr_at(self, step: int) -> float:
        """Learning rate used for the update made at ``step`` (0-based): warm-up times step decay."""
        factor = 1.0
        if self.warmup_steps > 0:
            factor *= min(1.0, (step + 1) / self.warmup_steps)
        if self.lr_decay_every > 0 and self.lr_decay != 1.0:
            factor *= self.lr_decay ** (step // self.lr_decay_every)
        return self.lr * factor


@dataclass
class FitResult:
    """What :func:`fit` returns.

    Attributes:
        model: the trained model (in ``eval()`` mode, on the training device).
        ema_model: the EMA copy of the model (``eval()`` mode) or ``None`` when ``ema_decay`` is ``None``.
        history: ``{"step": [...], "loss": [...], <term>: [...], ...}``, interval averages every ``log_every``
            steps, plus the average of the last partial interval when ``steps`` is not a multiple of
            ``log_every``; ``step`` counts updates done. A term missing in part of an interval
            is averaged over the steps that had it; a term absent from a whole interval is NaN there.
        steps: updates done in total (fewer than ``config.steps`` when the convergence rule stopped the run).
        wall_time_s: seconds spent in this call (a resumed run: since the resume).
        images_per_s: training throughput of this call (images seen / wall time).
        resumed_from: the step the run was resumed from, or ``None`` for a fresh run.
        total_wall_time_s: training seconds summed over this call and the calls it resumed.
        run_dir: the checkpoint folder, or ``None``.
        device: the device the run used.
        converged: whether the convergence rule stopped the run (``None`` when ``config.converge_tol`` is None).
        rel_change: the rule's figure at the end of the run: the relative improvement of the smoothed
            ``config.converge_on`` term over the last ``config.converge_window`` of the steps
            (:func:`relative_change`; NaN when fewer than 10 intervals were logged).
    """

    model: nn.Module
    ema_model: nn.Module | None
    history: dict[str, list[float]]
    steps: int
    wall_time_s: float
    images_per_s: float
    resumed_from: int | None
    total_wall_time_s: float = 0.0
    run_dir: Path | None = None
    device: str = "cpu"
    converged: bool | None = None
    rel_change: float = math.nan


@dataclass(frozen=True)
class Phase:
    """An extra optimizer that :func:`fit` steps after the main one, on its own parameters and objective.

    A GAN's discriminator is the example: the main objective trains the generator (every trainable parameter of
    the model that no phase claims); the phase ``Phase("disc", disc_objective, lambda m: m.disc.parameters(),
    start_step=30_000)`` then zeroes the discriminator's gradients, runs ``disc_objective(model, batch, step)``
    on the same batch and steps its own optimizer (of ``TrainConfig.optimizer``'s kind). This is the alternating
    update of taming-transformers' VQGAN (generator, then discriminator, every step).

    Args:
        name: a short name; the phase's terms are logged as ``"<name>/<term>"`` and its loss as ``"<name>/loss"``.
        objective: ``objective(model, batch, step) -> (loss, terms)`` like the main one. It may read what the main
            objective cached on itself in the same step (e.g. a detached reconstruction).
        params: ``params(model)`` gives the parameters this phase updates (they must belong to ``model``).
        lr, betas, weight_decay: the phase optimizer's settings; ``None`` = those of the ``TrainConfig``.
        start_step: the phase is skipped while ``step < start_step`` (e.g. the discriminator's start).

    Ref: Esser et al., "Taming Transformers for High-Resolution Image Synthesis" (CVPR 2021), the VQGAN training
    loop (two Adam optimizers stepped in turn, discriminator switched on after ``disc_start`` steps).
    """

    name: str
    objective: "Objective"
    params: Callable[[nn.Module], Iterable[nn.Parameter]]
    lr: float | None = None
    betas: tuple[float, float] | None = None
    weight_decay: float | None = None
    start_step: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name or "/" in self.name or self.name == "loss":
            raise ValueError(f"Phase.name must be a non-empty name without '/', not 'loss'; got {self.name!r}")
        if not callable(self.objective) or not callable(self.params):
            raise TypeError(f"Phase {self.name!r}: objective and params must be functions "
                            "(objective(model, batch, step) -> (loss, terms); params(model) -> parameters)")
        if isinstance(self.start_step, bool) or not isinstance(self.start_step, int) or self.start_step < 0:
            raise ValueError(f"Phase {self.name!r}: start_step must be an integer >= 0, got {self.start_step!r}")
        if self.lr is not None and not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"Phase {self.name!r}: lr must be None or a positive number, got {self.lr!r}")


def relative_change(steps: "list[float] | np.ndarray", values: "list[float] | np.ndarray", *,
                    window: float = 0.2, smooth: float = 0.05, min_points: int = 10,
                    smooth_points: int = 5) -> float:
    """Relative improvement of a logged curve over the last ``window`` of its steps: ``(L(0.8 t) − L(t)) / |L(t)|``.

    ``t`` is the last logged step and ``L(s)`` the mean of the logged values whose step lies in ``(s − w, s]``,
    with ``w = max(smooth·t, smooth_points × the median logging interval)`` (at least the one logged point at or
    just before ``s``), so that batch noise does not decide, also early in a run. A positive value is an
    improvement (the loss fell), a negative one a rise; a run "has converged" by the rule of issue #8 when its
    absolute value is below the tolerance, e.g. 0.01: "the smoothed training loss changed by less than 1 % over
    the last 20 % of its steps" (a loss that rose by more has not settled). NaN values are ignored; fewer than
    ``min_points`` logged points give NaN.

    Ref: the convergence rule stated for the book's ``cpu`` preset (book/reproducibility.md).
    """
    s = np.asarray(steps, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    keep = np.isfinite(v) & np.isfinite(s)
    s, v = s[keep], v[keep]
    if s.size < min_points:
        return math.nan
    t = s[-1]
    width = max(smooth * t, smooth_points * float(np.median(np.diff(s))) if s.size > 1 else 0.0)

    def level(at: float) -> float:
        inside = (s > at - width) & (s <= at)
        if not inside.any():
            inside = s == s[s <= at].max() if (s <= at).any() else s == s[0]
        return float(v[inside].mean())

    now, before = level(t), level((1.0 - window) * t)
    if now == 0.0:
        return 0.0 if before == 0.0 else math.inf
    return (before - now) / abs(now)


class EMA:
    """Exponential moving average of a model's weights.

    After each optimizer update, ``ema ← decay·ema + (1 − decay)·θ`` for every floating-point parameter; the
    first update copies θ (the convention of :class:`torch.optim.swa_utils.AveragedModel`). Buffers (e.g.
    BatchNorm running statistics) are copied, not averaged.

    We keep our own small class instead of ``AveragedModel`` so that :attr:`module` is a plain copy of the
    model (same class, same ``state_dict`` keys, no ``n_averaged`` buffer), which evaluation and saving code can
    treat exactly like the model itself.

    Ref: taming-transformers / latent-diffusion ``LitEma`` (the EMA of weights used for evaluation);
    ``torch.optim.swa_utils.get_ema_multi_avg_fn`` (same update rule).
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay must be strictly between 0 and 1, got {decay!r}")
        self.decay = float(decay)
        self.module = copy.deepcopy(model)
        self.module.eval()
        self.module.requires_grad_(False)
        self.num_updates = 0
        self._cache: tuple[Any, Any] | None = None

    def _pairs(self, model: nn.Module) -> tuple[list[Tensor], list[Tensor], list[tuple[Tensor, Tensor]]]:
        """(EMA float params, model float params, [(EMA tensor, model tensor) to copy]); cached per model."""
        cached = self._cache
        if cached is not None and cached[0]() is model:
            return cached[1]
        ema_params = dict(self.module.named_parameters())
        ema_buffers = dict(self.module.named_buffers())
        averaged, current, copied = [], [], []
        for name, param in model.named_parameters():
            if name not in ema_params:
                raise ValueError(f"EMA.update got a model without the parameter {name!r} of the averaged one; "
                                 "pass the model the EMA was built from")
            if ema_params[name].is_floating_point():
                averaged.append(ema_params[name])
                current.append(param)
            else:
                copied.append((ema_params[name], param))
        copied += [(ema_buffers[name], buf) for name, buf in model.named_buffers() if name in ema_buffers]
        pairs = (averaged, current, copied)
        self._cache = (weakref.ref(model), pairs)
        return pairs

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Fold the current weights of ``model`` (same architecture) into the average."""
        averaged, current, copied = self._pairs(model)
        if self.num_updates == 0:
            for target, param in zip(averaged, current):
                target.copy_(param)
        elif averaged:
            torch._foreach_lerp_(averaged, [p.detach() for p in current], 1.0 - self.decay)
        for target, source in copied:
            target.copy_(source)
        self.num_updates += 1

    def state_dict(self) -> dict[str, Any]:
        return {"module": self.module.state_dict(), "num_updates": self.num_updates, "decay": self.decay}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.module.load_state_dict(state["module"])
        self.num_updates = int(state["num_updates"])
        self.decay = float(state["decay"])


# ----------------------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------------------
def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy's global generator and torch (CPU and every CUDA device)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds all CUDA devices


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` → CUDA when available, else CPU; other names are checked (clear error if CUDA is missing)."""
    if isinstance(device, torch.device):
        resolved = device
    elif device == "auto":
        resolved = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        try:
            resolved = torch.device(device)
        except RuntimeError as err:
            raise ValueError(f"unknown device {device!r}; use 'auto', 'cpu', 'cuda' or 'cuda:<index>'") from err
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={str(device)!r} asks for CUDA, but CUDA is not available here; "
                         "use device='auto' or 'cpu'")
    if resolved.type == "cuda" and resolved.index is None:
        resolved = torch.device("cuda", torch.cuda.current_device())
    return resolved


def _rng_state() -> dict[str, Any]:
    """RNG states as tensors/plain Python values (loadable with ``torch.load(weights_only=True)``)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": {"kind": str(kind), "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
                  "pos": int(pos), "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: Mapping[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    np_state = state["numpy"]
    np.random.set_state((np_state["kind"], np_state["keys"].numpy().astype(np.uint32), np_state["pos"],
                         np_state["has_gauss"], np_state["cached_gaussian"]))
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        cuda_states = [s.cpu() for s in state["cuda"]]
        if len(cuda_states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda_states)
        else:
            warnings.warn("checkpoint holds CUDA RNG states for a different number of GPUs; "
                          "they were not restored (sampling on the GPU will differ from an uninterrupted run)",
                          stacklevel=3)


def _config_state(config: TrainConfig) -> dict[str, Any]:
    state = dataclasses.asdict(config)
    state["device"] = str(state["device"])
    return state


def load_checkpoint(run_dir: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read ``run_dir/checkpoint.pt`` (written by :func:`fit`) as a dict.

    Keys: ``version``, ``step``, ``config`` (TrainConfig as dict), ``model`` (state dict), ``optimizer``,
    ``ema`` (or ``None``), ``batcher``, ``rng``, ``history``, ``accumulator``, ``total_wall_time_s``,
    ``model_class``.
    """
    path = Path(run_dir) / CHECKPOINT_NAME
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}; train with fit(..., run_dir={str(run_dir)!r}) first")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # noqa: BLE001 - re-raised with the file name and what to do
        raise CheckpointMismatchError(
            f"could not read the checkpoint {path} ({type(err).__name__}: {err}). It may come from another specvae "
            "version, or a batcher's state_dict() holds objects other than tensors, numbers, strings, lists and "
            "dicts. Delete it or pass resume=False to start the run over.") from err
    if not isinstance(state, dict) or state.get("version") != CHECKPOINT_VERSION:
        raise CheckpointMismatchError(
            f"{path} is not a specvae checkpoint of layout version {CHECKPOINT_VERSION}; delete it or pass "
            "resume=False to start the run over")
    return state


def _save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    from specvae.experiments.atomic import atomic_write

    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write(path, lambda handle: handle.write(buffer.getbuffer()))


def _make_batcher(data: Any, config: TrainConfig, device: torch.device) -> Any:
    images = getattr(data, "images", None)
    if isinstance(images, Tensor) and not isinstance(data, Tensor) and not hasattr(data, "__next__"):
        data = images  # an ImageData
    if isinstance(data, Tensor):
        if data.dtype != torch.uint8 or data.ndim != 4:
            raise TypeError(
                f"fit() expects images as a uint8 tensor (N, C, H, W); got dtype={data.dtype}, shape="
                f"{tuple(data.shape)}. Convert float images in [0, 1] with (x * 255).round().to(torch.uint8), "
                "or pass a batcher object (next(obj) -> batch) instead.")
        if data.shape[0] < config.batch_size:
            raise ValueError(f"the data hold {data.shape[0]} images, fewer than batch_size={config.batch_size}; "
                             "lower batch_size or use more images")
        from specvae.data import TensorBatcher

        return TensorBatcher(data.to(device), config.batch_size, device=device, seed=config.seed)
    if not hasattr(data, "__next__"):
        if hasattr(data, "__iter__"):
            raise TypeError(
                f"fit() got a {type(data).__name__}, which is iterable but not an iterator; pass a uint8 tensor, "
                "a specvae.data.TensorBatcher, or an object with __next__ (and state_dict/load_state_dict to "
                "resume exactly)")
        raise TypeError(f"fit() cannot train on a {type(data).__name__}; pass a uint8 tensor (N, C, H, W) or a "
                        "specvae.data.TensorBatcher")
    return data


def _to_device(batch: Any, device: torch.device, channels_last: bool) -> Any:
    if isinstance(batch, Tensor):
        if batch.device != device:
            batch = batch.to(device, non_blocking=True)
        if channels_last and batch.ndim == 4:
            batch = batch.contiguous(memory_format=torch.channels_last)
        return batch
    if isinstance(batch, (tuple, list)):
        return type(batch)(_to_device(b, device, channels_last) for b in batch)
    if isinstance(batch, dict):
        return {k: _to_device(v, device, channels_last) for k, v in batch.items()}
    return batch


def _make_optimizer(params: list[nn.Parameter], config: TrainConfig, device: torch.device,
                    phase: Phase | None = None) -> torch.optim.Optimizer:
    fused = {"fused": True} if device.type == "cuda" else {}
    lr = config.lr if phase is None or phase.lr is None else phase.lr
    betas = config.betas if phase is None or phase.betas is None else tuple(phase.betas)
    decay = config.weight_decay if phase is None or phase.weight_decay is None else phase.weight_decay
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=lr, betas=betas, weight_decay=decay, **fused)
    if config.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=lr, betas=betas, weight_decay=decay, **fused)
    return torch.optim.SGD(params, lr=lr, momentum=config.momentum, weight_decay=decay)


def _split_parameters(model: nn.Module, phases: tuple[Phase, ...]) -> tuple[list[nn.Parameter], list[list[nn.Parameter]]]:
    """(main parameters, [parameters of each phase]); each phase's must be trainable parameters of ``model``."""
    owned = {id(p) for p in model.parameters()}
    claimed: dict[int, str] = {}
    per_phase: list[list[nn.Parameter]] = []
    for phase in phases:
        mine = [p for p in phase.params(model) if p.requires_grad]
        if not mine:
            raise ValueError(f"Phase {phase.name!r} has no trainable parameters (params(model) gave none)")
        for p in mine:
            if id(p) not in owned:
                raise ValueError(f"Phase {phase.name!r} names a parameter that is not one of the model's; put the "
                                 "module it belongs to (e.g. the discriminator) inside the model")
            if id(p) in claimed:
                raise ValueError(f"a parameter is claimed by two phases ({claimed[id(p)]!r} and {phase.name!r})")
            claimed[id(p)] = phase.name
        per_phase.append(mine)
    main = [p for p in model.parameters() if p.requires_grad and id(p) not in claimed]
    return main, per_phase


class _IntervalMeans:
    """Running sums of the loss terms over one logging interval, kept on the device (no sync per step)."""

    def __init__(self) -> None:
        self.sums: dict[str, Tensor | float] = {}
        self.counts: dict[str, int] = {}

    def add(self, terms: Mapping[str, Tensor | float]) -> None:
        for name, value in terms.items():
            if isinstance(value, Tensor):
                value = value.detach().float()
            prev = self.sums.get(name)
            self.sums[name] = value if prev is None else prev + value
            self.counts[name] = self.counts.get(name, 0) + 1

    def means(self) -> dict[str, float]:
        names = list(self.sums)
        tensors = [n for n in names if isinstance(self.sums[n], Tensor)]
        values: dict[str, float] = {n: float(self.sums[n]) for n in names if n not in tensors}
        if tensors:  # one device→host copy for all terms
            stacked = torch.stack([self.sums[n].reshape(()).to(torch.float64) for n in tensors]).cpu().tolist()
            values.update(zip(tensors, stacked))
        return {n: values[n] / self.counts[n] for n in names}

    def reset(self) -> None:
        self.sums.clear()
        self.counts.clear()

    def state_dict(self) -> dict[str, Any]:
        return {"sums": {k: (v.cpu() if isinstance(v, Tensor) else v) for k, v in self.sums.items()},
                "counts": dict(self.counts)}

    def load_state_dict(self, state: Mapping[str, Any], device: torch.device) -> None:
        self.sums = {k: (v.to(device) if isinstance(v, Tensor) else v) for k, v in state["sums"].items()}
        self.counts = dict(state["counts"])


def _check_objective_output(out: Any, step: int) -> tuple[Tensor, dict[str, Tensor | float]]:
    if not (isinstance(out, tuple) and len(out) == 2):
        raise TypeError(f"the objective must return (loss, terms); at step {step} it returned {type(out).__name__}")
    loss, terms = out
    if not isinstance(loss, Tensor) or loss.numel() != 1:
        raise TypeError(f"the objective's loss must be a scalar tensor; at step {step} it is "
                        f"{type(loss).__name__}{tuple(loss.shape) if isinstance(loss, Tensor) else ''}")
    if not loss.requires_grad:
        raise RuntimeError(f"the objective's loss at step {step} does not require grad: it is not connected to "
                           "the model's parameters (was it computed under torch.no_grad() or detached?)")
    if not isinstance(terms, Mapping):
        raise TypeError(f"the objective's terms must be a dict of name -> tensor/float, got {type(terms).__name__}")
    checked: dict[str, Tensor | float] = {}
    for name, value in terms.items():
        if isinstance(value, Tensor):
            if value.numel() != 1:
                raise TypeError(f"loss term {name!r} must be a scalar; got shape {tuple(value.shape)} at step {step}")
        elif not isinstance(value, (int, float)):
            raise TypeError(f"loss term {name!r} must be a tensor or a float; got {type(value).__name__}")
        checked[str(name)] = value
    return loss.reshape(()), checked


def _format_terms(values: Mapping[str, float]) -> dict[str, str]:
    return {k: f"{v:.4g}" for k, v in values.items()}


def _nonfinite_message(step: int, values: Mapping[str, float], last_ckpt: int | None,
                       upto: int | None = None) -> str:
    terms = ", ".join(f"{k}={v:.6g}" for k, v in values.items())
    if upto is not None:
        shown = f" (means of the terms over the steps up to {upto}: {terms})" if terms else ""
    else:
        shown = f" ({terms})"
    resume = f" The last checkpoint is at step {last_ckpt}." if last_ckpt is not None else ""
    return (f"non-finite loss at step {step}{shown}. Lower the learning rate, set TrainConfig.grad_clip, or check "
            f"the objective for log(0), division by zero or exploding terms.{resume}")


def _batch_len(batch: Any, default: int) -> int:
    if isinstance(batch, Tensor):
        return int(batch.shape[0])
    if isinstance(batch, (tuple, list)) and batch and isinstance(batch[0], Tensor):
        return int(batch[0].shape[0])
    return default


# ----------------------------------------------------------------------------------------------------------
# the loop
# ----------------------------------------------------------------------------------------------------------
def fit(
    model: nn.Module,
    objective: Objective,
    data: Any,
    config: TrainConfig,
    *,
    run_dir: str | os.PathLike | None = None,
    resume: bool = True,
    progress: bool = True,
    callbacks: Iterable[Callback] = (),
    phases: Iterable[Phase] = (),
) -> FitResult:
    """Train ``model`` by minimising ``objective`` on ``data`` for ``config.steps`` optimizer updates.

    Args:
        model: any ``nn.Module``; moved to the device (and its 4-D weights to channels_last when
            ``config.channels_last``). Everything trainable must be a parameter of ``model`` (a loss with learnable
            weights, a discriminator, belongs inside it).
        objective: ``objective(model, batch, step) -> (loss, terms)``; ``loss`` is a scalar tensor, ``terms``
            maps names to scalar tensors or floats (logged; ``"loss"`` is logged automatically). ``step`` is the
            number of updates done before this one (0-based), so ``step < k`` means "during the first k steps".
        data: a ``uint8`` tensor ``(N, C, H, W)`` or an ``ImageData`` (batched by ``TensorBatcher`` on the
            device, shuffled with ``config.seed``), or a batcher object (``next(obj)`` gives a batch; needs
            ``state_dict``/``load_state_dict`` when ``run_dir`` is set, so a resumed run sees the same batches).
        config: the :class:`TrainConfig`.
        run_dir: folder for ``checkpoint.pt``; ``None`` = no checkpoints (then ``checkpoint_every`` must be 0).
        resume: continue from ``run_dir/checkpoint.pt`` when it exists (``False``: start over, overwriting it).
        progress: show a tqdm bar with the running loss terms.
        callbacks: ``cb(step, model, terms)`` called after every update (``step`` = updates done, 1-based;
            ``terms`` holds the step's loss terms as detached tensors), e.g. to snapshot reconstructions.
        phases: extra optimizers stepped after the main one at every step (:class:`Phase`, e.g. a GAN's
            discriminator); the main optimizer updates every trainable parameter no phase claims.

    Returns:
        :class:`FitResult`.

    Raises:
        NonFiniteLossError: the loss became NaN/inf (message names the step and terms).
        CheckpointMismatchError: ``run_dir`` holds a checkpoint of a different config or model.
    """
    from tqdm.auto import tqdm

    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a specvae.train.TrainConfig, got {type(config).__name__}")
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not callable(objective):
        raise TypeError("objective must be a function objective(model, batch, step) -> (loss, terms)")
    callbacks = tuple(callbacks)
    phases = tuple(phases)
    for phase in phases:
        if not isinstance(phase, Phase):
            raise TypeError(f"phases must hold specvae.train.Phase objects, got {type(phase).__name__}")
    if len({ph.name for ph in phases}) != len(phases):
        raise ValueError(f"phase names must be distinct, got {[ph.name for ph in phases]}")
    for phase in phases:
        if phase.start_step >= config.steps:
            raise ValueError(f"Phase {phase.name!r} starts at step {phase.start_step}, at or past the end of training "
                             f"(TrainConfig.steps={config.steps}); lower start_step or raise steps")
    device = resolve_device(config.device)
    cuda = device.type == "cuda"
    channels_last = config.channels_last
    use_amp = config.precision == "bf16"

    ckpt_path: Path | None = None
    if run_dir is not None:
        ckpt_path = Path(run_dir) / CHECKPOINT_NAME
    elif config.checkpoint_every:
        raise ValueError(f"TrainConfig.checkpoint_every={config.checkpoint_every} needs a run_dir to write the "
                         "checkpoints to; pass run_dir=... (e.g. specvae.paths.runs_root() / '<run name>')")

    seed_everything(config.seed)
    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    params, phase_params = _split_parameters(model, phases)
    if not params:
        raise ValueError(f"{type(model).__name__} has no trainable parameters (requires_grad=True) outside its "
                         "phases; nothing to fit")
    optimizer = _make_optimizer(params, config, device)
    phase_optimizers = [_make_optimizer(ps, config, device, ph) for ph, ps in zip(phases, phase_params)]
    ema = EMA(model, config.ema_decay) if config.ema_decay is not None else None
    batcher = _make_batcher(data, config, device)
    if ckpt_path is not None and not (hasattr(batcher, "state_dict") and hasattr(batcher, "load_state_dict")):
        raise TypeError(f"the batcher {type(batcher).__name__} has no state_dict()/load_state_dict(), so a resumed "
                        "run could not see the same batches; use specvae.data.TensorBatcher or add them")

    if ckpt_path is not None:
        from specvae.experiments.atomic import remove_stale_temps

        remove_stale_temps(ckpt_path)  # left by a run killed while writing (one fit per run_dir at a time)

    start = 0
    stopped_at: int | None = None  # the step at which the convergence rule stopped the run
    history: dict[str, list[float]] = {"step": []}
    means = _IntervalMeans()
    resumed_from: int | None = None
    total_wall = 0.0
    last_ckpt: int | None = None
    if ckpt_path is not None and resume and ckpt_path.is_file():
        state = load_checkpoint(ckpt_path.parent)
        _check_resumable(state, config, model, ckpt_path, phases)
        try:
            model.load_state_dict(state["model"])
        except RuntimeError as err:
            raise CheckpointMismatchError(
                f"the checkpoint {ckpt_path} holds weights of another {type(model).__name__} architecture ({err}). "
                "Use a new run_dir or pass resume=False to start over.") from err
        optimizer.load_state_dict(state["optimizer"])
        for phase, phase_optimizer in zip(phases, phase_optimizers):
            phase_optimizer.load_state_dict(state["phase_optimizers"][phase.name])
        stopped_at = state.get("converged_at")
        if ema is not None:
            ema.load_state_dict(state["ema"])
        batcher.load_state_dict(state["batcher"])
        _set_rng_state(state["rng"])
        history = {k: list(v) for k, v in state["history"].items()}
        means.load_state_dict(state["accumulator"], device)
        start = resumed_from = last_ckpt = int(state["step"])
        total_wall = float(state["total_wall_time_s"])

    if config.compile:
        model.compile()

    def checkpoint(step: int, wall: float) -> None:
        assert ckpt_path is not None
        _save_checkpoint(ckpt_path, {
            "version": CHECKPOINT_VERSION,
            "step": step,
            "config": _config_state(config),
            "model_class": f"{type(model).__module__}.{type(model).__qualname__}",
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "phases": [ph.name for ph in phases],
            "phase_optimizers": {ph.name: opt.state_dict() for ph, opt in zip(phases, phase_optimizers)},
            "converged_at": stopped_at,
            "ema": ema.state_dict() if ema is not None else None,
            "batcher": batcher.state_dict(),
            "rng": _rng_state(),
            "history": history,
            "accumulator": means.state_dict(),
            "total_wall_time_s": wall,
        })

    # Non-finite losses: on the CPU each step's loss is checked at once (before the update). On CUDA that would
    # cost a device sync per step, so the first bad step is recorded on the device (no sync) and checked when
    # the interval is logged, before every checkpoint and at the end; the error still names the exact step.
    check_each_step = not cuda and _CHECK_EACH_STEP_ON_CPU
    first_bad = torch.full((), -1, dtype=torch.long, device=device)

    def guard(upto: int) -> None:
        """Raise if a non-finite loss was seen since the last check (one sync)."""
        bad = int(first_bad)
        if bad >= 0:
            values = means.means() if means.sums else {}
            raise NonFiniteLossError(_nonfinite_message(bad, values, last_ckpt, upto=upto))

    def flush(step: int) -> dict[str, float]:
        values = means.means()
        n_before = len(history["step"])
        history["step"].append(step)
        for name, value in values.items():
            history.setdefault(name, [math.nan] * n_before).append(value)
        for column in history.values():
            if len(column) < n_before + 1:
                column.append(math.nan)
        means.reset()
        return values

    def run_objective(fn: Objective, step: int, prefix: str) -> tuple[Tensor, dict[str, Tensor | float]]:
        """Run one objective under autocast, check its loss (see guard) and return (loss, logged terms)."""
        nonlocal first_bad
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=use_amp):
            loss, terms = _check_objective_output(fn(model, batch, step), step)
        detached = loss.detach()
        if check_each_step:
            if not math.isfinite(float(detached)):
                shown = {f"{prefix}loss": float(detached)}
                shown.update({f"{prefix}{k}": float(v.detach() if isinstance(v, Tensor) else v)
                              for k, v in terms.items()})
                raise NonFiniteLossError(_nonfinite_message(step, shown, last_ckpt))
        else:
            first_bad = torch.where((first_bad < 0) & ~torch.isfinite(detached), step, first_bad)
        logged: dict[str, Tensor | float] = {f"{prefix}loss": detached}
        logged.update({f"{prefix}{k}": (v.detach() if isinstance(v, Tensor) else v) for k, v in terms.items()})
        return loss, logged

    def converged_now() -> bool:
        if config.converge_tol is None or done < config.converge_min_steps:
            return False
        change = relative_change(history["step"], history.get(config.converge_on, []),
                                 window=config.converge_window)
        # |change|: a loss that rose by more than the tolerance has not settled (before 2026-11-30 a rise of any
        # size stopped the run: ten stored trainings did so and were trained on)
        return math.isfinite(change) and abs(change) < config.converge_tol

    bar = tqdm(total=config.steps, initial=start, disable=not progress, desc=type(model).__name__,
               unit="step", dynamic_ncols=True, leave=True)
    model.train()
    scheduled = config.warmup_steps > 0 or (config.lr_decay_every > 0 and config.lr_decay != 1.0)
    images_seen = 0
    previous_deterministic = torch.are_deterministic_algorithms_enabled()
    if config.deterministic:
        # cuBLAS reads this when its handle is created; harmless on the CPU or when already set
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
    done = start
    if stopped_at is not None and not converged_now():
        # a checkpoint that an older, looser rule stopped (a rising loss) and that the current rule does not
        # confirm: train on from it, exactly as an uninterrupted run under the current rule would have
        stopped_at = None
    end = stopped_at if stopped_at is not None else config.steps
    base_lrs = [config.lr] + [config.lr if ph.lr is None else ph.lr for ph in phases]
    t0 = time.perf_counter()
    try:
        for step in range(start, end):
            batch = _to_device(next(batcher), device, channels_last)
            if scheduled:
                factor = config.lr_at(step) / config.lr
                for opt, base in zip((optimizer, *phase_optimizers), base_lrs):
                    for group in opt.param_groups:
                        group["lr"] = base * factor
            optimizer.zero_grad(set_to_none=True)
            loss, logged = run_objective(objective, step, "")
            loss.backward()
            if config.grad_clip is not None:
                logged["grad_norm"] = torch.nn.utils.clip_grad_norm_(params, config.grad_clip)
            optimizer.step()
            for phase, phase_optimizer, mine in zip(phases, phase_optimizers, phase_params):
                if step < phase.start_step:
                    continue
                phase_optimizer.zero_grad(set_to_none=True)
                phase_loss, phase_logged = run_objective(phase.objective, step, f"{phase.name}/")
                phase_loss.backward()
                if config.grad_clip is not None:
                    phase_logged[f"{phase.name}/grad_norm"] = torch.nn.utils.clip_grad_norm_(mine, config.grad_clip)
                phase_optimizer.step()
                logged.update(phase_logged)
            if ema is not None:
                ema.update(model)
            means.add(logged)
            images_seen += _batch_len(batch, config.batch_size)
            done = step + 1
            for cb in callbacks:
                cb(done, model, logged)
            if done % config.log_every == 0:
                if not check_each_step:
                    guard(done)
                values = flush(done)
                bar.set_postfix(_format_terms(values), refresh=False)
                if converged_now():
                    stopped_at = done
                    bar.update(1)
                    break
            if (ckpt_path is not None and config.checkpoint_every and done % config.checkpoint_every == 0
                    and done != config.steps):
                guard(done)  # never write a checkpoint after a non-finite loss
                checkpoint(done, total_wall + time.perf_counter() - t0)
                last_ckpt = done
            bar.update(1)
        if stopped_at is not None:
            done = stopped_at
        guard(done)
        if cuda:
            torch.cuda.synchronize(device)
        wall = time.perf_counter() - t0
        if ckpt_path is not None and last_ckpt != done:
            # saved before the last, partial logging interval is flushed, so that extending `steps` later logs
            # exactly the intervals an uninterrupted longer run logs
            checkpoint(done, total_wall + wall)
        if means.sums:
            values = flush(done)
            bar.set_postfix(_format_terms(values), refresh=True)
    finally:
        bar.close()
        if config.deterministic:
            torch.use_deterministic_algorithms(previous_deterministic)

    model.eval()
    rel = relative_change(history["step"], history.get(config.converge_on, []), window=config.converge_window)
    return FitResult(
        model=model,
        ema_model=ema.module if ema is not None else None,
        history=history,
        steps=done,
        wall_time_s=wall,
        images_per_s=images_seen / wall if wall > 0 and images_seen else 0.0,
        resumed_from=resumed_from,
        total_wall_time_s=total_wall + wall,
        run_dir=Path(run_dir) if run_dir is not None else None,
        device=str(device),
        converged=None if config.converge_tol is None else stopped_at is not None,
        rel_change=rel,
    )


def _check_resumable(state: Mapping[str, Any], config: TrainConfig, model: nn.Module, path: Path,
                     phases: tuple[Phase, ...] = ()) -> None:
    saved = dict(state["config"])
    now = _config_state(config)
    diffs = [f"{k}: {saved.get(k)!r} → {now.get(k)!r}" for k in sorted(set(saved) | set(now))
             if k not in _RESUMABLE_CHANGES and _norm(saved.get(k)) != _norm(now.get(k))]
    if diffs:
        raise CheckpointMismatchError(
            f"the checkpoint {path} was written with another TrainConfig ({'; '.join(diffs)}). Use a new run_dir, "
            "restore the old settings, or pass resume=False to start over.")
    model_class = f"{type(model).__module__}.{type(model).__qualname__}"
    if state.get("model_class") != model_class:
        raise CheckpointMismatchError(
            f"the checkpoint {path} holds a {state.get('model_class')}, not a {model_class}. Use a new run_dir or "
            "pass resume=False to start over.")
    saved_phases = list(state.get("phases", []))
    if saved_phases != [ph.name for ph in phases]:
        raise CheckpointMismatchError(
            f"the checkpoint {path} was written with phases {saved_phases}, not {[ph.name for ph in phases]}. Use a "
            "new run_dir or pass resume=False to start over.")
    if int(state["step"]) > config.steps:
        raise CheckpointMismatchError(
            f"the checkpoint {path} is at step {state['step']}, past TrainConfig.steps={config.steps}. Raise steps, "
            "use a new run_dir, or pass resume=False to start over.")


def _norm(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value

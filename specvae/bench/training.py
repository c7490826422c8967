"""Training throughput of each chapter's model families: a plain fp32 loop vs bf16 + channels_last vs ``fit``.

For every :class:`BenchCase` (a chapter's model family as its ``cpu`` preset trains it), :func:`bench_training`
measures images per second three ways, **interleaved in one process** so that all three see the same machine
load (round 1: A, B, C; round 2: A, B, C; ...; the median over rounds is reported):

- ``plain-fp32``: a textbook PyTorch loop (Adam with the case's settings, a random batch of the case's images
  converted to float in [0, 1], ``zero_grad`` / objective / ``backward`` / ``step``), float32, contiguous layout;
- ``plain-bf16-cl``: the same loop under bf16 autocast with the model and batches in channels-last layout;
- ``fit``: :func:`specvae.train.fit` with the case's :class:`~specvae.train.TrainConfig` (precision, layout,
  clipping, EMA, phases, logging — everything the chapter's runs use, checkpoints and the early stop aside).

Options: ``layout=True`` also measures the thread layout of a whole grid — one process with 2 torch threads vs
two 1-thread processes side by side (aggregate images per second) — and ``compile=True`` adds ``fit`` with
``torch.compile``. The warm-up steps of each measurement (and compilation) are not timed.

Images are random ``uint8`` tensors of the case's shape (speed does not depend on content; a fresh clone without
data can run the benchmark).
"""

from __future__ import annotations

import dataclasses
import importlib
import math
import multiprocessing
import statistics
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import torch
from torch import Tensor, nn

from specvae.train import Objective, Phase, TrainConfig

__all__ = ["BenchCase", "BenchConfig", "bench_training", "chapter_families", "store_rows", "VARIANTS"]

#: the three ways every case is trained, in the order they are interleaved
VARIANTS: tuple[str, ...] = ("plain-fp32", "plain-bf16-cl", "fit")


@dataclass
class BenchCase:
    """One model family as a chapter's ``cpu`` preset trains it.

    Args:
        model: builds a fresh model (seeded by the caller).
        objective: ``objective(model)`` gives the ``objective(model, batch, step) -> (loss, terms)`` to train with
            (a function of the model, so losses with state can be built per model).
        images: ``uint8`` images ``(N, C, H, W)`` (random ones are fine; only the shape matters).
        config: the :class:`~specvae.train.TrainConfig` of the chapter's ``cpu`` runs (its ``steps`` is ignored).
        phases: ``phases(model)`` gives the extra optimizers (e.g. a discriminator), or ``None``; the bench
            runs them from the first step whatever their ``start_step`` (it measures the full training step).
        note: one line shown beside the numbers (e.g. "width ÷ 4").
    """

    model: Callable[[], nn.Module]
    objective: Callable[[nn.Module], Objective]
    images: Tensor
    config: TrainConfig
    phases: Callable[[nn.Module], tuple[Phase, ...]] | None = None
    note: str = ""


@dataclass(frozen=True)
class BenchConfig:
    """What one stored benchmark measured (its hash names the result file under ``book/results/bench/``).

    ``cpu`` (the processor's model name) is part of the key: the same benchmark on another kind of CPU (an Intel
    Xeon with AMX against an AMD EPYC without it, say) is another measurement and is stored beside the first,
    not over it.
    """

    chapter: str
    family: str
    preset: str
    steps: int
    warmup: int
    rounds: int
    threads: int
    layout: bool
    compile: bool
    cpu: str


def chapter_families(chapter: str, preset: str = "cpu") -> dict[str, BenchCase]:
    """The :class:`BenchCase` of every model family of ``chapter`` (a chapter module's ``bench_families``)."""
    module = importlib.import_module(chapter if "." in chapter else f"specvae.experiments.{chapter}")
    if not hasattr(module, "bench_families"):
        raise ValueError(f"{module.__name__} defines no bench_families(preset); it has no model families to "
                         "benchmark yet")
    return module.bench_families(preset)


# ------------------------------------------------------------------------------------------------- the loops
def _batches(images: Tensor, batch_size: int, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    n = images.shape[0]
    while True:
        idx = torch.randint(0, n, (batch_size,), generator=gen)
        yield images.index_select(0, idx).to(torch.float32).div_(255.0)


class _PlainLoop:
    """The textbook loop, kept alive across rounds (model and optimizer state persist, like a real run)."""

    def __init__(self, case: BenchCase, *, bf16: bool, channels_last: bool) -> None:
        cfg = case.config
        self.bf16, self.channels_last = bf16, channels_last
        torch.manual_seed(cfg.seed)
        self.model = case.model()
        if channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.objective = case.objective(self.model)
        phases = case.phases(self.model) if case.phases is not None else ()
        claimed = {id(p) for ph in phases for p in ph.params(self.model)}
        main = [p for p in self.model.parameters() if p.requires_grad and id(p) not in claimed]
        self.opts = [(self.objective, main, torch.optim.Adam(main, lr=cfg.lr, betas=cfg.betas), 0)]
        for ph in phases:
            mine = [p for p in ph.params(self.model) if p.requires_grad]
            opt = torch.optim.Adam(mine, lr=ph.lr or cfg.lr, betas=ph.betas or cfg.betas)
            self.opts.append((ph.objective, mine, opt, 0))  # always active: the bench measures the full step
        self.batches = _batches(case.images, cfg.batch_size, cfg.seed)
        self.batch_size = cfg.batch_size
        self.step = 0
        self.model.train()

    def run(self, steps: int) -> float:
        """Train ``steps`` steps; return the seconds they took."""
        t0 = time.perf_counter()
        for _ in range(steps):
            batch = next(self.batches)
            if self.channels_last:
                batch = batch.contiguous(memory_format=torch.channels_last)
            for objective, _params, opt, start in self.opts:
                if self.step < start:
                    continue
                opt.zero_grad(set_to_none=True)
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
                    loss, _ = objective(self.model, batch, self.step)
                loss.backward()
                opt.step()
            self.step += 1
        return time.perf_counter() - t0


class _FitLoop:
    """``fit`` on one persistent model; each round is a new ``fit`` call timed from its ``warmup``-th step."""

    def __init__(self, case: BenchCase, *, compile: bool = False) -> None:
        self.case = case
        torch.manual_seed(case.config.seed)
        self.model = case.model()
        self.objective = case.objective(self.model)
        self.phases = case.phases(self.model) if case.phases is not None else ()
        self.compile = compile

    def run(self, steps: int, warmup: int) -> float:
        from specvae.train import fit

        marks: dict[str, float] = {}

        def timer(step: int, model: nn.Module, terms: Mapping[str, Any]) -> None:
            if step == warmup:
                marks["start"] = time.perf_counter()

        cfg = dataclasses.replace(self.case.config, steps=warmup + steps, checkpoint_every=0, converge_tol=None,
                                  compile=self.compile, device="cpu")
        phases = tuple(dataclasses.replace(ph, start_step=0) for ph in self.phases)  # measure the full step
        fit(self.model, self.objective, self.case.images, cfg, progress=False, callbacks=[timer], phases=phases)
        return time.perf_counter() - marks["start"]


def _time_variant(loop: Any, steps: int, warmup: int) -> float:
    if isinstance(loop, _FitLoop):
        return loop.run(steps, warmup)
    loop.run(warmup)
    return loop.run(steps)


# -------------------------------------------------------------------------------------------- layout worker
def _layout_worker(chapter: str, family: str, preset: str, steps: int, warmup: int, threads: int,
                   barrier: Any) -> float:
    torch.set_num_threads(threads)
    torch.set_flush_denormal(True)
    case = chapter_families(chapter, preset)[family]
    loop = _FitLoop(case)
    loop.run(1, warmup)  # build and warm up before the common start
    barrier.wait()
    seconds = loop.run(steps, 1)
    return steps * case.config.batch_size / seconds


def _layout(chapter: str, family: str, preset: str, steps: int, warmup: int) -> dict[str, float]:
    """Aggregate img/s of ``fit``: one process with 2 threads vs two 1-thread processes side by side."""
    ctx = multiprocessing.get_context("spawn")
    out: dict[str, float] = {}
    for name, procs, threads in (("1x2-threads", 1, 2), ("2x1-thread", 2, 1)):
        with ctx.Manager() as manager:
            barrier = manager.Barrier(procs)
            with ctx.Pool(procs) as pool:
                results = [pool.apply_async(_layout_worker, (chapter, family, preset, steps, warmup, threads, barrier))
                           for _ in range(procs)]
                out[name] = float(sum(r.get() for r in results))
    return out


# ------------------------------------------------------------------------------------------------ the bench
def bench_training(
    chapters: Sequence[str],
    *,
    families: Sequence[str] | None = None,
    preset: str = "cpu",
    steps: int = 30,
    warmup: int = 5,
    rounds: int = 3,
    threads: int = 1,
    layout: bool = False,
    compile: bool = False,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Measure every family of ``chapters`` (or only ``families``); one row per (chapter, family).

    Each row: ``chapter, family, note, batch_size, n_params, threads`` and, per variant, ``<variant>_img_s`` (median
    over ``rounds``) and ``<variant>_rounds`` (each round's value), ``fit_vs_plain_fp32`` and
    ``bf16_cl_vs_plain_fp32`` (ratios of the medians); with ``layout``: ``layout_1x2-threads_img_s`` and
    ``layout_2x1-thread_img_s``; with ``compile``: ``fit-compile_img_s`` and ``fit_compile_vs_fit``.

    Raises:
        ValueError: an unknown chapter or family (the message lists the known ones), or bad sizes.
    """
    for name, value, low in (("steps", steps, 1), ("warmup", warmup, 1), ("rounds", rounds, 1),
                             ("threads", threads, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    torch.set_flush_denormal(True)
    rows: list[dict[str, Any]] = []
    try:
        plan: list[tuple[str, str, BenchCase]] = []
        for chapter in chapters:
            cases = chapter_families(chapter, preset)
            wanted = list(cases) if not families else [f for f in families if f in cases]
            unknown = [] if not families else [f for f in families if not any(f in chapter_families(c, preset)
                                                                                  for c in chapters)]
            if unknown:
                raise ValueError(f"unknown model family {unknown} for chapter(s) {list(chapters)}; known: "
                                 + "; ".join(f"{c}: {', '.join(chapter_families(c, preset))}" for c in chapters))
            plan += [(chapter, fam, cases[fam]) for fam in wanted]
        for chapter, family, case in plan:
            if progress:
                print(f"bench {chapter}/{family}: {len(VARIANTS) + int(compile)} variants × {rounds} rounds × "
                      f"{steps} steps (+{warmup} warm-up)", flush=True)
            loops: dict[str, Any] = {
                "plain-fp32": _PlainLoop(case, bf16=False, channels_last=False),
                "plain-bf16-cl": _PlainLoop(case, bf16=True, channels_last=True),
                "fit": _FitLoop(case),
            }
            if compile:
                loops["fit-compile"] = _FitLoop(case, compile=True)
                loops["fit-compile"].run(1, 3)  # compile outside the timed rounds
            per: dict[str, list[float]] = {name: [] for name in loops}
            for _ in range(rounds):
                for name, loop in loops.items():
                    seconds = _time_variant(loop, steps, warmup)
                    per[name].append(steps * case.config.batch_size / seconds)
            med = {name: statistics.median(v) for name, v in per.items()}
            row: dict[str, Any] = {
                "chapter": chapter, "family": family, "note": case.note, "batch_size": case.config.batch_size,
                "precision": case.config.precision, "channels_last": case.config.channels_last,
                "n_params": int(sum(p.numel() for p in loops["fit"].model.parameters())), "threads": threads,
                "image_shape": list(case.images.shape[1:]),
            }
            for name in loops:
                row[f"{name}_img_s"] = med[name]
                row[f"{name}_rounds"] = per[name]
            row["fit_vs_plain_fp32"] = med["fit"] / med["plain-fp32"]
            row["bf16_cl_vs_plain_fp32"] = med["plain-bf16-cl"] / med["plain-fp32"]
            if compile:
                row["fit_compile_vs_fit"] = med["fit-compile"] / med["fit"]
            if layout:
                for name, value in _layout(chapter, family, preset, steps, warmup).items():
                    row[f"layout_{name}_img_s"] = value
            if progress:
                print(f"  plain fp32 {med['plain-fp32']:.0f} img/s · bf16+cl {med['plain-bf16-cl']:.0f} "
                      f"({row['bf16_cl_vs_plain_fp32']:.2f}×) · fit {med['fit']:.0f} ({row['fit_vs_plain_fp32']:.2f}×)"
                      + (f" · compile {med['fit-compile']:.0f}" if compile else "")
                      + (f" · layout 1×2 {row['layout_1x2-threads_img_s']:.0f} / 2×1 "
                         f"{row['layout_2x1-thread_img_s']:.0f}" if layout else ""), flush=True)
            rows.append(row)
    finally:
        torch.set_num_threads(previous_threads)
    return rows


def store_rows(rows: Sequence[Mapping[str, Any]], *, preset: str, steps: int, warmup: int, rounds: int,
               layout: bool, compile: bool) -> list[Any]:
    """Save each row under ``book/results/bench/`` (one JSON per chapter/family, with provenance); return paths."""
    from specvae.experiments.provenance import cpu_name
    from specvae.experiments.store import ResultStore

    store = ResultStore("bench")
    paths = []
    for row in rows:
        cfg = BenchConfig(chapter=row["chapter"], family=row["family"], preset=preset, steps=steps, warmup=warmup,
                          rounds=rounds, threads=int(row["threads"]), layout=layout, compile=compile,
                          cpu=cpu_name())
        metrics = {k: v for k, v in row.items() if isinstance(v, (int, float)) and not isinstance(v, bool)
                   and math.isfinite(float(v))}
        extra = {k: v for k, v in row.items() if k not in metrics}
        paths.append(store.save(cfg, metrics=metrics, extra=extra, preset=preset))
    return paths

"""The grid runner: run the configs that have no stored result, one by one or as several processes side by side.

``run_grid(configs, run_fn, store)`` calls ``run_fn(cfg)`` for each config without a stored result and saves
what it returns with ``store.save``. ``run_fn`` is a module-level function (so worker processes can import it),
usually a chapter's ``run``, returning a dict::

    {"metrics": {...},            # required
     "arrays": {...}, "history": {...}, "extra": {...},   # optional, see ResultStore.save
     "npz": {"samples": {"x": ..., "recon": ...}},        # optional: larger arrays saved with save_npz
     "wall_time_s": 12.3,         # optional; measured around run_fn when absent
     "device": "cuda"}            # optional; the device used, for the provenance

With ``workers > 1`` the runs go to a pool of *spawned* processes (fresh interpreters: safe with CUDA); on one
GPU they simply share it, which pays for small models (measured while the project was set up: four 32×32 VAE
runs side by side gave about 3× the throughput of one). On the CPU each worker gets ``cpu_count // workers``
torch threads, and ends with the grid's process (on Linux: killing ``specvae run`` stops its workers too; a killed
run resumes from its checkpoint). Each worker saves its own result, so a finished run is kept whatever happens to
the others. A failing run is reported with its config and traceback and does not stop the others; at the end
:class:`GridError` summarises the failures.

Each saved result records the fingerprint of the code it ran with (``provenance.code``, see
:mod:`~specvae.experiments.fingerprint`): the definitions ``run_fn`` reaches, computed just before the run
starts. Inside ``track_code(rerun_stale=True)`` (``specvae run --rerun-stale``) stored runs of stale code count
as missing and are retrained; their checkpoint folders (``store.run_dir(cfg)``), which ``fit`` would otherwise
resume from, are removed first unless they hold a checkpoint of the current code (an interrupted rerun).
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from specvae.experiments import fingerprint as _fingerprint
from specvae.experiments.hashing import config_hash
from specvae.experiments.store import ResultStore

__all__ = ["run_grid", "GridError", "RunFailure", "RUN_OUTPUT_KEYS", "save_run_output", "only_datasets"]

#: keys a ``run_fn`` may return
RUN_OUTPUT_KEYS = ("metrics", "arrays", "history", "extra", "npz", "wall_time_s", "device", "preset", "seed")


@dataclass
class RunFailure:
    """One failed run of a grid: its config, the error line and the worker's traceback."""

    config: Any
    error: str
    traceback: str


class GridError(RuntimeError):
    """Some runs of a grid failed (``failures``); the others were run and saved (``paths``)."""

    def __init__(self, failures: list[RunFailure], paths: list[Path | None]) -> None:
        self.failures = failures
        self.paths = paths
        lines = [f"{len(failures)} run(s) of the grid failed (the others were saved):"]
        for failure in failures:
            lines.append(f"  - {failure.config!r}\n    {failure.error}")
        lines.append("Last traceback:\n" + failures[-1].traceback)
        super().__init__("\n".join(lines))


def save_run_output(store: ResultStore, cfg: Any, output: Mapping[str, Any], wall_time_s: float | None = None,
                    *, code: Mapping[str, Any] | None = None) -> Path:
    """Check what a ``run_fn`` returned and save it with ``store.save`` (and ``save_npz``); return the JSON path."""
    if not isinstance(output, Mapping):
        raise TypeError(f"run_fn must return a dict with at least 'metrics'; it returned {type(output).__name__}")
    unknown = sorted(set(output) - set(RUN_OUTPUT_KEYS))
    if unknown:
        raise ValueError(f"run_fn returned unknown key(s) {', '.join(unknown)}; allowed: {', '.join(RUN_OUTPUT_KEYS)}")
    if "metrics" not in output:
        raise ValueError("run_fn must return a dict with a 'metrics' entry (name -> number)")
    for name, arrays in (output.get("npz") or {}).items():
        store.save_npz(cfg, name, **arrays)
    return store.save(
        cfg,
        metrics=output["metrics"],
        arrays=output.get("arrays"),
        history=output.get("history"),
        extra=output.get("extra"),
        wall_time_s=output.get("wall_time_s", wall_time_s),
        preset=output.get("preset"),
        seed=output.get("seed"),
        device=output.get("device"),
        code=code,
    )


def _run_and_save(run_fn: Callable[[Any], Mapping[str, Any]], store: ResultStore, cfg: Any) -> tuple[str, Any, str]:
    """Run one config and save it; never raises an ``Exception`` (returns ``("ok", path, "")`` or an error)."""
    try:
        module, entry = _fingerprint.entry_of(run_fn)
        # before the run: the code as it is when the run starts (an edit made during a long run is not claimed)
        code = (_fingerprint.code_record(module, entry) if module else None) or {}
        start = time.perf_counter()
        output = run_fn(cfg)
        path = save_run_output(store, cfg, output, time.perf_counter() - start, code=code)
        return "ok", str(path), ""
    except Exception as err:  # noqa: BLE001 - reported to the parent with the traceback
        return "error", f"{type(err).__name__}: {err}", traceback.format_exc()


def _die_with_parent(parent: int | None) -> None:
    """Ask Linux to send this worker SIGTERM when the process that spawned it ends (``prctl(PR_SET_PDEATHSIG)``).

    Without it, killing ``specvae run`` (SIGTERM or SIGKILL to its pid, e.g. ``pkill -f "specvae run"``) left its
    spawned workers training on as orphans, beside a restarted grid that could pick the same runs (seen
    2026-11-30). A worker killed this way resumes from its run's checkpoint next time. If the parent is already
    gone when this runs (a race the signal cannot cover), the worker exits at once. No-op off Linux.

    Ref: prctl(2), ``PR_SET_PDEATHSIG`` (= 1); the signal fires when the spawning thread ends, and the pool spawns
    its workers from the thread that submits the runs, which waits for them.
    """
    if not sys.platform.startswith("linux") or parent is None:
        return
    import ctypes
    import signal

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGTERM), 0, 0, 0)
    except (OSError, AttributeError):  # pragma: no cover - no prctl in this libc
        return
    if os.getppid() != parent:
        os._exit(1)


def _init_worker(threads: int, parent: int | None = None) -> None:
    _die_with_parent(parent)
    try:
        import torch

        torch.set_num_threads(max(1, threads))
    except ImportError:  # pragma: no cover
        pass


def _check_spawnable(run_fn: Callable[..., Any]) -> None:
    module = getattr(run_fn, "__module__", None)
    name = getattr(run_fn, "__qualname__", "")
    if "<lambda>" in name or "<locals>" in name:
        raise ValueError(f"run_fn {name!r} is a lambda or a nested function, which worker processes cannot import; "
                         "use a module-level function (e.g. specvae.experiments.<chapter>.run) or workers=1")
    if module == "__main__" and not getattr(sys.modules.get("__main__"), "__file__", None):
        raise ValueError("run_fn is defined in an interactive session (notebook), which spawned worker processes "
                         "cannot import; use a function from a module (e.g. specvae.experiments.<chapter>.run) "
                         "or workers=1")


def only_datasets(configs: Sequence[Any], datasets: Sequence[str] | None, known: Sequence[str]) -> list[Any]:
    """The configs of ``configs`` whose ``dataset`` is one of ``datasets`` (all of them when ``None``), in order.

    ``known``: the chapter's data set names (a name outside them is an error, not an empty grid).

    Raises:
        ValueError: a name of ``datasets`` that is not in ``known``.
    """
    if datasets is None:
        return list(configs)
    bad = [d for d in datasets if d not in known]
    if bad:
        raise ValueError(f"unknown data sets {bad}; choose from {tuple(known)}")
    return [c for c in configs if c.dataset in datasets]


def run_grid(
    configs: Sequence[Any],
    run_fn: Callable[[Any], Mapping[str, Any]],
    store: ResultStore,
    *,
    workers: int = 1,
    skip_done: bool = True,
    progress: bool = True,
) -> list[Path | None]:
    """Run every config of ``configs`` that has no stored result; save each result in ``store``.

    Args:
        configs: run configs (dataclasses); duplicates (same hash) run once.
        run_fn: ``run_fn(cfg) -> dict`` (see the module docstring); module-level when ``workers > 1``.
        store: where results are looked up and saved.
        workers: processes side by side (1 = run in this process).
        skip_done: skip configs whose result is stored (``False`` reruns and overwrites them).
        progress: tqdm bar over the runs.

    Returns:
        The JSON path of each config's result, in the order of ``configs``.

    Raises:
        GridError: after all runs ended, if any failed (with each failed config and its traceback).
        ResultMismatchError: a stored file at a config's path belongs to another config (checked before running).
    """
    from tqdm.auto import tqdm

    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    if not callable(run_fn):
        raise TypeError("run_fn must be a function run_fn(cfg) -> dict")
    if workers > 1:
        _check_spawnable(run_fn)
    configs = list(configs)
    hashes = [config_hash(cfg) for cfg in configs]
    unique: dict[str, Any] = {}
    for digest, cfg in zip(hashes, configs):
        unique.setdefault(digest, cfg)
    todo = [(d, c) for d, c in unique.items() if not (skip_done and store.exists(c))]
    tracker = _fingerprint.active_tracker()
    reruns = [c for _, c in todo if tracker is not None and tracker.wants_rerun(store.path_for(c))]
    rerun_digests = {config_hash(c) for c in reruns}
    if reruns:
        module, entry = _fingerprint.entry_of(run_fn)
        code = _fingerprint.code_record(module, entry) if module else None
        removed = sum(_fingerprint.prepare_rerun_dir(store.run_dir(c), code) for c in reruns)
        if progress:
            print(f"retraining {len(reruns)} run(s) of {store.chapter} whose code is stale or unknown"
                  + (f" (removed {removed} checkpoint folder(s) of the old code)" if removed else ""),
                  file=sys.stderr, flush=True)
    done_paths: dict[str, Path] = {d: store.path_for(c) for d, c in unique.items()}
    failures: list[RunFailure] = []
    failed: set[str] = set()

    bar = tqdm(total=len(todo), disable=not progress or not todo, desc=f"runs of {store.chapter}", unit="run")

    def record(digest: str, cfg: Any, outcome: tuple[str, Any, str]) -> None:
        status, value, tb = outcome
        if status != "ok":
            failures.append(RunFailure(cfg, value, tb))
            failed.add(digest)
            bar.write(f"run failed: {cfg!r}\n  {value}")
        elif digest in rerun_digests:
            tracker.note_rerun(store.path_for(cfg))
        bar.update(1)
        bar.set_postfix(failed=len(failures), refresh=False)

    try:
        if workers == 1 or len(todo) <= 1:
            for digest, cfg in todo:
                record(digest, cfg, _run_and_save(run_fn, store, cfg))
        else:
            threads = max(1, (os.cpu_count() or 1) // workers)
            context = multiprocessing.get_context("spawn")
            with cf.ProcessPoolExecutor(max_workers=min(workers, len(todo)), mp_context=context,
                                        initializer=_init_worker, initargs=(threads, os.getpid())) as pool:
                futures = {pool.submit(_run_and_save, run_fn, store, cfg): (digest, cfg) for digest, cfg in todo}
                try:
                    for future in cf.as_completed(futures):
                        digest, cfg = futures[future]
                        try:
                            outcome = future.result()
                        except Exception as err:  # noqa: BLE001 - e.g. a worker killed (BrokenProcessPool)
                            outcome = ("error", f"{type(err).__name__}: {err}", traceback.format_exc())
                        record(digest, cfg, outcome)
                except BaseException:
                    pool.shutdown(wait=False, cancel_futures=True)
                    raise
    finally:
        bar.close()

    paths: list[Path | None] = [None if d in failed else done_paths[d] for d in hashes]
    if failures:
        raise GridError(failures, paths)
    return paths

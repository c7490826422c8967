"""Provenance of a result: which code, on which software and hardware, when.

:func:`provenance` returns a flat dict stored with every result (and shown in chapter banners):
git commit and dirty flag of the project checkout, specvae / torch / NumPy / Python versions, the device name
(``torch.cuda.get_device_name`` or the CPU model from ``/proc/cpuinfo``), the UTC time, and — when given —
preset, seed, wall time and ``code``, the fingerprint of the code the run depends on
(:mod:`~specvae.experiments.fingerprint`; the results store adds it).
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

__all__ = ["provenance", "git_commit", "device_name", "cpu_name"]


def _git(root: Path, *args: str) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=20,
                             check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def git_commit(root: str | os.PathLike | None = None) -> tuple[str | None, bool | None]:
    """``(commit, dirty)`` of the git checkout at ``root`` (default: :func:`specvae.paths.project_root`).

    ``dirty`` is True when tracked files differ from the commit (untracked files, such as new results, do not
    count). Both are ``None`` outside a git checkout or without ``git``.
    """
    from specvae.paths import project_root

    folder = Path(root) if root is not None else project_root()
    commit = _git(folder, "rev-parse", "HEAD")
    if commit is None:
        return None, None
    status = _git(folder, "status", "--porcelain", "--untracked-files=no")
    return commit, (bool(status) if status is not None else None)


def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo``'s "model name", else what :mod:`platform` knows)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def device_name(device: Any = None) -> str:
    """Human-readable name of ``device`` (``None``/"auto": the device ``fit`` would pick)."""
    import torch

    if device is None or device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    if dev.type == "cuda" and torch.cuda.is_available():
        return torch.cuda.get_device_name(dev.index if dev.index is not None else torch.cuda.current_device())
    if dev.type == "cpu":
        return f"CPU: {cpu_name()} ({os.cpu_count()} logical cores, {torch.get_num_threads()} torch threads)"
    return str(dev)


def provenance(device: Any = None, *, preset: str | None = None, seed: int | None = None,
               wall_time_s: float | None = None, code: dict[str, Any] | None = None) -> dict[str, Any]:
    """Provenance record for a result computed now on ``device`` (see the module docstring for the keys)."""
    import numpy
    import torch

    import specvae

    commit, dirty = git_commit()
    record: dict[str, Any] = {
        "git_commit": commit,
        "git_dirty": dirty,
        "specvae_version": getattr(specvae, "__version__", None),
        "torch_version": torch.__version__,
        "numpy_version": numpy.__version__,
        "python_version": platform.python_version(),
        "platform": platform.platform(terse=True),
        "device": device_name(device),
        "cuda_version": torch.version.cuda if torch.cuda.is_available() else None,
        "timestamp_utc": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "preset": preset,
        "seed": seed,
        "wall_time_s": wall_time_s,
        "code": code,
    }
    return record

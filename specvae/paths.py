"""Where specvae looks for data, weights, caches and results.

Nothing in the package names a machine-specific folder. Every location is resolved in this order:
an explicit argument, then an environment variable, then a per-user default folder.

========================  =======================  ===============================================
what                      environment variable     default
========================  =======================  ===============================================
data sets                 ``SPECVAE_DATA``         ``$XDG_CACHE_HOME/specvae/data`` (``~/.cache/...``)
pretrained weights        ``SPECVAE_WEIGHTS``      (searched first; then the cache below)
specvae's own cache       ``SPECVAE_CACHE``        ``$XDG_CACHE_HOME/specvae``
results of runs           ``SPECVAE_RESULTS``      ``<project root>/book/results``
checkpoints of runs       ``SPECVAE_RUNS``         ``<project root>/runs`` (never committed)
========================  =======================  ===============================================

The *project root* is the nearest folder, from the current directory upwards, holding ``_toc.yml`` and
``pyproject.toml`` (a checkout of the specvae repository); failing that, the folder above the installed
package when it is an editable install; failing that, the current directory.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = [
    "cache_dir",
    "data_root",
    "weights_dirs",
    "project_root",
    "results_root",
    "runs_root",
]


def _env_path(name: str) -> Path | None:
    value = os.environ.get(name, "").strip()
    return Path(value).expanduser() if value else None


def cache_dir() -> Path:
    """specvae's own cache folder (``SPECVAE_CACHE``, else ``$XDG_CACHE_HOME/specvae``). Not created here."""
    explicit = _env_path("SPECVAE_CACHE")
    if explicit is not None:
        return explicit
    xdg = _env_path("XDG_CACHE_HOME") or Path.home() / ".cache"
    return xdg / "specvae"


def data_root(root: str | os.PathLike | None = None) -> Path:
    """The folder that holds the data sets: ``root`` if given, else ``SPECVAE_DATA``, else ``cache_dir()/data``."""
    if root is not None:
        return Path(root).expanduser()
    return _env_path("SPECVAE_DATA") or cache_dir() / "data"


def weights_dirs(path: str | os.PathLike | None = None) -> list[Path]:
    """Folders searched for pretrained weights, in order: ``path``, ``SPECVAE_WEIGHTS``, ``cache_dir()/weights``."""
    dirs: list[Path] = []
    if path is not None:
        dirs.append(Path(path).expanduser())
    env = _env_path("SPECVAE_WEIGHTS")
    if env is not None:
        dirs.append(env)
    dirs.append(cache_dir() / "weights")
    return dirs


def project_root() -> Path:
    """The root of the specvae checkout in use (see the module docstring for the rule)."""
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / "_toc.yml").is_file() and (folder / "pyproject.toml").is_file():
            return folder
    package_parent = Path(__file__).resolve().parent.parent
    if (package_parent / "pyproject.toml").is_file():
        return package_parent
    return here


def results_root() -> Path:
    """Where run results (one JSON per run) live: ``SPECVAE_RESULTS`` or ``<project root>/book/results``."""
    return _env_path("SPECVAE_RESULTS") or project_root() / "book" / "results"


def runs_root() -> Path:
    """Where checkpoints of runs in progress live: ``SPECVAE_RUNS`` or ``<project root>/runs``."""
    return _env_path("SPECVAE_RUNS") or project_root() / "runs"

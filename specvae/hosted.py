"""Rerunning a chapter away from this repository: on a hosted notebook service (Colab, Kaggle) with a GPU.

The book's chapter pages have a launch button (``_config.yml``: ``launch_buttons.colab_url``) that opens the
executed notebook from :data:`REPOSITORY`. Its first code cell, hidden in the book (tag ``remove-cell``), is the
one line :func:`install_cell` writes: it installs specvae (with the ``[book]`` extra the chapters import) from
:data:`REPOSITORY` when the package is missing, then calls :func:`prepare` with the data sets and pretrained files
the chapter reads. Set ``preset = "gpu"`` in the parameters cell and run all cells.

:func:`prepare`, before any training:

- on a hosted runtime (or with ``download=True``) downloads what can be downloaded there: MNIST and CIFAR-10
  (torchvision's downloaders) and the pretrained files (:func:`specvae.metrics.weights.fetch_all`);
- says which data sets cannot be had there (the faces and the ImageNet samples are not public downloads) and
  what the chapter then does: at ``smoke`` it runs on generated Shapes in their place; at ``cpu``, ``gpu`` and
  ``paper`` it stops with an error naming the files to copy (upload them or mount a drive, then set
  ``SPECVAE_DATA`` or the chapter's ``data_root`` parameter).

On this repository's machines the line installs nothing and :func:`prepare` only speaks when something is missing.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Sequence

__all__ = ["REPOSITORY", "install_cell", "is_hosted", "prepare"]

#: The public repository: launch buttons open chapters from it, and :func:`install_cell` installs from it.
#: Keep equal to ``repository.url`` in ``_config.yml`` (a test checks).
REPOSITORY = "https://github.com/specvae/specvae"

#: Data sets that torchvision can download (``load_dataset(..., download=True)``) on a machine with internet.
_DOWNLOADABLE = ("mnist", "cifar10")


def install_cell(datasets: Sequence[str] = (), weights: Sequence[str] = (), extras: Sequence[str] = ("book",)) -> str:
    """The source of a chapter's first code cell (one line; tag the cell ``remove-cell``).

    ``datasets`` and ``weights`` are the data sets (:data:`specvae.data.DATASETS`) and pretrained files
    (:data:`specvae.metrics.weights.WEIGHTS`) the chapter reads; the line passes them to :func:`prepare`.
    ``extras`` are the optional dependency groups of ``pyproject.toml`` the chapter needs (``book`` always;
    chapter 3 adds ``text`` for its sentence encoder).
    """
    unknown = sorted(set(extras) - {"book", "dev", "text"})
    if unknown or "book" not in extras:
        raise ValueError(f"install_cell: extras {list(extras)} must include 'book' and name only book, dev or text "
                         f"(unknown: {unknown}); they are the optional groups of pyproject.toml")
    spec = f"specvae[{','.join(extras)}]"
    return ('import importlib.util as _u, subprocess as _s, sys as _y; _u.find_spec("specvae") or '
            f'_s.run([_y.executable, "-m", "pip", "install", "-q", "{spec} @ git+{REPOSITORY}"], check=True); '
            f"import specvae.hosted; specvae.hosted.prepare({json.dumps(list(datasets))}, {json.dumps(list(weights))})")


def is_hosted() -> bool:
    """True on Google Colab or Kaggle (where :func:`prepare` downloads by default)."""
    return ("google.colab" in sys.modules or bool(os.environ.get("COLAB_RELEASE_TAG"))
            or bool(os.environ.get("KAGGLE_KERNEL_RUN_TYPE")))


def prepare(datasets: Sequence[str] = (), weights: Sequence[str] = (), *, download: bool | None = None,
            root: str | os.PathLike | None = None) -> dict[str, list[str]]:
    """Get what a chapter reads where it can be had, and say before training what is missing and what follows.

    Args:
        datasets: the data sets the chapter reads.
        weights: the pretrained files the chapter loads.
        download: fetch MNIST / CIFAR-10 and the pretrained files when missing; ``None`` = only on a hosted
            runtime (:func:`is_hosted`).
        root: the data folder (default ``SPECVAE_DATA``, else ``~/.cache/specvae/data``).

    Returns ``{"missing_data": [...], "missing_weights": [...]}`` after any downloads. Prints one notice when
    either is non-empty (nothing otherwise).
    """
    from specvae import paths
    from specvae.data import DATASETS, DatasetNotFoundError, check_data, load_dataset
    from specvae.metrics import weights as W

    unknown = [d for d in datasets if d not in DATASETS] + [w for w in weights if w not in W.WEIGHTS]
    if unknown:
        raise ValueError(f"prepare(): unknown names {unknown}; data sets: {', '.join(DATASETS)}; "
                         f"pretrained files: {', '.join(W.WEIGHTS)}")
    download = is_hosted() if download is None else download
    present = {r["name"] for r in check_data(root) if r["present"]}
    missing = [d for d in datasets if d not in present]
    failed: dict[str, str] = {}
    if download:
        for name in [d for d in missing if d in _DOWNLOADABLE]:
            try:
                for split in ("train", "test"):
                    load_dataset(name, split, root=root, download=True, limit=1, progress=False)
            except (DatasetNotFoundError, OSError) as exc:
                failed[name] = str(exc).splitlines()[0]
        present = {r["name"] for r in check_data(root) if r["present"]}
        missing = [d for d in datasets if d not in present]
        lacking = [w for w in weights if not W.check_weights((w,))[0]["present"]]
        if lacking:
            try:
                W.fetch_all(names=tuple(lacking), verbose=False)
            except W.WeightsError as exc:
                failed.update({w: "see `specvae weights fetch`" for w in lacking if w in str(exc)})
    missing_w = [w for w in weights if not W.check_weights((w,))[0]["present"]]
    if missing or missing_w:
        lines = ["specvae: before this chapter trains, note what this machine lacks."]
        data_root = paths.data_root(root)
        for name in missing:
            info = DATASETS[name]
            why = (f"the download failed ({failed[name]})" if name in failed else
                   "it can be downloaded here: rerun with download=True" if info.downloadable and not download else
                   "it cannot be downloaded here")
            lines.append(f"- data set {name!r} is not under {data_root}: {why}. To use it: {info.how_to_get} "
                         "(then set SPECVAE_DATA, or the chapter's data_root parameter, to that folder).")
        if missing:
            lines.append("  At the smoke preset the chapter runs on generated Shapes images in place of "
                         f"{', '.join(missing)} and says so; at cpu, gpu and paper it stops with an error.")
        for name in missing_w:
            lines.append(f"- pretrained file {name!r} is missing ({W.WEIGHTS[name].description}): run "
                         "`specvae weights fetch`, or `specvae weights fetch --from DIR` with a folder that holds "
                         "it; the runs that need it fail without it.")
        print("\n".join(lines), flush=True)
    return {"missing_data": missing, "missing_weights": missing_w}

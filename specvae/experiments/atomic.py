"""Atomic file writes: a reader sees the old file or the new one, never half of either.

Every file specvae writes for later reuse (result JSONs, ``.npz`` samples, training checkpoints) goes through
:func:`atomic_write`: the bytes go to a temporary file *in the same folder*, are flushed and ``fsync``-ed, and the
temporary file then replaces the target with :func:`os.replace` (atomic on POSIX and Windows when both lie on one
file system). If anything fails or the process is interrupted before the replace, the temporary file is removed
and the old target is left untouched.

Ref: the write-temp/fsync/rename pattern of POSIX ``rename(2)``; Python docs of :func:`os.replace`.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from pathlib import Path
from typing import BinaryIO, Callable

__all__ = ["atomic_write", "atomic_write_bytes", "atomic_write_text", "remove_stale_temps", "TEMP_SUFFIX"]

#: suffix of the temporary files (``.<name>.<random>.tmp``); a leftover one is never read as a result.
TEMP_SUFFIX = ".tmp"


def _fsync_dir(folder: Path) -> None:
    """Flush the folder entry so the rename itself survives a power cut (no-op where unsupported)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # e.g. Windows cannot open folders
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: str | os.PathLike, writer: Callable[[BinaryIO], None]) -> Path:
    """Write ``path`` atomically: ``writer(f)`` fills a binary temp file that then replaces ``path``.

    Args:
        path: the target file; its folder is created when missing.
        writer: called once with a binary file object open for writing.

    Returns:
        The target path.

    On any exception (``KeyboardInterrupt`` included) the temporary file is removed, the old ``path`` (if any)
    is left as it was, and the exception propagates.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=TEMP_SUFFIX)
    try:
        with os.fdopen(fd, "wb") as handle:
            writer(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    _fsync_dir(target.parent)
    return target


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_write`)."""
    return atomic_write(path, lambda handle: handle.write(data))


def atomic_write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_write`)."""
    return atomic_write_bytes(path, text.encode(encoding))


def remove_stale_temps(target: str | os.PathLike, older_than_s: float = 0.0) -> list[Path]:
    """Remove temporary files that a killed writer of ``target`` left behind (``SIGKILL`` skips all cleanup).

    Only files named like :func:`atomic_write`'s temporaries *for this target* and last modified more than
    ``older_than_s`` seconds ago are removed (a concurrent writer's fresh temp file is left alone).

    Returns:
        The removed paths.
    """
    target = Path(target)
    if not target.parent.is_dir():
        return []
    now = time.time()
    removed = []
    for tmp in target.parent.glob(f".{target.name}.*{TEMP_SUFFIX}"):
        try:
            if now - tmp.stat().st_mtime >= older_than_s:
                tmp.unlink()
                removed.append(tmp)
        except FileNotFoundError:
            continue
    return removed

"""jemalloc for long CPU training runs: ``specvae run`` re-executes itself with jemalloc preloaded when it is installed.

Why: PyTorch's CPU allocator does not cache freed blocks, and glibc's ``malloc`` serves every block above its mmap
threshold (up to 32 MiB) with a fresh ``mmap`` and returns it with ``munmap`` — so a model whose step allocates large
temporaries pays for page faults on every step. Measured 2026-11-30 on the project's 2-core machine (one torch
thread): chapter 4's FQ-VAE on the 64 × 64 faces spent 1.66 of its 3.57 s a step in the kernel (≈ 820 k minor page
faults a step); with jemalloc preloaded and its decay off (freed pages are kept for reuse) the step took **1.81 s**
with no faults. (Tuning glibc from Python with ``mallopt`` reached 2.07 s but grew the heap by each large block, so
it was dropped.) The allocator does not change any number a run computes, only where its memory comes from.

Control: ``SPECVAE_ALLOCATOR=system`` keeps the process as it is; otherwise, on Linux, when ``libjemalloc.so.2`` is
found (Debian/Ubuntu: ``apt install libjemalloc2``) and is not preloaded yet, :func:`maybe_reexec` replaces the
process by ``python -m specvae.cli <same arguments>`` with ``LD_PRELOAD`` and ``MALLOC_CONF`` set (a ``MALLOC_CONF``
of your own is kept). Worker processes started by :func:`specvae.experiments.run_grid` inherit the environment.

Ref: jemalloc's tuning guide (``dirty_decay_ms``/``muzzy_decay_ms``: ``-1`` disables purging); Intel's PyTorch CPU
performance guide (jemalloc/tcmalloc for CPU training).
"""

from __future__ import annotations

import ctypes.util
import os
import sys
from pathlib import Path
from typing import Mapping, Sequence

__all__ = ["ENV_VAR", "MALLOC_CONF", "find_jemalloc", "preload_environment", "maybe_reexec"]

#: ``system`` disables the re-execution; ``jemalloc`` (or unset) allows it
ENV_VAR = "SPECVAE_ALLOCATOR"
#: decay off: freed pages stay with the process for the next allocation of that size
MALLOC_CONF = "dirty_decay_ms:-1,muzzy_decay_ms:-1"
_CANDIDATES = ("/usr/lib/x86_64-linux-gnu/libjemalloc.so.2", "/usr/lib/aarch64-linux-gnu/libjemalloc.so.2",
               "/usr/lib64/libjemalloc.so.2", "/usr/lib/libjemalloc.so.2", "/usr/local/lib/libjemalloc.so.2")


def find_jemalloc(candidates: Sequence[str] = _CANDIDATES) -> str | None:
    """An installed jemalloc for ``LD_PRELOAD``: the path of ``libjemalloc.so.2`` in the usual library folders, else
    the soname the linker's cache knows (``ld.so`` resolves a bare soname in ``LD_PRELOAD`` itself), or ``None``."""
    for path in candidates:
        if Path(path).is_file():
            return path
    return ctypes.util.find_library("jemalloc")


def preload_environment(env: Mapping[str, str], library: str) -> dict[str, str]:
    """``env`` with ``library`` first in ``LD_PRELOAD`` (existing entries kept after it) and :data:`MALLOC_CONF`
    unless the caller set one."""
    out = dict(env)
    rest = [p for p in out.get("LD_PRELOAD", "").replace(":", " ").split() if p and p != library]
    out["LD_PRELOAD"] = " ".join([library, *rest])
    out.setdefault("MALLOC_CONF", MALLOC_CONF)
    return out


def _preloaded(env: Mapping[str, str]) -> bool:
    return "jemalloc" in env.get("LD_PRELOAD", "")


def maybe_reexec(args: Sequence[str], *, env: Mapping[str, str] | None = None, library: str | None = None,
                 execve=os.execve) -> bool:
    """Replace the process by ``python -m specvae.cli *args`` with jemalloc preloaded, when allowed and possible.

    Returns ``False`` (and does nothing) when ``SPECVAE_ALLOCATOR=system``, off Linux, when jemalloc is already
    preloaded or not installed; otherwise it does not return (``execve`` is injectable for tests, and then returns
    ``True`` after calling it).
    """
    env = dict(os.environ if env is None else env)
    choice = env.get(ENV_VAR, "jemalloc").strip().lower()
    if choice not in ("jemalloc", "system"):
        raise ValueError(f"{ENV_VAR}={choice!r}: use 'jemalloc' (default: preload it when installed) or 'system'")
    if choice == "system" or not sys.platform.startswith("linux") or _preloaded(env):
        return False
    library = library or find_jemalloc()
    if library is None:
        return False
    print(f"specvae: preloading jemalloc ({library}) for faster CPU training; {ENV_VAR}=system to skip",
          file=sys.stderr, flush=True)
    execve(sys.executable, [sys.executable, "-m", "specvae.cli", *args], preload_environment(env, library))
    return True

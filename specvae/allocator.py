"""Keep freed memory in the training process (glibc malloc), so large tensors are not page-faulted in afresh.

glibc's ``malloc`` serves every block above its mmap threshold (at most 32 MiB on 64-bit Linux) with a fresh
``mmap`` and returns it to the kernel on ``free``; the next tensor of that size is then zero-filled by the kernel
page by page. PyTorch's CPU allocator does not cache, so a model whose activations are large pays this on every
step: measured 2026-11-30 on the 2-core machine (one thread, FQ-VAE on the 64-px faces, batch 32, its 8,192 ×
4,224 code matrix), 1.66 of 3.57 s a step were kernel time (821 k minor page faults a step); with
:func:`keep_freed_memory` the step took 2.07 s (5.6 k faults), and 1.81 s with jemalloc preloaded and its decay off
— an option that needs an extra system library, so it is not the default.

:func:`keep_freed_memory` sets, through ``mallopt`` (glibc ``<malloc.h>``):

- ``M_MMAP_MAX = 0``: no block is served by ``mmap``; all come from the heap, where freed blocks are reused;
- ``M_TRIM_THRESHOLD`` = 2 GiB − 1 (the largest ``int``) and ``M_TOP_PAD`` = 64 MiB: freed memory at the top of
  the heap stays mapped unless more than 2 GiB of it is free.

The process keeps its peak memory until it exits (the peak itself does not grow). Chapter 4's ``run``
(:mod:`specvae.experiments.fq_vae`) calls it, where it was measured to pay; for the VQGAN of chapter 2 the effect
was within the noise of a loaded machine (±15 %), so other chapters leave malloc alone. Set
``SPECVAE_KEEP_FREED_MEMORY=0`` to turn it off. Values
computed are unchanged (only where memory comes from changes). Elsewhere than on glibc it does nothing.

Ref: glibc manual, "Malloc Tunable Parameters" (``mallopt``, ``M_MMAP_MAX``, ``M_TRIM_THRESHOLD``, ``M_TOP_PAD``).
"""

from __future__ import annotations

import ctypes
import os
import platform

__all__ = ["keep_freed_memory", "ENV_VAR"]

#: environment variable that turns :func:`keep_freed_memory` off ("0", "false", "no")
ENV_VAR = "SPECVAE_KEEP_FREED_MEMORY"

# <malloc.h>
_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_MAX = -4

_applied = False


def keep_freed_memory() -> bool:
    """Tune glibc malloc to keep freed memory in the process (see the module docstring); idempotent.

    Returns whether the settings are in effect (False off glibc, or when :data:`ENV_VAR` turns it off).
    """
    global _applied
    if _applied:
        return True
    if os.environ.get(ENV_VAR, "1").strip().lower() in ("0", "false", "no", "off"):
        return False
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    # mallopt takes an int: the largest trim threshold it can express is 2 GiB - 1
    ok = (mallopt(_M_MMAP_MAX, 0) == 1 and mallopt(_M_TRIM_THRESHOLD, 2**31 - 1) == 1
          and mallopt(_M_TOP_PAD, 64 << 20) == 1)
    _applied = ok
    return ok

"""specvae.allocator: with keep_freed_memory, a freed large tensor's pages are reused (no fresh page faults);
without it, glibc maps every large block afresh. Run in subprocesses: the setting is process-wide."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
                                reason="glibc malloc only")

PROBE = """
import resource, sys, torch
from specvae.allocator import keep_freed_memory
on = keep_freed_memory() if sys.argv[1] == "keep" else False
x = torch.ones(64 << 20, dtype=torch.uint8); del x  # a 64 MiB block, above glibc's largest mmap threshold
faults = []
for _ in range(3):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    x = torch.ones(64 << 20, dtype=torch.uint8); del x
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(on, min(faults))
"""


def _probe(mode: str, env: dict[str, str] | None = None) -> tuple[str, int]:
    import os

    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True,
                         env={**os.environ, **(env or {})})
    on, faults = out.stdout.split()
    return on, int(faults)


def test_freed_pages_are_reused() -> None:
    pages = (64 << 20) // 4096
    on, faults = _probe("keep")
    assert on == "True"
    assert faults < pages // 20, f"{faults} page faults re-allocating 64 MiB with freed memory kept"
    off, faults_default = _probe("default")
    assert off == "False"
    assert faults_default > pages // 2, f"glibc's default mapped 64 MiB afresh with only {faults_default} faults"


def test_environment_turns_it_off() -> None:
    on, faults = _probe("keep", {"SPECVAE_KEEP_FREED_MEMORY": "0"})
    assert on == "False" and faults > (64 << 20) // 4096 // 2

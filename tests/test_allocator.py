"""specvae.allocator: when `specvae run` re-executes itself with jemalloc, and the environment it passes on."""

from __future__ import annotations

import subprocess
import sys

import pytest

from specvae import allocator


def _calls():
    seen = []

    def execve(path, argv, env):
        seen.append((path, argv, env))

    return seen, execve


def test_preload_environment_puts_jemalloc_first_and_keeps_the_users_settings():
    env = allocator.preload_environment({"LD_PRELOAD": "/x/libfoo.so:/lib/jem.so", "PATH": "/bin"}, "/lib/jem.so")
    assert env["LD_PRELOAD"] == "/lib/jem.so /x/libfoo.so" and env["PATH"] == "/bin"
    assert env["MALLOC_CONF"] == allocator.MALLOC_CONF
    mine = allocator.preload_environment({"MALLOC_CONF": "narenas:1"}, "/lib/jem.so")
    assert mine["MALLOC_CONF"] == "narenas:1" and mine["LD_PRELOAD"] == "/lib/jem.so"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="LD_PRELOAD is Linux's")
def test_reexec_only_when_allowed_installed_and_not_yet_preloaded(tmp_path, monkeypatch):
    lib = str(tmp_path / "libjemalloc.so.2")
    seen, execve = _calls()
    assert allocator.maybe_reexec(["run", "04"], env={"SPECVAE_ALLOCATOR": "system"}, library=lib, execve=execve) is False
    assert allocator.maybe_reexec(["run", "04"], env={"LD_PRELOAD": "/usr/lib/libjemalloc.so.2"}, library=lib,
                                  execve=execve) is False
    monkeypatch.setattr(allocator, "find_jemalloc", lambda: None)  # not installed
    assert allocator.maybe_reexec(["run", "04"], env={}, execve=execve) is False
    assert not seen
    assert allocator.maybe_reexec(["run", "04", "--preset", "cpu"], env={"HOME": "/h"}, library=lib,
                                  execve=execve) is True
    (path, argv, env), = seen
    assert path == sys.executable and argv == [sys.executable, "-m", "specvae.cli", "run", "04", "--preset", "cpu"]
    assert env["LD_PRELOAD"] == lib and env["HOME"] == "/h" and "dirty_decay_ms:-1" in env["MALLOC_CONF"]
    with pytest.raises(ValueError, match="use 'jemalloc'"):
        allocator.maybe_reexec(["run"], env={"SPECVAE_ALLOCATOR": "tcmalloc"}, library=lib, execve=execve)


def test_find_jemalloc_reads_the_candidate_folders(tmp_path):
    lib = tmp_path / "libjemalloc.so.2"
    lib.write_bytes(b"")
    assert allocator.find_jemalloc([str(lib)]) == str(lib)


@pytest.mark.skipif(allocator.find_jemalloc() is None, reason="jemalloc is not installed here")
def test_the_preloaded_library_is_really_mapped():
    """A child started with the environment maybe_reexec passes on has jemalloc in its memory map."""
    env = allocator.preload_environment({"PATH": "/usr/bin:/bin"}, allocator.find_jemalloc())
    out = subprocess.run([sys.executable, "-c", "print(open('/proc/self/maps').read())"], env=env,
                         capture_output=True, text=True, check=True).stdout
    assert "libjemalloc" in out


_PEAK = """
import torch
from specvae.experiments import fq_vae
class Big(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))
    def forward(self, x):
        return (torch.ones(8 * 2**20).sum() + x.sum()) * self.w  # a 32 MiB temporary
print(fq_vae.peak_memory_mb(Big(), torch.zeros(2, 1, 4, 4, dtype=torch.uint8)))
"""


@pytest.mark.skipif(allocator.find_jemalloc() is None or not sys.platform.startswith("linux"),
                    reason="jemalloc is not installed here")
def test_chapter4_peak_memory_is_measured_under_jemalloc_too():
    """Table 4's CPU peak memory reads the C heap; under the preloaded jemalloc glibc's counters stay at zero, so the
    probe must read jemalloc's own (it once stored 0 MB for every run)."""
    env = {"PATH": "/usr/bin:/bin"}
    plain = float(subprocess.run([sys.executable, "-c", _PEAK], env=env, capture_output=True, text=True,
                                 check=True).stdout.split()[-1])
    jem = float(subprocess.run([sys.executable, "-c", _PEAK], capture_output=True, text=True, check=True,
                               env=allocator.preload_environment(env, allocator.find_jemalloc())).stdout.split()[-1])
    assert plain >= 32 and jem >= 32  # at least the temporary itself
    assert abs(jem - plain) <= 0.15 * plain

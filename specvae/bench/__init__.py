"""``specvae bench``: how fast each chapter's models train (and the metrics evaluate) on this machine.

- :mod:`specvae.bench.training` — each chapter's model families trained three ways, interleaved in one process:
  a plain fp32 PyTorch loop, the same loop in bf16 autocast + channels_last, and :func:`specvae.train.fit` as the
  chapter's ``cpu`` preset runs it (:class:`BenchCase`, :func:`bench_training`); optionally the thread layout
  (one 2-thread process vs two 1-thread processes side by side) and ``torch.compile``.
- :mod:`specvae.bench.metrics` — throughput of the metric networks (Inception for rFID, LPIPS).

A chapter module offers its families with ``bench_families(preset="cpu") -> dict[str, BenchCase]``. Results are
stored with provenance under ``book/results/bench/`` and are what presets are sized from.
"""

from specvae.bench.training import BenchCase, bench_training, chapter_families, store_rows

__all__ = ["BenchCase", "bench_training", "chapter_families", "store_rows"]

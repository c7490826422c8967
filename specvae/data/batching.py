"""On-device batching of a uint8 image tensor: :class:`TensorBatcher` (no DataLoader).

Small data sets (Shapes, MNIST, CIFAR-10, 64-px faces) fit in GPU memory as uint8 (24,711 faces at 64×64×3 are
0.3 GB), so the whole set is moved to the device once and every batch is an index into it, converted to float32 in
[0, 1] on the device. This removes the DataLoader's worker and host→device overhead that dominates small models.
"""

from __future__ import annotations

from typing import Any, Iterator

import numpy as np
import torch

__all__ = ["TensorBatcher"]


class TensorBatcher(Iterator[torch.Tensor]):
    """Infinite iterator of shuffled float32 batches in [0, 1], built on the images' device.

    Every epoch visits each image once in a fresh random order. The order of epoch ``e`` is
    ``torch.randperm(N)`` drawn on the CPU from a generator seeded with ``(seed, e)``, so the batches are the same
    on every device and depend only on ``(seed, N, batch_size, drop_last)``. :meth:`state_dict` records the epoch and
    the position inside it; a fresh batcher given that state continues with exactly the batches the original
    would have produced.

    Args:
        images: uint8 tensor ``(N, C, H, W)`` (values 0 … 255), or an object with such an ``images`` attribute
            (e.g. :class:`~specvae.data.ImageData`).
        batch_size: images per batch.
        device: where batches are built; the images are moved there once (default: where they already are).
        seed: shuffling seed.
        drop_last: drop the last, smaller batch of each epoch (so every batch has ``batch_size`` images).
    """

    def __init__(self, images: Any, batch_size: int, *, device: str | torch.device | None = None, seed: int = 0,
                 drop_last: bool = True) -> None:
        if not isinstance(images, torch.Tensor) and isinstance(getattr(images, "images", None), torch.Tensor):
            images = images.images
        if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8 or images.ndim != 4:
            got = f"{type(images).__name__} {getattr(images, 'dtype', '')} {tuple(getattr(images, 'shape', ()))}"
            raise TypeError(f"TensorBatcher expects a uint8 tensor (N, C, H, W); got {got}. Convert float images in "
                            "[0, 1] with (x * 255).round().to(torch.uint8).")
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size <= 0:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        n = int(images.shape[0])
        if n == 0:
            raise ValueError("TensorBatcher got an empty image tensor (N = 0)")
        if drop_last and n < batch_size:
            raise ValueError(f"only {n} images but batch_size={batch_size} with drop_last=True would give no batch; "
                             "lower batch_size, use more images, or pass drop_last=False")
        self.device = torch.device(device) if device is not None else images.device
        self.images = images.to(self.device)
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.drop_last = bool(drop_last)
        self.epoch = 0
        self.position = 0  # index into the current epoch's permutation
        self._perm: torch.Tensor | None = None

    # ---------------------------------------------------------------------------------------------- sizes
    def __len__(self) -> int:
        """Batches per epoch (the iterator itself never ends)."""
        return self.steps_per_epoch

    @property
    def num_images(self) -> int:
        return int(self.images.shape[0])

    @property
    def steps_per_epoch(self) -> int:
        n, b = self.num_images, self.batch_size
        return n // b if self.drop_last else -(-n // b)

    # ---------------------------------------------------------------------------------------------- order
    def _permutation(self, epoch: int) -> torch.Tensor:
        gen = torch.Generator(device="cpu")
        # mix (seed, epoch) into one 63-bit seed through NumPy's SeedSequence (well-separated streams)
        gen.manual_seed(int(np.random.SeedSequence([self.seed & 0xFFFFFFFF, self.seed >> 32 & 0xFFFFFFFF, epoch])
                            .generate_state(1, dtype=np.uint64)[0] >> np.uint64(1)))
        return torch.randperm(self.num_images, generator=gen).to(self.device)

    def next_indices(self) -> torch.Tensor:
        """Indices (on the device) of the next batch; advances the state."""
        limit = self.steps_per_epoch * self.batch_size if self.drop_last else self.num_images
        if self.position >= limit:
            self.epoch += 1
            self.position = 0
            self._perm = None
        if self._perm is None:
            self._perm = self._permutation(self.epoch)
        idx = self._perm[self.position:min(self.position + self.batch_size, limit)]
        self.position += idx.shape[0]
        return idx

    def __iter__(self) -> "TensorBatcher":
        return self

    def __next__(self) -> torch.Tensor:
        idx = self.next_indices()
        return self.images.index_select(0, idx).to(torch.float32).div_(255.0)

    # ---------------------------------------------------------------------------------------------- state
    def state_dict(self) -> dict[str, int | bool]:
        """Everything needed to continue with the same batches (plain ints: safe for JSON and ``torch.save``)."""
        return {"epoch": self.epoch, "position": self.position, "seed": self.seed, "num_images": self.num_images,
                "batch_size": self.batch_size, "drop_last": self.drop_last}

    def load_state_dict(self, state: dict) -> None:
        """Continue from ``state`` (from :meth:`state_dict`); the data size, batch size and drop_last must match."""
        for key in ("num_images", "batch_size", "drop_last"):
            if key in state and state[key] != getattr(self, key):
                raise ValueError(f"cannot resume this TensorBatcher: the saved state has {key}={state[key]!r} but "
                                 f"this batcher has {key}={getattr(self, key)!r}; build it on the same data with the "
                                 "same batch_size and drop_last")
        missing = {"epoch", "position", "seed"} - set(state)
        if missing:
            raise ValueError(f"TensorBatcher state is missing {sorted(missing)}; pass the dict from state_dict()")
        self.seed = int(state["seed"])
        self.epoch = int(state["epoch"])
        self.position = int(state["position"])
        self._perm = None

    def __repr__(self) -> str:
        return (f"TensorBatcher(images={tuple(self.images.shape)} on {self.device}, batch_size={self.batch_size}, "
                f"seed={self.seed}, drop_last={self.drop_last}, epoch={self.epoch}, position={self.position})")

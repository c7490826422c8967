"""The synthetic Shape data set of Jing et al. (IRMAE, NeurIPS 2020), as used by Björk et al. (2022).

Each image holds **one** filled shape on a black background:

- image size 32×32 (IRMAE only has a 32×32 generator);
- shape kind ``s ~ randint(0, 2)``: 0 = filled circle, 1 = filled axis-aligned square (the label);
- anchor ``(cx, cy)``, each ``randint(8, 25)`` (8 … 24 inclusive), and ``size ~ randint(3, 9)`` (3 … 8);
- circle: cv2 ``circle(img, (cx, cy), radius=size, colour, -1)``. We rasterise it ourselves (no cv2 dependency)
  as the pixels with ``(x - cx)² + (y - cy)² <= size²``. This is not cv2's algorithm (a Bresenham-style scan), but
  for these small integer radii it gives the same pixels: checked against opencv-python-headless 5.0.0 for every
  IRMAE parameter combination (cx, cy in 8…24, size 3…8, circles and squares: 0 differing pixels), and the
  per-row widths of cv2's circles are stored as golden values in ``tests/test_data.py``;
- square: cv2 ``rectangle(img, (cx, cy), (cx + size, cy + size), colour, -1)``: the *inclusive* box
  ``cx <= x <= cx + size``, ``cy <= y <= cy + size`` (side ``size + 1`` px; the "centre" is the top-left
  corner); parts falling outside the image are clipped, as cv2 clips them;
- colour ``np.random.random(3)``, uniform in [0, 1) per channel, no anti-aliasing.

Gray-scale (Björk et al. §3: "a simple gray-scale version of the Shape dataset"): the paper does not say how the
gray version was made. We keep IRMAE's colour draw and convert it to its **luma** (ITU-R BT.601:
``0.299 R + 0.587 G + 0.114 B``, what PIL's ``convert("L")`` and Durall et al.'s spectra use), so the gray data set
is exactly the colour data set converted to gray-scale (up to uint8 rounding), and a given seed/index shows the
same shape in both. Images are stored as uint8 (``round(255 · value)``).

Determinism: IRMAE seeds ``np.random`` once per worker, so its train and validation sets can overlap and the
contents depend on the worker layout. We instead make image ``i`` of split ``split`` a pure function of
``(seed, split, i)``: its parameters are draws ``8 i … 8 i + 7`` of a SplitMix64 stream (Steele, Lea & Flood,
"Fast splittable pseudorandom number generators", OOPSLA 2014) whose 64-bit start state comes from
``numpy.random.SeedSequence([seed, split_id])``. A counter-based generator lets us draw any index range with a few
vectorised NumPy operations (50,000 images in well under a second) instead of seeding one generator per image,
and train (split_id 0) and test (split_id 1) never share a stream.

Other image sizes (not in IRMAE) scale the geometry: anchors ``randint(S//4, 3S//4 + 1)`` and sizes
``randint(round(3S/32), round(8S/32) + 1)``, which reduces to the ranges above at S = 32.

Ref: facebookresearch/irmae ``utils.py`` ``ShapeDataset`` (facts in ``reference-facts.md`` §7); Björk et al. 2022 §3.
"""

from __future__ import annotations

import numpy as np
import torch

from specvae.data.base import LUMA_WEIGHTS

__all__ = ["generate_shapes", "shape_parameters", "SPLIT_IDS", "LUMA_WEIGHTS", "CIRCLE", "SQUARE"]

#: split name → the id mixed into the seed (train and test streams never coincide)
SPLIT_IDS: dict[str, int] = {"train": 0, "test": 1}
CIRCLE = 0
SQUARE = 1

_DRAWS_PER_IMAGE = 8  # cx, cy, size, kind, r, g, b, (spare)
_GOLDEN_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def _splitmix64(counter: np.ndarray, state: np.uint64) -> np.ndarray:
    """Element ``k`` of the SplitMix64 stream that starts at ``state`` (vectorised over ``counter``).

    Ref: Steele, Lea & Flood (OOPSLA 2014), the finaliser constants of ``SplitMix64`` (Vigna's reference C code).
    """
    with np.errstate(over="ignore"):
        z = state + (counter.astype(np.uint64) + np.uint64(1)) * _GOLDEN_GAMMA
        z = (z ^ (z >> np.uint64(30))) * _M1
        z = (z ^ (z >> np.uint64(27))) * _M2
        return z ^ (z >> np.uint64(31))


def _uniform(bits: np.ndarray) -> np.ndarray:
    """53-bit uniform floats in [0, 1) from 64-bit integers."""
    return (bits >> np.uint64(11)).astype(np.float64) * (1.0 / 9007199254740992.0)


def _check_args(n: int, image_size: int, split: str, start: int) -> None:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"n must be a non-negative int (number of images), got {n!r}")
    if isinstance(image_size, bool) or not isinstance(image_size, (int, np.integer)) or image_size < 8:
        raise ValueError(f"image_size must be an int >= 8 (IRMAE's Shape data are 32x32), got {image_size!r}")
    if split not in SPLIT_IDS:
        raise ValueError(f"unknown split {split!r} for the Shape data set; valid splits: {sorted(SPLIT_IDS)}")
    if isinstance(start, bool) or not isinstance(start, (int, np.integer)) or start < 0:
        raise ValueError(f"start must be a non-negative int (index of the first image), got {start!r}")


def shape_parameters(n: int, image_size: int = 32, *, seed: int = 0, split: str = "train",
                     start: int = 0) -> dict[str, np.ndarray]:
    """The drawn parameters of images ``start … start + n - 1`` (what :func:`generate_shapes` renders).

    Returns a dict of NumPy arrays of length ``n``: ``kind`` (0 circle, 1 square), ``cx``, ``cy`` (anchor:
    circle centre or square top-left corner, in pixels; x is the column), ``size`` (circle radius or square side
    minus one) and ``colour`` (n, 3) floats in [0, 1).
    """
    _check_args(n, image_size, split, start)
    state = np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(seed) >> 32, SPLIT_IDS[split]]).generate_state(
        1, dtype=np.uint64)[0]
    counter = (np.arange(start, start + n, dtype=np.uint64)[:, None] * np.uint64(_DRAWS_PER_IMAGE)
               + np.arange(_DRAWS_PER_IMAGE, dtype=np.uint64)[None, :])
    u = _uniform(_splitmix64(counter, state))  # (n, 8)
    s = int(image_size)
    lo_c, hi_c = s // 4, 3 * s // 4 + 1  # randint(8, 25) at s=32
    lo_s, hi_s = int(round(3 * s / 32)), int(round(8 * s / 32)) + 1  # randint(3, 9) at s=32
    return {
        "cx": (lo_c + np.floor(u[:, 0] * (hi_c - lo_c))).astype(np.int64),
        "cy": (lo_c + np.floor(u[:, 1] * (hi_c - lo_c))).astype(np.int64),
        "size": (lo_s + np.floor(u[:, 2] * (hi_s - lo_s))).astype(np.int64),
        "kind": np.floor(u[:, 3] * 2).astype(np.int64),
        "colour": u[:, 4:7].copy(),
    }


def generate_shapes(n: int, image_size: int = 32, *, seed: int = 0, gray: bool = True, split: str = "train",
                    start: int = 0, chunk: int = 8192) -> tuple[torch.Tensor, torch.Tensor]:
    """Render ``n`` images of the Shape data set (see the module docstring for the exact distribution).

    Args:
        n: number of images.
        image_size: side length S (32 is IRMAE's and Björk et al.'s; other sizes scale the geometry).
        seed: data-set seed; image ``i`` depends only on ``(seed, split, i)``.
        gray: ``True`` (Björk et al.) gives 1 channel holding the luma of IRMAE's colour; ``False`` gives
            IRMAE's 3-channel colour images.
        split: ``"train"`` or ``"test"`` (independent streams, so the two never coincide).
        start: index of the first image (``generate_shapes(n, start=k)`` equals rows ``k … k+n-1`` of a longer run).
        chunk: images rasterised at once (memory bound only).

    Returns:
        ``(images, labels)``: ``images`` uint8 ``(n, C, S, S)`` with C = 1 (gray) or 3, background 0;
        ``labels`` int64 ``(n,)``, 0 = circle, 1 = square.
    """
    p = shape_parameters(n, image_size, seed=seed, split=split, start=start)
    s = int(image_size)
    channels = 1 if gray else 3
    if gray:
        levels = p["colour"] @ np.asarray(LUMA_WEIGHTS)
        levels = np.rint(levels * 255.0).astype(np.uint8)[:, None]  # (n, 1)
    else:
        levels = np.rint(p["colour"] * 255.0).astype(np.uint8)  # (n, 3)
    out = np.zeros((n, channels, s, s), dtype=np.uint8)
    yy = np.arange(s, dtype=np.int64)[None, :, None]  # rows
    xx = np.arange(s, dtype=np.int64)[None, None, :]  # columns
    for a in range(0, n, max(1, int(chunk))):
        b = min(n, a + max(1, int(chunk)))
        cx = p["cx"][a:b, None, None]
        cy = p["cy"][a:b, None, None]
        size = p["size"][a:b, None, None]
        circle = (xx - cx) ** 2 + (yy - cy) ** 2 <= size ** 2
        square = (xx >= cx) & (xx <= cx + size) & (yy >= cy) & (yy <= cy + size)
        mask = np.where(p["kind"][a:b, None, None] == CIRCLE, circle, square)  # (m, S, S)
        out[a:b] = mask[:, None, :, :] * levels[a:b, :, None, None]
    return torch.from_numpy(out), torch.from_numpy(p["kind"].copy())

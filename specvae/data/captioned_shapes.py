"""Captioned Shapes: RGB images of one or two coloured shapes, with captions written from their known attributes.

The text-to-image chapter (FA-VAE's CAT, Lin et al. 2023 §3.2) needs captions whose meaning can be checked in the
generated image. Every image here is drawn from a few discrete attributes, and its caption is written from them,
so a generated image can be read back by an exact analytic parser (:func:`parse_image`) and compared with its
caption attribute by attribute (:func:`agreement`).

**Images** (``S × S`` RGB, black background, default S = 32; other sizes scale the geometry by S/32):

- one or two shapes (probability 1/2 each);
- each shape has a **colour** from :data:`COLOURS` (six saturated hues; the value is the palette colour times a
  brightness drawn uniformly in [0.75, 1]), a **kind** from :data:`KINDS` (filled circle, axis-aligned square,
  upward triangle), a **size** from :data:`SIZES` (half-extent 2 px or 4 px at S = 32: 5 or 9 px across) and a
  **position**: one cell of a 3 × 3 grid (:data:`POSITIONS`), the shape centred on the cell centre
  ``round((k + 1/2)·S/3)`` (no jitter, so two shapes never touch: at S = 32 adjacent large shapes keep a 2-px gap);
- two shapes always differ in colour **and** kind and sit in different cells, so "which colour is on which shape"
  (binding) is well defined.

Rasterisation (pixel centres at integer coordinates, centre ``(cx, cy)``, half-extent ``h``): circle
``(x−cx)² + (y−cy)² ≤ h²``; square ``|x−cx| ≤ h, |y−cy| ≤ h``; triangle (apex up) ``cy−h ≤ y ≤ cy+h`` and
``|x−cx| ≤ (y − cy + h)/2``.

**Held-out combinations.** The (colour, kind) pairs of :data:`HELD_OUT_PAIRS` (red triangle, green circle, blue
square) never occur in the ``train`` split, in one- or two-shape images; the ``test`` split draws every
(colour, kind) pair uniformly, so about one test shape in six is a combination the model never saw.

**Captions.** A caption describes every shape by one *clause template* and joins two clauses with a *joiner*;
the order of the two shapes in the caption is random. Each attribute word is drawn from its synonyms
(:data:`COLOUR_WORDS`, :data:`KIND_WORDS`, :data:`SIZE_WORDS`, :data:`POSITION_WORDS`). Train captions use the
clause templates ``CLAUSES[:4]`` and joiners ``JOINERS[:2]``; test captions use all of them, so the test split
also holds wordings never seen in training (``CLAUSES[4]``, ``JOINERS[2]``). :func:`parse_caption` reads the
attributes back from any caption of these templates (the round trip is tested).

**Determinism.** Image ``i`` of a split is a pure function of ``(seed, split, i)``: its draws are elements
``32 i … 32 i + 31`` of the SplitMix64 stream of :mod:`specvae.data.shapes` (split ids 0 = train, 1 = test, mixed
with a tag so the streams differ from the plain Shape data set's).

Ref: IRMAE's Shape data set (Jing et al. 2020, ``utils.py``) for the idea; the attribute-caption design follows the
template captions of Multi-Modal CelebA-HQ (Xia et al., TediGAN, 2021), which FA-VAE's Table 4 uses; the choices
above are ours (``fa-vae-facts.md`` §8).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch

from specvae.data.shapes import _splitmix64, _uniform

__all__ = [
    "COLOURS",
    "PALETTE",
    "KINDS",
    "SIZES",
    "POSITIONS",
    "COLOUR_WORDS",
    "KIND_WORDS",
    "SIZE_WORDS",
    "POSITION_WORDS",
    "CLAUSES",
    "JOINERS",
    "TRAIN_CLAUSES",
    "TRAIN_JOINERS",
    "HELD_OUT_PAIRS",
    "ShapeSpec",
    "CaptionedShapes",
    "CaptionError",
    "captioned_shapes",
    "render",
    "write_caption",
    "parse_caption",
    "is_held_out",
    "parse_image",
    "agreement",
    "CLASS_WORDS",
    "CLASS_TEMPLATES",
    "class_captions",
    "parse_class_caption",
]

#: colour names (canonical) and their RGB palette values in [0, 1]
COLOURS: tuple[str, ...] = ("red", "green", "blue", "yellow", "magenta", "cyan")
PALETTE: np.ndarray = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [1, 0, 1], [0, 1, 1]], dtype=np.float64)
KINDS: tuple[str, ...] = ("circle", "square", "triangle")
SIZES: tuple[str, ...] = ("small", "large")
#: half-extent in pixels at S = 32, per size class
HALF_EXTENT_32: tuple[int, ...] = (2, 4)
#: the 3 × 3 grid cells, row-major: (row, column), row 0 at the top
POSITIONS: tuple[tuple[int, int], ...] = tuple((r, c) for r in range(3) for c in range(3))
BRIGHTNESS = (0.75, 1.0)

COLOUR_WORDS: dict[str, tuple[str, ...]] = {
    "red": ("red",), "green": ("green",), "blue": ("blue",), "yellow": ("yellow",),
    "magenta": ("magenta", "purple"), "cyan": ("cyan", "turquoise")}
KIND_WORDS: dict[str, tuple[str, ...]] = {"circle": ("circle", "disk"), "square": ("square", "box"),
                                          "triangle": ("triangle",)}
SIZE_WORDS: dict[str, tuple[str, ...]] = {"small": ("small", "little", "tiny"), "large": ("large", "big")}
POSITION_WORDS: dict[tuple[int, int], tuple[str, ...]] = {
    (0, 0): ("top left corner", "upper left"), (0, 1): ("top middle", "top centre"),
    (0, 2): ("top right corner", "upper right"), (1, 0): ("middle left", "left side"),
    (1, 1): ("centre", "middle"), (1, 2): ("middle right", "right side"),
    (2, 0): ("bottom left corner", "lower left"), (2, 1): ("bottom middle", "bottom centre"),
    (2, 2): ("bottom right corner", "lower right")}

#: clause templates (one shape); the last is used only in the test split
CLAUSES: tuple[str, ...] = (
    "a {size} {colour} {kind} in the {pos}",
    "a {colour} {kind} of {size} size in the {pos}",
    "in the {pos}, a {size} {colour} {kind}",
    "a {size} {kind} coloured {colour}, in the {pos}",
    "the {pos} holds a {colour} {kind} that is {size}",
)
#: how two clauses are joined; the last is used only in the test split
JOINERS: tuple[str, ...] = (" and also ", "; ", ", as well as ")
TRAIN_CLAUSES: tuple[int, ...] = (0, 1, 2, 3)
TRAIN_JOINERS: tuple[int, ...] = (0, 1)
#: (colour, kind) pairs absent from the train split
HELD_OUT_PAIRS: frozenset[tuple[str, str]] = frozenset({("red", "triangle"), ("green", "circle"), ("blue", "square")})

_SPLIT_IDS = {"train": 0, "test": 1}
_TAG = 0xCA7  # mixed into the seed so these streams differ from specvae.data.shapes'
_DRAWS = 32


class CaptionError(ValueError):
    """A caption that is not written by this module's templates (the message says what was not understood)."""


@dataclass(frozen=True)
class ShapeSpec:
    """One shape: canonical attribute names (``colour`` ∈ COLOURS, ``kind`` ∈ KINDS, ``size`` ∈ SIZES) and its
    grid cell ``position = (row, column)``."""

    colour: str
    kind: str
    size: str
    position: tuple[int, int]

    def __post_init__(self) -> None:
        for name, value, valid in (("colour", self.colour, COLOURS), ("kind", self.kind, KINDS),
                                   ("size", self.size, SIZES), ("position", tuple(self.position), POSITIONS)):
            if value not in valid:
                raise ValueError(f"ShapeSpec.{name}={value!r} is not one of {valid}")
        object.__setattr__(self, "position", tuple(int(v) for v in self.position))


@dataclass
class CaptionedShapes:
    """A split of Captioned Shapes.

    Attributes:
        images: uint8 ``(N, 3, S, S)``.
        captions: ``N`` strings.
        shapes: per image, the tuple of its :class:`ShapeSpec` (one or two), in the order the caption names them.
        template: int64 ``(N,)`` clause template index of each caption (into :data:`CLAUSES`).
        joiner: int64 ``(N,)`` joiner index (−1 for one-shape captions).
        held_out: bool ``(N,)``: the image holds a (colour, kind) pair of :data:`HELD_OUT_PAIRS`.
        split, seed, image_size: how it was made.
    """

    images: torch.Tensor
    captions: list[str]
    shapes: list[tuple[ShapeSpec, ...]]
    template: torch.Tensor
    joiner: torch.Tensor
    held_out: torch.Tensor
    split: str
    seed: int
    image_size: int
    notes: str = field(default="")

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def n_shapes(self) -> torch.Tensor:
        """int64 ``(N,)``: 1 or 2."""
        return torch.tensor([len(s) for s in self.shapes], dtype=torch.long)


def is_held_out(shapes: Sequence[ShapeSpec]) -> bool:
    """``True`` when a shape of ``shapes`` has a (colour, kind) pair of :data:`HELD_OUT_PAIRS`."""
    return any((s.colour, s.kind) in HELD_OUT_PAIRS for s in shapes)


def _geometry(image_size: int) -> tuple[list[int], list[int]]:
    s = int(image_size)
    centres = [int(round((k + 0.5) * s / 3)) for k in range(3)]
    halves = [max(1, int(round(h * s / 32))) for h in HALF_EXTENT_32]
    return centres, halves


def _mask(kind: str, cx: int, cy: int, h: int, s: int) -> np.ndarray:
    yy, xx = np.mgrid[0:s, 0:s]
    if kind == "circle":
        return (xx - cx) ** 2 + (yy - cy) ** 2 <= h * h
    if kind == "square":
        return (np.abs(xx - cx) <= h) & (np.abs(yy - cy) <= h)
    return (yy >= cy - h) & (yy <= cy + h) & (2 * np.abs(xx - cx) <= yy - cy + h)


def render(shapes: Sequence[ShapeSpec], image_size: int = 32, brightness: Sequence[float] | None = None) -> np.ndarray:
    """Render one image, uint8 ``(3, S, S)``, from its shapes (``brightness`` per shape, default 1)."""
    s = int(image_size)
    if s < 16:
        raise ValueError(f"image_size must be >= 16 for a 3x3 grid of shapes, got {image_size}")
    centres, halves = _geometry(s)
    img = np.zeros((3, s, s), dtype=np.float64)
    for j, sh in enumerate(shapes):
        b = 1.0 if brightness is None else float(brightness[j])
        m = _mask(sh.kind, centres[sh.position[1]], centres[sh.position[0]], halves[SIZES.index(sh.size)], s)
        img[:, m] = (PALETTE[COLOURS.index(sh.colour)] * b)[:, None]
    return np.rint(img * 255.0).astype(np.uint8)


def _pick(u: float, options: Sequence) -> object:
    return options[min(int(u * len(options)), len(options) - 1)]


def write_caption(shapes: Sequence[ShapeSpec], clause: int | Sequence[int] = 0, joiner: int = 0,
                  words: Sequence[float] | None = None) -> str:
    """The caption of ``shapes`` with clause template(s) ``clause`` (one index for all, or one per shape) and
    ``joiner``; ``words`` (uniforms in [0, 1), 4 per shape: colour, kind, size, position synonym) picks the
    synonyms (default: the first of each)."""
    if not 1 <= len(shapes) <= 2:
        raise ValueError(f"a caption describes one or two shapes, got {len(shapes)}")
    clauses = [clause] * len(shapes) if isinstance(clause, (int, np.integer)) else list(clause)
    parts = []
    for j, sh in enumerate(shapes):
        u = [0.0] * 4 if words is None else list(words[4 * j:4 * j + 4])
        parts.append(CLAUSES[clauses[j]].format(colour=_pick(u[0], COLOUR_WORDS[sh.colour]),
                                                kind=_pick(u[1], KIND_WORDS[sh.kind]),
                                                size=_pick(u[2], SIZE_WORDS[sh.size]),
                                                pos=_pick(u[3], POSITION_WORDS[sh.position])))
    return JOINERS[joiner].join(parts)


# ---------------------------------------------------------------------------------------------- parsing
def _lexicon() -> list[tuple[str, str, object]]:
    entries: list[tuple[str, str, object]] = []
    for table, attr in ((COLOUR_WORDS, "colour"), (KIND_WORDS, "kind"), (SIZE_WORDS, "size"),
                        (POSITION_WORDS, "position")):
        for value, words in table.items():
            entries += [(w, attr, value) for w in words]
    return sorted(entries, key=lambda e: -len(e[0]))  # longest first: "top middle" before "middle"


_LEXICON = _lexicon()
_JOIN_RE = re.compile("|".join(re.escape(j) for j in sorted(JOINERS, key=len, reverse=True)))


def _parse_clause(clause: str, caption: str) -> ShapeSpec:
    text = f" {clause} "
    found: dict[str, list[object]] = {"colour": [], "kind": [], "size": [], "position": []}
    for word, attr, value in _LEXICON:
        pattern = re.compile(rf"(?<=[\s,]){re.escape(word)}(?=[\s,])")
        while True:
            m = pattern.search(text)
            if m is None:
                break
            found[attr].append(value)
            text = text[:m.start()] + "#" * len(word) + text[m.end():]  # consume: "middle" inside "top middle"
    for attr, values in found.items():
        if len(values) != 1:
            what = "no" if not values else f"{len(values)}"
            raise CaptionError(f"cannot parse caption {caption!r}: clause {clause!r} has {what} {attr} word(s); "
                               "captions must come from specvae.data.captioned_shapes templates")
    return ShapeSpec(colour=found["colour"][0], kind=found["kind"][0], size=found["size"][0],  # type: ignore[arg-type]
                     position=found["position"][0])  # type: ignore[arg-type]


def parse_caption(caption: str) -> tuple[ShapeSpec, ...]:
    """The shapes a caption describes (inverse of :func:`write_caption` for every template and synonym)."""
    if not isinstance(caption, str) or not caption.strip():
        raise CaptionError(f"cannot parse an empty caption ({caption!r})")
    clauses = _JOIN_RE.split(caption.strip().lower())
    if len(clauses) > 2:
        raise CaptionError(f"cannot parse caption {caption!r}: {len(clauses)} clauses, at most 2 shapes")
    return tuple(_parse_clause(c, caption) for c in clauses)


# ---------------------------------------------------------------------------------------------- generation
def _stream(n: int, seed: int, split: str, start: int) -> np.ndarray:
    if split not in _SPLIT_IDS:
        raise ValueError(f"unknown split {split!r} for Captioned Shapes; valid splits: {sorted(_SPLIT_IDS)}")
    state = np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(seed) >> 32, _SPLIT_IDS[split], _TAG]).generate_state(
        1, dtype=np.uint64)[0]
    counter = (np.arange(start, start + n, dtype=np.uint64)[:, None] * np.uint64(_DRAWS)
               + np.arange(_DRAWS, dtype=np.uint64)[None, :])
    return _uniform(_splitmix64(counter, state))


def _all_pairs(split: str) -> list[tuple[str, str]]:
    pairs = [(c, k) for c in COLOURS for k in KINDS]
    return pairs if split == "test" else [p for p in pairs if p not in HELD_OUT_PAIRS]


def captioned_shapes(n: int, split: str = "train", *, seed: int = 0, image_size: int = 32,
                     start: int = 0) -> CaptionedShapes:
    """Images ``start … start + n − 1`` of a Captioned Shapes split (see the module docstring).

    Args:
        n: number of images.
        split: ``"train"`` (no held-out pairs, train templates) or ``"test"`` (all pairs and templates).
        seed: data-set seed; image ``i`` depends only on ``(seed, split, i)``.
        image_size: side S (32 for the chapter; geometry scales with S/32).
        start: index of the first image (a slice of a longer run gives the same images).
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"n must be a non-negative int, got {n!r}")
    if isinstance(start, bool) or not isinstance(start, (int, np.integer)) or start < 0:
        raise ValueError(f"start must be a non-negative int, got {start!r}")
    u = _stream(int(n), seed, split, int(start))
    pairs = _all_pairs(split)
    clauses = tuple(range(len(CLAUSES))) if split == "test" else TRAIN_CLAUSES
    joiners = tuple(range(len(JOINERS))) if split == "test" else TRAIN_JOINERS
    images = np.zeros((int(n), 3, int(image_size), int(image_size)), dtype=np.uint8)
    captions: list[str] = []
    shapes_all: list[tuple[ShapeSpec, ...]] = []
    template = np.zeros(int(n), dtype=np.int64)
    joiner = np.full(int(n), -1, dtype=np.int64)
    for i in range(int(n)):
        d = u[i]
        count = 1 + int(d[0] * 2)
        first = _pick(d[1], pairs)
        cells = list(POSITIONS)
        pos1 = _pick(d[2], cells)
        specs = [ShapeSpec(first[0], first[1], _pick(d[3], SIZES), pos1)]  # type: ignore[index, arg-type]
        if count == 2:
            second_pairs = [p for p in pairs if p[0] != first[0] and p[1] != first[1]]  # type: ignore[index]
            second = _pick(d[4], second_pairs)
            pos2 = _pick(d[5], [c for c in cells if c != pos1])
            specs.append(ShapeSpec(second[0], second[1], _pick(d[6], SIZES), pos2))  # type: ignore[index, arg-type]
        if count == 2 and d[7] < 0.5:
            specs.reverse()  # the caption names them in either order
        bright = [BRIGHTNESS[0] + (BRIGHTNESS[1] - BRIGHTNESS[0]) * d[8 + j] for j in range(len(specs))]
        images[i] = render(specs, image_size, bright)
        t = int(_pick(d[10], clauses))  # type: ignore[arg-type]
        template[i] = t
        if count == 2:
            joiner[i] = int(_pick(d[11], joiners))  # type: ignore[arg-type]
        captions.append(write_caption(specs, t, max(0, int(joiner[i])), words=d[12:20]))
        shapes_all.append(tuple(specs))
    held = np.array([is_held_out(s) for s in shapes_all], dtype=bool)
    notes = (f"Captioned Shapes ({split}, seed {seed}, {n} images, {image_size}x{image_size} RGB): one or two shapes, "
             f"{len(COLOURS)} colours x {len(KINDS)} kinds x {len(SIZES)} sizes x 9 cells; held out of training: "
             + ", ".join(f"{c} {k}" for c, k in sorted(HELD_OUT_PAIRS))
             + ("; train templates only." if split == "train" else "; all templates (incl. test-only wordings)."))
    return CaptionedShapes(images=torch.from_numpy(images), captions=captions, shapes=shapes_all,
                           template=torch.from_numpy(template), joiner=torch.from_numpy(joiner),
                           held_out=torch.from_numpy(held), split=split, seed=int(seed), image_size=int(image_size),
                           notes=notes)


# ---------------------------------------------------------------------------------------------- reading images
def parse_image(image: np.ndarray | torch.Tensor, *, threshold: float = 0.3) -> list[ShapeSpec]:
    """Read the shapes back from one image ``(3, S, S)`` (uint8, or float in [0, 1]): an exact analytic parser.

    Foreground = pixels whose largest channel exceeds ``threshold`` (palette colours have brightness ≥ 0.75);
    shapes = its 8-connected components of at least ``(S/32)²·4`` pixels (smaller specks are ignored). Per shape:

    - **colour**: the component's mean RGB divided by its largest channel, nearest palette colour (Euclidean);
    - **kind**: ``square`` when it fills more than 85 % of its bounding box, else ``triangle`` when its top third
      of rows is less than 0.6 times as wide (pixel count) as its bottom third, else ``circle`` (measured on the
      renders: fill 1.0 / 0.52–0.60 / 0.51–0.52, top/bottom ratio 1.0 circles, 0.22–0.25 triangles);
    - **size**: ``large`` when the larger bounding-box side exceeds the midpoint of the two classes' widths;
    - **position**: the grid cell holding the bounding-box centre.

    On real renders it is exact (tested on every attribute combination). On generated images it reports what a
    strict reader sees: merged or broken blobs and stray specks count against the image.
    """
    from scipy import ndimage

    x = image.detach().cpu().numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
    if x.ndim != 3 or x.shape[0] != 3:
        raise ValueError(f"parse_image expects one RGB image (3, S, S), got shape {x.shape}")
    x = x.astype(np.float64) / 255.0 if x.dtype == np.uint8 else x.astype(np.float64)
    s = x.shape[-1]
    _, halves = _geometry(s)
    size_cut = (2 * halves[0] + 1 + 2 * halves[1] + 1) / 2.0
    fg = x.max(axis=0) > threshold
    labels, count = ndimage.label(fg, structure=np.ones((3, 3), dtype=bool))
    min_area = max(2, int(round(4 * (s / 32) ** 2)))
    out: list[tuple[int, ShapeSpec]] = []
    for k, sl in enumerate(ndimage.find_objects(labels), start=1):
        if sl is None:
            continue
        m = labels[sl] == k
        area = int(m.sum())
        if area < min_area:
            continue
        rgb = x[:, sl[0], sl[1]][:, m].mean(axis=1)
        rgb = rgb / max(rgb.max(), 1e-8)
        colour = COLOURS[int(np.argmin(((PALETTE - rgb[None]) ** 2).sum(axis=1)))]
        h, w = m.shape
        fill = area / float(h * w)
        third = max(1, h // 3)
        top, bottom = m[:third].sum(), m[h - third:].sum()
        if fill > 0.85:
            kind = "square"
        elif top < 0.6 * max(bottom, 1):
            kind = "triangle"
        else:
            kind = "circle"
        size = "large" if max(h, w) > size_cut else "small"
        cy = (sl[0].start + sl[0].stop - 1) / 2.0
        cx = (sl[1].start + sl[1].stop - 1) / 2.0
        cell = (min(2, int(cy * 3 // s)), min(2, int(cx * 3 // s)))
        out.append((area, ShapeSpec(colour, kind, size, cell)))
    out.sort(key=lambda t: -t[0])
    return [spec for _, spec in out]


_ATTRS = ("colour", "kind", "size", "position")


def agreement(targets: Sequence[Sequence[ShapeSpec]], found: Sequence[Sequence[ShapeSpec]],
              held_out: Sequence[bool] | None = None) -> dict[str, float]:
    """How well images (``found``, e.g. :func:`parse_image` of generated images) follow their captions
    (``targets``, the shapes each caption describes).

    Each caption's shapes are matched one-to-one to the image's shapes by the assignment that maximises the number
    of agreeing attributes (Hungarian algorithm, :func:`scipy.optimize.linear_sum_assignment`); a caption shape
    left unmatched (too few shapes in the image) is wrong on every attribute. Returns fractions in [0, 1]:

    - ``acc_<colour|kind|size|position>``: per caption shape, the attribute of its matched shape is right;
    - ``acc_count``: the image has exactly as many shapes as the caption;
    - ``acc_all``: per image, right count and every attribute of every shape right;
    - ``binding``: over two-shape captions, right count and both matched shapes have the right (colour, kind)
      pair (a "red circle and blue square" rendered as a blue circle and a red square fails);
    - with ``held_out`` (per image), also ``acc_all_held_out`` / ``acc_all_seen`` and the ``n_*`` counts.
    """
    from scipy.optimize import linear_sum_assignment

    if len(targets) != len(found):
        raise ValueError(f"{len(targets)} captions but {len(found)} parsed images")
    hits = {a: 0 for a in _ATTRS}
    n_shapes = n_count = n_all = n_two = n_bind = 0
    all_ok: list[bool] = []
    for want, got in zip(targets, found):
        want, got = list(want), list(got)
        score = np.array([[sum(getattr(w, a) == getattr(g, a) for a in _ATTRS) for g in got] for w in want],
                         dtype=np.int64).reshape(len(want), len(got))
        rows, cols = linear_sum_assignment(-score) if got else (np.array([], int), np.array([], int))
        match = dict(zip(rows.tolist(), cols.tolist()))
        right_count = len(got) == len(want)
        ok = right_count
        bind = right_count
        for i, w in enumerate(want):
            g = got[match[i]] if i in match else None
            for a in _ATTRS:
                good = g is not None and getattr(g, a) == getattr(w, a)
                hits[a] += int(good)
                ok &= good
            bind &= g is not None and g.colour == w.colour and g.kind == w.kind
        n_shapes += len(want)
        n_count += int(right_count)
        n_all += int(ok)
        all_ok.append(bool(ok))
        if len(want) == 2:
            n_two += 1
            n_bind += int(bind)
    n = max(len(targets), 1)
    out = {f"acc_{a}": hits[a] / max(n_shapes, 1) for a in _ATTRS}
    out.update(acc_count=n_count / n, acc_all=n_all / n, binding=(n_bind / n_two) if n_two else float("nan"),
               n_images=float(len(targets)), n_two_shape=float(n_two))
    if held_out is not None:
        h = np.asarray(held_out, dtype=bool)
        ok = np.asarray(all_ok, dtype=bool)
        out["acc_all_held_out"] = float(ok[h].mean()) if h.any() else float("nan")
        out["acc_all_seen"] = float(ok[~h].mean()) if (~h).any() else float("nan")
        out["n_held_out"] = float(h.sum())
    return out


# ---------------------------------------------------------------------------------------------- class-name captions
#: per data set, class index → words for it (synonyms; the first is canonical)
CLASS_WORDS: dict[str, tuple[tuple[str, ...], ...]] = {
    "mnist": (("zero", "0"), ("one", "1"), ("two", "2"), ("three", "3"), ("four", "4"), ("five", "5"),
              ("six", "6"), ("seven", "7"), ("eight", "8"), ("nine", "9")),
    "cifar10": (("airplane", "aeroplane", "plane"), ("car", "automobile"), ("bird",), ("cat",), ("deer",),
                ("dog",), ("frog",), ("horse",), ("ship", "boat"), ("truck", "lorry")),
}
#: per data set, caption templates; the last one is used only in the test split
CLASS_TEMPLATES: dict[str, tuple[str, ...]] = {
    "mnist": ("a handwritten {w}", "the digit {w}", "an image of the number {w}", "{a} {w}, written by hand",
              "someone wrote {a} {w}"),
    "cifar10": ("a photo of {a} {w}", "a blurry photo of {a} {w}", "a small picture of {a} {w}",
                "an image showing {a} {w}", "this is a picture of {a} {w}"),
}


def _article(word: str) -> str:
    return "an" if (word[0] in "aeiou8" and word != "one") else "a"


def class_captions(labels: Sequence[int] | torch.Tensor, dataset: str, split: str = "train", *,
                   seed: int = 0) -> tuple[list[str], np.ndarray]:
    """Class-name captions of real images ("a handwritten seven", "a photo of a cat"), one per label.

    Image ``i`` gets a template and a synonym drawn from ``(seed, split, i)`` (SplitMix64 as above); train captions
    use ``CLASS_TEMPLATES[dataset][:-1]``, test captions all templates (the last one is test-only). Returns
    ``(captions, template_index)``.
    """
    if dataset not in CLASS_WORDS:
        raise ValueError(f"no class captions for data set {dataset!r}; choose one of {sorted(CLASS_WORDS)}")
    labels = np.asarray(torch.as_tensor(labels).cpu().numpy(), dtype=np.int64)
    words, temps = CLASS_WORDS[dataset], CLASS_TEMPLATES[dataset]
    if labels.size and (labels.min() < 0 or labels.max() >= len(words)):
        raise ValueError(f"labels must be in 0..{len(words) - 1} for {dataset}, got {labels.min()}..{labels.max()}")
    allowed = tuple(range(len(temps))) if split == "test" else tuple(range(len(temps) - 1))
    u = _stream(len(labels), seed, split, 0)
    out, which = [], np.zeros(len(labels), dtype=np.int64)
    for i, y in enumerate(labels):
        t = int(_pick(u[i, 0], allowed))  # type: ignore[arg-type]
        w = str(_pick(u[i, 1], words[y]))
        which[i] = t
        out.append(temps[t].format(w=w, a=_article(w)))
    return out, which


def parse_class_caption(caption: str, dataset: str) -> int:
    """The class index a class-name caption names (inverse of :func:`class_captions`)."""
    low = f" {caption.strip().lower()} "
    hits = {k for k, ws in enumerate(CLASS_WORDS[dataset]) for w in ws
            if re.search(rf"(?<=\s){re.escape(w)}(?=[\s,])", low)}
    if len(hits) != 1:
        raise CaptionError(f"caption {caption!r} names {len(hits)} {dataset} classes, expected exactly one")
    return hits.pop()

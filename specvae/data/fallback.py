"""Stand-in data: generated images in place of a data set this machine does not have, said out loud.

A chapter at the ``smoke`` preset only proves that its code path works, so on a machine without MNIST or the
faces it may run on generated Shape images instead (``load_dataset(..., fallback="shapes")``). Every such
substitution

- is refused when ``SPECVAE_REQUIRE_DATA=1`` (CI with the data: a missing data set must fail, not be replaced);
- returns an :class:`~specvae.data.ImageData` whose ``stand_in`` names what was used and whose ``notes`` start
  with ``STAND-IN`` (the notes travel into each run's stored result);
- emits a :class:`DataFallbackWarning`, which a notebook shows as the output of the cell that loaded the data;
- is recorded for the process (:func:`fallbacks`), so a chapter can show one summary (:func:`fallback_summary`).

Which preset may fall back is the caller's decision: chapters pass ``fallback=smoke_fallback(preset)``, which is
``"shapes"`` at ``smoke`` and ``None`` (no substitution: a missing data set is an error) at every other preset.
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from dataclasses import dataclass

__all__ = [
    "FALLBACKS",
    "DataFallbackWarning",
    "FallbackNote",
    "fallbacks",
    "fallback_summary",
    "clear_fallbacks",
    "require_data",
    "smoke_fallback",
    "REQUIRE_ENV",
]

#: The data sets a missing one may be replaced by (generated, so always present).
FALLBACKS: tuple[str, ...] = ("shapes",)
#: Set to 1 to make every missing data set an error, with no stand-in (what CI does when it has the data).
REQUIRE_ENV = "SPECVAE_REQUIRE_DATA"

_NOTES: list["FallbackNote"] = []


class DataFallbackWarning(UserWarning):
    """A data set was missing and generated images were used in its place (see :mod:`specvae.data.fallback`)."""


@dataclass(frozen=True)
class FallbackNote:
    """One substitution: ``requested`` (split ``split``) was missing under ``root``; ``used`` came instead."""

    requested: str
    split: str
    used: str
    root: str
    n_images: int
    image_size: int
    channels: int

    def message(self) -> str:
        return (f"STAND-IN: data set {self.requested!r} ({self.split}) was not found under {self.root}; "
                f"{self.n_images} generated {self.used!r} images ({self.channels}x{self.image_size}x"
                f"{self.image_size}) are used in its place, so numbers from these runs say nothing about "
                f"{self.requested}. `specvae data check` says how to get it.")


def require_data() -> bool:
    """True when ``SPECVAE_REQUIRE_DATA`` is set to 1/true/yes/on: no stand-ins, a missing data set fails."""
    return os.environ.get(REQUIRE_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def smoke_fallback(preset: str | None) -> str | None:
    """The ``fallback=`` a chapter passes to :func:`~specvae.data.load_dataset`: ``"shapes"`` at smoke, else None."""
    return "shapes" if preset == "smoke" else None


def fallbacks() -> list[FallbackNote]:
    """The substitutions made in this process so far (oldest first; one per data set and split)."""
    return list(_NOTES)


def clear_fallbacks() -> None:
    """Forget the recorded substitutions (tests)."""
    _NOTES.clear()


def fallback_summary() -> str:
    """One paragraph naming every data set replaced in this process, or ``""`` when none was."""
    if not _NOTES:
        return ""
    names = sorted({n.requested for n in _NOTES})
    used = sorted({n.used for n in _NOTES})
    return (f"**Stand-in data.** {', '.join(names)} {'is' if len(names) == 1 else 'are'} not on this machine; "
            f"this run used generated {', '.join(used)} images in {'its' if len(names) == 1 else 'their'} place "
            "(allowed at the smoke preset only). The numbers and figures below show that the code runs, "
            "nothing about those data sets. `specvae data check` says how to get them.")


def check_fallback(fallback: str | None) -> str | None:
    """Validate a ``fallback=`` argument (``None`` or one of :data:`FALLBACKS`)."""
    if fallback is not None and fallback not in FALLBACKS:
        raise ValueError(f"fallback must be None (a missing data set is an error) or one of {FALLBACKS} "
                         f"(generated images in its place), got {fallback!r}")
    return fallback


def stand_in(key: str, split: str, image_size: int | None, *, limit: int | None, seed: int, channels: int | None,
             fallback: str, root: str, error: Exception, load):
    """Load ``fallback`` shaped like ``key`` would have been, record it and warn; re-raise ``error`` if refused.

    ``load`` is :func:`~specvae.data.load_dataset` (passed in to avoid an import cycle).
    """
    from specvae.data.loaders import DATASETS

    if require_data():
        raise type(error)(f"{error}\n(No stand-in: {REQUIRE_ENV}=1 makes a missing data set an error.)") from error
    info = DATASETS[key]
    size = image_size or info.default_size or info.native_size or 64
    chans = channels or info.channels
    split_used = split if split in DATASETS[fallback].splits else "test"
    data = load(fallback, split_used, image_size=size, limit=limit or (10_000 if split == "train" else 1_000),
                seed=seed, channels=chans, progress=False)
    if data.channels != chans:  # Shapes come gray unless channels=3 was asked for
        from specvae.data.base import convert_channels

        data = dataclasses.replace(data, images=convert_channels(data.images, chans, name=fallback))
    note = FallbackNote(key, split, fallback, root, len(data), size, chans)
    if note not in _NOTES:
        _NOTES.append(note)
    warnings.warn(note.message(), DataFallbackWarning, stacklevel=3)
    return dataclasses.replace(data, name=key, split=split, stand_in=fallback, is_subset=True,
                               notes=f"{note.message()} {data.notes}".strip())

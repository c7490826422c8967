"""specvae.data: the book's data sets as uint8 tensors, the Shape generator, and on-device batching.

>>> from specvae.data import load_dataset, TensorBatcher
>>> d = load_dataset("shapes", "train", limit=1000)        # ImageData: uint8 (1000, 1, 32, 32)
>>> x = d.float()                                           # float32 in [0, 1]
>>> batches = TensorBatcher(d.images, 64, seed=0)           # infinite, reshuffled every epoch, resumable
>>> next(batches).shape
torch.Size([64, 1, 32, 32])

Data sets (:data:`DATASETS`): ``shapes`` (generated), ``mnist``, ``cifar10`` (full or the 6,102-image subset),
``faces`` (64-px CelebA-style crops in zip shards), ``imagenet-samples`` (one image per class), and ``celeba``,
``ffhq``, ``lsun-church`` for users who have them. Files are found under ``SPECVAE_DATA`` (or ``root=``);
:func:`check_data` reports what is present. At the smoke preset a chapter may let generated Shapes stand in for a
missing data set (``load_dataset(..., fallback="shapes")``, :mod:`specvae.data.fallback`), and says so.
Decoded JPEGs are cached under ``specvae.paths.cache_dir()/decoded``.
"""

from specvae.data.base import DataError, DataFormatError, DatasetNotFoundError, ImageData, resize_images
from specvae.data.batching import TensorBatcher
from specvae.data.fallback import (DataFallbackWarning, FallbackNote, fallback_summary, fallbacks, require_data,
                                   smoke_fallback)
from specvae.data.loaders import (BOOK_DATASETS, DATASETS, MNIST_MODES, DataCheck, DatasetInfo, check_data,
                                  format_check, load_dataset)
from specvae.data.shapes import generate_shapes, shape_parameters

__all__ = [
    "load_dataset",
    "ImageData",
    "TensorBatcher",
    "DATASETS",
    "BOOK_DATASETS",
    "DatasetInfo",
    "MNIST_MODES",
    "check_data",
    "DataCheck",
    "format_check",
    "generate_shapes",
    "shape_parameters",
    "resize_images",
    "DataError",
    "DatasetNotFoundError",
    "DataFormatError",
    "DataFallbackWarning",
    "FallbackNote",
    "fallbacks",
    "fallback_summary",
    "require_data",
    "smoke_fallback",
]

"""The quantisers of chapter 4 (FQ-VAE and its four baselines), one module each.

=======================  ==========================================================================
:class:`VectorQuantizer`  VQ-VAE (van den Oord et al. 2017): L2 lookup, codebook + β·commitment, STE
:class:`HQAQuantizer`     HQA (Williams et al. 2020): Gumbel-softmax, KL-to-uniform, annealing, code resets
:class:`StochasticQuantizer`  SQ-VAE Gaussian-I (Takida et al. 2022): stochastic, self-annealed, argmax at test
:class:`ClusteredQuantizer`   CVQ-VAE (Zheng & Vedaldi 2023): online anchor re-initialisation (γ = 0.99)
:class:`FQQuantizer`      FQ-VAE (Feng & Liu 2025): usage + Pearson-dependency codebook update, eqs. 6-10
=======================  ==========================================================================

Every quantiser maps ``z (..., dim)`` to ``(z_q, indices, terms)`` (see :mod:`.base`); codebook statistics over a
data set (usage, perplexity, dead codes, unit information) are in :mod:`specvae.metrics.codebook`.
"""

from .base import CodebookQuantizer, batch_perplexity, squared_distances, straight_through
from .cvq import ClusteredQuantizer
from .fq import FQQuantizer, pearson_dependency
from .hqa import HQAQuantizer
from .sq import StochasticQuantizer
from .vq import VectorQuantizer

__all__ = [
    "CodebookQuantizer",
    "VectorQuantizer",
    "HQAQuantizer",
    "StochasticQuantizer",
    "ClusteredQuantizer",
    "FQQuantizer",
    "pearson_dependency",
    "squared_distances",
    "batch_perplexity",
    "straight_through",
]

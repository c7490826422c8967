"""Reconstruction losses, one file per family; each an ``nn.Module`` with a functional twin.

* :class:`FFTLoss` / :func:`fft_loss` -- Björk et al. ICASSP 2022, eq. (2)            (``fft.py``)
* :class:`AzimuthalLoss` / :func:`azimuthal_loss` -- Durall et al. CVPR 2020, AI loss   (``azimuthal.py``)
* :class:`WatsonDFTLoss` -- Czolbe et al. NeurIPS 2020, Watson-DFT, gray / RGB          (``watson.py``)
* :class:`FocalFrequencyLoss` / :func:`focal_frequency_loss` -- Jiang et al. ICCV 2021  (``focal_frequency.py``)
* :class:`SpectrumLoss`, :class:`DynamicSpectrumLoss` -- Lin et al. CVPR 2023, FA-VAE SL / DSL, :class:`FeatureSpectrumLoss` (``spectrum.py``)
* the VAE objective and Björk's eq. (3) combination live in ``specvae.losses.vae``.

All take ``(pred, target)`` image batches ``(N, C, H, W)`` in [0, 1] and compute in float32 with autocast
disabled.
"""

from specvae.losses.azimuthal import AzimuthalLoss, azimuthal_loss
from specvae.losses.fft import FFTLoss, ParsevalMSE, fft_loss
from specvae.losses.focal_frequency import FocalFrequencyLoss, focal_frequency_loss
from specvae.losses.spectrum import DynamicSpectrumLoss, FeatureSpectrumLoss, SpectrumLoss
from specvae.losses.watson import WatsonDFTLoss

__all__ = [
    "FFTLoss",
    "fft_loss",
    "ParsevalMSE",
    "AzimuthalLoss",
    "azimuthal_loss",
    "WatsonDFTLoss",
    "FocalFrequencyLoss",
    "focal_frequency_loss",
    "SpectrumLoss",
    "DynamicSpectrumLoss",
    "FeatureSpectrumLoss",
]

# The VAE objective (owned by the chapter-1 module ``vae.py``): re-exported when present.
try:
    from specvae.losses import vae as _vae
except ModuleNotFoundError as _err:  # vae.py not written yet
    if _err.name != "specvae.losses.vae":
        raise
else:
    globals().update({_name: getattr(_vae, _name) for _name in _vae.__all__})
    __all__ += list(_vae.__all__)

"""Models of the reproduced papers. Import the sub-modules directly, e.g. ``from specvae.models.vae import IRMAEVAE``."""

from .upsample import UPSAMPLE_KINDS, make_upsample

__all__ = ["UPSAMPLE_KINDS", "make_upsample"]

"""specvae: how autoencoders lose (and recover) high-frequency detail.

The companion package of the specvae book. Sub-packages (imported on demand, so ``import specvae`` stays cheap):

- :mod:`specvae.spectral`    FFT helpers: frequency maps, azimuthal profiles, band energies, spectral RMSEs
- :mod:`specvae.losses`      spectral and perceptual losses as ``nn.Module`` s (FFT, FFL, AI, Watson-DFT, ...)
- :mod:`specvae.models`      the autoencoders of the reproduced papers
- :mod:`specvae.data`        data loaders (Shapes, MNIST, CIFAR-10, faces, ImageNet samples, ...)
- :mod:`specvae.metrics`     SSIM, PSNR, LPIPS, rFID, spectral and codebook metrics, weight resolution
- :mod:`specvae.train`       the one training loop, :func:`specvae.train.fit`
- :mod:`specvae.experiments` run configs, presets, the results store and the grid runner
- :mod:`specvae.plots`       figure helpers
"""

__version__ = "0.1.0"

__all__ = ["__version__"]

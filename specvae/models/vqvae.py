"""The baselines' shared conv backbone (the CVQ-VAE toy network), a spatial VQ autoencoder around any quantiser,
and HQA's greedy two-layer stack on the same blocks.

**Backbone** (zalandoresearch/pytorch-vq-vae ``vq-vae.ipynb``, identical in lyndonzheng/CVQ-VAE ``modules.py``),
for down-sampling factor ``f = 2**n_down``:

* encoder: ``n_down`` Conv 4×4 stride 2 (C → hidden/2 → hidden, ReLU after each) → Conv 3×3 (hidden → hidden) →
  residual stack → Conv 1×1 (hidden → code dim, the "pre-VQ conv");
* residual stack: ``n_res`` × [ReLU, Conv 3×3 hidden → res_hidden, ReLU, Conv 1×1 res_hidden → hidden] + skip, then
  ReLU;
* decoder: Conv 3×3 (code dim → hidden) → residual stack → ``n_up`` ConvTranspose 4×4 stride 2 (hidden → hidden/2,
  ReLU, → C), no output activation.

At ``n_down = 0`` (FQ-VAE's conv stage, which "modifies only the channel dimensions", Feng & Liu §4.1) the two
stride-2 convolutions become 3×3 stride-1 convolutions and the transposed ones 3×3 convolutions (OPEN-1 of the fact
sheet; our choice). At ``n_down = 1`` (one HQA layer, or FQ-VAE on LSUN) one of each is kept.

**Data range**: the models take images in [0, 1] (the project's convention), map them to [−1, 1] (the
``Normalize(0.5, 0.5)`` of CVQ-VAE and FQ-VAE) before the encoder, and return reconstructions mapped back to the
[0, 1] scale (not clamped). SQ-VAE's and HQA's official nets use [0, 1] data and a Sigmoid output and SQ-VAE's uses
BatchNorm; here all five methods share this backbone so that the comparison isolates the quantiser (the issue's
protocol), and each keeps its own loss (see the chapter module).

Ref: van den Oord et al. 2017 (VQ-VAE) §4.1; zalandoresearch/pytorch-vq-vae and lyndonzheng/CVQ-VAE
``modules.py`` (``Residual``, ``ResidualStack``, ``Encoder``, ``Decoder``, ``Model``: hidden 128, residual 32,
2 residual layers, code dim 64); Williams et al. 2020 (HQA) §3 and speechmatics/hqa (greedy layer-wise training,
``GlobalNormalization`` of the lower layer's z_e, decoding through the lower layer's quantiser).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

__all__ = ["Residual", "ResidualStack", "ToyEncoder", "ToyDecoder", "VQAutoencoder", "HQAStack",
           "GlobalNormalization", "check_divisible", "to_signed", "to_unit"]


def to_signed(x: Tensor) -> Tensor:
    """[0, 1] images → [−1, 1] (``Normalize(0.5, 0.5)``)."""
    return x * 2.0 - 1.0


def to_unit(y: Tensor) -> Tensor:
    """[−1, 1]-scaled outputs → the [0, 1] scale (no clamp)."""
    return (y + 1.0) * 0.5


def check_divisible(height: int, width: int, f: int, what: str = "image") -> tuple[int, int]:
    """``(height // f, width // f)``, or a clear error when the image size is not a multiple of ``f``."""
    if height % f or width % f:
        def fits(n: int) -> str:
            lo, hi = n - n % f, n - n % f + f
            return f"{lo} or {hi}" if lo > 0 else f"{hi}"
        raise ValueError(f"{what} size {height}×{width} is not divisible by the down-sampling factor f = {f}; "
                         f"resize or crop to a multiple of {f} (height {fits(height)}, width {fits(width)}), "
                         f"or choose an f that divides both sides")
    return height // f, width // f


class Residual(nn.Module):
    """``x + Conv1×1(ReLU(Conv3×3(ReLU(x))))`` (the toy network's residual block)."""

    def __init__(self, channels: int, res_hidden: int) -> None:
        super().__init__()
        self.block = nn.Sequential(nn.ReLU(), nn.Conv2d(channels, res_hidden, 3, padding=1), nn.ReLU(),
                                   nn.Conv2d(res_hidden, channels, 1))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.block(x)


class ResidualStack(nn.Module):
    """``n`` residual blocks followed by a ReLU."""

    def __init__(self, channels: int, res_hidden: int, n: int) -> None:
        super().__init__()
        self.layers = nn.Sequential(*[Residual(channels, res_hidden) for _ in range(n)])

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.layers(x))


def _levels(n: int, name: str) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"{name} must be an integer >= 0, got {n!r}")
    return n


class ToyEncoder(nn.Module):
    """Image or feature map ``(B, in_channels, H, W)`` → ``(B, out_dim, H/2^n_down, W/2^n_down)``.

    ``forward(x, return_hidden=True)`` also returns the last hidden features (before the 1×1 conv), which FQ-VAE's
    routing MLP pools. See the module docstring for the layers.
    """

    def __init__(self, in_channels: int, hidden: int = 128, res_hidden: int = 32, n_res: int = 2, out_dim: int = 64,
                 n_down: int = 2) -> None:
        super().__init__()
        n_down = _levels(n_down, "n_down")
        if hidden < 2 or hidden % 2:
            raise ValueError(f"hidden must be an even integer >= 2, got {hidden!r}")
        layers: list[nn.Module] = []
        if n_down == 0:
            layers += [nn.Conv2d(in_channels, hidden // 2, 3, padding=1), nn.ReLU(),
                       nn.Conv2d(hidden // 2, hidden, 3, padding=1), nn.ReLU()]
        elif n_down == 1:
            layers += [nn.Conv2d(in_channels, hidden // 2, 4, stride=2, padding=1), nn.ReLU(),
                       nn.Conv2d(hidden // 2, hidden, 3, padding=1), nn.ReLU()]
        else:
            c = in_channels
            for i in range(n_down):
                out = hidden // 2 if i < n_down - 1 else hidden
                layers += [nn.Conv2d(c, out, 4, stride=2, padding=1), nn.ReLU()]
                c = out
        layers += [nn.Conv2d(hidden, hidden, 3, padding=1), ResidualStack(hidden, res_hidden, n_res)]
        self.body = nn.Sequential(*layers)
        self.to_code = nn.Conv2d(hidden, out_dim, 1)
        self.in_channels = in_channels
        self.factor = 2 ** n_down

    def forward(self, x: Tensor, return_hidden: bool = False):
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"expected (B, {self.in_channels}, H, W) input, got {tuple(x.shape)}")
        h = self.body(x)
        z = self.to_code(h)
        return (z, h) if return_hidden else z


class ToyDecoder(nn.Module):
    """``(B, in_dim, h, w)`` → ``(B, out_channels, h·2^n_up, w·2^n_up)`` (no output activation)."""

    def __init__(self, in_dim: int = 64, hidden: int = 128, res_hidden: int = 32, n_res: int = 2,
                 out_channels: int = 3, n_up: int = 2) -> None:
        super().__init__()
        n_up = _levels(n_up, "n_up")
        layers: list[nn.Module] = [nn.Conv2d(in_dim, hidden, 3, padding=1), ResidualStack(hidden, res_hidden, n_res)]
        if n_up == 0:
            layers += [nn.Conv2d(hidden, hidden // 2, 3, padding=1), nn.ReLU(),
                       nn.Conv2d(hidden // 2, out_channels, 3, padding=1)]
        elif n_up == 1:
            layers += [nn.ConvTranspose2d(hidden, hidden // 2, 4, stride=2, padding=1), nn.ReLU(),
                       nn.Conv2d(hidden // 2, out_channels, 3, padding=1)]
        else:
            c = hidden
            for i in range(n_up):
                last = i == n_up - 1
                out = out_channels if last else hidden // 2
                layers.append(nn.ConvTranspose2d(c, out, 4, stride=2, padding=1))
                if not last:
                    layers.append(nn.ReLU())
                c = out
        self.body = nn.Sequential(*layers)
        self.in_dim = in_dim

    def forward(self, z: Tensor) -> Tensor:
        if z.ndim != 4 or z.shape[1] != self.in_dim:
            raise ValueError(f"expected (B, {self.in_dim}, h, w) input, got {tuple(z.shape)}")
        return self.body(z)


def _factor_levels(f: int) -> int:
    if isinstance(f, bool) or not isinstance(f, int) or f < 1 or f & (f - 1):
        raise ValueError(f"the down-sampling factor f must be a power of two (1, 2, 4, ...), got {f!r}")
    return int(math.log2(f))


class VQAutoencoder(nn.Module):
    """The toy backbone at factor ``f`` with any quantiser on its ``(H/f)·(W/f)`` code vectors.

    ``forward(x)`` with ``x (B, C, H, W)`` in [0, 1] returns ``(recon, indices, terms)``: ``recon (B, C, H, W)`` on
    the [0, 1] scale, ``indices (B, H/f, W/f)``, and the quantiser's ``terms`` (``terms["loss"]`` to add to the
    reconstruction loss).

    Args:
        quantizer: a module ``z (..., code_dim) -> (z_q, indices, terms)`` (:mod:`specvae.models.quantizers`).
        in_channels: image channels.
        hidden, res_hidden, n_res: backbone widths (128, 32, 2: CVQ-VAE's defaults).
        code_dim: channels of the code vectors (must equal ``quantizer.dim``; 64).
        f: down-sampling factor (4: the FQ-VAE/CVQ-VAE protocol).
        image_size: the (square) image size the model is used at, for :attr:`grid_size` (optional).

    It also offers the tokenizer interface of :class:`specvae.models.cat.VQTokenizer` (``codebook_size``,
    ``grid_size``, ``encode_indices``, ``decode_indices``), for a prior over its codes.
    """

    def __init__(self, quantizer: nn.Module, in_channels: int = 3, hidden: int = 128, res_hidden: int = 32,
                 n_res: int = 2, code_dim: int = 64, f: int = 4, image_size: int | None = None) -> None:
        super().__init__()
        levels = _factor_levels(f)
        qdim = getattr(quantizer, "dim", code_dim)
        if qdim != code_dim:
            raise ValueError(f"the quantiser's code dimension ({qdim}) differs from code_dim={code_dim}; build them "
                             "with the same dimension")
        self.encoder = ToyEncoder(in_channels, hidden, res_hidden, n_res, code_dim, n_down=levels)
        self.quantizer = quantizer
        self.decoder = ToyDecoder(code_dim, hidden, res_hidden, n_res, in_channels, n_up=levels)
        self.f = f
        self.in_channels = in_channels
        self.image_size = image_size
        if image_size is not None:
            check_divisible(image_size, image_size, f)

    # the interface of specvae.models.cat.VQTokenizer (a prior over the codes, Fig. 6)
    @property
    def codebook_size(self) -> int:
        return int(self.quantizer.num_codes)

    @property
    def grid_size(self) -> tuple[int, int]:
        """``(H/f, W/f)`` for the ``image_size`` the model was built for."""
        if self.image_size is None:
            raise ValueError("grid_size needs the image size: build the model with image_size=...")
        return (self.image_size // self.f, self.image_size // self.f)

    @torch.no_grad()
    def encode_indices(self, x: Tensor) -> Tensor:
        """Images in [0, 1] → code ids ``(B, H/f, W/f)`` (call in eval mode)."""
        return self.latents(x)[1]

    @torch.no_grad()
    def decode_indices(self, idx: Tensor) -> Tensor:
        """Code ids ``(B, h, w)`` → images on the [0, 1] scale."""
        return self.decode_codes(idx)

    def encode(self, x: Tensor) -> Tensor:
        """``z_e (B, code_dim, H/f, W/f)`` of images in [0, 1]."""
        check_divisible(x.shape[-2], x.shape[-1], self.f)
        return self.encoder(to_signed(x))

    def quantize(self, z: Tensor) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        zq, idx, terms = self.quantizer(rearrange(z, "b d h w -> b h w d"))
        return rearrange(zq, "b h w d -> b d h w"), idx, terms

    def decode(self, z_q: Tensor) -> Tensor:
        return to_unit(self.decoder(z_q))

    def decode_codes(self, indices: Tensor) -> Tensor:
        """Images (on the [0, 1] scale) from code ids ``(B, h, w)``."""
        return self.decode(rearrange(self.quantizer.lookup(indices), "b h w d -> b d h w"))

    def latents(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(z_e as (B, h, w, code_dim), indices (B, h, w))`` of the current quantiser (eval mode: deterministic
        where the quantiser is)."""
        z = rearrange(self.encode(x), "b d h w -> b h w d")
        _, idx, _ = self.quantizer(z)
        return z, idx

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        z_q, idx, terms = self.quantize(self.encode(x))
        return self.decode(z_q), idx, terms


class GlobalNormalization(nn.Module):
    """Running per-channel mean/std (Welford) of ``(B, C, h, w)`` inputs, updated in training; ``unnorm`` inverts.

    Computed in float32 whatever the input dtype; the std is floored at 1e-6 (a constant channel).

    Ref: speechmatics/hqa ``GlobalNormalization`` (``scale=True``), which normalises a lower layer's z_e before the
    next layer sees it.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(1, channels, 1, 1))
        self.register_buffer("m2", torch.zeros(1, channels, 1, 1))
        self.register_buffer("count", torch.zeros(()))

    def std(self) -> Tensor:
        return (self.m2 / self.count.clamp_min(1.0)).clamp_min(0.0).sqrt().clamp_min(1e-6)

    def forward(self, x: Tensor) -> Tensor:
        x = x.float()  # statistics in float32 also under bf16 autocast (a bf16 sum made m2 negative: NaN std)
        if self.training:
            with torch.no_grad():
                n = x.shape[0] * x.shape[2] * x.shape[3]
                new_mean = (self.mean * self.count + x.sum(dim=(0, 2, 3), keepdim=True)) / (self.count + n)
                self.m2.add_(((x - self.mean) * (x - new_mean)).sum(dim=(0, 2, 3), keepdim=True))
                self.mean.copy_(new_mean)
                self.count.add_(n)
        return (x - self.mean) / self.std()

    def unnorm(self, x: Tensor) -> Tensor:
        return x * self.std() + self.mean


class HQAStack(nn.Module):
    """HQA's greedy stack of ``layers`` ×2 layers (f = 2^layers) on the toy blocks, trained one layer at a time.

    Layer 0 encodes the image (``ToyEncoder(n_down=1)``), quantises with its own quantiser and decodes back to the
    image. Layer i > 0 encodes the (frozen) lower stack's normalised z_e and is trained to reconstruct it. The full
    stack reconstructs an image from the top codes by decoding to the lower z_e (un-normalised), quantising it with
    the lower layer's quantiser and decoding on down (HQA's ``decode``). Only the top layer's codes count as the
    model's tokens, at ``(H/f)·(W/f)`` like the other methods.

    Train with :meth:`set_active_layer` (freezes every other layer) and :meth:`layer_loss`; ``forward(x)``
    reconstructs with the whole stack: ``(recon (B, C, H, W) on the [0, 1] scale, top indices, top terms)``.

    Args:
        quantizers: one quantiser per layer (:class:`~specvae.models.quantizers.HQAQuantizer`), bottom first.
        in_channels, hidden, res_hidden, n_res, code_dim: as :class:`VQAutoencoder` (every layer uses them).
    """

    def __init__(self, quantizers: list[nn.Module], in_channels: int = 3, hidden: int = 128, res_hidden: int = 32,
                 n_res: int = 2, code_dim: int = 64) -> None:
        super().__init__()
        if len(quantizers) < 1:
            raise ValueError("HQAStack needs at least one layer (one quantiser per layer)")
        self.encoders = nn.ModuleList()
        self.decoders = nn.ModuleList()
        self.quantizers = nn.ModuleList(quantizers)
        self.norms = nn.ModuleList()
        for i, q in enumerate(quantizers):
            if getattr(q, "dim", code_dim) != code_dim:
                raise ValueError(f"quantiser {i} has dim {q.dim}, not code_dim={code_dim}")
            c = in_channels if i == 0 else code_dim
            self.encoders.append(ToyEncoder(c, hidden, res_hidden, n_res, code_dim, n_down=1))
            self.decoders.append(ToyDecoder(code_dim, hidden, res_hidden, n_res, c, n_up=1))
            if i > 0:
                self.norms.append(GlobalNormalization(code_dim))
        self.f = 2 ** len(quantizers)
        self.in_channels = in_channels
        self.active = len(quantizers) - 1

    @property
    def n_layers(self) -> int:
        return len(self.quantizers)

    @property
    def quantizer(self) -> nn.Module:
        """The top layer's quantiser (the model's codes)."""
        return self.quantizers[-1]

    def set_active_layer(self, i: int) -> None:
        """Train layer ``i`` only: its parameters require grad, every other layer's do not."""
        if not 0 <= i < self.n_layers:
            raise ValueError(f"layer {i} does not exist; the stack has layers 0 … {self.n_layers - 1}")
        self.active = i
        for j in range(self.n_layers):
            for m in (self.encoders[j], self.decoders[j], self.quantizers[j]):
                m.requires_grad_(j == i)

    def _q(self, i: int, z: Tensor) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        zq, idx, terms = self.quantizers[i](rearrange(z, "b d h w -> b h w d"))
        return rearrange(zq, "b h w d -> b d h w"), idx, terms

    def encode(self, x: Tensor, upto: int | None = None) -> Tensor:
        """z_e of layer ``upto`` (default: the top), from images in [0, 1]; lower layers' z_e are normalised."""
        top = self.n_layers - 1 if upto is None else upto
        check_divisible(x.shape[-2], x.shape[-1], 2 ** (top + 1))
        h = self.encoders[0](to_signed(x))
        for i in range(1, top + 1):
            h = self.encoders[i](self.norms[i - 1](h))
        return h

    def decode_from(self, i: int, z_q: Tensor) -> Tensor:
        """Decode layer ``i``'s quantised z down to an image (on the [0, 1] scale)."""
        out = self.decoders[i](z_q)
        for j in range(i - 1, -1, -1):
            lower = self.norms[j].unnorm(out)
            zq_lower, _, _ = self._q(j, lower)
            out = self.decoders[j](zq_lower)
        return to_unit(out)

    def decode_codes(self, indices: Tensor) -> Tensor:
        return self.decode_from(self.n_layers - 1, rearrange(self.quantizer.lookup(indices), "b h w d -> b d h w"))

    def latents(self, x: Tensor) -> tuple[Tensor, Tensor]:
        z = self.encode(x)
        _, idx, _ = self._q(self.n_layers - 1, z)
        return rearrange(z, "b d h w -> b h w d"), idx

    def layer_loss(self, x: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """HQA's loss of the active layer: ``(‖target − recon‖² + 0.001·KL + 0.001·commit)/dims`` per image.

        Layer 0's target is the image on the [0, 1] scale (HQA's data range); layer i > 0's is the lower stack's
        normalised z_e (computed without gradients). Terms: ``mse`` (mean squared error of the target),
        ``layer`` and the quantiser's terms.
        """
        i = self.active
        if i == 0:
            target = x
            z = self.encoders[0](to_signed(x))
            zq, idx, terms = self._q(0, z)
            pred = to_unit(self.decoders[0](zq))
        else:
            with torch.no_grad():
                lower = self.encoders[0](to_signed(x))
                for j in range(1, i):
                    lower = self.encoders[j](self.norms[j - 1](lower))
            target = self.norms[i - 1](lower).detach()
            zq, idx, terms = self._q(i, self.encoders[i](target))
            pred = self.decoders[i](zq)
        dims = float(target[0].numel())
        sse = (pred.float() - target.float()).pow(2).flatten(1).sum(1).mean()
        loss = (sse + terms["loss"]) / dims
        logged = {k: v for k, v in terms.items() if k != "loss"}
        logged["mse"] = (sse / dims).detach()
        logged["layer"] = torch.tensor(float(i), device=x.device)
        return loss, logged

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        top = self.n_layers - 1
        zq, idx, terms = self._q(top, self.encode(x))
        return self.decode_from(top, zq), idx, terms

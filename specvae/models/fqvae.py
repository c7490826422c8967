"""FQ-VAE (Feng & Liu 2025): quantising 2-D FFT components of the encoder's features.

Pipeline (shapes for CIFAR-10, 32×32 RGB, f = 4, D = 2 channels, N = 32 filter bases; Feng & Liu §3.2, Fig. 1):

1. **Conv stage** (§3.2.2, §4.1: "modifies only the channel dimensions … without altering their resolution"):
   the toy backbone's encoder with stride-1 convolutions (:class:`~specvae.models.vqvae.ToyEncoder`,
   ``n_down = stage_down``, 0 except on LSUN), x ∈ [−1, 1] → z (B, D, h, w) = (B, 2, 32, 32).
2. **2-D FFT** (eq. 2): ``F_d = rfft2(z_d, norm="ortho")`` (B, D, h, ⌊w/2⌋+1), float32, autocast off.
3. **Dynamic filter** (eqs. 3-5, :class:`DynamicFilter`): an MLP maps the pooled conv features to m ∈ ℝ^{N·D},
   laid out channel-major; r_{d,i} = softmax_i(m_{dN+i}) (eq. 4); N learnable complex bases K_i shared by the
   channels; 𝒦_d = Σ_i r_{d,i} K_i (eq. 5) and z_e = 𝒦 ⊙ F (eq. 3).
4. **Frequency quantiser**: the U = D·N terms ``Y_{d,i} = r_{d,i} K_i ⊙ F_d`` *before* the sum of eq. 5 are the
   units quantised ("each element serves as the minimum unit for quantization"; "U = N × D … the number of
   frequency features", §3.2.4, §4.3): each is one code vector of 2·h·(⌊w/2⌋+1) reals (real and imaginary parts,
   1088 on CIFAR-10) looked up in a K = 512 codebook with FQ-VAE's update (:class:`~specvae.models.quantizers.FQQuantizer`).
5. **GCM** (eq. 12, :class:`GCM`): one weight w_u ∈ (0, 1) per quantised component (eq. 11: z_e ≈ Σ w_u e_u).
6. **Recombination and inverse FFT**: Σ_i w_{d,i} q_{d,i} per channel (eq. 5 after quantisation), then
   ``irfft2(·, s=(h, w), norm="ortho")`` → (B, D, h, w).
7. **Conv decoder**: the toy decoder with stride-1 convolutions, D → 3 channels, on the [−1, 1] scale; the model
   returns it mapped to [0, 1].

Token parity (§4.2): U = D·N equals the number of code vectors of the baselines at down-sampling f = 4,
(H/4)·(W/4): 49 on MNIST, 64 on CIFAR-10, 256 at 64×64. The model checks it and names the (D, N) that fit.

The feature extractors of Table 4 are options of this model (``extractor``), all quantising U tokens with the
same quantiser and GCM:

* ``"fft"``: the above (the paper's);
* ``"conv"``: the baselines' strided conv encoder/decoder at factor f (VQ-VAE's "convolutional quantization";
  with ``codebook_update="none"`` and ``gcm=False`` this is exactly the VQ-VAE baseline's network);
* ``"transformer"``: the conv stage, then a ViT-VQGAN-style transformer over f×f patches of z (U tokens of
  ``code_dim`` values), quantised, and a mirrored transformer decoder back to z (:class:`TransformerTokens`).

The ablation of Table 2 toggles ``extractor`` ("conv" = spatial quantisation, "fft" = frequency quantisation),
``codebook_update`` ("none" = VQ-VAE's codebook, "anchor" = usage/anchor re-initialisation, "dependency" =
+ Pearson dependency) and ``gcm``.

Choices where the paper is silent (made once, here; the chapter lists them):

* conv stage and decoder layers: the CVQ-VAE toy network with stride-1 convolutions (OPEN-1);
* FFT normalisation ``"ortho"`` (eq. 2's prefactor extracts as 1/√(HW), DFFormer's choice) (OPEN-2);
* complex components as real vectors (view_as_real, flattened) for the lookup and the losses (OPEN-3);
* routing MLP: global average pool of the conv stage's last hidden features → Linear → ReLU → Linear(N·D)
  (width max(8, hidden/4), DFFormer's 0.25 ratio); bases initialised ~ 0.02·N(0, 1) (DFFormer) (OPEN-5);
* each quantised component is weighted and summed over i within its channel before the inverse FFT (OPEN-6);
* GCM: vertex summary = mean modulus of each quantised component (mean |x| for real tokens), see :class:`GCM`
  (OPEN-8).

Ref: Feng & Liu 2025, "Frequency-Quantized Variational Autoencoder Based on 2D-FFT for Enhanced Image
Reconstruction and Generation", CMC 83(2):2087-2107, §3.2 (eqs. 2-5, 11, 12), §4.1-4.3; Tatsunami & Taki 2024
(DFFormer) for the dynamic filter (okojoalg/dfformer ``models/dfformer.py``: routing MLP, bases
``randn(·)·0.02``, ``rfft2/irfft2(norm="ortho")``); Xiang et al. 2023 (AGCA) for the GCM; Yu et al. 2021
(ViT-VQGAN) for the transformer extractor.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from specvae.models.quantizers import FQQuantizer, VectorQuantizer
from specvae.models.vqvae import ToyDecoder, ToyEncoder, check_divisible, to_signed, to_unit

__all__ = ["FQVAE", "DynamicFilter", "GCM", "TransformerTokens", "EXTRACTORS", "CODEBOOK_UPDATES",
           "token_pairs", "check_token_parity", "frequency_code_dim"]

EXTRACTORS = ("fft", "conv", "transformer")
CODEBOOK_UPDATES = ("none", "anchor", "dependency")


def frequency_code_dim(height: int, width: int) -> int:
    """Reals per frequency component: 2·h·(⌊w/2⌋+1) (840 for 28×28, 1088 for 32×32, 4224 for 64×64)."""
    return 2 * height * (width // 2 + 1)


def token_pairs(tokens: int) -> list[tuple[int, int]]:
    """Every (D, N) with D·N = ``tokens``, by increasing D."""
    return [(d, tokens // d) for d in range(1, tokens + 1) if tokens % d == 0]


def check_token_parity(image_size: Sequence[int], f: int, D: int, N: int) -> int:
    """U = D·N, or a clear error when it differs from the baselines' token count (H/f)·(W/f)."""
    h, w = check_divisible(int(image_size[0]), int(image_size[1]), f)
    tokens = h * w
    if D * N != tokens:
        pairs = ", ".join(f"D={d}, N={n}" for d, n in token_pairs(tokens))
        raise ValueError(f"D·N = {D}·{N} = {D * N} frequency components, but a baseline at f = {f} on "
                         f"{image_size[0]}×{image_size[1]} images has {h}·{w} = {tokens} code vectors; FQ-VAE keeps "
                         f"the two equal (§4.2). Choose D·N = {tokens}: {pairs} (or pass f=None to skip the check)")
    return tokens


class DynamicFilter(nn.Module):
    """FQ-VAE's data-dependent frequency filter, eqs. (3)-(5): N complex bases mixed by an MLP's softmax weights.

    Args:
        channels: D, the channels of z.
        num_filters: N, the number of bases K_i (shared by the channels).
        height, width: the spatial size of z (the bases are ``height × (width//2+1)`` complex maps).
        route_in: features the routing MLP pools (the conv stage's hidden width).
        route_hidden: the MLP's hidden width (default max(8, route_in // 4)).

    Shapes: :meth:`routing` ``(B, route_in, h, w) → r (B, D, N)``; :meth:`filters` ``r → 𝒦 (B, D, h, w//2+1)``
    complex; :meth:`components` ``(z (B, D, h, w), r) → Y (B, D, N, h, w//2+1)`` complex; ``forward`` gives eq. 3's
    ``z_e = 𝒦 ⊙ F(z)`` = ``components(z, r).sum(2)``.
    """

    def __init__(self, channels: int, num_filters: int, height: int, width: int, route_in: int,
                 route_hidden: int | None = None) -> None:
        super().__init__()
        self.channels, self.num_filters, self.height, self.width = channels, num_filters, height, width
        self.bases = nn.Parameter(torch.randn(num_filters, height, width // 2 + 1, 2) * 0.02)
        hidden = route_hidden or max(8, route_in // 4)
        self.route = nn.Sequential(nn.Linear(route_in, hidden), nn.ReLU(), nn.Linear(hidden, num_filters * channels))

    def complex_bases(self) -> Tensor:
        """K (N, h, w//2+1) complex64."""
        return torch.view_as_complex(self.bases.float().contiguous())

    def coefficients(self, features: Tensor) -> Tensor:
        """m (B, N·D) of the MLP from the pooled features (before the softmax)."""
        return self.route(features.mean(dim=(2, 3)))

    def routing(self, features: Tensor) -> Tensor:
        """r_{d,i} = exp(m_{dN+i}) / Σ_n exp(m_{dN+n}) (eq. 4): ``(B, D, N)``, float32."""
        m = self.coefficients(features).float()
        return m.view(m.shape[0], self.channels, self.num_filters).softmax(dim=-1)

    def filters(self, r: Tensor) -> Tensor:
        """𝒦_d = Σ_i r_{d,i} K_i (eq. 5): ``(B, D, h, w//2+1)`` complex."""
        with torch.autocast(r.device.type, enabled=False):
            return torch.einsum("bdn,nhw->bdhw", r.float().to(torch.complex64), self.complex_bases())

    def spectrum(self, z: Tensor) -> Tensor:
        """F(z) = rfft2(z, norm="ortho") in float32 (eq. 2)."""
        with torch.autocast(z.device.type, enabled=False):
            return torch.fft.rfft2(z.float(), norm="ortho")

    def components(self, z: Tensor, r: Tensor) -> Tensor:
        """Y_{d,i} = r_{d,i} K_i ⊙ F(z)_d: ``(B, D, N, h, w//2+1)`` complex (the units FQ-VAE quantises)."""
        if z.shape[-2:] != (self.height, self.width) or z.shape[1] != self.channels:
            raise ValueError(f"DynamicFilter: expected z of shape (B, {self.channels}, {self.height}, {self.width}), "
                             f"got {tuple(z.shape)}")
        with torch.autocast(z.device.type, enabled=False):
            spec = self.spectrum(z)
            return r.float()[..., None, None] * self.complex_bases()[None, None] * spec[:, :, None]

    def forward(self, z: Tensor, features: Tensor) -> Tensor:
        """z_e = 𝒦 ⊙ F(z) (eq. 3), complex ``(B, D, h, w//2+1)``."""
        with torch.autocast(z.device.type, enabled=False):
            return self.filters(self.routing(features)) * self.spectrum(z)

    def inverse(self, spectrum: Tensor) -> Tensor:
        """irfft2(·, s=(h, w), norm="ortho"): complex ``(B, D, h, w//2+1)`` → real ``(B, D, h, w)``."""
        with torch.autocast(spectrum.device.type, enabled=False):
            return torch.fft.irfft2(spectrum, s=(self.height, self.width), norm="ortho")


class GCM(nn.Module):
    """FQ-VAE's graph convolutional module (eq. 12): one weight in (0, 1) per quantised component (vertex).

    .. math::
        y = W_1 s,\\qquad \\hat A = A\\,B(y) + C,\\qquad g = \\mathrm{ReLU}(W_2 * (y \\hat A)),\\qquad
        w = \\sigma(W_3 g),

    for vertex summaries ``s (B, U)``: W_1 the "1 × 1 convolution" (U → U, no bias), A = I (U × U, fixed: "the
    self-relationship of each feature vertex"), B(y) = diag(softmax_u(Conv1d(y))) ("a one-dimensional convolution
    followed by a softmax"), C a learnable U × U adjacency initialised to 1e-6, W_2 a 1-D convolution and W_3 a
    U → U linear map ("W, the weights of different network layers"); ``f̂ = W f (A × B + C)``. The layer order
    after the graph product and the sigmoid follow AGCA, which FQ-VAE cites as its model.

    Args:
        vertices: U = D·N (the number of quantised components).
        kernel_size: size of the 1-D convolutions (AGCA: 1).

    Shapes: ``forward(s (B, U)) → w (B, U)``; :meth:`adjacency` ``(B, U, U)``; :meth:`vertex_weights` = diag of B.
    Ref: Feng & Liu 2025 §3.2.4, eq. (12), Fig. 2; Xiang et al. 2023 (AGCA), the layer pattern GAP → Conv1×1 →
    A0 ⊙ softmax(Conv1d) + A2 → ReLU(Conv1d) → sigmoid(Conv1×1).
    """

    def __init__(self, vertices: int, kernel_size: int = 1) -> None:
        super().__init__()
        if vertices < 1:
            raise ValueError(f"GCM needs at least one vertex, got {vertices}")
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"GCM: kernel_size must be a positive odd integer, got {kernel_size}")
        self.vertices = vertices
        self.proj = nn.Linear(vertices, vertices, bias=False)
        self.vertex_conv = nn.Conv1d(1, 1, kernel_size, padding=kernel_size // 2, bias=False)
        self.register_buffer("A", torch.eye(vertices))
        self.C = nn.Parameter(torch.full((vertices, vertices), 1e-6))
        self.mix = nn.Conv1d(1, 1, kernel_size, padding=kernel_size // 2, bias=False)
        self.out = nn.Linear(vertices, vertices)

    def vertex_weights(self, y: Tensor) -> Tensor:
        """The diagonal of B: softmax over the U vertices of the 1-D convolution of y, ``(B, U)``."""
        return self.vertex_conv(y.unsqueeze(1)).squeeze(1).softmax(dim=-1)

    def adjacency(self, y: Tensor) -> Tensor:
        """A × B(y) + C, ``(B, U, U)``."""
        return self.A @ torch.diag_embed(self.vertex_weights(y)) + self.C

    def forward(self, s: Tensor) -> Tensor:
        if s.ndim != 2 or s.shape[1] != self.vertices:
            raise ValueError(f"GCM: expected vertex summaries (B, {self.vertices}), got {tuple(s.shape)}")
        y = self.proj(s)
        g = torch.bmm(y.unsqueeze(1), self.adjacency(y)).squeeze(1)
        g = F.relu(self.mix(g.unsqueeze(1)).squeeze(1))
        return torch.sigmoid(self.out(g))


class TransformerTokens(nn.Module):
    """Table 4's transformer feature extractor (ViT-VQGAN style): f×f patches of z → U tokens of ``code_dim``.

    Encoder: patches (D·f² values) → Linear → + learned positions → ``depth`` pre-norm transformer blocks →
    LayerNorm → Linear(code_dim). Decoder (mirrored): Linear → + positions → ``depth`` blocks → LayerNorm →
    Linear(D·f²) → patches. Global self-attention over the U tokens is the "global transformer-based feature
    extractor" of §4.3; its cost grows with U², the FFT's with U log U.
    Ref: Yu et al. 2021 (ViT-VQGAN) §3.1; Feng & Liu 2025 §4.3 ("mainly referencing ViT-VQGAN").
    """

    def __init__(self, channels: int, height: int, width: int, patch: int, code_dim: int = 64, width_model: int = 128,
                 depth: int = 2, heads: int = 4, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        gh, gw = check_divisible(height, width, patch, "feature map")
        self.patch, self.grid = patch, (gh, gw)
        tokens, patch_dim = gh * gw, channels * patch * patch

        def blocks() -> nn.TransformerEncoder:
            layer = nn.TransformerEncoderLayer(width_model, heads, int(width_model * mlp_ratio), dropout=0.0,
                                               activation="gelu", batch_first=True, norm_first=True)
            return nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)

        self.embed = nn.Linear(patch_dim, width_model)
        self.pos_enc = nn.Parameter(torch.randn(1, tokens, width_model) * 0.02)
        self.encoder = blocks()
        self.enc_norm = nn.LayerNorm(width_model)
        self.to_code = nn.Linear(width_model, code_dim)
        self.from_code = nn.Linear(code_dim, width_model)
        self.pos_dec = nn.Parameter(torch.randn(1, tokens, width_model) * 0.02)
        self.decoder = blocks()
        self.dec_norm = nn.LayerNorm(width_model)
        self.unembed = nn.Linear(width_model, patch_dim)

    def encode(self, z: Tensor) -> Tensor:
        t = rearrange(z, "b c (h p1) (w p2) -> b (h w) (c p1 p2)", p1=self.patch, p2=self.patch)
        t = self.encoder(self.embed(t) + self.pos_enc)
        return self.to_code(self.enc_norm(t))

    def decode(self, tokens: Tensor) -> Tensor:
        t = self.decoder(self.from_code(tokens) + self.pos_dec)
        t = self.unembed(self.dec_norm(t))
        return rearrange(t, "b (h w) (c p1 p2) -> b c (h p1) (w p2)", h=self.grid[0], w=self.grid[1],
                         p1=self.patch, p2=self.patch)


def _size(image_size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(image_size, int):
        return image_size, image_size
    h, w = (int(v) for v in image_size)
    return h, w


class FQVAE(nn.Module):
    """FQ-VAE with its options (extractor, codebook update, GCM) for Tables 1-4.

    Args:
        in_channels: image channels (1 or 3).
        image_size: H (or (H, W)) of the images the model is built for.
        D: channels of the conv stage's output (2: the paper's best on CIFAR-10; 1 on MNIST).
        N: number of filter bases (32 on CIFAR-10; U = D·N components).
        extractor: ``"fft"`` (the paper's), ``"conv"`` or ``"transformer"`` (Table 4), see the module docstring.
        f: the baselines' down-sampling factor that fixes the token count U = (H/f)·(W/f) (4); ``None`` skips the
            D·N check for ``"fft"``.
        stage_down: stride-2 levels of the conv stage (0; the paper halves the resolution on LSUN only).
        codebook_size: K (512).
        beta: commitment weight (0.25).
        codebook_update: ``"dependency"`` (eqs. 6-10), ``"anchor"`` (usage/anchor only, δ ≡ 1) or ``"none"``
            (VQ-VAE's codebook).
        gcm: use the GCM (eq. 12).
        hidden, res_hidden, n_res: conv widths (128, 32, 2: the toy backbone's).
        code_dim: dimension of the code vectors of the ``"conv"`` and ``"transformer"`` extractors (64); the FFT
            components have 2·h·(⌊w/2⌋+1).
        route_hidden: width of the routing MLP (default max(8, hidden // 4)).
        transformer_width, transformer_depth, transformer_heads: the transformer extractor's size.
        gcm_kernel: kernel size of the GCM's 1-D convolutions (1).
        normalize_codes: ℓ2-normalise the code vectors and the codes (ViT-VQGAN's ℓ2-normalised codes); ``None``
            (default) = on for the ``"fft"`` extractor, off otherwise. Our choice where the paper is silent (its
            codebook init and lookup are not stated): without it the frequency components, ~2e-4 per value at
            initialisation (DFFormer's 0.02·N(0, 1) bases times the routing softmax), grew ×10⁶ within 60 steps
            under the reconstruction gradient while the U(−1/K, 1/K) codebook could follow only ~lr per step, and the
            codebook collapsed to one code (perplexity 1.1 from step ~35; MNIST, lr 2e-3, bf16 or fp32 alike,
            measured 2026-11-30; a first-batch codebook init did not prevent it). With it the run is stable.

    ``forward(x)`` with ``x (B, C, H, W)`` in [0, 1] returns ``(recon (B, C, H, W) on the [0, 1] scale,
    indices (B, U), terms)``; :meth:`decode_codes` rebuilds images from ``(B, U)`` code ids; :meth:`latents` gives
    the pre-quantisation code vectors ``(B, U, code dim)`` and their ids.
    """

    def __init__(self, in_channels: int = 3, image_size: int | Sequence[int] = 32, D: int = 2, N: int = 32, *,
                 extractor: str = "fft", f: int | None = 4, stage_down: int = 0, codebook_size: int = 512,
                 beta: float = 0.25, codebook_update: str = "dependency", gcm: bool = True, hidden: int = 128,
                 res_hidden: int = 32, n_res: int = 2, code_dim: int = 64, route_hidden: int | None = None,
                 transformer_width: int = 128, transformer_depth: int = 2, transformer_heads: int = 4,
                 gcm_kernel: int = 1, normalize_codes: bool | None = None) -> None:
        super().__init__()
        if extractor not in EXTRACTORS:
            raise ValueError(f"unknown extractor {extractor!r}; choose one of {EXTRACTORS}")
        if codebook_update not in CODEBOOK_UPDATES:
            raise ValueError(f"unknown codebook_update {codebook_update!r}; choose one of {CODEBOOK_UPDATES}")
        for name, v in (("D", D), ("N", N)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        H, W = _size(image_size)
        self.image_size = (H, W)
        self.in_channels = in_channels
        self.extractor = extractor
        self.D, self.N = D, N
        if extractor in ("conv", "transformer") and f is None:
            raise ValueError(f"the {extractor!r} extractor needs the token grid's factor f (e.g. f=4)")
        if extractor == "conv":
            if f is None or f < 2 or f & (f - 1):
                raise ValueError(f"the 'conv' extractor needs f = a power of two >= 2, got {f!r}")
            gh, gw = check_divisible(H, W, f)
            self.tokens = gh * gw
            self.code_dim = code_dim
            levels = int(math.log2(f))
            self.encoder = ToyEncoder(in_channels, hidden, res_hidden, n_res, code_dim, n_down=levels)
            self.decoder = ToyDecoder(code_dim, hidden, res_hidden, n_res, in_channels, n_up=levels)
            self.grid = (gh, gw)
        else:
            h, w = check_divisible(H, W, 2 ** stage_down, "image")
            self.stage = ToyEncoder(in_channels, hidden, res_hidden, n_res, D, n_down=stage_down)
            self.decoder = ToyDecoder(D, hidden, res_hidden, n_res, in_channels, n_up=stage_down)
            self.latent_size = (h, w)
            if extractor == "fft":
                self.tokens = check_token_parity((H, W), f, D, N) if f is not None else D * N
                self.code_dim = frequency_code_dim(h, w)
                self.filter = DynamicFilter(D, N, h, w, route_in=hidden, route_hidden=route_hidden)
            else:
                patch = f // 2 ** stage_down
                if patch < 1 or f % 2 ** stage_down:
                    raise ValueError(f"f={f} must be a multiple of the conv stage's factor {2 ** stage_down}")
                gh, gw = check_divisible(h, w, patch, "feature map")
                self.tokens = gh * gw
                self.code_dim = code_dim
                self.transformer = TransformerTokens(D, h, w, patch, code_dim, transformer_width, transformer_depth,
                                                     transformer_heads)
        norm = extractor == "fft" if normalize_codes is None else bool(normalize_codes)
        if codebook_update == "none":
            self.quantizer: nn.Module = VectorQuantizer(codebook_size, self.code_dim, beta, normalize=norm)
        else:
            self.quantizer = FQQuantizer(codebook_size, self.code_dim, beta,
                                         dependency="divide" if codebook_update == "dependency" else "none",
                                         normalize=norm)
        self.codebook_update = codebook_update
        self.gcm = GCM(self.tokens, gcm_kernel) if gcm else None

    # ---------------------------------------------------------------------------------------------- encoder side
    def _check_input(self, x: Tensor) -> None:
        if x.ndim != 4 or x.shape[1] != self.in_channels or tuple(x.shape[-2:]) != self.image_size:
            raise ValueError(f"FQVAE was built for ({self.in_channels}, {self.image_size[0]}, {self.image_size[1]}) "
                             f"images; got a batch of shape {tuple(x.shape)}. Build the model with this image size "
                             "(image_size=...) or resize the data")

    def latents(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """The U code vectors before quantisation ``(B, U, code_dim)`` and their code ids ``(B, U)``."""
        tokens = self.tokenize(x)
        _, idx, _ = self.quantizer(tokens)
        return tokens, idx

    def tokenize(self, x: Tensor) -> Tensor:
        """Images in [0, 1] → the U real code vectors ``(B, U, code_dim)`` (float32 for ``"fft"``)."""
        self._check_input(x)
        xs = to_signed(x)
        if self.extractor == "conv":
            return rearrange(self.encoder(xs), "b d h w -> b (h w) d")
        z, hidden = self.stage(xs, return_hidden=True)
        if self.extractor == "transformer":
            return self.transformer.encode(z)
        r = self.filter.routing(hidden)
        with torch.autocast(x.device.type, enabled=False):
            comps = self.filter.components(z, r)
            return torch.view_as_real(comps).reshape(z.shape[0], self.tokens, self.code_dim)

    # ---------------------------------------------------------------------------------------------- decoder side
    def vertex_summary(self, q: Tensor) -> Tensor:
        """GCM input: the mean modulus of each complex component (``"fft"``), else the mean |value|, ``(B, U)``."""
        if self.extractor == "fft":
            return q.reshape(q.shape[0], self.tokens, -1, 2).norm(dim=-1).mean(dim=-1)
        return q.abs().mean(dim=-1)

    def refine(self, q: Tensor) -> Tensor:
        """Multiply each quantised token by its GCM weight (eq. 11); identity without GCM."""
        if self.gcm is None:
            return q
        with torch.autocast(q.device.type, enabled=False):
            w = self.gcm(self.vertex_summary(q.float()))
            return q.float() * w.unsqueeze(-1)

    def detokenize(self, q: Tensor) -> Tensor:
        """Quantised (refined) tokens ``(B, U, code_dim)`` → reconstruction on the [0, 1] scale."""
        if self.extractor == "conv":
            return to_unit(self.decoder(rearrange(q, "b (h w) d -> b d h w", h=self.grid[0], w=self.grid[1])))
        if self.extractor == "transformer":
            return to_unit(self.decoder(self.transformer.decode(q)))
        h, w = self.latent_size
        with torch.autocast(q.device.type, enabled=False):
            comps = torch.view_as_complex(q.float().reshape(q.shape[0], self.D, self.N, h, w // 2 + 1, 2).contiguous())
            z = self.filter.inverse(comps.sum(dim=2))
        return to_unit(self.decoder(z))

    def decode_codes(self, indices: Tensor) -> Tensor:
        """Images (on the [0, 1] scale) from code ids ``(B, U)``."""
        return self.detokenize(self.refine(self.quantizer.lookup(indices)))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        q, idx, terms = self.quantizer(self.tokenize(x))
        return self.detokenize(self.refine(q)), idx, terms

    # ---------------------------------------------------------------------------------------------- tokenizer
    # the interface of specvae.models.cat.VQTokenizer, so that a prior over the codes (Fig. 6) can be trained on it
    @property
    def codebook_size(self) -> int:
        return int(self.quantizer.num_codes)

    @property
    def grid_size(self) -> tuple[int, int]:
        """The code ids as a grid: ``(D, N)`` (channel × filter basis) for ``"fft"``, the token grid otherwise."""
        if self.extractor == "fft":
            return (self.D, self.N)
        if self.extractor == "conv":
            return self.grid
        return self.transformer.grid

    @torch.no_grad()
    def encode_indices(self, x: Tensor) -> Tensor:
        """Images in [0, 1] → code ids ``(B, *grid_size)`` (the quantiser's lookup; call in eval mode)."""
        _, idx = self.latents(x)
        return idx.reshape(idx.shape[0], *self.grid_size)

    @torch.no_grad()
    def decode_indices(self, idx: Tensor) -> Tensor:
        """Code ids ``(B, *grid_size)`` → images on the [0, 1] scale."""
        return self.decode_codes(idx.reshape(idx.shape[0], self.tokens))

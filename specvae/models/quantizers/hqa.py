"""HQA's quantiser: a relaxed-categorical (Gumbel-softmax) codebook with a KL-to-uniform rate term, a
probability-weighted commitment term, temperature annealing and dead-code resets (Williams et al., NeurIPS 2020).

FQ-VAE's "HQ-VAE"/"HVQ-VAE" is Hierarchical Quantized Autoencoders (its ref. [11]), compared through the official
code (speechmatics/hqa). Each layer of that greedy stack quantises its encoder output z with

.. math::
    \\ell_k = -\\|z - e_k\\|^2,\\qquad p = \\mathrm{softmax}(\\ell),\\qquad
    z_q = \\tilde y\\,E,\\ \\tilde y \\sim \\mathrm{RelaxedOneHotCategorical}(\\tau, \\ell)\\ \\text{(training)},

    \\mathrm{KL} = \\sum_{t,k} p_{tk}\\,(\\log(p_{tk}+10^{-9}) + \\log K),\\qquad
    \\mathrm{commit} = \\sum_{t,k} p_{tk}\\,\\|z_t - e_k\\|^2,

each summed over the image's tokens t and averaged over the batch; the layer's loss is
``(recon_sum + 0.001·KL + 0.001·commit) / dims`` (``dims`` = values per image of the layer's target; the
objective divides). There is no straight-through estimator: gradients flow through the relaxed sample. The
temperature falls linearly from τ₀ = 0.667 to 0.001 over the layer's training (``anneal_steps``). Every 20 steps
the least-used code (over those 20 steps), if used less than 3 % as often as the most-used one, is moved onto the
most-used code plus N(0, 1)/100 noise, and the counts restart. In ``eval()`` mode the code is *drawn* from
Categorical(ℓ) (the official ``soft=False`` path), so reconstructions are random unless the caller seeds torch;
``eval_sample=False`` takes the argmax instead.

Differences from the official code: the reset runs inside ``forward`` (before the optimizer step of the same
batch, the official one after it); the codebook size is an argument (official default 256; the chapter uses the
shared K = 512).

Ref: Williams et al. 2020, "Hierarchical Quantized Autoencoders", §3 (eqs. 3-6); speechmatics/hqa ``hqa.ipynb``
(``VQCodebook.z_e_to_z_q``, ``decay_temp_linear``, the code-reset block of ``train``, ``get_loss_hqa``) as read
from a public copy of the notebook's training script (the notebook itself is absent from the snapshot).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.distributions import Categorical, RelaxedOneHotCategorical

from .base import CodebookQuantizer, batch_perplexity, squared_distances

__all__ = ["HQAQuantizer"]


class HQAQuantizer(CodebookQuantizer):
    """HQA layer quantiser (Gumbel-softmax + KL + probability-weighted commitment, annealing, code resets).

    Args:
        num_codes: codebook size (official default 256; 512 in this chapter's shared protocol).
        dim: code dimension (64).
        temperature_init: τ₀ (0.667).
        temperature_min: final τ (0.001).
        anneal_steps: steps over which τ falls linearly to ``temperature_min`` (the layer's training length);
            ``None`` keeps τ₀.
        kl_weight, commit_weight: weights of KL and commitment in ``terms["loss"]`` (0.001 each).
        reset_every: steps between code resets (20); 0 disables them.
        reset_threshold: reset when the least-used code's count is below this fraction of the largest (0.03).
        eval_sample: draw codes in eval mode (official) instead of taking the most probable one.

    Buffers: ``step``, ``code_count`` (K,). Terms: ``loss`` (= ``kl_weight·kl + commit_weight·commitment``, per
    image), ``kl``, ``commitment``, ``temperature``, ``perplexity``, ``resets`` (codes moved by this call).
    """

    def __init__(self, num_codes: int = 512, dim: int = 64, temperature_init: float = 0.667,
                 temperature_min: float = 0.001, anneal_steps: int | None = None, kl_weight: float = 0.001,
                 commit_weight: float = 0.001, reset_every: int = 20, reset_threshold: float = 0.03,
                 eval_sample: bool = True) -> None:
        super().__init__(num_codes, dim)
        if not (temperature_init > 0 and temperature_min > 0):
            raise ValueError("HQAQuantizer: temperatures must be > 0")
        if anneal_steps is not None and (isinstance(anneal_steps, bool) or int(anneal_steps) < 1):
            raise ValueError(f"HQAQuantizer: anneal_steps must be None or a positive int, got {anneal_steps!r}")
        if reset_every < 0:
            raise ValueError(f"HQAQuantizer: reset_every must be >= 0, got {reset_every!r}")
        self.codebook = nn.Parameter(torch.randn(num_codes, dim))
        self.temperature_init = float(temperature_init)
        self.temperature_min = float(temperature_min)
        self.anneal_steps = None if anneal_steps is None else int(anneal_steps)
        self.kl_weight = float(kl_weight)
        self.commit_weight = float(commit_weight)
        self.reset_every = int(reset_every)
        self.reset_threshold = float(reset_threshold)
        self.eval_sample = bool(eval_sample)
        self.log_k = math.log(num_codes)
        self.register_buffer("step", torch.zeros((), dtype=torch.long))
        self.register_buffer("code_count", torch.zeros(num_codes))

    def temperature(self, step: int | None = None) -> float:
        """τ used at training step ``step`` (0-based): ``τ_min + (τ₀ − τ_min)·(1 − (step+1)/anneal_steps)``."""
        if self.anneal_steps is None:
            return self.temperature_init
        s = int(self.step) if step is None else int(step)
        factor = max(0.0, 1.0 - (s + 1) / self.anneal_steps)
        return self.temperature_min + (self.temperature_init - self.temperature_min) * factor

    @torch.no_grad()
    def reset_dead_codes(self) -> int:
        """The official every-``reset_every``-steps reset (on the counts gathered since the last one)."""
        max_count, most_used = self.code_count.max(dim=0)
        moved = 0
        if max_count > 0:
            frac, least_used = (self.code_count / max_count).min(dim=0)
            if frac < self.reset_threshold:
                code = self.codebook.data[most_used]
                self.codebook.data[least_used] = code + torch.randn_like(code) / 100.0
                moved = 1
        self.code_count.zero_()
        return moved

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        with torch.autocast(z.device.type, enabled=False):
            flat, lead = self.flatten(z)
            batch = int(z.shape[0])
            dist = squared_distances(flat, self.codebook.float())
            logits = -dist
            probs = logits.softmax(dim=-1)
            tau = self.temperature()
            resets = 0
            if self.training:
                soft = RelaxedOneHotCategorical(torch.tensor(tau, device=z.device), logits=logits).rsample()
                idx = soft.detach().argmax(dim=-1)
                q = soft @ self.codebook.float()
                kl = (probs * (probs.add(1e-9).log() + self.log_k)).sum() / batch
                commit = (probs * dist).sum() / batch
                with torch.no_grad():
                    self.code_count.add_(torch.bincount(idx, minlength=self.num_codes).to(self.code_count.dtype))
                    if self.reset_every and int(self.step) % self.reset_every == 0:
                        resets = self.reset_dead_codes()
                    self.step.add_(1)
            else:
                with torch.no_grad():
                    idx = Categorical(logits=logits).sample() if self.eval_sample else logits.argmax(dim=-1)
                q = F.embedding(idx, self.codebook.float())
                kl = (probs * (probs.add(1e-9).log() + self.log_k)).sum() / batch
                commit = torch.zeros((), device=z.device)
            loss = self.kl_weight * kl + self.commit_weight * commit
        terms = {"loss": loss, "kl": kl.detach(), "commitment": commit.detach(),
                 "temperature": torch.tensor(tau, device=z.device), "perplexity": batch_perplexity(idx, self.num_codes),
                 "resets": torch.tensor(float(resets), device=z.device)}
        return q.reshape(*lead, self.dim), idx.reshape(lead), terms

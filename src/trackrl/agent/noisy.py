"""Factorised Gaussian NoisyLinear (Fortunato et al. 2018, "Noisy Networks for Exploration", eq. 10-11).

y = (μ_w + σ_w ⊙ ε_w) x + μ_b + σ_b ⊙ ε_b with ε_w = f(ε_out) ⊗ f(ε_in), ε_b = f(ε_out), f(x) = sgn(x)·√|x|.
Initialisation: μ ~ U(±1/√in), σ = σ0/√in. The noise is a buffer that only changes in ``reset_noise()``: the learner
calls it for every training batch (online and target nets) and the collectors for every acting step, so σ gets a
gradient (rulka never resampled it during training, so σ learnt nothing). With noise disabled (evaluation) the layer
is the plain linear layer μ_w x + μ_b.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def scaled_noise(size: int, device: torch.device) -> Tensor:
    """f(x) = sgn(x)·√|x| for x ~ N(0, 1)."""
    x = torch.randn(size, device=device)
    return x.sign() * x.abs().sqrt()


class NoisyLinear(nn.Module):
    def __init__(self, in_features: int, out_features: int, sigma0: float = 0.5) -> None:
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.noise_enabled = True
        bound = 1.0 / math.sqrt(in_features)
        self.weight_mu = nn.Parameter(torch.empty(out_features, in_features).uniform_(-bound, bound))
        self.weight_sigma = nn.Parameter(torch.full((out_features, in_features), sigma0 / math.sqrt(in_features)))
        self.bias_mu = nn.Parameter(torch.empty(out_features).uniform_(-bound, bound))
        self.bias_sigma = nn.Parameter(torch.full((out_features,), sigma0 / math.sqrt(in_features)))
        # Not persistent: the noise is resampled, never saved.
        self.register_buffer("epsilon_in", torch.zeros(in_features), persistent=False)
        self.register_buffer("epsilon_out", torch.zeros(out_features), persistent=False)
        self.reset_noise()

    def reset_noise(self) -> None:
        self.set_noise(scaled_noise(self.in_features + self.out_features, self.epsilon_in.device))

    def set_noise(self, noise: Tensor) -> None:
        """Take f(ε_in) and f(ε_out) from one vector of ``in_features + out_features`` already-scaled values."""
        self.epsilon_in.copy_(noise[: self.in_features])
        self.epsilon_out.copy_(noise[self.in_features :])

    def forward(self, x: Tensor) -> Tensor:
        if not self.noise_enabled:
            return F.linear(x, self.weight_mu, self.bias_mu)
        # μ + σ ⊙ ε in one addcmul each (two operations fewer per layer than mul + add, forward and backward).
        weight = torch.addcmul(self.weight_mu, self.weight_sigma, torch.outer(self.epsilon_out, self.epsilon_in))
        bias = torch.addcmul(self.bias_mu, self.bias_sigma, self.epsilon_out)
        return F.linear(x, weight, bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}"

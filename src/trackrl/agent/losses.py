"""IQN quantile Huber loss and the three bootstrap targets: max (IQN), Double DQN, Munchausen.

Shapes: B batch, N online quantiles τ_i, N' target quantiles τ'_j, A actions.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def huber(delta: Tensor, kappa: float) -> Tensor:
    """Huber_κ(δ) = ½δ² if |δ| ≤ κ else κ(|δ| − ½κ)."""
    abs_delta = delta.abs()
    return torch.where(abs_delta <= kappa, 0.5 * delta**2, kappa * (abs_delta - 0.5 * kappa))


def quantile_huber_loss(
    online_quantiles: Tensor, target_quantiles: Tensor, taus: Tensor, kappa: float, weights: Tensor
) -> tuple[Tensor, Tensor]:
    """IQN loss (Dabney et al. 2018, eq. 3): δ_ij = T_j − Z_{τ_i}; ρ_ij = |τ_i − 1{δ_ij<0}| · Huber_κ(δ_ij)/κ.

    Per sample: Σ_i mean_j ρ_ij (B,). Loss: mean_b w_b · per_sample_b.
    online_quantiles (B, N), target_quantiles (B, N'), taus (B, N), weights (B,).
    Written with few tensor ops (on a CPU each costs more than its arithmetic at these sizes): Huber_κ(δ) as one
    ``huber_loss`` call over the (B, N, N') pairs (symmetric, so Huber(Z − T) = Huber(δ)), |τ − 1{δ<0}| as
    ``where(δ < 0, 1 − τ, τ)`` (τ ∈ [0, 1]), and Σ_i mean_j as one sum over (i, j) divided by N'.
    """
    n_online, n_target = online_quantiles.shape[1], target_quantiles.shape[1]
    online_pairs = online_quantiles[:, :, None].expand(-1, -1, n_target)  # Z_i at (b, i, j), no copy
    target_pairs = target_quantiles[:, None, :].expand(-1, n_online, -1)  # T_j at (b, i, j)
    huber_pairs = F.huber_loss(online_pairs, target_pairs, reduction="none", delta=kappa)
    asymmetry = torch.where(target_pairs < online_pairs, (1.0 - taus)[:, :, None], taus[:, :, None])
    per_sample = (asymmetry * huber_pairs).sum(dim=(1, 2)) / (kappa * n_target)
    return (weights * per_sample).mean(), per_sample.detach()


def td_error_priorities(online_quantiles: Tensor, target_quantiles: Tensor) -> Tensor:
    """PER priority as in the official BTR code: Σ_i mean_j |δ_ij| with δ_ij = T_j − Z_{τ_i} (B,), no gradient.

    |δ| rather than the quantile Huber loss: with κ = 1 and small TD errors the loss is ~δ²/2, which would square the
    priority and so roughly double the prioritisation exponent α.
    """
    with torch.no_grad():
        delta = target_quantiles.unsqueeze(1) - online_quantiles.unsqueeze(2)  # (B, N, N')
        return delta.abs().sum(dim=(1, 2)) / target_quantiles.shape[1]  # Σ_i mean_j = Σ_ij / N'


def greedy_actions(quantiles: Tensor) -> Tensor:
    """argmax_a mean_j Z_j(s, a) for quantiles (B, N, A) → (B,)."""
    return quantiles.mean(dim=1).argmax(dim=1)


def bootstrap_target(returns: Tensor, discounts: Tensor, next_target_quantiles: Tensor, next_actions: Tensor) -> Tensor:
    """T_j = R^{(n)} + γ^n (1−done) Z̄_j(s', a*) → (B, N').

    a* = argmax_a (1/K) Σ_k Z(s', a; τ̃_k) from K samples drawn apart from the N' τ'_j that score it (IQN paper,
    section 3.1; Dopamine's IQN), by the target net (max) or the online net (DDQN)."""
    index = next_actions[:, None, None].expand(-1, next_target_quantiles.shape[1], 1)
    next_quantiles = next_target_quantiles.gather(2, index).squeeze(2)
    return returns[:, None] + discounts[:, None] * next_quantiles


def scaled_log_policy(q_values: Tensor, entropy_tau: float) -> Tensor:
    """τ_m·lnπ(a|s) for π = softmax(q/τ_m), computed stably: q − max q − τ_m·logsumexp((q − max q)/τ_m). (B, A)."""
    advantage = q_values - q_values.max(dim=1, keepdim=True).values
    return advantage - entropy_tau * torch.logsumexp(advantage / entropy_tau, dim=1, keepdim=True)


def munchausen_target(
    returns: Tensor,
    discounts: Tensor,
    actions: Tensor,
    current_target_quantiles: Tensor,
    next_target_quantiles: Tensor,
    entropy_tau: float,
    alpha: float,
    clip_low: float,
) -> Tensor:
    """Munchausen-IQN target (Vieillard et al. 2020, eq. 5), per target quantile j:

    T_j = R + α·clip(τ_m·lnπ(a_t|s_t), l0, 0) + γ^n(1−done) Σ_a' π(a'|s') [Z̄_j(s',a') − τ_m·lnπ(a'|s')]
    with π = softmax(q̄/τ_m), q̄ = mean over quantiles of the target net. The clip is on τ_m·lnπ, not on lnπ.
    current_target_quantiles / next_target_quantiles (B, N', A) from the target net at s_t / s_{t+n}. → (B, N').
    """
    current_log_policy = scaled_log_policy(current_target_quantiles.mean(dim=1), entropy_tau)  # (B, A)
    munchausen_bonus = current_log_policy.gather(1, actions[:, None]).squeeze(1).clamp(clip_low, 0.0)
    next_q = next_target_quantiles.mean(dim=1)  # (B, A)
    next_log_policy = scaled_log_policy(next_q, entropy_tau)
    next_policy = torch.softmax(next_q / entropy_tau, dim=1)
    soft_next = (next_policy[:, None, :] * (next_target_quantiles - next_log_policy[:, None, :])).sum(dim=2)
    return (returns + alpha * munchausen_bonus)[:, None] + discounts[:, None] * soft_next

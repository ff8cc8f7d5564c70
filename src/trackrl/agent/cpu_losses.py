"""The learner's loss, its gradient, the PER priorities and the Munchausen target as numba loops, for CPU tensors.

Why: at the float configs' sizes (batch 64, N = N' = 8, 12 actions) the (B, N, N') pair tensors hold ~4k numbers,
and the ~20 tensor operations that build the quantile Huber loss, its backward and the priorities, and the ~15 of
the Munchausen target, each cost more in dispatch than in arithmetic: ~210 µs and ~165 µs of CPU per learner step on
one core, against ~72 µs and ~60 µs here (3,000 calls each, process time, one torch thread). The maths is the same
as losses.py, which stays the reference (and the path on a GPU); tests/test_agent_cpu_losses.py checks the two
against each other.

    loss, per_sample, priorities = quantile_huber_loss_and_priorities(Z (B,N), T (B,N'), τ (B,N), κ, w (B,))

The loss is an autograd.Function whose backward is the gradient computed in the same pass (Dabney et al. 2018,
eq. 3; Huber'_κ(δ) = clip(δ, −κ, κ)):

    ∂L/∂Z_bi = −(w_b / B) · Σ_j |τ_i − 1{δ_bij < 0}| · clip(δ_bij, −κ, κ) / (κ N'),   δ_bij = T_bj − Z_bi.
"""

from __future__ import annotations

import math

import numba
import numpy as np
import torch
from torch import Tensor


@numba.njit(cache=True)
def _quantile_huber_pass(
    online: np.ndarray,
    target: np.ndarray,
    taus: np.ndarray,
    weights: np.ndarray,
    kappa: float,
    gradient: np.ndarray,
    per_sample: np.ndarray,
    priorities: np.ndarray,
) -> float:
    """Loss mean_b w_b·Σ_i mean_j ρ_ij; writes ∂L/∂Z (B, N), the per-sample losses and Σ_i mean_j |δ_ij| (B,)."""
    batch, n_online = online.shape
    n_target = target.shape[1]
    loss = 0.0
    for b in range(batch):
        sample_loss, sample_abs_delta = 0.0, 0.0
        for i in range(n_online):
            z, tau, slope = online[b, i], taus[b, i], 0.0
            for j in range(n_target):
                delta = target[b, j] - z
                abs_delta = abs(delta)
                asymmetry = 1.0 - tau if delta < 0.0 else tau
                if abs_delta <= kappa:
                    sample_loss += asymmetry * 0.5 * delta * delta
                    slope += asymmetry * delta
                else:
                    sample_loss += asymmetry * kappa * (abs_delta - 0.5 * kappa)
                    slope += asymmetry * (kappa if delta > 0.0 else -kappa)
                sample_abs_delta += abs_delta
            gradient[b, i] = -weights[b] * slope / (kappa * n_target * batch)
        per_sample[b] = sample_loss / (kappa * n_target)
        priorities[b] = sample_abs_delta / n_target
        loss += weights[b] * per_sample[b]
    return loss / batch


class _QuantileHuberLoss(torch.autograd.Function):
    """The IQN loss with its gradient from the forward pass (only Z needs one: T, τ and w come without)."""

    @staticmethod
    def forward(ctx, online: Tensor, target: Tensor, taus: Tensor, weights: Tensor, kappa: float):
        batch = online.shape[0]
        gradient = torch.empty_like(online)
        per_sample = online.new_empty(batch)
        priorities = online.new_empty(batch)
        loss = _quantile_huber_pass(online.detach().numpy(), target.numpy(), taus.numpy(), weights.numpy(),
                                    float(kappa), gradient.numpy(), per_sample.numpy(), priorities.numpy())  # fmt: skip
        ctx.save_for_backward(gradient)
        ctx.mark_non_differentiable(per_sample, priorities)
        return online.new_tensor(loss), per_sample, priorities

    @staticmethod
    def backward(ctx, loss_gradient: Tensor, *_unused: Tensor):
        (gradient,) = ctx.saved_tensors
        return gradient * loss_gradient, None, None, None, None


def quantile_huber_loss_and_priorities(
    online_quantiles: Tensor, target_quantiles: Tensor, taus: Tensor, kappa: float, weights: Tensor
) -> tuple[Tensor, Tensor, Tensor]:
    """losses.quantile_huber_loss (loss, per-sample loss) and losses.td_error_priorities, in one numba pass."""
    return _QuantileHuberLoss.apply(online_quantiles, target_quantiles.detach(), taus.detach(), weights.detach(),
                                    kappa)  # fmt: skip


@numba.njit(cache=True)
def _scaled_log_policy(q_values: np.ndarray, entropy_tau: float, out: np.ndarray) -> float:
    """τ_m·lnπ(a|s) for π = softmax(q/τ_m) into `out` (A,); returns logsumexp((q − max q)/τ_m)."""
    q_max = q_values.max()
    total = 0.0
    for a in range(q_values.size):
        total += math.exp((q_values[a] - q_max) / entropy_tau)
    log_sum = math.log(total)
    for a in range(q_values.size):
        out[a] = q_values[a] - q_max - entropy_tau * log_sum
    return log_sum


@numba.njit(cache=True)
def _munchausen_pass(
    returns: np.ndarray,
    discounts: np.ndarray,
    actions: np.ndarray,
    current: np.ndarray,
    following: np.ndarray,
    entropy_tau: float,
    alpha: float,
    clip_low: float,
    out: np.ndarray,
) -> None:
    batch, n_target, n_actions = current.shape
    q_values, log_policy, policy = np.empty(n_actions), np.empty(n_actions), np.empty(n_actions)
    for b in range(batch):
        for a in range(n_actions):  # q̄(s_t, a): the target net's mean over its quantiles
            q_values[a] = current[b, :, a].mean()
        _scaled_log_policy(q_values, entropy_tau, log_policy)
        bonus = alpha * min(max(log_policy[actions[b]], clip_low), 0.0)  # α·clip(τ_m·lnπ(a_t|s_t), l0, 0)
        for a in range(n_actions):
            q_values[a] = following[b, :, a].mean()
        _scaled_log_policy(q_values, entropy_tau, log_policy)
        for a in range(n_actions):  # π(a'|s') = exp(τ_m·lnπ / τ_m)
            policy[a] = math.exp(log_policy[a] / entropy_tau)
        for j in range(n_target):  # Σ_a' π(a'|s') [Z̄_j(s', a') − τ_m·lnπ(a'|s')]
            soft_value = 0.0
            for a in range(n_actions):
                soft_value += policy[a] * (following[b, j, a] - log_policy[a])
            out[b, j] = returns[b] + bonus + discounts[b] * soft_value


def munchausen_target(returns: Tensor, discounts: Tensor, actions: Tensor, current_target_quantiles: Tensor,
                      next_target_quantiles: Tensor, entropy_tau: float, alpha: float, clip_low: float) -> Tensor:
    """losses.munchausen_target (Vieillard et al. 2020, eq. 5), the same arguments, in one numba pass → (B, N')."""
    out = next_target_quantiles.new_empty(next_target_quantiles.shape[:2])
    _munchausen_pass(returns.numpy(), discounts.numpy(), actions.numpy(), current_target_quantiles.numpy(),
                     next_target_quantiles.numpy(), float(entropy_tau), float(alpha), float(clip_low),
                     out.numpy())  # fmt: skip
    return out


def numba_losses_apply(device: torch.device, dtype: torch.dtype) -> bool:
    """Whether the learner's tensors can go through these loops: CPU and float32 (numba reads them in place)."""
    return device.type == "cpu" and dtype == torch.float32

"""Quantile Huber loss and the max / DDQN / Munchausen targets against hand-computed values and plain loops."""

from __future__ import annotations

import math

import pytest
import torch

from trackrl.agent.losses import (
    bootstrap_target,
    greedy_actions,
    huber,
    munchausen_target,
    quantile_huber_loss,
    scaled_log_policy,
    td_error_priorities,
)


def test_quantile_huber_loss_by_hand() -> None:
    # Z = [0, 1] at τ = [0.25, 0.75]; T = [0.5, −1]; κ = 1; importance weight 2.
    # δ_ij = T_j − Z_i: (0.5, −1; −0.5, −2).  Huber: (0.125, 0.5; 0.125, 1.5).
    # |τ_i − 1{δ<0}|: (0.25, 0.75; 0.25, 0.25).  ρ: (0.03125, 0.375; 0.03125, 0.375).
    # Σ_i: (0.0625, 0.75); mean_j: 0.40625; weighted: 0.8125.
    loss, per_sample = quantile_huber_loss(
        torch.tensor([[0.0, 1.0]]), torch.tensor([[0.5, -1.0]]), torch.tensor([[0.25, 0.75]]), 1.0,
        torch.tensor([2.0]),
    )
    assert per_sample.tolist() == pytest.approx([0.40625])
    assert loss.item() == pytest.approx(0.8125)


def test_td_error_priority_is_btrs_summed_mean_absolute_error() -> None:
    # Z = [0, 1]; T = [0.5, 2, −1]. δ_ij = T_j − Z_i: (0.5, 2, −1; −0.5, 1, −2).
    # mean_j |δ_ij|: (3.5/3, 3.5/3); Σ_i: 7/3. The quantile Huber loss of the same sample (κ = 1) would differ.
    online = torch.tensor([[0.0, 1.0], [0.0, 0.0]], requires_grad=True)
    target = torch.tensor([[0.5, 2.0, -1.0], [0.01, -0.01, 0.01]])
    priorities = td_error_priorities(online, target)
    # Second sample: |δ| = 0.01 everywhere → Σ_i mean_j = 2 x 0.01 (the Huber loss would be ~1e-4: δ², not |δ|).
    assert priorities.tolist() == pytest.approx([7.0 / 3.0, 0.02])
    assert not priorities.requires_grad


def reference_loss(online, target, taus, kappa, weights):
    """Plain python loops over b, i, j."""
    total = 0.0
    per_sample = []
    for b in range(len(online)):
        sample_loss = 0.0
        for j in range(len(target[b])):
            for i in range(len(online[b])):
                delta = target[b][j] - online[b][i]
                h = 0.5 * delta * delta if abs(delta) <= kappa else kappa * (abs(delta) - 0.5 * kappa)
                indicator = 1.0 if delta < 0 else 0.0
                sample_loss += abs(taus[b][i] - indicator) * h / kappa / len(target[b])
        per_sample.append(sample_loss)
        total += weights[b] * sample_loss / len(online)
    return total, per_sample


def test_quantile_huber_loss_against_loops() -> None:
    generator = torch.Generator().manual_seed(0)
    online = torch.randn(3, 4, generator=generator)
    target = torch.randn(3, 5, generator=generator)
    taus = torch.rand(3, 4, generator=generator)
    weights = torch.tensor([1.0, 0.5, 0.25])
    for kappa in (0.005, 0.3, 1.0):
        loss, per_sample = quantile_huber_loss(online, target, taus, kappa, weights)
        expected_loss, expected_per_sample = reference_loss(
            online.tolist(), target.tolist(), taus.tolist(), kappa, weights.tolist()
        )
        assert loss.item() == pytest.approx(expected_loss, rel=1e-5)
        assert per_sample.tolist() == pytest.approx(expected_per_sample, rel=1e-5)


def test_quantile_loss_gradient_flows_to_online_quantiles_only() -> None:
    online = torch.tensor([[0.0, 1.0]], requires_grad=True)
    target = torch.tensor([[0.5, -1.0]], requires_grad=True)
    loss, _ = quantile_huber_loss(online, target.detach(), torch.tensor([[0.25, 0.75]]), 1.0, torch.ones(1))
    loss.backward()
    # d/dZ_0: j0 δ=0.5 (|δ|≤κ): −0.25·0.5/2 ; j1 δ=−1: −0.75·(−1)/2  → −0.0625 + 0.375 = 0.3125
    # d/dZ_1: j0 δ=−0.5: −0.25·(−0.5)/2 ; j1 δ=−2 (linear): −0.25·(−1)/2 → 0.0625 + 0.125 = 0.1875
    assert online.grad.tolist() == [[pytest.approx(0.3125), pytest.approx(0.1875)]]


def test_huber_by_hand() -> None:
    values = huber(torch.tensor([-3.0, -0.5, 0.0, 0.5, 3.0]), 1.0)
    assert values.tolist() == pytest.approx([2.5, 0.125, 0.0, 0.125, 2.5])


def test_max_and_double_dqn_targets() -> None:
    # Target net: action 1 best on average; online net: action 0 best.
    next_target = torch.tensor([[[1.0, 3.0], [2.0, 5.0]]])  # (B=1, N'=2, A=2): means (1.5, 4)
    next_online = torch.tensor([[[9.0, 0.0], [9.0, 0.0]]])
    returns, discounts = torch.tensor([0.5]), torch.tensor([0.9])
    max_target = bootstrap_target(returns, discounts, next_target, greedy_actions(next_target))
    assert max_target.tolist() == [pytest.approx([0.5 + 0.9 * 3.0, 0.5 + 0.9 * 5.0])]
    ddqn_target = bootstrap_target(returns, discounts, next_target, greedy_actions(next_online))
    assert ddqn_target.tolist() == [pytest.approx([0.5 + 0.9 * 1.0, 0.5 + 0.9 * 2.0])]
    terminal = bootstrap_target(returns, torch.tensor([0.0]), next_target, greedy_actions(next_target))
    assert terminal.tolist() == [[0.5, 0.5]]


def test_munchausen_target_by_hand() -> None:
    # τ_m = 1, α = 0.9, l0 = −1. q̄(s) = (1, 0), a_t = 1: τ·lnπ(1|s) = −1 − ln(1 + e^{−1}) = −1.3133 → clipped to −1.
    # Z̄(s') = (2, 0), one quantile: Σ_a' π(Z̄ − τ lnπ) = τ·logsumexp(Z̄/τ) = ln(e² + 1) = 2.126928.
    # T = 0.5 + 0.9·(−1) + 0.9·2.126928 = 1.5142352.
    target = munchausen_target(
        torch.tensor([0.5]), torch.tensor([0.9]), torch.tensor([1]),
        torch.tensor([[[1.0, 0.0]]]), torch.tensor([[[2.0, 0.0]]]),
        entropy_tau=1.0, alpha=0.9, clip_low=-1.0,
    )
    assert target.item() == pytest.approx(1.5142352, abs=1e-6)


def munchausen_reference(r, discount, action, current_q, next_quantiles, tau, alpha, lo):
    """Plain python, straight from the definition π = softmax(q̄/τ)."""
    def log_policy(q):
        z = sum(math.exp(v / tau) for v in q)
        return [math.log(math.exp(v / tau) / z) for v in q]

    bonus = alpha * min(0.0, max(lo, tau * log_policy(current_q)[action]))
    next_mean = [sum(column) / len(next_quantiles) for column in zip(*next_quantiles, strict=True)]
    next_log_pi = log_policy(next_mean)
    pi = [math.exp(v) for v in next_log_pi]
    return [
        r + bonus + discount * sum(p * (z - tau * lp) for p, z, lp in zip(pi, row, next_log_pi, strict=True))
        for row in next_quantiles
    ]


@pytest.mark.parametrize("tau", [0.03, 0.5, 2.0])
def test_munchausen_target_against_definition(tau: float) -> None:
    current = torch.tensor([[[1.0, 0.0, 0.2]], [[0.3, 0.1, 0.2]]])  # (B=2, N'=1, A=3)
    following = torch.tensor([[[2.0, 0.0, 1.0], [1.0, 0.5, 1.5]], [[0.0, 0.1, 0.2], [0.3, 0.2, 0.1]]])
    returns, discounts, actions = torch.tensor([0.5, -1.0]), torch.tensor([0.9, 0.0]), torch.tensor([1, 0])
    target = munchausen_target(returns, discounts, actions, current, following, tau, 0.9, -1.0)
    for b in range(2):
        expected = munchausen_reference(
            returns[b].item(), discounts[b].item(), actions[b].item(), current[b, 0].tolist(),
            following[b].tolist(), tau, 0.9, -1.0,
        )
        assert target[b].tolist() == pytest.approx(expected, rel=1e-5, abs=1e-6)


def test_munchausen_clip_is_on_scaled_log_policy() -> None:
    # τ = 0.5, q̄ = (1, 0), a = 1: lnπ = −ln(1 + e²) = −2.1269, τ·lnπ = −1.0635 → clip −1 (a clip on lnπ would
    # give τ·(−1) = −0.5 instead).
    log_policy = scaled_log_policy(torch.tensor([[1.0, 0.0]]), 0.5)
    assert log_policy[0, 1].item() == pytest.approx(-0.5 * math.log(1 + math.e**2), rel=1e-6)
    target = munchausen_target(
        torch.tensor([0.0]), torch.tensor([0.0]), torch.tensor([1]),
        torch.tensor([[[1.0, 0.0]]]), torch.tensor([[[0.0, 0.0]]]), 0.5, 1.0, -1.0,
    )
    assert target.item() == pytest.approx(-1.0)

"""The numba loss / gradient / priority pass and Munchausen target (agent/cpu_losses.py) against losses.py's tensor
code (itself checked against hand values in test_agent_losses.py), and the learner on either path."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_agent_learner import filled_buffer, make_learner, tiny_config

from trackrl.agent import cpu_losses, losses


def test_loss_by_hand() -> None:
    # The hand example of test_agent_losses.py: Z = [0, 1] at τ = [0.25, 0.75]; T = [0.5, −1]; κ = 1; weight 2.
    # ρ = (0.03125, 0.375; 0.03125, 0.375) → per sample 0.40625, weighted 0.8125. |δ| = (0.5, 1; 0.5, 2) → 2.
    # ∂L/∂Z_i = −(2/1)·Σ_j |τ_i − 1{δ<0}|·clip(δ_ij)/(1·2): i=0: −(0.25·0.5 + 0.75·(−1)) = 0.625;
    # i=1: −(0.25·(−0.5) + 0.25·(−1)) = 0.375.
    online = torch.tensor([[0.0, 1.0]], requires_grad=True)
    loss, per_sample, priorities = cpu_losses.quantile_huber_loss_and_priorities(
        online, torch.tensor([[0.5, -1.0]]), torch.tensor([[0.25, 0.75]]), 1.0, torch.tensor([2.0])
    )
    assert loss.item() == pytest.approx(0.8125)
    assert per_sample.tolist() == pytest.approx([0.40625]) and priorities.tolist() == pytest.approx([2.0])
    loss.backward()
    assert online.grad.tolist() == [pytest.approx([0.625, 0.375])]
    assert not priorities.requires_grad and not per_sample.requires_grad


@pytest.mark.parametrize("kappa", [1.0, 5e-3, 0.3])
def test_loss_gradient_and_priorities_equal_the_tensor_code(kappa: float) -> None:
    generator = torch.Generator().manual_seed(int(kappa * 1000))
    batch, n_online, n_target = 64, 8, 6
    online_values = torch.randn(batch, n_online, generator=generator) * 0.5
    target = torch.randn(batch, n_target, generator=generator) * 0.5
    target[0, 0] = online_values[0, 0]  # δ = 0 exactly: the asymmetry picks τ, the gradient term is 0 either way
    taus = torch.rand(batch, n_online, generator=generator)
    weights = torch.rand(batch, generator=generator) + 0.5
    gradients, results = [], []
    for compute in ("tensors", "numba"):
        online = online_values.clone().requires_grad_(True)
        if compute == "tensors":
            loss, per_sample = losses.quantile_huber_loss(online, target, taus, kappa, weights)
            priorities = losses.td_error_priorities(online, target)
        else:
            loss, per_sample, priorities = cpu_losses.quantile_huber_loss_and_priorities(
                online, target, taus, kappa, weights
            )
        (3.0 * loss).backward()  # a scale on the loss reaches the gradient
        gradients.append(online.grad)
        results.append((loss.detach(), per_sample, priorities))
    for expected, actual in zip(*results, strict=True):
        torch.testing.assert_close(actual, expected, rtol=2e-5, atol=1e-7)
    torch.testing.assert_close(gradients[1], gradients[0], rtol=2e-5, atol=1e-8)


def test_munchausen_target_equals_the_tensor_code() -> None:
    generator = torch.Generator().manual_seed(3)
    batch, n_target, n_actions = 32, 8, 12
    current = torch.randn(batch, n_target, n_actions, generator=generator) * 0.2
    following = torch.randn(batch, n_target, n_actions, generator=generator) * 0.2
    current[:4, :, 0] += 1.0  # a clear greedy action on some rows: lnπ of the others falls below l0 = −1 / τ_m
    returns = torch.randn(batch, generator=generator) * 0.05
    discounts = torch.where(torch.arange(batch) % 5 == 0, 0.0, 0.99**3)  # some terminal rows
    actions = torch.randint(0, n_actions, (batch,), generator=generator)
    arguments = (returns, discounts, actions, current, following, 0.03, 0.9, -1.0)
    expected = losses.munchausen_target(*arguments)
    torch.testing.assert_close(cpu_losses.munchausen_target(*arguments), expected, rtol=1e-5, atol=1e-6)


def test_the_learner_trains_alike_on_either_path() -> None:
    config = tiny_config(use_image=False, use_munchausen=True, use_prioritized_replay=True)
    learners = [make_learner(config), make_learner(config)]
    assert learners[0].use_numba_losses  # the CPU default
    learners[1].use_numba_losses = False
    buffers = [filled_buffer(config), filled_buffer(config)]
    for step in range(4):
        results = []
        for learner, buffer in zip(learners, buffers, strict=True):
            torch.manual_seed(step)
            results.append(learner.learn(buffer, 1e-2, 0.99, 0))
        assert results[0].loss == pytest.approx(results[1].loss, rel=1e-5)
        np.testing.assert_allclose(results[0].new_priorities, results[1].new_priorities, rtol=1e-5)
    for a, b in zip(learners[0].online_network.parameters(), learners[1].online_network.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_only_cpu_float32_goes_through_numba() -> None:
    assert cpu_losses.numba_losses_apply(torch.device("cpu"), torch.float32)
    assert not cpu_losses.numba_losses_apply(torch.device("cpu"), torch.float64)
    assert not cpu_losses.numba_losses_apply(torch.device("cuda"), torch.float32)

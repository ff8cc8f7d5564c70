"""Acting: greedy = argmax of the mean over K quantiles with noise off; ε, Boltzmann-style Q noise, NoisyNet."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from trackrl.agent import build_network, select_actions
from trackrl.agent.policy import exploration_actions, midpoint_taus
from trackrl.config import TrackRLConfig

FLOAT_DIM = 3


def float_only_network(use_noisy_linear: bool = False):
    config = TrackRLConfig()
    config.nn.use_image = False
    config.nn.float_hidden_dim = 8
    config.nn.dense_hidden_dimension = 16
    config.nn.iqn_embedding_dimension = 8
    config.btr.use_noisy_linear = use_noisy_linear
    torch.manual_seed(0)
    return build_network(config, FLOAT_DIM, np.zeros(FLOAT_DIM), np.ones(FLOAT_DIM))


def act(network, floats, rng, greedy, epsilon=0.0, epsilon_boltzmann=0.0, tau=0.0):
    return select_actions(
        network, None, floats, n_quantiles=8, epsilon=epsilon, epsilon_boltzmann=epsilon_boltzmann,
        tau_epsilon_boltzmann=tau, rng=rng, greedy=greedy,
    )


def test_greedy_is_argmax_of_mean_over_midpoint_quantiles_without_noise() -> None:
    network = float_only_network(use_noisy_linear=True)
    floats = np.random.default_rng(0).standard_normal((5, FLOAT_DIM)).astype(np.float32)
    actions, q_values = act(network, floats, np.random.default_rng(1), greedy=True)
    network.set_noise_enabled(False)
    with torch.no_grad():
        quantiles, _ = network(None, torch.from_numpy(floats), 8, midpoint_taus(5, 8))
    network.set_noise_enabled(True)
    expected_q = quantiles.mean(dim=1).numpy()
    np.testing.assert_allclose(q_values, expected_q, rtol=1e-6)
    np.testing.assert_array_equal(actions, expected_q.argmax(axis=1))
    assert network.noise_enabled  # restored after acting
    again, _ = act(network, floats, np.random.default_rng(2), greedy=True)
    np.testing.assert_array_equal(actions, again)  # evaluation is deterministic


def test_midpoint_taus() -> None:
    assert midpoint_taus(2, 4).tolist() == [[0.125, 0.375, 0.625, 0.875]] * 2


def test_epsilon_one_gives_uniform_random_actions() -> None:
    rng = np.random.default_rng(0)
    q_values = np.tile(np.arange(12, dtype=np.float32), (12_000, 1))
    actions = exploration_actions(q_values, 1.0, 0.0, 0.0, rng)
    counts = np.bincount(actions, minlength=12)
    assert counts.min() > 800 and counts.max() < 1200  # 1000 expected each


def test_exploration_mix_follows_linesight() -> None:
    rng = np.random.default_rng(0)
    q_values = np.tile(np.array([0.0, 1.0, 0.99] + [-5.0] * 9, dtype=np.float32), (20_000, 1))
    # ε = 0: Boltzmann-style noise with τ_b = 0.05 swaps the two close actions often, never picks the −5 ones.
    actions = exploration_actions(q_values, 0.0, 1.0, 0.05, rng)
    assert set(np.unique(actions).tolist()) == {1, 2}
    assert 0.3 < np.mean(actions == 2) < 0.5
    # No exploration at all: always the argmax.
    assert np.all(exploration_actions(q_values, 0.0, 0.0, 0.05, rng) == 1)
    # ε = 0.3, ε_b = 0: 30 % random actions, so action 1 is taken with probability 0.7 + 0.3/12.
    share = np.mean(exploration_actions(q_values, 0.3, 0.0, 0.0, rng) == 1)
    assert share == pytest.approx(0.7 + 0.3 / 12, abs=0.015)


def test_noisy_exploration_resamples_noise_each_step() -> None:
    floats = np.zeros((1, FLOAT_DIM), dtype=np.float32)
    # Same rng seed → same τ draws, so any difference between two calls is the NoisyNet noise.
    plain = float_only_network(use_noisy_linear=False)
    q_plain = [act(plain, floats, np.random.default_rng(0), greedy=False)[1] for _ in range(2)]
    np.testing.assert_array_equal(q_plain[0], q_plain[1])
    noisy = float_only_network(use_noisy_linear=True)
    q_noisy = [act(noisy, floats, np.random.default_rng(0), greedy=False)[1] for _ in range(2)]
    assert not np.allclose(q_noisy[0], q_noisy[1])


def test_actions_and_q_dtypes_and_shapes() -> None:
    network = float_only_network()
    actions, q_values = act(network, np.zeros((4, FLOAT_DIM), np.float32), np.random.default_rng(0), greedy=False,
                            epsilon=0.5)
    assert actions.dtype == np.int64 and actions.shape == (4,)
    assert q_values.dtype == np.float32 and q_values.shape == (4, 12)

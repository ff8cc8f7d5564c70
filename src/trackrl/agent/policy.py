"""Acting: greedy on Q(s,a) = mean over K quantiles, with Linesight's exploration mix or NoisyNet noise.

Per car, with u ~ U(0,1) (Linesight's get_exploration_action):
    u < ε                      → uniform random action
    u < ε + ε_boltzmann        → argmax_a (Q(s,a) + τ_b·N(0,1))  ("Boltzmann-style" Q noise, τ_b: tau_epsilon_boltzmann)
    otherwise                  → argmax_a Q(s,a)
NoisyNet: the noise is resampled for every acting step. greedy=True (evaluation): noise off, no ε, and the quantile
fractions are the K midpoints (k+½)/K instead of random draws, so an evaluation is deterministic.
"""

from __future__ import annotations

import numpy as np
import torch

from trackrl.agent.networks import IQNNetwork


def midpoint_taus(batch_size: int, n_quantiles: int) -> torch.Tensor:
    return ((torch.arange(n_quantiles, dtype=torch.float32) + 0.5) / n_quantiles).expand(batch_size, -1)


def exploration_actions(
    q_values: np.ndarray,
    epsilon: float,
    epsilon_boltzmann: float,
    tau_epsilon_boltzmann: float,
    rng: np.random.Generator,
) -> np.ndarray:
    batch_size, n_actions = q_values.shape
    draw = rng.random(batch_size)
    random_actions = rng.integers(0, n_actions, size=batch_size)
    noisy_q = q_values + tau_epsilon_boltzmann * rng.standard_normal(q_values.shape)
    return np.where(
        draw < epsilon,
        random_actions,
        np.where(draw < epsilon + epsilon_boltzmann, noisy_q.argmax(axis=1), q_values.argmax(axis=1)),
    ).astype(np.int64)


def select_actions(
    network: IQNNetwork,
    images: np.ndarray | None,
    floats: np.ndarray,
    *,
    n_quantiles: int,
    epsilon: float,
    epsilon_boltzmann: float,
    tau_epsilon_boltzmann: float,
    rng: np.random.Generator,
    greedy: bool,
    device: str | torch.device = "cpu",
) -> tuple[np.ndarray, np.ndarray]:
    """Actions (B,) int64 and Q-values (B, A) float32 for a batch of observations; no gradient."""
    batch_size = floats.shape[0]
    if greedy:
        taus = midpoint_taus(batch_size, n_quantiles)
    else:
        taus = torch.from_numpy(rng.random((batch_size, n_quantiles), dtype=np.float32))
    images_tensor = None if images is None else torch.from_numpy(np.ascontiguousarray(images)).to(device)
    floats_tensor = torch.from_numpy(np.ascontiguousarray(floats, dtype=np.float32)).to(device)

    noise_was_enabled = network.noise_enabled
    network.set_noise_enabled(not greedy)
    if not greedy:
        network.reset_noise()
    try:
        with torch.no_grad():
            quantiles, _ = network(images_tensor, floats_tensor, n_quantiles, taus.to(device))
    finally:
        network.set_noise_enabled(noise_was_enabled)
    q_values = quantiles.mean(dim=1).cpu().numpy().astype(np.float32)

    if greedy:
        return q_values.argmax(axis=1).astype(np.int64), q_values
    return exploration_actions(q_values, epsilon, epsilon_boltzmann, tau_epsilon_boltzmann, rng), q_values

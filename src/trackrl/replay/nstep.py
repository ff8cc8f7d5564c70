"""n-step returns from raw per-step rewards, and Linesight's mini-race horizon.

The buffer stores the raw rewards r_t .. r_{t+n-1} of every transition (not a pre-discounted sum) so that the return
can be discounted with the γ of the current schedule at sample time, and cut short by the mini-race horizon:
    R_t^{(n_eff)} = Σ_{k=0}^{n_eff-1} γ^k r_{t+k},    bootstrap discount = γ^{n_eff} (0 if terminal).
"""

from __future__ import annotations

import numpy as np


def discounted_nstep_returns(rewards: np.ndarray, n_effective: np.ndarray, gamma: float) -> np.ndarray:
    """Σ_{k<n_eff} γ^k r_k per row of ``rewards`` (B, n); steps at or after n_eff are ignored."""
    n_steps = rewards.shape[1]
    step = np.arange(n_steps)
    discount_per_step = np.power(np.float64(gamma), step)  # γ^0 .. γ^{n-1}
    mask = step[None, :] < n_effective[:, None]
    return (rewards.astype(np.float64) * discount_per_step[None, :] * mask).sum(axis=1).astype(np.float32)


def mini_race_horizon(
    n_available: np.ndarray, episode_ends: np.ndarray, mini_race_time_actions: np.ndarray, duration_actions: int
) -> tuple[np.ndarray, np.ndarray]:
    """Linesight's mini-race: Q estimates the return of the next ``duration_actions`` actions only.

    A transition sampled at mini-race time c (actions already elapsed, in [0, D)) may look at most D − c steps ahead:
    n_eff = min(n_available, D − c). Reaching the horizon (c + n_eff ≥ D) ends the mini-race, so the transition is
    terminal there (value 0 beyond the horizon), like the real end of an episode.
    Returns (n_effective, terminal).
    """
    steps_left = duration_actions - mini_race_time_actions
    n_effective = np.minimum(n_available, steps_left)
    reached_episode_end = episode_ends & (n_effective == n_available)
    reached_horizon = mini_race_time_actions + n_effective >= duration_actions
    return n_effective, reached_episode_end | reached_horizon


def mini_race_duration_actions(temporal_mini_race_duration_ms: int, action_duration_ms: int) -> int:
    """D in actions for training.temporal_mini_race_duration_ms (Linesight: 7,000 ms / 50 ms = 140); 0 disables."""
    if temporal_mini_race_duration_ms <= 0:
        return 0
    return max(1, temporal_mini_race_duration_ms // action_duration_ms)

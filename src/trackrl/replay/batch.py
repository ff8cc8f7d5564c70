"""The batch handed from the replay buffer to the learner (NumPy; the learner moves it to the device)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class ReplayBatch:
    state_images: np.ndarray | None  # uint8 (B, 1, H, W); None for a float-only agent
    state_floats: np.ndarray  # float32 (B, F)
    actions: np.ndarray  # int64 (B,)
    returns: np.ndarray  # float32 (B,): Σ_{k<n_eff} γ^k r_{t+k}
    next_images: np.ndarray | None  # uint8 (B, 1, H, W): observation n_eff steps later
    next_floats: np.ndarray  # float32 (B, F)
    discounts: np.ndarray  # float32 (B,): γ^{n_eff}, 0 if terminal
    weights: np.ndarray  # float32 (B,): importance-sampling weights, 1 for uniform replay
    indices: np.ndarray  # int64 (B,): buffer slots, for update_priorities
    # bool (B,): whether the learner writes this sample's new priority (False when it was sampled too close to its
    # mini-race horizon, see ReplayBuffer.sample); None = every sample
    updates_priority: np.ndarray | None = field(default=None)

    def __post_init__(self) -> None:
        if self.updates_priority is None:
            self.updates_priority = np.ones(len(self), dtype=bool)

    def __len__(self) -> int:
        return int(self.actions.shape[0])

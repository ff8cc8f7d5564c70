"""The game's observation, progress and reward for one race, from state blobs (today's float layout).

The float vector is `trackrl.sim.observation`'s, filled by its own kernel (`write_float_inputs`) from the blob's
fields, so a network, config and checkpoint run on either backend:
- position x, z and height y, heading from the rotation's forward column (M = Rᵀ, GAME_BRIDGE.md §7.2), planar
  velocity, yaw rate = −(angular velocity about y) (the simulator's ψ increases turning right);
- sliding = any wheel's `is_sliding`; wall contact is not in the blob: a documented constant 0;
- progress along the map's centre line (the `.npy` line or the built-in track) by the simulator's local
  projection (`project_on_centerline`), which also sets the zone index of the zone centres.
Reward: the simulator's (sim/env.py): constant_reward_per_ms x action duration + reward_per_m x metres advanced
+ the optional potential-based shaping.
"""

# TODO(obs184): wire — replace `observe` with obs184's 184-float builder and sim/zone_progress.py's zone update
# (Linesight's forward/backward rule, 20 + 1000 extrapolated points); the rest of the game path calls only
# GameRaceObserver.reset / observe / record_action / reward.

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from trackrl.config import EnvironmentConfig, RewardsConfig
from trackrl.game.blob import SimState
from trackrl.sim.actions import ACTIONS
from trackrl.sim.car import TICK_MS, project_on_centerline, track_arrays
from trackrl.sim.env import (
    STATE_HEADING,
    STATE_HEIGHT,
    STATE_PROGRESS,
    STATE_VX,
    STATE_VZ,
    STATE_X,
    STATE_YAW_RATE,
    STATE_Z,
)
from trackrl.sim.observation import float_input_dim, padded_zone_centers, write_float_inputs
from trackrl.sim.track import Track


@dataclass
class GameObservation:
    floats: np.ndarray  # (F,) float32, trackrl.sim.observation's layout
    progress_m: float  # along the centre line
    position_m: np.ndarray  # (3,) float32 world x, y, z


class GameRaceObserver:
    """One car on one map: call reset() at the race start, observe() at each action step, record_action() after."""

    def __init__(self, track: Track, env_config: EnvironmentConfig, rewards_config: RewardsConfig) -> None:
        self.track = track
        self.env_config = env_config
        self.rewards_config = rewards_config
        self.action_duration_ms = env_config.tm_engine_step_per_action * TICK_MS
        self._geometry = track_arrays(track)
        g = self._geometry
        self._zone_centers = track.zone_centers(env_config.zone_spacing_m)
        last_direction = np.array([g.tangent_x[-1], 0.0, g.tangent_z[-1]])
        self._zone_centers_padded = padded_zone_centers(
            self._zone_centers, last_direction, env_config.zone_spacing_m, env_config.n_zone_centers_in_inputs
        )
        self._floats = np.zeros((1, float_input_dim(env_config)), dtype=np.float32)
        self._state = np.zeros((1, 8))
        self._segment = np.zeros(1, dtype=np.int64)
        self._flags = np.zeros((1, 2), dtype=bool)
        self._previous_actions = np.full((1, env_config.n_prev_actions_in_inputs), -1, dtype=np.int64)
        self._action_keys = np.ascontiguousarray(ACTIONS)
        self._rows = np.zeros(1, dtype=np.int64)
        self._potential = 0.0

    def reset(self) -> None:
        self._segment[0] = 0
        self._previous_actions[:] = -1
        self._potential = 0.0

    def progress_m(self, state: SimState) -> float:
        """Metres along the centre line of the car's projection (a local search from the last segment)."""
        g = self._geometry
        x, z = float(state.position_m[0]), float(state.position_m[2])
        segment, t, _ = project_on_centerline(
            x, z, int(self._segment[0]), g.x_m, g.z_m, g.tangent_x, g.tangent_z, g.planar_length_m
        )
        self._segment[0] = segment
        t = min(max(t, 0.0), 1.0)
        return float(g.distance_m[segment] + t * (g.distance_m[segment + 1] - g.distance_m[segment]))

    def observe(self, state: SimState, finished: bool = False) -> GameObservation:
        progress_m = self.track.length_m if finished else self.progress_m(state)
        forward = state.rotation[:, 2].astype(np.float64)  # the rotation's columns: left, up, forward
        row = self._state[0]
        row[STATE_X], row[STATE_Z], row[STATE_HEIGHT] = state.position_m[0], state.position_m[2], state.position_m[1]
        row[STATE_HEADING] = math.atan2(forward[2], forward[0])
        row[STATE_VX], row[STATE_VZ] = state.linear_velocity_mps[0], state.linear_velocity_mps[2]
        row[STATE_YAW_RATE] = -float(state.angular_velocity_radps[1])
        row[STATE_PROGRESS] = progress_m
        self._flags[0, 0] = bool(state.wheels.is_sliding.any())
        self._flags[0, 1] = False  # wall contact: not in the state blob (documented constant)
        cfg = self.env_config
        g = self._geometry
        write_float_inputs(
            self._floats, self._rows, self._state, self._segment, self._flags, self._previous_actions,
            self._action_keys, self._zone_centers_padded, cfg.zone_spacing_m, cfg.n_zone_centers_in_inputs,
            g.tangent_x, g.tangent_z, g.sin_slope, g.cos_slope, self.track.length_m, cfg.max_distance_to_finish_m,
        )  # fmt: skip
        return GameObservation(self._floats[0].copy(), progress_m, np.asarray(state.position_m, dtype=np.float32))

    def record_action(self, action: int) -> None:
        if self._previous_actions.shape[1]:
            self._previous_actions[0, 1:] = self._previous_actions[0, :-1]
            self._previous_actions[0, 0] = action

    def reward(self, before: GameObservation, after: GameObservation, finished: bool) -> float:
        """The simulator's per-action reward between two action steps (sim/env.py `_rewards`)."""
        cfg = self.rewards_config
        reward = cfg.constant_reward_per_ms * self.action_duration_ms
        reward += cfg.reward_per_m_advanced_along_centerline * (after.progress_m - before.progress_m)
        if cfg.shaped_reward_dist_to_cur_vcp != 0.0:
            potential = 0.0 if finished else self._shaping_potential(after)
            reward += potential - self._potential
            self._potential = potential
        return float(np.float32(reward))

    def start_potential(self, first: GameObservation) -> None:
        if self.rewards_config.shaped_reward_dist_to_cur_vcp != 0.0:
            self._potential = self._shaping_potential(first)

    def _shaping_potential(self, observation: GameObservation) -> float:
        cfg = self.rewards_config
        zone = min(int(observation.progress_m / self.env_config.zone_spacing_m + 1e-9) + 1, len(self._zone_centers) - 1)
        position = np.array([observation.position_m[0], observation.position_m[1], observation.position_m[2]])
        distance_m = float(np.linalg.norm(self._zone_centers[zone] - position))
        clamped = min(max(distance_m, cfg.shaped_reward_min_dist_to_cur_vcp), cfg.shaped_reward_max_dist_to_cur_vcp)
        return cfg.shaped_reward_dist_to_cur_vcp * clamped


def bgra_to_gray(bgra: np.ndarray) -> np.ndarray:
    """(H, W, 4) BGRA -> (1, H, W) uint8 with OpenCV's BGRA2GRAY weights: 0.114 B + 0.587 G + 0.299 R."""
    weighted = 0.114 * bgra[..., 0] + 0.587 * bgra[..., 1] + 0.299 * bgra[..., 2]
    return np.rint(weighted).astype(np.uint8)[None]

"""The game's observation, progress and reward for one race, from state blobs.

The float vector is `trackrl.sim.observation`'s one layout (Linesight's 184 floats with the default config), built by
`game_float_inputs` from the blob's fields, so a network, config and checkpoint run on either backend. The zone
centres, the distance to finish and the no-progress timer follow Linesight's virtual checkpoints along the map's line
(`sim.zone_progress.ZoneProgress`: the simulator's own kernel, batch 1). The reward is the simulator's
(`sim.zone_progress.step_reward`, sim/env.py): constant_reward_per_ms x step duration (the last step only up to the
finish) + reward_per_m x metres advanced along the map's line (the simulator's local projection on it) + the optional
potential-based shaping on the distance to the current virtual checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from trackrl.config import EnvironmentConfig, RewardsConfig
from trackrl.game.blob import SimState
from trackrl.sim.car import project_on_centerline, track_arrays
from trackrl.sim.observation import game_float_inputs
from trackrl.sim.track import Track
from trackrl.sim.zone_progress import ZoneProgress, shaping_potential, step_reward, zone_line


@dataclass
class GameObservation:
    floats: np.ndarray  # (F,) float32, trackrl.sim.observation's layout
    progress_m: float  # along the map's line (the reward's progress)
    position_m: np.ndarray  # (3,) float32 world x, y, z
    race_time_ms: int
    distance_to_current_vcp_m: float  # the shaping's distance (Linesight's dist_to_cur_vcp)


class GameRaceObserver:
    """One car on one map: call reset() at the race start, observe() at each action step, record_action() after."""

    def __init__(self, track: Track, env_config: EnvironmentConfig, rewards_config: RewardsConfig) -> None:
        self.track = track
        self.env_config = env_config
        self.rewards_config = rewards_config
        self._geometry = track_arrays(track)
        cutoff_ms = env_config.cutoff_rollout_if_no_vcp_passed_within_duration_ms
        self._zones = ZoneProgress(zone_line(track.centerline_m, track.real_checkpoint_positions_m), cutoff_ms)
        self._segment = 0
        self._actions: list[int] = []
        self._previous_floats: np.ndarray | None = None
        self._potential = 0.0

    def reset(self) -> None:
        self._segment = 0
        self._zones.reset()
        self._actions = []
        self._previous_floats = None
        self._potential = 0.0

    def progress_m(self, state: SimState) -> float:
        """Metres along the map's line of the car's projection (a local search from the last segment)."""
        g = self._geometry
        x, z = float(state.position_m[0]), float(state.position_m[2])
        segment, t, _ = project_on_centerline(x, z, self._segment, g.x_m, g.z_m, g.tangent_x, g.tangent_z,
                                              g.planar_length_m)  # fmt: skip
        self._segment = segment
        t = min(max(t, 0.0), 1.0)
        return float(g.distance_m[segment] + t * (g.distance_m[segment + 1] - g.distance_m[segment]))

    def observe(self, state: SimState, finished: bool = False) -> GameObservation:
        progress_m = self.track.length_m if finished else self.progress_m(state)
        position_m = np.asarray(state.position_m, dtype=np.float64)
        self._zones.update(position_m, int(state.race_time_ms))
        floats = game_float_inputs(state, self._zones.zone_index, self._zones.distance_m, self._zones.line,
                                   self._actions, self.env_config, self._previous_floats)  # fmt: skip
        self._previous_floats = floats
        vcp_distance_m = float(np.linalg.norm(self._zones.line.centers_m[self._zones.zone_index] - position_m))
        return GameObservation(floats, progress_m, position_m.astype(np.float32), int(state.race_time_ms),
                               vcp_distance_m)  # fmt: skip

    def no_progress(self, race_time_ms: int) -> bool:
        """Linesight's cutoff: no new furthest virtual checkpoint for the configured duration."""
        return self._zones.no_progress(race_time_ms)

    def record_action(self, action: int) -> None:
        self._actions.append(action)

    def reward(self, before: GameObservation, after: GameObservation, finished: bool) -> float:
        """The simulator's per-action reward between two action steps (sim/env.py `_rewards`)."""
        cfg = self.rewards_config
        duration_ms = after.race_time_ms - before.race_time_ms
        reward = float(step_reward(after.progress_m - before.progress_m, duration_ms, cfg))
        if cfg.shaped_reward_dist_to_cur_vcp != 0.0:
            potential = 0.0 if finished else self._shaping_potential(after)
            reward += potential - self._potential
            self._potential = potential
        return float(np.float32(reward))

    def start_potential(self, first: GameObservation) -> None:
        if self.rewards_config.shaped_reward_dist_to_cur_vcp != 0.0:
            self._potential = self._shaping_potential(first)

    def _shaping_potential(self, observation: GameObservation) -> float:
        """Φ of this observation (zone_progress.shaping_potential, the simulator's)."""
        return float(shaping_potential(observation.distance_to_current_vcp_m, self.rewards_config))

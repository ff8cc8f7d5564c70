"""`VecRaceEnv`: many cars on one track, stepped together (the fast path used by the collectors).

One step = one action held for `tm_engine_step_per_action` engine ticks of 10 ms (50 ms by default).
Reward per step (Linesight): constant_reward_per_ms · action_duration_ms
    + reward_per_m_advanced_along_centerline · (metres advanced along the centre line)
    + Φ(s') − Φ(s), with Φ = shaped_reward_dist_to_cur_vcp · clamp(distance to the current zone centre, min, max)
      (potential-based shaping, Ng et al. 1999; Φ = 0 once finished, so shaping cannot change the optimum).
Episode end: finishing (terminated); no progress within cutoff_rollout_if_no_vcp_passed_within_duration_ms (Linesight's
rule: the timer restarts whenever the car reaches a 0.5 m centre-line point further than any before, so a car creeping
forward is never cut off) or the race not finished within cutoff_rollout_if_race_not_finished_within_duration_ms
(truncated). A race that ends unfinished, by either cutoff, reports the race cutoff as its time (300,000 ms by
default), with finished = False, as the game tools do.
A car that is done stays frozen (reward 0, flags repeated) until `reset(car_indices)`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from trackrl.config import EnvironmentConfig, RewardsConfig
from trackrl.sim.actions import ACTIONS, N_ACTIONS
from trackrl.sim.camera import CameraParams, build_track_texture, camera_rays, render_images
from trackrl.sim.car import DEFAULT_CAR, TICK_MS, CarParams, simulate_ticks, track_arrays
from trackrl.sim.observation import float_input_dim, padded_zone_centers, write_float_inputs
from trackrl.sim.track import Track

PROGRESS_POINT_SPACING_M = 0.5  # Linesight's centre-line points: reaching a new one restarts the no-progress timer
STATE_X, STATE_Z, STATE_HEADING, STATE_VX, STATE_VZ, STATE_YAW_RATE, STATE_PROGRESS, STATE_HEIGHT = range(8)


@dataclass
class StepResult:
    images: np.ndarray  # (B, 1, H, W) uint8
    floats: np.ndarray  # (B, F) float32
    rewards: np.ndarray  # (B,) float32
    terminated: np.ndarray  # (B,) bool: finished the race
    truncated: np.ndarray  # (B,) bool: a cutoff ended it
    finished: np.ndarray  # (B,) bool
    race_time_ms: np.ndarray  # (B,) int64
    progress_m: np.ndarray  # (B,) float64
    positions_m: np.ndarray  # (B, 3) float64
    speed_mps: np.ndarray  # (B,) float64


class VecRaceEnv:
    def __init__(
        self,
        track: Track,
        num_cars: int,
        env_config: EnvironmentConfig | None = None,
        rewards_config: RewardsConfig | None = None,
        image_size_px: tuple[int, int] = (64, 64),
        render_images: bool = True,
        seed: int = 0,
        car_params: CarParams = DEFAULT_CAR,
        camera: CameraParams | None = None,
    ) -> None:
        if num_cars < 1:
            raise ValueError(f"num_cars must be at least 1, got {num_cars}")
        self.track = track
        self.num_cars = num_cars
        self.env_config = env_config if env_config is not None else EnvironmentConfig()
        self.rewards_config = rewards_config if rewards_config is not None else RewardsConfig()
        self.seed = seed  # the dynamics are deterministic; kept for API symmetry with other envs
        self.render_images = render_images
        self.car_params = car_params
        self.ticks_per_action = self.env_config.tm_engine_step_per_action
        self.action_duration_ms = self.ticks_per_action * TICK_MS
        self.float_input_dim = float_input_dim(self.env_config)
        self.image_shape = (1, *image_size_px)

        self._params = car_params.as_array()
        self._geometry = track_arrays(track, car_params)
        spacing_m = self.env_config.zone_spacing_m
        self._zone_centers = track.zone_centers(spacing_m)
        last_direction = np.array([self._geometry.tangent_x[-1], 0.0, self._geometry.tangent_z[-1]])
        self._zone_centers_padded = padded_zone_centers(
            self._zone_centers, last_direction, spacing_m, self.env_config.n_zone_centers_in_inputs
        )
        if render_images:
            self._texture = build_track_texture(track)
            self._rays = camera_rays(image_size_px, camera if camera is not None else CameraParams())

        b = num_cars
        self._state = np.zeros((b, 8))
        self._segment = np.zeros(b, dtype=np.int64)
        self._tick = np.zeros(b, dtype=np.int64)
        self._finished = np.zeros(b, dtype=bool)
        self._flags = np.zeros((b, 2), dtype=bool)
        self._terminated = np.zeros(b, dtype=bool)
        self._truncated = np.zeros(b, dtype=bool)
        self._race_time_ms = np.zeros(b, dtype=np.int64)
        self._zones_passed = np.zeros(b, dtype=np.int64)
        self._furthest_point = np.zeros(b, dtype=np.int64)  # furthest 0.5 m progress point reached
        self._last_progress_tick = np.zeros(b, dtype=np.int64)
        self._potential = np.zeros(b)
        self._previous_actions = np.full((b, self.env_config.n_prev_actions_in_inputs), -1, dtype=np.int64)
        self._images = np.zeros((b, *self.image_shape), dtype=np.uint8)
        self._floats = np.zeros((b, self.float_input_dim), dtype=np.float32)
        self._action_keys = np.ascontiguousarray(ACTIONS)
        self._steer = (ACTIONS[:, 3].astype(np.int64) - ACTIONS[:, 2].astype(np.int64)).astype(np.float64)
        self.reset()

    # ---- public API -------------------------------------------------------------------------------------------
    def reset(self, car_indices: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Put the given cars (all if None) at the start line, standstill; observations of ALL cars."""
        rows = np.arange(self.num_cars) if car_indices is None else np.asarray(car_indices, dtype=np.int64).ravel()
        if rows.size and (rows.min() < 0 or rows.max() >= self.num_cars):
            raise IndexError(f"car_indices must be in [0, {self.num_cars}), got {rows.tolist()}")
        g = self._geometry
        self._state[rows] = 0.0
        self._state[rows, STATE_X] = g.x_m[0]
        self._state[rows, STATE_Z] = g.z_m[0]
        self._state[rows, STATE_HEIGHT] = g.y_m[0]
        self._state[rows, STATE_HEADING] = np.arctan2(g.tangent_z[0], g.tangent_x[0])
        for array in (self._segment, self._tick, self._race_time_ms, self._zones_passed, self._furthest_point,
                      self._last_progress_tick):
            array[rows] = 0
        for array in (self._finished, self._terminated, self._truncated):
            array[rows] = False
        self._flags[rows] = False
        self._previous_actions[rows] = -1
        self._potential[rows] = self._shaping_potential(rows)
        self._observe(rows)
        return self._images.copy(), self._floats.copy()

    def step(self, actions: np.ndarray) -> StepResult:
        actions = np.asarray(actions)
        if actions.shape != (self.num_cars,) or actions.dtype.kind not in "iu":
            raise ValueError(
                f"actions must be an integer array of shape ({self.num_cars},), got {actions.dtype} {actions.shape}"
            )
        if actions.size and (actions.min() < 0 or actions.max() >= N_ACTIONS):
            raise ValueError(f"actions must be in [0, {N_ACTIONS}), got {actions.min()}..{actions.max()}")
        actions = actions.astype(np.int64)
        active = ~(self._terminated | self._truncated)
        rows = np.flatnonzero(active)
        progress_before_m = self._state[:, STATE_PROGRESS].copy()
        g = self._geometry
        simulate_ticks(
            self._state, self._segment, self._tick, self._finished, self._flags, active,
            self._action_keys[actions, 0], self._action_keys[actions, 1], self._steer[actions],
            self.ticks_per_action, self._params,
            g.x_m, g.y_m, g.z_m, g.tangent_x, g.tangent_z, g.planar_length_m, g.distance_m, g.sin_slope,
            g.cos_slope, g.wall_offset_m,
        )  # fmt: skip
        self._update_zones_and_cutoffs(rows)
        rewards = self._rewards(rows, progress_before_m)  # Φ(s') uses the zone reached in s
        self._previous_actions[rows, 1:] = self._previous_actions[rows, :-1]
        if self._previous_actions.shape[1]:
            self._previous_actions[rows, 0] = actions[rows]
        self._observe(rows)
        state = self._state
        return StepResult(
            images=self._images.copy(),
            floats=self._floats.copy(),
            rewards=rewards,
            terminated=self._terminated.copy(),
            truncated=self._truncated.copy(),
            finished=self._finished.copy(),
            race_time_ms=self._race_time_ms.copy(),
            progress_m=state[:, STATE_PROGRESS].copy(),
            positions_m=state[:, [STATE_X, STATE_HEIGHT, STATE_Z]].copy(),
            speed_mps=np.hypot(state[:, STATE_VX], state[:, STATE_VZ]),
        )

    def set_car_state(
        self,
        car_index: int,
        position_xz_m: tuple[float, float],
        heading_rad: float,
        velocity_xz_mps: tuple[float, float],
    ) -> None:
        """Teleport one car (tests, curricula): planar position, heading and velocity; the race clock is kept.

        Progress, height and the zone count are recomputed from the nearest centre-line segment.
        """
        g = self._geometry
        x_m, z_m = float(position_xz_m[0]), float(position_xz_m[1])
        along = np.clip(((x_m - g.x_m[:-1]) * g.tangent_x + (z_m - g.z_m[:-1]) * g.tangent_z) / g.planar_length_m, 0, 1)
        distance_m = np.hypot(
            g.x_m[:-1] + along * g.planar_length_m * g.tangent_x - x_m,
            g.z_m[:-1] + along * g.planar_length_m * g.tangent_z - z_m,
        )
        segment = int(np.argmin(distance_m))
        t = float(along[segment])
        row = np.array([car_index])
        self._segment[car_index] = segment
        self._state[car_index] = [
            x_m, z_m, heading_rad, velocity_xz_mps[0], velocity_xz_mps[1], 0.0,
            g.distance_m[segment] + t * (g.distance_m[segment + 1] - g.distance_m[segment]),
            g.y_m[segment] + t * (g.y_m[segment + 1] - g.y_m[segment]),
        ]  # fmt: skip
        self._zones_passed[car_index] = int(self._state[car_index, STATE_PROGRESS] // self.env_config.zone_spacing_m)
        self._furthest_point[car_index] = int(self._state[car_index, STATE_PROGRESS] // PROGRESS_POINT_SPACING_M)
        self._last_progress_tick[car_index] = self._tick[car_index]
        self._potential[row] = self._shaping_potential(row)
        self._observe(row)

    @property
    def headings_rad(self) -> np.ndarray:
        """(B,) heading ψ of each car: direction (cos ψ, sin ψ) in the x-z plane, increasing to the right."""
        return self._state[:, STATE_HEADING].copy()

    @property
    def velocities_mps(self) -> np.ndarray:
        """(B, 2) planar velocity (vx, vz)."""
        return self._state[:, [STATE_VX, STATE_VZ]].copy()

    @property
    def sliding(self) -> np.ndarray:
        return self._flags[:, 0].copy()

    @property
    def wall_contact(self) -> np.ndarray:
        return self._flags[:, 1].copy()

    @property
    def zones_passed(self) -> np.ndarray:
        return self._zones_passed.copy()

    # ---- internals --------------------------------------------------------------------------------------------
    def _rewards(self, rows: np.ndarray, progress_before_m: np.ndarray) -> np.ndarray:
        cfg = self.rewards_config
        rewards = np.zeros(self.num_cars, dtype=np.float64)
        advanced_m = self._state[rows, STATE_PROGRESS] - progress_before_m[rows]
        time_reward = cfg.constant_reward_per_ms * self.action_duration_ms
        rewards[rows] = time_reward + cfg.reward_per_m_advanced_along_centerline * advanced_m
        if cfg.shaped_reward_dist_to_cur_vcp != 0.0:
            new_potential = self._shaping_potential(rows)
            new_potential[self._finished[rows]] = 0.0  # Φ(terminal) = 0
            rewards[rows] += new_potential - self._potential[rows]
            self._potential[rows] = new_potential
        return rewards.astype(np.float32)

    def _shaping_potential(self, rows: np.ndarray) -> np.ndarray:
        """Φ(s) = coef · clamp(distance from the car to the next zone centre, min, max)."""
        cfg = self.rewards_config
        if cfg.shaped_reward_dist_to_cur_vcp == 0.0:
            return np.zeros(rows.size)
        current_zone = np.minimum(self._zones_passed[rows] + 1, len(self._zone_centers) - 1)
        car_xyz = self._state[rows][:, [STATE_X, STATE_HEIGHT, STATE_Z]]
        distance_m = np.linalg.norm(self._zone_centers[current_zone] - car_xyz, axis=1)
        clamped = np.clip(distance_m, cfg.shaped_reward_min_dist_to_cur_vcp, cfg.shaped_reward_max_dist_to_cur_vcp)
        return cfg.shaped_reward_dist_to_cur_vcp * clamped

    def _update_zones_and_cutoffs(self, rows: np.ndarray) -> None:
        cfg = self.env_config
        zones = np.floor(self._state[rows, STATE_PROGRESS] / cfg.zone_spacing_m + 1e-9).astype(np.int64)
        zones[self._finished[rows]] = len(self._zone_centers) - 1
        new_zone = zones > self._zones_passed[rows]
        self._zones_passed[rows[new_zone]] = zones[new_zone]
        points = np.floor(self._state[rows, STATE_PROGRESS] / PROGRESS_POINT_SPACING_M + 1e-9).astype(np.int64)
        new_point = points > self._furthest_point[rows]
        self._furthest_point[rows[new_point]] = points[new_point]
        self._last_progress_tick[rows[new_point]] = self._tick[rows[new_point]]
        ticks = self._tick[rows]
        finished = self._finished[rows]
        elapsed_ms = ticks * TICK_MS
        since_progress_ms = (ticks - self._last_progress_tick[rows]) * TICK_MS
        no_progress = since_progress_ms >= cfg.cutoff_rollout_if_no_vcp_passed_within_duration_ms
        too_long = elapsed_ms >= cfg.cutoff_rollout_if_race_not_finished_within_duration_ms
        self._terminated[rows] = finished
        self._truncated[rows] = ~finished & (no_progress | too_long)
        race_time_ms = elapsed_ms.copy()
        race_time_ms[self._truncated[rows]] = cfg.cutoff_rollout_if_race_not_finished_within_duration_ms
        self._race_time_ms[rows] = race_time_ms

    def _observe(self, rows: np.ndarray) -> None:
        if rows.size == 0:
            return
        g = self._geometry
        cfg = self.env_config
        write_float_inputs(
            self._floats, rows, self._state, self._segment, self._flags, self._previous_actions, self._action_keys,
            self._zone_centers_padded, cfg.zone_spacing_m, cfg.n_zone_centers_in_inputs, g.tangent_x, g.tangent_z,
            g.sin_slope, g.cos_slope, self.track.length_m, cfg.max_distance_to_finish_m,
        )  # fmt: skip
        if self.render_images:
            render_images(self._images, rows, self._state, self._rays, self._texture)

"""`VecRaceEnv`: many cars on one track, stepped together (the fast path used by the collectors).

One step = one action held for `tm_engine_step_per_action` engine ticks of 10 ms (50 ms by default).
Reward per step (Linesight, `sim.zone_progress.step_reward`): constant_reward_per_ms · step duration (50 ms; the
    finishing step lasts until the finish tick) + reward_per_m_advanced_along_centerline · (metres advanced along the
    centre line: the simulator's exact projection of the car on it)
    + Φ(s') − Φ(s), with Φ = shaped_reward_dist_to_cur_vcp · clamp(distance to the current virtual checkpoint, min, max)
      (potential-based shaping, Ng et al. 1999; Φ = 0 once finished, so shaping cannot change the optimum).
Zones: every car follows Linesight's virtual-checkpoint index on the track's 0.5 m centre line (`sim.zone_progress`,
the same kernel the game backend uses); the float vector's zone centres and distance to finish come from it.
Episode end: finishing (terminated); no new furthest virtual checkpoint for more than
cutoff_rollout_if_no_vcp_passed_within_duration_ms (Linesight's rule, so a car creeping forward is never cut off) or
the race not finished within cutoff_rollout_if_race_not_finished_within_duration_ms (truncated). A race that ends
unfinished, by either cutoff, reports the race cutoff as its time (300,000 ms by
default), with finished = False, as the game tools do.
A car that is done stays frozen (reward 0, flags repeated) until `reset(car_indices)`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from trackrl.config import EnvironmentConfig, RewardsConfig
from trackrl.sim.actions import ACTIONS, N_ACTIONS, STEER_INPUT
from trackrl.sim.camera import CameraParams, TrackTexture, build_track_texture, camera_rays, render_images
from trackrl.sim.car import (
    DEFAULT_CAR,
    N_STATE,
    S_GEAR,
    S_HEADING,
    S_HEIGHT,
    S_PROGRESS,
    S_VX,
    S_VZ,
    S_X,
    S_YAW_RATE,
    S_Z,
    TICK_MS,
    CarParams,
    gear_for_speed,
    simulate_ticks,
    track_arrays,
)
from trackrl.sim.observation import float_input_dim, write_float_inputs, zone_stride
from trackrl.sim.track import Track
from trackrl.sim.zone_progress import (
    ZoneLine,
    kernel_arguments,
    no_progress_cutoff,
    shaping_potential,
    step_reward,
    update_zone_indices,
    zone_line,
)

# The car state's columns (car.py owns them; S_GEAR and S_SHIFT_TICKS_LEFT follow these).
STATE_X, STATE_Z, STATE_HEADING, STATE_VX, STATE_VZ = S_X, S_Z, S_HEADING, S_VX, S_VZ
STATE_YAW_RATE, STATE_PROGRESS, STATE_HEIGHT = S_YAW_RATE, S_PROGRESS, S_HEIGHT


@functools.lru_cache(maxsize=8)
def _track_texture(track: Track) -> TrackTexture:
    """One texture per Track object (about 0.4 s to build for a01), shared by every env on it (SyncVectorEnv)."""
    return build_track_texture(track)


@functools.lru_cache(maxsize=8)
def _zone_line(track: Track) -> ZoneLine:
    """Linesight's virtual-checkpoint line of a track (extrapolated, smoothed), shared by every env on it."""
    return zone_line(track.centerline_m, track.real_checkpoint_positions_m)


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
    """`num_cars` independent cars on one track, stepped together on arrays (no Python loop over cars).

    `reset(car_indices)` returns (images (B, 1, H, W) uint8, floats (B, F) float32) of all cars; `step(actions)`
    takes (B,) integer actions in [0, 12) and returns a `StepResult`. Cars that are done stay frozen until reset
    (no autoreset: the collectors and `trackrl.sim.gym_vector.RaceVectorEnv` decide). The float layout is
    `trackrl.sim.observation`'s (docs/observation.md); rewards are Linesight's (`rewards_config`).

    Args:
        track: the `Track` to race on.
        num_cars: batch size B.
        env_config / rewards_config: `EnvironmentConfig` / `RewardsConfig` (defaults if None).
        image_size_px: (height, width) of the camera image.
        render_images: False skips the camera (images stay zeros; about 4x faster).
        seed: kept for API symmetry; the dynamics are deterministic.
        car_params / camera: the car model and camera (defaults shared with reference.py).
    """

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
        self._zone_line = _zone_line(track)
        self._zone_arguments = kernel_arguments(self._zone_line)
        self._zone_stride = zone_stride(self.env_config)
        if render_images:
            self._texture = _track_texture(track)
            self._rays = camera_rays(image_size_px, camera if camera is not None else CameraParams())

        b = num_cars
        self._state = np.zeros((b, N_STATE))
        self._segment = np.zeros(b, dtype=np.int64)
        self._tick = np.zeros(b, dtype=np.int64)
        self._finished = np.zeros(b, dtype=bool)
        self._flags = np.zeros((b, 2), dtype=bool)
        self._terminated = np.zeros(b, dtype=bool)
        self._truncated = np.zeros(b, dtype=bool)
        self._parked = np.zeros(b, dtype=bool)  # out of the race until reset (see park)
        self._race_time_ms = np.zeros(b, dtype=np.int64)
        self._zones_passed = np.zeros(b, dtype=np.int64)
        self._zone_index = np.zeros(b, dtype=np.int64)  # Linesight's current virtual checkpoint
        self._furthest_zone_index = np.zeros(b, dtype=np.int64)
        self._zone_distance_m = np.zeros(b)  # distance along the zone line
        self._last_progress_tick = np.zeros(b, dtype=np.int64)
        self._potential = np.zeros(b)
        self._previous_actions = np.full((b, self.env_config.n_prev_actions_in_inputs), -1, dtype=np.int64)
        self._images = np.zeros((b, *self.image_shape), dtype=np.uint8)
        self._floats = np.zeros((b, self.float_input_dim), dtype=np.float32)
        self._action_keys = np.ascontiguousarray(ACTIONS)
        self._steer = STEER_INPUT
        self.reset()

    # ---- public API -------------------------------------------------------------------------------------------
    def reset(
        self,
        car_indices: np.ndarray | None = None,
        start_progress_m: np.ndarray | None = None,
        start_speed_mps: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Put the given cars (all if None) at the start line, standstill; observations of ALL cars.

        start_progress_m / start_speed_mps (one per car, default 0): start on the centre line that far from the
        start line instead, heading along it at that speed (random starts); the race clock starts at 0 there.
        """
        rows = np.arange(self.num_cars) if car_indices is None else np.asarray(car_indices, dtype=np.int64).ravel()
        if rows.size and (rows.min() < 0 or rows.max() >= self.num_cars):
            raise IndexError(f"car_indices must be in [0, {self.num_cars}), got {rows.tolist()}")
        g = self._geometry
        progress_m = np.zeros(rows.size) if start_progress_m is None else np.asarray(start_progress_m, np.float64)
        speed_mps = np.zeros(rows.size) if start_speed_mps is None else np.asarray(start_speed_mps, np.float64)
        if progress_m.shape != rows.shape or speed_mps.shape != rows.shape:
            raise ValueError(f"start_progress_m and start_speed_mps need one value per car ({rows.size})")
        if progress_m.size and (progress_m.min() < 0 or progress_m.max() >= g.distance_m[-1]):
            raise ValueError(f"start_progress_m must be in [0, {g.distance_m[-1]:.1f}) m, got {progress_m.tolist()}")
        segment = np.clip(np.searchsorted(g.distance_m, progress_m, side="right") - 1, 0, len(g.tangent_x) - 1)
        t = (progress_m - g.distance_m[segment]) / (g.distance_m[segment + 1] - g.distance_m[segment])
        self._state[rows] = 0.0
        self._state[rows, STATE_X] = g.x_m[segment] + t * (g.x_m[segment + 1] - g.x_m[segment])
        self._state[rows, STATE_Z] = g.z_m[segment] + t * (g.z_m[segment + 1] - g.z_m[segment])
        self._state[rows, STATE_HEIGHT] = g.y_m[segment] + t * (g.y_m[segment + 1] - g.y_m[segment])
        self._state[rows, STATE_HEADING] = np.arctan2(g.tangent_z[segment], g.tangent_x[segment])
        self._state[rows, STATE_VX] = speed_mps * g.tangent_x[segment]
        self._state[rows, STATE_VZ] = speed_mps * g.tangent_z[segment]
        self._state[rows, STATE_PROGRESS] = progress_m
        self._state[rows, S_GEAR] = [gear_for_speed(v, self._params) for v in speed_mps]
        for array in (self._tick, self._race_time_ms, self._last_progress_tick):
            array[rows] = 0
        self._segment[rows] = segment
        self._zones_passed[rows] = np.floor(progress_m / self.env_config.zone_spacing_m + 1e-9).astype(np.int64)
        for array in (self._finished, self._terminated, self._truncated, self._parked):
            array[rows] = False
        self._flags[rows] = False
        self._previous_actions[rows] = -1
        self._start_zones(rows)
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
        active = ~(self._terminated | self._truncated | self._parked)
        rows = np.flatnonzero(active)
        progress_before_m = self._state[:, STATE_PROGRESS].copy()
        tick_before = self._tick.copy()
        g = self._geometry
        simulate_ticks(
            self._state, self._segment, self._tick, self._finished, self._flags, active,
            self._action_keys[actions, 0], self._action_keys[actions, 1], self._steer[actions],
            self.ticks_per_action, self._params,
            g.x_m, g.y_m, g.z_m, g.tangent_x, g.tangent_z, g.planar_length_m, g.distance_m, g.sin_slope,
            g.cos_slope, g.wall_offset_m,
        )  # fmt: skip
        self._update_zones_and_cutoffs(rows)
        # Φ(s') uses the zone reached in s'; the finishing step lasts until the finish tick
        rewards = self._rewards(rows, progress_before_m, (self._tick - tick_before) * TICK_MS)
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

    def park(self, car_indices: np.ndarray) -> None:
        """Take cars out of the race until their next ``reset``: ``step`` neither simulates nor renders them, and
        reports them as they were (a multi-map collector's car racing on another map's environment)."""
        self._parked[np.asarray(car_indices, dtype=np.int64).ravel()] = True

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
            gear_for_speed(velocity_xz_mps[0] * np.cos(heading_rad) + velocity_xz_mps[1] * np.sin(heading_rad),
                           self._params),
            0.0,
        ]  # fmt: skip
        self._zones_passed[car_index] = int(self._state[car_index, STATE_PROGRESS] // self.env_config.zone_spacing_m)
        self._last_progress_tick[car_index] = self._tick[car_index]
        self._start_zones(row)
        self._potential[row] = self._shaping_potential(row)
        self._observe(row)

    # Every per-car array that the dynamics, zones and cutoffs read (images and floats are derived from them).
    # A new per-car array must be added here, or a snapshot would not restore it (tests/test_sim_env.py checks).
    SNAPSHOT_ARRAYS = (
        "_state", "_segment", "_tick", "_finished", "_flags", "_terminated", "_truncated", "_race_time_ms",
        "_zones_passed", "_zone_index", "_furthest_zone_index",
        "_zone_distance_m", "_last_progress_tick", "_potential", "_previous_actions", "_parked",
    )  # fmt: skip

    def snapshot_car(self, car_index: int) -> bytes:
        """The complete state of one car as bytes: `restore_car` with them reproduces its future exactly."""
        return b"".join(getattr(self, name)[car_index].tobytes() for name in self.SNAPSHOT_ARRAYS)

    def restore_car(self, car_index: int, snapshot: bytes) -> None:
        """Put one car back into a state from `snapshot_car` (of an env on the same track, any batch size)."""
        rows = [getattr(self, name)[car_index : car_index + 1] for name in self.SNAPSHOT_ARRAYS]
        expected = sum(row.nbytes for row in rows)
        if len(snapshot) != expected:
            raise ValueError(f"car snapshot has {len(snapshot)} bytes, this simulator's have {expected}")
        offset = 0
        for row in rows:
            row[...] = np.frombuffer(snapshot, dtype=row.dtype, count=row.size, offset=offset).reshape(row.shape)
            offset += row.nbytes
        self._observe(np.array([car_index]))

    def car_state(self, car_index: int) -> np.ndarray:
        """A copy of one car's state row, indexed by the STATE_* columns above (one call for all of them)."""
        return self._state[car_index].copy()

    @property
    def headings_rad(self) -> np.ndarray:
        """(B,) heading ψ of each car: direction (cos ψ, sin ψ) in the x-z plane, increasing to the right."""
        return self._state[:, STATE_HEADING].copy()

    @property
    def velocities_mps(self) -> np.ndarray:
        """(B, 2) planar velocity (vx, vz)."""
        return self._state[:, [STATE_VX, STATE_VZ]].copy()

    @property
    def yaw_rates_radps(self) -> np.ndarray:
        """(B,) ψ̇ (positive turning right)."""
        return self._state[:, STATE_YAW_RATE].copy()

    @property
    def positions_m(self) -> np.ndarray:
        """(B, 3) world position (x, y = height, z), as in StepResult."""
        return self._state[:, [STATE_X, STATE_HEIGHT, STATE_Z]].copy()

    @property
    def progress_m(self) -> np.ndarray:
        """(B,) distance along the centre line, as in StepResult."""
        return self._state[:, STATE_PROGRESS].copy()

    @property
    def race_times_ms(self) -> np.ndarray:
        """(B,) race clock of each car (the finish time once finished)."""
        return self._race_time_ms.copy()

    @property
    def last_actions(self) -> np.ndarray:
        """(B,) the action each car applied last; -1 before its first step (or with no previous-action inputs)."""
        if self._previous_actions.shape[1] == 0:
            return np.full(self.num_cars, -1, dtype=np.int64)
        return self._previous_actions[:, 0].copy()

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
    def _rewards(self, rows: np.ndarray, progress_before_m: np.ndarray, duration_ms: np.ndarray) -> np.ndarray:
        cfg = self.rewards_config
        rewards = np.zeros(self.num_cars, dtype=np.float64)
        advanced_m = self._state[rows, STATE_PROGRESS] - progress_before_m[rows]
        rewards[rows] = step_reward(advanced_m, duration_ms[rows], cfg)
        if cfg.shaped_reward_dist_to_cur_vcp != 0.0:
            new_potential = self._shaping_potential(rows)
            new_potential[self._finished[rows]] = 0.0  # Φ(terminal) = 0
            rewards[rows] += new_potential - self._potential[rows]
            self._potential[rows] = new_potential
        return rewards.astype(np.float32)

    def _shaping_potential(self, rows: np.ndarray) -> np.ndarray:
        """Φ of these cars (zone_progress.shaping_potential) from their distance to their current virtual checkpoint."""
        if self.rewards_config.shaped_reward_dist_to_cur_vcp == 0.0:
            return np.zeros(rows.size)
        car_xyz = self._state[rows][:, [STATE_X, STATE_HEIGHT, STATE_Z]]
        distance_m = np.linalg.norm(self._zone_line.centers_m[self._zone_index[rows]] - car_xyz, axis=1)
        return shaping_potential(distance_m, self.rewards_config)

    def _run_zone_update(self, rows: np.ndarray) -> np.ndarray:
        """Linesight's zone update for these cars; (B,) bool: where the furthest zone index grew."""
        improved = np.zeros(self.num_cars, dtype=bool)
        positions = np.ascontiguousarray(self._state[:, [STATE_X, STATE_HEIGHT, STATE_Z]])
        update_zone_indices(self._zone_index, self._furthest_zone_index, self._zone_distance_m, rows, positions,
                            *self._zone_arguments, improved)  # fmt: skip
        return improved

    def _start_zones(self, rows: np.ndarray) -> None:
        """Zone index of cars put on the track: from the point nearest their progress, settled by the zone update."""
        line_points = len(self.track.centerline_m)
        spacing_m = self.track.length_m / (line_points - 1)
        nearest = np.rint(self._state[rows, STATE_PROGRESS] / spacing_m).astype(np.int64)
        self._zone_index[rows] = self._zone_line.start_index + np.clip(nearest, 0, line_points - 1)
        self._furthest_zone_index[rows] = self._zone_index[rows]
        self._run_zone_update(rows)
        self._furthest_zone_index[rows] = self._zone_index[rows]

    def _update_zones_and_cutoffs(self, rows: np.ndarray) -> None:
        cfg = self.env_config
        zones = np.floor(self._state[rows, STATE_PROGRESS] / cfg.zone_spacing_m + 1e-9).astype(np.int64)
        zones[self._finished[rows]] = int(np.ceil(self.track.length_m / cfg.zone_spacing_m - 1e-9))
        new_zone = zones > self._zones_passed[rows]
        self._zones_passed[rows[new_zone]] = zones[new_zone]
        improved = self._run_zone_update(rows)
        self._last_progress_tick[improved] = self._tick[improved]
        ticks = self._tick[rows]
        finished = self._finished[rows]
        elapsed_ms = ticks * TICK_MS
        no_progress = no_progress_cutoff(
            elapsed_ms, self._last_progress_tick[rows] * TICK_MS, cfg.cutoff_rollout_if_no_vcp_passed_within_duration_ms
        )
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
            self._zone_index, self._zone_distance_m, self._zone_line.centers_m, self._zone_stride,
            cfg.n_zone_centers_in_inputs, self._zone_line.finish_distance_m, cfg.max_distance_to_finish_m,
            g.tangent_x, g.tangent_z, g.sin_slope, g.cos_slope, self._params,
        )  # fmt: skip
        if self.render_images:
            render_images(self._images, rows, self._state, self._rays, self._texture)

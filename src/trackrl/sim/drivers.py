"""Scripted drivers: baselines for tests, benchmarks and sanity checks (no learning).

Both read only the float observation (like an agent would), vectorised over cars.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from trackrl.config import EnvironmentConfig
from trackrl.sim.car import DEFAULT_CAR, CarParams
from trackrl.sim.env import VecRaceEnv
from trackrl.sim.observation import float_input_layout
from trackrl.sim.track import Track

ACCEL, ACCEL_LEFT, ACCEL_RIGHT, BRAKE, BRAKE_LEFT, BRAKE_RIGHT = 0, 1, 2, 6, 7, 8


def _zone_points(floats: np.ndarray, env_config: EnvironmentConfig) -> np.ndarray:
    """(B, Z, 3) zone centres in the car frame (x left, y up, z forward)."""
    zones = dict(float_input_layout(env_config))["zone_centers_car_frame_m"]
    return floats[:, zones].reshape(len(floats), -1, 3).astype(np.float64)


def follow_centerline_actions(
    floats: np.ndarray, env_config: EnvironmentConfig, look_ahead_zones: int = 2, dead_band_m: float = 1.0
) -> np.ndarray:
    """Full throttle, steering towards a zone centre a few zones ahead (pure pursuit, no brakes).

    floats: (B, F) observations. Returns (B,) actions: 0 accel, 1 accel+left, 2 accel+right.
    """
    left_m = _zone_points(floats, env_config)[:, look_ahead_zones, 0]
    actions = np.full(len(floats), ACCEL, dtype=np.int64)
    actions[left_m > dead_band_m] = ACCEL_LEFT
    actions[left_m < -dead_band_m] = ACCEL_RIGHT
    return actions


def braking_driver_actions(
    floats: np.ndarray,
    env_config: EnvironmentConfig,
    car: CarParams = DEFAULT_CAR,
    grip_margin: float = 0.8,
    look_ahead_s: float = 0.5,
) -> np.ndarray:
    """Pure pursuit on a speed-dependent look-ahead point, braking for the corners ahead.

    Corner speed at each zone ahead: sqrt(margin · μ g R) with R the radius of the circle through three
    consecutive zone centres; brake when the car could not slow down to it in the distance left.
    """
    points = _zone_points(floats, env_config)
    velocity = dict(float_input_layout(env_config))["velocity_car_frame_mps"]
    speed = np.linalg.norm(floats[:, velocity][:, [0, 2]], axis=1)
    n_cars, n_zones = points.shape[:2]
    planar = points[:, :, [0, 2]]
    # Steering: the point of the zone polyline max(12 m, v · look_ahead_s) along it from the car (pure pursuit; zone 0
    # is the current virtual checkpoint, next to the car), interpolated between zone centres.
    path_m = np.concatenate([np.zeros((n_cars, 1)), np.cumsum(np.linalg.norm(np.diff(planar, axis=1), axis=2), 1)], 1)
    look_ahead_m = np.minimum(np.maximum(12.0, speed * look_ahead_s), path_m[:, -1])
    after = np.clip(np.argmax(path_m >= look_ahead_m[:, None], axis=1), 1, n_zones - 1)
    rows = np.arange(n_cars)
    before_m, after_m = path_m[rows, after - 1], path_m[rows, after]
    fraction = np.clip((look_ahead_m - before_m) / np.maximum(after_m - before_m, 1e-9), 0.0, 1.0)[:, None]
    target_point = planar[rows, after - 1] + fraction * (planar[rows, after] - planar[rows, after - 1])
    heading_error = np.arctan2(target_point[:, 0], np.maximum(target_point[:, 1], 1e-3))
    # Corner speeds (Menger curvature of zone triples) and the braking needed to reach them.
    a, b, c = planar[:, :-2], planar[:, 1:-1], planar[:, 2:]
    cross = np.abs((b - a)[..., 0] * (c - a)[..., 1] - (b - a)[..., 1] * (c - a)[..., 0])
    sides = np.linalg.norm(b - a, axis=2) * np.linalg.norm(c - b, axis=2) * np.linalg.norm(a - c, axis=2)
    curvature = 2 * cross / np.maximum(sides, 1e-9)
    grip = grip_margin * car.grip_coefficient * car.gravity_mps2
    corner_speed = np.sqrt(grip / np.maximum(curvature, 1e-6))
    distance_to_corner = np.maximum(path_m[:, 1:-1] - np.linalg.norm(planar[:, :1], axis=2), 0.0)
    must_brake = speed[:, None] ** 2 > corner_speed**2 + 2 * grip_margin * car.brake_decel_mps2 * distance_to_corner
    brake = must_brake[:, : min(n_zones - 2, 12)].any(axis=1)
    steer = np.where(heading_error > 0.02, 1, np.where(heading_error < -0.02, 2, 0))
    accelerate_actions = np.array([ACCEL, ACCEL_LEFT, ACCEL_RIGHT])
    brake_actions = np.array([BRAKE, BRAKE_LEFT, BRAKE_RIGHT])
    return np.where(brake, brake_actions[steer], accelerate_actions[steer]).astype(np.int64)


def scripted_race_actions(
    track: Track,
    driver: Callable[[np.ndarray, EnvironmentConfig], np.ndarray],
    env_config: EnvironmentConfig | None = None,
    first_actions: Sequence[int] = (),
) -> list[int]:
    """The actions one car takes from the start until its race ends (finish or cutoff): ``first_actions``, then
    ``driver(floats, env_config)`` at every step."""
    env = VecRaceEnv(track, 1, env_config=env_config, render_images=False)
    _, floats = env.reset()
    actions: list[int] = []
    while True:
        scripted = len(actions) < len(first_actions)
        action = int(first_actions[len(actions)]) if scripted else int(driver(floats, env.env_config)[0])
        actions.append(action)
        result = env.step(np.array([action], dtype=np.int64))
        floats = result.floats
        if result.terminated[0] or result.truncated[0]:
            return actions

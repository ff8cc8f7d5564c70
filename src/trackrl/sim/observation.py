"""The float observation vector: layout, dimension, normalisation, and the kernel that fills it.

Layout (Linesight's semantics, `env_config` = EnvironmentConfig; defaults give 151 floats):

    [0]                mini-race time, in actions. The env always writes 0; the replay buffer overwrites it
                       with the resampled value (Linesight's mini-race trick). Normalised with the fixed
                       constants MINI_RACE_TIME_MEAN_ACTIONS / MINI_RACE_TIME_STD_ACTIONS.
    previous actions   n_prev_actions_in_inputs x (accelerate, brake, left, right) in {0, 1}, most recent first.
    velocity           car frame (x left, y up, z forward), m/s.
    angular velocity   car frame, rad/s (right-handed: positive y = turning left).
    sliding            1 if a tyre was at the friction-circle limit during the last action.
    wall contact       1 if the car touched a wall during the last action.
    ground contact     always 1 (the simulator has no jumps; kept for Linesight's layout).
    zone centres       n_zone_centers_in_inputs x (x, y, z) in the car frame, m: the zone centres every
                       zone_spacing_m along the centre line, starting at the last one passed; beyond the
                       finish they continue straight along the last segment.
    distance to finish metres along the centre line, capped at max_distance_to_finish_m.

The network normalises with (x − mean) / std from `float_inputs_mean` / `float_inputs_std`.
"""

from __future__ import annotations

import numba
import numpy as np

from trackrl.config import EnvironmentConfig

MINI_RACE_TIME_MEAN_ACTIONS = 70.0
MINI_RACE_TIME_STD_ACTIONS = 40.0
N_CAR_FLAGS = 3  # sliding, wall contact, ground contact


def float_input_layout(env_config: EnvironmentConfig) -> list[tuple[str, slice]]:
    sizes = [
        ("mini_race_time_actions", 1),
        ("previous_actions", 4 * env_config.n_prev_actions_in_inputs),
        ("velocity_car_frame_mps", 3),
        ("angular_velocity_car_frame_radps", 3),
        ("sliding", 1),
        ("wall_contact", 1),
        ("ground_contact", 1),
        ("zone_centers_car_frame_m", 3 * env_config.n_zone_centers_in_inputs),
        ("distance_to_finish_m", 1),
    ]
    layout, start = [], 0
    for name, size in sizes:
        layout.append((name, slice(start, start + size)))
        start += size
    return layout


def float_input_dim(env_config: EnvironmentConfig) -> int:
    return float_input_layout(env_config)[-1][1].stop


def float_inputs_mean(env_config: EnvironmentConfig) -> np.ndarray:
    parts = _normalisation(env_config)
    return np.concatenate([mean for mean, _ in parts]).astype(np.float32)


def float_inputs_std(env_config: EnvironmentConfig) -> np.ndarray:
    parts = _normalisation(env_config)
    return np.concatenate([std for _, std in parts]).astype(np.float32)


def _normalisation(env_config: EnvironmentConfig) -> list[tuple[np.ndarray, np.ndarray]]:
    """(mean, std) per layout block, measured on scripted drives of a01, technical and hills (rounded up).

    Zone i (0 = the last one passed, about half a spacing behind) lies about (i − 0.5) spacings ahead; its
    spread grows with that distance as the track turns (x, z) and climbs (y).
    """
    n_prev, n_zones = env_config.n_prev_actions_in_inputs, env_config.n_zone_centers_in_inputs
    ahead_m = (np.arange(n_zones) - 0.5) * env_config.zone_spacing_m
    distance_m = np.maximum(np.abs(ahead_m), env_config.zone_spacing_m)
    zone_mean = np.stack([np.zeros(n_zones), np.zeros(n_zones), ahead_m], axis=1).ravel()
    zone_std = np.stack([np.maximum(2.0, 0.45 * distance_m), 1.0 + 0.03 * distance_m, 0.35 * distance_m], axis=1)
    half_distance_m = env_config.max_distance_to_finish_m / 2
    return [
        (np.array([MINI_RACE_TIME_MEAN_ACTIONS]), np.array([MINI_RACE_TIME_STD_ACTIONS])),
        (np.full(4 * n_prev, 0.5), np.full(4 * n_prev, 0.5)),
        (np.array([0.0, 0.0, 30.0]), np.array([1.0, 3.0, 15.0])),
        (np.zeros(3), np.array([1.0, 0.5, 1.0])),
        (np.full(N_CAR_FLAGS, 0.5), np.full(N_CAR_FLAGS, 0.5)),
        (zone_mean, zone_std.ravel()),
        (np.array([half_distance_m]), np.array([half_distance_m])),
    ]


@numba.njit(cache=True)
def write_float_inputs(
    out: np.ndarray,
    rows: np.ndarray,
    state: np.ndarray,
    segment: np.ndarray,
    flags: np.ndarray,
    previous_actions: np.ndarray,
    action_keys: np.ndarray,
    zone_centers_padded: np.ndarray,
    zone_spacing_m: float,
    n_zones_in_inputs: int,
    tangent_x: np.ndarray,
    tangent_z: np.ndarray,
    sin_slope: np.ndarray,
    cos_slope: np.ndarray,
    length_m: float,
    max_distance_to_finish_m: float,
) -> None:
    """Fill out[b] for each b in rows (layout above). previous_actions: (B, n_prev), most recent first, −1 = none."""
    n_prev = previous_actions.shape[1]
    n_zone_points = zone_centers_padded.shape[0]
    for b in rows:
        x, z, heading, vx, vz, yaw_rate, progress, height = (
            state[b, 0],
            state[b, 1],
            state[b, 2],
            state[b, 3],
            state[b, 4],
            state[b, 5],
            state[b, 6],
            state[b, 7],
        )
        fx, fz = np.cos(heading), np.sin(heading)
        lx, lz = fz, -fx  # left = up × forward
        j = segment[b]
        k = 0
        out[b, k] = 0.0  # mini-race time: written by the replay buffer
        k += 1
        for i in range(n_prev):
            action = previous_actions[b, i]
            for key in range(4):
                out[b, k] = 1.0 if action >= 0 and action_keys[action, key] else 0.0
                k += 1
        along_track = vx * tangent_x[j] + vz * tangent_z[j]
        out[b, k] = vx * lx + vz * lz
        out[b, k + 1] = along_track * sin_slope[j] / cos_slope[j]
        out[b, k + 2] = vx * fx + vz * fz
        out[b, k + 3] = 0.0
        out[b, k + 4] = -yaw_rate  # ψ increases turning right; about +y (up) that is a negative rotation
        out[b, k + 5] = 0.0
        out[b, k + 6] = 1.0 if flags[b, 0] else 0.0
        out[b, k + 7] = 1.0 if flags[b, 1] else 0.0
        out[b, k + 8] = 1.0
        k += 9
        first_zone = min(int(progress / zone_spacing_m), n_zone_points - n_zones_in_inputs)
        for i in range(n_zones_in_inputs):
            dx = zone_centers_padded[first_zone + i, 0] - x
            dy = zone_centers_padded[first_zone + i, 1] - height
            dz = zone_centers_padded[first_zone + i, 2] - z
            out[b, k] = dx * lx + dz * lz
            out[b, k + 1] = dy
            out[b, k + 2] = dx * fx + dz * fz
            k += 3
        out[b, k] = min(max(length_m - progress, 0.0), max_distance_to_finish_m)


def padded_zone_centers(zone_centers_m: np.ndarray, last_direction: np.ndarray, spacing_m: float, n: int) -> np.ndarray:
    """Zone centres followed by n more, continuing straight past the finish (so every car sees n ahead)."""
    extra = zone_centers_m[-1] + np.arange(1, n + 1)[:, None] * spacing_m * last_direction[None, :]
    return np.ascontiguousarray(np.concatenate([zone_centers_m, extra]), dtype=np.float64)

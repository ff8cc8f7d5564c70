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
`float_input_entries` names every entry with its unit and physical bounds (the Gymnasium Box, docs/observation.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from trackrl.config import EnvironmentConfig
from trackrl.sim.car import DEFAULT_CAR, TICK_S, CarParams, drive_envelope_mps2
from trackrl.sim.track import MAX_SLOPE

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


@dataclass(frozen=True)
class FloatEntry:
    """One float of the observation: its index, name, unit, bounds (every value the simulator can write) and meaning."""

    index: int
    name: str
    unit: str
    low: float
    high: float
    description: str


PREVIOUS_ACTION_KEYS = ("accelerate", "brake", "left", "right")
CAR_FRAME_AXES = ("x_left", "y_up", "z_forward")


def terminal_speed_mps(car: CarParams = DEFAULT_CAR) -> float:
    """Highest speed the car can reach: where drag + rolling resistance = engine + the steepest gravity pull.

    Gravity along a slope θ adds g · sin θ · cos θ ≤ g / 2; the drive (car.drive_envelope_mps2, the most any gear
    gives; zero past 5th gear's rev limit) falls with v, so the net forward acceleration falls strictly with v and
    the root is found by bisection.
    """
    params = car.as_array()

    def net_accel_mps2(v: float) -> float:
        drive = drive_envelope_mps2(v, params)
        return drive + car.gravity_mps2 / 2 - car.drag_per_m * v * v - car.rolling_resistance_mps2

    low, high = 0.0, 1.0
    while net_accel_mps2(high) > 0:
        high *= 2
    for _ in range(60):
        middle = (low + high) / 2
        low, high = (middle, high) if net_accel_mps2(middle) > 0 else (low, middle)
    return high


def float_input_entries(
    env_config: EnvironmentConfig, road_width_m: float | None = None, car: CarParams = DEFAULT_CAR
) -> list[FloatEntry]:
    """Every float of the layout with its unit and bounds (road_width_m: the track's, default_road_width_m if None).

    Bounds are physical, not statistical: speeds stay below `terminal_speed_mps` (+1 % for the 10 ms tick), the angular
    velocity below κ0 · v_ref / 2 (the maximum of v · κ_max(v)), and zone centre i lies at most max(i, 1) zone spacings
    along the centre line (a chord is never longer than its arc) plus half the road width (the car's offset) plus
    one tick of travel (a finished car may have crossed the finish plane) from the car.
    """
    road_width_m = env_config.default_road_width_m if road_width_m is None else road_width_m
    v_max = 1.01 * terminal_speed_mps(car)
    yaw_rate_max = car.max_steer_curvature_per_m * car.steer_reference_speed_mps / 2
    race_actions = env_config.cutoff_rollout_if_race_not_finished_within_duration_ms / (
        env_config.tm_engine_step_per_action * TICK_S * 1000
    )
    # Constant entries keep their natural range (Gymnasium warns about a Box with low == high).
    rows: list[tuple[str, str, float, float, str]] = [
        ("mini_race_time_actions", "actions", 0.0, race_actions,
         "mini-race time; the env writes 0 (the replay buffer sets it), at most the race cutoff")
    ]  # fmt: skip
    for i in range(env_config.n_prev_actions_in_inputs):
        for key in PREVIOUS_ACTION_KEYS:
            rows.append((f"previous_action_{i}_{key}", "0/1", 0.0, 1.0, f"key {key} held {i + 1} action(s) ago"))
    vertical_max = v_max * MAX_SLOPE
    for axis, bound in zip(CAR_FRAME_AXES, (v_max, vertical_max, v_max), strict=True):
        rows.append((f"velocity_{axis}", "m/s", -bound, bound, "car velocity in the car frame"))
    for axis in CAR_FRAME_AXES:
        meaning = "yaw rate, positive turning left" if axis == "y_up" else "always 0 (the car only yaws)"
        rows.append((f"angular_velocity_{axis}", "rad/s", -yaw_rate_max, yaw_rate_max, meaning))
    rows.append(("sliding", "0/1", 0.0, 1.0, "a tyre was at the friction-circle limit during the last action"))
    rows.append(("wall_contact", "0/1", 0.0, 1.0, "the car touched a wall during the last action"))
    rows.append(("ground_contact", "0/1", 0.0, 1.0, "always 1 (no jumps; kept for Linesight's layout)"))
    spacing_m = env_config.zone_spacing_m
    for i in range(env_config.n_zone_centers_in_inputs):
        bound = max(i, 1) * spacing_m + road_width_m / 2 + v_max * TICK_S
        for axis in CAR_FRAME_AXES:
            rows.append((f"zone_{i}_{axis}", "m", -bound, bound, f"zone centre {i} (0 = the last passed), car frame"))
    rows.append(("distance_to_finish_m", "m", 0.0, env_config.max_distance_to_finish_m,
                 "along the centre line, capped at max_distance_to_finish_m"))  # fmt: skip
    return [FloatEntry(index, *row) for index, row in enumerate(rows)]


def float_input_bounds(
    env_config: EnvironmentConfig, road_width_m: float | None = None, car: CarParams = DEFAULT_CAR
) -> tuple[np.ndarray, np.ndarray]:
    """(low, high) float32 arrays of `float_input_entries`, for a Gymnasium Box."""
    entries = float_input_entries(env_config, road_width_m, car)
    low = np.array([entry.low for entry in entries], dtype=np.float32)
    high = np.array([entry.high for entry in entries], dtype=np.float32)
    return low, high


def float_input_table_markdown(env_config: EnvironmentConfig | None = None) -> str:
    """The table of docs/observation.md: one row per float entry (index, name, unit, low, high, meaning)."""
    env_config = env_config if env_config is not None else EnvironmentConfig()
    lines = ["| index | name | unit | low | high | meaning |", "| ---: | --- | --- | ---: | ---: | --- |"]
    for entry in float_input_entries(env_config):
        lines.append(f"| {entry.index} | `{entry.name}` | {entry.unit} | {entry.low:.6g} | {entry.high:.6g} "
                     f"| {entry.description} |")  # fmt: skip
    return "\n".join(lines) + "\n"


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

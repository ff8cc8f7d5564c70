"""The float observation vector: Linesight's 184-float layout, its normalisation, and the code that fills it.

One layout for both backends (GAME_BRIDGE.md §7.2), declared once in `float_input_layout`; with the default
`EnvironmentConfig` it has 184 floats (= 44 + 4 · n_prev_actions_in_inputs + 3 · n_zone_centers_in_inputs):

    mini_race_time_actions          1   the env writes 0; the replay buffer overwrites it with the resampled mini-race
                                        clock (Linesight's trick)
    previous_actions                4n  the last n actions, OLDEST first, each (accelerate, brake, left, right) in 0/1;
                                        missing history counts as action 0 (forward), as Linesight
    wheel_is_sliding                4   per wheel
    wheel_has_ground_contact        4
    wheel_damper_absorb             4   m
    gearbox_state                   1
    gear                            1
    engine_rpm                      1
    counter_gearbox_state           1   previous value + 1 while gearbox_state != 0, else 0
    wheel_contact_material_groups   16  wheel-major one-hot of the physics group (0 asphalt, 1 grass, 2 dirt, 3 turbo;
                                        group 4, anything else, is all zeros)
    angular_velocity_car_frame_radps 3  M · angular velocity
    velocity_car_frame_mps          3   M · linear velocity
    up_vector_car_frame             3   M · (0, 1, 0)
    zone_centers_car_frame_m        3z  M · (zone_centers[i + s · k] − position), k = 0..z−1, i = the current zone
                                        (`sim/zone_progress.py`), s = zone_spacing_m / 0.5 m (20: every 10 m)
    distance_to_finish_m            1   min(max_distance_to_finish_m, ZoneLine.finish_distance_m − distance along line)
    is_freewheeling                 1

M = Rᵀ maps world vectors into the car frame (x left, y up, z forward). The network normalises with (x − mean) / std
from `float_inputs_mean` / `float_inputs_std`: Linesight's constants (config_files/state_normalization.py), or with
environment.float_normalization "simulator" (the default) the simulator-measured ones for the angular velocity,
velocity and zone blocks. The network stores the constants, so a checkpoint keeps its own on either backend.

What the simulator does not model is a documented constant (`SIM_*` below): four wheels share the car's sliding flag
(SIM_SLIDING_RULE: a tyre at the friction-circle limit or the car scraping along a wall during the last action; the
wall cue is what the simulator's agents learn from), always touch the ground, do not absorb (damper 0), roll on
asphalt (group 0); no gearbox state, no freewheeling, the body stays level (up vector (0, 1, 0), angular velocity
only about y). Gear and rpm come from the car's automatic gearbox (`sim_gear_and_rpm`).

Public API (the game backend calls these):
    float_input_layout(env_config), float_input_dim(env_config), float_inputs_mean/std(env_config)
    write_float_inputs(...)                        the simulator's batched numba kernel (VecRaceEnv._observe)
    game_float_inputs(state, zone_index, distance_along_m, line, previous_actions, env_config, previous_floats=None)
        one car of the game: `state` has the fields of trackrl.game.blob.SimState; the zone state comes from
        sim.zone_progress.ZoneProgress; previous_actions are the race's actions so far, oldest first.
    physics_group(contact_material_id) -> 0..4
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numba
import numpy as np

from trackrl.config import EnvironmentConfig
from trackrl.sim.actions import ACTIONS
from trackrl.sim.car import DEFAULT_CAR, S_GEAR, TICK_S, CarParams, drive_envelope_mps2, engine_rpm
from trackrl.sim.track import MAX_SLOPE, POINT_SPACING_M
from trackrl.sim.zone_progress import ZoneLine

N_WHEELS = 4
N_MATERIAL_GROUPS = 4  # Linesight's n_contact_material_physics_behavior_types; group 4 ("anything else") is all zeros
FORWARD_ACTION = 0  # missing previous actions count as this one (Linesight's action_forward_idx)

# Constants for what the simulator does not model (also what tmi-serve writes into its state blobs).
SIM_DAMPER_ABSORB_M = 0.0
SIM_GROUND_CONTACT = 1.0
SIM_MATERIAL_GROUP = 0  # asphalt
SIM_GEARBOX_STATE = 0.0
SIM_IS_FREEWHEELING = 0.0
# The wheels' is_sliding in the simulator: the friction-circle flag OR wall contact. Without the wall cue (the old
# 151-float layout had its own wall flag) the easy-track learning test did not learn within its 400k-frame budget
# (0 finishes at 220k frames, one run; with it: learned in 3 min), so the wall contact rides on the sliding flags.
SIM_SLIDING_RULE = "sliding or wall contact"

# Linesight's contact-material ids 0..30 -> physics group (contact_materials.py); unknown ids count as group 4.
PHYSICS_GROUP_OF_MATERIAL = np.array(
    [0, 0, 1, 4, 4, 2, 2, 3, 2, 4, 4, 4, 4, 4, 4, 4, 0, 2, 0, 0, 1, 4, 4, 4, 4, 4, 3, 4, 4, 4, 4], dtype=np.int64
)
OTHER_MATERIAL_GROUP = 4


def physics_group(contact_material_id: int) -> int:
    """Linesight's physics group of a wheel's contact material (`material & 0xFFFF`): 0 asphalt, 1 grass, 2 dirt,
    3 turbo, 4 anything else (also for ids Linesight's table does not list)."""
    material = int(contact_material_id) & 0xFFFF
    if material >= len(PHYSICS_GROUP_OF_MATERIAL):
        return OTHER_MATERIAL_GROUP
    return int(PHYSICS_GROUP_OF_MATERIAL[material])


@numba.njit(cache=True)
def sim_gear_and_rpm(gear: float, speed_mps: float, params: np.ndarray) -> tuple[float, float]:
    """The simulator's gear (its automatic gearbox, car.py's S_GEAR column) and engine rpm for the float vector."""
    return gear, engine_rpm(speed_mps, int(gear), params)


def zone_stride(env_config: EnvironmentConfig) -> int:
    """Zone-line points between two zone centres of the input (Linesight's one_every_n_zone_centers_in_inputs = 20)."""
    return max(1, round(env_config.zone_spacing_m / POINT_SPACING_M))


def float_input_layout(env_config: EnvironmentConfig) -> list[tuple[str, slice]]:
    sizes = [
        ("mini_race_time_actions", 1),
        ("previous_actions", 4 * env_config.n_prev_actions_in_inputs),
        ("wheel_is_sliding", N_WHEELS),
        ("wheel_has_ground_contact", N_WHEELS),
        ("wheel_damper_absorb", N_WHEELS),
        ("gearbox_state", 1),
        ("gear", 1),
        ("engine_rpm", 1),
        ("counter_gearbox_state", 1),
        ("wheel_contact_material_groups", N_WHEELS * N_MATERIAL_GROUPS),
        ("angular_velocity_car_frame_radps", 3),
        ("velocity_car_frame_mps", 3),
        ("up_vector_car_frame", 3),
        ("zone_centers_car_frame_m", 3 * env_config.n_zone_centers_in_inputs),
        ("distance_to_finish_m", 1),
        ("is_freewheeling", 1),
    ]
    layout, start = [], 0
    for name, size in sizes:
        layout.append((name, slice(start, start + size)))
        start += size
    return layout


def float_input_dim(env_config: EnvironmentConfig) -> int:
    return float_input_layout(env_config)[-1][1].stop


def counter_gearbox_index(env_config: EnvironmentConfig) -> int:
    return dict(float_input_layout(env_config))["counter_gearbox_state"].start


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
MAX_DAMPER_ABSORB_M = 0.2  # the game's range: 0.005 to 0.15 m (Linesight's comment); the simulator writes 0
MAX_GEARBOX_STATE = 2.0  # the game: 0/1, 2 at start-up
MAX_GEAR = 5.0
MAX_ENGINE_RPM = 11_000.0  # the game: 0 to about 10,000
SMOOTHING_SHIFT_M = 1.0  # the 11-point smoothing and the nearest-point rule move zone 0 off the car by less


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
    velocity below κ0 · v_ref / 2 (the maximum of v · κ_max(v)); zone centre k lies at most k zone spacings (+1 %: the
    line's points are up to 1 % further apart than 0.5 m) along the line from the current zone, which is within half
    the road width plus SMOOTHING_SHIFT_M plus one tick of travel (a finished car may have crossed the finish plane).
    Entries the simulator holds constant keep the game's range.
    """
    road_width_m = env_config.default_road_width_m if road_width_m is None else road_width_m
    v_max = 1.01 * terminal_speed_mps(car)
    yaw_rate_max = car.max_steer_curvature_per_m * car.steer_reference_speed_mps / 2
    race_actions = env_config.cutoff_rollout_if_race_not_finished_within_duration_ms / (
        env_config.tm_engine_step_per_action * TICK_S * 1000
    )
    rows: list[tuple[str, str, float, float, str]] = [
        ("mini_race_time_actions", "actions", 0.0, race_actions,
         "mini-race time; the env writes 0 (the replay buffer sets it), at most the race cutoff")
    ]  # fmt: skip
    n_prev = env_config.n_prev_actions_in_inputs
    for i in range(n_prev):
        for key in PREVIOUS_ACTION_KEYS:
            rows.append((f"previous_action_{i}_{key}", "0/1", 0.0, 1.0,
                         f"key {key} held {n_prev - i} action(s) ago (oldest first; none yet = forward)"))  # fmt: skip
    for wheel in range(N_WHEELS):
        meaning = "simulator: the car slid (friction limit) or scraped a wall in the last action"
        rows.append((f"wheel_{wheel}_is_sliding", "0/1", 0.0, 1.0, meaning))
    for wheel in range(N_WHEELS):
        rows.append((f"wheel_{wheel}_has_ground_contact", "0/1", 0.0, 1.0, "simulator: always 1 (no jumps)"))
    for wheel in range(N_WHEELS):
        rows.append((f"wheel_{wheel}_damper_absorb", "m", 0.0, MAX_DAMPER_ABSORB_M, "simulator: always 0 (no dampers)"))
    rows.append(("gearbox_state", "-", 0.0, MAX_GEARBOX_STATE, "simulator: always 0 (no gearbox)"))
    rows.append(("gear", "-", 0.0, MAX_GEAR, "simulator: its automatic gearbox (sim/car.py), 1..5"))
    rows.append(("engine_rpm", "rpm", 0.0, MAX_ENGINE_RPM, "simulator: max_rpm x speed / the gear's top speed"))
    rows.append(("counter_gearbox_state", "actions", 0.0, race_actions, "actions since gearbox_state became non-zero"))
    for wheel in range(N_WHEELS):
        for group, name in enumerate(("asphalt", "grass", "dirt", "turbo")):
            rows.append((f"wheel_{wheel}_material_{name}", "0/1", 0.0, 1.0,
                         f"contact material in physics group {group}; simulator: asphalt"))  # fmt: skip
    for axis in CAR_FRAME_AXES:
        meaning = "yaw rate, positive turning left" if axis == "y_up" else "simulator: always 0 (the car only yaws)"
        rows.append((f"angular_velocity_{axis}", "rad/s", -yaw_rate_max, yaw_rate_max, meaning))
    vertical_max = v_max * MAX_SLOPE
    for axis, bound in zip(CAR_FRAME_AXES, (v_max, vertical_max, v_max), strict=True):
        rows.append((f"velocity_{axis}", "m/s", -bound, bound, "car velocity in the car frame"))
    for axis in CAR_FRAME_AXES:
        rows.append((f"up_vector_{axis}", "-", -1.0, 1.0, "world up in the car frame; simulator: (0, 1, 0)"))
    spacing_m = env_config.zone_spacing_m
    near_m = road_width_m / 2 + SMOOTHING_SHIFT_M + v_max * TICK_S
    for k in range(env_config.n_zone_centers_in_inputs):
        bound = 1.01 * k * spacing_m + near_m
        for axis in CAR_FRAME_AXES:
            rows.append((f"zone_{k}_{axis}", "m", -bound, bound, f"zone centre {k} (0 = the current zone), car frame"))
    rows.append(("distance_to_finish_m", "m", 0.0, env_config.max_distance_to_finish_m,
                 "along the zone line, capped at max_distance_to_finish_m"))  # fmt: skip
    rows.append(("is_freewheeling", "0/1", 0.0, 1.0, "simulator: always 0"))
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
    """The table of docs/observation.md: one row per float entry (index, name, unit, low, high, mean, std, meaning)."""
    env_config = env_config if env_config is not None else EnvironmentConfig()
    mean, std = float_inputs_mean(env_config), float_inputs_std(env_config)
    lines = ["| index | name | unit | low | high | mean | std | meaning |",
             "| ---: | --- | --- | ---: | ---: | ---: | ---: | --- |"]  # fmt: skip
    for entry in float_input_entries(env_config):
        lines.append(f"| {entry.index} | `{entry.name}` | {entry.unit} | {entry.low:.6g} | {entry.high:.6g} "
                     f"| {mean[entry.index]:.6g} | {std[entry.index]:.6g} | {entry.description} |")  # fmt: skip
    return "\n".join(lines) + "\n"


# ---- normalisation: Linesight's config_files/state_normalization.py ------------------------------------------------
MINI_RACE_TIME_MEAN_ACTIONS = 70.0  # temporal_mini_race_duration_actions / 2
MINI_RACE_TIME_STD_ACTIONS = 70.0
PREVIOUS_ACTION_MEAN = (0.8, 0.2, 0.3, 0.3)  # accelerate, brake, left, right
# The 40 zone centres every 10 m (row k = 10 k m ahead): mean of y and z (x: 0), std of x and y (equal), std of z.
LINESIGHT_ZONE_MEAN_Y = (
    -2.1, -2.2, -2.2, -2.2, -2.2, -2.1, -2.0, -1.8, -1.5, -1.3, -1.0, -0.7, -0.4, 0.0, 0.3, 0.7, 1.1, 1.6, 2.1, 2.6,
    3.1, 3.7, 4.2, 4.8, 5.3, 5.8, 6.4, 6.9, 7.4, 7.8, 8.3, 8.7, 9.1, 9.5, 9.9, 10.2, 10.6, 10.9, 11.2, 11.5,
)  # fmt: skip
LINESIGHT_ZONE_MEAN_Z = (
    -0.2, 9.5, 19.1, 28.5, 37.7, 46.6, 55.2, 63.5, 71.4, 78.9, 86.2, 93.1, 99.8, 106, 112, 118, 124, 129, 134, 139,
    143, 148, 152, 156, 160, 164, 167, 171, 174, 177, 180, 182, 185, 187, 189, 191, 193, 194, 196, 197,
)  # fmt: skip
LINESIGHT_ZONE_STD_XY = (
    7.7, 7.8, 8.3, 9.5, 11.5, 14.3, 17.8, 21.9, 26.3, 31.1, 36.1, 41.3, 46.6, 52.0, 57.4, 63.0, 68.5, 74.2, 79.9, 85.6,
    91.4, 97.2, 103, 109, 115, 121, 127, 132, 138, 144, 149, 155, 160, 166, 171, 176, 182, 187, 192, 198,
)  # fmt: skip
LINESIGHT_ZONE_STD_Z = (
    2.9, 3.3, 4.1, 5.1, 6.4, 7.9, 9.7, 11.7, 14.2, 17.0, 20.1, 23.5, 27.2, 31.1, 35.2, 39.4, 43.7, 48.1, 52.5, 57.0,
    61.4, 65.8, 70.2, 74.6, 79.1, 83.5, 88.0, 92.6, 97.2, 102, 107, 112, 117, 121, 126, 131, 136, 141, 146, 151,
)  # fmt: skip
LINESIGHT_ZONE_SPACING_M = 10.0


def _zone_table(values: tuple[float, ...], rows: np.ndarray) -> np.ndarray:
    """Linesight's zone row at fractional positions `rows`, linear between rows, extended along the last two rows."""
    table = np.asarray(values, dtype=np.float64)
    inside = np.interp(rows, np.arange(len(table)), table)
    beyond = table[-1] + (rows - (len(table) - 1)) * (table[-1] - table[-2])
    return np.where(rows > len(table) - 1, beyond, inside)


def _simulator_car_state_normalisation(env_config: EnvironmentConfig) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """float_normalization "simulator": (mean, std) of the angular velocity, velocity and zone blocks measured on
    scripted drives of a01, technical and hills (rounded up); the entries the simulator holds constant centred on
    their constant; the mini-race clock with std 40. Linesight's constants come from game maps (55 m/s mean speed, a
    7.7 m lateral spread at zone 0). The easy-track learning test (400k-frame budget, one run each, busy machine)
    learned at ~283k frames with these and at ~376k with Linesight's."""
    n_zones = env_config.n_zone_centers_in_inputs
    ahead_m = np.arange(n_zones) * env_config.zone_spacing_m  # zone k lies about k spacings ahead
    distance_m = np.maximum(ahead_m, env_config.zone_spacing_m)
    zone_mean = np.stack([np.zeros(n_zones), np.zeros(n_zones), ahead_m], axis=1)
    zone_std = np.stack([np.maximum(2.0, 0.45 * distance_m), 1.0 + 0.03 * distance_m, 0.35 * distance_m], axis=1)
    lines_std = _linesight_normalisation(env_config)
    return {
        # The mini-race clock over its 140-action range as before (Linesight: std 70).
        MINI_RACE_BLOCK: (np.array([MINI_RACE_TIME_MEAN_ACTIONS]), np.array([40.0])),
        # Entries the simulator holds constant are centred on their constant (they read 0), with Linesight's std.
        CONTACT_BLOCK: (np.full(N_WHEELS, SIM_GROUND_CONTACT), lines_std[CONTACT_BLOCK][1]),
        DAMPER_BLOCK: (np.full(N_WHEELS, SIM_DAMPER_ABSORB_M), lines_std[DAMPER_BLOCK][1]),
        # Gear and rpm vary (the simulator's gearbox) and keep Linesight's constants; the gearbox state is constant.
        GEAR_BLOCK: (np.array([SIM_GEARBOX_STATE, *lines_std[GEAR_BLOCK][0][1:3], 0.0]), lines_std[GEAR_BLOCK][1]),
        MATERIAL_BLOCK: (np.tile(np.eye(N_MATERIAL_GROUPS)[SIM_MATERIAL_GROUP], N_WHEELS),
                         lines_std[MATERIAL_BLOCK][1]),
        UP_BLOCK: (np.array([0.0, 1.0, 0.0]), lines_std[UP_BLOCK][1]),
        ANGULAR_BLOCK: (np.zeros(3), np.array([1.0, 0.5, 1.0])),
        VELOCITY_BLOCK: (np.array([0.0, 0.0, 30.0]), np.array([1.0, 3.0, 15.0])),
        ZONE_BLOCK: (zone_mean.ravel(), zone_std.ravel()),
    }


# Indices into _normalisation's list of blocks.
MINI_RACE_BLOCK, CONTACT_BLOCK, DAMPER_BLOCK, GEAR_BLOCK, MATERIAL_BLOCK = 0, 3, 4, 5, 6
ANGULAR_BLOCK, VELOCITY_BLOCK, UP_BLOCK, ZONE_BLOCK = 7, 8, 9, 10


def _normalisation(env_config: EnvironmentConfig) -> list[tuple[np.ndarray, np.ndarray]]:
    """(mean, std) per layout block: Linesight's; zone centre k uses Linesight's row for the same distance ahead
    (k · spacing). With float_normalization "simulator" three blocks are the simulator's instead."""
    blocks = _linesight_normalisation(env_config)
    if env_config.float_normalization == "simulator":
        for index, values in _simulator_car_state_normalisation(env_config).items():
            blocks[index] = values
    return blocks


def _linesight_normalisation(env_config: EnvironmentConfig) -> list[tuple[np.ndarray, np.ndarray]]:
    n_prev, n_zones = env_config.n_prev_actions_in_inputs, env_config.n_zone_centers_in_inputs
    rows = np.arange(n_zones) * env_config.zone_spacing_m / LINESIGHT_ZONE_SPACING_M
    std_xy = _zone_table(LINESIGHT_ZONE_STD_XY, rows)
    zone_mean = np.stack([np.zeros(n_zones), _zone_table(LINESIGHT_ZONE_MEAN_Y, rows),
                          _zone_table(LINESIGHT_ZONE_MEAN_Z, rows)], axis=1)  # fmt: skip
    zone_std = np.stack([std_xy, std_xy, _zone_table(LINESIGHT_ZONE_STD_Z, rows)], axis=1)
    max_distance_m = env_config.max_distance_to_finish_m
    half = np.full(N_WHEELS * N_MATERIAL_GROUPS, 0.5)
    return [
        (np.array([MINI_RACE_TIME_MEAN_ACTIONS]), np.array([MINI_RACE_TIME_STD_ACTIONS])),
        (np.tile(PREVIOUS_ACTION_MEAN, n_prev), np.full(4 * n_prev, 0.5)),
        (np.full(N_WHEELS, 0.1), np.full(N_WHEELS, 0.5)),  # sliding
        (np.full(N_WHEELS, 0.9), np.full(N_WHEELS, 0.5)),  # ground contact
        (np.full(N_WHEELS, 0.02), np.full(N_WHEELS, 0.06)),  # damper absorb
        (np.array([0.3, 2.5, 7000.0, 0.1]), np.array([1.0, 2.0, 3000.0, 10.0])),  # gearbox, gear, rpm, counter
        (half, half),  # contact-material groups
        (np.zeros(3), np.array([0.5, 1.0, 0.5])),  # angular velocity
        (np.array([0.0, 0.0, 55.0]), np.array([5.0, 5.0, 20.0])),  # velocity
        (np.array([0.0, 1.0, 0.0]), np.full(3, 0.5)),  # up vector
        (zone_mean.ravel(), zone_std.ravel()),
        (np.array([max_distance_m]), np.array([max_distance_m / 2])),
        (np.array([0.0]), np.array([1.0])),  # freewheeling
    ]


def float_inputs_mean(env_config: EnvironmentConfig) -> np.ndarray:
    return np.concatenate([mean for mean, _ in _normalisation(env_config)]).astype(np.float32)


def float_inputs_std(env_config: EnvironmentConfig) -> np.ndarray:
    return np.concatenate([std for _, std in _normalisation(env_config)]).astype(np.float32)


# ---- filling the vector ----------------------------------------------------------------------------------------------
@numba.njit(cache=True)
def _write_float_row(
    out: np.ndarray,
    b: int,
    previous_actions: np.ndarray,  # (n_prev,) most recent first, −1 = none
    action_keys: np.ndarray,
    sliding: np.ndarray,
    ground_contact: np.ndarray,
    damper_absorb_m: np.ndarray,
    gearbox_state: float,
    gear: float,
    rpm: float,
    counter_gearbox_state: float,
    material_groups: np.ndarray,  # (4,) int
    to_car: np.ndarray,  # (3, 3) M: world -> car frame
    angular_velocity: np.ndarray,  # (3,) world
    velocity: np.ndarray,  # (3,) world
    position: np.ndarray,  # (3,) world
    zone_index: int,
    zone_centers: np.ndarray,
    stride: int,
    n_zones: int,
    distance_to_finish_m: float,
    max_distance_to_finish_m: float,
    is_freewheeling: float,
) -> None:
    """Row b of the layout (module docstring): the one place the order is written."""
    out[b, 0] = 0.0  # mini-race time: written by the replay buffer
    k = 1
    n_prev = previous_actions.shape[0]
    for i in range(n_prev):
        action = previous_actions[n_prev - 1 - i]  # oldest first
        if action < 0:
            action = FORWARD_ACTION
        for key in range(4):
            out[b, k] = 1.0 if action_keys[action, key] else 0.0
            k += 1
    for wheel in range(N_WHEELS):
        out[b, k + wheel] = sliding[wheel]
        out[b, k + N_WHEELS + wheel] = ground_contact[wheel]
        out[b, k + 2 * N_WHEELS + wheel] = damper_absorb_m[wheel]
    k += 3 * N_WHEELS
    out[b, k], out[b, k + 1], out[b, k + 2], out[b, k + 3] = gearbox_state, gear, rpm, counter_gearbox_state
    k += 4
    for wheel in range(N_WHEELS):
        for group in range(N_MATERIAL_GROUPS):
            out[b, k] = 1.0 if material_groups[wheel] == group else 0.0
            k += 1
    for axis in range(3):
        out[b, k + axis] = to_car[axis, 0] * angular_velocity[0] + to_car[axis, 1] * angular_velocity[1] + (
            to_car[axis, 2] * angular_velocity[2]
        )
        out[b, k + 3 + axis] = to_car[axis, 0] * velocity[0] + to_car[axis, 1] * velocity[1] + (
            to_car[axis, 2] * velocity[2]
        )
        out[b, k + 6 + axis] = to_car[axis, 1]  # M · (0, 1, 0)
    k += 9
    last = zone_centers.shape[0] - 1
    for zone in range(n_zones):
        j = min(zone_index + stride * zone, last)
        dx = zone_centers[j, 0] - position[0]
        dy = zone_centers[j, 1] - position[1]
        dz = zone_centers[j, 2] - position[2]
        for axis in range(3):
            out[b, k + axis] = to_car[axis, 0] * dx + to_car[axis, 1] * dy + to_car[axis, 2] * dz
        k += 3
    out[b, k] = min(max_distance_to_finish_m, distance_to_finish_m)
    out[b, k + 1] = is_freewheeling


@numba.njit(cache=True)
def write_float_inputs(
    out: np.ndarray,
    rows: np.ndarray,
    state: np.ndarray,
    segment: np.ndarray,
    flags: np.ndarray,
    previous_actions: np.ndarray,
    action_keys: np.ndarray,
    zone_index: np.ndarray,
    zone_distance_m: np.ndarray,
    zone_centers: np.ndarray,
    stride: int,
    n_zones: int,
    finish_distance_m: float,
    max_distance_to_finish_m: float,
    tangent_x: np.ndarray,
    tangent_z: np.ndarray,
    sin_slope: np.ndarray,
    cos_slope: np.ndarray,
    params: np.ndarray,
) -> None:
    """Fill out[b] for each b in rows from the simulator's car state (B, N_STATE): x, z, ψ, vx, vz, ψ̇, progress,
    height, gear, ...

    previous_actions: (B, n_prev), most recent first, −1 = none; zone_index / zone_distance_m: the cars' zone state
    (`sim.zone_progress.update_zone_indices`). The body is level: M's rows are the car's left, up and forward axes.
    """
    sliding = np.zeros(N_WHEELS)
    contact = np.full(N_WHEELS, SIM_GROUND_CONTACT)
    damper = np.full(N_WHEELS, SIM_DAMPER_ABSORB_M)
    groups = np.full(N_WHEELS, SIM_MATERIAL_GROUP, dtype=np.int64)
    to_car = np.zeros((3, 3))
    angular = np.zeros(3)
    velocity = np.zeros(3)
    position = np.zeros(3)
    for b in rows:
        heading, vx, vz, j = state[b, 2], state[b, 3], state[b, 4], segment[b]
        fx, fz = np.cos(heading), np.sin(heading)
        to_car[0, 0], to_car[0, 2] = fz, -fx  # left = up × forward
        to_car[1, 1] = 1.0
        to_car[2, 0], to_car[2, 2] = fx, fz
        angular[1] = -state[b, 5]  # ψ increases turning right; about +y (up) that is a negative rotation
        velocity[0], velocity[2] = vx, vz
        velocity[1] = (vx * tangent_x[j] + vz * tangent_z[j]) * sin_slope[j] / cos_slope[j]  # follows the slope
        position[0], position[1], position[2] = state[b, 0], state[b, 7], state[b, 1]
        sliding[:] = 1.0 if flags[b, 0] or flags[b, 1] else 0.0  # SIM_SLIDING_RULE
        gear, rpm = sim_gear_and_rpm(state[b, S_GEAR], np.hypot(vx, vz), params)
        _write_float_row(
            out, b, previous_actions[b], action_keys, sliding, contact, damper, SIM_GEARBOX_STATE, gear, rpm, 0.0,
            groups, to_car, angular, velocity, position, zone_index[b], zone_centers, stride, n_zones,
            finish_distance_m - zone_distance_m[b], max_distance_to_finish_m, SIM_IS_FREEWHEELING,
        )  # fmt: skip


class GameState(Protocol):
    """The fields of trackrl.game.blob.SimState that the float vector reads (sim/ cannot import game/)."""

    position_m: np.ndarray
    rotation: np.ndarray
    linear_velocity_mps: np.ndarray
    angular_velocity_radps: np.ndarray
    gear: int
    actual_rpm: float
    gearbox_state: int
    is_freewheeling: bool

    @property
    def wheels(self) -> object: ...


def game_gear_and_rpm(state: GameState) -> tuple[float, float]:
    """The game's engine gear and rpm as stored in the blob (scene_mobil.engine)."""
    return float(state.gear), float(state.actual_rpm)


def game_float_inputs(
    state: GameState,
    zone_index: int,
    distance_along_m: float,
    line: ZoneLine,
    previous_actions: Sequence[int],
    env_config: EnvironmentConfig,
    previous_floats: np.ndarray | None = None,
) -> np.ndarray:
    """The float vector (F,) float32 of one game state.

    zone_index / distance_along_m: ZoneProgress.zone_index / .distance_m after `update(state.position_m, race time)`;
    previous_actions: the actions of this race so far, oldest first; previous_floats: this race's previous vector
    (for counter_gearbox_state), None at the race's first step.
    """
    n_prev = env_config.n_prev_actions_in_inputs
    recent = np.full(n_prev, -1, dtype=np.int64)
    taken = list(previous_actions)[::-1][:n_prev]
    recent[: len(taken)] = taken
    wheels = state.wheels
    counter = 0.0
    if state.gearbox_state != 0 and previous_floats is not None:
        counter = float(previous_floats[counter_gearbox_index(env_config)]) + 1.0
    gear, rpm = game_gear_and_rpm(state)
    out = np.zeros((1, float_input_dim(env_config)), dtype=np.float32)
    _write_float_row(
        out, 0, recent, np.ascontiguousarray(ACTIONS),
        np.asarray(wheels.is_sliding, dtype=np.float64), np.asarray(wheels.has_ground_contact, dtype=np.float64),
        np.asarray(wheels.damper_absorb, dtype=np.float64), float(state.gearbox_state), gear, rpm, counter,
        np.array([physics_group(m) for m in wheels.contact_material_id], dtype=np.int64),
        np.ascontiguousarray(np.asarray(state.rotation, dtype=np.float64).T),
        np.asarray(state.angular_velocity_radps, dtype=np.float64), np.asarray(state.linear_velocity_mps, np.float64),
        np.asarray(state.position_m, dtype=np.float64), int(zone_index), line.centers_m, zone_stride(env_config),
        env_config.n_zone_centers_in_inputs, line.finish_distance_m - distance_along_m,
        env_config.max_distance_to_finish_m, float(state.is_freewheeling),
    )  # fmt: skip
    return out[0]


# ---- the image ------------------------------------------------------------------------------------------------------
# OpenCV's BGR(A)->GRAY weights in its 14-bit fixed point: gray = 0.299 R + 0.587 G + 0.114 B, rounded.
GRAY_WEIGHTS_14BIT_BGR = (1868, 9617, 4899)


def gray_frame_from_bgra(bgra: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """(1, H, W) uint8 grayscale of an (H, W, 4) BGRA game frame, as Linesight's cv2.cvtColor(BGRA2GRAY); no crop.

    The simulator's camera renders grayscale directly at the configured size; on the game the frame is requested at
    nn.image_width_px x nn.image_height_px (Linesight: 160 x 120) and converted here.
    """
    if bgra.ndim != 3 or bgra.shape[2] != 4 or bgra.dtype != np.uint8:
        raise ValueError(f"a BGRA frame must be (H, W, 4) uint8, got {bgra.shape} {bgra.dtype}")
    blue, green, red = GRAY_WEIGHTS_14BIT_BGR
    weighted = bgra[..., 0].astype(np.uint32) * blue + bgra[..., 1].astype(np.uint32) * green
    weighted += bgra[..., 2].astype(np.uint32) * red
    gray = ((weighted + (1 << 13)) >> 14).astype(np.uint8)
    if out is None:
        return gray[None]
    out[0] = gray
    return out

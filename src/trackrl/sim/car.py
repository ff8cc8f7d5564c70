"""Car physics: planar dynamics that follow the ground height, one 10 ms engine tick at a time.

Model (per tick dt = 10 ms), all accelerations in m/s²:
- steering sets the yaw rate ψ̇ = steer · v_long · κ_max(v), with κ_max(v) = κ0 / (1 + (v / v_ref)²), so the
  car turns less tightly at speed; ψ increases when turning right (direction (cos ψ, sin ψ) in the x-z plane);
- an automatic 5-gear box like the TMNF Stadium car's: it shifts up when the forward speed reaches the gear's top
  speed (100, 162, 235, 342 km/h) and gives no drive for `shift_duration_s` after each upshift; it shifts down
  (instantly, no loss) below `downshift_fraction` of the lower gear's top speed. The engine rpm is proportional
  to the forward speed in a gear, `max_rpm` at the gear's top speed;
- tyre forces: drive a_d(v) = A0 · (1 − (v / v_rev)²) of the forward speed (as in the game the force falls with
  speed, not with the gear; zero at 5th gear's rev limit v_rev) when accelerating and not shifting, brakes B,
  and the lateral force that cancels sideways slip; their sum is limited by the friction circle
  |a_tyre| ≤ μ · g · cos θ. A car asking for more (too fast in a turn) keeps part of its sideways velocity: it slides;
- drag c · v² and rolling resistance r oppose the motion; gravity along the slope adds −g · sin θ · cos θ;
- walls at ± (road_width / 2 − car half width) from the centre line: the outward velocity is removed, the
  remaining speed is reduced by wall friction and a per-tick scrub factor (no crash, but costly).
`optimal.py` uses the same parameters and formulas for its minimum-lap-time model (a point mass with the drive
envelope over the gears; shift losses as a time penalty per upshift; no sliding or wall contact), so its time is the
model's optimum, not a bound on the simulator.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import NamedTuple

import numba
import numpy as np

from trackrl.sim.track import Track

TICK_MS = 10
TICK_S = TICK_MS / 1000.0
KMH = 1 / 3.6  # m/s per km/h
N_GEARS = 5  # forward gears of the TMNF Stadium car (trackmania.wiki "Gears")


@dataclass(frozen=True)
class CarParams:
    """The car's constants. Sources: "game" = public TMNF Stadium-car figures; "chosen" = no public figure exists,
    the comment says how the value was picked."""

    # Gear top speeds (forward speed of the upshift): game, the community's shift points (trackmania.wiki "Gears",
    # mandatory.gg "Managing speed in Trackmania": 100, 160/162, 235, 341/342 km/h).
    gear_1_top_speed_mps: float = 100.0 * KMH
    gear_2_top_speed_mps: float = 162.0 * KMH
    gear_3_top_speed_mps: float = 235.0 * KMH
    gear_4_top_speed_mps: float = 342.0 * KMH
    # Chosen: 5th gear's rev limit continues the game's step between gears 3→4→5 (342 · 342 / 235 = 498 km/h); the
    # drive falls to 0 there, so the flat top speed is where drag meets the drive, ≈ 477 km/h (the game's cap of
    # ~1000 km/h is reached only downhill or with turbos; on flat ground 5th gear builds speed slowly, as here).
    gear_5_rev_limit_speed_mps: float = 498.0 * KMH
    # Drive a_d(v) = A0 · (1 − (v / v_rev)²), v_rev = 5th gear's rev limit (chosen; the game has no public force
    # table, only "acceleration decreases with speed, not with the gear", trackmania.wiki "Gears"): smooth and concave,
    # so optimal.py writes it exactly; 0-100 km/h in ≈ 2.5 s, 0-200 km/h in ≈ 5.5 s, below the tyres' grip μ g.
    drive_accel_standstill_mps2: float = 11.6  # A0
    # Chosen: "the car momentarily stops accelerating" at a shift (trackmania.wiki "Gears"); two 50 ms actions.
    shift_duration_s: float = 0.1
    downshift_fraction: float = 0.9  # chosen hysteresis: no shift hunting while the speed dips during a shift
    max_rpm: float = 10000.0  # game: engine.actual_rpm is about 0-10 000 (GAME_BRIDGE.md 6.2; Linesight normalises
    # rpm with mean 7000, std 3000)
    drag_per_m: float = 5.0e-5  # c (chosen with the drive curve: flat top speed ≈ 477 km/h)
    rolling_resistance_mps2: float = 0.1  # r
    brake_decel_mps2: float = 14.0  # B
    reverse_accel_mps2: float = 6.0
    max_reverse_speed_mps: float = 10.0
    grip_coefficient: float = 1.5  # μ of the friction circle
    gravity_mps2: float = 9.81
    max_steer_curvature_per_m: float = 1.0 / 6.0  # κ0: tightest turn (6 m radius) at walking speed
    # v_ref: at speed the full-lock lateral acceleration v² κ_max(v) tends to κ0 v_ref² = 1.2 μ g, so full lock
    # at high speed asks a bit more than the tyres give (the car slides) while moderate speeds grip.
    steer_reference_speed_mps: float = 10.3
    car_half_width_m: float = 1.0
    wall_friction: float = 0.5  # tangential speed lost per unit of outward speed removed by a wall
    wall_scrub_per_tick: float = 0.99  # speed kept per tick in contact with a wall

    def __post_init__(self) -> None:
        speeds = self.gear_top_speeds_mps()
        if speeds[0] <= 0 or np.any(np.diff(speeds) <= 0) or self.drive_accel_standstill_mps2 <= 0:
            raise ValueError(
                f"CarParams: gear top speeds must increase from > 0 (got {np.round(speeds, 2).tolist()} m/s) and the "
                f"drive at standstill must be positive (got {self.drive_accel_standstill_mps2} m/s²)"
            )

    def as_array(self) -> np.ndarray:
        """The constants as one float64 array in field order (the numba kernels' `params`; P_* index it).

        Read field by field: dataclasses.astuple deep-copies every value (44 µs a call against 7 µs here, one CPU
        core), which showed in tmi-serve, whose blobs carry the gear and rpm."""
        return np.array([getattr(self, field.name) for field in fields(self)], dtype=np.float64)

    def gear_top_speeds_mps(self) -> np.ndarray:
        """(5,) the forward speed at which each gear shifts up (5th: its rev limit)."""
        return np.array([self.gear_1_top_speed_mps, self.gear_2_top_speed_mps, self.gear_3_top_speed_mps,
                         self.gear_4_top_speed_mps, self.gear_5_rev_limit_speed_mps])  # fmt: skip

    @property
    def shift_ticks(self) -> int:
        return round(self.shift_duration_s / TICK_S)


DEFAULT_CAR = CarParams()

# Indices into CarParams.as_array() (numba kernels take the parameters as one float64 array).
_INDEX = {field.name: i for i, field in enumerate(fields(CarParams))}
P_GEAR_TOP = _INDEX["gear_1_top_speed_mps"]  # gear g's top speed at P_GEAR_TOP + g − 1
P_DRIVE_ACCEL = _INDEX["drive_accel_standstill_mps2"]
P_SHIFT_DURATION, P_DOWNSHIFT, P_MAX_RPM = _INDEX["shift_duration_s"], _INDEX["downshift_fraction"], _INDEX["max_rpm"]
P_DRAG, P_ROLLING, P_BRAKE = _INDEX["drag_per_m"], _INDEX["rolling_resistance_mps2"], _INDEX["brake_decel_mps2"]
P_REVERSE, P_MAX_REVERSE = _INDEX["reverse_accel_mps2"], _INDEX["max_reverse_speed_mps"]
P_GRIP, P_GRAVITY, P_KAPPA0 = _INDEX["grip_coefficient"], _INDEX["gravity_mps2"], _INDEX["max_steer_curvature_per_m"]
P_VREF, P_HALF_WIDTH = _INDEX["steer_reference_speed_mps"], _INDEX["car_half_width_m"]
P_WALL_FRICTION, P_WALL_SCRUB = _INDEX["wall_friction"], _INDEX["wall_scrub_per_tick"]

# Columns of the car state array (B, N_STATE) that simulate_ticks advances.
S_X, S_Z, S_HEADING, S_VX, S_VZ, S_YAW_RATE, S_PROGRESS, S_HEIGHT = range(8)
S_GEAR = 8  # 1..5, stored as a float
S_SHIFT_TICKS_LEFT = 9  # engine ticks of the current upshift's loss of drive still to come (0: driving)
N_STATE = 10


def gear_of_state(state_row: np.ndarray) -> int:
    """The gear (1..5) of one car's state row."""
    return int(state_row[S_GEAR])


@numba.njit(cache=True)
def gear_top_speed_mps(gear: int, params: np.ndarray) -> float:
    return params[P_GEAR_TOP + gear - 1]


@numba.njit(cache=True)
def engine_rpm(speed_mps: float, gear: int, params: np.ndarray) -> float:
    """Engine rpm in `gear` at forward speed `speed_mps`: a fixed ratio per gear, max_rpm at its top speed."""
    return params[P_MAX_RPM] * min(max(speed_mps, 0.0) / gear_top_speed_mps(gear, params), 1.0)


@numba.njit(cache=True)
def drive_envelope_mps2(speed_mps: float, params: np.ndarray) -> float:
    """Maximum drive over the gears at a forward speed: A0 · (1 − (v / v_rev)²), 0 past 5th gear's rev limit."""
    ratio = max(speed_mps, 0.0) / params[P_GEAR_TOP + N_GEARS - 1]
    return params[P_DRIVE_ACCEL] * max(0.0, 1.0 - ratio * ratio)


@numba.njit(cache=True)
def drive_accel_mps2(speed_mps: float, gear: int, params: np.ndarray) -> float:
    """Drive in `gear`: the drive curve up to the gear's top speed, nothing beyond (rev limiter)."""
    if speed_mps >= gear_top_speed_mps(gear, params):
        return 0.0
    return drive_envelope_mps2(speed_mps, params)


@numba.njit(cache=True)
def gear_for_speed(speed_mps: float, params: np.ndarray) -> int:
    """The gear an upshifting car is in at this forward speed (a start at speed, a teleport)."""
    gear = 1
    while gear < N_GEARS and speed_mps >= gear_top_speed_mps(gear, params):
        gear += 1
    return gear


@numba.njit(cache=True)
def automatic_gearbox(speed_mps: float, gear: int, shift_ticks_left: float, params: np.ndarray) -> tuple[int, float]:
    """One tick of the gearbox: (gear, shift ticks left). Up at the gear's top speed (starting a loss of drive),
    down below downshift_fraction of the lower gear's top speed."""
    shift_ticks_left = max(shift_ticks_left - 1.0, 0.0)
    if gear < N_GEARS and speed_mps >= gear_top_speed_mps(gear, params):
        return gear + 1, float(round(params[P_SHIFT_DURATION] / TICK_S))
    while gear > 1 and speed_mps < params[P_DOWNSHIFT] * gear_top_speed_mps(gear - 1, params):
        gear -= 1
    return gear, shift_ticks_left


@numba.njit(cache=True)
def resistance_mps2(speed_mps: float, params: np.ndarray) -> float:
    """Drag plus rolling resistance (not a tyre force: outside the friction circle)."""
    return params[P_DRAG] * speed_mps * speed_mps + params[P_ROLLING]


@numba.njit(cache=True)
def max_steer_curvature_per_m(speed_mps: float, params: np.ndarray) -> float:
    ratio = speed_mps / params[P_VREF]
    return params[P_KAPPA0] / (1.0 + ratio * ratio)


class TrackArrays(NamedTuple):
    """The centre line as flat arrays for the numba kernels (planar geometry + height and slope)."""

    x_m: np.ndarray  # (N,)
    y_m: np.ndarray  # (N,) height
    z_m: np.ndarray  # (N,)
    tangent_x: np.ndarray  # (N-1,) unit planar direction of each segment
    tangent_z: np.ndarray
    planar_length_m: np.ndarray  # (N-1,)
    distance_m: np.ndarray  # (N,) cumulative 3D distance (progress)
    sin_slope: np.ndarray  # (N-1,) slope angle θ of each segment, tan θ = dy / planar length
    cos_slope: np.ndarray
    wall_offset_m: float  # the car centre stays within ± this of the centre line


def track_arrays(track: Track, params: CarParams = DEFAULT_CAR) -> TrackArrays:
    c = track.centerline_m
    delta = np.diff(c, axis=0)
    planar = np.hypot(delta[:, 0], delta[:, 2])
    slope = np.arctan2(delta[:, 1], planar)
    return TrackArrays(
        x_m=np.ascontiguousarray(c[:, 0]),
        y_m=np.ascontiguousarray(c[:, 1]),
        z_m=np.ascontiguousarray(c[:, 2]),
        tangent_x=delta[:, 0] / planar,
        tangent_z=delta[:, 2] / planar,
        planar_length_m=planar,
        distance_m=np.asarray(track.cumulative_distance_m, dtype=np.float64),
        sin_slope=np.sin(slope),
        cos_slope=np.cos(slope),
        wall_offset_m=float(track.road_width_m / 2 - params.car_half_width_m),
    )


@numba.njit(cache=True)
def project_on_centerline(
    x: float,
    z: float,
    segment_guess: int,
    cx: np.ndarray,
    cz: np.ndarray,
    tx: np.ndarray,
    tz: np.ndarray,
    seg_len: np.ndarray,
) -> tuple[int, float, float]:
    """Nearest centre-line segment near `segment_guess`: (segment, fraction t along it, signed offset to the right).

    A local search (the car moves < 1 m per tick), so a road that passes above another one is not confused
    with it. t may fall outside [0, 1] only before the first or after the last segment.
    """
    n_seg = tx.shape[0]
    best = min(max(segment_guess, 0), n_seg - 1)
    for _ in range(64):
        lo, hi = max(best - 3, 0), min(best + 3, n_seg - 1)
        best_dist = np.inf
        centre = best
        for j in range(lo, hi + 1):
            along = (x - cx[j]) * tx[j] + (z - cz[j]) * tz[j]
            t = min(max(along / seg_len[j], 0.0), 1.0)
            px, pz = cx[j] + t * seg_len[j] * tx[j], cz[j] + t * seg_len[j] * tz[j]
            d2 = (x - px) ** 2 + (z - pz) ** 2
            if d2 < best_dist:
                best_dist, best = d2, j
        if best == centre or (best != lo and best != hi) or (best == 0 or best == n_seg - 1):
            break
    along = (x - cx[best]) * tx[best] + (z - cz[best]) * tz[best]
    t = along / seg_len[best]
    if not ((best == 0 and t < 0.0) or (best == n_seg - 1 and t > 1.0)):  # extrapolate only past the ends
        t = min(max(t, 0.0), 1.0)
    lateral = -(x - cx[best]) * tz[best] + (z - cz[best]) * tx[best]  # right normal = (−tz, tx)
    return best, t, lateral


@numba.njit(cache=True)
def simulate_ticks(
    state: np.ndarray,
    segment: np.ndarray,
    tick: np.ndarray,
    finished: np.ndarray,
    flags: np.ndarray,
    active: np.ndarray,
    accelerate: np.ndarray,
    brake: np.ndarray,
    steer: np.ndarray,
    n_ticks: int,
    params: np.ndarray,
    cx: np.ndarray,
    cy: np.ndarray,
    cz: np.ndarray,
    tx: np.ndarray,
    tz: np.ndarray,
    seg_len: np.ndarray,
    distance_m: np.ndarray,
    sin_slope: np.ndarray,
    cos_slope: np.ndarray,
    wall_offset_m: float,
) -> None:
    """Advance every active, unfinished car by up to n_ticks engine ticks, in place.

    state (B, N_STATE): x, z, heading ψ, vx, vz, yaw rate ψ̇, progress (m along the centre line), height y, gear,
    shift ticks left (the S_* columns).
    flags (B, 2): sliding (any tick of this call), wall contact (any tick of this call).
    steer: −1 left, 0, +1 right. A car stops at the tick where it crosses the finish plane.
    """
    n_seg = tx.shape[0]
    last = n_seg  # index of the last centre-line point
    for b in range(state.shape[0]):
        if not active[b] or finished[b]:
            continue
        x, z, heading, vx, vz = state[b, 0], state[b, 1], state[b, 2], state[b, 3], state[b, 4]
        yaw_rate, progress, height = state[b, 5], state[b, 6], state[b, 7]
        gear, shift_ticks_left = int(state[b, S_GEAR]), state[b, S_SHIFT_TICKS_LEFT]
        j = segment[b]
        sliding, wall = False, False
        fx, fz = np.cos(heading), np.sin(heading)  # the car's forward axis; carried from tick to tick (one cos/sin)
        for _ in range(n_ticks):
            tick[b] += 1
            speed = np.hypot(vx, vz)
            # Steering: heading turns at v_long · κ, κ shrinking with speed.
            v_long = vx * fx + vz * fz
            yaw_rate = steer[b] * v_long * max_steer_curvature_per_m(speed, params)
            heading += yaw_rate * TICK_S
            fx, fz = np.cos(heading), np.sin(heading)
            rx, rz = -fz, fx
            v_long = vx * fx + vz * fz
            v_lat = vx * rx + vz * rz
            gear, shift_ticks_left = automatic_gearbox(v_long, gear, shift_ticks_left, params)
            # Tyre force request: drive/brakes along the car, cancel all sideways slip across it.
            a_long = 0.0
            if accelerate[b] and shift_ticks_left == 0.0:
                a_long += drive_accel_mps2(v_long, gear, params)
            if brake[b]:
                if v_long > 0.0:
                    a_long -= min(params[P_BRAKE], v_long / TICK_S)
                elif not accelerate[b] and v_long > -params[P_MAX_REVERSE]:
                    a_long -= params[P_REVERSE]
            a_lat = -v_lat / TICK_S
            grip = params[P_GRIP] * params[P_GRAVITY] * cos_slope[j]
            a_tyre = np.hypot(a_long, a_lat)
            if a_tyre > grip:  # friction circle: the car slides
                a_long *= grip / a_tyre
                a_lat *= grip / a_tyre
                sliding = True
            v_long += a_long * TICK_S
            v_lat += a_lat * TICK_S
            vx, vz = v_long * fx + v_lat * rx, v_long * fz + v_lat * rz
            # Drag and rolling resistance (never reverse the motion), gravity along the slope.
            speed = np.hypot(vx, vz)
            if speed > 0.0:
                kept = max(0.0, speed - resistance_mps2(speed, params) * TICK_S) / speed
                vx *= kept
                vz *= kept
            a_gravity = -params[P_GRAVITY] * sin_slope[j] * cos_slope[j]
            vx += a_gravity * tx[j] * TICK_S
            vz += a_gravity * tz[j] * TICK_S
            x += vx * TICK_S
            z += vz * TICK_S
            # Walls: keep the car centre within ± wall_offset_m, remove the outward velocity, cost speed.
            j, t, lateral = project_on_centerline(x, z, j, cx, cz, tx, tz, seg_len)
            if abs(lateral) > wall_offset_m:
                side = 1.0 if lateral > 0 else -1.0
                nx, nz = -tz[j] * side, tx[j] * side  # outward normal
                excess = abs(lateral) - wall_offset_m
                x -= excess * nx
                z -= excess * nz
                v_out = vx * nx + vz * nz
                if v_out > 0.0:
                    vx -= v_out * nx
                    vz -= v_out * nz
                    speed = np.hypot(vx, vz)
                    if speed > 0.0:
                        kept = max(0.0, speed - params[P_WALL_FRICTION] * v_out) / speed
                        vx *= kept
                        vz *= kept
                vx *= params[P_WALL_SCRUB]
                vz *= params[P_WALL_SCRUB]
                wall = True
            # A wall across the start line: no driving backwards out of the track.
            if j == 0 and t < 0.0:
                x -= t * seg_len[0] * tx[0]
                z -= t * seg_len[0] * tz[0]
                v_back = vx * tx[0] + vz * tz[0]
                if v_back < 0.0:
                    vx -= v_back * tx[0]
                    vz -= v_back * tz[0]
                t = 0.0
                wall = True
            t_in = min(max(t, 0.0), 1.0)
            progress = distance_m[j] + t_in * (distance_m[j + 1] - distance_m[j])
            height = cy[j] + t_in * (cy[j + 1] - cy[j])
            # Finish: the crossing of the plane through the last point, perpendicular to the last segment.
            if j >= n_seg - 4 and (x - cx[last]) * tx[n_seg - 1] + (z - cz[last]) * tz[n_seg - 1] >= 0.0:
                finished[b] = True
                progress = distance_m[last]
                break
        state[b, 0], state[b, 1], state[b, 2], state[b, 3], state[b, 4] = x, z, heading, vx, vz
        state[b, 5], state[b, 6], state[b, 7] = yaw_rate, progress, height
        state[b, S_GEAR], state[b, S_SHIFT_TICKS_LEFT] = gear, shift_ticks_left
        segment[b] = j
        flags[b, 0] = sliding
        flags[b, 1] = wall

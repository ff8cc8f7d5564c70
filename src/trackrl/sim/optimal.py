"""Minimum-lap-time optimal control of the simulator's car (the *optimal (model)* time of a track).

Curvilinear coordinates along the centre line's plan view (Lot & Biral 2014, "A curvilinear abscissa approach for
the lap time optimization of racing vehicles"; Perantoni & Limebeer 2014): progress s (planar arc length), lateral
offset n (to the right), heading error ξ of the velocity against the centre line, speed v. Controls: path
curvature κ and tyre force per mass along the car a. With κ_c the centre line's curvature (> 0 turning right):

    ṡ = v cos ξ / (1 − n κ_c),   ṅ = v sin ξ,   ξ̇ = v κ − κ_c ṡ,
    v̇ = a − c v² − r − g sin θ cos θ cos ξ

and the constraints of car.py: a ≤ a_drive(v) = A0 (1 − (v / v_rev)²) (the drive envelope over the gears), a ≥ −B,
a² + (v² κ)² ≤ (μ g cos θ)² (friction circle),
|κ| ≤ κ_max(v) (steering limit), |n| ≤ width / 2 − car half width (walls), standing start n = ξ = v = 0 at s = 0;
minimise the time to s = S (the finish plane). Direct collocation: trapezoidal in time on a uniform mesh in s
(one time step Δt_k per interval, so the standing start with v = 0 needs no 1/v), solved by IPOPT through CasADi.
Mesh refinement halves Δs until the lap time changes by < 0.1 %; the coarse mesh is solved from several initial
lines (blends of the minimum-curvature and shortest-path lines) and the fastest solution seeds the refinements.

Gear shifts: the simulator's automatic gearbox gives no drive for `shift_duration_s` after each upshift, a discrete
event the NLP does not contain (its drive is the envelope, available at every speed). Each upshift on the solution's
speed profile is charged afterwards a known time penalty, to first order in the shift duration τ: on a stretch where
the car accelerates from the shift speed u to a peak v_peak before braking, the pause delays its speed-distance
curve by u · τ metres, which costs τ · (1 − u / v_peak) seconds. `optimal_ms` is the NLP's time plus these
penalties; the NLP's line and speeds are not re-optimised for them (an optimum that avoids a shift could be up to
that penalty faster; a penalty is largest, τ, for a shift long before the peak, where avoiding it is not possible).

This is the optimum of a model: a point mass whose velocity follows the heading while within the friction circle.
The simulator's car also slides, scrubs walls and steers in 50 ms bang-bang steps, so its best lap can differ
either way; `achieved.py` drives the line in the simulator (the *achieved* time agents are compared with).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import casadi
import numpy as np

from trackrl.sim.car import DEFAULT_CAR, CarParams, drive_envelope_mps2
from trackrl.sim.reference import minimum_curvature_offsets, shortest_path_offsets, speed_profile
from trackrl.sim.track import Track

COARSE_MESH_M = 8.0
FINEST_MESH_M = 1.0
MESH_TOLERANCE = 1e-3  # refine until the lap time changes by less than 0.1 %
IPOPT_TOLERANCE = 1e-8
CURVATURE_WINDOW_M = 1.0  # centre-line curvature κ_c from the heading change over ± this
INITIAL_LINE_MAX_ITERATIONS = 400  # an initial line IPOPT cannot bring to an optimum by then is dropped...
PATIENT_MAX_ITERATIONS = 3000  # ...unless every line needs more (technical with the geared car: ~1000 iterations)
# Initial lines: blends (1 − λ) · minimum curvature + λ · shortest path (the minimum-time line lies between them,
# Braghin et al. 2008). The centre line itself is a poor start: IPOPT needs thousands of iterations from it.
INITIAL_LINES = {"minimum_curvature": 0.0, "blend_1/3_shortest_path": 1 / 3, "blend_2/3_shortest_path": 2 / 3}


class OptimalControlError(RuntimeError):
    """IPOPT did not converge on any initial line (a bug or a track the model cannot drive)."""


@dataclass
class CentrelineGeometry:
    """The centre line's plan view as smooth functions of planar arc length s (sampled on demand)."""

    s_m: np.ndarray  # (N,) planar arc length at the centre-line points
    x_m: np.ndarray
    y_m: np.ndarray
    z_m: np.ndarray
    heading_rad: np.ndarray  # (N,) unwrapped heading at the points (mean of the adjacent segments)
    sin_cos_slope: np.ndarray  # (N,) sin θ cos θ of the segment starting at each point (gravity along the road)
    cos_slope: np.ndarray  # (N,)
    wall_offset_m: float

    @property
    def length_m(self) -> float:
        return float(self.s_m[-1])

    def at(self, s_m: np.ndarray) -> dict[str, np.ndarray]:
        """Centre point, heading, curvature and slope terms at planar arc lengths `s_m`."""
        h = CURVATURE_WINDOW_M
        heading = np.interp(s_m, self.s_m, self.heading_rad)
        ahead = np.interp(np.minimum(s_m + h, self.length_m), self.s_m, self.heading_rad)
        behind = np.interp(np.maximum(s_m - h, 0.0), self.s_m, self.heading_rad)
        span = np.minimum(s_m + h, self.length_m) - np.maximum(s_m - h, 0.0)
        return {
            "x": np.interp(s_m, self.s_m, self.x_m),
            "y": np.interp(s_m, self.s_m, self.y_m),
            "z": np.interp(s_m, self.s_m, self.z_m),
            "heading": heading,
            "curvature": (ahead - behind) / span,
            "sin_cos_slope": np.interp(s_m, self.s_m, self.sin_cos_slope),
            "cos_slope": np.interp(s_m, self.s_m, self.cos_slope),
        }


def centreline_geometry(track: Track, car: CarParams = DEFAULT_CAR) -> CentrelineGeometry:
    c = track.centerline_m
    delta = np.diff(c, axis=0)
    planar = np.hypot(delta[:, 0], delta[:, 2])
    segment_heading = np.unwrap(np.arctan2(delta[:, 2], delta[:, 0]))
    heading = np.concatenate([segment_heading[:1], 0.5 * (segment_heading[:-1] + segment_heading[1:]),
                              segment_heading[-1:]])  # fmt: skip
    slope = np.arctan2(delta[:, 1], planar)
    slope = np.concatenate([slope, slope[-1:]])
    return CentrelineGeometry(
        s_m=np.concatenate([[0.0], np.cumsum(planar)]),
        x_m=c[:, 0],
        y_m=c[:, 1],
        z_m=c[:, 2],
        heading_rad=heading,
        sin_cos_slope=np.sin(slope) * np.cos(slope),
        cos_slope=np.cos(slope),
        wall_offset_m=float(track.road_width_m / 2 - car.car_half_width_m),
    )


@dataclass
class OptimalLap:
    """The solution on its final mesh: every array is per mesh node (planar s from 0 to the finish)."""

    lap_time_s: float  # the NLP's time (drive envelope, no shift loss)
    s_m: np.ndarray
    offset_m: np.ndarray  # n
    heading_error_rad: np.ndarray  # ξ
    speed_mps: np.ndarray  # v
    curvature_per_m: np.ndarray  # κ
    tyre_accel_mps2: np.ndarray  # a
    time_s: np.ndarray  # time at each node
    mesh_history: list[tuple[float, float]] = field(default_factory=list)  # (Δs m, lap time s) per refinement
    initial_line_times_s: dict[str, float] = field(default_factory=dict)  # coarse-mesh time from each initial line
    solve_seconds: float = 0.0
    shift_penalty_s: float = 0.0  # the upshifts' loss of drive along the speed profile (module docstring)
    upshifts: int = 0

    @property
    def optimal_ms(self) -> int:
        return int(np.floor((self.lap_time_s + self.shift_penalty_s) * 1000))

    def line_xyz_m(self, geometry: CentrelineGeometry) -> np.ndarray:
        """(K, 3) the line in world coordinates (x, y up, z)."""
        at = geometry.at(self.s_m)
        return np.stack([at["x"] - self.offset_m * np.sin(at["heading"]), at["y"],
                         at["z"] + self.offset_m * np.cos(at["heading"])], axis=1)  # fmt: skip


def shift_penalty_s(speed_mps: np.ndarray, car: CarParams) -> tuple[float, int]:
    """The upshifts' time cost along a speed profile (module docstring) and their number, with car.py's gearbox:
    up at a gear's top speed, down below downshift_fraction of the lower gear's top speed."""
    tops = car.gear_top_speeds_mps()
    penalty, upshifts, gear = 0.0, 0, 1
    for k, v in enumerate(speed_mps):
        while gear < len(tops) and v >= tops[gear - 1]:
            shift_speed = tops[gear - 1]
            below = np.flatnonzero(speed_mps[k:] < shift_speed)
            peak = speed_mps[k : k + below[0]] if below.size else speed_mps[k:]
            penalty += car.shift_duration_s * (1 - shift_speed / float(peak.max()))
            upshifts += 1
            gear += 1
        while gear > 1 and v < car.downshift_fraction * tops[gear - 2]:
            gear -= 1
    return penalty, upshifts


def solve_optimal_lap(track: Track, car: CarParams = DEFAULT_CAR) -> OptimalLap:
    """Minimum lap time from standstill: several initial lines on a coarse mesh, then mesh refinement."""
    started = time.perf_counter()
    geometry = centreline_geometry(track, car)
    coarse_s = uniform_mesh(geometry.length_m, COARSE_MESH_M)
    candidates: dict[str, OptimalLap] = {}
    for name in INITIAL_LINES:
        guess = initial_guess(geometry, coarse_s, name, car)
        try:
            candidates[name] = solve_on_mesh(geometry, coarse_s, guess, car, max_iterations=INITIAL_LINE_MAX_ITERATIONS)
        except OptimalControlError:
            continue
    for name in INITIAL_LINES if not candidates else ():  # the first line that converges with more patience
        try:
            guess = initial_guess(geometry, coarse_s, name, car)
            candidates[name] = solve_on_mesh(geometry, coarse_s, guess, car, max_iterations=PATIENT_MAX_ITERATIONS)
            break
        except OptimalControlError:
            continue
    if not candidates:
        raise OptimalControlError(f"track {track.name}: IPOPT failed from every initial line {INITIAL_LINES}")
    best_line = min(candidates, key=lambda name: candidates[name].lap_time_s)
    best = candidates[best_line]
    history = [(COARSE_MESH_M, best.lap_time_s)]
    mesh_m = COARSE_MESH_M
    while mesh_m > FINEST_MESH_M:
        mesh_m /= 2
        fine_s = uniform_mesh(geometry.length_m, mesh_m)
        try:
            refined = solve_on_mesh(geometry, fine_s, interpolate_solution(best, fine_s), car)
        except OptimalControlError:  # seen on straights: IPOPT stalls from the resampled solution, not afresh
            refined = solve_on_mesh(geometry, fine_s, initial_guess(geometry, fine_s, best_line, car), car)
        history.append((mesh_m, refined.lap_time_s))
        change = abs(refined.lap_time_s - best.lap_time_s) / best.lap_time_s
        best = refined
        if change < MESH_TOLERANCE:
            break
    best.mesh_history = history
    best.initial_line_times_s = {name: lap.lap_time_s for name, lap in candidates.items()}
    best.shift_penalty_s, best.upshifts = shift_penalty_s(best.speed_mps, car)
    best.solve_seconds = time.perf_counter() - started
    return best


def uniform_mesh(length_m: float, spacing_m: float) -> np.ndarray:
    return np.linspace(0.0, length_m, max(2, round(length_m / spacing_m)) + 1)


def initial_guess(geometry: CentrelineGeometry, s_m: np.ndarray, line: str, car: CarParams) -> dict[str, np.ndarray]:
    """States and controls of an initial line (lateral offsets) driven at its quasi-steady speed profile."""
    at = geometry.at(s_m)
    centre_xz = np.stack([at["x"], at["z"]], axis=1)
    normal_xz = np.stack([-np.sin(at["heading"]), np.cos(at["heading"])], axis=1)
    limit_m = 0.9 * geometry.wall_offset_m
    blend = INITIAL_LINES[line]
    offset = (1 - blend) * minimum_curvature_offsets(centre_xz, normal_xz, limit_m)
    offset += blend * shortest_path_offsets(centre_xz, normal_xz, limit_m)
    offset[0] = 0.0
    line_xz = centre_xz + offset[:, None] * normal_xz
    speed = speed_profile(line_xz, at["cos_slope"], at["sin_cos_slope"] / np.maximum(at["cos_slope"], 1e-9), car)
    speed = np.maximum(speed, 0.5)
    speed[0] = 0.0
    tangent = np.gradient(line_xz, axis=0)
    line_heading = np.unwrap(np.arctan2(tangent[:, 1], tangent[:, 0]))
    heading_error = line_heading - at["heading"]
    heading_error -= 2 * np.pi * np.round(heading_error / (2 * np.pi))
    heading_error[0] = 0.0
    ds = np.diff(s_m)
    dt = 2 * ds * (1 - offset[:-1] * at["curvature"][:-1]) / np.maximum(speed[:-1] + speed[1:], 0.5)
    path_length = np.linalg.norm(np.diff(line_xz, axis=0), axis=1)
    curvature = np.gradient(line_heading) / np.maximum(np.concatenate([path_length, path_length[-1:]]), 1e-6)
    accel = np.gradient(speed) / np.maximum(np.concatenate([dt, dt[-1:]]), 1e-3)
    # Within the drive and brake limits: IPOPT's restoration phase can stall from a guess far outside them.
    params = car.as_array()
    accel = np.clip(accel, -car.brake_decel_mps2, [drive_envelope_mps2(float(v), params) for v in speed])
    return {"n": offset, "xi": heading_error, "v": speed, "kappa": curvature, "a": accel, "dt": dt}


def interpolate_solution(lap: OptimalLap, s_m: np.ndarray) -> dict[str, np.ndarray]:
    """A solution resampled onto a finer mesh (the refinement's initial guess)."""
    guess = {
        "n": np.interp(s_m, lap.s_m, lap.offset_m),
        "xi": np.interp(s_m, lap.s_m, lap.heading_error_rad),
        "v": np.interp(s_m, lap.s_m, lap.speed_mps),
        "kappa": np.interp(s_m, lap.s_m, lap.curvature_per_m),
        "a": np.interp(s_m, lap.s_m, lap.tyre_accel_mps2),
    }
    node_time = np.interp(s_m, lap.s_m, lap.time_s)
    guess["dt"] = np.maximum(np.diff(node_time), 1e-4)
    return guess


def solve_on_mesh(
    geometry: CentrelineGeometry,
    s_m: np.ndarray,
    guess: dict[str, np.ndarray],
    car: CarParams,
    fixed_offset_m: np.ndarray | None = None,
    max_iterations: int = 3000,
) -> OptimalLap:
    """One direct-collocation NLP on the mesh `s_m` (trapezoidal rule in time); `fixed_offset_m` pins the line
    (then only the speed and heading along it are optimised: the same model timing a given line)."""
    at = geometry.at(s_m)
    k_nodes = len(s_m)
    ds = np.diff(s_m)
    heading_change = np.diff(at["heading"])  # ∫ κ_c ds over each interval, exact for the interpolated heading
    opti = casadi.Opti()
    n = opti.variable(k_nodes)
    xi = opti.variable(k_nodes)
    v = opti.variable(k_nodes)
    kappa = opti.variable(k_nodes)
    a = opti.variable(k_nodes)
    dt = opti.variable(k_nodes - 1)
    kappa_c = casadi.DM(at["curvature"])
    s_dot = v * casadi.cos(xi) / (1 - n * kappa_c)
    n_dot = v * casadi.sin(xi)
    turn_rate = v * kappa  # heading rate of the velocity
    v_dot = (
        a
        - car.drag_per_m * v**2
        - car.rolling_resistance_mps2
        - car.gravity_mps2 * casadi.DM(at["sin_cos_slope"]) * casadi.cos(xi)
    )

    def trapezoid(rate: casadi.MX) -> casadi.MX:
        return dt * 0.5 * (rate[:-1] + rate[1:])

    opti.subject_to(trapezoid(s_dot) == casadi.DM(ds))
    opti.subject_to(n[1:] - n[:-1] == trapezoid(n_dot))
    opti.subject_to(xi[1:] - xi[:-1] == trapezoid(turn_rate) - casadi.DM(heading_change))
    opti.subject_to(v[1:] - v[:-1] == trapezoid(v_dot))
    grip = car.grip_coefficient * car.gravity_mps2 * casadi.DM(at["cos_slope"])
    opti.subject_to(a**2 + (v**2 * kappa) ** 2 <= grip**2)  # friction circle
    # car.drive_envelope_mps2, exact up to 5th gear's rev limit (beyond it, faster than the flat top speed, this
    # asks for braking where the simulator coasts: more conservative).
    opti.subject_to(a <= car.drive_accel_standstill_mps2 * (1 - (v / car.gear_5_rev_limit_speed_mps) ** 2))
    opti.subject_to(a >= -car.brake_decel_mps2)
    steer_limit = kappa * (1 + (v / car.steer_reference_speed_mps) ** 2)  # |κ| ≤ κ0 / (1 + (v / v_ref)²)
    opti.subject_to(opti.bounded(-car.max_steer_curvature_per_m, steer_limit, car.max_steer_curvature_per_m))
    opti.subject_to(opti.bounded(-geometry.wall_offset_m, n, geometry.wall_offset_m))
    opti.subject_to(v >= 0)
    opti.subject_to(opti.bounded(-1.2, xi, 1.2))
    opti.subject_to(dt >= 1e-4)
    opti.subject_to(n[0] == 0)
    opti.subject_to(xi[0] == 0)
    opti.subject_to(v[0] == 0)
    if fixed_offset_m is not None:
        opti.subject_to(n == casadi.DM(fixed_offset_m))
    opti.minimize(casadi.sum1(dt))
    for variable, name in ((n, "n"), (xi, "xi"), (v, "v"), (kappa, "kappa"), (a, "a"), (dt, "dt")):
        opti.set_initial(variable, guess[name])
    opti.solver(
        "ipopt",
        {"print_time": False, "expand": True},
        {"print_level": 0, "sb": "yes", "tol": IPOPT_TOLERANCE, "max_iter": max_iterations, "mu_strategy": "adaptive"},
    )
    try:
        solution = opti.solve()
    except RuntimeError as error:
        raise OptimalControlError(f"IPOPT did not converge on a {k_nodes}-node mesh: {error}") from error
    dt_value = np.atleast_1d(solution.value(dt))
    return OptimalLap(
        lap_time_s=float(dt_value.sum()),
        s_m=s_m,
        offset_m=np.atleast_1d(solution.value(n)),
        heading_error_rad=np.atleast_1d(solution.value(xi)),
        speed_mps=np.atleast_1d(solution.value(v)),
        curvature_per_m=np.atleast_1d(solution.value(kappa)),
        tyre_accel_mps2=np.atleast_1d(solution.value(a)),
        time_s=np.concatenate([[0.0], np.cumsum(dt_value)]),
    )


def time_line(track: Track, lap: OptimalLap, offset_m: np.ndarray, car: CarParams = DEFAULT_CAR) -> float:
    """Lap time of the model along a given line (offsets on `lap`'s mesh), speeds and headings optimised."""
    geometry = centreline_geometry(track, car)
    guess = interpolate_solution(lap, lap.s_m)
    guess["n"] = offset_m
    return solve_on_mesh(geometry, lap.s_m, guess, car, fixed_offset_m=offset_m).lap_time_s

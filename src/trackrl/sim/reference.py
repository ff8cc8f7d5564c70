"""A heuristic quasi-steady lap: the initial lines and speeds for optimal.py's solver (not a yardstick, not a bound).

1. Line: lateral offsets n_i along the right normal of the centre line, |n_i| ≤ road_width / 2 − car half
   width, n_0 = 0 (the car starts on the centre line). Two box-constrained quadratic programmes, solved by an
   active set with banded Cholesky steps: the minimum-curvature line, min Σ |P_{i−1} − 2 P_i + P_{i+1}|²
   (Heilmeier et al. 2019, "Minimum curvature trajectory planning and control for an autonomous race car"),
   and the shortest path, min Σ |P_{i+1} − P_i|². The minimum-time line lies between them (Braghin et al.
   2008, "Race driver model"); the fastest of the blends (1 − λ) · n_curvature + λ · n_shortest is kept.
2. Speed profile on that line (quasi-steady-state lap simulation), with the SAME formulas and parameters as
   car.py: v ≤ sqrt(μ g cos θ / κ) (friction circle, all grip used laterally) and the steering limit
   κ ≤ κ_max(v); a forward pass from standstill with the engine and the grip left over by the turn
   (a = min(a_drive(v), sqrt((μ g cos θ)² − (v² κ)²)) − drag − rolling − g sin θ cos θ; a_drive: the envelope
   over the gears, no shift loss), and a backward pass
   with the brakes (same friction circle; drag, rolling resistance and gravity help).
3. Time to the finish plane: Σ 2 ds / (v_i + v_{i+1}), rounded down to the millisecond.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numba
import numpy as np

from trackrl.sim.car import (
    DEFAULT_CAR,
    CarParams,
    drive_envelope_mps2,
    max_steer_curvature_per_m,
    resistance_mps2,
)
from trackrl.sim.track import POINT_SPACING_M, Track

LINE_STEP_POINTS = 4  # optimise the line every 2 m of centre line
BLENDS_TOWARDS_SHORTEST_PATH = np.linspace(0.0, 1.0, 11)
_CACHE: dict[tuple[str, float, CarParams], ReferenceLap] = {}


@dataclass
class ReferenceLap:
    race_time_ms: int
    line_m: np.ndarray  # (M, 3) the reference line, every ~2 m
    speed_mps: np.ndarray  # (M,) speed along it
    time_s: np.ndarray  # (M,) time at each line point


def reference_lap(track: Track, car: CarParams = DEFAULT_CAR) -> ReferenceLap:
    """The heuristic lap of `track` (cached per centre line, road width and car)."""
    key = (hashlib.sha1(track.centerline_m.tobytes()).hexdigest(), track.road_width_m, car)
    if key not in _CACHE:
        _CACHE[key] = _compute_reference_lap(track, car)
    return _CACHE[key]


def _compute_reference_lap(track: Track, car: CarParams) -> ReferenceLap:
    positions = line_point_positions(len(track.centerline_m))
    centre = _interpolate_rows(track.centerline_m, positions)
    normal_right = _interpolate_rows(_right_normals(track.centerline_m), positions)
    normal_right /= np.linalg.norm(normal_right, axis=1, keepdims=True)
    limit_m = track.road_width_m / 2 - car.car_half_width_m
    curvature_offsets = minimum_curvature_offsets(centre[:, [0, 2]], normal_right, limit_m)
    shortest_offsets = shortest_path_offsets(centre[:, [0, 2]], normal_right, limit_m)
    cos_slope, sin_slope = _slopes(track, positions)
    laps = []
    for blend in BLENDS_TOWARDS_SHORTEST_PATH:
        offsets_m = (1 - blend) * curvature_offsets + blend * shortest_offsets  # convex: stays within the road
        line = centre.copy()
        line[:, 0] += offsets_m * normal_right[:, 0]
        line[:, 2] += offsets_m * normal_right[:, 1]
        speed_mps = speed_profile(line[:, [0, 2]], cos_slope, sin_slope, car)
        ds_m = np.linalg.norm(np.diff(line[:, [0, 2]], axis=0), axis=1)
        dt_s = 2 * ds_m / np.maximum(speed_mps[:-1] + speed_mps[1:], 1e-9)
        time_s = np.concatenate([[0.0], np.cumsum(dt_s)])
        race_time_ms = int(np.floor(time_s[-1] * 1000))
        laps.append(ReferenceLap(race_time_ms=race_time_ms, line_m=line, speed_mps=speed_mps, time_s=time_s))
    return min(laps, key=lambda lap: lap.time_s[-1])


def line_point_positions(n_points: int) -> np.ndarray:
    """Fractional centre-line indices of the line's base points: evenly spaced (≈ LINE_STEP_POINTS apart) from the
    start to the finish point.

    The QPs' finite differences assume even spacing; a short last segment would put a spurious kink (and so a braking
    zone) just before the finish, making the "limit" beatable.
    """
    n_segments = max(1, round((n_points - 1) / LINE_STEP_POINTS))
    return np.linspace(0.0, n_points - 1, n_segments + 1)


def _interpolate_rows(values: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Rows of `values` linearly interpolated at fractional row `positions` (exact at integer positions)."""
    lower = np.minimum(np.floor(positions).astype(np.int64), len(values) - 2)
    fraction = (positions - lower)[:, None]
    return values[lower] * (1.0 - fraction) + values[lower + 1] * fraction


def _right_normals(centerline_m: np.ndarray) -> np.ndarray:
    """(N, 2) unit planar right normals (−t_z, t_x) of the centre line; at the ends, those of the end segments."""
    delta = np.diff(centerline_m[:, [0, 2]], axis=0)
    seg_tangent = delta / np.linalg.norm(delta, axis=1, keepdims=True)
    tangent = np.concatenate([seg_tangent[:1], seg_tangent[:-1] + seg_tangent[1:], seg_tangent[-1:]])
    tangent /= np.linalg.norm(tangent, axis=1, keepdims=True)
    return np.stack([-tangent[:, 1], tangent[:, 0]], axis=1)


def _slopes(track: Track, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """cos θ and sin θ of the centre-line segment starting at each index (the last: the last segment)."""
    delta = np.diff(track.centerline_m, axis=0)
    slope = np.arctan2(delta[:, 1], np.hypot(delta[:, 0], delta[:, 2]))
    seg = np.minimum(np.floor(positions).astype(np.int64), len(delta) - 1)
    return np.cos(slope[seg]), np.sin(slope[seg])


def minimum_curvature_offsets(centre_xz: np.ndarray, normal_xz: np.ndarray, limit_m: float) -> np.ndarray:
    """argmin_n Σ |second difference of (centre + n · normal)|² s.t. |n| ≤ limit, n_0 = 0."""
    return _least_difference_offsets(centre_xz, normal_xz, limit_m, order=2)


def shortest_path_offsets(centre_xz: np.ndarray, normal_xz: np.ndarray, limit_m: float) -> np.ndarray:
    """argmin_n Σ |first difference of (centre + n · normal)|² s.t. |n| ≤ limit, n_0 = 0."""
    return _least_difference_offsets(centre_xz, normal_xz, limit_m, order=1)


def _least_difference_offsets(centre_xz: np.ndarray, normal_xz: np.ndarray, limit_m: float, order: int) -> np.ndarray:
    """Box-constrained QP min |D (centre + n · normal)|², D the finite difference of `order` (1 or 2).

    The Hessian H_ij = (Dᵀ D)_ij (N_i · N_j) has bandwidth `order` ≤ 2, and so does every principal submatrix,
    so each active-set step is a banded Cholesky solve, O(M).
    """
    m = len(centre_xz)
    if m < order + 1:
        return np.zeros(m)
    stencil = (1.0, -2.0, 1.0) if order == 2 else (-1.0, 1.0)
    h0, h1, h2 = _difference_normal_bands(normal_xz, stencil)
    n_rows = m - len(stencil) + 1
    d_centre = sum(c * centre_xz[a : a + n_rows] for a, c in enumerate(stencil))
    dt_d_centre = np.zeros_like(centre_xz)
    for a, c in enumerate(stencil):
        dt_d_centre[a : a + n_rows] += c * d_centre
    gradient_at_zero = np.einsum("ij,ij->i", dt_d_centre, normal_xz)
    lower, upper = np.full(m, -limit_m), np.full(m, limit_m)
    lower[0] = upper[0] = 0.0
    fixed = np.zeros(m, dtype=bool)
    fixed[0] = True
    offsets = np.zeros(m)
    for _ in range(10 * m):
        free = np.flatnonzero(~fixed)
        offsets_fixed_only = np.where(fixed, offsets, 0.0)
        rhs = -(gradient_at_zero + _banded_matvec(h0, h1, h2, offsets_fixed_only))[free]
        offsets[free] = _solve_free_banded(h0, h1, h2, free, rhs)
        violating = ~fixed & ((offsets < lower - 1e-9) | (offsets > upper + 1e-9))
        if violating.any():
            offsets = np.clip(offsets, lower, upper)
            fixed |= violating
            continue
        # KKT: a variable held at its upper bound needs a gradient ≤ 0 there, at its lower bound ≥ 0.
        grad = _banded_matvec(h0, h1, h2, offsets) + gradient_at_zero
        at_upper = fixed & (offsets >= upper - 1e-12) & (grad > 1e-9)
        at_lower = fixed & (offsets <= lower + 1e-12) & (grad < -1e-9)
        release = (at_upper | at_lower) & (np.arange(m) > 0)
        if not release.any():
            break
        fixed &= ~release
    return offsets


def _difference_normal_bands(
    normal_xz: np.ndarray, stencil: tuple[float, ...]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bands (diagonal, +1, +2) of H = (Dᵀ D) ∘ (N Nᵀ), D the finite-difference operator with this stencil."""
    m = len(normal_xz)
    n_rows = m - len(stencil) + 1
    k0, k1, k2 = np.zeros(m), np.zeros(m - 1), np.zeros(m - 2)
    for a in range(len(stencil)):
        k0[a : a + n_rows] += stencil[a] ** 2
    for a in range(len(stencil) - 1):
        k1[a : a + n_rows] += stencil[a] * stencil[a + 1]
    if len(stencil) == 3:
        k2[:n_rows] += stencil[0] * stencil[2]
    dot1 = np.einsum("ij,ij->i", normal_xz[:-1], normal_xz[1:])
    dot2 = np.einsum("ij,ij->i", normal_xz[:-2], normal_xz[2:])
    return k0 * np.einsum("ij,ij->i", normal_xz, normal_xz) + 1e-9, k1 * dot1, k2 * dot2


@numba.njit(cache=True)
def _banded_matvec(h0: np.ndarray, h1: np.ndarray, h2: np.ndarray, x: np.ndarray) -> np.ndarray:
    m = x.shape[0]
    y = h0 * x
    for i in range(m - 1):
        y[i] += h1[i] * x[i + 1]
        y[i + 1] += h1[i] * x[i]
    for i in range(m - 2):
        y[i] += h2[i] * x[i + 2]
        y[i + 2] += h2[i] * x[i]
    return y


@numba.njit(cache=True)
def _solve_free_banded(h0: np.ndarray, h1: np.ndarray, h2: np.ndarray, free: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """Solve H[free, free] x = rhs by a bandwidth-2 Cholesky factorisation (L has two sub-diagonals)."""
    k = free.shape[0]
    diag, sub1, sub2 = np.zeros(k), np.zeros(k), np.zeros(k)  # H_ff entries: (i, i), (i, i−1), (i, i−2)
    for i in range(k):
        diag[i] = h0[free[i]]
        if i >= 1 and free[i] - free[i - 1] == 1:
            sub1[i] = h1[free[i - 1]]
        elif i >= 1 and free[i] - free[i - 1] == 2:
            sub1[i] = h2[free[i - 1]]
        if i >= 2 and free[i] - free[i - 2] == 2:
            sub2[i] = h2[free[i - 2]]
    l0, l1, l2 = np.zeros(k), np.zeros(k), np.zeros(k)  # L entries (i, i), (i, i−1), (i, i−2)
    for i in range(k):
        if i >= 2:
            l2[i] = sub2[i] / l0[i - 2]
        if i >= 1:
            l1[i] = (sub1[i] - (l2[i] * l1[i - 1] if i >= 2 else 0.0)) / l0[i - 1]
        l0[i] = np.sqrt(diag[i] - l1[i] ** 2 - l2[i] ** 2)
    y = np.zeros(k)
    for i in range(k):  # L y = rhs
        acc = rhs[i]
        if i >= 1:
            acc -= l1[i] * y[i - 1]
        if i >= 2:
            acc -= l2[i] * y[i - 2]
        y[i] = acc / l0[i]
    x = np.zeros(k)
    for i in range(k - 1, -1, -1):  # Lᵀ x = y
        acc = y[i]
        if i + 1 < k:
            acc -= l1[i + 1] * x[i + 1]
        if i + 2 < k:
            acc -= l2[i + 2] * x[i + 2]
        x[i] = acc / l0[i]
    return x


def path_curvature_per_m(points_xz: np.ndarray) -> np.ndarray:
    """Unsigned curvature of the circle through each point and its neighbours (0 at the ends)."""
    a, b, c = points_xz[:-2], points_xz[1:-1], points_xz[2:]
    ab, bc, ca = (np.linalg.norm(b - a, axis=1), np.linalg.norm(c - b, axis=1), np.linalg.norm(a - c, axis=1))
    cross = np.abs((b - a)[:, 0] * (c - a)[:, 1] - (b - a)[:, 1] * (c - a)[:, 0])
    curvature = 2 * cross / np.maximum(ab * bc * ca, 1e-12)
    return np.concatenate([[0.0], curvature, [0.0]])


def _cornering_speed_limit(curvature: float, cos_slope: float, car: CarParams, params: np.ndarray) -> float:
    """Highest speed at which the car can follow the curvature: grip (v² κ ≤ μ g cos θ) and steering limit."""
    if curvature <= 1e-9:
        return np.inf
    grip_limit = np.sqrt(car.grip_coefficient * car.gravity_mps2 * cos_slope / curvature)
    if curvature >= car.max_steer_curvature_per_m:
        return min(grip_limit, 1.0)  # only at walking pace can the car turn this tightly
    steer_limit = car.steer_reference_speed_mps * np.sqrt(car.max_steer_curvature_per_m / curvature - 1.0)
    assert abs(max_steer_curvature_per_m(steer_limit, params) - curvature) < 1e-6 * max(1.0, curvature)
    return min(grip_limit, steer_limit)


def speed_profile(line_xz: np.ndarray, cos_slope: np.ndarray, sin_slope: np.ndarray, car: CarParams) -> np.ndarray:
    """Fastest speed at each line point from standstill: min of the cornering, forward and backward limits."""
    params = car.as_array()
    curvature = path_curvature_per_m(line_xz)
    ds_m = np.linalg.norm(np.diff(line_xz, axis=0), axis=1)
    m = len(line_xz)
    v_corner = np.array([_cornering_speed_limit(curvature[i], cos_slope[i], car, params) for i in range(m)])
    grip = car.grip_coefficient * car.gravity_mps2 * cos_slope
    gravity_along = -car.gravity_mps2 * sin_slope * cos_slope
    speed = np.zeros(m)
    for i in range(m - 1):  # forward: engine, limited by the grip left after cornering
        v = speed[i]
        lateral = v * v * curvature[i]
        tyre = min(drive_envelope_mps2(v, params), np.sqrt(max(grip[i] ** 2 - lateral**2, 0.0)))
        accel = tyre - resistance_mps2(v, params) + gravity_along[i]
        speed[i + 1] = min(np.sqrt(max(v * v + 2 * ds_m[i] * accel, 0.0)), v_corner[i + 1])
    for i in range(m - 2, -1, -1):  # backward: the car must be able to brake down to the next point's speed
        v = speed[i + 1]
        lateral = v * v * curvature[i + 1]
        tyre = min(car.brake_decel_mps2, np.sqrt(max(grip[i + 1] ** 2 - lateral**2, 0.0)))
        decel = tyre + resistance_mps2(max(v, speed[i]), params) - gravity_along[i]
        speed[i] = min(speed[i], np.sqrt(max(v * v + 2 * ds_m[i] * max(decel, 0.0), 0.0)))
    return speed


def reference_points_per_metre() -> float:
    return 1.0 / (POINT_SPACING_M * LINE_STEP_POINTS)

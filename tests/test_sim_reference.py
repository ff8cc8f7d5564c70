"""The heuristic quasi-steady lap of reference.py (the initial lines and speeds of optimal.py's solver).

Its race time is no bound and no yardstick any more: test_sim_optimal.py tests the optimal and achieved times."""

from __future__ import annotations

import numpy as np
import pytest

from trackrl.config import EnvironmentConfig
from trackrl.sim.car import DEFAULT_CAR
from trackrl.sim.env import VecRaceEnv
from trackrl.sim.reference import (
    line_point_positions,
    minimum_curvature_offsets,
    path_curvature_per_m,
    reference_lap,
)
from trackrl.sim.track import Track, load_track, resample_centerline

LONG_RACE = EnvironmentConfig(cutoff_rollout_if_no_vcp_passed_within_duration_ms=300_000)


def test_reference_on_a_straight_matches_full_throttle_in_the_sim() -> None:
    # On a straight, full throttle is the optimal driving: the reference must be at most the simulated time
    # (which is rounded up to the 10 ms tick) and within the discretisation error of it, plus the gearbox's pauses
    # that the heuristic does not model: at most one shift duration per upshift crossed.
    x = np.linspace(0.0, 600.0, 1201)
    track = Track("straight", np.stack([x, np.zeros_like(x), np.zeros_like(x)], axis=1), 16.0)
    env = VecRaceEnv(track, 1, env_config=LONG_RACE, render_images=False)
    for _ in range(2000):
        result = env.step(np.array([0]))
        if result.terminated[0]:
            break
    reference = reference_lap(track)
    upshifts = int(np.sum(DEFAULT_CAR.gear_top_speeds_mps()[:4] <= result.speed_mps[0]))
    shift_pauses_ms = upshifts * DEFAULT_CAR.shift_duration_s * 1000
    assert upshifts >= 3
    assert reference.race_time_ms <= result.race_time_ms[0] < reference.race_time_ms * 1.01 + shift_pauses_ms
    np.testing.assert_allclose(reference.line_m[:, 2], 0.0, atol=1e-6)  # the straight line is optimal


def test_climbing_is_slower_than_flat() -> None:
    x = np.linspace(0.0, 500.0, 1001)
    flat = Track("flat", np.stack([x, np.zeros_like(x), np.zeros_like(x)], axis=1), 16.0)
    climb = Track("climb", np.stack([x, 0.06 * x, np.zeros_like(x)], axis=1), 16.0)
    assert reference_lap(climb).race_time_ms > reference_lap(flat).race_time_ms


def test_minimum_curvature_line_cuts_the_corner_within_the_road() -> None:
    # 90 degree right turn of radius 30 m between two straights, 16 m road.
    from trackrl.sim.tracks import Arc, Straight, build_centerline

    points = resample_centerline(build_centerline([Straight(80), Arc(30, 90), Straight(80)]), 0.5)
    track = Track("corner", points, 16.0)
    reference = reference_lap(track)
    limit_m = 16.0 / 2 - DEFAULT_CAR.car_half_width_m
    n = len(track.centerline_m)
    positions = line_point_positions(n)  # evenly spaced, about one line point every 2 m, ending at the finish
    assert positions[0] == 0 and positions[-1] == n - 1 and np.ptp(np.diff(positions)) < 1e-9
    centre_x = np.interp(positions, np.arange(n), track.centerline_m[:, 0])
    centre_z = np.interp(positions, np.arange(n), track.centerline_m[:, 2])
    line_xz, centre_xz = reference.line_m[:, [0, 2]], np.stack([centre_x, centre_z], axis=1)
    offsets = np.linalg.norm(line_xz - centre_xz, axis=1)
    assert offsets.max() <= limit_m + 1e-6 and offsets[0] == pytest.approx(0.0, abs=1e-9)
    line_curvature = path_curvature_per_m(line_xz)[1:-1].max()
    assert line_curvature < 0.8 / 30.0  # clearly straighter than the 30 m centre-line radius
    # Grip limit respected everywhere along the line; start from standstill.
    kappa = path_curvature_per_m(line_xz)
    grip = DEFAULT_CAR.grip_coefficient * DEFAULT_CAR.gravity_mps2
    assert reference.speed_mps[0] == 0.0
    assert np.all(reference.speed_mps**2 * kappa <= grip * (1 + 1e-9))
    assert np.all(np.diff(reference.time_s) > 0)


def test_minimum_curvature_solution_is_optimal_for_a_small_problem() -> None:
    # Compare with brute force: random feasible perturbations never lower the objective.
    rng = np.random.default_rng(0)
    angle = np.linspace(0, np.pi / 2, 25)
    centre = np.stack([40 * np.sin(angle), 40 * (1 - np.cos(angle))], axis=1)
    tangent = np.gradient(centre, axis=0)
    tangent /= np.linalg.norm(tangent, axis=1, keepdims=True)
    normal = np.stack([-tangent[:, 1], tangent[:, 0]], axis=1)
    offsets = minimum_curvature_offsets(centre, normal, 3.0)

    def objective(n: np.ndarray) -> float:
        p = centre + n[:, None] * normal
        return float(np.sum((p[:-2] - 2 * p[1:-1] + p[2:]) ** 2))

    assert np.all(np.abs(offsets) <= 3.0 + 1e-9) and offsets[0] == 0.0
    best = objective(offsets)
    for _ in range(200):
        trial = np.clip(offsets + rng.normal(0, 0.05, len(offsets)), -3.0, 3.0)
        trial[0] = 0.0
        assert objective(trial) >= best - 1e-9


def test_reference_is_cached() -> None:
    track = load_track("a01")
    assert reference_lap(track) is reference_lap(load_track("a01"))


def test_shortest_path_hugs_the_inside_of_a_corner() -> None:
    from trackrl.sim.reference import shortest_path_offsets

    angle = np.linspace(0, np.pi / 2, 60)  # quarter circle of radius 40 m turning right, 14 m usable width
    centre = np.stack([40 * np.sin(angle), 40 * (1 - np.cos(angle))], axis=1)
    normal = np.stack([-np.sin(angle), np.cos(angle)], axis=1)  # right normal (−t_z, t_x): towards the centre
    offsets = shortest_path_offsets(centre, normal, 7.0)
    path = centre + offsets[:, None] * normal
    assert np.linalg.norm(np.diff(path, axis=0), axis=1).sum() < np.linalg.norm(np.diff(centre, axis=0), axis=1).sum()
    assert offsets[len(offsets) // 2] == pytest.approx(7.0)  # on the inside limit at the apex


@pytest.mark.parametrize("final_straight_m", [40.0, 40.5, 41.0, 41.5])
def test_reference_never_brakes_on_a_final_straight(final_straight_m: float) -> None:
    # Whatever the number of centre-line points modulo the line spacing, the finish must not look like a corner:
    # a braking zone there would make the heuristic lap slower than needed by simply keeping the throttle down.
    from trackrl.sim.tracks import Arc, Straight, build_centerline

    points = resample_centerline(build_centerline([Straight(60), Arc(40, 60), Straight(final_straight_m)]), 0.5)
    reference = reference_lap(Track("ends_straight", points, 16.0))
    last_30_m = reference.line_m.shape[0] - 15  # line points are about 2 m apart
    assert np.all(np.diff(reference.speed_mps[last_30_m:]) >= 0.0)

"""The yardstick: optimal (model) lap time by optimal control, and that line driven in the simulator (achieved).

Solves are cached on disk per track (lap_reference.py), so only the first run on a machine pays for them.
"""

from __future__ import annotations

import numpy as np
import pytest

from trackrl.sim.achieved import fine_control_time_ms, fine_controls, target_speed_mps
from trackrl.sim.car import DEFAULT_CAR
from trackrl.sim.drivers import braking_driver_actions, follow_centerline_actions
from trackrl.sim.env import VecRaceEnv
from trackrl.sim.lap_reference import RACE_CUTOFF_KEY, LapReference, _read_cache, lap_reference, race_cutoff_warning
from trackrl.sim.optimal import (
    MESH_TOLERANCE,
    centreline_geometry,
    initial_guess,
    interpolate_solution,
    solve_on_mesh,
    solve_optimal_lap,
    time_line,
    uniform_mesh,
)
from trackrl.sim.reference import speed_profile
from trackrl.sim.rollout import simulate_actions
from trackrl.sim.track import Track, load_track

FAST_TRACKS = ["easy", "a01"]
SLOW_TRACKS = [pytest.param(name, marks=pytest.mark.slow) for name in ("hills", "technical")]
# Measured on this car (see issue 10): the controller's 50 ms bang-bang steering slides where the model's continuous
# curvature does not, so the 3 % goal between achieved and optimal is not met on every track; the same
# controller with finer controls (5 steering levels, 20 ms) gets within it (test below).
GAP_GOAL = 0.03


def best_scripted_time_ms(track: Track) -> int:
    """Best finish of several scripted drivers (line follower and braking drivers with several margins)."""
    drivers = [lambda f, c: follow_centerline_actions(f, c)] + [
        (lambda f, c, g=g: braking_driver_actions(f, c, grip_margin=g)) for g in (0.7, 0.85, 1.0)
    ]
    env = VecRaceEnv(track, len(drivers), render_images=False)
    _, floats = env.reset()
    for _ in range(4000):
        actions = np.concatenate([driver(floats[i : i + 1], env.env_config) for i, driver in enumerate(drivers)])
        result = env.step(actions)
        floats = result.floats
        if np.all(result.terminated | result.truncated):
            break
    assert result.finished.any()
    return int(result.race_time_ms[result.finished].min())


@pytest.fixture(scope="module", params=FAST_TRACKS + SLOW_TRACKS)
def track_and_reference(request: pytest.FixtureRequest) -> tuple:
    track = load_track(request.param)
    return track, lap_reference(track)


MESH_AGREEMENT = 0.002  # the test: the optimal time at two mesh sizes differs by < 0.2 %
TWO_MESHES_M = (4.0, 2.0)


@pytest.mark.parametrize("name", [*FAST_TRACKS, "hills", pytest.param("technical", marks=pytest.mark.slow)])
def test_optimal_time_at_two_mesh_sizes_agree(name: str) -> None:
    """Two NLPs solved independently, one per explicit mesh size (not the solver's own refinement history): each
    from the minimum-curvature initial line on its own mesh, except technical, where IPOPT needs minutes from that
    line and each mesh starts from the 8 m solution resampled. Both agree within 0.2 %, and with the cached time."""
    track = load_track(name)
    geometry = centreline_geometry(track, DEFAULT_CAR)
    seed = None
    if name == "technical":
        coarse_s = uniform_mesh(geometry.length_m, 8.0)
        seed = solve_on_mesh(geometry, coarse_s, initial_guess(geometry, coarse_s, "minimum_curvature", DEFAULT_CAR),
                             DEFAULT_CAR)  # fmt: skip
    times_s = []
    for mesh_m in TWO_MESHES_M:
        s_m = uniform_mesh(geometry.length_m, mesh_m)
        guess = initial_guess(geometry, s_m, "minimum_curvature", DEFAULT_CAR) if seed is None \
            else interpolate_solution(seed, s_m)  # fmt: skip
        lap = solve_on_mesh(geometry, s_m, guess, DEFAULT_CAR)
        assert len(lap.s_m) == len(s_m) and abs(np.diff(s_m).mean() - mesh_m) < 0.05 * mesh_m
        times_s.append(lap.lap_time_s)
    coarse_s, fine_s = times_s
    assert abs(coarse_s - fine_s) / fine_s < MESH_AGREEMENT
    reference = lap_reference(track)  # optimal_ms also holds the upshifts' loss of drive, which no NLP contains
    assert abs(reference.optimal_ms / 1000 - reference.shift_penalty_s - fine_s) / fine_s < MESH_AGREEMENT


def test_optimal_is_at_most_achieved_which_is_at_most_scripted_drivers(track_and_reference: tuple) -> None:
    track, reference = track_and_reference
    assert reference.achieved_ms is not None
    assert reference.optimal_ms <= reference.achieved_ms <= best_scripted_time_ms(track)


# Geared car (shift losses inside optimal_ms): the 50 ms bang-bang steering slides at speed (full lock asks more
# than the tyres give), which costs drive the model's continuous curvature keeps; a progress reward in the
# controller's cost (weights 0.5 and 2 per m) made it slower; a target speed 2-3 % below v* where the optimum
# slows down helps (achieved.py). On easy (no braking, full throttle throughout) the whole gap is drive lost while
# the steering pulses slide, so it is the steering model's, not only the controller's.
MEASURED_GAPS = "achieved is 2.7 % (a01), 4.1 % (easy), 5.4 % (hills), 5.7 % (technical) above optimal today"


GAP_NOT_MET = pytest.mark.xfail(reason=MEASURED_GAPS, strict=True)


@pytest.mark.parametrize("name", ["a01", pytest.param("easy", marks=GAP_NOT_MET),
                                  pytest.param("hills", marks=[GAP_NOT_MET, pytest.mark.slow]),
                                  pytest.param("technical", marks=[GAP_NOT_MET, pytest.mark.slow])])  # fmt: skip
def test_achieved_within_3_percent_of_optimal(name: str) -> None:
    reference = lap_reference(load_track(name))
    assert reference.gap is not None and reference.gap < GAP_GOAL


def test_finer_controls_drive_the_simulator_within_3_percent_of_the_optimum() -> None:
    """The optimum is reachable by the simulator's car: the achieved-time controller with 5 steering levels every
    20 ms (not a keyboard's 3 every 50 ms) finishes within 3 % of it, and not faster than it (measured on easy, the
    fast track with the largest 12-action gap: +0.9 % against +4.1 %; a01 +1.3 % against +2.7 %). This catches
    optimal.py and car.py drifting apart."""
    track = load_track("easy")
    lap = solve_optimal_lap(track)
    fine_ms = fine_control_time_ms(track, lap, steer_levels=5, decision_ms=20)
    assert fine_ms is not None
    assert lap.optimal_ms <= fine_ms < (1 + GAP_GOAL) * lap.optimal_ms


def test_fine_controls_are_gas_coast_brake_times_even_steering_levels() -> None:
    controls = fine_controls(steer_levels=5, decision_ms=20)
    assert controls.ticks == 2 and len(controls.steer) == 15
    np.testing.assert_allclose(np.unique(controls.steer), [-1.0, -0.5, 0.0, 0.5, 1.0])
    assert not (controls.gas & controls.brake).any() and controls.gas.sum() == controls.brake.sum() == 5
    assert controls.steer[controls.reverse(1.0)] == 1.0 and controls.brake[controls.reverse(-1.0)]
    for steer_levels, decision_ms in ((1, 20), (5, 15), (5, 0)):  # no full lock to reverse with; not whole ticks
        with pytest.raises(ValueError, match=r"steer_levels|decision_ms"):
            fine_controls(steer_levels, decision_ms)


def test_target_speed_scales_everywhere_or_only_where_the_optimum_slows() -> None:
    # v* = 0, 10, 20, 15, 15, 25 at s = 0..5 m: the central difference dv*/ds is < 0 only at s = 3 (−2.5 /m).
    s_m, speed = np.arange(6.0), np.array([0.0, 10.0, 20.0, 15.0, 15.0, 25.0])
    np.testing.assert_allclose(target_speed_mps(s_m, speed, 0.9, "everywhere"), 0.9 * speed)
    np.testing.assert_allclose(target_speed_mps(s_m, speed, 0.9, "slowing"), [0.0, 10.0, 20.0, 13.5, 15.0, 25.0])


def test_achieved_actions_reproduce_the_race_time_exactly(track_and_reference: tuple) -> None:
    """What `trackrl replay` does: re-simulate the action list through VecRaceEnv with the default config."""
    track, reference = track_and_reference
    race = simulate_actions(track, reference.achieved_actions)
    assert race.finished and race.race_time_ms == reference.achieved_ms
    assert race.n_actions == len(reference.achieved_actions)


def test_trackrl_replay_reproduces_the_achieved_race_time(tmp_path, capsys) -> None:
    """The achieved action list saved as a best run: `trackrl replay` re-simulates it to the same millisecond."""
    from trackrl.cli import main
    from trackrl.config import EnvironmentConfig, RewardsConfig
    from trackrl.train.best_runs import save_best_run

    track = load_track("easy")
    reference = lap_reference(track)
    race = simulate_actions(track, reference.achieved_actions)
    folder = save_best_run(tmp_path / "run", "easy", "easy", None, reference.achieved_ms,
                           np.asarray(reference.achieved_actions), race.positions_m, EnvironmentConfig(),
                           RewardsConfig(), frames=1)  # fmt: skip
    assert main(["replay", str(folder)]) == 0
    assert f"= saved {reference.achieved_ms / 1000:.3f} s" in capsys.readouterr().out


def test_optimal_includes_a_penalty_per_upshift_of_its_speed_profile() -> None:
    """optimal_ms = the NLP's time + τ (1 − u / v_peak) per upshift, counted with the simulator's gearbox rules."""
    from trackrl.sim.optimal import shift_penalty_s

    car = DEFAULT_CAR
    tau, (u1, u2) = car.shift_duration_s, car.gear_top_speeds_mps()[:2]
    # Up through 1st -> 2nd to a peak of 40 m/s, brake to 20 m/s (down to 1st below 0.9 u1), up again to 30 m/s.
    profile = np.concatenate([np.linspace(0, 40, 50), np.linspace(40, 20, 20), np.linspace(20, 30, 20)])
    penalty, upshifts = shift_penalty_s(profile, car)
    assert upshifts == 2 and u2 > 40
    assert penalty == pytest.approx(tau * (1 - u1 / 40) + tau * (1 - u1 / 30), rel=1e-9)
    # A dip that stays above 0.9 u1 keeps 2nd gear: no second upshift.
    assert shift_penalty_s(np.concatenate([np.linspace(0, 40, 50), np.linspace(40, 26, 20)]), car)[1] == 1
    reference = lap_reference(load_track("easy"))
    assert reference.upshifts >= 3 and 0 < reference.shift_penalty_s <= reference.upshifts * tau
    assert reference.optimal_ms == int((reference.mesh_history[-1][1] + reference.shift_penalty_s) * 1000)


def smooth_bumps(s_m: np.ndarray, rng: np.random.Generator, n_bumps: int) -> np.ndarray:
    """A smooth random lateral perturbation: a sum of Gaussian bumps (width 10-60 m, ±0.2-1.5 m) along s."""
    bump = np.zeros_like(s_m)
    for _ in range(n_bumps):
        centre_m, width_m = rng.uniform(20, s_m[-1] - 20), rng.uniform(10, 60)
        bump += rng.choice([-1.0, 1.0]) * rng.uniform(0.2, 1.5) * np.exp(-0.5 * ((s_m - centre_m) / width_m) ** 2)
    return bump


def perturbed(offset_m: np.ndarray, bump_m: np.ndarray, wall_offset_m: float) -> np.ndarray:
    line = np.clip(offset_m + bump_m, -wall_offset_m, wall_offset_m)
    line[0] = 0.0  # the standing start is on the centre line
    return line


@pytest.mark.parametrize("name", FAST_TRACKS)
def test_no_nearby_line_is_faster_in_the_model(name: str) -> None:
    """Random smooth lateral perturbations of the optimal line (8 m mesh), each timed by the same model with the
    line pinned (speeds and headings re-optimised), are never faster than the optimum."""
    track = load_track(name)
    geometry = centreline_geometry(track, DEFAULT_CAR)
    s_m = uniform_mesh(geometry.length_m, 8.0)
    lap = solve_on_mesh(geometry, s_m, initial_guess(geometry, s_m, "minimum_curvature", DEFAULT_CAR), DEFAULT_CAR)
    rng = np.random.default_rng(0)
    for n_bumps in (1, 1, 2, 3):
        offset = perturbed(lap.offset_m, smooth_bumps(s_m, rng, n_bumps), geometry.wall_offset_m)
        assert np.abs(offset - lap.offset_m).max() > 0.05  # the perturbation is real
        assert time_line(track, lap, offset) >= lap.lap_time_s * (1 - 1e-6)


def quasi_steady_lap_time_s(geometry, s_m: np.ndarray, offset_m: np.ndarray) -> float:
    """An independent timing of a line (no IPOPT): reference.py's forward-backward speed profile on the car's limits
    (engine, drag, rolling, brakes, friction circle with slope, steering limit), Σ 2 Δs / (v_i + v_{i+1})."""
    at = geometry.at(s_m)
    line_xz = np.stack([at["x"] - offset_m * np.sin(at["heading"]), at["z"] + offset_m * np.cos(at["heading"])], 1)
    speed = speed_profile(line_xz, at["cos_slope"], at["sin_cos_slope"] / np.maximum(at["cos_slope"], 1e-9),
                          DEFAULT_CAR)  # fmt: skip
    step_m = np.linalg.norm(np.diff(line_xz, axis=0), axis=1)
    return float(np.sum(2 * step_m / np.maximum(speed[:-1] + speed[1:], 1e-9)))


@pytest.mark.parametrize("name", [*FAST_TRACKS, "hills"])
def test_no_nearby_line_is_faster_by_an_independent_speed_profile(name: str) -> None:
    """Twenty random smooth perturbations of the cached optimal line, the line itself and the centre line, timed by a
    forward-backward speed profile on the same car limits, never beat the optimum by more than the solver's
    tolerance (0.1 %). (Measured: that profile times the optimal line itself 1.5 % (easy), 2.3 % (a01) above the
    optimum, its quasi-steady turns being stricter than the model's transient heading; among nearby lines it finds
    some up to 0.4 % faster than the optimal line by its own count (easy, 40 perturbations), none faster than the
    optimum.)"""
    track = load_track(name)
    reference = lap_reference(track)
    geometry = centreline_geometry(track, DEFAULT_CAR)
    s_m, offset_m = np.array(reference.line_s_m), np.array(reference.line_offset_m)
    optimum_s = reference.optimal_ms / 1000
    rng = np.random.default_rng(1)
    lines = [offset_m, np.zeros_like(offset_m)] + [
        perturbed(offset_m, smooth_bumps(s_m, rng, int(rng.integers(1, 4))), geometry.wall_offset_m) for _ in range(20)
    ]
    times_s = np.array([quasi_steady_lap_time_s(geometry, s_m, line) for line in lines])
    assert times_s.min() >= optimum_s * (1 - MESH_TOLERANCE)
    assert times_s[0] < times_s[1]  # the optimal line beats the centre line by this count too


def test_cache_round_trip_and_corrupt_entry(tmp_path) -> None:
    from dataclasses import asdict

    from trackrl.atomic import atomic_write_json

    reference = lap_reference(load_track("easy"))
    path = tmp_path / "entry.json"
    atomic_write_json(path, asdict(reference))
    assert _read_cache(path) == reference
    path.write_text("{not json", encoding="utf-8")
    assert _read_cache(path) is None  # recomputed, never a traceback


def test_a_track_slower_than_the_race_cutoff_is_warned_not_refused() -> None:
    """The achieved time is a driver's, not a bound: a map it cannot finish in time gets a warning (train's start
    messages, `track info`'s race_cutoff_warning), falling back on the model's time when the driver did not finish."""
    warning = race_cutoff_warning("long_map", optimal_ms=290_000, achieved_ms=320_900, cutoff_ms=300_000)
    assert warning is not None and RACE_CUTOFF_KEY in warning and "320.9 s" in warning and "long_map" in warning
    assert "optimal (model)" in race_cutoff_warning("long_map", optimal_ms=310_000, achieved_ms=None, cutoff_ms=300_000)
    assert race_cutoff_warning("a01", optimal_ms=23_000, achieved_ms=24_000, cutoff_ms=300_000) is None


def test_lap_reference_is_a_dataclass_of_plain_values() -> None:
    reference = lap_reference(load_track("easy"))
    assert isinstance(reference, LapReference) and isinstance(reference.achieved_actions, list)

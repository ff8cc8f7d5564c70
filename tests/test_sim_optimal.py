"""The yardstick: optimal (model) lap time by optimal control, and that line driven in the simulator (achieved).

Solves are cached on disk per track (lap_reference.py), so only the first run on a machine pays for them.
"""

from __future__ import annotations

import numpy as np
import pytest

from trackrl.errors import UserError
from trackrl.sim.car import DEFAULT_CAR
from trackrl.sim.commands import RACE_CUTOFF_KEY, race_cutoff_warning
from trackrl.sim.drivers import braking_driver_actions, follow_centerline_actions
from trackrl.sim.env import VecRaceEnv
from trackrl.sim.lap_reference import LapReference, _read_cache, lap_reference
from trackrl.sim.optimal import (
    centreline_geometry,
    initial_guess,
    solve_on_mesh,
    time_line,
    uniform_mesh,
)
from trackrl.sim.rollout import simulate_actions
from trackrl.sim.track import Track, load_track
from trackrl.train.run import check_race_cutoff

FAST_TRACKS = ["easy", "a01"]
SLOW_TRACKS = [pytest.param(name, marks=pytest.mark.slow) for name in ("hills", "technical")]
# Measured on this car (see issue 10): the controller's 50 ms bang-bang steering slides where the model's continuous
# curvature does not, so the 3 % goal between achieved and optimal is not met yet.
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


def test_mesh_refinement_converged(track_and_reference: tuple) -> None:
    _, reference = track_and_reference
    (coarse_m, coarse_s), (fine_m, fine_s) = reference.mesh_history[-2:]
    assert fine_m == coarse_m / 2
    assert abs(fine_s - coarse_s) / fine_s < 0.002


def test_optimal_is_at_most_achieved_which_is_at_most_scripted_drivers(track_and_reference: tuple) -> None:
    track, reference = track_and_reference
    assert reference.achieved_ms is not None
    assert reference.optimal_ms <= reference.achieved_ms <= best_scripted_time_ms(track)


# Geared car (shift losses inside optimal_ms): the 50 ms bang-bang steering slides at speed (full lock asks more
# than the tyres give), which costs drive the model's continuous curvature keeps; a progress reward in the
# controller's cost (weights 0.5 and 2 per m) made it slower; a target speed 3 % below v* helps (achieved.py).
MEASURED_GAPS = "achieved is 3.8 % (a01), 4.1 % (easy), 6.5 % (hills), 6.4 % (technical) above optimal today"


@pytest.mark.xfail(reason=MEASURED_GAPS, strict=False)
def test_achieved_within_3_percent_of_optimal(track_and_reference: tuple) -> None:
    _, reference = track_and_reference
    assert reference.gap is not None and reference.gap < GAP_GOAL


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


def test_no_nearby_line_is_faster() -> None:
    """Random smooth lateral perturbations of the optimal line, timed by the same model, are never faster."""
    track = load_track("easy")
    geometry = centreline_geometry(track, DEFAULT_CAR)
    s_m = uniform_mesh(geometry.length_m, 8.0)
    lap = solve_on_mesh(geometry, s_m, initial_guess(geometry, s_m, "minimum_curvature", DEFAULT_CAR), DEFAULT_CAR)
    rng = np.random.default_rng(0)
    for _ in range(3):
        centre_m, width_m = rng.uniform(20, geometry.length_m - 20), rng.uniform(15, 60)
        bump = rng.choice([-1.0, 1.0]) * 0.6 * np.exp(-0.5 * ((s_m - centre_m) / width_m) ** 2)
        offset = np.clip(lap.offset_m + bump, -geometry.wall_offset_m, geometry.wall_offset_m)
        offset[0] = 0.0
        assert np.abs(offset - lap.offset_m).max() > 0.05  # the perturbation is real
        assert time_line(track, lap, offset) >= lap.lap_time_s * (1 - 1e-6)


def test_cache_round_trip_and_corrupt_entry(tmp_path) -> None:
    from dataclasses import asdict

    from trackrl.atomic import atomic_write_json

    reference = lap_reference(load_track("easy"))
    path = tmp_path / "entry.json"
    atomic_write_json(path, asdict(reference))
    assert _read_cache(path) == reference
    path.write_text("{not json", encoding="utf-8")
    assert _read_cache(path) is None  # recomputed, never a traceback


def test_a_track_slower_than_the_race_cutoff_is_refused_at_train_and_warned_in_info() -> None:
    with pytest.raises(UserError, match="cutoff_rollout_if_race_not_finished_within_duration_ms"):
        check_race_cutoff("long_map", optimal_ms=310_000, achieved_ms=320_900, cutoff_ms=300_000)
    check_race_cutoff("a01", optimal_ms=23_000, achieved_ms=24_000, cutoff_ms=300_000)  # fine
    assert RACE_CUTOFF_KEY in race_cutoff_warning({"achieved_ms": 320_900, "optimal_ms": 310_000}, 300_000)
    assert race_cutoff_warning({"achieved_ms": 24_000, "optimal_ms": 23_000}, 300_000) is None


def test_lap_reference_is_a_dataclass_of_plain_values() -> None:
    reference = lap_reference(load_track("easy"))
    assert isinstance(reference, LapReference) and isinstance(reference.achieved_actions, list)

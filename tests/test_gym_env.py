"""Gymnasium env `trackrl/Race-v0`: registration, checker, bounds, reward, starts, info, options, docs table."""

from __future__ import annotations

import functools
import itertools
import subprocess
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import trackrl
from trackrl.config import EnvironmentConfig
from trackrl.errors import UserError
from trackrl.sim.actions import ACTION_NAMES, N_ACTIONS
from trackrl.sim.car import DEFAULT_CAR
from trackrl.sim.drivers import braking_driver_actions, follow_centerline_actions
from trackrl.sim.env import STATE_HEIGHT, STATE_X, STATE_Z, VecRaceEnv
from trackrl.sim.gym_env import INFO_KEYS, RaceEnv
from trackrl.sim.observation import (
    float_input_layout,
    float_input_table_markdown,
    float_inputs_mean,
    float_inputs_std,
    terminal_speed_mps,
)
from trackrl.sim.observation_doc import page_markdown
from trackrl.sim.reference import reference_lap
from trackrl.sim.track import builtin_track_names, load_track

NOTHING = ACTION_NAMES.index("nothing")
OBSERVATION_DOC = Path(__file__).resolve().parents[1] / "docs" / "observation.md"


def test_import_trackrl_registers_the_env_without_torch() -> None:
    code = (
        "import sys\n"
        "import gymnasium as gym, trackrl; gym.make('trackrl/Race-v0')\n"
        "assert 'torch' not in sys.modules, 'gym.make imported torch'\n"
        "spec = gym.spec('trackrl/Race-v0')\n"
        "print(spec.max_episode_steps, spec.vector_entry_point)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["6000", "trackrl.sim.gym_vector:RaceVectorEnv"]
    heavy = "print(sorted(m for m in sys.modules if m in ('torch', 'numba', 'trackrl.sim')))"
    bare = subprocess.run([sys.executable, "-c", f"import sys, trackrl; {heavy}"], capture_output=True, text=True)
    assert bare.returncode == 0 and bare.stdout.strip() == "[]", bare.stderr


def test_max_episode_steps_is_the_race_cutoff() -> None:
    config = EnvironmentConfig()
    action_ms = 10 * config.tm_engine_step_per_action
    assert trackrl.RACE_MAX_EPISODE_STEPS * action_ms == config.cutoff_rollout_if_race_not_finished_within_duration_ms


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"use_image": False}, {"normalize_floats": True, "start": "random"}, {"reward": "linesight", "track": "a01"}],
)
def test_check_env_passes_without_warnings(kwargs: dict) -> None:
    env = gymnasium.make("trackrl/Race-v0", **{"track": "easy", **kwargs})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any Gymnasium warning (bounds, dtypes, determinism) fails the test
        check_env(env.unwrapped, skip_render_check=True)
    assert env.action_space == gymnasium.spaces.Discrete(12)
    floats = env.observation_space if kwargs.get("use_image") is False else env.observation_space["floats"]
    assert floats.shape == (184,) and floats.dtype == np.float32 and floats.is_bounded()
    if kwargs.get("use_image", True):
        assert env.observation_space["image"].shape == (1, 64, 64)


def test_terminal_speed_is_the_hand_computed_root() -> None:
    # Default car: beyond 5th gear's rev limit (498 km/h) only gravity pulls: c v² + r = g / 2.
    assert terminal_speed_mps() == pytest.approx(np.sqrt((9.81 / 2 - 0.1) / 5.0e-5), rel=1e-9)
    assert terminal_speed_mps() > DEFAULT_CAR.gear_5_rev_limit_speed_mps


@functools.cache
def _reference_speed_max_mps(track_name: str) -> float:
    return float(reference_lap(RaceEnv(track=track_name).track).speed_mps.max())


def _drive(env: RaceEnv, policy: Callable[[np.ndarray], int], seed: int, options: dict | None = None) -> tuple:
    """One episode; (return, last info, every observation)."""
    observation, info = env.reset(seed=seed, options=options)
    observations, episode_return, done = [observation], 0.0, False
    while not done:
        observation, reward, terminated, truncated, info = env.step(policy(observation))
        observations.append(observation)
        episode_return += reward
        done = terminated or truncated
    return episode_return, info, observations


def _driver(actions: Callable, **kwargs: float) -> Callable[[np.ndarray], int]:
    config = EnvironmentConfig()

    def policy(observation: np.ndarray | dict) -> int:
        floats = observation["floats"] if isinstance(observation, dict) else observation
        return int(actions(floats[None], config, **kwargs)[0])

    return policy


DRIVERS = {
    "follow_2": _driver(follow_centerline_actions, look_ahead_zones=2),
    "follow_4": _driver(follow_centerline_actions, look_ahead_zones=4),
    "brake_0.5": _driver(braking_driver_actions, grip_margin=0.5),
    "brake_0.6": _driver(braking_driver_actions, grip_margin=0.6),
    "brake_0.7": _driver(braking_driver_actions, grip_margin=0.7),
    "brake_0.8": _driver(braking_driver_actions, grip_margin=0.8),
    "brake_1.0": _driver(braking_driver_actions, grip_margin=1.0),
}


@pytest.mark.parametrize("track_name", builtin_track_names())
def test_progress_reward_ranks_drivers_like_their_race_times(track_name: str) -> None:
    env = RaceEnv(track=track_name, use_image=False)
    results = {name: _drive(env, policy, seed=0)[:2] for name, policy in DRIVERS.items()}
    finishers = {name: (ret, info["race_time_ms"]) for name, (ret, info) in results.items() if info["finished"]}
    assert len({time for _, time in finishers.values()}) >= 2, f"{track_name}: too few distinct finishes {results}"
    by_time = sorted(finishers.values(), key=lambda pair: pair[1])
    for (faster_return, faster_ms), (slower_return, slower_ms) in itertools.pairwise(by_time):
        assert faster_ms == slower_ms or faster_return > slower_return, by_time
    for ret, time_ms in finishers.values():  # the documented closed form of a finish from the start line
        assert ret == pytest.approx(0.1 * env.track.length_m + 10.0 - 0.03 * time_ms / 1000, abs=1e-6)
    standing_return, standing_info, _ = _drive(env, lambda _: NOTHING, seed=0)
    # Cut off for no progress after 2 s; its race time is reported as the race cutoff, as for any DNF.
    assert standing_info["race_time_ms"] == 300_000 and not standing_info["finished"]
    assert standing_return < min(ret for ret, _ in finishers.values())
    for ret, info in results.values():  # a run that does not finish scores below every finish
        if not info["finished"]:
            assert ret < min(r for r, _ in finishers.values())


def test_linesight_reward_is_the_per_ms_and_per_metre_formula() -> None:
    env = RaceEnv(track="easy", reward="linesight", render_mode="rgb_array")
    episode_return, info, observations = _drive(env, DRIVERS["follow_2"], seed=0)
    steps = len(observations) - 1
    assert info["finished"] and info["race_time_ms"] <= 50 * steps
    # Return = −0.0012 per ms of race time (Linesight: the finishing step lasts until the finish tick, not 50 ms)
    # + 0.01 per metre of centre line (the whole track).
    assert info["race_time_ms"] < 50 * steps
    assert episode_return == pytest.approx(-0.0012 * info["race_time_ms"] + 0.01 * env.track.length_m, abs=1e-3)
    frame = env.render()
    assert frame.shape == (480, 640, 3) and frame.dtype == np.uint8  # the top-down view (tests/test_viz.py)


@pytest.mark.parametrize("track_name", builtin_track_names())
def test_every_float_stays_within_its_bounds(track_name: str) -> None:
    env = RaceEnv(track=track_name, use_image=False)
    rng = np.random.default_rng(0)
    drives = [_drive(env, DRIVERS["brake_1.0"], seed=0, options={"start": "random"})[2],
              _drive(env, lambda _: int(rng.integers(N_ACTIONS)), seed=1)[2]]  # fmt: skip
    space = env.observation_space
    for observations in drives:
        floats = np.stack(observations)
        outside = (floats < space.low) | (floats > space.high)
        assert not outside.any(), f"{track_name}: entries {np.flatnonzero(outside.any(axis=0))} out of bounds"
    # The bounds are physical, not loose: speed below the terminal speed, zone 39 within ~40 spacings.
    layout = dict(float_input_layout(EnvironmentConfig()))
    assert space.high[layout["velocity_car_frame_mps"]][2] == pytest.approx(1.01 * terminal_speed_mps())
    assert space.high[layout["zone_centers_car_frame_m"]][-1] < 40 * 10 + env.track.road_width_m
    distance = layout["distance_to_finish_m"].start
    assert space.high[distance] == 700.0 and space.low[distance] == 0.0


def test_random_starts_follow_the_seed_and_standing_stays_default() -> None:
    env = RaceEnv(track="technical", use_image=False)
    _, standing = env.reset(seed=3)
    assert standing["progress_m"] == 0.0 and standing["speed_mps"] == 0.0
    starts = [env.reset(seed=seed, options={"start": "random"})[1] for seed in (3, 3, 4)]
    assert starts[0] == starts[1] and starts[0]["progress_m"] != starts[2]["progress_m"]
    _, after = env.reset(seed=5)  # options apply to one reset only
    assert after["progress_m"] == 0.0
    draws = [env.reset(seed=seed, options={"start": "random"})[1] for seed in range(40)]
    progress = np.array([d["progress_m"] for d in draws])
    assert progress.min() >= 0 and progress.max() <= env.track.length_m - 20.0
    assert progress.max() > 0.6 * env.track.length_m  # the far end of the track is drawn too
    assert all(0 < d["speed_mps"] < _reference_speed_max_mps("technical") for d in draws)
    assert all(d["race_time_ms"] == 0 and not d["finished"] for d in draws)
    always_random = RaceEnv(track="technical", use_image=False, start="random")
    assert always_random.reset(seed=3)[1] == starts[0]
    with pytest.raises(UserError, match="start"):
        env.reset(options={"start": "flying"})
    with pytest.raises(UserError, match="unknown key"):
        env.reset(options={"begin": "random"})


def test_random_start_drives_on_from_there() -> None:
    env = RaceEnv(track="a01", use_image=False)
    ret, info, _ = _drive(env, DRIVERS["brake_0.8"], seed=7, options={"start": "random"})
    start = env.reset(seed=7, options={"start": "random"})[1]
    assert info["finished"] and start["progress_m"] > 0
    # From a rolling start part-way along, the rest of the track takes less than a whole race from standstill.
    whole_ms = _drive(env, DRIVERS["brake_0.8"], seed=7)[1]["race_time_ms"]
    assert info["race_time_ms"] < whole_ms
    remaining_m = env.track.length_m - start["progress_m"]
    assert ret == pytest.approx(0.1 * remaining_m + 10 - 0.03 * info["race_time_ms"] / 1e3)


def test_info_has_the_same_keys_at_reset_and_step() -> None:
    env = RaceEnv(track="easy")
    _, reset_info = env.reset(seed=0)
    _, _, _, _, step_info = env.step(0)
    assert tuple(reset_info) == tuple(step_info) == INFO_KEYS
    assert [type(reset_info[k]) for k in INFO_KEYS] == [type(step_info[k]) for k in INFO_KEYS] == [int, float, float,
                                                                                                   bool]  # fmt: skip


def test_plain_dicts_configure_the_env_and_bad_keys_are_named() -> None:
    env = RaceEnv(track="easy", env_config={"n_zone_centers_in_inputs": 8})
    assert env.observation_space["floats"].shape == (44 + 20 + 24,)
    env = RaceEnv(track="easy", reward="linesight", rewards_config={"constant_reward_per_ms": 0.0})
    env.reset(seed=0)
    assert env.step(NOTHING)[1] == 0.0  # no time penalty, no progress
    with pytest.raises(UserError, match=r"environment\.n_zone_centres: unknown key"):
        RaceEnv(track="easy", env_config={"n_zone_centres": 8})
    with pytest.raises(UserError, match="reward must be one of"):
        RaceEnv(track="easy", reward="speed")
    with pytest.raises(UserError, match="progress_reward"):
        RaceEnv(track="easy", progress_reward={"per_m": 1.0})


def test_normalised_floats_are_the_raw_ones_standardised() -> None:
    raw = RaceEnv(track="easy", use_image=False)
    normalised = RaceEnv(track="easy", use_image=False, normalize_floats=True)
    mean, std = float_inputs_mean(EnvironmentConfig()), float_inputs_std(EnvironmentConfig())
    pairs = [(raw.reset(seed=0)[0], normalised.reset(seed=0)[0])]
    for action in [0] * 30 + [1] * 10:
        pairs.append((raw.step(action)[0], normalised.step(action)[0]))
    for raw_floats, normalised_floats in pairs:
        np.testing.assert_allclose(normalised_floats, (raw_floats - mean) / std, rtol=1e-6, atol=1e-6)
        assert normalised.observation_space.contains(normalised_floats)


def test_invalid_action_is_rejected() -> None:
    env = RaceEnv(track="easy")
    env.reset()
    with pytest.raises(ValueError, match="action"):
        env.step(12)


def test_observation_doc_is_generated_from_the_layout() -> None:
    table = float_input_table_markdown()
    assert len(table.splitlines()) == 2 + 184
    assert OBSERVATION_DOC.read_text(encoding="utf-8") == page_markdown(), (
        "docs/observation.md is out of date: `python -m trackrl.sim.observation_doc docs/observation.md` regenerates it"
    )


def test_vec_env_start_puts_cars_on_the_centre_line_at_the_given_distance_and_speed() -> None:
    track = load_track("hills")
    env = VecRaceEnv(track, 3, render_images=False)
    distances_m, speeds_mps = np.array([0.0, 400.25, track.length_m - 1.0]), np.array([0.0, 20.0, 35.0])
    env.reset(None, distances_m, speeds_mps)
    np.testing.assert_allclose(env._state[:, [STATE_X, STATE_HEIGHT, STATE_Z]], track.point_at_distance(distances_m),
                               atol=1e-9)  # fmt: skip
    velocities = env.velocities_mps
    np.testing.assert_allclose(np.linalg.norm(velocities, axis=1), speeds_mps, atol=1e-9)
    headings = env.headings_rad[1:]
    np.testing.assert_allclose(velocities[1:], speeds_mps[1:, None] * np.stack([np.cos(headings), np.sin(headings)], 1),
                               atol=1e-9)  # fmt: skip
    np.testing.assert_array_equal(env.zones_passed, [0, 40, int((track.length_m - 1.0) // 10)])
    result = env.step(np.zeros(3, dtype=np.int64))
    assert np.all(result.progress_m > distances_m) and not result.truncated.any()
    with pytest.raises(ValueError, match="start_progress_m"):
        env.reset(np.array([0]), np.array([track.length_m]), np.array([0.0]))

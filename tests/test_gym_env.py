"""Gymnasium env `trackrl/Race-v0`."""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import trackrl.sim  # noqa: F401  (registers trackrl/Race-v0)
from trackrl.sim.gym_env import RaceEnv


def test_check_env_passes() -> None:
    env = gymnasium.make("trackrl/Race-v0", track="easy")
    check_env(env.unwrapped, skip_render_check=True)
    assert env.action_space == gymnasium.spaces.Discrete(12)
    assert env.observation_space["image"].shape == (1, 64, 64)
    assert env.observation_space["image"].dtype == np.uint8
    assert env.observation_space["floats"].shape == (151,)


def test_episode_runs_to_the_finish_and_matches_the_vec_env() -> None:
    env = RaceEnv(track="easy", render_mode="rgb_array")
    observation, info = env.reset(seed=0)
    assert env.observation_space.contains(observation) and info["race_time_ms"] == 0
    total_reward, terminated, truncated, steps = 0.0, False, False, 0
    while not (terminated or truncated):
        left = observation["floats"][30 + 3 * 2]  # zone centre 2 ahead, car-frame x (left)
        action = 1 if left > 1.0 else 2 if left < -1.0 else 0
        observation, reward, terminated, truncated, info = env.step(action)
        total_reward += reward
        steps += 1
    assert terminated and info["finished"] and info["race_time_ms"] <= 50 * steps
    # Return = −0.0012 · 50 ms per action + 0.01 per metre of centre line (the whole track).
    assert total_reward == pytest.approx(-0.06 * steps + 0.01 * env.track.length_m, abs=1e-3)
    frame = env.render()
    assert frame.shape == (480, 640, 3) and frame.dtype == np.uint8  # the top-down view (tests/test_viz.py)


def test_invalid_action_is_rejected() -> None:
    env = RaceEnv(track="easy")
    env.reset()
    with pytest.raises(ValueError, match="action"):
        env.step(12)

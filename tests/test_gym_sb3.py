"""Stable-Baselines3 (optional `examples` extra): its env checker, and the SB3 VecEnv adapter against SB3's own
DummyVecEnv of single envs stepped alike."""

from __future__ import annotations

import warnings

import gymnasium
import numpy as np
import pytest

pytest.importorskip("stable_baselines3")

from stable_baselines3.common.env_checker import check_env
from stable_baselines3.common.vec_env import DummyVecEnv, VecMonitor

import trackrl  # noqa: F401
from trackrl.sim.actions import ACTION_NAMES
from trackrl.sim.sb3_vec_env import RaceSB3VecEnv


@pytest.mark.parametrize("kwargs", [{}, {"use_image": False, "normalize_floats": True}])
def test_sb3_env_checker_passes_without_warnings(kwargs: dict) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(gymnasium.make("trackrl/Race-v0", track="easy", **kwargs).unwrapped)


def test_sb3_adapter_equals_dummy_vec_env_of_single_envs() -> None:
    kwargs = {"track": "easy", "start": "random", "use_image": False}
    adapter = RaceSB3VecEnv(4, **kwargs)
    dummy = DummyVecEnv([lambda: gymnasium.make("trackrl/Race-v0", **kwargs) for _ in range(4)])
    adapter.seed(21)
    dummy.seed(21)
    np.testing.assert_array_equal(adapter.reset(), dummy.reset())
    rng = np.random.default_rng(0)
    n_dones = 0
    for step in range(300):
        actions = rng.choice([0, 0, 0, 1, 2, 5], size=4)
        adapter.step_async(actions)
        dummy.step_async(actions)
        (obs_a, rew_a, done_a, info_a), (obs_d, rew_d, done_d, info_d) = adapter.step_wait(), dummy.step_wait()
        np.testing.assert_array_equal(obs_a, obs_d, err_msg=f"step {step}")
        np.testing.assert_array_equal(rew_a, rew_d)
        np.testing.assert_array_equal(done_a, done_d)
        assert rew_a.dtype == rew_d.dtype and done_a.dtype == done_d.dtype
        for a, d in zip(info_a, info_d, strict=True):
            assert set(a) == set(d), step
            for key in d:
                np.testing.assert_array_equal(a[key], d[key], err_msg=f"step {step} {key}")
        n_dones += int(done_a.sum())
    assert n_dones > 0


def test_vec_monitor_reports_episodes_of_the_adapter() -> None:
    env = VecMonitor(RaceSB3VecEnv(2, track="easy", use_image=False))
    env.reset()
    episodes = []
    while len(episodes) < 2:
        # cut off at the first step more than 2 s after the last new zone
        _, _, _, infos = env.step(np.full(2, ACTION_NAMES.index("nothing")))
        episodes += [info["episode"] for info in infos if "episode" in info]
    assert all(episode["l"] == 41 and episode["r"] == pytest.approx(-0.03 * 2.05) for episode in episodes)

"""The native vector env (`make_vec(..., vectorization_mode="vector_entry_point")`) against Gymnasium's own
SyncVectorEnv of single envs, stepped alike: same observations, rewards, flags, infos, autoreset and statistics."""

from __future__ import annotations

import warnings
from typing import Any

import gymnasium
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.wrappers.vector import RecordEpisodeStatistics

import trackrl  # noqa: F401  (registers trackrl/Race-v0)
from trackrl.config import EnvironmentConfig
from trackrl.errors import UserError
from trackrl.sim.drivers import follow_centerline_actions
from trackrl.sim.gym_vector import RaceVectorEnv

ENV_ID = "trackrl/Race-v0"


def make_native(num_envs: int, **kwargs: Any) -> VectorEnv:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # make_vec warns on a missing or wrong autoreset_mode
        return gymnasium.make_vec(ENV_ID, num_envs=num_envs, vectorization_mode="vector_entry_point", **kwargs)


def make_sync(num_envs: int, autoreset_mode: AutoresetMode, **kwargs: Any) -> VectorEnv:
    return gymnasium.make_vec(ENV_ID, num_envs=num_envs, vectorization_mode="sync",
                              vector_kwargs={"autoreset_mode": autoreset_mode}, **kwargs)  # fmt: skip


def assert_same(actual: Any, expected: Any, where: str) -> None:
    """Recursive equality of observations / infos: same keys, dtypes and values (object arrays element-wise)."""
    if isinstance(expected, tuple):
        assert isinstance(actual, tuple) and len(actual) == len(expected), where
        for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
            assert_same(a, e, f"{where}[{i}]")
    elif isinstance(expected, dict):
        assert isinstance(actual, dict) and set(actual) == set(expected), f"{where}: {set(actual) ^ set(expected)}"
        for key in expected:
            assert_same(actual[key], expected[key], f"{where}.{key}")
    elif isinstance(expected, np.ndarray) and expected.dtype == object:
        assert actual.shape == expected.shape, where
        for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
            assert (a is None) == (e is None), f"{where}[{i}]"
            if e is not None:
                assert_same(a, e, f"{where}[{i}]")
    else:
        expected = np.asarray(expected)
        actual = np.asarray(actual)
        assert actual.dtype == expected.dtype, f"{where}: {actual.dtype} != {expected.dtype}"
        np.testing.assert_array_equal(actual, expected, err_msg=where)


@pytest.mark.parametrize("autoreset_mode", [AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP])
def test_native_vector_env_equals_sync_vector_env_of_single_envs(autoreset_mode: AutoresetMode) -> None:
    # Random starts, a short step limit (TimeLimit in the sync env) and random actions: every kind of episode end.
    kwargs = {"track": "easy", "start": "random", "max_episode_steps": 60, "image_size_px": (16, 16)}
    native = make_native(4, autoreset_mode=autoreset_mode, **kwargs)
    sync = make_sync(4, autoreset_mode, **kwargs)
    assert native.metadata["autoreset_mode"] == sync.metadata["autoreset_mode"] == autoreset_mode
    assert native.observation_space == sync.observation_space and native.action_space == sync.action_space
    assert native.single_observation_space == sync.single_observation_space
    native_out, sync_out = native.reset(seed=11), sync.reset(seed=11)
    assert_same(native_out, sync_out, "reset")
    rng = np.random.default_rng(0)
    ends = {"terminated": 0, "truncated": 0}
    for step in range(400):
        # Mostly forward so that cars also finish; sometimes nothing so that the no-progress cutoff fires.
        actions = rng.choice([0, 0, 0, 1, 2, 5], size=4).astype(np.int64)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            native_out = native.step(actions)
        sync_out = sync.step(actions)
        assert_same(native_out, sync_out, f"step {step}")
        assert native.observation_space.contains(native_out[0])
        ends["terminated"] += int(native_out[2].sum())
        ends["truncated"] += int(native_out[3].sum())
    assert ends["terminated"] > 0 and ends["truncated"] > 0, ends
    partial = np.array([True, False, True, False])
    assert_same(native.reset(seed=5, options={"reset_mask": partial}),
                sync.reset(seed=5, options={"reset_mask": partial}), "partial reset")  # fmt: skip
    assert_same(native.step(np.zeros(4, dtype=np.int64)), sync.step(np.zeros(4, dtype=np.int64)), "after partial reset")


@pytest.mark.parametrize("autoreset_mode", [AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP])
def test_record_episode_statistics_reads_the_episodes(autoreset_mode: AutoresetMode) -> None:
    env = RecordEpisodeStatistics(make_native(3, track="easy", use_image=False, autoreset_mode=autoreset_mode))
    observations, _ = env.reset(seed=0)
    config, stats, returns, lengths = EnvironmentConfig(), [], np.zeros(3), np.zeros(3, dtype=np.int64)
    done_before = np.zeros(3, dtype=bool)
    while len(stats) < 6:
        observations, rewards, terminated, truncated, infos = env.step(follow_centerline_actions(observations, config))
        if autoreset_mode == AutoresetMode.NEXT_STEP:
            returns[done_before], lengths[done_before] = 0.0, 0  # this step was the reset
        returns[~done_before] += rewards[~done_before]
        lengths[~done_before] += 1
        done = terminated | truncated
        if done.any():
            # SAME_STEP: the car is already reset; its last info is in final_info.
            last = infos["final_info"] if autoreset_mode == AutoresetMode.SAME_STEP else infos
            for car in np.flatnonzero(infos["_episode"]):
                stats.append((infos["episode"]["r"][car], infos["episode"]["l"][car], last["race_time_ms"][car]))
                assert infos["episode"]["r"][car] == pytest.approx(returns[car])
                assert infos["episode"]["l"][car] == lengths[car]
        if autoreset_mode == AutoresetMode.SAME_STEP:
            returns[done], lengths[done] = 0.0, 0
        done_before = done if autoreset_mode == AutoresetMode.NEXT_STEP else np.zeros(3, dtype=bool)
    track_length_m = env.unwrapped.track.length_m
    for episode_return, _, race_time_ms in stats:
        assert episode_return == pytest.approx(0.1 * track_length_m + 10 - 0.03 * race_time_ms / 1000)
    assert len(env.return_queue) >= 6 and all(r > 0.1 * track_length_m for r in env.return_queue)


def test_make_vec_builds_the_native_env_with_the_spec() -> None:
    env = make_native(8, track="easy", use_image=False)
    assert isinstance(env, RaceVectorEnv) and isinstance(env, VectorEnv)
    assert env.num_envs == 8 and env.max_episode_steps == 6000
    assert env.observation_space.shape == (8, 184) and env.action_space.shape == (8,)
    assert env.spec is not None and env.spec.kwargs["vectorization_mode"] == "vector_entry_point"
    observations, infos = env.reset(seed=0)
    assert env.observation_space.contains(observations)
    assert all(infos[f"_{key}"].all() for key in ("race_time_ms", "progress_m", "speed_mps", "finished"))
    with pytest.raises(UserError, match="autoreset_mode"):
        RaceVectorEnv(2, track="easy", autoreset_mode="sometimes")
    with pytest.raises(ValueError, match="actions"):
        env.step(np.zeros(7, dtype=np.int64))

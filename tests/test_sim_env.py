"""VecRaceEnv: determinism, batching, observations, rewards, cutoffs, frozen cars, scripted drivers."""

from __future__ import annotations

import numpy as np
import pytest

from trackrl.config import EnvironmentConfig, RewardsConfig
from trackrl.sim.actions import ACCELERATE_ACTION, ACTION_NAMES, ACTIONS, BRAKE_ACTION, N_ACTIONS
from trackrl.sim.camera import CAR, OFF_ROAD, ROAD, SKY
from trackrl.sim.drivers import braking_driver_actions, follow_centerline_actions
from trackrl.sim.env import VecRaceEnv
from trackrl.sim.observation import (
    MINI_RACE_TIME_MEAN_ACTIONS,
    MINI_RACE_TIME_STD_ACTIONS,
    float_input_dim,
    float_input_layout,
    float_inputs_mean,
    float_inputs_std,
)
from trackrl.sim.rollout import simulate_actions
from trackrl.sim.track import load_track
from trackrl.sim.zone_progress import zone_line

NOTHING = ACTION_NAMES.index("nothing")


def test_action_table_is_linesight_order() -> None:
    # All 12 rows, literally, in Linesight's order (REFERENCE.md): (accelerate, brake, left, right).
    expected = [
        ("accel", [1, 0, 0, 0]),
        ("accel+left", [1, 0, 1, 0]),
        ("accel+right", [1, 0, 0, 1]),
        ("nothing", [0, 0, 0, 0]),
        ("left", [0, 0, 1, 0]),
        ("right", [0, 0, 0, 1]),
        ("brake", [0, 1, 0, 0]),
        ("brake+left", [0, 1, 1, 0]),
        ("brake+right", [0, 1, 0, 1]),
        ("accel+brake", [1, 1, 0, 0]),
        ("accel+brake+left", [1, 1, 1, 0]),
        ("accel+brake+right", [1, 1, 0, 1]),
    ]
    assert N_ACTIONS == 12 and ACTIONS.shape == (12, 4) and ACTIONS.dtype == bool
    assert [name for name, _ in expected] == ACTION_NAMES
    assert ACTIONS.astype(int).tolist() == [row for _, row in expected]
    assert (ACCELERATE_ACTION, BRAKE_ACTION) == (0, 6)


def test_float_layout_dimension_and_normalisation() -> None:
    config = EnvironmentConfig()
    layout = float_input_layout(config)
    # Linesight's float_input_dim: 27 + 3 · 40 + 4 · 5 + 4 · 4 + 1 (GAME_BRIDGE.md §7.2).
    assert float_input_dim(config) == 27 + 3 * 40 + 4 * 5 + 4 * 4 + 1 == 184
    assert layout[0] == ("mini_race_time_actions", slice(0, 1))
    assert sum(s.stop - s.start for _, s in layout) == 184
    blocks = dict(layout)
    # Linesight's indices: previous actions 1-20, gear 34, rpm 35, materials 37-52, angular 53-55, velocity 56-58,
    # up 59-61, zones 62-181, distance to finish 182, freewheeling 183.
    assert blocks["previous_actions"] == slice(1, 21) and blocks["gear"] == slice(34, 35)
    assert blocks["engine_rpm"] == slice(35, 36) and blocks["wheel_contact_material_groups"] == slice(37, 53)
    assert blocks["angular_velocity_car_frame_radps"] == slice(53, 56)
    assert blocks["velocity_car_frame_mps"] == slice(56, 59) and blocks["up_vector_car_frame"] == slice(59, 62)
    assert blocks["zone_centers_car_frame_m"] == slice(62, 182)
    assert blocks["distance_to_finish_m"] == slice(182, 183) and blocks["is_freewheeling"] == slice(183, 184)
    linesight = EnvironmentConfig(float_normalization="linesight")
    mean, std = float_inputs_mean(linesight), float_inputs_std(linesight)
    assert mean.shape == std.shape == (184,) and mean.dtype == np.float32 and np.all(std > 0)
    assert (mean[0], std[0]) == (MINI_RACE_TIME_MEAN_ACTIONS, MINI_RACE_TIME_STD_ACTIONS) == (70, 70)
    # Linesight's state_normalization.py values at a few indices.
    assert (mean[35], std[35]) == (7000, 3000) and (mean[58], std[58]) == (55, 20)
    assert (mean[182], std[182]) == (700, 350)
    assert (mean[62:65].tolist(), std[62:65].tolist()) == ([0, np.float32(-2.1), np.float32(-0.2)],
                                                           [np.float32(7.7), np.float32(7.7), np.float32(2.9)])
    assert mean[179:182].tolist() == [0, np.float32(11.5), 197] and std[181] == 151
    small = EnvironmentConfig(n_prev_actions_in_inputs=2, n_zone_centers_in_inputs=8)
    assert float_input_dim(small) == 44 + 4 * 2 + 3 * 8
    # Zone centres every 5 m use Linesight's rows for the same distance ahead: zone 2 (10 m) = Linesight's zone 1.
    half = EnvironmentConfig(zone_spacing_m=5.0, float_normalization="linesight")
    zones = dict(float_input_layout(half))["zone_centers_car_frame_m"]
    np.testing.assert_allclose(float_inputs_mean(half)[zones][6:9], mean[65:68])
    np.testing.assert_allclose(float_inputs_std(half)[zones][6:9], std[65:68])
    # The default ("simulator"): the mini-race std, the means of the entries the simulator holds constant (they read
    # 0) and the angular velocity, velocity and zone blocks differ; previous actions, sliding, gear and rpm (the
    # simulator's gearbox), up vector (Linesight's mean is already (0, 1, 0)) and distance do not.
    sim_mean, sim_std = float_inputs_mean(config), float_inputs_std(config)
    same = (sim_mean == mean) & (sim_std == std)
    assert same[1:25].all() and same[34:36].all() and same[59:62].all() and same[182:].all() and np.all(sim_std > 0)
    assert not same[25:34].any() and not same[36:59].any() and not same[62:182].any()
    assert (sim_std[0], sim_mean[25], sim_mean[35], sim_mean[37], sim_mean[38]) == (40, 1, 7000, 1, 0)
    assert (sim_mean[58], sim_std[58], sim_std[62]) == (30, 15, 4.5)  # forward speed; zone 0 lateral spread


def run_random(env: VecRaceEnv, n_steps: int, seed: int) -> list:
    rng = np.random.default_rng(seed)
    outputs = [env.reset()]
    for _ in range(n_steps):
        outputs.append(env.step(rng.integers(0, N_ACTIONS, env.num_cars)))
    return outputs


def test_same_actions_give_identical_results() -> None:
    track = load_track("a01")
    first = run_random(VecRaceEnv(track, 4), 60, seed=3)
    second = run_random(VecRaceEnv(track, 4), 60, seed=3)
    for a, b in zip(first[1:], second[1:], strict=True):
        for field in ("images", "floats", "rewards", "race_time_ms", "positions_m", "terminated", "truncated"):
            np.testing.assert_array_equal(getattr(a, field), getattr(b, field))


def test_batched_car_equals_single_car() -> None:
    track = load_track("hills")
    rng = np.random.default_rng(7)
    actions = np.where(rng.random((120, 5)) < 0.7, 0, rng.integers(0, N_ACTIONS, (120, 5)))
    batched = VecRaceEnv(track, 5)
    batched_results = [batched.step(a) for a in actions]
    for car in (0, 3):
        single = VecRaceEnv(track, 1)
        for step, a in enumerate(actions[:, car]):
            result = single.step(np.array([a]))
            np.testing.assert_array_equal(result.floats[0], batched_results[step].floats[car])
            np.testing.assert_array_equal(result.images[0], batched_results[step].images[car])
            assert result.rewards[0] == batched_results[step].rewards[car]
            assert result.race_time_ms[0] == batched_results[step].race_time_ms[car]


def test_observation_shapes_types_and_ranges() -> None:
    env = VecRaceEnv(load_track("a01"), 3)
    images, floats = env.reset()
    assert images.shape == (3, 1, 64, 64) and images.dtype == np.uint8
    assert floats.shape == (3, env.float_input_dim) and floats.dtype == np.float32
    assert env.image_shape == (1, 64, 64) and env.action_duration_ms == 50
    layout = dict(float_input_layout(env.env_config))
    result = None
    for _ in range(40):
        result = env.step(np.array([0, 1, 6]))
    floats = result.floats
    assert np.all(np.isfinite(floats)) and np.all(floats[:, 0] == 0.0)
    previous = floats[:, layout["previous_actions"]].reshape(3, 5, 4)
    np.testing.assert_array_equal(previous[:, 0], ACTIONS[[0, 1, 6]].astype(np.float32))
    velocity = floats[:, layout["velocity_car_frame_mps"]]
    np.testing.assert_allclose(np.linalg.norm(velocity[:, [0, 2]], axis=1), result.speed_mps, rtol=1e-5)
    zones = floats[:, layout["zone_centers_car_frame_m"]].reshape(3, 40, 3)
    assert np.all(np.diff(zones[0, :6, 2]) > 0)  # on the straight start, zone centres lie further and further ahead
    np.testing.assert_allclose(zones[0, :6, 0], 0.0, atol=0.5)  # straight ahead (car frame x = left)
    distance = floats[:, layout["distance_to_finish_m"]][:, 0]
    np.testing.assert_allclose(distance, np.minimum(env.track.length_m - result.progress_m, 700.0), rtol=1e-5)
    # Image: sky at the top, the car's silhouette at the bottom centre, road just ahead of it, off-road at the sides.
    image = result.images[0, 0]
    car_rows, car_columns = np.nonzero(image == CAR)
    assert np.all(image[0] == SKY) and car_rows.min() > 32 and abs(car_columns.mean() - 31.5) < 0.5
    assert image[car_rows.min() - 4, 32] in (ROAD, 190)  # road (or a centre dash) straight ahead of the car
    assert (image[:, :6] == OFF_ROAD).any() and (image[:, -6:] == OFF_ROAD).any()  # off-road at both sides


def test_image_shows_the_road_on_the_side_the_car_must_turn_to() -> None:
    env = VecRaceEnv(load_track("a01"), 1)
    env.set_car_state(0, (20.0, 0.0), -0.5, (0.0, 0.0))  # pointing 0.5 rad to the left of the road
    far_rows = env.step(np.array([NOTHING])).images[0, 0, 26:33]  # ground 20-60 m ahead
    road_columns = np.nonzero(far_rows == ROAD)[1]
    assert road_columns.size > 50 and road_columns.mean() > 38  # the road ahead appears on the right


def test_rewards_match_the_formula_including_shaping() -> None:
    rewards_config = RewardsConfig(shaped_reward_dist_to_cur_vcp=-0.1)
    env = VecRaceEnv(load_track("a01"), 1, rewards_config=rewards_config, render_images=False)
    # The current virtual checkpoint: the nearest point of Linesight's extrapolated, smoothed line (a01 never comes
    # near itself, so the nearest point overall is the one the zone update settles on).
    centers = zone_line(env.track.centerline_m).centers_m

    def potential(position: np.ndarray, progress_m: float) -> float:
        return -0.1 * np.clip(np.linalg.norm(centers - position, axis=1).min(), 2.0, 25.0)

    position, progress = env.track.centerline_m[0], 0.0
    for step in range(100):
        result = env.step(np.array([0 if step % 7 else 2]))
        expected = -0.0012 * 50 + 0.01 * (result.progress_m[0] - progress)
        expected += potential(result.positions_m[0], result.progress_m[0]) - potential(position, progress)
        assert result.rewards[0] == pytest.approx(expected, abs=1e-5)
        position, progress = result.positions_m[0], result.progress_m[0]


def test_no_progress_cutoff_and_frozen_cars() -> None:
    env = VecRaceEnv(load_track("a01"), 2, render_images=False)
    for step in range(1, 60):  # noqa: B007 (step is used after the loop)
        result = env.step(np.array([NOTHING, 0]))
        if result.truncated[0]:
            break
    # More than 2,000 ms without a new furthest virtual checkpoint (Linesight: race time > last improvement + 2,000 ms,
    # so the first action step past it, 2,050 ms); an unfinished race reports the race cutoff (300,000 ms)
    assert step == 41 and result.race_time_ms[0] == 300_000 and not result.finished[0]
    frozen = env.step(np.array([0, 0]))
    assert frozen.rewards[0] == 0.0 and frozen.truncated[0] and frozen.race_time_ms[0] == 300_000
    np.testing.assert_array_equal(frozen.positions_m[0], result.positions_m[0])
    assert not frozen.truncated[1]  # the other car keeps racing
    _, floats = env.reset(np.array([0]))
    assert floats.shape == (2, env.float_input_dim)
    after_reset = env.step(np.array([0, 0]))
    assert not after_reset.truncated[0] and after_reset.race_time_ms[0] == 50


def test_a_car_creeping_1_m_per_s_is_not_cut_off_and_a_stopped_one_is_after_2_s() -> None:
    """Linesight's no-progress rule: any new furthest 0.5 m virtual checkpoint restarts the 2 s timer (a 10 m zone
    would take 10 s); the stopped car is cut at the first action step more than 2 s after its last improvement."""
    env = VecRaceEnv(load_track("easy"), 2, render_images=False)
    speed_mps = np.zeros(2)
    for step in range(1, 201):  # 10 s: car 0 holds about 1 m/s (throttle below it, brake above), car 1 stands
        creep = 0 if speed_mps[0] < 0.9 else (6 if speed_mps[0] > 1.1 else NOTHING)
        result = env.step(np.array([creep, NOTHING]))
        speed_mps = result.speed_mps
        if step == 40:
            assert not result.truncated[1]
        if step == 41:
            assert result.truncated[1] and not result.finished[1] and result.race_time_ms[1] == 300_000
        assert not result.truncated[0], f"the creeping car was cut off after {step * 50} ms"
    assert result.race_time_ms[0] == 10_000 and 7.0 < result.progress_m[0] < 13.0


def test_race_time_limit_reports_the_limit() -> None:
    config = EnvironmentConfig(cutoff_rollout_if_race_not_finished_within_duration_ms=1_030)
    env = VecRaceEnv(load_track("technical"), 1, env_config=config, render_images=False)
    for step in range(1, 100):  # noqa: B007 (step is used after the loop)
        result = env.step(np.array([0]))
        if result.truncated[0]:
            break
    assert step == 21 and result.race_time_ms[0] == 1_030 and not result.terminated[0]


def drive(track_name: str, driver, n_cars: int = 1) -> tuple[np.ndarray, list[int]]:
    env = VecRaceEnv(load_track(track_name), n_cars, render_images=False)
    _, floats = env.reset()
    actions: list[int] = []
    for _ in range(6000):
        step_actions = driver(floats, env.env_config)
        actions.append(int(step_actions[0]))
        result = env.step(step_actions)
        floats = result.floats
        if np.all(result.terminated | result.truncated):
            break
    assert np.all(result.finished), f"{track_name}: the scripted driver did not finish ({result.progress_m} m)"
    return result.race_time_ms, actions


@pytest.mark.parametrize("track_name", ["easy", "a01"])
def test_full_throttle_line_follower_finishes(track_name: str) -> None:
    race_time_ms, actions = drive(track_name, follow_centerline_actions)
    assert race_time_ms[0] % 10 == 0 and 0 < race_time_ms[0] <= 50 * len(actions)
    # The rollout re-simulation reproduces the race exactly (used by `trackrl replay`).
    replay = simulate_actions(load_track(track_name), actions)
    assert replay.finished and replay.race_time_ms == race_time_ms[0] and replay.n_actions == len(actions)
    assert replay.positions_m.shape == (len(actions) + 1, 3) and replay.rewards.shape == (len(actions),)


def test_braking_driver_finishes_the_technical_track() -> None:
    def careful(floats: np.ndarray, config: EnvironmentConfig) -> np.ndarray:
        return braking_driver_actions(floats, config, grip_margin=0.7)

    race_time_ms, _ = drive("technical", careful)
    assert 60_000 < race_time_ms[0] < 120_000


def test_bad_actions_are_rejected() -> None:
    env = VecRaceEnv(load_track("easy"), 2, render_images=False)
    with pytest.raises(ValueError, match="shape"):
        env.step(np.array([0]))
    with pytest.raises(ValueError, match=r"\[0, 12\)"):
        env.step(np.array([0, 12]))


def test_car_snapshot_covers_every_per_car_array_and_restores_the_future_exactly() -> None:
    track = load_track("a01")
    env = VecRaceEnv(track, 3, render_images=False)  # 3 cars: no other array has a leading dimension of 3
    per_car = {
        name for name, value in vars(env).items() if isinstance(value, np.ndarray) and value.shape[:1] == (3,)
    } - {"_images", "_floats"}  # derived from the others by _observe
    assert per_car == set(VecRaceEnv.SNAPSHOT_ARRAYS), "a new per-car array must be added to SNAPSHOT_ARRAYS"
    actions = np.array([0, 2, 6])
    for _ in range(30):
        env.step(actions)
    snapshot = env.snapshot_car(1)
    future = [env.step(actions) for _ in range(20)]
    other = VecRaceEnv(track, 1, render_images=False)  # any batch size
    other.restore_car(0, snapshot)
    replay = [other.step(actions[1:2]) for _ in range(20)]
    for a, b in zip(future, replay, strict=True):
        np.testing.assert_array_equal(a.positions_m[1], b.positions_m[0])
        np.testing.assert_array_equal(a.floats[1], b.floats[0])
        assert a.race_time_ms[1] == b.race_time_ms[0] and a.rewards[1] == b.rewards[0]
    with pytest.raises(ValueError, match="snapshot has 3 bytes"):
        other.restore_car(0, b"abc")


def race_rows(env: VecRaceEnv, car: int, actions: list[int], other_action: int = 0) -> list[tuple]:
    """Drive ``car`` with ``actions`` (the other cars with ``other_action``) until it is done; its results per step."""
    rows = []
    for action in actions:
        step_actions = np.full(env.num_cars, other_action)
        step_actions[car] = action
        result = env.step(step_actions)
        rows.append(
            (
                result.floats[car].tolist(),
                float(result.rewards[car]),
                int(result.race_time_ms[car]),
                bool(result.truncated[car]),
                bool(result.terminated[car]),
                result.positions_m[car].tolist(),
            )
        )
        if result.truncated[car] or result.terminated[car]:
            return rows
    raise AssertionError("the race did not end")


def test_a_car_that_races_again_starts_from_a_clean_state() -> None:
    # Per-race state (race clock, no-progress clock, previous actions, zone count, shaping potential) must not leak
    # into a car's next race: the second race with the same actions repeats the first exactly, and a car standing
    # still is cut off after the configured no-progress time in both races (not sooner or later).
    cutoff_ms = 1_500
    config = EnvironmentConfig(cutoff_rollout_if_no_vcp_passed_within_duration_ms=cutoff_ms)
    rewards_config = RewardsConfig(shaped_reward_dist_to_cur_vcp=-0.1)
    env = VecRaceEnv(load_track("easy"), 2, env_config=config, rewards_config=rewards_config, render_images=False)
    first_observation = env.reset()[1][0].copy()
    left, brake = ACTION_NAMES.index("left"), ACTION_NAMES.index("brake")
    # Accelerate, steer, brake to a standstill, then steer without throttle (its inputs, unlike "nothing", are not
    # all zero, so leftover previous actions would show in the next race's first observation).
    drive_then_stop = [0] * 30 + [1, 2] * 5 + [brake] * 40 + [left] * 400
    first = race_rows(env, 0, drive_then_stop)
    assert first[-1][3] and not first[-1][4]  # cut off for no progress, not finished
    for _ in range(30):  # car 1 keeps racing while car 0 waits, frozen
        env.step(np.array([NOTHING, 0]))
    _, floats = env.reset(np.array([0]))
    np.testing.assert_array_equal(floats[0], first_observation)  # previous actions, speed, zones: as at the start
    second = race_rows(env, 0, drive_then_stop)
    assert second == first
    # Standing still from the start: cut off after exactly the configured time, in a fresh race and in a reused one.
    for _ in range(2):
        env.reset(np.array([0]))
        standing = race_rows(env, 0, [NOTHING] * 400)
        # cut off after the no-progress time; its race time is reported as the race cutoff, as for any DNF
        assert len(standing) == cutoff_ms // env.action_duration_ms + 1  # the first action step past it
        assert standing[-1][2] == config.cutoff_rollout_if_race_not_finished_within_duration_ms

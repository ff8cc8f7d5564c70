"""The 184-float vector from a game state (a hand-built blob) against hand values, and the simulator's kernel and the
game-state function agreeing on the same car state."""

from __future__ import annotations

import numpy as np
import pytest

from trackrl.config import EnvironmentConfig
from trackrl.game.blob import SimState, WheelStates, encode_state, parse_state
from trackrl.sim.actions import ACTIONS
from trackrl.sim.car import S_GEAR
from trackrl.sim.env import VecRaceEnv
from trackrl.sim.observation import (
    float_input_dim,
    float_input_layout,
    game_float_inputs,
    gray_frame_from_bgra,
    physics_group,
)
from trackrl.sim.track import load_track
from trackrl.sim.zone_progress import ZoneProgress, zone_line

CONFIG = EnvironmentConfig()
LAYOUT = dict(float_input_layout(CONFIG))
STRAIGHT = np.stack([np.arange(41) * 0.5, np.zeros(41), np.zeros(41)], axis=1)  # 20 m along x


def hand_built_state() -> SimState:
    """A car heading along world +x: its left axis is world −z (left = up × forward), so R's columns are
    left (0, 0, −1), up (0, 1, 0), forward (1, 0, 0)."""
    rotation = np.array([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [-1.0, 0.0, 0.0]], dtype=np.float32)
    return SimState(
        race_time_ms=1500,
        position_m=np.array([3.1, 0.0, 0.0], np.float32),
        rotation=rotation,
        quaternion=np.array([1, 0, 0, 0], np.float32),
        linear_velocity_mps=np.array([20.0, 1.0, 3.0], np.float32),
        angular_velocity_radps=np.array([0.1, 0.2, 0.3], np.float32),
        wheels=WheelStates(
            damper_absorb=np.array([0.01, 0.02, 0.03, 0.04], np.float32),
            has_ground_contact=np.array([True, True, False, True]),
            contact_material_id=np.array([0x10000 | 16, 2, 6, 7], np.int32),  # asphalt (high bits ignored), grass,
            is_sliding=np.array([True, False, False, True]),  # dirt, turbo
        ),
        gear=3,
        actual_rpm=6500.0,
        gearbox_state=1,
        is_freewheeling=True,
        cp_states=np.zeros(2, bool),
        cp_times_ms=np.full(2, -1, np.int32),
    )


def test_physics_groups_are_linesights() -> None:
    assert [physics_group(m) for m in (16, 0, 1, 18, 2, 20, 6, 8, 17, 7, 26, 3, 29)] == [0, 0, 0, 0, 1, 1, 2, 2, 2,
                                                                                           3, 3, 4, 4]  # fmt: skip
    assert physics_group(0x30000 | 7) == 3 and physics_group(31) == 4  # high bits masked; unknown ids: "other"


def test_float_vector_from_a_hand_built_blob() -> None:
    state = parse_state(encode_state(hand_built_state(), template=b""))
    line = zone_line(STRAIGHT)
    progress = ZoneProgress(line)
    progress.update(state.position_m, state.race_time_ms)  # centre 26 (x = 3.0), 12.85 m along the line
    previous = np.zeros(float_input_dim(CONFIG), np.float32)
    previous[LAYOUT["counter_gearbox_state"]] = 4.0
    floats = game_float_inputs(state, progress.zone_index, progress.distance_m, line, [5, 2], CONFIG, previous)
    assert floats.shape == (184,) and floats.dtype == np.float32 and floats[0] == 0.0

    def block(name: str) -> list[float]:
        return [round(float(value), 5) for value in floats[LAYOUT[name]]]

    # Oldest first; three missing actions count as forward; then "right", then "accelerate + right".
    assert block("previous_actions") == [1, 0, 0, 0] * 3 + [0, 0, 0, 1] + [1, 0, 0, 1]
    assert block("wheel_is_sliding") == [1, 0, 0, 1] and block("wheel_has_ground_contact") == [1, 1, 0, 1]
    assert block("wheel_damper_absorb") == [0.01, 0.02, 0.03, 0.04]
    assert block("gearbox_state") == [1] and block("gear") == [3] and block("engine_rpm") == [6500]
    assert block("counter_gearbox_state") == [5]  # previous 4 + 1 while the gearbox state is non-zero
    assert block("wheel_contact_material_groups") == np.eye(4).ravel().tolist()
    # M = Rᵀ: car frame (left, up, forward) = (−z, y, x) of the world vector.
    assert block("angular_velocity_car_frame_radps") == [-0.3, 0.2, 0.1]
    assert block("velocity_car_frame_mps") == [-3.0, 1.0, 20.0]
    assert block("up_vector_car_frame") == [0, 1, 0]
    # Zone k = centre 26 + 20 k at x = 3 + 10 k: (0, 0, 10 k − 0.1) ahead of the car.
    zones = floats[LAYOUT["zone_centers_car_frame_m"]].reshape(40, 3)
    np.testing.assert_allclose(zones, np.stack([np.zeros(40), np.zeros(40), 10.0 * np.arange(40) - 0.1], 1), atol=1e-5)
    assert floats[LAYOUT["distance_to_finish_m"]][0] == pytest.approx(30.5 - 12.85, abs=1e-5)
    assert block("is_freewheeling") == [1]
    # Without a previous vector (first step) the counter starts at 0; a zero gearbox state resets it.
    assert game_float_inputs(state, 26, 12.85, line, [], CONFIG)[LAYOUT["counter_gearbox_state"]][0] == 0.0


def sim_car_as_game_state(env: VecRaceEnv) -> SimState:
    """What the game would report for the simulator's car 0, built from its physical meaning: a level body with
    heading ψ (forward (cos ψ, 0, sin ψ), left = up × forward), the vertical speed that follows the road's slope, the
    yaw rate as a rotation about world y (positive turning left), four wheels on asphalt
    sharing the sliding-or-wall flag, and the car's gear and rpm."""
    heading = float(env.headings_rad[0])
    forward = np.array([np.cos(heading), 0.0, np.sin(heading)])
    left = np.cross([0.0, 1.0, 0.0], forward)
    track = env.track
    segment = min(int(np.searchsorted(track.cumulative_distance_m, env.progress_m[0])) - 1, len(track.centerline_m) - 2)
    delta = np.diff(track.centerline_m, axis=0)[max(segment, 0)]
    planar = np.hypot(delta[0], delta[2])
    vx, vz = env.velocities_mps[0]
    vy = (vx * delta[0] + vz * delta[2]) / planar * delta[1] / planar
    state = hand_built_state()
    state.position_m = env.positions_m[0]
    state.rotation = np.stack([left, [0.0, 1.0, 0.0], forward], axis=1)
    state.linear_velocity_mps = np.array([vx, vy, vz])
    state.angular_velocity_radps = np.array([0.0, -env.yaw_rates_radps[0], 0.0])
    sliding = bool(env.sliding[0] or env.wall_contact[0])  # SIM_SLIDING_RULE
    state.wheels = WheelStates(np.zeros(4), np.ones(4, bool), np.full(4, 16), np.full(4, sliding))
    # The gearbox: the car's gear, rpm = max_rpm x speed / that gear's top speed (the constants of sim/car.py).
    gear = int(env.car_state(0)[S_GEAR])
    rpm = env.car_params.max_rpm * min(float(np.hypot(vx, vz)) / env.car_params.gear_top_speeds_mps()[gear - 1], 1.0)
    state.gear, state.actual_rpm, state.gearbox_state, state.is_freewheeling = gear, rpm, 0, False
    return state


@pytest.mark.parametrize("track_name", ["hills", "technical"])
def test_simulator_kernel_and_game_function_agree_on_the_same_car_state(track_name: str) -> None:
    track = load_track(track_name)
    env = VecRaceEnv(track, 1, render_images=False)
    line = zone_line(track.centerline_m)
    progress = ZoneProgress(line)
    rng = np.random.default_rng(0)
    actions: list[int] = []
    for step in range(300):
        action = int(rng.integers(0, 12)) if rng.random() < 0.3 else int(rng.integers(0, 3))
        actions.append(action)
        result = env.step(np.array([action]))
        progress.update(result.positions_m[0], int(result.race_time_ms[0]))
        if step % 10 == 0 or step == 299:
            game = game_float_inputs(sim_car_as_game_state(env), progress.zone_index, progress.distance_m, line,
                                     actions, CONFIG)  # fmt: skip
            np.testing.assert_allclose(game, result.floats[0], atol=2e-4, err_msg=f"{track_name}, step {step}")
        if result.terminated[0] or result.truncated[0]:
            break
    last_action = result.floats[0, LAYOUT["previous_actions"]][-4:].tolist()
    assert ACTIONS[actions[-1]].astype(np.float32).tolist() == last_action  # the newest comes last


def test_gray_frame_uses_opencvs_weights() -> None:
    bgra = np.zeros((2, 3, 4), np.uint8)
    bgra[0, 0, :3] = (0, 0, 255)  # red: 0.299 · 255 = 76.2
    bgra[0, 1, :3] = (0, 255, 0)  # green: 0.587 · 255 = 149.7
    bgra[0, 2, :3] = (255, 0, 0)  # blue: 0.114 · 255 = 29.1
    bgra[1, :, :3] = (10, 200, 100)  # 0.114 · 10 + 0.587 · 200 + 0.299 · 100 = 148.44
    gray = gray_frame_from_bgra(bgra)
    assert gray.shape == (1, 2, 3) and gray.dtype == np.uint8
    assert gray[0].tolist() == [[76, 150, 29], [148, 148, 148]]
    with pytest.raises(ValueError, match="BGRA"):
        gray_frame_from_bgra(np.zeros((2, 3, 3), np.uint8))

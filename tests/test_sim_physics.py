"""Car physics invariants: walls, top speed, gears, braking, grip, slopes, exact finish time."""

from __future__ import annotations

import numpy as np
import pytest

from trackrl.config import EnvironmentConfig
from trackrl.sim.actions import ACTION_NAMES
from trackrl.sim.car import DEFAULT_CAR, S_GEAR, S_SHIFT_TICKS_LEFT, CarParams, engine_rpm
from trackrl.sim.env import VecRaceEnv
from trackrl.sim.observation import float_input_layout
from trackrl.sim.track import Track, load_track

ACCEL, ACCEL_RIGHT, NOTHING, BRAKE = (ACTION_NAMES.index(n) for n in ("accel", "accel+right", "nothing", "brake"))
LONG_RACE = EnvironmentConfig(cutoff_rollout_if_no_vcp_passed_within_duration_ms=300_000)


def straight_track(length_m: float, width_m: float = 16.0, slope: float = 0.0) -> Track:
    x = np.linspace(0.0, length_m, round(length_m / 0.5) + 1)
    return Track("straight", np.stack([x, slope * x, np.zeros_like(x)], axis=1), width_m)


def distance_to_polyline(points_xz: np.ndarray, line_xz: np.ndarray) -> np.ndarray:
    """Independent brute-force planar distance of each point to a polyline."""
    a, b = line_xz[:-1], line_xz[1:]
    ab = b - a
    t = np.clip(np.einsum("pij,ij->pi", points_xz[:, None] - a[None], ab) / np.einsum("ij,ij->i", ab, ab), 0, 1)
    nearest = a[None] + t[..., None] * ab[None]
    return np.linalg.norm(points_xz[:, None] - nearest, axis=2).min(axis=1)


@pytest.mark.parametrize("angle_deg", [10.0, 45.0, 90.0])
def test_no_passing_through_walls_at_80_mps(angle_deg: float) -> None:
    track = straight_track(600.0)
    env = VecRaceEnv(track, 1, env_config=LONG_RACE, render_images=False)
    heading = np.deg2rad(angle_deg)  # towards the right wall (+z)
    env.set_car_state(0, (100.0, 0.0), heading, (80 * np.cos(heading), 80 * np.sin(heading)))
    limit_m = track.road_width_m / 2 - DEFAULT_CAR.car_half_width_m
    for _ in range(60):
        result = env.step(np.array([ACCEL_RIGHT]))
        assert abs(result.positions_m[0, 2]) <= limit_m + 1e-9  # z is the lateral offset on this track
        if env.wall_contact[0]:
            assert env.velocities_mps[0, 1] <= 1e-9  # never moving on into the wall


@pytest.mark.parametrize("angle_deg", [10.0, 45.0, 90.0])
def test_a_wall_removes_the_outward_speed_and_keeps_the_motion_along_it(angle_deg: float) -> None:
    # The car touches the right wall (+z) on the first tick, its heading along its velocity (no tyre slip) and no
    # input: before the wall only drag acts. Invariants for any car constants: the outward speed is gone within the
    # step, the kinetic energy per mass drops by at least the outward part (v² ≤ v_along²), and what is left moves
    # along the wall in the direction the car was going.
    track = straight_track(600.0)
    env = VecRaceEnv(track, 1, env_config=LONG_RACE, render_images=False)
    limit_m = track.road_width_m / 2 - DEFAULT_CAR.car_half_width_m
    heading = np.deg2rad(angle_deg)
    v_along, v_out = 80 * np.cos(heading), 80 * np.sin(heading)
    env.set_car_state(0, (100.0, limit_m - 0.01), heading, (v_along, v_out))
    result = env.step(np.array([NOTHING]))
    vx, vz = env.velocities_mps[0]
    assert env.wall_contact[0] and result.positions_m[0, 2] <= limit_m + 1e-9
    assert vz <= 1e-9  # outward speed removed
    assert vx**2 + vz**2 <= v_along**2 * (1 + 1e-9)  # energy: at least ½ v_out² per mass lost
    assert vx >= 0.0  # not thrown backwards
    if angle_deg < 45.0:
        assert vx > 0.5 * v_along and abs(vz) < 0.05 * vx  # a grazing hit keeps going, along the wall
    # Coasting on, the car never gains energy at the wall and never goes back through it.
    speeds = [result.speed_mps[0]]
    for _ in range(20):
        result = env.step(np.array([NOTHING]))
        assert result.positions_m[0, 2] <= limit_m + 1e-9
        speeds.append(result.speed_mps[0])
    assert np.all(np.diff(speeds) <= 1e-9)


def test_random_driving_stays_inside_the_road_on_a_curvy_track() -> None:
    track = load_track("technical")
    env = VecRaceEnv(track, 16, env_config=LONG_RACE, render_images=False)
    rng = np.random.default_rng(1)
    positions = []
    for _ in range(400):
        # Mostly throttle with random steering bursts: many wall hits at speed.
        result = env.step(np.where(rng.random(16) < 0.6, rng.integers(0, 3, 16), rng.integers(0, 12, 16)))
        positions.append(result.positions_m[:, [0, 2]])
    points = np.concatenate(positions)[::7]
    distance = distance_to_polyline(points, track.centerline_m[:, [0, 2]])
    # Walls follow the 0.5 m centre-line segments one by one; just outside a polyline vertex the wall is the
    # segment's straight continuation, a few millimetres from the exact distance to the polyline.
    assert distance.max() <= track.road_width_m / 2 - DEFAULT_CAR.car_half_width_m + 5e-3
    assert distance.max() > track.road_width_m / 2 - DEFAULT_CAR.car_half_width_m - 0.1  # walls were hit


def flat_top_speed_mps(car: CarParams) -> float:
    """Solve A0 (1 − v² / v_rev²) = c v² + r for v (drive = resistance on flat ground), from the constants alone."""
    a0, v_rev = car.drive_accel_standstill_mps2, car.gear_5_rev_limit_speed_mps
    return float(np.sqrt((a0 - car.rolling_resistance_mps2) / (car.drag_per_m + a0 / v_rev**2)))


def test_top_speed_is_reached_and_bounded() -> None:
    env = VecRaceEnv(straight_track(12000.0), 1, env_config=LONG_RACE, render_images=False)
    speeds = np.array([env.step(np.array([ACCEL])).speed_mps[0] for _ in range(1400)])  # 70 s of throttle
    assert not env._finished[0]
    v_terminal = flat_top_speed_mps(DEFAULT_CAR)
    # The game's range: above the last shift (342 km/h), below 5th gear's rev limit and the game's ~1000 km/h cap.
    assert 342 / 3.6 < v_terminal < DEFAULT_CAR.gear_5_rev_limit_speed_mps
    assert np.all(np.diff(speeds) >= -0.05)  # flat ground: speed only dips (drag) during the 0.1 s shifts
    assert speeds.max() <= v_terminal + 1e-6
    assert speeds[-1] > v_terminal - 1.5


def tick_trace(car: CarParams, ticks: int, action: int = 0, start_speed_mps: float = 0.0) -> tuple:
    """One 10 ms tick per step on a long flat straight: (forward speed, gear, shift ticks left) after each tick."""
    config = EnvironmentConfig(tm_engine_step_per_action=1, cutoff_rollout_if_no_vcp_passed_within_duration_ms=300_000)
    env = VecRaceEnv(straight_track(9000.0), 1, env_config=config, render_images=False, car_params=car)
    env.set_car_state(0, (1.0, 0.0), 0.0, (start_speed_mps, 0.0))
    speed, gear, left = [env.velocities_mps[0, 0]], [env._state[0, S_GEAR]], [env._state[0, S_SHIFT_TICKS_LEFT]]
    for _ in range(ticks):
        env.step(np.array([action]))
        speed.append(env.velocities_mps[0, 0])
        gear.append(env._state[0, S_GEAR])
        left.append(env._state[0, S_SHIFT_TICKS_LEFT])
    return np.array(speed), np.array(gear).astype(int), np.array(left)


def first_time_at_s(speed_mps: np.ndarray, target_mps: float) -> float:
    return float(np.argmax(speed_mps >= target_mps)) * 0.01


def envelope_time_to_speed_s(car: CarParams, target_mps: float, shifts_before: int = 0) -> float:
    """dv/dt = A0 (1 − v² / v_rev²) − c v² − r integrated with RK4, plus the shift pauses: the car keeps no drive
    for shift_duration_s at each gear top below the target (drag only there)."""
    a0, v_rev = car.drive_accel_standstill_mps2, car.gear_5_rev_limit_speed_mps

    def accel(v: float) -> float:
        return a0 * (1 - (v / v_rev) ** 2) - car.drag_per_m * v * v - car.rolling_resistance_mps2

    v, t, dt = 0.0, 0.0, 1e-4
    tops = list(car.gear_top_speeds_mps()[:shifts_before])
    while v < target_mps:
        if tops and v >= tops[0]:
            tops.pop(0)
            for _ in range(round(car.shift_duration_s / dt)):  # coasting: drag and rolling only
                v -= (car.drag_per_m * v * v + car.rolling_resistance_mps2) * dt
            t += car.shift_duration_s
        k1 = accel(v)
        k2 = accel(v + dt * k1 / 2)
        k3 = accel(v + dt * k2 / 2)
        k4 = accel(v + dt * k3)
        v += dt * (k1 + 2 * k2 + 2 * k3 + k4) / 6
        t += dt
    return t


def test_zero_to_100_kmh_and_to_300_kmh_match_the_drive_curve_and_shift_pauses() -> None:
    speed, _, _ = tick_trace(DEFAULT_CAR, 1200)
    # 0-100 km/h: no shift yet; the simulator's first tick at or above 100 km/h, within one tick of the ODE.
    t_100 = envelope_time_to_speed_s(DEFAULT_CAR, 100 / 3.6)
    assert first_time_at_s(speed, 100 / 3.6) == pytest.approx(t_100, abs=0.011)
    assert 2.0 < first_time_at_s(speed, 100 / 3.6) < 3.0
    # 0-300 km/h crosses three shifts (100, 162, 235 km/h), each a 0.1 s pause.
    t_300 = envelope_time_to_speed_s(DEFAULT_CAR, 300 / 3.6, shifts_before=3)
    assert first_time_at_s(speed, 300 / 3.6) == pytest.approx(t_300, abs=0.03)


def test_gears_shift_up_at_the_constants_with_a_loss_of_drive() -> None:
    car = DEFAULT_CAR
    speed, gear, left = tick_trace(car, 1500)  # 15 s: all five gears
    ups = np.flatnonzero(np.diff(gear) != 0) + 1
    assert gear[0] == 1 and gear[ups].tolist() == [2, 3, 4, 5]  # only upshifts, one gear at a time
    for tick, top in zip(ups, car.gear_top_speeds_mps()[:4], strict=True):
        # The shift happens on the first tick whose forward speed reaches the gear's top speed (the tick's speed
        # before its own force is applied: the previous tick's end speed).
        assert speed[tick - 1] >= top > speed[tick - 2]
        # Loss of drive: for shift_duration_s (the shift tick and the next ones) the car only coasts (drag +
        # rolling resistance), then drives again.
        pause = speed[tick - 1 : tick + car.shift_ticks]
        coast = (car.drag_per_m * pause[:-1] ** 2 + car.rolling_resistance_mps2) * 0.01
        np.testing.assert_allclose(np.diff(pause), -coast, rtol=1e-6, atol=1e-9)
        assert left[tick] == car.shift_ticks and np.all(left[tick + car.shift_ticks :][:5] == 0)
        assert speed[tick + car.shift_ticks] > speed[tick + car.shift_ticks - 1]  # driving again
    assert np.all(gear[ups[-1] :] == 5)


def test_gears_shift_down_when_braking_and_rpm_follows_speed_and_gear() -> None:
    car = DEFAULT_CAR
    params = car.as_array()
    speed, gear, _ = tick_trace(car, 1000, action=BRAKE, start_speed_mps=400 / 3.6)
    assert gear[0] == 5 and gear[-1] == 1 and np.all(np.diff(gear) <= 0)
    for g in (2, 3, 4, 5):  # down below 90 % of the lower gear's top speed (no hunting during a shift's dip)
        tick = int(np.argmax(gear < g))
        assert speed[tick - 1] < car.downshift_fraction * car.gear_top_speeds_mps()[g - 2] <= speed[tick - 2]
    tops = car.gear_top_speeds_mps()
    for g in range(1, 6):
        assert engine_rpm(tops[g - 1], g, params) == pytest.approx(car.max_rpm)  # the red line at the shift
        assert engine_rpm(tops[g - 1] / 2, g, params) == pytest.approx(car.max_rpm / 2)  # a fixed ratio per gear
    # After an upshift the rpm falls by the ratio of the two gears' top speeds (100 -> 162 km/h: to 61.7 %).
    assert engine_rpm(tops[0], 2, params) == pytest.approx(car.max_rpm * 100 / 162)
    assert engine_rpm(0.0, 1, params) == 0.0


def test_car_params_refuse_gears_out_of_order() -> None:
    with pytest.raises(ValueError, match="gear top speeds must increase"):
        CarParams(gear_2_top_speed_mps=20.0)  # below 1st gear's 27.8 m/s
    with pytest.raises(ValueError, match="drive at standstill must be positive"):
        CarParams(drive_accel_standstill_mps2=0.0)


def braking_distance_m(speed_mps: float) -> float:
    env = VecRaceEnv(straight_track(800.0), 1, env_config=LONG_RACE, render_images=False)
    env.set_car_state(0, (10.0, 0.0), 0.0, (speed_mps, 0.0))
    for _ in range(400):
        result = env.step(np.array([BRAKE]))
        if env.velocities_mps[0, 0] <= 0.0:  # stopped (holding brake at standstill then reverses)
            return result.positions_m[0, 0] - 10.0
    raise AssertionError("the car did not stop")


def test_braking_distance_grows_with_speed_and_matches_the_brake_force() -> None:
    speeds = [10.0, 20.0, 40.0, 60.0, 75.0]
    distances = [braking_distance_m(v) for v in speeds]
    assert np.all(np.diff(distances) > 0)
    car = DEFAULT_CAR
    for v, d in zip(speeds, distances, strict=True):
        # Brakes alone: v²/2B. Drag and rolling resistance only shorten it; discretisation adds < 1 step of travel.
        assert d <= v * v / (2 * car.brake_decel_mps2) + v * 0.05
        assert d >= v * v / (2 * (car.brake_decel_mps2 + car.drag_per_m * v * v + car.rolling_resistance_mps2)) - 0.5


def steer_for_one_second(speed_mps: float, action: str = "left") -> tuple[bool, float, float, float, float]:
    """On open ground (200 m wide), heading +x: (slid?, max lateral acceleration, min turn radius of the path,
    turn of the velocity direction in rad (+ = towards +z), lateral offset z reached in m)."""
    env = VecRaceEnv(straight_track(600.0, width_m=200.0), 1, env_config=LONG_RACE, render_images=False)
    env.set_car_state(0, (100.0, 0.0), 0.0, (speed_mps, 0.0))
    slid, velocities = False, [env.velocities_mps[0]]
    for _ in range(20):
        result = env.step(np.array([ACTION_NAMES.index(action)]))
        slid |= bool(env.sliding[0])
        velocities.append(env.velocities_mps[0])
    v = np.array(velocities)
    direction = np.unwrap(np.arctan2(v[:, 1], v[:, 0]))
    speed = np.linalg.norm(v, axis=1)
    turn_rate = np.abs(np.diff(direction)) / 0.05  # rad/s of the velocity vector
    lateral_accel = turn_rate * 0.5 * (speed[1:] + speed[:-1])
    radius = (0.5 * (speed[1:] + speed[:-1]) / np.maximum(turn_rate, 1e-9)).min()
    return slid, lateral_accel.max(), radius, direction[-1] - direction[0], result.positions_m[0, 2]


def test_grip_limit_slow_turns_grip_fast_turns_slide() -> None:
    car = DEFAULT_CAR
    grip_mps2 = car.grip_coefficient * car.gravity_mps2
    slid, lateral, radius, _, _ = steer_for_one_second(15.0)
    kappa = car.max_steer_curvature_per_m / (1 + (15.0 / car.steer_reference_speed_mps) ** 2)
    assert not slid and lateral < grip_mps2
    assert radius == pytest.approx(1 / kappa, rel=0.05)  # follows the steering geometry
    slid, lateral, radius, _, _ = steer_for_one_second(60.0)
    assert slid  # asks for more than the friction circle: slides
    assert lateral <= grip_mps2 * 1.02  # the tyres never give more than μ g sideways
    assert radius >= 60.0**2 / grip_mps2 * 0.95


@pytest.mark.parametrize("speed_mps", [15.0, 60.0])
def test_steering_left_turns_left_and_right_turns_right(speed_mps: float) -> None:
    # World frame of this straight track: the car heads +x and its right is +z (the +z wall is the right wall, see
    # headings_rad), so a left turn sends the velocity towards −z. Gripping (15 m/s) or sliding (60 m/s), the car
    # goes the way it is steered, and the two sides mirror each other.
    slid_left, _, _, turn_left, z_left = steer_for_one_second(speed_mps, "left")
    slid_right, _, _, turn_right, z_right = steer_for_one_second(speed_mps, "right")
    assert slid_left == slid_right == (speed_mps > 30.0)
    assert turn_left < -0.1 and z_left < -1.0
    assert turn_right == pytest.approx(-turn_left, abs=1e-9) and z_right == pytest.approx(-z_left, abs=1e-9)
    # The car's own inputs agree: after turning left, the centre line (straight ahead at the start) is on its right.
    env = VecRaceEnv(straight_track(600.0, width_m=16.0), 1, env_config=LONG_RACE, render_images=False)
    env.set_car_state(0, (100.0, 0.0), 0.0, (15.0, 0.0))
    for _ in range(4):
        floats = env.step(np.array([ACTION_NAMES.index("left")])).floats
    zones = dict(float_input_layout(env.env_config))["zone_centers_car_frame_m"]
    ahead = floats[0, zones].reshape(-1, 3)[3]  # car frame: x = left, z = forward
    assert ahead[0] < -0.5 and ahead[2] > 0


def test_gravity_slows_the_car_uphill() -> None:
    flat = VecRaceEnv(straight_track(400.0), 1, env_config=LONG_RACE, render_images=False)
    uphill = VecRaceEnv(straight_track(400.0, slope=0.08), 1, env_config=LONG_RACE, render_images=False)
    for env in (flat, uphill):
        env.set_car_state(0, (5.0, 0.0), 0.0, (30.0, 0.0))
    for _ in range(40):
        v_flat = flat.step(np.array([NOTHING])).speed_mps[0]
        v_up = uphill.step(np.array([NOTHING])).speed_mps[0]
    # 2 s coasting: the extra deceleration is g sinθ cosθ (planar) with tan θ = 0.08.
    theta = np.arctan(0.08)
    assert v_flat - v_up == pytest.approx(9.81 * np.sin(theta) * np.cos(theta) * 2.0, rel=0.05)


def test_finish_time_is_exact_at_tick_resolution() -> None:
    # No drag, no rolling resistance: coasting at exactly 20 m/s = 0.2 m per 10 ms tick. The finish plane
    # is 100.05 m from the start, so it is crossed during tick ceil(100.05 / 0.2) = 501: race time 5010 ms,
    # although actions only end at multiples of 50 ms.
    x = np.linspace(0.0, 100.05, 201)
    track = Track("exact", np.stack([x, np.zeros_like(x), np.zeros_like(x)], axis=1), 16.0)
    frictionless = CarParams(drag_per_m=0.0, rolling_resistance_mps2=0.0)
    env = VecRaceEnv(track, 1, render_images=False, car_params=frictionless)
    env.set_car_state(0, (0.0, 0.0), 0.0, (20.0, 0.0))
    for step in range(1, 200):  # noqa: B007 (step is used after the loop)
        result = env.step(np.array([NOTHING]))
        if result.terminated[0]:
            break
    assert step == 101  # ticks 501..505
    assert result.finished[0] and result.race_time_ms[0] == 5010
    assert result.progress_m[0] == pytest.approx(100.05)


def test_the_start_line_is_a_wall_for_a_car_reversing() -> None:
    # Holding brake from a standstill reverses; the car must not leave the track backwards through the start line,
    # and what is left of its motion there points into the track, not out of it.
    env = VecRaceEnv(straight_track(200.0), 1, env_config=LONG_RACE, render_images=False)
    env.set_car_state(0, (3.0, 0.0), 0.0, (0.0, 0.0))
    reversed_m = 0.0
    for _ in range(60):
        result = env.step(np.array([BRAKE]))
        reversed_m = max(reversed_m, 3.0 - result.positions_m[0, 0])
        assert result.positions_m[0, 0] >= -1e-9 and result.progress_m[0] >= 0.0
    assert reversed_m > 2.9  # it did reverse up to the line
    assert env.wall_contact[0] and env.velocities_mps[0, 0] >= -1e-9

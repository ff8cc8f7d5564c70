"""Linesight's virtual-checkpoint progress (sim/zone_progress.py) on synthetic lines against hand values."""

from __future__ import annotations

import numpy as np
import pytest

from trackrl.config import RewardsConfig
from trackrl.sim.zone_progress import (
    MAX_DISTANCE_TO_VIRTUAL_CHECKPOINT_M,
    ZoneProgress,
    extrapolate_and_smooth,
    no_progress_cutoff,
    step_reward,
    zone_line,
)

# A straight 20 m line along x, points 0.5 m apart: after the 20 points before the start, centre i lies at
# x = 0.5 (i − 20).
STRAIGHT = np.stack([np.arange(41) * 0.5, np.zeros(41), np.zeros(41)], axis=1)


def test_extrapolation_before_the_start_and_after_the_end() -> None:
    centers = extrapolate_and_smooth(STRAIGHT)
    assert centers.shape == (20 + 41 + 1000, 3)
    np.testing.assert_allclose(centers[0], [-10.0, 0, 0])  # 20 points of 0.5 m before x = 0
    np.testing.assert_allclose(centers[20], [0.0, 0, 0])
    np.testing.assert_allclose(centers[60], [20.0, 0, 0])  # the last real point
    np.testing.assert_allclose(centers[-1], [20.0 + 500.0, 0, 0])  # 1,000 points of 0.5 m after it


def test_smoothing_averages_the_points_five_either_side() -> None:
    bumped = STRAIGHT.copy()
    bumped[30, 2] = 1.0  # index 50 once extrapolated
    centers = extrapolate_and_smooth(bumped)
    # zc[5:-5] = (zc[:-10] + zc[10:]) / 2 on the unsmoothed values: the bump moves to 45 and 55 at half height.
    assert centers[50, 2] == 0.0 and centers[45, 2] == 0.5 and centers[55, 2] == 0.5
    assert np.count_nonzero(centers[:, 2]) == 2


def test_zone_update_forward_backward_and_distance_along_the_line() -> None:
    progress = ZoneProgress(zone_line(STRAIGHT))
    assert progress.zone_index == 20 and progress.distance_m == pytest.approx(9.75)  # 19 transitions + 0.25 m
    # Forward to the nearest centre (x = 3.0 at index 26); distance = cum[25] + (3.1 − transition 25) = 12.5 + 0.35.
    assert progress.update(np.array([3.1, 0.0, 0.0]), race_time_ms=500) == pytest.approx(12.85)
    assert progress.zone_index == 26 and progress.furthest_zone_index == 26
    # Backward when the car goes back: x = 1.0 is centre 22; the furthest index stays.
    progress.update(np.array([1.0, 0.0, 0.0]), race_time_ms=1000)
    assert progress.zone_index == 22 and progress.furthest_zone_index == 26
    assert progress.distance_m == pytest.approx(9.75 + 1.0)
    # A tie between two centres goes forward (<= forward, strictly < backward): x = 1.25 lies between 22 and 23.
    progress.update(np.array([1.25, 0.0, 0.0]), race_time_ms=1050)
    assert progress.zone_index == 23


def test_the_maximum_distance_rule() -> None:
    assert pytest.approx(45.0007, abs=1e-4) == MAX_DISTANCE_TO_VIRTUAL_CHECKPOINT_M
    far = ZoneProgress(zone_line(STRAIGHT))
    far.update(np.array([3.0, 46.0, 0.0]), race_time_ms=50)  # 46 m above the line: every centre is too far
    assert far.zone_index == 20
    near = ZoneProgress(zone_line(STRAIGHT))
    near.update(np.array([3.0, 44.0, 0.0]), race_time_ms=50)  # 44 m: within the limit
    assert near.zone_index == 26


def test_past_the_end_the_index_stops_at_the_last_real_point() -> None:
    line = zone_line(STRAIGHT)
    progress = ZoneProgress(line)
    for x in np.arange(0.5, 26.0, 0.5):
        progress.update(np.array([x, 0.0, 0.0]), race_time_ms=int(100 * x))
    assert progress.zone_index == line.last_index == 60  # x = 20, never into the extrapolated points
    # Distance = cum[59] + clip(25.5 − 19.75, 0, 0.5) = 29.5 + 0.5; the finish is at cum[61] = 30.5.
    assert progress.distance_m == pytest.approx(30.0) and line.finish_distance_m == pytest.approx(30.5)
    assert progress.distance_to_finish_m == pytest.approx(0.5)


def test_real_checkpoint_sync_holds_the_index_until_the_car_passes_near_the_checkpoint() -> None:
    checkpoint = np.array([[5.0, 0.0, 3.0]])  # 3 m beside centre 30 (x = 5)
    line = zone_line(STRAIGHT, checkpoint)
    assert np.flatnonzero(line.real_checkpoint_radius_m == 12.0).tolist() == [30]
    np.testing.assert_array_equal(line.real_checkpoint_positions_m[30], checkpoint[0])
    within = ZoneProgress(line)
    within.update(np.array([6.0, 0.0, 0.0]), race_time_ms=50)  # 3.2 m from the checkpoint: passes it
    assert within.zone_index == 32
    wide = ZoneProgress(line)
    wide.update(np.array([6.0, 0.0, -13.0]), race_time_ms=50)  # 16.0 m from it: held at its VCP
    assert wide.zone_index == 30
    # A checkpoint further than 12 m from every VCP links none.
    assert (zone_line(STRAIGHT, np.array([[5.0, 0.0, 12.5]])).real_checkpoint_radius_m > 12.0).all()


def test_a_lap_map_links_one_checkpoint_once_per_pass() -> None:
    # Out along x, a half circle of 3 m radius, back 6 m beside it: the checkpoint at x = 30 is near both passes.
    out = np.stack([np.arange(241) * 0.5, np.zeros(241), np.zeros(241)], axis=1)
    angle = np.linspace(0.0, np.pi, 20)[1:-1]
    turn = np.stack([120.0 + 3.0 * np.sin(angle), np.zeros(18), 3.0 - 3.0 * np.cos(angle)], axis=1)
    back = out[::-1] + np.array([0.0, 0.0, 6.0])
    line = zone_line(np.concatenate([out, turn, back]), np.array([[30.0, 0.0, 3.0]]))
    linked = np.flatnonzero(line.real_checkpoint_radius_m == 12.0)
    assert len(linked) == 2 and abs(int(linked[1]) - int(linked[0])) > 200


def test_no_progress_cutoff_and_timer_restart() -> None:
    progress = ZoneProgress(zone_line(STRAIGHT), cutoff_ms=2000)
    progress.update(np.array([0.0, 0.0, 0.0]), race_time_ms=300)  # no new furthest zone: the timer stays at 0
    assert progress.last_progress_improvement_ms == 0
    progress.update(np.array([3.1, 0.0, 0.0]), race_time_ms=500)
    assert progress.last_progress_improvement_ms == 500
    progress.update(np.array([1.0, 0.0, 0.0]), race_time_ms=900)  # backwards: no restart
    assert not progress.no_progress(2500) and progress.no_progress(2550)
    assert no_progress_cutoff(2001, 0, 2000) and not no_progress_cutoff(2000, 0, 2000)


def test_step_reward_uses_the_simulator_config_keys() -> None:
    rewards = RewardsConfig()
    assert step_reward(10.0, 50, rewards) == pytest.approx(-0.0012 * 50 + 0.01 * 10.0)  # Linesight: -0.06 + 0.1
    custom = RewardsConfig(constant_reward_per_ms=-0.002, reward_per_m_advanced_along_centerline=0.05)
    np.testing.assert_allclose(step_reward(np.array([0.0, 2.0]), np.array([50, 20]), custom), [-0.1, 0.06])

"""Real maps: a `.npy` racing line with its side file (road width, the line's place in the road), bridges, and the
race-cutoff warning of `track info`."""

from __future__ import annotations

import json

import numpy as np
import pytest

from trackrl.errors import UserError
from trackrl.sim.drivers import braking_driver_actions
from trackrl.sim.env import VecRaceEnv
from trackrl.sim.track import TrackError, load_track


def arc_line(radius_m: float, angle_rad: float = 1.5 * np.pi, spacing_m: float = 0.5) -> np.ndarray:
    """A counter-clockwise arc in the (x, z) plane from (R, 0): its right normal (−t_z, t_x) points to the centre."""
    t = np.linspace(0.0, angle_rad, round(radius_m * angle_rad / spacing_m) + 1)
    return np.stack([radius_m * np.cos(t), np.zeros_like(t), radius_m * np.sin(t)], axis=1)


def write_track(tmp_path, line: np.ndarray, side_file: str | None, suffix: str = ".track.yaml", stem: str = "A01"):
    path = tmp_path / f"{stem}.npy"
    np.save(path, line)
    if side_file is not None:
        (tmp_path / f"{stem}{suffix}").write_text(side_file, encoding="utf-8")
    return path


def planar_radius(points: np.ndarray) -> np.ndarray:
    return np.hypot(points[:, 0], points[:, 2])


def test_without_a_side_file_the_road_is_centred_on_the_line_16_m_wide(tmp_path) -> None:
    track = load_track(str(write_track(tmp_path, arc_line(60.0), None)))
    assert track.road_width_m == 16.0 and track.side_file is None and track.name == "A01"
    np.testing.assert_allclose(planar_radius(track.centerline_m), 60.0, atol=0.01)


def test_side_file_moves_the_road_centre_off_the_racing_line(tmp_path) -> None:
    """The line lies 3 m right of the road centre; on a counter-clockwise arc, right is inward, so the road centre is
    the arc of radius 63 m (60 + 3), and the given width and name are the track's."""
    path = write_track(tmp_path, arc_line(60.0), "road_width_m: 24\nline_offset_m: 3.0\nname: Bend\n")
    track = load_track(str(path))
    assert (track.name, track.road_width_m, track.side_file) == ("Bend", 24.0, str(tmp_path / "A01.track.yaml"))
    np.testing.assert_allclose(planar_radius(track.centerline_m), 63.0, atol=0.01)
    assert load_track(str(path), road_width_m=30.0).road_width_m == 30.0  # --road-width / map cycle win


def test_per_point_offsets_and_a_json_side_file(tmp_path) -> None:
    line = arc_line(60.0)
    offsets = np.linspace(-4.0, 4.0, len(line))  # from 4 m left of the centre to 4 m right
    path = write_track(tmp_path, line, json.dumps({"road_width_m": 20, "line_offset_m": offsets.tolist()}),
                       suffix=".track.json")  # fmt: skip
    centre = load_track(str(path)).centerline_m
    radius = planar_radius(centre)
    assert radius[0] == pytest.approx(56.0, abs=0.01) and radius[-1] == pytest.approx(64.0, abs=0.01)
    assert np.all(np.diff(radius) > 0)


BAD_SIDE_FILES = [
    ("road_width: 20\n", "unknown key road_width"),
    ("road_width_m: -3\n", "road_width_m must be a number > 0"),
    ("road_width_m: wide\n", "road_width_m must be a number > 0"),
    ("road_width_m: .nan\n", "road_width_m must be a number > 0"),
    ("line_offset_m: left\n", "line_offset_m must be a number or a list"),
    ("line_offset_m: [1, two]\n", "line_offset_m must be a number or a list"),
    ("line_offset_m: [1.0, 2.0]\n", "line_offset_m has 2 values but the .npy has"),
    ("line_offset_m: 9\n", "line_offset_m 9 m at point 0 puts the line off a road 16 m wide"),
    ("road_width_m: 40\nline_offset_m: -12\n", "line_offset_m -12 m at point 1 folds the road centre"),
    ("name: ''\n", "name must be a non-empty string"),
    ("- 1\n- 2\n", "must be a mapping of keys"),
    ("road_width_m: [\n", "cannot be read"),
]


@pytest.mark.parametrize(("text", "message"), BAD_SIDE_FILES)
def test_bad_side_files_are_one_clear_error_naming_file_and_key(tmp_path, text: str, message: str) -> None:
    path = write_track(tmp_path, arc_line(10.0), text)  # radius 10 m: a 12 m offset to the outside folds it
    with pytest.raises(UserError, match=r"A01\.track\.yaml") as info:
        load_track(str(path))
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_two_side_files_are_refused(tmp_path) -> None:
    path = write_track(tmp_path, arc_line(60.0), "road_width_m: 20\n")
    (tmp_path / "A01.track.json").write_text("{}", encoding="utf-8")
    with pytest.raises(UserError, match="two side files"):
        load_track(str(path))


def figure_eight(height_at_crossing_m: float, size_m: float = 1.0) -> np.ndarray:
    """A figure eight crossing itself at the origin (t = 0 and t = π); the second pass is that much higher."""
    t = np.linspace(0, 2 * np.pi, 2000)
    y = height_at_crossing_m * (1 - np.cos(t)) / 2
    return np.stack([150 * size_m * np.sin(t), y, 80 * size_m * np.sin(2 * t)], axis=1)[:-50]


def test_a_crossing_is_refused_unless_one_road_passes_above_the_other(tmp_path) -> None:
    for height_m in (0.0, 3.0):  # 3 m: two roads stacked closer than a car's clearance
        with pytest.raises(TrackError, match="overlaps itself"):
            load_track(str(write_track(tmp_path, figure_eight(height_m), None)))
    assert load_track(str(write_track(tmp_path, figure_eight(12.0), None))).length_m > 800


def test_a_car_drives_over_the_bridge_without_being_moved_to_the_road_below(tmp_path) -> None:
    """The simulator's projection on the centre line is local: at the crossing the car stays on its own level, its
    progress never jumps to the other pass, and it finishes."""
    track = load_track(str(write_track(tmp_path, figure_eight(12.0, size_m=0.5), "road_width_m: 12\n")))
    env = VecRaceEnv(track, 1, render_images=False)
    _, floats = env.reset()
    progress_m, heights_m = [0.0], []
    for _ in range(3000):
        result = env.step(braking_driver_actions(floats, env.env_config, grip_margin=0.8))
        floats = result.floats
        progress_m.append(float(result.progress_m[0]))
        heights_m.append(float(result.positions_m[0, 1]))
        if result.terminated[0] or result.truncated[0]:
            break
    assert result.finished[0]
    assert np.diff(progress_m).max() < 5.0  # one action moves the car < 5 m: never a jump to the other pass
    assert max(heights_m) > 11.0  # it did go over the bridge


def test_track_info_warns_when_the_achieved_time_exceeds_the_race_cutoff(tmp_path, monkeypatch, capsys) -> None:
    """A 9.9 km map whose optimal line takes 320.9 s in the simulator: `track info` says no race can finish."""
    import argparse

    from trackrl.sim import commands
    from trackrl.sim.lap_reference import LapReference

    def slow_reference(track):
        return LapReference(optimal_ms=310_000, achieved_ms=320_900, achieved_actions=[], solve_seconds=0.0,
                            mesh_history=[], initial_line_times_s={}, line_s_m=[], line_offset_m=[],
                            line_speed_mps=[80.0], line_heading_error_rad=[], line_xyz_m=[])  # fmt: skip

    monkeypatch.setattr(commands, "lap_reference", slow_reference)
    path = write_track(tmp_path, arc_line(60.0), "road_width_m: 20\n")
    commands.cmd_track_info(argparse.Namespace(track=str(path), road_width=None, json=True))
    summary = json.loads(capsys.readouterr().out)
    assert summary["road_width_m"] == 20.0 and summary["side_file"].endswith("A01.track.yaml")
    assert "320.9 s" in summary["race_cutoff_warning"] and "300.0 s" in summary["race_cutoff_warning"]
    commands.cmd_track_info(argparse.Namespace(track=str(path), road_width=None, json=False))
    assert "cutoff_rollout_if_race_not_finished_within_duration_ms" in capsys.readouterr().out


def hairpin(gap_m: float, straight_m: float = 100.0) -> np.ndarray:
    """Out along +x, a half circle of diameter gap_m, back along −x: two straights gap_m apart."""
    out = np.stack([np.arange(0, straight_m, 0.5), np.zeros(int(straight_m / 0.5))], axis=1)
    t = np.linspace(-np.pi / 2, np.pi / 2, 60)
    turn = np.stack([straight_m + gap_m / 2 * np.cos(t), gap_m / 2 + gap_m / 2 * np.sin(t)], axis=1)
    back = np.stack([np.arange(straight_m, 0, -0.5), np.full(int(straight_m / 0.5), gap_m)], axis=1)
    plan = np.concatenate([out, turn, back])
    return np.stack([plan[:, 0], np.zeros(len(plan)), plan[:, 1]], axis=1)


def test_side_by_side_roads_load_when_the_given_width_fits_between_them(tmp_path) -> None:
    path = write_track(tmp_path, hairpin(12.0), None)
    with pytest.raises(TrackError, match="overlaps itself"):
        load_track(str(path))  # 16 m roads 12 m apart overlap
    (tmp_path / "A01.track.yaml").write_text("road_width_m: 10\n", encoding="utf-8")
    assert load_track(str(path)).road_width_m == 10.0


def test_real_checkpoints_of_a_side_file_sync_the_virtual_checkpoints(tmp_path) -> None:
    """`real_checkpoints: cps.npy` (as `trackrl track checkpoints` writes it): the track carries the positions, and
    the virtual-checkpoint line of both backends links the VCP nearest each one with Linesight's 12 m radius."""
    from trackrl.sim.zone_progress import REAL_CHECKPOINT_RADIUS_M, zone_line

    line = arc_line(60.0)
    checkpoints = line[[200, 400]] + np.array([0.0, 1.0, 0.0])  # two checkpoint blocks on the line, 1 m above it
    np.save(tmp_path / "A01_cps.npy", checkpoints)
    track = load_track(str(write_track(tmp_path, line, "real_checkpoints: A01_cps.npy\n")))
    np.testing.assert_array_equal(track.real_checkpoint_positions_m, checkpoints)
    synced = zone_line(track.centerline_m, track.real_checkpoint_positions_m)
    linked = np.flatnonzero(synced.real_checkpoint_radius_m == REAL_CHECKPOINT_RADIUS_M)
    assert len(linked) == 2
    np.testing.assert_allclose(synced.real_checkpoint_positions_m[linked], checkpoints)
    env = VecRaceEnv(track, 1, render_images=False)  # the simulator's zone line is the same synced one
    env_linked = np.flatnonzero(env._zone_line.real_checkpoint_radius_m == REAL_CHECKPOINT_RADIUS_M)
    assert env_linked.tolist() == linked.tolist()


@pytest.mark.parametrize(("cps", "expected"), [
    (None, "cannot be read as a .npy"),
    (np.zeros((3, 2)), "must hold finite (N, 3) positions"),
    (np.full((2, 3), np.nan), "not non-finite values"),
    (np.array([["a", "b", "c"]]), "not an array of <U1 and shape (1, 3)"),
])  # fmt: skip
def test_bad_real_checkpoints_file_is_named(tmp_path, cps, expected) -> None:
    if cps is not None:
        np.save(tmp_path / "cps.npy", cps)
    path = write_track(tmp_path, arc_line(60.0), "real_checkpoints: cps.npy\n")
    with pytest.raises(UserError, match="real_checkpoints") as error:
        load_track(str(path))
    assert expected in str(error.value) and str(tmp_path / "A01.track.yaml") in str(error.value)

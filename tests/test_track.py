"""Tracks: built-ins, the Linesight .npy loader (resampling) and its error messages."""

from __future__ import annotations

import numpy as np
import pytest

from trackrl.errors import UserError
from trackrl.sim.track import Track, TrackError, builtin_track_names, load_track


def straight_line(length_m: float, spacing_m: float = 1.0) -> np.ndarray:
    x = np.arange(0.0, length_m + 1e-9, spacing_m)
    return np.stack([x, np.zeros_like(x), np.zeros_like(x)], axis=1)


def test_builtin_tracks_exist_and_are_uniformly_sampled() -> None:
    assert {"a01", "easy", "technical", "hills"} <= set(builtin_track_names())
    for name in builtin_track_names():
        track = load_track(name)
        spacing = np.linalg.norm(np.diff(track.centerline_m, axis=0), axis=1)
        assert np.allclose(spacing, 0.5, atol=1e-3), name
        assert track.cumulative_distance_m[-1] == pytest.approx(track.length_m)
        assert track.centerline_m.shape[1] == 3


def test_builtin_track_characters() -> None:
    technical, hills, easy = load_track("technical"), load_track("hills"), load_track("easy")
    assert technical.count_turns() >= 12 and technical.length_m > 1500
    low, high = hills.elevation_range_m
    assert high - low > 20  # the elevation track climbs
    assert easy.count_turns() == 1 and easy.length_m < 400


def test_npy_is_resampled_to_half_metre(tmp_path) -> None:
    # A quarter circle of radius 100 m sampled every ~2 m, with a climb: resampled to 0.5 m, endpoints kept.
    angle = np.linspace(0, np.pi / 2, 80)
    points = np.stack([100 * np.sin(angle), np.linspace(0, 5, 80), 100 * (1 - np.cos(angle))], axis=1)
    path = tmp_path / "arc.npy"
    np.save(path, points)
    track = load_track(str(path), road_width_m=12)
    spacing = np.linalg.norm(np.diff(track.centerline_m, axis=0), axis=1)
    assert np.allclose(spacing, spacing.mean(), rtol=1e-3) and spacing.mean() == pytest.approx(0.5, abs=0.01)
    assert np.allclose(track.centerline_m[0], points[0]) and np.allclose(track.centerline_m[-1], points[-1])
    chord_length_m = np.linalg.norm(np.diff(points, axis=0), axis=1).sum()
    assert track.length_m == pytest.approx(chord_length_m, rel=1e-3)
    assert track.road_width_m == 12 and track.name == "arc"
    # Zone centres: every 10 m along the line, the last one at the finish.
    zones = track.zone_centers_m
    assert np.allclose(np.linalg.norm(np.diff(zones[:-1], axis=0), axis=1), 10.0, atol=0.05)
    assert np.allclose(zones[-1], track.centerline_m[-1])


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (np.zeros((10, 2)), "shape"),
        (np.zeros((3, 10, 3)), "shape"),
        (np.where(np.arange(300)[:, None] == 7, np.nan, straight_line(299)), "NaN"),
        (straight_line(5), "long"),
        (np.array([[0, 0, 0], [100, 0, 0], [200, 0, 0.0]]), "apart"),
    ],
)
def test_malformed_centerlines_are_rejected(tmp_path, array: np.ndarray, message: str) -> None:
    path = tmp_path / "bad.npy"
    np.save(path, array)
    with pytest.raises(TrackError, match=message) as info:
        load_track(str(path))
    assert "bad.npy" in str(info.value)
    assert isinstance(info.value, UserError)


def _figure_eight(height_at_crossing_m: float) -> np.ndarray:
    """Crosses itself at the origin (t = 0 and t = pi); the second pass is height_at_crossing_m higher."""
    t = np.linspace(0, 2 * np.pi, 2000)
    y = height_at_crossing_m * (1 - np.cos(t)) / 2
    return np.stack([150 * np.sin(t), y, 80 * np.sin(2 * t)], axis=1)[:-50]


def test_self_crossing_road_is_rejected_but_a_bridge_is_not(tmp_path) -> None:
    path = tmp_path / "eight.npy"
    np.save(path, _figure_eight(0.0))
    with pytest.raises(TrackError, match="overlaps itself"):
        load_track(str(path))
    np.save(path, _figure_eight(12.0))  # the second loop passes 12 m above the first: a bridge
    assert load_track(str(path)).length_m > 500


def test_unknown_name_and_unreadable_file(tmp_path) -> None:
    with pytest.raises(TrackError, match="not a built-in track"):
        load_track("no_such_track")
    path = tmp_path / "text.npy"
    path.write_text("hello")
    with pytest.raises(TrackError, match=r"not a \.npy array"):
        load_track(str(path))
    path = tmp_path / "objects.npy"
    np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(TrackError):  # never unpickled
        load_track(str(path))


def test_track_constructor_validates() -> None:
    with pytest.raises(TrackError, match="road width"):
        Track("t", straight_line(50), road_width_m=-1.0)


def test_vertical_sections_are_rejected(tmp_path) -> None:
    x = np.linspace(0.0, 60.0, 121)
    height = np.where(x > 30.0, (x - 30.0) * 3.0, 0.0)  # a 72 degree wall after 30 m
    path = tmp_path / "wall.npy"
    np.save(path, np.stack([x, height, np.zeros_like(x)], axis=1))
    with pytest.raises(TrackError, match="steeper than 60 degrees"):
        load_track(str(path))


def test_zero_byte_file_and_a_header_promising_more_rows_than_the_file_holds(tmp_path) -> None:
    empty = tmp_path / "empty.npy"
    empty.write_bytes(b"")
    with pytest.raises(TrackError, match=r"empty\.npy: not a \.npy array"):
        load_track(str(empty))
    # A valid header claiming 1e11 rows in front of a few bytes: refused from the header, nothing allocated.
    huge = tmp_path / "huge.npy"
    with open(huge, "wb") as handle:
        np.lib.format.write_array_header_1_0(
            handle, {"descr": "<f8", "fortran_order": False, "shape": (100_000_000_000, 3)}
        )
        handle.write(np.zeros(30).tobytes())
    with pytest.raises(TrackError, match=r"header promises an array of shape \(100000000000, 3\)"):
        load_track(str(huge))
    with pytest.raises(TrackError, match="is a directory"):
        load_track(str(tmp_path))


def test_self_overlap_check_scales_to_a_200_km_line(tmp_path) -> None:
    """A spatial index (k-d tree), not all pairs (which took > 150 s and 4 GB at 200 km): a 200 km spiral loads, and
    the check still finds a crossing at its end."""
    # A wide Archimedean spiral: neighbouring turns 60 m apart, never closer than a road width.
    turns = np.linspace(0, 2 * np.pi * 30, 100_000)
    radius_m = 200.0 + 60.0 * turns / (2 * np.pi)
    spiral = np.stack([radius_m * np.cos(turns), np.zeros_like(turns), radius_m * np.sin(turns)], axis=1)
    assert np.linalg.norm(np.diff(spiral, axis=0), axis=1).sum() > 150_000
    path = tmp_path / "spiral.npy"
    np.save(path, spiral)
    assert load_track(str(path)).length_m > 150_000
    crossing = np.concatenate([spiral, spiral[-1] + np.linspace(0, -1, 2000)[:, None] * (spiral[-1] - spiral[-500])])
    np.save(path, crossing)  # the end doubles back over its own last kilometre
    with pytest.raises(TrackError, match="overlaps itself"):
        load_track(str(path))

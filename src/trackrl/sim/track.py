"""Tracks: a centre line (N, 3) in metres (x, y=up, z), points 0.5 m apart, and a road width.

Built-in tracks are defined in code (trackrl.sim.tracks); any Linesight-style `.npy` line loads too (a recorded
racing line: its side file, trackrl.sim.track_file, may give the road's width and the line's place in it).
Walls stand at ± road_width_m / 2 from the centre line. The finish is the plane through the last point,
perpendicular to the last segment.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from trackrl.errors import UserError
from trackrl.sim.track_file import DEFAULT_ROAD_WIDTH_M, read_track_settings, road_centre_from_line
from trackrl.sim.tracks import BUILTIN_TRACKS, build_centerline

POINT_SPACING_M = 0.5  # Linesight's centre-line spacing
MIN_TRACK_LENGTH_M = 20.0
MAX_GAP_BETWEEN_POINTS_M = 25.0  # a larger jump is not a sampled centre line
MAX_SLOPE = np.tan(np.deg2rad(60.0))
BRIDGE_CLEARANCE_M = 5.0  # roads may cross in plan view only with at least this height difference
TURN_CURVATURE_PER_M = 1.0 / 200.0  # sections curving more than this count as turns...
TURN_MIN_ANGLE_DEG = 20.0  # ...when they turn at least this much in total


class TrackError(UserError):
    """A track that cannot be used: unknown name, unreadable or malformed centre line."""


@dataclass(frozen=True, eq=False)
class Track:
    name: str
    centerline_m: np.ndarray  # (N, 3) float64, x, y = up, z; uniformly 0.5 m apart
    road_width_m: float
    side_file: str | None = None  # the `.track.yaml` a `.npy` track's road came from (track_file.py)
    # (K, 3) world metres: the map's real checkpoints, which the virtual checkpoints sync to (zone_progress.py)
    real_checkpoint_positions_m: np.ndarray | None = None

    def __post_init__(self) -> None:
        centerline = np.ascontiguousarray(self.centerline_m, dtype=np.float64)
        centerline.setflags(write=False)
        object.__setattr__(self, "centerline_m", centerline)
        _check_shape_and_values(centerline, self.name)
        _check_slopes(centerline, self.name)
        if not self.road_width_m > 0 or not np.isfinite(self.road_width_m):
            raise TrackError(f"track {self.name}: road width must be > 0 m, not {self.road_width_m}")

    @functools.cached_property
    def cumulative_distance_m(self) -> np.ndarray:
        """(N,) distance along the centre line from the start (3D), metres."""
        segment_lengths = np.linalg.norm(np.diff(self.centerline_m, axis=0), axis=1)
        return np.concatenate([[0.0], np.cumsum(segment_lengths)])

    @property
    def length_m(self) -> float:
        return float(self.cumulative_distance_m[-1])

    @property
    def zone_centers_m(self) -> np.ndarray:
        """(Z, 3) virtual-checkpoint (zone) centres every 10 m, the last one at the finish."""
        return self.zone_centers(10.0)

    def zone_centers(self, zone_spacing_m: float) -> np.ndarray:
        """(Z, 3) points at distances 0, s, 2s, ... along the centre line, plus the finish point."""
        n_zones = int(np.ceil(self.length_m / zone_spacing_m - 1e-9)) + 1
        distances_m = np.minimum(np.arange(n_zones) * zone_spacing_m, self.length_m)
        return self.point_at_distance(distances_m)

    def point_at_distance(self, distances_m: np.ndarray) -> np.ndarray:
        """Centre-line points at the given distances from the start (linear interpolation)."""
        return np.stack(
            [np.interp(distances_m, self.cumulative_distance_m, self.centerline_m[:, k]) for k in range(3)], axis=-1
        )

    @property
    def elevation_range_m(self) -> tuple[float, float]:
        return float(self.centerline_m[:, 1].min()), float(self.centerline_m[:, 1].max())

    @functools.cached_property
    def planar_heading_rad(self) -> np.ndarray:
        """(N-1,) heading of each segment in the (x, z) plane: direction (cos ψ, sin ψ)."""
        delta = np.diff(self.centerline_m, axis=0)
        return np.arctan2(delta[:, 2], delta[:, 0])

    def count_turns(self) -> int:
        """Number of curved sections (curvature > 1/200 m, turning at least 20 degrees in total)."""
        heading_change = np.diff(np.unwrap(self.planar_heading_rad))
        window = 9  # smooth over ±2 m so the 0.5 m sampling noise of recorded lines does not split turns
        smoothed = np.convolve(heading_change, np.ones(window) / window, mode="same")
        curvature = smoothed / POINT_SPACING_M
        turning = np.abs(curvature) > TURN_CURVATURE_PER_M
        n_turns, start = 0, None
        for i, is_turning in enumerate([*turning.tolist(), False]):
            if is_turning and start is None:
                start = i
            elif (not is_turning or np.sign(curvature[i]) != np.sign(curvature[start])) and start is not None:
                if abs(np.rad2deg(smoothed[start:i].sum())) >= TURN_MIN_ANGLE_DEG:
                    n_turns += 1
                start = i if is_turning else None
        return n_turns


def builtin_track_names() -> list[str]:
    return list(BUILTIN_TRACKS)


def load_track(name_or_path: str, road_width_m: float | None = None) -> Track:
    """A built-in track by name, or a Linesight `.npy` line (N x 3, y up), resampled to 0.5 m.

    A `.npy` is a recorded racing line; its side file (track_file.py: `NAME.track.yaml`) may say the road's width
    and where the line lies in it. Width: `road_width_m` if given, else the side file's, else 16 m.
    """
    if name_or_path in BUILTIN_TRACKS:
        return _builtin_track(name_or_path, road_width_m)
    path = Path(name_or_path)
    if not path.exists():
        raise TrackError(f"track '{name_or_path}': not a built-in track ({', '.join(BUILTIN_TRACKS)}) and no such file")
    raw = _as_float_line(read_centerline_file(path), str(path))
    settings = read_track_settings(path)
    width_m = float(road_width_m if road_width_m is not None else settings.road_width_m or DEFAULT_ROAD_WIDTH_M)
    centre = road_centre_from_line(raw, settings.line_offset_m, width_m, f"side file {settings.source}")
    centerline = prepare_centerline(centre, str(path), width_m)
    side_file = None if settings.source is None else str(settings.source)
    return Track(settings.name or path.stem, centerline, width_m, side_file, settings.real_checkpoint_positions_m)


def read_centerline_file(path: Path) -> np.ndarray:
    """The array of a `.npy` file, after checking that its header is one and that the file holds the data the header
    promises (a header claiming 1e11 rows must not make NumPy allocate them)."""
    if path.is_dir():
        raise TrackError(f"track file {path}: is a directory, not a .npy file")
    try:
        with open(path, "rb") as handle:
            version = np.lib.format.read_magic(handle)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(handle)
            else:
                shape, _, dtype = np.lib.format.read_array_header_2_0(handle)
            data_offset = handle.tell()
        file_size = path.stat().st_size
    except (ValueError, OSError, EOFError) as error:
        raise TrackError(f"track file {path}: not a .npy array ({error or 'empty file'})") from error
    if dtype.hasobject:
        raise TrackError(f"track file {path}: holds Python objects (dtype {dtype}); a numeric (N, 3) array is needed")
    expected_bytes = int(np.prod(shape, dtype=np.float64) * dtype.itemsize)
    if expected_bytes != file_size - data_offset:
        raise TrackError(
            f"track file {path}: the header promises an array of shape {shape} ({expected_bytes:,} bytes) but the file "
            f"holds {file_size - data_offset:,} bytes of data (truncated or corrupt)"
        )
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:
        raise TrackError(f"track file {path}: cannot be read as a .npy array ({error})") from error


@functools.lru_cache(maxsize=32)
def _builtin_track(name: str, road_width_m: float | None) -> Track:
    spec = BUILTIN_TRACKS[name]
    width_m = spec.road_width_m if road_width_m is None else float(road_width_m)
    centerline = prepare_centerline(build_centerline(spec.pieces), name, width_m)
    return Track(name=name, centerline_m=centerline, road_width_m=width_m)


def prepare_centerline(raw: np.ndarray, where: str, road_width_m: float) -> np.ndarray:
    """Check a raw centre line and resample it to uniform 0.5 m spacing; TrackError if malformed."""
    raw = _as_float_line(raw, where)
    gaps_m = np.linalg.norm(np.diff(raw, axis=0), axis=1)
    if gaps_m.max() > MAX_GAP_BETWEEN_POINTS_M:
        i = int(gaps_m.argmax())
        raise TrackError(
            f"track {where}: points {i} and {i + 1} are {gaps_m[i]:.1f} m apart (at most {MAX_GAP_BETWEEN_POINTS_M} m "
            "expected for a centre line sampled every ~0.5 m)"
        )
    raw = raw[np.concatenate([[True], gaps_m > 1e-9])]  # drop repeated points
    if len(raw) < 2 or gaps_m.sum() < MIN_TRACK_LENGTH_M:
        raise TrackError(f"track {where}: centre line is {gaps_m.sum():.1f} m long; {MIN_TRACK_LENGTH_M} m needed")
    centerline = resample_centerline(raw, POINT_SPACING_M)
    check_no_self_overlap(centerline, road_width_m, where)
    return centerline


def _as_float_line(raw: np.ndarray, where: str) -> np.ndarray:
    raw = np.asarray(raw)
    if raw.dtype.kind not in "fiu":
        raise TrackError(f"track {where}: centre line must be numeric, got dtype {raw.dtype}")
    raw = raw.astype(np.float64)
    _check_shape_and_values(raw, where)
    return raw


def _check_shape_and_values(centerline: np.ndarray, where: str) -> None:
    if centerline.ndim != 2 or centerline.shape[1] != 3:
        raise TrackError(f"track {where}: centre line must have shape (N, 3) = (x, y up, z), got {centerline.shape}")
    if len(centerline) < 3:
        raise TrackError(f"track {where}: centre line has {len(centerline)} points; at least 3 needed")
    bad = ~np.isfinite(centerline).all(axis=1)
    if bad.any():
        raise TrackError(f"track {where}: centre line has NaN/inf values, first at point {int(np.argmax(bad))}")


def _check_slopes(centerline: np.ndarray, where: str) -> None:
    """The car drives on the plan view and follows the height: no vertical sections (loops, wall rides)."""
    delta = np.diff(centerline, axis=0)
    planar_m = np.hypot(delta[:, 0], delta[:, 2])
    steep = np.abs(delta[:, 1]) > MAX_SLOPE * np.maximum(planar_m, 1e-12)
    if steep.any():
        i = int(np.argmax(steep))
        raise TrackError(
            f"track {where}: the centre line is steeper than {np.rad2deg(np.arctan(MAX_SLOPE)):.0f} degrees at point "
            f"{i} (height change {delta[i, 1]:.2f} m over {planar_m[i]:.2f} m); loops and vertical sections are not "
            "supported by the simulator"
        )


def resample_centerline(points_m: np.ndarray, spacing_m: float) -> np.ndarray:
    """Points at uniform 3D arc-length spacing along the polyline (the last point is kept exactly)."""
    cumulative_m = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(points_m, axis=0), axis=1))])
    n_intervals = max(1, round(cumulative_m[-1] / spacing_m))
    targets_m = np.linspace(0.0, cumulative_m[-1], n_intervals + 1)
    return np.stack([np.interp(targets_m, cumulative_m, points_m[:, k]) for k in range(3)], axis=-1)


def check_no_self_overlap(centerline_m: np.ndarray, road_width_m: float, where: str) -> None:
    """Reject a road that crosses or touches itself in plan view (unless one part passes > 5 m above).

    Two centre-line points closer than one road width in plan view overlap unless they are close along the
    line anyway: within a half-turn of the tightest usable radius (width / 2), i.e. pi * width / 2 apart.
    """
    from scipy.spatial import cKDTree

    step = 2  # every metre is enough to catch roads that overlap by a road width
    points = centerline_m[::step]
    cumulative_m = np.arange(len(points)) * POINT_SPACING_M * step
    min_arc_gap_m = np.pi * road_width_m / 2 + 2.0
    # Pairs closer than a road width in plan view from a k-d tree: O(N log N), not O(N²) (a 200 km line is 200k points).
    pairs = cKDTree(points[:, [0, 2]]).query_pairs(road_width_m, output_type="ndarray")
    if len(pairs):
        i_all, j_all = pairs[:, 0], pairs[:, 1]
        overlap = (np.abs(cumulative_m[i_all] - cumulative_m[j_all]) > min_arc_gap_m) & (
            np.abs(points[i_all, 1] - points[j_all, 1]) < BRIDGE_CLEARANCE_M
        )
        if overlap.any():
            first = int(np.argmin(np.where(overlap, np.minimum(i_all, j_all), len(points))))
            i, j = sorted((int(i_all[first]), int(j_all[first])))
            i_m, j_m = cumulative_m[i], cumulative_m[j]
            planar_gap_m = float(np.hypot(*(points[i, [0, 2]] - points[j, [0, 2]])))
            raise TrackError(
                f"track {where}: the road overlaps itself: the centre line at {i_m:.0f} m and at {j_m:.0f} m is "
                f"{planar_gap_m:.1f} m apart in plan view, less than the road width {road_width_m:g} m "
                "(a narrower --road-width may fit)"
            )

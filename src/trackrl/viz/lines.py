"""Racing-line figures: a run's line coloured by speed over the whole track, the reference line dashed, and a
time-delta strip (where along the track the run loses time against the reference); several runs' best lines on one
track (``trackrl compare --plots``); and a small NumPy line image for TensorBoard (cheap enough for every new best).

The reference comes from ``reference_line`` only, so its source (today sim/reference.py, a heuristic) can be swapped
for the optimal-control line in one place.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure

from trackrl.atomic import atomic_write_bytes
from trackrl.sim.lap_reference import lap_reference
from trackrl.sim.track import Track
from trackrl.viz.text import draw_text
from trackrl.viz.topdown import PANEL_RGB, SPEED_COLOURMAP, speed_colours, stamp_polyline
from trackrl.viz.track_drawing import (
    FIGURE_RUN_OFF_M,
    WALL_WIDTH_M,
    TrackPicture,
    draw_track,
    extended_centerline,
    rasterize_track,
    set_track_view,
)

DELTA_SECTION_M = 20.0  # the time-delta strip's bars: time lost (or gained) per 20 m of track
REFERENCE_STYLE = {"color": "white", "linestyle": (0, (4, 3)), "linewidth": 1.1}
TB_IMAGE_MAX_SIDE_PX = 480
CAPTION_BAND_PX = 22


@dataclass(frozen=True)
class ReferenceLine:
    label: str  # what the figures call it
    line_m: np.ndarray  # (M, 3)
    speed_mps: np.ndarray  # (M,)
    time_s: np.ndarray  # (M,) from the start
    race_time_ms: int


def reference_line(track: Track) -> ReferenceLine:
    """The line the pictures compare against: the optimal-control line of the car model (sim/optimal.py, cached by
    sim/lap_reference.py). Its clock is integrated along the drawn line, t_{k+1} = t_k + 2 Δs / (v_k + v_{k+1})
    (the trapezoid rule of the collocation), so its last entry is close to, not exactly, the solver's lap time."""
    lap = lap_reference(track)
    line_m = np.asarray(lap.line_xyz_m, dtype=np.float64)
    speed_mps = np.asarray(lap.line_speed_mps, dtype=np.float64)
    step_m = np.linalg.norm(np.diff(line_m, axis=0), axis=1)
    step_s = 2.0 * step_m / np.maximum(speed_mps[:-1] + speed_mps[1:], 1e-6)
    time_s = np.concatenate([[0.0], np.cumsum(step_s)])
    return ReferenceLine("optimal line (model)", line_m, speed_mps, time_s, int(lap.optimal_ms))


@dataclass(frozen=True)
class RunLine:
    label: str
    positions_m: np.ndarray  # (T+1, 3), one per 50 ms action step
    speeds_mps: np.ndarray  # (T+1,)
    race_time_ms: int
    finished: bool


def track_figure(track: Track, strip_height_in: float = 0.0, width_in: float = 9.0) -> tuple[Figure, list[Axes]]:
    """A figure whose map axes has the track's aspect ratio (no empty bands), plus an optional strip below."""
    c = track.centerline_m
    aspect = (np.ptp(c[:, 2]) + track.road_width_m + 30.0) / (np.ptp(c[:, 0]) + track.road_width_m + 30.0)
    map_height_in = float(np.clip((width_in - 1.6) * aspect + 0.9, 3.0, 10.0))
    if strip_height_in <= 0:
        fig = Figure(figsize=(width_in, map_height_in))
        FigureCanvasAgg(fig)
        return fig, [fig.subplots()]
    fig = Figure(figsize=(width_in, map_height_in + strip_height_in))
    FigureCanvasAgg(fig)  # off-screen, no pyplot: works under any backend the caller chose
    axes = fig.subplots(2, 1, gridspec_kw={"height_ratios": [map_height_in, strip_height_in]})
    return fig, list(axes)


def speeds_from_positions(positions_m: np.ndarray, action_duration_ms: float) -> np.ndarray:
    """Planar speed between consecutive saved positions (a saved trajectory stores positions only)."""
    step_m = np.linalg.norm(np.diff(np.asarray(positions_m)[:, [0, 2]], axis=0), axis=1)
    speeds = step_m / (action_duration_ms / 1000.0)
    return np.concatenate([[0.0], speeds])


def progress_along_centerline(track: Track, points_m: np.ndarray, block: int = 256) -> np.ndarray:
    """Distance along the centre line of the nearest centre-line point (in 3D, so a bridge and the road below it
    are told apart), for each of ``points_m`` (M, 3)."""
    points_m = np.asarray(points_m, dtype=np.float64)
    c = track.centerline_m
    nearest = np.empty(len(points_m), dtype=np.int64)
    for start in range(0, len(points_m), block):
        chunk = points_m[start : start + block]
        nearest[start : start + block] = np.argmin(((chunk[:, None, :] - c[None, :, :]) ** 2).sum(axis=2), axis=1)
    return track.cumulative_distance_m[nearest]


def time_at_progress(progress_m: np.ndarray, time_s: np.ndarray, at_m: np.ndarray) -> np.ndarray:
    """First time the run reached each distance ``at_m`` (interpolated; NaN past the furthest point reached)."""
    progress_m, time_s = np.asarray(progress_m, dtype=np.float64), np.asarray(time_s, dtype=np.float64)
    new_ground = np.concatenate([[True], progress_m[1:] > np.maximum.accumulate(progress_m)[:-1]])
    reached_m, reached_s = progress_m[new_ground], time_s[new_ground]
    times = np.interp(at_m, reached_m, reached_s)
    times[np.asarray(at_m) > reached_m[-1]] = np.nan
    return times


def time_delta_s(track: Track, run_progress_m: np.ndarray, run_time_s: np.ndarray, reference: ReferenceLine,
                 at_m: np.ndarray) -> np.ndarray:  # fmt: skip
    """Δt(d) = t_run(d) − t_reference(d) at distances ``at_m`` along the centre line (positive: the run is behind)."""
    reference_progress_m = progress_along_centerline(track, reference.line_m)
    return time_at_progress(run_progress_m, run_time_s, at_m) - time_at_progress(
        reference_progress_m, reference.time_s, at_m
    )


def speed_collection(points_xz: np.ndarray, speeds_kmh: np.ndarray, vmax_kmh: float) -> LineCollection:
    segments = np.stack([points_xz[:-1], points_xz[1:]], axis=1)
    collection = LineCollection(segments, cmap=SPEED_COLOURMAP, linewidths=2.2, zorder=50, capstyle="round")
    collection.set_array(0.5 * (speeds_kmh[:-1] + speeds_kmh[1:]))
    collection.set_clim(0.0, vmax_kmh)
    return collection


def save_figure(fig: Figure, path: str | os.PathLike[str], dpi: int = 110) -> Path:
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return atomic_write_bytes(path, buffer.getvalue())  # a reader never sees half a PNG


def _result(race_time_ms: int, finished: bool) -> str:
    return f"{race_time_ms / 1000:.3f} s" if finished else f"DNF at {race_time_ms / 1000:.2f} s"


def line_figure(track: Track, run: RunLine, run_progress_m: np.ndarray, run_time_s: np.ndarray,
                reference: ReferenceLine) -> Figure:  # fmt: skip
    """Track with the run's line by speed and the reference dashed; below, Δt along the track per section."""
    fig, (ax, strip) = track_figure(track, strip_height_in=2.6)
    set_track_view(ax, track)
    draw_track(ax, track, run_off_m=FIGURE_RUN_OFF_M)
    ref_xz = reference.line_m[:, [0, 2]]
    ax.plot(ref_xz[:, 0], ref_xz[:, 1], zorder=40, label=f"{reference.label} ({reference.race_time_ms / 1000:.3f} s)",
            **REFERENCE_STYLE)  # fmt: skip
    speeds_kmh = run.speeds_mps * 3.6
    collection = speed_collection(run.positions_m[:, [0, 2]], speeds_kmh, max(float(speeds_kmh.max()), 1.0))
    ax.add_collection(collection)
    fig.colorbar(collection, ax=ax, label="run speed (km/h)", fraction=0.035, pad=0.02, aspect=15)
    ax.set_title(f"{track.name}: {run.label}, {_result(run.race_time_ms, run.finished)}")
    ax.set_xlabel("x (m)")
    ax.set_ylabel("z (m)")
    ax.legend(loc="best", fontsize=8, facecolor="0.85").set_zorder(100)  # above the lines
    _draw_delta_strip(strip, ax, track, run_progress_m, run_time_s, reference)
    fig.tight_layout()
    return fig


def _draw_delta_strip(strip: Axes, track_ax: Axes, track: Track, run_progress_m: np.ndarray,
                      run_time_s: np.ndarray, reference: ReferenceLine) -> None:  # fmt: skip
    """Bars: time lost (red) or gained (green) per DELTA_SECTION_M section; line: cumulative Δt. The three worst
    sections are numbered on the strip and on the track."""
    edges_m = np.append(np.arange(0.0, track.length_m, DELTA_SECTION_M), track.length_m)
    delta_s = time_delta_s(track, run_progress_m, run_time_s, reference, edges_m)
    lost_s = np.diff(delta_s)
    centres_m = 0.5 * (edges_m[:-1] + edges_m[1:])
    colours = np.where(lost_s > 0, "tab:red", "tab:green")
    strip.bar(centres_m, np.nan_to_num(lost_s), width=np.diff(edges_m) * 0.9, color=colours, alpha=0.8,
              label=f"time lost per {DELTA_SECTION_M:.0f} m (s)")  # fmt: skip
    strip.axhline(0.0, color="0.3", linewidth=0.8)
    strip.set_xlim(0.0, track.length_m)
    strip.set_xlabel("distance along the centre line (m)")
    strip.set_ylabel("lost per section (s)")
    cumulative = strip.twinx()
    cumulative.plot(edges_m, delta_s, color="black", linewidth=1.3)
    cumulative.set_ylabel(f"Δt vs {reference.label} (s)")
    worst = [i for i in np.argsort(np.nan_to_num(lost_s, nan=-np.inf))[::-1][:3] if lost_s[i] > 0]
    for rank, i in enumerate(worst, start=1):
        strip.annotate(str(rank), (centres_m[i], lost_s[i]), ha="center", va="bottom", fontsize=8, weight="bold")
        x_m, _, z_m = track.point_at_distance(np.array([centres_m[i]]))[0]
        track_ax.annotate(str(rank), (x_m, z_m), color="black", fontsize=9, weight="bold", ha="center",
                          va="center", zorder=60, bbox={"boxstyle": "circle,pad=0.2", "fc": "tab:red", "ec": "white"})
    finished = np.isfinite(delta_s[-1])
    strip.set_title(f"Δt at the finish: {delta_s[-1]:+.3f} s" if finished else "Δt up to the furthest point reached",
                    fontsize=9)  # fmt: skip


def write_line_plot(path: str | os.PathLike[str], track: Track, run: RunLine, run_progress_m: np.ndarray,
                    run_time_s: np.ndarray) -> Path:  # fmt: skip
    return save_figure(line_figure(track, run, run_progress_m, run_time_s, reference_line(track)), path)


def lines_figure(track: Track, runs: Sequence[RunLine], reference: ReferenceLine, title: str) -> Figure:
    """Several runs' lines, one colour each, on the same track picture; the reference dashed."""
    fig, (ax,) = track_figure(track)
    set_track_view(ax, track)
    draw_track(ax, track, run_off_m=FIGURE_RUN_OFF_M)
    ref_xz = reference.line_m[:, [0, 2]]
    ax.plot(ref_xz[:, 0], ref_xz[:, 1], zorder=40, label=f"{reference.label} ({reference.race_time_ms / 1000:.3f} s)",
            **REFERENCE_STYLE)  # fmt: skip
    colours = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, run in enumerate(runs):
        xz = run.positions_m[:, [0, 2]]
        ax.plot(xz[:, 0], xz[:, 1], color=colours[i % len(colours)], linewidth=1.8, zorder=50 + i,
                label=f"{run.label}: {_result(run.race_time_ms, run.finished)}")  # fmt: skip
    ax.set_title(title)
    ax.set_xlabel("x (m)")
    ax.set_ylabel("z (m)")
    ax.legend(loc="best", fontsize=8, facecolor="0.85").set_zorder(100)  # above the lines
    fig.tight_layout()
    return fig


def write_lines_plot(path: str | os.PathLike[str], track: Track, runs: Sequence[RunLine], title: str) -> Path:
    return save_figure(lines_figure(track, runs, reference_line(track), title), path)


class LineImages:
    """Small whole-track pictures of a run's line (NumPy on a cached raster), e.g. for TensorBoard on each new best."""

    def __init__(self, max_side_px: int = TB_IMAGE_MAX_SIDE_PX) -> None:
        self.max_side_px = max_side_px
        self._pictures: dict[tuple[str, float], TrackPicture] = {}

    def _picture(self, track: Track) -> TrackPicture:
        key = (hashlib.sha1(track.centerline_m.tobytes()).hexdigest(), track.road_width_m)  # a .npy loads anew
        if key not in self._pictures:
            margin_m = 5.0
            c = extended_centerline(track)
            reach_m = track.road_width_m / 2 + WALL_WIDTH_M + margin_m
            extent_m = max(np.ptp(c[:, 0]), np.ptp(c[:, 2])) + 2 * reach_m
            # The run-off past the finish stays as long as in the videos: a car crossing at speed coasts on it.
            self._pictures[key] = rasterize_track(track, (self.max_side_px - 1) / extent_m, margin_m)
        return self._pictures[key]

    def image(self, track: Track, positions_m: np.ndarray, speeds_mps: np.ndarray, caption: str) -> np.ndarray:
        """(H, W, 3) uint8: the track with the line coloured by speed (same colour scale as the videos)."""
        picture = self._picture(track)
        canvas = picture.rgb.copy()
        points = picture.to_pixels(np.asarray(positions_m)[:, [0, 2]])
        stamp_polyline(canvas, points, speed_colours(speeds_mps), radius_px=1.0)
        band = np.full((CAPTION_BAND_PX, canvas.shape[1], 3), PANEL_RGB, dtype=np.uint8)
        draw_text(band, caption, 6, CAPTION_BAND_PX - 6, 13, (255, 255, 255))
        return np.concatenate([band, canvas])

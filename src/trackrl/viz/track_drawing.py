"""The track seen from above: road, walls, edge lines, start and finish (matplotlib Figures on an Agg canvas).

Roads are drawn in height order (in layers of half the bridge clearance), so a bridge hides the road below it
and the upper road stays visible. Axes convention (the camera's texture too): x to the right, z downwards.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection, PolyCollection
from matplotlib.figure import Figure

from trackrl.sim.camera import DASH_PERIOD_M, ROAD_AFTER_FINISH_M, ROAD_BEFORE_START_M
from trackrl.sim.track import BRIDGE_CLEARANCE_M, Track

WALL_WIDTH_M = 1.5  # the band just outside the road (the camera texture's kerb), where the walls stand
PIECE_LENGTH_M = 4.0  # one polygon per 4 m of road: fine enough for the height order on ramps
LAYER_HEIGHT_M = BRIDGE_CLEARANCE_M / 2  # roads in one layer never cross each other (the track check)
OFF_ROAD_RGB = (0.20, 0.27, 0.20)
ROAD_RGB = (0.40, 0.40, 0.42)
WALL_RGB = (0.47, 0.56, 0.70)  # steel blue: a colour the speed colour map (plasma) never takes
EDGE_RGB = (0.93, 0.93, 0.93)
START_RGB = (0.20, 0.80, 0.30)
DASH_RGB = (0.62, 0.62, 0.64)
FINISH_SQUARES_ACROSS = 8


def planar_normals(centerline_m: np.ndarray) -> np.ndarray:
    """(N, 2) unit normals of the centre line in the (x, z) plane (to the left of the driving direction)."""
    tangent = np.gradient(centerline_m[:, [0, 2]], axis=0)
    tangent /= np.linalg.norm(tangent, axis=1, keepdims=True)
    return np.stack([tangent[:, 1], -tangent[:, 0]], axis=1)


def _strip_polygon(centre_xz: np.ndarray, normal: np.ndarray, half_width_m: float) -> np.ndarray:
    left, right = centre_xz + half_width_m * normal, centre_xz - half_width_m * normal
    return np.concatenate([left, right[::-1]])


def _pieces(n_points: int, points_per_piece: int) -> list[slice]:
    starts = range(0, n_points - 1, points_per_piece)
    return [slice(start, min(start + points_per_piece, n_points - 1) + 1) for start in starts]


FIGURE_RUN_OFF_M = 10.0  # static figures: a short run-off past the finish is enough


def extended_centerline(track: Track, run_off_m: float = ROAD_AFTER_FINISH_M) -> np.ndarray:
    """The centre line with the straight run-up before the start and run-off after the finish that the camera's
    texture draws too (the car starts on the first point, so half of it stands before the start line; videos follow
    the car past the finish)."""
    c = track.centerline_m
    first, last = (c[1] - c[0]) / np.linalg.norm(c[1] - c[0]), (c[-1] - c[-2]) / np.linalg.norm(c[-1] - c[-2])
    spacing_m = track.length_m / (len(c) - 1)
    before = c[0] - np.arange(ROAD_BEFORE_START_M, 0, -spacing_m)[:, None] * first
    after = c[-1] + np.arange(spacing_m, run_off_m + spacing_m, spacing_m)[:, None] * last
    return np.concatenate([before, c, after])


def _dash_runs(distance_m: np.ndarray, piece: slice) -> list[slice]:
    """Runs of points of ``piece`` on the painted half of each DASH_PERIOD_M."""
    on = np.mod(distance_m[piece], DASH_PERIOD_M) < DASH_PERIOD_M / 2
    edges = np.flatnonzero(np.diff(np.concatenate([[0], on.astype(np.int8), [0]])))
    return [slice(piece.start + a, piece.start + b) for a, b in zip(edges[::2], edges[1::2], strict=True) if b - a > 1]


def draw_track(ax: Axes, track: Track, zorder: float = 1.0, run_off_m: float = ROAD_AFTER_FINISH_M) -> None:
    """Road, walls, edge lines and centre dashes by height layer, then the start line and the chequered finish."""
    c = extended_centerline(track, run_off_m)
    centre_xz, normal = c[:, [0, 2]], planar_normals(c)
    distance_m = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(c, axis=0), axis=1))])
    half_width_m = track.road_width_m / 2
    step = max(1, round(PIECE_LENGTH_M / max(track.length_m / (len(track.centerline_m) - 1), 1e-9)))
    pieces = _pieces(len(c), step)
    layers = np.array([int(np.floor(c[piece, 1].mean() / LAYER_HEIGHT_M)) for piece in pieces])
    for rank, layer in enumerate(np.unique(layers)):
        in_layer = [piece for piece, piece_layer in zip(pieces, layers, strict=True) if piece_layer == layer]
        base = zorder + 0.01 * rank
        for half_m, colour, z in ((half_width_m + WALL_WIDTH_M, WALL_RGB, 0.0), (half_width_m, ROAD_RGB, 0.002)):
            polygons = [_strip_polygon(centre_xz[p], normal[p], half_m) for p in in_layer]
            # Edges in the face colour close the hairline seams anti-aliasing leaves between neighbours.
            ax.add_collection(PolyCollection(polygons, facecolors=colour, edgecolors=colour, linewidths=0.8,
                                             zorder=base + z))  # fmt: skip
        edges = [centre_xz[p] + side * half_width_m * normal[p] for p in in_layer for side in (-1, 1)]
        ax.add_collection(LineCollection(edges, colors=[EDGE_RGB], linewidths=0.8, zorder=base + 0.004))
        dashes = [centre_xz[run] for p in in_layer for run in _dash_runs(distance_m, p)]
        ax.add_collection(LineCollection(dashes, colors=[DASH_RGB], linewidths=0.8, zorder=base + 0.004))
    top = zorder + 0.01 * len(np.unique(layers)) + 0.01
    start_xz, start_normal = track.centerline_m[0, [0, 2]], planar_normals(track.centerline_m)[0]
    start = np.stack([start_xz + half_width_m * start_normal, start_xz - half_width_m * start_normal])
    ax.plot(start[:, 0], start[:, 1], color=START_RGB, linewidth=2.0, zorder=top, solid_capstyle="butt")
    squares, colours = finish_squares(track)
    ax.add_collection(PolyCollection(squares, facecolors=colours, edgecolors="none", zorder=top))


def finish_squares(track: Track) -> tuple[list[np.ndarray], list[str]]:
    """A chequered strip two squares deep, across the road, ending at the finish plane (the last point)."""
    c = track.centerline_m[:, [0, 2]]
    forward = (c[-1] - c[-2]) / np.linalg.norm(c[-1] - c[-2])
    left = np.array([forward[1], -forward[0]])
    size_m = track.road_width_m / FINISH_SQUARES_ACROSS
    squares, colours = [], []
    for row in range(2):
        for k in range(FINISH_SQUARES_ACROSS):
            corner = c[-1] - (row + 1) * size_m * forward + (track.road_width_m / 2 - (k + 1) * size_m) * left
            squares.append(np.stack([corner, corner + size_m * forward, corner + size_m * (forward + left),
                                     corner + size_m * left]))  # fmt: skip
            colours.append("black" if (k + row) % 2 else "white")
    return squares, colours


def set_track_view(ax: Axes, track: Track, margin_m: float = 10.0, run_off_m: float = FIGURE_RUN_OFF_M) -> None:
    """Equal axes around the whole track, seen from above (x right, z down), off-road colour behind."""
    c = extended_centerline(track, run_off_m)
    reach_m = track.road_width_m / 2 + WALL_WIDTH_M + margin_m
    ax.set_xlim(c[:, 0].min() - reach_m, c[:, 0].max() + reach_m)
    ax.set_ylim(c[:, 2].max() + reach_m, c[:, 2].min() - reach_m)  # inverted: z downwards
    ax.set_aspect("equal")
    ax.set_facecolor(OFF_ROAD_RGB)


@dataclass(frozen=True)
class TrackPicture:
    """The track rasterised from above: pixel (row, col) centre ↔ x = origin_x + (col + 0.5) / px_per_m, same for z."""

    rgb: np.ndarray  # (H, W, 3) uint8
    origin_x_m: float
    origin_z_m: float
    px_per_m: float

    def to_pixels(self, xz_m: np.ndarray) -> np.ndarray:
        """(..., 2) world (x, z) in metres -> (..., 2) pixel (col, row) coordinates, fractional."""
        xz_m = np.asarray(xz_m, dtype=np.float64)
        return np.stack([(xz_m[..., 0] - self.origin_x_m) * self.px_per_m - 0.5,
                         (xz_m[..., 1] - self.origin_z_m) * self.px_per_m - 0.5], axis=-1)  # fmt: skip

    def to_world(self, cols: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Pixel centres -> (..., 2) world (x, z) in metres."""
        return np.stack([self.origin_x_m + (np.asarray(cols) + 0.5) / self.px_per_m,
                         self.origin_z_m + (np.asarray(rows) + 0.5) / self.px_per_m], axis=-1)  # fmt: skip


def rasterize_track(track: Track, px_per_m: float, margin_m: float) -> TrackPicture:
    """The whole track drawn once at ``px_per_m``, with ``margin_m`` of off-road around it."""
    c = extended_centerline(track)
    reach_m = track.road_width_m / 2 + WALL_WIDTH_M + margin_m
    origin_x_m, origin_z_m = c[:, 0].min() - reach_m, c[:, 2].min() - reach_m
    width_px = int(np.ceil((c[:, 0].max() + reach_m - origin_x_m) * px_per_m))
    height_px = int(np.ceil((c[:, 2].max() + reach_m - origin_z_m) * px_per_m))
    dpi = 100
    fig = Figure(figsize=(width_px / dpi, height_px / dpi), dpi=dpi)
    FigureCanvasAgg(fig)  # off-screen: no pyplot, no window, whatever backend the user's program chose
    ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
    ax.set_axis_off()
    ax.set_xlim(origin_x_m, origin_x_m + width_px / px_per_m)
    ax.set_ylim(origin_z_m + height_px / px_per_m, origin_z_m)
    fig.patch.set_facecolor(OFF_ROAD_RGB)
    draw_track(ax, track)
    fig.canvas.draw()
    rgb = np.asarray(fig.canvas.buffer_rgba())[:height_px, :width_px, :3].copy()
    return TrackPicture(rgb=rgb, origin_x_m=origin_x_m, origin_z_m=origin_z_m, px_per_m=px_per_m)

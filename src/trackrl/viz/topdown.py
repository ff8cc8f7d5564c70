"""Top-down video frames that follow the car: the track picture (drawn once), the trail coloured by speed, the car as
an oriented rectangle, a HUD (race time, speed, the action's keys) and the agent's 64x64 camera as an inset.

Plain NumPy per frame (benchmarks/render_speed.py measures it against the same frame drawn by matplotlib): the
track is rasterised once; each frame is a crop plus a few small fills. North-up: the map stays still and the car
turns, so the trail can be stamped once into a persistent canvas.
"""

from __future__ import annotations

import functools

import numpy as np
from matplotlib import colormaps

from trackrl.sim.actions import ACTIONS
from trackrl.sim.track import Track
from trackrl.viz.text import blend_mask, draw_text
from trackrl.viz.track_drawing import TrackPicture, rasterize_track

FRAME_SIZE_PX = (480, 640)  # (height, width): multiples of 16, what H.264 encoders want
PX_PER_M = 4.0
CAR_LENGTH_M, CAR_WIDTH_M = 4.0, 2.0  # the camera's car silhouette
CAR_RGB = (0, 229, 255)  # a colour the speed colour map never produces (tests find the car by it)
CAR_NOSE_RGB = (255, 255, 255)
TRAIL_RADIUS_PX = 1.5
TRAIL_MAX_SPEED_KMH = 250.0  # fixed scale, so colours mean the same speed in every video
SPEED_COLOURMAP = "plasma"
INSET_SCALE = 2  # 64x64 camera -> 128x128 pixels
KEY_ON_RGB = {"accel": (60, 200, 80), "brake": (230, 60, 50), "steer": (250, 210, 60)}
KEY_OFF_RGB = (70, 70, 74)
PANEL_RGB = (20, 20, 24)
TEXT_RGB = (245, 245, 245)


@functools.lru_cache(maxsize=1)
def _speed_lut() -> np.ndarray:
    return (colormaps[SPEED_COLOURMAP](np.linspace(0, 1, 256))[:, :3] * 255).astype(np.uint8)


def speed_colours(speed_mps: np.ndarray, max_speed_kmh: float = TRAIL_MAX_SPEED_KMH) -> np.ndarray:
    """(N,) speeds -> (N, 3) uint8 colours of the speed colour map (0 .. max_speed_kmh)."""
    index = np.clip(np.asarray(speed_mps) * 3.6 / max_speed_kmh * 255, 0, 255).astype(np.int64)
    return _speed_lut()[index]


@functools.lru_cache(maxsize=4)  # a long track's picture is tens of MB
def _picture(track: Track, px_per_m: float, margin_m: float) -> TrackPicture:
    return rasterize_track(track, px_per_m, margin_m)


def _disc_offsets(radius_px: float) -> tuple[np.ndarray, np.ndarray]:
    r = int(np.ceil(radius_px))
    rows, cols = np.mgrid[-r : r + 1, -r : r + 1]
    inside = rows**2 + cols**2 <= radius_px**2 + 1e-9
    return rows[inside], cols[inside]


def stamp_polyline(canvas: np.ndarray, points_px: np.ndarray, colours: np.ndarray, radius_px: float) -> None:
    """Draw a thick polyline (points (N, 2) as (col, row), one colour per point) into canvas (H, W, 3) in place."""
    dense, dense_colours = points_px[-1:], colours[-1:]
    if len(points_px) > 1:
        lengths = np.linalg.norm(np.diff(points_px, axis=0), axis=1)
        steps = np.maximum(np.ceil(lengths / 0.5).astype(np.int64), 1)  # a dot every half pixel
        segment = np.repeat(np.arange(len(steps)), steps)
        t = (np.arange(steps.sum()) - np.repeat(np.cumsum(steps) - steps, steps)) / np.repeat(steps, steps)
        between = points_px[segment] + t[:, None] * (points_px[segment + 1] - points_px[segment])
        dense = np.concatenate([between, dense])
        dense_colours = np.concatenate([colours[segment], dense_colours])
    d_rows, d_cols = _disc_offsets(radius_px)
    rows = (np.rint(dense[:, 1])[:, None] + d_rows[None, :]).astype(np.int64).ravel()
    cols = (np.rint(dense[:, 0])[:, None] + d_cols[None, :]).astype(np.int64).ravel()
    colour = np.repeat(dense_colours, len(d_rows), axis=0)
    keep = (rows >= 0) & (rows < canvas.shape[0]) & (cols >= 0) & (cols < canvas.shape[1])
    canvas[rows[keep], cols[keep]] = colour[keep]


def fill_convex_polygon(frame: np.ndarray, corners_px: np.ndarray, colour: tuple[int, int, int]) -> None:
    """Fill the convex polygon (K, 2) of (col, row) corners, counter-clockwise or clockwise, in place."""
    c0, r0 = np.floor(corners_px.min(axis=0)).astype(int)
    c1, r1 = np.ceil(corners_px.max(axis=0)).astype(int)
    c0, r0 = max(c0, 0), max(r0, 0)
    c1, r1 = min(c1, frame.shape[1] - 1), min(r1, frame.shape[0] - 1)
    if c1 < c0 or r1 < r0:
        return
    rows, cols = np.mgrid[r0 : r1 + 1, c0 : c1 + 1]
    inside = np.ones(rows.shape, dtype=bool)
    signs = []
    for a, b in zip(corners_px, np.roll(corners_px, -1, axis=0), strict=True):
        signs.append((b[0] - a[0]) * (rows - a[1]) - (b[1] - a[1]) * (cols - a[0]))
    inside = np.all([s >= 0 for s in signs], axis=0) | np.all([s <= 0 for s in signs], axis=0)
    frame[rows[inside], cols[inside]] = colour


def car_corners_px(centre_px: np.ndarray, heading_rad: float, px_per_m: float, length_m: float = CAR_LENGTH_M,
                   width_m: float = CAR_WIDTH_M) -> np.ndarray:  # fmt: skip
    """(4, 2) corners of the car rectangle; heading ψ points along (cos ψ, sin ψ) in (col, row) = (x, z)."""
    forward = np.array([np.cos(heading_rad), np.sin(heading_rad)]) * px_per_m
    side = np.array([-forward[1], forward[0]])
    half_l, half_w = length_m / 2, width_m / 2
    corners_m = np.array([[half_l, half_w], [half_l, -half_w], [-half_l, -half_w], [-half_l, half_w]])
    return centre_px + corners_m @ np.stack([forward, side])


class TopDownRenderer:
    """Frames of one race on one track; call ``reset`` at the start, then ``frame`` once per state in order."""

    def __init__(self, track: Track, frame_size_px: tuple[int, int] = FRAME_SIZE_PX, px_per_m: float = PX_PER_M,
                 title: str = "") -> None:  # fmt: skip
        self.track = track
        self.frame_size_px = frame_size_px
        margin_m = max(frame_size_px) / px_per_m  # every crop around a car on the road stays inside the picture
        self.picture = _picture(track, px_per_m, margin_m)
        self.title = title
        self.reset()

    def reset(self) -> None:
        self._canvas = self.picture.rgb.copy()  # the trail accumulates here
        self._last_point_px: np.ndarray | None = None
        self._last_colour: np.ndarray | None = None

    def view_origin_px(self, position_xz_m: np.ndarray) -> tuple[int, int]:
        """(row, col) in the track picture of the frame's top-left pixel: the car at the centre, clamped."""
        height, width = self.frame_size_px
        col, row = self.picture.to_pixels(np.asarray(position_xz_m))
        top = int(np.clip(round(row) - height // 2, 0, self.picture.rgb.shape[0] - height))
        left = int(np.clip(round(col) - width // 2, 0, self.picture.rgb.shape[1] - width))
        return top, left

    def add_trail_point(self, position_xz_m: np.ndarray, speed_mps: float) -> None:
        point = self.picture.to_pixels(np.asarray(position_xz_m, dtype=np.float64))
        colour = speed_colours(np.array([speed_mps]))[0]
        if self._last_point_px is None:
            points, colours = point[None], colour[None]
        else:
            points, colours = np.stack([self._last_point_px, point]), np.stack([self._last_colour, colour])
        stamp_polyline(self._canvas, points, colours, TRAIL_RADIUS_PX)
        self._last_point_px, self._last_colour = point, colour

    def frame(self, position_xz_m: np.ndarray, heading_rad: float, speed_mps: float, race_time_ms: int,
              action: int | None, camera_image: np.ndarray | None, banner: str = "") -> np.ndarray:  # fmt: skip
        """One (H, W, 3) uint8 frame; the trail must already hold this position (``add_trail_point``)."""
        height, width = self.frame_size_px
        top, left = self.view_origin_px(position_xz_m)
        frame = self._canvas[top : top + height, left : left + width].copy()
        centre = self.picture.to_pixels(np.asarray(position_xz_m)) - np.array([left, top])
        corners = car_corners_px(centre, heading_rad, self.picture.px_per_m)
        fill_convex_polygon(frame, corners, CAR_RGB)
        forward_px = np.array([np.cos(heading_rad), np.sin(heading_rad)]) * self.picture.px_per_m
        nose_centre = centre + forward_px * CAR_LENGTH_M * 3 / 8  # the front quarter, so the heading reads at a glance
        nose = car_corners_px(nose_centre, heading_rad, self.picture.px_per_m, CAR_LENGTH_M / 4, CAR_WIDTH_M * 0.8)
        fill_convex_polygon(frame, nose, CAR_NOSE_RGB)
        if camera_image is not None:
            draw_inset(frame, camera_image)
        draw_hud(frame, race_time_ms, speed_mps, action, self.title)
        if banner:
            draw_banner(frame, banner)
        return frame


def _panel(frame: np.ndarray, top: int, left: int, height: int, width: int, alpha: float = 0.7) -> None:
    blend_mask(frame, np.full((height, width), alpha, dtype=np.float32), top, left, PANEL_RGB)


def draw_inset(frame: np.ndarray, camera_image: np.ndarray, margin_px: int = 8) -> None:
    """The agent's grayscale camera, enlarged by INSET_SCALE, framed, in the top-right corner."""
    view = np.repeat(np.repeat(np.asarray(camera_image, dtype=np.uint8), INSET_SCALE, 0), INSET_SCALE, 1)
    h, w = view.shape
    top, left = margin_px, frame.shape[1] - margin_px - w
    frame[top - 2 : top + h + 2, left - 2 : left + w + 2] = TEXT_RGB
    frame[top : top + h, left : left + w] = view[:, :, None]


def draw_keys(frame: np.ndarray, action: int | None, top: int, left: int, key_px: int = 22, gap_px: int = 3) -> None:
    """Arrow-key layout: accelerate on top, left / brake / right below; pressed keys lit."""
    accelerate, brake, steer_left, steer_right = ACTIONS[action] if action is not None else (False,) * 4
    keys = [
        (0, 1, accelerate, "accel", "↑"),
        (1, 0, steer_left, "steer", "←"),
        (1, 1, brake, "brake", "↓"),
        (1, 2, steer_right, "steer", "→"),
    ]
    for row, col, pressed, kind, label in keys:
        r0, c0 = top + row * (key_px + gap_px), left + col * (key_px + gap_px)
        frame[r0 : r0 + key_px, c0 : c0 + key_px] = KEY_ON_RGB[kind] if pressed else KEY_OFF_RGB
        draw_text(frame, label, c0 + 5, r0 + key_px - 6, 14, TEXT_RGB if pressed else (150, 150, 150))


def draw_hud(frame: np.ndarray, race_time_ms: int, speed_mps: float, action: int | None, title: str) -> None:
    height = frame.shape[0]
    _panel(frame, height - 70, 8, 62, 250)
    draw_text(frame, f"{race_time_ms / 1000:7.2f} s", 16, height - 44, 22, TEXT_RGB)
    draw_text(frame, f"{speed_mps * 3.6:5.0f} km/h", 16, height - 17, 18, TEXT_RGB)
    draw_keys(frame, action, height - 66, 170)
    if title:
        _panel(frame, 8, 8, 26, 12 + 9 * len(title))
        draw_text(frame, title, 14, 27, 15, TEXT_RGB, bold=False)


def draw_banner(frame: np.ndarray, text: str) -> None:
    width = draw_text(np.zeros((1, 1, 3), np.uint8), text, 0, 0, 30, TEXT_RGB)  # measure (cached mask)
    left = (frame.shape[1] - width) // 2
    _panel(frame, 60, left - 14, 48, width + 28, alpha=0.8)
    draw_text(frame, text, left, 96, 30, (255, 230, 90))

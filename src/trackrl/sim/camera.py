"""The chase-camera image: a ground-plane projection of a precomputed top-down track texture.

The texture (0.5 m per texel) is drawn once per track: dark off-road, grey road, white edge lines, a light
kerb/wall band just outside the road, centre dashes (so that motion is visible) and a chequered finish.
The camera sits behind and above the car, pitched down; for every pixel below the horizon the ground point
it sees is fixed in the car frame, so rendering is one gather per pixel: rotate, translate, look up.
Coarser copies of the texture (mip levels) are used for far pixels to avoid aliasing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from trackrl.sim.track import Track

TEXEL_M = 0.5
SKY = 0
OFF_ROAD = 40
ROAD = 105
CENTRE_DASH = 190
EDGE_LINE = 240
KERB = 170
CAR = 15
DASH_PERIOD_M = 8.0
EDGE_LINE_WIDTH_M = 0.8
KERB_WIDTH_M = 1.5
FINISH_DEPTH_M = 3.0
N_MIP_LEVELS = 4
ROAD_BEFORE_START_M = 10.0
ROAD_AFTER_FINISH_M = 60.0


@dataclass(frozen=True)
class CameraParams:
    height_m: float = 6.0
    behind_m: float = 9.0  # behind the car's centre
    pitch_down_deg: float = 17.0
    horizontal_fov_deg: float = 90.0
    max_range_m: float = 250.0
    car_length_m: float = 4.0
    car_width_m: float = 2.0


@dataclass(frozen=True)
class TrackTexture:
    mips: tuple[np.ndarray, ...]  # level l: (H_l, W_l) uint8, texel size TEXEL_M * 2**l; texel (r, c) ↔ (z, x)
    origin_x_m: float
    origin_z_m: float
    texels: np.ndarray  # all levels flattened and concatenated (for the render kernel)
    level_offset: np.ndarray  # (L,) int64 start of each level in texels
    level_width: np.ndarray  # (L,) int64
    level_height: np.ndarray  # (L,) int64

    @classmethod
    def from_mips(cls, mips: list[np.ndarray], origin_x_m: float, origin_z_m: float) -> TrackTexture:
        mips = [np.ascontiguousarray(m) for m in mips]
        return cls(
            mips=tuple(mips),
            origin_x_m=origin_x_m,
            origin_z_m=origin_z_m,
            texels=np.concatenate([m.ravel() for m in mips]),
            level_offset=np.cumsum([0] + [m.size for m in mips[:-1]]).astype(np.int64),
            level_width=np.array([m.shape[1] for m in mips], dtype=np.int64),
            level_height=np.array([m.shape[0] for m in mips], dtype=np.int64),
        )


@dataclass(frozen=True)
class CameraRays:
    """The ground seen by each image row: in the car frame a row is a straight segment of the ground.

    For row k: forward_m[k] ahead of the car, from right_first_m[k] (column 0) in steps of right_step_m[k]
    per column; every row is one mip level (the pixel footprint depends on the distance, i.e. on the row).
    """

    ground_rows: np.ndarray  # (R,) int64 image rows that see the ground (the others are sky)
    forward_m: np.ndarray  # (R,) float64
    right_first_m: np.ndarray  # (R,) float64
    right_step_m: np.ndarray  # (R,) float64
    mip_level: np.ndarray  # (R,) int64
    car_rows: np.ndarray  # (K,) int64 pixels of the car's silhouette, drawn over the ground
    car_columns: np.ndarray  # (K,) int64
    background: np.ndarray  # (H, W) uint8: sky


@numba.njit(cache=True)
def _nearest_centreline_distance(
    cx: np.ndarray,
    cz: np.ndarray,
    distance_m: np.ndarray,
    reach_m: float,
    origin_x: float,
    origin_z: float,
    height: int,
    width: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Per texel: planar distance to the nearest centre-line segment (within reach) and the distance along it."""
    best = np.full((height, width), np.inf)
    along = np.zeros((height, width))
    for j in range(cx.shape[0] - 1):
        x0, z0, x1, z1 = cx[j], cz[j], cx[j + 1], cz[j + 1]
        dx, dz = x1 - x0, z1 - z0
        seg2 = dx * dx + dz * dz
        c_lo = max(int((min(x0, x1) - reach_m - origin_x) / TEXEL_M), 0)
        c_hi = min(int((max(x0, x1) + reach_m - origin_x) / TEXEL_M) + 1, width - 1)
        r_lo = max(int((min(z0, z1) - reach_m - origin_z) / TEXEL_M), 0)
        r_hi = min(int((max(z0, z1) + reach_m - origin_z) / TEXEL_M) + 1, height - 1)
        for r in range(r_lo, r_hi + 1):
            pz = origin_z + (r + 0.5) * TEXEL_M
            for c in range(c_lo, c_hi + 1):
                px = origin_x + (c + 0.5) * TEXEL_M
                t = min(max(((px - x0) * dx + (pz - z0) * dz) / seg2, 0.0), 1.0)
                d = np.hypot(px - x0 - t * dx, pz - z0 - t * dz)
                if d < best[r, c]:
                    best[r, c] = d
                    along[r, c] = distance_m[j] + t * (distance_m[j + 1] - distance_m[j])
    return best, along


def _extended_centerline(track: Track) -> np.ndarray:
    """The centre line with straight run-offs drawn before the start and after the finish (texture only)."""
    c = track.centerline_m
    first = (c[1] - c[0]) / np.linalg.norm(c[1] - c[0])
    last = (c[-1] - c[-2]) / np.linalg.norm(c[-1] - c[-2])
    before = c[0] - np.arange(ROAD_BEFORE_START_M, 0, -TEXEL_M)[:, None] * first
    after = c[-1] + np.arange(TEXEL_M, ROAD_AFTER_FINISH_M + TEXEL_M, TEXEL_M)[:, None] * last
    return np.concatenate([before, c, after])


def build_track_texture(track: Track) -> TrackTexture:
    half_width_m = track.road_width_m / 2
    reach_m = half_width_m + KERB_WIDTH_M + 1.0
    margin_m = reach_m + 4.0
    c = _extended_centerline(track)
    origin_x, origin_z = c[:, 0].min() - margin_m, c[:, 2].min() - margin_m
    width = int(np.ceil((c[:, 0].max() + margin_m - origin_x) / TEXEL_M))
    height = int(np.ceil((c[:, 2].max() + margin_m - origin_z) / TEXEL_M))
    distance_along_m = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(c, axis=0), axis=1))])
    distance_along_m -= ROAD_BEFORE_START_M
    distance, along = _nearest_centreline_distance(
        np.ascontiguousarray(c[:, 0]),
        np.ascontiguousarray(c[:, 2]),
        distance_along_m,
        reach_m,
        origin_x,
        origin_z,
        height,
        width,
    )
    texture = np.full((height, width), OFF_ROAD, dtype=np.uint8)
    texture[distance <= half_width_m + KERB_WIDTH_M] = KERB
    texture[distance <= half_width_m] = EDGE_LINE
    texture[distance <= half_width_m - EDGE_LINE_WIDTH_M] = ROAD
    texture[(distance <= 0.35) & (np.mod(along, DASH_PERIOD_M) < DASH_PERIOD_M / 2)] = CENTRE_DASH
    finish = (distance <= half_width_m) & (along >= track.length_m - FINISH_DEPTH_M) & (along <= track.length_m)
    rows, cols = np.indices(texture.shape)
    chequer = ((rows // 2 + cols // 2) % 2 == 0).astype(np.uint8) * 255
    texture[finish] = chequer[finish]
    mips = [texture]
    for _ in range(1, N_MIP_LEVELS):
        prev = mips[-1].astype(np.uint16)
        h2, w2 = prev.shape[0] // 2 * 2, prev.shape[1] // 2 * 2
        prev = prev[:h2, :w2]
        box_sum = prev[0::2, 0::2] + prev[1::2, 0::2] + prev[0::2, 1::2] + prev[1::2, 1::2]
        mips.append(((box_sum + 2) // 4).astype(np.uint8))
    return TrackTexture.from_mips(mips, origin_x, origin_z)


def camera_rays(image_size_px: tuple[int, int], camera: CameraParams = CameraParams()) -> CameraRays:
    """Intersect each pixel's ray with the ground plane of the car (pinhole camera, square pixels)."""
    height, width = image_size_px
    tan_half_h = np.tan(np.deg2rad(camera.horizontal_fov_deg) / 2)
    tan_half_v = tan_half_h * height / width
    u = ((np.arange(width) + 0.5) / width * 2 - 1) * tan_half_h  # right, per column
    v = (1 - (np.arange(height) + 0.5) / height * 2) * tan_half_v  # up, per row
    pitch = np.deg2rad(camera.pitch_down_deg)
    # Ray (right = u, up = v, forward = 1) in camera axes, pitched down about the right axis.
    ray_forward = np.cos(pitch) - v * np.sin(pitch)
    ray_up = v * np.cos(pitch) - np.sin(pitch)
    scale = camera.height_m / np.where(ray_up < 0, -ray_up, np.nan)  # ray length factor to the ground, per row
    ahead_m = scale * ray_forward
    ground = (ray_up < 0) & (ahead_m < camera.max_range_m)
    forward_m = ahead_m - camera.behind_m
    # Texel footprint grows with distance; pick the mip level whose texel matches the pixel footprint.
    footprint_m = np.where(ground, scale * 2 * tan_half_h / width, TEXEL_M)
    level = np.clip(np.floor(np.log2(np.maximum(footprint_m / TEXEL_M, 1.0))), 0, N_MIP_LEVELS - 1).astype(np.int64)
    right_m = np.where(ground[:, None], scale[:, None] * u[None, :], 0.0)
    car = (
        ground[:, None]
        & (np.abs(forward_m)[:, None] < camera.car_length_m / 2)
        & (np.abs(right_m) < camera.car_width_m / 2)
    )
    ground_rows = np.flatnonzero(ground)
    car_rows, car_columns = np.nonzero(car)
    return CameraRays(
        ground_rows=ground_rows.astype(np.int64),
        forward_m=forward_m[ground_rows].astype(np.float64),
        right_first_m=right_m[ground_rows, 0].astype(np.float64),
        right_step_m=(scale[ground_rows] * 2 * tan_half_h / width).astype(np.float64),
        mip_level=level[ground_rows],
        car_rows=car_rows.astype(np.int64),
        car_columns=car_columns.astype(np.int64),
        background=np.full((height, width), SKY, dtype=np.uint8),
    )


@numba.njit(cache=True, fastmath=True)
def _render(
    images: np.ndarray,
    rows: np.ndarray,
    state: np.ndarray,
    ground_rows: np.ndarray,
    forward_m: np.ndarray,
    right_first_m: np.ndarray,
    right_step_m: np.ndarray,
    mip_level: np.ndarray,
    car_rows: np.ndarray,
    car_columns: np.ndarray,
    background: np.ndarray,
    texels: np.ndarray,
    level_offset: np.ndarray,
    level_width: np.ndarray,
    level_height: np.ndarray,
    origin_x: float,
    origin_z: float,
) -> None:
    """One nearest-texel gather per ground pixel, walking each image row along its ground segment."""
    width = background.shape[1]
    for b in rows:
        image = images[b, 0]
        image[:, :] = background
        x, z, heading = state[b, 0] - origin_x, state[b, 1] - origin_z, state[b, 2]
        fx, fz = np.cos(heading), np.sin(heading)
        for k in range(ground_rows.shape[0]):
            level = mip_level[k]
            inv_texel = 1.0 / (TEXEL_M * (1 << level))
            base, level_w, level_h = level_offset[level], level_width[level], level_height[level]
            # Ground point = car + forward · f + right · r with r = (−f_z, f_x), in texels of this level.
            u0 = (x + forward_m[k] * fx - right_first_m[k] * fz) * inv_texel
            v0 = (z + forward_m[k] * fz + right_first_m[k] * fx) * inv_texel
            du, dv = -right_step_m[k] * fz * inv_texel, right_step_m[k] * fx * inv_texel
            r = ground_rows[k]
            for c in range(width):
                u, v = u0 + c * du, v0 + c * dv
                value = OFF_ROAD
                if u >= 0.0 and v >= 0.0:
                    column, row = int(u), int(v)
                    if row < level_h and column < level_w:
                        value = texels[base + row * level_w + column]
                image[r, c] = value
        for p in range(car_rows.shape[0]):
            image[car_rows[p], car_columns[p]] = CAR


def render_images(
    images: np.ndarray, rows: np.ndarray, state: np.ndarray, rays: CameraRays, texture: TrackTexture
) -> None:
    """Render the cars in `rows` into images (B, 1, H, W) uint8 in place; state rows (x, z, heading, ...)."""
    _render(
        images, rows, state, rays.ground_rows, rays.forward_m, rays.right_first_m, rays.right_step_m,
        rays.mip_level, rays.car_rows, rays.car_columns, rays.background, texture.texels, texture.level_offset,
        texture.level_width, texture.level_height, texture.origin_x_m, texture.origin_z_m,
    )  # fmt: skip

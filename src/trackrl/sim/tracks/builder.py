"""Build a centre line from straights and arcs (the way the built-in tracks are defined, no binary files).

Heading convention (shared with the car): the planar direction is (cos ψ, sin ψ) in the (x, z) plane and
ψ increases when the car turns right, seen from above (y up).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_BUILD_STEP_M = 0.05  # fine integration step; the result is resampled to 0.5 m afterwards


@dataclass(frozen=True)
class Straight:
    length_m: float
    rise_m: float = 0.0  # height change over the piece, eased (zero slope at both ends)


@dataclass(frozen=True)
class Arc:
    radius_m: float
    angle_deg: float  # > 0 turns right, < 0 turns left
    rise_m: float = 0.0

    @property
    def length_m(self) -> float:
        return abs(np.deg2rad(self.angle_deg)) * self.radius_m


Piece = Straight | Arc


def build_centerline(pieces: list[Piece], start_heading_rad: float = 0.0) -> np.ndarray:
    """Integrate the pieces into a dense (N, 3) polyline (x, y=up, z), about 5 cm apart."""
    points = [np.zeros(3)]
    heading_rad = start_heading_rad
    x_m, y_m, z_m = 0.0, 0.0, 0.0
    for piece in pieces:
        n_steps = max(1, int(np.ceil(piece.length_m / _BUILD_STEP_M)))
        step_m = piece.length_m / n_steps
        turn_rate = 0.0 if isinstance(piece, Straight) else np.sign(piece.angle_deg) / piece.radius_m
        y_start_m = y_m
        for k in range(1, n_steps + 1):
            mid_heading = heading_rad + turn_rate * step_m * 0.5  # midpoint rule: exact chord direction of an arc
            x_m += step_m * np.cos(mid_heading)
            z_m += step_m * np.sin(mid_heading)
            heading_rad += turn_rate * step_m
            fraction = k / n_steps
            y_m = y_start_m + piece.rise_m * 0.5 * (1.0 - np.cos(np.pi * fraction))  # cosine easing
            points.append(np.array([x_m, y_m, z_m]))
    return np.asarray(points)

"""Schedules: piecewise functions of the number of frames played, as in Linesight.

A schedule is a list of ``[frames, value]`` points, starting at frame 0 with strictly increasing frames.
``global_schedule_speed`` multiplies every x-coordinate (larger = slower progression).

Interpolation kinds (Linesight / rulka conventions; docs/architecture.md "Training"):
- linear: learning-rate-free quantities such as gamma;
- exponential (geometric): lr, epsilon, Boltzmann noise — ``v0 * (v1 / v0) ** fraction``;
- staircase: memory size, TensorBoard suffix — the value of the last point at or before ``frames``.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from trackrl.config.schema import TrackRLConfig

T = TypeVar("T")

SchedulePoints = Sequence[Sequence[float]]


def _segment(points: Sequence[Sequence], frames: float, speed: float) -> tuple[int, float]:
    """Index i of the segment [x_i, x_{i+1}) that holds ``frames`` and the fraction travelled in it.

    Returns fraction 0 at or before the first point and (last index, 0) after the last point.
    """
    xs = [float(p[0]) * speed for p in points]
    if frames <= xs[0]:
        return 0, 0.0
    i = bisect.bisect_right(xs, frames) - 1
    if i >= len(xs) - 1:
        return len(xs) - 1, 0.0
    return i, (frames - xs[i]) / (xs[i + 1] - xs[i])


def _segment_values(points: SchedulePoints, frames: float, speed: float) -> tuple[float, float, float]:
    """(value at the segment start, value at its end, fraction travelled) for interpolating schedules."""
    i, fraction = _segment(points, frames, speed)
    v0 = float(points[i][1])
    v1 = float(points[i + 1][1]) if fraction > 0.0 else v0
    return v0, v1, fraction


def linear_schedule(points: SchedulePoints, frames: float, global_schedule_speed: float = 1.0) -> float:
    v0, v1, fraction = _segment_values(points, frames, global_schedule_speed)
    return v0 + (v1 - v0) * fraction


def exponential_schedule(points: SchedulePoints, frames: float, global_schedule_speed: float = 1.0) -> float:
    """Geometric interpolation between points; falls back to linear where a value is <= 0."""
    v0, v1, fraction = _segment_values(points, frames, global_schedule_speed)
    if fraction == 0.0 or v0 <= 0.0 or v1 <= 0.0:
        return v0 + (v1 - v0) * fraction
    return math.exp(math.log(v0) + (math.log(v1) - math.log(v0)) * fraction)


def staircase_schedule(
    points: Sequence[tuple[float, T]] | Sequence[Sequence], frames: float, global_schedule_speed: float = 1.0
) -> T:
    i, _ = _segment(points, frames, global_schedule_speed)
    return points[i][1]


def current_schedule_values(config: TrackRLConfig, frames: float) -> dict[str, float | int | str]:
    """Every schedule of the config evaluated at ``frames``, with the interpolation kind each uses."""
    speed = config.global_schedule_speed
    return {
        "learning_rate": exponential_schedule(config.training.lr_schedule, frames, speed),
        "gamma": linear_schedule(config.training.gamma_schedule, frames, speed),
        "epsilon": exponential_schedule(config.exploration.epsilon_schedule, frames, speed),
        "epsilon_boltzmann": exponential_schedule(config.exploration.epsilon_boltzmann_schedule, frames, speed),
        "memory_size": int(staircase_schedule(config.memory.memory_size_schedule, frames, speed)),
        "tensorboard_suffix": str(staircase_schedule(config.training.tensorboard_suffix_schedule, frames, speed)),
    }

"""Comparison axes: wall minutes, cumulative training hours, frames; the common window and its checkpoints.

- wall_minutes: minutes since the run's first scalar event, one t0 for every tag (the anchor used a different t0 for
  race events and for scalars). Gaps between sessions count: that is what wall time is.
- training_hours: ``cumul_training_hours`` interpolated at each event's wall time. Interpolation runs on "active"
  time (wall time inside event-file sessions), so a pause between a stop and a resume adds no hours; outside the
  logged samples hours grow at most 1 h per active hour. (The anchor took the last 5-minute sample instead.)
- frames: the global step, as logged.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Literal

import numpy as np

from trackrl.analysis.options import (
    MAX_CHECKPOINT_ROWS,
    check_row_count,
    parse_frame_list,
    parse_frames,
    parse_interval,
)
from trackrl.analysis.runs import RunData
from trackrl.errors import UserError
from trackrl.train import tb

TimeAxis = Literal["wall_minutes", "training_hours"]
AxisName = Literal["wall_minutes", "training_hours", "frames"]
AXIS_UNITS: dict[str, str] = {"wall_minutes": "min", "training_hours": "h", "frames": "frames"}
AXIS_LABELS: dict[str, str] = {
    "wall_minutes": "wall time since the run's first event (min)",
    "training_hours": "cumulative training hours (h)",
    "frames": "frames played",
}
AXIS_SHORT: dict[str, str] = {"wall_minutes": "wall minutes", "training_hours": "training hours", "frames": "frames"}
_SECONDS_PER_HOUR = 3600.0
# A stretch between two event-file sessions longer than this is a pause (scalars are logged every few seconds, so a
# shorter one is the normal silence between a file's last event and the next file's first).
PAUSE_MIN_S = 60.0


def has_training_hours(run: RunData) -> bool:
    return tb.CUMUL_TRAINING_HOURS in run.series and len(run.series[tb.CUMUL_TRAINING_HOURS]) > 0


def choose_time_axis(requested: str, runs: Sequence[RunData]) -> TimeAxis:
    """``auto`` means hours when every run logs ``cumul_training_hours``, else wall minutes."""
    if requested == "wall_minutes":
        return "wall_minutes"
    missing = [run.name for run in runs if not has_training_hours(run)]
    if requested == "cumul_training_hours":
        if missing:
            raise UserError(f"--time-axis cumul_training_hours: no '{tb.CUMUL_TRAINING_HOURS}' in run(s) {missing}")
        return "training_hours"
    if requested != "auto":
        raise UserError(f"--time-axis: unknown axis '{requested}' (auto, wall_minutes, cumul_training_hours)")
    return "wall_minutes" if missing else "training_hours"


def merged_sessions(spans: np.ndarray) -> np.ndarray:
    """Union of the (start, end) wall-time intervals of the event files, as sorted disjoint intervals."""
    merged: list[list[float]] = []
    for start, end in spans[np.argsort(spans[:, 0])]:
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], float(end))
        else:
            merged.append([float(start), float(end)])
    return np.array(merged, dtype=np.float64).reshape(-1, 2)


def active_seconds(sessions: np.ndarray, wall_time: np.ndarray) -> np.ndarray:
    """Seconds of session time between the first session's start and each ``wall_time`` (flat across gaps)."""
    starts, ends = sessions[:, 0], sessions[:, 1]
    before = np.concatenate(([0.0], np.cumsum(ends - starts)))[:-1]
    index = np.clip(np.searchsorted(starts, wall_time, side="right") - 1, 0, len(starts) - 1)
    return before[index] + np.clip(wall_time - starts[index], 0.0, (ends - starts)[index])


def training_hours_at(run: RunData, wall_time: np.ndarray) -> np.ndarray:
    """``cumul_training_hours`` at each wall time, interpolated on active time (see the module docstring)."""
    samples = run.series[tb.CUMUL_TRAINING_HOURS]
    sessions = merged_sessions(run.session_spans)
    sample_active = active_seconds(sessions, samples.wall_time)
    hours = np.maximum.accumulate(samples.value)  # a counter: never decreases
    # Extend both ends at 1 h per active hour, so events before the first / after the last sample get hours too.
    run_end_active = float(active_seconds(sessions, np.array([run.t_end]))[0])
    first_hours = max(0.0, float(hours[0]) - float(sample_active[0]) / _SECONDS_PER_HOUR)
    last_hours = float(hours[-1]) + (run_end_active - float(sample_active[-1])) / _SECONDS_PER_HOUR
    xp = np.concatenate(([0.0], sample_active, [run_end_active]))
    fp = np.concatenate(([first_hours], hours, [last_hours]))
    return np.interp(active_seconds(sessions, wall_time), xp, fp)


def time_axis_values(run: RunData, axis: TimeAxis, wall_time: np.ndarray) -> np.ndarray:
    if axis == "wall_minutes":
        return (wall_time - run.t0) / 60.0
    return training_hours_at(run, wall_time)


def pauses_wall(run: RunData) -> np.ndarray:
    """(start, end) wall times of the pauses between sessions longer than ``PAUSE_MIN_S``."""
    sessions = merged_sessions(run.session_spans)
    gaps = np.stack([sessions[:-1, 1], sessions[1:, 0]], axis=1) if len(sessions) > 1 else np.empty((0, 2))
    return gaps[gaps[:, 1] - gaps[:, 0] > PAUSE_MIN_S]


def paused_since(run: RunData, axis: AxisName, at: float) -> float | None:
    """On the wall-minutes axis: where (min) the pause that contains ``at`` began, or None if the run was running."""
    if axis != "wall_minutes":
        return None  # training hours and frames do not advance during a pause: nothing to mark
    wall = run.t0 + 60.0 * at
    for start, end in pauses_wall(run):
        if start < wall < end:
            return (float(start) - run.t0) / 60.0
    return None


def run_length(run: RunData, axis: AxisName) -> float:
    """How far the run goes on ``axis``: its last event."""
    if axis == "frames":
        return float(run.max_step)
    return float(time_axis_values(run, axis, np.array([run.t_end]))[0])


def nice_interval(window: float, target_count: int = 6) -> float:
    """A 1/2/5 x 10^k spacing giving about ``target_count`` checkpoints in ``window``."""
    if window <= 0:
        return 1.0
    raw = window / target_count
    power = 10.0 ** math.floor(math.log10(raw))
    return next(m * power for m in (1.0, 2.0, 5.0, 10.0) if m * power >= raw)


def checkpoints(window: float, interval: float | None, option: str = "--interval", whole: bool = False) -> list[float]:
    """Every ``interval`` inside [0, window], plus the end of the window itself (which replaces a point < 1% of an
    interval before it). At most MAX_CHECKPOINT_ROWS points (``whole``: the smallest spacing suggested is an int)."""
    interval = parse_interval(interval, option)
    spacing = interval if interval is not None else nice_interval(window)
    count = math.floor(window / spacing + 1e-9)
    smallest = window / MAX_CHECKPOINT_ROWS
    check_row_count(count, option, f"{spacing:g}", f"{math.ceil(smallest):,}" if whole else f"{smallest:.3g}")
    points = [round(spacing * k, 12) for k in range(1, count + 1)]
    # A run stopped at "60 minutes" ends a hair past 1 h: a last interval point that close to the end would print as
    # a second "1 h" row, so the end takes its place.
    if points and window - points[-1] < 0.01 * spacing:
        points[-1] = window
    else:
        points.append(window)
    return points


def extend_past_window(points: list[float], window: float, longest: float, spacing: float) -> list[float]:
    """``--beyond-window``: continue the checkpoints every ``spacing`` past the common window to the longest run."""
    count = math.floor(longest / spacing + 1e-9)
    extra = [round(spacing * k, 12) for k in range(1, count + 1) if spacing * k > window * (1 + 1e-9)]
    if longest > window and (not extra or longest - extra[-1] >= 0.01 * spacing):
        extra.append(longest)
    return points + extra


_DURATION_PATTERN = re.compile(r"^\s*(?P<number>\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)\s*(?P<unit>s|min|m|h)?\s*$")
_MINUTES_PER_UNIT = {"s": 1.0 / 60.0, "m": 1.0, "min": 1.0, "h": 60.0}


def parse_duration(text: str, axis: TimeAxis, option: str = "--interval") -> tuple[float, bool]:
    """'10m' / '90s' / '0.5h' -> a length on ``axis`` (minutes or training hours); a bare number is already in the
    axis' unit. Returns (length, whether a unit was written)."""
    match = _DURATION_PATTERN.match(str(text))
    if not match:
        raise UserError(f"{option}: '{text}' is not a duration (e.g. 10m, 90s, 0.5h, or a bare number in the "
                        f"axis unit)")  # fmt: skip
    number = float(match["number"])
    if not math.isfinite(number) or number <= 0:
        raise UserError(f"{option}: '{text}' must be a positive finite duration")
    if match["unit"] is None:
        return number, False
    minutes = number * _MINUTES_PER_UNIT[match["unit"]]
    return (minutes if axis == "wall_minutes" else minutes / 60.0), True


def parse_times(text: str, axis: TimeAxis) -> list[float]:
    """``--times 20m,60m,1.5h`` -> sorted distinct checkpoints on ``axis``."""
    points = {parse_duration(part, axis, "--times")[0] for part in text.split(",") if part.strip()}
    if not points:
        raise UserError(f"--times: '{text}' names no checkpoint (e.g. 20m,60m,90m)")
    check_row_count(len(points), "--times", text)
    return sorted(points)


def interval_warning(interval: str, spacing: float, had_unit: bool, requested_axis: str, axis: TimeAxis,
                     window: float) -> str | None:  # fmt: skip
    """A bare ``--interval`` on the training-hours axis that ``auto`` chose, leaving < 2 checkpoints: say so (a user
    who meant minutes gets one row per table and no other sign of it)."""
    if had_unit or requested_axis != "auto" or axis != "training_hours" or math.floor(window / spacing + 1e-9) >= 2:
        return None
    return (f"--interval {interval} is read in hours (the time axis 'auto' chose training hours), which leaves "
            f"{math.floor(window / spacing + 1e-9)} checkpoint(s) in the {window:.3g} h common window; write a unit, "
            f"e.g. --interval {interval}m for minutes")  # fmt: skip


def step_checkpoints(steps: str | None, step_interval: str | None, frames_window: int) -> list[int]:
    """Explicit ``--steps``, or every ``--step-interval`` (default: a nice spacing) up to the common frames."""
    if steps is not None:
        return parse_frame_list(steps, "--steps")
    spacing = parse_frames(step_interval, "--step-interval") if step_interval is not None else None
    return [round(x) for x in checkpoints(float(frames_window), spacing, "--step-interval", whole=True)]

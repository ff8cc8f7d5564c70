"""One comparison, computed: runs loaded, axis chosen, common window, checkpoints, rows, findings, audit."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from trackrl.analysis.axes import (
    AXIS_UNITS,
    TimeAxis,
    active_seconds,
    checkpoints,
    choose_time_axis,
    extend_past_window,
    has_training_hours,
    interval_warning,
    merged_sessions,
    nice_interval,
    parse_duration,
    parse_frames,
    parse_times,
    pauses_wall,
    run_length,
    step_checkpoints,
)
from trackrl.analysis.runs import RunData, load_run, resolve_runs
from trackrl.analysis.tables import Metric, Row, compute_rows, key_findings, select_metrics
from trackrl.train import tb

# Wall time more than this multiple of training time is flagged by the audit.
WALL_TO_TRAINING_FLAG_RATIO = 1.5


@dataclass(frozen=True)
class RunSummary:
    """What the audit and the report's Run Analysis show for one run."""

    name: str
    folders: list[str]
    wall_minutes: float  # first to last scalar event, gaps between sessions included
    active_minutes: float  # inside event-file sessions
    training_hours: float | None  # last cumul_training_hours logged
    max_frames: int
    n_event_files: int
    n_events: int
    n_purged: int  # orphans of a restart, dropped as TensorBoard does
    problems: list[str]
    pauses_min: list[tuple[float, float]] = field(default_factory=list)  # (start, end) wall minutes of each pause

    @property
    def wall_to_training_ratio(self) -> float | None:
        if not self.training_hours:
            return None
        return (self.wall_minutes / 60.0) / self.training_hours

    @property
    def flagged(self) -> bool:
        ratio = self.wall_to_training_ratio
        return ratio is not None and ratio > WALL_TO_TRAINING_FLAG_RATIO

    def to_json(self) -> dict:
        return {
            "folders": self.folders,
            "wall_minutes": self.wall_minutes,
            "active_minutes": self.active_minutes,
            "training_hours": self.training_hours,
            "wall_to_training_ratio": self.wall_to_training_ratio,
            "max_frames": self.max_frames,
            "event_files": self.n_event_files,
            "events": self.n_events,
            "purged_after_restart": self.n_purged,
            "problems": self.problems,
            "pauses_wall_minutes": [list(p) for p in self.pauses_min],
        }


def summarize_run(run: RunData) -> RunSummary:
    sessions = merged_sessions(run.session_spans)
    active_s = float(active_seconds(sessions, sessions[-1:, 1])[0])
    hours = float(run.series[tb.CUMUL_TRAINING_HOURS].value.max()) if has_training_hours(run) else None
    return RunSummary(
        name=run.name, folders=run.folders, wall_minutes=(run.t_end - run.t0) / 60.0, active_minutes=active_s / 60.0,
        training_hours=hours, max_frames=run.max_step, n_event_files=run.n_event_files, n_events=run.n_events,
        n_purged=run.n_purged, problems=run.problems,
        pauses_min=[((a - run.t0) / 60.0, (b - run.t0) / 60.0) for a, b in pauses_wall(run)],
    )  # fmt: skip


@dataclass(frozen=True)
class Comparison:
    time_axis: TimeAxis
    common_window: float  # on time_axis
    common_frames: int
    time_points: list[float]
    step_points: list[int]
    metrics: list[Metric]
    rows: list[Row]
    findings: list[str]
    runs: list[RunSummary]
    shortest_run: str
    notes: list[str] = field(default_factory=list)  # warnings about the options (also printed and reported)
    beyond_window: bool = False

    def to_json(self) -> dict:
        return {
            "axis": self.time_axis,
            "axis_unit": AXIS_UNITS[self.time_axis],
            "common_window": self.common_window,
            "common_frames": self.common_frames,
            "shortest_run": self.shortest_run,
            "time_checkpoints": self.time_points,
            "step_checkpoints": self.step_points,
            "runs": {run.name: run.to_json() for run in self.runs},
            "findings": self.findings,
            "notes": self.notes,
            "rows": [row.to_json() for row in self.rows],
        }


def load_runs(names: Sequence[str], logdir: Path, save_dir: Path) -> list[RunData]:
    return [load_run(run, logdir, save_dir) for run in resolve_runs(names, logdir, save_dir)]


def time_checkpoints(axis: TimeAxis, requested_axis: str, window: float, longest: float,
                     interval: str | float | None, times: str | None,
                     beyond_window: bool) -> tuple[list[float], list[str]]:  # fmt: skip
    """Checkpoints on the time axis (explicit ``times``, else every ``interval`` to the end of the common window, and
    on to the longest run with ``beyond_window``), and warnings about the options."""
    if times:
        return parse_times(times, axis), []
    notes = []
    spacing: float | None = None
    if interval is not None:
        spacing, had_unit = parse_duration(str(interval), axis)
        if (note := interval_warning(str(interval), spacing, had_unit, requested_axis, axis, window)) is not None:
            notes.append(note)
    points = checkpoints(window, spacing)
    if beyond_window:
        points = extend_past_window(points, window, longest, spacing or nice_interval(window))
    return points, notes


def compare_runs(runs: Sequence[RunData], time_axis: str = "auto", interval: str | float | None = None,
                 steps: str | None = None, step_interval: str | None = None,
                 map_name: str | None = None, times: str | None = None,
                 beyond_window: bool = False) -> Comparison:  # fmt: skip
    """Tables at every checkpoint of the common window (the shortest run) and at the step checkpoints."""
    axis = choose_time_axis(time_axis, runs)
    lengths = {run.name: run_length(run, axis) for run in runs}
    shortest = min(lengths, key=lambda name: lengths[name])
    window = lengths[shortest]
    frames_window = min(run.max_step for run in runs)
    time_points, notes = time_checkpoints(axis, time_axis, window, max(lengths.values()), interval, times,
                                          beyond_window)  # fmt: skip
    step_points = step_checkpoints(steps, step_interval, frames_window)
    if beyond_window and not steps:
        spacing = parse_frames(step_interval, "--step-interval") if step_interval else nice_interval(frames_window)
        longest_frames = max(run.max_step for run in runs)
        step_points = [round(x) for x in extend_past_window(list(map(float, step_points)), frames_window,
                                                           longest_frames, spacing)]  # fmt: skip
    metrics = select_metrics(runs, map_name)
    rows = compute_rows(runs, metrics, axis, time_points, step_points, {axis: window, "frames": frames_window})
    findings = key_findings(rows, metrics, axis, window, step_points, runs, time_points)
    return Comparison(axis, window, frames_window, time_points, step_points, metrics, rows, findings,
                      [summarize_run(run) for run in runs], shortest, notes, beyond_window)  # fmt: skip


def compare(names: Sequence[str], logdir: str | Path = "tensorboard", save_dir: str | Path = "save",
            **options: object) -> Comparison:  # fmt: skip
    """Load the named runs and compare them (options as ``compare_runs``)."""
    return compare_runs(load_runs(names, Path(logdir), Path(save_dir)), **options)  # type: ignore[arg-type]

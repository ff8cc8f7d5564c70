"""PNGs of a comparison: per metric, by the time axis and by frames; a finish-rate plot per race tag.

Race tags: finished races as faint dots and the best-so-far as a step line (DNFs are not drawn: they would squash
the scale to the cutoff). ``alltime_min_ms``: step line of the best, in seconds. Other scalars: the logged values
(percent for shares). Only for drawing, series longer than ``MAX_POINTS_DRAWN`` are reduced to per-bin means, and the
caption says so (the tables always use every event). On the wall-minutes axis lines break at pauses; the x axis ends
``X_MARGIN`` past the common window (with ``--beyond-window``, past the longest run). Each run has its own colour,
line style and marker, so a run drawn under another still shows.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # before pyplot: no display needed
import matplotlib.pyplot as plt
import numpy as np

from trackrl.analysis.axes import AXIS_LABELS, AXIS_SHORT, AxisName, pauses_wall, run_length, time_axis_values
from trackrl.analysis.comparison import Comparison
from trackrl.analysis.report import Figure
from trackrl.analysis.runs import RunData
from trackrl.analysis.tables import TIME_FAMILIES, Metric, race_finished
from trackrl.atomic import atomic_write
from trackrl.train import tb

MAX_POINTS_DRAWN = 4000
FINISH_RATE_RACES = 20  # the finish-rate curve: share of finished races among the last N
SCALAR_SMOOTHING = 20  # noisy scalars: faint logged values under the mean of the last N
X_MARGIN = 0.1  # fraction of the window shown past its end
LINE_STYLES = ("-", "--", ":", "-.")
MARKERS = ("o", "s", "^", "D", "v", "P", "X")


def plot_file_name(tag: str, axis: str = "", kind: str = "") -> str:
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "__", tag).strip("_")
    return "__".join(part for part in (stem, kind, f"by_{axis}" if axis else "") if part) + ".png"


def bin_means(x: np.ndarray, y: np.ndarray, max_points: int = MAX_POINTS_DRAWN) -> tuple[np.ndarray, np.ndarray]:
    """Means of consecutive equal-count bins (for drawing only)."""
    if len(x) <= max_points:
        return x, y
    edges = np.linspace(0, len(x), max_points + 1).astype(np.int64)
    counts = np.diff(edges)
    return np.add.reduceat(x, edges[:-1]) / counts, np.add.reduceat(y, edges[:-1]) / counts


def positions(run: RunData, tag: str, axis: AxisName) -> np.ndarray:
    series = run.series[tag]
    return series.step.astype(np.float64) if axis == "frames" else time_axis_values(run, axis, series.wall_time)


def break_at_pauses(run: RunData, axis: AxisName, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Insert a NaN between the last point before and the first point after each pause (wall axis), so matplotlib
    draws no line across a time the run was not running."""
    if axis != "wall_minutes" or len(x) < 2:
        return x, y
    for start, end in pauses_wall(run)[::-1]:
        start_min, end_min = (start - run.t0) / 60.0, (end - run.t0) / 60.0
        i = int(np.searchsorted(x, end_min - 1e-9))
        if 0 < i < len(x) and x[i - 1] <= start_min + 1e-9:
            x, y = np.insert(x, i, start_min), np.insert(y, i, np.nan)
    return x, y


class _Style:
    """Colour, line style and marker of run ``i``."""

    def __init__(self, i: int) -> None:
        colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
        self.color = colors[i % len(colors)]
        self.linestyle = LINE_STYLES[i % len(LINE_STYLES)]
        self.marker = MARKERS[i % len(MARKERS)]
        self.offset = i

    def line(self, n_points: int) -> dict:
        """About ten markers per line, offset per run so two runs' markers do not coincide."""
        every = max(1, n_points // 10)
        return {"color": self.color, "linestyle": self.linestyle, "marker": self.marker, "linewidth": 1.3,
                "markevery": (self.offset * every // 3 % every, every), "markersize": 4}  # fmt: skip


def _draw_metric(ax: plt.Axes, run: RunData, metric: Metric, axis: AxisName, style: _Style) -> int:
    """Draw one run; returns how many race dots were binned (0: every dot drawn)."""
    series = run.series[metric.tag]
    x = positions(run, metric.tag, axis)
    order = np.argsort(x, kind="stable")
    x, value = x[order], series.value[order]
    binned = 0
    if metric.family in ("race", "robust", "finished"):
        finished = race_finished(run, metric)[order] if metric.family == "race" else value < run.race_cutoff_s
        if not finished.any():
            return 0
        xs, ys = x[finished], value[finished]
        binned = len(xs) if len(xs) > MAX_POINTS_DRAWN else 0
        ax.scatter(*bin_means(xs, ys), s=6, color=style.color, marker=style.marker, alpha=0.25, linewidths=0)
        ax.step(*break_at_pauses(run, axis, xs, np.minimum.accumulate(ys)), where="post",
                label=f"{run.name} (best so far)", **style.line(len(xs)))  # fmt: skip
    elif metric.family == "best_so_far":
        keep = value < 1000.0 * run.race_cutoff_s
        if keep.any():
            best_s = np.minimum.accumulate(value[keep]) * metric.scale
            ax.step(*break_at_pauses(run, axis, x[keep], best_s), where="post", label=run.name,
                    **style.line(int(keep.sum())))  # fmt: skip
    else:
        scaled = value * metric.scale
        ax.plot(*break_at_pauses(run, axis, *bin_means(x, scaled)), color=style.color, linewidth=0.6, alpha=0.3)
        smooth = rolling_mean(scaled, SCALAR_SMOOTHING)
        ax.plot(*break_at_pauses(run, axis, *bin_means(x, smooth)), label=f"{run.name} (mean of last "
                f"{SCALAR_SMOOTHING})", **style.line(min(len(x), MAX_POINTS_DRAWN)))  # fmt: skip
        binned = len(x) if len(x) > MAX_POINTS_DRAWN else 0
    return binned


def rolling_mean(values: np.ndarray, count: int) -> np.ndarray:
    """Mean of the last ``count`` values (fewer at the start)."""
    total = np.cumsum(values, dtype=np.float64)
    before = np.concatenate((np.zeros(count), total))[: len(total)]
    return (total - before) / np.minimum(np.arange(1, len(values) + 1), count)


def finish_rate_curve(finished: np.ndarray, races: int = FINISH_RATE_RACES) -> np.ndarray:
    """Percent of finished races among the last ``races`` (fewer at the start)."""
    return 100.0 * rolling_mean(finished.astype(np.float64), races)


def _draw_finish_rate(ax: plt.Axes, run: RunData, metric: Metric, axis: AxisName, style: _Style) -> None:
    x = positions(run, metric.tag, axis)
    order = np.argsort(x, kind="stable")
    rate = finish_rate_curve(race_finished(run, metric)[order])
    ax.plot(*break_at_pauses(run, axis, *bin_means(x[order], rate)), label=run.name,
            **style.line(min(len(x), MAX_POINTS_DRAWN)))  # fmt: skip


def y_label(metric: Metric) -> str:
    if metric.family in TIME_FAMILIES:
        return "race time (s)"
    if metric.tag == tb.LEARNER_PERCENTAGE_TRAINING:
        return "learner busy share (%)"
    if metric.tag == tb.TRAINING_LOSS:
        return "training loss (IQN quantile Huber, unitless)"
    return "average Q (expected return, reward units)"


def _x_limit(comparison: Comparison, runs: Sequence[RunData], axis: AxisName) -> float:
    window = float(comparison.common_frames) if axis == "frames" else comparison.common_window
    if comparison.beyond_window:
        window = max(run_length(run, axis) for run in runs)
    return window * (1.0 + X_MARGIN)


def _caption(metric: Metric, axis: AxisName, kind: str, binned: int, comparison: Comparison) -> str:
    what = (f"Finish rate of `{metric.tag}` (share of finished races among the last {FINISH_RATE_RACES})"
            if kind == "finish_rate" else f"`{metric.tag}` ({y_label(metric)})")  # fmt: skip
    parts = [f"{what} by {AXIS_SHORT[axis]}", "dashed line: end of the common window"]
    if metric.family in ("race", "robust", "finished") and kind != "finish_rate":
        parts.append("dots: finished races, line: best so far, DNFs not drawn")
    if metric.family == "scalar":
        parts.append(f"faint: every logged value, line: mean of the last {SCALAR_SMOOTHING} logged values")
    if binned:
        parts.append(f"{binned:,} points drawn as means of {MAX_POINTS_DRAWN:,} equal-count bins (tables use all)")
    if axis == "wall_minutes":
        parts.append("lines break where a run was paused")
    if not comparison.beyond_window:
        parts.append(f"x axis ends {100 * X_MARGIN:.0f}% past the window (longer runs continue beyond it)")
    return "; ".join(parts) + "."


def save_figure(fig: plt.Figure, path: Path) -> Path:
    try:
        atomic_write(path, lambda handle: fig.savefig(handle, format="png"))  # a reader never sees half a PNG
    finally:
        plt.close(fig)
    return path


def plot_metric(runs: Sequence[RunData], metric: Metric, axis: AxisName, comparison: Comparison, out_dir: Path,
                kind: str = "") -> Figure:  # fmt: skip
    """One figure: ``metric`` by ``axis`` (``kind='finish_rate'``: its finish rate)."""
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=110)
    binned = 0
    for i, run in enumerate(runs):
        if metric.tag in run.series and len(run.series[metric.tag]):
            if kind == "finish_rate":
                _draw_finish_rate(ax, run, metric, axis, _Style(i))
            else:
                binned = max(binned, _draw_metric(ax, run, metric, axis, _Style(i)))
    window = float(comparison.common_frames) if axis == "frames" else comparison.common_window
    ax.axvline(window, color="0.4", linestyle="--", linewidth=1, label="end of common window")
    ax.set_xlim(0.0, _x_limit(comparison, runs, axis))
    label = f"finish rate, last {FINISH_RATE_RACES} races (%)" if kind == "finish_rate" else y_label(metric)
    title = f"{metric.tag}: finish rate" if kind == "finish_rate" else metric.tag
    ax.set(title=title, xlabel=AXIS_LABELS[axis], ylabel=label)
    if kind == "finish_rate":
        ax.set_ylim(-2, 102)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = save_figure(fig, out_dir / plot_file_name(metric.tag, axis, kind))
    return Figure(path, metric.tag, axis, _caption(metric, axis, kind, binned, comparison))


def plot_metrics(runs: Sequence[RunData], comparison: Comparison, out_dir: str | Path) -> list[Figure]:
    """Every metric by the time axis and by frames, and the finish rate of every race tag."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    figures = []
    for metric in comparison.metrics:
        for axis in (comparison.time_axis, "frames"):
            figures.append(plot_metric(runs, metric, axis, comparison, out_dir))
            if metric.family == "race":
                figures.append(plot_metric(runs, metric, axis, comparison, out_dir, kind="finish_rate"))
    return figures

"""One PNG per metric, runs as lines over the chosen time axis (matplotlib Agg, no display needed).

Race tags: finished races as faint dots and the best-so-far as a step line (DNFs are not drawn: they would squash
the scale to the cutoff). ``alltime_min_ms``: step line of the best, in seconds. Other scalars: the logged values; only
for drawing, series longer than 4,000 points are reduced to per-bin means (the tables always use every event).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # before pyplot: no display needed
import matplotlib.pyplot as plt
import numpy as np

from trackrl.analysis.axes import AXIS_LABELS, TimeAxis, time_axis_values
from trackrl.analysis.runs import RunData
from trackrl.analysis.tables import Metric, race_finished
from trackrl.atomic import atomic_write

MAX_POINTS_DRAWN = 4000


def plot_file_name(tag: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "__", tag).strip("_") + ".png"


def bin_means(x: np.ndarray, y: np.ndarray, max_points: int = MAX_POINTS_DRAWN) -> tuple[np.ndarray, np.ndarray]:
    """Means of consecutive equal-count bins (for drawing only)."""
    if len(x) <= max_points:
        return x, y
    edges = np.linspace(0, len(x), max_points + 1).astype(np.int64)
    counts = np.diff(edges)
    return np.add.reduceat(x, edges[:-1]) / counts, np.add.reduceat(y, edges[:-1]) / counts


def _draw_metric(ax: plt.Axes, run: RunData, metric: Metric, axis: TimeAxis, color: str) -> None:
    series = run.series[metric.tag]
    x = time_axis_values(run, axis, series.wall_time)
    if metric.family in ("race", "robust"):
        finished = race_finished(run, metric) if metric.family == "race" else series.value < run.race_cutoff_s
        if not finished.any():
            return
        xs, ys = x[finished], series.value[finished]
        ax.scatter(*bin_means(xs, ys), s=6, color=color, alpha=0.25, linewidths=0)
        ax.step(xs, np.minimum.accumulate(ys), where="post", color=color, label=f"{run.name} (best so far)")
    elif metric.family == "best_so_far":
        keep = series.value < 1000.0 * run.race_cutoff_s
        if keep.any():
            best_s = np.minimum.accumulate(series.value[keep]) / 1000.0
            ax.step(x[keep], best_s, where="post", color=color, label=run.name)
    else:
        ax.plot(*bin_means(x, series.value), color=color, linewidth=1.2, label=run.name)


def _y_label(metric: Metric) -> str:
    if metric.family in ("race", "robust", "best_so_far"):
        return "race time (s)"
    return metric.tag


def plot_metric(runs: Sequence[RunData], metric: Metric, axis: TimeAxis, window: float, out_dir: Path) -> Path:
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=110)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, run in enumerate(runs):
        if metric.tag in run.series:
            _draw_metric(ax, run, metric, axis, colors[i % len(colors)])
    ax.axvline(window, color="0.4", linestyle="--", linewidth=1, label="end of common window")
    title = metric.tag if metric.family != "best_so_far" else f"{metric.tag} (best finished race, s)"
    ax.set(title=title, xlabel=AXIS_LABELS[axis], ylabel=_y_label(metric))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = out_dir / plot_file_name(metric.tag)
    try:
        atomic_write(path, lambda handle: fig.savefig(handle, format="png"))  # a reader never sees half a PNG
    finally:
        plt.close(fig)
    return path


def plot_metrics(runs: Sequence[RunData], metrics: Sequence[Metric], axis: TimeAxis, window: float,
                 out_dir: str | Path) -> list[Path]:  # fmt: skip
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    return [plot_metric(runs, metric, axis, window, out_dir) for metric in metrics]

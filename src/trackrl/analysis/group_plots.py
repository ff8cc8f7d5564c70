"""Figures of groups of runs across seeds (`compare --sweep/--group --plots`), as in rliable (Agarwal et al. 2021):

- aggregate curves: IQM of the per-seed best time / reference lap with its stratified bootstrap 95% CI band, by wall
  minutes, training hours (when every run logs them) and frames;
- a performance profile: the share of seeds whose ratio is <= tau, per group, with its CI band (rliable's score
  distribution, the order flipped because a lower ratio is better);
- interval estimates: IQM, median and mean with their 95% CIs per group (rliable's ``plot_interval_estimates``).

Each figure is computed first (plain arrays, testable), then drawn. A seed's ratio at x is its best-so-far
(``alltime_min_ms_<map>``) up to x over the reference lap; a seed with no finish yet has none, so the IQM covers the
finished seeds (the count is in the caption) and the profile counts the unfinished as never <= tau.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # before pyplot: no display needed
import matplotlib.pyplot as plt
import numpy as np

from trackrl.analysis import statistics as S
from trackrl.analysis.axes import AXIS_LABELS, AxisName, has_training_hours, run_length, time_axis_values
from trackrl.analysis.comparison import Comparison
from trackrl.analysis.groups import Group, raced_maps, reference_s, seed_ratios
from trackrl.analysis.plots import save_figure
from trackrl.analysis.report import Figure
from trackrl.analysis.runs import RunData
from trackrl.analysis.tables import format_position
from trackrl.train import tb

CURVE_POINTS = 41  # x positions per aggregate curve (each one bootstrap)
PROFILE_TAUS = 61
INTERVAL_AGGREGATES = (("iqm", "IQM"), ("median", "Median"), ("mean", "Mean"))
FIGURE_TAG = "seed statistics"


@dataclass(frozen=True)
class AggregateCurve:
    group: str
    axis: AxisName
    x: np.ndarray
    iqm: np.ndarray  # NaN where no seed has finished yet
    low: np.ndarray  # 95% CI; NaN with fewer than 2 finished seeds
    high: np.ndarray
    n_finished: np.ndarray  # seeds with a ratio at each x


@dataclass(frozen=True)
class Profile:
    group: str
    tau: np.ndarray
    share: np.ndarray  # share of seeds x maps with ratio <= tau
    low: np.ndarray
    high: np.ndarray


@dataclass(frozen=True)
class IntervalEstimate:
    group: str
    aggregate: str  # iqm, median, mean
    value: float | None
    ci: tuple[float, float] | None


def best_ratio_at(run: RunData, map_name: str, reference: float, axis: AxisName, xs: np.ndarray) -> np.ndarray:
    """The run's best time / reference up to each x (its best-so-far tag); inf before its first finish."""
    ratios = np.full(len(xs), np.inf)
    series = run.series.get(tb.ALLTIME_MIN_MS_PREFIX + map_name)
    if series is None or len(series) == 0:
        return ratios
    finished = series.value < 1000.0 * run.race_cutoff_s  # a DNF logged at the cutoff is no best time
    at = series.step.astype(np.float64) if axis == "frames" else time_axis_values(run, axis, series.wall_time)
    at, best_s = at[finished], series.value[finished] / 1000.0
    order = np.argsort(at, kind="stable")
    at, best_s = at[order], np.minimum.accumulate(best_s[order]) if len(order) else best_s
    index = np.searchsorted(at, xs, side="right") - 1
    reached = index >= 0
    ratios[reached] = best_s[index[reached]] / reference
    return ratios


def curve_axes(runs: Sequence[RunData]) -> list[AxisName]:
    axes: list[AxisName] = ["wall_minutes"]
    if all(has_training_hours(run) for run in runs):
        axes.append("training_hours")
    return [*axes, "frames"]


def aggregate_curve(group: Group, runs: dict[str, RunData], maps: Sequence[str], save_dir: Path,
                    axis: AxisName, xs: np.ndarray) -> AggregateCurve:  # fmt: skip
    """IQM with its 95% CI of the group's (seeds x maps) ratios at every x."""
    scores = np.stack([np.stack([best_ratio_at(runs[r], m, reference_s(save_dir, r, m), axis, xs) for m in maps],
                                axis=-1) for r in group.runs], axis=1)  # fmt: skip  (x, seeds, maps)
    iqm, low, high = (np.full(len(xs), np.nan) for _ in range(3))
    for i, at_x in enumerate(scores):
        estimate = S.aggregate(at_x, "iqm")
        iqm[i] = estimate.value
        if estimate.ci is not None:
            low[i], high[i] = estimate.ci
    n_finished = np.isfinite(scores).all(axis=2).sum(axis=1)
    return AggregateCurve(group.name, axis, xs, iqm, low, high, n_finished)


def common_end(runs: Sequence[RunData], axis: AxisName) -> float:
    """Where every run has data: a seed past its end could still improve, so curves stop at the shortest run."""
    return min(run_length(run, axis) for run in runs)


def aggregate_curves(groups: Sequence[Group], runs: Sequence[RunData], comparison: Comparison, save_dir: Path,
                     axis: AxisName) -> list[AggregateCurve]:  # fmt: skip
    by_name = {run.name: run for run in runs}
    grouped = [by_name[r] for g in groups for r in g.runs]
    xs = np.linspace(0.0, common_end(grouped, axis), CURVE_POINTS)
    return [aggregate_curve(g, by_name, raced_maps(comparison), save_dir, axis, xs) for g in groups]


def final_point(comparison: Comparison) -> tuple[str, float]:
    """The end of the common window on the comparison's time axis (the last time checkpoint)."""
    return comparison.time_axis, comparison.time_points[-1]


def profiles(groups: Sequence[Group], comparison: Comparison, save_dir: Path) -> list[Profile]:
    """Performance profiles at the end of the common window, on one tau grid for every group."""
    scores = {g.name: seed_ratios(comparison, g, save_dir, *final_point(comparison)) for g in groups}
    finite = np.concatenate([s[np.isfinite(s)] for s in scores.values()])
    low = min(1.0, float(finite.min())) if len(finite) else 1.0
    high = max(1.1, float(finite.max()) * 1.02) if len(finite) else 1.5
    taus = np.linspace(low, high, PROFILE_TAUS)
    return [Profile(name, taus, *S.performance_profile(s, taus)) for name, s in scores.items()]


def interval_estimates(statistics: dict, comparison: Comparison) -> list[IntervalEstimate]:
    """IQM / median / mean with CIs per group at the end of the common window (from ``group_statistics``)."""
    axis, at = final_point(comparison)
    estimates = []
    for name, entry in statistics.items():
        checkpoint = next(c for c in entry["checkpoints"] if c["axis"] == axis and c["at"] == at)
        for aggregate, _ in INTERVAL_AGGREGATES:
            ci = checkpoint[f"{aggregate}_ci"]
            estimates.append(IntervalEstimate(name, aggregate, checkpoint[aggregate], tuple(ci) if ci else None))
    return estimates


def _color(i: int) -> str:
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    return colors[i % len(colors)]


def draw_aggregate_curves(ax: plt.Axes, curves: Sequence[AggregateCurve]) -> None:
    """One line (IQM) and one band (95% CI) per group."""
    for i, curve in enumerate(curves):
        seeds = f"{int(curve.n_finished[-1])} finished seeds at the end"
        # a best-so-far holds until the next improvement: steps, not slopes between the x positions
        ax.plot(curve.x, curve.iqm, color=_color(i), linewidth=1.5, drawstyle="steps-post",
                label=f"{curve.group} (IQM, {seeds})")  # fmt: skip
        ax.fill_between(curve.x, curve.low, curve.high, step="post", color=_color(i), alpha=0.2, linewidth=0)
    ax.axhline(1.0, color="0.4", linestyle="--", linewidth=1, label="reference lap")


def draw_profiles(ax: plt.Axes, group_profiles: Sequence[Profile]) -> None:
    for i, profile in enumerate(group_profiles):
        ax.plot(profile.tau, profile.share, color=_color(i), linewidth=1.5, drawstyle="steps-post",
                label=profile.group)  # fmt: skip
        ax.fill_between(profile.tau, profile.low, profile.high, step="post", color=_color(i), alpha=0.2, linewidth=0)


def draw_interval_estimates(axes: Sequence[plt.Axes], estimates: Sequence[IntervalEstimate]) -> None:
    """One panel per aggregate, one row per group: the CI as a bar, the point estimate as a tick."""
    names = list(dict.fromkeys(e.group for e in estimates))
    for ax, (aggregate, title) in zip(axes, INTERVAL_AGGREGATES, strict=True):
        for row, name in enumerate(names):
            estimate = next(e for e in estimates if e.group == name and e.aggregate == aggregate)
            if estimate.ci is not None:
                ax.barh(row, estimate.ci[1] - estimate.ci[0], left=estimate.ci[0], height=0.6, color=_color(row),
                        alpha=0.75)  # fmt: skip
            if estimate.value is not None:
                ax.vlines(estimate.value, row - 0.3, row + 0.3, color="black", linewidth=2)
        if ax is axes[0]:  # the panels share the y axis: label the groups once
            ax.set_yticks(range(len(names)), names)
        ax.margins(x=0.1)
        ax.set(title=title, xlabel="best time / reference")
        ax.grid(axis="x", alpha=0.3)


def _seeds_note(groups: Sequence[Group]) -> str:
    return ", ".join(f"{g.name}: {len(g.runs)} seeds" for g in groups)


def plot_group_figures(statistics: dict, groups: Sequence[Group], runs: Sequence[RunData], comparison: Comparison,
                       save_dir: Path, out_dir: str | Path) -> list[Figure]:  # fmt: skip
    """Every group figure, written atomically as PNG under ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    figures = []
    band = "band: stratified bootstrap 95% CI (needs 2 finished seeds)"
    for axis in curve_axes(runs):
        fig, ax = plt.subplots(figsize=(8, 4.5), dpi=110)
        draw_aggregate_curves(ax, aggregate_curves(groups, runs, comparison, save_dir, axis))
        ax.set(title="best time / reference across seeds (IQM)", xlabel=AXIS_LABELS[axis],
               ylabel="best time / reference lap")  # fmt: skip
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = save_figure(fig, out_dir / f"groups__iqm_ratio__by_{axis}.png")
        caption = (f"IQM over seeds of the best time so far / reference lap by {AXIS_LABELS[axis]} (lower is "
                   f"better), finished seeds only; {band}; up to the shortest run "
                   f"({_seeds_note(groups)}).")  # fmt: skip
        figures.append(Figure(path, FIGURE_TAG, axis, caption))
    if not comparison.time_points:
        return figures
    axis, at = final_point(comparison)
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=110)
    draw_profiles(ax, profiles(groups, comparison, save_dir))
    ax.set(title=f"performance profile at {format_position(axis, at)}", xlabel="tau (best time / reference)",
           ylabel="share of seeds with ratio <= tau", ylim=(-0.02, 1.02))  # fmt: skip
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = save_figure(fig, out_dir / "groups__performance_profile.png")
    figures.append(Figure(path, FIGURE_TAG, axis, f"Share of seeds (x maps) whose best time / reference is <= tau "
                          f"at {format_position(axis, at)}; a seed that never finished never counts; {band}."))
    fig, axes = plt.subplots(1, len(INTERVAL_AGGREGATES), figsize=(10, 1.2 + 0.5 * len(groups)), dpi=110,
                             sharey=True)  # fmt: skip
    draw_interval_estimates(list(axes), interval_estimates(statistics, comparison))
    fig.tight_layout()
    path = save_figure(fig, out_dir / "groups__interval_estimates.png")
    figures.append(Figure(path, FIGURE_TAG, axis, f"IQM, median and mean of the per-seed best time / reference at "
                          f"{format_position(axis, at)} (tick), bar: stratified bootstrap 95% CI; finished "
                          f"seeds only ({_seeds_note(groups)})."))  # fmt: skip
    return figures

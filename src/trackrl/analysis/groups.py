"""Groups of runs (one per sweep grid cell, across seeds): per-checkpoint seed statistics of the best race time /
reference lap, probability of improvement per ordered pair, finish rate, and time / frames to first reach 1.10x
and 1.05x of the reference. The statistics are analysis/statistics.py's; this module only gathers per-seed values.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import yaml

from trackrl.analysis import statistics as S
from trackrl.analysis.axes import AXIS_LABELS, AXIS_UNITS, time_axis_values
from trackrl.analysis.comparison import Comparison
from trackrl.analysis.report import Figure, figure_lines, markdown_table
from trackrl.analysis.runs import CONFIG_SNAPSHOT_FILE, LogFolderError, RunData
from trackrl.analysis.tables import best_time_by_run, format_frames
from trackrl.sim.lap_reference import lap_reference
from trackrl.sim.track import load_track
from trackrl.train import tb

RATIO_TARGETS = (1.10, 1.05)
_SEED_SUFFIX = re.compile(r"-s\d+$")


@dataclass(frozen=True)
class Group:
    name: str
    runs: list[str]


def parse_groups(texts: Sequence[str]) -> list[Group]:
    """--group a01-s0,a01-s1 --group a01_btr-s0,...: a group is named after its runs minus the seed suffix."""
    groups = []
    for text in texts:
        runs = [r.strip() for r in text.split(",") if r.strip()]
        if not runs:
            raise LogFolderError(f"--group {text!r}: give comma-separated run names")
        cells = sorted({_SEED_SUFFIX.sub("", r) for r in runs})
        groups.append(Group(cells[0] if len(cells) == 1 else "+".join(cells), runs))
    names = [g.name for g in groups]
    if len(set(names)) != len(names):
        groups = [Group(f"{g.name}#{i + 1}", g.runs) for i, g in enumerate(groups)]
    return groups


def sweep_groups(save_dir: Path, sweep: str) -> list[Group]:
    """The grid cells of save/sweeps/NAME/sweep.json, in grid order (read as JSON: analysis does not import sweep)."""
    path = save_dir / "sweeps" / sweep / "sweep.json"
    if not path.is_file():
        raise LogFolderError(f"--sweep {sweep}: {path} not found (check --save-dir)")
    try:
        trials = list(json.loads(path.read_text(encoding="utf-8"))["trials"])
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise LogFolderError(f"{path}: not a valid sweep file ({error})") from None
    cells: dict[str, list[str]] = {}
    for trial in trials:
        cells.setdefault(_SEED_SUFFIX.sub("", trial), []).append(trial)
    return [Group(name, runs) for name, runs in cells.items()]


@cache
def _reference_s(map_name: str, road_width_m: float | None) -> float:
    """The yardstick `trackrl train` reports ratios against: the achieved time (the optimal line of the car model
    driven in the simulator), else the model's optimal time when the tracking controller did not finish."""
    reference = lap_reference(load_track(map_name, road_width_m))
    return (reference.achieved_ms if reference.achieved_ms is not None else reference.optimal_ms) / 1000.0


def reference_s(save_dir: Path, run: str, map_name: str) -> float:
    """The reference lap (s) the run was measured against: the map at the road width of its config snapshot."""
    width = None
    path = save_dir / run / CONFIG_SNAPSHOT_FILE
    if path.is_file():
        try:
            width = yaml.safe_load(path.read_text())["environment"]["default_road_width_m"]
        except (OSError, yaml.YAMLError, KeyError, TypeError):
            width = None
    return _reference_s(map_name, float(width) if isinstance(width, int | float) else None)


def raced_maps(comparison: Comparison) -> list[str]:
    """Maps raced (a map with no finish yet has race tags but no best-so-far tag)."""
    return sorted({m.map_name for m in comparison.metrics if m.map_name and m.family in ("race", "best_so_far")})


def seed_ratios(comparison: Comparison, group: Group, save_dir: Path, axis: str, at: float) -> np.ndarray:
    """(n_seeds, n_maps) best time / reference up to ``at``; inf for a seed that has not finished the map."""
    maps = raced_maps(comparison)
    scores = np.full((len(group.runs), len(maps)), np.inf)
    for k, map_name in enumerate(maps):
        all_runs = [run.name for run in comparison.runs]
        standings = best_time_by_run(comparison.rows, comparison.metrics, map_name, axis, at, all_runs)
        for standing in standings:
            if standing.run in group.runs and standing.best_time_s is not None:
                i = group.runs.index(standing.run)
                scores[i, k] = standing.best_time_s / reference_s(save_dir, standing.run, map_name)
    return scores


def first_reach(run: RunData, map_name: str, reference: float, target: float, axis: str) -> tuple[float, int] | None:
    """(time on ``axis``, frames) of the first best-so-far at or below ``target`` x reference; None if never."""
    series = run.series.get(tb.ALLTIME_MIN_MS_PREFIX + map_name)
    if series is None or len(series) == 0:
        return None
    reached = np.flatnonzero(series.value / 1000.0 <= target * reference)
    if len(reached) == 0:
        return None
    first = reached[np.argmin(series.step[reached])]
    time = float(time_axis_values(run, axis, series.wall_time[first : first + 1])[0])  # type: ignore[arg-type]
    return time, int(series.step[first])


def _estimate_json(estimate: S.Estimate) -> tuple[float | None, list[float] | None]:
    value = estimate.value if np.isfinite(estimate.value) else None
    return value, list(estimate.ci) if estimate.ci is not None else None


def checkpoint_stats(scores: np.ndarray, axis: str, at: float) -> dict:
    finished = np.isfinite(scores)
    estimates = S.aggregates(scores)
    entry: dict = {"axis": axis, "at": at, "n_seeds": int(scores.shape[0]),
                   "n_finished": int(finished.all(axis=1).sum()),
                   "finish_rate": float(finished.all(axis=1).mean()) if len(scores) else None}  # fmt: skip
    for name, estimate in estimates.items():
        entry[name], entry[f"{name}_ci"] = _estimate_json(estimate)
    return entry


def _where(axis: str, at: float) -> str:
    return format_frames(at) if axis == "frames" else f"{at:.4g} {AXIS_UNITS[axis]}"  # type: ignore[index]


def group_statistics(comparison: Comparison, groups: Sequence[Group], runs: Sequence[RunData],
                     save_dir: Path) -> dict:  # fmt: skip
    """The JSON ``groups`` object: per group its runs, per checkpoint statistics, first-reach times and the
    probability of improvement over each other group; plus one conclusion sentence per pair."""
    by_name = {run.name: run for run in runs}
    points = [(comparison.time_axis, at) for at in comparison.time_points]
    points += [("frames", float(at)) for at in comparison.step_points]
    scores = {g.name: {p: seed_ratios(comparison, g, save_dir, *p) for p in points} for g in groups}
    result: dict = {}
    for group in groups:
        reach: dict = {}
        for map_name in raced_maps(comparison):
            for target in RATIO_TARGETS:
                firsts = [first_reach(by_name[r], map_name, reference_s(save_dir, r, map_name), target,
                                      comparison.time_axis) for r in group.runs]  # fmt: skip
                reach.setdefault(map_name, {})[f"{target:.2f}"] = {
                    comparison.time_axis: [f[0] if f else None for f in firsts],
                    "frames": [f[1] if f else None for f in firsts],
                    "n_never": sum(f is None for f in firsts),
                }
        improvement: dict = {}
        for other in groups:
            if other.name == group.name:
                continue
            improvement[other.name] = []
            for point in points:
                estimate = S.probability_of_improvement(scores[group.name][point], scores[other.name][point])
                improvement[other.name].append({"axis": point[0], "at": point[1], "p": estimate.value,
                                                "ci": list(estimate.ci) if estimate.ci else None})  # fmt: skip
        result[group.name] = {
            "runs": group.runs,
            "checkpoints": [checkpoint_stats(scores[group.name][p], *p) for p in points],
            "first_reach": reach,
            "probability_of_improvement": improvement,
        }
    return result


def conclusions(comparison: Comparison, groups: Sequence[Group], statistics: dict) -> list[str]:
    """One sentence per unordered pair at the end of the common window (the last time checkpoint)."""
    if not comparison.time_points:
        return []
    axis, at = comparison.time_axis, comparison.time_points[-1]
    sentences = []
    for i, a in enumerate(groups):
        for b in groups[i + 1 :]:
            entry = next(e for e in statistics[a.name]["probability_of_improvement"][b.name]
                         if e["axis"] == axis and e["at"] == at)  # fmt: skip
            estimate = S.Estimate(entry["p"], tuple(entry["ci"]) if entry["ci"] else None)  # type: ignore[arg-type]
            last = len(comparison.time_points) - 1
            if not any(statistics[g.name]["checkpoints"][last]["n_finished"] for g in (a, b)):
                sentences.append(f"{a.name} vs {b.name} at {_where(axis, at)}: no seed of either has finished a race")
                continue
            sentences.append(S.conclusion(a.name, b.name, estimate, _where(axis, at), min(len(a.runs), len(b.runs))))
    return sentences


def _fmt(value: float | None, ci: list[float] | None) -> str:
    if value is None:
        return "—"
    return f"{value:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else f"{value:.3f}"


def group_table(statistics: dict, axis: str) -> tuple[list[str], list[list[str]]]:
    """Rows: checkpoint x group; IQM / mean / median (95% CI) of per-seed best / reference, finished seeds."""
    header = ["at", "group", "IQM [95% CI]", "mean [95% CI]", "median [95% CI]", "finished"]
    points = sorted({cp["at"] for entry in statistics.values() for cp in entry["checkpoints"] if cp["axis"] == axis})
    body = []
    for at in points:
        for name, entry in statistics.items():
            for cp in entry["checkpoints"]:
                if cp["axis"] == axis and cp["at"] == at:
                    cells = [_fmt(cp[name_], cp[f"{name_}_ci"]) for name_ in ("iqm", "mean", "median")]
                    body.append([_where(axis, at), name, *cells, f"{cp['n_finished']}/{cp['n_seeds']}"])
    return header, body


def first_reach_lines(statistics: dict, axis: str) -> list[str]:
    """Per group, map and target: each seed's first time and frames at or below target x reference."""
    lines = []
    for name, entry in statistics.items():
        for map_name, targets in entry["first_reach"].items():
            for target, data in targets.items():
                times = ", ".join("never" if t is None else f"{t:.3g}" for t in data[axis])
                frames = ", ".join("never" if f is None else format_frames(f) for f in data["frames"])
                lines.append(f"{name} on {map_name}: first {target}x reference at [{times}] "
                             f"{AXIS_UNITS[axis]} (by seed), [{frames}]; {data['n_never']} of "  # type: ignore[index]
                             f"{len(data[axis])} seeds never did")  # fmt: skip
    return lines


def render_group_section(statistics: dict, sentences: Sequence[str], time_axis: str,
                         figures: Sequence[Figure] = (), report_dir: Path | None = None) -> list[str]:  # fmt: skip
    """The report's 'Seed statistics' section (Markdown lines), kept separate from report.py's sections."""
    lines = ["## Seed statistics (groups across seeds)", "",
             "Per-seed best race time / reference lap (lower is better); IQM, mean and median with stratified "
             "bootstrap 95% CIs (scipy.stats.bootstrap, percentile); P = probability that a run of the first "
             "group is faster than one of the second, claimed only when its CI excludes 0.5.", ""]  # fmt: skip
    lines += [f"- {s}" for s in sentences] + [""]
    for axis in (time_axis, "frames"):
        header, body = group_table(statistics, axis)
        if body:
            lines += [f"By {AXIS_LABELS[axis]}:", "", *markdown_table(header, body), ""]  # type: ignore[index]
    lines += [f"- {line}" for line in first_reach_lines(statistics, time_axis)] + [""]
    return lines + figure_lines(figures, report_dir)

"""The comparison tables: per run, per metric, at each checkpoint of an axis; and the key findings drawn from them.

Metric families (tag names from trackrl.train.tb):
- race:   ``Race/{explo|eval}_race_time_{status}_{map}`` (s). A race is finished iff the matching
          ``Race/..._race_finished_...`` is 1 at the same step; without that tag, iff time < the run's cutoff
          (its config snapshot's, else 300 s).
          best / mean / std are over finished races only (the anchor averaged 300 s DNFs in); count includes DNFs.
- robust: ``Race/eval_race_time_robust_{status}_{map}`` (s): best, mean, std, count, first logged.
- best_so_far: ``alltime_min_ms_{map}`` (ms): best = min over logged values that are not a DNF cutoff.
- last:   ``Training/loss``, ``RL/avg_Q_*``, ``Performance/learner_percentage_training``: value of the last event.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np

from trackrl.analysis.axes import AXIS_UNITS, AxisName, TimeAxis, run_length, time_axis_values
from trackrl.analysis.runs import RunData
from trackrl.train import tb

Family = Literal["race", "robust", "best_so_far", "last"]
_RACE_TIME = re.compile(r"^Race/(?P<kind>explo|eval)_race_time_(?P<status>trained|blind)_(?P<map>.+)$")
_ROBUST = re.compile(r"^Race/eval_race_time_robust_(?P<status>trained|blind)_(?P<map>.+)$")
_AVG_Q = re.compile(r"^RL/avg_Q_(?P<status>trained|blind)_(?P<map>.+)$")
_LAST_TAGS = (tb.TRAINING_LOSS, tb.LEARNER_PERCENTAGE_TRAINING)
_FAMILY_ORDER: dict[str, int] = {"best_so_far": 0, "race": 1, "robust": 2, "last": 3}


@dataclass(frozen=True)
class Metric:
    tag: str
    family: Family
    map_name: str | None = None
    finished_tag: str | None = None


@dataclass(frozen=True)
class Row:
    """One table cell group; fields that do not apply (or a run that has not reached ``at``) are None."""

    axis: AxisName
    at: float
    run: str
    metric: str
    best: float | None = None
    mean: float | None = None
    std: float | None = None
    finish_rate: float | None = None
    count: int | None = None
    first_finish: float | None = None
    last: float | None = None

    def to_json(self) -> dict:
        return asdict(self)


def classify_tag(tag: str) -> Metric | None:
    """The metric family of a tag, or None for a tag the tables do not show."""
    if match := _RACE_TIME.match(tag):
        finished = tb.race_finished_tag(match["kind"], match["status"], match["map"])  # type: ignore[arg-type]
        return Metric(tag, "race", match["map"], finished)
    if match := _ROBUST.match(tag):
        return Metric(tag, "robust", match["map"])
    if tag.startswith(tb.ALLTIME_MIN_MS_PREFIX):
        return Metric(tag, "best_so_far", tag[len(tb.ALLTIME_MIN_MS_PREFIX) :])
    if match := _AVG_Q.match(tag):
        return Metric(tag, "last", match["map"])
    if tag in _LAST_TAGS:
        return Metric(tag, "last")
    return None


def select_metrics(runs: Sequence[RunData], map_name: str | None = None) -> list[Metric]:
    """Every table metric logged by any run (optionally only ``map_name``'s map tags), in table order."""
    tags = sorted({tag for run in runs for tag in run.series})
    metrics = [m for m in map(classify_tag, tags) if m is not None]
    if map_name is not None:
        metrics = [m for m in metrics if m.map_name in (None, map_name)]
    return sorted(metrics, key=lambda m: (m.map_name or "~", _FAMILY_ORDER[m.family], m.tag))


# ---------------------------------------------------------------------------------------------- race outcomes
def occurrence_rank(steps: np.ndarray) -> np.ndarray:
    """0 for the first event at a step, 1 for the second, ... (events given in logging order)."""
    order = np.argsort(steps, kind="stable")
    sorted_steps = steps[order]
    new_group = np.r_[True, sorted_steps[1:] != sorted_steps[:-1]]
    positions = np.arange(len(steps))
    rank_sorted = positions - np.maximum.accumulate(np.where(new_group, positions, 0))
    rank = np.empty(len(steps), dtype=np.int64)
    rank[order] = rank_sorted
    return rank


def race_finished(run: RunData, metric: Metric) -> np.ndarray:
    """Finished flag per race of ``metric``: the race_finished tag at the same step, else time < cutoff."""
    times = run.series[metric.tag]
    finished = times.value < run.race_cutoff_s
    flags = run.series.get(metric.finished_tag or "")
    if flags is None or len(flags) == 0:
        return finished
    # Pair the k-th race at a step with the k-th flag at that step.
    time_rank, flag_rank = occurrence_rank(times.step), occurrence_rank(flags.step)
    width = int(max(time_rank.max(), flag_rank.max())) + 1
    time_key = times.step * width + time_rank
    flag_key = flags.step * width + flag_rank
    order = np.argsort(flag_key)
    position = np.clip(np.searchsorted(flag_key[order], time_key), 0, len(flag_key) - 1)
    matched = flag_key[order][position] == time_key
    finished[matched] = flags.value[order][position][matched] >= 0.5
    return finished


# ---------------------------------------------------------------------------------------------- statistics
def _tolerance(at: float) -> float:
    return 1e-9 * max(1.0, abs(at))


def _float(x: float | np.floating) -> float | None:
    value = float(x)
    return value if math.isfinite(value) else None


def race_row(base: Row, values: np.ndarray, finished: np.ndarray, positions: np.ndarray) -> Row:
    """best/mean/std over finished races, finish rate over all; ``positions`` = axis value of each race."""
    done = values[finished]
    return Row(
        base.axis, base.at, base.run, base.metric,
        best=_float(done.min()) if len(done) else None,
        mean=_float(done.mean()) if len(done) else None,
        std=_float(done.std()) if len(done) else None,  # population std (ddof=0), as the anchor script
        finish_rate=len(done) / len(values) if len(values) else None,
        count=len(values),
        first_finish=_float(positions[finished].min()) if len(done) else None,
        last=_float(values[-1]) if len(values) else None,
    )  # fmt: skip


def best_so_far_row(base: Row, values_ms: np.ndarray, cutoff_ms: float) -> Row:
    finished = values_ms[values_ms < cutoff_ms]  # a DNF cutoff is never a best (anchor bug)
    return Row(
        base.axis, base.at, base.run, base.metric,
        best=_float(finished.min()) if len(finished) else None,
        count=len(values_ms),
        last=_float(values_ms[-1]) if len(values_ms) else None,
    )  # fmt: skip


def last_row(base: Row, values: np.ndarray) -> Row:
    return Row(base.axis, base.at, base.run, base.metric, count=len(values),
               last=_float(values[-1]) if len(values) else None)  # fmt: skip


@dataclass(frozen=True)
class _Prepared:
    """A metric's events in one run, with their position on the time axis and on the frames axis."""

    metric: Metric
    value: np.ndarray
    time_position: np.ndarray
    frames_position: np.ndarray
    finished: np.ndarray | None
    cutoff_s: float  # the run's DNF race time


def _prepare(run: RunData, metric: Metric, time_axis: TimeAxis) -> _Prepared | None:
    series = run.series.get(metric.tag)
    if series is None or len(series) == 0:
        return None
    finished = race_finished(run, metric) if metric.family == "race" else None
    if metric.family == "robust":
        finished = series.value < run.race_cutoff_s
    return _Prepared(metric, series.value, time_axis_values(run, time_axis, series.wall_time),
                     series.step.astype(np.float64), finished, run.race_cutoff_s)  # fmt: skip


def _row_at(base: Row, prepared: _Prepared | None, reached: bool) -> Row:
    if prepared is None or not reached:
        return base
    positions = prepared.frames_position if base.axis == "frames" else prepared.time_position
    inside = positions <= base.at + _tolerance(base.at)
    # Events are in wall-time order; on the frames axis "last" means the largest step.
    order = np.argsort(positions[inside], kind="stable") if base.axis == "frames" else slice(None)
    values = prepared.value[inside][order]
    family = prepared.metric.family
    if family in ("race", "robust"):
        return race_row(base, values, prepared.finished[inside][order], positions[inside][order])
    if family == "best_so_far":
        return best_so_far_row(base, values, 1000.0 * prepared.cutoff_s)
    return last_row(base, values)


def compute_rows(runs: Sequence[RunData], metrics: Sequence[Metric], time_axis: TimeAxis,
                 time_points: Sequence[float], step_points: Sequence[int]) -> list[Row]:  # fmt: skip
    """Every (checkpoint, run, metric) row: time checkpoints first, then frames checkpoints."""
    rows = []
    for run in runs:
        prepared = [_prepare(run, metric, time_axis) for metric in metrics]
        for axis, points in ((time_axis, time_points), ("frames", step_points)):
            length = run_length(run, axis)
            for at in points:
                reached = length >= at - _tolerance(at)
                for metric, prep in zip(metrics, prepared, strict=True):
                    rows.append(_row_at(Row(axis, float(at), run.name, metric.tag), prep, reached))
    order = {run.name: i for i, run in enumerate(runs)}
    metric_order = {m.tag: i for i, m in enumerate(metrics)}
    return sorted(rows, key=lambda r: (r.axis == "frames", r.at, metric_order[r.metric], order[r.run]))


# ---------------------------------------------------------------------------------------------- key findings
@dataclass(frozen=True)
class Standing:
    run: str
    best_time_s: float | None


def best_time_by_run(rows: Sequence[Row], metrics: Sequence[Metric], map_name: str, axis: str, at: float,
                     run_names: Sequence[str]) -> list[Standing]:  # fmt: skip
    """Best finished race time (s) on ``map_name`` up to ``at``: over its race tags and ``alltime_min_ms``."""
    family = {m.tag: m for m in metrics}
    best: dict[str, float | None] = dict.fromkeys(run_names)
    for row in rows:
        metric = family.get(row.metric)
        if row.axis != axis or row.at != at or metric is None or metric.map_name != map_name or row.best is None:
            continue
        if metric.family not in ("race", "robust", "best_so_far"):
            continue
        seconds = row.best / 1000.0 if metric.family == "best_so_far" else row.best
        current = best[row.run]
        best[row.run] = seconds if current is None else min(current, seconds)
    ranked = sorted(best.items(), key=lambda item: (item[1] is None, item[1] if item[1] is not None else 0.0))
    return [Standing(run, value) for run, value in ranked]


def _format_axis(axis: str, at: float) -> str:
    if axis == "frames":
        return format_frames(at)
    return f"{at:.4g} {AXIS_UNITS[axis]}"


def format_frames(frames: float) -> str:
    for unit, size in (("M", 1e6), ("k", 1e3)):
        if frames >= size:
            return f"{frames / size:.4g}{unit} frames"
    return f"{frames:.0f} frames"


def ranking_sentence(standings: Sequence[Standing], map_name: str, where: str) -> str:
    finished = [s for s in standings if s.best_time_s is not None]
    if not finished:
        return f"{where}: no run has finished a race on {map_name} yet."
    leader = finished[0]
    others = [
        f"{s.run} {s.best_time_s:.3f} s (+{s.best_time_s - leader.best_time_s:.3f} s)"  # type: ignore[operator]
        for s in finished[1:]
    ]
    unfinished = [s.run for s in standings if s.best_time_s is None]
    text = f"{where}: **{leader.run}** is best on {map_name} with {leader.best_time_s:.3f} s"
    if others:
        text += "; " + ", ".join(others)
    if unfinished:
        text += "; no finish yet: " + ", ".join(unfinished)
    return text + "."


def key_findings(rows: Sequence[Row], metrics: Sequence[Metric], time_axis: TimeAxis, window: float,
                 step_points: Sequence[int], runs: Sequence[RunData]) -> list[str]:  # fmt: skip
    """Who is best at the end of the common window and at each step checkpoint, plus eval and learner facts."""
    names = [run.name for run in runs]
    maps = sorted({m.map_name for m in metrics if m.map_name is not None and m.family != "last"})
    findings = []
    for map_name in maps:
        where = f"End of the common window ({_format_axis(time_axis, window)})"
        findings.append(ranking_sentence(best_time_by_run(rows, metrics, map_name, time_axis, window, names),
                                         map_name, where))  # fmt: skip
        for at in step_points:
            reached = {r.run for r in rows if r.axis == "frames" and r.at == at and r.count is not None}
            if not reached:
                continue
            standings = [s for s in best_time_by_run(rows, metrics, map_name, "frames", at, names) if s.run in reached]
            sentence = ranking_sentence(standings, map_name, f"At {format_frames(at)}")
            missing = [n for n in names if n not in reached]
            if missing:
                sentence += f" (not reached by {', '.join(missing)})"
            findings.append(sentence)
        findings.extend(_eval_findings(rows, metrics, map_name, time_axis, window))
    findings.extend(_scalar_findings(rows, time_axis, window, tb.LEARNER_PERCENTAGE_TRAINING, "learner busy share",
                                     percent=True))  # fmt: skip
    return findings


def _eval_findings(rows: Sequence[Row], metrics: Sequence[Metric], map_name: str, axis: str, at: float) -> list[str]:
    findings = []
    for metric in metrics:
        if metric.family != "race" or metric.map_name != map_name or not metric.tag.startswith("Race/eval_"):
            continue
        cells = [r for r in rows if r.axis == axis and r.at == at and r.metric == metric.tag and r.count]
        if not cells:
            continue
        cells.sort(key=lambda r: (r.mean is None, r.mean or 0.0))
        parts = [
            f"{r.run} {r.mean:.3f} ± {r.std:.3f} s over {round(r.finish_rate * r.count)} finishes "
            f"({100 * r.finish_rate:.0f}% of {r.count})"
            if r.mean is not None and r.std is not None and r.finish_rate is not None
            else f"{r.run} no finish in {r.count} races"
            for r in cells
        ]
        findings.append(f"Eval races `{metric.tag}` up to {_format_axis(axis, at)}, by mean of finishes: "
                        + "; ".join(parts) + ".")  # fmt: skip
    return findings


def _scalar_findings(rows: Sequence[Row], axis: str, at: float, tag: str, label: str, percent: bool) -> list[str]:
    cells = [r for r in rows if r.axis == axis and r.at == at and r.metric == tag and r.last is not None]
    if not cells:
        return []
    parts = [f"{r.run} {100 * r.last:.0f}%" if percent else f"{r.run} {r.last:.4g}" for r in cells]  # type: ignore
    return [f"{label.capitalize()} (last value up to {_format_axis(axis, at)}): " + ", ".join(parts) + "."]

"""The comparison tables: per run, per metric, at each checkpoint of an axis; and the key findings drawn from them.

Metric families (tag names from trackrl.train.tb; units and definitions in docs/metrics.md):
- race:   ``Race/{explo|eval}_race_time_{status}_{map}`` (s). A race is finished iff the matching
          ``Race/..._race_finished_...`` is 1 at the same step; without that tag, iff time < the run's cutoff
          (its config snapshot's, else 300 s).
          best / mean / std are over finished races only (the anchor averaged 300 s DNFs in); count includes DNFs.
- robust: ``Race/eval_race_time_robust_{status}_{map}`` (s): best, mean, std, count, first logged.
- finished: ``Race/{explo|eval}_race_time_finished_{status}_{map}`` (s): finished races only (Linesight's tag; rulka's
          analysis script counts it among its ``Race/*_race_time_*`` tags): best, mean, std, count of finishes.
- best_so_far: ``alltime_min_ms_{map}`` (logged in ms, shown in s): best = min over logged values that are not a
          DNF cutoff.
- best / achieved (simulator): in every race, robust and best_so_far cell, ``best_vs_achieved`` = best / the map's
          achieved time that the run logged (``Reference/achieved_ms_{map}``: the optimal line driven in the simulator
          by a tracking controller, a driver's time and not a limit; < 1 = the agent drove faster, a finding).
- scalar: ``Training/loss``, ``RL/avg_Q_*``, ``Performance/learner_percentage_training`` (shown in %): logged every
          few seconds, so one value is one noisy sample; a cell is the mean over the interval before the checkpoint
          (previous checkpoint, checkpoint], with the last value kept in the JSON.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Literal

import numpy as np

from trackrl.analysis.axes import AXIS_UNITS, AxisName, TimeAxis, paused_since, run_length, time_axis_values
from trackrl.analysis.runs import RunData
from trackrl.train import tb

Family = Literal["race", "robust", "finished", "best_so_far", "scalar"]
_RACE_TIME = re.compile(r"^Race/(?P<kind>explo|eval)_race_time_(?P<status>trained|blind)_(?P<map>.+)$")
_FINISHED = re.compile(r"^Race/(?P<kind>explo|eval)_race_time_finished_(?P<status>trained|blind)_(?P<map>.+)$")
_ROBUST = re.compile(r"^Race/eval_race_time_robust_(?P<status>trained|blind)_(?P<map>.+)$")
_AVG_Q = re.compile(r"^RL/avg_Q_(?P<status>trained|blind)_(?P<map>.+)$")
_SCALAR_TAGS = (tb.TRAINING_LOSS, tb.LEARNER_PERCENTAGE_TRAINING)
_FAMILY_ORDER: dict[str, int] = {"best_so_far": 0, "race": 1, "finished": 2, "robust": 3, "scalar": 4}
TIME_FAMILIES = ("race", "robust", "finished", "best_so_far")  # values are race times (s); best / achieved applies
PERCENT_TAGS = (tb.LEARNER_PERCENTAGE_TRAINING,)  # logged as a fraction, shown in %
SECONDS = "s"


@dataclass(frozen=True)
class Metric:
    tag: str
    family: Family
    map_name: str | None = None
    finished_tag: str | None = None

    @property
    def unit(self) -> str:
        """Unit of the metric's values in rows, tables and plots ('1' = dimensionless)."""
        if self.family in TIME_FAMILIES:
            return SECONDS
        return "%" if self.tag in PERCENT_TAGS else "1"

    @property
    def scale(self) -> float:
        """Logged value x scale = value in ``unit``."""
        if self.family == "best_so_far":
            return 1e-3  # ms -> s
        return 100.0 if self.tag in PERCENT_TAGS else 1.0


@dataclass(frozen=True)
class Row:
    """One table cell group; fields that do not apply (or a run that has not reached ``at``) are None.

    Values are in ``unit``; ``at`` and ``first_finish`` in the axis' unit (``at_unit``). ``in_window``: ``at`` lies
    inside the common window. ``paused_since``: the run was paused at ``at`` (wall axis), since this position.
    ``mean_from``: scalar tags average over (mean_from, at].
    """

    axis: AxisName
    at: float
    run: str
    metric: str
    unit: str = ""
    at_unit: str = ""
    in_window: bool = True
    paused_since: float | None = None
    mean_from: float | None = None
    best: float | None = None
    mean: float | None = None
    std: float | None = None
    finish_rate: float | None = None
    count: int | None = None
    first_finish: float | None = None
    last: float | None = None
    best_vs_achieved: float | None = None  # best / the run's achieved (simulator) time on the map (dimensionless)

    def to_json(self) -> dict:
        return asdict(self)


def classify_tag(tag: str) -> Metric | None:
    """The metric family of a tag, or None for a tag the tables do not show."""
    if match := _RACE_TIME.match(tag):
        finished = tb.race_finished_tag(match["kind"], match["status"], match["map"])  # type: ignore[arg-type]
        return Metric(tag, "race", match["map"], finished)
    if match := _ROBUST.match(tag):
        return Metric(tag, "robust", match["map"])
    if match := _FINISHED.match(tag):
        return Metric(tag, "finished", match["map"])
    if tag.startswith(tb.ALLTIME_MIN_MS_PREFIX):
        return Metric(tag, "best_so_far", tag[len(tb.ALLTIME_MIN_MS_PREFIX) :])
    if match := _AVG_Q.match(tag):
        return Metric(tag, "scalar", match["map"])
    if tag in _SCALAR_TAGS:
        return Metric(tag, "scalar")
    return None


def select_metrics(runs: Sequence[RunData], map_name: str | None = None) -> list[Metric]:
    """Every table metric logged by any run (optionally only ``map_name``'s map tags), in table order."""
    tags = sorted({tag for run in runs for tag in run.series})
    # A finished-races tag repeats what its race tag (with the finished flags) already shows: kept only without one.
    tags = [t for t in tags if not (_FINISHED.match(t) and t.replace("_race_time_finished_", "_race_time_") in tags)]
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
    return replace(
        base,
        best=_float(done.min()) if len(done) else None,
        mean=_float(done.mean()) if len(done) else None,
        std=_float(done.std()) if len(done) else None,  # population std (ddof=0), as the anchor script
        finish_rate=len(done) / len(values) if len(values) else None,
        count=len(values),
        first_finish=_float(positions[finished].min()) if len(done) else None,
        last=_float(values[-1]) if len(values) else None,
    )  # fmt: skip


def best_so_far_row(base: Row, values_ms: np.ndarray, cutoff_ms: float) -> Row:
    """Best finished race so far, in seconds (logged in ms)."""
    finished = values_ms[values_ms < cutoff_ms]  # a DNF cutoff is never a best (anchor bug)
    return replace(
        base,
        best=_float(finished.min() / 1000.0) if len(finished) else None,
        count=len(values_ms),
        last=_float(values_ms[-1] / 1000.0) if len(values_ms) else None,
    )  # fmt: skip


def scalar_row(base: Row, values: np.ndarray, positions: np.ndarray, since: float, scale: float) -> Row:
    """Mean of the values logged in (since, at] (one sample of a noisy tag is not its level), and the last value."""
    recent = values[positions > since + _tolerance(since)] * scale
    return replace(base, count=len(values), mean_from=since,
                   mean=_float(recent.mean()) if len(recent) else None,
                   last=_float(values[-1] * scale) if len(values) else None)  # fmt: skip


@dataclass(frozen=True)
class _Prepared:
    """A metric's events in one run, with their position on the time axis and on the frames axis."""

    metric: Metric
    value: np.ndarray
    time_position: np.ndarray
    frames_position: np.ndarray
    finished: np.ndarray | None
    cutoff_s: float  # the run's DNF race time
    achieved_s: float | None = None  # the run's achieved (simulator) time on the metric's map


def _prepare(run: RunData, metric: Metric, time_axis: TimeAxis) -> _Prepared | None:
    series = run.series.get(metric.tag)
    if series is None or len(series) == 0:
        return None
    finished = race_finished(run, metric) if metric.family == "race" else None
    if metric.family in ("robust", "finished"):
        finished = series.value < run.race_cutoff_s
    achieved_ms = run.achieved_ms.get(metric.map_name or "")
    return _Prepared(metric, series.value, time_axis_values(run, time_axis, series.wall_time),
                     series.step.astype(np.float64), finished, run.race_cutoff_s,
                     achieved_ms / 1000.0 if achieved_ms else None)  # fmt: skip


def _row_at(base: Row, prepared: _Prepared | None, reached: bool, since: float) -> Row:
    row = _row_values_at(base, prepared, reached, since)
    if prepared is None or prepared.achieved_s is None or row.best is None or prepared.metric.family == "scalar":
        return row
    return replace(row, best_vs_achieved=row.best / prepared.achieved_s)


def _row_values_at(base: Row, prepared: _Prepared | None, reached: bool, since: float) -> Row:
    if prepared is None or not reached:
        return base
    positions = prepared.frames_position if base.axis == "frames" else prepared.time_position
    inside = positions <= base.at + _tolerance(base.at)
    # Events are in wall-time order; on the frames axis "last" means the largest step.
    order = np.argsort(positions[inside], kind="stable") if base.axis == "frames" else slice(None)
    values = prepared.value[inside][order]
    family = prepared.metric.family
    if family in ("race", "robust", "finished"):
        row = race_row(base, values, prepared.finished[inside][order], positions[inside][order])
        return replace(row, finish_rate=None) if family == "finished" else row  # DNFs are not in the tag
    if family == "best_so_far":
        return best_so_far_row(base, values, 1000.0 * prepared.cutoff_s)
    return scalar_row(base, values, positions[inside][order], since, prepared.metric.scale)


def compute_rows(runs: Sequence[RunData], metrics: Sequence[Metric], time_axis: TimeAxis,
                 time_points: Sequence[float], step_points: Sequence[int],
                 windows: dict[str, float] | None = None) -> list[Row]:  # fmt: skip
    """Every (checkpoint, run, metric) row: time checkpoints first, then frames checkpoints. ``windows``: the common
    window per axis (checkpoints past it are marked ``in_window=False``)."""
    windows = windows or {}
    rows = []
    for run in runs:
        prepared = [_prepare(run, metric, time_axis) for metric in metrics]
        for axis, points in ((time_axis, sorted(time_points)), ("frames", sorted(step_points))):
            length = run_length(run, axis)
            window = windows.get(axis, math.inf)
            for i, at in enumerate(points):
                reached = length >= at - _tolerance(at)
                since = float(points[i - 1]) if i else 0.0
                pause = paused_since(run, axis, float(at)) if reached else None
                for metric, prep in zip(metrics, prepared, strict=True):
                    base = Row(axis, float(at), run.name, metric.tag, unit=metric.unit, at_unit=AXIS_UNITS[axis],
                               in_window=at <= window + _tolerance(window), paused_since=pause)  # fmt: skip
                    rows.append(_row_at(base, prep, reached, since))
    order = {run.name: i for i, run in enumerate(runs)}
    metric_order = {m.tag: i for i, m in enumerate(metrics)}
    return sorted(rows, key=lambda r: (r.axis == "frames", r.at, metric_order[r.metric], order[r.run]))


# ---------------------------------------------------------------------------------------------- key findings
@dataclass(frozen=True)
class Standing:
    run: str
    best_time_s: float | None
    spread_s: float | None = None  # largest std of this run's finished races on the map up to the checkpoint


def _cells(rows: Sequence[Row], axis: str, at: float) -> list[Row]:
    return [r for r in rows if r.axis == axis and math.isclose(r.at, at, rel_tol=1e-9, abs_tol=1e-12)]


def best_time_by_run(rows: Sequence[Row], metrics: Sequence[Metric], map_name: str, axis: str, at: float,
                     run_names: Sequence[str]) -> list[Standing]:  # fmt: skip
    """Best finished race time (s) on ``map_name`` up to ``at``: over its race tags and ``alltime_min_ms``; and the
    race-to-race spread (std of finished races) that a gap between runs has to exceed to mean anything."""
    family = {m.tag: m for m in metrics}
    best: dict[str, float | None] = dict.fromkeys(run_names)
    spread: dict[str, float | None] = dict.fromkeys(run_names)
    for row in _cells(rows, axis, at):
        metric = family.get(row.metric)
        if metric is None or metric.map_name != map_name or row.best is None or row.run not in best:
            continue
        if metric.family not in TIME_FAMILIES:
            continue
        current = best[row.run]
        best[row.run] = row.best if current is None else min(current, row.best)
        if metric.family == "race" and row.std is not None and (row.finish_rate or 0) * (row.count or 0) >= 2:
            spread[row.run] = max(spread[row.run] or 0.0, row.std)
    ranked = sorted(best.items(), key=lambda item: (item[1] is None, item[1] if item[1] is not None else 0.0))
    return [Standing(run, value, spread[run]) for run, value in ranked]


def format_position(axis: str, at: float) -> str:
    """A position on an axis in its natural unit: frames, minutes, or training time (minutes below 2 h)."""
    if axis == "frames":
        return format_frames(at)
    if axis == "training_hours":
        return f"{60 * at:.3g} min" if at < 2.0 else f"{at:.3g} h"
    return f"{at:.4g} {AXIS_UNITS[axis]}"


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
    """Who is ahead; the leader is bolded only when the gap to the next run exceeds the race-to-race spread of both
    (a smaller gap is what one more race could undo)."""
    finished = [s for s in standings if s.best_time_s is not None]
    if not finished:
        return f"{where}: no run has finished a race on {map_name} yet."
    leader = finished[0]
    unfinished = [s.run for s in standings if s.best_time_s is None]
    if len(finished) == 1:
        text = f"{where}: {leader.run} is the only run with a finish on {map_name} ({leader.best_time_s:.3f} s)"
        return text + (f"; no finish yet: {', '.join(unfinished)}." if unfinished else ".")
    runner_up = finished[1]
    gap = runner_up.best_time_s - leader.best_time_s  # type: ignore[operator]
    spreads = [s.spread_s for s in (leader, runner_up)]
    noise = max(spreads) if all(x is not None for x in spreads) else None  # type: ignore[type-var]
    others = ", ".join(
        f"{s.run} {s.best_time_s:.3f} s (+{s.best_time_s - leader.best_time_s:.3f} s)"  # type: ignore[operator]
        for s in finished[1:]
    )
    if noise is not None and gap > noise:
        text = (f"{where}: **{leader.run}** is best on {map_name} with {leader.best_time_s:.3f} s; {others}; the gap "
                f"exceeds the race-to-race spread (std up to {noise:.3f} s)")  # fmt: skip
    else:
        why = (f"within the race-to-race spread (std up to {noise:.3f} s)" if noise is not None
               else "too few finishes to measure the race-to-race spread")  # fmt: skip
        text = (f"{where}: {leader.run} is ahead on {map_name} with {leader.best_time_s:.3f} s; {others}; {why}: "
                "no clear winner")  # fmt: skip
    if unfinished:
        text += "; no finish yet: " + ", ".join(unfinished)
    return text + "."


def achieved_sentence(standings: Sequence[Standing], runs: Sequence[RunData], map_name: str, where: str) -> list[str]:
    """Each run's best / achieved (simulator) on the map, for the runs that logged an achieved time; a ratio below 1
    is reported as a finding (an agent faster than the tracking controller on the optimal line), never an error."""
    achieved_ms = {run.name: run.achieved_ms.get(map_name) for run in runs}
    parts, faster = [], []
    for standing in standings:
        reference_ms = achieved_ms.get(standing.run)
        if reference_ms is None or standing.best_time_s is None:
            continue
        ratio = standing.best_time_s / (reference_ms / 1000.0)
        parts.append(f"{standing.run} {ratio:.3f} (achieved {reference_ms / 1000:.3f} s)")
        if ratio < 1.0:
            faster.append(standing.run)
    if not parts:
        return []
    text = f"{where}: best / achieved (simulator) on {map_name}: {', '.join(parts)}"
    if faster:
        text += (f"; {', '.join(faster)} drove faster than the optimal line driven in the simulator by the tracking "
                 "controller (a finding: that time is a driver's, not a limit)")  # fmt: skip
    return [text + "."]


def key_findings(rows: Sequence[Row], metrics: Sequence[Metric], time_axis: TimeAxis, window: float,
                 step_points: Sequence[int], runs: Sequence[RunData],
                 time_points: Sequence[float] = ()) -> list[str]:  # fmt: skip
    """Who is best at the end of the common window and at each step checkpoint; every race tag's mean and finish
    rate, robust eval, loss / Q trends and learner share at the end of the window."""
    names = [run.name for run in runs]
    maps = sorted({m.map_name for m in metrics if m.map_name is not None and m.family != "scalar"})
    findings = []
    if len(runs) > 1:
        findings.append("One run each (one seed per configuration): a difference between runs is measured against "
                        "the race-to-race spread within a run, not against seed-to-seed variation.")  # fmt: skip
    # The window's end, or (explicit --times) the last checkpoint inside the window.
    inside = [t for t in time_points if t <= window * (1 + 1e-9)] or [window]
    end = max(inside)
    if math.isclose(end, window):
        where = f"End of the common window ({_format_axis(time_axis, window)})"
    else:
        where = f"At {_format_axis(time_axis, end)} (last checkpoint in the {_format_axis(time_axis, window)} window)"
    for map_name in maps:
        standings = best_time_by_run(rows, metrics, map_name, time_axis, end, names)
        findings.append(ranking_sentence(standings, map_name, where))
        findings.extend(achieved_sentence(standings, runs, map_name, where))
        for at in step_points:
            reached = {r.run for r in _cells(rows, "frames", at) if r.count is not None}
            if not reached:
                continue
            standings = [s for s in best_time_by_run(rows, metrics, map_name, "frames", at, names) if s.run in reached]
            sentence = ranking_sentence(standings, map_name, f"At {format_frames(at)}")
            missing = [n for n in names if n not in reached]
            if missing:
                sentence = sentence.removesuffix(".") + f" (not reached by {', '.join(missing)})."
            findings.append(sentence)
        findings.extend(_race_findings(rows, metrics, map_name, time_axis, end))
        findings.extend(_robust_findings(rows, metrics, map_name, time_axis, end))
    for metric in metrics:
        if metric.family == "scalar":
            findings.extend(_scalar_trend(rows, metric, time_axis, min(inside), end))
    return findings


def _race_findings(rows: Sequence[Row], metrics: Sequence[Metric], map_name: str, axis: str, at: float) -> list[str]:
    """Mean of finished races and finish rate of every race tag (eval first), up to ``at``."""
    findings = []
    race_metrics = [m for m in metrics if m.family == "race" and m.map_name == map_name]
    for metric in sorted(race_metrics, key=lambda m: not m.tag.startswith("Race/eval_")):
        cells = [r for r in _cells(rows, axis, at) if r.metric == metric.tag and r.count]
        if not cells:
            continue
        cells.sort(key=lambda r: (r.mean is None, r.mean or 0.0))
        parts = [
            f"{r.run} {r.mean:.3f} ± {r.std:.3f} s, finish rate {format_percent(r.finish_rate)} "
            f"({round(r.finish_rate * r.count)} of {r.count})"
            if r.mean is not None and r.std is not None and r.finish_rate is not None
            else f"{r.run} no finish in {r.count} races (finish rate 0%)"
            for r in cells
        ]
        kind = "Eval" if metric.tag.startswith("Race/eval_") else "Exploration"
        findings.append(f"{kind} races `{metric.tag}` up to {_format_axis(axis, at)}, mean ± std of finishes: "
                        + "; ".join(parts) + ".")  # fmt: skip
    return findings


def _robust_findings(rows: Sequence[Row], metrics: Sequence[Metric], map_name: str, axis: str,
                     at: float) -> list[str]:  # fmt: skip
    findings = []
    for metric in metrics:
        if metric.family != "robust" or metric.map_name != map_name:
            continue
        cells = sorted((r for r in _cells(rows, axis, at) if r.metric == metric.tag and r.count is not None),
                       key=lambda r: (r.best is None, r.best or 0.0))  # fmt: skip
        if not cells:
            continue
        parts = [f"{r.run} best {r.best:.3f} s, mean {r.mean:.3f} s over {r.count} robust eval(s)"
                 if r.best is not None else f"{r.run} none logged" for r in cells]  # fmt: skip
        findings.append(f"Robust eval `{metric.tag}` (evals within 2% of the rolling mean) up to "
                        f"{_format_axis(axis, at)}: " + "; ".join(parts) + ".")  # fmt: skip
    return findings


def _format_value(value: float, unit: str) -> str:
    return f"{value:.1f}%" if unit == "%" else f"{value:.4g}"


def _scalar_trend(rows: Sequence[Row], metric: Metric, axis: str, first: float, last: float) -> list[str]:
    """Interval mean at the first checkpoint and at the end of the window, per run: the trend of a noisy tag. A run
    with nothing logged in the last interval (paused, or not logging yet) shows its last interval with data."""
    cells = sorted((r for r in rows if r.axis == axis and r.metric == metric.tag and r.mean is not None
                    and r.at <= last + 1e-9 * max(1.0, abs(last))), key=lambda r: r.at)  # fmt: skip
    by_run: dict[str, list[Row]] = {}
    for row in cells:
        by_run.setdefault(row.run, []).append(row)
    if not by_run:
        return []
    parts = []
    for run, run_cells in by_run.items():
        start, end = run_cells[0], run_cells[-1]
        text = f"{run} {_format_value(end.mean, end.unit)}"  # type: ignore[arg-type]
        if end is not start:
            text = f"{run} {_format_value(start.mean, start.unit)} → {_format_value(end.mean, end.unit)}"  # type: ignore[arg-type]
        if not math.isclose(end.at, last):
            text += f" (last data in the interval ending at {_format_axis(axis, end.at)})"
        parts.append(text)
    span = (
        f"from the interval ending at {_format_axis(axis, first)} to the one ending at {_format_axis(axis, last)}"
        if not math.isclose(first, last)
        else f"up to {_format_axis(axis, last)}"
    )
    return [f"`{metric.tag}` (mean over each checkpoint interval) {span}: " + ", ".join(parts) + "."]


def format_percent(share: float) -> str:
    """A share (0..1) in percent; one decimal below 10% so that 2 finishes in 1,062 races do not print as 0%."""
    percent = 100.0 * share
    return f"{percent:.0f}%" if percent >= 10.0 or percent == 0.0 else f"{percent:.1f}%"

"""Accumulated statistics of a run (the JSON save-state) and the per-race scalars derived from them.

Two anchor mistakes are avoided on purpose (docs/metrics.md, "Linesight / rulka" column):
- ``alltime_min_ms`` only ever takes the time of a *finished* race (a DNF logged as 300,000 ms is never a best);
- the rolling mean of eval times behind ``Race/eval_race_time_robust_*`` is seeded from the first finished eval
  race, not from 300,000 ms, so early slow finishes are not called robust.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from trackrl.train import tb
from trackrl.train.checkpoint import CheckpointError

# Linesight (learner_process.py, per finished eval race): rolling_mean = 0.9 * rolling_mean + 0.1 * race_time, then
# robust iff race_time < 1.02 * rolling_mean, the mean *including* this race. One deliberate difference: Linesight
# starts the mean at the 300,000 ms cutoff (every early finish is "robust": docs/metrics.md); here
# the first finished eval race seeds it.
ROBUST_FACTOR = 1.02
ROLLING_MEAN_WEIGHT = 0.1


@dataclass
class RaceOutcome:
    """What the learner needs to log one race (the arrays stay with the rollout)."""

    map_key: str  # trackrl.train.map_cycle: the map name, or <map>_w<width>m for a map raced at several widths
    is_exploration: bool
    fill_buffer: bool
    finished: bool
    race_time_ms: int
    n_actions: int
    mean_q: float


@dataclass
class AccumulatedStats:
    cumul_number_frames_played: int = 0
    cumul_number_batches_done: int = 0
    cumul_training_hours: float = 0.0
    cumul_transitions_added: int = 0
    cumul_races: dict[str, int] = field(default_factory=dict)  # "{kind}_{map}" -> count
    cumul_finished_races: dict[str, int] = field(default_factory=dict)
    alltime_min_ms: dict[str, int] = field(default_factory=dict)
    rolling_mean_ms: dict[str, float] = field(default_factory=dict)
    tensorboard_folders: list[str] = field(default_factory=list)
    map_cycle_positions: dict[str, int] = field(default_factory=dict)  # collector id -> next cycle slot
    collector_incarnations: dict[str, int] = field(default_factory=dict)  # collector id -> starts (seeds)
    seed: int = 0
    run_name: str = ""
    last_checkpoint_frames: int = 0
    checkpoint_generation: int = 0  # counted up by every checkpoint; the learner state stores the same number
    init_from: dict[str, Any] = field(default_factory=dict)  # `--init-from`: {run, checkpoint, frames} of the weights

    def to_json_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json_dict(cls, data: dict[str, Any], source: str = "accumulated_stats.json") -> AccumulatedStats:
        """Validate types so that a hand-edited or truncated file fails with its name, not deep in training."""
        stats = cls()
        for key, default in asdict(stats).items():
            if key not in data:
                if key in ("cumul_number_frames_played", "cumul_number_batches_done", "tensorboard_folders"):
                    raise CheckpointError(f"{source}: missing key {key!r}")
                continue
            value = data[key]
            expected = type(default)
            if isinstance(default, float) and isinstance(value, int):
                value = float(value)
            if not isinstance(value, expected) or isinstance(value, bool):
                raise CheckpointError(f"{source}: key {key!r} has type {type(value).__name__}, expected {expected}")
            _check_counts(value, key, source)
            setattr(stats, key, value)
        return stats


def _check_counts(value: Any, key: str, source: str) -> None:
    """Counters, times and positions are finite and >= 0 (Python's JSON reader accepts NaN and -Infinity)."""
    if isinstance(value, dict):
        entries = [(f"{key}[{name!r}]", number) for name, number in value.items()]
    elif isinstance(value, int | float):
        entries = [(key, value)]
    else:
        return
    for where, number in entries:
        if isinstance(number, bool) or not isinstance(number, int | float):
            raise CheckpointError(f"{source}: {where} has type {type(number).__name__}, expected a number")
        if not (math.isfinite(number) and number >= 0):
            raise CheckpointError(f"{source}: {where} is {number}; it must be a finite number >= 0")


def update_rolling_mean(previous_ms: float | None, race_time_ms: float) -> float:
    """EMA of finished eval times; the first finished eval seeds it (never 300,000)."""
    if previous_ms is None:
        return float(race_time_ms)
    return (1.0 - ROLLING_MEAN_WEIGHT) * previous_ms + ROLLING_MEAN_WEIGHT * float(race_time_ms)


def record_race(stats: AccumulatedStats, race: RaceOutcome, cutoff_ms: int) -> tuple[dict[str, float], bool]:
    """Update ``stats`` with one race; return (TensorBoard scalars {tag: value}, is_new_best).

    Race time in seconds, a DNF logged as the cutoff. alltime_min and rolling mean: finished races only.
    """
    kind: tb.RaceKind = "explo" if race.is_exploration else "eval"
    status = tb.map_status(race.fill_buffer)
    name = race.map_key
    logged_time_ms = race.race_time_ms if race.finished else cutoff_ms
    counter_key = f"{kind}_{name}"
    stats.cumul_races[counter_key] = stats.cumul_races.get(counter_key, 0) + 1
    scalars: dict[str, float] = {
        tb.race_time_tag(kind, status, name): logged_time_ms / 1000.0,
        tb.race_finished_tag(kind, status, name): float(race.finished),
    }
    if kind == "eval" and math.isfinite(race.mean_q):  # Linesight logs avg_Q for eval races only
        scalars[tb.avg_q_tag(status, name)] = race.mean_q
    is_new_best = False
    if race.finished:
        scalars[tb.race_time_finished_tag(kind, status, name)] = race.race_time_ms / 1000.0
        stats.cumul_finished_races[counter_key] = stats.cumul_finished_races.get(counter_key, 0) + 1
        best = stats.alltime_min_ms.get(name)
        if best is None or race.race_time_ms < best:
            stats.alltime_min_ms[name] = int(race.race_time_ms)
            is_new_best = True
        if kind == "eval":
            rolling_mean = update_rolling_mean(stats.rolling_mean_ms.get(name), race.race_time_ms)
            stats.rolling_mean_ms[name] = rolling_mean
            if race.race_time_ms < ROBUST_FACTOR * rolling_mean:  # Linesight: the mean after this race's update
                scalars[tb.eval_race_time_robust_tag(status, name)] = race.race_time_ms / 1000.0
    if name in stats.alltime_min_ms:
        scalars[tb.alltime_min_ms_tag(name)] = float(stats.alltime_min_ms[name])
    return scalars, is_new_best

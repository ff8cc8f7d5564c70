"""Accumulated stats and per-race scalars against hand-computed values."""

from __future__ import annotations

import pytest

from trackrl.config.schema import MapCycleConfig, MapCycleEntry
from trackrl.train.checkpoint import CheckpointError
from trackrl.train.map_cycle import MapCycle
from trackrl.train.stats import AccumulatedStats, RaceOutcome, record_race

CUTOFF_MS = 300_000


def race(finished: bool, time_ms: int, explo: bool = False, fill: bool = True, q: float = 1.5) -> RaceOutcome:
    return RaceOutcome("a01", explo, fill, finished, time_ms, 100, q)


def test_dnf_is_logged_as_cutoff_and_never_a_best() -> None:
    stats = AccumulatedStats()
    scalars, new_best = record_race(stats, race(False, 12_345, explo=True), CUTOFF_MS)
    # The whole dict, with literal Linesight tag names (REFERENCE.md), not names built with trackrl.train.tb.
    assert scalars == {
        "Race/explo_race_time_trained_a01": 300.0,
        "Race/explo_race_finished_trained_a01": 0.0,
        "RL/avg_Q_trained_a01": 1.5,
    }
    assert not new_best and stats.alltime_min_ms == {}
    scalars, new_best = record_race(stats, race(True, 30_000, explo=True), CUTOFF_MS)
    assert new_best and stats.alltime_min_ms == {"a01": 30_000}
    assert scalars == {
        "Race/explo_race_time_trained_a01": 30.0,
        "Race/explo_race_finished_trained_a01": 1.0,
        "RL/avg_Q_trained_a01": 1.5,
        "alltime_min_ms_a01": 30_000.0,
    }
    _, new_best = record_race(stats, race(True, 31_000, explo=True), CUTOFF_MS)
    assert not new_best and stats.alltime_min_ms == {"a01": 30_000}


def test_robust_eval_uses_rolling_mean_seeded_from_first_finish() -> None:
    stats = AccumulatedStats()
    robust = "Race/eval_race_time_robust_trained_a01"
    # A DNF eval does not seed the mean.
    scalars, _ = record_race(stats, race(False, 0), CUTOFF_MS)
    assert robust not in scalars and stats.rolling_mean_ms == {}
    # First finished eval: seeds the mean at 100 s and counts as robust (100 < 1.02 * 100).
    scalars, _ = record_race(stats, race(True, 100_000), CUTOFF_MS)
    assert scalars[robust] == 100.0 and stats.rolling_mean_ms["a01"] == 100_000.0
    # 103 s >= 1.02 * 100 s: not robust; mean becomes 0.9 * 100 + 0.1 * 103 = 100.3 s.
    scalars, _ = record_race(stats, race(True, 103_000), CUTOFF_MS)
    assert robust not in scalars and stats.rolling_mean_ms["a01"] == pytest.approx(100_300.0)
    # 102 s < 1.02 * 100.3 s = 102.306 s: robust.
    scalars, _ = record_race(stats, race(True, 102_000), CUTOFF_MS)
    assert scalars[robust] == 102.0
    # Exploration finishes never touch the eval rolling mean.
    before = dict(stats.rolling_mean_ms)
    record_race(stats, race(True, 50_000, explo=True), CUTOFF_MS)
    assert stats.rolling_mean_ms == before


def test_blind_map_tags_and_counters() -> None:
    stats = AccumulatedStats()
    scalars, _ = record_race(stats, race(True, 20_000, fill=False, q=2.0), CUTOFF_MS)
    assert scalars == {
        "Race/eval_race_time_blind_a01": 20.0,
        "Race/eval_race_finished_blind_a01": 1.0,
        "Race/eval_race_time_robust_blind_a01": 20.0,  # the first finished eval seeds the rolling mean: robust
        "RL/avg_Q_blind_a01": 2.0,
        "alltime_min_ms_a01": 20_000.0,
    }
    assert stats.cumul_races == {"eval_a01": 1} and stats.cumul_finished_races == {"eval_a01": 1}


def test_json_round_trip_and_validation() -> None:
    stats = AccumulatedStats(cumul_number_frames_played=10, alltime_min_ms={"a01": 5}, tensorboard_folders=["r"])
    again = AccumulatedStats.from_json_dict(stats.to_json_dict())
    assert again == stats
    data = stats.to_json_dict()
    data["cumul_number_frames_played"] = "ten"
    with pytest.raises(CheckpointError, match="cumul_number_frames_played"):
        AccumulatedStats.from_json_dict(data)
    data["cumul_number_frames_played"] = 10
    del data["tensorboard_folders"]
    with pytest.raises(CheckpointError, match="tensorboard_folders"):
        AccumulatedStats.from_json_dict(data)


def test_map_cycle_expands_repeats_and_wraps() -> None:
    cycle_config = MapCycleConfig(
        entries=[
            MapCycleEntry(map="a01", is_exploration=True, repeat=2),
            MapCycleEntry(map="easy", is_exploration=False, fill_buffer=False),
        ]
    )
    cycle = MapCycle(cycle_config, position=1)
    names = [(s.map_name, s.is_exploration, s.fill_buffer) for s in (cycle.next_slot() for _ in range(4))]
    assert names == [("a01", True, True), ("easy", False, False), ("a01", True, True), ("a01", True, True)]
    assert cycle.position == 2
    assert cycle.map_keys() == [("a01", None), ("easy", None)]

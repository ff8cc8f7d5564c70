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
    }  # no RL/avg_Q_*: Linesight logs it for eval races only
    assert not new_best and stats.alltime_min_ms == {}
    scalars, new_best = record_race(stats, race(True, 30_000, explo=True), CUTOFF_MS)
    assert new_best and stats.alltime_min_ms == {"a01": 30_000}
    assert scalars == {
        "Race/explo_race_time_trained_a01": 30.0,
        "Race/explo_race_time_finished_trained_a01": 30.0,
        "Race/explo_race_finished_trained_a01": 1.0,
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
    # The mean becomes 0.9 * 100 + 0.1 * 103 = 100.3 s; 103 s >= 1.02 * 100.3 s = 102.306 s: not robust.
    scalars, _ = record_race(stats, race(True, 103_000), CUTOFF_MS)
    assert robust not in scalars and stats.rolling_mean_ms["a01"] == pytest.approx(100_300.0)
    # Mean after this race's update: 0.9 * 100.3 + 0.1 * 102 = 100.47 s; 102 s < 1.02 * 100.47 s = 102.479 s: robust.
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
        "Race/eval_race_time_finished_blind_a01": 20.0,
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
    assert cycle.tracks() == [("a01", None), ("easy", None)]


def test_robust_threshold_is_linesights_the_mean_after_this_races_update() -> None:
    stats = AccumulatedStats()
    robust = "Race/eval_race_time_robust_trained_a01"
    record_race(stats, race(True, 100_000), CUTOFF_MS)  # seeds the mean at 100 s
    # Linesight: mean' = 0.9 * 100 + 0.1 * 102.1 = 100.21 s; 102.1 < 1.02 * 100.21 = 102.214 s: robust (a threshold
    # on the mean before the update, 1.02 * 100 = 102 s, would call it not robust).
    scalars, _ = record_race(stats, race(True, 102_100), CUTOFF_MS)
    assert scalars[robust] == pytest.approx(102.1) and stats.rolling_mean_ms["a01"] == pytest.approx(100_210.0)
    # mean'' = 0.9 * 100.21 + 0.1 * 103 = 100.489 s; 1.02 * 100.489 = 102.499 s < 103 s: not robust.
    scalars, _ = record_race(stats, race(True, 103_000), CUTOFF_MS)
    assert robust not in scalars and stats.rolling_mean_ms["a01"] == pytest.approx(100_489.0)


def test_finished_race_time_tags_and_avg_q_of_eval_races_only() -> None:
    stats = AccumulatedStats()
    scalars, _ = record_race(stats, race(True, 25_000, explo=True, q=3.0), CUTOFF_MS)
    assert scalars["Race/explo_race_time_finished_trained_a01"] == 25.0
    assert "RL/avg_Q_trained_a01" not in scalars  # Linesight logs avg_Q for eval races only
    scalars, _ = record_race(stats, race(False, 12_000, explo=False, q=2.5), CUTOFF_MS)
    assert scalars["RL/avg_Q_trained_a01"] == 2.5
    assert not any("race_time_finished" in tag for tag in scalars)  # a DNF has no finished time
    from trackrl.train import tb

    assert tb.race_time_finished_tag("eval", "trained", "a01") == "Race/eval_race_time_finished_trained_a01"


@pytest.mark.parametrize(
    ("key", "value", "problem"),
    [
        ("cumul_number_frames_played", -5, "cumul_number_frames_played is -5; it must be a finite number >= 0"),
        ("cumul_training_hours", float("nan"), "cumul_training_hours is nan"),
        ("cumul_training_hours", float("-inf"), "cumul_training_hours is -inf"),
        ("alltime_min_ms", {"a01": float("nan")}, "alltime_min_ms['a01'] is nan"),
        ("cumul_races", {"explo_a01": -1}, "cumul_races['explo_a01'] is -1"),
        ("map_cycle_positions", {"0": "next"}, "map_cycle_positions['0'] has type str, expected a number"),
        ("seed", -3, "seed is -3"),
    ],
)
def test_nan_or_negative_counters_are_refused_on_resume(key: str, value: object, problem: str) -> None:
    import json

    data = json.loads(json.dumps(AccumulatedStats(tensorboard_folders=["r"]).to_json_dict()))
    data[key] = value
    text = json.dumps(data)  # as a hand edit would leave it: Python's json writes and reads NaN / -Infinity
    with pytest.raises(CheckpointError) as error:
        AccumulatedStats.from_json_dict(json.loads(text), "save/r/accumulated_stats.json")
    assert str(error.value).startswith("save/r/accumulated_stats.json: ") and problem in str(error.value)

"""Multi-map cycles: a collector steps two maps (and one map at two road widths) without crashing, and the learner
keeps each map's stats, tags and best runs apart (issue 18, item 1)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from trackrl.analysis.events import event_files_in, read_event_file
from trackrl.config import config_from_dict, config_to_dict, load_config
from trackrl.config.schema import MapCycleConfig, MapCycleEntry, TrackRLConfig
from trackrl.sim.track import load_track
from trackrl.train.collector import Collector, CollectorSpec, Rollout
from trackrl.train.map_cycle import MapCycle, map_keys_of_entries
from trackrl.train.processes import SharedWeights
from trackrl.train.run import Trainer, TrainOptions

SMOKE = Path(__file__).resolve().parent.parent / "configs" / "smoke.yaml"


def tiny_config(entries: list[dict]) -> TrackRLConfig:
    data = config_to_dict(load_config(SMOKE))
    data["map_cycle"] = {"entries": entries}
    data["performance"]["cars_per_collector"] = 3
    # Short races: a car that passes no zone for 0.3 s is cut off, so each map's races end within a few steps.
    data["environment"]["cutoff_rollout_if_no_vcp_passed_within_duration_ms"] = 300
    return config_from_dict(data, "test config")


def collect_races(config: TrackRLConfig, n_races: int, max_steps: int = 400) -> list[Rollout]:
    from trackrl.agent.networks import build_network
    from trackrl.sim.observation import float_input_dim, float_inputs_mean, float_inputs_std

    env = config.environment
    network = build_network(config, float_input_dim(env), float_inputs_mean(env), float_inputs_std(env))
    shared = SharedWeights(network.state_dict())
    spec = CollectorSpec(0, 0, seed=1, config_data=config_to_dict(config), map_cycle_position=0, frames_at_start=0)
    collector = Collector(spec, shared)
    rollouts: list[Rollout] = []
    for _ in range(max_steps):
        rollouts.extend(collector.step())
        if len(rollouts) >= n_races:
            return rollouts
    raise AssertionError(f"only {len(rollouts)} races ended in {max_steps} steps")


def test_map_keys_name_a_map_by_its_width_only_when_the_cycle_runs_it_at_several() -> None:
    cycle = MapCycleConfig(entries=[
        MapCycleEntry(map="easy", road_width_m=12.0), MapCycleEntry(map="easy"),  # easy's own width: 20 m
        MapCycleEntry(map="a01"), MapCycleEntry(map="a01", is_exploration=False),
    ])  # fmt: skip
    assert map_keys_of_entries(cycle) == ["easy_w12m", "easy_w20m", "a01", "a01"]
    assert MapCycle(cycle).map_key_tracks() == {
        "easy_w12m": ("easy", 12.0), "easy_w20m": ("easy", None), "a01": ("a01", None),
    }  # fmt: skip


def test_a_collector_races_two_maps_one_after_the_other() -> None:
    config = tiny_config([
        {"map": "easy", "is_exploration": True, "repeat": 1},
        {"map": "a01", "is_exploration": True, "repeat": 1},
    ])  # fmt: skip
    rollouts = collect_races(config, n_races=8)
    assert {r.slot.map_key for r in rollouts} == {"easy", "a01"}
    for rollout in rollouts:
        assert rollout.floats.shape[0] == rollout.n_actions + 1 == rollout.positions_m.shape[0]
        # The first position is the start line of the map the race ran on, not of the other map.
        start_m = load_track(rollout.slot.map_name, rollout.slot.road_width_m).centerline_m[0]
        assert np.allclose(rollout.positions_m[0], start_m, atol=1e-3)


def tb_tags(folder: Path) -> set[str]:
    tags: set[str] = set()
    for path in event_files_in(folder):
        tags |= set(read_event_file(path).series)
    return tags


def test_one_map_at_two_widths_keeps_stats_tags_and_best_runs_apart(tmp_path: Path) -> None:
    config = tiny_config([
        {"map": "easy", "road_width_m": 10.0, "is_exploration": True},
        {"map": "easy", "road_width_m": 24.0, "is_exploration": True},
        {"map": "a01", "is_exploration": False},
    ])  # fmt: skip
    rollouts = collect_races(config, n_races=9)
    options = TrainOptions(run_name="widths", save_dir=tmp_path / "save", logdir=tmp_path / "tb", live=False)
    trainer = Trainer(config, options)
    assert set(trainer.reference_ms) == {"easy_w10m", "easy_w24m", "a01"}
    assert trainer.reference_ms["easy_w10m"] != trainer.reference_ms["easy_w24m"]  # a wider road is faster
    # Make one race on each width a finish with a distinct time, so that both get a best and a best-run folder.
    finished_ms = {"easy_w10m": 11_110, "easy_w24m": 9_990}
    for rollout in rollouts:
        if rollout.slot.map_key in finished_ms:
            rollout.finished = True
            rollout.race_time_ms = finished_ms.pop(rollout.slot.map_key)
    assert not finished_ms, "both widths raced"
    for rollout in rollouts:
        trainer.handle_rollout(rollout)
    trainer.writer.close()
    stats = trainer.stats
    assert stats.alltime_min_ms == {"easy_w10m": 11_110, "easy_w24m": 9_990}
    keys = {r.slot.map_key for r in rollouts}
    assert {k.split("_", 1)[1] for k in stats.cumul_races} == keys
    best_folders = sorted(p.name for p in (tmp_path / "save" / "widths" / "best_runs").iterdir())
    assert best_folders == ["easy_w10m_11110", "easy_w24m_9990"]
    meta = json.loads((tmp_path / "save" / "widths" / "best_runs" / "easy_w24m_9990" / "meta.json").read_text())
    assert meta["track"] == "easy" and meta["road_width_m"] == 24.0  # replay finds the track and its width
    tags = tb_tags(tmp_path / "tb" / "widths")
    for key in ("easy_w10m", "easy_w24m"):
        assert f"Race/explo_race_time_trained_{key}" in tags and f"alltime_min_ms_{key}" in tags
    assert "Race/eval_race_time_trained_a01" in tags
    assert not any(tag.endswith("_easy") for tag in tags)


def test_a_races_mean_q_is_linesights_avg_q_over_steps_and_actions() -> None:
    config = tiny_config([{"map": "easy", "is_exploration": False}])
    from trackrl.agent.networks import build_network
    from trackrl.sim.observation import float_input_dim, float_inputs_mean, float_inputs_std

    env = config.environment
    network = build_network(config, float_input_dim(env), float_inputs_mean(env), float_inputs_std(env))
    spec = CollectorSpec(0, 0, seed=1, config_data=config_to_dict(config), map_cycle_position=0, frames_at_start=0)
    collector = Collector(spec, SharedWeights(network.state_dict()))
    seen: dict[int, list[np.ndarray]] = {c: [] for c in range(collector.num_cars)}
    act = collector._act

    def recording_act(cars: list[int], greedy: bool, schedules: dict):
        actions, q_values = act(cars, greedy, schedules)
        for row, car in enumerate(cars):
            seen[car].append(np.asarray(q_values[row], dtype=np.float64))
        return actions, q_values

    collector._act = recording_act  # type: ignore[method-assign]
    for _ in range(400):
        ended = collector.step()
        if ended:
            break
    assert ended
    rollout = ended[0]
    car = next(c for c in seen if collector.races[c] is None)
    q_table = np.stack(seen[car])  # (steps, actions) of the race that ended
    assert q_table.shape[0] == rollout.n_actions
    assert rollout.mean_q == pytest.approx(q_table.mean(), rel=1e-5)


@pytest.mark.slow  # ~30 s on a loaded 2-core machine: a collector process start and the reference laps of two maps
def test_a_two_map_cycle_trains_through_collector_processes_and_logs_both_maps(tmp_path: Path) -> None:
    from trackrl.train.run import train

    config = tiny_config([
        {"map": "easy", "is_exploration": True, "repeat": 2},
        {"map": "a01", "is_exploration": True, "repeat": 1},
        {"map": "easy", "is_exploration": False, "repeat": 1},
    ])  # fmt: skip
    data = config_to_dict(config)
    data["memory"]["min_transitions_to_learn"] = 100
    options = TrainOptions(
        run_name="two", save_dir=tmp_path / "save", logdir=tmp_path / "tb", live=False, max_frames=600,
        max_minutes=2.0,
    )  # fmt: skip
    summary = train(config_from_dict(data), options)
    assert summary.stop_reason == "max_frames" and summary.collector_restarts == 0
    assert summary.batches_done > 0
    tags = tb_tags(tmp_path / "tb" / "two")
    assert {"Race/explo_race_time_trained_easy", "Race/explo_race_time_trained_a01"} <= tags
    stats = json.loads((tmp_path / "save" / "two" / "accumulated_stats.json").read_text())
    assert {"explo_easy", "explo_a01"} <= set(stats["cumul_races"])


def test_stored_image_rows_own_their_memory_not_the_whole_steps_array() -> None:
    data = config_to_dict(tiny_config([{"map": "easy"}]))
    data["nn"].update({"use_image": True, "image_height_px": 36, "image_width_px": 36})
    config = config_from_dict(data)
    from trackrl.agent.networks import build_network
    from trackrl.sim.observation import float_input_dim, float_inputs_mean, float_inputs_std

    env = config.environment
    network = build_network(config, float_input_dim(env), float_inputs_mean(env), float_inputs_std(env))
    spec = CollectorSpec(0, 0, seed=1, config_data=config_to_dict(config), map_cycle_position=0, frames_at_start=0)
    collector = Collector(spec, SharedWeights(network.state_dict()))
    for _ in range(3):
        collector.step()
    for race in collector.races:
        assert race is not None and len(race.images) >= 2
        for image in [*race.images, *race.floats]:
            # A view of the step's (cars, ...) array would keep all cars' rows alive as long as this race runs.
            assert image.base is None, "a stored row is a view of a larger array"
        assert race.images[-1].shape == (1, 36, 36)


def test_a_parked_car_is_not_simulated_until_its_next_reset() -> None:
    from trackrl.sim.env import VecRaceEnv

    env = VecRaceEnv(load_track("easy"), 2, render_images=False)
    full_throttle = np.zeros(2, dtype=np.int64)  # action 0: forward
    env.park(np.array([1]))
    start_m = env.step(full_throttle).positions_m[1]
    for _ in range(5):
        result = env.step(full_throttle)
    assert np.array_equal(result.positions_m[1], start_m) and result.rewards[1] == 0.0
    assert not np.array_equal(result.positions_m[0], start_m)  # the other car drives
    env.reset(np.array([1]))
    for _ in range(5):
        result = env.step(full_throttle)
    assert not np.array_equal(result.positions_m[1], start_m)

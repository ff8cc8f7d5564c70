"""`trackrl train`, `--resume` and `trackrl compare` together: compare reads the logs the trainer wrote, and every
counter of the save-state continues exactly across a resume.

The collectors drive a script instead of the network (real collector loop, real env, real learner), so races and
their times are reproducible: cars 0-3 follow the centre line with look-ahead 1-4 zones (they finish, at different
times), cars 4-7 stand still (cut off for no progress: DNF).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from trackrl.cli import main
from trackrl.config import config_from_dict
from trackrl.sim.actions import ACTION_NAMES, N_ACTIONS
from trackrl.sim.drivers import follow_centerline_actions
from trackrl.train import collector as collector_module
from trackrl.train.checkpoint import load_checkpoint
from trackrl.train.collector import Rollout, run_collector
from trackrl.train.hardware import cpu_model
from trackrl.train.run import Trainer, TrainOptions

SMOKE = Path(__file__).resolve().parent.parent / "configs" / "smoke.yaml"
NOTHING = ACTION_NAMES.index("nothing")
# 8 cars: 4,000 frames = 25 s of racing per car (the followers finish the ~324 m track in ~10-12 s today; the smoke
# cutoff is 30 s), so each session has finishes even with a slower car model.
FIRST_SESSION_FRAMES = 4_000
SECOND_SESSION_FRAMES = 8_000  # total after the resume

# Literal Linesight tag names (REFERENCE.md) the trainer must write for the smoke config's map "easy".
EXPLO_TIME = "Race/explo_race_time_trained_easy"
EVAL_TIME = "Race/eval_race_time_trained_easy"
EXPLO_FINISHED = "Race/explo_race_finished_trained_easy"
EVAL_FINISHED = "Race/eval_race_finished_trained_easy"
BEST_MS = "alltime_min_ms_easy"
HOURS = "cumul_training_hours"


def scripted_act(self: Any, car_indices: list[int], greedy: bool, schedules: dict) -> tuple[np.ndarray, np.ndarray]:
    """Replaces Collector._act in the collector process: the script above, Q values 0."""
    actions = np.full(len(car_indices), NOTHING, dtype=np.int64)
    for row, car in enumerate(car_indices):
        if car < 4:
            floats = self.observations[car][1][None]
            actions[row] = follow_centerline_actions(floats, self.config.environment, look_ahead_zones=1 + car)[0]
    return actions, np.zeros((len(car_indices), N_ACTIONS))


def scripted_collector(spec: Any, rollout_queue: Any, shared_weights: Any, stop_event: Any) -> None:
    collector_module.Collector._act = scripted_act  # this (spawned) process only
    run_collector(spec, rollout_queue, shared_weights, stop_event)


class RecordingTrainer(Trainer):
    """Records what this session handled, to check the save-state's counters against."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.frames_handled = 0
        self.races: dict[str, int] = {}
        self.finishes: dict[str, list[int]] = {}

    def handle_rollout(self, rollout: Rollout) -> None:
        super().handle_rollout(rollout)
        key = f"{'explo' if rollout.slot.is_exploration else 'eval'}_{rollout.slot.map_name}"
        self.frames_handled += rollout.n_actions
        self.races[key] = self.races.get(key, 0) + 1
        if rollout.finished:
            self.finishes.setdefault(key, []).append(rollout.race_time_ms)


def scalars(folder: Path, tag: str) -> list[tuple[int, float]]:
    accumulator = EventAccumulator(str(folder), size_guidance={"scalars": 0})
    accumulator.Reload()
    return [(e.step, e.value) for e in accumulator.Scalars(tag)] if tag in accumulator.Tags()["scalars"] else []


def session(tmp_path: Path, resume: bool, max_frames: int) -> RecordingTrainer:
    config = config_from_dict(yaml.safe_load(SMOKE.read_text()))
    options = TrainOptions(
        run_name="e2e", save_dir=tmp_path / "save", logdir=tmp_path / "tb", resume=resume, max_frames=max_frames,
        max_minutes=3.0, live=False, log_every_s=0.5, collector_fn=scripted_collector,
    )
    return RecordingTrainer(config, options)


@pytest.mark.slow
def test_compare_reads_what_train_wrote_and_counters_continue_across_a_resume(tmp_path: Path) -> None:
    first = session(tmp_path, resume=False, max_frames=FIRST_SESSION_FRAMES)
    assert first.run().stop_reason == "max_frames"
    assert first.finishes, f"the scripted followers finished no race in {FIRST_SESSION_FRAMES} frames"
    _, before = load_checkpoint(tmp_path / "save" / "e2e")
    assert before["cumul_number_frames_played"] == first.frames_handled >= FIRST_SESSION_FRAMES
    assert before["cumul_races"] == first.races and before["cumul_number_batches_done"] == first.loop.batches_done
    assert before["alltime_min_ms"] == {"easy": min(min(times) for times in first.finishes.values())}
    assert before["cumul_finished_races"] == {key: len(times) for key, times in first.finishes.items()}

    # Resume: every counter starts exactly where the save-state left it.
    constructed_at = time.monotonic()
    second = session(tmp_path, resume=True, max_frames=SECOND_SESSION_FRAMES)
    stats = second.stats
    assert stats.cumul_number_frames_played == before["cumul_number_frames_played"]
    assert stats.cumul_number_batches_done == before["cumul_number_batches_done"]
    assert stats.cumul_training_hours == before["cumul_training_hours"] > 0
    assert stats.cumul_races == before["cumul_races"] and stats.alltime_min_ms == before["alltime_min_ms"]
    run_started_at = time.monotonic()
    assert second.run().stop_reason == "max_frames"
    run_ended_at = time.monotonic()
    assert second.finishes, "the scripted followers finished no race in the resumed session"

    # ... and continues by exactly what the second session did.
    _, after = load_checkpoint(tmp_path / "save" / "e2e")
    assert after["cumul_number_frames_played"] == before["cumul_number_frames_played"] + second.frames_handled
    assert after["cumul_number_batches_done"] == before["cumul_number_batches_done"] + second.loop.batches_done
    assert second.loop.batches_done > 0
    added_hours = after["cumul_training_hours"] - before["cumul_training_hours"]
    # The second session's time, counted from its start (construction) to its final checkpoint; after that only the
    # log writer closes (2 s allowed). Hours restarting from 0 would add less than that by the first session's time.
    assert (run_ended_at - run_started_at - 2.0) / 3600 < added_hours <= (run_ended_at - constructed_at) / 3600
    for key in ("explo_easy", "eval_easy"):
        assert after["cumul_races"][key] == before["cumul_races"].get(key, 0) + second.races.get(key, 0)
        finished = before["cumul_finished_races"].get(key, 0) + len(second.finishes.get(key, []))
        assert after["cumul_finished_races"].get(key, 0) == finished
    all_finishes = [t for trainer in (first, second) for times in trainer.finishes.values() for t in times]
    assert after["alltime_min_ms"] == {"easy": min(all_finishes)}
    assert after["tensorboard_folders"] == ["e2e"]

    # The log agrees: one folder, race for race, training hours never go back across the resume.
    run_tb = tmp_path / "tb" / "e2e"
    assert len(scalars(run_tb, EXPLO_FINISHED)) == after["cumul_races"]["explo_easy"]
    assert len(scalars(run_tb, EVAL_FINISHED)) == after["cumul_races"]["eval_easy"]
    hours = [value for _, value in scalars(run_tb, HOURS)]
    assert hours == sorted(hours) and hours[-1] > before["cumul_training_hours"]
    assert scalars(run_tb, BEST_MS)[-1][1] == after["alltime_min_ms"]["easy"]

    # `trackrl compare` on those logs: race rows for the trainer's own tags, numbers equal to the save-state's.
    out = tmp_path / "compare.json"
    argv = ["compare", "e2e", "--logdir", str(tmp_path / "tb"), "--save-dir", str(tmp_path / "save"),
            "--json", str(out), "--report", str(tmp_path / "report.md")]  # fmt: skip
    assert main(argv) == 0
    # hardware.json: one record per session, taken at its start, shown in the report's Hardware section
    sessions = json.loads((tmp_path / "save" / "e2e" / "hardware.json").read_text())["sessions"]
    assert [h["frames_at_start"] for h in sessions] == [0, before["cumul_number_frames_played"]]
    performance = yaml.safe_load(SMOKE.read_text())["performance"]
    last = sessions[-1]
    assert last["collectors"] == performance["gpu_collectors_count"]
    assert last["cars_per_collector"] == performance["cars_per_collector"]
    assert (last["learner_device"], last["gpu"], last["cpu_cores"]) == ("cpu", None, os.cpu_count())
    assert last["torch_threads"] == torch.get_num_threads()  # the trainer set it in this process
    hardware = (tmp_path / "report.md").read_text().split("## Hardware", 1)[1]
    assert f"| e2e | 1 | 8 | cpu | cpu | {torch.get_num_threads()} | {cpu_model()} | {os.cpu_count()} |" in hardware
    data = json.loads(out.read_text())
    assert data["axis"] == "training_hours"  # the default axis when the run logs cumul_training_hours
    assert data["runs"]["e2e"]["training_hours"] == pytest.approx(after["cumul_training_hours"], abs=1 / 3600)
    end = max(row["at"] for row in data["rows"] if row["axis"] == data["axis"])
    rows = {row["metric"]: row for row in data["rows"] if row["axis"] == data["axis"] and row["at"] == end}
    assert {EXPLO_TIME, EVAL_TIME, BEST_MS} <= set(rows)
    for tag, key in ((EXPLO_TIME, "explo_easy"), (EVAL_TIME, "eval_easy")):
        races, finished = after["cumul_races"][key], after["cumul_finished_races"].get(key, 0)
        assert rows[tag]["count"] == races
        assert rows[tag]["finish_rate"] == pytest.approx(finished / races)
    best_s = after["alltime_min_ms"]["easy"] / 1000
    assert min(rows[EXPLO_TIME]["best"], rows[EVAL_TIME]["best"] or np.inf) == pytest.approx(best_s)
    # alltime_min_ms is logged in ms and shown by compare in seconds, like every race time (docs/metrics.md)
    best_ms_row = rows[BEST_MS]
    assert best_ms_row["unit"] == "s" and best_ms_row["best"] == pytest.approx(after["alltime_min_ms"]["easy"] / 1000)

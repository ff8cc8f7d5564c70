"""Trainer pieces that need no collector processes: NaN checkpoint guard, config diff, seeds, folders, busy share."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from trackrl.config import config_from_dict, load_config
from trackrl.train.checkpoint import CheckpointError
from trackrl.train.learner_loop import LearnerLoop, TrainingDivergedError
from trackrl.train.run import (
    RunExistsError,
    Trainer,
    TrainOptions,
    check_run_folders,
    collector_seed,
    config_differences,
)

SMOKE = Path(__file__).resolve().parent.parent / "configs" / "smoke.yaml"


def digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir() if p.is_file()}


def test_nan_weights_never_replace_the_last_good_checkpoint(tmp_path: Path) -> None:
    options = TrainOptions(run_name="nan", save_dir=tmp_path / "save", logdir=tmp_path / "tb", live=False)
    trainer = Trainer(load_config(SMOKE), options)
    trainer.checkpoint()
    good = digests(tmp_path / "save" / "nan")
    assert {"weights.torch", "learner_state.torch", "accumulated_stats.json", "config_snapshot.yaml"} <= set(good)
    with torch.no_grad():
        next(trainer.learner.online_network.parameters()).fill_(float("nan"))
    with pytest.raises(TrainingDivergedError, match="last good checkpoint"):
        trainer.checkpoint()
    assert digests(tmp_path / "save" / "nan") == good


def test_run_folder_rules(tmp_path: Path) -> None:
    run_dir, tb_dir = tmp_path / "save" / "r", tmp_path / "tb" / "r"
    check_run_folders(run_dir, tb_dir, resume=False)  # nothing there: fine
    with pytest.raises(CheckpointError, match="nothing to resume"):
        check_run_folders(run_dir, tb_dir, resume=True)
    tb_dir.mkdir(parents=True)
    (tb_dir / "events.out.tfevents.1").write_bytes(b"")
    with pytest.raises(RunExistsError, match="--resume"):
        check_run_folders(run_dir, tb_dir, resume=False)


def test_config_differences() -> None:
    old = config_from_dict({"training": {"batch_size": 256}})
    new = config_from_dict({"training": {"batch_size": 512}, "seed": 3})
    assert config_differences(old, new) == ["seed: 0 -> 3", "training.batch_size: 256 -> 512"]



def test_collector_seeds_are_distinct_and_the_same_in_every_process() -> None:
    # Distinct per run seed, collector and restart (a restarted collector does not replay its races), valid for
    # numpy and torch, and reproducible: a fresh interpreter (another hash seed) computes the same numbers.
    cases = [(seed, c, i) for seed in range(3) for c in range(4) for i in range(4)]
    seeds = [collector_seed(*case) for case in cases]
    assert len(set(seeds)) == len(cases) and all(0 <= s < 2**31 for s in seeds)
    code = f"from trackrl.train.run import collector_seed; print([collector_seed(*c) for c in {cases!r}])"
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={**os.environ, "PYTHONHASHSEED": "12345"})  # fmt: skip
    assert other.stdout.strip() == str(seeds)


class SleepingLearner:
    """Stand-in for the Learner whose gradient step takes a known time (a sleep)."""

    def __init__(self, step_s: float) -> None:
        self.step_s = step_s

    def learn(self, buffer: object, learning_rate: float, gamma: float, mini_race_duration_actions: int) -> object:
        time.sleep(self.step_s)
        return SimpleNamespace(loss=0.5, grad_norm=1.0, mean_q=0.0)


def test_learner_busy_share_matches_the_measured_training_time(tmp_path: Path) -> None:
    # Busy share (Performance/learner_percentage_training) = time in learn() / elapsed time of the window. The test
    # measures both around the calls itself: 20 ms steps between 30 ms idle sleeps, about 0.4.
    options = TrainOptions(run_name="busy", save_dir=tmp_path / "save", logdir=tmp_path / "tb", live=False)
    trainer = Trainer(load_config(SMOKE), options)
    trainer.loop = LearnerLoop(trainer.config, SleepingLearner(0.02), trainer.buffer)
    trainer.loop.take_window()
    in_learn_s = 0.0
    start = time.perf_counter()
    for _ in range(12):
        before = time.perf_counter()
        trainer.loop.learn_one_batch(frames=0)
        in_learn_s += time.perf_counter() - before
        time.sleep(0.03)
    elapsed_s = time.perf_counter() - start
    scalars = trainer.log_training_scalars(elapsed_s, frames_in_window=0)
    trainer.writer.close()
    measured = in_learn_s / elapsed_s
    assert 0.2 < measured < 0.6  # the sleeps took roughly what they asked for (a loaded machine only stretches them)
    assert scalars["Performance/learner_percentage_training"] == pytest.approx(measured, abs=0.01)
    assert scalars["Performance/transitions_learned_per_second"] == pytest.approx(12 * 64 / elapsed_s)
    logged = EventAccumulator(str(tmp_path / "tb" / "busy"), size_guidance={"scalars": 0})
    logged.Reload()
    (event,) = logged.Scalars("Performance/learner_percentage_training")
    assert event.value == pytest.approx(measured, abs=0.01)

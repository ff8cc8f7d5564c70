"""Trainer pieces that need no processes: checkpoint guard against NaN weights, config diff, seeds, folders."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch

from trackrl.config import config_from_dict, load_config
from trackrl.train.checkpoint import CheckpointError
from trackrl.train.learner_loop import TrainingDivergedError
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


def test_config_differences_and_collector_seeds() -> None:
    old = config_from_dict({"training": {"batch_size": 256}})
    new = config_from_dict({"training": {"batch_size": 512}, "seed": 3})
    assert config_differences(old, new) == ["seed: 0 -> 3", "training.batch_size: 256 -> 512"]
    seeds = {collector_seed(0, c, i) for c in range(4) for i in range(4)}
    assert len(seeds) == 16 and collector_seed(0, 1, 2) == collector_seed(0, 1, 2)


def test_each_new_best_is_saved_and_logged_as_a_line_image(tmp_path: Path) -> None:
    import numpy as np
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from trackrl.sim.drivers import braking_driver_actions, scripted_race_actions
    from trackrl.sim.rollout import simulate_actions
    from trackrl.sim.track import load_track
    from trackrl.train import tb
    from trackrl.train.collector import Rollout
    from trackrl.train.map_cycle import RaceSlot

    options = TrainOptions(run_name="best", save_dir=tmp_path / "save", logdir=tmp_path / "tb", live=False)
    trainer = Trainer(load_config(SMOKE), options)
    track = load_track("easy")

    def scripted_rollout(still_actions: int) -> Rollout:
        actions = scripted_race_actions(track, braking_driver_actions, first_actions=[3] * still_actions)
        race = simulate_actions(track, actions)
        assert race.finished
        return Rollout(
            collector_id=0, map_cycle_position=0, slot=RaceSlot("easy", None, is_exploration=False, fill_buffer=False),
            images=None, floats=np.zeros((len(actions) + 1, 1), np.float32), actions=np.asarray(actions),
            rewards=race.rewards, positions_m=race.positions_m.astype(np.float32), finished=True, terminated=True,
            race_time_ms=race.race_time_ms, mean_q=0.0, weights_version=0,
        )  # fmt: skip

    new_best_frames = []
    for still_actions, is_new_best in ((6, True), (8, False), (0, True)):  # a best, a slower race, a faster one
        trainer.handle_rollout(scripted_rollout(still_actions))
        if is_new_best:
            new_best_frames.append(trainer.frames)
    trainer.writer.close()
    accumulator = EventAccumulator(str(tmp_path / "tb" / "best"), size_guidance={"images": 0})
    accumulator.Reload()
    assert [image.step for image in accumulator.Images(tb.best_line_image_tag("easy"))] == new_best_frames
    assert len(list((tmp_path / "save" / "best" / "best_runs").iterdir())) == 2

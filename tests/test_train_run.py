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


def test_a_divergence_message_tells_which_checkpoint_exists(tmp_path: Path) -> None:
    options = TrainOptions(run_name="nan2", save_dir=tmp_path / "save", logdir=tmp_path / "tb", live=False)
    trainer = Trainer(load_config(SMOKE), options)
    with torch.no_grad():
        next(trainer.learner.online_network.parameters()).fill_(float("nan"))
    with pytest.raises(TrainingDivergedError, match="no checkpoint of this run exists"):
        trainer.checkpoint()  # never claims a checkpoint that is not there
    assert not (tmp_path / "save" / "nan2" / "accumulated_stats.json").exists()
    trainer.lock.release()

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


def test_resume_removes_kill_leftovers_and_sets_aside_best_runs_the_save_state_never_saw(tmp_path: Path) -> None:
    import json

    from trackrl.train.best_runs import ORPHANED_BEST_RUNS_DIR

    options = TrainOptions(run_name="left", save_dir=tmp_path / "save", logdir=tmp_path / "tb", live=False)
    trainer = Trainer(load_config(SMOKE), options)
    trainer.stats.cumul_number_frames_played = 9_000
    trainer.checkpoint()
    trainer.lock.release()
    run_dir = tmp_path / "save" / "left"
    best = run_dir / "best_runs"
    for name, frames in (("easy_9610", 8_000), ("easy_9390", 9_500)):  # the second: after the checkpoint
        (best / name).mkdir(parents=True)
        (best / name / "meta.json").write_text(json.dumps({"frames_played": frames, "race_time_ms": 1}))
    (best / "easy_9100").mkdir()  # killed mid-save: no meta.json yet
    (run_dir / ".learner_state.torch.k2j3.tmp").write_bytes(b"half")
    (best / "easy_9610" / ".trajectory.npy.x1.tmp").write_bytes(b"half")
    resumed = Trainer(load_config(SMOKE), TrainOptions(**{**options.__dict__, "resume": True}))
    resumed.lock.release()
    assert sorted(p.name for p in best.iterdir()) == ["easy_9610"]
    assert sorted(p.name for p in (run_dir / ORPHANED_BEST_RUNS_DIR).iterdir()) == ["easy_9100", "easy_9390"]
    assert not list(run_dir.glob(".*.tmp")) and not list((best / "easy_9610").glob(".*.tmp"))
    assert len(resumed.start_messages) == 2


def test_collectors_infer_on_the_learners_gpu_under_auto_and_on_the_cpu_otherwise(tmp_path: Path) -> None:
    from trackrl.errors import UserError
    from trackrl.train.run import resolve_collector_device

    assert resolve_collector_device("auto", "cpu") == "cpu"
    assert resolve_collector_device("auto", "cuda") == "cuda"
    assert resolve_collector_device("cpu", "cuda") == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(UserError, match="collector_device"):
            resolve_collector_device("cuda", "cpu")
    options = TrainOptions(run_name="dev", save_dir=tmp_path / "save", logdir=tmp_path / "tb", live=False)
    trainer = Trainer(load_config(SMOKE), options)  # smoke: device cpu
    assert trainer.make_spec(0, 0).inference_device == "cpu"
    trainer.lock.release()

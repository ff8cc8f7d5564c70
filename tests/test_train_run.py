"""Trainer pieces that need no collector processes: NaN checkpoint guard, config diff, seeds, folders, busy share."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from trackrl.cli import main
from trackrl.config import config_from_dict, load_config
from trackrl.errors import UserError
from trackrl.train.checkpoint import CheckpointError
from trackrl.train.learner_loop import LearnerLoop, TrainingDivergedError
from trackrl.train.resources import ResourceError, check_memory, estimate_memory
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
    with pytest.raises(RunExistsError, match="has files but no checkpoint to resume"):
        check_run_folders(run_dir, tb_dir, resume=False)  # --resume would fail: it must not be suggested
    run_dir.mkdir(parents=True)
    (run_dir / "accumulated_stats.json").write_text("{}")
    with pytest.raises(RunExistsError, match="pass --resume to continue it"):
        check_run_folders(run_dir, tb_dir, resume=False)


def test_config_differences() -> None:
    old = config_from_dict({"training": {"batch_size": 256}})
    new = config_from_dict({"training": {"batch_size": 512}, "seed": 3})
    assert config_differences(old, new) == ["seed: 0 -> 3", "training.batch_size: 256 -> 512"]


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


# --- input refused before anything is allocated or written (issue 18) ---------------------------------------------
def _train_cli(tmp_path: Path, *extra: str) -> list[str]:
    return ["train", "--config", str(SMOKE), "--save-dir", str(tmp_path / "save"), "--logdir", str(tmp_path / "tb"),
            "--no-live", *extra]  # fmt: skip


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        (("--run-name", "../escape"), "--run-name '../escape': must be a plain name, without path separators"),
        (("--run-name", ""), "--run-name '': must not be empty"),
        (("--run-name", ".."), "--run-name '..': must not start with '.'"),
        (("--max-minutes", "0"), "--max-minutes must be a positive finite number, got 0.0"),
        (("--max-minutes", "-1"), "--max-minutes must be a positive finite number"),
        (("--max-minutes", "nan"), "--max-minutes must be a positive finite number, got nan"),
        (("--max-minutes", "inf"), "--max-minutes must be a positive finite number, got inf"),
        (("--max-frames", "0"), "--max-frames must be a positive finite number"),
        (("--max-frames", "nan"), "--max-frames must be a positive finite number, got nan"),
    ],
)
def test_cli_refuses_bad_names_and_limits_before_writing(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                         extra: tuple, problem: str) -> None:  # fmt: skip
    assert main(_train_cli(tmp_path, *extra)) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"trackrl train: error: {problem}") and err.count("\n") == 1
    assert not (tmp_path / "save").exists() and not (tmp_path / "tb").exists() and not (tmp_path / "escape").exists()


def test_memory_estimate_matches_the_allocated_buffer_and_is_checked() -> None:
    from trackrl.replay.buffer import ReplayBuffer
    from trackrl.sim.observation import float_input_dim

    config = config_from_dict({"nn": {"use_image": True, "image_height_px": 40, "image_width_px": 36},
                               "memory": {"memory_size_schedule": [[0, 30_000], [100, 50_000]]}})  # fmt: skip
    estimate = estimate_memory(config)
    buffer = ReplayBuffer(50_000, float_input_dim(config.environment), (1, 40, 36), config.training.n_steps)
    allocated = sum(getattr(buffer, name).nbytes for name in buffer._storage_names())
    assert estimate.replay_bytes == allocated  # the largest scheduled size, byte for byte
    network = Trainer_network_parameters(config)
    assert estimate.n_parameters == network
    with pytest.raises(ResourceError) as error:
        check_memory(config, available_bytes=100 * 2**20)
    message = str(error.value)
    assert f"needs about {estimate.total_bytes / 2**20:,.0f} MiB" in message and "has 100 MiB available" in message
    assert "50,000 transitions" in message
    assert check_memory(config, available_bytes=estimate.total_bytes) == estimate


def Trainer_network_parameters(config) -> int:
    from trackrl.agent.learner import Learner
    from trackrl.sim.observation import float_input_dim, float_inputs_mean, float_inputs_std

    env = config.environment
    learner = Learner(config, float_input_dim(env), float_inputs_mean(env), float_inputs_std(env))
    return sum(p.numel() for p in learner.online_network.parameters())


@pytest.mark.parametrize(
    ("override", "problem"),
    [
        ({"memory": {"memory_size_schedule": [[0, 100_000_000_000]], "min_transitions_to_learn": 100}},
         "100,000,000,000 transitions"),
        ({"environment": {"n_zone_centers_in_inputs": 5_000_000}}, "bytes; environment.n_zone_centers_in_inputs"),
        ({"training": {"batch_size": 2_000_000_000}}, "GiB (training.batch_size, nn.iqn_n)"),
    ],
)
def test_absurd_sizes_are_refused_before_allocating(tmp_path: Path, override: dict, problem: str) -> None:
    data = yaml.safe_load(SMOKE.read_text())
    for section, values in override.items():
        data.setdefault(section, {}).update(values)
    options = TrainOptions(run_name="big", save_dir=tmp_path / "save", logdir=tmp_path / "tb", live=False)
    with pytest.raises(ResourceError, match="GiB of memory but the machine has") as error:  # absurd: GiB, not MiB
        Trainer(config_from_dict(data), options)
    assert problem in str(error.value)
    assert not (tmp_path / "save").exists()


def test_a_map_that_does_not_exist_is_refused_before_allocating(tmp_path: Path) -> None:
    data = yaml.safe_load(SMOKE.read_text())
    data["map_cycle"] = {"entries": [{"map": "no_such_track"}]}
    options = TrainOptions(run_name="m", save_dir=tmp_path / "save", logdir=tmp_path / "tb", live=False)
    with pytest.raises(UserError, match="track 'no_such_track': not a built-in track"):
        Trainer(config_from_dict(data), options)


def _refuse_writes(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    """A read-only folder; root ignores the mode bits, so it is also refused where the probe creates its file."""
    folder.mkdir(parents=True)
    folder.chmod(0o500)
    if os.geteuid() == 0:
        real_mkstemp = tempfile.mkstemp

        def mkstemp(*args: object, dir: object = None, **kwargs: object) -> tuple[int, str]:
            if dir is not None and Path(str(dir)) == folder:
                raise PermissionError(13, "Permission denied")
            return real_mkstemp(*args, dir=dir, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(tempfile, "mkstemp", mkstemp)


@pytest.mark.parametrize("which", ["save", "tb"])
def test_a_read_only_folder_is_named_at_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, which: str) -> None:
    _refuse_writes(monkeypatch, tmp_path / which / "ro")
    options = TrainOptions(run_name="ro", save_dir=tmp_path / "save", logdir=tmp_path / "tb", live=False)
    try:
        with pytest.raises(UserError, match=rf"cannot write to folder {tmp_path / which / 'ro'} \(Permission denied\)"):
            Trainer(load_config(SMOKE), options)
    finally:
        (tmp_path / which / "ro").chmod(0o700)


def test_a_full_disk_during_a_checkpoint_keeps_the_previous_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                                ) -> None:  # fmt: skip
    options = TrainOptions(run_name="full", save_dir=tmp_path / "save", logdir=tmp_path / "tb", live=False)
    trainer = Trainer(load_config(SMOKE), options)
    trainer.checkpoint()
    good = digests(tmp_path / "save" / "full")
    trainer.stats.cumul_number_frames_played = 999  # the next checkpoint differs
    written: list[str] = []
    real_fsync = os.fsync

    def fsync_fills_the_disk(fd: int) -> None:
        written.append(str(fd))
        if len(written) == 3:  # the learner state, after the snapshot and the weights were replaced
            raise OSError(28, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync_fills_the_disk)
    with pytest.raises(CheckpointError) as error:
        trainer.checkpoint()
    assert str(error.value) == (f"{tmp_path / 'save' / 'full'}: cannot write the checkpoint (No space left on device); "
                                "training stopped, the previous checkpoint is kept")  # fmt: skip
    after = digests(tmp_path / "save" / "full")
    assert after["accumulated_stats.json"] == good["accumulated_stats.json"]  # still the complete old checkpoint
    assert after["learner_state.torch"] == good["learner_state.torch"]
    assert not [p for p in (tmp_path / "save" / "full").iterdir() if p.name.startswith(".")]  # no temp file left
    monkeypatch.undo()
    trainer.checkpoint()  # space again: the next checkpoint goes through
    assert digests(tmp_path / "save" / "full")["accumulated_stats.json"] != good["accumulated_stats.json"]


def test_a_config_snapshot_that_is_not_utf8_is_named_on_resume(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    run_dir = tmp_path / "save" / "r"
    run_dir.mkdir(parents=True)
    (run_dir / "config_snapshot.yaml").write_bytes("run_name: r\n# \u00e9t\u00e9\n".encode("latin-1"))
    assert main(["train", "--resume", "--run-name", "r", "--save-dir", str(tmp_path / "save"),
                 "--logdir", str(tmp_path / "tb"), "--no-live"]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert f"{run_dir / 'config_snapshot.yaml'}: not a UTF-8 text file (byte offset 14" in err


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
        slot = RaceSlot("easy", None, is_exploration=False, fill_buffer=False, map_key="easy")
        return Rollout(
            collector_id=0, map_cycle_position=0, slot=slot,
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

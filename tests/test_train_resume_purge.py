"""Resume drops what a killed session logged after its checkpoint, in every folder of the run (issue 18, item 2):
killed before the first periodic checkpoint, after a suffix switch into a new folder; and ``compare`` applies a
restart across the run's folders for logs whose later folder never got a restart marker."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
from torch.utils.tensorboard import SummaryWriter

from trackrl.analysis.runs import load_run, resolve_runs
from trackrl.config import config_from_dict, config_to_dict, load_config
from trackrl.train.collector import Rollout
from trackrl.train.map_cycle import RaceSlot
from trackrl.train.run import Trainer, TrainOptions

SMOKE = Path(__file__).resolve().parent.parent / "configs" / "smoke.yaml"
ALLTIME = "alltime_min_ms_easy"


def race(n_actions: int, race_time_ms: int) -> Rollout:
    """A finished eval race on a blind slot (nothing enters the buffer; only the logging matters here)."""
    return Rollout(
        collector_id=0, map_cycle_position=0, slot=RaceSlot("easy", None, False, False, "easy"), images=None,
        floats=np.zeros((n_actions + 1, 3), np.float32), actions=np.zeros(n_actions, np.int64),
        rewards=np.zeros(n_actions, np.float32), positions_m=np.zeros((n_actions + 1, 3), np.float32),
        finished=True, terminated=True, race_time_ms=race_time_ms, mean_q=0.0, weights_version=0,
    )  # fmt: skip


def config_with_suffix_switch(at_frame: int):
    data = config_to_dict(load_config(SMOKE))
    data["training"]["tensorboard_suffix_schedule"] = [[0, ""], [at_frame, "_2"]]
    return config_from_dict(data)


def killed_session(config, options: TrainOptions, races: list[tuple[int, int]]) -> Trainer:
    """A session that checkpoints at its start (as Trainer.run does), logs races, flushes, and is killed."""
    trainer = Trainer(config, options)
    trainer.checkpoint()
    for n_actions, time_ms in races:
        trainer.handle_rollout(race(n_actions, time_ms))
    trainer.writer.close()  # what reached the disk before kill -9
    trainer.lock.release()  # the kernel does this at kill -9
    return trainer


def logged(tmp_path: Path, run: str = "r") -> dict:
    runs = resolve_runs([run], tmp_path / "tb", tmp_path / "save")
    return load_run(runs[0], tmp_path / "tb", tmp_path / "save").series


def test_resume_after_a_kill_before_the_first_periodic_checkpoint_drops_the_orphans(tmp_path: Path) -> None:
    options = TrainOptions(run_name="r", save_dir=tmp_path / "save", logdir=tmp_path / "tb", live=False)
    config = load_config(SMOKE)
    killed_session(config, options, [(100, 20_000), (100, 21_000)])  # frames 100, 200 after the frame-0 checkpoint
    resumed = Trainer(config, TrainOptions(**{**options.__dict__, "resume": True}))
    resumed.handle_rollout(race(150, 28_000))  # frame 150
    resumed.writer.close()
    resumed.lock.release()
    series = logged(tmp_path)
    assert series[ALLTIME].step.tolist() == [150] and series[ALLTIME].value.tolist() == [28_000.0]
    assert resumed.stats.alltime_min_ms == {"easy": 28_000}


def test_resume_after_a_switch_into_a_new_suffix_folder_purges_that_folder_too(tmp_path: Path) -> None:
    options = TrainOptions(run_name="r", save_dir=tmp_path / "save", logdir=tmp_path / "tb", live=False)
    config = config_with_suffix_switch(at_frame=300)
    # Killed at frame 400, after switching into r_2 at frame 300; its best 20 s was logged in r_2 only.
    killed_session(config, options, [(200, 30_000), (200, 20_000)])
    assert sorted(os.listdir(tmp_path / "tb")) == ["r", "r_2"]
    resumed = Trainer(config, TrainOptions(**{**options.__dict__, "resume": True}))
    assert resumed.writer.folders == ["r", "r_2"]  # the unlisted folder was found and marked
    resumed.handle_rollout(race(250, 28_000))  # frame 250: still in r; the resumed session never reaches r_2
    resumed.checkpoint()
    resumed.writer.close()
    resumed.lock.release()
    series = logged(tmp_path)
    assert series[ALLTIME].value.tolist() == [28_000.0]  # not the killed session's 20.000 s
    assert series[ALLTIME].step.tolist() == [250]


def test_a_resumed_session_that_switches_into_a_new_folder_keeps_its_own_events(tmp_path: Path) -> None:
    options = TrainOptions(run_name="r", save_dir=tmp_path / "save", logdir=tmp_path / "tb", live=False)
    config = config_with_suffix_switch(at_frame=300)
    killed_session(config, options, [(100, 30_000)])  # frame 100 in r; checkpoint at frame 0
    resumed = Trainer(config, TrainOptions(**{**options.__dict__, "resume": True}))
    resumed.handle_rollout(race(150, 29_000))  # frame 150, in r
    time.sleep(1.1)  # r_2's file is created a second later than this session's file in r
    for n_actions, time_ms in [(200, 28_000), (100, 27_000)]:  # frames 350, 450: in r_2
        resumed.handle_rollout(race(n_actions, time_ms))
    resumed.checkpoint()
    resumed.writer.close()
    resumed.lock.release()
    assert sorted(os.listdir(tmp_path / "tb")) == ["r", "r_2"]
    series = logged(tmp_path)
    assert series[ALLTIME].step.tolist() == [150, 350, 450]
    assert series[ALLTIME].value.tolist() == [29_000.0, 28_000.0, 27_000.0]


def write_events(folder: Path, second: int, events: list[tuple[int, float]], purge_step: int | None = None) -> None:
    """One event file of ``alltime_min_ms_easy`` values, created at ``second`` (set through its name)."""
    writer = SummaryWriter(str(folder), purge_step=purge_step, filename_suffix=f".{second}")
    for step, value in events:
        writer.add_scalar(ALLTIME, value, global_step=step, walltime=second + step / 1000)
    writer.close()
    path = max(folder.glob(f"events.out.tfevents.*.{second}"), key=lambda p: p.stat().st_mtime)
    host_and_rest = path.name.split(".", 4)[4]
    path.rename(folder / f"events.out.tfevents.{second}.{host_and_rest}")


def test_compare_applies_a_restart_in_one_folder_to_the_older_files_of_the_others(tmp_path: Path) -> None:
    """A log written before this fix: the restart marker is only in ``r``; ``r_2`` holds the killed session's tail."""
    logdir = tmp_path / "tb"
    (logdir / "r").mkdir(parents=True)
    (logdir / "r_2").mkdir()
    write_events(logdir / "r", 1_000, [(100, 30_000.0)])  # killed session, checkpoint at step 150
    write_events(logdir / "r_2", 1_001, [(300, 20_000.0)])  # killed session, after the switch
    write_events(logdir / "r", 2_000, [(250, 28_000.0)], purge_step=151)  # resumed session
    write_events(logdir / "r_2", 2_100, [(320, 27_000.0)])  # resumed session, after the switch: kept
    series = logged(tmp_path)
    assert series[ALLTIME].step.tolist() == [100, 250, 320]
    assert series[ALLTIME].value.tolist() == [30_000.0, 28_000.0, 27_000.0]

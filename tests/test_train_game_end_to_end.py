"""`configs/smoke_game.yaml` end to end: two collectors, each launching and driving its own `tmi-serve` on its own
port through the game backend, feed the real learner; the run writes the usual tags and save-state, resumes with
every counter continuing, and `trackrl compare` reads it beside a simulator-backend run of the same config. A
tmi-serve killed mid-run: its race is dropped, the collector relaunches and reconnects, training goes on.

The collectors' policy is a script (real collector loop, real game path, real learner), so races are
reproducible: collector 0 follows the centre line (it finishes), collector 1 stands still (cut off: DNF).
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from test_game_backend import free_port
from test_train_compare_end_to_end import RecordingTrainer, scalars

from trackrl.cli import main
from trackrl.config import config_from_dict
from trackrl.sim.actions import ACTION_NAMES, N_ACTIONS
from trackrl.sim.drivers import follow_centerline_actions
from trackrl.train import collector as collector_module
from trackrl.train.checkpoint import load_checkpoint
from trackrl.train.collector import run_collector
from trackrl.train.run import TrainOptions

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
NOTHING = ACTION_NAMES.index("nothing")
FIRST_SESSION_FRAMES = 1_200  # collector 0 finishes easy in ~230 actions, collector 1 is cut off every 40
# (the first session also runs until collector 0 finished a race after its game was killed)
SECOND_SESSION_FRAMES = 1_000  # more, after the resume


def scripted_select(self: Any, images: Any, floats: np.ndarray, greedy: bool, schedules: dict) -> tuple:
    """Replaces PolicyCollector.select in the collector process: follow the centre line, or (collector 1 of a game
    run) stand still."""
    actions = follow_centerline_actions(floats, self.config.environment)
    if self.config.environment.backend == "game" and self.spec.collector_id == 1:
        actions = np.full(len(floats), NOTHING, dtype=np.int64)
    return actions, np.zeros((len(floats), N_ACTIONS))


def scripted_collector(spec: Any, rollout_queue: Any, shared_weights: Any, stop_event: Any) -> None:
    collector_module.PolicyCollector.select = scripted_select  # this (spawned) process only
    run_collector(spec, rollout_queue, shared_weights, stop_event)


def children(pid: int) -> list[int]:
    """Linux: the child processes of pid (a game collector's tmi-serve)."""
    return [int(c) for task in Path(f"/proc/{pid}/task").iterdir() for c in (task / "children").read_text().split()]


class KillingTrainer(RecordingTrainer):
    """Kills collector 0's tmi-serve (SIGKILL) once it has sent KILL_AFTER_RACES races: its race in flight is
    dropped, the collector relaunches the game and reconnects, and training goes on."""

    KILL_AFTER_RACES = 2

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.collector0_races = 0
        self.killed_pid: int | None = None
        self.races_after_kill: list[Any] = []

    def handle_rollout(self, rollout: Any) -> None:
        super().handle_rollout(rollout)
        if rollout.collector_id != 0:
            return
        self.collector0_races += 1
        if self.killed_pid is not None:
            self.races_after_kill.append(rollout)
        elif self.collector0_races == self.KILL_AFTER_RACES:
            (self.killed_pid,) = children(self.pool.pids()[0])
            os.kill(self.killed_pid, signal.SIGKILL)

    def limit_reached(self) -> str | None:
        """The frame limit waits for a finished race of collector 0 after the kill (max_minutes still applies)."""
        reason = super().limit_reached()
        if reason == "max_frames" and not any(r.finished for r in self.races_after_kill):
            return None
        return reason


def session(config_path: Path, tmp_path: Path, run_name: str, max_frames: int, resume: bool = False,
            port: int | None = None, trainer: type = RecordingTrainer) -> RecordingTrainer:  # fmt: skip
    data = yaml.safe_load(config_path.read_text())
    if port is not None:
        data["game"]["base_tmi_port"] = port  # not the default 8478: other runs on this machine may use it
    options = TrainOptions(
        run_name=run_name, save_dir=tmp_path / "save", logdir=tmp_path / "tb", resume=resume, max_frames=max_frames,
        max_minutes=4.0, live=False, log_every_s=0.5, collector_fn=scripted_collector,
    )  # fmt: skip
    return trainer(config_from_dict(data), options)


@pytest.mark.slow  # multi-process: 2 collectors + 2 tmi-serve, three sessions (~1.5 min on 2 busy cores)
def test_smoke_game_trains_on_two_tmi_serve_instances_resumes_and_compares_with_the_simulator(tmp_path: Path) -> None:
    port = free_port(2)
    first = session(CONFIGS / "smoke_game.yaml", tmp_path, "game", FIRST_SESSION_FRAMES, port=port,
                    trainer=KillingTrainer)  # fmt: skip
    assert first.run().stop_reason == "max_frames"
    assert first.finishes.get("explo_easy"), f"no race finished through the game path: {first.races}"
    # The killed game: collector 0 (not restarted) relaunched it and kept sending whole races.
    assert first.killed_pid is not None and first.pool.restarts == 0
    assert first.races_after_kill and any(r.finished for r in first.races_after_kill)
    assert all(len(r.floats) == r.n_actions + 1 == len(r.rewards) + 1 for r in first.races_after_kill)
    run_dir = tmp_path / "save" / "game"
    _, before = load_checkpoint(run_dir)
    assert before["cumul_number_frames_played"] == first.frames_handled >= FIRST_SESSION_FRAMES
    assert before["cumul_races"] == first.races and before["cumul_number_batches_done"] == first.loop.batches_done > 0
    assert before["alltime_min_ms"] == {"easy": min(first.finishes["explo_easy"])}
    assert set(before["map_cycle_positions"]) == {"0", "1"}  # both collectors, one per game instance
    run_tb = tmp_path / "tb" / "game"
    for tag in ("Race/explo_race_time_trained_easy", "Race/explo_race_finished_trained_easy", "alltime_min_ms_easy",
                "RL/avg_Q_trained_easy", "Training/loss", "cumul_training_hours",
                "Performance/learner_percentage_training", "Buffer/size"):  # fmt: skip
        assert scalars(run_tb, tag), f"missing tag {tag}"
    finished = [value for _, value in scalars(run_tb, "Race/explo_race_finished_trained_easy")]
    assert 0 < sum(finished) < len(finished)  # collector 0's finishes and collector 1's DNFs

    second_frames = before["cumul_number_frames_played"] + SECOND_SESSION_FRAMES
    second = session(CONFIGS / "smoke_game.yaml", tmp_path, "game", second_frames, resume=True, port=port)
    assert second.stats.cumul_number_frames_played == before["cumul_number_frames_played"]
    assert second.run().stop_reason == "max_frames"
    _, after = load_checkpoint(run_dir)
    assert after["cumul_number_frames_played"] == before["cumul_number_frames_played"] + second.frames_handled
    assert after["cumul_number_batches_done"] == before["cumul_number_batches_done"] + second.loop.batches_done
    assert after["tensorboard_folders"] == ["game"]

    sim = session(CONFIGS / "smoke.yaml", tmp_path, "sim", FIRST_SESSION_FRAMES)
    assert sim.run().stop_reason == "max_frames" and sim.finishes

    out = tmp_path / "compare.json"
    argv = ["compare", "game", "sim", "--logdir", str(tmp_path / "tb"), "--save-dir", str(tmp_path / "save"),
            "--json", str(out)]  # fmt: skip
    assert main(argv) == 0
    data = json.loads(out.read_text())
    assert set(data["runs"]) == {"game", "sim"}
    explo_time = "Race/explo_race_time_trained_easy"
    race_rows = {run: [row for row in data["rows"] if row["run"] == run and row["count"]
                       and row["metric"] == explo_time] for run in ("game", "sim")}  # fmt: skip
    assert race_rows["game"] and race_rows["sim"], "compare shows no race rows for one of the backends"
    # Race times shown in seconds; no row beats the run's all-time best (the save-state's, in ms). (Rows inside the
    # common window may hold no finish yet: their best is None.)
    _, sim_stats = load_checkpoint(tmp_path / "save" / "sim")
    for run, stats in (("game", after), ("sim", sim_stats)):
        shown = [row["best"] for row in race_rows[run] if row["best"] is not None]
        # TensorBoard stores float32 seconds: 10.57 s reads back as 10.5699997.
        assert all(best_s >= stats["alltime_min_ms"]["easy"] / 1000 - 1e-6 for best_s in shown), (run, shown)
        assert all(row["count"] <= sum(stats["cumul_races"].values()) for row in race_rows[run])

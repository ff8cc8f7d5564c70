"""`trackrl sweep`: grid building and validation (fast), and a real sweep on local Ray that is killed mid-way
and resumed without any trial starting again from scratch, then read by `trackrl compare --sweep` (slow)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from trackrl.cli import main
from trackrl.sweep import trial as trial_module
from trackrl.sweep.grid import SweepError, build_grid, cell_name, override_label, parse_set
from trackrl.sweep.runner import apply_result, follow_running, started_file
from trackrl.sweep.state import Sweep, Trial
from trackrl.sweep.trial import TrialLaunch
from trackrl.train.summary import best_line, parse_summary, stopped_line

MAX_FRAMES = 6000
EARLY_FRAMES = MAX_FRAMES // 3  # frozen this early, a trial cannot have reached MAX_FRAMES already
SMOKE = str(Path(__file__).resolve().parents[1] / "configs" / "smoke.yaml")


def test_grid_is_configs_x_overrides_x_seeds_with_named_trials():
    trials = build_grid([SMOKE], [parse_set("training.batch_size=32,64"), parse_set("nn.use_image=false")], 2)
    cells = ["smoke-batch_size_32-image_false", "smoke-batch_size_64-image_false"]
    assert [t.name for t in trials] == [f"{cell}-s{seed}" for seed in (0, 1) for cell in cells]
    assert [t.config.training.batch_size for t in trials] == [32, 64, 32, 64]
    assert [t.config.seed for t in trials] == [0, 0, 1, 1]
    assert trials[3].config.run_name == trials[3].name
    assert cell_name(trials[3].name) == "smoke-batch_size_64-image_false"
    assert override_label("btr.use_munchausen", False) == "munchausen_false"


def test_bad_set_key_or_value_fails_before_anything_starts_naming_the_key():
    with pytest.raises(SweepError, match=r"training\.batch_sise: unknown key"):
        build_grid([SMOKE], [parse_set("training.batch_sise=32")], 1)
    with pytest.raises(SweepError, match=r"training\.batch_size"):
        build_grid([SMOKE], [parse_set("training.batch_size=-3")], 1)
    with pytest.raises(SweepError, match="KEY=V1"):
        parse_set("training.batch_size")
    with pytest.raises(SweepError, match="same trial name"):
        build_grid([SMOKE, SMOKE], [], 1)


def test_cli_rejects_a_sweep_without_an_end(tmp_path, capsys):
    assert main(["sweep", "x", "--config", SMOKE, "--save-dir", str(tmp_path)]) == 2
    assert "--max-minutes or --max-frames" in capsys.readouterr().err
    assert not (tmp_path / "sweeps").exists()


def test_a_crash_is_retried_once_then_failed_and_a_stop_is_an_interruption():
    trial = Trial("t-s0", SMOKE, {}, 0, "c.yaml", 2)
    crash = {"returncode": 1, "error": "RuntimeError: boom", "minutes": 0.1}
    assert apply_result(trial, crash, stopping=False) and trial.state == "pending"
    assert not apply_result(trial, crash, stopping=False)
    assert (trial.state, trial.error, trial.attempts) == ("failed", "RuntimeError: boom", 2)
    stopped = Trial("t-s1", SMOKE, {}, 1, "c.yaml", 2)
    assert not apply_result(stopped, {"returncode": 0, "stop_reason": "SIGTERM", "stopped_by_sweep": True}, False)
    assert stopped.state == "interrupted" and stopped.attempts == 0
    apply_result(stopped, {"returncode": 0, "stop_reason": "max_frames", "frames": 1600}, False)
    assert (stopped.state, stopped.frames) == ("finished", 1600)


FAKE_TRAIN = """
import pathlib, signal, sys, time
stop, checkpoint = map(pathlib.Path, sys.argv[1:3])
stop.touch()  # the sweep is stopped while this trial starts up: a SIGTERM now would kill it (default action)
time.sleep(1.5)
checkpoint.write_text("{}")  # its first checkpoint, then it handles SIGTERM like trackrl train
signal.signal(signal.SIGTERM, lambda *_: (print("stopped (SIGTERM) at 10 frames"), sys.exit(0)))
time.sleep(30)
sys.exit(3)
"""


def test_a_trial_stopped_during_start_up_is_signalled_only_once_it_has_a_checkpoint(tmp_path, monkeypatch):
    stop, checkpoint = tmp_path / "STOP", tmp_path / "run" / "accumulated_stats.json"
    checkpoint.parent.mkdir()
    monkeypatch.setattr(trial_module, "train_command",
                        lambda launch: [sys.executable, "-c", FAKE_TRAIN, str(stop), str(checkpoint)])  # fmt: skip
    started = tmp_path / "started" / "run"
    launch = TrialLaunch("run", "c.yaml", str(tmp_path), str(tmp_path / "tb"), False, 100, None, 1, str(stop),
                         str(tmp_path / "run.log"), str(checkpoint), str(started))  # fmt: skip
    result = trial_module.run_trial(launch)
    assert (result["returncode"], result["stopped_by_sweep"], result["stop_reason"]) == (0, True, "SIGTERM")
    assert "$ " in (tmp_path / "run.log").read_text() and not started.exists()  # the marker lives while it runs


def test_trials_are_queued_until_their_process_starts(tmp_path):
    sweep = Sweep("t", str(tmp_path), str(tmp_path / "tb"), [], {}, None, 1.0, None)
    first, second = (Trial(f"a-s{seed}", SMOKE, {}, seed, "c.yaml", 2, "queued") for seed in (0, 1))
    assert follow_running(sweep, [first, second]) == [] and (first.state, second.state) == ("queued", "queued")
    started_file(sweep, first).parent.mkdir(parents=True)
    started_file(sweep, first).touch()  # what run_trial does when Ray starts the task
    assert follow_running(sweep, [first, second]) == [first] and (first.state, second.state) == ("running", "queued")
    started_file(sweep, first).unlink()  # its task ended; until ray.wait reports it, it stays running
    assert follow_running(sweep, [first, second]) == [] and first.state == "running"


def test_the_sweep_reads_the_best_ratio_from_the_lines_train_prints(tmp_path):
    # The lines come from train/summary.py, the functions `trackrl train` prints with (a wording change once left
    # the sweep's "best / reference" column blank for every trial).
    log = "\n".join(["[a01-s0] 20.0 min | frames 4,395,572", stopped_line("max_minutes", 4_395_572, 274_599, 9570,
                     tmp_path), best_line("a01", 24_340, 1.034), best_line("easy", 8_400, 0.987)])  # fmt: skip
    assert parse_summary(log) == {"stop_reason": "max_minutes", "frames": 4_395_572, "best_ratio": 0.987}
    assert parse_summary("Traceback (most recent call last):") == {"stop_reason": None, "frames": None,
                                                                     "best_ratio": None}  # fmt: skip


def _frames(save: Path, run: str) -> int:
    """Frames of the run's last checkpoint (0 before its first)."""
    try:
        return json.loads((save / run / "accumulated_stats.json").read_text())["cumul_number_frames_played"]
    except (OSError, ValueError):
        return 0


def _sweep_json(save: Path) -> dict:
    path = save / "sweeps" / "t" / "sweep.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):  # not written yet (atomic writes: never half a file)
        return {"trials": {}}


def _train_pid(save: Path, run: str) -> int | None:
    """The pid of the `trackrl train` process of ``run`` under ``save`` (Linux /proc), None while there is none."""
    wanted = ["--run-name", run, "--save-dir", str(save.resolve())]
    for proc in Path("/proc").iterdir():
        try:
            argv = (proc / "cmdline").read_bytes().decode().split("\0")
        except (OSError, ValueError):
            continue
        if "train" in argv and all(w in argv for w in wanted):
            return int(proc.name)
    return None


def _sigterm_pending(pid: int) -> bool:
    """SIGTERM is pending on the (stopped) process: the sweep has asked it to stop (/proc/PID/status ShdPnd)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("ShdPnd:"):
            return bool(int(line.split()[1], 16) & (1 << (signal.SIGTERM - 1)))
    return False


def _wait_for(condition, what: str, deadline: float, sweep: subprocess.Popen):
    while time.monotonic() < deadline:
        if (value := condition()) is not None and value is not False:
            return value
        if sweep.poll() is not None:
            pytest.fail(f"the sweep exited ({sweep.returncode}) while waiting for {what}: {sweep.stdout.read()}")
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}")


def _thaw(pid: int | None) -> None:
    if pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds and freezes the trial process via /proc")
def test_sweep_killed_mid_way_resumes_every_trial_and_compare_reads_it(tmp_path):
    """Kill the sweep (SIGTERM) while one trial is finished and another is mid-way, then --resume.

    No timing is guessed: a running trial's train process is frozen (SIGSTOP) and kept frozen only if its checkpoint
    shows it well before --max-frames, so it cannot reach its end while the stop spreads; it is let go (SIGCONT) only
    when the sweep's SIGTERM is pending on it, which it then handles before its next step: an interruption, never a
    finish. The deadlines only bound a failure (a quiet 2-core machine takes about a minute, a loaded one 2-3)."""
    config = yaml.safe_load(Path(SMOKE).read_text())
    config["training"]["checkpoint_every_minutes"] = 0.01  # a checkpoint with frames ~0.6 s into the trial
    (tmp_path / "smoke.yaml").write_text(yaml.safe_dump(config))
    save, logs = tmp_path / "save", tmp_path / "tb"
    command = [sys.executable, "-m", "trackrl.cli", "sweep", "t", "--save-dir", str(save), "--logdir", str(logs)]
    # two trials at a time on a 2-CPU local Ray (the packing by --cpus-per-trial is part of what is tested)
    grid = ["--config", "smoke.yaml", "--seeds", "2", "--set", "training.batch_size=32,64", "--max-frames",
            str(MAX_FRAMES), "--cpus-per-trial", "1"]  # fmt: skip
    sweep = subprocess.Popen([*command, *grid], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True)  # fmt: skip
    deadline = time.monotonic() + 240
    frozen: int | None = None

    def freeze_a_mid_way_trial() -> tuple[str, int, int] | None:
        """Once a trial has finished: freeze (SIGSTOP) a running one, then read its checkpoint. Frozen, it cannot
        move on; it is kept only if its frames are well before the end (the checkpoint lags the live count by up to
        one checkpoint interval), else it is let go and the next poll tries again."""
        trials = _sweep_json(save)["trials"]
        if not any(t["state"] == "finished" for t in trials.values()):
            return None
        for name, trial in trials.items():
            if trial["state"] != "running" or not 0 < _frames(save, name) <= EARLY_FRAMES:
                continue
            pid = _train_pid(save, name)
            if pid is None:
                continue
            os.kill(pid, signal.SIGSTOP)
            if 0 < (frames := _frames(save, name)) <= EARLY_FRAMES:
                return name, pid, frames
            _thaw(pid)
        return None

    try:
        stopped_trial, frozen, seen = _wait_for(freeze_a_mid_way_trial, "a finished and a mid-way trial", deadline,
                                                sweep)  # fmt: skip
        os.kill(sweep.pid, signal.SIGTERM)
        _wait_for(lambda: _sigterm_pending(frozen), "the sweep's SIGTERM to reach the trial", deadline, sweep)
    except BaseException:  # never leave a frozen trial or a running sweep behind
        _thaw(frozen)
        sweep.terminate()
        sweep.communicate(timeout=60)
        raise
    _thaw(frozen)
    output, _ = sweep.communicate(timeout=60)
    assert sweep.returncode == 130, output
    trials = _sweep_json(save)["trials"]
    assert trials[stopped_trial]["state"] == "interrupted" and trials[stopped_trial]["sessions"] == 1, output
    assert sum(t["state"] == "finished" for t in trials.values()) >= 1
    frames_at_stop = _frames(save, stopped_trial)  # its SIGTERM checkpoint
    assert frames_at_stop >= seen

    resumed = subprocess.run([*command, "--resume"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    trials = _sweep_json(save)["trials"]
    assert set(trials) == {"smoke-batch_size_32-s0", "smoke-batch_size_64-s0", "smoke-batch_size_32-s1",
                           "smoke-batch_size_64-s1"}  # fmt: skip
    assert all(t["state"] == "finished" and t["frames"] >= MAX_FRAMES for t in trials.values()), trials
    for name, trial in trials.items():
        log = (save / "sweeps" / "t" / "logs" / f"{name}.log").read_text()
        starts, fresh = log.count("$ "), log.count("--no-live --max")  # a fresh start has no --resume
        assert starts == trial["sessions"] and fresh == 1, name  # started from scratch exactly once
    assert trials[stopped_trial]["sessions"] == 2
    assert _frames(save, stopped_trial) >= max(MAX_FRAMES, frames_at_stop)  # its counters continued

    out = tmp_path / "compare.json"
    assert main(["compare", "--sweep", "t", "--save-dir", str(save), "--logdir", str(logs), "--json", str(out)]) == 0
    groups = json.loads(out.read_text())["groups"]
    assert {g: v["runs"] for g, v in groups.items()} == {
        "smoke-batch_size_32": ["smoke-batch_size_32-s0", "smoke-batch_size_32-s1"],
        "smoke-batch_size_64": ["smoke-batch_size_64-s0", "smoke-batch_size_64-s1"],
    }
    assert all(c["n_seeds"] == 2 for g in groups.values() for c in g["checkpoints"])

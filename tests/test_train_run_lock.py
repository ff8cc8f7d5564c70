"""One trainer per run folder (issue 18, item 4): a second start refuses naming the holder; a dead holder's lock is
taken over."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from trackrl.config import load_config
from trackrl.train.run import Trainer, TrainOptions
from trackrl.train.run_lock import RunLock, RunLockedError

SMOKE = Path(__file__).resolve().parent.parent / "configs" / "smoke.yaml"
HOLD_LOCK = (
    "import sys, time; from trackrl.train.run_lock import RunLock; "
    "lock = RunLock(sys.argv[1]); lock.acquire(); print('locked', flush=True); time.sleep(60)"
)


def start_holder(run_dir: Path) -> subprocess.Popen:
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(run_dir)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    return holder


def test_a_second_process_refuses_naming_the_holder_and_takes_over_a_dead_ones_lock(tmp_path: Path) -> None:
    run_dir = tmp_path / "save" / "r"
    holder = start_holder(run_dir)
    try:
        with pytest.raises(RunLockedError, match=rf"pid {holder.pid} on host {socket.gethostname()}"):
            RunLock(run_dir).acquire()
        os.kill(holder.pid, signal.SIGKILL)  # kill -9: the kernel drops the flock; the file stays behind
        holder.wait(timeout=10)
    finally:
        if holder.poll() is None:
            holder.kill()
    assert (run_dir / "run.lock").is_file()
    lock = RunLock(run_dir)
    lock.acquire()  # stale: taken over
    assert str(os.getpid()) in (run_dir / "run.lock").read_text()
    lock.release()
    assert (run_dir / "run.lock").read_text() == ""


def test_a_second_trainer_of_one_run_refuses_before_touching_it(tmp_path: Path) -> None:
    options = TrainOptions(run_name="twice", save_dir=tmp_path / "save", logdir=tmp_path / "tb", live=False)
    first = Trainer(load_config(SMOKE), options)
    first.checkpoint()
    stats_before = (tmp_path / "save" / "twice" / "accumulated_stats.json").read_bytes()
    resume = TrainOptions(**{**options.__dict__, "resume": True})
    with pytest.raises(RunLockedError, match=f"pid {os.getpid()}"):
        Trainer(load_config(SMOKE), resume)
    assert (tmp_path / "save" / "twice" / "accumulated_stats.json").read_bytes() == stats_before
    first.lock.release()
    Trainer(load_config(SMOKE), resume).lock.release()  # once the first is done, resume works


def test_a_start_that_failed_after_taking_the_lock_does_not_block_a_new_start(tmp_path: Path) -> None:
    run_dir = tmp_path / "save" / "fresh"
    lock = RunLock(run_dir)
    lock.acquire()
    lock.release()  # only run.lock is left in the folder
    options = TrainOptions(run_name="fresh", save_dir=tmp_path / "save", logdir=tmp_path / "tb", live=False)
    Trainer(load_config(SMOKE), options).lock.release()

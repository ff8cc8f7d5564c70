"""One trial = one `trackrl train` process, run inside a Ray task on whichever node Ray picks.

The process is started exactly as a user would start it (same CLI, same save-state, same TensorBoard tags), with
thread counts from the CPUs Ray gave the task. It is stopped with SIGTERM (trackrl train then checkpoints) when the
sweep's STOP file appears, once it has a first checkpoint, and, on Linux, also when the Ray worker running it dies
(PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trackrl.train.summary import parse_summary

POLL_S = 0.5
STOP_GRACE_S = 300.0  # a final checkpoint of a big replay-free state takes seconds; never kill it early
# A fresh trial is told to stop only once its first checkpoint exists (written at the start of training): a SIGTERM
# during its start-up would kill it before it handles signals, leaving a run folder that --resume cannot continue.
FIRST_CHECKPOINT_WAIT_S = 180.0
LIMIT_REASONS = ("max_frames", "max_minutes")


@dataclass(frozen=True)
class TrialLaunch:
    name: str
    config_file: str
    save_dir: str
    logdir: str
    resume: bool
    max_frames: float | None
    max_minutes: float | None  # what is left of the sweep's per-trial budget
    cpus: int
    stop_file: str
    log_file: str
    checkpoint_file: str  # its presence: the run has a complete checkpoint to resume from
    started_file: str  # written while the trial's process runs (the sweep shows "queued" until then)


def train_command(launch: TrialLaunch) -> list[str]:
    command = [sys.executable, "-m", "trackrl.cli", "train", "--config", launch.config_file, "--run-name",
               launch.name, "--save-dir", launch.save_dir, "--logdir", launch.logdir, "--no-live"]  # fmt: skip
    if launch.resume:
        command.append("--resume")
    if launch.max_frames is not None:
        command += ["--max-frames", str(launch.max_frames)]
    if launch.max_minutes is not None:
        command += ["--max-minutes", f"{launch.max_minutes:.4f}"]
    return command


def thread_environment(cpus: int) -> dict[str, str]:
    """BLAS/OpenMP/numba threads of the trial = the CPUs Ray reserved for it (torch's own come from the config)."""
    env = dict(os.environ)
    for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        env[variable] = str(cpus)
    return env


def _die_with_parent() -> None:
    if sys.platform.startswith("linux"):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG = 1


def _last_error(log_text: str) -> str:
    lines = [line for line in log_text.splitlines() if line.strip()]
    errors = [line for line in lines if "error" in line.lower()]
    return (errors or lines or ["(no output)"])[-1][:500]


def run_trial(launch: TrialLaunch) -> dict[str, Any]:
    """Run `trackrl train` to its end or until the STOP file appears; returns rc, stop reason, frames, error."""
    if os.path.exists(launch.stop_file):  # queued while the sweep was stopping: do not start at all
        return {"name": launch.name, "returncode": 0, "stopped_by_sweep": True, "started": False, "minutes": 0.0}
    Path(launch.log_file).parent.mkdir(parents=True, exist_ok=True)
    started = Path(launch.started_file)
    started.parent.mkdir(parents=True, exist_ok=True)
    started.touch()
    try:
        return _train_until_done(launch)
    finally:
        started.unlink(missing_ok=True)


def _train_until_done(launch: TrialLaunch) -> dict[str, Any]:
    start = time.monotonic()
    stopped_by_sweep = False
    with open(launch.log_file, "a", encoding="utf-8") as log:
        log.write(f"$ {' '.join(train_command(launch))}\n")
        log.flush()
        process = subprocess.Popen(train_command(launch), stdout=log, stderr=subprocess.STDOUT,
                                   env=thread_environment(launch.cpus), preexec_fn=_die_with_parent)  # fmt: skip
        try:
            stop_seen_at: float | None = None
            while process.poll() is None:
                if stop_seen_at is None and os.path.exists(launch.stop_file):
                    stop_seen_at = time.monotonic()
                if not stopped_by_sweep and stop_seen_at is not None and (
                    os.path.exists(launch.checkpoint_file) or time.monotonic() - stop_seen_at > FIRST_CHECKPOINT_WAIT_S
                ):
                    process.send_signal(signal.SIGTERM)
                    stopped_by_sweep = True
                time.sleep(POLL_S)
        except BaseException:  # Ray cancel / worker shutdown: still let the run checkpoint
            process.send_signal(signal.SIGTERM)
            process.wait(STOP_GRACE_S)
            raise
    text = Path(launch.log_file).read_text(encoding="utf-8").split(f"$ {' '.join(train_command(launch))}\n")[-1]
    summary = parse_summary(text)
    return {
        "name": launch.name, "returncode": process.returncode, "stopped_by_sweep": stopped_by_sweep, "started": True,
        "minutes": (time.monotonic() - start) / 60.0, "error": None if process.returncode == 0 else _last_error(text),
        **summary,
    }  # fmt: skip

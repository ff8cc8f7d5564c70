"""Run a sweep's unfinished trials as Ray tasks and keep sweep.json current; Ctrl-C / SIGTERM stops them cleanly.

Ray core tasks, one per trial, each reserving ``trial.cpus`` CPUs, so Ray packs trials onto the machine or the
cluster. Ray never retries a task itself (``max_retries=0``): the sweep decides, because a retry must resume the
trial from its checkpoint, not start it again from scratch.
"""

from __future__ import annotations

import contextlib
import json
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

from trackrl.sweep.grid import SweepError
from trackrl.sweep.state import MAX_ATTEMPTS, STARTED_DIR, STOP_FILE, Sweep, Trial
from trackrl.sweep.trial import LIMIT_REASONS, TrialLaunch, run_trial
from trackrl.train.checkpoint import ACCUMULATED_STATS_FILE, checkpoint_exists

REFRESH_S = 1.0
UNFINISHED = ("pending", "queued", "running", "interrupted")


def trial_table(sweep: Sweep) -> Table:
    table = Table(title=f"sweep {sweep.name}: {sweep.counts()}")
    for column in ("trial", "state", "frames", "best / reference", "minutes", "folder"):
        table.add_column(column, justify="left" if column in ("trial", "state", "folder") else "right")
    for trial in sweep.trials.values():
        ratio = f"{trial.best_ratio:.3f}x" if trial.best_ratio is not None else "—"
        state = trial.state if trial.error is None else f"{trial.state}: {trial.error}"
        table.add_row(trial.name, state, f"{trial.frames:,}", ratio, f"{trial.minutes_trained:.1f}",
                      str(Path(sweep.save_dir) / trial.name))  # fmt: skip
    return table


def _state_line(trial: Trial) -> str:
    error = f" ({trial.error})" if trial.state == "failed" else ""
    return f"{trial.name}: {trial.state} at {trial.frames:,} frames{error}"


def _read_frames(save_dir: Path, trial: Trial) -> int:
    """Frames from the trial's last checkpoint (accumulated_stats.json), for the live view."""
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        data = json.loads((save_dir / trial.name / "accumulated_stats.json").read_text(encoding="utf-8"))
        return int(data["cumul_number_frames_played"])
    return trial.frames


def _launch(sweep: Sweep, trial: Trial) -> TrialLaunch:
    run_dir = Path(sweep.save_dir) / trial.name
    resume = checkpoint_exists(run_dir)
    if not resume and (run_dir.exists() or (Path(sweep.logdir) / trial.name).exists()):
        raise SweepError(f"trial {trial.name}: {run_dir} or its log folder exists without a checkpoint; move it "
                         "away to start the trial again")  # fmt: skip
    minutes_left = None if sweep.max_minutes is None else max(sweep.max_minutes - trial.minutes_trained, 0.0)
    # absolute paths: the task may run in another folder or on another node (which must see the same storage)
    return TrialLaunch(
        name=trial.name, config_file=str(Path(trial.config_file).resolve()),
        save_dir=str(Path(sweep.save_dir).resolve()),
        logdir=str(Path(sweep.logdir).resolve()), resume=resume,
        max_frames=sweep.max_frames, max_minutes=minutes_left, cpus=trial.cpus,
        stop_file=str((sweep.folder / STOP_FILE).resolve()),
        log_file=str((sweep.folder / "logs" / f"{trial.name}.log").resolve()),
        checkpoint_file=str((run_dir / ACCUMULATED_STATS_FILE).resolve()),
        started_file=str(started_file(sweep, trial).resolve()),
    )  # fmt: skip


def started_file(sweep: Sweep, trial: Trial) -> Path:
    return sweep.folder / STARTED_DIR / trial.name


def follow_running(sweep: Sweep, running: list[Trial]) -> list[Trial]:
    """Frames and queued → running for the trials Ray holds, from their files; returns those that started."""
    started = []
    for trial in running:
        trial.frames = _read_frames(Path(sweep.save_dir), trial)
        # never back to queued: a trial whose task just ended (marker gone) waits for ray.wait to report it
        if trial.state != "running" and started_file(sweep, trial).exists():
            trial.state = "running"
            started.append(trial)
    return started


def apply_result(trial: Trial, result: dict[str, Any], stopping: bool) -> bool:
    """Update the trial from its task's result; True when it should be launched again (one retry after a crash)."""
    trial.minutes_trained += result.get("minutes", 0.0)
    trial.sessions += bool(result.get("started", True))
    if result.get("frames") is not None:
        trial.frames = result["frames"]
    if result.get("best_ratio") is not None:
        trial.best_ratio = result["best_ratio"]
    if result["returncode"] == 0 and result.get("stop_reason") in LIMIT_REASONS:
        trial.state, trial.error = "finished", None
        return False
    if result["returncode"] == 0 or result.get("stopped_by_sweep") or stopping:
        trial.state = "interrupted"  # stopped with a checkpoint (by this sweep or a signal from outside)
        return False
    trial.attempts += 1
    trial.error = result.get("error") or f"exit code {result['returncode']}"
    trial.state = "pending" if trial.attempts < MAX_ATTEMPTS else "failed"
    return trial.state == "pending"


@contextlib.contextmanager
def _stop_on_signals(stop_file: Path, console: Console) -> Iterator[list[bool]]:
    """SIGINT/SIGTERM: create the STOP file (every trial checkpoints and exits) and let the loop drain."""
    stopping = [False]

    def handle(signum: int, _frame: object) -> None:
        if not stopping[0]:
            console.print(f"{signal.Signals(signum).name}: stopping every trial with a checkpoint ...")
        stopping[0] = True
        stop_file.touch()

    previous = {s: signal.signal(s, handle) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stopping
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _init_ray(address: str | None, needed_cpus: int) -> None:
    import ray

    ray.init(address=address, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    available = ray.cluster_resources().get("CPU", 0)
    if needed_cpus > available:
        ray.shutdown()
        raise SweepError(f"a trial needs {needed_cpus} CPUs but the Ray cluster has {available:g}; lower "
                         "--cpus-per-trial")  # fmt: skip


def run_sweep(sweep: Sweep, address: str | None = None, console: Console | None = None) -> Sweep:
    import ray

    console = console or Console()
    stop_file = sweep.folder / STOP_FILE
    stop_file.unlink(missing_ok=True)
    todo = [t for t in sweep.trials.values() if t.state in UNFINISHED]
    if not todo:
        return sweep
    _init_ray(address, max(t.cpus for t in todo))
    running: dict[Any, Trial] = {}

    def launch(trial: Trial) -> None:
        started_file(sweep, trial).unlink(missing_ok=True)  # left by a sweep killed mid-way
        task = ray.remote(run_trial).options(num_cpus=trial.cpus, max_retries=0, name=f"trial:{trial.name}")
        running[task.remote(_launch(sweep, trial))] = trial
        trial.state = "queued"
        sweep.save()

    live = Live(trial_table(sweep), console=console, refresh_per_second=2) if console.is_terminal else None
    try:
        with _stop_on_signals(stop_file, console) as stopping, live or contextlib.nullcontext():
            for trial in todo:
                launch(trial)
            while running:
                done, _ = ray.wait(list(running), num_returns=1, timeout=REFRESH_S)
                for ref in done:
                    trial = running.pop(ref)
                    try:
                        result = ray.get(ref)
                    except ray.exceptions.RayError as error:  # the worker or node died
                        result = {"returncode": -1, "error": f"{type(error).__name__}: {str(error)[:300]}"}
                    if apply_result(trial, result, stopping[0]) and not stopping[0]:
                        console.print(f"{trial.name} crashed ({trial.error}); retrying once from its checkpoint")
                        launch(trial)
                    elif live is None:
                        console.print(_state_line(trial), highlight=False)
                    sweep.save()
                if started := follow_running(sweep, list(running.values())):
                    sweep.save()
                    if live is None:
                        for trial in started:
                            console.print(_state_line(trial), highlight=False)
                if live is not None:
                    live.update(trial_table(sweep))
    finally:
        sweep.save()
        stop_file.unlink(missing_ok=True)
        ray.shutdown()
    return sweep

"""save/sweeps/NAME/sweep.json: the grid, the command line and every trial's state, written atomically."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from trackrl.atomic import atomic_write_json
from trackrl.sweep.grid import SweepError

# queued: handed to Ray, waiting for CPUs; running: its `trackrl train` process has started (its STARTED_DIR marker)
TrialState = Literal["pending", "queued", "running", "interrupted", "finished", "failed"]
SWEEP_FILE = "sweep.json"
STOP_FILE = "STOP"  # trials poll for it (shared storage): its presence stops them with a checkpoint
STARTED_DIR = "started"  # a trial's task writes started/<name> when its process starts, removes it when it ends
MAX_ATTEMPTS = 2  # a crashed trial is retried once from its checkpoint, then marked failed


@dataclass
class Trial:
    name: str
    source_config: str
    overrides: dict[str, Any]
    seed: int
    config_file: str
    cpus: int  # CPUs Ray reserves for it (packing); its thread counts follow
    state: TrialState = "pending"
    attempts: int = 0  # crashed attempts (an interruption by the sweep is not one)
    sessions: int = 0  # `trackrl train` processes started
    minutes_trained: float = 0.0  # wall minutes over its sessions (--max-minutes counts the total)
    frames: int = 0
    best_ratio: float | None = None  # best race time / achieved (simulator) time, over its maps
    error: str | None = None


@dataclass
class Sweep:
    name: str
    save_dir: str
    logdir: str
    command: list[str]
    grid: dict[str, Any]
    max_frames: float | None
    max_minutes: float | None
    cpus_per_trial: int | None  # None: each config's collectors + 1
    trials: dict[str, Trial] = field(default_factory=dict)

    @property
    def folder(self) -> Path:
        return sweep_folder(Path(self.save_dir), self.name)

    def save(self) -> None:
        atomic_write_json(self.folder / SWEEP_FILE, asdict(self))

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for trial in self.trials.values():
            counts[trial.state] = counts.get(trial.state, 0) + 1
        return counts


def sweep_folder(save_dir: Path, name: str) -> Path:
    return save_dir / "sweeps" / name


def load_sweep(save_dir: Path, name: str) -> Sweep:
    path = sweep_folder(save_dir, name) / SWEEP_FILE
    if not path.is_file():
        raise SweepError(f"{path}: no such sweep (start it with --config ... first, or check --save-dir)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        trials = {name: Trial(**trial) for name, trial in data.pop("trials").items()}
        return Sweep(**data, trials=trials)
    except (json.JSONDecodeError, TypeError, KeyError, AttributeError) as error:
        raise SweepError(f"{path}: not a valid sweep file ({type(error).__name__}: {error})") from None

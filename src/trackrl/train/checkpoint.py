"""Save-state of a run: atomic writes (temp file + os.replace) and safe loads (JSON, torch weights_only=True).

Layout of ``<save-dir>/<run>/`` (docs/architecture.md "Training"):
    weights.torch            online network weights (the inference state dict; tensors only)
    learner_state.torch      online + target networks and optimiser (tensors and plain numbers only)
    accumulated_stats.json   counters, best times, rolling means, TensorBoard folders, map-cycle position, seeds
    config_snapshot.yaml     the exact config the run uses
    best_runs/<map>_<time>/  action sequence + trajectory of each new best race (see best_runs.py)

``accumulated_stats.json`` is written last: a checkpoint is complete once it is replaced.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from trackrl.atomic import atomic_write, atomic_write_json, atomic_write_text
from trackrl.errors import UserError

WEIGHTS_FILE = "weights.torch"
LEARNER_STATE_FILE = "learner_state.torch"
ACCUMULATED_STATS_FILE = "accumulated_stats.json"
CONFIG_SNAPSHOT_FILE = "config_snapshot.yaml"
BEST_RUNS_DIR = "best_runs"


class CheckpointError(UserError):
    """A save-state file is missing, corrupt or inconsistent; the message names the file."""


def atomic_torch_save(obj: Any, path: Path) -> None:
    atomic_write(path, lambda handle: torch.save(obj, handle))


def load_json(path: Path) -> Any:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: file not found")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CheckpointError(f"{path}: corrupt JSON ({error})") from None


def load_torch(path: Path) -> Any:
    """torch.load with weights_only=True (no arbitrary pickle code runs), errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: file not found")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises RuntimeError, UnpicklingError, EOFError... for a bad file
        raise CheckpointError(f"{path}: corrupt or unsafe checkpoint ({type(error).__name__}: {error})") from None


def checkpoint_exists(run_dir: Path) -> bool:
    return (Path(run_dir) / ACCUMULATED_STATS_FILE).is_file()


def save_checkpoint(
    run_dir: Path,
    inference_state: dict[str, torch.Tensor],
    learner_state: dict[str, Any],
    accumulated_stats: dict[str, Any],
    config_yaml: str,
) -> None:
    """Write every file of the save-state atomically; accumulated_stats.json last (it marks a complete checkpoint)."""
    run_dir = Path(run_dir)
    atomic_write_text(run_dir / CONFIG_SNAPSHOT_FILE, config_yaml)
    atomic_torch_save(inference_state, run_dir / WEIGHTS_FILE)
    atomic_torch_save(learner_state, run_dir / LEARNER_STATE_FILE)
    atomic_write_json(run_dir / ACCUMULATED_STATS_FILE, accumulated_stats)


def load_checkpoint(run_dir: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(learner_state, accumulated_stats) of a run; every missing or corrupt file is a CheckpointError."""
    run_dir = Path(run_dir)
    accumulated_stats = load_json(run_dir / ACCUMULATED_STATS_FILE)
    if not isinstance(accumulated_stats, dict):
        raise CheckpointError(f"{run_dir / ACCUMULATED_STATS_FILE}: expected a JSON object")
    learner_state = load_torch(run_dir / LEARNER_STATE_FILE)
    if not isinstance(learner_state, dict):
        raise CheckpointError(f"{run_dir / LEARNER_STATE_FILE}: expected a state dict")
    return learner_state, accumulated_stats

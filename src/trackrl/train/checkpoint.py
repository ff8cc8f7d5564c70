"""Save-state of a run: atomic writes (temp file + os.replace) and safe loads (JSON, torch weights_only=True).

Layout of ``<save-dir>/<run>/`` (docs/architecture.md "Training"):
    weights.torch            online network weights (the inference state dict; tensors only)
    learner_state.torch      online + target networks and optimiser (tensors and plain numbers only)
    accumulated_stats.json   counters, best times, rolling means, TensorBoard folders, map-cycle position, seeds
    config_snapshot.yaml     the exact config the run uses
    hardware.json            what each session ran on (hardware.py: devices, threads, CPU, GPU)
    best_runs/<map>_<time>/  action sequence + trajectory of each new best race (see best_runs.py)

``accumulated_stats.json`` is written last: a checkpoint is complete once it is replaced. The files are atomic one by
one; as a set they agree through a generation number stored in both the learner state and the stats. Before a save
replaces the learner state it keeps the previous one as ``learner_state.previous.torch``, so a kill between the
learner state and the stats (new learner state, old stats) resumes from the previous learner state, which matches.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import torch

from trackrl.atomic import atomic_write_bytes, atomic_write_json, atomic_write_text
from trackrl.errors import UserError

WEIGHTS_FILE = "weights.torch"
LEARNER_STATE_FILE = "learner_state.torch"
PREVIOUS_LEARNER_STATE_FILE = "learner_state.previous.torch"
GENERATION_KEY = "checkpoint_generation"  # in accumulated_stats.json and in the learner state
ACCUMULATED_STATS_FILE = "accumulated_stats.json"
CONFIG_SNAPSHOT_FILE = "config_snapshot.yaml"
BEST_RUNS_DIR = "best_runs"


class CheckpointError(UserError):
    """A save-state file is missing, corrupt or inconsistent; the message names the file."""


def atomic_torch_save(obj: Any, path: Path) -> None:
    # Serialise in memory first: a full disk then fails in a plain write (an OSError naming the cause), not inside
    # torch's zip writer (a RuntimeError from inline_container.cc).
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write_bytes(path, buffer.getvalue())


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


def load_initial_weights(run: str, save_dir: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(online weights, {run, checkpoint, frames}) of a run for `trackrl train --init-from RUN`.

    RUN is a run name under save_dir or a run folder. Only weights.torch (weights_only) and the frame count of
    accumulated_stats.json are read; nothing of that run is written."""
    run_dir = Path(run) if Path(run).is_dir() and (Path(run) / WEIGHTS_FILE).is_file() else Path(save_dir) / run
    if not (run_dir / WEIGHTS_FILE).is_file():
        raise CheckpointError(f"--init-from {run}: no {WEIGHTS_FILE} in {run_dir} (not a saved run)")
    weights = load_torch(run_dir / WEIGHTS_FILE)
    if not isinstance(weights, dict):
        raise CheckpointError(f"{run_dir / WEIGHTS_FILE}: expected a state dict")
    stats = load_json(run_dir / ACCUMULATED_STATS_FILE)
    frames = stats.get("cumul_number_frames_played") if isinstance(stats, dict) else None
    if isinstance(frames, bool) or not isinstance(frames, int):
        raise CheckpointError(f"{run_dir / ACCUMULATED_STATS_FILE}: no whole cumul_number_frames_played")
    return weights, {"run": str(run), "checkpoint": str(run_dir / WEIGHTS_FILE), "frames": frames}


def checkpoint_exists(run_dir: Path) -> bool:
    return (Path(run_dir) / ACCUMULATED_STATS_FILE).is_file()


def save_checkpoint(
    run_dir: Path,
    inference_state: dict[str, torch.Tensor],
    learner_state: dict[str, Any],
    accumulated_stats: dict[str, Any],
    config_yaml: str,
) -> None:
    """Write every file of the save-state atomically; accumulated_stats.json last (it marks a complete checkpoint).

    ``accumulated_stats[GENERATION_KEY]`` (the caller counts it up) is stored in the learner state too.
    A write that fails (full disk, read-only folder) leaves the previous files in place and raises a CheckpointError
    naming the folder and the cause."""
    run_dir = Path(run_dir)
    generation = int(accumulated_stats.get(GENERATION_KEY, 0))
    try:
        atomic_write_text(run_dir / CONFIG_SNAPSHOT_FILE, config_yaml)
        atomic_torch_save(inference_state, run_dir / WEIGHTS_FILE)
        if (run_dir / LEARNER_STATE_FILE).is_file():
            os.replace(run_dir / LEARNER_STATE_FILE, run_dir / PREVIOUS_LEARNER_STATE_FILE)
        atomic_torch_save({**learner_state, GENERATION_KEY: generation}, run_dir / LEARNER_STATE_FILE)
        atomic_write_json(run_dir / ACCUMULATED_STATS_FILE, accumulated_stats)
    except OSError as error:
        kept = "the previous checkpoint is kept" if checkpoint_exists(run_dir) else "no checkpoint of this run exists"
        raise CheckpointError(
            f"{run_dir}: cannot write the checkpoint ({error.strerror or error}); training stopped, {kept}"
        ) from None


def load_checkpoint(run_dir: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(learner_state, accumulated_stats) of a run; every missing or corrupt file is a CheckpointError."""
    run_dir = Path(run_dir)
    accumulated_stats = load_json(run_dir / ACCUMULATED_STATS_FILE)
    if not isinstance(accumulated_stats, dict):
        raise CheckpointError(f"{run_dir / ACCUMULATED_STATS_FILE}: expected a JSON object")
    learner_state = _load_learner_state(run_dir, accumulated_stats.get(GENERATION_KEY))
    return learner_state, accumulated_stats


def _learner_state_file(path: Path) -> dict[str, Any]:
    learner_state = load_torch(path)
    if not isinstance(learner_state, dict):
        raise CheckpointError(f"{path}: expected a state dict")
    return learner_state


def _load_learner_state(run_dir: Path, generation: Any) -> dict[str, Any]:
    """The learner state of the stats' generation: the current file, or the previous one when a kill came between
    the learner state and the stats. A save-state written before generations existed has none: the current file."""
    current_path, previous_path = run_dir / LEARNER_STATE_FILE, run_dir / PREVIOUS_LEARNER_STATE_FILE
    found: list[str] = []
    if current_path.is_file() or not previous_path.is_file():
        current = _learner_state_file(current_path)  # missing or corrupt: its own error
        if generation is None or current.get(GENERATION_KEY) == generation:
            current.pop(GENERATION_KEY, None)
            return current
        found.append(f"{LEARNER_STATE_FILE} is generation {current.get(GENERATION_KEY)}")
    if previous_path.is_file():
        previous = _learner_state_file(previous_path)
        if previous.get(GENERATION_KEY) == generation:
            previous.pop(GENERATION_KEY, None)
            return previous
        found.append(f"{PREVIOUS_LEARNER_STATE_FILE} is generation {previous.get(GENERATION_KEY)}")
    raise CheckpointError(
        f"{run_dir}: {ACCUMULATED_STATS_FILE} is checkpoint generation {generation} but {' and '.join(found)}: "
        "the files come from different checkpoints (copied by hand?); restore a consistent set"
    )

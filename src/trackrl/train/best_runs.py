"""Best runs: every new best finished race of a map is saved so that it can be re-simulated deterministically.

``<save-dir>/<run>/best_runs/<map>_<race_time_ms>/``:
    actions.json     the action indices, one per 50 ms action step (trackrl.sim.actions order)
    trajectory.npy   (T+1, 3) car positions in metres, as driven
    meta.json        race_time_ms, track, road width, frames, environment and rewards config

``trackrl replay DIR`` re-simulates the actions with trackrl.sim.rollout.simulate_actions and checks the race time.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from trackrl.atomic import atomic_write_bytes, atomic_write_json
from trackrl.config.schema import EnvironmentConfig, RewardsConfig
from trackrl.errors import UserError
from trackrl.sim.actions import N_ACTIONS
from trackrl.train.checkpoint import BEST_RUNS_DIR, load_json

ACTIONS_FILE = "actions.json"
TRAJECTORY_FILE = "trajectory.npy"
META_FILE = "meta.json"


class BestRunError(UserError):
    """A best-run folder is missing a file or holds inconsistent data."""


@dataclass
class BestRun:
    race_time_ms: int
    map_name: str
    road_width_m: float | None
    actions: list[int]
    trajectory_m: np.ndarray | None
    environment: EnvironmentConfig
    rewards: RewardsConfig


def _safe_name(map_name: str) -> str:
    """A track may be a path to a .npy file: keep a readable, filesystem-safe folder name."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(map_name).stem if map_name.endswith(".npy") else map_name)


def save_best_run(
    run_dir: Path,
    map_name: str,
    road_width_m: float | None,
    race_time_ms: int,
    actions: np.ndarray,
    positions_m: np.ndarray,
    environment: EnvironmentConfig,
    rewards: RewardsConfig,
    frames: int,
) -> Path:
    folder = Path(run_dir) / BEST_RUNS_DIR / f"{_safe_name(map_name)}_{int(race_time_ms)}"
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_json(folder / ACTIONS_FILE, [int(a) for a in np.asarray(actions).tolist()])
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(positions_m, dtype=np.float32), allow_pickle=False)
    atomic_write_bytes(folder / TRAJECTORY_FILE, buffer.getvalue())
    meta = {
        "race_time_ms": int(race_time_ms),
        "track": map_name,
        "road_width_m": road_width_m,
        "n_actions": len(actions),
        "frames_played": int(frames),
        "environment": environment.model_dump(mode="json"),
        "rewards": rewards.model_dump(mode="json"),
    }
    atomic_write_json(folder / META_FILE, meta)
    return folder


def load_best_run(folder: Path) -> BestRun:
    """Read and check a best-run folder; BestRunError naming the file for anything missing or inconsistent."""
    folder = Path(folder)
    if not folder.is_dir():
        raise BestRunError(f"{folder}: not a best-run folder (expected {META_FILE}, {ACTIONS_FILE} inside)")
    for name in (META_FILE, ACTIONS_FILE):
        if not (folder / name).is_file():
            raise BestRunError(f"{folder}: {name} is missing (a partial or foreign best-run folder)")
    try:
        meta = load_json(folder / META_FILE)
        actions = load_json(folder / ACTIONS_FILE)
    except UserError as error:
        raise BestRunError(str(error)) from None
    if not isinstance(meta, dict):
        raise BestRunError(f"{folder / META_FILE}: expected a JSON object, got {type(meta).__name__}")
    if not isinstance(actions, list) or not all(type(a) is int and 0 <= a < N_ACTIONS for a in actions):
        raise BestRunError(f"{folder / ACTIONS_FILE}: expected a JSON list of action indices in [0, {N_ACTIONS})")
    try:
        environment = EnvironmentConfig.model_validate(meta.get("environment", {}))
        rewards = RewardsConfig.model_validate(meta.get("rewards", {}))
        race_time_ms = int(meta["race_time_ms"])
        map_name = str(meta["track"])
    except (KeyError, TypeError, ValueError) as error:
        raise BestRunError(f"{folder / META_FILE}: invalid meta data ({error})") from None
    trajectory = _load_trajectory(folder / TRAJECTORY_FILE, len(actions))
    return BestRun(race_time_ms, map_name, meta.get("road_width_m"), actions, trajectory, environment, rewards)


def _load_trajectory(path: Path, n_actions: int) -> np.ndarray | None:
    """The saved (T+1, 3) positions, or None if the folder has none; BestRunError if unreadable or inconsistent."""
    if not path.is_file():
        return None
    try:
        trajectory = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:
        raise BestRunError(f"{path}: cannot be read as a .npy array ({error})") from None
    if trajectory.ndim != 2 or trajectory.shape != (n_actions + 1, 3) or not np.isfinite(trajectory).all():
        raise BestRunError(
            f"{path}: expected ({n_actions + 1}, 3) finite positions (one more than the {n_actions} actions), "
            f"got {trajectory.dtype} {trajectory.shape}"
        )
    return trajectory


def first_divergence(saved_m: np.ndarray | None, simulated_m: np.ndarray, tolerance_m: float = 1e-3) -> int | None:
    """Index of the first position that differs by more than ``tolerance_m`` (saved in float32), or None."""
    if saved_m is None:
        return None
    n = min(len(saved_m), len(simulated_m))
    gaps_m = np.abs(np.asarray(saved_m[:n], dtype=np.float64) - simulated_m[:n]).max(axis=1)
    bad = np.flatnonzero(gaps_m > tolerance_m)
    if bad.size:
        return int(bad[0])
    return None if len(saved_m) == len(simulated_m) else n


def replay_best_run(folder: Path, record_images: bool = False) -> tuple[BestRun, Any]:
    """Re-simulate a saved best run (with the agent camera's views if asked); return (saved run, SimulatedRace)."""
    from trackrl.sim.rollout import simulate_actions
    from trackrl.sim.track import load_track

    best_run = load_best_run(folder)
    track = load_track(best_run.map_name, best_run.road_width_m)
    actions = np.asarray(best_run.actions, dtype=np.int64)
    simulated = simulate_actions(track, actions, env_config=best_run.environment, rewards_config=best_run.rewards,
                                 record_images=record_images)  # fmt: skip
    return best_run, simulated

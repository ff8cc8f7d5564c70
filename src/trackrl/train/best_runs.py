"""Best runs: every new best finished race of a map is saved so that it can be re-simulated deterministically.

``<save-dir>/<run>/best_runs/<map key>_<race_time_ms>/`` (map key: trackrl.train.map_cycle, the map name unless the
cycle runs the map at several road widths):
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
from trackrl.train.checkpoint import BEST_RUNS_DIR, load_json

ORPHANED_BEST_RUNS_DIR = "best_runs_orphaned"  # beside best_runs/: races the resumed save-state never saw
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
    """A track may be a path to a .npy file (its map key then ends in ".npy" or ".npy_w<width>m"): keep a readable,
    filesystem-safe folder name."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(map_name).name.replace(".npy", ""))


def save_best_run(
    run_dir: Path,
    map_key: str,
    map_name: str,
    road_width_m: float | None,
    race_time_ms: int,
    actions: np.ndarray,
    positions_m: np.ndarray,
    environment: EnvironmentConfig,
    rewards: RewardsConfig,
    frames: int,
) -> Path:
    folder = Path(run_dir) / BEST_RUNS_DIR / f"{_safe_name(map_key)}_{int(race_time_ms)}"
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


def saved_at_frames(folder: Path) -> int | None:
    """``frames_played`` of a best-run folder's meta.json; None when the folder is incomplete (meta is written last)."""
    try:
        meta = load_json(folder / META_FILE)
        return int(meta["frames_played"])
    except (UserError, KeyError, TypeError, ValueError):
        return None


def set_aside_best_runs_after(run_dir: Path, checkpoint_frames: int) -> list[Path]:
    """Move best-run folders saved after the checkpoint a run resumes from (or left half-written by a kill) to
    ``best_runs_orphaned/``: the resumed save-state never saw those races, so best_runs/ must not claim them, and
    moving keeps them for a replay (nothing saved is deleted). Returns their new paths."""
    best_dir = Path(run_dir) / BEST_RUNS_DIR
    if not best_dir.is_dir():
        return []
    moved = []
    for folder in sorted(p for p in best_dir.iterdir() if p.is_dir()):
        frames = saved_at_frames(folder)
        if frames is not None and frames <= checkpoint_frames:
            continue
        target = Path(run_dir) / ORPHANED_BEST_RUNS_DIR / folder.name
        n = 1
        while target.exists():
            n += 1
            target = target.with_name(f"{folder.name}.{n}")
        target.parent.mkdir(parents=True, exist_ok=True)
        folder.rename(target)
        moved.append(target)
    return moved


def load_best_run(folder: Path) -> BestRun:
    folder = Path(folder)
    if not folder.is_dir():
        raise BestRunError(f"{folder}: not a best-run folder (expected {META_FILE}, {ACTIONS_FILE} inside)")
    meta = load_json(folder / META_FILE)
    actions = load_json(folder / ACTIONS_FILE)
    if not isinstance(actions, list) or not all(isinstance(a, int) for a in actions):
        raise BestRunError(f"{folder / ACTIONS_FILE}: expected a JSON list of action indices")
    try:
        environment = EnvironmentConfig.model_validate(meta.get("environment", {}))
        rewards = RewardsConfig.model_validate(meta.get("rewards", {}))
        race_time_ms = int(meta["race_time_ms"])
        map_name = str(meta["track"])
    except (KeyError, TypeError, ValueError) as error:
        raise BestRunError(f"{folder / META_FILE}: invalid meta data ({error})") from None
    trajectory_path = folder / TRAJECTORY_FILE
    trajectory = np.load(trajectory_path, allow_pickle=False) if trajectory_path.is_file() else None
    return BestRun(race_time_ms, map_name, meta.get("road_width_m"), actions, trajectory, environment, rewards)


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


def replay_best_run(folder: Path) -> tuple[BestRun, Any]:
    """Re-simulate a saved best run; return (saved run, SimulatedRace)."""
    from trackrl.sim.rollout import simulate_actions
    from trackrl.sim.track import load_track

    best_run = load_best_run(folder)
    track = load_track(best_run.map_name, best_run.road_width_m)
    actions = np.asarray(best_run.actions, dtype=np.int64)
    simulated = simulate_actions(track, actions, env_config=best_run.environment, rewards_config=best_run.rewards)
    return best_run, simulated

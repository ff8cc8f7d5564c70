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
from pydantic import ValidationError

from trackrl.atomic import atomic_write_bytes, atomic_write_json
from trackrl.config.schema import EnvironmentConfig, RewardsConfig
from trackrl.errors import UserError
from trackrl.sim.actions import N_ACTIONS
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
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(positions_m, dtype=np.float32), allow_pickle=False)
    meta = {
        "race_time_ms": int(race_time_ms),
        "track": map_name,
        "road_width_m": road_width_m,
        "n_actions": len(actions),
        "frames_played": int(frames),
        "environment": environment.model_dump(mode="json"),
        "rewards": rewards.model_dump(mode="json"),
    }
    try:
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_json(folder / ACTIONS_FILE, [int(a) for a in np.asarray(actions).tolist()])
        atomic_write_bytes(folder / TRAJECTORY_FILE, buffer.getvalue())
        atomic_write_json(folder / META_FILE, meta)
    except OSError as error:
        raise BestRunError(f"{folder}: cannot write the best run ({error.strerror or error})") from None
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


def _check_actions(actions: Any, path: Path, environment: EnvironmentConfig) -> list[int]:
    if not isinstance(actions, list) or not all(isinstance(a, int) and not isinstance(a, bool) for a in actions):
        raise BestRunError(f"{path}: expected a JSON list of action indices")
    if not actions:
        raise BestRunError(f"{path}: empty run (no actions); nothing to re-simulate")
    bad = next((i for i, a in enumerate(actions) if not 0 <= a < N_ACTIONS), None)
    if bad is not None:
        raise BestRunError(f"{path}: action {bad} is {actions[bad]}, outside 0..{N_ACTIONS - 1}")
    # A saved race ended at the cutoff at the latest: more actions than that cannot come from a run.
    action_ms = 10 * environment.tm_engine_step_per_action
    most = -(-environment.cutoff_rollout_if_race_not_finished_within_duration_ms // action_ms)
    if len(actions) > most:
        raise BestRunError(f"{path}: {len(actions):,} actions, more than a race cut off after {most:,} can have")
    return actions


def _check_trajectory(path: Path, n_actions: int) -> np.ndarray | None:
    if not path.is_file():
        return None
    try:
        trajectory = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as error:
        raise BestRunError(f"{path}: not a readable .npy array ({error})") from None
    if trajectory.dtype.kind not in "fiu" or trajectory.shape != (n_actions + 1, 3):
        raise BestRunError(
            f"{path}: expected ({n_actions + 1}, 3) car positions (one per action, plus the start), "
            f"got shape {trajectory.shape} of {trajectory.dtype}"
        )
    if not np.isfinite(trajectory).all():
        raise BestRunError(f"{path}: holds NaN/inf positions")
    return trajectory


def _meta_fields(meta: Any, path: Path) -> tuple[int, str, float | None, EnvironmentConfig, RewardsConfig]:
    if not isinstance(meta, dict):
        raise BestRunError(f"{path}: expected a JSON object, got {type(meta).__name__}")
    try:
        environment = EnvironmentConfig.model_validate(meta.get("environment", {}))
        rewards = RewardsConfig.model_validate(meta.get("rewards", {}))
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise BestRunError(f"{path}: invalid environment/rewards config ({where}: {first['msg']})") from None
    race_time_ms, map_name, width = meta.get("race_time_ms"), meta.get("track"), meta.get("road_width_m")
    if isinstance(race_time_ms, bool) or not isinstance(race_time_ms, int) or race_time_ms <= 0:
        raise BestRunError(f"{path}: race_time_ms must be a positive whole number of ms, got {race_time_ms!r}")
    if not isinstance(map_name, str) or not map_name:
        raise BestRunError(f"{path}: track must be a track name or .npy path, got {map_name!r}")
    if width is not None and (isinstance(width, bool) or not isinstance(width, int | float) or not 0 < width < 1e4):
        raise BestRunError(f"{path}: road_width_m must be null or a positive number of metres, got {width!r}")
    return race_time_ms, map_name, width, environment, rewards


def load_best_run(folder: Path) -> BestRun:
    """Read and check a best-run folder; BestRunError naming the file for anything missing or inconsistent."""
    folder = Path(folder)
    if not folder.is_dir():
        raise BestRunError(f"{folder}: not a best-run folder (expected {META_FILE}, {ACTIONS_FILE} inside)")
    for name in (META_FILE, ACTIONS_FILE):
        if not (folder / name).is_file():
            raise BestRunError(f"{folder}: {name} is missing (a partial or foreign best-run folder)")
    meta_path = folder / META_FILE
    try:
        meta, actions = load_json(meta_path), load_json(folder / ACTIONS_FILE)
    except UserError as error:
        raise BestRunError(str(error)) from None
    race_time_ms, map_name, width, environment, rewards = _meta_fields(meta, meta_path)
    actions = _check_actions(actions, folder / ACTIONS_FILE, environment)
    trajectory = _check_trajectory(folder / TRAJECTORY_FILE, len(actions))
    return BestRun(race_time_ms, map_name, width, actions, trajectory, environment, rewards)


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

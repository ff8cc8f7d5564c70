"""A track's yardstick: the optimal (model) lap time and the achieved (simulator) time, cached on disk.

The first call on a track solves the optimal control problem (optimal.py, seconds to a minute on 2 cores) and
drives its line in the simulator (achieved.py); the result is stored as JSON, keyed by a hash of the centre line,
road width, car parameters and solver version, under $TRACKRL_CACHE_DIR (default ~/.cache/trackrl/laps), so
`trackrl track info` and `trackrl train` are fast afterwards. Agents are compared with `achieved_ms`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from trackrl.atomic import atomic_write_json
from trackrl.sim.car import DEFAULT_CAR, CarParams
from trackrl.sim.track import Track

SOLVER_VERSION = 6  # bump when optimal.py or achieved.py change what they compute
CACHE_DIR_ENV = "TRACKRL_CACHE_DIR"


@dataclass
class LapReference:
    optimal_ms: int  # minimum lap time of the model (optimal.py)
    achieved_ms: int | None  # the optimal line driven in the simulator (None: the controller did not finish)
    achieved_actions: list[int]
    solve_seconds: float  # optimal control + tracking, on the machine that filled the cache
    mesh_history: list[tuple[float, float]]  # (mesh spacing m, lap time s) per refinement
    initial_line_times_s: dict[str, float]
    line_s_m: list[float]  # planar arc length of the optimal solution's mesh nodes
    line_offset_m: list[float]  # lateral offset n (to the right of the centre line)
    line_speed_mps: list[float]
    line_heading_error_rad: list[float]  # ξ: heading of the velocity against the centre line
    line_xyz_m: list[list[float]]  # the optimal line in world coordinates
    shift_penalty_s: float = 0.0  # part of optimal_ms: the upshifts' loss of drive (optimal.py)
    upshifts: int = 0  # upshifts along the optimal speed profile

    @property
    def gap(self) -> float | None:
        """achieved / optimal − 1."""
        return None if self.achieved_ms is None else self.achieved_ms / self.optimal_ms - 1.0


RACE_CUTOFF_KEY = "environment.cutoff_rollout_if_race_not_finished_within_duration_ms"


def race_cutoff_warning(map_name: str, optimal_ms: int, achieved_ms: int | None, cutoff_ms: int) -> str | None:
    """A warning when the optimal line driven in the simulator (else the model's optimum) needs more than the race
    cutoff: no race of that driver could finish. Not a refusal: the achieved time is a driver's, an agent may be
    faster (a 9.9 km map at 320.9 s under the 300 s cutoff is the case this catches)."""
    needed_ms = achieved_ms if achieved_ms is not None else optimal_ms
    if needed_ms < cutoff_ms:
        return None
    which = "the optimal line driven in the simulator" if achieved_ms is not None else "the optimal (model) lap"
    return (
        f"warning: map {map_name}: {which} takes {needed_ms / 1000:.1f} s, more than the race cutoff "
        f"{cutoff_ms / 1000:.1f} s, so races will be cut off before the finish; raise {RACE_CUTOFF_KEY} "
        f"(e.g. to {2 * needed_ms})"
    )


def cache_dir() -> Path:
    return Path(os.environ.get(CACHE_DIR_ENV) or Path.home() / ".cache" / "trackrl" / "laps")


def track_key(track: Track, car: CarParams = DEFAULT_CAR) -> str:
    digest = hashlib.sha256()
    digest.update(np.ascontiguousarray(track.centerline_m).tobytes())
    digest.update(json.dumps([track.road_width_m, asdict(car), SOLVER_VERSION]).encode())
    return digest.hexdigest()[:32]


def lap_reference(track: Track, car: CarParams = DEFAULT_CAR) -> LapReference:
    """The cached yardstick of `track`, computed (and stored) on first use."""
    path = cache_dir() / f"{track_key(track, car)}.json"
    cached = _read_cache(path)
    if cached is not None:
        return cached
    reference = compute_lap_reference(track, car)
    with contextlib.suppress(OSError):  # a read-only cache folder only costs the next call another solve
        atomic_write_json(path, asdict(reference))
    return reference


def compute_lap_reference(track: Track, car: CarParams = DEFAULT_CAR) -> LapReference:
    import time

    from trackrl.sim.achieved import drive_optimal_line
    from trackrl.sim.optimal import centreline_geometry, solve_optimal_lap

    started = time.perf_counter()
    lap = solve_optimal_lap(track, car)
    achieved = drive_optimal_line(track, lap, car)
    return LapReference(
        optimal_ms=lap.optimal_ms,
        achieved_ms=achieved.race_time_ms,
        achieved_actions=achieved.actions,
        solve_seconds=time.perf_counter() - started,
        mesh_history=[(float(mesh), float(t)) for mesh, t in lap.mesh_history],
        initial_line_times_s=lap.initial_line_times_s,
        line_s_m=lap.s_m.tolist(),
        line_offset_m=lap.offset_m.tolist(),
        line_speed_mps=lap.speed_mps.tolist(),
        line_heading_error_rad=lap.heading_error_rad.tolist(),
        line_xyz_m=lap.line_xyz_m(centreline_geometry(track, car)).tolist(),
        shift_penalty_s=lap.shift_penalty_s,
        upshifts=lap.upshifts,
    )


def _read_cache(path: Path) -> LapReference | None:
    """A cache entry, or None when missing or unreadable (then it is recomputed and replaced)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        reference = LapReference(**data)
        reference.mesh_history = [(float(mesh), float(t)) for mesh, t in reference.mesh_history]
        return reference
    except (OSError, ValueError, TypeError):
        return None

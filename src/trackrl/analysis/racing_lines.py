"""`trackrl compare --plots`: one racing-line figure per map, every run's best run (save/<run>/best_runs/) on the
same track picture with the reference line (drawn by trackrl.viz.lines)."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from trackrl.train.best_runs import BestRun, BestRunError, load_best_run
from trackrl.train.checkpoint import BEST_RUNS_DIR


@dataclass(frozen=True)
class RunBest:
    run_name: str
    folder: Path
    best_run: BestRun


def best_runs_by_map(run_names: Sequence[str], save_dir: Path, warn: Callable[[str], None]) -> dict[str, list[RunBest]]:
    """Per map, each run's fastest saved best run; a folder that cannot be read is reported by ``warn`` and skipped."""
    by_map: dict[str, dict[str, RunBest]] = {}
    for run_name in run_names:
        root = Path(save_dir) / run_name / BEST_RUNS_DIR
        for folder in sorted(p for p in root.glob("*") if p.is_dir()) if root.is_dir() else []:
            try:
                best_run = load_best_run(folder)
            except BestRunError as error:
                warn(f"racing lines: skipped {error}")
                continue
            current = by_map.setdefault(best_run.map_name, {}).get(run_name)
            if current is None or best_run.race_time_ms < current.best_run.race_time_ms:
                by_map[best_run.map_name][run_name] = RunBest(run_name, folder, best_run)
    return {map_name: list(runs.values()) for map_name, runs in sorted(by_map.items())}


def _positions_m(best: RunBest) -> np.ndarray:
    """The saved trajectory; a folder saved without one is re-simulated from its actions."""
    if best.best_run.trajectory_m is not None:
        return np.asarray(best.best_run.trajectory_m, dtype=np.float64)
    from trackrl.train.best_runs import replay_best_run

    return replay_best_run(best.folder)[1].positions_m


def line_plot_file_name(map_name: str) -> str:
    return "racing_line_" + re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(map_name).stem) + ".png"


def plot_racing_lines(run_names: Sequence[str], save_dir: Path, out_dir: Path,
                      warn: Callable[[str], None]) -> list[Path]:  # fmt: skip
    from trackrl.sim.track import TrackError, load_track
    from trackrl.viz.lines import RunLine, speeds_from_positions, write_lines_plot

    figures = []
    for map_name, bests in best_runs_by_map(run_names, save_dir, warn).items():
        try:
            track = load_track(map_name, bests[0].best_run.road_width_m)
        except TrackError as error:
            warn(f"racing lines: map {map_name} skipped ({error})")
            continue
        lines = []
        for best in bests:
            positions_m = _positions_m(best)
            action_ms = 10 * best.best_run.environment.tm_engine_step_per_action
            speeds_mps = speeds_from_positions(positions_m, action_ms)
            lines.append(RunLine(best.run_name, positions_m, speeds_mps, best.best_run.race_time_ms, finished=True))
        title = f"{track.name}: best run of each run ({', '.join(run_names)})"
        figures.append(write_lines_plot(Path(out_dir) / line_plot_file_name(map_name), track, lines, title))
    return figures

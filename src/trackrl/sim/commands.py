"""`trackrl track list|info|plot`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from trackrl.config import EnvironmentConfig
from trackrl.sim.lap_reference import lap_reference
from trackrl.sim.track import Track, TrackError, builtin_track_names, load_track
from trackrl.sim.tracks import BUILTIN_TRACKS

RACE_CUTOFF_KEY = "environment.cutoff_rollout_if_race_not_finished_within_duration_ms"


def cmd_track_list(args: argparse.Namespace) -> int:
    for name in builtin_track_names():
        spec = BUILTIN_TRACKS[name]
        track = load_track(name)
        print(f"{name:<10} {track.length_m:7.0f} m  {spec.road_width_m:4.0f} m wide  {spec.description}")
    return 0


def track_summary(track: Track) -> dict[str, float | int | str | None]:
    low_m, high_m = track.elevation_range_m
    reference = lap_reference(track)
    return {
        "name": track.name,
        "length_m": track.length_m,
        "road_width_m": track.road_width_m,
        "n_points": len(track.centerline_m),
        "turns": track.count_turns(),
        "elevation_min_m": low_m,
        "elevation_max_m": high_m,
        "optimal_ms": reference.optimal_ms,
        "achieved_ms": reference.achieved_ms,
        "gap": reference.gap,
        "optimal_top_speed_mps": float(max(reference.line_speed_mps)),
        "solve_seconds": reference.solve_seconds,
    }


def race_cutoff_warning(summary: dict, cutoff_ms: int) -> str | None:
    needed_ms = summary["achieved_ms"] if summary["achieved_ms"] is not None else summary["optimal_ms"]
    if needed_ms < cutoff_ms:
        return None
    return (
        f"warning: the optimal line takes {needed_ms / 1000:.1f} s in the simulator, more than the race cutoff "
        f"{cutoff_ms / 1000:.1f} s: no race can finish; raise {RACE_CUTOFF_KEY}"
    )


def cmd_track_info(args: argparse.Namespace) -> int:
    track = load_track(args.track, args.road_width)
    summary = track_summary(track)
    warning = race_cutoff_warning(summary, EnvironmentConfig().cutoff_rollout_if_race_not_finished_within_duration_ms)
    if getattr(args, "json", False):
        print(json.dumps({**summary, "race_cutoff_warning": warning}, indent=2))
        return 0
    print(f"track           {summary['name']}")
    print(f"length          {summary['length_m']:.1f} m ({summary['n_points']} points, 0.5 m apart)")
    print(f"road width      {summary['road_width_m']:g} m")
    print(f"turns           {summary['turns']}")
    print(f"elevation       {summary['elevation_min_m']:.1f} .. {summary['elevation_max_m']:.1f} m "
          f"(range {summary['elevation_max_m'] - summary['elevation_min_m']:.1f} m)")  # fmt: skip
    top_speed_kmh = summary["optimal_top_speed_mps"] * 3.6
    print(f"optimal (model)       {summary['optimal_ms'] / 1000:.3f} s (minimum-lap-time optimal control of the "
          f"car model from standstill; top speed {top_speed_kmh:.0f} km/h)")  # fmt: skip
    if summary["achieved_ms"] is None:
        print("achieved (simulator)  none: the tracking controller did not finish")
    else:
        print(f"achieved (simulator)  {summary['achieved_ms'] / 1000:.3f} s (that line driven in the simulator "
              f"with the 12 actions; gap {100 * summary['gap']:+.1f} %; agents are compared with this)")  # fmt: skip
    if warning:
        print(warning)
    return 0


def plot_output_path(output: str) -> Path:
    path = Path(output)
    if path.is_dir():
        raise TrackError(f"track plot: output {path} is a directory; give a .png file name")
    if path.suffix.lower() != ".png":
        raise TrackError(f"track plot: output must be a .png file, got {path}")
    return path


def cmd_track_plot(args: argparse.Namespace) -> int:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.collections import LineCollection

    from trackrl.atomic import atomic_write

    output = plot_output_path(args.output)
    track = load_track(args.track, args.road_width)
    reference = lap_reference(track)
    c = track.centerline_m[:, [0, 2]]
    delta = np.gradient(c, axis=0)
    normal = np.stack([-delta[:, 1], delta[:, 0]], axis=1) / np.linalg.norm(delta, axis=1, keepdims=True)
    half_width_m = track.road_width_m / 2
    fig, (ax, profile) = plt.subplots(2, 1, figsize=(9, 9), gridspec_kw={"height_ratios": [3, 1]})
    for side in (-1, 1):
        edge = c + side * half_width_m * normal
        ax.plot(edge[:, 0], edge[:, 1], color="black", linewidth=0.8)
    ax.plot(c[:, 0], c[:, 1], color="grey", linewidth=0.5, linestyle="--")
    line_xyz = np.asarray(reference.line_xyz_m)
    line = line_xyz[:, [0, 2]]
    segments = np.stack([line[:-1], line[1:]], axis=1)
    speed_kmh = np.asarray(reference.line_speed_mps) * 3.6
    collection = LineCollection(segments, cmap="plasma", linewidth=2.0)
    collection.set_array(0.5 * (speed_kmh[:-1] + speed_kmh[1:]))
    ax.add_collection(collection)
    fig.colorbar(collection, ax=ax, label="optimal speed (km/h)")
    ax.plot(*c[0], marker="o", color="green", label="start")
    ax.plot(*c[-1], marker="s", color="red", label="finish")
    ax.set_aspect("equal")
    ax.invert_yaxis()  # seen from above (y up): x to the right, z downwards
    ax.set_xlabel("x (m)")
    ax.set_ylabel("z (m)")
    achieved = "none" if reference.achieved_ms is None else f"{reference.achieved_ms / 1000:.3f} s"
    ax.set_title(f"{track.name}: {track.length_m:.0f} m, optimal {reference.optimal_ms / 1000:.3f} s, "
                 f"achieved {achieved}")  # fmt: skip
    ax.legend(loc="best")
    line_distance_m = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(line, axis=0), axis=1))])
    profile.plot(line_distance_m, speed_kmh, color="tab:purple")
    profile.set_xlabel("distance along the optimal line (m)")
    profile.set_ylabel("speed (km/h)", color="tab:purple")
    height = profile.twinx()
    height.plot(line_distance_m, line_xyz[:, 1], color="tab:green")
    height.set_ylabel("height (m)", color="tab:green")
    atomic_write(output, lambda handle: fig.savefig(handle, format="png", dpi=120, bbox_inches="tight"))
    plt.close(fig)
    print(f"wrote {output}")
    return 0

"""`trackrl track list|info` (`track plot` draws with trackrl.viz: viz/commands.py)."""

from __future__ import annotations

import argparse
import json

from trackrl.config import EnvironmentConfig
from trackrl.sim.lap_reference import lap_reference, race_cutoff_warning
from trackrl.sim.track import Track, builtin_track_names, load_track
from trackrl.sim.tracks import BUILTIN_TRACKS


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
        "side_file": track.side_file,
        "n_points": len(track.centerline_m),
        "turns": track.count_turns(),
        "elevation_min_m": low_m,
        "elevation_max_m": high_m,
        "optimal_ms": reference.optimal_ms,
        "achieved_ms": reference.achieved_ms,
        "gap": reference.gap,
        "optimal_top_speed_mps": float(max(reference.line_speed_mps)),
        "optimal_upshifts": reference.upshifts,  # each charged a loss of drive inside optimal_ms (optimal.py)
        "optimal_shift_penalty_ms": round(1000 * reference.shift_penalty_s, 1),
        "solve_seconds": reference.solve_seconds,
    }


def cmd_track_info(args: argparse.Namespace) -> int:
    track = load_track(args.track, args.road_width)
    summary = track_summary(track)
    cutoff_ms = EnvironmentConfig().cutoff_rollout_if_race_not_finished_within_duration_ms
    warning = race_cutoff_warning(track.name, summary["optimal_ms"], summary["achieved_ms"], cutoff_ms)
    if getattr(args, "json", False):
        print(json.dumps({**summary, "race_cutoff_warning": warning}, indent=2))
        return 0
    print(f"track           {summary['name']}")
    print(f"length          {summary['length_m']:.1f} m ({summary['n_points']} points, 0.5 m apart)")
    side_file = f" (from {summary['side_file']})" if summary["side_file"] else ""
    print(f"road width      {summary['road_width_m']:g} m{side_file}")
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

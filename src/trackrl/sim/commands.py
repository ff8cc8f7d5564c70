"""`trackrl track list|info` (`track plot` draws with trackrl.viz: viz/commands.py)."""

from __future__ import annotations

import argparse

from trackrl.sim.reference import reference_lap
from trackrl.sim.track import Track, builtin_track_names, load_track
from trackrl.sim.tracks import BUILTIN_TRACKS


def cmd_track_list(args: argparse.Namespace) -> int:
    for name in builtin_track_names():
        spec = BUILTIN_TRACKS[name]
        track = load_track(name)
        print(f"{name:<10} {track.length_m:7.0f} m  {spec.road_width_m:4.0f} m wide  {spec.description}")
    return 0


def track_summary(track: Track) -> dict[str, float | int | str]:
    low_m, high_m = track.elevation_range_m
    reference = reference_lap(track)
    return {
        "name": track.name,
        "length_m": track.length_m,
        "road_width_m": track.road_width_m,
        "n_points": len(track.centerline_m),
        "n_turns": track.count_turns(),
        "elevation_min_m": low_m,
        "elevation_max_m": high_m,
        "reference_race_time_ms": reference.race_time_ms,
        "reference_top_speed_mps": float(reference.speed_mps.max()),
    }


def cmd_track_info(args: argparse.Namespace) -> int:
    track = load_track(args.track, args.road_width)
    summary = track_summary(track)
    print(f"track           {summary['name']}")
    print(f"length          {summary['length_m']:.1f} m ({summary['n_points']} points, 0.5 m apart)")
    print(f"road width      {summary['road_width_m']:g} m")
    print(f"turns           {summary['n_turns']}")
    print(f"elevation       {summary['elevation_min_m']:.1f} .. {summary['elevation_max_m']:.1f} m "
          f"(range {summary['elevation_max_m'] - summary['elevation_min_m']:.1f} m)")  # fmt: skip
    top_speed_kmh = summary["reference_top_speed_mps"] * 3.6
    print(f"reference time  {summary['reference_race_time_ms'] / 1000:.3f} s "
          f"(physics limit from standstill; top speed {top_speed_kmh:.0f} km/h)")  # fmt: skip
    return 0

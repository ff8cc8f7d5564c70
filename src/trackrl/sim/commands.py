"""`trackrl track list|info|plot`."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from trackrl.sim.reference import reference_lap
from trackrl.sim.track import Track, TrackError, builtin_track_names, load_track
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


def cmd_track_plot(args: argparse.Namespace) -> int:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.collections import LineCollection

    track = load_track(args.track, args.road_width)
    output = Path(args.output)
    if output.suffix.lower() != ".png":
        raise TrackError(f"track plot: output must be a .png file, got {output}")
    reference = reference_lap(track)
    c = track.centerline_m[:, [0, 2]]
    delta = np.gradient(c, axis=0)
    normal = np.stack([-delta[:, 1], delta[:, 0]], axis=1) / np.linalg.norm(delta, axis=1, keepdims=True)
    half_width_m = track.road_width_m / 2
    fig, (ax, profile) = plt.subplots(2, 1, figsize=(9, 9), gridspec_kw={"height_ratios": [3, 1]})
    for side in (-1, 1):
        edge = c + side * half_width_m * normal
        ax.plot(edge[:, 0], edge[:, 1], color="black", linewidth=0.8)
    ax.plot(c[:, 0], c[:, 1], color="grey", linewidth=0.5, linestyle="--")
    line = reference.line_m[:, [0, 2]]
    segments = np.stack([line[:-1], line[1:]], axis=1)
    speed_kmh = reference.speed_mps * 3.6
    collection = LineCollection(segments, cmap="plasma", linewidth=2.0)
    collection.set_array(0.5 * (speed_kmh[:-1] + speed_kmh[1:]))
    ax.add_collection(collection)
    fig.colorbar(collection, ax=ax, label="reference speed (km/h)")
    ax.plot(*c[0], marker="o", color="green", label="start")
    ax.plot(*c[-1], marker="s", color="red", label="finish")
    ax.set_aspect("equal")
    ax.invert_yaxis()  # seen from above (y up): x to the right, z downwards
    ax.set_xlabel("x (m)")
    ax.set_ylabel("z (m)")
    ax.set_title(f"{track.name}: {track.length_m:.0f} m, reference {reference.race_time_ms / 1000:.3f} s")
    ax.legend(loc="best")
    # Speed and height along the reference line.
    line_distance_m = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(line, axis=0), axis=1))])
    profile.plot(line_distance_m, speed_kmh, color="tab:purple")
    profile.set_xlabel("distance along the reference line (m)")
    profile.set_ylabel("speed (km/h)", color="tab:purple")
    height = profile.twinx()
    height.plot(line_distance_m, reference.line_m[:, 1], color="tab:green")
    height.set_ylabel("height (m)", color="tab:green")
    output.parent.mkdir(parents=True, exist_ok=True)
    temporary = output.with_name(output.name + ".tmp.png")
    fig.savefig(temporary, dpi=120, bbox_inches="tight")
    plt.close(fig)
    temporary.replace(output)  # atomic: never leave a half-written PNG
    print(f"wrote {output}")
    return 0

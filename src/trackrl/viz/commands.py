"""`trackrl track plot`: the track from above (bridges in height order) with the reference line coloured by speed,
and the speed and height profiles along it."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from trackrl.sim.track import TrackError, load_track
from trackrl.viz.lines import reference_line, save_figure, speed_collection, track_figure
from trackrl.viz.track_drawing import FIGURE_RUN_OFF_M, START_RGB, draw_track, set_track_view


def cmd_track_plot(args: argparse.Namespace) -> int:
    track = load_track(args.track, args.road_width)
    output = Path(args.output)
    if output.is_dir():
        raise TrackError(f"track plot: output {output} is a directory; give a .png file name")
    if output.suffix.lower() != ".png":
        raise TrackError(f"track plot: output must be a .png file, got {output}")
    reference = reference_line(track)
    fig, (ax, profile) = track_figure(track, strip_height_in=2.6)
    set_track_view(ax, track)
    draw_track(ax, track, run_off_m=FIGURE_RUN_OFF_M)
    speed_kmh = reference.speed_mps * 3.6
    collection = speed_collection(reference.line_m[:, [0, 2]], speed_kmh, float(speed_kmh.max()))
    ax.add_collection(collection)
    fig.colorbar(collection, ax=ax, label=f"{reference.label} speed (km/h)", fraction=0.035, pad=0.02, aspect=15)
    start = track.centerline_m[0]
    ax.plot(start[0], start[2], marker="o", color=START_RGB, linestyle="none", zorder=60, label="start")
    ax.set_xlabel("x (m)")
    ax.set_ylabel("z (m)")
    ax.set_title(f"{track.name}: {track.length_m:.0f} m, {reference.label} {reference.race_time_ms / 1000:.3f} s")
    ax.legend(loc="best", fontsize=8, facecolor="0.85").set_zorder(100)  # above the lines
    line = reference.line_m
    line_distance_m = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(line, axis=0), axis=1))])
    profile.plot(line_distance_m, speed_kmh, color="tab:purple")
    profile.set_xlabel(f"distance along the {reference.label} (m)")
    profile.set_ylabel("speed (km/h)", color="tab:purple")
    height = profile.twinx()
    height.plot(line_distance_m, line[:, 1], color="tab:green")
    height.set_ylabel("height (m)", color="tab:green")
    fig.tight_layout()
    save_figure(fig, output, dpi=120)
    print(f"wrote {output}")
    return 0

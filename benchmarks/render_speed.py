"""Video frames: trackrl.viz's NumPy renderer vs the same frame drawn by matplotlib, and the time to draw a race.

    .venv/bin/python benchmarks/render_speed.py [--frames 1000] [--baseline-frames 300] [--track a01]

(the matplotlib side draws 300 frames by default to stay near a minute on a busy machine; rates are per frame,
``--baseline-frames 1000`` measures the full 1,000)

Both renderers draw the same frame of a scripted driver's race (sim/drivers.py): the track picture around the car,
the trail coloured by speed, the car rectangle, race time / speed text, the action's keys and the 64x64 camera inset.
The matplotlib side is the fast way to use it for video: one persistent figure whose artists are updated per frame,
then canvas.draw() and a copy of the RGBA buffer. Then: the whole race to MP4 and to GIF (re-simulation with the
camera views included), as ``trackrl replay DIR --video`` does. Prints seconds, frames/s and the speed-up ratio.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np


def scripted_race(track_name: str):  # -> (Track, SimulatedRace, actions)
    from trackrl.sim.drivers import braking_driver_actions, scripted_race_actions
    from trackrl.sim.rollout import simulate_actions
    from trackrl.sim.track import load_track

    track = load_track(track_name)
    actions = scripted_race_actions(track, braking_driver_actions)
    return track, simulate_actions(track, actions, record_images=True), np.asarray(actions)


def numpy_frames(track, race, actions, n_frames: int) -> float:
    from trackrl.viz.topdown import TopDownRenderer

    renderer = TopDownRenderer(track, title="benchmark")
    xz = race.positions_m[:, [0, 2]]
    start = time.perf_counter()
    for i in range(n_frames):
        k = i % race.n_actions
        if k == 0:
            renderer.reset()
        renderer.add_trail_point(xz[k], race.speeds_mps[k])
        frame = renderer.frame(xz[k], race.headings_rad[k], race.speeds_mps[k], int(race.race_times_ms[k]),
                               int(actions[k]), race.images[k])  # fmt: skip
    assert frame.shape == (480, 640, 3)
    return time.perf_counter() - start


def matplotlib_frames(track, race, actions, n_frames: int) -> float:
    """The same frame content with matplotlib artists on a persistent 640x480 figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.collections import LineCollection
    from matplotlib.patches import Polygon, Rectangle

    from trackrl.sim.actions import ACTIONS
    from trackrl.viz.topdown import TRAIL_MAX_SPEED_KMH, TopDownRenderer, car_corners_px, speed_colours

    picture = TopDownRenderer(track).picture  # the same rasterised track (drawn once on both sides)
    px_per_m = picture.px_per_m
    fig = plt.figure(figsize=(6.4, 4.8), dpi=100)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_axis_off()
    background = ax.imshow(picture.rgb[:480, :640], extent=(0, 640, 480, 0), interpolation="nearest")
    trail = LineCollection([], linewidths=3, cmap="plasma")
    trail.set_clim(0, TRAIL_MAX_SPEED_KMH)
    ax.add_collection(trail)
    car = ax.add_patch(Polygon(np.zeros((4, 2)), closed=True, color="#00e5ff"))
    ax.set_xlim(0, 640)
    ax.set_ylim(480, 0)
    time_text = fig.text(0.03, 0.08, "", color="white", fontsize=15, family="monospace", weight="bold")
    speed_text = fig.text(0.03, 0.03, "", color="white", fontsize=12, family="monospace", weight="bold")
    keys = [fig.add_artist(Rectangle((0.30 + 0.04 * c, 0.03 + 0.05 * r), 0.035, 0.045, transform=fig.transFigure))
            for r, c in ((1, 1), (0, 0), (0, 1), (0, 2))]  # fmt: skip
    inset_ax = fig.add_axes((0.79, 0.72, 0.2, 0.267))
    inset_ax.set_axis_off()
    inset = inset_ax.imshow(race.images[0], cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    xz = race.positions_m[:, [0, 2]]
    points = picture.to_pixels(xz)
    start = time.perf_counter()
    for i in range(n_frames):
        k = i % race.n_actions
        top = int(np.clip(round(points[k, 1]) - 240, 0, picture.rgb.shape[0] - 480))
        left = int(np.clip(round(points[k, 0]) - 320, 0, picture.rgb.shape[1] - 640))
        background.set_data(picture.rgb[top : top + 480, left : left + 640])
        local = points[: k + 1] - np.array([left, top])
        trail.set_segments(np.stack([local[:-1], local[1:]], axis=1))
        trail.set_array(race.speeds_mps[1 : k + 1] * 3.6)
        car.set_xy(car_corners_px(local[-1], race.headings_rad[k], px_per_m))
        time_text.set_text(f"{race.race_times_ms[k] / 1000:7.2f} s")
        speed_text.set_text(f"{race.speeds_mps[k] * 3.6:5.0f} km/h")
        for key, pressed in zip(keys, ACTIONS[actions[k]][[0, 2, 1, 3]], strict=True):
            key.set_color("tab:green" if pressed else "0.3")
        inset.set_data(race.images[k])
        fig.canvas.draw()
        frame = np.asarray(fig.canvas.buffer_rgba())[:, :, :3].copy()
    assert frame.shape == (480, 640, 3) and speed_colours(np.array([1.0])).shape == (1, 3)
    plt.close(fig)
    return time.perf_counter() - start


def whole_race(track, actions, suffix: str) -> tuple[float, int]:
    from trackrl.sim.rollout import simulate_actions
    from trackrl.viz.video import race_frames, write_video

    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        race = simulate_actions(track, actions, record_images=True)
        count = write_video(race_frames(track, race, actions, 20.0), Path(folder) / f"race{suffix}", 20.0)
        return time.perf_counter() - start, count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=1000)
    parser.add_argument("--baseline-frames", type=int, default=300)
    parser.add_argument("--track", default="a01")
    args = parser.parse_args()
    track, race, actions = scripted_race(args.track)
    print(f"race: {args.track}, braking driver, {race.race_time_ms / 1000:.2f} s, {race.n_actions} actions")
    numpy_frames(track, race, actions, 5)  # warm-up: track picture, glyph masks
    numpy_s = numpy_frames(track, race, actions, args.frames)
    matplotlib_s = matplotlib_frames(track, race, actions, args.baseline_frames)
    numpy_rate, matplotlib_rate = args.frames / numpy_s, args.baseline_frames / matplotlib_s
    print(f"numpy      {args.frames:5d} frames: {numpy_s:6.2f} s  ({numpy_rate:7.1f} frames/s)")
    print(f"matplotlib {args.baseline_frames:5d} frames: {matplotlib_s:6.2f} s  ({matplotlib_rate:7.1f} frames/s)")
    print(f"ratio: numpy draws {numpy_rate / matplotlib_rate:.1f}x more frames per second than matplotlib")
    for suffix in (".mp4", ".gif"):
        seconds, count = whole_race(track, actions, suffix)
        print(f"whole {race.race_time_ms / 1000:.1f} s race to {suffix}: {seconds:5.2f} s for {count} frames "
              f"(re-simulation + frames + encoding; {race.race_time_ms / 1000 / seconds:.1f}x real time)")  # fmt: skip


if __name__ == "__main__":
    main()

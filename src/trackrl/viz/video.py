"""Videos of a race: one top-down frame per action (20 per second of race time at the default 50 ms actions), then a
still of the finish. MP4 through imageio's ffmpeg plugin (the binary ships in the imageio-ffmpeg wheel); GIF through
Pillow, half size and one palette per frame, so that a minute of race fits in memory and in a chat message.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from trackrl.errors import UserError
from trackrl.sim.rollout import SimulatedRace
from trackrl.sim.track import Track
from trackrl.viz.topdown import TopDownRenderer

STILL_S = 1.0  # how long the last frame (the finish) is held
VIDEO_SUFFIXES = (".mp4", ".gif")
GIF_SCALE = 2  # GIF frames are this many times smaller than MP4 frames


def still_frame_count(fps: float) -> int:
    return max(1, round(STILL_S * fps))


def race_banner(race: SimulatedRace) -> str:
    return f"FINISH {race.race_time_ms / 1000:.3f} s" if race.finished else f"DNF ({race.race_time_ms / 1000:.2f} s)"


def race_frames(
    track: Track, race: SimulatedRace, actions: np.ndarray, fps: float, title: str = ""
) -> Iterator[np.ndarray]:
    """Frame k shows the state before action k with that action's keys; then the final state, held STILL_S."""
    renderer = TopDownRenderer(track, title=title)
    xz_m = race.positions_m[:, [0, 2]]
    images = race.images if race.images is not None else [None] * (race.n_actions + 1)
    for k in range(race.n_actions):
        renderer.add_trail_point(xz_m[k], race.speeds_mps[k])
        yield renderer.frame(xz_m[k], race.headings_rad[k], race.speeds_mps[k], int(race.race_times_ms[k]),
                             int(actions[k]), images[k])  # fmt: skip
    last = race.n_actions
    renderer.add_trail_point(xz_m[last], race.speeds_mps[last])
    still = renderer.frame(xz_m[last], race.headings_rad[last], race.speeds_mps[last], race.race_time_ms, None,
                           images[last], banner=race_banner(race))  # fmt: skip
    for _ in range(still_frame_count(fps)):
        yield still


def _temporary_path(path: Path) -> Path:
    return path.with_name(f".{path.stem}.tmp{path.suffix}")  # same suffix: the writers pick the format from it


def check_video_path(path: str | os.PathLike[str]) -> Path:
    path = Path(path)
    if path.suffix.lower() not in VIDEO_SUFFIXES:
        raise UserError(f"--video {path}: the file must end in {' or '.join(VIDEO_SUFFIXES)}")
    return path


def write_video(frames: Iterator[np.ndarray], path: str | os.PathLike[str], fps: float) -> int:
    """Write frames to .mp4 (H.264, yuv420p) or .gif atomically (a temp file, then a rename); returns the count."""
    path = check_video_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = _temporary_path(path)
    try:
        write = _write_gif if path.suffix.lower() == ".gif" else _write_mp4
        count = write(frames, temporary, fps)
        os.replace(temporary, path)
    finally:
        if temporary.exists():
            temporary.unlink()
    return count


def _write_mp4(frames: Iterator[np.ndarray], path: Path, fps: float) -> int:
    import imageio.v2 as imageio

    count = 0
    with imageio.get_writer(path, format="FFMPEG", fps=fps, codec="libx264", quality=7, pixelformat="yuv420p",
                            macro_block_size=16) as writer:  # fmt: skip
        for frame in frames:
            writer.append_data(frame)
            count += 1
    return count


def _write_gif(frames: Iterator[np.ndarray], path: Path, fps: float) -> int:
    from PIL import Image

    # One adaptive palette per frame (fast octree); GIF delays are in 10 ms steps, so 50 ms frames are exact.
    images = [Image.fromarray(f[::GIF_SCALE, ::GIF_SCALE]).quantize(colors=255, method=Image.Quantize.FASTOCTREE)
              for f in frames]  # fmt: skip
    if not images:
        raise UserError(f"{path}: no frames to write")
    images[0].save(path, format="GIF", save_all=True, append_images=images[1:], duration=round(1000 / fps), loop=0)
    return len(images)

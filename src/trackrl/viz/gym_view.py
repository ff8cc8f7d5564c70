"""Rendering for the Gymnasium env: ``rgb_array`` frames of the top-down replay view (with the agent camera inset)
from a VecRaceEnv's public state, and a ``human`` window (matplotlib) where a display exists."""

from __future__ import annotations

import os
import sys

import numpy as np

from trackrl.errors import UserError
from trackrl.sim.env import VecRaceEnv
from trackrl.viz.topdown import TopDownRenderer


class DisplayError(UserError):
    """render_mode="human" where no window can be opened."""


def require_display() -> None:
    """Raise DisplayError unless there is a display to open a window on."""
    windowed_os = sys.platform in ("darwin", "win32")
    has_display = windowed_os or bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    if not has_display:
        raise DisplayError(
            'render_mode="human" needs a display, and neither DISPLAY nor WAYLAND_DISPLAY is set; use '
            'render_mode="rgb_array" (e.g. with gymnasium.wrappers.RecordVideo) to get the frames instead'
        )


class RaceView:
    """Frames of car ``car`` of a VecRaceEnv; the trail restarts when its race clock goes back (a reset)."""

    def __init__(self, env: VecRaceEnv, car: int = 0, title: str = "") -> None:
        self.env = env
        self.car = car
        self.renderer = TopDownRenderer(env.track, title=title or env.track.name)
        self._last_race_time_ms = -1

    def rgb_array(self, camera_image: np.ndarray | None) -> np.ndarray:
        env, car = self.env, self.car
        race_time_ms = int(env.race_times_ms[car])
        if race_time_ms < self._last_race_time_ms:
            self.renderer.reset()
        self._last_race_time_ms = race_time_ms
        position_xz = env.positions_m[car, [0, 2]]
        speed_mps = float(np.linalg.norm(env.velocities_mps[car]))
        self.renderer.add_trail_point(position_xz, speed_mps)
        action = int(env.last_actions[car])
        return self.renderer.frame(position_xz, float(env.headings_rad[car]), speed_mps, race_time_ms,
                                   action if action >= 0 else None, camera_image)  # fmt: skip


class Window:
    """A matplotlib window showing frames as they come (human render mode)."""

    def __init__(self, fps: float) -> None:
        require_display()
        import matplotlib
        import matplotlib.pyplot as plt

        if matplotlib.get_backend().lower() in ("agg", "pdf", "svg", "ps", "cairo", "template"):
            raise DisplayError(
                f'render_mode="human": matplotlib uses the non-interactive backend {matplotlib.get_backend()!r} '
                '(set MPLBACKEND=TkAgg or QtAgg, or use render_mode="rgb_array")'
            )
        self._plt = plt
        self._pause_s = 1.0 / fps
        self._figure = None
        self._image = None

    def show(self, frame: np.ndarray) -> None:
        plt = self._plt
        if self._figure is None or not plt.fignum_exists(self._figure.number):
            self._figure = plt.figure("trackrl", figsize=(frame.shape[1] / 100, frame.shape[0] / 100), dpi=100)
            axes = self._figure.add_axes((0, 0, 1, 1))
            axes.set_axis_off()
            self._image = axes.imshow(frame)
            plt.show(block=False)
        else:
            self._image.set_data(frame)
        plt.pause(self._pause_s)

    def close(self) -> None:
        if self._figure is not None:
            self._plt.close(self._figure)
            self._figure = None

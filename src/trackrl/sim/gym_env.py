"""Gymnasium wrapper `trackrl/Race-v0`: one car, Dict observation {image (1, H, W) uint8, floats (F,) float32}."""

from __future__ import annotations

from typing import Any, ClassVar

import gymnasium
import numpy as np
from gymnasium import spaces

from trackrl.config import EnvironmentConfig, RewardsConfig
from trackrl.sim.actions import N_ACTIONS
from trackrl.sim.env import StepResult, VecRaceEnv
from trackrl.sim.track import Track, load_track


class RaceEnv(gymnasium.Env):
    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array", "human"], "render_fps": 20}

    def __init__(
        self,
        track: str | Track = "a01",
        road_width_m: float | None = None,
        env_config: EnvironmentConfig | None = None,
        rewards_config: RewardsConfig | None = None,
        image_size_px: tuple[int, int] = (64, 64),
        render_mode: str | None = None,
    ) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']} or None, got {render_mode}")
        self.render_mode = render_mode
        self._view: Any = None  # trackrl.viz.gym_view.RaceView, made on the first render
        self._window: Any = None
        if render_mode == "human":
            from trackrl.viz.gym_view import require_display  # lazy: drawing lives above sim, in trackrl.viz

            require_display()
        self.track = track if isinstance(track, Track) else load_track(track, road_width_m)
        self._env = VecRaceEnv(self.track, 1, env_config=env_config, rewards_config=rewards_config,
                               image_size_px=image_size_px)  # fmt: skip
        self.observation_space = spaces.Dict(
            {
                "image": spaces.Box(0, 255, shape=self._env.image_shape, dtype=np.uint8),
                "floats": spaces.Box(-np.inf, np.inf, shape=(self._env.float_input_dim,), dtype=np.float32),
            }
        )
        self.action_space = spaces.Discrete(N_ACTIONS)
        self._last_image = np.zeros(self._env.image_shape, dtype=np.uint8)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[dict, dict]:
        super().reset(seed=seed)  # the dynamics are deterministic: the seed only seeds self.np_random
        images, floats = self._env.reset()
        self._last_image = images[0]
        if self.render_mode == "human":
            self.render()
        return {"image": images[0], "floats": floats[0]}, {"race_time_ms": 0, "progress_m": 0.0}

    def step(self, action: int) -> tuple[dict, float, bool, bool, dict]:
        if not self.action_space.contains(action):
            raise ValueError(f"action must be an integer in [0, {N_ACTIONS}), got {action!r}")
        result: StepResult = self._env.step(np.array([int(action)], dtype=np.int64))
        self._last_image = result.images[0]
        info = {
            "race_time_ms": int(result.race_time_ms[0]),
            "finished": bool(result.finished[0]),
            "progress_m": float(result.progress_m[0]),
            "speed_mps": float(result.speed_mps[0]),
        }
        observation = {"image": result.images[0], "floats": result.floats[0]}
        if self.render_mode == "human":
            self.render()
        return observation, float(result.rewards[0]), bool(result.terminated[0]), bool(result.truncated[0]), info

    def render(self) -> np.ndarray | None:
        """rgb_array: the top-down view of `trackrl replay --video` (480x640x3 uint8: the track around the car, its
        trail by speed, race time, speed, the keys of the last action) with the agent's 64x64 camera inset.
        human: the same frame in a window (a display is required)."""
        if self.render_mode is None:
            return None
        from trackrl.viz.gym_view import RaceView, Window  # lazy: drawing lives above sim, in trackrl.viz

        if self._view is None:
            self._view = RaceView(self._env)
        frame = self._view.rgb_array(self._last_image[0])
        if self.render_mode == "human":
            if self._window is None:
                self._window = Window(self.metadata["render_fps"])
            self._window.show(frame)
            return None
        return frame

    def close(self) -> None:
        if self._window is not None:
            self._window.close()
            self._window = None

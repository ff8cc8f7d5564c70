"""Gymnasium env `trackrl/Race-v0`: one car on a built-in (or Linesight `.npy`) track.

Spaces: Discrete(12) actions (trackrl.sim.actions); the observation is a Dict {"image": (1, H, W) uint8,
"floats": (F,) float32} or, with `use_image=False`, the float Box alone. Every float's name, unit and bounds:
docs/observation.md (generated from sim/observation.py); `normalize_floats=True` gives (x − mean) / std instead.

Reward (`reward=`):
- "progress" (the default here): r_t = reward_per_m · Δprogress_m − time_penalty_per_s · Δt_s + finish_bonus · [finished
  at t]. A finish from the start returns reward_per_m · L − time_penalty_per_s · race_time_s + finish_bonus, so a
  faster finish always scores more, and with finish_bonus > time_penalty_per_s · race cutoff (10 > 0.03 · 300 s by
  default) every finish scores above 0, above standing still (−0.06, cut off after 2 s) and above every run that
  does not finish.
- "linesight": Linesight's per-step reward from `rewards_config` (what `trackrl train` uses): −0.0012 per ms plus 0.01
  per metre, so its episodic return falls with time and only a bootstrapped, short-horizon target learns from it.

Starts (`start=` for every reset, or `reset(options={"start": ...})` for one): "standing" (the default, at the start
line) or "random": a point drawn uniformly along the centre line (up to two zone spacings before the finish), heading
along the line, at a uniform 40-90 % of the reference lap's speed there; `reset(seed=...)` drives the draw.

Info, the same keys at reset and at every step: race_time_ms (int, since this episode's start), progress_m (float, m
along the centre line from the start line), speed_mps (float), finished (bool).

`RaceBatch` holds these semantics for N cars of one `VecRaceEnv`; `RaceEnv` is it with N = 1 and
`trackrl.sim.gym_vector.RaceVectorEnv` the batched `gymnasium.vector.VectorEnv`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import gymnasium
import numpy as np
from gymnasium import spaces

from trackrl.config import EnvironmentConfig, RewardsConfig, config_from_dict
from trackrl.errors import UserError
from trackrl.sim.actions import N_ACTIONS
from trackrl.sim.env import VecRaceEnv
from trackrl.sim.observation import float_input_bounds, float_inputs_mean, float_inputs_std
from trackrl.sim.reference import line_point_positions, reference_lap
from trackrl.sim.track import Track, load_track

REWARDS = ("progress", "linesight")
STARTS = ("standing", "random")
INFO_KEYS = ("race_time_ms", "progress_m", "speed_mps", "finished")
RANDOM_START_SPEED_FRACTION = (0.4, 0.9)  # of the reference lap's speed: fast enough to matter, slow enough to grip
RANDOM_START_ZONES_BEFORE_FINISH = 2


@dataclass(frozen=True)
class ProgressReward:
    """The "progress" reward: metres gained along the centre line, minus time, plus a bonus for finishing."""

    reward_per_m: float = 0.1
    time_penalty_per_s: float = 0.03
    finish_bonus: float = 10.0

    def __post_init__(self) -> None:
        if not (self.reward_per_m > 0 and self.time_penalty_per_s > 0 and self.finish_bonus >= 0):
            raise UserError(
                f"progress reward: reward_per_m and time_penalty_per_s must be > 0 and finish_bonus >= 0, got {self}"
            )


def as_environment_config(value: EnvironmentConfig | dict[str, Any] | None) -> EnvironmentConfig:
    """An EnvironmentConfig from itself, a plain dict of its keys (validated like the YAML section) or None."""
    if value is None or isinstance(value, EnvironmentConfig):
        return value if value is not None else EnvironmentConfig()
    return config_from_dict({"environment": value}, source="env_config").environment


def as_rewards_config(value: RewardsConfig | dict[str, Any] | None) -> RewardsConfig:
    if value is None or isinstance(value, RewardsConfig):
        return value if value is not None else RewardsConfig()
    return config_from_dict({"rewards": value}, source="rewards_config").rewards


def as_progress_reward(value: ProgressReward | dict[str, Any] | None) -> ProgressReward:
    if value is None or isinstance(value, ProgressReward):
        return value if value is not None else ProgressReward()
    try:
        return ProgressReward(**value)
    except TypeError as error:
        raise UserError(f"progress_reward: {error} (keys: reward_per_m, time_penalty_per_s, finish_bonus)") from None


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise UserError(f"{name} must be one of {', '.join(choices)}; got {value!r}")
    return value


class RaceBatch:
    """N cars of one `VecRaceEnv` with the Gymnasium semantics (observations, reward, starts, info), no autoreset.

    Each car has its own random generator (`seed_car`), so car i of a batch behaves exactly like a single `RaceEnv`
    seeded alike.
    """

    def __init__(
        self,
        num_cars: int,
        track: str | Track = "a01",
        road_width_m: float | None = None,
        env_config: EnvironmentConfig | dict[str, Any] | None = None,
        rewards_config: RewardsConfig | dict[str, Any] | None = None,
        reward: str = "progress",
        progress_reward: ProgressReward | dict[str, Any] | None = None,
        start: str = "standing",
        use_image: bool = True,
        normalize_floats: bool = False,
        image_size_px: tuple[int, int] = (64, 64),
    ) -> None:
        self.track = track if isinstance(track, Track) else load_track(track, road_width_m)
        self.env_config = as_environment_config(env_config)
        self.reward = _check_choice("reward", reward, REWARDS)
        self.progress_reward = as_progress_reward(progress_reward)
        self.start = _check_choice("start", start, STARTS)
        self.use_image = use_image
        self.normalize_floats = normalize_floats
        self.vec = VecRaceEnv(self.track, num_cars, env_config=self.env_config,
                              rewards_config=as_rewards_config(rewards_config), image_size_px=tuple(image_size_px),
                              render_images=use_image)  # fmt: skip
        self.num_cars = num_cars
        self._float_mean = float_inputs_mean(self.env_config)
        self._float_std = float_inputs_std(self.env_config)
        self.single_observation_space = self._observation_space()
        self.rngs: list[np.random.Generator] = [np.random.default_rng() for _ in range(num_cars)]
        self._images, self._floats = self.vec.reset()
        self._progress_m = np.zeros(num_cars)
        self._race_time_ms = np.zeros(num_cars, dtype=np.int64)
        self._speed_mps = np.zeros(num_cars)
        self._finished = np.zeros(num_cars, dtype=bool)
        self._done = np.zeros(num_cars, dtype=bool)

    # ---- spaces -----------------------------------------------------------------------------------------------
    def _observation_space(self) -> spaces.Space:
        low, high = float_input_bounds(self.env_config, self.track.road_width_m, self.vec.car_params)
        if self.normalize_floats:
            low, high = self._normalise(low), self._normalise(high)
        floats = spaces.Box(low, high, dtype=np.float32)
        if not self.use_image:
            return floats
        return spaces.Dict({"image": spaces.Box(0, 255, shape=self.vec.image_shape, dtype=np.uint8), "floats": floats})

    def _normalise(self, floats: np.ndarray) -> np.ndarray:
        return ((floats - self._float_mean) / self._float_std).astype(np.float32)

    # ---- reset / step -----------------------------------------------------------------------------------------
    def seed_car(self, car: int, rng: np.random.Generator) -> None:
        self.rngs[car] = rng

    def reset_cars(self, cars: np.ndarray, starts: list[str]) -> None:
        """Put `cars` at their start ("standing" or "random", one per car), drawing from each car's generator."""
        cars = np.asarray(cars, dtype=np.int64)
        for start in starts:
            _check_choice("options['start']", start, STARTS)
        random = np.array([start == "random" for start in starts], dtype=bool)
        start_progress_m = np.zeros(cars.size)
        start_speed_mps = np.zeros(cars.size)
        for k in np.flatnonzero(random):
            start_progress_m[k], start_speed_mps[k] = self._random_start(self.rngs[cars[k]])
        self._images, self._floats = self.vec.reset(cars, start_progress_m, start_speed_mps)
        self._progress_m[cars] = start_progress_m
        self._speed_mps[cars] = start_speed_mps
        self._race_time_ms[cars] = 0
        self._finished[cars] = False
        self._done[cars] = False

    def _random_start(self, rng: np.random.Generator) -> tuple[float, float]:
        """A uniform point along the centre line and a uniform fraction of the reference lap's speed there."""
        lap = reference_lap(self.track, self.vec.car_params)
        positions = line_point_positions(len(self.track.centerline_m))
        point_distance_m = self.track.cumulative_distance_m
        line_distance_m = np.interp(positions, np.arange(len(point_distance_m)), point_distance_m)
        last_m = max(0.0, self.track.length_m - RANDOM_START_ZONES_BEFORE_FINISH * self.env_config.zone_spacing_m)
        progress_m = float(rng.uniform(0.0, last_m))
        reference_speed_mps = float(np.interp(progress_m, line_distance_m, lap.speed_mps))
        speed_mps = float(rng.uniform(*RANDOM_START_SPEED_FRACTION)) * reference_speed_mps
        return progress_m, speed_mps

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Step every car that is not done; (rewards float64, terminated, truncated). Done cars get reward 0."""
        active = ~self._done
        result = self.vec.step(actions)
        self._images, self._floats = result.images, result.floats
        if self.reward == "linesight":
            rewards = result.rewards.astype(np.float64)
        else:
            cfg = self.progress_reward
            # Time driven this step: the race clock's advance, except on a cut-off step, whose race time jumps to the
            # race cutoff (300,000 ms, as the game tools report a DNF) while the car drove one action.
            cut_off = result.truncated & ~result.finished
            elapsed_ms = np.where(cut_off, self.vec.action_duration_ms, result.race_time_ms - self._race_time_ms)
            elapsed_s = elapsed_ms / 1000.0
            just_finished = result.finished & ~self._finished
            rewards = (cfg.reward_per_m * (result.progress_m - self._progress_m) - cfg.time_penalty_per_s * elapsed_s
                       + cfg.finish_bonus * just_finished)  # fmt: skip
        rewards[~active] = 0.0
        self._progress_m, self._race_time_ms = result.progress_m, result.race_time_ms
        self._speed_mps, self._finished = result.speed_mps, result.finished
        self._done = result.terminated | result.truncated
        return rewards, result.terminated, result.truncated  # StepResult's arrays are fresh at every step

    def mark_done(self, cars: np.ndarray) -> None:
        """Cars truncated outside the simulator (a step limit): no more reward until they are reset."""
        self._done[cars] = True

    # ---- observations and info --------------------------------------------------------------------------------
    def observations(self) -> dict[str, np.ndarray] | np.ndarray:
        """The batched observation of every car (VecRaceEnv's arrays are fresh at every reset and step)."""
        floats = self._normalise(self._floats) if self.normalize_floats else self._floats
        if not self.use_image:
            return floats
        return {"image": self._images, "floats": floats}

    def observation(self, car: int) -> dict[str, np.ndarray] | np.ndarray:
        batch = self.observations()
        if isinstance(batch, dict):
            return {key: value[car] for key, value in batch.items()}
        return batch[car]

    def camera_image(self, car: int) -> np.ndarray:
        """(1, H, W) uint8 camera image of one car (zeros with use_image=False)."""
        return self._images[car].copy()

    def infos(self) -> dict[str, np.ndarray]:
        """Info arrays of every car (keys INFO_KEYS), dtypes as Gymnasium batches the single env's Python values."""
        return {
            "race_time_ms": self._race_time_ms.copy(),
            "progress_m": self._progress_m.copy(),
            "speed_mps": self._speed_mps.copy(),
            "finished": self._finished.copy(),
        }

    def info(self, car: int) -> dict[str, Any]:
        return {
            "race_time_ms": int(self._race_time_ms[car]),
            "progress_m": float(self._progress_m[car]),
            "speed_mps": float(self._speed_mps[car]),
            "finished": bool(self._finished[car]),
        }


def reset_start(options: dict[str, Any] | None, default: str, known: tuple[str, ...] = ("start",)) -> str:
    """The start of this reset: options["start"] if given, else the env's default (other keys: `known`)."""
    if options is None:
        return default
    unknown = set(options) - set(known)
    if unknown:
        raise UserError(f"reset options: unknown key(s) {sorted(unknown)}; known: {', '.join(known)}")
    return _check_choice("options['start']", options.get("start", default), STARTS)


class RaceEnv(gymnasium.Env):
    """One car racing on a track: Gymnasium's `Env` API over a one-car `VecRaceEnv` (see the module docstring).

    Args:
        track: a built-in track name (`trackrl.sim.builtin_track_names()`), a Linesight `.npy` path or a `Track`.
        road_width_m: overrides the track's road width (names and paths only).
        env_config: `EnvironmentConfig` or a plain dict of its keys (action duration, cutoffs, zones, layout).
        rewards_config: `RewardsConfig` or a dict; used by reward="linesight" only.
        reward: "progress" (default) or "linesight".
        progress_reward: `ProgressReward` or a dict (reward_per_m, time_penalty_per_s, finish_bonus).
        start: "standing" (default) or "random", for every reset without options["start"].
        use_image: False drops the camera (observation = the float Box; about 4x faster).
        normalize_floats: True gives (x − mean) / std of each float (`sim/observation.py`'s constants).
        image_size_px: (height, width) of the camera.
        render_mode: "rgb_array" (the top-down replay view with the camera inset), "human" (a window) or None.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array", "human"], "render_fps": 20}

    def __init__(
        self,
        track: str | Track = "a01",
        road_width_m: float | None = None,
        env_config: EnvironmentConfig | dict[str, Any] | None = None,
        rewards_config: RewardsConfig | dict[str, Any] | None = None,
        reward: str = "progress",
        progress_reward: ProgressReward | dict[str, Any] | None = None,
        start: str = "standing",
        use_image: bool = True,
        normalize_floats: bool = False,
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
        self._batch = RaceBatch(1, track, road_width_m, env_config, rewards_config, reward, progress_reward, start,
                                use_image, normalize_floats, image_size_px)  # fmt: skip
        self.track = self._batch.track
        self.observation_space = self._batch.single_observation_space
        self.action_space = spaces.Discrete(N_ACTIONS)
        self._last_image = np.zeros(self._batch.vec.image_shape, dtype=np.uint8)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict]:
        super().reset(seed=seed)
        self._batch.seed_car(0, self.np_random)
        self._batch.reset_cars(np.array([0]), [reset_start(options, self._batch.start)])
        self._last_image = self._batch.camera_image(0)
        if self.render_mode == "human":
            self.render()
        return self._batch.observation(0), self._batch.info(0)

    def step(self, action: int) -> tuple[Any, float, bool, bool, dict]:
        if not self.action_space.contains(action):
            raise ValueError(f"action must be an integer in [0, {N_ACTIONS}), got {action!r}")
        rewards, terminated, truncated = self._batch.step(np.array([int(action)], dtype=np.int64))
        self._last_image = self._batch.camera_image(0)
        observation = self._batch.observation(0)
        if self.render_mode == "human":
            self.render()
        return observation, float(rewards[0]), bool(terminated[0]), bool(truncated[0]), self._batch.info(0)

    def render(self) -> np.ndarray | None:
        """rgb_array: the top-down view of `trackrl replay --video` (480x640x3 uint8: the track around the car, its
        trail by speed, race time, speed, the keys of the last action) with the agent's 64x64 camera inset.
        human: the same frame in a window (a display is required)."""
        if self.render_mode is None:
            return None
        from trackrl.viz.gym_view import RaceView, Window  # lazy: drawing lives above sim, in trackrl.viz

        if self._view is None:
            self._view = RaceView(self._batch.vec)
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

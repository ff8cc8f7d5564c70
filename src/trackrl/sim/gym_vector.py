"""`RaceVectorEnv`: N cars of one `VecRaceEnv` as a native `gymnasium.vector.VectorEnv` (the fast path).

`gym.make_vec("trackrl/Race-v0", num_envs=N, vectorization_mode="vector_entry_point", **RaceEnv kwargs)` builds it.
Car i behaves exactly like a single `RaceEnv` reset with seed + i (Gymnasium's seeding of vector envs) and stepped
alike; the spaces are the batched single spaces, the info holds every key of RaceEnv with its `_key` mask.

Autoreset (`autoreset_mode`, declared in metadata["autoreset_mode"]), as Gymnasium's SyncVectorEnv does it:
- NEXT_STEP (default): the step after an episode ends resets that car instead (reward 0, not done, its action ignored);
- SAME_STEP: a car that ends is reset within the step; its last observation and info are in
  info["final_obs"] / info["final_info"] (masks "_final_obs" / "_final_info"), the SB3 convention.
`max_episode_steps` (from the spec, 6000 = the race cutoff) truncates like Gymnasium's TimeLimit.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from gymnasium import spaces
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from trackrl.config import EnvironmentConfig, RewardsConfig
from trackrl.errors import UserError
from trackrl.sim.actions import N_ACTIONS
from trackrl.sim.gym_env import INFO_KEYS, ProgressReward, RaceBatch, reset_start
from trackrl.sim.track import Track


class RaceVectorEnv(VectorEnv):
    """N cars on one track, stepped together by one `VecRaceEnv` (arguments as `RaceEnv`, plus the vector ones).

    Args:
        num_envs: number of cars.
        autoreset_mode: AutoresetMode.NEXT_STEP (default) or SAME_STEP (or their string values).
        max_episode_steps: truncate an episode after this many steps (None: only the env's own cutoffs).
        The rest: see `trackrl.sim.gym_env.RaceEnv`.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": [], "autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(
        self,
        num_envs: int = 8,
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
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
        max_episode_steps: int | None = None,
        render_mode: str | None = None,
    ) -> None:
        if render_mode is not None:
            raise UserError(f"RaceVectorEnv does not render (render_mode={render_mode!r}); use RaceEnv for frames")
        try:
            self.autoreset_mode = AutoresetMode(autoreset_mode)
        except ValueError:
            raise UserError(f"autoreset_mode must be next_step or same_step, got {autoreset_mode!r}") from None
        if self.autoreset_mode == AutoresetMode.DISABLED:
            raise UserError("autoreset_mode: DISABLED is not supported; use next_step or same_step")
        if max_episode_steps is not None and max_episode_steps < 1:
            raise UserError(f"max_episode_steps must be >= 1 or None, got {max_episode_steps}")
        self.metadata = {**self.metadata, "autoreset_mode": self.autoreset_mode}
        self.render_mode = None
        self.num_envs = num_envs
        self.max_episode_steps = max_episode_steps
        self._batch = RaceBatch(num_envs, track, road_width_m, env_config, rewards_config, reward, progress_reward,
                                start, use_image, normalize_floats, image_size_px)  # fmt: skip
        self.track = self._batch.track
        self.single_observation_space = self._batch.single_observation_space
        self.single_action_space = spaces.Discrete(N_ACTIONS)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self._episode_steps = np.zeros(num_envs, dtype=np.int64)
        self._autoreset = np.zeros(num_envs, dtype=bool)
        self._seeded = np.zeros(num_envs, dtype=bool)  # a car without a seed yet gets a fresh random generator

    def reset(
        self, *, seed: int | list[int | None] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        """Reset every car (or those in options["reset_mask"]); seed: int (car i gets seed + i) or one per car."""
        super().reset(seed=seed if isinstance(seed, int) else None)
        seeds = self._per_car_seeds(seed)
        mask = np.ones(self.num_envs, dtype=bool)
        if options is not None and "reset_mask" in options:
            mask = np.asarray(options["reset_mask"])
            if mask.shape != (self.num_envs,) or mask.dtype != np.bool_ or not mask.any():
                raise ValueError(f"options['reset_mask'] must be a bool array of shape ({self.num_envs},), not all "
                                 "False")  # fmt: skip
        cars = np.flatnonzero(mask)
        for car in cars:
            if seeds[car] is not None or not self._seeded[car]:
                self._batch.seed_car(int(car), seeding.np_random(seeds[car])[0])
                self._seeded[car] = True
        start = reset_start(options, self._batch.start, known=("start", "reset_mask"))
        self._batch.reset_cars(cars, [start] * cars.size)
        self._episode_steps[cars] = 0
        self._autoreset[cars] = False
        return self._batch.observations(), self._masked_infos(self._batch.infos(), mask)

    def _per_car_seeds(self, seed: int | list[int | None] | None) -> list[int | None]:
        if seed is None:
            return [None] * self.num_envs
        if isinstance(seed, int):
            return [seed + i for i in range(self.num_envs)]
        if len(seed) != self.num_envs:
            raise ValueError(f"seed: a list needs one seed per env ({self.num_envs}), got {len(seed)}")
        return list(seed)

    def step(self, actions: np.ndarray) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        actions = np.asarray(actions)
        # VecRaceEnv.step checks the shape, dtype and range of the actions.
        # NEXT_STEP: these cars were done at the last step.
        resetting = np.flatnonzero(self._autoreset) if self._autoreset.any() else np.empty(0, dtype=np.int64)
        rewards, terminated, truncated = self._batch.step(actions)
        self._episode_steps += 1
        if self.max_episode_steps is not None:
            out_of_time = (self._episode_steps >= self.max_episode_steps) & ~terminated
            if out_of_time.any():
                self._batch.mark_done(np.flatnonzero(out_of_time))
                truncated |= out_of_time
        infos: dict[str, Any] = {}
        if resetting.size:
            self._batch.reset_cars(resetting, [self._batch.start] * resetting.size)
            self._episode_steps[resetting] = 0
            rewards[resetting], terminated[resetting], truncated[resetting] = 0.0, False, False
        done = terminated | truncated
        if self.autoreset_mode == AutoresetMode.SAME_STEP and done.any():
            infos = self._final_infos(done)
            ended = np.flatnonzero(done)
            self._batch.reset_cars(ended, [self._batch.start] * ended.size)
            self._episode_steps[ended] = 0
        else:
            self._autoreset = done
        infos.update(self._masked_infos(self._batch.infos(), np.ones(self.num_envs, dtype=bool)))
        return self._batch.observations(), rewards, terminated, truncated, infos

    def _final_infos(self, done: np.ndarray) -> dict[str, Any]:
        """SAME_STEP: the last observation (object array, one per car, None if not done) and info of ended cars."""
        final_obs = np.full(self.num_envs, None, dtype=object)
        for car in np.flatnonzero(done):
            final_obs[car] = self._batch.observation(int(car))
        return {
            "final_obs": final_obs,
            "_final_obs": done.copy(),
            "final_info": self._masked_infos(self._batch.infos(), done),
            "_final_info": done.copy(),
        }

    @staticmethod
    def _masked_infos(infos: dict[str, np.ndarray], mask: np.ndarray) -> dict[str, np.ndarray]:
        """Gymnasium's vector info: each key's array (zero where the mask is False) and its `_key` mask."""
        out: dict[str, np.ndarray] = {}
        everyone = bool(mask.all())
        for key in INFO_KEYS:
            out[key] = infos[key] if everyone else np.where(mask, infos[key], np.zeros_like(infos[key]))
            out[f"_{key}"] = mask.copy()
        return out

"""`RaceSB3VecEnv`: the native vector env as a Stable-Baselines3 `VecEnv` (needs the `examples` extra).

SB3 cannot take a `gymnasium.vector.VectorEnv` through its own wrappers (its algorithms expect SB3's `VecEnv`:
observations only from `reset()`, one `dones` array, a list of info dicts; DLR-RM/stable-baselines3#1745), so this
thin adapter runs `RaceVectorEnv` with SAME_STEP autoreset and translates: `dones = terminated | truncated`,
info["terminal_observation"] and info["TimeLimit.truncated"] as SB3's DummyVecEnv writes them. Wrap it in
`VecMonitor` for episode statistics.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from gymnasium.vector import AutoresetMode
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices, VecEnvObs, VecEnvStepReturn

from trackrl.sim.gym_env import INFO_KEYS
from trackrl.sim.gym_vector import RaceVectorEnv


class RaceSB3VecEnv(VecEnv):
    """N cars of one VecRaceEnv as an SB3 VecEnv; keyword arguments as `RaceVectorEnv` (autoreset is SAME_STEP)."""

    def __init__(self, num_envs: int = 8, **kwargs: Any) -> None:
        kwargs.setdefault("max_episode_steps", None)
        self.env = RaceVectorEnv(num_envs, autoreset_mode=AutoresetMode.SAME_STEP, **kwargs)
        super().__init__(num_envs, self.env.single_observation_space, self.env.single_action_space)
        self._actions = np.zeros(num_envs, dtype=np.int64)

    def reset(self) -> VecEnvObs:
        seeds = self._seeds if any(seed is not None for seed in self._seeds) else None
        start = {option.get("start") for option in self._options if option}
        options = {"start": start.pop()} if len(start) == 1 else None
        observations, infos = self.env.reset(seed=seeds, options=options)
        self.reset_infos = self._info_list(infos, np.ones(self.num_envs, dtype=bool))
        self._reset_seeds()
        self._reset_options()
        return observations

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions, dtype=np.int64).reshape(self.num_envs)

    def step_wait(self) -> VecEnvStepReturn:
        observations, rewards, terminated, truncated, infos = self.env.step(self._actions)
        dones = terminated | truncated
        # SB3: the info of a finished episode is its last one (DummyVecEnv keeps the step's info, then resets).
        last_infos = infos.get("final_info", {})
        merged = {key: np.where(dones, last_infos[key], infos[key]) if last_infos else infos[key] for key in INFO_KEYS}
        info_list = self._info_list(merged, np.ones(self.num_envs, dtype=bool))
        for car in range(self.num_envs):
            info_list[car]["TimeLimit.truncated"] = bool(truncated[car] and not terminated[car])
            if dones[car]:
                info_list[car]["terminal_observation"] = infos["final_obs"][car]
        return observations, rewards.astype(np.float32), dones, info_list

    @staticmethod
    def _info_list(infos: dict[str, np.ndarray], mask: np.ndarray) -> list[dict[str, Any]]:
        return [{key: infos[key][car].item() for key in INFO_KEYS} if mask[car] else {} for car in range(len(mask))]

    def close(self) -> None:
        self.env.close()

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        """The attribute of the one underlying vector env, repeated per requested env (all cars share it)."""
        return [getattr(self.env, attr_name) for _ in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        setattr(self.env, attr_name, value)

    def env_method(self, method_name: str, *method_args: Any, indices: VecEnvIndices = None, **kwargs: Any) -> list:
        return [getattr(self.env, method_name)(*method_args, **kwargs) for _ in self._get_indices(indices)]

    def env_is_wrapped(self, wrapper_class: type, indices: VecEnvIndices = None) -> list[bool]:
        return [False for _ in self._get_indices(indices)]

    def get_images(self) -> Sequence[np.ndarray | None]:
        return [None for _ in range(self.num_envs)]

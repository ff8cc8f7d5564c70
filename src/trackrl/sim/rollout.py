"""Single-car deterministic re-simulation of an action sequence (used to replay saved best runs)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from trackrl.config import EnvironmentConfig, RewardsConfig
from trackrl.sim.env import VecRaceEnv
from trackrl.sim.track import Track


@dataclass
class SimulatedRace:
    race_time_ms: int  # finish time if finished, else the env's race time when the actions ran out or a cutoff hit
    finished: bool
    positions_m: np.ndarray  # (T+1, 3): the start, then the position after each action
    rewards: np.ndarray  # (T,) float32
    n_actions: int  # T: actions applied (stops early when the race ends)


def simulate_actions(
    track: Track,
    actions: Sequence[int],
    env_config: EnvironmentConfig | None = None,
    rewards_config: RewardsConfig | None = None,
) -> SimulatedRace:
    env = VecRaceEnv(track, 1, env_config=env_config, rewards_config=rewards_config, render_images=False)
    env.reset()
    positions = [np.array([track.centerline_m[0, 0], track.centerline_m[0, 1], track.centerline_m[0, 2]])]
    rewards: list[float] = []
    race_time_ms, finished = 0, False
    for action in actions:
        result = env.step(np.array([int(action)], dtype=np.int64))
        positions.append(result.positions_m[0])
        rewards.append(float(result.rewards[0]))
        race_time_ms, finished = int(result.race_time_ms[0]), bool(result.finished[0])
        if result.terminated[0] or result.truncated[0]:
            break
    return SimulatedRace(
        race_time_ms=race_time_ms,
        finished=finished,
        positions_m=np.asarray(positions),
        rewards=np.asarray(rewards, dtype=np.float32),
        n_actions=len(rewards),
    )

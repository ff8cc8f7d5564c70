"""Single-car deterministic re-simulation of an action sequence (used to replay and draw saved best runs)."""

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
    headings_rad: np.ndarray  # (T+1,) planar heading ψ, direction (cos ψ, sin ψ) in the x-z plane
    speeds_mps: np.ndarray  # (T+1,) planar speed
    progress_m: np.ndarray  # (T+1,) distance along the centre line
    race_times_ms: np.ndarray  # (T+1,) race clock after each action (0 at the start)
    images: np.ndarray | None  # (T+1, H, W) uint8 agent camera views, only with record_images=True


def simulate_actions(
    track: Track,
    actions: Sequence[int],
    env_config: EnvironmentConfig | None = None,
    rewards_config: RewardsConfig | None = None,
    record_images: bool = False,
) -> SimulatedRace:
    env = VecRaceEnv(track, 1, env_config=env_config, rewards_config=rewards_config, render_images=record_images)
    start_images, _ = env.reset()
    positions = [np.array([track.centerline_m[0, 0], track.centerline_m[0, 1], track.centerline_m[0, 2]])]
    headings, speeds, progress, clock = [float(env.headings_rad[0])], [0.0], [0.0], [0]
    images = [start_images[0, 0]]
    rewards: list[float] = []
    race_time_ms, finished = 0, False
    for action in actions:
        result = env.step(np.array([int(action)], dtype=np.int64))
        positions.append(result.positions_m[0])
        headings.append(float(env.headings_rad[0]))
        speeds.append(float(result.speed_mps[0]))
        progress.append(float(result.progress_m[0]))
        rewards.append(float(result.rewards[0]))
        if record_images:
            images.append(result.images[0, 0])
        race_time_ms, finished = int(result.race_time_ms[0]), bool(result.finished[0])
        clock.append(race_time_ms)
        if result.terminated[0] or result.truncated[0]:
            break
    return SimulatedRace(
        race_time_ms=race_time_ms,
        finished=finished,
        positions_m=np.asarray(positions),
        rewards=np.asarray(rewards, dtype=np.float32),
        n_actions=len(rewards),
        headings_rad=np.asarray(headings),
        speeds_mps=np.asarray(speeds),
        progress_m=np.asarray(progress),
        race_times_ms=np.asarray(clock, dtype=np.int64),
        images=np.stack(images) if record_images else None,
    )

"""Stable-Baselines3 PPO on trackrl's native vector env (needs the `examples` extra: pip install -e ".[examples]").

SB3 takes its own VecEnv, not a Gymnasium VectorEnv, so the N cars of one VecRaceEnv come through the thin adapter
`trackrl.sim.sb3_vec_env.RaceSB3VecEnv`, and VecMonitor records the episodes. Floats only, normalised; the env's
default "progress" reward. Prints SB3's fps, the time to the first finish and the best race time.

Run: python examples/sb3_ppo.py --track easy --total-timesteps 300000
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import VecMonitor

from trackrl.sim.sb3_vec_env import RaceSB3VecEnv


class RaceTimes(BaseCallback):
    """Logs finished races (SB3's info dicts carry the env's race_time_ms and finished)."""

    def __init__(self) -> None:
        super().__init__()
        self.start = time.perf_counter()
        self.first_finish_s: float | None = None
        self.best_race_time_ms: int | None = None
        self.finished: list[bool] = []

    def _on_step(self) -> bool:
        for info, done in zip(self.locals["infos"], self.locals["dones"], strict=True):
            if not done:
                continue
            self.finished.append(bool(info["finished"]))
            if info["finished"]:
                if self.first_finish_s is None:
                    self.first_finish_s = time.perf_counter() - self.start
                time_ms = int(info["race_time_ms"])
                self.best_race_time_ms = time_ms if self.best_race_time_ms is None else min(self.best_race_time_ms,
                                                                                             time_ms)  # fmt: skip
        self.logger.record("race/finish_rate_last_100", float(np.mean(self.finished[-100:])) if self.finished else 0.0)
        if self.best_race_time_ms is not None:
            self.logger.record("race/best_race_time_s", self.best_race_time_ms / 1000)
        return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--track", default="easy")
    parser.add_argument("--num-envs", type=int, default=32)
    parser.add_argument("--total-timesteps", type=int, default=300_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(1)
    env = VecMonitor(RaceSB3VecEnv(args.num_envs, track=args.track, use_image=False, normalize_floats=True))
    env.seed(args.seed)
    model = PPO("MlpPolicy", env, n_steps=64, batch_size=512, n_epochs=4, learning_rate=1e-3, ent_coef=0.01,
                seed=args.seed, verbose=1)  # fmt: skip
    callback = RaceTimes()
    start = time.perf_counter()
    model.learn(total_timesteps=args.total_timesteps, callback=callback)
    fps = args.total_timesteps / (time.perf_counter() - start)
    first = "-" if callback.first_finish_s is None else f"{callback.first_finish_s:.0f} s"
    best = "-" if callback.best_race_time_ms is None else f"{callback.best_race_time_ms / 1000:.2f} s"
    print(f"{fps:,.0f} env steps/s (SB3 PPO, learning included); first finish after {first}; best race time {best}")


if __name__ == "__main__":
    main()

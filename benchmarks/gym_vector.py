"""Gymnasium vector throughput on one core: steps/s of random actions through
`make_vec("trackrl/Race-v0", N, vectorization_mode="vector_entry_point")` beside Gymnasium's SyncVectorEnv of N single
envs and the raw `VecRaceEnv` (the baseline), at N = 8, 64, 256, in the same run.

Goal (issue 17): the vector entry point >= 90 % of raw VecRaceEnv and >= 5x SyncVectorEnv at N = 64.
Same work everywhere: 64x64 image + floats (or floats only with --no-image), mostly-forward random actions drawn
in advance, finished cars reset (autoreset for the Gymnasium envs).
Run: .venv/bin/python benchmarks/gym_vector.py [--track a01] [--seconds 2] [--sizes 8,64,256] [--no-image]
"""

from __future__ import annotations

import os

for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[variable] = "1"

import argparse  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402

import gymnasium  # noqa: E402
import numpy as np  # noqa: E402

import trackrl  # noqa: E402, F401  (registers trackrl/Race-v0)
from trackrl.sim.actions import N_ACTIONS  # noqa: E402
from trackrl.sim.env import VecRaceEnv  # noqa: E402
from trackrl.sim.track import load_track  # noqa: E402

ACTION_BLOCK = 256  # distinct action rows, cycled


def pin_to_one_core() -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})


def random_actions(num_envs: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    probabilities = np.full(N_ACTIONS, 0.3 / (N_ACTIONS - 3))
    probabilities[:3] = 0.7 / 3  # mostly accelerate so that cars drive the track instead of idling at the start
    return rng.choice(N_ACTIONS, size=(ACTION_BLOCK, num_envs), p=probabilities).astype(np.int64)


def steps_per_second(step: Callable[[np.ndarray], None], actions: np.ndarray, seconds: float) -> float:
    step(actions[0])  # warm-up (numba caches are loaded here)
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        step(actions[steps % ACTION_BLOCK])
        steps += 1
    return steps * actions.shape[1] / (time.perf_counter() - start)


def raw_env(track_name: str, num_envs: int, use_image: bool) -> Callable[[np.ndarray], None]:
    env = VecRaceEnv(load_track(track_name), num_envs, render_images=use_image)

    def step(actions: np.ndarray) -> None:
        result = env.step(actions)
        done = np.flatnonzero(result.terminated | result.truncated)
        if done.size:
            env.reset(done)

    return step


def gym_vector_env(track_name: str, num_envs: int, use_image: bool, mode: str) -> Callable[[np.ndarray], None]:
    env = gymnasium.make_vec("trackrl/Race-v0", num_envs=num_envs, vectorization_mode=mode, track=track_name,
                             use_image=use_image)  # fmt: skip
    env.reset(seed=0)
    return lambda actions: env.step(actions) and None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--track", default="a01")
    parser.add_argument("--seconds", type=float, default=2.0, help="per measurement")
    parser.add_argument("--sizes", default="8,64,256")
    parser.add_argument("--no-image", action="store_true", help="floats only (use_image=False)")
    args = parser.parse_args()
    pin_to_one_core()
    use_image = not args.no_image
    print(f"track {args.track}, {'image + floats' if use_image else 'floats only'}, one core, steps/s")
    print(f"{'N':>5} {'raw VecRaceEnv':>15} {'vector_entry_point':>19} {'SyncVectorEnv':>14} {'native/raw':>11} "
          f"{'native/sync':>12}")  # fmt: skip
    for num_envs in [int(size) for size in args.sizes.split(",")]:
        actions = random_actions(num_envs)
        raw = steps_per_second(raw_env(args.track, num_envs, use_image), actions, args.seconds)
        native = steps_per_second(gym_vector_env(args.track, num_envs, use_image, "vector_entry_point"), actions,
                                  args.seconds)  # fmt: skip
        sync = steps_per_second(gym_vector_env(args.track, num_envs, use_image, "sync"), actions, args.seconds)
        print(f"{num_envs:>5} {raw:>15,.0f} {native:>19,.0f} {sync:>14,.0f} {native / raw:>10.0%} "
              f"{native / sync:>11.1f}x")  # fmt: skip


if __name__ == "__main__":
    main()

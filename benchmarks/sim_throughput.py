"""Simulator throughput on one core: env steps/s (one step = one 50 ms action: 5 physics ticks + image + floats).

Measures trackrl's VecRaceEnv at batch sizes 1, 16, 64, 256 (64x64 image + floats, random actions, finished
cars reset) and Gymnasium's CarRacing-v3 (discrete actions) in the same run, and prints the ratio.
Run: .venv/bin/python benchmarks/sim_throughput.py [--track a01] [--seconds 3]
"""

from __future__ import annotations

import os

for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[variable] = "1"

import argparse  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from trackrl.sim.actions import N_ACTIONS  # noqa: E402
from trackrl.sim.env import VecRaceEnv  # noqa: E402
from trackrl.sim.track import load_track  # noqa: E402


def pin_to_one_core() -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})


def trackrl_steps_per_second(track_name: str, batch_size: int, seconds: float) -> float:
    env = VecRaceEnv(load_track(track_name), batch_size)
    rng = np.random.default_rng(0)
    # Mostly accelerate so that cars drive the track instead of idling at the start.
    probabilities = np.full(N_ACTIONS, 0.3 / (N_ACTIONS - 3))
    probabilities[:3] = 0.7 / 3
    env.step(np.zeros(batch_size, dtype=np.int64))  # warm-up (numba caches are loaded here)
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        result = env.step(rng.choice(N_ACTIONS, size=batch_size, p=probabilities))
        done = np.flatnonzero(result.terminated | result.truncated)
        if done.size:
            env.reset(done)
        steps += batch_size
    return steps / (time.perf_counter() - start)


def car_racing_steps_per_second(seconds: float) -> float | str:
    try:
        import gymnasium

        env = gymnasium.make("CarRacing-v3", continuous=False)
    except Exception as error:  # box2d missing: pip install "gymnasium[box2d]" (extra `bench`)
        return f"skipped: {type(error).__name__}: {error}"
    env.reset(seed=0)
    env.action_space.seed(0)
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        steps += 1
        if terminated or truncated:
            env.reset()
    env.close()
    return steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--track", default="a01")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--batch-sizes", default="1,16,64,256")
    args = parser.parse_args()
    pin_to_one_core()
    results = {}
    for batch_size in [int(b) for b in args.batch_sizes.split(",")]:
        results[batch_size] = trackrl_steps_per_second(args.track, batch_size, args.seconds)
        print(f"trackrl VecRaceEnv  batch {batch_size:4d}: {results[batch_size]:12,.0f} env steps/s")
    baseline = car_racing_steps_per_second(args.seconds)
    best_batch = max(results, key=results.get)
    if isinstance(baseline, str):
        print(f"Gymnasium CarRacing-v3: {baseline}")
        return
    print(f"Gymnasium CarRacing-v3 (discrete): {baseline:12,.0f} env steps/s")
    print(f"ratio best trackrl (batch {best_batch}) / CarRacing-v3: {results[best_batch] / baseline:,.0f}x")


if __name__ == "__main__":
    main()

"""Cost of one learner step against the network passes its maths needs, and transitions learned per second.

    .venv/bin/python benchmarks/learner_step.py                                  # all four configs, CPU, 1 thread
    .venv/bin/python benchmarks/learner_step.py --before-src /tmp/old/src        # + the same run on older code
    .venv/bin/python benchmarks/learner_step.py --device cuda --threads default

A learner step is ``Learner.learn``: PER/uniform sampling → NoisyNet resampling → target → loss → backward → clip →
AdamW → target update → priority update. Its floor is the network work the loss needs:
    online forward + backward over s_t (N quantiles)
    + target forward over s_{t+n}: N' quantiles that score a* and, for the max target, K more that choose it (IQN)
    + for Munchausen, a target forward over s_t (N' quantiles, for the log-policy bonus).
These passes are timed on their own (one call each, B rows, same batch) and
    ratio = step time / (online forward+backward + target forwards),
so ratio - 1 is what the machinery costs (sampling, optimiser, target update, priorities, copies); target <= 1.15.
Transitions learned per second = batch size / step time; the float pair's BTR/baseline share should be >= 85%.

Configs: "baseline" = the config defaults (classic 4-conv image head, max target, uniform replay, soft update) and
"btr" = baseline + IMPALA x2, adaptive max-pool 6, spectral norm, Munchausen, LayerNorm, NoisyLinear, PER, both at
--batch-size; "a01" and "a01_btr" = configs/a01.yaml and configs/a01_btr.yaml (float-only, their own batch of 64).
--before-src DIR runs the same measurements first on the trackrl package under DIR (e.g. a `git worktree` of an
older commit) in a subprocess, so that before and after are measured in one run. Numbers on a shared machine are
noisy: each time is the median of --repeats rounds, each round times every config's step and passes in turn, so
that a drift of the machine's speed reaches all configs alike (each timing spans
>= ~25 ms: several calls at batch 64), and with one CPU thread the clock is the process's CPU time
(time.process_time), not the wall clock. Before and after run one after the other: on a loaded machine compare the
ratios (each measured against its own passes) rather than the milliseconds.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from trackrl.agent import Learner
from trackrl.config import TrackRLConfig, load_config
from trackrl.replay import ReplayBuffer

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"
FLOAT_PAIR = ("a01", "a01_btr")
GAMMA, MINI_RACE_ACTIONS = 0.99, 140


def make_config(name: str, batch_size: int) -> TrackRLConfig:
    if name in FLOAT_PAIR:
        return load_config(CONFIG_DIR / f"{name}.yaml")
    config = TrackRLConfig()
    config.training.batch_size = batch_size
    if name == "btr":
        cnn = config.nn.vis.cnn
        cnn.use_impala_cnn, cnn.impala_model_size = True, 2
        cnn.use_adaptive_maxpool, cnn.adaptive_maxpool_size = True, 6
        cnn.use_spectral_norm = True
        config.btr.use_munchausen = True
        config.btr.use_layer_norm = True
        config.btr.use_noisy_linear = True
        config.memory.use_prioritized_replay = True
    return config


def filled_buffer(config: TrackRLConfig, n_floats: int, n_transitions: int) -> ReplayBuffer:
    rng = np.random.default_rng(0)
    shape = (1, config.nn.image_height_px, config.nn.image_width_px) if config.nn.use_image else None
    memory = config.memory.model_dump()
    accepted = inspect.signature(ReplayBuffer).parameters  # older code lacks some settings
    settings = {key: memory[key] for key in memory if key in accepted}
    buffer = ReplayBuffer(
        n_transitions, n_floats, shape, config.training.n_steps, seed=0,
        prioritized=config.memory.use_prioritized_replay, **settings,
    )  # fmt: skip
    episode_length = 500
    while len(buffer) < n_transitions:
        images = rng.integers(0, 256, (episode_length + 1, *shape), dtype=np.uint8) if shape else None
        floats = rng.standard_normal((episode_length + 1, n_floats)).astype(np.float32)
        actions = rng.integers(0, 12, episode_length)
        buffer.add_episode(images, floats, actions, rng.standard_normal(episode_length) * 0.04, terminated=False)
    return buffer


def timed_ms(function: Callable[[], object], device: str, clock: Callable[[], float]) -> float:
    if device == "cuda":
        torch.cuda.synchronize()
    start = clock()
    function()
    if device == "cuda":
        torch.cuda.synchronize()
    return (clock() - start) * 1000


def prepare(name: str, batch_size: int, device: str, clock: Callable[[], float]) -> tuple[dict, int, int]:
    """One config's timed functions (the step and its passes), calls per timing, and its batch size."""
    from trackrl.sim.observation import float_input_dim

    config = make_config(name, batch_size)
    batch_size = config.training.batch_size
    n_floats = int(float_input_dim(config.environment))
    learner = Learner(config, n_floats, np.zeros(n_floats), np.ones(n_floats), device=device, seed=0)
    buffer = filled_buffer(config, n_floats, n_transitions=max(8 * batch_size, 20_000 if name in FLOAT_PAIR else 0))

    batch = buffer.sample(batch_size, GAMMA, MINI_RACE_ACTIONS)

    def tensor(array: np.ndarray | None) -> torch.Tensor | None:
        return None if array is None else torch.from_numpy(array).to(device)

    images, floats, actions = tensor(batch.state_images), tensor(batch.state_floats), tensor(batch.actions)
    next_images, next_floats = tensor(batch.next_images), tensor(batch.next_floats)
    online, target = learner.online_network, learner.target_network
    n_online, n_select = config.nn.iqn_n, config.nn.iqn_k
    munchausen = config.btr.use_munchausen

    def forward_backward() -> None:
        quantiles, _ = online(images, floats, n_online)
        chosen = quantiles.gather(2, actions[:, None, None].expand(-1, n_online, 1))
        online.zero_grad(set_to_none=True)
        chosen.square().mean().backward()

    def target_forwards() -> None:
        with torch.no_grad():
            target(next_images, next_floats, n_online if munchausen else n_online + n_select)
            if munchausen:
                target(images, floats, n_online)

    def learner_step() -> None:
        learner.learn(buffer, 1e-4, GAMMA, MINI_RACE_ACTIONS)

    passes: dict[str, Callable[[], None]] = {"step": learner_step, "fwd_bwd": forward_backward,
                                             "target": target_forwards}  # fmt: skip
    for function in passes.values():  # warm-up: allocations, numba, cuDNN autotuning
        function()
    # Enough calls per timing that one timing spans >= ~25 ms of the step (a few ms at batch 64), so clock
    # granularity and one-off interruptions weigh little; every pass is called as often.
    step_s = min(timed_ms(learner_step, device, clock) for _ in range(3)) / 1000
    calls_per_round = max(1, min(50, round(0.025 / max(step_s, 1e-6))))
    return passes, calls_per_round, batch_size


def measure_table(configs: list[str], batch_size: int, repeats: int, device: str, threads: str) -> list[dict]:
    """Every config's step and passes, the configs interleaved round by round.

    A shared VM's speed drifts by tens of percent within minutes; timing one config after the other would put that
    drift into the float pair's share. Interleaved, each round times every config at about the same moment.
    """
    torch.set_num_threads(torch.get_num_threads() if threads == "default" else int(threads))
    # One CPU thread: count this process's CPU time, which other jobs on a shared machine disturb far less than
    # the wall clock. Several threads or a GPU: the wall clock.
    clock = time.process_time if device == "cpu" and torch.get_num_threads() == 1 else time.perf_counter
    prepared = {name: prepare(name, batch_size, device, clock) for name in configs}
    samples = {name: {key: [] for key in passes} for name, (passes, _, _) in prepared.items()}
    for _ in range(repeats):
        for name, (passes, calls, _) in prepared.items():
            for key, function in passes.items():
                samples[name][key].append(timed_ms(lambda f=function, n=calls: [f() for _ in range(n)], device, clock)
                                          / calls)  # fmt: skip
    rows = []
    for name, (_, _, batch) in prepared.items():
        row: dict = {key: statistics.median(values) for key, values in samples[name].items()}
        row["batch"], row["config"] = batch, name
        rows.append(row)
    return rows


def print_table(title: str, rows: list[dict]) -> None:
    print(f"\n{title}")
    print(f"{'config':<10}{'batch':>6}{'step ms':>10}{'fwd+bwd':>10}{'target':>9}{'ratio':>7}{'trans/s':>10}")
    for row in rows:
        ratio = row["step"] / (row["fwd_bwd"] + row["target"])
        per_second = row["batch"] / row["step"] * 1000
        print(f"{row['config']:<10}{row['batch']:>6}{row['step']:>10.2f}{row['fwd_bwd']:>10.2f}{row['target']:>9.2f}"
              f"{ratio:>7.2f}{per_second:>10.0f}")  # fmt: skip
    by_name = {row["config"]: row for row in rows}
    if all(name in by_name for name in FLOAT_PAIR):
        baseline, btr = (by_name[name] for name in FLOAT_PAIR)
        share = (btr["batch"] / btr["step"]) / (baseline["batch"] / baseline["step"])
        print(f"float pair: a01_btr learns {share:.0%} of a01's transitions per second (target >= 85%)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-size", type=int, default=512, help="for baseline/btr (a01 pair: its own, 64)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--threads", default="1", help="torch threads; 'default' = as is")
    parser.add_argument("--configs", default="baseline,btr,a01,a01_btr")
    parser.add_argument("--before-src", type=Path, help="a src/ folder holding an older trackrl to measure first")
    parser.add_argument("--raw", action="store_true", help=argparse.SUPPRESS)  # subprocess mode: print rows
    args = parser.parse_args()
    configs = args.configs.split(",")

    if args.raw:
        print(json.dumps(measure_table(configs, args.batch_size, args.repeats, args.device, args.threads)))
        return
    print(f"device={args.device} threads={args.threads} repeats={args.repeats} torch={torch.__version__}")
    if args.before_src is not None:
        command = [sys.executable, __file__, "--raw", *sys.argv[1:]]
        before_index = command.index("--before-src")
        del command[before_index : before_index + 2]
        environment = {**os.environ, "PYTHONPATH": str(args.before_src.resolve())}
        output = subprocess.run(command, env=environment, check=True, capture_output=True, text=True).stdout
        print_table(f"before ({args.before_src})", json.loads(output.strip().splitlines()[-1]))
    import trackrl

    print_table(f"after ({Path(trackrl.__file__).parent.parent})", measure_table(
        configs, args.batch_size, args.repeats, args.device, args.threads))  # fmt: skip


if __name__ == "__main__":
    main()

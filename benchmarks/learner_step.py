"""Milliseconds per learner step (sample → target → loss → backward → clip → AdamW → target update → priorities)
against a pure forward + backward of the same online network on the same batch, measured in the same run.

    .venv/bin/python benchmarks/learner_step.py                 # batch 512, CPU, 1 thread and the default threads
    .venv/bin/python benchmarks/learner_step.py --device cuda --threads default

Configs: "baseline" = the config defaults (classic 4-conv head, max target, uniform replay, soft target update);
"btr" = IMPALA x2 + adaptive max-pool 6 + spectral norm + Munchausen + LayerNorm + NoisyLinear + PER.
The ratio learner/forward+backward is the overhead of the learner machinery (target net pass(es), sampling, optimiser,
target update, priorities); target <= 1.3. Its floor is 1 + (target-net forward rows) x (forward share of forward +
backward, about 1/3 here): ~1.3 for the max target (B rows), ~1.7 for Munchausen, which needs the target net on both
s_t and s_{t+n} (2B rows); the rest of the machinery costs a few ms.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from trackrl.agent import Learner
from trackrl.config import TrackRLConfig
from trackrl.replay import ReplayBuffer

LINESIGHT_FLOAT_INPUT_DIM = 184


def float_input_dim(config: TrackRLConfig) -> int:
    try:  # the simulator's layout if it is importable; Linesight's dimension otherwise
        from trackrl.sim.observation import float_input_dim as sim_float_input_dim

        return int(sim_float_input_dim(config.environment))
    except Exception:
        return LINESIGHT_FLOAT_INPUT_DIM


def make_config(name: str, batch_size: int) -> TrackRLConfig:
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
    shape = (1, config.nn.image_height_px, config.nn.image_width_px)
    buffer = ReplayBuffer(
        n_transitions, n_floats, shape, config.training.n_steps, seed=0,
        prioritized=config.memory.use_prioritized_replay, prio_alpha=config.memory.prio_alpha,
        prio_beta=config.memory.prio_beta, prio_epsilon=config.memory.prio_epsilon,
    )
    episode_length = 500
    while len(buffer) < n_transitions:
        images = rng.integers(0, 256, (episode_length + 1, *shape), dtype=np.uint8)
        floats = rng.standard_normal((episode_length + 1, n_floats)).astype(np.float32)
        actions = rng.integers(0, 12, episode_length)
        buffer.add_episode(images, floats, actions, rng.standard_normal(episode_length) * 0.01, terminated=False)
    return buffer


def time_per_call_ms(function, repeats: int, device: str) -> float:
    function()  # warm-up (allocations, cuDNN autotuning)
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        function()
    if device == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / repeats * 1000


def benchmark(name: str, batch_size: int, repeats: int, device: str) -> tuple[float, float]:
    config = make_config(name, batch_size)
    n_floats = float_input_dim(config)
    learner = Learner(config, n_floats, np.zeros(n_floats), np.ones(n_floats), device=device, seed=0)
    buffer = filled_buffer(config, n_floats, n_transitions=max(4 * batch_size, 2048))
    gamma, duration = 0.999, 140

    def learner_step() -> None:
        learner.learn(buffer, 1e-4, gamma, duration)

    batch = buffer.sample(batch_size, gamma, duration)
    images = torch.from_numpy(batch.state_images).to(device)
    floats = torch.from_numpy(batch.state_floats).to(device)
    actions = torch.from_numpy(batch.actions).to(device)
    network, n_quantiles = learner.online_network, config.nn.iqn_n

    def forward_backward() -> None:
        quantiles, _ = network(images, floats, n_quantiles)
        chosen = quantiles.gather(2, actions[:, None, None].expand(-1, n_quantiles, 1))
        network.zero_grad(set_to_none=True)
        chosen.square().mean().backward()

    learner_ms = time_per_call_ms(learner_step, repeats, device)
    forward_backward_ms = time_per_call_ms(forward_backward, repeats, device)
    return learner_ms, forward_backward_ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--threads", default="1,default", help="comma list of torch thread counts; 'default' = as is")
    parser.add_argument("--configs", default="baseline,btr")
    args = parser.parse_args()

    default_threads = torch.get_num_threads()
    print(f"device={args.device} batch={args.batch_size} repeats={args.repeats} torch={torch.__version__}")
    print(f"{'config':<10}{'threads':>8}{'learner ms':>12}{'fwd+bwd ms':>12}{'ratio':>8}")
    for threads in args.threads.split(","):
        torch.set_num_threads(default_threads if threads == "default" else int(threads))
        for name in args.configs.split(","):
            learner_ms, forward_backward_ms = benchmark(name, args.batch_size, args.repeats, args.device)
            ratio = learner_ms / forward_backward_ms
            print(f"{name:<10}{torch.get_num_threads():>8}{learner_ms:>12.1f}{forward_backward_ms:>12.1f}{ratio:>8.2f}")


if __name__ == "__main__":
    main()

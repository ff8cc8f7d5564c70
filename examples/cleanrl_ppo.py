"""PPO on trackrl's native Gymnasium vector env, CleanRL style: one file, torch only, the maths in the open.

PPO (Schulman et al. 2017, "Proximal Policy Optimization Algorithms") with GAE (Schulman et al. 2016) and the
details of Huang et al. 2022 ("The 37 Implementation Details of PPO"): orthogonal init, advantage normalisation per
minibatch, clipped value loss, global gradient clipping, learning-rate annealing. Observations: the 151 floats,
normalised (`normalize_floats=True`); reward: the env's default "progress" reward.

Run: python examples/cleanrl_ppo.py --track easy --total-timesteps 400000
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import AutoresetMode
from gymnasium.wrappers.vector import RecordEpisodeStatistics
from torch import nn
from torch.distributions import Categorical

import trackrl  # noqa: F401  (registers trackrl/Race-v0)


@dataclass
class Args:
    track: str = "easy"
    seed: int = 1
    total_timesteps: int = 400_000
    num_envs: int = 32
    num_steps: int = 64  # rollout length per env: batch = num_envs · num_steps
    learning_rate: float = 1e-3
    anneal_lr: bool = True
    gamma: float = 0.99
    gae_lambda: float = 0.95
    num_minibatches: int = 4
    update_epochs: int = 4
    clip_coef: float = 0.2
    ent_coef: float = 0.01
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    torch_threads: int = 1
    max_seconds: float = float("inf")  # stop early (tests)


@dataclass
class History:
    """What the run learned, per finished episode (wall seconds since the start, env steps, outcome)."""

    seconds: list[float] = field(default_factory=list)
    steps: list[int] = field(default_factory=list)
    returns: list[float] = field(default_factory=list)
    progress_m: list[float] = field(default_factory=list)
    finished: list[bool] = field(default_factory=list)
    race_time_ms: list[int] = field(default_factory=list)

    def first_finish_seconds(self) -> float | None:
        return next((s for s, f in zip(self.seconds, self.finished, strict=True) if f), None)

    def best_race_time_ms(self) -> int | None:
        times = [t for t, f in zip(self.race_time_ms, self.finished, strict=True) if f]
        return min(times) if times else None


def layer_init(layer: nn.Linear, std: float = np.sqrt(2), bias_const: float = 0.0) -> nn.Linear:
    nn.init.orthogonal_(layer.weight, std)
    nn.init.constant_(layer.bias, bias_const)
    return layer


class Agent(nn.Module):
    def __init__(self, n_inputs: int, n_actions: int) -> None:
        super().__init__()
        self.critic = nn.Sequential(layer_init(nn.Linear(n_inputs, 64)), nn.Tanh(), layer_init(nn.Linear(64, 64)),
                                    nn.Tanh(), layer_init(nn.Linear(64, 1), std=1.0))  # fmt: skip
        self.actor = nn.Sequential(layer_init(nn.Linear(n_inputs, 64)), nn.Tanh(), layer_init(nn.Linear(64, 64)),
                                   nn.Tanh(), layer_init(nn.Linear(64, n_actions), std=0.01))  # fmt: skip

    def get_value(self, x: torch.Tensor) -> torch.Tensor:
        return self.critic(x)

    def get_action_and_value(
        self, x: torch.Tensor, action: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        probs = Categorical(logits=self.actor(x))
        if action is None:
            action = probs.sample()
        return action, probs.log_prob(action), probs.entropy(), self.critic(x)


def make_env(args: Args) -> gym.vector.VectorEnv:
    envs = gym.make_vec("trackrl/Race-v0", num_envs=args.num_envs, vectorization_mode="vector_entry_point",
                        track=args.track, use_image=False, normalize_floats=True,
                        autoreset_mode=AutoresetMode.NEXT_STEP)  # fmt: skip
    return RecordEpisodeStatistics(envs)


def train(args: Args, log: bool = True) -> History:
    torch.set_num_threads(args.torch_threads)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    envs = make_env(args)
    n_inputs, n_actions = envs.single_observation_space.shape[0], envs.single_action_space.n
    agent = Agent(n_inputs, n_actions)
    optimizer = torch.optim.Adam(agent.parameters(), lr=args.learning_rate, eps=1e-5)
    batch_size = args.num_envs * args.num_steps
    minibatch_size = batch_size // args.num_minibatches
    num_iterations = args.total_timesteps // batch_size

    obs = torch.zeros((args.num_steps, args.num_envs, n_inputs))
    actions = torch.zeros((args.num_steps, args.num_envs), dtype=torch.long)
    logprobs = torch.zeros((args.num_steps, args.num_envs))
    rewards = torch.zeros((args.num_steps, args.num_envs))
    dones = torch.zeros((args.num_steps, args.num_envs))
    values = torch.zeros((args.num_steps, args.num_envs))
    # NEXT_STEP autoreset: the step after a done is a reset step; it must not enter the loss.
    valid = torch.zeros((args.num_steps, args.num_envs))

    history, start, global_step = History(), time.perf_counter(), 0
    next_obs_np, _ = envs.reset(seed=args.seed)
    next_obs = torch.from_numpy(next_obs_np)
    next_done = torch.zeros(args.num_envs)
    for iteration in range(1, num_iterations + 1):
        if args.anneal_lr:
            optimizer.param_groups[0]["lr"] = (1.0 - (iteration - 1.0) / num_iterations) * args.learning_rate
        for step in range(args.num_steps):
            global_step += args.num_envs
            obs[step], valid[step] = next_obs, 1.0 - next_done
            with torch.no_grad():
                action, logprob, _, value = agent.get_action_and_value(next_obs)
            values[step], actions[step], logprobs[step] = value.flatten(), action, logprob
            next_obs_np, reward, terminated, truncated, infos = envs.step(action.numpy())
            rewards[step] = torch.from_numpy(reward).float()
            # done = terminated or truncated, as in CleanRL (a truncation is not bootstrapped; here it mostly means
            # the car stopped making progress).
            next_done = torch.from_numpy(np.logical_or(terminated, truncated)).float()
            dones[step] = next_done
            next_obs = torch.from_numpy(next_obs_np)
            if "_episode" in infos:
                for env_index in np.flatnonzero(infos["_episode"]):
                    history.seconds.append(time.perf_counter() - start)
                    history.steps.append(global_step)
                    history.returns.append(float(infos["episode"]["r"][env_index]))
                    history.progress_m.append(float(infos["progress_m"][env_index]))
                    history.finished.append(bool(infos["finished"][env_index]))
                    history.race_time_ms.append(int(infos["race_time_ms"][env_index]))

        # GAE: δ_t = r_t + γ V(s_{t+1}) (1 − d_t) − V(s_t); A_t = δ_t + γ λ (1 − d_t) A_{t+1}.
        with torch.no_grad():
            next_value = agent.get_value(next_obs).reshape(1, -1)
            advantages = torch.zeros_like(rewards)
            last_gae = torch.zeros(args.num_envs)
            for t in reversed(range(args.num_steps)):
                following_value = next_value[0] if t == args.num_steps - 1 else values[t + 1]
                not_done = 1.0 - dones[t]
                delta = rewards[t] + args.gamma * following_value * not_done - values[t]
                last_gae = delta + args.gamma * args.gae_lambda * not_done * last_gae
                advantages[t] = last_gae
            returns = advantages + values

        keep = valid.reshape(-1).bool()
        b_obs, b_actions = obs.reshape(-1, n_inputs)[keep], actions.reshape(-1)[keep]
        b_logprobs, b_advantages = logprobs.reshape(-1)[keep], advantages.reshape(-1)[keep]
        b_returns, b_values = returns.reshape(-1)[keep], values.reshape(-1)[keep]
        n_samples = len(b_obs)
        for _ in range(args.update_epochs):
            order = torch.randperm(n_samples)
            for begin in range(0, n_samples, minibatch_size):
                mb = order[begin : begin + minibatch_size]
                _, new_logprob, entropy, new_value = agent.get_action_and_value(b_obs[mb], b_actions[mb])
                ratio = (new_logprob - b_logprobs[mb]).exp()
                mb_advantages = b_advantages[mb]
                mb_advantages = (mb_advantages - mb_advantages.mean()) / (mb_advantages.std() + 1e-8)
                # Clipped surrogate objective L^CLIP (Schulman et al. 2017, eq. 7).
                clipped_ratio = ratio.clamp(1 - args.clip_coef, 1 + args.clip_coef)
                pg_loss = torch.max(-mb_advantages * ratio, -mb_advantages * clipped_ratio).mean()
                new_value = new_value.flatten()
                v_clipped = b_values[mb] + (new_value - b_values[mb]).clamp(-args.clip_coef, args.clip_coef)
                v_loss = 0.5 * torch.max((new_value - b_returns[mb]) ** 2, (v_clipped - b_returns[mb]) ** 2).mean()
                loss = pg_loss - args.ent_coef * entropy.mean() + args.vf_coef * v_loss
                optimizer.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(agent.parameters(), args.max_grad_norm)
                optimizer.step()

        elapsed = time.perf_counter() - start
        if log and history.returns:
            recent = slice(-50, None)
            best = history.best_race_time_ms()
            print(f"{elapsed:6.1f} s  step {global_step:>8}  return {np.mean(history.returns[recent]):7.2f}  "
                  f"progress {np.mean(history.progress_m[recent]):6.1f} m  "
                  f"finished {np.mean(history.finished[recent]):4.0%}  "
                  f"best {'-' if best is None else f'{best / 1000:.2f} s'}", flush=True)  # fmt: skip
        if elapsed > args.max_seconds:
            break
    envs.close()
    return history


def parse_args() -> Args:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    defaults = Args()
    for name, value in vars(defaults).items():
        flag = "--" + name.replace("_", "-")
        if isinstance(value, bool):
            parser.add_argument(flag, type=lambda s: s.lower() in ("1", "true", "yes"), default=value)
        else:
            parser.add_argument(flag, type=type(value), default=value)
    return Args(**vars(parser.parse_args()))


if __name__ == "__main__":
    run_args = parse_args()
    result = train(run_args)
    first = result.first_finish_seconds()
    best = result.best_race_time_ms()
    print(f"first finish after {'-' if first is None else f'{first:.0f} s'}; best race time "
          f"{'-' if best is None else f'{best / 1000:.2f} s'}")  # fmt: skip

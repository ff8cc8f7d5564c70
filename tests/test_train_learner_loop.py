"""Learner loop bookkeeping with stand-ins for the buffer and learner: replay ratio, memory schedule, NaN stop."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from trackrl.config import config_from_dict
from trackrl.train.collector import Rollout
from trackrl.train.learner_loop import LearnerLoop, TrainingDivergedError
from trackrl.train.map_cycle import RaceSlot


class CountingBuffer:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.size = 0
        self.resized_to: list[int] = []
        self.state_floats = self.next_floats = self.rewards = np.zeros((0, 3), np.float32)

    def __len__(self) -> int:
        return self.size

    def add_episode(self, images, floats, actions, rewards, terminated: bool) -> int:
        self.size = min(self.capacity, self.size + len(actions))
        return len(actions)

    def resize(self, new_capacity: int) -> None:
        self.capacity = new_capacity
        self.size = min(self.size, new_capacity)
        self.resized_to.append(new_capacity)


@dataclass
class StepResult:
    loss: float
    mean_q: float = 0.0
    grad_norm: float = 1.0


class ScriptedLearner:
    def __init__(self, losses: list[float]) -> None:
        self.losses = losses
        self.calls: list[dict] = []
        self.online_network = torch.nn.Linear(1, 1)

    def learn(
        self, buffer: CountingBuffer, learning_rate: float, gamma: float, mini_race_duration_actions: int
    ) -> StepResult:
        self.calls.append({"lr": learning_rate, "gamma": gamma, "d": mini_race_duration_actions})
        return StepResult(self.losses[len(self.calls) - 1])


def rollout(n_actions: int, fill_buffer: bool = True) -> Rollout:
    return Rollout(
        collector_id=0, map_cycle_position=1, slot=RaceSlot("easy", None, True, fill_buffer), images=None,
        floats=np.zeros((n_actions + 1, 3), np.float32), actions=np.zeros(n_actions, np.int64),
        rewards=np.zeros(n_actions, np.float32), positions_m=np.zeros((n_actions + 1, 3), np.float32),
        finished=False, terminated=False, race_time_ms=0, mean_q=0.0, weights_version=0,
    )


CONFIG = config_from_dict(
    {
        "training": {"batch_size": 10, "number_times_single_memory_is_used_before_discard": 2,
                     "lr_schedule": [[0, 1e-3], [1000, 1e-4]], "temporal_mini_race_duration_ms": 7000},
        "memory": {"memory_size_schedule": [[0, 100], [500, 300]], "min_transitions_to_learn": 30},
    }
)


def test_replay_ratio_counts_from_learning_start() -> None:
    loop = LearnerLoop(CONFIG, ScriptedLearner([0.5] * 100), CountingBuffer(100))
    assert loop.add_rollout(rollout(20)) == 20
    assert loop.batches_owed() == 0  # 20 < min_transitions_to_learn = 30
    loop.add_rollout(rollout(15))
    assert loop.batches_owed() == 1  # learning starts: the first batch, no debt for the 35 already stored
    loop.learn_one_batch(frames=0)
    assert loop.batches_owed() == 0
    loop.add_rollout(rollout(25))  # ratio 2 * 25 / batch 10 = 5 more batches
    assert loop.batches_owed() == 5
    assert loop.add_rollout(rollout(40, fill_buffer=False)) == 0  # a blind race adds nothing
    assert loop.batches_owed() == 5


def test_schedules_reach_the_learner_and_memory_resizes() -> None:
    learner = ScriptedLearner([0.5])
    buffer = CountingBuffer(100)
    loop = LearnerLoop(CONFIG, learner, buffer)
    loop.learn_one_batch(frames=500)
    # lr halfway (geometric) between 1e-3 and 1e-4 = sqrt(1e-3 * 1e-4); D = 7000 ms // 50 ms = 140 actions.
    assert learner.calls[0]["lr"] == pytest.approx((1e-3 * 1e-4) ** 0.5)
    assert learner.calls[0]["d"] == 140  # Linesight: 7,000 ms / 50 ms per action
    loop.apply_memory_schedule(499)
    loop.apply_memory_schedule(500)
    assert buffer.resized_to == [300]


def test_nan_loss_raises_a_user_error() -> None:
    loop = LearnerLoop(CONFIG, ScriptedLearner([0.5, float("nan")]), CountingBuffer(100))
    loop.learn_one_batch(frames=0)
    with pytest.raises(TrainingDivergedError, match="nan"):
        loop.learn_one_batch(frames=10)
    assert loop.batches_done == 1 and loop.last_loss == 0.5


# --- divergence with the real learner and buffer (issue 18 item 7, issue 11 item 5) ---------------------------------
def real_loop(prioritized: bool, reward: float = -0.01) -> LearnerLoop:
    from trackrl.agent.learner import Learner
    from trackrl.config import config_to_dict, load_config
    from trackrl.replay.buffer import ReplayBuffer
    from trackrl.sim.observation import float_input_dim, float_inputs_mean, float_inputs_std

    data = config_to_dict(load_config(SMOKE))
    data["memory"].update({"use_prioritized_replay": prioritized, "min_transitions_to_learn": 64})
    data["training"]["batch_size"] = 16
    config = config_from_dict(data)
    env = config.environment
    dim = float_input_dim(env)
    learner = Learner(config, dim, float_inputs_mean(env), float_inputs_std(env), device="cpu", seed=0)
    buffer = ReplayBuffer(256, dim, None, config.training.n_steps, seed=0, prioritized=prioritized)
    rng = np.random.default_rng(0)
    n = 80
    rewards = np.full(n, reward, np.float32)
    buffer.add_episode(None, rng.normal(size=(n + 1, dim)).astype(np.float32), rng.integers(0, 12, n), rewards, False)
    return LearnerLoop(config, learner, buffer)


SMOKE = Path(__file__).resolve().parent.parent / "configs" / "smoke.yaml"


def test_nan_with_per_gives_the_diverged_outcome_naming_the_cause_not_a_value_error() -> None:
    loop = real_loop(prioritized=True, reward=float("nan"))
    with pytest.raises(TrainingDivergedError) as caught:
        loop.learn_one_batch(frames=100)
    message = str(caught.value)
    assert "PER priorities" in message and "'rewards'" in message
    assert "will not help" in message and "lower training.lr_schedule" not in message
    assert loop.batches_done == 0


def test_nan_weights_with_finite_inputs_name_the_weight_and_advise_the_learning_rate() -> None:
    for prioritized in (False, True):
        loop = real_loop(prioritized=prioritized)
        loop.learn_one_batch(frames=100)  # a good step
        with torch.no_grad():
            next(loop.learner.online_network.parameters()).fill_(float("inf"))
        with pytest.raises(TrainingDivergedError, match=r"weight '.*' NaN/inf .*lower training.lr_schedule"):
            loop.learn_one_batch(frames=110)
        assert loop.batches_done == 1

"""The learner's side of training: rollouts into the replay buffer, gradient steps at the configured replay ratio.

- Learning starts once the buffer holds ``memory.min_transitions_to_learn`` transitions.
- Replay ratio (``training.number_times_single_memory_is_used_before_discard``): from that moment on the learner keeps
  ``batches * batch_size ≈ ratio * transitions added`` (both counted since learning started in this process, so a
  resumed run, whose buffer starts empty, does not owe a burst of batches for its refill).
- Schedules (lr, gamma, memory size) are evaluated at the current frame; memory size changes call ``buffer.resize``.
- Mini-race horizon D = temporal_mini_race_duration_ms // action_duration_ms (Linesight: 7 s = 140 actions).
- Busy share = time in ``learner.learn`` (sample + train + priority update) / elapsed wall time.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from trackrl.config.schedules import current_schedule_values
from trackrl.config.schema import TrackRLConfig
from trackrl.errors import UserError
from trackrl.replay.buffer import NonFinitePriorityError
from trackrl.replay.nstep import mini_race_duration_actions


class TrainingDivergedError(UserError):
    """The loss, a priority or a weight became NaN or infinite; training stops without checkpointing (the trainer
    adds to the message which checkpoint was kept)."""


def first_non_finite_input(buffer: Any) -> str | None:
    """Name of the first stored input array holding NaN/inf (observations or rewards), or None."""
    n = len(buffer)
    for name in ("state_floats", "next_floats", "rewards"):
        values = getattr(buffer, name)[:n]
        if not np.isfinite(values).all():
            return name
    return None


def first_non_finite_weight(state_dict: dict[str, torch.Tensor]) -> str | None:
    for name, tensor in state_dict.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            return name
    return None


def divergence_cause(learner: Any, buffer: Any) -> str:
    """What diverged and what to change: a bad input is not fixed by a lower learning rate."""
    bad_input = first_non_finite_input(buffer)
    if bad_input is not None:
        return (
            f"the replay buffer holds a NaN/inf value in {bad_input!r}: an observation or reward was not finite "
            "(check the rewards section and the track); a lower learning rate will not help"
        )
    bad_weight = first_non_finite_weight(learner.online_network.state_dict())
    if bad_weight is not None:
        return (
            f"the gradient step made weight {bad_weight!r} NaN/inf with finite inputs: the optimisation diverged; "
            "lower training.lr_schedule or training.clip_grad_norm"
        )
    return (
        "inputs and weights are finite, so the loss overflowed (rewards scale, gamma_schedule or "
        "munchausen_entropy_tau too extreme for float32?)"
    )


def action_duration_ms(config: TrackRLConfig) -> int:
    return 10 * config.environment.tm_engine_step_per_action  # engine tick = 10 ms


@dataclass
class LearnStats:
    """Running sums between two TensorBoard logs."""

    loss_sum: float = 0.0
    grad_norm_sum: float = 0.0
    batches: int = 0
    busy_s: float = 0.0

    def add(self, loss: float, grad_norm: float, busy_s: float) -> None:
        self.loss_sum += loss
        self.grad_norm_sum += grad_norm
        self.batches += 1
        self.busy_s += busy_s


class LearnerLoop:
    """Owns the replay buffer and the Learner; counts transitions and batches for the replay ratio."""

    def __init__(self, config: TrackRLConfig, learner: Any, buffer: Any) -> None:
        self.config = config
        self.learner = learner
        self.buffer = buffer
        self.transitions_added = 0  # this process only
        self.batches_done = 0  # this process only
        self._transitions_at_learning_start: int | None = None
        self.window = LearnStats()
        self.last_loss = float("nan")

    def add_rollout(self, rollout: Any) -> int:
        """Store a race that fills the buffer; return the number of transitions added."""
        if not rollout.slot.fill_buffer or rollout.n_actions == 0:
            return 0
        added = self.buffer.add_episode(
            rollout.images, rollout.floats, rollout.actions, rollout.rewards, rollout.terminated
        )
        self.transitions_added += int(added)
        return int(added)

    def apply_memory_schedule(self, frames: int) -> None:
        capacity = int(current_schedule_values(self.config, frames)["memory_size"])
        if capacity != self.buffer.capacity:
            self.buffer.resize(capacity)

    @property
    def learning_started(self) -> bool:
        return self._transitions_at_learning_start is not None

    def batches_owed(self) -> int:
        """Batches needed to bring batches * batch_size up to ratio * transitions added since learning started."""
        if self._transitions_at_learning_start is None:
            if len(self.buffer) < self.config.memory.min_transitions_to_learn:
                return 0
            self._transitions_at_learning_start = self.transitions_added
        # The first batch is owed as soon as learning starts; afterwards the ratio governs.
        transitions = self.transitions_added - self._transitions_at_learning_start
        ratio = self.config.training.number_times_single_memory_is_used_before_discard
        target_batches = 1 + math.floor(ratio * transitions / self.config.training.batch_size)
        return max(0, target_batches - self.batches_done)

    def learn_one_batch(self, frames: int) -> float:
        """One gradient step with the schedules at ``frames``; return its loss. Raises on a NaN/inf loss."""
        schedules = current_schedule_values(self.config, frames)
        start = time.perf_counter()
        where = f"at frame {frames} (batch {self.batches_done + 1} of this session)"
        try:
            result = self.learner.learn(
                self.buffer,
                learning_rate=float(schedules["learning_rate"]),
                gamma=float(schedules["gamma"]),
                mini_race_duration_actions=mini_race_duration_actions(
                    self.config.training.temporal_mini_race_duration_ms, action_duration_ms(self.config)
                ),
            )
        except NonFinitePriorityError:
            # With PER the NaN TD errors reach the sum tree before the loss is returned: the same outcome.
            raise TrainingDivergedError(
                f"training diverged {where}: the new PER priorities (TD errors) were NaN/inf; "
                f"{divergence_cause(self.learner, self.buffer)}"
            ) from None
        busy_s = time.perf_counter() - start
        loss = float(result.loss)
        if not math.isfinite(loss):
            raise TrainingDivergedError(
                f"training diverged {where}: the loss became {loss}; {divergence_cause(self.learner, self.buffer)}"
            )
        self.batches_done += 1
        self.last_loss = loss
        self.window.add(loss, float(result.grad_norm), busy_s)
        return loss

    def take_window(self) -> LearnStats:
        window, self.window = self.window, LearnStats()
        return window

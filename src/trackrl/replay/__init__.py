"""Replay: preallocated ring storage, sum-tree prioritisation, n-step returns and Linesight's mini-race."""

from trackrl.replay.batch import ReplayBatch
from trackrl.replay.buffer import ReplayBuffer, ReplayConfigError
from trackrl.replay.nstep import mini_race_duration_actions
from trackrl.replay.sum_tree import SumTree

__all__ = ["ReplayBatch", "ReplayBuffer", "ReplayConfigError", "SumTree", "mini_race_duration_actions"]

"""Preallocated ring replay buffer with n-step returns, optional proportional prioritisation and mini-race resampling.

Storage: one slot per transition (s_t, a_t, r_t..r_{t+n-1}, s_{t+n_avail}), images as uint8. The raw rewards are kept
so that the n-step return is discounted at sample time with the γ of the current schedule, and can be cut short by
Linesight's mini-race horizon (see nstep.py). The occupied slots are always 0..len-1; the write pointer wraps around.

Prioritised replay (Schaul et al. 2016), proportional variant: P(i) = p_i^α / Σ_k p_k^α with p_i = |priority_i| + ε,
stratified sampling (one draw per equal slice of the total), new transitions at the max priority seen so far, and
importance weights w_i = (N·P(i))^{-β} / max_batch w. β is the config's ``memory.prio_beta`` and stays fixed (no
annealing). We use β for the weights on purpose: the official BTR code raises the weights to α (0.2), a known
accident that makes the correction much weaker than intended; β = 0.4 is Schaul et al.'s starting value.
The priority the learner writes is BTR's Σ_i mean_j |δ_ij| (agent/losses.py: td_error_priorities). Like Linesight, a
transition sampled with ``min_horizon_to_update_priority_actions`` or fewer steps left in its mini-race keeps its old
priority: near the horizon the target is cut short (few or no bootstrapped steps), so its TD error says little
about how well the transition is learnt.
"""

from __future__ import annotations

import numba
import numpy as np

from trackrl.errors import UserError
from trackrl.replay.batch import ReplayBatch
from trackrl.replay.sum_tree import SumTree, find_leaf


class ReplayConfigError(UserError, ValueError):
    """A replay setting (capacity, n-step, priority exponents) is out of range."""


class NonFinitePriorityError(ValueError):
    """A priority update got NaN/inf (the TD errors of a diverged step); the sum tree is left unchanged."""


def bytes_per_transition(float_input_dim: int, image_shape: tuple[int, ...] | None, n_steps: int,
                         prioritized: bool = False) -> int:  # fmt: skip
    """Memory one slot of the buffer takes (the arrays of ``ReplayBuffer._allocate``), to check a capacity fits."""
    image_bytes = 2 * int(np.prod(image_shape)) if image_shape is not None else 0  # s_t and s_{t+n}, uint8
    float_bytes = 2 * 4 * float_input_dim  # s_t and s_{t+n}, float32
    scalar_bytes = 8 + 4 * n_steps + 8 + 1  # action int64, raw rewards float32, n_available int64, episode_end bool
    tree_bytes = 2 * 2 * 8 if prioritized else 0  # sum tree: up to 2 x (power of two >= capacity) float64 nodes
    return image_bytes + float_bytes + scalar_bytes + tree_bytes


@numba.njit(cache=True)
def _gather_transitions(
    indices: np.ndarray,
    mini_race_time: np.ndarray,
    duration_actions: int,
    min_horizon_to_update_priority_actions: int,
    gamma: float,
    state_floats: np.ndarray,
    next_floats: np.ndarray,
    actions: np.ndarray,
    rewards: np.ndarray,
    n_available: np.ndarray,
    episode_ends: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The float part of a batch in one compiled loop (the per-call cost of ~30 NumPy operations is most of a
    sample's time at batch 64). Per transition, exactly as nstep.mini_race_horizon and
    nstep.discounted_nstep_returns do it: n_eff = min(n_available, D − c), terminal at a real end reached or at the
    horizon, R = Σ_{k<n_eff} γ^k r_k and discount γ^{n_eff} (0 if terminal); D = 0: no mini-race."""
    batch_size, n_floats = indices.shape[0], state_floats.shape[1]
    out_state = np.empty((batch_size, n_floats), dtype=np.float32)
    out_next = np.empty((batch_size, n_floats), dtype=np.float32)
    out_actions = np.empty(batch_size, dtype=np.int64)
    returns = np.empty(batch_size, dtype=np.float32)
    discounts = np.empty(batch_size, dtype=np.float32)
    updates_priority = np.ones(batch_size, dtype=np.bool_)
    for k in range(batch_size):
        i = indices[k]
        out_state[k] = state_floats[i]
        out_next[k] = next_floats[i]
        out_actions[k] = actions[i]
        n_effective, terminal = n_available[i], episode_ends[i]
        if duration_actions > 0:
            time_now = mini_race_time[k]
            steps_left = duration_actions - time_now
            n_effective = min(n_available[i], steps_left)
            terminal = (episode_ends[i] and n_effective == n_available[i]) or time_now + n_effective >= duration_actions
            out_state[k, 0] = time_now
            out_next[k, 0] = time_now + n_effective
            updates_priority[k] = steps_left > min_horizon_to_update_priority_actions
        total = 0.0
        for step in range(n_effective):
            total += np.float64(rewards[i, step]) * gamma**step
        returns[k] = total
        discounts[k] = 0.0 if terminal else gamma**n_effective
    return out_state, out_next, out_actions, returns, discounts, updates_priority


@numba.njit(cache=True)
def _stratified_priority_sample(
    nodes: np.ndarray, leaf_offset: int, size: int, uniforms: np.ndarray, beta: float
) -> tuple[np.ndarray, np.ndarray]:
    """Stratified proportional sampling (one draw u_k in each of B equal slices of [0, Σp)) and the importance
    weights w = (N·P(i))^{−β} / max w, in one compiled loop over the sum tree."""
    batch_size = uniforms.shape[0]
    total = nodes[1]
    indices = np.empty(batch_size, dtype=np.int64)
    weights = np.empty(batch_size, dtype=np.float64)
    for k in range(batch_size):
        # Float round-off can walk into an empty leaf past the last stored one; pull it back.
        indices[k] = min(find_leaf(nodes, leaf_offset, (k + uniforms[k]) * (total / batch_size)), size - 1)
        weights[k] = (size * (nodes[leaf_offset + indices[k]] / total)) ** -beta
    return indices, (weights / weights.max()).astype(np.float32)


@numba.njit(cache=True)
def _priority_leaves(priorities: np.ndarray, epsilon: float, alpha: float) -> tuple[np.ndarray, float]:
    """p^α with p = |priority| + ε, and max p; max p is NaN if any priority is not finite."""
    leaves = np.empty(priorities.shape[0], dtype=np.float64)
    largest = 0.0
    for k in range(priorities.shape[0]):
        p = abs(np.float64(priorities[k])) + epsilon
        if not np.isfinite(p):
            return leaves, np.nan
        largest = max(largest, p)
        leaves[k] = p**alpha
    return leaves, largest


class ReplayBuffer:
    def __init__(
        self,
        capacity: int,
        float_input_dim: int,
        image_shape: tuple[int, int, int] | None,
        n_steps: int,
        seed: int = 0,
        prioritized: bool = False,
        prio_alpha: float = 0.2,
        prio_beta: float = 0.4,
        prio_epsilon: float = 1e-3,
        min_horizon_to_update_priority_actions: int = 0,
    ) -> None:
        if capacity < 1:
            raise ReplayConfigError(f"replay capacity must be >= 1 (memory.memory_size_schedule), got {capacity}")
        if n_steps < 1:
            raise ReplayConfigError(f"training.n_steps must be >= 1, got {n_steps}")
        if float_input_dim < 1:
            raise ReplayConfigError(f"float_input_dim must be >= 1 (slot 0: mini-race time), got {float_input_dim}")
        if prio_alpha < 0 or not 0 <= prio_beta <= 1 or prio_epsilon <= 0:
            raise ReplayConfigError(
                f"memory.prio_alpha must be >= 0, prio_beta in [0, 1], prio_epsilon > 0; "
                f"got {prio_alpha}, {prio_beta}, {prio_epsilon}"
            )
        if min_horizon_to_update_priority_actions < 0:
            raise ReplayConfigError(
                "memory.min_horizon_to_update_priority_actions must be >= 0, "
                f"got {min_horizon_to_update_priority_actions}"
            )
        self.float_input_dim = float_input_dim
        self.min_horizon_to_update_priority_actions = min_horizon_to_update_priority_actions
        self.image_shape = tuple(image_shape) if image_shape is not None else None
        self.n_steps = n_steps
        self.prioritized = prioritized
        self.prio_alpha = prio_alpha
        self.prio_beta = prio_beta
        self.prio_epsilon = prio_epsilon
        self.rng = np.random.default_rng(seed)
        self._size = 0
        self._write_index = 0
        self._max_priority = 1.0
        self._allocate(capacity)

    def _allocate(self, capacity: int) -> None:
        self._capacity = capacity
        image_dims = (capacity, *self.image_shape) if self.image_shape is not None else None
        self.state_images = np.zeros(image_dims, dtype=np.uint8) if image_dims else None
        self.next_images = np.zeros(image_dims, dtype=np.uint8) if image_dims else None
        self.state_floats = np.zeros((capacity, self.float_input_dim), dtype=np.float32)
        self.next_floats = np.zeros((capacity, self.float_input_dim), dtype=np.float32)
        self.actions = np.zeros(capacity, dtype=np.int64)
        self.rewards = np.zeros((capacity, self.n_steps), dtype=np.float32)  # raw r_t..r_{t+n-1}, 0-padded
        self.n_available = np.zeros(capacity, dtype=np.int64)  # real steps before the episode ends, <= n
        self.episode_ends = np.zeros(capacity, dtype=bool)  # s_{t+n_avail} is a finish: no bootstrap
        self.sum_tree = SumTree(capacity) if self.prioritized else None

    @property
    def capacity(self) -> int:
        return self._capacity

    def __len__(self) -> int:
        return self._size

    def add_episode(
        self,
        images: np.ndarray | None,
        floats: np.ndarray,
        actions: np.ndarray,
        rewards: np.ndarray,
        terminated: bool,
    ) -> int:
        """Store every transition of one rollout: obs[t] --actions[t]--> rewards[t], obs[t+1].

        ``terminated`` means the last transition is a real end (finish, no bootstrap); False means a cutoff, and the
        last transitions bootstrap from obs[T]. Returns the number of transitions added (only the last ``capacity``
        are kept if the rollout is longer than the buffer).
        """
        actions = np.asarray(actions, dtype=np.int64)
        rewards = np.asarray(rewards, dtype=np.float32)
        floats = np.asarray(floats, dtype=np.float32)
        n_transitions = actions.shape[0]
        self._check_episode_shapes(images, floats, actions, rewards)
        if n_transitions == 0:
            return 0

        t = np.arange(n_transitions)
        n_available = np.minimum(self.n_steps, n_transitions - t)
        next_t = t + n_available
        episode_ends = np.logical_and(terminated, next_t == n_transitions)
        # rewards_window[t, k] = r_{t+k} for k < n_available[t], else 0.
        padded = np.concatenate([rewards, np.zeros(self.n_steps, dtype=np.float32)])
        rewards_window = padded[t[:, None] + np.arange(self.n_steps)[None, :]]
        rewards_window[np.arange(self.n_steps)[None, :] >= n_available[:, None]] = 0.0

        keep = slice(max(0, n_transitions - self._capacity), n_transitions)
        t, next_t = t[keep], next_t[keep]
        slots = (self._write_index + np.arange(t.shape[0])) % self._capacity
        if self.state_images is not None:
            self.state_images[slots] = images[t]
            self.next_images[slots] = images[next_t]
        self.state_floats[slots] = floats[t]
        self.next_floats[slots] = floats[next_t]
        self.actions[slots] = actions[t]
        self.rewards[slots] = rewards_window[keep]
        self.n_available[slots] = n_available[keep]
        self.episode_ends[slots] = episode_ends[keep]
        if self.sum_tree is not None:
            self.sum_tree.set(slots, np.full(slots.shape, self._max_priority**self.prio_alpha))

        self._write_index = int((self._write_index + t.shape[0]) % self._capacity)
        self._size = min(self._capacity, self._size + t.shape[0])
        return int(t.shape[0])

    def _check_episode_shapes(
        self, images: np.ndarray | None, floats: np.ndarray, actions: np.ndarray, rewards: np.ndarray
    ) -> None:
        n_transitions = actions.shape[0]
        if actions.ndim != 1 or rewards.shape != (n_transitions,):
            raise ValueError(f"actions and rewards must both be (T,), got {actions.shape} and {rewards.shape}")
        if floats.shape != (n_transitions + 1, self.float_input_dim):
            expected = (n_transitions + 1, self.float_input_dim)
            raise ValueError(f"floats must be (T+1, F) = {expected}, got {floats.shape}")
        if self.image_shape is None:
            if images is not None:
                raise ValueError("this buffer stores no images (image_shape=None) but images were given")
        elif images is None or images.shape != (n_transitions + 1, *self.image_shape) or images.dtype != np.uint8:
            got = None if images is None else (images.shape, images.dtype)
            raise ValueError(f"images must be uint8 (T+1, *{self.image_shape}), got {got}")

    def sample(self, batch_size: int, gamma: float, mini_race_duration_actions: int = 0) -> ReplayBatch:
        """A batch of n-step transitions discounted with ``gamma``; mini-race resampling if the duration is > 0."""
        if self._size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        if self.sum_tree is not None:
            indices, weights = self._sample_prioritized(batch_size)
        else:
            indices = self.rng.integers(0, self._size, size=batch_size)
            weights = np.ones(batch_size, dtype=np.float32)
        # Linesight: the mini-race time (float slot 0, in actions) is drawn afresh for every sampled transition.
        mini_race_time = (
            self.rng.integers(0, mini_race_duration_actions, size=batch_size)
            if mini_race_duration_actions > 0
            else np.zeros(batch_size, dtype=np.int64)
        )
        state_floats, next_floats, actions, returns, discounts, updates_priority = _gather_transitions(
            indices.astype(np.int64), mini_race_time.astype(np.int64), max(0, mini_race_duration_actions),
            self.min_horizon_to_update_priority_actions, float(gamma), self.state_floats, self.next_floats,
            self.actions, self.rewards, self.n_available, self.episode_ends,
        )  # fmt: skip
        return ReplayBatch(
            state_images=self.state_images[indices] if self.state_images is not None else None,
            state_floats=state_floats,
            actions=actions,
            returns=returns,
            next_images=self.next_images[indices] if self.next_images is not None else None,
            next_floats=next_floats,
            discounts=discounts,
            weights=weights,
            indices=indices.astype(np.int64),
            updates_priority=updates_priority,
        )

    def _sample_prioritized(self, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
        tree = self.sum_tree
        return _stratified_priority_sample(
            tree.nodes, tree.leaf_offset, self._size, self.rng.random(batch_size), self.prio_beta
        )

    def update_priorities(self, indices: np.ndarray, priorities: np.ndarray) -> None:
        """Set p_i = |priority_i| + ε for the sampled slots (no-op for a uniform buffer)."""
        if self.sum_tree is None:
            return
        leaves, largest = _priority_leaves(np.ascontiguousarray(priorities), self.prio_epsilon, self.prio_alpha)
        if not np.isfinite(largest):
            raise NonFinitePriorityError("update_priorities got a non-finite priority (NaN/inf loss?)")
        self._max_priority = max(self._max_priority, largest)
        self.sum_tree.set(indices, leaves)

    def resize(self, new_capacity: int) -> None:
        """Change the capacity, keeping every transition when growing and the most recent ones when shrinking."""
        if new_capacity < 1:
            raise ReplayConfigError(f"replay capacity must be >= 1 (memory.memory_size_schedule), got {new_capacity}")
        if new_capacity == self._capacity:
            return
        kept = min(self._size, new_capacity)
        oldest = (self._write_index - self._size) % self._capacity
        # Chronological order of the kept slots: the `kept` most recent, oldest first.
        old_slots = (oldest + self._size - kept + np.arange(kept)) % self._capacity
        old_priorities = self.sum_tree.leaf_values(old_slots) if self.sum_tree is not None else None
        old = {name: getattr(self, name) for name in self._storage_names()}
        self._allocate(new_capacity)
        for name, array in old.items():
            if array is not None:
                getattr(self, name)[:kept] = array[old_slots]
        if self.sum_tree is not None:
            self.sum_tree.set(np.arange(kept), old_priorities)
        self._size = kept
        self._write_index = kept % new_capacity

    @staticmethod
    def _storage_names() -> tuple[str, ...]:
        return (
            "state_images",
            "next_images",
            "state_floats",
            "next_floats",
            "actions",
            "rewards",
            "n_available",
            "episode_ends",
        )

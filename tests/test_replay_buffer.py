"""Replay buffer: n-step returns at episode ends, mini-race resampling, ring overwrite, resizing, PER weights."""

from __future__ import annotations

import numpy as np
import pytest

from trackrl.errors import UserError
from trackrl.replay import ReplayBuffer, mini_race_duration_actions
from trackrl.replay.buffer import NonFinitePriorityError
from trackrl.replay.nstep import discounted_nstep_returns, mini_race_horizon
from trackrl.replay.sum_tree import SumTree

FLOAT_DIM = 3


def episode(n_transitions: int, first_reward: float = 1.0, image_shape: tuple[int, int, int] | None = None):
    """Floats slot 1 = time index t (to identify observations), rewards first_reward, first_reward+1, ..."""
    floats = np.zeros((n_transitions + 1, FLOAT_DIM), dtype=np.float32)
    floats[:, 1] = np.arange(n_transitions + 1)
    floats[:, 2] = first_reward
    actions = np.arange(n_transitions) % 12
    rewards = first_reward + np.arange(n_transitions, dtype=np.float32)
    images = None
    if image_shape is not None:
        images = np.zeros((n_transitions + 1, *image_shape), dtype=np.uint8)
        images[:, 0, 0, 0] = np.arange(n_transitions + 1)
    return images, floats, actions, rewards


def sample_all(buffer: ReplayBuffer, gamma: float, duration: int = 0, batch_size: int = 2000):
    return buffer.sample(batch_size, gamma, duration)


@pytest.mark.parametrize("terminated", [True, False])
def test_nstep_returns_are_cut_at_the_episode_end(terminated: bool) -> None:
    buffer = ReplayBuffer(100, FLOAT_DIM, None, n_steps=3, seed=1)
    assert buffer.add_episode(*episode(5), terminated=terminated) == 5  # rewards 1, 2, 3, 4, 5
    batch = sample_all(buffer, gamma=0.5)
    # Hand-computed with γ = 0.5, n = 3: R_t = Σ_{k<min(3, 5−t)} 0.5^k r_{t+k}.
    expected_return = {0: 1 + 1 + 0.75, 1: 2 + 1.5 + 1, 2: 3 + 2 + 1.25, 3: 4 + 2.5, 4: 5.0}
    expected_steps = {0: 3, 1: 3, 2: 3, 3: 2, 4: 1}
    t = batch.state_floats[:, 1].astype(int)
    assert set(t.tolist()) == set(range(5))
    for row, time_index in enumerate(t):
        n_avail = expected_steps[time_index]
        assert batch.returns[row] == pytest.approx(expected_return[time_index])
        assert batch.next_floats[row, 1] == time_index + n_avail
        assert batch.actions[row] == time_index % 12
        reaches_end = time_index + n_avail == 5
        expected_discount = 0.0 if (terminated and reaches_end) else 0.5**n_avail
        assert batch.discounts[row] == pytest.approx(expected_discount)
    np.testing.assert_array_equal(batch.weights, 1.0)


def test_gamma_is_applied_at_sample_time() -> None:
    buffer = ReplayBuffer(100, FLOAT_DIM, None, n_steps=2, seed=0)
    buffer.add_episode(*episode(4), terminated=False)  # rewards 1, 2, 3, 4
    for gamma in (0.0, 0.9, 1.0):
        batch = sample_all(buffer, gamma=gamma, batch_size=200)
        first = batch.state_floats[:, 1] == 0
        assert np.allclose(batch.returns[first], 1 + gamma * 2)
        assert np.allclose(batch.discounts[first], gamma**2)


def test_images_follow_their_transition() -> None:
    buffer = ReplayBuffer(100, FLOAT_DIM, (1, 4, 4), n_steps=3, seed=0)
    buffer.add_episode(*episode(6, image_shape=(1, 4, 4)), terminated=True)
    batch = sample_all(buffer, gamma=0.9, batch_size=300)
    assert batch.state_images.dtype == np.uint8 and batch.state_images.shape == (300, 1, 4, 4)
    np.testing.assert_array_equal(batch.state_images[:, 0, 0, 0], batch.state_floats[:, 1])
    np.testing.assert_array_equal(batch.next_images[:, 0, 0, 0], batch.next_floats[:, 1])


def test_mini_race_resamples_time_reduces_n_and_is_terminal_at_the_horizon() -> None:
    duration, n_steps, gamma = 10, 3, 0.5
    buffer = ReplayBuffer(1000, FLOAT_DIM, None, n_steps=n_steps, seed=2)
    buffer.add_episode(*episode(200), terminated=False)  # long episode: the mini-race is the only cut
    batch = sample_all(buffer, gamma=gamma, duration=duration, batch_size=5000)
    current = batch.state_floats[:, 0]
    assert set(current.astype(int).tolist()) == set(range(duration))  # uniform over [0, D)
    counts = np.bincount(current.astype(int), minlength=duration)
    assert counts.min() > 5000 / duration * 0.8
    t = batch.state_floats[:, 1].astype(int)
    for row in range(len(batch)):
        c, time_index = int(current[row]), t[row]
        n_available = min(n_steps, 200 - time_index)  # the last two transitions see fewer than n steps
        n_eff = min(n_available, duration - c)  # reduced to 2 at c = 8 and 1 at c = 9
        rewards = [1.0 + time_index + k for k in range(n_eff)]
        assert batch.returns[row] == pytest.approx(sum(gamma**k * r for k, r in enumerate(rewards)))
        assert batch.next_floats[row, 0] == c + n_eff
        terminal = c + n_eff >= duration  # c >= 7
        assert batch.discounts[row] == pytest.approx(0.0 if terminal else gamma**n_eff)
    # Slots other than 0 are untouched.
    n_available = np.minimum(n_steps, 200 - batch.state_floats[:, 1])
    np.testing.assert_array_equal(batch.next_floats[:, 1] - batch.state_floats[:, 1], n_available)


def test_samples_near_the_mini_race_horizon_do_not_update_their_priority() -> None:
    # D = 10, min horizon 4: a sample at mini-race time c has 10 − c steps left and updates its priority only if
    # 10 − c > 4, i.e. c <= 5 (c = 7..9 are the ones whose n = 3 target the horizon cut short).
    buffer = ReplayBuffer(100, FLOAT_DIM, None, n_steps=3, seed=5, prioritized=True,
                          min_horizon_to_update_priority_actions=4)
    buffer.add_episode(*episode(50), terminated=False)
    batch = sample_all(buffer, gamma=0.9, duration=10, batch_size=500)
    current = batch.state_floats[:, 0].astype(int)
    np.testing.assert_array_equal(batch.updates_priority, current <= 5)
    assert set(current.tolist()) == set(range(10))
    cut_by_horizon = batch.next_floats[:, 0] >= 10  # c + n_eff reached D: no bootstrap, target cut short
    assert cut_by_horizon.any() and not batch.updates_priority[cut_by_horizon].any()
    # Without a mini-race (D = 0) every sample updates.
    assert sample_all(buffer, gamma=0.9, duration=0, batch_size=50).updates_priority.all()
    with pytest.raises(UserError, match="min_horizon_to_update_priority_actions"):
        ReplayBuffer(10, FLOAT_DIM, None, n_steps=3, min_horizon_to_update_priority_actions=-1)


def test_mini_race_keeps_the_episode_end_terminal() -> None:
    buffer = ReplayBuffer(100, FLOAT_DIM, None, n_steps=3, seed=3)
    buffer.add_episode(*episode(2), terminated=True)  # t=0: n_avail 2, ends the race; t=1: n_avail 1
    batch = sample_all(buffer, gamma=0.9, duration=100, batch_size=500)
    assert np.all(batch.discounts[batch.state_floats[:, 0] < 90] == 0.0)


def test_ring_overwrites_the_oldest_transitions() -> None:
    buffer = ReplayBuffer(5, FLOAT_DIM, None, n_steps=1, seed=0)
    buffer.add_episode(*episode(4, first_reward=0.0), terminated=True)
    buffer.add_episode(*episode(4, first_reward=100.0), terminated=True)
    assert len(buffer) == 5 and buffer.capacity == 5
    kept_rewards = sorted(buffer.rewards[:, 0].tolist())
    assert kept_rewards == [3.0, 100.0, 101.0, 102.0, 103.0]  # the oldest three were overwritten


def test_episode_longer_than_capacity_keeps_its_last_transitions() -> None:
    buffer = ReplayBuffer(4, FLOAT_DIM, None, n_steps=1, seed=0)
    assert buffer.add_episode(*episode(10), terminated=True) == 4
    assert sorted(buffer.rewards[:, 0].tolist()) == [7.0, 8.0, 9.0, 10.0]


def test_resize_grow_keeps_everything_and_shrink_keeps_the_most_recent() -> None:
    buffer = ReplayBuffer(6, FLOAT_DIM, (1, 2, 2), n_steps=2, seed=0, prioritized=True)
    buffer.add_episode(*episode(4, first_reward=0.0, image_shape=(1, 2, 2)), terminated=True)
    buffer.add_episode(*episode(4, first_reward=10.0, image_shape=(1, 2, 2)), terminated=False)  # wraps
    rewards_before = buffer.rewards[:, 0].copy()
    buffer.update_priorities(np.arange(6), np.arange(6, dtype=np.float64))
    priority_of_reward = dict(zip(rewards_before.tolist(), buffer.sum_tree.leaf_values(np.arange(6)), strict=True))

    buffer.resize(10)
    assert len(buffer) == 6 and buffer.capacity == 10
    # Chronological order after a resize: oldest first.
    assert buffer.rewards[:6, 0].tolist() == [2.0, 3.0, 10.0, 11.0, 12.0, 13.0]
    for slot in range(6):
        assert buffer.sum_tree.leaf_values([slot])[0] == pytest.approx(priority_of_reward[buffer.rewards[slot, 0]])
    np.testing.assert_array_equal(buffer.state_images[:6, 0, 0, 0], buffer.state_floats[:6, 1])
    buffer.add_episode(*episode(2, first_reward=50.0, image_shape=(1, 2, 2)), terminated=True)
    assert len(buffer) == 8

    buffer.resize(3)
    assert len(buffer) == 3 and buffer.capacity == 3
    assert buffer.rewards[:, 0].tolist() == [13.0, 50.0, 51.0]
    assert buffer.sum_tree.total == pytest.approx(buffer.sum_tree.leaf_values(np.arange(3)).sum())
    batch = buffer.sample(64, gamma=0.9)
    assert set(batch.indices.tolist()) <= {0, 1, 2}


def test_prioritized_weights_follow_beta() -> None:
    alpha, beta, eps = 0.5, 0.4, 1e-3
    buffer = ReplayBuffer(4, FLOAT_DIM, None, n_steps=1, seed=0, prioritized=True,
                          prio_alpha=alpha, prio_beta=beta, prio_epsilon=eps)
    buffer.add_episode(*episode(4), terminated=True)
    raw = np.array([1.0, 4.0, 9.0, 16.0])
    buffer.update_priorities(np.arange(4), raw)
    batch = buffer.sample(400, gamma=0.9)
    p = (raw + eps) ** alpha
    probability = p / p.sum()
    w = (4 * probability) ** -beta
    expected = w / w.max()  # w_i = (N·P(i))^{-β} / max w over the batch; every slot appears in 400 draws
    np.testing.assert_allclose(batch.weights, expected[batch.indices], rtol=1e-5)


def test_bad_settings_are_user_errors() -> None:
    with pytest.raises(UserError, match="capacity"):
        ReplayBuffer(0, FLOAT_DIM, None, n_steps=3)
    with pytest.raises(UserError, match="n_steps"):
        ReplayBuffer(10, FLOAT_DIM, None, n_steps=0)
    buffer = ReplayBuffer(10, FLOAT_DIM, None, n_steps=3)
    with pytest.raises(UserError, match="capacity"):
        buffer.resize(0)
    with pytest.raises(ValueError, match="floats"):
        buffer.add_episode(None, np.zeros((3, FLOAT_DIM), np.float32), np.zeros(3), np.zeros(3), True)


def test_mini_race_duration_in_actions() -> None:
    assert mini_race_duration_actions(7_000, 50) == 140  # Linesight's 7 s mini-race
    assert mini_race_duration_actions(0, 50) == 0


@pytest.mark.parametrize("duration", [0, 7])
def test_compiled_batch_equals_the_numpy_reference(duration: int) -> None:
    # The sample is gathered in one compiled loop; it must equal the vectorised definitions in nstep.py applied to
    # the same slots and mini-race times, on a buffer with episode ends, cutoffs and short episodes.
    n_steps, gamma = 3, 0.93
    buffer = ReplayBuffer(500, FLOAT_DIM, None, n_steps=n_steps, seed=8, prioritized=True,
                          min_horizon_to_update_priority_actions=2)
    rng = np.random.default_rng(1)
    for length in (1, 2, 5, 40, 120):
        images, floats, actions, _ = episode(length)
        buffer.add_episode(images, floats, actions, rng.standard_normal(length), terminated=bool(length % 2))
    buffer.update_priorities(np.arange(len(buffer)), rng.random(len(buffer)) * 3)
    batch = buffer.sample(300, gamma, duration)
    slots = batch.indices
    if duration > 0:
        time_now = batch.state_floats[:, 0].astype(np.int64)
        n_effective, terminal = mini_race_horizon(buffer.n_available[slots], buffer.episode_ends[slots], time_now,
                                                  duration)  # fmt: skip
        np.testing.assert_array_equal(batch.next_floats[:, 0], time_now + n_effective)
        np.testing.assert_array_equal(batch.updates_priority, duration - time_now > 2)
    else:
        n_effective, terminal = buffer.n_available[slots], buffer.episode_ends[slots]
        np.testing.assert_array_equal(batch.state_floats, buffer.state_floats[slots])
        assert batch.updates_priority.all()
    np.testing.assert_array_equal(batch.state_floats[:, 1:], buffer.state_floats[slots, 1:])
    np.testing.assert_array_equal(batch.next_floats[:, 1:], buffer.next_floats[slots, 1:])
    np.testing.assert_array_equal(batch.actions, buffer.actions[slots])
    np.testing.assert_array_equal(batch.returns, discounted_nstep_returns(buffer.rewards[slots], n_effective, gamma))
    expected_discounts = np.where(terminal, 0.0, np.power(gamma, n_effective)).astype(np.float32)
    np.testing.assert_array_equal(batch.discounts, expected_discounts)


def test_stratified_sample_equals_the_sum_tree_reference() -> None:
    # One compiled loop draws the slots and their importance weights; the reference walks the SumTree per slice.
    buffer = ReplayBuffer(300, FLOAT_DIM, None, n_steps=1, seed=4, prioritized=True, prio_alpha=0.6, prio_beta=0.4)
    buffer.add_episode(*episode(250), terminated=True)
    buffer.update_priorities(np.arange(250), np.random.default_rng(2).random(250) ** 3)
    buffer.rng = np.random.default_rng(11)
    reference_rng = np.random.default_rng(11)
    batch = buffer.sample(64, 0.9)
    uniforms = reference_rng.random(64)
    tree = buffer.sum_tree
    slots = np.minimum(tree.find_prefix_sum((np.arange(64) + uniforms) * (tree.total / 64)), len(buffer) - 1)
    probabilities = tree.leaf_values(slots) / tree.total
    weights = (len(buffer) * probabilities) ** -0.4
    np.testing.assert_array_equal(batch.indices, slots)
    np.testing.assert_allclose(batch.weights, weights / weights.max(), rtol=1e-6)


def test_priority_update_equals_the_sum_tree_reference() -> None:
    alpha, eps = 0.3, 1e-2
    buffer = ReplayBuffer(100, FLOAT_DIM, None, n_steps=1, seed=0, prioritized=True, prio_alpha=alpha,
                          prio_epsilon=eps)  # fmt: skip
    buffer.add_episode(*episode(100), terminated=True)
    reference = SumTree(100)
    reference.set(np.arange(100), np.ones(100))  # new transitions at max priority 1
    rng = np.random.default_rng(3)
    for _ in range(5):
        slots, priorities = rng.integers(0, 100, 64), rng.standard_normal(64).astype(np.float32)
        buffer.update_priorities(slots, priorities)
        reference.set(slots, (np.abs(priorities.astype(np.float64)) + eps) ** alpha)
    np.testing.assert_allclose(buffer.sum_tree.nodes, reference.nodes, rtol=1e-12)
    with pytest.raises(NonFinitePriorityError):
        buffer.update_priorities(np.array([1, 2]), np.array([0.5, np.nan]))
    np.testing.assert_allclose(buffer.sum_tree.nodes, reference.nodes, rtol=1e-12)  # left unchanged

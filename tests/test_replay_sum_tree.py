"""Sum tree: sums, prefix-sum search, and sampling frequencies proportional to priorities (chi-square)."""

from __future__ import annotations

import numpy as np

from trackrl.replay import ReplayBuffer, SumTree

# Chi-square critical value at p = 0.001 for 7 degrees of freedom (statistics tables).
CHI2_CRITICAL_DF7_P001 = 24.322


def test_total_and_prefix_search_by_hand() -> None:
    tree = SumTree(5)
    tree.set(np.arange(5), np.array([1.0, 2.0, 0.0, 3.0, 4.0]))
    assert tree.total == 10.0
    # Cumulative sums 1, 3, 3, 6, 10: u in [0,1) → 0, [1,3) → 1, [3,6) → 3 (leaf 2 is empty), [6,10) → 4.
    found = tree.find_prefix_sum(np.array([0.0, 0.99, 1.0, 2.99, 3.0, 5.99, 6.0, 9.99]))
    assert found.tolist() == [0, 0, 1, 1, 3, 3, 4, 4]
    tree.set(np.array([4, 4]), np.array([7.0, 0.5]))  # duplicate index: the last value wins
    assert tree.total == 6.5


def test_sampling_frequencies_match_priorities() -> None:
    priorities = np.array([1.0, 2.0, 3.0, 4.0, 0.5, 6.0, 7.0, 8.0])
    tree = SumTree(len(priorities))
    tree.set(np.arange(len(priorities)), priorities)
    rng = np.random.default_rng(12345)
    n_draws = 50_000
    leaves = tree.find_prefix_sum(rng.random(n_draws) * tree.total)
    observed = np.bincount(leaves, minlength=len(priorities))
    expected = n_draws * priorities / priorities.sum()
    chi_square = float(((observed - expected) ** 2 / expected).sum())
    assert chi_square < CHI2_CRITICAL_DF7_P001


def test_prioritized_buffer_samples_in_proportion_to_priority_power_alpha() -> None:
    alpha = 0.6
    buffer = ReplayBuffer(8, 2, None, n_steps=1, seed=7, prioritized=True, prio_alpha=alpha, prio_epsilon=1e-6)
    floats = np.zeros((9, 2), dtype=np.float32)
    buffer.add_episode(None, floats, np.zeros(8, dtype=np.int64), np.zeros(8, dtype=np.float32), terminated=True)
    raw = np.array([1.0, 2.0, 3.0, 4.0, 0.5, 6.0, 7.0, 8.0])
    buffer.update_priorities(np.arange(8), raw)
    counts = np.zeros(8)
    for _ in range(100):
        counts += np.bincount(buffer.sample(500, gamma=0.9).indices, minlength=8)
    expected = counts.sum() * raw**alpha / (raw**alpha).sum()
    chi_square = float(((counts - expected) ** 2 / expected).sum())
    assert chi_square < CHI2_CRITICAL_DF7_P001

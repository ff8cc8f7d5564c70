"""A sum tree over transition priorities for proportional prioritised replay (Schaul et al. 2016).

Leaves hold p_i = (|priority_i| + ε)^α; every internal node holds the sum of its two children, so the root is
Σ p_i and a prefix-sum search finds, in O(log n), the leaf i with Σ_{k<i} p_k ≤ u < Σ_{k≤i} p_k. Updates and searches
are vectorised over a whole batch: one NumPy operation per tree level, no Python loop per transition.
"""

from __future__ import annotations

import numpy as np


class SumTree:
    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"SumTree capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        # Leaves start at index `leaf_offset` (a power of two), root at index 1; index 0 is unused.
        self.leaf_offset = 1 << max(0, (capacity - 1).bit_length())
        self.depth = self.leaf_offset.bit_length() - 1
        self.nodes = np.zeros(2 * self.leaf_offset, dtype=np.float64)

    @property
    def total(self) -> float:
        return float(self.nodes[1])

    def leaf_values(self, indices: np.ndarray) -> np.ndarray:
        return self.nodes[self.leaf_offset + np.asarray(indices, dtype=np.int64)]

    def set(self, indices: np.ndarray, values: np.ndarray) -> None:
        """Set leaves ``indices`` to ``values`` (already p^α) and recompute the sums above them."""
        indices = np.asarray(indices, dtype=np.int64)
        values = np.asarray(values, dtype=np.float64)
        if indices.size == 0:
            return
        if np.any(values < 0) or not np.all(np.isfinite(values)):
            raise ValueError("priorities must be finite and non-negative")
        nodes = self.leaf_offset + indices
        self.nodes[nodes] = values  # with duplicate indices the last value wins, as in a sequential loop
        for _ in range(self.depth):
            nodes = np.unique(nodes >> 1)
            self.nodes[nodes] = self.nodes[2 * nodes] + self.nodes[2 * nodes + 1]

    def find_prefix_sum(self, prefix_sums: np.ndarray) -> np.ndarray:
        """Leaf index i for each u with Σ_{k<i} p_k ≤ u < Σ_{k≤i} p_k (u is clipped into [0, total))."""
        remaining = np.asarray(prefix_sums, dtype=np.float64).copy()
        nodes = np.ones(remaining.shape, dtype=np.int64)
        for _ in range(self.depth):
            left = 2 * nodes
            left_sum = self.nodes[left]
            go_right = remaining >= left_sum
            remaining = np.where(go_right, remaining - left_sum, remaining)
            nodes = np.where(go_right, left + 1, left)
        leaves = nodes - self.leaf_offset
        # Float round-off can walk into an empty leaf past the last stored one; pull it back.
        return np.minimum(leaves, self.capacity - 1)

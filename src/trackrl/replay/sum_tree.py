"""A sum tree over transition priorities for proportional prioritised replay (Schaul et al. 2016).

Leaves hold p_i = (|priority_i| + ε)^α; every internal node holds the sum of its two children, so the root is
Σ p_i and a prefix-sum search finds, in O(log n), the leaf i with Σ_{k<i} p_k ≤ u < Σ_{k≤i} p_k. Updates and searches
take a whole batch at once and run as numba kernels (a loop over the batch and the tree levels, compiled), like the
simulator: no Python loop per transition and no per-level temporary arrays.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True)
def _set_leaves(nodes: np.ndarray, leaf_offset: int, indices: np.ndarray, values: np.ndarray) -> None:
    """Write the leaves in order (with duplicate indices the last value wins), then recompute their ancestors."""
    for k in range(indices.shape[0]):
        nodes[leaf_offset + indices[k]] = values[k]
    for k in range(indices.shape[0]):
        node = (leaf_offset + indices[k]) >> 1
        while node >= 1:
            nodes[node] = nodes[2 * node] + nodes[2 * node + 1]
            node >>= 1


@numba.njit(cache=True)
def find_leaf(nodes: np.ndarray, leaf_offset: int, prefix_sum: float) -> int:
    """The leaf i with Σ_{k<i} p_k ≤ u < Σ_{k≤i} p_k: one walk from the root, left when u is below the left sum."""
    remaining = prefix_sum
    node = 1
    while node < leaf_offset:
        left = 2 * node
        if remaining >= nodes[left]:
            remaining -= nodes[left]
            node = left + 1
        else:
            node = left
    return node - leaf_offset


@numba.njit(cache=True)
def _find_prefix_sums(nodes: np.ndarray, leaf_offset: int, capacity: int, prefix_sums: np.ndarray) -> np.ndarray:
    leaves = np.empty(prefix_sums.shape[0], dtype=np.int64)
    for k in range(prefix_sums.shape[0]):
        # Float round-off can walk into an empty leaf past the last stored one; pull it back.
        leaves[k] = min(find_leaf(nodes, leaf_offset, prefix_sums[k]), capacity - 1)
    return leaves


class SumTree:
    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"SumTree capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        # Leaves start at index `leaf_offset` (a power of two), root at index 1; index 0 is unused.
        self.leaf_offset = 1 << max(0, (capacity - 1).bit_length())
        self.nodes = np.zeros(2 * self.leaf_offset, dtype=np.float64)

    @property
    def total(self) -> float:
        return float(self.nodes[1])

    def leaf_values(self, indices: np.ndarray) -> np.ndarray:
        return self.nodes[self.leaf_offset + np.asarray(indices, dtype=np.int64)]

    def set(self, indices: np.ndarray, values: np.ndarray) -> None:
        """Set leaves ``indices`` to ``values`` (already p^α) and recompute the sums above them."""
        indices = np.ascontiguousarray(indices, dtype=np.int64)
        values = np.ascontiguousarray(values, dtype=np.float64)
        if indices.size == 0:
            return
        if np.any(values < 0) or not np.all(np.isfinite(values)):
            raise ValueError("priorities must be finite and non-negative")
        if indices.min() < 0 or indices.max() >= self.capacity:
            raise IndexError(f"sum tree leaf index out of range [0, {self.capacity})")
        _set_leaves(self.nodes, self.leaf_offset, indices, values)

    def find_prefix_sum(self, prefix_sums: np.ndarray) -> np.ndarray:
        """Leaf index i for each u with Σ_{k<i} p_k ≤ u < Σ_{k≤i} p_k (u past the total gives the last leaf)."""
        prefix_sums = np.ascontiguousarray(prefix_sums, dtype=np.float64)
        return _find_prefix_sums(self.nodes, self.leaf_offset, self.capacity, prefix_sums)

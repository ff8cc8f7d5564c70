"""Progress along a map's centre line by virtual checkpoints (VCP), Linesight's rule (GAME_BRIDGE.md §7.3-7.5).

One implementation for both backends: the simulator steps every car with the batched `update_zone_indices`; the game
backend follows its one car with `ZoneProgress` (the same numba kernel, batch 1).

Public API (the game backend calls these):
    zone_line(centerline_m, checkpoint_positions_m=None) -> ZoneLine
        the `.npy` line (N, 3) with 20 points extrapolated before the start and 1,000 after the end, smoothed
        zc[5:-5] = (zc[:-10] + zc[10:]) / 2, its transitions (midpoints), segment lengths, cumulative length and unit
        directions; with checkpoint positions (world metres, e.g. from a `.Challenge.Gbx`) the real-checkpoint sync.
    sync_real_checkpoints(centers_m, checkpoint_positions_m) -> (positions (N, 3), radius_m (N,))
    ZoneProgress(line, cutoff_ms)          one car: .reset(), .update(position_m, race_time_ms) -> distance (m),
                                           .zone_index, .furthest_zone_index, .no_progress(race_time_ms)
    step_reward(advanced_m, duration_ms, rewards_config) -> float (§7.5, the simulator's config keys)
    no_progress_cutoff(race_time_ms, last_progress_improvement_ms, cutoff_ms) -> bool

Zone update (`update_zone_index`): from index i, move forward while the next centre is no further than the current one,
within MAX_DISTANCE_TO_VIRTUAL_CHECKPOINT_M, not into the 1,000 extrapolated points after the end, and (if VCP i is
linked to a real checkpoint) while the car is within that checkpoint's radius; then move backward while the previous
centre is strictly nearer and within the maximum distance (never below index 1). The distance along the line is the
cumulative length up to transition i − 1 plus the car's projection on the segment from transition i − 1, clipped to it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np

from trackrl.config import RewardsConfig

N_EXTRAPOLATED_BEFORE_START = 20  # Linesight's n_zone_centers_extrapolate_before_start_of_map
N_EXTRAPOLATED_AFTER_END = 1000  # Linesight's n_zone_centers_extrapolate_after_end_of_map
SMOOTHING_HALF_WINDOW = 5  # zc[5:-5] = 0.5 · (zc[:-10] + zc[10:])
# Linesight: sqrt((0.5 / 2)² + (90 / 2)²): half a 0.5 m zone along the line and half of a 90 m wide road across it.
MAX_DISTANCE_TO_VIRTUAL_CHECKPOINT_M = math.sqrt((0.5 / 2) ** 2 + (90 / 2) ** 2)
REAL_CHECKPOINT_RADIUS_M = 12.0  # the car must pass within this of a real checkpoint to advance past its VCP
REAL_CHECKPOINT_MASK_ZONES = 200  # VCPs either side of a linked one that the same checkpoint cannot link again
UNCONSTRAINED_RADIUS_M = 9_999_999.0


@dataclass(frozen=True, eq=False)
class ZoneLine:
    """The VCP line of one map and what the zone update and the distance along it need (all float64, metres)."""

    centers_m: np.ndarray  # (N, 3) extrapolated and smoothed zone centres
    transitions_m: np.ndarray  # (N - 1, 3) midpoints of consecutive centres
    segment_lengths_m: np.ndarray  # (N - 2,) between consecutive transitions
    cumulative_m: np.ndarray  # (N - 1,) length from transition 0 to transition k
    directions: np.ndarray  # (N - 2, 3) unit vector from transition k to k + 1
    real_checkpoint_positions_m: np.ndarray  # (N, 3) checkpoint linked to VCP k (zeros if none)
    real_checkpoint_radius_m: np.ndarray  # (N,) 12 m where linked, UNCONSTRAINED_RADIUS_M elsewhere
    n_after: int = N_EXTRAPOLATED_AFTER_END

    @property
    def start_index(self) -> int:
        """Index of the line's first real point: where a race starts."""
        return N_EXTRAPOLATED_BEFORE_START

    @property
    def last_index(self) -> int:
        """The furthest index the zone update can reach (the first point after the real ones)."""
        return len(self.centers_m) - 1 - self.n_after

    @property
    def finish_distance_m(self) -> float:
        """Distance along the line of the finish, as Linesight's distance-to-finish input measures it."""
        return float(self.cumulative_m[len(self.centers_m) - self.n_after])


def extrapolate_and_smooth(centerline_m: np.ndarray) -> np.ndarray:
    """Linesight's map loading: 20 points before the start, 1,000 after the end, then the 11-point smoothing."""
    line = np.asarray(centerline_m, dtype=np.float64)
    if line.ndim != 2 or line.shape[1] != 3 or len(line) < 2:
        raise ValueError(f"a centre line must have shape (N >= 2, 3), got {line.shape}")
    before = line[0] + (line[0] - line[1]) * np.arange(N_EXTRAPOLATED_BEFORE_START, 0, -1)[:, None]
    after = line[-1] + (line[-1] - line[-2]) * np.arange(1, N_EXTRAPOLATED_AFTER_END + 1)[:, None]
    centers = np.concatenate([before, line, after])
    w = SMOOTHING_HALF_WINDOW
    centers[w:-w] = 0.5 * (centers[: -2 * w] + centers[2 * w :])
    return centers


def sync_real_checkpoints(
    centers_m: np.ndarray, checkpoint_positions_m: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """Link each real checkpoint to its nearest VCPs (Linesight's sync_virtual_and_real_checkpoints).

    For every checkpoint, while some VCP lies within 12 m: link the nearest one (position, 12 m radius) and mask the
    200 VCPs either side, so a multi-lap map links the same checkpoint once per lap.
    """
    positions = np.zeros((len(centers_m), 3))
    radius = np.full(len(centers_m), UNCONSTRAINED_RADIUS_M)
    if checkpoint_positions_m is None:
        return positions, radius
    checkpoints = np.asarray(checkpoint_positions_m, dtype=np.float64).reshape(-1, 3)
    for checkpoint in checkpoints:
        distance_m = np.linalg.norm(centers_m - checkpoint, axis=1)
        while distance_m.min() < REAL_CHECKPOINT_RADIUS_M:
            k = int(distance_m.argmin())
            positions[k] = checkpoint
            radius[k] = REAL_CHECKPOINT_RADIUS_M
            distance_m[max(0, k - REAL_CHECKPOINT_MASK_ZONES) : k + REAL_CHECKPOINT_MASK_ZONES] = np.inf
    return positions, radius


def zone_line(centerline_m: np.ndarray, checkpoint_positions_m: np.ndarray | None = None) -> ZoneLine:
    """The ZoneLine of a map's centre line (N, 3), with the real-checkpoint sync if positions are given."""
    centers = extrapolate_and_smooth(centerline_m)
    transitions = 0.5 * (centers[1:] + centers[:-1])
    delta = np.diff(transitions, axis=0)
    lengths = np.linalg.norm(delta, axis=1)
    if not np.all(lengths > 0):
        raise ValueError("the centre line repeats a point: consecutive zone transitions coincide")
    positions, radius = sync_real_checkpoints(centers, checkpoint_positions_m)
    return ZoneLine(
        centers_m=np.ascontiguousarray(centers),
        transitions_m=np.ascontiguousarray(transitions),
        segment_lengths_m=lengths,
        cumulative_m=np.concatenate([[0.0], np.cumsum(lengths)]),
        directions=np.ascontiguousarray(delta / lengths[:, None]),
        real_checkpoint_positions_m=positions,
        real_checkpoint_radius_m=radius,
    )


@numba.njit(cache=True)
def _distance_m(points: np.ndarray, k: int, x: float, y: float, z: float) -> float:
    return math.sqrt((points[k, 0] - x) ** 2 + (points[k, 1] - y) ** 2 + (points[k, 2] - z) ** 2)


@numba.njit(cache=True)
def update_zone_index(
    index: int,
    x: float,
    y: float,
    z: float,
    centers: np.ndarray,
    max_distance_m: float,
    real_checkpoint_positions: np.ndarray,
    real_checkpoint_radius_m: np.ndarray,
    last_index: int,
) -> int:
    """The zone index after the car moved to (x, y, z): forward, then backward (module docstring)."""
    d_next = _distance_m(centers, index + 1, x, y, z)
    d_here = _distance_m(centers, index, x, y, z)
    d_prev = _distance_m(centers, index - 1, x, y, z)
    d_real = _distance_m(real_checkpoint_positions, index, x, y, z)
    while (
        d_next <= d_here
        and d_next <= max_distance_m
        and index < last_index
        and d_real < real_checkpoint_radius_m[index]
    ):
        index += 1
        d_prev, d_here = d_here, d_next
        d_next = _distance_m(centers, index + 1, x, y, z)
        d_real = _distance_m(real_checkpoint_positions, index, x, y, z)
    while index >= 2 and d_prev < d_here and d_prev <= max_distance_m:
        index -= 1
        d_next, d_here = d_here, d_prev
        d_prev = _distance_m(centers, index - 1, x, y, z)
    return index


@numba.njit(cache=True)
def distance_along_line_m(
    index: int, x: float, y: float, z: float, transitions: np.ndarray, directions: np.ndarray,
    segment_lengths_m: np.ndarray, cumulative_m: np.ndarray,
) -> float:  # fmt: skip
    """Linesight's distance_since_track_begin: cum[i − 1] + clip((p − trans[i − 1]) · dir[i − 1], 0, len[i − 1])."""
    k = index - 1
    along = (
        (x - transitions[k, 0]) * directions[k, 0]
        + (y - transitions[k, 1]) * directions[k, 1]
        + (z - transitions[k, 2]) * directions[k, 2]
    )
    return cumulative_m[k] + min(max(along, 0.0), segment_lengths_m[k])


@numba.njit(cache=True)
def update_zone_indices(
    zone_index: np.ndarray,
    furthest_zone_index: np.ndarray,
    distance_m: np.ndarray,
    rows: np.ndarray,
    positions: np.ndarray,
    centers: np.ndarray,
    max_distance_m: float,
    real_checkpoint_positions: np.ndarray,
    real_checkpoint_radius_m: np.ndarray,
    last_index: int,
    transitions: np.ndarray,
    directions: np.ndarray,
    segment_lengths_m: np.ndarray,
    cumulative_m: np.ndarray,
    improved: np.ndarray,
) -> None:
    """Batched zone update for the cars in `rows` (positions (B, 3) world x, y, z), in place.

    improved[b] is set to True where the index passed the furthest one reached so far (the no-progress timer restarts).
    """
    for b in rows:
        x, y, z = positions[b, 0], positions[b, 1], positions[b, 2]
        index = update_zone_index(
            zone_index[b], x, y, z, centers, max_distance_m, real_checkpoint_positions, real_checkpoint_radius_m,
            last_index,
        )  # fmt: skip
        zone_index[b] = index
        improved[b] = index > furthest_zone_index[b]
        if improved[b]:
            furthest_zone_index[b] = index
        distance_m[b] = distance_along_line_m(index, x, y, z, transitions, directions, segment_lengths_m, cumulative_m)


def kernel_arguments(line: ZoneLine, max_distance_m: float = MAX_DISTANCE_TO_VIRTUAL_CHECKPOINT_M) -> tuple:
    """The line's arrays in `update_zone_indices`' order after the positions (centers ... cumulative_m)."""
    return (
        line.centers_m, max_distance_m, line.real_checkpoint_positions_m, line.real_checkpoint_radius_m,
        line.last_index, line.transitions_m, line.directions, line.segment_lengths_m, line.cumulative_m,
    )  # fmt: skip


def no_progress_cutoff(race_time_ms: int, last_progress_improvement_ms: int, cutoff_ms: int) -> bool:
    """Linesight's rollout cutoff: no new furthest zone for more than `cutoff_ms` (the 2 s rule)."""
    return race_time_ms > last_progress_improvement_ms + cutoff_ms


def step_reward(advanced_m: float | np.ndarray, duration_ms: float | np.ndarray, rewards: RewardsConfig) -> np.ndarray:
    """Linesight's per-transition reward (§7.5): constant_reward_per_ms · duration + per-metre reward · advance."""
    return rewards.constant_reward_per_ms * np.asarray(duration_ms, dtype=np.float64) + (
        rewards.reward_per_m_advanced_along_centerline * np.asarray(advanced_m, dtype=np.float64)
    )


def shaping_potential(distance_to_current_vcp_m: float | np.ndarray, rewards: RewardsConfig) -> np.ndarray:
    """Linesight's shaping potential Φ(s) = coef · clamp(distance from the car to its current VCP, min, max).

    The reward adds Φ(s') − Φ(s) (Ng et al. 1999 potential-based shaping), with Φ(terminal) = 0 set by the caller.
    """
    distance_m = np.asarray(distance_to_current_vcp_m, dtype=np.float64)
    low_m, high_m = rewards.shaped_reward_min_dist_to_cur_vcp, rewards.shaped_reward_max_dist_to_cur_vcp
    clamped_m = np.clip(distance_m, low_m, high_m)
    return rewards.shaped_reward_dist_to_cur_vcp * clamped_m


class ZoneProgress:
    """One car's progress along a ZoneLine (the game backend): the same kernel as the simulator, batch 1.

    `update(position_m, race_time_ms)` runs the zone update (only above `deck_height_m`, Linesight's default −∞),
    restarts the no-progress timer when the index passes the furthest one, and returns the distance along the line.
    """

    def __init__(
        self,
        line: ZoneLine,
        cutoff_ms: int = 2000,
        max_distance_m: float = MAX_DISTANCE_TO_VIRTUAL_CHECKPOINT_M,
        deck_height_m: float = -math.inf,
    ) -> None:
        self.line = line
        self.cutoff_ms = cutoff_ms
        self.deck_height_m = deck_height_m
        self._arguments = kernel_arguments(line, max_distance_m)
        self._index = np.zeros(1, dtype=np.int64)
        self._furthest = np.zeros(1, dtype=np.int64)
        self._distance = np.zeros(1)
        self._improved = np.zeros(1, dtype=bool)
        self._position = np.zeros((1, 3))
        self._rows = np.zeros(1, dtype=np.int64)
        self.reset()

    def reset(self) -> None:
        """A new race: the index at the line's first real point, the timer at race time 0."""
        start = self.line.start_index
        self._index[0] = self._furthest[0] = start
        self.last_progress_improvement_ms = 0
        p = self.line.centers_m[start]
        self._distance[0] = distance_along_line_m(start, p[0], p[1], p[2], *self._arguments[5:])

    @property
    def zone_index(self) -> int:
        return int(self._index[0])

    @property
    def furthest_zone_index(self) -> int:
        return int(self._furthest[0])

    @property
    def distance_m(self) -> float:
        return float(self._distance[0])

    @property
    def distance_to_finish_m(self) -> float:
        return self.line.finish_distance_m - self.distance_m

    def update(self, position_m: np.ndarray, race_time_ms: int) -> float:
        self._position[0] = position_m
        if self._position[0, 1] > self.deck_height_m:
            update_zone_indices(self._index, self._furthest, self._distance, self._rows, self._position,
                                *self._arguments, self._improved)  # fmt: skip
            if self._improved[0]:
                self.last_progress_improvement_ms = int(race_time_ms)
        else:  # below the deck the index stays; the distance still follows the car
            x, y, z = self._position[0]
            self._distance[0] = distance_along_line_m(self.zone_index, x, y, z, *self._arguments[5:])
        return self.distance_m

    def no_progress(self, race_time_ms: int) -> bool:
        return no_progress_cutoff(race_time_ms, self.last_progress_improvement_ms, self.cutoff_ms)

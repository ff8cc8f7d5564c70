"""Checks a run makes before it allocates or writes anything: does its memory fit the machine, can its folders be
written. Each failure is one UserError giving the numbers or the folder and the cause."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from trackrl.atomic import OutputPathError, check_writable
from trackrl.config.schema import TrackRLConfig
from trackrl.errors import UserError

GIB = 1024**3
# Online and target networks, their gradients and AdamW's two moments: five float32 copies of the parameters.
LEARNER_COPIES = 5
# Per sampled quantile of a batch: the dense activations of the online (forward + backward) and target passes.
ACTIVATION_COPIES = 6


class ResourceError(UserError):
    """The machine cannot hold or store what the run needs."""


@dataclass(frozen=True)
class MemoryEstimate:
    replay_bytes: int
    networks_bytes: int
    batch_bytes: int
    largest_memory_size: int
    bytes_per_transition: int
    n_parameters: int

    @property
    def total_bytes(self) -> int:
        return self.replay_bytes + self.networks_bytes + self.batch_bytes


def count_parameters(config: TrackRLConfig, float_input_dim: int) -> int:
    """Exact parameter count of the configured network, built on the meta device (no memory is allocated)."""
    import torch

    from trackrl.agent.networks import build_network

    zeros = np.zeros(float_input_dim, dtype=np.float32)
    with torch.device("meta"):
        network = build_network(config, float_input_dim, zeros, zeros + 1.0)
    return sum(p.numel() for p in network.parameters())


def estimate_memory(config: TrackRLConfig, count_networks: bool = True) -> MemoryEstimate:
    """The replay buffer at its largest scheduled size, one batch, and (``count_networks``: needs torch) the
    learner's and collectors' copies of the network."""
    from trackrl.replay.buffer import bytes_per_transition
    from trackrl.sim.observation import float_input_dim

    dim = float_input_dim(config.environment)
    image_shape = (1, config.nn.image_height_px, config.nn.image_width_px) if config.nn.use_image else None
    row_bytes = bytes_per_transition(dim, image_shape, config.training.n_steps, config.memory.use_prioritized_replay)
    largest = max(int(size) for _, size in config.memory.memory_size_schedule)
    n_parameters = count_parameters(config, dim) if count_networks else 0
    # One inference copy per collector and one in shared memory, besides the learner's copies.
    copies = LEARNER_COPIES + config.performance.gpu_collectors_count + 1
    nn_config, batch_size = config.nn, config.training.batch_size
    quantile_width = nn_config.dense_hidden_dimension + nn_config.iqn_embedding_dimension
    batch_bytes = batch_size * row_bytes + ACTIVATION_COPIES * 4 * batch_size * nn_config.iqn_n * quantile_width
    return MemoryEstimate(largest * row_bytes, copies * 4 * n_parameters, batch_bytes, largest, row_bytes, n_parameters)


def available_memory_bytes() -> int | None:
    """MemAvailable of /proc/meminfo (what can be allocated without swapping), else free pages; None if unknown."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def format_bytes(n_bytes: float) -> str:
    return f"{n_bytes / GIB:,.1f} GiB" if n_bytes >= GIB else f"{n_bytes / 1024**2:,.0f} MiB"


def check_memory(config: TrackRLConfig, available_bytes: int | None = None, count_networks: bool = True
                 ) -> MemoryEstimate:  # fmt: skip
    """Refuse a config whose estimated memory exceeds what the machine has available (before allocating it)."""
    estimate = estimate_memory(config, count_networks)
    available = available_memory_bytes() if available_bytes is None else available_bytes
    if available is None or estimate.total_bytes <= available:
        return estimate
    parts = [
        f"replay buffer {format_bytes(estimate.replay_bytes)} (memory.memory_size_schedule up to "
        f"{estimate.largest_memory_size:,} transitions x {estimate.bytes_per_transition:,} bytes; "
        "environment.n_zone_centers_in_inputs and nn image sizes set the bytes)"
    ]
    if estimate.n_parameters:
        parts.append(f"networks {format_bytes(estimate.networks_bytes)} ({estimate.n_parameters:,} parameters)")
    parts.append(f"one batch {format_bytes(estimate.batch_bytes)} (training.batch_size, nn.iqn_n)")
    raise ResourceError(
        f"the run needs about {format_bytes(estimate.total_bytes)} of memory but the machine has "
        f"{format_bytes(available)} available: {', '.join(parts)}. Lower these sizes."
    )


def check_folders_writable(*folders: Path) -> None:
    """Create each folder and write a probe file in it: a read-only or full disk fails now, naming the folder."""
    for folder in folders:
        try:
            check_writable(Path(folder) / ".trackrl-write-probe")
        except OutputPathError as error:
            cause = str(error).rpartition("cannot write there ")[2] or str(error)
            raise ResourceError(f"cannot write to folder {folder} {cause}") from None

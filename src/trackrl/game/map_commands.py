"""`trackrl track from-replay` and `trackrl track checkpoints`: the game's .Gbx files to Linesight-format .npy files."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from trackrl.atomic import atomic_write, check_writable
from trackrl.errors import UserError
from trackrl.game.gbx_maps import (
    checkpoint_positions_m,
    fastest_ghost,
    race_samples,
    read_checkpoint_blocks,
    read_ghosts,
    reference_line,
    respawn_warnings,
)
from trackrl.sim.track import POINT_SPACING_M, load_track


def save_npy(path: Path, array: np.ndarray) -> None:
    atomic_write(path, lambda handle: np.save(handle, array, allow_pickle=False))


def cmd_track_from_replay(args: argparse.Namespace) -> int:
    source, output = Path(args.replay), Path(args.output)
    check_writable(output)  # before parsing: a bad output path fails first
    ghost = fastest_ghost(read_ghosts(source), str(source))
    samples = race_samples(ghost, str(source))
    for warning in respawn_warnings(ghost, samples):
        print(f"warning: {source}: {warning}", file=sys.stderr)
    line = reference_line(samples, POINT_SPACING_M)
    save_npy(output, line)
    length_m = float(np.linalg.norm(np.diff(line, axis=0), axis=1).sum())
    print(f"{output}: {len(line)} points every {POINT_SPACING_M} m, {length_m:.1f} m, from {ghost.name} of {source} "
          f"({ghost.race_time_ms / 1000:.3f} s, {len(samples)} samples every {ghost.sample_period_ms} ms)")  # fmt: skip
    try:
        load_track(str(output))
    except UserError as error:  # still a valid line for the game; only the simulator cannot drive it
        print(f"note: the simulator cannot load it as a track ({error}); the game backend can still use it")
    else:
        print(f"check it: trackrl track info {output}")
    return 0


def cmd_track_checkpoints(args: argparse.Namespace) -> int:
    source, output = Path(args.challenge), Path(args.output)
    check_writable(output)
    blocks = read_checkpoint_blocks(source)
    positions = checkpoint_positions_m(blocks)
    save_npy(output, positions)
    for block, (x, y, z) in zip(blocks, positions, strict=True):
        print(f"{block.kind:<13} {block.name:<40} block {block.block_xyz}  at ({x:.1f}, {y:.1f}, {z:.1f}) m")
    n_checkpoints = sum(block.kind == "checkpoint" for block in blocks)
    print(f"{output}: {len(blocks)} positions ({n_checkpoints} checkpoints + start/finish), N x 3 float64 metres")
    return 0

"""`trackrl config validate|show`."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from trackrl.config.loader import ConfigError, config_to_yaml, load_config
from trackrl.config.schedules import current_schedule_values
from trackrl.config.schema import TrackRLConfig


def check_maps_exist(config: TrackRLConfig, source: str) -> None:
    """Every map of the cycle is a built-in track or an existing file (the schema cannot know the built-in names:
    they belong to the simulator, imported here by the command only)."""
    from trackrl.sim.track import builtin_track_names

    builtin = builtin_track_names()
    problems = [
        f"  map_cycle.entries[{i}].map: '{entry.map}' is not a built-in track ({', '.join(builtin)}) and no such file"
        for i, entry in enumerate(config.map_cycle.entries)
        if entry.map not in builtin and not Path(entry.map).is_file()
    ]
    if problems:
        raise ConfigError("\n".join([f"{source}: invalid configuration ({len(problems)} problem(s))", *problems]))


def cmd_validate(args: argparse.Namespace) -> int:
    """The file, its maps, and whether its replay buffer and batch fit this machine's memory (what `train` checks
    first; the networks are left out here so that validating does not import torch)."""
    from trackrl.train.resources import check_memory

    config = load_config(args.file)
    check_maps_exist(config, args.file)
    check_memory(config, count_networks=False)
    print(f"{args.file}: OK")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    if args.at_frames is not None and not (math.isfinite(args.at_frames) and args.at_frames >= 0):
        raise ConfigError(f"--at-frames must be a finite number of frames >= 0, got {args.at_frames}")
    config = load_config(args.file)
    print(config_to_yaml(config), end="")
    if args.at_frames is not None:
        print(f"# schedule values at {args.at_frames:g} frames (global_schedule_speed={config.global_schedule_speed})")
        for name, value in current_schedule_values(config, args.at_frames).items():
            print(f"# {name}: {value!r}")
    return 0

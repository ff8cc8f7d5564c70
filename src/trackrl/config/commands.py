"""`trackrl config validate|show`."""

from __future__ import annotations

import argparse

from trackrl.config.loader import config_to_yaml, load_config
from trackrl.config.schedules import current_schedule_values


def cmd_validate(args: argparse.Namespace) -> int:
    load_config(args.file)
    print(f"{args.file}: OK")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    config = load_config(args.file)
    print(config_to_yaml(config), end="")
    if args.at_frames is not None:
        print(f"# schedule values at {args.at_frames:g} frames (global_schedule_speed={config.global_schedule_speed})")
        for name, value in current_schedule_values(config, args.at_frames).items():
            print(f"# {name}: {value!r}")
    return 0

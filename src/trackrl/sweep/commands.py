"""`trackrl sweep NAME --config A --config B --seeds N [--set key=v1,v2]...`, `--resume`, `--status`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console

from trackrl.atomic import atomic_write_text
from trackrl.sweep.grid import SweepError, TrialSpec, build_grid, config_yaml, parse_set
from trackrl.sweep.runner import run_sweep, trial_table
from trackrl.sweep.state import SWEEP_FILE, Sweep, Trial, load_sweep, sweep_folder

THREADS_KEY = "performance.learner_torch_threads"


def trial_cpus(trial: TrialSpec, cpus_per_trial: int | None) -> int:
    """Default: one CPU per collector process + one for the learner."""
    return cpus_per_trial or trial.config.performance.gpu_collectors_count + 1


def _with_threads(trial: TrialSpec, cpus: int) -> TrialSpec:
    """The learner's torch threads = the CPUs left after the collectors (1 with the default packing)."""
    if THREADS_KEY in trial.overrides:
        return trial
    collectors = trial.config.performance.gpu_collectors_count
    trial.config.performance.learner_torch_threads = max(1, cpus - collectors)
    return trial


def new_sweep(args: argparse.Namespace) -> Sweep:
    save_dir = Path(args.save_dir)
    folder = sweep_folder(save_dir, args.name)
    if (folder / SWEEP_FILE).exists():
        raise SweepError(f"{folder / SWEEP_FILE} exists: continue it with --resume, or pick another NAME")
    if args.cpus_per_trial is not None and args.cpus_per_trial < 1:
        raise SweepError(f"--cpus-per-trial must be at least 1, got {args.cpus_per_trial}")
    if args.max_minutes is None and args.max_frames is None:
        raise SweepError("give --max-minutes or --max-frames: every trial needs an end")
    overrides = [parse_set(text) for text in args.set or []]
    specs = build_grid(args.config or [], overrides, args.seeds)  # validates every cell before anything starts
    sweep = Sweep(
        name=args.name, save_dir=str(save_dir), logdir=str(args.logdir), command=["trackrl", *sys.argv[1:]],
        grid={"configs": args.config, "sets": {o.key: list(o.values) for o in overrides}, "seeds": args.seeds},
        max_frames=args.max_frames, max_minutes=args.max_minutes, cpus_per_trial=args.cpus_per_trial,
    )  # fmt: skip
    for spec in specs:
        cpus = trial_cpus(spec, args.cpus_per_trial)
        config_file = folder / "configs" / f"{spec.name}.yaml"
        atomic_write_text(config_file, config_yaml(_with_threads(spec, cpus)))
        sweep.trials[spec.name] = Trial(spec.name, spec.source_config, spec.overrides, spec.seed, str(config_file),
                                        cpus)  # fmt: skip
    sweep.save()
    return sweep


def cmd_sweep(args: argparse.Namespace) -> int:
    console = Console() if sys.stdout.isatty() else Console(width=160)
    if args.status or args.resume:
        if args.config or args.set:
            raise SweepError("--resume/--status take the grid from sweep.json; drop --config/--set")
        sweep = load_sweep(Path(args.save_dir), args.name)
        if args.status:
            console.print(trial_table(sweep))
            return 0
    else:
        sweep = new_sweep(args)
    address = args.address  # None: RAY_ADDRESS if set, else a local Ray on this machine
    sweep = run_sweep(sweep, address, console)
    console.print(trial_table(sweep))
    counts = sweep.counts()
    if counts.get("failed"):
        return 1
    return 130 if set(counts) - {"finished"} else 0

"""`trackrl train` and `trackrl replay`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from trackrl.config.loader import load_config
from trackrl.config.schema import TrackRLConfig
from trackrl.train.checkpoint import CONFIG_SNAPSHOT_FILE, CheckpointError
from trackrl.train.run import TrainOptions, config_differences, race_time_ratio, train

DEFAULT_CONFIG = "configs/a01.yaml"


def resolve_config(config_path: str | None, run_dir: Path, resume: bool) -> TrackRLConfig:
    """New run: --config (default configs/a01.yaml). Resume: the run's snapshot, unless --config is given
    explicitly, in which case it wins and every difference from the snapshot is printed as a warning."""
    if not resume:
        return load_config(config_path or DEFAULT_CONFIG)
    snapshot_path = run_dir / CONFIG_SNAPSHOT_FILE
    if not snapshot_path.is_file():
        raise CheckpointError(f"{snapshot_path}: file not found (cannot resume without the run's config snapshot)")
    snapshot = load_config(snapshot_path)
    if config_path is None:
        return snapshot
    given = load_config(config_path)
    differences = config_differences(snapshot, given)
    if differences:
        print(f"warning: {config_path} differs from {snapshot_path}; using {config_path}:", file=sys.stderr)
        for line in differences:
            print(f"  {line}", file=sys.stderr)
    return given


def cmd_train(args: argparse.Namespace) -> int:
    run_name_hint = args.run_name
    if run_name_hint is None:
        run_name_hint = load_config(args.config or DEFAULT_CONFIG).run_name if not args.resume or args.config else None
    if run_name_hint is None:
        raise CheckpointError("--resume needs --run-name (or --config naming the run) to find save/<run>")
    run_dir = Path(args.save_dir) / run_name_hint
    config = resolve_config(args.config, run_dir, args.resume)
    options = TrainOptions(
        run_name=run_name_hint,
        save_dir=Path(args.save_dir),
        logdir=Path(args.logdir),
        resume=args.resume,
        max_minutes=args.max_minutes,
        max_frames=args.max_frames,
        live=not args.no_live,
    )
    summary = train(config, options)
    print(
        f"stopped ({summary.stop_reason}) at {summary.frames:,} frames, {summary.batches_done:,} batches, "
        f"{summary.races:,} races; save-state in {summary.run_dir}"
    )
    for name, ratio in race_time_ratio(summary.best_ms, summary.reference_ms).items():
        finding = " (faster than the optimal line driven in the simulator: a finding)" if ratio < 1 else ""
        print(f"best {name}: {summary.best_ms[name] / 1000:.3f} s = {ratio:.3f} x achieved time{finding}")
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from trackrl.train.best_runs import first_divergence, replay_best_run

    best_run, simulated = replay_best_run(Path(args.best_run_dir))
    saved_s, simulated_s = best_run.race_time_ms / 1000, simulated.race_time_ms / 1000
    if simulated.finished and simulated.race_time_ms == best_run.race_time_ms:
        print(f"OK: {best_run.map_name} re-simulated in {simulated_s:.3f} s = saved {saved_s:.3f} s")
        return 0
    status = "finished" if simulated.finished else "did not finish"
    print(f"mismatch: {best_run.map_name} saved {saved_s:.3f} s, re-simulated {simulated_s:.3f} s ({status})")
    step = first_divergence(best_run.trajectory_m, simulated.positions_m)
    if step is not None:
        time_ms = step * 10 * best_run.environment.tm_engine_step_per_action
        print(
            f"  the trajectory leaves the saved one after action {step} (t = {time_ms} ms): "
            "the simulator or its config changed since the run was saved"
        )
    return 1

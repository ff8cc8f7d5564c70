"""`trackrl train` and `trackrl replay`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from trackrl.config.loader import load_config
from trackrl.config.schema import TrackRLConfig
from trackrl.errors import UserError
from trackrl.train.checkpoint import CONFIG_SNAPSHOT_FILE, CheckpointError
from trackrl.train.run import TrainOptions, config_differences, race_time_ratio, train
from trackrl.train.summary import best_line, stopped_line

if TYPE_CHECKING:
    from trackrl.sim.rollout import SimulatedRace
    from trackrl.train.best_runs import BestRun

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
    options = TrainOptions(  # checks the name and the limits before any file is read or written
        run_name=run_name_hint,
        save_dir=Path(args.save_dir),
        logdir=Path(args.logdir),
        resume=args.resume,
        init_from=args.init_from,
        max_minutes=args.max_minutes,
        max_frames=args.max_frames,
        live=not args.no_live,
    )
    config = resolve_config(args.config, Path(args.save_dir) / run_name_hint, args.resume)
    summary = train(config, options)
    print(stopped_line(summary.stop_reason, summary.frames, summary.batches_done, summary.races, summary.run_dir))
    for name, ratio in race_time_ratio(summary.best_ms, summary.reference_ms).items():
        print(best_line(name, summary.best_ms[name], ratio))
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from trackrl.train.best_runs import first_divergence, replay_best_run

    video = getattr(args, "video", None)
    if video is not None:
        from trackrl.viz.video import check_video_path

        check_video_path(video)  # before the re-simulation: a wrong suffix fails at once
    plot = getattr(args, "plot", None)
    if plot is not None and Path(plot).suffix.lower() != ".png":
        raise UserError(f"--plot {plot}: the file must end in .png")
    speed = float(getattr(args, "speed", 1.0))
    if not 0.05 <= speed <= 10.0:
        raise UserError(f"--speed must be between 0.05 and 10 (1 = real time, 20 actions per second), got {speed}")
    best_run, simulated = replay_best_run(Path(args.best_run_dir), record_images=video is not None)
    saved_s, simulated_s = best_run.race_time_ms / 1000, simulated.race_time_ms / 1000
    matches = simulated.finished and simulated.race_time_ms == best_run.race_time_ms
    if matches:
        print(f"OK: {best_run.map_name} re-simulated in {simulated_s:.3f} s = saved {saved_s:.3f} s")
    else:
        status = "finished" if simulated.finished else "did not finish"
        print(f"mismatch: {best_run.map_name} saved {saved_s:.3f} s, re-simulated {simulated_s:.3f} s ({status})")
        step = first_divergence(best_run.trajectory_m, simulated.positions_m)
        if step is not None:
            time_ms = step * 10 * best_run.environment.tm_engine_step_per_action
            print(
                f"  the trajectory leaves the saved one after action {step} (t = {time_ms} ms): "
                "the simulator or its config changed since the run was saved"
            )
    if video is not None or plot is not None:
        _draw_replay(args, best_run, simulated, speed, note="" if matches else " (re-simulated; differs from saved)")
    return 0 if matches else 1


def _draw_replay(
    args: argparse.Namespace, best_run: BestRun, simulated: SimulatedRace, speed: float, note: str
) -> None:
    """--video: top-down frames at real time x speed; --plot: the line, the reference and the time-delta strip."""
    import numpy as np

    from trackrl.sim.track import load_track

    track = load_track(best_run.map_name, best_run.road_width_m)
    label = f"best run {Path(args.best_run_dir).name}{note}"
    if getattr(args, "video", None) is not None:
        from trackrl.viz.video import race_frames, write_video

        actions_per_s = 1000.0 / (10 * best_run.environment.tm_engine_step_per_action)
        fps = actions_per_s * speed
        actions = np.asarray(best_run.actions, dtype=np.int64)
        frames = race_frames(track, simulated, actions, fps, title=f"{track.name} · {label}")
        count = write_video(frames, args.video, fps)
        print(f"wrote {args.video} ({count} frames at {fps:g} fps)")
    if getattr(args, "plot", None) is not None:
        from trackrl.viz.lines import RunLine, write_line_plot

        run = RunLine(label, simulated.positions_m, simulated.speeds_mps, simulated.race_time_ms, simulated.finished)
        write_line_plot(args.plot, track, run, simulated.progress_m, simulated.race_times_ms / 1000.0)
        print(f"wrote {args.plot}")

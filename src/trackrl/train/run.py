"""One training run: the learner (this process) driving the collector processes (docs/architecture.md "Training").

Loop: poll rollouts (never blocking) → log each race, add it to the buffer if its map fills it → replace dead
collectors → do the batches the replay ratio owes (a few at a time, so that queues keep draining) → publish the
weights → every few seconds log the training scalars and refresh the console → every
``training.checkpoint_every_minutes`` write the save-state atomically. Stops on --max-minutes, --max-frames,
Ctrl-C or SIGTERM (with a final checkpoint) or on a NaN/inf loss (without one: the last good checkpoint stays).

Seeds: the learner, the buffer and each collector incarnation get fixed seeds from ``config.seed``, so every random
draw is reproducible; which weights a collector holds at a given action depends on process timing (as in Linesight),
so two runs agree statistically, not bit for bit. The replay ratio is enforced by backpressure, so the learning done
per frame does not depend on the machine's speed.
"""

from __future__ import annotations

import contextlib
import math
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from trackrl.atomic import remove_stale_temp_files
from trackrl.config.loader import config_to_dict, config_to_yaml
from trackrl.config.schedules import current_schedule_values
from trackrl.config.schema import TrackRLConfig, check_run_name
from trackrl.errors import UserError
from trackrl.train import tb
from trackrl.train.best_runs import save_best_run, set_aside_best_runs_after
from trackrl.train.checkpoint import BEST_RUNS_DIR, CheckpointError, checkpoint_exists, load_checkpoint, save_checkpoint
from trackrl.train.collector import CollectorSpec, Rollout, rollout_bytes_upper_bound, run_collector
from trackrl.train.console import ConsoleView, ProgressSnapshot
from trackrl.train.hardware import record_session, session_record
from trackrl.train.learner_loop import LearnerLoop, TrainingDivergedError, first_non_finite_weight
from trackrl.train.map_cycle import MapCycle
from trackrl.train.processes import CollectorPool, SharedWeights
from trackrl.train.resources import check_folders_writable, check_memory
from trackrl.train.run_lock import LOCK_FILE, RunLock
from trackrl.train.stats import AccumulatedStats, RaceOutcome, record_race
from trackrl.viz.lines import LineImages, speeds_from_positions

BATCHES_PER_POLL = 8  # gradient steps between two polls of the rollout queues
MAX_BATCHES_OWED_TO_POLL = 32  # beyond this debt the learner lets the queues fill (backpressure on collectors)
IDLE_SLEEP_S = 0.01


class RunExistsError(UserError):
    """Starting a run whose save or log folder already exists, without --resume."""


@dataclass
class TrainOptions:
    run_name: str
    save_dir: Path
    logdir: Path
    resume: bool = False
    init_from: str | None = None  # a run (name under save_dir, or folder): start from its weights, fresh counters
    max_minutes: float | None = None
    max_frames: float | None = None
    live: bool = True
    collector_fn: Callable[..., None] = run_collector
    log_every_s: float = 5.0

    def __post_init__(self) -> None:
        check_run_name(self.run_name, "--run-name")
        if self.resume and self.init_from is not None:
            raise UserError("--init-from starts a new run from another run's weights; it cannot be used with --resume")
        for option, value in (("--max-minutes", self.max_minutes), ("--max-frames", self.max_frames)):
            if value is not None and not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise UserError(f"{option} must be a positive finite number, got {value!r}")


@dataclass
class TrainSummary:
    run_dir: Path
    frames: int
    batches_done: int
    races: int
    stop_reason: str
    best_ms: dict[str, int] = field(default_factory=dict)
    reference_ms: dict[str, int] = field(default_factory=dict)  # achieved (simulator) time per map
    collector_restarts: int = 0


def resolve_device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise UserError("performance.device is 'cuda' but no CUDA device is available; use 'auto' or 'cpu'")
    return device


def resolve_collector_device(collector_device: str, learner_device: str) -> str:
    """Where collectors run inference: 'auto' follows a GPU learner (CPU inference would cost a GPU config ~5x its
    frames per second, biasing a BTR-vs-IQN comparison per wall-clock hour), else the CPU."""
    if collector_device == "auto":
        return learner_device if learner_device.startswith("cuda") else "cpu"
    if collector_device == "cuda" and not torch.cuda.is_available():
        raise UserError("performance.collector_device is 'cuda' but no CUDA device is available; use 'auto' or 'cpu'")
    return collector_device


def collector_seed(seed: int, collector_id: int, incarnation: int) -> int:
    """Distinct, reproducible seeds per collector and per restart (a restarted collector does not replay races)."""
    return (seed * 1_000_003 + collector_id * 10_007 + incarnation * 101) % (2**31)


def check_run_folders(run_dir: Path, tensorboard_dir: Path, resume: bool) -> None:
    """Refuse to start over an existing run (nothing is touched) and to resume a run that has no checkpoint."""
    if resume:
        if not checkpoint_exists(run_dir):
            raise CheckpointError(
                f"{run_dir}: nothing to resume (no accumulated_stats.json); start it without --resume"
            )
        return
    existing = [p for p in (run_dir, tensorboard_dir) if p.exists() and any(f.name != LOCK_FILE for f in p.iterdir())]
    if existing and not checkpoint_exists(run_dir):
        raise RunExistsError(
            f"run {run_dir.name!r} has files but no checkpoint to resume ({', '.join(str(p) for p in existing)}; "
            "an earlier start failed before its first checkpoint?): delete them or choose another --run-name"
        )
    if existing:
        raise RunExistsError(
            f"run {run_dir.name!r} already exists ({', '.join(str(p) for p in existing)}); "
            "pass --resume to continue it, or choose another --run-name"
        )


def other_runs_in(save_dir: Path, run_name: str) -> set[str]:
    """Names of the other runs with a save-state in ``save_dir`` (a suffix folder named like one is not ours)."""
    if not save_dir.is_dir():
        return set()
    return {p.name for p in save_dir.iterdir() if p.name != run_name and checkpoint_exists(p)}


def config_differences(old: TrackRLConfig, new: TrackRLConfig) -> list[str]:
    """Dotted keys whose values differ, e.g. ['training.batch_size: 256 -> 512']."""

    def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
        if isinstance(data, dict):
            flat: dict[str, Any] = {}
            for key, value in data.items():
                flat.update(flatten(value, f"{prefix}{key}."))
            return flat
        return {prefix.rstrip("."): data}

    old_flat, new_flat = flatten(config_to_dict(old)), flatten(config_to_dict(new))
    return [f"{k}: {old_flat.get(k)!r} -> {new_flat.get(k)!r}" for k in sorted(old_flat) if old_flat[k] != new_flat[k]]


class StopFlag:
    """Set by SIGINT/SIGTERM; the loop finishes its step, checkpoints and exits."""

    def __init__(self) -> None:
        self.reason: str | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopFlag:
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(ValueError):  # not the main thread: rely on the limits instead
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc_info: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def _handle(self, signum: int, frame: Any) -> None:
        self.reason = signal.Signals(signum).name


class Trainer:
    """Holds the run's state; ``run()`` is the learner loop."""

    def __init__(self, config: TrackRLConfig, options: TrainOptions) -> None:
        self.config = config
        self.options = options
        self.run_dir = Path(options.save_dir) / options.run_name
        check_run_folders(self.run_dir, Path(options.logdir) / options.run_name, options.resume)
        self._check_inputs()
        self.lock = RunLock(self.run_dir)
        self.lock.acquire()  # a second trainer of this run refuses here, before it reads or writes anything
        try:
            self._build()
        except BaseException:
            self.lock.release()
            raise

    def _check_inputs(self) -> None:
        """Everything that can be refused before the run folder is touched: every map must load (a built-in name or a
        readable .npy), the buffer and networks must fit the machine's memory, the folders must be writable."""
        from trackrl.sim.lap_reference import lap_reference, race_cutoff_warning
        from trackrl.sim.track import load_track

        cycle = MapCycle(self.config.map_cycle)
        self.cycle_length = len(cycle.slots)
        self.reference_ms: dict[str, int] = {}  # the achieved (simulator) time per map: the yardstick of ratios
        self.cutoff_warnings: list[str] = []
        cutoff_ms = self.config.environment.cutoff_rollout_if_race_not_finished_within_duration_ms
        for map_key, (map_name, road_width_m) in cycle.map_key_tracks().items():
            reference = lap_reference(load_track(map_name, road_width_m))
            warning = race_cutoff_warning(map_key, reference.optimal_ms, reference.achieved_ms, cutoff_ms)
            if warning is not None:
                self.cutoff_warnings.append(warning)
            if reference.achieved_ms is not None:
                self.reference_ms[map_key] = reference.achieved_ms
        if self.config.environment.backend == "game":
            from trackrl.game.launcher import check_game_setup

            check_game_setup(self.config)  # a bad path, a missing plugin, a port in use: before anything starts
        check_memory(self.config)
        check_folders_writable(self.run_dir, Path(self.options.logdir) / self.options.run_name)

    def _build(self) -> None:
        from trackrl.agent.learner import Learner
        from trackrl.replay.buffer import ReplayBuffer
        from trackrl.sim.observation import float_input_dim, float_inputs_mean, float_inputs_std

        config, options = self.config, self.options
        self.start_messages: list[str] = list(self.cutoff_warnings)
        learner_state = None
        if options.resume:
            learner_state, stats_data = load_checkpoint(self.run_dir)
            self.stats = AccumulatedStats.from_json_dict(stats_data, str(self.run_dir / "accumulated_stats.json"))
            self.tidy_after_kill()
        else:
            self.stats = AccumulatedStats(seed=config.seed, run_name=options.run_name)
        frames = self.stats.cumul_number_frames_played
        torch.set_num_threads(config.performance.learner_torch_threads)
        env_config = config.environment
        dim = float_input_dim(env_config)
        learner_device = resolve_device(config.performance.device)
        self.collector_device = resolve_collector_device(config.performance.collector_device, learner_device)
        self.hardware = session_record(config, learner_device, self.collector_device, frames)  # threads set above
        self.learner = Learner(
            config, dim, float_inputs_mean(env_config), float_inputs_std(env_config),
            device=learner_device, seed=config.seed, frames_played=frames,
        )
        if learner_state is not None:
            try:
                self.learner.load_state_dict(learner_state)
            except UserError as error:
                raise CheckpointError(f"{self.run_dir / 'learner_state.torch'}: {error}") from None
        if options.init_from is not None:
            from trackrl.train.checkpoint import load_initial_weights

            weights, source = load_initial_weights(options.init_from, Path(options.save_dir))
            self.learner.load_initial_weights(weights, source["checkpoint"])
            self.stats.init_from = source
            self.start_messages.append(f"weights from {source['checkpoint']} ({source['frames']:,} frames there); "
                                       "counters, optimiser and replay start fresh")  # fmt: skip
        image_shape = (1, config.nn.image_height_px, config.nn.image_width_px) if config.nn.use_image else None
        self.buffer = ReplayBuffer(
            int(current_schedule_values(config, frames)["memory_size"]), dim, image_shape, config.training.n_steps,
            seed=config.seed + frames, prioritized=config.memory.use_prioritized_replay,
            prio_alpha=config.memory.prio_alpha, prio_beta=config.memory.prio_beta,
            prio_epsilon=config.memory.prio_epsilon,
            min_horizon_to_update_priority_actions=config.memory.min_horizon_to_update_priority_actions,
        )
        self.loop = LearnerLoop(config, self.learner, self.buffer)
        self.shared_weights = SharedWeights(self.learner.inference_state_dict())
        self.shared_weights.publish(self.learner.inference_state_dict(), frames)
        self.writer = tb.RunWriter(
            str(options.logdir), options.run_name, self.stats.tensorboard_folders,
            # Every event at the checkpoint's frame was written before the checkpoint (race events are logged at
            # the frame count after their race), and the save-state counts those races: purge only what came after.
            purge_step=frames + 1 if options.resume else None,
        )
        if options.resume:
            suffixes = [str(suffix) for _, suffix in config.training.tensorboard_suffix_schedule]
            self.writer.purge_existing(suffixes, other_runs=other_runs_in(Path(options.save_dir), options.run_name))
        self.line_images = LineImages()
        self.config_yaml = config_to_yaml(config)
        self.config_data = config_to_dict(config)
        self.batches_at_start = self.stats.cumul_number_batches_done
        self.hours_at_start = self.stats.cumul_training_hours
        self.frames_at_start = frames
        self.session_start = time.monotonic()
        self.pool = CollectorPool(
            options.collector_fn, self.make_spec, config.performance.gpu_collectors_count,
            config.performance.rollout_queue_size, self.shared_weights,
            first_incarnations={int(k): v for k, v in self.stats.collector_incarnations.items()},
            spool_bytes_needed=rollout_bytes_upper_bound(config) * (config.performance.rollout_queue_size + 1)
            * config.performance.gpu_collectors_count,
        )

    def tidy_after_kill(self) -> None:
        """What a killed session left that the save-state does not know: temp files of interrupted atomic writes,
        best-run folders of races after the checkpoint (moved aside, see best_runs.set_aside_best_runs_after)."""
        folders = [self.run_dir, *sorted((self.run_dir / BEST_RUNS_DIR).glob("*"))]
        stale = [path for folder in folders for path in remove_stale_temp_files(folder)]
        if stale:
            self.start_messages.append(f"removed {len(stale)} temp file(s) of a save interrupted by a kill")
        moved = set_aside_best_runs_after(self.run_dir, self.stats.cumul_number_frames_played)
        if moved:
            self.start_messages.append(
                f"{len(moved)} best run(s) saved after the last checkpoint moved to {moved[0].parent} "
                "(the resumed run continues from before them)"
            )

    # --- collectors -------------------------------------------------------------------------------------------
    def make_spec(self, collector_id: int, incarnation: int) -> CollectorSpec:
        # Collectors start spread over the cycle so that eval races do not all happen at once.
        default_position = collector_id * self.cycle_length // self.config.performance.gpu_collectors_count
        position = self.stats.map_cycle_positions.get(str(collector_id), default_position)
        self.stats.collector_incarnations[str(collector_id)] = incarnation + 1
        return CollectorSpec(
            collector_id=collector_id,
            incarnation=incarnation,
            seed=collector_seed(self.config.seed, collector_id, incarnation),
            config_data=self.config_data,
            map_cycle_position=position,
            frames_at_start=self.stats.cumul_number_frames_played,
            inference_device=self.collector_device,
        )

    # --- per race ---------------------------------------------------------------------------------------------
    @property
    def frames(self) -> int:
        return self.stats.cumul_number_frames_played

    def suffix(self) -> str:
        return str(current_schedule_values(self.config, self.frames)["tensorboard_suffix"])

    def handle_rollout(self, rollout: Rollout) -> None:
        self.stats.cumul_number_frames_played += rollout.n_actions
        self.stats.cumul_transitions_added += self.loop.add_rollout(rollout)
        self.stats.map_cycle_positions[str(rollout.collector_id)] = rollout.map_cycle_position
        outcome = RaceOutcome(
            map_key=rollout.slot.map_key,
            is_exploration=rollout.slot.is_exploration,
            fill_buffer=rollout.slot.fill_buffer,
            finished=rollout.finished,
            race_time_ms=rollout.race_time_ms,
            n_actions=rollout.n_actions,
            mean_q=rollout.mean_q,
        )
        cutoff_ms = self.config.environment.cutoff_rollout_if_race_not_finished_within_duration_ms
        scalars, is_new_best = record_race(self.stats, outcome, cutoff_ms)
        self.writer.add_scalars(scalars, self.frames, self.suffix())
        if is_new_best:
            save_best_run(
                self.run_dir, rollout.slot.map_key, rollout.slot.map_name, rollout.slot.road_width_m,
                rollout.race_time_ms, rollout.actions, rollout.positions_m, self.config.environment,
                self.config.rewards, self.frames,
            )
            self.log_best_line(rollout)
        self.loop.apply_memory_schedule(self.frames)

    def log_best_line(self, rollout: Rollout) -> None:
        """The new best run's line as a TensorBoard image (a ~480 px NumPy drawing on a picture cached per map)."""
        from trackrl.sim.track import load_track

        track = load_track(rollout.slot.map_name, rollout.slot.road_width_m)
        action_ms = 10 * self.config.environment.tm_engine_step_per_action
        speeds_mps = speeds_from_positions(rollout.positions_m, action_ms)
        caption = f"{rollout.race_time_ms / 1000:.3f} s at {self.frames:,} frames"
        image = self.line_images.image(track, rollout.positions_m, speeds_mps, caption)
        self.writer.add_image(tb.best_line_image_tag(rollout.slot.map_key), image, self.frames, self.suffix())

    # --- periodic ---------------------------------------------------------------------------------------------
    def update_counters(self) -> None:
        self.stats.cumul_number_batches_done = self.batches_at_start + self.loop.batches_done
        self.stats.cumul_training_hours = self.hours_at_start + (time.monotonic() - self.session_start) / 3600.0
        self.stats.tensorboard_folders = list(self.writer.folders)

    def log_training_scalars(self, elapsed_s: float, frames_in_window: int, rates: bool = True) -> dict[str, float]:
        """Counters, schedules and (with ``rates``) the window's busy share and throughputs at the current frame.

        At shutdown the window is mostly spent stopping collectors, so its rates would log a spurious 0.
        """
        self.update_counters()
        window = self.loop.take_window()
        schedules = current_schedule_values(self.config, self.frames)
        elapsed_s = max(elapsed_s, 1e-9)
        scalars = {
            tb.TRAINING_BATCHES_DONE: float(self.stats.cumul_number_batches_done),
            tb.CUMUL_TRAINING_HOURS: self.stats.cumul_training_hours,
            tb.LEARNER_PERCENTAGE_TRAINING: window.busy_s / elapsed_s,
            tb.TRANSITIONS_LEARNED_PER_SECOND: window.batches * self.config.training.batch_size / elapsed_s,
            tb.FRAMES_PER_SECOND: frames_in_window / elapsed_s,
            tb.TRAINING_LEARNING_RATE: float(schedules["learning_rate"]),
            tb.RL_EPSILON: float(schedules["epsilon"]),
            tb.RL_EPSILON_BOLTZMANN: float(schedules["epsilon_boltzmann"]),
            tb.RL_GAMMA: float(schedules["gamma"]),
            tb.BUFFER_SIZE: float(len(self.buffer)),
            tb.BUFFER_CAPACITY: float(self.buffer.capacity),
            tb.COLLECTOR_RESTARTS: float(self.pool.restarts),
        }
        if not rates:
            for tag in (tb.LEARNER_PERCENTAGE_TRAINING, tb.TRANSITIONS_LEARNED_PER_SECOND, tb.FRAMES_PER_SECOND):
                del scalars[tag]
        if window.batches:
            scalars[tb.TRAINING_LOSS] = window.loss_sum / window.batches
            scalars[tb.TRAINING_GRAD_NORM] = window.grad_norm_sum / window.batches
        self.writer.add_scalars(scalars, self.frames, self.suffix())
        self.writer.flush()
        return scalars

    def checkpoint(self) -> None:
        inference_state = self.learner.inference_state_dict()
        bad_weight = first_non_finite_weight(inference_state)
        if bad_weight is not None:
            # Never replace the last good checkpoint with NaN/inf weights.
            raise TrainingDivergedError(
                f"training diverged: weight {bad_weight!r} became NaN/inf at frame {self.frames}. "
                f"{self.kept_checkpoint_text()}"
            )
        self.update_counters()
        self.writer.flush()
        self.stats.last_checkpoint_frames = self.frames
        self.stats.checkpoint_generation += 1
        save_checkpoint(
            self.run_dir, inference_state, self.learner.state_dict(), self.stats.to_json_dict(), self.config_yaml
        )

    def learn_one_batch(self) -> None:
        try:
            self.loop.learn_one_batch(self.frames)
        except TrainingDivergedError as error:
            raise TrainingDivergedError(f"{error}. {self.kept_checkpoint_text()}") from None

    def kept_checkpoint_text(self) -> str:
        """The truth about what a diverged run leaves behind (there is always the checkpoint written at its start)."""
        if not checkpoint_exists(self.run_dir):
            return f"Training stopped; no checkpoint of this run exists in {self.run_dir}."
        frames = self.stats.last_checkpoint_frames
        at = "frame 0, the untrained start" if frames == 0 else f"frame {frames}"
        return (
            f"Training stopped without saving; the last good checkpoint ({at}) in {self.run_dir} was kept, and "
            "--resume continues from it (TensorBoard events logged after it are dropped)."
        )

    def snapshot(self, busy_share: float, learned_per_s: float, frames_per_s: float) -> ProgressSnapshot:
        return ProgressSnapshot(
            run_name=self.options.run_name,
            frames=self.frames,
            races=sum(self.stats.cumul_races.values()),
            batches_done=self.batches_at_start + self.loop.batches_done,
            buffer_size=len(self.buffer),
            learner_busy_share=busy_share,
            transitions_learned_per_s=learned_per_s,
            frames_per_s=frames_per_s,
            loss=self.loop.last_loss,
            elapsed_s=time.monotonic() - self.session_start,
            best_ms=dict(self.stats.alltime_min_ms),
            reference_ms=self.reference_ms,
            collector_restarts=self.pool.restarts,
        )

    def limit_reached(self) -> str | None:
        if self.options.max_frames is not None and self.frames >= self.options.max_frames:
            return "max_frames"
        minutes = (time.monotonic() - self.session_start) / 60.0
        if self.options.max_minutes is not None and minutes >= self.options.max_minutes:
            return "max_minutes"
        return None

    # --- the loop ---------------------------------------------------------------------------------------------
    def run(self) -> TrainSummary:
        try:
            return self._run()
        finally:
            self.lock.release()  # also when the first checkpoint or a collector start fails

    def _run(self) -> TrainSummary:
        checkpoint_every_s = 60.0 * self.config.training.checkpoint_every_minutes
        if not self.options.resume:
            self.checkpoint()  # the run exists from now on: a second start without --resume refuses
        record_session(self.run_dir, self.hardware)  # what this session runs on (compare --report: Hardware)
        diverged = False
        stop_reason = "unknown"
        last_log = last_checkpoint = time.monotonic()
        frames_at_last_log = self.frames
        busy_share = learned_per_s = frames_per_s = 0.0
        with StopFlag() as stop, ConsoleView(self.options.live) as console:
            for message in self.start_messages:
                console.message(message)
            reference_scalars = {tb.achieved_ms_tag(name): ms for name, ms in self.reference_ms.items()}
            self.writer.add_scalars(reference_scalars, self.frames, self.suffix())
            self.pool.start()
            try:
                while True:
                    reason = stop.reason or self.limit_reached()
                    if reason is not None:
                        stop_reason = reason
                        break
                    # Backpressure: while the learner owes many batches it stops reading rollouts, the bounded
                    # queues fill up and the collectors wait, which keeps batches * batch_size ≈ ratio * transitions.
                    rollouts = self.pool.poll() if self.loop.batches_owed() <= MAX_BATCHES_OWED_TO_POLL else []
                    for rollout in rollouts:
                        self.handle_rollout(rollout)
                    for collector_id, exit_code in self.pool.restart_dead():
                        console.message(f"collector {collector_id} died (exit code {exit_code}); restarted it")
                    for message in self.pool.take_messages():
                        console.message(message)
                    owed = min(self.loop.batches_owed(), BATCHES_PER_POLL)
                    for _ in range(owed):
                        self.learn_one_batch()
                    if owed:
                        self.shared_weights.publish(self.learner.inference_state_dict(), self.frames)
                    else:
                        self.shared_weights.publish_frames(self.frames)
                        if not rollouts:
                            time.sleep(IDLE_SLEEP_S)
                    now = time.monotonic()
                    if now - last_log >= self.options.log_every_s:
                        scalars = self.log_training_scalars(now - last_log, self.frames - frames_at_last_log)
                        busy_share = scalars[tb.LEARNER_PERCENTAGE_TRAINING]
                        learned_per_s = scalars[tb.TRANSITIONS_LEARNED_PER_SECOND]
                        frames_per_s = scalars[tb.FRAMES_PER_SECOND]
                        last_log, frames_at_last_log = now, self.frames
                    if now - last_checkpoint >= checkpoint_every_s:
                        self.checkpoint()
                        last_checkpoint = now
                    console.update(self.snapshot(busy_share, learned_per_s, frames_per_s))
            except TrainingDivergedError:
                diverged = True
                raise
            finally:
                self.pool.stop()
                try:
                    if not diverged:
                        now = time.monotonic()
                        self.log_training_scalars(now - last_log, self.frames - frames_at_last_log, rates=False)
                        self.checkpoint()
                        console.update(self.snapshot(busy_share, learned_per_s, frames_per_s), force=True)
                finally:
                    self.writer.close()
        return TrainSummary(
            run_dir=self.run_dir,
            frames=self.frames,
            batches_done=self.stats.cumul_number_batches_done,
            races=sum(self.stats.cumul_races.values()),
            stop_reason=stop_reason,
            best_ms=dict(self.stats.alltime_min_ms),
            reference_ms=dict(self.reference_ms),
            collector_restarts=self.pool.restarts,
        )


def train(config: TrackRLConfig, options: TrainOptions) -> TrainSummary:
    return Trainer(config, options).run()


def race_time_ratio(best_ms: dict[str, int], reference_ms: dict[str, int]) -> dict[str, float]:
    """Best race time / achieved time per map (the optimal line driven in the simulator; < 1 means the agent beat
    that driver: a finding, not an error)."""
    return {name: best_ms[name] / reference_ms[name] for name in best_ms if reference_ms.get(name)}


__all__ = [
    "RunExistsError",
    "TrainOptions",
    "TrainSummary",
    "Trainer",
    "check_run_folders",
    "collector_seed",
    "config_differences",
    "race_time_ratio",
    "resolve_collector_device",
    "resolve_device",
    "train",
]

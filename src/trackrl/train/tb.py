"""TensorBoard tag names, in one place: the names Linesight/rulka users already know
(units and definitions: docs/metrics.md).

Global step of every scalar = frames played (environment steps / actions), never gradient updates.
``status`` is "trained" for a map that fills the replay buffer and "blind" for one that does not.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Literal

RaceKind = Literal["explo", "eval"]
MapStatus = Literal["trained", "blind"]

CUMUL_TRAINING_HOURS = "cumul_training_hours"
TRAINING_LOSS = "Training/loss"
TRAINING_BATCHES_DONE = "Training/batches_done"
TRAINING_LEARNING_RATE = "Training/learning_rate"
TRAINING_GRAD_NORM = "Training/grad_norm"
RL_EPSILON = "RL/epsilon"
RL_EPSILON_BOLTZMANN = "RL/epsilon_boltzmann"
RL_GAMMA = "RL/gamma"
BUFFER_SIZE = "Buffer/size"
BUFFER_CAPACITY = "Buffer/capacity"
LEARNER_PERCENTAGE_TRAINING = "Performance/learner_percentage_training"
TRANSITIONS_LEARNED_PER_SECOND = "Performance/transitions_learned_per_second"
FRAMES_PER_SECOND = "Performance/frames_per_second"
COLLECTOR_RESTARTS = "Performance/collector_restarts"


def map_status(fill_buffer: bool) -> MapStatus:
    return "trained" if fill_buffer else "blind"


def race_time_tag(kind: RaceKind, status: MapStatus, map_name: str) -> str:
    """Race time in seconds; a race not finished is logged as the cutoff (300 s by default)."""
    return f"Race/{kind}_race_time_{status}_{map_name}"


def race_finished_tag(kind: RaceKind, status: MapStatus, map_name: str) -> str:
    """1.0 for a finished race, 0.0 otherwise."""
    return f"Race/{kind}_race_finished_{status}_{map_name}"


def eval_race_time_robust_tag(status: MapStatus, map_name: str) -> str:
    """Eval race time (s), logged only for finishes faster than 1.02 x the rolling mean of finished evals."""
    return f"Race/eval_race_time_robust_{status}_{map_name}"


def alltime_min_ms_tag(map_name: str) -> str:
    """Best finished race time so far in ms (a DNF is never a best)."""
    return f"alltime_min_ms_{map_name}"


def avg_q_tag(status: MapStatus, map_name: str) -> str:
    return f"RL/avg_Q_{status}_{map_name}"


# Prefixes the analysis uses to recognise families of tags in any log.
RACE_TAG_PREFIX = "Race/"
ALLTIME_MIN_MS_PREFIX = "alltime_min_ms_"
AVG_Q_PREFIX = "RL/avg_Q_"


def newest_event_file_second(folder: Path) -> int | None:
    """Creation second in the newest ``events.out.tfevents.<unix seconds>.<host>...`` name in ``folder``."""
    seconds = []
    for path in folder.glob("events.out.tfevents.*"):
        field = path.name.split(".")[3]
        if field.isdigit():
            seconds.append(int(field))
    return max(seconds, default=None)


def wait_until_new_event_file_sorts_last(folder: Path) -> None:
    """TensorBoard reads a folder's event files in name order, and a purge only drops events of files read before
    the one that carries it. Two files created in the same second differ only by a trailing counter that sorts as
    text ("10" < "9"), so a new file could sort first; waiting (< 1 s) for the next second puts it last."""
    newest = newest_event_file_second(folder) if folder.is_dir() else None
    if newest is not None:
        delay_s = newest + 1 - time.time()
        if delay_s > 0:
            time.sleep(delay_s)


class RunWriter:
    """SummaryWriter wrapper that follows ``training.tensorboard_suffix_schedule``.

    Scalars go to ``<logdir>/<run><suffix>`` where the suffix is the schedule's value at the current frame; every
    folder written is recorded in ``folders`` (saved as accumulated_stats["tensorboard_folders"], which the analysis
    uses to merge a run's folders). On resume, ``purge_step`` = the last checkpointed frame + 1 makes TensorBoard drop
    events a killed process wrote after that checkpoint (SummaryWriter purge_step semantics).
    """

    def __init__(
        self, logdir: str, run_name: str, folders: list[str] | None = None, purge_step: int | None = None
    ) -> None:
        self.logdir = logdir
        self.run_name = run_name
        self.folders: list[str] = list(folders or [])
        self._purge_step = purge_step
        self._writer = None
        self._folder: str | None = None

    def folder_for_suffix(self, suffix: str) -> str:
        return f"{self.run_name}{suffix}"

    def _writer_for(self, suffix: str):  # -> torch.utils.tensorboard.SummaryWriter
        folder = self.folder_for_suffix(suffix)
        if folder != self._folder:
            from torch.utils.tensorboard import SummaryWriter  # lazy: tag names above must stay torch-free

            if self._writer is not None:
                self._writer.close()
            # Purge only a folder this run wrote before the resume point.
            purge_step = self._purge_step if folder in self.folders else None
            wait_until_new_event_file_sorts_last(Path(self.logdir) / folder)
            self._writer = SummaryWriter(log_dir=f"{self.logdir}/{folder}", purge_step=purge_step)
            self._folder = folder
            if folder not in self.folders:
                self.folders.append(folder)
        return self._writer

    def add_scalars(self, scalars: dict[str, float], frames: int, suffix: str, wall_time: float | None = None) -> None:
        writer = self._writer_for(suffix)
        for tag, value in scalars.items():
            writer.add_scalar(tag, float(value), global_step=int(frames), walltime=wall_time)

    def flush(self) -> None:
        if self._writer is not None:
            self._writer.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
            self._folder = None

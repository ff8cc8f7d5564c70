"""TensorBoard tag names, in one place: the names Linesight/rulka users already know
(units and definitions: docs/metrics.md).

Global step of every scalar = frames played (environment steps / actions), never gradient updates.
``status`` is "trained" for a map that fills the replay buffer and "blind" for one that does not.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Literal

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


def race_time_finished_tag(kind: RaceKind, status: MapStatus, map_name: str) -> str:
    """Race time in seconds of finished races only (Linesight's ``{explo|eval}_race_time_finished_*``)."""
    return f"Race/{kind}_race_time_finished_{status}_{map_name}"


def eval_race_time_robust_tag(status: MapStatus, map_name: str) -> str:
    """Eval race time (s), logged only for finishes faster than 1.02 x the rolling mean of finished evals (the mean
    updated with this race, as Linesight; see trackrl.train.stats)."""
    return f"Race/eval_race_time_robust_{status}_{map_name}"


def alltime_min_ms_tag(map_name: str) -> str:
    """Best finished race time so far in ms (a DNF is never a best)."""
    return f"alltime_min_ms_{map_name}"


def best_line_image_tag(map_name: str) -> str:
    """An image (not a scalar) of each new best run's line on the track, at the frame it was driven."""
    return f"Race/best_line_{map_name}"


def avg_q_tag(status: MapStatus, map_name: str) -> str:
    """Eval races only: the mean of Q(s, a) over the race's steps and all actions (Linesight's avg_Q)."""
    return f"RL/avg_Q_{status}_{map_name}"


def achieved_ms_tag(map_name: str) -> str:
    """The map's achieved (simulator) time in ms (sim/lap_reference.py: the optimal line driven in the simulator by a
    tracking controller), logged once per session: the yardstick `trackrl compare` divides best times by."""
    return f"{ACHIEVED_MS_PREFIX}{map_name}"


# Prefixes the analysis uses to recognise families of tags in any log.
RACE_TAG_PREFIX = "Race/"
ALLTIME_MIN_MS_PREFIX = "alltime_min_ms_"
AVG_Q_PREFIX = "RL/avg_Q_"
ACHIEVED_MS_PREFIX = "Reference/achieved_ms_"


def event_file_second(path: Path) -> int | None:
    """Creation second in an ``events.out.tfevents.<unix seconds>.<host>...`` file name, or None."""
    fields = Path(path).name.split(".")
    return int(fields[3]) if len(fields) > 3 and fields[3].isdigit() else None


def newest_event_file_second(folder: Path) -> int | None:
    """Creation second in the newest event file name in ``folder``."""
    seconds = [event_file_second(path) for path in folder.glob("events.out.tfevents.*")]
    return max((s for s in seconds if s is not None), default=None)


def wait_until_new_event_file_sorts_last(folder: Path) -> None:
    """TensorBoard reads a folder's event files in name order, and a purge only drops events of files read before
    the one that carries it. Two files created in the same second differ only by a trailing counter that sorts as
    text ("10" < "9"), so a new file could sort first; waiting (< 1 s) for the next second puts it last."""
    newest = newest_event_file_second(folder) if folder.is_dir() else None
    if newest is not None:
        delay_s = newest + 1 - time.time()
        if delay_s > 0:
            time.sleep(delay_s)


def _has_event_files(folder: Path) -> bool:
    return folder.is_dir() and any(folder.glob("events.out.tfevents.*"))


class RunWriter:
    """SummaryWriter wrapper that follows ``training.tensorboard_suffix_schedule``.

    Scalars go to ``<logdir>/<run><suffix>`` where the suffix is the schedule's value at the current frame; every
    folder written is recorded in ``folders`` (saved as accumulated_stats["tensorboard_folders"], which the analysis
    uses to merge a run's folders). On resume, ``purge_step`` = the last checkpointed frame + 1 makes TensorBoard drop
    events a killed process wrote after that checkpoint (SummaryWriter purge_step semantics). It is applied to every
    folder of the run, listed or not: a process killed before its first periodic checkpoint, stopped by a NaN, or
    after switching into a new suffix folder left events in folders the save-state does not list
    (``purge_existing``), and once per folder and session (a second purge would drop this session's own events),
    never to a folder this session creates.
    """

    def __init__(
        self, logdir: str, run_name: str, folders: list[str] | None = None, purge_step: int | None = None
    ) -> None:
        self.logdir = logdir
        self.run_name = run_name
        self.folders: list[str] = list(folders or [])
        self._purge_step = purge_step
        self._purged: set[str] = set()
        self._writer = None
        self._folder: str | None = None

    def folder_for_suffix(self, suffix: str) -> str:
        return f"{self.run_name}{suffix}"

    def _open(self, folder: str):  # -> torch.utils.tensorboard.SummaryWriter
        from torch.utils.tensorboard import SummaryWriter  # lazy: tag names above must stay torch-free

        path = Path(self.logdir) / folder
        purge_step = None
        # Only a folder that holds events of an earlier session gets the restart marker: a marker in a folder this
        # session creates would also end, for ``compare``'s purge across folders, this session's own earlier events.
        if self._purge_step is not None and folder not in self._purged and _has_event_files(path):
            purge_step = self._purge_step
            self._purged.add(folder)
        wait_until_new_event_file_sorts_last(path)
        return SummaryWriter(log_dir=f"{self.logdir}/{folder}", purge_step=purge_step)

    def purge_existing(self, suffixes: list[str], other_runs: set[str] = frozenset()) -> list[str]:
        """On resume: mark the restart in every existing folder of the run (listed, or named by a suffix of the
        schedule and not a run of its own, ``other_runs``), so that TensorBoard and ``compare`` drop what a killed
        session wrote there after the checkpoint, also in a folder this session never writes to again. Returns the
        folders purged."""
        if self._purge_step is None:
            return []
        by_suffix = [f for f in (self.folder_for_suffix(s) for s in suffixes) if f not in other_runs]
        candidates = dict.fromkeys([*self.folders, *by_suffix])
        purged = []
        for folder in candidates:
            if folder in self._purged or not _has_event_files(Path(self.logdir) / folder):
                continue
            self._open(folder).close()
            purged.append(folder)
            if folder not in self.folders:
                self.folders.append(folder)  # the killed session wrote it: it is part of the run
        return purged

    def _writer_for(self, suffix: str):  # -> torch.utils.tensorboard.SummaryWriter
        folder = self.folder_for_suffix(suffix)
        if folder != self._folder:
            if self._writer is not None:
                self._writer.close()
            self._writer = self._open(folder)
            self._folder = folder
            if folder not in self.folders:
                self.folders.append(folder)
        return self._writer

    def add_scalars(self, scalars: dict[str, float], frames: int, suffix: str, wall_time: float | None = None) -> None:
        writer = self._writer_for(suffix)
        for tag, value in scalars.items():
            writer.add_scalar(tag, float(value), global_step=int(frames), walltime=wall_time)

    def add_image(self, tag: str, image_hwc: Any, frames: int, suffix: str) -> None:
        """An (H, W, 3) uint8 image (TensorBoard stores it as a PNG)."""
        self._writer_for(suffix).add_image(tag, image_hwc, global_step=int(frames), dataformats="HWC")

    def flush(self) -> None:
        if self._writer is not None:
            self._writer.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
            self._folder = None

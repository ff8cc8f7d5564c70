"""Which TensorBoard folders make up a run, and loading a run's scalars from all of them.

The trainer writes ``<logdir>/<run><suffix>/`` with suffixes "", "_2", "_3", ... (a staircase schedule) and records
the folders it wrote in ``<save_dir>/<run>/accumulated_stats.json["tensorboard_folders"]``. That save-state is the
authority. Without it, ``run_K`` (K >= 2) joins ``run`` by name, unless ``run_K`` is a run of its own: it has its own
save dir, another run's save-state claims it, or it is named on the command line (the anchor script swallowed such
runs; docs/metrics.md).
"""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from trackrl.analysis.events import (
    EventFileScalars,
    EventFileWarning,
    ScalarSeries,
    event_files_in,
    merge_series,
    read_event_file,
)
from trackrl.errors import UserError
from trackrl.train import tb

ACCUMULATED_STATS_FILE = "accumulated_stats.json"
CONFIG_SNAPSHOT_FILE = "config_snapshot.yaml"
DEFAULT_RACE_CUTOFF_S = 300.0  # Linesight: a race not finished within 300,000 ms is logged as 300 s
_SUFFIX = re.compile(r"^(?P<base>.+)_(?P<k>\d+)$")


class LogFolderError(UserError):
    """A log folder that is missing, empty, or holds no scalar events."""


@dataclass(frozen=True)
class RunFolders:
    name: str
    folders: list[str]  # folder names under the log dir, in suffix order
    from_save_state: bool  # True when accumulated_stats.json listed the folders


@dataclass
class RunData:
    """Every scalar of one run, merged over its folders and event files."""

    name: str
    folders: list[str]
    series: dict[str, ScalarSeries]
    session_spans: np.ndarray  # (n_files, 2) first/last scalar wall time (s) of each event file
    n_event_files: int
    n_events: int
    problems: list[str] = field(default_factory=list)
    save_state: dict | None = None
    n_purged: int = 0  # events dropped as orphans of a restart (TensorBoard's purge)
    race_cutoff_s: float = DEFAULT_RACE_CUTOFF_S  # race time logged for a DNF

    @property
    def achieved_ms(self) -> dict[str, float]:
        """map -> the achieved (simulator) time the run's training logged (tb.achieved_ms_tag), the last value."""
        prefix = tb.ACHIEVED_MS_PREFIX
        return {tag[len(prefix):]: float(s.value[-1]) for tag, s in self.series.items()
                if tag.startswith(prefix) and len(s) and float(s.value[-1]) > 0}  # fmt: skip

    @property
    def t0(self) -> float:
        """One origin for every tag of the run: its first scalar event (the anchor used one per tag family)."""
        return float(self.session_spans[:, 0].min())

    @property
    def t_end(self) -> float:
        return float(self.session_spans[:, 1].max())

    @property
    def max_step(self) -> int:
        return int(max(int(s.step.max()) for s in self.series.values()))


def _is_plain_name(folder: str) -> bool:
    """A folder directly under the log dir (a hand-edited '../x' must not send the reader elsewhere)."""
    return bool(folder) and "/" not in folder and "\\" not in folder and not folder.startswith(".")


class SaveStateWarning(EventFileWarning):
    """A run's accumulated_stats.json is unreadable: the run is treated as having no save-state."""


def read_accumulated_stats(save_dir: Path, run: str) -> dict | None:
    """A run's save-state, or None when it has none or it is unreadable (warned: one corrupt file of another run
    must not stop every comparison in the folder)."""
    path = save_dir / run / ACCUMULATED_STATS_FILE
    if not path.is_file():
        return None
    problem = None
    try:
        stats = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        problem = f"not readable as JSON ({error})"
    else:
        folders = stats.get("tensorboard_folders", []) if isinstance(stats, dict) else None
        if not isinstance(stats, dict):
            problem = f"expected a JSON object, got {type(stats).__name__}"
        elif not isinstance(folders, list) or not all(isinstance(f, str) and _is_plain_name(f) for f in folders):
            problem = "'tensorboard_folders' is not a list of folder names"
    if problem is not None:
        warnings.warn(f"{path}: {problem}; run '{run}' is read as having no save-state", SaveStateWarning,
                      stacklevel=2)  # fmt: skip
        return None
    return stats


def _suffix_number(folder: str) -> int:
    match = _SUFFIX.match(folder)
    return int(match["k"]) if match else 1


def _check_logdir(logdir: Path) -> list[str]:
    if not logdir.is_dir():
        raise LogFolderError(f"log folder {logdir} does not exist (use --logdir)")
    folders = sorted(p.name for p in logdir.iterdir() if p.is_dir())
    if not folders:
        raise LogFolderError(f"log folder {logdir} has no run folders")
    return folders


def _claimed_by_save_states(save_dir: Path) -> dict[str, str]:
    """folder -> run whose save-state lists it."""
    claims: dict[str, str] = {}
    if not save_dir.is_dir():
        return claims
    for run_dir in sorted(p for p in save_dir.iterdir() if p.is_dir()):
        stats = read_accumulated_stats(save_dir, run_dir.name)
        for folder in (stats or {}).get("tensorboard_folders", []) or []:
            claims.setdefault(str(folder), run_dir.name)
    return claims


def _is_own_run(folder: str, base: str, save_dir: Path, explicit: set[str], claims: dict[str, str]) -> bool:
    return folder in explicit or (save_dir / folder).is_dir() or claims.get(folder, base) != base


def _group_by_suffix(name: str, all_folders: Sequence[str], save_dir: Path, explicit: set[str],
                     claims: dict[str, str]) -> list[str]:  # fmt: skip
    members = [name]
    for folder in all_folders:
        match = _SUFFIX.match(folder)
        in_family = match is not None and match["base"] == name and int(match["k"]) >= 2
        if in_family and not _is_own_run(folder, name, save_dir, explicit, claims):
            members.append(folder)
    return sorted(members, key=_suffix_number)


def resolve_runs(names: Sequence[str], logdir: Path, save_dir: Path) -> list[RunFolders]:
    """The folders of each named run (see the module docstring for the rules)."""
    all_folders = _check_logdir(logdir)
    if len(set(names)) != len(names):
        raise UserError(f"a run is named twice: {', '.join(names)}")
    claims = _claimed_by_save_states(save_dir)
    explicit = set(names)
    runs = []
    for name in names:
        stats = read_accumulated_stats(save_dir, name)
        listed = (stats or {}).get("tensorboard_folders")
        if listed:
            folders = [str(f) for f in listed if (logdir / str(f)).is_dir()]
            if not folders:
                raise LogFolderError(
                    f"run '{name}': {save_dir / name / ACCUMULATED_STATS_FILE} lists folders {listed}, "
                    f"none of which is in {logdir}"
                )
            runs.append(RunFolders(name, sorted(folders, key=_suffix_number), from_save_state=True))
            continue
        if not (logdir / name).is_dir():
            known = ", ".join(all_folders[:12]) + (" ..." if len(all_folders) > 12 else "")
            raise LogFolderError(f"run '{name}': folder {logdir / name} does not exist (runs in {logdir}: {known})")
        runs.append(RunFolders(name, _group_by_suffix(name, all_folders, save_dir, explicit, claims), False))
    owner: dict[str, str] = {}
    for run in runs:
        for folder in run.folders:
            if folder in owner:
                raise UserError(
                    f"folder {logdir / folder} would belong to runs '{owner[folder]}' and '{run.name}' "
                    f"(see {save_dir / owner[folder] / ACCUMULATED_STATS_FILE}); name only one of them"
                )
            owner[folder] = run.name
    return runs


def discover_runs(logdir: Path, save_dir: Path) -> list[RunFolders]:
    """Every run under ``logdir``: save-states first, then the remaining folders grouped by name suffix."""
    all_folders = [f for f in _check_logdir(logdir) if event_files_in(logdir / f)]
    claims = _claimed_by_save_states(save_dir)
    claimed_runs = sorted({run for folder, run in claims.items() if (logdir / folder).is_dir()})
    runs = resolve_runs(claimed_runs, logdir, save_dir) if claimed_runs else []
    taken = {folder for run in runs for folder in run.folders}
    free = [f for f in all_folders if f not in taken]
    roots = []
    for folder in free:
        match = _SUFFIX.match(folder)
        swallowed = (
            match is not None
            and int(match["k"]) >= 2
            and match["base"] in free
            and not _is_own_run(folder, match["base"], save_dir, set(), claims)
        )
        if not swallowed:
            roots.append(folder)
    for root in roots:
        runs.append(RunFolders(root, _group_by_suffix(root, free, save_dir, set(roots), claims), False))
    return runs


def _without_steps_from(series: ScalarSeries, restart_step: int) -> ScalarSeries:
    keep = series.step < restart_step
    return ScalarSeries(series.wall_time[keep], series.step[keep], series.value[keep])


def _finite_mask(series: ScalarSeries, tag: str) -> np.ndarray:
    keep = np.isfinite(series.wall_time)
    if tag == tb.CUMUL_TRAINING_HOURS:  # an axis: NaN, inf or negative hours would poison every interpolation
        keep &= np.isfinite(series.value) & (series.value >= 0)
    return keep


def without_unusable_axes(scalars: EventFileScalars) -> tuple[EventFileScalars, list[str]]:
    """Drop events whose wall time is NaN/inf, and NaN/inf/negative ``cumul_training_hours`` values: they cannot be
    placed on a time axis. Each file with such events gets one warning naming it and the count."""
    masks = {tag: _finite_mask(series, tag) for tag, series in scalars.series.items()}
    n_bad = sum(int((~mask).sum()) for mask in masks.values())
    if n_bad == 0:
        return scalars, []
    series = {
        tag: ScalarSeries(s.wall_time[masks[tag]], s.step[masks[tag]], s.value[masks[tag]])
        for tag, s in scalars.series.items()
    }
    problem = f"{scalars.path}: skipped {n_bad} event(s) with a NaN/inf wall time or NaN/inf/negative training hours"
    warnings.warn(problem, EventFileWarning, stacklevel=2)
    cleaned = EventFileScalars(scalars.path, {t: s for t, s in series.items() if len(s)}, scalars.problems,
                               scalars.n_records, scalars.restart_steps, scalars.n_purged)  # fmt: skip
    return cleaned, [problem]


@dataclass
class FolderScalars:
    """The event files of one folder, oldest first, after the folder's own restart purge."""

    per_file: list[dict[str, ScalarSeries]]
    file_seconds: list[int | None]  # creation second of each file (from its name)
    restarts: list[tuple[int | None, int]]  # (creation second of the file logging it, restart step)
    problems: list[str]
    n_purged: int
    n_values_read: int = 0  # before any purge: 0 means the folder never held a scalar


def read_folder(folder_path: Path) -> FolderScalars:
    """Scalars of each event file of one folder, oldest first, after TensorBoard's restart purge.

    A resumed SummaryWriter (``purge_step``) logs a SessionLog START at the resume step; events that earlier files
    of the same folder hold at or after that step were written after the last checkpoint by the killed process and
    are dropped, as TensorBoard drops them.
    """
    folder = FolderScalars([], [], [], [], 0)
    for path in event_files_in(folder_path):
        scalars = read_event_file(path)  # problems are also warned (EventFileWarning)
        folder.problems.extend(scalars.problems)
        scalars, skipped = without_unusable_axes(scalars)
        folder.problems.extend(skipped)
        folder.n_purged += scalars.n_purged
        folder.n_values_read += scalars.n_purged + sum(len(s) for s in scalars.series.values())
        second = tb.event_file_second(path)
        if scalars.restart_steps:
            restart = min(scalars.restart_steps)
            folder.restarts.append((second, restart))
            folder.n_purged += _drop_steps_from(folder.per_file, range(len(folder.per_file)), restart)
        folder.per_file.append(scalars.series)
        folder.file_seconds.append(second)
    return folder


def _drop_steps_from(per_file: list[dict[str, ScalarSeries]], files: Sequence[int], restart_step: int) -> int:
    """Drop steps >= ``restart_step`` from the given files (in place); return the number of values dropped."""
    dropped = 0
    for i in files:
        before = sum(len(s) for s in per_file[i].values())
        per_file[i] = {tag: _without_steps_from(s, restart_step) for tag, s in per_file[i].items()}
        dropped += before - sum(len(s) for s in per_file[i].values())
    return dropped


def purge_across_folders(folders: list[FolderScalars]) -> int:
    """A restart logged in one folder of a run also ends, at its step, what files of the run's other folders created
    before it hold (TensorBoard purges within a folder only): a resumed run whose killed session had switched into
    a later suffix folder, or written to a folder the resumed session no longer opens. Returns values dropped."""
    dropped = 0
    for i, source in enumerate(folders):
        for restart_second, restart_step in source.restarts:
            if restart_second is None:
                continue
            for j, target in enumerate(folders):
                if j == i:
                    continue
                older = [k for k, s in enumerate(target.file_seconds) if s is not None and s < restart_second]
                dropped += _drop_steps_from(target.per_file, older, restart_step)
    return dropped


def load_run(run: RunFolders, logdir: Path, save_dir: Path) -> RunData:
    """Read every event file of every folder of ``run``; corrupt files are warned about and read in part."""
    parts: dict[str, list[ScalarSeries]] = {}
    spans = []
    problems: list[str] = []
    folders: list[FolderScalars] = []
    for folder in run.folders:
        folder_path = logdir / folder
        if not event_files_in(folder_path):
            raise LogFolderError(f"run '{run.name}': folder {folder_path} has no event files (events.out.tfevents.*)")
        folders.append(read_folder(folder_path))
    n_purged = sum(f.n_purged for f in folders) + purge_across_folders(folders)
    for folder, scalars in zip(run.folders, folders, strict=True):
        problems += scalars.problems
        folder_events = 0
        for file_series in scalars.per_file:
            walls = [s.wall_time for s in file_series.values() if len(s)]
            if not walls:
                continue
            spans.append((min(float(w[0]) for w in walls), max(float(w[-1]) for w in walls)))
            for tag, series in file_series.items():
                if len(series):
                    parts.setdefault(tag, []).append(series)
                    folder_events += len(series)
        if scalars.n_values_read == 0:
            raise LogFolderError(f"run '{run.name}': folder {logdir / folder} has event files but no scalar events")
    series = {tag: merge_series(p) for tag, p in sorted(parts.items())}
    return RunData(
        name=run.name,
        folders=list(run.folders),
        series=series,
        session_spans=np.array(sorted(spans), dtype=np.float64).reshape(-1, 2),
        n_event_files=sum(len(f.per_file) for f in folders),
        n_events=sum(len(s) for s in series.values()),
        problems=problems,
        save_state=read_accumulated_stats(save_dir, run.name),
        n_purged=n_purged,
        race_cutoff_s=race_cutoff_s(save_dir, run.name),
    )


def race_cutoff_s(save_dir: Path, run: str) -> float:
    """The DNF race time of a run: its config snapshot's race cutoff, else Linesight's 300 s."""
    path = save_dir / run / CONFIG_SNAPSHOT_FILE
    if not path.is_file():
        return DEFAULT_RACE_CUTOFF_S
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
        cutoff_ms = config["environment"]["cutoff_rollout_if_race_not_finished_within_duration_ms"]
    except (OSError, UnicodeDecodeError, yaml.YAMLError, KeyError, TypeError):
        return DEFAULT_RACE_CUTOFF_S
    usable = isinstance(cutoff_ms, int | float) and not isinstance(cutoff_ms, bool) and 0 < cutoff_ms < float("inf")
    return float(cutoff_ms) / 1000.0 if usable else DEFAULT_RACE_CUTOFF_S

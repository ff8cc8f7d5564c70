"""Folder grouping (suffix merge without swallowing separate runs), bad log folders, and the hours axis."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from trackrl.analysis.axes import checkpoints, training_hours_at
from trackrl.analysis.events import encode_record, write_scalar_event_file
from trackrl.analysis.options import parse_frames
from trackrl.analysis.runs import LogFolderError, discover_runs, load_run, resolve_runs
from trackrl.cli import main
from trackrl.errors import UserError


def _run_folder(logdir: Path, name: str, wall0: float = 0.0) -> None:
    events = [("Training/loss", 100 * i, wall0 + 10.0 * i, 1.0) for i in range(3)]
    write_scalar_event_file(logdir / name / "events.out.tfevents.1.host", events)


def _save_state(save_dir: Path, run: str, folders: list[str] | None = None) -> None:
    (save_dir / run).mkdir(parents=True)
    stats = {"cumul_number_frames_played": 0, "cumul_training_hours": 0.0, "alltime_min_ms": {}}
    if folders is not None:
        stats["tensorboard_folders"] = folders
    (save_dir / run / "accumulated_stats.json").write_text(json.dumps(stats))


@pytest.fixture
def logdir(tmp_path: Path) -> Path:
    for name in ("X", "X_2", "X_3", "Y"):
        _run_folder(tmp_path / "tb", name)
    return tmp_path / "tb"


def test_suffix_folders_merge_by_name(logdir: Path, tmp_path: Path) -> None:
    (run,) = resolve_runs(["X"], logdir, tmp_path / "save")
    assert run.folders == ["X", "X_2", "X_3"] and not run.from_save_state
    loaded = load_run(run, logdir, tmp_path / "save")
    assert len(loaded.series["Training/loss"]) == 9 and loaded.n_event_files == 3


def test_folder_named_on_the_command_line_is_its_own_run(logdir: Path, tmp_path: Path) -> None:
    x, x2 = resolve_runs(["X", "X_2"], logdir, tmp_path / "save")
    assert x.folders == ["X", "X_3"] and x2.folders == ["X_2"]


def test_folder_with_its_own_save_dir_is_not_swallowed(logdir: Path, tmp_path: Path) -> None:
    _save_state(tmp_path / "save", "X_2")
    (x,) = resolve_runs(["X"], logdir, tmp_path / "save")
    assert x.folders == ["X", "X_3"]


def test_save_state_lists_the_folders_of_a_run(logdir: Path, tmp_path: Path) -> None:
    _save_state(tmp_path / "save", "X", ["X", "X_2"])  # X_3 belongs to something else
    (x,) = resolve_runs(["X"], logdir, tmp_path / "save")
    assert x.folders == ["X", "X_2"] and x.from_save_state
    runs = {r.name: r.folders for r in discover_runs(logdir, tmp_path / "save")}
    assert runs == {"X": ["X", "X_2"], "X_3": ["X_3"], "Y": ["Y"]}


def test_discover_groups_suffixes(logdir: Path, tmp_path: Path) -> None:
    runs = {r.name: r.folders for r in discover_runs(logdir, tmp_path / "save")}
    assert runs == {"X": ["X", "X_2", "X_3"], "Y": ["Y"]}


def test_missing_logdir_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(LogFolderError, match=r"log folder .*nowhere does not exist"):
        resolve_runs(["X"], tmp_path / "nowhere", tmp_path / "save")


def test_missing_run_folder_names_the_folder(logdir: Path, tmp_path: Path) -> None:
    with pytest.raises(LogFolderError, match=r"run 'Z': folder .*tb/Z does not exist \(runs in .*: X, X_2, X_3, Y\)"):
        resolve_runs(["Z"], logdir, tmp_path / "save")


def test_empty_folder_and_folder_without_scalars_are_clear_errors(logdir: Path, tmp_path: Path) -> None:
    (logdir / "empty").mkdir()
    (run,) = resolve_runs(["empty"], logdir, tmp_path / "save")
    with pytest.raises(LogFolderError, match=r"folder .*tb/empty has no event files"):
        load_run(run, logdir, tmp_path / "save")
    (logdir / "novalues").mkdir()
    version_only = encode_record(b"\x09" + np.float64(1.0).tobytes() + b"\x1a\x0dbrain.Event:2")
    (logdir / "novalues" / "events.out.tfevents.1.h").write_bytes(version_only)
    (run,) = resolve_runs(["novalues"], logdir, tmp_path / "save")
    with pytest.raises(LogFolderError, match=r"folder .*tb/novalues has event files but no scalar events"):
        load_run(run, logdir, tmp_path / "save")


def test_cli_reports_bad_log_folder_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compare", "X", "--logdir", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("trackrl compare: error: log folder") and str(tmp_path / "missing") in err
    assert "Traceback" not in err


def test_hours_interpolate_within_sessions_only(tmp_path: Path) -> None:
    logdir = tmp_path / "tb"
    # Session 1: 0..1800 s, 0.5 h logged at its end. Session 2 resumes at 5000 s; hours 0.75 logged at 5900 s.
    write_scalar_event_file(
        logdir / "R" / "events.out.tfevents.1.a",
        [("cumul_training_hours", 0, 0.0, 0.0), ("cumul_training_hours", 10, 1800.0, 0.5)],
    )
    write_scalar_event_file(
        logdir / "R" / "events.out.tfevents.2.b",
        [("Training/loss", 20, 5000.0, 1.0), ("cumul_training_hours", 30, 5900.0, 0.75)],
    )
    (run,) = resolve_runs(["R"], logdir, tmp_path / "save")
    data = load_run(run, logdir, tmp_path / "save")
    hours = training_hours_at(data, np.array([900.0, 1800.0, 3000.0, 5000.0, 5450.0, 5900.0]))
    np.testing.assert_allclose(hours, [0.25, 0.5, 0.5, 0.5, 0.625, 0.75])


def test_checkpoints_and_frame_counts() -> None:
    assert checkpoints(25.0, 10.0) == [10.0, 20.0, 25.0]
    assert checkpoints(30.0, 10.0) == [10.0, 20.0, 30.0]
    assert checkpoints(1.0008, 0.5) == [0.5, 1.0008]  # not 1.0 and 1.0008, both shown as "1 h"
    assert checkpoints(1.02, 0.5) == [0.5, 1.0, 1.02]
    assert checkpoints(60.0, None) == [10.0, 20.0, 30.0, 40.0, 50.0, 60.0]
    assert [parse_frames(t) for t in ("500k", "2.5M", "10M", "1e6", "1234")] == [500_000, 2_500_000, 10_000_000,
                                                                                 1_000_000, 1234]  # fmt: skip
    with pytest.raises(UserError, match="--steps: '10 frames' is not a frame count"):
        parse_frames("10 frames")


def test_cli_warns_about_a_truncated_file_and_uses_the_rest(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    logdir = tmp_path / "tb"
    _run_folder(logdir, "R")
    damaged = write_scalar_event_file(logdir / "R" / "events.out.tfevents.2.b", [("Training/loss", 500, 60.0, 0.5)])
    damaged.write_bytes(damaged.read_bytes()[:-3])  # the last record is cut short
    assert main(["audit", "R", "--logdir", str(logdir), "--save-dir", str(tmp_path / "save")]) == 0
    out = capsys.readouterr().out
    assert "warning:" in out and "events.out.tfevents.2.b: truncated" in out
    assert "0.3" in out  # wall span 0..20 s of the readable events = 0.3 min (the cut event at 60 s is not read)


def test_a_folder_cannot_belong_to_two_named_runs(logdir: Path, tmp_path: Path) -> None:
    _save_state(tmp_path / "save", "X", ["X", "X_2"])
    with pytest.raises(UserError, match=r"folder .*X_2 would belong to runs 'X' and 'X_2'"):
        resolve_runs(["X", "X_2"], logdir, tmp_path / "save")


def test_restart_purge_matches_tensorboard(tmp_path: Path) -> None:
    """A resumed SummaryWriter (purge_step) drops what the killed session wrote after the checkpoint."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from torch.utils.tensorboard import SummaryWriter

    folder = tmp_path / "tb" / "R"
    first = SummaryWriter(str(folder), filename_suffix=".a")
    for step in range(10):  # killed at step 9; last checkpoint at step 6
        first.add_scalar("Training/loss", float(step), global_step=step, walltime=100.0 + step)
    first.close()
    resumed = SummaryWriter(str(folder), purge_step=6, filename_suffix=".b")
    for step in range(6, 12):
        resumed.add_scalar("Training/loss", 100.0 + step, global_step=step, walltime=200.0 + step)
    resumed.close()
    (run,) = resolve_runs(["R"], tmp_path / "tb", tmp_path / "save")
    data = load_run(run, tmp_path / "tb", tmp_path / "save")
    loss = data.series["Training/loss"]
    np.testing.assert_array_equal(loss.step, np.arange(12))
    np.testing.assert_array_equal(loss.value, [0, 1, 2, 3, 4, 5, 106, 107, 108, 109, 110, 111])
    assert data.n_purged == 4
    accumulator = EventAccumulator(str(folder), size_guidance={"scalars": 0})
    accumulator.Reload()
    assert [e.value for e in accumulator.Scalars("Training/loss")] == loss.value.tolist()

"""`compare` / `audit` input that used to hang, crash or mislead (issue 18): options, NaN in logs, a corrupt
save-state of another run, unusable output paths. Each is one line through the CLI (exit 2) or a warning."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from trackrl.analysis.axes import checkpoints, step_checkpoints
from trackrl.analysis.events import write_scalar_event_file
from trackrl.analysis.options import MAX_CHECKPOINT_ROWS, parse_frame_list, parse_frames, parse_interval
from trackrl.analysis.runs import load_run, resolve_runs
from trackrl.cli import main
from trackrl.errors import UserError

LOSS = "Training/loss"
HOURS = "cumul_training_hours"


def _logs(tmp_path: Path, name: str = "R", events: list | None = None) -> Path:
    logdir = tmp_path / "tb"
    events = events or [(LOSS, 1000 * i, 60.0 * i, 1.0) for i in range(11)]  # 0..10 min, 0..10,000 frames
    write_scalar_event_file(logdir / name / "events.out.tfevents.1.host", events)
    return logdir


def _compare(tmp_path: Path, *options: str) -> list[str]:
    return ["compare", "R", "--logdir", str(tmp_path / "tb"), "--save-dir", str(tmp_path / "save"),
            "--time-axis", "wall_minutes", *options]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("0.4", "at least 1 frame"),
        ("2.5", "not a whole number of frames"),
        ("1.0001k", "not a whole number of frames"),
        ("0", "at least 1 frame"),
        ("1e999", "too large"),
        ("nan", "not a frame count"),
        ("inf", "not a frame count"),
        ("-5", "not a frame count"),
    ],
)
def test_bad_frame_counts(text: str, problem: str) -> None:
    with pytest.raises(UserError, match=f"--step-interval: '{text}' .*{problem}"):
        parse_frames(text, "--step-interval")


@pytest.mark.parametrize("text", [",,", "500k,", ",2M", "1M,,2M"])
def test_a_step_list_with_an_empty_entry_is_refused(text: str) -> None:
    with pytest.raises(UserError, match=r"--steps: .* has an empty entry"):
        parse_frame_list(text)


def test_good_frame_counts_still_parse() -> None:
    assert parse_frame_list("2.5M, 500k,500k,1e6") == [500_000, 1_000_000, 2_500_000]
    assert parse_frames("1e+3") == 1000
    assert parse_frames("2.3M") == 2_300_000  # exact, though 2.3 * 1e6 is not in floats


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e999", "0", "-1", "ten", float("nan"), 0.0])
def test_bad_intervals(value: object) -> None:
    with pytest.raises(UserError, match="--interval"):
        parse_interval(value)  # type: ignore[arg-type]


def test_a_tiny_interval_is_refused_instead_of_hanging() -> None:
    with pytest.raises(UserError, match=r"--interval 1e-300 gives 1e\+301 checkpoint rows, more than the limit of 1,0"):
        checkpoints(10.0, 1e-300)
    with pytest.raises(UserError, match=r"--step-interval 1 gives 250,000 checkpoint rows.*use --step-interval 250 "):
        step_checkpoints(None, "1", 250_000)
    with pytest.raises(UserError, match=r"use --step-interval 17 or more"):  # a whole number of frames
        step_checkpoints(None, "1", 16_227)
    assert len(checkpoints(10.0, 10.0 / MAX_CHECKPOINT_ROWS)) == MAX_CHECKPOINT_ROWS  # the limit itself is fine


@pytest.mark.parametrize(
    "options",
    [("--interval", "nan"), ("--interval", "1e999"), ("--interval", "1e-300"), ("--step-interval", "1"),
     ("--steps", "0.4"), ("--steps", ",,"), ("--steps", "1e999")],
)  # fmt: skip
def test_cli_bad_options_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], options: tuple) -> None:
    _logs(tmp_path)
    assert main(_compare(tmp_path, *options)) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"trackrl compare: error: {options[0]}") and err.count("\n") == 1


def test_nan_wall_times_and_hours_are_skipped_with_a_warning(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    good = [(LOSS, 1000 * i, 60.0 * i, 1.0) for i in range(11)]
    hours = [(HOURS, 1000 * i, 60.0 * i, i / 60) for i in range(11)]
    bad = [(LOSS, 500, float("nan"), 9.0), (HOURS, 600, 30.0, float("nan")), (HOURS, 700, 35.0, -1.0),
           (HOURS, 800, float("inf"), 0.1)]  # fmt: skip
    logdir = _logs(tmp_path, events=good + hours + bad)
    (run,) = resolve_runs(["R"], logdir, tmp_path / "save")
    with pytest.warns(UserWarning, match=r"events\.out\.tfevents\.1\.host: skipped 4 event\(s\)"):
        data = load_run(run, logdir, tmp_path / "save")
    assert len(data.series[LOSS]) == 11 and len(data.series[HOURS]) == 11
    assert data.t0 == 0.0 and data.t_end == 600.0
    assert main(_compare(tmp_path, "--time-axis", "auto")) == 0
    out = capsys.readouterr().out
    assert "skipped 4 event(s)" in out and "common window: 0.1667 h" in out  # 10 min of finite hours


def test_a_corrupt_save_state_of_another_run_is_warned_about(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    _logs(tmp_path)
    (tmp_path / "save" / "other").mkdir(parents=True)
    (tmp_path / "save" / "other" / "accumulated_stats.json").write_text('{"tensorboard_folders": [')
    (tmp_path / "save" / "third").mkdir()
    (tmp_path / "save" / "third" / "accumulated_stats.json").write_text(json.dumps({"tensorboard_folders": 3}))
    (tmp_path / "save" / "fourth").mkdir()
    (tmp_path / "save" / "fourth" / "accumulated_stats.json").write_text(json.dumps({"tensorboard_folders": ["../R"]}))
    assert main(_compare(tmp_path)) == 0
    out = capsys.readouterr().out
    assert out.count("other/accumulated_stats.json: not readable as JSON") == 1  # once, though read several times
    assert "third/accumulated_stats.json: 'tensorboard_folders' is not a list" in out
    assert "fourth/accumulated_stats.json: 'tensorboard_folders' is not a list" in out  # '../R' leaves the log dir
    assert "R: folders R" in out


def test_a_warning_is_printed_even_when_loading_then_fails(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    damaged = write_scalar_event_file(tmp_path / "tb" / "R" / "events.out.tfevents.1.h", [(LOSS, 1, 1.0, 1.0)])
    damaged.write_bytes(damaged.read_bytes()[:-3])  # the only scalar is cut: the folder has no readable value
    assert main(_compare(tmp_path)) == 2
    captured = capsys.readouterr()
    assert "events.out.tfevents.1.h: truncated" in captured.out
    assert "has event files but no scalar events" in captured.err


@pytest.mark.parametrize("option", ["--report", "--json"])
def test_output_paths_are_checked_before_any_work(tmp_path: Path, capsys: pytest.CaptureFixture, option: str) -> None:
    (tmp_path / "a_folder").mkdir()
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    for target, problem in ((tmp_path / "a_folder", "is a directory"), (fifo, "is a FIFO"),
                            (Path("/dev/null"), "is a character device")):  # fmt: skip
        # No log folder at all: the output check must come first, or the error would be about the logs.
        assert main(_compare(tmp_path, option, str(target))) == 2
        err = capsys.readouterr().err
        assert f"error: {option} {target}: {problem}, not a regular file" in err
    assert fifo.exists() and not fifo.is_file() and Path("/dev/null").is_char_device()


def test_plots_must_be_a_folder(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "file.png").write_text("x")
    assert main(_compare(tmp_path, "--plots", str(tmp_path / "file.png"))) == 2
    assert "--plots " + str(tmp_path / "file.png") + ": exists and is not a folder" in capsys.readouterr().err


def test_reports_get_normal_permissions_and_follow_symlinks(tmp_path: Path) -> None:
    _logs(tmp_path)
    real = tmp_path / "shared" / "report.md"
    real.parent.mkdir()
    real.write_text("old")
    real.chmod(0o644)
    (tmp_path / "link.md").symlink_to(real)
    previous = os.umask(0o022)
    try:
        assert main(_compare(tmp_path, "--report", str(tmp_path / "link.md"), "--json", str(tmp_path / "c.json"))) == 0
    finally:
        os.umask(previous)
    assert (tmp_path / "link.md").is_symlink() and "R" in real.read_text()
    assert (real.stat().st_mode & 0o777, (tmp_path / "c.json").stat().st_mode & 0o777) == (0o644, 0o644)

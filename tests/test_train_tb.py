"""TensorBoard writer wrapper: suffix schedule, folder list, resume purge; console formatting."""

from __future__ import annotations

import time
from pathlib import Path

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from trackrl.config.schedules import staircase_schedule
from trackrl.train import tb
from trackrl.train.console import ProgressSnapshot, format_best, format_plain_line


def read_scalars(folder: Path, tag: str) -> list[tuple[int, float]]:
    accumulator = EventAccumulator(str(folder), size_guidance={"scalars": 0})
    accumulator.Reload()
    return [(event.step, event.value) for event in accumulator.Scalars(tag)]


def test_suffix_schedule_switches_folders_and_records_them(tmp_path: Path) -> None:
    schedule = [(0, ""), (100, "_2")]
    writer = tb.RunWriter(str(tmp_path), "a01_run")
    for frames in (0, 50, 100, 150):
        writer.add_scalars({tb.TRAINING_LOSS: frames / 10}, frames, staircase_schedule(schedule, frames))
    writer.close()
    assert writer.folders == ["a01_run", "a01_run_2"]
    assert read_scalars(tmp_path / "a01_run", tb.TRAINING_LOSS) == [(0, 0.0), (50, 5.0)]
    assert read_scalars(tmp_path / "a01_run_2", tb.TRAINING_LOSS) == [(100, 10.0), (150, 15.0)]


def test_resume_purges_events_after_the_checkpoint(tmp_path: Path) -> None:
    writer = tb.RunWriter(str(tmp_path), "r")
    for frames in (10, 20, 30):  # the process is killed after a checkpoint at frame 20
        writer.add_scalars({tb.BUFFER_SIZE: frames}, frames, "")
    writer.close()
    resumed = tb.RunWriter(str(tmp_path), "r", folders=writer.folders, purge_step=20)
    resumed.add_scalars({tb.BUFFER_SIZE: 25.0}, 25, "")
    resumed.close()
    assert read_scalars(tmp_path / "r", tb.BUFFER_SIZE) == [(10, 10.0), (25, 25.0)]


def test_a_new_event_file_sorts_after_the_existing_ones(tmp_path: Path) -> None:
    # A file stamped 2 s ahead (the same second as the new one, with slack for a slow import), whose host part sorts
    # after any real host name: a new file from that second would sort before it, and TensorBoard (and trackrl
    # compare) would read it first.
    folder = tmp_path / "r"
    folder.mkdir()
    existing = folder / f"events.out.tfevents.{int(time.time()) + 2}.zzzzzz.1.1"
    existing.write_bytes(b"")
    writer = tb.RunWriter(str(tmp_path), "r", folders=["r"], purge_step=5)
    writer.add_scalars({tb.BUFFER_SIZE: 1.0}, 6, "")
    writer.close()
    names = sorted(p.name for p in folder.iterdir())
    assert len(names) == 2 and names[0] == existing.name


def test_console_line_shows_ratio_to_reference() -> None:
    assert format_best(None, 20_000) == "no finish yet"
    assert format_best(25_000, 20_000) == "25.00 s (1.250 x achieved 20.00 s)"
    snapshot = ProgressSnapshot("r", 1000, 3, 10, 900, 0.5, 1234.0, 99.0, 0.25, 120.0, {"a01": 25_000}, {"a01": 20_000})
    line = format_plain_line(snapshot)
    assert "frames 1,000" in line and "busy 50%" in line and "a01 25.00 s (1.250 x" in line


def test_console_line_shows_no_loss_before_the_first_batch() -> None:
    waiting = ProgressSnapshot("r", 1000, 3, 0, 900, 0.0, 0.0, 99.0, float("nan"), 12.0)
    assert "loss — (filling buffer)" in format_plain_line(waiting)
    resumed = ProgressSnapshot("r", 1000, 3, 40, 0, 0.0, 0.0, 99.0, float("nan"), 12.0)  # replay refilling
    assert "loss — (filling buffer)" in format_plain_line(resumed)
    learning = ProgressSnapshot("r", 1000, 3, 1, 900, 0.5, 256.0, 99.0, 0.0625, 12.0)
    assert "loss 0.0625" in format_plain_line(learning)

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
    assert format_best(19_000, 20_000).endswith("(0.950 x achieved 20.00 s) faster than the optimal line driven in "
                                                "the simulator: a finding")  # fmt: skip
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


def test_best_line_image_is_logged_and_the_scalar_reader_skips_it(tmp_path: Path) -> None:
    import imageio.v2 as imageio
    import numpy as np

    from trackrl.analysis.runs import read_folder
    from trackrl.sim.track import load_track
    from trackrl.viz.lines import LineImages

    track = load_track("easy")
    positions = track.centerline_m[::4]
    speeds = np.linspace(0.0, 60.0, len(positions))
    images = LineImages()
    image = images.image(track, positions, speeds, "12.345 s at 1,000 frames")
    assert image.dtype == np.uint8 and image.shape[2] == 3 and 300 <= max(image.shape[:2]) <= 500
    without_line = images.image(track, positions[:1], speeds[:1], "12.345 s at 1,000 frames")
    assert (np.abs(image.astype(int) - without_line).max(axis=2) > 40).sum() > 500  # the line is drawn
    writer = tb.RunWriter(str(tmp_path), "r")
    writer.add_scalars({tb.BUFFER_SIZE: 1.0}, 10, "")
    writer.add_image(tb.best_line_image_tag("easy"), image, 10, "")
    writer.close()
    accumulator = EventAccumulator(str(tmp_path / "r"), size_guidance={"images": 0})
    accumulator.Reload()
    (logged,) = accumulator.Images("Race/best_line_easy")
    assert logged.step == 10 and (logged.height, logged.width) == image.shape[:2]
    assert np.array_equal(imageio.imread(logged.encoded_image_string), image)  # PNG: lossless
    tags = {tag for series in read_folder(tmp_path / "r").per_file for tag in series}
    assert tags == {tb.BUFFER_SIZE}  # trackrl compare reads scalars only; the image is not a race metric


def test_tag_names_are_the_literal_linesight_names() -> None:
    # Literal strings from REFERENCE.md "TensorBoard tags": the names Linesight/rulka dashboards and `trackrl compare`
    # look for. Written out, not built with the functions under test.
    assert tb.race_time_tag("explo", "trained", "A01") == "Race/explo_race_time_trained_A01"
    assert tb.race_time_tag("eval", "blind", "map5") == "Race/eval_race_time_blind_map5"
    assert tb.race_finished_tag("explo", "blind", "A01") == "Race/explo_race_finished_blind_A01"
    assert tb.race_finished_tag("eval", "trained", "A01") == "Race/eval_race_finished_trained_A01"
    assert tb.eval_race_time_robust_tag("trained", "A01") == "Race/eval_race_time_robust_trained_A01"
    assert tb.alltime_min_ms_tag("A01") == "alltime_min_ms_A01"
    assert tb.avg_q_tag("blind", "A01") == "RL/avg_Q_blind_A01"
    assert (tb.map_status(True), tb.map_status(False)) == ("trained", "blind")
    constants = {
        tb.CUMUL_TRAINING_HOURS: "cumul_training_hours",
        tb.TRAINING_LOSS: "Training/loss",
        tb.TRAINING_LEARNING_RATE: "Training/learning_rate",
        tb.RL_EPSILON: "RL/epsilon",
        tb.RL_GAMMA: "RL/gamma",
        tb.LEARNER_PERCENTAGE_TRAINING: "Performance/learner_percentage_training",
        tb.TRANSITIONS_LEARNED_PER_SECOND: "Performance/transitions_learned_per_second",
        tb.BUFFER_SIZE: "Buffer/size",
    }
    for value, literal in constants.items():
        assert value == literal

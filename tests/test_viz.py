"""trackrl.viz: replay videos, racing-line figures, the track picture's height order, the Gymnasium render, and the
errors for broken best-run folders."""

from __future__ import annotations

from pathlib import Path

import imageio.v2 as imageio
import matplotlib.colors
import numpy as np
import pytest

from trackrl.cli import main
from trackrl.config import EnvironmentConfig, RewardsConfig
from trackrl.sim.drivers import braking_driver_actions, scripted_race_actions
from trackrl.sim.gym_env import RaceEnv
from trackrl.sim.rollout import simulate_actions
from trackrl.sim.track import Track, load_track
from trackrl.train.best_runs import save_best_run
from trackrl.viz import track_drawing
from trackrl.viz.gym_view import DisplayError
from trackrl.viz.lines import RunLine, line_figure, reference_line
from trackrl.viz.topdown import CAR_RGB, FRAME_SIZE_PX
from trackrl.viz.track_drawing import rasterize_track
from trackrl.viz.video import GIF_SCALE, race_frames, still_frame_count, write_video


@pytest.fixture(scope="module")
def easy_race():  # -> (Track, actions, SimulatedRace with camera views)
    track = load_track("easy")
    actions = scripted_race_actions(track, braking_driver_actions)
    return track, actions, simulate_actions(track, actions, record_images=True)


@pytest.fixture()
def best_run_dir(tmp_path: Path, easy_race) -> Path:
    _, actions, race = easy_race
    return save_best_run(tmp_path / "run", "easy", "easy", None, race.race_time_ms, np.asarray(actions),
                         race.positions_m, EnvironmentConfig(), RewardsConfig(), frames=1000)  # fmt: skip


def rgb_of(colour: tuple[float, float, float]) -> np.ndarray:
    return np.round(np.asarray(colour) * 255).astype(int)


# ---- video --------------------------------------------------------------------------------------------------------
def test_replay_video_has_one_frame_per_action_plus_a_still(best_run_dir: Path, easy_race, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture) -> None:  # fmt: skip
    _, actions, _ = easy_race
    video = tmp_path / "out" / "run.mp4"
    assert main(["replay", str(best_run_dir), "--video", str(video), "--speed", "2"]) == 0
    assert "OK" in capsys.readouterr().out
    reader = imageio.get_reader(video)
    fps = reader.get_meta_data()["fps"]
    frames = [frame for frame in reader]
    reader.close()
    assert fps == 40.0  # 20 actions per second of race time, at --speed 2
    assert len(frames) == len(actions) + still_frame_count(fps)
    assert frames[0].shape == (*FRAME_SIZE_PX, 3)
    assert np.abs(frames[0].astype(int) - frames[-1]).mean() > 10  # start and finish look different
    assert not list(video.parent.glob(".*tmp*"))  # written atomically: no temp file left


def test_gif_has_the_same_frames_at_half_size(easy_race, tmp_path: Path) -> None:
    from PIL import Image, ImageSequence

    track, actions, race = easy_race
    count = write_video(race_frames(track, race, np.asarray(actions), 20.0), tmp_path / "run.gif", 20.0)
    assert count == len(actions) + still_frame_count(20.0)
    with Image.open(tmp_path / "run.gif") as gif:
        durations_ms = [frame.info["duration"] for frame in ImageSequence.Iterator(gif)]
        assert gif.size == (FRAME_SIZE_PX[1] // GIF_SCALE, FRAME_SIZE_PX[0] // GIF_SCALE)
    # GIF stores the identical still frames as one frame held for their total time.
    assert len(durations_ms) == len(actions) + 1 and set(durations_ms[:-1]) == {50}
    assert sum(durations_ms) == 50 * count


def test_first_frame_shows_the_car_on_the_start_of_the_road(easy_race) -> None:
    """Found by colour in the (uncompressed) first frame: the car sits on the start line, on the road."""
    track, actions, race = easy_race
    frame = next(race_frames(track, race, np.asarray(actions), 20.0)).astype(int)
    frame = frame[: FRAME_SIZE_PX[0] - 80]  # above the HUD (whose lit accelerate key is green too)
    car_rows, car_cols = np.nonzero((frame == CAR_RGB).all(axis=2))
    start_rows, start_cols = np.nonzero((np.abs(frame - rgb_of(track_drawing.START_RGB)) < 40).all(axis=2))
    assert car_rows.size > 40 and start_rows.size > 20  # a 4 x 2 m car at 4 px/m; a 16 m start line
    car_centre = np.array([car_rows.mean(), car_cols.mean()])
    start_centre = np.array([start_rows.mean(), start_cols.mean()])
    assert np.linalg.norm(car_centre - start_centre) < 3.0  # pixels: the car starts on the start line's middle
    # Around the car (2.5 m ahead, beyond its nose): road grey.
    row, col = np.round(car_centre + np.array([0.0, 10.0])).astype(int)  # easy starts heading +x (to the right)
    assert np.abs(frame[row, col] - rgb_of(track_drawing.ROAD_RGB)).max() < 25


# ---- line plot ----------------------------------------------------------------------------------------------------
def _render(fig) -> np.ndarray:
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba())[:, :, :3].astype(int).copy()


def trail_pixels_outside_road(track: Track, run: RunLine, progress_m: np.ndarray, time_s: np.ndarray) -> int:
    """Render the line figure with and without the run's line: the pixels the line changes must all be road pixels
    of the picture without it (road grey, edge lines, dashes, the reference line), not off-road or wall."""
    fig = line_figure(track, run, progress_m, time_s, reference_line(track))
    track_ax = fig.axes[0]
    run_lines = [c for c in track_ax.collections if c.get_array() is not None and c.get_zorder() == 50]
    assert len(run_lines) == 1
    with_trail = _render(fig)
    for annotation in track_ax.texts:  # the worst-section markers sit on the line; hide them in both renders
        annotation.set_visible(False)
    with_trail = _render(fig)
    run_lines[0].set_visible(False)
    without = _render(fig)
    x0, y0, x1, y1 = np.round(track_ax.get_window_extent().extents).astype(int)
    height = with_trail.shape[0]
    box = (slice(height - y1 + 1, height - y0 - 1), slice(x0 + 1, x1 - 1))  # inside the map axes (rows from top)
    changed = (np.abs(with_trail[box] - without[box]) > 40).any(axis=2)
    assert changed.sum() > 500  # the line is drawn
    off_road = np.zeros(changed.shape, dtype=bool)
    for colour in (track_drawing.OFF_ROAD_RGB, track_drawing.WALL_RGB):
        off_road |= (np.abs(without[box] - rgb_of(colour)) < 30).all(axis=2)
    # Anti-aliasing blends the road's edge over one pixel: a changed pixel is outside only if no neighbour is road.
    road = ~off_road
    road_near = road.copy()
    road_near[1:] |= road[:-1]
    road_near[:-1] |= road[1:]
    road_near[:, 1:] |= road[:, :-1]
    road_near[:, :-1] |= road[:, 1:]
    return int((changed & ~road_near).sum())


def test_line_plot_of_a_scripted_run_stays_inside_the_walls(easy_race) -> None:
    track, _, race = easy_race
    run = RunLine("braking driver", race.positions_m, race.speeds_mps, race.race_time_ms, race.finished)
    assert trail_pixels_outside_road(track, run, race.progress_m, race.race_times_ms / 1000) == 0
    # The check can fail: the same line moved 12 m sideways leaves the road.
    shifted = race.positions_m + np.array([0.0, 0.0, 12.0])
    moved = RunLine("moved", shifted, race.speeds_mps, race.race_time_ms, race.finished)
    assert trail_pixels_outside_road(track, moved, race.progress_m, race.race_times_ms / 1000) > 100


def test_replay_plot_writes_a_png_with_the_time_delta(best_run_dir: Path, tmp_path: Path, easy_race) -> None:
    _, _, race = easy_race
    plot = tmp_path / "line.png"
    assert main(["replay", str(best_run_dir), "--plot", str(plot)]) == 0
    image = imageio.imread(plot)
    assert image.ndim == 3 and image.shape[0] > 400 and image.shape[1] > 600
    fig = line_figure(load_track("easy"), RunLine("r", race.positions_m, race.speeds_mps, race.race_time_ms, True),
                      race.progress_m, race.race_times_ms / 1000, reference_line(load_track("easy")))  # fmt: skip
    # The strip's title states Δt at the finish: the run's time minus the reference's, as computed independently.
    expected_s = race.race_time_ms / 1000 - reference_line(load_track("easy")).time_s[-1]
    title = fig.axes[1].get_title()
    assert title.startswith("Δt at the finish") and float(title.split(":")[1].split()[0]) == pytest.approx(
        expected_s, abs=0.06  # one 50 ms action step: the run's time at the finish distance is interpolated
    )


# ---- broken best-run folders ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("damage", "named"),
    [
        (lambda d: (d / "meta.json").unlink(), "meta.json is missing"),
        (lambda d: (d / "actions.json").write_text("[0, 1, "), "actions.json"),
        (lambda d: (d / "actions.json").write_text("[0, 1, 99]"), "actions.json"),
        (lambda d: (d / "meta.json").write_text('{"track": "easy"}'), "meta.json"),
        (lambda d: (d / "trajectory.npy").write_bytes(b"\x93NUMPY garbage"), "trajectory.npy"),
        (lambda d: np.save(d / "trajectory.npy", np.zeros((3, 3))), "trajectory.npy"),
        (lambda d: (d / "meta.json").write_text('{"track": "no_such_track", "race_time_ms": 1}'), "no_such_track"),
    ],
)
def test_broken_best_run_folder_is_a_one_line_error(best_run_dir: Path, tmp_path: Path, damage, named: str,
                                                   capsys: pytest.CaptureFixture) -> None:  # fmt: skip
    damage(best_run_dir)
    video, plot = tmp_path / "v.mp4", tmp_path / "p.png"
    assert main(["replay", str(best_run_dir), "--video", str(video), "--plot", str(plot)]) == 2
    err = capsys.readouterr().err
    assert named in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not video.exists() and not plot.exists()


def test_wrong_video_suffix_fails_before_simulating(best_run_dir: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture) -> None:  # fmt: skip
    assert main(["replay", str(best_run_dir), "--video", str(tmp_path / "v.avi")]) == 2
    assert ".mp4 or .gif" in capsys.readouterr().err


# ---- track picture ------------------------------------------------------------------------------------------------
def crossing_track(tmp_path: Path) -> tuple[Path, float, float]:
    """An 'α' track: east along z = 0, a 270° left loop climbing to 10 m, then south over the first straight.
    Returns (.npy path, x of the crossing, half road width)."""
    radius_m, straight_m = 60.0, 200.0
    east = np.stack([np.arange(0.0, straight_m, 0.5), np.zeros(400), np.zeros(400)], axis=1)
    turned = np.linspace(0.0, 1.5 * np.pi, 1400)  # around (straight_m, -radius_m): heading +x, then -z, then +z
    loop = np.stack([straight_m + radius_m * np.sin(turned), np.linspace(0.0, 10.0, 1400),
                     -radius_m + radius_m * np.cos(turned)], axis=1)  # fmt: skip
    exit_x = loop[-1, 0]
    south = np.stack([np.full(200, exit_x), np.full(200, 10.0), loop[-1, 2] + np.arange(1, 201) * 0.5], axis=1)
    path = tmp_path / "alpha.npy"
    np.save(path, np.concatenate([east, loop, south]))
    return path, exit_x, 8.0


def test_a_bridge_is_drawn_over_the_road_below(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path, crossing_x, half_width_m = crossing_track(tmp_path)
    track = load_track(str(path))
    picture = rasterize_track(track, px_per_m=4.0, margin_m=5.0)

    def colour_at(x_m: float, z_m: float) -> np.ndarray:
        col, row = np.round(picture.to_pixels(np.array([x_m, z_m]))).astype(int)
        return picture.rgb[row, col].astype(int)

    def is_colour(pixel: np.ndarray, colour: tuple[float, float, float]) -> bool:
        return bool(np.abs(pixel - rgb_of(colour)).max() < 25)

    # On the lower road's centre line, just beside the upper road: the upper road's wall band covers the lower road.
    wall_offset_m = half_width_m + track_drawing.WALL_WIDTH_M / 2
    for side in (-1, 1):
        assert is_colour(colour_at(crossing_x + side * wall_offset_m, 0.0), track_drawing.WALL_RGB)
    # The lower road away from the bridge is road; so is the bridge deck beside its centre line.
    assert is_colour(colour_at(crossing_x - 40.0, 3.0), track_drawing.ROAD_RGB)
    assert is_colour(colour_at(crossing_x + 3.0, 0.0), track_drawing.ROAD_RGB)
    # `trackrl track plot` draws the .npy track.
    assert main(["track", "plot", str(path), "-o", str(tmp_path / "alpha.png")]) == 0
    assert imageio.imread(tmp_path / "alpha.png").shape[0] > 300


# ---- Gymnasium render ---------------------------------------------------------------------------------------------
@pytest.mark.filterwarnings("ignore:.*alternative render modes")  # RaceEnv made directly, without a spec
def test_gym_rgb_array_is_the_top_down_view_and_follows_the_car() -> None:
    from gymnasium.utils.env_checker import check_env

    check_env(RaceEnv(track="easy", render_mode="rgb_array"))  # with its render check
    env = RaceEnv(track="easy", render_mode="rgb_array")
    env.reset(seed=0)
    first = env.render()
    assert first.shape == (*FRAME_SIZE_PX, 3) and first.dtype == np.uint8
    for _ in range(30):
        env.step(0)
    later = env.render()
    assert np.abs(first.astype(int) - later).mean() > 1.0
    # The inset is the agent's own camera: the frame's top-right 128 x 128 is the 64 x 64 view enlarged 2x.
    camera = env._last_image[0]
    inset = later[8 : 8 + 128, FRAME_SIZE_PX[1] - 8 - 128 : FRAME_SIZE_PX[1] - 8, 0]
    assert np.array_equal(inset[::2, ::2], camera)
    # A reset starts a fresh trail: the first frame again.
    env.reset(seed=0)
    assert np.array_equal(env.render(), first)


def test_gym_human_mode_without_a_display_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr(sys, "platform", "linux")
    with pytest.raises(DisplayError, match="rgb_array"):
        RaceEnv(track="easy", render_mode="human")


def test_speed_colours_never_take_the_car_or_wall_colour() -> None:
    from trackrl.viz.topdown import speed_colours

    colours = speed_colours(np.linspace(0.0, 100.0, 2000)).astype(int)
    for colour in (np.asarray(CAR_RGB), rgb_of(track_drawing.WALL_RGB), rgb_of(track_drawing.OFF_ROAD_RGB)):
        assert np.abs(colours - colour).max(axis=1).min() > 40
    assert matplotlib.colors.to_hex(colours[0] / 255) != matplotlib.colors.to_hex(colours[-1] / 255)

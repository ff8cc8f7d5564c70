"""`trackrl compare --plots` racing lines: each run's best run per map on one track picture, linked from the report."""

from __future__ import annotations

from pathlib import Path

import imageio.v2 as imageio
import numpy as np

from trackrl.analysis.racing_lines import best_runs_by_map, plot_racing_lines
from trackrl.config import EnvironmentConfig, RewardsConfig
from trackrl.sim.drivers import braking_driver_actions, follow_centerline_actions, scripted_race_actions
from trackrl.sim.rollout import simulate_actions
from trackrl.sim.track import load_track
from trackrl.train.best_runs import save_best_run


def save_driver_run(save_dir: Path, run: str, driver, slower_by_actions: int = 0) -> Path:
    """A scripted driver's race saved as a best run (after ``slower_by_actions`` actions standing still)."""
    track, config = load_track("easy"), EnvironmentConfig()
    actions = scripted_race_actions(track, driver, first_actions=[3] * slower_by_actions)  # 3 = no key
    race = simulate_actions(track, actions)
    assert race.finished
    return save_best_run(save_dir / run, "easy", "easy", None, race.race_time_ms, np.asarray(actions),
                         race.positions_m, config, RewardsConfig(), frames=1)  # fmt: skip


def test_each_runs_fastest_best_run_is_drawn_and_a_broken_folder_is_skipped(tmp_path: Path) -> None:
    save = tmp_path / "save"
    fast = save_driver_run(save, "braking", braking_driver_actions)
    slower = save_driver_run(save, "braking", braking_driver_actions, slower_by_actions=6)
    save_driver_run(save, "pursuit", follow_centerline_actions)
    broken = save / "pursuit" / "best_runs" / "easy_1"
    broken.mkdir()
    (broken / "actions.json").write_text("[0, 0]")
    (broken / "meta.json").write_text("{not json")
    warnings: list[str] = []
    by_map = best_runs_by_map(["braking", "pursuit"], save, warnings.append)
    assert list(by_map) == ["easy"]
    chosen = {best.run_name: best.folder for best in by_map["easy"]}
    assert chosen["braking"] == fast != slower  # the run's fastest, not its latest
    assert len(warnings) == 1 and "easy_1" in warnings[0] and "meta.json" in warnings[0]
    figures = plot_racing_lines(["braking", "pursuit"], save, tmp_path / "plots", warnings.append)
    assert [f.name for f in figures] == ["racing_line_easy.png"]
    assert imageio.imread(figures[0]).shape[0] > 300


def test_report_links_the_racing_line_figures(tmp_path: Path) -> None:
    from trackrl.analysis.comparison import Comparison
    from trackrl.analysis.report import render_report

    figure = tmp_path / "plots" / "racing_line_easy.png"
    comparison = Comparison(time_axis="wall_minutes", common_window=1.0, common_frames=0, time_points=[],
                            step_points=[], metrics=[], rows=[], findings=[], runs=[], shortest_run="a")  # fmt: skip
    text = render_report(comparison, report_dir=tmp_path, line_figures=[figure])
    assert "## Racing lines" in text and "![racing_line_easy](plots/racing_line_easy.png)" in text

"""Every table number against values computed by hand from synthetic logs written with torch's SummaryWriter.

Run A: folder "A" (session 1, wall +0..+600 s) and "A_2" (session 2 after a 1,200 s pause, +1800..+2400 s), with
race_finished flags. Run B: one folder, +0..+1200 s, no race_finished tag (DNF = time >= 300 s).
"""

from __future__ import annotations

import json
import math
import re
import shlex
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
from torch.utils.tensorboard import SummaryWriter

import trackrl
from trackrl.analysis.comparison import compare, load_runs, summarize_run
from trackrl.analysis.report import format_cell, metric_table, render_report
from trackrl.analysis.tables import (
    Row,
    Standing,
    classify_tag,
    format_percent,
    occurrence_rank,
    ranking_sentence,
    scalar_row,
)
from trackrl.cli import main
from trackrl.errors import UserError

T0 = 1_700_000_000.0
RACE = "Race/eval_race_time_trained_A01"
FINISHED = "Race/eval_race_finished_trained_A01"
ROBUST = "Race/eval_race_time_robust_trained_A01"
BEST_MS = "alltime_min_ms_A01"
LOSS = "Training/loss"
HOURS = "cumul_training_hours"
ACHIEVED = "Reference/achieved_ms_A01"


def _write(folder: Path, events: list[tuple[str, int, float, float]]) -> None:
    writer = SummaryWriter(str(folder))
    for tag, step, wall, value in events:
        writer.add_scalar(tag, value, global_step=step, walltime=T0 + wall)
    writer.close()


def _races(races: list[tuple[int, float, float, int | None]]) -> list[tuple[str, int, float, float]]:
    events = []
    for step, wall, time_s, finished in races:
        events.append((RACE, step, wall, time_s))
        if finished is not None:
            events.append((FINISHED, step, wall, float(finished)))
    return events


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("analysis")
    tb = root / "tensorboard"
    _write(tb / "A", [
        *_races([(1000, 60, 300.0, 0), (2000, 120, 50.0, 1), (3000, 240, 40.0, 1), (4000, 480, 300.0, 0)]),
        (BEST_MS, 1000, 60, 300_000.0), (BEST_MS, 2000, 120, 50_000.0), (BEST_MS, 3000, 240, 40_000.0),
        (LOSS, 1000, 60, 1.0), (LOSS, 4000, 600, 0.5),
        (HOURS, 0, 0, 0.0), (HOURS, 4000, 600, 600 / 3600),
    ])  # fmt: skip
    _write(tb / "A_2", [
        *_races([(5000, 1860, 30.0, 1), (6000, 2400, 35.0, 1)]),
        (BEST_MS, 5000, 1860, 30_000.0),
        (LOSS, 6000, 2400, 0.25),
        (HOURS, 5500, 2100, 900 / 3600), (HOURS, 6000, 2400, 1200 / 3600),
    ])  # fmt: skip
    _write(tb / "B", [
        *_races([(1500, 300, 45.0, None), (2500, 600, 300.0, None), (3500, 900, 28.0, None), (4500, 1200, 29.0, None)]),
        (ROBUST, 3500, 900, 28.0),
        (LOSS, 4500, 1200, 0.75),
        (HOURS, 0, 0, 0.0), (HOURS, 4500, 1200, 1200 / 3600),
    ])  # fmt: skip
    return root


def _row(rows: list, axis: str, at: float, run: str, metric: str):
    (row,) = [r for r in rows if r.axis == axis and math.isclose(r.at, at) and r.run == run and r.metric == metric]
    return row


def test_wall_minutes_tables(logs: Path) -> None:
    result = compare(["A", "B"], logs / "tensorboard", logs / "save", time_axis="wall_minutes", interval=10.0,
                     steps="2.5k,5k")  # fmt: skip
    assert result.common_window == pytest.approx(20.0) and result.shortest_run == "B"
    assert result.time_points == [10.0, 20.0] and result.step_points == [2500, 5000]
    rows = result.rows
    # A up to 10 min: races 300 (DNF), 50, 40, 300 (DNF): finished {50, 40}.
    a10 = _row(rows, "wall_minutes", 10, "A", RACE)
    assert (a10.best, a10.mean, a10.std, a10.finish_rate, a10.count, a10.last) == (40, 45, 5, 0.5, 4, 300)
    assert a10.first_finish == pytest.approx(2.0)  # wall +120 s
    # A was paused from wall +600 s to +1860 s: at 20 min its cell holds the same races, marked as paused.
    assert a10.paused_since is None
    assert _row(rows, "wall_minutes", 20, "A", RACE) == a10.__class__(
        **{**a10.__dict__, "at": 20.0, "paused_since": pytest.approx(10.0)}
    )
    # B up to 20 min (no race_finished tag: 300 s is a DNF): finished {45, 28, 29}.
    b20 = _row(rows, "wall_minutes", 20, "B", RACE)
    assert (b20.best, b20.finish_rate, b20.count, b20.last) == (28, 0.75, 4, 29)
    assert b20.mean == pytest.approx(34.0) and b20.std == pytest.approx(math.sqrt((11**2 + 6**2 + 5**2) / 3))
    assert b20.first_finish == pytest.approx(5.0)
    b10 = _row(rows, "wall_minutes", 10, "B", RACE)
    assert (b10.best, b10.mean, b10.std, b10.finish_rate, b10.count) == (45, 45, 0, 0.5, 2)
    robust = _row(rows, "wall_minutes", 20, "B", ROBUST)
    assert (robust.best, robust.count) == (28, 1)
    best = _row(rows, "wall_minutes", 10, "A", BEST_MS)
    assert (best.best, best.last, best.count, best.unit) == (40.0, 40.0, 3, "s")  # logged in ms, shown in s
    assert _row(rows, "wall_minutes", 10, "A", LOSS).last == 0.5
    assert _row(rows, "wall_minutes", 20, "B", LOSS).last == 0.75
    assert _row(rows, "wall_minutes", 10, "B", LOSS).count == 0  # first loss of B is at 20 min
    # Frames: A at 2.5k has races at 1000 (DNF) and 2000 (50 s); at 5k five races; B never reaches 5k.
    a_2500 = _row(rows, "frames", 2500, "A", RACE)
    assert (a_2500.best, a_2500.count, a_2500.first_finish) == (50, 2, 2000)
    a_5k = _row(rows, "frames", 5000, "A", RACE)
    assert (a_5k.best, a_5k.count, a_5k.finish_rate) == (30, 5, 0.6)
    assert a_5k.mean == pytest.approx(40.0) and a_5k.std == pytest.approx(math.sqrt(200 / 3))
    assert _row(rows, "frames", 5000, "A", LOSS).last == 0.5
    assert _row(rows, "frames", 5000, "B", RACE).count is None  # not reached
    b_2500 = _row(rows, "frames", 2500, "B", RACE)
    assert (b_2500.best, b_2500.count, b_2500.first_finish) == (45, 2, 1500)
    # Key findings: B is best at the end of the common window; A leads at 5k (B not there yet).
    # The gap (12 s) exceeds both runs' race-to-race spread (std 7.789 s and 5 s), so B is bolded.
    assert any("**B** is best on A01 with 28.000 s; A 40.000 s (+12.000 s)" in f for f in result.findings)
    assert result.findings[0].startswith("One run each")
    assert any("At 5k frames: A is the only run with a finish on A01 (30.000 s)" in f and "not reached by B" in f
               for f in result.findings)  # fmt: skip


def test_dnf_is_never_a_best_so_far(logs: Path) -> None:
    result = compare(["A", "B"], logs / "tensorboard", logs / "save", time_axis="wall_minutes", interval=1.0)
    first = _row(result.rows, "wall_minutes", 1.0, "A", BEST_MS)  # only the 300,000 ms DNF logged so far
    assert (first.best, first.last, first.count) == (None, 300.0, 1)


def test_training_hours_axis_ignores_the_pause_between_sessions(logs: Path) -> None:
    result = compare(["A", "B"], logs / "tensorboard", logs / "save", time_axis="auto", interval=0.1)
    assert result.time_axis == "training_hours"
    assert result.common_window == pytest.approx(1 / 3)
    assert result.time_points[:3] == pytest.approx([0.1, 0.2, 0.3]) and len(result.time_points) == 4
    # The race at wall +1860 s opens session 2, 600 s of session time in: 1/6 h (a wall-time interpolation across
    # the pause, between the samples at +600 s and +2100 s, would put it at 0.2367 h, after the 0.2 h checkpoint).
    a = _row(result.rows, "training_hours", 0.2, "A", RACE)
    assert (a.best, a.count, a.finish_rate) == (30, 5, 0.6)
    assert a.mean == pytest.approx(40.0) and a.first_finish == pytest.approx(120 / 3600)
    b = _row(result.rows, "training_hours", 0.2, "B", RACE)
    assert (b.best, b.count) == (45, 2)


def test_audit_summary_flags_wall_time_far_above_training_time(logs: Path) -> None:
    a, b = (summarize_run(run) for run in load_runs(["A", "B"], logs / "tensorboard", logs / "save"))
    assert a.folders == ["A", "A_2"]
    # Sessions span first to last event of each file: +0..+600 s and +1860..+2400 s.
    assert (a.wall_minutes, a.active_minutes) == (pytest.approx(40.0), pytest.approx(19.0))
    assert a.training_hours == pytest.approx(1 / 3) and a.wall_to_training_ratio == pytest.approx(2.0)
    assert a.flagged and not b.flagged


def test_cli_compare_writes_json_report_and_plots(logs: Path, tmp_path: Path) -> None:
    out_json, report, plots = tmp_path / "c.json", tmp_path / "r.md", tmp_path / "plots"
    code = main(["compare", "A", "B", "--logdir", str(logs / "tensorboard"), "--save-dir", str(logs / "save"),
                 "--time-axis", "wall_minutes", "--interval", "10", "--steps", "2.5k", "--map", "A01",
                 "--json", str(out_json), "--report", str(report), "--plots", str(plots)])  # fmt: skip
    assert code == 0
    data = json.loads(out_json.read_text())
    assert data["axis"] == "wall_minutes" and data["common_window"] == pytest.approx(20.0)
    assert data["runs"]["A"]["folders"] == ["A", "A_2"] and data["runs"]["B"]["training_hours"] == pytest.approx(1 / 3)
    row = next(r for r in data["rows"] if r["run"] == "B" and r["metric"] == RACE and r["at"] == 20.0)
    assert row == {"axis": "wall_minutes", "at": 20.0, "run": "B", "metric": RACE, "unit": "s", "at_unit": "min",
                   "in_window": True, "paused_since": None, "mean_from": None, "best": 28.0,
                   "mean": pytest.approx(34.0), "std": pytest.approx(7.788880963), "finish_rate": 0.75, "count": 4,
                   "first_finish": pytest.approx(5.0), "last": 29.0, "best_vs_achieved": None}  # fmt: skip
    units = {r["metric"]: r["unit"] for r in data["rows"]}
    assert units == {RACE: "s", BEST_MS: "s", ROBUST: "s", LOSS: "1"}
    assert data["provenance"]["command_line"].startswith("trackrl compare A B --logdir ")
    text = report.read_text()
    for section in ("## Experiment Overview", "## Results", "## Run Analysis", "## Detailed metrics", "## Reproduce",
                    "## Methodology"):  # fmt: skip
        assert section in text
    assert "| A | A, A_2 |" in text
    pngs = sorted(p.name for p in plots.iterdir())
    for axis in ("wall_minutes", "frames"):  # every plot also by frames
        assert f"Race__eval_race_time_trained_A01__by_{axis}.png" in pngs
        assert f"Race__eval_race_time_trained_A01__finish_rate__by_{axis}.png" in pngs
        assert f"Training__loss__by_{axis}.png" in pngs
    # Every figure the report links exists, and every PNG written is linked.
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert links and all((report.parent / link).is_file() for link in links)
    assert sorted(Path(link).name for link in links) == pngs
    assert all((plots / p).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)
    # Image content: 8 x 4.5 in at 110 dpi; each run a line in its colour (matplotlib's cycle: A blue, B orange)
    # across most of the plot, not just its legend handle (~50 pixels).
    loss = colour_pixels(plots / "Training__loss__by_wall_minutes.png")
    assert loss["shape"] == (495, 880)
    # A's loss, 1.0 at 1 min -> 0.25 at 40 min, drawn up to the x limit (the 20 min window + 10%): a third of the width
    assert loss["#1f77b4"][0] > 300 and loss["#1f77b4"][1] > 0.3 * 880
    race = colour_pixels(plots / "Race__eval_race_time_trained_A01__by_wall_minutes.png")
    for colour in ("#1f77b4", "#ff7f0e"):  # A and B: finished races and best-so-far step lines
        assert race[colour][0] > 300 and race[colour][1] > 0.3 * 880  # up to the window + 10% (see above)


def colour_pixels(path: Path) -> dict:
    """{"shape": (height, width), colour: (pixels of that colour, width in pixels they span)} for A's and B's."""
    rgb = matplotlib.image.imread(path)[..., :3]
    found: dict = {"shape": rgb.shape[:2]}
    for colour in ("#1f77b4", "#ff7f0e"):
        target = np.array([int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)])
        mask = np.all(np.abs(rgb - target) < 0.03, axis=2)
        columns = np.flatnonzero(mask.any(axis=0))
        found[colour] = (int(mask.sum()), int(columns.max() - columns.min()) if columns.size else 0)
    return found


def test_finished_flags_decide_not_the_race_time(tmp_path: Path) -> None:
    # Races whose time is below the cutoff but whose flag says not finished (e.g. cut off for no progress and
    # logged with the elapsed time), and two races at the same step paired with their flags in order: only the
    # flags tell which races finished.
    from trackrl.analysis.events import write_scalar_event_file

    races = [(100, 60.0, 12.0, 0), (200, 120.0, 40.0, 1), (300, 180.0, 20.0, 0), (300, 181.0, 35.0, 1),
             (400, 240.0, 300.0, 0)]  # fmt: skip
    events = [(RACE, step, T0 + wall, time_s) for step, wall, time_s, _ in races]
    events += [(FINISHED, step, T0 + wall, float(flag)) for step, wall, _, flag in races]
    write_scalar_event_file(tmp_path / "tb" / "F" / "events.out.tfevents.1.h", sorted(events, key=lambda e: e[2]))
    result = compare(["F"], tmp_path / "tb", tmp_path / "save", time_axis="wall_minutes", interval=1.0)
    assert result.common_window == pytest.approx(3.0)
    race = _row(result.rows, "wall_minutes", 3.0, "F", RACE)
    # Finished: 40 s and 35 s only (time < cutoff alone would also count 12 s and 20 s: best 12 s, rate 0.8).
    assert (race.best, race.mean, race.std, race.finish_rate, race.count, race.last) == (35, 37.5, 2.5, 0.4, 5, 300)
    assert race.first_finish == pytest.approx(1.0)  # wall +120 s after the first event at +60 s
    by_frames = _row(result.rows, "frames", 300, "F", RACE)
    assert (by_frames.best, by_frames.count, by_frames.first_finish) == (35, 4, 200)


def test_races_pair_with_their_finished_flag_by_step_and_order() -> None:
    np.testing.assert_array_equal(occurrence_rank(np.array([5, 3, 5, 5, 3])), [0, 0, 1, 2, 1])


def test_dnf_cutoff_comes_from_the_run_config_snapshot(tmp_path: Path) -> None:
    from trackrl.analysis.events import write_scalar_event_file

    races = [(RACE, 100, 10.0, 30.0), (RACE, 200, 20.0, 25.5), (BEST_MS, 100, 10.0, 30_000.0)]
    write_scalar_event_file(tmp_path / "tb" / "S" / "events.out.tfevents.1.h", races)
    (tmp_path / "save" / "S").mkdir(parents=True)
    (tmp_path / "save" / "S" / "config_snapshot.yaml").write_text(
        "environment: {cutoff_rollout_if_race_not_finished_within_duration_ms: 30000}\n"
    )
    result = compare(["S"], tmp_path / "tb", tmp_path / "save", time_axis="wall_minutes", interval=1.0)
    race = _row(result.rows, "wall_minutes", result.common_window, "S", RACE)
    assert (race.best, race.count, race.finish_rate) == (25.5, 2, 0.5)  # 30 s is this run's DNF
    assert _row(result.rows, "wall_minutes", result.common_window, "S", BEST_MS).best is None


# ---------------------------------------------------------------------------------------------- issue 19
def _compare(logs: Path, **options: object):
    return compare(["A", "B"], logs / "tensorboard", logs / "save", **options)


def test_interval_takes_units_and_a_bare_number_on_auto_hours_warns(logs: Path) -> None:
    assert _compare(logs, time_axis="wall_minutes", interval="600s").time_points == [10.0, 20.0]
    assert _compare(logs, time_axis="wall_minutes", interval="0.1667h").time_points == pytest.approx([10.002, 20.0])
    hours = _compare(logs, interval="6m")  # auto -> training hours (window 1/3 h): every 0.1 h
    assert hours.time_axis == "training_hours" and hours.notes == []
    assert hours.time_points == pytest.approx([0.1, 0.2, 0.3, 1 / 3])
    bare = _compare(logs, interval="10")  # meant 10 minutes, read as 10 hours: one row, and now a warning
    assert bare.time_points == pytest.approx([1 / 3])
    assert len(bare.notes) == 1 and "read in hours" in bare.notes[0] and "--interval 10m" in bare.notes[0]
    assert _compare(logs, interval="0.1").notes == []  # a bare number that leaves 3 checkpoints: fine
    assert _compare(logs, time_axis="cumul_training_hours", interval="10").notes == []  # hours asked for
    with pytest.raises(UserError, match="--interval: '10 parsecs' is not a duration"):
        _compare(logs, interval="10 parsecs")


def test_explicit_times_mark_unreached_runs_and_pauses(logs: Path) -> None:
    result = _compare(logs, time_axis="wall_minutes", times="5m,0.5h,20m")
    assert result.time_points == [5.0, 20.0, 30.0]
    b30, a30 = _row(result.rows, "wall_minutes", 30, "B", RACE), _row(result.rows, "wall_minutes", 30, "A", RACE)
    assert b30.count is None and not b30.in_window  # B ended at 20 min
    assert a30.count == 4 and a30.paused_since == pytest.approx(10.0) and not a30.in_window
    metric = next(m for m in result.metrics if m.tag == RACE)
    assert format_cell(b30, metric) == "-"
    assert format_cell(a30, metric) == "40.000 · 45.000 ± 5.000 · 50% (4) · 2 min · paused since 10 min"
    header, body = metric_table(result, metric, "wall_minutes")
    assert header == ["at", "A", "B"]
    assert [line[0] for line in body] == ["5 min", "20 min", "30 min (outside common window)"]


def test_beyond_window_continues_the_checkpoints_to_the_longest_run(logs: Path) -> None:
    result = _compare(logs, time_axis="wall_minutes", interval="10m", beyond_window=True)
    assert result.time_points == pytest.approx([10.0, 20.0, 30.0, 40.0])
    a40 = _row(result.rows, "wall_minutes", 40, "A", RACE)
    assert (a40.best, a40.count, a40.in_window, a40.paused_since) == (30.0, 6, False, None)
    assert _row(result.rows, "wall_minutes", 40, "B", RACE).count is None


def test_noisy_scalars_are_interval_means(logs: Path) -> None:
    result = _compare(logs, time_axis="wall_minutes", interval="10m", steps="2.5k,5k")
    a10 = _row(result.rows, "wall_minutes", 10, "A", LOSS)  # (0, 10 min]: 1.0 at 1 min, 0.5 at 10 min
    assert (a10.mean, a10.last, a10.mean_from) == (pytest.approx(0.75), 0.5, 0.0)
    a20 = _row(result.rows, "wall_minutes", 20, "A", LOSS)  # (10, 20 min]: paused, nothing logged
    assert (a20.mean, a20.last, a20.count) == (None, 0.5, 2)
    assert _row(result.rows, "wall_minutes", 20, "B", LOSS).mean == 0.75
    a5k = _row(result.rows, "frames", 5000, "A", LOSS)  # (2.5k, 5k frames]: only 0.5 at 4000
    assert (a5k.mean, a5k.mean_from) == (0.5, 2500.0)
    metric = next(m for m in result.metrics if m.tag == LOSS)
    assert format_cell(a10, metric) == "0.75" and format_cell(a20, metric).startswith("none in interval")
    (trend,) = [f for f in result.findings if f.startswith("`Training/loss` (mean over each checkpoint interval)")]
    # A logged nothing in (10, 20 min] (paused): its trend ends at its last interval with data, and says so.
    assert "A 0.75 (last data in the interval ending at 10 min)" in trend and "B 0.75" in trend


def test_learner_share_is_a_percent_mean() -> None:
    share = classify_tag("Performance/learner_percentage_training")
    assert (share.unit, share.scale) == ("%", 100.0)
    base = Row("frames", 300.0, "R", share.tag, unit="%")
    row = scalar_row(base, np.array([0.5, 0.9, 0.8]), np.array([100.0, 200.0, 300.0]), since=100.0, scale=share.scale)
    assert (row.mean, row.last, row.count) == (pytest.approx(85.0), pytest.approx(80.0), 3)
    assert (format_percent(2 / 1062), format_percent(0.0), format_percent(0.75)) == ("0.2%", "0%", "75%")


def test_leader_is_not_bolded_on_a_gap_within_the_race_spread() -> None:
    close = [Standing("A", 30.0, 5.0), Standing("B", 31.0, 4.0)]
    text = ranking_sentence(close, "A01", "At 1 h")
    assert "**" not in text and "no clear winner" in text and "std up to 5.000 s" in text
    clear = [Standing("A", 30.0, 0.5), Standing("B", 31.0, 0.4)]
    assert "**A** is best" in ranking_sentence(clear, "A01", "At 1 h")
    unknown = [Standing("A", 30.0, None), Standing("B", 31.0, 0.4)]  # one finish: no spread to compare with
    assert "**" not in ranking_sentence(unknown, "A01", "At 1 h")


def test_plot_lines_break_at_a_pause(logs: Path) -> None:
    from trackrl.analysis.plots import break_at_pauses

    (run_a,) = load_runs(["A"], logs / "tensorboard", logs / "save")
    x, y = break_at_pauses(run_a, "wall_minutes", np.array([1.0, 8.0, 31.0, 40.0]), np.array([4.0, 3.0, 2.0, 1.0]))
    np.testing.assert_allclose(x, [1.0, 8.0, 10.0, 31.0, 40.0])
    assert np.isnan(y[2]) and np.count_nonzero(np.isnan(y)) == 1
    same_x, _ = break_at_pauses(run_a, "frames", np.array([1.0, 40.0]), np.array([1.0, 2.0]))
    assert len(same_x) == 2


def test_report_records_its_command_line_and_console_tables_do_not_wrap(logs: Path, tmp_path: Path,
                                                                         capsys: pytest.CaptureFixture) -> None:
    report = tmp_path / "r.md"
    argv = ["compare", "A", "B", "--logdir", str(logs / "tensorboard"), "--save-dir", str(logs / "save"),
            "--time-axis", "wall_minutes", "--times", "10m,20m", "--report", str(report)]  # fmt: skip
    assert main(argv) == 0
    text = report.read_text()
    assert "## Reproduce" in text and "trackrl " + shlex.join(argv) in text
    assert f"trackrl version: {trackrl.__version__}" in text and f"`{logs / 'tensorboard'}`" in text
    assert "- `times`: '10m,20m'" in text
    out = capsys.readouterr().out
    # Piped (not a terminal): each cell stays on one line.
    assert "28.000 · 34.000 ± 7.789 · 75% (4) · 5 min" in out
    assert "paused since 10 min" in out


def test_cli_prints_the_auto_hours_interval_warning(logs: Path, capsys: pytest.CaptureFixture) -> None:
    argv = ["compare", "A", "B", "--logdir", str(logs / "tensorboard"), "--save-dir", str(logs / "save"),
            "--interval", "10", "--step-interval", "2k"]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "warning: --interval 10 is read in hours" in out and "--interval 10m" in out
    assert "2k frames" in out and "4k frames" in out  # --step-interval with a unit


def test_compare_divides_best_times_by_the_achieved_time_each_run_logged(tmp_path: Path) -> None:
    """Run C logged an achieved time of 25 s on A01 (Reference/achieved_ms_A01), run D none (a run from before the
    tag). C's best 24 s is 0.96x achieved, reported as a finding; D's cells carry no ratio."""
    tb_dir = tmp_path / "tensorboard"
    _write(tb_dir / "C", [(ACHIEVED, 0, 0, 25_000.0), *_races([(1000, 60, 30.0, 1), (2000, 120, 24.0, 1)]),
                          (BEST_MS, 1000, 60, 30_000.0), (BEST_MS, 2000, 120, 24_000.0)])  # fmt: skip
    _write(tb_dir / "D", [(LOSS, 0, 0, 1.0), *_races([(1000, 60, 27.5, 1), (2000, 120, 300.0, 0)]),
                          (BEST_MS, 1000, 60, 27_500.0)])  # fmt: skip
    result = compare(["C", "D"], tb_dir, tmp_path / "save", time_axis="wall_minutes", interval="1m")
    assert ACHIEVED not in {m.tag for m in result.metrics}  # the yardstick is not a table of its own
    c_race, d_race = _row(result.rows, "wall_minutes", 2, "C", RACE), _row(result.rows, "wall_minutes", 2, "D", RACE)
    assert c_race.best_vs_achieved == pytest.approx(24.0 / 25.0) and d_race.best_vs_achieved is None
    c_first = _row(result.rows, "wall_minutes", 1, "C", BEST_MS)
    assert c_first.best_vs_achieved == pytest.approx(30.0 / 25.0)
    metric = next(m for m in result.metrics if m.tag == BEST_MS)
    assert format_cell(c_first, metric) == "30.000 · 1.200x achieved"
    (sentence,) = [f for f in result.findings if "best / achieved (simulator)" in f]
    assert "C 0.960 (achieved 25.000 s)" in sentence and "D" not in sentence.split(":", 2)[2].split(";")[0]
    assert "C drove faster than the optimal line driven in the simulator" in sentence
    report = render_report(result)
    assert "best / achieved (simulator)" in report and "0.960x achieved" in report


def test_finished_race_tags_are_a_family_when_the_race_tag_is_missing(tmp_path: Path) -> None:
    """A log with only Linesight's finished-races tag (no race time with DNFs): best / mean / std / count of finishes,
    no finish rate (the DNFs are not in it); next to the race tag it is not shown twice."""
    finished_tag = "Race/eval_race_time_finished_trained_A01"
    tb_dir = tmp_path / "tensorboard"
    _write(tb_dir / "E", [(LOSS, 0, 0, 1.0), (finished_tag, 1000, 60, 30.0), (finished_tag, 2000, 120, 26.0)])
    _write(tb_dir / "F", [(LOSS, 0, 0, 1.0), *_races([(1000, 60, 27.0, 1)]), (finished_tag, 1000, 60, 27.0),
                          (LOSS, 2000, 120, 1.0)])  # fmt: skip
    assert classify_tag(finished_tag).family == "finished"
    only = compare(["E"], tb_dir, tmp_path / "save", time_axis="wall_minutes", interval="1m")
    row = _row(only.rows, "wall_minutes", 2, "E", finished_tag)
    assert (row.best, row.mean, row.std, row.count, row.finish_rate) == (26.0, 28.0, 2.0, 2, None)
    metric = next(m for m in only.metrics if m.tag == finished_tag)
    assert format_cell(row, metric) == "26.000 · 28.000 ± 2.000 · 2"
    both = compare(["F"], tb_dir, tmp_path / "save", time_axis="wall_minutes", interval="1m")
    assert finished_tag not in {m.tag for m in both.metrics} and RACE in {m.tag for m in both.metrics}

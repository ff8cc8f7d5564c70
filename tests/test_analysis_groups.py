"""`trackrl compare --group`: seed statistics of groups against values computed by hand from synthetic logs.

Two groups of two seeds on the built-in `easy` track, best-so-far times given as multiples of its reference lap:
fast-s0 1.5x (1 min) -> 1.08x (2 min) -> 1.04x (4 min); fast-s1 1.2x (1 min) -> 1.09x (4 min);
slow-s0 1.3x (2 min); slow-s1 never finishes. Every run logs until 5 min.
"""

from __future__ import annotations

import json

import matplotlib.pyplot as plt
import numpy as np
import pytest
from torch.utils.tensorboard import SummaryWriter

from trackrl.analysis.comparison import compare_runs, load_runs
from trackrl.analysis.group_plots import (
    aggregate_curves,
    curve_axes,
    draw_aggregate_curves,
    draw_interval_estimates,
    draw_profiles,
    interval_estimates,
    profiles,
)
from trackrl.analysis.groups import Group, _reference_s, parse_groups
from trackrl.cli import main

T0 = 1_700_000_000.0
RACE, FINISHED = "Race/eval_race_time_trained_easy", "Race/eval_race_finished_trained_easy"
BEST_MS = "alltime_min_ms_easy"
BESTS = {"fast-s0": [(1, 1.5), (2, 1.08), (4, 1.04)], "fast-s1": [(1, 1.2), (4, 1.09)], "slow-s0": [(2, 1.3)],
         "slow-s1": []}  # fmt: skip


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("groups")
    reference_s = _reference_s("easy", None)
    for run, bests in BESTS.items():
        writer = SummaryWriter(str(root / "tb" / run))
        for minute, ratio in bests:
            step, wall = 1000 * minute, T0 + 60 * minute
            writer.add_scalar(RACE, ratio * reference_s, global_step=step, walltime=wall)
            writer.add_scalar(FINISHED, 1.0, global_step=step, walltime=wall)
            writer.add_scalar(BEST_MS, 1000 * ratio * reference_s, global_step=step, walltime=wall)
        writer.add_scalar(RACE, 300.0, global_step=500, walltime=T0 + 30)  # one DNF each: the map is known
        writer.add_scalar(FINISHED, 0.0, global_step=500, walltime=T0 + 30)
        writer.add_scalar("Training/loss", 1.0, global_step=0, walltime=T0)
        writer.add_scalar("Training/loss", 0.5, global_step=5000, walltime=T0 + 300)
        writer.close()
    out = root / "out.json"
    code = main(["compare", "--logdir", str(root / "tb"), "--save-dir", str(root / "save"), "--time-axis",
                 "wall_minutes", "--interval", "1", "--group", "fast-s0,fast-s1", "--group", "slow-s0,slow-s1",
                 "--json", str(out), "--report", str(root / "report.md"), "--plots", str(root / "plots")])  # fmt: skip
    assert code == 0
    return {"json": json.loads(out.read_text()), "report": (root / "report.md").read_text(), "root": root}


def _at(group: dict, axis: str, at: float) -> dict:
    return next(c for c in group["checkpoints"] if c["axis"] == axis and c["at"] == pytest.approx(at))


def test_group_checkpoints_match_hand_values(report):
    groups = report["json"]["groups"]
    assert groups["fast"]["runs"] == ["fast-s0", "fast-s1"] and set(groups) == {"fast", "slow"}
    fast_3, slow_3 = _at(groups["fast"], "wall_minutes", 3), _at(groups["slow"], "wall_minutes", 3)
    # 2 seeds: trimming 25% of 2 removes nothing, IQM = mean; at 3 min fast has 1.08 and 1.2
    assert fast_3["iqm"] == pytest.approx((1.08 + 1.2) / 2, abs=1e-6)
    assert fast_3["mean"] == pytest.approx((1.08 + 1.2) / 2, abs=1e-6)
    assert fast_3["median"] == pytest.approx((1.08 + 1.2) / 2, abs=1e-6)
    assert fast_3["iqm_ci"][0] == pytest.approx(1.08, abs=1e-6) and fast_3["iqm_ci"][1] == pytest.approx(1.2, abs=1e-6)
    assert (fast_3["n_seeds"], fast_3["n_finished"], fast_3["finish_rate"]) == (2, 2, 1.0)
    # slow: one finished seed (1.3x), statistics over finished seeds only, no CI from one value
    assert (slow_3["n_finished"], slow_3["mean"], slow_3["mean_ci"]) == (2 - 1, pytest.approx(1.3, abs=1e-6), None)
    assert _at(groups["fast"], "wall_minutes", 5)["mean"] == pytest.approx((1.04 + 1.09) / 2, abs=1e-6)


def test_probability_of_improvement_and_conclusion(report):
    groups = report["json"]["groups"]
    fast_vs_slow = next(e for e in groups["fast"]["probability_of_improvement"]["slow"] if e["at"] == pytest.approx(5)
                        and e["axis"] == "wall_minutes")  # fmt: skip
    # every fast seed (1.04, 1.09) beats slow's 1.3 and slow's DNF: 4 of 4 pairs
    assert fast_vs_slow["p"] == 1.0
    slow_vs_fast = next(e for e in groups["slow"]["probability_of_improvement"]["fast"] if e["at"] == pytest.approx(5)
                        and e["axis"] == "wall_minutes")  # fmt: skip
    assert slow_vs_fast["p"] == 0.0
    assert report["json"]["group_conclusions"][0].startswith("fast is faster than slow at 5 min: P(fast faster) = 1.00")
    assert "## Seed statistics" in report["report"] and "fast is faster than slow" in report["report"]


def test_first_reach_of_ratio_targets(report):
    reach = report["json"]["groups"]["fast"]["first_reach"]["easy"]
    assert reach["1.10"]["wall_minutes"] == [pytest.approx(2.0), pytest.approx(4.0)]
    assert reach["1.10"]["frames"] == [2000, 4000] and reach["1.10"]["n_never"] == 0
    assert reach["1.05"]["frames"] == [4000, None] and reach["1.05"]["n_never"] == 1
    assert "- fast on easy: first 1.05x reference at [4, never] min (by seed), [4k frames, never]; 1 of 2 seeds never" \
        " did" in report["report"]
    assert report["json"]["groups"]["slow"]["first_reach"]["easy"]["1.10"]["n_never"] == 2


def test_group_names_drop_the_seed_suffix():
    assert [g.name for g in parse_groups(["a01-s0,a01-s1", "a01_btr-s0"])] == ["a01", "a01_btr"]


def _comparison(root):
    runs = load_runs(list(BESTS), root / "tb", root / "save")
    return runs, compare_runs(runs, time_axis="wall_minutes", interval=1.0)


GROUPS = [Group("fast", ["fast-s0", "fast-s1"]), Group("slow", ["slow-s0", "slow-s1"])]


def test_aggregate_curves_are_the_iqm_and_ci_of_the_seeds_best_so_far(report):
    runs, comparison = _comparison(report["root"])
    assert curve_axes(runs) == ["wall_minutes", "frames"]  # no cumul_training_hours logged: no hours curve
    fast, slow = aggregate_curves(GROUPS, runs, comparison, report["root"] / "save", "wall_minutes")
    assert fast.x[0] == 0.0 and fast.x[-1] == pytest.approx(5.0)  # up to the shortest run's end
    at = {x: i for i, x in enumerate(np.round(fast.x, 6))}
    # at 3 min: fast's seeds have 1.08 and 1.2 (2 values: IQM = mean, percentile CI spans both); slow has 1.3 only
    assert fast.iqm[at[3.0]] == pytest.approx(1.14) and (fast.low[at[3.0]], fast.high[at[3.0]]) == pytest.approx(
        (1.08, 1.2))
    assert slow.iqm[at[3.0]] == pytest.approx(1.3) and np.isnan(slow.low[at[3.0]]) and slow.n_finished[at[3.0]] == 1
    assert fast.iqm[at[5.0]] == pytest.approx((1.04 + 1.09) / 2)
    assert np.isnan(fast.iqm[at[0.5]])  # no seed has finished before 1 min
    frames = aggregate_curves(GROUPS, runs, comparison, report["root"] / "save", "frames")[0]
    assert frames.x[-1] == 5000 and frames.iqm[np.searchsorted(frames.x, 3000)] == pytest.approx(1.14)

    fig, ax = plt.subplots()
    draw_aggregate_curves(ax, [fast, slow])
    np.testing.assert_allclose(ax.lines[0].get_ydata(), fast.iqm)  # the line drawn is the IQM
    band = ax.collections[0].get_paths()[0].vertices  # fill_between: the polygon of (x, low) and (x, high)
    at_3 = band[np.isclose(band[:, 0], 3.0)][:, 1]
    assert at_3.min() == pytest.approx(1.08) and at_3.max() == pytest.approx(1.2)
    plt.close(fig)


def test_performance_profile_is_the_share_of_seeds_at_or_below_tau(report):
    _, comparison = _comparison(report["root"])
    fast, slow = profiles(GROUPS, comparison, report["root"] / "save")
    tau = fast.tau
    assert tau[0] == pytest.approx(1.0) and tau[-1] == pytest.approx(1.3 * 1.02)
    # at 5 min: fast 1.04 and 1.09; slow 1.3 and a seed that never finished (never counts)
    np.testing.assert_allclose(fast.share, ((tau >= 1.04).astype(float) + (tau >= 1.09)) / 2)
    np.testing.assert_allclose(slow.share, (tau >= 1.3) / 2)
    assert np.all(slow.low <= slow.share) and np.all(slow.share <= slow.high)
    assert slow.high[-1] == 1.0 and slow.low[-1] == 0.0  # resampling 2 seeds: both, one or none finished
    fig, ax = plt.subplots()
    draw_profiles(ax, [fast, slow])
    np.testing.assert_allclose(ax.lines[1].get_ydata(), slow.share)
    plt.close(fig)


def test_interval_estimates_plot_the_final_checkpoint_with_its_cis(report):
    _, comparison = _comparison(report["root"])
    estimates = interval_estimates(report["json"]["groups"], comparison)
    fast_iqm = next(e for e in estimates if e.group == "fast" and e.aggregate == "iqm")
    assert fast_iqm.value == pytest.approx(1.065) and fast_iqm.ci == pytest.approx((1.04, 1.09))
    fig, axes = plt.subplots(1, 3)
    draw_interval_estimates(list(axes), estimates)
    bars = axes[0].patches  # IQM panel: a CI bar for fast only (slow has one finished seed: no interval)
    assert len(bars) == 1 and bars[0].get_x() == pytest.approx(1.04) and bars[0].get_width() == pytest.approx(0.05)
    ticks = [segment[0, 0] for segment in axes[0].collections[0].get_segments()]
    ticks += [segment[0, 0] for segment in axes[0].collections[1].get_segments()]
    assert ticks == pytest.approx([1.065, 1.3])
    plt.close(fig)


def test_group_plots_are_written_and_in_the_report(report):
    plots = report["root"] / "plots"
    names = ["groups__iqm_ratio__by_wall_minutes.png", "groups__iqm_ratio__by_frames.png",
             "groups__performance_profile.png", "groups__interval_estimates.png"]  # fmt: skip
    for name in names:
        assert (plots / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"(plots/{name})" in report["report"]
    # the synthetic runs have no save folder: both setup sections say so instead of inventing values
    setup = report["report"].split("## Configuration changes", 1)[1].split("## Detailed", 1)[0]
    assert "No compared run has a `config_snapshot.yaml` (not recorded)" in setup
    assert "| fast-s0, fast-s1, slow-s0, slow-s1 | not recorded |" in setup

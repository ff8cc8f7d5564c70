"""`trackrl compare --group`: seed statistics of groups against values computed by hand from synthetic logs.

Two groups of two seeds on the built-in `easy` track, best-so-far times given as multiples of its reference lap:
fast-s0 1.5x (1 min) -> 1.08x (2 min) -> 1.04x (4 min); fast-s1 1.2x (1 min) -> 1.09x (4 min);
slow-s0 1.3x (2 min); slow-s1 never finishes. Every run logs until 5 min.
"""

from __future__ import annotations

import json

import pytest
from torch.utils.tensorboard import SummaryWriter

from trackrl.analysis.groups import _reference_s, parse_groups
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
                 "--json", str(out), "--report", str(root / "report.md")])  # fmt: skip
    assert code == 0
    return {"json": json.loads(out.read_text()), "report": (root / "report.md").read_text()}


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
    assert report["json"]["groups"]["slow"]["first_reach"]["easy"]["1.10"]["n_never"] == 2


def test_group_names_drop_the_seed_suffix():
    assert [g.name for g in parse_groups(["a01-s0,a01-s1", "a01_btr-s0"])] == ["a01", "a01_btr"]

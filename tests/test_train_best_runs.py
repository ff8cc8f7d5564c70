"""`trackrl replay` on damaged best-run folders (issue 18): one line naming the file, never a traceback, and an
empty run is called empty (not "the simulator changed")."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from trackrl.cli import main
from trackrl.config.schema import EnvironmentConfig, RewardsConfig
from trackrl.sim.actions import ACCELERATE_ACTION
from trackrl.sim.rollout import simulate_actions
from trackrl.sim.track import load_track
from trackrl.train.best_runs import BestRunError, load_best_run, save_best_run

N_ACTIONS_DRIVEN = 40


@pytest.fixture(scope="module")
def saved_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    actions = np.full(N_ACTIONS_DRIVEN, ACCELERATE_ACTION)
    race = simulate_actions(load_track("easy"), actions)
    return save_best_run(tmp_path_factory.mktemp("saved") / "run", "easy", "easy", None, 2_000, actions,
                         race.positions_m, EnvironmentConfig(), RewardsConfig(), frames=123)  # fmt: skip


@pytest.fixture
def best_run(saved_run: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(saved_run, tmp_path / saved_run.name))


def _edit(folder: Path, name: str, change) -> None:
    path = folder / name
    path.write_text(json.dumps(change(json.loads(path.read_text()))))


def test_an_intact_folder_loads(best_run: Path) -> None:
    loaded = load_best_run(best_run)
    assert len(loaded.actions) == N_ACTIONS_DRIVEN and loaded.trajectory_m.shape == (N_ACTIONS_DRIVEN + 1, 3)


@pytest.mark.parametrize(
    ("name", "change", "problem"),
    [
        ("actions.json", lambda a: [], "actions.json: empty run (no actions)"),
        ("actions.json", lambda a: [*a[:-1], 12], f"actions.json: action {N_ACTIONS_DRIVEN - 1} is 12, outside 0..11"),
        ("actions.json", lambda a: [-1, *a], "action 0 is -1, outside 0..11"),
        ("actions.json", lambda a: [10**30, *a], "outside 0..11"),
        ("actions.json", lambda a: [0] * 6_001, "6,001 actions, more than a race cut off after 6,000 can have"),
        ("actions.json", lambda a: [True, *a], "expected a JSON list of action indices"),
        ("actions.json", lambda a: {"a": 1}, "expected a JSON list of action indices"),
        ("meta.json", lambda m: [m], "meta.json: expected a JSON object, got list"),
        ("meta.json", lambda m: {**m, "race_time_ms": "fast"}, "race_time_ms must be a positive whole number"),
        ("meta.json", lambda m: {**m, "race_time_ms": -5}, "race_time_ms must be a positive whole number"),
        ("meta.json", lambda m: {**m, "track": 7}, "track must be a track name or .npy path, got 7"),
        ("meta.json", lambda m: {**m, "road_width_m": -1}, "road_width_m must be null or a positive number"),
        ("meta.json", lambda m: {**m, "environment": {"tm_engine_step_per_action": 0}},
         "invalid environment/rewards config (tm_engine_step_per_action:"),
        ("meta.json", lambda m: {**m, "environment": 3}, "invalid environment/rewards config"),
    ],
)
def test_damaged_json_is_one_line(best_run: Path, capsys: pytest.CaptureFixture, name: str, change, problem: str
                                  ) -> None:  # fmt: skip
    _edit(best_run, name, change)
    with pytest.raises(BestRunError):
        load_best_run(best_run)
    assert main(["replay", str(best_run)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("trackrl replay: error: ") and problem in err and err.count("\n") == 1


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"not an npy file", "trajectory.npy: not a readable .npy array"),
        (b"", "trajectory.npy: not a readable .npy array"),
        ("shape", "expected (41, 3) car positions"),
        ("nan", "holds NaN/inf positions"),
        ("text", "got shape (41, 3) of <U1"),
    ],
)
def test_a_bad_trajectory_is_named(best_run: Path, capsys: pytest.CaptureFixture, content: object, problem: str
                                   ) -> None:  # fmt: skip
    path = best_run / "trajectory.npy"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content == "shape":
        np.save(path, np.zeros((5, 2), dtype=np.float32))
    elif content == "nan":
        np.save(path, np.full((N_ACTIONS_DRIVEN + 1, 3), np.nan, dtype=np.float32))
    else:
        np.save(path, np.full((N_ACTIONS_DRIVEN + 1, 3), "x"))
    assert main(["replay", str(best_run)]) == 2
    err = capsys.readouterr().err
    assert problem in err and "Traceback" not in err

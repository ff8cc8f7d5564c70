"""Config schema, loader errors and schedules against hand-computed values."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from pydantic import BaseModel

from trackrl.cli import main
from trackrl.config import (
    ConfigError,
    config_from_dict,
    config_to_yaml,
    current_schedule_values,
    exponential_schedule,
    linear_schedule,
    load_config,
    staircase_schedule,
)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


def test_an_empty_mapping_gives_linesight_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "{}\n"))
    assert config.environment.tm_engine_step_per_action == 5
    assert config.rewards.constant_reward_per_ms == -0.0012
    assert config.rewards.reward_per_m_advanced_along_centerline == 0.01
    assert config.environment.cutoff_rollout_if_race_not_finished_within_duration_ms == 300_000


def test_unknown_key_names_its_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as error:
        load_config(write(tmp_path, "nn:\n  vis:\n    cnn:\n      use_impala: true\n"))
    assert "nn.vis.cnn.use_impala: unknown key" in str(error.value)
    assert str(tmp_path / "config.yaml") in str(error.value)


# A misspelt key at every level of the file, written out as a user would (the YAML and the path the message must
# name). A typo anywhere must fail: silently training on defaults is the worst outcome.
MISSPELT_KEYS = [
    ("trainig:\n  batch_size: 64\n", "trainig"),
    ("seeds: 3\n", "seeds"),
    ("environment:\n  cutoff_rollout_if_race_not_finished_within_duration: 30000\n",
     "environment.cutoff_rollout_if_race_not_finished_within_duration"),
    ("nn:\n  use_images: false\n", "nn.use_images"),
    ("nn:\n  vis:\n    cnns: {}\n", "nn.vis.cnns"),
    ("nn:\n  vis:\n    cnn:\n      use_impala: true\n", "nn.vis.cnn.use_impala"),
    ("btr:\n  use_munchhausen: true\n", "btr.use_munchhausen"),
    ("training:\n  batchsize: 64\n", "training.batchsize"),
    ("memory:\n  memory_size: 1000\n", "memory.memory_size"),
    ("exploration:\n  epsilon: 0.1\n", "exploration.epsilon"),
    ("rewards:\n  constant_reward_per_s: -1.2\n", "rewards.constant_reward_per_s"),
    ("map_cycle:\n  entry: []\n", "map_cycle.entry"),
    ("map_cycle:\n  entries:\n    - {map: a01, repeats: 4}\n", "map_cycle.entries[0].repeats"),
    ("performance:\n  gpu_collector_count: 2\n", "performance.gpu_collector_count"),
    ("game:\n  base_tmi_prot: 8478\n", "game.base_tmi_prot"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "path"), MISSPELT_KEYS, ids=[path for _, path in MISSPELT_KEYS])
def test_a_misspelt_key_fails_at_every_level(tmp_path: Path, text: str, path: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_config(write(tmp_path, text))
    assert f"{path}: unknown key" in str(error.value)


def test_every_section_is_covered_by_the_misspelt_key_cases() -> None:
    # The cases above name every section of the file (a new section needs its case): checked against literal names.
    sections = {path.split(".")[0].split("[")[0] for _, path in MISSPELT_KEYS if "." in path}
    assert sections == {"environment", "nn", "btr", "training", "memory", "exploration", "rewards", "map_cycle",
                        "performance", "game"}  # fmt: skip
    assert sections == {name for name, value in config_from_dict({}) if isinstance(value, BaseModel)}


def test_cli_train_refuses_a_misspelt_section_before_creating_anything(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    config = write(tmp_path, "trainig:\n  batch_size: 64\n")
    argv = ["train", "--config", str(config), "--run-name", "typo", "--save-dir", str(tmp_path / "save"),
            "--logdir", str(tmp_path / "tb"), "--no-live", "--max-frames", "100"]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "trainig: unknown key" in err and "Traceback" not in err
    assert not (tmp_path / "save").exists() and not (tmp_path / "tb").exists()


def test_wrong_type_names_its_path_and_value(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as error:
        load_config(write(tmp_path, "training:\n  batch_size: lots\n"))
    assert "training.batch_size" in str(error.value)
    assert "'lots'" in str(error.value)


@pytest.mark.parametrize(
    ("schedule", "problem"),
    [
        ("[[100, 0.001], [200, 0.0001]]", "must start at frame 0"),
        ("[[0, 0.001], [200, 0.0001], [200, 0.00001]]", "strictly increasing"),
        ("[]", "empty"),
    ],
)
def test_bad_schedules_are_rejected(tmp_path: Path, schedule: str, problem: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_config(write(tmp_path, f"training:\n  lr_schedule: {schedule}\n"))
    assert "training.lr_schedule" in str(error.value)
    assert problem in str(error.value)


def test_every_problem_is_listed_at_once(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as error:
        load_config(write(tmp_path, "training:\n  batch_size: -1\n  n_step: 3\nmemory:\n  prio_beta: 2\n"))
    message = str(error.value)
    assert "3 problem(s)" in message
    for path in ("training.batch_size", "training.n_step", "memory.prio_beta"):
        assert path in message


def test_munchausen_with_ddqn_is_an_error_that_says_why() -> None:
    with pytest.raises(ConfigError) as error:
        config_from_dict({"btr": {"use_munchausen": True}, "training": {"use_ddqn": True}})
    assert "conflict" in str(error.value)
    assert "argmax" in str(error.value)


def test_missing_and_non_yaml_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(write(tmp_path, "training: [unclosed\n"))
    with pytest.raises(ConfigError, match="mapping of sections"):
        load_config(write(tmp_path, "- 1\n- 2\n"))


def test_yaml_round_trip(tmp_path: Path) -> None:
    config = config_from_dict({"seed": 7, "btr": {"use_noisy_linear": True}, "training": {"n_steps": 5}})
    again = load_config(write(tmp_path, config_to_yaml(config)))
    assert again == config


def test_linear_schedule_matches_hand_values() -> None:
    points = [(0, 0.999), (1_500_000, 0.999), (2_500_000, 1.0)]
    assert linear_schedule(points, 0) == 0.999
    assert linear_schedule(points, 2_000_000) == pytest.approx(0.9995)
    assert linear_schedule(points, 9_000_000) == 1.0


def test_exponential_schedule_is_geometric_between_points() -> None:
    points = [(0, 1e-3), (1_000, 1e-5)]
    # Halfway between 1e-3 and 1e-5 geometrically is sqrt(1e-3 * 1e-5) = 1e-4.
    assert exponential_schedule(points, 500) == pytest.approx(1e-4)
    assert exponential_schedule(points, 250) == pytest.approx(10 ** -3.5)
    assert exponential_schedule(points, 5_000) == pytest.approx(1e-5)


def test_staircase_schedule_holds_until_next_point() -> None:
    points = [(0, ""), (100, "_2"), (200, "_3")]
    assert staircase_schedule(points, 99.9) == ""
    assert staircase_schedule(points, 100) == "_2"
    assert staircase_schedule(points, 10_000) == "_3"


def test_global_schedule_speed_stretches_every_x_coordinate() -> None:
    config = config_from_dict(
        {
            "global_schedule_speed": 2.0,
            "training": {
                "lr_schedule": [[0, 1e-3], [1000, 1e-5]],
                "tensorboard_suffix_schedule": [[0, ""], [500, "_2"]],
            },
            "exploration": {"epsilon_schedule": [[0, 1.0], [1000, 0.01]]},
        }
    )
    values = current_schedule_values(config, 1000)  # = halfway once x is doubled
    assert values["learning_rate"] == pytest.approx(1e-4)
    assert values["epsilon"] == pytest.approx(math.sqrt(0.01))
    assert values["tensorboard_suffix"] == "_2"
    assert current_schedule_values(config, 999)["tensorboard_suffix"] == ""


def test_cli_validate_reports_problems_without_traceback(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bad = write(tmp_path, "performance:\n  gpu_collectors_count: 0\n")
    assert main(["config", "validate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "performance.gpu_collectors_count" in err
    assert "Traceback" not in err
    good = tmp_path / "good.yaml"
    good.write_text("seed: 3\n")
    assert main(["config", "validate", str(good)]) == 0
    assert main(["config", "show", str(good), "--at-frames", "0"]) == 0
    assert "seed: 3" in capsys.readouterr().out


# --- input the probe found accepted (issue 18): each must be one ConfigError naming the key path -------------------
@pytest.mark.parametrize(
    ("yaml_text", "key_path", "problem"),
    [
        ("training:\n  lr_schedule: [[0, 0.0]]\n", "training.lr_schedule", "must be > 0"),
        ("training:\n  lr_schedule: [[0, -1.0e-3]]\n", "training.lr_schedule", "must be > 0"),
        ("training:\n  lr_schedule: [[0, .nan]]\n", "training.lr_schedule[0][1]", "finite"),
        ("training:\n  lr_schedule: [[0, .inf]]\n", "training.lr_schedule[0][1]", "finite"),
        ("training:\n  lr_schedule: [[0, 1.0e-3], [.nan, 1.0e-4]]\n", "training.lr_schedule[1][0]", "finite"),
        ("training:\n  gamma_schedule: [[0, .nan]]\n", "training.gamma_schedule[0][1]", "finite"),
        ("exploration:\n  epsilon_schedule: [[0, 1.5]]\n", "exploration.epsilon_schedule", "outside [0, 1]"),
        ("exploration:\n  epsilon_schedule: [[0, -0.1]]\n", "exploration.epsilon_schedule", "outside [0, 1]"),
        ("exploration:\n  epsilon_schedule: [[0, .nan]]\n", "exploration.epsilon_schedule[0][1]", "finite"),
        ("exploration:\n  epsilon_boltzmann_schedule: [[0, 2.0]]\n", "exploration.epsilon_boltzmann_schedule",
         "outside [0, 1]"),
        ("global_schedule_speed: .inf\n", "global_schedule_speed", "finite"),
        ("global_schedule_speed: .nan\n", "global_schedule_speed", "finite"),
        ("training:\n  clip_grad_norm: .nan\n", "training.clip_grad_norm", "finite"),
        ("seed: -1\n", "seed", "greater than or equal to 0"),
        ("training:\n  batch_size: true\n", "training.batch_size", "got a boolean"),
        ("memory:\n  memory_size_schedule: [[0, true]]\n", "memory.memory_size_schedule", "got a boolean"),
        ("training:\n  use_ddqn: 1\n", "training.use_ddqn", "expected true or false"),
        ("training:\n  batch_size: 0\n", "training.batch_size", "greater than or equal to 1"),
        ("memory:\n  memory_size_schedule: [[0, 0]]\n", "memory.memory_size_schedule", "must be >= 1"),
        ("memory:\n  memory_size_schedule: [[0, 1000]]\n  min_transitions_to_learn: 5000\n", "memory",
         "below min_transitions_to_learn (5000)"),
        ("map_cycle:\n  entries: [{map: missing_track.npy}]\n", "map_cycle.entries[0].map", "does not exist"),
        ("trainig:\n  batch_size: 64\n", "trainig", "unknown key"),
        ("run_name: ../x\n", "run_name", "without path separators"),
        ("run_name: a/b\n", "run_name", "without path separators"),
        ("run_name: ''\n", "run_name", "must not be empty"),
        ("run_name: ..\n", "run_name", "must not start with '.'"),
        ("training:\n  tensorboard_suffix_schedule: [[0, ''], [10, /../x]]\n", "training.tensorboard_suffix_schedule",
         "plain name fragment"),
    ],
)
def test_values_that_used_to_validate_are_refused(tmp_path: Path, yaml_text: str, key_path: str, problem: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_config(write(tmp_path, yaml_text))
    message = str(error.value)
    assert f"  {key_path}: " in message
    assert problem in message


def test_strict_types_keep_yaml_numbers_written_as_text() -> None:
    # PyYAML reads 1e-3 (no dot) as a string; pydantic's number parsing of it stays, only booleans are refused.
    config = config_from_dict({"training": {"lr_schedule": [[0, "1e-3"]], "batch_size": 64}, "seed": 3})
    assert config.training.lr_schedule == [(0.0, 1e-3)]
    assert config.training.batch_size == 64


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n# and another\n", "---\n"])
def test_empty_or_comment_only_file_is_an_error_not_the_defaults(tmp_path: Path, text: str) -> None:
    with pytest.raises(ConfigError, match="empty config"):
        load_config(write(tmp_path, text))


def test_duplicate_keys_are_refused_with_their_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as error:
        load_config(write(tmp_path, "seed: 1\ntraining:\n  batch_size: 64\n  n_steps: 3\n  batch_size: 128\n"))
    message = str(error.value)
    assert "duplicate key 'batch_size' at line 5 (first given at line 3)" in message
    assert str(tmp_path / "config.yaml") in message
    with pytest.raises(ConfigError, match="duplicate key 'training' at line 3"):
        load_config(write(tmp_path, "training: {}\nseed: 1\ntraining: {}\n"))


def test_a_file_that_is_not_utf8_is_named(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_bytes("run_name: caf\u00e9\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=r"config\.yaml: not a UTF-8 text file \(byte offset 13"):
        load_config(path)


def test_cli_refuses_bad_values_in_one_block_without_traceback(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bad = write(tmp_path, "training:\n  lr_schedule: [[0, .nan]]\n  batch_size: true\nrun_name: ../escape\n")
    assert main(["config", "validate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "3 problem(s)" in err
    assert "Traceback" not in err


def test_cli_validate_checks_that_every_map_exists(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    track = tmp_path / "mine"  # a centre-line file without the .npy suffix is a file all the same
    track.write_bytes(b"")
    bad = write(tmp_path, f"map_cycle:\n  entries: [{{map: a01}}, {{map: a02}}, {{map: {track}}}]\n")
    assert main(["config", "validate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "map_cycle.entries[1].map: 'a02' is not a built-in track (a01, " in err
    assert "entries[0]" not in err and "entries[2]" not in err and "1 problem(s)" in err


@pytest.mark.parametrize("frames", ["nan", "inf", "-5"])
def test_cli_show_refuses_a_bad_frame_count(tmp_path: Path, capsys: pytest.CaptureFixture, frames: str) -> None:
    good = write(tmp_path, "seed: 3\n")
    assert main(["config", "show", str(good), "--at-frames", frames]) == 2
    assert "--at-frames must be a finite number of frames >= 0" in capsys.readouterr().err


@pytest.mark.parametrize(
    "text",
    ["memory:\n  memory_size_schedule: [[0, 100000000000]]\n", "environment:\n  n_zone_centers_in_inputs: 5000000\n"],
)
def test_cli_validate_refuses_sizes_this_machine_cannot_hold(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                             text: str) -> None:  # fmt: skip
    assert main(["config", "validate", str(write(tmp_path, text))]) == 2
    err = capsys.readouterr().err
    assert "GiB of memory but the machine has" in err and "replay buffer" in err and err.count("\n") == 1

"""The report's Configuration changes and Hardware sections, against synthetic save folders, and hardware.json's
append-per-session record."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from trackrl.analysis.run_setup import NOT_RECORDED, config_changes, hardware_rows, render_setup_sections
from trackrl.train.hardware import HARDWARE_FILE, record_session

BASE = {"seed": 0, "run_name": "x", "training": {"batch_size": 64, "lr_schedule": [[0, 0.001]]},
        "btr": {"use_munchausen": False}, "performance": {"device": "cpu"}}  # fmt: skip


def _snapshot(save: Path, run: str, **changes: object) -> None:
    config = json.loads(json.dumps(BASE)) | {"run_name": run}
    for key, value in changes.items():  # section__leaf, or a top-level key
        if "__" in key:
            section, leaf = key.split("__")
            config[section][leaf] = value
        else:
            config[key] = value
    (save / run).mkdir(parents=True)
    (save / run / "config_snapshot.yaml").write_text(yaml.safe_dump(config))


def test_config_changes_between_runs_list_every_differing_key_and_only_those(tmp_path: Path) -> None:
    _snapshot(tmp_path, "a01")
    _snapshot(tmp_path, "a01_btr", btr__use_munchausen=True, training__lr_schedule=[[0, 0.0005]])
    rows, missing = config_changes({"a01": ["a01"], "a01_btr": ["a01_btr"], "old": ["old"]}, tmp_path)
    assert rows == [
        ["btr.use_munchausen", "false", "true", NOT_RECORDED],
        ["training.lr_schedule", "[[0, 0.001]]", "[[0, 0.0005]]", NOT_RECORDED],
    ]  # run_name differs too, but it is the column; batch size, seed, device are equal
    assert missing == ["old"]


def test_config_changes_between_groups_ignore_the_seeds_within_a_group(tmp_path: Path) -> None:
    for seed in (0, 1):
        _snapshot(tmp_path, f"small-s{seed}", seed=seed)
        _snapshot(tmp_path, f"big-s{seed}", seed=seed, training__batch_size=128)
    rows, _ = config_changes({"small": ["small-s0", "small-s1"], "big": ["big-s0", "big-s1"]}, tmp_path)
    assert rows == [["training.batch_size", "64", "128"]]  # seeds 0, 1 in both groups: no change
    text = "\n".join(render_setup_sections({"small": ["small-s0", "small-s1"], "big": ["big-s0", "big-s1"]},
                                           tmp_path))  # fmt: skip
    assert "| key | small | big |" in text and "| training.batch_size | 64 | 128 |" in text


def test_hardware_record_appends_a_session_and_the_report_says_not_recorded_without_it(tmp_path: Path) -> None:
    record = {"collectors": 2, "cars_per_collector": 8, "learner_device": "cuda:0", "collector_device": "cuda:0",
              "torch_threads": 4, "cpu_model": "AMD EPYC 7763", "cpu_cores": 16, "usable_cpus": 16,
              "gpu": "NVIDIA H200", "host": "node1"}  # fmt: skip
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / HARDWARE_FILE).write_text("{not json")  # a damaged record is replaced, not trusted
    record_session(tmp_path / "a", record | {"host": "node0"})
    record_session(tmp_path / "a", record)
    assert [s["host"] for s in json.loads((tmp_path / "a" / HARDWARE_FILE).read_text())["sessions"]] == ["node0",
                                                                                                          "node1"]
    (tmp_path / "b").mkdir()
    record_session(tmp_path / "b", record)
    rows = hardware_rows(["a", "b", "old"], tmp_path)  # a and b ran on the same kind of node: one row
    assert rows == [["a, b", "2", "8", "cuda:0", "cuda:0", "4", "AMD EPYC 7763", "16", "16", "NVIDIA H200", "node1"],
                    ["old", *[NOT_RECORDED] * 10]]  # fmt: skip

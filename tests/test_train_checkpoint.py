"""Save-state files: atomic writes, weights_only loads, clear errors naming the file."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from trackrl.train.checkpoint import (
    ACCUMULATED_STATS_FILE,
    LEARNER_STATE_FILE,
    CheckpointError,
    atomic_torch_save,
    atomic_write_json,
    load_checkpoint,
    load_json,
    load_torch,
    save_checkpoint,
)


def test_atomic_json_round_trip_leaves_no_temp_files(tmp_path: Path) -> None:
    path = tmp_path / "stats.json"
    atomic_write_json(path, {"a": 1})
    atomic_write_json(path, {"a": 2, "b": [1, 2]})
    assert load_json(path) == {"a": 2, "b": [1, 2]}
    assert [p.name for p in tmp_path.iterdir()] == ["stats.json"]


def test_failed_write_keeps_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "stats.json"
    atomic_write_json(path, {"a": 1})
    with pytest.raises(TypeError):
        atomic_write_json(path, {"a": object()})  # not JSON-serialisable: fails mid-write
    assert load_json(path) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["stats.json"]


def test_torch_round_trip_with_weights_only(tmp_path: Path) -> None:
    state = {"w": torch.arange(6.0).reshape(2, 3), "step": 7}
    atomic_torch_save(state, tmp_path / "x.torch")
    loaded = load_torch(tmp_path / "x.torch")
    assert torch.equal(loaded["w"], state["w"]) and loaded["step"] == 7


class NotAllowed:
    pass


def test_pickled_object_is_refused(tmp_path: Path) -> None:
    torch.save({"evil": NotAllowed()}, tmp_path / "x.torch")
    with pytest.raises(CheckpointError, match=r"x\.torch"):
        load_torch(tmp_path / "x.torch")


def test_corrupt_and_missing_files_name_the_file(tmp_path: Path) -> None:
    save_checkpoint(tmp_path, {"w": torch.ones(2)}, {"w": torch.ones(2)}, {"cumul_number_frames_played": 3}, "a: 1\n")
    learner_state, stats = load_checkpoint(tmp_path)
    assert stats["cumul_number_frames_played"] == 3 and torch.equal(learner_state["w"], torch.ones(2))
    (tmp_path / LEARNER_STATE_FILE).write_bytes(b"\x00garbage")
    with pytest.raises(CheckpointError, match=LEARNER_STATE_FILE):
        load_checkpoint(tmp_path)
    (tmp_path / ACCUMULATED_STATS_FILE).write_text('{"cumul_number_frames_played": 3')  # truncated
    with pytest.raises(CheckpointError, match=ACCUMULATED_STATS_FILE):
        load_checkpoint(tmp_path)
    (tmp_path / ACCUMULATED_STATS_FILE).unlink()
    with pytest.raises(CheckpointError, match="file not found"):
        load_checkpoint(tmp_path)


def save_generation(run_dir: Path, generation: int, weight: float) -> bytes:
    stats = {"cumul_number_frames_played": 100 * generation, "checkpoint_generation": generation}
    save_checkpoint(run_dir, {"w": torch.full((2,), weight)}, {"w": torch.full((2,), weight)}, stats, "a: 1\n")
    return (run_dir / ACCUMULATED_STATS_FILE).read_bytes()


def test_a_kill_between_learner_state_and_stats_resumes_from_the_matching_learner_state(tmp_path: Path) -> None:
    stats_of_1 = save_generation(tmp_path, 1, weight=1.0)
    save_generation(tmp_path, 2, weight=2.0)
    (tmp_path / ACCUMULATED_STATS_FILE).write_bytes(stats_of_1)  # the kill came before the stats were replaced
    learner_state, stats = load_checkpoint(tmp_path)
    assert stats["checkpoint_generation"] == 1 and torch.equal(learner_state["w"], torch.ones(2))
    assert "checkpoint_generation" not in learner_state  # the learner gets its own keys only
    save_generation(tmp_path, 3, weight=3.0)  # a complete save: the current file matches
    learner_state, _ = load_checkpoint(tmp_path)
    assert torch.equal(learner_state["w"], torch.full((2,), 3.0))


def test_learner_state_and_stats_of_different_checkpoints_are_refused(tmp_path: Path) -> None:
    stats_of_1 = save_generation(tmp_path, 1, weight=1.0)
    save_generation(tmp_path, 2, weight=2.0)
    save_generation(tmp_path, 3, weight=3.0)
    (tmp_path / ACCUMULATED_STATS_FILE).write_bytes(stats_of_1)  # neither learner file is generation 1
    with pytest.raises(CheckpointError, match=r"generation 1 but learner_state\.torch is generation 3"):
        load_checkpoint(tmp_path)


def test_an_atomic_write_makes_the_rename_durable_with_a_folder_fsync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os
    import stat

    import trackrl.atomic

    synced_dirs: list[bool] = []
    real_fsync = os.fsync

    def recording_fsync(fd: int) -> None:
        synced_dirs.append(stat.S_ISDIR(os.fstat(fd).st_mode))
        real_fsync(fd)

    monkeypatch.setattr(trackrl.atomic.os, "fsync", recording_fsync)
    atomic_write_json(tmp_path / "stats.json", {"a": 1})
    assert synced_dirs == [False, True]  # the file's data, then the folder entry of the rename

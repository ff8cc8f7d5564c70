"""`trackrl train --init-from RUN`: weights only from RUN's checkpoint, fresh counters, said in the save-state."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from trackrl.config import config_from_dict, config_to_dict, load_config
from trackrl.errors import UserError
from trackrl.train.checkpoint import CheckpointError
from trackrl.train.run import Trainer, TrainOptions

SMOKE = Path(__file__).resolve().parent.parent / "configs" / "smoke.yaml"


def options(tmp_path: Path, run_name: str, **extra: object) -> TrainOptions:
    return TrainOptions(run_name=run_name, save_dir=tmp_path / "save", logdir=tmp_path / "tb", live=False, **extra)


def saved_source_run(tmp_path: Path) -> dict[str, torch.Tensor]:
    """A run 'source' with recognisable weights and counters; returns its online weights."""
    source = Trainer(load_config(SMOKE), options(tmp_path, "source"))
    with torch.no_grad():
        for k, parameter in enumerate(source.learner.online_network.parameters()):
            parameter.fill_(0.001 * (k + 1))
    source.stats.cumul_number_frames_played = 12_345
    source.stats.cumul_number_batches_done = 67
    source.checkpoint()
    source.lock.release()
    return source.learner.inference_state_dict()


def test_init_from_loads_the_weights_only_and_says_so_in_the_save_state(tmp_path: Path) -> None:
    weights = saved_source_run(tmp_path)
    trainer = Trainer(load_config(SMOKE), options(tmp_path, "game", init_from="source"))
    for network in (trainer.learner.online_network, trainer.learner.target_network):
        for name, tensor in network.state_dict().items():
            torch.testing.assert_close(tensor, weights[name], msg=name)
    assert trainer.stats.cumul_number_frames_played == 0 and trainer.stats.cumul_number_batches_done == 0
    assert trainer.learner.batches_done == 0 and not trainer.learner.optimizer.state  # a fresh optimiser
    checkpoint = str(tmp_path / "save" / "source" / "weights.torch")
    assert trainer.stats.init_from == {"run": "source", "checkpoint": checkpoint, "frames": 12_345}
    trainer.checkpoint()
    trainer.lock.release()
    saved = json.loads((tmp_path / "save" / "game" / "accumulated_stats.json").read_text())
    assert saved["init_from"] == {"run": "source", "checkpoint": checkpoint, "frames": 12_345}
    # A run folder works as well as a name under --save-dir.
    by_folder = Trainer(load_config(SMOKE), options(tmp_path, "game2", init_from=str(tmp_path / "save" / "source")))
    assert by_folder.stats.init_from["frames"] == 12_345
    by_folder.lock.release()


def test_a_network_of_another_shape_is_refused_naming_the_layer(tmp_path: Path) -> None:
    saved_source_run(tmp_path)
    data = config_to_dict(load_config(SMOKE))
    data["nn"]["float_hidden_dim"] = 2 * data["nn"]["float_hidden_dim"]
    with pytest.raises(UserError, match=r"layer '[\w.]+' has shape \(\d+, \d+\) there but \(\d+, \d+\) in this"):
        Trainer(config_from_dict(data), options(tmp_path, "wider", init_from="source"))


def test_bad_init_from_arguments(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match=r"--init-from nowhere: no weights\.torch"):
        Trainer(load_config(SMOKE), options(tmp_path, "x", init_from="nowhere"))
    with pytest.raises(UserError, match="cannot be used with --resume"):
        options(tmp_path, "x", init_from="source", resume=True)

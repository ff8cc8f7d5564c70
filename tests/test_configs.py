"""Every shipped config validates, and the BTR config differs from the baseline in the BTR switches."""

from __future__ import annotations

from pathlib import Path

import pytest

from trackrl.config import load_config
from trackrl.sim.track import builtin_track_names

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"
SHIPPED = sorted(CONFIG_DIR.glob("*.yaml"))


def test_expected_configs_are_shipped() -> None:
    assert {"a01.yaml", "a01_btr.yaml", "smoke.yaml"} <= {p.name for p in SHIPPED}


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_config_validates_and_names_builtin_maps(path: Path) -> None:
    config = load_config(path)
    assert config.run_name == path.stem
    for entry in config.map_cycle.entries:
        assert entry.map in builtin_track_names()


def test_btr_config_turns_on_every_btr_component() -> None:
    baseline, btr = load_config(CONFIG_DIR / "a01.yaml"), load_config(CONFIG_DIR / "a01_btr.yaml")
    cnn = btr.nn.vis.cnn
    assert cnn.use_impala_cnn and cnn.use_adaptive_maxpool and cnn.use_spectral_norm
    assert btr.btr.use_munchausen and btr.btr.use_layer_norm and btr.btr.use_noisy_linear
    assert btr.memory.use_prioritized_replay and btr.memory.prio_alpha == 0.2
    assert not btr.training.use_ddqn
    assert not baseline.btr.use_munchausen and not baseline.nn.vis.cnn.use_impala_cnn
    assert baseline.training.batch_size == btr.training.batch_size == 256
    assert baseline.map_cycle == btr.map_cycle

"""Every shipped config validates, and the BTR config differs from the baseline in the BTR switches."""

from __future__ import annotations

from pathlib import Path

import pytest

from trackrl.config import load_config
from trackrl.sim.track import builtin_track_names

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"
SHIPPED = sorted(CONFIG_DIR.glob("*.yaml"))


def test_expected_configs_are_shipped() -> None:
    expected = {"a01.yaml", "a01_btr.yaml", "a01_image.yaml", "a01_btr_image.yaml", "smoke.yaml"}
    assert expected <= {p.name for p in SHIPPED}


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_config_validates_and_names_builtin_maps(path: Path) -> None:
    config = load_config(path)
    assert config.run_name == path.stem
    for entry in config.map_cycle.entries:
        assert entry.map in builtin_track_names()


# What a BTR config may change relative to its baseline: the BTR switches and what BTR sets with them.
BTR_KEYS = {"btr", "nn.iqn_kappa", "nn.vis.cnn", "memory.use_prioritized_replay", "exploration", "run_name"}


def _leaves(tree: dict, prefix: str = "") -> dict[str, object]:
    flat: dict[str, object] = {}
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_leaves(value, path + "."))
        else:
            flat[path] = value
    return flat


def _differing_keys(baseline_name: str, btr_name: str) -> set[str]:
    baseline = _leaves(load_config(CONFIG_DIR / baseline_name).model_dump())
    btr = _leaves(load_config(CONFIG_DIR / btr_name).model_dump())
    return {key for key in baseline.keys() | btr.keys() if baseline.get(key) != btr.get(key)}


def _is_btr_key(key: str) -> bool:
    return any(key == allowed or key.startswith(allowed + ".") for allowed in BTR_KEYS)


@pytest.mark.parametrize(
    "baseline_name, btr_name, uses_image",
    [("a01.yaml", "a01_btr.yaml", False), ("a01_image.yaml", "a01_btr_image.yaml", True)],
)
def test_btr_config_is_its_baseline_plus_every_btr_component(
    baseline_name: str, btr_name: str, uses_image: bool
) -> None:
    baseline, btr = load_config(CONFIG_DIR / baseline_name), load_config(CONFIG_DIR / btr_name)
    assert baseline.nn.use_image == btr.nn.use_image == uses_image
    assert btr.btr.use_munchausen and btr.btr.use_layer_norm and btr.btr.use_noisy_linear
    assert btr.memory.use_prioritized_replay and btr.memory.prio_alpha == 0.2
    assert not btr.training.use_ddqn
    cnn = btr.nn.vis.cnn
    if uses_image:  # BTR's image components exist only with an image head
        assert cnn.use_impala_cnn and cnn.use_adaptive_maxpool and cnn.use_spectral_norm
    assert not baseline.btr.use_munchausen and not baseline.btr.use_noisy_linear
    assert not baseline.memory.use_prioritized_replay and not baseline.nn.vis.cnn.use_impala_cnn
    assert baseline.training.batch_size == btr.training.batch_size
    assert baseline.map_cycle == btr.map_cycle


def test_float_only_btr_pair_differs_only_in_btr_settings() -> None:
    """a01 vs a01_btr is the "did BTR help?" experiment on CPU: nothing else may differ between them."""
    differing = _differing_keys("a01.yaml", "a01_btr.yaml")
    assert "btr.use_munchausen" in differing  # the comparison sees real differences
    assert {key for key in differing if not _is_btr_key(key)} == set()

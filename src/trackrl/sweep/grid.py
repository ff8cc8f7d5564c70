"""The sweep grid: configs x every --set combination x seeds, each cell validated by the config schema up front."""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from trackrl.config.loader import ConfigError, config_from_dict, config_to_yaml, load_config
from trackrl.config.schema import TrackRLConfig
from trackrl.errors import UserError

_UNSAFE = re.compile(r"[^A-Za-z0-9._]+")


class SweepError(UserError):
    """Bad sweep input: a --set key or value, duplicate trial names, a sweep.json that does not match."""


@dataclass(frozen=True)
class Override:
    key: str  # dotted config key, e.g. btr.use_munchausen
    values: tuple[Any, ...]


@dataclass(frozen=True)
class TrialSpec:
    name: str  # <config run_name>[-<override values>]-s<seed>
    source_config: str
    overrides: dict[str, Any]
    seed: int
    config: TrackRLConfig


def parse_set(text: str) -> Override:
    """'training.batch_size=64,128' -> Override('training.batch_size', (64, 128)); values are YAML scalars."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key or not raw.strip():
        raise SweepError(f"--set {text!r}: expected KEY=V1[,V2...], e.g. training.batch_size=64,128")
    try:
        values = tuple(yaml.safe_load(v.strip()) for v in raw.split(","))
    except yaml.YAMLError as error:
        raise SweepError(f"--set {key}: a value is not a YAML scalar: {error}") from None
    if any(isinstance(v, dict | list) or v is None for v in values):
        raise SweepError(f"--set {key}: values must be scalars (numbers, true/false, strings), got {raw!r}")
    return Override(key, values)


def override_label(key: str, value: Any) -> str:
    """btr.use_munchausen=false -> 'munchausen_false' (last key part, 'use_' dropped), safe for a folder name."""
    leaf = key.rsplit(".", 1)[-1].removeprefix("use_")
    text = str(value).lower() if isinstance(value, bool) else str(value)
    return _UNSAFE.sub("_", f"{leaf}_{text}")


def _set_dotted(data: dict[str, Any], key: str, value: Any, source: str) -> None:
    node = data
    parts = key.split(".")
    for depth, part in enumerate(parts[:-1]):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise SweepError(f"--set {key}: {'.'.join(parts[: depth + 1])} in {source} is a value, not a section")
        node = child
    node[parts[-1]] = value


def cell_config(source: str, overrides: dict[str, Any], seed: int, run_name: str) -> TrackRLConfig:
    """The config file with the overrides, the seed and the trial's run name, validated by the schema."""
    path = Path(source)
    data = yaml.safe_load(path.read_text(encoding="utf-8")) if path.is_file() else None
    if not isinstance(data, dict):
        load_config(path)  # raises the loader's clear message (missing file, bad YAML, not a mapping)
        data = {}
    for key, value in overrides.items():
        _set_dotted(data, key, value, source)
    data["seed"], data["run_name"] = seed, run_name
    where = f"{source} with --set " + ", ".join(f"{k}={v}" for k, v in overrides.items()) if overrides else source
    try:
        return config_from_dict(data, where)
    except ConfigError as error:
        raise SweepError(str(error)) from None


def build_grid(configs: Sequence[str], sets: Sequence[Override], seeds: int) -> list[TrialSpec]:
    """Every trial of the sweep, in launch order (seed-major, so that every cell gets seed 0 first)."""
    if not configs:
        raise SweepError("give at least one --config")
    if seeds < 1:
        raise SweepError(f"--seeds must be at least 1, got {seeds}")
    keys = [s.key for s in sets]
    if len(set(keys)) != len(keys):
        raise SweepError(f"--set: a key is given twice ({', '.join(keys)}); put all its values in one --set")
    cells: list[tuple[str, dict[str, Any], str]] = []
    for source in configs:
        base_name = load_config(source).run_name
        for values in itertools.product(*(s.values for s in sets)):
            overrides = dict(zip(keys, values, strict=True))
            labels = [override_label(k, v) for k, v in overrides.items()]
            cells.append((source, overrides, "-".join([base_name, *labels])))
    trials = [
        TrialSpec(f"{cell}-s{seed}", source, overrides, seed, cell_config(source, overrides, seed, f"{cell}-s{seed}"))
        for seed in range(seeds)
        for source, overrides, cell in cells
    ]
    names = [t.name for t in trials]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise SweepError(f"two grid cells give the same trial name ({', '.join(duplicates)}): give the configs "
                         "different run_name values")  # fmt: skip
    return trials


def cell_name(trial_name: str) -> str:
    """'a01-munchausen_false-s3' -> 'a01-munchausen_false' (the group a trial belongs to)."""
    return re.sub(r"-s\d+$", "", trial_name)


def config_yaml(trial: TrialSpec) -> str:
    return config_to_yaml(trial.config)

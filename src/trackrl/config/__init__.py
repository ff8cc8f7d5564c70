"""Configuration: pydantic schema (extra="forbid"), YAML loading, schedules and global_schedule_speed."""

from trackrl.config.loader import ConfigError, config_from_dict, config_to_dict, config_to_yaml, load_config
from trackrl.config.schedules import (
    current_schedule_values,
    exponential_schedule,
    linear_schedule,
    staircase_schedule,
)
from trackrl.config.schema import (
    BtrConfig,
    EnvironmentConfig,
    ExplorationConfig,
    MapCycleConfig,
    MapCycleEntry,
    MemoryConfig,
    NnConfig,
    PerformanceConfig,
    RewardsConfig,
    TrackRLConfig,
    TrainingConfig,
)

__all__ = [
    "BtrConfig",
    "ConfigError",
    "EnvironmentConfig",
    "ExplorationConfig",
    "MapCycleConfig",
    "MapCycleEntry",
    "MemoryConfig",
    "NnConfig",
    "PerformanceConfig",
    "RewardsConfig",
    "TrackRLConfig",
    "TrainingConfig",
    "config_from_dict",
    "config_to_dict",
    "config_to_yaml",
    "current_schedule_values",
    "exponential_schedule",
    "linear_schedule",
    "load_config",
    "staircase_schedule",
]

"""The built-in Trackmania-style racing simulator: tracks, car physics, camera, batched and Gymnasium envs.

Importing this package registers the Gymnasium env `trackrl/Race-v0`.
"""

import gymnasium

from trackrl.sim.actions import ACTION_NAMES, ACTIONS, N_ACTIONS
from trackrl.sim.env import StepResult, VecRaceEnv
from trackrl.sim.reference import ReferenceLap, reference_lap
from trackrl.sim.rollout import SimulatedRace, simulate_actions
from trackrl.sim.track import Track, TrackError, builtin_track_names, load_track

if "trackrl/Race-v0" not in gymnasium.registry:
    gymnasium.register(id="trackrl/Race-v0", entry_point="trackrl.sim.gym_env:RaceEnv")

__all__ = [
    "ACTIONS",
    "ACTION_NAMES",
    "N_ACTIONS",
    "ReferenceLap",
    "SimulatedRace",
    "StepResult",
    "Track",
    "TrackError",
    "VecRaceEnv",
    "builtin_track_names",
    "load_track",
    "reference_lap",
    "simulate_actions",
]

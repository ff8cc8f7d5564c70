"""The built-in Trackmania-style racing simulator: tracks, car physics, camera, batched and Gymnasium envs.

`import trackrl` registers the Gymnasium env `trackrl/Race-v0` (trackrl/__init__.py).
"""

from trackrl.sim.actions import ACTION_NAMES, ACTIONS, N_ACTIONS
from trackrl.sim.env import StepResult, VecRaceEnv
from trackrl.sim.reference import ReferenceLap, reference_lap
from trackrl.sim.rollout import SimulatedRace, simulate_actions
from trackrl.sim.track import Track, TrackError, builtin_track_names, load_track

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

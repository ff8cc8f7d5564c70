"""Built-in tracks, defined in code from straights and arcs."""

from trackrl.sim.tracks.builder import Arc, Straight, build_centerline
from trackrl.sim.tracks.builtin import BUILTIN_TRACKS, BuiltinTrack

__all__ = ["BUILTIN_TRACKS", "Arc", "BuiltinTrack", "Straight", "build_centerline"]

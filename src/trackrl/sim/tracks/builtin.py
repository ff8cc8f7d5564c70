"""The built-in tracks. Angles > 0 turn right. Road width 16 m unless stated."""

from __future__ import annotations

from dataclasses import dataclass

from trackrl.sim.tracks.builder import Arc, Piece, Straight


@dataclass(frozen=True)
class BuiltinTrack:
    description: str
    pieces: list[Piece]
    road_width_m: float = 16.0


BUILTIN_TRACKS: dict[str, BuiltinTrack] = {
    "a01": BuiltinTrack(
        "short stadium-style track from standstill, A01-like (about 25 s)",
        [
            Straight(100),
            Arc(50, 90),
            Straight(80),
            Arc(40, -90),
            Straight(40),
            Arc(45, -90),
            Straight(100),
            Arc(70, 100),
            Straight(60),
            Arc(50, -40),
            Straight(60),
        ],
    ),
    "easy": BuiltinTrack(
        "short and gentle: a straight and one wide bend (about 10 s); for learning tests",
        [Straight(120), Arc(90, 60), Straight(110)],
        road_width_m=20.0,
    ),
    "technical": BuiltinTrack(
        "long technical track: switchback hairpins, chicanes and esses (60-90 s)",
        [
            Straight(150),
            Arc(25, 90),
            Straight(60),
            Arc(25, -90),
            Straight(100),
            Arc(14, 180),  # hairpin right
            Straight(110),
            Arc(30, -50),
            Arc(30, 50),  # chicane
            Straight(70),
            Arc(14, -180),  # hairpin left
            Straight(160),
            Arc(40, 90),
            Straight(80),
            Arc(20, -90),
            Straight(60),
            Arc(30, 45),
            Arc(30, -45),  # chicane
            Straight(120),
            Arc(50, -90),
            Straight(90),
            Arc(22, 70),
            Arc(22, -70),  # esses
            Straight(60),
            Arc(14, 180),  # hairpin right
            Straight(100),
            Arc(60, -60),
            Straight(90),
            Arc(25, 100),
            Straight(200),
        ],
    ),
    "hills": BuiltinTrack(
        "rolling track with climbs, crests and descents (elevation up to about 40 m)",
        [
            Straight(150, rise_m=12),
            Arc(60, 70, rise_m=8),
            Straight(160, rise_m=-18),
            Arc(40, -110),
            Straight(120, rise_m=20),
            Arc(45, 90, rise_m=6),
            Straight(180, rise_m=-26),
            Arc(35, -90),
            Straight(130, rise_m=10),
            Arc(70, 60, rise_m=-6),
            Straight(150, rise_m=-6),
        ],
    ),
}

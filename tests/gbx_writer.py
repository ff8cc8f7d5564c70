"""Minimal TMNF .Gbx files for tests (no game file ships): a replay holding ghosts, a challenge holding blocks.

Written from the GBX layout (xaseco wiki "GBX": header `GBX`, version 6, format `BUCR`, main class id, user data,
node count, no external nodes, then the LZO-compressed body of chunks ending in 0xFACADE01) with only the chunks
pygbx 0.3 reads for `trackrl track from-replay|checkpoints`. Needs python-lzo (pygbx's own dependency).
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

REPLAY_RECORD = 0x03093000
CHALLENGE = 0x03043000
CTN_GHOST = 0x03092000
END = 0xFACADE01
NEW_LOOKBACK_STRING = 0x40000000
LOOKBACK_VERSION = 3
SAMPLE = struct.Struct("<3fHhhhbb")  # position, angle, axis heading/pitch, speed, velocity heading/pitch: 22 bytes


def u32(value: int) -> bytes:
    return struct.pack("<I", value)


def string(text: str) -> bytes:
    data = text.encode("utf-8")
    return u32(len(data)) + data


class LookbackStrings:
    """Every string written as a new one (flag 0x40000000, index 0); the first one is preceded by the version."""

    def __init__(self) -> None:
        self.started = False

    def __call__(self, text: str) -> bytes:
        prefix = b"" if self.started else u32(LOOKBACK_VERSION)
        self.started = True
        return prefix + u32(NEW_LOOKBACK_STRING) + string(text)


def gbx_file(main_class_id: int, body: bytes, n_nodes: int) -> bytes:
    import lzo

    header = b"GBX" + struct.pack("<H", 6) + b"BUCR" + u32(main_class_id)
    header += u32(4) + u32(0)  # user data: 4 bytes, holding zero header chunks
    header += u32(n_nodes) + u32(0)  # no external nodes
    compressed = lzo.compress(body, 1, False)
    return header + u32(len(body)) + u32(len(compressed)) + compressed


def ghost_node(positions_m: np.ndarray, sample_period_ms: int, race_time_ms: int, respawns: int) -> bytes:
    samples = b"".join(SAMPLE.pack(float(x), float(y), float(z), 0, 0, 0, 0, 0, 0) for x, y, z in positions_m)
    data = bytes(12) + u32(sample_period_ms) + bytes(4) + u32(len(samples)) + samples
    data += u32(len(positions_m)) + u32(0) + struct.pack("<i", SAMPLE.size)  # count, first offset, fixed size
    compressed = zlib.compress(data)
    chunks = u32(0x0303F005) + u32(len(data)) + u32(len(compressed)) + compressed
    chunks += u32(0x03092005) + u32(race_time_ms)
    chunks += u32(0x03092008) + u32(respawns)
    return chunks + u32(END)


def replay_gbx(ghosts: list[tuple[np.ndarray, int, int, int]]) -> bytes:
    """A replay whose ghosts are (positions (n, 3), sample period ms, race time ms, respawns)."""
    body = u32(0x03093014) + u32(0) + u32(len(ghosts))  # the ghosts chunk: version, count
    for index, ghost in enumerate(ghosts):
        body += struct.pack("<i", index) + u32(CTN_GHOST) + ghost_node(*ghost)
    body += u32(0) + u32(END)
    return gbx_file(REPLAY_RECORD, body, n_nodes=len(ghosts) + 1)


def challenge_gbx(blocks: list[tuple[str, tuple[int, int, int]]], environment: str = "Stadium") -> bytes:
    """A challenge holding (block name, block coordinates) blocks (the 0x0304301F chunk)."""
    lookback = LookbackStrings()
    body = u32(0x0304301F) + lookback("uid") + lookback(environment) + lookback("author") + string("test map")
    body += lookback("Day") + lookback(environment) + lookback("Nadeo")  # mood, decoration environment, author
    body += struct.pack("<3i", 32, 32, 32) + struct.pack("<i", 0) + struct.pack("<i", 1)  # size, unlock, flags
    body += u32(len(blocks))
    for name, (x, y, z) in blocks:
        body += lookback(name) + bytes([0, x, y, z]) + u32(0)  # rotation, position, block flags (no skin)
    body += u32(END)
    return gbx_file(CHALLENGE, body, n_nodes=1)

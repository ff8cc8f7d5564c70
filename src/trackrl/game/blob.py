"""The simulation-state blob of C_GET_SIMULATION_STATE / C_REWIND_TO_STATE (GAME_BRIDGE.md §6).

Layout: TMInterface 1's `SimStateData` (tminterface 1.0.2), which Linesight uses to parse TMInterface 2's blobs:
an 8,356-byte fixed part, then the checkpoint arrays (int32 n, n bool32 `cp_states`, int32 m, m x {int32 time,
int32 stunts score} `cp_times`). All fields little-endian 32-bit; "bool" is a uint32, non-zero = true.

The layout is a NumPy structured dtype at the documented absolute offsets, not the `tminterface` package. That
package (1.0.2, with `bytefield`) does install and `tminterface.structs` imports on Linux (checked with Python
3.11), but it is outside the project's dependency set, unmaintained since 2023 and built around TMInterface 1's
Windows shared-memory client; the server also has to write blobs. A dtype is a dependency-free, zero-copy view,
and the tests check its offsets byte by byte against GAME_BRIDGE.md with plain `struct`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import numpy as np

from trackrl.game.protocol import GameProtocolError

FIXED_SIZE = 8356  # SimStateData.min_size: up to and including cp_times_length when there are no checkpoints
CP_STATES_OFFSET = 8352
PLAYER_INFO_OFFSET = 7204
DYNA_REST_OFFSET = 224 + 808  # HmsDynaStruct.rest: 616 opaque bytes
DYNA_REST_SIZE = 616

# flags bits (offset 8)
HAS_TIMERS, HAS_DYNA, HAS_SCENE_MOBIL, HAS_SIMULATION_WHEELS = 0x1, 0x2, 0x4, 0x8
HAS_PLUG_SOLID, HAS_CMD_BUFFER_CORE, HAS_INPUT_STATE, HAS_PLAYER_INFO = 0x10, 0x20, 0x40, 0x80

WHEEL_SIZE = 764
# SimulationWheel: real_time_state at +180 (damper_absorb +0, has_ground_contact +112, material +116, sliding +120)
_WHEEL_DTYPE = np.dtype(
    {
        "names": ["damper_absorb", "has_ground_contact", "contact_material_id", "is_sliding"],
        "formats": ["<f4", "<u4", "<i4", "<u4"],
        "offsets": [180, 292, 296, 300],
        "itemsize": WHEEL_SIZE,
    }
)
_EVENT_DTYPE = np.dtype([("stored_time", "<i4"), ("data", "<u4")])  # time + 100,000 ms; name index << 24 | value

_FIELDS: list[tuple[str, str | np.dtype | tuple, int]] = [  # (name, format, absolute offset)
    ("version", "<u4", 0),
    ("context_mode", "<u4", 4),
    ("flags", "<u4", 8),
    ("timers", ("<i4", 53), 12),  # timers[1] = time
    ("dyna_rest", ("u1", DYNA_REST_SIZE), DYNA_REST_OFFSET),
    ("quaternion", ("<f4", 4), 672),  # dyna.current_state (at 224 + 448)
    ("rotation", ("<f4", (3, 3)), 688),  # row-major; its columns are the car's axes (left, up, forward) in the world
    ("position", ("<f4", 3), 724),
    ("linear_speed", ("<f4", 3), 736),
    ("angular_speed", ("<f4", 3), 760),
    ("gearbox_state", "<i4", 2388),  # scene_mobil (at 1648) + 740
    ("actual_rpm", "<f4", 3112),  # scene_mobil.engine (at 1648 + 1436) + 28
    ("gear", "<i4", 3128),
    ("is_freewheeling", "<u4", 3196),
    ("wheels", (_WHEEL_DTYPE, 4), 3816),
    ("race_start_time", "<i4", PLAYER_INFO_OFFSET + 684),
    ("race_time", "<i4", PLAYER_INFO_OFFSET + 688),  # 7892
    ("cur_checkpoint", "<i4", PLAYER_INFO_OFFSET + 728),
    ("cur_cp_count", "<i4", PLAYER_INFO_OFFSET + 820),
    ("race_finished", "<u4", PLAYER_INFO_OFFSET + 828),
    ("input_events", (_EVENT_DTYPE, 8), 8276),  # running, finish, accelerate, brake, left, right, steer, gas
    ("num_respawns", "<u4", 8340),
    ("cp_reserved", "<u4", 8344),
    ("cp_states_length", "<i4", 8348),
]
BLOB_DTYPE = np.dtype(
    {
        "names": [name for name, _, _ in _FIELDS],
        "formats": [fmt for _, fmt, _ in _FIELDS],
        "offsets": [offset for _, _, offset in _FIELDS],
        "itemsize": CP_STATES_OFFSET,
    }
)


_FLAGS_AT = BLOB_DTYPE.fields["flags"][1]


def _scalars_struct(fields: list[tuple[str, str, int]]) -> struct.Struct:
    """One Struct that reads scalar fields (name, struct code, offset; in offset order) and skips the bytes between."""
    layout, at = "<", 0
    for name, code, offset in fields:
        if offset < at:
            raise AssertionError(f"{name} at {offset} overlaps the field before it")
        layout += f"{offset - at}x{code}" if offset > at else code
        at = offset + struct.calcsize("<" + code)
    return struct.Struct(layout)


_SCALARS = _scalars_struct([  # the order of parse_state's unpacking
    ("time", "i", BLOB_DTYPE.fields["timers"][1] + 4),  # timers[1]
    ("gearbox_state", "i", BLOB_DTYPE.fields["gearbox_state"][1]),
    ("actual_rpm", "f", BLOB_DTYPE.fields["actual_rpm"][1]),
    ("gear", "i", BLOB_DTYPE.fields["gear"][1]),
    ("is_freewheeling", "I", BLOB_DTYPE.fields["is_freewheeling"][1]),
    ("race_time", "i", BLOB_DTYPE.fields["race_time"][1]),
    ("race_finished", "I", BLOB_DTYPE.fields["race_finished"][1]),
])  # fmt: skip


class BlobError(GameProtocolError):
    """A state blob that does not have the documented layout."""


@dataclass
class WheelStates:
    """Per wheel k = 0..3 (which physical wheel each index is, is UNVERIFIED in the game)."""

    damper_absorb: np.ndarray  # (4,) float32
    has_ground_contact: np.ndarray  # (4,) bool
    contact_material_id: np.ndarray  # (4,) int32 as stored; Linesight uses `& 0xFFFF`
    is_sliding: np.ndarray  # (4,) bool


@dataclass
class SimState:
    """The fields of a state blob that Linesight reads, typed; `data` is the blob they came from (or b"")."""

    race_time_ms: int
    position_m: np.ndarray  # (3,) float32, world x, y (up), z
    rotation: np.ndarray  # (3, 3) float32; M = rotation.T maps world vectors into the car frame
    quaternion: np.ndarray  # (4,) float32
    linear_velocity_mps: np.ndarray  # (3,) float32, world frame
    angular_velocity_radps: np.ndarray  # (3,) float32, world frame
    wheels: WheelStates
    gear: int
    actual_rpm: float
    gearbox_state: int
    is_freewheeling: bool
    cp_states: np.ndarray  # (n,) bool, one per physical checkpoint, finish included
    cp_times_ms: np.ndarray  # (m,) int32, one per logical checkpoint pass, -1 = not yet passed
    race_finished: bool = False  # player_info.race_finished
    time_ms: int = 0  # timers[1]
    flags: int = HAS_TIMERS | HAS_DYNA | HAS_SCENE_MOBIL | HAS_SIMULATION_WHEELS | HAS_INPUT_STATE | HAS_PLAYER_INFO
    data: bytes = field(default=b"", repr=False)


def _checkpoint_arrays(blob: bytes | bytearray | memoryview) -> tuple[int, int, int]:
    """(n, m, total size) from the two length fields; BlobError if they run past the blob."""
    size = len(blob)
    (n,) = _INT32.unpack_from(blob, CP_STATES_OFFSET - 4)
    times_length_at = CP_STATES_OFFSET + 4 * n
    if n < 0 or times_length_at + 4 > size:
        raise BlobError(f"state blob: cp_states_length {n} at byte 8348 runs past the blob's {size} bytes")
    (m,) = _INT32.unpack_from(blob, times_length_at)
    end = times_length_at + 4 + 8 * m
    if m < 0 or end > size:
        raise BlobError(f"state blob: cp_times_length {m} at byte {times_length_at} runs past the blob's {size} bytes")
    return n, m, end


def parse_state(blob: bytes) -> SimState:
    """Read a state blob; BlobError if it is shorter than its fixed part, lacks player info, or has extra bytes.

    The arrays of the result are views of one private copy of the blob's fixed part (one copy, not one per field).
    """
    size = len(blob)
    if size < FIXED_SIZE:
        raise BlobError(f"state blob is {size} bytes, shorter than the {FIXED_SIZE}-byte fixed part of SimStateData")
    (flags,) = _UINT32.unpack_from(blob, _FLAGS_AT)
    if not flags & HAS_PLAYER_INFO:
        raise BlobError(f"state blob has no player info (flags 0x{flags:x} lack 0x80): its race time is not valid")
    n, m, end = _checkpoint_arrays(blob)
    if end != size:
        # TMInterface 2's exact blob length is UNVERIFIED (GAME_BRIDGE.md §6): say so rather than guess.
        raise BlobError(f"state blob is {size} bytes but its checkpoint arrays end at byte {end}: the layout differs "
                        "from TMInterface 1's SimStateData that Linesight assumes")  # fmt: skip
    record = np.frombuffer(bytearray(blob[:CP_STATES_OFFSET]), BLOB_DTYPE, 1)[0]  # a copy: bytes, not fields (fast)
    wheels = record["wheels"]
    time_ms, gearbox_state, actual_rpm, gear, is_freewheeling, race_time, race_finished = _SCALARS.unpack_from(blob)
    cp_times = np.frombuffer(blob, "<i4", 2 * m, CP_STATES_OFFSET + 4 * n + 4)
    return SimState(
        race_time_ms=race_time,
        position_m=record["position"],
        rotation=record["rotation"],
        quaternion=record["quaternion"],
        linear_velocity_mps=record["linear_speed"],
        angular_velocity_radps=record["angular_speed"],
        wheels=WheelStates(
            damper_absorb=wheels["damper_absorb"],
            has_ground_contact=wheels["has_ground_contact"] != 0,
            contact_material_id=wheels["contact_material_id"],
            is_sliding=wheels["is_sliding"] != 0,
        ),
        gear=gear,
        actual_rpm=actual_rpm,
        gearbox_state=gearbox_state,
        is_freewheeling=bool(is_freewheeling),
        cp_states=np.frombuffer(blob, "<u4", n, CP_STATES_OFFSET) != 0,
        cp_times_ms=cp_times[0::2].copy(),
        race_finished=bool(race_finished),
        time_ms=time_ms,
        flags=flags,
        data=bytes(blob),
    )


def encode_state(state: SimState, template: bytes | None = None) -> bytes:
    """A blob holding `state`'s typed fields, written over `template` (default: state.data, else zeros).

    Bytes the typed object does not describe (other timers, opaque structs, stunt scores) come from the template,
    so parse -> replace a field -> encode changes exactly that field.
    """
    base = state.data if template is None else template
    n, m = len(state.cp_states), len(state.cp_times_ms)
    out = bytearray(CP_STATES_OFFSET + 4 * n + 4 + 8 * m)
    if len(base) >= FIXED_SIZE:
        out[:CP_STATES_OFFSET] = base[:CP_STATES_OFFSET]
        old_n, old_m, _ = _checkpoint_arrays(base)
        if old_m == m:  # keep the stunt scores
            start = CP_STATES_OFFSET + 4 * old_n + 4
            out[len(out) - 8 * m :] = base[start : start + 8 * m]
    record = np.frombuffer(out, BLOB_DTYPE, 1)[0]
    record["flags"] = state.flags
    record["timers"][1] = state.time_ms
    record["quaternion"] = state.quaternion
    record["rotation"] = state.rotation
    record["position"] = state.position_m
    record["linear_speed"] = state.linear_velocity_mps
    record["angular_speed"] = state.angular_velocity_radps
    record["gearbox_state"] = state.gearbox_state
    record["actual_rpm"] = state.actual_rpm
    record["gear"] = state.gear
    record["is_freewheeling"] = state.is_freewheeling
    wheels = record["wheels"]
    wheels["damper_absorb"] = state.wheels.damper_absorb
    wheels["has_ground_contact"] = state.wheels.has_ground_contact
    wheels["contact_material_id"] = state.wheels.contact_material_id
    wheels["is_sliding"] = state.wheels.is_sliding
    record["race_time"] = state.race_time_ms
    record["race_finished"] = state.race_finished
    record["cp_states_length"] = n
    arrays = np.frombuffer(out, "<i4", len(out) // 4 - CP_STATES_OFFSET // 4, CP_STATES_OFFSET)
    arrays[:n] = state.cp_states
    arrays[n] = m
    arrays[n + 1 :: 2] = state.cp_times_ms
    return bytes(out)


def rotation_to_quaternion(rotation: np.ndarray) -> np.ndarray:
    """(w, x, y, z) of a proper rotation matrix (Shepperd's method, the numerically safe branch)."""
    r = np.asarray(rotation, dtype=np.float64)
    trace = r[0, 0] + r[1, 1] + r[2, 2]
    if trace > 0:
        s = 2.0 * np.sqrt(1.0 + trace)
        return np.array([0.25 * s, (r[2, 1] - r[1, 2]) / s, (r[0, 2] - r[2, 0]) / s, (r[1, 0] - r[0, 1]) / s])
    i = int(np.argmax(np.diag(r)))
    j, k = (i + 1) % 3, (i + 2) % 3
    s = 2.0 * np.sqrt(1.0 + r[i, i] - r[j, j] - r[k, k])
    q = np.empty(4)
    q[0] = (r[k, j] - r[j, k]) / s
    q[1 + i] = 0.25 * s
    q[1 + j] = (r[j, i] + r[i, j]) / s
    q[1 + k] = (r[k, i] + r[i, k]) / s
    return q


_DYNA_STATE = struct.Struct("<4f9f3f3f3f3f")  # quat, rotation, position, linear, add_linear, angular (672..772)
_INT32 = struct.Struct("<i")
_UINT32 = struct.Struct("<I")
_FLOAT32 = struct.Struct("<f")


def _offset(name: str) -> int:
    return BLOB_DTYPE.fields[name][1]


class BlobWriter:
    """Writes blobs of one layout fast (the server's hot path): one template, a few `pack_into` per blob.

    Offsets come from BLOB_DTYPE, the one description of the layout; the fields not passed to `write` keep the
    template's values (and the checkpoint arrays their last values when `cp_times_ms` is None).
    """

    def __init__(self, template: SimState) -> None:
        n, m = len(template.cp_states), len(template.cp_times_ms)
        self.buffer = bytearray(encode_state(template, template=b""))
        self._cp_states = np.frombuffer(self.buffer, "<u4", n, CP_STATES_OFFSET)
        self._cp_times = np.frombuffer(self.buffer, "<i4", 2 * m, CP_STATES_OFFSET + 4 * n + 4)[0::2]
        self._wheel_sliding_at = [_offset("wheels") + k * WHEEL_SIZE + 300 for k in range(4)]
        # Offsets looked up once (BLOB_DTYPE.fields builds a new mapping at every access).
        self._dyna_at = _offset("quaternion")
        self._time_at = _offset("timers") + 4  # timers[1]
        self._race_time_at, self._race_finished_at = _offset("race_time"), _offset("race_finished")
        self._gear_at, self._rpm_at = _offset("gear"), _offset("actual_rpm")

    def write(
        self,
        race_time_ms: int,
        time_ms: int,
        dyna: tuple[float, ...],  # 25 floats: quaternion (4), rotation (9), position, linear, add_linear, angular
        sliding: bool,
        race_finished: bool,
        cp_times_ms: np.ndarray | None,  # None: unchanged since the last blob
        opaque: bytes,  # at dyna.rest (DYNA_REST_SIZE bytes at most)
        gear: int = 0,
        actual_rpm: float = 0.0,
    ) -> bytes:
        buffer = self.buffer
        _DYNA_STATE.pack_into(buffer, self._dyna_at, *dyna)
        _INT32.pack_into(buffer, self._time_at, time_ms)
        _INT32.pack_into(buffer, self._race_time_at, race_time_ms)
        _UINT32.pack_into(buffer, self._race_finished_at, race_finished)
        for at in self._wheel_sliding_at:
            _UINT32.pack_into(buffer, at, sliding)
        _INT32.pack_into(buffer, self._gear_at, gear)
        _FLOAT32.pack_into(buffer, self._rpm_at, actual_rpm)
        if cp_times_ms is not None:
            self._cp_states[:] = cp_times_ms >= 0
            self._cp_times[:] = cp_times_ms
        buffer[DYNA_REST_OFFSET : DYNA_REST_OFFSET + len(opaque)] = opaque
        return bytes(buffer)

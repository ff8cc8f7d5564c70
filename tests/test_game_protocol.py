"""TMInterface 2 wire format: every message against byte strings written by hand from GAME_BRIDGE.md §2, exact
reads, and the state blob against plain `struct` at the documented offsets (§6)."""

from __future__ import annotations

import dataclasses
import socket
import struct
import threading

import numpy as np
import pytest

from trackrl.game.blob import BlobError, encode_state, parse_state, rotation_to_quaternion
from trackrl.game.client import (
    CheckpointCountChanged,
    Connected,
    FrameReady,
    LapCountChanged,
    RunStep,
    TMIClient,
)
from trackrl.game.protocol import GameConnectionError, GameProtocolError, MessageType, set_os_timeouts


@pytest.fixture
def pair() -> tuple[TMIClient, socket.socket]:
    """A client on one end of a socket pair; the test plays the game on the other end."""
    client_end, game_end = socket.socketpair()
    client_end.settimeout(2.0)
    game_end.settimeout(2.0)
    client = TMIClient(client_end, port=0)
    yield client, game_end
    client_end.close()
    game_end.close()


def sent(game_end: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        data += game_end.recv(n - len(data))
    return data


# (method, args, bytes on the wire): type int32 LE, then the payload of GAME_BRIDGE.md §2's table
COMMANDS = [
    ("set_speed", (80.0,), b"\x06\x00\x00\x00" + b"\x00\x00\xa0\x42"),  # 80.0 = 0x42A00000
    ("set_speed", (0.0,), b"\x06\x00\x00\x00\x00\x00\x00\x00"),
    ("rewind_to_current_state", (), b"\x08\x00\x00\x00"),
    ("set_input_state", (True, False, True, False), b"\x0a\x00\x00\x00\x01\x00\x01\x00"),  # left right up down
    ("set_input_state", (False, True, False, True), b"\x0a\x00\x00\x00\x00\x01\x00\x01"),
    ("give_up", (), b"\x0b\x00\x00\x00"),
    ("prevent_simulation_finish", (), b"\x0c\x00\x00\x00"),
    ("execute_command", ("cam 2",), b"\x0e\x00\x00\x00\x05\x00\x00\x00cam 2"),
    ("execute_command", ("map é",), b"\x0e\x00\x00\x00\x06\x00\x00\x00map \xc3\xa9"),  # 5 characters, 6 bytes
    ("set_timeout", (10_100,), b"\x0f\x00\x00\x00\x74\x27\x00\x00"),
    ("set_timeout", (600_000_000,), b"\x0f\x00\x00\x00\x00\x46\xc3\x23"),
    ("request_frame", (160, 120), b"\x11\x00\x00\x00\xa0\x00\x00\x00\x78\x00\x00\x00"),
    ("reset_camera", (), b"\x12\x00\x00\x00"),
    ("set_on_step_period", (50,), b"\x13\x00\x00\x00\x32\x00\x00\x00"),
    ("unrequest_frame", (), b"\x14\x00\x00\x00"),
    ("toggle_interface", (False,), b"\x15\x00\x00\x00\x00\x00\x00\x00"),
    ("toggle_interface", (True,), b"\x15\x00\x00\x00\x01\x00\x00\x00"),
    ("rewind_to_state", (b"\x01\x02\x03",), b"\x07\x00\x00\x00\x03\x00\x00\x00\x01\x02\x03"),
]


@pytest.mark.parametrize(("method", "args", "wire"), COMMANDS)
def test_commands_encode_to_the_documented_bytes(pair, method: str, args: tuple, wire: bytes) -> None:
    client, game_end = pair
    getattr(client, method)(*args)
    client.flush()  # commands go out together when the client next waits (or on flush)
    assert sent(game_end, len(wire)) == wire


# (method, bytes the game answers with, expected result, bytes the client sent)
QUERIES = [
    ("race_finished", b"\x01\x00\x00\x00", True, b"\x10\x00\x00\x00"),
    ("race_finished", b"\x00\x00\x00\x00", False, b"\x10\x00\x00\x00"),
    ("is_in_menus", b"\x01\x00\x00\x00", True, b"\x16\x00\x00\x00"),
    ("is_in_menus", b"\x00\x00\x00\x00", False, b"\x16\x00\x00\x00"),
    ("get_inputs", b"\x0b\x00\x00\x000 press up\n", "0 press up\n", b"\x17\x00\x00\x00"),
    ("get_inputs", b"\x03\x00\x00\x00\xe2\x82\xac", "€", b"\x17\x00\x00\x00"),  # 3 UTF-8 bytes, 1 character
    ("get_simulation_state_bytes", b"\x02\x00\x00\x00\xab\xcd", b"\xab\xcd", b"\x09\x00\x00\x00"),
]


@pytest.mark.parametrize(("method", "reply", "expected", "query"), QUERIES)
def test_queries_send_their_type_and_read_the_documented_reply(pair, method, reply, expected, query) -> None:
    client, game_end = pair
    game_end.sendall(reply)
    assert getattr(client, method)() == expected
    assert sent(game_end, len(query)) == query


def test_sync_events_decode_from_the_documented_bytes_and_echo_their_type(pair) -> None:
    client, game_end = pair
    client.request_frame(2, 1)
    client.flush()
    sent(game_end, 12)
    game_end.sendall(
        b"\x05\x00\x00\x00"  # on connect
        + b"\x01\x00\x00\x00\x48\xf4\xff\xff"  # run step, race time -3000
        + b"\x01\x00\x00\x00\x32\x00\x00\x00"  # run step, 50
        + b"\x02\x00\x00\x00\x01\x00\x00\x00\x04\x00\x00\x00"  # checkpoint 1 of 4
        + b"\x03\x00\x00\x00\x01\x00\x00\x00\x01\x00\x00\x00"  # lap 1 of 1
        + b"\x04\x00\x00\x00"
        + bytes([10, 20, 30, 255, 40, 50, 60, 255])  # a 2x1 BGRA frame
    )
    events = [client.next_event() for _ in range(6)]
    assert events[:5] == [Connected(), RunStep(-3000), RunStep(50), CheckpointCountChanged(1, 4), LapCountChanged(1, 1)]
    assert isinstance(events[5], FrameReady)
    assert events[5].bgra.shape == (1, 2, 4) and events[5].bgra[0, 1].tolist() == [40, 50, 60, 255]
    for event in events:
        client.respond(event)
    assert sent(game_end, 24) == b"".join(bytes([t, 0, 0, 0]) for t in (5, 1, 1, 2, 3, 4))


@pytest.mark.parametrize("wire", [b"\x63\x00\x00\x00", b"\x0d\x00\x00\x00", b"\x06\x00\x00\x00"])
def test_an_unknown_or_client_side_type_from_the_game_is_an_error_not_skipped(pair, wire: bytes) -> None:
    client, game_end = pair
    game_end.sendall(wire + b"\x01\x00\x00\x00\x00\x00\x00\x00")
    with pytest.raises(GameProtocolError, match="out of step"):
        client.next_event()


def test_a_frame_that_was_never_requested_is_an_error(pair) -> None:
    client, game_end = pair
    game_end.sendall(b"\x04\x00\x00\x00")
    with pytest.raises(GameProtocolError, match="never requested"):
        client.next_event()


def test_a_short_read_then_a_closed_peer_names_the_message(pair) -> None:
    client, game_end = pair
    client.request_frame(160, 120)
    client.flush()
    sent(game_end, 12)
    game_end.sendall(b"\x04\x00\x00\x00" + b"\x00" * 1000)  # the game dies mid-frame
    game_end.close()
    with pytest.raises(GameConnectionError, match=r"closed.*SC_REQUESTED_FRAME_SYNC's 160x120 BGRA.*got 1000 of 76800"):
        client.next_event()


def test_a_python_timeout_names_the_message(pair) -> None:
    client, game_end = pair
    client.sock.settimeout(0.05)  # socket.timeout / TimeoutError
    game_end.sendall(b"\x01\x00")
    with pytest.raises(GameConnectionError, match=r"timed out reading the next message type.*got 2 of 4"):
        client.next_event()


def test_an_os_level_timeout_blocking_io_error_names_the_message(pair) -> None:
    client, game_end = pair
    client.sock.settimeout(None)
    set_os_timeouts(client.sock, 0.05)  # SO_RCVTIMEO: recv raises BlockingIOError on Linux
    game_end.sendall(b"\x10\x00")  # half a race-finished reply
    with pytest.raises(GameConnectionError, match="timed out reading the reply to C_RACE_FINISHED"):
        client.race_finished()


def test_a_length_prefix_out_of_range_is_a_protocol_error(pair) -> None:
    client, game_end = pair
    game_end.sendall(b"\xff\xff\xff\x7f")
    with pytest.raises(GameProtocolError, match="out of step"):
        client.get_simulation_state_bytes()


def test_connect_retries_until_the_game_listens_then_sets_nodelay() -> None:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    timer = threading.Timer(0.2, lambda: (listener.bind(("127.0.0.1", port)), listener.listen(1)))
    timer.start()
    client = TMIClient.connect(port, timeout_s=1.0, connect_timeout_s=5.0)
    assert client.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
    client.sock.close()
    listener.close()
    with pytest.raises(GameConnectionError, match=f"no game listening on 127.0.0.1:{port}"):
        TMIClient.connect(port, connect_timeout_s=0.05)


def test_message_type_values_are_the_documented_ones() -> None:
    assert [(t.value, t.name) for t in MessageType][:6] == [
        (1, "SC_RUN_STEP_SYNC"), (2, "SC_CHECKPOINT_COUNT_CHANGED_SYNC"), (3, "SC_LAP_COUNT_CHANGED_SYNC"),
        (4, "SC_REQUESTED_FRAME_SYNC"), (5, "SC_ON_CONNECT_SYNC"), (6, "C_SET_SPEED"),
    ]  # fmt: skip
    assert MessageType.C_GET_INPUTS == 23 and MessageType.C_SHUTDOWN == 13 and len(MessageType) == 23


# ---- the state blob ---------------------------------------------------------------------------------------------
def hand_made_blob(cp_states: list[int], cp_times: list[tuple[int, int]], flags: int = 0xCF) -> bytes:
    """A blob built with plain struct at GAME_BRIDGE.md §6.2's absolute offsets."""
    blob = bytearray(8352)
    struct.pack_into("<I", blob, 8, flags)
    struct.pack_into("<i", blob, 16, 4321)  # timers[1]
    struct.pack_into("<4f", blob, 672, 1.0, 0.0, 0.0, 0.0)
    struct.pack_into("<9f", blob, 688, *range(1, 10))
    struct.pack_into("<3f", blob, 724, 10.5, 2.25, -7.75)
    struct.pack_into("<3f", blob, 736, 1.5, -0.5, 40.0)
    struct.pack_into("<3f", blob, 760, 0.0, 0.25, 0.0)
    struct.pack_into("<i", blob, 2388, 2)  # gearbox_state
    struct.pack_into("<f", blob, 3112, 6543.5)  # rpm
    struct.pack_into("<i", blob, 3128, 3)  # gear
    struct.pack_into("<I", blob, 3196, 1)  # freewheeling
    for k, base in enumerate((3816, 4580, 5344, 6108)):
        struct.pack_into("<f", blob, base + 180, 0.1 * k)  # damper_absorb
        struct.pack_into("<I", blob, base + 292, k % 2)  # has_ground_contact
        struct.pack_into("<i", blob, base + 296, 0x10000 + k)  # contact material
        struct.pack_into("<I", blob, base + 300, 1 - k % 2)  # sliding
    struct.pack_into("<i", blob, 7892, 12_340)  # race time
    struct.pack_into("<I", blob, 7204 + 828, 1)  # race_finished
    struct.pack_into("<i", blob, 8348, len(cp_states))
    tail = struct.pack(f"<{len(cp_states)}I", *cp_states) + struct.pack("<i", len(cp_times))
    tail += b"".join(struct.pack("<ii", t, s) for t, s in cp_times)
    return bytes(blob) + tail


def test_parse_state_reads_the_documented_offsets() -> None:
    state = parse_state(hand_made_blob([1, 0, 0], [(5000, 7), (-1, 0), (-1, 0)]))
    assert state.race_time_ms == 12_340 and state.time_ms == 4321 and state.race_finished
    assert state.position_m.tolist() == [10.5, 2.25, -7.75]
    assert state.linear_velocity_mps.tolist() == [1.5, -0.5, 40.0]
    assert state.angular_velocity_radps.tolist() == [0.0, 0.25, 0.0]
    assert state.rotation.tolist() == [[1, 2, 3], [4, 5, 6], [7, 8, 9]]  # row-major
    assert state.quaternion.tolist() == [1, 0, 0, 0]
    assert (state.gearbox_state, state.gear, state.actual_rpm, state.is_freewheeling) == (2, 3, 6543.5, True)
    np.testing.assert_allclose(state.wheels.damper_absorb, [0.0, 0.1, 0.2, 0.3], rtol=1e-6)
    assert state.wheels.has_ground_contact.tolist() == [False, True, False, True]
    assert state.wheels.is_sliding.tolist() == [True, False, True, False]
    assert (state.wheels.contact_material_id & 0xFFFF).tolist() == [0, 1, 2, 3]
    assert state.cp_states.tolist() == [True, False, False]
    assert state.cp_times_ms.tolist() == [5000, -1, -1]


def test_encode_state_round_trips_and_changes_only_the_edited_field() -> None:
    blob = hand_made_blob([1, 1], [(5000, 7), (9000, 3)])
    state = parse_state(blob)
    assert encode_state(state) == blob
    prevented = encode_state(dataclasses.replace(state, cp_times_ms=np.array([5000, -1], dtype=np.int32)))
    # Linesight's prevent-finish trick: -1 at 8356 + 4n + 8(m - 1), the stunt score kept.
    expected = bytearray(blob)
    struct.pack_into("<i", expected, 8356 + 4 * 2 + 8 * 1, -1)
    assert prevented == bytes(expected)


def test_blob_errors_are_clear() -> None:
    blob = hand_made_blob([0], [(-1, 0)])
    with pytest.raises(BlobError, match="shorter than the 8356-byte fixed part"):
        parse_state(blob[:8000])
    with pytest.raises(BlobError, match="no player info"):
        parse_state(hand_made_blob([0], [(-1, 0)], flags=0x0F))
    with pytest.raises(BlobError, match="checkpoint arrays end at byte"):
        parse_state(blob + b"\x00" * 4)  # TMInterface 2's exact length is UNVERIFIED: a surprise fails loudly
    with pytest.raises(BlobError, match="cp_times_length"):
        parse_state(blob[:-8])
    with pytest.raises(BlobError, match="cp_states_length"):
        parse_state(blob[:8348] + struct.pack("<i", 10_000) + blob[8352:])


def test_rotation_to_quaternion_matches_an_axis_angle_rotation() -> None:
    angle = 0.7  # about y
    rotation = np.array([[np.cos(angle), 0, np.sin(angle)], [0, 1, 0], [-np.sin(angle), 0, np.cos(angle)]])
    np.testing.assert_allclose(rotation_to_quaternion(rotation), [np.cos(angle / 2), 0, np.sin(angle / 2), 0])
    flipped = np.diag([1.0, -1.0, -1.0])  # 180 degrees about x: the trace <= 0 branch
    np.testing.assert_allclose(np.abs(rotation_to_quaternion(flipped)), [0, 1, 0, 0], atol=1e-12)


def test_commands_are_sent_together_before_the_client_waits(pair) -> None:
    client, game_end = pair
    client.set_speed(0.0)
    client.request_frame(160, 120)
    game_end.setblocking(False)
    with pytest.raises(BlockingIOError):
        game_end.recv(1)  # nothing on the wire yet: the game would not read it before its wait anyway
    game_end.setblocking(True)
    client.respond(RunStep(0))
    assert sent(game_end, 24) == b"\x06\x00\x00\x00" + bytes(
        4
    ) + b"\x11\x00\x00\x00\xa0\x00\x00\x00\x78\x00\x00\x00" + (b"\x01\x00\x00\x00")

"""TMInterface 2's loopback TCP protocol, as Linesight's `Python_Link.as` plugin speaks it (GAME_BRIDGE.md §1-§3).

Framing: a message is a little-endian int32 message type followed by a payload whose layout is fixed by the type.
There is no envelope and no per-message length; the variable payloads (state blob, command text, inputs text)
carry their own int32 length, in bytes (UTF-8 bytes for text, not characters). A sync message (server -> client)
blocks the game until the client echoes its type as a bare int32.

Both ends share this module: `encode` packs a message with fixed payload, `encode_with_bytes` one with a length
prefixed payload, `recv_exact` reads exactly n bytes or raises one `GameConnectionError` that names the message.
"""

from __future__ import annotations

import socket
import struct
import sys
from collections.abc import Callable
from enum import IntEnum

from trackrl.errors import UserError

HOST = "127.0.0.1"  # loopback only, on both sides (the plugin listens on it)
DEFAULT_PORT = 8478  # Linesight's base_tmi_port; instance i uses DEFAULT_PORT + i
DEFAULT_RESPONSE_TIMEOUT_MS = 2000  # the plugin's RESPONSE_TIMEOUT until C_SET_TIMEOUT, and after each disconnect
DEFAULT_ON_STEP_PERIOD_MS = 10
MAX_BLOB_BYTES = 1 << 20  # a longer state-blob length prefix means the stream is out of step, not a real state
MSG_WAITALL = getattr(socket, "MSG_WAITALL", 0)


class MessageType(IntEnum):
    """Values 1-23, identical on both sides (Python `auto()` from 1; AngelScript `enum MessageType`)."""

    SC_RUN_STEP_SYNC = 1
    SC_CHECKPOINT_COUNT_CHANGED_SYNC = 2
    SC_LAP_COUNT_CHANGED_SYNC = 3
    SC_REQUESTED_FRAME_SYNC = 4
    SC_ON_CONNECT_SYNC = 5
    C_SET_SPEED = 6
    C_REWIND_TO_STATE = 7
    C_REWIND_TO_CURRENT_STATE = 8
    C_GET_SIMULATION_STATE = 9
    C_SET_INPUT_STATE = 10
    C_GIVE_UP = 11
    C_PREVENT_SIMULATION_FINISH = 12
    C_SHUTDOWN = 13
    C_EXECUTE_COMMAND = 14
    C_SET_TIMEOUT = 15
    C_RACE_FINISHED = 16
    C_REQUEST_FRAME = 17
    C_RESET_CAMERA = 18
    C_SET_ON_STEP_PERIOD = 19
    C_UNREQUEST_FRAME = 20
    C_TOGGLE_INTERFACE = 21
    C_IS_IN_MENUS = 22
    C_GET_INPUTS = 23


M = MessageType
SYNC_TYPES = frozenset({M(1), M(2), M(3), M(4), M(5)})
VALID_TYPES = frozenset(int(t) for t in MessageType)

# The payload after the int32 type, for every message whose payload has a fixed size (GAME_BRIDGE.md §2).
# The frame (4), rewind-to-state (7) and execute-command (14) payloads are variable: see encode_with_bytes.
FIXED_PAYLOAD_FORMAT: dict[MessageType, str] = {
    M.SC_RUN_STEP_SYNC: "i",  # race time, ms
    M.SC_CHECKPOINT_COUNT_CHANGED_SYNC: "ii",  # current, target
    M.SC_LAP_COUNT_CHANGED_SYNC: "ii",  # current, target
    M.SC_ON_CONNECT_SYNC: "",
    M.C_SET_SPEED: "f",  # float32 game speed, 0 pauses
    M.C_REWIND_TO_CURRENT_STATE: "",
    M.C_GET_SIMULATION_STATE: "",
    M.C_SET_INPUT_STATE: "BBBB",  # left, right, accelerate, brake (0/1)
    M.C_GIVE_UP: "",
    M.C_PREVENT_SIMULATION_FINISH: "",
    M.C_SHUTDOWN: "",
    M.C_SET_TIMEOUT: "I",  # ms
    M.C_RACE_FINISHED: "",
    M.C_REQUEST_FRAME: "ii",  # width, height
    M.C_RESET_CAMERA: "",
    M.C_SET_ON_STEP_PERIOD: "i",  # ms
    M.C_UNREQUEST_FRAME: "",
    M.C_TOGGLE_INTERFACE: "i",  # 0 hide, > 0 show
    M.C_IS_IN_MENUS: "",
    M.C_GET_INPUTS: "",
}
BYTES_PAYLOAD_TYPES = frozenset({M.C_REWIND_TO_STATE, M.C_EXECUTE_COMMAND})

INT32 = struct.Struct("<i")
TYPE_AND_LENGTH = struct.Struct("<ii")
# "<": little-endian and no padding; the plugin and Linesight's native x86 formats agree on this layout.
PAYLOAD_STRUCTS: dict[MessageType, struct.Struct] = {t: struct.Struct("<" + f) for t, f in FIXED_PAYLOAD_FORMAT.items()}
MESSAGE_STRUCTS: dict[MessageType, struct.Struct] = {
    t: struct.Struct("<i" + f) for t, f in FIXED_PAYLOAD_FORMAT.items()
}


class GameConnectionError(UserError):
    """The other end closed, reset or stopped answering while a message was being read or written."""


class GameTimeoutError(GameConnectionError):
    """The other end sent nothing within the read or write timeout (TimeoutError or, with SO_RCVTIMEO, EAGAIN)."""


class GameProtocolError(UserError):
    """The byte stream does not follow the protocol (unknown message type, impossible length): no resync."""


def message_name(message_type: int) -> str:
    return MessageType(message_type).name if message_type in VALID_TYPES else f"unknown message type {message_type}"


def encode(message_type: MessageType, *payload: int | float) -> bytes:
    """A message with a fixed payload: int32 type, then the payload fields (little-endian)."""
    return MESSAGE_STRUCTS[message_type].pack(int(message_type), *payload)


def encode_with_bytes(message_type: MessageType, data: bytes) -> bytes:
    """A message whose payload is an int32 byte count followed by that many bytes (rewind-to-state, command)."""
    if message_type not in BYTES_PAYLOAD_TYPES:
        raise ValueError(f"{message_type.name} has no length-prefixed payload")
    return TYPE_AND_LENGTH.pack(int(message_type), len(data)) + data


def encode_length_prefixed(data: bytes) -> bytes:
    """A reply of the game (state blob, inputs text): int32 byte count, then the bytes."""
    return INT32.pack(len(data)) + data


def encode_frame(bgra: bytes | memoryview) -> bytes:
    """SC_REQUESTED_FRAME_SYNC: the type, then W·H·4 raw BGRA bytes (no length prefix: the client knows W and H)."""
    return INT32.pack(int(M.SC_REQUESTED_FRAME_SYNC)) + bytes(bgra)


def recv_exact(sock: socket.socket, buffer: memoryview, what: str, received: int = 0) -> None:
    """Fill `buffer` with exactly len(buffer) bytes; any way of not getting them is one GameConnectionError.

    Short reads are completed (TCP may split a message); the peer closing, a reset, or a timeout — Python's
    `TimeoutError` (= socket.timeout) or, with an OS-level SO_RCVTIMEO, `BlockingIOError` — name `what`.
    """
    size = len(buffer)  # buffer[:received] is filled already
    while received < size:
        try:
            n = sock.recv_into(buffer[received:] if received else buffer, size - received, MSG_WAITALL)
        except (TimeoutError, BlockingIOError) as error:
            raise GameTimeoutError(f"timed out reading {what} (got {received} of {size} bytes)") from error
        except OSError as error:
            raise GameConnectionError(
                f"connection lost reading {what}: {error} (got {received} of {size} bytes)"
            ) from error
        if n == 0:
            raise GameConnectionError(f"the other end closed the connection while reading {what} "
                                      f"(got {received} of {size} bytes)")  # fmt: skip
        received += n


def send_parts(sock: socket.socket, parts: list[bytes | bytearray | memoryview], what: str) -> None:
    """send_all for several buffers in one sendmsg (scatter-gather: nothing is copied into one buffer first)."""
    views = [memoryview(part) for part in parts]
    try:
        while views:
            sent = sock.sendmsg(views)
            while views and sent >= len(views[0]):
                sent -= len(views[0])
                views.pop(0)
            if views and sent:
                views[0] = views[0][sent:]
    except (TimeoutError, BlockingIOError) as error:
        raise GameTimeoutError(f"timed out sending {what}") from error
    except OSError as error:
        raise GameConnectionError(f"connection lost sending {what}: {error}") from error


def send_all(sock: socket.socket, data: bytes | bytearray | memoryview, what: str) -> None:
    try:
        sock.sendall(data)
    except (TimeoutError, BlockingIOError) as error:
        raise GameTimeoutError(f"timed out sending {what}") from error
    except OSError as error:
        raise GameConnectionError(f"connection lost sending {what}: {error}") from error


SOCKET_BUFFER_BYTES = 1 << 21  # a whole 640x480 BGRA frame (1.2 MB) in one send: no blocking mid-frame


def set_buffer_sizes(sock: socket.socket) -> None:
    """Large kernel buffers (set before connect/listen so TCP window scaling covers them)."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SOCKET_BUFFER_BYTES)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SOCKET_BUFFER_BYTES)


def set_os_timeouts(sock: socket.socket, timeout_s: float | None) -> None:
    """SO_RCVTIMEO/SO_SNDTIMEO at OS level (as Linesight): reads stay single blocking MSG_WAITALL syscalls.

    On timeout Linux raises BlockingIOError (EAGAIN), which recv_exact turns into GameConnectionError.
    """
    if timeout_s is None:
        return
    if sys.platform == "win32":
        sock.settimeout(timeout_s)  # Windows takes a DWORD of ms; Python's own timeout is simpler and portable
        return
    seconds = int(timeout_s)
    timeval = struct.pack("ll", seconds, round((timeout_s - seconds) * 1e6))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, timeval)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, timeval)


class Receiver:
    """Exact-size reads through one buffer: a burst of messages costs one recv syscall, not two per message.

    `take(n, what)` returns the offset of the next n bytes in `buffer` (valid until the next call); every way of
    not getting them is one GameConnectionError naming `what`, as in recv_exact. `before_blocking` is called
    before a read that has to wait for the other end (the server sends its held-back replies there).
    """

    def __init__(
        self, sock: socket.socket, size: int = 1 << 16, before_blocking: Callable[[], None] | None = None
    ) -> None:
        self.sock = sock
        self.before_blocking = before_blocking
        self.buffer = bytearray(size)
        self._view = memoryview(self.buffer)
        self.start = 0
        self.end = 0

    def buffered(self) -> int:
        return self.end - self.start

    def take(self, n: int, what: str) -> int:
        if self.end - self.start < n:
            self._fill(n, what)
        offset = self.start
        self.start += n
        return offset

    def take_int32(self, what: str) -> int:
        if self.end - self.start < 4:
            self._fill(4, what)
        value = INT32.unpack_from(self.buffer, self.start)[0]
        self.start += 4
        return value

    def take_bytes(self, n: int, what: str) -> bytes:
        offset = self.take(n, what)
        return bytes(self._view[offset : offset + n])

    def read_into(self, out: memoryview, what: str) -> None:
        """Fill `out` (e.g. a frame buffer): what is buffered first, then straight from the socket."""
        from_buffer = min(len(out), self.end - self.start)
        out[:from_buffer] = self._view[self.start : self.start + from_buffer]
        self.start += from_buffer
        if from_buffer < len(out):
            recv_exact(self.sock, out, what, received=from_buffer)

    def _fill(self, n: int, what: str) -> None:
        pending = self.end - self.start
        if pending == 0:
            self.start = self.end = 0
        if self.start + n > len(self.buffer):  # move the pending bytes to the front (or grow for a big message)
            if n > len(self.buffer):
                self.buffer = bytearray(self.buffer[self.start : self.end]) + bytearray(max(n, 2 * len(self.buffer)))
                self._view = memoryview(self.buffer)
            else:
                self.buffer[:pending] = self.buffer[self.start : self.end]
            self.start, self.end = 0, pending
        if self.before_blocking is not None:
            self.before_blocking()
        while self.end - self.start < n:
            try:
                received = self.sock.recv_into(self._view[self.end :], len(self.buffer) - self.end)
            except (TimeoutError, BlockingIOError) as error:
                got = self.end - self.start
                raise GameTimeoutError(f"timed out reading {what} (got {got} of {n} bytes)") from error
            except OSError as error:
                raise GameConnectionError(f"connection lost reading {what}: {error}") from error
            if received == 0:
                raise GameConnectionError(f"the other end closed the connection while reading {what} "
                                          f"(got {self.end - self.start} of {n} bytes)")  # fmt: skip
            self.end += received

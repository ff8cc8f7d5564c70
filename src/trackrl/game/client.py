"""The Python end of TMInterface 2's protocol: one method per command, and the game's sync events as a typed stream.

The game blocks after every sync event until `respond(event)` echoes it; it reads commands only during that
block, so commands belong between receiving an event and responding to it (GAME_BRIDGE.md §3.1). Commands that
return data (state, race finished, in menus, inputs) are answered at once and read here before returning.

    with TMIClient.connect(8478) as game:
        for event in game.events():
            if isinstance(event, RunStep) and event.race_time_ms >= 0:
                state = game.get_simulation_state()
            game.respond(event)
"""

from __future__ import annotations

import contextlib
import socket
import struct
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from trackrl.game.blob import SimState, parse_state
from trackrl.game.protocol import (
    HOST,
    INT32,
    MAX_BLOB_BYTES,
    MESSAGE_STRUCTS,
    TYPE_AND_LENGTH,
    GameConnectionError,
    GameProtocolError,
    MessageType,
    Receiver,
    message_name,
    send_all,
    set_buffer_sizes,
    set_os_timeouts,
)

M = MessageType
_Reply = TypeVar("_Reply")
MAX_TEXT_BYTES = 1 << 24
PAIR = struct.Struct("<ii")


@dataclass(frozen=True, slots=True)
class RunStep:
    race_time_ms: int  # negative during the countdown
    type = M.SC_RUN_STEP_SYNC


@dataclass(frozen=True, slots=True)
class CheckpointCountChanged:
    current: int
    target: int  # current == target: the finish was crossed
    type = M.SC_CHECKPOINT_COUNT_CHANGED_SYNC


@dataclass(frozen=True, slots=True)
class LapCountChanged:
    current: int
    target: int
    type = M.SC_LAP_COUNT_CHANGED_SYNC


@dataclass(frozen=True, slots=True)
class FrameReady:
    bgra: np.ndarray  # (H, W, 4) uint8 BGRA, top row first; a view of the client's buffer, valid until the next frame
    type = M.SC_REQUESTED_FRAME_SYNC


@dataclass(frozen=True, slots=True)
class Connected:
    type = M.SC_ON_CONNECT_SYNC


SyncEvent = RunStep | CheckpointCountChanged | LapCountChanged | FrameReady | Connected


class PendingState:
    """The reply to a C_GET_SIMULATION_STATE sent by `request_simulation_state`, read when it is needed.

    The game answers commands in order, so the blob is read off the stream at `result()` or, at the latest, before
    the next event or reply; `result()` parses it (once).
    """

    __slots__ = ("_blob", "_client", "_state")

    def __init__(self, client: TMIClient) -> None:
        self._client = client
        self._blob: bytes | None = None
        self._state: SimState | None = None

    def result(self) -> SimState:
        if self._state is None:
            if self._blob is None:
                self._client._read_pending_replies(until=self)
            self._state = parse_state(self._blob)  # type: ignore[arg-type]
        return self._state


class TMIClient:
    """A connection to one game instance (one TMInterface 2 + Python_Link plugin, or `trackrl tmi-serve`)."""

    def __init__(self, sock: socket.socket, port: int) -> None:
        self.sock = sock
        self.port = port
        self._receiver = Receiver(sock)
        # Commands are collected and sent in one write when the client next waits for the game (a read or an
        # echo): the game reads them only during its wait anyway, and one syscall per burst is much cheaper.
        self._outgoing = bytearray()
        self._pending: deque[PendingState] = deque()  # state requests whose replies are still on the stream
        self._frame_size: tuple[int, int] | None = None  # (W, H) of the latest request
        self._frame_buffer = bytearray()
        self._frame_view = memoryview(self._frame_buffer)
        self._frame_array = np.frombuffer(self._frame_buffer, dtype=np.uint8)  # (H, W, 4) once a size is requested
        self._messages = {t: s.pack for t, s in MESSAGE_STRUCTS.items()}
        self._encoded_types = {t: INT32.pack(int(t)) for t in MessageType}

    @classmethod
    def connect(
        cls, port: int, host: str = HOST, timeout_s: float | None = 500.0, connect_timeout_s: float = 60.0
    ) -> TMIClient:
        """Connect, retrying while the game is not listening yet; TCP_NODELAY and OS-level read/write timeouts.

        timeout_s bounds every read and write (Linesight uses 500 s); None waits forever.
        """
        deadline = time.monotonic() + connect_timeout_s
        while True:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            set_buffer_sizes(sock)
            try:
                sock.connect((host, port))
                break
            except (ConnectionRefusedError, TimeoutError) as error:
                sock.close()
                if time.monotonic() > deadline:
                    raise GameConnectionError(
                        f"no game listening on {host}:{port} after {connect_timeout_s:g} s (is the game running with "
                        f"`set custom_port {port}` and the Python_Link plugin loaded, or `trackrl tmi-serve`?)"
                    ) from error
                time.sleep(0.01)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        set_os_timeouts(sock, timeout_s)
        return cls(sock, port)

    # ---- the sync events --------------------------------------------------------------------------------------
    def next_event(self) -> SyncEvent:
        """Read the next sync message; GameProtocolError for any other type (the stream cannot be resynchronised)."""
        if self._pending:
            self._read_pending_replies()
        message_type = self._read_int32("the next message type from the game")
        if message_type == M.SC_RUN_STEP_SYNC:
            return RunStep(self._read_int32("SC_RUN_STEP_SYNC's race time"))
        if message_type == M.SC_REQUESTED_FRAME_SYNC:
            return FrameReady(self._read_frame())
        if message_type == M.SC_CHECKPOINT_COUNT_CHANGED_SYNC:
            current, target = self._read_pair("SC_CHECKPOINT_COUNT_CHANGED_SYNC's current and target")
            return CheckpointCountChanged(current, target)
        if message_type == M.SC_LAP_COUNT_CHANGED_SYNC:
            current, target = self._read_pair("SC_LAP_COUNT_CHANGED_SYNC's current and target")
            return LapCountChanged(current, target)
        if message_type == M.SC_ON_CONNECT_SYNC:
            return Connected()
        raise GameProtocolError(
            f"the game sent {message_name(message_type)} where a sync message (types 1-5) was expected; "
            "the stream is out of step and cannot be read further"
        )

    def events(self) -> Iterator[SyncEvent]:
        """The sync events, forever (until the connection ends with GameConnectionError)."""
        while True:
            yield self.next_event()

    def respond(self, event: SyncEvent | MessageType) -> None:
        """Echo a sync event's type: the game continues."""
        message_type = event if isinstance(event, MessageType) else event.type
        self._outgoing += self._encoded_types[message_type]
        self.flush()

    def flush(self) -> None:
        """Send the collected commands now (reads and echoes do this first by themselves)."""
        if self._outgoing:
            data, self._outgoing = self._outgoing, bytearray()
            send_all(self.sock, data, "commands to the game")

    def _read_pair(self, what: str) -> tuple[int, int]:
        if self._outgoing:
            self.flush()
        offset = self._receiver.take(8, what)
        return PAIR.unpack_from(self._receiver.buffer, offset)

    def _read_frame(self) -> np.ndarray:
        if self._frame_size is None:
            raise GameProtocolError("the game sent a frame (SC_REQUESTED_FRAME_SYNC) that was never requested")
        self._receiver.read_into(self._frame_view, self._frame_what)
        return self._frame_array

    # ---- commands ---------------------------------------------------------------------------------------------
    def _send(self, message_type: MessageType, *payload: int | float) -> None:
        self._outgoing += self._messages[message_type](int(message_type), *payload)

    def _send_bytes(self, message_type: MessageType, data: bytes) -> None:
        self._outgoing += TYPE_AND_LENGTH.pack(int(message_type), len(data))
        self._outgoing += data

    def _read_int32(self, what: str) -> int:
        if self._outgoing:
            self.flush()
        return self._receiver.take_int32(what)

    def _read_length_prefixed(self, what: str, limit: int) -> bytes:
        length = self._read_int32(f"the length of {what}")
        if not 0 <= length <= limit:
            raise GameProtocolError(f"the game announced {length} bytes for {what}: the stream is out of step")
        return self._receiver.take_bytes(length, f"{what} ({length} bytes)")

    def set_speed(self, speed: float) -> None:
        """Game speed: 0 pauses the simulation, 1 is real time, Linesight runs at 80."""
        self._send(M.C_SET_SPEED, speed)

    def rewind_to_state(self, state: SimState | bytes) -> None:
        self._send_bytes(M.C_REWIND_TO_STATE, state.data if isinstance(state, SimState) else bytes(state))

    def rewind_to_current_state(self) -> None:
        self._send(M.C_REWIND_TO_CURRENT_STATE)

    def get_simulation_state_bytes(self) -> bytes:
        return self._blocking(M.C_GET_SIMULATION_STATE, self._read_state_blob)

    def get_simulation_state(self) -> SimState:
        """The state now: sends the collected commands and waits for the blob (one round trip)."""
        return parse_state(self.get_simulation_state_bytes())

    def request_simulation_state(self) -> PendingState:
        """The state now, without waiting: the request goes out with the next commands in one write.

        Linesight's per-action sequence (get state, rewind to current, speed 0, request frame, echo) then costs
        one round trip instead of two; the game sees the same messages in the same order.
        """
        self._send(M.C_GET_SIMULATION_STATE)
        pending = PendingState(self)
        self._pending.append(pending)
        return pending

    def _read_state_blob(self) -> bytes:
        return self._read_length_prefixed("the state blob (reply to C_GET_SIMULATION_STATE)", MAX_BLOB_BYTES)

    def _read_pending_replies(self, until: PendingState | None = None) -> None:
        """Read the replies of earlier state requests off the stream, in order (all, or up to `until`)."""
        while self._pending:
            pending = self._pending.popleft()
            pending._blob = self._read_state_blob()
            if pending is until:
                return

    def _blocking(self, message_type: MessageType, read_reply: Callable[[], _Reply]) -> _Reply:
        """A command answered at once: earlier replies are read first (they come first), then this one."""
        self._send(message_type)
        if self._pending:
            self._read_pending_replies()
        return read_reply()

    def set_input_state(self, left: bool, right: bool, accelerate: bool, brake: bool) -> None:
        self._send(M.C_SET_INPUT_STATE, bool(left), bool(right), bool(accelerate), bool(brake))

    def give_up(self) -> None:
        """Restart the race with the countdown (negative race times)."""
        self._send(M.C_GIVE_UP)

    def prevent_simulation_finish(self) -> None:
        self._send(M.C_PREVENT_SIMULATION_FINISH)

    def execute_command(self, command: str) -> None:
        """A TMInterface console command; its length is sent in UTF-8 bytes (Linesight sends characters)."""
        self._send_bytes(M.C_EXECUTE_COMMAND, command.encode("utf-8"))

    def set_timeout(self, timeout_ms: int) -> None:
        """How long the game waits for an echo before it drops this client (2,000 ms until set)."""
        self._send(M.C_SET_TIMEOUT, timeout_ms)

    def race_finished(self) -> bool:
        return self._blocking(M.C_RACE_FINISHED, lambda: self._read_int32("the reply to C_RACE_FINISHED") > 0)

    def request_frame(self, width: int, height: int) -> None:
        """Ask for one W x H BGRA frame; it arrives later as a FrameReady event."""
        if width <= 0 or height <= 0:
            raise ValueError(f"frame size must be positive, got {width}x{height}")
        if self._frame_size != (width, height):
            self._frame_buffer = bytearray(width * height * 4)
            self._frame_view = memoryview(self._frame_buffer)
            self._frame_array = np.frombuffer(self._frame_buffer, dtype=np.uint8).reshape(height, width, 4)
            self._frame_what = f"SC_REQUESTED_FRAME_SYNC's {width}x{height} BGRA pixels"
            self._frame_size = (width, height)
        self._send(M.C_REQUEST_FRAME, width, height)

    def unrequest_frame(self) -> None:
        self._send(M.C_UNREQUEST_FRAME)

    def reset_camera(self) -> None:
        self._send(M.C_RESET_CAMERA)

    def set_on_step_period(self, period_ms: int) -> None:
        """Send run-step events every period_ms of race time (10 until set; Linesight uses 50)."""
        self._send(M.C_SET_ON_STEP_PERIOD, period_ms)

    def toggle_interface(self, visible: bool) -> None:
        self._send(M.C_TOGGLE_INTERFACE, 1 if visible else 0)

    def is_in_menus(self) -> bool:
        return self._blocking(M.C_IS_IN_MENUS, lambda: self._read_int32("the reply to C_IS_IN_MENUS") > 0)

    def get_inputs(self) -> str:
        """The race's inputs as a TMInterface input script."""
        text = self._blocking(
            M.C_GET_INPUTS,
            lambda: self._read_length_prefixed("the inputs text (reply to C_GET_INPUTS)", MAX_TEXT_BYTES),
        )
        return text.decode("utf-8")

    def close(self) -> None:
        """Tell the game to drop this client (C_SHUTDOWN), then close; safe to call twice or on a dead socket."""
        if self.sock.fileno() < 0:
            return
        with contextlib.suppress(GameConnectionError):
            self._send(M.C_SHUTDOWN)
            self.flush()
        self.sock.close()

    def __enter__(self) -> TMIClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

"""The game end of TMInterface 2's protocol: `Python_Link.as`'s rules around a `SimulatedGame` (GAME_BRIDGE.md §3).

One listening socket on 127.0.0.1, one client at a time (a new connection replaces the old one). The rules:
- commands are read only while the game blocks on a sync message (`_wait_for_response`), and answered at once;
- a wait ends on the client's echo, on C_SHUTDOWN, or when no data has come for RESPONSE_TIMEOUT since the wait
  began (2,000 ms until C_SET_TIMEOUT; reset on every disconnect); the client is then dropped and the next accepted;
- each loop iteration is one `Render()`: accept a client (and send on-connect), send a requested frame, then
  let the physics run to the next run step (every on-step period of race time) or checkpoint crossing;
- speed 0 pauses the physics (frames are still rendered); speed s runs as fast as the client answers, or at
  s x real time with realtime=True. Without a client the race is paused (the real game would keep running).
Unlike the plugin, an unknown message type or an impossible length drops the client with a logged error (the
stream cannot be resynchronised), and a closed connection is noticed at once instead of after the timeout.
"""

from __future__ import annotations

import logging
import select
import shlex
import socket
import threading
import time
from collections.abc import Callable

import numpy as np

from trackrl.errors import UserError
from trackrl.game.blob import BlobError
from trackrl.game.protocol import (
    DEFAULT_ON_STEP_PERIOD_MS,
    DEFAULT_RESPONSE_TIMEOUT_MS,
    HOST,
    INT32,
    MAX_BLOB_BYTES,
    MESSAGE_STRUCTS,
    PAYLOAD_STRUCTS,
    SYNC_TYPES,
    GameConnectionError,
    GameProtocolError,
    GameTimeoutError,
    MessageType,
    Receiver,
    message_name,
    send_all,
    send_parts,
    set_buffer_sizes,
    set_os_timeouts,
)
from trackrl.game.simulated_game import SimulatedGame
from trackrl.sim.car import TICK_MS
from trackrl.sim.track import load_track

M = MessageType
MAX_COMMAND_BYTES = 1 << 16
IDLE_SLEEP_S = 0.001
ACCEPT_POLL_S = 0.005  # the plugin polls Accept every rendered frame; every 5 ms is as often (200 fps)
log = logging.getLogger("trackrl.game.server")
_PAYLOAD_NAMES = {t: f"{t.name}'s payload" for t in PAYLOAD_STRUCTS}  # for errors; built once, not per message


class _ClientGone(Exception):
    """The current client was dropped (timeout, shutdown, closed, protocol error)."""


class PluginServer:
    def __init__(self, game: SimulatedGame, port: int, realtime: bool = False, host: str = HOST) -> None:
        self.game = game
        self.port = port
        self.realtime = realtime
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        set_buffer_sizes(self.listener)  # accepted sockets inherit them
        try:
            self.listener.bind((host, port))
        except OSError as error:
            self.listener.close()
            raise UserError(f"tmi-serve: cannot listen on {host}:{port}: {error.strerror}") from error
        self.listener.listen(1)
        self.listener.setblocking(False)
        self.client: socket.socket | None = None
        self.speed = 1.0
        self.response_timeout_ms = DEFAULT_RESPONSE_TIMEOUT_MS
        self.on_step_period_ms = DEFAULT_ON_STEP_PERIOD_MS
        self.frame_request: tuple[int, int] | None = None  # (W, H) to send at the next render
        self.clients_served = 0
        self._receiver: Receiver | None = None
        self._held_replies: list[bytes | bytearray] = []  # answers not sent yet (see _wait_for_response)
        self._poll = select.poll()
        self._next_accept_s = 0.0
        self._frame_buffers: dict[tuple[int, int], tuple[bytearray, np.ndarray, str]] = {}
        self._game_time_debt_ms = 0.0
        self._last_wall_s = time.monotonic()
        self._handlers = self._command_handlers()
        self._sync_messages = {t: (MESSAGE_STRUCTS[t].pack, t.name) for t in SYNC_TYPES if t in MESSAGE_STRUCTS}

    # ---- the loop ---------------------------------------------------------------------------------------------
    def serve_forever(self, stop: threading.Event | None = None) -> None:
        log.info("port %d: serving track %s (%.0f m, %d checkpoints + finish) on %s", self.port, self.game.track.name,
                 self.game.track.length_m, self.game.n_checkpoints, HOST)  # fmt: skip
        while stop is None or not stop.is_set():
            self.render()

    def render(self) -> None:
        """One iteration: accept, send a requested frame, run the physics to the next reported event."""
        try:
            if self.client is None or time.monotonic() >= self._next_accept_s:
                self._accept()
            if self.client is None:
                time.sleep(IDLE_SLEEP_S)
                return
            if self.frame_request is not None:
                self._send_frame()
            ticks_allowed = self._ticks_allowed()
            if ticks_allowed == 0:
                time.sleep(IDLE_SLEEP_S)
                return
            self._run_physics(ticks_allowed)
        except _ClientGone:
            pass

    def close(self) -> None:
        self._drop_client(None)
        self.listener.close()

    def _ticks_allowed(self) -> int:
        if self.speed <= 0.0:
            self._last_wall_s = time.monotonic()
            return 0
        if not self.realtime:
            return 1 << 30
        now = time.monotonic()
        self._game_time_debt_ms = min(self._game_time_debt_ms + (now - self._last_wall_s) * 1000 * self.speed, 1000)
        self._last_wall_s = now
        ticks = int(self._game_time_debt_ms // TICK_MS)
        self._game_time_debt_ms -= ticks * TICK_MS
        return ticks

    def _run_physics(self, ticks_allowed: int) -> None:
        game, period = self.game, self.on_step_period_ms
        ticks, crossed = game.advance(min(game.ticks_until_run_step(period), ticks_allowed))
        if crossed:
            self._sync(M.SC_CHECKPOINT_COUNT_CHANGED_SYNC, game.checkpoints_passed, game.n_checkpoints + 1)
        if ticks and game.run_step_due(period):
            self._sync(M.SC_RUN_STEP_SYNC, game.race_time_ms)

    # ---- clients ----------------------------------------------------------------------------------------------
    def _accept(self) -> None:
        self._next_accept_s = time.monotonic() + ACCEPT_POLL_S
        try:
            sock, address = self.listener.accept()
        except BlockingIOError:
            return
        if self.client is not None:
            self._drop_client("a new client connected")
        sock.setblocking(True)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.client = sock
        self._receiver = Receiver(sock, before_blocking=self._send_held_replies)
        self._poll.register(sock, select.POLLIN)
        self._game_time_debt_ms, self._last_wall_s = 0.0, time.monotonic()  # the race was paused without a client
        self.clients_served += 1
        self._apply_timeout()
        log.info("port %d: client connected from %s:%d", self.port, *address)
        self._sync(M.SC_ON_CONNECT_SYNC)

    def _drop_client(self, reason: str | None) -> None:
        if self.client is None:
            return
        if reason:
            log.info("port %d: client disconnected: %s", self.port, reason)
        self._poll.unregister(self.client)
        self.client.close()
        self.client = None
        self._receiver = None
        self._held_replies = []
        self.frame_request = None
        self.response_timeout_ms = DEFAULT_RESPONSE_TIMEOUT_MS

    def _apply_timeout(self) -> None:
        """Every read and write inside a wait is bounded by the response timeout too (OS-level timeouts)."""
        if self.client is not None:
            set_os_timeouts(self.client, max(self.response_timeout_ms, 100) / 1000)

    # ---- sync messages ----------------------------------------------------------------------------------------
    def _sync(self, message_type: MessageType, *payload: int) -> None:
        """Send a sync message and block until its echo (raises _ClientGone if the client was dropped)."""
        pack, name = self._sync_messages[message_type]
        self._send(pack(message_type, *payload), name)
        self._wait_for_response(message_type, name)

    def _send_frame(self) -> None:
        size = self.frame_request
        buffers = self._frame_buffers.get(size)  # type: ignore[arg-type]
        if buffers is None:  # one buffer per size: [type][W·H·4 BGRA], filled in place
            width, height = size  # type: ignore[misc]
            message = bytearray(4 + width * height * 4)
            message[:4] = INT32.pack(M.SC_REQUESTED_FRAME_SYNC)
            pixels = np.frombuffer(message, dtype="<u4", offset=4).reshape(height, width)  # one BGRA pixel each
            buffers = self._frame_buffers[size] = (message, pixels, f"SC_REQUESTED_FRAME_SYNC ({width}x{height})")  # type: ignore[index]
        message, pixels, name = buffers
        self.game.render_bgra(pixels.shape[1], pixels.shape[0], pixels)
        self._send(message, name)
        self._wait_for_response(M.SC_REQUESTED_FRAME_SYNC, name)
        self.frame_request = None  # the plugin resets the request after the frame's wait

    def _send(self, data: bytes | bytearray, what: str) -> None:
        """Send a sync message (after the replies held back, in the same write)."""
        try:
            if self._held_replies:
                parts, self._held_replies = [*self._held_replies, data], []
                send_parts(self.client, parts, what)  # type: ignore[arg-type]
            else:
                send_all(self.client, data, what)  # type: ignore[arg-type]
        except GameConnectionError as error:
            self._drop_client(str(error))
            raise _ClientGone from error

    def _wait_for_response(self, expected: MessageType, name: str) -> None:
        """The plugin's WaitForResponse: handle commands until the echo; the timer runs from the wait's start.

        The first read of a wait blocks in recv under the OS-level timeout (which equals the response timeout);
        later reads first poll for what is left of it, so traffic does not extend the wait.
        Replies (state blob, race finished, ...) are held back while more commands are already here, and sent
        before any read that would wait, at the end of the wait, or with the requested frame that follows it: a
        client that sends one action's commands in one write (`request_simulation_state`) then gets the state
        and the frame in one write too. The bytes and their order are the plugin's; only the writes are fewer.
        """
        start = time.monotonic()
        receiver, handlers = self._receiver, self._handlers
        first = True
        try:
            while True:
                if not first and not receiver.buffered():  # type: ignore[union-attr]
                    self._send_held_replies()
                    remaining_ms = self.response_timeout_ms - (time.monotonic() - start) * 1000
                    if remaining_ms <= 0 or not self._poll.poll(int(remaining_ms) + 1):
                        raise GameTimeoutError(f"no echo of {name}")
                first = False
                message_type = receiver.take_int32("a message type")  # type: ignore[union-attr]
                if message_type == expected:
                    if self._held_replies and (expected == M.SC_REQUESTED_FRAME_SYNC or self.frame_request is None):
                        self._send_held_replies()  # no frame follows at once: the client may be waiting for them
                    return
                handler = handlers[message_type] if 0 <= message_type < len(handlers) else None
                if handler is None:
                    raise GameProtocolError(
                        f"got {message_name(message_type)} from the client; the stream cannot be resynchronised"
                    )
                handler()
        except GameTimeoutError as error:
            self._drop_client(f"no echo of {name} within {self.response_timeout_ms} ms (timeout)")
            raise _ClientGone from error
        except (GameConnectionError, GameProtocolError) as error:
            self._drop_client(str(error))
            raise _ClientGone from error

    # ---- commands (GAME_BRIDGE.md §3.4), read inside a wait -----------------------------------------------------
    def _command_handlers(self) -> list[Callable[[], None] | None]:
        """handlers[message type]: one per command; None for a type that is not a command."""
        handlers: list[Callable[[], None] | None] = [None] * (max(MessageType) + 1)
        for message_type in SYNC_TYPES:  # an echo of another sync message: accepted silently, as the plugin does
            handlers[message_type] = _ignore
        for message_type, handler in {
            M.C_SET_SPEED: self._set_speed,
            M.C_REWIND_TO_STATE: self._rewind_to_state,
            M.C_REWIND_TO_CURRENT_STATE: _ignore,  # RewindToState(SaveState()) leaves the state as it is
            M.C_GET_SIMULATION_STATE: self._get_simulation_state,
            M.C_SET_INPUT_STATE: self._set_input_state,
            M.C_GIVE_UP: self._give_up,
            M.C_PREVENT_SIMULATION_FINISH: self._prevent_simulation_finish,
            M.C_SHUTDOWN: self._shutdown,
            M.C_EXECUTE_COMMAND: self._execute_command,
            M.C_SET_TIMEOUT: self._set_timeout,
            M.C_RACE_FINISHED: self._race_finished,
            M.C_REQUEST_FRAME: self._request_frame,
            M.C_RESET_CAMERA: self._reset_camera,
            M.C_SET_ON_STEP_PERIOD: self._set_on_step_period,
            M.C_UNREQUEST_FRAME: self._unrequest_frame,
            M.C_TOGGLE_INTERFACE: self._toggle_interface,
            M.C_IS_IN_MENUS: self._is_in_menus,
            M.C_GET_INPUTS: self._get_inputs,
        }.items():
            handlers[message_type] = handler
        return handlers

    def _read_payload(self, message_type: MessageType) -> tuple:
        payload_struct = PAYLOAD_STRUCTS[message_type]
        receiver = self._receiver
        offset = receiver.take(payload_struct.size, _PAYLOAD_NAMES[message_type])  # type: ignore[union-attr]
        return payload_struct.unpack_from(receiver.buffer, offset)  # type: ignore[union-attr]

    def _read_bytes(self, message_type: MessageType, limit: int) -> bytes:
        length = self._receiver.take_int32(f"{message_type.name}'s length")  # type: ignore[union-attr]
        if not 0 <= length <= limit:
            raise GameProtocolError(f"{message_type.name} announced {length} bytes (at most {limit})")
        return self._receiver.take_bytes(length, f"{message_type.name}'s {length} bytes")  # type: ignore[union-attr]

    def _reply(self, data: bytes, what: str) -> None:
        self._held_replies.append(data)

    def _send_held_replies(self) -> None:
        if self._held_replies:
            parts, self._held_replies = self._held_replies, []
            send_parts(self.client, parts, "replies to the client's commands")  # type: ignore[arg-type]

    def _get_simulation_state(self) -> None:
        blob = self.game.state_blob()
        self._reply(INT32.pack(len(blob)) + blob, "the state blob")

    def _set_speed(self) -> None:
        (self.speed,) = self._read_payload(M.C_SET_SPEED)

    def _request_frame(self) -> None:
        width, height = self._read_payload(M.C_REQUEST_FRAME)
        if not (0 < width <= 4096 and 0 < height <= 4096):
            raise GameProtocolError(f"C_REQUEST_FRAME asked for a {width}x{height} frame")
        self.frame_request = (width, height)

    def _set_input_state(self) -> None:
        left, right, accelerate, brake = self._read_payload(M.C_SET_INPUT_STATE)
        self.game.set_inputs(left > 0, right > 0, accelerate > 0, brake > 0)

    def _rewind_to_state(self) -> None:
        blob = self._read_bytes(M.C_REWIND_TO_STATE, MAX_BLOB_BYTES)
        try:
            self.game.rewind(blob)
        except BlobError as error:
            log.error("port %d: C_REWIND_TO_STATE ignored: %s", self.port, error)

    def _give_up(self) -> None:
        self.game.give_up()

    def _prevent_simulation_finish(self) -> None:
        self.game.prevent_finish()

    def _shutdown(self) -> None:
        self._drop_client("the client sent C_SHUTDOWN")
        raise _ClientGone

    def _race_finished(self) -> None:
        self._reply(INT32.pack(int(self.game.race_finished)), "the reply to C_RACE_FINISHED")

    def _is_in_menus(self) -> None:
        self._reply(INT32.pack(0), "the reply to C_IS_IN_MENUS")  # a track is always loaded

    def _get_inputs(self) -> None:
        text = self.game.inputs_text().encode("utf-8")
        self._reply(INT32.pack(len(text)) + text, "the reply to C_GET_INPUTS")

    def _set_timeout(self) -> None:
        (self.response_timeout_ms,) = self._read_payload(M.C_SET_TIMEOUT)
        self._apply_timeout()

    def _set_on_step_period(self) -> None:
        (period,) = self._read_payload(M.C_SET_ON_STEP_PERIOD)
        if period <= 0:
            raise GameProtocolError(f"C_SET_ON_STEP_PERIOD {period}: the period must be positive")
        self.on_step_period_ms = period

    def _unrequest_frame(self) -> None:
        self.frame_request = None

    def _execute_command(self) -> None:
        self.execute_command(self._read_bytes(M.C_EXECUTE_COMMAND, MAX_COMMAND_BYTES).decode("utf-8", "replace"))

    def _toggle_interface(self) -> None:
        (visible,) = self._read_payload(M.C_TOGGLE_INTERFACE)
        log.info("port %d: race interface %s", self.port, "shown" if visible > 0 else "hidden")

    def _reset_camera(self) -> None:
        log.info("port %d: camera reset", self.port)

    def execute_command(self, command: str) -> None:
        """TMInterface console commands: `map` loads a track; `set`, `cam`, `toggle_console` are accepted."""
        try:
            words = shlex.split(command)
        except ValueError:
            words = command.split()
        if not words:
            log.info("port %d: empty command", self.port)
        elif words[0] == "map" and len(words) == 2:
            self._load_map(words[1])
        elif words[0] == "set" and len(words) >= 2:
            log.info("port %d: command accepted: set %s %s", self.port, words[1], " ".join(words[2:]))
        elif words[0] in ("cam", "toggle_console"):
            log.info("port %d: command accepted: %s", self.port, command)
        else:
            log.warning("port %d: unknown command: %s", self.port, command)

    def _load_map(self, name: str) -> None:
        if name.lower().endswith(".gbx"):
            log.error("port %d: map %s: tmi-serve loads built-in tracks and .npy centre lines, not .Gbx files",
                      self.port, name)  # fmt: skip
            return
        try:
            track = load_track(name)
        except UserError as error:
            log.error("port %d: map %s: %s", self.port, name, error)
            return
        self.game.load_track(track)
        log.info("port %d: map %s loaded (%.0f m); race restarted", self.port, track.name, track.length_m)


def _ignore() -> None:
    pass

"""`tmi-serve` against a Linesight-style driver and raw sockets: the race equals the simulator's to the ms, blobs
hold the simulator's state at the documented offsets, rewinds reproduce the future, the plugin's timeout and
reconnect rules, frames, commands, and the CLI's clean stop."""

from __future__ import annotations

import logging
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from linesight_driver import LinesightStyleDriver

from trackrl.config import EnvironmentConfig
from trackrl.game.blob import parse_state, rotation_to_quaternion
from trackrl.game.client import CheckpointCountChanged, Connected, FrameReady, RunStep, TMIClient
from trackrl.game.protocol import GameConnectionError
from trackrl.game.server import PluginServer
from trackrl.game.simulated_game import COUNTDOWN_MS, SimulatedGame
from trackrl.sim.actions import ACTIONS
from trackrl.sim.drivers import follow_centerline_actions
from trackrl.sim.env import VecRaceEnv
from trackrl.sim.observation import float_input_dim, float_input_layout
from trackrl.sim.rollout import simulate_actions
from trackrl.sim.track import load_track

CONFIG = EnvironmentConfig()
ZONES = dict(float_input_layout(CONFIG))["zone_centers_car_frame_m"]


def free_port() -> int:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    return port


class ServerThread:
    def __init__(self, track: str = "a01", n_checkpoints: int = 3) -> None:
        self.port = free_port()
        self.server = PluginServer(SimulatedGame(load_track(track), n_checkpoints), self.port)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.server.serve_forever, args=(self.stop,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=10)
        self.server.close()


@pytest.fixture
def served() -> Iterator[ServerThread]:
    server = ServerThread()
    yield server
    server.close()


def pure_pursuit_on_blob(track_name: str = "a01"):
    """sim/drivers.py's line follower, fed with zone centres put in the car frame from the blob's position and
    rotation (M = Rᵀ, GAME_BRIDGE.md §7.2), as a game client would."""
    zone_centers = load_track(track_name).zone_centers(CONFIG.zone_spacing_m)

    def policy(gray: np.ndarray, state) -> int:
        first = int(np.argmin(np.linalg.norm(zone_centers - state.position_m, axis=1)))
        indices = np.minimum(np.arange(first, first + CONFIG.n_zone_centers_in_inputs), len(zone_centers) - 1)
        ahead = zone_centers[indices]
        floats = np.zeros((1, float_input_dim(CONFIG)), dtype=np.float32)
        floats[0, ZONES] = ((ahead - state.position_m) @ state.rotation.astype(np.float64)).ravel()
        return int(follow_centerline_actions(floats, CONFIG)[0])

    return policy


def test_linesight_driver_finishes_a01_with_the_simulators_race_time_and_positions(served: ServerThread) -> None:
    driver = LinesightStyleDriver(served.port, "a01", pure_pursuit_on_blob())
    first = driver.rollout()
    assert first.race_finished and len(first.actions) > 100
    replay = simulate_actions(load_track("a01"), first.actions)
    assert replay.finished and first.race_time_ms == replay.race_time_ms  # to the ms
    # The state at action step k is the simulator's position after k actions (float32 in the blob).
    positions = np.array([state.position_m for state in first.states])
    np.testing.assert_allclose(positions, replay.positions_m[: len(positions)], atol=1e-3)
    assert [state.race_time_ms for state in first.states] == [50 * k for k in range(len(first.states))]
    # Three checkpoints and the finish, in order; the finish's is the race time.
    assert len(first.cp_times_ms) == 4 and first.cp_times_ms == sorted(first.cp_times_ms)
    assert first.cp_times_ms[-1] == first.race_time_ms
    assert all(frame.shape == (120, 160) for frame in first.frames[:3])
    # The second race starts with a rewind to the cached t = 0 state (no countdown) and replays identically.
    second = driver.rollout()
    assert second.race_finished and second.race_time_ms == first.race_time_ms and second.actions == first.actions
    np.testing.assert_array_equal(np.array([s.position_m for s in second.states]), positions)
    driver.close()


def events_from(game: TMIClient, pending: RunStep | None) -> Iterator:
    if pending is not None:
        yield pending
    yield from game.events()


def drive_to(game: TMIClient, race_time_ms: int, pending: RunStep | None = None) -> RunStep:
    """Full throttle, steering left after race_time_ms / 2, until the run step at race_time_ms (not echoed)."""
    for event in events_from(game, pending):
        if isinstance(event, RunStep) and event.race_time_ms >= 0:
            game.set_input_state(event.race_time_ms > race_time_ms // 2, False, True, False)
            if event.race_time_ms >= race_time_ms:
                return event
        game.respond(event)
    raise AssertionError


def start_race(game: TMIClient, period_ms: int = 50) -> RunStep:
    """Connect handshake, give up (countdown); returns the run step at t = 0, not echoed."""
    event = game.next_event()
    assert isinstance(event, Connected)
    game.set_on_step_period(period_ms)
    game.give_up()
    game.respond(event)
    times = []
    for event in game.events():
        if isinstance(event, RunStep):
            times.append(event.race_time_ms)
            if event.race_time_ms == 0:
                break
        game.respond(event)
    assert times[0] == -COUNTDOWN_MS + period_ms and times == list(range(times[0], 1, period_ms))
    return event


def test_rewind_to_a_saved_blob_and_the_same_inputs_reproduce_the_race_exactly(served: ServerThread) -> None:
    with TMIClient.connect(served.port, timeout_s=10) as game:
        event = drive_to(game, 3000, start_race(game, period_ms=10))
        saved = game.get_simulation_state()
        game.respond(event)
        later = drive_to(game, 6000)
        first = [game.get_simulation_state_bytes(), game.race_finished()]
        game.rewind_to_state(saved)
        game.respond(later)
        again = drive_to(game, 6000)
        assert again.race_time_ms == 6000
        second = [game.get_simulation_state_bytes(), game.race_finished()]
        game.respond(again)
    assert parse_state(first[0]).race_time_ms == 6000
    assert first == second  # every byte, exact float64 state included


def test_blob_read_with_plain_struct_holds_the_simulators_values(served: ServerThread) -> None:
    """Offsets from GAME_BRIDGE.md §6.2, read without the project's parser, against VecRaceEnv stepped alike."""
    actions = [0] * 40 + [1] * 20  # accelerate, then accelerate + left
    with TMIClient.connect(served.port, timeout_s=10) as game:
        event = start_race(game)
        for k, action in enumerate(actions):
            if k:
                event = game.next_event()
            assert isinstance(event, RunStep) and event.race_time_ms == 50 * k
            game.set_input_state(action == 1, False, True, False)
            game.respond(event)
        event = game.next_event()
        blob = game.get_simulation_state_bytes()
        assert game.get_inputs() == "0 press up\n2000 press left\n"  # TMInterface script lines, ms
        game.respond(event)
    env = VecRaceEnv(load_track("a01"), 1, render_images=False)
    for action in actions:
        result = env.step(np.array([action]))
    assert struct.unpack_from("<I", blob, 8)[0] & 0x80  # HAS_PLAYER_INFO
    assert struct.unpack_from("<i", blob, 7892)[0] == int(result.race_time_ms[0]) == 3000
    np.testing.assert_allclose(struct.unpack_from("<3f", blob, 724), result.positions_m[0], atol=1e-4)
    vx, vy, vz = struct.unpack_from("<3f", blob, 736)
    np.testing.assert_allclose([vx, vz], env.velocities_mps[0], rtol=1e-6)
    rotation = np.array(struct.unpack_from("<9f", blob, 688)).reshape(3, 3)
    heading = env.headings_rad[0]
    np.testing.assert_allclose(rotation[:, 2], [np.cos(heading), 0, np.sin(heading)], atol=1e-6)  # forward axis
    np.testing.assert_allclose(rotation.T @ rotation, np.eye(3), atol=1e-6)
    quaternion = np.array(struct.unpack_from("<4f", blob, 672))
    np.testing.assert_allclose(quaternion, rotation_to_quaternion(rotation), atol=1e-6)
    car_frame_velocity = rotation.T @ np.array([vx, vy, vz])
    # M·v in the car frame (left, up, forward) is the simulator's own float observation of the velocity.
    velocity = dict(float_input_layout(CONFIG))["velocity_car_frame_mps"]
    np.testing.assert_allclose(car_frame_velocity, result.floats[0, velocity], rtol=1e-4, atol=1e-4)
    assert struct.unpack_from("<3f", blob, 760)[1] == pytest.approx(-env.yaw_rates_radps[0], rel=1e-6)
    n = struct.unpack_from("<i", blob, 8348)[0]
    m = struct.unpack_from("<i", blob, 8352 + 4 * n)[0]
    assert n == m == 4 and len(blob) == 8356 + 4 * n + 8 * m
    assert struct.unpack_from("<i", blob, 8356 + 4 * n)[0] == -1  # no checkpoint yet at 3 s
    # Gear and rpm (engine at 1648 + 1436): the simulator's gearbox, rpm = max_rpm * speed / the gear's top speed.
    gear, rpm = struct.unpack_from("<i", blob, 3128)[0], struct.unpack_from("<f", blob, 3112)[0]
    car = env.car_params
    speed_mps = float(np.hypot(vx, vz))
    top_speeds_mps = car.gear_top_speeds_mps()
    # Accelerating from standstill: up one gear per top speed passed; the engine turns.
    assert gear == 1 + int(np.sum(top_speeds_mps[:-1] <= speed_mps)) and rpm > 0
    assert rpm == pytest.approx(car.max_rpm * speed_mps / top_speeds_mps[gear - 1], rel=1e-5)


def test_a_client_that_stops_echoing_is_dropped_after_the_timeout_and_the_next_is_served(served: ServerThread) -> None:
    silent = TMIClient.connect(served.port, timeout_s=5)
    assert isinstance(silent.next_event(), Connected)
    start = time.monotonic()
    with pytest.raises(GameConnectionError, match="closed"):
        silent.next_event()  # never echoed: the default 2,000 ms response timeout drops it
    assert 1.9 < time.monotonic() - start < 4.0
    with TMIClient.connect(served.port, timeout_s=5) as game:
        event = game.next_event()
        assert isinstance(event, Connected)
        game.set_timeout(200)  # a shorter timeout, set inside the wait
        game.respond(event)
        event = game.next_event()
        assert isinstance(event, RunStep)
        start = time.monotonic()
        with pytest.raises(GameConnectionError):
            game.next_event()
        assert 0.15 < time.monotonic() - start < 1.5
    with TMIClient.connect(served.port, timeout_s=5) as game:  # the timeout is back to 2,000 ms for a new client
        event = game.next_event()
        time.sleep(0.5)
        game.respond(event)
        assert isinstance(game.next_event(), RunStep)
    assert served.server.clients_served == 3


def raw_connection(port: int) -> tuple[socket.socket, Callable[[int], bytes]]:
    """A plain socket to the server, past its on-connect message, and an exact-size read for it."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)

    def read(n: int) -> bytes:
        data = b""
        while len(data) < n:
            data += sock.recv(n - len(data))
        return data

    assert read(4) == b"\x05\x00\x00\x00"
    return sock, read


def test_raw_bytes_from_the_documented_tables_drive_the_server(served: ServerThread) -> None:
    """The server decodes hand-written commands (GAME_BRIDGE.md §2) and answers in the documented layout."""
    sock, read = raw_connection(served.port)
    sock.sendall(b"\x13\x00\x00\x00\x32\x00\x00\x00")  # on-step period 50
    sock.sendall(b"\x0b\x00\x00\x00")  # give up
    sock.sendall(b"\x16\x00\x00\x00")  # in menus?
    assert read(4) == b"\x00\x00\x00\x00"
    sock.sendall(b"\x05\x00\x00\x00")  # echo on-connect
    assert read(8) == b"\x01\x00\x00\x00" + struct.pack("<i", -COUNTDOWN_MS + 50)
    sock.sendall(b"\x10\x00\x00\x00")  # race finished?
    assert read(4) == b"\x00\x00\x00\x00"
    sock.sendall(b"\x06\x00\x00\x00\x00\x00\x00\x00")  # speed 0
    sock.sendall(b"\x11\x00\x00\x00\x04\x00\x00\x00\x03\x00\x00\x00")  # request a 4x3 frame
    sock.sendall(b"\x01\x00\x00\x00")  # echo the run step
    frame = read(4 + 4 * 3 * 4)
    assert frame[:4] == b"\x04\x00\x00\x00" and frame[7::4] == b"\xff" * 12  # BGRA, alpha 255
    sock.sendall(b"\x0e\x00\x00\x00\x0b\x00\x00\x00set speed 1")  # a console command
    sock.sendall(b"\x09\x00\x00\x00")  # get state
    (length,) = struct.unpack("<i", read(4))
    assert parse_state(read(length)).race_time_ms == -COUNTDOWN_MS + 50  # paused: no time passed
    sock.sendall(b"\x0d\x00\x00\x00")  # shutdown: dropped
    assert sock.recv(1) == b""
    sock.close()


def test_pipelined_commands_get_their_replies_in_order_in_one_stream(served: ServerThread) -> None:
    """Commands sent in one write (no wait for a reply): the answers come in the documented order and layout,
    also when the game pauses after the echo (the held-back replies must not wait for a frame or a run step)."""
    sock, read = raw_connection(served.port)
    # on-step period 50, give up, get state, in menus?, race finished?, speed 0, echo on-connect: one write
    sock.sendall(b"\x13\x00\x00\x00\x32\x00\x00\x00" b"\x0b\x00\x00\x00" b"\x09\x00\x00\x00" b"\x16\x00\x00\x00"
                 b"\x10\x00\x00\x00" b"\x06\x00\x00\x00\x00\x00\x00\x00" b"\x05\x00\x00\x00")  # fmt: skip
    (length,) = struct.unpack("<i", read(4))
    assert parse_state(read(length)).race_time_ms == -COUNTDOWN_MS
    assert read(8) == b"\x00\x00\x00\x00" * 2  # not in menus, not finished
    sock.close()  # the game is paused (speed 0): only a new client gets a wait again
    sock, read = raw_connection(served.port)
    sock.sendall(b"\x06\x00\x00\x00\x00\x00\x80\x3f" b"\x05\x00\x00\x00")  # speed 1, echo on-connect  # fmt: skip
    sock.sendall(b"\x16\x00\x00\x00")  # in menus? (sent before the run step is read: answered inside its wait)
    assert read(8) == b"\x01\x00\x00\x00" + struct.pack("<i", -COUNTDOWN_MS + 50)  # the run step first
    assert read(4) == b"\x00\x00\x00\x00"
    # get state, request a 4x3 frame, echo: the blob and the frame arrive in this order
    request_frame = b"\x11\x00\x00\x00\x04\x00\x00\x00\x03\x00\x00\x00"
    sock.sendall(b"\x09\x00\x00\x00" + request_frame + b"\x01\x00\x00\x00")
    (length,) = struct.unpack("<i", read(4))
    assert parse_state(read(length)).race_time_ms == -COUNTDOWN_MS + 50
    frame = read(4 + 4 * 3 * 4)
    assert frame[:4] == b"\x04\x00\x00\x00" and frame[7::4] == b"\xff" * 12
    sock.close()


def test_a_pipelined_state_request_reads_the_same_race_as_get_state(served: ServerThread) -> None:
    """request_simulation_state (sent with the action's other commands) gives the states get_simulation_state
    gives, and leaves the stream in step (frames and events after it are read correctly)."""

    def drive(pipelined: bool) -> list[tuple[int, list[float]]]:
        seen = []
        with TMIClient.connect(served.port, timeout_s=10) as game:
            event = start_race(game)
            for k in range(30):
                if k:
                    event = game.next_event()
                assert isinstance(event, RunStep) and event.race_time_ms == 50 * k
                pending = game.request_simulation_state() if pipelined else None
                state = None if pipelined else game.get_simulation_state()
                game.set_speed(0.0)
                game.request_frame(16, 12)
                game.respond(event)
                state = pending.result() if pending else state
                assert state is not None and state.race_time_ms == 50 * k
                seen.append((state.race_time_ms, state.position_m.tolist()))
                frame_event = game.next_event()
                assert isinstance(frame_event, FrameReady) and frame_event.bgra.shape == (12, 16, 4)
                game.set_input_state(k % 7 == 0, False, True, False)
                game.set_speed(80.0)
                game.respond(frame_event)
        return seen

    assert drive(pipelined=True) == drive(pipelined=False)


def test_frames_are_the_simulators_camera_at_the_requested_size_in_bgra(served: ServerThread) -> None:
    with TMIClient.connect(served.port, timeout_s=10) as game:
        event = drive_to(game, 2000, start_race(game))
        game.set_speed(0.0)
        game.request_frame(160, 120)
        game.respond(event)
        frame = game.next_event()
        assert isinstance(frame, FrameReady)
        bgra = frame.bgra.copy()
        game.respond(frame)
    env = VecRaceEnv(load_track("a01"), 1, image_size_px=(120, 160))  # the simulator's own camera, same size
    for k in range(40):
        result = env.step(np.array([1 if 50 * k > 1000 else 0]))  # drive_to's inputs
    assert bgra.shape == (120, 160, 4) and (bgra[..., 3] == 255).all()
    assert (bgra[..., 0] == bgra[..., 1]).all() and (bgra[..., 1] == bgra[..., 2]).all()  # gray in B, G, R
    np.testing.assert_array_equal(bgra[..., 0], result.images[0, 0])


def test_commands_map_and_non_ascii_round_trip(
    served: ServerThread, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    np.save(tmp_path / "piste_éè.npy", load_track("easy").centerline_m)
    caplog.set_level(logging.INFO, logger="trackrl.game.server")
    command = "set skin_name Ünïcødé 🚗 ok"
    with TMIClient.connect(served.port, timeout_s=10) as game:
        event = game.next_event()
        game.execute_command(command)
        game.execute_command("cam 2")
        game.execute_command("toggle_console")
        game.execute_command("do_something_else 1")
        game.execute_command(f"map {tmp_path / 'piste_éè.npy'}")
        assert not game.is_in_menus()  # the stream is still in step after the multi-byte commands
        game.respond(event)
        assert isinstance(game.next_event(), RunStep)
    messages = [record.getMessage() for record in caplog.records]
    assert any(message.endswith("command accepted: set skin_name Ünïcødé 🚗 ok") for message in messages)
    assert any(message.endswith("command accepted: cam 2") for message in messages)
    assert any(message.endswith("unknown command: do_something_else 1") for message in messages)
    assert any("map" in message and "piste_éè loaded" in message for message in messages)
    assert served.server.game.track.name == "piste_éè"


def test_finish_prevent_and_race_finished(served: ServerThread) -> None:
    track = load_track("a01")
    driver = LinesightStyleDriver(served.port, "a01", pure_pursuit_on_blob())
    actions = driver.rollout().actions
    driver.close()
    expected = simulate_actions(track, actions).race_time_ms
    server = ServerThread(n_checkpoints=0)
    try:
        with TMIClient.connect(server.port, timeout_s=10) as game:
            k = 0
            for event in events_from(game, start_race(game)):
                if isinstance(event, RunStep) and not game.race_finished() and k < len(actions):
                    accelerate, left, right = actions[k] in (0, 1, 2), actions[k] == 1, actions[k] == 2
                    game.set_input_state(left, right, accelerate, False)
                    k += 1
                if isinstance(event, CheckpointCountChanged):
                    assert (event.current, event.target) == (1, 1)
                    state = game.get_simulation_state()
                    assert state.race_time_ms == expected and state.race_finished and game.race_finished()
                    game.prevent_simulation_finish()
                    assert not game.get_simulation_state().race_finished
                    game.respond(event)
                    after = game.next_event()  # every tick after the finish (TickTime > RaceTime), same race time
                    assert after == RunStep(expected) and game.race_finished()
                    game.respond(after)
                    assert game.next_event() == RunStep(expected)
                    break
                game.respond(event)
    finally:
        server.close()


def default_ctrl_c() -> None:
    """Ctrl-C as in a terminal: a test suite started from a script's background job (`make test &`) inherits
    SIGINT ignored, as POSIX shells set it for background jobs, and a server started from it would ignore Ctrl-C."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_tmi_serve_cli_serves_two_instances_and_stops_cleanly_on_ctrl_c() -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "trackrl.cli", "tmi-serve", "--track", "easy", "--port", str(port), "--instances", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True, preexec_fn=default_ctrl_c,
    )  # fmt: skip
    try:
        games = [TMIClient.connect(p, timeout_s=20, connect_timeout_s=60) for p in (port, port + 1)]
        for game in games:
            event = game.next_event()
            assert isinstance(event, Connected)
            game.respond(event)
            assert isinstance(game.next_event(), RunStep)
        os.killpg(process.pid, signal.SIGINT)  # Ctrl-C reaches the whole process group, as in a terminal
        output = process.communicate(timeout=30)[0]
        for game in games:
            with pytest.raises(GameConnectionError):  # the client of a stopped game gets one clear error
                game.next_event()
            game.close()
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 0, output
    assert f"port {port}: stopped (1 clients served)" in output and f"port {port + 1}: stopped" in output
    assert "Traceback" not in output


def test_realtime_runs_at_speed_times_real_time() -> None:
    port = free_port()
    server = PluginServer(SimulatedGame(load_track("easy")), port, realtime=True)
    stop = threading.Event()
    thread = threading.Thread(target=server.serve_forever, args=(stop,), daemon=True)
    thread.start()
    try:
        with TMIClient.connect(port, timeout_s=10) as game:
            event = game.next_event()
            game.set_speed(4.0)
            game.set_on_step_period(50)
            game.respond(event)
            first, start = game.next_event(), time.monotonic()
            game.respond(first)
            while time.monotonic() - start < 0.5:
                event = game.next_event()
                game.respond(event)
            elapsed_s = time.monotonic() - start
            race_ms = event.race_time_ms - first.race_time_ms
            assert race_ms <= 4.0 * elapsed_s * 1000 + 100  # never faster than 4x real time
            assert race_ms >= 0.3 * 4.0 * elapsed_s * 1000  # (a busy machine may lag behind)
    finally:
        stop.set()
        thread.join(timeout=10)
        server.close()


def test_an_unknown_message_from_the_client_drops_it_and_the_next_is_served(served: ServerThread) -> None:
    sock = socket.create_connection(("127.0.0.1", served.port), timeout=5)
    assert sock.recv(4) == b"\x05\x00\x00\x00"
    sock.sendall(b"\x63\x00\x00\x00")  # type 99: the stream cannot be resynchronised
    assert sock.recv(1) == b""
    sock.close()
    with TMIClient.connect(served.port, timeout_s=5) as game:
        assert isinstance(game.next_event(), Connected)


def test_tmi_serve_cli_rejects_a_bad_track() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "trackrl.cli", "tmi-serve", "--track", "no_such_track"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2 and "no_such_track" in result.stderr and "Traceback" not in result.stderr


def test_checkpoint_times_are_the_tick_of_the_crossing_as_a_tick_by_tick_reference_finds_it() -> None:
    """SimulatedGame runs 50 ms chunks and replays only a chunk that crossed; the times must be those of the
    simulator stepped one 10 ms tick at a time with the same inputs (first tick at or past each plane)."""
    track, n_checkpoints = load_track("a01"), 3
    env = VecRaceEnv(track, 1, render_images=False)
    floats, actions = env.reset()[1], []
    while True:  # the line follower's race, 50 ms actions
        actions.append(int(follow_centerline_actions(floats, CONFIG)[0]))
        result = env.step(np.array([actions[-1]]))
        floats = result.floats
        if result.terminated[0] or result.truncated[0]:
            break
    assert result.finished[0]
    game = SimulatedGame(track, n_checkpoints)
    while game.race_time_ms < 0:
        game.advance(game.ticks_until_run_step(50))
    for action in actions:
        accelerate, brake, left, right = ACTIONS[action]
        game.set_inputs(bool(left), bool(right), bool(accelerate), bool(brake))
        ticks_left = game.ticks_until_run_step(50)
        while ticks_left and not game.finished:  # a crossing ends a chunk early: go on to the run step
            ticks, _ = game.advance(ticks_left)
            ticks_left -= ticks
    reference = VecRaceEnv(track, 1, env_config=EnvironmentConfig(tm_engine_step_per_action=1), render_images=False)
    planes_m = track.length_m * np.arange(1, n_checkpoints + 1) / (n_checkpoints + 1)
    expected: list[int] = []
    for action in actions:
        for _ in range(5):
            step = reference.step(np.array([action]))
            while len(expected) < n_checkpoints and step.progress_m[0] >= planes_m[len(expected)]:
                expected.append(int(step.race_time_ms[0]))
    expected.append(int(step.race_time_ms[0]))  # the finish
    assert step.finished[0] and game.finished
    assert game.cp_times_ms.tolist() == expected
    assert expected[-1] == int(result.race_time_ms[0]) and len(set(expected)) == n_checkpoints + 1

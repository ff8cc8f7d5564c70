"""TMInterface 2 protocol cost: Linesight's per-action sequence against `trackrl tmi-serve`, on one core.

Per action (GAME_BRIDGE.md §5.6): run step -> get state (parsed) + rewind to current + speed 0 + request a
160x120 frame + echo -> frame (BGRA) -> inputs + speed 80 + echo. Measured twice: in Linesight's exact order
(the client waits for the state blob before it sends the next commands: three round trips per action) and
pipelined (`request_simulation_state`: the same messages in the same order, sent in one write, two round
trips). The baseline is the same simulator stepped directly for one car with the same actions and the same
160x120 render, in the same run; the protocol's cost per action (client + server + loopback, beyond the
simulator's own step and render) is the difference. Client and server are pinned to the same single core
(checked with os.sched_getaffinity on both processes).

With a second core, the client is also measured alone: a stand-in game on the other core streams what the game
sends per action (run step, a real state blob, a 160x120 frame) without ever waiting for the client, and the
client's CPU time per action is counted. Against the real game only this side is trackrl's (the game end is
TMInterface's), so it is the protocol's cost there, beside the loopback transfer itself.
Run: .venv/bin/python benchmarks/tmi_loopback.py [--track a01] [--seconds 3] [--rounds 3] [--core N]
"""

from __future__ import annotations

import os

for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[variable] = "1"

import argparse  # noqa: E402
import contextlib  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from trackrl.config import EnvironmentConfig  # noqa: E402
from trackrl.game.blob import SimState  # noqa: E402
from trackrl.game.client import CheckpointCountChanged, Connected, FrameReady, RunStep, TMIClient  # noqa: E402
from trackrl.sim.actions import ACTIONS  # noqa: E402
from trackrl.sim.drivers import follow_centerline_actions  # noqa: E402
from trackrl.sim.env import VecRaceEnv  # noqa: E402
from trackrl.sim.track import load_track  # noqa: E402

FRAME_W, FRAME_H = 160, 120


def pin_to_one_core(core: int | None) -> int:
    core = sorted(os.sched_getaffinity(0))[0] if core is None else core
    os.sched_setaffinity(0, {core})
    return core


def scripted_race(track_name: str) -> list[int]:
    """The line follower's actions for one race (both measurements replay them)."""
    env = VecRaceEnv(load_track(track_name), 1, render_images=False)
    floats = env.reset()[1]
    actions: list[int] = []
    while True:
        action = int(follow_centerline_actions(floats, EnvironmentConfig())[0])
        result = env.step(np.array([action]))
        actions.append(action)
        floats = result.floats
        if result.terminated[0] or result.truncated[0]:
            return actions


def direct_actions_per_second(track_name: str, actions: list[int], seconds: float) -> float:
    env = VecRaceEnv(load_track(track_name), 1, image_size_px=(FRAME_H, FRAME_W))
    env.step(np.zeros(1, dtype=np.int64))
    env.reset()
    action = np.zeros(1, dtype=np.int64)
    done, k, start = 0, 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        action[0] = actions[k]
        result = env.step(action)
        done, k = done + 1, k + 1
        if result.terminated[0] or result.truncated[0] or k == len(actions):
            env.reset()
            k = 0
    return done / (time.perf_counter() - start)


class LinesightLoop:
    """Linesight's per-action sequence; every race after the first starts with a rewind to the t = 0 state."""

    def __init__(self, game: TMIClient, actions: list[int]) -> None:
        self.game = game
        self.pipelined = False
        self.keys = [tuple(bool(v) for v in ACTIONS[a]) for a in actions]  # (accelerate, brake, left, right)
        self.start_state: SimState | None = None
        self.k = 0

    def action_start(self, event: RunStep) -> None:
        """Get state, rewind to current, speed 0, request the frame, echo; the state is parsed in both modes."""
        game = self.game
        if self.pipelined:
            pending = game.request_simulation_state()
        else:
            state = game.get_simulation_state()
        game.rewind_to_current_state()
        game.set_speed(0.0)
        game.request_frame(FRAME_W, FRAME_H)
        game.respond(event)
        if self.pipelined:
            state = pending.result()
        if self.start_state is None and event.race_time_ms == 0:
            self.start_state = state

    def actions_per_second(self, seconds: float) -> float:
        game = self.game
        done, start = 0, time.perf_counter()
        for event in game.events():
            if isinstance(event, RunStep) and event.race_time_ms >= 0 and event.race_time_ms % 50 == 0:
                self.action_start(event)
                continue
            if isinstance(event, FrameReady):
                accelerate, brake, left, right = self.keys[self.k % len(self.keys)]
                game.set_input_state(left, right, accelerate, brake)
                game.set_speed(80.0)
                self.k += 1
                done += 1
                if time.perf_counter() - start > seconds:
                    game.respond(event)
                    return done / (time.perf_counter() - start)
            elif isinstance(event, CheckpointCountChanged) and event.current == event.target:  # finished: again
                game.get_simulation_state()
                assert self.start_state is not None
                game.rewind_to_state(self.start_state)
                self.k = 0
            elif isinstance(event, Connected):
                game.set_on_step_period(50)
                game.set_timeout(600_000_000)  # the game waits while the direct baseline is measured
                game.give_up()
            game.respond(event)
        raise AssertionError("unreachable")


def cpu_seconds(pid: int | None = None) -> float:
    """User + system CPU time of this process, or of another one (Linux /proc) — robust to a busy machine."""
    if pid is None:
        return time.process_time()
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    return port


def measure_protocol(loop: LinesightLoop, pipelined: bool, seconds: float, server_pid: int) -> tuple[float, float]:
    """(wall us, CPU us of client + server) per action of the per-action sequence over tmi-serve."""
    loop.pipelined = pipelined
    before = cpu_seconds() + cpu_seconds(server_pid)
    start = time.perf_counter()
    rate = loop.actions_per_second(seconds)
    actions = rate * (time.perf_counter() - start)
    return 1e6 / rate, (cpu_seconds() + cpu_seconds(server_pid) - before) / actions * 1e6


def measure_direct(track_name: str, actions: list[int], seconds: float) -> tuple[float, float]:
    before = cpu_seconds()
    rate = direct_actions_per_second(track_name, actions, seconds)
    return 1e6 / rate, (cpu_seconds() - before) / (rate * seconds) * 1e6


def stand_in_game(port: int, core: int, track_name: str) -> None:
    """The game's side of the per-action sequence, never waiting: on-connect, then run step + state blob + frame."""
    from trackrl.game.protocol import INT32, set_buffer_sizes
    from trackrl.game.simulated_game import SimulatedGame

    os.sched_setaffinity(0, {core})
    game = SimulatedGame(load_track(track_name))
    blob = game.state_blob()
    pixels = np.zeros((FRAME_H, FRAME_W), np.uint32)
    game.render_bgra(FRAME_W, FRAME_H, pixels)
    listener = socket.socket()
    set_buffer_sizes(listener)
    listener.bind(("127.0.0.1", port))
    listener.listen(1)
    sock, _ = listener.accept()
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.sendall(INT32.pack(5))  # SC_ON_CONNECT_SYNC
    replies = INT32.pack(len(blob)) + blob + INT32.pack(4) + pixels.tobytes()  # state blob, SC_REQUESTED_FRAME_SYNC
    drain = bytearray(1 << 16)
    race_time_ms = 0
    with contextlib.suppress(OSError):  # the client closed: done
        while True:
            sock.sendall(INT32.pack(1) + INT32.pack(race_time_ms) + replies)  # SC_RUN_STEP_SYNC
            race_time_ms += 50
            with contextlib.suppress(BlockingIOError):  # the client's commands and echoes: read and dropped
                while sock.recv_into(drain, 0, socket.MSG_DONTWAIT):
                    pass


def client_alone_us(track_name: str, actions: list[int], seconds: float, client_core: int, game_core: int) -> float:
    """CPU us per action of the client alone (pipelined), the stand-in game on another core."""
    port = free_port()
    game_process = subprocess.Popen([sys.executable, __file__, "--stand-in-game", str(port), "--core", str(game_core),
                                     "--track", track_name])  # fmt: skip
    try:
        game = TMIClient.connect(port, timeout_s=30, connect_timeout_s=60)
        loop = LinesightLoop(game, actions)
        loop.pipelined = True
        loop.actions_per_second(0.5)  # warm-up
        before, start_k = cpu_seconds(), loop.k
        loop.actions_per_second(seconds)
        cost_us = (cpu_seconds() - before) / (loop.k - start_k) * 1e6
        game.close()
    finally:
        game_process.kill()
        game_process.wait(timeout=10)
    return cost_us


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--track", default="a01")
    parser.add_argument("--seconds", type=float, default=3.0, help="per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the three alternating measurements")
    parser.add_argument("--core", type=int, default=None, help="the core for both processes (default: the first)")
    parser.add_argument("--stand-in-game", type=int, metavar="PORT", help=argparse.SUPPRESS)  # subprocess mode
    args = parser.parse_args()
    if args.stand_in_game is not None:
        stand_in_game(args.stand_in_game, args.core, args.track)
        return
    core = pin_to_one_core(args.core)
    actions = scripted_race(args.track)
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "trackrl.cli", "tmi-serve", "--track", args.track, "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        game = TMIClient.connect(port, timeout_s=30, connect_timeout_s=60)
        affinities = (os.sched_getaffinity(0), os.sched_getaffinity(server.pid))
        if affinities != ({core}, {core}):
            raise SystemExit(f"client and server are not both pinned to core {core}: {affinities}")
        loop = LinesightLoop(game, actions)
        loop.actions_per_second(1.0)  # warm-up: connect, countdown, numba caches
        rounds: dict[str, list[tuple[float, float]]] = {"direct": [], "exact": [], "pipelined": []}
        for _ in range(args.rounds):
            rounds["direct"].append(measure_direct(args.track, actions, args.seconds))
            rounds["exact"].append(measure_protocol(loop, False, args.seconds, server.pid))
            rounds["pipelined"].append(measure_protocol(loop, True, args.seconds, server.pid))
        game.close()
    finally:
        server.terminate()
        server.wait(timeout=10)
    other_cores = sorted(set(range(os.cpu_count() or 1)) - {core})
    client_alone = [client_alone_us(args.track, actions, args.seconds, core, other_cores[0])
                    for _ in range(args.rounds)] if other_cores else []  # fmt: skip
    print(f"client and server pinned to core {core} (checked), track {args.track}, {FRAME_W}x{FRAME_H} frames, "
          f"{args.rounds} rounds x {args.seconds:g} s each; per action: median (best) of the rounds")  # fmt: skip
    labels = {
        "direct": "simulator stepped directly (1 car + render)",
        "exact": "over tmi-serve, Linesight's exact order    ",
        "pipelined": "over tmi-serve, pipelined state request   ",
    }
    for name, label in labels.items():
        wall, cpu = np.array(rounds[name]).T
        print(f"{label}: {1e6 / np.median(wall):6.0f} actions/s  {np.median(wall):5.0f} us wall ({wall.min():4.0f}), "
              f"{np.median(cpu):5.0f} us CPU ({cpu.min():4.0f})")  # fmt: skip
    direct_wall, direct_cpu = np.array(rounds["direct"]).T
    for name in ("exact", "pipelined"):
        wall, cpu = np.array(rounds[name]).T
        cost_wall, cost_cpu = wall - direct_wall, cpu - direct_cpu  # each round against its own baseline
        print(f"protocol cost per action, {name:9s}: {np.median(cost_wall):5.0f} us wall ({cost_wall.min():4.0f}), "
              f"{np.median(cost_cpu):5.0f} us CPU ({cost_cpu.min():4.0f})  (target <= 100 us)")  # fmt: skip
    if client_alone:
        print(f"client alone, the stand-in game on core {other_cores[0]}: {np.median(client_alone):5.0f} us CPU per "
              f"action ({min(client_alone):4.0f}), pipelined: trackrl's side against the real game")  # fmt: skip
    else:
        print("client alone: skipped (needs a second core for the stand-in game)")
    print(
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores: wall numbers on a busy machine count the "
        "waits for the scheduler at every round trip; CPU numbers count less of it"
    )


if __name__ == "__main__":
    main()

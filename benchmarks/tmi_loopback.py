"""TMInterface 2 protocol cost: Linesight's per-action sequence against `trackrl tmi-serve`, on one core.

Per action (GAME_BRIDGE.md §5.6): run step -> get state (parsed) + rewind to current + speed 0 + request a
160x120 frame + echo -> frame (BGRA) -> inputs + speed 80 + echo. The baseline is the same simulator stepped
directly for one car with the same actions and the same 160x120 render, in the same run; the protocol's cost
per action (client + server + loopback, beyond the simulator's own step and render) is the difference.
Client and server share one core (the server process inherits this process's affinity).
Run: .venv/bin/python benchmarks/tmi_loopback.py [--track a01] [--seconds 5] [--rounds 2]
"""

from __future__ import annotations

import os

for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[variable] = "1"

import argparse  # noqa: E402
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


def pin_to_one_core() -> int:
    core = sorted(os.sched_getaffinity(0))[0]
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
        self.keys = [tuple(bool(v) for v in ACTIONS[a]) for a in actions]  # (accelerate, brake, left, right)
        self.start_state: SimState | None = None
        self.k = 0

    def actions_per_second(self, seconds: float) -> float:
        game = self.game
        done, start = 0, time.perf_counter()
        for event in game.events():
            if isinstance(event, RunStep):
                t = event.race_time_ms
                if t >= 0 and t % 50 == 0:
                    state = game.get_simulation_state()
                    if self.start_state is None and t == 0:
                        self.start_state = state
                    game.rewind_to_current_state()
                    game.set_speed(0.0)
                    game.request_frame(FRAME_W, FRAME_H)
            elif isinstance(event, FrameReady):
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--track", default="a01")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=2, help="alternating measurements; the best of each is kept")
    args = parser.parse_args()
    core = pin_to_one_core()
    actions = scripted_race(args.track)
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "trackrl.cli", "tmi-serve", "--track", args.track, "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        game = TMIClient.connect(port, timeout_s=30, connect_timeout_s=60)
        loop = LinesightLoop(game, actions)
        loop.actions_per_second(1.0)  # warm-up: connect, countdown, numba caches
        direct, protocol, cpu_direct, cpu_protocol = [], [], [], []
        for _ in range(args.rounds):
            before = cpu_seconds()
            direct.append(direct_actions_per_second(args.track, actions, args.seconds))
            cpu_direct.append((cpu_seconds() - before) / (direct[-1] * args.seconds))
            before = cpu_seconds() + cpu_seconds(server.pid)
            protocol.append(loop.actions_per_second(args.seconds))
            cpu_protocol.append((cpu_seconds() + cpu_seconds(server.pid) - before) / (protocol[-1] * args.seconds))
        game.close()
    finally:
        server.terminate()
        server.wait(timeout=10)
    best_direct, best_protocol = max(direct), max(protocol)
    cost_us = (1 / best_protocol - 1 / best_direct) * 1e6
    cpu_cost_us = (min(cpu_protocol) - min(cpu_direct)) * 1e6
    rounds = f"best of {args.rounds} x {args.seconds:g} s"
    print(f"one core (cpu {core}), track {args.track}, {FRAME_W}x{FRAME_H} frames, {rounds}")
    direct_line = (
        f"{best_direct:8.0f} actions/s  ({1e6 / best_direct:6.0f} us wall, {min(cpu_direct) * 1e6:6.0f} us CPU)"
    )
    protocol_line = f"{best_protocol:8.0f} actions/s  ({1e6 / best_protocol:6.0f} us wall, "
    protocol_line += f"{min(cpu_protocol) * 1e6:6.0f} us CPU, client + server)"
    print(f"simulator stepped directly (1 car + render): {direct_line}")
    print(f"over tmi-serve (Linesight's sequence)      : {protocol_line}")
    print(f"protocol cost per action                   : {cost_us:8.0f} us wall, {cpu_cost_us:6.0f} us CPU "
          f"(target <= 100 us; wall ratio {best_direct / best_protocol:.2f}x)")  # fmt: skip
    print(
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores: wall numbers on a busy machine count the "
        "waits for the scheduler at every round trip; CPU numbers do not"
    )


if __name__ == "__main__":
    main()

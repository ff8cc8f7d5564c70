"""A Linesight-style game client for the tests, written from GAME_BRIDGE.md §5 (game_instance_manager.py's loop).

On connect: console, speed 1, on-step period 50 ms, the `set` commands, map if in menus. Every rollout rewinds to
the race-start state cached at t = 0 (the first one loads the map or gives up and rides the countdown). Each
action step (t >= 0, t % 50 == 0): get state, rewind to current, speed 0, request a 160x120 frame, echo; on the
frame: policy, inputs, speed back to 80, echo. The last checkpoint ends the race: the blob's last checkpoint time
is set to -1 and rewound to (prevent finish), and the echo is withheld with a 600,000,000 ms timeout so the game
stays frozen until the next rollout. A cutoff (no progress for 2 s, or 300 s) freezes the game the same way.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from trackrl.game.blob import SimState, encode_state
from trackrl.game.client import CheckpointCountChanged, Connected, FrameReady, LapCountChanged, RunStep, TMIClient
from trackrl.game.protocol import MessageType
from trackrl.sim.actions import ACTIONS
from trackrl.sim.track import load_track

RUNNING_SPEED = 80.0
MS_PER_ACTION = 50
FRAME_W, FRAME_H = 160, 120
TIMEOUT_DURING_RUN_MS = 10_100
TIMEOUT_BETWEEN_RUNS_MS = 600_000_000
CUTOFF_RACE_MS = 300_000
CUTOFF_NO_PROGRESS_MS = 2_000
ZONE_SPACING_M = 10.0

Policy = Callable[[np.ndarray, SimState], int]  # (gray frame (H, W) uint8, state) -> action index


@dataclass
class Rollout:
    race_finished: bool = False
    race_time_ms: int = CUTOFF_RACE_MS
    actions: list[int] = field(default_factory=list)
    states: list[SimState] = field(default_factory=list)  # the state at each action step
    frames: list[np.ndarray] = field(default_factory=list)  # the gray frame seen at each action step
    cp_times_ms: list[int] = field(default_factory=list)


class LinesightStyleDriver:
    def __init__(self, port: int, map_name: str, policy: Policy, timeout_s: float = 20.0) -> None:
        self.port = port
        self.map_name = map_name
        self.policy = policy
        self.timeout_s = timeout_s
        self.client: TMIClient | None = None
        self.latest_map_requested: str | int = -1  # -1: a freshly launched game (toggle the console on connect)
        self.start_states: dict[str, SimState] = {}
        self.timeout_has_been_set = False
        self.deferred_echo: MessageType | None = None
        zone_track = load_track(map_name)
        self.zone_centers_m = zone_track.zone_centers(ZONE_SPACING_M)

    def close(self) -> None:
        if self.client is not None:
            self.client.close()

    # -- §5.3: on connect -------------------------------------------------------------------------------------
    def _on_connect(self, game: TMIClient) -> None:
        if self.latest_map_requested == -1:
            game.execute_command("toggle_console")
        game.set_speed(1.0)
        game.set_on_step_period(MS_PER_ACTION)
        for command in ("set countdown_speed 80", "set autologin trackrl", "set unfocused_fps_limit false",
                        "set skip_map_load_screens true", "set disable_forced_camera true", "set autorewind false",
                        "set auto_reload_plugins false"):  # fmt: skip
            game.execute_command(command)
        if game.is_in_menus() and self.latest_map_requested != self.map_name:
            self._request_map(game)

    def _request_map(self, game: TMIClient) -> None:
        game.execute_command(f"map {self.map_name}")
        self.latest_map_requested = self.map_name

    # -- §5.5: one race ---------------------------------------------------------------------------------------
    def rollout(self) -> Rollout:
        if self.client is None:
            self.client = TMIClient.connect(self.port, timeout_s=self.timeout_s, connect_timeout_s=20.0)
        else:
            self.client.set_speed(RUNNING_SPEED)
            if self.deferred_echo is not None:
                self.client.respond(self.deferred_echo)
                self.deferred_echo = None
        game = self.client
        result = Rollout()
        start_signal_sent = seen_t_negative = finished = False
        frame_expected = False
        last_state: SimState | None = None
        furthest_zone, last_progress_ms = 0, 0
        for event in game.events():
            if isinstance(event, Connected):
                self._on_connect(game)
                game.respond(event)
            elif isinstance(event, RunStep):
                t = event.race_time_ms
                if not self.timeout_has_been_set:
                    game.set_timeout(TIMEOUT_DURING_RUN_MS)
                    game.execute_command("cam 2")
                    self.timeout_has_been_set = True
                if t == 0 and self.map_name not in self.start_states and self.latest_map_requested == self.map_name:
                    self.start_states[self.map_name] = game.get_simulation_state()
                if not start_signal_sent:
                    if self.latest_map_requested != self.map_name:
                        self._request_map(game)
                    elif self.map_name not in self.start_states:
                        game.give_up()
                    else:
                        game.rewind_to_state(self.start_states[self.map_name])
                        t, seen_t_negative = 0, True
                    start_signal_sent = True
                elif seen_t_negative and (t > CUTOFF_RACE_MS or t > last_progress_ms + CUTOFF_NO_PROGRESS_MS):
                    game.get_simulation_state()
                    game.rewind_to_current_state()
                    self._freeze(game, MessageType.SC_RUN_STEP_SYNC, frame_expected)
                    return result
                seen_t_negative |= t < 0
                if t >= 0 and t % MS_PER_ACTION == 0 and seen_t_negative:
                    last_state = game.get_simulation_state()
                    zone = self._zone_index(last_state.position_m)
                    if zone > furthest_zone:
                        furthest_zone, last_progress_ms = zone, t
                    game.rewind_to_current_state()
                    game.set_speed(0.0)
                    game.request_frame(FRAME_W, FRAME_H)
                    frame_expected = True
                game.respond(event)
            elif isinstance(event, FrameReady):
                if frame_expected and last_state is not None:
                    frame_expected = False
                    gray = self._gray(event.bgra)
                    action = int(self.policy(gray, last_state))
                    accelerate, brake, left, right = ACTIONS[action]
                    game.set_input_state(left, right, accelerate, brake)
                    game.set_speed(RUNNING_SPEED)
                    result.actions.append(action)
                    result.states.append(last_state)
                    result.frames.append(gray)
                game.respond(event)
            elif isinstance(event, CheckpointCountChanged):
                state = game.get_simulation_state()
                result.cp_times_ms.append(state.race_time_ms)
                if event.current == event.target:
                    if len(state.cp_times_ms):
                        times = state.cp_times_ms.copy()
                        times[-1] = -1
                        game.rewind_to_state(encode_state(dataclasses.replace(state, cp_times_ms=times)))
                    else:
                        game.prevent_simulation_finish()
                    if seen_t_negative and start_signal_sent and not finished:
                        result.race_finished, result.race_time_ms = True, state.race_time_ms
                        self._freeze(game, MessageType.SC_CHECKPOINT_COUNT_CHANGED_SYNC, frame_expected)
                        return result
                game.respond(event)
            elif isinstance(event, LapCountChanged):
                game.respond(event)
        raise AssertionError("unreachable: events() ends only with an error")

    def _freeze(self, game: TMIClient, echo: MessageType, frame_expected: bool) -> None:
        """§5.7: keep the game blocked between rollouts (echo withheld, long timeout)."""
        self.deferred_echo = echo
        game.set_timeout(TIMEOUT_BETWEEN_RUNS_MS)
        if frame_expected:
            game.unrequest_frame()

    def _zone_index(self, position_m: np.ndarray) -> int:
        return int(np.argmin(np.linalg.norm(self.zone_centers_m - position_m, axis=1)))

    @staticmethod
    def _gray(bgra: np.ndarray) -> np.ndarray:
        """OpenCV's BGRA2GRAY weights: 0.114 B + 0.587 G + 0.299 R."""
        weighted = 0.114 * bgra[..., 0] + 0.587 * bgra[..., 1] + 0.299 * bgra[..., 2]
        return np.rint(weighted).astype(np.uint8)

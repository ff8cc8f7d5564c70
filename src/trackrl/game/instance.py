"""One game instance driven as Linesight drives it (GAME_BRIDGE.md §5): lifecycle and the per-action race loop.

Lifecycle: launch (game.launcher), connect with retries, configure on connect (§5.3: console, speed, on-step
period, the `set` commands, the map if in menus), load the map with `map PATH`, cache the race-time-0 state per map,
hide the interface; relaunch a game that exited, reboot one older than game_reboot_interval. A timeout or a lost
connection drops that race (None), closes the connection, and the next race reconnects.

A race (§5.5): the first run step rewinds to the cached start state (the first race on a map gives up, or loads the
map, and rides the countdown). Every action step (race time t >= 0, t % 50 == 0): read the state, and with images
pause the game (speed 0) and request a frame, act when it arrives, speed back to running_speed; float-only agents
act inside the run step (the game waits for the echo anyway). The last checkpoint finishes the race (the finish is
prevented by the blob's last checkpoint time = -1, as Linesight); the race cutoff and the no-progress cutoff end it
unfinished, reported at the race cutoff's time as the simulator does. Between races the game stays frozen: the
last echo is withheld with a long timeout and sent at the next race.
"""

from __future__ import annotations

import dataclasses
import logging
import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from trackrl.config.schema import TrackRLConfig
from trackrl.game.blob import SimState, encode_state
from trackrl.game.client import CheckpointCountChanged, Connected, FrameReady, LapCountChanged, RunStep, TMIClient
from trackrl.game.launcher import GameSetupError, LaunchedGame, launch_game
from trackrl.game.observation_adapter import GameObservation, GameRaceObserver
from trackrl.game.protocol import GameConnectionError, GameProtocolError, MessageType
from trackrl.sim.actions import ACTIONS
from trackrl.sim.car import TICK_MS
from trackrl.sim.observation import gray_frame_from_bgra

M = MessageType
log = logging.getLogger("trackrl.game")
CONNECT_ATTEMPT_S = 0.5
MAX_FAILED_LAUNCHES = 3
ON_CONNECT_COMMANDS = (
    "set unfocused_fps_limit false",
    "set skip_map_load_screens true",
    "set disable_forced_camera true",
    "set autorewind false",
    "set auto_reload_plugins false",
)

ChooseAction = Callable[[np.ndarray | None, np.ndarray], int]  # (image (1, H, W) uint8 or None, floats) -> action


@dataclass
class GameRace:
    """One race's rows, as the simulator's collectors keep them: T actions, T rewards, T + 1 observations."""

    images: list[np.ndarray] = field(default_factory=list)  # (1, H, W) uint8 each; empty for float-only agents
    floats: list[np.ndarray] = field(default_factory=list)
    actions: list[int] = field(default_factory=list)
    rewards: list[float] = field(default_factory=list)
    positions_m: list[np.ndarray] = field(default_factory=list)
    finished: bool = False
    race_time_ms: int = 0


@dataclass
class _RaceLoop:
    """The local state of one race (Linesight's rollout() locals)."""

    map_name: str
    map_command_path: str
    observer: GameRaceObserver
    choose_action: ChooseAction
    race: GameRace = field(default_factory=GameRace)
    start_signal_sent: bool = False
    seen_t_negative: bool = False
    pending: GameObservation | None = None  # the action step waiting for its frame
    ending: bool = False  # a cutoff was decided at the pending action step
    previous: GameObservation | None = None


class GameInstance:
    def __init__(self, config: TrackRLConfig, instance_index: int, keepalive: Callable[[], None] = lambda: None):
        self.config = config
        self.game = config.game
        self.port = config.game.base_tmi_port + instance_index
        self.launcher = config.game.resolved_launcher(sys.platform)
        self.keepalive = keepalive
        self.use_image = config.nn.use_image
        self.frame_size = (config.nn.image_width_px, config.nn.image_height_px)
        self.period_ms = config.environment.tm_engine_step_per_action * TICK_MS
        self.cutoff_race_ms = config.environment.cutoff_rollout_if_race_not_finished_within_duration_ms
        self.launched: LaunchedGame | None = None
        self.launched_at_s = 0.0
        self.launches = 0
        self.client: TMIClient | None = None
        self.connections = 0
        self.races_dropped = 0
        self.failed_launches = 0  # in a row: games that exited before they answered
        self._reset_game_state()

    def _reset_game_state(self) -> None:
        """What a fresh game does not have: a map, cached start states, the UI hidden."""
        self.latest_map_requested: str | None = None
        self.fresh_launch = True  # toggle the console on the first connect (Linesight: latest_map_path == -1)
        self.start_states: dict[str, bytes] = {}
        self.ui_hidden = False
        self.timeout_has_been_set = False
        self.deferred_echo: MessageType | None = None

    # ---- lifecycle --------------------------------------------------------------------------------------------
    def close(self) -> None:
        """Disconnect and stop the game this instance launched (a user's external game is left running)."""
        self._drop_connection()
        if self.launched is not None:
            self.launched.stop()
            self.launched = None

    def _drop_connection(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None
        self.timeout_has_been_set = False  # the plugin resets its timeout on every disconnect
        self.deferred_echo = None

    def _ensure_game(self, first_map: str) -> None:
        if self.launcher == "external":
            return
        if self.launched is not None:
            uptime_s = time.monotonic() - self.launched_at_s
            if uptime_s > self.game.game_reboot_interval:
                log.info("port %d: game up for %.0f s (game_reboot_interval %g s): rebooting it", self.port,
                         uptime_s, self.game.game_reboot_interval)  # fmt: skip
                self.close()
            elif self.launched.is_alive() is False:
                code = self.launched.process.returncode if self.launched.process else None
                log.warning("port %d: the game exited (code %s); relaunching it", self.port, code)
                self.close()
        if self.launched is None:
            self.launched = launch_game(self.game, self.port, first_map)
            self.launched_at_s = time.monotonic()
            self.launches += 1
            self._reset_game_state()

    def _connect(self) -> TMIClient:
        deadline = time.monotonic() + self.game.game_connect_timeout_s
        while True:
            self.keepalive()
            try:
                client = TMIClient.connect(self.port, timeout_s=self.game.tmi_protection_timeout_s,
                                           connect_timeout_s=CONNECT_ATTEMPT_S)  # fmt: skip
            except GameConnectionError:
                if self.launched is not None and self.launched.is_alive() is False:
                    where = f" (its log: {self.launched.log_path})" if self.launched.log_path else ""
                    message = f"the game on port {self.port} exited before it answered{where}"
                    self.failed_launches += 1
                    if self.failed_launches >= MAX_FAILED_LAUNCHES:  # relaunching again would only loop
                        raise GameSetupError(f"{message}, {self.failed_launches} launches in a row") from None
                    raise GameConnectionError(message) from None
                if time.monotonic() > deadline:
                    raise GameConnectionError(
                        f"no game answered on port {self.port} within game.game_connect_timeout_s = "
                        f"{self.game.game_connect_timeout_s:g} s (plugin not loaded, or `set custom_port` not applied?)"
                    ) from None
                continue
            self.connections += 1
            self.failed_launches = 0
            log.info("port %d: connected to the game", self.port)
            return client

    def _wake(self) -> TMIClient:
        """Connect, or resume a game frozen since the last race (speed back up, then the withheld echo)."""
        if self.client is None:
            self._drop_connection()
            self.client = self._connect()
            return self.client
        self.client.set_speed(self.game.running_speed)
        if self.deferred_echo is not None:
            self.client.respond(self.deferred_echo)
            self.deferred_echo = None
        return self.client

    # ---- one race ---------------------------------------------------------------------------------------------
    def rollout(
        self, map_name: str, map_command_path: str, observer: GameRaceObserver, choose_action: ChooseAction
    ) -> GameRace | None:
        """One race on map_name (start states are cached under it); None when the race was dropped."""
        try:
            self._ensure_game(map_name)
            game = self._wake()
            return self._race(game, _RaceLoop(map_name, map_command_path, observer, choose_action))
        except (GameConnectionError, GameProtocolError) as error:
            log.warning("port %d: %s; race dropped, reconnecting at the next race (game.tmi_protection_timeout_s = "
                        "%g s)", self.port, error, self.game.tmi_protection_timeout_s)  # fmt: skip
            self.races_dropped += 1
            self._drop_connection()
            return None

    def _race(self, game: TMIClient, loop: _RaceLoop) -> GameRace:
        loop.observer.reset()
        for event in game.events():
            self.keepalive()
            if isinstance(event, RunStep):
                if self._on_run_step(game, loop, event.race_time_ms):
                    self._freeze(game, M.SC_RUN_STEP_SYNC, loop)
                    return loop.race
            elif isinstance(event, FrameReady):
                if self._on_frame(game, loop, event.bgra):
                    self._freeze(game, M.SC_REQUESTED_FRAME_SYNC, loop)
                    return loop.race
            elif isinstance(event, CheckpointCountChanged):
                if event.current == event.target and self._on_finish(game, loop):
                    self._freeze(game, M.SC_CHECKPOINT_COUNT_CHANGED_SYNC, loop)
                    return loop.race
            elif isinstance(event, Connected):
                self._on_connect(game, loop.map_command_path)
            elif not isinstance(event, LapCountChanged):
                raise GameProtocolError(f"unexpected event {event!r}")
            game.respond(event)
        raise AssertionError("unreachable: events() ends only with an error")

    def _on_connect(self, game: TMIClient, map_command_path: str) -> None:
        if self.fresh_launch:
            game.execute_command("toggle_console")
            self.fresh_launch = False
        game.set_speed(1.0)
        game.set_on_step_period(self.period_ms)
        game.execute_command(f"set countdown_speed {self.game.running_speed:g}")
        game.execute_command(f"set autologin {self.game.username}")
        for command in ON_CONNECT_COMMANDS:
            game.execute_command(command)
        if game.is_in_menus() and self.latest_map_requested != map_command_path:
            self._request_map(game, map_command_path)

    def _request_map(self, game: TMIClient, map_command_path: str) -> None:
        path = shlex.quote(map_command_path) if self.launcher == "simulator" else map_command_path
        game.execute_command(f"map {path}")
        self.latest_map_requested = map_command_path
        self.ui_hidden = False

    def _on_run_step(self, game: TMIClient, loop: _RaceLoop, t: int) -> bool:
        """§5.5 run step; True when the race ended here (float-only cutoff)."""
        if not self.timeout_has_been_set:
            game.set_timeout(self.game.timeout_during_run_ms)
            game.execute_command(f"cam {self.game.game_camera_number}")
            self.timeout_has_been_set = True
        if not self.ui_hidden:
            game.toggle_interface(False)
            self.ui_hidden = True
        map_loaded = self.latest_map_requested == loop.map_command_path
        if t == 0 and map_loaded and loop.map_name not in self.start_states:
            self.start_states[loop.map_name] = game.get_simulation_state_bytes()
        if not loop.start_signal_sent:
            game.set_speed(self.game.running_speed)
            if not map_loaded:
                self._request_map(game, loop.map_command_path)
            elif loop.map_name not in self.start_states:
                game.give_up()
            else:
                game.rewind_to_state(self.start_states[loop.map_name])
                t, loop.seen_t_negative = 0, True
            loop.start_signal_sent = True
        loop.seen_t_negative |= t < 0
        if t < 0 or t % self.period_ms != 0 or not loop.seen_t_negative or loop.pending is not None:
            return False
        observation = loop.observer.observe(game.get_simulation_state())
        loop.ending = t >= self.cutoff_race_ms or loop.observer.no_progress(t)
        if not self.use_image:
            return self._action_step(game, loop, observation, None)
        game.rewind_to_current_state()
        game.set_speed(0.0)  # paused while the policy runs on the frame
        game.request_frame(*self.frame_size)
        loop.pending = observation
        return False

    def _on_frame(self, game: TMIClient, loop: _RaceLoop, bgra: np.ndarray) -> bool:
        if loop.pending is None:
            return False
        observation, loop.pending = loop.pending, None
        if self._action_step(game, loop, observation, gray_frame_from_bgra(bgra)):
            return True
        game.set_speed(self.game.running_speed)
        return False

    def _action_step(
        self, game: TMIClient, loop: _RaceLoop, observation: GameObservation, image: np.ndarray | None
    ) -> bool:
        """Record observation k (and reward k-1); act, or end the race on a cutoff. True when it ended."""
        race = loop.race
        self._record(loop, observation, image, finished=False)
        if loop.ending:
            race.finished, race.race_time_ms = False, self.cutoff_race_ms  # the simulator's DNF convention
            return True
        action = int(loop.choose_action(image, observation.floats))
        accelerate, brake, left, right = (bool(k) for k in ACTIONS[action])
        game.set_input_state(left, right, accelerate, brake)  # every action (Linesight 098cbf8)
        loop.observer.record_action(action)
        race.actions.append(action)
        return False

    def _record(self, loop: _RaceLoop, observation: GameObservation, image: np.ndarray | None, finished: bool) -> None:
        race = loop.race
        if loop.previous is None:
            loop.observer.start_potential(observation)
        else:
            race.rewards.append(loop.observer.reward(loop.previous, observation, finished))
        loop.previous = observation
        race.floats.append(observation.floats)
        race.positions_m.append(observation.position_m)
        if self.use_image:
            race.images.append(image if image is not None else race.images[-1].copy())

    def _on_finish(self, game: TMIClient, loop: _RaceLoop) -> bool:
        """The last checkpoint: prevent the game's own finish; True if it ends this race (one was being driven)."""
        state = game.get_simulation_state()
        self._prevent_finish(game, state)
        if not loop.race.actions:
            return False
        loop.pending = None
        self._record(loop, loop.observer.observe(state, finished=True), None, finished=True)
        loop.race.finished, loop.race.race_time_ms = True, state.race_time_ms
        return True

    @staticmethod
    def _prevent_finish(game: TMIClient, state: SimState) -> None:
        if len(state.cp_times_ms):
            times = state.cp_times_ms.copy()
            times[-1] = -1  # Linesight's equivalent of prevent_simulation_finish
            game.rewind_to_state(encode_state(dataclasses.replace(state, cp_times_ms=times)))
        else:
            game.prevent_simulation_finish()

    def _freeze(self, game: TMIClient, echo: MessageType, loop: _RaceLoop) -> None:
        """§5.7: the game stays blocked until the next race (echo withheld, long timeout)."""
        self.deferred_echo = echo
        game.set_timeout(self.game.timeout_between_runs_ms)
        game.unrequest_frame()
        game.flush()

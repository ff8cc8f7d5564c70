"""The game backend's collector: one car in one game instance (port game.base_tmi_port + collector id).

It races the map cycle's slots one after the other through `trackrl.game.instance.GameInstance` (Linesight's
per-action loop) and sends each finished or cut-off race as the same `Rollout` the simulator's collectors send, so
nothing above the collector knows which backend ran. A race the game dropped (timeout, lost connection) is not sent;
the next race reconnects, relaunching the game if it exited. Weights are pulled every
update_inference_network_every_n_actions actions, inside the race.

Heartbeat: a game call may block up to game.tmi_protection_timeout_s (and a launch game_connect_timeout_s), longer
than the pool's stall limit, so a thread beats while the loop has shown activity within those bounds; a process
stopped with SIGSTOP stops every thread and is still caught.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
import time
from typing import Any

import numpy as np

from trackrl.config.schedules import current_schedule_values
from trackrl.train.collector import CarRace, CollectorSpec, PolicyCollector, Rollout
from trackrl.train.processes import RolloutChannel, SharedWeights, parent_is_alive, put_until_stopped

HEARTBEAT_PERIOD_S = 0.5


class CollectorStopping(Exception):
    """The learner asked the collectors to stop: the race in progress is abandoned."""


class GameCollector(PolicyCollector):
    def __init__(
        self, spec: CollectorSpec, shared_weights: SharedWeights, beat: Any = None, should_stop: Any = None
    ) -> None:
        from trackrl.game.instance import GameInstance
        from trackrl.game.observation_adapter import GameRaceObserver
        from trackrl.sim.track import load_track

        super().__init__(spec, shared_weights)
        self.beat = beat if beat is not None else (lambda: None)
        self.should_stop = should_stop if should_stop is not None else (lambda: False)
        self.last_activity_s = time.monotonic()
        self.instance = GameInstance(self.config, spec.collector_id, keepalive=self.keepalive)
        self.observers = {
            key: GameRaceObserver(load_track(*key), self.config.environment, self.config.rewards)
            for key in self.cycle.tracks()
        }
        self.refresh_every = self.config.performance.update_inference_network_every_n_actions
        self.actions_since_refresh = 0

    def keepalive(self) -> None:
        self.last_activity_s = time.monotonic()

    def run_race(self) -> Rollout | None:
        """One race of the next cycle slot; None if the game dropped it."""
        slot = self.cycle.next_slot()
        race = CarRace(slot, (slot.map_name, slot.road_width_m), self.cycle.position)
        greedy = not slot.is_exploration

        def choose_action(image: np.ndarray | None, floats: np.ndarray) -> int:
            if self.should_stop():
                raise CollectorStopping
            schedules = current_schedule_values(self.config, self.frames_played)
            actions, q_values = self.select(None if image is None else image[None], floats[None], greedy, schedules)
            race.q_values.append(float(np.asarray(q_values, dtype=np.float64)[0].mean()))
            self.frames_played += 1
            self.beat()
            self.actions_since_refresh += 1
            if self.actions_since_refresh >= self.refresh_every:
                self.refresh_weights()
                self.actions_since_refresh = 0
            return int(actions[0])

        game_race = self.instance.rollout(
            slot.map_name, slot.game_map_path or slot.map_name, self.observers[race.env_key], choose_action
        )
        if game_race is None:
            return None
        race.images, race.floats, race.actions = game_race.images, game_race.floats, game_race.actions
        race.rewards, race.positions_m = game_race.rewards, game_race.positions_m
        return self.pack_rollout(race, game_race.finished, game_race.race_time_ms)

    def close(self) -> None:
        self.instance.close()


def _heartbeat(collector: GameCollector, channel: RolloutChannel, stop: threading.Event) -> None:
    game = collector.config.game
    allowed_silence_s = game.tmi_protection_timeout_s + game.game_connect_timeout_s + 5.0
    while not stop.wait(HEARTBEAT_PERIOD_S):
        if time.monotonic() - collector.last_activity_s < allowed_silence_s:
            channel.beat()


def _exit_on_sigterm(signum: int, frame: Any) -> None:
    raise SystemExit(0)


def run_game_collector(
    spec: CollectorSpec, rollout_queue: RolloutChannel, shared_weights: SharedWeights, stop_event: Any
) -> None:
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, datefmt="%H:%M:%S",
        format=f"%(asctime)s collector {spec.collector_id}: %(message)s",
    )  # fmt: skip
    signal.signal(signal.SIGTERM, _exit_on_sigterm)  # the pool's terminate(): still close the game we launched
    rollout_queue.beat()

    def should_stop() -> bool:
        return stop_event.is_set() or not parent_is_alive()

    collector = GameCollector(spec, shared_weights, beat=rollout_queue.beat, should_stop=should_stop)
    stop_beating = threading.Event()
    beater = threading.Thread(target=_heartbeat, args=(collector, rollout_queue, stop_beating), daemon=True)
    beater.start()
    try:
        while not should_stop():
            rollout = collector.run_race()
            collector.keepalive()
            if rollout is not None and not put_until_stopped(rollout_queue, rollout, stop_event):
                return
    except CollectorStopping:
        return
    finally:
        stop_beating.set()
        collector.close()
        rollout_queue.cancel_join_thread()
        if not parent_is_alive():
            rollout_queue.remove_spool()

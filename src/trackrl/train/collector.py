"""A collector process: steps a ``VecRaceEnv`` of ``cars_per_collector`` cars with one batched inference per step.

Each car runs the race slots of the map cycle one after the other (exploration: epsilon / Boltzmann / noise; eval:
greedy). On the game backend (environment.backend: game) the
process runs trackrl.train.game_collector instead: one car in one game instance. A finished or cut-off race is sent
to the learner as one ``Rollout`` of numpy arrays (uint8 images) through
this collector's bounded queue. Weights are pulled from the learner's shared-memory copy every
``update_inference_network_every_n_actions`` actions. The process exits when the learner asks it to or dies.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from trackrl.config.loader import config_from_dict
from trackrl.config.schedules import current_schedule_values
from trackrl.config.schema import TrackRLConfig
from trackrl.train.map_cycle import MapCycle, RaceSlot
from trackrl.train.processes import RolloutChannel, SharedWeights, parent_is_alive, put_until_stopped


@dataclass
class CollectorSpec:
    """Everything a (re)started collector needs; plain data so that "spawn" pickles it cheaply."""

    collector_id: int
    incarnation: int
    seed: int
    config_data: dict[str, Any]
    map_cycle_position: int
    frames_at_start: int  # for the exploration schedules until the learner's frame count arrives
    inference_device: str = "cpu"  # resolved by the trainer (performance.collector_device)


@dataclass
class Rollout:
    """One car-race. T = number of actions; observations have T+1 rows (the last one after the final action)."""

    collector_id: int
    map_cycle_position: int  # the collector's next cycle slot after this race started (resume continues there)
    slot: RaceSlot
    images: np.ndarray | None  # (T+1, 1, H, W) uint8, None for a float-only agent
    floats: np.ndarray  # (T+1, F) float32
    actions: np.ndarray  # (T,) int64
    rewards: np.ndarray  # (T,) float32
    positions_m: np.ndarray  # (T+1, 3) float32
    finished: bool
    terminated: bool  # finished: no bootstrap from the last state
    race_time_ms: int
    mean_q: float  # Linesight's avg_Q: the mean of Q(s_t, a) over every step t and every action a of the race
    weights_version: int

    @property
    def n_actions(self) -> int:
        return int(self.actions.shape[0])


def rollout_bytes_upper_bound(config: TrackRLConfig) -> int:
    """Pickled size of the longest possible rollout (a race run to the cutoff), to size the spool folder."""
    from trackrl.sim.observation import float_input_dim

    action_ms = 10 * config.environment.tm_engine_step_per_action  # engine tick = 10 ms
    rows = config.environment.cutoff_rollout_if_race_not_finished_within_duration_ms // action_ms + 2
    image_bytes = config.nn.image_height_px * config.nn.image_width_px if config.nn.use_image else 0
    row_bytes = image_bytes + 4 * float_input_dim(config.environment) + 4 * 3 + 8 + 4  # + positions, action, reward
    return rows * row_bytes + 4096  # + pickle framing and the scalar fields


@dataclass
class CarRace:
    """The race one car is running; lists grow one row per action."""

    slot: RaceSlot
    env_key: tuple[str, float | None]
    cycle_position: int
    images: list[np.ndarray] = field(default_factory=list)
    floats: list[np.ndarray] = field(default_factory=list)
    actions: list[int] = field(default_factory=list)
    rewards: list[float] = field(default_factory=list)
    positions_m: list[np.ndarray] = field(default_factory=list)
    q_values: list[float] = field(default_factory=list)  # per step: the mean over actions of Q(s_t, a)


def _select_rows(batch: tuple[np.ndarray, np.ndarray] | Any, car_index: int, num_cars: int) -> tuple[Any, Any]:
    images, floats = batch
    row = car_index if floats.shape[0] == num_cars else 0
    return (None if images is None else images[row].copy()), floats[row].copy()


class PolicyCollector:
    """What every collector has, whichever backend drives its cars: the config, the map cycle, the inference network
    with its weights pulled from the learner, the exploration schedules, and the race -> Rollout packing."""

    def __init__(self, spec: CollectorSpec, shared_weights: SharedWeights) -> None:
        from trackrl.agent.networks import build_network
        from trackrl.sim.observation import float_input_dim, float_inputs_mean, float_inputs_std

        self.spec = spec
        self.config: TrackRLConfig = config_from_dict(spec.config_data, "config snapshot")
        torch.set_num_threads(self.config.performance.collector_torch_threads)
        torch.manual_seed(spec.seed)
        self.rng = np.random.default_rng(spec.seed)
        self.shared_weights = shared_weights
        self.cycle = MapCycle(self.config.map_cycle, spec.map_cycle_position)
        env_config = self.config.environment
        dim = float_input_dim(env_config)
        self.device = torch.device(spec.inference_device)
        network = build_network(self.config, dim, float_inputs_mean(env_config), float_inputs_std(env_config))
        self.network = network.to(self.device)
        self.network.eval()
        self.weights_version = shared_weights.pull_into(self.network, last_version=-1)
        self.frames_played = spec.frames_at_start

    def select(
        self, images: np.ndarray | None, floats: np.ndarray, greedy: bool, schedules: dict[str, Any]
    ) -> tuple[np.ndarray, np.ndarray]:
        """(actions (B,), Q-values (B, A)) for a batch of observations."""
        from trackrl.agent.policy import select_actions

        return select_actions(
            self.network,
            images,
            floats,
            n_quantiles=self.config.nn.iqn_k,
            epsilon=float(schedules["epsilon"]),
            epsilon_boltzmann=float(schedules["epsilon_boltzmann"]),
            tau_epsilon_boltzmann=self.config.exploration.tau_epsilon_boltzmann,
            rng=self.rng,
            greedy=greedy,
            device=self.device,
        )

    def pack_rollout(self, race: CarRace, finished: bool, race_time_ms: int) -> Rollout:
        images = np.stack(race.images) if self.config.nn.use_image else None
        return Rollout(
            collector_id=self.spec.collector_id,
            map_cycle_position=race.cycle_position,
            slot=race.slot,
            images=images,
            floats=np.stack(race.floats).astype(np.float32),
            actions=np.asarray(race.actions, dtype=np.int64),
            rewards=np.asarray(race.rewards, dtype=np.float32),
            positions_m=np.stack(race.positions_m).astype(np.float32),
            finished=bool(finished),
            terminated=bool(finished),
            race_time_ms=int(race_time_ms),
            mean_q=float(np.mean(race.q_values)) if race.q_values else float("nan"),
            weights_version=self.weights_version,
        )

    def refresh_weights(self) -> None:
        self.weights_version = self.shared_weights.pull_into(self.network, self.weights_version)
        self.frames_played = max(self.frames_played, self.shared_weights.read_frames())


class Collector(PolicyCollector):
    """The simulator's collector: its state and loop, kept out of the process entry point (tested in-process)."""

    def __init__(self, spec: CollectorSpec, shared_weights: SharedWeights) -> None:
        from trackrl.sim.env import VecRaceEnv
        from trackrl.sim.track import load_track

        super().__init__(spec, shared_weights)
        self.num_cars = self.config.performance.cars_per_collector
        env_config = self.config.environment
        self.envs = {}
        for env_number, (map_name, road_width_m) in enumerate(self.cycle.tracks()):
            track = load_track(map_name, road_width_m)
            self.envs[(map_name, road_width_m)] = VecRaceEnv(
                track,
                self.num_cars,
                env_config=env_config,
                rewards_config=self.config.rewards,
                image_size_px=(self.config.nn.image_height_px, self.config.nn.image_width_px),
                render_images=self.config.nn.use_image,
                seed=spec.seed * 1009 + env_number,
            )
        if len(self.envs) > 1:  # each car races on one environment at a time; _start_race resets it there
            for env in self.envs.values():
                env.park(np.arange(self.num_cars))
        self.races: list[CarRace | None] = [None] * self.num_cars
        self.observations: dict[int, tuple[Any, np.ndarray]] = {}

    def _start_race(self, car_index: int) -> None:
        slot = self.cycle.next_slot()
        env_key = (slot.map_name, slot.road_width_m)
        env = self.envs[env_key]
        image, floats = _select_rows(env.reset(np.array([car_index])), car_index, self.num_cars)
        race = CarRace(slot, env_key, self.cycle.position)
        race.positions_m.append(np.asarray(env.track.centerline_m[0], dtype=np.float32))  # reset = start line
        self.races[car_index] = race
        self.observations[car_index] = (image, floats)

    def _act(self, car_indices: list[int], greedy: bool, schedules: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        use_image = self.config.nn.use_image
        images = np.stack([self.observations[c][0] for c in car_indices]) if use_image else None
        floats = np.stack([self.observations[c][1] for c in car_indices])
        return self.select(images, floats, greedy, schedules)

    def _finish_race(self, car_index: int, finished: bool, race_time_ms: int) -> Rollout:
        race = self.races[car_index]
        assert race is not None
        return self.pack_rollout(race, finished, race_time_ms)

    def step(self) -> list[Rollout]:
        """One action for every car (one batched inference per acting mode); return the races that ended."""
        for car_index in range(self.num_cars):
            if self.races[car_index] is None:
                self._start_race(car_index)
        schedules = current_schedule_values(self.config, self.frames_played)
        for car_index in range(self.num_cars):
            race = self.races[car_index]
            image, floats = self.observations[car_index]
            race.images.append(image)
            race.floats.append(floats)
        chosen_actions = np.zeros(self.num_cars, dtype=np.int64)
        for greedy in (False, True):
            cars = [c for c in range(self.num_cars) if self.races[c].slot.is_exploration != greedy]
            if not cars:
                continue
            actions, q_values = self._act(cars, greedy, schedules)
            actions = np.asarray(actions, dtype=np.int64)
            q_values = np.asarray(q_values, dtype=np.float64)
            for row, car_index in enumerate(cars):
                chosen_actions[car_index] = actions[row]
                # Linesight logs np.mean(rollout_results["q_values"]) over the (steps, actions) array of a race.
                self.races[car_index].q_values.append(float(q_values[row].mean()))
        ended: list[Rollout] = []
        # Which cars race on which environment is fixed before any race ends: a car whose race ends below leaves its
        # slot empty (None) until the next step starts its next race, possibly on another map.
        cars_by_env = {key: [c for c in range(self.num_cars) if self.races[c].env_key == key] for key in self.envs}
        for env_key, cars in cars_by_env.items():
            if not cars:
                continue
            result = self.envs[env_key].step(chosen_actions)
            done = np.asarray(result.terminated) | np.asarray(result.truncated)
            for car_index in cars:
                race = self.races[car_index]
                race.actions.append(int(chosen_actions[car_index]))
                race.rewards.append(float(result.rewards[car_index]))
                race.positions_m.append(np.asarray(result.positions_m[car_index], dtype=np.float32))
                # Copy the row: a view would keep the step's whole (num_cars, ...) array alive in the race's list.
                image = result.images[car_index].copy() if self.config.nn.use_image else None
                floats = result.floats[car_index].copy()
                self.observations[car_index] = (image, floats)
                if done[car_index]:
                    race.images.append(image)
                    race.floats.append(floats)
                    ended.append(
                        self._finish_race(car_index, bool(result.finished[car_index]), result.race_time_ms[car_index])
                    )
                    self.races[car_index] = None
        self.frames_played += self.num_cars
        return ended

def run_collector(
    spec: CollectorSpec, rollout_queue: RolloutChannel, shared_weights: SharedWeights, stop_event: Any
) -> None:
    """Process entry point: step, send finished races, refresh weights; exit on stop or when the learner is gone."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole process group; the learner handles it
    if spec.config_data.get("environment", {}).get("backend") == "game":
        from trackrl.train.game_collector import run_game_collector

        run_game_collector(spec, rollout_queue, shared_weights, stop_event)
        return
    collector = Collector(spec, shared_weights)
    refresh_every = collector.config.performance.update_inference_network_every_n_actions
    actions_since_refresh = 0
    try:
        while not stop_event.is_set() and parent_is_alive():
            for rollout in collector.step():
                if not put_until_stopped(rollout_queue, rollout, stop_event):
                    return
            rollout_queue.beat()
            actions_since_refresh += 1
            if actions_since_refresh >= refresh_every:
                collector.refresh_weights()
                actions_since_refresh = 0
    finally:
        rollout_queue.cancel_join_thread()  # never hang at exit on rollouts the learner will not read
        if not parent_is_alive():
            rollout_queue.remove_spool()

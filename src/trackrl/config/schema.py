"""The configuration schema: one pydantic model per section, sections as in Linesight/rulka.

Every model forbids unknown keys so that a typo fails loudly instead of silently using a default, refuses NaN/inf
in every float (schedules included) and refuses a boolean where a number is expected (``batch_size: true`` would
otherwise be read as 1).
Frames = environment steps (actions), the global step of every schedule and TensorBoard tag.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from trackrl.errors import UserError


def _check_schedule_x(points: list) -> list:
    if len(points) == 0:
        raise ValueError("schedule is empty; give at least [[0, value]]")
    if points[0][0] != 0:
        raise ValueError(f"schedule must start at frame 0, it starts at {points[0][0]}")
    for (x0, _), (x1, _) in itertools.pairwise(points):
        if x1 <= x0:
            raise ValueError(f"schedule frames must be strictly increasing, got {x0} then {x1}")
    return points


def _check_values(points: list, ok: Any, requirement: str) -> list:
    for x, value in points:
        if not ok(value):
            raise ValueError(f"value {value} at frame {x:g} {requirement}")
    return points


# [[frames, value], ...]; see trackrl.config.schedules for the interpolation kinds.
FloatSchedule = Annotated[list[tuple[float, float]], AfterValidator(_check_schedule_x)]
IntSchedule = Annotated[list[tuple[float, int]], AfterValidator(_check_schedule_x)]
StrSchedule = Annotated[list[tuple[float, str]], AfterValidator(_check_schedule_x)]


class RunNameError(UserError, ValueError):
    """A run name that is not one plain folder name."""


def _check_plain_name(name: str) -> str:
    """A run name becomes a folder under save/ and tensorboard/: one plain path component, nothing else."""
    if name == "":
        raise ValueError("must not be empty (it names the run's folders under save/ and tensorboard/)")
    if "/" in name or "\\" in name or "\0" in name:
        raise ValueError("must be a plain name, without path separators")
    if name.startswith("."):
        raise ValueError("must not start with '.' (no '..', no hidden folders)")
    if name != name.strip():
        raise ValueError("must not start or end with whitespace")
    return name


def _check_suffix(suffix: str) -> str:
    """A TensorBoard suffix is appended to the run name: "" or a plain name fragment (e.g. "_2")."""
    if "/" in suffix or "\\" in suffix or "\0" in suffix or ".." in suffix:
        raise ValueError(f"tensorboard suffix {suffix!r} must be a plain name fragment (no separators, no '..')")
    return suffix


RunName = Annotated[str, AfterValidator(_check_plain_name)]


def check_run_name(name: str, option: str = "run_name") -> str:
    """The schema's run-name rule for names given elsewhere (``--run-name``); raises ValueError naming ``option``."""
    try:
        return _check_plain_name(name)
    except ValueError as error:
        raise RunNameError(f"{option} {name!r}: {error}") from None


def _contains_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return True
    return isinstance(value, list | tuple) and any(_contains_bool(v) for v in value)


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _strict_booleans(cls, value: Any, info: ValidationInfo) -> Any:
        """pydantic reads true as 1 for an int field and 1 as true for a bool one: in a YAML file either is a slip."""
        field = cls.model_fields.get(info.field_name or "")
        if field is None:
            return value
        if field.annotation is bool and not isinstance(value, bool):
            raise ValueError("expected true or false")
        if field.annotation is not bool and _contains_bool(value):
            raise ValueError("expected a number or text, got a boolean (true/false)")
        return value


class EnvironmentConfig(Section):
    tm_engine_step_per_action: int = Field(5, ge=1, description="10 ms engine ticks per action")
    cutoff_rollout_if_race_not_finished_within_duration_ms: int = Field(300_000, gt=0)
    cutoff_rollout_if_no_vcp_passed_within_duration_ms: int = Field(2_000, gt=0)
    n_prev_actions_in_inputs: int = Field(5, ge=0)
    n_zone_centers_in_inputs: int = Field(40, ge=1)
    zone_spacing_m: float = Field(10.0, gt=0, description="distance between virtual checkpoints (zones)")
    max_distance_to_finish_m: float = Field(700.0, gt=0)
    default_road_width_m: float = Field(16.0, gt=0)
    backend: Literal["sim", "game"] = Field(
        "sim", description="sim: the built-in simulator; game: one game instance per collector (section game)"
    )
    # obs184: the (x − mean) / std constants of the float vector (sim/observation.py). "linesight": Linesight's
    # state_normalization.py (measured on game maps); "simulator": the same except velocity, angular velocity and zone
    # centres, measured on the simulator's tracks. The network stores them, so a checkpoint keeps its own.
    float_normalization: Literal["linesight", "simulator"] = "simulator"


class CnnConfig(Section):
    use_impala_cnn: bool = False
    impala_model_size: int = Field(2, ge=1, description="IMPALA width multiplier (BTR uses 2)")
    use_adaptive_maxpool: bool = False
    adaptive_maxpool_size: int = Field(6, ge=1)
    use_spectral_norm: bool = False


class VisConfig(Section):
    cnn: CnnConfig = CnnConfig()


class NnConfig(Section):
    use_image: bool = Field(True, description="False = float-only agent (no image head)")
    image_height_px: int = Field(64, ge=16)
    image_width_px: int = Field(64, ge=16)
    float_hidden_dim: int = Field(256, ge=1)
    dense_hidden_dimension: int = Field(1024, ge=1)
    iqn_embedding_dimension: int = Field(64, ge=1)
    iqn_n: int = Field(8, ge=1, description="quantiles sampled per state for training")
    iqn_k: int = Field(
        32, ge=1, description="quantiles sampled per state for acting, and for choosing a* in the IQN/DDQN target"
    )
    iqn_kappa: float = Field(5e-3, gt=0)
    use_dueling: bool = True
    vis: VisConfig = VisConfig()


class BtrConfig(Section):
    use_munchausen: bool = False
    munchausen_alpha: float = Field(0.9, ge=0)
    munchausen_entropy_tau: float = Field(0.03, gt=0)
    munchausen_lo: float = Field(-1.0, le=0)
    use_layer_norm: bool = False
    use_noisy_linear: bool = False
    noisy_sigma0: float = Field(0.5, gt=0)


class TrainingConfig(Section):
    batch_size: int = Field(512, ge=1)
    n_steps: int = Field(3, ge=1)
    use_ddqn: bool = False
    clip_grad_norm: float = Field(30.0, gt=0)
    weight_decay_lr_ratio: float = Field(1 / 50, ge=0, description="decoupled weight decay = ratio * lr")
    adam_epsilon: float = Field(1e-4, gt=0)
    adam_beta1: float = Field(0.9, ge=0, lt=1)
    adam_beta2: float = Field(0.999, ge=0, lt=1)
    lr_schedule: FloatSchedule = [(0, 1e-3), (3_000_000, 5e-5), (12_000_000, 5e-5), (15_000_000, 1e-5)]
    gamma_schedule: FloatSchedule = [(0, 0.999), (1_500_000, 0.999), (2_500_000, 1.0)]
    target_update: Literal["soft", "hard"] = "soft"
    soft_update_tau: float = Field(0.02, gt=0, le=1)
    hard_update_period_batches: int = Field(500, ge=1)
    number_times_single_memory_is_used_before_discard: float = Field(
        32, gt=0, description="replay ratio: transitions learned per transition collected"
    )
    temporal_mini_race_duration_ms: int = Field(
        7_000, ge=0, description="Linesight mini-race horizon; 0 disables it (returns over the whole race)"
    )
    checkpoint_every_minutes: float = Field(5.0, gt=0)
    tensorboard_suffix_schedule: StrSchedule = [(0, "")]

    @field_validator("lr_schedule")
    @classmethod
    def _check_lr(cls, points: list) -> list:
        return _check_values(points, lambda lr: lr > 0, "must be > 0 (a learning rate)")

    @field_validator("gamma_schedule")
    @classmethod
    def _check_gamma(cls, points: list) -> list:
        return _check_values(points, lambda gamma: 0.0 <= gamma <= 1.0, "is outside [0, 1]")

    @field_validator("tensorboard_suffix_schedule")
    @classmethod
    def _check_suffixes(cls, points: list) -> list:
        for _, suffix in points:
            _check_suffix(suffix)
        return points


class MemoryConfig(Section):
    memory_size_schedule: IntSchedule = [(0, 50_000), (5_000_000, 100_000), (7_000_000, 200_000)]
    min_transitions_to_learn: int = Field(20_000, ge=1)
    use_prioritized_replay: bool = False
    prio_alpha: float = Field(0.2, ge=0)
    prio_beta: float = Field(0.4, ge=0, le=1, description="importance-sampling exponent (annealing: none)")
    # ε is added to BTR's priority Σ_i mean_j |δ_ij| (N = 8 quantiles): a transition whose target is off by 0.03 (about
    # one step's reward) has priority ~0.24, so ε = 1e-3 is ~0.4% of it: it only keeps p > 0.
    prio_epsilon: float = Field(1e-3, gt=0)
    min_horizon_to_update_priority_actions: int = Field(
        40,
        ge=0,
        description="only a sample with more mini-race steps left than this updates its priority (nearer the horizon "
        "its target is cut short); >= training.n_steps skips every cut target, 0 = always update. Linesight sets its "
        "own key to the mini-race time limit D - 40 (100 actions for 7 s), which is this 40",
    )

    @field_validator("memory_size_schedule")
    @classmethod
    def _check_sizes(cls, points: list) -> list:
        return _check_values(points, lambda size: size >= 1, "must be >= 1 (transitions the buffer holds)")

    @model_validator(mode="after")
    def _can_learn(self) -> MemoryConfig:
        # Learning waits for min_transitions_to_learn stored transitions: a smaller buffer never gets there.
        for x, size in self.memory_size_schedule:
            if size < self.min_transitions_to_learn:
                raise ValueError(
                    f"memory_size_schedule value {size} at frame {x:g} is below min_transitions_to_learn "
                    f"({self.min_transitions_to_learn}): a buffer that small never holds enough to learn"
                )
        return self


class ExplorationConfig(Section):
    epsilon_schedule: FloatSchedule = [(0, 1.0), (50_000, 1.0), (300_000, 0.1), (3_000_000, 0.03)]
    epsilon_boltzmann_schedule: FloatSchedule = [(0, 0.15), (3_000_000, 0.03)]
    tau_epsilon_boltzmann: float = Field(0.01, ge=0, description="std of the Gaussian noise added to Q")

    @field_validator("epsilon_schedule", "epsilon_boltzmann_schedule")
    @classmethod
    def _check_probability(cls, points: list) -> list:
        return _check_values(points, lambda p: 0.0 <= p <= 1.0, "is outside [0, 1] (a probability)")


class RewardsConfig(Section):
    constant_reward_per_ms: float = -0.0012
    reward_per_m_advanced_along_centerline: float = 0.01
    # Optional potential-based shaping: phi(s) = coef * clamp(distance to current zone centre, min, max).
    shaped_reward_dist_to_cur_vcp: float = 0.0
    shaped_reward_min_dist_to_cur_vcp: float = Field(2.0, ge=0)
    shaped_reward_max_dist_to_cur_vcp: float = Field(25.0, ge=0)


class MapCycleEntry(Section):
    map: str = Field(description="built-in track name or path to a Linesight .npy line (its NAME.track.yaml side file, "
                     "if any, gives the road width and the line's offset in the road)")
    game_map_path: str | None = Field(
        None, description="game backend: the map as typed for TMInterface's `map` command (e.g. "
        "\"My Challenges/A01.Challenge.Gbx\", relative to <trackmania_base_path>/Tracks/Challenges); "
        "None = `map <map>` (what the simulator launcher loads)",
    )
    road_width_m: float | None = Field(None, gt=0)
    is_exploration: bool = True
    fill_buffer: bool = True
    repeat: int = Field(1, ge=1)

    @field_validator("map")
    @classmethod
    def _check_track_file(cls, map_name: str) -> str:
        # Built-in names are checked by the simulator (trackrl.sim.track), which this package must not import.
        if map_name.endswith(".npy") or "/" in map_name:
            if not Path(map_name).is_file():
                raise ValueError(f"track file {map_name} does not exist")
        elif map_name == "":
            raise ValueError("must name a built-in track or a .npy centre line")
        return map_name


class MapCycleConfig(Section):
    entries: list[MapCycleEntry] = [
        MapCycleEntry(map="a01", is_exploration=True, fill_buffer=True, repeat=64),
        MapCycleEntry(map="a01", is_exploration=False, fill_buffer=True, repeat=1),
    ]

    @model_validator(mode="after")
    def _not_empty(self) -> MapCycleConfig:
        if not self.entries:
            raise ValueError("map_cycle.entries is empty; give at least one map")
        return self


class PerformanceConfig(Section):
    gpu_collectors_count: int = Field(1, ge=1, description="collector processes (name kept from Linesight)")
    cars_per_collector: int = Field(8, ge=1, description="cars stepped together in one VecRaceEnv")
    update_inference_network_every_n_actions: int = Field(20, ge=1)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    collector_device: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="collectors' inference device; auto = the learner's device when it is a GPU, else cpu"
    )
    learner_torch_threads: int = Field(1, ge=1)
    collector_torch_threads: int = Field(1, ge=1)
    rollout_queue_size: int = Field(16, ge=1)


# ---- game backend (issue 16): Linesight's key names and defaults (GAME_BRIDGE.md §8) --------------------------------
class GameConfig(Section):
    """One game instance per collector, on port base_tmi_port + collector index (loopback only)."""

    launcher: Literal["auto", "simulator", "tmloader", "launch_script", "external"] = Field(
        "auto", description="how games start: simulator = `trackrl tmi-serve` subprocesses (no game needed); "
        "tmloader = Windows TMLoader profile; launch_script = linux_launch_game_path called with the port; "
        "external = already running, connect only; auto = tmloader on Windows, launch_script elsewhere",
    )
    base_tmi_port: int = Field(8478, ge=1024, le=65535)
    game_reboot_interval: float = Field(43_200, gt=0, description="seconds of game uptime before a relaunch")
    running_speed: float = Field(80.0, gt=0, le=200, description="game speed while driving (also the countdown's)")
    game_camera_number: int = Field(2, ge=0, le=9)
    timeout_during_run_ms: int = Field(10_100, ge=100, description="C_SET_TIMEOUT while racing")
    timeout_between_runs_ms: int = Field(600_000_000, ge=100, description="C_SET_TIMEOUT while frozen between races")
    tmi_protection_timeout_s: float = Field(500.0, gt=0, description="Python-side bound on every read and write")
    game_connect_timeout_s: float = Field(300.0, gt=0, description="launch to first connection (ours, not Linesight's)")
    username: str = Field("tmnf_account_username", description="TMNF account, for `set autologin`")
    target_python_link_path: str = Field(
        "~/Documents/TMInterface/Plugins/trackrl_link.as",
        description="the plugin TMInterface must load: trackrl's (`trackrl game install-plugin` puts it here) or "
        "Linesight's Python_Link.as (wire-compatible)",
    )
    trackmania_base_path: str = "~/Documents/TrackMania"
    linux_launch_game_path: str = Field(
        "path_to_be_filled_only_if_on_linux", description="script run as `<script> <port>` that starts one game"
    )
    windows_TMLoader_path: str = "~/AppData/Local/TMLoader/TMLoader.exe"  # Linesight's key names, capitals kept
    windows_TMLoader_profile_name: str = "default"
    simulator_checkpoints: int = Field(3, ge=0, description="simulator launcher: checkpoints before the finish")

    def resolved_launcher(self, platform: str) -> str:
        if self.launcher != "auto":
            return self.launcher
        return "tmloader" if platform == "win32" else "launch_script"


class TrackRLConfig(Section):
    seed: int = Field(0, ge=0, lt=2**63)
    run_name: RunName = "run"
    global_schedule_speed: float = Field(1.0, gt=0)
    environment: EnvironmentConfig = EnvironmentConfig()
    nn: NnConfig = NnConfig()
    btr: BtrConfig = BtrConfig()
    training: TrainingConfig = TrainingConfig()
    memory: MemoryConfig = MemoryConfig()
    exploration: ExplorationConfig = ExplorationConfig()
    rewards: RewardsConfig = RewardsConfig()
    map_cycle: MapCycleConfig = MapCycleConfig()
    performance: PerformanceConfig = PerformanceConfig()
    game: GameConfig = GameConfig()

    @model_validator(mode="after")
    def _check_conflicts(self) -> TrackRLConfig:
        if self.btr.use_munchausen and self.training.use_ddqn:
            raise ValueError(
                "btr.use_munchausen and training.use_ddqn are both true, but they conflict: the Munchausen "
                "target is a softmax expectation over next actions with no argmax for Double DQN to "
                "decouple (BTR turns DDQN off). Turn one of them off."
            )
        if self.environment.backend == "game":
            self._check_game_backend()
        return self

    def _check_game_backend(self) -> None:
        if self.performance.cars_per_collector != 1:
            raise ValueError(
                f"performance.cars_per_collector is {self.performance.cars_per_collector}, but on the game backend "
                "each collector drives the one car of its game instance: set it to 1 (and gpu_collectors_count to "
                "the number of game instances)"
            )
        last_port = self.game.base_tmi_port + self.performance.gpu_collectors_count - 1
        if last_port > 65535:
            raise ValueError(f"game.base_tmi_port {self.game.base_tmi_port} + {self.performance.gpu_collectors_count} "
                             f"collectors runs past port 65535")  # fmt: skip

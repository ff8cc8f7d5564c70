"""The built-in simulator behaving as TmForever + TMInterface 2 would inside a race (no sockets: see server.py).

What maps to what:
- race clock: ticks of 10 ms; `give_up` restarts with a COUNTDOWN_MS countdown (negative race times, the car
  held at the start), then the simulator's own tick counter is the race time. After the finish the race time
  stays at the finish time while the tick time goes on (the plugin's `TickTime > RaceTime` case).
- checkpoints: `n_checkpoints` planes across the road, evenly spaced along the centre line, then the finish;
  crossing one is reported at its exact tick (a chunk that crossed it is replayed tick by tick).
- state blobs: the documented fields (GAME_BRIDGE.md §6) hold the car's state in float32; the exact float64
  simulator state rides in the opaque `dyna.rest` bytes, so that a rewind reproduces the future exactly. A blob
  without that payload (e.g. one from the real game) is refused with a clear error. The checkpoint times of the
  blob are honoured, so Linesight's "last checkpoint time = -1" trick un-finishes a finished race.
- the car body stays level (the simulator has no pitch or roll), all four wheels share its sliding flag (sliding or wall
  contact since the last run step, sim/observation.py's SIM_SLIDING_RULE) and touch the ground; gear and rpm come
  from `gear_and_rpm` (the simulator's gearbox, sim/car.py), the gearbox state is 0.
- inputs: left + right together cancel (the simulator steers right - left); an input set at tick t applies from
  tick t + 10 ms on, like the simulator's action steps.
"""

from __future__ import annotations

import bisect
import math
import struct
import zlib

import numba
import numpy as np

from trackrl.config import EnvironmentConfig
from trackrl.game.blob import (
    DYNA_REST_OFFSET,
    DYNA_REST_SIZE,
    HAS_DYNA,
    HAS_PLAYER_INFO,
    HAS_SCENE_MOBIL,
    HAS_SIMULATION_WHEELS,
    HAS_TIMERS,
    BlobError,
    BlobWriter,
    SimState,
    WheelStates,
    parse_state,
)
from trackrl.sim.actions import ACTIONS
from trackrl.sim.camera import CameraRays, TrackTexture, build_track_texture, camera_rays, render_images
from trackrl.sim.car import S_VX, S_VZ, TICK_MS, engine_rpm, gear_of_state
from trackrl.sim.env import (
    STATE_HEADING,
    STATE_HEIGHT,
    STATE_PROGRESS,
    STATE_VX,
    STATE_VZ,
    STATE_X,
    STATE_YAW_RATE,
    STATE_Z,
    StepResult,
    VecRaceEnv,
)
from trackrl.sim.track import Track

COUNTDOWN_MS = 3000  # ours: the game's countdown length is not in GAME_BRIDGE.md; Linesight only needs t < 0
NEVER_MS = 1_000_000_000  # the game never cuts a race off; the client does
ROAD_MATERIAL_ID = 16  # Asphalt (physics group 0)
MAX_METRES_PER_TICK = 3.0  # 300 m/s (drag caps the car below 200 m/s even downhill): a chunk that starts further
# than this x ticks before a checkpoint cannot cross it
BLOB_FLAGS = HAS_TIMERS | HAS_DYNA | HAS_SCENE_MOBIL | HAS_SIMULATION_WHEELS | HAS_PLAYER_INFO
START_GEAR, START_RPM = 1, 0.0  # standing at the start line: first gear, engine at rest
_MAGIC = b"trackrl-sim-v1\x00\x00"
_HEADER = struct.Struct("<16sIiiBB4BI")  # magic, track id, race time, tick time, finished, prevented, inputs, n


def track_id(track: Track) -> int:
    """A checksum of the centre line: a blob from another track is refused on rewind."""
    return zlib.crc32(track.centerline_m.tobytes()) ^ zlib.crc32(str(track.road_width_m).encode())


class SimulatedGame:
    def __init__(self, track: Track, n_checkpoints: int = 3) -> None:
        if n_checkpoints < 0:
            raise ValueError(f"n_checkpoints must be >= 0, got {n_checkpoints}")
        self.n_checkpoints = n_checkpoints
        self._action_of_keys = {tuple(bool(k) for k in keys): i for i, keys in enumerate(ACTIONS)}
        self._action = np.zeros(1, dtype=np.int64)
        self._render_rows = np.zeros(1, dtype=np.int64)  # the one car, row 0 of its state
        self.load_track(track)

    # ---- race control -----------------------------------------------------------------------------------------
    def load_track(self, track: Track) -> None:
        """`map ...`: a new track, the race restarted with the countdown."""
        self.track = track
        self.track_id = track_id(track)
        self.checkpoint_distances_m = track.length_m * np.arange(1, self.n_checkpoints + 1) / (self.n_checkpoints + 1)
        delta = np.diff(track.centerline_m, axis=0)
        planar = np.hypot(delta[:, 0], delta[:, 2])
        self._grade = (delta[:, 1] / planar).tolist()  # tan θ per segment, for the vertical speed
        self._tangent_x, self._tangent_z = (delta[:, 0] / planar).tolist(), (delta[:, 2] / planar).tolist()
        self._cumulative_m = track.cumulative_distance_m.tolist()
        self._writer = BlobWriter(self._template_state())
        self._envs: dict[int, VecRaceEnv] = {1: self._new_env(1)}
        self._env = self._envs[1]
        self._car_params = self._env.car_params.as_array()  # the same car in every env
        self._texture: TrackTexture | None = None
        self._rays: dict[tuple[int, int], CameraRays] = {}
        self._gray: dict[tuple[int, int], np.ndarray] = {}
        self.give_up()

    def give_up(self) -> None:
        """Restart from the countdown: the car at the start, inputs released, no checkpoint passed."""
        self._env.reset()
        self.race_time_ms = -COUNTDOWN_MS
        self.tick_time_ms = -COUNTDOWN_MS
        self.finished = False
        self.finish_prevented = False
        self.cp_times_ms = np.full(self.n_checkpoints + 1, -1, dtype=np.int32)
        self._checkpoints_passed = 0
        self._cp_times_changed = True  # the blob writer rewrites the checkpoint arrays only after a change
        self.inputs = (False, False, False, False)  # left, right, accelerate, brake
        self._action[0] = self._action_of_keys[(False, False, False, False)]
        self.input_events: list[tuple[int, str, bool]] = []
        self._reset_sliding_latch(False)

    def _reset_sliding_latch(self, sliding: bool) -> None:
        # The blob's sliding flag covers every tick since the last run step, as the simulator's own flag covers every
        # tick of its action: a step split at a checkpoint crossing keeps the flag of its first part.
        self._sliding_latched = sliding
        self._latch_open = False

    def set_inputs(self, left: bool, right: bool, accelerate: bool, brake: bool) -> None:
        new = (left, right, accelerate, brake)
        for name, before, after in zip(("left", "right", "up", "down"), self.inputs, new, strict=True):
            if before != after:
                self.input_events.append((max(self.race_time_ms, 0), name, after))
        self.inputs = new
        steer_left, steer_right = (left and not right), (right and not left)  # both keys cancel
        self._action[0] = self._action_of_keys[(accelerate, brake, steer_left, steer_right)]

    def prevent_finish(self) -> None:
        self.finish_prevented = True

    @property
    def checkpoints_passed(self) -> int:
        return self._checkpoints_passed

    @property
    def race_finished(self) -> bool:
        """The plugin's C_RACE_FINISHED answer: PlayerInfo.RaceFinished or TickTime > RaceTime."""
        return (self.finished and not self.finish_prevented) or self.tick_time_ms > self.race_time_ms

    def inputs_text(self) -> str:
        """The input changes of this race as TMInterface script lines `<ms> press|rel <key>`."""
        return "".join(f"{t} {'press' if down else 'rel'} {key}\n" for t, key, down in self.input_events)

    # ---- time -------------------------------------------------------------------------------------------------
    def ticks_until_run_step(self, period_ms: int) -> int:
        """Ticks until the next tick the plugin reports: race time % period == 0, or every tick after the finish."""
        if self.finished:
            return 1
        if period_ms % TICK_MS == 0 and self.race_time_ms % TICK_MS == 0:  # the usual case, without a search
            period_ticks = period_ms // TICK_MS
            return period_ticks - (self.race_time_ms // TICK_MS) % period_ticks
        for ticks in range(1, max(period_ms, TICK_MS) + 1):
            if (self.race_time_ms + ticks * TICK_MS) % period_ms == 0:
                return ticks
        return 1

    def run_step_due(self, period_ms: int) -> bool:
        return self.race_time_ms % period_ms == 0 or self.tick_time_ms > self.race_time_ms

    def advance(self, max_ticks: int) -> tuple[int, bool]:
        """Run up to max_ticks ticks with the current inputs; stop at the tick a checkpoint or the finish is crossed.

        Returns (ticks run, whether a checkpoint or the finish was crossed at the last of them).
        """
        if self.race_time_ms < 0:  # countdown: the clock runs, the car waits at the start
            ticks = min(max_ticks, -self.race_time_ms // TICK_MS)
            self.race_time_ms += ticks * TICK_MS
            self.tick_time_ms = self.race_time_ms
            return ticks, False
        if self.finished:
            self.tick_time_ms += max_ticks * TICK_MS
            return max_ticks, False
        if not self._latch_open:
            self._sliding_latched = False
        ticks, crossed = self._advance_car(max_ticks)
        self._latch_open = ticks < max_ticks  # stopped at a crossing inside the action: its next ticks follow
        return ticks, crossed

    def _advance_car(self, max_ticks: int) -> tuple[int, bool]:
        next_cp = self.checkpoints_passed
        cp_distance_m = self.checkpoint_distances_m[next_cp] if next_cp < self.n_checkpoints else np.inf
        self._switch_env(max_ticks)
        if max_ticks == 1 or self._env.progress_m[0] + MAX_METRES_PER_TICK * max_ticks < cp_distance_m:
            result = self._step()  # the crossing is out of reach in this chunk
            return max_ticks, self._record_crossing(result, cp_distance_m)
        # Near a checkpoint: run the chunk, and only if it crossed, go back and find the crossing's tick.
        before = self._env.snapshot_car(0), self.race_time_ms, self._sliding_latched
        result = self._step()
        if not self._crossed(result, cp_distance_m):
            return max_ticks, False
        self._env.restore_car(0, before[0])
        self.race_time_ms = self.tick_time_ms = before[1]
        self._sliding_latched = before[2]
        return self._advance_tick_by_tick(max_ticks, cp_distance_m)

    def _advance_tick_by_tick(self, max_ticks: int, cp_distance_m: float) -> tuple[int, bool]:
        self._switch_env(1)
        for ticks in range(1, max_ticks + 1):
            if self._record_crossing(self._step(), cp_distance_m):
                return ticks, True
        return max_ticks, False

    def _step(self) -> StepResult:
        result = self._env.step(self._action)
        self.race_time_ms = self.tick_time_ms = int(result.race_time_ms[0])
        self._sliding_latched |= bool(self._env.sliding[0] or self._env.wall_contact[0])  # SIM_SLIDING_RULE
        return result

    @staticmethod
    def _crossed(result: StepResult, cp_distance_m: float) -> bool:
        return bool(result.finished[0]) or result.progress_m[0] >= cp_distance_m

    def _record_crossing(self, result: StepResult, cp_distance_m: float) -> bool:
        """After a step: note the finish or the next checkpoint if the step crossed it."""
        if not self._crossed(result, cp_distance_m):
            return False
        if result.finished[0]:
            self.finished = True
            self.cp_times_ms[-1] = self.race_time_ms
        else:
            self.cp_times_ms[self._checkpoints_passed] = self.race_time_ms
        self._checkpoints_passed = int((self.cp_times_ms >= 0).sum())
        self._cp_times_changed = True
        return True

    def _template_state(self) -> SimState:
        """The fields that never change in this simulator: level body, four wheels on asphalt, no gearbox."""
        n = self.n_checkpoints + 1
        return SimState(
            race_time_ms=0,
            position_m=np.zeros(3, np.float32),
            rotation=np.eye(3, dtype=np.float32),
            quaternion=np.array([1, 0, 0, 0], np.float32),
            linear_velocity_mps=np.zeros(3, np.float32),
            angular_velocity_radps=np.zeros(3, np.float32),
            wheels=WheelStates(
                damper_absorb=np.zeros(4, dtype=np.float32),
                has_ground_contact=np.ones(4, dtype=bool),
                contact_material_id=np.full(4, ROAD_MATERIAL_ID, dtype=np.int32),
                is_sliding=np.zeros(4, dtype=bool),
            ),
            gear=START_GEAR,
            actual_rpm=START_RPM,
            gearbox_state=0,
            is_freewheeling=False,
            cp_states=np.zeros(n, dtype=bool),
            cp_times_ms=np.full(n, -1, dtype=np.int32),
            flags=BLOB_FLAGS,
        )

    def _new_env(self, ticks: int) -> VecRaceEnv:
        config = EnvironmentConfig(
            tm_engine_step_per_action=ticks,
            cutoff_rollout_if_race_not_finished_within_duration_ms=NEVER_MS,
            cutoff_rollout_if_no_vcp_passed_within_duration_ms=NEVER_MS,
        )
        return VecRaceEnv(self.track, 1, env_config=config, render_images=False)

    def _switch_env(self, ticks: int) -> None:
        """The car moves between envs that differ only in ticks per step (the simulator's step is one action)."""
        env = self._envs.get(ticks)
        if env is None:
            env = self._envs[ticks] = self._new_env(ticks)
        if env is not self._env:
            env.restore_car(0, self._env.snapshot_car(0))
            self._env = env

    # ---- state blobs ------------------------------------------------------------------------------------------
    def state(self) -> SimState:
        """The car's state as a typed SimState (parse_state(state_blob()) gives the same fields)."""
        return parse_state(self.state_blob())

    def _dyna(self) -> tuple[float, ...]:
        """quaternion, rotation (row-major), position, linear velocity, added velocity (0), angular velocity."""
        car = self._env.car_state(0).tolist()
        heading = car[STATE_HEADING]
        sin_h, cos_h = math.sin(heading), math.cos(heading)
        # Columns: the car's left, up and forward axes in the world (left = up × forward); a yaw about y.
        rotation = (sin_h, 0.0, cos_h, 0.0, 1.0, 0.0, -cos_h, 0.0, sin_h)
        half = (heading - math.pi / 2) / 2  # the same rotation as a quaternion (w, x, y, z): angle π/2 − ψ about y
        quaternion = (math.cos(half), 0.0, -math.sin(half), 0.0)
        x, y, z = car[STATE_X], car[STATE_HEIGHT], car[STATE_Z]
        vx, vz = car[STATE_VX], car[STATE_VZ]
        progress_m = car[STATE_PROGRESS]
        segment = min(max(bisect.bisect_left(self._cumulative_m, progress_m) - 1, 0), len(self._grade) - 1)
        along_mps = vx * self._tangent_x[segment] + vz * self._tangent_z[segment]
        vy = along_mps * self._grade[segment]  # the car follows the road's slope
        return (*quaternion, *rotation, x, y, z, vx, vy, vz, 0.0, 0.0, 0.0, 0.0, -car[STATE_YAW_RATE], 0.0)

    def gear_and_rpm(self) -> tuple[int, float]:
        """The car's gear (1..5, the simulator's gearbox) and engine rpm, for the blob."""
        state = self._env.car_state(0)
        speed_mps = math.hypot(state[S_VX], state[S_VZ])
        gear = gear_of_state(state)
        return gear, float(engine_rpm(speed_mps, gear, self._car_params))

    def state_blob(self) -> bytes:
        """C_GET_SIMULATION_STATE: the documented fields plus the exact simulator state in dyna.rest."""
        snapshot = self._env.snapshot_car(0)
        header = _HEADER.pack(
            _MAGIC, self.track_id, self.race_time_ms, self.tick_time_ms, self.finished, self.finish_prevented,
            *self.inputs, len(snapshot),
        )  # fmt: skip
        if len(header) + len(snapshot) > DYNA_REST_SIZE:
            raise RuntimeError(f"simulator snapshot ({len(snapshot)} bytes) does not fit dyna.rest ({DYNA_REST_SIZE})")
        gear, rpm = self.gear_and_rpm()
        return self._writer.write(
            race_time_ms=self.race_time_ms,
            time_ms=self.tick_time_ms + COUNTDOWN_MS,
            dyna=self._dyna(),
            sliding=self._sliding_latched,
            race_finished=self.finished and not self.finish_prevented,
            cp_times_ms=self._changed_cp_times(),
            opaque=header + snapshot,
            gear=gear,
            actual_rpm=rpm,
        )

    def _changed_cp_times(self) -> np.ndarray | None:
        """The checkpoint times if they changed since the last blob (the writer keeps them otherwise)."""
        if not self._cp_times_changed:
            return None
        self._cp_times_changed = False
        return self.cp_times_ms

    def rewind(self, blob: bytes) -> None:
        """C_REWIND_TO_STATE; BlobError (nothing changed) for a blob this server did not write for this track."""
        state = parse_state(blob)
        region = blob[DYNA_REST_OFFSET : DYNA_REST_OFFSET + DYNA_REST_SIZE]
        magic, blob_track, race_time, tick_time, finished, prevented, *rest = _HEADER.unpack_from(region)
        inputs, snapshot_size = rest[:4], rest[4]
        if magic != _MAGIC:
            raise BlobError("rewind: the state blob carries no trackrl simulator state (not written by tmi-serve)")
        if blob_track != self.track_id:
            raise BlobError("rewind: the state blob was saved on another track")
        if len(state.cp_times_ms) != self.n_checkpoints + 1:
            raise BlobError(f"rewind: the blob has {len(state.cp_times_ms)} checkpoint times, this track "
                            f"{self.n_checkpoints + 1}")  # fmt: skip
        try:
            self._env.restore_car(0, region[_HEADER.size : _HEADER.size + snapshot_size])
        except ValueError as error:
            raise BlobError(f"rewind: {error}") from error
        self.race_time_ms, self.tick_time_ms = race_time, tick_time
        self.finished = bool(finished)
        self.cp_times_ms = state.cp_times_ms.astype(np.int32)
        self._checkpoints_passed = int((self.cp_times_ms >= 0).sum())
        self._cp_times_changed = True
        # Linesight's trick: a finished race whose last checkpoint time was set to -1 counts as not finished.
        self.finish_prevented = bool(prevented) or (self.finished and self.cp_times_ms[-1] < 0)
        self.set_inputs(*(bool(k) for k in inputs))
        self._reset_sliding_latch(bool(state.wheels.is_sliding.any()))
        self.input_events = [event for event in self.input_events if event[0] <= max(race_time, 0)]

    # ---- frames -----------------------------------------------------------------------------------------------
    def render_gray(self, width: int, height: int, out: np.ndarray) -> None:
        """The chase camera at width x height into out (1, 1, H, W) uint8 (the camera renders any size directly)."""
        if self._texture is None:
            self._texture = build_track_texture(self.track)
        rays = self._rays.get((width, height))
        if rays is None:
            rays = self._rays[(width, height)] = camera_rays((height, width))
        render_images(out, self._render_rows, self._env.car_state(0)[None], rays, self._texture)

    def render_bgra(self, width: int, height: int, out: np.ndarray) -> None:
        """The camera as the game's BGRA frame into out (H, W) uint32 (each pixel's little-endian bytes B, G, R, A)."""
        gray = self._gray.get((width, height))
        if gray is None:
            gray = self._gray[(width, height)] = np.zeros((1, 1, height, width), np.uint8)
        self.render_gray(width, height, gray)
        gray_to_bgra(gray[0, 0], out)


@numba.njit(cache=True)
def gray_to_bgra(gray: np.ndarray, out: np.ndarray) -> None:
    """Gray g -> bytes (B, G, R, A) = (g, g, g, 255), the little-endian uint32 0xFF000000 + g * 0x010101."""
    for row in range(gray.shape[0]):
        for column in range(gray.shape[1]):
            out[row, column] = np.uint32(0xFF000000) | (np.uint32(gray[row, column]) * np.uint32(0x010101))

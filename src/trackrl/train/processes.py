"""Process machinery between the learner (main process) and the collector processes.

- ``SharedWeights``: a shared-memory copy of the online network's weights plus a version counter, published by the
  learner and pulled by collectors every ``update_inference_network_every_n_actions`` actions. It is a seqlock (the
  version is odd while the learner writes): a collector killed mid-read can never block the learner, which a lock
  held by a dead process would.
- ``RolloutChannel``: one bounded queue per collector (``rollout_queue_size``). A rollout is pickled to a file in a
  private spool folder (in /dev/shm where it has room, else on disk: ``choose_spool_roots``) and only its path
  travels through the queue: a pipe write under PIPE_BUF bytes is atomic, so a collector killed mid-send can never
  leave half a message that would block the learner's read forever (which a multi-megabyte rollout could).
- ``CollectorPool``: starts ``gpu_collectors_count`` collector processes ("spawn": safe with torch). A collector
  that dies is restarted with a fresh channel and the restart is reported. The learner only ever reads with
  ``get_nowait``: it never blocks on a dead collector.

The collector function is injected (``collector_fn(spec, channel, shared_weights, stop_event)``, a top-level
function so that "spawn" can pickle it); trackrl.train.collector.run_collector is the real one.
"""

from __future__ import annotations

import contextlib
import errno
import multiprocessing
import os
import pickle
import queue
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from trackrl.errors import UserError

MP_CONTEXT = "spawn"
CRASH_LOOP_RESTARTS = 5  # this many restarts of one collector ...
CRASH_LOOP_WINDOW_S = 60.0  # ... within this many seconds: it cannot start (bad track, import error): stop
STALL_WARN_S = 5.0  # a running collector whose heartbeat stands still this long is reported ...
STALL_RESTART_S = 20.0  # ... and after this long killed and restarted like a dead one (SIGSTOP, a wedged call)
STARTUP_TIMEOUT_S = 180.0  # before its first heartbeat (imports, first numba compile) a collector gets this long


class CollectorCrashLoopError(UserError):
    """A collector keeps dying right after it starts; restarting it again would loop forever."""


class SharedWeights:
    """Shared-memory weights with a seqlock version: even = stable, odd = being written."""

    def __init__(self, state_dict: dict[str, torch.Tensor]) -> None:
        self.tensors = {name: value.detach().to("cpu").clone().share_memory_() for name, value in state_dict.items()}
        self.version = torch.zeros(1, dtype=torch.int64).share_memory_()
        # The learner's frame count, so that collectors evaluate the exploration schedules at the global frame.
        self.frames = torch.zeros(1, dtype=torch.int64).share_memory_()
        self._scratch_tensors: dict[str, torch.Tensor] | None = None

    def publish_frames(self, frames: int) -> None:
        self.frames[0] = int(frames)

    def publish(self, state_dict: dict[str, torch.Tensor], frames: int) -> None:
        self.publish_frames(frames)
        self.version += 1  # odd: readers retry
        with torch.no_grad():
            for name, value in state_dict.items():
                self.tensors[name].copy_(value.detach())
        self.version += 1  # even: a consistent copy

    def read_frames(self) -> int:
        return int(self.frames.item())

    def read_version(self) -> int:
        return int(self.version.item())

    def pull_into(self, module: torch.nn.Module, last_version: int, max_tries: int = 50) -> int:
        """Load the shared weights into ``module`` if they changed since ``last_version``; return the version held.

        The weights are copied into a scratch buffer first and loaded only when the version did not move during the
        copy: a copy torn by a concurrent publish is never loaded, and after ``max_tries`` torn copies ``module``
        keeps the weights it had (and ``last_version``).
        """
        scratch = self._scratch()
        for _ in range(max_tries):
            before = self.read_version()
            if before == last_version:
                return last_version
            if before % 2 == 1:
                time.sleep(0.001)
                continue
            with torch.no_grad():
                for name, value in self.tensors.items():
                    scratch[name].copy_(value)
            if self.read_version() == before:
                module.load_state_dict(scratch, strict=True)
                return before
        return last_version  # the learner kept writing; keep the weights we had and try at the next refresh

    def _scratch(self) -> dict[str, torch.Tensor]:
        """Process-local buffers shaped like the shared tensors (made on first use, never shared)."""
        if self._scratch_tensors is None:
            self._scratch_tensors = {name: torch.empty_like(value) for name, value in self.tensors.items()}
        return self._scratch_tensors

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_scratch_tensors"] = None  # each process has its own scratch copy
        return state


SHM_DIR = "/dev/shm"
_DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


def free_bytes(folder: str | os.PathLike[str]) -> int:
    try:
        return int(shutil.disk_usage(folder).free)
    except OSError:
        return 0


def choose_spool_roots(bytes_needed: int, shm_dir: str = SHM_DIR) -> tuple[Path, Path | None, str | None]:
    """(root, disk fallback root or None, message or None): private folders (0700) for rollouts in flight.

    RAM-backed /dev/shm when it is there and has room for ``bytes_needed`` (every queue full of the longest races);
    otherwise the system temp folder on disk, with a message (Docker's default /dev/shm is 64 MB; an image rollout of
    a 300 s race is ~27 MiB). With /dev/shm chosen, a disk fallback folder takes what no longer fits at run time.
    """
    shm_usable = os.path.isdir(shm_dir) and os.access(shm_dir, os.W_OK)
    if shm_usable and free_bytes(shm_dir) >= bytes_needed:
        root = Path(tempfile.mkdtemp(prefix="trackrl-rollouts-", dir=shm_dir))
        return root, Path(tempfile.mkdtemp(prefix="trackrl-rollouts-disk-")), None
    root = Path(tempfile.mkdtemp(prefix="trackrl-rollouts-"))
    if not shm_usable:
        return root, None, None
    mib = 2**20
    message = (
        f"{shm_dir} has {free_bytes(shm_dir) / mib:.0f} MiB free but rollouts in flight may need up to "
        f"{bytes_needed / mib:.0f} MiB (performance.rollout_queue_size x collectors x the longest race): rollouts go "
        f"through {root.parent} on disk instead (a little slower). Give the container more shared memory "
        "(docker run --shm-size) or lower performance.rollout_queue_size to keep them in RAM."
    )
    return root, None, message


class SpoolFullError(OSError):
    """Neither the spool folder nor its fallback has room for a rollout (the learner frees room as it reads)."""


class RolloutChannel:
    """Bounded queue of spool-file paths; the payload is a pickle file written atomically (temp + os.replace).

    Pickle is safe here: both ends are our own processes and the folders are private to this user (mkdtemp, 0700).
    A rollout that does not fit in the spool folder (a full /dev/shm) goes to ``fallback_dir`` on disk; if that is
    full too, the sender waits for room instead of dying (which would only loop: a restarted collector hits the same
    full folder).
    """

    def __init__(self, context: Any, maxsize: int, spool_dir: Path, fallback_dir: Path | None = None) -> None:
        self.queue = context.Queue(maxsize=maxsize)
        self.spool_dir = Path(spool_dir)
        self.spool_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.fallback_dir = Path(fallback_dir) if fallback_dir is not None else None
        # Counted up by the collector at every step and while it waits for room: a count that stops moving means
        # a stopped (SIGSTOP) or wedged process, which is_alive() cannot see.
        self.heartbeat = context.Value("q", 0, lock=False)

    def beat(self) -> None:
        self.heartbeat.value += 1

    def _write_in(self, folder: Path, item: Any) -> str:
        name = f"{uuid.uuid4().hex}.pkl"
        temp_path = folder / f".{name}.tmp"
        try:
            with open(temp_path, "wb") as handle:
                pickle.dump(item, handle, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(temp_path, folder / name)
        except BaseException:
            temp_path.unlink(missing_ok=True)
            raise
        return name

    def write_spool(self, item: Any) -> str:
        """The queued reference: a name in the spool folder, or an absolute path in the fallback folder."""
        try:
            return self._write_in(self.spool_dir, item)
        except OSError as error:
            if error.errno not in _DISK_FULL:
                raise
            if self.fallback_dir is None:
                raise SpoolFullError(error.errno, f"no room for a rollout in {self.spool_dir}") from error
        self.fallback_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            return str(self.fallback_dir / self._write_in(self.fallback_dir, item))
        except OSError as error:
            if error.errno not in _DISK_FULL:
                raise
            raise SpoolFullError(
                error.errno, f"no room for a rollout in {self.spool_dir} nor {self.fallback_dir}"
            ) from error

    def _path_of(self, reference: str) -> Path:
        path = Path(reference) if os.path.isabs(reference) else self.spool_dir / reference
        if path.parent not in (self.spool_dir, self.fallback_dir):
            raise ValueError(f"rollout reference outside the spool folders: {reference!r}")
        return path

    def put(self, item: Any, timeout: float) -> None:
        """Raises queue.Full after ``timeout`` seconds (the spool file is removed then)."""
        name = self.write_spool(item)
        try:
            self.queue.put(name, timeout=timeout)
        except queue.Full:
            self._path_of(name).unlink(missing_ok=True)
            raise

    def get_nowait(self) -> Any:
        """Raises queue.Empty when nothing is ready."""
        path = self._path_of(self.queue.get_nowait())
        try:
            with open(path, "rb") as handle:
                return pickle.load(handle)
        finally:
            path.unlink(missing_ok=True)

    def cancel_join_thread(self) -> None:
        self.queue.cancel_join_thread()

    def close(self) -> None:
        self.queue.cancel_join_thread()
        self.queue.close()
        self.remove_spool()

    def remove_spool(self) -> None:
        for folder in (self.spool_dir, self.fallback_dir):
            if folder is None:
                continue
            shutil.rmtree(folder, ignore_errors=True)
            with contextlib.suppress(OSError):
                folder.parent.rmdir()  # the pool's root, once every collector's folder is gone


@dataclass
class CollectorHandle:
    collector_id: int
    incarnation: int
    process: Any  # multiprocessing.Process
    rollout_queue: RolloutChannel
    started_s: float = 0.0  # time.monotonic() at start
    last_beat: int = 0
    last_beat_change_s: float = 0.0
    stall_warned: bool = False


class CollectorPool:
    """Collector processes with one bounded queue each; restarts dead collectors; never blocks the learner."""

    def __init__(
        self,
        collector_fn: Callable[..., None],
        make_spec: Callable[[int, int], Any],
        n_collectors: int,
        queue_size: int,
        shared_weights: SharedWeights,
        first_incarnations: dict[int, int] | None = None,
        stall_warn_s: float = STALL_WARN_S,
        stall_restart_s: float = STALL_RESTART_S,
        startup_timeout_s: float = STARTUP_TIMEOUT_S,
        spool_bytes_needed: int = 0,
    ) -> None:
        self.collector_fn = collector_fn
        self.make_spec = make_spec
        self.n_collectors = n_collectors
        self.queue_size = queue_size
        self.shared_weights = shared_weights
        self.context = multiprocessing.get_context(MP_CONTEXT)
        self.stop_event = self.context.Event()
        self.handles: dict[int, CollectorHandle] = {}
        self.next_incarnation = dict(first_incarnations or {})
        self.restarts = 0
        self.restart_times: dict[int, list[float]] = {}
        self.spool_root: Path | None = None  # created by start()
        self.fallback_root: Path | None = None
        self.spool_bytes_needed = spool_bytes_needed
        self.pending: list[Any] = []  # rollouts a dead collector had queued, read before its channel was closed
        self.stall_warn_s = stall_warn_s
        self.stall_restart_s = stall_restart_s
        self.startup_timeout_s = startup_timeout_s
        self.messages: list[str] = []  # for the console: stalls seen, stalled collectors restarted

    def _start_one(self, collector_id: int) -> CollectorHandle:
        incarnation = self.next_incarnation.get(collector_id, 0)
        self.next_incarnation[collector_id] = incarnation + 1
        assert self.spool_root is not None, "call start() first"
        rollout_queue = RolloutChannel(
            self.context, self.queue_size, self.spool_root / f"collector{collector_id}_{incarnation}",
            None if self.fallback_root is None else self.fallback_root / f"collector{collector_id}_{incarnation}",
        )
        spec = self.make_spec(collector_id, incarnation)
        process = self.context.Process(
            target=self.collector_fn,
            args=(spec, rollout_queue, self.shared_weights, self.stop_event),
            name=f"trackrl-collector-{collector_id}",
            daemon=True,
        )
        process.start()
        now = time.monotonic()
        handle = CollectorHandle(collector_id, incarnation, process, rollout_queue, now, 0, now)
        self.handles[collector_id] = handle
        return handle

    def start(self) -> None:
        self.spool_root, self.fallback_root, message = choose_spool_roots(self.spool_bytes_needed)
        if message is not None:
            self.messages.append(message)
        for collector_id in range(self.n_collectors):
            self._start_one(collector_id)

    def poll(self, max_items: int = 64) -> list[Any]:
        """Whatever rollouts are ready, without blocking, round-robin over collectors."""
        items, self.pending = self.pending[:max_items], self.pending[max_items:]
        progressed = True
        while progressed and len(items) < max_items:
            progressed = False
            for handle in self.handles.values():
                try:
                    items.append(handle.rollout_queue.get_nowait())
                    progressed = True
                except queue.Empty:
                    continue
                except (EOFError, OSError, ValueError, pickle.UnpicklingError):
                    continue  # a broken queue or file: its collector is replaced by restart_dead()
        return items

    def take_messages(self) -> list[str]:
        messages, self.messages = self.messages, []
        return messages

    def _stalled(self, handle: CollectorHandle, now: float) -> bool:
        """Watch the heartbeat: warn once after ``stall_warn_s`` without a beat; True after ``stall_restart_s``."""
        beat = int(handle.rollout_queue.heartbeat.value)
        if beat != handle.last_beat:
            if handle.stall_warned:
                self.messages.append(f"collector {handle.collector_id} is running again")
            handle.last_beat, handle.last_beat_change_s, handle.stall_warned = beat, now, False
            return False
        if beat == 0:  # still starting
            return now - handle.started_s > self.startup_timeout_s
        silent_s = now - handle.last_beat_change_s
        if silent_s > self.stall_warn_s and not handle.stall_warned:
            handle.stall_warned = True
            self.messages.append(
                f"collector {handle.collector_id} (pid {handle.process.pid}) made no progress for {silent_s:.0f} s "
                f"(stopped with SIGSTOP, or wedged?); it is restarted if this lasts {self.stall_restart_s:.0f} s"
            )
        return silent_s > self.stall_restart_s

    def _kill_stalled(self, handle: CollectorHandle, now: float) -> None:
        silent_s = now - (handle.last_beat_change_s if handle.last_beat else handle.started_s)
        handle.process.kill()  # SIGKILL also ends a stopped process
        handle.process.join(timeout=5.0)
        self.messages.append(
            f"collector {handle.collector_id} (pid {handle.process.pid}) made no progress for {silent_s:.0f} s; "
            "killed it, restarting"
        )

    def restart_dead(self) -> list[tuple[int, int | None]]:
        """Replace every collector process that exited or stalled; return [(collector_id, exit code)] replaced."""
        replaced: list[tuple[int, int | None]] = []
        if self.stop_event.is_set():
            return replaced
        for collector_id, handle in list(self.handles.items()):
            if handle.process.is_alive():
                now = time.monotonic()
                if not self._stalled(handle, now):
                    continue
                self._kill_stalled(handle, now)
            exit_code = handle.process.exitcode
            self.pending.extend(drain(handle.rollout_queue))  # its finished races are complete files: keep them
            handle.rollout_queue.close()
            now = time.monotonic()
            recent = [t for t in self.restart_times.get(collector_id, []) if now - t < CRASH_LOOP_WINDOW_S]
            self.restart_times[collector_id] = [*recent, now]
            if len(recent) + 1 > CRASH_LOOP_RESTARTS:
                raise CollectorCrashLoopError(
                    f"collector {collector_id} died {len(recent) + 1} times in {CRASH_LOOP_WINDOW_S:.0f} s (last exit "
                    f"code {exit_code}); see its traceback above. Training stopped."
                )
            self._start_one(collector_id)
            self.restarts += 1
            replaced.append((collector_id, exit_code))
        return replaced

    def pids(self) -> dict[int, int | None]:
        return {collector_id: handle.process.pid for collector_id, handle in self.handles.items()}

    def stop(self, timeout_s: float = 10.0) -> None:
        """Ask collectors to stop, then terminate any that do not exit in time."""
        self.stop_event.set()
        deadline = time.monotonic() + timeout_s
        for handle in self.handles.values():
            # Drain so that a collector blocked in put() can see the stop event and exit.
            while handle.process.is_alive() and time.monotonic() < deadline:
                with contextlib.suppress(queue.Empty, EOFError, OSError, ValueError, pickle.UnpicklingError):
                    handle.rollout_queue.get_nowait()
                time.sleep(0.02)
        for handle in self.handles.values():
            if handle.process.is_alive():
                handle.process.terminate()
            handle.process.join(timeout=2.0)
            if handle.process.is_alive():
                handle.process.kill()
                handle.process.join(timeout=2.0)
            handle.rollout_queue.close()
        for root in (self.spool_root, self.fallback_root):
            if root is not None:
                shutil.rmtree(root, ignore_errors=True)


def drain(channel: RolloutChannel, max_items: int = 10_000) -> list[Any]:
    """Every rollout still queued in a channel (its writer is gone); a broken entry ends the drain."""
    items: list[Any] = []
    while len(items) < max_items:
        try:
            items.append(channel.get_nowait())
        except queue.Empty:
            break
        except (EOFError, OSError, ValueError, pickle.UnpicklingError):
            break
    return items


def parent_is_alive() -> bool:
    """For collectors: the learner is gone (e.g. kill -9) → exit instead of running orphaned."""
    parent = multiprocessing.parent_process()
    return parent is None or parent.is_alive()


def put_until_stopped(channel: RolloutChannel, item: Any, stop_event: Any, timeout_s: float = 0.5) -> bool:
    """Blocking send that gives up when the learner asks to stop or has died; True if the item was queued.

    The spool file is written once; only the short path waits for room in the bounded queue (backpressure). With
    no room for the file anywhere (full /dev/shm and disk), it waits for the learner to read and free some.
    """
    name = None
    while name is None and not stop_event.is_set() and parent_is_alive():
        channel.beat()
        try:
            name = channel.write_spool(item)
        except SpoolFullError:
            time.sleep(timeout_s)
    while name is not None and not stop_event.is_set() and parent_is_alive():
        channel.beat()  # waiting for room (backpressure) is not a stall
        try:
            channel.queue.put(name, timeout=timeout_s)
            return True
        except queue.Full:
            continue
    if name is not None:
        channel._path_of(name).unlink(missing_ok=True)
    if not parent_is_alive():
        channel.remove_spool()  # the learner was killed: nobody else will clean the spool folder
    return False

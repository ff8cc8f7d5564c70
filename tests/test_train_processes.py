"""Process machinery with a tiny fake collector: queues, weight publishing, restart of a dead collector, stop."""

from __future__ import annotations

import multiprocessing
import os
import queue
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from trackrl.train.processes import (
    CRASH_LOOP_RESTARTS,
    CollectorCrashLoopError,
    CollectorPool,
    RolloutChannel,
    SharedWeights,
    put_until_stopped,
)


@dataclass
class FakeSpec:
    collector_id: int
    incarnation: int
    die_after: int | None


def fake_collector(spec: FakeSpec, rollout_queue: Any, shared_weights: SharedWeights, stop_event: Any) -> None:
    """Sends (id, incarnation, n, weight value seen); incarnation 0 of collector 1 kills itself (like kill -9)."""
    module = torch.nn.Linear(1, 1, bias=False)
    version = -1
    sent = 0
    while not stop_event.is_set():
        version = shared_weights.pull_into(module, version)
        item = (spec.collector_id, spec.incarnation, sent, float(module.weight.item()), os.getpid())
        if not put_until_stopped(rollout_queue, item, stop_event):
            break
        sent += 1
        if spec.die_after is not None and sent >= spec.die_after:
            os._exit(9)
        time.sleep(0.01)
    rollout_queue.cancel_join_thread()


def make_spec(collector_id: int, incarnation: int) -> FakeSpec:
    return FakeSpec(collector_id, incarnation, die_after=3 if (collector_id, incarnation) == (1, 0) else None)


def collect_until(pool: CollectorPool, condition: Any, timeout_s: float = 60.0) -> list[Any]:
    items: list[Any] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        items.extend(pool.poll())
        pool.restart_dead()
        if condition(items):
            return items
        time.sleep(0.01)
    raise AssertionError(f"condition not met in {timeout_s} s; got {len(items)} items")


def test_shared_weights_seqlock_round_trip() -> None:
    source = torch.nn.Linear(3, 2)
    target = torch.nn.Linear(3, 2)
    shared = SharedWeights(source.state_dict())
    assert shared.read_version() == 0
    with torch.no_grad():
        source.weight.fill_(0.5)
    shared.publish(source.state_dict(), frames=123)
    assert shared.read_version() == 2 and shared.read_frames() == 123
    version = shared.pull_into(target, last_version=-1)
    assert version == 2 and torch.equal(target.weight, source.weight)
    shared.version += 1  # a writer in progress (odd): the reader keeps what it has
    with torch.no_grad():
        target.weight.fill_(0.0)
    assert shared.pull_into(target, last_version=2, max_tries=3) == 2
    assert torch.all(target.weight == 0.0)


@pytest.mark.slow
def test_pool_restarts_dead_collector_and_delivers_weights() -> None:
    module = torch.nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        module.weight.fill_(1.0)
    shared = SharedWeights(module.state_dict())
    shared.publish(module.state_dict(), frames=0)
    pool = CollectorPool(fake_collector, make_spec, n_collectors=2, queue_size=4, shared_weights=shared)
    pool.start()
    try:
        first_pid_of_1 = pool.pids()[1]
        items = collect_until(pool, lambda got: any(i[:2] == (1, 1) for i in got) and len(got) > 6)
        assert pool.restarts >= 1
        assert pool.pids()[1] != first_pid_of_1
        assert {i[0] for i in items} == {0, 1}
        with torch.no_grad():
            module.weight.fill_(2.0)
        shared.publish(module.state_dict(), frames=10)
        collect_until(pool, lambda got: any(i[3] == 2.0 for i in got))
    finally:
        pool.stop(timeout_s=5.0)
    assert all(not handle.process.is_alive() for handle in pool.handles.values())


def test_rollout_channel_round_trip_cleans_its_spool(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    channel = RolloutChannel(context, maxsize=1, spool_dir=tmp_path / "spool")
    payload = {"images": np.arange(12, dtype=np.uint8).reshape(3, 1, 2, 2), "race_time_ms": 9_610}
    channel.put(payload, timeout=1.0)
    with pytest.raises(queue.Full):  # bounded: the second rollout waits, and leaves no file behind
        channel.put(payload, timeout=0.05)
    received = channel.get_nowait()
    assert received["race_time_ms"] == 9_610 and np.array_equal(received["images"], payload["images"])
    assert list((tmp_path / "spool").iterdir()) == []
    with pytest.raises(queue.Empty):
        channel.get_nowait()
    channel.close()
    assert not (tmp_path / "spool").exists()


def dying_collector(spec: FakeSpec, rollout_queue: Any, shared_weights: SharedWeights, stop_event: Any) -> None:
    os._exit(3)  # e.g. a track that cannot load: the collector dies at every start


def dying_spec(collector_id: int, incarnation: int) -> FakeSpec:
    return FakeSpec(collector_id, incarnation, die_after=None)


@pytest.mark.slow
def test_a_collector_that_keeps_dying_stops_training_with_a_clear_error() -> None:
    shared = SharedWeights(torch.nn.Linear(1, 1).state_dict())
    pool = CollectorPool(dying_collector, dying_spec, n_collectors=1, queue_size=2, shared_weights=shared)
    pool.start()
    try:
        with pytest.raises(CollectorCrashLoopError, match="exit code 3"):
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                pool.restart_dead()
                time.sleep(0.05)
        assert pool.restarts == CRASH_LOOP_RESTARTS
    finally:
        pool.stop(timeout_s=5.0)


class TornSharedWeights(SharedWeights):
    """A learner that publishes during every copy: the version moves between the two reads of each try."""

    def __init__(self, state_dict: dict[str, torch.Tensor]) -> None:
        super().__init__(state_dict)
        self.reads = 0

    def read_version(self) -> int:
        self.reads += 1
        with torch.no_grad():  # half-written weights: what a torn copy would load
            next(iter(self.tensors.values())).fill_(float(self.reads))
        return 2 * self.reads


def test_a_torn_weight_copy_is_never_loaded_and_the_previous_weights_stay() -> None:
    source = torch.nn.Linear(3, 2)
    target = torch.nn.Linear(3, 2)
    before = {k: v.clone() for k, v in target.state_dict().items()}
    shared = TornSharedWeights(source.state_dict())
    assert shared.pull_into(target, last_version=0, max_tries=5) == 0
    for name, value in target.state_dict().items():
        assert torch.equal(value, before[name]), f"{name} was overwritten by a torn copy"
    # A consistent copy (the version holds still) is loaded.
    stable = SharedWeights(source.state_dict())
    stable.publish(source.state_dict(), frames=0)
    assert stable.pull_into(target, last_version=0) == 2
    assert torch.equal(target.weight, source.weight)


def burst_then_die(spec: FakeSpec, rollout_queue: Any, shared_weights: SharedWeights, stop_event: Any) -> None:
    """Queues three finished races, then dies (kill -9 style) before the learner reads them."""
    if spec.incarnation == 0:
        for n in range(3):
            put_until_stopped(rollout_queue, (spec.collector_id, spec.incarnation, n), stop_event)
        time.sleep(0.2)  # the queue's feeder thread hands the names to the pipe
        os._exit(9)
    while not stop_event.is_set():
        time.sleep(0.05)
    rollout_queue.cancel_join_thread()


def test_restart_dead_keeps_the_races_a_dead_collector_had_queued() -> None:
    shared = SharedWeights(torch.nn.Linear(1, 1).state_dict())
    pool = CollectorPool(burst_then_die, dying_spec, n_collectors=1, queue_size=4, shared_weights=shared)
    pool.start()
    try:
        deadline = time.monotonic() + 60
        while pool.handles[0].process.is_alive() and time.monotonic() < deadline:
            time.sleep(0.05)  # the learner is busy: it does not poll while the collector dies
        assert pool.restart_dead() == [(0, 9)]
        assert sorted(pool.poll()) == [(0, 0, 0), (0, 0, 1), (0, 0, 2)]
    finally:
        pool.stop(timeout_s=5.0)


def test_a_stopped_collector_is_reported_then_restarted_like_a_dead_one() -> None:
    import signal

    shared = SharedWeights(torch.nn.Linear(1, 1, bias=False).state_dict())
    pool = CollectorPool(
        fake_collector, dying_spec, n_collectors=1, queue_size=4, shared_weights=shared,
        stall_warn_s=0.5, stall_restart_s=1.0,
    )  # fmt: skip
    pool.start()
    try:
        collect_until(pool, lambda got: len(got) >= 2)
        stopped_pid = pool.pids()[0]
        os.kill(stopped_pid, signal.SIGSTOP)
        messages: list[str] = []
        items = collect_until(pool, lambda got: any(i[1] == 1 for i in got) or messages.extend(pool.take_messages()))
        messages += pool.take_messages()
        assert pool.pids()[0] != stopped_pid and pool.restarts == 1
        assert any("no progress" in m and "SIGSTOP" in m for m in messages), messages
        assert any("killed it, restarting" in m for m in messages), messages
        assert any(i[1] == 1 for i in items)  # the new incarnation delivers
    finally:
        pool.stop(timeout_s=5.0)


def test_spool_roots_fall_back_to_disk_when_shm_is_too_small(tmp_path: Path) -> None:
    from trackrl.train.processes import choose_spool_roots

    shm = tmp_path / "shm"
    shm.mkdir()
    root, fallback, message = choose_spool_roots(bytes_needed=1, shm_dir=str(shm))
    assert root.parent == shm and fallback is not None and message is None
    root, fallback, message = choose_spool_roots(bytes_needed=2**62, shm_dir=str(shm))
    assert root.parent != shm and fallback is None
    assert message is not None and str(shm) in message and "MiB free" in message and "--shm-size" in message


def full_in(folder: Path, failures: list[int]):
    """A _write_in that reports ENOSPC for ``folder`` (always) and for any folder while ``failures`` lasts."""
    import errno as errno_module

    original = RolloutChannel._write_in

    def write_in(self: RolloutChannel, target: Path, item: Any) -> str:
        if target == folder or failures:
            if failures:
                failures.pop()
            raise OSError(errno_module.ENOSPC, "No space left on device")
        return original(self, target, item)

    return write_in


def get_soon(channel: RolloutChannel, timeout_s: float = 5.0) -> Any:
    """get_nowait, once the queue's feeder thread has handed the item to the pipe."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return channel.get_nowait()
        except queue.Empty:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def test_a_full_spool_goes_to_the_disk_fallback_and_a_full_disk_makes_the_sender_wait(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    context = multiprocessing.get_context("spawn")
    channel = RolloutChannel(context, maxsize=4, spool_dir=tmp_path / "shm", fallback_dir=tmp_path / "disk")
    monkeypatch.setattr(RolloutChannel, "_write_in", full_in(tmp_path / "shm", failures=[]))
    channel.put({"race": 1}, timeout=1.0)
    assert get_soon(channel) == {"race": 1}  # read from the fallback folder
    assert list((tmp_path / "disk").iterdir()) == []
    failures = [1, 1, 1]  # the disk is full too, for three tries: the sender waits instead of dying
    monkeypatch.setattr(RolloutChannel, "_write_in", full_in(tmp_path / "shm", failures=failures))
    stop = context.Event()
    assert put_until_stopped(channel, {"race": 2}, stop, timeout_s=0.01)
    assert failures == [] and get_soon(channel) == {"race": 2}
    assert channel.heartbeat.value > 0  # waiting counts as alive
    channel.close()

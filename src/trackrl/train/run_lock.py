"""One trainer per run folder: ``<save-dir>/<run>/run.lock`` held with an exclusive ``flock`` while a run trains.

Two ``train --resume`` of one run would both write the save-state and the TensorBoard folder, and the last writer
would silently win. The kernel releases a ``flock`` when its process dies (kill -9 included), so a lock left behind
by a dead trainer is stale by construction: the next start takes it. The file holds the holder's pid, host and start
time, so that a refused start can name who holds the run.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time
from pathlib import Path
from typing import IO

from trackrl.errors import UserError

LOCK_FILE = "run.lock"


class RunLockedError(UserError):
    """Another live process trains this run."""


def _holder_text(handle: IO[str]) -> str:
    handle.seek(0)
    try:
        holder = json.loads(handle.read() or "{}")
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(holder["started_unix_s"])))
        return f"pid {int(holder['pid'])} on host {holder['host']} (since {started})"
    except (ValueError, KeyError, TypeError):
        return "another process (its lock file names no holder)"


class RunLock:
    """Exclusive lock of a run folder; ``acquire`` raises RunLockedError naming the holder."""

    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / LOCK_FILE
        self._handle: IO[str] | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 - held open for the run's lifetime
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = _holder_text(handle)
            handle.close()
            raise RunLockedError(
                f"run folder {self.path.parent} is being trained by {holder}; stop that process first "
                f"(a lock of a dead process is taken over automatically: {self.path})"
            ) from None
        handle.seek(0)
        handle.truncate()
        holder = {"pid": os.getpid(), "host": socket.gethostname(), "started_unix_s": time.time()}
        handle.write(json.dumps(holder) + "\n")
        handle.flush()
        self._handle = handle

    def release(self) -> None:
        if self._handle is None:
            return
        with contextlib.suppress(OSError):
            self._handle.seek(0)
            self._handle.truncate()  # the file stays (unlinking a lock file races with the next start)
        with contextlib.suppress(OSError):
            fcntl.flock(self._handle.fileno(), fcntl.LOCK_UN)
        self._handle.close()
        self._handle = None

    @property
    def held(self) -> bool:
        return self._handle is not None

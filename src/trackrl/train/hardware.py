"""hardware.json in the run folder: what each `trackrl train` session ran on, recorded at its start.

One record per session (a resume may run on another machine, e.g. a sweep trial retried on another Ray node):
collectors, cars per collector, learner / collector device, torch threads, and the machine's CPU model, core
count and GPU. `trackrl compare --report` prints it in its Hardware section. Written atomically.
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import torch

from trackrl.atomic import atomic_write_json
from trackrl.config.schema import TrackRLConfig

HARDWARE_FILE = "hardware.json"


def cpu_model() -> str:
    """The CPU's marketing name (/proc/cpuinfo on Linux), else what the platform reports."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.lower().startswith(("model name", "hardware")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def usable_cpus() -> int | None:
    """CPUs this process may run on (the affinity mask: a container or Ray limit), None where unknown."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def gpu_name(device: str) -> str | None:
    """The learner's GPU ('cuda', 'cuda:1', 'mps'); None on a CPU learner."""
    if device.startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name(torch.device(device))
    if device == "mps":
        return "Apple MPS"
    return None


def session_record(config: TrackRLConfig, learner_device: str, collector_device: str, frames: int) -> dict[str, Any]:
    performance = config.performance
    return {
        "started_at_unix_s": time.time(),
        "frames_at_start": frames,
        "host": platform.node(),
        "collectors": performance.gpu_collectors_count,
        "cars_per_collector": performance.cars_per_collector,
        "learner_device": learner_device,
        "collector_device": collector_device,
        "torch_threads": torch.get_num_threads(),
        "cpu_model": cpu_model(),
        "cpu_cores": os.cpu_count(),
        "usable_cpus": usable_cpus(),
        "gpu": gpu_name(learner_device),
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
    }


def record_session(run_dir: Path, record: dict[str, Any]) -> Path:
    """Append this session's record to the run's hardware.json (a damaged file is replaced, not trusted)."""
    path = run_dir / HARDWARE_FILE
    sessions: list[dict[str, Any]] = []
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(data, dict) and isinstance(data.get("sessions"), list):
            sessions = data["sessions"]
    except (OSError, ValueError):
        pass
    return atomic_write_json(path, {"sessions": [*sessions, record]})

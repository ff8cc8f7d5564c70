"""One trial through `trackrl sweep` vs the same `trackrl train` run directly, same config and frames.

    .venv/bin/python benchmarks/sweep_overhead.py [--config configs/smoke.yaml] [--max-frames 3000]

Both are timed end to end as a user sees them (process start to exit). The sweep's time includes starting a local
Ray and the trial's task; the overhead is a constant per sweep and per trial, so its ratio shrinks as the trial
grows (target at the issue's sizes: <= 1.10). Prints both times and the ratio.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml


def _timed(command: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(command, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/smoke.yaml")
    parser.add_argument("--max-frames", default="3000")
    args = parser.parse_args()
    config = Path(args.config).resolve()
    run_name = yaml.safe_load(config.read_text())["run_name"]
    cli = [sys.executable, "-m", "trackrl.cli"]
    with tempfile.TemporaryDirectory(prefix="sweep_overhead_") as tmp:
        root = Path(tmp)
        # the sweep's trial has seed 0 and run_name <run_name>-s0: give the direct run the same config
        direct_config = root / "direct.yaml"
        data = yaml.safe_load(config.read_text()) | {"seed": 0, "run_name": f"{run_name}-s0"}
        direct_config.write_text(yaml.safe_dump(data))
        direct_s = _timed([*cli, "train", "--config", str(direct_config), "--save-dir", "direct/save", "--logdir",
                           "direct/tb", "--no-live", "--max-frames", args.max_frames], root)  # fmt: skip
        sweep_s = _timed([*cli, "sweep", "overhead", "--config", str(config), "--seeds", "1", "--save-dir",
                          "sweep/save", "--logdir", "sweep/tb", "--max-frames", args.max_frames], root)  # fmt: skip
    print(f"trackrl train directly : {direct_s:7.2f} s ({args.max_frames} frames, {config.name})")
    print(f"through trackrl sweep  : {sweep_s:7.2f} s (local Ray started by the command)")
    print(f"ratio sweep / direct   : {sweep_s / direct_s:7.3f}  (target <= 1.10 for real trial lengths)")


if __name__ == "__main__":
    main()

"""One trial through `trackrl sweep` vs the same `trackrl train` run directly, same config and frames.

    .venv/bin/python benchmarks/sweep_overhead.py [--config configs/smoke.yaml] [--max-frames 1000000]

Both are timed end to end as a user sees them (process start to exit). The default length, 1M frames, is about a
20-minute smoke trial on a 2-core machine (the issue's trial length), so Ray's start-up is amortised as in a real
sweep; `--max-frames 30000` is a quick check whose ratio is dominated by the constant start-up. Also measured on
its own: Ray's start-up cost (init + one empty task + shutdown, as the sweep does), and the trial's time inside its
Ray task (from sweep.json). Prints the times, the ratio (target <= 1.10) and, from the measured overhead, the ratio
it gives for a 20-minute trial.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

TWENTY_MINUTES_S = 1200.0
RAY_START = """
import ray
ray.init(include_dashboard=False, logging_level="ERROR", log_to_driver=False)
ray.get(ray.remote(num_cpus=1)(lambda: None).remote())
ray.shutdown()
"""


def _timed(command: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(command, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/smoke.yaml")
    parser.add_argument("--max-frames", type=int, default=1_000_000)
    args = parser.parse_args()
    config = Path(args.config).resolve()
    run_name = yaml.safe_load(config.read_text())["run_name"]
    cli = [sys.executable, "-m", "trackrl.cli"]
    frames = str(args.max_frames)
    with tempfile.TemporaryDirectory(prefix="sweep_overhead_") as tmp:
        root = Path(tmp)
        ray_s = _timed([sys.executable, "-c", RAY_START], root)
        # the sweep's trial has seed 0 and run_name <run_name>-s0: give the direct run the same config
        direct_config = root / "direct.yaml"
        data = yaml.safe_load(config.read_text()) | {"seed": 0, "run_name": f"{run_name}-s0"}
        direct_config.write_text(yaml.safe_dump(data))
        direct_s = _timed([*cli, "train", "--config", str(direct_config), "--save-dir", "direct/save", "--logdir",
                           "direct/tb", "--no-live", "--max-frames", frames], root)  # fmt: skip
        sweep_s = _timed([*cli, "sweep", "overhead", "--config", str(config), "--seeds", "1", "--save-dir",
                          "sweep/save", "--logdir", "sweep/tb", "--max-frames", frames], root)  # fmt: skip
        trials = json.loads((root / "sweep/save/sweeps/overhead/sweep.json").read_text())["trials"]
        trial_s = 60.0 * sum(trial["minutes_trained"] for trial in trials.values())
    overhead_s = sweep_s - direct_s
    print(f"trackrl train directly   : {direct_s:8.2f} s ({args.max_frames:,} frames, {config.name})")
    print(f"through trackrl sweep    : {sweep_s:8.2f} s (local Ray started by the command)")
    print(f"  of which the Ray task  : {trial_s:8.2f} s (the `trackrl train` process inside it)")
    print(f"Ray start-up on its own  : {ray_s:8.2f} s (init + one empty task + shutdown, a fresh process)")
    print(f"ratio sweep / direct     : {sweep_s / direct_s:8.3f}  (target <= 1.10)")
    print(f"overhead per sweep       : {overhead_s:8.2f} s -> ratio for a 20-minute trial: "
          f"{(TWENTY_MINUTES_S + overhead_s) / TWENTY_MINUTES_S:.3f}")  # fmt: skip


if __name__ == "__main__":
    main()

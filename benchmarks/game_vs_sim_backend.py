"""Throughput of the game backend against the simulator backend: the same config, one run after the other.

Runs `trackrl train` on configs/smoke_game.yaml (2 collectors, each driving its own `tmi-serve` through the game
path) for --minutes, then the same config with environment.backend: sim (2 collectors x 1 car, stepped directly),
and prints for each: races/s, transitions (frames)/s, and the learner's busy share (the mean of
Performance/learner_percentage_training), with the game/sim ratio. Both rates are per second of the session's
training time (cumul_training_hours), which includes the collectors' start.

Run: .venv/bin/python benchmarks/game_vs_sim_backend.py [--minutes 10] [--config configs/smoke_game.yaml]
     [--port 18478] [--workdir /tmp/game_vs_sim]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from trackrl.train import tb


def run_session(config: dict, backend: str, minutes: float, workdir: Path) -> dict[str, float]:
    data = json.loads(json.dumps(config))
    data["environment"]["backend"] = backend
    config_path = workdir / f"{backend}.yaml"
    config_path.write_text(yaml.safe_dump(data))
    command = [sys.executable, "-m", "trackrl.cli", "train", "--config", str(config_path), "--run-name", backend,
               "--save-dir", str(workdir / "save"), "--logdir", str(workdir / "tb"), "--no-live",
               "--max-minutes", str(minutes)]  # fmt: skip
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    stats = json.loads((workdir / "save" / backend / "accumulated_stats.json").read_text())
    seconds = stats["cumul_training_hours"] * 3600
    accumulator = EventAccumulator(str(workdir / "tb" / backend), size_guidance={"scalars": 0})
    accumulator.Reload()
    busy = [event.value for event in accumulator.Scalars(tb.LEARNER_PERCENTAGE_TRAINING)]
    return {
        "races_per_s": sum(stats["cumul_races"].values()) / seconds,
        "transitions_per_s": stats["cumul_number_frames_played"] / seconds,
        "learner_busy_share": sum(busy) / len(busy) if busy else float("nan"),
        "seconds": seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="per backend")
    parser.add_argument("--config", default="configs/smoke_game.yaml")
    parser.add_argument("--port", type=int, default=None, help="game.base_tmi_port (default: the config's)")
    parser.add_argument("--workdir", default=None, help="where the two runs go (default: a new temp folder)")
    args = parser.parse_args()
    config = yaml.safe_load(Path(args.config).read_text())
    if args.port is not None:
        config.setdefault("game", {})["base_tmi_port"] = args.port
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="game_vs_sim_"))
    workdir.mkdir(parents=True, exist_ok=True)
    results = {backend: run_session(config, backend, args.minutes, workdir) for backend in ("game", "sim")}
    print(f"{args.config}, {args.minutes:g} min per backend, runs in {workdir}")
    print(f"{'backend':<8} {'races/s':>9} {'transitions/s':>14} {'learner busy':>13} {'seconds':>8}")
    for backend, r in results.items():
        print(f"{backend:<8} {r['races_per_s']:>9.2f} {r['transitions_per_s']:>14.0f} "
              f"{r['learner_busy_share']:>12.0%} {r['seconds']:>8.0f}")  # fmt: skip
    game, sim = results["game"], results["sim"]
    print(f"game/sim: races/s x{game['races_per_s'] / sim['races_per_s']:.2f}, "
          f"transitions/s x{game['transitions_per_s'] / sim['transitions_per_s']:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()

"""`trackrl compare` vs tensorboard's EventAccumulator (keep-all) on the same logs: 4 runs x 1M scalar events.

    .venv/bin/python benchmarks/compare_speed.py [--events-per-run 1000000] [--cache DIR]

Logs are generated once (with trackrl's TFRecord writer) and cached. Both sides read every event of every run;
trackrl then also computes the full comparison (tables, findings). The numba reader is compiled (and cached) before
timing; the first-ever compile time is printed separately. Prints seconds and the speed-up ratio.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

RUNS = ("baseline", "btr", "btr_noisy", "btr_ln")
TAGS_PER_STEP = (
    "Race/explo_race_time_trained_A01", "Race/explo_race_finished_trained_A01", "Race/eval_race_time_trained_A01",
    "Race/eval_race_finished_trained_A01", "alltime_min_ms_A01", "Training/loss", "RL/avg_Q_trained_A01",
    "Performance/learner_percentage_training", "cumul_training_hours", "RL/epsilon",
)  # fmt: skip


def _events(run_index: int, n_events: int) -> list[tuple[str, int, float, float]]:
    rng = np.random.default_rng(run_index)
    n_steps = n_events // len(TAGS_PER_STEP)
    wall = 1_700_000_000.0 + np.arange(n_steps) * 0.5
    steps = np.arange(n_steps) * 100
    race = 24.0 + 30.0 * np.exp(-np.arange(n_steps) / (n_steps / 5)) + rng.random(n_steps)
    finished = rng.random(n_steps) < 0.9
    race = np.where(finished, race, 300.0)
    best_ms = np.minimum.accumulate(np.where(finished, race * 1000.0, 300_000.0))
    values = {
        TAGS_PER_STEP[0]: race, TAGS_PER_STEP[1]: finished.astype(float), TAGS_PER_STEP[2]: race,
        TAGS_PER_STEP[3]: finished.astype(float), TAGS_PER_STEP[4]: best_ms, TAGS_PER_STEP[5]: rng.random(n_steps),
        TAGS_PER_STEP[6]: rng.random(n_steps), TAGS_PER_STEP[7]: np.full(n_steps, 0.6 + 0.05 * run_index),
        TAGS_PER_STEP[8]: (wall - wall[0]) / 3600.0, TAGS_PER_STEP[9]: rng.random(n_steps),
    }  # fmt: skip
    return [(tag, int(steps[i]), float(wall[i]), float(values[tag][i]))
            for i in range(n_steps) for tag in TAGS_PER_STEP]  # fmt: skip


def generate(cache: Path, n_events: int) -> Path:
    from trackrl.analysis.events import write_scalar_event_file

    logdir = cache / f"tb_{n_events}"
    marker = logdir / ".complete"
    if marker.exists():
        return logdir
    for i, run in enumerate(RUNS):
        start = time.perf_counter()
        write_scalar_event_file(logdir / run / "events.out.tfevents.1700000000.bench", _events(i, n_events))
        print(f"generated {run}: {n_events:,} events in {time.perf_counter() - start:.1f} s", flush=True)
    marker.write_text("ok")
    return logdir


def time_trackrl(logdir: Path) -> tuple[float, int]:
    from trackrl.analysis.comparison import compare_runs, load_runs

    start = time.perf_counter()
    runs = load_runs(list(RUNS), logdir, logdir / "no_save")
    comparison = compare_runs(runs, time_axis="auto", steps="1M,5M")
    elapsed = time.perf_counter() - start
    assert comparison.rows
    return elapsed, sum(run.n_events for run in runs)


def time_event_accumulator(logdir: Path) -> tuple[float, int]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    start = time.perf_counter()
    total = 0
    for run in RUNS:
        accumulator = EventAccumulator(str(logdir / run), size_guidance={"scalars": 0})  # 0 = keep every event
        accumulator.Reload()
        total += sum(len(accumulator.Scalars(tag)) for tag in accumulator.Tags()["scalars"])
    return time.perf_counter() - start, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events-per-run", type=int, default=1_000_000)
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "trackrl_compare_bench")
    args = parser.parse_args()
    logdir = generate(args.cache, args.events_per_run)

    start = time.perf_counter()
    from trackrl.analysis.events import read_event_file  # compiles the numba scanner (or loads its cache)

    read_event_file(next((logdir / RUNS[0]).iterdir()))
    print(f"numba reader ready (compile or cache load + one file read) in {time.perf_counter() - start:.2f} s")

    trackrl_s, trackrl_events = time_trackrl(logdir)
    print(f"trackrl compare (read + tables): {trackrl_s:.2f} s for {trackrl_events:,} events")
    accumulator_s, accumulator_events = time_event_accumulator(logdir)
    print(f"EventAccumulator(scalars=0) reload: {accumulator_s:.2f} s for {accumulator_events:,} events")
    if accumulator_events != trackrl_events:
        print(f"WARNING: event counts differ ({trackrl_events:,} vs {accumulator_events:,})")
    print(f"speed-up: {accumulator_s / trackrl_s:.1f}x (target >= 3x)")


if __name__ == "__main__":
    main()

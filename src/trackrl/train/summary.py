"""The lines `trackrl train` ends with, and their reader: `trackrl sweep` learns a trial's result from them.

One module owns both sides, so that a change of wording cannot silently blank the sweep's "best / reference" column.
No heavy imports: the sweep's Ray task imports this without torch.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

STOPPED_LINE = re.compile(r"^stopped \((?P<reason>[^)]*)\) at (?P<frames>[\d,]+) frames")
BEST_LINE = re.compile(r"^best (?P<map>\S+): (?P<seconds>[\d.]+) s = (?P<ratio>[\d.]+) x achieved time")
FINDING = " (faster than the optimal line driven in the simulator: a finding)"


def stopped_line(stop_reason: str, frames: int, batches: int, races: int, run_dir: Path) -> str:
    counts = f"{frames:,} frames, {batches:,} batches, {races:,} races"
    return f"stopped ({stop_reason}) at {counts}; save-state in {run_dir}"


def best_line(map_name: str, best_ms: int, ratio: float) -> str:
    """Best race time of a map against its achieved (simulator) time; below 1 is logged as a finding."""
    return f"best {map_name}: {best_ms / 1000:.3f} s = {ratio:.3f} x achieved time{FINDING if ratio < 1 else ''}"


def parse_summary(log_text: str) -> dict[str, Any]:
    """The stop reason, frames and best ratio (the smallest over the maps) from the last lines of `trackrl train`."""
    result: dict[str, Any] = {"stop_reason": None, "frames": None, "best_ratio": None}
    ratios = []
    for line in log_text.splitlines():
        if match := STOPPED_LINE.match(line):
            result["stop_reason"], result["frames"] = match["reason"], int(match["frames"].replace(",", ""))
        elif match := BEST_LINE.match(line):
            ratios.append(float(match["ratio"]))
    if ratios:
        result["best_ratio"] = min(ratios)
    return result

"""Console progress: a rich live table on a terminal, or one plain line every few seconds (``--no-live``, pipes)."""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class ProgressSnapshot:
    run_name: str
    frames: int
    races: int
    batches_done: int
    buffer_size: int
    learner_busy_share: float
    transitions_learned_per_s: float
    frames_per_s: float
    loss: float
    elapsed_s: float
    best_ms: dict[str, int] = field(default_factory=dict)
    reference_ms: dict[str, int] = field(default_factory=dict)  # achieved (simulator) time per map
    collector_restarts: int = 0


def format_best(best_ms: int | None, reference_ms: int | None) -> str:
    if best_ms is None:
        return "no finish yet"
    text = f"{best_ms / 1000:.2f} s"
    if reference_ms:
        text += f" ({best_ms / reference_ms:.3f} x achieved {reference_ms / 1000:.2f} s)"
        if best_ms < reference_ms:  # the achieved time is a driver's, not a limit: beating it is worth a look
            text += " faster than the optimal line driven in the simulator: a finding"
    return text


def format_loss(snapshot: ProgressSnapshot) -> str:
    """The last loss, or a dash before this session's first batch (the learner waits for min_transitions_to_learn;
    a resumed run refills its replay first). A NaN from a batch never gets here: it stops training."""
    return "— (filling buffer)" if snapshot.batches_done == 0 or math.isnan(snapshot.loss) else f"{snapshot.loss:.4g}"


def format_plain_line(snapshot: ProgressSnapshot) -> str:
    best = "; ".join(
        f"{name} {format_best(snapshot.best_ms.get(name), snapshot.reference_ms.get(name))}"
        for name in snapshot.reference_ms or snapshot.best_ms
    )
    return (
        f"[{snapshot.run_name}] {snapshot.elapsed_s / 60:6.1f} min | frames {snapshot.frames:,} "
        f"({snapshot.frames_per_s:.0f}/s) | races {snapshot.races} | batches {snapshot.batches_done:,} | "
        f"buffer {snapshot.buffer_size:,} | busy {100 * snapshot.learner_busy_share:.0f}% | "
        f"learned {snapshot.transitions_learned_per_s:.0f}/s | loss {format_loss(snapshot)} | best {best}"
    )


class ConsoleView:
    """``update`` is cheap to call often: the live view refreshes itself, plain lines are rate-limited."""

    def __init__(self, live: bool, plain_every_s: float = 10.0) -> None:
        self.live_enabled = live and sys.stdout.isatty()
        self.plain_every_s = plain_every_s
        self._last_plain = float("-inf")
        self._live: Any = None

    def __enter__(self) -> ConsoleView:
        if self.live_enabled:
            from rich.live import Live

            self._live = Live(auto_refresh=True, refresh_per_second=2)
            self._live.__enter__()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._live is not None:
            self._live.__exit__(*exc_info)
            self._live = None

    def _table(self, snapshot: ProgressSnapshot) -> Any:
        from rich.table import Table

        table = Table(title=f"trackrl train — {snapshot.run_name}", show_header=False)
        table.add_column("metric", style="bold")
        table.add_column("value")
        table.add_row("elapsed", f"{snapshot.elapsed_s / 60:.1f} min")
        table.add_row("frames", f"{snapshot.frames:,} ({snapshot.frames_per_s:.0f}/s)")
        table.add_row("races", f"{snapshot.races:,}")
        table.add_row("batches", f"{snapshot.batches_done:,}")
        table.add_row("buffer", f"{snapshot.buffer_size:,}")
        table.add_row("learner busy", f"{100 * snapshot.learner_busy_share:.0f} %")
        table.add_row("transitions learned/s", f"{snapshot.transitions_learned_per_s:.0f}")
        table.add_row("loss", format_loss(snapshot))
        for name in snapshot.reference_ms or snapshot.best_ms:
            table.add_row(f"best {name}", format_best(snapshot.best_ms.get(name), snapshot.reference_ms.get(name)))
        if snapshot.collector_restarts:
            table.add_row("collector restarts", str(snapshot.collector_restarts))
        return table

    def update(self, snapshot: ProgressSnapshot, force: bool = False) -> None:
        if self._live is not None:
            self._live.update(self._table(snapshot))
            return
        now = time.monotonic()
        if force or now - self._last_plain >= self.plain_every_s:
            self._last_plain = now
            print(format_plain_line(snapshot), flush=True)

    def message(self, text: str) -> None:
        if self._live is not None:
            self._live.console.print(text)
        else:
            print(text, flush=True)

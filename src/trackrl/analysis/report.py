"""Markdown report of a comparison ("BTR vs baseline on A01"), cell formatting shared with the console tables."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

from trackrl.analysis.axes import AXIS_LABELS, AXIS_UNITS
from trackrl.analysis.comparison import WALL_TO_TRAINING_FLAG_RATIO, Comparison, RunSummary
from trackrl.analysis.tables import Metric, Row, format_frames
from trackrl.atomic import atomic_write_text

FAMILY_COLUMNS = {
    "race": "best s · mean ± std s (finished) · finish rate (races) · first finish",
    "robust": "best s · mean ± std s · count",
    "best_so_far": "best finished race (ms)",
    "last": "last value",
}


def write_json(path: str | os.PathLike[str], comparison: Comparison) -> Path:
    return atomic_write_text(path, json.dumps(comparison.to_json(), indent=1, allow_nan=False) + "\n")


def format_at(axis: str, at: float) -> str:
    return format_frames(at) if axis == "frames" else f"{at:.4g} {AXIS_UNITS[axis]}"


def format_hours(hours: float | None) -> str:
    if hours is None:
        return "not logged"
    return f"{hours:.2f}" if hours >= 1.0 else f"{hours:.3g}"


def format_cell(row: Row, metric: Metric) -> str:
    """One table cell; '—' where the run has not reached the checkpoint or logged nothing yet."""
    if row.count is None:
        return "—"
    if metric.family == "race":
        if row.best is None:
            return f"no finish ({row.count} races)"
        first = format_at(row.axis, row.first_finish) if row.first_finish is not None else "—"
        return (f"{row.best:.3f} · {row.mean:.3f} ± {row.std:.3f} · {100 * (row.finish_rate or 0):.0f}% "
                f"({row.count}) · {first}")  # fmt: skip
    if metric.family == "robust":
        if row.best is None:
            return "—"
        return f"{row.best:.3f} · {row.mean:.3f} ± {row.std:.3f} · {row.count}"
    if metric.family == "best_so_far":
        return f"{row.best:.0f}" if row.best is not None else "no finish"
    return f"{row.last:.4g}" if row.last is not None else "—"


def metric_table(comparison: Comparison, metric: Metric, axis: str) -> tuple[list[str], list[list[str]]]:
    """(header, body) of one metric's table: checkpoints down, runs across."""
    names = [run.name for run in comparison.runs]
    cells: dict[tuple[float, str], Row] = {
        (r.at, r.run): r for r in comparison.rows if r.metric == metric.tag and r.axis == axis
    }
    points = sorted({at for at, _ in cells})
    body = [[format_at(axis, at)] + [format_cell(cells[(at, name)], metric) for name in names] for at in points]
    return ["at", *names], body


def _markdown_table(header: Sequence[str], body: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    return lines


def _run_analysis(runs: Sequence[RunSummary]) -> list[str]:
    header = ["run", "folders merged", "wall span (min)", "in sessions (min)", "training hours", "wall / training",
              "frames", "event files", "events", "purged (restart)"]  # fmt: skip
    body = []
    for run in runs:
        ratio = run.wall_to_training_ratio
        body.append([
            run.name, ", ".join(run.folders), f"{run.wall_minutes:.1f}", f"{run.active_minutes:.1f}",
            format_hours(run.training_hours),
            (f"{ratio:.2f}" + (" ⚠" if run.flagged else "")) if ratio is not None else "—",
            format_frames(run.max_frames), str(run.n_event_files), str(run.n_events), str(run.n_purged),
        ])  # fmt: skip
    lines = _markdown_table(header, body)
    lines.append("")
    lines.append(f"⚠ = wall time exceeds training time by more than {WALL_TO_TRAINING_FLAG_RATIO}x "
                 "(pauses between sessions, or a learner waiting on collectors).")  # fmt: skip
    for run in runs:
        for problem in run.problems:
            lines.append(f"- {run.name}: {problem}")
    return lines


def render_report(comparison: Comparison, title: str | None = None, figures: Sequence[Path] = (),
                  report_dir: Path | None = None, line_figures: Sequence[Path] = ()) -> str:  # fmt: skip
    names = [run.name for run in comparison.runs]
    axis = comparison.time_axis
    maps = sorted({m.map_name for m in comparison.metrics if m.map_name})
    lines = [f"# {title or ' vs '.join(names) + (' on ' + ', '.join(maps) if maps else '')}", ""]
    lines += ["## Experiment Overview", ""]
    lines += [f"- Runs: {', '.join(f'`{n}`' for n in names)}"]
    lines += [f"- Maps: {', '.join(maps) if maps else 'none logged'}"]
    lines += [f"- Time axis: {AXIS_LABELS[axis]}"]
    lines += [
        f"- Common window: {format_at(axis, comparison.common_window)} (the shortest run, "
        f"`{comparison.shortest_run}`); frames reached by every run: {format_frames(comparison.common_frames)}"
    ]
    lines += [f"- Time checkpoints: {', '.join(format_at(axis, a) for a in comparison.time_points)}"]
    lines += [f"- Step checkpoints: {', '.join(format_frames(s) for s in comparison.step_points) or 'none'}", ""]
    lines += ["## Results", ""]
    lines += [f"- {finding}" for finding in comparison.findings] or ["- No race or learner metric was logged."]
    lines += ["", "## Run Analysis", "", *_run_analysis(comparison.runs)]
    lines += ["", "## Detailed metrics", ""]
    for metric in comparison.metrics:
        lines += [f"### `{metric.tag}`", "", f"Cells: {FAMILY_COLUMNS[metric.family]}.", ""]
        for table_axis in (axis, "frames"):
            header, body = metric_table(comparison, metric, table_axis)
            if body:
                lines += [f"By {AXIS_LABELS[table_axis]}:", "", *_markdown_table(header, body), ""]
    if line_figures:
        lines += ["## Racing lines", "", "Each run's best run per map (from `save/<run>/best_runs/`), the reference "
                  "line dashed.", ""]  # fmt: skip
        lines += _figure_links(line_figures, report_dir)
    if figures:
        lines += ["## Figures", "", *_figure_links(figures, report_dir)]
    lines += ["## Methodology", "", *METHODOLOGY]
    return "\n".join(lines) + "\n"


def _figure_links(figures: Sequence[Path], report_dir: Path | None) -> list[str]:
    lines = []
    for figure in figures:
        link = os.path.relpath(figure, report_dir) if report_dir is not None else str(figure)
        lines += [f"![{figure.stem}]({Path(link).as_posix()})", ""]
    return lines


METHODOLOGY = [
    "- Every scalar event of every event file is read (TFRecord framing and both CRCs checked); no reservoir "
    "sampling. Corrupt records are skipped and truncated files read up to the damage, with a warning.",
    "- A run's folders: those its save-state (`accumulated_stats.json`, `tensorboard_folders`) lists; without "
    "one, `run`, `run_2`, … by name, except folders that have their own save dir or were named as runs.",
    "- Wall minutes count from the run's first scalar event, one origin for every tag. Training hours are "
    "`cumul_training_hours` interpolated at each event's wall time, over time inside sessions (pauses between "
    "a stop and a resume add no hours).",
    "- Common window = the shortest run on the time axis; a value at a checkpoint uses every event at or before it.",
    "- A race is finished iff its `race_finished` flag is 1 at the same step (else iff its time < the run's "
    "cutoff: the one in its `config_snapshot.yaml`, else 300 s). Best, mean and "
    "std (population, ddof = 0) are over finished races only; finish rate and race count include DNFs; "
    "first finish is the axis position of the first finished race. `alltime_min_ms` never takes a DNF (the cutoff) "
    "as a best. Loss, average Q and learner busy share show the last value logged at or before the checkpoint.",
    "- Race times are in seconds and `alltime_min_ms` in ms, as logged.",
]

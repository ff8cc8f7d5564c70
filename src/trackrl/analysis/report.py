"""Markdown report of a comparison ("BTR vs baseline on A01"), cell formatting shared with the console tables.

One function per section (overview, results, run analysis, detailed metrics, figures, reproduce, methodology), so a
new section is one more function in ``render_report``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from trackrl.analysis.axes import AXIS_LABELS, AXIS_UNITS, PAUSE_MIN_S
from trackrl.analysis.comparison import WALL_TO_TRAINING_FLAG_RATIO, Comparison, RunSummary
from trackrl.analysis.tables import Metric, Row, format_frames, format_percent, format_position
from trackrl.atomic import atomic_write_text

NOT_REACHED = "-"
VS_ACHIEVED = "best / achieved (simulator), where the run logged its achieved time"
FAMILY_COLUMNS = {
    "race": f"best s · mean ± std s (finished) · finish rate (races) · first finish · {VS_ACHIEVED}",
    "robust": f"best s · mean ± std s · count · {VS_ACHIEVED}",
    "finished": f"best s · mean ± std s · count of finished races · {VS_ACHIEVED}",
    "best_so_far": f"best finished race (s) · {VS_ACHIEVED}",
    "scalar": "mean over the interval before the checkpoint (previous checkpoint, checkpoint]",
}


@dataclass(frozen=True)
class Figure:
    """A written plot: which metric (or 'finish rate' of a race tag), on which axis, and what its caption says."""

    path: Path
    tag: str
    axis: str
    caption: str


@dataclass(frozen=True)
class Provenance:
    """What a reader needs to rerun the report."""

    command_line: str
    logdir: str
    save_dir: str
    version: str
    options: dict[str, object] = field(default_factory=dict)


def write_json(path: str | os.PathLike[str], comparison: Comparison, provenance: Provenance | None = None) -> Path:
    data = comparison.to_json()
    if provenance is not None:
        data["provenance"] = provenance.__dict__
    return atomic_write_text(path, json.dumps(data, indent=1, allow_nan=False, default=str) + "\n")


def format_at(axis: str, at: float) -> str:
    return format_frames(at) if axis == "frames" else f"{at:.4g} {AXIS_UNITS[axis]}"


def format_hours(hours: float | None) -> str:
    if hours is None:
        return "not logged"
    return f"{hours:.2f}" if hours >= 1.0 else f"{hours:.3g}"


def _scalar_text(value: float, unit: str) -> str:
    return f"{value:.1f}%" if unit == "%" else f"{value:.4g}"


def _cell_values(row: Row, metric: Metric) -> str:
    if metric.family == "race":
        if row.best is None:
            return f"no finish ({row.count} races)"
        first = format_position(row.axis, row.first_finish) if row.first_finish is not None else NOT_REACHED
        return (f"{row.best:.3f} · {row.mean:.3f} ± {row.std:.3f} · {format_percent(row.finish_rate or 0.0)} "
                f"({row.count}) · {first}")  # fmt: skip
    if metric.family in ("robust", "finished"):
        return f"{row.best:.3f} · {row.mean:.3f} ± {row.std:.3f} · {row.count}" if row.best is not None else "none"
    if metric.family == "best_so_far":
        return f"{row.best:.3f}" if row.best is not None else "no finish"
    return _scalar_text(row.mean, row.unit) if row.mean is not None else "none in interval"


def format_cell(row: Row, metric: Metric) -> str:
    """One table cell; '-' where the run has not reached the checkpoint, and a note where it was paused then."""
    if row.count is None:
        return NOT_REACHED
    text = _cell_values(row, metric) if row.count else "none yet"
    if row.best_vs_achieved is not None:
        text += f" · {row.best_vs_achieved:.3f}x achieved"
    if row.paused_since is not None:
        text += f" · paused since {row.paused_since:.3g} min"
    return text


def format_checkpoint(row_axis: str, at: float, in_window: bool) -> str:
    return format_at(row_axis, at) + ("" if in_window else " (outside common window)")


def metric_table(comparison: Comparison, metric: Metric, axis: str) -> tuple[list[str], list[list[str]]]:
    """(header, body) of one metric's table: checkpoints down, runs across."""
    names = [run.name for run in comparison.runs]
    cells: dict[tuple[float, str], Row] = {
        (r.at, r.run): r for r in comparison.rows if r.metric == metric.tag and r.axis == axis
    }
    points = sorted({at for at, _ in cells})
    body = [
        [format_checkpoint(axis, at, cells[(at, names[0])].in_window)]
        + [format_cell(cells[(at, name)], metric) for name in names]
        for at in points
    ]
    return ["at", *names], body


def cells_legend(metric: Metric) -> str:
    """What a cell of ``metric`` holds, with the unit of its values."""
    legend = FAMILY_COLUMNS[metric.family]
    return legend + (f" ({metric.unit})" if metric.family == "scalar" and metric.unit != "1" else "")


def markdown_table(header: Sequence[str], body: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    return lines


def _title(comparison: Comparison, title: str | None) -> list[str]:
    names = [run.name for run in comparison.runs]
    maps = sorted({m.map_name for m in comparison.metrics if m.map_name})
    return [f"# {title or ' vs '.join(names) + (' on ' + ', '.join(maps) if maps else '')}", ""]


def _overview(comparison: Comparison) -> list[str]:
    axis = comparison.time_axis
    maps = sorted({m.map_name for m in comparison.metrics if m.map_name})
    lines = ["## Experiment Overview", ""]
    lines += [f"- Runs: {', '.join(f'`{run.name}`' for run in comparison.runs)} (one run each)"]
    lines += [f"- Maps: {', '.join(maps) if maps else 'none logged'}"]
    lines += [f"- Time axis: {AXIS_LABELS[axis]}"]
    lines += [
        f"- Common window: {format_at(axis, comparison.common_window)} (the shortest run, "
        f"`{comparison.shortest_run}`); frames reached by every run: {format_frames(comparison.common_frames)}"
    ]
    lines += [f"- Time checkpoints: {', '.join(format_at(axis, a) for a in comparison.time_points)}"]
    lines += [f"- Step checkpoints: {', '.join(format_frames(s) for s in comparison.step_points) or 'none'}"]
    if comparison.beyond_window:
        lines += ["- Checkpoints past the common window are shown for the runs that reach them, marked "
                  "\"outside common window\": there the shorter runs have no value to compare with."]  # fmt: skip
    lines += [f"- **Note**: {note}" for note in comparison.notes]
    return [*lines, ""]


def _results(comparison: Comparison) -> list[str]:
    lines = ["## Results", ""]
    lines += [f"- {finding}" for finding in comparison.findings] or ["- No race or learner metric was logged."]
    return [*lines, ""]


def _run_analysis(runs: Sequence[RunSummary]) -> list[str]:
    header = ["run", "folders merged", "wall span (min)", "in sessions (min)", "training hours", "wall / training",
              "frames", "event files", "events", "purged (restart)", "pauses (wall min)"]  # fmt: skip
    body = []
    for run in runs:
        ratio = run.wall_to_training_ratio
        pauses = ", ".join(f"{a:.3g}–{b:.3g}" for a, b in run.pauses_min) or "none"
        body.append([
            run.name, ", ".join(run.folders), f"{run.wall_minutes:.1f}", f"{run.active_minutes:.1f}",
            format_hours(run.training_hours),
            (f"{ratio:.2f}" + (" ⚠" if run.flagged else "")) if ratio is not None else NOT_REACHED,
            format_frames(run.max_frames), str(run.n_event_files), str(run.n_events), str(run.n_purged), pauses,
        ])  # fmt: skip
    lines = ["## Run Analysis", "", *markdown_table(header, body), ""]
    lines.append(f"⚠ = wall time exceeds training time by more than {WALL_TO_TRAINING_FLAG_RATIO}x "
                 "(pauses between sessions, or a learner waiting on collectors).")  # fmt: skip
    for run in runs:
        for problem in run.problems:
            lines.append(f"- {run.name}: {problem}")
    return [*lines, ""]


def figure_lines(figures: Sequence[Figure], report_dir: Path | None) -> list[str]:
    lines = []
    for figure in figures:
        link = os.path.relpath(figure.path, report_dir) if report_dir is not None else str(figure.path)
        alt = f"{figure.tag} by {figure.axis}"
        lines += [f"![{alt}]({Path(link).as_posix()})", "", f"*{figure.caption}*", ""]
    return lines


def _detailed_metrics(comparison: Comparison, figures: Sequence[Figure], report_dir: Path | None) -> list[str]:
    """Per metric: its tables by the time axis and by frames, and the figures drawn for it."""
    lines = ["## Detailed metrics", ""]
    for metric in comparison.metrics:
        lines += [f"### `{metric.tag}`", "", f"Cells: {cells_legend(metric)}.", ""]
        for table_axis in (comparison.time_axis, "frames"):
            header, body = metric_table(comparison, metric, table_axis)
            if body:
                lines += [f"By {AXIS_LABELS[table_axis]}:", "", *markdown_table(header, body), ""]
        lines += figure_lines([f for f in figures if f.tag == metric.tag], report_dir)
    return lines


def _other_figures(comparison: Comparison, figures: Sequence[Figure], report_dir: Path | None) -> list[str]:
    """Figures that belong to no metric table (e.g. per-map drawings)."""
    tags = {m.tag for m in comparison.metrics}
    rest = [f for f in figures if f.tag not in tags]
    return ["## Figures", "", *figure_lines(rest, report_dir)] if rest else []


def _reproduce(provenance: Provenance | None) -> list[str]:
    if provenance is None:
        return []
    lines = ["## Reproduce", "", "```", provenance.command_line, "```", ""]
    lines += [f"- trackrl version: {provenance.version}", f"- Log folder: `{provenance.logdir}`",
              f"- Save folder: `{provenance.save_dir}`"]  # fmt: skip
    lines += [f"- `{name}`: {value!r}" for name, value in provenance.options.items()]
    return [*lines, ""]


def _racing_lines(line_figures: Sequence[Path], report_dir: Path | None) -> list[str]:
    """The per-map racing-line figures of `compare --plots` (analysis/racing_lines.py)."""
    if not line_figures:
        return []
    lines = ["## Racing lines", "", "Each run's fastest best run per map (from `save/<run>/best_runs/`), the optimal "
             "line of the car model dashed.", ""]  # fmt: skip
    for figure in line_figures:
        link = os.path.relpath(figure, report_dir) if report_dir is not None else str(figure)
        lines += [f"![{figure.stem}]({Path(link).as_posix()})", ""]
    return lines


def render_report(comparison: Comparison, title: str | None = None, figures: Sequence[Figure] = (),
                  report_dir: Path | None = None, provenance: Provenance | None = None,
                  line_figures: Sequence[Path] = (), extra_sections: Sequence[str] = ()) -> str:  # fmt: skip
    """``extra_sections``: Markdown lines placed after the run analysis (seed statistics, configuration changes,
    hardware: analysis/groups.py, analysis/run_setup.py)."""
    lines = _title(comparison, title)
    lines += _overview(comparison)
    lines += _results(comparison)
    lines += _run_analysis(comparison.runs)
    lines += extra_sections
    lines += _detailed_metrics(comparison, figures, report_dir)
    lines += _other_figures(comparison, figures, report_dir)
    lines += _racing_lines(line_figures, report_dir)
    lines += _reproduce(provenance)
    lines += ["## Methodology", "", *METHODOLOGY]
    return "\n".join(lines) + "\n"


METHODOLOGY = [
    "- Every scalar event of every event file is read (TFRecord framing and both CRCs checked); no reservoir "
    "sampling. Corrupt records are skipped and truncated files read up to the damage, with a warning.",
    "- A run's folders: those its save-state (`accumulated_stats.json`, `tensorboard_folders`) lists; without "
    "one, `run`, `run_2`, … by name, except folders that have their own save dir or were named as runs.",
    "- Wall minutes count from the run's first scalar event, one origin for every tag. Training hours are "
    "`cumul_training_hours` interpolated at each event's wall time, over time inside sessions (pauses between "
    "a stop and a resume add no hours).",
    f"- A pause is a stretch of more than {PAUSE_MIN_S:.0f} s between two event-file sessions; on the wall-minutes "
    'axis a cell at a time inside a pause says "paused since … min" and plot lines break there.',
    "- Common window = the shortest run on the time axis; a value at a checkpoint uses every event at or before it. "
    f'"{NOT_REACHED}" = the run has not reached the checkpoint.',
    "- A race is finished iff its `race_finished` flag is 1 at the same step (else iff its time < the run's "
    "cutoff: the one in its `config_snapshot.yaml`, else 300 s). Best, mean and "
    "std (population, ddof = 0) are over finished races only; finish rate and race count include DNFs; "
    "first finish is the axis position of the first finished race. `alltime_min_ms` never takes a DNF (the cutoff) "
    "as a best.",
    "- Loss, average Q and learner busy share are logged every few seconds, so one value is one noisy sample: a cell "
    "is the mean of the values logged in the interval before the checkpoint (after the previous checkpoint, or "
    "from the start for the first); the JSON keeps the last value too.",
    "- Best / achieved (simulator): a best time divided by the map's achieved time that the run logged at its start "
    "(`Reference/achieved_ms_{map}`): the car model's optimal line driven in the simulator by a tracking controller "
    "(`trackrl track info`). It is a driver's time, not a limit: below 1 the agent drove faster, a finding.",
    "- Units: race times and `alltime_min_ms` in seconds; learner busy share in percent; loss and Q unitless. "
    "Every JSON row carries its `unit` and `at_unit`. Tag definitions: docs/metrics.md.",
    "- A leader is bolded only when its gap to the next run exceeds both runs' race-to-race spread (std of "
    "finished races); each configuration is one run, so no seed-to-seed spread is known.",
]

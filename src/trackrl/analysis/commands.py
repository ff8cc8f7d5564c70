"""`trackrl compare` and `trackrl audit`: rich tables in the console, optional Markdown / JSON / PNG outputs."""

from __future__ import annotations

import argparse
import shlex
import warnings
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TypeVar

from rich.console import Console
from rich.table import Table

import trackrl
from trackrl.analysis.axes import AXIS_LABELS, AXIS_SHORT, AXIS_UNITS, parse_duration, parse_times
from trackrl.analysis.comparison import (
    WALL_TO_TRAINING_FLAG_RATIO,
    Comparison,
    RunSummary,
    compare_runs,
    load_runs,
    summarize_run,
)
from trackrl.analysis.events import EventFileWarning
from trackrl.analysis.options import parse_frame_list, parse_frames
from trackrl.analysis.report import (
    Figure,
    Provenance,
    cells_legend,
    format_hours,
    metric_table,
    render_report,
    write_json,
)
from trackrl.analysis.run_setup import render_setup_sections
from trackrl.analysis.runs import discover_runs, load_run
from trackrl.atomic import atomic_write_text, check_writable
from trackrl.errors import UserError

T = TypeVar("T")


def _console() -> Console:
    """Rich console; when piped to a file, wide enough that no table wraps mid-cell (a file has no width)."""
    console = Console()
    return console if console.is_terminal else Console(width=400, soft_wrap=True)


def _with_file_warnings(console: Console, work: Callable[[], T]) -> T:
    """Run ``work``; print each corrupt/truncated file warning once as one yellow line, also when ``work`` then
    fails (the warning is often the cause of the error)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", EventFileWarning)
        try:
            return work()
        finally:
            printed: set[str] = set()
            for warning in caught:
                text = str(warning.message)
                if not issubclass(warning.category, EventFileWarning):
                    warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
                elif text not in printed:
                    printed.add(text)
                    console.print(f"[yellow]warning:[/] {text}", highlight=False)


def _print_metric_tables(console: Console, comparison: Comparison) -> None:
    for metric in comparison.metrics:
        for axis in (comparison.time_axis, "frames"):
            header, body = metric_table(comparison, metric, axis)
            if not body:
                continue
            title = f"{metric.tag} — by {AXIS_SHORT[axis]}"
            table = Table(title=title, caption=cells_legend(metric), min_width=len(title) + 2)
            for i, column in enumerate(header):
                table.add_column(column, justify="left" if i == 0 else "right", no_wrap=not console.is_terminal)
            for row in body:
                table.add_row(*row)
            console.print(table)


def _print_overview(console: Console, comparison: Comparison) -> None:
    axis = comparison.time_axis
    console.print(
        f"[bold]time axis[/]: {AXIS_LABELS[axis]}; [bold]common window[/]: {comparison.common_window:.4g} "
        f"{AXIS_UNITS[axis]} (shortest run: {comparison.shortest_run}); frames reached by all: "
        f"{comparison.common_frames:,}",
        highlight=False,
    )
    for run in comparison.runs:
        console.print(f"  {run.name}: folders {', '.join(run.folders)}; {run.n_events:,} events "
                      f"in {run.n_event_files} file(s)", highlight=False)  # fmt: skip
    for note in comparison.notes:
        console.print(f"[yellow]warning:[/] {note}", highlight=False)


_OPTIONS = ("time_axis", "interval", "times", "beyond_window", "steps", "step_interval", "map")


def provenance(args: argparse.Namespace) -> Provenance:
    """Command line, folders, options and version, for the report's Reproduce section and the JSON."""
    argv = getattr(args, "argv", None)
    return Provenance(
        command_line="trackrl " + shlex.join(argv) if argv is not None else "(called from Python)",
        logdir=str(Path(args.logdir).resolve()), save_dir=str(Path(args.save_dir).resolve()),
        version=trackrl.__version__, options={name: getattr(args, name, None) for name in _OPTIONS},
    )  # fmt: skip


def check_options(args: argparse.Namespace) -> None:
    """Refuse bad checkpoint options and unusable --report / --json / --plots paths before minutes of reading and
    computing (compare_runs checks the options again: the Python API goes through it alone)."""
    if args.interval is not None:
        parse_duration(args.interval, "wall_minutes", "--interval")
    if getattr(args, "times", None) is not None:
        parse_times(args.times, "wall_minutes")
    if args.steps is not None:
        parse_frame_list(args.steps, "--steps")
    if args.step_interval is not None:
        parse_frames(args.step_interval, "--step-interval")
    for option, path in (("--report", args.report), ("--json", args.json)):
        if path is not None:
            try:
                check_writable(path)
            except UserError as error:
                raise UserError(f"{option} {error}") from None
    if args.plots is not None:
        folder = Path(args.plots)
        if folder.exists() and not folder.is_dir():
            raise UserError(f"--plots {folder}: exists and is not a folder (give a folder for the PNG files)")
        try:
            check_writable(folder / "plot.png")
        except UserError as error:
            raise UserError(f"--plots {error}") from None


def _group_runs(args: argparse.Namespace, console: Console, logdir: Path, save_dir: Path) -> list[str]:
    """--sweep / --group: the groups' runs that have logs (a trial not started yet is left out, with a note)."""
    from trackrl.analysis.groups import Group, parse_groups, sweep_groups

    groups = sweep_groups(save_dir, args.sweep) if args.sweep else []
    groups += parse_groups(args.group or [])
    kept = []
    for group in groups:
        missing = [r for r in group.runs if not (logdir / r).is_dir()]
        if missing:
            console.print(f"[yellow]note:[/] {group.name}: no logs yet for {', '.join(missing)}", highlight=False)
        runs = [r for r in group.runs if r not in missing]
        if runs:
            kept.append(Group(group.name, runs))
    if not kept:
        raise UserError("--sweep/--group: no run of any group has logs under " + str(logdir))
    args.groups = kept
    return [r for g in kept for r in g.runs]


def _print_group_statistics(console: Console, args: argparse.Namespace, comparison: Comparison,
                            runs: Sequence, save_dir: Path) -> dict:  # fmt: skip
    from trackrl.analysis.groups import conclusions, group_statistics, group_table

    statistics = group_statistics(comparison, args.groups, runs, save_dir)
    args.group_conclusions = conclusions(comparison, args.groups, statistics)
    for axis in (comparison.time_axis, "frames"):
        header, body = group_table(statistics, axis)
        if body:
            table = Table(title=f"best time / reference across seeds — by {AXIS_SHORT[axis]}")
            for i, column in enumerate(header):
                table.add_column(column, justify="left" if i < 2 else "right")
            for row in body:
                table.add_row(*row)
            console.print(table)
    console.print("[bold]Seed statistics[/]")
    for sentence in args.group_conclusions:
        console.print(f"  • {sentence}", highlight=False)
    return statistics


def cmd_compare(args: argparse.Namespace) -> int:
    console = _console()
    group_mode = bool(getattr(args, "sweep", None) or getattr(args, "group", None))
    if group_mode:
        grouped = _group_runs(args, console, Path(args.logdir), Path(args.save_dir))
        args.runs = list(dict.fromkeys([*args.runs, *grouped]))
    if not args.runs:
        raise UserError("give run names, --sweep NAME or --group RUN,RUN,...")
    logdir, save_dir = Path(args.logdir), Path(args.save_dir)
    check_options(args)
    runs = _with_file_warnings(console, lambda: load_runs(args.runs, logdir, save_dir))
    comparison = compare_runs(runs, time_axis=args.time_axis, interval=args.interval, steps=args.steps,
                              step_interval=args.step_interval, map_name=args.map, times=args.times,
                              beyond_window=args.beyond_window)  # fmt: skip
    if args.map and not any(m.map_name == args.map for m in comparison.metrics):
        raise UserError(f"--map {args.map}: no race or Q tag for this map in runs {', '.join(args.runs)}")
    _print_overview(console, comparison)
    _print_metric_tables(console, comparison)
    console.print("[bold]Key findings[/]")
    for finding in comparison.findings:
        console.print(f"  • {finding.replace('**', '')}", highlight=False)
    statistics = _print_group_statistics(console, args, comparison, runs, save_dir) if group_mode else None
    figures: list[Figure] = []
    group_figures: list[Figure] = []
    line_figures: list[Path] = []
    if args.plots:
        from trackrl.analysis.plots import plot_metrics  # matplotlib only when asked
        from trackrl.analysis.racing_lines import plot_racing_lines

        figures = plot_metrics(runs, comparison, args.plots)

        def warn(message: str) -> None:
            console.print(f"[yellow]warning:[/] {message}", highlight=False)

        line_figures = plot_racing_lines(args.runs, save_dir, Path(args.plots), warn)
        if statistics is not None:
            from trackrl.analysis.group_plots import plot_group_figures

            group_figures = plot_group_figures(statistics, args.groups, runs, comparison, save_dir, args.plots)
        console.print(f"wrote {len(figures) + len(group_figures)} plot(s) and {len(line_figures)} racing-line "
                      f"figure(s) to {args.plots}")  # fmt: skip
    origin = provenance(args)
    if args.json:
        if statistics is None:
            write_json(args.json, comparison, origin)
        else:
            _write_group_json(args.json, comparison, statistics, args.group_conclusions, origin)
        console.print(f"wrote {args.json}")
    if args.report:
        report_dir = Path(args.report).resolve().parent
        figures = [replace(f, path=f.path.resolve()) for f in figures]
        columns = {g.name: g.runs for g in args.groups} if group_mode else {run: [run] for run in args.runs}
        sections = []  # after the run analysis: seed statistics (groups), configuration changes, hardware
        if statistics is not None:
            from trackrl.analysis.groups import render_group_section

            group_figures = [replace(f, path=f.path.resolve()) for f in group_figures]
            sections += render_group_section(statistics, args.group_conclusions, comparison.time_axis, group_figures,
                                             report_dir)  # fmt: skip
        sections += render_setup_sections(columns, save_dir)
        text = render_report(comparison, figures=figures, report_dir=report_dir, provenance=origin,
                             line_figures=[f.resolve() for f in line_figures], extra_sections=sections)  # fmt: skip
        atomic_write_text(args.report, text)
        console.print(f"wrote {args.report}")
    return 0


def _write_group_json(path: str, comparison: Comparison, statistics: dict, sentences: list[str],
                      provenance: Provenance) -> None:  # fmt: skip
    import json

    data = comparison.to_json() | {"groups": statistics, "group_conclusions": sentences,
                                   "provenance": provenance.__dict__}  # fmt: skip
    atomic_write_text(path, json.dumps(data, indent=1, allow_nan=False) + "\n")


def audit_table(summaries: Sequence[RunSummary]) -> Table:
    legend = f"⚠ marks a run whose wall time exceeds {WALL_TO_TRAINING_FLAG_RATIO}x its training time"
    table = Table(title="wall time vs training time", caption=legend)
    for column in ("run", "folders", "wall span (min)", "in sessions (min)", "training hours", "wall / training", ""):
        table.add_column(column, justify="left" if column in ("run", "folders") else "right")
    for run in summaries:
        ratio = run.wall_to_training_ratio
        table.add_row(
            run.name, ", ".join(run.folders), f"{run.wall_minutes:.1f}", f"{run.active_minutes:.1f}",
            format_hours(run.training_hours),
            f"{ratio:.2f}" if ratio is not None else "-", "⚠" if run.flagged else "",
        )  # fmt: skip
    return table


def cmd_audit(args: argparse.Namespace) -> int:
    console = _console()
    logdir, save_dir = Path(args.logdir), Path(args.save_dir)
    if args.runs:
        runs = _with_file_warnings(console, lambda: load_runs(args.runs, logdir, save_dir))
    else:
        runs = _with_file_warnings(
            console, lambda: [load_run(r, logdir, save_dir) for r in discover_runs(logdir, save_dir)]
        )
    console.print(audit_table([summarize_run(run) for run in runs]))
    return 0

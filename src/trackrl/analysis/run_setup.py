"""The report's **Configuration changes** and **Hardware** sections, from each run's save folder.

Configuration changes: every dotted config key whose value differs between the compared columns (runs, or groups
of runs across seeds), read from ``config_snapshot.yaml``; a group's cell lists the values of its runs. Hardware:
the last session of each run's ``hardware.json`` (written by `trackrl train` at start), runs with identical records
on one row; a run without it says "not recorded" (runs trained before trackrl recorded it).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from trackrl.analysis.report import markdown_table
from trackrl.analysis.runs import CONFIG_SNAPSHOT_FILE
from trackrl.train.hardware import HARDWARE_FILE

NOT_RECORDED = "not recorded"
ABSENT = "(absent)"  # a key the snapshot does not have (an older trackrl, or an optional section)
ALWAYS_DIFFERENT = ("run_name",)  # names the column already: not a change
HARDWARE_COLUMNS = (
    ("collectors", "collectors"), ("cars_per_collector", "cars / collector"), ("learner_device", "learner device"),
    ("collector_device", "collector device"), ("torch_threads", "torch threads"), ("cpu_model", "CPU"),
    ("cpu_cores", "cores"), ("usable_cpus", "usable CPUs"), ("gpu", "GPU"), ("host", "host"),
)  # fmt: skip


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{'training': {'batch_size': 64}} -> {'training.batch_size': 64}; lists stay values."""
    flat: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat |= flatten(value, f"{name}.")
        else:
            flat[name] = value
    return flat


def config_snapshot(save_dir: Path, run: str) -> dict[str, Any] | None:
    """The run's config as dotted keys; None without a readable snapshot."""
    try:
        data = yaml.safe_load((save_dir / run / CONFIG_SNAPSHOT_FILE).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return None
    return flatten(data) if isinstance(data, dict) else None


def format_value(value: Any) -> str:
    if value is ABSENT:
        return ABSENT
    if isinstance(value, bool):
        return str(value).lower()  # as in the YAML
    text = json.dumps(value) if isinstance(value, list | dict) else str(value)
    return text.replace("|", "\\|")  # a Markdown table cell


def column_cell(snapshots: Sequence[dict[str, Any] | None], key: str) -> str:
    """A column's value of ``key``: one value, or the distinct values of a group's runs; NOT_RECORDED without
    any snapshot. A run without a snapshot is left out of its group's cell (and listed under the table)."""
    values = [format_value(s.get(key, ABSENT)) for s in snapshots if s is not None]
    return ", ".join(sorted(set(values))) if values else NOT_RECORDED  # sorted: the same set reads the same


def config_changes(columns: Mapping[str, Sequence[str]], save_dir: Path) -> tuple[list[list[str]], list[str]]:
    """Rows (key, cell per column) for every key that differs between columns; and the runs without a snapshot.

    ``columns``: column name -> its runs (one run per column when comparing runs)."""
    snapshots = {run: config_snapshot(save_dir, run) for runs in columns.values() for run in runs}
    missing = [run for run, snapshot in snapshots.items() if snapshot is None]
    keys = sorted({key for snapshot in snapshots.values() if snapshot for key in snapshot} - set(ALWAYS_DIFFERENT))
    rows = []
    for key in keys:
        cells = [column_cell([snapshots[run] for run in runs], key) for runs in columns.values()]
        if len(set(cells) - {NOT_RECORDED}) > 1:  # a column without snapshots tells nothing about a change
            rows.append([key, *cells])
    return rows, missing


def last_hardware_session(save_dir: Path, run: str) -> dict[str, Any] | None:
    try:
        sessions = json.loads((save_dir / run / HARDWARE_FILE).read_text(encoding="utf-8"))["sessions"]
        return sessions[-1] if sessions and isinstance(sessions[-1], dict) else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _hardware_cell(record: dict[str, Any] | None, key: str) -> str:
    if record is None or key not in record:
        return NOT_RECORDED
    return "none" if record[key] is None else str(record[key])  # gpu None: a CPU learner


def hardware_rows(runs: Sequence[str], save_dir: Path) -> list[list[str]]:
    """One row per distinct record: the runs, then HARDWARE_COLUMNS; runs without a record on one row."""
    by_record: dict[tuple[str, ...], list[str]] = {}
    for run in runs:
        record = last_hardware_session(save_dir, run)
        cells = tuple(_hardware_cell(record, key) for key, _ in HARDWARE_COLUMNS)
        by_record.setdefault(cells, []).append(run)
    return [[", ".join(names), *cells] for cells, names in by_record.items()]


def render_setup_sections(columns: Mapping[str, Sequence[str]], save_dir: Path) -> list[str]:
    """Markdown lines of the two sections; ``columns`` as in ``config_changes``."""
    all_runs = [run for runs in columns.values() for run in runs]
    rows, missing = config_changes(columns, save_dir)
    grouped = any(len(runs) > 1 for runs in columns.values())
    what = "groups (a cell lists the values of the group's runs)" if grouped else "runs"
    lines = ["## Configuration changes", ""]
    if len(missing) == len(all_runs):
        lines += [f"No compared run has a `{CONFIG_SNAPSHOT_FILE}` ({NOT_RECORDED}).", ""]
    else:
        if rows:
            lines += [f"Every config key whose value differs between the compared {what}, from each run's "
                      f"`{CONFIG_SNAPSHOT_FILE}`.", "", *markdown_table(["key", *columns], rows), ""]  # fmt: skip
        else:
            lines += [f"No config key differs between the compared {what} (`{CONFIG_SNAPSHOT_FILE}`).", ""]
        if missing:
            lines += [f"No `{CONFIG_SNAPSHOT_FILE}` for: {', '.join(missing)} ({NOT_RECORDED}).", ""]
    header = ["runs", *(label for _, label in HARDWARE_COLUMNS)]
    lines += ["## Hardware", "", f"As recorded by `trackrl train` at the start of each run's last session "
              f"(`{HARDWARE_FILE}`).", "", *markdown_table(header, hardware_rows(all_runs, save_dir)), ""]  # fmt: skip
    return lines

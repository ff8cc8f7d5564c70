"""`trackrl track list|info|plot`."""

from __future__ import annotations

import json

import numpy as np

from trackrl.cli import main


def test_track_info_and_list(capsys) -> None:
    assert main(["track", "list"]) == 0
    listing = capsys.readouterr().out
    assert all(name in listing for name in ("a01", "easy", "technical", "hills"))
    assert main(["track", "info", "a01"]) == 0
    info = capsys.readouterr().out
    assert "optimal (model)" in info and "achieved (simulator)" in info and "gap +" in info
    assert "turns           5" in info and "809." in info and "physics limit" not in info
    assert main(["track", "info", "a01", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert {"optimal_ms", "achieved_ms", "length_m", "turns", "road_width_m"} <= set(summary)
    assert summary["turns"] == 5 and summary["optimal_ms"] <= summary["achieved_ms"]


def test_track_info_of_npy_with_width(tmp_path, capsys) -> None:
    x = np.arange(0, 300.0, 0.5)
    path = tmp_path / "line.npy"
    np.save(path, np.stack([x, 0.02 * x, np.zeros_like(x)], axis=1))
    assert main(["track", "info", str(path), "--road-width", "12"]) == 0
    out = capsys.readouterr().out
    assert "road width      12 m" in out and "turns           0" in out and "range 6.0 m" in out


def test_track_plot_writes_a_png(tmp_path) -> None:
    output = tmp_path / "plots" / "easy.png"
    assert main(["track", "plot", "easy", "-o", str(output)]) == 0
    assert output.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_track_plot_onto_a_directory_is_one_line_error_and_leaves_no_temp_file(tmp_path, capsys) -> None:
    assert main(["track", "plot", "easy", "-o", str(tmp_path)]) == 2
    assert "is a directory" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_bad_track_is_one_line_error(capsys) -> None:
    assert main(["track", "info", "does_not_exist"]) == 2
    assert "not a built-in track" in capsys.readouterr().err

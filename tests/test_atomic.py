"""trackrl.atomic: writes through symlinks, keep normal permissions, refuse devices / FIFOs / folders (issue 18)."""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

import pytest

from trackrl.atomic import OutputPathError, atomic_write_text, check_writable
from trackrl.errors import UserError


def mode_of(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_a_new_file_gets_0666_minus_the_umask(tmp_path: Path) -> None:
    previous = os.umask(0o027)
    try:
        atomic_write_text(tmp_path / "report.md", "x")
    finally:
        os.umask(previous)
    assert mode_of(tmp_path / "report.md") == 0o640  # mkstemp alone leaves 0600


def test_an_existing_file_keeps_its_permissions(tmp_path: Path) -> None:
    path = tmp_path / "report.md"
    path.write_text("old")
    path.chmod(0o644)
    atomic_write_text(path, "new")
    assert path.read_text() == "new"
    assert mode_of(path) == 0o644


def test_a_symlink_is_written_through_to_its_target(tmp_path: Path) -> None:
    target = tmp_path / "real" / "report.md"
    target.parent.mkdir()
    target.write_text("old")
    link = tmp_path / "link.md"
    link.symlink_to(target)
    atomic_write_text(link, "new")
    assert link.is_symlink()
    assert target.read_text() == "new"
    assert sorted(p.name for p in target.parent.iterdir()) == ["report.md"]


@pytest.mark.parametrize("kind", ["fifo", "directory", "device"])
def test_non_regular_targets_are_refused_and_left_alone(tmp_path: Path, kind: str) -> None:
    if kind == "fifo":
        path = tmp_path / "pipe"
        os.mkfifo(path)
        expected = "a FIFO"
    elif kind == "directory":
        path = tmp_path / "out"
        path.mkdir()
        expected = "a directory"
    else:
        path = Path("/dev/null")
        expected = "a character device"
    before = os.stat(path)
    for action in (lambda: atomic_write_text(path, "x"), lambda: check_writable(path)):
        with pytest.raises(UserError, match=f"is {expected}, not a regular file"):
            action()
    after = os.stat(path)
    assert (after.st_mode, after.st_ino) == (before.st_mode, before.st_ino)


def test_a_symlink_to_a_device_is_refused(tmp_path: Path) -> None:
    link = tmp_path / "null.md"
    link.symlink_to("/dev/null")
    with pytest.raises(OutputPathError, match=r"null\.md \(-> /dev/null\): is a character device"):
        atomic_write_text(link, "x")


def test_check_writable_names_a_read_only_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    if os.geteuid() == 0:  # root writes into read-only folders: make the folder refuse as it would for a user

        def refuse(*args: object, **kwargs: object) -> None:
            raise PermissionError(13, "Permission denied")

        monkeypatch.setattr(tempfile, "mkstemp", refuse)
    try:
        with pytest.raises(OutputPathError, match=r"ro/report\.md: cannot write there \(Permission denied\)"):
            check_writable(folder / "report.md")
    finally:
        folder.chmod(0o700)


def test_check_writable_names_a_full_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def full(fd: int, data: bytes) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "write", full)
    with pytest.raises(OutputPathError, match=r"report\.json: cannot write there \(No space left on device\)"):
        check_writable(tmp_path / "report.json")
    monkeypatch.undo()
    assert list(tmp_path.iterdir()) == []  # the probe file is removed
    assert check_writable(tmp_path / "report.json") == tmp_path / "report.json"


def test_a_symlink_loop_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    with pytest.raises(OutputPathError, match=r"a: cannot be used as an output file"):
        atomic_write_text(tmp_path / "a", "x")

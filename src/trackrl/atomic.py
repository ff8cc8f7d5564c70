"""Atomic file writes: a temp file in the same folder, fsync, then os.replace — readers see the old or the new file,
never a half-written one — and an fsync of the folder, so that the rename itself survives a power loss. A kill -9
mid-write can leave a temp file ``.<name>.<random>.tmp`` behind: ``remove_stale_temp_files`` clears them.

The written file behaves like any file the user creates: a symlink is written through (its target is replaced, the
link stays), an existing file keeps its permission bits, a new one gets 0666 minus the umask (mkstemp's 0600 would
hide reports from the rest of a group). Only regular files are replaced: a device (``/dev/null``), a FIFO or a folder
at the path is refused, since os.replace would silently turn it into a regular file.
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from trackrl.errors import UserError


class OutputPathError(UserError, OSError):
    """An output path that cannot be written: not a regular file, or its folder is missing or read-only."""


_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISSOCK, "a socket"),
)


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "a special file")


def resolve_target(path: str | os.PathLike[str]) -> Path:
    """The file a write to ``path`` replaces: symlinks followed; refuses anything but a regular file or nothing."""
    target = Path(os.path.realpath(path))
    try:
        mode = os.stat(target).st_mode
    except FileNotFoundError:
        return target
    except OSError as error:  # a symlink loop, a path through a file, no permission to look
        raise OutputPathError(f"{path}: cannot be used as an output file ({error.strerror or error})") from None
    if not stat.S_ISREG(mode):
        shown = f"{path} (-> {target})" if str(target) != os.path.abspath(path) else str(path)
        raise OutputPathError(f"{shown}: is {_kind(mode)}, not a regular file; refusing to replace it")
    return target


def _current_umask() -> int:
    try:  # Linux >= 4.7 reports it without changing it
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _final_mode(target: Path) -> int:
    try:
        return stat.S_IMODE(os.stat(target).st_mode)
    except FileNotFoundError:
        return 0o666 & ~_current_umask()


def check_writable(path: str | os.PathLike[str]) -> Path:
    """Fail now, with the path and the cause, if an atomic write to ``path`` would fail (wrong kind of target,
    missing or read-only folder, full disk); callers use it before long computations. Returns the target."""
    target = resolve_target(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".probe", dir=target.parent)
        try:
            os.write(fd, b"\0" * 4096)
            os.fsync(fd)
        finally:
            os.close(fd)
            os.unlink(probe)
    except OSError as error:
        raise OutputPathError(f"{path}: cannot write there ({error.strerror or error})") from None
    return target


def atomic_write(path: str | os.PathLike[str], write: Callable[[IO[Any]], object], mode: str = "wb") -> Path:
    target = resolve_target(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    final_mode = _final_mode(target)
    fd, temp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, mode) as handle:
            write(handle)
            handle.flush()
            os.fchmod(handle.fileno(), final_mode)
            os.fsync(handle.fileno())
        os.replace(temp_name, target)
        fsync_dir(target.parent)
    except BaseException:
        if os.path.exists(temp_name):
            os.unlink(temp_name)
        raise
    return Path(path)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    return atomic_write(path, lambda handle: handle.write(data))


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike[str], data: Any) -> Path:
    return atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def fsync_dir(folder: str | os.PathLike[str]) -> None:
    """Make the folder's entries (a rename) durable; a no-op where folders cannot be opened (Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems refuse fsync on a folder; the rename is still atomic
    finally:
        os.close(fd)


def remove_stale_temp_files(folder: str | os.PathLike[str]) -> list[Path]:
    """Delete the temp files ``atomic_write`` left in ``folder`` when its process was killed; return them.

    Only call this while no other process writes there (the trainer holds the run's lock)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    stale = [p for p in folder.glob(".*.tmp") if p.is_file()]
    for path in stale:
        path.unlink(missing_ok=True)
    return stale

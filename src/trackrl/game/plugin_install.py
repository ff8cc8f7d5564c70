"""`trackrl game install-plugin`: copy trackrl's TMInterface 2 plugin into TMInterface's Plugins folder.

TMInterface 2 loads AngelScript plugins from `Documents/TMInterface/Plugins` (GAME_BRIDGE.md §4): on Windows the
user's Documents, under Wine the Documents of the Wine prefix's user (`$WINEPREFIX`, default `~/.wine`). The copy is
atomic; a different file already there is kept unless `--force`, and then saved beside it first.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
import time
from importlib import resources
from pathlib import Path

from trackrl.atomic import atomic_write_bytes
from trackrl.errors import UserError

PLUGIN_NAME = "trackrl_link.as"
LINESIGHT_PLUGIN_NAME = "Python_Link.as"  # both listen on custom_port: keep one loaded
TMI_DIR_NAME = "TMInterface"
PLUGINS_DIR_NAME = "Plugins"


class PluginInstallError(UserError):
    """The TMInterface folder cannot be found or used, or the plugin there differs and --force was not given."""


def plugin_source_bytes() -> bytes:
    """The plugin shipped inside the package (package data: trackrl/game/plugin/trackrl_link.as)."""
    return resources.files("trackrl.game").joinpath("plugin", PLUGIN_NAME).read_bytes()


def documents_candidates(platform: str = sys.platform, env: dict[str, str] | None = None) -> list[Path]:
    """Where the Documents folder holding TMInterface/ may be, most likely first."""
    env = dict(os.environ) if env is None else env
    home = Path(env.get("USERPROFILE") or env.get("HOME") or Path.home())
    if platform == "win32":
        onedrive = [Path(env["OneDrive"]) / "Documents"] if env.get("OneDrive") else []
        return [home / "Documents", *onedrive]
    prefix = Path(env["WINEPREFIX"]) if env.get("WINEPREFIX") else home / ".wine"
    user = env.get("USER") or getpass.getuser()
    wine_user = prefix / "drive_c" / "users" / user
    return [wine_user / "Documents", wine_user / "My Documents", home / "Documents"]


def default_tmi_dir(platform: str = sys.platform, env: dict[str, str] | None = None) -> Path:
    candidates = [documents / TMI_DIR_NAME for documents in documents_candidates(platform, env)]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    tried = ", ".join(str(candidate) for candidate in candidates)
    raise PluginInstallError(
        f"no TMInterface folder found (looked at {tried}); start the game with TMInterface once, or pass "
        "--tmi-dir DIR (the folder that holds TMInterface's Plugins/, e.g. Documents/TMInterface)"
    )


def plugins_dir(tmi_dir: Path) -> Path:
    """The Plugins folder of a TMInterface folder (or the Plugins folder itself); refuses any other folder."""
    if not tmi_dir.exists():
        raise PluginInstallError(f"--tmi-dir {tmi_dir}: no such folder")
    if not tmi_dir.is_dir():
        raise PluginInstallError(f"--tmi-dir {tmi_dir}: is a file, not a folder")
    if tmi_dir.name.lower() == PLUGINS_DIR_NAME.lower() and tmi_dir.parent.name.lower() == TMI_DIR_NAME.lower():
        return tmi_dir
    if (tmi_dir / PLUGINS_DIR_NAME).is_dir():
        return tmi_dir / PLUGINS_DIR_NAME
    if tmi_dir.name.lower() == TMI_DIR_NAME.lower():
        return tmi_dir / PLUGINS_DIR_NAME  # TMInterface creates Plugins/ itself; an empty one is made here
    raise PluginInstallError(
        f"--tmi-dir {tmi_dir}: not a TMInterface folder (no {PLUGINS_DIR_NAME}/ inside and not named "
        f"{TMI_DIR_NAME}); pass the folder that holds TMInterface's {PLUGINS_DIR_NAME}/, e.g. Documents/TMInterface"
    )


def backup_path(target: Path) -> Path:
    """A free name beside `target` that TMInterface does not load (it does not end in .as)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    candidate = target.with_name(f"{target.name}.{stamp}.bak")
    n = 1
    while candidate.exists():
        candidate = target.with_name(f"{target.name}.{stamp}-{n}.bak")
        n += 1
    return candidate


def install_plugin(tmi_dir: Path, force: bool = False) -> tuple[Path, str, Path | None]:
    """Copy the plugin; returns (installed path, "installed" | "replaced" | "unchanged", backup or None)."""
    folder = plugins_dir(tmi_dir)
    target = folder / PLUGIN_NAME
    source = plugin_source_bytes()
    if target.is_symlink() or (target.exists() and not target.is_file()):
        raise PluginInstallError(f"{target}: exists and is not a regular file; move it away first")
    if not target.exists():
        try:
            folder.mkdir(exist_ok=True)
        except OSError as error:
            raise PluginInstallError(f"{folder}: cannot create it ({error.strerror or error})") from None
        atomic_write_bytes(target, source)
        return target, "installed", None
    existing = target.read_bytes()
    if existing == source:
        return target, "unchanged", None
    if not force:
        raise PluginInstallError(
            f"{target}: exists and differs from this trackrl's plugin (another version, or edited); it was left "
            "as it is; --force replaces it and keeps the old file beside it as .bak"
        )
    backup = backup_path(target)
    atomic_write_bytes(backup, existing)
    atomic_write_bytes(target, source)
    return target, "replaced", backup


def cmd_install_plugin(args: argparse.Namespace) -> int:
    tmi_dir = Path(args.tmi_dir).expanduser() if args.tmi_dir else default_tmi_dir()
    target, outcome, backup = install_plugin(tmi_dir, force=args.force)
    if outcome == "unchanged":
        print(f"{target}: already installed (identical)")
    else:
        print(f"{target}: {outcome}" + (f" (the previous file is kept as {backup})" if backup else ""))
    linesight_plugin = target.parent / LINESIGHT_PLUGIN_NAME
    if linesight_plugin.exists():
        print(f"warning: {linesight_plugin} is there too: both plugins listen on custom_port, so only the first "
              "loaded one gets the port; move one of them out of Plugins/", file=sys.stderr)  # fmt: skip
    print('next: launch the game with /configstring="set custom_port 8478" (one port per instance); the '
          "TMInterface console then says: trackrl link: listening on 127.0.0.1:8478")  # fmt: skip
    return 0

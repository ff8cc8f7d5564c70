"""Starting and stopping one game instance per port (GAME_BRIDGE.md §5.2), and the checks made before any starts.

Launchers (`game.launcher`):
- simulator: `trackrl tmi-serve --track MAP --port P` as a subprocess (the built-in simulator behind the plugin's
  protocol), so the whole game path runs without the game. On Linux it dies with its collector (PR_SET_PDEATHSIG).
- tmloader (Windows): `TMLoader.exe run TmForever "<profile>" /configstring="set custom_port P"`, as Linesight.
- launch_script (Linux/Wine): the user's script run as `<script> P`; it starts TMLoader under Wine and may return
  at once (TMLoader exits after spawning the game), so the game is found by its port answering, not by a pid.
- external: the games are already running (started by hand); only connect.
The plugin listens on 127.0.0.1 only; nothing here binds or connects to another address.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from trackrl.config.schema import GameConfig, TrackRLConfig
from trackrl.errors import UserError
from trackrl.game.protocol import HOST

log = logging.getLogger("trackrl.game")
PR_SET_PDEATHSIG = 1
LINESIGHT_UNSET_SCRIPT = "path_to_be_filled_only_if_on_linux"  # Linesight's placeholder, the config's default


class GameSetupError(UserError):
    """The game backend cannot start: a bad path, a missing plugin, a port in use."""


def expand(path: str) -> Path:
    return Path(os.path.expanduser(os.path.expandvars(path)))


def instance_ports(config: TrackRLConfig) -> list[int]:
    return [config.game.base_tmi_port + i for i in range(config.performance.gpu_collectors_count)]


def port_is_free(port: int) -> bool:
    """True if nothing listens on 127.0.0.1:port (a bind test: a game or tmi-serve already there makes it fail).

    SO_REUSEADDR as tmi-serve sets it: connections of a stopped game still in TIME_WAIT do not count as in use.
    """
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        probe.bind((HOST, port))
        return True
    except OSError:
        return False
    finally:
        probe.close()


def check_game_setup(config: TrackRLConfig, platform: str = sys.platform) -> None:
    """Every reason the game backend could not start, as one GameSetupError, before any process or file is made."""
    game = config.game
    launcher = game.resolved_launcher(platform)
    problems: list[str] = []
    if launcher in ("tmloader", "launch_script"):
        plugin = expand(game.target_python_link_path)
        if not plugin.is_file():
            problems.append(f"game.target_python_link_path: no TMInterface plugin at {plugin} (run `trackrl game "
                            "install-plugin`, or copy Linesight's Python_Link.as there)")  # fmt: skip
        problems += _map_path_problems(config)
    if launcher == "tmloader":
        loader = expand(game.windows_TMLoader_path)
        if not loader.is_file():
            problems.append(f"game.windows_TMLoader_path: {loader} does not exist (install TMLoader, or give its path)")
    if launcher == "launch_script":
        script = expand(game.linux_launch_game_path)
        if game.linux_launch_game_path == LINESIGHT_UNSET_SCRIPT:
            problems.append("game.linux_launch_game_path is not set (a script that starts one game with "
                            "`set custom_port $1`; see the README)")  # fmt: skip
        elif not script.is_file():
            problems.append(f"game.linux_launch_game_path: {script} does not exist (a script that starts one game "
                            "with `set custom_port $1`; see the README)")  # fmt: skip
        elif not os.access(script, os.X_OK):
            problems.append(f"game.linux_launch_game_path: {script} is not executable (chmod +x it)")
    if launcher != "external":
        busy = [port for port in instance_ports(config) if not port_is_free(port)]
        if busy:
            problems.append(f"game.base_tmi_port: port(s) {', '.join(map(str, busy))} on {HOST} are in use (a game or "
                            "`trackrl tmi-serve` left running, or another run?); stop it or choose another "
                            "base_tmi_port")  # fmt: skip
    if problems:
        raise GameSetupError("game backend: " + "; ".join(problems))


def _map_path_problems(config: TrackRLConfig) -> list[str]:
    challenges = expand(config.game.trackmania_base_path) / "Tracks" / "Challenges"
    problems: list[str] = []
    for entry in config.map_cycle.entries:
        if entry.game_map_path is None:
            problems.append(f"map_cycle entry {entry.map!r}: game_map_path is not set (the map as typed for "
                            "TMInterface's `map` command, e.g. \"My Challenges/A01.Challenge.Gbx\")")  # fmt: skip
            continue
        path = expand(entry.game_map_path.strip('"'))
        if not path.is_absolute():
            path = challenges / path
        if not path.is_file():
            problems.append(f"map_cycle entry {entry.map!r}: game map {path} does not exist")
    return list(dict.fromkeys(problems))  # an entry repeated (explo + eval) is one problem


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class LaunchedGame:
    """What a launcher started: the process we own (None when the game outlives its launcher)."""

    port: int
    process: subprocess.Popen | None
    log_path: Path | None = None

    def is_alive(self) -> bool | None:
        """True/False for a process we own, None when we cannot tell (the connection will)."""
        return None if self.process is None else self.process.poll() is None

    def stop(self, timeout_s: float = 5.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()  # tmi-serve stops cleanly on SIGTERM
        try:
            self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=timeout_s)


def launch_game(game: GameConfig, port: int, first_map: str, platform: str = sys.platform) -> LaunchedGame:
    launcher = game.resolved_launcher(platform)
    if launcher == "simulator":
        return _launch_simulator(game, port, first_map, platform)
    if launcher == "tmloader":
        # One command line as Linesight's PowerShell call passes it: the quotes of /configstring reach TMLoader
        # as typed (a list would have them escaped). UNVERIFIED here: no Windows machine.
        loader = expand(game.windows_TMLoader_path)
        command: str | list[str] = (f'"{loader}" run TmForever "{game.windows_TMLoader_profile_name}" '
                                    f'/configstring="set custom_port {port}"')  # fmt: skip
    elif launcher == "launch_script":
        command = [str(expand(game.linux_launch_game_path)), str(port)]
    else:
        return LaunchedGame(port, None)  # external: started by the user
    log.info("port %d: launching the game: %s", port, command if isinstance(command, str) else " ".join(command))
    _run_launcher(command)
    return LaunchedGame(port, None)  # the launcher exits after spawning the game: the port tells when it is up


def _run_launcher(command: str | list[str]) -> None:
    """Start a launcher that spawns the game and may exit (TMLoader); its own process is not the game's."""
    try:
        subprocess.Popen(command, stdin=subprocess.DEVNULL, start_new_session=True)
    except OSError as error:
        raise GameSetupError(f"cannot run the game launcher {command}: {error.strerror}") from error


def _launch_simulator(game: GameConfig, port: int, first_map: str, platform: str) -> LaunchedGame:
    log_path = Path(tempfile.gettempdir()) / f"trackrl-tmi-serve-{port}.log"
    command = [sys.executable, "-m", "trackrl.cli", "tmi-serve", "--track", first_map, "--port", str(port),
               "--checkpoints", str(game.simulator_checkpoints)]  # fmt: skip
    with open(log_path, "ab") as log_file:
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent if platform.startswith("linux") else None,
        )  # fmt: skip
    return LaunchedGame(port, process, log_path)
